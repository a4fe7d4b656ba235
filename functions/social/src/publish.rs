//! Going live: schedule, publish now, unschedule (`social:run`), and the job that
//! publishes a due post exactly once.
//!
//! Scheduling gives the post a fresh token (its internal `_schedule` field, never shown)
//! and enqueues a publish job named by it, in the same transaction; moving, unscheduling or
//! deleting the post withdraws that job in its own transaction ([`cancel`]), and changes
//! the token, so a job that had already moved (a retry) finds nothing to do. The job claims the post with a conditional status
//! change (`scheduled` → `publishing`), asks the account's provider to publish, and
//! records the answer with another conditional write. A run that dies after the network
//! answered comes back to a `publishing` post and asks again: the provider knows the post
//! (the sandbox keeps one publication per post), so the network sees it once.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use space_auth::Principal;
use space_connections as connections;
use space_http::events::update_event_write;
use space_http::fields::{FieldKind, format_datetime, parse_datetime};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{self, Call, Reply, handler};
use space_http::resource::Resource;
use space_http::{ApiError, Engine, FieldErrors};
use space_store::{Condition, Item, StoreError, Write, pack_transactions};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::posts::{self, POSTS};
use crate::provider::{PublishError, Published, provider_for};
use crate::queue;
use crate::rules::{self, Draft, Media};

/// The job kind.
pub const PUBLISH: &str = "social.publish";
/// The post's field holding the token of its publish job.
pub const TOKEN: &str = "_schedule";
/// Waits after a provider's transient failures; after the last one the post fails.
pub const RETRY_DELAYS: &[i64] = &[60, 300, 900];
/// How long a post of a paused account waits before it looks again.
const PAUSED_WAIT_MINUTES: i64 = 5;

pub fn schedule_schema() -> Value {
    json!({
        "type": "object",
        "description": "One of the two: a time, or `next_slot` for each account's first free slot (POST /social/slots).",
        "properties": {
            "scheduled_at": {"type": "string", "format": "date-time", "description": "When to publish; must be in the future."},
            "next_slot": {"type": "boolean", "const": true, "description": "Each post at its account's first future slot no scheduled post fills."}
        },
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": false
    })
}

/// When a schedule puts its posts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    At(DateTime<Utc>),
    NextSlot,
}

/// What a live action does to each post it reaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Schedule(When),
    Unschedule,
}

