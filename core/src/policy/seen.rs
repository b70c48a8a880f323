//! Visibility decisions remembered per thread: a principal who saw a list before sees the
//! next one without the name index being searched again.
//!
//! Owns: per thread, `visible(kind, name)` answers by *view key*: which compiled policy (its
//! process-unique id, never its address: a reloaded policy may reuse one), which server index
//! in it (by number), which target slot, and the principal's *signature* (one bit per rule: does the rule's
//! principal match). Does not own: the decision itself ([`super::ServerIndex::visible`]).
//!
//! Why it is sound: a visibility answer depends only on the policy (immutable once compiled),
//! the server's index, the name, and which rules' principals match; the signature holds the
//! last for every rule, so two principals with one signature get the same answer for every
//! name. Only policies of at most [`MAX_RULES`] rules have signatures (one `u64`); larger ones
//! are searched every time.
//!
//! Whole lists too: a list the rewrite memo recognised (`rewrite::Scan::result_id`: same
//! bytes, so the same names in the same order) gets the same answers per item under one view
//! key, remembered as one vector ([`visible_list`]).
//!
//! Bounded by [`MAX_NAMES`] answers and [`MAX_BYTES`] of names per thread, and by
//! [`MAX_LISTS`] lists of at most [`MAX_NAMES`] answers in all; each part emptied when full.

use super::version::FnvBuild;
use std::cell::RefCell;
use std::collections::HashMap;

/// Policies with more rules have no signature (and no memo).
pub const MAX_RULES: usize = 64;
/// Most answers remembered per thread.
pub const MAX_NAMES: usize = 32 * 1024;
/// Most name bytes remembered per thread.
pub const MAX_BYTES: usize = 1 << 20;
/// Most whole-list answers remembered per thread.
pub const MAX_LISTS: usize = 64;

/// Whose answers: see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct ViewKey {
    pub policy: u64,
    pub index: u32,
    pub slot: u8,
    pub signature: u64,
}

#[derive(Default)]
struct Seen {
    views: HashMap<ViewKey, HashMap<Box<str>, bool, FnvBuild>, FnvBuild>,
    names: usize,
    bytes: usize,
    lists: HashMap<(ViewKey, super::Kind, u64), Box<[bool]>, FnvBuild>,
    list_answers: usize,
}

thread_local! {
    static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
}

/// `f` over this thread's memo, if it can be read (not during thread teardown or a write).
fn read<R>(f: impl FnOnce(&Seen) -> Option<R>) -> Option<R> {
    SEEN.try_with(|s| s.try_borrow().ok().and_then(|s| f(&s)))
        .ok()
        .flatten()
}

/// `f` on this thread's memo, if it can be written; otherwise nothing is remembered.
fn write(f: impl FnOnce(&mut Seen)) {
    let _ = SEEN.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            f(&mut s);
        }
    });
}

/// The remembered answer for `name` under `key`, else `decide()`'s (then remembered).
pub(super) fn visible(key: ViewKey, name: &str, decide: impl FnOnce() -> bool) -> bool {
    if let Some(v) = read(|s| s.views.get(&key)?.get(name).copied()) {
        return v;
    }
    let v = decide();
    write(|s| {
        if s.names >= MAX_NAMES || s.bytes + name.len() > MAX_BYTES {
            s.views.clear();
            s.names = 0;
            s.bytes = 0;
        }
        if name.len() > MAX_BYTES {
            return;
        }
        if s.views.entry(key).or_default().insert(name.into(), v).is_none() {
            s.names += 1;
            s.bytes += name.len();
        }
    });
    v
}

/// The remembered answers for every item of list `kind` of result `list` under `key`, else
/// `decide()`'s (then remembered).
pub(super) fn visible_list(
    key: ViewKey,
    kind: super::Kind,
    list: u64,
    decide: impl FnOnce() -> Vec<bool>,
) -> Vec<bool> {
    if let Some(v) = read(|s| s.lists.get(&(key, kind, list)).map(|v| v.to_vec())) {
        return v;
    }
    let v = decide();
    write(|s| {
        if v.len() > MAX_NAMES {
            return;
        }
        if s.lists.len() >= MAX_LISTS || s.list_answers + v.len() > MAX_NAMES {
            s.lists.clear();
            s.list_answers = 0;
        }
        s.list_answers += v.len();
        if let Some(old) = s.lists.insert((key, kind, list), v.as_slice().into()) {
            s.list_answers -= old.len();
        }
    });
    v
}

/// How many answers and name bytes this thread remembers.
pub fn size() -> (usize, usize) {
    read(|s| Some((s.names, s.bytes))).unwrap_or((0, 0))
}

/// How many whole lists, and answers in them, this thread remembers.
pub fn list_size() -> (usize, usize) {
    read(|s| Some((s.lists.len(), s.list_answers))).unwrap_or((0, 0))
}

/// Forget every answer this thread remembers (benches measuring the index itself).
pub fn clear() {
    write(|s| *s = Seen::default());
}
