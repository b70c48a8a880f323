//! A fixed table of atomic counters, shared by every worker of one Envoy (a process-wide
//! `static` in the module): lock-free, no allocation after creation.
//!
//! Each slot is two `AtomicU64`s: the counter's key (a 64-bit hash of limit id and counted
//! value; 0 = free) and its state, `window_end << 32 | count` (window end in seconds since the
//! epoch; `u32::MAX` for concurrency counters, which never expire). Keys are placed by open
//! addressing over [`PROBES`] slots; a slot whose window has ended (or whose concurrency count
//! is 0) is reclaimed by the next key that needs room. A thread that found its slot just before
//! the slot was reclaimed can count one call against the new key: the error is at most one call
//! per reclaim race, documented in `docs/limits.md`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Slots probed per key before the table counts as full.
pub const PROBES: usize = 16;
/// Default number of slots (16 bytes each: 1 MiB).
pub const DEFAULT_SLOTS: usize = 1 << 16;
/// Window end marking a counter that never expires (concurrency).
const FOREVER: u64 = u32::MAX as u64;
const COUNT_MASK: u64 = 0xffff_ffff;

pub struct Table {
    slots: Box<[Slot]>,
}

#[derive(Default)]
struct Slot {
    key: AtomicU64,
    state: AtomicU64,
}

/// Where a counter lives: its slot and key, kept by the stream to release a concurrency hold
/// or roll back a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    index: u32,
    key: u64,
}

/// The answer to one charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Counted; the count after this charge.
    Admitted { count: u64, window_end: u64 },
    /// Over the limit; nothing counted. `window_end` is when the window resets.
    Over { count: u64, window_end: u64 },
    /// No slot free within [`PROBES`]: the counter cannot be kept.
    Full,
}

fn pack(end: u64, count: u64) -> u64 {
    (end << 32) | (count & COUNT_MASK)
}
fn end_of(s: u64) -> u64 {
    s >> 32
}
fn count_of(s: u64) -> u64 {
    s & COUNT_MASK
}

impl Table {
    pub fn new(slots: usize) -> Table {
        let n = slots.max(PROBES);
        Table {
            slots: (0..n).map(|_| Slot::default()).collect(),
        }
    }

    /// Keys are never 0 (0 marks a free slot).
    pub fn key(parts: &[&[u8]]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for p in parts {
            for b in p.iter() {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            // Separator, so ("ab","c") and ("a","bc") differ.
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h | 1
    }

    /// Find or claim `key`'s slot. `now` decides whether an occupied slot may be reclaimed.
    fn find(&self, key: u64, now: u64) -> Option<SlotRef> {
        let n = self.slots.len();
        let start = (key % n as u64) as usize;
        let mut reclaimable = None;
        for i in 0..PROBES {
            let index = (start + i) % n;
            let slot = &self.slots[index];
            let k = slot.key.load(Ordering::Acquire);
            if k == key {
                return Some(SlotRef {
                    index: index as u32,
                    key,
                });
            }
            if k == 0 {
                match slot.key.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        return Some(SlotRef {
                            index: index as u32,
                            key,
                        })
                    }
                    Err(other) if other == key => {
                        return Some(SlotRef {
                            index: index as u32,
                            key,
                        })
                    }
                    Err(_) => continue,
                }
            }
            if reclaimable.is_none() && idle(slot.state.load(Ordering::Acquire), now) {
                reclaimable = Some((index, k));
            }
        }
        let (index, old) = reclaimable?;
        let slot = &self.slots[index];
        slot.key
            .compare_exchange(old, key, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        // The state is idle: an expired window (reset on the next charge) or a zero count.
        slot.state.store(0, Ordering::Release);
        Some(SlotRef {
            index: index as u32,
            key,
        })
    }

    /// Add `cost` to the counter `key` in the fixed window of `window` seconds containing
    /// `now`, unless the count would pass `max`.
    pub fn charge(&self, key: u64, now: u64, window: u64, max: u64, cost: u64) -> (Charge, Option<SlotRef>) {
        let Some(r) = self.find(key, now) else {
            return (Charge::Full, None);
        };
        let window = window.max(1);
        let end = (now / window + 1) * window;
        let slot = &self.slots[r.index as usize];
        let mut s = slot.state.load(Ordering::Acquire);
        loop {
            let current = if end_of(s) <= now || end_of(s) == FOREVER {
                0
            } else {
                count_of(s)
            };
            let new_end = if end_of(s) <= now || end_of(s) == FOREVER {
                end
            } else {
                end_of(s)
            };
            if current.saturating_add(cost) > max {
                return (
                    Charge::Over {
                        count: current,
                        window_end: new_end,
                    },
                    Some(r),
                );
            }
            let next = pack(new_end, current + cost);
            match slot
                .state
                .compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return (
                        Charge::Admitted {
                            count: current + cost,
                            window_end: new_end,
                        },
                        Some(r),
                    )
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// Take back a charge made in the window ending `window_end` (another limit refused the
    /// call). A window that has moved on is left alone.
    pub fn refund(&self, r: SlotRef, window_end: u64, cost: u64) {
        let slot = &self.slots[r.index as usize];
        if slot.key.load(Ordering::Acquire) != r.key {
            return;
        }
        let _ = slot.state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
            (end_of(s) == window_end).then(|| pack(window_end, count_of(s).saturating_sub(cost)))
        });
    }

    /// Take one in-flight slot of `key` unless `max` are held.
    pub fn acquire(&self, key: u64, now: u64, max: u64) -> (Charge, Option<SlotRef>) {
        let Some(r) = self.find(key, now) else {
            return (Charge::Full, None);
        };
        let slot = &self.slots[r.index as usize];
        let mut s = slot.state.load(Ordering::Acquire);
        loop {
            let current = if end_of(s) == FOREVER { count_of(s) } else { 0 };
            if current >= max {
                return (
                    Charge::Over {
                        count: current,
                        window_end: FOREVER,
                    },
                    Some(r),
                );
            }
            match slot
                .state
                .compare_exchange_weak(s, pack(FOREVER, current + 1), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    return (
                        Charge::Admitted {
                            count: current + 1,
                            window_end: FOREVER,
                        },
                        Some(r),
                    )
                }
                Err(actual) => s = actual,
            }
        }
    }

