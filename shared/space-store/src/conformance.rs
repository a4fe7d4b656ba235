//! The one suite every [`Store`] backend must pass, so that code tested on the embedded
//! backend behaves the same on DynamoDB.
//!
//! Each check writes under its own fresh partition keys, so the suite can run against a
//! shared table and next to itself. The clock is a [`ManualClock`] the store under test
//! also reads; checks only ever move it forward. Failures panic with what was expected.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::Duration;
use serde_json::{Map, Value, json};

use crate::{Condition, Item, MAX_TRANSACTION_WRITES, ManualClock, Query, Scan, SortRange, Store, StoreError, Write};

/// Runs every check in order.
pub async fn run_all(store: Arc<dyn Store>, clock: Arc<ManualClock>) {
    store
        .warm_up()
        .await
        .expect("warm_up must succeed on a reachable store");
    items_round_trip(&store, &clock).await;
    reads_follow_every_write(&store, &clock).await;
    put_conditions(&store, &clock).await;
    delete_conditions(&store, &clock).await;
    expired_items_are_absent(&store, &clock).await;
    query_ranges(&store, &clock).await;
    pagination(&store, &clock).await;
    transactions(&store, &clock).await;
    increments(&store, &clock).await;
    counts(&store, &clock).await;
    scans_and_bulk_deletes(&store, &clock).await;
    bulk_puts(&store, &clock).await;
    keys_no_backend_holds(&store, &clock).await;
    items_up_to_the_size_limit(&store, &clock).await;
}

/// A fresh, practically unique token (hex) for keys and table names.
pub fn unique_suffix() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.write_u64(SEQUENCE.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", hasher.finish())
}

fn partition(check: &str) -> String {
    format!("CONFORMANCE#{}#{check}", unique_suffix())
}

fn body(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test bodies are objects, got {other}"),
    }
}

fn now(clock: &ManualClock) -> i64 {
    use crate::Clock as _;
    clock.now().timestamp()
}

async fn put_ok(store: &Arc<dyn Store>, item: Item, condition: Condition, context: &str) {
    let key = format!("{}/{}", item.pk, item.sk);
    if let Err(error) = store.put(item, condition).await {
        panic!("{context}: put {key} with {condition:?} failed: {error}");
    }
}

/// Reads an item, and checks that reading it with its body as JSON text agrees (absent,
/// expired and present alike).
async fn get(store: &Arc<dyn Store>, pk: &str, sk: &str) -> Option<Item> {
    let item = match store.get(pk, sk).await {
        Ok(item) => item,
        Err(error) => panic!("get {pk}/{sk} failed: {error}"),
    };
    let raw = match store.get_raw(pk, sk).await {
        Ok(raw) => raw,
        Err(error) => panic!("get_raw {pk}/{sk} failed: {error}"),
    };
    let parsed = raw.map(|raw| {
        let body =
            serde_json::from_str::<Map<String, Value>>(raw.body.get()).unwrap_or_else(|e| panic!("{pk}/{sk}: {e}"));
        (raw.version, raw.expires_at, body)
    });
    assert_eq!(
        parsed,
        item.as_ref()
            .map(|item| (item.version, item.expires_at, item.body.clone())),
        "get_raw {pk}/{sk} agrees with get"
    );
    item
}

async fn sort_keys(store: &Arc<dyn Store>, query: Query) -> Vec<String> {
    let description = format!("{query:?}");
    match store.query(query).await {
        Ok(page) => page.items.into_iter().map(|item| item.sk).collect(),
        Err(error) => panic!("query {description} failed: {error}"),
    }
}

/// Bodies of every JSON kind come back equal, integers as integers; a put replaces the
/// whole item.
pub async fn items_round_trip(store: &Arc<dyn Store>, clock: &ManualClock) {
    let pk = partition("items");
    assert_eq!(get(store, &pk, "a").await, None, "a key never written reads as absent");

    let everything = body(json!({
        "text": "hello",
        "empty_text": "",
        "unicode": "ß → ✓ 🚀",
        "int": 42,
        "negative": -7,
        "zero": 0,
        "i64_min": i64::MIN,
        "u64_max": u64::MAX,
        "float": 1.5,
        "small_float": -0.125,
        "yes": true,
        "no": false,
        "nothing": null,
        "list": [1, "two", [3], {"four": 4}, null, false],
        "empty_list": [],
        "empty_object": {},
        "nested": {"deep": {"deeper": [null, true, 2.25, "x"]}},
    }));
    let expires = now(clock) + 3600;
    let item = Item::new(&pk, "a", everything).with_version(7).expiring_at(expires);
    put_ok(store, item.clone(), Condition::None, "round trip").await;
    assert_eq!(
        get(store, &pk, "a").await,
        Some(item),
        "an item reads back exactly as written"
    );

    let replacement = Item::new(&pk, "a", body(json!({"only": 1})));
    put_ok(store, replacement.clone(), Condition::None, "replace").await;
    assert_eq!(
        get(store, &pk, "a").await,
        Some(replacement),
        "an unconditional put replaces the whole item (body, version and expiry)"
    );

    put_ok(
        store,
        Item::new(&pk, "A", body(json!({"case": "upper"}))),
        Condition::None,
        "keys",
    )
    .await;
    put_ok(
        store,
        Item::new(&pk, "a ", body(json!({"case": "space"}))),
        Condition::None,
        "keys",
    )
    .await;
    let lower = get(store, &pk, "a").await.map(|item| item.body);
    assert_eq!(
        lower,
        Some(body(json!({"only": 1}))),
        "sort keys are exact: `a`, `A` and `a ` are distinct"
    );
    assert_eq!(
        get(store, &format!("{pk}x"), "a").await,
        None,
        "partition keys are exact"
    );
}

