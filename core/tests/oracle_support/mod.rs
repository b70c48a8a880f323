//! The response oracle: drive the response core as the filter does, then read its output the
//! way *lenient* MCP clients read HTTP answers, and judge what they would dispatch.
//!
//! Shared by `core/tests/oracle_response.rs` (proptest, stable, `cargo test`) and the
//! coverage-guided targets in `core/fuzz/` (included there with `#[path]`). Independent of the
//! crate's own parsers on purpose: its SSE parser, JSON reader and id matching are written from
//! the specs (WHATWG event streams, RFC 8259) and from what real client libraries do, and are
//! more lenient than either where clients are (see [`lenient_json`], [`sse_events`]).
#![allow(dead_code)]

use mcp_policy_core::response::{Expect, SseRewriter, Start, Tally};
use mcp_policy_core::rewrite::Kind;

/// The name no principal here may see; the oracle looks for it in every decoded string.
pub const SECRET: &str = "secret_tool";
pub const VISIBLE: &str = "ok_tool";
/// How the gateway's errors for list answers it withheld begin (`response::error_for`).
pub const GATEWAY_REFUSAL: &str = "the gateway could not filter";

pub fn keep(_: Kind, name: &str) -> bool {
    name != SECRET
}

/// What the gateway forwarded: list requests (filtered), other requests, its own answers.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub batch: bool,
    /// (raw id as the client sent it, kind of list).
    pub lists: Vec<(String, Kind)>,
    /// Raw ids of forwarded requests that are not lists.
    pub others: Vec<String>,
    /// The gateway's own answers (refused batch elements).
    pub answers: Vec<String>,
}

impl Scenario {
    pub fn single(raw_id: &str, kind: Kind) -> Scenario {
        Scenario {
            batch: false,
            lists: vec![(raw_id.to_owned(), kind)],
            others: vec![],
            answers: vec![],
        }
    }

    pub fn expect(&self) -> Expect {
        let mut e = Expect::new(self.batch);
        for (id, kind) in &self.lists {
            e.forwarded(id, Some(*kind));
        }
        for id in &self.others {
            e.forwarded(id, None);
        }
        for a in &self.answers {
            e.answer(a.as_bytes().to_vec());
        }
        e
    }

    /// The list requests' ids as JSON values.
    pub fn list_ids(&self) -> Vec<serde_json::Value> {
        self.lists
            .iter()
            .map(|(raw, _)| serde_json::from_str(raw).expect("scenario ids are JSON"))
            .collect()
    }
}

/// One upstream answer, as Envoy hands it to the filter.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub status: u16,
    pub content_type: Option<Vec<u8>>,
    pub content_encoding: Option<Vec<u8>>,
    /// End of stream at headers (no body at all).
    pub eos: bool,
    pub body: Vec<u8>,
    /// Offsets at which the body is split into chunks (any order, any value: clamped).
    pub cuts: Vec<usize>,
}

/// What the client receives.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub start: Start,
    pub status: u16,
    pub content_type: Option<Vec<u8>>,
    pub content_encoding: Option<Vec<u8>>,
    pub body: Vec<u8>,
    pub tally: Tally,
}

/// Chunk boundaries: sorted, deduplicated, inside the body.
pub fn chunks(len: usize, cuts: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut c: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    c.sort_unstable();
    c.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for x in c.into_iter().chain(std::iter::once(len)) {
        if x >= at {
            out.push(at..x);
            at = x;
        }
    }
    out
}

