//! The inbox's jobs on the worker. Each may run twice, so each moves state only with a
//! write conditional on the version it read: a second run finds the move made.
//!
//! - [`Send`]: a `queued` reply is claimed `sending` and goes to its provider
//!   ([`space_connections::outbound`]); `sent` (with the provider's receipts
//!   enqueued as [`Receipt`] jobs) or `failed`.
//! - [`Receipt`]: a provider's later word on a message (`delivered`, `read`); statuses
//!   only move forward.
//! - [`Unsnooze`]: a snoozed thread reopens at its time, unless it moved meanwhile.

use async_trait::async_trait;
use serde_json::{Value, json};
use space_auth::Principal;
use space_connections as connections;
use space_connections::outbound::{Attempt, Outbound, moved};
use space_http::{ApiError, Engine};
use space_store::Item;
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::RECEIPT;
use crate::inbound::opted_out;
use crate::messages;
use crate::provider::provider_for;
use crate::threads::{self, Change, text};

/// Waits after a provider's transient failures; after the last one the message fails.
pub const RETRY_DELAYS: &[i64] = &[30, 120, 600];

fn payload<'a>(job: &'a Job, name: &str) -> Result<&'a str, JobError> {
    job.payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
}

/// How far along a status is: a receipt never moves a message back.
fn rank(status: &str) -> u8 {
    match status {
        "queued" | "sending" => 0,
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        _ => u8::MAX,
    }
}

/// How this family's messages move: events `message.<status>`.
const OUT: Outbound = Outbound { events: "message" };

async fn load_message(engine: &Engine, job: &Job) -> Result<Option<(String, Item)>, JobError> {
    let space = payload(job, "space_id")?;
    let partition = messages::partition(space, payload(job, "thread_id")?);
    let message = engine.store().get(&partition, payload(job, "message_id")?).await?;
    Ok(message.map(|message| (space.to_owned(), message)))
}

/// Sends one queued reply, once.
pub struct Send;

#[async_trait]
impl Handler for Send {
    fn retry_delays(&self) -> &[i64] {
        RETRY_DELAYS
    }

    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let Some((space, message)) = load_message(engine, job).await? else {
            return Ok(Outcome::Done);
        };
        // A messaging provider recognises a message asked for twice (its idempotency key).
        if let Some(outcome) = OUT.pending(engine, &space, &message, true).await? {
            return Ok(outcome);
        }
        let channel_id = text(&message, "channel_id").unwrap_or_default();
        let Some(connection) = connections::get(engine, &space, channel_id).await? else {
            return OUT
                .fail(
                    engine,
                    &space,
                    &message,
                    "CONNECTION_REMOVED",
                    "The messaging connection was removed.",
                )
                .await;
        };
        let contact = text(&message, "contact_id").unwrap_or_default();
        let channel = text(&message, "channel").unwrap_or_default();
        if opted_out(engine, &space, contact, channel).await? {
            return OUT
                .fail(
                    engine,
                    &space,
                    &message,
                    "RECIPIENT_OPTED_OUT",
                    "The contact opted out of this channel before the message went.",
                )
                .await;
        }
        let claimed = OUT.claim(engine, &message).await?;
        let now = engine.now();
        match provider_for(&connection)
            .send(engine, &space, &connection, &claimed)
            .await
        {
            Ok(sent) => {
                let mut next = moved(&claimed, "sent", now);
                next.body
                    .insert("provider_message_id".into(), json!(sent.provider_message_id));
                let receipts = sent
                    .receipts
                    .iter()
                    .map(|(status, after)| {
                        NewJob::new(
                            RECEIPT,
                            json!({
                                "space_id": space,
                                "thread_id": text(&message, "thread_id"),
                                "message_id": message.sk,
                                "status": status,
                            }),
                            now,
                        )
                        .at(now + *after)
                        .write()
                    })
                    .collect();
                OUT.record(engine, &space, &claimed, next, receipts).await?;
                Ok(Outcome::Done)
            }
            Err(error) => {
                let attempt = Attempt {
                    failures: job.failures as usize,
                    retries: RETRY_DELAYS.len(),
                    repeatable: true,
                };
                OUT.not_sent(engine, &space, &claimed, error, attempt).await
            }
        }
    }
}

/// A provider's receipt: moves a message forward to `delivered` or `read`.
pub struct Receipt;

#[async_trait]
impl Handler for Receipt {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let status = payload(job, "status")?;
        if !matches!(status, "delivered" | "read") {
            return Err(JobError::Fail(format!("`{status}` is not a receipt")));
        }
        let Some((space, message)) = load_message(engine, job).await? else {
            return Ok(Outcome::Done);
        };
        let message = OUT.confirmed(engine, &space, message, |_| {}).await?;
        let current = text(&message, "status").unwrap_or_default();
        if rank(current) >= rank(status) {
            return Ok(Outcome::Done);
        }
        let next = moved(&message, status, engine.now());
        if !OUT.record(engine, &space, &message, next, Vec::new()).await? {
            return Err(JobError::Retry(
                "the message changed while its receipt was recorded".into(),
            ));
        }
        Ok(Outcome::Done)
    }
}

/// Reopens a snoozed thread at its time.
pub struct Unsnooze;

#[async_trait]
impl Handler for Unsnooze {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let space = payload(job, "space_id")?;
        let id = payload(job, "thread_id")?;
        let token = payload(job, "snooze")?;
        let outcome = threads::transition(engine, space, &Principal::system(), id, None, |current, next| {
            if threads::status(current) != "snoozed" || text(current, "snooze") != Some(token) {
                return Err(ApiError::Conflict(String::new()));
            }
            next.body.insert("status".into(), json!("open"));
            next.body.remove("snooze");
            next.body.remove("snoozed_until");
            Ok(Change {
                kind: "thread.reopened",
                writes: Vec::new(),
            })
        })
        .await;
        match outcome {
            // Woken, closed or snoozed again meanwhile: another job, or none, has it.
            Ok(_) | Err(ApiError::Conflict(_) | ApiError::NotFound(_)) => Ok(Outcome::Done),
            Err(error) => Err(JobError::Retry(error.to_string())),
        }
    }
}
