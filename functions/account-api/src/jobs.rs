//! Later work of the account API, run by the worker: the warning a Space gets before one of
//! its keys expires, so that whoever runs the agent can mint a new key in time.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_http::Engine;
use space_http::events::event_write;
use space_http::fields::format_datetime;
use space_http::keys;
use space_store::{Condition, Item, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

/// The job kind, and the event it writes.
pub const KEY_EXPIRING: &str = "key.expiring";

/// How long before a key expires its Space hears of it.
pub fn warning() -> TimeDelta {
    TimeDelta::days(7)
}

/// The job that warns `space` before `key_id` expires (at once when that is sooner than
/// the warning period), enqueued in the transaction that mints the key.
pub fn key_expiring_job(space: &str, key_id: &str, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Write {
    NewJob::new(KEY_EXPIRING, json!({"space_id": space, "key_id": key_id}), now)
        .at((expires_at - warning()).max(now))
        .named(format!("key-expiring-{key_id}"))
        .write()
}

/// Writes `key.expiring` once for a key still listed in its Space: a marker item written
/// with the event makes a second run a no-op, and a key revoked meanwhile gets no warning.
pub struct KeyExpiring;

#[async_trait]
impl Handler for KeyExpiring {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, key_id) = (field("space_id")?, field("key_id")?);
        let listed = keys::space_key(space, key_id);
        // The listing's version also moves with each use of the key (`last_used_at`): a
        // key in use is read again, a few times, rather than taken for revoked.
        for _ in 0..LISTING_READS {
            let Some(key) = engine.store().get(&listed.pk, &listed.sk).await? else {
                return Ok(Outcome::Done);
            };
            let now = engine.now();
            let marker = keys::unique(space, "key-expiring", key_id);
            let mut warned = Map::new();
            warned.insert("at".into(), json!(format_datetime(now)));
            let data = json!({
                "id": key_id,
                "name": key.body.get("name"),
                "prefix": key.body.get("prefix"),
                "expires_at": key.body.get("expires_at"),
            });
            let writes = vec![
                Write::put(Item::new(marker.pk, marker.sk, warned), Condition::NotExists),
                Write::check(listed.pk.clone(), listed.sk.clone(), Condition::Version(key.version)),
                event_write(space, KEY_EXPIRING, key_id, data, &Principal::system(), now),
            ];
            match engine.store().transact(writes).await {
                // Warned already.
                Ok(()) | Err(StoreError::TransactionConflict { index: 0 }) => return Ok(Outcome::Done),
                // The listing moved since it was read (used, or revoked): read it again.
                Err(StoreError::TransactionConflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(JobError::Retry("the key's listing kept changing".into()))
    }
}

/// How many times the expiry warning reads a listing that moves under it before the job
/// tries again later.
const LISTING_READS: usize = 5;
