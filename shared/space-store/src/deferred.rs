//! Backends built on a background task. Building an AWS SDK client loads the system's TLS
//! roots (every file under `/etc/ssl/certs`: tens of milliseconds), and a Lambda cold
//! start should not pay that before answering a request that never reaches the store (a
//! missing key, a 404). A [`Deferred`] starts the build at init and serves calls once it is
//! done; a call that arrives sooner waits for it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use crate::blobs::{BlobInfo, BlobStore, DownloadHeaders, PresignedRequest};
use crate::error::StoreError;
use crate::item::{Condition, Item, Page, Query, Write};
use crate::secrets::SecretVault;
use crate::store::Store;

/// A value being built by a spawned task; cloning shares the same build.
pub struct Deferred<T: ?Sized> {
    ready: watch::Receiver<Option<Result<Arc<T>, StoreError>>>,
}

impl<T: ?Sized> Clone for Deferred<T> {
    fn clone(&self) -> Self {
        Deferred {
            ready: self.ready.clone(),
        }
    }
}

impl<T: ?Sized + Send + Sync + 'static> Deferred<T> {
    /// Starts `build` on the current Tokio runtime. Its error, or its task dying, is what
    /// every call then answers (the store is unavailable), rather than a wait forever.
    pub fn spawn<F>(build: F) -> Self
    where
        F: Future<Output = Result<Arc<T>, StoreError>> + Send + 'static,
    {
        let (sender, ready) = watch::channel(None);
        tokio::spawn(async move {
            // No receiver left means nobody wants the value any more.
            let _ = sender.send(Some(build.await));
        });
        Deferred { ready }
    }

    /// The value, once built.
    pub async fn get(&self) -> Result<Arc<T>, StoreError> {
        if let Some(built) = self.ready.borrow().as_ref() {
            return built.clone();
        }
        let mut ready = self.ready.clone();
        let built = ready
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StoreError::unavailable("the storage backend failed to start"))?;
        built
            .clone()
            .unwrap_or_else(|| Err(StoreError::unavailable("the storage backend failed to start")))
    }
}

#[async_trait]
impl<S: Store + ?Sized> Store for Deferred<S> {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        Deferred::get(self).await?.get(pk, sk).await
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
        let store: Deferred<EmbeddedStore> = Deferred::spawn(async move {
            let _ = released.await;
            Ok(Arc::new(EmbeddedStore::in_memory()))
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
    async fn a_failed_build_is_what_every_call_answers() {
        let store: Deferred<EmbeddedStore> = Deferred::spawn(async { Err(StoreError::unavailable("no region")) });
        assert_eq!(
            Store::get(&store, "pk", "sk").await,
            Err(StoreError::unavailable("no region"))
        );
        assert_eq!(Store::warm_up(&store).await, Err(StoreError::unavailable("no region")));
    }

    #[tokio::test]
    async fn a_build_that_dies_makes_calls_unavailable_not_stuck() {
        let store: Deferred<EmbeddedStore> = Deferred::spawn(async { panic!("no config") });
        let error = Store::get(&store, "pk", "sk").await.expect_err("no backend");
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    }
}
