//! The Space's phone numbers as a space key sees them: the connections of kind `phone`,
//! which the owner connects (account API) and a key only lists, to send from them.

use serde_json::{Value, json};
use space_connections::{self as connections, CAPABILITIES, PHONE, PROVIDERS};
use space_http::ApiError;
use space_http::operation::{Call, Reply};
use space_store::Item;

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
