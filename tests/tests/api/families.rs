//! Contacts, tasks, secrets and the account API, end to end on both backends.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use space_store::Clock;
use space_tests::counting::CountingStore;
use space_tests::{ACCOUNT_API, Backend, SPACE_API, TestApp, forbid_in_responses, on_both_backends};

on_both_backends!(
    contacts_search_tags_and_notes,
    import_reports_bad_rows_and_writes_good_ones_whole,
    overdue_open_tasks_take_one_list_and_one_patch_each,
    secret_values_go_in_and_never_come_out,
    spaces_and_keys_through_the_account_api,
    deleting_a_space_stops_its_keys,
    every_email_field_takes_only_a_plain_address,
);

async fn contacts_search_tags_and_notes(app: TestApp) {
    let ada = app
        .contact(json!({"name": "Ada Lovelace", "email": "ADA@example.com", "company": "Engines"}))
        .await;
    app.contact(json!({"name": "Grace Hopper", "phone": "+1 (415) 555-0199"}))
        .await;
    assert_eq!(ada["email"], "ada@example.com");
    let id = ada["id"].as_str().unwrap();
    assert!(id.starts_with("con_"));

    let found = app.space(Method::GET, "/contacts?q=lovel").send().await.expect(200);
    assert_eq!(found.body["data"].as_array().unwrap().len(), 1);
    let by_phone = app
        .space(Method::GET, "/contacts?q=4155550199")
        .send()
        .await
        .expect(200);
    assert_eq!(by_phone.body["data"][0]["name"], "Grace Hopper");
    app.space(Method::POST, "/contacts")
        .json(json!({"company": "Nameless"}))
        .send()
        .await
        .expect(422);

    let tags = app
        .space(Method::POST, &format!("/contacts/{id}/tags"))
        .json(json!({"tags": ["vip", " vip ", "investor"]}))
        .send()
        .await
        .expect(200);
    assert_eq!(tags.body["data"], json!(["vip", "investor"]));
    let vips = app.space(Method::GET, "/contacts?tag=vip").send().await.expect(200);
    assert_eq!(vips.body["data"].as_array().unwrap().len(), 1);
    app.space(Method::DELETE, &format!("/contacts/{id}/tags/vip"))
        .send()
        .await
        .expect(204);
    app.space(Method::DELETE, &format!("/contacts/{id}/tags/vip"))
        .send()
        .await
        .expect(404);
    let listed = app
        .space(Method::GET, &format!("/contacts/{id}/tags"))
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"], json!(["investor"]));

    let note = app
        .space(Method::POST, &format!("/contacts/{id}/notes"))
        .json(json!({"body": "Prefers email"}))
        .send()
        .await
        .expect(201);
    let note_id = note.body["id"].as_str().unwrap();
    let edited = app
        .space(Method::PATCH, &format!("/contacts/{id}/notes/{note_id}"))
        .json(json!({"body": "Prefers email, mornings"}))
        .send()
        .await
        .expect(200);
    assert_eq!(edited.body["version"], 2);
    let notes = app
        .space(Method::GET, &format!("/contacts/{id}/notes"))
        .send()
        .await
        .expect(200);
    assert_eq!(notes.body["data"].as_array().unwrap().len(), 1);
    app.space(Method::DELETE, &format!("/contacts/{id}/notes/{note_id}"))
        .send()
        .await
        .expect(204);
    app.space(Method::POST, "/contacts/con_01jdxxxxxxxxxxxxxxxxxxxxxx/notes")
        .json(json!({"body": "x"}))
        .send()
        .await
        .expect(404);
}

