//! The filter side of a virtual server (`core::vserver` decides; this moves bytes).
//!
//! A request on a route whose server is a virtual server is planned by
//! `vserver::dispatch::plan`. A dispatched request is rewritten in place (body, `:path`,
//! `Host`, the backend's session id and protocol version, the cluster header the route's
//! `cluster_header` reads) and continues to the router, so streaming answers, sampling and
//! elicitation work as on any route; its answer is read by the response core, which tags
//! server-to-client request ids. A fan-out sends one HTTP callout per backend, concurrently,
//! and answers locally once the last one is back (`on_callout_done`).

use super::*;
use mcp_policy_core::vserver::dispatch::{self, FanOut, Plan};
use mcp_policy_core::vserver::merge::{self, Got};
use mcp_policy_core::vserver::session::{self, Member, OpenError, Session};
use mcp_policy_core::vserver::VirtualServer;
use std::collections::HashMap;

thread_local! {
    /// Shortened exposed names seen in merged lists on this worker: (virtual server, exposed)
    /// → the backend's name. Bounded; a miss falls back to the natural reading.
    static SHORTENED: RefCell<HashMap<(String, String), String>> = RefCell::new(HashMap::new());
}
const SHORTENED_MAX: usize = 16_384;

/// A fan-out in flight.
pub(super) struct FanOutState {
    kind: FanOut,
    /// The client's request id (raw JSON); `None` for a notification.
    id: Option<String>,
    session: Option<Session>,
    /// (callout id, backend index) still outstanding.
    pending: Vec<(u64, usize)>,
    got: Vec<(usize, Got, Option<String>)>,
    /// The request is a DELETE (end the session everywhere).
    delete: bool,
}

/// Headers of the client's request that every backend request carries too.
const COPIED: [&str; 4] = ["traceparent", "tracestate", "mcp-method", "x-request-id"];

