//! Webhooks: HTTPS endpoints that receive the Space's events as they happen.
//!
//! An endpoint names the event types it wants (`contact.created`, `page.*`, `*`). Its
//! `whsec_…` signing secret is shown once, at creation (and at rotation), and kept in the
//! signing-key store, never in the table. Deliveries follow the Standard Webhooks
//! specification and run on the worker ([`delivery`]): a fan-out job per Space reads the
//! events feed after its checkpoint and enqueues one delivery per event and endpoint (a
//! delivery record written with the job, so a second fan-out of the same event adds
//! nothing); each delivery job signs and posts the event, logs the attempt and retries on
//! the Standard Webhooks schedule.

pub mod delivery;
pub mod guard;
pub mod signing;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::event_types;
use space_http::events::{MAX_PATTERNS, TypePattern};
use space_http::fields::{CustomKind, Field, FieldKind, WriteMode, validate};
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{BASE_FIELDS, PageRequest, Resource, list_partition, list_schema, page_params};
use space_http::{ApiError, Engine, Operation, Schema};
use space_store::{Condition, SortRange, Write};

pub use delivery::{DELIVER, Deliver, Fanout};

const URL: FieldKind = FieldKind::Custom(CustomKind {
    schema: || json!({"type": "string", "format": "uri", "maxLength": guard::MAX_URL_CHARS, "examples": ["https://example.com/hooks/space"]}),
    check: |value| {
        let text = value.as_str().ok_or("must be a string")?;
        guard::parse_target(text, true).map(|url| Value::String(url.to_string()))
    },
});

const PATTERNS: FieldKind = FieldKind::Custom(CustomKind {
    schema: || {
        json!({
            "type": "array",
            "items": {"title": "EventPattern", "type": "string", "enum": event_types::patterns(), "description": "An event type (`contact.created`), every type under a prefix (`contact.*`), or `*`: the types are listed in the API's event catalogue (llms-full.txt, docs/events.md)."},
            "minItems": 1,
            "maxItems": MAX_PATTERNS,
            "uniqueItems": true,
            "examples": [["contact.created", "page.*"]]
        })
    },
    check: check_patterns,
});

fn check_patterns(value: &Value) -> Result<Value, String> {
    let list = value
        .as_array()
        .ok_or("must be a list of event types, like [\"contact.created\", \"page.*\"]")?;
    if list.is_empty() || list.len() > MAX_PATTERNS {
        return Err(format!("must list 1 to {MAX_PATTERNS} event types"));
    }
    let mut seen = Vec::new();
    for item in list {
        let pattern = item.as_str().ok_or("must be strings")?;
        TypePattern::parse(pattern).map_err(|error| error.to_string())?;
        if !event_types::selects_any(pattern) {
            return Err(format!(
                "`{pattern}` selects no event type the API writes (a type like `contact.created`, a prefix like `contact.*`, or `*`)"
            ));
        }
        if seen.contains(&pattern) {
            return Err(format!("lists `{pattern}` twice"));
        }
        seen.push(pattern);
    }
    Ok(value.clone())
}

/// Whether an event of `kind` goes to an endpoint listing `patterns`.
pub fn wants(patterns: &Value, kind: &str) -> bool {
    patterns
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|pattern| TypePattern::parse(pattern).ok())
        .any(|pattern| pattern.matches(kind))
}

/// Webhook endpoints.
pub fn webhooks() -> Resource {
    Resource {
        domain: Domain::Webhooks,
        name: "webhooks",
        collection: "webhooks",
        path: "/webhooks",
        item_param: "id",
        singular: "webhook",
        plural: "webhooks",
        event_prefix: "webhook",
        id_prefix: "whk",
        parent: None,
        fields: vec![
            Field::new(
                "url",
                URL,
                "Where events are posted: an https URL on the public internet.",
            )
            .required(),
            Field::new(
                "events",
                PATTERNS,
                "The event types to receive: exact (`contact.created`), a family (`page.*`) or everything (`*`).",
            )
            .required(),
            Field::new(
                "enabled",
                FieldKind::Boolean,
                "Whether events are delivered; a 410 answer or five days of failures turn it off.",
            )
            .default(|| json!(true)),
            Field::new("description", FieldKind::Text { max: 500 }, "What the endpoint is for."),
        ],
        filters: vec![],
        rules: None,
    }
}

/// The signing secret's name in the signing-key store.
pub fn secret_name(webhook_id: &str) -> String {
    format!("webhook-{webhook_id}")
}

