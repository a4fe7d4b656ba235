//! Meetings and their generated join URLs, end to end on both backends.

use crate::family_checks;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

on_both_backends!(
    meetings_get_an_unguessable_join_url,
    clients_cannot_set_the_join_url,
    meetings_filter_by_start,
    every_route_needs_its_scope_and_the_right_space,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn meeting(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/meet/meetings")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

fn token(meeting: &Value) -> String {
    let url = meeting["join_url"].as_str().expect("a join URL");
    assert!(url.starts_with("https://"), "{url}");
    url.rsplit('/').next().expect("a room token").to_owned()
}

async fn meetings_get_an_unguessable_join_url(app: TestApp) {
    let created = app
        .space(Method::POST, "/meet/meetings")
        .json(json!({"title": "Kickoff", "starts_at": "2099-03-02T10:00:00+02:00", "description": "Agenda"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let kickoff = created.body;
    assert!(kickoff["id"].as_str().unwrap().starts_with("mtg_"));
    assert_eq!(kickoff["starts_at"], "2099-03-02T08:00:00.000Z");
    assert_eq!(kickoff["duration_minutes"], 30);
    let first = token(&kickoff);
    assert!(
        first.len() >= 22 && first.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{first}"
    );
    assert!(
        !first.contains(&id(&kickoff)[4..]),
        "the token is not derived from the id"
    );
    let other = meeting(
        &app,
        json!({"title": "Standup", "starts_at": "2099-03-03T09:00:00Z", "duration_minutes": 15}),
    )
    .await;
    assert_ne!(token(&other), first);

    let path = format!("/meet/meetings/{}", id(&kickoff));
    assert_eq!(app.space(Method::GET, &path).send().await.expect(200).body, kickoff);
    let listed = app.space(Method::GET, "/meet/meetings").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);
    let patched = app
        .space(Method::PATCH, &path)
        .json(json!({"duration_minutes": 45}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (
            patched.body["duration_minutes"].clone(),
            patched.body["join_url"].clone()
        ),
        (json!(45), kickoff["join_url"].clone())
    );
    let replaced = app
        .space(Method::PUT, &path)
        .json(json!({"title": "Kickoff v2", "starts_at": "2099-03-02T11:00:00Z"}))
        .send()
        .await
        .expect(200);
    assert_eq!(replaced.body["join_url"], kickoff["join_url"], "PUT keeps the link");
    assert_eq!(replaced.body["duration_minutes"], 30);
    assert!(replaced.body.get("description").is_none());

    // Rotating replaces the link.
    let rotated = app
        .space(Method::POST, &format!("{path}/rotate-link"))
        .send()
        .await
        .expect(200);
    assert_ne!(rotated.body["join_url"], kickoff["join_url"]);
    assert_eq!(rotated.header("etag"), Some("\"4\""));
    app.space(Method::POST, &format!("{path}/rotate-link"))
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect(412);

    // Validation.
    let refused = app
        .space(Method::POST, "/meet/meetings")
        .json(json!({"starts_at": "next tuesday", "duration_minutes": 0}))
        .send()
        .await
        .expect(422);
    for field in ["title", "starts_at", "duration_minutes"] {
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            refused.text
        );
    }
    app.space(Method::POST, "/meet/meetings")
        .json(json!({"title": "No time"}))
        .send()
        .await
        .expect(422);

    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    app.space(Method::POST, &format!("{path}/rotate-link"))
        .send()
        .await
        .expect(404);
    let events = app.event_types().await;
    for kind in ["meeting.created", "meeting.updated", "meeting.deleted"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
}

async fn clients_cannot_set_the_join_url(app: TestApp) {
    let refused = app
        .space(Method::POST, "/meet/meetings")
        .json(json!({"title": "Mine", "starts_at": "2099-01-01T10:00:00Z", "join_url": "https://evil.example/x"}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["join_url"].is_array());
    let created = meeting(&app, json!({"title": "Mine", "starts_at": "2099-01-01T10:00:00Z"})).await;
    let path = format!("/meet/meetings/{}", id(&created));
    // Sending back what a GET returned is fine; a different URL is not.
    let round_trip = app
        .space(Method::PUT, &path)
        .json(created.clone())
        .send()
        .await
        .expect(200);
    assert_eq!(round_trip.body["join_url"], created["join_url"]);
    app.space(Method::PATCH, &path)
        .json(json!({"join_url": "https://evil.example/x"}))
        .send()
        .await
        .expect(422);
    app.space(Method::PUT, &path)
        .json(json!({"title": "Mine", "starts_at": "2099-01-01T10:00:00Z", "join_url": "https://evil.example/x"}))
        .send()
        .await
        .expect(422);
    let unchanged = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(unchanged.body["join_url"], created["join_url"]);
    assert_eq!(unchanged.body["version"], 2);
}

async fn meetings_filter_by_start(app: TestApp) {
    for (title, at) in [
        ("Early", "2099-01-01T09:00:00Z"),
        ("Noon", "2099-01-01T12:00:00Z"),
        ("Late", "2099-01-01T18:00:00Z"),
    ] {
        meeting(&app, json!({"title": title, "starts_at": at})).await;
    }
    let window = app
        .space(
            Method::GET,
            "/meet/meetings?starts_after=2099-01-01T10:00:00Z&starts_before=2099-01-01T19:00:00Z&order=asc",
        )
        .send()
        .await
        .expect(200);
    let titles: Vec<&Value> = window.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["title"])
        .collect();
    assert_eq!(titles, [&json!("Noon"), &json!("Late")]);
    let searched = app.space(Method::GET, "/meet/meetings?q=earl").send().await.expect(200);
    assert_eq!(searched.body["data"][0]["title"], "Early");
    app.space(Method::GET, "/meet/meetings?starts_after=soon")
        .send()
        .await
        .expect(422);
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let mine = meeting(&app, json!({"title": "Mine", "starts_at": "2099-01-01T10:00:00Z"})).await;
    let mine_id = id(&mine);
    let ids = [("id", mine_id.as_str())];
    let valid = json!({"title": "T", "starts_at": "2099-01-01T10:00:00Z"});
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("meet_meetings_create", valid.clone()),
        ("meet_meetings_update", json!({"title": "T"})),
        ("meet_meetings_replace", valid),
    ]);
    family_checks::scopes_are_enforced(&app, "meet", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "meet", &ids, &bodies).await;
    let unchanged = app
        .space(Method::GET, &format!("/meet/meetings/{mine_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body, mine);
}