/// A read right after any kind of write sees it, however often the item was read before
/// (a backend may cache reads, never past a write).
pub async fn reads_follow_every_write(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("reads-follow");
    let read_twice = |sk: &'static str| {
        let store = Arc::clone(store);
        let pk = pk.clone();
        async move {
            let first = get(&store, &pk, sk).await;
            assert_eq!(get(&store, &pk, sk).await, first, "two reads in a row agree");
            first.map(|item| item.version)
        }
    };
    put_ok(
        store,
        Item::new(&pk, "a", body(json!({"n": 1}))),
        Condition::None,
        "first",
    )
    .await;
    assert_eq!(read_twice("a").await, Some(1));
    put_ok(
        store,
        Item::new(&pk, "a", body(json!({"n": 2}))).with_version(2),
        Condition::Version(1),
        "update",
    )
    .await;
    assert_eq!(read_twice("a").await, Some(2), "after a put");
    let outcome = store
        .transact(vec![Write::put(
            Item::new(&pk, "a", body(json!({"n": 3}))).with_version(3),
            Condition::Version(2),
        )])
        .await;
    assert!(outcome.is_ok(), "transaction: {outcome:?}");
    assert_eq!(read_twice("a").await, Some(3), "after a transaction");
    let outcome = store.delete(&pk, "a", Condition::Version(3)).await;
    assert!(outcome.is_ok(), "delete: {outcome:?}");
    assert_eq!(read_twice("a").await, None, "after a delete");
}