/// Run the response core exactly as the filter drives it.
pub fn run(sc: &Scenario, up: &Upstream, max_event_bytes: usize) -> Delivered {
    let mut e = sc.expect();
    let mut tally = Tally::default();
    let start = e.start(
        up.status,
        up.content_type.as_deref(),
        up.content_encoding.as_deref(),
        up.eos,
    );
    let body: &[u8] = if up.eos { b"" } else { &up.body };
    let same = |b: Vec<u8>, tally: Tally, start: Start| Delivered {
        start,
        status: up.status,
        content_type: up.content_type.clone(),
        content_encoding: up.content_encoding.clone(),
        body: b,
        tally,
    };
    let ours = |status: u16, b: Vec<u8>, tally: Tally, start: Start| Delivered {
        start,
        status,
        content_type: Some(b"application/json".to_vec()),
        content_encoding: None,
        body: b,
        tally,
    };
    match start.clone() {
        Start::PassThrough => same(body.to_vec(), tally, start),
        Start::Json => {
            let out = e.rewrite_json(body, keep, &mut tally).unwrap_or_else(|| body.to_vec());
            same(out, tally, start)
        }
        Start::Sse => {
            let mut rw = SseRewriter::new(max_event_bytes);
            let mut out = Vec::new();
            for r in chunks(body.len(), &up.cuts) {
                out.extend(rw.push(&mut e, &body[r], keep, &mut tally));
            }
            out.extend(rw.finish(&mut e, keep, &mut tally));
            same(out, tally, start)
        }
        Start::Answer(b) => ours(200, b, tally, start),
        Start::Replace { status, body, .. } => ours(status, body, tally, start),
    }
}

// ---------------------------------------------------------------------------------------------
// How clients choose a reading.

/// Which readings some client would apply to a body with this content type: JSON, SSE.
/// Models: exact media type (case-insensitive, parameters ignored); the TypeScript SDK
/// (`includes("text/event-stream")`, else `includes("application/json")`); the Python SDK
/// (lower-cased `startswith`); and, with no content type at all, a sniffing client that tries
/// both.
pub fn readings(content_type: Option<&[u8]>) -> (bool, bool) {
    let Some(ct) = content_type else {
        return (true, true);
    };
    let lower = String::from_utf8_lossy(ct).to_ascii_lowercase();
    let media = lower.split(';').next().unwrap_or_default().trim().to_owned();
    let mut json = media == "application/json";
    let mut sse = media == "text/event-stream";
    if lower.contains("text/event-stream") {
        sse = true;
    } else if lower.contains("application/json") {
        json = true;
    }
    let t = lower.trim();
    if t.starts_with("application/json") {
        json = true;
    } else if t.starts_with("text/event-stream") {
        sse = true;
    }
    (json, sse)
}

/// The body as a client decodes it: gzip (the stored blocks this oracle writes) when the
/// content coding says so; any other coding read as identity by the most lenient client.
pub fn decoded(body: &[u8], content_encoding: Option<&[u8]>) -> Vec<u8> {
    let gz = content_encoding.is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"gzip"));
    if gz {
        if let Some(d) = gunzip_stored(body) {
            return d;
        }
    }
    body.to_vec()
}

/// Every JSON-RPC message object some lenient client would read from what was delivered.
/// Error statuses too: they are transport errors to clients, but some show the body to the
/// user (the TypeScript SDK puts it in the error's message). 1xx and 3xx bodies are not read.
pub fn client_messages(d: &Delivered) -> Vec<J> {
    let mut out = Vec::new();
    if !(200..300).contains(&d.status) && !(400..600).contains(&d.status) {
        return out;
    }
    let body = decoded(&d.body, d.content_encoding.as_deref());
    let (json, sse) = readings(d.content_type.as_deref());
    if json {
        out.extend(messages_of(&lenient_json(&body)));
    }
    if sse {
        for lenient in [false, true] {
            for ev in sse_events(&body, lenient) {
                out.extend(messages_of(&lenient_json(ev.data.as_bytes())));
            }
        }
    }
    out
}

fn messages_of(values: &[J]) -> Vec<J> {
    let mut out = Vec::new();
    for v in values {
        match v {
            J::Arr(items) => out.extend(items.iter().filter(|i| matches!(i, J::Obj(_))).cloned()),
            J::Obj(_) => out.push(v.clone()),
            _ => {}
        }
    }
    out
}

