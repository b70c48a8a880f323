//! The audit record: what one request through the gateway was, built from Envoy's access-log
//! entry (`envoy.data.accesslog.v3.HTTPAccessLogEntry`) and the module's dynamic metadata
//! (namespace `mcp_policy`). Field by field in `docs/audit.md`.

use envoy_types::pb::envoy::data::accesslog::v3::HttpAccessLogEntry;
use envoy_types::pb::google::protobuf::{value::Kind, Struct};
use serde::{Deserialize, Serialize};

use crate::time::rfc3339;

/// Record format version (the `v` field).
pub const VERSION: u32 = 1;

/// One audited request. Serialised in this field order (serde keeps declaration order), one
/// JSON object per line; `prev` and `hash` are filled in by the chain ([`crate::chain`]).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub v: u32,
    /// Position in the chain, from 1, no gaps.
    pub seq: u64,
    /// When Envoy started the request (UTC, microseconds).
    pub time: String,
    /// W3C trace id (32 hex) from the request's `traceparent`; else Envoy's request id.
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub principal: Principal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jsonrpc_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// `sha256:<hex>` of the canonical JSON of `params.arguments` (`tools/call`) or `params`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_digest: Option<String>,
    /// `allow`, `deny`, `audit_deny` (audit mode: would have been denied), `reject`; absent when the module judged nothing (e.g. a
    /// request refused before its body was read, or a non-MCP path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_refusal: Option<String>,
    pub http: Http,
    /// Envoy node id and access-log name (from the stream's first message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Hash of the previous record (64 zero hex digits for the first).
    pub prev: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Principal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups: Vec<String>,
    /// How the principal was established (`jwt`, `jwt_authn`, `mtls`, ...), when the module says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Http {
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub authority: String,
    /// Status Envoy answered downstream with (0: none, e.g. reset).
    pub status: u32,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub details: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub upstream_cluster: String,
    /// Total duration, and time to the upstream's first byte when there was an upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_ttfb_us: Option<u64>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// The request headers the Envoy access logger must be told to send
/// (`additional_request_headers_to_log`); `x-request-id` arrives as `request_id`.
pub const LOGGED_REQUEST_HEADERS: [&str; 2] = ["traceparent", "x-mcp-groups"];

fn string_of(s: &Struct, key: &str) -> Option<String> {
    match s.fields.get(key)?.kind.as_ref()? {
        Kind::StringValue(v) => Some(v.clone()),
        Kind::NumberValue(n) => Some(if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", *n as i64)
        } else {
            n.to_string()
        }),
        Kind::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The 32-hex trace id of a W3C `traceparent` (`00-<trace>-<span>-<flags>`), if well formed
/// and not all zeros.
pub fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0'))
    .then_some(trace)
}

fn duration_us(d: &envoy_types::pb::google::protobuf::Duration) -> u64 {
    (d.seconds.max(0) as u64) * 1_000_000 + (d.nanos.max(0) as u64) / 1000
}

