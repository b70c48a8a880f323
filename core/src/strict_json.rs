//! Duplicate-key and depth checks over a whole JSON document, plus the byte scanner the wire
//! modules share.
//!
//! Owns: [`check`], a single pass over a request body that refuses duplicate object keys at any
//! depth (compared after unescaping, so `"na\u006de"` equals `"name"`), nesting deeper than a
//! limit, and anything that is not strict RFC 8259 JSON. Does not own: what the document means
//! (see [`crate::jsonrpc`], [`crate::subject`]).
//!
//! Why: RFC 8259 §4 leaves duplicate names to the implementation. If the filter reads the first
//! `"name"` and the upstream the last, the policy judged a different tool than the one that runs.
//! Refusing duplicates outright removes the disagreement instead of guessing the upstream's rule.
//!
//! Cost: no allocation for keys without escapes; keys of small objects are compared with a
//! linear scan over one shared key stack, and an object switches to hashing only once it has
//! more than [`HASH_THRESHOLD`] keys, so a body with thousands of keys stays linear.

use std::borrow::Cow;
use std::collections::HashSet;

/// Default nesting limit: deep enough for any real MCP message, shallow enough that no consumer
/// (including recursive parsers upstream) can be pushed into a stack overflow.
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// Objects with more keys than this switch from a linear scan to a hash set.
pub const HASH_THRESHOLD: usize = 16;

/// Longest key or path echoed back in an error; the rest is cut (keys come from the network).
const MAX_ECHO: usize = 64;

/// Limits for [`check_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum nesting of objects and arrays; the top-level value is depth 1.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// Not UTF-8 or not JSON at all.
    #[error("invalid JSON at byte {offset}: {message}")]
    Syntax { offset: usize, message: &'static str },
    /// The same key (after unescaping) twice in one object. `path` names the object,
    /// `key` the repeated key.
    #[error("duplicate key {key} in {path}")]
    DuplicateKey { path: String, key: String },
    /// A key that a case-insensitive decoder (Go's `encoding/json`, which also folds `ſ` to `s`
    /// and `K` to `k`) would read as one of the JSON-RPC/MCP members the gateway judges
    /// (`Method`, `NAME`, `paramſ`), next to or instead of the real one.
    #[error("key {key} in {path} reads as {canonical:?} to case-insensitive decoders: use the exact name")]
    ConfusableKey {
        path: String,
        key: String,
        canonical: &'static str,
    },
    /// Nesting deeper than the limit; `path` is where the limit was crossed.
    #[error("JSON nested deeper than {max_depth} levels at {path}")]
    TooDeep { path: String, max_depth: usize },
}

impl StrictJsonError {
    /// The JSON-RPC code to answer with: not JSON is a parse error (-32700); valid-but-refused
    /// JSON (duplicates, depth) is an invalid request (-32600), matching [`crate::jsonrpc`].
    pub fn code(&self) -> i32 {
        match self {
            StrictJsonError::Syntax { .. } => crate::jsonrpc::code::PARSE_ERROR,
            StrictJsonError::DuplicateKey { .. }
            | StrictJsonError::ConfusableKey { .. }
            | StrictJsonError::TooDeep { .. } => crate::jsonrpc::code::INVALID_REQUEST,
        }
    }
}

/// Check a whole document with the default limits.
pub fn check(body: &[u8]) -> Result<(), StrictJsonError> {
    check_with(body, Limits::default())
}

