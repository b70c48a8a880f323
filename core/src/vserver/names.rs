//! How a backend's names appear under a virtual server, and back.
//!
//! - Tools and prompts: `<prefix>__<name>`. Every backend has a prefix, even when it is the
//!   only one, so a name never changes when a backend is added. Prefixes are `[a-z0-9-]` (no
//!   `_`), so the first `__` always ends the prefix: the mapping reverses without state.
//! - Over [`MAX_NAME`] characters (a limit some clients enforce): `<prefix>__<stem>.<h>` where
//!   `stem` is the longest head of the name that fits and `h` is 8 hex digits of SHA-256 of the
//!   whole name, exactly [`MAX_NAME`] long. Deterministic; reversed by finding the backend's
//!   item with that exposed name (the merge records it; see `docs/virtual-server.md`).
//! - A backend with the empty prefix (at most one: the *default* backend) keeps its names and
//!   URIs as they are; a name or URI with no known prefix goes to it.
//! - Resources and templates: `<prefix>+<uri>`. A prefix has no `+`, so the first `+` ends it
//!   (`github+file:///a` is still a URI: `github+file` is a valid scheme).

use sha2::{Digest, Sha256};

/// Longest exposed tool or prompt name.
pub const MAX_NAME: usize = 64;
/// Longest prefix (keeps at least 29 characters of every name).
pub const MAX_PREFIX: usize = 24;
pub const SEP: &str = "__";
const HASH_HEX: usize = 8;

/// Why `prefix` cannot be a prefix, or `None`. The empty prefix is allowed (one backend at
/// most: the *default* backend, whose names are exposed unchanged).
pub fn invalid_prefix(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    let ok_start = prefix.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    let ok_chars = prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok_start || !ok_chars {
        return Some("a prefix must start with a-z and use only [a-z0-9-]".into());
    }
    if prefix.len() > MAX_PREFIX {
        return Some(format!("a prefix is at most {MAX_PREFIX} characters"));
    }
    None
}

fn hash8(name: &str) -> String {
    let d = Sha256::digest(name.as_bytes());
    d.iter().take(HASH_HEX / 2).map(|b| format!("{b:02x}")).collect()
}

/// The name a backend's tool or prompt has under the virtual server.
pub fn expose(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        return name.to_owned();
    }
    let natural = prefix.len() + SEP.len() + name.len();
    if natural <= MAX_NAME {
        let mut s = String::with_capacity(natural);
        s.push_str(prefix);
        s.push_str(SEP);
        s.push_str(name);
        return s;
    }
    let room = MAX_NAME - prefix.len() - SEP.len() - 1 - HASH_HEX;
    let mut cut = room.min(name.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{prefix}{SEP}{}.{}", &name[..cut], hash8(name))
}

/// An exposed name taken apart: the prefix, and the rest.
pub fn split(exposed: &str) -> Option<(&str, &str)> {
    let at = exposed.find(SEP)?;
    Some((&exposed[..at], &exposed[at + SEP.len()..]))
}

/// Whether an exposed name may be a shortened one (then its original is found by lookup; a
/// natural name of exactly this shape is also possible, and is tried too).
pub fn may_be_shortened(exposed: &str) -> bool {
    if exposed.len() != MAX_NAME {
        return false;
    }
    let b = exposed.as_bytes();
    let tail = &b[MAX_NAME - HASH_HEX..];
    b[MAX_NAME - HASH_HEX - 1] == b'.' && tail.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The URI a backend's resource (or template) has under the virtual server.
pub fn expose_uri(prefix: &str, uri: &str) -> String {
    if prefix.is_empty() {
        return uri.to_owned();
    }
    let mut s = String::with_capacity(prefix.len() + 1 + uri.len());
    s.push_str(prefix);
    s.push('+');
    s.push_str(uri);
    s
}

/// An exposed URI taken apart: the prefix, and the backend's URI.
pub fn split_uri(exposed: &str) -> Option<(&str, &str)> {
    let at = exposed.find('+')?;
    Some((&exposed[..at], &exposed[at + 1..]))
}
