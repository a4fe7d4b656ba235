//! The mail family's jobs on the worker. Each may run twice, so each moves a message only
//! with a write conditional on the version it read: a second run finds the move made.
//!
//! - [`Send`]: a `queued` message is claimed `sending` and goes to its sender's provider,
//!   once ([`space_connections::outbound`]); `sent` (with the
//!   provider's report enqueued as a [`Receipt`] job) or `failed`.
//! - [`Receipt`]: what became of each recipient: the message `delivered`, `bounced` or
//!   `complained`, and every address that hard-bounced or complained suppressed.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use space_connections::outbound::{Attempt, Outbound, moved, wait_for_send};
use space_connections::{self as connections};
use space_http::Engine;
use space_http::keys;
use space_store::Item;
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::RECEIPT;
use crate::messages::MESSAGES;
use crate::provider::{Fate, MailProvider, Outgoing, provider_for};
use crate::suppressions::{suppress, suppressed};

/// Waits after a provider's transient failures; after the last one the message fails.
pub const RETRY_DELAYS: &[i64] = &[30, 120, 600];

/// How this family's messages move: events `mail.<status>`.
pub(crate) const OUT: Outbound = Outbound { events: "mail" };

fn payload<'a>(job: &'a Job, name: &str) -> Result<&'a str, JobError> {
    job.payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
}

fn status(message: &Item) -> &str {
    message.body.get("status").and_then(Value::as_str).unwrap_or_default()
}

async fn load_message(engine: &Engine, job: &Job) -> Result<Option<(String, Item)>, JobError> {
    let space = payload(job, "space_id")?;
    let partition = keys::collection_partition(space, MESSAGES);
    let message = engine.store().get(&partition, payload(job, "message_id")?).await?;
    Ok(message.map(|message| (space.to_owned(), message)))
}

/// `message`'s recipients with each status set by `fate_of` (`None` leaves it).
fn with_recipients(message: &mut Item, fate_of: impl Fn(&str) -> Option<&'static str>) {
    if let Some(Value::Array(recipients)) = message.body.get_mut("recipients") {
        for recipient in recipients.iter_mut() {
            let address = recipient
                .get("address")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if let (Some(status), Some(object)) = (fate_of(&address), recipient.as_object_mut()) {
                object.insert("status".into(), json!(status));
            }
        }
    }
}

/// `message` as sent: every recipient `sent`.
fn sent_to_all(message: &mut Item) {
    with_recipients(message, |_| Some("sent"));
}

/// Sends one queued message through `provider` (its sender's, or another for a test), and
/// records the outcome. `failures` is how many earlier attempts failed transiently.
pub async fn deliver(
    engine: &Engine,
    space: &str,
    message: &Item,
    provider: Option<&dyn MailProvider>,
    failures: usize,
) -> Result<Outcome, JobError> {
    if !matches!(status(message), "queued" | "sending") {
        return Ok(Outcome::Done);
    }
    let sender_id = message
        .body
        .get("from_sender_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(sender) = connections::get(engine, space, sender_id).await? else {
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
                "The mail sender was disconnected.",
            )
            .await;
    };
    let own;
    let provider = match provider {
        Some(provider) => provider,
        None => {
            own = provider_for(&sender).await;
            own.as_ref()
        }
    };
    if let Some(outcome) = OUT.pending(engine, space, message, provider.repeatable()).await? {
        return Ok(outcome);
    }
    let recipients: Vec<&str> = Outgoing::of(message).recipients().collect();
    let refused = suppressed(engine, space, &recipients).await?;
    if !refused.is_empty() {
        return OUT
            .fail(
                engine,
                space,
                message,
                "RECIPIENT_SUPPRESSED",
                &format!(
                    "Suppressed before the message went (a hard bounce or a complaint): {}.",
                    refused.join(", ")
                ),
            )
            .await;
    }
    let claimed = OUT.claim(engine, message).await?;
    let now = engine.now();
    match provider.send(engine, space, &sender, &Outgoing::of(&claimed)).await {
        Ok(sent) => {
            let mut next = moved(&claimed, "sent", now);
            next.body
                .insert("provider_message_id".into(), json!(sent.provider_message_id));
            sent_to_all(&mut next);
            let mut extra = Vec::new();
            if let Some((fates, after)) = sent.report {
                let fates: Map<String, Value> = fates
                    .into_iter()
                    .map(|(address, fate)| (address, json!(fate.as_str())))
                    .collect();
                extra.push(
                    NewJob::new(
                        RECEIPT,
                        json!({"space_id": space, "message_id": message.sk, "fates": fates}),
                        now,
                    )
                    .at(now + after)
                    .write(),
                );
            }
            OUT.record(engine, space, &claimed, next, extra).await?;
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

/// Sends one queued message, once.
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

/// The message's status once every recipient's fate is known: `delivered` when all were,
/// else `complained` if anyone complained, else `bounced`.
pub fn overall(fates: &[Fate]) -> Fate {
    if fates.contains(&Fate::Complained) {
        Fate::Complained
    } else if fates.contains(&Fate::Bounced) {
        Fate::Bounced
    } else {
        Fate::Delivered
    }
}

/// The fate each recipient of `message` has been reported with so far.
fn reported_fates(message: &Item) -> Vec<Fate> {
    message
        .body
        .get("recipients")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|recipient| recipient.get("status").and_then(Value::as_str).and_then(Fate::parse))
        .collect()
}

/// The status of a recipient of `message` (`None` if it is not one).
fn recipient_status<'a>(message: &'a Item, address: &str) -> Option<&'a str> {
    message
        .body
        .get("recipients")
        .and_then(Value::as_array)?
        .iter()
        .find(|recipient| recipient.get("address").and_then(Value::as_str) == Some(address))
        .and_then(|recipient| recipient.get("status").and_then(Value::as_str))
}

