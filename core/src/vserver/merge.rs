//! Merging the backends' answers to one fan-out request into the virtual server's answer.
//!
//! - `initialize` (and 2026-07-28 `server/discover`): capabilities combined (a capability is
//!   offered if any backend offers it; `listChanged` and `subscribe` are withdrawn, since the
//!   virtual server has no GET stream to deliver their notifications), the lowest protocol
//!   version any backend negotiated, the virtual server's own `serverInfo`, and every
//!   backend's `serverInfo`, version and `instructions` kept under `_meta`.
//! - Lists: each backend's items, selected by its include/exclude patterns and by the
//!   caller's policy view *under the backend's name*, renamed by [`super::names`]; every other
//!   byte of an item is kept as the backend sent it. A composite cursor carries each backend's
//!   own cursor.
//! - Failure: a backend that cannot answer is left out and named in `_meta` (`fail_open`), or
//!   turns the answer into a JSON-RPC error naming it (`fail_closed`). A backend whose session
//!   expired (404) expires the composite session: the client initializes again, never a
//!   half-alive session.

use super::names;
use super::session::Member;
use super::{Backend, FailureMode, VirtualServer};
use crate::jsonrpc::{code, IdKey};
use crate::policy::Kind;
use crate::rewrite::{self, Shape};
use crate::sse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `_meta` key naming the backends an answer lacks.
pub const META_MISSING: &str = "io.github.mcp-policy/missing";
/// `_meta` key holding each backend's own `initialize` answer.
pub const META_BACKENDS: &str = "io.github.mcp-policy/backends";
/// `_meta` key naming exposed names dropped because another item already had them.
pub const META_COLLISIONS: &str = "io.github.mcp-policy/collisions";

/// What one backend's HTTP answer to a fan-out request was, as the filter received it.
#[derive(Debug, Clone, Copy)]
pub struct Reply<'a> {
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// One backend's answer, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// The JSON-RPC response (a result) answering the request.
    Result(Vec<u8>),
    /// A JSON-RPC error answering the request.
    Error { code: i64, message: String },
    /// No usable answer: transport failure, timeout, unreadable body.
    Failed(String),
    /// HTTP 404 on a session: the backend ended it.
    Expired,
}

