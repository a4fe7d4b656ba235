//! Invoices, read only. An agent answering "has Acme paid?" reads them; none can issue,
//! change or void one. The owner records them through the account API
//! (`/functions/v1/account-api/spaces/{space}/finance/invoices`); keys with `finance:read` list and
//! read them at `/finance/invoices`. Amounts are integers in the currency's minor unit.

use axum::Router;
use serde_json::{Value, json};
use space_auth::Domain;
use space_http::fields::{CURRENCY, CustomKind, Field, FieldKind, whole_number};
use space_http::owned::owner_kept;
use space_http::resource::{Filter, Resource};
use space_http::{Engine, Operation};

pub const STATUSES: &[&str] = &["draft", "open", "paid", "void", "uncollectible"];

/// Lines an invoice lists at most.
pub const MAX_LINES: usize = 100;

/// The largest amount in minor units: ten billion in a two-decimal currency.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

const AMOUNT: FieldKind = FieldKind::Integer {
    min: 0,
    max: MAX_AMOUNT,
};

/// One invoice.
pub fn invoices() -> Resource {
    Resource {
        domain: Domain::Finance,
        name: "finance_invoices",
        collection: "invoices",
        path: "/finance/invoices",
        item_param: "id",
        singular: "invoice",
        plural: "invoices",
        event_prefix: "invoice",
        id_prefix: "inv",
        parent: None,
        fields: vec![
            Field::new(
                "number",
                FieldKind::Text { max: 64 },
                "The invoice's number as printed; one invoice per number in a Space.",
            )
            .required(),
            Field::new("status", FieldKind::Enum(STATUSES), "Where it stands.").default(|| json!("open")),
            Field::new("currency", CURRENCY, "The currency of every amount on it.").required(),
            Field::new("total", AMOUNT, "What it asks for in all, in minor units (cents).").required(),
            Field::new("amount_paid", AMOUNT, "What has been paid of it, in minor units.").default(|| json!(0)),
            Field::new(
                "contact_id",
                FieldKind::Text { max: 100 },
                "The contact it is addressed to.",
            ),
            Field::new(
                "customer_name",
                FieldKind::Text { max: 200 },
                "Who it is addressed to, as printed.",
            ),
            Field::new("issued_at", FieldKind::DateTime, "When it was issued (RFC 3339)."),
            Field::new("due_at", FieldKind::DateTime, "When payment is due (RFC 3339)."),
            Field::new("paid_at", FieldKind::DateTime, "When it was paid in full (RFC 3339)."),
            Field::new(
                "lines",
                FieldKind::Custom(CustomKind {
                    schema: lines_schema,
                    check: check_lines,
                }),
                "What it charges for, line by line.",
            )
            .default(|| json!([])),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Lookup {
                param: "number",
                field: "number",
                kind: FieldKind::Text { max: 64 },
                unique: true,
            },
            Filter::Lookup {
                param: "contact_id",
                field: "contact_id",
                kind: FieldKind::Text { max: 100 },
                unique: false,
            },
            Filter::Before {
                param: "due_before",
                field: "due_at",
            },
        ],
        rules: None,
    }
}

fn lines_schema() -> Value {
    json!({
        "type": "array",
        "maxItems": MAX_LINES,
        "items": {
            "type": "object",
            "properties": {
                "description": {"type": "string", "minLength": 1, "maxLength": 500},
                "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                "unit_amount": {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT, "description": "The price of one, in minor units."}
            },
            "required": ["description", "quantity", "unit_amount"],
            "additionalProperties": false
        }
    })
}

fn check_lines(value: &Value) -> Result<Value, String> {
    let lines = value.as_array().ok_or("must be a list of lines")?;
    if lines.len() > MAX_LINES {
        return Err(format!("holds at most {MAX_LINES} lines"));
    }
    let mut checked = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let line = line
            .as_object()
            .ok_or_else(|| format!("line {index} must be an object"))?;
        if let Some(other) = line
            .keys()
            .find(|key| !matches!(key.as_str(), "description" | "quantity" | "unit_amount"))
        {
            return Err(format!("line {index} has an unknown field `{other}`"));
        }
        let description = line.get("description").and_then(Value::as_str).unwrap_or_default();
        if description.is_empty() || description.chars().count() > 500 {
            return Err(format!("line {index} needs a description of 1 to 500 characters"));
        }
        // 3 and 3.0 are the same integer to JSON Schema; stored as 3.
        let within = |name: &str, min: i64, max: i64| {
            line.get(name)
                .and_then(whole_number)
                .filter(|n| (min..=max).contains(n))
        };
        let quantity = within("quantity", 1, 1_000_000)
            .ok_or_else(|| format!("line {index} needs a whole quantity from 1 to 1,000,000"))?;
        let unit_amount = within("unit_amount", 0, MAX_AMOUNT)
            .ok_or_else(|| format!("line {index} needs a unit_amount in minor units, 0 or more"))?;
        checked.push(json!({"description": description, "quantity": quantity, "unit_amount": unit_amount}));
    }
    Ok(Value::Array(checked))
}

pub fn operations() -> Vec<Operation> {
    owner_kept(invoices())
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_take_whole_numbers_written_either_way() {
        let checked = check_lines(&json!([{"description": "Work", "quantity": 2.0, "unit_amount": 1500}])).unwrap();
        assert_eq!(
            checked,
            json!([{"description": "Work", "quantity": 2, "unit_amount": 1500}])
        );
        assert!(check_lines(&json!([{"description": "Work", "quantity": 2.5, "unit_amount": 1}])).is_err());
        assert!(check_lines(&json!([{"description": "Work", "quantity": 1, "unit_amount": -1}])).is_err());
    }
}
