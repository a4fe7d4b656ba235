//! The HTTP contract: error envelope, authentication, scopes, isolation, rate limits,
//! idempotency, ETags and pagination — on the embedded store and on DynamoDB.

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    every_error_leaves_in_the_envelope,
    keys_that_are_missing_malformed_expired_or_revoked_get_401,
    a_missing_scope_is_403_naming_it_and_changes_nothing,
    another_spaces_ids_are_not_found,
    exactly_the_limit_gets_through_under_concurrency,
    a_busy_keys_count_is_spread_and_still_exact,
    idempotency_keys_replay_and_refuse_duplicates,
    secrets_shown_once_are_never_kept_for_a_replay,
    stale_if_match_is_412,
    pagination_walks_every_page_and_refuses_tampered_cursors,
    mutations_append_events,
    rate_limit_headers_are_on_every_response,
);

async fn every_error_leaves_in_the_envelope(app: TestApp) {
    // 400: malformed JSON.
    let response = app
        .space(Method::POST, "/contacts")
        .raw("application/json", "{\"name\": ")
        .send()
        .await
        .expect(400);
    assert_eq!(response.error_code(), "BAD_REQUEST");
    // 415: not JSON.
    let response = app
        .space(Method::POST, "/contacts")
        .raw("text/plain", "name=Ada")
        .send()
        .await
        .expect(415);
    assert_eq!(response.error_code(), "UNSUPPORTED_MEDIA_TYPE");
    // 404: unknown route, and an unknown item.
    let response = app.space(Method::GET, "/nothing-here").send().await.expect(404);
    assert_eq!(response.error_code(), "NOT_FOUND");
    let response = app
        .space(Method::GET, "/contacts/con_01jdxxxxxxxxxxxxxxxxxxxxxx")
        .send()
        .await
        .expect(404);
    assert_eq!(response.error_code(), "NOT_FOUND");
    // 405: a route that exists, with a method it does not take.
    let response = app
        .space(Method::PATCH, "/contacts")
        .json(json!({}))
        .send()
        .await
        .expect(405);
    assert_eq!(response.error_code(), "METHOD_NOT_ALLOWED");
    // 413: a body over the limit.
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let response = app
        .space(Method::POST, "/contacts")
        .raw("application/json", huge)
        .send()
        .await
        .expect(413);
    assert_eq!(response.error_code(), "PAYLOAD_TOO_LARGE");
    // 422: per-field messages.
    let response = app
        .space(Method::POST, "/contacts")
        .json(json!({"email": "not-an-email", "phone": "12", "colour": "red"}))
        .send()
        .await
        .expect(422);
    assert_eq!(response.error_code(), "VALIDATION_FAILED");
    let fields = &response.body["error"]["fields"];
    for field in ["email", "phone", "colour"] {
        assert!(
            fields[field][0].is_string(),
            "no message for {field}: {}",
            response.text
        );
    }
    let response = app
        .space(Method::POST, "/tasks")
        .json(json!({}))
        .send()
        .await
        .expect(422);
    assert_eq!(
        response.body["error"]["fields"]["title"][0],
        "The title field is required."
    );
    // 400: a bad query parameter value type is a validation error, not a crash.
    let response = app.space(Method::GET, "/tasks?limit=0").send().await.expect(422);
    assert!(response.body["error"]["fields"]["limit"].is_array());
    // Nothing of the failed writes was stored.
    let listed = app.space(Method::GET, "/contacts").send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]));
}

