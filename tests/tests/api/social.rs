//! Social publishing: accounts the owner connects and keys only use, drafts in clusters
//! within each network's rules, and going live exactly once through the worker, with the
//! sandbox provider's ordered failures.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use space_store::Query;
use space_tests::{ACCOUNT_API, PNG, SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    accounts_are_connected_by_the_owner_and_used_by_keys,
    each_network_refuses_what_it_would_refuse_naming_the_account,
    warnings_name_the_duplicate_and_the_neighbour,
    going_live_needs_run_and_publishes_once_at_its_time,
    transient_failures_retry_and_permanent_ones_fail,
    drafts_edit_together_and_published_posts_stay,
    next_slot_fills_the_free_slots_in_order_and_the_queue_follows,
    a_cluster_of_every_account_it_may_hold_goes_live_whole,
);

pub(crate) async fn connect(app: &TestApp, network: &str, name: &str) -> String {
    let space = &app.demo.space_id;
    let created = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "social", "network": network, "name": name, "handle": "acme"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.body["provider"], "sandbox");
    created.body["id"].as_str().expect("an id").to_owned()
}

async fn image(app: &TestApp) -> String {
    let media = app
        .space(Method::POST, "/media")
        .json(json!({"filename": "dot.png", "content_type": "image/png", "content_base64": STANDARD.encode(PNG)}))
        .send()
        .await
        .expect(201);
    media.body["id"].as_str().expect("an id").to_owned()
}

/// Tells the sandbox to fail the account's next `count` publishes.
async fn fail_next(app: &TestApp, account: &str, count: u32, failure: &str) {
    let space = &app.demo.space_id;
    app.account(Method::POST, &format!("/spaces/{space}/connections/{account}/sandbox"))
        .json(json!({"fail_next": count, "failure": failure}))
        .send()
        .await
        .expect(200);
}

