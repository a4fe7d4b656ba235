//! A Space's automations as its owner manages them: the routes over
//! [`automations::owner`], each checking first that the Space is the caller's.

use serde_json::Value;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{PageRequest, list_partition};
use space_store::SortRange;

use crate::spaces;

async fn space(call: &Call) -> Result<String, space_http::ApiError> {
    let space = call.path_param("space")?.to_owned();
    spaces::load(&call.engine, &call.principal.account_id, &space).await?;
    Ok(space)
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = space(&call).await?;
        let page = PageRequest::parse(&call)?;
        let partition = automations::automations_partition(&space);
        Ok(Reply::ok(
            list_partition(&call, &partition, SortRange::All, page, |_| true).await?,
        ))
    })
}

pub fn create_handler() -> Handler {
    handler(|call: Call| async move {
        let space = space(&call).await?;
        let created = automations::owner::create(&call.engine, &call.principal, &space, &call.body).await?;
        let version = created.get("version").and_then(Value::as_u64).unwrap_or(1);
        Ok(Reply::created(created).with_etag(version))
    })
}

pub fn get_handler() -> Handler {
    handler(|call: Call| async move {
        let space = space(&call).await?;
        let item = automations::owner::load(&call.engine, &space, call.path_param("automation")?).await?;
        Ok(Reply::ok(automations::owner::view(&item)).with_etag(item.version))
    })
}

pub fn update_handler() -> Handler {
    handler(|call: Call| async move {
        let space = space(&call).await?;
        let id = call.path_param("automation")?;
        let updated = automations::owner::update(&call.engine, &call.principal, &space, id, &call.body, |version| {
            call.check_if_match(version)
        })
        .await?;
        let version = updated.get("version").and_then(Value::as_u64).unwrap_or(1);
        Ok(Reply::ok(updated).with_etag(version))
    })
}

pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let space = space(&call).await?;
        automations::owner::delete(&call.engine, &call.principal, &space, call.path_param("automation")?).await?;
        Ok(Reply::no_content())
    })
}
