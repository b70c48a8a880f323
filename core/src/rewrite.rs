//! Per-principal list rewriting: drop the tools, resources, resource templates or prompts a
//! principal may not see from a list result, and keep every other byte as the server sent it.
//!
//! Owns: one pass over a JSON-RPC response (a JSON body, or the `data` of one SSE event) that
//! finds `result.<list>` and splices out hidden items. Does not own: which items are hidden
//! (the caller's predicate), SSE framing ([`crate::sse`]), or matching ids to requests.
//!
//! Byte-for-byte: everything outside the list array (`id`, `nextCursor`, `_meta`, caching hints,
//! unknown fields) is copied verbatim, and so is each kept item with its leading whitespace;
//! nothing is re-serialized. Fail closed: an item that is not an object, lacks its key, has a
//! non-string key or the key twice is hidden and counted; a response whose shape cannot be
//! trusted (bad JSON, duplicate envelope keys, a result without its list) is an error.

use crate::strict_json::{folds_to, Scanner, Syntax, WalkError, DEFAULT_MAX_DEPTH};
use std::borrow::Cow;
use std::ops::Range;

pub mod memo;

/// What kind of thing a list item is (shared with policy, which judges visibility by it).
pub use crate::policy::Kind;

/// Where each kind of item sits in a list result, and which key names it.
impl Kind {
    /// The key of the list inside `result`.
    pub fn list_key(self) -> &'static str {
        match self {
            Kind::Tool => "tools",
            Kind::Resource => "resources",
            Kind::ResourceTemplate => "resourceTemplates",
            Kind::Prompt => "prompts",
        }
    }

    /// The key that names one item.
    pub fn item_key(self) -> &'static str {
        match self {
            Kind::Tool | Kind::Prompt => "name",
            Kind::Resource => "uri",
            Kind::ResourceTemplate => "uriTemplate",
        }
    }
}

/// The outcome of [`rewrite_list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Forward the original bytes: nothing was hidden, or the message is an error response or
    /// not a response at all (a notification on the same SSE stream).
    Unchanged,
    /// Forward `body` instead; `removed` items were hidden.
    Rewritten { body: Vec<u8>, removed: usize },
}

/// The response could not be trusted; the caller fails closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("malformed response at byte {offset}: {message}")]
    Malformed { offset: usize, message: String },
    #[error("list result has no \"{0}\" array")]
    MissingList(&'static str),
}

impl RewriteError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        RewriteError::Malformed {
            offset,
            message: message.into(),
        }
    }
}

impl From<Syntax> for RewriteError {
    fn from(s: Syntax) -> Self {
        RewriteError::at(s.offset, s.message)
    }
}

/// A [`WalkError`] at a known position.
fn walk_err(pos: usize, e: WalkError) -> RewriteError {
    match e {
        WalkError::Syntax(s) => s.into(),
        WalkError::TooDeep(d) => RewriteError::at(pos, format!("nested deeper than {d} levels")),
        WalkError::Duplicate(k) => RewriteError::at(pos, format!("duplicate key {:?}", String::from_utf8_lossy(&k))),
        WalkError::Confusable(k, c) => {
            RewriteError::at(pos, format!("key {:?} reads as {c:?}", String::from_utf8_lossy(&k)))
        }
    }
}

/// One list element as found in the text.
#[derive(Debug, PartialEq, Eq)]
struct Item<'a> {
    /// From just after the preceding `[` or `,` (so leading whitespace is kept) to the end of
    /// the value.
    span: Range<usize>,
    /// The decoded name (or URI), `None` when the item has no usable one (hidden, fail closed).
    name: Option<Cow<'a, str>>,
    /// Where the name's JSON string (quotes included) is in the body, when `name` is usable.
    name_at: Option<Range<usize>>,
}

