//! Phone: numbers the owner connects, their call log, and SMS checked (E.164, segments,
//! opt-outs), queued and moved through the provider on the worker; the AWS End User
//! Messaging adapter against a local stand-in speaking its JSON protocol.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::TimeDelta;
use phone::provider::SmsProvider;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Response, TestApp, on_both_backends};

use crate::family_checks;

on_both_backends!(
    numbers_are_connected_by_the_owner_and_listed,
    the_owner_renames_pauses_and_resets_a_number,
    sms_is_checked_counted_and_queued,
    opted_out_recipients_are_refused,
    sms_moves_through_the_provider_with_events,
    a_send_whose_run_died_is_asked_again_of_a_provider_that_recognises_it,
    calls_are_logged_by_the_provider_and_filtered,
    the_aws_adapter_sends_through_send_text_message,
    scopes_split_and_other_spaces_see_nothing,
);

/// Connects a phone number: its id.
pub async fn connect(app: &TestApp, number: &str, capabilities: &[&str]) -> String {
    let space = &app.demo.space_id;
    let created = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "phone", "number": number, "capabilities": capabilities, "name": "Front desk"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.body["provider"], "sandbox");
    created.body["id"].as_str().expect("an id").to_owned()
}

pub async fn send(app: &TestApp, from: &str, to: &str, text: &str) -> Response {
    app.space(Method::POST, "/phone/sms")
        .json(json!({"from_number_id": from, "to": to, "text": text}))
        .send()
        .await
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn sms(app: &TestApp, id: &str) -> Value {
    app.space(Method::GET, &format!("/phone/sms/{id}"))
        .send()
        .await
        .expect(200)
        .body
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

async fn numbers_are_connected_by_the_owner_and_listed(app: TestApp) {
    let space = &app.demo.space_id;
    let number = connect(&app, "+1 (201) 555-0100", &["sms", "voice", "sms"]).await;
    let shown = app
        .account(Method::GET, &format!("/spaces/{space}/connections/{number}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["number"], "+12015550100", "stored in E.164");
    assert_eq!(shown.body["capabilities"], json!(["sms", "voice"]), "each once");
    for (body, field) in [
        (
            json!({"kind": "phone", "number": "+1 555 123 4567", "capabilities": ["sms"], "name": "Fake"}),
            "number",
        ),
        (
            json!({"kind": "phone", "number": "+12015550100", "name": "No capabilities"}),
            "capabilities",
        ),
        (
            json!({"kind": "phone", "number": "+12015550100", "capabilities": ["fax"], "name": "Fax"}),
            "capabilities",
        ),
        (
            json!({"kind": "phone", "number": "+12015550100", "capabilities": ["sms"], "name": "Both", "channel": "sms"}),
            "channel",
        ),
        (
            json!({"kind": "social", "network": "x", "name": "Not on AWS", "provider": "aws"}),
            "provider",
        ),
    ] {
        let refused = app
            .account(Method::POST, &format!("/spaces/{space}/connections"))
            .json(body)
            .send()
            .await
            .expect(422);
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            refused.text
        );
    }
    let aws = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "phone", "number": "+12015550101", "capabilities": ["sms"], "name": "AWS", "provider": "aws"}))
        .send()
        .await
        .expect(201);
    assert_eq!(aws.body["provider"], "aws");
    // An AWS number sends for one connection of one Space; a sandbox number is anyone's.
    let aws_number = json!({"kind": "phone", "number": "+1 201 555 0101", "capabilities": ["sms"], "name": "Again", "provider": "aws"});
    let again = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(aws_number.clone())
        .send()
        .await
        .expect(409);
    assert!(
        again.text.contains(aws.body["id"].as_str().expect("an id")),
        "{}",
        again.text
    );
    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Stranger", None)
        .await
        .expect("a second account");
    let stranger_connects = |body: Value| {
        app.request(
            Method::POST,
            &format!("{}/spaces/{}/connections", space_tests::ACCOUNT_API, stranger.space_id),
        )
        .key(&stranger.account_key)
        .json(body)
        .send()
    };
    let refused = stranger_connects(aws_number.clone()).await.expect(409);
    assert!(refused.text.contains("another Space"), "{}", refused.text);
    stranger_connects(json!({"kind": "phone", "number": "+12015550100", "capabilities": ["sms"], "name": "Sandbox"}))
        .await
        .expect(201);
    let listed = app.space(Method::GET, "/phone/numbers").send().await.expect(200);
    let data = listed.body["data"].as_array().expect("a list");
    assert_eq!(data.len(), 2, "{}", listed.text);
    assert_eq!(data[0]["id"], number.as_str());
    assert_eq!(data[0]["number"], "+12015550100");
    assert_eq!(data[0]["capabilities"], json!(["sms", "voice"]));
    assert!(data[0].get("kind").is_none() && data[0].get("sandbox").is_none());
    // Disconnected, the number is free for another Space.
    app.account(
        Method::DELETE,
        &format!(
            "/spaces/{space}/connections/{}",
            aws.body["id"].as_str().expect("an id")
        ),
    )
    .send()
    .await
    .expect(204);
    stranger_connects(aws_number).await.expect(201);
}

