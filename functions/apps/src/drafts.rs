//! The draft items of an app (its code and its schema): reading them, replacing one with
//! its event in one transaction, and removing everything an app leaves behind.

use serde_json::{Map, Value, json};
use space_http::events::event_write;
use space_http::fields::format_datetime;
use space_http::keys;
use space_http::operation::Call;
use space_http::resource::Resource;
use space_http::{ApiError, Engine};
use space_store::{Condition, Item, Query, StoreError, Write};

use crate::apps;

pub const CODE: &str = "code";
pub const SCHEMA: &str = "schema";
const WRITE_RETRIES: usize = 3;

/// A draft part of the app named by the call's `{id}`, after checking the app exists.
pub async fn load(call: &Call, part: &str) -> Result<Option<Item>, ApiError> {
    let id = call.path_param("id")?;
    apps().load(call, id).await?;
    let key = keys::app_draft(call.space_id()?, id, part);
    Ok(call.engine.store().get(&key.pk, &key.sk).await?)
}

/// Replaces a draft part with `body`, with the `app.<event>` event, honouring `If-Match`
/// against the part's own version. Answers the stored item.
pub async fn replace(
    call: &Call,
    part: &str,
    body: Map<String, Value>,
    event: &str,
    summary: Value,
) -> Result<Item, ApiError> {
    let space = call.space_id()?;
    let id = call.path_param("id")?;
    let app = keys::resource(&apps().partition(call)?, id);
    let key = keys::app_draft(space, id, part);
    for _ in 0..WRITE_RETRIES {
        let current = load(call, part).await?;
        let (version, condition) = match &current {
            Some(item) => {
                call.check_if_match(item.version)?;
                (item.version + 1, Condition::Version(item.version))
            }
            None if call.if_match.is_some() => {
                return Err(ApiError::PreconditionFailed(format!(
                    "The app has no {part} yet, so no version to match."
                )));
            }
            None => (1, Condition::NotExists),
        };
        let mut body = body.clone();
        body.insert("app_id".into(), json!(id));
        body.insert("updated_at".into(), json!(format_datetime(call.engine.now())));
        let item = Item::new(key.pk.clone(), key.sk.clone(), body).with_version(version);
        let writes = vec![
            Write::check(app.pk.clone(), app.sk.clone(), Condition::Exists),
            Write::put(item.clone(), condition),
            event_write(
                space,
                &format!("app.{event}"),
                id,
                summary.clone(),
                &call.principal,
                call.engine.now(),
            ),
        ];
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(item),
            Err(StoreError::TransactionConflict { index: 0 }) => return Err(ApiError::not_found("app", id)),
            Err(StoreError::TransactionConflict { index: 1 }) if call.if_match.is_some() => {
                return Err(ApiError::PreconditionFailed(format!(
                    "The app's {part} changed meanwhile; read it again."
                )));
            }
            Err(StoreError::TransactionConflict { index: 1 }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(format!(
        "The app's {part} kept changing while we wrote it; retry."
    )))
}

/// The stored body as the API shows it, with the item's version.
pub fn render(item: &Item) -> Value {
    Resource::render(item)
}

/// Best effort after an app is deleted: its drafts and versions can no longer be reached
/// (their partitions hang under the app's id, which is never reused), so a failure here
/// leaves only unreachable items, and is logged.
pub async fn remove_all(engine: &Engine, space: &str, app_id: &str) {
    let store = engine.store();
    let drafts: Vec<Write> = [CODE, SCHEMA]
        .iter()
        .map(|part| {
            let key = keys::app_draft(space, app_id, part);
            Write::delete(key.pk, key.sk, Condition::None)
        })
        .collect();
    if let Err(error) = store.transact(drafts).await {
        tracing::warn!(%error, app_id, "could not remove an app's drafts");
    }
    let partition = keys::app_versions_partition(space, app_id);
    let mut after = None;
    loop {
        let page = match store
            .query(Query::partition(partition.clone()).after(after).limit(50))
            .await
        {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, app_id, "could not list an app's versions for removal");
                break;
            }
        };
        let versions: Vec<Write> = page
            .items
            .iter()
            .map(|item| Write::delete(item.pk.clone(), item.sk.clone(), Condition::None))
            .collect();
        if !versions.is_empty()
            && let Err(error) = store.transact(versions).await
        {
            tracing::warn!(%error, app_id, "could not remove an app's versions");
        }
        match page.last_sk {
            Some(last) => after = Some(last),
            None => break,
        }
    }
}
