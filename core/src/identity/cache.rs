//! Per-worker cache of verified tokens, so a client's second request costs a hash and a
//! compare instead of a signature check.
//!
//! One per worker thread (the filter keeps it in a `thread_local`): no locks, no sharing.
//! Entries die at the token's `exp` + leeway, exactly when verification would start failing.
//! A hit compares the *full* token, so a hash collision can only cause a miss, never another
//! token's principal. Hits do not allocate (an `Arc` clone).

use crate::principal::Principal;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Arc;

/// How many trailing bytes of a token are hashed. The tail is the signature: for any token
/// that can be in the cache (only verified ones are inserted) it is unpredictable, so hashing
/// only it is as good as hashing all of it, at a fraction of the cost for 1–2 KiB tokens.
const HASHED_TAIL: usize = 48;

struct Slot {
    hash: u64,
    token: Box<str>,
    principal: Arc<Principal>,
    /// First second at which the entry is dead (`exp + leeway`).
    dead_at: u64,
}

/// A bounded map of verified token → principal. Create it with
/// [`super::Identity::new_token_cache`]; pass it to [`super::Identity::verify_bearer_cached`].
pub struct TokenCache {
    /// Which compiled [`super::Identity`] filled it: a config reload empties the cache, so a
    /// token is never trusted on a removed provider's say-so.
    owner: u64,
    capacity: usize,
    hasher: Hashing,
    /// Hash of the token tail → index into `slots`. Keys are already hashes: no re-hashing.
    index: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    slots: Vec<Slot>,
}

enum Hashing {
    Random(RandomState),
    /// Every token hashes alike: lets tests prove collisions are harmless.
    #[cfg(test)]
    Constant,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (0: caching off).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache::with_hashing(capacity, Hashing::Random(RandomState::new()))
    }

    fn with_hashing(capacity: usize, hasher: Hashing) -> TokenCache {
        TokenCache {
            owner: 0,
            capacity,
            hasher,
            index: HashMap::with_capacity_and_hasher(capacity.min(4096), BuildHasherDefault::default()),
            slots: Vec::with_capacity(capacity.min(4096)),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
    }

    /// Adopt `owner`'s entries policy: if another identity filled the cache, forget it all.
    pub(crate) fn bind(&mut self, owner: u64, capacity: usize) {
        if self.owner != owner {
            self.clear();
            self.owner = owner;
            self.capacity = capacity;
        }
    }

    fn hash(&self, token: &str) -> u64 {
        match &self.hasher {
            Hashing::Random(s) => {
                let b = token.as_bytes();
                s.hash_one(&b[b.len().saturating_sub(HASHED_TAIL)..])
            }
            #[cfg(test)]
            Hashing::Constant => 7,
        }
    }

    /// The cached principal for exactly this token, if it is still alive at `now`.
    pub fn get(&mut self, token: &str, now: u64) -> Option<Arc<Principal>> {
        let h = self.hash(token);
        let &i = self.index.get(&h)?;
        let slot = self.slots.get(i)?;
        if &*slot.token != token {
            return None;
        }
        if now >= slot.dead_at {
            self.remove_at(i);
            return None;
        }
        Some(Arc::clone(&slot.principal))
    }

    /// Remember a verified token until `dead_at` (exclusive). When full, expired entries go
    /// first, then the one closest to expiry. A token with the same hash replaces the old one.
    pub fn insert(&mut self, token: &str, principal: Arc<Principal>, dead_at: u64, now: u64) {
        if self.capacity == 0 || now >= dead_at {
            return;
        }
        let hash = self.hash(token);
        if let Some(&i) = self.index.get(&hash) {
            self.remove_at(i);
        }
        if self.slots.len() >= self.capacity {
            self.evict(now);
        }
        self.index.insert(hash, self.slots.len());
        self.slots.push(Slot {
            hash,
            token: token.into(),
            principal,
            dead_at,
        });
    }

    /// Make room for one: O(capacity), run only on an insert into a full cache, i.e. right
    /// after a signature check that costs far more.
    fn evict(&mut self, now: u64) {
        let mut i = self.slots.len();
        while i > 0 {
            i -= 1;
            if now >= self.slots[i].dead_at {
                self.remove_at(i);
            }
        }
        while self.slots.len() >= self.capacity {
            let Some(oldest) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, s)| s.dead_at)
                .map(|(i, _)| i)
            else {
                return;
            };
            self.remove_at(oldest);
        }
    }

    fn remove_at(&mut self, i: usize) {
        let slot = self.slots.swap_remove(i);
        self.index.remove(&slot.hash);
        if let Some(moved) = self.slots.get(i) {
            self.index.insert(moved.hash, i);
        }
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens.
        f.debug_struct("TokenCache")
            .field("len", &self.slots.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Hasher for keys that already are hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach here; fold anything else rather than panic.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(sub: &str) -> Arc<Principal> {
        let mut p = Principal::anonymous();
        p.subject = sub.into();
        Arc::new(p)
    }

    #[test]
    fn colliding_hashes_never_return_another_tokens_principal() {
        let mut c = TokenCache::with_hashing(8, Hashing::Constant);
        c.insert("token-a", principal("alice"), 100, 0);
        assert!(c.get("token-b", 1).is_none(), "same hash, different token must miss");
        assert_eq!(c.get("token-a", 1).map(|p| p.subject.clone()).as_deref(), Some("alice"));
        // A colliding insert replaces, and the old token then misses rather than aliasing.
        c.insert("token-b", principal("bob"), 100, 0);
        assert!(c.get("token-a", 1).is_none());
        assert_eq!(c.get("token-b", 1).map(|p| p.subject.clone()).as_deref(), Some("bob"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn index_stays_consistent_through_swap_removals() {
        let mut c = TokenCache::new(3);
        c.insert("a", principal("a"), 10, 0);
        c.insert("b", principal("b"), 50, 0);
        c.insert("c", principal("c"), 40, 0);
        assert!(c.get("a", 10).is_none()); // expired: removed, "c" moves into slot 0
        c.insert("d", principal("d"), 60, 10);
        c.insert("e", principal("e"), 70, 10); // full: evicts "c" (closest to expiry)
        for (t, want) in [("b", true), ("c", false), ("d", true), ("e", true)] {
            assert_eq!(c.get(t, 11).is_some(), want, "{t}");
        }
        assert_eq!(c.len(), 3);
    }
}
