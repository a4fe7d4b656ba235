//! The Space's ads accounts as a space key sees them: the connections of kind `ads`, which
//! the owner connects (account API) and a key only lists, to draft campaigns on them.

use serde_json::{Value, json};
use space_connections::{self as connections, AD_NETWORKS, ADS, SANDBOX_PROVIDER};
use space_http::ApiError;
use space_http::operation::{Call, Reply};
use space_store::Item;

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "What a campaign takes as `account_id`."},
            "network": {"type": "string", "enum": AD_NETWORKS},
            "name": {"type": "string"},
            "provider": {"type": "string", "enum": [SANDBOX_PROVIDER]},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "network", "name", "provider", "active", "created_at", "version"]
    })
}

fn view(item: &Item) -> Value {
    let mut shown = connections::render(item);
    if let Some(object) = shown.as_object_mut() {
        object.remove("kind");
    }
    shown
}

fn is_ads(item: &Item) -> bool {
    item.body.get("kind").and_then(Value::as_str) == Some(ADS)
}

/// Ads account `id` of the Space: the connection, or why it is none.
pub async fn find(call: &Call, id: &str) -> Result<Result<Item, String>, ApiError> {
    let found = connections::get(&call.engine, call.space_id()?, id).await?;
    Ok(match found {
        Some(item) if is_ads(&item) => Ok(item),
        Some(item) => Err(format!(
            "`{id}` is a {} connection, not an ads account (GET /ads/accounts lists them)",
            item.body.get("kind").and_then(Value::as_str).unwrap_or("other")
        )),
        None => Err(format!(
            "there is no ads account `{id}` in this Space (GET /ads/accounts lists them)"
        )),
    })
}

pub async fn list(call: Call) -> Result<Reply, ApiError> {
    let items = connections::list(&call.engine, call.space_id()?, ADS).await?;
    let data: Vec<Value> = items.iter().map(view).collect();
    Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
}

pub async fn get(call: Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?;
    match find(&call, id).await? {
        Ok(item) => Ok(Reply::ok(view(&item)).with_etag(item.version)),
        Err(_) => Err(ApiError::not_found("ads account", id)),
    }
}
