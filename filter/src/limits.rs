//! The policy's `limits` on the request path: the one counter table of this Envoy, and what a
//! `tools/call` over a limit gets.
//!
//! The table is a process-wide `static` (the module is loaded once per Envoy, so every worker
//! and every filter config shares it): atomics only, no lock (`core::limits::table`). Counters
//! are keyed by limit id and counted value, not by config, so a policy push keeps the counts of
//! limits whose id stays. Concurrency holds are released when the stream's filter is dropped
//! (Envoy destroys it when the stream ends, however it ends).

use crate::envoy::Host;
use mcp_policy_core::limits::table::DEFAULT_SLOTS;
use mcp_policy_core::limits::{Limited, SlotRef, Table};
use mcp_policy_core::policy::{Mode, Policy};
use mcp_policy_core::principal::Principal;
use mcp_policy_core::refusal::{Refusal, Why};
use mcp_policy_core::reply::Reply;
use std::sync::LazyLock;

/// This Envoy's counters (1 MiB). Touched at config load, so no worker pays for creating it.
pub static TABLE: LazyLock<Table> = LazyLock::new(|| Table::new(DEFAULT_SLOTS));

/// Concurrency slots a stream holds; given back on drop.
#[derive(Debug, Default)]
pub struct Held(Vec<SlotRef>);

impl Drop for Held {
    fn drop(&mut self) {
        for s in self.0.drain(..) {
            TABLE.release(s);
        }
    }
}

/// What the limits say about one forwarded `tools/call`.
pub enum Outcome {
    Pass,
    /// Audit mode: over a limit, forwarded anyway.
    WouldLimit,
    /// Enforce mode: answer this instead.
    Limited(Reply),
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Charge the call against every limit covering it; record the limit, the cost and the global
/// descriptor in dynamic metadata (`limit`: the limit that refused or would refuse; `cost`;
/// `rl`: the global limits, for Envoy's rate-limit filter).
#[allow(clippy::too_many_arguments)]
pub fn check(
    policy: &Policy,
    h: &mut impl Host,
    held: &mut Held,
    principal: &Principal,
    server: &str,
    tool: &str,
    id: Option<&str>,
) -> Outcome {
    let limits = policy.limits();
    if limits.is_empty() {
        return Outcome::Pass;
    }
    match limits.admit(&TABLE, principal, server, tool, now_secs()) {
        Ok(adm) => {
            h.set_metadata("cost", itoa(adm.cost).as_str());
            if !adm.global.is_empty() {
                h.set_metadata("rl", &adm.global);
            }
            held.0.extend(adm.held);
            Outcome::Pass
        }
        Err(l) => {
            h.set_metadata("limit", l.id);
            if policy.mode(server) == Mode::Audit {
                return Outcome::WouldLimit;
            }
            Outcome::Limited(reply(&l, id))
        }
    }
}

fn itoa(n: u64) -> String {
    n.to_string()
}

/// 429, `Retry-After`, and a JSON-RPC error naming the limit.
pub fn reply(l: &Limited<'_>, id: Option<&str>) -> Reply {
    let mut r = Refusal::new(Why::RateLimited, l.message())
        .id(id)
        .data(l.data())
        .reply();
    r.headers.push(("retry-after", l.retry_after.to_string()));
    r
}