async fn keys_that_are_missing_malformed_expired_or_revoked_get_401(app: TestApp) {
    let path = format!("{SPACE_API}/contacts");
    let response = app.request(Method::GET, &path).send().await.expect(401);
    assert_eq!(response.error_code(), "UNAUTHENTICATED");
    assert!(
        response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Missing API key")
    );

    // Mistyped: one character changed breaks the checksum.
    let mut typo = app.key().to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let response = app.request(Method::GET, &path).key(&typo).send().await.expect(401);
    assert!(
        response.body["error"]["message"].as_str().unwrap().contains("checksum"),
        "{}",
        response.text
    );
    app.request(Method::GET, &path)
        .key("wks_live_short")
        .send()
        .await
        .expect(401);
    app.request(Method::GET, &path)
        .header("authorization", "Basic abc")
        .send()
        .await
        .expect(401);
    // A well-formed key that was never minted.
    let unknown = space_auth::Token::generate(space_auth::TokenKind::Space);
    app.request(Method::GET, &path)
        .key(unknown.expose())
        .send()
        .await
        .expect(401);
    // An account key on the space API, and a space key on the account API.
    app.request(Method::GET, &path)
        .key(app.account_key())
        .send()
        .await
        .expect(401);
    let response = app
        .request(Method::GET, "/functions/v1/account-api/spaces")
        .key(app.key())
        .send()
        .await
        .expect(401);
    assert_eq!(response.error_code(), "UNAUTHENTICATED");

    // Expired: valid until the clock passes expires_at.
    let expires_at = space_http::fields::format_datetime(
        space_store::Clock::now(app.clock.as_ref()) + chrono::TimeDelta::minutes(5),
    );
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "short-lived", "scopes": ["contacts:read"], "expires_at": expires_at}))
        .send()
        .await
        .expect(201);
    let short_lived = minted.body["token"].as_str().unwrap().to_owned();
    app.request(Method::GET, &path)
        .key(&short_lived)
        .send()
        .await
        .expect(200);
    app.clock.advance(chrono::TimeDelta::minutes(6));
    let response = app
        .request(Method::GET, &path)
        .key(&short_lived)
        .send()
        .await
        .expect(401);
    assert!(response.body["error"]["message"].as_str().unwrap().contains("expired"));

    // Revoked: the very next request fails.
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "to revoke", "scopes": ["contacts:read"]}))
        .send()
        .await
        .expect(201);
    let token = minted.body["token"].as_str().unwrap().to_owned();
    let key_id = minted.body["id"].as_str().unwrap().to_owned();
    app.request(Method::GET, &path).key(&token).send().await.expect(200);
    app.account(Method::DELETE, &format!("/spaces/{}/keys/{key_id}", app.demo.space_id))
        .send()
        .await
        .expect(204);
    let response = app.request(Method::GET, &path).key(&token).send().await.expect(401);
    assert!(response.body["error"]["message"].as_str().unwrap().contains("revoked"));
}

async fn a_missing_scope_is_403_naming_it_and_changes_nothing(app: TestApp) {
    let reader = app.mint(&["contacts:read", "tasks:read"], None).await;
    let events_before = app.event_types().await.len();
    let response = app
        .request(Method::POST, &format!("{SPACE_API}/contacts"))
        .key(&reader)
        .json(json!({"name": "Ada"}))
        .send()
        .await
        .expect(403);
    assert_eq!(response.error_code(), "FORBIDDEN");
    assert!(
        response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("contacts:write")
    );
    let contact = app.contact(json!({"name": "Grace"})).await;
    let id = contact["id"].as_str().unwrap();
    for (method, path) in [
        (Method::PATCH, format!("/contacts/{id}")),
        (Method::PUT, format!("/contacts/{id}")),
        (Method::DELETE, format!("/contacts/{id}")),
        (Method::POST, "/tasks".to_owned()),
        (Method::GET, "/secrets".to_owned()),
    ] {
        let response = app
            .request(method.clone(), &format!("{SPACE_API}{path}"))
            .key(&reader)
            .json(json!({"name": "Changed", "title": "x"}))
            .send()
            .await
            .expect(403);
        assert!(
            response.body["error"]["message"].as_str().unwrap().contains(':'),
            "{method} {path}: no scope named"
        );
    }
    let unchanged = app
        .space(Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body["name"], "Grace");
    assert_eq!(unchanged.body["version"], 1);
    // Only the allowed create left an event.
    assert_eq!(app.event_types().await.len(), events_before + 1);
    // The reader can read.
    app.request(Method::GET, &format!("{SPACE_API}/contacts/{id}"))
        .key(&reader)
        .send()
        .await
        .expect(200);
}