/// Classify a backend's reply to the request with id `id_raw` (`Err` = the callout itself
/// failed, with the reason).
pub fn classify(reply: Result<Reply<'_>, String>, id_raw: &str, has_session: bool) -> Got {
    let r = match reply {
        Ok(r) => r,
        Err(why) => return Got::Failed(why),
    };
    if r.status == 404 && has_session {
        return Got::Expired;
    }
    if !(200..300).contains(&r.status) {
        let text = String::from_utf8_lossy(&r.body[..r.body.len().min(120)])
            .trim()
            .to_owned();
        return Got::Failed(format!(
            "HTTP {}{}",
            r.status,
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        ));
    }
    let media = r
        .content_type
        .map(|c| {
            c.split(|b| *b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let want = IdKey::from_json(id_raw);
    let pick = |text: &[u8]| -> Option<Got> {
        let scan = rewrite::scan(text).ok()?;
        if !matches!(scan.shape(), Shape::Result | Shape::Error) || scan.id().and_then(IdKey::from_json) != want {
            return None;
        }
        if scan.shape() == Shape::Result {
            return Some(Got::Result(text.to_vec()));
        }
        #[derive(Deserialize)]
        struct E {
            error: EO,
        }
        #[derive(Deserialize)]
        struct EO {
            code: i64,
            #[serde(default)]
            message: String,
        }
        Some(match serde_json::from_slice::<E>(text) {
            Ok(e) => Got::Error {
                code: e.error.code,
                message: e.error.message,
            },
            Err(e) => Got::Failed(format!("malformed error answer: {e}")),
        })
    };
    match media.as_slice() {
        b"application/json" => {
            pick(r.body).unwrap_or_else(|| Got::Failed("the answer is not a response to the request".into()))
        }
        b"text/event-stream" => {
            let mut p = sse::Parser::new();
            let mut events = match p.push(r.body) {
                Ok(ev) => ev,
                Err(e) => return Got::Failed(format!("unreadable event stream: {e}")),
            };
            if let Ok(end) = p.finish() {
                events.extend(end.event);
                events.extend(end.lenient);
            }
            events
                .iter()
                .filter_map(|e| e.data())
                .find_map(|d| pick(d.as_bytes()))
                .unwrap_or_else(|| Got::Failed("the event stream held no response to the request".into()))
        }
        _ => Got::Failed(format!(
            "content-type {:?} is neither application/json nor text/event-stream",
            String::from_utf8_lossy(&media)
        )),
    }
}

/// The answer cannot be given: the JSON-RPC error to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub backend: String,
    pub detail: String,
    /// The backend's session expired: answer HTTP 404 (re-initialize).
    pub expired: bool,
}

impl Failure {
    pub fn message(&self) -> String {
        if self.expired {
            format!("backend {:?} ended its session: initialize again", self.backend)
        } else {
            format!("backend {:?} is unavailable: {}", self.backend, self.detail)
        }
    }
}

/// Capability letters kept per session member: which list methods it serves.
pub fn capability_letters(caps: &Map<String, Value>) -> String {
    let mut s = String::new();
    for (key, letter) in [
        ("tools", 't'),
        ("prompts", 'p'),
        ("resources", 'r'),
        ("completions", 'c'),
        ("logging", 'l'),
    ] {
        if caps.get(key).is_some_and(|v| !v.is_null()) {
            s.push(letter);
        }
    }
    s
}

/// Whether a session member serves what `kind` lists (members of old sessions without letters
/// are asked anyway).
pub fn serves(m: &Member, letter: char) -> bool {
    m.caps.as_deref().is_none_or(|c| c.contains(letter))
}

pub fn list_letter(kind: Kind) -> char {
    match kind {
        Kind::Tool => 't',
        Kind::Prompt => 'p',
        Kind::Resource | Kind::ResourceTemplate => 'r',
    }
}

/// The merged `initialize` answer.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The `result` object.
    pub result: Vec<u8>,
    /// The backends in the session, with their session ids and versions.
    pub members: Vec<Member>,
    pub version: String,
    /// Fail-open backends that did not answer.
    pub missing: Vec<String>,
}

#[derive(Deserialize)]
struct InitEnvelope {
    result: InitResult,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitResult {
    protocol_version: String,
    #[serde(default)]
    capabilities: Map<String, Value>,
    #[serde(default)]
    server_info: Value,
    #[serde(default)]
    instructions: Option<String>,
}

fn fail(b: &Backend, detail: String) -> Failure {
    Failure {
        backend: b.name.clone(),
        detail,
        expired: false,
    }
}

/// Decide what to do with a backend that did not answer: `Ok(())` to leave it out (noted in
/// `missing`), `Err` to fail the whole answer.
fn absent(b: &Backend, detail: String, missing: &mut Vec<String>) -> Result<(), Failure> {
    match b.failure {
        FailureMode::FailOpen => {
            missing.push(b.name.clone());
            Ok(())
        }
        FailureMode::FailClosed => Err(fail(b, detail)),
    }
}

fn or_caps(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => or_caps(a, b),
            (Some(Value::Bool(a)), Value::Bool(b)) => *a |= *b,
            (Some(_), _) => {}
            (None, v) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Merge the backends' `initialize` answers. `got` holds one entry per backend (index into
/// `vs.backends`), with the session id its HTTP answer carried. `instructions(backend, text)`
/// judges each backend's instructions (tool-definition integrity): `Some(replacement)` is
/// merged instead of `text` (an empty one drops them).
pub fn initialize(
    vs: &VirtualServer,
    got: Vec<(usize, Got, Option<String>)>,
    judge: &mut dyn FnMut(&Backend, &str) -> Option<String>,
) -> Result<Initialized, Failure> {
    let mut caps = Map::new();
    let mut members = Vec::new();
    let mut missing = Vec::new();
    let mut per_backend = Map::new();
    let mut instructions: Vec<String> = vs.instructions.iter().cloned().collect();
    for (i, g, sid) in got {
        let Some(b) = vs.backends.get(i) else { continue };
        let text = match g {
            Got::Result(t) => t,
            Got::Error { code, message } => {
                absent(b, format!("initialize failed: {message} ({code})"), &mut missing)?;
                continue;
            }
            Got::Failed(why) => {
                absent(b, why, &mut missing)?;
                continue;
            }
            Got::Expired => {
                absent(b, "HTTP 404".into(), &mut missing)?;
                continue;
            }
        };
        let mut r = match serde_json::from_slice::<InitEnvelope>(&text) {
            Ok(e) => e.result,
            Err(e) => {
                absent(b, format!("malformed initialize answer: {e}"), &mut missing)?;
                continue;
            }
        };
        if let Some(replacement) = r.instructions.as_deref().and_then(|t| judge(b, t)) {
            r.instructions = Some(replacement).filter(|t| !t.is_empty());
        }
        or_caps(&mut caps, &r.capabilities);
        if let Some(text) = r.instructions.as_deref().filter(|t| !t.trim().is_empty()) {
            instructions.push(format!(
                "[{} — tools, prompts and resources prefixed {:?}]\n{text}",
                b.name, b.prefix
            ));
        }
        let mut info = Map::new();
        info.insert("serverInfo".into(), r.server_info);
        info.insert("protocolVersion".into(), Value::String(r.protocol_version.clone()));
        info.insert("prefix".into(), Value::String(b.prefix.clone()));
        if let Some(t) = r.instructions {
            info.insert("instructions".into(), Value::String(t));
        }
        per_backend.insert(b.name.clone(), Value::Object(info));
        members.push(Member {
            backend: b.name.clone(),
            session: sid,
            version: r.protocol_version,
            caps: Some(capability_letters(&r.capabilities)),
        });
    }
    let Some(version) = members.iter().map(|m| m.version.clone()).min() else {
        let names: Vec<&str> = vs.backends.iter().map(|b| b.name.as_str()).collect();
        return Err(Failure {
            backend: names.join(", "),
            detail: "no backend answered initialize".into(),
            expired: false,
        });
    };
    // The virtual server has no GET stream: it cannot deliver change notifications.
    for key in ["tools", "prompts", "resources"] {
        if let Some(Value::Object(o)) = caps.get_mut(key) {
            o.remove("listChanged");
            o.remove("subscribe");
        }
    }
    let mut result = Map::new();
    result.insert("protocolVersion".into(), Value::String(version.clone()));
    result.insert("capabilities".into(), Value::Object(caps));
    let mut info = Map::new();
    info.insert("name".into(), Value::String(vs.name.clone()));
    info.insert("version".into(), Value::String(env!("CARGO_PKG_VERSION").into()));
    result.insert("serverInfo".into(), Value::Object(info));
    if !instructions.is_empty() {
        result.insert("instructions".into(), Value::String(instructions.join("\n\n")));
    }
    let mut meta = Map::new();
    meta.insert(META_BACKENDS.into(), Value::Object(per_backend));
    if !missing.is_empty() {
        meta.insert(
            META_MISSING.into(),
            missing.iter().cloned().map(Value::String).collect(),
        );
    }
    result.insert("_meta".into(), Value::Object(meta));
    Ok(Initialized {
        result: serde_json::to_vec(&Value::Object(result)).unwrap_or_default(),
        members,
        version,
        missing,
    })
}

/// A composite list cursor: each backend that has more, with its own cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct CursorDoc {
    /// The list key (`tools`, …): a cursor is not reused across lists.
    k: String,
    b: Vec<(String, String)>,
}

pub fn encode_cursor(kind: Kind, parts: &[(String, String)]) -> String {
    let doc = CursorDoc {
        k: kind.list_key().to_owned(),
        b: parts.to_vec(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&doc).unwrap_or_default())
}

/// The backends' cursors in a composite cursor, or why it is not one.
pub fn decode_cursor(kind: Kind, text: &str) -> Result<Vec<(String, String)>, String> {
    let raw = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "the cursor is not one this virtual server issued".to_owned())?;
    let doc: CursorDoc =
        serde_json::from_slice(&raw).map_err(|_| "the cursor is not one this virtual server issued".to_owned())?;
    if doc.k != kind.list_key() {
        return Err(format!("the cursor belongs to {}, not {}", doc.k, kind.list_key()));
    }
    Ok(doc.b)
}

/// A merged list page.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// The `result` object.
    pub result: Vec<u8>,
    /// Items the caller's policy (or a malformed item) hid.
    pub hidden: usize,
    pub missing: Vec<String>,
    pub collisions: Vec<String>,
    /// Shortened exposed names and what they stand for: (backend index, exposed, original).
    pub shortened: Vec<(usize, String, String)>,
}