/// One item of a list, as [`Scan::items`] gives it.
#[derive(Debug, Clone)]
pub struct ListItem<'s> {
    /// The item's text (an object, leading whitespace trimmed).
    pub text: &'s [u8],
    /// Its decoded name (or URI); `None` when it has no usable one.
    pub name: Option<&'s str>,
    /// Where the name's JSON string sits in `text` (quotes included), when usable.
    pub name_at: Option<Range<usize>>,
}

/// One list array found in `result`: `[` .. just past `]`, its elements, and the whitespace
/// before `]`.
#[derive(Debug, PartialEq, Eq)]
struct List<'a> {
    kind: Kind,
    array: Range<usize>,
    items: Vec<Item<'a>>,
    tail: Range<usize>,
}

/// What a JSON-RPC message is, as far as the response path cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `result` (and no `method`/`error`).
    Result,
    /// `error` (and no `method`/`result`).
    Error,
    /// `method` with an `id`: a server-to-client request (sampling, elicitation, roots).
    Request,
    /// `method` without an `id`.
    Notification,
}

/// One JSON-RPC message from a response, walked once: its envelope, and every list its
/// `result` holds (names decoded, visibility not yet decided). [`Scan::filter`] then applies a
/// principal's view, so the caller can pick the list kind from the id *after* the walk (the id
/// may come after `result` in the text).
#[derive(Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    body: &'a [u8],
    /// The raw JSON text of `id`, if present.
    id: Option<&'a str>,
    shape: Shape,
    lists: Vec<List<'a>>,
    /// `result` has a `nextCursor` member: the lists are one page of more.
    next_cursor: bool,
    /// Where `result.instructions` (an `initialize` answer) sits, when it is a string: the
    /// JSON string, quotes included.
    instructions: Option<Range<usize>>,
    /// See [`Scan::result_id`].
    result_id: Option<u64>,
}

