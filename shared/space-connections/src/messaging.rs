//! Who carries messaging channels' messages out, shared by every family that sends on a
//! channel (the inbox's replies, messaging campaigns). One implementation per provider; `sandbox` (the default
//! locally and in tests) records what it sent, one record per message, reports delivery
//! and reading later as a real channel's receipts would, and fails every message to the
//! recipients the owner names (`POST …/connections/{id}/sandbox`, `fail_recipients`).

use crate::sandbox_lists;
use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::{Map, Value, json};
use space_http::Engine;
use space_http::fields::format_datetime;
use space_http::keys;
use space_store::{Condition, Item, StoreError, Write};

/// What the provider answered a send with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub provider_message_id: String,
    /// Receipts the provider will report, each after a wait: `delivered`, then `read`. A
    /// real provider reports them through its callbacks instead and lists none here.
    pub receipts: Vec<(&'static str, TimeDelta)>,
}

pub use crate::outbound::SendError;

/// Sends messages through one kind of provider. Asked twice for the same message (a run
/// that died after the provider answered), it must not send twice: the message's sort key
/// is its idempotency key (a real provider's `Idempotency-Key` / client reference).
#[async_trait]
pub trait MessagingProvider: Send + Sync {
    async fn send(&self, engine: &Engine, space: &str, connection: &Item, message: &Item) -> Result<Sent, SendError>;
}

/// The provider of a connection.
pub fn provider_for(connection: &Item) -> &'static dyn MessagingProvider {
    match connection.body.get("provider").and_then(Value::as_str) {
        // The only provider so far; the match is where real ones join.
        Some("sandbox") | None | Some(_) => &Sandbox,
    }
}

/// Records messages in the Space instead of reaching a channel.
pub struct Sandbox;

/// Where the sandbox keeps what it sent, one item per message.
pub const SENT: &str = "sandbox_messages";
/// When the sandbox's receipts come: delivered a few seconds after sending, read a minute
/// after that.
pub const DELIVERED_AFTER: TimeDelta = TimeDelta::seconds(2);
pub const READ_AFTER: TimeDelta = TimeDelta::seconds(60);

fn receipts() -> Vec<(&'static str, TimeDelta)> {
    vec![("delivered", DELIVERED_AFTER), ("read", DELIVERED_AFTER + READ_AFTER)]
}

/// Whether the owner told the sandbox to fail messages to `to`.
fn told_to_fail(connection: &Item, to: &str) -> bool {
    sandbox_lists(connection, "fail_recipients", to)
}

#[async_trait]
impl MessagingProvider for Sandbox {
    async fn send(&self, engine: &Engine, space: &str, connection: &Item, message: &Item) -> Result<Sent, SendError> {
        let key = keys::resource(&keys::collection_partition(space, SENT), &message.sk);
        if let Some(done) = engine.store().get(&key.pk, &key.sk).await? {
            return Ok(sent(&done));
        }
        let to = message.body.get("to").and_then(Value::as_str).unwrap_or_default();
        if told_to_fail(connection, to) {
            return Err(SendError::Permanent {
                code: "RECIPIENT_UNREACHABLE".into(),
                message: format!("The channel could not reach {to} (sandbox: told to fail this recipient)."),
            });
        }
        let mut body = Map::new();
        body.insert("message_id".into(), json!(message.sk));
        body.insert("connection_id".into(), json!(connection.sk));
        body.insert("provider_message_id".into(), json!(format!("sbx_{}", message.sk)));
        body.insert("to".into(), json!(to));
        body.insert("text".into(), message.body.get("text").cloned().unwrap_or(Value::Null));
        body.insert("sent_at".into(), json!(format_datetime(engine.now())));
        let record = Item::new(key.pk.clone(), key.sk.clone(), body);
        match engine
            .store()
            .transact(vec![Write::put(record.clone(), Condition::NotExists)])
            .await
        {
            Ok(()) => Ok(sent(&record)),
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
                let done = engine.store().get(&key.pk, &key.sk).await?;
                done.map(|done| sent(&done))
                    .ok_or_else(|| SendError::Transient("the sent record vanished".into()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

fn sent(record: &Item) -> Sent {
    Sent {
        provider_message_id: record
            .body
            .get("provider_message_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        receipts: receipts(),
    }
}

/// Where contacts' consent per channel is kept (`STOP` / `START`).
pub const CONSENT: &str = "inbox_consent";

/// The consent item of `contact_id` on `channel`.
pub fn consent_key(space: &str, contact_id: &str, channel: &str) -> keys::ItemKey {
    keys::resource(
        &keys::collection_partition(space, CONSENT),
        &format!("{contact_id}#{channel}"),
    )
}

/// Whether a contact opted out of `channel`: checked before anything is sent to them.
pub async fn opted_out(engine: &Engine, space: &str, contact_id: &str, channel: &str) -> Result<bool, StoreError> {
    let key = consent_key(space, contact_id, channel);
    Ok(engine
        .store()
        .get(&key.pk, &key.sk)
        .await?
        .and_then(|item| item.body.get("opted_out").and_then(Value::as_bool))
        .unwrap_or(false))
}
