//! Every counter the module defines, named in one place.
//!
//! Names appear in Envoy's `/stats` under the `metrics_namespace` of the filter config
//! (`mcp_policy` in the shipped configs), e.g.
//! `mcp_policy.requests_total.server.demo.method.tools_call`. Label values are always from
//! bounded sets (server names from config, method and reason labels from fixed lists), never
//! raw network input.

/// Counter ids handed out by Envoy at config time.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// MCP messages judged, by server, method label and decision (`allow`, `deny`,
    /// `audit_deny`, `reject` for refusals before policy, `unchecked` without a policy).
    pub requests_total: usize,
    /// Requests the module answered itself with an error, by server and reason.
    pub rejected_total: usize,
    /// Panics caught in a hook, by hook. Any non-zero value is a bug worth a report.
    pub panics_total: usize,
    /// Items removed from list results, by server and kind.
    pub list_items_hidden_total: usize,
    /// Virtual-server fan-out requests a backend failed, by virtual server and backend.
    pub backend_failures_total: usize,
    /// Tool-integrity findings on list items, by server, rule and outcome (`kept`,
    /// `sanitized`, `hidden`, `quarantined`).
    pub integrity_findings_total: usize,
    /// Items that drifted from their pins, by server and change (`changed`, `added`, `removed`).
    pub integrity_drift_total: usize,
}

/// (name, label names) of every counter, in definition order.
pub const COUNTERS: [(&str, &[&str]); 7] = [
    ("requests_total", &["server", "method", "decision"]),
    ("rejected_total", &["server", "reason"]),
    ("panics_total", &["hook"]),
    ("list_items_hidden_total", &["server", "kind"]),
    ("backend_failures_total", &["server", "backend"]),
    ("integrity_findings_total", &["server", "rule", "outcome"]),
    ("integrity_drift_total", &["server", "change"]),
];

impl Stats {
    /// Fixed ids for fake-host tests (they read counters back by these numbers).
    #[cfg(test)]
    pub fn for_tests() -> Stats {
        Stats {
            requests_total: 1,
            rejected_total: 2,
            panics_total: 3,
            list_items_hidden_total: 5,
            backend_failures_total: 6,
            integrity_findings_total: 7,
            integrity_drift_total: 8,
        }
    }

    /// Define all counters through `define(name, labels) -> id`.
    pub fn define(mut define: impl FnMut(&str, &[&str]) -> Option<usize>) -> Result<Stats, String> {
        let mut ids = [0usize; COUNTERS.len()];
        for (slot, (name, labels)) in ids.iter_mut().zip(COUNTERS) {
            *slot = define(name, labels).ok_or_else(|| format!("Envoy refused to define counter {name}"))?;
        }
        Ok(Stats {
            requests_total: ids[0],
            rejected_total: ids[1],
            panics_total: ids[2],
            list_items_hidden_total: ids[3],
            backend_failures_total: ids[4],
            integrity_findings_total: ids[5],
            integrity_drift_total: ids[6],
        })
    }
}

// Why the module answered a request itself (the `reason` label) is one list, in the core:
// `mcp_policy_core::refusal::Why`.