impl<'a> Scan<'a> {
    /// The raw JSON text of the message's `id` (`7`, `"a\u0062"`), if it has one.
    pub fn id(&self) -> Option<&'a str> {
        self.id
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The kinds of the lists a `result` holds, in text order (usually none or one).
    pub fn list_kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        self.lists.iter().map(|l| l.kind)
    }

    /// The items of list `kind`, or `None` when the result holds no such list (or the message
    /// is not a result).
    pub fn items(&self, kind: Kind) -> Option<Vec<ListItem<'_>>> {
        if self.shape != Shape::Result {
            return None;
        }
        let list = self.lists.iter().find(|l| l.kind == kind)?;
        Some(
            list.items
                .iter()
                .map(|i| {
                    let mut start = i.span.start;
                    while start < i.span.end && self.body[start].is_ascii_whitespace() {
                        start += 1;
                    }
                    ListItem {
                        text: &self.body[start..i.span.end],
                        name: i.name.as_deref(),
                        name_at: i.name_at.as_ref().map(|r| r.start - start..r.end - start),
                    }
                })
                .collect(),
        )
    }

    /// Whether `result` has a `nextCursor` member (the lists are one page: what is missing
    /// from them is not necessarily gone).
    pub fn has_next_cursor(&self) -> bool {
        self.next_cursor
    }

    /// The JSON text (a string, quotes included) of `result.instructions`, if the result has
    /// a string there.
    pub fn instructions(&self) -> Option<&'a [u8]> {
        let r = self.instructions.clone()?;
        (self.shape == Shape::Result).then(|| &self.body[r])
    }

    /// The message with `result.instructions` replaced by `json_string` (a JSON string text);
    /// `None` when it has none.
    pub fn with_instructions(&self, json_string: &str) -> Option<Vec<u8>> {
        let r = self.instructions.clone()?;
        let mut out = Vec::with_capacity(self.body.len() - r.len() + json_string.len());
        out.extend_from_slice(&self.body[..r.start]);
        out.extend_from_slice(json_string.as_bytes());
        out.extend_from_slice(&self.body[r.end..]);
        Some(out)
    }

    /// The message's whole text.
    pub fn text(&self) -> &'a [u8] {
        self.body
    }

    /// Apply one edit per item of list `kind` (in item order; missing edits keep): drop,
    /// keep, or replace an item's text (integrity's sanitizer). Same shape rules as
    /// [`Scan::filter`]; `removed` counts dropped items.
    pub fn splice(&self, kind: Kind, edits: &[crate::integrity::Edit]) -> Result<Rewrite, RewriteError> {
        use crate::integrity::Edit;
        if self.shape != Shape::Result {
            return Ok(Rewrite::Unchanged);
        }
        let Some(list) = self.lists.iter().find(|l| l.kind == kind) else {
            return Err(RewriteError::MissingList(kind.list_key()));
        };
        let edit = |i: usize| edits.get(i).unwrap_or(&Edit::Keep);
        let removed = (0..list.items.len()).filter(|i| *edit(*i) == Edit::Drop).count();
        if (0..list.items.len()).all(|i| *edit(i) == Edit::Keep) {
            return Ok(Rewrite::Unchanged);
        }
        let body = self.body;
        let mut out = Vec::with_capacity(body.len());
        out.extend_from_slice(&body[..list.array.start]);
        out.push(b'[');
        let mut first = true;
        for (i, item) in list.items.iter().enumerate() {
            let text: &[u8] = match edit(i) {
                Edit::Drop => continue,
                Edit::Keep => &body[item.span.clone()],
                Edit::Replace(t) => t,
            };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(text);
        }
        out.extend_from_slice(&body[list.tail.clone()]);
        out.push(b']');
        out.extend_from_slice(&body[list.array.end..]);
        Ok(Rewrite::Rewritten { body: out, removed })
    }

    /// A number for this message's `result` value that this thread gives every `result` of
    /// the same bytes (the list memo's entry, [`memo`]), while it remembers them; `None` when
    /// it does not (small values, values without lists, the memo off). Two scans on one thread
    /// with the same number have lists of the same items, names and order: what is decided
    /// per item may be remembered per list.
    pub fn result_id(&self) -> Option<u64> {
        self.result_id
    }

    /// This scan without its [`Scan::result_id`] (for comparing a walk with a recall).
    pub fn without_result_id(mut self) -> Self {
        self.result_id = None;
        self
    }

    /// The names of list `kind`'s items in order (`None`: an item without a usable name), if
    /// the message has that list.
    pub fn names(&self, kind: Kind) -> Option<impl Iterator<Item = Option<&str>> + '_> {
        if self.shape != Shape::Result {
            return None;
        }
        let list = self.lists.iter().find(|l| l.kind == kind)?;
        Some(list.items.iter().map(|i| i.name.as_deref()))
    }

    /// Remove the items of list `kind` that `keep` refuses. A `result` without that list is an
    /// error (the answer does not fit the request: fail closed); an error response, a request
    /// or a notification is unchanged.
    pub fn filter<F>(&self, kind: Kind, mut keep: F) -> Result<Rewrite, RewriteError>
    where
        F: FnMut(Kind, &str) -> bool,
    {
        if self.shape != Shape::Result {
            return Ok(Rewrite::Unchanged);
        }
        let Some(list) = self.lists.iter().find(|l| l.kind == kind) else {
            return Err(RewriteError::MissingList(kind.list_key()));
        };
        // One splice mechanism for every edit: visibility only ever keeps or drops.
        use crate::integrity::Edit;
        let edits: Vec<Edit> = list
            .items
            .iter()
            .map(|i| Edit::keep_if(i.name.as_deref().is_some_and(|n| keep(kind, n))))
            .collect();
        self.splice(kind, &edits)
    }
}

/// Remove the items `keep` refuses from a list response of kind `kind`.
///
/// `keep(kind, name_or_uri)` is called once per well-formed item, in order.
pub fn rewrite_list<F>(body: &[u8], kind: Kind, keep: F) -> Result<Rewrite, RewriteError>
where
    F: FnMut(Kind, &str) -> bool,
{
    scan(body)?.filter(kind, keep)
}

