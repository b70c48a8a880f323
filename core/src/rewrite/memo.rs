//! The list-result memo: a worker that has walked a `result` holding a list does not walk the
//! same bytes again.
//!
//! Owns: per thread, the last few `result` values that held a list (their exact bytes), each
//! with what [`super::result`] found in it (item spans, names, `nextCursor`, `instructions`),
//! as offsets from the value's first byte. Does not own: anything that depends on who asks or
//! on config (visibility, integrity); those run on every answer.
//!
//! Why it is sound: the walk of a `result` value is a pure function of its bytes (grammar,
//! depth limit, names, duplicate and confusable checks; none of them look past the value's
//! closing `}` or outside it). A value is remembered only after the walk accepted it, and
//! reused only when the text at the cursor *starts with* exactly those bytes: an object value
//! ends at its own closing brace, so the same prefix is the same value, walked the same way.
//! Anything else (one byte changed, added or cut) is a miss and gets the full walk.
//!
//! Why it pays: a server's `tools/list` is the same bytes for every session that starts
//! (clients list on every `initialize`), with only the envelope's `id` changing. A hit costs
//! one `memcmp` of the value and one pass over its items to rebuild their spans; the strict
//! walk it replaces costs 10-15 instructions per byte (docs/BENCHMARKS.md).
//!
//! Per thread (a `thread_local`; Envoy's workers each keep their own): no lock, no sharing.
//! Bounded by [`MEMO_BYTES`] of remembered text and [`MEMO_ENTRIES`] values, least recently
//! used first out; values under [`MIN_BYTES`] are walked every time (the walk is cheaper than
//! the copy).

use super::{Item, List};
use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

/// Most remembered text per thread, in bytes.
pub const MEMO_BYTES: usize = 2 << 20;
/// Most remembered values per thread.
pub const MEMO_ENTRIES: usize = 8;
/// Smaller `result` values are not remembered.
pub const MIN_BYTES: usize = 512;

/// How an item's name is rebuilt on a hit.
enum Name {
    None,
    /// Unescaped: the text inside the quotes at `name_at`, borrowed from the new body.
    InPlace,
    /// Had escapes: decoded once, cloned on a hit.
    Decoded(Box<str>),
}

struct MemoItem {
    span: Range<usize>,
    name: Name,
    name_at: Option<Range<usize>>,
}

struct MemoList {
    kind: super::Kind,
    array: Range<usize>,
    tail: Range<usize>,
    items: Vec<MemoItem>,
}

/// What the walk of one `result` value found, offsets from its first byte.
pub(super) struct Found<'a> {
    pub lists: Vec<List<'a>>,
    pub next_cursor: bool,
    pub instructions: Option<Range<usize>>,
    /// The remembered value's number (see [`super::Scan::result_id`]).
    pub id: Option<u64>,
}

struct Entry {
    /// Unique on this thread: never given to another value, even after this one is dropped.
    id: u64,
    text: Box<[u8]>,
    lists: Vec<MemoList>,
    next_cursor: bool,
    instructions: Option<Range<usize>>,
}

struct Memo {
    /// Most recently used first.
    entries: Vec<Entry>,
    /// The last entry number given.
    last_id: u64,
    bytes: usize,
    /// Inside [`without`]: neither recall nor remember.
    off: bool,
    /// Smaller values are not remembered ([`MIN_BYTES`] unless [`set_min_bytes`] said).
    min: usize,
}

impl Default for Memo {
    fn default() -> Self {
        Memo {
            entries: Vec::new(),
            last_id: 0,
            bytes: 0,
            off: false,
            min: MIN_BYTES,
        }
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

fn shift(r: &Range<usize>, by: usize) -> Range<usize> {
    r.start + by..r.end + by
}

impl Entry {
    /// Rebuild what the walk found, for a value that starts at `at` in `text`.
    fn found<'a>(&self, text: &'a str, at: usize) -> Found<'a> {
        let lists = self
            .lists
            .iter()
            .map(|l| List {
                kind: l.kind,
                array: shift(&l.array, at),
                tail: shift(&l.tail, at),
                items: l
                    .items
                    .iter()
                    .map(|i| {
                        let name_at = i.name_at.as_ref().map(|r| shift(r, at));
                        let name = match (&i.name, &name_at) {
                            (Name::InPlace, Some(r)) => {
                                text.get(r.start + 1..r.end.saturating_sub(1)).map(Cow::Borrowed)
                            }
                            (Name::Decoded(n), _) => Some(Cow::Owned(n.to_string())),
                            _ => None,
                        };
                        Item {
                            span: shift(&i.span, at),
                            name,
                            name_at,
                        }
                    })
                    .collect(),
            })
            .collect();
        Found {
            lists,
            next_cursor: self.next_cursor,
            instructions: self.instructions.as_ref().map(|r| shift(r, at)),
            id: Some(self.id),
        }
    }

