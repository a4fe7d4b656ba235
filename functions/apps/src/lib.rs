//! Space Apps: a small web app per entry — its files (`PUT /apps/{id}/code`), the JSON
//! Schema of its data (`PUT /apps/{id}/schema`) — and immutable numbered versions made by
//! publishing (`POST /apps/{id}/publish`, a live action needing `apps:run`).
//!
//! The app item holds only its name and description, so lists stay small; the draft
//! code and schema are items of their own, and each version is a snapshot of both.

mod code;
mod drafts;
mod schema;
mod versions;

use axum::Router;
use space_auth::Domain;
use space_http::fields::{Field, FieldKind};
use space_http::operation::{Reply, handler};
use space_http::resource::{Filter, Resource};
use space_http::{Engine, Operation};

pub use code::{MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, MAX_PATH_CHARS, MAX_TOTAL_BYTES, check_path};
pub use schema::MAX_SCHEMA_BYTES;

/// The app resource.
pub fn apps() -> Resource {
    Resource {
        domain: Domain::Apps,
        name: "apps",
        collection: "apps",
        path: "/apps",
        item_param: "id",
        singular: "app",
        plural: "apps",
        event_prefix: "app",
        id_prefix: "app",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "The app's name.").required(),
            Field::new("description", FieldKind::LongText { max: 5000 }, "What the app is for."),
        ],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["name", "description"],
        }],
        rules: None,
    }
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations: Vec<Operation> = apps().operations().into_iter().map(clean_up_after_delete).collect();
    operations.extend(code::operations());
    operations.extend(schema::operations());
    operations.extend(versions::operations());
    operations
}

/// Deleting an app also removes its drafts and versions, once the app itself is gone.
fn clean_up_after_delete(mut operation: Operation) -> Operation {
    if operation.name != "apps_delete" {
        return operation;
    }
    let inner = operation.handler.clone();
    operation.handler = handler(move |call| {
        let inner = inner.clone();
        async move {
            let space = call.space_id()?.to_owned();
            let id = call.path_param("id")?.to_owned();
            let engine = call.engine.clone();
            let reply: Reply = inner(call).await?;
            drafts::remove_all(&engine, &space, &id).await;
            Ok(reply)
        }
    });
    operation
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
