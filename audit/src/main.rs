//! `mcp-audit`: serve (receive Envoy's access-log stream, chain, store, checkpoint, export),
//! verify, query, keygen. See docs/audit.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mcp_audit::checkpoint::{Key, PublicKey};
use mcp_audit::export::{self, sinks, ExportMetrics, Sink};
use mcp_audit::query::Filter;
use mcp_audit::serve::{self, Metrics, Msg, Receiver};
use mcp_audit::store::{Fsync, Options, Store};
use mcp_audit::verify;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(
    name = "mcp-audit",
    version,
    about = "Tamper-evident audit trail for MCP policy for Envoy"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create an Ed25519 signing key (mode 0600) and its public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// Where the public key goes (default: <out>.pub).
        #[arg(long)]
        public: Option<PathBuf>,
    },
    /// Receive Envoy's gRPC access-log stream and keep the audit trail.
    Serve {
        /// gRPC listen address (port 0: the OS picks; the bound address is printed).
        #[arg(long, default_value = "127.0.0.1:9901")]
        listen: String,
        /// Data directory: segments, checkpoints.jsonl, export cursors.
        #[arg(long)]
        dir: PathBuf,
        /// Ed25519 signing key file (from `mcp-audit keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Also append every checkpoint here (a file on another volume/host); repeatable.
        #[arg(long)]
        anchor: Vec<PathBuf>,
        /// batch (fsync after every batch Envoy sends), interval:<ms>, or never.
        #[arg(long, default_value = "batch")]
        fsync: Fsync,
        /// Sign a checkpoint after this many records...
        #[arg(long, default_value_t = 1000)]
        checkpoint_every: u64,
        /// ...or after this long with unanchored records.
        #[arg(long, default_value_t = 1000)]
        checkpoint_interval_ms: u64,
        #[arg(long, default_value_t = 64 << 20)]
        max_segment_bytes: u64,
        /// Prometheus metrics over HTTP (GET anything).
        #[arg(long)]
        metrics: Option<String>,
        /// SIEM sink, repeatable: syslog=tcp://host:port, hec=http://host:port/services/collector/event,
        /// otlp=http://host:port/v1/logs.
        #[arg(long)]
        export: Vec<String>,
        /// HEC token (or $MCP_AUDIT_HEC_TOKEN).
        #[arg(long, env = "MCP_AUDIT_HEC_TOKEN", default_value = "")]
        hec_token: String,
        /// Backlog (records not yet delivered) above which a sink's spool counts as full.
        #[arg(long, default_value_t = 1_000_000)]
        spool_max_records: u64,
    },
    /// Check segments and checkpoints; exit 0 intact, 1 tampered, 2 could not check.
    Verify {
        #[arg(long)]
        dir: PathBuf,
        /// Public key (from `mcp-audit keygen`).
        #[arg(long)]
        public_key: PathBuf,
        /// Checkpoint files: the local one (default <dir>/checkpoints.jsonl) and anchors.
        #[arg(long)]
        checkpoints: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Records matching every given filter, as JSON lines; the log is verified first.
    Query {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        public_key: PathBuf,
        #[arg(long)]
        checkpoints: Vec<PathBuf>,
        #[arg(long)]
        principal: Option<String>,
        /// Tool (or other target: prompt, resource) name.
        #[arg(long)]
        tool: Option<String>,
        /// Server, backend or virtual server name.
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        decision: Option<String>,
        #[arg(long)]
        method: Option<String>,
        #[arg(long)]
        trace_id: Option<String>,
        /// From (inclusive), UTC: 2026-12-01 or 2026-12-01T10:00:00Z.
        #[arg(long)]
        since: Option<String>,
        /// Until (exclusive), UTC.
        #[arg(long)]
        until: Option<String>,
        /// Answer even when verification finds tampering (findings go to stderr).
        #[arg(long)]
        unverified: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcp-audit: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn checkpoint_files(dir: &std::path::Path, given: Vec<PathBuf>) -> Vec<PathBuf> {
    if given.is_empty() {
        vec![dir.join("checkpoints.jsonl")]
    } else {
        given
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Keygen { out, public } => {
            let public = public.unwrap_or_else(|| PathBuf::from(format!("{}.pub", out.display())));
            let key = Key::generate()?;
            key.write(&out, &public)?;
            println!(
                "key id {} -> {} (secret), {} (public)",
                key.id,
                out.display(),
                public.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Verify {
            dir,
            public_key,
            checkpoints,
            json,
        } => {
            let public = PublicKey::load(&public_key)?;
            let (report, _) = verify::verify(&dir, &checkpoint_files(&dir, checkpoints), &public)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for f in &report.findings {
                    println!("{f}");
                }
                println!(
                    "{}: {} records (seq {}..={}) in {} segments, {} checkpoints, anchored to seq {}, {} unanchored",
                    if report.ok() { "OK" } else { "TAMPERED" },
                    report.records,
                    report.first_seq,
                    report.last_seq,
                    report.segments,
                    report.checkpoints,
                    report.anchored_seq,
                    report.unanchored
                );
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Query {
            dir,
            public_key,
            checkpoints,
            principal,
            tool,
            server,
            decision,
            method,
            trace_id,
            since,
            until,
            unverified,
        } => {
            let public = PublicKey::load(&public_key)?;
            let since = since
                .map(|s| mcp_audit::time::parse_bound(&s))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let until = until
                .map(|s| mcp_audit::time::parse_bound(&s))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let filter = Filter {
                principal,
                tool,
                server,
                decision,
                method,
                trace_id,
                since,
                until,
            };
            let (report, recs) = verify::verify(&dir, &checkpoint_files(&dir, checkpoints), &public)?;
            if !report.ok() {
                for f in &report.findings {
                    eprintln!("{f}");
                }
                if !unverified {
                    eprintln!("mcp-audit: the log does not verify; not answering (--unverified to answer anyway)");
                    return Ok(ExitCode::from(1));
                }
            }
            let mut n = 0;
            for r in recs.iter().filter(|r| filter.matches(&r.line.record)) {
                n += 1;
                let mut v = serde_json::to_value(&r.line.record)?;
                v["hash"] = r.line.hash.clone().into();
                println!("{v}");
            }
            eprintln!(
                "{n} records; log verified to seq {} ({} unanchored)",
                report.anchored_seq, report.unanchored
            );
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Serve {
            listen,
            dir,
            key,
            anchor,
            fsync,
            checkpoint_every,
            checkpoint_interval_ms,
            max_segment_bytes,
            metrics,
            export,
            hec_token,
            spool_max_records,
        } => {
            let key = Key::load(&key)?;
            let mut sinks_: Vec<Box<dyn Sink>> = Vec::new();
            for e in &export {
                let (kind, url) = e
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--export `{e}`: expected kind=url"))?;
                sinks_.push(match kind {
                    "syslog" => Box::new(sinks::Syslog::new(url)?),
                    "hec" => Box::new(sinks::Hec::new(url, hec_token.clone())?),
                    "otlp" => Box::new(sinks::Otlp::new(url)?),
                    _ => anyhow::bail!("--export `{e}`: kind must be syslog, hec or otlp"),
                });
            }
            let interval = Duration::from_millis(checkpoint_interval_ms.max(10));
            let store = Store::open(
                Options {
                    dir: dir.clone(),
                    fsync,
                    max_segment_bytes,
                    checkpoint_every: checkpoint_every.max(1),
                    checkpoint_interval: interval,
                    anchors: anchor,
                },
                key,
            )?;
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(serve_main(
                listen,
                dir,
                store,
                metrics,
                sinks_,
                spool_max_records,
                interval,
            ))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve_main(
    listen: String,
    dir: PathBuf,
    store: Store,
    metrics_addr: Option<String>,
    sinks_: Vec<Box<dyn Sink>>,
    spool_max: u64,
    interval: Duration,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    metrics.head_seq.store(store.seq(), Ordering::Relaxed);
    metrics.synced_seq.store(store.synced_seq(), Ordering::Relaxed);
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(64);
    let writer = serve::spawn_writer(store, metrics.clone(), rx);
    tokio::spawn(serve::ticker(tx.clone(), interval / 2));

    // Exporters: each on its own thread, fed by the fsynced head.
    let stop = Arc::new(AtomicBool::new(false));
    let durable = Arc::new(AtomicU64::new(metrics.synced_seq.load(Ordering::Relaxed)));
    let mut exports = Vec::new();
    for sink in sinks_ {
        let m = Arc::new(ExportMetrics::default());
        exports.push((sink.name().to_string(), m.clone()));
        let (dir, durable, stop) = (dir.clone(), durable.clone(), stop.clone());
        std::thread::spawn(move || export::run(dir, sink, durable, spool_max, m, stop));
    }
    {
        let (metrics, durable) = (metrics.clone(), durable.clone());
        tokio::spawn(async move {
            loop {
                durable.store(metrics.synced_seq.load(Ordering::Relaxed), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    let exports = Arc::new(exports);

    if let Some(addr) = metrics_addr {
        let l = tokio::net::TcpListener::bind(&addr).await?;
        println!("mcp-audit: metrics on {}", l.local_addr()?);
        let (metrics, exports) = (metrics.clone(), exports.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut extra = String::new();
                for (name, m) in exports.iter() {
                    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
                    extra.push_str(&format!(
                        "mcp_audit_export_delivered_total{{sink=\"{name}\"}} {}\nmcp_audit_export_failures_total{{sink=\"{name}\"}} {}\n\
                         mcp_audit_export_backlog_records{{sink=\"{name}\"}} {}\nmcp_audit_export_spool_full{{sink=\"{name}\"}} {}\n\
                         mcp_audit_export_cursor{{sink=\"{name}\"}} {}\n",
                        g(&m.delivered), g(&m.failures), g(&m.backlog), g(&m.spool_full), g(&m.cursor)
                    ));
                }
                let body = metrics.render(&extra);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = s.write_all(resp.as_bytes()).await;
                });
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("mcp-audit: listening on {}", listener.local_addr()?);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    tonic::transport::Server::builder()
        .add_service(serve::service(Receiver {
            tx: tx.clone(),
            metrics: metrics.clone(),
        }))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(Msg::Shutdown(done_tx)).await;
    let _ = done_rx.await;
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    println!("mcp-audit: stopped at seq {}", metrics.head_seq.load(Ordering::Relaxed));
    Ok(())
}