/// A one-account draft, published now (queued for the next worker pass): its post id.
async fn publish_new(app: &TestApp, account: &str, content: &str) -> String {
    let created = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": content, "account_ids": [account]}))
        .send()
        .await
        .expect(201);
    let id = created.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned();
    app.space(Method::POST, &format!("/social/posts/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    id
}

/// The publish jobs waiting in the store.
async fn publish_jobs(app: &TestApp) -> usize {
    crate::dispatcher::jobs(app)
        .await
        .iter()
        .filter(|job| job.body.get("kind").and_then(Value::as_str) == Some(social::publish::PUBLISH))
        .count()
}

async fn post(app: &TestApp, id: &str) -> Value {
    app.space(Method::GET, &format!("/social/posts/{id}"))
        .send()
        .await
        .expect(200)
        .body
}

/// What the sandbox has published in the Space.
async fn publications(app: &TestApp) -> Vec<Value> {
    let partition = space_http::keys::collection_partition(&app.demo.space_id, social::provider::PUBLICATIONS);
    let page = app
        .engine
        .store()
        .query(Query::partition(partition).limit(1000))
        .await
        .expect("a read");
    page.items.into_iter().map(|item| Value::Object(item.body)).collect()
}

async fn accounts_are_connected_by_the_owner_and_used_by_keys(app: TestApp) {
    let space = app.demo.space_id.clone();
    let linkedin = connect(&app, "linkedin", "Acme on LinkedIn").await;
    let pinterest = connect(&app, "pinterest", "Acme pins").await;

    // A space key can never connect one (the account API takes only the owner's key).
    app.request(Method::POST, &format!("{ACCOUNT_API}/spaces/{space}/connections"))
        .key(app.key())
        .json(json!({"kind": "social", "network": "x", "name": "Sneaky"}))
        .send()
        .await
        .expect(401);
    let refused = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "social", "network": "myspace", "name": "Old"}))
        .send()
        .await
        .expect(422);
    assert!(
        refused.body["error"]["fields"]["network"].is_array(),
        "{}",
        refused.text
    );

    let listed = app.space(Method::GET, "/social/accounts").send().await.expect(200);
    let networks: Vec<&str> = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["network"].as_str())
        .collect();
    assert_eq!(networks, ["linkedin", "pinterest"]);
    assert!(
        listed.body["data"][0].get("sandbox").is_none(),
        "the owner's orders stay the owner's"
    );
    let boards = app
        .space(Method::GET, &format!("/social/accounts/{pinterest}/boards"))
        .send()
        .await
        .expect(200);
    assert_eq!(boards.body["data"][0]["id"], "brd_ideas");
    let none = app
        .space(Method::GET, &format!("/social/accounts/{linkedin}/boards"))
        .send()
        .await
        .expect(200);
    assert_eq!(none.body["data"], json!([]));

    // Paused, an account takes no new posts.
    let paused = app
        .space(Method::PATCH, &format!("/social/accounts/{linkedin}/activate"))
        .json(json!({"active": false}))
        .send()
        .await
        .expect(200);
    assert_eq!(paused.body["active"], false);
    let refused = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Hello", "account_ids": [linkedin]}))
        .send()
        .await
        .expect(422);
    assert!(refused.text.contains("inactive"), "{}", refused.text);
    // The key resumes what it paused; what the owner paused, only the owner resumes.
    let activate = |active: bool| {
        app.space(Method::PATCH, &format!("/social/accounts/{linkedin}/activate"))
            .json(json!({"active": active}))
            .send()
    };
    activate(true).await.expect(200);
    let owners = format!("/spaces/{space}/connections/{linkedin}");
    let owner_sets = |active: bool| {
        app.account(Method::PATCH, &owners)
            .json(json!({"active": active}))
            .send()
    };
    let owner_paused = owner_sets(false).await.expect(200);
    assert_eq!(owner_paused.body["active"], false);
    assert!(owner_paused.body.get("owner_paused").is_none(), "{}", owner_paused.body);
    let held = activate(true).await.expect(409);
    assert!(held.text.contains("paused by the Space's owner"), "{}", held.text);
    let shown = app
        .space(Method::GET, &format!("/social/accounts/{linkedin}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["active"], false);
    assert!(shown.body.get("owner_paused").is_none(), "{}", shown.body);
    owner_sets(true).await.expect(200);
    activate(false).await.expect(200);

    // Disconnected by the owner, it is gone for the key.
    app.account(Method::DELETE, &format!("/spaces/{space}/connections/{linkedin}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/social/accounts/{linkedin}"))
        .send()
        .await
        .expect(404);
    let types = app.event_types().await;
    assert!(types.contains(&"connection.created".to_owned()) && types.contains(&"connection.deleted".to_owned()));
}

async fn each_network_refuses_what_it_would_refuse_naming_the_account(app: TestApp) {
    let x = connect(&app, "x", "Acme on X").await;
    let linkedin = connect(&app, "linkedin", "Acme on LinkedIn").await;
    let instagram = connect(&app, "instagram", "Acme on Instagram").await;
    let youtube = connect(&app, "youtube", "Acme videos").await;
    let long = "a".repeat(300);
    let refused = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": long, "account_ids": [x, linkedin, instagram, youtube]}))
        .send()
        .await
        .expect(422);
    let fields = &refused.body["error"]["fields"];
    assert_eq!(
        fields[format!("variants.{x}.content")],
        json!(["X posts are at most 280 characters"]),
        "{}",
        refused.text
    );
    assert!(
        fields[format!("variants.{instagram}.media_ids")].is_array(),
        "{}",
        refused.text
    );
    assert!(
        fields[format!("variants.{youtube}.title")].is_array(),
        "{}",
        refused.text
    );
    assert!(
        fields.get(format!("variants.{linkedin}.content")).is_none(),
        "LinkedIn takes 300"
    );
    assert_eq!(
        app.space(Method::GET, "/social/posts").send().await.expect(200).body["data"],
        json!([]),
        "nothing written"
    );

    // Variants fix each account; missing media and foreign accounts are named too.
    let missing = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Launch", "account_ids": [instagram], "media_ids": ["med_nope"]}))
        .send()
        .await
        .expect(422);
    assert!(missing.text.contains("med_nope"), "{}", missing.text);
    let unknown = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Launch", "account_ids": ["conn_elsewhere"]}))
        .send()
        .await
        .expect(422);
    assert!(
        unknown.body["error"]["fields"]["account_ids"].is_array(),
        "{}",
        unknown.text
    );
    let picture = image(&app).await;
    let created = app
        .space(Method::POST, "/social/posts")
        .json(json!({
            "content": long,
            "account_ids": [x, linkedin, instagram],
            "variants": {
                (x.clone()): {"content": "Launch day!"},
                (instagram.clone()): {"media_ids": [picture]}
            }
        }))
        .send()
        .await
        .expect(201);
    let cluster = &created.body;
    assert!(cluster["id"].as_str().is_some_and(|id| id.starts_with("clu_")));
    assert_eq!(cluster["status"], "draft");
    let posts = cluster["posts"].as_array().cloned().unwrap_or_default();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[0]["content"], "Launch day!");
    assert_eq!(posts[1]["content"], long.as_str());
    assert_eq!(posts[2]["media_ids"], json!([picture]));
    let listed = app
        .space(Method::GET, &format!("/social/posts?account_id={x}"))
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
}