    /// Remember `found` for the value `value` (which starts at `at` in the body).
    fn new(id: u64, value: &[u8], at: usize, found: &Found<'_>) -> Self {
        let back = |r: &Range<usize>| r.start - at..r.end - at;
        Entry {
            id,
            text: value.into(),
            lists: found
                .lists
                .iter()
                .map(|l| MemoList {
                    kind: l.kind,
                    array: back(&l.array),
                    tail: back(&l.tail),
                    items: l
                        .items
                        .iter()
                        .map(|i| MemoItem {
                            span: back(&i.span),
                            name: match &i.name {
                                None => Name::None,
                                Some(Cow::Borrowed(_)) => Name::InPlace,
                                Some(Cow::Owned(n)) => Name::Decoded(n.as_str().into()),
                            },
                            name_at: i.name_at.as_ref().map(back),
                        })
                        .collect(),
                })
                .collect(),
            next_cursor: found.next_cursor,
            instructions: found.instructions.as_ref().map(back),
        }
    }
}

/// What the walk found for a `result` value starting at byte `at` of `text`, and the value's
/// length, if this thread remembers a value that `text[at..]` starts with.
pub(super) fn recall<'a>(text: &'a str, at: usize) -> Option<(Found<'a>, usize)> {
    let rest = text.as_bytes().get(at..)?;
    MEMO.try_with(|m| {
        let mut m = m.try_borrow_mut().ok()?;
        if m.off {
            return None;
        }
        let i = m.entries.iter().position(|e| rest.starts_with(&e.text))?;
        if i > 0 {
            let e = m.entries.remove(i);
            m.entries.insert(0, e);
        }
        let e = &m.entries[0];
        Some((e.found(text, at), e.text.len()))
    })
    .ok()
    .flatten()
}

/// Remember what the walk found for `text[at..end]` (a `result` object that holds a list);
/// the number it is remembered by, if it is.
pub(super) fn remember(text: &str, at: usize, end: usize, found: &Found<'_>) -> Option<u64> {
    let len = end.saturating_sub(at);
    if found.lists.is_empty() || len > MEMO_BYTES / 2 {
        return None;
    }
    let value = text.as_bytes().get(at..end)?;
    MEMO.try_with(|m| {
        let mut m = m.try_borrow_mut().ok()?;
        if m.off || len < m.min {
            return None;
        }
        while !m.entries.is_empty() && (m.entries.len() >= MEMO_ENTRIES || m.bytes + len > MEMO_BYTES) {
            if let Some(old) = m.entries.pop() {
                m.bytes -= old.text.len();
            }
        }
        m.bytes += len;
        m.last_id += 1;
        let id = m.last_id;
        m.entries.insert(0, Entry::new(id, value, at, found));
        Some(id)
    })
    .ok()
    .flatten()
}

/// Remember values from `n` bytes on in this thread (fuzzing: every list, however small).
pub fn set_min_bytes(n: usize) {
    let _ = MEMO.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            m.min = n;
        }
    });
}

/// Forget everything this thread remembers (tests and benches that measure the walk itself).
pub fn clear() {
    let _ = MEMO.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            m.entries.clear();
            m.bytes = 0;
        }
    });
}

/// How many values and bytes this thread remembers.
pub fn size() -> (usize, usize) {
    MEMO.try_with(|m| m.try_borrow().map(|m| (m.entries.len(), m.bytes)).unwrap_or((0, 0)))
        .unwrap_or((0, 0))
}

