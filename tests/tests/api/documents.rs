//! Documents and their version history, end to end on both backends.

use crate::family_checks;

use std::collections::HashMap;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

on_both_backends!(
    documents_crud_search_and_limits,
    every_write_keeps_its_version,
    concurrent_updates_each_leave_exactly_one_version,
    every_route_needs_its_scope_and_the_right_space,
);

mod scan_bytes {
    mod embedded {
        use space_tests::{Backend, TestApp};

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn a_search_over_large_documents_stops_at_the_byte_budget() {
            super::super::a_search_over_large_documents_stops_at_the_byte_budget(
                TestApp::start(Backend::Embedded).await,
            )
            .await;
        }
    }
}

/// A search that matches nothing reads at most [`space_http::listing::SCAN_BYTES`] of items
/// in one call, however few they are: 180 documents of 190,000 characters (34 MB) are far
/// fewer than the scan's item budget, yet the call stops and says to narrow the search.
async fn a_search_over_large_documents_stops_at_the_byte_budget(app: TestApp) {
    let filler = "lorem ipsum ".repeat(190_000 / 12);
    for n in 0..180 {
        let content = if n == 0 {
            format!("needle {filler}")
        } else {
            filler.clone()
        };
        document(&app, json!({"title": format!("Large {n}"), "content": content})).await;
    }
    let refused = app.space(Method::GET, "/documents?q=nowhere").send().await.expect(422);
    assert!(refused.body["error"]["fields"]["q"].is_array(), "{}", refused.text);
    // A match within the budget is found (the newest first: the oldest one is the needle).
    let found = app
        .space(Method::GET, "/documents?q=needle&order=asc")
        .send()
        .await
        .expect(200);
    assert_eq!(
        found.body["data"][0]["title"],
        "Large 0",
        "{}",
        &found.text[..found.text.len().min(300)]
    );
}

