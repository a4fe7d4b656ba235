//! Message templates: drafts within the channels' rules, the provider's review on the
//! worker, approved templates that never change, and replies that send them outside
//! WhatsApp's window.

use std::collections::HashMap;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

use crate::family_checks;

on_both_backends!(
    templates_are_drafted_reviewed_and_approved_ones_stay,
    approved_templates_reply_outside_the_window,
    every_template_route_needs_its_scope_and_the_right_space,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn create(app: &TestApp, name: &str, body: &str) -> Value {
    app.space(Method::POST, "/templates")
        .json(json!({"name": name, "language": "en-US", "category": "utility", "body": body}))
        .send()
        .await
        .expect(201)
        .body
}

async fn submit(app: &TestApp, template: &str) -> Value {
    app.space(Method::POST, &format!("/templates/{template}/submit"))
        .send()
        .await
        .expect(200)
        .body
}

async fn approved(app: &TestApp, name: &str, body: &str) -> String {
    let template = id(&create(app, name, body).await);
    submit(app, &template).await;
    app.worker_pass().await;
    template
}

async fn templates_are_drafted_reviewed_and_approved_ones_stay(app: TestApp) {
    for (body, field) in [
        (
            json!({"name": "Order Update", "language": "en", "category": "utility", "body": "Hi"}),
            "name",
        ),
        (
            json!({"name": "a", "language": "english!", "category": "utility", "body": "Hi"}),
            "language",
        ),
        (
            json!({"name": "a", "language": "en", "category": "promo", "body": "Hi"}),
            "category",
        ),
        (
            json!({"name": "a", "language": "en", "category": "utility", "body": "Hi {{2}} there"}),
            "body",
        ),
        (
            json!({"name": "a", "language": "en", "category": "utility", "body": "Hi {{1}} and {{3}}"}),
            "body",
        ),
        (
            json!({"name": "a", "language": "en", "category": "utility", "body": "x".repeat(1025)}),
            "body",
        ),
        (
            json!({"name": "a", "language": "en", "category": "utility", "body": "Hi", "footer": "f".repeat(61)}),
            "footer",
        ),
    ] {
        let refused = app
            .space(Method::POST, "/templates")
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

    let draft = create(&app, "order_update", "Hi {{1}}, your order {{2}} has shipped today.").await;
    let template = id(&draft);
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["parameter_count"], 2);
    let pending = submit(&app, &template).await;
    assert_eq!(pending["status"], "pending");
    let path = format!("/templates/{template}");
    app.space(Method::PATCH, &path)
        .json(json!({"footer": "Acme"}))
        .send()
        .await
        .expect(409);
    app.worker_pass().await;
    let shown = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(shown.body["status"], "approved");
    app.space(Method::POST, &format!("{path}/submit"))
        .send()
        .await
        .expect(409);

    // An approved template never changes: the edit is a new draft beside it.
    let edited = app
        .space(Method::PATCH, &path)
        .json(json!({"body": "Hello {{1}}, order {{2}} is on its way to you."}))
        .send()
        .await
        .expect(201);
    assert_eq!(edited.body["status"], "draft");
    assert_eq!(edited.body["previous_id"], template.as_str());
    assert_eq!(edited.body["name"], "order_update");
    assert_ne!(id(&edited.body), template);
    let kept = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(kept.body["body"], "Hi {{1}}, your order {{2}} has shipped today.");
    assert_eq!(kept.body["status"], "approved");

    // The review refuses a parameter at an edge; an edit makes it a draft again.
    let edgy = id(&create(&app, "code", "{{1}} is your code, keep it safe.").await);
    submit(&app, &edgy).await;
    app.worker_pass().await;
    let rejected = app
        .space(Method::GET, &format!("/templates/{edgy}"))
        .send()
        .await
        .expect(200);
    assert_eq!(rejected.body["status"], "rejected");
    assert!(
        rejected.body["rejection_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("start or end")
    );
    let fixed = app
        .space(Method::PATCH, &format!("/templates/{edgy}"))
        .json(json!({"body": "Your code is {{1}}, keep it safe."}))
        .send()
        .await
        .expect(200);
    assert_eq!(fixed.body["status"], "draft");
    assert!(fixed.body.get("rejection_reason").is_none(), "{}", fixed.text);
    submit(&app, &edgy).await;
    app.worker_pass().await;
    let listed = app
        .space(Method::GET, "/templates?status=approved")
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(2));
    let types = app.event_types().await;
    for kind in [
        "template.created",
        "template.submitted",
        "template.approved",
        "template.rejected",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

async fn approved_templates_reply_outside_the_window(app: TestApp) {
    let space = app.demo.space_id.clone();
    let connection = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "messaging", "channel": "whatsapp", "name": "Acme", "address": "+12015550100", "languages": ["EN-us", "de"]}))
        .send()
        .await
        .expect(201);
    assert_eq!(connection.body["languages"], json!(["EN-us", "de"]));
    let connection = id(&connection.body);
    let inbound = app
        .account(
            Method::POST,
            &format!("/spaces/{space}/connections/{connection}/inbound"),
        )
        .json(json!({"from": "+12015550123", "text": "Where is my order?"}))
        .send()
        .await
        .expect(201);
    let thread = id(&inbound.body["thread"]);
    let good = approved(&app, "order_update", "Hi {{1}}, your order {{2}} has shipped today.").await;
    let draft = id(&create(&app, "draft_only", "Hi {{1}}, we have news for you.").await);
    app.clock.advance(TimeDelta::hours(25));
    let reply = |body: Value| {
        app.space(Method::POST, &format!("/inbox/threads/{thread}/reply"))
            .json(body)
            .send()
    };
    let closed = reply(json!({"text": "Your order shipped"})).await.expect(422);
    assert_eq!(closed.error_code(), "REPLY_WINDOW_CLOSED");
    let unapproved = reply(json!({"template_id": draft, "parameters": ["Ada"]}))
        .await
        .expect(422);
    assert_eq!(unapproved.error_code(), "TEMPLATE_NOT_APPROVED");
    let short = reply(json!({"template_id": good, "parameters": ["Ada"]}))
        .await
        .expect(422);
    assert!(short.body["error"]["fields"]["parameters"].is_array(), "{}", short.text);
    let both = reply(json!({"text": "Hi", "template_id": good})).await.expect(422);
    assert!(both.body["error"]["fields"]["template_id"].is_array(), "{}", both.text);
    let missing = reply(json!({"template_id": "tpl_nope", "parameters": []}))
        .await
        .expect(422);
    assert!(
        missing.body["error"]["fields"]["template_id"].is_array(),
        "{}",
        missing.text
    );

    let french = app
        .space(Method::POST, "/templates")
        .json(json!({"name": "order_update", "language": "fr", "category": "utility", "body": "Bonjour {{1}}, votre commande {{2}} est partie."}))
        .send()
        .await
        .expect(201);
    let french = id(&french.body);
    submit(&app, &french).await;
    app.worker_pass().await;
    let foreign = reply(json!({"template_id": french, "parameters": ["Ada", "#42"]}))
        .await
        .expect(422);
    let why = foreign.body["error"]["fields"]["template_id"][0]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("`fr`") && why.contains("EN-us, de"), "{}", foreign.text);
    for (languages, field) in [
        (json!([]), "languages"),
        (json!(["en", "en"]), "languages"),
        (json!(["english!"]), "languages"),
    ] {
        let refused = app
            .account(Method::POST, &format!("/spaces/{space}/connections"))
            .json(json!({"kind": "messaging", "channel": "sms", "name": "Acme SMS", "address": "+12015550101", "languages": languages}))
            .send()
            .await
            .expect(422);
        assert!(refused.body["error"]["fields"][field].is_array(), "{}", refused.text);
    }
    app.account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "phone", "number": "+12015550102", "capabilities": ["sms"], "languages": ["en"]}))
        .send()
        .await
        .expect(422);

    let sent = reply(json!({"template_id": good, "parameters": ["Ada", "#42"]}))
        .await
        .expect(201);
    assert_eq!(sent.body["text"], "Hi Ada, your order #42 has shipped today.");
    assert_eq!(sent.body["template_id"], good.as_str());
    assert_eq!(sent.body["status"], "queued");
    app.worker_pass().await;
    let page = app
        .space(
            Method::GET,
            &format!("/inbox/threads/{thread}/messages?order=desc&limit=1"),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(page.body["data"][0]["status"], "sent");
}

