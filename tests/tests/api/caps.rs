//! Caps on live actions: a key minted with `limits` may send, publish and reply so many
//! times per UTC day, counted in the action's own transaction — exactly, under
//! concurrency — and answers 429 `LIVE_ACTION_CAP` past it, over REST and MCP alike.

use chrono::TimeDelta;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Backend, SPACE_API, TestApp, on_both_backends};

use crate::phone::{connect, send};

on_both_backends!(
    limits_take_known_cap_names_only_and_show_on_the_key,
    three_hundred_concurrent_sms_on_a_cap_of_fifty_let_exactly_fifty_through,
    refused_actions_take_nothing_and_caps_are_per_key_and_per_action,
    social_publish_counts_every_post_that_goes_live,
    mcp_answers_the_same_refusal,
);

/// Mints a key on the demo Space with `scopes` and `limits`.
async fn mint(app: &TestApp, scopes: &[&str], limits: Value) -> String {
    let space = &app.demo.space_id;
    let minted = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "capped", "scopes": scopes, "rate_limit_per_minute": 100_000, "limits": limits}))
        .send()
        .await
        .expect(201);
    assert_eq!(minted.body["limits"], limits, "{}", minted.text);
    minted.body["token"].as_str().expect("a token").to_owned()
}

pub(crate) async fn send_with(app: &TestApp, key: &str, from: &str, to: &str) -> space_tests::Response {
    app.request(Method::POST, &format!("{SPACE_API}/phone/sms"))
        .key(key)
        .json(json!({"from_number_id": from, "to": to, "text": "Your order shipped"}))
        .send()
        .await
}

/// Every SMS of the Space, through the pages.
pub(crate) async fn all_sms(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/phone/sms?limit=200&cursor={cursor}"),
            None => "/phone/sms?limit=200".to_owned(),
        };
        let page = app.space(Method::GET, &path).send().await.expect(200);
        all.extend(page.body["data"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

fn assert_capped(response: &space_tests::Response, cap: &str, limit: u64) {
    assert_eq!(response.status, 429, "{}", response.text);
    assert_eq!(response.error_code(), "LIVE_ACTION_CAP");
    let error = &response.body["error"];
    assert_eq!(error["cap"], cap);
    assert_eq!(error["limit"], limit);
    let resets = error["resets_at"].as_str().unwrap_or_default();
    assert!(resets.contains("T00:00:00"), "the next UTC midnight: {resets}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(cap) && message.contains(resets), "{message}");
    let retry: i64 = response.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=86_400).contains(&retry), "Retry-After: {retry}");
}

async fn limits_take_known_cap_names_only_and_show_on_the_key(app: TestApp) {
    let space = &app.demo.space_id;
    let limits =
        json!({"phone.sms": {"per_day": 50}, "social.publish": {"per_day": 10}, "inbox.reply": {"per_day": 100}});
    mint(&app, &["phone:run"], limits.clone()).await;
    let listed = app
        .account(Method::GET, &format!("/spaces/{space}/keys"))
        .send()
        .await
        .expect(200);
    let capped = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|key| key["name"] == "capped")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(capped["limits"], limits, "the list shows the caps");
    for (limits, says) in [
        (
            json!({"phone.fax": {"per_day": 5}}),
            "phone.sms, social.publish, inbox.reply",
        ),
        (json!({"phone.sms": {"per_day": 0}}), "per_day"),
        (json!({"phone.sms": {"per_day": "ten"}}), "per_day"),
        (json!({"phone.sms": {"per_day": 5, "per_hour": 1}}), "per_day"),
        (json!({"phone.sms": 5}), "per_day"),
        (json!(["phone.sms"]), "object"),
    ] {
        let refused = app
            .account(Method::POST, &format!("/spaces/{space}/keys"))
            .json(json!({"name": "bad", "scopes": ["phone:run"], "limits": limits}))
            .send()
            .await
            .expect(422);
        let why = refused.body["error"]["fields"]["limits"].to_string();
        assert!(why.contains(says), "{limits}: {why}");
    }
}

