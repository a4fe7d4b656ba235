//! Ads: accounts the owner connects, draft campaigns checked field by field and against the
//! Space (its accounts, its media), and a launch that no key can make.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use space_auth::Action;
use space_http::operation::{Access, Effect};
use space_tests::{PNG, SPACE_API, TestApp, on_both_backends};

use crate::family_checks;

on_both_backends!(
    ads_accounts_are_connected_by_the_owner_and_listed,
    campaigns_are_drafts_checked_field_by_field,
    campaigns_name_only_this_spaces_accounts_and_media,
    campaigns_are_edited_filtered_and_deleted,
    launching_is_refused_to_every_key,
    scopes_split_and_other_spaces_see_nothing,
);

/// No ads operation is a live action, and none needs a `run` scope (the domain offers none):
/// launching, which spends money, is the owner's, in the app.
#[test]
fn no_ads_operation_spends_money() {
    let ads: Vec<_> = space_catalogue::operations()
        .into_iter()
        .filter(|operation| operation.path.starts_with("/ads/"))
        .collect();
    assert!(ads.len() >= 9, "{}", ads.len());
    for operation in ads {
        assert_ne!(operation.effect, Effect::Live, "{}", operation.name);
        assert!(
            matches!(operation.access, Access::Space(scope) if scope.action != Action::Run),
            "{}",
            operation.name
        );
    }
}

/// Connects an ads account on `network` in `space`: its id.
pub async fn connect(app: &TestApp, space: &str, network: &str) -> String {
    let created = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "ads", "network": network, "name": format!("Acme on {network}"), "provider": "sandbox"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.body["kind"], "ads");
    created.body["id"].as_str().expect("an id").to_owned()
}

/// A media item of the Space the key belongs to, uploaded whole: its id.
async fn media(app: &TestApp, key: &str) -> String {
    let uploaded = app
        .request(Method::POST, &format!("{SPACE_API}/media"))
        .key(key)
        .json(json!({"filename": "ad.png", "content_type": "image/png", "content_base64": STANDARD.encode(PNG)}))
        .send()
        .await
        .expect(201);
    uploaded.body["id"].as_str().expect("an id").to_owned()
}