fn signing_keys(call: &Call) -> Result<&dyn space_store::secrets::SigningKeys, ApiError> {
    call.engine.signing_keys().ok_or_else(|| ApiError::Unavailable {
        message: "Webhook signing keys are not configured on this server.".into(),
        retry_after: 60,
    })
}

/// Plain `http` and loopback targets only where the server allows them (local development).
/// Endpoints a Space may have: each holds a signing secret in the vault and its deliveries
/// a share of the worker.
pub const MAX_PER_SPACE: usize = 25;

/// A webhook delivers the Space's events feed, so a key that sets one up must be able to
/// read that feed (`events:read`), as the feed and the realtime stream require.
fn reads_the_feed(call: &Call) -> Result<(), ApiError> {
    space_http::execute::authorize(&call.principal, Scope::new(Domain::Events, Action::Read), Effect::Read).map_err(
        |_| {
            ApiError::Forbidden(
                "A webhook delivers the Space's events feed: the key needs `events:read` as well as \
                 `webhooks:write`."
                    .into(),
            )
        },
    )
}

/// 409 once the Space has [`MAX_PER_SPACE`] endpoints.
async fn room_for_one(call: &Call) -> Result<(), ApiError> {
    let partition = webhooks().partition(call)?;
    let page = call
        .engine
        .store()
        .query(space_store::Query::partition(&partition).limit(MAX_PER_SPACE))
        .await?;
    if page.items.len() >= MAX_PER_SPACE {
        return Err(ApiError::Conflict(format!(
            "A Space has at most {MAX_PER_SPACE} webhook endpoints; delete one, or list more event types on one."
        )));
    }
    Ok(())
}

fn check_target(call: &Call) -> Result<(), ApiError> {
    if let Some(url) = call.body.get("url").and_then(Value::as_str) {
        guard::parse_target(url, call.engine.allow_local_webhooks())
            .map_err(|message| ApiError::invalid_field("url", message))?;
    }
    Ok(())
}

fn item_schema() -> Value {
    webhooks().item_schema()
}

fn created_schema() -> Value {
    let mut schema = item_schema();
    schema["properties"]["secret"] = json!({
        "type": "string",
        "readOnly": true,
        "description": "The signing secret (`whsec_…`), shown only here: verify deliveries with it."
    });
    if let Some(required) = schema["required"].as_array_mut() {
        required.push(json!("secret"));
    }
    schema
}

async fn create(call: &Call) -> Result<Reply, ApiError> {
    reads_the_feed(call)?;
    check_target(call)?;
    room_for_one(call).await?;
    let resource = webhooks();
    let (item, mut writes) = resource
        .prepare_create(call, &call.body)
        .map_err(ApiError::validation)?;
    let space = call.space_id()?.to_owned();
    let secret = signing::new_secret();
    let keys = signing_keys(call)?;
    keys.put_key(&space, &secret_name(&item.sk), &signing::stored(&secret, None))
        .await?;
    writes.extend(delivery::registration(&space));
    if let Err(error) = call.engine.store().transact(writes).await {
        let _ = keys.delete_key(&space, &secret_name(&item.sk)).await;
        return Err(error.into());
    }
    let mut shown = Resource::render(&item);
    shown["secret"] = json!(secret);
    Ok(Reply::created(shown).with_etag(item.version))
}

/// PATCH and PUT: the target is checked as on create, and turning an endpoint on again
/// starts its failure streak afresh (a streak from before would switch it off at once).
async fn write(call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
    reads_the_feed(call)?;
    check_target(call)?;
    let validated = validate(&webhooks().fields, &call.body, mode).map_err(ApiError::validation)?;
    let id = call.path_param("id")?.to_owned();
    let item = webhooks()
        .modify(call, &id, |body| {
            validated.apply(body, mode, &BASE_FIELDS);
            if body.get("enabled") == Some(&json!(true)) {
                body.remove("failing_since");
                body.remove("disabled_reason");
            }
            Ok(())
        })
        .await?;
    Ok(Reply::ok(Resource::render(&item)).with_etag(item.version))
}

/// How long a rotation holds its webhook's secret before another may take it (a request
/// that died mid-way leaves the hold to lapse).
const ROTATION_HOLD_SECONDS: i64 = 60;