async fn another_spaces_ids_are_not_found(app: TestApp) {
    let contact = app.contact(json!({"name": "Mine"})).await;
    let id = contact["id"].as_str().unwrap();
    let (_, other_key) = app.other_space().await;
    for method in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
        let response = app
            .request(method.clone(), &format!("{SPACE_API}/contacts/{id}"))
            .key(&other_key)
            .json(json!({"name": "Stolen"}))
            .send()
            .await
            .expect(404);
        assert_eq!(response.error_code(), "NOT_FOUND", "{method}");
    }
    app.request(Method::POST, &format!("{SPACE_API}/contacts/{id}/notes"))
        .key(&other_key)
        .json(json!({"body": "hi"}))
        .send()
        .await
        .expect(404);
    let listed = app
        .request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(&other_key)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"], json!([]));
    let mine = app
        .space(Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(mine.body["name"], "Mine");
}

async fn exactly_the_limit_gets_through_under_concurrency(app: TestApp) {
    let key = app.mint(&["contacts:read"], None).await;
    let path = format!("{SPACE_API}/contacts?limit=1");
    let responses = join_all((0..300).map(|_| app.request(Method::GET, &path).key(&key).send())).await;
    let ok = responses.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok, 100, "exactly the default limit passes");
    assert_eq!(limited.len(), 200);
    for response in limited {
        assert_eq!(response.error_code(), "RATE_LIMITED");
        let retry_after: u64 = response.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry_after));
    }
    // The next window lets the key through again.
    app.clock.advance(chrono::TimeDelta::seconds(60));
    app.request(Method::GET, &path).key(&key).send().await.expect(200);
}

async fn a_busy_keys_count_is_spread_and_still_exact(app: TestApp) {
    // 100,000 a minute is four counters of 25,000 (one item takes ~1,000 writes a second).
    let per_minute = 100_000;
    let key = app.mint(&["contacts:read"], Some(per_minute)).await;
    let path = format!("{SPACE_API}/contacts?limit=1");
    app.request(Method::GET, &path).key(&key).send().await.expect(200);
    // All but the last 40 uses of the window are counted straight on the counters, spread
    // unevenly: a request that lands on a full one moves on to the next.
    let window = space_auth::RateWindow::at(app.engine.now());
    let hash = space_auth::Token::parse(&key).expect("a token").hash();
    let counter = space_http::keys::rate_counter(&hash, window.start);
    let shards = space_http::budget::shards(&counter, per_minute);
    assert_eq!(shards.len(), 4);
    for (index, (shard, share)) in shards.iter().enumerate() {
        let store = app.engine.store();
        // Counting one more reads the count (DynamoDB answers no count for an added 0).
        let used = store
            .increment(&shard.pk, &shard.sk, 1, window.expires_at())
            .await
            .expect("read");
        let keep = if index == 0 { 40 } else { 0 };
        let fill = u64::from(*share) - used - keep;
        store
            .increment(&shard.pk, &shard.sk, fill, window.expires_at())
            .await
            .expect("counted");
    }
    let responses = join_all((0..60).map(|_| app.request(Method::GET, &path).key(&key).send())).await;
    let ok = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 40, "exactly what is left of the budget passes");
    assert!(responses.iter().all(|r| r.status == 200 || r.status == 429));
}

async fn idempotency_keys_replay_and_refuse_duplicates(app: TestApp) {
    let body = json!({"title": "Call Ada back"});
    let first = app
        .space(Method::POST, "/tasks")
        .header("idempotency-key", "retry-1")
        .json(body.clone())
        .send()
        .await
        .expect(201);
    let second = app
        .space(Method::POST, "/tasks")
        .header("idempotency-key", "retry-1")
        .json(body.clone())
        .send()
        .await
        .expect(201);
    assert_eq!(first.body, second.body, "the retry replays the first response");
    let listed = app.space(Method::GET, "/tasks").send().await.expect(200);
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "no duplicate was created"
    );
    // Same key, different body.
    let response = app
        .space(Method::POST, "/tasks")
        .header("idempotency-key", "retry-1")
        .json(json!({"title": "Something else"}))
        .send()
        .await
        .expect(422);
    assert_eq!(response.error_code(), "VALIDATION_FAILED");
    // Concurrent duplicates: exactly one creates, the others replay it or get 409.
    let attempts = join_all((0..8).map(|_| {
        app.space(Method::POST, "/tasks")
            .header("idempotency-key", "burst")
            .json(json!({"title": "Once"}))
            .send()
    }))
    .await;
    let statuses: Vec<u16> = attempts.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&201));
    let ids: std::collections::HashSet<_> = attempts
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "every success is the same task");
    let listed = app.space(Method::GET, "/tasks?q=once").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    // Records expire after 24 hours: the key can then be used again.
    app.clock.advance(chrono::TimeDelta::hours(25));
    let fresh = app
        .space(Method::POST, "/tasks")
        .header("idempotency-key", "retry-1")
        .json(json!({"title": "New day"}))
        .send()
        .await
        .expect(201);
    assert_ne!(fresh.body["id"], first.body["id"]);
}

