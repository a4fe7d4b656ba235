//! Backends built when first needed. Building an AWS SDK client loads the system's TLS
//! roots (every file under `/etc/ssl/certs`: milliseconds of CPU), and a Lambda cold start
//! should not pay that before answering a request that never reaches the store (a missing
//! key, a 404) — on a small Lambda, a background build competes with the request for the
//! one vCPU. A [`Deferred`] builds its value on the first call that needs it; calls that
//! arrive meanwhile wait for the same build, and a failed build is tried again by the next
//! call rather than remembered forever.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::blobs::{BlobInfo, BlobStore, DownloadHeaders, PresignedRequest};
use crate::error::StoreError;
use crate::item::{Condition, Item, Page, Query, RawItem, Scan, ScanPage, Write};
use crate::secrets::{SecretVault, SigningKeys};
use crate::store::Store;

type Build<T> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Arc<T>, StoreError>> + Send>> + Send + Sync>;

/// A value built on first use; cloning shares the same value.
pub struct Deferred<T: ?Sized> {
    inner: Arc<Inner<T>>,
}

struct Inner<T: ?Sized> {
    value: OnceCell<Arc<T>>,
    build: Build<T>,
}

impl<T: ?Sized> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Deferred {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: ?Sized + Send + Sync + 'static> Deferred<T> {
    /// A value that `build` makes on the first [`get`](Deferred::get).
    pub fn lazy<F, Fut>(build: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<T>, StoreError>> + Send + 'static,
    {
        Deferred {
            inner: Arc::new(Inner {
                value: OnceCell::new(),
                build: Box::new(move || Box::pin(build())),
            }),
        }
    }

    /// The value, built now if no call has built it yet. A build that panics or fails
    /// answers "unavailable" to the calls waiting on it; the next call tries again.
    pub async fn get(&self) -> Result<Arc<T>, StoreError> {
        let value = self
            .inner
            .value
            .get_or_try_init(|| async {
                // On its own task, so that where panics unwind (tests) a panic in the SDK's
                // setup answers "unavailable" and leaves the cell empty for the next call.
                tokio::spawn((self.inner.build)())
                    .await
                    .map_err(|_| StoreError::unavailable("the storage backend failed to start"))?
            })
            .await?;
        Ok(Arc::clone(value))
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for Deferred<S> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        Deferred::get(self).await?.get(pk, sk).await
    }

    async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<RawItem>, StoreError> {
        Deferred::get(self).await?.get_raw(pk, sk).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        Deferred::get(self).await?.put(item, condition).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        Deferred::get(self).await?.delete(pk, sk, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        Deferred::get(self).await?.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        Deferred::get(self).await?.transact(writes).await
    }

    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError> {
        Deferred::get(self).await?.scan(scan).await
    }

    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        Deferred::get(self).await?.delete_many(keys).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        Deferred::get(self).await?.put_many(items).await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        Deferred::get(self).await?.increment(pk, sk, by, expires_at).await
    }

    async fn warm_up(&self) -> Result<(), StoreError> {
        Deferred::get(self).await?.warm_up().await
    }
}

#[async_trait]
impl<V: SecretVault + ?Sized> SecretVault for Deferred<V> {
    async fn put_value(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        self.get().await?.put_value(space, name, value).await
    }

    async fn delete_value(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.get().await?.delete_value(space, name).await
    }

    async fn delete_all(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        SecretVault::delete_all(self.get().await?.as_ref(), space, limit).await
    }
}

#[async_trait]
impl<K: SigningKeys + ?Sized> SigningKeys for Deferred<K> {
    async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        self.get().await?.put_key(space, name, value).await
    }

    async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        self.get().await?.get_key(space, name).await
    }

    async fn get_key_fresh(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        self.get().await?.get_key_fresh(space, name).await
    }

    async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.get().await?.delete_key(space, name).await
    }

    async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        self.get().await?.delete_all_keys(space, limit).await
    }
}

#[async_trait]
impl<B: BlobStore + ?Sized> BlobStore for Deferred<B> {
    async fn put(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<(), StoreError> {
        Deferred::get(self).await?.put(key, content_type, bytes).await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Deferred::get(self).await?.get(key).await
    }

    async fn read_prefix(&self, key: &str, length: usize) -> Result<Option<Bytes>, StoreError> {
        Deferred::get(self).await?.read_prefix(key, length).await
    }

    async fn info(&self, key: &str) -> Result<Option<BlobInfo>, StoreError> {
        Deferred::get(self).await?.info(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        Deferred::get(self).await?.delete(key).await
    }

    async fn delete_folder(&self, folder: &str, limit: usize) -> Result<usize, StoreError> {
        Deferred::get(self).await?.delete_folder(folder, limit).await
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        Deferred::get(self)
            .await?
            .presign_put(key, content_type, expires_in)
            .await
    }

    async fn presign_get(
        &self,
        key: &str,
        headers: &DownloadHeaders,
        expires_in: Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        Deferred::get(self).await?.presign_get(key, headers, expires_in).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedStore;

    #[tokio::test]
    async fn calls_wait_for_the_build_then_reach_the_backend() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let store: Deferred<EmbeddedStore> = Deferred::lazy(move || {
            let released = Arc::clone(&released);
            async move {
                if let Some(released) = released.lock().await.take() {
                    let _ = released.await;
                }
                Ok(Arc::new(EmbeddedStore::in_memory()))
            }
        });
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { Store::get(&store, "pk", "sk").await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a call must wait for the backend");
        release.send(()).expect("the build is waiting");
        assert_eq!(waiting.await.expect("task"), Ok(None));
        let item = Item::new("pk", "sk", serde_json::Map::new());
        Store::put(&store, item, Condition::None).await.expect("put");
        assert!(Store::get(&store, "pk", "sk").await.expect("get").is_some());
    }

    #[tokio::test]
    async fn nothing_is_built_before_a_call_needs_it() {
        let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&builds);
        let store: Deferred<EmbeddedStore> = Deferred::lazy(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok(Arc::new(EmbeddedStore::in_memory())) }
        });
        tokio::task::yield_now().await;
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 0);
        let shared = store.clone();
        let (first, second) = tokio::join!(Store::get(&store, "pk", "sk"), Store::get(&shared, "pk", "sk"));
        assert_eq!((first, second), (Ok(None), Ok(None)));
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1, "one build, shared");
    }

    #[tokio::test]
    async fn a_failed_build_is_answered_then_tried_again() {
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&attempts);
        let store: Deferred<EmbeddedStore> = Deferred::lazy(move || {
            let attempt = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if attempt == 0 {
                    Err(StoreError::unavailable("no region"))
                } else {
                    Ok(Arc::new(EmbeddedStore::in_memory()))
                }
            }
        });
        assert_eq!(
            Store::get(&store, "pk", "sk").await,
            Err(StoreError::unavailable("no region"))
        );
        assert_eq!(Store::warm_up(&store).await, Ok(()));
    }

    #[tokio::test]
    async fn a_build_that_dies_makes_calls_unavailable_not_stuck() {
        let store: Deferred<EmbeddedStore> = Deferred::lazy(|| async { panic!("no config") });
        let error = Store::get(&store, "pk", "sk").await.expect_err("no backend");
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    }
}
