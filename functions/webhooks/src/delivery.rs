//! From the events feed to the endpoints: the fan-out source and the delivery job.
//!
//! Events are the outbox: every change commits its event with it. The fan-out follows each
//! Space's feed with a [`SavedTail`] whose position it keeps (locally it polls every Space
//! with endpoints; in AWS the table's stream names the Spaces whose feeds moved) and, for each
//! event an enabled endpoint wants, writes a delivery record and its job in one transaction,
//! the record on the condition that it does not exist yet, so an event seen twice is
//! delivered once. A delivery job signs and posts the event and logs the attempt.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt as _;
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_http::Engine;
use space_http::events::{SavedTail, event_write, render};
use space_http::fields::{format_datetime, parse_datetime};
use space_http::keys;
use space_store::{Condition, Item, Query, StoreError, Write};
use space_worker::{DEFAULT_RETRY_DELAYS, FeedFollower, Handler, Job, JobError, NewJob, Outcome};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{guard, secret_name, signing, wants};

/// How many of a delivery's latest attempts its record keeps.
pub const KEPT_ATTEMPTS: usize = 20;

/// The job kind of one delivery.
pub const DELIVER: &str = "webhooks.deliver";
/// The partition that lists the Spaces with webhooks, for the fan-out to visit.
const REGISTRY: &str = "WEBHOOK_SPACES";
/// Attempts one process sends for one Space at once, whatever its endpoints. A Space whose
/// endpoints answer slowly with a backlog of retries holds at most this many of the
/// worker's slots, so other Spaces' jobs go on; its other jobs wait a moment without
/// counting as an attempt.
const IN_FLIGHT_PER_SPACE: usize = 16;
/// How long a job waits in the worker for one of its endpoint's slots, and then, if none
/// came free, how long it waits before it is tried again.
const SLOT_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);
const SLOT_WAIT: TimeDelta = TimeDelta::seconds(1);
/// The longest wait for a slot: a backlog behind a slow Space is woken about once a
/// minute per job, not every second.
const MAX_SLOT_WAIT: TimeDelta = TimeDelta::seconds(60);

/// How long a job that found no slot waits, doubling with each run it has had.
fn slot_wait(attempts: u64) -> TimeDelta {
    let doublings = u32::try_from(attempts.saturating_sub(1).min(6)).unwrap_or(6);
    (SLOT_WAIT * 2_i32.pow(doublings)).min(MAX_SLOT_WAIT)
}
/// Delivery records a fan-out writes at once.
const WRITES_AT_ONCE: usize = 64;
/// Events one poll reads per Space.
const EVENTS_PER_POLL: usize = 500;
/// An endpoint failing this long without a success is turned off.
const DISABLE_AFTER: TimeDelta = TimeDelta::days(5);
/// Answer bodies kept in the log.
const MAX_ERROR_CHARS: usize = 300;

/// Lists `space` among the Spaces the fan-out visits (written with each new endpoint), with
/// the reference that lets the Space's purge remove the entry.
pub fn registration(space: &str) -> [Write; 2] {
    let mut body = Map::new();
    body.insert("space_id".into(), json!(space));
    space_http::references::put(space, Item::new(REGISTRY, space, body), Condition::None)
}

/// Where the deliveries of one endpoint are logged, one record per event.
pub fn deliveries_partition(space: &str, webhook: &str) -> String {
    keys::child_partition(space, "webhook_deliveries", webhook)
}

fn webhooks_partition(space: &str) -> String {
    keys::collection_partition(space, "webhooks")
}

/// The job that delivers `event_id` to `webhook`.
pub fn deliver_job(space: &str, webhook: &str, event_id: &str, now: DateTime<Utc>) -> Write {
    NewJob::new(
        DELIVER,
        json!({"space_id": space, "webhook_id": webhook, "event_id": event_id}),
        now,
    )
    .write()
}