async fn the_owner_renames_pauses_and_resets_a_number(app: TestApp) {
    let space = &app.demo.space_id;
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let at = format!("/spaces/{space}/connections/{number}");
    let patch = |body: Value| app.account(Method::PATCH, &at).json(body).send();
    let changed = patch(json!({"name": "Support line", "capabilities": ["sms", "voice"]}))
        .await
        .expect(200);
    assert_eq!(changed.body["name"], "Support line");
    assert_eq!(changed.body["capabilities"], json!(["sms", "voice"]));
    assert_eq!(changed.body["number"], "+12015550100", "what it is stays");
    assert_eq!(changed.body["version"], 2);

    // Paused, it sends nothing new; resumed, it does.
    patch(json!({"active": false})).await.expect(200);
    let refused = send(&app, &number, "+12015550123", "Hi").await.expect(422);
    assert!(refused.text.contains("paused"), "{}", refused.text);
    patch(json!({"active": true})).await.expect(200);
    send(&app, &number, "+12015550123", "Hi").await.expect(201);

    // What it is does not change; another kind's settings are refused; nothing is written.
    for (body, field) in [
        (json!({"number": "+12015550101"}), "number"),
        (json!({"provider": "aws"}), "provider"),
        (json!({"languages": ["en"]}), "languages"),
        (json!({"handle": "@front"}), "handle"),
        (json!({"name": null}), "name"),
        (json!({"capabilities": ["fax"]}), "capabilities"),
    ] {
        let refused = patch(body).await.expect(422);
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            refused.text
        );
    }
    patch(json!({})).await.expect(422);
    // A stale If-Match is 412.
    app.account(Method::PATCH, &at)
        .header("if-match", "\"1\"")
        .json(json!({"name": "Stale"}))
        .send()
        .await
        .expect(412);
    let shown = app.account(Method::GET, &at).send().await.expect(200);
    assert_eq!(shown.body["name"], "Support line");
    assert_eq!(shown.body["version"], 4);
    assert_eq!(count(&app.event_types().await, "connection.updated"), 3);
}

