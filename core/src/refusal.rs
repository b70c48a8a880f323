//! Why the gateway answered a request itself, and the one mapping from that reason to an HTTP
//! status, a JSON-RPC error code, an Envoy response-code detail and a stats label.
//!
//! Every refusal the module sends is a [`Refusal`]; `docs/design/failure-modes.md` lists them.
//! Call sites say *why* and *what*; the status, code and labels follow from the reason, so they
//! cannot drift apart.

use crate::jsonrpc::code;
use crate::reply::{self, Reply};
use serde_json::Value;

/// JSON-RPC error code for a request the gateway's policy refused (implementation-defined
/// server-error range, JSON-RPC 2.0 §5.1; see docs/design/failure-modes.md).
pub const POLICY_DENIED: i32 = -32030;

/// JSON-RPC error code for a request a virtual server's backend could not answer (same range;
/// docs/virtual-server.md).
pub const BACKEND_UNAVAILABLE: i32 = -32031;

/// JSON-RPC error code for a call over a rate limit, concurrency cap or budget (same range;
/// docs/limits.md). The HTTP answer is 429 with `Retry-After`.
pub const RATE_LIMITED: i32 = -32029;

/// Why the module answered a request itself (the `reason` label of `rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    ParseError,
    InvalidRequest,
    InvalidParams,
    HeaderMismatch,
    BodyTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    Unauthenticated,
    Forbidden,
    PolicyDenied,
    ResponseTooLarge,
    ResponseUnfilterable,
    InternalError,
    /// A virtual server's backend failed (unreachable, timed out, unreadable answer).
    BackendUnavailable,
    /// A virtual server session id the gateway cannot open (unknown key, expired, another
    /// virtual server's): the client must initialize again (MCP: 404).
    SessionNotFound,
    /// A `tools/call` over one of the policy's `limits` (docs/limits.md).
    RateLimited,
}

impl Why {
    /// Every reason, in declaration order.
    pub const ALL: [Why; 16] = [
        Why::ParseError,
        Why::InvalidRequest,
        Why::InvalidParams,
        Why::HeaderMismatch,
        Why::BodyTooLarge,
        Why::UnsupportedMediaType,
        Why::MethodNotAllowed,
        Why::Unauthenticated,
        Why::Forbidden,
        Why::PolicyDenied,
        Why::ResponseTooLarge,
        Why::ResponseUnfilterable,
        Why::InternalError,
        Why::BackendUnavailable,
        Why::SessionNotFound,
        Why::RateLimited,
    ];

    /// The stats label (bounded).
    pub fn label(self) -> &'static str {
        match self {
            Why::ParseError => "parse_error",
            Why::InvalidRequest => "invalid_request",
            Why::InvalidParams => "invalid_params",
            Why::HeaderMismatch => "header_mismatch",
            Why::BodyTooLarge => "body_too_large",
            Why::UnsupportedMediaType => "unsupported_media_type",
            Why::MethodNotAllowed => "method_not_allowed",
            Why::Unauthenticated => "unauthenticated",
            Why::Forbidden => "forbidden",
            Why::PolicyDenied => "policy_denied",
            Why::ResponseTooLarge => "response_too_large",
            Why::ResponseUnfilterable => "response_unfilterable",
            Why::InternalError => "internal_error",
            Why::BackendUnavailable => "backend_unavailable",
            Why::SessionNotFound => "session_not_found",
            Why::RateLimited => "rate_limited",
        }
    }

    /// Envoy's response-code details (one token, shown as `%RESPONSE_CODE_DETAILS%`).
    pub fn details(self) -> &'static str {
        match self {
            Why::ParseError => "mcp_policy_parse_error",
            Why::InvalidRequest => "mcp_policy_invalid_request",
            Why::InvalidParams => "mcp_policy_invalid_params",
            Why::HeaderMismatch => "mcp_policy_header_mismatch",
            Why::BodyTooLarge => "mcp_policy_body_too_large",
            Why::UnsupportedMediaType => "mcp_policy_unsupported_media_type",
            Why::MethodNotAllowed => "mcp_policy_method_not_allowed",
            Why::Unauthenticated => "mcp_policy_unauthenticated",
            Why::Forbidden => "mcp_policy_forbidden",
            Why::PolicyDenied => "mcp_policy_denied",
            Why::ResponseTooLarge => "mcp_policy_response_too_large",
            Why::ResponseUnfilterable => "mcp_policy_response_unfilterable",
            Why::InternalError => "mcp_policy_internal_error",
            Why::BackendUnavailable => "mcp_policy_backend_unavailable",
            Why::SessionNotFound => "mcp_policy_session_not_found",
            Why::RateLimited => "mcp_policy_rate_limited",
        }
    }

    /// The HTTP status this reason answers with by default.
    pub fn status(self) -> u16 {
        match self {
            Why::ParseError | Why::InvalidRequest | Why::InvalidParams | Why::HeaderMismatch => 400,
            Why::BodyTooLarge => 413,
            Why::UnsupportedMediaType => 415,
            Why::MethodNotAllowed => 405,
            Why::Unauthenticated => 401,
            Why::Forbidden => 403,
            // The HTTP exchange worked; the call was refused (or its answer withheld).
            // A dead backend is a JSON-RPC error, never an HTTP 5xx (which ends client sessions).
            Why::PolicyDenied | Why::ResponseTooLarge | Why::ResponseUnfilterable | Why::BackendUnavailable => 200,
            Why::SessionNotFound => 404,
            Why::RateLimited => 429,
            Why::InternalError => 500,
        }
    }

    /// The JSON-RPC error code this reason answers with by default.
    pub fn code(self) -> i32 {
        match self {
            Why::ParseError => code::PARSE_ERROR,
            Why::InvalidParams => code::INVALID_PARAMS,
            Why::PolicyDenied => POLICY_DENIED,
            Why::BackendUnavailable => BACKEND_UNAVAILABLE,
            Why::RateLimited => RATE_LIMITED,
            Why::ResponseTooLarge | Why::ResponseUnfilterable | Why::InternalError => code::INTERNAL_ERROR,
            _ => code::INVALID_REQUEST,
        }
    }
}