/// NotExists, Exists and Version on put, including 32 racing creators.
pub async fn put_conditions(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("put-conditions");
    let v1 = Item::new(&pk, "k", body(json!({"n": 1})));
    assert_eq!(
        store.put(v1.clone(), Condition::Exists).await,
        Err(StoreError::ConditionFailed),
        "Exists on an absent item fails"
    );
    assert_eq!(
        store.put(v1.clone(), Condition::Version(1)).await,
        Err(StoreError::ConditionFailed),
        "Version on an absent item fails"
    );
    put_ok(store, v1.clone(), Condition::NotExists, "NotExists on an absent item").await;
    assert_eq!(
        store
            .put(Item::new(&pk, "k", body(json!({"n": 99}))), Condition::NotExists)
            .await,
        Err(StoreError::ConditionFailed),
        "NotExists on a present item fails"
    );
    assert_eq!(
        get(store, &pk, "k").await,
        Some(v1.clone()),
        "a failed put changes nothing"
    );

    put_ok(store, v1.clone(), Condition::Exists, "Exists on a present item").await;
    let v2 = Item::new(&pk, "k", body(json!({"n": 2}))).with_version(2);
    put_ok(store, v2.clone(), Condition::Version(1), "Version(1) on version 1").await;
    assert_eq!(
        store
            .put(
                Item::new(&pk, "k", body(json!({"n": 3}))).with_version(2),
                Condition::Version(1)
            )
            .await,
        Err(StoreError::ConditionFailed),
        "Version(1) on version 2 fails"
    );
    assert_eq!(get(store, &pk, "k").await, Some(v2), "a stale version changes nothing");

    // Exactly one of many concurrent creators wins.
    let mut racers = tokio::task::JoinSet::new();
    for racer in 0..32 {
        let store = Arc::clone(store);
        let item = Item::new(&pk, "race", body(json!({"racer": racer})));
        racers.spawn(async move { (racer, store.put(item, Condition::NotExists).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = racers.join_next().await {
        let (racer, result) = joined.expect("a racing put task panicked");
        match result {
            Ok(()) => winners.push(racer),
            Err(StoreError::ConditionFailed) => {}
            Err(other) => {
                panic!("a racing NotExists put failed with {other} instead of ConditionFailed")
            }
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of 32 concurrent NotExists puts wins, got {winners:?}"
    );
    let stored = get(store, &pk, "race").await.map(|item| item.body);
    assert_eq!(
        stored,
        Some(body(json!({"racer": winners[0]}))),
        "the winner's body is stored"
    );
}

/// Conditions on delete; deleting nothing is fine.
pub async fn delete_conditions(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("delete-conditions");
    store
        .delete(&pk, "missing", Condition::None)
        .await
        .expect("deleting an absent item without a condition succeeds");
    store
        .delete(&pk, "missing", Condition::NotExists)
        .await
        .expect("deleting an absent item with NotExists succeeds");
    assert_eq!(
        store.delete(&pk, "missing", Condition::Exists).await,
        Err(StoreError::ConditionFailed),
        "Exists on an absent item fails"
    );
    assert_eq!(
        store.delete(&pk, "missing", Condition::Version(1)).await,
        Err(StoreError::ConditionFailed),
        "Version on an absent item fails"
    );

    let item = Item::new(&pk, "k", body(json!({}))).with_version(3);
    put_ok(store, item.clone(), Condition::None, "delete setup").await;
    assert_eq!(
        store.delete(&pk, "k", Condition::NotExists).await,
        Err(StoreError::ConditionFailed),
        "NotExists on a present item fails"
    );
    assert_eq!(
        store.delete(&pk, "k", Condition::Version(2)).await,
        Err(StoreError::ConditionFailed),
        "a wrong version fails"
    );
    assert_eq!(
        get(store, &pk, "k").await,
        Some(item),
        "a failed delete changes nothing"
    );
    store
        .delete(&pk, "k", Condition::Version(3))
        .await
        .expect("the right version deletes");
    assert_eq!(get(store, &pk, "k").await, None, "deleted");

    put_ok(
        store,
        Item::new(&pk, "e", body(json!({}))),
        Condition::None,
        "delete setup",
    )
    .await;
    store
        .delete(&pk, "e", Condition::Exists)
        .await
        .expect("Exists deletes a present item");
    assert_eq!(get(store, &pk, "e").await, None, "deleted");

    put_ok(
        store,
        Item::new(&pk, "n", body(json!({}))),
        Condition::None,
        "delete setup",
    )
    .await;
    store
        .delete(&pk, "n", Condition::None)
        .await
        .expect("an unconditional delete succeeds");
    assert_eq!(get(store, &pk, "n").await, None, "deleted");
}

/// Expired items are invisible to get and query and count as absent for every condition,
/// whether or not the backend has removed them.
pub async fn expired_items_are_absent(store: &Arc<dyn Store>, clock: &ManualClock) {
    let pk = partition("expiry");
    let start = now(clock);
    put_ok(
        store,
        Item::new(&pk, "soon", body(json!({}))).expiring_at(start + 60),
        Condition::None,
        "expiry",
    )
    .await;
    put_ok(
        store,
        Item::new(&pk, "never", body(json!({}))),
        Condition::None,
        "expiry",
    )
    .await;
    put_ok(
        store,
        Item::new(&pk, "now", body(json!({}))).expiring_at(start),
        Condition::None,
        "expiry",
    )
    .await;
    put_ok(
        store,
        Item::new(&pk, "past", body(json!({}))).expiring_at(start - 3600),
        Condition::None,
        "expiry",
    )
    .await;

    assert_eq!(
        get(store, &pk, "now").await,
        None,
        "an item expiring exactly now is gone"
    );
    assert_eq!(
        get(store, &pk, "past").await,
        None,
        "an item that expired earlier is gone"
    );
    assert!(
        get(store, &pk, "soon").await.is_some(),
        "an item expiring later is there"
    );
    assert_eq!(
        sort_keys(store, Query::partition(&pk)).await,
        ["never", "soon"],
        "query skips expired items"
    );

    clock.advance(Duration::seconds(60));
    assert_eq!(
        get(store, &pk, "soon").await,
        None,
        "an item is gone once its expiry is reached"
    );
    assert_eq!(
        sort_keys(store, Query::partition(&pk)).await,
        ["never"],
        "query skips newly expired items"
    );
    assert_eq!(
        sort_keys(store, Query::partition(&pk).descending(true)).await,
        ["never"],
        "a descending query skips expired items"
    );

    for sk in ["soon", "now", "past"] {
        for condition in [Condition::Exists, Condition::Version(1)] {
            assert_eq!(
                store.put(Item::new(&pk, sk, body(json!({}))), condition).await,
                Err(StoreError::ConditionFailed),
                "put with {condition:?} on expired `{sk}` fails: expired counts as absent"
            );
            assert_eq!(
                store.delete(&pk, sk, condition).await,
                Err(StoreError::ConditionFailed),
                "delete with {condition:?} on expired `{sk}` fails: expired counts as absent"
            );
        }
        assert_eq!(
            store.transact(vec![Write::check(&pk, sk, Condition::Exists)]).await,
            Err(StoreError::TransactionConflict { index: 0 }),
            "a transaction's Exists check on expired `{sk}` fails"
        );
    }
    store
        .delete(&pk, "past", Condition::NotExists)
        .await
        .expect("delete with NotExists on an expired item succeeds");
    store
        .transact(vec![Write::check(&pk, "now", Condition::NotExists)])
        .await
        .expect("a transaction's NotExists check on an expired item holds");

    let reborn = Item::new(&pk, "soon", body(json!({"reborn": true})));
    put_ok(
        store,
        reborn.clone(),
        Condition::NotExists,
        "NotExists over an expired item",
    )
    .await;
    assert_eq!(
        get(store, &pk, "soon").await,
        Some(reborn),
        "the new item replaced the expired one, without its expiry"
    );
    store
        .transact(vec![Write::put(
            Item::new(&pk, "now", body(json!({"reborn": true}))),
            Condition::NotExists,
        )])
        .await
        .expect("a transaction's NotExists put over an expired item succeeds");
    assert!(
        get(store, &pk, "now").await.is_some(),
        "the transaction's put is visible"
    );
}

/// All, BeginsWith and Between, both directions, resuming inside and outside the range,
/// and partitions that share a prefix staying apart.
pub async fn query_ranges(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("ranges");
    let keys = ["a#1", "a#2", "a#3", "b#1", "b#2", "c"];
    for sk in keys {
        put_ok(
            store,
            Item::new(&pk, sk, body(json!({"sk": sk}))),
            Condition::None,
            "ranges",
        )
        .await;
    }
    // Neighbours whose partition keys extend this one must never show up.
    put_ok(
        store,
        Item::new(format!("{pk}x"), "a#1", body(json!({}))),
        Condition::None,
        "ranges",
    )
    .await;
    put_ok(
        store,
        Item::new(format!("{pk}#"), "b#0", body(json!({}))),
        Condition::None,
        "ranges",
    )
    .await;

    let all = Query::partition(&pk);
    let page = store.query(all.clone()).await.expect("query all");
    assert!(
        page.items.iter().all(|item| item.pk == pk),
        "query returns only its partition"
    );
    assert_eq!(
        page.items.iter().map(|item| item.body.clone()).collect::<Vec<_>>(),
        keys.iter().map(|sk| body(json!({"sk": sk}))).collect::<Vec<_>>(),
        "query returns whole items in sort-key order"
    );
    assert_eq!(
        page.last_sk, None,
        "a page that holds the whole partition has no last_sk"
    );

    let cases: Vec<(SortRange, Option<&str>, bool, Vec<&str>)> = vec![
        (SortRange::All, None, true, vec!["c", "b#2", "b#1", "a#3", "a#2", "a#1"]),
        (
            SortRange::BeginsWith("a#".into()),
            None,
            false,
            vec!["a#1", "a#2", "a#3"],
        ),
        (
            SortRange::BeginsWith("a#".into()),
            None,
            true,
            vec!["a#3", "a#2", "a#1"],
        ),
        (SortRange::BeginsWith("a#2".into()), None, false, vec!["a#2"]),
        (SortRange::BeginsWith("d".into()), None, false, vec![]),
        (SortRange::BeginsWith(String::new()), None, false, keys.to_vec()),
        (
            SortRange::Between("a#2".into(), "b#1".into()),
            None,
            false,
            vec!["a#2", "a#3", "b#1"],
        ),
        (
            SortRange::Between("a#2".into(), "b#1".into()),
            None,
            true,
            vec!["b#1", "a#3", "a#2"],
        ),
        (SortRange::Between("a#25".into(), "b".into()), None, false, vec!["a#3"]),
        (SortRange::Between("c".into(), "c".into()), None, false, vec!["c"]),
        (SortRange::Between("d".into(), "e".into()), None, false, vec![]),
        (SortRange::Between("b".into(), "a".into()), None, false, vec![]),
        (
            SortRange::Between(String::new(), "a#2".into()),
            None,
            false,
            vec!["a#1", "a#2"],
        ),
        // Resuming inside the range.
        (SortRange::All, Some("a#2"), false, vec!["a#3", "b#1", "b#2", "c"]),
        (SortRange::All, Some("b#1"), true, vec!["a#3", "a#2", "a#1"]),
        (SortRange::All, Some("a#25"), false, vec!["a#3", "b#1", "b#2", "c"]),
        (SortRange::All, Some("a#25"), true, vec!["a#2", "a#1"]),
        (SortRange::All, Some("c"), false, vec![]),
        (SortRange::All, Some("a#1"), true, vec![]),
        (SortRange::BeginsWith("b#".into()), Some("b#1"), false, vec!["b#2"]),
        (SortRange::BeginsWith("b#".into()), Some("b#2"), true, vec!["b#1"]),
        (
            SortRange::Between("a#2".into(), "b#2".into()),
            Some("a#3"),
            false,
            vec!["b#1", "b#2"],
        ),
        (
            SortRange::Between("a#2".into(), "b#2".into()),
            Some("b#2"),
            true,
            vec!["b#1", "a#3", "a#2"],
        ),
        // Resuming outside the range: before its start keeps all of it, past its end none.
        (
            SortRange::Between("b#1".into(), "b#2".into()),
            Some("a"),
            false,
            vec!["b#1", "b#2"],
        ),
        (SortRange::Between("b#1".into(), "b#2".into()), Some("z"), false, vec![]),
        (
            SortRange::Between("b#1".into(), "b#2".into()),
            Some("z"),
            true,
            vec!["b#2", "b#1"],
        ),
        (SortRange::Between("b#1".into(), "b#2".into()), Some("a"), true, vec![]),
        (
            SortRange::BeginsWith("b#".into()),
            Some("a#9"),
            false,
            vec!["b#1", "b#2"],
        ),
        (SortRange::BeginsWith("b#".into()), Some("c"), false, vec![]),
        (SortRange::BeginsWith("b#".into()), Some("c"), true, vec!["b#2", "b#1"]),
        (SortRange::BeginsWith("b#".into()), Some("a"), true, vec![]),
    ];
    for (range, after, descending, expected) in cases {
        let query = Query::partition(&pk)
            .range(range.clone())
            .after(after.map(str::to_owned))
            .descending(descending);
        assert_eq!(
            sort_keys(store, query).await,
            expected,
            "query {range:?} after {after:?} descending={descending}"
        );
    }

    let first = store.query(all.clone().limit(2)).await.expect("query with limit");
    assert_eq!(first.items.len(), 2, "limit caps a page");
    assert_eq!(
        first.last_sk.as_deref(),
        Some("a#2"),
        "a page cut short names its last sort key"
    );

    // A page that ends exactly at the range's end may or may not say so (DynamoDB may
    // hand out a last key then); if it does, the next page is empty and final.
    let exact = store
        .query(all.clone().range(SortRange::BeginsWith("a#".into())).limit(3))
        .await
        .expect("query with an exact limit");
    assert_eq!(exact.items.len(), 3, "limit equal to the range's size returns it all");
    if let Some(last) = exact.last_sk {
        assert_eq!(last, "a#3", "last_sk of an exact page is its last key");
        let rest = store
            .query(
                all.clone()
                    .range(SortRange::BeginsWith("a#".into()))
                    .limit(3)
                    .after(Some(last)),
            )
            .await
            .expect("query after an exact page");
        assert!(
            rest.items.is_empty() && rest.last_sk.is_none(),
            "the page after an exact one is empty and final, got {rest:?}"
        );
    }
}

/// Walks 250 items (some expired) in pages both ways: no duplicates, no gaps.
pub async fn pagination(store: &Arc<dyn Store>, clock: &ManualClock) {
    const ITEMS: usize = 250;
    let pk = partition("pages");
    let expires = now(clock) + 30;
    let mut live = Vec::new();
    for index in 0..ITEMS {
        let sk = format!("item#{index:04}");
        let mut item = Item::new(&pk, &sk, body(json!({"index": index})));
        if index % 9 == 4 {
            item = item.expiring_at(expires);
        } else {
            live.push(sk);
        }
        put_ok(store, item, Condition::None, "pagination setup").await;
    }
    clock.advance(Duration::seconds(31));

    let mut descending_live = live.clone();
    descending_live.reverse();
    let in_range = |sk: &&String| sk.as_str() >= "item#0100" && sk.as_str() <= "item#0199";
    let ranged: Vec<String> = live.iter().filter(in_range).cloned().collect();
    let mut ranged_descending = ranged.clone();
    ranged_descending.reverse();

    let cases = [
        (SortRange::All, false, 40, &live),
        (SortRange::All, true, 40, &descending_live),
        (SortRange::All, false, 7, &live),
        (SortRange::All, true, 50, &descending_live),
        (SortRange::BeginsWith("item#01".into()), false, 40, &ranged),
        (SortRange::BeginsWith("item#01".into()), true, 40, &ranged_descending),
        (
            SortRange::Between("item#0100".into(), "item#0199".into()),
            false,
            33,
            &ranged,
        ),
        (
            SortRange::Between("item#0100".into(), "item#0199".into()),
            true,
            33,
            &ranged_descending,
        ),
    ];
    for (range, descending, limit, expected) in cases {
        let query = Query::partition(&pk)
            .range(range.clone())
            .descending(descending)
            .limit(limit);
        let walked = walk(store, query).await;
        assert_eq!(
            &walked, expected,
            "paging {range:?} descending={descending} limit={limit} returns every live item once, in order"
        );
    }
}

/// Follows `last_sk` until the end, checking every page on the way.
async fn walk(store: &Arc<dyn Store>, query: Query) -> Vec<String> {
    let limit = query.limit;
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    // Far more pages than any check needs; a store that never ends fails here.
    for _ in 0..1000 {
        let page = store
            .query(query.clone().after(after.clone()))
            .await
            .unwrap_or_else(|error| panic!("query {query:?} after {after:?} failed: {error}"));
        assert!(
            page.items.len() <= limit,
            "a page holds at most `limit` items, got {}",
            page.items.len()
        );
        seen.extend(page.items.into_iter().map(|item| item.sk));
        match page.last_sk {
            None => return seen,
            Some(last) => {
                if let Some(previous) = &after {
                    let forward = if query.descending {
                        last < *previous
                    } else {
                        last > *previous
                    };
                    assert!(
                        forward,
                        "last_sk must move on: {previous} then {last} (descending={})",
                        query.descending
                    );
                }
                after = Some(last);
            }
        }
    }
    panic!("paging {query:?} did not end");
}

/// All or nothing, the failing write's index, and the limits every backend enforces.
pub async fn transactions(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("transactions");
    let existing = Item::new(&pk, "existing", body(json!({"v": 1})));
    put_ok(store, existing.clone(), Condition::None, "transaction setup").await;

    let failing = vec![
        Write::put(Item::new(&pk, "new", body(json!({}))), Condition::NotExists),
        Write::delete(&pk, "existing", Condition::None),
        Write::check(&pk, "missing", Condition::Exists),
        Write::put(Item::new(&pk, "later", body(json!({}))), Condition::None),
    ];
    assert_eq!(
        store.transact(failing).await,
        Err(StoreError::TransactionConflict { index: 2 }),
        "the failing condition's index is reported"
    );
    assert_eq!(
        get(store, &pk, "new").await,
        None,
        "write 0 of a failed transaction is not applied"
    );
    assert_eq!(
        get(store, &pk, "existing").await,
        Some(existing.clone()),
        "write 1 of a failed transaction is not applied"
    );
    assert_eq!(
        get(store, &pk, "later").await,
        None,
        "write 3 of a failed transaction is not applied"
    );

    assert_eq!(
        store
            .transact(vec![
                Write::put(
                    Item::new(&pk, "existing", body(json!({}))).with_version(2),
                    Condition::Version(5)
                ),
                Write::put(Item::new(&pk, "other", body(json!({}))), Condition::None),
            ])
            .await,
        Err(StoreError::TransactionConflict { index: 0 }),
        "a version mismatch at index 0 is reported as index 0"
    );
    assert_eq!(get(store, &pk, "other").await, None, "nothing of it is applied");

    let updated = Item::new(&pk, "existing", body(json!({"v": 2}))).with_version(2);
    let created = Item::new(&pk, "created", body(json!({"made": true})));
    put_ok(
        store,
        Item::new(&pk, "doomed", body(json!({}))),
        Condition::None,
        "transaction setup",
    )
    .await;
    store
        .transact(vec![
            Write::put(updated.clone(), Condition::Version(1)),
            Write::put(created.clone(), Condition::NotExists),
            Write::delete(&pk, "doomed", Condition::Exists),
            Write::delete(&pk, "never-was", Condition::None),
            Write::check(&pk, "created-elsewhere", Condition::NotExists),
            Write::check(&pk, "anything", Condition::None),
        ])
        .await
        .expect("a transaction whose conditions all hold succeeds");
    assert_eq!(
        get(store, &pk, "existing").await,
        Some(updated),
        "its update is applied"
    );
    assert_eq!(get(store, &pk, "created").await, Some(created), "its create is applied");
    assert_eq!(get(store, &pk, "doomed").await, None, "its delete is applied");
    assert_eq!(get(store, &pk, "anything").await, None, "a check writes nothing");

    let writes = |count: usize, prefix: &str| -> Vec<Write> {
        (0..count)
            .map(|index| {
                Write::put(
                    Item::new(&pk, format!("{prefix}#{index:03}"), body(json!({}))),
                    Condition::NotExists,
                )
            })
            .collect()
    };
    assert!(
        matches!(
            store.transact(writes(MAX_TRANSACTION_WRITES + 1, "over")).await,
            Err(StoreError::Rejected(_))
        ),
        "more than {MAX_TRANSACTION_WRITES} writes are rejected"
    );
    let over = Query::partition(&pk).range(SortRange::BeginsWith("over#".into()));
    assert!(
        sort_keys(store, over).await.is_empty(),
        "nothing of a rejected transaction is applied"
    );
    store
        .transact(writes(MAX_TRANSACTION_WRITES, "full"))
        .await
        .expect("exactly the maximum number of writes is accepted");
    let full = Query::partition(&pk)
        .range(SortRange::BeginsWith("full#".into()))
        .limit(1000);
    assert_eq!(
        sort_keys(store, full).await.len(),
        MAX_TRANSACTION_WRITES,
        "all of them are applied"
    );

    assert!(
        matches!(store.transact(Vec::new()).await, Err(StoreError::Rejected(_))),
        "an empty transaction is rejected"
    );
    assert!(
        matches!(
            store
                .transact(vec![
                    Write::put(Item::new(&pk, "twice", body(json!({}))), Condition::None),
                    Write::check(&pk, "twice", Condition::None),
                ])
                .await,
            Err(StoreError::Rejected(_))
        ),
        "a transaction touching one item twice is rejected"
    );
    assert_eq!(get(store, &pk, "twice").await, None, "nothing of it is applied");
}

/// Counters: exact under concurrency, restarting after expiry, keeping the later expiry.
pub async fn increments(store: &Arc<dyn Store>, clock: &ManualClock) {
    const CONCURRENT: u64 = 300;
    let pk = partition("counters");
    let increment = |sk: &'static str, by: u64, expires_at: i64| {
        let store = Arc::clone(store);
        let pk = pk.clone();
        async move {
            store
                .increment(&pk, sk, by, expires_at)
                .await
                .unwrap_or_else(|error| panic!("increment {pk}/{sk} by {by} failed: {error}"))
        }
    };
    let start = now(clock);
    assert_eq!(increment("a", 1, start + 60).await, 1, "a new counter starts at `by`");
    assert_eq!(increment("a", 1, start + 60).await, 2, "then counts up");
    assert_eq!(increment("a", 5, start + 60).await, 7, "by `by`");
    assert_eq!(increment("b", 1, start + 60).await, 1, "counters are independent");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT {
        tasks.spawn(increment("concurrent", 1, start + 60));
    }
    let mut values = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        values.push(joined.expect("an increment task panicked"));
    }
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=CONCURRENT).collect::<Vec<_>>(),
        "{CONCURRENT} concurrent increments see exactly 1..={CONCURRENT}"
    );

    clock.advance(Duration::seconds(60));
    let restarted = now(clock);
    assert_eq!(
        increment("a", 3, restarted + 60).await,
        3,
        "an expired counter restarts from `by`"
    );
    assert_eq!(increment("a", 1, restarted + 60).await, 4, "and counts on");

    // Many callers racing on one expired counter restart it once.
    assert_eq!(increment("rollover", 5, restarted + 10).await, 5, "rollover setup");
    clock.advance(Duration::seconds(10));
    let expired_at = now(clock);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        tasks.spawn(increment("rollover", 1, expired_at + 60));
    }
    let mut values = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        values.push(joined.expect("an increment task panicked"));
    }
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=50).collect::<Vec<_>>(),
        "50 increments racing on an expired counter see exactly 1..=50"
    );

    // A counter lives until the latest expiry it was given.
    let base = now(clock);
    assert_eq!(increment("longest", 1, base + 100).await, 1, "expiry setup");
    assert_eq!(
        increment("longest", 1, base + 10).await,
        2,
        "a shorter expiry does not shorten the counter"
    );
    clock.advance(Duration::seconds(50));
    assert_eq!(
        increment("longest", 1, base + 60).await,
        3,
        "still alive before its longest expiry"
    );
    clock.advance(Duration::seconds(20));
    assert_eq!(
        increment("longest", 1, base + 120).await,
        4,
        "still alive after the shorter expiries passed"
    );
    clock.advance(Duration::seconds(60));
    assert_eq!(
        increment("longest", 1, base + 200).await,
        1,
        "gone once the latest expiry passed"
    );
}

