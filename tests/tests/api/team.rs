//! The Space's members: kept by the owner through the account API, read by keys with
//! `team:read`, changed by no key whatever its scopes.

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{ACCOUNT_API, SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    the_owner_keeps_members_and_keys_read_them,
    no_space_key_changes_a_member,
    another_accounts_owner_cannot_reach_the_members,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

fn members(app: &TestApp) -> String {
    format!("/spaces/{}/users", app.demo.space_id)
}

async fn add(app: &TestApp, body: Value) -> Value {
    app.account(Method::POST, &members(app))
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

async fn the_owner_keeps_members_and_keys_read_them(app: TestApp) {
    let ada = add(
        &app,
        json!({"name": "Ada Lovelace", "email": "Ada@Example.com", "role": "admin", "time_zone": "Europe/London"}),
    )
    .await;
    assert_eq!(ada["email"], "ada@example.com");
    assert_eq!(ada["role"], "admin");
    let grace = add(
        &app,
        json!({"name": "Grace Hopper", "email": "grace@example.com", "title": "Support lead"}),
    )
    .await;
    assert_eq!(grace["role"], "member", "the default role");

    // The same address twice is refused, naming the member who has it.
    let taken = app
        .account(Method::POST, &members(&app))
        .json(json!({"name": "Ada again", "email": "ada@example.com"}))
        .send()
        .await
        .expect(409);
    assert_eq!(taken.body["error"]["existing_id"], ada["id"]);
    let bad = app
        .account(Method::POST, &members(&app))
        .json(json!({"name": "Nobody", "email": "not-an-address", "time_zone": "Mars/Olympus"}))
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["email"].is_array(), "{}", bad.body);
    assert!(bad.body["error"]["fields"]["time_zone"].is_array(), "{}", bad.body);

    let reader = app.mint(&["team:read"], None).await;
    let listed = app
        .request(Method::GET, &format!("{SPACE_API}/users"))
        .key(&reader)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(2));
    let found = app
        .request(Method::GET, &format!("{SPACE_API}/users?email=grace@example.com"))
        .key(&reader)
        .send()
        .await
        .expect(200);
    assert_eq!(found.body["data"][0]["id"], grace["id"]);
    let admins = app
        .request(Method::GET, &format!("{SPACE_API}/users?role=admin"))
        .key(&reader)
        .send()
        .await
        .expect(200);
    assert_eq!(admins.body["data"][0]["id"], ada["id"]);
    assert_eq!(admins.body["data"].as_array().map(Vec::len), Some(1));
    // The owner reads them too, with the same filters, without a key.
    let owners = app
        .account(Method::GET, &format!("{}?role=admin", members(&app)))
        .send()
        .await
        .expect(200);
    assert_eq!(owners.body["data"], admins.body["data"]);
    let owners_grace = app
        .account(Method::GET, &format!("{}/{}", members(&app), id(&grace)))
        .send()
        .await
        .expect(200);
    assert_eq!(owners_grace.body["email"], "grace@example.com");

    // The owner promotes, then removes; keys see each change.
    let promoted = app
        .account(Method::PATCH, &format!("{}/{}", members(&app), id(&grace)))
        .json(json!({"role": "admin"}))
        .send()
        .await
        .expect(200);
    assert_eq!(promoted.body["role"], "admin");
    let got = app
        .request(Method::GET, &format!("{SPACE_API}/users/{}", id(&grace)))
        .key(&reader)
        .send()
        .await
        .expect(200);
    assert_eq!(got.body["role"], "admin");
    app.account(Method::DELETE, &format!("{}/{}", members(&app), id(&ada)))
        .send()
        .await
        .expect(204);
    app.request(Method::GET, &format!("{SPACE_API}/users/{}", id(&ada)))
        .key(&reader)
        .send()
        .await
        .expect(404);
    let types = app.event_types().await;
    for kind in ["user.created", "user.updated", "user.deleted"] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

async fn no_space_key_changes_a_member(app: TestApp) {
    let grace = add(&app, json!({"name": "Grace Hopper", "email": "grace@example.com"})).await;
    let path = format!("{SPACE_API}/users/{}", id(&grace));
    // Every scope there is: still no way to write a member through the space API.
    for (method, path) in [
        (Method::POST, format!("{SPACE_API}/users")),
        (Method::PATCH, path.clone()),
        (Method::PUT, path.clone()),
        (Method::DELETE, path.clone()),
    ] {
        let refused = app
            .request(method.clone(), &path)
            .key(app.key())
            .json(json!({"name": "Mallory", "email": "mallory@example.com", "role": "owner"}))
            .send()
            .await
            .expect(405);
        assert_eq!(refused.error_code(), "METHOD_NOT_ALLOWED", "{method} {path}");
    }
    // Nor through the account API with a space key.
    let refused = app
        .request(Method::PATCH, &format!("{ACCOUNT_API}{}/{}", members(&app), id(&grace)))
        .key(app.key())
        .json(json!({"role": "owner"}))
        .send()
        .await;
    assert!(matches!(refused.status, 401 | 403), "{}", refused.status);
    let unchanged = app
        .space(Method::GET, &format!("/users/{}", id(&grace)))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body["role"], "member");
    // And a key without team:read reads nothing.
    let other = app.mint(&["contacts:read"], None).await;
    let forbidden = app
        .request(Method::GET, &format!("{SPACE_API}/users"))
        .key(&other)
        .send()
        .await
        .expect(403);
    assert_eq!(forbidden.error_code(), "FORBIDDEN");
}

async fn another_accounts_owner_cannot_reach_the_members(app: TestApp) {
    let grace = add(&app, json!({"name": "Grace Hopper", "email": "grace@example.com"})).await;
    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Stranger", None)
        .await
        .expect("a second account");
    let theirs = format!("{ACCOUNT_API}{}", members(&app));
    for (method, path) in [
        (Method::GET, theirs.clone()),
        (Method::GET, format!("{theirs}/{}", id(&grace))),
        (Method::POST, theirs.clone()),
        (Method::PATCH, format!("{theirs}/{}", id(&grace))),
        (Method::DELETE, format!("{theirs}/{}", id(&grace))),
    ] {
        let refused = app
            .request(method, &path)
            .key(&stranger.account_key)
            .json(json!({"name": "Mallory", "email": "mallory@example.com"}))
            .send()
            .await
            .expect(404);
        assert_eq!(refused.error_code(), "NOT_FOUND");
    }
    // Their own Space's members are theirs alone: the demo Space's key does not see them.
    app.request(
        Method::POST,
        &format!("{ACCOUNT_API}/spaces/{}/users", stranger.space_id),
    )
    .key(&stranger.account_key)
    .json(json!({"name": "Eve", "email": "eve@example.com"}))
    .send()
    .await
    .expect(201);
    let ours = app.space(Method::GET, "/users").send().await.expect(200);
    assert_eq!(ours.body["data"].as_array().map(Vec::len), Some(1));
    let unchanged = app
        .space(Method::GET, &format!("/users/{}", id(&grace)))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body["name"], "Grace Hopper");
}
