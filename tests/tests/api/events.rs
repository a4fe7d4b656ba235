//! The events feed, end to end on both backends: what changes show up, in which order and
//! shape, how it filters, pages and polls, and that no other key or Space reads it.

use crate::family_checks;

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};
use space_auth::Principal;
use space_http::events::event_write;
use space_http::listing::FEED_SCAN_LIMIT;
use space_http::resource::MAX_SCANNED_PER_PAGE;
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    changes_of_several_families_show_up_with_their_shape_and_actor,
    types_filter_takes_exact_types_and_wildcards,
    bad_parameters_are_422s_naming_them,
    resource_id_narrows_the_feed_to_one_resource,
    after_returns_what_happened_since_oldest_first,
    cursor_paging_has_no_duplicates_or_gaps,
    a_key_without_events_read_is_refused,
    other_spaces_never_see_our_events,
    the_feed_is_a_read_only_mcp_tool,
    updates_carry_the_previous_value_of_what_changed,
);

async fn updates_carry_the_previous_value_of_what_changed(app: TestApp) {
    let contact = app
        .contact(json!({"name": "Ada", "email": "ada@example.com", "company": "Analytical"}))
        .await;
    let id = contact["id"].as_str().expect("an id");
    app.space(Method::PATCH, &format!("/contacts/{id}"))
        .json(json!({"name": "Ada Lovelace", "company": null}))
        .send()
        .await
        .expect(200);
    let feed = app
        .space(Method::GET, &format!("/events?types=contact.*&resource_id={id}"))
        .send()
        .await
        .expect(200);
    let events = feed.body["data"].as_array().expect("events");
    let created = events.iter().find(|e| e["type"] == "contact.created").expect("created");
    assert!(created["data"].get("previous").is_none(), "{created}");
    let updated = events.iter().find(|e| e["type"] == "contact.updated").expect("updated");
    assert_eq!(updated["data"]["object"]["name"], "Ada Lovelace");
    // What changed, as it was; what did not change (email) and the bookkeeping are absent.
    assert_eq!(
        updated["data"]["previous"],
        json!({"name": "Ada", "company": "Analytical"}),
        "{updated}"
    );
}