/// A delivery record and its job, the record only if the event was not fanned out before.
pub fn new_delivery(space: &str, webhook: &str, event_id: &str, event_type: &str, now: DateTime<Utc>) -> Vec<Write> {
    let stamp = json!(format_datetime(now));
    let record: Map<String, Value> = [
        ("id", json!(event_id)),
        ("event_type", json!(event_type)),
        ("status", json!("pending")),
        ("attempts", json!([])),
        ("attempt_count", json!(0)),
        ("next_retry_at", Value::Null),
        ("created_at", stamp.clone()),
        ("updated_at", stamp),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    vec![
        Write::put(
            Item::new(deliveries_partition(space, webhook), event_id, record),
            Condition::NotExists,
        ),
        deliver_job(space, webhook, event_id, now),
    ]
}

/// The ULID part of a prefixed id (`evt_01…`), which orders ids by time.
fn ulid_of(id: &str) -> &str {
    id.split_once('_').map_or(id, |(_, ulid)| ulid)
}

fn millis_of(id: &str) -> Option<u64> {
    space_http::ids::minted_at(id)
}

#[cfg(test)]
fn first_id_at(millis: u64) -> String {
    space_http::ids::first_at(space_http::events::EVENT_ID_PREFIX, millis)
}

/// The fan-out: enqueues what each registered Space's endpoints want of its new events
/// (the worker's source is `FeedSource(Fanout)`).
pub struct Fanout;

#[async_trait]
impl FeedFollower for Fanout {
    const REGISTRY: &'static str = REGISTRY;

    async fn follow(&self, engine: &Engine, space: &str) -> Result<usize, JobError> {
        fan_out(engine, space).await
    }
}

struct Endpoint {
    id: String,
    events: Value,
}

async fn fan_out(engine: &Engine, space: &str) -> Result<usize, JobError> {
    let listed = engine
        .store()
        .query(Query::partition(webhooks_partition(space)).limit(1000))
        .await?;
    let endpoints: Vec<Endpoint> = listed
        .items
        .into_iter()
        .filter(|item| item.body.get("enabled") != Some(&json!(false)))
        .map(|item| Endpoint {
            events: item.body.get("events").cloned().unwrap_or(Value::Null),
            id: item.sk,
        })
        .collect();
    if endpoints.is_empty() {
        return Ok(0);
    }
    let now = engine.now();
    // The first poll starts where the oldest endpoint was added (ids carry the time they
    // were minted at); later ones where the last left off.
    let mut saved = SavedTail::load(engine.store(), space, "webhook_state", || {
        endpoints
            .iter()
            .map(|endpoint| endpoint.id.as_str())
            .min_by_key(|id| ulid_of(id))
            .and_then(millis_of)
            .unwrap_or(0)
    })
    .await?;
    let events = saved
        .tail
        .read(engine.store(), EVENTS_PER_POLL, space_http::ids::id_clock_now())
        .await?;
    if events.is_empty() && saved.resumed {
        return Ok(0);
    }
    let mut deliveries = Vec::new();
    for event in &events {
        let kind = event.body.get("type").and_then(Value::as_str).unwrap_or_default();
        for endpoint in &endpoints {
            // An endpoint receives what happened after it was added, and nothing about
            // itself (its own creation, rotation or disabling reach the feed, not it).
            let about_itself = event.body.get("subject_id").and_then(Value::as_str) == Some(endpoint.id.as_str());
            if ulid_of(&event.sk) < ulid_of(&endpoint.id) || about_itself || !wants(&endpoint.events, kind) {
                continue;
            }
            deliveries.push(new_delivery(space, &endpoint.id, &event.sk, kind, now));
        }
    }
    // One transaction per delivery (a record that exists refuses only its own), written
    // at once: the store commits them together.
    let written: Vec<Result<(), StoreError>> = futures::stream::iter(deliveries)
        .map(|writes| engine.store().transact(writes))
        .buffer_unordered(WRITES_AT_ONCE)
        .collect()
        .await;
    let mut enqueued = 0;
    for result in written {
        match result {
            Ok(()) => enqueued += 1,
            Err(error) if error.is_condition_failure() => {}
            Err(error) => return Err(error.into()),
        }
    }
    saved.save(engine.store()).await?;
    Ok(enqueued)
}

/// Attempts in flight, by Space.
static IN_FLIGHT: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> = LazyLock::new(Mutex::default);

/// One of a Space's [`IN_FLIGHT_PER_SPACE`] slots, given back when dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// A slot of `space`, waiting at most `patience` for one: endpoints that answer quickly
    /// free one within milliseconds; slow ones keep their jobs waiting elsewhere.
    async fn take(space: &str, patience: std::time::Duration) -> Option<Slot> {
        let slots = {
            let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if in_flight.len() > 10_000 {
                // Spaces with nothing in flight hold no state worth keeping.
                in_flight.retain(|_, slots| slots.available_permits() < IN_FLIGHT_PER_SPACE);
            }
            Arc::clone(
                in_flight
                    .entry(space.to_owned())
                    .or_insert_with(|| Arc::new(Semaphore::new(IN_FLIGHT_PER_SPACE))),
            )
        };
        match tokio::time::timeout(patience, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Some(Slot { _permit: permit }),
            _ => None,
        }
    }
}

