//! A form's fields: the list a form is declared with (checked once, when the form is
//! written) and the values a visitor submits against it.

use std::collections::HashSet;

use serde_json::{Map, Number, Value, json};
use space_http::FieldErrors;
use space_http::fields::{CustomKind, FieldKind, label, label_schema};

pub const FIELD_TYPES: &[&str] = &["text", "email", "phone", "textarea", "number", "select", "checkbox"];
pub const MAX_FIELDS: usize = 50;
pub const MAX_OPTIONS: usize = 100;
const MAX_NAME_CHARS: usize = 64;
const MAX_LABEL_CHARS: usize = 200;
const MAX_OPTION_CHARS: usize = 200;
/// Longest value of a one-line field and of a textarea.
pub const MAX_TEXT_CHARS: usize = 1000;
pub const MAX_TEXTAREA_CHARS: usize = 10_000;
const KEYS: &[&str] = &["name", "type", "required", "label", "options"];

/// The kind of a form's `fields`: a list of field declarations.
pub fn fields_kind() -> FieldKind {
    FieldKind::Custom(CustomKind {
        schema: fields_schema,
        check: check_fields,
    })
}

fn fields_schema() -> Value {
    let mut label = FieldKind::Text { max: MAX_LABEL_CHARS }.schema();
    label["description"] = json!("What the visitor reads; the name when absent.");
    json!({
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_FIELDS,
        "description": "Field names are unique in a form, ignoring case.",
        "items": {
            "type": "object",
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$",
                    "description": "The key the value is submitted under; unique in the form."
                },
                "type": {"type": "string", "enum": FIELD_TYPES, "default": "text"},
                "required": {"type": "boolean", "default": false},
                "label": label,
                "options": {
                    "type": "array",
                    "items": label_schema(MAX_OPTION_CHARS),
                    "minItems": 1,
                    "maxItems": MAX_OPTIONS,
                    "uniqueItems": true,
                    "description": "The choices of a `select` field (required there, refused elsewhere)."
                }
            },
            "required": ["name"],
            "additionalProperties": false,
            // A select lists its options; no other type has any.
            "if": {"properties": {"type": {"const": "select"}}, "required": ["type"]},
            "then": {"required": ["options"]},
            "else": {"not": {"required": ["options"]}}
        }
    })
}

/// Checks a list of field declarations and normalizes each to
/// `{name, type, required, label?, options?}`.
fn check_fields(value: &Value) -> Result<Value, String> {
    let list = value
        .as_array()
        .ok_or("must be a list of fields, like [{\"name\": \"email\", \"type\": \"email\"}]")?;
    if list.is_empty() || list.len() > MAX_FIELDS {
        return Err(format!("must hold 1 to {MAX_FIELDS} fields"));
    }
    let mut problems = Vec::new();
    let mut names = HashSet::new();
    let mut normalized = Vec::with_capacity(list.len());
    for (index, entry) in list.iter().enumerate() {
        if let Some(name) = entry.get("name").and_then(Value::as_str)
            && !names.insert(name.to_ascii_lowercase())
        {
            problems.push(format!(
                "fields[{index}].name is used by an earlier field; names must be unique"
            ));
        }
        match check_field(entry) {
            Ok(field) => normalized.push(field),
            Err(message) => problems.push(format!("fields[{index}]{message}")),
        }
    }
    if problems.is_empty() {
        Ok(Value::Array(normalized))
    } else {
        Err(problems.join("; "))
    }
}

