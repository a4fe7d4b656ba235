//! What the contacts' indexes cost an import: `POST /contacts/import` of 1,000 and of
//! 100,000 contacts (1,000 a call), with the contacts as declared (a unique email claim
//! written in each row's transaction, and a word index of name, email and company that a
//! job writes after the answer) and with the same resource stripped of its indexed
//! filters: the import as it was before the indexes. With the indexes, two times: until
//! the last call answered (every contact readable and found by email), and until the jobs
//! that index the words are done (every contact found by `q`).
//!
//! Both run the same handler (`contacts::import::operation_for`) behind the same router and
//! key check, on a fresh embedded store: in memory (the indexes' CPU cost alone) and in a
//! file (commits fsync, as `spacectl serve` runs it). Each figure is the median of
//! `IMPORT_ROUNDS` rounds (default 3).
//!
//! `cargo bench -p space-bench --bench import`; figures in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use serde_json::{Value, json};
use space_http::resource::{Filter, Resource};
use space_store::Store;
use space_store::embedded::EmbeddedStore;

const BASE: &str = "/functions/v1/space-api";

/// The contacts without the filters that keep index entries.
fn contacts_without_indexes() -> Resource {
    let mut resource = contacts::contacts();
    resource
        .filters
        .retain(|filter| !matches!(filter, Filter::Lookup { .. } | Filter::IndexedSearch { .. }));
    resource
}

fn row(n: usize) -> Value {
    json!({
        "name": format!("Person {n} Example"),
        "email": format!("p{n}@example.com"),
        "company": format!("Company {}", n % 997),
        "tags": ["customer"]
    })
}

/// How long an import took: until its last call answered, and until its jobs were done.
#[derive(Clone, Copy)]
struct Took {
    answered: Duration,
    searchable: Duration,
}

/// Imports `count` contacts through the import of `resource`, then runs the jobs it left.
async fn import(store: Arc<dyn Store>, resource: fn() -> Resource, count: usize) -> Took {
    let space = space_bench::bench_space(store).await.expect("bench space");
    let engine = space.engine.clone();
    let app: Router =
        space_http::rest::routes(vec![contacts::import::operation_for(resource)]).with_state(space.engine);
    let auth = format!("Bearer {}", space.keys.space_key);
    let started = Instant::now();
    for start in (0..count).step_by(1000) {
        let rows: Vec<Value> = (start..count.min(start + 1000)).map(row).collect();
        let (status, body) = space_bench::call(
            &app,
            &auth,
            "POST",
            &format!("{BASE}/contacts/import"),
            Some(json!({"contacts": rows})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["failed"], 0, "import failed rows: {body}");
    }
    let answered = started.elapsed();
    space_bench::drain_jobs(&engine).await.expect("the jobs run");
    Took {
        answered,
        searchable: started.elapsed(),
    }
}

/// The run of median answer time.
fn median(mut runs: Vec<Took>) -> Took {
    runs.sort_by_key(|took| took.answered);
    runs[runs.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("IMPORT_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "| contacts | store | with indexes: answered | searchable | without | ratio answered | ratio searchable | rows/s answered |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for count in [1_000, 100_000] {
        for backend in ["memory", "file"] {
            let times = |resource: fn() -> Resource| {
                let runs = (0..rounds)
                    .map(|_| {
                        let folder = tempfile::tempdir().expect("a temp dir");
                        let store: Arc<dyn Store> = match backend {
                            "memory" => Arc::new(EmbeddedStore::in_memory()),
                            _ => Arc::new(EmbeddedStore::open(&folder.path().join("space.redb")).expect("redb opens")),
                        };
                        rt.block_on(import(store, resource, count))
                    })
                    .collect();
                median(runs)
            };
            let with = times(contacts::contacts);
            let without = times(contacts_without_indexes);
            let without = without.answered.as_secs_f64();
            println!(
                "| {count} | {backend} | {:.2} s | {:.2} s | {without:.2} s | {:.2}× | {:.2}× | {:.0} |",
                with.answered.as_secs_f64(),
                with.searchable.as_secs_f64(),
                with.answered.as_secs_f64() / without,
                with.searchable.as_secs_f64() / without,
                count as f64 / with.answered.as_secs_f64()
            );
        }
    }
}
