//! The filter configuration document: parse → validate → compile.
//!
//! Envoy hands the module its `filter_config` as bytes (a `google.protobuf.StringValue` holding
//! JSON). [`FilterConfig::from_json`] turns those bytes into an immutable, compiled config that
//! every worker thread shares read-only, or into [`ConfigErrors`] listing every problem with its
//! path and position. Unknown fields are errors everywhere: a typo must not silently disable a
//! control.

use crate::identity::{Identity, IdentitySpec};
use crate::policy::glob::Glob;
use crate::policy::Policy;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// One problem in a configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: a dotted path such as `limits.max_request_body_bytes` (empty for the root).
    pub path: String,
    pub message: String,
    /// 1-based position in the document, when the parser knows it.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl ConfigError {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// The same error with its path placed under `prefix` (e.g. `policy`), for a section
    /// embedded in a larger document.
    pub fn under(mut self, prefix: &str) -> ConfigError {
        self.path = match (prefix.is_empty(), self.path.is_empty(), self.path.starts_with('[')) {
            (true, _, _) => self.path,
            (false, true, _) => prefix.to_owned(),
            (false, false, true) => format!("{prefix}{}", self.path),
            (false, false, false) => format!("{prefix}.{}", self.path),
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "(root)" } else { &self.path };
        write!(f, "{path}: {}", self.message)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, " (line {l}, col {c})")?;
        }
        Ok(())
    }
}

/// Every problem found, in document order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid mcp_policy config: {} problem(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The document as written (serde model).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FilterConfigSpec {
    /// Logical name of the MCP server behind this filter: used in stats, metadata and logs.
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default, deserialize_with = "object")]
    pub limits: LimitsSpec,
    /// Who is calling: bearer JWTs, Envoy jwt_authn output, mTLS SPIFFE ids (docs/identity.md).
    #[serde(default, deserialize_with = "present")]
    pub identity: Option<IdentitySpec>,
    /// Per-tool RBAC (docs/policy.md).
    #[serde(default, deserialize_with = "present")]
    pub policy: Option<Box<RawValue>>,
    /// `true`: this filter intentionally judges nothing beyond well-formed JSON-RPC (no
    /// identity, no policy). Required when neither section is given, refused when one is: a
    /// config that judges nothing must say so, never end up that way by omission.
    #[serde(default)]
    pub pass_through: bool,
    #[serde(default, deserialize_with = "object")]
    pub upstream: UpstreamSpec,
    #[serde(default, deserialize_with = "object")]
    pub security: SecuritySpec,
    /// Principals cut off at once, whatever their tokens say.
    #[serde(default, deserialize_with = "object")]
    pub revoked: RevokedSpec,
    /// Test-only fault injection. Never set in production; loading it logs a warning.
    #[serde(default, deserialize_with = "present")]
    pub fault_injection: Option<FaultInjectionSpec>,
    /// One MCP endpoint over many backend servers (docs/virtual-server.md), by name: a route
    /// whose `mcp_policy.server` names one is served by it.
    #[serde(default, deserialize_with = "object")]
    pub virtual_servers: BTreeMap<String, crate::vserver::VirtualServerSpec>,
    /// Tool-definition integrity: scan, sanitize or hide poisoned definitions, pins and drift,
    /// per server (docs/tool-integrity.md).
    #[serde(default, deserialize_with = "present")]
    pub integrity: Option<crate::integrity::IntegritySpec>,
}

const NULL_SECTION: &str = "is null: a section that is present must be an object (leave the section out to omit it)";

/// An optional section that, when present, is never `null`: `"policy": null` must not read as
/// "no policy".
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    struct Present<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Present<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom(NULL_SECTION))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom(NULL_SECTION))
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            T::deserialize(d).map(Some)
        }
    }
    d.deserialize_option(Present(std::marker::PhantomData))
}

/// A section with defaults: absent means defaults, `null` is refused like any other type error.
fn object<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    present(d).map(Option::unwrap_or_default)
}

