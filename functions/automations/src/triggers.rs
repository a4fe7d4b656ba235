//! Event and schedule triggers.
//!
//! Events: [`Triggers`] follows the feed of each Space with event-triggered automations
//! (a [`SavedTail`], as the webhook fan-out does) and starts one run per automation and
//! event. The run's id is derived from both, and the run is written on the condition that
//! it does not exist, so an event seen twice starts one run. An event a step of an
//! automation's run wrote names that automation ([`space_auth::Cause`]): it never starts
//! the same automation again, and a chain of automations starting one another stops after
//! [`MAX_CHAIN`] of them.
//!
//! Schedules: each enabled scheduled automation has one job ([`TICK`], named by the
//! automation) due at its `next_run_at`. The job starts the run of that occurrence (its id
//! derived from the automation and the time, written only if new) and, in the same
//! transaction, moves `next_run_at` on and enqueues the next job. A change to the automation
//! withdraws the job and enqueues another; a job whose time is no longer the automation's
//! `next_run_at` finds nothing to do.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use space_auth::Principal;
use space_http::Engine;
use space_http::events::{SavedTail, resource_type};
use space_http::fields::{format_datetime, parse_datetime};
use space_store::{Condition, Item, Query, StoreError, Write};
use space_worker::{FeedFollower, Handler, Job, JobError, NewJob, Outcome};

use crate::automations_partition;
use crate::definition::{Definition, Trigger};
use crate::runs::{RUN_PREFIX, Start, start_writes};

/// The job that starts a scheduled automation's run.
pub const TICK: &str = "automations.schedule";

/// The most automations a chain of event triggers runs, one starting the next.
pub const MAX_CHAIN: u32 = 5;
/// The partition that lists the Spaces with event-triggered automations.
const REGISTRY: &str = "AUTOMATION_SPACES";
/// Where the trigger keeps its place in each Space's feed.
const FOLLOWER: &str = "automation_state";
/// Events one poll reads per Space.
const EVENTS_PER_POLL: usize = 500;

/// Lists `space` among the Spaces the trigger visits, with its reference for the purge.
pub fn registration(space: &str) -> [Write; 2] {
    let mut body = serde_json::Map::new();
    body.insert("space_id".into(), json!(space));
    space_http::references::put(space, Item::new(REGISTRY, space, body), Condition::None)
}

