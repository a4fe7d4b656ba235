//! Approvals on live actions: a key minted with `approval_required` has its live actions
//! of those scopes written down (202, pending) instead of done; the owner approves or
//! rejects; the worker performs an approved one exactly once, as the key, under its caps.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{SPACE_API, TestApp, on_both_backends};

use crate::caps::{all_sms, send_with};
use crate::phone::connect;

on_both_backends!(
    an_approved_sms_is_sent_once_after_the_owner_approves,
    an_approved_call_whose_run_died_after_acting_is_performed_once,
    a_rejected_action_never_runs_and_decisions_stand,
    approval_required_names_the_keys_own_scopes_and_holds_live_actions_only,
    an_approved_call_meets_the_keys_caps_and_a_revoked_key_fails_it,
    a_retry_with_its_idempotency_key_asks_once_and_mcp_answers_pending,
    an_approval_holds_to_the_version_the_owner_was_asked_about,
);

/// Mints a key on the demo Space that must have `approval` approved.
async fn mint(app: &TestApp, scopes: &[&str], approval: &[&str], limits: Value) -> (String, String) {
    let space = &app.demo.space_id;
    let minted = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "supervised", "scopes": scopes, "approval_required": approval, "limits": limits}))
        .send()
        .await
        .expect(201);
    assert_eq!(minted.body["approval_required"], json!(approval), "{}", minted.text);
    (
        minted.body["token"].as_str().expect("a token").to_owned(),
        minted.body["id"].as_str().expect("an id").to_owned(),
    )
}

async fn owner(app: &TestApp, method: Method, path: &str) -> space_tests::Response {
    let space = &app.demo.space_id;
    app.account(method, &format!("/spaces/{space}/approvals{path}"))
        .send()
        .await
}

fn approval_id(pending: &space_tests::Response) -> String {
    assert_eq!(pending.status, 202, "{}", pending.text);
    assert_eq!(pending.body["status"], "pending");
    pending.body["approval_id"].as_str().expect("an approval id").to_owned()
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

async fn an_approved_sms_is_sent_once_after_the_owner_approves(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let (key, key_id) = mint(&app, &["phone:run", "phone:read"], &["phone:run"], Value::Null).await;
    let pending = send_with(&app, &key, &number, "+12015550123").await;
    let id = approval_id(&pending);
    assert_eq!(pending.body["operation"], "phone_sms_send");
    assert!(all_sms(&app).await.is_empty(), "nothing is sent before the approval");
    app.worker_pass().await;
    assert!(all_sms(&app).await.is_empty(), "nor by the worker");

    let waiting = owner(&app, Method::GET, "?status=pending").await.expect(200);
    let listed = waiting.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 1, "{}", waiting.text);
    let approval = &listed[0];
    assert_eq!(approval["id"], id.as_str());
    assert_eq!(approval["key_id"], key_id.as_str());
    assert_eq!(approval["scope"], "phone:run");
    assert_eq!(approval["method"], "POST");
    assert!(approval["path"].as_str().unwrap_or_default().ends_with("/phone/sms"));
    assert_eq!(approval["request"]["body"]["to"], "+12015550123");
    assert_eq!(approval["result"], Value::Null);

    let approved = owner(&app, Method::POST, &format!("/{id}/approve")).await.expect(200);
    assert_eq!(approved.body["status"], "approved");
    let again = owner(&app, Method::POST, &format!("/{id}/approve")).await.expect(200);
    assert_eq!(
        again.body["version"], approved.body["version"],
        "approving twice changes nothing"
    );
    // Two owners' tabs approving at once: one decision, one job.
    let path = format!("/{id}/approve");
    let raced = join_all((0..4).map(|_| owner(&app, Method::POST, &path))).await;
    assert!(raced.iter().all(|r| r.status == 200), "already approved");

    app.worker_pass().await;
    app.worker_pass().await;
    let sent = all_sms(&app).await;
    assert_eq!(sent.len(), 1, "sent exactly once");
    assert_eq!(sent[0]["to"], "+12015550123");
    let done = owner(&app, Method::GET, &format!("/{id}")).await.expect(200);
    assert_eq!(done.body["status"], "performed", "{}", done.text);
    assert_eq!(done.body["result"]["status"], 201);
    assert_eq!(done.body["result"]["body"]["id"], sent[0]["id"]);
    owner(&app, Method::POST, &format!("/{id}/approve")).await.expect(200);
    app.worker_pass().await;
    assert_eq!(all_sms(&app).await.len(), 1, "a late approval runs nothing");

    let types = app.event_types().await;
    for (kind, times) in [
        ("approval.requested", 1),
        ("approval.approved", 1),
        ("approval.performed", 1),
        ("sms.queued", 1),
    ] {
        assert_eq!(count(&types, kind), times, "{kind} in {types:?}");
    }
    let performed = owner(&app, Method::GET, "?status=performed").await.expect(200);
    assert_eq!(performed.body["data"].as_array().map(Vec::len), Some(1));
    let none = owner(&app, Method::GET, "?status=pending").await.expect(200);
    assert_eq!(none.body["data"], json!([]));
}

