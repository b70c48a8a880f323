//! Server-sent events framing for Streamable HTTP responses (`text/event-stream`).
//!
//! Owns: an incremental parser ([`Parser`]) that turns response body chunks into complete event
//! blocks with their absolute byte ranges, and an encoder for a rewritten event. Does not own:
//! what an event's `data` means (see [`crate::jsonrpc`], [`crate::rewrite`]).
//!
//! Follows the WHATWG HTML "event stream interpretation" rules: lines end with CRLF, LF or CR;
//! a line starting with `:` is a comment; `field: value` drops one leading space of the value;
//! `data` lines are joined with `\n`; an `id` containing NUL is ignored; `retry` must be all
//! digits; a blank line ends the block; a leading BOM is skipped; an unterminated final block
//! is not an event. <https://html.spec.whatwg.org/multipage/server-sent-events.html>
//!
//! Byte ranges tile the stream: each block's range starts where the previous one ended and
//! covers its terminating blank line, so a caller can forward untouched blocks verbatim and
//! splice in a replacement for exactly one. Blocks that a browser would not dispatch (comments
//! only, keep-alives, stray blank lines) are yielded too, with `data() == None`, so no byte is
//! unaccounted for. The result does not depend on how the bytes were chunked.

use std::ops::Range;

/// Default cap on one block's size (including a partial one being buffered).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// Why a stream was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One block grew beyond the limit; the stream should be reset.
    #[error("SSE event starting at byte {start} exceeds {limit} bytes")]
    EventTooLarge { start: u64, limit: usize },
    /// An earlier error left the parser unusable.
    #[error("SSE parser already failed")]
    Failed,
    /// A field for [`encode`] contains a line break or NUL.
    #[error("SSE field {0} cannot contain CR, LF or NUL")]
    BadField(&'static str),
}

/// One complete block of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    range: Range<u64>,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    comments: usize,
}

impl Event {
    /// Absolute byte range in the stream, from the block's first line through its blank line.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// The `event` field (the last one in the block), if any.
    pub fn event_type(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The `data` lines joined with `\n`; `None` when the block had no `data` field, in which
    /// case a browser dispatches nothing.
    pub fn data(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The `id` field (the last valid one in the block), if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `retry` field (milliseconds), if any valid one.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// How many comment lines the block had (`: keep-alive`).
    pub fn comments(&self) -> usize {
        self.comments
    }

    /// The same event (`event`, `id`, `retry` kept; comments dropped) with new data.
    pub fn with_data(&self, data: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        // Fields from the parser hold no CR, LF (lines were split on them) or NUL (for ids),
        // so this cannot fail; fall back to data-only rather than panic if it ever did.
        if encode_into(&mut out, self.event.as_deref(), self.id.as_deref(), self.retry, data).is_err() {
            out.clear();
            let _ = encode_into(&mut out, None, None, None, data);
        }
        out
    }
}

/// Encode one event: `event`, `id`, `retry`, then one `data:` line per line of `data` (split
/// on CRLF, CR or LF, so a consumer joining with `\n` sees LF line breaks), then a blank line.
pub fn encode(event: Option<&str>, id: Option<&str>, retry: Option<u64>, data: &str) -> Result<Vec<u8>, SseError> {
    let mut out = Vec::with_capacity(data.len() + 64);
    encode_into(&mut out, event, id, retry, data)?;
    Ok(out)
}

fn encode_into(
    out: &mut Vec<u8>,
    event: Option<&str>,
    id: Option<&str>,
    retry: Option<u64>,
    data: &str,
) -> Result<(), SseError> {
    let bad = |s: &str| s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0));
    if let Some(e) = event {
        if bad(e) {
            return Err(SseError::BadField("event"));
        }
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.push(b'\n');
    }
    if let Some(i) = id {
        if bad(i) {
            return Err(SseError::BadField("id"));
        }
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(i.as_bytes());
        out.push(b'\n');
    }
    if let Some(r) = retry {
        out.extend_from_slice(format!("retry: {r}\n").as_bytes());
    }
    let mut rest = data;
    loop {
        let (line, next) = match rest.find(['\r', '\n']) {
            Some(i) => {
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..i], Some(&rest[i + skip..]))
            }
            None => (rest, None),
        };
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out.push(b'\n');
    Ok(())
}

/// What is left when the stream ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct End {
    /// A block whose final blank line was a CR at the very end of the last chunk.
    pub event: Option<Event>,
    /// Bytes of an unterminated final block: not an event, but still part of the stream.
    pub tail: Option<Range<u64>>,
    /// The unterminated final block as a *lenient* client would dispatch it (its last line
    /// taken as complete, the missing blank line assumed), if it has any `data`. WHATWG says
    /// such a block is discarded; some client libraries dispatch it anyway, so a gateway that
    /// must judge every message judges this one too.
    pub lenient: Option<Event>,
}

