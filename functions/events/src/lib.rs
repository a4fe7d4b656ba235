//! The events feed: `GET /events` and `GET /events/{id}`, read-only.
//!
//! Every mutation already appends its event in the change's own transaction
//! (`space_http::events`), so the feed is one partition read newest first, or oldest
//! first after a given event for consumers that poll for what happened since.

pub mod filter;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::events::{self, EVENT_ID_PREFIX};
use space_http::ids::has_shape;
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{list_partition, list_schema, page_params};
use space_http::{ApiError, Engine, Operation, Schema};
use space_store::SortRange;

use space_http::events::MAX_PATTERNS;

use crate::filter::FeedQuery;

pub fn operations() -> Vec<Operation> {
    let read = Access::Space(Scope::new(Domain::Events, Action::Read));
    let mut list_params = page_params();
    list_params.extend([
        Param::query(
            "types",
            json!({"type": "string", "examples": ["contact.*,page.published"]}),
            format!(
                "Only events of these types, comma-separated (at most {MAX_PATTERNS}): an exact type like \
                 `page.published`, or `contact.*` for every event about contacts, or `*` for all."
            ),
        ),
        Param::query(
            "resource_id",
            json!({"type": "string", "minLength": 1, "maxLength": 255}),
            "Only events about this resource: its id (a secret's name for secrets).",
        ),
        Param::query(
            "after",
            json!({"type": "string", "pattern": "^evt_[0-9A-Za-z]{26}$"}),
            "Only events strictly after this event id, oldest first: pass the id of the last event you \
             handled to get what happened since. An empty page means nothing new yet.",
        ),
    ]);
    vec![
        Operation::new(
            "events_list",
            Method::GET,
            "/events",
            read,
            Effect::Read,
            "List what changed in the Space (the events feed: type, resource, who did it), newest first; \
             pass `after` to poll for what happened since an event",
            handler(|call| async move { Ok(Reply::ok(list(&call).await?)) }),
        )
        .with_params(list_params)
        .with_description("With `after`, the feed lists oldest first: `order` can then only be `asc` (otherwise 422).")
        .answers(StatusCode::OK, || list_schema(events::schema())),
        Operation::new(
            "events_get",
            Method::GET,
            "/events/{id}",
            read,
            Effect::Read,
            "Get one event of the Space's feed",
            handler(|call| async move { Ok(Reply::ok(get(&call).await?)) }),
        )
        .with_params(vec![Param::path("id", "The event's id (`evt_…`).")])
        .answers(StatusCode::OK, Schema::lazy(events::schema).named("Event")),
    ]
}

/// One page of the feed. The engine reads on past its scan budget for a feed until it finds
/// a match or the end, so a rare filter never gets an empty page with a cursor, which a
/// client would take for the end.
pub async fn list(call: &Call) -> Result<Value, ApiError> {
    let query = FeedQuery::from_call(call)?;
    let partition = keys::events_partition(call.space_id()?);
    let mut listed = list_partition(call, &partition, SortRange::All, query.page.clone(), |item| {
        query.keeps(&item.body)
    })
    .await?;
    if let Some(data) = listed.get_mut("data").and_then(Value::as_array_mut) {
        for event in data.iter_mut() {
            if let Value::Object(stored) = event.take() {
                *event = events::render(stored);
            }
        }
    }
    Ok(listed)
}

/// One event of the caller's Space; any other id, or another Space's, is a 404.
pub async fn get(call: &Call) -> Result<Value, ApiError> {
    let id = call.path_param("id")?;
    let not_found = || ApiError::not_found("event", id);
    if !has_shape(id, EVENT_ID_PREFIX) {
        return Err(not_found());
    }
    let key = keys::event(call.space_id()?, id);
    let item = call.engine.store().get(&key.pk, &key.sk).await?.ok_or_else(not_found)?;
    Ok(events::render(item.body))
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