    /// Give back an in-flight slot taken by [`Table::acquire`].
    pub fn release(&self, r: SlotRef) {
        let slot = &self.slots[r.index as usize];
        if slot.key.load(Ordering::Acquire) != r.key {
            return;
        }
        let _ = slot.state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
            (end_of(s) == FOREVER && count_of(s) > 0).then(|| pack(FOREVER, count_of(s) - 1))
        });
    }
}

/// A slot another key may take: its window ended, or it holds no call in flight.
fn idle(state: u64, now: u64) -> bool {
    if end_of(state) == FOREVER {
        count_of(state) == 0
    } else {
        end_of(state) <= now
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} slots)", self.slots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn window_counts_to_max_then_refuses_until_it_ends() {
        let t = Table::new(64);
        let k = Table::key(&[b"calls", b"alice"]);
        for i in 1..=3 {
            assert_eq!(
                t.charge(k, 100, 60, 3, 1).0,
                Charge::Admitted {
                    count: i,
                    window_end: 120
                }
            );
        }
        assert_eq!(
            t.charge(k, 119, 60, 3, 1).0,
            Charge::Over {
                count: 3,
                window_end: 120
            }
        );
        assert_eq!(
            t.charge(k, 120, 60, 3, 1).0,
            Charge::Admitted {
                count: 1,
                window_end: 180
            }
        );
    }

    #[test]
    fn cost_larger_than_what_is_left_is_refused_and_not_counted() {
        let t = Table::new(64);
        let k = Table::key(&[b"b"]);
        assert!(matches!(
            t.charge(k, 0, 86_400, 25, 10).0,
            Charge::Admitted { count: 10, .. }
        ));
        assert!(matches!(
            t.charge(k, 0, 86_400, 25, 10).0,
            Charge::Admitted { count: 20, .. }
        ));
        assert_eq!(
            t.charge(k, 5, 86_400, 25, 10).0,
            Charge::Over {
                count: 20,
                window_end: 86_400
            }
        );
        assert!(matches!(
            t.charge(k, 5, 86_400, 25, 5).0,
            Charge::Admitted { count: 25, .. }
        ));
    }

    #[test]
    fn refund_takes_back_only_the_same_window() {
        let t = Table::new(64);
        let k = Table::key(&[b"r"]);
        let (c, r) = t.charge(k, 10, 60, 5, 2);
        let Charge::Admitted { window_end, .. } = c else {
            panic!()
        };
        t.refund(r.unwrap(), window_end, 2);
        assert!(matches!(t.charge(k, 10, 60, 5, 5).0, Charge::Admitted { count: 5, .. }));
        t.refund(r.unwrap(), window_end + 60, 5);
        assert!(matches!(t.charge(k, 10, 60, 5, 1).0, Charge::Over { .. }));
    }

    #[test]
    fn concurrency_holds_and_releases() {
        let t = Table::new(64);
        let k = Table::key(&[b"c"]);
        let (a, r1) = t.acquire(k, 0, 2);
        assert!(matches!(a, Charge::Admitted { count: 1, .. }));
        assert!(matches!(t.acquire(k, 0, 2).0, Charge::Admitted { count: 2, .. }));
        assert!(matches!(t.acquire(k, 0, 2).0, Charge::Over { count: 2, .. }));
        t.release(r1.unwrap());
        assert!(matches!(t.acquire(k, 0, 2).0, Charge::Admitted { count: 2, .. }));
    }

    #[test]
    fn full_table_is_reported_and_expired_slots_are_reclaimed() {
        let t = Table::new(PROBES);
        for i in 0..PROBES as u64 {
            let k = Table::key(&[&i.to_le_bytes()]);
            assert!(matches!(t.charge(k, 0, 60, 10, 1).0, Charge::Admitted { .. }), "{i}");
        }
        let newcomer = Table::key(&[b"new"]);
        assert_eq!(t.charge(newcomer, 30, 60, 10, 1).0, Charge::Full);
        // Once the windows end, their slots are taken over.
        assert!(matches!(
            t.charge(newcomer, 60, 60, 10, 1).0,
            Charge::Admitted { count: 1, .. }
        ));
    }

    #[test]
    fn concurrent_threads_never_admit_more_than_max() {
        let t = Arc::new(Table::new(1024));
        let k = Table::key(&[b"shared"]);
        let admitted: u64 = (0..4)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || {
                    (0..10_000)
                        .filter(|_| matches!(t.charge(k, 7, 3600, 5_000, 1).0, Charge::Admitted { .. }))
                        .count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(admitted, 5_000);
    }
}