async fn three_hundred_concurrent_sms_on_a_cap_of_fifty_let_exactly_fifty_through(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let key = mint(
        &app,
        &["phone:run", "phone:read"],
        json!({"phone.sms": {"per_day": 50}}),
    )
    .await;
    // In process, 300 at once; on moto, which serves one request at a time on the CI's two
    // cores beside the other tests, 120 (still 70 more than the cap, all racing for it).
    let total = match app.backend {
        Backend::Embedded => 300,
        Backend::Dynamodb => 120,
    };
    let started = std::time::Instant::now();
    let sends = (0..total).map(|n| {
        let (app, key, number) = (&app, key.clone(), number.clone());
        async move { send_with(app, &key, &number, &format!("+1201555{:04}", 1000 + n)).await }
    });
    let responses = join_all(sends).await;
    let elapsed = started.elapsed();
    let accepted = responses.iter().filter(|r| r.status == 201).count();
    let capped: Vec<_> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(accepted, 50, "exactly the cap passes");
    // A store that cannot keep up with the burst (moto on a busy machine) may answer some
    // 503 `UNAVAILABLE` instead: they did nothing either, and the client retries them.
    let unavailable = responses.iter().filter(|r| r.status == 503).count();
    let others: Vec<String> = responses
        .iter()
        .filter(|r| ![201, 429, 503].contains(&r.status))
        .map(|r| format!("{} {}", r.status, r.text))
        .collect();
    assert!(others.is_empty(), "every other request is refused: {others:?}");
    assert_eq!(capped.len() + unavailable, total - 50);
    assert!(unavailable <= 10, "{unavailable} answered 503");
    for response in &capped {
        assert_capped(response, "phone.sms", 50);
    }
    assert_eq!(all_sms(&app).await.len(), 50, "exactly 50 messages recorded");
    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "sms.queued").count(), 50);
    eprintln!("{total} concurrent capped SMS sends on {:?}: {elapsed:?}", app.backend);

    // Still refused later the same day; the next UTC day allows again.
    assert_capped(&send_with(&app, &key, &number, "+12015550123").await, "phone.sms", 50);
    let now = app.engine.now();
    let midnight = space_http::caps::resets_at(now);
    app.clock.advance(midnight - now + TimeDelta::seconds(1));
    send_with(&app, &key, &number, "+12015550123").await.expect(201);
    assert_eq!(all_sms(&app).await.len(), 51);
}

async fn refused_actions_take_nothing_and_caps_are_per_key_and_per_action(app: TestApp) {
    let space = &app.demo.space_id;
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let key = mint(
        &app,
        &["phone:run", "inbox:run"],
        json!({"phone.sms": {"per_day": 2}, "inbox.reply": {"per_day": 1}}),
    )
    .await;
    // A refused request (a bad number, an opted-out recipient) and one that fails in the
    // store take nothing.
    send_with(&app, &key, &number, "+1 555 123 4567").await.expect(422);
    let channel = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "messaging", "channel": "sms", "name": "SMS", "address": "+12015550100"}))
        .send()
        .await
        .expect(201);
    let channel = channel.body["id"].as_str().expect("an id").to_owned();
    app.account(Method::POST, &format!("/spaces/{space}/connections/{channel}/inbound"))
        .json(json!({"from": "+12015550199", "text": "STOP"}))
        .send()
        .await
        .expect(201);
    let refused = send_with(&app, &key, &number, "+12015550199").await.expect(422);
    assert_eq!(refused.error_code(), "RECIPIENT_OPTED_OUT");
    send_with(&app, &key, &number, "+12015550123").await.expect(201);
    send_with(&app, &key, &number, "+12015550124").await.expect(201);
    assert_capped(&send_with(&app, &key, &number, "+12015550125").await, "phone.sms", 2);
    // With an Idempotency-Key, a refused send takes nothing, and a replay of an accepted
    // one answers as before and takes nothing more.
    let other = mint(&app, &["phone:run"], json!({"phone.sms": {"per_day": 1}})).await;
    let keyed = |key: String, idempotency: &'static str, to: &'static str| {
        let (app, number) = (&app, number.clone());
        async move {
            app.request(Method::POST, &format!("{SPACE_API}/phone/sms"))
                .key(&key)
                .header("idempotency-key", idempotency)
                .json(json!({"from_number_id": number, "to": to, "text": "Hi"}))
                .send()
                .await
        }
    };
    keyed(other.clone(), "opted-out", "+12015550199").await.expect(422);
    let first = keyed(other.clone(), "send-once", "+12015550126").await.expect(201);
    let again = keyed(other.clone(), "send-once", "+12015550126").await.expect(201);
    assert_eq!(first.body["id"], again.body["id"]);
    // Each key has its own count; a key without limits has none.
    send(&app, &number, "+12015550127", "Hi").await.expect(201);
    assert_capped(&send_with(&app, &other, &number, "+12015550128").await, "phone.sms", 1);
    // The same key's other cap is counted apart: the inbox reply still has its unit.
    let thread = app
        .account(Method::POST, &format!("/spaces/{space}/connections/{channel}/inbound"))
        .json(json!({"from": "+12015550123", "text": "Hello"}))
        .send()
        .await
        .expect(201);
    let thread = thread.body["thread"]["id"].as_str().expect("a thread").to_owned();
    let reply = |text: &'static str| {
        let (app, key, thread) = (&app, key.clone(), thread.clone());
        async move {
            app.request(Method::POST, &format!("{SPACE_API}/inbox/threads/{thread}/reply"))
                .key(&key)
                .json(json!({"text": text}))
                .send()
                .await
        }
    };
    reply("On its way").await.expect(201);
    assert_capped(&reply("Anything else?").await, "inbox.reply", 1);
}

