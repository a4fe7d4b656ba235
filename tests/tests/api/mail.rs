//! Mail: senders the owner connects (verified at once in the sandbox, through SES
//! identities otherwise), messages checked (addresses, recipients, bodies, html
//! sanitized), capped, idempotent, moved through the provider on the worker, and the
//! suppression list that hard bounces and complaints fill; SES against moto.

use std::collections::HashMap;

use chrono::TimeDelta;
use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Response, SPACE_API, TestApp, on_both_backends};

use crate::family_checks;

on_both_backends!(
    senders_are_connected_by_the_owner_and_checked,
    mail_moves_through_the_sandbox_to_delivered_with_events,
    bodies_addresses_and_recipients_are_checked,
    senders_must_be_verified_mail_connections_of_the_space,
    bounces_and_complaints_suppress_addresses,
    the_daily_cap_lets_exactly_its_sends_through,
    an_idempotent_retry_sends_once,
    scopes_split_and_other_spaces_see_nothing,
    ses_senders_are_verified_and_send_through_ses,
);

/// Connects a mail sender (an address or a domain) through `provider`: its body.
async fn connect(app: &TestApp, address: &str, provider: &str) -> Value {
    let space = &app.demo.space_id;
    app.account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "mail", "address": address, "provider": provider}))
        .send()
        .await
        .expect(201)
        .body
}

async fn sandbox_sender(app: &TestApp) -> String {
    id(&connect(app, "Agent@Example.com", "sandbox").await)
}

async fn send(app: &TestApp, body: Value) -> Response {
    app.space(Method::POST, "/mail/messages").json(body).send().await
}

