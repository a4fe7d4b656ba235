//! How long the purge of a deleted Space takes (`account_api::purge`), from the
//! `DELETE /spaces/{space}` to the Space being gone, through the whole app and the worker
//! (`spacectl::worker`, the registry `spacectl serve` and the dispatcher run).
//!
//! The Space is filled through `POST /contacts/import` (1,000 contacts a call) until it
//! holds at least `PURGE_ITEMS` items, counting every item under its partitions: contacts,
//! their events, email claims and search entries. The store is the embedded one in a file
//! (commits fsync, as `spacectl serve` runs it), or DynamoDB with an S3 bucket when
//! `AWS_ENDPOINT_URL` is set (`scripts/with-moto.sh`; moto is a Python stand-in, far slower
//! than DynamoDB, so only its order of magnitude means anything). Each of `PURGE_ROUNDS`
//! rounds fills a fresh store; the median round is the figure.
//!
//! `cargo bench -p space-bench --bench purge` (`scripts/bench-purge.sh` runs both
//! backends); the figures are in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use serde_json::{Value, json};
use space_http::{Engine, keys};
use space_store::blobs::{BlobStore, FileBlobStore, S3BlobStore};
use space_store::dynamodb::DynamoStore;
use space_store::embedded::EmbeddedStore;
use space_store::secrets::MemoryVault;
use space_store::{Scan, Store};

/// One request through the app: its status and JSON body.
async fn call(app: &Router, auth: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    space_bench::call(app, auth, method, path, body).await
}

/// The keys stored under `space`'s partitions.
async fn items_of(store: &dyn Store, space: &str) -> usize {
    let own = keys::space_partition(space);
    let under = format!("{own}#");
    let mut count = 0;
    let mut after = None;
    loop {
        let page = store
            .scan(Scan::prefix(own.as_str()).after(after).limit(1000))
            .await
            .expect("a scan");
        count += page
            .keys
            .iter()
            .filter(|(pk, _)| *pk == own || pk.starts_with(&under))
            .count();
        match page.last {
            Some(last) => after = Some(last),
            None => return count,
        }
    }
}

struct Round {
    items: usize,
    took: Duration,
}

/// A fresh store filled with a Space of at least `target` items; then the Space is deleted
/// and the worker runs until it is gone.
async fn round(target: usize, dynamodb: bool) -> Round {
    let folder = tempfile::tempdir().expect("a temp dir");
    let (store, blobs): (Arc<dyn Store>, Arc<dyn BlobStore>) = if dynamodb {
        let name = format!(
            "purge-bench-{}",
            space_http::ids::new_id("t").replace('_', "-").to_lowercase()
        );
        let store = DynamoStore::from_env(name.clone()).await;
        store.create_table().await.expect("the table");
        let bucket = S3BlobStore::from_env(name).await;
        bucket.create_bucket().await.expect("the bucket");
        (Arc::new(store), Arc::new(bucket))
    } else {
        let store = EmbeddedStore::open(&folder.path().join("space.redb")).expect("redb opens");
        (
            Arc::new(store),
            Arc::new(FileBlobStore::new(folder.path().join("media"))),
        )
    };
    let engine = Engine::builder(Arc::clone(&store))
        .vault(Arc::new(MemoryVault::default()))
        .signing_keys(Arc::new(MemoryVault::default()))
        .blobs(blobs)
        .build();
    let demo = spacectl::bootstrap::create_demo(
        &engine,
        "Purged",
        Some(account_api::keys::KeyRequest {
            name: "bench".into(),
            scopes: space_auth::ScopeSet::all(),
            expires_at: None,
            rate_limit_per_minute: Some(u32::MAX),
            toolsets: None,
            read_only: false,
            limits: Vec::new(),
            approval_required: space_auth::ScopeSet::default(),
        }),
    )
    .await
    .expect("bootstrap");
    let app = spacectl::app(engine.clone());
    let auth = format!("Bearer {}", demo.space_key);
    let mut next = 0usize;
    while items_of(store.as_ref(), &demo.space_id).await < target {
        let rows: Vec<Value> = (next..next + 1000)
            .map(|n| json!({"name": format!("Person {n}"), "email": format!("p{n}@example.com"), "company": "Acme"}))
            .collect();
        next += 1000;
        let (status, body) = call(
            &app,
            &auth,
            "POST",
            "/functions/v1/space-api/contacts/import",
            Some(json!({"contacts": rows})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let items = items_of(store.as_ref(), &demo.space_id).await;

    let worker = spacectl::worker(engine.clone());
    let started = Instant::now();
    let (status, body) = call(
        &app,
        &format!("Bearer {}", demo.account_key),
        "DELETE",
        &format!("/functions/v1/account-api/spaces/{}", demo.space_id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let listed = keys::account_space(&demo.account_id, &demo.space_id);
    while store.get(&listed.pk, &listed.sk).await.expect("a read").is_some() {
        let pass = worker.run_due().await.expect("a worker pass");
        if pass.done + pass.later + pass.dead == 0 {
            // A run that comes back "at once" is due the next millisecond.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let took = started.elapsed();
    assert_eq!(items_of(store.as_ref(), &demo.space_id).await, 0, "the Space is empty");
    Round { items, took }
}

fn main() {
    let dynamodb = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let target = setting("PURGE_ITEMS", if dynamodb { 5_000 } else { 100_000 });
    let rounds = setting("PURGE_ROUNDS", 3).max(1);
    let backend = if dynamodb {
        "DynamoDB (moto) + S3 (moto)"
    } else {
        "embedded (redb file)"
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut results = Vec::new();
    for n in 1..=rounds {
        let result = runtime.block_on(round(target, dynamodb));
        println!(
            "purge round {n}/{rounds}: {} items in {:.2} s ({:.0} items/s)",
            result.items,
            result.took.as_secs_f64(),
            result.items as f64 / result.took.as_secs_f64()
        );
        results.push(result);
    }
    results.sort_by_key(|result| result.took);
    let median = &results[results.len() / 2];
    println!(
        "| {backend} | {} | {:.2} s | {:.0} items/s |",
        median.items,
        median.took.as_secs_f64(),
        median.items as f64 / median.took.as_secs_f64()
    );
}
