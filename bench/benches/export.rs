//! Analytics export of 100,000 contacts (`GET /analytics/export?dataset=contacts`), CSV and
//! JSON lines, through the whole app (key check, router, streaming body) on a fresh
//! embedded store — in memory and in a file, as `spacectl serve` runs it. The body is read
//! as a client would, chunk by chunk, measuring:
//!
//! - time to the first byte of the body,
//! - rows per second over the whole export,
//! - how far the process's resident memory grew while it streamed (peak VmRSS, sampled at
//!   every chunk, minus VmRSS before the request), the larger of the first export of each
//!   format and the measured one: what the export holds at once.
//!
//! The contacts are written straight to the store beforehand (as the API stores them), so
//! the seeding is not what is measured. `EXPORT_CONTACTS` overrides the count.
//!
//! `cargo bench -p space-bench --bench export`; figures in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::{Map, json};
use space_http::fields::format_datetime;
use space_http::{ids, keys};
use space_store::embedded::EmbeddedStore;
use space_store::{Condition, Item, Store, Write};
use tower::ServiceExt as _;

const BASE: &str = "/functions/v1/space-api";

/// Resident memory of this process, in KiB (Linux).
fn rss_kib() -> u64 {
    space_bench::serve::rss_kib("self").unwrap_or(0)
}

/// Writes `count` contacts into `space` as the contacts family stores them.
async fn seed(store: &Arc<dyn Store>, space: &str, count: usize) {
    let partition = keys::collection_partition(space, "contacts");
    let now = format_datetime(chrono::Utc::now());
    for start in (0..count).step_by(100) {
        let writes: Vec<Write> = (start..count.min(start + 100))
            .map(|n| {
                let id = ids::new_id("con");
                let mut body = Map::new();
                body.insert("id".into(), json!(id));
                body.insert("name".into(), json!(format!("Person {n}, \"Example\"")));
                body.insert("email".into(), json!(format!("p{n}@example.com")));
                body.insert("phone".into(), json!(format!("+1201555{:04}", n % 10_000)));
                body.insert("company".into(), json!(format!("Company {}", n % 997)));
                body.insert("tags".into(), json!(["customer", "newsletter"]));
                body.insert("created_at".into(), json!(now));
                body.insert("updated_at".into(), json!(now));
                Write::put(Item::new(partition.clone(), id, body), Condition::NotExists)
            })
            .collect();
        store.transact(writes).await.expect("seeding");
    }
}

struct Run {
    first_byte: Duration,
    total: Duration,
    rows: usize,
    bytes: usize,
    rss_growth_kib: u64,
}

async fn export(app: &axum::Router, auth: &str, format: &str) -> Run {
    let request = http::Request::builder()
        .uri(format!("{BASE}/analytics/export?dataset=contacts&format={format}"))
        .header(http::header::AUTHORIZATION, auth)
        .body(axum::body::Body::empty())
        .expect("a request");
    let before = rss_kib();
    let mut peak = before;
    let started = Instant::now();
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    assert_eq!(response.status(), http::StatusCode::OK);
    let mut chunks = response.into_body().into_data_stream();
    let mut first_byte = None;
    let (mut rows, mut bytes) = (0, 0);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.expect("a chunk");
        first_byte.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len();
        rows += chunk.iter().filter(|b| **b == b'\n').count();
        peak = peak.max(rss_kib());
    }
    Run {
        first_byte: first_byte.unwrap_or_default(),
        total: started.elapsed(),
        rows,
        bytes,
        rss_growth_kib: peak.saturating_sub(before),
    }
}

fn main() {
    let count: usize = std::env::var("EXPORT_CONTACTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stores: Vec<(&str, Arc<dyn Store>)> = vec![
            ("memory", Arc::new(EmbeddedStore::in_memory())),
            (
                "file",
                Arc::new(EmbeddedStore::open(&dir.path().join("export.redb")).expect("a store")),
            ),
        ];
        for (backend, store) in stores {
            let space = space_bench::bench_space(store.clone()).await.expect("bench space");
            seed(&store, &space.keys.space_id, count).await;
            let auth = format!("Bearer {}", space.keys.space_key);
            for format in ["csv", "json"] {
                // The first pass's memory (nothing of an export was allocated before it),
                // the second's times (caches and allocator warm).
                let cold = export(&space.app, &auth, format).await;
                let mut run = export(&space.app, &auth, format).await;
                run.rss_growth_kib = run.rss_growth_kib.max(cold.rss_growth_kib);
                let data_rows = if format == "csv" { run.rows - 1 } else { run.rows };
                assert_eq!(data_rows, count, "every contact once");
                println!(
                    "export {count} contacts, {format}, {backend}: first byte {:.1} ms, total {:.2} s, {:.0} rows/s, {:.1} MB, RSS growth {:.1} MB",
                    run.first_byte.as_secs_f64() * 1000.0,
                    run.total.as_secs_f64(),
                    data_rows as f64 / run.total.as_secs_f64(),
                    run.bytes as f64 / 1e6,
                    run.rss_growth_kib as f64 / 1024.0,
                );
            }
        }
    });
}