/// Every key a scan of `prefix` finds, `limit` examined per page; each key once.
/// A count takes its unit in the transaction it belongs to, up to its limit: at the limit
/// the whole transaction fails at the count's index and writes nothing; a failed
/// transaction takes no unit; racing transactions share exactly the limit.
pub async fn counts(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("counts");
    let expires_at = chrono::Utc::now().timestamp() + 86_400;
    let action = |n: usize| {
        Write::put(
            Item::new(pk.clone(), format!("action#{n}"), Map::new()),
            Condition::NotExists,
        )
    };
    let count = || Write::count(pk.clone(), "counter", 2, expires_at);
    store.transact(vec![action(1), count()]).await.expect("the first unit");
    // The action's own condition fails: the transaction takes no unit.
    match store.transact(vec![action(1), count()]).await {
        Err(StoreError::TransactionConflict { index: 0 }) => {}
        other => panic!("a duplicate action fails at its own index, got {other:?}"),
    }
    store.transact(vec![action(2), count()]).await.expect("the second unit");
    match store.transact(vec![action(3), count()]).await {
        Err(StoreError::TransactionConflict { index: 1 }) => {}
        other => panic!("past the limit the count fails the transaction, got {other:?}"),
    }
    assert!(
        get(store, &pk, "action#3").await.is_none(),
        "a refused transaction writes nothing"
    );
    let counter = get(store, &pk, "counter")
        .await
        .expect("the counter reads back as an item");
    assert_eq!(counter.version, 2, "the version is the count");

    // Several units at once (a batch's usage of one tag), within the limit or not at all.
    let several = |by: u64| Write::Count {
        pk: pk.clone(),
        sk: "usage".into(),
        limit: 10,
        expires_at,
        by,
    };
    store.transact(vec![action(4), several(7)]).await.expect("seven units");
    match store.transact(vec![action(5), several(4)]).await {
        Err(StoreError::TransactionConflict { index: 1 }) => {}
        other => panic!("eleven is past ten, got {other:?}"),
    }
    store
        .transact(vec![action(6), several(3)])
        .await
        .expect("exactly the limit");
    let usage = get(store, &pk, "usage").await.expect("the usage counter");
    assert_eq!(usage.version, 10);
    // More units than the limit at once are refused even by a counter not yet written.
    let too_many = Write::Count {
        pk: pk.clone(),
        sk: "fresh".into(),
        limit: 2,
        expires_at,
        by: 3,
    };
    match store.transact(vec![action(7), too_many]).await {
        Err(StoreError::TransactionConflict { index: 1 }) => {}
        other => panic!("three is past two on a fresh counter too, got {other:?}"),
    }
    assert!(get(store, &pk, "fresh").await.is_none());

    let racing = partition("counts-race");
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..24 {
        let store = Arc::clone(store);
        let racing = racing.clone();
        attempts.spawn(async move {
            let writes = vec![
                Write::put(
                    Item::new(racing.clone(), format!("action#{n}"), Map::new()),
                    Condition::NotExists,
                ),
                Write::count(racing.clone(), "counter", 5, expires_at),
            ];
            loop {
                match store.transact(writes.clone()).await {
                    Ok(()) => return true,
                    Err(StoreError::TransactionConflict { index: 1 }) => return false,
                    Err(StoreError::Contention) => continue,
                    Err(other) => panic!("a racing count: {other:?}"),
                }
            }
        });
    }
    let won = attempts.join_all().await.into_iter().filter(|won| *won).count();
    assert_eq!(won, 5, "exactly the limit passes");
}

