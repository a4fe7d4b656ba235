//! The Space's tags (`/tags`): one set of labels shared by contacts and inbox threads.
//!
//! A tag exists when it is registered (`POST /tags`, with a colour) or carried by a
//! contact or thread: the list is the registry joined with the usage counts, which the
//! contacts' and threads' tag indexes keep in the same transactions as the items
//! (`Filter::IndexedTag`; a change of more tags than fit one transaction leaves them to a
//! job that counts each once), so listing reads a few counters, never the items. A tag
//! used but never registered shows with no colour; registering it later keeps its usage.
//!
//! Renaming or deleting a tag changes every contact and thread carrying it, on the
//! worker ([`Retag`]): each run takes a page of the tag's index entries, rewrites those
//! items (conditional on their version, with their index entries and events) and runs
//! again until the index holds none. The index shrinks as the job advances, so a run
//! that stops anywhere is continued by the next one from where the entries are. Until it
//! is done the tag shows `status: renaming` or `deleting`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Principal, Scope};
use space_http::events::{event_write, update_event_write};
use space_http::fields::{format_datetime, label_schema, normalize_tag};
use space_http::keys;
use space_http::operation::{Access, Answer, Call, Effect, Param, Reply, handler};
use space_http::resource::{Resource, tag_counts, tag_index_writes, tags_of};
use space_http::{ApiError, Engine, FieldErrors, Operation, Schema};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

/// The registry of tags, keyed by name.
pub const COLLECTION: &str = "messaging_tags";
/// The job that renames or deletes a tag on every contact and thread.
pub const RETAG: &str = "messaging.retag";
/// The collections whose items carry the Space's tags, with their event prefixes.
pub const CARRIERS: &[(&str, &str)] = &[("contacts", "contact"), ("inbox_threads", "thread")];
const FIELD: &str = "tags";
/// The longest tag, as contacts and threads take them.
const MAX_TAG_NAME: usize = 64;
/// Lists of every tag a Space may ask for a minute, all keys together: each reads every
/// tag's counters.
pub const LISTS_PER_MINUTE: u32 = 60;
/// Items one retag run rewrites.
pub const RETAG_PAGE: usize = 50;

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Messaging, action))
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The tag itself."},
            "name": {"type": "string"},
            "color": {"type": ["string", "null"], "pattern": "^#[0-9a-f]{6}$", "examples": ["#ff8800"]},
            "contacts": {"type": "integer", "minimum": 0, "description": "Contacts carrying it."},
            "threads": {"type": "integer", "minimum": 0, "description": "Inbox threads carrying it."},
            "status": {"type": "string", "enum": ["active", "renaming", "deleting"]},
            "rename_to": {"type": "string"},
            "registered": {"type": "boolean", "description": "Created with POST /tags (else only in use)."}
        },
        "required": ["id", "name", "contacts", "threads", "status", "registered"]
    })
}

fn body_schema(create: bool) -> Value {
    let mut name = label_schema(MAX_TAG_NAME);
    name["examples"] = json!(["vip"]);
    let mut schema = json!({
        "type": "object",
        "properties": {
            "name": name,
            "color": {"type": ["string", "null"], "pattern": "^#[0-9a-fA-F]{6}$", "description": "Like #ff8800.", "examples": ["#ff8800"]}
        },
        "additionalProperties": false
    });
    if create {
        schema["required"] = json!(["name"]);
    }
    schema
}

fn partition(space: &str) -> String {
    keys::collection_partition(space, COLLECTION)
}

