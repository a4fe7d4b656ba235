//! Whiteboards: a name and the drawing's elements, a JSON array of objects that the
//! API stores as given (shapes, text, arrows: whatever the client draws with).
//!
//! Size limit: the elements of one whiteboard serialize to at most 256 KiB of JSON.
//! A whiteboard is one store item, and so are its events; DynamoDB stores at most 400 KB
//! per item, so 256 KiB leaves room for the name, the metadata and the attribute overhead
//! on both backends alike. Going over is a 422 naming `elements` (a field of a body the
//! API did accept and could read, so the client learns which field to shrink); a body over
//! the engine's 1 MiB request limit is a 413 before it is read.
//!
//! Lists leave the elements out and give `element_count`, so listing boards stays cheap;
//! `GET /whiteboards/{id}` returns them whole, and `POST /whiteboards/{id}/elements`
//! appends without resending the drawing.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{CustomKind, Field, FieldKind};
use space_http::operation::{Access, Effect, Param, Reply, handler};
use space_http::resource::{Filter, Resource, list_schema};
use space_http::{ApiError, Engine, Operation, Schema};

/// Serialized JSON bytes the elements of one whiteboard may take.
pub const MAX_ELEMENTS_BYTES: usize = 256 * 1024;
/// Elements one whiteboard may hold.
pub const MAX_ELEMENTS: usize = 5_000;
/// How deeply an element's JSON may nest (DynamoDB allows 32 levels per item, and the
/// element sits inside the item and inside its event).
const MAX_DEPTH: usize = 16;
/// Longest element `id`.
const MAX_ELEMENT_ID_CHARS: usize = 128;

const ELEMENTS: FieldKind = FieldKind::Custom(CustomKind {
    schema: elements_schema,
    check: check_elements,
});

fn elements_schema() -> Value {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "description": "One element; an optional string `id` must be unique on the board.",
            "properties": {"id": {"type": "string", "minLength": 1, "maxLength": MAX_ELEMENT_ID_CHARS}},
            "propertyNames": {"minLength": 1}
        },
        "maxItems": MAX_ELEMENTS,
        "description": format!(
            "The drawing's elements, JSON objects; at most {MAX_ELEMENTS_BYTES} bytes serialized, nested at most \
             {MAX_DEPTH} levels, with no empty property name and every number 0 or between 1e-100 and 1e100 in \
             magnitude, at any depth."
        )
    })
}

/// The whiteboard resource.
pub fn whiteboards() -> Resource {
    Resource {
        domain: Domain::Whiteboards,
        name: "whiteboards",
        collection: "whiteboards",
        path: "/whiteboards",
        item_param: "id",
        singular: "whiteboard",
        plural: "whiteboards",
        event_prefix: "whiteboard",
        id_prefix: "wb",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "The whiteboard's name.").required(),
            Field::new("elements", ELEMENTS, "The drawing's elements.").default(|| Value::Array(Vec::new())),
        ],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["name"],
        }],
        rules: None,
    }
}

/// Checks a list of elements: objects, ids unique, storable by every backend, and within
/// the size limit.
pub fn check_elements(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be a JSON array of objects")?;
    if list.len() > MAX_ELEMENTS {
        return Err(format!(
            "must hold at most {MAX_ELEMENTS} elements (got {})",
            list.len()
        ));
    }
    let mut ids = HashSet::new();
    for (index, element) in list.iter().enumerate() {
        let object = element
            .as_object()
            .ok_or_else(|| format!("elements[{index}] must be a JSON object"))?;
        if let Some(id) = object.get("id") {
            let id = id
                .as_str()
                .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ELEMENT_ID_CHARS)
                .ok_or_else(|| {
                    format!("elements[{index}].id must be a string of 1 to {MAX_ELEMENT_ID_CHARS} characters")
                })?;
            if !ids.insert(id) {
                return Err(format!(
                    "elements[{index}].id `{id}` is already the id of another element"
                ));
            }
        }
        storable(element, 1).map_err(|problem| format!("elements[{index}] {problem}"))?;
    }
    let bytes = serde_json::to_vec(value).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_ELEMENTS_BYTES {
        return Err(format!(
            "must be at most {MAX_ELEMENTS_BYTES} bytes of JSON (got {bytes}); split the drawing across whiteboards"
        ));
    }
    Ok(value.clone())
}

