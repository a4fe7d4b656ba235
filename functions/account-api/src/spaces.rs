//! Accounts and their Spaces. A Space is stored twice in one transaction: under its
//! account (for listing) and under itself (for reads by id).
//!
//! Deleting a Space removes the record under itself at once (every public route and every
//! new key checks that record) and marks the one under its account `deleting`, which the
//! owner sees until the purge ([`crate::purge`]) has removed everything and then that record.

use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_http::events::event_write;
use space_http::fields::format_datetime;
use space_http::ids::new_id;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{PageRequest, Resource, list_partition};
use space_http::{ApiError, Engine, FieldErrors, keys};
use space_store::{Condition, Item, SortRange, StoreError, Write};

/// The longest Space name.
pub const MAX_NAME_CHARS: usize = 200;

pub fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "status", "created_at", "updated_at", "version"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {
                "type": "string",
                "enum": [ACTIVE, DELETING],
                "description": "`deleting` from the deletion until every item, blob and secret of the Space is removed; then the Space is gone (404)."
            },
            "deleted_at": {"type": "string", "format": "date-time", "description": "When the Space was deleted (only while `deleting`)."},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        }
    })
}

/// Creates an account record; accounts are made by `spacectl`, not over the API.
pub async fn create_account(engine: &Engine, name: &str) -> Result<String, ApiError> {
    let id = new_id("acc");
    let key = keys::account_meta(&id);
    let now = format_datetime(engine.now());
    let body = object([("id", json!(id)), ("name", json!(name)), ("created_at", json!(now))]);
    engine
        .store()
        .put(Item::new(key.pk, key.sk, body), Condition::NotExists)
        .await?;
    Ok(id)
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn parse_name(body: &Value) -> Result<String, ApiError> {
    let mut errors = FieldErrors::new();
    if let Some(object) = body.as_object() {
        for extra in object.keys().filter(|k| *k != "name") {
            errors.insert(
                extra.clone(),
                vec!["is not a field of a Space; send only `name`".into()],
            );
        }
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .and_then(|raw| space_http::fields::label(raw, MAX_NAME_CHARS))
        .unwrap_or("");
    if name.is_empty() {
        errors.insert(
            "name".into(),
            vec!["The name field is required: 1 to 200 printable characters.".into()],
        );
    }
    if errors.is_empty() {
        Ok(name.to_owned())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Creates a Space under `account`, recording `space.created` in its feed.
pub async fn create_space(engine: &Engine, actor: &Principal, name: &str) -> Result<Item, ApiError> {
    let id = new_id("spc");
    let now = format_datetime(engine.now());
    let body = object([
        ("id", json!(id)),
        ("name", json!(name)),
        ("account_id", json!(actor.account_id)),
        ("created_at", json!(now)),
        ("updated_at", json!(now)),
    ]);
    let listed = keys::account_space(&actor.account_id, &id);
    let meta = keys::space_meta(&id);
    let item = Item::new(meta.pk, meta.sk, body.clone());
    engine
        .store()
        .transact(vec![
            Write::put(item.clone(), Condition::NotExists),
            Write::put(Item::new(listed.pk, listed.sk, body), Condition::NotExists),
            event_write(&id, "space.created", &id, render(&item), actor, engine.now()),
        ])
        .await?;
    Ok(item)
}

/// A live Space's status.
pub const ACTIVE: &str = "active";
/// A deleted Space's status until its purge is over.
pub const DELETING: &str = "deleting";

/// The Space as the owner sees it.
pub fn render(item: &Item) -> Value {
    let mut view = Resource::render(item);
    if let Some(object) = view.as_object_mut() {
        object.remove("account_id");
        object.entry("status").or_insert_with(|| json!(ACTIVE));
    }
    view
}

/// A Space of the caller's account, as the owner can find it.
pub enum Found {
    Live(Item),
    /// Deleted, its purge not over: the record under its account, marked `deleting`.
    Deleting(Item),
}

/// Finds a Space of the caller's account, live or being deleted; another account's Space,
/// and a Space whose purge is over, are simply not found.
pub async fn find(engine: &Engine, account: &str, space: &str) -> Result<Found, ApiError> {
    let key = keys::space_meta(space);
    let live = engine.store().get(&key.pk, &key.sk).await?;
    if let Some(item) = live.filter(|item| item.body.get("account_id").and_then(Value::as_str) == Some(account)) {
        return Ok(Found::Live(item));
    }
    let listed = keys::account_space(account, space);
    match engine.store().get(&listed.pk, &listed.sk).await? {
        Some(item) if item.body.get("status").and_then(Value::as_str) == Some(DELETING) => Ok(Found::Deleting(item)),
        _ => Err(ApiError::not_found("space", space)),
    }
}

/// Reads a live Space of the caller's account: what everything but reading and deleting a
/// Space needs. A Space being deleted is a conflict; another account's is not found.
pub async fn load(engine: &Engine, account: &str, space: &str) -> Result<Item, ApiError> {
    match find(engine, account, space).await? {
        Found::Live(item) => Ok(item),
        Found::Deleting(_) => Err(ApiError::Conflict(format!(
            "The Space `{space}` is being deleted: its data is being removed and nothing can be added to it."
        ))),
    }
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let page = PageRequest::parse(&call)?;
        let partition = keys::account_partition(&call.principal.account_id);
        let mut listed = list_partition(
            &call,
            &partition,
            SortRange::BeginsWith(keys::SPACE_PREFIX.into()),
            page,
            |_| true,
        )
        .await?;
        if let Some(data) = listed.get_mut("data").and_then(Value::as_array_mut) {
            for space in data.iter_mut().filter_map(Value::as_object_mut) {
                space.remove("account_id");
                space.entry("status").or_insert_with(|| json!(ACTIVE));
            }
        }
        Ok(Reply::ok(listed))
    })
}

pub fn create_handler() -> Handler {
    handler(|call: Call| async move {
        let name = parse_name(&call.body)?;
        let item = create_space(&call.engine, &call.principal, &name).await?;
        Ok(Reply::created(render(&item)).with_etag(item.version))
    })
}

pub fn get_handler() -> Handler {
    handler(|call: Call| async move {
        let item = match find(&call.engine, &call.principal.account_id, call.path_param("space")?).await? {
            Found::Live(item) | Found::Deleting(item) => item,
        };
        Ok(Reply::ok(render(&item)).with_etag(item.version))
    })
}

pub fn replace_handler() -> Handler {
    handler(|call: Call| async move {
        let name = parse_name(&call.body)?;
        let space = call.path_param("space")?;
        let current = load(&call.engine, &call.principal.account_id, space).await?;
        call.check_if_match(current.version)?;
        let mut next = current.clone();
        next.version += 1;
        next.body.insert("name".into(), json!(name));
        next.body
            .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
        let listed = keys::account_space(&call.principal.account_id, space);
        let writes = vec![
            Write::put(next.clone(), Condition::Version(current.version)),
            Write::put(
                Item::new(listed.pk, listed.sk, next.body.clone()).with_version(next.version),
                Condition::Exists,
            ),
            event_write(
                space,
                "space.updated",
                space,
                render(&next),
                &call.principal,
                call.engine.now(),
            ),
        ];
        match call.engine.store().transact(writes).await {
            Ok(()) => Ok(Reply::ok(render(&next)).with_etag(next.version)),
            Err(StoreError::TransactionConflict { .. }) => Err(ApiError::PreconditionFailed(
                "The Space changed meanwhile; read it again.".into(),
            )),
            Err(error) => Err(error.into()),
        }
    })
}

/// Deletes a Space: from the moment this answers, its keys are refused and every public
/// route into it answers 404 (they check the record removed here); the owner sees it
/// `deleting` until the purge job, enqueued in the same transaction, has removed its data.
///
/// Keys first: if anything fails half-way the Space still exists, a retry finishes the job,
/// and there is never a deleted Space with working keys. A key minted between the
/// revocation and the record's removal (minting checks the record) is revoked by a second
/// pass, and in any case by the purge's first step.
pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        let account = call.principal.account_id.clone();
        let current = match find(&call.engine, &account, &space).await? {
            Found::Live(item) => item,
            Found::Deleting(_) => {
                crate::keys::revoke_all(&call.engine, &space).await?;
                return Ok(Reply::no_content());
            }
        };
        call.check_if_match(current.version)?;
        crate::keys::revoke_all(&call.engine, &space).await?;
        let now = call.engine.now();
        let deleted_at = format_datetime(now);
        let listed = keys::account_space(&account, &space);
        let mut marked = Item::new(listed.pk, listed.sk, current.body.clone()).with_version(current.version + 1);
        marked.body.insert("status".into(), json!(DELETING));
        marked.body.insert("deleted_at".into(), json!(deleted_at));
        marked.body.insert("updated_at".into(), json!(deleted_at));
        let tombstone = keys::space_tombstone(&deleted_at, &space);
        let body = object([
            ("space_id", json!(space)),
            ("account_id", json!(account)),
            ("name", current.body.get("name").cloned().unwrap_or(Value::Null)),
            ("deleted_at", json!(deleted_at)),
        ]);
        let writes = vec![
            Write::delete(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            Write::put(marked, Condition::Exists),
            Write::put(
                Item::new(tombstone.pk, tombstone.sk.clone(), body),
                Condition::NotExists,
            ),
            crate::purge::job(&space, &account, &tombstone.sk, now),
        ];
        match call.engine.store().transact(writes).await {
            Ok(()) => {}
            Err(StoreError::TransactionConflict { index: 0 | 1 }) => {
                return Err(ApiError::PreconditionFailed(
                    "The Space changed meanwhile; read it again.".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        if let Err(error) = crate::keys::revoke_all(&call.engine, &space).await {
            tracing::warn!(space, %error, "a second revocation pass failed; the purge revokes again");
        }
        Ok(Reply::no_content())
    })
}
