//! The per-worker memo of what the scanner and the pins say about one item's exact bytes.
//!
//! A server serves the same definitions to every session, so the same item text passes a
//! worker again and again. What the scanner finds in it and its canonical pin depend on those
//! bytes alone, never on the config, so they are kept per worker (a `thread_local` in the
//! filter; no lock) keyed by the bytes themselves: a hit is one hash and one byte compare, a
//! changed byte is a miss. What *does* depend on the config (exceptions, thresholds, actions,
//! pins, name collisions within the list) is decided per list from these facts, which is
//! cheap.
//!
//! Bounded: at most [`CACHE_BYTES`] of item text per worker (items above [`MAX_ITEM_BYTES`]
//! are scanned every time); when full it is emptied, not evicted piecemeal, so a worker that
//! sees more distinct definitions than fit pays the cold cost and nothing worse.

use super::canon;
use super::rules::Finding;
use super::scan::Scanner;
use serde_json::Value;
use std::collections::HashMap;

/// Most item text one worker keeps (the facts kept with it are smaller).
pub const CACHE_BYTES: usize = 4 << 20;
/// Items longer than this are not kept.
pub const MAX_ITEM_BYTES: usize = 256 << 10;

/// Where findings in a server's `instructions` are reported.
pub const INSTRUCTIONS_PATH: &str = "$.result.instructions";

/// What the scanner and the pins say about one item's bytes.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The scanner's findings, in walk order (collisions are a list matter, not here).
    pub findings: Vec<Finding>,
    /// The canonical pin, once a pinned server asked for it.
    pin: Option<String>,
}

impl Facts {
    pub fn pin(&self) -> Option<&str> {
        self.pin.as_deref()
    }
}

/// Hits and misses since the worker started (for benches and the workbench).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Times the cache was emptied for want of room.
    pub resets: u64,
}

/// The scanner with its memo; one per worker.
#[derive(Default)]
pub struct ScanCache {
    scanner: Scanner,
    map: HashMap<Box<[u8]>, Facts, foldhash::fast::RandomState>,
    bytes: usize,
    limit: usize,
    stats: CacheStats,
    /// The facts of the last item too big to keep.
    spill: Option<Facts>,
}

impl ScanCache {
    pub fn new() -> ScanCache {
        ScanCache::with_limit(CACHE_BYTES)
    }

    /// A cache holding at most `limit` bytes of item text (`0`: keep nothing, scan every time).
    pub fn with_limit(limit: usize) -> ScanCache {
        ScanCache {
            limit,
            ..ScanCache::default()
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The findings in a server's `instructions` (`raw`: its JSON string text, quotes
    /// included; kept in the same memo, where no item's text starts with a quote). `None`
    /// when `raw` is not a JSON string.
    pub fn instructions(&mut self, raw: &[u8]) -> Option<&Facts> {
        if raw.first() != Some(&b'"') {
            return None;
        }
        if self.map.contains_key(raw) {
            self.stats.hits += 1;
            return self.map.get(raw);
        }
        let text: String = serde_json::from_slice(raw).ok()?;
        let facts = Facts {
            findings: self.scanner.text(INSTRUCTIONS_PATH, &text),
            pin: None,
        };
        Some(self.keep(raw, facts))
    }

    /// Scan any value at `path` (a call's result), not kept: results rarely repeat.
    pub fn scan_value(&mut self, path: &str, v: &Value) -> Vec<Finding> {
        self.scanner.value(path, v)
    }

    fn keep(&mut self, raw: &[u8], facts: Facts) -> &Facts {
        self.stats.misses += 1;
        if raw.len() > MAX_ITEM_BYTES || self.limit == 0 {
            // Not kept: handed out through a one-entry slot.
            return self.spill.insert(facts);
        }
        if self.bytes + raw.len() > self.limit {
            self.map.clear();
            self.bytes = 0;
            self.stats.resets += 1;
        }
        self.bytes += raw.len();
        self.map.entry(raw.into()).or_insert(facts)
    }

    /// The facts of `text` (one list item's JSON), computing what is not known yet; the pin
    /// only when `want_pin`. `None` when the text is not JSON (the caller drops the item).
    pub fn facts(&mut self, text: &[u8], want_pin: bool) -> Option<&Facts> {
        // Two lookups on a hit that needs a pin computed late; one otherwise. (Borrowing the
        // entry across the insert below is what the borrow checker refuses.)
        let pin_late = match self.map.get(text) {
            Some(f) => want_pin && f.pin.is_none(),
            None => {
                let value: Value = serde_json::from_slice(text).ok()?;
                let facts = Facts {
                    findings: self.scanner.item(&value),
                    pin: want_pin.then(|| canon::pin(&value)),
                };
                return Some(self.keep(text, facts));
            }
        };
        self.stats.hits += 1;
        if pin_late {
            let value: Value = serde_json::from_slice(text).ok()?;
            let pin = canon::pin(&value);
            if let Some(f) = self.map.get_mut(text) {
                f.pin = Some(pin);
            }
        }
        self.map.get(text)
    }
}
