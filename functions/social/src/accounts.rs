//! Social accounts: the Space's connections of kind `social`, as a space key sees them.
//! The owner connects and disconnects them (account API); a key lists them and may pause
//! one (`active: false`: it takes no new posts and its scheduled posts wait).

use serde_json::{Value, json};
use space_connections::{self as connections, Network};
use space_http::events::update_event_write;
use space_http::operation::{Call, Reply};
use space_http::{ApiError, FieldErrors};
use space_store::{Condition, Item, Write};

/// The connections' kind these accounts are.
pub const KIND: &str = "social";

/// The boards a Pinterest account pins to. The sandbox gives each account the same three;
/// a real provider would list the account's own.
pub const SANDBOX_BOARDS: &[(&str, &str)] = &[
    ("brd_ideas", "Ideas"),
    ("brd_products", "Products"),
    ("brd_inspiration", "Inspiration"),
];

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "network": {"type": "string", "enum": Network::NAMES},
            "name": {"type": "string"},
            "handle": {"type": "string"},
            "provider": {"type": "string"},
            "active": {"type": "boolean", "description": "An inactive account takes no new posts; its scheduled posts wait."},
            "created_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "network", "name", "active", "provider", "created_at", "version"]
    })
}

pub fn boards_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                "required": ["id", "name"]
            }}
        },
        "required": ["data"]
    })
}

pub fn activate_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"active": {"type": "boolean", "description": "`false` pauses the account."}},
        "required": ["active"],
        "additionalProperties": false
    })
}

fn view(item: &Item) -> Value {
    let mut shown = connections::render(item);
    if let Some(object) = shown.as_object_mut() {
        object.remove("kind");
    }
    shown
}

/// Social account `id` of the caller's Space, or 404.
pub async fn load(call: &Call, id: &str) -> Result<Item, ApiError> {
    connections::get(&call.engine, call.space_id()?, id)
        .await?
        .filter(|item| item.body.get("kind").and_then(Value::as_str) == Some(KIND))
        .ok_or_else(|| ApiError::not_found("social account", id))
}

/// The board ids of an account (empty but on Pinterest).
pub fn boards(account: &Item) -> Vec<&'static str> {
    match connections::network(account) {
        Some(Network::Pinterest) => SANDBOX_BOARDS.iter().map(|(id, _)| *id).collect(),
        _ => Vec::new(),
    }
}

pub async fn list(call: Call) -> Result<Reply, ApiError> {
    let items = connections::list(&call.engine, call.space_id()?, KIND).await?;
    let data: Vec<Value> = items.iter().map(view).collect();
    Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
}

pub async fn get(call: Call) -> Result<Reply, ApiError> {
    let item = load(&call, call.path_param("id")?).await?;
    Ok(Reply::ok(view(&item)).with_etag(item.version))
}

pub async fn list_boards(call: Call) -> Result<Reply, ApiError> {
    let item = load(&call, call.path_param("id")?).await?;
    let data: Vec<Value> = match connections::network(&item) {
        Some(Network::Pinterest) => SANDBOX_BOARDS
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Reply::ok(json!({"data": data})))
}

pub async fn activate(call: Call) -> Result<Reply, ApiError> {
    let body = call.body.as_object().cloned().unwrap_or_default();
    let mut errors = FieldErrors::new();
    for extra in body.keys().filter(|k| *k != "active") {
        errors.insert(extra.clone(), vec!["is not accepted; send only `active`".into()]);
    }
    let Some(active) = body.get("active").and_then(Value::as_bool) else {
        errors.insert("active".into(), vec!["must be true or false".into()]);
        return Err(ApiError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let current = load(&call, call.path_param("id")?).await?;
    call.check_if_match(current.version)?;
    if active && connections::owner_paused(&current) {
        return Err(ApiError::Conflict(format!(
            "Account `{}` is paused by the Space's owner: only the owner resumes it.",
            current.sk
        )));
    }
    let mut next = current.clone();
    next.body.insert("active".into(), json!(active));
    next.version += 1;
    let space = call.space_id()?;
    let event = update_event_write(
        space,
        "social_account.updated",
        &current.sk,
        &view(&current),
        view(&next),
        &call.principal,
        call.engine.now(),
    );
    let shown = view(&next);
    let version = next.version;
    call.engine
        .store()
        .transact(vec![Write::put(next, Condition::Version(current.version)), event])
        .await?;
    Ok(Reply::ok(shown).with_etag(version))
}
