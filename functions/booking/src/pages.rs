//! Booking pages: CRUD from the resource, plus what makes them public. Creating a page also
//! writes its public pointer (how `/b/{id}` finds the Space) in the same transaction, and
//! deleting it removes the pointer, so the public URL lives exactly as long as the page.

use futures::future::join_all;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, Operation, Resource};
use space_store::{Condition, Item, StoreError, Write};

use crate::{appointment_types, booking_pages};

/// The kind of public pointer a booking page writes.
pub const POINTER_KIND: &str = "booking-page";

/// Refuses appointment type ids that are not types of this Space (422 naming the field).
async fn check_types_exist(call: &Call) -> Result<(), ApiError> {
    let Some(ids) = call.body.get("appointment_type_ids").and_then(Value::as_array) else {
        return Ok(());
    };
    let types = appointment_types();
    let ids: Vec<&str> = ids
        .iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|id| space_http::ids::has_shape(id, crate::TYPE_PREFIX))
        .take(crate::MAX_TYPES_PER_PAGE)
        .collect();
    let found = join_all(ids.iter().map(|id| types.load(call, id))).await;
    for (id, result) in ids.iter().zip(found) {
        match result {
            Ok(_) => {}
            Err(ApiError::NotFound(_)) => {
                return Err(ApiError::invalid_field(
                    "appointment_type_ids",
                    format!("no appointment type `{id}` in this Space"),
                ));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

async fn create(call: Call) -> Result<Reply, ApiError> {
    let (item, mut writes) = booking_pages()
        .prepare_create(&call, &call.body)
        .map_err(ApiError::validation)?;
    check_types_exist(&call).await?;
    let pointer = keys::public_pointer(POINTER_KIND, &item.sk);
    let space = call.space_id()?;
    let mut body = Map::new();
    body.insert("space_id".into(), json!(space));
    body.insert("booking_page_id".into(), json!(item.sk));
    writes.extend(space_http::references::put(
        space,
        Item::new(pointer.pk, pointer.sk, body),
        Condition::NotExists,
    ));
    call.engine.store().transact(writes).await?;
    Ok(Reply::created(Resource::render(&item)).with_etag(item.version))
}

async fn delete(call: Call) -> Result<Reply, ApiError> {
    let resource = booking_pages();
    let id = call.path_param("id")?;
    let current = resource.load(&call, id).await?;
    call.check_if_match(current.version)?;
    let pointer = keys::public_pointer(POINTER_KIND, &current.sk);
    let mut writes = vec![Write::delete(
        current.pk.clone(),
        current.sk.clone(),
        Condition::Version(current.version),
    )];
    writes.extend(space_http::references::delete(call.space_id()?, &pointer));
    writes.push(resource.event(&call, "deleted", &current)?);
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::PreconditionFailed(
            "The booking page changed while it was being deleted; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// The page's title as visitors see it.
pub fn title_of(page: &Map<String, Value>) -> &str {
    page.get("title")
        .or_else(|| page.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("Book a time")
}

async fn embed(call: Call) -> Result<Reply, ApiError> {
    let page = booking_pages().load(&call, call.path_param("id")?).await?;
    let url = call.engine.public_link(&format!("/b/{}", page.sk));
    let iframe = maud::html! {
        iframe src=(url) title=(title_of(&page.body)) width="100%" height="720"
            style="border:0;max-width:100%" loading="lazy" {}
    }
    .into_string();
    Ok(Reply::ok(json!({
        "booking_page_id": page.sk,
        "url": url,
        "slots_url": format!("{url}/slots"),
        "book_url": format!("{url}/book"),
        "iframe": iframe,
        "width": "100%",
        "height": 720
    })))
}

fn embed_schema() -> Value {
    json!({
        "type": "object",
        "required": ["booking_page_id", "url", "slots_url", "book_url", "iframe"],
        "properties": {
            "booking_page_id": {"type": "string"},
            "url": {"type": "string", "format": "uri", "description": "The public booking page (HTML), no key needed."},
            "slots_url": {"type": "string", "format": "uri", "description": "Free slots as JSON: `?appointment_type_id=&from=&to=`."},
            "book_url": {"type": "string", "format": "uri", "description": "POST a booking as JSON: `{appointment_type_id, start, contact}`."},
            "iframe": {"type": "string", "description": "An HTML snippet that embeds the page."},
            "width": {"type": "string"},
            "height": {"type": "integer"}
        }
    })
}

pub fn operations() -> Vec<Operation> {
    let mut operations = booking_pages().operations();
    for operation in &mut operations {
        match operation.name.as_str() {
            "booking_pages_create" => operation.handler = handler(create),
            "booking_pages_delete" => operation.handler = handler(delete),
            "booking_pages_update" | "booking_pages_replace" => {
                let inner = operation.handler.clone();
                operation.handler = handler(move |call| {
                    let inner = inner.clone();
                    async move {
                        check_types_exist(&call).await?;
                        inner(call).await
                    }
                });
            }
            _ => {}
        }
    }
    operations.push(
        Operation::new(
            "booking_pages_embed",
            Method::GET,
            "/booking/pages/{id}/embed",
            Access::Space(Scope::new(Domain::Booking, Action::Read)),
            Effect::Read,
            "Embed metadata of a booking page: its public URL and an iframe snippet",
            handler(embed),
        )
        .with_params(vec![Param::path("id", "The booking page's id.")])
        .answers(StatusCode::OK, embed_schema),
    );
    operations
}