fn simple(sender: &str, to: &[&str]) -> Value {
    json!({"from_sender_id": sender, "to": to, "subject": "Your order", "text": "It shipped."})
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// Two passes around the sandbox's report delay: sent, then reported.
async fn deliver_all(app: &TestApp) {
    app.worker_pass().await;
    app.clock.advance(TimeDelta::seconds(2));
    app.worker_pass().await;
}

async fn message(app: &TestApp, id: &str) -> Value {
    app.space(Method::GET, &format!("/mail/messages/{id}"))
        .send()
        .await
        .expect(200)
        .body
}

fn recipient_statuses(message: &Value) -> Vec<(String, String)> {
    message["recipients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["address"].as_str().unwrap_or_default().to_owned(),
                r["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

fn field_errors(response: &Response, field: &str) -> String {
    response.body["error"]["fields"][field].to_string()
}

async fn senders_are_connected_by_the_owner_and_checked(app: TestApp) {
    let space = &app.demo.space_id;
    let address = connect(&app, " Agent@Example.com ", "sandbox").await;
    assert_eq!(address["address"], "agent@example.com");
    assert_eq!(address["address_type"], "address");
    assert_eq!(address["verified"], true, "a sandbox sender is verified at once");
    assert_eq!(address["name"], "agent@example.com", "the name defaults to the address");
    let domain = connect(&app, "Mail.Example.org", "sandbox").await;
    assert_eq!(domain["address"], "mail.example.org");
    assert_eq!(domain["address_type"], "domain");
    // A key sees the senders it may send from, without the owner's sandbox orders.
    let listed = app.space(Method::GET, "/mail/senders").send().await.expect(200);
    let senders = listed.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(senders.len(), 2, "{}", listed.text);
    assert_eq!(senders[0]["id"], address["id"]);
    assert_eq!(senders[0]["verified"], true);
    assert_eq!(senders[1]["address"], "mail.example.org");
    assert!(senders[0].get("kind").is_none() && senders[0].get("sandbox").is_none());
    for (body, field) in [
        (json!({"kind": "mail", "address": "not an address"}), "address"),
        (json!({"kind": "mail", "address": "Ada <ada@example.com>"}), "address"),
        (json!({"kind": "mail", "address": "localhost"}), "address"),
        (json!({"kind": "mail"}), "address"),
        (
            json!({"kind": "mail", "address": "a@example.com", "provider": "aws"}),
            "provider",
        ),
        (
            json!({"kind": "mail", "address": "a@example.com", "number": "+12015550100"}),
            "number",
        ),
        (
            json!({"kind": "phone", "number": "+12015550100", "capabilities": ["sms"], "name": "P", "provider": "ses"}),
            "provider",
        ),
        (json!({"kind": "social", "network": "x"}), "name"),
    ] {
        let refused = app
            .account(Method::POST, &format!("/spaces/{space}/connections"))
            .json(body.clone())
            .send()
            .await
            .expect(422);
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{body}: {}",
            refused.text
        );
    }
}

async fn mail_moves_through_the_sandbox_to_delivered_with_events(app: TestApp) {
    let sender = sandbox_sender(&app).await;
    let accepted = send(
        &app,
        json!({
            "from_sender_id": sender,
            "to": ["Ada@Example.com", "grace@example.com"],
            "cc": ["ada@example.com", "linus@example.com"],
            "bcc": ["ken@example.com"],
            "reply_to": "help@example.com",
            "subject": "Your order",
            "text": "It shipped.",
        }),
    )
    .await
    .expect(202);
    assert_eq!(accepted.body["status"], "queued");
    assert_eq!(accepted.body["from"], "agent@example.com");
    assert_eq!(accepted.body["to"], json!(["ada@example.com", "grace@example.com"]));
    assert_eq!(
        accepted.body["cc"],
        json!(["linus@example.com"]),
        "a repeat counts once"
    );
    let first = id(&accepted.body);
    let second = id(&send(&app, simple(&sender, &["bob@example.com"])).await.expect(202).body);

    app.worker_pass().await;
    let sent = message(&app, &first).await;
    assert_eq!(sent["status"], "sent");
    assert!(
        sent["provider_message_id"].is_string() && sent["sent_at"].is_string(),
        "{sent}"
    );
    assert!(recipient_statuses(&sent).iter().all(|(_, s)| s == "sent"), "{sent}");
    app.clock.advance(TimeDelta::seconds(2));
    app.worker_pass().await;
    let done = message(&app, &first).await;
    assert_eq!(done["status"], "delivered");
    assert!(done["delivered_at"].is_string());
    assert_eq!(
        recipient_statuses(&done),
        [
            ("ada@example.com".to_owned(), "delivered".to_owned()),
            ("grace@example.com".into(), "delivered".into()),
            ("linus@example.com".into(), "delivered".into()),
            ("ken@example.com".into(), "delivered".into()),
        ]
    );
    // Later passes change nothing.
    app.clock.advance(TimeDelta::minutes(30));
    app.worker_pass().await;
    assert_eq!(message(&app, &first).await["version"], done["version"]);

    let listed = app.space(Method::GET, "/mail/messages").send().await.expect(200);
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    let page = app
        .space(Method::GET, "/mail/messages?limit=1")
        .send()
        .await
        .expect(200);
    let cursor = page.body["next_cursor"].as_str().expect("a next page");
    let next = app
        .space(Method::GET, &format!("/mail/messages?limit=1&cursor={cursor}"))
        .send()
        .await
        .expect(200);
    assert_eq!(next.body["data"][0]["id"], first.as_str());
    let delivered = app
        .space(Method::GET, "/mail/messages?status=delivered")
        .send()
        .await
        .expect(200);
    assert_eq!(delivered.body["data"].as_array().map(Vec::len), Some(2));
    let queued = app
        .space(Method::GET, "/mail/messages?status=queued")
        .send()
        .await
        .expect(200);
    assert_eq!(queued.body["data"], json!([]));
    app.space(Method::GET, "/mail/messages?status=lost")
        .send()
        .await
        .expect(422);

    let types = app.event_types().await;
    for (kind, times) in [("mail.queued", 2), ("mail.sent", 2), ("mail.delivered", 2)] {
        assert_eq!(count(&types, kind), times, "{kind} in {types:?}");
    }
}

async fn bodies_addresses_and_recipients_are_checked(app: TestApp) {
    let sender = sandbox_sender(&app).await;
    let no_body = send(
        &app,
        json!({"from_sender_id": sender, "to": ["a@example.com"], "subject": "Hi"}),
    )
    .await
    .expect(422);
    assert!(
        field_errors(&no_body, "text").contains("text, html or both"),
        "{}",
        no_body.text
    );

    let many: Vec<String> = (0..51).map(|n| format!("r{n}@example.com")).collect();
    let too_many = send(
        &app,
        json!({"from_sender_id": sender, "to": many, "subject": "Hi", "text": "x"}),
    )
    .await
    .expect(422);
    assert!(
        field_errors(&too_many, "to").contains("at most 50"),
        "{}",
        too_many.text
    );
    let (to, cc): (Vec<String>, Vec<String>) = (
        (0..30).map(|n| format!("t{n}@example.com")).collect(),
        (0..21).map(|n| format!("c{n}@example.com")).collect(),
    );
    let together = send(
        &app,
        json!({"from_sender_id": sender, "to": to, "cc": cc, "subject": "Hi", "text": "x"}),
    )
    .await
    .expect(422);
    assert!(
        field_errors(&together, "to").contains("51 recipients"),
        "{}",
        together.text
    );
    let fifty: Vec<String> = (0..50).map(|n| format!("r{n}@example.com")).collect();
    send(
        &app,
        json!({"from_sender_id": sender, "to": fifty, "subject": "Hi", "text": "x"}),
    )
    .await
    .expect(202);

    for (body, field, says) in [
        (
            json!({"to": ["ok@example.com", "not-an-address"]}),
            "to",
            "not-an-address",
        ),
        (
            json!({"to": ["ok@example.com"], "cc": ["Ada <ada@example.com>"]}),
            "cc",
            "Ada <ada@example.com>",
        ),
        (json!({"to": ["ok@example.com"], "bcc": "x@example.com"}), "bcc", "list"),
        (json!({"to": []}), "to", "at least one"),
        (
            json!({"to": ["ok@example.com"], "reply_to": "nobody"}),
            "reply_to",
            "valid email",
        ),
        (json!({"to": ["ok@example.com"], "subject": "  "}), "subject", "empty"),
        (
            json!({"to": ["ok@example.com"], "subject": "a\r\nBcc: x@example.com"}),
            "subject",
            "one line",
        ),
        (
            json!({"to": ["ok@example.com"], "subject": "x".repeat(999)}),
            "subject",
            "998",
        ),
        (json!({"to": ["ok@example.com"], "text": ""}), "text", "empty"),
        (
            json!({"to": ["ok@example.com"], "attachments": []}),
            "attachments",
            "not accepted",
        ),
    ] {
        let mut request = json!({"from_sender_id": sender, "subject": "Hi", "text": "x"});
        for (name, value) in body.as_object().into_iter().flatten() {
            request[name] = value.clone();
        }
        let refused = send(&app, request).await.expect(422);
        let why = field_errors(&refused, field);
        assert!(why.contains(says), "{body}: {}", refused.text);
    }

    let html = r#"<p onclick="steal()">Hello <b>Ada</b></p><script>alert(document.cookie)</script><a href="javascript:alert(1)">x</a>"#;
    let accepted = send(
        &app,
        json!({"from_sender_id": sender, "to": ["ada@example.com"], "subject": "Hi", "html": html}),
    )
    .await
    .expect(202);
    let stored = message(&app, &id(&accepted.body)).await;
    let kept = stored["html"].as_str().expect("the html");
    assert!(kept.contains("<p>Hello <b>Ada</b></p>"), "{kept}");
    for gone in ["<script", "alert(document", "onclick", "javascript:"] {
        assert!(!kept.contains(gone), "{gone} in {kept}");
    }
    assert_eq!(accepted.body["html"], kept, "the answer shows what was stored");
    assert!(stored.get("text").is_none(), "html alone is a body");
    let emptied = send(
        &app,
        json!({"from_sender_id": sender, "to": ["ada@example.com"], "subject": "Hi", "html": "<script>alert(1)</script>"}),
    )
    .await
    .expect(422);
    assert!(field_errors(&emptied, "html").contains("sanitized"), "{}", emptied.text);
}

async fn senders_must_be_verified_mail_connections_of_the_space(app: TestApp) {
    let space = &app.demo.space_id;
    let phone = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "phone", "number": "+12015550100", "capabilities": ["sms"], "name": "Desk"}))
        .send()
        .await
        .expect(201);
    for sender in ["conn_01J00000000000000000000000", "nope", id(&phone.body).as_str()] {
        let refused = send(&app, simple(sender, &["a@example.com"])).await.expect(422);
        assert!(
            field_errors(&refused, "from_sender_id").contains("no mail sender"),
            "{sender}: {}",
            refused.text
        );
    }
    // Another Space's sender is no sender of this one.
    let (other_space, other_key) = app.other_space().await;
    let theirs = app
        .account(Method::POST, &format!("/spaces/{other_space}/connections"))
        .json(json!({"kind": "mail", "address": "them@example.net"}))
        .send()
        .await
        .expect(201);
    send(&app, simple(&id(&theirs.body), &["a@example.com"]))
        .await
        .expect(422);
    let ours = sandbox_sender(&app).await;
    app.request(Method::POST, &format!("{SPACE_API}/mail/messages"))
        .key(&other_key)
        .json(simple(&ours, &["a@example.com"]))
        .send()
        .await
        .expect(422);
    // An SES sender is not verified until SES says so (the worker has not run here).
    let pending = connect(&app, "pending@example.com", "ses").await;
    assert_eq!(pending["verified"], false);
    assert_eq!(pending["verification_status"], "pending");
    let refused = send(&app, simple(&id(&pending), &["a@example.com"])).await.expect(422);
    assert_eq!(refused.error_code(), "SENDER_UNVERIFIED");
    // An address sender sends as itself; a domain sender as any address at its domain.
    let wrong_from = send(
        &app,
        json!({"from_sender_id": ours, "from": "else@example.com", "to": ["a@example.com"], "subject": "Hi", "text": "x"}),
    )
    .await
    .expect(422);
    assert!(wrong_from.body["error"]["fields"]["from"].is_array());
    let domain = id(&connect(&app, "example.org", "sandbox").await);
    let default_from = send(&app, simple(&domain, &["a@example.com"])).await.expect(202);
    assert_eq!(default_from.body["from"], "no-reply@example.org");
    let chosen = send(
        &app,
        json!({"from_sender_id": domain, "from": "Sales@Example.org", "to": ["a@example.com"], "subject": "Hi", "text": "x"}),
    )
    .await
    .expect(202);
    assert_eq!(chosen.body["from"], "sales@example.org");
    send(
        &app,
        json!({"from_sender_id": domain, "from": "sales@example.com", "to": ["a@example.com"], "subject": "Hi", "text": "x"}),
    )
    .await
    .expect(422);
    assert_eq!(
        count(&app.event_types().await, "mail.queued"),
        2,
        "only the accepted ones"
    );
}

