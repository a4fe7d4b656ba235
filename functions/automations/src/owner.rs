//! The owner's side: define, change and remove automations (the account API's routes call
//! these). A key never writes an automation: it reads them and runs them.
//!
//! Which key a run acts as: a manual run, the key that called `run`; an event or schedule
//! run, the automation's `run_as_key_id`, which those triggers require and which must be a
//! key of the Space. Either way each step is authorized, capped and approval-checked as that
//! key when it runs, and a key revoked meanwhile fails the step.

use chrono::{DateTime, Utc};

/// What the owner's create and change operations say beyond the schema.
pub const RULES: &str = "Steps run in order on the worker, each once. A manual run (`POST /automations/{id}/run` \
     with a space key) acts as the key that runs it; an `event` or `schedule` trigger needs `run_as_key_id`, a key of \
     the Space its runs act as. Each step is authorized, capped and approval-checked as that key when it runs. \
     `event` is one of the listed event types; `cron` has five fields (minute hour day month weekday) read in \
     `time_zone` (default UTC), so DST moves nothing on the wall clock; 1 to 20 steps; `wait` at most 30 days; \
     `call_webhook` takes an https URL and signs its POST like webhook deliveries, with the `webhook_secret` shown \
     once, in the answer that gave the automation its first `call_webhook` step. Anything else is 422, naming the field.";
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_http::events::{event_write, update_event_write};
use space_http::fields::{format_datetime, parse_datetime};
use space_http::ids::new_id;
use space_http::{ApiError, Engine, keys};
use space_store::{Condition, Item, StoreError, Write};

use crate::definition::{Definition, Trigger};
use crate::steps::secret_name;
use crate::triggers::{cancel_tick, registration, stored_fields, tick_job};
use crate::{ID_PREFIX, automations_partition};

/// When the automation's trigger last changed or it was last enabled, in milliseconds on
/// the clock event ids are minted with (kept inside, never shown): events from before then
/// do not start it, however far behind the trigger's place in the feed is.
pub const ARMED_AT: &str = "_armed_ms";

/// An automation as shown.
pub fn view(item: &Item) -> Value {
    space_http::resource::Resource::render(item)
}

/// The automation `id` of `space`, or 404.
pub async fn load(engine: &Engine, space: &str, id: &str) -> Result<Item, ApiError> {
    engine
        .store()
        .get(&automations_partition(space), id)
        .await?
        .ok_or_else(|| ApiError::not_found("automation", id))
}

async fn check(engine: &Engine, space: &str, body: &Value) -> Result<Definition, ApiError> {
    let definition = Definition::parse(body).map_err(ApiError::validation)?;
    // Plain http and loopback targets only where the server allows local webhooks.
    for (index, step) in definition.steps.iter().enumerate() {
        if let Some(url) = step.get("url").and_then(Value::as_str)
            && let Err(refused) = webhooks::guard::parse_target(url, engine.allow_local_webhooks())
        {
            return Err(ApiError::invalid_field(&format!("steps[{index}].url"), refused));
        }
    }
    if let Some(key) = &definition.run_as_key_id {
        let listed = keys::space_key(space, key);
        if engine.store().get(&listed.pk, &listed.sk).await?.is_none() {
            return Err(ApiError::invalid_field("run_as_key_id", "is not a key of this Space"));
        }
    }
    Ok(definition)
}

/// Gives the automation a signing secret for its `call_webhook` steps if it has none yet:
/// the secret, to be shown once.
async fn ensure_secret(
    engine: &Engine,
    space: &str,
    id: &str,
    definition: &Definition,
) -> Result<Option<String>, ApiError> {
    if !definition.calls_webhooks() {
        return Ok(None);
    }
    let keys = engine.signing_keys().ok_or_else(|| ApiError::Unavailable {
        message: "Webhook signing keys are not configured on this server.".into(),
        retry_after: 60,
    })?;
    if keys.get_key(space, &secret_name(id)).await?.is_some() {
        return Ok(None);
    }
    let secret = webhooks::signing::new_secret();
    keys.put_key(space, &secret_name(id), &webhooks::signing::stored(&secret, None))
        .await?;
    Ok(Some(secret))
}

/// The schedule's job and the registry entry a definition needs.
fn trigger_writes(space: &str, id: &str, definition: &Definition, next: Option<DateTime<Utc>>) -> Vec<Write> {
    let mut writes = Vec::new();
    if let Some(next) = next {
        writes.push(tick_job(space, id, next));
    }
    if matches!(definition.trigger, Trigger::Event(_)) && definition.enabled {
        writes.extend(registration(space));
    }
    writes
}

