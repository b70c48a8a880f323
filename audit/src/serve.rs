//! The gRPC receiver of Envoy's access-log stream (`envoy.service.accesslog.v3`,
//! `StreamAccessLogs`) and the single writer thread that owns the [`Store`].
//!
//! Each message Envoy sends (a batch of HTTP entries) becomes records sent to the writer over
//! a bounded channel; when the writer falls behind, the handler waits, the gRPC stream's flow
//! control pushes back, and Envoy buffers (see docs/audit.md for what Envoy then drops).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::service::accesslog::v3::access_log_service_server::{
    AccessLogService, AccessLogServiceServer,
};
use envoy_types::pb::envoy::service::accesslog::v3::stream_access_logs_message::LogEntries;
use envoy_types::pb::envoy::service::accesslog::v3::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status, Streaming};

use crate::record::Record;
use crate::store::Store;

/// Counters, exposed on `/metrics` (Prometheus text).
#[derive(Default)]
pub struct Metrics {
    pub entries_received: AtomicU64,
    pub records_written: AtomicU64,
    pub tcp_entries_ignored: AtomicU64,
    pub streams_open: AtomicU64,
    pub write_errors: AtomicU64,
    pub anchor_failures: AtomicU64,
    pub head_seq: AtomicU64,
    pub synced_seq: AtomicU64,
}

impl Metrics {
    pub fn render(&self, extra: &str) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# TYPE mcp_audit_entries_received_total counter\nmcp_audit_entries_received_total {}\n\
             # TYPE mcp_audit_records_written_total counter\nmcp_audit_records_written_total {}\n\
             # TYPE mcp_audit_tcp_entries_ignored_total counter\nmcp_audit_tcp_entries_ignored_total {}\n\
             # TYPE mcp_audit_streams_open gauge\nmcp_audit_streams_open {}\n\
             # TYPE mcp_audit_write_errors_total counter\nmcp_audit_write_errors_total {}\n\
             # TYPE mcp_audit_anchor_failures_total counter\nmcp_audit_anchor_failures_total {}\n\
             # TYPE mcp_audit_head_seq gauge\nmcp_audit_head_seq {}\n\
             # TYPE mcp_audit_synced_seq gauge\nmcp_audit_synced_seq {}\n{extra}",
            g(&self.entries_received),
            g(&self.records_written),
            g(&self.tcp_entries_ignored),
            g(&self.streams_open),
            g(&self.write_errors),
            g(&self.anchor_failures),
            g(&self.head_seq),
            g(&self.synced_seq),
        )
    }
}

pub enum Msg {
    Batch(Vec<Record>, oneshot::Sender<()>),
    Tick,
    Shutdown(oneshot::Sender<()>),
}

/// Run the writer on its own thread: every batch is appended and committed (fsync policy,
/// checkpoints) before the handler reads the next message from Envoy.
pub fn spawn_writer(
    mut store: Store,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Msg>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let publish = |store: &Store| {
            metrics.head_seq.store(store.seq(), Ordering::Relaxed);
            metrics.synced_seq.store(store.synced_seq(), Ordering::Relaxed);
            metrics.anchor_failures.store(store.anchor_failures, Ordering::Relaxed);
        };
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Batch(records, done) => {
                    let n = records.len() as u64;
                    let mut ok = true;
                    for r in records {
                        if let Err(e) = store.append(r) {
                            eprintln!("mcp-audit: write failed: {e}");
                            ok = false;
                            break;
                        }
                    }
                    if let Err(e) = store.commit() {
                        eprintln!("mcp-audit: commit failed: {e}");
                        ok = false;
                    }
                    if ok {
                        metrics.records_written.fetch_add(n, Ordering::Relaxed);
                    } else {
                        metrics.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    publish(&store);
                    let _ = done.send(());
                }
                Msg::Tick => {
                    if let Err(e) = store.maybe_checkpoint(false) {
                        eprintln!("mcp-audit: checkpoint failed: {e}");
                        metrics.write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    publish(&store);
                }
                Msg::Shutdown(done) => {
                    if let Err(e) = store.maybe_checkpoint(true) {
                        eprintln!("mcp-audit: final checkpoint failed: {e}");
                    }
                    publish(&store);
                    let _ = done.send(());
                    return;
                }
            }
        }
    })
}

pub struct Receiver {
    pub tx: mpsc::Sender<Msg>,
    pub metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl AccessLogService for Receiver {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let mut stream = request.into_inner();
        self.metrics.streams_open.fetch_add(1, Ordering::Relaxed);
        let mut node: Option<String> = None;
        let result = async {
            while let Some(msg) = stream.message().await? {
                if let Some(id) = &msg.identifier {
                    node = id.node.as_ref().map(|n| n.id.clone()).filter(|s| !s.is_empty());
                }
                let entries = match msg.log_entries {
                    Some(LogEntries::HttpLogs(h)) => h.log_entry,
                    Some(LogEntries::TcpLogs(t)) => {
                        self.metrics
                            .tcp_entries_ignored
                            .fetch_add(t.log_entry.len() as u64, Ordering::Relaxed);
                        continue;
                    }
                    None => continue,
                };
                self.metrics
                    .entries_received
                    .fetch_add(entries.len() as u64, Ordering::Relaxed);
                let records: Vec<Record> = entries.iter().map(|e| Record::from_entry(e, node.as_deref())).collect();
                let (done_tx, done_rx) = oneshot::channel();
                self.tx
                    .send(Msg::Batch(records, done_tx))
                    .await
                    .map_err(|_| Status::unavailable("audit writer stopped"))?;
                done_rx.await.map_err(|_| Status::unavailable("audit writer stopped"))?;
            }
            Ok::<_, Status>(())
        }
        .await;
        self.metrics.streams_open.fetch_sub(1, Ordering::Relaxed);
        result.map(|()| Response::new(StreamAccessLogsResponse {}))
    }
}

pub fn service(rx: Receiver) -> AccessLogServiceServer<Receiver> {
    AccessLogServiceServer::new(rx).max_decoding_message_size(16 << 20)
}

/// Ticks the writer so time-based checkpoints happen when traffic stops.
pub async fn ticker(tx: mpsc::Sender<Msg>, every: Duration) {
    let mut t = tokio::time::interval(every);
    loop {
        t.tick().await;
        if tx.send(Msg::Tick).await.is_err() {
            return;
        }
    }
}