/// Does a client dispatch a response with this id to the request with id `req`? Equal JSON
/// values (numbers as IEEE doubles, as JavaScript compares them), or a string id that
/// JavaScript's `Number()` turns into the numeric request id (the TypeScript SDK keys its
/// response handlers by `Number(id)`).
pub fn id_matches(req: &serde_json::Value, id: &J) -> bool {
    match (req, id) {
        (serde_json::Value::String(a), J::Str(b)) => a == b,
        (serde_json::Value::Number(a), J::Num(b)) => a.as_f64() == Some(*b),
        (serde_json::Value::Number(a), J::Str(b)) => {
            let t = b.trim();
            !t.is_empty() && t.parse::<f64>().ok() == a.as_f64()
        }
        _ => false,
    }
}

/// The safety property: no response a lenient client dispatches to a list request holds, in
/// any copy of its `result` (duplicate keys: first- and last-wins readings alike), an item of
/// the requested list named [`SECRET`] (decoded; a lone surrogate read as U+FFFD or dropped).
/// Other strings (a kept tool's description, a schema) are the server's text, not a listing.
/// `Err` names what leaked.
pub fn check_safety(sc: &Scenario, d: &Delivered) -> Result<(), String> {
    let ids = sc.list_ids();
    for m in client_messages(d) {
        for (id, (_, kind)) in ids.iter().zip(&sc.lists) {
            let to_list = m.members("id").any(|v| id_matches(id, v));
            if to_list && lists_secret(&m, *kind) {
                return Err(format!(
                    "a client dispatches a {} result naming {SECRET}: {m:?}\nstart: {:?}\nout: {:?}",
                    kind.list_key(),
                    d.start,
                    String::from_utf8_lossy(&d.body)
                ));
            }
        }
    }
    Ok(())
}

/// Does some reading of `m` list an item of `kind` named [`SECRET`]?
pub fn lists_secret(m: &J, kind: Kind) -> bool {
    let secret = |v: &J| matches!(v, J::Str(s) if s == SECRET || s.replace('\u{fffd}', "") == SECRET);
    m.members("result").any(|r| {
        r.members(kind.list_key()).any(|l| match l {
            J::Arr(items) => items.iter().any(|i| i.members(kind.item_key()).any(secret)),
            _ => false,
        })
    })
}

/// Fail closed also means: every list request gets an answer (the upstream's, filtered, or
/// the gateway's error) that a strict client reads: serde_json, WHATWG SSE.
pub fn check_answered(sc: &Scenario, d: &Delivered) -> Result<(), String> {
    if !(200..300).contains(&d.status) || matches!(d.start, Start::PassThrough) {
        return Ok(());
    }
    let msgs = strict_messages(d);
    for id in sc.list_ids() {
        let answered = msgs.iter().any(|m| {
            m.get("id") == Some(&id) || m.get("id").and_then(|v| v.as_f64()).is_some_and(|f| id.as_f64() == Some(f))
        } && (m.get("result").is_some() || m.get("error").is_some()));
        if !answered {
            return Err(format!(
                "list request {id} gets no answer a strict client reads\nstart: {:?}\nout: {:?}",
                d.start,
                String::from_utf8_lossy(&d.body)
            ));
        }
    }
    Ok(())
}

/// The gateway's own answers must reach SDK clients, which dispatch only events of type
/// "message" (TypeScript and Python SDKs alike). A refusal that replaces an upstream event may
/// keep that event's type (the upstream chose it); one the gateway adds must be a "message".
pub fn check_refusal_events(up: &Upstream, d: &Delivered) -> Result<(), String> {
    if d.start != Start::Sse {
        return Ok(());
    }
    let upstream_types: Vec<String> = sse_events(&up.body, true).into_iter().map(|e| e.event).collect();
    for ev in sse_events(&d.body, false) {
        if ev.data.contains(GATEWAY_REFUSAL) && ev.event != "message" && !upstream_types.contains(&ev.event) {
            return Err(format!(
                "the gateway's answer is in an event of type {:?}, which clients ignore\nout: {:?}",
                ev.event,
                String::from_utf8_lossy(&d.body)
            ));
        }
    }
    Ok(())
}

