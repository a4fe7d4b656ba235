//! Step fields that name what a run is about, filled in when the step runs:
//! `{{input.<name>}}` is a value of the run's input, `{{contact.<field>}}` a field of the
//! run's contact (`input.contact_id`, which an event about a contact sets). A welcome mail
//! on `contact.created` is `"to": "{{contact.email}}"`, `"text": "Hello {{contact.name}}"`.
//!
//! The owner's definition is checked when it is written (an unknown placeholder is a 422);
//! a value missing when the step runs fails the step, naming the placeholder.

use serde_json::{Map, Value};

/// The contact fields a placeholder may name.
pub const CONTACT_FIELDS: &[&str] = &["name", "email", "phone", "company", "job_title"];
/// The longest input name a placeholder may name.
const MAX_INPUT_NAME: usize = 64;

/// A piece of a templated text.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// What is between `{{` and `}}`, trimmed.
    Placeholder(&'a str),
}

/// `text` cut into its literal parts and placeholders; a `{{` never closed is text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open + 2..].find("}}") else {
            break;
        };
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        pieces.push(Piece::Placeholder(rest[open + 2..open + 2 + close].trim()));
        rest = &rest[open + 2 + close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    pieces
}

/// What a placeholder names.
enum Source<'a> {
    Input(&'a str),
    Contact(&'a str),
}

fn source(placeholder: &str) -> Result<Source<'_>, String> {
    let valid_name = |name: &str| {
        (1..=MAX_INPUT_NAME).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    match placeholder.split_once('.') {
        Some(("input", name)) if valid_name(name) => Ok(Source::Input(name)),
        Some(("contact", field)) if CONTACT_FIELDS.contains(&field) => Ok(Source::Contact(field)),
        _ => Err(format!(
            "`{{{{{placeholder}}}}}` is not a placeholder: use {{{{input.<name>}}}} or {{{{contact.<field>}}}} ({})",
            CONTACT_FIELDS.join(", ")
        )),
    }
}

/// Whether every placeholder of `text` is one ([`source`]).
pub fn check(text: &str) -> Result<(), String> {
    for piece in pieces(text) {
        if let Piece::Placeholder(placeholder) = piece {
            source(placeholder)?;
        }
    }
    Ok(())
}

/// Whether `text` names a field of the run's contact.
pub fn names_contact(text: &str) -> bool {
    pieces(text)
        .iter()
        .any(|piece| matches!(piece, Piece::Placeholder(p) if p.starts_with("contact.")))
}

/// `text` with its placeholders filled from the run's `input` and its `contact`; the first
/// placeholder with no value is the error.
pub fn fill(text: &str, input: &Value, contact: Option<&Map<String, Value>>) -> Result<String, String> {
    let mut filled = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(literal) => filled.push_str(literal),
            Piece::Placeholder(placeholder) => {
                let value = match source(placeholder)? {
                    Source::Input(name) => input.get(name),
                    Source::Contact(field) => contact.and_then(|contact| contact.get(field)),
                };
                match value {
                    Some(Value::String(text)) if !text.is_empty() => filled.push_str(text),
                    Some(Value::Number(number)) => filled.push_str(&number.to_string()),
                    Some(Value::Bool(flag)) => filled.push_str(if *flag { "true" } else { "false" }),
                    _ => return Err(format!("`{{{{{placeholder}}}}}` has no value in this run")),
                }
            }
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_input_values_and_contact_fields() {
        assert!(check("Hello {{contact.name}}, order {{ input.order_id }}").is_ok());
        assert!(check("No placeholder, {{ never closed").is_ok());
        for bad in [
            "{{contact.password}}",
            "{{ user.name }}",
            "{{input.}}",
            "{{input.a-b}}",
            "{{}}",
        ] {
            let error = check(bad).expect_err(bad);
            assert!(error.contains("is not a placeholder"), "{bad}: {error}");
        }
    }

    #[test]
    fn filling_takes_the_values_of_the_run() {
        let contact = json!({"name": "Ada", "email": "ada@example.com"});
        let contact = contact.as_object();
        let input = json!({"order_id": 42, "note": "thanks"});
        assert_eq!(
            fill(
                "Hi {{contact.name}}: order {{input.order_id}}, {{ input.note }}.",
                &input,
                contact
            ),
            Ok("Hi Ada: order 42, thanks.".into())
        );
        assert_eq!(fill("{{contact.email}}", &input, contact), Ok("ada@example.com".into()));
        let missing = fill("{{contact.phone}}", &input, contact).expect_err("no phone");
        assert!(missing.contains("{{contact.phone}}"), "{missing}");
        assert!(fill("{{contact.name}}", &input, None).is_err());
        assert_eq!(fill("{{ open", &input, None), Ok("{{ open".into()));
        assert!(names_contact("to {{ contact.email }}"));
        assert!(!names_contact("{{input.email}}"));
    }
}
