//! Checks every family test runs over all of its family's routes, read from the catalogue
//! so a route added later is checked too: a key without the route's scope gets 403 naming
//! it, another Space's key gets 404 for every id, and neither leaves an event behind.

use std::collections::{HashMap, HashSet};

use reqwest::Method;
use serde_json::{Value, json};
use space_auth::{Action, Domain};
use space_http::operation::Access;
use space_tests::{SPACE_API, TestApp};

/// One route of a family, its path filled in.
pub struct Route {
    pub name: String,
    pub method: Method,
    pub path: String,
    pub action: Action,
    pub has_ids: bool,
}

/// Every space route of `domain`, with `{param}`s replaced from `ids`.
pub fn routes(domain: &str, ids: &[(&str, &str)]) -> Vec<Route> {
    let mut routes = Vec::new();
    for operation in spacectl::operations() {
        let Access::Space(scope) = operation.access else {
            continue;
        };
        if scope.domain.as_str() != domain {
            continue;
        }
        let mut path = operation.path.clone();
        for (name, value) in ids {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        assert!(
            !path.contains('{'),
            "{}: no id given for a parameter of {}",
            operation.name,
            operation.path
        );
        routes.push(Route {
            name: operation.name.clone(),
            method: Method::from_bytes(operation.method.as_str().as_bytes()).expect("a method"),
            path,
            action: scope.action,
            has_ids: operation.path.contains('{'),
        });
    }
    assert!(!routes.is_empty(), "no routes for {domain}");
    routes
}

fn body_for(bodies: &HashMap<&str, Value>, name: &str) -> Value {
    bodies.get(name).cloned().unwrap_or_else(|| json!({}))
}

/// A key holding only the domain's other action (where the domain has one), or only
/// another domain, is refused every route with 403 naming the missing scope, and nothing
/// is written.
pub async fn scopes_are_enforced(app: &TestApp, domain: &str, ids: &[(&str, &str)], bodies: &HashMap<&str, Value>) {
    let offered = domain.parse::<Domain>().expect("a domain").actions();
    let only = |action: Action| async move {
        match offered.contains(&action) {
            true => Some(app.mint(&[&format!("{domain}:{}", action.as_str())], None).await),
            false => None,
        }
    };
    let reader = only(Action::Read).await;
    let writer = only(Action::Write).await;
    let stranger = app.mint(&["contacts:read", "contacts:write"], None).await;
    let events = app.event_types().await.len();
    for route in routes(domain, ids) {
        let lacking = if route.action == Action::Read { &writer } else { &reader };
        let scope = format!("{domain}:{}", route.action.as_str());
        for key in lacking.iter().chain([&stranger]) {
            let response = app
                .request(route.method.clone(), &format!("{SPACE_API}{}", route.path))
                .key(key)
                .json(body_for(bodies, &route.name))
                .send()
                .await;
            assert_eq!(response.status, 403, "{}: {}", route.name, response.text);
            assert_eq!(response.error_code(), "FORBIDDEN");
            let message = response.body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&scope),
                "{}: the message names {scope}: {message}",
                route.name
            );
        }
    }
    assert_eq!(app.event_types().await.len(), events, "a refused call wrote nothing");
}

/// Another Space's full-scope key finds none of this Space's ids (404 on every route that
/// takes one, with a valid body) and lists nothing of it: none of the items this Space
/// lists, none of `ids` (the other Space may list things of its own, like the events of
/// its setup).
pub async fn other_spaces_get_404(app: &TestApp, domain: &str, ids: &[(&str, &str)], bodies: &HashMap<&str, Value>) {
    let (_, other) = app.other_space().await;
    let events = app.event_types().await.len();
    for route in routes(domain, ids) {
        let url = format!("{SPACE_API}{}", route.path);
        let response = app
            .request(route.method.clone(), &url)
            .key(&other)
            .json(body_for(bodies, &route.name))
            .send()
            .await;
        if route.has_ids {
            assert_eq!(response.status, 404, "{}: {}", route.name, response.text);
            assert_eq!(response.error_code(), "NOT_FOUND");
        } else if route.method == Method::GET {
            assert_eq!(response.status, 200, "{}: {}", route.name, response.text);
            let ours = app.request(Method::GET, &url).key(app.key()).send().await.expect(200);
            let item_ids = |page: &Value| -> HashSet<String> {
                page["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item["id"].as_str().map(str::to_owned))
                    .collect()
            };
            let leaked: Vec<String> = item_ids(&response.body)
                .intersection(&item_ids(&ours.body))
                .cloned()
                .collect();
            assert!(
                response.body["data"].is_array() && leaked.is_empty(),
                "{}: the other Space lists nothing of ours: {}",
                route.name,
                response.text
            );
            for (_, id) in ids {
                assert!(!response.text.contains(id), "{}: {id} leaked", route.name);
            }
        }
    }
    assert_eq!(
        app.event_types().await.len(),
        events,
        "nothing was written in this Space"
    );
}
