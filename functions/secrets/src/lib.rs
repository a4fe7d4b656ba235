//! `GET /secrets`: which secrets a Space has, never what they hold. Values live in the
//! vault, which only the account API is given; this family reads metadata items only.

use axum::Router;
use http::{Method, StatusCode};
use serde_json::json;
use space_auth::{Action, Domain, Scope};
use space_http::keys;
use space_http::operation::{Access, Effect, Param, Reply, handler};
use space_http::resource::{PageRequest, Resource, list_partition, list_schema, page_params};
use space_http::{ApiError, Engine, Operation, Schema};
use space_store::SortRange;

/// What a secret looks like to a space key.
pub fn secret_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["name", "created_at", "updated_at", "version"],
        "properties": {
            "name": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        }
    })
}

pub fn operations() -> Vec<Operation> {
    let read = Access::Space(Scope::new(Domain::Secrets, Action::Read));
    vec![
        Operation {
            name: "secrets_list".into(),
            method: Method::GET,
            path: "/secrets".into(),
            access: read,
            effect: Effect::Read,
            summary: "List the Space's secrets (names and metadata only, never values)".into(),
            description: None,
            params: page_params(),
            body: None,
            optional_body: false,
            no_input: false,
            response: Some(Schema::lazy(|| list_schema(secret_schema()))),
            success: StatusCode::OK,
            raw_body: false,
            max_body_bytes: None,
            media_types: &[],
            answers: Vec::new(),
            cap: None,
            space_budget: None,
            shows_secret: false,
            approves_version: None,
            admits: None,
            handler: handler(|call| async move {
                let page = PageRequest::parse(&call)?;
                let partition = keys::secrets_partition(call.space_id()?);
                Ok(Reply::ok(
                    list_partition(&call, &partition, SortRange::All, page, |_| true).await?,
                ))
            }),
        },
        Operation {
            name: "secrets_get".into(),
            method: Method::GET,
            path: "/secrets/{name}".into(),
            access: read,
            effect: Effect::Read,
            summary: "Get a secret's metadata (never its value)".into(),
            description: None,
            params: vec![Param::path("name", "The secret's name.")],
            body: None,
            optional_body: false,
            no_input: false,
            response: Some(Schema::lazy(secret_schema).named("Secret")),
            success: StatusCode::OK,
            raw_body: false,
            max_body_bytes: None,
            media_types: &[],
            answers: Vec::new(),
            cap: None,
            space_budget: None,
            shows_secret: false,
            approves_version: None,
            admits: None,
            handler: handler(|call| async move {
                let key = keys::secret(call.space_id()?, call.path_param("name")?);
                let item = call
                    .engine
                    .store()
                    .get(&key.pk, &key.sk)
                    .await?
                    .ok_or_else(|| ApiError::NotFound(format!("No secret named `{}` in this Space.", key.sk)))?;
                Ok(Reply::ok(Resource::render(&item)).with_etag(item.version))
            }),
        },
    ]
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
