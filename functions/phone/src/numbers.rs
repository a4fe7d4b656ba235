//! The Space's phone numbers as a space key sees them: the connections of kind `phone`,
//! which the owner connects (account API) and a key only lists, to send from them.
//!
//! A number connected through AWS is one of the AWS account's origination numbers, which
//! every Space shares: it is claimed for one connection of one Space, so no other Space
//! can send as it.

use serde_json::{Map, Value, json};
use space_connections::{self as connections, CAPABILITIES, PHONE, PROVIDERS};
use space_http::operation::{Call, Reply};
use space_http::{ApiError, keys::ItemKey, references};
use space_store::{Condition, Item, Write};

/// Where the claims on AWS numbers live: one item per number (E.164), naming the Space
/// and the connection that hold it; one of the Space's references, so a purge frees it.
const AWS_NUMBERS: &str = "AWS_NUMBERS";

/// The provider whose numbers are claimed.
const AWS: &str = "aws";

/// The writes that claim the number of `connection` (a new connection) when it is sent
/// through AWS, to go into the connection's transaction (conditioned on nobody holding it,
/// so two racing get one), or a 409 naming who holds it.
pub async fn claim_aws_number(
    engine: &space_http::Engine,
    space: &str,
    connection: &Item,
) -> Result<Vec<Write>, ApiError> {
    let Some(number) = connection
        .body
        .get("number")
        .and_then(Value::as_str)
        .filter(|_| is_aws_number(connection))
    else {
        return Ok(Vec::new());
    };
    if let Some(claim) = engine.store().get(AWS_NUMBERS, number).await? {
        let held = |name: &str| {
            claim
                .body
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(ApiError::Conflict(if held("space_id") == space {
            format!(
                "{number} is connected to this Space already, as {}.",
                held("connection_id")
            )
        } else {
            format!("{number} is connected by another Space: an AWS number sends for one Space.")
        }));
    }
    let mut body = Map::new();
    body.insert("space_id".into(), json!(space));
    body.insert(
        "connection_id".into(),
        connection.body.get("id").cloned().unwrap_or_default(),
    );
    Ok(references::put(space, Item::new(AWS_NUMBERS, number, body), Condition::NotExists).to_vec())
}

/// Whether `connection` is a number sent through AWS (one [`claim_aws_number`] claimed).
pub fn is_aws_number(connection: &Item) -> bool {
    connection.body.get("kind").and_then(Value::as_str) == Some(PHONE)
        && connection.body.get("provider").and_then(Value::as_str) == Some(AWS)
}

/// The writes that free the number of `connection` (a number sent through AWS being
/// deleted), to go into the deletion's transaction.
pub fn release_aws_number(space: &str, connection: &Item) -> Option<[Write; 2]> {
    let number = connection.body.get("number").and_then(Value::as_str)?;
    is_aws_number(connection).then(|| {
        references::delete(
            space,
            &ItemKey {
                pk: AWS_NUMBERS.into(),
                sk: number.into(),
            },
        )
    })
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "What `POST /phone/sms` takes as `from_number_id`."},
            "number": {"type": "string", "description": "E.164."},
            "capabilities": {"type": "array", "items": {"type": "string", "enum": CAPABILITIES}},
            "name": {"type": "string"},
            "provider": {"type": "string", "enum": PROVIDERS},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "number", "capabilities", "name", "provider", "active", "created_at", "version"]
    })
}

fn view(item: &Item) -> Value {
    let mut shown = connections::render(item);
    if let Some(object) = shown.as_object_mut() {
        object.remove("kind");
    }
    shown
}

pub async fn list(call: Call) -> Result<Reply, ApiError> {
    let items = connections::list(&call.engine, call.space_id()?, PHONE).await?;
    let data: Vec<Value> = items.iter().map(view).collect();
    Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
}