async fn every_template_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let template = id(&create(&app, "hello", "Hello {{1}}, thanks for writing to us.").await);
    let writer = app.mint(&["messaging:write"], None).await;
    let refused = app
        .request(Method::GET, &format!("{}/templates", space_tests::SPACE_API))
        .key(&writer)
        .send()
        .await
        .expect(403);
    assert!(refused.text.contains("messaging:read"), "{}", refused.text);
    let ids = [("id", template.as_str()), ("tag", "ours")];
    let valid = json!({"name": "hello", "language": "en", "category": "utility", "body": "Hello there, friend."});
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("messaging_templates_create", valid.clone()),
        ("messaging_templates_update", json!({"footer": "Acme"})),
        ("messaging_templates_replace", valid),
        ("messaging_tags_create", json!({"name": "theirs"})),
        ("messaging_tags_update", json!({"color": "#ff0000"})),
        (
            "messaging_campaigns_create",
            json!({"name": "Sale", "connection_id": "conn_x", "template_id": template, "audience": {"tags": ["vip"]}}),
        ),
        (
            "messaging_knowledge_create",
            json!({"title": "Returns", "body": "Within 30 days."}),
        ),
        (
            "messaging_knowledge_replace",
            json!({"title": "Returns", "body": "Within 30 days."}),
        ),
    ]);
    family_checks::scopes_are_enforced(&app, "messaging", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "messaging", &ids, &bodies).await;
}