/// A provider's report on a sent message: each recipient's fate, the message's status,
/// and the addresses that hard-bounced or complained on the Space's suppression list.
///
/// The sandbox reports every recipient at once; SES reports each event apart (a delivery
/// to one recipient, a bounce from another, later). So a report takes the recipients it
/// names that are still `sent`, and the message's status follows from every fate known so
/// far ([`overall`]): a message already `delivered` to one recipient becomes `bounced`
/// when another bounces. A report whose recipients all moved already (a second run, or the
/// same event delivered twice) changes nothing.
pub struct Receipt;

/// A provider's refusal of a message it took (SES's `Reject`): the sent message `failed`
/// with the provider's reason; one still queued waits for its send, as a report does.
async fn rejected(engine: &Engine, job: &Job, reason: &str) -> Result<Outcome, JobError> {
    let Some((space, message)) = load_message(engine, job).await? else {
        return Ok(Outcome::Done);
    };
    if status(&message) == "queued" {
        return wait_for_send(engine, job);
    }
    let message = OUT.confirmed(engine, &space, message, sent_to_all).await?;
    match status(&message) {
        "sent" => {
            let why = format!("The provider refused to send the message: {reason}.");
            OUT.fail(engine, &space, &message, "PROVIDER_REJECTED", &why).await
        }
        _ => Ok(Outcome::Done),
    }
}

#[async_trait]
impl Handler for Receipt {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        if let Some(reason) = job.payload.get("rejected").and_then(Value::as_str) {
            return rejected(engine, job, reason).await;
        }
        let reported = job
            .payload
            .get("fates")
            .and_then(Value::as_object)
            .ok_or_else(|| JobError::Fail("payload without `fates`".into()))?;
        let mut fates: Vec<(String, Fate)> = Vec::new();
        for (address, fate) in reported {
            let fate = fate
                .as_str()
                .and_then(Fate::parse)
                .ok_or_else(|| JobError::Fail(format!("`{fate}` is not a recipient's fate")))?;
            fates.push((address.clone(), fate));
        }
        let Some((space, message)) = load_message(engine, job).await? else {
            return Ok(Outcome::Done);
        };
        if status(&message) == "queued" {
            return wait_for_send(engine, job);
        }
        let message = OUT.confirmed(engine, &space, message, sent_to_all).await?;
        // Only a sent message, or one reported on in part, takes a report, and only for
        // recipients still waiting for theirs.
        let reportable = matches!(status(&message), "sent" | "delivered" | "bounced" | "complained");
        fates.retain(|(address, _)| recipient_status(&message, address) == Some("sent"));
        if !reportable || fates.is_empty() {
            return Ok(Outcome::Done);
        }
        let now = engine.now();
        let mut next = message.clone();
        with_recipients(&mut next, |address| {
            fates
                .iter()
                .find(|(reported, _)| reported == address)
                .map(|(_, fate)| fate.as_str())
        });
        let status = overall(&reported_fates(&next));
        next = moved(&next, status.as_str(), now);
        let suppressions = fates
            .iter()
            .filter_map(|(address, fate)| match fate {
                Fate::Bounced => Some(suppress(&space, address, "hard_bounce", &message.sk, now)),
                Fate::Complained => Some(suppress(&space, address, "complaint", &message.sk, now)),
                Fate::Delivered => None,
            })
            .collect();
        if !OUT.record(engine, &space, &message, next, suppressions).await? {
            return Err(JobError::Retry(
                "the message changed while its report was recorded".into(),
            ));
        }
        Ok(Outcome::Done)
    }
}
