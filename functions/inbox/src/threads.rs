//! Threads: one conversation with one contact over one messaging connection. A contact has
//! at most one open (or snoozed) thread per connection and address, held by a claim
//! written and removed with the thread's status, so an inbound message finds it in one
//! read and two messages racing to open it open one.

use chrono::{TimeDelta, Utc};
use futures::future::try_join_all;
use serde_json::{Map, Value, json};
use space_auth::{Domain, Principal};
use space_connections::Channel;
use space_http::events::update_event_write;
use space_http::fields::{Field, FieldKind, WriteMode, format_datetime, parse_datetime, validate};
use space_http::ids::new_id;
use space_http::keys::{self, ItemKey};
use space_http::operation::{Call, IfMatch, Reply};
use space_http::resource::{Filter, Parent, Resource};
use space_http::{ApiError, Engine};
use space_store::{Condition, Item, StoreError, Write};
use space_worker::NewJob;

use crate::UNSNOOZE;

pub const THREADS: &str = "inbox_threads";
pub const STATUSES: &[&str] = &["open", "snoozed", "closed"];
/// Where the claims of open threads live, one per connection and sender address.
const OPEN_CLAIMS: &str = "inbox_open_threads";
/// How long after a contact's last inbound message WhatsApp takes free-form replies.
pub const WHATSAPP_WINDOW: TimeDelta = TimeDelta::hours(24);
const MAX_ID_CHARS: usize = 100;
const WRITE_RETRIES: usize = 3;

/// The thread resource: lists and gets come from the shared machinery, every change is
/// this module's (a status moves the open claim with it).
pub fn resource() -> Resource {
    Resource {
        domain: Domain::Inbox,
        name: "inbox_threads",
        collection: THREADS,
        path: "/inbox/threads",
        item_param: "id",
        singular: "thread",
        plural: "threads",
        event_prefix: "thread",
        id_prefix: "thr",
        parent: None,
        fields: vec![
            Field::new(
                "assignee_id",
                FieldKind::Text { max: MAX_ID_CHARS },
                "The member handling it (GET /users).",
            ),
            Field::new("tags", FieldKind::Tags, "Labels, e.g. `billing`.").default(|| Value::Array(Vec::new())),
            Field::new(
                "snoozed_until",
                FieldKind::DateTime,
                "Out of the open list until then, when it reopens by itself (a new inbound message reopens it sooner). Must be in the future; null wakes it now.",
            ),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "channel_id",
                field: "channel_id",
                kind: FieldKind::Text { max: MAX_ID_CHARS },
            },
            Filter::Equals {
                param: "assignee_id",
                field: "assignee_id",
                kind: FieldKind::Text { max: MAX_ID_CHARS },
            },
            Filter::IndexedTag {
                param: "tag",
                field: "tags",
                spill: contacts::tag_spill_job,
            },
            Filter::Equals {
                param: "contact_id",
                field: "contact_id",
                kind: FieldKind::Text { max: MAX_ID_CHARS },
            },
            Filter::IndexedSearch {
                param: "q",
                fields: &["address", "preview"],
            },
        ],
        rules: None,
    }
}

/// How much of the latest message a thread shows (and searches): short enough that a new
/// message's words and the last one's fit one transaction with the message.
pub const PREVIEW_CHARS: usize = 60;

/// Shows `text`, the thread's latest message, as its `preview`: its first
/// [`PREVIEW_CHARS`] characters, cut at a word.
pub fn set_preview(thread: &mut Item, text: &str) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let preview = if text.chars().count() <= PREVIEW_CHARS {
        text
    } else {
        let cut: String = text.chars().take(PREVIEW_CHARS).collect();
        let whole = cut.rsplit_once(' ').map_or(cut.as_str(), |(words, _)| words);
        format!("{whole}…")
    };
    thread.body.insert("preview".into(), json!(preview));
}

/// Internal notes on a thread: never sent to the contact.
pub fn notes() -> Resource {
    Resource {
        domain: Domain::Inbox,
        name: "inbox_threads_notes",
        collection: "inbox_notes",
        path: "/inbox/threads/{id}/notes",
        item_param: "note_id",
        singular: "note",
        plural: "notes",
        event_prefix: "thread.note",
        id_prefix: "note",
        parent: Some(Parent {
            collection: THREADS,
            singular: "thread",
        }),
        fields: vec![
            Field::new(
                "body",
                FieldKind::LongText { max: 20_000 },
                "The note, in markdown; only the Space sees it.",
            )
            .required(),
        ],
        filters: vec![],
        rules: None,
    }
}

