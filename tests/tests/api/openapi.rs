//! The OpenAPI document as clients generate code from it: each shape is one named component,
//! every reference resolves, and the operations' own schemas (what MCP tools are built
//! from) stay self-contained.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// The component a `{"$ref": …}` names.
fn component<'a>(spec: &'a Value, reference: &Value) -> &'a Value {
    let name = reference["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .unwrap_or_else(|| panic!("not a schema reference: {reference}"));
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "{name} is not a component");
    schema
}

fn reference_to(name: &str) -> Value {
    json!(format!("#/components/schemas/{name}"))
}

/// Every `$ref` under `value`, and every schema of type `array`, by JSON pointer.
fn walk(value: &Value, at: &str, refs: &mut Vec<(String, String)>, arrays: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                refs.push((at.to_owned(), reference.clone()));
            }
            let is_array = object.get("type") == Some(&json!("array"))
                || object
                    .get("type")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.contains(&json!("array")));
            if is_array {
                arrays.push((at.to_owned(), value.clone()));
            }
            for (key, child) in object {
                walk(child, &format!("{at}/{key}"), refs, arrays);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, &format!("{at}/{index}"), refs, arrays);
            }
        }
        _ => {}
    }
}

#[test]
fn each_shape_of_a_resource_is_one_named_component() {
    let spec = spacectl::openapi();
    let tasks = &spec["paths"]["/functions/v1/space-api/tasks"];
    let task = &spec["paths"]["/functions/v1/space-api/tasks/{id}"];
    let body = |operation: &Value| operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone();
    let answer = |operation: &Value, status: &str| {
        operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].clone()
    };
    assert_eq!(answer(&task["get"], "200"), reference_to("Task"));
    assert_eq!(answer(&tasks["post"], "201"), reference_to("Task"));
    assert_eq!(answer(&tasks["get"], "200"), reference_to("TaskList"));
    assert_eq!(body(&tasks["post"]), reference_to("TaskCreate"));
    assert_eq!(
        body(&task["put"]),
        reference_to("TaskCreate"),
        "a replace takes what a create takes"
    );
    assert_eq!(body(&task["patch"]), reference_to("TaskUpdate"));

    // One enum type for the priority, wherever it appears.
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["TaskPriority"],
        json!({"type": "string", "enum": ["low", "normal", "high", "urgent"]})
    );
    let priority = reference_to("TaskPriority");
    assert_eq!(schemas["Task"]["properties"]["priority"]["$ref"], priority);
    assert_eq!(schemas["TaskCreate"]["properties"]["priority"]["$ref"], priority);
    assert_eq!(
        schemas["TaskCreate"]["properties"]["priority"]["default"], "normal",
        "annotations stay beside the reference"
    );
    let nullable = &schemas["TaskUpdate"]["properties"]["priority"]["anyOf"];
    assert_eq!(nullable[0]["$ref"], priority, "{nullable}");
    let filter = tasks["get"]["parameters"]
        .as_array()
        .and_then(|params| params.iter().find(|p| p["name"] == "priority"))
        .expect("a priority filter");
    assert_eq!(filter["schema"]["$ref"], priority);
    assert_eq!(
        component(&spec, &schemas["TaskList"]["properties"]["data"]["items"]),
        &schemas["Task"]
    );

    // The error envelope.
    for status in ["401", "422"] {
        assert_eq!(
            task["patch"]["responses"][status]["$ref"],
            "#/components/responses/Error"
        );
    }
    let detail = component(&spec, &schemas["Error"]["properties"]["error"]);
    assert_eq!(detail["properties"]["fields"]["$ref"], reference_to("FieldErrors"));
}

