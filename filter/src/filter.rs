//! The per-stream filter: what the module does with each MCP request and response.
//!
//! Owns the stream's small state (phase, server, principal, what the response needs). Reads the
//! shared, immutable [`Runtime`] it is handed on every call; never holds a lock or touches
//! another stream. Everything runs against the [`Host`] trait, so it is unit-tested with a fake
//! host, without Envoy. The decisions themselves come from `mcp-policy-core`.
//!
//! Request path: headers (metadata document, Origin, identity, header hygiene) → body (strict
//! JSON, JSON-RPC, then `core::judge` per message) → forward or answer; a body on a method that
//! carries none is refused. Response path: an answer the module must read (lists, batches with
//! refusals, the GET stream) goes through `core::response`, which rewrites it or replaces it
//! with JSON-RPC errors carrying the request ids; everything else streams through.

use crate::envoy::{Host, Level, Side};
use crate::stats::Stats;
use mcp_policy_core::config::{FilterConfig, Hook};
use mcp_policy_core::identity::{AuthError, Credentials, TokenCache};
use mcp_policy_core::jsonrpc::{self, code, Body, IdKey, Message};
use mcp_policy_core::judge;
use mcp_policy_core::mcp_headers::McpHeaders;
use mcp_policy_core::policy::{self, Mode};
use mcp_policy_core::principal::Principal;
use mcp_policy_core::refusal::{Refusal, Why};
use mcp_policy_core::reply::{self, join_array, Reply};
use mcp_policy_core::response::{self, Expect, SseRewriter, Start, Tally};
use mcp_policy_core::strict_json;
use mcp_policy_core::subject::Subject;
use std::cell::RefCell;
use std::sync::Arc;

use mcp_policy_core::mcp::Method;
pub use mcp_policy_core::refusal::POLICY_DENIED;

mod integrity;
mod vserver;

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
    /// Nothing (more) to judge on the request path.
    #[default]
    PassThrough,
    /// A POST whose JSON-RPC body is being buffered.
    Buffering,
    /// A GET, DELETE, HEAD or OPTIONS whose headers did not end the stream: any body byte is
    /// refused (MCP messages are POSTed; a body here would reach the upstream unjudged).
    MustBeEmpty,
    /// Judged and forwarded (or answered locally).
    Done,
}

/// How the response body is handled, decided at response headers ([`Expect::start`]).
#[derive(Debug, Default)]
enum BodyMode {
    /// Nothing to do (the default, and after a local reply or a failure).
    #[default]
    Untouched,
    /// `application/json`: buffer the whole body, rewrite at the end.
    Json,
    /// `text/event-stream`: rewrite event by event, forward the rest as it comes.
    Sse(Box<SseRewriter>),
}

thread_local! {
    /// Verified tokens, per worker thread: no lock, no sharing across workers. The cache
    /// notices a config reload (identity id) and empties itself.
    static TOKEN_CACHE: RefCell<TokenCache> = RefCell::new(TokenCache::new(mcp_policy_core::identity::DEFAULT_TOKEN_CACHE_SIZE));
}

/// Per-stream state.
#[derive(Default)]
pub struct McpFilter {
    request: RequestState,
    /// Test-only: the hook a fault-injection header asked to panic in.
    panic_in: Option<Hook>,
    /// The MCP server this stream goes to: the route's `mcp_policy.server` metadata, else the
    /// config's `server`.
    server: Option<String>,
    /// The established caller; `None` until identity ran (or when none is configured).
    principal: Option<Arc<Principal>>,
    /// No credentials, but some methods may be called anonymously: decided per message.
    anonymous_pending: bool,
    /// What the response must contain when the module has to read it (list requests in
    /// enforce mode, a batch's refused elements): `None` on the hot path.
    expect: Option<Expect>,
    /// The id (raw JSON) of a single forwarded request, so a failure after the upstream ran
    /// still answers it.
    request_id: Option<String>,
    /// `server` was read from the route (it is read once the identity headers are final).
    server_read: bool,
    /// How the response body is handled, decided at response headers.
    body_mode: BodyMode,
    body: Vec<u8>,
    /// A virtual server's fan-out waiting for its callouts.
    fanout: Option<Box<vserver::FanOutState>>,
    /// A virtual server dispatched this request to one backend.
    dispatched: bool,
    /// Concurrency slots of the policy's `limits`, given back when the stream ends.
    held: crate::limits::Held,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl McpFilter {
    pub fn new() -> McpFilter {
        McpFilter::default()
    }

    /// Take the server from the route's `mcp_policy.server` metadata (once).
    fn read_server(&mut self, h: &impl Host) {
        if std::mem::replace(&mut self.server_read, true) {
            return;
        }
        self.server = h
            .route_metadata("server")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned);
    }

    fn server<'a>(&'a self, rt: &'a Runtime) -> &'a str {
        self.server.as_deref().unwrap_or(&rt.config.server)
    }

