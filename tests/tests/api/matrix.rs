//! Guarantees checked for every route the catalogue declares, so a family is covered the
//! moment it is registered: authentication, scopes, Space isolation, key kinds. Each case
//! also checks that nothing changed (no new event in the Space).

use std::collections::HashMap;

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Map, Value, json};
use space_auth::{Scope, ScopeSet};
use space_http::Operation;
use space_http::operation::Access;
use space_tests::{ACCOUNT_API, SPACE_API, TestApp, on_both_backends};

on_both_backends!(every_route_refuses_what_it_must);

/// A plausible value for a JSON Schema, valid for the usual constraints.
fn example(schema: &Value) -> Value {
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        return options.first().cloned().unwrap_or(Value::Null);
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        return any.first().map(example).unwrap_or(Value::Null);
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .and_then(Value::as_str)
            .unwrap_or("null"),
        Value::String(kind) => kind.as_str(),
        _ => "object",
    };
    match kind {
        "string" => match schema["format"].as_str() {
            Some("email") => json!("matrix@example.com"),
            Some("date-time") => json!("2099-03-02T10:00:00Z"),
            Some("uri") => json!("https://example.com/"),
            _ if schema
                .get("pattern")
                .and_then(Value::as_str)
                .is_some_and(|p| p.contains("\\+")) =>
            {
                json!("+14155552671")
            }
            _ => json!("Example"),
        },
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "boolean" => json!(false),
        "array" => {
            let minimum = schema["minItems"].as_u64().unwrap_or(0);
            if minimum > 0 {
                json!([example(&schema["items"])])
            } else {
                json!([])
            }
        }
        "object" => {
            let mut object = Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if required.contains(&name.as_str()) {
                    object.insert(name.clone(), example(property));
                }
            }
            // Contacts need one handle; names are harmless elsewhere only if declared.
            if let Some(properties) = schema["properties"].as_object()
                && properties.contains_key("name")
                && !object.contains_key("name")
            {
                object.insert("name".into(), json!("Example"));
            }
            Value::Object(object)
        }
        _ => Value::Null,
    }
}

/// Fills path parameters with ids of real items of the Space, creating them through the
/// catalogue's own create operations, or taking the first one listed where nothing creates
/// them (events); falls back to an id that cannot exist.
struct Seeder<'a> {
    app: &'a TestApp,
    operations: &'a [Operation],
    known: HashMap<String, String>,
}

impl Seeder<'_> {
    async fn path(&mut self, operation: &Operation) -> String {
        let mut path = operation.path.clone();
        let mut resolved = String::new();
        for segment in operation.path.split('/').filter(|s| !s.is_empty()) {
            resolved.push('/');
            if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let value = self.value_for(param, &resolved[..resolved.len() - 1], operation).await;
                path = path.replacen(segment, &value, 1);
                resolved.push_str(&value);
            } else {
                resolved.push_str(segment);
            }
        }
        path
    }

    async fn value_for(&mut self, param: &str, collection: &str, operation: &Operation) -> String {
        match (operation.access, param) {
            (Access::Account, "space") => return self.app.demo.space_id.clone(),
            (Access::Account, "name") => return "MATRIX_SECRET".into(),
            _ => {}
        }
        if let Some(id) = self.known.get(collection) {
            return id.clone();
        }
        let creator = self.operations.iter().find(|o| {
            o.method == Method::POST && o.path == collection.trim_end_matches('/') && o.access == operation.access
        });
        let id = match creator {
            Some(creator) => {
                let body = creator.body.as_deref().map(example).unwrap_or(json!({}));
                let prefix = match operation.access {
                    Access::Account => ACCOUNT_API,
                    _ => SPACE_API,
                };
                let request = match operation.access {
                    Access::Account => self
                        .app
                        .request(Method::POST, &format!("{prefix}{collection}"))
                        .key(self.app.account_key()),
                    _ => self
                        .app
                        .request(Method::POST, &format!("{prefix}{collection}"))
                        .key(self.app.key()),
                };
                let response = request.json(body).send().await;
                response.body["id"].as_str().map(str::to_owned)
            }
            None if matches!(operation.access, Access::Space(_)) => {
                let listed = self
                    .app
                    .request(Method::GET, &format!("{SPACE_API}{collection}"))
                    .key(self.app.key())
                    .send()
                    .await;
                listed.body["data"][0]["id"].as_str().map(str::to_owned)
            }
            None => None,
        };
        let id = id.unwrap_or_else(|| "zz_01jdxxxxxxxxxxxxxxxxxxxxxx".into());
        self.known.insert(collection.to_owned(), id.clone());
        id
    }
}