async fn sms_is_checked_counted_and_queued(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let voice_only = connect(&app, "+12015550101", &["voice"]).await;
    let sent = send(&app, &number, "+1 201-555-0123", "Your table is ready")
        .await
        .expect(201);
    assert_eq!(sent.body["status"], "queued");
    assert_eq!(sent.body["to"], "+12015550123", "stored in E.164");
    assert_eq!(sent.body["from"], "+12015550100");
    assert_eq!(sent.body["segments"], 1);
    assert_eq!(sent.body["encoding"], "GSM-7");
    assert!(sent.body["id"].as_str().is_some_and(|id| id.starts_with("sms_")));

    // GSM-7: 160 in one, 153 per part; UCS-2: 70, 67 per part; at most 10 parts.
    for (text, segments, encoding) in [
        ("a".repeat(160), 1, "GSM-7"),
        ("a".repeat(161), 2, "GSM-7"),
        ("a".repeat(1530), 10, "GSM-7"),
        ("ł".repeat(70), 1, "UCS-2"),
        ("ł".repeat(71), 2, "UCS-2"),
        ("ł".repeat(670), 10, "UCS-2"),
    ] {
        let sent = send(&app, &number, "+12015550123", &text).await.expect(201);
        assert_eq!(sent.body["segments"], segments, "{} characters", text.chars().count());
        assert_eq!(sent.body["encoding"], encoding);
    }
    for text in ["a".repeat(1531), "ł".repeat(671), "😀".repeat(336)] {
        let refused = send(&app, &number, "+12015550123", &text).await.expect(422);
        let why = refused.body["error"]["fields"]["text"][0].as_str().unwrap_or_default();
        assert!(why.contains("11 SMS segments"), "{why}");
    }
    for to in ["12015550123", "+1 555 123 4567", "+99912345", "call me"] {
        let refused = send(&app, &number, to, "Hi").await.expect(422);
        assert!(
            refused.body["error"]["fields"]["to"].is_array(),
            "{to}: {}",
            refused.text
        );
    }
    for from in [voice_only.as_str(), "conn_01JB0000000000000000000000", "nonsense"] {
        let refused = send(&app, from, "+12015550123", "Hi").await.expect(422);
        assert!(
            refused.body["error"]["fields"]["from_number_id"].is_array(),
            "{from}: {}",
            refused.text
        );
    }
    app.space(Method::POST, "/phone/sms")
        .json(json!({"from_number_id": number, "to": "+12015550123", "text": "Hi", "media_ids": []}))
        .send()
        .await
        .expect(422);
    send(&app, &number, "+12015550123", "   ").await.expect(422);
    let listed = app.space(Method::GET, "/phone/sms?limit=200").send().await.expect(200);
    assert_eq!(
        listed.body["data"].as_array().map(Vec::len),
        Some(7),
        "refusals recorded nothing"
    );
    let types = app.event_types().await;
    assert_eq!(count(&types, "sms.queued"), 7);
}

/// The inbox's opt-outs on the SMS channel: a contact who sent STOP gets no SMS until START.
async fn opted_out_recipients_are_refused(app: TestApp) {
    let space = &app.demo.space_id;
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let channel = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "messaging", "channel": "sms", "name": "Acme SMS", "address": "+12015550100"}))
        .send()
        .await
        .expect(201);
    let channel = id(&channel.body);
    let inject = |text: &'static str| {
        let channel = channel.clone();
        let app = &app;
        async move {
            app.account(Method::POST, &format!("/spaces/{space}/connections/{channel}/inbound"))
                .json(json!({"from": "+12015550123", "text": text}))
                .send()
                .await
                .expect(201);
        }
    };
    inject("Hello").await;
    send(&app, &number, "+12015550123", "Welcome").await.expect(201);
    inject("stop").await;
    let refused = send(&app, &number, "+1 201 555 0123", "Still there?").await.expect(422);
    assert_eq!(refused.error_code(), "RECIPIENT_OPTED_OUT", "{}", refused.text);
    // Another recipient is not affected.
    send(&app, &number, "+12015550124", "Hi").await.expect(201);
    inject("START").await;
    send(&app, &number, "+12015550123", "Welcome back").await.expect(201);

    // An opt-out between the request and the worker's send fails the message there.
    let queued = id(&send(&app, &number, "+12015550123", "Last one").await.expect(201).body);
    inject("STOP").await;
    app.worker_pass().await;
    let failed = sms(&app, &queued).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "RECIPIENT_OPTED_OUT");
}

