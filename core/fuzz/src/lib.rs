//! Shared by the fuzz targets: the same lenient-client oracle the proptest suite uses
//! (`core/tests/oracle_support`), plus how a target turns its leading bytes into a scenario
//! and chunk boundaries.

#[path = "../../tests/oracle_support/mod.rs"]
pub mod oracle;

use mcp_policy_core::rewrite::Kind;
use oracle::Scenario;

const KINDS: [Kind; 4] = [Kind::Tool, Kind::Prompt, Kind::Resource, Kind::ResourceTemplate];

/// A scenario from one byte: low bits pick the shape (single `7`, single `"ab"`, single
/// `"a\u0062"`, batch of `7` + `"a\u0062"` + non-list `3` + a gateway answer), high bits the kind.
pub fn scenario(b: u8) -> Scenario {
    let kind = KINDS[(b >> 4) as usize % 4];
    match b % 4 {
        0 => Scenario::single("7", kind),
        1 => Scenario::single("\"ab\"", kind),
        2 => Scenario::single("\"a\\u0062\"", kind),
        _ => Scenario {
            batch: true,
            lists: vec![
                ("7".into(), kind),
                ("\"a\\u0062\"".into(), KINDS[(b >> 6) as usize % 4]),
            ],
            others: vec!["3".into()],
            answers: vec![r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32030,"message":"denied"}}"#.into()],
        },
    }
}

/// Chunk cut points from one byte: 0 = one chunk; otherwise chunks of `n` bytes, and every
/// other chunk a single byte when the high bit is set.
pub fn cuts(b: u8, len: usize) -> Vec<usize> {
    let n = (b & 0x3f) as usize;
    if n == 0 {
        return vec![];
    }
    let mut out = Vec::new();
    let mut at = 0;
    let mut odd = false;
    while at < len {
        at += if b & 0x80 != 0 && odd { 1 } else { n };
        odd = !odd;
        out.push(at.min(len));
    }
    out
}