async fn social_publish_counts_every_post_that_goes_live(app: TestApp) {
    let mut accounts = Vec::new();
    for (network, name) in [
        ("linkedin", "Acme"),
        ("x", "Acme on X"),
        ("facebook", "Acme on Facebook"),
    ] {
        accounts.push(crate::social::connect(&app, network, name).await);
    }
    let key = mint(
        &app,
        &["social:run", "social:write"],
        json!({"social.publish": {"per_day": 3}}),
    )
    .await;
    // A draft on `accounts`: its cluster's id and its posts' ids.
    let draft = |accounts: Vec<String>| {
        let app = &app;
        async move {
            let created = app
                .space(Method::POST, "/social/posts")
                .json(json!({"content": "Hello", "account_ids": accounts}))
                .send()
                .await
                .expect(201);
            let posts: Vec<String> = created.body["posts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|post| post["id"].as_str().map(str::to_owned))
                .collect();
            (created.body["id"].as_str().unwrap_or_default().to_owned(), posts)
        }
    };
    let live = |path: String, key: String, body: Value| {
        let app = &app;
        async move {
            app.request(Method::POST, &format!("{SPACE_API}{path}"))
                .key(&key)
                .json(body)
                .send()
                .await
        }
    };
    let later = json!({"scheduled_at": "2099-01-01T10:00:00Z"});
    // One now, two scheduled for later in one cluster: the three uses of the day.
    let (_, first) = draft(vec![accounts[0].clone()]).await;
    live(format!("/social/posts/{}/publish", first[0]), key.clone(), json!({}))
        .await
        .expect(200);
    let (pair, _) = draft(accounts[1..].to_vec()).await;
    live(format!("/social/clusters/{pair}/schedule"), key.clone(), later.clone())
        .await
        .expect(200);
    // Scheduling is going live later: past the cap it is refused like publishing now.
    let (_, fourth) = draft(vec![accounts[0].clone()]).await;
    let refused = live(
        format!("/social/posts/{}/schedule", fourth[0]),
        key.clone(),
        later.clone(),
    )
    .await;
    assert_capped(&refused, "social.publish", 3);
    let post = app
        .space(Method::GET, &format!("/social/posts/{}", fourth[0]))
        .send()
        .await
        .expect(200);
    assert_eq!(post.body["status"], "draft", "nothing was scheduled");
    // A cluster is one use per post: two posts do not fit in one use left, and none goes.
    let one_left = mint(
        &app,
        &["social:run", "social:write"],
        json!({"social.publish": {"per_day": 1}}),
    )
    .await;
    let (cluster, posts) = draft(accounts.clone()).await;
    let refused = live(
        format!("/social/clusters/{cluster}/publish"),
        one_left.clone(),
        json!({}),
    )
    .await;
    assert_capped(&refused, "social.publish", 1);
    for post in &posts {
        let post = app
            .space(Method::GET, &format!("/social/posts/{post}"))
            .send()
            .await
            .expect(200);
        assert_eq!(post.body["status"], "draft");
    }
    live(format!("/social/posts/{}/publish", posts[0]), one_left, json!({}))
        .await
        .expect(200);
}

async fn mcp_answers_the_same_refusal(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let key = mint(&app, &["phone:run"], json!({"phone.sms": {"per_day": 1}})).await;
    let call = |to: &'static str| {
        let (app, key, number) = (&app, key.clone(), number.clone());
        async move {
            app.mcp(
                &key,
                "",
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_phone",
                       "arguments": {"operation": "phone_sms_send", "arguments": {"from_number_id": number, "to": to, "text": "Hi"}}}}),
            )
            .send()
            .await
            .expect(200)
            .body["result"]
                .clone()
        }
    };
    let sent = call("+12015550123").await;
    assert_ne!(sent["isError"], json!(true), "{sent}");
    let refused = call("+12015550124").await;
    assert_eq!(refused["isError"], json!(true), "{refused}");
    let text = refused["content"][0]["text"].as_str().unwrap_or_default();
    let envelope: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    assert_eq!(envelope["error"]["code"], "LIVE_ACTION_CAP", "{text}");
    assert_eq!(envelope["error"]["cap"], "phone.sms");
    assert_eq!(all_sms(&app).await.len(), 1, "nothing more was sent");
}
