//! A store wrapper that counts sequential round trips: calls that overlap in time count
//! as one wave, the way they cost one network round trip against DynamoDB.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use space_store::{Condition, Item, Page, Query, Scan, ScanPage, Store, StoreError, Write};

/// Counts waves of overlapping store calls. Each call takes a few milliseconds, like a
/// network hop, so that calls issued together really overlap.
pub struct CountingStore {
    inner: Arc<dyn Store>,
    in_flight: AtomicUsize,
    waves: AtomicUsize,
    calls: AtomicUsize,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn Store>) -> CountingStore {
        CountingStore {
            inner,
            in_flight: AtomicUsize::new(0),
            waves: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
        }
    }

    /// Zeroes the counters.
    pub fn reset(&self) {
        self.waves.store(0, Ordering::SeqCst);
        self.calls.store(0, Ordering::SeqCst);
    }

    /// Sequential round trips since the last reset.
    pub fn waves(&self) -> usize {
        self.waves.load(Ordering::SeqCst)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn around<T>(&self, call: impl Future<Output = T>) -> T {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.waves.fetch_add(1, Ordering::SeqCst);
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let result = call.await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.around(self.inner.get(pk, sk)).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.around(self.inner.put(item, condition)).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        self.around(self.inner.delete(pk, sk, condition)).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.around(self.inner.query(query)).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.around(self.inner.transact(writes)).await
    }

    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError> {
        self.around(self.inner.scan(scan)).await
    }

    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        self.around(self.inner.delete_many(keys)).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.around(self.inner.put_many(items)).await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        self.around(self.inner.increment(pk, sk, by, expires_at)).await
    }
}