/// The scan budget is the engine's and the same on both stores; writing and scanning
/// thousands of events takes moto over a minute, so this one runs on the embedded store.
mod scan_budget {
    mod embedded {
        use space_tests::{Backend, TestApp};

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_rare_type_past_the_scan_budget_still_fills_the_page() {
            super::super::a_rare_type_past_the_scan_budget_still_fills_the_page(
                TestApp::start(Backend::Embedded).await,
            )
            .await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_feed_call_stops_reading_at_its_limit_and_hands_out_a_cursor() {
            super::super::a_feed_call_stops_reading_at_its_limit_and_hands_out_a_cursor(
                TestApp::start(Backend::Embedded).await,
            )
            .await;
        }
    }
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// One page of the feed with the full-scope key.
async fn feed(app: &TestApp, query: &str) -> Value {
    app.space(Method::GET, &format!("/events{query}"))
        .send()
        .await
        .expect(200)
        .body
}

fn events(page: &Value) -> Vec<Value> {
    page["data"].as_array().cloned().expect("a data array")
}

fn types(page: &Value) -> Vec<String> {
    events(page)
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_owned())
        .collect()
}

fn ids(page: &Value) -> Vec<String> {
    events(page).iter().map(id).collect()
}

async fn contact(app: &TestApp, name: &str) -> String {
    id(&app.contact(json!({"name": name})).await)
}

/// The id of the Space's full-scope key, from the event its creation left.
async fn demo_key_id(app: &TestApp) -> String {
    let created = feed(app, "?types=key.created").await;
    let [event] = events(&created).try_into().expect("one key so far");
    assert_eq!(
        event["actor"],
        json!({"kind": "system", "key_id": null}),
        "set up by the platform"
    );
    event["resource"]["id"].as_str().expect("the key's id").to_owned()
}

async fn changes_of_several_families_show_up_with_their_shape_and_actor(app: TestApp) {
    let demo_key = demo_key_id(&app).await;
    let ada = app.contact(json!({"name": "Ada", "email": "ada@example.com"})).await;
    let task = app
        .space(Method::POST, "/tasks")
        .json(json!({"title": "Call Ada"}))
        .send()
        .await
        .expect(201)
        .body;
    let meeting = app
        .space(Method::POST, "/meet/meetings")
        .json(json!({"title": "Kickoff", "starts_at": "2099-03-02T10:00:00Z"}))
        .send()
        .await
        .expect(201)
        .body;
    app.space(Method::DELETE, &format!("/meet/meetings/{}", id(&meeting)))
        .send()
        .await
        .expect(204);
    // The owner mints a key, which then makes a change of its own.
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "importer", "scopes": ["contacts:write"]}))
        .send()
        .await
        .expect(201)
        .body;
    let importer = app
        .request(Method::POST, &format!("{SPACE_API}/contacts"))
        .key(minted["token"].as_str().expect("a token"))
        .json(json!({"name": "Grace"}))
        .send()
        .await
        .expect(201)
        .body;
    // A visitor submits a public form.
    let form = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Leads", "fields": [{"name": "email", "type": "email", "required": true}]}))
        .send()
        .await
        .expect(201)
        .body;
    let submission = app
        .request(Method::POST, &format!("/f/{}", id(&form)))
        .json(json!({"email": "lead@example.com"}))
        .send()
        .await
        .expect(201)
        .body;

    let page = feed(&app, "?limit=200").await;
    assert_eq!(page["next_cursor"], Value::Null);
    let listed = events(&page);
    let listed_ids = ids(&page);
    let mut newest_first = listed_ids.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(listed_ids, newest_first, "newest first");
    let find = |kind: &str, resource: &str| -> Value {
        listed
            .iter()
            .find(|e| e["type"] == kind && e["resource"]["id"] == resource)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} of {resource} in {:?}", types(&page)))
    };

    let created = find("contact.created", &id(&ada));
    assert!(id(&created).starts_with("evt_"), "{created}");
    assert_eq!(
        created,
        json!({
            "id": id(&created),
            "type": "contact.created",
            "created_at": ada["created_at"],
            "actor": {"kind": "key", "key_id": demo_key},
            "resource": {"type": "contact", "id": id(&ada)},
            "data": {"object": ada},
        })
    );
    let one = app
        .space(Method::GET, &format!("/events/{}", id(&created)))
        .send()
        .await
        .expect(200);
    assert_eq!(one.body, created, "an event reads the same alone and listed");

    assert_eq!(find("task.created", &id(&task))["data"]["object"], task);
    let deleted = find("meeting.deleted", &id(&meeting));
    assert_eq!(deleted["resource"]["type"], "meeting");
    assert_eq!(deleted["data"]["object"]["title"], "Kickoff", "the meeting as it was");
    let minting = find("key.created", &id(&minted));
    assert_eq!(minting["actor"]["kind"], "owner");
    let owner_key = minting["actor"]["key_id"].as_str().expect("the account key's id");
    assert!(owner_key.starts_with("key_") && owner_key != demo_key, "{minting}");
    assert_eq!(
        find("contact.created", &id(&importer))["actor"],
        json!({"kind": "key", "key_id": id(&minted)})
    );
    // The public answer carries no internal id: the submission is found by its type.
    assert!(submission.get("id").is_none(), "{submission}");
    let submission_id = listed
        .iter()
        .find(|e| e["type"] == "form.submission.created")
        .and_then(|e| e["resource"]["id"].as_str())
        .expect("the submission's event")
        .to_owned();
    let submitted = find("form.submission.created", &submission_id);
    assert_eq!(submitted["actor"], json!({"kind": "system", "key_id": null}));
    assert_eq!(
        submitted["resource"]["type"], "form.submission",
        "the type before its last dot"
    );

    let position = |kind: &str, resource: &str| {
        let event = id(&find(kind, resource));
        listed_ids.iter().position(|e| *e == event).expect("listed")
    };
    assert!(
        position("form.submission.created", &submission_id) < position("meeting.deleted", &id(&meeting))
            && position("meeting.deleted", &id(&meeting)) < position("meeting.created", &id(&meeting))
            && position("meeting.created", &id(&meeting)) < position("contact.created", &id(&ada)),
        "in the order the changes happened, newest first: {:?}",
        types(&page)
    );

    app.space(Method::GET, "/events/evt_01jdxxxxxxxxxxxxxxxxxxxxxx")
        .send()
        .await
        .expect(404);
    let unknown = app.space(Method::GET, "/events/con_nope").send().await.expect(404);
    assert_eq!(unknown.error_code(), "NOT_FOUND");
}

