//! Per-key usage: requests per key and UTC day, shown to the owner by key and in the keys
//! list; the counts roll with the day, and another Space's key is not found.

use chrono::{Datelike, TimeDelta};
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    requests_are_counted_per_key_and_day,
    the_keys_list_shows_today_and_this_month,
    another_spaces_key_has_no_usage_here,
);

/// A fresh key of the demo Space: its id and token.
async fn key(app: &TestApp, name: &str) -> (String, String) {
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": name, "scopes": ["contacts:read"]}))
        .send()
        .await
        .expect(201);
    (
        minted.body["id"].as_str().expect("an id").to_owned(),
        minted.body["token"].as_str().expect("a token").to_owned(),
    )
}

async fn use_key(app: &TestApp, token: &str, times: usize) {
    for _ in 0..times {
        app.request(Method::GET, &format!("{SPACE_API}/contacts"))
            .key(token)
            .send()
            .await
            .expect(200);
    }
}

async fn usage(app: &TestApp, key_id: &str) -> Value {
    app.account(
        Method::GET,
        &format!("/spaces/{}/keys/{key_id}/usage", app.demo.space_id),
    )
    .send()
    .await
    .expect(200)
    .body
}

fn date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

async fn requests_are_counted_per_key_and_day(app: TestApp) {
    let (id, token) = key(&app, "counted").await;
    let (other_id, other_token) = key(&app, "other").await;
    use_key(&app, &token, 5).await;
    use_key(&app, &other_token, 2).await;
    let first_day = app.engine.now();

    let shown = usage(&app, &id).await;
    assert_eq!(
        shown,
        json!({"key_id": id, "days": [{"date": date(first_day), "requests": 5}], "today": 5, "this_month": 5})
    );
    assert_eq!(usage(&app, &other_id).await["today"], 2, "each key counts its own");

    app.clock.advance(TimeDelta::days(1));
    let second_day = app.engine.now();
    use_key(&app, &token, 3).await;
    let shown = usage(&app, &id).await;
    assert_eq!(shown["today"], 3, "the day rolled over");
    assert_eq!(
        shown["days"],
        json!([{"date": date(second_day), "requests": 3}, {"date": date(first_day), "requests": 5}]),
        "newest first"
    );
    let same_month = first_day.month() == second_day.month();
    assert_eq!(shown["this_month"], if same_month { 8 } else { 3 });

    // Ninety days on, the first day has left the window.
    app.clock.advance(TimeDelta::days(89));
    let shown = usage(&app, &id).await;
    assert_eq!(shown["today"], 0);
    assert_eq!(shown["days"], json!([{"date": date(second_day), "requests": 3}]));
}

async fn the_keys_list_shows_today_and_this_month(app: TestApp) {
    let (id, token) = key(&app, "listed").await;
    let (unused, _) = key(&app, "unused").await;
    use_key(&app, &token, 4).await;
    let listed = app
        .account(Method::GET, &format!("/spaces/{}/keys", app.demo.space_id))
        .send()
        .await
        .expect(200);
    let find = |wanted: &str| {
        listed.body["data"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["id"] == wanted))
            .cloned()
            .expect("the key is listed")
    };
    let used = find(&id);
    assert_eq!(used["requests_today"], 4);
    assert_eq!(used["requests_this_month"], 4);
    assert!(used.get("last_used_at").is_some());
    let idle = find(&unused);
    assert_eq!(idle["requests_today"], 0);
    assert_eq!(idle["requests_this_month"], 0);
    assert_eq!(idle["last_used_at"], Value::Null);
}

async fn another_spaces_key_has_no_usage_here(app: TestApp) {
    let (other_space, other_token) = app.other_space().await;
    use_key(&app, &other_token, 1).await;
    let other_keys = app
        .account(Method::GET, &format!("/spaces/{other_space}/keys"))
        .send()
        .await
        .expect(200);
    let other_id = other_keys.body["data"][0]["id"].as_str().expect("a key").to_owned();
    let (own_id, _) = key(&app, "own").await;

    let here = app
        .account(
            Method::GET,
            &format!("/spaces/{}/keys/{other_id}/usage", app.demo.space_id),
        )
        .send()
        .await
        .expect(404);
    assert_eq!(here.error_code(), "NOT_FOUND");
    app.account(Method::GET, &format!("/spaces/{other_space}/keys/{own_id}/usage"))
        .send()
        .await
        .expect(404);
    app.account(
        Method::GET,
        &format!("/spaces/{}/keys/key_nope/usage", app.demo.space_id),
    )
    .send()
    .await
    .expect(404);
    // Its own Space shows it; a space key cannot ask at all.
    let there = app
        .account(Method::GET, &format!("/spaces/{other_space}/keys/{other_id}/usage"))
        .send()
        .await
        .expect(200);
    assert_eq!(there.body["today"], 1);
    app.request(
        Method::GET,
        &format!(
            "{}/spaces/{other_space}/keys/{other_id}/usage",
            space_tests::ACCOUNT_API
        ),
    )
    .key(&other_token)
    .send()
    .await
    .expect(401);
}
