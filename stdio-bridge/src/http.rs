//! The Streamable HTTP side: one endpoint, POST for messages, DELETE to end a session, GET
//! refused with 405 (no server-to-client stream).

use crate::body::{sse_event, Body};
use crate::bridge::{log, Bridge, ChildStatus, Final, Sink, EVENT_BUFFER};
use crate::jsonrpc::{self, code, Kind, Message, Raw};
use crate::router::{BeginError, Pending, TakeError};
use crate::session::{known_version, negotiate, new_session_id, ClientCaps, Session, VERSIONS};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE, ORIGIN, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use serde_json::value::RawValue;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout_at, Instant};

/// The largest request body accepted.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const INVALID_PARAMS: i64 = -32602;

pub async fn handle(bridge: Arc<Bridge>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(route(&bridge, req).await)
}

async fn route(bridge: &Arc<Bridge>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() != bridge.cfg.path {
        return plain(
            StatusCode::NOT_FOUND,
            format!("mcp-stdio-bridge serves MCP at {} only\n", bridge.cfg.path),
        );
    }
    if let Some(origin) = req.headers().get(ORIGIN) {
        if !origin.to_str().is_ok_and(origin_is_loopback) {
            let shown = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            return rpc_error(
                StatusCode::FORBIDDEN,
                None,
                code::INVALID_REQUEST,
                &format!("Origin {shown} is not a loopback origin: refused (DNS rebinding protection)"),
            );
        }
    }
    let version = match req.headers().get(VERSION_HEADER) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(known_version) {
            Some(v) => Some(v),
            None => {
                let shown = String::from_utf8_lossy(v.as_bytes()).into_owned();
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    code::INVALID_REQUEST,
                    &format!(
                        "unsupported MCP-Protocol-Version {shown}: mcp-stdio-bridge speaks {}",
                        VERSIONS.join(", ")
                    ),
                );
            }
        },
    };
    match *req.method() {
        Method::POST => post(bridge, req, version).await,
        Method::DELETE => delete(bridge, req.headers()),
        Method::GET => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "mcp-stdio-bridge offers no GET stream: messages from the server reach a client on the \
                 streams of its own POSTs\n"
                    .into(),
            );
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            r
        }
        _ => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {} is not used by MCP\n", req.method()),
            );
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            r
        }
    }
}

/// `http://localhost:…`, `http://127.x.y.z:…`, `http://[::1]:…` (and https).
pub fn origin_is_loopback(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        rest.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn accepts(headers: &HeaderMap) -> Result<(), String> {
    let Some(accept) = headers.get(ACCEPT) else {
        return Ok(());
    };
    let accept = String::from_utf8_lossy(accept.as_bytes()).to_ascii_lowercase();
    let has = |t: &str, family: &str| accept.contains(t) || accept.contains(family) || accept.contains("*/*");
    if has("application/json", "application/*") && has("text/event-stream", "text/*") {
        Ok(())
    } else {
        Err(format!(
            "Accept: {accept} must allow both application/json and text/event-stream"
        ))
    }
}

async fn post(bridge: &Arc<Bridge>, req: Request<Incoming>, version: Option<&'static str>) -> Response<Body> {
    let headers = req.headers();
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase());
    if !content_type
        .as_deref()
        .is_some_and(|c| c.trim_start().starts_with("application/json"))
    {
        return rpc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            code::INVALID_REQUEST,
            &format!(
                "Content-Type must be application/json, not {}",
                content_type.as_deref().unwrap_or("(none)")
            ),
        );
    }
    if let Err(why) = accepts(headers) {
        return rpc_error(StatusCode::NOT_ACCEPTABLE, None, code::INVALID_REQUEST, &why);
    }
    let session = headers
        .get(SESSION_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return rpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                code::INVALID_REQUEST,
                &format!("request body over {MAX_BODY} bytes"),
            )
        }
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                code::INVALID_REQUEST,
                &format!("reading the body failed: {e}"),
            )
        }
    };
    let msg = match Message::parse(&bytes) {
        Ok(m) => m,
        Err(why) => {
            let c = if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
                code::PARSE_ERROR
            } else {
                code::INVALID_REQUEST
            };
            return rpc_error(StatusCode::BAD_REQUEST, None, c, &why);
        }
    };
    if msg.kind == Kind::Request && msg.method.as_deref() == Some("initialize") {
        return initialize(bridge, &msg);
    }
    let Some(session) = session else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            msg.id(),
            code::INVALID_REQUEST,
            "Mcp-Session-Id header missing: send initialize first",
        );
    };
    let known = bridge
        .state()
        .sessions
        .touch(&session)
        .map(|s| (s.protocol_version, s.caps));
    let Some((negotiated, caps)) = known else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            msg.id(),
            code::INVALID_REQUEST,
            "unknown or ended Mcp-Session-Id: initialize a new session",
        );
    };
    if let Some(v) = version.filter(|v| *v != negotiated) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            msg.id(),
            code::INVALID_REQUEST,
            &format!("MCP-Protocol-Version {v} is not the version this session negotiated ({negotiated})"),
        );
    }
    match msg.kind {
        Kind::Request => forward_request(bridge, msg, session, caps).await,
        Kind::Notification => forward_notification(bridge, msg, &session),
        Kind::Response => forward_response(bridge, msg, &session),
    }
}