#[derive(Deserialize)]
struct PageEnvelope {
    result: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
}

/// Result members the merge writes itself; every other member (2026-07-28 caching hints such as
/// `ttlMs`, `cacheScope`, `resultType`, or unknown ones) is carried over: the first backend's
/// value, except `ttlMs`, where the shortest wins.
const OWN_MEMBERS: [&str; 6] = [
    "tools",
    "prompts",
    "resources",
    "resourceTemplates",
    "nextCursor",
    "_meta",
];

fn json_string(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_default()
}

/// Who decides what a merged list keeps of each backend's list: `keep` (the caller's policy
/// view for that backend, names as the backend knows them) for every caller; `edits` for a
/// caller that judges whole items (tool-definition integrity). Any
/// `FnMut(&Backend, Kind, &str) -> bool` is a `Judge` that only keeps.
pub trait Judge {
    fn keep(&mut self, b: &Backend, kind: Kind, name: &str) -> bool;
    /// One edit per item of backend `b`'s list `kind` in `scan` (`None`: keep them all).
    /// `earlier`: the names the backends merged before this one listed (as they know them),
    /// for collisions across backends.
    fn edits(
        &mut self,
        _b: &Backend,
        _kind: Kind,
        _scan: &rewrite::Scan<'_>,
        _earlier: &[&str],
    ) -> Option<Vec<crate::integrity::Edit>> {
        None
    }
}