async fn secrets_shown_once_are_never_kept_for_a_replay(app: TestApp) {
    let space = app.demo.space_id.clone();
    let minted = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .header("idempotency-key", "mint-1")
        .json(json!({"name": "ci", "scopes": ["tasks:read"]}))
        .send()
        .await
        .expect(201);
    let token = minted.body["token"].as_str().expect("a token").to_owned();
    let webhook = app
        .space(Method::POST, "/webhooks")
        .header("idempotency-key", "hook-1")
        .json(json!({"url": "https://example.com/hook", "events": ["task.created"]}))
        .send()
        .await
        .expect(201);
    let secret = webhook.body["secret"].as_str().expect("a secret").to_owned();

    // A retry acts once more never, and is told what the first call made, not its secret.
    let again = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .header("idempotency-key", "mint-1")
        .json(json!({"name": "ci", "scopes": ["tasks:read"]}))
        .send()
        .await
        .expect(409);
    assert!(
        again.text.contains(minted.body["id"].as_str().expect("an id")),
        "{}",
        again.text
    );
    assert!(!again.text.contains(&token), "{}", again.text);
    let again = app
        .space(Method::POST, "/webhooks")
        .header("idempotency-key", "hook-1")
        .json(json!({"url": "https://example.com/hook", "events": ["task.created"]}))
        .send()
        .await
        .expect(409);
    assert!(!again.text.contains(&secret), "{}", again.text);
    let keys = app
        .account(Method::GET, &format!("/spaces/{space}/keys"))
        .send()
        .await
        .expect(200);
    let named_ci = keys.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["name"] == "ci")
        .count();
    assert_eq!(named_ci, 1, "minted once");

    // No idempotency record holds either.
    for owner in [
        space_http::keys::account_partition(&app.demo.account_id),
        space_http::keys::space_partition(&space),
    ] {
        let records = app
            .engine
            .store()
            .query(space_store::Query::partition(format!("{owner}#IDEM")))
            .await
            .expect("a read");
        assert!(!records.items.is_empty(), "{owner} has its record");
        for record in records.items {
            let stored = serde_json::to_string(&record.body).expect("JSON");
            assert!(!stored.contains(&token) && !stored.contains(&secret), "{stored}");
        }
    }
    // Other answers are still replayed.
    let task = |key: &'static str| {
        app.space(Method::POST, "/tasks")
            .header("idempotency-key", key)
            .json(json!({"title": "Once"}))
            .send()
    };
    assert_eq!(task("t-1").await.expect(201).body, task("t-1").await.expect(201).body);
}

