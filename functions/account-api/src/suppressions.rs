//! A Space's mail suppression list as its owner sees it: the addresses that hard-bounced
//! or complained, which the mail family refuses to send to. The owner reads the list and
//! removes an address from it (a mistaken bounce, a recipient who asked to hear again).

use serde_json::{Value, json};
use space_http::ApiError;
use space_http::email::Email;
use space_http::operation::{Call, Handler, Reply, handler};

use crate::spaces;

pub fn list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": mail::suppressions::schema()},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page."}
        },
        "required": ["data", "next_cursor"]
    })
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let (data, next) = mail::suppressions::list(&call.engine, &space, call.query_param("cursor")).await?;
        Ok(Reply::ok(json!({"data": data, "next_cursor": next})))
    })
}

pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let raw = call.path_param("address")?;
        // What is no address was never suppressed.
        let removed = match Email::parse(raw) {
            Ok(address) => mail::suppressions::remove(&call.engine, &space, address.as_str()).await?,
            Err(_) => false,
        };
        if removed {
            Ok(Reply::no_content())
        } else {
            Err(ApiError::NotFound(format!(
                "{raw} is not on this Space's suppression list."
            )))
        }
    })
}
