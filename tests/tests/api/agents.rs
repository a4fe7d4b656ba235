//! Cloud agents, end to end on both backends.

use crate::family_checks;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

on_both_backends!(
    agents_use_operations_of_the_catalogue,
    every_route_needs_its_scope_and_the_right_space,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn agents_use_operations_of_the_catalogue(app: TestApp) {
    let created = app
        .space(Method::POST, "/agents")
        .json(json!({
            "name": "Triage",
            "instructions": "Mark overdue tasks high priority.",
            "model": "claude-sonnet-4-5",
            "operations": ["tasks_list", "tasks_update", "contacts_*", "tasks_list"]
        }))
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let triage = created.body;
    assert!(triage["id"].as_str().unwrap().starts_with("agt_"));
    assert_eq!(
        triage["operations"],
        json!(["tasks_list", "tasks_update", "contacts_*"])
    );
    assert_eq!(triage["enabled"], true);

    // Every operation the catalogue serves is accepted, this family's own included.
    let everything: Vec<String> = spacectl::operations()
        .iter()
        .filter(|o| matches!(o.access, space_http::Access::Space(_)) && o.name.starts_with("agents_"))
        .map(|o| o.name.clone())
        .collect();
    assert!(!everything.is_empty());
    let builder = app
        .space(Method::POST, "/agents")
        .json(json!({"name": "Builder", "model": "claude-opus-4", "operations": everything, "enabled": false}))
        .send()
        .await
        .expect(201);

    // Unknown operations are named; so are account operations, which no agent may use.
    let refused = app
        .space(Method::POST, "/agents")
        .json(json!({"name": "Bad", "model": "gpt-5", "operations": ["contacts_list", "contacts_explode", "spaces_create", "nothing_*"]}))
        .send()
        .await
        .expect(422);
    let fields = &refused.body["error"]["fields"];
    let messages: Vec<&str> = fields["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("contacts_explode")));
    // A model name is a pattern the schema states.
    let refused = app
        .space(Method::POST, "/agents")
        .json(json!({"name": "Bad", "model": "gpt 5!"}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["model"].is_array());
    let refused = app
        .space(Method::POST, "/agents")
        .json(json!({"operations": "tasks_list", "enabled": "yes"}))
        .send()
        .await
        .expect(422);
    for field in ["name", "model", "operations", "enabled"] {
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            refused.text
        );
    }

    // Lists and filters.
    let enabled = app.space(Method::GET, "/agents?enabled=true").send().await.expect(200);
    assert_eq!(enabled.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(enabled.body["data"][0]["name"], "Triage");
    let disabled = app.space(Method::GET, "/agents?enabled=false").send().await.expect(200);
    assert_eq!(disabled.body["data"][0]["id"], builder.body["id"]);
    let searched = app.space(Method::GET, "/agents?q=overdue").send().await.expect(200);
    assert_eq!(searched.body["data"].as_array().unwrap().len(), 1);
    app.space(Method::GET, "/agents?enabled=maybe").send().await.expect(422);

    let path = format!("/agents/{}", id(&triage));
    assert_eq!(app.space(Method::GET, &path).send().await.expect(200).body, triage);
    let paused = app
        .space(Method::PATCH, &path)
        .json(json!({"enabled": false}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (paused.body["enabled"].clone(), paused.body["operations"].clone()),
        (json!(false), triage["operations"].clone())
    );
    app.space(Method::PATCH, &path)
        .json(json!({"operations": ["tasks_destroy"]}))
        .send()
        .await
        .expect(422);
    let replaced = app
        .space(Method::PUT, &path)
        .json(json!({"name": "Triage", "model": "claude-haiku-4-5"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (
            replaced.body["operations"].clone(),
            replaced.body["enabled"].clone(),
            replaced.body["instructions"].clone()
        ),
        (json!([]), json!(true), json!(""))
    );
    app.space(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(json!({"enabled": true}))
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    let events = app.event_types().await;
    for kind in ["agent.created", "agent.updated", "agent.deleted"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let agent = app
        .space(Method::POST, "/agents")
        .json(json!({"name": "Mine", "model": "claude-sonnet-4-5", "operations": ["tasks_list"]}))
        .send()
        .await
        .expect(201)
        .body;
    let agent_id = id(&agent);
    let ids = [("id", agent_id.as_str())];
    let valid = json!({"name": "T", "model": "claude-sonnet-4-5"});
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("agents_create", valid.clone()),
        ("agents_update", json!({"name": "T"})),
        ("agents_replace", valid),
    ]);
    family_checks::scopes_are_enforced(&app, "agents", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "agents", &ids, &bodies).await;
    let unchanged = app
        .space(Method::GET, &format!("/agents/{agent_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body, agent);
}