fn initialize(bridge: &Arc<Bridge>, msg: &Message) -> Response<Body> {
    let id = msg.id();
    let params: serde_json::Value = match msg.get("params").map(|p| serde_json::from_str(p.get())) {
        Some(Ok(v @ serde_json::Value::Object(_))) => v,
        _ => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                id,
                INVALID_PARAMS,
                "initialize needs an object of params",
            )
        }
    };
    let requested = params.get("protocolVersion").and_then(|v| v.as_str());
    let caps = ClientCaps::from_capabilities(params.get("capabilities"));
    let session_id = match new_session_id() {
        Ok(s) => s,
        Err(e) => {
            return rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                id,
                code::INTERNAL_ERROR,
                &format!("the OS random generator failed: {e}"),
            )
        }
    };
    let mut guard = bridge.state();
    let st = &mut *guard;
    let up = match &st.child {
        ChildStatus::Up(up) => up.clone(),
        other => return unavailable(other, id),
    };
    let version = negotiate(requested, up.protocol_version);
    match st
        .sessions
        .insert(session_id.clone(), Session::new(version, caps), |k| {
            st.router.session_busy(k)
        }) {
        Ok(None) => {}
        Ok(Some(evicted)) => log(format!(
            "session table full (--max-sessions {}): dropped the least recently used idle session {}…",
            bridge.cfg.max_sessions,
            &evicted[..8]
        )),
        Err(full) => {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                id,
                code::OVERLOADED,
                &format!(
                    "all {} sessions (--max-sessions) have requests in flight: try again later",
                    full.limit
                ),
            )
        }
    }
    drop(guard);
    let mut result = up.init_result.clone();
    result.insert("protocolVersion".into(), jsonrpc::to_raw(version));
    let body = jsonrpc::result(id.unwrap_or(&jsonrpc::null()), &jsonrpc::to_raw(&result));
    let mut r = json_response(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&session_id) {
        r.headers_mut().insert(SESSION_HEADER, v);
    }
    r
}

/// The answer while the child cannot take requests.
fn unavailable(status: &ChildStatus, id: Option<&RawValue>) -> Response<Body> {
    let (text, retry) = match status {
        ChildStatus::Starting => ("the stdio server is starting".to_string(), Some(1)),
        ChildStatus::Down { retry_at, reason } => {
            let left = retry_at.saturating_duration_since(std::time::Instant::now());
            (
                format!(
                    "the stdio server is not running (it {reason}); mcp-stdio-bridge restarts it in {} ms",
                    left.as_millis()
                ),
                Some(left.as_millis().div_ceil(1000).max(1) as u64),
            )
        }
        ChildStatus::Stopping => ("mcp-stdio-bridge is shutting down".to_string(), None),
        ChildStatus::Up(_) => ("the stdio server is running".to_string(), None),
    };
    let mut r = rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        id,
        code::UNAVAILABLE,
        &format!("mcp-stdio-bridge: {text}"),
    );
    if let Some(secs) = retry {
        set_retry_after(&mut r, secs);
    }
    r
}

/// Removes its request from the router when the HTTP side is done with it, and tells the child
/// to stop working on it if it was never answered (timeout, client gone).
struct InFlight {
    bridge: Arc<Bridge>,
    id: u64,
    to_child: mpsc::Sender<Vec<u8>>,
    reason: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let unanswered = self.bridge.state().router.finish(self.id).is_some();
        if unanswered {
            let mut cancel = jsonrpc::notification(
                "notifications/cancelled",
                &json!({"requestId": self.id, "reason": format!("mcp-stdio-bridge: {}", self.reason)}),
            );
            cancel.push(b'\n');
            let _ = self.to_child.try_send(cancel);
        }
    }
}

