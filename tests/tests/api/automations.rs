//! Automations: the owner defines them through the account API; a key reads and runs them;
//! the worker carries out each run step by step, once per step, as the run's key (its
//! scopes and caps); events and schedules start runs exactly once each.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{ACCOUNT_API, SPACE_API, TestApp, on_both_backends};

use crate::phone::connect;

on_both_backends!(
    the_owner_defines_automations_and_bad_ones_are_refused,
    reading_and_running_are_separate_scopes,
    a_manual_run_creates_a_task_and_tags_a_contact_step_by_step,
    a_wait_step_holds_the_run_until_the_clock_passes_it,
    a_failing_step_fails_the_run_and_skips_the_rest,
    a_webhook_answering_500_fails_its_step,
    a_new_contact_starts_its_automation_once,
    automations_are_not_started_by_their_own_runs_and_chains_end,
    steps_fill_in_the_runs_contact_and_input,
    a_schedule_fires_at_nine_local_time_across_the_dst_change,
    a_sending_step_counts_under_the_keys_cap,
    a_key_that_needs_approval_gets_a_pending_approval_from_its_step,
    an_mcp_client_runs_an_automation_with_the_run_tool,
    a_step_job_that_runs_twice_acts_once,
);

fn automations_path(app: &TestApp) -> String {
    format!("/spaces/{}/automations", app.demo.space_id)
}

async fn define(app: &TestApp, body: Value) -> Value {
    app.account(Method::POST, &automations_path(app))
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

/// Mints a key: its token and id.
async fn mint(app: &TestApp, scopes: &[&str], limits: Value) -> (String, String) {
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "automation", "scopes": scopes, "rate_limit_per_minute": 100_000, "limits": limits}))
        .send()
        .await
        .expect(201);
    (
        minted.body["token"].as_str().expect("a token").to_owned(),
        minted.body["id"].as_str().expect("an id").to_owned(),
    )
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn run(app: &TestApp, key: &str, automation: &str, input: Value) -> space_tests::Response {
    app.request(Method::POST, &format!("{SPACE_API}/automations/{automation}/run"))
        .key(key)
        .json(json!({"input": input}))
        .send()
        .await
}

async fn get_run(app: &TestApp, automation: &str, run: &str) -> Value {
    app.space(Method::GET, &format!("/automations/{automation}/runs/{run}"))
        .send()
        .await
        .expect(200)
        .body
}

