//! `PUT /apps/{id}/schema` takes the JSON Schema itself as its body; `GET` answers it the
//! same way (`{}`, the schema that accepts anything, until one is set). A schema must be
//! valid against its draft's meta-schema and compile; it may not reference anything
//! outside itself (nothing is fetched, from the network or from files).

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, Operation};

use crate::drafts::{self, SCHEMA};

pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// The drafts `jsonschema` bundles; `$schema` must name one of them, if it is given.
const KNOWN_DRAFTS: &[&str] = &[
    "json-schema.org/draft-04/schema",
    "json-schema.org/draft-06/schema",
    "json-schema.org/draft-07/schema",
    "json-schema.org/draft/2019-09/schema",
    "json-schema.org/draft/2020-12/schema",
];

/// Why `schema` is not a JSON Schema this API stores, if it is not.
pub fn check(schema: &Value) -> Result<(), String> {
    let Some(object) = schema.as_object() else {
        return Err("must be a JSON Schema object, like {\"type\": \"object\", \"properties\": {…}}".into());
    };
    let size = serde_json::to_vec(schema).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_SCHEMA_BYTES {
        return Err(format!("is {size} bytes; a schema has at most {MAX_SCHEMA_BYTES}"));
    }
    if let Some(declared) = object.get("$schema") {
        let known = declared.as_str().is_some_and(|uri| {
            let bare = uri.trim_end_matches('#');
            let bare = bare
                .strip_prefix("https://")
                .or_else(|| bare.strip_prefix("http://"))
                .unwrap_or("");
            KNOWN_DRAFTS.contains(&bare)
        });
        if !known {
            return Err("$schema must name draft 4, 6, 7, 2019-09 or 2020-12, e.g. https://json-schema.org/draft/2020-12/schema".into());
        }
    }
    jsonschema::meta::validate(schema)
        .map_err(|error| located(&error.to_string(), &error.instance_path().to_string()))?;
    jsonschema::validator_for(schema).map_err(|error| format!("cannot be used: {error}"))?;
    Ok(())
}

fn located(message: &str, path: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{message} (at {path})")
    }
}

async fn put(call: Call) -> Result<Reply, ApiError> {
    check(&call.body).map_err(|message| ApiError::invalid_field("schema", message))?;
    let mut body = Map::new();
    body.insert("schema".into(), call.body.clone());
    let summary = json!({"properties": call.body.get("properties").and_then(Value::as_object).map(|p| p.keys().collect::<Vec<_>>())});
    let item = drafts::replace(&call, SCHEMA, body, "schema_updated", summary).await?;
    Ok(Reply::ok(call.body.clone()).with_etag(item.version))
}

async fn get(call: Call) -> Result<Reply, ApiError> {
    match drafts::load(&call, SCHEMA).await? {
        Some(item) => {
            Ok(Reply::ok(item.body.get("schema").cloned().unwrap_or_else(|| json!({}))).with_etag(item.version))
        }
        None => Ok(Reply::ok(json!({}))),
    }
}

/// The body of `PUT /apps/{id}/schema`: a JSON Schema. The common keywords are listed so
/// that an MCP client can fill them in; any other keyword is passed on as well.
fn body_schema() -> Value {
    json!({
        "type": "object",
        "description": "The JSON Schema itself (draft 2020-12 unless `$schema` says otherwise), describing the app's data.",
        "properties": {
            "$schema": {"type": "string", "examples": ["https://json-schema.org/draft/2020-12/schema"]},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "type": {"description": "e.g. `object`.", "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "properties": {"type": "object", "description": "Each property's own schema."},
            "required": {"type": "array", "items": {"type": "string"}},
            "additionalProperties": {"description": "`false`, or a schema for other properties."},
            "items": {"description": "The schema of array items."},
            "enum": {"type": "array", "items": {}},
            "$defs": {"type": "object"},
            "definitions": {"type": "object"},
            "allOf": {"type": "array", "items": {}},
            "anyOf": {"type": "array", "items": {}},
            "oneOf": {"type": "array", "items": {}}
        },
        "additionalProperties": true,
        "examples": [{"type": "object", "properties": {"email": {"type": "string", "format": "email"}}, "required": ["email"]}]
    })
}

pub fn operations() -> Vec<Operation> {
    let id = || vec![Param::path("id", "The app's id.")];
    let document = || json!({"type": "object", "description": "The app's JSON Schema (`{}` until one is set)."});
    vec![
        Operation::new(
            "apps_schema_get",
            Method::GET,
            "/apps/{id}/schema",
            Access::Space(Scope::new(Domain::Apps, Action::Read)),
            Effect::Read,
            "Get an app's draft JSON Schema",
            handler(get),
        )
        .with_params(id())
        .answers(StatusCode::OK, document),
        Operation::new(
            "apps_schema_put",
            Method::PUT,
            "/apps/{id}/schema",
            Access::Space(Scope::new(Domain::Apps, Action::Write)),
            Effect::Replace,
            "Replace an app's draft JSON Schema (the body is the schema)",
            handler(put),
        )
        .with_params(id())
        .with_description(
            "The body must be a JSON Schema that passes its draft's meta-schema and compiles, and refers to \
             nothing outside itself; otherwise 422.",
        )
        .with_body(body_schema)
        .answers(StatusCode::OK, document),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_meta_validated_and_compiled() {
        assert_eq!(
            check(&json!({"type": "object", "properties": {"n": {"type": "integer"}}})),
            Ok(())
        );
        assert_eq!(check(&json!({})), Ok(()));
        assert_eq!(
            check(&json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"})),
            Ok(())
        );
        let bad_type = check(&json!({"type": "invalid_type"})).unwrap_err();
        assert!(bad_type.contains("type"), "{bad_type}");
        let nested = check(&json!({"properties": {"n": {"minimum": "ten"}}})).unwrap_err();
        assert!(nested.contains("/properties/n/minimum"), "{nested}");
        assert!(
            check(&json!({"pattern": "("})).is_err(),
            "a pattern that does not compile"
        );
        assert!(
            check(&json!({"$ref": "https://example.com/remote.json"})).is_err(),
            "nothing is fetched"
        );
        assert!(
            check(&json!({"$ref": "file:///etc/passwd"})).is_err(),
            "nothing is read from files"
        );
        assert!(check(&json!({"$schema": "https://example.com/mine"})).is_err());
        assert!(check(&json!({"$schema": 7})).is_err());
        assert!(check(&json!(true)).is_err());
        assert!(check(&json!([1])).is_err());
    }
}
