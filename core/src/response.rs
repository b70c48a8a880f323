//! The response path, in one rule: **an answer the gateway must read is either rewritten or
//! replaced by a JSON-RPC error carrying the request's id.** Nothing it could not judge is
//! delivered.
//!
//! Owns: what the gateway expects back for the requests it forwarded ([`Expect`]: list
//! requests, whose results are filtered per principal, other forwarded ids, and the gateway's
//! own answers for refused batch elements), the decision taken at response headers
//! ([`Expect::start`]: allow-list of statuses, media types and content codings), the JSON body
//! rewriter ([`Expect::rewrite_json`]) and the incremental SSE rewriter ([`SseRewriter`]). Does
//! not own: who may see what (the caller's `keep` predicate), Envoy (the filter is glue).
//!
//! How a message on a response that must be read is judged (JSON body, batch element or SSE
//! event alike):
//! - a request or notification from the server passes;
//! - a response is matched to a forwarded request by [`IdKey`] (ids as JSON values); a list
//!   result is filtered, or, if it cannot be, replaced by an error for that id;
//! - a response that matches no forwarded request, a second response for the same id, or a
//!   message that cannot be parsed is dropped, and in a JSON batch the list answers are then
//!   replaced by errors too (an upstream confused about ids is not trusted with lists);
//! - at the end, every list request still unanswered gets an error, and the gateway's own
//!   batch answers are merged in.
//!
//! Statuses outside 2xx pass untouched: clients treat them as transport errors and do not read
//! their bodies as MCP messages (and a 404 must reach the client: it ends the session).

use crate::jsonrpc::{code, IdKey};
use crate::reply::{self, join_array};
use crate::rewrite::{self, Kind, Rewrite, Shape};
use crate::sse;

/// Reason labels (bounded, for stats and access logs) of the refusals this module makes.
pub mod reason {
    /// Media type, content coding or framing the gateway does not read.
    pub const UNREADABLE: &str = "response_unreadable";
    /// A list result that cannot be filtered (malformed, wrong shape).
    pub const UNFILTERABLE: &str = "response_unfilterable";
    /// The answer to a list request never came (empty body, stream ended, dropped).
    pub const MISSING: &str = "response_missing";
    /// A response whose id matches no forwarded request, or repeats one.
    pub const UNKNOWN_ID: &str = "response_unknown_id";
    /// Over the gateway's limit for a body or event it must read.
    pub const TOO_LARGE: &str = "response_too_large";
}

/// Who decides what a list answer keeps: `keep` (policy visibility, by name) for every
/// caller; `edits` for a caller that judges whole items (tool-definition integrity), given
/// the walked message. Any `FnMut(Kind, &str) -> bool` is a `Lists` that only keeps.
pub trait Lists {
    fn keep(&mut self, kind: Kind, name: &str) -> bool;
    /// One edit per item of list `kind` (`None`: filter by [`Lists::keep`] alone). An
    /// implementation applies `keep` itself when it answers.
    fn edits(&mut self, _kind: Kind, _scan: &rewrite::Scan<'_>) -> Option<Vec<crate::integrity::Edit>> {
        None
    }
    /// The `initialize` answer `scan`, rewritten (its `instructions` judged), or `None` to
    /// deliver it as served.
    fn instructions(&mut self, _scan: &rewrite::Scan<'_>) -> Option<Vec<u8>> {
        None
    }
    /// A call's result (`tools/call`), judged: rewritten, or `None` to deliver it as served.
    fn result(&mut self, _scan: &rewrite::Scan<'_>) -> Option<Vec<u8>> {
        None
    }
}

impl<F: FnMut(Kind, &str) -> bool> Lists for F {
    fn keep(&mut self, kind: Kind, name: &str) -> bool {
        self(kind, name)
    }
}

/// Filter (or edit) list `kind` of `scan` as `keep` says.
fn apply<F: Lists + ?Sized>(
    scan: &rewrite::Scan<'_>,
    kind: Kind,
    keep: &mut F,
) -> Result<Rewrite, rewrite::RewriteError> {
    match keep.edits(kind, scan) {
        Some(edits) => scan.splice(kind, &edits),
        None => scan.filter(kind, |k, n| keep.keep(k, n)),
    }
}