async fn import_reports_bad_rows_and_writes_good_ones_whole(app: TestApp) {
    let rows = json!({"contacts": [
        {"name": "Good One", "email": "one@example.com"},
        {"name": "Bad Email", "email": "nope"},
        {"company": "No handle"},
        {"name": "Good Two", "tags": ["lead"]},
        {"name": "Unknown field", "favourite_colour": "blue"}
    ]});
    let response = app
        .space(Method::POST, "/contacts/import")
        .json(rows)
        .send()
        .await
        .expect(200);
    assert_eq!(response.body["created"], 2);
    assert_eq!(response.body["failed"], 3);
    let results = response.body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["created", "invalid", "invalid", "created", "invalid"]);
    assert!(results[1]["errors"]["email"][0].is_string());
    assert!(results[4]["errors"]["favourite_colour"][0].is_string());
    let listed = app.space(Method::GET, "/contacts?order=asc").send().await.expect(200);
    let names: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Good One", "Good Two"]);
    // An imported contact is found by its email at once, by its words once their job ran.
    let by_email = app
        .space(Method::GET, "/contacts?email=one@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(by_email.body["data"][0]["name"], "Good One");
    app.worker_pass().await;
    let by_word = app.space(Method::GET, "/contacts?q=good").send().await.expect(200);
    assert_eq!(
        by_word.body["data"].as_array().map(Vec::len),
        Some(2),
        "{}",
        by_word.text
    );
    // Every created row has its event.
    assert_eq!(
        app.event_types()
            .await
            .iter()
            .filter(|t| *t == "contact.created")
            .count(),
        2
    );
    // Over the limit is refused whole.
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"name": format!("P{i}")})).collect();
    app.space(Method::POST, "/contacts/import")
        .json(json!({"contacts": too_many}))
        .send()
        .await
        .expect(422);
}

async fn overdue_open_tasks_take_one_list_and_one_patch_each(app: TestApp) {
    let now = app.clock.now();
    let at = |hours: i64| space_http::fields::format_datetime(now + chrono::TimeDelta::hours(hours));
    for (title, due, status) in [
        ("Late invoice", at(-48), "open"),
        ("Late reply", at(-1), "in_progress"),
        ("Done already", at(-5), "done"),
        ("Next week", at(24 * 7), "open"),
    ] {
        let task = app
            .space(Method::POST, "/tasks")
            .json(json!({"title": title, "due_at": due, "status": status}))
            .send()
            .await
            .expect(201);
        assert_eq!(task.body["priority"], "normal");
    }
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "No due date"}))
        .send()
        .await
        .expect(201);

    let overdue = app.space(Method::GET, "/tasks?overdue=true").send().await.expect(200);
    let titles: Vec<&str> = overdue.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    for task in overdue.body["data"].as_array().unwrap() {
        let id = task["id"].as_str().unwrap();
        let patched = app
            .space(Method::PATCH, &format!("/tasks/{id}"))
            .json(json!({"priority": "high"}))
            .send()
            .await
            .expect(200);
        assert_eq!(patched.body["priority"], "high");
    }
    let open_overdue = app
        .space(Method::GET, "/tasks?status=open&overdue=true")
        .send()
        .await
        .expect(200);
    assert_eq!(open_overdue.body["data"][0]["title"], "Late invoice");
    let high = app.space(Method::GET, "/tasks?priority=high").send().await.expect(200);
    assert_eq!(high.body["data"].as_array().unwrap().len(), 2);
    let window = app
        .space(
            Method::GET,
            &format!("/tasks?due_after={}&due_before={}", at(-6), at(1)),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        window.body["data"].as_array().unwrap().len(),
        2,
        "Late reply and Done already"
    );
    let response = app
        .space(Method::GET, "/tasks?status=someday&due_before=tomorrow")
        .send()
        .await
        .expect(422);
    assert!(response.body["error"]["fields"]["status"].is_array());
    assert!(response.body["error"]["fields"]["due_before"].is_array());
}

