//! Secret values: written to the vault, never returned. The names and timestamps are a
//! metadata item in the Space's partition, which is all `GET /secrets` can see.

use serde_json::{Map, Value, json};
use space_http::events::event_write;
use space_http::fields::format_datetime;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{PageRequest, list_partition};
use space_http::{ApiError, FieldErrors, keys};
use space_store::{Condition, Item, SortRange, Write};

use crate::spaces;

pub const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_NAME_CHARS: usize = 128;
/// [`check_name`] as a pattern.
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$";

/// A secret's metadata, the same shape the space API's `GET /secrets` shows.
pub fn schema() -> Value {
    secrets::secret_schema()
}

/// Names are what environment variables accept: letters, digits, `_` and `-`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with('-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} letters, digits, _ or -, like STRIPE_API_KEY"),
        ))
    }
}

fn parse_value(body: &Value) -> Result<String, ApiError> {
    let mut errors = FieldErrors::new();
    if let Some(object) = body.as_object() {
        for extra in object.keys().filter(|k| *k != "value") {
            errors.insert(extra.clone(), vec!["is not accepted; send only `value`".into()]);
        }
    }
    let value = body.get("value").and_then(Value::as_str).unwrap_or("");
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        errors.insert(
            "value".into(),
            vec![format!(
                "The value field is required: a string of 1 to {MAX_VALUE_BYTES} bytes."
            )],
        );
    }
    if errors.is_empty() {
        Ok(value.to_owned())
    } else {
        Err(ApiError::validation(errors))
    }
}

pub fn put_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        let name = call.path_param("name")?.to_owned();
        check_name(&name)?;
        let value = parse_value(&call.body)?;
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let vault = call
            .engine
            .vault()
            .ok_or_else(|| ApiError::Internal("the account API runs without a secret vault".into()))?;
        // The value first: metadata never points at a value that was not stored.
        vault.put_value(&space, &name, &value).await?;
        let key = keys::secret(&space, &name);
        let now = format_datetime(call.engine.now());
        let existing = call.engine.store().get(&key.pk, &key.sk).await?;
        let (version, created_at, condition) = match &existing {
            Some(item) => (
                item.version + 1,
                item.body.get("created_at").cloned().unwrap_or(json!(now)),
                Condition::Version(item.version),
            ),
            None => (1, json!(now), Condition::NotExists),
        };
        let mut body = Map::new();
        body.insert("name".into(), json!(name));
        body.insert("created_at".into(), created_at);
        body.insert("updated_at".into(), json!(now));
        let item = Item::new(key.pk, key.sk, body).with_version(version);
        let event = event_write(
            &space,
            "secret.updated",
            &name,
            json!({"name": name}),
            &call.principal,
            call.engine.now(),
        );
        call.engine
            .store()
            .transact(vec![Write::put(item, condition), event])
            .await?;
        Ok(Reply::no_content())
    })
}

pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        let name = call.path_param("name")?.to_owned();
        check_name(&name)?;
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let key = keys::secret(&space, &name);
        if call.engine.store().get(&key.pk, &key.sk).await?.is_none() {
            return Err(ApiError::NotFound(format!("No secret named `{name}` in this Space.")));
        }
        let event = event_write(
            &space,
            "secret.deleted",
            &name,
            json!({"name": name}),
            &call.principal,
            call.engine.now(),
        );
        call.engine
            .store()
            .transact(vec![Write::delete(key.pk, key.sk, Condition::None), event])
            .await?;
        if let Some(vault) = call.engine.vault() {
            vault.delete_value(&space, &name).await?;
        }
        Ok(Reply::no_content())
    })
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?;
        spaces::load(&call.engine, &call.principal.account_id, space).await?;
        let page = PageRequest::parse(&call)?;
        let partition = keys::secrets_partition(space);
        Ok(Reply::ok(
            list_partition(&call, &partition, SortRange::All, page, |_| true).await?,
        ))
    })
}
