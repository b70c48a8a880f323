//! The policy document as written: the serde model, and the JSON Schema generated from it.
//!
//! These types only describe shape. Meaning (unique ids, known servers, well-formed patterns
//! and constraints) is checked by [`super::Policy::compile`], which reports every problem at
//! once. `docs/policy.md` is the reference for every field; the doc comments here become the
//! descriptions in `docs/policy.schema.json`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A complete MCP policy: who may use which tools, resources, prompts and methods on which
/// upstream MCP servers. Deny wins; anything no rule allows is denied.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "MCP policy")]
pub struct PolicySpec {
    /// Mode for servers that do not set their own: `enforce` (default) or `audit`.
    #[serde(default)]
    pub mode: Mode,
    /// The upstream MCP servers rules may name, by the logical server name the filter is
    /// configured with. A rule naming a server missing here is refused (it is almost always a
    /// typo). A server used by a filter but not declared here gets only `"*"` rules and the
    /// top-level `mode`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, ServerSpec>,
    /// The rules, in order. Order only decides which rule id is reported when several match.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Rate limits, concurrency caps and cost budgets on tool calls (`docs/limits.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::limits::LimitsSpec>,
}

/// Per-server settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Overrides the top-level `mode` for this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

/// What a decision does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Denied requests are refused and lists are filtered.
    #[default]
    Enforce,
    /// Every request passes and lists are not filtered; decisions still say what enforce mode
    /// would have done (`would_deny` and the deciding rule id), for rolling out a policy.
    Audit,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// Whether a matching rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Allow,
    Deny,
}

/// One rule. It applies to a request when the server, the principal, the target (tool,
/// resource, prompt or method) and every argument constraint match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique among the rules; `[A-Za-z0-9_.:-]`, at most 128 characters. Reported in
    /// decisions, logs and audit records.
    pub id: String,
    /// Free text for humans; ignored by the engine (but part of the version hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `allow` or `deny`.
    pub effect: Effect,
    /// Server names (declared under `servers`) this rule applies to, or `"*"` for every
    /// server. Default: `["*"]`.
    #[serde(default = "all_servers")]
    pub servers: Vec<String>,
    /// Who the rule applies to: the rule applies when any one of these matchers matches.
    /// `[{}]` means every authenticated principal.
    pub principals: Vec<PrincipalSpec>,
    /// Tool name patterns (`tools/call`; also filters `tools/list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Resource URI patterns (`resources/read`, `resources/subscribe`,
    /// `resources/unsubscribe`; also filters `resources/list` and, matched against the
    /// template text, `resources/templates/list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Prompt name patterns (`prompts/get`; also filters `prompts/list`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// Methods without a subject, by JSON-RPC method name (`completion/complete`,
    /// `logging/setLevel`, `tasks/*`, …) or `"*"` for all of them. Methods that have a subject
    /// (`tools/call`, `resources/read`, …) are governed by `tools`, `resources` and `prompts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Constraints on `tools/call` arguments, keyed by argument name (`repo`) or by JSON
    /// pointer into the arguments object (`/options/depth`). Every constraint must hold for
    /// the rule to apply. Only allowed on rules that target `tools` and nothing else.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<String, ArgumentSpec>,
}

fn all_servers() -> Vec<String> {
    vec!["*".to_owned()]
}

/// Matches a principal when every field given matches (AND across fields); each list field
/// matches when any of its entries matches (OR within a field). Omit a field to not
/// constrain it; an empty list is refused, since it would match nobody by accident.
/// String entries are patterns (`*` wildcard) except where noted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    /// `true`: match only the anonymous caller (no identity). Cannot be combined with other
    /// fields. Without it, a matcher never matches the anonymous caller.
    #[serde(default, skip_serializing_if = "is_false")]
    pub anonymous: bool,
    /// Where the identity came from: `jwt`, `jwt_authn` or `mtls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<IdentitySource>>,
    /// Subject patterns: the token `sub`, or the SPIFFE id for mTLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<String>>,
    /// Issuer patterns (`iss`, or the SPIFFE trust domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuers: Option<Vec<String>>,
    /// Tenant patterns. A principal without a tenant never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Vec<String>>,
    /// Group patterns: matches when the principal is in any group any pattern matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Role patterns, as for `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Scope patterns, as for `groups` (any one scope is enough).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Claims, keyed by claim name (`email_verified`, `https://acme.com/org`) or by JSON
    /// pointer into the claims (`/org/tier`). Every key must match; a key matches when the
    /// claim equals any listed value (strings are patterns; a claim that is an array matches
    /// when any element does). A missing claim never matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<BTreeMap<String, Vec<Value>>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Identity sources a matcher can require (the anonymous caller is matched with
/// `anonymous: true` instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    Jwt,
    JwtAuthn,
    Mtls,
}

/// A constraint on one tool-call argument. Every check given must pass. The argument must be
/// present unless `optional` is true.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgumentSpec {
    /// JSON type the value must have.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<JsonType>,
    /// The value must be a string matching any of these patterns (`*` wildcard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patterns: Option<Vec<String>>,
    /// The value must equal one of these (strings, numbers, booleans or null; compared
    /// exactly, numbers by exact decimal value: `1` = `1.0` = `1e0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// The value must be a number ≥ this (compared exactly, by decimal value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<serde_json::Number>,
    /// The value must be a number ≤ this (compared exactly, by decimal value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<serde_json::Number>,
    /// The value must be a string of at most this many characters (Unicode scalar values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// `true`: an absent argument passes. Default `false`: an absent argument fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
}

/// JSON value types, as JSON Schema names them. `integer` is a number without a fractional
/// part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    Null,
}

impl JsonType {
    pub fn label(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
            JsonType::Null => "null",
        }
    }
}
