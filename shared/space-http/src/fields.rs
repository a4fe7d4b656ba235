//! Field declarations: one list per resource drives validation, normalization and the
//! JSON Schema shown in OpenAPI and MCP.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::email::{EMAIL_PATTERN, Email, MAX_EMAIL_LEN};
use crate::error::FieldErrors;

/// What a field holds. Validation normalizes as it checks (emails lowercased, phone
/// numbers to E.164, times to UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A single line of text up to `max` characters.
    Text {
        max: usize,
    },
    /// Free text (markdown, notes) up to `max` characters.
    LongText {
        max: usize,
    },
    /// A plain address, lowercased ([`crate::email::Email`]).
    Email,
    /// A phone number, normalized to E.164 (`+15551234567`).
    Phone,
    Url,
    /// An RFC 3339 timestamp, stored in UTC.
    DateTime,
    Enum(&'static [&'static str]),
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    /// A list of short labels, deduplicated, order kept.
    Tags,
    /// Any JSON object, up to `max_bytes` serialized.
    Object {
        max_bytes: usize,
    },
    /// A value a family checks itself (a form's list of fields, a page slug).
    Custom(CustomKind),
}

/// A field kind defined by a family: how a value is checked and normalized, and its
/// JSON Schema. Like [`crate::resource::CustomFilter`], plain functions so kinds stay `Copy`.
#[derive(Debug, Clone, Copy)]
pub struct CustomKind {
    pub schema: fn() -> Value,
    pub check: fn(&Value) -> Result<Value, String>,
}

impl PartialEq for CustomKind {
    fn eq(&self, other: &CustomKind) -> bool {
        std::ptr::fn_addr_eq(self.schema, other.schema) && std::ptr::fn_addr_eq(self.check, other.check)
    }
}

impl Eq for CustomKind {}

/// Maximum number of tags on one item.
pub const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 64;

/// One field of a resource.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    pub description: &'static str,
    /// Filled in on create when the client sends nothing.
    pub default: Option<fn() -> Value>,
}

impl Field {
    pub const fn new(name: &'static str, kind: FieldKind, description: &'static str) -> Field {
        Field {
            name,
            kind,
            required: false,
            description,
            default: None,
        }
    }

    pub const fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub const fn default(mut self, default: fn() -> Value) -> Field {
        self.default = Some(default);
        self
    }

    /// Checks and normalizes one value.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        self.kind.check(value)
    }

    /// The JSON Schema of the field's value.
    pub fn schema(&self) -> Value {
        let mut schema = self.kind.schema();
        if let Some(object) = schema.as_object_mut() {
            object.insert("description".into(), json!(self.description));
            if let Some(default) = self.default {
                object.insert("default".into(), default());
            }
        }
        schema
    }
}