/// One declaration; errors start with the path below `fields[i]`.
fn check_field(entry: &Value) -> Result<Value, String> {
    let object = entry.as_object().ok_or(" must be an object with at least a name")?;
    if let Some(unknown) = object.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(format!(
            " has an unknown key `{unknown}`; known keys: {}",
            KEYS.join(", ")
        ));
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .ok_or(".name is required and must be a string")?;
    let valid_name = name.len() <= MAX_NAME_CHARS
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(format!(
            ".name must start with a letter and hold up to {MAX_NAME_CHARS} letters, digits, _ or -"
        ));
    }
    let kind = match object.get("type") {
        None => "text",
        Some(kind) => kind
            .as_str()
            .filter(|kind| FIELD_TYPES.contains(kind))
            .ok_or_else(|| format!(".type must be one of {}", FIELD_TYPES.join(", ")))?,
    };
    let required = match object.get("required") {
        None => false,
        Some(required) => required.as_bool().ok_or(".required must be true or false")?,
    };
    let mut field = Map::new();
    field.insert("name".into(), json!(name));
    field.insert("type".into(), json!(kind));
    field.insert("required".into(), json!(required));
    match object.get("label") {
        None => {}
        Some(label) => {
            let label = FieldKind::Text { max: MAX_LABEL_CHARS }
                .check(label)
                .map_err(|m| format!(".label {m}"))?;
            if label.as_str().is_some_and(|l| !l.is_empty()) {
                field.insert("label".into(), label);
            }
        }
    }
    let options = object.get("options");
    match (kind, options) {
        ("select", None) => return Err(".options is required for a select field".into()),
        ("select", Some(options)) => {
            field.insert("options".into(), check_options(options)?);
        }
        (_, Some(_)) => return Err(".options is only for select fields".into()),
        (_, None) => {}
    }
    Ok(Value::Object(field))
}

fn check_options(options: &Value) -> Result<Value, String> {
    let list = options.as_array().ok_or(".options must be a list of strings")?;
    if list.is_empty() || list.len() > MAX_OPTIONS {
        return Err(format!(".options must hold 1 to {MAX_OPTIONS} choices"));
    }
    let mut seen = Vec::with_capacity(list.len());
    for option in list {
        let option = option
            .as_str()
            .and_then(|raw| label(raw, MAX_OPTION_CHARS))
            .map(|choice| json!(choice))
            .ok_or_else(|| format!(".options: each choice must be 1 to {MAX_OPTION_CHARS} printable characters"))?;
        if seen.contains(&option) {
            return Err(format!(".options lists {option} twice"));
        }
        seen.push(option);
    }
    Ok(Value::Array(seen))
}

/// A stored field declaration, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct FormField {
    pub name: String,
    pub kind: String,
    pub required: bool,
    pub label: Option<String>,
    pub options: Vec<String>,
}

impl FormField {
    /// What a visitor reads: the label, or the name made readable.
    pub fn label(&self) -> String {
        match &self.label {
            Some(label) => label.clone(),
            None => {
                let spaced = self.name.replace(['_', '-'], " ");
                let mut chars = spaced.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        }
    }
}

/// The declarations of a stored form (written by [`check_fields`], so well formed).
pub fn form_fields(form: &Map<String, Value>) -> Vec<FormField> {
    form.get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|field| {
            Some(FormField {
                name: field.get("name")?.as_str()?.to_owned(),
                kind: field.get("type").and_then(Value::as_str).unwrap_or("text").to_owned(),
                required: field.get("required").and_then(Value::as_bool).unwrap_or(false),
                label: field.get("label").and_then(Value::as_str).map(str::to_owned),
                options: field
                    .get("options")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o.as_str().map(str::to_owned))
                    .collect(),
            })
        })
        .collect()
}

/// Where submitted values came from: names not in the form are refused in JSON (an API
/// client's typo) and ignored from a browser (a submit button's name, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Json,
    Browser,
}

/// Checks submitted values against the form's fields, reporting every problem at once.
/// Returns the normalized values of the fields that were filled in.
pub fn check_submission(
    fields: &[FormField],
    values: &Map<String, Value>,
    source: Source,
) -> Result<Map<String, Value>, FieldErrors> {
    let mut errors = FieldErrors::new();
    if source == Source::Json {
        for name in values.keys().filter(|name| !fields.iter().any(|f| &f.name == *name)) {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            errors.insert(
                name.clone(),
                vec![format!("is not a field of this form; its fields: {}", known.join(", "))],
            );
        }
    }
    let mut data = Map::new();
    for field in fields {
        match check_value(field, values.get(&field.name)) {
            Ok(Some(value)) => {
                data.insert(field.name.clone(), value);
            }
            Ok(None) if field.required => {
                let message = if field.kind == "checkbox" {
                    "must be checked".to_owned()
                } else {
                    format!("The {} field is required.", field.name)
                };
                errors.insert(field.name.clone(), vec![message]);
            }
            Ok(None) => {}
            Err(message) => {
                errors.insert(field.name.clone(), vec![message]);
            }
        }
    }
    if errors.is_empty() { Ok(data) } else { Err(errors) }
}

