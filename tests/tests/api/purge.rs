//! Deleting a Space deletes it, on both backends: its keys are refused at once, the owner
//! sees it `deleting`, and the worker's purge removes every item (resources, children,
//! events, lookup and search entries, claims, public pointers, registry entries), every
//! media blob, secret value and signing key of it, then the Space itself; another Space is
//! untouched. A purge stopped part-way resumes where it stopped, and a step run twice does
//! no harm.

use std::collections::BTreeSet;

use account_api::purge::{Phase, Progress, Purge, SPACE_PURGE, progress_of};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_http::keys;
use space_store::{Condition, Item, Query, Scan};
use space_tests::{SPACE_API, TestApp, forbid_in_responses, on_both_backends};
use space_worker::{Pass, Worker, partition};

on_both_backends!(
    a_deleted_space_is_purged_to_its_last_item,
    a_purge_stopped_part_way_resumes_and_repeats_no_harm,
);

/// A real 1×1 PNG.
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0d\x49\x44\x41\x54\x78\x9c\x63\x60\x60\x60\xf8\x0f\x00\x01\x04\x01\x00\x5f\xe5\xc3\x4b\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// Fills `space` (through `key`) with a little of everything a Space can hold, a webhook
/// too when asked; returns the media ids and webhook ids it made.
async fn fill(app: &TestApp, space: &str, key: &str, contacts: usize, webhook: bool) -> (Vec<String>, Vec<String>) {
    let call = |method: Method, path: &str, body: Value| {
        app.request(method, &format!("{SPACE_API}{path}"))
            .key(key)
            .json(body)
            .send()
    };
    let rows: Vec<Value> = (0..contacts)
        .map(|n| json!({"name": format!("Person {n}"), "email": format!("p{n}@example.com"), "tags": ["lead"]}))
        .collect();
    for chunk in rows.chunks(500) {
        call(Method::POST, "/contacts/import", json!({"contacts": chunk}))
            .await
            .expect(200);
    }
    // The imported contacts' words: the Space is whole before anything is compared.
    app.worker_pass().await;
    let contact = call(
        Method::POST,
        "/contacts",
        json!({"name": "Ada", "email": "ada@example.com"}),
    )
    .await
    .expect(201);
    let contact = id_of(&contact.body);
    call(
        Method::POST,
        &format!("/contacts/{contact}/notes"),
        json!({"body": "Prefers email"}),
    )
    .await
    .expect(201);
    // An idempotency record.
    app.request(Method::POST, &format!("{SPACE_API}/tasks"))
        .key(key)
        .header("idempotency-key", "purge-1")
        .json(json!({"title": "Call Ada"}))
        .send()
        .await
        .expect(201);
    let table = call(
        Method::POST,
        "/tables",
        json!({"name": "Budget", "columns": [{"name": "amount", "type": "number"}]}),
    )
    .await
    .expect(201);
    call(
        Method::POST,
        &format!("/tables/{}/records", id_of(&table.body)),
        json!({"amount": 3}),
    )
    .await
    .expect(201);
    // Public pointers: a form, a booking page, a calendar feed; a published page.
    let form = call(
        Method::POST,
        "/forms",
        json!({"name": "Contact", "fields": [{"name": "email", "type": "email"}]}),
    )
    .await
    .expect(201);
    let page = call(
        Method::POST,
        "/pages",
        json!({"title": "Hi", "slug": "hi", "layout_html": format!("<p>Hi</p>{{{{form:{}}}}}", id_of(&form.body))}),
    )
    .await
    .expect(201);
    call(
        Method::POST,
        &format!("/pages/{}/publish", id_of(&page.body)),
        json!({}),
    )
    .await
    .expect(200);
    let kind = call(
        Method::POST,
        "/booking/appointment-types",
        json!({"name": "Intro", "duration_minutes": 30}),
    )
    .await
    .expect(201);
    call(
        Method::POST,
        "/booking/pages",
        json!({"name": "Book", "appointment_type_ids": [id_of(&kind.body)]}),
    )
    .await
    .expect(201);
    call(Method::POST, "/calendar/ical-token/rotate", json!({}))
        .await
        .expect(200);
    // Media: a blob each.
    let mut media = Vec::new();
    for name in ["a.png", "b.png"] {
        let uploaded = call(
            Method::POST,
            "/media",
            json!({"filename": name, "content_type": "image/png", "content_base64": STANDARD.encode(PNG)}),
        )
        .await
        .expect(201);
        media.push(id_of(&uploaded.body));
    }
    // A webhook: a signing key, and the Space's entry in the fan-out's registry. Its
    // endpoint refuses connections: deliveries fail until the purge removes it.
    let mut webhooks = Vec::new();
    if webhook {
        let created = call(
            Method::POST,
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"]}),
        )
        .await
        .expect(201);
        webhooks.push(id_of(&created.body));
    }
    // Secret values, through the owner's key.
    for name in ["STRIPE_KEY", "SMTP_PASSWORD"] {
        let value = format!("value-of-{name}-{space}");
        forbid_in_responses(&value);
        app.account(Method::PUT, &format!("/spaces/{space}/secrets/{name}"))
            .json(json!({"value": value}))
            .send()
            .await
            .expect(204);
    }
    (media, webhooks)
}

