//! What each Envoy saw of tool integrity, from the stats it streams to us
//! (`envoy.stat_sinks.metrics_service`, envoy.service.metrics.v3.MetricsService): per node, the
//! last-seen integrity counters of the mcp_policy module and when they were seen. `/status`,
//! `/integrity` and `/metrics` show them, so one request tells which Envoys saw which server's
//! definitions change.
//!
//! Pure logic: the gRPC shell (`server.rs`) hands over decoded `MetricFamily` lists. Everything
//! here is network data: no unwrap, every string bounded, every map capped.
//!
//! Envoy names a counter of the module either way, and both are parsed:
//! - tags as labels (`emit_tags_as_labels: true`): `mcp_policy.integrity_drift_total` with the
//!   labels `server`, `change`;
//! - flat: `mcp_policy.integrity_drift_total.server.rug.change.changed` (label values may hold
//!   dots, as rule names do: a value runs to the next `.<next label>.`).

use envoy_types::pb::io::prometheus::client::MetricFamily;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::log::rfc3339;

/// Nodes remembered at most; past it the one seen longest ago is forgotten.
pub const MAX_NODES: usize = 1024;
/// Integrity series kept per node at most (servers × rules × outcomes is bounded by the
/// config, so this is only hit by a misbehaving sender).
pub const MAX_SERIES_PER_NODE: usize = 2048;
/// Label values (node ids, server, rule names) longer than this are refused.
pub const MAX_LABEL_LEN: usize = 256;
/// A node not heard from for this long is forgotten (until then it is shown with `last_seen`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The module's counters this view keeps, with their labels in the module's order
/// (filter/src/stats.rs). `rejected_total` is kept only for `reason = integrity_withheld`.
const FAMILIES: [(&str, &[&str]); 3] = [
    ("integrity_drift_total", &["server", "change"]),
    ("integrity_findings_total", &["server", "rule", "outcome"]),
    ("rejected_total", &["server", "reason"]),
];
const WITHHELD_REASON: &str = "integrity_withheld";

/// One integrity counter of one node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Series {
    /// Drift seen from a server: `changed`, `added` or `removed`.
    Drift { server: String, change: String },
    /// Findings on list items, by rule and outcome.
    Finding {
        server: String,
        rule: String,
        outcome: String,
    },
    /// Calls refused because the item is withheld (hidden or quarantined).
    Withheld { server: String },
}

impl Series {
    fn server(&self) -> &str {
        match self {
            Series::Drift { server, .. } | Series::Finding { server, .. } | Series::Withheld { server } => server,
        }
    }
}

/// The module's stats namespace (filter/src/stats.rs): the segment before each family.
const NAMESPACE: &str = "mcp_policy.";

/// Which of our families `name` is, and for a flat name the rest after it (`server.x...`).
fn family_of(name: &str) -> Option<(usize, Option<&str>)> {
    for (i, (fam, _)) in FAMILIES.iter().enumerate() {
        let whole = format!("{NAMESPACE}{fam}");
        // `mcp_policy` starts the name or a segment of it (Envoy may put its own prefix first).
        let at_segment = |at: usize| at == 0 || name.as_bytes().get(at - 1) == Some(&b'.');
        // Tags as labels: the name ends with the family.
        if name.ends_with(&whole) && at_segment(name.len() - whole.len()) {
            return Some((i, None));
        }
        // Flat: `mcp_policy.<family>.<label>.<value>...`.
        let flat = format!("{whole}.");
        if let Some(at) = name.match_indices(&flat).map(|(at, _)| at).find(|at| at_segment(*at)) {
            return Some((i, Some(&name[at + flat.len()..])));
        }
    }
    None
}

/// How the first integrity stat of these families is named, for the log: its name and label
/// names (`None`: no integrity stat in them).
pub fn integrity_naming(families: &[MetricFamily]) -> Option<String> {
    let f = families
        .iter()
        .find(|f| f.name.as_deref().and_then(family_of).is_some())?;
    let labels: Vec<&str> = f
        .metric
        .first()
        .map(|m| m.label.iter().filter_map(|l| l.name.as_deref()).collect())
        .unwrap_or_default();
    Some(format!(
        "{:?} labels [{}]",
        f.name.as_deref().unwrap_or_default(),
        labels.join(", ")
    ))
}

/// `server.rug.change.changed` with labels `[server, change]` → `["rug", "changed"]`.
fn flat_labels<'a>(rest: &'a str, labels: &[&str]) -> Option<Vec<&'a str>> {
    let mut out = Vec::with_capacity(labels.len());
    let mut s = rest;
    for (i, l) in labels.iter().enumerate() {
        s = s.strip_prefix(l)?.strip_prefix('.')?;
        let value = match labels.get(i + 1) {
            Some(next) => {
                let end = s.find(&format!(".{next}."))?;
                let v = &s[..end];
                s = &s[end + 1..];
                v
            }
            None => std::mem::take(&mut s),
        };
        out.push(value);
    }
    Some(out)
}