    pub fn on_request_headers(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> HeadersStatus {
        let cfg = &rt.config;
        if let Some(name) = &cfg.panic_header {
            self.panic_in = h
                .request_header(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(Hook::from_name);
        }
        self.maybe_panic(Hook::RequestHeaders);
        // MCP's Streamable HTTP uses POST (messages), GET (server stream) and DELETE (end a
        // session); OPTIONS/HEAD carry nothing to judge.
        let (is_post, is_get, method_ok) = match h.request_header(":method") {
            Some(b"POST") => (true, false, true),
            Some(b"GET") => (false, true, true),
            Some(b"DELETE" | b"OPTIONS" | b"HEAD") => (false, false, true),
            _ => (false, false, false),
        };

        if !cfg.virtual_servers.is_empty() {
            if let Some(name) = Self::foreign_cluster_header(rt, h) {
                let msg = format!("header {name:?} is set by the gateway only");
                self.reject(rt, h, Refusal::new(Why::InvalidRequest, msg));
                return HeadersStatus::StopIteration;
            }
        }

        // RFC 9728 protected-resource metadata, served by the gateway itself.
        if let Some(identity) = &cfg.identity {
            if let (Some(path), Some(doc)) = (identity.metadata_path(), identity.metadata_json()) {
                let req_path = h.request_header(":path").unwrap_or_default();
                let req_path = req_path.split(|b| *b == b'?').next().unwrap_or_default();
                if is_get && req_path == path.as_bytes() {
                    self.request = RequestState::Done;
                    h.send_response(&Reply {
                        status: 200,
                        headers: vec![
                            ("content-type", "application/json".into()),
                            ("cache-control", "max-age=300".into()),
                        ],
                        body: doc.as_bytes().to_vec(),
                        details: "mcp_policy_resource_metadata",
                    });
                    return HeadersStatus::StopIteration;
                }
            }
        }

        // MCP transports: validate Host and Origin (DNS-rebinding protection): 403 if not allowed.
        let host = h.request_header(":authority").map(String::from_utf8_lossy);
        if let Some(host) = host.filter(|h| !cfg.host_allowed(h)) {
            let msg = format!("host {host:?} is not allowed");
            self.reject(rt, h, Refusal::new(Why::Forbidden, msg));
            return HeadersStatus::StopIteration;
        }
        let origin = h.request_header("origin").map(String::from_utf8_lossy);
        if let Some(origin) = origin.filter(|o| !cfg.origin_allowed(o)) {
            let msg = format!("origin {origin:?} is not allowed");
            self.reject(rt, h, Refusal::new(Why::Forbidden, msg));
            return HeadersStatus::StopIteration;
        }

        // Any other method could carry a body the module never reads: refuse it rather than
        // forward it unjudged.
        if !method_ok {
            let m = String::from_utf8_lossy(h.request_header(":method").unwrap_or_default()).into_owned();
            let msg = format!("HTTP method {m:?} is not used by MCP (POST, GET, DELETE)");
            let mut r = Refusal::new(Why::MethodNotAllowed, msg);
            r.allow = Some("GET, POST, DELETE");
            self.reject(rt, h, r);
            return HeadersStatus::StopIteration;
        }

        if let Some(identity) = &cfg.identity {
            let result = {
                let mut auth: [&str; 2] = ["", ""];
                let n_auth = collect_values(h, "authorization", &mut auth);
                let mut payload: [&str; 2] = ["", ""];
                let n_payload = match identity.jwt_authn_header() {
                    Some(name) => collect_values(h, name, &mut payload),
                    None => 0,
                };
                let san = if identity.mtls_enabled()
                    && h.attribute_bool(crate::abi::attribute::CONNECTION_MTLS) == Some(true)
                {
                    h.attribute_string(crate::abi::attribute::CONNECTION_URI_SAN_PEER_CERTIFICATE)
                        .and_then(|v| std::str::from_utf8(v).ok())
                } else {
                    None
                };
                let sans: [&str; 1] = [san.unwrap_or_default()];
                let creds = Credentials {
                    authorization: &auth[..n_auth],
                    jwt_payload: &payload[..n_payload],
                    peer_uri_sans: if san.is_some() { &sans[..] } else { &[] },
                };
                TOKEN_CACHE.with(|c| identity.establish(&creds, &mut c.borrow_mut(), now_secs()))
            };
            match result {
                Ok(p) => {
                    if cfg.revoked_subjects.contains(&p.subject)
                        || p.token_id.as_ref().is_some_and(|j| cfg.revoked_token_ids.contains(j))
                    {
                        self.auth_refusal(rt, h, &AuthError::Revoked);
                        return HeadersStatus::StopIteration;
                    }
                    self.principal = Some(p);
                }
                Err(AuthError::MissingToken) if is_post && identity.has_anonymous_methods() => {
                    self.anonymous_pending = true;
                }
                Err(e) => {
                    self.auth_refusal(rt, h, &e);
                    return HeadersStatus::StopIteration;
                }
            }
            if let Some(name) = identity.jwt_authn_header() {
                h.remove_request_header(name);
            }
        }
        if self.rewrite_identity_headers(rt, h) {
            // A route may match on the identity headers: Envoy matches it again on what the
            // gateway vouches for, never on the client's copies. (Envoy 1.40 still reports the
            // first route's metadata to the module: docs/design/failure-modes.md, known limits.)
            h.clear_route_cache();
        }
        self.read_server(h);
        if let Some(vs) = self.virtual_server(rt) {
            if let Some(done) = self.virtual_headers(rt, h, vs, end_of_stream) {
                return done;
            }
        } else if let Some(cred) = cfg.credentials.get(self.server(rt)) {
            h.set_request_header("authorization", cred.as_bytes());
        } else if cfg.identity.is_some() && !cfg.pass_authorization {
            h.remove_request_header("authorization");
        }

        if is_get {
            let integrity = cfg
                .integrity
                .as_ref()
                .is_some_and(|i| i.for_server(self.server(rt)).is_some());
            if integrity
                || cfg
                    .policy
                    .as_ref()
                    .is_some_and(|p| p.mode(self.server(rt)) == Mode::Enforce)
            {
                {
                    // A resumed GET stream (Last-Event-ID) replays answers sent on other
                    // streams, lists among them: read it, and ask for it unencoded.
                    self.expect = Some(Expect::stream());
                    h.set_request_header("accept-encoding", b"identity");
                }
            }
        }
        if !is_post {
            if end_of_stream {
                return HeadersStatus::Continue;
            }
            // A body may follow: hold the headers until we know it is empty.
            self.request = RequestState::MustBeEmpty;
            return HeadersStatus::StopIteration;
        }
        if let Some(reason) = unjudgeable_body(h) {
            self.reject(rt, h, Refusal::new(Why::UnsupportedMediaType, reason));
            return HeadersStatus::StopIteration;
        }
        if end_of_stream {
            let r = Refusal::new(Why::ParseError, "empty body: a POST must carry a JSON-RPC message");
            self.reject(rt, h, r);
            return HeadersStatus::StopIteration;
        }
        // Let our own limit answer first (with a JSON-RPC error), not Envoy's generic 413.
        h.set_buffer_limit((cfg.max_request_body_bytes as u64).saturating_add(1));
        self.request = RequestState::Buffering;
        HeadersStatus::StopIteration
    }

    /// Header hygiene: the upstream sees only identity the gateway vouches for, and never the
    /// client's token (MCP: no token passthrough) unless configured.
    /// Returns whether an identity header changed (so routes must be matched again).
    /// Per-server credentials are injected by the caller, once the route is final.
    fn rewrite_identity_headers(&self, rt: &Runtime, h: &mut impl Host) -> bool {
        let cfg = &rt.config;
        let p = self.principal.as_deref();
        // `set` replaces every value a client sent; only headers we do not set need removing.
        let ih = &cfg.identity_headers;
        let subject = p.map(|p| p.subject.as_str()).filter(|s| !s.is_empty());
        let mut changed = put_or_remove(h, ih.subject.as_deref(), subject.map(str::as_bytes));
        changed |= put_or_remove(
            h,
            ih.tenant.as_deref(),
            p.and_then(|p| p.tenant.as_deref()).map(str::as_bytes),
        );
        let groups = p.filter(|p| !p.groups.is_empty()).map(|p| groups_header(&p.groups));
        changed |= put_or_remove(h, ih.groups.as_deref(), groups.as_deref());
        changed
    }

    pub fn on_request_body(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> BodyStatus {
        if self.request == RequestState::MustBeEmpty {
            return self.refuse_body_on_non_post(rt, h, end_of_stream);
        }
        if self.request != RequestState::Buffering {
            return BodyStatus::Continue;
        }
        self.maybe_panic(Hook::RequestBody);
        let limit = rt.config.max_request_body_bytes;
        if h.body_len(Side::Request) > limit {
            let msg = format!("request body exceeds the gateway's limit of {limit} bytes");
            self.reject(rt, h, Refusal::new(Why::BodyTooLarge, msg));
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
        if !matches!(self.request, RequestState::Buffering | RequestState::MustBeEmpty) {
            return BodyStatus::Continue;
        }
        self.on_request_body(rt, h, true)
    }

    /// GET, DELETE, HEAD, OPTIONS: a body is refused, never forwarded unjudged.
    fn refuse_body_on_non_post(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> BodyStatus {
        if h.body_len(Side::Request) > 0 {
            let m = String::from_utf8_lossy(h.request_header(":method").unwrap_or_default()).into_owned();
            let msg = format!("a {m} request must not carry a body: MCP messages are sent with POST");
            self.reject(rt, h, Refusal::new(Why::InvalidRequest, msg));
            return BodyStatus::StopNoBuffer;
        }
        if end_of_stream {
            self.request = RequestState::Done;
            return BodyStatus::Continue;
        }
        BodyStatus::StopAndBuffer
    }

    fn judge_request(&mut self, rt: &Runtime, h: &mut impl Host, body: &[u8]) -> BodyStatus {
        // Duplicate keys at any depth first: serde would only catch the envelope's.
        if let Err(e) = strict_json::check(body) {
            let why = if e.code() == code::PARSE_ERROR {
                Why::ParseError
            } else {
                Why::InvalidRequest
            };
            self.reject(rt, h, Refusal::new(why, e.to_string()));
            return BodyStatus::StopNoBuffer;
        }
        let parsed = match jsonrpc::parse(body) {
            Ok(b) => b,
            Err(e) => {
                let why = if e.code == code::PARSE_ERROR {
                    Why::ParseError
                } else {
                    Why::InvalidRequest
                };
                self.reject(rt, h, Refusal::new(why, e.message).id(e.id.as_deref()));
                return BodyStatus::StopNoBuffer;
            }
        };
        let vs = self.virtual_server(rt);
        if vs.is_some() && matches!(parsed, Body::Batch(_)) {
            let r = Refusal::new(
                Why::InvalidRequest,
                "a virtual server takes one JSON-RPC message per request (batches are 2025-03-26 only)",
            );
            self.reject(rt, h, r);
            return BodyStatus::StopNoBuffer;
        }
        let mcp_header_copy = copy_mcp_headers(h);
        let headers = match collect_mcp_headers(mcp_header_copy.as_deref()) {
            Ok(hs) => hs,
            Err(r) => {
                self.reject(rt, h, *r);
                return BodyStatus::StopNoBuffer;
            }
        };
        if let (Some(vs), Body::Single(msg)) = (vs, &parsed) {
            return self.judge_virtual(rt, h, vs, msg, body, mcp_header_copy.as_deref(), headers.as_ref());
        }
        match parsed {
            Body::Single(msg) => match self.judge_message(rt, h, &msg, headers.as_ref()) {
                Verdict::Forward(list) => {
                    if let Some(id) = msg.id() {
                        self.request_id = Some(id.as_json().to_owned());
                        if let Some(kind) = list {
                            self.expect = Some(Expect::single_list(id.as_json(), kind));
                            // The answer must be read: ask for it unencoded.
                            h.set_request_header("accept-encoding", b"identity");
                        } else if let Some(a) = integrity::reads_answer(rt, self.server(rt), msg.method()) {
                            self.expect = Some(Expect::single_answer(id.as_json(), a));
                            h.set_request_header("accept-encoding", b"identity");
                        }
                    }
                    BodyStatus::Continue
                }
                Verdict::Refuse(r) => {
                    self.request = RequestState::Done;
                    h.send_response(&r);
                    BodyStatus::StopNoBuffer
                }
            },
            Body::Batch(items) => self.judge_batch(rt, h, body, items, headers.as_ref()),
        }
    }

    /// A 2025-03-26 batch: each element is judged on its own. Refused elements are answered by
    /// the gateway; the others go upstream as a smaller batch, and their answers come back with
    /// ours merged in (JSON responses).
    fn judge_batch(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        body: &[u8],
        items: Vec<Result<Message<'_>, jsonrpc::ParseError>>,
        headers: Option<&McpHeaders<'_>>,
    ) -> BodyStatus {
        let raw_items: Vec<&serde_json::value::RawValue> = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                self.reject(rt, h, Refusal::new(Why::ParseError, e.to_string()));
                return BodyStatus::StopNoBuffer;
            }
        };
        // Duplicate request ids would make the answers ambiguous (and the upstream would run
        // both): refuse the batch before anything is forwarded.
        let mut ids: Vec<IdKey> = Vec::new();
        for item in &items {
            if let Ok(Message::Request { id, .. }) = item {
                let key = IdKey::from_json(id.as_json());
                if key.as_ref().is_some_and(|k| ids.contains(k)) {
                    let msg = format!(
                        "duplicate request id {} in batch: every request needs its own id",
                        id.as_json()
                    );
                    self.reject(rt, h, Refusal::new(Why::InvalidRequest, msg));
                    return BodyStatus::StopNoBuffer;
                }
                ids.extend(key);
            }
        }
        let mut forward: Vec<&str> = Vec::new();
        let mut expect = Expect::new(true);
        for (raw, item) in raw_items.iter().zip(&items) {
            match item {
                Err(e) => {
                    h.increment_counter(rt.stats.requests_total, &[self.server(rt), "invalid", "reject"], 1);
                    expect.answer(reply::jsonrpc_error_body(e.id.as_deref(), e.code, &e.message, None));
                }
                Ok(msg) => match self.judge_message(rt, h, msg, headers) {
                    Verdict::Forward(list) => {
                        forward.push(raw.get());
                        if let Some(id) = msg.id() {
                            expect.forwarded(id.as_json(), list);
                        }
                    }
                    Verdict::Refuse(r) => {
                        // Notifications get no answer, refused or not (JSON-RPC 2.0 §4.1).
                        if msg.id().is_some() {
                            expect.answer(r.body);
                        }
                    }
                },
            }
        }
        h.set_metadata("method", "batch");
        h.set_metadata_number("batch_size", items.len() as f64);
        if forward.is_empty() {
            let body = expect.refusal_body("");
            self.request = RequestState::Done;
            h.send_response(&Reply {
                status: 200,
                headers: vec![("content-type", "application/json".into())],
                body,
                details: "mcp_policy_batch_refused",
            });
            return BodyStatus::StopNoBuffer;
        }
        if forward.len() != items.len() {
            let new_body = join_array(forward.iter().map(|s| s.as_bytes()));
            h.replace_body(Side::Request, &new_body);
            h.set_request_header("content-length", new_body.len().to_string().as_bytes());
        }
        if expect.must_read() {
            h.set_request_header("accept-encoding", b"identity");
            self.expect = Some(expect);
        }
        BodyStatus::Continue
    }

    /// Judge one message (`core::judge`), record the decision (dynamic metadata, one labelled
    /// counter) and return what to do with it.
    fn judge_message(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        msg: &Message<'_>,
        headers: Option<&McpHeaders<'_>>,
    ) -> Verdict {
        let cfg = &rt.config;
        let server: &str = self.server.as_deref().unwrap_or(&cfg.server);
        let caller = judge::Caller {
            principal: self.principal.as_deref(),
            anonymous_pending: self.anonymous_pending,
        };
        let v = judge::judge(cfg, server, caller, msg, headers);
        h.set_metadata("server", server);
        h.set_metadata("method", msg.method().unwrap_or("response"));
        if let Some(id) = msg.id() {
            h.set_metadata("jsonrpc_id", id.as_json());
        }
        if let Some(p) = v.principal.filter(|p| !p.is_anonymous()) {
            h.set_metadata("principal", &p.subject);
            if let Some(t) = &p.tenant {
                h.set_metadata("tenant", t);
            }
            h.set_metadata("identity_source", p.source.label());
        }
        if let Some(r) = &v.record {
            h.set_metadata("decision", r.decision);
            h.set_metadata("reason", r.reason);
            h.set_metadata("mode", if r.mode == Mode::Audit { "audit" } else { "enforce" });
            h.set_metadata("policy_version", r.version);
            if let Some(rule) = r.rule {
                h.set_metadata("rule", rule);
            }
            if let Some(t) = v.target() {
                h.set_metadata("target", t);
            }
        }
        // The audit trail's argument digest (docs/audit.md): tools/call and prompts/get only.
        if matches!(msg.method(), Some("tools/call" | "prompts/get")) {
            if let Some(d) = msg.params().and_then(mcp_policy_core::audit::args_digest) {
                h.set_metadata("args_digest", &d);
            }
        }
        let mut decision = v.decision;
        let verdict = match v.outcome {
            judge::Outcome::Forward(list) => match self.integrity_forward(rt, h, server, msg, v.target(), list) {
                // A call to an item integrity withholds is refused before any limit is charged.
                Err(reply) => Verdict::Refuse(reply),
                Ok(list) => match (&cfg.policy, v.principal, &v.subject) {
                    // A call the policy would deny (audit) is not charged: enforce mode never counts it.
                    (Some(policy), Some(p), Some(Subject::Tool { name, .. })) if v.decision != "audit_deny" => {
                        let id = msg.id().map(|i| i.as_json());
                        match crate::limits::check(policy, h, &mut self.held, p, server, name, id) {
                            crate::limits::Outcome::Pass => Verdict::Forward(list),
                            crate::limits::Outcome::WouldLimit => {
                                decision = "would_limit";
                                h.set_metadata("decision", decision);
                                Verdict::Forward(list)
                            }
                            crate::limits::Outcome::Limited(reply) => {
                                decision = "limit";
                                h.set_metadata("decision", decision);
                                h.set_metadata("reason", Why::RateLimited.label());
                                h.increment_counter(rt.stats.rejected_total, &[server, Why::RateLimited.label()], 1);
                                Verdict::Refuse(reply)
                            }
                        }
                    }
                    _ => Verdict::Forward(list),
                },
            },
            judge::Outcome::Refuse(r) => {
                h.increment_counter(rt.stats.rejected_total, &[server, r.why.label()], 1);
                if v.record.is_none() {
                    let decision = if r.why == Why::Unauthenticated {
                        "deny"
                    } else {
                        "reject"
                    };
                    h.set_metadata("decision", decision);
                    h.set_metadata("reason", r.why.label());
                }
                Verdict::Refuse(r.reply())
            }
        };
        // One labelled counter per message: each increment interns its labels in Envoy's
        // symbol table, so it is not cheap.
        h.increment_counter(rt.stats.requests_total, &[server, v.method.label(), decision], 1);
        verdict
    }

    pub fn on_response_headers(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> HeadersStatus {
        self.maybe_panic(Hook::ResponseHeaders);
        if self.dispatched {
            // The client holds the composite session id, never a backend's.
            h.remove_response_header("mcp-session-id");
        }
        let Some(expect) = &self.expect else {
            return HeadersStatus::Continue;
        };
        let status = h
            .response_header(":status")
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        let start = expect.start(
            status,
            h.response_header("content-type"),
            h.response_header("content-encoding"),
            end_of_stream,
        );
        match start {
            Start::PassThrough => {
                self.expect = None;
                HeadersStatus::Continue
            }
            Start::Json => {
                self.body_mode = BodyMode::Json;
                h.set_buffer_limit((rt.config.max_response_body_bytes as u64).saturating_add(1));
                HeadersStatus::StopIteration
            }
            Start::Sse => {
                // Rewritten or added events change the length: the stream goes out chunked.
                h.remove_response_header("content-length");
                self.body_mode = BodyMode::Sse(Box::new(SseRewriter::new(rt.config.max_response_body_bytes)));
                HeadersStatus::Continue
            }
            Start::Answer(body) => {
                self.expect = None;
                h.send_response(&json_reply(body, "mcp_policy_batch_refused"));
                HeadersStatus::StopIteration
            }
            Start::Replace {
                status,
                why,
                detail,
                body,
            } => {
                self.expect = None;
                self.count_refusal(rt, h, why, &detail);
                let mut reply = json_reply(body, "mcp_policy_response_unfilterable");
                reply.status = status;
                h.send_response(&reply);
                HeadersStatus::StopIteration
            }
        }
    }

    pub fn on_response_body(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> BodyStatus {
        self.maybe_panic(Hook::ResponseBody);
        match self.body_mode {
            BodyMode::Json => self.rewrite_json_response(rt, h, end_of_stream),
            BodyMode::Sse(_) => self.rewrite_sse_chunk(rt, h, end_of_stream),
            BodyMode::Untouched => BodyStatus::Continue,
        }
    }

    /// Trailers end the response: finish what the body hook would have finished.
    pub fn on_response_trailers(&mut self, rt: &Runtime, h: &mut impl Host) -> BodyStatus {
        match self.body_mode {
            BodyMode::Untouched => BodyStatus::Continue,
            BodyMode::Json => {
                let r = self.rewrite_json_response(rt, h, true);
                // A response with trailers goes out chunked (HTTP/1.1) or framed (HTTP/2): a
                // content-length would contradict the framing.
                h.remove_response_header("content-length");
                r
            }
            BodyMode::Sse(_) => self.on_response_body(rt, h, true),
        }
    }

    /// Run `f` with the response expectation and the caller's visibility predicate, then
    /// count what it hid and refused.
    fn with_view<R>(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        f: impl FnOnce(&mut Expect, &mut BodyMode, &mut dyn response::Lists, &mut Tally) -> R,
    ) -> R {
        let mut expect = self.expect.take().unwrap_or_default();
        let mut mode = std::mem::take(&mut self.body_mode);
        let mut tally = Tally::default();
        let server = self.server.as_deref().unwrap_or(&rt.config.server);
        let anonymous = Principal::anonymous();
        let principal = self.principal.as_deref().unwrap_or(&anonymous);
        let view = rt.config.policy.as_ref().map(|p| p.for_principal(principal, server));
        let integ = rt.config.integrity.as_ref();
        let mut judge = integrity::ListJudge {
            view: view.as_ref(),
            integrity: integ.and_then(|i| i.for_server(server).map(|s| (s, i.generation))),
            server,
            reports: Vec::new(),
            texts: Vec::new(),
        };
        // Without a policy nothing is hidden by visibility; integrity may still edit.
        let r = f(&mut expect, &mut mode, &mut judge, &mut tally);
        let reports = std::mem::take(&mut judge.reports);
        let texts = std::mem::take(&mut judge.texts);
        drop(judge);
        self.expect = Some(expect);
        self.body_mode = mode;
        if !reports.is_empty() {
            self.record_integrity(rt, h, reports.iter().map(|(k, r)| (server, *k, r)));
        }
        for (what, r) in &texts {
            self.record_text(rt, h, server, what, r);
        }
        for (kind, n) in response::KINDS.iter().zip(tally.removed) {
            if n > 0 {
                h.increment_counter(rt.stats.list_items_hidden_total, &[server, kind_label(*kind)], n as u64);
            }
        }
        if let Some((why, detail)) = &tally.first {
            self.count_refusal(rt, h, why, detail);
        }
        r
    }

    /// Count and log a response-path refusal (the reply itself is built by the core).
    fn count_refusal(&self, rt: &Runtime, h: &mut impl Host, why: &str, detail: &str) {
        h.increment_counter(rt.stats.rejected_total, &[self.server(rt), why], 1);
        h.set_metadata("response_refusal", why);
        crate::envoy::log(
            Level::Warn,
            format_args!("mcp_policy: upstream answer withheld ({why}): {detail}"),
        );
    }

    fn rewrite_json_response(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> BodyStatus {
        let limit = rt.config.max_response_body_bytes;
        if h.body_len(Side::Response) > limit {
            // Fail closed: a list we cannot filter is not delivered; the requests get errors.
            let body = self.with_view(rt, h, |e, _, _, t| e.too_large(limit, t));
            return self.replace_response(h, body);
        }
        if !end_of_stream {
            return BodyStatus::StopAndBuffer;
        }
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        h.read_body(Side::Response, &mut body);
        let out = self.with_view(rt, h, |e, _, keep, t| e.rewrite_json_lists(&body, keep, t));
        if let Some(out) = out {
            h.replace_body(Side::Response, &out);
            h.set_response_header("content-length", out.len().to_string().as_bytes());
        }
        self.body = body;
        self.body_mode = BodyMode::Untouched;
        BodyStatus::Continue
    }

    fn rewrite_sse_chunk(&mut self, rt: &Runtime, h: &mut impl Host, end_of_stream: bool) -> BodyStatus {
        let mut chunk = std::mem::take(&mut self.body);
        chunk.clear();
        h.read_body(Side::Response, &mut chunk);
        let out = self.with_view(rt, h, |e, mode, keep, t| {
            let BodyMode::Sse(rw) = mode else {
                return None;
            };
            let mut out = rw.push_lists(e, &chunk, keep, t);
            if end_of_stream {
                out.extend(rw.finish_lists(e, keep, t));
            }
            Some(out)
        });
        if let Some(out) = out {
            if out != chunk {
                h.replace_body(Side::Response, &out);
            }
        }
        self.body = chunk;
        if end_of_stream {
            self.body_mode = BodyMode::Untouched;
        }
        BodyStatus::Continue
    }

    /// Replace a held response (headers not yet sent) with the gateway's JSON answer.
    fn replace_response(&mut self, h: &mut impl Host, body: Vec<u8>) -> BodyStatus {
        self.expect = None;
        self.body_mode = BodyMode::Untouched;
        self.request = RequestState::Done;
        h.send_response(&json_reply(body, "mcp_policy_response_unfilterable"));
        BodyStatus::StopNoBuffer
    }

    /// What a failure after the upstream ran answers: an error for the request(s) forwarded
    /// (so the client can match it), or `None` when there were none.
    pub fn failure_body(&self, message: &str) -> Option<Vec<u8>> {
        match (&self.expect, &self.request_id) {
            (Some(e), _) => Some(e.refusal_body(message)),
            (None, Some(id)) => Some(reply::jsonrpc_error_body(Some(id), code::INTERNAL_ERROR, message, None)),
            (None, None) => None,
        }
    }

    fn auth_refusal(&mut self, rt: &Runtime, h: &mut impl Host, e: &AuthError) {
        self.read_server(h);
        let Some(identity) = &rt.config.identity else { return };
        self.request = RequestState::Done;
        let why = if e.status() == 403 {
            Why::Forbidden
        } else {
            Why::Unauthenticated
        };
        let mut r = Refusal::new(why, e.description()).status_code(e.status(), code::INVALID_REQUEST);
        r.details = Some(mcp_policy_core::identity::details(e));
        r.challenge = identity.www_authenticate(e);
        h.increment_counter(rt.stats.rejected_total, &[self.server(rt), why.label()], 1);
        h.set_metadata("decision", "deny");
        h.set_metadata("reason", e.label());
        h.send_response(&r.reply());
    }

    /// Answer the request with `r` (counted and recorded); nothing more is judged or forwarded.
    fn reject(&mut self, rt: &Runtime, h: &mut impl Host, r: Refusal) {
        self.read_server(h);
        self.request = RequestState::Done;
        h.increment_counter(rt.stats.rejected_total, &[self.server(rt), r.why.label()], 1);
        h.set_metadata("decision", "reject");
        h.set_metadata("reason", r.why.label());
        h.send_response(&r.reply());
    }

    fn maybe_panic(&self, hook: Hook) {
        if self.panic_in == Some(hook) {
            panic!("fault injection: panic requested in {hook:?}");
        }
    }
}

enum Verdict {
    /// Forward it; `Some(kind)` for a list request whose answer must be filtered.
    Forward(Option<policy::Kind>),
    Refuse(Reply),
}

fn kind_label(k: policy::Kind) -> &'static str {
    match k {
        policy::Kind::Tool => "tool",
        policy::Kind::Resource => "resource",
        policy::Kind::ResourceTemplate => "resource_template",
        policy::Kind::Prompt => "prompt",
    }
}

/// Set header `name` (when configured) to `value`, or remove any copy a client sent.
/// Returns whether the header map changed.
fn put_or_remove(h: &mut impl Host, name: Option<&str>, value: Option<&[u8]>) -> bool {
    match (name, value) {
        (Some(n), Some(v)) => {
            h.set_request_header(n, v);
            true
        }
        (Some(n), None) if h.request_header(n).is_some() => {
            h.remove_request_header(n);
            true
        }
        _ => false,
    }
}

/// `x-mcp-groups`: comma-separated group names, each with `%` and `,` percent-encoded, so a
/// group named `eng,admins` (or `CN=eng,OU=Groups`) can never read as two groups upstream.
fn groups_header(groups: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(groups.iter().map(|g| g.len() + 1).sum());
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        for b in g.bytes() {
            match b {
                b'%' => out.extend_from_slice(b"%25"),
                b',' => out.extend_from_slice(b"%2C"),
                _ => out.push(b),
            }
        }
    }
    out
}

/// A gateway answer in place of the upstream's: HTTP 200, `application/json` (a JSON-RPC error
/// carries the failure; an HTTP error would end some clients' sessions).
fn json_reply(body: Vec<u8>, details: &'static str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body,
        details,
    }
}

/// Up to two values of a header (two are enough to refuse duplicates), as UTF-8.
fn collect_values<'h>(h: &'h impl Host, name: &str, out: &mut [&'h str; 2]) -> usize {
    let n = h.request_header_count(name).min(2);
    let mut k = 0;
    for i in 0..n {
        if let Some(v) = h.request_header_at(name, i) {
            // Non-UTF-8 credentials cannot be valid: pass a value that fails verification.
            out[k] = std::str::from_utf8(v).unwrap_or("\u{fffd}");
            k += 1;
        }
    }
    k
}

/// A copy of the MCP 2026-07-28 request headers (`Mcp-Method`, `Mcp-Name`,
/// `MCP-Protocol-Version`, `Mcp-Param-*`) when any is present: copied, because the body
/// judgement may mutate the header map they live in.
fn copy_mcp_headers(h: &impl Host) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let any = h.request_header("mcp-method").is_some()
        || h.request_header("mcp-name").is_some()
        || h.request_header("mcp-protocol-version").is_some();
    if !any {
        return None;
    }
    Some(
        h.request_headers()
            .into_iter()
            .filter(|(k, _)| k.len() > 4 && k[..4].eq_ignore_ascii_case(b"mcp-"))
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect(),
    )
}

/// The MCP 2026-07-28 headers in a copy, or the refusal for ones that contradict each other.
fn collect_mcp_headers(copy: Option<&[(Vec<u8>, Vec<u8>)]>) -> Result<Option<McpHeaders<'_>>, Box<Refusal>> {
    copy.map(|hs| McpHeaders::collect(hs.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))))
        .transpose()
        .map_err(|e| Box::new(Refusal::new(Why::HeaderMismatch, e.to_string()).status_code(e.http_status(), e.code())))
}