/// One forwarded request the response may answer.
#[derive(Debug, Clone)]
struct Pending {
    /// `None` when the id cannot be compared (never the case for ids the request path
    /// accepted); such an entry matches nothing.
    key: Option<IdKey>,
    /// The id as the client sent it, echoed back in errors so the client can match them.
    raw: String,
    /// A list request (enforce mode): its result is filtered by this kind.
    list: Option<Kind>,
    /// An answer read for what it says (not a list): see [`Answer`].
    answer: Option<Answer>,
    answered: bool,
}

/// Answers other than lists that the caller judges (tool-definition integrity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An `initialize`: its `instructions`, through [`Lists::instructions`].
    Instructions,
    /// A call: its result, through [`Lists::result`].
    Result,
}

/// What the response must contain, recorded on the request path.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pending: Vec<Pending>,
    /// The gateway's own answers (JSON-RPC objects) for refused batch elements.
    answers: Vec<Vec<u8>>,
    /// The request was a batch: the JSON answer is an array.
    batch: bool,
    /// A stream not tied to one request (the GET stream, where a resumed stream may replay
    /// answers sent on other streams): every answer holding a list is filtered by the list it
    /// holds, whatever its id.
    by_shape: bool,
    /// A request a virtual server dispatched to the backend with this prefix: the answer is
    /// always read, and requests the backend sends to the client get tagged ids
    /// (`vserver::dispatch::tag_id`) so the client's answers find their way back.
    tag: Option<Tag>,
}

/// The backend a virtual server dispatched a request to.
#[derive(Debug, Clone)]
struct Tag {
    prefix: String,
    backend: String,
}

/// What happened while judging a response, for counters and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Items hidden, by kind (`Kind as usize` order: tool, resource, template, prompt).
    pub removed: [usize; 4],
    /// Messages refused or dropped.
    pub refused: usize,
    /// The first refusal: (reason label, human-readable detail).
    pub first: Option<(&'static str, String)>,
}

impl Tally {
    fn refuse(&mut self, why: &'static str, detail: impl FnOnce() -> String) {
        self.refused += 1;
        if self.first.is_none() {
            self.first = Some((why, detail()));
        }
    }
}

fn kind_index(k: Kind) -> usize {
    match k {
        Kind::Tool => 0,
        Kind::Resource => 1,
        Kind::ResourceTemplate => 2,
        Kind::Prompt => 3,
    }
}

/// All list kinds, in [`Tally::removed`] order.
pub const KINDS: [Kind; 4] = [Kind::Tool, Kind::Resource, Kind::ResourceTemplate, Kind::Prompt];

/// What to do with a response, decided at its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Nothing to read: deliver as it comes.
    PassThrough,
    /// Buffer the whole body, then [`Expect::rewrite_json`].
    Json,
    /// Rewrite event by event with an [`SseRewriter`].
    Sse,
    /// Replace the body-less response with the gateway's own batch answers (HTTP 200,
    /// `application/json`): not a refusal.
    Answer(Vec<u8>),
    /// Replace the whole response: HTTP `status` (200 for a 2xx answer, else the upstream's), `application/json`, this body
    /// ([`Expect::refusal_body`]); `why` is the reason label, `detail` says what was wrong.
    Replace {
        status: u16,
        why: &'static str,
        detail: String,
        body: Vec<u8>,
    },
}

/// The gateway's error for a list answer it refused (-32603, JSON-RPC 2.0 §5.1).
fn error_for(raw_id: &str, detail: &str) -> Vec<u8> {
    let message = format!("the gateway could not filter the upstream's answer, so it withheld it: {detail}");
    reply::jsonrpc_error_body(Some(raw_id), code::INTERNAL_ERROR, &message, None)
}

fn media_type(ct: &[u8]) -> &[u8] {
    ct.split(|b| *b == b';').next().unwrap_or_default().trim_ascii()
}

impl Expect {
    pub fn new(batch: bool) -> Expect {
        Expect {
            batch,
            ..Expect::default()
        }
    }

    /// The GET stream (server-to-client messages, and replays when resuming with
    /// `Last-Event-ID`): lists are recognised by shape, since their requests were made on
    /// other streams.
    pub fn stream() -> Expect {
        Expect {
            by_shape: true,
            ..Expect::default()
        }
    }