async fn bounces_and_complaints_suppress_addresses(app: TestApp) {
    let space = &app.demo.space_id;
    let sender = sandbox_sender(&app).await;
    app.account(Method::POST, &format!("/spaces/{space}/connections/{sender}/sandbox"))
        .json(json!({
            "bounce_recipients": ["Gone@Example.com"],
            "complain_recipients": ["angry@example.com"],
            "fail_recipients": ["refused@example.com"],
        }))
        .send()
        .await
        .expect(200);
    let bounced = id(&send(&app, simple(&sender, &["gone@example.com", "fine@example.com"]))
        .await
        .expect(202)
        .body);
    let complained = id(
        &send(&app, simple(&sender, &["angry@example.com", "gone2@example.com"]))
            .await
            .expect(202)
            .body,
    );
    let failed = id(&send(&app, simple(&sender, &["refused@example.com"]))
        .await
        .expect(202)
        .body);
    deliver_all(&app).await;

    let first = message(&app, &bounced).await;
    assert_eq!(first["status"], "bounced");
    assert_eq!(
        recipient_statuses(&first),
        [
            ("gone@example.com".to_owned(), "bounced".to_owned()),
            ("fine@example.com".into(), "delivered".into()),
        ]
    );
    assert_eq!(message(&app, &complained).await["status"], "complained");
    let refused = message(&app, &failed).await;
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["error"]["code"], "RECIPIENT_UNREACHABLE");

    // The next send to a suppressed address is refused whole, naming it; nothing is sent.
    let events = app.event_types().await.len();
    let again = send(
        &app,
        simple(&sender, &["fine@example.com", "Gone@example.com", "angry@example.com"]),
    )
    .await
    .expect(422);
    assert_eq!(again.error_code(), "RECIPIENT_SUPPRESSED");
    let says = again.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        says.contains("gone@example.com") && says.contains("angry@example.com"),
        "{says}"
    );
    assert!(!says.contains("fine@example.com"), "{says}");
    assert_eq!(app.event_types().await.len(), events, "nothing was queued");

    // The owner reads the list and lifts an address from it.
    let listed = app
        .account(Method::GET, &format!("/spaces/{space}/mail/suppressions"))
        .send()
        .await
        .expect(200);
    let entries: Vec<(String, String)> = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["address"].as_str().unwrap_or_default().into(),
                s["reason"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("angry@example.com".to_owned(), "complaint".to_owned()),
            ("gone@example.com".into(), "hard_bounce".into()),
        ]
    );
    assert_eq!(listed.body["next_cursor"], Value::Null);
    app.account(
        Method::GET,
        &format!("/spaces/{space}/mail/suppressions?cursor=gone%40example.com"),
    )
    .send()
    .await
    .expect(400);
    app.account(
        Method::DELETE,
        &format!("/spaces/{space}/mail/suppressions/not-an-address"),
    )
    .send()
    .await
    .expect(404);
    app.account(
        Method::DELETE,
        &format!("/spaces/{space}/mail/suppressions/Gone%40example.com"),
    )
    .send()
    .await
    .expect(204);
    app.account(
        Method::DELETE,
        &format!("/spaces/{space}/mail/suppressions/gone%40example.com"),
    )
    .send()
    .await
    .expect(404);
    send(&app, simple(&sender, &["gone@example.com"])).await.expect(202);
    // Another Space's list is its own.
    let (other_space, other_key) = app.other_space().await;
    let theirs = app
        .account(Method::POST, &format!("/spaces/{other_space}/connections"))
        .json(json!({"kind": "mail", "address": "them@example.net"}))
        .send()
        .await
        .expect(201);
    app.request(Method::POST, &format!("{SPACE_API}/mail/messages"))
        .key(&other_key)
        .json(simple(&id(&theirs.body), &["angry@example.com"]))
        .send()
        .await
        .expect(202);
}

