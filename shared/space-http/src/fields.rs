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
/// The longest phone number accepted, formatting included.
pub const MAX_PHONE_CHARS: usize = 32;

/// A single line: no control character (Unicode Cc, what `char::is_control` finds).
pub const SINGLE_LINE_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";
/// A label (a tag): a single line with at least one character that is not a space.
pub const LABEL_PATTERN: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";
/// An http(s) URL without spaces or control characters.
pub const URL_PATTERN: &str = "^https?://[^\\x00-\\x20\\x7f-\\x9f]+$";
/// An RFC 3339 date-time, as `date-time` means in JSON Schema, written out.
pub const DATE_TIME_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";
/// The shape of a phone number in international format: `+`, the country code, the
/// number, with spaces, dots, dashes or parentheses if you like.
pub const PHONE_PATTERN: &str = "^\\+[1-9][0-9 ().-]*$";
/// The shape of a tz database name (`UTC`, `Europe/Berlin`, `America/Argentina/Buenos_Aires`).
pub const TIME_ZONE_PATTERN: &str = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";

/// A time zone field's schema: the shape of a name; the families check it is one the tz
/// database has (a rule for the description, as the list is long).
pub fn time_zone_schema() -> Value {
    json!({
        "type": "string",
        "format": "time-zone",
        "pattern": TIME_ZONE_PATTERN,
        "maxLength": 64,
        "description": "An IANA time zone name that the tz database has, like UTC, Europe/Berlin or America/New_York.",
        "examples": ["Europe/Berlin"]
    })
}

/// An amount's currency: an ISO 4217 code in capitals, like EUR. Amounts beside it are
/// integers in the currency's minor unit (cents), so no amount is ever a float.
pub const CURRENCY: FieldKind = FieldKind::Custom(CustomKind {
    schema: currency_schema,
    check: check_currency,
});

fn currency_schema() -> Value {
    json!({"type": "string", "pattern": "^[A-Z]{3}$", "description": "An ISO 4217 currency code, like EUR or USD.", "examples": ["EUR"]})
}

fn check_currency(value: &Value) -> Result<Value, String> {
    match value.as_str() {
        Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) => Ok(value.clone()),
        _ => Err("must be an ISO 4217 currency code in capitals, like EUR".into()),
    }
}

/// The rules of phone and email fields beyond their patterns, for the descriptions of
/// the operations that take them.
pub const PHONE_AND_EMAIL_RULES: &str = "A phone number must be valid in its country's numbering plan \
     (libphonenumber's metadata), and an email address has at most 64 characters before the `@`; otherwise 422.";