    /// A single list request: the common case.
    pub fn single_list(raw_id: &str, kind: Kind) -> Expect {
        let mut e = Expect::new(false);
        e.forwarded(raw_id, Some(kind));
        e
    }

    /// A single request whose answer is judged as `answer` says: read, and passed through
    /// [`Lists::instructions`] or [`Lists::result`].
    pub fn single_answer(raw_id: &str, answer: Answer) -> Expect {
        let mut e = Expect::new(false);
        e.forwarded(raw_id, None);
        e.judge_answer(answer);
        e
    }

    /// A request a virtual server dispatched to the backend with `prefix` (`raw_id`: the
    /// request's id, `None` for a client's answer to a server request).
    pub fn dispatched(raw_id: Option<&str>, prefix: &str, backend: &str) -> Expect {
        let mut e = Expect::new(false);
        if let Some(id) = raw_id {
            e.forwarded(id, None);
        }
        e.tag = Some(Tag {
            prefix: prefix.to_owned(),
            backend: backend.to_owned(),
        });
        e
    }

    /// Record a forwarded request with id `raw_id` (raw JSON); `list` when its result must be
    /// filtered.
    pub fn forwarded(&mut self, raw_id: &str, list: Option<Kind>) {
        self.pending.push(Pending {
            key: IdKey::from_json(raw_id),
            raw: raw_id.to_owned(),
            list,
            answer: None,
            answered: false,
        });
    }

    /// Judge the answer to the request recorded last as `answer` says.
    pub fn judge_answer(&mut self, answer: Answer) {
        if let Some(p) = self.pending.last_mut() {
            p.answer = Some(answer);
        }
    }

    /// Record the gateway's own answer (a JSON-RPC object) to merge into the response.
    pub fn answer(&mut self, body: Vec<u8>) {
        self.answers.push(body);
    }

    /// Does the response need reading at all?
    pub fn must_read(&self) -> bool {
        self.by_shape
            || self.tag.is_some()
            || !self.answers.is_empty()
            || self.pending.iter().any(|p| p.list.is_some() || p.answer.is_some())
    }

    pub fn is_batch(&self) -> bool {
        self.batch
    }

    /// Decide at response headers. `content_type` and `content_encoding` are the header
    /// values as received (`None` when absent).
    pub fn start(
        &self,
        status: u16,
        content_type: Option<&[u8]>,
        content_encoding: Option<&[u8]>,
        end_of_stream: bool,
    ) -> Start {
        // 1xx and 3xx carry no MCP message (a redirect is followed by the client). Errors
        // (4xx, 5xx) are read like successes: some clients show an error's body to the user
        // (the TypeScript SDK puts it in the error message), so a list in it is filtered too;
        // their status is kept, so a 404 still ends the session.
        if !self.must_read() || !(200..300).contains(&status) && !(400..600).contains(&status) {
            return Start::PassThrough;
        }
        if let Some(tag) = &self.tag {
            if let Some(s) = self.start_dispatched(tag, status, content_type, end_of_stream) {
                return s;
            }
        }
        if self.by_shape && (end_of_stream || !(200..300).contains(&status)) {
            // The GET stream refused (405 from servers without one) or empty: no message.
            return Start::PassThrough;
        }
        let status = if (200..300).contains(&status) { 200 } else { status };
        let replace = |why, detail: String| {
            let body = self.refusal_body(&detail);
            Start::Replace {
                status,
                why,
                detail,
                body,
            }
        };
        if end_of_stream {
            if self.pending.is_empty() {
                // Only notifications went upstream (202, no body): the gateway's answers are
                // the whole reply.
                return Start::Answer(self.assemble(self.answers.clone(), true));
            }
            return replace(reason::MISSING, "the upstream answered with no body".into());
        }
        if let Some(enc) = content_encoding {
            let enc = enc.trim_ascii();
            if !enc.is_empty() && !enc.eq_ignore_ascii_case(b"identity") {
                return replace(
                    reason::UNREADABLE,
                    format!(
                        "content-encoding {:?} (the gateway asked for identity)",
                        String::from_utf8_lossy(enc)
                    ),
                );
            }
        }
        let Some(ct) = content_type else {
            return replace(reason::UNREADABLE, "no content-type".into());
        };
        let media = media_type(ct);
        if media.eq_ignore_ascii_case(b"application/json") {
            Start::Json
        } else if media.eq_ignore_ascii_case(b"text/event-stream") {
            Start::Sse
        } else {
            replace(
                reason::UNREADABLE,
                format!(
                    "content-type {:?} is neither application/json nor text/event-stream",
                    String::from_utf8_lossy(ct)
                ),
            )
        }
    }

