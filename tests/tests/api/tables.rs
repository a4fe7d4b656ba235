//! Tables, their columns and records, end to end on both backends.

use crate::family_checks;

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    tables_and_their_columns,
    records_are_validated_against_the_columns,
    records_filter_and_sort_by_column,
    changing_columns_never_loses_other_data,
    relations_link_existing_records_and_guard_what_they_point_at,
    a_table_write_changes_nothing_else,
    every_route_needs_its_scope_and_the_right_space,
);

fn launch() -> Value {
    json!({"name": "Launch", "columns": [
        {"name": "budget", "type": "number"},
        {"name": "channel", "type": "select", "options": ["linkedin", "x"]}
    ]})
}

async fn table(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/tables")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

async fn record(app: &TestApp, table: &str, body: Value) -> Value {
    app.space(Method::POST, &format!("/tables/{table}/records"))
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

fn column_id(table: &Value, name: &str) -> String {
    table["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .expect("the column")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn names(list: &Value, field: &str) -> Vec<Value> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].clone())
        .collect()
}

async fn tables_and_their_columns(app: TestApp) {
    let created = app
        .space(Method::POST, "/tables")
        .json(launch())
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let launch = created.body;
    let table = id(&launch);
    assert!(table.starts_with("tbl_"));
    assert_eq!(launch["name"], "Launch");
    assert_eq!(launch["columns"][0]["type"], "number");
    assert_eq!(launch["columns"][1]["options"], json!(["linkedin", "x"]));
    assert!(launch["columns"][0]["id"].as_str().unwrap().starts_with("col_"));
    assert_eq!(launch["referenced_by"], json!([]));

    let got = app
        .space(Method::GET, &format!("/tables/{table}"))
        .send()
        .await
        .expect(200);
    assert_eq!(got.body, launch);
    table_of(&app, json!({"name": "Other"})).await;
    let found = app.space(Method::GET, "/tables?q=laun").send().await.expect(200);
    assert_eq!(names(&found.body, "name"), [json!("Launch")]);
    let all = app.space(Method::GET, "/tables?order=asc").send().await.expect(200);
    assert_eq!(names(&all.body, "name"), [json!("Launch"), json!("Other")]);

    // A PATCH without columns keeps them.
    let renamed = app
        .space(Method::PATCH, &format!("/tables/{table}"))
        .json(json!({"name": "Launch 2026"}))
        .send()
        .await
        .expect(200);
    assert_eq!(renamed.body["columns"], launch["columns"]);
    assert_eq!(renamed.body["version"], 2);

    // One column at a time: add, change, remove.
    let added = app
        .space(Method::POST, &format!("/tables/{table}/columns"))
        .json(json!({"name": "live", "type": "boolean"}))
        .send()
        .await
        .expect(201);
    assert_eq!(added.body["columns"][2]["name"], "live");
    let changed = app
        .space(Method::PATCH, &format!("/tables/{table}/columns/channel"))
        .json(json!({"options": ["linkedin", "x", "newsletter"]}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        changed.body["columns"][1]["options"],
        json!(["linkedin", "x", "newsletter"])
    );
    app.space(Method::DELETE, &format!("/tables/{table}/columns/live"))
        .send()
        .await
        .expect(204);
    app.space(Method::DELETE, &format!("/tables/{table}/columns/live"))
        .send()
        .await
        .expect(404);
    app.space(Method::PATCH, &format!("/tables/{table}/columns/nothing"))
        .json(json!({"name": "x"}))
        .send()
        .await
        .expect(404);

    // Every kind of bad column is a 422 naming the entry and its property: first what
    // can be told from the entry alone, then what needs the other columns and tables.
    let refused = app
        .space(Method::POST, "/tables")
        .json(json!({"name": "Bad", "columns": [
            {"name": "a", "type": "colour"},
            {"name": "id", "type": "text"},
            {"name": "h", "type": "text", "size": 3},
            {"name": "ok", "type": "text"}
        ]}))
        .send()
        .await
        .expect(422);
    let fields = &refused.body["error"]["fields"];
    for key in ["columns[0].type", "columns[1].name", "columns[2].size"] {
        assert!(fields[key][0].is_string(), "no message for {key}: {}", refused.text);
    }
    let refused = app
        .space(Method::POST, "/tables")
        .json(json!({"name": "Bad", "columns": [
            {"name": "b", "type": "select"},
            {"name": "c", "type": "text", "options": ["x"]},
            {"name": "e", "type": "text"},
            {"name": "E", "type": "number"},
            {"name": "f", "type": "relation", "table_id": "tbl_01jdxxxxxxxxxxxxxxxxxxxxxx"},
            {"name": "g", "type": "relation"},
            {"name": "i", "type": "number", "table_id": "tbl_01jdxxxxxxxxxxxxxxxxxxxxxx"}
        ]}))
        .send()
        .await
        .expect(422);
    let fields = &refused.body["error"]["fields"];
    for key in [
        "columns[0].options",
        "columns[1].options",
        "columns[3].name",
        "columns[4].table_id",
        "columns[5].table_id",
        "columns[6].table_id",
    ] {
        assert!(fields[key][0].is_string(), "no message for {key}: {}", refused.text);
    }
    let refused = app
        .space(Method::POST, "/tables")
        .json(json!({"columns": "budget"}))
        .send()
        .await
        .expect(422);
    assert!(
        refused.body["error"]["fields"]["name"].is_array() && refused.body["error"]["fields"]["columns"].is_array()
    );
    // A column's type cannot change; its id must be one of the table's.
    let budget = column_id(&launch, "budget");
    app.space(Method::PATCH, &format!("/tables/{table}/columns/{budget}"))
        .json(json!({"type": "text"}))
        .send()
        .await
        .expect(422);
    let unknown = app
        .space(Method::PATCH, &format!("/tables/{table}"))
        .json(json!({"columns": [{"id": "col_01jdxxxxxxxxxxxxxxxxxxxxxx"}]}))
        .send()
        .await
        .expect(422);
    assert!(unknown.body["error"]["fields"]["columns[0].id"].is_array());
    // PUT needs the whole definition.
    app.space(Method::PUT, &format!("/tables/{table}"))
        .json(json!({"name": "No columns field"}))
        .send()
        .await
        .expect(422);

    // ETags and If-Match.
    let current = app
        .space(Method::GET, &format!("/tables/{table}"))
        .send()
        .await
        .expect(200);
    let etag = current.header("etag").unwrap().to_owned();
    app.space(Method::PATCH, &format!("/tables/{table}"))
        .header("if-match", "\"1\"")
        .json(json!({"name": "Stale"}))
        .send()
        .await
        .expect(412);
    app.space(Method::PATCH, &format!("/tables/{table}"))
        .header("if-match", &etag)
        .json(json!({"name": "Fresh"}))
        .send()
        .await
        .expect(200);

    app.space(Method::DELETE, &format!("/tables/{table}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/tables/{table}"))
        .send()
        .await
        .expect(404);
    app.space(Method::GET, &format!("/tables/{table}/records"))
        .send()
        .await
        .expect(404);
    let events = app.event_types().await;
    for kind in ["table.created", "table.updated", "table.deleted"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
}

async fn table_of(app: &TestApp, body: Value) -> String {
    id(&table(app, body).await)
}

async fn records_are_validated_against_the_columns(app: TestApp) {
    let table = table_of(&app, launch()).await;
    let records = format!("/tables/{table}/records");
    let created = app
        .space(Method::POST, &records)
        .json(json!({"budget": 10, "channel": "linkedin"}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let first = created.body;
    assert!(first["id"].as_str().unwrap().starts_with("rec_"));
    assert_eq!(first["table_id"], table.as_str());
    assert_eq!(
        (first["budget"].clone(), first["channel"].clone()),
        (json!(10), json!("linkedin"))
    );
    assert_eq!(first["version"], 1);

    // Every bad field is named, unknown columns too, and nothing is stored.
    let refused = app
        .space(Method::POST, &records)
        .json(json!({"budget": "ten", "channel": "tiktok", "colour": "red"}))
        .send()
        .await
        .expect(422);
    let fields = refused.body["error"]["fields"].as_object().unwrap();
    let mut bad: Vec<&str> = fields.keys().map(String::as_str).collect();
    bad.sort_unstable();
    assert_eq!(bad, ["budget", "channel", "colour"]);
    assert!(fields["channel"][0].as_str().unwrap().contains("linkedin"));
    assert!(fields["colour"][0].as_str().unwrap().contains("budget, channel"));
    app.space(Method::POST, &records)
        .json(json!(["budget", 10]))
        .send()
        .await
        .expect(422);

    // Every column type.
    let kinds = table_of(
        &app,
        json!({"name": "Kinds", "columns": [
            {"name": "text", "type": "text"}, {"name": "number", "type": "number"},
            {"name": "boolean", "type": "boolean"}, {"name": "date", "type": "date"},
            {"name": "datetime", "type": "datetime"}, {"name": "email", "type": "email"},
            {"name": "url", "type": "url"}, {"name": "select", "type": "select", "options": ["a", "b"]},
            {"name": "multi", "type": "multi_select", "options": ["a", "b", "c"]}
        ]}),
    )
    .await;
    let kinds_path = format!("/tables/{kinds}/records");
    let good = record(
        &app,
        &kinds,
        json!({"text": "Hello", "number": 2.5, "boolean": true, "date": "2026-11-22",
               "datetime": "2026-11-22T18:00:00+01:00", "email": "Ada@Example.com",
               "url": "https://example.com/a", "select": "b", "multi": ["c", "a", "c"]}),
    )
    .await;
    assert_eq!(good["datetime"], "2026-11-22T17:00:00.000Z");
    assert_eq!(good["email"], "ada@example.com");
    assert_eq!(good["multi"], json!(["c", "a"]));
    let refused = app
        .space(Method::POST, &kinds_path)
        .json(json!({"text": 5, "number": "2", "boolean": "yes", "date": "22/11/2026",
                     "datetime": "tomorrow", "email": "nope", "url": "ftp://x", "select": "z", "multi": ["a", "z"]}))
        .send()
        .await
        .expect(422);
    assert_eq!(
        refused.body["error"]["fields"].as_object().unwrap().len(),
        9,
        "{}",
        refused.text
    );

    // An empty record is a record; `values` is accepted for clients that cannot send flat.
    let empty = record(&app, &kinds, json!({})).await;
    assert_eq!(empty["text"], Value::Null);
    let wrapped = record(&app, &table, json!({"values": {"budget": 3}})).await;
    assert_eq!(wrapped["budget"], 3);

    // Get, PATCH (null empties), PUT (the rest is emptied), delete.
    let first_id = id(&first);
    let path = format!("{records}/{first_id}");
    let got = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(got.body, first);
    let patched = app
        .space(Method::PATCH, &path)
        .json(json!({"budget": 12, "channel": null}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (patched.body["budget"].clone(), patched.body["channel"].clone()),
        (json!(12), Value::Null)
    );
    assert_eq!(patched.header("etag"), Some("\"2\""));
    app.space(Method::PATCH, &path)
        .json(json!({"budget": "many"}))
        .send()
        .await
        .expect(422);
    // A record read and sent back whole is accepted.
    let replaced = app
        .space(Method::PUT, &path)
        .json(json!({"channel": "x"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (replaced.body["budget"].clone(), replaced.body["channel"].clone()),
        (Value::Null, json!("x"))
    );
    let round_trip = app
        .space(Method::PUT, &path)
        .json(replaced.body.clone())
        .send()
        .await
        .expect(200);
    assert_eq!(round_trip.body["channel"], "x");
    app.space(Method::PATCH, &path)
        .header("if-match", "\"1\"")
        .json(json!({"budget": 1}))
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &path)
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    app.space(Method::PATCH, &path)
        .json(json!({"budget": 1}))
        .send()
        .await
        .expect(404);
    app.space(Method::POST, "/tables/tbl_01jdxxxxxxxxxxxxxxxxxxxxxx/records")
        .json(json!({}))
        .send()
        .await
        .expect(404);

    let events = app.event_types().await;
    for kind in ["table.record.created", "table.record.updated", "table.record.deleted"] {
        assert!(events.iter().any(|e| e == kind), "{kind} in {events:?}");
    }
}

async fn records_filter_and_sort_by_column(app: TestApp) {
    let table = table_of(
        &app,
        json!({"name": "Posts", "columns": [
            {"name": "title", "type": "text"},
            {"name": "budget", "type": "number"},
            {"name": "channel", "type": "select", "options": ["linkedin", "x"]},
            {"name": "tags", "type": "multi_select", "options": ["launch", "hiring"]},
            {"name": "live", "type": "boolean"},
            {"name": "when", "type": "datetime"}
        ]}),
    )
    .await;
    let rows = [
        json!({"title": "Alpha", "budget": 30, "channel": "linkedin", "tags": ["launch"], "live": true, "when": "2026-01-01T10:00:00Z"}),
        json!({"title": "bravo", "budget": 10, "channel": "x", "tags": ["launch", "hiring"], "live": false}),
        json!({"title": "Charlie", "budget": 20, "channel": "linkedin", "live": true, "when": "2026-01-01T11:00:00+01:00"}),
        json!({"title": "Delta", "channel": "x"}),
        json!({"title": "Echo", "budget": 10.0, "channel": "linkedin"}),
    ];
    for row in rows {
        record(&app, &table, row).await;
    }
    let list = |query: &str| {
        app.space(Method::GET, &format!("/tables/{table}/records?{query}"))
            .send()
    };
    let titles = |response: &space_tests::Response| names(&response.body, "title");

    let linkedin = list("where[channel]=linkedin&order=asc").await.expect(200);
    assert_eq!(titles(&linkedin), [json!("Alpha"), json!("Charlie"), json!("Echo")]);
    let tens = list("where[budget]=10&order=asc").await.expect(200);
    assert_eq!(titles(&tens), [json!("bravo"), json!("Echo")]);
    let both = list("where%5Bchannel%5D=linkedin&where%5Blive%5D=true&order=asc")
        .await
        .expect(200);
    assert_eq!(titles(&both), [json!("Alpha"), json!("Charlie")]);
    let hiring = list("where[tags]=hiring").await.expect(200);
    assert_eq!(titles(&hiring), [json!("bravo")]);
    let at_ten_utc = list("where[when]=2026-01-01T10:00:00Z&order=asc").await.expect(200);
    assert_eq!(titles(&at_ten_utc), [json!("Alpha"), json!("Charlie")]);
    let json_where = format!("where={}", urlencode(r#"{"channel":"x","budget":10}"#));
    let json_filtered = list(&json_where).await.expect(200);
    assert_eq!(titles(&json_filtered), [json!("bravo")]);
    let searched = list("q=CHAR").await.expect(200);
    assert_eq!(titles(&searched), [json!("Charlie")]);
    let refused = list("where[colour]=red&where[budget]=lots&sort=nothing")
        .await
        .expect(422);
    let fields = &refused.body["error"]["fields"];
    assert!(
        fields["where[colour]"].is_array() && fields["where[budget]"].is_array() && fields["sort"].is_array(),
        "{}",
        refused.text
    );
    list("where=notjson").await.expect(422);

    // Sorting: by value, ties by id, empty values last in both directions.
    let ascending = list("sort=budget").await.expect(200);
    assert_eq!(
        titles(&ascending),
        [
            json!("bravo"),
            json!("Echo"),
            json!("Charlie"),
            json!("Alpha"),
            json!("Delta")
        ]
    );
    let descending = list("sort=-budget").await.expect(200);
    assert_eq!(
        titles(&descending),
        [
            json!("Alpha"),
            json!("Charlie"),
            json!("Echo"),
            json!("bravo"),
            json!("Delta")
        ]
    );
    let by_title = list("sort=title").await.expect(200);
    assert_eq!(
        titles(&by_title),
        [
            json!("Alpha"),
            json!("bravo"),
            json!("Charlie"),
            json!("Delta"),
            json!("Echo")
        ]
    );
    let newest = list("sort=-created_at&limit=1").await.expect(200);
    assert_eq!(titles(&newest), [json!("Echo")]);
    let filtered_sorted = list("where[channel]=linkedin&sort=-budget").await.expect(200);
    assert_eq!(
        titles(&filtered_sorted),
        [json!("Alpha"), json!("Charlie"), json!("Echo")]
    );

    // Sorted pages follow each other through their cursors; cursors stay with their sort.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("sort=-budget&limit=2&cursor={cursor}"),
            None => "sort=-budget&limit=2".to_owned(),
        };
        let page = list(&query).await.expect(200);
        seen.extend(titles(&page));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, titles(&descending));
    let first = list("sort=budget&limit=2").await.expect(200);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    list(&format!("sort=-budget&cursor={cursor}")).await.expect(400);
    list(&format!("cursor={cursor}")).await.expect(400);
    // Unsorted pages too.
    let page = list("limit=3").await.expect(200);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = list(&format!("limit=3&cursor={cursor}")).await.expect(200);
    assert_eq!(rest.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(rest.body["next_cursor"], Value::Null);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn changing_columns_never_loses_other_data(app: TestApp) {
    let launch = table(&app, launch()).await;
    let table = id(&launch);
    let first = id(&record(&app, &table, json!({"budget": 10, "channel": "linkedin"})).await);
    let path = format!("/tables/{table}/records/{first}");

    // Rename: the values follow the column.
    app.space(Method::PATCH, &format!("/tables/{table}/columns/budget"))
        .json(json!({"name": "spend"}))
        .send()
        .await
        .expect(200);
    let renamed = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(renamed.body["spend"], 10);
    assert!(renamed.body.get("budget").is_none());
    app.space(Method::PATCH, &path)
        .json(json!({"budget": 1}))
        .send()
        .await
        .expect(422);
    let filtered = app
        .space(Method::GET, &format!("/tables/{table}/records?where[spend]=10"))
        .send()
        .await
        .expect(200);
    assert_eq!(filtered.body["data"].as_array().unwrap().len(), 1);

    // Add: existing records get an empty value; nothing else moves.
    app.space(Method::POST, &format!("/tables/{table}/columns"))
        .json(json!({"name": "notes", "type": "text"}))
        .send()
        .await
        .expect(201);
    let added = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(
        (
            added.body["spend"].clone(),
            added.body["channel"].clone(),
            added.body["notes"].clone()
        ),
        (json!(10), json!("linkedin"), Value::Null)
    );

    // Remove: the other values stay; re-adding the name starts empty.
    app.space(Method::DELETE, &format!("/tables/{table}/columns/spend"))
        .send()
        .await
        .expect(204);
    let removed = app.space(Method::GET, &path).send().await.expect(200);
    assert!(removed.body.get("spend").is_none());
    assert_eq!(removed.body["channel"], "linkedin");
    app.space(Method::POST, &format!("/tables/{table}/columns"))
        .json(json!({"name": "spend", "type": "number"}))
        .send()
        .await
        .expect(201);
    let readded = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(readded.body["spend"], Value::Null);

    // The whole list through PATCH: matched by id, so a rename and a reorder keep values.
    let current = app
        .space(Method::GET, &format!("/tables/{table}"))
        .send()
        .await
        .expect(200)
        .body;
    let channel = column_id(&current, "channel");
    let notes = column_id(&current, "notes");
    app.space(Method::PATCH, &path)
        .json(json!({"notes": "keep me"}))
        .send()
        .await
        .expect(200);
    let patched = app
        .space(Method::PATCH, &format!("/tables/{table}"))
        .json(
            json!({"columns": [{"id": notes, "name": "remarks"}, {"id": channel}, {"name": "owner", "type": "email"}]}),
        )
        .send()
        .await
        .expect(200);
    let order: Vec<&str> = patched.body["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["remarks", "channel", "owner"]);
    let after = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(
        (
            after.body["remarks"].clone(),
            after.body["channel"].clone(),
            after.body["owner"].clone()
        ),
        (json!("keep me"), json!("linkedin"), Value::Null)
    );
    // A table read and sent back with PUT changes nothing.
    let back = app
        .space(Method::PUT, &format!("/tables/{table}"))
        .json(patched.body.clone())
        .send()
        .await
        .expect(200);
    assert_eq!(back.body["columns"], patched.body["columns"]);
}

async fn relations_link_existing_records_and_guard_what_they_point_at(app: TestApp) {
    let campaigns = table(
        &app,
        json!({"name": "Campaigns", "columns": [{"name": "name", "type": "text"}, {"name": "goal", "type": "text"}]}),
    )
    .await;
    let campaigns_id = id(&campaigns);
    let spring = id(&record(&app, &campaigns_id, json!({"name": "Spring"})).await);
    let posts = table(
        &app,
        json!({"name": "Posts", "columns": [
            {"name": "title", "type": "text"},
            {"name": "campaign", "type": "relation", "table_id": campaigns_id, "display_column": "name"}
        ]}),
    )
    .await;
    let posts_id = id(&posts);
    let relation = &posts["columns"][1];
    assert_eq!(relation["table_id"], campaigns_id.as_str());
    assert_eq!(
        relation["display_column"],
        column_id(&campaigns, "name").as_str(),
        "stored as the column's id"
    );
    let linked = app
        .space(Method::GET, &format!("/tables/{campaigns_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        linked.body["referenced_by"],
        json!([{"table_id": posts_id, "column_id": relation["id"], "display_column": relation["display_column"]}])
    );

    // Values must be ids of existing records of the linked table.
    let post = record(&app, &posts_id, json!({"title": "Hello", "campaign": spring})).await;
    assert_eq!(post["campaign"], spring.as_str());
    let records = format!("/tables/{posts_id}/records");
    let refused = app
        .space(Method::POST, &records)
        .json(json!({"campaign": "spring"}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["campaign"].is_array());
    app.space(Method::POST, &records)
        .json(json!({"campaign": "rec_01jdxxxxxxxxxxxxxxxxxxxxxx"}))
        .send()
        .await
        .expect(422);
    // A record of another table is not a record of the linked one.
    let post_id = id(&post);
    app.space(Method::POST, &records)
        .json(json!({"campaign": post_id}))
        .send()
        .await
        .expect(422);
    let by_campaign = app
        .space(Method::GET, &format!("{records}?where[campaign]={spring}"))
        .send()
        .await
        .expect(200);
    assert_eq!(by_campaign.body["data"].as_array().unwrap().len(), 1);
    // An unknown display column is named.
    let refused = app
        .space(Method::POST, &format!("/tables/{posts_id}/columns"))
        .json(json!({"name": "other", "type": "relation", "table_id": campaigns_id, "display_column": "nope"}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["display_column"].is_array());

    // What a relation points at cannot go: its display column, and its table.
    let conflict = app
        .space(Method::DELETE, &format!("/tables/{campaigns_id}/columns/name"))
        .send()
        .await
        .expect(409);
    assert_eq!(conflict.error_code(), "CONFLICT");
    assert!(
        conflict.body["error"]["message"].as_str().unwrap().contains("Posts"),
        "{}",
        conflict.text
    );
    app.space(Method::PATCH, &format!("/tables/{campaigns_id}"))
        .json(json!({"columns": [{"id": column_id(&campaigns, "goal")}]}))
        .send()
        .await
        .expect(409);
    app.space(Method::DELETE, &format!("/tables/{campaigns_id}"))
        .send()
        .await
        .expect(409);
    // Other columns come and go; renaming the display column is fine (it is held by id).
    app.space(Method::DELETE, &format!("/tables/{campaigns_id}/columns/goal"))
        .send()
        .await
        .expect(204);
    app.space(Method::PATCH, &format!("/tables/{campaigns_id}/columns/name"))
        .json(json!({"name": "title"}))
        .send()
        .await
        .expect(200);
    let still = app
        .space(Method::GET, &format!("/tables/{posts_id}/records/{post_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(still.body["campaign"], spring.as_str());

    // Once the relation stops naming it, the column can go; once the relation is gone, the table can.
    app.space(Method::PATCH, &format!("/tables/{posts_id}/columns/campaign"))
        .json(json!({"display_column": null}))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &format!("/tables/{campaigns_id}/columns/title"))
        .send()
        .await
        .expect(204);
    app.space(Method::DELETE, &format!("/tables/{campaigns_id}"))
        .send()
        .await
        .expect(409);
    app.space(Method::DELETE, &format!("/tables/{posts_id}/columns/campaign"))
        .send()
        .await
        .expect(204);
    let unlinked = app
        .space(Method::GET, &format!("/tables/{campaigns_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unlinked.body["referenced_by"], json!([]));
    app.space(Method::DELETE, &format!("/tables/{campaigns_id}"))
        .send()
        .await
        .expect(204);

    // A table may link to itself, and may then be deleted with its own relation.
    let people = table(
        &app,
        json!({"name": "People", "columns": [{"name": "name", "type": "text"}]}),
    )
    .await;
    let people_id = id(&people);
    app.space(Method::POST, &format!("/tables/{people_id}/columns"))
        .json(json!({"name": "manager", "type": "relation", "table_id": people_id, "display_column": "name"}))
        .send()
        .await
        .expect(201);
    let boss = id(&record(&app, &people_id, json!({"name": "Boss"})).await);
    let worker = record(&app, &people_id, json!({"name": "Worker", "manager": boss})).await;
    assert_eq!(worker["manager"], boss.as_str());
    let worker_path = format!("/tables/{people_id}/records/{}", id(&worker));
    let own = id(&worker);
    app.space(Method::PATCH, &worker_path)
        .json(json!({"manager": own}))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &format!("/tables/{people_id}/columns/name"))
        .send()
        .await
        .expect(409);
    app.space(Method::DELETE, &format!("/tables/{people_id}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &worker_path).send().await.expect(404);
    // Relations reach only this Space's tables.
    let (_, other) = app.other_space().await;
    let theirs = app
        .request(Method::POST, &format!("{SPACE_API}/tables"))
        .key(&other)
        .json(json!({"name": "Theirs"}))
        .send()
        .await
        .expect(201);
    let refused = app
        .space(Method::POST, "/tables")
        .json(json!({"name": "Spy", "columns": [{"name": "x", "type": "relation", "table_id": theirs.body["id"]}]}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["columns[0].table_id"].is_array());
}

/// A refused table write leaves the table, the tables it links to, and the events alone.
async fn a_table_write_changes_nothing_else(app: TestApp) {
    let target = table(
        &app,
        json!({"name": "Target", "columns": [{"name": "name", "type": "text"}]}),
    )
    .await;
    let target_id = id(&target);
    let events = app.event_types().await.len();
    app.space(Method::POST, "/tables")
        .json(json!({"name": "Bad", "columns": [
            {"name": "link", "type": "relation", "table_id": target_id},
            {"name": "broken", "type": "select"}
        ]}))
        .send()
        .await
        .expect(422);
    let unchanged = app
        .space(Method::GET, &format!("/tables/{target_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body, target);
    assert_eq!(app.event_types().await.len(), events);
    let listed = app.space(Method::GET, "/tables").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let launch = table(&app, launch()).await;
    let table = id(&launch);
    let row = id(&record(&app, &table, json!({"budget": 10})).await);
    let ids = [
        ("id", table.as_str()),
        ("record_id", row.as_str()),
        ("column", "budget"),
    ];
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("tables_create", json!({"name": "T"})),
        ("tables_update", json!({"name": "T"})),
        ("tables_replace", json!({"name": "T", "columns": []})),
        ("tables_columns_add", json!({"name": "n", "type": "text"})),
        ("tables_columns_update", json!({"name": "n"})),
        ("tables_records_create", json!({"budget": 1})),
        ("tables_records_update", json!({"budget": 1})),
        ("tables_records_replace", json!({"budget": 1})),
    ]);
    family_checks::scopes_are_enforced(&app, "tables", &ids, &bodies).await;
    family_checks::other_spaces_get_404(&app, "tables", &ids, &bodies).await;
    let unchanged = app
        .space(Method::GET, &format!("/tables/{table}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body, launch);
    let record = app
        .space(Method::GET, &format!("/tables/{table}/records/{row}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (record.body["budget"].clone(), record.body["version"].clone()),
        (json!(10), json!(1))
    );
}