/// What the upstream MCP server receives about the caller.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSpec {
    /// Forward the client's `Authorization` header upstream. Off by default: MCP forbids token
    /// passthrough (the token was minted for the gateway, not for the server).
    pub pass_authorization: bool,
    /// Headers that carry the verified identity upstream. Any copy a client sends is removed
    /// first, so the upstream can trust them.
    #[serde(deserialize_with = "object")]
    pub identity_headers: IdentityHeadersSpec,
    /// A static `Authorization` value injected per MCP server (by server name).
    pub credentials: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeadersSpec {
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub groups: Option<String>,
}

impl Default for IdentityHeadersSpec {
    fn default() -> Self {
        Self {
            subject: Some("x-mcp-subject".into()),
            tenant: Some("x-mcp-tenant".into()),
            groups: Some("x-mcp-groups".into()),
        }
    }
}

/// Checks the MCP transport spec asks of every server (and so of a gateway in front of one):
/// DNS-rebinding protection by `Host` and `Origin`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySpec {
    /// `Host` (`:authority`) patterns accepted (`*` matches any run of characters, e.g.
    /// `localhost:*`). Empty: no check here (Envoy's virtual-host `domains` already choose).
    /// A request whose Host matches none gets 403.
    pub allowed_hosts: Vec<String>,
    /// `Origin` patterns accepted (e.g. `http://localhost:*`). A request carrying any other
    /// `Origin` gets 403. Empty: every request with an `Origin` is refused; requests without
    /// one (non-browser clients) are not affected.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RevokedSpec {
    /// Principal subjects (`sub`, or SPIFFE id) refused with 401.
    pub subjects: Vec<String>,
    /// Token ids (`jti`) refused with 401.
    pub token_ids: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSpec {
    /// Largest request body the module buffers and judges. Larger bodies get 413 with a
    /// JSON-RPC error: never forwarded unjudged.
    pub max_request_body_bytes: u64,
    /// Largest response body the module buffers when it must rewrite (lists).
    pub max_response_body_bytes: u64,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 1024 * 1024,
            max_response_body_bytes: 8 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultInjectionSpec {
    /// A request carrying this header makes the module panic in the hook the header's value
    /// names (`request_headers`, `request_body`, `response_headers`, `response_body`).
    pub panic_header: String,
}

/// The hooks fault injection can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    RequestHeaders,
    RequestBody,
    ResponseHeaders,
    ResponseBody,
}

impl Hook {
    pub fn from_name(s: &str) -> Option<Hook> {
        match s {
            "request_headers" => Some(Hook::RequestHeaders),
            "request_body" => Some(Hook::RequestBody),
            "response_headers" => Some(Hook::ResponseHeaders),
            "response_body" => Some(Hook::ResponseBody),
            _ => None,
        }
    }
}

/// The compiled, immutable configuration shared by all worker threads.
#[derive(Debug)]
pub struct FilterConfig {
    pub server: String,
    pub max_request_body_bytes: usize,
    pub max_response_body_bytes: usize,
    pub identity: Option<Identity>,
    pub policy: Option<Policy>,
    pub pass_authorization: bool,
    pub identity_headers: IdentityHeaders,
    /// Server name → `Authorization` value to inject.
    pub credentials: HashMap<String, String>,
    pub(crate) allowed_hosts: Vec<Glob>,
    pub(crate) allowed_origins: Vec<Glob>,
    pub revoked_subjects: HashSet<String>,
    pub revoked_token_ids: HashSet<String>,
    /// Lower-cased header name, when fault injection is on.
    pub panic_header: Option<String>,
    /// Virtual servers by name.
    pub virtual_servers: HashMap<String, crate::vserver::VirtualServer>,
    /// Tool-definition integrity, when configured.
    pub integrity: Option<crate::integrity::Integrity>,
    /// Problems that do not stop the config from loading (e.g. rules no request can reach).
    warnings: Vec<ConfigError>,
}

/// Largest `limits.max_*_bytes` accepted: the module buffers whole bodies, and a limit this
/// large already means "no limit" in practice; larger values are refused, not capped, so the
/// number written is the number enforced.
pub const MAX_BODY_LIMIT_BYTES: u64 = 1 << 30;

/// Lower-cased names of the identity headers sent upstream.
#[derive(Debug, Clone, Default)]
pub struct IdentityHeaders {
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub groups: Option<String>,
}

