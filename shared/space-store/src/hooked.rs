//! A store that runs its writes through a hook and forwards everything else: how a call
//! adds a write of its own to the transaction a handler makes (an idempotency record, a
//! cap's counter) without the handler knowing.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::item::{Condition, Item, Page, Query, RawItem, Scan, ScanPage, Write};
use crate::store::Store;

/// What a [`Hooked`] store does with writes.
#[async_trait]
pub trait WriteHook: Send + Sync + 'static {
    /// Writes `writes` to `inner` in one transaction, adding what the hook adds. `single`:
    /// they came as one put or delete, whose failed condition reads `ConditionFailed`.
    async fn write(&self, inner: &dyn Store, writes: Vec<Write>, single: bool) -> Result<(), StoreError>;

    /// Whether a single put or delete goes through the hook too, or straight to the store
    /// (bookkeeping around the change, never the change itself).
    fn hooks_single_writes(&self) -> bool;
}

/// `inner` with its writes run through `hook`.
pub struct Hooked<H> {
    inner: Arc<dyn Store>,
    hook: H,
}

impl<H: WriteHook> Hooked<H> {
    pub fn new(inner: Arc<dyn Store>, hook: H) -> Hooked<H> {
        Hooked { inner, hook }
    }

    pub fn hook(&self) -> &H {
        &self.hook
    }
}

#[async_trait]
impl<H: WriteHook> Store for Hooked<H> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }

    async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<RawItem>, StoreError> {
        self.inner.get_raw(pk, sk).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        if self.hook.hooks_single_writes() {
            self.hook
                .write(&*self.inner, vec![Write::Put { item, condition }], true)
                .await
        } else {
            self.inner.put(item, condition).await
        }
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        if self.hook.hooks_single_writes() {
            self.hook
                .write(&*self.inner, vec![Write::delete(pk, sk, condition)], true)
                .await
        } else {
            self.inner.delete(pk, sk, condition).await
        }
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.hook.write(&*self.inner, writes, false).await
    }

    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError> {
        self.inner.scan(scan).await
    }

    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        self.inner.delete_many(keys).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.inner.put_many(items).await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        self.inner.increment(pk, sk, by, expires_at).await
    }
}