/// Run `f` with this thread's memo switched off (every `result` walked): the reference the
/// memo is tested and fuzzed against, and the cold path the benches measure.
pub fn without<R>(f: impl FnOnce() -> R) -> R {
    fn set(off: bool) {
        let _ = MEMO.try_with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                m.off = off;
            }
        });
    }
    /// Switches the memo back on however `f` ends.
    struct On;
    impl Drop for On {
        fn drop(&mut self) {
            set(false);
        }
    }
    set(true);
    let _on = On;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::Edit;
    use crate::rewrite::{scan, Kind, Rewrite};

    fn list(n: usize, escaped_first: bool) -> String {
        let tools: Vec<String> = (0..n)
            .map(|i| {
                let name = if i == 0 && escaped_first { r#"e\u0063ho"#.to_owned() } else { format!("tool_{i}") };
                format!(
                    r#"{{"name":"{name}","description":"tool {i}: does a thing","inputSchema":{{"type":"object","properties":{{"q":{{"type":"string"}}}}}}}}"#
                )
            })
            .collect();
        format!(r#"{{"tools":[ {} ],"nextCursor":"c2"}}"#, tools.join(", "))
    }

    /// The same result value inside different envelopes: ids, member order, whitespace.
    fn envelopes(result: &str) -> Vec<String> {
        vec![
            format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#),
            format!(r#"{{"jsonrpc":"2.0","id":"a-much-longer-id-7","result":{result}}}"#),
            format!(r#"{{"result":{result},"jsonrpc":"2.0","id":42}}"#),
            format!("{{ \"id\" : 3 ,\n \"result\" : {result} , \"jsonrpc\":\"2.0\" }}"),
        ]
    }

    fn walked(body: &str) -> Result<String, String> {
        without(|| {
            scan(body.as_bytes())
                .map(|s| format!("{:?}", s.without_result_id()))
                .map_err(|e| e.to_string())
        })
    }

    fn scanned(body: &str) -> Result<String, String> {
        scan(body.as_bytes())
            .map(|s| format!("{:?}", s.without_result_id()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_hit_finds_exactly_what_the_walk_finds_in_any_envelope() {
        clear();
        let result = list(20, true);
        for body in envelopes(&result) {
            assert_eq!(scanned(&body), walked(&body), "{body}");
        }
        assert_eq!(size().0, 1, "one value, remembered once, recalled three times");
        let body = &envelopes(&result)[2];
        let s = scan(body.as_bytes()).unwrap();
        let items = s.items(Kind::Tool).unwrap();
        assert_eq!(items[0].name, Some("echo"), "escaped names are rebuilt decoded");
        assert_eq!(items[5].name, Some("tool_5"));
        assert!(s.has_next_cursor());
        let Rewrite::Rewritten { body: out, removed } = s.filter(Kind::Tool, |_, n| n != "tool_5").unwrap() else {
            panic!("expected a rewrite")
        };
        assert_eq!(removed, 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["result"]["tools"].as_array().unwrap().len(), 19);
    }

    #[test]
    fn one_changed_byte_is_a_miss_and_is_walked() {
        clear();
        let body = envelopes(&list(20, false))[0].clone();
        scan(body.as_bytes()).unwrap();
        // A duplicate key and a control character where the remembered text had neither.
        let dup = body.replacen(r#""type":"string""#, r#""type":"string","type":"x""#, 1);
        let control = body.replacen("tool 7:", "tool\u{1}7:", 1);
        for bad in [&dup, &control] {
            assert_eq!(scanned(bad), walked(bad));
        }
        assert!(scan(control.as_bytes()).is_err());
        // The remembered value cut short, then with more members: neither is the same value.
        assert!(scan(&body.as_bytes()[..body.len() - 3]).is_err());
        let longer = body.replacen(r#""nextCursor":"c2"}"#, r#""nextCursor":"c2","extra":[1,2]}"#, 1);
        assert_eq!(scanned(&longer), walked(&longer));
        assert_eq!(scan(longer.as_bytes()).unwrap().items(Kind::Tool).unwrap().len(), 20);
    }

    #[test]
    fn bounded_in_values_and_bytes_and_small_values_are_not_kept() {
        clear();
        for n in 0..(MEMO_ENTRIES + 4) {
            let body = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{}}}"#, list(10 + n, false));
            scan(body.as_bytes()).unwrap();
        }
        let (entries, bytes) = size();
        assert_eq!(entries, MEMO_ENTRIES);
        assert!(bytes <= MEMO_BYTES);
        clear();
        scan(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"}]}}"#).unwrap();
        assert_eq!(size(), (0, 0), "a small list is walked every time");
        let text = "x".repeat(2000);
        let no_list =
            format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"content":[{{"type":"text","text":"{text}"}}]}}}}"#);
        scan(no_list.as_bytes()).unwrap();
        assert_eq!(size(), (0, 0), "only results holding a list are kept");
    }

    #[test]
    fn a_result_id_names_exactly_one_value_and_is_never_given_again() {
        clear();
        let id = |body: &str| scan(body.as_bytes()).unwrap().result_id();
        let a = list(20, false);
        let b = list(21, false);
        let first = id(&envelopes(&a)[0]);
        assert!(first.is_some(), "a remembered value has a number from its first walk");
        for body in envelopes(&a) {
            assert_eq!(id(&body), first, "the same value in another envelope");
        }
        let other = id(&envelopes(&b)[0]);
        assert!(other.is_some() && other != first);
        assert_eq!(without(|| id(&envelopes(&a)[0])), None, "no number with the memo off");
        assert_eq!(
            id(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#),
            None,
            "too small to remember"
        );
        // Forgotten and walked again: a new number, so nothing keyed by the old one applies.
        clear();
        let again = id(&envelopes(&a)[0]);
        assert!(again.is_some() && again != first && again != other);
        // Splicing per-item answers is filtering by name.
        let body = envelopes(&a)[1].clone();
        let s = scan(body.as_bytes()).unwrap();
        let edits: Vec<Edit> = s
            .names(Kind::Tool)
            .unwrap()
            .map(|n| Edit::keep_if(n.is_some_and(|n| n.ends_with('3'))))
            .collect();
        assert_eq!(
            format!("{:?}", s.splice(Kind::Tool, &edits)),
            format!("{:?}", s.filter(Kind::Tool, |_, n| n.ends_with('3')))
        );
        assert!(s.names(Kind::Prompt).is_none());
    }

    #[test]
    fn without_switches_the_memo_back_on_after_a_panic() {
        clear();
        let r = std::panic::catch_unwind(|| without(|| panic!("inside")));
        assert!(r.is_err());
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{}}}"#, list(10, false));
        scan(body.as_bytes()).unwrap();
        assert_eq!(size().0, 1);
    }
}