/// Sends one delivery.
pub struct Deliver;

#[async_trait]
impl Handler for Deliver {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, webhook_id, event_id) = (field("space_id")?, field("webhook_id")?, field("event_id")?);
        let log = Log {
            engine,
            pk: deliveries_partition(&space, &webhook_id),
            sk: event_id.clone(),
        };
        let Some(webhook) = engine.store().get(&webhooks_partition(&space), &webhook_id).await? else {
            return Ok(Outcome::Done);
        };
        if webhook.body.get("enabled") == Some(&json!(false)) {
            log.settle("skipped", None).await?;
            return Ok(Outcome::Done);
        }
        let Some(event) = engine.store().get(&keys::events_partition(&space), &event_id).await? else {
            log.attempt(None, 0, Some("the event is no longer kept".into()), "failed", None)
                .await?;
            return Ok(Outcome::Done);
        };
        let body = serde_json::to_vec(&render(event.body)).map_err(|error| JobError::Fail(error.to_string()))?;
        let now = engine.now();
        let Some(keys) = engine.signing_keys() else {
            return Err(JobError::Retry("no signing keys configured".into()));
        };
        let secrets = keys
            .get_key(&space, &secret_name(&webhook_id))
            .await?
            .map(|stored| signing::in_force(&stored, now))
            .unwrap_or_default();
        if secrets.is_empty() {
            return Err(JobError::Retry("the endpoint has no signing secret".into()));
        }
        let Some(_slot) = Slot::take(&space, SLOT_PATIENCE).await else {
            return Ok(Outcome::Later(now + slot_wait(job.attempts)));
        };
        let url = webhook.body.get("url").and_then(Value::as_str).unwrap_or_default();
        let allow_local = engine.allow_local_webhooks();
        let target = match guard::parse_target(url, allow_local) {
            Ok(target) => target,
            Err(refused) => {
                log.attempt(None, 0, Some(format!("refused: {refused}")), "failed", None)
                    .await?;
                return Ok(Outcome::Done);
            }
        };
        let timestamp = now.timestamp();
        let signature = signing::signature(&secrets, &event_id, timestamp, &body);
        let client = guard::client(allow_local).map_err(JobError::Retry)?;
        let started = Instant::now();
        let sent = client
            .post(target)
            .header("content-type", "application/json")
            .header("webhook-id", &event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, error, retry_after) = match sent {
            Ok(answer) => {
                let status = answer.status();
                let retry_after = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<i64>().ok())
                    .filter(|_| status.as_u16() == 429 || status.as_u16() == 503)
                    .map(|seconds| TimeDelta::seconds(seconds.clamp(1, 86_400)));
                let error = (!status.is_success()).then(|| {
                    let kind = if status.is_redirection() {
                        "a redirect, which is not followed"
                    } else {
                        "not a 2xx"
                    };
                    format!("HTTP {}: {kind}", status.as_u16())
                });
                (Some(status.as_u16()), error, retry_after)
            }
            Err(failure) => (None, Some(describe(&failure)), None),
        };
        match (status, error) {
            (Some(_), None) => {
                log.attempt(status, took, None, "delivered", None).await?;
                recovered(engine, &webhook).await?;
                Ok(Outcome::Done)
            }
            (Some(410), Some(error)) => {
                log.attempt(status, took, Some(error), "failed", None).await?;
                disable(engine, &space, &webhook, "the endpoint answered 410 Gone").await?;
                Ok(Outcome::Done)
            }
            (_, error) => {
                let error = error.unwrap_or_default();
                let delay = usize::try_from(job.failures)
                    .ok()
                    .and_then(|failed| DEFAULT_RETRY_DELAYS.get(failed))
                    .map(|seconds| retry_after.unwrap_or_else(|| TimeDelta::seconds(*seconds)));
                let (state, next) = match delay {
                    Some(delay) => ("retrying", Some(now + delay)),
                    None => ("failed", None),
                };
                log.attempt(status, took, Some(error.clone()), state, next).await?;
                if failing_too_long(engine, &webhook, now).await? {
                    disable(engine, &space, &webhook, "deliveries failed for five days").await?;
                    return Ok(Outcome::Done);
                }
                match retry_after {
                    Some(wait) => Err(JobError::RetryAfter(error, wait)),
                    None => Err(JobError::Retry(error)),
                }
            }
        }
    }
}