async fn types_filter_takes_exact_types_and_wildcards(app: TestApp) {
    let ada = contact(&app, "Ada").await;
    app.space(Method::PATCH, &format!("/contacts/{ada}"))
        .json(json!({"company": "Engines"}))
        .send()
        .await
        .expect(200);
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Call Ada"}))
        .send()
        .await
        .expect(201);
    app.space(Method::POST, "/meet/meetings")
        .json(json!({"title": "Kickoff", "starts_at": "2099-03-02T10:00:00Z"}))
        .send()
        .await
        .expect(201);

    assert_eq!(
        types(&feed(&app, "?types=contact.*").await),
        ["contact.updated", "contact.created"]
    );
    assert_eq!(types(&feed(&app, "?types=task.created").await), ["task.created"]);
    assert_eq!(
        types(&feed(&app, "?types=contact.created,%20meeting.*").await),
        ["meeting.created", "contact.created"]
    );
    assert_eq!(
        types(&feed(&app, "?types=contact.*,contact.created").await),
        ["contact.updated", "contact.created"],
        "an event matching two patterns is listed once"
    );
    let none = feed(&app, "?types=page.published").await;
    assert_eq!(none, json!({"data": [], "next_cursor": null}));
    // `contact.*` is about contacts only, not every type that starts with the letters.
    assert!(
        feed(&app, "?types=con.*").await["data"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

async fn bad_parameters_are_422s_naming_them(app: TestApp) {
    contact(&app, "Ada").await;
    for (query, field) in [
        ("?types=contact", "types"),
        ("?types=**", "types"),
        ("?types=Contact.created", "types"),
        ("?types=contact.*,,page.published", "types"),
        ("?after=yesterday", "after"),
        ("?after=con_01jdxxxxxxxxxxxxxxxxxxxxxx", "after"),
        ("?after=evt_01jdxxxxxxxxxxxxxxxxxxxxxx&order=desc", "order"),
        ("?limit=0", "limit"),
    ] {
        let refused = app
            .space(Method::GET, &format!("/events{query}"))
            .send()
            .await
            .expect(422);
        assert_eq!(refused.error_code(), "VALIDATION_FAILED");
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{query} names {field}: {}",
            refused.text
        );
    }
    // An empty parameter is one left out.
    let unfiltered = feed(&app, "").await;
    assert_eq!(feed(&app, "?types=&resource_id=&cursor=").await, unfiltered);
    let many = vec!["contact.*"; 21].join(",");
    app.space(Method::GET, &format!("/events?types={many}"))
        .send()
        .await
        .expect(422);
    let both = app
        .space(Method::GET, "/events?types=nope&after=nope")
        .send()
        .await
        .expect(422);
    let fields = both.body["error"]["fields"].as_object().expect("fields");
    assert!(
        fields.contains_key("types") && fields.contains_key("after"),
        "{}",
        both.text
    );
    let forged = app.space(Method::GET, "/events?cursor=not-a-cursor").send().await;
    assert_eq!(forged.status, 400, "{}", forged.text);
}

async fn resource_id_narrows_the_feed_to_one_resource(app: TestApp) {
    let ada = contact(&app, "Ada").await;
    let grace = contact(&app, "Grace").await;
    app.space(Method::PATCH, &format!("/contacts/{ada}"))
        .json(json!({"company": "Engines"}))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &format!("/contacts/{ada}"))
        .send()
        .await
        .expect(204);

    let about_ada = feed(&app, &format!("?resource_id={ada}")).await;
    assert_eq!(
        types(&about_ada),
        ["contact.deleted", "contact.updated", "contact.created"]
    );
    assert!(events(&about_ada).iter().all(|e| e["resource"]["id"] == ada.as_str()));
    let about_grace = feed(&app, &format!("?resource_id={grace}&types=contact.updated")).await;
    assert_eq!(about_grace, json!({"data": [], "next_cursor": null}));
    assert_eq!(
        types(&feed(&app, &format!("?resource_id={grace}")).await),
        ["contact.created"]
    );
}

async fn after_returns_what_happened_since_oldest_first(app: TestApp) {
    let first = contact(&app, "First").await;
    let seen = id(&events(&feed(&app, "?limit=1").await)[0]);
    let names = ["Second", "Third", "Fourth"];
    let mut created = Vec::new();
    for name in names {
        created.push(contact(&app, name).await);
    }

    let since = feed(&app, &format!("?after={seen}")).await;
    assert_eq!(since["next_cursor"], Value::Null);
    let subjects: Vec<String> = events(&since)
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(subjects, created, "oldest first");
    assert!(!subjects.contains(&first), "strictly after");

    // Page through the same polling window one event at a time.
    let mut polled = Vec::new();
    let mut page = feed(&app, &format!("?after={seen}&limit=1&order=asc")).await;
    loop {
        polled.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => page = feed(&app, &format!("?after={seen}&limit=1&cursor={cursor}")).await,
            None => break,
        }
    }
    assert_eq!(polled, ids(&since));

    // Caught up: nothing new is an empty page that carries no cursor.
    let last = ids(&since).last().cloned().expect("events since");
    assert_eq!(
        feed(&app, &format!("?after={last}")).await,
        json!({"data": [], "next_cursor": null})
    );
    let later = contact(&app, "Fifth").await;
    let news = feed(&app, &format!("?after={last}")).await;
    assert_eq!(types(&news), ["contact.created"]);
    assert_eq!(events(&news)[0]["resource"]["id"], later.as_str());
    // An id in upper case names the same event.
    let upper = format!("evt_{}", last["evt_".len()..].to_ascii_uppercase());
    assert_eq!(feed(&app, &format!("?after={upper}")).await, news);
    // After an id that never existed: whatever came later.
    assert_eq!(
        feed(&app, "?after=evt_7zzzzzzzzzzzzzzzzzzzzzzzzz").await,
        json!({"data": [], "next_cursor": null})
    );
}