async fn runs(app: &TestApp, automation: &str) -> Vec<Value> {
    app.space(Method::GET, &format!("/automations/{automation}/runs"))
        .send()
        .await
        .expect(200)
        .body["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn statuses(run: &Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| step["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn tasks(app: &TestApp) -> Vec<Value> {
    app.space(Method::GET, "/tasks").send().await.expect(200).body["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

async fn the_owner_defines_automations_and_bad_ones_are_refused(app: TestApp) {
    let created = define(
        &app,
        json!({"name": "Follow up", "trigger": {"type": "manual"}, "steps": [{"type": "create_task", "title": "Call back"}]}),
    )
    .await;
    let automation = id(&created);
    assert!(automation.starts_with("aut_"));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["next_run_at"], Value::Null);
    let path = format!("{}/{automation}", automations_path(&app));
    let listed = app
        .account(Method::GET, &automations_path(&app))
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"][0]["id"], automation.as_str());
    let changed = app
        .account(Method::PATCH, &path)
        .json(json!({"name": "Follow up now", "enabled": false}))
        .send()
        .await
        .expect(200);
    assert_eq!(changed.body["name"], "Follow up now");
    assert_eq!(changed.body["enabled"], false);
    assert_eq!(
        changed.body["steps"], created["steps"],
        "what the change left out stays"
    );
    let stale = app
        .account(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(json!({"enabled": true}))
        .send()
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    // A key sees it too, and cannot run it while it is disabled.
    let shown = app
        .space(Method::GET, &format!("/automations/{automation}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["name"], "Follow up now");
    let disabled = run(&app, app.key(), &automation, json!({})).await;
    assert_eq!(disabled.status, 409, "{}", disabled.text);

    for (body, field, says) in [
        (
            json!({"name": "x", "trigger": {"type": "event", "event": "contact.exploded"}, "steps": [{"type": "wait", "seconds": 1}]}),
            "trigger.event",
            "contact.created",
        ),
        (
            json!({"name": "x", "trigger": {"type": "event", "event": "contact.created"}, "steps": [{"type": "wait", "seconds": 1}]}),
            "run_as_key_id",
            "required",
        ),
        (
            json!({"name": "x", "trigger": {"type": "schedule", "cron": "0 25 * * *"}, "run_as_key_id": "key_01jd0000000000000000000000", "steps": [{"type": "wait", "seconds": 1}]}),
            "trigger.cron",
            "cron",
        ),
        (
            json!({"name": "x", "trigger": {"type": "schedule", "cron": "0 9 * * *", "time_zone": "Mars/Base"}, "run_as_key_id": "key_01jd0000000000000000000000", "steps": [{"type": "wait", "seconds": 1}]}),
            "trigger.time_zone",
            "time zone",
        ),
        (
            json!({"name": "x", "trigger": {"type": "manual"}, "steps": []}),
            "steps",
            "1 to 20",
        ),
        (
            json!({"name": "x", "trigger": {"type": "manual"}, "steps": [{"type": "wait", "seconds": 2_592_001}]}),
            "steps[0].seconds",
            "30 days",
        ),
        (
            json!({"name": "x", "trigger": {"type": "manual"}, "steps": [{"type": "call_webhook", "url": "ftp://example.com"}]}),
            "steps[0].url",
            "https",
        ),
        (
            json!({"name": "x", "trigger": {"type": "manual"}, "steps": [{"type": "send_sms", "to": "+12015550123"}]}),
            "steps[0].from_number_id",
            "required",
        ),
        (
            json!({"name": "x", "trigger": {"type": "manual"}, "run_as_key_id": "key_01jd0000000000000000000000", "steps": [{"type": "wait", "seconds": 1}]}),
            "run_as_key_id",
            "not a key",
        ),
        (json!(["not", "an", "object"]), "body", "object"),
    ] {
        let refused = app
            .account(Method::POST, &automations_path(&app))
            .json(body.clone())
            .send()
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert_eq!(refused.error_code(), "VALIDATION_FAILED");
        let message = refused.body["error"]["fields"][field].to_string();
        assert!(message.contains(says), "{field} of {body}: {}", refused.text);
    }

    app.account(Method::DELETE, &path).send().await.expect(204);
    app.account(Method::GET, &path).send().await.expect(404);
    app.space(Method::GET, &format!("/automations/{automation}"))
        .send()
        .await
        .expect(404);
    let types = app.event_types().await;
    for kind in ["automation.created", "automation.updated", "automation.deleted"] {
        assert_eq!(count(&types, kind), 1, "{kind}");
    }
}

async fn reading_and_running_are_separate_scopes(app: TestApp) {
    let automation = id(&define(
        &app,
        json!({"name": "Nap", "trigger": {"type": "manual"}, "steps": [{"type": "wait", "seconds": 60}]}),
    )
    .await);
    let (reader, _) = mint(&app, &["automations:read"], Value::Null).await;
    let listed = app
        .request(Method::GET, &format!("{SPACE_API}/automations"))
        .key(&reader)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    let refused = run(&app, &reader, &automation, json!({})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.text.contains("automations:run"), "{}", refused.text);
    // No space key reaches the owner's routes.
    let (runner, _) = mint(&app, &["automations:run", "automations:read"], Value::Null).await;
    for key in [&reader, &runner] {
        let denied = app
            .request(Method::POST, &format!("{ACCOUNT_API}{}", automations_path(&app)))
            .key(key)
            .json(json!({"name": "x", "trigger": {"type": "manual"}, "steps": [{"type": "wait", "seconds": 1}]}))
            .send()
            .await;
        assert_eq!(denied.status, 401, "{}", denied.text);
    }
    let started = run(&app, &runner, &automation, json!({})).await.expect(202);
    assert_eq!(started.body["status"], "queued");
    // Bad input is a 422, not a run.
    let bad = app
        .request(Method::POST, &format!("{SPACE_API}/automations/{automation}/run"))
        .key(&runner)
        .json(json!({"input": "me"}))
        .send()
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    run(&app, &runner, "aut_01jd0000000000000000000000", json!({}))
        .await
        .expect(404);
}

async fn a_manual_run_creates_a_task_and_tags_a_contact_step_by_step(app: TestApp) {
    let contact = id(&app
        .contact(json!({"name": "Ada Lovelace", "email": "ada@example.com"}))
        .await);
    let automation = id(&define(
        &app,
        json!({"name": "Onboard", "trigger": {"type": "manual"}, "steps": [
            {"type": "create_task", "title": "Welcome call"},
            {"type": "add_tag", "tag": "onboarding"}
        ]}),
    )
    .await);
    let (key, key_id) = mint(
        &app,
        &["automations:run", "automations:read", "tasks:write", "contacts:write"],
        Value::Null,
    )
    .await;
    let started = run(&app, &key, &automation, json!({"contact_id": contact}))
        .await
        .expect(202);
    let run_id = id(&started.body);
    assert_eq!(started.body["key_id"], key_id.as_str());
    assert_eq!(statuses(&started.body), ["pending", "pending"]);
    assert!(started.body.get("_definitions").is_none());

    app.worker_pass().await;
    let first = get_run(&app, &automation, &run_id).await;
    assert_eq!(first["status"], "running");
    assert_eq!(statuses(&first), ["succeeded", "pending"]);
    assert_eq!(first["steps"][0]["output"]["title"], "Welcome call");
    assert!(first["steps"][0]["started_at"].is_string() && first["steps"][0]["finished_at"].is_string());
    let made = tasks(&app).await;
    assert_eq!(made.len(), 1);

    app.worker_pass().await;
    let done = get_run(&app, &automation, &run_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(statuses(&done), ["succeeded", "succeeded"]);
    assert!(done["finished_at"].is_string());
    let tagged = app
        .space(Method::GET, &format!("/contacts/{contact}"))
        .send()
        .await
        .expect(200);
    assert_eq!(tagged.body["tags"], json!(["onboarding"]));

    // More passes do nothing more.
    app.worker_pass().await;
    app.worker_pass().await;
    assert_eq!(tasks(&app).await.len(), 1);
    let types = app.event_types().await;
    assert_eq!(count(&types, "automation.run.started"), 1);
    assert_eq!(count(&types, "automation.run.succeeded"), 1);
    assert_eq!(count(&types, "task.created"), 1);
    let listed = runs(&app, &automation).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["status"], "succeeded");
    let filtered = app
        .space(Method::GET, &format!("/automations/{automation}/runs?status=failed"))
        .send()
        .await
        .expect(200);
    assert_eq!(filtered.body["data"], json!([]));
    // The owner follows the same runs without a key.
    let space = &app.demo.space_id;
    let owners = app
        .account(Method::GET, &format!("/spaces/{space}/automations/{automation}/runs"))
        .send()
        .await
        .expect(200);
    assert_eq!(owners.body["data"], json!(listed));
    let run_id = id(&listed[0]);
    let owners_run = app
        .account(
            Method::GET,
            &format!("/spaces/{space}/automations/{automation}/runs/{run_id}"),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(owners_run.body, get_run(&app, &automation, &run_id).await);
}

async fn a_wait_step_holds_the_run_until_the_clock_passes_it(app: TestApp) {
    let automation = id(&define(
        &app,
        json!({"name": "Later", "trigger": {"type": "manual"}, "steps": [
            {"type": "wait", "seconds": 3600},
            {"type": "create_task", "title": "An hour later"}
        ]}),
    )
    .await);
    let run_id = id(&run(&app, app.key(), &automation, json!({})).await.expect(202).body);
    app.worker_pass().await;
    let waiting = get_run(&app, &automation, &run_id).await;
    assert_eq!(waiting["status"], "waiting");
    assert_eq!(statuses(&waiting), ["running", "pending"]);
    app.clock.advance(TimeDelta::minutes(59));
    app.worker_pass().await;
    assert_eq!(get_run(&app, &automation, &run_id).await["status"], "waiting");
    assert!(tasks(&app).await.is_empty());
    app.clock.advance(TimeDelta::minutes(1));
    app.worker_pass().await;
    app.worker_pass().await;
    let done = get_run(&app, &automation, &run_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["steps"][0]["output"]["waited_seconds"], 3600);
    assert_eq!(tasks(&app).await.len(), 1);
}

async fn a_failing_step_fails_the_run_and_skips_the_rest(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let automation = id(&define(
        &app,
        json!({"name": "Text", "trigger": {"type": "manual"}, "steps": [
            {"type": "send_sms", "from_number_id": number, "to": "+1999", "text": "Hi"},
            {"type": "create_task", "title": "Never"}
        ]}),
    )
    .await);
    let run_id = id(&run(&app, app.key(), &automation, json!({})).await.expect(202).body);
    app.worker_pass().await;
    let failed = get_run(&app, &automation, &run_id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(statuses(&failed), ["failed", "skipped"]);
    assert_eq!(failed["steps"][0]["error"]["status"], 422);
    assert_eq!(failed["steps"][0]["error"]["code"], "VALIDATION_FAILED");
    app.worker_pass().await;
    assert!(tasks(&app).await.is_empty());
    assert_eq!(count(&app.event_types().await, "automation.run.failed"), 1);

    // A key without the step's scope: the 403 is recorded on the step.
    let (key, _) = mint(&app, &["automations:run"], Value::Null).await;
    let run_id = id(&run(&app, &key, &automation, json!({})).await.expect(202).body);
    app.worker_pass().await;
    let refused = get_run(&app, &automation, &run_id).await;
    assert_eq!(refused["steps"][0]["error"]["status"], 403, "{refused}");
    assert_eq!(statuses(&refused), ["failed", "skipped"]);
}

/// A receiver that answers every request with `status`.
async fn answering(status: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("an address");
    let status = axum::http::StatusCode::from_u16(status).expect("a status");
    let app = axum::Router::new().fallback(move || async move { status });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/hook")
}

async fn a_webhook_answering_500_fails_its_step(app: TestApp) {
    let ok = answering(204).await;
    let broken = answering(500).await;
    let created = define(
        &app,
        json!({"name": "Notify", "trigger": {"type": "manual"}, "steps": [
            {"type": "call_webhook", "url": ok},
            {"type": "call_webhook", "url": broken},
            {"type": "create_task", "title": "Never"}
        ]}),
    )
    .await;
    assert!(
        created["webhook_secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{created}"
    );
    let automation = id(&created);
    let shown = app
        .account(Method::GET, &format!("{}/{automation}", automations_path(&app)))
        .send()
        .await
        .expect(200);
    assert!(shown.body.get("webhook_secret").is_none(), "shown once");
    let run_id = id(&run(&app, app.key(), &automation, json!({"order": 7}))
        .await
        .expect(202)
        .body);
    app.worker_pass().await;
    app.worker_pass().await;
    let failed = get_run(&app, &automation, &run_id).await;
    assert_eq!(statuses(&failed), ["succeeded", "failed", "skipped"], "{failed}");
    assert_eq!(failed["steps"][0]["output"]["status"], 204);
    assert_eq!(failed["steps"][1]["error"]["status"], 500);
    assert_eq!(failed["status"], "failed");
}

async fn a_new_contact_starts_its_automation_once(app: TestApp) {
    let (_, key_id) = mint(&app, &["contacts:write"], Value::Null).await;
    let automation = id(&define(
        &app,
        json!({"name": "Tag newcomers", "trigger": {"type": "event", "event": "contact.created"}, "run_as_key_id": key_id, "steps": [
            {"type": "add_tag", "tag": "new"}
        ]}),
    )
    .await);
    let contact = id(&app.contact(json!({"name": "Grace Hopper"})).await);
    for _ in 0..3 {
        app.worker_pass().await;
    }
    let started = runs(&app, &automation).await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["trigger"]["type"], "event");
    assert_eq!(started[0]["input"]["contact_id"], contact.as_str());
    assert_eq!(started[0]["key_id"], key_id.as_str());
    assert_eq!(started[0]["status"], "succeeded", "{}", started[0]);
    let tagged = app
        .space(Method::GET, &format!("/contacts/{contact}"))
        .send()
        .await
        .expect(200);
    assert_eq!(tagged.body["tags"], json!(["new"]));
    // Its own changes (the tag is a contact.updated) start nothing.
    app.worker_pass().await;
    assert_eq!(runs(&app, &automation).await.len(), 1);
    assert_eq!(count(&app.event_types().await, "automation.run.started"), 1);

    // Contacts created while it is disabled never start it, not even once it is enabled again.
    let path = format!("{}/{automation}", automations_path(&app));
    app.account(Method::PATCH, &path)
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect(200);
    app.contact(json!({"name": "Margaret Hamilton"})).await;
    app.worker_pass().await;
    app.account(Method::PATCH, &path)
        .json(json!({"enabled": true}))
        .send()
        .await
        .expect(200);
    app.worker_pass().await;
    assert_eq!(runs(&app, &automation).await.len(), 1);
    app.contact(json!({"name": "Katherine Johnson"})).await;
    app.worker_pass().await;
    assert_eq!(runs(&app, &automation).await.len(), 2);
}

async fn steps_fill_in_the_runs_contact_and_input(app: TestApp) {
    let space = app.demo.space_id.clone();
    let sender = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "mail", "address": "hello@example.com"}))
        .send()
        .await
        .expect(201);
    let sender = id(&sender.body);
    let (_, key_id) = mint(&app, &["mail:write", "tasks:write"], Value::Null).await;
    let automation = id(&define(
        &app,
        json!({"name": "Welcome", "trigger": {"type": "event", "event": "contact.created"}, "run_as_key_id": key_id, "steps": [
            {"type": "send_mail", "from_sender_id": sender, "to": "{{ contact.email }}",
             "subject": "Welcome, {{contact.name}}", "text": "Hello {{contact.name}}, glad you are here."},
            {"type": "create_task", "title": "Call {{contact.name}} ({{contact.phone}})"}
        ]}),
    )
    .await);
    app.contact(json!({"name": "Grace Hopper", "email": "grace@example.com"}))
        .await;
    for _ in 0..4 {
        app.worker_pass().await;
    }
    let mail = app.space(Method::GET, "/mail/messages").send().await.expect(200);
    let sent = &mail.body["data"][0];
    assert_eq!(sent["to"], json!(["grace@example.com"]), "{sent}");
    assert_eq!(sent["subject"], "Welcome, Grace Hopper");
    assert_eq!(sent["text"], "Hello Grace Hopper, glad you are here.");
    // The contact has no phone: that step fails, naming the placeholder.
    let welcome = &runs(&app, &automation).await[0];
    assert_eq!(statuses(welcome), ["succeeded", "failed"], "{welcome}");
    let why = welcome["steps"][1]["error"]["message"].as_str().unwrap_or_default();
    assert!(why.contains("{{contact.phone}}"), "{welcome}");

    // A manual run fills in its input; a placeholder the step cannot know is refused up front.
    let manual = id(&define(
        &app,
        json!({"name": "Follow up", "trigger": {"type": "manual"}, "steps": [
            {"type": "create_task", "title": "Follow up on order {{input.order_id}}"}
        ]}),
    )
    .await);
    let run_id = id(&run(&app, app.key(), &manual, json!({"order_id": 42}))
        .await
        .expect(202)
        .body);
    app.worker_pass().await;
    let done = get_run(&app, &manual, &run_id).await;
    assert_eq!(done["steps"][0]["output"]["title"], "Follow up on order 42", "{done}");
    let refused = app
        .account(Method::POST, &automations_path(&app))
        .json(json!({"name": "Bad", "trigger": {"type": "manual"}, "steps": [
            {"type": "create_task", "title": "Call {{contact.password}}"}
        ]}))
        .send()
        .await
        .expect(422);
    assert!(refused.text.contains("contact.password"), "{}", refused.text);
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("a time").with_timezone(&Utc)
}

async fn next_run_at(app: &TestApp, automation: &str) -> DateTime<Utc> {
    let shown = app
        .account(Method::GET, &format!("{}/{automation}", automations_path(app)))
        .send()
        .await
        .expect(200);
    at(shown.body["next_run_at"].as_str().expect("a next run"))
}

async fn a_schedule_fires_at_nine_local_time_across_the_dst_change(app: TestApp) {
    let (_, key_id) = mint(&app, &["tasks:write"], Value::Null).await;
    // Move the clock to a day before Berlin's summer time starts (Sunday 2027-03-28).
    let start = at("2027-03-26T12:00:00Z");
    let now = app.engine.now();
    assert!(now < start, "the test clock starts before 2027");
    app.clock.advance(start - now);
    let automation = id(&define(
        &app,
        json!({"name": "Morning", "trigger": {"type": "schedule", "cron": "0 9 * * *", "time_zone": "Europe/Berlin"}, "run_as_key_id": key_id, "steps": [
            {"type": "create_task", "title": "Plan the day"}
        ]}),
    )
    .await);
    assert_eq!(next_run_at(&app, &automation).await, at("2027-03-27T08:00:00Z"));
    app.worker_pass().await;
    assert!(runs(&app, &automation).await.is_empty(), "not before its time");
    for (fires, next) in [
        ("2027-03-27T08:00:00Z", "2027-03-28T07:00:00Z"),
        ("2027-03-28T07:00:00Z", "2027-03-29T07:00:00Z"),
    ] {
        app.clock.advance(at(fires) - app.engine.now());
        app.worker_pass().await;
        app.worker_pass().await;
        assert_eq!(next_run_at(&app, &automation).await, at(next));
    }
    let fired = runs(&app, &automation).await;
    assert_eq!(fired.len(), 2, "{fired:?}");
    let times: Vec<&str> = fired
        .iter()
        .filter_map(|r| r["trigger"]["scheduled_for"].as_str())
        .collect();
    assert_eq!(times, ["2027-03-28T07:00:00.000Z", "2027-03-27T08:00:00.000Z"]);
    assert!(fired.iter().all(|r| r["status"] == "succeeded"), "{fired:?}");
    assert_eq!(tasks(&app).await.len(), 2);

    // Renamed, it keeps its time; disabled, it stops.
    let path = format!("{}/{automation}", automations_path(&app));
    let renamed = app
        .account(Method::PATCH, &path)
        .json(json!({"name": "Every morning"}))
        .send()
        .await
        .expect(200);
    assert_eq!(renamed.body["next_run_at"], "2027-03-29T07:00:00.000Z");
    app.clock.advance(at("2027-03-29T07:00:00Z") - app.engine.now());
    app.worker_pass().await;
    assert_eq!(runs(&app, &automation).await.len(), 3);
    let paused = app
        .account(Method::PATCH, &path)
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect(200);
    assert_eq!(paused.body["next_run_at"], Value::Null);
    app.clock.advance(TimeDelta::days(2));
    app.worker_pass().await;
    assert_eq!(runs(&app, &automation).await.len(), 3);
}

async fn a_sending_step_counts_under_the_keys_cap(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let automation = id(&define(
        &app,
        json!({"name": "Text", "trigger": {"type": "manual"}, "steps": [
            {"type": "send_sms", "from_number_id": number, "to": "+12015550123", "text": "Your order shipped"}
        ]}),
    )
    .await);
    let (key, _) = mint(
        &app,
        &["automations:run", "phone:run"],
        json!({"phone.sms": {"per_day": 1}}),
    )
    .await;
    let first = id(&run(&app, &key, &automation, json!({})).await.expect(202).body);
    let second = id(&run(&app, &key, &automation, json!({})).await.expect(202).body);
    app.worker_pass().await;
    app.worker_pass().await;
    let (first, second) = (
        get_run(&app, &automation, &first).await,
        get_run(&app, &automation, &second).await,
    );
    let mut outcomes = [first["status"].clone(), second["status"].clone()];
    outcomes.sort_by_key(ToString::to_string);
    assert_eq!(outcomes, [json!("failed"), json!("succeeded")], "{first} {second}");
    let capped = if first["status"] == "failed" { &first } else { &second };
    assert_eq!(capped["steps"][0]["error"]["status"], 429);
    assert_eq!(capped["steps"][0]["error"]["code"], "LIVE_ACTION_CAP");
    let sent = app.space(Method::GET, "/phone/sms").send().await.expect(200);
    assert_eq!(sent.body["data"].as_array().map(Vec::len), Some(1));
}

async fn a_key_that_needs_approval_gets_a_pending_approval_from_its_step(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let automation = id(&define(
        &app,
        json!({"name": "Text", "trigger": {"type": "manual"}, "steps": [
            {"type": "send_sms", "from_number_id": number, "to": "+12015550123", "text": "Your order shipped"}
        ]}),
    )
    .await);
    let minted = app
        .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "supervised", "scopes": ["automations:run", "phone:run"], "approval_required": ["phone:run"]}))
        .send()
        .await
        .expect(201);
    let key = minted.body["token"].as_str().expect("a token").to_owned();
    let run_id = id(&run(&app, &key, &automation, json!({})).await.expect(202).body);
    app.worker_pass().await;
    app.worker_pass().await;
    let done = get_run(&app, &automation, &run_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["steps"][0]["output"]["status"], "pending");
    assert!(
        done["steps"][0]["output"]["approval_id"]
            .as_str()
            .is_some_and(|a| a.starts_with("apr_"))
    );
    let sent = app.space(Method::GET, "/phone/sms").send().await.expect(200);
    assert_eq!(
        sent.body["data"],
        json!([]),
        "nothing is sent before the owner approves"
    );
    assert_eq!(count(&app.event_types().await, "approval.requested"), 1);
}

async fn an_mcp_client_runs_an_automation_with_the_run_tool(app: TestApp) {
    let automation = id(&define(
        &app,
        json!({"name": "Follow up", "trigger": {"type": "manual"}, "steps": [{"type": "create_task", "title": "Call back"}]}),
    )
    .await);
    let (key, _) = mint(
        &app,
        &["automations:run", "automations:read", "tasks:write"],
        Value::Null,
    )
    .await;
    let called = app
        .mcp(
            &key,
            "",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_automations",
                   "arguments": {"operation": "automations_run", "arguments": {"id": automation, "input": {"ticket": 42}}}}}),
        )
        .send()
        .await
        .expect(200);
    let result = &called.body["result"];
    assert_ne!(result["isError"], json!(true), "{result}");
    assert_eq!(result["structuredContent"]["status"], "queued", "{result}");
    assert_eq!(result["structuredContent"]["input"]["ticket"], 42);
    app.worker_pass().await;
    assert_eq!(tasks(&app).await.len(), 1);
}

