//! Forms. A form declares its fields; a visitor posts it without a key at `/f/{form_id}`
//! (JSON or form-encoded), which stores a submission and creates the contact with the
//! submitted email or fills its empty fields (never an address: email or phone), all in one transaction.
//! `/forms/{id}/submissions` lists them. A published page shows the copy of a form it
//! captured ([`capture`]), and posts from it are checked against that copy.

pub mod definition;
pub mod html;
mod submit;

use axum::Router;
use serde_json::{Map, json};
use space_auth::Domain;
use space_http::fields::{Field, FieldKind};
use space_http::keys;
use space_http::operation::{Call, Reply, handler};
use space_http::resource::{Filter, Parent, Resource};
use space_http::{ApiError, Engine, Operation};
use space_store::{Condition, Item, StoreError, Write};

pub use submit::PUBLIC_PER_MINUTE;

/// The `kind` of a form's public pointer (`keys::public_pointer`).
pub const POINTER_KIND: &str = "form";
/// The form version a page's copy of a form was taken from.
const CAPTURED_VERSION: &str = "form_version";

/// The form resource.
pub fn forms() -> Resource {
    Resource {
        domain: Domain::Forms,
        name: "forms",
        collection: "forms",
        path: "/forms",
        item_param: "id",
        singular: "form",
        plural: "forms",
        event_prefix: "form",
        id_prefix: "form",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "What the form is called, e.g. `Contact us`.").required(),
            Field::new(
                "fields",
                definition::fields_kind(),
                "The inputs, in order: name, type (text, email, phone, textarea, number, select, checkbox), required, label, options. \
                 The first email field's value creates or updates the contact.",
            )
            .required(),
            Field::new("submit_label", FieldKind::Text { max: 60 }, "The submit button's text; `Send` when absent."),
            Field::new("success_message", FieldKind::Text { max: 1000 }, "What a visitor reads after submitting."),
        ],
        filters: vec![Filter::Search { param: "q", fields: &["name"] }],
        rules: None,
    }
}

/// The submissions of one form. Read-only through the API: only visitors create them.
pub fn submissions() -> Resource {
    Resource {
        domain: Domain::Forms,
        name: "forms_submissions",
        collection: "submissions",
        path: "/forms/{id}/submissions",
        item_param: "submission_id",
        singular: "submission",
        plural: "submissions",
        event_prefix: "form.submission",
        id_prefix: "sub",
        parent: Some(Parent {
            collection: "forms",
            singular: "form",
        }),
        fields: vec![
            Field::new("form_id", FieldKind::Text { max: 64 }, "The form that was submitted."),
            Field::new(
                "data",
                FieldKind::Object { max_bytes: 256 * 1024 },
                "The submitted values by field name, normalized.",
            ),
            Field::new(
                "contact_id",
                FieldKind::Text { max: 64 },
                "The contact created or completed from the submitted email.",
            ),
            Field::new(
                "form_version",
                FieldKind::Integer { min: 1, max: i64::MAX },
                "The version of the form the values were checked against: the one the page showed, for posts from a page.",
            ),
            Field::new(
                "page_id",
                FieldKind::Text { max: 64 },
                "The published page the form was posted from, if any.",
            ),
        ],
        filters: Vec::new(),
        rules: None,
    }
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = forms().operations();
    for operation in &mut operations {
        match operation.name.as_str() {
            "forms_create" => operation.handler = handler(|call| async move { create(&call).await }),
            "forms_delete" => operation.handler = handler(|call| async move { delete(&call).await }),
            _ => {}
        }
    }
    operations.extend(submissions().operations().into_iter().filter(|operation| {
        matches!(
            operation.name.as_str(),
            "forms_submissions_list" | "forms_submissions_get"
        )
    }));
    operations.push(submit::operation());
    space_http::operation::describe(
        &mut operations,
        &["forms_create", "forms_replace", "forms_update"],
        "Field names are unique in a form, ignoring case; otherwise 422.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

/// Where `/f/{form_id}` finds the form's Space.
fn pointer(space: &str, form_id: &str) -> Item {
    let key = keys::public_pointer(POINTER_KIND, form_id);
    let mut body = Map::new();
    body.insert("space_id".into(), json!(space));
    body.insert("form_id".into(), json!(form_id));
    Item::new(key.pk, key.sk, body)
}

/// Create, with the public pointer written in the same transaction as the form.
async fn create(call: &Call) -> Result<Reply, ApiError> {
    let resource = forms();
    let (item, mut writes) = resource
        .prepare_create(call, &call.body)
        .map_err(ApiError::validation)?;
    let space = call.space_id()?;
    writes.extend(space_http::references::put(
        space,
        pointer(space, &item.sk),
        Condition::NotExists,
    ));
    call.engine.store().transact(writes).await?;
    Ok(Reply::created(Resource::render(&item)).with_etag(item.version))
}

/// Delete, removing the public pointer with the form: its URL stops working at once.
async fn delete(call: &Call) -> Result<Reply, ApiError> {
    let resource = forms();
    let id = call.path_param("id")?;
    let current = resource.load(call, id).await?;
    call.check_if_match(current.version)?;
    let pointer = keys::public_pointer(POINTER_KIND, id);
    let mut writes = vec![Write::delete(
        current.pk.clone(),
        current.sk.clone(),
        Condition::Version(current.version),
    )];
    writes.extend(space_http::references::delete(call.space_id()?, &pointer));
    writes.push(resource.event(call, "deleted", &current)?);
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::PreconditionFailed(
            "The form changed while it was being deleted; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// A form of the caller's Space, or `None` (for pages that embed one).
pub async fn find_form(call: &Call, form_id: &str) -> Result<Option<Item>, ApiError> {
    if !space_http::ids::has_shape(form_id, "form") {
        return Ok(None);
    }
    let partition = forms().partition(call)?;
    Ok(call.engine.store().get(&partition, form_id).await?)
}

/// What a published page keeps of a form it embeds: the form as it is now, keyed under
/// the page, so the live page shows (and its posts are checked against) this copy until
/// the page is published again.
pub fn capture(space: &str, page_id: &str, form: &Item) -> Item {
    let key = keys::page_form(space, page_id, &form.sk);
    let mut body = form.body.clone();
    body.insert(CAPTURED_VERSION.into(), json!(form.version));
    Item::new(key.pk, key.sk, body)
}