impl<F: FnMut(&Backend, Kind, &str) -> bool> Judge for F {
    fn keep(&mut self, b: &Backend, kind: Kind, name: &str) -> bool {
        self(b, kind, name)
    }
}

/// An item's text with its name (or URI) member set to `exposed` (for an item the integrity
/// sanitizer rewrote, whose name span is not known).
fn renamed(text: &[u8], kind: Kind, exposed: &str) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(text).ok()?;
    v.as_object_mut()?
        .insert(kind.item_key().to_owned(), Value::String(exposed.to_owned()));
    serde_json::to_vec(&v).ok()
}

/// Merge one page of a list from each backend asked, as `judge` says.
pub fn list(vs: &VirtualServer, kind: Kind, got: Vec<(usize, Got)>, judge: &mut dyn Judge) -> Result<Listed, Failure> {
    use crate::integrity::Edit;
    let mut out = Listed::default();
    let mut earlier: Vec<String> = Vec::new();
    let mut items: Vec<Vec<u8>> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut next: Vec<(String, String)> = Vec::new();
    let mut extra: Vec<(String, Box<serde_json::value::RawValue>)> = Vec::new();
    for (i, g) in got {
        let Some(b) = vs.backends.get(i) else { continue };
        let text = match g {
            Got::Result(t) => t,
            // A backend without this kind of item answers "method not found": nothing to list.
            Got::Error { code: c, .. } if c == code::METHOD_NOT_FOUND as i64 => continue,
            Got::Error { code, message } => {
                absent(b, format!("{}: {message} ({code})", kind.list_key()), &mut out.missing)?;
                continue;
            }
            Got::Failed(why) => {
                absent(b, why, &mut out.missing)?;
                continue;
            }
            Got::Expired => {
                return Err(Failure {
                    backend: b.name.clone(),
                    detail: "HTTP 404".into(),
                    expired: true,
                })
            }
        };
        let scan = match rewrite::scan(&text) {
            Ok(s) => s,
            Err(e) => {
                absent(
                    b,
                    format!("malformed {} answer: {e}", kind.list_key()),
                    &mut out.missing,
                )?;
                continue;
            }
        };
        let Some(list) = scan.items(kind) else {
            absent(
                b,
                format!("the answer has no {:?} list", kind.list_key()),
                &mut out.missing,
            )?;
            continue;
        };
        if let Ok(PageEnvelope { result }) = serde_json::from_slice::<PageEnvelope>(&text) {
            if let Some(c) = result
                .get("nextCursor")
                .and_then(|c| serde_json::from_str::<String>(c.get()).ok())
            {
                next.push((b.name.clone(), c));
            }
            for (k, v) in result {
                if OWN_MEMBERS.contains(&k.as_str()) {
                    continue;
                }
                match extra.iter_mut().find(|(e, _)| *e == k) {
                    None => extra.push((k, v)),
                    Some((_, old)) if k == "ttlMs" => {
                        let (a, b) = (old.get().parse::<f64>().ok(), v.get().parse::<f64>().ok());
                        if let (Some(a), Some(b)) = (a, b) {
                            if b < a {
                                *old = v;
                            }
                        }
                    }
                    Some(_) => {}
                }
            }
        }
        let edits = {
            let names: Vec<&str> = earlier.iter().map(String::as_str).collect();
            judge.edits(b, kind, &scan, &names)
        };
        earlier.extend(list.iter().filter_map(|i| i.name.map(str::to_owned)));
        for (n, item) in list.into_iter().enumerate() {
            let (Some(name), Some(at)) = (item.name, item.name_at.clone()) else {
                out.hidden += 1;
                continue;
            };
            if !b.selects(kind, name) {
                continue;
            }
            if !judge.keep(b, kind, name) {
                out.hidden += 1;
                continue;
            }
            // A judge that answered for fewer items than the list holds is not trusted with
            // the rest.
            let edit = edits.as_ref().map_or(&Edit::Keep, |e| e.get(n).unwrap_or(&Edit::Drop));
            if *edit == Edit::Drop {
                out.hidden += 1;
                continue;
            }
            let exposed = match kind {
                Kind::Tool | Kind::Prompt => names::expose(&b.prefix, name),
                Kind::Resource | Kind::ResourceTemplate => names::expose_uri(&b.prefix, name),
            };
            if !seen.insert(exposed.clone()) {
                out.collisions.push(exposed);
                continue;
            }
            if exposed.len() == names::MAX_NAME
                && matches!(kind, Kind::Tool | Kind::Prompt)
                && exposed != format!("{}{}{name}", b.prefix, names::SEP)
            {
                out.shortened.push((i, exposed.clone(), name.to_owned()));
            }
            if let Edit::Replace(text) = edit {
                match renamed(text, kind, &exposed) {
                    Some(t) => items.push(t),
                    None => out.hidden += 1,
                }
                continue;
            }
            let mut t = Vec::with_capacity(item.text.len() + b.prefix.len() + 2);
            t.extend_from_slice(&item.text[..at.start]);
            t.extend_from_slice(&json_string(&exposed));
            t.extend_from_slice(&item.text[at.end..]);
            items.push(t);
        }
    }
    let mut r = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 64);
    r.push(b'{');
    r.extend_from_slice(&json_string(kind.list_key()));
    r.push(b':');
    r.extend_from_slice(&crate::reply::join_array(items.iter().map(Vec::as_slice)));
    for (k, v) in &extra {
        r.push(b',');
        r.extend_from_slice(&json_string(k));
        r.push(b':');
        r.extend_from_slice(v.get().as_bytes());
    }
    if !next.is_empty() {
        r.extend_from_slice(b",\"nextCursor\":");
        r.extend_from_slice(&json_string(&encode_cursor(kind, &next)));
    }
    if !out.missing.is_empty() || !out.collisions.is_empty() {
        let mut meta = Map::new();
        if !out.missing.is_empty() {
            meta.insert(
                META_MISSING.into(),
                out.missing.iter().cloned().map(Value::String).collect(),
            );
        }
        if !out.collisions.is_empty() {
            meta.insert(
                META_COLLISIONS.into(),
                out.collisions.iter().cloned().map(Value::String).collect(),
            );
        }
        r.extend_from_slice(b",\"_meta\":");
        r.extend_from_slice(&serde_json::to_vec(&Value::Object(meta)).unwrap_or_default());
    }
    r.push(b'}');
    out.result = r;
    Ok(out)
}

/// A complete JSON-RPC success response with this `result` text.
pub fn response(id_raw: &str, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(result.len() + id_raw.len() + 32);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    out.extend_from_slice(id_raw.as_bytes());
    out.extend_from_slice(br#","result":"#);
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

/// Whether every backend answered a fan-out the virtual server only acknowledges
/// (`logging/setLevel`): `Err` names the first that failed (fail-closed backends only).
pub fn acknowledged(vs: &VirtualServer, got: &[(usize, Got)]) -> Result<Vec<String>, Failure> {
    let mut missing = Vec::new();
    for (i, g) in got {
        let Some(b) = vs.backends.get(*i) else { continue };
        match g {
            Got::Result(_) => {}
            Got::Error { code: c, .. } if *c == code::METHOD_NOT_FOUND as i64 => {}
            Got::Error { code, message } => absent(b, format!("{message} ({code})"), &mut missing)?,
            Got::Failed(why) => absent(b, why.clone(), &mut missing)?,
            Got::Expired => {
                return Err(Failure {
                    backend: b.name.clone(),
                    detail: "HTTP 404".into(),
                    expired: true,
                })
            }
        }
    }
    Ok(missing)
}