/// Messages as a strict client reads them: serde_json (last duplicate wins), WHATWG SSE.
pub fn strict_messages(d: &Delivered) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let (json, sse) = readings(d.content_type.as_deref());
    let mut texts: Vec<Vec<u8>> = Vec::new();
    if json {
        texts.push(d.body.clone());
    }
    if sse {
        texts.extend(sse_events(&d.body, false).into_iter().map(|e| e.data.into_bytes()));
    }
    let mut out = Vec::new();
    for t in texts {
        match serde_json::from_slice::<serde_json::Value>(&t) {
            Ok(serde_json::Value::Object(m)) => out.push(m),
            Ok(serde_json::Value::Array(a)) => out.extend(a.into_iter().filter_map(|v| match v {
                serde_json::Value::Object(m) => Some(m),
                _ => None,
            })),
            _ => {}
        }
    }
    out
}

/// A refusal: every message a strict client reads is a JSON-RPC error, and each list request
/// has one carrying its id.
pub fn is_refusal(sc: &Scenario, d: &Delivered) -> bool {
    let msgs = strict_messages(d);
    sc.list_ids().iter().all(|id| {
        msgs.iter()
            .any(|m| m.get("id") == Some(id) && m.get("error").is_some() && m.get("result").is_none())
    })
}

// ---------------------------------------------------------------------------------------------
// A lenient JSON reader.

/// A JSON value with object members in order, duplicates kept: every reading (first wins,
/// last wins) is in it.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    /// Every value of member `key` (all of them, when the key is repeated).
    pub fn members<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a J> + 'a {
        let o: &[(String, J)] = match self {
            J::Obj(o) => o,
            _ => &[],
        };
        o.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn any_string(&self, f: &dyn Fn(&str) -> bool) -> bool {
        match self {
            J::Str(s) => f(s),
            J::Arr(a) => a.iter().any(|v| v.any_string(f)),
            J::Obj(o) => o.iter().any(|(k, v)| f(k) || v.any_string(f)),
            _ => false,
        }
    }
}

/// Every JSON value a lenient reader finds in `text`: a leading BOM skipped, `NaN`,
/// `Infinity`, `-Infinity`, control characters in strings and lone surrogates (as U+FFFD)
/// accepted, and values concatenated one after another read in turn until one fails to parse
/// (so trailing garbage is ignored, and `{..}{..}` yields two).
pub fn lenient_json(text: &[u8]) -> Vec<J> {
    let s = String::from_utf8_lossy(text);
    let s = s.strip_prefix('\u{feff}').unwrap_or(&s);
    let mut p = Lp {
        b: s.as_bytes(),
        s,
        i: 0,
        depth: 0,
    };
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.i >= p.b.len() {
            break;
        }
        match p.value() {
            Some(v) => out.push(v),
            None => break,
        }
    }
    out
}

struct Lp<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

impl Lp<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn lit(&mut self, w: &str) -> bool {
        if self.s[self.i..].starts_with(w) {
            self.i += w.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<J> {
        self.ws();
        if self.depth > 200 {
            return None;
        }
        let c = *self.b.get(self.i)?;
        match c {
            b'{' => {
                self.i += 1;
                self.depth += 1;
                let mut o = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(J::Obj(o));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return None;
                    }
                    let k = self.string()?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return None;
                    }
                    self.i += 1;
                    let v = self.value()?;
                    o.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            self.depth -= 1;
                            return Some(J::Obj(o));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.depth += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(J::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            self.depth -= 1;
                            return Some(J::Arr(a));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => self.string().map(J::Str),
            b't' if self.lit("true") => Some(J::Bool(true)),
            b'f' if self.lit("false") => Some(J::Bool(false)),
            b'n' if self.lit("null") => Some(J::Null),
            b'N' if self.lit("NaN") => Some(J::Num(f64::NAN)),
            b'I' if self.lit("Infinity") => Some(J::Num(f64::INFINITY)),
            b'-' if self.lit("-Infinity") => Some(J::Num(f64::NEG_INFINITY)),
            b'-' | b'0'..=b'9' => {
                let st = self.i;
                self.i += 1;
                while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    self.i += 1;
                }
                self.s[st..self.i].parse().ok().map(J::Num)
            }
            _ => None,
        }
    }