/// A thread as the API shows it.
pub fn schema() -> Value {
    let mut schema = resource().item_schema();
    let properties = &mut schema["properties"];
    properties["status"] = json!({"type": "string", "enum": STATUSES});
    properties["contact_id"] = json!({"type": "string"});
    properties["channel_id"] = json!({"type": "string", "description": "The messaging connection it runs over."});
    properties["channel"] = json!({"type": "string", "enum": Channel::NAMES});
    properties["address"] = json!({"type": "string", "description": "The contact's address on the channel."});
    properties["inbound_count"] = json!({"type": "integer", "minimum": 0});
    properties["outbound_count"] = json!({"type": "integer", "minimum": 0});
    properties["last_inbound_at"] = json!({"type": "string", "format": "date-time"});
    properties["last_outbound_at"] = json!({"type": "string", "format": "date-time"});
    properties["last_message_at"] = json!({"type": "string", "format": "date-time"});
    properties["closed_at"] = json!({"type": "string", "format": "date-time"});
    properties["preview"] = json!({"type": "string", "maxLength": PREVIEW_CHARS + 1, "description": "The latest message's first words; `?q=` searches them and the address."});
    if let Some(required) = schema["required"].as_array_mut() {
        for field in [
            "status",
            "contact_id",
            "channel_id",
            "channel",
            "address",
            "inbound_count",
            "outbound_count",
        ] {
            required.push(json!(field));
        }
    }
    schema
}

pub fn update_schema() -> Value {
    space_http::fields::body_schema(&resource().fields, WriteMode::Patch)
}

pub fn text<'a>(item: &'a Item, field: &str) -> Option<&'a str> {
    item.body.get(field).and_then(Value::as_str)
}

pub fn status(thread: &Item) -> &str {
    text(thread, "status").unwrap_or("open")
}

pub fn partition(space: &str) -> String {
    keys::collection_partition(space, THREADS)
}

/// The claim of the open thread of `address` on connection `channel_id`.
pub fn open_claim(space: &str, channel_id: &str, address: &str) -> ItemKey {
    keys::unique(space, OPEN_CLAIMS, &format!("{channel_id}#{address}"))
}

pub fn claim_write(space: &str, thread: &Item) -> Write {
    let key = open_claim(
        space,
        text(thread, "channel_id").unwrap_or_default(),
        text(thread, "address").unwrap_or_default(),
    );
    let mut body = Map::new();
    body.insert("id".into(), json!(thread.sk));
    Write::put(Item::new(key.pk, key.sk, body), Condition::NotExists)
}

fn release_write(space: &str, thread: &Item) -> Write {
    let key = open_claim(
        space,
        text(thread, "channel_id").unwrap_or_default(),
        text(thread, "address").unwrap_or_default(),
    );
    Write::delete(key.pk, key.sk, Condition::None)
}

pub async fn get(engine: &Engine, space: &str, id: &str) -> Result<Option<Item>, StoreError> {
    engine.store().get(&partition(space), id).await
}

pub async fn load(call: &Call, id: &str) -> Result<Item, ApiError> {
    get(&call.engine, call.space_id()?, id)
        .await?
        .ok_or_else(|| ApiError::not_found("thread", id))
}

/// The index writes of a thread moving from `before` (`None`: new) to `after`: its tags
/// (entries and counts) and the words `?q=` finds it by.
pub fn index_writes(space: &str, before: Option<&Item>, after: &Item) -> Vec<Write> {
    resource().index_writes_in(space, &keys::index_scope(THREADS, None), before, Some(after))
}

/// What a change makes of a thread: the event it records, and writes beside the thread's.
pub struct Change {
    pub kind: &'static str,
    pub writes: Vec<Write>,
}

