//! Operations as MCP tools. The input schema is the operation's path parameters, query
//! parameters and JSON body properties side by side, plus `idempotency_key` on creates
//! and `if_match` on changes; the output schema is the REST response schema.

use std::sync::Arc;

use http::Method;
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Map, Value, json};
use space_auth::Scope;
use space_http::operation::{Access, Effect, IfMatch, ParamIn};
use space_http::{ApiError, Operation};

/// Argument names the tools add to every schema they apply to.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
pub const IF_MATCH: &str = "if_match";

/// One operation, ready to be listed and called as a tool.
pub struct ToolEntry {
    pub operation: Operation,
    /// The scope the operation needs.
    scope: Scope,
    pub tool: Tool,
    /// Names of the body's properties, spread at the top level of the arguments.
    body_fields: Vec<String>,
}

/// The split of a tool's arguments into what the REST request would have carried.
#[derive(Debug, Default, PartialEq)]
pub struct CallParts {
    pub path: std::collections::HashMap<String, String>,
    pub query: std::collections::HashMap<String, String>,
    pub body: Value,
    pub idempotency_key: Option<String>,
    pub if_match: Option<IfMatch>,
}

impl ToolEntry {
    /// Builds the tool for a space operation (account operations are not tools).
    pub fn new(operation: Operation) -> Option<ToolEntry> {
        let Access::Space(scope) = operation.access else {
            return None;
        };
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        for param in &operation.params {
            let mut schema = param.schema.clone();
            if let Some(object) = schema.as_object_mut() {
                object.insert("description".into(), json!(param.description));
            }
            properties.insert(param.name.into(), schema);
            if param.required {
                required.push(json!(param.name));
            }
        }
        let mut body_fields = Vec::new();
        if let Some(body) = &operation.body {
            if let Some(fields) = body.get("properties").and_then(Value::as_object) {
                for (name, schema) in fields {
                    // A body field never shadows a parameter; the catalogue test checks it.
                    if properties.contains_key(name) {
                        continue;
                    }
                    properties.insert(name.clone(), schema.clone());
                    body_fields.push(name.clone());
                }
            }
            if let Some(names) = body.get("required").and_then(Value::as_array) {
                required.extend(names.iter().cloned());
            }
        }
        if operation.method == Method::POST {
            properties.insert(
                IDEMPOTENCY_KEY.into(),
                json!({"type": "string", "maxLength": 255, "description": "Makes retries safe: a repeat with the same key returns the first result instead of acting twice."}),
            );
        }
        if matches!(operation.effect, Effect::Update | Effect::Replace | Effect::Delete) {
            properties.insert(
                IF_MATCH.into(),
                json!({"type": "integer", "minimum": 1, "description": "Only act if the item is still at this version (optimistic concurrency)."}),
            );
        }
        let mut input = Map::new();
        input.insert("type".into(), json!("object"));
        input.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() {
            input.insert("required".into(), Value::Array(required));
        }
        input.insert("additionalProperties".into(), json!(false));
        let description = format!(
            "{}. `{} {}` — needs the `{scope}` scope.",
            operation.summary,
            operation.method,
            operation.full_path()
        );
        let mut annotations = ToolAnnotations::with_title(operation.summary.clone())
            .read_only(operation.effect.is_read_only())
            .destructive(operation.effect.is_destructive())
            .idempotent(operation.effect.is_idempotent())
            .open_world(operation.effect == Effect::Live);
        if operation.effect.is_read_only() {
            annotations.destructive_hint = None;
        }
        let mut tool = Tool::new(operation.name.clone(), description, Arc::new(input)).with_annotations(annotations);
        if let Some(Value::Object(output)) = operation.response.as_deref() {
            let output = match operation.approvable() {
                Some(_) => space_http::approvals::or_pending(output),
                None => output.clone(),
            };
            tool = tool.with_raw_output_schema(Arc::new(output));
        }
        Some(ToolEntry {
            operation,
            scope,
            tool,
            body_fields,
        })
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The arguments in one line, required ones first and starred: `id*, name, email`.
    /// The arguments every create or change takes are left to the tool's description.
    pub fn signature(&self) -> String {
        let schema = &self.tool.input_schema;
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut names: Vec<&str> = schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|properties| properties.keys())
            .map(String::as_str)
            .filter(|name| !crate::scopes::is_common_argument(name))
            .collect();
        names.sort_by_key(|name| !required.contains(name));
        let starred: Vec<String> = names
            .into_iter()
            .map(|name| match required.contains(&name) {
                true => format!("{name}*"),
                false => name.to_owned(),
            })
            .collect();
        starred.join(", ")
    }

    /// The input schema as JSON (for compact mode's search results).
    pub fn input_schema(&self) -> Value {
        Value::Object(JsonObject::clone(&self.tool.input_schema))
    }

    /// Splits call arguments into path, query, body and headers. Unknown arguments go
    /// into the body when there is one, so its validation names them; otherwise they
    /// are refused here.
    pub fn split(&self, arguments: JsonObject) -> Result<CallParts, ApiError> {
        let mut parts = CallParts::default();
        let mut body = Map::new();
        let mut unknown = Vec::new();
        for (name, value) in arguments {
            if let Some(param) = self.operation.params.iter().find(|p| p.name == name) {
                let text = match &value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    Value::Null => continue,
                    _ => return Err(ApiError::invalid_field(&name, "must be a string, number or boolean")),
                };
                match param.location {
                    ParamIn::Path => parts.path.insert(name, text),
                    ParamIn::Query => parts.query.insert(name, text),
                };
            } else if name == IDEMPOTENCY_KEY && self.operation.method == Method::POST {
                let key = value
                    .as_str()
                    .ok_or_else(|| ApiError::invalid_field(IDEMPOTENCY_KEY, "must be a string"))?;
                parts.idempotency_key = Some(key.to_owned());
            } else if name == IF_MATCH
                && self
                    .tool
                    .input_schema
                    .get("properties")
                    .and_then(|p| p.get(IF_MATCH))
                    .is_some()
            {
                let version = value
                    .as_u64()
                    .ok_or_else(|| ApiError::invalid_field(IF_MATCH, "must be a version number"))?;
                parts.if_match = Some(IfMatch::Version(version));
            } else if self.operation.takes_body() {
                if !self.body_fields.contains(&name) {
                    unknown.push(name.clone());
                }
                body.insert(name, value);
            } else {
                unknown.push(name);
            }
        }
        if !self.operation.takes_body() && !unknown.is_empty() {
            let mut fields = space_http::FieldErrors::new();
            for name in unknown {
                fields.insert(name, vec!["is not an argument of this tool".into()]);
            }
            return Err(ApiError::validation(fields));
        }
        for param in self
            .operation
            .params
            .iter()
            .filter(|p| p.required && p.location == ParamIn::Path)
        {
            if !parts.path.contains_key(param.name) {
                return Err(ApiError::invalid_field(
                    param.name,
                    format!("The {} argument is required.", param.name),
                ));
            }
        }
        parts.body = if self.operation.takes_body() {
            Value::Object(body)
        } else {
            Value::Null
        };
        Ok(parts)
    }
}

/// The map inside a JSON object; an empty one for anything else.
pub(crate) fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}