fn when(call: &Call) -> Result<When, ApiError> {
    let body = call.body.as_object().cloned().unwrap_or_default();
    let mut errors = FieldErrors::new();
    for extra in body
        .keys()
        .filter(|k| !matches!(k.as_str(), "scheduled_at" | "next_slot"))
    {
        errors.insert(
            extra.clone(),
            vec!["is not accepted; send scheduled_at or next_slot".into()],
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    match (body.get("scheduled_at"), body.get("next_slot")) {
        (Some(_), Some(_)) => Err(ApiError::invalid_field(
            "next_slot",
            "send scheduled_at or next_slot, not both",
        )),
        (None, Some(Value::Bool(true))) => Ok(When::NextSlot),
        (None, Some(_)) => Err(ApiError::invalid_field("next_slot", "must be true")),
        (Some(value), None) => {
            let at = match FieldKind::DateTime.check(value) {
                Ok(Value::String(at)) => parse_datetime(&at),
                Ok(_) => None,
                Err(message) => return Err(ApiError::invalid_field("scheduled_at", message)),
            };
            match at {
                Some(at) if at > call.engine.now() => Ok(When::At(at)),
                Some(_) => Err(ApiError::invalid_field(
                    "scheduled_at",
                    "must be in the future; POST …/publish publishes now",
                )),
                None => Err(ApiError::invalid_field(
                    "scheduled_at",
                    "must be an RFC 3339 date-time, like 2026-11-22T17:00:00Z",
                )),
            }
        }
        (None, None) => Err(ApiError::invalid_field(
            "scheduled_at",
            "The scheduled_at field is required (or next_slot: true).",
        )),
    }
}

fn empty_body(call: &Call) -> Result<(), ApiError> {
    match call.body.as_object() {
        Some(object) if !object.is_empty() => {
            let mut errors = FieldErrors::new();
            for name in object.keys() {
                errors.insert(name.clone(), vec!["is not accepted; send {}".into()]);
            }
            Err(ApiError::validation(errors))
        }
        _ => Ok(()),
    }
}

/// The write withdrawing the publish job of a scheduled post, if it has one.
pub fn cancel(post: &Item) -> Option<Write> {
    let token = post.body.get(TOKEN).and_then(Value::as_str)?;
    let due = post
        .body
        .get("scheduled_at")
        .and_then(Value::as_str)
        .and_then(parse_datetime)?;
    (status(post) == "scheduled").then(|| space_worker::cancel(token, due))
}

fn status(post: &Item) -> &str {
    post.body.get("status").and_then(Value::as_str).unwrap_or_default()
}

/// The writes that move one post, or `None` when the action does not apply to it.
async fn move_post(call: &Call, space: &str, post: &Item, action: Action) -> Result<Option<Vec<Write>>, ApiError> {
    let now = call.engine.now();
    let mut next = post.clone();
    let mut writes = Vec::new();
    let kind = match (action, status(post)) {
        (Action::Schedule(when), "draft" | "scheduled" | "failed") => {
            let at = match when {
                When::At(at) => at,
                When::NextSlot => {
                    let account = post.body.get("account_id").and_then(Value::as_str).unwrap_or_default();
                    queue::next_slot(&call.engine, space, account, now)
                        .await?
                        .ok_or_else(|| {
                            ApiError::invalid_field(
                                "next_slot",
                                format!("account `{account}` has no free slot: add one with POST /social/slots"),
                            )
                        })?
                }
            };
            let token = new_id("sch");
            next.body.insert("status".into(), json!("scheduled"));
            next.body.insert("scheduled_at".into(), json!(format_datetime(at)));
            next.body.insert(TOKEN.into(), json!(token));
            next.body.remove("error");
            writes.extend(cancel(post));
            writes.push(
                NewJob::new(
                    PUBLISH,
                    json!({"space_id": space, "post_id": post.sk, "schedule": token}),
                    now,
                )
                .named(token)
                .at(at)
                .write(),
            );
            "social_post.scheduled"
        }
        (Action::Unschedule, "scheduled") => {
            next.body.insert("status".into(), json!("draft"));
            next.body.remove(TOKEN);
            writes.extend(cancel(post));
            next.body.remove("error");
            "social_post.unscheduled"
        }
        _ => return Ok(None),
    };
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next.version += 1;
    writes.extend(queue::index_writes(space, Some(post), Some(&next)));
    writes.push(update_event_write(
        space,
        kind,
        &post.sk,
        &Resource::render(post),
        Resource::render(&next),
        &call.principal,
        now,
    ));
    writes.push(Write::put(next, Condition::Version(post.version)));
    Ok(Some(writes))
}

async fn on_cluster(call: Call, action: Action) -> Result<Reply, ApiError> {
    let cluster = posts::load_cluster(&call, call.path_param("id")?).await?;
    call.check_if_match(cluster.version)?;
    let space = call.space_id()?.to_owned();
    let mut moves = Vec::new();
    for post in posts::load_posts(&call, &cluster).await? {
        moves.extend(move_post(&call, &space, &post, action).await?);
    }
    if moves.is_empty() {
        return Err(ApiError::Conflict(match action {
            Action::Schedule(_) => "No post of this cluster can be scheduled: each is published or publishing.".into(),
            Action::Unschedule => "No post of this cluster is scheduled.".into(),
        }));
    }
    // Each post that goes live is one use of a capped key's `social.publish`.
    call.cap_units.set(moves.len() as u64);
    let mut next = cluster.clone();
    if let Action::Schedule(When::At(at)) = action {
        next.body.insert("scheduled_at".into(), json!(format_datetime(at)));
    }
    next.version += 1;
    let mut batches = batches(moves);
    if let Some(last) = batches.last_mut() {
        last.push(Write::put(next.clone(), Condition::Version(cluster.version)));
    }
    for writes in batches {
        call.engine.store().transact(writes).await?;
    }
    Ok(Reply::ok(posts::render_cluster(&call, &next, Vec::new()).await?).with_etag(next.version))
}

/// Each post's writes (its item, event, queue entry and jobs) in as few transactions as
/// the store allows, one post never split across two, with room left in the last for the
/// cluster. A cluster of many accounts can need more than one: should a later one fail,
/// the posts already moved stay moved (each whole), the cluster shows `partial`, and
/// repeating the call moves the rest.
fn batches(moves: Vec<Vec<Write>>) -> Vec<Vec<Write>> {
    pack_transactions(moves, Vec::len, usize::MAX, 1)
        .into_iter()
        .map(|posts| posts.into_iter().flatten().collect())
        .collect()
}

async fn on_post(call: Call, action: Action) -> Result<Reply, ApiError> {
    let post = posts::load_post(&call, call.path_param("id")?).await?;
    call.check_if_match(post.version)?;
    let space = call.space_id()?.to_owned();
    let Some(writes) = move_post(&call, &space, &post, action).await? else {
        return Err(ApiError::Conflict(format!(
            "Post `{}` is {}: it cannot be {}.",
            post.sk,
            status(&post),
            if matches!(action, Action::Unschedule) {
                "unscheduled"
            } else {
                "scheduled"
            }
        )));
    };
    call.engine.store().transact(writes).await?;
    let post = posts::load_post(&call, &post.sk).await?;
    Ok(Reply::ok(Resource::render(&post)).with_etag(post.version))
}

/// What a live route acts on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Cluster,
    Post,
}

/// The three live actions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Schedule,
    Publish,
    Unschedule,
}