/// Why a POST body cannot be judged, if it cannot: the module never forwards what it did not
/// read. JSON-RPC over Streamable HTTP is `application/json`; an encoded body would hide the
/// method and arguments from policy.
fn unjudgeable_body(h: &impl Host) -> Option<String> {
    // Two copies: the module would read the first, a server maybe the last.
    for name in ["content-type", "content-encoding"] {
        if h.request_header_count(name) > 1 {
            return Some(format!("more than one {name} header: send exactly one"));
        }
    }
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
            let mut parts = ct.split(|b| *b == b';');
            let media = parts.next().unwrap_or_default();
            if media.trim_ascii().eq_ignore_ascii_case(b"application/json") {
                // JSON is UTF-8 (RFC 8259 §8.1); a server honouring another declared charset
                // (utf-7, utf-16, latin1) would read a different message than the one judged.
                let charset = parts.find_map(|p| {
                    let p = p.trim_ascii();
                    let (k, v) = p.split_at(p.iter().position(|b| *b == b'=')?);
                    k.trim_ascii().eq_ignore_ascii_case(b"charset").then(|| {
                        let v = v[1..].trim_ascii();
                        v.strip_prefix(b"\"").and_then(|v| v.strip_suffix(b"\"")).unwrap_or(v)
                    })
                });
                match charset {
                    Some(c) if !c.eq_ignore_ascii_case(b"utf-8") && !c.eq_ignore_ascii_case(b"utf8") => Some(format!(
                        "charset {:?} is not accepted: MCP messages are UTF-8 JSON",
                        String::from_utf8_lossy(c)
                    )),
                    _ => None,
                }
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
            stats: Stats::for_tests(),
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
        let rt = runtime(r#"{"server":"demo","pass_through":true}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#);
        let (hs, bs) = run_request(&rt, &mut h);
        assert_eq!(hs, HeadersStatus::StopIteration);
        assert_eq!(bs, Some(BodyStatus::Continue));
        assert!(h.replies.is_empty());
        assert_eq!(h.counter(1, &["demo", "tools_call", "unchecked"]), 1);
        assert_eq!(h.metadata.get("method").map(String::as_str), Some("tools/call"));
        assert_eq!(h.metadata.get("jsonrpc_id").map(String::as_str), Some("1"));
    }

    #[test]
    fn route_metadata_names_the_server() {
        let rt = runtime(r#"{"server":"fallback","pass_through":true}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        h.route_metadata.insert("server".into(), b"github".to_vec());
        run_request(&rt, &mut h);
        assert_eq!(h.counter(1, &["github", "tools_list", "unchecked"]), 1);
        assert_eq!(h.metadata.get("server").map(String::as_str), Some("github"));
    }

    #[test]
    fn invalid_json_gets_400_with_jsonrpc_parse_error() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"#);
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::StopNoBuffer));
        assert_eq!(h.replies[0].status, 400);
        assert_eq!(reply_json(&h)["error"]["code"], -32700);
        assert_eq!(h.counter(2, &["default", "parse_error"]), 1);
    }

    #[test]
    fn invalid_request_error_answers_the_request_id() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"1.0","id":"abc","method":"ping"}"#);
        run_request(&rt, &mut h);
        let v = reply_json(&h);
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(v["id"], "abc");
    }

    #[test]
    fn body_over_the_limit_gets_413_with_a_clear_message() {
        let rt = runtime(r#"{"pass_through":true,"limits":{"max_request_body_bytes":16}}"#);
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
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h =
            FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("content-encoding", "gzip");
        let (hs, _) = run_request(&rt, &mut h);
        assert_eq!(hs, HeadersStatus::StopIteration);
        assert_eq!(h.replies[0].status, 415);
    }

    #[test]
    fn non_json_content_type_is_refused() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post("x=1").with_header("content-type", "application/x-www-form-urlencoded");
        run_request(&rt, &mut h);
        assert_eq!(h.replies[0].status, 415);
    }

    #[test]
    fn json_content_type_with_charset_is_accepted() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
            .with_header("content-type", "Application/JSON; charset=utf-8");
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::Continue));
    }

    #[test]
    fn post_without_body_is_a_parse_error() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post("");
        run_request(&rt, &mut h);
        assert_eq!(h.replies[0].status, 400);
        assert_eq!(reply_json(&h)["error"]["code"], -32700);
    }

    #[test]
    fn get_stream_passes_through_without_buffering() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::default().with_header(":method", "GET");
        let mut f = McpFilter::new();
        assert_eq!(f.on_request_headers(&rt, &mut h, true), HeadersStatus::Continue);
        assert_eq!(f.on_request_body(&rt, &mut h, true), BodyStatus::Continue);
        assert!(h.replies.is_empty());
    }

    #[test]
    fn a_method_mcp_does_not_use_is_refused_not_forwarded_unjudged() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#).with_header(":method", "PUT");
        let mut f = McpFilter::new();
        assert_eq!(f.on_request_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
        assert_eq!(h.replies[0].status, 405);
        assert!(h.replies[0]
            .headers
            .iter()
            .any(|(k, v)| *k == "allow" && v.contains("POST")));
        assert_eq!(h.counter(2, &["default", "method_not_allowed"]), 1);
    }

    #[test]
    fn batch_counts_every_element() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h = FakeHost::post(
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},7]"#,
        );
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::Continue));
        assert_eq!(h.counter(1, &["default", "ping", "unchecked"]), 1);
        assert_eq!(h.counter(1, &["default", "notification", "unchecked"]), 1);
        assert_eq!(h.counter(1, &["default", "invalid", "reject"]), 1);
        assert_eq!(h.metadata.get("method").map(String::as_str), Some("batch"));
    }

    #[test]
    fn fault_injection_panics_only_in_the_named_hook() {
        let rt = runtime(r#"{"pass_through":true,"fault_injection":{"panic_header":"x-panic"}}"#);
        let mut h =
            FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("x-panic", "request_body");
        let mut f = McpFilter::new();
        assert_eq!(f.on_request_headers(&rt, &mut h, false), HeadersStatus::StopIteration);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.on_request_body(&rt, &mut h, true)));
        assert!(r.is_err());
    }

    #[test]
    fn fault_injection_header_is_ignored_when_not_configured() {
        let rt = runtime(r#"{"pass_through":true}"#);
        let mut h =
            FakeHost::post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).with_header("x-panic", "request_body");
        let (_, bs) = run_request(&rt, &mut h);
        assert_eq!(bs, Some(BodyStatus::Continue));
    }
}