async fn scan_all(store: &Arc<dyn Store>, prefix: &str, limit: usize) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut after = None;
    // Far more pages than any check needs (a shared table holds other checks' items too).
    for _ in 0..100_000 {
        let page = store
            .scan(Scan::prefix(prefix).after(after.clone()).limit(limit))
            .await
            .unwrap_or_else(|error| panic!("scan {prefix} after {after:?} failed: {error}"));
        assert!(page.keys.len() <= limit, "a page holds at most `limit` keys");
        found.extend(page.keys);
        match page.last {
            None => {
                let mut unique = found.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), found.len(), "a scan shows each key once");
                found.sort();
                return found;
            }
            Some(last) => after = Some(last),
        }
    }
    panic!("scanning {prefix} did not end");
}

/// A scan finds every item under a partition-key prefix, across partitions and pages,
/// expired ones included (they are still stored), and nothing else; a bulk delete removes
/// exactly what it lists, takes repeats and missing keys, and any number of keys.
pub async fn scans_and_bulk_deletes(store: &Arc<dyn Store>, clock: &ManualClock) {
    let tenant = partition("scan");
    let prefix = format!("{tenant}#");
    let mut expected = Vec::new();
    for (part, count) in [("a", 3), ("b", 40), ("b#child", 2)] {
        for n in 0..count {
            let pk = format!("{prefix}{part}");
            let sk = format!("{n:03}");
            put_ok(
                store,
                Item::new(pk.clone(), sk.clone(), Map::new()),
                Condition::None,
                "scan setup",
            )
            .await;
            expected.push((pk, sk));
        }
    }
    let expired = Item::new(format!("{prefix}a"), "expired", Map::new()).expiring_at(now(clock) + 1);
    put_ok(store, expired, Condition::None, "scan setup").await;
    expected.push((format!("{prefix}a"), "expired".into()));
    clock.advance(Duration::seconds(2));
    // Beside the prefix, not under it: the tenant's own partition, and a longer name.
    let beside = [
        (tenant.clone(), "META".to_owned()),
        (format!("{tenant}x#a"), "1".to_owned()),
    ];
    for (pk, sk) in &beside {
        put_ok(
            store,
            Item::new(pk.clone(), sk.clone(), Map::new()),
            Condition::None,
            "scan setup",
        )
        .await;
    }
    expected.sort();

    for limit in [1, 7, 1000] {
        assert_eq!(
            scan_all(store, &prefix, limit).await,
            expected,
            "scan of {prefix} by {limit}"
        );
    }

    let mut doomed = expected.clone();
    doomed.extend(expected.iter().take(5).cloned());
    doomed.push((format!("{prefix}a"), "never-written".into()));
    store
        .delete_many(Vec::new())
        .await
        .expect("an empty bulk delete is nothing");
    store.delete_many(doomed.clone()).await.expect("bulk delete");
    assert_eq!(
        scan_all(store, &prefix, 1000).await,
        Vec::<(String, String)>::new(),
        "all removed"
    );
    store
        .delete_many(doomed)
        .await
        .expect("deleting what is gone is not an error");
    for (pk, sk) in &beside {
        assert!(get(store, pk, sk).await.is_some(), "{pk}/{sk} is not under {prefix}");
    }
}