/// Read-modify-write of one thread with its event: `change` sees the current thread and
/// edits the next one (its version and `updated_at` are set here). Retries when another
/// writer got there first, unless the caller pinned a version with `If-Match`.
pub async fn transition<F>(
    engine: &Engine,
    space: &str,
    principal: &Principal,
    id: &str,
    if_match: Option<IfMatch>,
    mut change: F,
) -> Result<Item, ApiError>
where
    F: FnMut(&Item, &mut Item) -> Result<Change, ApiError>,
{
    for _ in 0..WRITE_RETRIES {
        let current = get(engine, space, id)
            .await?
            .ok_or_else(|| ApiError::not_found("thread", id))?;
        if let Some(expected) = if_match
            && !expected.matches(current.version)
        {
            return Err(ApiError::PreconditionFailed(format!(
                "The thread is at version {}; the If-Match precondition no longer holds. Read it again.",
                current.version
            )));
        }
        let now = engine.now();
        let mut next = current.clone();
        let Change {
            kind,
            writes: mut extra,
        } = change(&current, &mut next)?;
        extra.extend(index_writes(space, Some(&current), &next));
        next.version = current.version + 1;
        next.body.insert("updated_at".into(), json!(format_datetime(now)));
        let mut writes = vec![
            Write::put(next.clone(), Condition::Version(current.version)),
            update_event_write(
                space,
                kind,
                id,
                &Resource::render(&current),
                Resource::render(&next),
                principal,
                now,
            ),
        ];
        writes.extend(extra);
        let mut spill = None;
        if writes.len() > space_store::MAX_TRANSACTION_WRITES {
            let scope = keys::index_scope(THREADS, None);
            (writes, spill) = space_http::resource::fitted(
                &resource().filters,
                space,
                &scope,
                writes,
                Some(&current),
                Some(&next),
                now,
            );
        }
        match engine.store().transact(writes).await {
            Ok(()) => {
                space_http::resource::finish_spill(engine, spill).await;
                return Ok(next);
            }
            Err(StoreError::TransactionConflict { index: 0 } | StoreError::Contention) if if_match.is_none() => {}
            Err(StoreError::TransactionConflict { index: 0 }) => {
                return Err(ApiError::PreconditionFailed(
                    "The thread changed since it was read; the If-Match precondition no longer holds.".into(),
                ));
            }
            Err(StoreError::TransactionConflict { .. }) => {
                let claim = open_claim(
                    space,
                    text(&current, "channel_id").unwrap_or_default(),
                    text(&current, "address").unwrap_or_default(),
                );
                let other = engine
                    .store()
                    .get(&claim.pk, &claim.sk)
                    .await?
                    .and_then(|claim| claim.body.get("id").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                return Err(ApiError::Conflict(format!(
                    "The contact has another open thread on this channel (`{other}`): close it first, or reply there."
                )));
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "The thread kept changing while we wrote it; retry.".into(),
    ))
}

/// How far ahead a thread may be snoozed: each snooze is a timer (in AWS, a schedule).
pub const MAX_SNOOZE_DAYS: i64 = 366;

/// The name of the job that ends snooze `token`: named, so it can be withdrawn.
fn unsnooze_job(token: &str) -> String {
    format!("unsnooze-{token}")
}

/// Withdraws the job of the thread's current snooze, if it has one: waking, closing or
/// snoozing it again leaves no timer behind (in AWS, no schedule left to fire for nothing).
/// A snooze from before jobs were named finds nothing to withdraw; its job, when it runs,
/// finds the thread moved.
pub fn withdraw_snooze(thread: &Item) -> Option<Write> {
    let token = thread.body.get("snooze").and_then(Value::as_str)?;
    let until = parse_datetime(thread.body.get("snoozed_until").and_then(Value::as_str)?)?;
    Some(space_worker::cancel(&unsnooze_job(token), until))
}

/// The fields a PATCH may change, checked.
pub async fn update(call: Call) -> Result<Reply, ApiError> {
    let fields = resource().fields;
    let validated = validate(&fields, &call.body, WriteMode::Patch).map_err(ApiError::validation)?;
    let now = call.engine.now();
    let snooze_until = match validated.set.get("snoozed_until").and_then(Value::as_str) {
        Some(at) => match parse_datetime(at) {
            Some(at) if at > now && at <= now + TimeDelta::days(MAX_SNOOZE_DAYS) => Some(at),
            _ => {
                return Err(ApiError::invalid_field(
                    "snoozed_until",
                    format!(
                        "must be in the future, within {MAX_SNOOZE_DAYS} days; null (or POST …/reopen) wakes it now"
                    ),
                ));
            }
        },
        None => None,
    };
    let wake = validated.clear.contains(&"snoozed_until");
    let space = call.space_id()?.to_owned();
    let token = new_id("snz");
    respond(&call, |current, next| {
        let mut kind = "thread.updated";
        let mut writes = Vec::new();
        for name in &validated.clear {
            next.body.remove(*name);
        }
        for (name, value) in &validated.set {
            if *name != "snoozed_until" {
                next.body.insert(name.clone(), value.clone());
            }
        }
        if let Some(at) = snooze_until {
            if status(current) == "closed" {
                return Err(ApiError::Conflict(
                    "The thread is closed: reopen it before snoozing it.".into(),
                ));
            }
            next.body.insert("status".into(), json!("snoozed"));
            next.body.insert("snoozed_until".into(), json!(format_datetime(at)));
            next.body.insert("snooze".into(), json!(token));
            writes.extend(withdraw_snooze(current));
            writes.push(
                NewJob::new(
                    UNSNOOZE,
                    json!({"space_id": space, "thread_id": current.sk, "snooze": token}),
                    now,
                )
                .at(at)
                .named(unsnooze_job(&token))
                .write(),
            );
            kind = "thread.snoozed";
        } else if wake && status(current) == "snoozed" {
            next.body.insert("status".into(), json!("open"));
            next.body.remove("snooze");
            writes.extend(withdraw_snooze(current));
            kind = "thread.reopened";
        }
        Ok(Change { kind, writes })
    })
    .await
}

pub async fn close(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    let now = format_datetime(call.engine.now());
    respond(&call, |current, next| {
        if status(current) == "closed" {
            return Err(ApiError::Conflict("The thread is already closed.".into()));
        }
        next.body.insert("status".into(), json!("closed"));
        next.body.insert("closed_at".into(), json!(now));
        next.body.remove("snooze");
        next.body.remove("snoozed_until");
        let mut writes = vec![release_write(&space, current)];
        writes.extend(withdraw_snooze(current));
        Ok(Change {
            kind: "thread.closed",
            writes,
        })
    })
    .await
}

pub async fn reopen(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    respond(&call, |current, next| {
        let mut writes = match status(current) {
            "open" => return Err(ApiError::Conflict("The thread is already open.".into())),
            "closed" => vec![claim_write(&space, current)],
            _ => Vec::new(),
        };
        writes.extend(withdraw_snooze(current));
        next.body.insert("status".into(), json!("open"));
        next.body.remove("closed_at");
        next.body.remove("snooze");
        next.body.remove("snoozed_until");
        Ok(Change {
            kind: "thread.reopened",
            writes,
        })
    })
    .await
}

/// A thread route's change through [`transition`] (the path's thread, the caller's
/// `If-Match`), answered with the thread.
async fn respond<F>(call: &Call, change: F) -> Result<Reply, ApiError>
where
    F: FnMut(&Item, &mut Item) -> Result<Change, ApiError>,
{
    let thread = transition(
        &call.engine,
        call.space_id()?,
        &call.principal,
        call.path_param("id")?,
        call.if_match,
        change,
    )
    .await?;
    Ok(Reply::ok(Resource::render(&thread)).with_etag(thread.version))
}

/// Whether a free-form reply may go now, and until when (WhatsApp's 24 hours after the
/// contact's last inbound message; other channels have no window).
pub fn reply_window(thread: &Item, now: chrono::DateTime<Utc>) -> (bool, Option<chrono::DateTime<Utc>>) {
    match text(thread, "channel").and_then(Channel::parse) {
        Some(Channel::Whatsapp) => {
            let until = text(thread, "last_inbound_at")
                .and_then(parse_datetime)
                .map(|at| at + WHATSAPP_WINDOW);
            (until.is_some_and(|until| now < until), until)
        }
        _ => (true, None),
    }
}

pub fn summary_schema() -> Value {
    json!({
        "type": "object",
        "title": "ThreadSummary",
        "description": "Computed from the thread, its contact and the contact's tasks; nothing is generated.",
        "properties": {
            "thread_id": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES},
            "channel": {"type": "string", "enum": Channel::NAMES},
            "contact": {"type": ["object", "null"], "description": "The contact, as GET /contacts/{id} shows it (null once deleted, or for a key without `contacts:read`)."},
            "messages": {
                "type": "object",
                "properties": {"inbound": {"type": "integer"}, "outbound": {"type": "integer"}},
                "required": ["inbound", "outbound"]
            },
            "last_inbound_at": {"type": ["string", "null"], "format": "date-time"},
            "last_outbound_at": {"type": ["string", "null"], "format": "date-time"},
            "free_form_reply": {
                "type": "object",
                "properties": {
                    "allowed": {"type": "boolean", "description": "Whether POST …/reply takes text now."},
                    "until": {"type": ["string", "null"], "format": "date-time", "description": "When that ends (WhatsApp: 24 hours after the last inbound message); null when the channel has no window."}
                },
                "required": ["allowed", "until"]
            },
            "opted_out": {"type": "boolean", "description": "The contact opted out of this channel (STOP): replies are refused."},
            "open_tasks": {"type": "array", "items": {"type": "object"}, "description": "The contact's tasks not done (tasks with this `contact_id`; empty for a key without `tasks:read`)."}
        },
        "required": ["thread_id", "status", "channel", "contact", "messages", "free_form_reply", "opted_out", "open_tasks"]
    })
}

/// How many of a contact's tasks the summary reads.
const SUMMARY_TASKS: usize = 50;

pub async fn summary(call: Call) -> Result<Reply, ApiError> {
    let thread = load(&call, call.path_param("id")?).await?;
    let space = call.space_id()?;
    let contact_id = text(&thread, "contact_id").unwrap_or_default().to_owned();
    let channel = text(&thread, "channel").unwrap_or_default().to_owned();
    // The contact and its tasks are other domains' data: shown to a key that may read them.
    let reads = |domain| {
        space_http::execute::authorize(
            &call.principal,
            space_auth::Scope::new(domain, space_auth::Action::Read),
            space_http::operation::Effect::Read,
        )
        .is_ok()
    };
    let contact = if reads(Domain::Contacts) {
        let contacts_partition = keys::collection_partition(space, "contacts");
        call.engine.store().get(&contacts_partition, &contact_id).await?
    } else {
        None
    };
    let opted_out = crate::inbound::opted_out(&call.engine, space, &contact_id, &channel).await?;
    let open_tasks: Vec<Value> = if reads(Domain::Tasks) {
        let task_ids = tasks::tasks()
            .find_by_lookup(&call, "contact_id", &contact_id, SUMMARY_TASKS)
            .await?;
        let tasks_partition = keys::collection_partition(space, "tasks");
        let reads = task_ids.iter().map(|id| call.engine.store().get(&tasks_partition, id));
        try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .filter(|task| text(task, "status") != Some("done"))
            .map(|task| Resource::render(&task))
            .collect()
    } else {
        Vec::new()
    };
    let (allowed, until) = reply_window(&thread, call.engine.now());
    let count = |field: &str| thread.body.get(field).and_then(Value::as_u64).unwrap_or(0);
    Ok(Reply::ok(json!({
        "thread_id": thread.sk,
        "status": status(&thread),
        "channel": channel,
        "contact": contact.as_ref().map(Resource::render),
        "messages": {"inbound": count("inbound_count"), "outbound": count("outbound_count")},
        "last_inbound_at": thread.body.get("last_inbound_at"),
        "last_outbound_at": thread.body.get("last_outbound_at"),
        "free_form_reply": {"allowed": allowed, "until": until.map(format_datetime)},
        "opted_out": opted_out,
        "open_tasks": open_tasks,
    })))
}

pub fn tags_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"tags": FieldKind::Tags.schema()},
        "required": ["tags"],
        "additionalProperties": false
    })
}

