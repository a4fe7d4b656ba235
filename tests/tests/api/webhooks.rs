//! Webhooks end to end on both backends, against a receiver that verifies every delivery
//! with the `standardwebhooks` package from PyPI (`tests/webhooks/receiver.py`): signed
//! deliveries of the events an endpoint asked for, once each; the delivery log; retries
//! on the schedule and `Retry-After`; 410 turning the endpoint off; rotation signing with
//! both secrets for a day; test sends and manual retries; targets that are refused.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    endpoints_need_the_feed_and_are_bounded,
    deliveries_are_signed_sent_once_and_logged,
    failures_retry_on_schedule_and_410_turns_the_endpoint_off,
    a_rotated_secret_signs_beside_the_old_one_for_a_day,
    rotations_at_once_lose_no_secret_they_hand_out,
    test_sends_and_manual_retries_reach_the_endpoint,
    an_endpoint_for_everything_hears_nothing_about_itself,
    targets_must_be_public_https,
);

/// The Python receiver, stopped when dropped.
pub(crate) struct Receiver {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Receiver {
    pub(crate) fn start() -> Receiver {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "the webhook tests need .venv with standardwebhooks: run `make test` (or `.venv/bin/pip install standardwebhooks`)"
        );
        let mut child = Command::new(python)
            .arg(root.join("tests/webhooks/receiver.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the receiver starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut line)
            .expect("the receiver prints its address");
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .expect("an address")
            .to_owned();
        Receiver {
            child,
            base,
            client: reqwest::Client::new(),
        }
    }

    pub(crate) fn hook(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub(crate) async fn configure(&self, secrets: &[&str], answers: &[u16]) {
        self.client
            .post(format!("{}/config", self.base))
            .json(&json!({"secrets": secrets, "answers": answers}))
            .send()
            .await
            .expect("the receiver takes its configuration");
    }

    pub(crate) async fn received(&self) -> Vec<Value> {
        let got = self
            .client
            .get(format!("{}/received", self.base))
            .send()
            .await
            .expect("the log");
        got.json::<Vec<Value>>().await.expect("a JSON list")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn endpoint(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let created = app
        .space(Method::POST, "/webhooks")
        .json(json!({"url": url, "events": events, "description": "test receiver"}))
        .send()
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().expect("the secret, once").to_owned();
    assert!(secret.starts_with("whsec_"));
    (created.body["id"].as_str().expect("an id").to_owned(), secret)
}

pub(crate) async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let listed = app
        .space(Method::GET, &format!("/webhooks/{webhook}/deliveries"))
        .send()
        .await
        .expect(200);
    listed.body["data"].as_array().cloned().unwrap_or_default()
}

async fn deliveries_are_signed_sent_once_and_logged(app: TestApp) {
    let receiver = Receiver::start();
    let (webhook, secret) = endpoint(&app, &receiver.hook(), json!(["contact.*"])).await;
    receiver.configure(&[&secret], &[]).await;
    let shown = app
        .space(Method::GET, &format!("/webhooks/{webhook}"))
        .send()
        .await
        .expect(200);
    assert!(shown.body.get("secret").is_none(), "the secret is shown once");
    assert!(!shown.text.contains(&secret));

    let contact = app.contact(json!({"name": "Ada", "email": "ada@example.com"})).await;
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Not wanted"}))
        .send()
        .await
        .expect(201);
    app.worker_pass().await;
    app.worker_pass().await;

    let received = receiver.received().await;
    assert_eq!(received.len(), 1, "{received:#?}");
    let delivery = &received[0];
    assert_eq!(
        delivery["verified_with"],
        json!([secret]),
        "the reference library verifies the signature"
    );
    assert_eq!(delivery["body"]["type"], "contact.created");
    assert_eq!(delivery["body"]["data"]["object"]["id"], contact["id"]);
    assert_eq!(
        delivery["body"]["resource"],
        json!({"type": "contact", "id": contact["id"]})
    );
    assert_eq!(
        delivery["webhook_id"], delivery["body"]["id"],
        "webhook-id is the event id"
    );

    let log = deliveries(&app, &webhook).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"][0]["status"], 204);
    assert_eq!(log[0]["id"], delivery["webhook_id"]);

    // An update is delivered too, after the first, and nothing twice.
    app.space(
        Method::PATCH,
        &format!("/contacts/{}", contact["id"].as_str().unwrap_or_default()),
    )
    .json(json!({"company": "Analytical Engines"}))
    .send()
    .await
    .expect(200);
    app.worker_pass().await;
    app.worker_pass().await;
    let received = receiver.received().await;
    let types: Vec<&str> = received.iter().filter_map(|d| d["body"]["type"].as_str()).collect();
    assert_eq!(types, ["contact.created", "contact.updated"]);

    // Another Space cannot see the endpoint.
    let (_, other_key) = app.other_space().await;
    app.request(Method::GET, &format!("{SPACE_API}/webhooks/{webhook}"))
        .key(&other_key)
        .send()
        .await
        .expect(404);
}

async fn failures_retry_on_schedule_and_410_turns_the_endpoint_off(app: TestApp) {
    let receiver = Receiver::start();
    let (webhook, secret) = endpoint(&app, &receiver.hook(), json!(["contact.*"])).await;
    receiver.configure(&[&secret], &[500, 503, 410]).await;
    app.contact(json!({"name": "Grace"})).await;

    app.worker_pass().await;
    let log = deliveries(&app, &webhook).await;
    assert_eq!(log[0]["status"], "retrying");
    assert_eq!(log[0]["attempts"][0]["status"], 500);
    app.worker_pass().await;
    assert_eq!(
        receiver.received().await.len(),
        1,
        "nothing before the first retry's 5 s"
    );

    app.clock.advance(TimeDelta::seconds(5));
    app.worker_pass().await;
    assert_eq!(receiver.received().await.len(), 2);
    // 503 with Retry-After: 7 waits 7 s, not the schedule's 5 minutes.
    app.clock.advance(TimeDelta::seconds(6));
    app.worker_pass().await;
    assert_eq!(receiver.received().await.len(), 2);
    app.clock.advance(TimeDelta::seconds(1));
    app.worker_pass().await;
    assert_eq!(receiver.received().await.len(), 3);

    let shown = app
        .space(Method::GET, &format!("/webhooks/{webhook}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["enabled"], false, "410 turns the endpoint off");
    assert!(app.event_types().await.contains(&"webhook.disabled".to_owned()));
    let log = deliveries(&app, &webhook).await;
    let statuses: Vec<&Value> = log[0]["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(410)]);
    assert_eq!(log[0]["status"], "failed");

    // Disabled: new events are not delivered.
    app.contact(json!({"name": "Hopper"})).await;
    app.clock.advance(TimeDelta::hours(1));
    app.worker_pass().await;
    assert_eq!(receiver.received().await.len(), 3);
}

async fn a_rotated_secret_signs_beside_the_old_one_for_a_day(app: TestApp) {
    let receiver = Receiver::start();
    let (webhook, old) = endpoint(&app, &receiver.hook(), json!(["contact.created"])).await;
    let rotated = app
        .space(Method::POST, &format!("/webhooks/{webhook}/rotate-secret"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let new = rotated.body["secret"].as_str().expect("a new secret").to_owned();
    assert_ne!(new, old);
    assert!(rotated.body["previous_valid_until"].is_string());
    receiver.configure(&[&old, &new], &[]).await;

    app.contact(json!({"name": "Ada"})).await;
    app.worker_pass().await;
    let received = receiver.received().await;
    assert_eq!(received.len(), 1);
    // (The receiver checks timestamps against its own clock, so the end of the overlap is
    // pinned by the signing module's unit test, not here.)
    assert_eq!(
        received[0]["verified_with"],
        json!([old, new]),
        "both secrets sign for a day"
    );
}

async fn rotations_at_once_lose_no_secret_they_hand_out(app: TestApp) {
    let (webhook, original) = endpoint(&app, "https://example.com/hook", json!(["contact.created"])).await;
    let path = format!("/webhooks/{webhook}/rotate-secret");
    let answers =
        futures::future::join_all((0..6).map(|_| app.space(Method::POST, &path).json(json!({})).send())).await;
    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    let handed: Vec<String> = answers
        .iter()
        .filter(|answer| answer.status == 200)
        .filter_map(|answer| answer.body["secret"].as_str().map(str::to_owned))
        .collect();
    assert!(!handed.is_empty(), "{statuses:?}");
    let stored = app
        .engine
        .signing_keys()
        .expect("signing keys")
        .get_key(&app.demo.space_id, &webhooks::secret_name(&webhook))
        .await
        .expect("a read")
        .expect("the secret");
    let stored: Value = serde_json::from_str(&stored).expect("JSON");
    // The last rotation's secret signs, and the one before it (another of these, when
    // several got through) signs beside it: none handed out was overwritten unseen.
    assert!(
        handed.iter().any(|secret| stored["current"] == secret.as_str()),
        "{stored}"
    );
    let before: Vec<&str> = match handed.len() {
        1 => vec![original.as_str()],
        _ => handed.iter().map(String::as_str).collect(),
    };
    assert!(
        before.iter().any(|secret| stored["previous"] == *secret),
        "{stored} {handed:?}"
    );
    // A request that died holding the rotation holds it for a minute, not for good.
    let hold = space_http::keys::unique(&app.demo.space_id, "webhook-rotation", &webhook);
    let held =
        space_store::Item::new(hold.pk, hold.sk, serde_json::Map::new()).expiring_at(app.engine.now().timestamp() + 60);
    app.engine
        .store()
        .put(held, space_store::Condition::None)
        .await
        .expect("written");
    app.space(Method::POST, &path).json(json!({})).send().await.expect(409);
    app.clock.advance(TimeDelta::seconds(61));
    app.space(Method::POST, &path).json(json!({})).send().await.expect(200);
}

async fn an_endpoint_for_everything_hears_nothing_about_itself(app: TestApp) {
    let receiver = Receiver::start();
    let (webhook, secret) = endpoint(&app, &receiver.hook(), json!(["*"])).await;
    receiver.configure(&[&secret], &[]).await;
    app.space(Method::PATCH, &format!("/webhooks/{webhook}"))
        .json(json!({"description": "everything"}))
        .send()
        .await
        .expect(200);
    let (_, other_secret) = endpoint(&app, "http://127.0.0.1:9/other", json!(["contact.*"])).await;
    assert_ne!(other_secret, secret);
    app.contact(json!({"name": "Ada"})).await;
    app.worker_pass().await;
    let mut types: Vec<String> = receiver
        .received()
        .await
        .iter()
        .filter_map(|d| d["body"]["type"].as_str().map(str::to_owned))
        .collect();
    // Deliveries of one pass run side by side: their order is not kept.
    types.sort();
    assert_eq!(
        types,
        ["contact.created", "webhook.created"],
        "the contact and the other endpoint's creation"
    );
}

async fn test_sends_and_manual_retries_reach_the_endpoint(app: TestApp) {
    let receiver = Receiver::start();
    let (webhook, secret) = endpoint(&app, &receiver.hook(), json!(["page.published"])).await;
    receiver.configure(&[&secret], &[]).await;
    let queued = app
        .space(Method::POST, &format!("/webhooks/{webhook}/test"))
        .json(json!({}))
        .send()
        .await
        .expect(202);
    app.worker_pass().await;
    let received = receiver.received().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["body"]["type"], "webhook.test");
    assert_eq!(received[0]["webhook_id"], queued.body["id"]);

    let delivery = queued.body["id"].as_str().unwrap_or_default();
    app.space(
        Method::POST,
        &format!("/webhooks/{webhook}/deliveries/{delivery}/retry"),
    )
    .json(json!({}))
    .send()
    .await
    .expect(202);
    app.worker_pass().await;
    let received = receiver.received().await;
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[1]["webhook_id"], queued.body["id"],
        "the same id, for the receiver to dedupe"
    );
    assert_eq!(
        deliveries(&app, &webhook).await[0]["attempts"].as_array().map(Vec::len),
        Some(2)
    );
    // Retried again and again, the record keeps the latest attempts and counts them all.
    let kept = webhooks::delivery::KEPT_ATTEMPTS;
    for _ in 0..kept {
        app.space(
            Method::POST,
            &format!("/webhooks/{webhook}/deliveries/{delivery}/retry"),
        )
        .json(json!({}))
        .send()
        .await
        .expect(202);
        app.worker_pass().await;
    }
    assert_eq!(receiver.received().await.len(), kept + 2);
    let record = &deliveries(&app, &webhook).await[0];
    assert_eq!(record["attempts"].as_array().map(Vec::len), Some(kept), "{record}");
    assert_eq!(record["attempt_count"], kept + 2, "{record}");
    app.space(Method::POST, &format!("/webhooks/{webhook}/deliveries/evt_nope/retry"))
        .json(json!({}))
        .send()
        .await
        .expect(404);
}

async fn targets_must_be_public_https(app: TestApp) {
    for (url, events) in [
        ("http://example.com/hook", json!(["*"])),
        ("https://10.0.0.1/hook", json!(["*"])),
        ("https://169.254.169.254/latest/meta-data", json!(["*"])),
        ("ftp://example.com/", json!(["*"])),
        ("https://example.com/hook", json!([])),
        ("https://example.com/hook", json!(["Contact.Created"])),
    ] {
        let refused = app
            .space(Method::POST, "/webhooks")
            .json(json!({"url": url, "events": events}))
            .send()
            .await
            .expect(422);
        let fields = &refused.body["error"]["fields"];
        assert!(
            fields.get("url").is_some() || fields.get("events").is_some(),
            "{url}: {refused:?}"
        );
    }
    // A well-formed type the API never writes is a typo, not a silent subscription to nothing.
    for typo in ["contcat.created", "contact.note", "contact.created.*"] {
        let refused = app
            .space(Method::POST, "/webhooks")
            .json(json!({"url": "https://example.com/hook", "events": ["page.*", typo]}))
            .send()
            .await
            .expect(422);
        let message = refused.body["error"]["fields"]["events"][0]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.contains(typo) && message.contains("selects no event type"),
            "{refused:?}"
        );
    }
    let page = app.space(Method::GET, "/webhooks").send().await.expect(200);
    assert_eq!(page.body["data"], json!([]), "nothing was saved");
}

/// An endpoint receives the events feed: a key that sets one up must be able to read the
/// feed. And a Space has a bounded number of endpoints (each holds a vault secret and a
/// share of the worker).
async fn endpoints_need_the_feed_and_are_bounded(app: TestApp) {
    let writer = app.mint(&["webhooks:write", "webhooks:read"], None).await;
    let body = json!({"url": "https://example.com/hook", "events": ["*"]});
    let refused = app
        .request(Method::POST, &format!("{SPACE_API}/webhooks"))
        .key(&writer)
        .json(body.clone())
        .send()
        .await
        .expect(403);
    assert!(refused.text.contains("events:read"), "{}", refused.text);
    let reader = app
        .mint(&["webhooks:write", "webhooks:read", "events:read"], None)
        .await;
    let mut ids = Vec::new();
    for _ in 0..webhooks::MAX_PER_SPACE {
        let created = app
            .request(Method::POST, &format!("{SPACE_API}/webhooks"))
            .key(&reader)
            .json(body.clone())
            .send()
            .await
            .expect(201);
        ids.push(created.body["id"].as_str().expect("an id").to_owned());
    }
    let full = app
        .space(Method::POST, "/webhooks")
        .json(body.clone())
        .send()
        .await
        .expect(409);
    assert!(full.text.contains("at most"), "{}", full.text);
    // Nor may the key without the feed change an endpoint.
    app.request(Method::PATCH, &format!("{SPACE_API}/webhooks/{}", ids[0]))
        .key(&writer)
        .json(json!({"events": ["contact.*"]}))
        .send()
        .await
        .expect(403);
    app.space(Method::DELETE, &format!("/webhooks/{}", ids[0]))
        .send()
        .await
        .expect(204);
    app.space(Method::POST, "/webhooks").json(body).send().await.expect(201);
}