/// Refuses JSON that a store cannot keep as sent: nesting past [`MAX_DEPTH`], empty
/// property names, and numbers outside the range DynamoDB stores.
fn storable(value: &Value, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nests deeper than {MAX_DEPTH} levels"));
    }
    match value {
        Value::Number(number) => {
            let magnitude = number.as_f64().map_or(0.0, f64::abs);
            if magnitude != 0.0 && !(1e-100..=1e100).contains(&magnitude) {
                return Err(format!("holds the number {number}, outside the range 1e-100 to 1e100"));
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| storable(item, depth + 1)),
        Value::Object(object) => object.iter().try_for_each(|(name, item)| {
            if name.is_empty() {
                return Err("has a property with an empty name".to_owned());
            }
            storable(item, depth + 1)
        }),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

/// A whiteboard as lists show it: everything but the elements, and how many there are.
fn summary(board: &mut Map<String, Value>) {
    let count = board
        .remove("elements")
        .and_then(|elements| elements.as_array().map(Vec::len))
        .unwrap_or(0);
    board.insert("element_count".into(), json!(count));
}

fn summary_schema(resource: &Resource) -> Value {
    let mut schema = resource.item_schema();
    if let Some(properties) = schema["properties"].as_object_mut() {
        properties.remove("elements");
        properties.insert("element_count".into(), json!({"type": "integer", "minimum": 0}));
    }
    if let Some(required) = schema["required"].as_array_mut() {
        required.retain(|name| name != "elements");
        required.push(json!("element_count"));
    }
    schema
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = whiteboards().operations();
    for operation in &mut operations {
        if operation.name == "whiteboards_list" {
            let listed = Arc::clone(&operation.handler);
            operation.summary = "List whiteboards (without their elements; `element_count` says how many)".into();
            operation.response =
                Some(Schema::lazy(|| list_schema(summary_schema(&whiteboards()))).named("WhiteboardSummaryList"));
            operation.handler = handler(move |call| {
                let listed = Arc::clone(&listed);
                async move {
                    let mut reply = listed(call).await?;
                    let boards = reply
                        .body
                        .as_mut()
                        .and_then(|body| body.get_mut("data"))
                        .and_then(Value::as_array_mut);
                    for board in boards.into_iter().flatten().filter_map(Value::as_object_mut) {
                        summary(board);
                    }
                    Ok(reply)
                }
            });
        }
    }
    operations.push(
        Operation::new(
            "whiteboards_elements_add",
            Method::POST,
            "/whiteboards/{id}/elements",
            Access::Space(Scope::new(Domain::Whiteboards, Action::Write)),
            Effect::Update,
            "Append elements to a whiteboard (the others are kept)",
            handler(|call| async move {
                let added = match call.body.as_object() {
                    Some(body) if body.len() == 1 && body.contains_key("elements") => check_elements(&body["elements"])
                        .map_err(|message| ApiError::invalid_field("elements", message))?,
                    _ => {
                        return Err(ApiError::invalid_field(
                            "elements",
                            "send {\"elements\": [ … ]} with only that field",
                        ));
                    }
                };
                let id = call.path_param("id")?.to_owned();
                let board = whiteboards()
                    .modify(&call, &id, |board| {
                        let mut elements = board
                            .get("elements")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        elements.extend(added.as_array().into_iter().flatten().cloned());
                        let elements = check_elements(&Value::Array(elements))
                            .map_err(|message| ApiError::invalid_field("elements", message))?;
                        board.insert("elements".into(), elements);
                        Ok(())
                    })
                    .await?;
                Ok(Reply::ok(Resource::render(&board)).with_etag(board.version))
            }),
        )
        .with_params(vec![Param::path("id", "The whiteboard's id.")])
        .with_body(|| {
            json!({
                "type": "object",
                "properties": {"elements": elements_schema()},
                "required": ["elements"],
                "additionalProperties": false
            })
        })
        .answers(
            StatusCode::OK,
            Schema::lazy(|| whiteboards().item_schema()).named(whiteboards().type_name()),
        ),
    );
    space_http::operation::describe(
        &mut operations,
        &[
            "whiteboards_create",
            "whiteboards_replace",
            "whiteboards_update",
            "whiteboards_elements_add",
        ],
        "Element ids are unique on a board, and the elements storable: nested at most 16 levels, no empty \
         property name and every number 0 or between 1e-100 and 1e100 in magnitude at any depth, 256 KB at \
         most; otherwise 422.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_objects_with_unique_ids() {
        assert!(check_elements(&json!([{"id": "a", "type": "rect"}, {"type": "text"}])).is_ok());
        assert!(check_elements(&json!([1])).unwrap_err().contains("elements[0]"));
        assert!(
            check_elements(&json!([{"id": "a"}, {"id": "a"}]))
                .unwrap_err()
                .contains("elements[1].id")
        );
        assert!(check_elements(&json!({"id": "a"})).is_err());
    }

    #[test]
    fn what_a_store_cannot_keep_is_refused() {
        let mut deep = json!({});
        for _ in 0..20 {
            deep = json!({"child": deep});
        }
        assert!(check_elements(&json!([deep])).unwrap_err().contains("deeper"));
        assert!(check_elements(&json!([{"": 1}])).unwrap_err().contains("empty name"));
        assert!(check_elements(&json!([{"x": 1e200}])).unwrap_err().contains("range"));
        assert!(check_elements(&json!([{"x": 0.5, "y": -12, "z": 0}])).is_ok());
    }

    #[test]
    fn the_size_limit_counts_serialized_bytes() {
        let big = json!([{"text": "a".repeat(MAX_ELEMENTS_BYTES)}]);
        assert!(check_elements(&big).unwrap_err().contains("bytes"));
    }
}
