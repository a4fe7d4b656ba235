//! Whiteboards, end to end on both backends.

use crate::family_checks;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

on_both_backends!(
    whiteboards_hold_elements,
    elements_are_checked_and_size_limited,
    every_route_needs_its_scope_and_the_right_space,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn whiteboards_hold_elements(app: TestApp) {
    let elements = json!([
        {"id": "r1", "type": "rectangle", "x": 10, "y": 20.5, "width": 100, "height": 50, "style": {"fill": "#ffcc00"}},
        {"type": "text", "x": 0, "y": 0, "text": "Launch"}
    ]);
    let created = app
        .space(Method::POST, "/whiteboards")
        .json(json!({"name": "Launch map", "elements": elements}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let board = created.body;
    assert!(board["id"].as_str().unwrap().starts_with("wb_"));
    assert_eq!(board["elements"], elements);
    let empty = app
        .space(Method::POST, "/whiteboards")
        .json(json!({"name": "Blank"}))
        .send()
        .await
        .expect(201);
    assert_eq!(empty.body["elements"], json!([]));

    // Lists leave the elements out and count them.
    let listed = app
        .space(Method::GET, "/whiteboards?order=asc")
        .send()
        .await
        .expect(200);
    let first = &listed.body["data"][0];
    assert_eq!(
        (first["name"].clone(), first["element_count"].clone()),
        (json!("Launch map"), json!(2))
    );
    assert!(first.get("elements").is_none());
    let found = app.space(Method::GET, "/whiteboards?q=blank").send().await.expect(200);
    assert_eq!(found.body["data"].as_array().unwrap().len(), 1);

    let path = format!("/whiteboards/{}", id(&board));
    assert_eq!(app.space(Method::GET, &path).send().await.expect(200).body, board);
    let renamed = app
        .space(Method::PATCH, &path)
        .json(json!({"name": "Launch board"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        renamed.body["elements"], elements,
        "a PATCH keeps what it does not send"
    );
    let appended = app
        .space(Method::POST, &format!("{path}/elements"))
        .json(json!({"elements": [{"id": "a1", "type": "arrow", "points": [[0, 0], [10, 10]]}]}))
        .send()
        .await
        .expect(200);
    assert_eq!(appended.body["elements"].as_array().unwrap().len(), 3);
    assert_eq!(appended.body["version"], 3);
    let clash = app
        .space(Method::POST, &format!("{path}/elements"))
        .json(json!({"elements": [{"id": "r1"}]}))
        .send()
        .await
        .expect(422);
    assert!(
        clash.body["error"]["fields"]["elements"][0]
            .as_str()
            .unwrap()
            .contains("r1")
    );
    app.space(Method::POST, &format!("{path}/elements"))
        .json(json!({"elements": [], "name": "x"}))
        .send()
        .await
        .expect(422);
    let replaced = app
        .space(Method::PUT, &path)
        .json(json!({"name": "Reset"}))
        .send()
        .await
        .expect(200);
    assert_eq!(replaced.body["elements"], json!([]));
    app.space(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(json!({"name": "Stale"}))
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    app.space(Method::POST, &format!("{path}/elements"))
        .json(json!({"elements": []}))
        .send()
        .await
        .expect(404);
    let events = app.event_types().await;
    for kind in ["whiteboard.created", "whiteboard.updated", "whiteboard.deleted"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
}

async fn elements_are_checked_and_size_limited(app: TestApp) {
    for (elements, hint) in [
        (json!({"type": "rect"}), "array"),
        (json!([{"type": "rect"}, 7]), "elements[1]"),
        (json!([{"id": "a"}, {"id": "a"}]), "elements[1].id"),
        (json!([{"id": 5}]), "elements[0].id"),
        (json!([{"": 1}]), "empty name"),
        (json!([{"x": 1e150}]), "range"),
    ] {
        let refused = app
            .space(Method::POST, "/whiteboards")
            .json(json!({"name": "Bad", "elements": elements}))
            .send()
            .await
            .expect(422);
        let message = refused.body["error"]["fields"]["elements"][0]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(hint), "{hint}: {message}");
    }
    let mut deep = json!({"leaf": true});
    for _ in 0..20 {
        deep = json!({"child": deep});
    }
    app.space(Method::POST, "/whiteboards")
        .json(json!({"name": "Deep", "elements": [deep]}))
        .send()
        .await
        .expect(422);

    // Over 256 KiB of elements is a 422 naming the field; over the 1 MiB body limit, 413.
    let big: Vec<Value> = (0..300)
        .map(|n| json!({"id": format!("e{n}"), "text": "x".repeat(1000)}))
        .collect();
    let refused = app
        .space(Method::POST, "/whiteboards")
        .json(json!({"name": "Big", "elements": big}))
        .send()
        .await
        .expect(422);
    assert!(
        refused.body["error"]["fields"]["elements"][0]
            .as_str()
            .unwrap()
            .contains("262144 bytes")
    );
    let huge: Vec<Value> = (0..1100)
        .map(|n| json!({"id": format!("e{n}"), "text": "x".repeat(1000)}))
        .collect();
    let response = app
        .space(Method::POST, "/whiteboards")
        .json(json!({"name": "Huge", "elements": huge}))
        .send()
        .await
        .expect(413);
    assert_eq!(response.error_code(), "PAYLOAD_TOO_LARGE");
    // Just under the limit is stored, on DynamoDB too, and appending past it is refused.
    let fits: Vec<Value> = (0..240)
        .map(|n| json!({"id": format!("e{n}"), "text": "x".repeat(1000)}))
        .collect();
    let board = app
        .space(Method::POST, "/whiteboards")
        .json(json!({"name": "Full", "elements": fits}))
        .send()
        .await
        .expect(201);
    let path = format!("/whiteboards/{}", id(&board.body));
    assert_eq!(
        app.space(Method::GET, &path).send().await.expect(200).body["elements"]
            .as_array()
            .unwrap()
            .len(),
        240
    );
    let more: Vec<Value> = (240..270)
        .map(|n| json!({"id": format!("e{n}"), "text": "x".repeat(1000)}))
        .collect();
    app.space(Method::POST, &format!("{path}/elements"))
        .json(json!({"elements": more}))
        .send()
        .await
        .expect(422);
    // A few more still fit: the board's event leaves its elements out (too large for one
    // event) and says so, on DynamoDB too.
    let few: Vec<Value> = (240..244)
        .map(|n| json!({"id": format!("e{n}"), "text": "x".repeat(1000)}))
        .collect();
    app.space(Method::POST, &format!("{path}/elements"))
        .json(json!({"elements": few}))
        .send()
        .await
        .expect(200);
    let events = app
        .space(Method::GET, "/events?types=whiteboard.updated")
        .send()
        .await
        .expect(200);
    let updated = &events.body["data"][0];
    assert_eq!(updated["data"]["omitted_fields"], json!(["elements"]), "{updated}");
    assert!(updated["data"]["object"].get("elements").is_none());
    assert_eq!(updated["data"]["object"]["name"], "Full");
    let listed = app.space(Method::GET, "/whiteboards").send().await.expect(200);
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "nothing refused was stored"
    );
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let board = app
        .space(Method::POST, "/whiteboards")
        .json(json!({"name": "Mine", "elements": [{"id": "a"}]}))
        .send()
        .await
        .expect(201)
        .body;
    let board_id = id(&board);
    let ids = [("id", board_id.as_str())];
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("whiteboards_create", json!({"name": "T"})),
        ("whiteboards_update", json!({"name": "T"})),
        ("whiteboards_replace", json!({"name": "T"})),
        ("whiteboards_elements_add", json!({"elements": [{"id": "b"}]})),
    ]);
    family_checks::scopes_are_enforced(&app, "whiteboards", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "whiteboards", &ids, &bodies).await;
    let unchanged = app
        .space(Method::GET, &format!("/whiteboards/{board_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body, board);
}