#[test]
fn every_reference_resolves_and_every_component_is_used() {
    let spec = spacectl::openapi();
    let (mut refs, mut arrays) = (Vec::new(), Vec::new());
    walk(&spec, "", &mut refs, &mut arrays);
    let mut used = BTreeSet::new();
    for (at, reference) in &refs {
        let target = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {reference} is not local"));
        assert!(spec.pointer(target).is_some(), "{at}: {reference} resolves to nothing");
        if let Some(name) = reference.strip_prefix("#/components/schemas/") {
            used.insert(name.to_owned());
        }
    }
    let listed: BTreeSet<String> = spec["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let unused: Vec<&String> = listed.difference(&used).collect();
    assert!(unused.is_empty(), "components nothing refers to: {unused:?}");
    // A generated client needs an item type for every list.
    for (at, array) in arrays {
        assert!(
            array.get("items").is_some() || array.get("prefixItems").is_some(),
            "{at}: an array without items"
        );
    }
}

#[test]
fn the_operations_own_schemas_stay_self_contained_for_mcp() {
    for operation in spacectl::operations() {
        let mut schemas: Vec<Value> = operation.params.iter().map(|p| p.schema.clone()).collect();
        schemas.extend(operation.body.iter().map(|s| Value::clone(s)));
        schemas.extend(operation.response.iter().map(|s| Value::clone(s)));
        schemas.extend(
            operation
                .answers
                .iter()
                .filter_map(|a| a.schema.as_ref())
                .map(|s| Value::clone(s)),
        );
        for schema in schemas {
            let (mut refs, mut arrays) = (Vec::new(), Vec::new());
            walk(&schema, "", &mut refs, &mut arrays);
            assert!(
                refs.is_empty(),
                "{}: a tool schema refers outside itself: {refs:?}",
                operation.name
            );
        }
    }
}

#[test]
fn writes_document_the_headers_they_honour() {
    let spec = spacectl::openapi();
    let header = |operation: &Value, name: &str| {
        operation["parameters"]
            .as_array()
            .and_then(|params| params.iter().find(|p| p["name"] == name && p["in"] == "header"))
            .cloned()
    };
    let task = &spec["paths"]["/functions/v1/space-api/tasks/{id}"];
    for method in ["patch", "put", "delete"] {
        let if_match = header(&task[method], "If-Match").unwrap_or_else(|| panic!("{method} takes If-Match"));
        assert_eq!(if_match["required"], false);
    }
    assert!(header(&task["get"], "If-Match").is_none());
    let create = &spec["paths"]["/functions/v1/space-api/tasks"]["post"];
    let key = header(create, "Idempotency-Key").expect("a create takes Idempotency-Key");
    assert_eq!(key["schema"]["maxLength"], 255);
    let visitor = &spec["paths"]["/f/{form_id}"]["post"];
    assert!(header(visitor, "Idempotency-Key").is_none(), "public routes take none");
}

/// `schema` with every `$ref` to a component replaced by the component, for a validator
/// that knows nothing of the document around it.
fn inlined(spec: &Value, schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out = serde_json::Map::new();
            for (key, value) in object {
                if key == "$ref" {
                    if let Value::Object(target) = inlined(spec, component(spec, schema)) {
                        out.extend(target);
                    }
                } else {
                    out.insert(key.clone(), inlined(spec, value));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|item| inlined(spec, item)).collect()),
        other => other.clone(),
    }
}

/// For each value: whether the schema of `property` in the body of `method path` admits it
/// equals whether the server takes it (2xx) or refuses that very field (422 naming it).
async fn agree(
    app: &space_tests::TestApp,
    method: reqwest::Method,
    path: &str,
    base: Value,
    property: &str,
    values: &[Value],
) {
    let spec = spacectl::openapi();
    let route = path.split('?').next().unwrap_or(path);
    let operation = &spec["paths"][format!("{}{route}", space_tests::SPACE_API)][method.as_str().to_ascii_lowercase()];
    let body = inlined(
        &spec,
        &operation["requestBody"]["content"]["application/json"]["schema"],
    );
    let schema = &body["properties"][property];
    assert!(schema.is_object(), "{method} {path} has no {property}");
    let validator = jsonschema::validator_for(schema).expect("a valid schema");
    for value in values {
        let mut sent = base.clone();
        sent[property] = value.clone();
        let response = app.space(method.clone(), path).json(sent).send().await;
        let taken = (200..300).contains(&response.status);
        if !taken {
            assert_eq!(response.status, 422, "{property} = {value}: {:?}", response.body);
            assert!(
                response.body["error"]["fields"][property].is_array(),
                "{property} = {value}: {:?}",
                response.body
            );
        }
        assert_eq!(
            validator.is_valid(value),
            taken,
            "{method} {path}: {property} = {value} (server: {})",
            response.status
        );
    }
}

