//! Space Apps end to end on both backends: CRUD, code with its limits, JSON Schema
//! validation, publishing immutable numbered versions (`apps:run`), the scope matrix and
//! Space isolation.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use reqwest::Method;
use serde_json::{Value, json};
use space_auth::{Scope, ScopeSet};
use space_http::Access;
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    apps_code_schema_publish_and_versions,
    code_limits_name_each_bad_path,
    schemas_must_be_valid_json_schema,
    publishing_needs_code_and_apps_run,
    concurrent_publishes_get_distinct_numbers,
    every_apps_operation_needs_its_scope,
    another_spaces_apps_are_not_found,
);

async fn create_app(app: &TestApp, name: &str) -> String {
    let created = app
        .space(Method::POST, "/apps")
        .json(json!({"name": name}))
        .send()
        .await
        .expect(201);
    created.body["id"].as_str().unwrap().to_owned()
}

fn signup_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"email": {"type": "string", "format": "email"}, "plan": {"enum": ["free", "pro"]}},
        "required": ["email"]
    })
}

async fn apps_code_schema_publish_and_versions(app: TestApp) {
    let created = app
        .space(Method::POST, "/apps")
        .json(json!({"name": "Signup", "description": "Collects sign-ups"}))
        .send()
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("app_"));
    assert!(created.get("files").is_none(), "the app item holds no code");

    // Before anything is set: no files, the schema that accepts anything.
    let empty = app
        .space(Method::GET, &format!("/apps/{id}/code"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (empty.body["files"].clone(), empty.body["version"].as_u64()),
        (json!({}), Some(0))
    );
    assert_eq!(
        app.space(Method::GET, &format!("/apps/{id}/schema"))
            .send()
            .await
            .expect(200)
            .body,
        json!({})
    );

    let files =
        json!({"index.html": "<h1>Sign up</h1><script src=\"js/app.js\"></script>", "js/app.js": "console.log('hi')"});
    let put = app
        .space(Method::PUT, &format!("/apps/{id}/code"))
        .json(json!({"files": files}))
        .send()
        .await
        .expect(200);
    assert_eq!(put.header("etag"), Some("\"1\""));
    assert_eq!(put.body["paths"], json!(["index.html", "js/app.js"]));
    assert_eq!(put.body["file_count"], 2);
    assert!(put.body.get("files").is_none(), "a write does not echo every file");
    let code = app
        .space(Method::GET, &format!("/apps/{id}/code"))
        .send()
        .await
        .expect(200);
    assert_eq!(code.body["files"], files);
    // If-Match on the code's own version.
    app.space(Method::PUT, &format!("/apps/{id}/code"))
        .header("if-match", "\"9\"")
        .json(json!({"files": {"index.html": "x"}}))
        .send()
        .await
        .expect(412);

    let schema = app
        .space(Method::PUT, &format!("/apps/{id}/schema"))
        .json(signup_schema())
        .send()
        .await
        .expect(200);
    assert_eq!(schema.body, signup_schema());
    assert_eq!(
        app.space(Method::GET, &format!("/apps/{id}/schema"))
            .send()
            .await
            .expect(200)
            .body,
        signup_schema()
    );

    let first = app
        .space(Method::POST, &format!("/apps/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(201);
    assert_eq!(
        (first.body["number"].as_u64(), first.body["file_count"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(first.body["name"], "Signup");
    let changed = json!({"index.html": "<h1>Join us</h1>"});
    app.space(Method::PUT, &format!("/apps/{id}/code"))
        .json(json!({"files": changed}))
        .send()
        .await
        .expect(200);
    let second = app
        .space(Method::POST, &format!("/apps/{id}/publish"))
        .json(json!({"notes": "New headline"}))
        .send()
        .await
        .expect(201);
    assert_eq!(
        (second.body["number"].as_u64(), second.body["notes"].as_str()),
        (Some(2), Some("New headline"))
    );
    // Later draft edits leave published versions as they were.
    app.space(Method::PUT, &format!("/apps/{id}/schema"))
        .json(json!({"type": "object"}))
        .send()
        .await
        .expect(200);
    app.space(Method::PUT, &format!("/apps/{id}/code"))
        .json(json!({"files": {"index.html": "draft"}}))
        .send()
        .await
        .expect(200);
    app.space(Method::PATCH, &format!("/apps/{id}"))
        .json(json!({"name": "Signup v2"}))
        .send()
        .await
        .expect(200);

    let versions = app
        .space(Method::GET, &format!("/apps/{id}/versions"))
        .send()
        .await
        .expect(200);
    let numbers: Vec<u64> = versions.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "newest first");
    assert!(
        versions.body["data"][0].get("files").is_none(),
        "lists leave the files out"
    );
    let ascending = app
        .space(Method::GET, &format!("/apps/{id}/versions?order=asc&limit=1"))
        .send()
        .await
        .expect(200);
    assert_eq!(ascending.body["data"][0]["number"], 1);
    assert!(ascending.body["next_cursor"].is_string());
    let v1 = app
        .space(Method::GET, &format!("/apps/{id}/versions/1"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (v1.body["files"].clone(), v1.body["schema"].clone()),
        (files, signup_schema())
    );
    let v2 = app
        .space(Method::GET, &format!("/apps/{id}/versions/2"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (v2.body["files"].clone(), v2.body["schema"].clone()),
        (changed, signup_schema())
    );
    app.space(Method::GET, &format!("/apps/{id}/versions/3"))
        .send()
        .await
        .expect(404);
    app.space(Method::GET, &format!("/apps/{id}/versions/first"))
        .send()
        .await
        .expect(422);
    app.space(Method::POST, &format!("/apps/{id}/publish"))
        .json(json!({"notes": 5, "force": true}))
        .send()
        .await
        .expect(422);

    let listed = app.space(Method::GET, "/apps?q=signup").send().await.expect(200);
    assert_eq!(listed.body["data"][0]["name"], "Signup v2");
    let events = app.event_types().await;
    for (kind, count) in [
        ("app.created", 1),
        ("app.code_updated", 3),
        ("app.schema_updated", 2),
        ("app.published", 2),
        ("app.updated", 1),
    ] {
        assert_eq!(
            events.iter().filter(|t| *t == kind).count(),
            count,
            "{kind} in {events:?}"
        );
    }

    // Deleting the app takes its drafts and versions with it.
    app.space(Method::DELETE, &format!("/apps/{id}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/apps/{id}/code"))
        .send()
        .await
        .expect(404);
    app.space(Method::GET, &format!("/apps/{id}/versions"))
        .send()
        .await
        .expect(404);
    let space = &app.demo.space_id;
    for part in ["code", "schema"] {
        let key = space_http::keys::app_draft(space, &id, part);
        assert_eq!(
            app.engine.store().get(&key.pk, &key.sk).await.unwrap(),
            None,
            "{part} draft left behind"
        );
    }
    let partition = space_http::keys::app_versions_partition(space, &id);
    let left = app
        .engine
        .store()
        .query(space_store::Query::partition(partition))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "versions left behind");
}

async fn code_limits_name_each_bad_path(app: TestApp) {
    let id = create_app(&app, "Limits").await;
    let path = format!("/apps/{id}/code");
    let deep = "a/".repeat(apps::MAX_DEPTH) + "x.js";
    let response = app
        .space(Method::PUT, &path)
        .json(json!({"files": {
            "index.html": "ok",
            "../secret.txt": "x",
            "/etc/passwd": "x",
            "a//b.js": "x",
            "has space.js": "x",
            deep.clone(): "x",
            "big.js": "z".repeat(apps::MAX_FILE_BYTES + 1),
            "number.json": 5
        }}))
        .send()
        .await
        .expect(422);
    let fields = response.body["error"]["fields"].as_object().unwrap();
    for bad in [
        "../secret.txt",
        "/etc/passwd",
        "a//b.js",
        "has space.js",
        deep.as_str(),
        "big.js",
        "number.json",
    ] {
        assert!(
            fields.contains_key(&format!("files[{bad}]")),
            "{bad} not named: {}",
            response.text
        );
    }
    assert!(!fields.contains_key("files[index.html]"));

    let chunk = "y".repeat(apps::MAX_FILE_BYTES);
    let total = (0..=apps::MAX_TOTAL_BYTES / apps::MAX_FILE_BYTES)
        .map(|i| (format!("f{i}.js"), json!(chunk)))
        .collect::<serde_json::Map<_, _>>();
    let too_much = app
        .space(Method::PUT, &path)
        .json(json!({"files": total}))
        .send()
        .await
        .expect(422);
    assert!(
        too_much.body["error"]["fields"]["files"][0]
            .as_str()
            .unwrap()
            .contains("bytes")
    );
    let many = (0..=apps::MAX_FILES)
        .map(|i| (format!("f{i}.js"), json!("x")))
        .collect::<serde_json::Map<_, _>>();
    app.space(Method::PUT, &path)
        .json(json!({"files": many}))
        .send()
        .await
        .expect(422);
    app.space(Method::PUT, &path)
        .json(json!({"files": {}}))
        .send()
        .await
        .expect(422);
    app.space(Method::PUT, &path)
        .json(json!({"files": ["index.html"]}))
        .send()
        .await
        .expect(422);
    let extra = app
        .space(Method::PUT, &path)
        .json(json!({"files": {"a.js": "x"}, "mode": "merge"}))
        .send()
        .await
        .expect(422);
    assert!(extra.body["error"]["fields"]["mode"].is_array());
    app.space(Method::PUT, &path)
        .raw("text/plain", "index.html")
        .send()
        .await
        .expect(415);

    let code = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(code.body["files"], json!({}), "nothing was stored");
    app.space(Method::PUT, "/apps/app_01jdxxxxxxxxxxxxxxxxxxxxxx/code")
        .json(json!({"files": {"a.js": "x"}}))
        .send()
        .await
        .expect(404);
}

async fn schemas_must_be_valid_json_schema(app: TestApp) {
    let id = create_app(&app, "Schemas").await;
    let path = format!("/apps/{id}/schema");
    let refused = app
        .space(Method::PUT, &path)
        .json(json!({"type": "invalid_type"}))
        .send()
        .await
        .expect(422);
    let message = refused.body["error"]["fields"]["schema"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("invalid_type"), "{message}");
    let nested = app
        .space(Method::PUT, &path)
        .json(json!({"properties": {"age": {"minimum": "ten"}}}))
        .send()
        .await
        .expect(422);
    assert!(
        nested.body["error"]["fields"]["schema"][0]
            .as_str()
            .unwrap()
            .contains("/properties/age/minimum"),
        "{}",
        nested.text
    );
    for bad in [
        json!([1, 2]),
        json!({"pattern": "("}),
        json!({"$ref": "https://example.com/schema.json"}),
        json!({"$schema": "https://example.com/my-meta"}),
    ] {
        let response = app.space(Method::PUT, &path).json(bad.clone()).send().await.expect(422);
        assert!(
            response.body["error"]["fields"]["schema"].is_array(),
            "{bad}: {}",
            response.text
        );
    }
    let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "definitions": {"id": {"type": "string"}}});
    app.space(Method::PUT, &path)
        .json(draft7.clone())
        .send()
        .await
        .expect(200);
    assert_eq!(app.space(Method::GET, &path).send().await.expect(200).body, draft7);
    let events = app.event_types().await;
    assert_eq!(
        events.iter().filter(|t| *t == "app.schema_updated").count(),
        1,
        "refused schemas wrote nothing"
    );
}

async fn publishing_needs_code_and_apps_run(app: TestApp) {
    let id = create_app(&app, "Builder").await;
    let nothing = app
        .space(Method::POST, &format!("/apps/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(409);
    assert!(nothing.body["error"]["message"].as_str().unwrap().contains("code"));

    // apps:write builds drafts but cannot make them live.
    let builder = app.mint(&["apps:read", "apps:write"], Some(100_000)).await;
    let as_builder = |method: Method, path: String| app.request(method, &format!("{SPACE_API}{path}")).key(&builder);
    as_builder(Method::PUT, format!("/apps/{id}/code"))
        .json(json!({"files": {"index.html": "hi"}}))
        .send()
        .await
        .expect(200);
    as_builder(Method::PUT, format!("/apps/{id}/schema"))
        .json(json!({"type": "object"}))
        .send()
        .await
        .expect(200);
    let refused = as_builder(Method::POST, format!("/apps/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(403);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("apps:run"));
    let versions = as_builder(Method::GET, format!("/apps/{id}/versions"))
        .send()
        .await
        .expect(200);
    assert_eq!(versions.body["data"], json!([]));
    assert!(!app.event_types().await.contains(&"app.published".to_owned()));

    let publisher = app.mint(&["apps:run"], Some(100_000)).await;
    let published = app
        .request(Method::POST, &format!("{SPACE_API}/apps/{id}/publish"))
        .key(&publisher)
        .send()
        .await
        .expect(201);
    assert_eq!(published.body["number"], 1, "an empty body publishes too");
    app.request(Method::GET, &format!("{SPACE_API}/apps/{id}/versions"))
        .key(&publisher)
        .send()
        .await
        .expect(403);
}

async fn concurrent_publishes_get_distinct_numbers(app: TestApp) {
    let id = create_app(&app, "Race").await;
    app.space(Method::PUT, &format!("/apps/{id}/code"))
        .json(json!({"files": {"index.html": "hi"}}))
        .send()
        .await
        .expect(200);
    let path = format!("/apps/{id}/publish");
    let publishes = (0..3).map(|_| app.space(Method::POST, &path).json(json!({})).send());
    let mut numbers: Vec<u64> = futures::future::join_all(publishes)
        .await
        .into_iter()
        .map(|response| response.expect(201).body["number"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3]);
}

/// A key with every scope but the one an operation needs gets 403, and nothing changes.
async fn every_apps_operation_needs_its_scope(app: TestApp) {
    let id = create_app(&app, "Guarded").await;
    app.space(Method::PUT, &format!("/apps/{id}/code"))
        .json(json!({"files": {"index.html": "hi"}}))
        .send()
        .await
        .expect(200);
    app.space(Method::PUT, &format!("/apps/{id}/schema"))
        .json(json!({"type": "object"}))
        .send()
        .await
        .expect(200);
    app.space(Method::POST, &format!("/apps/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(201);
    let snapshot = || async {
        let mut state = Vec::new();
        for path in [
            "/apps".to_owned(),
            format!("/apps/{id}/code"),
            format!("/apps/{id}/schema"),
            format!("/apps/{id}/versions"),
        ] {
            state.push(app.space(Method::GET, &path).send().await.expect(200).body);
        }
        (state, app.event_types().await.len())
    };
    // Minting writes events: every key first, then the state to compare.
    let mut keys: HashMap<Scope, String> = HashMap::new();
    for operation in apps::operations() {
        let Access::Space(scope) = operation.access else {
            continue;
        };
        if let Entry::Vacant(entry) = keys.entry(scope) {
            let others: Vec<String> = ScopeSet::all()
                .iter()
                .filter(|s| *s != scope)
                .map(|s| s.to_string())
                .collect();
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            entry.insert(app.mint(&others, Some(100_000)).await);
        }
    }
    let before = snapshot().await;

    let mut checked = 0;
    for operation in apps::operations() {
        let Access::Space(scope) = operation.access else {
            continue;
        };
        let path = operation.path.replace("{id}", &id).replace("{number}", "1");
        let body = match operation.name.as_str() {
            "apps_code_put" => Some(json!({"files": {"index.html": "changed"}})),
            "apps_schema_put" => Some(json!({"type": "string"})),
            "apps_publish" => Some(json!({})),
            _ if matches!(operation.method.as_str(), "POST" | "PUT" | "PATCH") => Some(json!({"name": "Changed"})),
            _ => None,
        };
        let mut request = app
            .request(operation.method.clone(), &format!("{SPACE_API}{path}"))
            .key(&keys[&scope]);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect(403);
        assert!(
            response.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&scope.to_string()),
            "{}",
            response.text
        );
        checked += 1;
    }
    assert_eq!(checked, 13, "every space operation of the family was tried");
    assert_eq!(snapshot().await, before, "nothing changed");
}

async fn another_spaces_apps_are_not_found(app: TestApp) {
    let (_, other_key) = app.other_space().await;
    let theirs = |method: Method, path: String| app.request(method, &format!("{SPACE_API}{path}")).key(&other_key);
    let id = theirs(Method::POST, "/apps".into())
        .json(json!({"name": "Theirs"}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    theirs(Method::PUT, format!("/apps/{id}/code"))
        .json(json!({"files": {"index.html": "theirs"}}))
        .send()
        .await
        .expect(200);
    theirs(Method::POST, format!("/apps/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(201);

    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/apps/{id}"), None),
        (Method::PATCH, format!("/apps/{id}"), Some(json!({"name": "Mine"}))),
        (Method::PUT, format!("/apps/{id}"), Some(json!({"name": "Mine"}))),
        (Method::GET, format!("/apps/{id}/code"), None),
        (
            Method::PUT,
            format!("/apps/{id}/code"),
            Some(json!({"files": {"index.html": "mine"}})),
        ),
        (Method::GET, format!("/apps/{id}/schema"), None),
        (
            Method::PUT,
            format!("/apps/{id}/schema"),
            Some(json!({"type": "object"})),
        ),
        (Method::POST, format!("/apps/{id}/publish"), Some(json!({}))),
        (Method::GET, format!("/apps/{id}/versions"), None),
        (Method::GET, format!("/apps/{id}/versions/1"), None),
        (Method::DELETE, format!("/apps/{id}"), None),
    ];
    for (method, path, body) in requests {
        let mut request = app.space(method, &path);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect(404);
    }
    let still = theirs(Method::GET, format!("/apps/{id}/versions/1"))
        .send()
        .await
        .expect(200);
    assert_eq!(still.body["files"], json!({"index.html": "theirs"}));
    let code = theirs(Method::GET, format!("/apps/{id}/code")).send().await.expect(200);
    assert_eq!(code.body["files"], json!({"index.html": "theirs"}));
}
