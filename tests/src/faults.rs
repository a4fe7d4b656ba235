//! A store wrapper that fails chosen kinds of calls, for showing what clients see when
//! the store is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use space_store::{Condition, Item, Page, Query, Store, StoreError, Write};

/// Passes calls through until told to fail reads or writes.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fail_reads: AtomicBool,
    fail_writes: AtomicBool,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> FaultyStore {
        FaultyStore {
            inner,
            fail_reads: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
        }
    }

    pub fn fail_reads(&self, fail: bool) {
        self.fail_reads.store(fail, Ordering::SeqCst);
    }

    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    fn check(&self, flag: &AtomicBool) -> Result<(), StoreError> {
        if flag.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("injected fault"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.check(&self.fail_reads)?;
        self.inner.get(pk, sk).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.check(&self.fail_writes)?;
        self.inner.put(item, condition).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        self.check(&self.fail_writes)?;
        self.inner.delete(pk, sk, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.check(&self.fail_reads)?;
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.check(&self.fail_writes)?;
        self.inner.transact(writes).await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        self.check(&self.fail_writes)?;
        self.inner.increment(pk, sk, by, expires_at).await
    }
}