/// Walk one JSON-RPC message (an object) once. Refuses what cannot be trusted: bad JSON,
/// trailing bytes, duplicate envelope keys or list keys, a message that is not exactly one of
/// request / notification / result / error, a list that is not an array.
pub fn scan(body: &[u8]) -> Result<Scan<'_>, RewriteError> {
    let text = std::str::from_utf8(body).map_err(|e| RewriteError::at(e.valid_up_to(), "not UTF-8"))?;
    let mut s = Scanner::new(text);
    s.skip_ws();
    if s.peek() != Some(b'{') {
        return Err(RewriteError::at(s.pos(), "a JSON-RPC message must be an object"));
    }
    let mut id: Option<&str> = None;
    let mut lists: Vec<List<'_>> = Vec::new();
    let mut next_cursor = false;
    let mut instructions = None;
    let mut result_id = None;
    let mut seen_envelope: [bool; 5] = [false; 5];
    s.object(|key, s| {
        const ENVELOPE: [&str; 5] = ["jsonrpc", "id", "result", "error", "method"];
        let slot = ENVELOPE.iter().position(|k| key.eq_str(k).unwrap_or(false));
        if slot.is_none() {
            let decoded = key_text(&key)?;
            if let Some(k) = ENVELOPE.iter().find(|k| folds_to(&decoded, k)) {
                // A case-insensitive client (Go) would read it as the real member.
                return Err(RewriteError::at(
                    key.offset,
                    format!("key {:?} reads as {k:?}", key.raw),
                ));
            }
        }
        if let Some(i) = slot {
            if std::mem::replace(&mut seen_envelope[i], true) {
                return Err(RewriteError::at(
                    key.offset,
                    format!("duplicate envelope key {:?}", key.raw),
                ));
            }
        }
        match slot {
            Some(1) => {
                let pos = s.pos();
                let raw = s
                    .skip_value(DEFAULT_MAX_DEPTH.saturating_sub(1))
                    .map_err(|e| walk_err(pos, e))?;
                id = Some(raw);
                Ok(())
            }
            Some(2) => {
                let found = result(s)?;
                lists = found.lists;
                next_cursor = found.next_cursor;
                instructions = found.instructions;
                result_id = found.id;
                Ok(())
            }
            _ => skip(s, 1),
        }
    })?;
    s.skip_ws();
    if !s.at_end() {
        return Err(RewriteError::at(s.pos(), "trailing characters after the JSON value"));
    }
    let [_, has_id, has_result, has_error, has_method] = seen_envelope;
    let shape = match (has_method, has_result, has_error) {
        (true, false, false) if has_id => Shape::Request,
        (true, false, false) => Shape::Notification,
        (false, true, false) => Shape::Result,
        (false, false, true) => Shape::Error,
        _ => {
            return Err(RewriteError::at(
                0,
                "a message must have exactly one of \"method\", \"result\" or \"error\"",
            ))
        }
    };
    Ok(Scan {
        body,
        id,
        shape,
        lists,
        next_cursor,
        instructions,
        result_id,
    })
}

/// A key's text, decoded only when it has escapes (the common key is borrowed as is).
#[inline]
fn key_text<'a>(key: &crate::strict_json::JsonStr<'a>) -> Result<Cow<'a, str>, Syntax> {
    if key.escaped {
        key.decode()
    } else {
        Ok(Cow::Borrowed(key.raw))
    }
}

fn skip(s: &mut Scanner<'_>, depth: usize) -> Result<(), RewriteError> {
    let pos = s.pos();
    s.skip_value(DEFAULT_MAX_DEPTH.saturating_sub(depth))
        .map(|_| ())
        .map_err(|e| walk_err(pos, e))
}