async fn sms_moves_through_the_provider_with_events(app: TestApp) {
    let space = &app.demo.space_id;
    let number = connect(&app, "+12015550100", &["sms"]).await;
    app.account(Method::POST, &format!("/spaces/{space}/connections/{number}/sandbox"))
        .json(json!({"fail_recipients": ["+1 201 555 0199"], "undelivered_recipients": ["+12015550198"]}))
        .send()
        .await
        .expect(200);
    let delivered = id(&send(&app, &number, "+12015550123", "Hello").await.expect(201).body);
    let undelivered = id(&send(&app, &number, "+12015550198", "Hello").await.expect(201).body);
    let failed = id(&send(&app, &number, "+12015550199", "Hello").await.expect(201).body);

    app.worker_pass().await;
    let after = sms(&app, &delivered).await;
    assert_eq!(after["status"], "sent");
    assert!(
        after["provider_message_id"].is_string() && after["sent_at"].is_string(),
        "{after}"
    );
    assert_eq!(sms(&app, &undelivered).await["status"], "sent");
    let gone = sms(&app, &failed).await;
    assert_eq!(gone["status"], "failed");
    assert_eq!(gone["error"]["code"], "RECIPIENT_UNREACHABLE");
    app.worker_pass().await;
    assert_eq!(sms(&app, &delivered).await["status"], "sent", "no receipt yet");
    app.clock.advance(TimeDelta::seconds(2));
    app.worker_pass().await;
    let done = sms(&app, &delivered).await;
    assert_eq!(done["status"], "delivered");
    assert!(done["delivered_at"].is_string());
    assert_eq!(sms(&app, &undelivered).await["status"], "undelivered");
    // Later passes change nothing.
    app.clock.advance(TimeDelta::minutes(30));
    app.worker_pass().await;
    assert_eq!(sms(&app, &delivered).await["status"], "delivered");

    let by_status = app
        .space(Method::GET, "/phone/sms?status=undelivered")
        .send()
        .await
        .expect(200);
    let ids: Vec<&str> = by_status.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, [undelivered.as_str()]);
    let by_recipient = app
        .space(Method::GET, "/phone/sms?to=%2B1%20201%20555%200123")
        .send()
        .await
        .expect(200);
    assert_eq!(
        by_recipient.body["data"][0]["id"],
        delivered.as_str(),
        "{}",
        by_recipient.text
    );
    assert_eq!(by_recipient.body["data"].as_array().map(Vec::len), Some(1));

    let types = app.event_types().await;
    for (kind, times) in [
        ("sms.queued", 3),
        ("sms.sent", 2),
        ("sms.delivered", 1),
        ("sms.undelivered", 1),
        ("sms.failed", 1),
    ] {
        assert_eq!(count(&types, kind), times, "{kind} in {types:?}");
    }
}

async fn a_send_whose_run_died_is_asked_again_of_a_provider_that_recognises_it(app: TestApp) {
    let space = app.demo.space_id.clone();
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let message_id = id(&send(&app, &number, "+12015550123", "Hello").await.expect(201).body);
    // A run claims the message and the sandbox sends it; the run dies before `sent`.
    let out = space_connections::outbound::Outbound { events: "sms" };
    let claimed = out
        .claim(&app.engine, &stored(&app, &message_id).await)
        .await
        .expect("claimed");
    let connection = space_connections::get(&app.engine, &space, &number)
        .await
        .expect("a read")
        .expect("the number");
    let first = phone::provider::Sandbox
        .send(
            &app.engine,
            &space,
            &connection,
            phone::provider::Outgoing::of(&claimed),
        )
        .await
        .expect("sent");
    assert_eq!(sms(&app, &message_id).await["status"], "sending");

    // The job runs again: the sandbox answers with its first send, and nothing goes twice.
    app.worker_pass().await;
    let sent = sms(&app, &message_id).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(sent["provider_message_id"], first.provider_message_id.as_str());
    let records = app
        .engine
        .store()
        .query(space_store::Query::partition(space_http::keys::collection_partition(
            &space,
            phone::provider::SENT,
        )))
        .await
        .expect("a read");
    assert_eq!(records.items.len(), 1, "the sandbox sent once");
    assert_eq!(count(&app.event_types().await, "sms.sent"), 1);
}

