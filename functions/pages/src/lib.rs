//! Pages. A page is a draft (`title`, `slug`, `layout_html`) until `POST
//! /pages/{id}/publish` (`pages:run`) stores an immutable snapshot of it; visitors see only
//! that snapshot, at `/p/{space_id}/{slug}`, until the next publish or an unpublish.
//!
//! Slugs are unique in a Space through claim items written in the page's own transaction
//! (conditional puts, so exact on both stores). A page holds the claim of its draft slug
//! and, while published, of the slug it was published at: renaming a live page changes
//! nothing live, and nobody can take its live address until it is republished or taken down.

mod public;
mod slug;

use std::collections::BTreeSet;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{Field, FieldKind, Validated, WriteMode, format_datetime, validate};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{Filter, Resource, list_schema};
use space_http::{ApiError, Engine, FieldErrors, Operation, Schema};
use space_store::{Condition, Item, StoreError, Write};

pub use public::{placeholders, sanitize};
pub use slug::slugify;

pub const STATUSES: &[&str] = &["draft", "published"];
/// The largest layout: a page, its snapshot and its event each stay well inside one
/// DynamoDB item (400 KB) whatever the characters.
pub const MAX_LAYOUT_CHARS: usize = 50_000;
/// Fields only the server writes. Clients may send them back from a GET; they are ignored.
const SERVER_WRITTEN: &[&str] = &["status", "published_at", "published_slug", "public_path", "public_url"];
/// What a `PUT` keeps of the stored page besides what it sends.
const KEPT_BY_REPLACE: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "status",
    "published_at",
    "published_slug",
    "public_path",
    "public_url",
];
/// Attempts when a derived slug was taken meanwhile or another writer moved the page.
const ATTEMPTS: usize = 5;
/// The most forms one page embeds: publishing copies each into the page's transaction.
const MAX_EMBEDDED_FORMS: usize = 10;
/// The snapshot's record of the forms it captured, by id with their versions.
const FORM_VERSIONS: &str = "form_versions";

/// The page resource.
pub fn pages() -> Resource {
    Resource {
        domain: Domain::Pages,
        name: "pages",
        collection: "pages",
        path: "/pages",
        item_param: "id",
        singular: "page",
        plural: "pages",
        event_prefix: "page",
        id_prefix: "page",
        parent: None,
        fields: vec![
            Field::new(
                "title",
                FieldKind::Text { max: 200 },
                "The page's title (the browser tab's text).",
            )
            .required(),
            Field::new(
                "slug",
                slug::slug_kind(),
                "Its address, `/p/{space_id}/{slug}`; unique in the Space. Derived from the title when absent \
                 (with `-2`, `-3`, … if taken); `null` in a PATCH derives it again.",
            ),
            Field::new(
                "layout_html",
                FieldKind::LongText { max: MAX_LAYOUT_CHARS },
                "The page's HTML. Scripts and event handlers are removed when it is published; \
                 `{{form:FORM_ID}}` embeds that form.",
            )
            .default(|| json!("")),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Search {
                param: "q",
                fields: &["title", "slug"],
            },
        ],
        rules: None,
    }
}

