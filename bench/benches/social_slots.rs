//! `next_slot` with 1,000 weekly slots and 10,000 scheduled posts on one account, through
//! `social::queue::next_slot` on the embedded store in memory. The posts fill the earliest
//! 10,000 slot occurrences (what scheduling each with `next_slot` does), so the answer is
//! the 10,001st: the worst case, every filled occurrence walked.
//!
//! `cargo bench -p space-bench --bench social_slots`; the p50 in docs/benchmarks.md.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use space_bench::call;
use space_store::embedded::EmbeddedStore;
use space_store::{Item, Write};

const SLOTS: usize = 1_000;
const POSTS: usize = 10_000;

struct Fixture {
    engine: space_http::Engine,
    space: String,
    account: String,
    now: DateTime<Utc>,
}

async fn fixture() -> Fixture {
    let bench = space_bench::bench_space(Arc::new(EmbeddedStore::in_memory()))
        .await
        .expect("bench space");
    let space = bench.keys.space_id.clone();
    let owner = format!("Bearer {}", bench.keys.account_key);
    let (status, account) = call(
        &bench.app,
        &owner,
        "POST",
        &format!("/functions/v1/account-api/spaces/{space}/connections"),
        Some(json!({"kind": "social", "network": "linkedin", "name": "Bench"})),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let account = account["id"].as_str().unwrap_or_default().to_owned();
    let key = format!("Bearer {}", bench.keys.space_key);
    // 1,000 slots: every weekday, 143 times a day, 10 minutes apart from 00:00 UTC.
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    for n in 0..SLOTS {
        let minutes = (n / 7) * 10;
        let time = format!("{:02}:{:02}", minutes / 60, minutes % 60);
        let (status, body) = call(
            &bench.app,
            &key,
            "POST",
            "/functions/v1/space-api/social/slots",
            Some(json!({"weekday": days[n % 7], "time": time, "time_zone": "UTC", "account_id": account})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    // The earliest 10,000 occurrences, filled: index entries as scheduling writes them.
    let now = bench.engine.now();
    let mut taken = Vec::new();
    let mut at = now;
    while taken.len() < POSTS {
        at = social::queue::next_slot(&bench.engine, &space, &account, at)
            .await
            .expect("a read")
            .expect("a slot");
        taken.push(at);
    }
    for chunk in taken.chunks(50) {
        let writes: Vec<Write> = chunk
            .iter()
            .enumerate()
            .flat_map(|(n, at)| {
                let mut post = Item::new(
                    "unused",
                    format!("post_bench_{}_{n}", at.timestamp_millis()),
                    serde_json::Map::new(),
                );
                post.body.insert("status".into(), json!("scheduled"));
                post.body.insert("account_id".into(), json!(account));
                post.body.insert(
                    "scheduled_at".into(),
                    Value::String(space_http::fields::format_datetime(*at)),
                );
                social::queue::index_writes(&space, None, Some(&post))
            })
            .collect();
        bench.engine.store().transact(writes).await.expect("index written");
    }
    Fixture {
        engine: bench.engine,
        space,
        account,
        now,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let fixture = rt.block_on(fixture());
    let free = rt
        .block_on(social::queue::next_slot(
            &fixture.engine,
            &fixture.space,
            &fixture.account,
            fixture.now,
        ))
        .expect("a read")
        .expect("a free slot");
    assert!(
        free > fixture.now + TimeDelta::weeks(9),
        "past the filled weeks: {free}"
    );
    let mut group = c.benchmark_group("social");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("next_slot_1000_slots_10000_scheduled", |b| {
        b.to_async(&rt).iter(|| async {
            social::queue::next_slot(&fixture.engine, &fixture.space, &fixture.account, fixture.now)
                .await
                .expect("a read")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
