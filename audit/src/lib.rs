//! `mcp-audit`: the tamper-evident audit trail of MCP policy for Envoy.
//!
//! Envoy streams one access-log entry per request over gRPC (`envoy.service.accesslog.v3`);
//! this crate turns each entry into a [`record::Record`], chains it to the previous one
//! ([`chain`]), appends it to segment files ([`store`]), signs checkpoints over the chain head
//! ([`checkpoint`]), and checks all of it afterwards ([`verify`], [`query`]). [`export`] ships
//! records to SIEMs from the segments with at-least-once delivery. The design and threat model
//! are in `docs/audit.md`.
#![forbid(unsafe_code)]

pub mod chain;
pub mod checkpoint;
pub mod export;
pub mod query;
pub mod record;
pub mod serve;
pub mod store;
pub mod time;
pub mod verify;

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}