/// A page as the API shows it: the resource's fields and the server-written ones.
pub fn page_schema() -> Value {
    let mut schema = pages().item_schema();
    schema["properties"]["status"] =
        json!({"type": "string", "enum": STATUSES, "description": "`published` once live."});
    schema["properties"]["published_at"] =
        json!({"type": "string", "format": "date-time", "description": "When the live snapshot was taken."});
    schema["properties"]["published_slug"] =
        json!({"type": "string", "description": "The slug the live snapshot is served at."});
    schema["properties"]["public_path"] =
        json!({"type": "string", "description": "Where visitors see it: `/p/{space_id}/{slug}`."});
    schema["properties"]["public_url"] = json!({
        "type": "string",
        "format": "uri",
        "description": "`public_path` as an absolute URL, on the API's public origin when the page was published."
    });
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend([json!("slug"), json!("status")]);
    }
    schema
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = pages().operations();
    for operation in &mut operations {
        let name = operation.name.clone();
        match name.as_str() {
            "pages_list" => operation.response = Some(Schema::lazy(|| list_schema(page_schema()))),
            "pages_create" => operation.handler = handler(|call| async move { create(&call).await }),
            "pages_update" => operation.handler = handler(|call| async move { update(&call, WriteMode::Patch).await }),
            "pages_replace" => {
                operation.handler = handler(|call| async move { update(&call, WriteMode::Replace).await })
            }
            "pages_delete" => {
                operation.handler = handler(|call| async move { delete(&call).await });
                operation.description =
                    Some("A published page is 409: `unpublish` (pages:run) takes it down first.".into());
            }
            _ => {}
        }
        if matches!(
            name.as_str(),
            "pages_create" | "pages_get" | "pages_update" | "pages_replace"
        ) {
            operation.response = Some(Schema::lazy(page_schema).named("Page"));
        }
    }
    let run = Access::Space(Scope::new(Domain::Pages, Action::Run));
    operations.push(
        Operation::new(
            "pages_publish",
            Method::POST,
            "/pages/{id}/publish",
            run,
            Effect::Live,
            "Publish a page: its current draft becomes the live snapshot at /p/{space_id}/{slug}",
            handler(|call| async move { publish(&call).await }),
        )
        .with_params(vec![Param::path("id", "The page's id.")])
        .with_no_input()
        .approving_version(|call: Call| async move { Ok(pages().load(&call, call.path_param("id")?).await?.version) })
        .answers(StatusCode::OK, Schema::lazy(page_schema).named("Page")),
    );
    operations.push(
        Operation::new(
            "pages_unpublish",
            Method::POST,
            "/pages/{id}/unpublish",
            run,
            Effect::Live,
            "Take a published page down; the draft stays",
            handler(|call| async move { unpublish(&call).await }),
        )
        .with_params(vec![Param::path("id", "The page's id.")])
        .with_no_input()
        .answers(StatusCode::OK, Schema::lazy(page_schema).named("Page")),
    );
    operations.push(public::operation());
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