/// Check a whole document: strict JSON, unique keys at every depth, nesting within `limits`.
pub fn check_with(body: &[u8], limits: Limits) -> Result<(), StrictJsonError> {
    let text = std::str::from_utf8(body).map_err(|e| StrictJsonError::Syntax {
        offset: e.valid_up_to(),
        message: "not UTF-8",
    })?;
    let mut scanner = Scanner::new(text);
    let mut visitor = DupVisitor {
        keys: Vec::new(),
        frames: Vec::new(),
    };
    scanner.skip_ws();
    scanner
        .walk(limits.max_depth, &mut visitor)
        .map_err(|e| visitor.error(e))?;
    scanner.skip_ws();
    if !scanner.at_end() {
        return Err(StrictJsonError::Syntax {
            offset: scanner.pos(),
            message: "trailing characters after the JSON value",
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Duplicate tracking.

enum Frame<'a> {
    Object {
        /// Where this object's keys start in the shared key stack.
        start: usize,
        /// Set once the object outgrows [`HASH_THRESHOLD`].
        set: Option<HashSet<Cow<'a, [u8]>>>,
    },
    Array {
        index: usize,
        /// Key-stack length when the array opened (arrays push no keys).
        start: usize,
    },
}

struct DupVisitor<'a> {
    /// Keys of every open object, innermost last; each object truncates back on close, so the
    /// last key of an object's range is the key whose value is being read.
    keys: Vec<Cow<'a, [u8]>>,
    frames: Vec<Frame<'a>>,
}

impl<'a> DupVisitor<'a> {
    /// Render the path of the innermost open container, `$.params.arguments[2]`.
    fn path(&self, include_last_key: bool) -> String {
        let mut out = String::from("$");
        for (i, frame) in self.frames.iter().enumerate() {
            let is_last = i + 1 == self.frames.len();
            match frame {
                Frame::Object { start, .. } => {
                    if is_last && !include_last_key {
                        break;
                    }
                    let end = match self.frames.get(i + 1) {
                        Some(Frame::Object { start, .. }) | Some(Frame::Array { start, .. }) => *start,
                        None => self.keys.len(),
                    };
                    if end > *start {
                        push_key(&mut out, &self.keys[end - 1]);
                    }
                }
                Frame::Array { index, .. } => {
                    if is_last && !include_last_key {
                        break;
                    }
                    out.push_str(&format!("[{index}]"));
                }
            }
            if out.len() > 4 * MAX_ECHO {
                out.push('…');
                break;
            }
        }
        out
    }

    fn error(&self, e: WalkError) -> StrictJsonError {
        match e {
            WalkError::Syntax(s) => StrictJsonError::Syntax {
                offset: s.offset,
                message: s.message,
            },
            WalkError::TooDeep(max_depth) => StrictJsonError::TooDeep {
                path: self.path(true),
                max_depth,
            },
            WalkError::Duplicate(key) => StrictJsonError::DuplicateKey {
                path: self.path(false),
                key: echo_key(&key),
            },
            WalkError::Confusable(key, canonical) => StrictJsonError::ConfusableKey {
                path: self.path(false),
                key: echo_key(&key),
                canonical,
            },
        }
    }
}

/// JSON-RPC and MCP member names the gateway judges.
const JUDGED_KEYS: [&str; 11] = [
    "jsonrpc",
    "id",
    "method",
    "params",
    "result",
    "error",
    "name",
    "uri",
    "arguments",
    "cursor",
    "_meta",
];

/// The judged name `key` is *not* but would be read as by a case-insensitive decoder.
fn confusable(key: &[u8]) -> Option<&'static str> {
    if !may_fold(key) {
        return None;
    }
    let key = std::str::from_utf8(key).ok()?;
    JUDGED_KEYS.iter().copied().find(|k| folds_to(key, k))
}

/// Only keys with an uppercase ASCII letter or a non-ASCII byte can be another spelling of a
/// judged (lowercase ASCII) name: the common case costs one pass over a short key.
#[inline]
fn may_fold(key: &[u8]) -> bool {
    key.len() <= 27 && key.iter().any(|b| b.is_ascii_uppercase() || *b >= 0x80)
}

/// Is `key` a different spelling of `name` (ASCII case on either side, `ſ` for `s`, `K` for
/// `k`) that Go's
/// `encoding/json` would match to it? `false` for `name` itself.
pub(crate) fn folds_to(key: &str, name: &str) -> bool {
    // Cheapest tests first: length, then the first byte (unless it starts a `ſ`/`K`).
    let (k, n) = (key.as_bytes(), name.as_bytes());
    if k.len() < n.len() || k.len() > n.len() * 3 {
        return false;
    }
    match (k.first(), n.first()) {
        (Some(a), Some(b)) if *a < 0x80 && !a.eq_ignore_ascii_case(b) => return false,
        _ => {}
    }
    // A lowercase name (`name`, `params`) can only be respelled with an uppercase or non-ASCII
    // byte; a camel-case one (`uriTemplate`) also by an all-lowercase key.
    if key == name || (!may_fold(k) && !n.iter().any(u8::is_ascii_uppercase)) {
        return false;
    }
    let mut chars = key.chars();
    for n in name.chars() {
        let Some(c) = chars.next() else { return false };
        let c = match c {
            '\u{17F}' => 's',
            '\u{212A}' => 'k',
            c => c.to_ascii_lowercase(),
        };
        if c != n.to_ascii_lowercase() {
            return false;
        }
    }
    chars.next().is_none()
}

fn push_key(out: &mut String, key: &[u8]) {
    let s = String::from_utf8_lossy(key);
    let plain =
        !s.is_empty() && s.len() <= MAX_ECHO && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        out.push('.');
        out.push_str(&s);
    } else {
        out.push('[');
        out.push_str(&echo_key(key));
        out.push(']');
    }
}