    /// A virtual server's dispatched request: a backend that ended its session gives the
    /// client the spec's 404 (initialize again); a backend that is down or answers something
    /// unreadable gives a JSON-RPC error naming it with HTTP 200 (an HTTP 5xx would end the
    /// client's session). `None`: read the answer as usual.
    fn start_dispatched(
        &self,
        tag: &Tag,
        status: u16,
        content_type: Option<&[u8]>,
        end_of_stream: bool,
    ) -> Option<Start> {
        if self.pending.is_empty() {
            // A client's answer to a server request: 202, nothing to read.
            return Some(Start::PassThrough);
        }
        let readable = !end_of_stream
            && content_type.map(media_type).is_some_and(|m| {
                m.eq_ignore_ascii_case(b"application/json") || m.eq_ignore_ascii_case(b"text/event-stream")
            });
        let (status, why, code, message) = if status == 404 {
            (
                404,
                "session_not_found",
                code::INVALID_REQUEST,
                format!("backend {:?} ended its session: initialize again", tag.backend),
            )
        } else if (500..600).contains(&status) && !readable {
            (
                200,
                "backend_unavailable",
                crate::refusal::BACKEND_UNAVAILABLE,
                format!("backend {:?} is unavailable (HTTP {status})", tag.backend),
            )
        } else {
            return None;
        };
        let body = join_or_one(
            self.pending
                .iter()
                .map(|p| reply::jsonrpc_error_body(Some(&p.raw), code, &message, None))
                .collect(),
        );
        Some(Start::Replace {
            status,
            why,
            detail: message,
            body,
        })
    }

    /// The whole reply when nothing of the upstream's can be delivered: an error for every
    /// forwarded request not yet answered, and the gateway's own answers. A single object for
    /// a single request, an array for a batch.
    pub fn refusal_body(&self, detail: &str) -> Vec<u8> {
        let mut items: Vec<Vec<u8>> = self
            .pending
            .iter()
            .filter(|p| !p.answered)
            .map(|p| error_for(&p.raw, detail))
            .collect();
        items.extend(self.answers.iter().cloned());
        self.assemble(items, false)
    }

    fn assemble(&self, mut items: Vec<Vec<u8>>, array: bool) -> Vec<u8> {
        if !array && !self.batch && items.len() == 1 {
            return items.pop().unwrap_or_default();
        }
        join_array(items.iter().map(Vec::as_slice))
    }

    /// Errors for list requests still unanswered (marking them answered).
    fn close_lists(&mut self, detail: &str, out: &mut Vec<Vec<u8>>, tally: &mut Tally) {
        for p in self.pending.iter_mut().filter(|p| p.list.is_some() && !p.answered) {
            p.answered = true;
            tally.refuse(reason::MISSING, || detail.to_owned());
            out.push(error_for(&p.raw, detail));
        }
    }

