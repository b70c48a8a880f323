//! The hash chain. A segment line is the record's JSON with `"hash"` appended as the last
//! member:
//!
//! ```text
//! {"v":1,"seq":7,...,"prev":"<hash of record 6>","hash":"<64 hex>"}
//! ```
//!
//! `hash = SHA-256("mcp-audit/v1\n" || body)`, where `body` is the line's exact bytes up to
//! (not including) `,"hash":` followed by `}`. Verification never re-serialises: it hashes
//! the bytes as stored, so any edited byte shows.

use sha2::{Digest, Sha256};

use crate::record::Record;

/// `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const DOMAIN: &[u8] = b"mcp-audit/v1\n";
const SUFFIX_LEN: usize = r#","hash":""}"#.len() + 64;

pub fn hash_body(body_without_brace: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(body_without_brace);
    h.update(b"}");
    crate::hex(&h.finalize())
}

/// Serialise `r` (whose `seq` and `prev` are set) as one line (no newline) and its hash.
pub fn encode(r: &Record) -> (String, String) {
    let mut body = serde_json::to_string(r).expect("a Record always serialises");
    body.pop(); // the closing brace
    let hash = hash_body(body.as_bytes());
    body.push_str(r#","hash":""#);
    body.push_str(&hash);
    body.push_str("\"}");
    (body, hash)
}

/// A line read back: the record, the hash it claims, and whether that hash is the hash of
/// its bytes.
#[derive(Debug, Clone)]
pub struct Line {
    pub record: Record,
    pub hash: String,
    pub intact: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not a chained record (no trailing \"hash\" member)")]
    NoHash,
    #[error("not valid record JSON: {0}")]
    Json(String),
}

pub fn decode(line: &str) -> Result<Line, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() < SUFFIX_LEN + 2 || !line.is_char_boundary(line.len() - SUFFIX_LEN) {
        return Err(LineError::NoHash);
    }
    let (body, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let claimed = suffix
        .strip_prefix(r#","hash":""#)
        .and_then(|s| s.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(LineError::NoHash)?;
    let mut full = String::with_capacity(body.len() + 1);
    full.push_str(body);
    full.push('}');
    let record: Record = serde_json::from_str(&full).map_err(|e| LineError::Json(e.to_string()))?;
    let intact = hash_body(body.as_bytes()) == claimed;
    Ok(Line {
        record,
        hash: claimed.to_string(),
        intact,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let r = Record {
            v: 1,
            seq: 1,
            time: "t".into(),
            trace_id: "x".into(),
            prev: GENESIS.into(),
            ..Default::default()
        };
        let (line, hash) = encode(&r);
        let back = decode(&line).unwrap();
        assert!(back.intact);
        assert_eq!(back.hash, hash);
        assert_eq!(back.record, r);
        let edited = line.replace("\"trace_id\":\"x\"", "\"trace_id\":\"y\"");
        let back = decode(&edited).unwrap();
        assert!(!back.intact, "an edited byte breaks the record's own hash");
        assert!(matches!(decode("{\"v\":1}"), Err(LineError::NoHash)));
    }
}