/// The body without the fields only the server writes.
fn client_fields(body: &Value) -> Value {
    match body {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(name, _)| !SERVER_WRITTEN.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a write does to the slug.
enum SlugChoice {
    /// The caller named it: a clash is 409.
    Explicit(String),
    /// Derive it from the title, with a suffix if taken.
    Derive,
    /// Leave it as it is.
    Keep,
}

async fn create(call: &Call) -> Result<Reply, ApiError> {
    let resource = pages();
    let Validated { set, .. } =
        validate(&resource.fields, &client_fields(&call.body), WriteMode::Create).map_err(ApiError::validation)?;
    let title = set.get("title").and_then(Value::as_str).unwrap_or_default();
    let explicit = set.get("slug").and_then(Value::as_str).map(str::to_owned);
    let base = slugify(title);
    let id = new_id(resource.id_prefix);
    let partition = resource.partition(call)?;
    for _ in 0..ATTEMPTS {
        let slug = match &explicit {
            Some(slug) => slug.clone(),
            None => slug::first_free(call, &base, None).await?,
        };
        let now = format_datetime(call.engine.now());
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.extend(set.clone());
        body.insert("slug".into(), json!(slug));
        body.insert("status".into(), json!("draft"));
        body.insert("created_at".into(), json!(now));
        body.insert("updated_at".into(), json!(now));
        let item = Item::new(partition.clone(), id.clone(), body);
        match commit(call, None, Some(&item), Vec::new(), "created").await? {
            Outcome::Done => return Ok(Reply::created(Resource::render(&item)).with_etag(item.version)),
            Outcome::SlugTaken(slug) if explicit.is_some() => return Err(slug_taken(&slug)),
            Outcome::SlugTaken(_) | Outcome::Stale | Outcome::Busy => {}
        }
    }
    Err(ApiError::Conflict(
        "Other pages kept taking the slug while we chose one; retry.".into(),
    ))
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::Conflict(format!(
        "The slug `{slug}` is taken by another page in this Space; choose another."
    ))
}

/// PATCH and PUT: the draft changes; the live snapshot does not.
async fn update(call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
    let resource = pages();
    let validated = validate(&resource.fields, &client_fields(&call.body), mode).map_err(ApiError::validation)?;
    let id = call.path_param("id")?.to_owned();
    let choice = match validated.set.get("slug").and_then(Value::as_str) {
        Some(slug) => SlugChoice::Explicit(slug.to_owned()),
        None if validated.clear.contains(&"slug") => SlugChoice::Derive,
        None => SlugChoice::Keep,
    };
    for _ in 0..ATTEMPTS {
        let current = resource.load(call, &id).await?;
        call.check_if_match(current.version)?;
        let mut next = current.clone();
        let kept_slug = current.body.get("slug").cloned();
        if mode == WriteMode::Replace {
            next.body.retain(|name, _| KEPT_BY_REPLACE.contains(&name.as_str()));
        }
        for name in &validated.clear {
            next.body.remove(*name);
        }
        next.body.extend(validated.set.clone());
        // `layout_html: null` empties the layout; a page always has one.
        next.body.entry("layout_html").or_insert_with(|| json!(""));
        let slug = match &choice {
            SlugChoice::Explicit(slug) => json!(slug),
            SlugChoice::Keep => kept_slug.unwrap_or_else(|| json!("page")),
            SlugChoice::Derive => {
                let title = next.body.get("title").and_then(Value::as_str).unwrap_or_default();
                json!(slug::first_free(call, &slugify(title), Some(&id)).await?)
            }
        };
        next.body.insert("slug".into(), slug);
        next.version = current.version + 1;
        next.body
            .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
        match commit(call, Some(&current), Some(&next), Vec::new(), "updated").await? {
            Outcome::Done => return Ok(Reply::ok(Resource::render(&next)).with_etag(next.version)),
            Outcome::SlugTaken(slug) if matches!(choice, SlugChoice::Explicit(_)) => return Err(slug_taken(&slug)),
            Outcome::Stale if call.if_match.is_some() => return Err(stale()),
            Outcome::SlugTaken(_) | Outcome::Stale | Outcome::Busy => {}
        }
    }
    Err(ApiError::Conflict(
        "The page kept changing while we wrote it; retry.".into(),
    ))
}

fn stale() -> ApiError {
    ApiError::PreconditionFailed(
        "The page changed since it was read; the If-Match precondition no longer holds.".into(),
    )
}

async fn delete(call: &Call) -> Result<Reply, ApiError> {
    let resource = pages();
    let id = call.path_param("id")?.to_owned();
    for _ in 0..ATTEMPTS {
        let current = resource.load(call, &id).await?;
        call.check_if_match(current.version)?;
        // Taking a page down is a live action (`pages:run`): a write deletes drafts only.
        if current.body.get("status").and_then(Value::as_str) == Some("published") {
            return Err(ApiError::Conflict(
                "The page is published: take it down first with POST /pages/{id}/unpublish (pages:run).".into(),
            ));
        }
        let extra = take_down(call, &id).await?;
        match commit(call, Some(&current), None, extra, "deleted").await? {
            Outcome::Done => return Ok(Reply::no_content()),
            Outcome::Stale if call.if_match.is_some() => return Err(stale()),
            _ => {}
        }
    }
    Err(ApiError::Conflict(
        "The page kept changing while we deleted it; retry.".into(),
    ))
}

/// Takes a snapshot of the draft: sanitized HTML, title and slug, and a copy of every
/// embedded form, served until the next publish or an unpublish. Every embedded form must
/// exist in the Space. Copying the forms keeps the live page the publisher's: a key that
/// may edit forms but not publish cannot change what the page shows or accepts.
async fn publish(call: &Call) -> Result<Reply, ApiError> {
    let resource = pages();
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    for _ in 0..ATTEMPTS {
        let current = resource.load(call, &id).await?;
        call.check_if_match(current.version)?;
        let text = |name: &str| {
            current
                .body
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (title, slug, layout) = (text("title"), text("slug"), text("layout_html"));
        let html = sanitize(&layout);
        let mut form_ids: Vec<String> = Vec::new();
        let mut embedded = Vec::new();
        let mut problems = Vec::new();
        for placeholder in placeholders(&html) {
            if form_ids.contains(&placeholder.form_id) {
                continue;
            }
            match forms::find_form(call, &placeholder.form_id).await? {
                Some(form) => embedded.push(form),
                None => problems.push(format!(
                    "{{{{form:{}}}}} names no form of this Space",
                    placeholder.form_id
                )),
            }
            form_ids.push(placeholder.form_id);
        }
        if form_ids.len() > MAX_EMBEDDED_FORMS {
            problems.push(format!(
                "embeds {} forms; a page embeds at most {MAX_EMBEDDED_FORMS}",
                form_ids.len()
            ));
        }
        if !problems.is_empty() {
            return Err(ApiError::validation(FieldErrors::from([(
                "layout_html".to_owned(),
                problems,
            )])));
        }
        let now = format_datetime(call.engine.now());
        let path = format!("/p/{space}/{slug}");
        let mut next = current.clone();
        next.version = current.version + 1;
        next.body.insert("status".into(), json!("published"));
        next.body.insert("published_at".into(), json!(now));
        next.body.insert("published_slug".into(), json!(slug));
        next.body
            .insert("public_url".into(), json!(call.engine.public_link(&path)));
        next.body.insert("public_path".into(), json!(path));
        next.body.insert("updated_at".into(), json!(now));
        let mut snapshot = Map::new();
        snapshot.insert("page_id".into(), json!(id));
        snapshot.insert("title".into(), json!(title));
        snapshot.insert("slug".into(), json!(slug));
        snapshot.insert("html".into(), json!(html));
        snapshot.insert("forms".into(), json!(form_ids));
        let versions: Map<String, Value> = embedded.iter().map(|f| (f.sk.clone(), json!(f.version))).collect();
        snapshot.insert(FORM_VERSIONS.into(), Value::Object(versions));
        snapshot.insert("page_version".into(), json!(next.version));
        snapshot.insert("published_at".into(), json!(now));
        let key = keys::page_snapshot(&space, &id);
        let snapshot = Item::new(key.pk, key.sk, snapshot);
        // The copies the previous snapshot kept of forms this one no longer embeds go.
        let mut extra = drop_copies(call, &id, &form_ids).await?;
        extra.push(Write::put(snapshot, Condition::None));
        extra.extend(
            embedded
                .iter()
                .map(|form| Write::put(forms::capture(&space, &id, form), Condition::None)),
        );
        match commit(call, Some(&current), Some(&next), extra, "published").await? {
            Outcome::Done => return Ok(Reply::ok(Resource::render(&next)).with_etag(next.version)),
            Outcome::Stale if call.if_match.is_some() => return Err(stale()),
            _ => {}
        }
    }
    Err(ApiError::Conflict(
        "The page kept changing while we published it; retry.".into(),
    ))
}

async fn unpublish(call: &Call) -> Result<Reply, ApiError> {
    let resource = pages();
    let id = call.path_param("id")?.to_owned();
    for _ in 0..ATTEMPTS {
        let current = resource.load(call, &id).await?;
        call.check_if_match(current.version)?;
        if current.body.get("status").and_then(Value::as_str) != Some("published") {
            return Err(ApiError::Conflict("The page is not published.".into()));
        }
        let mut next = current.clone();
        next.version = current.version + 1;
        for name in ["published_at", "published_slug", "public_path", "public_url"] {
            next.body.remove(name);
        }
        next.body.insert("status".into(), json!("draft"));
        next.body
            .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
        let extra = take_down(call, &id).await?;
        match commit(call, Some(&current), Some(&next), extra, "unpublished").await? {
            Outcome::Done => return Ok(Reply::ok(Resource::render(&next)).with_etag(next.version)),
            Outcome::Stale if call.if_match.is_some() => return Err(stale()),
            _ => {}
        }
    }
    Err(ApiError::Conflict(
        "The page kept changing while we took it down; retry.".into(),
    ))
}

/// The writes that take a page's live snapshot down with the copies of forms it captured.
async fn take_down(call: &Call, page_id: &str) -> Result<Vec<Write>, ApiError> {
    let key = keys::page_snapshot(call.space_id()?, page_id);
    let mut writes = drop_copies(call, page_id, &[]).await?;
    writes.push(Write::delete(key.pk, key.sk, Condition::None));
    Ok(writes)
}

/// Deletes of the form copies the live snapshot holds (it lists them), except `keep`.
async fn drop_copies(call: &Call, page_id: &str, keep: &[String]) -> Result<Vec<Write>, ApiError> {
    let space = call.space_id()?;
    let key = keys::page_snapshot(space, page_id);
    let Some(snapshot) = call.engine.store().get(&key.pk, &key.sk).await? else {
        return Ok(Vec::new());
    };
    let captured = snapshot
        .body
        .get(FORM_VERSIONS)
        .and_then(Value::as_object)
        .map(|versions| versions.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    Ok(captured
        .iter()
        .filter(|form_id| !keep.contains(form_id))
        .map(|form_id| {
            let copy = keys::page_form(space, page_id, form_id);
            Write::delete(copy.pk, copy.sk, Condition::None)
        })
        .collect())
}

/// How a page transaction ended.
enum Outcome {
    Done,
    /// Another page holds this slug.
    SlugTaken(String),
    /// The page moved past the version read.
    Stale,
    /// Another transaction touched the same items at that moment.
    Busy,
}

/// The slugs a page holds claims for: its draft slug and, while published, its live one.
fn held(page: Option<&Item>) -> BTreeSet<String> {
    let Some(page) = page else { return BTreeSet::new() };
    ["slug", "published_slug"]
        .iter()
        .filter_map(|name| page.body.get(*name).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// One transaction for a page change: the slug claims it gains (conditional puts, first),
/// the page itself (version-checked), the claims it gives up, `extra` (the snapshot),
/// and the event.
async fn commit(
    call: &Call,
    current: Option<&Item>,
    next: Option<&Item>,
    extra: Vec<Write>,
    verb: &str,
) -> Result<Outcome, ApiError> {
    let space = call.space_id()?;
    let (before, after) = (held(current), held(next));
    let subject = next
        .or(current)
        .ok_or_else(|| ApiError::Internal("a page change without a page".into()))?;
    let acquired: Vec<&String> = after.difference(&before).collect();
    let mut writes: Vec<Write> = acquired
        .iter()
        .map(|slug| slug::acquire(space, slug, &subject.sk))
        .collect();
    let page_index = writes.len();
    writes.push(match (current, next) {
        (Some(current), Some(next)) => Write::put(next.clone(), Condition::Version(current.version)),
        (Some(current), None) => Write::delete(
            current.pk.clone(),
            current.sk.clone(),
            Condition::Version(current.version),
        ),
        (None, _) => Write::put(subject.clone(), Condition::NotExists),
    });
    writes.extend(before.difference(&after).map(|slug| slug::release(space, slug)));
    writes.extend(extra);
    writes.push(pages().event(call, verb, subject)?);
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Outcome::Done),
        Err(StoreError::TransactionConflict { index }) if index < page_index => {
            Ok(Outcome::SlugTaken(acquired[index].clone()))
        }
        Err(StoreError::TransactionConflict { index }) if index == page_index => Ok(Outcome::Stale),
        Err(StoreError::Contention) => Ok(Outcome::Busy),
        Err(error) => Err(error.into()),
    }
}
