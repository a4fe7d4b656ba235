//! The Space's suppression list: addresses that hard-bounced or complained. One item per
//! address, keyed by the address itself, so a send reads exactly the items of its
//! recipients (never a scan) and refuses the message if any is there. The owner lists the
//! list and removes an address from it (account API).

use futures::future::try_join_all;
use serde_json::{Map, Value, json};
use space_http::cursor::{self, Position};
use space_http::fields::format_datetime;
use space_http::keys;
use space_http::{ApiError, Engine};
use space_store::{Condition, Item, Query, StoreError, Write};

/// The collection of suppressed addresses, one item per address (its key).
pub const SUPPRESSIONS: &str = "mail_suppressions";
/// Why an address is on the list.
pub const REASONS: &[&str] = &["hard_bounce", "complaint"];
/// At most this many are listed on one page.
pub const PAGE: usize = 200;

fn partition(space: &str) -> String {
    keys::collection_partition(space, SUPPRESSIONS)
}

/// The addresses of `recipients` on the Space's list, in their order.
pub async fn suppressed(engine: &Engine, space: &str, recipients: &[&str]) -> Result<Vec<String>, StoreError> {
    let partition = partition(space);
    let found = try_join_all(recipients.iter().map(|address| engine.store().get(&partition, address))).await?;
    Ok(recipients
        .iter()
        .zip(found)
        .filter(|(_, item)| item.is_some())
        .map(|(address, _)| (*address).to_owned())
        .collect())
}

/// The write that puts `address` on the list (again, with the latest reason).
pub fn suppress(
    space: &str,
    address: &str,
    reason: &str,
    message_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Write {
    let mut body = Map::new();
    body.insert("address".into(), json!(address));
    body.insert("reason".into(), json!(reason));
    body.insert("message_id".into(), json!(message_id));
    body.insert("created_at".into(), json!(format_datetime(now)));
    Write::put(Item::new(partition(space), address, body), Condition::None)
}

/// One page of the list, by address, after the entry `cursor` (sealed by this list)
/// points at: the entries and the next page's cursor.
pub async fn list(
    engine: &Engine,
    space: &str,
    cursor: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let binding = partition(space);
    let after = match cursor {
        None => None,
        Some(text) => Some(
            cursor::open(engine.cursor_key(), &binding, text)
                .map_err(|error| ApiError::BadRequest(format!("Invalid cursor: {error}.")))?
                .last_sk,
        ),
    };
    let query = Query::partition(binding.clone()).limit(PAGE).after(after);
    let page = engine.store().query(query).await?;
    let data: Vec<Value> = page.items.iter().map(|item| Value::Object(item.body.clone())).collect();
    let next = match (&page.last_sk, page.items.last()) {
        (Some(_), Some(last)) => Some(cursor::seal(
            engine.cursor_key(),
            &binding,
            &Position {
                last_sk: last.sk.clone(),
                descending: false,
            },
        )),
        _ => None,
    };
    Ok((data, next))
}

/// Removes `address` from the list; `false` when it was not there.
pub async fn remove(engine: &Engine, space: &str, address: &str) -> Result<bool, StoreError> {
    match engine
        .store()
        .delete(&partition(space), address, Condition::Exists)
        .await
    {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed) => Ok(false),
        Err(error) => Err(error),
    }
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "address": {"type": "string"},
            "reason": {"type": "string", "enum": REASONS, "description": "`hard_bounce`: the address does not exist; `complaint`: its owner marked a message as spam."},
            "message_id": {"type": "string", "description": "The message that bounced or was complained about."},
            "created_at": {"type": "string", "format": "date-time"}
        },
        "required": ["address", "reason", "created_at"]
    })
}