/// `POST /inbox/threads/{id}/tags`: adds tags (the Space's tags, shared with contacts),
/// keeping those it has.
pub async fn add_tags(call: Call) -> Result<Reply, ApiError> {
    let Some(object) = call.body.as_object() else {
        return Err(ApiError::invalid_field("tags", "send {\"tags\": [\"vip\"]}"));
    };
    if let Some(extra) = object.keys().find(|key| *key != "tags") {
        return Err(ApiError::invalid_field(extra, "is not accepted here; send only `tags`"));
    }
    let wanted = FieldKind::Tags
        .check(object.get("tags").unwrap_or(&Value::Null))
        .map_err(|why| ApiError::invalid_field("tags", why))?;
    let wanted = wanted.as_array().cloned().unwrap_or_default();
    let space = call.space_id()?.to_owned();
    let id = call.path_param("id")?.to_owned();
    let thread = transition(
        &call.engine,
        &space,
        &call.principal,
        &id,
        call.if_match,
        |current, next| {
            let mut tags = current
                .body
                .get("tags")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for tag in &wanted {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
            if tags.len() > space_http::fields::MAX_TAGS {
                return Err(ApiError::invalid_field(
                    "tags",
                    format!("a thread has at most {} tags", space_http::fields::MAX_TAGS),
                ));
            }
            next.body.insert("tags".into(), Value::Array(tags));
            Ok(Change {
                kind: "thread.updated",
                writes: Vec::new(),
            })
        },
    )
    .await?;
    Ok(Reply::ok(Resource::render(&thread)).with_etag(thread.version))
}