/// A bulk put writes every item whatever was there (more than one batch of DynamoDB's),
/// the later of two with one key, and repeating it changes no body.
pub async fn bulk_puts(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("bulk-put");
    store.put_many(Vec::new()).await.expect("an empty bulk put is nothing");
    put_ok(
        store,
        Item::new(pk.clone(), "007", body(json!({"old": true}))),
        Condition::None,
        "bulk put setup",
    )
    .await;
    let mut items: Vec<Item> = (0..60)
        .map(|n| Item::new(pk.clone(), format!("{n:03}"), body(json!({"n": n}))))
        .collect();
    items.push(Item::new(pk.clone(), "010", body(json!({"n": "later"}))));
    for round in 0..2 {
        store.put_many(items.clone()).await.expect("bulk put");
        assert_eq!(
            walk(store, Query::partition(pk.clone()).limit(100)).await.len(),
            60,
            "round {round}: one item per key"
        );
        let replaced = get(store, &pk, "007").await.expect("007 is there");
        assert_eq!(
            Value::Object(replaced.body),
            json!({"n": 7}),
            "round {round}: put whole"
        );
        let later = get(store, &pk, "010").await.expect("010 is there");
        assert_eq!(
            Value::Object(later.body),
            json!({"n": "later"}),
            "round {round}: the later wins"
        );
    }
    let bad = Item::new(pk.clone(), "", Map::new());
    assert!(
        store.put_many(vec![bad]).await.is_err(),
        "a key no backend holds is refused"
    );
}

