//! The per-stream filter: what the module does with each MCP request and response.
//!
//! Owns the stream's small state (which phase it is in, the request body while it is being
//! judged). Reads the shared, immutable [`Runtime`] it is handed on every call; never holds
//! a lock or touches another stream. Everything here runs against the [`Host`] trait, so it is
//! unit-tested with a fake host, without Envoy.

use crate::envoy::{Host, Level, Side};
use crate::stats::{Reject, Stats};
use mcp_policy_core::config::{FilterConfig, Hook};
use mcp_policy_core::jsonrpc::{self, code, Body, Message};
use mcp_policy_core::mcp::Method;
use mcp_policy_core::reply::{self, Reply};

/// Everything shared by all streams of one filter config: built once on the main thread,
/// read-only afterwards (`Sync`), so workers never contend.
pub struct Runtime {
    pub config: FilterConfig,
    pub stats: Stats,
}

/// What a headers hook tells Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersStatus {
    Continue,
    /// Hold the headers (we will judge, and maybe rewrite, the body first).
    StopIteration,
}

/// What a body hook tells Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStatus {
    Continue,
    /// Keep buffering until end of stream.
    StopAndBuffer,
    /// We answered locally; drop what came.
    StopNoBuffer,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum RequestState {
    /// Not a body the module judges (GET, DELETE, ...).
    #[default]
    PassThrough,
    /// A POST whose JSON-RPC body is being buffered.
    Buffering,
    /// Judged and forwarded (or answered locally).
    Done,
}

/// Per-stream state.
#[derive(Debug, Default)]
pub struct McpFilter {
    request: RequestState,
    /// Test-only: the hook a fault-injection header asked to panic in.
    panic_in: Option<Hook>,
    /// The MCP server this stream goes to: the route's `mcp_policy.server` metadata, else the
    /// config's `server`.
    server: Option<String>,
    body: Vec<u8>,
}

impl McpFilter {
    pub fn new() -> McpFilter {
        McpFilter::default()
    }