async fn an_approved_call_whose_run_died_after_acting_is_performed_once(app: TestApp) {
    let space = app.demo.space_id.clone();
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let (key, key_id) = mint(&app, &["phone:run", "phone:read"], &["phone:run"], Value::Null).await;
    let id = approval_id(&send_with(&app, &key, &number, "+12015550123").await);
    owner(&app, Method::POST, &format!("/{id}/approve")).await.expect(200);

    // A run performs the call and dies before anything records its answer: the action's
    // idempotency record is left applied, the approval approved.
    let at = space_http::approvals::key(&space, &id);
    let approval = app
        .engine
        .store()
        .get(&at.pk, &at.sk)
        .await
        .expect("a read")
        .expect("the approval");
    let principal = space_http::approvals::key_principal(&app.engine, &space, &key_id)
        .await
        .expect("the key");
    let call = space_http::approvals::replay(&approval.body, app.engine.clone(), principal);
    let operations = space_catalogue::operations();
    let operation = operations
        .iter()
        .find(|operation| operation.name == "phone_sms_send")
        .expect("the operation");
    space_http::execute::execute_approved(operation, call, &id)
        .await
        .expect("sent");
    let record_key = space_http::keys::idempotency(&space_http::keys::space_partition(&space), &key_id, &id);
    let mut record = app
        .engine
        .store()
        .get(&record_key.pk, &record_key.sk)
        .await
        .expect("a read")
        .expect("the record");
    record.body.insert("state".into(), json!("applied"));
    for answer in ["status", "body", "etag"] {
        record.body.remove(answer);
    }
    record.version += 1;
    app.engine
        .store()
        .put(record, space_store::Condition::None)
        .await
        .expect("written");

    // The retry does not act again, and the approval is performed, not failed.
    app.worker_pass().await;
    assert_eq!(all_sms(&app).await.len(), 1, "sent exactly once");
    let done = owner(&app, Method::GET, &format!("/{id}")).await.expect(200);
    assert_eq!(done.body["status"], "performed", "{}", done.text);
    let types = app.event_types().await;
    assert_eq!(count(&types, "approval.performed"), 1, "{types:?}");
    assert_eq!(count(&types, "approval.failed"), 0, "{types:?}");
}

