//! The filter configuration document: parse → validate → compile.
//!
//! Envoy hands the module its `filter_config` as bytes (a `google.protobuf.StringValue` holding
//! JSON). [`FilterConfig::from_json`] turns those bytes into an immutable, compiled config that
//! every worker thread shares read-only, or into [`ConfigErrors`] listing every problem with its
//! path and position. Unknown fields are errors everywhere: a typo must not silently disable a
//! control.

use serde::Deserialize;
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
    /// Test-only fault injection. Never set in production; loading it logs a warning.
    #[serde(default)]
    pub fault_injection: Option<FaultInjectionSpec>,
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
#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub server: String,
    pub max_request_body_bytes: usize,
    pub max_response_body_bytes: usize,
    /// Lower-cased header name, when fault injection is on.
    pub panic_header: Option<String>,
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
        let panic_header = match spec.fault_injection {
            None => None,
            Some(f) => {
                let h = f.panic_header.to_ascii_lowercase();
                if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
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
