//! State shared between the config watcher, the ADS streams and the status endpoint: the
//! published [`World`] (a `tokio::sync::watch`), per-stream status, config status and the
//! counters behind `/metrics` (all named here, once).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::watch;

use crate::ads::{Event, TypeStatus};
use crate::fleet::Fleet;
use crate::log::rfc3339;
use crate::snapshot::{short_name, World, TYPES};
use crate::source::SourceError;

/// Counters and gauges exported at `/metrics`. Per-type arrays follow [`TYPES`].
#[derive(Debug, Default)]
pub struct Metrics {
    pub streams_total: AtomicU64,
    pub streams_dropped_total: AtomicU64,
    pub pushes_total: [AtomicU64; 5],
    pub acks_total: [AtomicU64; 5],
    pub nacks_total: [AtomicU64; 5],
    pub stale_nonces_total: AtomicU64,
    pub resyncs_total: AtomicU64,
    pub config_reloads_total: AtomicU64,
    pub config_errors_total: AtomicU64,
}

fn type_index(type_url: &str) -> Option<usize> {
    TYPES.iter().position(|t| *t == type_url)
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamStatus {
    pub stream: u64,
    pub node_id: String,
    pub cluster: String,
    pub group: Option<String>,
    pub peer: Option<String>,
    pub connected_since: String,
    pub snapshot_version: Option<String>,
    pub types: BTreeMap<&'static str, TypeStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigError {
    pub at: String,
    pub fingerprint: String,
    pub errors: Vec<SourceError>,
    /// The same as one human-readable text.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ConfigStatus {
    pub dir: String,
    /// Whether the files as they are now are the ones being served.
    pub valid: bool,
    /// Fingerprint of the files behind the served snapshot.
    pub applied_fingerprint: Option<String>,
    pub applied_at: Option<String>,
    /// The most recent refused change (kept after a fix, with `valid` telling if it is current).
    pub last_error: Option<ConfigError>,
}

#[derive(Debug, Default)]
struct Inner {
    config: ConfigStatus,
    streams: BTreeMap<u64, StreamStatus>,
}

#[derive(Debug)]
pub struct Shared {
    world: watch::Sender<Option<Arc<World>>>,
    inner: Mutex<Inner>,
    pub metrics: Metrics,
    /// Per node integrity counters streamed by the Envoys (MetricsService).
    fleet: Mutex<Fleet>,
    next_stream: AtomicU64,
    pub resend_interval_ms: u64,
}

impl Shared {
    pub fn new(dir: String, resend_interval_ms: u64) -> Self {
        let (world, _) = watch::channel(None);
        Self {
            world,
            inner: Mutex::new(Inner {
                config: ConfigStatus {
                    dir,
                    ..Default::default()
                },
                streams: BTreeMap::new(),
            }),
            metrics: Metrics::default(),
            fleet: Mutex::new(Fleet::default()),
            next_stream: AtomicU64::new(1),
            resend_interval_ms,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The per-node integrity view, locked (short sections only: no await while held).
    pub fn fleet(&self) -> MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `GET /integrity`: node → server → drift, findings and withheld counts, with when each
    /// node was last heard from.
    pub fn integrity_json(&self) -> serde_json::Value {
        let mut fleet = self.fleet();
        fleet.prune(SystemTime::now());
        serde_json::to_value(fleet.view()).unwrap_or_default()
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<World>>> {
        self.world.subscribe()
    }

    pub fn current_world(&self) -> Option<Arc<World>> {
        self.world.borrow().clone()
    }

    /// Publish a new world (every stream wakes up and pushes what changed).
    pub fn publish(&self, world: Arc<World>, fingerprint: String) {
        self.metrics.config_reloads_total.fetch_add(1, Relaxed);
        {
            let mut inner = self.lock();
            inner.config.valid = true;
            inner.config.applied_fingerprint = Some(fingerprint);
            inner.config.applied_at = Some(rfc3339(SystemTime::now()));
        }
        self.world.send_replace(Some(world));
    }

    /// The files changed but are invalid: keep serving the last good world.
    pub fn refuse(&self, errors: Vec<SourceError>, message: String, fingerprint: String) {
        self.metrics.config_errors_total.fetch_add(1, Relaxed);
        let mut inner = self.lock();
        inner.config.valid = false;
        inner.config.last_error = Some(ConfigError {
            at: rfc3339(SystemTime::now()),
            fingerprint,
            errors,
            message,
        });
    }

    /// The files went back to the ones being served (an invalid edit was reverted).
    pub fn mark_valid(&self) {
        self.lock().config.valid = true;
    }

    pub fn new_stream_id(&self) -> u64 {
        self.metrics.streams_total.fetch_add(1, Relaxed);
        self.next_stream.fetch_add(1, Relaxed)
    }

    pub fn update_stream(&self, status: StreamStatus) {
        self.lock().streams.insert(status.stream, status);
    }

    pub fn remove_stream(&self, id: u64) {
        self.lock().streams.remove(&id);
    }

    pub fn count(&self, events: &[Event]) {
        let m = &self.metrics;
        for e in events {
            let bump = |arr: &[AtomicU64; 5], t: &str| {
                if let Some(i) = type_index(t) {
                    arr[i].fetch_add(1, Relaxed);
                }
            };
            match e {
                Event::Sent { type_url, .. } => bump(&m.pushes_total, type_url),
                Event::Ack { type_url, .. } => bump(&m.acks_total, type_url),
                Event::Nack { type_url, .. } => bump(&m.nacks_total, type_url),
                Event::StaleNonce { .. } => {
                    m.stale_nonces_total.fetch_add(1, Relaxed);
                }
                Event::Connected { .. } | Event::UnknownType { .. } => {}
            }
        }
    }

    /// `GET /` and `/status`: everything an operator asks first.
    pub fn status_json(&self) -> serde_json::Value {
        let world = self.current_world();
        let inner = self.lock();
        let snapshots: BTreeMap<String, String> = world
            .iter()
            .flat_map(|w| w.snapshots())
            .map(|s| {
                (
                    s.group.clone().unwrap_or_else(|| "(ungrouped)".into()),
                    s.version.clone(),
                )
            })
            .collect();
        serde_json::json!({
            "snapshot": {
                "version": world.as_ref().map(|w| w.version.clone()),
                "groups": snapshots,
            },
            "config": inner.config,
            "warnings": world.as_ref().map(|w| w.warnings.clone()).unwrap_or_default(),
            "resend_interval_ms": self.resend_interval_ms,
            "connected": inner.streams.len(),
            "nodes": inner.streams.values().collect::<Vec<_>>(),
            "pins": world.as_ref().map(|w| serde_json::to_value(&w.pins).unwrap_or_default()),
            "integrity": self.integrity_json(),
        })
    }

    /// `GET /metrics`, Prometheus text format 0.0.4.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        let world = self.current_world();
        let inner = self.lock();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, u64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in rows {
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let plain = |v: u64| vec![(String::new(), v)];
        let per_type = |arr: &[AtomicU64; 5]| {
            TYPES
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("{{type=\"{}\"}}", short_name(t)), arr[i].load(Relaxed)))
                .collect::<Vec<_>>()
        };
        metric(
            "mcp_xds_connected_nodes",
            "gauge",
            "ADS streams open now.",
            plain(inner.streams.len() as u64),
        );
        metric(
            "mcp_xds_streams_total",
            "counter",
            "ADS streams accepted.",
            plain(m.streams_total.load(Relaxed)),
        );
        metric(
            "mcp_xds_streams_dropped_total",
            "counter",
            "ADS streams closed for a protocol violation or an undecodable message.",
            plain(m.streams_dropped_total.load(Relaxed)),
        );
        metric(
            "mcp_xds_pushes_total",
            "counter",
            "DiscoveryResponses sent.",
            per_type(&m.pushes_total),
        );
        metric(
            "mcp_xds_acks_total",
            "counter",
            "ACKs received.",
            per_type(&m.acks_total),
        );
        metric(
            "mcp_xds_nacks_total",
            "counter",
            "NACKs received.",
            per_type(&m.nacks_total),
        );
        metric(
            "mcp_xds_stale_nonces_total",
            "counter",
            "Requests ignored for a stale nonce.",
            plain(m.stale_nonces_total.load(Relaxed)),
        );
        metric(
            "mcp_xds_resyncs_total",
            "counter",
            "Periodic full re-sends run.",
            plain(m.resyncs_total.load(Relaxed)),
        );
        metric(
            "mcp_xds_config_reloads_total",
            "counter",
            "Valid source changes published (including the first load).",
            plain(m.config_reloads_total.load(Relaxed)),
        );
        metric(
            "mcp_xds_config_errors_total",
            "counter",
            "Source changes refused as invalid.",
            plain(m.config_errors_total.load(Relaxed)),
        );
        metric(
            "mcp_xds_config_valid",
            "gauge",
            "1 when the files on disk are the ones being served.",
            plain(u64::from(inner.config.valid)),
        );
        {
            let fleet = self.fleet();
            metric(
                "mcp_xds_metrics_nodes",
                "gauge",
                "Envoys whose streamed stats are remembered (integrity per node).",
                plain(fleet.len() as u64),
            );
            metric(
                "mcp_xds_metrics_series_dropped_total",
                "counter",
                "Integrity series refused for the per-node cap.",
                plain(fleet.series_dropped),
            );
            let mut by_name: BTreeMap<&'static str, Vec<(String, u64)>> = BTreeMap::new();
            for (name, labels, v) in fleet.metric_rows() {
                by_name.entry(name).or_default().push((labels, v));
            }
            for (name, help) in [
                (
                    "mcp_xds_node_stats_last_seen_seconds",
                    "When each Envoy last streamed its stats (Unix seconds).",
                ),
                (
                    "mcp_xds_node_integrity_drift_total",
                    "Drift from the pins each Envoy saw, by server and change (the module's integrity_drift_total).",
                ),
                (
                    "mcp_xds_node_integrity_findings_total",
                    "Integrity findings each Envoy saw, by server, rule and outcome.",
                ),
                (
                    "mcp_xds_node_integrity_withheld_total",
                    "Calls each Envoy refused to withheld items, by server.",
                ),
            ] {
                if let Some(rows) = by_name.remove(name) {
                    let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
                    metric(name, kind, help, rows);
                }
            }
        }
        if let Some(w) = world {
            metric(
                "mcp_xds_snapshot_info",
                "gauge",
                "The served snapshot version, as a label.",
                vec![(format!("{{version=\"{}\"}}", w.version), 1)],
            );
        }
        out
    }
}
