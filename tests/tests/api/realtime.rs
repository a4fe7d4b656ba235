//! The realtime stream on both backends: changes arrive as Server-Sent Events with the
//! event id as the SSE id, filtered by type; `Last-Event-ID` resumes with nothing missed or
//! repeated; the stream ends within a couple of seconds of the key's revocation; it needs a
//! key with `events:read`; a key holds at most five open at once.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

on_both_backends!(
    changes_arrive_as_server_sent_events,
    last_event_id_resumes_without_gaps_or_repeats,
    a_revoked_key_ends_its_stream,
    the_stream_needs_events_read,
    a_key_holds_five_streams_at_once,
);

const PATH: &str = "/functions/v1/space-realtime";

/// One SSE event as received.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    kind: String,
    data: Value,
}

/// An open stream and what it has sent so far.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, key: &str, query: &str, last_event_id: Option<&str>) -> Stream {
        let mut request = app
            .client
            .get(format!("{}{PATH}{query}", app.base))
            .header("authorization", format!("Bearer {key}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("text/event-stream")
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event, or `None` when the stream ended or `wait` passed first.
    async fn next(&mut self, wait: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name).map(str::to_owned))
                        .unwrap_or_default()
                };
                if block.lines().all(|line| line.starts_with(':')) {
                    continue; // a keep-alive comment
                }
                return Some(Received {
                    id: field("id: "),
                    kind: field("event: "),
                    data: serde_json::from_str(&field("data: ")).unwrap_or(Value::Null),
                });
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) | Err(_) => return None,
            }
        }
    }
}

async fn changes_arrive_as_server_sent_events(app: TestApp) {
    let mut stream = Stream::open(&app, app.key(), "?types=contact.*", None).await;
    let ada = app.contact(json!({"name": "Ada"})).await;
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Not wanted"}))
        .send()
        .await
        .expect(201);
    let grace = app.contact(json!({"name": "Grace"})).await;

    let first = stream.next(Duration::from_secs(5)).await.expect("the first change");
    assert_eq!(first.kind, "contact.created");
    assert_eq!(first.data["resource"]["id"], ada["id"]);
    assert_eq!(first.data["id"], first.id, "the SSE id is the event id");
    let second = stream.next(Duration::from_secs(5)).await.expect("the second change");
    assert_eq!(second.data["resource"]["id"], grace["id"], "the task was filtered out");
    let shown = app
        .space(Method::GET, &format!("/events/{}", first.id))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body, first.data, "the stream sends what the feed shows");
}

async fn last_event_id_resumes_without_gaps_or_repeats(app: TestApp) {
    let mut stream = Stream::open(&app, app.key(), "?types=contact.created", None).await;
    app.contact(json!({"name": "One"})).await;
    let one = stream.next(Duration::from_secs(5)).await.expect("one");
    drop(stream);
    // While disconnected, two more.
    app.contact(json!({"name": "Two"})).await;
    app.contact(json!({"name": "Three"})).await;
    let mut resumed = Stream::open(&app, app.key(), "?types=contact.created", Some(&one.id)).await;
    let names: Vec<Value> = vec![
        resumed.next(Duration::from_secs(5)).await.expect("two").data["data"]["object"]["name"].clone(),
        resumed.next(Duration::from_secs(5)).await.expect("three").data["data"]["object"]["name"].clone(),
    ];
    assert_eq!(names, [json!("Two"), json!("Three")]);
    assert!(
        resumed.next(Duration::from_millis(600)).await.is_none(),
        "nothing repeated"
    );
}

async fn a_revoked_key_ends_its_stream(app: TestApp) {
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "watcher", "scopes": ["events:read"]}))
        .send()
        .await
        .expect(201)
        .body;
    let token = minted["token"].as_str().expect("a token").to_owned();
    let mut stream = Stream::open(&app, &token, "", None).await;
    app.contact(json!({"name": "Seen"})).await;
    assert!(stream.next(Duration::from_secs(5)).await.is_some());
    app.account(
        Method::DELETE,
        &format!(
            "/spaces/{}/keys/{}",
            app.demo.space_id,
            minted["id"].as_str().unwrap_or_default()
        ),
    )
    .send()
    .await
    .expect(204);
    let revoked = tokio::time::Instant::now();
    // The revocation's own event may still arrive; then the stream ends.
    while stream.next(Duration::from_secs(5)).await.is_some() {}
    assert!(
        revoked.elapsed() < Duration::from_secs(3),
        "ended {:?} after the revocation",
        revoked.elapsed()
    );
}

async fn the_stream_needs_events_read(app: TestApp) {
    let contacts_only = app.mint(&["contacts:read"], None).await;
    let refused = app
        .client
        .get(format!("{}{PATH}", app.base))
        .bearer_auth(&contacts_only)
        .send()
        .await
        .expect("an answer");
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.expect("the envelope");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("events:read")
    );
    let anonymous = app
        .client
        .get(format!("{}{PATH}", app.base))
        .send()
        .await
        .expect("an answer");
    assert_eq!(anonymous.status(), 401);
    let bad = app
        .client
        .get(format!("{}{PATH}?types=Nope", app.base))
        .bearer_auth(app.key())
        .send()
        .await
        .expect("an answer");
    assert_eq!(bad.status(), 422);
}

async fn a_key_holds_five_streams_at_once(app: TestApp) {
    let key = app.mint(&["events:read"], None).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(Stream::open(&app, &key, "?types=contact.created", None).await);
    }
    let sixth = || {
        app.client
            .get(format!("{}{PATH}", app.base))
            .header("authorization", format!("Bearer {key}"))
            .send()
    };
    let refused = sixth().await.expect("an answer");
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.expect("the error envelope");
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("5 realtime streams")
    );
    // Another key is not held back by this one.
    let other = app.mint(&["events:read"], None).await;
    let _watching = Stream::open(&app, &other, "", None).await;
    // A slot whose stream stopped renewing it (its process died) is free once its lease
    // has run out.
    app.clock.advance(chrono::TimeDelta::seconds(61));
    let _again = Stream::open(&app, &key, "", None).await;
    // The streams held all along still work.
    app.contact(json!({"name": "Seen by all"})).await;
    for stream in &mut open {
        let event = stream.next(Duration::from_secs(5)).await.expect("an event");
        assert_eq!(event.kind, "contact.created");
    }
}