impl FilterConfig {
    /// Problems that do not stop the config from loading, each with its path (and, from
    /// [`FilterConfig::from_json`], its position): `mcp-xds-server check` prints them and its
    /// `/status` shows them.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// Whether a `Host`/`:authority` value passes `security.allowed_hosts`.
    pub fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty() || self.allowed_hosts.iter().any(|g| g.matches(&host.to_ascii_lowercase()))
    }

    /// Whether an `Origin` value passes `security.allowed_origins`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|g| g.matches(&origin.to_ascii_lowercase()))
    }
}

impl IdentityHeaders {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        [&self.subject, &self.tenant, &self.groups]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

impl FilterConfig {
    /// Parse, validate and compile. The document must be a JSON object; every problem found
    /// after parsing is given the line and column of the value its path names.
    pub fn from_json(bytes: &[u8]) -> Result<FilterConfig, ConfigErrors> {
        let spec = parse_spec(bytes)?;
        let place = |e: &mut ConfigError| {
            if e.line.is_none() {
                if let Some((l, c)) = crate::locate::locate(bytes, &e.path) {
                    e.line = Some(l);
                    e.column = Some(c);
                }
            }
        };
        match Self::compile(spec) {
            Ok(mut c) => {
                c.warnings.iter_mut().for_each(place);
                Ok(c)
            }
            Err(mut e) => {
                e.0.iter_mut().for_each(place);
                Err(e)
            }
        }
    }