async fn cursor_paging_has_no_duplicates_or_gaps(app: TestApp) {
    for n in 0..7 {
        let created = contact(&app, &format!("Contact {n}")).await;
        app.space(Method::PATCH, &format!("/contacts/{created}"))
            .json(json!({"company": "Co"}))
            .send()
            .await
            .expect(200);
    }
    for query in ["", "types=contact.updated&", "order=asc&"] {
        let whole = ids(&feed(&app, &format!("?{query}limit=200")).await);
        assert!(whole.len() >= 7, "{query}: {whole:?}");
        let mut paged = Vec::new();
        let mut pages = 0;
        let mut page = feed(&app, &format!("?{query}limit=3")).await;
        loop {
            pages += 1;
            let this = ids(&page);
            assert!(
                !this.is_empty() || page["next_cursor"].is_null(),
                "{query}: an empty page carries no cursor"
            );
            paged.extend(this);
            match page["next_cursor"].as_str() {
                Some(cursor) => page = feed(&app, &format!("?{query}limit=3&cursor={cursor}")).await,
                None => break,
            }
        }
        assert!(pages > 2, "{query}: more than one page ({pages})");
        assert_eq!(paged, whole, "{query}: every event once, in order");
        let unique: HashSet<&String> = paged.iter().collect();
        assert_eq!(unique.len(), paged.len(), "{query}: no duplicates");
    }
    // A cursor is for the order it was issued in.
    let newest = feed(&app, "?limit=2").await;
    let cursor = newest["next_cursor"].as_str().expect("a cursor");
    let mixed = app
        .space(Method::GET, &format!("/events?limit=2&order=asc&cursor={cursor}"))
        .send()
        .await;
    assert_eq!(mixed.status, 400, "{}", mixed.text);
}

async fn a_key_without_events_read_is_refused(app: TestApp) {
    contact(&app, "Ada").await;
    let event = id(&events(&feed(&app, "?limit=1").await)[0]);
    let params = [("id", event.as_str())];
    family_checks::scopes_are_enforced(&app, "events", &params, &HashMap::new()).await;
    let contacts_only = app.mint(&["contacts:read", "contacts:write"], None).await;
    for path in ["/events", &format!("/events/{event}")] {
        let refused = app
            .request(Method::GET, &format!("{SPACE_API}{path}"))
            .key(&contacts_only)
            .send()
            .await
            .expect(403);
        assert!(refused.text.contains("events:read"), "{}", refused.text);
    }
    let reader = app.mint(&["events:read"], None).await;
    let read = app
        .request(Method::GET, &format!("{SPACE_API}/events/{event}"))
        .key(&reader)
        .send()
        .await
        .expect(200);
    assert_eq!(id(&read.body), event);
}

async fn other_spaces_never_see_our_events(app: TestApp) {
    let ada = contact(&app, "Ada").await;
    let ours = feed(&app, "?limit=200").await;
    let event = id(&events(&ours)[0]);
    let params = [("id", event.as_str())];
    family_checks::other_spaces_get_404(&app, "events", &params, &HashMap::new()).await;

    let (other_space, other) = app.other_space().await;
    let get = |key: &str, path: &str| app.request(Method::GET, &format!("{SPACE_API}{path}")).key(key).send();
    let theirs = get(&other, "/events?limit=200").await.expect(200);
    assert!(
        events(&theirs.body)
            .iter()
            .all(|e| e["resource"]["id"] == other_space.as_str() || e["type"] == "key.created"),
        "the other Space lists only its own setup: {}",
        theirs.text
    );
    for ours in ids(&ours) {
        assert!(!theirs.text.contains(&ours), "{ours} leaked");
        let missing = get(&other, &format!("/events/{ours}")).await.expect(404);
        assert_eq!(missing.error_code(), "NOT_FOUND");
    }
    let about_ada = get(&other, &format!("/events?resource_id={ada}")).await.expect(200);
    assert_eq!(about_ada.body, json!({"data": [], "next_cursor": null}));
    let since = get(&other, &format!("/events?after={}", ids(&ours).last().expect("ours")))
        .await
        .expect(200);
    assert!(!since.text.contains(&ada), "{}", since.text);
    // Nor do we see theirs.
    for theirs in ids(&theirs.body) {
        app.space(Method::GET, &format!("/events/{theirs}"))
            .send()
            .await
            .expect(404);
    }
}