impl McpFilter {
    pub(super) fn virtual_server<'r>(&self, rt: &'r Runtime) -> Option<&'r VirtualServer> {
        if rt.config.virtual_servers.is_empty() {
            return None;
        }
        rt.config.virtual_servers.get(self.server(rt))
    }

    /// A client request carrying a virtual server's cluster header is refused: Envoy matched
    /// its route before any filter ran, so it may already sit on the dispatch route, and only
    /// the module may send a request there. Returns the header's name.
    pub(super) fn foreign_cluster_header<'r>(rt: &'r Runtime, h: &impl Host) -> Option<&'r str> {
        rt.config
            .virtual_servers
            .values()
            .map(|vs| vs.cluster_header.as_str())
            .find(|name| h.request_header(name).is_some())
    }

    /// Headers hook, on a virtual server's route. `Some` when the request was answered (or
    /// the fan-out of a DELETE started).
    pub(super) fn virtual_headers(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        vs: &VirtualServer,
        end_of_stream: bool,
    ) -> Option<HeadersStatus> {
        // (A client's copy of the cluster header was refused: `foreign_cluster_header`.)
        h.remove_request_header("authorization");
        match h.request_header(":method") {
            Some(b"GET" | b"HEAD" | b"OPTIONS") => {
                // No fan-in of backend streams: the spec's answer for a server without one. HEAD
                // and OPTIONS have nothing to reach either: nothing goes to a backend unplanned.
                let mut r = Refusal::new(
                    Why::MethodNotAllowed,
                    format!(
                        "virtual server {:?} offers no GET event stream (MCP: 405); send requests with POST",
                        vs.name
                    ),
                );
                r.allow = Some("POST, DELETE");
                self.reject(rt, h, r);
                Some(HeadersStatus::StopIteration)
            }
            Some(b"DELETE") if !end_of_stream => {
                let r = Refusal::new(Why::InvalidRequest, "a DELETE must not carry a body");
                self.reject(rt, h, r);
                Some(HeadersStatus::StopIteration)
            }
            Some(b"DELETE") if end_of_stream => {
                let session = match self.open_session(rt, h, vs, None) {
                    Ok(Some(s)) => s,
                    Ok(None) => {
                        let r = Refusal::new(Why::InvalidRequest, "DELETE needs an Mcp-Session-Id");
                        self.reject(rt, h, r);
                        return Some(HeadersStatus::StopIteration);
                    }
                    Err(r) => {
                        self.reject(rt, h, *r);
                        return Some(HeadersStatus::StopIteration);
                    }
                };
                self.request = RequestState::Done;
                let mut st = FanOutState {
                    kind: FanOut::Notification,
                    id: None,
                    session: Some(session),
                    pending: Vec::new(),
                    got: Vec::new(),
                    delete: true,
                };
                let targets: Vec<(usize, Option<String>)> = st
                    .session
                    .iter()
                    .flat_map(|s| s.members.iter())
                    .filter_map(|m| Some((vs.by_name(&m.backend)?, m.session.clone())))
                    .filter(|(_, sid)| sid.is_some())
                    .collect();
                for (b, _) in targets {
                    self.start_callout(rt, h, vs, &mut st, b, None, b"");
                }
                Some(self.wait_or_finish(rt, h, vs, st).into_headers())
            }
            _ => None,
        }
    }

    /// Open the client's session id, if it sent one. `Err`: the refusal to send.
    fn open_session(
        &self,
        _rt: &Runtime,
        h: &impl Host,
        vs: &VirtualServer,
        id: Option<&str>,
    ) -> Result<Option<Session>, Box<Refusal>> {
        let Some(raw) = h.request_header("mcp-session-id") else {
            return Ok(None);
        };
        let token = std::str::from_utf8(raw).unwrap_or("");
        let binding = session::binding(self.principal.as_deref());
        match vs.keys.open(token, &vs.name, &binding, now_secs(), vs.ttl_secs) {
            Ok(s) => Ok(Some(s)),
            Err(OpenError::OtherPrincipal) => Err(Box::new(
                Refusal::new(
                    Why::Forbidden,
                    "this session belongs to another principal: initialize a session of your own",
                )
                .id(id),
            )),
            Err(e) => Err(Box::new(
                Refusal::new(Why::SessionNotFound, format!("{e}: initialize again")).id(id),
            )),
        }
    }

    /// Body hook, on a virtual server's route: one JSON-RPC message (batches are refused:
    /// they belong to 2025-03-26, which virtual servers do not speak).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn judge_virtual(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        vs: &VirtualServer,
        msg: &Message<'_>,
        body: &[u8],
        header_copy: Option<&[(Vec<u8>, Vec<u8>)]>,
        headers: Option<&McpHeaders<'_>>,
    ) -> BodyStatus {
        let id = msg.id().map(|i| i.as_json().to_owned());
        let session = match self.open_session(rt, h, vs, id.as_deref()) {
            Ok(s) => s,
            Err(r) => {
                self.reject(rt, h, *r);
                return BodyStatus::StopNoBuffer;
            }
        };
        let resolve = |b: usize, exposed: &str| -> Option<String> {
            let _ = b;
            SHORTENED.with(|m| m.borrow().get(&(vs.name.clone(), exposed.to_owned())).cloned())
        };
        match dispatch::plan(vs, msg, &resolve) {
            Plan::Ping => {
                let body = merge::response(id.as_deref().unwrap_or("null"), b"{}");
                self.request = RequestState::Done;
                h.send_response(&json_reply(body, "mcp_policy_ping"));
                BodyStatus::StopNoBuffer
            }
            Plan::Refuse(r) => {
                h.increment_counter(
                    rt.stats.requests_total,
                    &[
                        &vs.name,
                        Method::from_name(msg.method().unwrap_or("")).label(),
                        "reject",
                    ],
                    1,
                );
                self.reject(rt, h, r);
                BodyStatus::StopNoBuffer
            }
            Plan::Dispatch { backend, body, name } => {
                self.dispatch(rt, h, vs, session, backend, body, name, header_copy)
            }
            Plan::FanOut(kind) => self.fan_out(rt, h, vs, session, kind, msg, body, id, headers),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        vs: &VirtualServer,
        session: Option<Session>,
        b: usize,
        body: Vec<u8>,
        name: Option<String>,
        header_copy: Option<&[(Vec<u8>, Vec<u8>)]>,
    ) -> BodyStatus {
        let backend = &vs.backends[b];
        let member = session.as_ref().and_then(|s| s.member(&backend.name).cloned());
        let parsed = match jsonrpc::parse(&body) {
            Ok(Body::Single(m)) => m,
            _ => {
                let r = Refusal::new(Why::InternalError, "the rewritten request does not parse");
                self.reject(rt, h, r);
                return BodyStatus::StopNoBuffer;
            }
        };
        let id = parsed.id().map(|i| i.as_json().to_owned());
        if session.is_some() && member.is_none() {
            let r = Refusal::new(
                Why::BackendUnavailable,
                format!(
                    "backend {:?} is not part of this session (it was unavailable at initialize): initialize again",
                    backend.name
                ),
            )
            .id(id.as_deref());
            self.reject(rt, h, r);
            return BodyStatus::StopNoBuffer;
        }
        // The request is judged as the backend will see it, under the backend's name.
        self.server = Some(backend.name.clone());
        h.set_metadata("virtual_server", &vs.name);
        let rewritten_name = name.as_deref().map(str::as_bytes);
        // The client's headers as the backend receives them (the copy judge_request made).
        let owned: Option<Vec<(Vec<u8>, Vec<u8>)>> = header_copy.map(|copy| {
            let mut copy = copy.to_vec();
            for (k, v) in copy.iter_mut() {
                if k.eq_ignore_ascii_case(b"mcp-name") {
                    if let Some(n) = rewritten_name {
                        *v = n.to_vec();
                    }
                } else if k.eq_ignore_ascii_case(b"mcp-protocol-version") {
                    if let Some(m) = &member {
                        *v = m.version.as_bytes().to_vec();
                    }
                }
            }
            copy
        });
        let hs = match collect_mcp_headers(owned.as_deref()) {
            Ok(hs) => hs,
            Err(r) => {
                self.reject(rt, h, *r);
                return BodyStatus::StopNoBuffer;
            }
        };
        match self.judge_message(rt, h, &parsed, hs.as_ref()) {
            Verdict::Refuse(r) => {
                self.request = RequestState::Done;
                h.send_response(&r);
                BodyStatus::StopNoBuffer
            }
            Verdict::Forward(_) => {
                h.set_metadata("backend", &backend.name);
                h.replace_body(Side::Request, &body);
                h.set_request_header("content-length", body.len().to_string().as_bytes());
                h.set_request_header(":path", backend.path.as_bytes());
                h.set_request_header(":authority", backend.authority.as_bytes());
                h.set_request_header(&vs.cluster_header, backend.cluster.as_bytes());
                match member.as_ref().and_then(|m| m.session.as_deref()) {
                    Some(sid) => h.set_request_header("mcp-session-id", sid.as_bytes()),
                    None => h.remove_request_header("mcp-session-id"),
                }
                if let Some(m) = &member {
                    if h.request_header("mcp-protocol-version").is_some() {
                        h.set_request_header("mcp-protocol-version", m.version.as_bytes());
                    }
                }
                if let (Some(n), true) = (rewritten_name, h.request_header("mcp-name").is_some()) {
                    h.set_request_header("mcp-name", n);
                }
                match rt.config.credentials.get(&backend.name) {
                    Some(cred) => h.set_request_header("authorization", cred.as_bytes()),
                    None => h.remove_request_header("authorization"),
                }
                h.set_request_header("accept-encoding", b"identity");
                // Envoy matches the route again: the dispatch route (the one matching on the
                // cluster header, which only the module sets) sends it to the backend's cluster.
                h.clear_route_cache();
                self.request_id = id.clone();
                let mut expect = Expect::dispatched(id.as_deref(), &backend.prefix, &backend.name);
                if let Some(a) = super::integrity::reads_answer(rt, &backend.name, parsed.method()) {
                    expect.judge_answer(a);
                }
                self.expect = Some(expect);
                self.dispatched = true;
                BodyStatus::Continue
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fan_out(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        vs: &VirtualServer,
        session: Option<Session>,
        kind: FanOut,
        msg: &Message<'_>,
        client_body: &[u8],
        id: Option<String>,
        headers: Option<&McpHeaders<'_>>,
    ) -> BodyStatus {
        h.set_metadata("virtual_server", &vs.name);
        let initialize = matches!(kind, FanOut::Initialize | FanOut::Discover);
        // Which backends, and with which cursor.
        let mut targets: Vec<(usize, Option<String>)> = match (&session, initialize) {
            (Some(s), false) => s
                .members
                .iter()
                .filter(|m| match kind {
                    FanOut::List(k) => merge::serves(m, merge::list_letter(k)),
                    FanOut::SetLevel => merge::serves(m, 'l'),
                    _ => true,
                })
                .filter_map(|m| vs.by_name(&m.backend).map(|b| (b, None)))
                .collect(),
            _ => (0..vs.backends.len()).map(|b| (b, None)).collect(),
        };
        if let FanOut::List(k) = kind {
            let cursor = msg
                .params()
                .and_then(|p| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(p.get()).ok())
                .and_then(|p| p.get("cursor").and_then(|c| c.as_str().map(str::to_owned)));
            if let Some(c) = cursor {
                match merge::decode_cursor(k, &c) {
                    Ok(parts) => {
                        targets = parts
                            .into_iter()
                            .filter_map(|(name, cur)| {
                                let b = vs.by_name(&name)?;
                                targets.iter().any(|(t, _)| *t == b).then_some((b, Some(cur)))
                            })
                            .collect();
                    }
                    Err(e) => {
                        let r = Refusal::new(Why::InvalidParams, e).id(id.as_deref());
                        self.reject(rt, h, r);
                        return BodyStatus::StopNoBuffer;
                    }
                }
            }
        }
        // Each backend judges the method under its own name: a caller the policy keeps from a
        // backend's list simply does not get that backend's part.
        let mut first_refusal: Option<Reply> = None;
        let mut allowed = Vec::with_capacity(targets.len());
        for (b, cur) in targets {
            self.server = Some(vs.backends[b].name.clone());
            // The client's 2026-07-28 headers are checked against its body (nothing is renamed
            // in a fan-out request).
            match self.judge_message(rt, h, msg, headers) {
                Verdict::Forward(_) => allowed.push((b, cur)),
                Verdict::Refuse(r) => {
                    first_refusal.get_or_insert(r);
                }
            }
        }
        self.server = Some(vs.name.clone());
        // The log line is the virtual server's (each backend's decision was counted above).
        h.set_metadata("server", &vs.name);
        self.request = RequestState::Done;
        if allowed.is_empty() {
            if let Some(r) = first_refusal {
                h.send_response(&r);
                return BodyStatus::StopNoBuffer;
            }
        }
        let mut st = FanOutState {
            kind,
            id,
            session,
            pending: Vec::new(),
            got: Vec::new(),
            delete: false,
        };
        for (b, cur) in allowed {
            let body = match kind {
                FanOut::List(_) => dispatch::list_request(msg, cur.as_deref()),
                _ => client_body.to_vec(),
            };
            self.start_callout(rt, h, vs, &mut st, b, Some(()), &body);
        }
        self.wait_or_finish(rt, h, vs, st).into_body()
    }

    /// Start one backend's callout (`post`: `Some` for a POST with `body`, `None` for DELETE).
    #[allow(clippy::too_many_arguments)]
    fn start_callout(
        &self,
        rt: &Runtime,
        h: &mut impl Host,
        vs: &VirtualServer,
        st: &mut FanOutState,
        b: usize,
        post: Option<()>,
        body: &[u8],
    ) {
        let backend = &vs.backends[b];
        let member: Option<&Member> = st.session.as_ref().and_then(|s| s.member(&backend.name));
        let mut owned: Vec<(&str, Vec<u8>)> = vec![
            (
                ":method",
                if post.is_some() {
                    b"POST".to_vec()
                } else {
                    b"DELETE".to_vec()
                },
            ),
            (":path", backend.path.as_bytes().to_vec()),
            ("host", backend.authority.as_bytes().to_vec()),
            ("accept", b"application/json, text/event-stream".to_vec()),
            ("accept-encoding", b"identity".to_vec()),
        ];
        if post.is_some() {
            owned.push(("content-type", b"application/json".to_vec()));
        }
        if let Some(sid) = member.and_then(|m| m.session.as_deref()) {
            owned.push(("mcp-session-id", sid.as_bytes().to_vec()));
        }
        let version = member
            .map(|m| m.version.as_bytes().to_vec())
            .or_else(|| h.request_header("mcp-protocol-version").map(<[u8]>::to_vec));
        if let Some(v) = version.filter(|_| st.kind != FanOut::Initialize) {
            owned.push(("mcp-protocol-version", v));
        }
        if let Some(cred) = rt.config.credentials.get(&backend.name) {
            owned.push(("authorization", cred.as_bytes().to_vec()));
        }
        for name in rt.config.identity_headers.iter().chain(COPIED) {
            if let Some(v) = h.request_header(name) {
                owned.push((name, v.to_vec()));
            }
        }
        let headers: Vec<(&str, &[u8])> = owned.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        match h.http_callout(&backend.cluster, &headers, body, backend.timeout_ms) {
            Ok(cid) => st.pending.push((cid, b)),
            Err(why) => st.got.push((b, Got::Failed(format!("could not send: {why}")), None)),
        }
    }

    /// Wait for the callouts, or answer now if none is outstanding.
    fn wait_or_finish(&mut self, rt: &Runtime, h: &mut impl Host, vs: &VirtualServer, st: FanOutState) -> Waiting {
        if st.pending.is_empty() {
            self.finish_fan_out(rt, h, vs, st);
            return Waiting::Answered;
        }
        self.fanout = Some(Box::new(st));
        Waiting::Waiting
    }

    /// A callout's answer (`result`: the ABI's callout result).
    pub fn on_callout_done(
        &mut self,
        rt: &Runtime,
        h: &mut impl Host,
        callout: u64,
        result: u32,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
    ) {
        let Some(vs) = self.virtual_server(rt) else { return };
        let Some(mut st) = self.fanout.take() else { return };
        let Some(pos) = st.pending.iter().position(|(c, _)| *c == callout) else {
            self.fanout = Some(st);
            return;
        };
        let (_, b) = st.pending.remove(pos);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| *v)
        };
        let sid = header("mcp-session-id")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned);
        let has_session = st
            .session
            .as_ref()
            .is_some_and(|s| s.member(&vs.backends[b].name).is_some_and(|m| m.session.is_some()));
        let reply = match result {
            crate::abi::callout_result::SUCCESS => {
                let status = header(":status")
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(|s| s.parse::<u16>().ok())
                    .unwrap_or(0);
                Ok(merge::Reply {
                    status,
                    content_type: header("content-type"),
                    body,
                })
            }
            crate::abi::callout_result::EXCEED_RESPONSE_BUFFER_LIMIT => {
                Err("the answer exceeds Envoy's buffer limit".to_owned())
            }
            _ => Err("the request was reset (unreachable or timed out)".to_owned()),
        };
        let got = if st.delete || st.kind == FanOut::Notification {
            match reply {
                Ok(r) if (200..300).contains(&r.status) || r.status == 404 => Got::Result(Vec::new()),
                Ok(r) => Got::Failed(format!("HTTP {}", r.status)),
                Err(e) => Got::Failed(e),
            }
        } else {
            merge::classify(reply, st.id.as_deref().unwrap_or("null"), has_session)
        };
        st.got.push((b, got, sid));
        if st.pending.is_empty() {
            self.finish_fan_out(rt, h, vs, *st);
        } else {
            self.fanout = Some(st);
        }
    }

    fn finish_fan_out(&mut self, rt: &Runtime, h: &mut impl Host, vs: &VirtualServer, mut st: FanOutState) {
        st.got.sort_by_key(|(b, _, _)| *b);
        for (b, g, _) in &st.got {
            if matches!(g, Got::Failed(_)) {
                h.increment_counter(rt.stats.backend_failures_total, &[&vs.name, &vs.backends[*b].name], 1);
            }
        }
        let id = st.id.clone().unwrap_or_else(|| "null".to_owned());
        let failed = |f: merge::Failure| {
            let why = if f.expired {
                Why::SessionNotFound
            } else {
                Why::BackendUnavailable
            };
            Refusal::new(why, f.message()).id(Some(&id))
        };
        let mut refusal: Option<Refusal> = None;
        let mut answer: Option<(Vec<u8>, Option<String>, Vec<String>)> = None;
        match st.kind {
            _ if st.delete => {
                answer = Some((Vec::new(), None, Vec::new()));
            }
            FanOut::Notification => answer = Some((Vec::new(), None, Vec::new())),
            FanOut::Initialize | FanOut::Discover => {
                let got = std::mem::take(&mut st.got);
                let mut found = Vec::new();
                let integ = rt.config.integrity.as_ref();
                let merged = merge::initialize(vs, got, &mut |b, t| {
                    super::integrity::backend_instructions(integ, b, t, &mut found)
                });
                for (backend, r) in &found {
                    self.record_text(rt, h, backend, "instructions", r);
                }
                match merged {
                    Err(f) => refusal = Some(failed(f)),
                    Ok(init) => {
                        let sid = if st.kind == FanOut::Initialize {
                            let s = Session {
                                server: vs.name.clone(),
                                principal: session::binding(self.principal.as_deref()),
                                issued: now_secs(),
                                version: init.version.clone(),
                                members: init.members,
                            };
                            vs.keys.seal(&s)
                        } else {
                            None
                        };
                        if st.kind == FanOut::Initialize && sid.is_none() {
                            refusal =
                                Some(Refusal::new(Why::InternalError, "could not seal the session id").id(Some(&id)));
                        } else {
                            answer = Some((merge::response(&id, &init.result), sid, init.missing));
                        }
                    }
                }
            }
            FanOut::List(kind) => {
                let got: Vec<(usize, Got)> = std::mem::take(&mut st.got)
                    .into_iter()
                    .map(|(b, g, _)| (b, g))
                    .collect();
                let anonymous = Principal::anonymous();
                let principal = self.principal.as_deref().unwrap_or(&anonymous);
                let views: Vec<Option<policy::PrincipalView<'_, '_>>> = vs
                    .backends
                    .iter()
                    .map(|b| rt.config.policy.as_ref().map(|p| p.for_principal(principal, &b.name)))
                    .collect();
                let mut judge = super::integrity::BackendJudge {
                    vs,
                    views: &views,
                    integrity: rt.config.integrity.as_ref(),
                    reports: Vec::new(),
                };
                let merged = merge::list(vs, kind, got, &mut judge);
                let reports = std::mem::take(&mut judge.reports);
                if !reports.is_empty() {
                    self.record_integrity(rt, h, reports.iter().map(|(b, k, r)| (b.as_str(), *k, r)));
                }
                match merged {
                    Err(f) => refusal = Some(failed(f)),
                    Ok(l) => {
                        if l.hidden > 0 {
                            h.increment_counter(
                                rt.stats.list_items_hidden_total,
                                &[&vs.name, kind_label(kind)],
                                l.hidden as u64,
                            );
                        }
                        if !l.shortened.is_empty() {
                            SHORTENED.with(|m| {
                                let mut m = m.borrow_mut();
                                if m.len() > SHORTENED_MAX {
                                    m.clear();
                                }
                                for (_, exposed, orig) in &l.shortened {
                                    m.insert((vs.name.clone(), exposed.clone()), orig.clone());
                                }
                            });
                        }
                        answer = Some((merge::response(&id, &l.result), None, l.missing));
                    }
                }
            }
            FanOut::SetLevel => {
                let got: Vec<(usize, Got)> = std::mem::take(&mut st.got)
                    .into_iter()
                    .map(|(b, g, _)| (b, g))
                    .collect();
                match merge::acknowledged(vs, &got) {
                    Err(f) => refusal = Some(failed(f)),
                    Ok(missing) => answer = Some((merge::response(&id, b"{}"), None, missing)),
                }
            }
        }
        if let Some(r) = refusal {
            self.reject(rt, h, r);
            return;
        }
        let Some((body, sid, missing)) = answer else { return };
        if !missing.is_empty() {
            h.set_metadata("missing_backends", &missing.join(","));
        }
        if body.is_empty() {
            // Notifications and DELETE: accepted, no body.
            h.send_response(&Reply {
                status: if st.delete { 200 } else { 202 },
                headers: vec![],
                body: Vec::new(),
                details: "mcp_policy_fan_out",
            });
            return;
        }
        let mut reply = json_reply(body, "mcp_policy_fan_out");
        if let Some(sid) = sid {
            reply.headers.push(("mcp-session-id", sid));
        }
        h.send_response(&reply);
    }
}

/// Whether a fan-out is waiting for callouts.
pub(super) enum Waiting {
    Waiting,
    Answered,
}

impl Waiting {
    fn into_body(self) -> BodyStatus {
        BodyStatus::StopNoBuffer
    }

    fn into_headers(self) -> HeadersStatus {
        HeadersStatus::StopIteration
    }
}