async fn warnings_name_the_duplicate_and_the_neighbour(app: TestApp) {
    let linkedin = connect(&app, "linkedin", "Acme on LinkedIn").await;
    let at = (app.engine.now() + TimeDelta::days(1)).to_rfc3339();
    let near = (app.engine.now() + TimeDelta::days(1) + TimeDelta::minutes(30)).to_rfc3339();
    let first = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Big news", "account_ids": [linkedin], "scheduled_at": at}))
        .send()
        .await
        .expect(201);
    assert_eq!(first.body["warnings"], json!([]));
    let first_post = first.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned();
    let second = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Big news", "account_ids": [linkedin], "scheduled_at": near}))
        .send()
        .await
        .expect(201);
    let codes: Vec<&str> = second.body["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert_eq!(codes, ["DUPLICATE_CONTENT", "TOO_CLOSE"], "{}", second.text);
    assert!(
        second.body["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|w| w["post_id"] == first_post.as_str())
    );
}

async fn going_live_needs_run_and_publishes_once_at_its_time(app: TestApp) {
    let linkedin = connect(&app, "linkedin", "Acme on LinkedIn").await;
    let created = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Scheduled hello", "account_ids": [linkedin]}))
        .send()
        .await
        .expect(201);
    let cluster = created.body["id"].as_str().unwrap_or_default().to_owned();
    let post_id = created.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned();
    let at = app.engine.now() + TimeDelta::minutes(10);

    // Drafts are write; going live is run.
    let writer = app.mint(&["social:read", "social:write"], None).await;
    let refused = app
        .request(Method::POST, &format!("{SPACE_API}/social/clusters/{cluster}/schedule"))
        .key(&writer)
        .json(json!({"scheduled_at": at.to_rfc3339()}))
        .send()
        .await
        .expect(403);
    assert!(refused.text.contains("social:run"), "{}", refused.text);
    let past = app
        .space(Method::POST, &format!("/social/clusters/{cluster}/schedule"))
        .json(json!({"scheduled_at": (app.engine.now() - TimeDelta::minutes(1)).to_rfc3339()}))
        .send()
        .await
        .expect(422);
    assert!(past.body["error"]["fields"]["scheduled_at"].is_array(), "{}", past.text);

    let scheduled = app
        .space(Method::POST, &format!("/social/clusters/{cluster}/schedule"))
        .json(json!({"scheduled_at": at.to_rfc3339()}))
        .send()
        .await
        .expect(200);
    assert_eq!(scheduled.body["status"], "scheduled");
    let shown = post(&app, &post_id).await;
    assert!(
        shown.as_object().is_some_and(|o| o.keys().all(|k| !k.starts_with('_'))),
        "the job's token is the server's own: {shown}"
    );
    // Moved, the post has one job: the one for its new time.
    app.space(Method::POST, &format!("/social/clusters/{cluster}/schedule"))
        .json(json!({"scheduled_at": (at + TimeDelta::minutes(5)).to_rfc3339()}))
        .send()
        .await
        .expect(200);
    assert_eq!(publish_jobs(&app).await, 1);
    app.space(Method::POST, &format!("/social/clusters/{cluster}/schedule"))
        .json(json!({"scheduled_at": at.to_rfc3339()}))
        .send()
        .await
        .expect(200);
    assert_eq!(publish_jobs(&app).await, 1);
    // What goes live is changed with the right that makes it go live: a scheduled post is
    // neither moved, edited nor deleted by a write, one post or its whole cluster.
    let before = post(&app, &post_id).await;
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/social/posts/{post_id}"),
            Some(json!({"scheduled_at": (at + TimeDelta::hours(1)).to_rfc3339()})),
        ),
        (
            Method::PATCH,
            format!("/social/posts/{post_id}"),
            Some(json!({"content": "Something else"})),
        ),
        (
            Method::PUT,
            format!("/social/clusters/{cluster}"),
            Some(json!({"content": "Something else"})),
        ),
        (Method::DELETE, format!("/social/posts/{post_id}"), None),
        (Method::DELETE, format!("/social/clusters/{cluster}"), None),
    ] {
        let request = app.space(method.clone(), &path);
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        let refused = request.send().await.expect(409);
        assert!(
            refused.text.contains("/unschedule"),
            "{method} {path}: {}",
            refused.text
        );
    }
    assert_eq!(post(&app, &post_id).await, before, "nothing changed");
    assert_eq!(publish_jobs(&app).await, 1);

    app.worker_pass().await;
    assert_eq!(post(&app, &post_id).await["status"], "scheduled", "not before its time");
    app.clock.advance(TimeDelta::minutes(10));
    app.worker_pass().await;
    let published = post(&app, &post_id).await;
    assert_eq!(published["status"], "published", "{published}");
    assert!(
        published["network_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://www.linkedin.com/"))
    );
    assert!(published["network_post_id"].is_string());
    for _ in 0..2 {
        app.clock.advance(TimeDelta::minutes(20));
        app.worker_pass().await;
    }
    let records = publications(&app).await;
    assert_eq!(records.len(), 1, "published once: {records:?}");
    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "social_post.published").count(), 1);

    // Unscheduled in time, a post stays a draft; the job left behind does nothing.
    let second = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Maybe later", "account_ids": [linkedin]}))
        .send()
        .await
        .expect(201);
    let second_post = second.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned();
    app.space(Method::POST, &format!("/social/posts/{second_post}/schedule"))
        .json(json!({"scheduled_at": (app.engine.now() + TimeDelta::minutes(5)).to_rfc3339()}))
        .send()
        .await
        .expect(200);
    let back = app
        .space(Method::POST, &format!("/social/posts/{second_post}/unschedule"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    assert_eq!(back.body["status"], "draft");
    assert_eq!(publish_jobs(&app).await, 0, "unscheduling withdraws the job");
    app.clock.advance(TimeDelta::minutes(6));
    app.worker_pass().await;
    assert_eq!(post(&app, &second_post).await["status"], "draft");
    assert_eq!(publications(&app).await.len(), 1);
}

async fn transient_failures_retry_and_permanent_ones_fail(app: TestApp) {
    let x = connect(&app, "x", "Acme on X").await;
    fail_next(&app, &x, 2, "transient").await;
    let id = publish_new(&app, &x, "Try, try again").await;
    app.worker_pass().await;
    let waiting = post(&app, &id).await;
    assert_eq!(
        (waiting["status"].as_str(), waiting["error"]["code"].as_str()),
        (Some("scheduled"), Some("TRANSIENT"))
    );
    app.clock.advance(TimeDelta::seconds(60));
    app.worker_pass().await;
    assert_eq!(post(&app, &id).await["status"], "scheduled");
    app.clock.advance(TimeDelta::seconds(300));
    app.worker_pass().await;
    let published = post(&app, &id).await;
    assert_eq!(published["status"], "published", "the third try: {published}");
    assert!(published.get("error").is_none());

    fail_next(&app, &x, 1, "permanent").await;
    let id = publish_new(&app, &x, "Not this one").await;
    app.worker_pass().await;
    let failed = post(&app, &id).await;
    assert_eq!(
        (failed["status"].as_str(), failed["error"]["code"].as_str()),
        (Some("failed"), Some("REJECTED"))
    );
    assert!(app.event_types().await.contains(&"social_post.failed".to_owned()));
    assert_eq!(publications(&app).await.len(), 1);
}

/// As many accounts as a cluster may hold: scheduling, moving and unscheduling it takes
/// more writes than one store transaction carries, and still reaches every post.
async fn a_cluster_of_every_account_it_may_hold_goes_live_whole(app: TestApp) {
    let mut accounts = Vec::new();
    for n in 0..social::posts::MAX_ACCOUNTS {
        accounts.push(connect(&app, "linkedin", &format!("Acme {n}")).await);
    }
    let created = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Everywhere at once", "account_ids": accounts}))
        .send()
        .await
        .expect(201);
    let cluster = created.body["id"].as_str().unwrap_or_default().to_owned();
    let at = app.engine.now() + TimeDelta::hours(2);
    for at in [at, at + TimeDelta::hours(1)] {
        let scheduled = app
            .space(Method::POST, &format!("/social/clusters/{cluster}/schedule"))
            .json(json!({"scheduled_at": at.to_rfc3339()}))
            .send()
            .await
            .expect(200);
        assert_eq!(scheduled.body["status"], "scheduled", "{}", scheduled.text);
        assert_eq!(scheduled.body["posts"].as_array().map(Vec::len), Some(accounts.len()));
        assert_eq!(publish_jobs(&app).await, accounts.len(), "one job per post");
    }
    let back = app
        .space(Method::POST, &format!("/social/clusters/{cluster}/unschedule"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    assert_eq!(back.body["status"], "draft");
    assert_eq!(publish_jobs(&app).await, 0);
    app.space(Method::POST, &format!("/social/clusters/{cluster}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    app.worker_pass().await;
    let live = app
        .space(Method::GET, &format!("/social/clusters/{cluster}"))
        .send()
        .await
        .expect(200);
    assert_eq!(live.body["status"], "published", "{}", live.text);
    assert_eq!(publications(&app).await.len(), accounts.len());
}

async fn drafts_edit_together_and_published_posts_stay(app: TestApp) {
    let x = connect(&app, "x", "Acme on X").await;
    let linkedin = connect(&app, "linkedin", "Acme on LinkedIn").await;
    let created = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "First words", "account_ids": [x, linkedin], "variants": {(x.clone()): {"content": "On X"}}}))
        .send()
        .await
        .expect(201);
    let cluster = created.body["id"].as_str().unwrap_or_default().to_owned();
    let x_post = created.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned();
    app.space(Method::POST, &format!("/social/posts/{x_post}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    app.worker_pass().await;

    let edited = app
        .space(Method::PUT, &format!("/social/clusters/{cluster}"))
        .json(json!({"content": "Better words"}))
        .send()
        .await
        .expect(200);
    assert_eq!(edited.body["status"], "partial");
    assert_eq!(
        edited.body["posts"][0]["content"], "On X",
        "published stays as published"
    );
    assert_eq!(edited.body["posts"][1]["content"], "Better words");
    assert_eq!(
        edited.body["variants"][x.as_str()]["content"],
        "On X",
        "variants are kept"
    );
    app.space(Method::DELETE, &format!("/social/posts/{x_post}"))
        .send()
        .await
        .expect(409);
    app.space(Method::DELETE, &format!("/social/clusters/{cluster}"))
        .send()
        .await
        .expect(204);
    let left = app
        .space(Method::GET, &format!("/social/clusters/{cluster}"))
        .send()
        .await
        .expect(200);
    let ids: Vec<&str> = left.body["posts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, [x_post.as_str()], "only the published post stays");
}

/// Two workers racing over the same due posts publish each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_publish_each_post_once() {
    let app = TestApp::embedded().await;
    let mut accounts = Vec::new();
    for n in 0..5 {
        accounts.push(connect(&app, "linkedin", &format!("Account {n}")).await);
    }
    let mut posts = 0;
    for n in 0..8 {
        let created = app
            .space(Method::POST, "/social/posts")
            .json(json!({"content": format!("Post {n}"), "account_ids": accounts}))
            .send()
            .await
            .expect(201);
        let cluster = created.body["id"].as_str().unwrap_or_default().to_owned();
        app.space(Method::POST, &format!("/social/clusters/{cluster}/publish"))
            .json(json!({}))
            .send()
            .await
            .expect(200);
        posts += accounts.len();
    }
    let one = spacectl::worker(app.engine.clone());
    let two = spacectl::worker(app.engine.clone());
    let (a, b) = tokio::join!(one.run_due(), two.run_due());
    a.expect("a pass");
    b.expect("a pass");
    assert_eq!(publications(&app).await.len(), posts);
    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "social_post.published").count(), posts);
}

fn at(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a time: {value}"))
}

async fn next_slot_fills_the_free_slots_in_order_and_the_queue_follows(app: TestApp) {
    let linkedin = connect(&app, "linkedin", "Acme on LinkedIn").await;
    let x = connect(&app, "x", "Acme on X").await;
    app.space(Method::POST, "/social/slots")
        .json(json!({"weekday": "mon", "time": "09:00", "time_zone": "UTC"}))
        .send()
        .await
        .expect(201);
    let wednesday = app
        .space(Method::POST, "/social/slots")
        .json(json!({"weekday": "wed", "time": "09:00", "time_zone": "UTC", "account_id": linkedin}))
        .send()
        .await
        .expect(201);
    // A slot is moved to an account of the Space only, by PATCH or PUT alike.
    let slot = format!("/social/slots/{}", wednesday.body["id"].as_str().unwrap_or_default());
    for (method, body) in [
        (Method::PATCH, json!({"account_id": "conn_nope"})),
        (
            Method::PUT,
            json!({"weekday": "wed", "time": "09:00", "time_zone": "UTC", "account_id": "conn_nope"}),
        ),
    ] {
        let refused = app.space(method, &slot).json(body).send().await.expect(422);
        assert!(
            refused.body["error"]["fields"]["account_id"].is_array(),
            "{}",
            refused.text
        );
    }
    let kept = app.space(Method::GET, &slot).send().await.expect(200);
    assert_eq!(kept.body["account_id"], linkedin.as_str());
    let refused = app
        .space(Method::POST, "/social/slots")
        .json(json!({"weekday": "fri", "time": "25:00", "time_zone": "Mars/Olympus", "account_id": "conn_nope"}))
        .send()
        .await
        .expect(422);
    for field in ["time", "time_zone"] {
        assert!(refused.body["error"]["fields"][field].is_array(), "{}", refused.text);
    }
    app.space(Method::POST, "/social/slots")
        .json(json!({"weekday": "fri", "time": "10:00", "time_zone": "UTC", "account_id": "conn_nope"}))
        .send()
        .await
        .expect(422);

    let now = app.engine.now();
    let mut times = Vec::new();
    let mut posts = Vec::new();
    for n in 0..3 {
        let created = app
            .space(Method::POST, "/social/posts")
            .json(json!({"content": format!("Queued {n}"), "account_ids": [linkedin]}))
            .send()
            .await
            .expect(201);
        let cluster = created.body["id"].as_str().unwrap_or_default().to_owned();
        let scheduled = app
            .space(Method::POST, &format!("/social/clusters/{cluster}/schedule"))
            .json(json!({"next_slot": true}))
            .send()
            .await
            .expect(200);
        times.push(at(&scheduled.body["posts"][0]["scheduled_at"]));
        posts.push(scheduled.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned());
    }
    assert!(times[0] > now && times[0] <= now + TimeDelta::days(7), "{times:?}");
    assert!(times.windows(2).all(|pair| pair[0] < pair[1]), "{times:?}");
    assert!(times[2] <= now + TimeDelta::days(14), "{times:?}");
    for time in &times {
        let weekday = time.weekday().num_days_from_monday();
        assert!(
            (weekday == 0 || weekday == 2) && time.hour() == 9 && time.minute() == 0,
            "{time}"
        );
    }

    let queue = app
        .space(Method::GET, &format!("/social/queue?account_id={linkedin}"))
        .send()
        .await
        .expect(200);
    let queued: Vec<&str> = queue.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(queued, posts.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(at(&queue.body["next_free_slots"][linkedin.as_str()]) > times[2]);
    let everyone = app.space(Method::GET, "/social/queue").send().await.expect(200);
    let x_free = at(&everyone.body["next_free_slots"][x.as_str()]);
    assert_eq!(
        x_free.weekday().num_days_from_monday(),
        0,
        "X has only the Monday slot: {x_free}"
    );

    // A freed slot is the next one given again.
    app.space(Method::POST, &format!("/social/posts/{}/unschedule", posts[0]))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let again = app
        .space(Method::POST, &format!("/social/posts/{}/schedule", posts[0]))
        .json(json!({"next_slot": true}))
        .send()
        .await
        .expect(200);
    assert_eq!(at(&again.body["scheduled_at"]), times[0]);

    // Published, a post leaves the queue and its figures arrive.
    app.clock.advance(times[0] - now + TimeDelta::seconds(1));
    app.worker_pass().await;
    let queue = app
        .space(Method::GET, &format!("/social/queue?account_id={linkedin}"))
        .send()
        .await
        .expect(200);
    assert_eq!(queue.body["data"].as_array().map(Vec::len), Some(2), "{}", queue.text);
    let first = app.space(Method::GET, "/social/analytics").send().await.expect(200);
    let impressions = |body: &Value| body["totals"][linkedin.as_str()]["impressions"].as_u64().unwrap_or(0);
    assert_eq!(first.body["data"][0]["post_id"], posts[0].as_str(), "{}", first.text);
    assert!(impressions(&first.body) > 0);
    app.clock.advance(TimeDelta::hours(3));
    let later = app
        .space(Method::GET, &format!("/social/analytics?account_id={linkedin}"))
        .send()
        .await
        .expect(200);
    assert!(impressions(&later.body) > impressions(&first.body), "figures grow");
}
