//! Resources the owner keeps and space keys only read: a Space's members, its invoices, the
//! integrations it has. The resource is declared once; [`owner_kept`] serves its reads to
//! space keys (the domain's `read` scope) and its writes to the owner alone, on the account
//! API under `/spaces/{space}/…`. No scope a key can hold reaches the writes, so no agent can
//! add a member or touch an invoice, whatever it was granted.

use serde_json::Value;

use crate::ApiError;
use crate::keys;
use crate::operation::{Access, Call, Effect, Operation, Param, handler};
use crate::resource::Resource;

/// The path parameter naming the owner's Space.
const SPACE_PARAM: &str = "space";

/// The resource's list and get for space keys, and all of its operations for the owner's
/// account key at `/spaces/{space}` + the resource's path: create, update, replace and
/// delete, and the same list and get (named `<resource>_owner_<verb>`), so the owner's
/// console and scripts read what they keep without minting a key.
pub fn owner_kept(resource: Resource) -> Vec<Operation> {
    let mut operations = Vec::new();
    for operation in resource.operations() {
        match operation.effect {
            Effect::Read => {
                let owner = owners_copy(&operation);
                operations.push(operation);
                operations.push(owner);
            }
            _ => operations.push(for_the_owner(operation)),
        }
    }
    operations
}

/// A space key's read served to the owner as well: the same operation at the owner's path,
/// named `<resource>_owner_<verb>`.
pub fn owners_copy(operation: &Operation) -> Operation {
    let mut owner = operation.clone();
    owner.name = match operation.name.rsplit_once('_') {
        Some((resource, verb)) => format!("{resource}_owner_{verb}"),
        None => format!("{}_owner", operation.name),
    };
    for_the_owner(owner)
}

/// `operation` served to the owner alone, at `/spaces/{space}` + its path on the account API,
/// acting in that Space once the caller's account is found to own it.
pub fn for_the_owner(mut operation: Operation) -> Operation {
    operation.path = format!("/spaces/{{{SPACE_PARAM}}}{}", operation.path);
    operation.access = Access::Account;
    operation.params.insert(0, Param::path(SPACE_PARAM, "The Space's id."));
    let inner = operation.handler.clone();
    operation.handler = handler(move |mut call: Call| {
        let inner = inner.clone();
        async move {
            enter_own_space(&mut call).await?;
            inner(call).await
        }
    });
    operation
}

/// Acts in the path's Space when the caller's account owns it and it is not being deleted;
/// any other Space is not found, so an owner cannot learn of another account's Spaces.
async fn enter_own_space(call: &mut Call) -> Result<(), ApiError> {
    let space = call.path_param(SPACE_PARAM)?.to_owned();
    let record = keys::space_meta(&space);
    let owned = call
        .engine
        .store()
        .get(&record.pk, &record.sk)
        .await?
        .is_some_and(|item| item.body.get("account_id").and_then(Value::as_str) == Some(&call.principal.account_id));
    if !owned {
        return Err(ApiError::not_found("space", &space));
    }
    call.principal = call.principal.clone().in_space(&space);
    Ok(())
}
