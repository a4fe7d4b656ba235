//! Publishing: `POST /apps/{id}/publish` snapshots the draft code and schema into version
//! n+1, which never changes again. The number is claimed with a conditional put, and the
//! drafts are checked unchanged in the same transaction, so two concurrent publishes get
//! two numbers and each version is exactly the drafts it read.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::events::event_write;
use space_http::fields::{FieldKind, format_datetime};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{PageRequest, list_partition, list_schema, page_params};
use space_http::{ApiError, Operation};
use space_store::{Condition, Item, Query, StoreError, Write};

use crate::apps;
use crate::drafts::{self, CODE, SCHEMA};

const PUBLISH_RETRIES: usize = 3;
const MAX_NOTES_CHARS: usize = 1000;
/// Fields of a version that only a single-version read returns.
const CONTENT: [&str; 2] = ["files", "schema"];

/// A version as the API shows it (`full` with its files and schema).
fn render(item: &Item, full: bool) -> Value {
    let mut body = item.body.clone();
    if !full {
        for field in CONTENT {
            body.remove(field);
        }
    }
    Value::Object(body)
}

fn parse_notes(body: &Value) -> Result<Option<String>, ApiError> {
    match body {
        Value::Null => Ok(None),
        Value::Object(object) => {
            if let Some(extra) = object.keys().find(|k| *k != "notes") {
                return Err(ApiError::invalid_field(
                    extra,
                    "is not accepted; send {} or {\"notes\": \"…\"}",
                ));
            }
            match object.get("notes") {
                None | Some(Value::Null) => Ok(None),
                Some(notes) => FieldKind::LongText { max: MAX_NOTES_CHARS }
                    .check(notes)
                    .map(|v| v.as_str().map(str::to_owned))
                    .map_err(|message| ApiError::invalid_field("notes", message)),
            }
        }
        _ => Err(ApiError::invalid_field("body", "must be a JSON object, e.g. {}")),
    }
}

async fn latest_number(call: &Call, app_id: &str) -> Result<u64, ApiError> {
    let partition = keys::app_versions_partition(call.space_id()?, app_id);
    let page = call
        .engine
        .store()
        .query(Query::partition(partition).limit(1).descending(true))
        .await?;
    Ok(page
        .items
        .first()
        .and_then(|item| item.body.get("number"))
        .and_then(Value::as_u64)
        .unwrap_or(0))
}

async fn publish(call: Call) -> Result<Reply, ApiError> {
    let notes = parse_notes(&call.body)?;
    let space = call.space_id()?.to_owned();
    let id = call.path_param("id")?.to_owned();
    for _ in 0..PUBLISH_RETRIES {
        let app = apps().load(&call, &id).await?;
        let (code, schema, latest) = tokio::try_join!(
            drafts::load(&call, CODE),
            drafts::load(&call, SCHEMA),
            latest_number(&call, &id)
        )?;
        let Some(code) = code else {
            return Err(ApiError::Conflict(
                "The app has no code to publish yet: PUT /apps/{id}/code first.".into(),
            ));
        };
        let number = latest + 1;
        let key = keys::app_version(&space, &id, number);
        let mut body = Map::new();
        body.insert("app_id".into(), json!(id));
        body.insert("number".into(), json!(number));
        body.insert("name".into(), app.body.get("name").cloned().unwrap_or(Value::Null));
        for field in ["files", "file_count", "total_bytes"] {
            body.insert(field.into(), code.body.get(field).cloned().unwrap_or(Value::Null));
        }
        body.insert(
            "schema".into(),
            schema
                .as_ref()
                .and_then(|s| s.body.get("schema").cloned())
                .unwrap_or_else(|| json!({})),
        );
        body.insert("notes".into(), json!(notes));
        body.insert("published_by".into(), json!(call.principal.key_id));
        body.insert("created_at".into(), json!(format_datetime(call.engine.now())));
        let item = Item::new(key.pk, key.sk, body);
        let code_key = keys::app_draft(&space, &id, CODE);
        let schema_key = keys::app_draft(&space, &id, SCHEMA);
        let writes = vec![
            Write::put(item.clone(), Condition::NotExists),
            Write::check(code_key.pk, code_key.sk, Condition::Version(code.version)),
            Write::check(
                schema_key.pk,
                schema_key.sk,
                schema
                    .as_ref()
                    .map_or(Condition::NotExists, |s| Condition::Version(s.version)),
            ),
            Write::check(app.pk.clone(), app.sk.clone(), Condition::Exists),
            event_write(
                &space,
                "app.published",
                &id,
                render(&item, false),
                &call.principal,
                call.engine.now(),
            ),
        ];
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::created(render(&item, false))),
            // Another publish took the number, or a draft changed: read again.
            Err(StoreError::TransactionConflict { index }) if index < 3 => continue,
            Err(StoreError::TransactionConflict { .. }) => return Err(ApiError::not_found("app", &id)),
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "The app kept changing while it was being published; retry.".into(),
    ))
}

