//! Documents: a title and markdown content, with a history that keeps every version.
//!
//! Each write of a document also writes the version it produces into the document's
//! history, in the same transaction as the document and its event, so the history can
//! never miss a version or hold one the document never had. The current version is in
//! the history too, which makes `GET /documents/{id}/versions/{n}` answer for every `n`
//! from 1 to the document's `version`.

mod versions;

use axum::Router;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{Field, FieldKind, WriteMode, validate};
use space_http::operation::{Call, Reply, handler};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, Engine, FieldErrors, Operation};
use space_store::{Condition, Item, Write};

/// Characters a document's content may hold.
pub const MAX_CONTENT_CHARS: usize = 200_000;
/// Bytes (UTF-8) a document's content may hold: the document, its event and its history
/// entry are each one store item, and DynamoDB stores at most 400 KB per item.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;

/// The document resource.
pub fn documents() -> Resource {
    Resource {
        domain: Domain::Documents,
        name: "documents",
        collection: "documents",
        path: "/documents",
        item_param: "id",
        singular: "document",
        plural: "documents",
        event_prefix: "document",
        id_prefix: "doc",
        parent: None,
        fields: vec![
            Field::new("title", FieldKind::Text { max: 500 }, "The document's title.").required(),
            Field::new(
                "content",
                FieldKind::LongText { max: MAX_CONTENT_CHARS },
                "The body, in markdown.",
            )
            .default(|| json!("")),
            Field::new("tags", FieldKind::Tags, "Labels.").default(|| Value::Array(Vec::new())),
        ],
        filters: vec![
            Filter::Search {
                param: "q",
                fields: &["title", "content"],
            },
            Filter::HasTag {
                param: "tag",
                field: "tags",
            },
        ],
        rules: Some(content_fits),
    }
}

fn content_fits(document: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let bytes = document.get("content").and_then(Value::as_str).map_or(0, str::len);
    if bytes > MAX_CONTENT_BYTES {
        return Err(FieldErrors::from([(
            "content".to_owned(),
            vec![format!(
                "must be at most {MAX_CONTENT_BYTES} bytes of UTF-8 (got {bytes})"
            )],
        )]));
    }
    Ok(())
}

/// Every operation of the family: the CRUD of documents, whose writes also record the
/// version they make, and the history.
pub fn operations() -> Vec<Operation> {
    let mut operations = documents().operations();
    for operation in &mut operations {
        match operation.name.as_str() {
            "documents_create" => {
                operation.summary = "Create a document (its version 1 starts the history)".into();
                operation.handler = handler(|call| async move { create(&call).await });
            }
            "documents_update" => {
                operation.summary = "Update some fields of a document (the new version is kept in its history)".into();
                operation.handler = handler(|call| async move { write(&call, WriteMode::Patch).await });
            }
            "documents_replace" => {
                operation.summary = "Replace a document (the new version is kept in its history)".into();
                operation.handler = handler(|call| async move { write(&call, WriteMode::Replace).await });
            }
            "documents_delete" => {
                operation.summary = "Delete a document and its history".into();
                operation.handler = handler(|call| async move { versions::delete(&call).await });
            }
            _ => {}
        }
    }
    operations.extend(versions::operations());
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

/// The history entry of `document` as it is now: written with the document's version as
/// its own, so that rendering it shows the version number.
pub(crate) fn history_entry(call: &Call, document: &Item) -> Result<Write, ApiError> {
    let key = space_http::keys::document_version(call.space_id()?, &document.sk, document.version);
    let mut body = Map::new();
    body.insert("document_id".into(), json!(document.sk));
    for field in ["title", "content", "tags"] {
        if let Some(value) = document.body.get(field) {
            body.insert(field.into(), value.clone());
        }
    }
    body.insert(
        "created_at".into(),
        document.body.get("updated_at").cloned().unwrap_or(Value::Null),
    );
    body.insert("key_id".into(), json!(call.principal.key_id));
    let entry = Item::new(key.pk, key.sk, body).with_version(document.version);
    Ok(Write::put(entry, Condition::NotExists))
}

async fn create(call: &Call) -> Result<Reply, ApiError> {
    let (item, mut writes) = documents()
        .prepare_create(call, &call.body)
        .map_err(ApiError::validation)?;
    writes.push(history_entry(call, &item)?);
    call.engine.store().transact(writes).await?;
    Ok(Reply::created(Resource::render(&item)).with_etag(item.version))
}

/// PATCH and PUT: the change, its event and the new history entry in one transaction.
async fn write(call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
    let validated = validate(&documents().fields, &call.body, mode).map_err(ApiError::validation)?;
    let id = call.path_param("id")?.to_owned();
    let item = modify(call, &id, |body| {
        if mode == WriteMode::Replace {
            body.retain(|name, _| matches!(name.as_str(), "id" | "created_at" | "updated_at"));
        }
        for name in &validated.clear {
            body.remove(*name);
        }
        body.extend(validated.set.clone());
        Ok(())
    })
    .await?;
    Ok(Reply::ok(Resource::render(&item)).with_etag(item.version))
}

/// Read-modify-write of a document that records the version it makes.
pub(crate) async fn modify<F>(call: &Call, id: &str, change: F) -> Result<Item, ApiError>
where
    F: FnMut(&mut Map<String, Value>) -> Result<(), ApiError>,
{
    documents()
        .modify_with(call, id, change, |next| Ok(vec![history_entry(call, next)?]))
        .await
}