/// A key as a quoted, escaped, length-capped string for messages.
fn echo_key(key: &[u8]) -> String {
    let s = String::from_utf8_lossy(key);
    let mut cut: String = s.chars().take(MAX_ECHO).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

impl<'a> Visitor<'a> for DupVisitor<'a> {
    fn open_object(&mut self) {
        self.frames.push(Frame::Object {
            start: self.keys.len(),
            set: None,
        });
    }

    fn key(&mut self, key: JsonStr<'a>) -> Result<(), WalkError> {
        let key = key.decode_bytes().map_err(WalkError::Syntax)?;
        // Members the gateway judges sit in the message object and in `params`: the first two
        // object levels (a batch adds an array, not an object).
        let objects = self.frames.iter().filter(|f| matches!(f, Frame::Object { .. })).count();
        if objects <= 2 {
            if let Some(canonical) = confusable(&key) {
                return Err(WalkError::Confusable(key.into_owned(), canonical));
            }
        }
        let Some(Frame::Object { start, set }) = self.frames.last_mut() else {
            return Ok(());
        };
        let start = *start;
        match set {
            Some(set) => {
                if !set.insert(key.clone()) {
                    return Err(WalkError::Duplicate(key.into_owned()));
                }
            }
            None => {
                if self.keys[start..].contains(&key) {
                    return Err(WalkError::Duplicate(key.into_owned()));
                }
                if self.keys.len() - start >= HASH_THRESHOLD {
                    let mut s: HashSet<Cow<'a, [u8]>> = self.keys[start..].iter().cloned().collect();
                    s.insert(key.clone());
                    *set = Some(s);
                }
            }
        }
        self.keys.push(key);
        Ok(())
    }

    fn close_object(&mut self) {
        if let Some(Frame::Object { start, .. }) = self.frames.pop() {
            self.keys.truncate(start);
        }
    }

    fn open_array(&mut self) {
        self.frames.push(Frame::Array {
            index: 0,
            start: self.keys.len(),
        });
    }

    fn next_element(&mut self) {
        if let Some(Frame::Array { index, .. }) = self.frames.last_mut() {
            *index += 1;
        }
    }

    fn close_array(&mut self) {
        self.frames.pop();
    }
}

// ---------------------------------------------------------------------------------------------
// The shared scanner: strict RFC 8259 over text already known to be UTF-8.

/// A syntax error at a byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    pub offset: usize,
    pub message: &'static str,
}

#[derive(Debug)]
pub(crate) enum WalkError {
    Syntax(Syntax),
    TooDeep(usize),
    Duplicate(Vec<u8>),
    /// See [`StrictJsonError::ConfusableKey`].
    Confusable(Vec<u8>, &'static str),
}

impl From<Syntax> for WalkError {
    fn from(s: Syntax) -> Self {
        WalkError::Syntax(s)
    }
}

/// Structure events during [`Scanner::walk`]. The no-op implementation makes `walk` a pure
/// validating skip.
pub(crate) trait Visitor<'a> {
    fn open_object(&mut self) {}
    fn key(&mut self, _key: JsonStr<'a>) -> Result<(), WalkError> {
        Ok(())
    }
    fn close_object(&mut self) {}
    fn open_array(&mut self) {}
    /// Called on each `,` of the innermost array.
    fn next_element(&mut self) {}
    fn close_array(&mut self) {}
}

pub(crate) struct Skip;
impl Visitor<'_> for Skip {}

/// A JSON string as it appears in the text: the bytes between the quotes, and whether any
/// escape occurs (if not, the raw text is the value and nothing needs allocating).
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonStr<'a> {
    pub raw: &'a str,
    pub escaped: bool,
    /// Byte offset of the opening quote, for errors.
    pub offset: usize,
}