/// One value: `None` when it was left empty (an unchecked box counts as empty).
fn check_value(field: &FormField, value: Option<&Value>) -> Result<Option<Value>, String> {
    let value = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(None),
        Some(value) => value,
    };
    let checked = match field.kind.as_str() {
        "checkbox" => match value {
            Value::Bool(checked) => *checked,
            Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => true,
                "off" | "false" | "no" | "0" => false,
                _ => return Err("must be checked or not: true or false".into()),
            },
            _ => return Err("must be true or false".into()),
        },
        "number" => {
            let number = match value {
                Value::Number(number) => number.as_f64(),
                Value::String(text) => text.trim().parse::<f64>().ok(),
                _ => None,
            };
            let number = number
                .filter(|n| n.is_finite())
                .ok_or("must be a number, like 42 or 3.5")?;
            let as_integer = number as i64;
            return Ok(Some(if number.fract() == 0.0 && as_integer as f64 == number {
                Value::from(as_integer)
            } else {
                Number::from_f64(number).map(Value::Number).ok_or("must be a number")?
            }));
        }
        "select" => {
            let choice = value.as_str().ok_or("must be one of the form's choices")?.trim();
            if !field.options.iter().any(|option| option == choice) {
                return Err(format!("must be one of {}", field.options.join(", ")));
            }
            return Ok(Some(json!(choice)));
        }
        "email" => return FieldKind::Email.check(value).map(Some),
        "phone" => return FieldKind::Phone.check(value).map(Some),
        "textarea" => {
            return FieldKind::LongText {
                max: MAX_TEXTAREA_CHARS,
            }
            .check(value)
            .map(Some);
        }
        _ => return FieldKind::Text { max: MAX_TEXT_CHARS }.check(value).map(Some),
    };
    Ok(checked.then_some(Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_shape_is_normalized() {
        let fields =
            check_fields(&json!([{"name": "email", "type": "email", "required": true}, {"name": "note"}])).unwrap();
        assert_eq!(
            fields,
            json!([
                {"name": "email", "type": "email", "required": true},
                {"name": "note", "type": "text", "required": false}
            ])
        );
    }

    #[test]
    fn bad_declarations_are_named() {
        let error = check_fields(&json!([
            {"name": "plan", "type": "select"},
            {"name": "1st"},
            {"name": "email", "type": "colour"},
            {"name": "Email", "type": "email"},
            {"name": "ok", "options": ["a"]},
            {"name": "x", "secret": true}
        ]))
        .unwrap_err();
        for expected in [
            "fields[0].options is required",
            "fields[1].name must start",
            "fields[2].type must be one of",
            "fields[4].options is only for select",
            "fields[5] has an unknown key `secret`",
        ] {
            assert!(error.contains(expected), "{expected} in {error}");
        }
        assert!(check_fields(&json!([])).is_err());
        assert!(check_fields(&json!({"name": "email"})).is_err());
        let duplicate = check_fields(&json!([{"name": "email"}, {"name": "EMAIL"}])).unwrap_err();
        assert!(duplicate.contains("fields[1].name is used"), "{duplicate}");
    }

    fn contact_form() -> Vec<FormField> {
        let fields = check_fields(&json!([
            {"name": "email", "type": "email", "required": true},
            {"name": "seats", "type": "number"},
            {"name": "plan", "type": "select", "options": ["basic", "pro"]},
            {"name": "consent", "type": "checkbox", "required": true},
            {"name": "message", "type": "textarea"}
        ]))
        .unwrap();
        form_fields(&json!({"fields": fields}).as_object().unwrap().clone())
    }

    #[test]
    fn browser_strings_become_typed_values() {
        let values = json!({"email": " Ada@Example.com ", "seats": "3", "plan": "pro", "consent": "on", "message": "", "submit": "Send"});
        let data = check_submission(&contact_form(), values.as_object().unwrap(), Source::Browser).unwrap();
        assert_eq!(
            Value::Object(data),
            json!({"email": "ada@example.com", "seats": 3, "plan": "pro", "consent": true})
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let values = json!({"email": "nope", "seats": "many", "plan": "gold", "colour": "red"});
        let errors = check_submission(&contact_form(), values.as_object().unwrap(), Source::Json).unwrap_err();
        let names: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(names, ["colour", "consent", "email", "plan", "seats"]);
        assert_eq!(errors["consent"], ["must be checked"]);
    }
}