impl Record {
    /// Build a record (without `seq`/`prev`) from one HTTP access-log entry.
    pub fn from_entry(e: &HttpAccessLogEntry, node: Option<&str>) -> Record {
        let common = e.common_properties.clone().unwrap_or_default();
        let req = e.request.clone().unwrap_or_default();
        let resp = e.response.clone().unwrap_or_default();
        let md = common
            .metadata
            .as_ref()
            .and_then(|m| m.filter_metadata.get("mcp_policy"))
            .cloned()
            .unwrap_or_default();
        let time = common
            .start_time
            .as_ref()
            .map(|t| rfc3339(t.seconds, t.nanos))
            .unwrap_or_else(crate::time::now);
        let traceparent = req.request_headers.get("traceparent").cloned();
        let request_id = (!req.request_id.is_empty()).then(|| req.request_id.clone());
        let trace_id = traceparent
            .as_deref()
            .and_then(trace_id_of)
            .map(str::to_string)
            .or_else(|| request_id.clone())
            .unwrap_or_default();
        let groups = req
            .request_headers
            .get("x-mcp-groups")
            .map(|g| {
                g.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let method = envoy_types::pb::envoy::config::core::v3::RequestMethod::try_from(req.request_method)
            .map(|m| m.as_str_name().to_string())
            .unwrap_or_default();
        let ttfb = common.time_to_first_upstream_rx_byte.as_ref().map(duration_us);
        Record {
            v: VERSION,
            seq: 0,
            time,
            trace_id,
            traceparent,
            request_id,
            principal: Principal {
                subject: string_of(&md, "principal"),
                tenant: string_of(&md, "tenant"),
                groups,
                source: string_of(&md, "identity_source"),
            },
            server: string_of(&md, "server"),
            virtual_server: string_of(&md, "virtual_server"),
            backend: string_of(&md, "backend"),
            method: string_of(&md, "method"),
            target: string_of(&md, "target"),
            jsonrpc_id: string_of(&md, "jsonrpc_id"),
            batch_size: string_of(&md, "batch_size").and_then(|s| s.parse().ok()),
            args_digest: string_of(&md, "args_digest"),
            decision: string_of(&md, "decision"),
            reason: string_of(&md, "reason"),
            rule: string_of(&md, "rule"),
            mode: string_of(&md, "mode"),
            policy_version: string_of(&md, "policy_version"),
            response_refusal: string_of(&md, "response_refusal"),
            http: Http {
                method,
                path: req.path,
                authority: req.authority,
                status: resp.response_code.map(|c| c.value).unwrap_or(0),
                details: resp.response_code_details,
                upstream_cluster: common.upstream_cluster,
                duration_us: common.duration.as_ref().map(duration_us),
                upstream_ttfb_us: ttfb,
                bytes_received: req.request_headers_bytes + req.request_body_bytes,
                bytes_sent: resp.response_headers_bytes + resp.response_body_bytes,
            },
            node: node.map(str::to_string),
            prev: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::Metadata;
    use envoy_types::pb::envoy::data::accesslog::v3::{AccessLogCommon, HttpRequestProperties, HttpResponseProperties};
    use envoy_types::pb::google::protobuf::{Timestamp, UInt32Value, Value};

    fn s(v: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(v.into())),
        }
    }

    #[test]
    fn traceparent_parsing() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(
            trace_id_of("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id_of("garbage"), None);
    }

    #[test]
    fn builds_from_an_entry() {
        let mut md = Struct::default();
        for (k, v) in [
            ("server", "demo"),
            ("method", "tools/call"),
            ("target", "delete_branch"),
            ("principal", "alice"),
            ("tenant", "acme"),
            ("decision", "deny"),
            ("rule", "no-deletes"),
            ("args_digest", "sha256:ab"),
        ] {
            md.fields.insert(k.into(), s(v));
        }
        md.fields.insert(
            "batch_size".into(),
            Value {
                kind: Some(Kind::NumberValue(3.0)),
            },
        );
        let mut meta = Metadata::default();
        meta.filter_metadata.insert("mcp_policy".into(), md);
        let mut req = HttpRequestProperties {
            request_method: 3,
            path: "/mcp".into(),
            request_id: "rid-1".into(),
            ..Default::default()
        };
        req.request_headers.insert("x-mcp-groups".into(), "dev, ops".into());
        let e = HttpAccessLogEntry {
            common_properties: Some(AccessLogCommon {
                metadata: Some(meta),
                start_time: Some(Timestamp {
                    seconds: 0,
                    nanos: 5_000,
                }),
                ..Default::default()
            }),
            request: Some(req),
            response: Some(HttpResponseProperties {
                response_code: Some(UInt32Value { value: 200 }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = Record::from_entry(&e, Some("n1"));
        assert_eq!(r.time, "1970-01-01T00:00:00.000005Z");
        assert_eq!(r.trace_id, "rid-1", "no traceparent: the request id");
        assert_eq!(r.principal.subject.as_deref(), Some("alice"));
        assert_eq!(r.principal.groups, vec!["dev", "ops"]);
        assert_eq!(r.target.as_deref(), Some("delete_branch"));
        assert_eq!(r.batch_size, Some(3));
        assert_eq!(r.http.method, "POST");
        assert_eq!(r.http.status, 200);
    }
}
