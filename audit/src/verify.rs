//! `mcp-audit verify`: read every segment and checkpoint, report what was modified,
//! deleted, inserted, reordered or truncated, first bad record first.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chain::{self, Line, GENESIS};
use crate::checkpoint::{self, Checkpoint, PublicKey};

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A record's bytes no longer hash to its stored hash, or it was rewritten with a fresh
    /// hash and the chain (or a checkpoint) no longer agrees.
    Modified,
    /// Records missing from the middle of the chain.
    Deleted,
    /// A record that is not part of the chain (a copy, or a forgery claiming a taken seq).
    Inserted,
    /// Records present but out of order.
    Reordered,
    /// Records a signed checkpoint covers are missing from the end.
    Truncated,
    /// A line that is not a chained record at all.
    Unreadable,
    /// A checkpoint that does not verify under the public key.
    BadCheckpoint,
}

#[derive(Serialize, Debug, Clone)]
pub struct Finding {
    pub kind: Kind,
    /// The first record concerned (for `deleted`/`truncated`: the first missing one).
    pub seq: u64,
    pub segment: String,
    pub line: usize,
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        write!(
            f,
            "{kind}: seq {} ({}:{}): {}",
            self.seq, self.segment, self.line, self.detail
        )
    }
}

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub records: u64,
    pub segments: usize,
    pub checkpoints: usize,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Highest seq covered by a valid checkpoint.
    pub anchored_seq: u64,
    /// Records after the last checkpoint: intact as far as the chain shows, but a writer of
    /// the log could have rewritten or cut them undetectably.
    pub unanchored: u64,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Read all records of `dir` in file order; unreadable lines become findings.
pub fn read_records(dir: &Path, findings: &mut Vec<Finding>) -> anyhow::Result<(Vec<Located>, usize)> {
    let segs = crate::store::segments(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for (_, path) in &segs {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let f = std::fs::File::open(path)?;
        for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            match chain::decode(&line) {
                Ok(l) => out.push(Located {
                    line: l,
                    segment: name.clone(),
                    lineno: i + 1,
                }),
                Err(e) => findings.push(Finding {
                    kind: Kind::Unreadable,
                    seq: 0,
                    segment: name.clone(),
                    line: i + 1,
                    detail: e.to_string(),
                }),
            }
        }
    }
    Ok((out, segs.len()))
}

/// A record with where it was read.
pub struct Located {
    pub line: Line,
    pub segment: String,
    pub lineno: usize,
}

pub fn verify(dir: &Path, checkpoint_files: &[PathBuf], public: &PublicKey) -> anyhow::Result<(Report, Vec<Located>)> {
    let mut report = Report::default();
    let (recs, nsegs) = read_records(dir, &mut report.findings)?;
    report.segments = nsegs;
    report.records = recs.len() as u64;
    check_chain(&recs, &mut report.findings);
    report.first_seq = recs.iter().map(|r| r.line.record.seq).min().unwrap_or(0);
    report.last_seq = recs.iter().map(|r| r.line.record.seq).max().unwrap_or(0);

    // Checkpoints: every file given (the local one and the anchors), deduplicated.
    let mut cps: Vec<Checkpoint> = Vec::new();
    for f in checkpoint_files {
        for c in checkpoint::read_all(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))? {
            match c {
                Ok(c) if !cps.contains(&c) => cps.push(c),
                Ok(_) => {}
                Err(e) => report.findings.push(Finding {
                    kind: Kind::BadCheckpoint,
                    seq: 0,
                    segment: f.display().to_string(),
                    line: 0,
                    detail: e,
                }),
            }
        }
    }
    report.checkpoints = cps.len();
    let by_seq: HashMap<u64, &Located> = recs
        .iter()
        .filter(|r| r.line.intact)
        .map(|r| (r.line.record.seq, r))
        .collect();
    for cp in &cps {
        if !cp.verify(public) {
            report.findings.push(Finding {
                kind: Kind::BadCheckpoint,
                seq: cp.seq,
                segment: cp.segment.clone(),
                line: 0,
                detail: format!(
                    "signature does not verify under key {} (checkpoint says key {})",
                    public.id, cp.key_id
                ),
            });
            continue;
        }
        report.anchored_seq = report.anchored_seq.max(cp.seq);
        match by_seq.get(&cp.seq) {
            Some(r) if r.line.hash == cp.hash => {}
            Some(r) => report.findings.push(Finding {
                kind: Kind::Modified,
                seq: cp.seq,
                segment: r.segment.clone(),
                line: r.lineno,
                detail: format!(
                    "signed checkpoint of {} says hash {}, the log has {}: history up to here was rewritten",
                    cp.time,
                    short(&cp.hash),
                    short(&r.line.hash)
                ),
            }),
            None if cp.seq > report.last_seq => report.findings.push(Finding {
                kind: Kind::Truncated,
                seq: report.last_seq + 1,
                segment: cp.segment.clone(),
                line: 0,
                detail: format!(
                    "a checkpoint signed at {} covers up to seq {}; the log ends at seq {}",
                    cp.time, cp.seq, report.last_seq
                ),
            }),
            None => {} // deleted or unreadable: already reported by the chain walk
        }
    }
    report.unanchored = report.last_seq.saturating_sub(report.anchored_seq);
    // Deduplicate (a checkpoint can confirm a chain finding) and order by seq.
    let mut seen = HashSet::new();
    report
        .findings
        .retain(|f| seen.insert((f.kind, f.seq, f.segment.clone(), f.line)));
    report.findings.sort_by_key(|f| (f.seq, f.line));
    Ok((report, recs))
}

fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn find(kind: Kind, r: &Located, detail: String) -> Finding {
    Finding {
        kind,
        seq: r.line.record.seq,
        segment: r.segment.clone(),
        line: r.lineno,
        detail,
    }
}

/// Walk the records in file order against the chain.
fn check_chain(recs: &[Located], out: &mut Vec<Finding>) {
    // Every hash some record names as its predecessor: a record nobody links to (and that is
    // not the last) is not part of the chain.
    let referenced: HashSet<&str> = recs.iter().map(|r| r.line.record.prev.as_str()).collect();
    let hash_of_seq: HashMap<u64, Vec<&str>> = recs.iter().fold(HashMap::new(), |mut m, r| {
        m.entry(r.line.record.seq).or_default().push(r.line.hash.as_str());
        m
    });
    let mut last_seq = recs.first().map(|r| r.line.record.seq.saturating_sub(1)).unwrap_or(0);
    let mut last_hash: Option<&str> = if last_seq == 0 { Some(GENESIS) } else { None };
    let mut seen_seq: HashMap<u64, usize> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        let rec = &r.line.record;
        let is_last = i + 1 == recs.len();
        if !r.line.intact {
            out.push(find(
                Kind::Modified,
                r,
                "the record's bytes do not match its hash (edited)".into(),
            ));
            last_seq = rec.seq;
            last_hash = Some(r.line.hash.as_str());
            seen_seq.insert(rec.seq, i);
            continue;
        }
        if let Some(&j) = seen_seq.get(&rec.seq) {
            let earlier = &recs[j];
            if earlier.line.hash == r.line.hash {
                out.push(find(
                    Kind::Inserted,
                    r,
                    "a second copy of a record already in the log".into(),
                ));
                continue;
            }
            // Two different records claim one seq: the one the chain continues from (a later
            // record names it as prev) is genuine, the other was slotted in.
            let earlier_linked = referenced.contains(earlier.line.hash.as_str());
            let this_linked = referenced.contains(r.line.hash.as_str()) || is_last;
            if !earlier_linked && this_linked {
                out.push(find(
                    Kind::Inserted,
                    earlier,
                    "a record claiming a seq the chain has, not linked to by the record after it".into(),
                ));
                seen_seq.insert(rec.seq, i);
                last_seq = rec.seq;
                last_hash = Some(r.line.hash.as_str());
                continue;
            }
            out.push(find(
                Kind::Inserted,
                r,
                "a record claiming a seq the chain already has".into(),
            ));
            continue;
        }
        if rec.seq < last_seq {
            out.push(find(
                Kind::Reordered,
                r,
                format!("seq {} comes after seq {}", rec.seq, last_seq),
            ));
            seen_seq.insert(rec.seq, i);
            continue;
        }
        if rec.seq > last_seq + 1 {
            let missing = last_seq + 1;
            if recs[i + 1..].iter().any(|x| x.line.record.seq == missing) {
                out.push(find(
                    Kind::Reordered,
                    r,
                    format!("seq {} comes before seq {missing}", rec.seq),
                ));
            } else {
                let mut f = find(
                    Kind::Deleted,
                    r,
                    format!("seq {missing}..={} missing before this record", rec.seq - 1),
                );
                f.seq = missing;
                out.push(f);
            }
        } else if let Some(h) = last_hash {
            if rec.prev != h {
                // Consecutive seq, broken link: either this record is a forgery slotted in
                // (a later record claims the same seq), or the previous one was rewritten.
                let dup_later = recs[i + 1..].iter().any(|x| x.line.record.seq == rec.seq);
                let unreferenced = !is_last && !referenced.contains(r.line.hash.as_str());
                if dup_later || (unreferenced && hash_of_seq.get(&rec.seq).is_some_and(|v| v.len() > 1)) {
                    out.push(find(
                        Kind::Inserted,
                        r,
                        "does not link to the record before it and a later record claims its seq".into(),
                    ));
                    continue;
                }
                let mut f = find(
                    Kind::Modified,
                    r,
                    format!("prev does not match the hash of seq {last_seq}: seq {last_seq} was rewritten"),
                );
                f.seq = last_seq;
                out.push(f);
            }
        }
        seen_seq.insert(rec.seq, i);
        last_seq = rec.seq;
        last_hash = Some(r.line.hash.as_str());
    }
}