    pub fn compile(spec: FilterConfigSpec) -> Result<FilterConfig, ConfigErrors> {
        let mut errors = Vec::new();
        let mut err = |path: &str, message: String| {
            errors.push(ConfigError {
                path: path.into(),
                message,
                line: None,
                column: None,
            })
        };
        let server = spec.server.unwrap_or_else(|| "default".to_owned());
        if server.is_empty()
            || !server
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            err(
                "server",
                format!("must be non-empty and use only [A-Za-z0-9_-], got {server:?}"),
            );
        }
        let limits = spec.limits;
        for (field, v) in [
            ("max_request_body_bytes", limits.max_request_body_bytes),
            ("max_response_body_bytes", limits.max_response_body_bytes),
        ] {
            if v == 0 {
                err(&format!("limits.{field}"), "must be greater than 0".into());
            } else if v > MAX_BODY_LIMIT_BYTES {
                err(
                    &format!("limits.{field}"),
                    format!("must be at most {MAX_BODY_LIMIT_BYTES} (1 GiB), got {v}: the module buffers the whole body in memory"),
                );
            }
        }
        match (
            spec.pass_through,
            spec.identity.is_some(),
            spec.policy.is_some() || spec.integrity.is_some(),
        ) {
            (false, false, false) => err(
                "",
                "this config judges nothing beyond well-formed JSON-RPC (no policy, no identity): \
                 add a policy or identity section, or set \"pass_through\": true if that is intended"
                    .into(),
            ),
            (true, true, _) | (true, _, true) => err(
                "pass_through",
                "contradicts the policy/identity section: pass_through: true means this filter judges \
                 nothing; remove pass_through or the section(s)"
                    .into(),
            ),
            _ => {}
        }
        // Whether any identity source can give a principal a tenant: `tenants` matchers are dead
        // without one.
        let maps_tenant = spec.identity.as_ref().is_some_and(|i| {
            i.providers.iter().any(|p| p.claims.tenant.is_some())
                || i.jwt_authn.as_ref().is_some_and(|j| j.claims.tenant.is_some())
        });
        let identity = match spec.identity {
            None => None,
            Some(ispec) => match Identity::compile(ispec) {
                Ok(i) => Some(i),
                Err(errs) => {
                    for (path, message) in errs {
                        let path = if path.starts_with("identity") {
                            path
                        } else {
                            format!("identity.{path}")
                        };
                        err(&path, message);
                    }
                    None
                }
            },
        };
        let mut warnings = Vec::new();
        let policy = match spec.policy {
            None => None,
            Some(raw) => {
                let compiled = crate::policy::parse_spec(raw.get().as_bytes()).and_then(|pspec| {
                    let mut dead = Vec::new();
                    if !maps_tenant {
                        for (i, r) in pspec.rules.iter().enumerate() {
                            for (k, m) in r.principals.iter().enumerate() {
                                if m.tenants.is_some() {
                                    dead.push(ConfigError::at(
                                        format!("rules[{i}].principals[{k}].tenants"),
                                        "no identity source maps a tenant claim (identity.providers[].claims.tenant \
                                         or identity.jwt_authn.claims.tenant), so this matcher can never match: \
                                         map a tenant claim or remove `tenants`",
                                    ));
                                }
                            }
                        }
                    }
                    let p = Policy::compile(pspec);
                    match (p, dead.is_empty()) {
                        (Ok(p), true) => Ok(p),
                        (Ok(_), false) => Err(dead),
                        (Err(mut e), _) => {
                            e.extend(dead);
                            Err(e)
                        }
                    }
                });
                match compiled {
                    Ok(p) => {
                        warnings.extend(p.warnings().iter().map(|w| w.clone().under("policy")));
                        Some(p)
                    }
                    Err(errs) => {
                        for e in errs {
                            // Positions inside the embedded policy are relative to it: from_json
                            // locates the whole path in the whole document.
                            let e = e.under("policy");
                            err(&e.path, e.message);
                        }
                        None
                    }
                }
            }
        };
        let header_name = |path: &str, v: &Option<String>, err: &mut dyn FnMut(&str, String)| -> Option<String> {
            let h = v.as_ref()?.to_ascii_lowercase();
            if !is_header_name(&h) || h.starts_with(':') {
                err(path, format!("is not a valid header name: {h:?}"));
            }
            Some(h)
        };
        let ih = &spec.upstream.identity_headers;
        let identity_headers = IdentityHeaders {
            subject: header_name("upstream.identity_headers.subject", &ih.subject, &mut err),
            tenant: header_name("upstream.identity_headers.tenant", &ih.tenant, &mut err),
            groups: header_name("upstream.identity_headers.groups", &ih.groups, &mut err),
        };
        for h in identity_headers.iter() {
            if h == "authorization" || h == "host" || h == "content-length" {
                err("upstream.identity_headers", format!("{h:?} cannot carry identity"));
            }
        }
        for (server, value) in &spec.upstream.credentials {
            if value.is_empty() || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                err(
                    &format!("upstream.credentials.{server}"),
                    "must be a non-empty header value without CR, LF or NUL".into(),
                );
            }
        }
        for (field, list) in [
            ("allowed_hosts", &spec.security.allowed_hosts),
            ("allowed_origins", &spec.security.allowed_origins),
        ] {
            for (i, o) in list.iter().enumerate() {
                if o.is_empty() || o.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                    err(
                        &format!("security.{field}[{i}]"),
                        format!("must be a non-empty pattern without spaces or control characters, got {o:?}"),
                    );
                } else if let Some(why) = crate::policy::glob::unsupported(o, crate::policy::glob::Text::Free) {
                    err(&format!("security.{field}[{i}]"), format!("{o:?}: {why}"));
                }
            }
        }
        let panic_header = match spec.fault_injection {
            None => None,
            Some(f) => {
                let h = f.panic_header.to_ascii_lowercase();
                if !is_header_name(&h) {
                    err(
                        "fault_injection.panic_header",
                        format!("is not a valid header name: {:?}", f.panic_header),
                    );
                }
                Some(h)
            }
        };
        let integrity = match spec.integrity {
            None => None,
            Some(ispec) => match crate::integrity::Integrity::compile(ispec) {
                Ok(i) => Some(i),
                Err(es) => {
                    for (path, message) in es {
                        err(&path, message);
                    }
                    None
                }
            },
        };
        let mut virtual_servers = HashMap::new();
        for (name, vspec) in spec.virtual_servers {
            if name == server {
                err(
                    &format!("virtual_servers.{name}"),
                    format!("{name:?} is also this config's `server`: give the virtual server its own name"),
                );
            }
            match crate::vserver::VirtualServer::compile(&name, vspec) {
                Ok(v) => {
                    virtual_servers.insert(name, v);
                }
                Err(es) => {
                    for (path, message) in es {
                        let path = if path.is_empty() {
                            format!("virtual_servers.{name}")
                        } else {
                            format!("virtual_servers.{name}.{path}")
                        };
                        err(&path, message);
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(FilterConfig {
            server,
            virtual_servers,
            integrity,
            // At most MAX_BODY_LIMIT_BYTES (checked above): fits a usize, and + 1 cannot overflow.
            max_request_body_bytes: usize::try_from(limits.max_request_body_bytes).unwrap_or(usize::MAX / 2),
            max_response_body_bytes: usize::try_from(limits.max_response_body_bytes).unwrap_or(usize::MAX / 2),
            warnings,
            identity,
            policy,
            pass_authorization: spec.upstream.pass_authorization,
            identity_headers,
            credentials: spec.upstream.credentials.into_iter().collect(),
            allowed_hosts: spec
                .security
                .allowed_hosts
                .iter()
                .map(|p| Glob::new(&p.to_ascii_lowercase()))
                .collect(),
            allowed_origins: spec
                .security
                .allowed_origins
                .iter()
                .map(|p| Glob::new(&p.to_ascii_lowercase()))
                .collect(),
            revoked_subjects: spec.revoked.subjects.into_iter().collect(),
            revoked_token_ids: spec.revoked.token_ids.into_iter().collect(),
            panic_header,
        })
    }
}

/// Parse the JSON document into its serde model, naming the path of the first structural
/// problem (serde stops at the first one; semantic checks in `compile` report all of theirs).
pub fn parse_spec(bytes: &[u8]) -> Result<FilterConfigSpec, ConfigErrors> {
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let refuse = |message: String, at: usize| {
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        let column = 1 + at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        Err(ConfigErrors(vec![ConfigError {
            path: String::new(),
            message,
            line: Some(line),
            column: Some(column),
        }]))
    };
    let Some(first) = first else {
        return refuse(
            format!(
                "the config is empty ({} byte(s){}): a filter config is a JSON object; for a filter that \
             intentionally judges nothing, write {{\"pass_through\": true}}",
                bytes.len(),
                if bytes.is_empty() { "" } else { ", whitespace only" }
            ),
            0,
        );
    };
    if bytes[first] != b'{' {
        let got = match bytes[first] {
            b'[' => "an array",
            b'"' => "a string",
            b'n' => "null",
            b't' | b'f' => "a boolean",
            b'-' | b'0'..=b'9' => "a number",
            _ => "something that is not JSON",
        };
        return refuse(format!("the config must be a JSON object, got {got}"), first);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, FilterConfigSpec>(de) {
        Ok(spec) => Ok(spec),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = if path == "." { String::new() } else { path };
            Err(ConfigErrors(vec![ConfigError {
                path,
                message: strip_position(&inner.to_string()),
                line: Some(inner.line()),
                column: Some(inner.column()),
            }]))
        }
    }
}

fn is_header_name(h: &str) -> bool {
    !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// serde_json appends " at line L column C" to its messages; we report position separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[allow(dead_code)]
fn _assert_sync() {
    fn is_sync<T: Send + Sync>() {}
    is_sync::<FilterConfig>();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(doc: &str) -> Vec<ConfigError> {
        match FilterConfig::from_json(doc.as_bytes()) {
            Ok(_) => panic!("accepted: {doc}"),
            Err(e) => e.0,
        }
    }

    fn ok(doc: &str) -> FilterConfig {
        match FilterConfig::from_json(doc.as_bytes()) {
            Ok(c) => c,
            Err(e) => panic!("{doc}: {e}"),
        }
    }

    const POLICY: &str = r#""policy": {"rules": []}"#;

    #[test]
    fn an_empty_or_whitespace_only_config_is_refused_naming_pass_through() {
        for doc in ["", "   ", "\n\t\r\n"] {
            let e = errors(doc);
            assert_eq!(e.len(), 1, "{doc:?}");
            assert_eq!(e[0].path, "");
            assert!(e[0].message.contains("the config is empty"), "{}", e[0].message);
            assert!(e[0].message.contains("pass_through"), "{}", e[0].message);
            assert_eq!((e[0].line, e[0].column), (Some(1), Some(1)));
        }
    }

    #[test]
    fn a_config_that_is_not_an_object_is_refused_with_what_it_is() {
        for (doc, got) in [
            ("[]", "an array"),
            ("null", "null"),
            ("3", "a number"),
            ("\"x\"", "a string"),
            ("\n  true", "a boolean"),
        ] {
            let e = errors(doc);
            assert_eq!(e.len(), 1, "{doc}");
            assert_eq!(e[0].message, format!("the config must be a JSON object, got {got}"));
        }
        assert_eq!(errors("\n  true")[0].line, Some(2));
        assert_eq!(errors("\n  true")[0].column, Some(3));
    }

    #[test]
    fn a_null_section_is_refused_not_read_as_absent() {
        for section in [
            "policy",
            "identity",
            "limits",
            "upstream",
            "security",
            "revoked",
            "fault_injection",
        ] {
            let doc =
                format!("{{{POLICY}, \"{section}\": null}}").replace(&format!("{POLICY}, \"policy\""), "\"policy\"");
            let e = errors(&doc);
            assert_eq!(e.len(), 1, "{doc}: {e:?}");
            assert_eq!(e[0].path, section, "{doc}");
            assert!(
                e[0].message.contains("a section that is present must be an object"),
                "{}",
                e[0].message
            );
            assert!(e[0].line.is_some(), "{doc}");
        }
        let e = errors(r#"{"pass_through": true, "upstream": {"identity_headers": null}}"#);
        assert_eq!(e[0].path, "upstream.identity_headers");
    }

    #[test]
    fn a_config_with_neither_policy_nor_identity_must_say_pass_through() {
        let e = errors(r#"{"server": "demo"}"#);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "");
        assert!(
            e[0].message
                .contains("add a policy or identity section, or set \"pass_through\": true"),
            "{}",
            e[0].message
        );
        let c = ok(r#"{"server": "demo", "pass_through": true}"#);
        assert_eq!(c.server, "demo");
        assert!(c.policy.is_none() && c.identity.is_none());
        assert!(ok(&format!("{{{POLICY}}}")).policy.is_some());
        assert!(ok(r#"{"identity": {}}"#).identity.is_some());
    }

    #[test]
    fn pass_through_together_with_a_policy_or_identity_is_a_contradiction() {
        for doc in [
            format!("{{\"pass_through\": true, {POLICY}}}"),
            r#"{"pass_through": true, "identity": {}}"#.to_owned(),
        ] {
            let e = errors(&doc);
            assert_eq!(e.len(), 1, "{doc}");
            assert_eq!(e[0].path, "pass_through");
            assert!(e[0].message.contains("contradicts"), "{}", e[0].message);
            assert_eq!((e[0].line, e[0].column), (Some(1), Some(18)));
        }
        // pass_through: false is the default and says nothing.
        assert!(ok(&format!("{{\"pass_through\": false, {POLICY}}}")).policy.is_some());
    }

    #[test]
    fn defaults_apply_to_a_pass_through_config() {
        let c = ok(r#"{"pass_through": true}"#);
        assert_eq!(c.server, "default");
        assert_eq!(c.max_request_body_bytes, 1024 * 1024);
        assert!(c.panic_header.is_none());
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn unknown_field_is_reported_with_path_and_position() {
        let e = errors("{\n  \"limits\": {\n    \"max_request_bytes\": 5\n  }\n}");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "limits.max_request_bytes");
        assert!(
            e[0].message.contains("unknown field `max_request_bytes`"),
            "{}",
            e[0].message
        );
        assert_eq!(e[0].line, Some(3));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = errors(r#"{"limits":{"max_request_body_bytes":"big"}}"#);
        assert_eq!(e[0].path, "limits.max_request_body_bytes");
    }

    #[test]
    fn all_semantic_problems_are_reported_at_once_with_their_positions() {
        let e = errors(
            "{\"pass_through\": true,\n \"server\":\"bad name\",\n \"limits\":{\"max_request_body_bytes\":0,\n \"max_response_body_bytes\":0}}",
        );
        let got: Vec<_> = e.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert_eq!(
            got,
            [
                ("server", Some(2)),
                ("limits.max_request_body_bytes", Some(3)),
                ("limits.max_response_body_bytes", Some(4))
            ]
        );
        assert_eq!(e[0].column, Some(11));
    }

    #[test]
    fn body_limits_above_one_gibibyte_are_refused_so_adding_one_never_overflows() {
        let e = errors(&format!(
            r#"{{"pass_through": true, "limits": {{"max_request_body_bytes": {}, "max_response_body_bytes": 18446744073709551615}}}}"#,
            MAX_BODY_LIMIT_BYTES + 1
        ));
        let paths: Vec<_> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["limits.max_request_body_bytes", "limits.max_response_body_bytes"]
        );
        assert!(e[0].message.contains("at most 1073741824 (1 GiB)"), "{}", e[0].message);
        let c = ok(&format!(
            r#"{{"pass_through": true, "limits": {{"max_request_body_bytes": {MAX_BODY_LIMIT_BYTES}}}}}"#
        ));
        assert_eq!(c.max_request_body_bytes, 1 << 30);
        assert!(c.max_request_body_bytes.checked_add(1).is_some());
    }

    #[test]
    fn fault_injection_header_is_lowercased() {
        let c = ok(r#"{"pass_through": true, "fault_injection":{"panic_header":"X-Test-Panic"}}"#);
        assert_eq!(c.panic_header.as_deref(), Some("x-test-panic"));
    }

    #[test]
    fn a_policy_error_carries_its_line_in_the_whole_document() {
        let e = errors("{\n \"policy\": {\"rules\": [\n  {\"id\": \"r\", \"effect\": \"allow\", \"principals\": [{}],\n   \"tools\": [\"delete_?\"]}]}\n}");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "policy.rules[0].tools[0]");
        assert!(e[0].message.contains("only `*`"), "{}", e[0].message);
        assert_eq!((e[0].line, e[0].column), (Some(4), Some(14)));
    }

    #[test]
    fn tenant_matchers_are_refused_when_no_identity_source_maps_a_tenant() {
        let rule = r#"{"id": "t", "effect": "allow", "principals": [{"groups": ["a"]}, {"tenants": ["acme"]}], "tools": ["*"]}"#;
        let e = errors(&format!(r#"{{"policy": {{"rules": [{rule}]}}}}"#));
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "policy.rules[0].principals[1].tenants");
        assert!(
            e[0].message.contains("no identity source maps a tenant claim"),
            "{}",
            e[0].message
        );
        assert!(e[0].line.is_some());
        let e = errors(&format!(
            r#"{{"identity": {{"jwt_authn": {{"payload_header": "x-jwt"}}}}, "policy": {{"rules": [{rule}]}}}}"#
        ));
        assert_eq!(e[0].path, "policy.rules[0].principals[1].tenants");
        // Mapped by jwt_authn: fine.
        ok(&format!(
            r#"{{"identity": {{"jwt_authn": {{"payload_header": "x-jwt", "claims": {{"tenant": "tid"}}}}}}, "policy": {{"rules": [{rule}]}}}}"#
        ));
    }

    #[test]
    fn a_rule_shadowed_by_a_deny_all_rule_is_a_warning_with_its_position() {
        let c = ok(concat!(
            "{\"policy\": {\"rules\": [\n",
            "  {\"id\": \"ok\", \"effect\": \"allow\", \"principals\": [{}], \"tools\": [\"search\"]},\n",
            "  {\"id\": \"none\", \"effect\": \"deny\", \"principals\": [{}], \"tools\": [\"*\"]}\n",
            "]}}"
        ));
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "policy.rules[0].tools");
        assert!(
            w[0].message.contains("shadowed by rules[1] (\"none\")"),
            "{}",
            w[0].message
        );
        assert_eq!(w[0].line, Some(2));
    }

    #[test]
    fn security_patterns_with_foreign_syntax_are_refused() {
        let e = errors(r#"{"pass_through": true, "security": {"allowed_hosts": ["re:.*", "[::1]:*"]}}"#);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "security.allowed_hosts[0]");
    }
}