pub async fn create(engine: &Engine, owner: &Principal, space: &str, body: &Value) -> Result<Value, ApiError> {
    let definition = check(engine, space, body).await?;
    let id = new_id(ID_PREFIX);
    let now = engine.now();
    let secret = ensure_secret(engine, space, &id, &definition).await?;
    let next = definition.next_run(now);
    let stamp = json!(format_datetime(now));
    let mut fields = definition.fields();
    fields.insert("id".into(), json!(id));
    fields.insert("next_run_at".into(), json!(next.map(format_datetime)));
    fields.insert("created_at".into(), stamp.clone());
    fields.insert(ARMED_AT.into(), json!(space_http::ids::id_clock_now()));
    fields.insert("updated_at".into(), stamp);
    let item = Item::new(automations_partition(space), id.clone(), fields);
    let shown = view(&item);
    let mut writes = vec![
        Write::put(item, Condition::NotExists),
        event_write(space, "automation.created", &id, shown.clone(), owner, now),
    ];
    writes.extend(trigger_writes(space, &id, &definition, next));
    engine.store().transact(writes).await?;
    Ok(with_secret(shown, secret))
}

fn with_secret(mut shown: Value, secret: Option<String>) -> Value {
    if let (Some(secret), Some(object)) = (secret, shown.as_object_mut()) {
        object.insert("webhook_secret".into(), json!(secret));
    }
    shown
}

/// Applies a partial change; `if_match` is the version the caller read, if it said.
pub async fn update(
    engine: &Engine,
    owner: &Principal,
    space: &str,
    id: &str,
    patch: &Value,
    if_match: impl Fn(u64) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let Some(changes) = patch.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    let before = load(engine, space, id).await?;
    if_match(before.version)?;
    let mut merged: Map<String, Value> = stored_fields(&before);
    for (name, value) in changes {
        merged.insert(name.clone(), value.clone());
    }
    merged.retain(|_, value| !value.is_null());
    let definition = check(engine, space, &Value::Object(merged)).await?;
    let secret = ensure_secret(engine, space, id, &definition).await?;
    let now = engine.now();
    let next = definition.next_run(now);
    let mut body = before.body.clone();
    let was_enabled = before.body.get("enabled") != Some(&Value::Bool(false));
    let rearmed =
        Trigger::of(&before.body).as_ref() != Some(&definition.trigger) || (definition.enabled && !was_enabled);
    if rearmed {
        body.insert(ARMED_AT.into(), json!(space_http::ids::id_clock_now()));
    }
    body.extend(definition.fields());
    body.insert("next_run_at".into(), json!(next.map(format_datetime)));
    body.insert("updated_at".into(), json!(format_datetime(now)));
    let after = Item::new(before.pk.clone(), before.sk.clone(), body).with_version(before.version + 1);
    let mut writes = vec![Write::put(after.clone(), Condition::Version(before.version))];
    let previous = scheduled_at(&before);
    // The job due at the same time stays as it is (a transaction touches an item once).
    let moved = previous != next;
    if let Some(previous) = previous.filter(|_| moved) {
        writes.push(cancel_tick(id, previous));
    }
    writes.extend(trigger_writes(space, id, &definition, next.filter(|_| moved)));
    let (before_view, after_view) = (view(&before), view(&after));
    writes.push(update_event_write(
        space,
        "automation.updated",
        id,
        &before_view,
        after_view.clone(),
        owner,
        now,
    ));
    commit(engine, writes).await?;
    Ok(with_secret(after_view, secret))
}

fn scheduled_at(item: &Item) -> Option<DateTime<Utc>> {
    item.body
        .get("next_run_at")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
}

pub async fn delete(engine: &Engine, owner: &Principal, space: &str, id: &str) -> Result<(), ApiError> {
    let before = load(engine, space, id).await?;
    let now = engine.now();
    let mut writes = vec![
        Write::delete(before.pk.clone(), before.sk.clone(), Condition::Version(before.version)),
        event_write(space, "automation.deleted", id, view(&before), owner, now),
    ];
    if let Some(previous) = scheduled_at(&before) {
        writes.push(cancel_tick(id, previous));
    }
    commit(engine, writes).await?;
    if let Some(keys) = engine.signing_keys() {
        keys.delete_key(space, &secret_name(id)).await?;
    }
    Ok(())
}

async fn commit(engine: &Engine, writes: Vec<Write>) -> Result<(), ApiError> {
    match engine.store().transact(writes).await {
        Ok(()) => Ok(()),
        Err(StoreError::TransactionConflict { .. }) => Err(ApiError::Conflict(
            "The automation changed meanwhile; read it again.".into(),
        )),
        Err(error) if error.is_condition_failure() => Err(ApiError::Conflict(
            "The automation changed meanwhile; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}