impl<'a> JsonStr<'a> {
    /// The decoded string. Lone surrogates are refused: decoders differ on them (error, U+FFFD,
    /// WTF-8), which is exactly the kind of disagreement a policy check must not leave open.
    pub fn decode(&self) -> Result<Cow<'a, str>, Syntax> {
        if !self.escaped {
            return Ok(Cow::Borrowed(self.raw));
        }
        let err = |message| Syntax {
            offset: self.offset,
            message,
        };
        let bytes = self.raw.as_bytes();
        let mut out = String::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let next = bytes[i..]
                .iter()
                .position(|&b| b == b'\\')
                .map_or(bytes.len(), |p| i + p);
            out.push_str(&self.raw[i..next]);
            if next == bytes.len() {
                break;
            }
            i = next + 1;
            let c = *bytes.get(i).ok_or(err("unterminated escape"))?;
            i += 1;
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
                    let hi = hex4(bytes, i).ok_or(err("bad \\u escape"))?;
                    i += 4;
                    let cp = if (0xD800..0xDC00).contains(&hi) {
                        if bytes.get(i) != Some(&b'\\') || bytes.get(i + 1) != Some(&b'u') {
                            return Err(err("lone surrogate in \\u escape"));
                        }
                        let lo = hex4(bytes, i + 2).ok_or(err("bad \\u escape"))?;
                        if !(0xDC00..0xE000).contains(&lo) {
                            return Err(err("lone surrogate in \\u escape"));
                        }
                        i += 6;
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    } else if (0xDC00..0xE000).contains(&hi) {
                        return Err(err("lone surrogate in \\u escape"));
                    } else {
                        hi
                    };
                    out.push(char::from_u32(cp).ok_or(err("bad \\u escape"))?);
                }
                _ => return Err(err("bad escape")),
            }
        }
        Ok(Cow::Owned(out))
    }

    fn decode_bytes(&self) -> Result<Cow<'a, [u8]>, Syntax> {
        Ok(match self.decode()? {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })
    }

    /// Does the decoded string equal `s`? No allocation unless the string has escapes.
    pub fn eq_str(&self, s: &str) -> Result<bool, Syntax> {
        if !self.escaped {
            return Ok(self.raw == s);
        }
        Ok(self.decode()? == s)
    }
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let h = bytes.get(at..at + 4)?;
    let mut v = 0u32;
    for &b in h {
        v = (v << 4) | (b as char).to_digit(16)?;
    }
    Some(v)
}