async fn the_daily_cap_lets_exactly_its_sends_through(app: TestApp) {
    let space = &app.demo.space_id;
    let sender = sandbox_sender(&app).await;
    let limits = json!({"mail.send": {"per_day": 5}});
    let minted = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "capped", "scopes": ["mail:write"], "rate_limit_per_minute": 100_000, "limits": limits}))
        .send()
        .await
        .expect(201);
    assert_eq!(minted.body["limits"], limits);
    let key = minted.body["token"].as_str().expect("a token").to_owned();
    let sends = (0..30).map(|n| {
        let (app, key, sender) = (&app, key.clone(), sender.clone());
        async move {
            app.request(Method::POST, &format!("{SPACE_API}/mail/messages"))
                .key(&key)
                .json(simple(&sender, &[&format!("r{n}@example.com")]))
                .send()
                .await
        }
    });
    let responses = join_all(sends).await;
    assert_eq!(
        responses.iter().filter(|r| r.status == 202).count(),
        5,
        "exactly the cap"
    );
    for capped in responses.iter().filter(|r| r.status != 202) {
        assert_eq!(capped.status, 429, "{}", capped.text);
        assert_eq!(capped.error_code(), "LIVE_ACTION_CAP");
        assert_eq!(capped.body["error"]["cap"], "mail.send");
        assert_eq!(capped.body["error"]["limit"], 5);
    }
    assert_eq!(count(&app.event_types().await, "mail.queued"), 5);
    // A refused send (a suppressed or invalid one) takes nothing of a fresh day's cap.
    let now = app.engine.now();
    app.clock
        .advance(space_http::caps::resets_at(now) - now + TimeDelta::seconds(1));
    let capped_send = |to: &'static str| {
        let (app, key, sender) = (&app, key.clone(), sender.clone());
        async move {
            app.request(Method::POST, &format!("{SPACE_API}/mail/messages"))
                .key(&key)
                .json(simple(&sender, &[to]))
                .send()
                .await
        }
    };
    capped_send("not-an-address").await.expect(422);
    for _ in 0..5 {
        capped_send("next@example.com").await.expect(202);
    }
    assert_eq!(capped_send("next@example.com").await.status, 429);
}

