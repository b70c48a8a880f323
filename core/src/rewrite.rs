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

use crate::strict_json::{Scanner, Syntax, WalkError, DEFAULT_MAX_DEPTH};
use std::borrow::Cow;
use std::ops::Range;

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
    }
}

/// One list element as found in the text.
struct Item {
    /// From just after the preceding `[` or `,` (so leading whitespace is kept) to the end of
    /// the value.
    span: Range<usize>,
    keep: bool,
}

/// What the envelope pass found.
#[derive(Default)]
struct Found {
    seen_result: bool,
    seen_error: bool,
    seen_method: bool,
    /// `[` .. just past `]` of the list, plus its elements and the whitespace before `]`.
    list: Option<(Range<usize>, Vec<Item>, Range<usize>)>,
    removed: usize,
}

/// Remove the items `keep` refuses from a list response of kind `kind`.
///
/// `keep(kind, name_or_uri)` is called once per well-formed item, in order.
pub fn rewrite_list<F>(body: &[u8], kind: Kind, mut keep: F) -> Result<Rewrite, RewriteError>
where
    F: FnMut(Kind, &str) -> bool,
{
    let text = std::str::from_utf8(body).map_err(|e| RewriteError::at(e.valid_up_to(), "not UTF-8"))?;
    let mut s = Scanner::new(text);
    s.skip_ws();
    if s.peek() != Some(b'{') {
        return Err(RewriteError::at(s.pos(), "a JSON-RPC response must be an object"));
    }
    let mut found = Found::default();
    let mut seen_envelope: [bool; 5] = [false; 5];
    s.object(|key, s| {
        let slot = ["jsonrpc", "id", "result", "error", "method"]
            .iter()
            .position(|k| key.eq_str(k).unwrap_or(false));
        if let Some(i) = slot {
            if std::mem::replace(&mut seen_envelope[i], true) {
                return Err(RewriteError::at(
                    key.offset,
                    format!("duplicate envelope key {:?}", key.raw),
                ));
            }
        }
        match slot {
            Some(2) => {
                found.seen_result = true;
                result(s, kind, &mut keep, &mut found)
            }
            Some(3) => {
                found.seen_error = true;
                skip(s, 1)
            }
            Some(4) => {
                found.seen_method = true;
                skip(s, 1)
            }
            _ => skip(s, 1),
        }
    })?;
    s.skip_ws();
    if !s.at_end() {
        return Err(RewriteError::at(s.pos(), "trailing characters after the JSON value"));
    }

    match (found.seen_method, found.seen_result, found.seen_error) {
        (true, false, false) => return Ok(Rewrite::Unchanged),
        (false, false, true) => return Ok(Rewrite::Unchanged),
        (false, true, false) => {}
        _ => {
            return Err(RewriteError::at(
                0,
                "a response must have exactly one of \"result\" or \"error\"",
            ))
        }
    }
    let Some((array, items, tail)) = found.list else {
        return Err(RewriteError::MissingList(kind.list_key()));
    };
    if found.removed == 0 {
        return Ok(Rewrite::Unchanged);
    }
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(&body[..array.start]);
    out.push(b'[');
    let mut first = true;
    for item in items.iter().filter(|i| i.keep) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(&body[item.span.clone()]);
    }
    out.extend_from_slice(&body[tail]);
    out.push(b']');
    out.extend_from_slice(&body[array.end..]);
    Ok(Rewrite::Rewritten {
        body: out,
        removed: found.removed,
    })
}

fn skip(s: &mut Scanner<'_>, depth: usize) -> Result<(), RewriteError> {
    let pos = s.pos();
    s.skip_value(DEFAULT_MAX_DEPTH.saturating_sub(depth))
        .map(|_| ())
        .map_err(|e| walk_err(pos, e))
}

/// Walk `result` (cursor on its value): find the list, judge its items, skip the rest.
fn result<F>(s: &mut Scanner<'_>, kind: Kind, keep: &mut F, found: &mut Found) -> Result<(), RewriteError>
where
    F: FnMut(Kind, &str) -> bool,
{
    if s.peek() != Some(b'{') {
        return Err(RewriteError::at(s.pos(), "a list result must be an object"));
    }
    let list_key = kind.list_key();
    s.object(|key, s| {
        if !key.eq_str(list_key)? {
            return skip(s, 2);
        }
        if found.list.is_some() {
            return Err(RewriteError::at(
                key.offset,
                format!("duplicate key {list_key:?} in result"),
            ));
        }
        list(s, kind, keep, found)
    })
}

/// Walk the list array (cursor on `[`).
fn list<F>(s: &mut Scanner<'_>, kind: Kind, keep: &mut F, found: &mut Found) -> Result<(), RewriteError>
where
    F: FnMut(Kind, &str) -> bool,
{
    let open = s.pos();
    if s.peek() != Some(b'[') {
        return Err(RewriteError::at(
            open,
            format!("result.{} must be an array", kind.list_key()),
        ));
    }
    s.expect(b'[', "expected '['")?;
    let mut items = Vec::new();
    let mut lead = s.pos();
    s.skip_ws();
    if s.peek() == Some(b']') {
        let tail = lead..s.pos();
        s.expect(b']', "expected ']'")?;
        found.list = Some((open..s.pos(), items, tail));
        return Ok(());
    }
    loop {
        s.skip_ws();
        let name = item(s, kind)?;
        let end = s.pos();
        let keep_it = match name {
            Some(name) => keep(kind, &name),
            None => false,
        };
        if !keep_it {
            found.removed += 1;
        }
        items.push(Item {
            span: lead..end,
            keep: keep_it,
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
                found.list = Some((open..s.pos(), items, tail));
                return Ok(());
            }
            _ => return Err(RewriteError::at(s.pos(), "expected ',' or ']'")),
        }
    }
}

/// Walk one item (cursor on its first byte); return its name if it is well formed.
fn item<'a>(s: &mut Scanner<'a>, kind: Kind) -> Result<Option<Cow<'a, str>>, RewriteError> {
    if s.peek() != Some(b'{') {
        skip(s, 3)?;
        return Ok(None);
    }
    let item_key = kind.item_key();
    // `None` = absent; `Some(None)` = present but unusable (not a string, twice, bad escape).
    let mut name: Option<Option<Cow<'a, str>>> = None;
    s.object(|key, s| {
        if !key.eq_str(item_key)? {
            return skip(s, 4);
        }
        let value = if s.peek() == Some(b'"') {
            s.string()?.decode().ok()
        } else {
            skip(s, 4)?;
            None
        };
        name = Some(if name.is_some() { None } else { value });
        Ok(())
    })?;
    Ok(name.flatten())
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
