//! OpenAPI 3.1, generated from the operations: the spec can only say what the routes do.
//!
//! Schemas are listed once, under `components/schemas`, and referred to with `$ref`: a
//! schema an operation names ([`Schema::named`]) keeps its name; every other object and
//! string enum is named after where it is first met (`Task` + `priority` → `TaskPriority`)
//! and shared by every place with the same content. A client generated from the document
//! then has one type per resource, body and enum instead of one per use. The operations'
//! own schemas stay self-contained: MCP tools read them as they are.

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Map, Value, json};

use crate::operation::{Access, Effect, Operation, ParamIn};
use crate::schema::Schema;

/// The header that makes a `POST` safe to retry ([`crate::idempotency`]).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Annotations that describe a use of a schema rather than the schema: they stay beside
/// the `$ref` when the schema becomes a component.
const ANNOTATIONS: &[&str] = &[
    "description",
    "default",
    "examples",
    "example",
    "title",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The error envelope's schema, as components: `Error` around `ErrorDetail`, whose
/// `fields` are `FieldErrors`.
fn error_components() -> [(&'static str, Value); 3] {
    [
        (
            "Error",
            json!({
                "type": "object",
                "description": "Every error answer: `{\"error\": {…}}`.",
                "required": ["error"],
                "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}
            }),
        ),
        (
            "ErrorDetail",
            json!({
                "type": "object",
                "required": ["code", "message", "request_id"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Stable and machine-readable: UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT, PRECONDITION_FAILED, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, BAD_REQUEST, VALIDATION_FAILED, RATE_LIMITED, LIVE_ACTION_CAP, UNAVAILABLE or INTERNAL.",
                        "examples": ["VALIDATION_FAILED"]
                    },
                    "message": {"type": "string", "description": "For people: what went wrong and what to do."},
                    "fields": {"$ref": "#/components/schemas/FieldErrors"},
                    "request_id": {"type": "string", "description": "Quote it when asking about this request."},
                    "existing_id": {
                        "type": "string",
                        "description": "On a 409 for a value that must be unique: the id of the item that already holds it."
                    },
                    "cap": {"type": "string", "description": "On a 429 `LIVE_ACTION_CAP`: the key's cap that is used up, like `phone.sms`."},
                    "limit": {"type": "integer", "description": "On a 429 `LIVE_ACTION_CAP`: the cap's uses per UTC day."},
                    "resets_at": {"type": "string", "format": "date-time", "description": "On a 429 `LIVE_ACTION_CAP`: when the cap allows again (the next UTC midnight; also `Retry-After`)."}
                }
            }),
        ),
        (
            "FieldErrors",
            json!({
                "type": "object",
                "description": "On a 422 (and a 409 for a unique value): the messages for each field, by name (`body` for the body as a whole).",
                "additionalProperties": {"type": "array", "items": {"type": "string"}}
            }),
        ),
    ]
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

/// Whether a `PATCH`, `PUT` or `DELETE` honours `If-Match` (the same rule MCP's
/// `if_match` argument follows).
fn takes_if_match(operation: &Operation) -> bool {
    matches!(operation.effect, Effect::Update | Effect::Replace | Effect::Delete)
}

/// Whether a `POST` honours `Idempotency-Key` (public routes do not: visitors share one
/// principal).
fn takes_idempotency_key(operation: &Operation) -> bool {
    operation.method == http::Method::POST && !matches!(operation.access, Access::Public { .. })
}

/// The whole spec for `operations`.
pub fn spec(operations: &[&Operation], title: &str, version: &str) -> Value {
    let mut components = Components::default();
    for (name, schema) in error_components() {
        components.reserve(name, schema);
    }
    // Named schemas first, responses before bodies, so that a shape met in several places
    // takes the name of the resource (`TaskPriority`) rather than of a body or a filter.
    for operation in operations {
        for schema in operation
            .response
            .iter()
            .chain(operation.answers.iter().filter_map(|a| a.schema.as_ref()))
        {
            if let Some(name) = schema.name() {
                components.top(schema, name);
            }
        }
    }
    for operation in operations {
        if let Some(body) = &operation.body
            && let Some(name) = body.name()
        {
            components.top(body, name);
        }
    }
    // Then every answer and body under the operation's names, before any parameter: a
    // filter's enum (`?status=`) is the one of what it filters (`InboxThreadStatus`).
    for operation in operations {
        let base = pascal(&operation.name);
        if let Some(schema) = &operation.response {
            components.top(schema, &format!("{base}Response"));
        }
        for answer in &operation.answers {
            if let Some(schema) = &answer.schema {
                components.top(schema, &format!("{base}Response{}", answer.status.as_u16()));
            }
        }
    }
    for operation in operations {
        if let Some(body) = &operation.body {
            components.top(body, &format!("{}Request", pascal(&operation.name)));
        }
    }
    let mut paths: Map<String, Value> = Map::new();
    for operation in operations {
        let entry = components.operation(operation);
        let path_entry = paths.entry(operation.full_path()).or_insert_with(|| json!({}));
        path_entry[operation.method.as_str().to_ascii_lowercase()] = entry;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every error is the JSON envelope `Error`. An optional query parameter sent empty (`?cursor=`) is the same as one left out. A write honours `If-Match` (412 when the item moved on) and a POST `Idempotency-Key`."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "spaceKey": {"type": "http", "scheme": "bearer", "description": "A Space API key, `wks_live_…`."},
                "accountKey": {"type": "http", "scheme": "bearer", "description": "An account key, `wka_live_…`."}
            },
            "schemas": components.schemas,
            "responses": {
                "Error": {
                    "description": "The error envelope.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        }
    })
}

/// The named schemas of one document: each distinct schema once.
#[derive(Default)]
struct Components {
    schemas: Map<String, Value>,
    /// The name of each listed schema, by its content: as a whole (what an operation sends
    /// or answers, whose description is part of it) …
    by_content: HashMap<String, String>,
    /// … and without its annotations (a schema inside another, whose annotations stay at
    /// the place that uses it).
    by_core: HashMap<String, String>,
}

impl Components {
    /// Lists `schema` as `name` as it is.
    fn reserve(&mut self, name: &str, schema: Value) {
        self.by_content.insert(canonical(&schema), name.to_owned());
        self.schemas.insert(name.to_owned(), schema);
    }

    /// The path entry of one operation.
    fn operation(&mut self, operation: &Operation) -> Value {
        let base = pascal(&operation.name);
        let mut parameters = Vec::new();
        for param in &operation.params {
            let mut hint = pascal(param.name);
            // A parameter's new shape under a name another holds is the operation's
            // (`InvoicesOwnerCreateUpsert`), not a numbered one.
            if self.schemas.contains_key(&hint) && is_structured(&param.schema) {
                let (_, core) = split_annotations(&param.schema);
                if !self.by_core.contains_key(&canonical(&core)) {
                    hint = format!("{base}{hint}");
                }
            }
            let mut parameter = json!({
                "name": param.name,
                "in": match param.location { ParamIn::Path => "path", ParamIn::Query => "query" },
                "required": param.required,
                "description": param.description,
                "schema": self.nested(&param.schema, &hint),
            });
            if param.location == ParamIn::Query && !param.required {
                // `?cursor=` is the same as no cursor ([`crate::execute`]).
                parameter["allowEmptyValue"] = json!(true);
            }
            parameters.push(parameter);
        }
        if takes_if_match(operation) {
            parameters.push(json!({
                "name": "If-Match",
                "in": "header",
                "required": false,
                "description": "Only act if the item is still at this version: the `ETag` of an earlier answer, like \"3\" (or `*`). Otherwise 412. Empty is the same as none.",
                "schema": {"type": "string", "pattern": "^(\\*|(W/)?\"[0-9]{1,19}\")?$", "examples": ["\"1\""]},
            }));
        }
        if takes_idempotency_key(operation) {
            let description = if operation.shows_secret {
                "Makes a retry safe: a repeat with the same key within 24 hours does not act twice. The answer shows a secret once, so it is not kept: the repeat is 409 naming what the first call made. The same key with another request is refused with 422; one still running with 409. Empty is the same as none."
            } else {
                "Makes a retry safe: a repeat with the same key answers the first response for 24 hours instead of acting twice. The same key with another request is refused with 422; one still running with 409. Empty is the same as none."
            };
            parameters.push(json!({
                "name": IDEMPOTENCY_KEY_HEADER,
                "in": "header",
                "required": false,
                "description": description,
                "schema": {"type": "string", "maxLength": crate::idempotency::MAX_KEY_LENGTH, "pattern": "^[!-~]*$"},
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
                    "content": {"application/json": {"schema": self.top(schema, &format!("{base}Response"))}}
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
        if operation.approvable().is_some() {
            let pending = self.top(
                &Schema::lazy(crate::approvals::pending_schema).named("PendingApproval"),
                "PendingApproval",
            );
            let accepted = StatusCode::ACCEPTED.as_u16().to_string();
            match responses.get_mut(&accepted) {
                // The action itself answers 202 (queued): either body may come.
                Some(answer) => {
                    if let Some(schema) = answer.pointer_mut("/content/application~1json/schema") {
                        *schema = json!({"anyOf": [schema.take(), pending]});
                    }
                }
                None => {
                    responses.insert(
                        accepted,
                        json!({"description": "Waiting for the Space owner's approval (a key with `approval_required`): nothing was done yet.", "content": {"application/json": {"schema": pending}}}),
                    );
                }
            }
        }
        for answer in &operation.answers {
            let status = answer.status.as_u16().to_string();
            let schema = match &answer.schema {
                Some(schema) => self.top(schema, &format!("{base}Response{status}")),
                None => json!({"$ref": "#/components/schemas/Error"}),
            };
            responses.insert(
                status,
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
        let mut description = String::new();
        if let Access::Space(scope) = operation.access {
            entry["x-required-scope"] = json!(scope.to_string());
            description = format!("Requires the `{scope}` scope.");
        }
        if let Some(notes) = &operation.description {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(notes);
        }
        if let Some(cap) = operation.cap {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&crate::caps::rule(cap));
        }
        if let Some(per_minute) = operation.space_budget {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&crate::execute::budget_rule(per_minute));
        }
        if let Some(scope) = operation.approvable() {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&crate::approvals::rule(&scope.to_string()));
        }
        if !description.is_empty() {
            entry["description"] = json!(description);
        }
        if let Some(body) = &operation.body {
            entry["requestBody"] = json!({
                "required": !operation.body_is_optional(),
                "content": {"application/json": {"schema": self.top(body, &format!("{base}Request"))}}
            });
        } else if operation.raw_body {
            entry["requestBody"] = json!({
                "required": true,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
            });
        }
        entry
    }

    /// A schema an operation sends or answers: a component under its own name (or `name`),
    /// referred to; a schema of no structure (a string, a list) stays inline.
    fn top(&mut self, schema: &Schema, name: &str) -> Value {
        if !is_structured(schema) {
            return self.inner(schema, schema.name().unwrap_or(name));
        }
        // A schema that names itself (`title`) is that type here too: the same component
        // as where it is met nested, its title the name rather than an annotation.
        if schema.name().is_none()
            && let Some(title) = schema.get("title").and_then(Value::as_str)
        {
            let hint = pascal(title);
            let mut core = (**schema).clone();
            if let Some(object) = core.as_object_mut() {
                object.remove("title");
            }
            let named = self.inner(&core, &hint);
            return json!({"$ref": self.register(named, &hint)});
        }
        let hint = match schema.name() {
            Some(given) => {
                page_name(schema, given, self);
                given.to_owned()
            }
            None => page_name(schema, name, self).unwrap_or_else(|| name.to_owned()),
        };
        let named = self.inner(schema, &hint);
        json!({"$ref": self.register(named, &hint)})
    }

    /// The reference to `schema` as a component, listing it under `name` (or `name2`, … if
    /// another schema holds that name) unless an equal one is listed already.
    fn register(&mut self, schema: Value, name: &str) -> String {
        let key = canonical(&schema);
        let chosen = match self.by_content.get(&key) {
            Some(existing) => existing.clone(),
            None => {
                let mut chosen = name.to_owned();
                let mut number = 2;
                while self.schemas.contains_key(&chosen) {
                    chosen = format!("{name}{number}");
                    number += 1;
                }
                self.by_content.insert(key, chosen.clone());
                self.schemas.insert(chosen.clone(), schema);
                chosen
            }
        };
        format!("#/components/schemas/{chosen}")
    }

    /// A schema inside another: an object or a string enum becomes a reference to a
    /// component (its annotations stay here, beside the `$ref`); anything else stays
    /// inline, its own parts named the same way.
    fn nested(&mut self, schema: &Value, hint: &str) -> Value {
        if !is_structured(schema) {
            return self.inner(schema, hint);
        }
        let (mut site, core) = split_annotations(schema);
        // A schema that names itself (`title`, e.g. `Scope`) is that type wherever it is met,
        // and its parts are named after it.
        let hint = match site.get("title").and_then(Value::as_str) {
            Some(title) => pascal(title),
            None if is_free_form(&core) => "JsonObject".to_owned(),
            None => hint.to_owned(),
        };
        let hint = hint.as_str();
        // The whole of something an operation sends or answers (a page's items): that.
        let whole = self.inner(schema, hint);
        if let Some(name) = self.by_content.get(&canonical(&whole)) {
            return json!({"$ref": format!("#/components/schemas/{name}")});
        }
        let core = self.inner(&core, hint);
        let key = canonical(&core);
        let name = match self.by_core.get(&key) {
            Some(name) => name.clone(),
            None => {
                let reference = self.register(core, hint);
                let name = reference.rsplit('/').next().unwrap_or(hint).to_owned();
                self.by_core.insert(key, name.clone());
                name
            }
        };
        site.insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
        Value::Object(site)
    }

    /// `schema` with the schemas inside it named.
    fn inner(&mut self, schema: &Value, hint: &str) -> Value {
        let Some(object) = schema.as_object() else {
            return schema.clone();
        };
        let mut out = object.clone();
        if let Some(Value::Object(properties)) = object.get("properties") {
            let named: Map<String, Value> = properties
                .iter()
                .map(|(name, property)| (name.clone(), self.nested(property, &format!("{hint}{}", pascal(name)))))
                .collect();
            out.insert("properties".into(), Value::Object(named));
        }
        if let Some(items @ Value::Object(_)) = object.get("items") {
            out.insert("items".into(), self.nested(items, &singular(hint)));
        }
        if let Some(values @ Value::Object(_)) = object.get("additionalProperties") {
            out.insert(
                "additionalProperties".into(),
                self.nested(values, &format!("{hint}Value")),
            );
        }
        for keyword in ["anyOf", "oneOf", "allOf", "prefixItems"] {
            if let Some(Value::Array(variants)) = object.get(keyword) {
                let named: Vec<Value> = variants
                    .iter()
                    .map(|variant| {
                        let hint = match tag_of(variant) {
                            Some(tag) => format!("{hint}{}", pascal(tag)),
                            None => hint.to_owned(),
                        };
                        self.nested(variant, &hint)
                    })
                    .collect();
                out.insert(keyword.into(), Value::Array(named));
            }
        }
        Value::Object(out)
    }
}

/// The value that tells a variant of a union apart: the one value a property of it allows
/// (`"type": {"enum": ["url"]}` → `url`), so that its component is `ButtonUrl`, not `Button2`.
fn tag_of(variant: &Value) -> Option<&str> {
    variant.get("properties")?.as_object()?.values().find_map(|property| {
        match property.get("enum").and_then(Value::as_array).map(Vec::as_slice) {
            Some([Value::String(only)]) => Some(only.as_str()),
            _ => property.get("const").and_then(Value::as_str),
        }
    })
}

/// A schema's annotations (which describe one use of it) and the rest, its content;
/// `additionalProperties: true` is left out, as it says nothing.
fn split_annotations(schema: &Value) -> (Map<String, Value>, Value) {
    let mut annotations = Map::new();
    let mut core = Map::new();
    for (key, value) in schema.as_object().into_iter().flatten() {
        if ANNOTATIONS.contains(&key.as_str()) {
            annotations.insert(key.clone(), value.clone());
        } else if !(key == "additionalProperties" && value == &Value::Bool(true)) {
            core.insert(key.clone(), value.clone());
        }
    }
    (annotations, Value::Object(core))
}

/// Objects and string enums: what a generated client makes a type of.
fn is_structured(schema: &Value) -> bool {
    let Some(object) = schema.as_object() else {
        return false;
    };
    match object.get("type").and_then(Value::as_str) {
        Some("object") => true,
        Some("string") => object
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|options| options.iter().all(Value::is_string)),
        _ => false,
    }
}

/// An object that says nothing of its properties: any JSON object.
fn is_free_form(core: &Value) -> bool {
    core.as_object().is_some_and(|object| object.len() == 1) && core["type"] == "object"
}

/// `TaskList` for a page of `Task`s: the name of a list answer whose items are a named
/// component. Items not named yet are named after the page (`WhiteboardSummaryList` →
/// `WhiteboardSummary`) or the operation (`TablesListResponse` → `Table`).
fn page_name(schema: &Value, name: &str, components: &mut Components) -> Option<String> {
    let properties = schema.get("properties")?.as_object()?;
    if !properties.contains_key("next_cursor") {
        return None;
    }
    let items = properties.get("data")?.get("items")?;
    let hint = if let Some(operation) = name.strip_suffix("ListResponse") {
        singular(operation)
    } else if let Some(item) = name.strip_suffix("List") {
        item.to_owned()
    } else {
        format!("{name}Item")
    };
    let reference = components.nested(items, &hint);
    let name = reference.get("$ref")?.as_str()?.rsplit('/').next()?;
    // A page with more to say than its items (a range listing's `truncated`) keeps the
    // operation's name.
    (properties.len() == 2).then(|| format!("{name}List"))
}

/// The content of a schema as text, the same for equal schemas whatever their key order.
fn canonical(schema: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(object) => {
                let mut keys: Vec<&String> = object.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|key| (key.clone(), sorted(&object[key])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // The values an enum allows are a set: `[asc, desc]` is `[desc, asc]`.
    fn sets(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object.iter_mut() {
                    match inner {
                        Value::Array(options) if key == "enum" => options.sort_by_key(Value::to_string),
                        _ => sets(inner),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(sets),
            _ => {}
        }
    }
    let mut value = sorted(schema);
    sets(&mut value);
    value.to_string()
}

/// `booking_appointment_types` or `appointment type` → `BookingAppointmentTypes` /
/// `AppointmentType`.
pub fn pascal(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The name of one item of a list named `plural`: `FormFields` → `FormField`.
fn singular(plural: &str) -> String {
    if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = plural.strip_suffix('s').filter(|stem| !stem.ends_with('s')) {
        stem.to_owned()
    } else {
        format!("{plural}Item")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve<'a>(spec: &'a Value, reference: &Value) -> &'a Value {
        let name = reference["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or("");
        &spec["components"]["schemas"][name]
    }

    #[test]
    fn names_are_pascal_case_and_lists_singular() {
        assert_eq!(pascal("booking_appointment_types"), "BookingAppointmentTypes");
        assert_eq!(pascal("appointment type"), "AppointmentType");
        assert_eq!(singular("FormFields"), "FormField");
        assert_eq!(singular("Categories"), "Category");
        assert_eq!(singular("Address"), "AddressItem");
    }

    #[test]
    fn equal_shapes_share_one_component_named_where_first_met() {
        let priority = json!({"type": "string", "enum": ["low", "high"]});
        let mut components = Components::default();
        let item = Schema::from(json!({
            "type": "object",
            "properties": {"priority": {"type": "string", "enum": ["low", "high"], "description": "How urgent."}}
        }))
        .named("Task");
        let reference = components.top(&item, "Unused");
        assert_eq!(reference, json!({"$ref": "#/components/schemas/Task"}));
        let task = &components.schemas["Task"];
        assert_eq!(
            task["properties"]["priority"],
            json!({"$ref": "#/components/schemas/TaskPriority", "description": "How urgent."})
        );
        assert_eq!(components.schemas["TaskPriority"], priority);
        // The same enum as a filter, with a default of its own: the same component.
        let filter = components.nested(
            &json!({"type": "string", "enum": ["low", "high"], "default": "low"}),
            "Priority",
        );
        assert_eq!(
            filter,
            json!({"$ref": "#/components/schemas/TaskPriority", "default": "low"})
        );
        // Another enum wanting a taken name gets a numbered one.
        let other = components.nested(&json!({"type": "string", "enum": ["a"]}), "TaskPriority");
        assert_eq!(other["$ref"], "#/components/schemas/TaskPriority2");
    }

    #[test]
    fn pages_are_named_after_their_items_and_free_objects_share_one_type() {
        let mut components = Components::default();
        let item = json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]});
        components.top(&Schema::from(item.clone()).named("Note"), "Unused");
        let page = Schema::from(json!({
            "type": "object",
            "properties": {"data": {"type": "array", "items": item}, "next_cursor": {"type": ["string", "null"]}},
            "required": ["data", "next_cursor"]
        }));
        assert_eq!(
            components.top(&page, "NotesListResponse"),
            json!({"$ref": "#/components/schemas/NoteList"})
        );
        let free = components.nested(&json!({"type": "object", "description": "Anything."}), "NoteMeta");
        assert_eq!(
            free,
            json!({"$ref": "#/components/schemas/JsonObject", "description": "Anything."})
        );
    }

    #[test]
    fn the_error_envelope_is_three_components() {
        let spec = spec(&[], "t", "1");
        let error = &spec["components"]["schemas"]["Error"];
        let detail = resolve(&spec, &error["properties"]["error"]);
        assert!(detail["properties"]["existing_id"].is_object());
        assert!(resolve(&spec, &detail["properties"]["fields"])["additionalProperties"].is_object());
    }
}
