//! `Idempotency-Key` on POST: the first request's status and body are kept for 24 hours
//! and replayed to every retry; a retry with a different body is refused, a concurrent
//! duplicate gets 409. A record whose request died mid-way unlocks after a minute, so no
//! key stays "in progress" for good.
//!
//! The handler's first write carries the record too: it runs over a store that adds "this
//! key's change is applied" to that transaction. So a crash between the change and the
//! stored response cannot run the change twice: a retry finds the key applied and is told
//! which item it made, instead of making another.
//!
//! An answer that shows a secret once (a key's token, a signing secret) is never kept: a
//! retry of such a call is told what the first one made, and the secret stays shown once.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use space_store::hooked::{Hooked, WriteHook};
use space_store::{Condition, Item, Store, StoreError, Write};

use crate::error::ApiError;
use crate::keys;
use crate::operation::{Call, Operation, Reply};

/// How long a completed response is replayed.
pub const RETENTION_SECONDS: i64 = 24 * 3600;
/// How long an in-progress claim holds before another attempt may take over.
pub const LOCK_SECONDS: i64 = 60;
/// The longest `Idempotency-Key` taken.
pub const MAX_KEY_LENGTH: usize = 255;

/// Runs `call` at most once per idempotency key.
pub async fn run(op: &Operation, call: Call, idempotency_key: &str) -> Result<Reply, ApiError> {
    if idempotency_key.is_empty()
        || idempotency_key.len() > MAX_KEY_LENGTH
        || !idempotency_key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::BadRequest(format!(
            "The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters."
        )));
    }
    let engine = call.engine.clone();
    let store = engine.store();
    let owner = match &call.principal.space_id {
        Some(space) => keys::space_partition(space),
        None => keys::account_partition(&call.principal.account_id),
    };
    let key = keys::idempotency(&owner, &call.principal.key_id, idempotency_key);
    let fingerprint = fingerprint(op, &call);
    let now = engine.now().timestamp();

    let mut claimed = record("in_progress", &fingerprint, now + LOCK_SECONDS);
    if op.shows_secret {
        claimed.insert("shows_secret".into(), json!(true));
    }
    let claim = Item::new(key.pk.clone(), key.sk.clone(), claimed).expiring_at(now + RETENTION_SECONDS);
    let claimed_version = match store.put(claim.clone(), Condition::NotExists).await {
        Ok(()) => 1,
        Err(StoreError::ConditionFailed) => {
            let Some(existing) = store.get(&key.pk, &key.sk).await? else {
                // It expired between the two calls; a retry will claim it.
                return Err(ApiError::Conflict(
                    "The idempotent request is being retried; retry again.".into(),
                ));
            };
            if existing.body.get("fingerprint").and_then(Value::as_str) != Some(fingerprint.as_str()) {
                return Err(ApiError::invalid_field(
                    "Idempotency-Key",
                    "was already used with a different request; use a new key for a new request",
                ));
            }
            match existing.body.get("state").and_then(Value::as_str) {
                Some("completed") => return replay(&existing.body),
                Some("applied") => return Err(applied(&existing.body)),
                _ => {
                    let locked_until = existing.body.get("locked_until").and_then(Value::as_i64).unwrap_or(0);
                    if locked_until > now {
                        return Err(ApiError::Conflict(
                            "A request with this Idempotency-Key is still in progress; retry after it finishes.".into(),
                        ));
                    }
                    // The earlier attempt died; take over its claim.
                    let next = existing.version + 1;
                    let takeover = claim.clone().with_version(next);
                    match store.put(takeover, Condition::Version(existing.version)).await {
                        Ok(()) => next,
                        Err(StoreError::ConditionFailed) => {
                            return Err(ApiError::Conflict(
                                "A request with this Idempotency-Key is still in progress; retry after it finishes."
                                    .into(),
                            ));
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
        Err(error) => return Err(error.into()),
    };

    let marking = Arc::new(Hooked::new(
        engine.store_arc(),
        Marking {
            claim: claim.with_version(claimed_version),
            applied: Mutex::new(None),
        },
    ));
    let mut call = call;
    call.engine = engine.with_store(marking.clone());
    let outcome = (op.handler)(call).await;
    let applied_version = marking.hook().applied_version();
    // What the record is at now: the claim, or the claim marked applied by the change.
    let current = applied_version.unwrap_or(claimed_version);
    match &outcome {
        // The answer shows a secret once and is not kept: the record stays applied (a
        // retry is told what the call made), or is released when nothing was written.
        Ok(reply) if op.shows_secret => {
            let kept = match applied_version {
                // What a retry is told: the id the answer named, never the answer.
                Some(_) => {
                    let mut body = record("applied", &fingerprint, 0);
                    body.insert("shows_secret".into(), json!(true));
                    if let Some(id) = reply.body.as_ref().and_then(|b| b.get("id")) {
                        body.insert("applied_id".into(), id.clone());
                    }
                    let applied = Item::new(key.pk.clone(), key.sk.clone(), body)
                        .with_version(current + 1)
                        .expiring_at(now + RETENTION_SECONDS);
                    store.put(applied, Condition::Version(current)).await
                }
                None => store.delete(&key.pk, &key.sk, Condition::Version(current)).await,
            };
            if let Err(error) = kept {
                tracing::warn!(%error, "could not settle an idempotency record");
            }
        }
        Ok(reply) => {
            let mut body = record("completed", &fingerprint, 0);
            body.insert("status".into(), json!(reply.status.as_u16()));
            body.insert("body".into(), reply.body.clone().unwrap_or(Value::Null));
            body.insert("etag".into(), json!(reply.etag));
            let done = Item::new(key.pk.clone(), key.sk.clone(), body)
                .with_version(current + 1)
                .expiring_at(now + RETENTION_SECONDS);
            if let Err(error) = store.put(done, Condition::Version(current)).await {
                // The change happened and the record says so; only the replay is missing.
                tracing::warn!(%error, "could not record an idempotent response");
            }
        }
        // The change happened before the handler failed: the key stays applied.
        Err(_) if applied_version.is_some() => {}
        Err(_) => {
            // Nothing was done: release the key so that a corrected retry can run.
            if let Err(error) = store.delete(&key.pk, &key.sk, Condition::Version(current)).await {
                tracing::warn!(%error, "could not release an idempotency claim");
            }
        }
    }
    outcome
}

/// The answer to a retry whose first attempt changed something but did not record its
/// response (it crashed in between): running it again would do it twice.
fn applied(record: &Map<String, Value>) -> ApiError {
    let applied_id = record.get("applied_id").and_then(Value::as_str).map(str::to_owned);
    let made = applied_id
        .as_deref()
        .map(|id| format!(" (it wrote `{id}`)"))
        .unwrap_or_default();
    let message = if record.get("shows_secret").and_then(Value::as_bool) == Some(true) {
        format!(
            "A request with this Idempotency-Key was already applied{made}; its answer showed a secret once and \
             is not kept to be shown again."
        )
    } else {
        format!(
            "A request with this Idempotency-Key was already applied{made}, but its response was not recorded; \
             read the result instead of retrying."
        )
    };
    ApiError::AlreadyApplied { message, applied_id }
}

/// The store a keyed handler runs over: its first write also marks the key applied, in the
/// same transaction; later writes go through as they are.
struct Marking {
    /// The claim as this attempt wrote it.
    claim: Item,
    /// The record's version once the change carried the mark.
    applied: Mutex<Option<u64>>,
}

impl Marking {
    fn applied_version(&self) -> Option<u64> {
        *self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl WriteHook for Marking {
    /// `writes` with the mark appended, if none was written yet and there is room.
    async fn write(&self, inner: &dyn Store, mut writes: Vec<Write>, single: bool) -> Result<(), StoreError> {
        if self.applied_version().is_some() || writes.len() >= space_store::MAX_TRANSACTION_WRITES {
            return inner
                .transact(writes)
                .await
                .map_err(|error| single_error(error, single));
        }
        let made = writes.iter().find_map(|write| match write {
            Write::Put { item, .. } => Some(item.sk.clone()),
            _ => None,
        });
        let mut mark = self.claim.clone();
        mark.version = self.claim.version + 1;
        mark.body.insert("state".into(), json!("applied"));
        if let Some(made) = made {
            mark.body.insert("applied_id".into(), json!(made));
        }
        let marked_at = writes.len();
        writes.push(Write::put(mark, Condition::Version(self.claim.version)));
        match inner.transact(writes).await {
            Ok(()) => {
                *self.applied.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(self.claim.version + 1);
                Ok(())
            }
            // Another attempt took the key over (this one outlived its lock): write nothing.
            Err(StoreError::TransactionConflict { index }) if index == marked_at => Err(StoreError::Contention),
            Err(error) => Err(single_error(error, single)),
        }
    }

    /// A keyed handler's single put (a claim, a record) is a change like any other.
    fn hooks_single_writes(&self) -> bool {
        true
    }
}

/// A single put or delete reports its own condition as `ConditionFailed`.
fn single_error(error: StoreError, single: bool) -> StoreError {
    match error {
        StoreError::TransactionConflict { index: 0 } if single => StoreError::ConditionFailed,
        other => other,
    }
}

fn record(state: &str, fingerprint: &str, locked_until: i64) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("state".into(), json!(state));
    body.insert("fingerprint".into(), json!(fingerprint));
    body.insert("locked_until".into(), json!(locked_until));
    body
}

fn replay(record: &Map<String, Value>) -> Result<Reply, ApiError> {
    let status = record
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|code| StatusCode::from_u16(u16::try_from(code).ok()?).ok())
        .ok_or_else(|| ApiError::Internal("idempotency record without a status".into()))?;
    let body = record.get("body").filter(|b| !b.is_null()).cloned();
    let etag = record.get("etag").and_then(Value::as_str).map(str::to_owned);
    Ok(Reply {
        etag,
        ..match body {
            Some(body) => Reply::ok(body),
            None => Reply::no_content(),
        }
    }
    .with_status(status))
}

/// What makes two requests "the same": operation, parameters and body.
fn fingerprint(op: &Operation, call: &Call) -> String {
    let mut path: Vec<_> = call.path.iter().collect();
    path.sort();
    let mut query: Vec<_> = call.query.iter().collect();
    query.sort();
    let mut canonical = json!([op.name, path, query, call.body]);
    // An upload's bytes are part of the request too.
    if let (Some(raw), Some(parts)) = (&call.raw, canonical.as_array_mut()) {
        let digest = Sha256::digest(&raw.bytes);
        parts.push(json!([raw.content_type, hex::encode(digest)]));
    }
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}