/// A cursor over JSON text.
pub(crate) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Container stack for [`Scanner::walk`] (`true` = object), kept to reuse its allocation.
    stack: Vec<bool>,
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            stack: Vec::new(),
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The whole text being scanned.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Move the cursor `n` bytes on (past text a caller already knows), at most to the end.
    pub fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.bytes.len());
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub fn err(&self, message: &'static str) -> Syntax {
        Syntax {
            offset: self.pos,
            message,
        }
    }

    pub fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consume `b` (after whitespace).
    pub fn expect(&mut self, b: u8, message: &'static str) -> Result<(), Syntax> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(message))
        }
    }

    /// Read a string; the cursor must be on its opening quote.
    pub fn string(&mut self) -> Result<JsonStr<'a>, Syntax> {
        let open = self.pos;
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string"));
        }
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Fast path: eight bytes at a time up to the first quote, backslash or control byte.
            while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                let mask = special_mask(u64::from_le_bytes(w));
                if mask != 0 {
                    self.pos += (mask.trailing_zeros() / 8) as usize;
                    break;
                }
                self.pos += 8;
            }
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(Syntax {
                    offset: open,
                    message: "unterminated string",
                });
            };
            match b {
                b'"' => {
                    let raw = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(JsonStr {
                        raw,
                        escaped,
                        offset: open,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match self.bytes.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                        Some(b'u') => {
                            if hex4(self.bytes, self.pos + 2).is_none() {
                                return Err(self.err("bad \\u escape"));
                            }
                            self.pos += 6;
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                0x00..=0x1f => return Err(self.err("control character in string")),
                _ => self.pos += 1,
            }
        }
    }

    pub fn number(&mut self) -> Result<(), Syntax> {
        let b = self.bytes;
        let mut p = self.pos;
        if b.get(p) == Some(&b'-') {
            p += 1;
        }
        match b.get(p) {
            Some(b'0') => p += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = b.get(p) {
                    p += 1;
                }
            }
            _ => {
                return Err(Syntax {
                    offset: p,
                    message: "bad number",
                })
            }
        }
        if b.get(p) == Some(&b'.') {
            p += 1;
            if !matches!(b.get(p), Some(b'0'..=b'9')) {
                return Err(Syntax {
                    offset: p,
                    message: "bad number",
                });
            }
            while let Some(b'0'..=b'9') = b.get(p) {
                p += 1;
            }
        }
        if let Some(b'e' | b'E') = b.get(p) {
            p += 1;
            if let Some(b'+' | b'-') = b.get(p) {
                p += 1;
            }
            if !matches!(b.get(p), Some(b'0'..=b'9')) {
                return Err(Syntax {
                    offset: p,
                    message: "bad number",
                });
            }
            while let Some(b'0'..=b'9') = b.get(p) {
                p += 1;
            }
        }
        self.pos = p;
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Syntax> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("unexpected character"))
        }
    }

    /// Skip one value (validating it), returning its text. The cursor must be on its first byte.
    ///
    /// The fast path of list rewriting and envelope scans: the same grammar, errors and depth
    /// limit as [`Scanner::walk`] (a strict client must still read whatever is forwarded), but
    /// no visitor and no per-key work (duplicate keys are only looked for where a reader of the
    /// gateway's decision looks: see docs/ARCHITECTURE.md, "Where duplicate keys are checked"),
    /// the container stack kept as bits in a register, and strings crossed eight bytes at a time.
    pub fn skip_value(&mut self, max_depth: usize) -> Result<&'a str, WalkError> {
        let start = self.pos;
        if max_depth > 128 {
            self.walk(max_depth, &mut Skip)?;
        } else {
            self.skip_fast(max_depth)?;
        }
        Ok(&self.text[start..self.pos])
    }

    /// [`Scanner::skip_value`]'s loop, for `max_depth <= 128`: bit `i` of `stack` is set when
    /// the container at depth `i + 1` is an object.
    fn skip_fast(&mut self, max_depth: usize) -> Result<(), WalkError> {
        let mut stack: u128 = 0;
        let mut depth: usize = 0;
        'value: loop {
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth >= max_depth {
                        return Err(WalkError::TooDeep(max_depth));
                    }
                    let is_object = open == b'{';
                    stack = (stack << 1) | u128::from(is_object);
                    depth += 1;
                    self.pos += 1;
                    self.skip_ws();
                    match (is_object, self.peek()) {
                        (true, Some(b'}')) | (false, Some(b']')) => {
                            self.pos += 1;
                            stack >>= 1;
                            depth -= 1;
                        }
                        (true, _) => {
                            self.skip_key()?;
                            continue 'value;
                        }
                        (false, _) => continue 'value,
                    }
                }
                Some(b'"') => self.skip_string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(_) => return Err(self.err("unexpected character").into()),
                None => return Err(self.err("unexpected end of input").into()),
            }
            // A value just ended: close as many containers as end here.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let is_object = stack & 1 == 1;
                self.skip_ws();
                match (is_object, self.peek()) {
                    (true, Some(b',')) => {
                        self.pos += 1;
                        self.skip_ws();
                        self.skip_key()?;
                        continue 'value;
                    }
                    (false, Some(b',')) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (true, Some(b'}')) | (false, Some(b']')) => {
                        self.pos += 1;
                        stack >>= 1;
                        depth -= 1;
                    }
                    (_, None) => return Err(self.err("unexpected end of input").into()),
                    (true, _) => return Err(self.err("expected ',' or '}'").into()),
                    (false, _) => return Err(self.err("expected ',' or ']'").into()),
                }
            }
        }
    }

    /// `"key" :` with the cursor on the key's quote, the key only validated.
    #[inline]
    fn skip_key(&mut self) -> Result<(), Syntax> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string key"));
        }
        self.skip_string()?;
        self.expect(b':', "expected ':'")
    }

    /// Cross a string (validated exactly as [`Scanner::string`] does), the cursor on its quote.
    #[inline]
    fn skip_string(&mut self) -> Result<(), Syntax> {
        let open = self.pos;
        let bytes = self.bytes;
        let mut p = open + 1;
        loop {
            while p + 8 <= bytes.len() {
                let mut w = [0u8; 8];
                w.copy_from_slice(&bytes[p..p + 8]);
                let mask = special_mask(u64::from_le_bytes(w));
                if mask != 0 {
                    p += (mask.trailing_zeros() / 8) as usize;
                    break;
                }
                p += 8;
            }
            match bytes.get(p) {
                Some(b'"') => {
                    self.pos = p + 1;
                    return Ok(());
                }
                Some(b'\\') => match bytes.get(p + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => p += 2,
                    Some(b'u') => {
                        if hex4(bytes, p + 2).is_none() {
                            self.pos = p;
                            return Err(self.err("bad \\u escape"));
                        }
                        p += 6;
                    }
                    _ => {
                        self.pos = p;
                        return Err(self.err("bad escape"));
                    }
                },
                Some(0x00..=0x1f) => {
                    self.pos = p;
                    return Err(self.err("control character in string"));
                }
                Some(_) => p += 1,
                None => {
                    return Err(Syntax {
                        offset: open,
                        message: "unterminated string",
                    })
                }
            }
        }
    }

    /// Walk one value, iteratively (no recursion, so depth is bounded only by `max_depth`).
    /// The cursor must be on the value's first byte; it ends just after the value.
    pub fn walk<V: Visitor<'a>>(&mut self, max_depth: usize, v: &mut V) -> Result<(), WalkError> {
        let mut stack = std::mem::take(&mut self.stack);
        stack.clear();
        let r = self.walk_with(&mut stack, max_depth, v);
        self.stack = stack;
        r
    }

    fn walk_with<V: Visitor<'a>>(
        &mut self,
        stack: &mut Vec<bool>,
        max_depth: usize,
        v: &mut V,
    ) -> Result<(), WalkError> {
        'value: loop {
            // Read one value; containers push and continue with their first member.
            self.skip_ws();
            match self.peek() {
                Some(b'{') => {
                    if stack.len() >= max_depth {
                        return Err(WalkError::TooDeep(max_depth));
                    }
                    self.pos += 1;
                    v.open_object();
                    stack.push(true);
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        v.close_object();
                        stack.pop();
                    } else {
                        self.member_key(v)?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    if stack.len() >= max_depth {
                        return Err(WalkError::TooDeep(max_depth));
                    }
                    self.pos += 1;
                    v.open_array();
                    stack.push(false);
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        v.close_array();
                        stack.pop();
                    } else {
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(_) => return Err(self.err("unexpected character").into()),
                None => return Err(self.err("unexpected end of input").into()),
            }
            // A value just ended: close as many containers as end here.
            loop {
                let Some(&is_object) = stack.last() else {
                    return Ok(());
                };
                self.skip_ws();
                match (is_object, self.peek()) {
                    (true, Some(b',')) => {
                        self.pos += 1;
                        self.skip_ws();
                        self.member_key(v)?;
                        continue 'value;
                    }
                    (true, Some(b'}')) => {
                        self.pos += 1;
                        v.close_object();
                        stack.pop();
                    }
                    (false, Some(b',')) => {
                        self.pos += 1;
                        v.next_element();
                        continue 'value;
                    }
                    (false, Some(b']')) => {
                        self.pos += 1;
                        v.close_array();
                        stack.pop();
                    }
                    (_, None) => return Err(self.err("unexpected end of input").into()),
                    (true, _) => return Err(self.err("expected ',' or '}'").into()),
                    (false, _) => return Err(self.err("expected ',' or ']'").into()),
                }
            }
        }
    }

    /// `"key" :` with the cursor on the key's quote.
    fn member_key<V: Visitor<'a>>(&mut self, v: &mut V) -> Result<(), WalkError> {
        if self.peek() != Some(b'"') {
            return Err(self.err("expected a string key").into());
        }
        let key = self.string()?;
        v.key(key)?;
        self.expect(b':', "expected ':'")?;
        Ok(())
    }

    /// Iterate the members of an object, the cursor on `{`: calls `f(key, scanner)` with the
    /// cursor on each value; `f` must consume the value.
    pub fn object<E: From<Syntax>>(
        &mut self,
        mut f: impl FnMut(JsonStr<'a>, &mut Self) -> Result<(), E>,
    ) -> Result<(), E> {
        self.expect(b'{', "expected an object")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key").into());
            }
            let key = self.string()?;
            self.expect(b':', "expected ':'")?;
            self.skip_ws();
            f(key, self)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'").into()),
            }
        }
    }
}

