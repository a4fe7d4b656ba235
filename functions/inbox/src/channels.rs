//! The Space's messaging channels as a space key sees them: the connections of kind
//! `messaging`, which the owner connects (account API) and a key only lists, to read and
//! filter threads by channel.

use serde_json::{Value, json};
use space_connections::{self as connections, Channel, MESSAGING};
use space_http::ApiError;
use space_http::operation::{Call, Reply};
use space_store::Item;

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "What threads name as `channel_id`."},
            "channel": {"type": "string", "enum": Channel::NAMES},
            "name": {"type": "string"},
            "address": {"type": "string", "description": "The Space's own address on the channel."},
            "provider": {"type": "string"},
            "languages": {"type": "array", "items": {"type": "string"}, "description": "The languages its templates are sent in; absent: any."},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "channel", "name", "address", "provider", "active", "created_at", "version"]
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
    let items = connections::list(&call.engine, call.space_id()?, MESSAGING).await?;
    let data: Vec<Value> = items.iter().map(view).collect();
    Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
}