async fn a_rejected_action_never_runs_and_decisions_stand(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let (key, _) = mint(&app, &["phone:run"], &["phone:run"], Value::Null).await;
    let first = approval_id(&send_with(&app, &key, &number, "+12015550123").await);
    let second = approval_id(&send_with(&app, &key, &number, "+12015550124").await);

    let space = &app.demo.space_id;
    let reject = |id: String, body: Value| {
        let app = &app;
        async move {
            app.account(Method::POST, &format!("/spaces/{space}/approvals/{id}/reject"))
                .json(body)
                .send()
                .await
        }
    };
    let refused = reject(first.clone(), json!({"reason": ""})).await.expect(422);
    assert!(refused.body["error"]["fields"]["reason"].is_array(), "{}", refused.text);
    let rejected = reject(first.clone(), json!({"reason": "Not to this customer"}))
        .await
        .expect(200);
    assert_eq!(rejected.body["status"], "rejected");
    assert_eq!(rejected.body["reason"], "Not to this customer");
    reject(first.clone(), json!({})).await.expect(200);
    let late = owner(&app, Method::POST, &format!("/{first}/approve"))
        .await
        .expect(409);
    assert!(
        late.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rejected"),
        "{}",
        late.text
    );

    owner(&app, Method::POST, &format!("/{second}/approve"))
        .await
        .expect(200);
    reject(second.clone(), json!({})).await.expect(409);
    app.worker_pass().await;
    let sent = all_sms(&app).await;
    assert_eq!(sent.len(), 1, "only the approved one");
    assert_eq!(sent[0]["to"], "+12015550124");

    owner(&app, Method::GET, "?status=maybe").await.expect(422);
    owner(&app, Method::GET, "/apr_unknown").await.expect(404);
    // Another account sees none of it.
    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Stranger", None)
        .await
        .expect("a second account");
    let theirs = app
        .request(
            Method::GET,
            &format!("/functions/v1/account-api/spaces/{space}/approvals/{first}"),
        )
        .key(&stranger.account_key)
        .send()
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
    let theirs = app
        .request(
            Method::POST,
            &format!("/functions/v1/account-api/spaces/{space}/approvals/{first}/approve"),
        )
        .key(&stranger.account_key)
        .send()
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);
}

async fn approval_required_names_the_keys_own_scopes_and_holds_live_actions_only(app: TestApp) {
    let space = &app.demo.space_id;
    for (approval, says) in [
        (json!(["phone:run"]), "not one of this key's scopes"),
        (json!(["phone:fly"]), "phone:fly"),
        (json!("pages:run"), "list"),
    ] {
        let refused = app
            .account(Method::POST, &format!("/spaces/{space}/keys"))
            .json(json!({"name": "bad", "scopes": ["pages:run"], "approval_required": approval}))
            .send()
            .await
            .expect(422);
        let why = refused.body["error"]["fields"]["approval_required"].to_string();
        assert!(why.contains(says), "{approval}: {why}");
    }
    // Drafts go on at once; only publishing waits.
    let (key, _) = mint(
        &app,
        &["pages:write", "pages:read", "pages:run"],
        &["pages:run"],
        Value::Null,
    )
    .await;
    let page = app
        .request(Method::POST, &format!("{SPACE_API}/pages"))
        .key(&key)
        .json(json!({"title": "Spring sale", "layout_html": "<h1>Spring</h1>"}))
        .send()
        .await
        .expect(201);
    let page = page.body["id"].as_str().expect("an id").to_owned();
    let publish = app
        .request(Method::POST, &format!("{SPACE_API}/pages/{page}/publish"))
        .key(&key)
        .json(json!({}))
        .send()
        .await;
    let id = approval_id(&publish);
    let shown = app
        .request(Method::GET, &format!("{SPACE_API}/pages/{page}"))
        .key(&key)
        .send()
        .await
        .expect(200);
    assert_ne!(shown.body["status"], "published", "{}", shown.text);
    owner(&app, Method::POST, &format!("/{id}/approve")).await.expect(200);
    app.worker_pass().await;
    let shown = app
        .request(Method::GET, &format!("{SPACE_API}/pages/{page}"))
        .key(&key)
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["status"], "published", "{}", shown.text);
    // Scopes the key needs no approval for run at once.
    app.request(Method::GET, &format!("{SPACE_API}/pages"))
        .key(&key)
        .send()
        .await
        .expect(200);
}