async fn list(call: Call) -> Result<Reply, ApiError> {
    let page = PageRequest::parse(&call)?;
    let id = call.path_param("id")?.to_owned();
    apps().load(&call, &id).await?;
    let partition = keys::app_versions_partition(call.space_id()?, &id);
    let mut listed = list_partition(&call, &partition, space_store::SortRange::All, page, |_| true).await?;
    if let Some(data) = listed.get_mut("data").and_then(Value::as_array_mut) {
        for version in data.iter_mut().filter_map(Value::as_object_mut) {
            for field in CONTENT {
                version.remove(field);
            }
            // `list_partition` adds the storage version; a published version has none.
            version.remove("version");
        }
    }
    Ok(Reply::ok(listed))
}

async fn get(call: Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let raw = call.path_param("number")?;
    let number = raw
        .parse::<u64>()
        .ok()
        .filter(|n| (1..10_000_000_000).contains(n))
        .ok_or_else(|| ApiError::invalid_field("number", "must be a version number: 1, 2, …"))?;
    apps().load(&call, &id).await?;
    let key = keys::app_version(call.space_id()?, &id, number);
    let item = call
        .engine
        .store()
        .get(&key.pk, &key.sk)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("The app has no version {number}.")))?;
    Ok(Reply::ok(render(&item, true)))
}

fn version_schema(full: bool) -> Value {
    let mut properties = json!({
        "app_id": {"type": "string"},
        "number": {"type": "integer", "minimum": 1},
        "name": {"type": "string", "description": "The app's name when it was published."},
        "file_count": {"type": "integer"},
        "total_bytes": {"type": "integer"},
        "notes": {"type": ["string", "null"]},
        "published_by": {"type": "string", "description": "The id of the key that published it."},
        "created_at": {"type": "string", "format": "date-time"}
    });
    if full {
        properties["files"] = json!({"type": "object", "additionalProperties": {"type": "string"}});
        properties["schema"] = json!({"type": "object"});
    }
    json!({"type": "object", "properties": properties, "required": ["app_id", "number", "created_at"]})
}

pub fn operations() -> Vec<Operation> {
    let id = || Param::path("id", "The app's id.");
    let read = Access::Space(Scope::new(Domain::Apps, Action::Read));
    let mut list_params = vec![id()];
    list_params.extend(page_params());
    vec![
        Operation::new(
            "apps_publish",
            Method::POST,
            "/apps/{id}/publish",
            Access::Space(Scope::new(Domain::Apps, Action::Run)),
            Effect::Live,
            "Publish an app: its draft code and schema become the next numbered version",
            handler(publish),
        )
        .with_params(vec![id()])
        .with_body(|| json!({
            "type": "object",
            "properties": {"notes": {"type": "string", "maxLength": MAX_NOTES_CHARS, "description": "What changed, for the version list."}},
            "additionalProperties": false
        }))
        .answers(StatusCode::CREATED, space_http::Schema::lazy(|| version_schema(false)).named("AppVersionSummary")),
        Operation::new(
            "apps_versions_list",
            Method::GET,
            "/apps/{id}/versions",
            read,
            Effect::Read,
            "List an app's published versions (newest first; without their files)",
            handler(list),
        )
        .with_params(list_params)
        .answers(StatusCode::OK, space_http::Schema::lazy(|| list_schema(version_schema(false))).named("AppVersionSummaryList")),
        Operation::new(
            "apps_versions_get",
            Method::GET,
            "/apps/{id}/versions/{number}",
            read,
            Effect::Read,
            "Get one published version with its files and schema",
            handler(get),
        )
        .with_params(vec![
            id(),
            Param {
                schema: json!({"type": "integer", "minimum": 1, "maximum": 9_999_999_999_u64}),
                ..Param::path("number", "The version number.")
            },
        ])
        .answers(StatusCode::OK, space_http::Schema::lazy(|| version_schema(true)).named("AppVersion")),
    ]
}
