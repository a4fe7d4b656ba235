//! A document's history: `/documents/{id}/versions` lists it, `…/versions/{version}`
//! reads one version whole, and `…/versions/{version}/restore` makes a new version with an
//! old one's title, content and tags. Deleting a document deletes its history after it.

use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{PageRequest, Resource, list_partition, list_schema, page_params};
use space_http::{ApiError, Operation, keys};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};

use crate::documents;

/// Store writes per transaction when a deleted document's history is removed.
const PURGE_BATCH: usize = 100;

/// A version as the history shows it.
fn version_schema(with_content: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "required": ["document_id", "version", "title", "created_at"],
        "properties": {
            "document_id": {"type": "string"},
            "version": {"type": "integer", "minimum": 1, "description": "The document's `version` this entry was."},
            "title": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time", "description": "When this version was written."},
            "key_id": {"type": "string", "description": "The API key that wrote it."}
        }
    });
    if with_content {
        schema["properties"]["content"] = json!({"type": "string", "description": "The markdown of this version."});
        schema["required"] = json!(["document_id", "version", "title", "content", "created_at"]);
    }
    schema
}

fn document_id() -> Param {
    Param::path("id", "The document's id.")
}

fn version_param() -> Param {
    Param {
        schema: serde_json::json!({"type": "integer", "minimum": 1}),
        ..Param::path("version", "The version number, from 1 to the document's `version`.")
    }
}

pub fn operations() -> Vec<Operation> {
    let read = Access::Space(Scope::new(Domain::Documents, Action::Read));
    let write = Access::Space(Scope::new(Domain::Documents, Action::Write));
    let mut list_params = vec![document_id()];
    list_params.extend(page_params());
    vec![
        Operation::new(
            "documents_versions_list",
            Method::GET,
            "/documents/{id}/versions",
            read,
            Effect::Read,
            "List a document's versions, newest first (without their content)",
            handler(|call| async move { list(&call).await }),
        )
        .with_params(list_params)
        .answers(
            StatusCode::OK,
            space_http::Schema::lazy(|| list_schema(version_schema(false))).named("DocumentVersionSummaryList"),
        ),
        Operation::new(
            "documents_versions_get",
            Method::GET,
            "/documents/{id}/versions/{version}",
            read,
            Effect::Read,
            "Get one version of a document, with its content",
            handler(|call| async move {
                let entry = load_version(&call).await?;
                Ok(Reply::ok(Resource::render(&entry)))
            }),
        )
        .with_params(vec![document_id(), version_param()])
        .answers(
            StatusCode::OK,
            space_http::Schema::lazy(|| version_schema(true)).named("DocumentVersion"),
        ),
        Operation::new(
            "documents_versions_restore",
            Method::POST,
            "/documents/{id}/versions/{version}/restore",
            write,
            Effect::Update,
            "Restore an old version: its title, content and tags become the document's next version",
            handler(|call| async move { restore(&call).await }),
        )
        .with_params(vec![document_id(), version_param()])
        .answers(
            StatusCode::OK,
            space_http::Schema::lazy(|| documents().item_schema()).named(documents().type_name()),
        ),
    ]
}

async fn list(call: &Call) -> Result<Reply, ApiError> {
    let page = PageRequest::parse(call)?;
    let id = call.path_param("id")?;
    documents().load(call, id).await?;
    let partition = keys::document_versions_partition(call.space_id()?, id);
    let mut listed = list_partition(call, &partition, SortRange::All, page, |_| true).await?;
    if let Some(entries) = listed.get_mut("data").and_then(Value::as_array_mut) {
        for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
            entry.remove("content");
        }
    }
    Ok(Reply::ok(listed))
}

/// The entry the path names; 404 when the document or that version does not exist.
async fn load_version(call: &Call) -> Result<Item, ApiError> {
    let id = call.path_param("id")?;
    let raw = call.path_param("version")?;
    let document = documents().load(call, id).await?;
    let missing = || {
        ApiError::NotFound(format!(
            "The document has no version `{raw}`: its versions are 1 to {}.",
            document.version
        ))
    };
    let version: u64 = raw.parse().map_err(|_| missing())?;
    if version == 0 || version > document.version {
        return Err(missing());
    }
    let key = keys::document_version(call.space_id()?, id, version);
    call.engine.store().get(&key.pk, &key.sk).await?.ok_or_else(missing)
}

async fn restore(call: &Call) -> Result<Reply, ApiError> {
    let entry = load_version(call).await?;
    let id = call.path_param("id")?.to_owned();
    let document = crate::modify(call, &id, |body| {
        for field in ["title", "content", "tags"] {
            match entry.body.get(field) {
                Some(value) => body.insert(field.into(), value.clone()),
                None => body.remove(field),
            };
        }
        Ok(())
    })
    .await?;
    Ok(Reply::ok(Resource::render(&document)).with_etag(document.version))
}

/// `DELETE /documents/{id}`: the document and its event atomically, then its history.
pub async fn delete(call: &Call) -> Result<Reply, ApiError> {
    let resource = documents();
    let id = call.path_param("id")?;
    let current = resource.load(call, id).await?;
    call.check_if_match(current.version)?;
    let writes = vec![
        Write::delete(
            current.pk.clone(),
            current.sk.clone(),
            Condition::Version(current.version),
        ),
        resource.event(call, "deleted", &current)?,
    ];
    match call.engine.store().transact(writes).await {
        Ok(()) => {}
        Err(StoreError::TransactionConflict { index: 0 }) => {
            return Err(ApiError::PreconditionFailed(
                "The document changed while it was being deleted; read it again.".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    // The history of a deleted document is unreachable (its routes answer 404 once the
    // document is gone), so a failure here leaves garbage, never a wrong answer.
    if let Err(error) = purge_history(call, id).await {
        tracing::warn!(%error, document = id, "could not delete the whole history of a deleted document");
    }
    Ok(Reply::no_content())
}

async fn purge_history(call: &Call, id: &str) -> Result<(), ApiError> {
    let partition = keys::document_versions_partition(call.space_id()?, id);
    loop {
        let page = call
            .engine
            .store()
            .query(Query::partition(partition.clone()).limit(PURGE_BATCH))
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let deletes = page
            .items
            .iter()
            .map(|item| Write::delete(item.pk.clone(), item.sk.clone(), Condition::None))
            .collect();
        call.engine.store().transact(deletes).await?;
        if page.last_sk.is_none() {
            return Ok(());
        }
    }
}