impl FieldKind {
    pub fn check(self, value: &Value) -> Result<Value, String> {
        match self {
            FieldKind::Text { max } | FieldKind::LongText { max } => {
                let text = value.as_str().ok_or("must be a string")?;
                let text = if matches!(self, FieldKind::Text { .. }) {
                    text.trim()
                } else {
                    text
                };
                if text.chars().count() > max {
                    return Err(format!("must be at most {max} characters"));
                }
                if matches!(self, FieldKind::Text { .. }) && text.chars().any(char::is_control) {
                    return Err("must be a single line without control characters".into());
                }
                Ok(Value::String(text.to_owned()))
            }
            FieldKind::Email => {
                let text = value.as_str().ok_or("must be a string")?;
                Email::parse(text)
                    .map(|email| Value::String(email.into()))
                    .map_err(|error| error.to_string())
            }
            FieldKind::Phone => {
                let text = value.as_str().ok_or("must be a string")?;
                normalize_phone(text)
                    .map(Value::String)
                    .ok_or_else(|| "must be a phone number in international format, like +15551234567".into())
            }
            FieldKind::Url => {
                let text = value.as_str().ok_or("must be a string")?.trim();
                let valid = (text.starts_with("https://") || text.starts_with("http://"))
                    && text.len() <= 2048
                    && !text.chars().any(|c| c.is_whitespace() || c.is_control())
                    && text.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
                if !valid {
                    return Err("must be an http(s) URL".into());
                }
                Ok(Value::String(text.to_owned()))
            }
            FieldKind::DateTime => {
                let text = value.as_str().ok_or("must be a string")?;
                parse_datetime(text)
                    .map(|at| Value::String(format_datetime(at)))
                    .ok_or_else(|| "must be an RFC 3339 date-time, like 2026-11-22T17:00:00Z".into())
            }
            FieldKind::Enum(options) => {
                let text = value.as_str().ok_or("must be a string")?;
                if options.contains(&text) {
                    Ok(Value::String(text.to_owned()))
                } else {
                    Err(format!("must be one of {}", options.join(", ")))
                }
            }
            FieldKind::Boolean => value
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| "must be true or false".into()),
            FieldKind::Integer { min, max } => {
                let number = value.as_i64().ok_or("must be a whole number")?;
                if number < min || number > max {
                    return Err(format!("must be between {min} and {max}"));
                }
                Ok(Value::from(number))
            }
            FieldKind::Tags => {
                let list = value.as_array().ok_or("must be a list of strings")?;
                let mut tags: Vec<String> = Vec::with_capacity(list.len());
                for entry in list {
                    let tag = normalize_tag(entry)?;
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
                }
                if tags.len() > MAX_TAGS {
                    return Err(format!("must have at most {MAX_TAGS} tags"));
                }
                Ok(json!(tags))
            }
            FieldKind::Object { max_bytes } => {
                if !value.is_object() {
                    return Err("must be a JSON object".into());
                }
                if serde_json::to_vec(value).map(|b| b.len()).unwrap_or(usize::MAX) > max_bytes {
                    return Err(format!("must be at most {max_bytes} bytes of JSON"));
                }
                Ok(value.clone())
            }
            FieldKind::Custom(custom) => (custom.check)(value),
        }
    }

    pub fn schema(self) -> Value {
        match self {
            FieldKind::Text { max } | FieldKind::LongText { max } => json!({"type": "string", "maxLength": max}),
            FieldKind::Email => {
                json!({"type": "string", "format": "email", "maxLength": MAX_EMAIL_LEN, "pattern": EMAIL_PATTERN})
            }
            FieldKind::Phone => {
                json!({"type": "string", "pattern": "^\\+?[0-9 ()./-]{7,24}$", "examples": ["+15551234567"]})
            }
            FieldKind::Url => json!({"type": "string", "format": "uri", "pattern": "^https?://", "maxLength": 2048}),
            FieldKind::DateTime => json!({"type": "string", "format": "date-time"}),
            FieldKind::Enum(options) => json!({"type": "string", "enum": options}),
            FieldKind::Boolean => json!({"type": "boolean"}),
            FieldKind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
            FieldKind::Tags => json!({
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_TAG_CHARS},
                "maxItems": MAX_TAGS
            }),
            FieldKind::Object { .. } => json!({"type": "object"}),
            FieldKind::Custom(custom) => (custom.schema)(),
        }
    }
}

/// A tag: trimmed, 1–64 characters, no control characters.
pub fn normalize_tag(value: &Value) -> Result<String, String> {
    let tag = value.as_str().ok_or("tags must be strings")?.trim();
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
        return Err(format!("each tag must be 1 to {MAX_TAG_CHARS} printable characters"));
    }
    Ok(tag.to_owned())
}

/// `+1 (555) 123-4567` → `+15551234567`; `None` unless it is a plausible E.164 number.
pub fn normalize_phone(text: &str) -> Option<String> {
    let text = text.trim();
    if text.len() > 32 {
        return None;
    }
    let digits_part = text.strip_prefix('+')?;
    let mut digits = String::with_capacity(16);
    for c in digits_part.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let plausible = (8..=15).contains(&digits.len()) && !digits.starts_with('0');
    plausible.then(|| format!("+{digits}"))
}

pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// The one way timestamps are written: RFC 3339, UTC, milliseconds.
/// `63206` → `63,206`: how limits read in messages.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn format_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// How much of a resource a write supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// A new item: required fields needed, defaults applied.
    Create,
    /// `PUT`: the whole item; fields left out are cleared.
    Replace,
    /// `PATCH`: only the fields sent; `null` clears an optional field (or resets one
    /// with a default).
    Patch,
}

/// Fields the server manages; clients may send them back (from a GET) and they are ignored.
pub const SERVER_FIELDS: &[&str] = &["id", "created_at", "updated_at", "version", "object"];

