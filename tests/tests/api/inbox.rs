//! The inbox: messaging channels the owner connects, inbound messages threaded per contact
//! through the contacts' index, opt-outs, replies within each channel's rules, their
//! statuses moving through the worker, and the provider's signed callback.

use std::collections::HashMap;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Response, TestApp, on_both_backends};

use crate::family_checks;

on_both_backends!(
    inbound_messages_find_or_create_the_contact_and_its_thread,
    racing_first_messages_open_one_thread_for_one_contact,
    stop_and_start_opt_the_contact_out_and_back_in,
    whatsapp_free_form_replies_need_the_24_hour_window,
    sms_replies_are_counted_in_segments,
    closed_threads_conflict_and_reopen,
    replies_move_through_the_provider_with_events,
    the_signed_hook_takes_good_signatures_only,
    threads_are_assigned_snoozed_noted_and_summarized,
    threads_are_found_by_their_address_and_latest_words,
    scopes_split_and_other_spaces_see_nothing,
);

/// Connects a messaging channel: its id and signing secret.
pub(crate) async fn connect(app: &TestApp, channel: &str, address: &str) -> (String, String) {
    let space = &app.demo.space_id;
    let created = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "messaging", "channel": channel, "name": format!("Acme {channel}"), "address": address}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.body["provider"], "sandbox");
    let secret = created.body["signing_secret"].as_str().expect("a secret").to_owned();
    (created.body["id"].as_str().expect("an id").to_owned(), secret)
}

/// The owner injects an inbound message, as the provider's callback would.
pub(crate) async fn inject(app: &TestApp, connection: &str, from: &str, text: &str) -> Value {
    let space = &app.demo.space_id;
    app.account(
        Method::POST,
        &format!("/spaces/{space}/connections/{connection}/inbound"),
    )
    .json(json!({"from": from, "text": text}))
    .send()
    .await
    .expect(201)
    .body
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

pub(crate) async fn reply(app: &TestApp, thread: &str, text: &str) -> Response {
    app.space(Method::POST, &format!("/inbox/threads/{thread}/reply"))
        .json(json!({"text": text}))
        .send()
        .await
}

async fn message(app: &TestApp, thread: &str, message: &str) -> Value {
    let page = app
        .space(Method::GET, &format!("/inbox/threads/{thread}/messages"))
        .send()
        .await
        .expect(200);
    page.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == message)
        .cloned()
        .unwrap_or(Value::Null)
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

async fn inbound_messages_find_or_create_the_contact_and_its_thread(app: TestApp) {
    let (whatsapp, _) = connect(&app, "whatsapp", "+1 (201) 555-0100").await;
    let space = &app.demo.space_id;
    let shown = app
        .account(Method::GET, &format!("/spaces/{space}/connections/{whatsapp}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["address"], "+12015550100", "stored in E.164");
    assert!(shown.body.get("signing_secret").is_none(), "the secret is shown once");
    let channels = app.space(Method::GET, "/inbox/channels").send().await.expect(200);
    assert_eq!(channels.body["data"][0]["id"], whatsapp.as_str());
    assert_eq!(channels.body["data"][0]["channel"], "whatsapp");
    assert!(
        channels.body["data"][0].get("sandbox").is_none(),
        "the owner's orders stay the owner's"
    );
    let refused = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "messaging", "channel": "sms", "name": "Bad", "address": "not a number"}))
        .send()
        .await
        .expect(422);
    assert!(
        refused.body["error"]["fields"]["address"].is_array(),
        "{}",
        refused.text
    );

    let first = inject(&app, &whatsapp, "+1 201 555 0123", "Hi, are you open today?").await;
    let thread = id(&first["thread"]);
    let contact = first["contact_id"].as_str().expect("a contact").to_owned();
    assert_eq!(first["thread"]["status"], "open");
    assert_eq!(first["message"]["direction"], "inbound");
    let created = app
        .space(Method::GET, &format!("/contacts/{contact}"))
        .send()
        .await
        .expect(200);
    assert_eq!(created.body["phone"], "+12015550123");

    let second = inject(&app, &whatsapp, "+12015550123", "Also, do you deliver?").await;
    assert_eq!(id(&second["thread"]), thread, "the open thread takes the next message");
    assert_eq!(second["contact_id"], contact.as_str());
    assert_eq!(second["thread"]["inbound_count"], 2);
    let messages = app
        .space(Method::GET, &format!("/inbox/threads/{thread}/messages"))
        .send()
        .await
        .expect(200);
    let texts: Vec<&str> = messages.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["Hi, are you open today?", "Also, do you deliver?"],
        "oldest first"
    );
    let paged = app
        .space(Method::GET, &format!("/inbox/threads/{thread}/messages?limit=1"))
        .send()
        .await
        .expect(200);
    let cursor = paged.body["next_cursor"].as_str().expect("a cursor");
    let rest = app
        .space(
            Method::GET,
            &format!("/inbox/threads/{thread}/messages?limit=1&cursor={cursor}"),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(rest.body["data"][0]["text"], "Also, do you deliver?");

    // Another sender: another contact, another thread.
    let other = inject(&app, &whatsapp, "+12015550124", "Hello").await;
    assert_ne!(other["contact_id"], contact.as_str());
    assert_ne!(id(&other["thread"]), thread);

    // A contact the Space already has is found through the phone index, not created again.
    let known = app.contact(json!({"name": "Grace", "phone": "+12015550125"})).await;
    let from_known = inject(&app, &whatsapp, "+12015550125", "It's Grace").await;
    assert_eq!(from_known["contact_id"], known["id"]);
    // And through the email index on an email channel.
    let (email, _) = connect(&app, "email", "Support@Acme.test").await;
    let ada = app.contact(json!({"name": "Ada", "email": "ada@example.com"})).await;
    let mail = inject(&app, &email, "Ada@Example.com", "Invoice question").await;
    assert_eq!(mail["contact_id"], ada["id"]);
    assert_eq!(mail["thread"]["channel"], "email");

    let listed = app
        .space(Method::GET, &format!("/inbox/threads?channel_id={whatsapp}"))
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(3));
    let mine = app
        .space(Method::GET, &format!("/inbox/threads?contact_id={contact}&status=open"))
        .send()
        .await
        .expect(200);
    assert_eq!(mine.body["data"][0]["id"], thread.as_str());
    let types = app.event_types().await;
    assert_eq!(count(&types, "message.received"), 5);
    assert_eq!(count(&types, "thread.created"), 4);
}

