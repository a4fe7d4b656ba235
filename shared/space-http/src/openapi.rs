//! OpenAPI 3.1, generated from the operations: the spec can only say what the routes do.

use serde_json::{Map, Value, json};

use crate::operation::{Access, Operation, ParamIn};

/// The error envelope's schema.
pub fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id"],
                "properties": {
                    "code": {"type": "string", "examples": ["VALIDATION_FAILED"]},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}}
                    },
                    "request_id": {"type": "string"},
                    "existing_id": {
                        "type": "string",
                        "description": "On a 409 for a value that must be unique: the id of the item that already holds it."
                    }
                }
            }
        }
    })
}

/// The error statuses an operation can answer with.
fn error_statuses(operation: &Operation) -> Vec<&'static str> {
    let mut statuses = vec!["400", "401", "404", "405", "429", "503"];
    if matches!(operation.access, Access::Space(_)) {
        statuses.push("403");
    }
    if operation.takes_body() {
        statuses.extend(["409", "412", "413", "415", "422"]);
    } else {
        statuses.extend(["409", "412", "422"]);
    }
    statuses.sort_unstable();
    statuses
}

/// The whole spec for `operations`.
pub fn spec(operations: &[&Operation], title: &str, version: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for operation in operations {
        let mut parameters = Vec::new();
        for param in &operation.params {
            parameters.push(json!({
                "name": param.name,
                "in": match param.location { ParamIn::Path => "path", ParamIn::Query => "query" },
                "required": param.required,
                "description": param.description,
                "schema": param.schema,
            }));
        }
        let mut responses = Map::new();
        let success = operation.success.as_u16().to_string();
        let description = operation.success.canonical_reason().unwrap_or("Success");
        responses.insert(
            success,
            match (&operation.response, operation.media_types) {
                (Some(schema), _) => json!({
                    "description": description,
                    "content": {"application/json": {"schema": schema}}
                }),
                (None, []) => json!({"description": "No content"}),
                (None, types) => {
                    let content: Map<String, Value> = types
                        .iter()
                        .map(|media_type| ((*media_type).to_owned(), json!({"schema": {"type": "string"}})))
                        .collect();
                    json!({"description": description, "content": content})
                }
            },
        );
        for status in error_statuses(operation) {
            responses.insert(status.into(), json!({"$ref": "#/components/responses/Error"}));
        }
        for answer in &operation.answers {
            let schema = match &answer.schema {
                Some(schema) => Value::clone(schema),
                None => json!({"$ref": "#/components/schemas/Error"}),
            };
            responses.insert(
                answer.status.as_u16().to_string(),
                json!({"description": answer.description, "content": {"application/json": {"schema": schema}}}),
            );
        }
        let security = match operation.access {
            Access::Space(_) => json!([{"spaceKey": []}]),
            Access::Account => json!([{"accountKey": []}]),
            Access::Public { .. } => json!([]),
        };
        let mut entry = json!({
            "operationId": operation.name,
            "summary": operation.summary,
            "tags": [operation.group()],
            "security": security,
            "parameters": parameters,
            "responses": responses,
        });
        if let Access::Space(scope) = operation.access {
            entry["x-required-scope"] = json!(scope.to_string());
            entry["description"] = json!(format!("Requires the `{scope}` scope."));
        }
        if let Some(body) = &operation.body {
            entry["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body}}
            });
        } else if operation.raw_body {
            entry["requestBody"] = json!({
                "required": true,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
            });
        }
        let path_entry = paths.entry(operation.full_path()).or_insert_with(|| json!({}));
        path_entry[operation.method.as_str().to_ascii_lowercase()] = entry;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "spaceKey": {"type": "http", "scheme": "bearer", "description": "A Space API key, `wks_live_…`."},
                "accountKey": {"type": "http", "scheme": "bearer", "description": "An account key, `wka_live_…`."}
            },
            "schemas": {"Error": error_schema()},
            "responses": {
                "Error": {
                    "description": "The error envelope.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        }
    })
}