/// SWAR: a mask with the high bit set in (at least) the lowest byte of `w` (little-endian)
/// that is `"`, `\\` or below 0x20; zero if there is none. Borrows only propagate upwards, so
/// the lowest flagged byte is always a true match (higher ones may be false positives).
#[inline]
fn special_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_byte(w ^ (ONES * b'"' as u64));
    let backslash = zero_byte(w ^ (ONES * b'\\' as u64));
    // Bytes < 0x20: subtracting 0x20 borrows into the high bit; exclude bytes ≥ 0x80.
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    quote | backslash | control
}

/// Look up one member of an object (`text` is the object's JSON) by decoded key, refusing
/// duplicates of that key. Returns the member's raw JSON text.
pub(crate) fn find_member<'a>(text: &'a str, key: &str) -> Result<Option<&'a str>, WalkError> {
    let mut s = Scanner::new(text);
    let mut found: Option<&'a str> = None;
    s.object(|k, s| {
        let v = s.skip_value(DEFAULT_MAX_DEPTH)?;
        if k.eq_str(key)? {
            if found.is_some() {
                return Err(WalkError::Duplicate(key.as_bytes().to_vec()));
            }
            found = Some(v);
        }
        Ok::<(), WalkError>(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> StrictJsonError {
        check(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn keys_a_case_insensitive_decoder_would_read_as_judged_members_are_refused() {
        for body in [
            r#"{"jsonrpc":"2.0","id":0,"method":"ping","Method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"delete_repo"}}"#,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"param\u{17f}\":{}}",
            r#"[{"jsonrpc":"2.0","id":1,"method":"x","Params":{}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","p\u0041rams":{}}"#,
        ] {
            assert!(
                matches!(check(body.as_bytes()), Err(StrictJsonError::ConfusableKey { .. })),
                "{body}"
            );
        }
        // Deeper down (tool arguments) keys are the tool's business.
        let ok =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"e","arguments":{"Name":1,"name":2}}}"#;
        assert_eq!(check(ok.as_bytes()), Ok(()));
    }

    #[test]
    fn ordinary_mcp_request_passes() {
        let body = br#" {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,2.5e3,-0,true,false,null,"x\n\u00e9"]}}} "#;
        assert_eq!(check(body), Ok(()));
    }

    #[test]
    fn duplicate_key_at_depth_reports_the_object_path() {
        let e = err(r#"{"params":{"arguments":{"a":1,"a":2}}}"#);
        assert_eq!(
            e,
            StrictJsonError::DuplicateKey {
                path: "$.params.arguments".into(),
                key: "\"a\"".into()
            }
        );
        assert_eq!(e.code(), -32600);
    }

    #[test]
    fn escaped_duplicate_is_caught_after_unescaping() {
        let e = err(r#"{"params":{"name":"a","na\u006de":"b"}}"#);
        assert!(
            matches!(e, StrictJsonError::DuplicateKey { ref key, .. } if key == "\"name\""),
            "{e:?}"
        );
        let e = err(r#"{"a\/b":1,"a/b":2}"#);
        assert!(matches!(e, StrictJsonError::DuplicateKey { .. }));
    }

    #[test]
    fn same_key_in_sibling_objects_is_fine() {
        assert_eq!(check(br#"[{"a":1},{"a":2},{"b":{"a":3}}]"#), Ok(()));
        assert_eq!(check(br#"{"x":{"a":1},"a":2}"#), Ok(()));
    }

    #[test]
    fn duplicate_inside_array_element_names_the_index() {
        let e = err(r#"{"tools":[{"n":1},{"n":1,"n":2}]}"#);
        assert_eq!(
            e,
            StrictJsonError::DuplicateKey {
                path: "$.tools[1]".into(),
                key: "\"n\"".into()
            }
        );
    }

    #[test]
    fn large_objects_switch_to_hashing_and_still_catch_duplicates() {
        let mut body = String::from("{");
        for i in 0..200 {
            body.push_str(&format!("\"k{i}\":{i},"));
        }
        body.push_str("\"k\\u0031\":0}");
        let e = err(&body);
        assert!(
            matches!(e, StrictJsonError::DuplicateKey { ref key, .. } if key == "\"k1\""),
            "{e:?}"
        );
        body.truncate(body.len() - "\"k\\u0031\":0}".len());
        body.push_str("\"last\":0}");
        assert_eq!(check(body.as_bytes()), Ok(()));
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_with_its_path() {
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        let e = err(&deep);
        assert!(matches!(e, StrictJsonError::TooDeep { max_depth: 128, .. }), "{e:?}");
        let ok = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert_eq!(check(ok.as_bytes()), Ok(()));
        let e = check_with(br#"{"a":{"b":{}}}"#, Limits { max_depth: 2 }).unwrap_err();
        assert_eq!(
            e,
            StrictJsonError::TooDeep {
                path: "$.a.b".into(),
                max_depth: 2
            }
        );
    }

    #[test]
    fn syntax_errors_are_parse_errors() {
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "tru",
            "\"\\x\"",
            "\"\u{1}\"",
            "{} {}",
            "\"\\u12\"",
            "{'a':1}",
            "[1 2]",
            "nul",
        ] {
            let e = err(bad);
            assert!(matches!(e, StrictJsonError::Syntax { .. }), "{bad:?}: {e:?}");
            assert_eq!(e.code(), -32700);
        }
        assert!(matches!(check(b"\"\xff\""), Err(StrictJsonError::Syntax { .. })));
    }

    #[test]
    fn lone_surrogate_in_a_key_is_refused_but_tolerated_in_a_value() {
        assert!(matches!(err(r#"{"a\ud800":1}"#), StrictJsonError::Syntax { .. }));
        assert_eq!(check(br#"{"a":"\ud800"}"#), Ok(()));
        assert_eq!(check(br#"{"\ud83d\ude00":1}"#), Ok(()));
    }

    #[test]
    fn long_keys_are_cut_in_messages() {
        let key = "k".repeat(1000);
        let e = err(&format!("{{\"{key}\":1,\"{key}\":2}}"));
        assert!(e.to_string().len() < 200, "{e}");
    }

    #[test]
    fn swar_finds_the_first_special_byte_in_every_lane() {
        for lane in 0..8 {
            for special in [b'"', b'\\', 0u8, 0x1f] {
                let mut w = [b'a'; 8];
                w[lane] = special;
                if lane < 7 {
                    w[7] = b'"';
                }
                let mask = special_mask(u64::from_le_bytes(w));
                assert_eq!(mask.trailing_zeros() / 8, lane as u32, "{special:#x} in lane {lane}");
            }
            for ordinary in [0xe9u8, b' ', 0x7f, 0xff, b'!', b'#', b'['] {
                let mut w = [b'a'; 8];
                w[lane] = ordinary;
                assert_eq!(special_mask(u64::from_le_bytes(w)), 0, "{ordinary:#x}");
            }
        }
    }

    #[test]
    fn find_member_refuses_a_duplicated_target_key() {
        assert_eq!(find_member(r#"{"a":1,"b":"x"}"#, "b").unwrap(), Some("\"x\""));
        assert_eq!(find_member(r#"{"a":1}"#, "b").unwrap(), None);
        assert!(find_member(r#"{"b":1,"\u0062":2}"#, "b").is_err());
    }

    /// The fast skip ([`Scanner::skip_value`]) must accept, refuse and stop exactly where the
    /// visitor walk does: it is the same grammar without the per-key work.
    #[test]
    fn fast_skip_agrees_with_the_walk() {
        let cases = [
            r#"{"a":1,"b":[true,false,null,-0.5e+3,"x\u00e9\n"],"c":{"d":{}}}"#,
            r#"[[],{},[{}],"",0]"#,
            r#""plain" ,"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":1,}"#,
            r#"[1,,2]"#,
            r#"[1 2]"#,
            r#"{"a":NaN}"#,
            r#"{'a':1}"#,
            r#"{"a":/* c */1}"#,
            r#"{"a":"bad \x escape"}"#,
            "{\"a\":\"ctl \u{1}\"}",
            r#"{"a":"\u12"}"#,
            r#"{"a":[1}"#,
            r#"{"a":{"b":]}}"#,
            r#"{"a":"unterminated"#,
            r#"{"a":1"#,
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"[[[[[[[[[[1]]]]]]]]]]"#,
            r#"{a:1}"#,
            r#"{"a"}"#,
            "",
        ];
        for text in cases {
            for depth in [1usize, 3, 5, 128, 129] {
                let mut fast = Scanner::new(text);
                let mut walk = Scanner::new(text);
                let f = fast.skip_value(depth).map(|v| v.len());
                let w = walk.walk(depth, &mut Skip).map(|_| walk.pos());
                // Same verdict, same error (kind, message, offset); on success the same end.
                assert_eq!(format!("{f:?}"), format!("{w:?}"), "{text:?} at depth {depth}");
                if f.is_ok() {
                    assert_eq!(fast.pos(), walk.pos(), "{text:?} at depth {depth}");
                }
            }
        }
    }
}