pub fn operations() -> Vec<Operation> {
    let tag = || vec![Param::path("tag", "The tag's name.")];
    vec![
        Operation::new(
            "messaging_tags_list",
            Method::GET,
            "/tags",
            access(Action::Read),
            Effect::Read,
            "List the Space's tags with their colour and how many contacts and threads carry each",
            handler(list),
        )
        .with_description("Every tag in one page (`next_cursor` is null): registered ones and those only in use.")
        .budgeted(LISTS_PER_MINUTE)
        .answers(StatusCode::OK, || space_http::resource::list_schema(schema())),
        Operation::new(
            "messaging_tags_create",
            Method::POST,
            "/tags",
            access(Action::Write),
            Effect::Create,
            "Register a tag with a colour",
            handler(create),
        )
        .with_description("A tag already registered is 409; one only in use is registered, its usage kept.")
        .with_body(|| body_schema(true))
        .answers(StatusCode::CREATED, schema),
        Operation::new(
            "messaging_tags_update",
            Method::PATCH,
            "/tags/{tag}",
            access(Action::Write),
            Effect::Update,
            "Recolour or rename a tag (a rename reaches every contact and thread, on the worker)",
            handler(update),
        )
        .with_description(
            "A new `name` answers 202 with `status: renaming`; the tag is renamed on every contact and thread \
             carrying it, then under its new name. Renaming to a tag that exists is 409, and so is changing a \
             tag being renamed or deleted.",
        )
        .with_params(tag())
        .with_body(|| body_schema(false))
        .answers(StatusCode::OK, schema)
        .with_answer(Answer {
            status: StatusCode::ACCEPTED,
            description: "A rename: the tag is `renaming` until every contact and thread carries the new name.".into(),
            schema: Some(Schema::lazy(schema)),
        }),
        Operation::new(
            "messaging_tags_delete",
            Method::DELETE,
            "/tags/{tag}",
            access(Action::Write),
            Effect::Delete,
            "Delete a tag from the Space: removed from every contact and thread, on the worker",
            handler(delete),
        )
        .with_description(
            "Answers 202 with `status: deleting`; the tag disappears once no contact or thread carries it.",
        )
        .with_params(tag())
        .answers(StatusCode::ACCEPTED, schema),
    ]
}

/// Usage of every tag: `(contacts, threads)`.
async fn usage(engine: &Engine, space: &str) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
    let mut usage: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (index, (collection, _)) in CARRIERS.iter().enumerate() {
        let scope = keys::index_scope(collection, None);
        for (tag, count) in tag_counts(engine.store(), space, &scope, FIELD).await? {
            let entry = usage.entry(tag).or_default();
            if index == 0 {
                entry.0 = count;
            } else {
                entry.1 = count;
            }
        }
    }
    Ok(usage)
}

/// Usage of one tag, `(contacts, threads)`: its counters read by key.
async fn usage_of(engine: &Engine, space: &str, tag: &str) -> Result<(u64, u64), StoreError> {
    let count = |collection: &str| {
        let scope = keys::index_scope(collection, None);
        async move { space_http::resource::tag_count(engine.store(), space, &scope, FIELD, tag).await }
    };
    let (contacts, threads) = (CARRIERS[0].0, CARRIERS[1].0);
    tokio::try_join!(count(contacts), count(threads))
}

async fn registry(engine: &Engine, space: &str) -> Result<BTreeMap<String, Item>, StoreError> {
    let mut found = BTreeMap::new();
    let mut after = None;
    loop {
        let page = engine
            .store()
            .query(Query::partition(partition(space)).after(after).limit(500))
            .await?;
        for item in page.items {
            found.insert(item.sk.clone(), item);
        }
        if page.last_sk.is_none() {
            return Ok(found);
        }
        after = page.last_sk;
    }
}

fn view(name: &str, registered: Option<&Item>, usage: (u64, u64)) -> Value {
    let mut view = Map::new();
    view.insert("id".into(), json!(name));
    view.insert("name".into(), json!(name));
    let field = |field: &str| registered.and_then(|item| item.body.get(field)).cloned();
    view.insert("color".into(), field("color").unwrap_or(Value::Null));
    view.insert("contacts".into(), json!(usage.0));
    view.insert("threads".into(), json!(usage.1));
    view.insert("status".into(), field("status").unwrap_or(json!("active")));
    if let Some(to) = field("rename_to") {
        view.insert("rename_to".into(), to);
    }
    view.insert("registered".into(), json!(registered.is_some()));
    if let Some(item) = registered {
        view.insert("version".into(), json!(item.version));
    }
    Value::Object(view)
}