#[tokio::test]
async fn the_server_takes_exactly_what_the_schema_admits() {
    use reqwest::Method;
    let app = space_tests::TestApp::embedded().await;
    let text = [
        json!("Ada"),
        json!("  Ada  "),
        json!(""),
        json!("a\tb"),
        json!("line\nbreak"),
        json!("\u{85}"),
        json!("x".repeat(500)),
        json!("x".repeat(501)),
        json!(null),
        json!(7),
    ];
    agree(&app, Method::POST, "/tasks", json!({}), "title", &text).await;
    let times = [
        json!("2026-11-22T17:00:00Z"),
        json!("2026-11-22t17:00:00.123+01:00"),
        json!("2026-11-22 17:00:00Z"),
        json!(" 2026-11-22T17:00:00Z"),
        json!("2026-11-22T17:00Z"),
        json!("tomorrow"),
    ];
    agree(&app, Method::POST, "/tasks", json!({"title": "t"}), "due_at", &times).await;
    let tags = [
        json!(["vip", " vip ", "vip"]),
        json!([" "]),
        json!(["\u{a0}"]),
        json!(["a\tb"]),
        json!(["x".repeat(64)]),
        json!(["x".repeat(65)]),
        json!(vec!["a"; 51]),
        json!(null),
    ];
    agree(&app, Method::POST, "/tasks", json!({"title": "t"}), "tags", &tags).await;
    let phones = [
        json!("+14155552671"),
        json!("+1 (415) 555-0199"),
        json!("+44 20 7946 0958"),
        json!("4155552671"),
        json!(" +14155552671"),
        json!("+0 415 555 2671"),
        json!("+1-800-FLOWERS"),
    ];
    agree(&app, Method::POST, "/contacts", json!({"name": "n"}), "phone", &phones).await;
    let emails = [
        json!("ada@example.com"),
        json!(" Ada@Example.com\n"),
        json!("ada@localhost"),
        json!("ada@@example.com"),
        json!("\"ada\"@example.com"),
        json!(format!("ada@{}.com", "a".repeat(64))),
    ];
    agree(
        &app,
        Method::POST,
        "/contacts?upsert=email",
        json!({"name": "n"}),
        "email",
        &emails,
    )
    .await;
    let pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    let upload = json!({"filename": "dot.png", "content_type": "image/png", "content_base64": pixel});
    let filenames = [
        json!("dot.png"),
        json!("my dot.png"),
        json!("a/dot.png"),
        json!(".."),
        json!(" . "),
        json!("\u{1}.png"),
    ];
    agree(&app, Method::POST, "/media", upload.clone(), "filename", &filenames).await;
    let encoded = [
        json!(pixel),
        json!(format!("data:image/png;base64,{pixel}")),
        json!(pixel.trim_end_matches('=')),
        json!(format!("{pixel}\n")),
        json!("!!not base64!!"),
    ];
    agree(&app, Method::POST, "/media", upload, "content_base64", &encoded).await;
    let zones = [
        json!("Europe/Berlin"),
        json!("UTC"),
        json!(" UTC"),
        json!("Mars/Olympus_Mons"),
    ];
    agree(
        &app,
        Method::POST,
        "/calendar/events",
        json!({"title": "t", "start": "2099-01-01T10:00:00Z", "end": "2099-01-01T11:00:00Z"}),
        "time_zone",
        &zones[..3],
    )
    .await;
}
