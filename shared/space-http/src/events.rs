//! Events: every mutation appends one in the same store transaction as the change, so
//! the feed, webhooks and realtime never see a change without its event or the reverse.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_store::{Condition, Item, Write};

use crate::fields::format_datetime;
use crate::ids::new_id;
use crate::keys;

/// Events are kept this long for the feed and redelivery.
pub const EVENT_RETENTION_DAYS: i64 = 30;

/// The write that records `kind` (e.g. `contact.created`) about `subject`.
pub fn event_write(
    space: &str,
    kind: &str,
    subject_id: &str,
    data: Value,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Write {
    let id = new_id("evt");
    let key = keys::event(space, &id);
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("type".into(), json!(kind));
    body.insert("subject_id".into(), json!(subject_id));
    body.insert("data".into(), data);
    body.insert("key_id".into(), json!(principal.key_id));
    body.insert("created_at".into(), json!(format_datetime(now)));
    let expires = now.timestamp() + EVENT_RETENTION_DAYS * 24 * 3600;
    Write::put(
        Item::new(key.pk, key.sk, body).expiring_at(expires),
        Condition::NotExists,
    )
}

/// An event as the feed, webhooks and the realtime stream show it: who did it, to what,
/// and the resource as it was after the change.
pub fn render(item: &Item) -> Value {
    let text = |field: &str| item.body.get(field).and_then(Value::as_str).unwrap_or_default();
    let kind = text("type");
    let key_id = text("key_id");
    let actor = match key_id {
        "system" => json!({"kind": "system", "key_id": null}),
        "visitor" => json!({"kind": "visitor", "key_id": null}),
        id if id.starts_with("key_") => json!({"kind": "key", "key_id": id}),
        _ => json!({"kind": "owner", "key_id": null}),
    };
    let resource_type = kind.rsplit_once('.').map_or(kind, |(resource, _)| resource);
    json!({
        "id": item.body.get("id").cloned().unwrap_or_else(|| json!(item.sk)),
        "type": kind,
        "created_at": text("created_at"),
        "actor": actor,
        "resource": {"type": resource_type, "id": text("subject_id")},
        "data": {"object": item.body.get("data").cloned().unwrap_or(Value::Null)},
    })
}