async fn list(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?;
    let usage = usage(&call.engine, space).await?;
    let registry = registry(&call.engine, space).await?;
    let mut names: Vec<&String> = registry.keys().collect();
    names.extend(usage.iter().filter(|(_, (c, t))| c + t > 0).map(|(name, _)| name));
    names.sort();
    names.dedup();
    let data: Vec<Value> = names
        .into_iter()
        .map(|name| view(name, registry.get(name), usage.get(name).copied().unwrap_or_default()))
        .collect();
    Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
}

/// A tag's name and colour from a request body.
struct TagInput {
    name: Option<String>,
    color: Option<Value>,
}

fn parse(body: &Value) -> Result<TagInput, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "name",
            "send a JSON object with name and color",
        ));
    };
    let mut errors = FieldErrors::new();
    for extra in object.keys().filter(|key| !matches!(key.as_str(), "name" | "color")) {
        errors.insert(extra.clone(), vec!["is not accepted; send name and color".into()]);
    }
    let name = match object.get("name") {
        None => None,
        Some(value) => match normalize_tag(value) {
            Ok(name) => Some(name),
            Err(why) => {
                errors.insert("name".into(), vec![why]);
                None
            }
        },
    };
    let color = match object.get("color") {
        None => None,
        Some(Value::Null) => Some(Value::Null),
        Some(Value::String(text))
            if text.len() == 7 && text.starts_with('#') && text[1..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(json!(text.to_lowercase()))
        }
        Some(_) => {
            errors.insert("color".into(), vec!["must be a colour like #ff8800".into()]);
            None
        }
    };
    if errors.is_empty() {
        Ok(TagInput { name, color })
    } else {
        Err(ApiError::validation(errors))
    }
}

fn registered(space: &str, name: &str, color: Value, now: chrono::DateTime<chrono::Utc>) -> Item {
    let at = format_datetime(now);
    let mut body = Map::new();
    body.insert("id".into(), json!(name));
    body.insert("name".into(), json!(name));
    body.insert("color".into(), color);
    body.insert("status".into(), json!("active"));
    body.insert("created_at".into(), json!(at));
    body.insert("updated_at".into(), json!(at));
    Item::new(partition(space), name.to_owned(), body)
}

async fn create(call: Call) -> Result<Reply, ApiError> {
    let input = parse(&call.body)?;
    let Some(name) = input.name else {
        return Err(ApiError::invalid_field("name", "The name field is required."));
    };
    let space = call.space_id()?.to_owned();
    let now = call.engine.now();
    let item = registered(&space, &name, input.color.unwrap_or(Value::Null), now);
    let usage = usage_of(&call.engine, &space, &name).await?;
    let rendered = view(&name, Some(&item), usage);
    let writes = vec![
        Write::put(item.clone(), Condition::NotExists),
        event_write(&space, "tag.created", &name, rendered.clone(), &call.principal, now),
    ];
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Reply::created(rendered).with_etag(item.version)),
        Err(StoreError::ConditionFailed | StoreError::TransactionConflict { index: 0 }) => {
            Err(ApiError::Conflict(format!("The tag {name} is already registered.")))
        }
        Err(error) => Err(error.into()),
    }
}

/// The tag's registry item as it is, or as it would be registered now (a tag only in use);
/// 404 when the tag neither is registered nor carried by anything.
async fn current(call: &Call, space: &str, name: &str) -> Result<(Option<Item>, (u64, u64)), ApiError> {
    let stored = call.engine.store().get(&partition(space), name).await?;
    let usage = usage_of(&call.engine, space, name).await?;
    if stored.is_none() && usage == (0, 0) {
        return Err(ApiError::not_found("tag", name));
    }
    if let Some(item) = &stored {
        let status = item.body.get("status").and_then(Value::as_str).unwrap_or("active");
        if status != "active" {
            return Err(ApiError::Conflict(format!(
                "The tag {name} is {status}: wait until it is done."
            )));
        }
    }
    Ok((stored, usage))
}