async fn an_idempotent_retry_sends_once(app: TestApp) {
    let sender = sandbox_sender(&app).await;
    let keyed = || {
        app.space(Method::POST, "/mail/messages")
            .header("idempotency-key", "welcome-ada")
            .json(simple(&sender, &["ada@example.com"]))
            .send()
    };
    let first = keyed().await.expect(202);
    let again = keyed().await.expect(202);
    assert_eq!(first.body["id"], again.body["id"]);
    deliver_all(&app).await;
    let listed = app.space(Method::GET, "/mail/messages").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    let types = app.event_types().await;
    assert_eq!(count(&types, "mail.queued"), 1);
    assert_eq!(count(&types, "mail.sent"), 1);
    // The same key with another body is a mistake, not a second message.
    let changed = app
        .space(Method::POST, "/mail/messages")
        .header("idempotency-key", "welcome-ada")
        .json(simple(&sender, &["grace@example.com"]))
        .send()
        .await;
    assert_ne!(changed.status, 202, "{}", changed.text);
    assert_eq!(count(&app.event_types().await, "mail.queued"), 1);
}

async fn scopes_split_and_other_spaces_see_nothing(app: TestApp) {
    let sender = sandbox_sender(&app).await;
    let sent = id(&send(&app, simple(&sender, &["a@example.com"])).await.expect(202).body);
    let ids = [("id", sent.as_str())];
    let bodies: HashMap<&str, Value> = HashMap::from([("mail_messages_send", simple(&sender, &["a@example.com"]))]);
    family_checks::scopes_are_enforced(&app, "mail", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "mail", &ids, &bodies).await;
    // A key without mail:write is refused, naming the scope.
    let reader = app.mint(&["contacts:read", "phone:read"], None).await;
    let refused = app
        .request(Method::POST, &format!("{SPACE_API}/mail/messages"))
        .key(&reader)
        .json(simple(&sender, &["a@example.com"]))
        .send()
        .await
        .expect(403);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("mail:write")
    );
}