    /// Judge one message against what was forwarded.
    fn judge<F>(&mut self, msg: &[u8], keep: &mut F, tally: &mut Tally) -> Judged
    where
        F: Lists + ?Sized,
    {
        let scan = match rewrite::scan(msg) {
            Ok(s) => s,
            Err(e) => {
                tally.refuse(reason::UNFILTERABLE, || format!("a message cannot be parsed: {e}"));
                return Judged::Drop;
            }
        };
        if scan.shape() == Shape::Request {
            if let (Some(tag), Some(id)) = (&self.tag, scan.id()) {
                // Tag the id so the client's answer is routed back to this backend.
                let start = id.as_ptr() as usize - msg.as_ptr() as usize;
                let mut out = Vec::with_capacity(msg.len() + tag.prefix.len() + 8);
                out.extend_from_slice(&msg[..start]);
                out.extend_from_slice(crate::vserver::dispatch::tag_id(&tag.prefix, id).as_bytes());
                out.extend_from_slice(&msg[start + id.len()..]);
                return Judged::Rewritten(out);
            }
        }
        if matches!(scan.shape(), Shape::Request | Shape::Notification) {
            return Judged::Keep;
        }
        if self.by_shape {
            return judge_by_shape(&scan, keep, tally);
        }
        let key = scan.id().and_then(IdKey::from_json);
        let Some(p) = key
            .as_ref()
            .and_then(|k| self.pending.iter_mut().find(|p| p.key.as_ref() == Some(k)))
        else {
            tally.refuse(reason::UNKNOWN_ID, || {
                format!(
                    "a response with id {} answers no request",
                    scan.id().unwrap_or("(none)")
                )
            });
            return Judged::Drop;
        };
        if std::mem::replace(&mut p.answered, true) {
            tally.refuse(reason::UNKNOWN_ID, || format!("a second response for id {}", p.raw));
            return Judged::Drop;
        }
        let Some(kind) = p.list else {
            let out = match (p.answer, scan.shape()) {
                (Some(Answer::Instructions), Shape::Result) => keep.instructions(&scan),
                (Some(Answer::Result), Shape::Result) => keep.result(&scan),
                _ => None,
            };
            return out.map_or(Judged::Keep, Judged::Rewritten);
        };
        match apply(&scan, kind, keep) {
            Ok(Rewrite::Unchanged) => Judged::List(None),
            Ok(Rewrite::Rewritten { body, removed }) => {
                tally.removed[kind_index(kind)] += removed;
                Judged::List(Some(body))
            }
            Err(e) => {
                let detail = format!("the {} list cannot be filtered: {e}", kind.list_key());
                let err = error_for(&p.raw, &detail);
                tally.refuse(reason::UNFILTERABLE, || detail);
                Judged::List(Some(err))
            }
        }
    }

    /// Judge a JSON text holding one message or an array of them. Returns the messages to
    /// deliver (`None` = the text unchanged) and whether it was an array.
    fn judge_text<F>(&mut self, text: &[u8], keep: &mut F, tally: &mut Tally) -> Result<Judgement, String>
    where
        F: Lists + ?Sized,
    {
        let first = text.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let (items, array): (Vec<&[u8]>, bool) = match first {
            Some(b'[') => {
                let raw: Vec<&serde_json::value::RawValue> =
                    serde_json::from_slice(text).map_err(|e| format!("the answer is not a JSON array: {e}"))?;
                (raw.iter().map(|r| r.get().as_bytes()).collect(), true)
            }
            Some(b'{') => (vec![text], false),
            Some(_) => return Err("the answer is not a JSON-RPC message".into()),
            None => return Err("the answer is empty".into()),
        };
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(items.len());
        let mut list_at: Vec<usize> = Vec::new();
        let mut changed = false;
        let mut dropped = false;
        for item in &items {
            match self.judge(item, keep, tally) {
                Judged::Keep => out.push(item.to_vec()),
                Judged::List(None) => {
                    list_at.push(out.len());
                    out.push(item.to_vec());
                }
                Judged::List(Some(body)) => {
                    changed = true;
                    list_at.push(out.len());
                    out.push(body);
                }
                Judged::Rewritten(body) => {
                    changed = true;
                    out.push(body);
                }
                Judged::Drop => {
                    changed = true;
                    dropped = true;
                }
            }
        }
        if dropped && array {
            // The upstream sent something the gateway cannot place: it is not trusted with
            // lists in this answer.
            for i in list_at {
                if let Some(raw) = self.raw_id_of(&out[i]) {
                    out[i] = error_for(
                        &raw,
                        "the upstream's batch answer held a response the gateway could not match",
                    );
                    tally.refuse(reason::UNKNOWN_ID, || "batch answer with an unmatched element".into());
                }
            }
        }
        Ok((if changed { Some(out) } else { None }, array))
    }

    /// The raw id of a message the gateway already judged (ours or the upstream's).
    fn raw_id_of(&self, msg: &[u8]) -> Option<String> {
        let scan = rewrite::scan(msg).ok()?;
        let key = IdKey::from_json(scan.id()?)?;
        self.pending
            .iter()
            .find(|p| p.key.as_ref() == Some(&key))
            .map(|p| p.raw.clone())
    }

