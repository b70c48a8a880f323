//! Append-only segments and the writer that chains records into them.
//!
//! Layout of the data directory:
//! - `segment-000001.log`, `segment-000002.log`, ...: one chained record per line
//!   ([`crate::chain`]). A segment is never rewritten; a new one starts at every service start
//!   and when the current one passes `max_segment_bytes`. The chain runs across segments.
//! - `checkpoints.jsonl`: signed checkpoints ([`crate::checkpoint`]), also appended to every
//!   anchor file.
//!
//! Fsync policy (`--fsync`): `batch` (default) fsyncs the segment after every batch Envoy sent
//! and before anything is acknowledged to an exporter; `interval:<ms>` at most that often;
//! `never` leaves it to the OS. Whatever the policy, a checkpoint is only signed over records
//! that have been fsynced, so an anchored record is a durable record.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::chain::{self, GENESIS};
use crate::checkpoint::{self, Checkpoint, Key};
use crate::record::Record;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fsync {
    Batch,
    Interval(Duration),
    Never,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "batch" => Ok(Fsync::Batch),
            "never" => Ok(Fsync::Never),
            _ => s
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse::<u64>().ok())
                .map(|ms| Fsync::Interval(Duration::from_millis(ms)))
                .ok_or_else(|| format!("`{s}`: expected batch, never or interval:<ms>")),
        }
    }
}

pub struct Options {
    pub dir: PathBuf,
    pub fsync: Fsync,
    pub max_segment_bytes: u64,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub anchors: Vec<PathBuf>,
}

pub fn segment_name(n: u64) -> String {
    format!("segment-{n:06}.log")
}

/// Segment files of `dir`, in chain order.
pub fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_prefix("segment-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse().ok())
        {
            out.push((n, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

pub struct Store {
    opts: Options,
    key: Key,
    segment_no: u64,
    segment: String,
    file: File,
    segment_bytes: u64,
    seq: u64,
    head: String,
    synced_seq: u64,
    last_sync: Instant,
    checkpointed_seq: u64,
    last_checkpoint: Instant,
    pub anchor_failures: u64,
}

/// Cut a torn last line (a crash mid-write) off a segment; returns the bytes dropped.
fn repair_tail(path: &Path) -> std::io::Result<u64> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let keep = buf.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0) as u64;
    let dropped = buf.len() as u64 - keep;
    if dropped > 0 {
        f.set_len(keep)?;
        f.sync_all()?;
    }
    Ok(dropped)
}

fn last_line(path: &Path) -> std::io::Result<Option<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    // Records are small; read a generous tail.
    let start = len.saturating_sub(1 << 20);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = String::new();
    f.read_to_string(&mut buf)?;
    Ok(buf.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
}

impl Store {
    pub fn open(opts: Options, key: Key) -> anyhow::Result<Store> {
        std::fs::create_dir_all(&opts.dir)?;
        let segs = segments(&opts.dir)?;
        let (mut seq, mut head) = (0, GENESIS.to_string());
        for (_, path) in segs.iter().rev() {
            let dropped = repair_tail(path)?;
            if dropped > 0 {
                eprintln!(
                    "mcp-audit: {}: dropped a torn last line ({dropped} bytes, never acknowledged)",
                    path.display()
                );
            }
            if let Some(line) = last_line(path)? {
                let l = chain::decode(&line)
                    .map_err(|e| anyhow::anyhow!("{}: last record unreadable: {e}", path.display()))?;
                seq = l.record.seq;
                head = l.hash;
                break;
            }
        }
        let segment_no = segs.last().map(|(n, _)| n + 1).unwrap_or(1);
        let segment = segment_name(segment_no);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(opts.dir.join(&segment))?;
        sync_dir(&opts.dir);
        Ok(Store {
            key,
            segment_no,
            segment,
            file,
            segment_bytes: 0,
            seq,
            head,
            synced_seq: seq,
            last_sync: Instant::now(),
            checkpointed_seq: seq,
            last_checkpoint: Instant::now(),
            anchor_failures: 0,
            opts,
        })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    /// Chain and append one record; returns its seq.
    pub fn append(&mut self, mut r: Record) -> std::io::Result<u64> {
        if self.segment_bytes >= self.opts.max_segment_bytes {
            self.roll()?;
        }
        r.seq = self.seq + 1;
        r.prev = std::mem::take(&mut self.head);
        let (mut line, hash) = chain::encode(&r);
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.segment_bytes += line.len() as u64;
        self.seq = r.seq;
        self.head = hash;
        Ok(self.seq)
    }

    fn roll(&mut self) -> std::io::Result<()> {
        self.sync()?;
        self.segment_no += 1;
        self.segment = segment_name(self.segment_no);
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.opts.dir.join(&self.segment))?;
        self.segment_bytes = 0;
        sync_dir(&self.opts.dir);
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if self.synced_seq != self.seq {
            self.file.sync_data()?;
            self.synced_seq = self.seq;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// End of a batch: fsync per policy, then checkpoint if one is due.
    pub fn commit(&mut self) -> std::io::Result<()> {
        let due = match self.opts.fsync {
            Fsync::Batch => true,
            Fsync::Interval(d) => self.last_sync.elapsed() >= d,
            Fsync::Never => false,
        };
        if due {
            self.sync()?;
        }
        self.maybe_checkpoint(false)
    }

    /// Called periodically even when idle, and with `force` at shutdown.
    pub fn maybe_checkpoint(&mut self, force: bool) -> std::io::Result<()> {
        let pending = self.seq - self.checkpointed_seq;
        if pending == 0 {
            return Ok(());
        }
        if !(force
            || pending >= self.opts.checkpoint_every
            || self.last_checkpoint.elapsed() >= self.opts.checkpoint_interval)
        {
            return Ok(());
        }
        // Only durable records are anchored.
        self.sync()?;
        let cp = Checkpoint::sign(&self.key, self.seq, &self.head, &self.segment);
        checkpoint::append(&self.opts.dir.join("checkpoints.jsonl"), &cp)?;
        for a in &self.opts.anchors {
            if let Err(e) = checkpoint::append(a, &cp) {
                // A later checkpoint supersedes this one; keep serving, count and say it.
                self.anchor_failures += 1;
                eprintln!("mcp-audit: anchor {}: {e}", a.display());
            }
        }
        self.checkpointed_seq = self.seq;
        self.last_checkpoint = Instant::now();
        Ok(())
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