/// Incremental `text/event-stream` parser. Feed chunks with [`Parser::push`], then call
/// [`Parser::finish`] at end of stream.
#[derive(Debug)]
pub struct Parser {
    /// Absolute offset of the next byte to be pushed.
    offset: u64,
    /// A line split across chunks (without its terminator).
    line: Vec<u8>,
    /// `line` is complete and ended with CR at a chunk's end; an LF may still follow.
    pending_cr: bool,
    /// No line processed yet (a BOM may lead the first one).
    first_line: bool,
    block: Event,
    /// `data` seen in this block (the buffer may be empty even then).
    data: String,
    has_data: bool,
    max_event_bytes: usize,
    failed: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A parser that refuses blocks larger than `max_event_bytes`.
    pub fn with_limit(max_event_bytes: usize) -> Self {
        Self {
            offset: 0,
            line: Vec::new(),
            pending_cr: false,
            first_line: true,
            block: Event::default(),
            data: String::new(),
            has_data: false,
            max_event_bytes,
            failed: false,
        }
    }

    /// Every byte before this offset belongs to a block already returned.
    pub fn complete_up_to(&self) -> u64 {
        self.block.range.start
    }

    /// Bytes pushed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Feed the next chunk; returns the blocks it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        if self.failed {
            return Err(SseError::Failed);
        }
        let r = self.push_inner(chunk);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn push_inner(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut out = Vec::new();
        let base = self.offset;
        let mut i = 0;
        if self.pending_cr && !chunk.is_empty() {
            self.pending_cr = false;
            if chunk[0] == b'\n' {
                i = 1;
            }
            let line = std::mem::take(&mut self.line);
            self.end_line(&line, base + i as u64, &mut out)?;
            self.line = line;
            self.line.clear();
        }
        while i < chunk.len() {
            let Some(j) = chunk[i..].iter().position(|&b| b == b'\r' || b == b'\n').map(|p| i + p) else {
                self.line.extend_from_slice(&chunk[i..]);
                break;
            };
            if chunk[j] == b'\r' && j + 1 == chunk.len() {
                self.line.extend_from_slice(&chunk[i..j]);
                self.pending_cr = true;
                break;
            }
            let term = if chunk[j] == b'\r' && chunk[j + 1] == b'\n' {
                2
            } else {
                1
            };
            let end = base + (j + term) as u64;
            if self.line.is_empty() {
                self.end_line(&chunk[i..j], end, &mut out)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[i..j]);
                self.end_line(&line, end, &mut out)?;
                line.clear();
                self.line = line;
            }
            i = j + term;
        }
        self.offset = base + chunk.len() as u64;
        self.check_size(self.offset)?;
        Ok(out)
    }

    /// End of stream: flush a block held back by a trailing CR, and report unterminated bytes.
    pub fn finish(&mut self) -> Result<End, SseError> {
        if self.failed {
            return Err(SseError::Failed);
        }
        let mut end = End::default();
        if self.pending_cr {
            self.pending_cr = false;
            let line = std::mem::take(&mut self.line);
            let mut out = Vec::new();
            self.end_line(&line, self.offset, &mut out)?;
            end.event = out.pop();
        }
        let start = self.block.range.start;
        if start < self.offset {
            end.tail = Some(start..self.offset);
            let line = std::mem::take(&mut self.line);
            let mut sink = Vec::new();
            if !line.is_empty() {
                self.end_line(&line, self.offset, &mut sink)?;
            }
            self.end_line(&[], self.offset, &mut sink)?;
            end.lenient = sink.pop().filter(|e| e.data.is_some());
        }
        self.block = Event {
            range: self.offset..self.offset,
            ..Event::default()
        };
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        Ok(end)
    }

    fn check_size(&self, upto: u64) -> Result<(), SseError> {
        let start = self.block.range.start;
        if upto - start > self.max_event_bytes as u64 {
            return Err(SseError::EventTooLarge {
                start,
                limit: self.max_event_bytes,
            });
        }
        Ok(())
    }

    /// Process one complete line (without terminator) whose terminator ends at `end`.
    fn end_line(&mut self, mut line: &[u8], end: u64, out: &mut Vec<Event>) -> Result<(), SseError> {
        self.check_size(end)?;
        if std::mem::replace(&mut self.first_line, false) {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            let mut block = std::mem::replace(
                &mut self.block,
                Event {
                    range: end..end,
                    ..Event::default()
                },
            );
            block.range.end = end;
            if std::mem::replace(&mut self.has_data, false) {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the trailing "\n" every data line appended
                block.data = Some(data);
            }
            out.push(block);
            return Ok(());
        }
        if line[0] == b':' {
            self.block.comments += 1;
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                self.has_data = true;
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
            }
            b"event" => self.block.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => self.block.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                if let Some(ms) = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()) {
                    self.block.retry = Some(ms);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(stream: &[u8]) -> (Vec<Event>, End) {
        let mut p = Parser::new();
        let events = p.push(stream).unwrap();
        (events, p.finish().unwrap())
    }

    #[test]
    fn a_typical_mcp_stream_yields_message_events_with_ranges() {
        let s = b"event: message\nid: 1\ndata: {\"a\":1}\n\n: ping\n\nevent: message\ndata: {\"b\":2}\n\n";
        let (ev, end) = parse_all(s);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].event_type(), Some("message"));
        assert_eq!(ev[0].id(), Some("1"));
        assert_eq!(ev[0].data(), Some("{\"a\":1}"));
        assert_eq!(ev[0].range(), 0..36);
        assert_eq!(ev[1].data(), None);
        assert_eq!(ev[1].comments(), 1);
        assert_eq!(ev[2].range().end, s.len() as u64);
        assert_eq!(end, End::default());
    }

    #[test]
    fn multi_line_data_is_joined_with_lf_across_line_ending_styles() {
        let (ev, _) = parse_all(b"data: a\r\ndata:b\rdata:  c\ndata\n\r\n");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data(), Some("a\nb\n c\n"));
    }

    #[test]
    fn empty_data_field_still_dispatches() {
        let (ev, _) = parse_all(b"data:\n\n");
        assert_eq!(ev[0].data(), Some(""));
    }

    #[test]
    fn odd_fields_follow_the_whatwg_rules() {
        let (ev, _) = parse_all(b"\xEF\xBB\xBFid: a\0b\nretry: 12x\nretry: 300\nfoo: bar\nevent\ndata: x\n\n");
        assert_eq!(ev[0].id(), None);
        assert_eq!(ev[0].retry(), Some(300));
        assert_eq!(ev[0].event_type(), Some(""));
        assert_eq!(ev[0].data(), Some("x"));
        assert_eq!(ev[0].range().start, 0, "the BOM belongs to the first block");
    }

    #[test]
    fn unterminated_final_block_is_a_tail_not_an_event() {
        let (ev, end) = parse_all(b"data: a\n\ndata: b\n");
        assert_eq!(ev.len(), 1);
        assert_eq!(end.tail, Some(9..17));
        assert_eq!(end.event, None);
    }

    #[test]
    fn unterminated_final_block_is_also_read_as_a_lenient_client_would() {
        let (_, end) = parse_all(b"data: a\n\nid: 3\ndata: {\"x\":\ndata: 1}");
        let ev = end.lenient.expect("lenient event");
        assert_eq!(ev.data(), Some("{\"x\":\n1}"));
        assert_eq!(ev.id(), Some("3"));
        assert_eq!(ev.range(), 9..35);
        let (_, end) = parse_all(b"data: a\n\n: just a comment");
        assert!(end.tail.is_some());
        assert_eq!(end.lenient, None, "no data, nothing a client could dispatch");
    }

    #[test]
    fn trailing_cr_is_held_until_the_next_byte_or_the_end() {
        let mut p = Parser::new();
        assert!(p.push(b"data: a\r\r").unwrap().is_empty());
        let ev = p.push(b"\n").unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].range(), 0..10);
        let mut p = Parser::new();
        p.push(b"data: a\r\r").unwrap();
        let end = p.finish().unwrap();
        assert_eq!(end.event.map(|e| e.range()), Some(0..9));
        assert_eq!(end.tail, None);
    }

    #[test]
    fn oversized_event_fails_and_poisons_the_parser() {
        let mut p = Parser::with_limit(16);
        assert!(matches!(
            p.push(b"data: 0123456789abcdef"),
            Err(SseError::EventTooLarge { .. })
        ));
        assert_eq!(p.push(b"\n\n"), Err(SseError::Failed));
        let mut p = Parser::with_limit(16);
        assert_eq!(
            p.push(b"data: 012\n\ndata: 345\n\n").unwrap().len(),
            2,
            "the limit is per event"
        );
    }

    #[test]
    fn rewritten_event_keeps_event_and_id_and_round_trips() {
        let (ev, _) = parse_all(b"event: message\nid: 7\nretry: 5\n: c\ndata: old\n\n");
        let bytes = ev[0].with_data("{\"new\":\n1}");
        assert_eq!(bytes, b"event: message\nid: 7\nretry: 5\ndata: {\"new\":\ndata: 1}\n\n");
        let (again, _) = parse_all(&bytes);
        assert_eq!(again[0].data(), Some("{\"new\":\n1}"));
        assert_eq!(again[0].id(), Some("7"));
        assert_eq!(again[0].event_type(), Some("message"));
    }

    #[test]
    fn encode_refuses_line_breaks_in_fields() {
        assert_eq!(encode(Some("a\nb"), None, None, "x"), Err(SseError::BadField("event")));
        assert_eq!(encode(None, Some("a\0"), None, "x"), Err(SseError::BadField("id")));
        assert_eq!(encode(None, None, None, " lead").unwrap(), b"data:  lead\n\n");
    }
}