/// A run id fixed by what started it: the same automation and event (or occurrence) give
/// the same id, ordered by the time of the event (or occurrence).
pub fn derived_run_id(automation: &str, millis: u64, what: &str) -> String {
    let fnv = |seed: u64| {
        format!("{automation}|{what}").bytes().fold(seed, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let random = (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x8422_2325_cbf2_9ce4));
    space_http::ids::prefixed(RUN_PREFIX, ulid::Ulid::from_parts(millis, random))
}

/// The job that fires `automation` at `at`.
pub fn tick_job(space: &str, automation: &str, at: DateTime<Utc>) -> Write {
    NewJob::new(
        TICK,
        json!({"space_id": space, "automation_id": automation, "at": format_datetime(at)}),
        at,
    )
    .at(at)
    .named(tick_name(automation))
    .write()
}

/// Withdraws the job that would fire `automation` at `at`.
pub fn cancel_tick(automation: &str, at: DateTime<Utc>) -> Write {
    space_worker::cancel(&tick_name(automation), at)
}

fn tick_name(automation: &str) -> String {
    format!("automation-schedule-{automation}")
}

/// Starts runs for new events of the Spaces with event-triggered automations (the worker's
/// source is `FeedSource(Triggers)`).
pub struct Triggers;

#[async_trait]
impl FeedFollower for Triggers {
    const REGISTRY: &'static str = REGISTRY;

    async fn follow(&self, engine: &Engine, space: &str) -> Result<usize, JobError> {
        follow(engine, space).await
    }
}

fn ulid_of(id: &str) -> &str {
    id.split_once('_').map_or(id, |(_, ulid)| ulid)
}

async fn follow(engine: &Engine, space: &str) -> Result<usize, JobError> {
    let listed = engine
        .store()
        .query(Query::partition(automations_partition(space)).limit(1000))
        .await?;
    let watching: Vec<(Item, String)> = listed
        .items
        .into_iter()
        .filter(|item| item.body.get("enabled") != Some(&json!(false)))
        .filter_map(|item| match Trigger::of(&item.body) {
            Some(Trigger::Event(event)) => Some((item, event)),
            _ => None,
        })
        .collect();
    if watching.is_empty() {
        return Ok(0);
    }
    // The first poll starts where the oldest of them was created.
    let mut saved = SavedTail::load(engine.store(), space, FOLLOWER, || {
        watching
            .iter()
            .filter_map(|(item, _)| space_http::ids::minted_at(&item.sk))
            .min()
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
    let now = engine.now();
    let mut started = 0;
    for event in &events {
        let kind = event.body.get("type").and_then(Value::as_str).unwrap_or_default();
        let cause = space_http::events::cause_of(&event.body);
        for (automation, wanted) in &watching {
            // What happened before the automation watched for it does not start it.
            let armed = automation.body.get(crate::owner::ARMED_AT).and_then(Value::as_u64);
            let minted = space_http::ids::minted_at(&event.sk).unwrap_or(0);
            if kind != wanted
                || ulid_of(&event.sk) < ulid_of(&automation.sk)
                || armed.is_some_and(|armed| minted < armed)
            {
                continue;
            }
            // What the automation's own runs did does not start it again, and a chain of
            // automations starting one another stops at MAX_CHAIN.
            if let Some(cause) = &cause
                && (cause.automation_id == automation.sk || cause.depth >= MAX_CHAIN)
            {
                tracing::info!(
                    automation = %automation.sk, event = %event.sk, caused_by = %cause.automation_id,
                    depth = cause.depth, "an automation's event does not start this automation"
                );
                continue;
            }
            let Some(key_id) = automation.body.get("run_as_key_id").and_then(Value::as_str) else {
                continue;
            };
            let subject = event.body.get("subject_id").cloned().unwrap_or(Value::Null);
            let mut input = json!({"event_id": event.sk, "event_type": kind});
            if resource_type(kind) == "contact" {
                input["contact_id"] = subject;
            }
            let millis = space_http::ids::minted_at(&event.sk).unwrap_or(0);
            let start = Start {
                run_id: derived_run_id(&automation.sk, millis, &event.sk),
                trigger: json!({"type": "event", "event_id": event.sk}),
                key_id: key_id.to_owned(),
                input,
                depth: cause.as_ref().map_or(1, |cause| cause.depth + 1),
            };
            let (_, writes) = start_writes(space, automation, start, &Principal::system().in_space(space), now);
            match engine.store().transact(writes).await {
                Ok(()) => started += 1,
                // Started by an earlier poll.
                Err(error) if error.is_condition_failure() => {}
                Err(StoreError::TransactionConflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    saved.save(engine.store()).await?;
    Ok(started)
}

/// Starts a scheduled automation's run and schedules the next.
pub struct Tick;

#[async_trait]
impl Handler for Tick {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, id, at_text) = (field("space_id")?, field("automation_id")?, field("at")?);
        let at = parse_datetime(at_text).ok_or_else(|| JobError::Fail("`at` is not a time".into()))?;
        let Some(automation) = engine.store().get(&automations_partition(space), id).await? else {
            return Ok(Outcome::Done);
        };
        let stored_at = automation
            .body
            .get("next_run_at")
            .and_then(Value::as_str)
            .and_then(parse_datetime);
        if stored_at != Some(at) {
            // The automation changed since this job was enqueued: its own job fires it.
            return Ok(Outcome::Done);
        }
        let Ok(definition) = Definition::parse(&Value::Object(stored_fields(&automation))) else {
            return Ok(Outcome::Done);
        };
        let now = engine.now();
        // An occurrence missed while nothing ran is not made up for: the next is after now.
        let next = definition.next_run(at.max(now));
        let mut writes = Vec::new();
        if let Some(key_id) = definition.run_as_key_id.as_deref()
            && definition.enabled
        {
            let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
            let start = Start {
                run_id: derived_run_id(id, millis, at_text),
                trigger: json!({"type": "schedule", "scheduled_for": format_datetime(at)}),
                key_id: key_id.to_owned(),
                input: json!({}),
                depth: 1,
            };
            let (_, started) = start_writes(space, &automation, start, &Principal::system().in_space(space), now);
            writes.extend(started);
        }
        let mut body = automation.body.clone();
        body.insert("next_run_at".into(), json!(next.map(format_datetime)));
        let after = Item::new(automation.pk.clone(), automation.sk.clone(), body).with_version(automation.version + 1);
        writes.push(Write::put(after, Condition::Version(automation.version)));
        if let Some(next) = next {
            writes.push(tick_job(space, id, next));
        }
        match engine.store().transact(writes).await {
            Ok(()) => Ok(Outcome::Done),
            Err(error) if error.is_condition_failure() => Ok(Outcome::Done),
            Err(StoreError::TransactionConflict { .. }) => {
                Err(JobError::Retry("the automation changed meanwhile".into()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The definition fields of a stored automation (what [`Definition::parse`] reads).
pub fn stored_fields(item: &Item) -> serde_json::Map<String, Value> {
    ["name", "enabled", "trigger", "steps", "run_as_key_id"]
        .into_iter()
        .filter_map(|name| item.body.get(name).map(|value| (name.to_owned(), value.clone())))
        .filter(|(_, value)| !value.is_null())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_is_fixed_by_its_automation_and_event() {
        let event = "evt_01jd0000000000000000000000";
        let one = derived_run_id("aut_a", 1_700_000_000_000, event);
        assert_eq!(one, derived_run_id("aut_a", 1_700_000_000_000, event));
        assert_ne!(one, derived_run_id("aut_b", 1_700_000_000_000, event));
        assert!(space_http::ids::has_shape(&one, RUN_PREFIX));
        assert_eq!(space_http::ids::minted_at(&one), Some(1_700_000_000_000));
    }
}