/// Validates a JSON body against `fields`, collecting every problem.
///
/// Returns the normalized fields to set and, for `Patch`, the names to clear.
pub fn validate(fields: &[Field], body: &Value, mode: WriteMode) -> Result<Validated, FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(object) = body.as_object() else {
        errors.insert("body".into(), vec!["must be a JSON object".into()]);
        return Err(errors);
    };
    let mut set = Map::new();
    let mut clear = Vec::new();
    for (name, value) in object {
        if SERVER_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let Some(field) = fields.iter().find(|f| f.name == name) else {
            let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
            errors.insert(
                name.clone(),
                vec![format!(
                    "is not a field of this resource; known fields: {}",
                    known.join(", ")
                )],
            );
            continue;
        };
        if value.is_null() {
            if field.required {
                errors.insert(
                    name.clone(),
                    vec![format!("The {name} field is required and cannot be null.")],
                );
            } else if let Some(default) = field.default {
                // A field with a default always has a value: null puts the default back.
                set.insert(name.clone(), default());
            } else {
                clear.push(field.name);
            }
            continue;
        }
        match field.check(value) {
            Ok(normalized) => {
                set.insert(name.clone(), normalized);
            }
            Err(message) => {
                errors.insert(name.clone(), vec![message]);
            }
        }
    }
    if mode != WriteMode::Patch {
        for field in fields {
            if set.contains_key(field.name) || errors.contains_key(field.name) {
                continue;
            }
            if let (WriteMode::Create | WriteMode::Replace, Some(default)) = (mode, field.default) {
                set.insert(field.name.into(), default());
            } else if field.required {
                errors.insert(
                    field.name.into(),
                    vec![format!("The {} field is required.", field.name)],
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(Validated { set, clear })
    } else {
        Err(errors)
    }
}

/// A checked write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validated {
    pub set: Map<String, Value>,
    pub clear: Vec<&'static str>,
}

impl Validated {
    /// Writes this input onto a stored body: a replace first drops every field but
    /// `keep` (the item's bookkeeping), then cleared fields go and set fields land.
    pub fn apply(&self, body: &mut Map<String, Value>, mode: WriteMode, keep: &[&str]) {
        if mode == WriteMode::Replace {
            body.retain(|name, _| keep.contains(&name.as_str()));
        }
        for name in &self.clear {
            body.remove(*name);
        }
        body.extend(self.set.clone());
    }
}

/// The body of an action that takes no input (publish, rotate): an empty object, so that
/// an MCP client sends `{}` and anything else is refused.
pub fn empty_body_schema() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

/// The JSON Schema of a write body. `Patch` makes every field optional and nullable.
pub fn body_schema(fields: &[Field], mode: WriteMode) -> Value {
    let mut properties = Map::new();
    for field in fields {
        let mut schema = field.schema();
        if mode == WriteMode::Patch && !field.required {
            schema = json!({"anyOf": [schema, {"type": "null"}], "description": field.description});
        }
        properties.insert(field.name.into(), schema);
    }
    let required: Vec<&str> = if mode == WriteMode::Patch {
        Vec::new()
    } else {
        fields
            .iter()
            .filter(|f| f.required && f.default.is_none())
            .map(|f| f.name)
            .collect()
    };
    let mut schema = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field::new("title", FieldKind::Text { max: 10 }, "Title").required(),
        Field::new("email", FieldKind::Email, "Email"),
        Field::new("phone", FieldKind::Phone, "Phone"),
    ];

    #[test]
    fn create_reports_every_problem_at_once() {
        let errors = validate(
            FIELDS,
            &json!({"email": "nope", "phone": "555", "color": "red"}),
            WriteMode::Create,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(errors["title"], vec!["The title field is required."]);
    }

    #[test]
    fn values_are_normalized() {
        let ok = validate(
            FIELDS,
            &json!({"title": " Hi ", "email": "Ada@Example.COM", "phone": "+1 (555) 123-4567"}),
            WriteMode::Create,
        )
        .unwrap();
        assert_eq!(ok.set["title"], "Hi");
        assert_eq!(ok.set["email"], "ada@example.com");
        assert_eq!(ok.set["phone"], "+15551234567");
    }

    #[test]
    fn patch_clears_optional_fields_and_protects_required_ones() {
        let ok = validate(FIELDS, &json!({"email": null}), WriteMode::Patch).unwrap();
        assert_eq!(ok.clear, vec!["email"]);
        assert!(validate(FIELDS, &json!({"title": null}), WriteMode::Patch).is_err());
    }

    #[test]
    fn null_resets_a_field_with_a_default() {
        let fields = [Field::new("tags", FieldKind::Tags, "Tags").default(|| json!([]))];
        let ok = validate(&fields, &json!({"tags": null}), WriteMode::Patch).unwrap();
        assert_eq!(ok.set["tags"], json!([]));
        assert!(ok.clear.is_empty());
    }

    #[test]
    fn non_objects_are_refused() {
        assert!(
            validate(FIELDS, &json!([1, 2]), WriteMode::Create)
                .unwrap_err()
                .contains_key("body")
        );
    }
}
