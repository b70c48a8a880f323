//! The `limits` section of the policy document as written (serde + JSON Schema model).
//! Meaning is checked by [`super::Limits::compile`]; `docs/limits.md` is the reference.

use crate::policy::PrincipalSpec;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rate limits, concurrency caps and cost budgets on `tools/call`, per principal, tenant or
/// server. Decided in the module (local limits) or counted fleet-wide by `mcp-ratelimit`
/// (global limits). Each server's policy `mode` applies: in `audit` a call over a limit passes
/// and is logged `would_limit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// What one call of a tool costs in budget units, first matching entry wins; a tool no
    /// entry matches costs 1. Call-count limits ignore costs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub costs: Vec<CostSpec>,
    /// The limits. Every limit that applies to a call must admit it.
    #[serde(default)]
    pub rules: Vec<LimitRuleSpec>,
}

/// The cost of calls to some tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostSpec {
    /// Server names (declared under `servers`) or `"*"`. Default: `["*"]`.
    #[serde(default = "all")]
    pub servers: Vec<String>,
    /// Tool name patterns (`*` wildcard).
    pub tools: Vec<String>,
    /// Units one call costs, 0 to 1,000,000.
    pub cost: u64,
}

fn all() -> Vec<String> {
    vec!["*".to_owned()]
}

/// One limit: which calls it covers (server × principal × tool), whose counter they go to
/// (`per`), and exactly one of `calls`, `budget` or `concurrent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitRuleSpec {
    /// Unique among the limits; `[A-Za-z0-9_.:-]`, at most 128 characters. Named in the
    /// JSON-RPC error, the access log and the counters.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Server names (declared under `servers`) or `"*"`. Default: `["*"]`.
    #[serde(default = "all")]
    pub servers: Vec<String>,
    /// Who the limit applies to (any matcher matches), as in policy rules. Default: `[{}]`,
    /// every authenticated principal.
    #[serde(default = "everyone")]
    pub principals: Vec<PrincipalSpec>,
    /// Tool name patterns. Default: `["*"]`.
    #[serde(default = "all")]
    pub tools: Vec<String>,
    /// Whose counter a call goes to: one per `subject` (default), per `tenant` (a principal
    /// without a tenant is not covered), per `server`, or one per `tool` name.
    #[serde(default)]
    pub per: Per,
    /// `local` (default): counted in each Envoy, shared by its workers. `global`: counted
    /// fleet-wide by `mcp-ratelimit` in Redis, through Envoy's rate-limit filter.
    #[serde(default)]
    pub scope: Scope,
    /// At most `max` calls per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<WindowSpec>,
    /// At most `max` cost units per window (see `costs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<WindowSpec>,
    /// At most this many calls in flight at once (local scope only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u64>,
}

fn everyone() -> Vec<PrincipalSpec> {
    vec![PrincipalSpec::default()]
}

/// A count per fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// 1 to 1,000,000,000.
    pub max: u64,
    /// `second`, `minute`, `hour` or `day`: fixed windows aligned to the epoch (a day is a UTC
    /// day).
    pub per: Window,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    pub fn seconds(self) -> u64 {
        match self {
            Window::Second => 1,
            Window::Minute => 60,
            Window::Hour => 3600,
            Window::Day => 86_400,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    #[default]
    Subject,
    Tenant,
    Server,
    Tool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Local,
    Global,
}
