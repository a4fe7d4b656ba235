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
