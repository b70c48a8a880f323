//! The request path's parsers on any bytes: strict JSON check, JSON-RPC parse, id keys and the
//! subject of every message: no panic, the arguments digest's fast path agrees with the
//! reference, and nothing the strict check refuses is parsed as a
//! message with a subject by accident of order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_policy_core::jsonrpc::{self, Body, IdKey, Message};
use mcp_policy_core::mcp::Method;
use mcp_policy_core::{audit, strict_json, subject};

fn judge(m: &Message<'_>) {
    if let Some(id) = m.id() {
        let _ = IdKey::from_json(id.as_json());
    }
    let method = Method::from_name(m.method().unwrap_or_default());
    if let Ok(s) = subject::subject(m, method) {
        let _ = s.target();
    }
    let _ = subject::protocol_version(m);
    if let Some(p) = m.params() {
        // The digest's fast path (arguments hashed as sent) agrees with the reference.
        assert_eq!(audit::args_digest(p), audit::digest_slow(p), "args_digest fast path differs");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = strict_json::check(data);
    let _ = IdKey::from_json(&String::from_utf8_lossy(data));
    match jsonrpc::parse(data) {
        Ok(Body::Single(m)) => judge(&m),
        Ok(Body::Batch(items)) => {
            for m in items.iter().flatten() {
                judge(m);
            }
        }
        Err(_) => {}
    }
});