async fn an_approved_call_meets_the_keys_caps_and_a_revoked_key_fails_it(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let (key, key_id) = mint(
        &app,
        &["phone:run"],
        &["phone:run"],
        json!({"phone.sms": {"per_day": 1}}),
    )
    .await;
    let first = approval_id(&send_with(&app, &key, &number, "+12015550123").await);
    let second = approval_id(&send_with(&app, &key, &number, "+12015550124").await);
    let third = approval_id(&send_with(&app, &key, &number, "+12015550125").await);
    owner(&app, Method::POST, &format!("/{first}/approve"))
        .await
        .expect(200);
    owner(&app, Method::POST, &format!("/{second}/approve"))
        .await
        .expect(200);
    app.worker_pass().await;
    assert_eq!(all_sms(&app).await.len(), 1, "the cap holds");
    // The worker may run the two at once: whichever came second met the cap.
    let mut outcomes = Vec::new();
    for id in [&first, &second] {
        outcomes.push(owner(&app, Method::GET, &format!("/{id}")).await.expect(200).body);
    }
    outcomes.sort_by_key(|approval| approval["status"].to_string());
    assert_eq!(outcomes[1]["status"], "performed", "{outcomes:?}");
    let over = &outcomes[0];
    assert_eq!(over["status"], "failed", "{over}");
    assert_eq!(over["result"]["status"], 429);
    assert_eq!(over["result"]["body"]["error"]["code"], "LIVE_ACTION_CAP");

    let space = &app.demo.space_id;
    app.account(Method::DELETE, &format!("/spaces/{space}/keys/{key_id}"))
        .send()
        .await
        .expect(204);
    owner(&app, Method::POST, &format!("/{third}/approve"))
        .await
        .expect(200);
    app.worker_pass().await;
    let revoked = owner(&app, Method::GET, &format!("/{third}")).await.expect(200);
    assert_eq!(revoked.body["status"], "failed");
    assert_eq!(revoked.body["result"]["status"], 403);
    assert_eq!(all_sms(&app).await.len(), 1, "a revoked key sends nothing");
    let types = app.event_types().await;
    assert_eq!(count(&types, "approval.failed"), 2, "{types:?}");
}

async fn a_retry_with_its_idempotency_key_asks_once_and_mcp_answers_pending(app: TestApp) {
    let number = connect(&app, "+12015550100", &["sms"]).await;
    let (key, _) = mint(&app, &["phone:run"], &["phone:run"], Value::Null).await;
    let ask = || {
        let (app, key, number) = (&app, key.clone(), number.clone());
        async move {
            app.request(Method::POST, &format!("{SPACE_API}/phone/sms"))
                .key(&key)
                .header("idempotency-key", "order-77-shipped")
                .json(json!({"from_number_id": number, "to": "+12015550123", "text": "Shipped"}))
                .send()
                .await
        }
    };
    let first = approval_id(&ask().await);
    let again = approval_id(&ask().await);
    assert_eq!(first, again, "the retry answers the same approval");
    let listed = owner(&app, Method::GET, "").await.expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));

    let called = app
        .mcp(
            &key,
            "",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_phone",
                   "arguments": {"operation": "phone_sms_send", "arguments": {"from_number_id": number, "to": "+12015550124", "text": "Hi"}}}}),
        )
        .send()
        .await
        .expect(200);
    let result = &called.body["result"];
    assert_ne!(result["isError"], json!(true), "{result}");
    assert_eq!(result["structuredContent"]["status"], "pending", "{result}");
    let id = result["structuredContent"]["approval_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    owner(&app, Method::POST, &format!("/{id}/approve")).await.expect(200);
    app.worker_pass().await;
    let sent = all_sms(&app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "+12015550124");
}