async fn stale_if_match_is_412(app: TestApp) {
    let contact = app.contact(json!({"name": "Ada"})).await;
    let id = contact["id"].as_str().unwrap();
    let read = app
        .space(Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);
    let etag = read.header("etag").unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let updated = app
        .space(Method::PATCH, &format!("/contacts/{id}"))
        .header("if-match", &etag)
        .json(json!({"company": "Analytical Engines"}))
        .send()
        .await
        .expect(200);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    for method in [Method::PATCH, Method::PUT, Method::DELETE] {
        let response = app
            .space(method.clone(), &format!("/contacts/{id}"))
            .header("if-match", &etag)
            .json(json!({"name": "Lost update"}))
            .send()
            .await
            .expect(412);
        assert_eq!(response.error_code(), "PRECONDITION_FAILED", "{method}");
    }
    let current = app
        .space(Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(current.body["name"], "Ada");
    assert_eq!(current.body["company"], "Analytical Engines");
    // PUT replaces: fields left out are cleared.
    let replaced = app
        .space(Method::PUT, &format!("/contacts/{id}"))
        .header("if-match", "\"2\"")
        .json(json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .expect(200);
    assert!(replaced.body.get("company").is_none());
    app.space(Method::DELETE, &format!("/contacts/{id}"))
        .header("if-match", "\"3\"")
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(404);
}

async fn pagination_walks_every_page_and_refuses_tampered_cursors(app: TestApp) {
    let rows: Vec<_> = (0..130).map(|i| json!({"name": format!("Person {i:03}")})).collect();
    let imported = app
        .space(Method::POST, "/contacts/import")
        .json(json!({"contacts": rows}))
        .send()
        .await
        .expect(200);
    assert_eq!(imported.body["created"], 130);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/contacts?limit=25&order=asc&cursor={cursor}"),
            None => "/contacts?limit=25&order=asc".to_owned(),
        };
        let page = app.space(Method::GET, &path).send().await.expect(200);
        pages += 1;
        for contact in page.body["data"].as_array().unwrap() {
            seen.push(contact["name"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 6, "130 items in pages of 25");
    let expected: Vec<String> = (0..130).map(|i| format!("Person {i:03}")).collect();
    assert_eq!(seen, expected, "every item once, in order");

    let first = app.space(Method::GET, "/contacts?limit=5").send().await.expect(200);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let mut tampered = cursor.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let response = app
        .space(Method::GET, &format!("/contacts?limit=5&cursor={tampered}"))
        .send()
        .await
        .expect(400);
    assert_eq!(response.error_code(), "BAD_REQUEST");
    // A cursor of another list (tasks) or another Space is refused too, saying why.
    let foreign = app
        .space(Method::GET, &format!("/tasks?limit=5&cursor={cursor}"))
        .send()
        .await
        .expect(400);
    assert!(foreign.text.contains("another list or Space"), "{}", foreign.text);
    let (_, other_key) = app.other_space().await;
    let foreign = app
        .request(Method::GET, &format!("{SPACE_API}/contacts?limit=5&cursor={cursor}"))
        .key(&other_key)
        .send()
        .await
        .expect(400);
    assert_eq!(foreign.error_code(), "BAD_REQUEST");
    assert!(foreign.text.contains("another list or Space"), "{}", foreign.text);
    app.space(Method::GET, "/contacts?limit=201").send().await.expect(422);
}

async fn mutations_append_events(app: TestApp) {
    let contact = app.contact(json!({"name": "Ada"})).await;
    let id = contact["id"].as_str().unwrap();
    app.space(Method::PATCH, &format!("/contacts/{id}"))
        .json(json!({"name": "Ada L."}))
        .send()
        .await
        .expect(200);
    app.space(Method::POST, &format!("/contacts/{id}/notes"))
        .json(json!({"body": "Met at the fair"}))
        .send()
        .await
        .expect(201);
    app.space(Method::DELETE, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(204);
    let types = app.event_types().await;
    let tail: Vec<&str> = types.iter().rev().take(4).rev().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "contact.created",
            "contact.updated",
            "contact.note.created",
            "contact.deleted"
        ]
    );
}

async fn rate_limit_headers_are_on_every_response(app: TestApp) {
    let ok = app.space(Method::GET, "/contacts").send().await.expect(200);
    assert_eq!(ok.header("ratelimit-policy"), Some("\"per-key\";q=100000;w=60"));
    let state = ok.header("ratelimit").unwrap();
    assert!(state.starts_with("\"per-key\";r=") && state.contains(";t="), "{state}");
    let error = app
        .space(Method::POST, "/contacts")
        .json(json!({"email": "bad"}))
        .send()
        .await
        .expect(422);
    assert!(error.header("ratelimit").is_some());
    assert!(ok.header("server").is_none(), "no server header");
}