    /// Rewrite a complete JSON body. `None` = deliver it unchanged.
    pub fn rewrite_json<F>(&mut self, body: &[u8], mut keep: F, tally: &mut Tally) -> Option<Vec<u8>>
    where
        F: FnMut(Kind, &str) -> bool,
    {
        self.rewrite_json_lists(body, &mut keep, tally)
    }

    /// [`Expect::rewrite_json`] with a whole-item judge ([`Lists`]).
    pub fn rewrite_json_lists(&mut self, body: &[u8], keep: &mut dyn Lists, tally: &mut Tally) -> Option<Vec<u8>> {
        let (items, array) = match self.judge_text(body, keep, tally) {
            Ok(r) => r,
            Err(detail) => {
                tally.refuse(reason::UNFILTERABLE, || detail.clone());
                return Some(self.refusal_body(&detail));
            }
        };
        let mut extra = Vec::new();
        self.close_lists("the upstream's answer did not include it", &mut extra, tally);
        extra.append(&mut self.answers);
        if items.is_none() && extra.is_empty() {
            return None;
        }
        let mut items = match items {
            Some(items) => items,
            None if array => return Some(splice_array(body, &extra)),
            None => vec![body.to_vec()],
        };
        items.extend(extra);
        Some(self.assemble(items, array))
    }

    /// The answer to give when a body the gateway must read exceeds its limit.
    pub fn too_large(&mut self, limit: usize, tally: &mut Tally) -> Vec<u8> {
        let detail =
            format!("the upstream's answer exceeds the gateway's limit of {limit} bytes for answers it must filter");
        tally.refuse(reason::TOO_LARGE, || detail.clone());
        self.refusal_body(&detail)
    }
}