async fn calls_are_logged_by_the_provider_and_filtered(app: TestApp) {
    let space = &app.demo.space_id;
    let number = connect(&app, "+12015550100", &["sms", "voice"]).await;
    let sms_only = connect(&app, "+12015550101", &["sms"]).await;
    let record = |connection: String, body: Value| {
        let app = &app;
        async move {
            app.account(Method::POST, &format!("/spaces/{space}/connections/{connection}/calls"))
                .json(body)
                .send()
                .await
        }
    };
    let inbound = record(
        number.clone(),
        json!({"direction": "inbound", "from": "+1 201 555 0123", "duration_seconds": 95, "status": "completed", "recording_media_id": "med_1"}),
    )
    .await
    .expect(201);
    assert_eq!(inbound.body["from"], "+12015550123");
    assert_eq!(inbound.body["to"], "+12015550100", "the number's own end");
    assert_eq!(inbound.body["number_id"], number.as_str());
    record(
        number.clone(),
        json!({"direction": "outbound", "to": "+12015550124", "duration_seconds": 0, "status": "no-answer"}),
    )
    .await
    .expect(201);
    for body in [
        json!({"direction": "inbound", "duration_seconds": 5, "status": "completed"}),
        json!({"direction": "outbound", "to": "+1 555 123 4567", "duration_seconds": 5, "status": "completed"}),
        json!({"direction": "sideways", "to": "+12015550124", "duration_seconds": 5, "status": "completed"}),
        json!({"direction": "outbound", "to": "+12015550124", "duration_seconds": -1, "status": "completed"}),
        json!({"direction": "outbound", "to": "+12015550124", "duration_seconds": 5, "status": "ringing"}),
        json!({"direction": "outbound", "to": "+12015550124", "duration_seconds": 5, "status": "completed", "started_at": "2999-01-01T00:00:00Z"}),
    ] {
        record(number.clone(), body).await.expect(422);
    }
    record(
        sms_only,
        json!({"direction": "inbound", "from": "+12015550123", "duration_seconds": 5, "status": "completed"}),
    )
    .await
    .expect(409);

    let all = app.space(Method::GET, "/phone/calls").send().await.expect(200);
    assert_eq!(all.body["data"].as_array().map(Vec::len), Some(2), "{}", all.text);
    let first = &all.body["data"][0];
    for field in [
        "from",
        "to",
        "direction",
        "duration_seconds",
        "status",
        "recording_media_id",
        "started_at",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    let only = |query: &'static str| {
        let app = &app;
        async move {
            let page = app
                .space(Method::GET, &format!("/phone/calls?{query}"))
                .send()
                .await
                .expect(200);
            page.body["data"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(only("direction=inbound").await, ["completed"]);
    assert_eq!(only("direction=outbound").await, ["no-answer"]);
    assert_eq!(only("from=%2B12015550123").await, ["completed"]);
    assert_eq!(only("to=%2B12015550124").await, ["no-answer"]);
    assert_eq!(only("to=%2B12015550100&direction=inbound").await, ["completed"]);
    app.space(Method::GET, "/phone/calls?direction=sideways")
        .send()
        .await
        .expect(422);
    let call_id = id(&inbound.body);
    let one = app
        .space(Method::GET, &format!("/phone/calls/{call_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(one.body["duration_seconds"], 95);
    assert_eq!(one.body["recording_media_id"], "med_1");
    assert!(app.event_types().await.iter().any(|t| t == "call.created"));
}

/// What the local stand-in for an AWS API received.
#[derive(Default, Clone)]
pub(crate) struct Received {
    pub(crate) requests: Arc<Mutex<Vec<(String, Value)>>>,
}

/// A local server speaking `SendTextMessage` (awsJson1_0), or any AWS JSON API: answers
/// `answer` with `status` and keeps each request's target header and body.
pub(crate) async fn stand_in(status: u16, answer: Value) -> (String, Received) {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    let received = Received::default();
    let kept = received.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let kept = kept.clone();
        let answer = answer.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            kept.requests.lock().expect("not poisoned").push((target, body));
            (
                StatusCode::from_u16(status).expect("a status"),
                [("content-type", "application/x-amz-json-1.0")],
                answer.to_string(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, received)
}

fn aws_client(endpoint: &str) -> phone::provider::AwsSms {
    use aws_sdk_pinpointsmsvoicev2::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_pinpointsmsvoicev2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    phone::provider::AwsSms::new(aws_sdk_pinpointsmsvoicev2::Client::from_conf(config))
}

/// The stored message `id`, as the worker reads it.
async fn stored(app: &TestApp, id: &str) -> space_store::Item {
    let partition = space_http::keys::collection_partition(&app.demo.space_id, phone::sms::MESSAGES);
    app.engine
        .store()
        .get(&partition, id)
        .await
        .expect("a read")
        .expect("the message")
}

async fn the_aws_adapter_sends_through_send_text_message(app: TestApp) {
    let space = app.demo.space_id.clone();
    let created = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "phone", "number": "+12015550100", "capabilities": ["sms"], "name": "AWS", "provider": "aws"}))
        .send()
        .await
        .expect(201);
    let number = id(&created.body);
    let queued = send(&app, &number, "+12015550123", "Your code is 123456")
        .await
        .expect(201);
    assert_eq!(queued.body["provider"], "aws");
    let message_id = id(&queued.body);

    let (endpoint, received) = stand_in(200, json!({"MessageId": "aws-msg-0001"})).await;
    let aws = aws_client(&endpoint);
    let message = stored(&app, &message_id).await;
    phone::delivery::deliver(&app.engine, &space, &message, Some(&aws), 0)
        .await
        .expect("sent");
    let requests = received.requests.lock().expect("not poisoned").clone();
    assert_eq!(requests.len(), 1);
    let (target, body) = &requests[0];
    assert_eq!(target, "PinpointSMSVoiceV2.SendTextMessage");
    assert_eq!(body["OriginationIdentity"], "+12015550100");
    assert_eq!(body["DestinationPhoneNumber"], "+12015550123");
    assert_eq!(body["MessageBody"], "Your code is 123456");
    assert_eq!(body["MessageType"], "TRANSACTIONAL");
    let sent = sms(&app, &message_id).await;
    assert_eq!(sent["status"], "sent");
    assert_eq!(
        sent["provider_message_id"], "aws-msg-0001",
        "the returned MessageId is recorded"
    );

    // A refusal fails the message; throttling is retried.
    let refused_id = id(&send(&app, &number, "+12015550124", "Hi").await.expect(201).body);
    let (endpoint, _) = stand_in(
        400,
        json!({"__type": "ValidationException", "message": "The destination is not reachable"}),
    )
    .await;
    let message = stored(&app, &refused_id).await;
    phone::delivery::deliver(&app.engine, &space, &message, Some(&aws_client(&endpoint)), 0)
        .await
        .expect("recorded");
    let refused = sms(&app, &refused_id).await;
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["error"]["code"], "PROVIDER_REFUSED");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ValidationException"),
        "{refused}"
    );
    let throttled_id = id(&send(&app, &number, "+12015550125", "Hi").await.expect(201).body);
    let (endpoint, _) = stand_in(400, json!({"__type": "ThrottlingException", "message": "Slow down"})).await;
    let message = stored(&app, &throttled_id).await;
    let outcome = phone::delivery::deliver(&app.engine, &space, &message, Some(&aws_client(&endpoint)), 0).await;
    assert!(matches!(outcome, Err(space_worker::JobError::Retry(_))), "{outcome:?}");
    assert_eq!(sms(&app, &throttled_id).await["status"], "queued");
}

async fn scopes_split_and_other_spaces_see_nothing(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms", "voice"]).await;
    let sent = id(&send(&app, &number, "+12015550123", "Hi").await.expect(201).body);
    let space = &app.demo.space_id;
    let call = app
        .account(Method::POST, &format!("/spaces/{space}/connections/{number}/calls"))
        .json(json!({"direction": "inbound", "from": "+12015550123", "duration_seconds": 5, "status": "completed"}))
        .send()
        .await
        .expect(201);
    let call = id(&call.body);
    let ids = [("id", sent.as_str())];
    let bodies: HashMap<&str, Value> = HashMap::from([(
        "phone_sms_send",
        json!({"from_number_id": number, "to": "+12015550123", "text": "Hi"}),
    )]);
    family_checks::scopes_are_enforced(&app, "phone", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "phone", &ids, &bodies).await;
    let (_, other) = app.other_space().await;
    let path = format!("{}/phone/calls/{call}", space_tests::SPACE_API);
    app.request(Method::GET, &path).key(&other).send().await.expect(404);
    // The other Space cannot send from this Space's number.
    let refused = app
        .request(Method::POST, &format!("{}/phone/sms", space_tests::SPACE_API))
        .key(&other)
        .json(json!({"from_number_id": number, "to": "+12015550123", "text": "Hi"}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["from_number_id"].is_array());
}