    pub fn on_request_headers(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> HeadersStatus {
        if let Some(name) = &rt.config.panic_header {
            self.panic_in = h
                .request_header(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(Hook::from_name);
        }
        self.maybe_panic(Hook::RequestHeaders);
        self.server = h
            .route_metadata("server")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned);

        if h.request_header(":method") != Some(b"POST") {
            return HeadersStatus::Continue;
        }
        if let Some(reason) = unjudgeable_body(h) {
            self.reject(
                rt,
                h,
                Reject::UnsupportedMediaType,
                415,
                None,
                code::INVALID_REQUEST,
                &reason,
            );
            return HeadersStatus::StopIteration;
        }
        if end_of_stream {
            self.reject(
                rt,
                h,
                Reject::ParseError,
                400,
                None,
                code::PARSE_ERROR,
                "empty body: a POST must carry a JSON-RPC message",
            );
            return HeadersStatus::StopIteration;
        }
        // Let our own limit answer first (with a JSON-RPC error), not Envoy's generic 413.
        h.set_buffer_limit(rt.config.max_request_body_bytes as u64 + 1);
        self.request = RequestState::Buffering;
        HeadersStatus::StopIteration
    }

    pub fn on_request_body(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> BodyStatus {
        if self.request != RequestState::Buffering {
            return BodyStatus::Continue;
        }
        self.maybe_panic(Hook::RequestBody);
        let limit = rt.config.max_request_body_bytes;
        if h.body_len(Side::Request) > limit {
            let msg = format!("request body exceeds the gateway's limit of {limit} bytes");
            self.reject(rt, h, Reject::BodyTooLarge, 413, None, code::INVALID_REQUEST, &msg);
            return BodyStatus::StopNoBuffer;
        }
        if !end_of_stream {
            return BodyStatus::StopAndBuffer;
        }
        self.request = RequestState::Done;
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        h.read_body(Side::Request, &mut body);
        let status = self.judge_request(rt, h, &body);
        self.body = body;
        status
    }

    /// A request with trailers ends in the trailers hook: judge it there.
    pub fn on_request_trailers(&mut self, rt: &Runtime, h: &mut impl Host) -> BodyStatus {
        if self.request != RequestState::Buffering {
            return BodyStatus::Continue;
        }
        self.on_request_body(rt, h, true)
    }

    pub fn on_response_headers(&mut self, _rt: &Runtime, _h: &mut impl Host, _end_of_stream: bool) -> HeadersStatus {
        self.maybe_panic(Hook::ResponseHeaders);
        HeadersStatus::Continue
    }

    pub fn on_response_body(&mut self, _rt: &Runtime, _h: &mut impl Host, _end_of_stream: bool) -> BodyStatus {
        self.maybe_panic(Hook::ResponseBody);
        BodyStatus::Continue
    }

    fn judge_request(&mut self, rt: &Runtime, h: &mut impl Host, body: &[u8]) -> BodyStatus {
        let server = self.server.as_deref().unwrap_or(&rt.config.server);
        match jsonrpc::parse(body) {
            Err(e) => {
                let reason = if e.code == code::PARSE_ERROR {
                    Reject::ParseError
                } else {
                    Reject::InvalidRequest
                };
                self.reject(rt, h, reason, 400, e.id.as_deref(), e.code, &e.message);
                BodyStatus::StopNoBuffer
            }
            Ok(Body::Single(msg)) => {
                let method = classify(&msg);
                h.increment_counter(rt.stats.requests_total, &[server, method.label()], 1);
                h.set_metadata("server", server);
                h.set_metadata("method", msg.method().unwrap_or(method.label()));
                if let Some(id) = msg.id() {
                    h.set_metadata("jsonrpc_id", id.as_json());
                }
                BodyStatus::Continue
            }
            Ok(Body::Batch(items)) => {
                for item in &items {
                    let label = match item {
                        Ok(m) => classify(m).label(),
                        Err(_) => "invalid",
                    };
                    h.increment_counter(rt.stats.requests_total, &[server, label], 1);
                }
                h.set_metadata("server", server);
                h.set_metadata("method", "batch");
                h.set_metadata_number("batch_size", items.len() as f64);
                BodyStatus::Continue
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        why: Reject,
        status: u16,
        id: Option<&str>,
        code: i32,
        message: &str,
    ) {
        self.request = RequestState::Done;
        let server = self.server.as_deref().unwrap_or(&rt.config.server);
        h.increment_counter(rt.stats.rejected_total, &[server, why.label()], 1);
        h.set_metadata("decision", "reject");
        h.set_metadata("reason", why.label());
        let reply: Reply = reply::jsonrpc_error(status, details(why), id, code, message, None);
        h.send_response(&reply);
    }

    fn maybe_panic(&self, hook: Hook) {
        if self.panic_in == Some(hook) {
            panic!("fault injection: panic requested in {hook:?}");
        }
    }
}

/// Envoy response-code details per reason (one token each, shown in access logs).
fn details(why: Reject) -> &'static str {
    match why {
        Reject::ParseError => "mcp_policy_parse_error",
        Reject::InvalidRequest => "mcp_policy_invalid_request",
        Reject::BodyTooLarge => "mcp_policy_body_too_large",
        Reject::UnsupportedMediaType => "mcp_policy_unsupported_media_type",
        Reject::InternalError => "mcp_policy_internal_error",
    }
}

fn classify(m: &Message<'_>) -> Method {
    match m.method() {
        Some(name) => Method::from_name(name),
        None => Method::ClientResponse,
    }
}

/// Why a POST body cannot be judged, if it cannot: the module never forwards what it did not
/// read. JSON-RPC over Streamable HTTP is `application/json`; an encoded body would hide the
/// method and arguments from policy.
fn unjudgeable_body(h: &impl Host) -> Option<String> {
    if let Some(enc) = h.request_header("content-encoding") {
        let enc = String::from_utf8_lossy(enc);
        if !enc.trim().eq_ignore_ascii_case("identity") {
            return Some(format!(
                "content-encoding {:?} is not accepted: send the JSON-RPC body unencoded",
                enc.trim()
            ));
        }
    }
    match h.request_header("content-type") {
        None => Some("missing content-type: MCP requests are application/json".to_owned()),
        Some(ct) => {
            let media = ct.split(|b| *b == b';').next().unwrap_or_default();
            if media.trim_ascii().eq_ignore_ascii_case(b"application/json") {
                None
            } else {
                Some(format!(
                    "content-type {:?} is not application/json",
                    String::from_utf8_lossy(ct)
                ))
            }
        }
    }
}

/// Log a caught panic (the exports layer calls this).
pub fn log_panic(hook: &str, payload: &(dyn std::any::Any + Send)) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    crate::envoy::log(
        Level::Error,
        format_args!("mcp_policy: panic in {hook} hook (stream failed closed): {what}"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeHost;
    use serde_json::Value;

    fn runtime(config: &str) -> Runtime {
        Runtime {
            config: FilterConfig::from_json(config.as_bytes()).expect("test config"),
            stats: Stats {
                requests_total: 1,
                rejected_total: 2,
                panics_total: 3,
            },
        }
    }

    /// Run the request side to completion; return (headers status, body status).
    fn run_request(rt: &Runtime, h: &mut FakeHost) -> (HeadersStatus, Option<BodyStatus>) {
        let mut f = McpFilter::new();
        let hs = f.on_request_headers(rt, h, h.request_body.is_empty());
        if !h.replies.is_empty() || hs == HeadersStatus::Continue {
            return (hs, None);
        }
        (hs, Some(f.on_request_body(rt, h, true)))
    }

    fn reply_json(h: &FakeHost) -> Value {
        serde_json::from_slice(&h.replies[0].body).expect("reply is JSON")
    }

    #[test]
    fn valid_tools_call_is_forwarded_and_counted_by_method() {
        let rt = runtime(r#"{"server":"demo"}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#);
        let (hs, bs) = run_request(&rt, &mut h);
        assert_eq!(hs, HeadersStatus::StopIteration);
        assert_eq!(bs, Some(BodyStatus::Continue));
        assert!(h.replies.is_empty());
        assert_eq!(h.counter(1, &["demo", "tools_call"]), 1);
        assert_eq!(h.metadata.get("method").map(String::as_str), Some("tools/call"));
        assert_eq!(h.metadata.get("jsonrpc_id").map(String::as_str), Some("1"));
    }

    #[test]
    fn route_metadata_names_the_server() {
        let rt = runtime(r#"{"server":"fallback"}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        h.route_metadata.insert("server".into(), b"github".to_vec());
        run_request(&rt, &mut h);
        assert_eq!(h.counter(1, &["github", "tools_list"]), 1);
        assert_eq!(h.metadata.get("server").map(String::as_str), Some("github"));
    }

    #[test]
    fn invalid_json_gets_400_with_jsonrpc_parse_error() {
        let rt = runtime("");
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"#);
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::StopNoBuffer));
        assert_eq!(h.replies[0].status, 400);
        assert_eq!(reply_json(&h)["error"]["code"], -32700);
        assert_eq!(h.counter(2, &["default", "parse_error"]), 1);
    }

    #[test]
    fn invalid_request_error_answers_the_request_id() {
        let rt = runtime("");
        let mut h = FakeHost::post(r#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#);
        run_request(&rt, &mut h);
        let v = reply_json(&h);
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(v["id"], "abc");
    }

    #[test]
    fn body_over_the_limit_gets_413_with_a_clear_message() {
        let rt = runtime(r#"{"limits":{"max_request_body_bytes":16}}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
        let mut f = McpFilter::new();
        assert_eq!(f.on_request_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
        assert_eq!(h.buffer_limit, Some(17));
        assert_eq!(f.on_request_body(&rt, &mut h, false), BodyStatus::StopNoBuffer);
        assert_eq!(h.replies[0].status, 413);
        assert!(reply_json(&h)["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("16 bytes"));
    }

    #[test]
    fn encoded_body_is_refused_not_forwarded_unjudged() {
        let rt = runtime("");
        let mut h =
            FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("content-encoding", "gzip");
        let (hs, _) = run_request(&rt, &mut h);
        assert_eq!(hs, HeadersStatus::StopIteration);
        assert_eq!(h.replies[0].status, 415);
    }

    #[test]
    fn non_json_content_type_is_refused() {
        let rt = runtime("");
        let mut h = FakeHost::post("x=1").with_header("content-type", "application/x-www-form-urlencoded");
        run_request(&rt, &mut h);
        assert_eq!(h.replies[0].status, 415);
    }

    #[test]
    fn json_content_type_with_charset_is_accepted() {
        let rt = runtime("");
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .with_header("content-type", "Application/JSON; charset=utf-8");
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::Continue));
    }

    #[test]
    fn post_without_body_is_a_parse_error() {
        let rt = runtime("");
        let mut h = FakeHost::post("");
        run_request(&rt, &mut h);
        assert_eq!(h.replies[0].status, 400);
        assert_eq!(reply_json(&h)["error"]["code"], -32700);
    }

    #[test]
    fn get_stream_passes_through_without_buffering() {
        let rt = runtime("");
        let mut h = FakeHost::default().with_header(":method", "GET");
        let mut f = McpFilter::new();
        assert_eq!(f.on_request_headers(&rt, &mut h, true), HeadersStatus::Continue);
        assert_eq!(f.on_request_body(&rt, &mut h, true), BodyStatus::Continue);
        assert!(h.replies.is_empty());
    }

    #[test]
    fn batch_counts_every_element() {
        let rt = runtime("");
        let mut h = FakeHost::post(
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},7]"#,
        );
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::Continue));
        assert_eq!(h.counter(1, &["default", "ping"]), 1);
        assert_eq!(h.counter(1, &["default", "notification"]), 1);
        assert_eq!(h.counter(1, &["default", "invalid"]), 1);
        assert_eq!(h.metadata.get("method").map(String::as_str), Some("batch"));
    }

    #[test]
    fn fault_injection_panics_only_in_the_named_hook() {
        let rt = runtime(r#"{"fault_injection":{"panic_header":"x-panic"}}"#);
        let mut h =
            FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("x-panic", "request_body");
        let mut f = McpFilter::new();
        assert_eq!(f.on_request_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.on_request_body(&rt, &mut h, true)));
        assert!(r.is_err());
    }

    #[test]
    fn fault_injection_header_is_ignored_when_not_configured() {
        let rt = runtime("");
        let mut h =
            FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("x-panic", "request_body");
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::Continue));
    }
}