async fn forward_request(bridge: &Arc<Bridge>, mut msg: Message, session: String, caps: ClientCaps) -> Response<Body> {
    let client_id: Raw = msg.id().map_or_else(jsonrpc::null, |i| i.to_owned());
    let progress_token = msg.progress_token();
    let (etx, erx) = mpsc::channel(EVENT_BUFFER);
    let (dtx, drx) = oneshot::channel();
    let registered = {
        let mut st = bridge.state();
        let up = match &st.child {
            ChildStatus::Up(up) => up.clone(),
            other => return unavailable(other, Some(&client_id)),
        };
        let pending = Pending {
            session,
            client_id: client_id.clone(),
            progress_token: progress_token.clone(),
            generation: up.generation,
            caps,
            sink: Sink { events: etx, done: dtx },
        };
        st.router.begin(pending).map(|id| (id, up))
    };
    let (id, up) = match registered {
        Ok(v) => v,
        Err(BeginError::Full { limit }) => {
            let mut r = rpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                Some(&client_id),
                code::OVERLOADED,
                &format!(
                    "mcp-stdio-bridge already has {limit} requests in flight to the stdio server (--max-queue): try again shortly"
                ),
            );
            set_retry_after(&mut r, 1);
            return r;
        }
        Err(BeginError::Duplicate) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                Some(&client_id),
                code::INVALID_REQUEST,
                &format!("request id {} is already in flight in this session", client_id.get()),
            )
        }
    };
    msg.set_id_u64(id);
    if progress_token.is_some() {
        msg.set_progress_token(jsonrpc::number(id));
    }
    let timeout = bridge.cfg.request_timeout;
    let mut guard = InFlight {
        bridge: bridge.clone(),
        id,
        to_child: up.to_child.clone(),
        reason: "the HTTP client went away".into(),
    };
    let deadline = Instant::now() + timeout;
    let timeout_reason = format!("no answer within {} ms (--request-timeout-ms)", timeout.as_millis());
    let timeout_body = jsonrpc::error(
        Some(&client_id),
        code::TIMEOUT,
        &format!(
            "mcp-stdio-bridge: the stdio server did not answer within {} ms (--request-timeout-ms); the request was cancelled",
            timeout.as_millis()
        ),
    );
    match timeout_at(deadline, up.to_child.send(msg.to_line())).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&client_id),
                code::UNAVAILABLE,
                "mcp-stdio-bridge: the stdio server's input is closed (it is exiting)",
            )
        }
        Err(_) => {
            guard.reason = timeout_reason;
            return json_response(StatusCode::GATEWAY_TIMEOUT, timeout_body);
        }
    }
    drop(up);

    let mut erx = erx;
    let mut drx = drx;
    let mut events_open = true;
    let first = loop {
        tokio::select! {
            biased;
            ev = erx.recv(), if events_open => match ev {
                Some(ev) => break First::Event(ev),
                None => events_open = false,
            },
            fin = &mut drx => break First::Final(fin.ok()),
            _ = sleep_until(deadline) => break First::Timeout,
        }
    };
    let ev = match first {
        First::Final(Some(f)) => return final_response(f),
        First::Final(None) => return lost(&client_id),
        First::Timeout => {
            guard.reason = timeout_reason;
            return json_response(StatusCode::GATEWAY_TIMEOUT, timeout_body);
        }
        First::Event(ev) => ev,
    };

    // The child spoke before answering: this POST becomes an SSE stream, its messages first,
    // the answer last.
    let (btx, brx) = mpsc::channel::<Bytes>(EVENT_BUFFER);
    let _ = btx.try_send(sse_event(&ev));
    let lost_body = jsonrpc::error(Some(&client_id), code::INTERNAL_ERROR, LOST);
    tokio::spawn(async move {
        let mut guard = guard;
        loop {
            tokio::select! {
                biased;
                ev = erx.recv(), if events_open => match ev {
                    Some(ev) => if btx.send(sse_event(&ev)).await.is_err() { return },
                    None => events_open = false,
                },
                fin = &mut drx => {
                    while let Ok(ev) = erx.try_recv() {
                        if btx.send(sse_event(&ev)).await.is_err() { return }
                    }
                    let body = fin.map_or(lost_body, |f| f.body);
                    let _ = btx.send(sse_event(&body)).await;
                    return;
                }
                _ = sleep_until(deadline) => {
                    guard.reason = timeout_reason;
                    let _ = btx.send(sse_event(&timeout_body)).await;
                    return;
                }
                // The client went away: the guard cancels the request at the child.
                _ = btx.closed() => return,
            }
        }
    });
    let mut r = Response::new(Body::Stream(brx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

enum First {
    Event(Vec<u8>),
    Final(Option<Final>),
    Timeout,
}

const LOST: &str = "mcp-stdio-bridge lost track of this request (a bug): it may or may not have run";

fn lost(id: &RawValue) -> Response<Body> {
    rpc_error(StatusCode::BAD_GATEWAY, Some(id), code::INTERNAL_ERROR, LOST)
}

fn final_response(f: Final) -> Response<Body> {
    let mut r = json_response(f.status, f.body);
    if let Some(secs) = f.retry_after {
        set_retry_after(&mut r, secs);
    }
    r
}

fn forward_notification(bridge: &Arc<Bridge>, mut msg: Message, session: &str) -> Response<Body> {
    let method = msg.method.clone().unwrap_or_default();
    if method == "notifications/initialized" {
        // The bridge initialized the child itself, once per child start.
        return accepted();
    }
    let st = bridge.state();
    let to_child = match &st.child {
        ChildStatus::Up(up) => up.to_child.clone(),
        other => return unavailable(other, None),
    };
    if method == "notifications/cancelled" {
        let mut params = msg.params().unwrap_or_default();
        let target = params
            .get("requestId")
            .and_then(|rid| st.router.find_client(session, rid.get()));
        let Some(target) = target else {
            return accepted(); // already answered, or never sent: nothing to cancel
        };
        params.insert("requestId".into(), jsonrpc::number(target));
        msg.set_params(&params);
    }
    drop(st);
    match to_child.try_send(msg.to_line()) {
        Ok(()) => accepted(),
        Err(_) => rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            code::OVERLOADED,
            "mcp-stdio-bridge: the stdio server's input queue is full",
        ),
    }
}

/// A client's answer to a request the child made: back to the child under the child's own id.
fn forward_response(bridge: &Arc<Bridge>, mut msg: Message, session: &str) -> Response<Body> {
    let shown = msg.id().map_or("none".to_string(), |i| i.get().to_string());
    let mut st = bridge.state();
    let taken = match msg.id_u64() {
        Some(id) => st.router.take_server_request(session, id),
        None => Err(TakeError::Unknown),
    };
    let request = match taken {
        Ok(r) => r,
        Err(e) => {
            let why = match e {
                TakeError::Unknown => "is not a request mcp-stdio-bridge is waiting on (answered already, or too old)",
                TakeError::OtherSession => "was sent to another session",
            };
            return rpc_error(
                StatusCode::BAD_REQUEST,
                None,
                code::INVALID_REQUEST,
                &format!("response to id {shown}: that id {why}"),
            );
        }
    };
    let to_child = match &st.child {
        ChildStatus::Up(up) if up.generation == request.generation => up.to_child.clone(),
        _ => {
            drop(st);
            log(format!(
                "a client's answer to request {shown} was dropped: the stdio server that asked has exited"
            ));
            return accepted();
        }
    };
    drop(st);
    msg.set_id(request.child_id);
    match to_child.try_send(msg.to_line()) {
        Ok(()) => accepted(),
        Err(_) => rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            code::OVERLOADED,
            "mcp-stdio-bridge: the stdio server's input queue is full",
        ),
    }
}

