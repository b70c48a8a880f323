//! The one place that turns a refusal into an HTTP status plus a JSON-RPC error body.
//!
//! Every local reply the module sends is built here, so the status/code pairs documented in
//! `docs/design/error-codes.md` cannot drift apart across call sites.

use serde_json::Value;

/// A complete local reply: what Envoy's `send_response` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Envoy's response-code details (shows as `%RESPONSE_CODE_DETAILS%` in access logs).
    /// Must be a single token: no spaces.
    pub details: &'static str,
}

/// A JSON-RPC error reply. `id` is the raw JSON of the request id (`None` → `null`, as
/// JSON-RPC requires when the id could not be determined).
pub fn jsonrpc_error(
    status: u16,
    details: &'static str,
    id: Option<&str>,
    code: i32,
    message: &str,
    data: Option<Value>,
) -> Reply {
    Reply {
        status,
        headers: vec![("content-type", "application/json".to_owned())],
        body: jsonrpc_error_body(id, code, message, data),
        details,
    }
}

/// Just the JSON-RPC error object text, e.g. for one element of a batch reply.
pub fn jsonrpc_error_body(id: Option<&str>, code: i32, message: &str, data: Option<Value>) -> Vec<u8> {
    // Written directly (no intermediate `Map`): a refusal is on the request path.
    let mut out = Vec::with_capacity(64 + message.len());
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id.unwrap_or("null").as_bytes());
    out.extend_from_slice(br#","error":{"code":"#);
    out.extend_from_slice(code.to_string().as_bytes());
    out.extend_from_slice(br#","message":"#);
    // Serializing a `&str` or a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, message);
    if let Some(data) = data {
        out.extend_from_slice(br#","data":"#);
        let _ = serde_json::to_writer(&mut out, &data);
    }
    out.extend_from_slice(b"}}");
    out
}

/// A JSON array of already-serialized JSON values (batch bodies and answers).
pub fn join_array<'a>(items: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

/// A plain-text HTTP error for non-JSON-RPC paths (e.g. a GET the policy refuses).
pub fn http_error(status: u16, details: &'static str, message: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type", "text/plain; charset=utf-8".to_owned())],
        body: format!("{message}\n").into_bytes(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_echoes_the_raw_id_and_escapes_the_message() {
        let body = jsonrpc_error_body(Some("\"a\\\"b\""), -32600, "bad \"thing\"", None);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], "a\"b");
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(v["error"]["message"], "bad \"thing\"");
        assert!(v["error"].get("data").is_none());
    }

    #[test]
    fn unknown_id_becomes_null() {
        let r = jsonrpc_error(
            400,
            "mcp_policy_parse_error",
            None,
            -32700,
            "x",
            Some(serde_json::json!({"k":1})),
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["id"].is_null());
        assert_eq!(v["error"]["data"]["k"], 1);
        assert_eq!(r.status, 400);
    }
}
