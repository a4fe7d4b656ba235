//! The Space's tags: one set shared by contacts and inbox threads, listed with their usage
//! from counters kept with the items, renamed and deleted everywhere by a resumable job.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

use crate::inbox::{connect, inject};

on_both_backends!(
    tags_are_listed_with_colour_and_exact_usage,
    renames_reach_contacts_and_threads_a_page_at_a_time,
    deleted_tags_leave_every_contact_and_thread,
    fifty_tags_fit_and_their_index_and_counts_follow_exactly,
);

async fn tags(app: &TestApp) -> Vec<Value> {
    app.space(Method::GET, "/tags").send().await.expect(200).body["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn tag(app: &TestApp, name: &str) -> Value {
    tags(app)
        .await
        .into_iter()
        .find(|tag| tag["name"] == name)
        .unwrap_or(Value::Null)
}

/// `count` contacts tagged `vip` (and every other one `lead`), and a thread tagged `vip`.
async fn setup(app: &TestApp, count: usize) -> String {
    let rows: Vec<Value> = (0..count)
        .map(|n| {
            let tags = if n % 2 == 0 {
                json!(["vip", "lead"])
            } else {
                json!(["vip"])
            };
            json!({"name": format!("Person {n}"), "tags": tags})
        })
        .collect();
    app.space(Method::POST, "/contacts/import")
        .json(json!({"contacts": rows}))
        .send()
        .await
        .expect(200);
    let (channel, _) = connect(app, "sms", "+12015550100").await;
    let received = inject(app, &channel, "+12015550177", "Hello").await;
    let thread = received["thread"]["id"].as_str().expect("a thread").to_owned();
    app.space(Method::POST, &format!("/inbox/threads/{thread}/tags"))
        .json(json!({"tags": ["vip"]}))
        .send()
        .await
        .expect(200);
    thread
}

/// A worker pass a moment later: a job that ran a page runs its next one.
async fn next_run(app: &TestApp) {
    app.clock.advance(TimeDelta::seconds(1));
    app.worker_pass().await;
}

async fn contacts_tagged(app: &TestApp, name: &str) -> usize {
    let page = app
        .space(Method::GET, &format!("/contacts?tag={name}&limit=200"))
        .send()
        .await
        .expect(200);
    page.body["data"].as_array().map_or(0, Vec::len)
}

async fn tags_are_listed_with_colour_and_exact_usage(app: TestApp) {
    let thread = setup(&app, 10).await;
    let created = app
        .space(Method::POST, "/tags")
        .json(json!({"name": "vip", "color": "#FF8800"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.body["color"], "#ff8800");
    app.space(Method::POST, "/tags")
        .json(json!({"name": "vip"}))
        .send()
        .await
        .expect(409);
    for bad in [
        json!({"name": "x", "color": "orange"}),
        json!({"color": "#000000"}),
        json!({"name": 3}),
    ] {
        app.space(Method::POST, "/tags").json(bad).send().await.expect(422);
    }
    app.space(Method::POST, "/tags")
        .json(json!({"name": "prospect", "color": "#00aa00"}))
        .send()
        .await
        .expect(201);
    let vip = tag(&app, "vip").await;
    assert_eq!(
        (vip["contacts"].as_u64(), vip["threads"].as_u64()),
        (Some(10), Some(1)),
        "{vip}"
    );
    assert_eq!(vip["registered"], true);
    let lead = tag(&app, "lead").await;
    assert_eq!(lead["contacts"], 5, "a tag only in use is listed: {lead}");
    assert_eq!(lead["registered"], false);
    assert_eq!(lead["color"], Value::Null);
    assert_eq!(
        tag(&app, "prospect").await["contacts"],
        0,
        "a registered tag nothing carries"
    );

    // Usage follows every change of a contact's or thread's tags.
    let contacts = app
        .space(Method::GET, "/contacts?tag=lead&limit=200")
        .send()
        .await
        .expect(200);
    let first = contacts.body["data"][0]["id"].as_str().expect("a contact").to_owned();
    app.space(Method::DELETE, &format!("/contacts/{first}/tags/lead"))
        .send()
        .await
        .expect(204);
    let second = contacts.body["data"][1]["id"].as_str().expect("a contact").to_owned();
    app.space(Method::DELETE, &format!("/contacts/{second}"))
        .send()
        .await
        .expect(204);
    app.space(Method::PATCH, &format!("/inbox/threads/{thread}"))
        .json(json!({"tags": ["lead"]}))
        .send()
        .await
        .expect(200);
    let lead = tag(&app, "lead").await;
    assert_eq!(
        (lead["contacts"].as_u64(), lead["threads"].as_u64()),
        (Some(3), Some(1)),
        "{lead}"
    );
    let vip = tag(&app, "vip").await;
    assert_eq!(
        (vip["contacts"].as_u64(), vip["threads"].as_u64()),
        (Some(9), Some(0)),
        "{vip}"
    );
    let threads = app
        .space(Method::GET, "/inbox/threads?tag=lead")
        .send()
        .await
        .expect(200);
    assert_eq!(threads.body["data"][0]["id"], thread.as_str());
    app.space(Method::PATCH, "/tags/nothing")
        .json(json!({"color": "#111111"}))
        .send()
        .await
        .expect(404);
    let recoloured = app
        .space(Method::PATCH, "/tags/lead")
        .json(json!({"color": "#123456"}))
        .send()
        .await
        .expect(200);
    assert_eq!(recoloured.body["color"], "#123456");
    assert_eq!(tag(&app, "lead").await["registered"], true);
}

async fn renames_reach_contacts_and_threads_a_page_at_a_time(app: TestApp) {
    let count = messaging::tags::RETAG_PAGE * 2 + 20;
    let thread = setup(&app, count).await;
    app.space(Method::POST, "/tags")
        .json(json!({"name": "vip", "color": "#aa0000"}))
        .send()
        .await
        .expect(201);
    app.space(Method::PATCH, "/tags/vip")
        .json(json!({"name": "lead"}))
        .send()
        .await
        .expect(409);
    let renaming = app
        .space(Method::PATCH, "/tags/vip")
        .json(json!({"name": "gold"}))
        .send()
        .await
        .expect(202);
    assert_eq!(renaming.body["status"], "renaming");
    app.space(Method::DELETE, "/tags/vip").send().await.expect(409);
    // One pass is one run of the job: one page done, the rest waiting for the next run.
    app.worker_pass().await;
    let halfway = tag(&app, "vip").await;
    assert_eq!(halfway["status"], "renaming");
    assert_eq!(halfway["contacts"], count - messaging::tags::RETAG_PAGE, "{halfway}");
    assert_eq!(contacts_tagged(&app, "gold").await, messaging::tags::RETAG_PAGE);
    for _ in 0..6 {
        next_run(&app).await;
    }
    assert_eq!(tag(&app, "vip").await, Value::Null, "the old name is gone");
    let gold = tag(&app, "gold").await;
    assert_eq!(
        (gold["contacts"].as_u64(), gold["threads"].as_u64()),
        (Some(count as u64), Some(1)),
        "{gold}"
    );
    assert_eq!(gold["color"], "#aa0000", "the colour goes with the name");
    assert_eq!(gold["status"], "active");
    assert_eq!(contacts_tagged(&app, "gold").await, count);
    assert_eq!(contacts_tagged(&app, "vip").await, 0);
    let shown = app
        .space(Method::GET, &format!("/inbox/threads/{thread}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["tags"], json!(["gold"]));
    assert_eq!(tag(&app, "lead").await["contacts"], count / 2, "other tags untouched");
}

async fn deleted_tags_leave_every_contact_and_thread(app: TestApp) {
    let thread = setup(&app, 8).await;
    // An entry left behind for a contact that no longer carries the tag (a late write):
    // the walk removes it and leaves the contact as it is, instead of rewriting it forever.
    let untagged = app.contact(json!({"name": "Not a VIP"})).await;
    let untagged = untagged["id"].as_str().expect("an id").to_owned();
    let scope = space_http::keys::index_scope("contacts", None);
    let stale = space_http::keys::lookup_entry(&app.demo.space_id, &scope, "tags", "vip", &untagged);
    app.engine
        .store()
        .put(
            space_store::Item::new(stale.pk.clone(), stale.sk.clone(), serde_json::Map::new()),
            space_store::Condition::None,
        )
        .await
        .expect("a stale entry");
    let deleting = app.space(Method::DELETE, "/tags/vip").send().await.expect(202);
    assert_eq!(deleting.body["status"], "deleting");
    for _ in 0..3 {
        next_run(&app).await;
    }
    assert_eq!(
        app.engine.store().get(&stale.pk, &stale.sk).await.expect("a read"),
        None,
        "the stale entry is gone"
    );
    let shown = app
        .space(Method::GET, &format!("/contacts/{untagged}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        shown.body["version"], 1,
        "the contact was not rewritten: {}",
        shown.text
    );
    assert_eq!(tag(&app, "vip").await, Value::Null);
    assert_eq!(contacts_tagged(&app, "vip").await, 0);
    assert_eq!(contacts_tagged(&app, "lead").await, 4);
    let shown = app
        .space(Method::GET, &format!("/inbox/threads/{thread}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["tags"], json!([]));
    app.space(Method::DELETE, "/tags/vip").send().await.expect(404);
    let events = app.event_types().await;
    assert!(events.iter().any(|t| t == "tag.deleted"), "{events:?}");
}

async fn fifty_tags_fit_and_their_index_and_counts_follow_exactly(app: TestApp) {
    let max = space_http::fields::MAX_TAGS;
    let named = |prefix: &str| -> Vec<String> { (0..max).map(|n| format!("{prefix}{n:02}")).collect() };
    let (first, second) = (named("a"), named("b"));
    let words = "Ada Lovelace Byron King Countess Analyst Engine Notes";
    let created = app
        .space(Method::POST, "/contacts")
        .json(json!({"name": words, "tags": first}))
        .send()
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("an id").to_owned();
    // The request finished its tags itself: no worker pass needed.
    assert_eq!(contacts_tagged(&app, "a07").await, 1);
    assert_eq!(tag(&app, "a49").await["contacts"], 1);

    // Every tag swapped for another, three times: the index holds the item under its tags
    // as they are, and each count is exact.
    for tags in [&second, &first, &second] {
        app.space(Method::PUT, &format!("/contacts/{id}"))
            .json(json!({"name": format!("{words} again"), "tags": tags}))
            .send()
            .await
            .expect(200);
    }
    assert_eq!(contacts_tagged(&app, "a07").await, 0);
    assert_eq!(contacts_tagged(&app, "b07").await, 1);
    // A tag nothing carries is not listed.
    assert_eq!(tag(&app, "a49").await, Value::Null);
    assert_eq!(tag(&app, "b49").await["contacts"], 1);
    // The four changes' jobs run after the requests finished them: they count nothing
    // again, and the entries stay as the item stands.
    app.worker_pass().await;
    assert_eq!(tag(&app, "b00").await["contacts"], 1);
    assert_eq!(tag(&app, "a00").await, Value::Null);
    assert_eq!(contacts_tagged(&app, "b07").await, 1);
    assert_eq!(contacts_tagged(&app, "a07").await, 0);

    // Deleted with all its tags: nothing is left tagged.
    app.space(Method::DELETE, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(204);
    assert_eq!(contacts_tagged(&app, "b07").await, 0);
    assert_eq!(tag(&app, "b07").await, Value::Null);

    // A thread takes fifty tags too.
    let (channel, _) = connect(&app, "sms", "+12015550100").await;
    let received = inject(&app, &channel, "+12015550177", "Hello").await;
    let thread = received["thread"]["id"].as_str().expect("a thread").to_owned();
    app.space(Method::PATCH, &format!("/inbox/threads/{thread}"))
        .json(json!({"tags": first}))
        .send()
        .await
        .expect(200);
    assert_eq!(tag(&app, "a01").await["threads"], 1);
}
