//! Every way of tampering with a segment, and what `verify` names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_audit::checkpoint::Key;
use mcp_audit::record::Record;
use mcp_audit::store::{segments, Fsync, Options, Store};
use mcp_audit::verify::{verify, Kind, Report};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mcp-audit-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` records over two service runs (two segments), checkpointed every 5, the last
/// checkpoint at the end.
fn build(name: &str, n: u64) -> (PathBuf, PathBuf, Key) {
    let dir = tmp(name);
    let anchor = dir.join("anchor.jsonl");
    let seed = [42u8; 32];
    for run in 0..2 {
        let opts = Options {
            dir: dir.join("log"),
            fsync: Fsync::Batch,
            max_segment_bytes: 1 << 20,
            checkpoint_every: 5,
            checkpoint_interval: Duration::from_secs(3600),
            anchors: vec![anchor.clone()],
        };
        let mut s = Store::open(opts, Key::from_seed(seed)).unwrap();
        let half = n / 2;
        let range = if run == 0 { 0..half } else { half..n };
        for i in range {
            let mut r = Record {
                v: 1,
                time: format!("2026-12-01T10:00:{:02}.000000Z", i % 60),
                trace_id: format!("t{i}"),
                ..Default::default()
            };
            r.principal.subject = Some(if i % 2 == 0 { "alice" } else { "bob" }.into());
            r.target = Some("delete_branch".into());
            s.append(r).unwrap();
            s.commit().unwrap();
        }
        s.maybe_checkpoint(true).unwrap();
    }
    (dir.join("log"), anchor, Key::from_seed(seed))
}

fn check(dir: &Path, anchor: &Path, key: &Key) -> Report {
    verify(
        dir,
        &[dir.join("checkpoints.jsonl"), anchor.to_path_buf()],
        &key.public(),
    )
    .unwrap()
    .0
}

fn lines(dir: &Path, seg: usize) -> (PathBuf, Vec<String>) {
    let p = segments(dir).unwrap()[seg].1.clone();
    let text = std::fs::read_to_string(&p).unwrap();
    (p, text.lines().map(str::to_string).collect())
}

fn write(p: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    std::fs::write(p, s).unwrap();
}

fn first(r: &Report) -> (Kind, u64) {
    let f = r.findings.first().expect("a finding");
    (f.kind, f.seq)
}

#[test]
fn intact_log_verifies() {
    let (dir, anchor, key) = build("intact", 20);
    let r = check(&dir, &anchor, &key);
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!(
        (r.records, r.last_seq, r.anchored_seq, r.unanchored, r.segments),
        (20, 20, 20, 0, 2)
    );
}

#[test]
fn edited_record_is_modified() {
    let (dir, anchor, key) = build("edit", 20);
    let (p, mut l) = lines(&dir, 0);
    assert!(l[3].contains("\"trace_id\":\"t3\""));
    l[3] = l[3].replace("\"trace_id\":\"t3\"", "\"trace_id\":\"t9\"");
    write(&p, &l);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Modified, 4), "{:?}", r.findings);
}

#[test]
fn edited_and_rehashed_record_is_modified() {
    // An attacker who recomputes the edited record's hash still breaks the next link.
    let (dir, anchor, key) = build("rehash", 20);
    let (p, mut l) = lines(&dir, 0);
    let mut rec = mcp_audit::chain::decode(&l[3]).unwrap().record;
    rec.principal.subject = Some("mallory".into());
    l[3] = mcp_audit::chain::encode(&rec).0;
    write(&p, &l);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Modified, 4), "{:?}", r.findings);
}

#[test]
fn rewritten_history_is_caught_by_the_checkpoint() {
    // Rewrite record 4 and re-chain everything after it: the chain is consistent again, only
    // the signed checkpoints disagree.
    let (dir, anchor, key) = build("rechain", 20);
    let (p, l) = lines(&dir, 0);
    let mut prev = mcp_audit::chain::decode(&l[2]).unwrap().hash;
    let mut out = l[..3].to_vec();
    for (i, line) in l[3..].iter().enumerate() {
        let mut rec = mcp_audit::chain::decode(line).unwrap().record;
        if i == 0 {
            rec.principal.subject = Some("mallory".into());
        }
        rec.prev = prev;
        let (text, h) = mcp_audit::chain::encode(&rec);
        out.push(text);
        prev = h;
    }
    write(&p, &out);
    let r = check(&dir, &anchor, &key);
    assert!(!r.ok());
    assert!(r.findings.iter().all(|f| f.kind == Kind::Modified), "{:?}", r.findings);
    assert_eq!(first(&r).0, Kind::Modified);
    // The first checkpoint after the rewrite (seq 5) flags it; seg 2 links break too.
    assert!(
        r.findings.iter().any(|f| f.seq == 5 && f.detail.contains("checkpoint")),
        "{:?}",
        r.findings
    );
}

#[test]
fn deleted_record_is_deleted() {
    let (dir, anchor, key) = build("delete", 20);
    let (p, mut l) = lines(&dir, 0);
    l.remove(6);
    write(&p, &l);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Deleted, 7), "{:?}", r.findings);
}

#[test]
fn inserted_copy_is_inserted() {
    let (dir, anchor, key) = build("insert", 20);
    let (p, mut l) = lines(&dir, 0);
    let copy = l[1].clone();
    l.insert(7, copy);
    write(&p, &l);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Inserted, 2), "{:?}", r.findings);
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    assert_eq!(r.findings[0].line, 8);
}

#[test]
fn forged_record_slotted_in_is_inserted() {
    // A forgery that links correctly to its predecessor and claims the next seq.
    let (dir, anchor, key) = build("forge", 20);
    let (p, mut l) = lines(&dir, 0);
    let before = mcp_audit::chain::decode(&l[4]).unwrap();
    let mut rec = before.record.clone();
    rec.seq += 1;
    rec.prev = before.hash.clone();
    rec.principal.subject = Some("mallory".into());
    l.insert(5, mcp_audit::chain::encode(&rec).0);
    write(&p, &l);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Inserted, 6), "{:?}", r.findings);
    assert_eq!(r.findings[0].line, 6);
}

#[test]
fn swapped_records_are_reordered() {
    let (dir, anchor, key) = build("reorder", 20);
    let (p, mut l) = lines(&dir, 0);
    l.swap(4, 5);
    write(&p, &l);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r).0, Kind::Reordered, "{:?}", r.findings);
    assert!(r.findings.iter().all(|f| f.kind == Kind::Reordered), "{:?}", r.findings);
}

#[test]
fn truncated_tail_is_truncated() {
    let (dir, anchor, key) = build("truncate", 20);
    let (p, l) = lines(&dir, 1);
    write(&p, &l[..6]);
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Truncated, 17), "{:?}", r.findings);
}

#[test]
fn deleted_last_segment_and_local_checkpoints_is_truncated_by_the_anchor() {
    let (dir, anchor, key) = build("trunc-seg", 20);
    std::fs::remove_file(&segments(&dir).unwrap()[1].1).unwrap();
    std::fs::write(dir.join("checkpoints.jsonl"), "").unwrap();
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r), (Kind::Truncated, 11), "{:?}", r.findings);
    // Without the anchor the same cut is invisible: that is why the anchor lives elsewhere.
    let r = verify(&dir, &[dir.join("checkpoints.jsonl")], &key.public()).unwrap().0;
    assert!(r.ok());
}

#[test]
fn forged_checkpoint_is_bad() {
    let (dir, anchor, key) = build("badcp", 10);
    let text = std::fs::read_to_string(&anchor).unwrap();
    let forged = text.lines().last().unwrap().replace("\"seq\":10", "\"seq\":30");
    std::fs::write(&anchor, format!("{text}{forged}\n")).unwrap();
    let r = check(&dir, &anchor, &key);
    assert_eq!(first(&r).0, Kind::BadCheckpoint, "{:?}", r.findings);
    let other = Key::from_seed([1; 32]);
    let r = verify(&dir, std::slice::from_ref(&anchor), &other.public()).unwrap().0;
    assert!(r.findings.iter().any(|f| f.kind == Kind::BadCheckpoint));
}

#[test]
fn restart_after_a_torn_write_continues_the_chain() {
    let (dir, anchor, key) = build("torn", 10);
    let (p, _) = lines(&dir, 1);
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"seq\":11,\"ti").unwrap();
    drop(f);
    let opts = Options {
        dir: dir.clone(),
        fsync: Fsync::Batch,
        max_segment_bytes: 1 << 20,
        checkpoint_every: 1,
        checkpoint_interval: Duration::from_secs(3600),
        anchors: vec![anchor.clone()],
    };
    let mut s = Store::open(opts, Key::from_seed([42; 32])).unwrap();
    assert_eq!(s.seq(), 10);
    s.append(Record {
        v: 1,
        time: "2026-12-01T11:00:00.000000Z".into(),
        trace_id: "x".into(),
        ..Default::default()
    })
    .unwrap();
    s.commit().unwrap();
    let r = check(&dir, &anchor, &key);
    assert!(r.ok(), "{:?}", r.findings);
    assert_eq!((r.last_seq, r.segments), (11, 3));
}