/// `result` (cursor on its value): what [`walk_result`] finds, from this thread's
/// [`memo`] when it walked the same bytes before.
fn result<'a>(s: &mut Scanner<'a>) -> Result<memo::Found<'a>, RewriteError> {
    if s.peek() != Some(b'{') {
        // Not an object: not a list result. `filter` refuses it for want of a list; other
        // results (of requests the module does not read) may be anything.
        skip(s, 1)?;
        return Ok(memo::Found {
            lists: Vec::new(),
            next_cursor: false,
            instructions: None,
            id: None,
        });
    }
    let at = s.pos();
    if let Some((found, len)) = memo::recall(s.text(), at) {
        s.advance(len);
        return Ok(found);
    }
    let mut found = walk_result(s)?;
    found.id = memo::remember(s.text(), at, s.pos(), &found);
    Ok(found)
}

/// Walk the `result` object (cursor on its `{`): collect every list it holds, skip the rest.
fn walk_result<'a>(s: &mut Scanner<'a>) -> Result<memo::Found<'a>, RewriteError> {
    let mut lists = Vec::new();
    let mut next_cursor = false;
    let mut instructions: Option<Range<usize>> = None;
    let mut seen = [false; 4];
    s.object(|key, s| {
        let kinds = [Kind::Tool, Kind::Resource, Kind::ResourceTemplate, Kind::Prompt];
        let Some(k) = kinds.iter().position(|k| key.eq_str(k.list_key()).unwrap_or(false)) else {
            let decoded = key_text(&key)?;
            if decoded == "nextCursor" {
                next_cursor = true;
            } else if decoded == "instructions" && s.peek() == Some(b'"') {
                if instructions.is_some() {
                    return Err(RewriteError::at(key.offset, "duplicate key \"instructions\" in result"));
                }
                let start = s.pos();
                skip(s, 2)?;
                instructions = Some(start..s.pos());
                return Ok(());
            }
            if let Some(k) = kinds.iter().find(|k| folds_to(&decoded, k.list_key())) {
                return Err(RewriteError::at(
                    key.offset,
                    format!("key {:?} reads as {:?}", key.raw, k.list_key()),
                ));
            }
            return skip(s, 2);
        };
        let kind = kinds[k];
        if std::mem::replace(&mut seen[k], true) {
            return Err(RewriteError::at(
                key.offset,
                format!("duplicate key {:?} in result", kind.list_key()),
            ));
        }
        if s.peek() != Some(b'[') {
            // A list key whose value is not an array: unusable as that list (refused if it is
            // the one asked for).
            return skip(s, 2);
        }
        let l = list(s, kind)?;
        lists.push(l);
        Ok(())
    })?;
    Ok(memo::Found {
        lists,
        next_cursor,
        instructions,
        id: None,
    })
}

/// Walk the list array (cursor on `[`).
fn list<'a>(s: &mut Scanner<'a>, kind: Kind) -> Result<List<'a>, RewriteError> {
    let open = s.pos();
    s.expect(b'[', "expected '['")?;
    let mut items = Vec::new();
    let mut lead = s.pos();
    s.skip_ws();
    if s.peek() == Some(b']') {
        let tail = lead..s.pos();
        s.expect(b']', "expected ']'")?;
        return Ok(List {
            kind,
            array: open..s.pos(),
            items,
            tail,
        });
    }
    loop {
        s.skip_ws();
        let (name, name_at) = item(s, kind)?;
        let end = s.pos();
        let name_at = if name.is_some() { name_at } else { None };
        items.push(Item {
            span: lead..end,
            name,
            name_at,
        });
        s.skip_ws();
        match s.peek() {
            Some(b',') => {
                s.expect(b',', "expected ','")?;
                lead = s.pos();
            }
            Some(b']') => {
                let tail = end..s.pos();
                s.expect(b']', "expected ']'")?;
                return Ok(List {
                    kind,
                    array: open..s.pos(),
                    items,
                    tail,
                });
            }
            _ => return Err(RewriteError::at(s.pos(), "expected ',' or ']'")),
        }
    }
}

/// The name of an item (if usable) and where its string is.
type ItemName<'a> = (Option<Cow<'a, str>>, Option<Range<usize>>);

