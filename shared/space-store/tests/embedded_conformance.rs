//! The embedded backend, in memory and in a file, against the shared conformance suite.

use std::sync::Arc;

use chrono::Utc;
use space_store::embedded::EmbeddedStore;
use space_store::{ManualClock, Store, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_memory_store_conforms() {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory().with_clock(clock.clone()));
    conformance::run_all(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_conforms() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store = EmbeddedStore::open(&folder.path().join("store.redb")).expect("the store file opens");
    let store: Arc<dyn Store> = Arc::new(store.with_clock(clock.clone()));
    conformance::run_all(store, clock).await;
}