/// The error chain of a failed send, in one line.
fn describe(failure: &reqwest::Error) -> String {
    let mut text = failure.to_string();
    let mut source = std::error::Error::source(failure);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// The delivery record of one event and endpoint.
struct Log<'a> {
    engine: &'a Engine,
    pk: String,
    sk: String,
}

impl Log<'_> {
    async fn change(&self, change: impl Fn(&mut Map<String, Value>)) -> Result<(), StoreError> {
        for _ in 0..3 {
            let Some(current) = self.engine.store().get(&self.pk, &self.sk).await? else {
                return Ok(());
            };
            let mut next = current.clone();
            next.version = current.version + 1;
            change(&mut next.body);
            next.body
                .insert("updated_at".into(), json!(format_datetime(self.engine.now())));
            match self.engine.store().put(next, Condition::Version(current.version)).await {
                Err(error) if error.is_condition_failure() => continue,
                other => return other,
            }
        }
        Ok(())
    }

    async fn settle(&self, status: &str, next: Option<DateTime<Utc>>) -> Result<(), StoreError> {
        self.change(|body| {
            body.insert("status".into(), json!(status));
            body.insert("next_retry_at".into(), json!(next.map(format_datetime)));
        })
        .await
    }

    /// Records one attempt (see [`KEPT_ATTEMPTS`]) and where the delivery stands after it.
    async fn attempt(
        &self,
        status: Option<u16>,
        took_ms: u64,
        error: Option<String>,
        state: &str,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let at = format_datetime(self.engine.now());
        self.change(|body| {
            let attempt = json!({"at": at, "status": status, "duration_ms": took_ms, "error": error});
            let mut attempts = match body.remove("attempts") {
                Some(Value::Array(attempts)) => attempts,
                _ => Vec::new(),
            };
            let earlier = body
                .get("attempt_count")
                .and_then(Value::as_u64)
                .unwrap_or(attempts.len() as u64);
            attempts.push(attempt);
            // Manual retries have no end: the record keeps the latest attempts only, so
            // that it stays small, and counts them all.
            let over = attempts.len().saturating_sub(KEPT_ATTEMPTS);
            attempts.drain(..over);
            body.insert("attempts".into(), Value::Array(attempts));
            body.insert("attempt_count".into(), json!(earlier + 1));
            body.insert("status".into(), json!(state));
            body.insert("next_retry_at".into(), json!(next.map(format_datetime)));
        })
        .await
    }
}