async fn secret_values_go_in_and_never_come_out(app: TestApp) {
    let value = format!("sk_test_{}", space_http::ids::new_id("v"));
    forbid_in_responses(&value);
    let space = app.demo.space_id.clone();
    app.account(Method::PUT, &format!("/spaces/{space}/secrets/STRIPE_KEY"))
        .json(json!({"value": value}))
        .send()
        .await
        .expect(204);
    assert_eq!(
        app.vault.peek(&space, "STRIPE_KEY").as_deref(),
        Some(value.as_str()),
        "the value reached the vault"
    );
    let listed = app.space(Method::GET, "/secrets").send().await.expect(200);
    assert_eq!(listed.body["data"][0]["name"], "STRIPE_KEY");
    let meta = app.space(Method::GET, "/secrets/STRIPE_KEY").send().await.expect(200);
    assert!(meta.body.get("value").is_none());
    let names = app
        .account(Method::GET, &format!("/spaces/{space}/secrets"))
        .send()
        .await
        .expect(200);
    assert_eq!(names.body["data"].as_array().unwrap().len(), 1);
    // Overwrite, bad names, and delete.
    app.account(Method::PUT, &format!("/spaces/{space}/secrets/STRIPE_KEY"))
        .json(json!({"value": format!("{value}-2")}))
        .send()
        .await
        .expect(204);
    app.account(Method::PUT, &format!("/spaces/{space}/secrets/bad%20name"))
        .json(json!({"value": "x"}))
        .send()
        .await
        .expect(422);
    app.account(Method::PUT, &format!("/spaces/{space}/secrets/EMPTY"))
        .json(json!({"value": ""}))
        .send()
        .await
        .expect(422);
    // The space key cannot reach the account API's secret routes.
    app.request(Method::PUT, &format!("{ACCOUNT_API}/spaces/{space}/secrets/STRIPE_KEY"))
        .key(app.key())
        .json(json!({"value": "hijack"}))
        .send()
        .await
        .expect(401);
    app.account(Method::DELETE, &format!("/spaces/{space}/secrets/STRIPE_KEY"))
        .send()
        .await
        .expect(204);
    assert_eq!(app.vault.peek(&space, "STRIPE_KEY"), None);
    app.space(Method::GET, "/secrets/STRIPE_KEY").send().await.expect(404);
    // Events name the secret, never the value (checked by the client on every response,
    // and here on the stored feed).
    for event in app.event_types().await {
        assert!(!event.contains(&value));
    }
}

async fn spaces_and_keys_through_the_account_api(app: TestApp) {
    let created = app
        .account(Method::POST, "/spaces")
        .json(json!({"name": "Bakery"}))
        .send()
        .await
        .expect(201);
    let space = created.body["id"].as_str().unwrap().to_owned();
    assert!(space.starts_with("spc_"));
    let renamed = app
        .account(Method::PUT, &format!("/spaces/{space}"))
        .json(json!({"name": "Bakery & Co"}))
        .send()
        .await
        .expect(200);
    assert_eq!(renamed.body["name"], "Bakery & Co");
    let spaces = app.account(Method::GET, "/spaces").send().await.expect(200);
    assert_eq!(spaces.body["data"].as_array().unwrap().len(), 2);

    let minted = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "Claude", "scopes": ["contacts:read", "tasks:write"], "expires_at": null, "rate_limit_per_minute": 30}))
        .send()
        .await
        .expect(201);
    let mut fields: Vec<&str> = minted.body.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "approval_required",
            "created_at",
            "expires_at",
            "id",
            "limits",
            "name",
            "prefix",
            "rate_limit_per_minute",
            "read_only",
            "scopes",
            "token",
            "toolsets"
        ]
    );
    let token = minted.body["token"].as_str().unwrap();
    assert!(token.starts_with("wks_live_"));
    assert!(token.starts_with(minted.body["prefix"].as_str().unwrap().trim_end_matches('…')));
    let keys = app
        .account(Method::GET, &format!("/spaces/{space}/keys"))
        .send()
        .await
        .expect(200);
    assert!(!keys.text.contains(token), "a key list never shows a token");
    assert!(keys.body["data"][0].get("token_hash").is_none());
    assert_eq!(keys.body["data"][0]["last_used_at"], Value::Null);
    let limited = app
        .request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(token)
        .send()
        .await
        .expect(200);
    assert_eq!(limited.header("ratelimit-policy"), Some("\"per-key\";q=30;w=60"));
    // last_used_at is recorded off the request path.
    let mut recorded = Value::Null;
    for _ in 0..50 {
        let keys = app
            .account(Method::GET, &format!("/spaces/{space}/keys"))
            .send()
            .await
            .expect(200);
        recorded = keys.body["data"][0]["last_used_at"].clone();
        if recorded.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(recorded.is_string(), "last_used_at was never recorded");

    let refused = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "bad", "scopes": ["contacts:read", "wallet:write", "money:read", "tasks"]}))
        .send()
        .await
        .expect(422);
    assert_eq!(refused.body["error"]["fields"]["scopes"].as_array().unwrap().len(), 3);
    app.account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "x", "scopes": []}))
        .send()
        .await
        .expect(422);
    app.account(Method::POST, "/spaces/spc_01jdxxxxxxxxxxxxxxxxxxxxxx/keys")
        .json(json!({"name": "x", "scopes": ["contacts:read"]}))
        .send()
        .await
        .expect(404);
}