/// A key no backend can hold (empty, with a NUL, past DynamoDB's sizes) reads as absent, so
/// an id a client made up is "not found", and a write there is refused before anything is
/// written.
pub async fn keys_no_backend_holds(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("unholdable");
    let long = "k".repeat(1025);
    for sk in ["", "a\0b", long.as_str()] {
        assert_eq!(get(store, &pk, sk).await, None, "{sk:?} reads as absent");
        assert!(
            matches!(store.get_raw(&pk, sk).await, Ok(None)),
            "{sk:?} reads as absent raw"
        );
        assert!(
            matches!(
                store.put(Item::new(&pk, sk, body(json!({}))), Condition::None).await,
                Err(StoreError::Rejected(_))
            ),
            "a write at {sk:?} is refused"
        );
    }
    assert_eq!(get(store, "", "a").await, None, "an empty partition reads as absent");
    assert_eq!(
        get(store, "a\0b", "a").await,
        None,
        "a NUL in a partition reads as absent"
    );
}

/// An item of exactly [`MAX_ITEM_BYTES`] as [`item_size`] counts it (text, numbers, lists
/// and maps, the sizes DynamoDB counts differently from JSON) is stored on every backend;
/// one byte more is [`StoreError::TooLarge`] on every backend, alone or in a transaction.
pub async fn items_up_to_the_size_limit(store: &Arc<dyn Store>, _clock: &ManualClock) {
    let pk = partition("sizes");
    let sized = |sk: &str, bytes: usize| {
        let numbers: Vec<Value> = (0..5_000).map(|n| json!(n % 10)).collect();
        let mut item = Item::new(
            &pk,
            sk,
            body(json!({"numbers": numbers, "nested": {"flags": [true, null, 1.5]}, "text": ""})),
        )
        .expiring_at(4_102_444_800);
        let short = bytes.saturating_sub(crate::item_size(&item));
        item.body
            .insert("text".into(), json!("é".repeat(short / 2) + &"x".repeat(short % 2)));
        assert_eq!(crate::item_size(&item), bytes);
        item
    };
    let largest = sized("largest", crate::MAX_ITEM_BYTES);
    store
        .put(largest.clone(), Condition::None)
        .await
        .expect("an item of the largest size is stored");
    assert_eq!(get(store, &pk, "largest").await, Some(largest));
    let over = sized("over", crate::MAX_ITEM_BYTES + 1);
    assert!(
        matches!(
            store.put(over.clone(), Condition::None).await,
            Err(StoreError::TooLarge { .. })
        ),
        "one byte more is refused"
    );
    assert!(
        matches!(
            store.transact(vec![Write::put(over, Condition::NotExists)]).await,
            Err(StoreError::TooLarge { .. })
        ),
        "in a transaction too"
    );
    assert_eq!(get(store, &pk, "over").await, None);
}