/// An answer on a stream not tied to one request: filtered by the list it holds.
fn judge_by_shape<F>(scan: &rewrite::Scan<'_>, keep: &mut F, tally: &mut Tally) -> Judged
where
    F: Lists + ?Sized,
{
    let mut kinds = scan.list_kinds();
    let (Some(kind), None) = (kinds.next(), kinds.next()) else {
        if scan.list_kinds().next().is_some() {
            tally.refuse(reason::UNFILTERABLE, || "an answer holds more than one list".into());
            return Judged::Drop;
        }
        return Judged::Keep;
    };
    match apply(scan, kind, keep) {
        Ok(Rewrite::Unchanged) => Judged::Keep,
        Ok(Rewrite::Rewritten { body, removed }) => {
            tally.removed[kind_index(kind)] += removed;
            Judged::List(Some(body))
        }
        Err(e) => {
            tally.refuse(reason::UNFILTERABLE, || {
                format!("a replayed {} list cannot be filtered: {e}", kind.list_key())
            });
            Judged::Drop
        }
    }
}

/// The messages to deliver for a JSON text (`None` = the text unchanged), and whether the text
/// was an array.
type Judgement = (Option<Vec<Vec<u8>>>, bool);

enum Judged {
    /// Deliver as it was.
    Keep,
    /// The answer to a list request: `None` unchanged, or what to deliver instead.
    List(Option<Vec<u8>>),
    /// Deliver this instead (a server request with its id tagged).
    Rewritten(Vec<u8>),
    /// Deliver nothing for it.
    Drop,
}

/// One message as it is, several as an array.
fn join_or_one(mut items: Vec<Vec<u8>>) -> Vec<u8> {
    if items.len() == 1 {
        return items.pop().unwrap_or_default();
    }
    join_array(items.iter().map(Vec::as_slice))
}

/// `body` (a JSON array, unchanged) with `extra` elements appended before its `]`.
fn splice_array(body: &[u8], extra: &[Vec<u8>]) -> Vec<u8> {
    let end = body.iter().rposition(|b| *b == b']').unwrap_or(body.len());
    let empty = body[..end].iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut out = Vec::with_capacity(body.len() + extra.iter().map(|e| e.len() + 1).sum::<usize>());
    out.extend_from_slice(&body[..end]);
    for (i, e) in extra.iter().enumerate() {
        if i > 0 || !empty {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(&body[end..]);
    out
}

/// Incremental rewriting of a `text/event-stream` answer: every event is judged as it
/// completes; bytes of events that carry no message (priming events with empty data,
/// comments, `retry:`) are forwarded as they were.
#[derive(Debug)]
pub struct SseRewriter {
    parser: sse::Parser,
    /// Bytes received but not yet forwarded (an incomplete event), starting at stream offset `base`.
    pending: Vec<u8>,
    base: u64,
    /// The stream could not be parsed: everything after the refusal is dropped.
    failed: bool,
    /// Some byte was already forwarded (see [`forward`]).
    forwarded: bool,
}

impl SseRewriter {
    pub fn new(max_event_bytes: usize) -> SseRewriter {
        SseRewriter {
            parser: sse::Parser::with_limit(max_event_bytes),
            pending: Vec::new(),
            base: 0,
            failed: false,
            forwarded: false,
        }
    }

    /// Feed the next chunk; returns the bytes to forward now.
    pub fn push<F>(&mut self, expect: &mut Expect, chunk: &[u8], mut keep: F, tally: &mut Tally) -> Vec<u8>
    where
        F: FnMut(Kind, &str) -> bool,
    {
        self.push_lists(expect, chunk, &mut keep, tally)
    }

    /// [`SseRewriter::push`] with a whole-item judge ([`Lists`]).
    pub fn push_lists(
        &mut self,
        expect: &mut Expect,
        chunk: &[u8],
        keep: &mut dyn Lists,
        tally: &mut Tally,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(chunk.len());
        if self.failed {
            return out;
        }
        let events = match self.parser.push(chunk) {
            Ok(ev) => ev,
            Err(e) => {
                self.fail(
                    expect,
                    &format!("the event stream cannot be read: {e}"),
                    &mut out,
                    tally,
                );
                return out;
            }
        };
        self.pending.extend_from_slice(chunk);
        let mut consumed = 0usize;
        for ev in events {
            let r = ev.range();
            let (start, end) = ((r.start - self.base) as usize, (r.end - self.base) as usize);
            let raw = &self.pending[start..end];
            let fresh = !self.forwarded && out.is_empty() && r.start > 0;
            emit(expect, &ev, raw, false, fresh, keep, tally, &mut out);
            consumed = end;
        }
        self.pending.drain(..consumed);
        self.base += consumed as u64;
        self.forwarded |= !out.is_empty();
        out
    }

    /// End of stream: the bytes to append (a final event, errors for unanswered list
    /// requests, the gateway's batch answers).
    pub fn finish<F>(&mut self, expect: &mut Expect, mut keep: F, tally: &mut Tally) -> Vec<u8>
    where
        F: FnMut(Kind, &str) -> bool,
    {
        self.finish_lists(expect, &mut keep, tally)
    }

    /// [`SseRewriter::finish`] with a whole-item judge ([`Lists`]).
    pub fn finish_lists(&mut self, expect: &mut Expect, keep: &mut dyn Lists, tally: &mut Tally) -> Vec<u8> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        match self.parser.finish() {
            Ok(end) => {
                if let Some(ev) = end.event {
                    let r = ev.range();
                    let (start, stop) = ((r.start - self.base) as usize, (r.end - self.base) as usize);
                    let raw = self.pending.get(start..stop).unwrap_or_default().to_vec();
                    let fresh = !self.forwarded && r.start > 0;
                    emit(expect, &ev, &raw, false, fresh, keep, tally, &mut out);
                }
                if let Some(ev) = end.lenient {
                    let r = ev.range();
                    let (start, stop) = ((r.start - self.base) as usize, (r.end - self.base) as usize);
                    let raw = self.pending.get(start..stop).unwrap_or_default().to_vec();
                    let fresh = !self.forwarded && out.is_empty() && r.start > 0;
                    emit(expect, &ev, &raw, true, fresh, keep, tally, &mut out);
                } else if let Some(tail) = end.tail {
                    // No data: comments or fields only, nothing a client dispatches. Ended as a
                    // block of its own, so that events appended after it are not glued onto
                    // its last line (`event: x` + `event: message` would read as one event
                    // type, `xevent: message`, which clients ignore).
                    let start = (tail.start - self.base) as usize;
                    let raw = self.pending.get(start..).unwrap_or_default();
                    if std::str::from_utf8(raw).is_err() {
                        // As in `emit`: not UTF-8, not delivered.
                        tally.refuse(reason::UNFILTERABLE, || "an event is not UTF-8".into());
                    } else {
                        let fresh = !self.forwarded && out.is_empty() && tail.start > 0;
                        forward(&mut out, raw, fresh);
                        out.extend_from_slice(match raw.last() {
                            Some(b'\n') => &b"\n"[..],
                            Some(b'\r') => b"\r",
                            _ => b"\n\n",
                        });
                    }
                }
            }
            Err(e) => {
                self.fail(
                    expect,
                    &format!("the event stream cannot be read: {e}"),
                    &mut out,
                    tally,
                );
                return out;
            }
        }
        self.pending.clear();
        let mut extra = Vec::new();
        expect.close_lists("the upstream's event stream ended without it", &mut extra, tally);
        extra.append(&mut expect.answers);
        for item in extra {
            out.extend_from_slice(&message_event(&item));
        }
        out
    }

    fn fail(&mut self, expect: &mut Expect, detail: &str, out: &mut Vec<u8>, tally: &mut Tally) {
        self.failed = true;
        self.pending = Vec::new();
        tally.refuse(reason::UNFILTERABLE, || detail.to_owned());
        let mut extra = Vec::new();
        expect.close_lists(detail, &mut extra, tally);
        extra.append(&mut expect.answers);
        for item in extra {
            out.extend_from_slice(&message_event(&item));
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Forward a block's bytes verbatim. `fresh`: they will be the first bytes of the output but
/// were not the first of the upstream's stream (something before them was dropped). A BOM
/// there is part of a field name to the parser that judged the block (`\u{FEFF}data` is no
/// `data` field), but a client strips a BOM at the start of the stream and would then read a
/// `data` field nobody judged; a BOM of our own in front keeps the client's reading ours.
fn forward(out: &mut Vec<u8>, raw: &[u8], fresh: bool) {
    if fresh && out.is_empty() && raw.starts_with(BOM) {
        out.extend_from_slice(BOM);
    }
    out.extend_from_slice(raw);
}

/// One SSE event carrying a JSON-RPC message.
fn message_event(json: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(json.len() + 24);
    e.extend_from_slice(b"event: message\ndata: ");
    e.extend_from_slice(json);
    e.extend_from_slice(b"\n\n");
    e
}

/// Judge one event and append what to forward for it. `unterminated`: the stream's final
/// block, which lacked its blank line (forwarded terminated, so every client reads it alike).
/// `fresh`: see [`forward`].
#[allow(clippy::too_many_arguments)]
fn emit<F>(
    expect: &mut Expect,
    ev: &sse::Event,
    raw: &[u8],
    unterminated: bool,
    fresh: bool,
    keep: &mut F,
    tally: &mut Tally,
    out: &mut Vec<u8>,
) where
    F: Lists + ?Sized,
{
    if std::str::from_utf8(raw).is_err() {
        // Decoders differ on invalid UTF-8 (U+FFFD, bytes dropped, another charset), so what
        // the gateway read (U+FFFD) need not be what a client reads: not delivered, as JSON
        // bodies that are not UTF-8 are not.
        tally.refuse(reason::UNFILTERABLE, || "an event is not UTF-8".into());
        return;
    }
    let data = match ev.data() {
        // Priming events (an id and empty data), keep-alives: no message in them.
        Some(d) if !d.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r')).is_empty() => d,
        _ => {
            forward(out, raw, fresh);
            if unterminated {
                out.extend_from_slice(b"\n\n");
            }
            return;
        }
    };
    match expect.judge_text(data.as_bytes(), keep, tally) {
        Ok((None, _)) => {
            forward(out, raw, fresh);
            if unterminated {
                out.extend_from_slice(b"\n\n");
            }
        }
        Ok((Some(items), array)) => {
            if items.is_empty() {
                return;
            }
            let body = if array || items.len() > 1 {
                join_array(items.iter().map(Vec::as_slice))
            } else {
                items.into_iter().next().unwrap_or_default()
            };
            out.extend_from_slice(&ev.with_data(&String::from_utf8_lossy(&body)));
        }
        Err(detail) => {
            // Not a JSON-RPC message at all: nothing a client could act on; not delivered.
            tally.refuse(reason::UNFILTERABLE, || {
                format!("an event's data cannot be parsed: {detail}")
            });
        }
    }
}

#[cfg(test)]
mod tests;