/// What goes live is what the owner was asked about: a publish, a schedule or a launch is
/// held to its item's version when asked (or to the key's `If-Match`), and an edit made
/// with `write` in between makes the approved call fail with 412, doing nothing.
async fn an_approval_holds_to_the_version_the_owner_was_asked_about(app: TestApp) {
    let (key, _) = mint(
        &app,
        &[
            "pages:write",
            "pages:read",
            "pages:run",
            "social:write",
            "social:read",
            "social:run",
        ],
        &["pages:run", "social:run"],
        Value::Null,
    )
    .await;
    let call = |method: Method, path: String, body: Value| {
        let (app, key) = (&app, &key);
        async move {
            app.request(method, &format!("{SPACE_API}{path}"))
                .key(key)
                .json(body)
                .send()
                .await
        }
    };
    let approve_and_run = |id: String| {
        let app = &app;
        async move {
            owner(app, Method::POST, &format!("/{id}/approve")).await.expect(200);
            app.worker_pass().await;
            owner(app, Method::GET, &format!("/{id}")).await.expect(200).body
        }
    };
    let created = call(
        Method::POST,
        "/pages".into(),
        json!({"title": "Sale", "layout_html": "<h1>Reviewed</h1>"}),
    )
    .await
    .expect(201);
    let page = created.body["id"].as_str().expect("an id").to_owned();
    let asked = approval_id(&call(Method::POST, format!("/pages/{page}/publish"), json!({})).await);
    let shown = owner(&app, Method::GET, &format!("/{asked}")).await.expect(200);
    assert_eq!(
        shown.body["request"]["if_match"], created.body["version"],
        "{}",
        shown.text
    );
    call(
        Method::PATCH,
        format!("/pages/{page}"),
        json!({"layout_html": "<h1>Swapped</h1>"}),
    )
    .await
    .expect(200);
    let done = approve_and_run(asked).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["result"]["status"], 412, "{done}");
    let draft = call(Method::GET, format!("/pages/{page}"), Value::Null)
        .await
        .expect(200);
    assert_ne!(draft.body["status"], "published", "the edited page is not published");

    // Asked again about the page as it stands, it is published.
    let asked = approval_id(&call(Method::POST, format!("/pages/{page}/publish"), json!({})).await);
    assert_eq!(approve_and_run(asked).await["status"], "performed");
    let live = call(Method::GET, format!("/pages/{page}"), Value::Null)
        .await
        .expect(200);
    assert_eq!(live.body["status"], "published", "{}", live.text);

    // A key's own If-Match is kept too, even one already stale.
    let stale = app
        .request(Method::POST, &format!("{SPACE_API}/pages/{page}/publish"))
        .key(&key)
        .header("If-Match", "\"1\"")
        .json(json!({}))
        .send()
        .await;
    let done = approve_and_run(approval_id(&stale)).await;
    assert_eq!(done["request"]["if_match"], 1);
    assert_eq!(done["result"]["status"], 412, "{done}");

    // A cluster: an edit of one of its posts is a new version of the cluster.
    let linkedin = crate::social::connect(&app, "linkedin", "Acme on LinkedIn").await;
    let cluster = call(
        Method::POST,
        "/social/posts".into(),
        json!({"content": "Reviewed words", "account_ids": [linkedin]}),
    )
    .await
    .expect(201);
    let (cluster, post) = (
        cluster.body["id"].as_str().expect("an id").to_owned(),
        cluster.body["posts"][0]["id"].as_str().expect("a post").to_owned(),
    );
    let asked = approval_id(&call(Method::POST, format!("/social/clusters/{cluster}/publish"), json!({})).await);
    call(
        Method::PATCH,
        format!("/social/posts/{post}"),
        json!({"content": "Swapped words"}),
    )
    .await
    .expect(200);
    let done = approve_and_run(asked).await;
    assert_eq!(done["result"]["status"], 412, "{done}");
    app.worker_pass().await;
    let kept = call(Method::GET, format!("/social/posts/{post}"), Value::Null)
        .await
        .expect(200);
    assert_eq!(kept.body["status"], "draft", "{}", kept.text);
}
