//! SIEM exports with at-least-once delivery.
//!
//! An exporter tails the segments themselves: they are the spool. It reads only records
//! already fsynced (so nothing shipped can vanish in a crash), sends a batch, and only after
//! the sink accepted it advances its cursor (`export-<name>.cursor` in the data directory,
//! fsynced). A crash between sending and saving the cursor re-sends that batch: at least
//! once, duplicates carry the same `seq`/`hash` so a SIEM can drop them. While a sink is
//! down the exporter retries with back-off; records wait in the segments. The spool bound is
//! `--spool-max-records`: when the backlog passes it, `mcp_audit_export_spool_full{sink}`
//! goes to 1 (and the oldest records are *not* dropped — segments are the audit trail; the
//! metric is the alarm that the SIEM copy is falling behind).

pub mod sinks;

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::store::segments;

/// A shipped record: its seq, its hash and the exact line from the segment.
pub struct Item {
    pub seq: u64,
    pub line: String,
}

pub trait Sink: Send {
    fn name(&self) -> &str;
    /// Deliver every item or fail; a failure makes the exporter retry the same batch.
    fn send(&mut self, batch: &[Item]) -> anyhow::Result<()>;
}

#[derive(Default)]
pub struct ExportMetrics {
    pub delivered: AtomicU64,
    pub failures: AtomicU64,
    pub backlog: AtomicU64,
    pub spool_full: AtomicU64,
    pub cursor: AtomicU64,
}

/// Reads records after a cursor, segment by segment, remembering where it is.
pub struct Tail {
    dir: PathBuf,
    segment_no: u64,
    offset: u64,
}

impl Tail {
    pub fn new(dir: &Path) -> Tail {
        Tail {
            dir: dir.to_path_buf(),
            segment_no: 0,
            offset: 0,
        }
    }

    /// Up to `max` records with `cursor < seq <= upto`.
    pub fn read(&mut self, cursor: u64, upto: u64, max: usize) -> std::io::Result<Vec<Item>> {
        let mut out = Vec::new();
        if upto <= cursor {
            return Ok(out);
        }
        let segs = segments(&self.dir)?;
        for (n, path) in segs {
            if n < self.segment_no {
                continue;
            }
            if n > self.segment_no {
                self.segment_no = n;
                self.offset = 0;
            }
            let mut f = File::open(&path)?;
            f.seek(SeekFrom::Start(self.offset))?;
            let mut r = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let got = r.read_line(&mut line)?;
                if got == 0 || !line.ends_with('\n') {
                    break; // end, or a line still being written
                }
                let Ok(l) = crate::chain::decode(line.trim_end_matches('\n')) else {
                    self.offset += got as u64;
                    continue;
                };
                let seq = l.record.seq;
                if seq > upto {
                    return Ok(out);
                }
                self.offset += got as u64;
                if seq > cursor {
                    out.push(Item {
                        seq,
                        line: line.trim_end_matches('\n').to_string(),
                    });
                    if out.len() >= max {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn cursor_path(dir: &Path, sink: &str) -> PathBuf {
    dir.join(format!("export-{sink}.cursor"))
}

pub fn load_cursor(dir: &Path, sink: &str) -> u64 {
    std::fs::read_to_string(cursor_path(dir, sink))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn save_cursor(dir: &Path, sink: &str, seq: u64) -> std::io::Result<()> {
    let tmp = dir.join(format!(".export-{sink}.cursor.tmp"));
    let mut f = File::create(&tmp)?;
    std::io::Write::write_all(&mut f, format!("{seq}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, cursor_path(dir, sink))
}

/// Run one exporter until `stop` is set. `durable` is the highest fsynced seq.
pub fn run(
    dir: PathBuf,
    mut sink: Box<dyn Sink>,
    durable: Arc<AtomicU64>,
    spool_max: u64,
    metrics: Arc<ExportMetrics>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let name = sink.name().to_string();
    let mut cursor = load_cursor(&dir, &name);
    let mut tail = Tail::new(&dir);
    let mut backoff = Duration::from_millis(100);
    metrics.cursor.store(cursor, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        let upto = durable.load(Ordering::Relaxed);
        let backlog = upto.saturating_sub(cursor);
        metrics.backlog.store(backlog, Ordering::Relaxed);
        metrics
            .spool_full
            .store(u64::from(backlog > spool_max), Ordering::Relaxed);
        let batch = match tail.read(cursor, upto, 500) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("mcp-audit: export {name}: reading segments: {e}");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if batch.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        match sink.send(&batch) {
            Ok(()) => {
                cursor = batch.last().map(|i| i.seq).unwrap_or(cursor);
                if let Err(e) = save_cursor(&dir, &name, cursor) {
                    eprintln!("mcp-audit: export {name}: saving cursor: {e}");
                }
                metrics.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                metrics.cursor.store(cursor, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                metrics.failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("mcp-audit: export {name}: {e:#}; retrying in {backoff:?}");
                // Re-read the same records next time.
                tail = Tail::new(&dir);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