async fn every_route_refuses_what_it_must(app: TestApp) {
    let operations = space_catalogue::operations();
    let mut seeder = Seeder {
        app: &app,
        operations: &operations,
        known: HashMap::new(),
    };
    let (_, other_key) = app.other_space().await;
    let expiring = {
        let expires_at =
            space_http::fields::format_datetime(space_store::Clock::now(app.clock.as_ref()) + TimeDelta::hours(1));
        let minted = app
            .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
            .json(json!({"name": "expiring", "scopes": all_scopes(), "expires_at": expires_at, "rate_limit_per_minute": 100000}))
            .send()
            .await
            .expect(201);
        minted.body["token"].as_str().unwrap_or_default().to_owned()
    };
    let revoked = {
        let minted = app
            .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
            .json(json!({"name": "revoked", "scopes": all_scopes(), "rate_limit_per_minute": 100000}))
            .send()
            .await
            .expect(201);
        let id = minted.body["id"].as_str().unwrap_or_default().to_owned();
        app.account(Method::DELETE, &format!("/spaces/{}/keys/{id}", app.demo.space_id))
            .send()
            .await
            .expect(204);
        minted.body["token"].as_str().unwrap_or_default().to_owned()
    };
    let mut typo = app.key().to_owned();
    let last = typo.pop().unwrap_or('a');
    typo.push(if last == 'a' { 'b' } else { 'a' });
    let mut without: HashMap<Scope, String> = HashMap::new();

    // Seed every collection first, with the full key, so the cases below change nothing.
    let mut paths = Vec::new();
    for operation in &operations {
        paths.push(seeder.path(operation).await);
    }
    app.clock.advance(TimeDelta::hours(2));

    let mut cases = 0usize;
    for (index, (operation, path)) in operations.iter().zip(&paths).enumerate() {
        let (base, kind) = match operation.access {
            Access::Space(_) => (SPACE_API, "space"),
            Access::Account => (ACCOUNT_API, "account"),
            Access::Public { .. } => continue,
        };
        let url = format!("{base}{path}");
        let body = operation.body.as_deref().map(example);
        let what = format!("{} {} ({})", operation.method, url, operation.name);
        // Each route from its own address: failed key lookups are limited per address.
        let client = format!("198.18.{}.{}", index / 250, index % 250);
        let send = |key: Option<String>| {
            let mut request = app
                .request(operation.method.clone(), &url)
                .header("x-forwarded-for", &client);
            if let Some(key) = key {
                request = request.key(&key);
            }
            if let Some(body) = &body {
                request = request.json(body.clone());
            }
            request.send()
        };
        let events_before = app.event_types().await.len();

        // Keys that authenticate nothing.
        let mut refused = vec![None, Some(typo.clone()), Some(expiring.clone()), Some(revoked.clone())];
        if kind == "account" {
            refused.push(Some(app.key().to_owned()));
        } else {
            refused.push(Some(app.account_key().to_owned()));
        }
        for key in refused {
            let response = send(key).await;
            assert_eq!(response.status, 401, "{what}: {}", response.text);
            assert_eq!(response.error_code(), "UNAUTHENTICATED");
            cases += 1;
        }
        assert_eq!(
            app.event_types().await.len(),
            events_before,
            "{what}: a call without a valid key changed something"
        );

        if let Access::Space(scope) = operation.access {
            // A key with every scope but this one.
            if let std::collections::hash_map::Entry::Vacant(slot) = without.entry(scope) {
                let scopes: Vec<String> = ScopeSet::all()
                    .iter()
                    .filter(|s| *s != scope)
                    .map(|s| s.to_string())
                    .collect();
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                slot.insert(app.mint(&scopes, Some(100_000)).await);
            }
            // Minting wrote a `key.created` event; the refused call must add none.
            let events_before = app.event_types().await.len();
            let response = send(without.get(&scope).cloned()).await;
            assert_eq!(response.status, 403, "{what}: {}", response.text);
            let message = response.body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&scope.to_string()),
                "{what}: 403 must name {scope}: {message}"
            );
            cases += 1;

            // Another Space's key on this Space's ids.
            if operation.path.contains('{') {
                let response = send(Some(other_key.clone())).await;
                // 404, or 422 where the generated example body is refused before any read.
                assert!(
                    response.status == 404 || response.status == 422,
                    "{what} with another Space's key: {} {}",
                    response.status,
                    response.text
                );
                cases += 1;
            }
            assert_eq!(
                app.event_types().await.len(),
                events_before,
                "{what}: a refused call changed something"
            );
        }
    }
    assert!(cases > operations.len() * 5, "the matrix ran {cases} cases");
    println!(
        "matrix: {} operations, {cases} refused cases, nothing changed",
        operations.len()
    );
}

fn all_scopes() -> Vec<String> {
    ScopeSet::all().iter().map(|s| s.to_string()).collect()
}
