//! Accounts and their Spaces. A Space is stored twice in one transaction: under its
//! account (for listing) and under itself (for reads by id).

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
        "required": ["id", "name", "created_at", "updated_at", "version"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
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

/// The Space as the owner sees it.
pub fn render(item: &Item) -> Value {
    let mut view = Resource::render(item);
    if let Some(object) = view.as_object_mut() {
        object.remove("account_id");
    }
    view
}

/// Reads a Space of the caller's account; another account's Space is simply not found.
pub async fn load(engine: &Engine, account: &str, space: &str) -> Result<Item, ApiError> {
    let key = keys::space_meta(space);
    let item = engine.store().get(&key.pk, &key.sk).await?;
    item.filter(|item| item.body.get("account_id").and_then(Value::as_str) == Some(account))
        .ok_or_else(|| ApiError::not_found("space", space))
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
        let item = load(&call.engine, &call.principal.account_id, call.path_param("space")?).await?;
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

/// Deletes a Space: its keys stop working, and so does every public route into it (they
/// check the Space's record, removed here). Its data stays until a purge, which finds the
/// Space by the tombstone written in the same transaction.
pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        let current = load(&call.engine, &call.principal.account_id, &space).await?;
        call.check_if_match(current.version)?;
        // Keys first: if anything fails half-way, the Space still exists and a retry
        // finishes the job; there is never a deleted Space with working keys.
        crate::keys::revoke_all(&call.engine, &space).await?;
        let listed = keys::account_space(&call.principal.account_id, &space);
        let deleted_at = format_datetime(call.engine.now());
        let tombstone = keys::space_tombstone(&deleted_at, &space);
        let body = object([
            ("space_id", json!(space)),
            ("account_id", json!(call.principal.account_id)),
            ("name", current.body.get("name").cloned().unwrap_or(Value::Null)),
            ("deleted_at", json!(deleted_at)),
        ]);
        call.engine
            .store()
            .transact(vec![
                Write::delete(current.pk.clone(), current.sk.clone(), Condition::None),
                Write::delete(listed.pk, listed.sk, Condition::None),
                Write::put(Item::new(tombstone.pk, tombstone.sk, body), Condition::NotExists),
            ])
            .await?;
        Ok(Reply::no_content())
    })
}
