//! Broadcast campaigns: drafts checked against the channel and the template, launched with
//! `messaging:run`, their audience expanded and sent on the worker exactly once per
//! recipient (opted-out contacts and contacts without an address skipped), paused,
//! resumed, cancelled and scheduled.

use std::collections::HashMap;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Backend, TestApp, on_both_backends};
use space_worker::NewJob;

use crate::inbox::{connect, inject};

on_both_backends!(
    drafts_are_checked_against_the_channel_and_the_template,
    messaging_write_cannot_launch,
    a_tag_audience_is_sent_exactly_once_with_exact_totals,
    paused_campaigns_send_nothing_until_resumed,
    cancelled_campaigns_leave_unsent_recipients_cancelled,
    scheduled_campaigns_launch_at_their_time,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn approved(app: &TestApp, body: &str) -> String {
    let template = app
        .space(Method::POST, "/templates")
        .json(json!({"name": "promo", "language": "en", "category": "marketing", "body": body}))
        .send()
        .await
        .expect(201)
        .body;
    let template = id(&template);
    app.space(Method::POST, &format!("/templates/{template}/submit"))
        .send()
        .await
        .expect(200);
    app.worker_pass().await;
    template
}

/// A WhatsApp channel, an approved one-parameter template and `count` contacts tagged
/// `vip` (every tenth without a phone), plus one contact not in the audience.
async fn setup(app: &TestApp, count: usize) -> (String, String, Vec<String>) {
    let (channel, _) = connect(app, "whatsapp", "+12015550100").await;
    let template = approved(app, "Hello, our spring sale starts today at {{1}} for all members.").await;
    let mut rows = Vec::new();
    for n in 0..count {
        if n % 10 == 9 {
            rows.push(json!({"name": format!("No Phone {n}"), "email": format!("p{n}@example.com"), "tags": ["vip"]}));
        } else {
            rows.push(json!({"name": format!("Person {n}"), "phone": format!("+1201555{:04}", 1000 + n), "tags": ["vip", "newsletter"]}));
        }
    }
    rows.push(json!({"name": "Outsider", "phone": "+12015559999", "tags": ["lead"]}));
    let imported = app
        .space(Method::POST, "/contacts/import")
        .json(json!({"contacts": rows}))
        .send()
        .await
        .expect(200);
    assert_eq!(imported.body["created"], count + 1, "{}", imported.text);
    let phones: Vec<String> = (0..count)
        .filter(|n| n % 10 != 9)
        .map(|n| format!("+1201555{:04}", 1000 + n))
        .collect();
    (channel, template, phones)
}

async fn draft(app: &TestApp, channel: &str, template: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": "Spring sale",
        "connection_id": channel,
        "template_id": template,
        "parameters": ["noon"],
        "audience": {"tags": ["vip"]}
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    app.space(Method::POST, "/campaigns")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

async fn campaign(app: &TestApp, campaign: &str) -> Value {
    app.space(Method::GET, &format!("/campaigns/{campaign}"))
        .send()
        .await
        .expect(200)
        .body
}

async fn act(app: &TestApp, campaign: &str, action: &str) -> space_tests::Response {
    app.space(Method::POST, &format!("/campaigns/{campaign}/{action}"))
        .send()
        .await
}

/// Worker passes until the campaign stops moving (bounded).
async fn settle(app: &TestApp, campaign_id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..40 {
        app.worker_pass().await;
        let now = campaign(app, campaign_id).await;
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// What the sandbox sent, by recipient address.
async fn sent_by_address(app: &TestApp) -> HashMap<String, usize> {
    let partition = space_http::keys::collection_partition(&app.demo.space_id, "sandbox_messages");
    let mut counts = HashMap::new();
    let mut after = None;
    loop {
        let page = app
            .engine
            .store()
            .query(space_store::Query::partition(partition.clone()).after(after).limit(100))
            .await
            .expect("sandbox records");
        for record in &page.items {
            let to = record.body["to"].as_str().unwrap_or_default().to_owned();
            *counts.entry(to).or_insert(0) += 1;
        }
        if page.last_sk.is_none() {
            return counts;
        }
        after = page.last_sk;
    }
}

async fn recipients(app: &TestApp, campaign: &str, status: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/campaigns/{campaign}/recipients?status={status}&limit=200");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.space(Method::GET, &path).send().await.expect(200);
        found.extend(page.body["data"].as_array().cloned().unwrap_or_default());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return found,
        }
    }
}

async fn drafts_are_checked_against_the_channel_and_the_template(app: TestApp) {
    let (channel, template, _) = setup(&app, 3).await;
    let pending = app
        .space(Method::POST, "/templates")
        .json(json!({"name": "later", "language": "en", "category": "marketing", "body": "Not reviewed yet, sorry."}))
        .send()
        .await
        .expect(201)
        .body;
    let base = json!({"name": "Spring", "connection_id": channel, "template_id": template, "parameters": ["noon"], "audience": {"tags": ["vip"]}});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    for (body, field) in [
        (
            with("audience", json!({"tags": ["vip"], "contact_ids": ["con_x"]})),
            "audience",
        ),
        (with("audience", json!({})), "audience"),
        (with("parameters", json!([1])), "parameters"),
        (with("connection_id", json!("conn_missing")), "connection_id"),
        (with("parameters", json!([])), "parameters"),
        (with("status", json!("sending")), "status"),
    ] {
        let refused = app
            .space(Method::POST, "/campaigns")
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
    let not_approved = app
        .space(Method::POST, "/campaigns")
        .json(with("template_id", json!(id(&pending))))
        .send()
        .await
        .expect(422);
    assert_eq!(
        not_approved.error_code(),
        "TEMPLATE_NOT_APPROVED",
        "{}",
        not_approved.text
    );
    app.space(Method::POST, "/campaigns")
        .json(json!([]))
        .send()
        .await
        .expect(422);

    let created = draft(&app, &channel, &template, json!({})).await;
    assert_eq!(created["status"], "draft");
    let campaign_id = id(&created);
    let shown = campaign(&app, &campaign_id).await;
    assert_eq!(shown["totals"]["queued"], 0);
    app.space(Method::PATCH, &format!("/campaigns/{campaign_id}"))
        .json(json!({"name": "Spring sale 2"}))
        .send()
        .await
        .expect(200);
    act(&app, &campaign_id, "pause").await.expect(409);
    act(&app, &campaign_id, "launch").await.expect(200);
    let again = act(&app, &campaign_id, "launch").await.expect(409);
    assert!(
        again.text.contains("sending"),
        "the conflict names the status: {}",
        again.text
    );
    app.space(Method::PATCH, &format!("/campaigns/{campaign_id}"))
        .json(json!({"name": "Too late"}))
        .send()
        .await
        .expect(409);
    app.space(Method::DELETE, &format!("/campaigns/{campaign_id}"))
        .send()
        .await
        .expect(409);
    app.space(Method::GET, &format!("/campaigns/{campaign_id}/recipients?status=lost"))
        .send()
        .await
        .expect(422);
    let events = app.event_types().await;
    assert!(events.iter().any(|t| t == "campaign.launched"), "{events:?}");
}

async fn messaging_write_cannot_launch(app: TestApp) {
    let (channel, template, _) = setup(&app, 2).await;
    let campaign_id = id(&draft(&app, &channel, &template, json!({})).await);
    let writer = app.mint(&["messaging:read", "messaging:write"], None).await;
    let refused = app
        .request(
            Method::POST,
            &format!("{}/campaigns/{campaign_id}/launch", space_tests::SPACE_API),
        )
        .key(&writer)
        .send()
        .await
        .expect(403);
    assert!(refused.text.contains("messaging:run"), "{}", refused.text);
    let runner = app.mint(&["messaging:run"], None).await;
    app.request(
        Method::POST,
        &format!("{}/campaigns/{campaign_id}/launch", space_tests::SPACE_API),
    )
    .key(&runner)
    .send()
    .await
    .expect(200);
    app.request(Method::POST, &format!("{}/campaigns", space_tests::SPACE_API))
        .key(&runner)
        .json(json!({"name": "x"}))
        .send()
        .await
        .expect(403);
}

async fn a_tag_audience_is_sent_exactly_once_with_exact_totals(app: TestApp) {
    // The protocol server answers a transaction in tens of milliseconds: a smaller audience
    // there, the same paging (several expansion pages and send batches).
    let count = match app.backend {
        Backend::Embedded => 120,
        Backend::Dynamodb => 60,
    };
    let (no_address, reachable) = (count / 10, count - count / 10 - 4);
    let (channel, template, phones) = setup(&app, count).await;
    let whatsapp_stops = &phones[..4];
    for phone in whatsapp_stops {
        inject(&app, &channel, phone, "STOP").await;
    }
    let campaign_id = id(&draft(&app, &channel, &template, json!({})).await);
    let launched = act(&app, &campaign_id, "launch").await.expect(200);
    assert_eq!(launched.body["status"], "sending");
    // The same batch job enqueued again, as a redelivered queue message would be, and
    // worker passes racing each other.
    let payload = json!({"space_id": app.demo.space_id, "campaign_id": campaign_id, "after": null});
    for _ in 0..2 {
        app.engine
            .store()
            .transact(vec![
                NewJob::new(messaging::campaigns::SEND, payload.clone(), app.engine.now()).write(),
            ])
            .await
            .expect("a duplicate job");
    }
    for _ in 0..6 {
        tokio::join!(app.worker_pass(), app.worker_pass());
    }
    let done = settle(&app, &campaign_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let totals = &done["totals"];
    assert_eq!(totals["skipped_opted_out"], 4, "{totals}");
    assert_eq!(totals["skipped_no_address"], no_address, "{totals}");
    assert_eq!(totals["queued"], 0, "{totals}");
    assert_eq!(totals["failed"], 0, "{totals}");
    let reached = totals["sent"].as_u64().unwrap_or(0)
        + totals["delivered"].as_u64().unwrap_or(0)
        + totals["read"].as_u64().unwrap_or(0);
    assert_eq!(reached, reachable as u64, "{totals}");
    let sent = sent_by_address(&app).await;
    assert_eq!(
        sent.values().sum::<usize>(),
        reachable,
        "one message per reachable recipient"
    );
    assert!(sent.values().all(|count| *count == 1), "nobody got it twice");
    assert!(
        !sent.contains_key("+12015559999"),
        "the outsider is not in the audience"
    );
    assert!(whatsapp_stops.iter().all(|phone| !sent.contains_key(phone)));

    // Receipts arrive later and keep the totals exact.
    app.clock.advance(TimeDelta::seconds(120));
    let read = settle(&app, &campaign_id).await;
    assert_eq!(read["totals"]["read"], reachable, "{}", read["totals"]);
    assert_eq!(read["totals"]["sent"], 0);
    assert_eq!(recipients(&app, &campaign_id, "read").await.len(), reachable);
    assert_eq!(recipients(&app, &campaign_id, "skipped_opted_out").await.len(), 4);
    let no_address = recipients(&app, &campaign_id, "skipped_no_address").await;
    assert_eq!(no_address.len(), count / 10);
    assert!(no_address.iter().all(|r| r.get("to").is_none()));
    // A last worker pass after completion changes nothing.
    app.worker_pass().await;
    assert_eq!(sent_by_address(&app).await.values().sum::<usize>(), reachable);
    let events = app.event_types().await;
    assert_eq!(events.iter().filter(|t| *t == "campaign.completed").count(), 1);
}

async fn paused_campaigns_send_nothing_until_resumed(app: TestApp) {
    let (channel, template, _) = setup(&app, 60).await;
    // Most contacts carry both tags: each is one recipient.
    let audience = json!({"audience": {"tags": ["vip", "newsletter"]}});
    let campaign_id = id(&draft(&app, &channel, &template, audience).await);
    // A channel its owner paused launches nothing; the draft waits.
    let connection = format!("/spaces/{}/connections/{channel}", app.demo.space_id);
    for active in [false, true] {
        app.account(Method::PATCH, &connection)
            .json(json!({"active": active}))
            .send()
            .await
            .expect(200);
        if !active {
            let refused = act(&app, &campaign_id, "launch").await.expect(409);
            assert!(refused.text.contains("paused"), "{}", refused.text);
        }
    }
    act(&app, &campaign_id, "launch").await.expect(200);
    act(&app, &campaign_id, "pause").await.expect(200);
    act(&app, &campaign_id, "pause").await.expect(409);
    let paused = settle(&app, &campaign_id).await;
    assert_eq!(paused["status"], "paused");
    assert_eq!(
        paused["totals"]["queued"], 54,
        "expanded, not sent: {}",
        paused["totals"]
    );
    assert!(sent_by_address(&app).await.is_empty());
    // Pausing the channel mid-send pauses the campaign at its next batch: the first batch
    // went out, the rest waits, and the campaign is not resumed before the channel.
    act(&app, &campaign_id, "resume").await.expect(200);
    app.worker_pass().await;
    let pause_channel = |active: bool| {
        app.account(Method::PATCH, &connection)
            .json(json!({"active": active}))
            .send()
    };
    pause_channel(false).await.expect(200);
    let held = settle(&app, &campaign_id).await;
    assert_eq!(held["status"], "paused", "{held}");
    let sent = sent_by_address(&app).await.values().sum::<usize>();
    assert!(sent > 0, "the first batch went out before the channel was paused");
    assert_eq!(held["totals"]["sent"], sent, "{}", held["totals"]);
    assert_eq!(held["totals"]["queued"], 54 - sent, "{}", held["totals"]);
    let refused = act(&app, &campaign_id, "resume").await.expect(409);
    assert!(refused.text.contains("paused by the Space's owner"), "{}", refused.text);
    pause_channel(true).await.expect(200);
    act(&app, &campaign_id, "resume").await.expect(200);
    let done = settle(&app, &campaign_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(sent_by_address(&app).await.values().sum::<usize>(), 54);
    act(&app, &campaign_id, "resume").await.expect(409);
    let paused_by_system = app
        .space(Method::GET, "/events?types=campaign.paused")
        .send()
        .await
        .expect(200);
    let actors: Vec<&Value> = paused_by_system.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|event| &event["actor"]["kind"])
        .collect();
    assert!(actors.contains(&&json!("system")), "{actors:?}");
}

async fn cancelled_campaigns_leave_unsent_recipients_cancelled(app: TestApp) {
    let (channel, template, _) = setup(&app, 30).await;
    let campaign_id = id(&draft(&app, &channel, &template, json!({})).await);
    act(&app, &campaign_id, "launch").await.expect(200);
    act(&app, &campaign_id, "pause").await.expect(200);
    settle(&app, &campaign_id).await;
    act(&app, &campaign_id, "cancel").await.expect(200);
    let cancelled = settle(&app, &campaign_id).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["totals"]["cancelled"], 27, "{}", cancelled["totals"]);
    assert_eq!(cancelled["totals"]["queued"], 0);
    assert_eq!(recipients(&app, &campaign_id, "cancelled").await.len(), 27);
    assert!(sent_by_address(&app).await.is_empty());
    act(&app, &campaign_id, "resume").await.expect(409);
    act(&app, &campaign_id, "cancel").await.expect(409);
    assert!(app.event_types().await.iter().any(|t| t == "campaign.cancelled"));
}

async fn scheduled_campaigns_launch_at_their_time(app: TestApp) {
    let (channel, template, _) = setup(&app, 5).await;
    let at = app.engine.now() + TimeDelta::hours(2);
    let scheduled_at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let contacts = app
        .space(Method::GET, "/contacts?tag=vip&limit=200")
        .send()
        .await
        .expect(200);
    let ids: Vec<String> = contacts.body["data"].as_array().into_iter().flatten().map(id).collect();
    let campaign_id = id(&draft(
        &app,
        &channel,
        &template,
        json!({"scheduled_at": scheduled_at, "audience": {"contact_ids": ids}}),
    )
    .await);
    let launched = act(&app, &campaign_id, "launch").await.expect(200);
    assert_eq!(launched.body["status"], "scheduled");
    let waiting = settle(&app, &campaign_id).await;
    assert_eq!(waiting["status"], "scheduled");
    assert!(sent_by_address(&app).await.is_empty());
    app.clock.advance(TimeDelta::hours(2) + TimeDelta::seconds(1));
    let done = settle(&app, &campaign_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(sent_by_address(&app).await.values().sum::<usize>(), 5);
}
