//! Watching the source directory: notice, debounce, validate, publish or refuse.
//!
//! File-system events (inotify on Linux, through `notify`) wake the watcher as soon as a file
//! changes; polling (default every 250 ms) stays underneath, so filesystems without events
//! (some bind mounts, NFS), a watcher that could not start, or an event lost when the directory
//! itself is swapped are still noticed. Either way a new fingerprint is applied only when two
//! consecutive reads agree on it (debounce: an editor or `cp` halfway through a multi-file
//! change is not published); after an event the second read follows [`QUIET`] later instead of
//! a poll interval later. The decision logic, [`Loader::observe`], is pure.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::log;
use crate::snapshot::World;
use crate::source::{SourceError, SourceErrors, SourceFiles};
use crate::state::Shared;
use crate::version::digest;

/// What to do after one look at the directory.
#[derive(Debug)]
pub enum Outcome {
    /// Same as what is served (or already refused).
    Unchanged,
    /// Changed; wait one more poll for it to settle.
    Settling,
    Apply(Arc<World>, String, LoadTimes),
    Refuse(SourceErrors, String),
    /// The files went back to what is served after a refused change.
    Reverted,
}

#[derive(Debug, Default)]
pub struct Loader {
    applied: Option<String>,
    refused: Option<String>,
    candidate: Option<String>,
}

/// How long the two phases of [`load`] took; logged with each applied change, so the cost of
/// a large world is visible (and `bench/xds` can read it).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimes {
    /// Files → validated model (includes the module's `FilterConfig::from_json`).
    pub validate: Duration,
    /// Model → consistency-checked snapshots.
    pub build: Duration,
}

/// Validate and build: the whole path from bytes to publishable snapshots.
pub fn load(files: &SourceFiles) -> Result<World, SourceErrors> {
    load_timed(files).0
}

/// [`load`], also returning how long each phase took.
pub fn load_timed(files: &SourceFiles) -> (Result<World, SourceErrors>, LoadTimes) {
    let mut times = LoadTimes::default();
    let start = Instant::now();
    let model = files.validate();
    times.validate = start.elapsed();
    let model = match model {
        Ok(m) => m,
        Err(e) => return (Err(e), times),
    };
    let start = Instant::now();
    let world = build(&model);
    times.build = start.elapsed();
    (world, times)
}

fn build(model: &crate::source::Model) -> Result<World, SourceErrors> {
    World::build(model).map_err(|problems| {
        SourceErrors(
            problems
                .into_iter()
                .map(|p| SourceError {
                    file: "(snapshot)".into(),
                    field: String::new(),
                    message: p,
                    line: None,
                    column: None,
                })
                .collect(),
        )
    })
}

impl Loader {
    /// `read` is the result of reading the directory; `settle` false applies at once (startup).
    pub fn observe(&mut self, read: Result<SourceFiles, SourceErrors>, settle: bool) -> Outcome {
        let fp = match &read {
            Ok(files) => files.fingerprint(),
            Err(e) => digest(["unreadable", &e.to_string()]),
        };
        if self.applied.as_deref() == Some(fp.as_str()) {
            self.candidate = None;
            if self.refused.take().is_some() {
                return Outcome::Reverted;
            }
            return Outcome::Unchanged;
        }
        if self.refused.as_deref() == Some(fp.as_str()) {
            self.candidate = None;
            return Outcome::Unchanged;
        }
        if settle && self.candidate.as_deref() != Some(fp.as_str()) {
            self.candidate = Some(fp);
            return Outcome::Settling;
        }
        self.candidate = None;
        let (loaded, times) = match read {
            Ok(files) => load_timed(&files),
            Err(e) => (Err(e), LoadTimes::default()),
        };
        match loaded {
            Ok(world) => {
                self.applied = Some(fp.clone());
                self.refused = None;
                Outcome::Apply(Arc::new(world), fp, times)
            }
            Err(errors) => {
                self.refused = Some(fp.clone());
                Outcome::Refuse(errors, fp)
            }
        }
    }
}