/// A success ends a failing streak.
async fn recovered(engine: &Engine, webhook: &Item) -> Result<(), StoreError> {
    if webhook.body.get("failing_since").is_none() {
        return Ok(());
    }
    let mut next = webhook.clone();
    next.version = webhook.version + 1;
    next.body.remove("failing_since");
    match engine.store().put(next, Condition::Version(webhook.version)).await {
        Err(error) if error.is_condition_failure() => Ok(()),
        other => other,
    }
}

/// Starts the failing streak, or tells whether it has lasted too long.
async fn failing_too_long(engine: &Engine, webhook: &Item, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let since = webhook
        .body
        .get("failing_since")
        .and_then(Value::as_str)
        .and_then(parse_datetime);
    match since {
        Some(since) => Ok(now - since >= DISABLE_AFTER),
        None => {
            let mut next = webhook.clone();
            next.version = webhook.version + 1;
            next.body.insert("failing_since".into(), json!(format_datetime(now)));
            match engine.store().put(next, Condition::Version(webhook.version)).await {
                Err(error) if error.is_condition_failure() => Ok(false),
                other => other.map(|()| false),
            }
        }
    }
}

/// Turns an endpoint off and says so in the feed (`webhook.disabled`).
async fn disable(engine: &Engine, space: &str, webhook: &Item, why: &str) -> Result<(), StoreError> {
    let Some(current) = engine.store().get(&webhook.pk, &webhook.sk).await? else {
        return Ok(());
    };
    if current.body.get("enabled") == Some(&json!(false)) {
        return Ok(());
    }
    let now = engine.now();
    let mut next = current.clone();
    next.version = current.version + 1;
    next.body.insert("enabled".into(), json!(false));
    next.body.insert("disabled_reason".into(), json!(why));
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    let mut shown = next.body.clone();
    shown.insert("version".into(), json!(next.version));
    let writes = vec![
        Write::put(next, Condition::Version(current.version)),
        event_write(
            space,
            "webhook.disabled",
            &webhook.sk,
            Value::Object(shown),
            &Principal::system(),
            now,
        ),
    ];
    match engine.store().transact(writes).await {
        Err(error) if error.is_condition_failure() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_time_and_bound_a_moment() {
        let id = space_http::ids::new_id("evt");
        let millis = millis_of(&id).unwrap();
        assert!(first_id_at(millis) <= id);
        assert!(first_id_at(millis + 1) > id);
        assert!(ulid_of(&first_id_at(millis)) < ulid_of(&space_http::ids::new_id("whk")) || millis_of(&id).is_some());
    }

    #[test]
    fn slot_waits_double_up_to_a_minute() {
        let waits: Vec<i64> = (1..=9).map(|attempts| slot_wait(attempts).num_seconds()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[tokio::test]
    async fn a_space_holds_a_bounded_number_of_slots() {
        let now = std::time::Duration::ZERO;
        let mut held = Vec::new();
        for _ in 0..IN_FLIGHT_PER_SPACE {
            held.push(Slot::take("spc_slow", now).await.expect("a free slot"));
        }
        assert!(Slot::take("spc_slow", now).await.is_none(), "the slow Space is full");
        assert!(
            Slot::take("spc_other", now).await.is_some(),
            "another Space is not held up"
        );
        // A slot that comes free while a job waits goes to it.
        let freed = held.pop();
        let waiting = tokio::spawn(Slot::take("spc_slow", std::time::Duration::from_secs(5)));
        drop(freed);
        assert!(waiting.await.expect("the wait ends").is_some());
    }
}