/// Rotates under a hold on the webhook's secret: the vault has no compare-and-swap, so two
/// rotations at once would each hand out a secret and keep only one; the second is 409.
async fn rotate(call: &Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    let store = call.engine.store();
    let hold = space_http::keys::unique(&space, "webhook-rotation", &id);
    let held = space_store::Item::new(hold.pk.clone(), hold.sk.clone(), serde_json::Map::new())
        .expiring_at(call.engine.now().timestamp() + ROTATION_HOLD_SECONDS);
    match store.put(held, Condition::NotExists).await {
        Ok(()) => {}
        Err(error) if error.is_condition_failure() => {
            return Err(ApiError::Conflict(
                "Another request is rotating this webhook's secret; retry in a moment.".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let rotated = rotate_held(call, &space, &id).await;
    if let Err(error) = store.delete(&hold.pk, &hold.sk, Condition::None).await {
        tracing::warn!(%error, "could not release a webhook's rotation hold");
    }
    rotated
}

async fn rotate_held(call: &Call, space: &str, id: &str) -> Result<Reply, ApiError> {
    let (space, id) = (space.to_owned(), id.to_owned());
    let webhook = webhooks().load(call, &id).await?;
    let keys = signing_keys(call)?;
    let current = keys.get_key(&space, &secret_name(&id)).await?;
    let previous = current.as_deref().and_then(signing::current);
    let overlapping = previous.is_some();
    let secret = signing::new_secret();
    let until = call.engine.now() + signing::OVERLAP;
    keys.put_key(
        &space,
        &secret_name(&id),
        &signing::stored(&secret, previous.map(|p| (p, until))),
    )
    .await?;
    let event = webhooks().event(call, "secret_rotated", &webhook)?;
    call.engine.store().transact(vec![event]).await?;
    Ok(Reply::ok(json!({
        "id": id,
        "secret": secret,
        "previous_valid_until": overlapping.then(|| space_http::fields::format_datetime(until)),
    })))
}

async fn delete(call: &Call, inner: space_http::operation::Handler) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    let reply = inner(call.clone()).await?;
    // After the item is gone nothing signs with the key; a failure here leaves an unused key.
    if let Ok(keys) = signing_keys(call) {
        let _ = keys.delete_key(&space, &secret_name(&id)).await;
    }
    Ok(reply)
}

async fn deliveries(call: &Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    webhooks().load(call, &id).await?;
    let page = PageRequest::parse(call)?;
    let partition = delivery::deliveries_partition(call.space_id()?, &id);
    Ok(Reply::ok(
        list_partition(call, &partition, SortRange::All, page, |_| true).await?,
    ))
}

async fn retry(call: &Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let delivery_id = call.path_param("delivery_id")?.to_owned();
    webhooks().load(call, &id).await?;
    let space = call.space_id()?.to_owned();
    let record = delivery::deliveries_partition(&space, &id);
    let found = call
        .engine
        .store()
        .get(&record, &delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("delivery", &delivery_id))?;
    let job = delivery::deliver_job(&space, &id, &delivery_id, call.engine.now());
    call.engine
        .store()
        .transact(vec![Write::check(found.pk, found.sk, Condition::Exists), job])
        .await?;
    Ok(Reply::accepted(json!({"id": delivery_id, "status": "queued"})))
}

async fn test(call: &Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let webhook = webhooks().load(call, &id).await?;
    let space = call.space_id()?.to_owned();
    let now = call.engine.now();
    let event = space_http::events::event_write(
        &space,
        "webhook.test",
        &id,
        json!({"message": "A test event from the Space API.", "webhook_id": id}),
        &call.principal,
        now,
    );
    let Write::Put {
        item: ref event_item, ..
    } = event
    else {
        return Err(ApiError::Internal("an event write that is not a put".into()));
    };
    let event_id = event_item.sk.clone();
    let mut writes = vec![Write::check(webhook.pk, webhook.sk, Condition::Exists), event.clone()];
    writes.extend(delivery::new_delivery(&space, &id, &event_id, "webhook.test", now));
    call.engine.store().transact(writes).await?;
    Ok(Reply::accepted(json!({"id": event_id, "status": "queued"})))
}

fn delivery_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The event's id, sent as `webhook-id`."},
            "event_type": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "delivered", "retrying", "failed", "skipped"]},
            "attempt_count": {"type": "integer", "minimum": 0, "description": "Every attempt made, manual retries included."},
            "attempts": {"type": "array", "description": "The latest 20 attempts, oldest first.", "items": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "status": {"type": ["integer", "null"], "description": "The HTTP status the endpoint answered, if it answered."},
                    "duration_ms": {"type": "integer"},
                    "error": {"type": ["string", "null"]}
                },
                "required": ["at", "status", "duration_ms", "error"]
            }},
            "next_retry_at": {"type": ["string", "null"], "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "event_type", "status", "attempts", "created_at", "version"]
    })
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = webhooks().operations();
    for operation in &mut operations {
        match operation.name.as_str() {
            "webhooks_create" => {
                operation.summary = "Add a webhook endpoint; the answer carries its signing secret, shown once".into();
                operation.handler = handler(|call| async move { create(&call).await });
                operation.response = Some(Schema::lazy(created_schema).named("WebhookCreated"));
                operation.shows_secret = true;
            }
            "webhooks_update" => {
                operation.handler = handler(|call| async move { write(&call, WriteMode::Patch).await })
            }
            "webhooks_replace" => {
                operation.handler = handler(|call| async move { write(&call, WriteMode::Replace).await });
            }
            "webhooks_delete" => {
                let inner = operation.handler.clone();
                operation.handler = handler(move |call| {
                    let inner = inner.clone();
                    async move { delete(&call, inner).await }
                });
            }
            _ => {}
        }
    }
    space_http::operation::describe(
        &mut operations,
        &["webhooks_create", "webhooks_replace", "webhooks_update"],
        "The URL must reach a public address over https: no loopback, private network or metadata address \
         (checked again after DNS when sending); otherwise 422. The key needs `events:read` too (403 without): \
         an endpoint receives the Space's events feed.",
    );
    space_http::operation::describe(
        &mut operations,
        &["webhooks_create"],
        "A Space has at most 25 endpoints (409 past that).",
    );
    let write = || Access::Space(Scope::new(Domain::Webhooks, Action::Write));
    let id = || Param::path("id", "The webhook's id.");
    operations.push(
        Operation::new(
            "webhooks_rotate_secret",
            Method::POST,
            "/webhooks/{id}/rotate-secret",
            write(),
            Effect::Update,
            "Replace a webhook's signing secret; deliveries carry both signatures for 24 hours",
            handler(|call| async move { rotate(&call).await }),
        )
        .showing_secret()
        .with_params(vec![id()])
        .answers(
            StatusCode::OK,
            json!({
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "secret": {"type": "string", "description": "The new `whsec_…` secret, shown only here."},
                    "previous_valid_until": {"type": ["string", "null"], "format": "date-time"}
                },
                "required": ["id", "secret", "previous_valid_until"]
            }),
        ),
    );
    let mut list_params = vec![id()];
    list_params.extend(page_params());
    operations.push(
        Operation::new(
            "webhooks_deliveries_list",
            Method::GET,
            "/webhooks/{id}/deliveries",
            Access::Space(Scope::new(Domain::Webhooks, Action::Read)),
            Effect::Read,
            "List a webhook's deliveries, newest first, each with its attempts (time, HTTP status, duration, error) and next retry",
            handler(|call| async move { deliveries(&call).await }),
        )
        .with_params(list_params)
        .answers(StatusCode::OK, Schema::lazy(|| list_schema(delivery_schema())).named("WebhookDeliveryList")),
    );
    let queued = || {
        json!({
            "type": "object",
            "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["queued"]}},
            "required": ["id", "status"]
        })
    };
    operations.push(
        Operation::new(
            "webhooks_deliveries_retry",
            Method::POST,
            "/webhooks/{id}/deliveries/{delivery_id}/retry",
            write(),
            Effect::Update,
            "Send one delivery again now",
            handler(|call| async move { retry(&call).await }),
        )
        .with_params(vec![
            id(),
            Param::path("delivery_id", "The delivery's id (the event's id)."),
        ])
        .answers(StatusCode::ACCEPTED, queued()),
    );
    operations.push(
        Operation::new(
            "webhooks_test",
            Method::POST,
            "/webhooks/{id}/test",
            write(),
            Effect::Update,
            "Send a `webhook.test` event to this endpoint alone",
            handler(|call| async move { test(&call).await }),
        )
        .with_params(vec![id()])
        .answers(StatusCode::ACCEPTED, queued()),
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE_AND_SIGNING_KEYS;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_event_types() {
        let patterns = json!(["contact.created", "page.*"]);
        assert!(wants(&patterns, "contact.created"));
        assert!(!wants(&patterns, "contact.updated"));
        assert!(wants(&patterns, "page.published"));
        assert!(!wants(&patterns, "pages.published"));
        assert!(!wants(&patterns, "page"));
        assert!(wants(&json!(["*"]), "anything.at_all"));
        assert!(check_patterns(&json!(["contact.created", "page.*", "*"])).is_ok());
        for bad in [
            json!([]),
            json!(["Contact"]),
            json!(["a..b"]),
            json!(["a.b", "a.b"]),
            json!("a.b"),
            json!([1]),
        ] {
            assert!(check_patterns(&bad).is_err(), "{bad}");
        }
    }
}