async fn a_step_job_that_runs_twice_acts_once(app: TestApp) {
    let contact = id(&app.contact(json!({"name": "Ada Lovelace"})).await);
    let automation = id(&define(
        &app,
        json!({"name": "Twice", "trigger": {"type": "manual"}, "steps": [
            {"type": "create_task", "title": "Once only"},
            {"type": "add_tag", "tag": "once"}
        ]}),
    )
    .await);
    let run_id = id(&run(&app, app.key(), &automation, json!({"contact_id": contact}))
        .await
        .expect(202)
        .body);
    // Copies of the first step's job, as a redelivered message or an expired lease would
    // leave them: they run beside the original, in the same pass and in the next.
    let payload = json!({"space_id": app.demo.space_id, "automation_id": automation, "run_id": run_id, "index": 0});
    let now = app.engine.now();
    let copies = (0..3)
        .map(|_| space_worker::NewJob::new("automations.step", payload.clone(), now).write())
        .collect();
    app.engine.store().transact(copies).await.expect("copies enqueued");
    app.worker_pass().await;
    let late = space_worker::NewJob::new("automations.step", payload, now).write();
    app.engine.store().transact(vec![late]).await.expect("a late copy");
    app.worker_pass().await;
    app.worker_pass().await;
    let done = get_run(&app, &automation, &run_id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(tasks(&app).await.len(), 1, "one task however often the step ran");
    let types = app.event_types().await;
    assert_eq!(count(&types, "task.created"), 1);
    assert_eq!(count(&types, "automation.run.succeeded"), 1);
}

async fn automations_are_not_started_by_their_own_runs_and_chains_end(app: TestApp) {
    let (_, key_id) = mint(&app, &["tasks:write"], Value::Null).await;
    let on_new_task = |name: &str| {
        json!({"name": name, "trigger": {"type": "event", "event": "task.created"}, "run_as_key_id": key_id, "steps": [
            {"type": "create_task", "title": format!("From {name}")}
        ]})
    };
    let settle = || async {
        for _ in 0..30 {
            app.worker_pass().await;
        }
    };
    // An automation whose step makes the very event it waits for runs once per task.
    let echo = id(&define(&app, on_new_task("echo")).await);
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Seed"}))
        .send()
        .await
        .expect(201);
    settle().await;
    assert_eq!(runs(&app, &echo).await.len(), 1);
    assert_eq!(tasks(&app).await.len(), 2);
    let events = app
        .space(Method::GET, "/events?types=task.created")
        .send()
        .await
        .expect(200);
    let by_echo: Vec<&Value> = events.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|event| event["actor"]["automation_id"] == echo.as_str())
        .collect();
    assert_eq!(by_echo.len(), 1, "{}", events.body);
    assert_eq!(by_echo[0]["actor"]["key_id"], key_id.as_str());

    // Two that start each other stop after a chain of five.
    app.account(Method::PATCH, &format!("{}/{echo}", automations_path(&app)))
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect(200);
    let ping = id(&define(&app, on_new_task("ping")).await);
    let pong = id(&define(&app, on_new_task("pong")).await);
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Serve"}))
        .send()
        .await
        .expect(201);
    settle().await;
    assert_eq!(runs(&app, &ping).await.len(), 5);
    assert_eq!(runs(&app, &pong).await.len(), 5);
    assert_eq!(tasks(&app).await.len(), 2 + 1 + 10);
}