/// What moto's SES backend holds of the messages it took (its model data).
async fn moto_sent(endpoint: &str) -> Vec<Value> {
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .expect("moto answers")
        .json()
        .await
        .expect("JSON");
    data["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

async fn ses_senders_are_verified_and_send_through_ses(app: TestApp) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("the SES test needs moto: run through scripts/with-moto.sh (make test does)");
    let address = format!("agent-{}@example.com", space_http::ids::new_id("t").to_lowercase());
    let created = connect(&app, &address, "ses").await;
    let sender = id(&created);
    assert_eq!(created["provider"], "ses");
    assert_eq!(created["verified"], false);
    // The worker registers the identity (CreateEmailIdentity) and reads it back
    // (GetEmailIdentity): moto verifies at once.
    app.worker_pass().await;
    let space = &app.demo.space_id;
    let shown = app
        .account(Method::GET, &format!("/spaces/{space}/connections/{sender}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["verified"], true, "{}", shown.text);
    assert_eq!(shown.body["verification_status"], "success");

    let subject = format!("Order {}", space_http::ids::new_id("o"));
    let accepted = send(
        &app,
        json!({
            "from_sender_id": sender,
            "to": ["ada@example.com"],
            "cc": ["grace@example.com"],
            "subject": subject,
            "text": "It shipped.",
            "html": "<p>It <em>shipped</em>.<script>x()</script></p>",
        }),
    )
    .await
    .expect(202);
    let message_id = id(&accepted.body);
    app.worker_pass().await;
    let sent = message(&app, &message_id).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    let provider_id = sent["provider_message_id"].as_str().expect("SES's message id");
    let took = moto_sent(&endpoint).await;
    let ours = took
        .iter()
        .find(|m| m["subject"] == subject.as_str())
        .unwrap_or_else(|| panic!("moto took the message: {took:?}"));
    assert_eq!(ours["id"], provider_id);
    assert_eq!(ours["source"], address.as_str());
    assert_eq!(ours["destinations"]["ToAddresses"], json!(["ada@example.com"]));
    assert_eq!(ours["destinations"]["CcAddresses"], json!(["grace@example.com"]));
    let body = ours["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("<em>shipped</em>") && !body.contains("script"),
        "the sanitized html: {body}"
    );
    // Nothing but SES's own events moves it on (tests/tests/api/receipts.rs).
    app.clock.advance(TimeDelta::minutes(5));
    app.worker_pass().await;
    assert_eq!(message(&app, &message_id).await["status"], "sent");
}