/// One refusal: everything the reply, the counter and the access log need.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub why: Why,
    pub status: u16,
    pub code: i32,
    pub message: String,
    /// The request id as raw JSON, when known (`null` otherwise).
    pub id: Option<String>,
    pub data: Option<Value>,
    /// Envoy response-code details, when more specific than the reason's (identity errors).
    pub details: Option<&'static str>,
    /// `WWW-Authenticate` challenge (identity refusals).
    pub challenge: Option<String>,
    /// `Allow` header (405).
    pub allow: Option<&'static str>,
}

impl Refusal {
    /// A refusal with the reason's default status and code.
    pub fn new(why: Why, message: impl Into<String>) -> Refusal {
        Refusal {
            why,
            status: why.status(),
            code: why.code(),
            message: message.into(),
            id: None,
            data: None,
            details: None,
            challenge: None,
            allow: None,
        }
    }

    pub fn id(mut self, id: Option<&str>) -> Refusal {
        self.id = id.map(str::to_owned);
        self
    }

    /// Override the status and code (parse errors that are really invalid requests, header
    /// checks that carry their own).
    pub fn status_code(mut self, status: u16, code: i32) -> Refusal {
        self.status = status;
        self.code = code;
        self
    }

    pub fn data(mut self, data: Value) -> Refusal {
        self.data = Some(data);
        self
    }

    /// The JSON-RPC error object alone (one element of a batch answer).
    pub fn body(&self) -> Vec<u8> {
        reply::jsonrpc_error_body(self.id.as_deref(), self.code, &self.message, self.data.clone())
    }

    /// The complete local reply.
    pub fn reply(self) -> Reply {
        let mut r = reply::jsonrpc_error(
            self.status,
            self.details.unwrap_or(self.why.details()),
            self.id.as_deref(),
            self.code,
            &self.message,
            self.data,
        );
        if let Some(c) = self.challenge {
            r.headers.push(("www-authenticate", c));
        }
        if let Some(a) = self.allow {
            r.headers.push(("allow", a.to_owned()));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_carries_its_status_code_and_labels() {
        let r = Refusal::new(Why::PolicyDenied, "no").id(Some("7")).reply();
        assert_eq!(r.status, 200);
        assert_eq!(r.details, "mcp_policy_denied");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (v["id"].clone(), v["error"]["code"].clone()),
            (Value::from(7), Value::from(-32030))
        );
        let r = Refusal::new(Why::MethodNotAllowed, "PUT").reply();
        assert_eq!(r.status, 405);
        assert!(r.headers.is_empty() || r.headers.iter().all(|(k, _)| *k != "allow"));
    }

    #[test]
    fn every_reason_has_distinct_labels_and_details() {
        let all = Why::ALL;
        let mut labels: Vec<_> = all.iter().map(|w| w.label()).collect();
        let mut details: Vec<_> = all.iter().map(|w| w.details()).collect();
        labels.sort();
        labels.dedup();
        details.sort();
        details.dedup();
        assert_eq!((labels.len(), details.len()), (all.len(), all.len()));
        assert!(details.iter().all(|d| !d.contains(' ')));
    }
}