fn campaign(account: &str) -> Value {
    json!({
        "account_id": account,
        "name": "Spring sale",
        "objective": "sales",
        "budget": {"amount": 5000, "currency": "EUR", "period": "daily"},
        "start_at": "2030-03-01T09:00:00Z",
        "end_at": "2030-03-31T21:00:00Z",
        "audience": {"countries": ["DE", "AT", "DE"], "age_min": 25, "age_max": 45, "interests": ["cycling"]},
    })
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

fn without(mut body: Value, field: &str) -> Value {
    body.as_object_mut().map(|object| object.remove(field));
    body
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn create(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/ads/campaigns")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

/// The 422 of a refused write, with the message it gives `field`.
async fn refused(app: &TestApp, method: Method, path: &str, body: Value, field: &str) -> String {
    let response = app.space(method, path).json(body).send().await.expect(422);
    assert_eq!(response.error_code(), "VALIDATION_FAILED");
    let messages = &response.body["error"]["fields"][field];
    assert!(messages.is_array(), "{field}: {}", response.text);
    messages.to_string()
}

async fn ads_accounts_are_connected_by_the_owner_and_listed(app: TestApp) {
    let space = app.demo.space_id.clone();
    let meta = connect(&app, &space, "meta").await;
    let google = connect(&app, &space, "google").await;
    connect(&app, &space, "linkedin").await;
    for (body, field) in [
        (json!({"kind": "ads", "name": "No network"}), "network"),
        (
            json!({"kind": "ads", "network": "tiktok", "name": "A social network"}),
            "network",
        ),
        (json!({"kind": "ads", "network": "bing", "name": "Unknown"}), "network"),
        (
            json!({"kind": "social", "network": "google", "name": "An ad network"}),
            "network",
        ),
        (
            json!({"kind": "ads", "network": "meta", "name": "Number", "number": "+12015550100"}),
            "number",
        ),
        (
            json!({"kind": "ads", "network": "meta", "name": "On AWS", "provider": "aws"}),
            "provider",
        ),
    ] {
        let response = app
            .account(Method::POST, &format!("/spaces/{space}/connections"))
            .json(body)
            .send()
            .await
            .expect(422);
        assert!(
            response.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            response.text
        );
    }
    // A phone number is a connection, not an ads account.
    crate::phone::connect(&app, "+12015550100", &["sms"]).await;

    let listed = app.space(Method::GET, "/ads/accounts").send().await.expect(200);
    let data = listed.body["data"].as_array().expect("a list");
    let networks: Vec<&str> = data.iter().filter_map(|a| a["network"].as_str()).collect();
    assert_eq!(networks, ["meta", "google", "linkedin"], "{}", listed.text);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    assert!(
        data.iter()
            .all(|a| a.get("kind").is_none() && a.get("sandbox").is_none())
    );
    let one = app
        .space(Method::GET, &format!("/ads/accounts/{google}"))
        .send()
        .await
        .expect(200);
    assert_eq!(one.body["id"], google.as_str());
    assert_eq!(one.body["provider"], "sandbox");
    assert_eq!(one.body["active"], true);
    app.space(Method::GET, "/ads/accounts/conn_01jdxxxxxxxxxxxxxxxxxxxxxx")
        .send()
        .await
        .expect(404);

    // Disconnected by the owner, it is gone for the key too.
    app.account(Method::DELETE, &format!("/spaces/{space}/connections/{meta}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/ads/accounts/{meta}"))
        .send()
        .await
        .expect(404);
}

async fn campaigns_are_drafts_checked_field_by_field(app: TestApp) {
    let account = connect(&app, &app.demo.space_id, "meta").await;
    let good = campaign(&account);
    let created = create(&app, good.clone()).await;
    assert!(id(&created).starts_with("adc_"));
    assert_eq!(created["status"], "draft");
    assert_eq!(
        created["budget"],
        json!({"amount": 5000, "currency": "EUR", "period": "daily"})
    );
    assert_eq!(created["audience"]["countries"], json!(["DE", "AT"]), "each once");
    assert_eq!(created["creative_media_ids"], json!([]));
    // 5000.0 is the integer 5000; no status is taken from the client.
    let whole = create(
        &app,
        with(
            good.clone(),
            "budget",
            json!({"amount": 5000.0, "currency": "USD", "period": "lifetime"}),
        ),
    )
    .await;
    assert_eq!(whole["budget"]["amount"], 5000);
    let sent_status = with(good.clone(), "status", json!("active"));
    refused(&app, Method::POST, "/ads/campaigns", sent_status, "status").await;

    let budget = |budget: Value| with(good.clone(), "budget", budget);
    let audience = |audience: Value| with(good.clone(), "audience", audience);
    let cases: Vec<(Value, &str, &str)> = vec![
        (without(good.clone(), "account_id"), "account_id", "required"),
        (without(good.clone(), "name"), "name", "required"),
        (without(good.clone(), "objective"), "objective", "required"),
        (
            with(good.clone(), "objective", json!("clicks")),
            "objective",
            "awareness",
        ),
        (without(good.clone(), "budget"), "budget", "required"),
        (without(good.clone(), "start_at"), "start_at", "required"),
        (with(good.clone(), "start_at", json!("next monday")), "start_at", ""),
        (
            budget(json!({"amount": 0, "currency": "EUR", "period": "daily"})),
            "budget",
            "amount",
        ),
        (
            budget(json!({"amount": -100, "currency": "EUR", "period": "daily"})),
            "budget",
            "amount",
        ),
        (
            budget(json!({"amount": 49.99, "currency": "EUR", "period": "daily"})),
            "budget",
            "amount",
        ),
        (
            budget(json!({"amount": "5000", "currency": "EUR", "period": "daily"})),
            "budget",
            "amount",
        ),
        (
            budget(json!({"amount": 5000, "currency": "eur", "period": "daily"})),
            "budget",
            "currency",
        ),
        (
            budget(json!({"amount": 5000, "currency": "EURO", "period": "daily"})),
            "budget",
            "currency",
        ),
        (budget(json!({"amount": 5000, "period": "daily"})), "budget", "currency"),
        (
            budget(json!({"amount": 5000, "currency": "EUR", "period": "weekly"})),
            "budget",
            "period",
        ),
        (budget(json!({"amount": 5000, "currency": "EUR"})), "budget", "period"),
        (
            budget(json!({"amount": 5000, "currency": "EUR", "period": "daily", "cap": 1})),
            "budget",
            "cap",
        ),
        (budget(json!(5000)), "budget", "JSON object"),
        (
            with(good.clone(), "end_at", json!("2030-03-01T09:00:00Z")),
            "end_at",
            "after start_at",
        ),
        (
            with(good.clone(), "end_at", json!("2030-02-01T09:00:00Z")),
            "end_at",
            "after start_at",
        ),
        (audience(json!({"countries": ["XX"]})), "audience", "country"),
        (audience(json!({"countries": ["de"]})), "audience", "country"),
        (audience(json!({"countries": ["DEU"]})), "audience", "country"),
        (audience(json!({"age_min": 12})), "audience", "age_min"),
        (audience(json!({"age_min": 66})), "audience", "age_min"),
        (audience(json!({"age_max": 70})), "audience", "age_max"),
        (
            audience(json!({"age_min": 40, "age_max": 30})),
            "audience",
            "at least age_min",
        ),
        (audience(json!({"interests": "cycling"})), "audience", "interests"),
        (audience(json!({"gender": "any"})), "audience", "gender"),
        (
            with(good.clone(), "creative_media_ids", json!("med_1")),
            "creative_media_ids",
            "list",
        ),
        (with(good.clone(), "unknown", json!(1)), "unknown", "not a field"),
    ];
    for (body, field, says) in cases {
        let message = refused(&app, Method::POST, "/ads/campaigns", body.clone(), field).await;
        assert!(message.contains(says), "{body}: {field} says {says}: {message}");
    }
    // The edges are taken.
    let edges = audience(json!({"countries": [], "age_min": 13, "age_max": 65, "interests": []}));
    let edges = create(&app, without(edges, "end_at")).await;
    assert_eq!(edges["audience"]["age_max"], 65);
    assert!(edges.get("end_at").is_none());
    let events = app.event_types().await;
    assert_eq!(events.iter().filter(|t| *t == "ad_campaign.created").count(), 3);
}

async fn campaigns_name_only_this_spaces_accounts_and_media(app: TestApp) {
    let ours = connect(&app, &app.demo.space_id, "google").await;
    let (other_space, other_key) = app.other_space().await;
    let theirs = connect(&app, &other_space, "google").await;
    let phone = crate::phone::connect(&app, "+12015550100", &["sms"]).await;
    let good = campaign(&ours);
    let unknown = "conn_01jdxxxxxxxxxxxxxxxxxxxxxx";
    for (account, says) in [
        (theirs.as_str(), "no ads account"),
        (unknown, "no ads account"),
        ("not-an-id", "no ads account"),
        (phone.as_str(), "phone connection"),
    ] {
        let message = refused(
            &app,
            Method::POST,
            "/ads/campaigns",
            with(good.clone(), "account_id", json!(account)),
            "account_id",
        )
        .await;
        assert!(message.contains(says), "{account}: {message}");
    }
    let our_media = media(&app, app.key()).await;
    let their_media = media(&app, &other_key).await;
    let message = refused(
        &app,
        Method::POST,
        "/ads/campaigns",
        with(good.clone(), "creative_media_ids", json!([our_media, their_media])),
        "creative_media_ids",
    )
    .await;
    assert!(
        message.contains(&their_media) && !message.contains(&our_media),
        "{message}"
    );
    let created = create(
        &app,
        with(good.clone(), "creative_media_ids", json!([our_media, our_media])),
    )
    .await;
    assert_eq!(created["creative_media_ids"], json!([our_media]), "each once");

    // An edit is checked the same way; a refused one changes nothing.
    let path = format!("/ads/campaigns/{}", id(&created));
    refused(&app, Method::PATCH, &path, json!({"account_id": theirs}), "account_id").await;
    refused(
        &app,
        Method::PATCH,
        &path,
        json!({"creative_media_ids": [their_media]}),
        "creative_media_ids",
    )
    .await;
    refused(
        &app,
        Method::PUT,
        &path,
        with(good.clone(), "account_id", json!(phone)),
        "account_id",
    )
    .await;
    let unchanged = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(unchanged.body["version"], 1);
    assert_eq!(unchanged.body["account_id"], ours.as_str());

    // The other Space's key drafts on its own account only, and cannot see ours.
    let refused_there = app
        .request(Method::POST, &format!("{SPACE_API}/ads/campaigns"))
        .key(&other_key)
        .json(campaign(&ours))
        .send()
        .await
        .expect(422);
    assert!(refused_there.body["error"]["fields"]["account_id"].is_array());
    app.request(Method::POST, &format!("{SPACE_API}/ads/campaigns"))
        .key(&other_key)
        .json(campaign(&theirs))
        .send()
        .await
        .expect(201);
    app.request(Method::GET, &format!("{SPACE_API}{path}"))
        .key(&other_key)
        .send()
        .await
        .expect(404);
}

async fn campaigns_are_edited_filtered_and_deleted(app: TestApp) {
    let meta = connect(&app, &app.demo.space_id, "meta").await;
    let linkedin = connect(&app, &app.demo.space_id, "linkedin").await;
    let first = create(&app, campaign(&meta)).await;
    let second = create(&app, with(campaign(&meta), "objective", json!("leads"))).await;
    let third = create(&app, with(campaign(&linkedin), "objective", json!("leads"))).await;

    let listed = |query: String| {
        let app = &app;
        async move {
            let page = app
                .space(Method::GET, &format!("/ads/campaigns{query}"))
                .send()
                .await
                .expect(200);
            let mut ids: Vec<String> = page.body["data"].as_array().expect("a list").iter().map(id).collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        listed(format!("?account_id={meta}")).await,
        sorted(vec![id(&first), id(&second)])
    );
    assert_eq!(
        listed("?objective=leads".into()).await,
        sorted(vec![id(&second), id(&third)])
    );
    assert_eq!(
        listed(format!("?account_id={meta}&objective=leads")).await,
        vec![id(&second)]
    );
    let bad = app
        .space(Method::GET, "/ads/campaigns?objective=clicks")
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["objective"].is_array());

    // Moving a campaign to another account moves it between the filter's answers.
    let path = format!("/ads/campaigns/{}", id(&first));
    let moved = app
        .space(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(json!({"account_id": linkedin, "budget": {"amount": 12_000, "currency": "EUR", "period": "lifetime"}, "end_at": null}))
        .send()
        .await
        .expect(200);
    assert_eq!(moved.body["status"], "draft");
    assert_eq!(moved.body["version"], 2);
    assert_eq!(moved.body["budget"]["amount"], 12_000);
    assert!(moved.body.get("end_at").is_none());
    assert_eq!(listed(format!("?account_id={meta}")).await, vec![id(&second)]);
    // A patch is checked against the merged campaign.
    refused(
        &app,
        Method::PATCH,
        &path,
        json!({"end_at": "2030-01-01T00:00:00Z"}),
        "end_at",
    )
    .await;
    app.space(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(json!({"name": "Stale"}))
        .send()
        .await
        .expect(412);
    let replaced = app
        .space(Method::PUT, &path)
        .json(campaign(&meta))
        .send()
        .await
        .expect(200);
    assert_eq!(replaced.body["status"], "draft");
    assert_eq!(replaced.body["objective"], "sales");

    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    assert_eq!(listed(format!("?account_id={meta}")).await, vec![id(&second)]);
    let events = app.event_types().await;
    for kind in ["ad_campaign.created", "ad_campaign.updated", "ad_campaign.deleted"] {
        assert!(events.iter().any(|t| t == kind), "{kind}: {events:?}");
    }
}

async fn launching_is_refused_to_every_key(app: TestApp) {
    let account = connect(&app, &app.demo.space_id, "meta").await;
    let created = create(&app, campaign(&account)).await;
    let path = format!("{SPACE_API}/ads/campaigns/{}/launch", id(&created));
    let events = app.event_types().await.len();
    let writer = app.mint(&["ads:read", "ads:write"], None).await;
    for key in [app.key().to_owned(), writer] {
        let response = app.request(Method::POST, &path).key(&key).send().await.expect(403);
        assert_eq!(response.error_code(), "FORBIDDEN");
        assert!(response.body["error"]["request_id"].is_string());
        let message = response.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("spends money") && message.contains("in the app"),
            "{message}"
        );
    }
    // No scope offers it: there is no `ads:run`.
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "launcher", "scopes": ["ads:run"]}))
        .send()
        .await
        .expect(422);
    let message = minted.body["error"]["fields"]["scopes"].to_string();
    assert!(message.contains("no `run` scope"), "{}", minted.text);
    // Over MCP too, with the same refusal.
    let called = app
        .mcp(
            app.key(),
            "",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "write_ads",
                   "arguments": {"operation": "ads_campaigns_launch", "arguments": {"id": id(&created)}}}}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(called.body["result"]["isError"], true, "{}", called.text);
    assert!(called.text.contains("spends money"), "{}", called.text);
    let shown = app
        .space(Method::GET, &format!("/ads/campaigns/{}", id(&created)))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["status"], "draft");
    assert_eq!(shown.body["version"], 1);
    assert_eq!(app.event_types().await.len(), events + 1, "only the key's minting");
    // A campaign that is not there is 404 first.
    app.request(
        Method::POST,
        &format!("{SPACE_API}/ads/campaigns/adc_01jdxxxxxxxxxxxxxxxxxxxxxx/launch"),
    )
    .key(app.key())
    .send()
    .await
    .expect(404);

    // What the catalogue says of it, where agents read.
    let operation = spacectl::operations()
        .into_iter()
        .find(|operation| operation.name == "ads_campaigns_launch")
        .expect("documented");
    let description = operation.description.unwrap_or_default();
    assert!(
        description.contains("spends money") && description.contains("403"),
        "{description}"
    );
    assert!(operation.summary.contains("403"), "{}", operation.summary);
    let listed = app
        .mcp(
            app.key(),
            "",
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .send()
        .await
        .expect(200);
    let tool = listed.body["result"]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|tool| tool["name"] == "write_ads")
        .cloned()
        .expect("write_ads");
    let text = tool["description"].as_str().unwrap_or_default();
    assert!(
        text.contains("ads_campaigns_launch(") && text.contains("launching spends money"),
        "{text}"
    );
}

async fn scopes_split_and_other_spaces_see_nothing(app: TestApp) {
    let account = connect(&app, &app.demo.space_id, "google").await;
    let created = id(&create(&app, campaign(&account)).await);
    let ids = [("id", created.as_str())];
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("ads_campaigns_create", campaign(&account)),
        ("ads_campaigns_replace", campaign(&account)),
        ("ads_campaigns_update", json!({"name": "Renamed"})),
    ]);
    family_checks::scopes_are_enforced(&app, "ads", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "ads", &ids, &bodies).await;
    let (_, other) = app.other_space().await;
    app.request(Method::GET, &format!("{SPACE_API}/ads/accounts/{account}"))
        .key(&other)
        .send()
        .await
        .expect(404);
    // A key that reads cannot draft.
    let reader = app.mint(&["ads:read"], None).await;
    let response = app
        .request(Method::POST, &format!("{SPACE_API}/ads/campaigns"))
        .key(&reader)
        .json(campaign(&account))
        .send()
        .await
        .expect(403);
    assert!(response.text.contains("ads:write"), "{}", response.text);
    app.request(Method::GET, &format!("{SPACE_API}/ads/campaigns/{created}"))
        .key(&reader)
        .send()
        .await
        .expect(200);
}
