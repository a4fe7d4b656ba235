//! The phone family's jobs on the worker. Each may run twice, so each moves a message only
//! with a write conditional on the version it read: a second run finds the move made.
//!
//! - [`Send`]: a `queued` SMS is claimed `sending` and goes to its number's provider, once
//!   ([`space_connections::outbound`]); `sent` (with the provider's receipts enqueued as
//!   [`Receipt`] jobs) or `failed`.
//! - [`Receipt`]: the carrier's word on a sent message, `delivered` or `undelivered`.

use async_trait::async_trait;
use serde_json::{Value, json};
use space_auth::Principal;
use space_connections::outbound::{Attempt, Outbound, moved, wait_for_send};
use space_connections::{self as connections, Channel};
use space_http::Engine;
use space_http::keys;
use space_http::operation::Call;
use space_store::Item;
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::RECEIPT;
use crate::provider::{Outgoing, SmsProvider, provider_for};
use crate::sms::MESSAGES;

/// Waits after a provider's transient failures; after the last one the message fails.
pub const RETRY_DELAYS: &[i64] = &[30, 120, 600];

fn payload<'a>(job: &'a Job, name: &str) -> Result<&'a str, JobError> {
    job.payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
}

fn status(message: &Item) -> &str {
    message.body.get("status").and_then(Value::as_str).unwrap_or_default()
}

/// How this family's messages move: events `sms.<status>`.
pub(crate) const OUT: Outbound = Outbound { events: "sms" };

async fn load_message(engine: &Engine, job: &Job) -> Result<Option<(String, Item)>, JobError> {
    let space = payload(job, "space_id")?;
    let partition = keys::collection_partition(space, MESSAGES);
    let message = engine.store().get(&partition, payload(job, "message_id")?).await?;
    Ok(message.map(|message| (space.to_owned(), message)))
}

/// Sends one queued SMS through `provider` (its number's, or another for a test), and
/// records the outcome. `failures` is how many earlier attempts failed transiently.
pub async fn deliver(
    engine: &Engine,
    space: &str,
    message: &Item,
    provider: Option<&dyn SmsProvider>,
    failures: usize,
) -> Result<Outcome, JobError> {
    if !matches!(status(message), "queued" | "sending") {
        return Ok(Outcome::Done);
    }
    let number_id = message
        .body
        .get("from_number_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(connection) = connections::get(engine, space, number_id).await? else {
        // One that may have gone is settled as any other whose provider cannot be asked.
        if let Some(outcome) = OUT.pending(engine, space, message, false).await? {
            return Ok(outcome);
        }
        return OUT
            .fail(
                engine,
                space,
                message,
                "CONNECTION_REMOVED",
                "The phone number was disconnected.",
            )
            .await;
    };
    let own;
    let provider = match provider {
        Some(provider) => provider,
        None => {
            own = provider_for(&connection).await;
            own.as_ref()
        }
    };
    if let Some(outcome) = OUT.pending(engine, space, message, provider.repeatable()).await? {
        return Ok(outcome);
    }
    let to = message.body.get("to").and_then(Value::as_str).unwrap_or_default();
    let inside = Call::new(engine.clone(), Principal::system().in_space(space));
    let opted_out = inbox::inbound::number_opted_out(&inside, to, Channel::Sms)
        .await
        .map_err(|error| JobError::Retry(error.to_string()))?;
    if opted_out {
        return OUT
            .fail(
                engine,
                space,
                message,
                "RECIPIENT_OPTED_OUT",
                "The recipient opted out of SMS before the message went.",
            )
            .await;
    }
    let claimed = OUT.claim(engine, message).await?;
    let now = engine.now();
    match provider.send(engine, space, &connection, Outgoing::of(&claimed)).await {
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
                        json!({"space_id": space, "message_id": message.sk, "status": status}),
                        now,
                    )
                    .at(now + *after)
                    .write()
                })
                .collect();
            OUT.record(engine, space, &claimed, next, receipts).await?;
            Ok(Outcome::Done)
        }
        Err(error) => {
            let attempt = Attempt {
                failures,
                retries: RETRY_DELAYS.len(),
                repeatable: provider.repeatable(),
            };
            OUT.not_sent(engine, space, &claimed, error, attempt).await
        }
    }
}

/// Sends one queued SMS, once.
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
        deliver(engine, &space, &message, None, job.failures as usize).await
    }
}

/// A carrier's receipt: moves a sent message to `delivered` or `undelivered`.
pub struct Receipt;

#[async_trait]
impl Handler for Receipt {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let receipt = payload(job, "status")?;
        if !matches!(receipt, "delivered" | "undelivered") {
            return Err(JobError::Fail(format!("`{receipt}` is not a receipt")));
        }
        let Some((space, message)) = load_message(engine, job).await? else {
            return Ok(Outcome::Done);
        };
        // A carrier's receipt may overtake the record of its send: wait for a message still
        // queued; one `sending` (its answer lost) went.
        if status(&message) == "queued" {
            return wait_for_send(engine, job);
        }
        let message = OUT.confirmed(engine, &space, message, |_| {}).await?;
        // Only a sent message takes a receipt; a second run finds it moved.
        if status(&message) != "sent" {
            return Ok(Outcome::Done);
        }
        let next = moved(&message, receipt, engine.now());
        if !OUT.record(engine, &space, &message, next, Vec::new()).await? {
            return Err(JobError::Retry(
                "the message changed while its receipt was recorded".into(),
            ));
        }
        Ok(Outcome::Done)
    }
}