/// Walk one item (cursor on its first byte); return its name if it is well formed.
fn item<'a>(s: &mut Scanner<'a>, kind: Kind) -> Result<ItemName<'a>, RewriteError> {
    if s.peek() != Some(b'{') {
        skip(s, 3)?;
        return Ok((None, None));
    }
    let mut name_at: Option<Range<usize>> = None;
    let item_key = kind.item_key();
    // `None` = absent; `Some(None)` = present but unusable (not a string, twice, bad escape).
    let mut name: Option<Option<Cow<'a, str>>> = None;
    s.object(|key, s| {
        if !key.eq_str(item_key)? {
            if folds_to(&key_text(&key)?, item_key) {
                // `Name` next to (or instead of) `name`: unusable, so the item is hidden.
                name = Some(None);
            }
            return skip(s, 4);
        }
        let value = if s.peek() == Some(b'"') {
            let start = s.pos();
            let v = s.string()?.decode().ok();
            name_at = Some(start..s.pos());
            v
        } else {
            skip(s, 4)?;
            None
        };
        name = Some(if name.is_some() { None } else { value });
        Ok(())
    })?;
    Ok((name.flatten(), name_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(body: &str, kind: Kind, hide: &[&str]) -> Result<Rewrite, RewriteError> {
        rewrite_list(body.as_bytes(), kind, |_, n| !hide.contains(&n))
    }

    fn rewritten(body: &str, kind: Kind, hide: &[&str]) -> (String, usize) {
        match rw(body, kind, hide).unwrap() {
            Rewrite::Rewritten { body, removed } => (String::from_utf8(body).unwrap(), removed),
            Rewrite::Unchanged => panic!("expected a rewrite"),
        }
    }

    #[test]
    fn hidden_tools_are_removed_and_everything_else_is_kept_verbatim() {
        let body = r#"{"jsonrpc":"2.0","id":"a\u0031","result":{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"b"},{"name":"c","x":1.50}],"nextCursor":"n","_meta":{"ttl":60}}}"#;
        let (out, removed) = rewritten(body, Kind::Tool, &["b"]);
        assert_eq!(removed, 1);
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":"a\u0031","result":{"tools":[{"name":"a","inputSchema":{"type":"object"}},{"name":"c","x":1.50}],"nextCursor":"n","_meta":{"ttl":60}}}"#
        );
    }

    #[test]
    fn next_cursor_and_instructions_are_read_from_result_only() {
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","description":"see \"nextCursor\" and \"instructions\":\"x\""}]}}"#;
        let s = scan(body).unwrap();
        assert!(!s.has_next_cursor(), "text inside a description is not a member");
        assert_eq!(s.instructions(), None);
        let body = br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","instructions":"Use \u0041.","nextCursor":null}}"#;
        let s = scan(body).unwrap();
        assert!(s.has_next_cursor());
        assert_eq!(s.instructions(), Some(&br#""Use \u0041.""#[..]));
        assert_eq!(
            s.with_instructions(r#""""#).unwrap(),
            br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","instructions":"","nextCursor":null}}"#
        );
        let dup = br#"{"jsonrpc":"2.0","id":1,"result":{"instructions":"a","instructions":"b"}}"#;
        assert!(scan(dup).is_err(), "a lenient client reads the second: refuse");
        let error = br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"},"result":{"instructions":"a"}}"#;
        assert!(scan(error).is_err());
    }

    #[test]
    fn pretty_printed_lists_stay_pretty() {
        let body = "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"result\": {\n    \"tools\": [\n      {\"name\": \"a\"},\n      {\"name\": \"b\"},\n      {\"name\": \"c\"}\n    ]\n  }\n}\n";
        let (out, _) = rewritten(body, Kind::Tool, &["a"]);
        assert_eq!(
            out,
            "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 1,\n  \"result\": {\n    \"tools\": [\n      {\"name\": \"b\"},\n      {\"name\": \"c\"}\n    ]\n  }\n}\n"
        );
        let (out, removed) = rewritten(body, Kind::Tool, &["a", "b", "c"]);
        assert_eq!(removed, 3);
        assert!(out.contains("\"tools\": [\n    ]"), "{out}");
    }

    #[test]
    fn nothing_hidden_means_unchanged() {
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}}"#;
        assert_eq!(rw(body, Kind::Tool, &[]).unwrap(), Rewrite::Unchanged);
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;
        assert_eq!(rw(body, Kind::Tool, &[]).unwrap(), Rewrite::Unchanged);
    }

    #[test]
    fn each_kind_is_judged_by_its_own_key() {
        let cases = [
            (
                Kind::Resource,
                r#"{"jsonrpc":"2.0","id":1,"result":{"resources":[{"uri":"file:///a","name":"x"},{"uri":"file:///b"}]}}"#,
                "file:///a",
            ),
            (
                Kind::ResourceTemplate,
                r#"{"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[{"uriTemplate":"t/{a}"},{"uriTemplate":"u"}]}}"#,
                "t/{a}",
            ),
            (
                Kind::Prompt,
                r#"{"jsonrpc":"2.0","id":1,"result":{"prompts":[{"name":"p"},{"name":"q"}]}}"#,
                "p",
            ),
        ];
        for (kind, body, hide) in cases {
            let mut seen = Vec::new();
            let r = rewrite_list(body.as_bytes(), kind, |k, n| {
                assert_eq!(k, kind);
                seen.push(n.to_owned());
                n != hide
            })
            .unwrap();
            assert!(matches!(r, Rewrite::Rewritten { removed: 1, .. }), "{kind:?}");
            assert_eq!(seen.len(), 2);
        }
    }

    #[test]
    fn items_without_a_usable_key_are_hidden_and_counted() {
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok"},{"title":"x"},{"name":5},"str",{"name":"a","name":"b"},{"name":"\ud800"},{"na\u006de":"esc"}]}}"#;
        let (out, removed) = rewritten(body, Kind::Tool, &[]);
        assert_eq!(removed, 5);
        assert_eq!(
            out,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok"},{"na\u006de":"esc"}]}}"#
        );
    }

    #[test]
    fn escaped_names_reach_the_predicate_decoded() {
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"se\u0063ret"}]}}"#;
        let (_, removed) = rewritten(body, Kind::Tool, &["secret"]);
        assert_eq!(removed, 1);
    }

    #[test]
    fn error_responses_and_notifications_are_unchanged() {
        let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}"#;
        assert_eq!(rw(body, Kind::Tool, &["x"]).unwrap(), Rewrite::Unchanged);
        let body = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}"#;
        assert_eq!(rw(body, Kind::Tool, &["x"]).unwrap(), Rewrite::Unchanged);
    }

    #[test]
    fn case_variant_members_that_go_clients_would_read_are_refused_or_hidden() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"Result":{"tools":[{"name":"x"}]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"Tools":[{"name":"x"}]}}"#,
        ] {
            assert!(rw(body, Kind::Tool, &["x"]).is_err(), "{body}");
        }
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"ok","Name":"x"},{"name":"ok"}]}}"#;
        let (_, removed) = rewritten(body, Kind::Tool, &["x"]);
        assert_eq!(removed, 1);
        // Camel-case keys are respelled in lowercase too (`uritemplate` is `uriTemplate` to Go).
        let body = r#"{"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[{"uriTemplate":"a","uritemplate":"x"}]}}"#;
        let (_, removed) = rewritten(body, Kind::ResourceTemplate, &["x"]);
        assert_eq!(removed, 1);
        let body =
            r#"{"jsonrpc":"2.0","id":1,"result":{"resourceTemplates":[],"resourcetemplates":[{"uriTemplate":"x"}]}}"#;
        assert!(rw(body, Kind::ResourceTemplate, &["x"]).is_err());
    }

    #[test]
    fn untrustworthy_responses_are_errors() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"result":{"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"to\u006fls":[{"name":"x"}]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]},"error":{}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}} x"#,
            "",
        ] {
            assert!(rw(body, Kind::Tool, &["a"]).is_err(), "{body}");
        }
    }
}
