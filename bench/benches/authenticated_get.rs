//! In-process cost of an authenticated `GET /functions/v1/space-api/contacts/{id}` through
//! the whole app (`spacectl::app`), driven with `tower::ServiceExt::oneshot` on a tokio
//! multi-thread runtime: no sockets, no HTTP parsing, just routing, the request-id layer,
//! authentication (key lookup + rate counter), the store read and the JSON answer.
//!
//! - `embedded_in_memory`: redb with its in-memory backend;
//! - `embedded_redb_file`: redb in a file in a temporary folder (reads only: no fsync);
//! - `unauthenticated_404`: the same request with no key (answered 401 before any store
//!   access): the floor of what the stack costs.
//!
//! `cargo bench -p space-bench`

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode, header};
use space_store::Store;
use space_store::embedded::EmbeddedStore;
use tower::ServiceExt as _;

const BASE: &str = "/functions/v1/space-api";

/// An app over `store` with a bench space, its key and one contact: (app, key, contact path).
async fn fixture(store: Arc<dyn Store>) -> (Router, String, String) {
    let (app, key) = space_bench::bench_app(store).await.expect("bench app");
    let create = Request::post(format!("{BASE}/contacts"))
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"Ada","email":"ada@example.com"}"#))
        .expect("request");
    let response = app.clone().oneshot(create).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::CREATED, "creating the bench contact");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let contact: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let id = contact["id"].as_str().expect("contact id").to_owned();
    (app, key, format!("{BASE}/contacts/{id}"))
}

/// One request through the app, body read to the end; checks the status.
async fn call(app: &Router, path: &str, key: Option<&str>, expected: StatusCode) {
    let mut request = Request::get(path);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, key);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    assert_eq!(status, expected, "{}", String::from_utf8_lossy(&body));
    std::hint::black_box(body);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let folder = tempfile::tempdir().expect("temporary folder");
    let file_store = EmbeddedStore::open(&folder.path().join("space.redb")).expect("open redb file");
    let (memory_app, memory_key, memory_path) = rt.block_on(fixture(Arc::new(EmbeddedStore::in_memory())));
    let (file_app, file_key, file_path) = rt.block_on(fixture(Arc::new(file_store)));
    let memory_auth = format!("Bearer {memory_key}");
    let file_auth = format!("Bearer {file_key}");
    // Fail fast, before measuring, if a path does not answer what it should.
    rt.block_on(call(&memory_app, &memory_path, Some(&memory_auth), StatusCode::OK));
    rt.block_on(call(&file_app, &file_path, Some(&file_auth), StatusCode::OK));
    rt.block_on(call(&memory_app, &memory_path, None, StatusCode::UNAUTHORIZED));

    let mut group = c.benchmark_group("authenticated_get");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("embedded_in_memory", |b| {
        b.to_async(&rt)
            .iter(|| call(&memory_app, &memory_path, Some(&memory_auth), StatusCode::OK));
    });
    group.bench_function("embedded_redb_file", |b| {
        b.to_async(&rt)
            .iter(|| call(&file_app, &file_path, Some(&file_auth), StatusCode::OK));
    });
    // Named for the floor it measures; with no key the answer is 401, before any lookup.
    group.bench_function("unauthenticated_404", |b| {
        b.to_async(&rt)
            .iter(|| call(&memory_app, &memory_path, None, StatusCode::UNAUTHORIZED));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