/// The handler of `POST /social/{clusters|posts}/{id}/{schedule|publish|unschedule}`.
pub fn live(target: Target, verb: Verb) -> operation::Handler {
    handler(move |call: Call| async move {
        let action = match verb {
            Verb::Schedule => Action::Schedule(when(&call)?),
            Verb::Publish => {
                empty_body(&call)?;
                Action::Schedule(When::At(call.engine.now()))
            }
            Verb::Unschedule => {
                empty_body(&call)?;
                Action::Unschedule
            }
        };
        match target {
            Target::Cluster => on_cluster(call, action).await,
            Target::Post => on_post(call, action).await,
        }
    })
}

/// Publishes one scheduled post, once.
pub struct Publish;

fn payload<'a>(job: &'a Job, name: &str) -> Result<&'a str, JobError> {
    job.payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
}

/// Writes `next` over `post` with its event; `false` when the post moved meanwhile.
async fn record(engine: &Engine, space: &str, post: &Item, next: Item, kind: &str) -> Result<bool, JobError> {
    let event = update_event_write(
        space,
        kind,
        &post.sk,
        &Resource::render(post),
        Resource::render(&next),
        &Principal::system(),
        engine.now(),
    );
    let mut writes = queue::index_writes(space, Some(post), Some(&next));
    writes.extend([Write::put(next, Condition::Version(post.version)), event]);
    match engine.store().transact(writes).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn with_status(post: &Item, status: &str, now: DateTime<Utc>) -> Item {
    let mut next = post.clone();
    next.body.insert("status".into(), json!(status));
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next.version += 1;
    next
}

fn failed(post: &Item, code: &str, message: &str, now: DateTime<Utc>) -> Item {
    let mut next = with_status(post, "failed", now);
    next.body
        .insert("error".into(), json!({"code": code, "message": message}));
    next.body.remove(TOKEN);
    next
}

/// The media of a post as the network would fetch them; a missing one is a permanent
/// failure (it was deleted after the post was written).
async fn media_of(engine: &Engine, space: &str, post: &Item) -> Result<Result<Vec<Media>, String>, StoreError> {
    let partition = keys::collection_partition(space, "media");
    let mut media = Vec::new();
    let ids: Vec<String> = post
        .body
        .get("media_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    for id in ids {
        match engine.store().get(&partition, &id).await? {
            Some(item) => media.push(Media {
                content_type: item
                    .body
                    .get("content_type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                id,
            }),
            None => return Ok(Err(format!("media `{id}` no longer exists in the Space"))),
        }
    }
    Ok(Ok(media))
}

#[async_trait]
impl Handler for Publish {
    fn retry_delays(&self) -> &[i64] {
        RETRY_DELAYS
    }

    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let (space, post_id, token) = (
            payload(job, "space_id")?,
            payload(job, "post_id")?,
            payload(job, "schedule")?,
        );
        let partition = keys::collection_partition(space, POSTS);
        let now = engine.now();
        let Some(mut post) = engine.store().get(&partition, post_id).await? else {
            return Ok(Outcome::Done);
        };
        if post.body.get(TOKEN).and_then(Value::as_str) != Some(token) {
            // Moved, unscheduled, deleted and written again: another job, or none, has it.
            return Ok(Outcome::Done);
        }
        let account_id = post.body.get("account_id").and_then(Value::as_str).unwrap_or_default();
        let account = connections::get(engine, space, account_id).await?;
        if status(&post) == "scheduled" {
            if let Some(due) = post
                .body
                .get("scheduled_at")
                .and_then(Value::as_str)
                .and_then(parse_datetime)
                && due > now
            {
                return Ok(Outcome::Later(due));
            }
            let Some(account) = &account else {
                let next = failed(
                    &post,
                    "ACCOUNT_DISCONNECTED",
                    "The social account was disconnected.",
                    now,
                );
                record(engine, space, &post, next, "social_post.failed").await?;
                return Ok(Outcome::Done);
            };
            if !connections::is_active(account) {
                return Ok(Outcome::Later(now + TimeDelta::minutes(PAUSED_WAIT_MINUTES)));
            }
            let claimed = with_status(&post, "publishing", now);
            if !record(engine, space, &post, claimed.clone(), "social_post.publishing").await? {
                return Err(JobError::Retry("the post changed while it was claimed".into()));
            }
            post = claimed;
        }
        if status(&post) != "publishing" {
            return Ok(Outcome::Done);
        }
        let Some(account) = account else {
            let next = failed(
                &post,
                "ACCOUNT_DISCONNECTED",
                "The social account was disconnected.",
                now,
            );
            record(engine, space, &post, next, "social_post.failed").await?;
            return Ok(Outcome::Done);
        };
        let outcome = match media_of(engine, space, &post).await? {
            Err(message) => Err(PublishError::Permanent {
                code: "MEDIA_MISSING".into(),
                message,
            }),
            Ok(media) => match check_again(&account, &post, &media) {
                Some(message) => Err(PublishError::Permanent {
                    code: "REJECTED".into(),
                    message,
                }),
                None => provider_for(&account).publish(engine, space, &account, &post).await,
            },
        };
        match outcome {
            Ok(Published {
                network_post_id,
                network_url,
                published_at,
            }) => {
                let mut next = with_status(&post, "published", now);
                next.body.insert("network_post_id".into(), json!(network_post_id));
                next.body.insert("network_url".into(), json!(network_url));
                next.body.insert("published_at".into(), json!(published_at));
                next.body.remove("error");
                record(engine, space, &post, next, "social_post.published").await?;
                Ok(Outcome::Done)
            }
            Err(PublishError::Transient(message)) if (job.failures as usize) < RETRY_DELAYS.len() => {
                let mut next = with_status(&post, "scheduled", now);
                next.body
                    .insert("error".into(), json!({"code": "TRANSIENT", "message": message}));
                record(engine, space, &post, next, "social_post.retrying").await?;
                Err(JobError::Retry(message))
            }
            Err(PublishError::Transient(message)) => {
                let message = format!("The network kept failing: {message}");
                let next = failed(&post, "PROVIDER_UNAVAILABLE", &message, now);
                record(engine, space, &post, next, "social_post.failed").await?;
                Ok(Outcome::Done)
            }
            Err(PublishError::Permanent { code, message }) => {
                let next = failed(&post, &code, &message, now);
                record(engine, space, &post, next, "social_post.failed").await?;
                Ok(Outcome::Done)
            }
        }
    }
}

/// The network's rules, applied again at publish time: the first one broken, if any.
fn check_again(account: &Item, post: &Item, media: &[Media]) -> Option<String> {
    let network = connections::network(account)?;
    let text = |field: &str| post.body.get(field).and_then(Value::as_str);
    let boards = crate::accounts::boards(account);
    let draft = Draft {
        content: text("content").unwrap_or_default(),
        title: text("title"),
        board_id: text("board_id"),
        media,
        boards: &boards,
    };
    rules::check(network, draft)
        .into_iter()
        .next()
        .map(|(field, message)| format!("{field}: {message}"))
}