/// What a phone field says it accepts; validity per country is more than a pattern says.
pub const PHONE_RULE: &str = "A phone number in international format (`+`, the country code, the number; spaces, dots, dashes and parentheses are ignored), valid in its country's numbering plan (libphonenumber's metadata); stored as E.164, like +14155552671.";

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

    /// The JSON Schema of the field's value; what the kind says of its values follows the
    /// field's own description.
    pub fn schema(&self) -> Value {
        let mut schema = self.kind.schema();
        if let Some(object) = schema.as_object_mut() {
            let description = match object.get("description").and_then(Value::as_str) {
                Some(rule) => format!("{} {rule}", self.description),
                None => self.description.to_owned(),
            };
            object.insert("description".into(), json!(description));
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
            // Lengths and characters are checked as sent, as the schema states them;
            // surrounding spaces of a single line are then dropped.
            FieldKind::Text { max } | FieldKind::LongText { max } => {
                let text = value.as_str().ok_or("must be a string")?;
                if text.chars().count() > max {
                    return Err(format!("must be at most {max} characters"));
                }
                if matches!(self, FieldKind::LongText { .. }) {
                    return Ok(Value::String(text.to_owned()));
                }
                if text.chars().any(char::is_control) {
                    return Err("must be a single line without control characters".into());
                }
                Ok(Value::String(text.trim().to_owned()))
            }
            FieldKind::Email => {
                let text = value.as_str().ok_or("must be a string")?;
                // As sent, like the schema's maxLength; surrounding spaces are then dropped.
                if text.chars().count() > MAX_EMAIL_LEN {
                    return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
                }
                Email::parse(text)
                    .map(|email| Value::String(email.into()))
                    .map_err(|error| error.to_string())
            }
            FieldKind::Phone => {
                let text = value.as_str().ok_or("must be a string")?;
                normalize_phone(text)
                    .map(Value::String)
                    .map_err(|error| error.to_string())
            }
            FieldKind::Url => {
                let text = value.as_str().ok_or("must be a string")?;
                let rest = text
                    .strip_prefix("https://")
                    .or_else(|| text.strip_prefix("http://"))
                    .unwrap_or_default();
                let valid = !rest.is_empty()
                    && text.chars().count() <= MAX_URL_CHARS
                    && !text.chars().any(|c| c <= ' ' || ('\u{7f}'..='\u{9f}').contains(&c));
                if !valid {
                    return Err("must be an http(s) URL without spaces".into());
                }
                Ok(Value::String(text.to_owned()))
            }
            FieldKind::DateTime => {
                let text = value.as_str().ok_or("must be a string")?;
                parse_datetime_strict(text)
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
                let number = whole_number(value).ok_or("must be a whole number")?;
                if number < min || number > max {
                    return Err(format!("must be between {min} and {max}"));
                }
                Ok(Value::from(number))
            }
            FieldKind::Tags => {
                let list = value.as_array().ok_or("must be a list of strings")?;
                // Counted as sent, as the schema's maxItems does; repeats are then dropped.
                if list.len() > MAX_TAGS {
                    return Err(format!("must have at most {MAX_TAGS} tags"));
                }
                let mut tags: Vec<String> = Vec::with_capacity(list.len());
                for entry in list {
                    let tag = normalize_tag(entry)?;
                    if !tags.contains(&tag) {
                        tags.push(tag);
                    }
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

    /// Whether the kind's own schema lets a value be `null` (a family's custom kind may).
    pub fn takes_null(self) -> bool {
        let schema = self.schema();
        let nullable_type = match &schema["type"] {
            Value::Array(types) => types.iter().any(|t| t == "null"),
            other => other == "null",
        };
        let nullable_variant = ["anyOf", "oneOf"].iter().any(|keyword| {
            schema[*keyword]
                .as_array()
                .is_some_and(|variants| variants.iter().any(|v| v["type"] == "null"))
        });
        nullable_type || nullable_variant
    }

    pub fn schema(self) -> Value {
        match self {
            FieldKind::Text { max } => json!({"type": "string", "maxLength": max, "pattern": SINGLE_LINE_PATTERN}),
            FieldKind::LongText { max } => json!({"type": "string", "maxLength": max}),
            // No `format: email`: validators read it more strictly than the API (surrounding
            // spaces), and the pattern says exactly what is taken.
            FieldKind::Email => json!({
                "type": "string",
                "maxLength": MAX_EMAIL_LEN,
                "pattern": EMAIL_PATTERN,
                "examples": ["ada@example.com"]
            }),
            FieldKind::Phone => json!({
                "type": "string",
                "description": PHONE_RULE,
                "format": "phone",
                "pattern": PHONE_PATTERN,
                "maxLength": MAX_PHONE_CHARS,
                "examples": ["+14155552671"]
            }),
            // No `format: uri`: the server takes what the pattern says (an http(s) URL without
            // spaces or control characters, international characters included), which RFC
            // 3986's `uri` would refuse.
            FieldKind::Url => json!({"type": "string", "pattern": URL_PATTERN, "maxLength": MAX_URL_CHARS}),
            FieldKind::DateTime => json!({"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}),
            FieldKind::Enum(options) => json!({"type": "string", "enum": options}),
            FieldKind::Boolean => json!({"type": "boolean"}),
            FieldKind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
            FieldKind::Tags => json!({
                "type": "array",
                "items": label_schema(MAX_TAG_CHARS),
                "maxItems": MAX_TAGS
            }),
            FieldKind::Object { max_bytes } => {
                json!({"type": "object", "description": format!("At most {max_bytes} bytes as JSON.")})
            }
            FieldKind::Custom(custom) => (custom.schema)(),
        }
    }
}

/// A tag: a label ([`label`]) of at most 64 characters.
pub fn normalize_tag(value: &Value) -> Result<String, String> {
    let raw = value.as_str().ok_or("tags must be strings")?;
    label(raw, MAX_TAG_CHARS)
        .map(str::to_owned)
        .ok_or_else(|| format!("each tag must be 1 to {MAX_TAG_CHARS} printable characters"))
}

/// A label (a tag, a name that must say something): at most `max` characters as sent, no
/// control characters, not only spaces; `None` otherwise. Its surrounding spaces are
/// dropped. [`label_schema`] states the same.
pub fn label(raw: &str, max: usize) -> Option<&str> {
    let trimmed = raw.trim_matches(' ');
    (!trimmed.is_empty() && raw.chars().count() <= max && !raw.chars().any(char::is_control)).then_some(trimmed)
}

/// The schema of a [`label`] of at most `max` characters.
pub fn label_schema(max: usize) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": LABEL_PATTERN})
}

/// The longest URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// Why a phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must be a phone number in international format: `+`, the country code and the number, like +14155552671")]
    Shape,
    #[error(
        "is not a valid phone number in its country's numbering plan (check the country code and the number of digits)"
    )]
    Invalid,
}

/// `+1 (415) 555-2671` → `+14155552671`: a number in international format (the shape of
/// [`PHONE_PATTERN`], at most [`MAX_PHONE_CHARS`]) that is valid for its country.
pub fn normalize_phone(text: &str) -> Result<String, PhoneError> {
    let shaped = text.len() <= MAX_PHONE_CHARS
        && text.strip_prefix('+').is_some_and(|rest| {
            rest.starts_with(|c: char| matches!(c, '1'..='9'))
                && rest.chars().all(|c| c.is_ascii_digit() || " ().-".contains(c))
        });
    if !shaped {
        return Err(PhoneError::Shape);
    }
    let number = phonenumber::parse(None, text).map_err(|_| PhoneError::Invalid)?;
    if !phonenumber::is_valid(&number) {
        return Err(PhoneError::Invalid);
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// A JSON number with no fractional part (`3` or `3.0`, as JSON Schema's `integer`).
pub fn whole_number(value: &Value) -> Option<i64> {
    if let Some(number) = value.as_i64() {
        return Some(number);
    }
    let float = value.as_f64()?;
    // i64::MAX as f64 rounds up; anything from there on does not fit.
    (float.fract() == 0.0 && float >= i64::MIN as f64 && float < i64::MAX as f64).then_some(float as i64)
}

/// An RFC 3339 time (surrounding spaces allowed, as in query parameters).
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// An RFC 3339 time exactly as [`DATE_TIME_PATTERN`] writes it: what body fields take.
pub fn parse_datetime_strict(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes.get(range).is_some_and(|b| b.iter().all(u8::is_ascii_digit));
    let shaped = digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(bytes.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16)
        && bytes.get(16) == Some(&b':')
        && digits(17..19);
    if !shaped {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let length = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if length == 0 {
            return None;
        }
        rest = &fraction[length..];
    }
    let zone_ok = matches!(rest, "Z" | "z")
        || (rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().chain(rest[4..].bytes()).all(|b| b.is_ascii_digit()));
    if !zone_ok {
        return None;
    }
    parse_datetime(text)
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
            } else if mode != WriteMode::Patch && !field.kind.takes_null() {
                // Only a PATCH clears with null; a create or replace leaves the field out.
                errors.insert(
                    name.clone(),
                    vec!["cannot be null here: leave the field out (a PATCH clears it with null)".into()],
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
            &json!({"title": " Hi ", "email": "Ada@Example.COM", "phone": "+1 (415) 555-2671"}),
            WriteMode::Create,
        )
        .unwrap();
        assert_eq!(ok.set["title"], "Hi");
        assert_eq!(ok.set["email"], "ada@example.com");
        assert_eq!(ok.set["phone"], "+14155552671");
    }

    #[test]
    fn phone_numbers_must_be_valid_in_their_country() {
        assert_eq!(normalize_phone("+44 20 7946 0958"), Ok("+442079460958".into()));
        assert_eq!(normalize_phone("+49.30.123456"), Ok("+4930123456".into()));
        // The right shape, but no such number in the plan (555 is no US area code).
        assert_eq!(normalize_phone("+15551234567"), Err(PhoneError::Invalid));
        assert_eq!(normalize_phone("+1 415"), Err(PhoneError::Invalid));
        for shape in [
            "4155552671",
            "+1-800-FLOWERS",
            "+1 415 555 2671 ext 5",
            " +14155552671",
            "+",
            "+(1)",
        ] {
            assert_eq!(normalize_phone(shape), Err(PhoneError::Shape), "{shape}");
        }
    }

    #[test]
    fn what_the_schema_states_is_what_is_checked() {
        let text = FieldKind::Text { max: 5 };
        // Lengths count what was sent, surrounding spaces included, then they go.
        assert_eq!(text.check(&json!(" abc ")), Ok(json!("abc")));
        assert!(text.check(&json!("  abc ")).is_err());
        assert!(text.check(&json!("a\tb")).is_err());
        assert_eq!(
            FieldKind::Email.check(&json!(" Ada@example.com\n")),
            Ok(json!("ada@example.com"))
        );
        assert!(FieldKind::Email.check(&json!("\u{a0}ada@example.com")).is_err());
        let integer = FieldKind::Integer { min: 1, max: 10 };
        assert_eq!(integer.check(&json!(3.0)), Ok(json!(3)));
        assert!(integer.check(&json!(3.5)).is_err());
        assert!(FieldKind::Url.check(&json!(" https://example.com")).is_err());
        assert!(FieldKind::Url.check(&json!("https://exa mple.com")).is_err());
        assert_eq!(
            FieldKind::DateTime.check(&json!("2026-11-22t17:00:00.5+01:00")),
            Ok(json!("2026-11-22T16:00:00.500Z"))
        );
        for bad in [
            "2026-11-22 17:00:00Z",
            " 2026-11-22T17:00:00Z",
            "2026-11-22T17:00Z",
            "2026-11-22T17:00:00.",
        ] {
            assert!(FieldKind::DateTime.check(&json!(bad)).is_err(), "{bad}");
        }
        // Tags: counted as sent (repeats included), each a visible label.
        assert!(FieldKind::Tags.check(&json!(vec!["a"; MAX_TAGS + 1])).is_err());
        assert_eq!(FieldKind::Tags.check(&json!([" vip ", "vip"])), Ok(json!(["vip"])));
        for bad in ["   ", "\t", "a\nb"] {
            assert!(FieldKind::Tags.check(&json!([bad])).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn null_clears_only_in_a_patch() {
        let error = validate(FIELDS, &json!({"title": "x", "email": null}), WriteMode::Create).unwrap_err();
        assert!(error["email"][0].contains("leave the field out"), "{error:?}");
        assert!(validate(FIELDS, &json!({"title": "x", "email": null}), WriteMode::Replace).is_err());
        assert!(validate(FIELDS, &json!({"email": null}), WriteMode::Patch).is_ok());
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
        assert!(validate(&fields, &json!({"tags": null}), WriteMode::Create).is_err());
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
