//! Items the embedded store read recently, served again while no write has committed
//! since. Every request reads its key's lookup item and usually one more; a redb read
//! transaction, table open and B-tree walk cost more than the rest of the store call.
//!
//! Validity is one generation number for the whole database: a write bumps it right after
//! its commit (on the thread that committed, so a caller that stopped waiting cannot skip
//! it), and an entry is served only while the generation it was read at is current. A
//! reader takes the generation *before* it opens its read transaction, so whatever it
//! caches is at least as new as that generation says. Reads are therefore never older
//! than the last write that returned; writes are rare next to reads on the hot paths
//! (key lookups, item reads), and the rate counters are not in redb at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::item::RawItem;

/// Entries kept at most; past it the cache starts over (old entries are mostly stale).
const CAPACITY: usize = 4096;

struct Entry {
    generation: u64,
    item: Arc<RawItem>,
}

#[derive(Default)]
pub(crate) struct ReadCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ReadCache {
    /// The generation to read at: call before opening the read transaction.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks every entry stale. Call after each commit, before the write returns.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The item at `key` if it was read at the current generation.
    pub fn get(&self, key: &str) -> Option<Arc<RawItem>> {
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.get(key)?;
        (entry.generation == generation).then(|| Arc::clone(&entry.item))
    }

    /// Remembers what a read transaction opened at `generation` found at `key`.
    pub fn insert(&self, key: String, generation: u64, item: Arc<RawItem>) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, Entry { generation, item });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    fn item(version: u64) -> Arc<RawItem> {
        Arc::new(RawItem {
            version,
            expires_at: None,
            body: RawValue::from_string("{}".into()).expect("JSON"),
        })
    }

    #[test]
    fn an_entry_is_served_until_the_next_write() {
        let cache = ReadCache::default();
        let at = cache.generation();
        cache.insert("a".into(), at, item(1));
        assert_eq!(cache.get("a").map(|i| i.version), Some(1));
        cache.invalidate();
        assert!(cache.get("a").is_none(), "stale after a write");
        cache.insert("a".into(), cache.generation(), item(2));
        assert_eq!(cache.get("a").map(|i| i.version), Some(2));
    }

    #[test]
    fn a_read_that_straddled_a_write_is_never_served() {
        let cache = ReadCache::default();
        let at = cache.generation();
        // A write commits and returns while the read is still in flight.
        cache.invalidate();
        cache.insert("a".into(), at, item(1));
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ReadCache::default();
        let at = cache.generation();
        for n in 0..CAPACITY + 10 {
            cache.insert(format!("k{n}"), at, item(1));
        }
        let held = cache.entries.lock().map(|e| e.len()).unwrap_or_default();
        assert!(held <= CAPACITY, "{held} entries");
        assert!(
            cache.get(&format!("k{}", CAPACITY + 9)).is_some(),
            "the newest entry is kept"
        );
    }
}