fn valid_value(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_LABEL_LEN && !v.chars().any(char::is_control)
}

/// The integrity counters in one message's metric families, with their values. Anything
/// else (Envoy's own stats, malformed names, non-counter types) is skipped.
pub fn integrity_series(families: &[MetricFamily]) -> Vec<(Series, u64)> {
    let mut out = Vec::new();
    for f in families {
        let Some(name) = f.name.as_deref() else { continue };
        let Some((fi, flat)) = family_of(name) else { continue };
        let (fam, keys) = FAMILIES[fi];
        for m in &f.metric {
            // A counter, or (some sinks) an untyped or gauge sample.
            let Some(v) = m
                .counter
                .as_ref()
                .and_then(|c| c.value)
                .or_else(|| m.untyped.as_ref().and_then(|u| u.value))
                .or_else(|| m.gauge.as_ref().and_then(|g| g.value))
            else {
                continue;
            };
            if !v.is_finite() || v < 0.0 {
                continue;
            }
            let values: Vec<&str> = match flat {
                Some(rest) => match flat_labels(rest, keys) {
                    Some(v) => v,
                    None => continue,
                },
                None => {
                    let label = |k: &str| {
                        m.label
                            .iter()
                            .find(|l| l.name.as_deref() == Some(k))
                            .and_then(|l| l.value.as_deref())
                    };
                    match keys.iter().map(|k| label(k)).collect::<Option<Vec<&str>>>() {
                        Some(v) => v,
                        None => continue,
                    }
                }
            };
            if !values.iter().all(|v| valid_value(v)) {
                continue;
            }
            let s = |i: usize| values[i].to_owned();
            let series = match fam {
                "integrity_drift_total" => Series::Drift {
                    server: s(0),
                    change: s(1),
                },
                "integrity_findings_total" => Series::Finding {
                    server: s(0),
                    rule: s(1),
                    outcome: s(2),
                },
                _ if values[1] == WITHHELD_REASON => Series::Withheld { server: s(0) },
                _ => continue,
            };
            // Counters are whole numbers; saturate anything absurd.
            out.push((series, v as u64));
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Node {
    cluster: String,
    first_seen: SystemTime,
    last_seen: SystemTime,
    /// Open metrics streams from this node (0: gone, kept until the TTL).
    streams: u32,
    series: BTreeMap<Series, u64>,
}

/// Every node's last-seen integrity counters.
#[derive(Debug)]
pub struct Fleet {
    nodes: BTreeMap<String, Node>,
    max_nodes: usize,
    max_series: usize,
    ttl: Duration,
    /// Series refused for the per-node cap, and nodes forgotten for the node cap.
    pub series_dropped: u64,
    pub nodes_evicted: u64,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new(MAX_NODES, MAX_SERIES_PER_NODE, DEFAULT_TTL)
    }
}

/// `/status`'s `integrity` entry of one server on one node.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ServerView {
    /// `changed` / `added` / `removed` → count.
    pub drift: BTreeMap<String, u64>,
    /// rule → outcome → count.
    pub findings: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls refused because the item was withheld.
    pub withheld: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct NodeView {
    pub cluster: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Is a metrics stream from it open now?
    pub reporting: bool,
    pub servers: BTreeMap<String, ServerView>,
}

impl Fleet {
    pub fn new(max_nodes: usize, max_series: usize, ttl: Duration) -> Self {
        Fleet {
            nodes: BTreeMap::new(),
            max_nodes,
            max_series,
            ttl,
            series_dropped: 0,
            nodes_evicted: 0,
        }
    }

    /// A metrics stream from `node_id` opened. `false`: the id is unusable (empty, too long).
    pub fn open(&mut self, node_id: &str, cluster: &str, now: SystemTime) -> bool {
        if !valid_value(node_id) {
            return false;
        }
        self.prune(now);
        if !self.nodes.contains_key(node_id) && self.nodes.len() >= self.max_nodes {
            // Forget the node heard from longest ago, preferring ones not reporting.
            let oldest = self
                .nodes
                .iter()
                .min_by_key(|(_, n)| (n.streams > 0, n.last_seen))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.nodes.remove(&k);
                self.nodes_evicted += 1;
            }
        }
        let cluster: String = cluster.chars().take(MAX_LABEL_LEN).collect();
        let n = self.nodes.entry(node_id.to_owned()).or_insert_with(|| Node {
            cluster: cluster.clone(),
            first_seen: now,
            last_seen: now,
            streams: 0,
            series: BTreeMap::new(),
        });
        n.cluster = cluster;
        n.last_seen = now;
        n.streams += 1;
        true
    }

    /// The stream from `node_id` ended.
    pub fn close(&mut self, node_id: &str) {
        if let Some(n) = self.nodes.get_mut(node_id) {
            n.streams = n.streams.saturating_sub(1);
        }
    }

    /// One message's counters: each series takes the value seen last (Envoy sends cumulative
    /// counters); series not in the message keep theirs.
    pub fn record(&mut self, node_id: &str, series: Vec<(Series, u64)>, now: SystemTime) {
        let Some(n) = self.nodes.get_mut(node_id) else { return };
        n.last_seen = now;
        for (s, v) in series {
            let room = n.series.len() < self.max_series;
            match n.series.get_mut(&s) {
                Some(old) => *old = v,
                None if room => {
                    n.series.insert(s, v);
                }
                None => self.series_dropped += 1,
            }
        }
    }

    /// Forget nodes not reporting and not heard from within the TTL.
    pub fn prune(&mut self, now: SystemTime) {
        let ttl = self.ttl;
        self.nodes
            .retain(|_, n| n.streams > 0 || now.duration_since(n.last_seen).map_or(true, |age| age <= ttl));
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// node → server → counts: what `/integrity` and `/status`'s `integrity` show.
    pub fn view(&self) -> BTreeMap<String, NodeView> {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let mut servers: BTreeMap<String, ServerView> = BTreeMap::new();
                for (s, v) in &n.series {
                    let e = servers.entry(s.server().to_owned()).or_default();
                    match s {
                        Series::Drift { change, .. } => {
                            e.drift.insert(change.clone(), *v);
                        }
                        Series::Finding { rule, outcome, .. } => {
                            e.findings.entry(rule.clone()).or_default().insert(outcome.clone(), *v);
                        }
                        Series::Withheld { .. } => e.withheld = *v,
                    }
                }
                (
                    id.clone(),
                    NodeView {
                        cluster: n.cluster.clone(),
                        first_seen: rfc3339(n.first_seen),
                        last_seen: rfc3339(n.last_seen),
                        reporting: n.streams > 0,
                        servers,
                    },
                )
            })
            .collect()
    }

    /// `/metrics` rows: (metric name, labels text, value), the node as a label.
    pub fn metric_rows(&self) -> Vec<(&'static str, String, u64)> {
        let mut rows = Vec::new();
        for (id, n) in &self.nodes {
            let node = escape(id);
            let secs = n
                .last_seen
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            rows.push((
                "mcp_xds_node_stats_last_seen_seconds",
                format!("{{node=\"{node}\"}}"),
                secs,
            ));
            for (s, v) in &n.series {
                let (name, labels) = match s {
                    Series::Drift { server, change } => (
                        "mcp_xds_node_integrity_drift_total",
                        format!(
                            "{{node=\"{node}\",server=\"{}\",change=\"{}\"}}",
                            escape(server),
                            escape(change)
                        ),
                    ),
                    Series::Finding { server, rule, outcome } => (
                        "mcp_xds_node_integrity_findings_total",
                        format!(
                            "{{node=\"{node}\",server=\"{}\",rule=\"{}\",outcome=\"{}\"}}",
                            escape(server),
                            escape(rule),
                            escape(outcome)
                        ),
                    ),
                    Series::Withheld { server } => (
                        "mcp_xds_node_integrity_withheld_total",
                        format!("{{node=\"{node}\",server=\"{}\"}}", escape(server)),
                    ),
                };
                rows.push((name, labels, *v));
            }
        }
        rows
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::io::prometheus::client::{Counter, LabelPair, Metric};

    fn counter(v: f64, labels: &[(&str, &str)]) -> Metric {
        Metric {
            label: labels
                .iter()
                .map(|(k, v)| LabelPair {
                    name: Some((*k).into()),
                    value: Some((*v).into()),
                })
                .collect(),
            counter: Some(Counter {
                value: Some(v),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn family(name: &str, metric: Vec<Metric>) -> MetricFamily {
        MetricFamily {
            name: Some(name.into()),
            metric,
            ..Default::default()
        }
    }

    fn drift(server: &str, change: &str) -> Series {
        Series::Drift {
            server: server.into(),
            change: change.into(),
        }
    }

    #[test]
    fn flat_names_are_parsed_rule_names_with_dots_included() {
        let got = integrity_series(&[
            family(
                "mcp_policy.integrity_drift_total.server.rug.change.changed",
                vec![counter(2.0, &[])],
            ),
            family(
                "mcp_policy.integrity_findings_total.server.hide.rule.directive.markup.outcome.hidden",
                vec![counter(3.0, &[])],
            ),
            family(
                "mcp_policy.rejected_total.server.rug.reason.integrity_withheld",
                vec![counter(4.0, &[])],
            ),
            // Not ours, or not integrity: skipped.
            family(
                "mcp_policy.rejected_total.server.rug.reason.policy_denied",
                vec![counter(9.0, &[])],
            ),
            family("cluster.rug.upstream_rq_total", vec![counter(9.0, &[])]),
            family(
                "other.integrity_drift_total.server.x.change.changed",
                vec![counter(9.0, &[])],
            ),
            family("mcp_policy.integrity_drift_total.server.x", vec![counter(9.0, &[])]),
        ]);
        assert_eq!(
            got,
            vec![
                (drift("rug", "changed"), 2),
                (
                    Series::Finding {
                        server: "hide".into(),
                        rule: "directive.markup".into(),
                        outcome: "hidden".into()
                    },
                    3
                ),
                (Series::Withheld { server: "rug".into() }, 4),
            ]
        );
    }

    #[test]
    fn tags_as_labels_are_parsed_and_incomplete_ones_skipped() {
        let got = integrity_series(&[family(
            "envoy.mcp_policy.integrity_drift_total",
            vec![
                counter(1.0, &[("server", "a"), ("change", "added")]),
                counter(5.0, &[("change", "removed"), ("server", "b")]),
                counter(7.0, &[("server", "c")]),
                counter(f64::NAN, &[("server", "d"), ("change", "added")]),
                counter(1.0, &[("server", "bad\nname"), ("change", "added")]),
            ],
        )]);
        assert_eq!(got, vec![(drift("a", "added"), 1), (drift("b", "removed"), 5)]);
        // A prefix that only ends like ours is not ours.
        let not = integrity_series(&[family(
            "xmcp_policy.integrity_drift_total",
            vec![counter(1.0, &[("server", "a"), ("change", "added")])],
        )]);
        assert!(not.is_empty(), "{not:?}");
    }

    #[test]
    fn each_node_keeps_its_last_values_and_the_view_groups_them_by_server() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut f = Fleet::default();
        assert!(f.open("envoy-a", "gw", t0));
        assert!(f.open("envoy-b", "gw", t0));
        f.record("envoy-a", vec![(drift("rug", "changed"), 1)], t0);
        f.record(
            "envoy-a",
            vec![(drift("rug", "changed"), 3)],
            t0 + Duration::from_secs(5),
        );
        f.record("envoy-b", vec![(Series::Withheld { server: "rug".into() }, 2)], t0);
        f.record("unknown", vec![(drift("rug", "changed"), 1)], t0);
        let v = f.view();
        assert_eq!(v.keys().collect::<Vec<_>>(), vec!["envoy-a", "envoy-b"]);
        assert_eq!(v["envoy-a"].servers["rug"].drift["changed"], 3);
        assert_eq!(v["envoy-a"].last_seen, rfc3339(t0 + Duration::from_secs(5)));
        assert!(v["envoy-a"].reporting);
        assert_eq!(v["envoy-b"].servers["rug"].withheld, 2);
        assert!(v["envoy-b"].servers["rug"].drift.is_empty());
        let rows = f.metric_rows();
        assert!(rows.contains(&(
            "mcp_xds_node_integrity_drift_total",
            "{node=\"envoy-a\",server=\"rug\",change=\"changed\"}".into(),
            3
        )));
    }

    #[test]
    fn memory_is_bounded_by_node_and_series_caps_and_the_ttl() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut f = Fleet::new(2, 2, Duration::from_secs(60));
        assert!(!f.open("", "gw", t0));
        assert!(!f.open(&"x".repeat(MAX_LABEL_LEN + 1), "gw", t0));
        f.open("a", "gw", t0);
        f.close("a");
        f.open("b", "gw", t0 + Duration::from_secs(1));
        // A third node: the one not reporting and seen longest ago goes.
        f.open("c", "gw", t0 + Duration::from_secs(2));
        assert_eq!(f.view().keys().collect::<Vec<_>>(), vec!["b", "c"]);
        assert_eq!(f.nodes_evicted, 1);
        f.record(
            "b",
            vec![
                (drift("s", "added"), 1),
                (drift("s", "changed"), 1),
                (drift("s", "removed"), 1),
            ],
            t0,
        );
        assert_eq!(f.view()["b"].servers["s"].drift.len(), 2);
        assert_eq!(f.series_dropped, 1);
        // Gone (stream closed) and silent past the TTL: forgotten; reporting ones stay.
        f.close("b");
        f.prune(t0 + Duration::from_secs(120));
        assert_eq!(f.view().keys().collect::<Vec<_>>(), vec!["c"]);
    }

    #[test]
    fn label_values_are_escaped_in_metrics() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