async fn document(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/documents")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn documents_crud_search_and_limits(app: TestApp) {
    let created = app
        .space(Method::POST, "/documents")
        .json(json!({"title": "Launch plan", "content": "# Launch\n\nShip it.", "tags": ["launch"]}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let plan = created.body;
    assert!(plan["id"].as_str().unwrap().starts_with("doc_"));
    assert_eq!(plan["version"], 1);
    let bare = document(&app, json!({"title": "Notes"})).await;
    assert_eq!((bare["content"].clone(), bare["tags"].clone()), (json!(""), json!([])));

    let path = format!("/documents/{}", id(&plan));
    assert_eq!(app.space(Method::GET, &path).send().await.expect(200).body, plan);
    let searched = app.space(Method::GET, "/documents?q=ship").send().await.expect(200);
    assert_eq!(searched.body["data"].as_array().unwrap().len(), 1);
    let tagged = app.space(Method::GET, "/documents?tag=launch").send().await.expect(200);
    assert_eq!(tagged.body["data"][0]["title"], "Launch plan");
    let all = app.space(Method::GET, "/documents").send().await.expect(200);
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2);

    // Bad input is 422 per field; content is limited in bytes as well as characters.
    let refused = app
        .space(Method::POST, "/documents")
        .json(json!({"content": 5, "colour": "red"}))
        .send()
        .await
        .expect(422);
    for field in ["title", "content", "colour"] {
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            refused.text
        );
    }
    let heavy = "é".repeat(140_000);
    let refused = app
        .space(Method::POST, "/documents")
        .json(json!({"title": "Heavy", "content": heavy}))
        .send()
        .await
        .expect(422);
    assert!(
        refused.body["error"]["fields"]["content"][0]
            .as_str()
            .unwrap()
            .contains("bytes")
    );
    app.space(Method::PATCH, &path)
        .json(json!({"title": null}))
        .send()
        .await
        .expect(422);

    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    app.space(Method::DELETE, &path).send().await.expect(404);
    let events = app.event_types().await;
    for kind in ["document.created", "document.deleted"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
    assert!(
        !events.iter().any(|e| e == "document.updated"),
        "the refused PATCH wrote nothing"
    );
}

async fn every_write_keeps_its_version(app: TestApp) {
    let doc = document(&app, json!({"title": "Draft", "content": "one"})).await;
    let path = format!("/documents/{}", id(&doc));
    app.space(Method::PATCH, &path)
        .json(json!({"content": "two"}))
        .send()
        .await
        .expect(200);
    let replaced = app
        .space(Method::PUT, &path)
        .json(json!({"title": "Final", "content": "three"}))
        .send()
        .await
        .expect(200);
    assert_eq!(replaced.body["version"], 3);
    assert_eq!(replaced.header("etag"), Some("\"3\""));

    // The history lists every version, newest first, without content.
    let history = app
        .space(Method::GET, &format!("{path}/versions"))
        .send()
        .await
        .expect(200);
    let entries = history.body["data"].as_array().unwrap();
    let versions: Vec<&Value> = entries.iter().map(|e| &e["version"]).collect();
    assert_eq!(versions, [&json!(3), &json!(2), &json!(1)]);
    assert!(
        entries
            .iter()
            .all(|e| e.get("content").is_none() && e["document_id"] == doc["id"])
    );
    assert_eq!(entries[2]["title"], "Draft");
    let oldest_first = app
        .space(Method::GET, &format!("{path}/versions?order=asc&limit=2"))
        .send()
        .await
        .expect(200);
    assert_eq!(oldest_first.body["data"][0]["version"], 1);
    assert!(oldest_first.body["next_cursor"].is_string());

    // One version whole; versions that do not exist are 404.
    let first = app
        .space(Method::GET, &format!("{path}/versions/1"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (first.body["title"].clone(), first.body["content"].clone()),
        (json!("Draft"), json!("one"))
    );
    let second = app
        .space(Method::GET, &format!("{path}/versions/2"))
        .send()
        .await
        .expect(200);
    assert_eq!(second.body["content"], "two");
    for missing in ["0", "4", "two", "-1"] {
        app.space(Method::GET, &format!("{path}/versions/{missing}"))
            .send()
            .await
            .expect(404);
    }

    // A stale If-Match changes nothing, in the document or its history.
    app.space(Method::PATCH, &path)
        .header("if-match", "\"2\"")
        .json(json!({"content": "lost"}))
        .send()
        .await
        .expect(412);
    let unchanged = app
        .space(Method::GET, &format!("{path}/versions"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body["data"].as_array().unwrap().len(), 3);

    // Restoring an old version makes it the next one.
    let restored = app
        .space(Method::POST, &format!("{path}/versions/1/restore"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (
            restored.body["version"].clone(),
            restored.body["title"].clone(),
            restored.body["content"].clone()
        ),
        (json!(4), json!("Draft"), json!("one"))
    );
    let latest = app
        .space(Method::GET, &format!("{path}/versions/4"))
        .send()
        .await
        .expect(200);
    assert_eq!(latest.body["content"], "one");
    app.space(Method::POST, &format!("{path}/versions/9/restore"))
        .send()
        .await
        .expect(404);
    app.space(Method::POST, &format!("{path}/versions/1/restore"))
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect(412);

    // Deleting the document takes its history with it.
    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &format!("{path}/versions"))
        .send()
        .await
        .expect(404);
    app.space(Method::GET, &format!("{path}/versions/1"))
        .send()
        .await
        .expect(404);
    let partition = space_http::keys::document_versions_partition(&app.demo.space_id, doc["id"].as_str().unwrap());
    let left = app
        .engine
        .store()
        .query(space_store::Query::partition(partition))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "the history was removed");
    let events = app.event_types().await;
    assert_eq!(events.iter().filter(|e| *e == "document.updated").count(), 3);
    assert!(events.iter().any(|e| e == "document.deleted"));
}

/// Each write and its history entry commit together: whatever the interleaving, the
/// history holds exactly the versions the document went through.
async fn concurrent_updates_each_leave_exactly_one_version(app: TestApp) {
    let doc = document(&app, json!({"title": "Busy"})).await;
    let path = format!("/documents/{}", id(&doc));
    let writes = join_all((0..8).map(|n| {
        app.space(Method::PATCH, &path)
            .json(json!({"content": format!("edit {n}")}))
            .send()
    }))
    .await;
    let succeeded = writes.iter().filter(|r| r.status == 200).count();
    assert!(
        writes.iter().all(|r| r.status == 200 || r.status == 409),
        "{:?}",
        writes.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(succeeded >= 1);
    let current = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(current.body["version"], json!(1 + succeeded));
    let history = app
        .space(Method::GET, &format!("{path}/versions?limit=200&order=asc"))
        .send()
        .await
        .expect(200);
    let versions: Vec<u64> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=1 + succeeded as u64).collect::<Vec<_>>());
    let last = app
        .space(Method::GET, &format!("{path}/versions/{}", 1 + succeeded))
        .send()
        .await
        .expect(200);
    assert_eq!(last.body["content"], current.body["content"]);
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let doc = document(&app, json!({"title": "Private", "content": "secret plans"})).await;
    let doc_id = id(&doc);
    let ids = [("id", doc_id.as_str()), ("version", "1")];
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("documents_create", json!({"title": "T"})),
        ("documents_update", json!({"title": "T"})),
        ("documents_replace", json!({"title": "T"})),
    ]);
    family_checks::scopes_are_enforced(&app, "documents", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "documents", &ids, &bodies).await;
    let unchanged = app
        .space(Method::GET, &format!("/documents/{doc_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body, doc);
}