fn delete(bridge: &Arc<Bridge>, headers: &HeaderMap) -> Response<Body> {
    let Some(session) = headers.get(SESSION_HEADER) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            None,
            code::INVALID_REQUEST,
            "DELETE needs an Mcp-Session-Id header",
        );
    };
    let session = String::from_utf8_lossy(session.as_bytes());
    if bridge.state().sessions.remove(&session) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        r
    } else {
        rpc_error(
            StatusCode::NOT_FOUND,
            None,
            code::INVALID_REQUEST,
            "unknown or ended Mcp-Session-Id",
        )
    }
}

fn accepted() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::full(text));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn rpc_error(status: StatusCode, id: Option<&RawValue>, code: i64, message: &str) -> Response<Body> {
    json_response(status, jsonrpc::error(id, code, message))
}

fn set_retry_after(r: &mut Response<Body>, secs: u64) {
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins() {
        for ok in [
            "http://localhost",
            "http://localhost:6274",
            "https://127.0.0.1:8443",
            "http://127.9.9.9",
            "http://[::1]:80",
            "http://LOCALHOST",
        ] {
            assert!(origin_is_loopback(ok), "{ok}");
        }
        for bad in [
            "null",
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.evil.example",
            "http://10.0.0.1",
            "http://[::2]",
            "http://[::1]x",
            "file://localhost",
            "localhost",
        ] {
            assert!(!origin_is_loopback(bad), "{bad}");
        }
    }

    #[test]
    fn accept_header() {
        let mut h = HeaderMap::new();
        assert!(accepts(&h).is_ok(), "absent: fine");
        h.insert(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        assert!(accepts(&h).is_ok());
        h.insert(ACCEPT, HeaderValue::from_static("*/*"));
        assert!(accepts(&h).is_ok());
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(accepts(&h).unwrap_err().contains("text/event-stream"));
    }
}