/// Addresses RFC 5322 allows that break the formats addresses travel in (iCal, mail
/// headers, CSV): display names, quoted local parts, comments, separators, line breaks.
const HOSTILE_EMAILS: &[&str] = &[
    "\"a;b:c\"@example.com",
    "\"ada\"@example.com",
    "Ada <ada@example.com>",
    "<ada@example.com>",
    "ada@example.com (Ada)",
    "ada,grace@example.com",
    "ada;x@example.com",
    "ada@example.com\r\nBcc: eve@example.com",
    "ada@[127.0.0.1]",
    "ada@localhost",
];

/// Every field that holds an email address (contacts, calendar attendees, booking
/// contacts on the API and on the public page, table email columns, form submissions)
/// refuses the same addresses with the 422 envelope naming the field, and stores nothing.
async fn every_email_field_takes_only_a_plain_address(app: TestApp) {
    let type_id = app
        .space(Method::POST, "/booking/appointment-types")
        .json(json!({"name": "Call", "duration_minutes": 30}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = app
        .space(Method::POST, "/booking/pages")
        .json(json!({"name": "Book", "appointment_type_ids": [type_id]}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let table = app
        .space(Method::POST, "/tables")
        .json(json!({"name": "People", "columns": [{"name": "owner", "type": "email"}]}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Leads", "fields": [{"name": "email", "type": "email", "required": true}]}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let start = "2099-03-02T10:00:00Z";
    let events_before = app.event_types().await.len();
    for (n, hostile) in HOSTILE_EMAILS.iter().enumerate() {
        let contact = json!({"email": hostile});
        let cases = [
            (
                format!("{SPACE_API}/contacts"),
                json!({"name": "Ada", "email": hostile}),
                "email",
                true,
            ),
            (
                format!("{SPACE_API}/calendar/events"),
                json!({"title": "Call", "start": start, "end": "2099-03-02T11:00:00Z", "attendees": [hostile]}),
                "attendees",
                true,
            ),
            (
                format!("{SPACE_API}/booking/appointments"),
                json!({"appointment_type_id": type_id, "start": start, "contact": contact}),
                "contact",
                true,
            ),
            (
                format!("/b/{page}/book"),
                json!({"start": start, "contact": contact}),
                "contact",
                false,
            ),
            (
                format!("{SPACE_API}/tables/{table}/records"),
                json!({"owner": hostile}),
                "owner",
                true,
            ),
            (format!("/f/{form}"), json!({"email": hostile}), "email", false),
        ];
        for (path, body, field, keyed) in cases {
            let mut request = app
                .request(Method::POST, &path)
                .header("x-forwarded-for", &format!("198.51.100.{n}"))
                .json(body);
            if keyed {
                request = request.key(app.key());
            }
            let refused = request.send().await.expect(422);
            assert_eq!(refused.error_code(), "VALIDATION_FAILED");
            assert!(
                refused.body["error"]["fields"][field].is_array(),
                "{path} with {hostile:?}: {}",
                refused.text
            );
        }
        // Filters by email refuse them too, rather than searching for them.
        for path in [
            "/contacts?email=",
            "/calendar/events?attendee=",
            "/booking/appointments?email=",
        ] {
            let encoded: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
            app.space(Method::GET, &format!("{path}{encoded}"))
                .send()
                .await
                .expect(422);
        }
    }
    assert_eq!(app.event_types().await.len(), events_before, "nothing was written");
}

async fn deleting_a_space_stops_its_keys(app: TestApp) {
    let (space, key) = app.other_space().await;
    let reader = app.mint_on(&space, &["contacts:read"], None).await;
    app.request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(&key)
        .send()
        .await
        .expect(200);
    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);
    for token in [&key, &reader] {
        app.request(Method::GET, &format!("{SPACE_API}/contacts"))
            .key(token)
            .send()
            .await
            .expect(401);
    }
    // The owner sees it deleting until the worker has purged it, then not at all.
    let shown = app
        .account(Method::GET, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["status"], "deleting");
    let worker = spacectl::worker(app.engine.clone());
    while worker.run_due().await.expect("a pass").later > 0 {
        app.clock.advance(chrono::TimeDelta::milliseconds(1));
    }
    app.account(Method::GET, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(404);
    // The demo Space is untouched.
    app.space(Method::GET, "/contacts").send().await.expect(200);
}

/// An authenticated read costs two sequential store round trips: the key lookup and the
/// rate counter together, then the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_get_takes_two_sequential_store_round_trips() {
    let store = Arc::new(CountingStore::new(Arc::new(
        space_store::embedded::EmbeddedStore::in_memory(),
    )));
    let clock = Arc::new(space_store::ManualClock::new(chrono::Utc::now()));
    let app = TestApp::serve(store.clone(), clock, tempfile::tempdir().unwrap(), Backend::Embedded).await;
    let contact = app.contact(json!({"name": "Ada"})).await;
    let id = contact["id"].as_str().unwrap();
    // Let the background last_used_at write of the first request settle.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    store.reset();
    app.space(Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(store.calls(), 3, "lookup, counter, item");
    assert_eq!(store.waves(), 2, "lookup and counter in parallel, then the item");
    store.reset();
    app.request(Method::GET, &format!("{SPACE_API}/contacts/{id}"))
        .key("wks_live_typo")
        .send()
        .await
        .expect(401);
    assert_eq!(store.calls(), 0, "a malformed key costs no store call");
}

#[tokio::test]
async fn the_openapi_document_covers_every_operation() {
    let spec = spacectl::openapi();
    let operations = spacectl::operations();
    for operation in &operations {
        let entry = &spec["paths"][operation.full_path()][operation.method.as_str().to_ascii_lowercase()];
        assert_eq!(entry["operationId"], operation.name.as_str());
    }
    let names: std::collections::HashSet<&str> = operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names.len(), operations.len(), "operation names are unique");
    assert_eq!(
        spec["paths"]["/functions/v1/space-api/contacts/{id}"]["patch"]["x-required-scope"],
        "contacts:write"
    );
}

/// A store that is down answers 503 with `Retry-After` in the envelope, never 500, and
/// a write that failed left nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_is_503_and_loses_nothing() {
    let store = Arc::new(space_tests::faults::FaultyStore::new(Arc::new(
        space_store::embedded::EmbeddedStore::in_memory(),
    )));
    let clock = Arc::new(space_store::ManualClock::new(chrono::Utc::now()));
    let app = TestApp::serve(store.clone(), clock, tempfile::tempdir().unwrap(), Backend::Embedded).await;
    let events_before = app.event_types().await.len();

    store.fail_writes(true);
    let response = app
        .space(Method::POST, "/contacts")
        .json(json!({"name": "Ada"}))
        .send()
        .await
        .expect(503);
    assert_eq!(response.error_code(), "UNAVAILABLE");
    assert!(response.header("retry-after").is_some());

    store.fail_writes(false);
    store.fail_reads(true);
    app.space(Method::GET, "/contacts").send().await.expect(503);
    store.fail_reads(false);

    let listed = app.space(Method::GET, "/contacts").send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]), "no item from the failed write");
    assert_eq!(app.event_types().await.len(), events_before, "and no event");
}

/// With store calls that take time, a duplicate arriving while the first request runs
/// is told to wait (409) instead of creating a second task.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_duplicate_idempotency_key_is_409() {
    let store = Arc::new(CountingStore::new(Arc::new(
        space_store::embedded::EmbeddedStore::in_memory(),
    )));
    let clock = Arc::new(space_store::ManualClock::new(chrono::Utc::now()));
    let app = TestApp::serve(store, clock, tempfile::tempdir().unwrap(), Backend::Embedded).await;
    let attempts = futures::future::join_all((0..6).map(|_| {
        app.space(Method::POST, "/tasks")
            .header("idempotency-key", "slow")
            .json(json!({"title": "Once"}))
            .send()
    }))
    .await;
    let conflicts = attempts.iter().filter(|r| r.status == 409).count();
    assert!(
        conflicts >= 1,
        "{:?}",
        attempts.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for conflict in attempts.iter().filter(|r| r.status == 409) {
        assert_eq!(conflict.error_code(), "CONFLICT");
    }
    let listed = app.space(Method::GET, "/tasks").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
}
