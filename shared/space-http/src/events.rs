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