    fn hex(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let v = u32::from_str_radix(h, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.s[self.i..];
            let j = rest.find(['"', '\\'])?;
            out.push_str(&rest[..j]);
            self.i += j;
            if self.b[self.i] == b'"' {
                self.i += 1;
                return Some(out);
            }
            self.i += 1;
            let c = *self.b.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let hi = self.hex()?;
                    let cp = if (0xD800..0xDC00).contains(&hi) && self.s[self.i..].starts_with("\\u") {
                        let save = self.i;
                        self.i += 2;
                        match self.hex() {
                            Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            }
                            _ => {
                                self.i = save;
                                0xFFFD
                            }
                        }
                    } else {
                        hi
                    };
                    out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                }
                _ => return None,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An independent WHATWG event-stream reader.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ev {
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// The events a client dispatches, per WHATWG HTML §9.2.6 (UTF-8 decode with a leading BOM
/// stripped, CRLF/LF/CR line ends, `:` comments, one leading space dropped from values, data
/// lines joined with LF, dispatch on a blank line, nothing dispatched for an empty data
/// buffer). `lenient`: also dispatch a final block that lacks its blank line (its last line
/// taken as complete), as some client libraries do. `id` is the last-event-id after the event.
pub fn sse_events(stream: &[u8], lenient: bool) -> Vec<Ev> {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    let mut data = String::new();
    let mut event = String::new();
    let mut last_id: Option<String> = None;
    let mut rest = text;
    let mut dispatch = |data: &mut String, event: &mut String, last_id: &Option<String>| {
        if !data.is_empty() {
            if data.ends_with('\n') {
                data.pop();
            }
            out.push(Ev {
                event: if event.is_empty() {
                    "message".into()
                } else {
                    std::mem::take(event)
                },
                data: std::mem::take(data),
                id: last_id.clone(),
            });
        }
        data.clear();
        event.clear();
    };
    loop {
        let (line, next, terminated) = match rest.find(['\r', '\n']) {
            Some(i) => {
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..i], &rest[i + skip..], true)
            }
            None => (rest, "", false),
        };
        if !terminated {
            if lenient {
                if !line.is_empty() {
                    field(line, &mut data, &mut event, &mut last_id);
                }
                dispatch(&mut data, &mut event, &last_id);
            }
            break;
        }
        if line.is_empty() {
            dispatch(&mut data, &mut event, &last_id);
        } else {
            field(line, &mut data, &mut event, &mut last_id);
        }
        rest = next;
    }
    out
}

fn field(line: &str, data: &mut String, event: &mut String, last_id: &mut Option<String>) {
    if line.starts_with(':') {
        return;
    }
    let (name, value) = match line.find(':') {
        Some(c) => {
            let v = &line[c + 1..];
            (&line[..c], v.strip_prefix(' ').unwrap_or(v))
        }
        None => (line, ""),
    };
    match name {
        "data" => {
            data.push_str(value);
            data.push('\n');
        }
        "event" => *event = value.to_owned(),
        "id" if !value.contains('\0') => *last_id = Some(value.to_owned()),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// gzip with stored (uncompressed) deflate blocks: enough to make real gzip bodies, and to
// read them back as a client would.

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let blocks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(65535).collect()
    };
    for (i, b) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let n = b.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

pub fn gunzip_stored(gz: &[u8]) -> Option<Vec<u8>> {
    if gz.len() < 18 || gz[..4] != [0x1f, 0x8b, 8, 0] {
        return None;
    }
    let mut i = 10;
    let mut out = Vec::new();
    loop {
        let h = *gz.get(i)?;
        if h & 0b110 != 0 {
            return None;
        }
        let n = u16::from_le_bytes([*gz.get(i + 1)?, *gz.get(i + 2)?]) as usize;
        out.extend_from_slice(gz.get(i + 5..i + 5 + n)?);
        i += 5 + n;
        if h & 1 == 1 {
            return Some(out);
        }
    }
}