/// Act on an outcome: publish, or log and record the refusal (keeping the last good world).
pub fn act(outcome: Outcome, shared: &Shared) {
    match outcome {
        Outcome::Unchanged | Outcome::Settling => {}
        Outcome::Reverted => {
            log::info("source directory is back to the served configuration");
            shared.mark_valid();
        }
        Outcome::Apply(world, fp, times) => {
            log::info(&format!(
                "config applied: snapshot {} (files {fp}; validated in {} ms, built in {} ms); groups: {}",
                world.version,
                times.validate.as_millis(),
                times.build.as_millis(),
                world
                    .snapshots()
                    .map(|s| format!("{}={}", s.group.as_deref().unwrap_or("(ungrouped)"), s.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for w in &world.warnings {
                log::warn(&format!("config warning (published anyway): {w}"));
            }
            shared.publish(world, fp);
        }
        Outcome::Refuse(errors, fp) => {
            let served = if shared.current_world().is_some() {
                "keeping the last good snapshot"
            } else {
                "nothing is served until the files are valid"
            };
            log::error(&format!("config refused ({served}): {errors}"));
            shared.refuse(errors.0.clone(), errors.to_string(), fp);
        }
    }
}

/// How long the directory must stay free of events before it is read, and how soon a change
/// seen once is read again to confirm it settled.
pub const QUIET: Duration = Duration::from_millis(20);

/// Start file-system events for `dir` (recursively: `servers/`, `filters/`, `jwks/`), each one
/// a wake-up on `tx`. `None` (logged) when the platform or the directory gives none: polling
/// alone then notices changes.
fn events(dir: &std::path::Path, tx: tokio::sync::mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let handler = move |r: notify::Result<notify::Event>| {
        // Access events (reads, our own included) change nothing.
        if r.as_ref()
            .is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_)))
            || r.is_err()
        {
            let _ = tx.send(());
        }
    };
    let started = notify::recommended_watcher(handler)
        .and_then(|mut w| w.watch(dir, notify::RecursiveMode::Recursive).map(|()| w));
    match started {
        Ok(w) => Some(w),
        Err(e) => {
            log::warn(&format!(
                "file-system events unavailable for {} ({e}): changes are noticed by polling only",
                dir.display()
            ));
            None
        }
    }
}

/// Watch forever: wake on a file-system event (after [`QUIET`]) or on the poll tick.
pub async fn run(dir: PathBuf, mut loader: Loader, poll: Duration, shared: Arc<Shared>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = events(&dir, tx);
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut confirm = false;
    loop {
        if confirm {
            // A change was seen once: read again soon to see it settled.
            tokio::time::sleep(QUIET).await;
        } else {
            tokio::select! {
                _ = tick.tick() => {}
                Some(()) = rx.recv(), if watcher.is_some() => {
                    // Let a burst of events (a multi-file copy) end first.
                    while let Ok(Some(())) = tokio::time::timeout(QUIET, rx.recv()).await {}
                }
            }
        }
        let d = dir.clone();
        let read = match tokio::task::spawn_blocking(move || SourceFiles::read_dir(&d)).await {
            Ok(r) => r,
            Err(e) => {
                log::error(&format!("reading the source directory panicked: {e}"));
                confirm = false;
                continue;
            }
        };
        let outcome = loader.observe(read, true);
        confirm = matches!(outcome, Outcome::Settling);
        act(outcome, &shared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::tests::example;

    fn invalid() -> SourceFiles {
        let mut f = example();
        f.files.insert("filter.json".into(), b"{\"nope\": 1}".to_vec());
        f
    }

    #[test]
    fn startup_applies_at_once_and_the_same_files_are_unchanged() {
        let mut l = Loader::default();
        assert!(matches!(l.observe(Ok(example()), false), Outcome::Apply(..)));
        assert!(matches!(l.observe(Ok(example()), true), Outcome::Unchanged));
    }

    #[test]
    fn a_change_is_applied_after_it_settles_for_one_poll() {
        let mut l = Loader::default();
        l.observe(Ok(example()), false);
        let mut changed = example();
        changed.files.insert(
            "filter.json".into(),
            b"{\"server\": \"x\", \"pass_through\": true}".to_vec(),
        );
        assert!(matches!(l.observe(Ok(changed.clone()), true), Outcome::Settling));
        assert!(matches!(l.observe(Ok(changed), true), Outcome::Apply(..)));
    }

    #[test]
    fn an_invalid_change_is_refused_once_and_reverting_it_is_noticed() {
        let mut l = Loader::default();
        l.observe(Ok(example()), false);
        l.observe(Ok(invalid()), true);
        match l.observe(Ok(invalid()), true) {
            Outcome::Refuse(e, _) => assert_eq!(e.0[0].file, "filter.json"),
            o => panic!("{o:?}"),
        }
        assert!(
            matches!(l.observe(Ok(invalid()), true), Outcome::Unchanged),
            "refused once, not every poll"
        );
        assert!(matches!(l.observe(Ok(example()), true), Outcome::Reverted));
    }

    #[test]
    fn unreadable_directory_is_refused_not_applied_as_empty() {
        let mut l = Loader::default();
        l.observe(Ok(example()), false);
        let err = SourceErrors(vec![]);
        l.observe(Err(err.clone()), true);
        assert!(matches!(l.observe(Err(err), true), Outcome::Refuse(..)));
    }

    fn with_filter(bytes: &[u8]) -> SourceFiles {
        let mut f = example();
        f.files.insert("filter.json".into(), bytes.to_vec());
        f
    }

    /// Polls `read` `n` times as the watcher would and says whether any of them applied.
    fn applies_within(l: &mut Loader, read: &Result<SourceFiles, SourceErrors>, n: usize) -> bool {
        (0..n).any(|_| matches!(l.observe(read.clone(), true), Outcome::Apply(..)))
    }

    #[test]
    fn an_empty_filter_json_is_refused_however_long_it_stays_empty() {
        for empty in [&b""[..], b"  \n", b"{}", b"null", b"{\"policy\": null}"] {
            let mut l = Loader::default();
            assert!(matches!(l.observe(Ok(example()), false), Outcome::Apply(..)));
            let read = Ok(with_filter(empty));
            assert!(matches!(l.observe(read.clone(), true), Outcome::Settling));
            match l.observe(read.clone(), true) {
                Outcome::Refuse(e, _) => {
                    assert_eq!(e.0[0].file, "filter.json", "{:?}", String::from_utf8_lossy(empty));
                    assert!(!e.0[0].message.is_empty());
                }
                o => panic!("{:?}: {o:?}", String::from_utf8_lossy(empty)),
            }
            assert!(
                !applies_within(&mut l, &read, 1000),
                "{:?}",
                String::from_utf8_lossy(empty)
            );
        }
    }

    #[test]
    fn every_prefix_of_a_file_being_written_is_refused() {
        let full = br#"{"policy": {"rules": [{"id": "no-delete", "effect": "deny", "principals": [{}], "tools": ["delete_*"]}]}, "identity": {}}"#;
        assert!(load(&with_filter(full)).is_ok());
        for n in 0..full.len() {
            let mut l = Loader::default();
            l.observe(Ok(example()), false);
            let read = Ok(with_filter(&full[..n]));
            assert!(!applies_within(&mut l, &read, 3), "prefix of {n} bytes was applied");
        }
    }

    #[test]
    fn a_filter_json_that_disappears_or_cannot_be_read_keeps_the_last_good_snapshot() {
        let mut l = Loader::default();
        l.observe(Ok(example()), false);
        let mut gone = example();
        gone.files.remove("filter.json");
        let read = Ok(gone);
        l.observe(read.clone(), true);
        match l.observe(read.clone(), true) {
            Outcome::Refuse(e, _) => assert!(e.to_string().contains("filter.json"), "{e}"),
            o => panic!("{o:?}"),
        }
        assert!(!applies_within(&mut l, &read, 100));
        let unreadable: Result<SourceFiles, SourceErrors> = Err(SourceErrors(vec![SourceError {
            file: "filter.json".into(),
            field: String::new(),
            message: "cannot read: Permission denied".into(),
            line: None,
            column: None,
        }]));
        assert!(!applies_within(&mut l, &unreadable, 100));
    }

    #[test]
    fn truncate_then_write_cycles_apply_only_complete_files() {
        let a = br#"{"policy": {"rules": []}, "server": "a"}"#.to_vec();
        let b = br#"{"policy": {"rules": []}, "server": "b"}"#.to_vec();
        let mut l = Loader::default();
        l.observe(Ok(with_filter(&a)), false);
        for (i, next) in [&b, &a, &b].into_iter().enumerate() {
            // The writer truncated: the empty file is seen for one poll or for many.
            for _ in 0..=(i * 3) {
                assert!(!matches!(l.observe(Ok(with_filter(b"")), true), Outcome::Apply(..)));
            }
            let full = Ok(with_filter(next));
            let applied: Vec<_> = (0..2)
                .filter_map(|_| match l.observe(full.clone(), true) {
                    Outcome::Apply(w, ..) => Some(w),
                    _ => None,
                })
                .collect();
            assert_eq!(applied.len(), 1, "the complete file is applied once it settles");
        }
    }

    #[test]
    fn a_policy_warning_is_published_with_the_world() {
        let doc = br#"{"policy": {"rules": [{"id": "a", "effect": "allow", "principals": [{}], "tools": ["x"]}, {"id": "d", "effect": "deny", "principals": [{}], "tools": ["*"]}]}}"#;
        let mut l = Loader::default();
        match l.observe(Ok(with_filter(doc)), false) {
            Outcome::Apply(w, ..) => {
                assert_eq!(w.warnings.len(), 1, "{:?}", w.warnings);
                assert_eq!(w.warnings[0].file, "filter.json");
                assert_eq!(w.warnings[0].field, "policy.rules[0].tools");
                assert_eq!(w.warnings[0].line, Some(1));
            }
            o => panic!("{o:?}"),
        }
    }
}
