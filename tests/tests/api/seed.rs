//! Example bodies generated from the catalogue's JSON Schemas, and real ids for path
//! parameters, so that tests reach every operation's handler, not only its 404.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Map, Value, json};
use space_http::Operation;
use space_http::operation::Access;
use space_tests::{ACCOUNT_API, SPACE_API, TestApp};

/// A plausible value for a JSON Schema with its required fields only (plus a name,
/// which contacts need and elsewhere is harmless when declared).
pub fn minimal_example(schema: &Value) -> Value {
    let mut value = example_with(schema, false);
    if let (Value::Object(object), Some(properties)) = (&mut value, schema["properties"].as_object())
        && properties.contains_key("name")
        && !object.contains_key("name")
    {
        object.insert("name".into(), json!("Example"));
    }
    value
}

/// Values that a field's name asks for beyond its schema.
fn hint(name: &str, value: Value) -> Value {
    match (name, &value) {
        (name, Value::String(text))
            if text.starts_with("2099-") && (name.contains("end") || name.contains("until")) =>
        {
            json!(text.replace("T10:00", "T11:00"))
        }
        ("content_type" | "mime_type", Value::String(_)) => json!("image/png"),
        _ => value,
    }
}

/// A plausible value for a JSON Schema with every declared field.
pub fn example(schema: &Value) -> Value {
    example_with(schema, true)
}

/// A plausible value for a JSON Schema, valid for the usual constraints.
fn example_with(schema: &Value, optional: bool) -> Value {
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        return options.first().cloned().unwrap_or(Value::Null);
    }
    if let Some(any) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return any.first().map(|s| example_with(s, optional)).unwrap_or(Value::Null);
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds
            .iter()
            .find(|k| *k != "null")
            .and_then(Value::as_str)
            .unwrap_or("null"),
        Value::String(kind) => kind.as_str(),
        _ => "object",
    };
    match kind {
        "string" => match schema["format"].as_str() {
            Some("email") => json!("props@example.com"),
            Some("date-time") => json!("2099-03-02T10:00:00Z"),
            Some("date") => json!("2099-03-02"),
            Some("uri") => json!("https://example.com/"),
            _ if schema
                .get("pattern")
                .and_then(Value::as_str)
                .is_some_and(|p| p.contains("\\+")) =>
            {
                json!("+14155552671")
            }
            _ => json!("Example"),
        },
        "integer" | "number" => schema.get("minimum").cloned().unwrap_or(json!(1)),
        "boolean" => json!(false),
        "array" => {
            if schema["minItems"].as_u64().unwrap_or(0) > 0 {
                json!([example_with(&schema["items"], optional)])
            } else {
                json!([])
            }
        }
        "object" => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut object = Map::new();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                let value = hint(name, example_with(property, optional));
                if required.contains(&name.as_str()) || (optional && !value.is_null()) {
                    object.insert(name.clone(), value);
                }
            }
            Value::Object(object)
        }
        _ => Value::Null,
    }
}

/// Fills path parameters and `<thing>_id` fields with ids of real items of the Space,
/// created through the catalogue's own create operations; an id that cannot exist where
/// there is none.
pub struct Seeder<'a> {
    pub app: &'a TestApp,
    pub operations: &'a [Operation],
    /// Item id by collection template path (`/contacts`, `/contacts/{id}/notes`).
    pub known: HashMap<String, String>,
}

pub const MISSING_ID: &str = "zz_01jdxxxxxxxxxxxxxxxxxxxxxx";

impl Seeder<'_> {
    pub async fn path(&mut self, operation: &Operation) -> String {
        let mut resolved = String::new();
        let mut template = String::new();
        for segment in operation.path.split('/').filter(|s| !s.is_empty()) {
            if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                let value = match (operation.access, param) {
                    (Access::Account, "space") => self.app.demo.space_id.clone(),
                    (Access::Account, "name") => "PROPS_SECRET".into(),
                    _ => {
                        let id = self.id_in(&template, &resolved, operation.access).await;
                        match self.collection_named(param) {
                            Some((collection, access)) if id == MISSING_ID => {
                                self.id_in(&collection, &collection, access).await
                            }
                            _ => id,
                        }
                    }
                };
                resolved.push('/');
                resolved.push_str(&value);
            } else {
                resolved.push('/');
                resolved.push_str(segment);
            }
            template.push('/');
            template.push_str(segment);
        }
        resolved
    }

    /// An item of the collection at `template` (served at `resolved`), created once.
    fn id_in<'s>(
        &'s mut self,
        template: &'s str,
        resolved: &'s str,
        access: Access,
    ) -> futures::future::BoxFuture<'s, String> {
        Box::pin(async move {
            if let Some(id) = self.known.get(template) {
                return id.clone();
            }
            let creator = self
                .operations
                .iter()
                .find(|o| o.method == Method::POST && o.path == template && same_kind(o.access, access) && !o.raw_body);
            let mut id = None;
            if let Some(creator) = creator {
                let schema = creator.body.as_deref().cloned().unwrap_or(json!({}));
                let (base, key) = match access {
                    Access::Account => (ACCOUNT_API, self.app.account_key().to_owned()),
                    _ => (SPACE_API, self.app.key().to_owned()),
                };
                for optional in [false, true] {
                    let body = self.body(&schema, optional).await;
                    let response = self
                        .app
                        .request(Method::POST, &format!("{base}{resolved}"))
                        .key(&key)
                        .json(body)
                        .send()
                        .await;
                    id = response.body["id"].as_str().map(str::to_owned);
                    if id.is_some() {
                        break;
                    }
                }
            }
            let id = id.unwrap_or_else(|| MISSING_ID.into());
            self.known.insert(template.to_owned(), id.clone());
            id
        })
    }

    /// The top-level collection a `<thing>_id` names: `appointment_type_id` is the one
    /// whose path ends in `appointment-types`, `booking_page_id` `/booking/pages`.
    fn collection_named(&self, name: &str) -> Option<(String, Access)> {
        let wanted = format!("{}s", name.strip_suffix("_id")?.replace('_', "-"));
        self.operations
            .iter()
            .find(|o| {
                o.method == Method::POST
                    && !o.raw_body
                    && !o.path.contains('{')
                    && !matches!(o.access, Access::Public { .. })
                    && o.path.replace('/', "-").ends_with(&format!("-{wanted}"))
            })
            .map(|o| (o.path.clone(), o.access))
    }

    /// An example body whose `<thing>_id` fields name real items: `appointment_type_id`
    /// gets an item of the top-level collection ending in `appointment-types`.
    pub async fn body(&mut self, schema: &Value, optional: bool) -> Value {
        let mut body = if optional {
            example(schema)
        } else {
            minimal_example(schema)
        };
        let Value::Object(fields) = &mut body else { return body };
        let names: Vec<String> = fields.keys().filter(|k| k.ends_with("_id")).cloned().collect();
        for name in names {
            if let Some((collection, access)) = self.collection_named(&name) {
                let id = self.id_in(&collection, &collection, access).await;
                fields.insert(name, json!(id));
            }
        }
        body
    }
}

/// Whether two operations take the same kind of key (scopes aside: a read's ids come
/// from the create of the same collection).
fn same_kind(a: Access, b: Access) -> bool {
    a.principal_kind() == b.principal_kind()
}