async fn racing_first_messages_open_one_thread_for_one_contact(app: TestApp) {
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let space = app.demo.space_id.clone();
    let sends = (0..6).map(|n| {
        app.account(Method::POST, &format!("/spaces/{space}/connections/{sms}/inbound"))
            .json(json!({"from": "+12015550123", "text": format!("Message {n}")}))
            .send()
    });
    let answers = futures::future::join_all(sends).await;
    let mut threads = std::collections::BTreeSet::new();
    let mut contacts = std::collections::BTreeSet::new();
    for answer in answers {
        let answer = answer.expect(201);
        threads.insert(id(&answer.body["thread"]));
        contacts.insert(answer.body["contact_id"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let found = app
        .space(Method::GET, "/contacts?phone=%2B12015550123")
        .send()
        .await
        .expect(200);
    assert_eq!(found.body["data"].as_array().map(Vec::len), Some(1), "{}", found.text);
    let thread = threads.into_iter().next().unwrap_or_default();
    let shown = app
        .space(Method::GET, &format!("/inbox/threads/{thread}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["inbound_count"], 6);
}

async fn stop_and_start_opt_the_contact_out_and_back_in(app: TestApp) {
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let first = inject(&app, &sms, "+12015550123", "Hi").await;
    let thread = id(&first["thread"]);
    assert_eq!(first["opted_out"], Value::Null);
    let stop = inject(&app, &sms, "+12015550123", "  stop ").await;
    assert_eq!(stop["opted_out"], true);
    let summary = app
        .space(Method::GET, &format!("/inbox/threads/{thread}/summary"))
        .send()
        .await
        .expect(200);
    assert_eq!(summary.body["opted_out"], true);
    let refused = reply(&app, &thread, "Sorry to see you go").await.expect(422);
    assert_eq!(refused.error_code(), "RECIPIENT_OPTED_OUT");
    // Only the exact word counts.
    let chat = inject(&app, &sms, "+12015550123", "please stop by tomorrow").await;
    assert_eq!(chat["opted_out"], Value::Null);
    reply(&app, &thread, "Still out").await.expect(422);
    let start = inject(&app, &sms, "+12015550123", "Start").await;
    assert_eq!(start["opted_out"], false);
    reply(&app, &thread, "Welcome back").await.expect(201);
    for keyword in ["UNSUBSCRIBE", "end", "Quit", "STOPALL", "revoke", "OPTOUT", "cancel"] {
        let out = inject(&app, &sms, "+12015550123", keyword).await;
        assert_eq!(out["opted_out"], true, "{keyword}");
        let back = inject(
            &app,
            &sms,
            "+12015550123",
            if keyword == "end" { "yes" } else { "UNSTOP" },
        )
        .await;
        assert_eq!(back["opted_out"], false);
    }
    let types = app.event_types().await;
    assert_eq!(count(&types, "contact.opted_out"), 8);
    assert_eq!(count(&types, "contact.opted_in"), 8);
}

async fn whatsapp_free_form_replies_need_the_24_hour_window(app: TestApp) {
    let (whatsapp, _) = connect(&app, "whatsapp", "+12015550100").await;
    let first = inject(&app, &whatsapp, "+12015550123", "Hi").await;
    let thread = id(&first["thread"]);
    let received_at = first["message"]["created_at"].as_str().expect("a time").to_owned();
    let sent = reply(&app, &thread, "Hello! How can we help?").await.expect(201);
    assert_eq!(sent.body["status"], "queued");
    assert!(sent.body.get("segments").is_none(), "WhatsApp does not count segments");

    app.clock.advance(TimeDelta::hours(23) + TimeDelta::minutes(59));
    reply(&app, &thread, "Still within the window").await.expect(201);
    app.clock.advance(TimeDelta::minutes(1));
    let closed = reply(&app, &thread, "Too late").await.expect(422);
    assert_eq!(closed.error_code(), "REPLY_WINDOW_CLOSED");
    let message = closed.body["error"]["message"].as_str().unwrap_or_default();
    let closed_at = chrono::DateTime::parse_from_rfc3339(&received_at).expect("a time") + TimeDelta::hours(24);
    assert!(
        message.contains(&space_http::fields::format_datetime(closed_at.to_utc())),
        "{message}"
    );
    assert!(message.contains("template"), "{message}");
    let summary = app
        .space(Method::GET, &format!("/inbox/threads/{thread}/summary"))
        .send()
        .await
        .expect(200);
    assert_eq!(summary.body["free_form_reply"]["allowed"], false);

    // The contact writes again: the window opens for another 24 hours.
    inject(&app, &whatsapp, "+12015550123", "Are you there?").await;
    reply(&app, &thread, "Yes, sorry!").await.expect(201);
    let summary = app
        .space(Method::GET, &format!("/inbox/threads/{thread}/summary"))
        .send()
        .await
        .expect(200);
    assert_eq!(summary.body["free_form_reply"]["allowed"], true);
    assert_eq!(summary.body["messages"], json!({"inbound": 2, "outbound": 3}));
}

async fn sms_replies_are_counted_in_segments(app: TestApp) {
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let thread = id(&inject(&app, &sms, "+12015550123", "Hi").await["thread"]);
    let cases: &[(String, u64, &str)] = &[
        ("a".repeat(160), 1, "GSM-7"),
        ("a".repeat(161), 2, "GSM-7"),
        ("€".repeat(80), 1, "GSM-7"),
        ("€".repeat(81), 2, "GSM-7"),
        ("a".repeat(1530), 10, "GSM-7"),
        ("ł".repeat(70), 1, "UCS-2"),
        ("ł".repeat(71), 2, "UCS-2"),
        ("ł".repeat(670), 10, "UCS-2"),
    ];
    for (text, segments, encoding) in cases {
        let sent = reply(&app, &thread, text).await.expect(201);
        assert_eq!(
            sent.body["segments"],
            *segments,
            "{} × {:?}",
            text.chars().count(),
            text.chars().next()
        );
        assert_eq!(sent.body["encoding"], *encoding);
    }
    for text in ["a".repeat(1531), "ł".repeat(671)] {
        let refused = reply(&app, &thread, &text).await.expect(422);
        let why = refused.body["error"]["fields"]["text"][0].as_str().unwrap_or_default();
        assert!(why.contains("11 SMS segments"), "{why}");
    }
}

async fn closed_threads_conflict_and_reopen(app: TestApp) {
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let thread = id(&inject(&app, &sms, "+12015550123", "Hi").await["thread"]);
    let closed = app
        .space(Method::POST, &format!("/inbox/threads/{thread}/close"))
        .send()
        .await
        .expect(200);
    assert_eq!(closed.body["status"], "closed");
    app.space(Method::POST, &format!("/inbox/threads/{thread}/close"))
        .send()
        .await
        .expect(409);
    let refused = reply(&app, &thread, "Hello?").await.expect(409);
    assert_eq!(refused.error_code(), "CONFLICT");

    // The contact's next message opens a new thread; the old one cannot reopen beside it.
    let next = inject(&app, &sms, "+12015550123", "Me again").await;
    let newer = id(&next["thread"]);
    assert_ne!(newer, thread);
    app.space(Method::POST, &format!("/inbox/threads/{thread}/reopen"))
        .send()
        .await
        .expect(409);
    app.space(Method::POST, &format!("/inbox/threads/{newer}/close"))
        .send()
        .await
        .expect(200);
    let reopened = app
        .space(Method::POST, &format!("/inbox/threads/{thread}/reopen"))
        .send()
        .await
        .expect(200);
    assert_eq!(reopened.body["status"], "open");
    reply(&app, &thread, "Back here").await.expect(201);
    // A channel the owner paused takes no replies (its inbound still lands); resumed, it does.
    let connection = format!("/spaces/{}/connections/{sms}", app.demo.space_id);
    app.account(Method::PATCH, &connection)
        .json(json!({"active": false}))
        .send()
        .await
        .expect(200);
    let paused = reply(&app, &thread, "Still there?").await.expect(409);
    assert!(paused.text.contains("paused"), "{}", paused.text);
    app.account(Method::PATCH, &connection)
        .json(json!({"active": true}))
        .send()
        .await
        .expect(200);
    reply(&app, &thread, "Still there?").await.expect(201);
    let again = inject(&app, &sms, "+12015550123", "Thanks").await;
    assert_eq!(id(&again["thread"]), thread, "the reopened thread takes messages again");
    let types = app.event_types().await;
    assert_eq!(count(&types, "thread.closed"), 2);
    assert_eq!(count(&types, "thread.reopened"), 1);
}

async fn replies_move_through_the_provider_with_events(app: TestApp) {
    let (whatsapp, _) = connect(&app, "whatsapp", "+12015550100").await;
    let thread = id(&inject(&app, &whatsapp, "+12015550123", "Hi").await["thread"]);
    let sent = reply(&app, &thread, "Hello!").await.expect(201);
    let message_id = id(&sent.body);
    assert_eq!(sent.body["status"], "queued");
    assert_eq!(sent.body["to"], "+12015550123");
    assert_eq!(sent.body["from"], "+12015550100");

    app.worker_pass().await;
    let after = message(&app, &thread, &message_id).await;
    assert_eq!(after["status"], "sent");
    assert!(after["provider_message_id"].is_string(), "{after}");
    app.worker_pass().await;
    assert_eq!(
        message(&app, &thread, &message_id).await["status"],
        "sent",
        "no receipt yet"
    );
    app.clock.advance(TimeDelta::seconds(2));
    app.worker_pass().await;
    assert_eq!(message(&app, &thread, &message_id).await["status"], "delivered");
    app.clock.advance(TimeDelta::seconds(60));
    app.worker_pass().await;
    let read = message(&app, &thread, &message_id).await;
    assert_eq!(read["status"], "read");
    assert!(read["read_at"].is_string() && read["delivered_at"].is_string());

    // A recipient the sandbox is told to fail: the message fails, once.
    let space = &app.demo.space_id;
    app.account(Method::POST, &format!("/spaces/{space}/connections/{whatsapp}/sandbox"))
        .json(json!({"fail_recipients": ["+1 201 555 0199"]}))
        .send()
        .await
        .expect(200);
    let doomed = id(&inject(&app, &whatsapp, "+12015550199", "Hi").await["thread"]);
    let lost = id(&reply(&app, &doomed, "Hello?").await.expect(201).body);
    app.worker_pass().await;
    app.clock.advance(TimeDelta::minutes(5));
    app.worker_pass().await;
    let failed = message(&app, &doomed, &lost).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "RECIPIENT_UNREACHABLE");

    let types = app.event_types().await;
    for (kind, times) in [
        ("message.queued", 2),
        ("message.sent", 1),
        ("message.delivered", 1),
        ("message.read", 1),
        ("message.failed", 1),
    ] {
        assert_eq!(count(&types, kind), times, "{kind} in {types:?}");
    }
}

async fn the_signed_hook_takes_good_signatures_only(app: TestApp) {
    let (sms, secret) = connect(&app, "sms", "+12015550100").await;
    let hook = format!("/hooks/messaging/{sms}");
    let body = json!({"from": "+12015550123", "text": "Hi from the provider"}).to_string();
    let now = app.engine.now().timestamp();
    let signature = inbox::inbound::sign(&secret, now, body.as_bytes());

    let events = app.event_types().await.len();
    for bad in [
        None,
        Some("sha256=00".to_owned()),
        Some(inbox::inbound::sign("mss_wrong", now, body.as_bytes())),
        // Signed without its time, as before timestamps; or signed too long ago.
        inbox::inbound::sign(&secret, now, body.as_bytes())
            .split_once(',')
            .map(|(_, mac)| mac.to_owned()),
        Some(inbox::inbound::sign(
            &secret,
            now - inbox::inbound::SIGNATURE_TOLERANCE_SECONDS - 1,
            body.as_bytes(),
        )),
        Some(inbox::inbound::sign(
            &secret,
            now,
            b"{\"from\":\"+12015550123\",\"text\":\"other\"}",
        )),
    ] {
        let mut request = app.request(Method::POST, &hook).raw("application/json", body.clone());
        if let Some(bad) = &bad {
            request = request.header("x-space-signature", bad);
        }
        let refused = request.send().await.expect(401);
        assert_eq!(refused.error_code(), "UNAUTHENTICATED", "{bad:?}");
    }
    assert_eq!(
        app.event_types().await.len(),
        events,
        "a refused callback wrote nothing"
    );
    let threads = app.space(Method::GET, "/inbox/threads").send().await.expect(200);
    assert_eq!(threads.body["data"], json!([]));

    // An address that keeps failing spends its failed-authentication budget and is then
    // refused before any secret is read, even with a good signature, until the minute ends.
    let wrong = inbox::inbound::sign("mss_wrong", now, body.as_bytes());
    let mut statuses = Vec::new();
    for _ in 0..space_auth::FAILED_AUTH_PER_MINUTE {
        let answer = app
            .request(Method::POST, &hook)
            .raw("application/json", body.clone())
            .header("x-space-signature", &wrong)
            .send()
            .await;
        statuses.push(answer.status);
    }
    assert_eq!(statuses.first(), Some(&401));
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    app.request(Method::POST, &hook)
        .raw("application/json", body.clone())
        .header("x-space-signature", &signature)
        .send()
        .await
        .expect(429);
    app.clock.advance(TimeDelta::seconds(60));

    let accepted = app
        .request(Method::POST, &hook)
        .raw("application/json", body.clone())
        .header("x-space-signature", &signature)
        .send()
        .await
        .expect(200);
    assert_eq!(accepted.body["message"]["text"], "Hi from the provider");
    assert_eq!(accepted.body["thread"]["channel_id"], sms.as_str());
    let types = app.event_types().await;
    assert_eq!(count(&types, "message.received"), 1);

    // A provider's retry (the same `id`) is received once, and a consent keyword sent again
    // changes nothing: STOP, START, STOP, then START repeated leaves the contact out.
    let post = |body: Value| {
        let body = body.to_string();
        let signature = inbox::inbound::sign(&secret, app.engine.now().timestamp(), body.as_bytes());
        app.request(Method::POST, &hook)
            .raw("application/json", body)
            .header("x-space-signature", &signature)
            .send()
    };
    let first = post(json!({"id": "prov-1", "from": "+12015550123", "text": "Again?"}))
        .await
        .expect(200);
    let again = post(json!({"id": "prov-1", "from": "+12015550123", "text": "Again?"}))
        .await
        .expect(200);
    assert_eq!(again.body["message"]["id"], first.body["message"]["id"]);
    assert_eq!(first.body["message"]["provider_message_id"], "prov-1");
    for (id, word) in [
        ("prov-2", "STOP"),
        ("prov-3", "START"),
        ("prov-4", "STOP"),
        ("prov-3", "START"),
    ] {
        post(json!({"id": id, "from": "+12015550123", "text": word}))
            .await
            .expect(200);
    }
    let contact = first.body["contact_id"].as_str().expect("a contact");
    let out = space_connections::messaging::opted_out(&app.engine, &app.demo.space_id, contact, "sms")
        .await
        .expect("a read");
    assert!(out, "the repeated START did not opt the contact back in");
    let types = app.event_types().await;
    assert_eq!(count(&types, "message.received"), 5, "{types:?}");
    assert_eq!(count(&types, "contact.opted_in"), 1, "{types:?}");

    let unknown = "conn_01JZZZZZZZZZZZZZZZZZZZZZZZ";
    app.request(Method::POST, &format!("/hooks/messaging/{unknown}"))
        .raw("application/json", body.clone())
        .header("x-space-signature", &signature)
        .send()
        .await
        .expect(404);
    // Disconnected, the channel's callbacks find nothing.
    let space = &app.demo.space_id;
    app.account(Method::DELETE, &format!("/spaces/{space}/connections/{sms}"))
        .send()
        .await
        .expect(204);
    app.request(Method::POST, &hook)
        .raw("application/json", body)
        .header("x-space-signature", &signature)
        .send()
        .await
        .expect(404);
}

async fn threads_are_assigned_snoozed_noted_and_summarized(app: TestApp) {
    let (whatsapp, _) = connect(&app, "whatsapp", "+12015550100").await;
    let first = inject(&app, &whatsapp, "+12015550123", "Hi").await;
    let thread = id(&first["thread"]);
    let contact = first["contact_id"].as_str().expect("a contact").to_owned();
    let path = format!("/inbox/threads/{thread}");
    let patched = app
        .space(Method::PATCH, &path)
        .json(json!({"assignee_id": "usr_1", "tags": ["billing"]}))
        .send()
        .await
        .expect(200);
    assert_eq!(patched.body["assignee_id"], "usr_1");
    for query in ["assignee_id=usr_1", "tag=billing"] {
        let listed = app
            .space(Method::GET, &format!("/inbox/threads?{query}"))
            .send()
            .await
            .expect(200);
        assert_eq!(listed.body["data"][0]["id"], thread.as_str(), "{query}");
    }

    let past = space_http::fields::format_datetime(app.engine.now() - TimeDelta::minutes(1));
    let too_far = space_http::fields::format_datetime(app.engine.now() + TimeDelta::days(367));
    for refused in [past, too_far] {
        app.space(Method::PATCH, &path)
            .json(json!({"snoozed_until": refused}))
            .send()
            .await
            .expect(422);
    }
    // Each snooze is one timer: snoozing again, waking, closing or a contact's message
    // withdraws the one before.
    for hours in [5, 4, 3] {
        let until = space_http::fields::format_datetime(app.engine.now() + TimeDelta::hours(hours));
        app.space(Method::PATCH, &path)
            .json(json!({"snoozed_until": until}))
            .send()
            .await
            .expect(200);
        assert_eq!(unsnooze_jobs(&app).await, 1, "one timer");
    }
    app.space(Method::PATCH, &path)
        .json(json!({"snoozed_until": null}))
        .send()
        .await
        .expect(200);
    assert_eq!(unsnooze_jobs(&app).await, 0, "woken: no timer left");
    let until = space_http::fields::format_datetime(app.engine.now() + TimeDelta::hours(2));
    let snoozed = app
        .space(Method::PATCH, &path)
        .json(json!({"snoozed_until": until}))
        .send()
        .await
        .expect(200);
    assert_eq!(snoozed.body["status"], "snoozed");
    let listed = app
        .space(Method::GET, "/inbox/threads?status=snoozed")
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"][0]["id"], thread.as_str());
    app.worker_pass().await;
    let still = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(still.body["status"], "snoozed", "not before its time");
    app.clock.advance(TimeDelta::hours(2));
    app.worker_pass().await;
    let woken = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(woken.body["status"], "open");
    assert!(woken.body.get("snoozed_until").is_none(), "{}", woken.text);

    // Snoozed again, then woken early by the contact: the old job finds nothing to do.
    let until = space_http::fields::format_datetime(app.engine.now() + TimeDelta::hours(1));
    app.space(Method::PATCH, &path)
        .json(json!({"snoozed_until": until}))
        .send()
        .await
        .expect(200);
    let woke = inject(&app, &whatsapp, "+12015550123", "Hello?").await;
    assert_eq!(woke["thread"]["status"], "open");
    assert_eq!(unsnooze_jobs(&app).await, 0, "woken by the contact: no timer left");
    app.space(Method::POST, &format!("{path}/close"))
        .send()
        .await
        .expect(200);
    app.clock.advance(TimeDelta::hours(1));
    app.worker_pass().await;
    let closed = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(closed.body["status"], "closed", "a stale snooze does not reopen it");

    let note = app
        .space(Method::POST, &format!("{path}/notes"))
        .json(json!({"body": "Wants a refund; check the invoice."}))
        .send()
        .await
        .expect(201);
    let notes = app
        .space(Method::GET, &format!("{path}/notes"))
        .send()
        .await
        .expect(200);
    assert_eq!(notes.body["data"][0]["id"], note.body["id"]);

    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Refund Ada", "contact_id": contact}))
        .send()
        .await
        .expect(201);
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Done already", "contact_id": contact, "status": "done"}))
        .send()
        .await
        .expect(201);
    let summary = app
        .space(Method::GET, &format!("{path}/summary"))
        .send()
        .await
        .expect(200);
    assert_eq!(summary.body["contact"]["id"], contact.as_str());
    assert_eq!(summary.body["messages"], json!({"inbound": 2, "outbound": 0}));
    let tasks: Vec<&str> = summary.body["open_tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(tasks, ["Refund Ada"]);
    assert!(summary.body["free_form_reply"]["until"].is_string());
    // The contact and its tasks are shown to a key that may read them, not to inbox:read alone.
    let inbox_only = app.mint(&["inbox:read"], None).await;
    let narrow = app
        .request(Method::GET, &format!("{}{path}/summary", space_tests::SPACE_API))
        .key(&inbox_only)
        .send()
        .await
        .expect(200);
    assert_eq!(narrow.body["contact"], Value::Null, "{}", narrow.text);
    assert_eq!(narrow.body["open_tasks"], json!([]));
    assert_eq!(narrow.body["messages"], summary.body["messages"]);
    let types = app.event_types().await;
    for kind in [
        "thread.updated",
        "thread.snoozed",
        "thread.reopened",
        "thread.note.created",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

async fn scopes_split_and_other_spaces_see_nothing(app: TestApp) {
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let thread = id(&inject(&app, &sms, "+12015550123", "Hi").await["thread"]);
    let writer = app.mint(&["inbox:read", "inbox:write"], None).await;
    let refused = app
        .request(
            Method::POST,
            &format!("{}/inbox/threads/{thread}/reply", space_tests::SPACE_API),
        )
        .key(&writer)
        .json(json!({"text": "Hello"}))
        .send()
        .await
        .expect(403);
    let message = refused.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("inbox:run"), "{message}");

    let note = app
        .space(Method::POST, &format!("/inbox/threads/{thread}/notes"))
        .json(json!({"body": "Internal"}))
        .send()
        .await
        .expect(201)
        .body;
    let note_id = id(&note);
    let ids = [("id", thread.as_str()), ("note_id", note_id.as_str())];
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("inbox_threads_update", json!({"tags": ["x"]})),
        ("inbox_threads_reply", json!({"text": "Hello"})),
        ("inbox_threads_tags_add", json!({"tags": ["billing"]})),
        ("inbox_threads_notes_create", json!({"body": "n"})),
        ("inbox_threads_notes_update", json!({"body": "n"})),
        ("inbox_threads_notes_replace", json!({"body": "n"})),
    ]);
    family_checks::scopes_are_enforced(&app, "inbox", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "inbox", &ids, &bodies).await;
    // Another Space's owner cannot inject into this Space's connection either.
    let other_space = app
        .account(Method::POST, "/spaces")
        .json(json!({"name": "Elsewhere"}))
        .send()
        .await
        .expect(201);
    let elsewhere = other_space.body["id"].as_str().expect("an id");
    app.account(Method::POST, &format!("/spaces/{elsewhere}/connections/{sms}/inbound"))
        .json(json!({"from": "+12015550123", "text": "Hi"}))
        .send()
        .await
        .expect(404);
}

async fn threads_are_found_by_their_address_and_latest_words(app: TestApp) {
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let refund = inject(&app, &sms, "+12015550123", "Where is my refund?").await;
    let booking = inject(&app, &sms, "+12015550177", "Can I change my booking?").await;
    let (refund, booking) = (id(&refund["thread"]), id(&booking["thread"]));
    let found = |q: &'static str| {
        let app = &app;
        async move {
            let page = app
                .space(Method::GET, &format!("/inbox/threads?q={q}"))
                .send()
                .await
                .expect(200);
            let mut ids: Vec<String> = page.body["data"].as_array().into_iter().flatten().map(id).collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![refund.clone(), booking.clone()];
    both.sort();
    assert_eq!(
        found("REFUND").await,
        vec![refund.clone()],
        "a word of the latest message, any case"
    );
    assert_eq!(found("ref").await, vec![refund.clone()], "a word's start");
    assert_eq!(found("5550177").await, vec![booking.clone()], "the tail of the address");
    assert_eq!(found("my").await, both);
    assert_eq!(found("my%20booking").await, vec![booking.clone()], "every word");

    inject(&app, &sms, "+12015550123", "Thanks, all sorted now").await;
    assert_eq!(found("refund").await, Vec::<String>::new(), "the preview moved on");
    assert_eq!(found("sorted").await, vec![refund.clone()]);
    let long = "Your booking moved to Friday at ten, and the room is on the second floor by the lift";
    reply(&app, &booking, long).await.expect(201);
    let thread = app
        .space(Method::GET, &format!("/inbox/threads/{booking}"))
        .send()
        .await
        .expect(200);
    let preview = thread.body["preview"].as_str().unwrap_or_default();
    assert!(
        long.starts_with(preview.trim_end_matches('…')) && preview.ends_with('…'),
        "{preview}"
    );
    assert!(
        preview.chars().count() <= inbox::threads::PREVIEW_CHARS + 1,
        "{preview}"
    );
    assert_eq!(found("friday").await, vec![booking.clone()], "a reply's words too");
    assert_eq!(found("change").await, Vec::<String>::new());

    let tagged = app
        .space(Method::POST, &format!("/inbox/threads/{booking}/tags"))
        .json(json!({"tags": ["vip"]}))
        .send()
        .await
        .expect(200);
    assert_eq!(tagged.body["preview"], thread.body["preview"]);
    assert_eq!(
        found("friday").await,
        vec![booking],
        "a change that keeps the words keeps the entries"
    );
    app.space(Method::GET, &format!("/inbox/threads?q={}", "x".repeat(201)))
        .send()
        .await
        .expect(422);
}

/// The timers waiting to end a thread's snooze.
async fn unsnooze_jobs(app: &TestApp) -> usize {
    crate::dispatcher::jobs(app)
        .await
        .iter()
        .filter(|job| job.body.get("kind").and_then(Value::as_str) == Some(inbox::UNSNOOZE))
        .count()
}
