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
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Who is calling: bearer JWTs, Envoy jwt_authn output, mTLS SPIFFE ids (docs/identity.md).
    #[serde(default)]
    pub identity: Option<IdentitySpec>,
    /// Per-tool RBAC (docs/policy.md). Absent: every well-formed MCP request is allowed and
    /// lists are not filtered (the module still parses, counts and logs).
    #[serde(default)]
    pub policy: Option<Box<RawValue>>,
    #[serde(default)]
    pub upstream: UpstreamSpec,
    #[serde(default)]
    pub security: SecuritySpec,
    /// Principals cut off at once, whatever their tokens say.
    #[serde(default)]
    pub revoked: RevokedSpec,
    /// Test-only fault injection. Never set in production; loading it logs a warning.
    #[serde(default)]
    pub fault_injection: Option<FaultInjectionSpec>,
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
}

/// Lower-cased names of the identity headers sent upstream.
#[derive(Debug, Clone, Default)]
pub struct IdentityHeaders {
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub groups: Option<String>,
}

impl FilterConfig {
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
    /// Parse, validate and compile. Empty input means "all defaults".
    pub fn from_json(bytes: &[u8]) -> Result<FilterConfig, ConfigErrors> {
        let spec = parse_spec(bytes)?;
        Self::compile(spec)
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
        if limits.max_request_body_bytes == 0 {
            err("limits.max_request_body_bytes", "must be greater than 0".into());
        }
        if limits.max_response_body_bytes == 0 {
            err("limits.max_response_body_bytes", "must be greater than 0".into());
        }
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
        let policy = match spec.policy {
            None => None,
            Some(raw) => match Policy::from_json(raw.get().as_bytes()) {
                Ok(p) => Some(p),
                Err(errs) => {
                    for e in errs {
                        // Positions inside the embedded policy are relative to it: report the path only.
                        let e = e.under("policy");
                        err(&e.path, e.message);
                    }
                    None
                }
            },
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
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(FilterConfig {
            server,
            max_request_body_bytes: usize::try_from(limits.max_request_body_bytes).unwrap_or(usize::MAX),
            max_response_body_bytes: usize::try_from(limits.max_response_body_bytes).unwrap_or(usize::MAX),
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
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(FilterConfigSpec::default());
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

    #[test]
    fn empty_config_means_defaults() {
        let c = FilterConfig::from_json(b"").unwrap();
        assert_eq!(c.server, "default");
        assert_eq!(c.max_request_body_bytes, 1024 * 1024);
        assert!(c.panic_header.is_none());
    }

    #[test]
    fn unknown_field_is_reported_with_path_and_position() {
        let e = FilterConfig::from_json(b"{\n  \"limits\": {\n    \"max_request_bytes\": 5\n  }\n}").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].path, "limits.max_request_bytes");
        assert!(
            e.0[0].message.contains("unknown field `max_request_bytes`"),
            "{}",
            e.0[0].message
        );
        assert_eq!(e.0[0].line, Some(3));
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = FilterConfig::from_json(br#"{"limits":{"max_request_body_bytes":"big"}}"#).unwrap_err();
        assert_eq!(e.0[0].path, "limits.max_request_body_bytes");
    }

    #[test]
    fn all_semantic_problems_are_reported_at_once() {
        let e = FilterConfig::from_json(
            br#"{"server":"bad name","limits":{"max_request_body_bytes":0,"max_response_body_bytes":0}}"#,
        )
        .unwrap_err();
        let paths: Vec<_> = e.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server",
                "limits.max_request_body_bytes",
                "limits.max_response_body_bytes"
            ]
        );
        assert!(e.to_string().contains("3 problem(s)"));
    }

    #[test]
    fn fault_injection_header_is_lowercased() {
        let c = FilterConfig::from_json(br#"{"fault_injection":{"panic_header":"X-Test-Panic"}}"#).unwrap();
        assert_eq!(c.panic_header.as_deref(), Some("x-test-panic"));
    }
}
