//! Watching the source directory: poll, debounce, validate, publish or refuse.
//!
//! Polling (default every 250 ms) rather than inotify: it works the same on every filesystem
//! (bind mounts, NFS, Kubernetes ConfigMap symlink swaps) and costs a few small reads. A new
//! fingerprint is applied only when two consecutive polls agree on it (debounce: an editor or
//! `cp` halfway through a multi-file change is not published). The decision logic,
//! [`Loader::observe`], is pure.

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

/// Poll forever.
pub async fn run(dir: PathBuf, mut loader: Loader, poll: Duration, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let d = dir.clone();
        let read = match tokio::task::spawn_blocking(move || SourceFiles::read_dir(&d)).await {
            Ok(r) => r,
            Err(e) => {
                log::error(&format!("reading the source directory panicked: {e}"));
                continue;
            }
        };
        act(loader.observe(read, true), &shared);
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
        changed
            .files
            .insert("filter.json".into(), b"{\"server\": \"x\"}".to_vec());
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
}