/// Writes the tag's next registry item over `stored` (or as new), with its event.
async fn write_tag(
    call: &Call,
    space: &str,
    stored: Option<&Item>,
    next: Item,
    kind: &str,
    extra: Vec<Write>,
) -> Result<(), ApiError> {
    let now = call.engine.now();
    let condition = stored.map_or(Condition::NotExists, |item| Condition::Version(item.version));
    let before = stored.map(Resource::render).unwrap_or(Value::Null);
    let mut writes = vec![
        Write::put(next.clone(), condition),
        update_event_write(
            space,
            kind,
            &next.sk,
            &before,
            Resource::render(&next),
            &call.principal,
            now,
        ),
    ];
    writes.extend(extra);
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => Err(ApiError::Conflict(
            "The tag changed while it was being written; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// A change to the tag the path names: its registry item as stored (none for a tag only in
/// use), its usage, and the next version to edit (`updated_at` set).
struct Edit {
    space: String,
    name: String,
    stored: Option<Item>,
    usage: (u64, u64),
    next: Item,
    now: chrono::DateTime<chrono::Utc>,
}

async fn edit(call: &Call) -> Result<Edit, ApiError> {
    let space = call.space_id()?.to_owned();
    let name = call.path_param("tag")?.to_owned();
    let (stored, usage) = current(call, &space, &name).await?;
    let now = call.engine.now();
    let mut next = stored
        .clone()
        .unwrap_or_else(|| registered(&space, &name, Value::Null, now));
    if stored.is_some() {
        next.version += 1;
    }
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    Ok(Edit {
        space,
        name,
        stored,
        usage,
        next,
        now,
    })
}

impl Edit {
    /// Writes the next version with its `kind` event and `extra`.
    async fn write(&self, call: &Call, kind: &str, extra: Vec<Write>) -> Result<(), ApiError> {
        write_tag(call, &self.space, self.stored.as_ref(), self.next.clone(), kind, extra).await
    }

    fn view(&self) -> Value {
        view(&self.name, Some(&self.next), self.usage)
    }
}

async fn update(call: Call) -> Result<Reply, ApiError> {
    let input = parse(&call.body)?;
    let mut edit = edit(&call).await?;
    if let Some(color) = input.color {
        edit.next.body.insert("color".into(), color);
    }
    let Some(to) = input.name.filter(|to| *to != edit.name) else {
        edit.write(&call, "tag.updated", Vec::new()).await?;
        return Ok(Reply::ok(edit.view()).with_etag(edit.next.version));
    };
    let taken = call.engine.store().get(&partition(&edit.space), &to).await?.is_some()
        || usage_of(&call.engine, &edit.space, &to).await? != (0, 0);
    if taken {
        return Err(ApiError::Conflict(format!(
            "The tag {to} exists: rename to a tag no contact or thread carries."
        )));
    }
    edit.next.body.insert("status".into(), json!("renaming"));
    edit.next.body.insert("rename_to".into(), json!(to));
    let job = NewJob::new(
        RETAG,
        json!({"space_id": edit.space, "tag": edit.name, "to": to}),
        edit.now,
    )
    .write();
    edit.write(&call, "tag.renaming", vec![job]).await?;
    Ok(Reply::ok(edit.view())
        .with_status(StatusCode::ACCEPTED)
        .with_etag(edit.next.version))
}

async fn delete(call: Call) -> Result<Reply, ApiError> {
    let mut edit = edit(&call).await?;
    edit.next.body.insert("status".into(), json!("deleting"));
    let job = NewJob::new(RETAG, json!({"space_id": edit.space, "tag": edit.name}), edit.now).write();
    edit.write(&call, "tag.deleting", vec![job]).await?;
    Ok(Reply::ok(edit.view()).with_status(StatusCode::ACCEPTED))
}

/// Renames (payload `to`) or deletes a tag on every contact and thread, a page per run.
pub struct Retag;

fn payload<'a>(job: &'a Job, name: &str) -> Result<&'a str, JobError> {
    job.payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
}

#[async_trait]
impl Handler for Retag {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let space = payload(job, "space_id")?;
        let tag = payload(job, "tag")?;
        let to = job.payload.get("to").and_then(Value::as_str);
        for (collection, events) in CARRIERS {
            let scope = keys::index_scope(collection, None);
            let page = engine
                .store()
                .query(
                    Query::partition(keys::lookup_partition(space, &scope, FIELD))
                        .range(SortRange::BeginsWith(format!("{tag}#")))
                        .limit(RETAG_PAGE),
                )
                .await?;
            if page.items.is_empty() {
                continue;
            }
            for entry in &page.items {
                let id = entry.sk[tag.len() + 1..].to_owned();
                retag_item(engine, space, collection, events, &id, tag, to).await?;
            }
            // More of this tag to go: the next run reads the entries left.
            return Ok(Outcome::Later(engine.now()));
        }
        finish(engine, space, tag, to).await?;
        Ok(Outcome::Done)
    }
}