async fn the_feed_is_a_read_only_mcp_tool(app: TestApp) {
    let ada = contact(&app, "Ada").await;
    let reader = app.mint(&["events:read"], None).await;
    let rpc = |body: Value| app.mcp(&reader, "?mode=operations", body).send();
    let listed = rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await
        .expect(200);
    let tools = listed.body["result"]["tools"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ["events_list", "events_get"], "only what events:read allows");
    let list_tool = &tools[0];
    assert_eq!(list_tool["annotations"]["readOnlyHint"], true, "{list_tool}");
    for param in ["types", "resource_id", "after", "limit", "cursor"] {
        assert!(
            list_tool["inputSchema"]["properties"][param]["description"].is_string(),
            "{param} is described: {list_tool}"
        );
    }
    let called = rpc(json!({
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "events_list", "arguments": {"types": "contact.*"}}
    }))
    .await
    .expect(200);
    let result = &called.body["result"];
    assert_ne!(result["isError"], json!(true), "{}", called.text);
    assert_eq!(result["structuredContent"]["data"][0]["resource"]["id"], ada.as_str());
    let refused = rpc(json!({
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "events_list", "arguments": {"types": "contact"}}
    }))
    .await
    .expect(200);
    assert_eq!(refused.body["result"]["isError"], json!(true), "{}", refused.text);
    assert!(refused.text.contains("types"), "{}", refused.text);
}

/// A filter that matches only events older than one page's scan budget still answers them
/// on the first page: a page is never empty with a cursor, which a client would take for
/// the end of the feed.
/// One `page.published` event, then `newer` `contact.updated` ones, written straight to the
/// store.
async fn a_rare_event_under(app: &TestApp, newer: usize) {
    let space = app.demo.space_id.clone();
    let visitor = Principal::visitor().in_space(&space);
    let now = space_store::Clock::now(app.clock.as_ref());
    let write = |kind: &str, n: usize| event_write(&space, kind, &format!("con_{n}"), json!({}), &visitor, now);
    let store = app.engine.store();
    store
        .transact(vec![write("page.published", 0)])
        .await
        .expect("the rare event");
    let newer: Vec<_> = (1..=newer).map(|n| write("contact.updated", n)).collect();
    for batch in newer.chunks(100) {
        store.transact(batch.to_vec()).await.expect("a batch of events");
    }
}

async fn a_rare_type_past_the_scan_budget_still_fills_the_page(app: TestApp) {
    // A page of the feed scans this many before it stops.
    a_rare_event_under(&app, MAX_SCANNED_PER_PAGE + 50).await;

    let rare = feed(&app, "?types=page.published&limit=200").await;
    assert_eq!(types(&rare), ["page.published"]);
    assert_eq!(rare["next_cursor"], Value::Null);
    assert_eq!(
        feed(&app, "?types=nothing.matches&limit=200").await,
        json!({"data": [], "next_cursor": null})
    );
    let newest = id(&events(&feed(&app, "?limit=1").await)[0]);
    assert_eq!(
        feed(&app, &format!("?after={newest}&types=page.published&limit=200")).await,
        json!({"data": [], "next_cursor": null})
    );
}

/// A filter that matches nothing in a very long feed does not read the whole feed in one
/// call: past [`FEED_SCAN_LIMIT`] items it answers an empty page with a cursor, and the
/// cursor goes on to the match.
async fn a_feed_call_stops_reading_at_its_limit_and_hands_out_a_cursor(app: TestApp) {
    a_rare_event_under(&app, FEED_SCAN_LIMIT + 50).await;
    let first = feed(&app, "?types=page.published&limit=10").await;
    assert_eq!(first["data"], json!([]));
    let cursor = first["next_cursor"].as_str().expect("a cursor to go on with");
    let rest = feed(&app, &format!("?types=page.published&limit=10&cursor={cursor}")).await;
    assert_eq!(types(&rest), ["page.published"]);
    assert_eq!(rest["next_cursor"], Value::Null);
}
