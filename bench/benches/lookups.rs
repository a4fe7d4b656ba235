//! In-process cost of the indexed lists of contacts at 1,000 and 100,000 contacts, through
//! the whole app (`spacectl::app`) on the embedded store in memory:
//!
//! - `email`: `?email=` of one contact (a claim read, then the item);
//! - `q_rare`: `?q=` of a word one contact has (one word-index query, then the item);
//! - `q_common`: `?q=person`, a word every contact has: the first page of 50;
//! - `tag_scan`: `?tag=` of the oldest contact's tag, which still reads the items in order
//!   (at 100,000 it reads its 10,000-item budget and answers 422).
//!
//! The contacts are written through `POST /contacts/import`, so every index entry exists.
//! `cargo bench -p space-bench --bench lookups`; p50s in docs/benchmarks.md.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::StatusCode;
use serde_json::{Value, json};
use space_store::embedded::EmbeddedStore;

const BASE: &str = "/functions/v1/space-api";

/// One request through the app: its status and JSON body.
async fn call(app: &Router, auth: &str, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    space_bench::call(app, auth, method, &format!("{BASE}{path}"), body).await
}

/// An app over an in-memory store holding `contacts` contacts; the first (the oldest) is
/// "Needle Haystack", tagged `rare`.
async fn fixture(contacts: usize) -> (Router, String) {
    let space = space_bench::bench_space(Arc::new(EmbeddedStore::in_memory()))
        .await
        .expect("bench app");
    let (app, auth) = (space.app, format!("Bearer {}", space.keys.space_key));
    let row = |n: usize| match n {
        0 => json!({"name": "Needle Haystack", "email": "needle@example.com", "tags": ["rare"]}),
        n => json!({"name": format!("Person {n}"), "email": format!("p{n}@example.com"), "company": "Acme"}),
    };
    for start in (0..contacts).step_by(1000) {
        let rows: Vec<Value> = (start..contacts.min(start + 1000)).map(row).collect();
        let (status, body) = call(&app, &auth, "POST", "/contacts/import", Some(json!({"contacts": rows}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["failed"], 0, "import failed rows");
    }
    // The imported contacts' search words.
    space_bench::drain_jobs(&space.engine).await.expect("the jobs run");
    (app, auth)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut group = c.benchmark_group("lookups");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for contacts in [1_000, 100_000] {
        let (app, auth) = rt.block_on(fixture(contacts));
        let cases = [
            ("email", "/contacts?email=needle@example.com", StatusCode::OK, Some(1)),
            ("q_rare", "/contacts?q=haystack", StatusCode::OK, Some(1)),
            ("q_common", "/contacts?q=person", StatusCode::OK, Some(50)),
            (
                "tag_scan",
                "/contacts?tag=rare",
                if contacts > 10_000 {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::OK
                },
                (contacts <= 10_000).then_some(1),
            ),
        ];
        for (name, path, expected, found) in cases {
            // Fail fast, before measuring, if a path does not answer what it should.
            let (status, body) = rt.block_on(call(&app, &auth, "GET", path, None));
            assert_eq!(status, expected, "{path}: {body}");
            if let Some(found) = found {
                assert_eq!(body["data"].as_array().map(Vec::len), Some(found), "{path}");
            }
            group.bench_with_input(BenchmarkId::new(name, contacts), &path, |b, path| {
                b.to_async(&rt).iter(|| call(&app, &auth, "GET", path, None));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