/// Rewrites one item's tags, conditional on the version read.
async fn retag_item(
    engine: &Engine,
    space: &str,
    collection: &str,
    events: &str,
    id: &str,
    tag: &str,
    to: Option<&str>,
) -> Result<(), JobError> {
    let scope = keys::index_scope(collection, None);
    let items = keys::collection_partition(space, collection);
    let Some(current) = engine.store().get(&items, id).await? else {
        // An entry without its item: remove it so the walk ends.
        let key = keys::lookup_entry(space, &scope, FIELD, tag, id);
        engine.store().delete(&key.pk, &key.sk, Condition::None).await?;
        return Ok(());
    };
    let old = tags_of(&current.body, FIELD);
    if !old.iter().any(|carried| carried == tag) {
        // A stale entry (the item lost the tag and a late write left its entry): remove
        // it, as long as the item is as read, so the walk ends instead of rewriting the
        // item on every run.
        let key = keys::lookup_entry(space, &scope, FIELD, tag, id);
        let writes = vec![
            Write::check(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            Write::delete(key.pk, key.sk, Condition::None),
        ];
        return match engine.store().transact(writes).await {
            Ok(()) | Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        };
    }
    let mut tags: Vec<Value> = Vec::new();
    for value in current.body.get(FIELD).and_then(Value::as_array).into_iter().flatten() {
        let value = match (value.as_str(), to) {
            (Some(name), Some(to)) if name == tag => json!(to),
            (Some(name), None) if name == tag => continue,
            _ => value.clone(),
        };
        if !tags.contains(&value) {
            tags.push(value);
        }
    }
    let now = engine.now();
    let mut next = current.clone();
    next.body.insert(FIELD.into(), Value::Array(tags));
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next.version += 1;
    let new = tags_of(&next.body, FIELD);
    let mut writes = vec![
        Write::put(next.clone(), Condition::Version(current.version)),
        update_event_write(
            space,
            &format!("{events}.updated"),
            id,
            &Resource::render(&current),
            Resource::render(&next),
            &Principal::system(),
            now,
        ),
    ];
    writes.extend(tag_index_writes(space, &scope, FIELD, id, &old, &new));
    match engine.store().transact(writes).await {
        // Changed meanwhile: its entry is still there if it still carries the tag, and
        // the next run takes it again.
        Ok(()) | Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Once nothing carries the old tag: the registry holds the new name (rename) or nothing.
async fn finish(engine: &Engine, space: &str, tag: &str, to: Option<&str>) -> Result<(), JobError> {
    let Some(current) = engine.store().get(&partition(space), tag).await? else {
        return Ok(());
    };
    let now = engine.now();
    let mut writes = vec![Write::delete(
        current.pk.clone(),
        current.sk.clone(),
        Condition::Version(current.version),
    )];
    let kind = if let Some(to) = to {
        let color = current.body.get("color").cloned().unwrap_or(Value::Null);
        let renamed = registered(space, to, color, now);
        writes.push(Write::put(renamed.clone(), Condition::None));
        writes.push(event_write(
            space,
            "tag.renamed",
            to,
            json!({"name": to, "previous_name": tag}),
            &Principal::system(),
            now,
        ));
        "renamed"
    } else {
        writes.push(event_write(
            space,
            "tag.deleted",
            tag,
            json!({"name": tag}),
            &Principal::system(),
            now,
        ));
        "deleted"
    };
    match engine.store().transact(writes).await {
        Ok(()) => Ok(()),
        Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
            Err(JobError::Retry(format!("the tag moved while it was {kind}")))
        }
        Err(error) => Err(error.into()),
    }
}