/// Every stored key, by one scan of the whole store.
async fn every_key(app: &TestApp) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .engine
            .store()
            .scan(Scan::prefix("").after(after).limit(1000))
            .await
            .expect("a scan");
        keys.extend(page.keys);
        match page.last {
            Some(last) => after = Some(last),
            None => return keys,
        }
    }
}

/// Every key whose item names `space` in its key or its body (counters, which have no
/// body to read, by key only).
async fn traces_of(app: &TestApp, space: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (pk, sk) in every_key(app).await {
        if pk.contains(space) || sk.contains(space) {
            found.push(format!("{pk} / {sk}"));
        } else if let Ok(Some(item)) = app.engine.store().get(&pk, &sk).await
            && Value::Object(item.body).to_string().contains(space)
        {
            found.push(format!("{pk} / {sk} (in its body)"));
        }
    }
    found
}

/// The keys of items under `space`'s partitions.
async fn keys_of(app: &TestApp, space: &str) -> BTreeSet<(String, String)> {
    let own = keys::space_partition(space);
    every_key(app)
        .await
        .into_iter()
        .filter(|(pk, _)| *pk == own || pk.starts_with(&format!("{own}#")))
        .collect()
}

/// One worker pass, a moment after the last (a job that comes back "at once" is due a
/// millisecond later).
async fn pass(app: &TestApp, worker: &Worker) -> Pass {
    app.clock.advance(TimeDelta::milliseconds(1));
    worker.run_due().await.expect("a pass")
}

/// Runs worker passes until one finds nothing due; returns what they did.
async fn drain(app: &TestApp, worker: &Worker) -> Pass {
    let mut total = Pass::default();
    for _ in 0..10_000 {
        let pass = pass(app, worker).await;
        if pass.done + pass.later + pass.dead == 0 {
            return total;
        }
        total.done += pass.done;
        total.later += pass.later;
        total.dead += pass.dead;
    }
    panic!("the worker never went idle");
}

/// Drains the worker now and after every retry it may have scheduled (a delivery to the
/// unreachable endpoint fails until the purge has removed its webhook).
async fn settle(app: &TestApp, worker: &Worker) {
    for _ in 0..10 {
        drain(app, worker).await;
        app.clock.advance(TimeDelta::hours(12));
    }
    drain(app, worker).await;
}

async fn tombstone(app: &TestApp, space: &str) -> Option<Item> {
    let page = app
        .engine
        .store()
        .query(Query::partition(keys::SPACE_TOMBSTONES).limit(1000))
        .await
        .expect("tombstones");
    page.items
        .into_iter()
        .find(|item| item.body.get("space_id").and_then(Value::as_str) == Some(space))
}

