//! Signing keys remembered for a short while in the process that reads them. Every webhook
//! delivery signs with its endpoint's key and every inbound messaging hook checks its
//! connection's key; in AWS each read is a Secrets Manager call (tens of milliseconds, and
//! billed per call), repeated for the same few keys thousands of times a minute.
//!
//! Writes through this process forget the name at once. A write by another process (a
//! rotation served by another function) reaches this one within [`SIGNING_KEY_TTL`]: a
//! delivery signed meanwhile with the previous key fails at a receiver that already moved
//! on and is retried, and a check that fails on a remembered key asks the backend again
//! ([`SigningKeys::get_key_fresh`]) before refusing. Missing keys are not remembered: a key
//! created elsewhere is seen on the next read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::secrets::SigningKeys;

/// How long a key read from the backend is served from memory.
pub const SIGNING_KEY_TTL: Duration = Duration::from_secs(60);

/// Keys remembered at most; past it the cache starts over.
const CAPACITY: usize = 4096;

/// A [`SigningKeys`] backend with a per-process memory of the keys it read.
pub struct CachedSigningKeys<K: ?Sized> {
    ttl: Duration,
    entries: Mutex<HashMap<(String, String), (Instant, String)>>,
    inner: Box<K>,
}

impl<K: SigningKeys + ?Sized> CachedSigningKeys<K> {
    pub fn new(inner: Box<K>, ttl: Duration) -> Self {
        CachedSigningKeys {
            ttl,
            entries: Mutex::new(HashMap::new()),
            inner,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (Instant, String)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn remembered(&self, space: &str, name: &str) -> Option<String> {
        let entries = self.entries();
        let (read_at, value) = entries.get(&(space.to_owned(), name.to_owned()))?;
        (read_at.elapsed() < self.ttl).then(|| value.clone())
    }

    fn remember(&self, space: &str, name: &str, value: &Option<String>) {
        let mut entries = self.entries();
        let key = (space.to_owned(), name.to_owned());
        match value {
            Some(value) => {
                if entries.len() >= CAPACITY && !entries.contains_key(&key) {
                    entries.clear();
                }
                entries.insert(key, (Instant::now(), value.clone()));
            }
            None => {
                entries.remove(&key);
            }
        }
    }

    fn forget(&self, space: &str, name: &str) {
        self.entries().remove(&(space.to_owned(), name.to_owned()));
    }
}

#[async_trait]
impl<K: SigningKeys + ?Sized> SigningKeys for CachedSigningKeys<K> {
    async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        self.forget(space, name);
        self.inner.put_key(space, name, value).await
    }

    async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        if let Some(value) = self.remembered(space, name) {
            return Ok(Some(value));
        }
        self.get_key_fresh(space, name).await
    }

    async fn get_key_fresh(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        let value = self.inner.get_key(space, name).await?;
        self.remember(space, name, &value);
        Ok(value)
    }

    async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.forget(space, name);
        self.inner.delete_key(space, name).await
    }

    async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        self.entries().retain(|(held, _), _| held != space);
        self.inner.delete_all_keys(space, limit).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::secrets::MemoryVault;

    /// A memory vault that counts the reads reaching it.
    #[derive(Default)]
    struct Counted {
        vault: MemoryVault,
        reads: AtomicUsize,
    }

    #[async_trait]
    impl SigningKeys for Counted {
        async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
            self.vault.put_key(space, name, value).await
        }
        async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.vault.get_key(space, name).await
        }
        async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError> {
            self.vault.delete_key(space, name).await
        }
        async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
            self.vault.delete_all_keys(space, limit).await
        }
    }

    fn reads(cache: &CachedSigningKeys<Counted>) -> usize {
        cache.inner.reads.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_key_is_read_once_then_served_from_memory() {
        let cache = CachedSigningKeys::new(Box::new(Counted::default()), SIGNING_KEY_TTL);
        cache.put_key("spc", "k1", "one").await.unwrap();
        for _ in 0..5 {
            assert_eq!(cache.get_key("spc", "k1").await.unwrap().as_deref(), Some("one"));
        }
        assert_eq!(reads(&cache), 1);
        assert_eq!(cache.get_key_fresh("spc", "k1").await.unwrap().as_deref(), Some("one"));
        assert_eq!(reads(&cache), 2);
    }

    #[tokio::test]
    async fn writes_through_the_cache_are_seen_at_once() {
        let cache = CachedSigningKeys::new(Box::new(Counted::default()), SIGNING_KEY_TTL);
        cache.put_key("spc", "k1", "one").await.unwrap();
        cache.get_key("spc", "k1").await.unwrap();
        cache.put_key("spc", "k1", "two").await.unwrap();
        assert_eq!(cache.get_key("spc", "k1").await.unwrap().as_deref(), Some("two"));
        cache.delete_key("spc", "k1").await.unwrap();
        assert_eq!(cache.get_key("spc", "k1").await.unwrap(), None);
        cache.put_key("spc", "k2", "three").await.unwrap();
        cache.get_key("spc", "k2").await.unwrap();
        while cache.delete_all_keys("spc", 10).await.unwrap() > 0 {}
        assert_eq!(cache.get_key("spc", "k2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn missing_keys_and_expired_entries_are_read_again() {
        let cache = CachedSigningKeys::new(Box::new(Counted::default()), Duration::ZERO);
        assert_eq!(cache.get_key("spc", "k1").await.unwrap(), None);
        cache.inner.vault.put_key("spc", "k1", "elsewhere").await.unwrap();
        assert_eq!(cache.get_key("spc", "k1").await.unwrap().as_deref(), Some("elsewhere"));
        assert_eq!(cache.get_key("spc", "k1").await.unwrap().as_deref(), Some("elsewhere"));
        assert_eq!(reads(&cache), 3);
    }
}
