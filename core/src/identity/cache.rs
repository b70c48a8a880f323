//! Per-worker cache of verified tokens, so a client's second request costs a hash and a
//! compare instead of a signature check.
//!
//! One per worker thread (the filter keeps it in a `thread_local`): no locks, no sharing.
//! Entries are kept per identity config (a few configs, least recently used dropped whole), so
//! two filter configs alternating on one worker keep their caches.
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

/// How many identity configs one worker keeps a cache for. Envoy can run several filter configs
/// (listeners, ECDS names, a reload in flight) on one worker; keying by config means requests
/// alternating between two of them do not empty each other's cache. Beyond this, the least
/// recently used config's cache is dropped whole.
pub const MAX_IDENTITY_CACHES: usize = 4;

/// Verified token → principal, per identity config, each bounded. Create it with
/// [`super::Identity::new_token_cache`] (or [`TokenCache::new`]); pass it to
/// [`super::Identity::verify_bearer_cached`].
///
/// `get`, `insert`, `len` and `clear` act on the cache of the identity config used last.
pub struct TokenCache {
    hasher: Hashing,
    /// Most recently used first; at most [`MAX_IDENTITY_CACHES`].
    shards: Vec<Shard>,
}

/// The cache of one compiled [`super::Identity`]: a token is only ever trusted on the say-so of
/// the config that verified it, so a reload never serves a removed provider's principal.
struct Shard {
    /// The identity's id; 0 until one binds it.
    owner: u64,
    capacity: usize,
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

impl Shard {
    fn new(owner: u64, capacity: usize) -> Shard {
        Shard {
            owner,
            capacity,
            index: HashMap::with_capacity_and_hasher(capacity.min(4096), BuildHasherDefault::default()),
            slots: Vec::with_capacity(capacity.min(4096)),
        }
    }
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens per identity config (0: caching off).
    pub fn new(capacity: usize) -> TokenCache {
        TokenCache::with_hashing(capacity, Hashing::Random(RandomState::new()))
    }

    fn with_hashing(capacity: usize, hasher: Hashing) -> TokenCache {
        TokenCache {
            hasher,
            shards: vec![Shard::new(0, capacity)],
        }
    }

    fn current(&self) -> Option<&Shard> {
        self.shards.first()
    }

    /// Entries of the identity config used last.
    pub fn len(&self) -> usize {
        self.current().map_or(0, |s| s.slots.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.current().map_or(0, |s| s.capacity)
    }

    /// How many identity configs currently have a cache here.
    pub fn identities(&self) -> usize {
        self.shards.len()
    }

    /// Forget the entries of the identity config used last.
    pub fn clear(&mut self) {
        if let Some(s) = self.shards.first_mut() {
            s.slots.clear();
            s.index.clear();
        }
    }

    /// Make `owner`'s cache the current one: found and moved to the front, or created (the
    /// least recently used one is dropped when [`MAX_IDENTITY_CACHES`] are held).
    pub(crate) fn bind(&mut self, owner: u64, capacity: usize) {
        match self.shards.iter().position(|s| s.owner == owner) {
            Some(0) => {}
            Some(i) => {
                let s = self.shards.remove(i);
                self.shards.insert(0, s);
            }
            None => match self.shards.first_mut() {
                // A fresh cache nobody has bound yet: adopt it, but never its entries.
                Some(s) if s.owner == 0 => *s = Shard::new(owner, capacity),
                _ => {
                    self.shards.truncate(MAX_IDENTITY_CACHES - 1);
                    self.shards.insert(0, Shard::new(owner, capacity));
                }
            },
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
        let shard = self.shards.first_mut()?;
        let &i = shard.index.get(&h)?;
        let slot = shard.slots.get(i)?;
        if &*slot.token != token {
            return None;
        }
        if now >= slot.dead_at {
            shard.remove_at(i);
            return None;
        }
        Some(Arc::clone(&slot.principal))
    }

    /// Remember a verified token until `dead_at` (exclusive). When full, expired entries go
    /// first, then the one closest to expiry. A token with the same hash replaces the old one.
    pub fn insert(&mut self, token: &str, principal: Arc<Principal>, dead_at: u64, now: u64) {
        let hash = self.hash(token);
        let Some(shard) = self.shards.first_mut() else {
            return;
        };
        if shard.capacity == 0 || now >= dead_at {
            return;
        }
        if let Some(&i) = shard.index.get(&hash) {
            shard.remove_at(i);
        }
        if shard.slots.len() >= shard.capacity {
            shard.evict(now);
        }
        shard.index.insert(hash, shard.slots.len());
        shard.slots.push(Slot {
            hash,
            token: token.into(),
            principal,
            dead_at,
        });
    }
}

impl Shard {
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
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("identities", &self.shards.len())
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
    fn two_identity_configs_alternating_on_one_worker_keep_their_caches() {
        let mut c = TokenCache::new(8);
        c.bind(1, 8);
        c.insert("t1", principal("alice"), 100, 0);
        c.bind(2, 8);
        assert!(c.get("t1", 1).is_none(), "config 2 never sees config 1's token");
        c.insert("t2", principal("bob"), 100, 0);
        for _ in 0..3 {
            c.bind(1, 8);
            assert_eq!(c.get("t1", 1).map(|p| p.subject.clone()).as_deref(), Some("alice"));
            assert!(c.get("t2", 1).is_none());
            c.bind(2, 8);
            assert_eq!(c.get("t2", 1).map(|p| p.subject.clone()).as_deref(), Some("bob"));
        }
        assert_eq!(c.identities(), 2);
    }

    #[test]
    fn the_least_recently_used_identity_cache_is_dropped_whole() {
        let mut c = TokenCache::new(8);
        for owner in 1..=MAX_IDENTITY_CACHES as u64 {
            c.bind(owner, 8);
            c.insert("t", principal(&owner.to_string()), 100, 0);
        }
        c.bind(1, 8); // 1 is now the most recent; 2 the least
        c.bind(99, 8);
        assert_eq!(c.identities(), MAX_IDENTITY_CACHES);
        c.bind(2, 8);
        assert!(c.get("t", 1).is_none(), "2 was dropped");
        c.bind(1, 8);
        assert_eq!(c.get("t", 1).map(|p| p.subject.clone()).as_deref(), Some("1"));
        assert!(c.identities() <= MAX_IDENTITY_CACHES);
    }

    #[test]
    fn a_fresh_cache_bound_by_a_config_does_not_keep_unowned_entries() {
        let mut c = TokenCache::new(8);
        c.insert("t", principal("x"), 100, 0);
        c.bind(5, 8);
        assert!(c.get("t", 1).is_none());
        assert_eq!(c.identities(), 1);
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
