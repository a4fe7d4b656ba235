//! Approvals on live actions. A key minted with `approval_required` naming a scope does not
//! run that scope's live actions (publish, send, reply): the call is written down as a
//! pending approval, in one transaction with its `approval.requested` event, and answered
//! 202. The owner approves or rejects it through the account API; an approved call runs
//! later on the worker as the key, once (its approval id is its idempotency key), and the
//! approval records what it answered.
//!
//! The request is kept as REST or MCP handed it to the handler: path parameters, query and
//! JSON body. Live actions take no raw body (a catalogue test holds them to it). A live
//! action whose item's content is what goes live is held to that item's version
//! ([`Operation::approves_version`]): the owner approves what the key asked about.

use serde_json::{Map, Value, json};
use space_store::{Condition, Item, Write};

use crate::error::ApiError;
use crate::events::event_write;
use crate::fields::format_datetime;
use crate::ids::new_id;
use crate::keys;
use crate::operation::{Call, IfMatch, Operation, Reply};

/// The collection approvals are kept in, per Space.
pub const COLLECTION: &str = "approvals";

/// Where an approval lives.
pub fn key(space: &str, id: &str) -> keys::ItemKey {
    keys::resource(&keys::collection_partition(space, COLLECTION), id)
}

/// What an approval-bound call answers, 202, over REST and as MCP's structured content.
pub fn pending_schema() -> Value {
    json!({
        "type": "object",
        "description": "The call waits for the Space owner's approval; nothing was done yet. Once approved it runs once, as this key; `approval.performed` or `approval.failed` tells what it answered.",
        "required": ["approval_id", "status", "operation", "created_at"],
        "properties": {
            "approval_id": {"type": "string"},
            "status": {"type": "string", "enum": ["pending"]},
            "operation": {"type": "string", "description": "The operation that waits."},
            "created_at": {"type": "string", "format": "date-time"}
        }
    })
}

/// What an operation that may wait for approval says of it.
pub fn rule(scope: &str) -> String {
    format!(
        "With a key whose `approval_required` names `{scope}`, nothing is done at once: the call answers 202 with \
         a pending approval, and runs once after the Space owner approves it."
    )
}

/// The path the call was made on, its parameters filled in.
fn concrete_path(op: &Operation, call: &Call) -> String {
    op.full_path()
        .split('/')
        .map(|segment| {
            segment
                .strip_prefix('{')
                .and_then(|name| name.strip_suffix('}'))
                .and_then(|name| call.path.get(name))
                .map_or(segment, String::as_str)
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes `call` down as a pending approval and answers 202.
pub async fn request(op: &Operation, call: Call, scope: &str) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    let id = new_id("apr");
    let now = call.engine.now();
    let created_at = format_datetime(now);
    let held_to = match (call.if_match, &op.approves_version) {
        (Some(IfMatch::Version(version)), _) => Some(version),
        (_, Some(read)) => Some(read(call.clone()).await?),
        _ => None,
    };
    let mut request = json!({
        "path": call.path,
        "query": call.query,
        "body": call.body,
    });
    if let Some(version) = held_to {
        request["if_match"] = json!(version);
    }
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("status".into(), json!("pending"));
    body.insert("operation".into(), json!(op.name));
    body.insert("method".into(), json!(op.method.as_str()));
    body.insert("path".into(), json!(concrete_path(op, &call)));
    body.insert("scope".into(), json!(scope));
    body.insert("key_id".into(), json!(call.principal.key_id));
    body.insert("request".into(), request);
    body.insert("created_at".into(), json!(created_at));
    body.insert("decided_at".into(), Value::Null);
    body.insert("reason".into(), Value::Null);
    body.insert("result".into(), Value::Null);
    let at = key(&space, &id);
    let shown = Value::Object(body.clone());
    call.engine
        .store()
        .transact(vec![
            Write::put(Item::new(at.pk, at.sk, body), Condition::NotExists),
            event_write(&space, "approval.requested", &id, shown, &call.principal, now),
        ])
        .await?;
    Ok(Reply::accepted(json!({
        "approval_id": id,
        "status": "pending",
        "operation": op.name,
        "created_at": created_at,
    })))
}

/// The call an approval holds, made again by `principal` (the key, read afresh).
pub fn replay(approval: &Map<String, Value>, engine: crate::Engine, principal: space_auth::Principal) -> Call {
    let request = approval.get("request");
    let strings = |name: &str| {
        request
            .and_then(|r| r.get(name))
            .and_then(Value::as_object)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut call = Call::new(engine, principal);
    call.path = strings("path");
    call.query = strings("query");
    call.body = request.and_then(|r| r.get("body")).cloned().unwrap_or(Value::Null);
    call.if_match = request
        .and_then(|r| r.get("if_match"))
        .and_then(Value::as_u64)
        .map(IfMatch::Version);
    call
}

/// The space key `key_id` of `space` as a principal, read afresh: a call made later as the
/// key (an approved call, an automation's step) fails if it was revoked, expired or deleted
/// meanwhile.
pub async fn key_principal(
    engine: &crate::Engine,
    space: &str,
    key_id: &str,
) -> Result<space_auth::Principal, ApiError> {
    use space_auth::{KeyRecord, PrincipalKind, TokenHash};
    let gone = || ApiError::Forbidden("The key was revoked or has expired.".into());
    let listed = keys::space_key(space, key_id);
    let Some(item) = engine.store().get(&listed.pk, &listed.sk).await? else {
        return Err(gone());
    };
    let hash = item
        .body
        .get("token_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Internal("key list item without a token hash".into()))?;
    let lookup = keys::key_lookup(&TokenHash::from_stored(hash.to_owned()));
    let record = engine.store().get(&lookup.pk, &lookup.sk).await?.ok_or_else(gone)?;
    let record: KeyRecord = serde_json::from_value(Value::Object(record.body))
        .map_err(|error| ApiError::Internal(format!("a key record does not read: {error}")))?;
    record
        .authenticate(PrincipalKind::Space, engine.now())
        .map_err(|_| gone())
}

/// The output an approvable operation's MCP tool declares: its own answer, or a pending
/// approval.
pub fn or_pending(response: &Map<String, Value>) -> Map<String, Value> {
    let mut either = Map::new();
    either.insert("type".into(), json!("object"));
    either.insert("anyOf".into(), json!([response, pending_schema()]));
    either
}