async fn a_deleted_space_is_purged_to_its_last_item(app: TestApp) {
    let (space, key) = app.other_space().await;
    let (media, endpoints) = fill(&app, &space, &key, 120, true).await;
    // The demo Space holds data of its own, which must come through untouched.
    let demo = app.demo.space_id.clone();
    let (demo_media, _) = fill(&app, &demo, app.key(), 5, false).await;
    let demo_before = keys_of(&app, &demo).await;
    assert!(keys_of(&app, &space).await.len() > 300, "the Space holds items");
    let signing = app.engine.signing_keys().expect("signing keys");
    let signing_key = webhooks::secret_name(&endpoints[0]);
    assert!(signing.get_key(&space, &signing_key).await.expect("read").is_some());
    assert_eq!(app.vault.names(&space).len(), 2);

    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);

    // Its keys are refused at once, REST and MCP alike.
    app.request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(&key)
        .send()
        .await
        .expect(401);
    app.request(Method::POST, "/functions/v1/space-mcp")
        .key(&key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect(401);
    // The owner sees it deleting, in the list too; nothing can be added to it.
    let shown = app
        .account(Method::GET, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["status"], "deleting");
    assert!(shown.body["deleted_at"].is_string());
    let listed = app.account(Method::GET, "/spaces?limit=200").send().await.expect(200);
    let status_of = |listed: &Value, id: &str| {
        listed["data"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].clone())
    };
    assert_eq!(status_of(&listed.body, &space), Some(json!("deleting")));
    assert_eq!(status_of(&listed.body, &demo), Some(json!("active")));
    for (method, path, body) in [
        (Method::PUT, format!("/spaces/{space}"), json!({"name": "Back"})),
        (
            Method::POST,
            format!("/spaces/{space}/keys"),
            json!({"name": "late", "scopes": ["contacts:read"]}),
        ),
        (
            Method::PUT,
            format!("/spaces/{space}/secrets/LATE"),
            json!({"value": "v"}),
        ),
    ] {
        let refused = app.account(method, &path).json(body).send().await.expect(409);
        assert_eq!(refused.error_code(), "CONFLICT");
        assert!(refused.text.contains("being deleted"), "{}", refused.text);
    }
    // Deleting again is harmless.
    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);

    settle(&app, &spacectl::worker(app.engine.clone())).await;

    // Gone: not found, not listed, and nothing anywhere names it.
    app.account(Method::GET, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(404);
    let listed = app.account(Method::GET, "/spaces?limit=200").send().await.expect(200);
    assert_eq!(status_of(&listed.body, &space), None);
    assert_eq!(traces_of(&app, &space).await, Vec::<String>::new());
    assert!(app.vault.names(&space).is_empty(), "secret values remain");
    assert!(signing.get_key(&space, &signing_key).await.expect("read").is_none());
    for id in &media {
        assert_eq!(app.blobs.info(&keys::media_blob(&space, id)).await.expect("info"), None);
    }
    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(404);

    // The demo Space is untouched.
    assert_eq!(keys_of(&app, &demo).await, demo_before);
    assert_eq!(app.vault.names(&demo).len(), 2);
    for id in &demo_media {
        assert!(
            app.blobs
                .info(&keys::media_blob(&demo, id))
                .await
                .expect("info")
                .is_some()
        );
    }
    let contacts = app
        .space(Method::GET, "/contacts?email=p1@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(contacts.body["data"].as_array().map(Vec::len), Some(1));
}

/// What the purge of `space` has recorded.
async fn progress(app: &TestApp, space: &str) -> Progress {
    progress_of(&tombstone(app, space).await.expect("a tombstone while purging"))
}

async fn a_purge_stopped_part_way_resumes_and_repeats_no_harm(app: TestApp) {
    let (space, key) = app.other_space().await;
    fill(&app, &space, &key, 200, true).await;
    let demo = app.demo.space_id.clone();
    let demo_before = keys_of(&app, &demo).await;
    let items = keys_of(&app, &space).await.len();
    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);

    // Runs of a few small steps each: the job comes back after each run.
    let small = Purge {
        batch: 40,
        steps_per_run: 3,
        ..Purge::default()
    };
    let worker = Worker::new(app.engine.clone()).handle(SPACE_PURGE, small);
    let mut runs = 0;
    while progress(&app, &space).await.phase != Phase::Items || progress(&app, &space).await.after.is_none() {
        let pass = pass(&app, &worker).await;
        assert_eq!(pass.later, 1, "a run stops after its steps and comes back");
        runs += 1;
        assert!(runs < 50, "the purge never reached the items");
    }
    let part_way = progress(&app, &space).await;
    assert!(part_way.removed.items > 0 && part_way.removed.blobs == 2 && part_way.removed.secret_values == 2);
    let left = keys_of(&app, &space).await.len();
    assert!(
        left > 0 && left < items,
        "part of the Space is removed: {left} of {items} left"
    );

    // One more run removes more, then "dies" before its progress is kept: the next run
    // starts from the step before and repeats it, removing what is already gone.
    pass(&app, &worker).await;
    assert!(progress(&app, &space).await.removed.items > part_way.removed.items);
    let mut rewound = tombstone(&app, &space).await.expect("a tombstone");
    let version = rewound.version;
    rewound.version += 1;
    rewound
        .body
        .insert("purge".into(), serde_json::to_value(&part_way).expect("progress"));
    app.engine
        .store()
        .put(rewound, Condition::Version(version))
        .await
        .expect("progress rewound");

    // A runner claims the job and is killed: its lease holds the job until it expires.
    let job = app
        .engine
        .store()
        .query(Query::partition(partition_of_purge(&app, &space).await))
        .await
        .expect("jobs")
        .items
        .into_iter()
        .find(|item| item.body.get("kind") == Some(&json!(SPACE_PURGE)))
        .expect("the purge job");
    let mut held = job.clone();
    held.version += 1;
    held.body.insert(
        "lease_until".into(),
        json!(space_http::fields::format_datetime(
            app.engine.now() + TimeDelta::seconds(60)
        )),
    );
    app.engine
        .store()
        .put(held, Condition::Version(job.version))
        .await
        .expect("the job is held");
    assert_eq!(pass(&app, &worker).await, Pass::default(), "held by a live lease");
    app.clock.advance(TimeDelta::seconds(61));

    drain(&app, &worker).await;
    assert!(tombstone(&app, &space).await.is_none(), "the purge finished");
    assert_eq!(traces_of(&app, &space).await, Vec::<String>::new());
    assert_eq!(keys_of(&app, &demo).await, demo_before, "the other Space is untouched");
    app.account(Method::GET, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(404);
}

/// The job partition the purge of `space` sits in.
async fn partition_of_purge(app: &TestApp, space: &str) -> String {
    for shard in 0..space_worker::SHARDS {
        let page = app
            .engine
            .store()
            .query(Query::partition(partition(shard)).limit(1000))
            .await
            .expect("jobs");
        if page
            .items
            .iter()
            .any(|item| item.body.get("kind") == Some(&json!(SPACE_PURGE)) && item.body["payload"]["space_id"] == space)
        {
            return partition(shard);
        }
    }
    panic!("no purge job for {space}");
}
