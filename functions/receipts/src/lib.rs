//! Delivery receipts in AWS. Amazon SES (through the mail configuration set's event
//! destination) and AWS End User Messaging SMS (through the SMS configuration set's) publish
//! what became of each message to one SNS topic; its subscription fills the `receipts`
//! queue, which invokes [`Receipts::queue`] with batches of messages.
//!
//! Each message is one event, the SNS envelope around it or the event itself (raw message
//! delivery, which the Terraform subscription uses; both are read, so a subscription
//! changed either way keeps working). Each family reads its own provider's events
//! ([`mail::notifications`], [`phone::notifications`]) into the family's receipt job, the
//! one the sandbox's reports use, and this function only enqueues it: the worker moves the
//! message and fills the suppression list, as it does for the sandbox.
//!
//! A redelivered message enqueues the same job again: the job is named after the event and
//! due when the event happened, so it is the same item; and should it have run already, the
//! receipt job moves only a message still waiting for that receipt, so a second run changes
//! nothing. An event that is not one of ours, or does not parse, is logged and dropped:
//! retrying cannot mend it. Only a failed write is reported back (`batchItemFailures`), so
//! that message alone comes back after its visibility timeout.

use aws_lambda_events::event::sqs::BatchItemFailure;
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde_json::Value;
use space_http::Engine;
use space_http::lambda::Backends;
use space_store::StoreError;
use space_worker::NewJob;

pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

/// What the binary links: the table, where the jobs go.
pub const BACKENDS: Backends = Backends::TABLE;

/// Queue messages handled at once (a batch holds at most 10).
const CONCURRENCY: usize = 10;

/// Why a message was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The message is not JSON, or its envelope holds no event: dropped.
    #[error("not a notification: {0}")]
    NotANotification(String),
    /// An event of neither family: dropped.
    #[error("an event of no family: {0}")]
    Unknown(String),
    /// An event of a family that does not parse or names no message of ours: dropped.
    #[error(transparent)]
    Mail(#[from] mail::notifications::NotificationError),
    #[error(transparent)]
    Phone(#[from] phone::notifications::NotificationError),
    /// The job could not be written: the message comes back.
    #[error("enqueueing the receipt failed: {0}")]
    Store(#[from] StoreError),
}

impl ReceiptError {
    /// Whether another delivery of the message could succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ReceiptError::Store(_))
    }
}

/// The event a queue message carries: the `Message` of an SNS envelope, or the message
/// itself when the subscription delivers raw messages.
pub fn event_of(body: &str) -> Result<Value, ReceiptError> {
    let value: Value = serde_json::from_str(body).map_err(|error| ReceiptError::NotANotification(error.to_string()))?;
    if value.get("Type").and_then(Value::as_str) != Some("Notification") {
        return Ok(value);
    }
    let inner = value
        .get("Message")
        .and_then(Value::as_str)
        .ok_or_else(|| ReceiptError::NotANotification("an SNS envelope without its Message".into()))?;
    serde_json::from_str(inner).map_err(|error| ReceiptError::NotANotification(error.to_string()))
}

/// The receipt job an event asks for, whichever family's it is; `Ok(None)` for an event
/// that moves nothing (a send, a soft bounce, a queued SMS, …).
pub fn job_of(event: &Value, now: DateTime<Utc>) -> Result<Option<NewJob>, ReceiptError> {
    match mail::notifications::receipt(event, now) {
        Err(mail::notifications::NotificationError::NotMail) => {}
        other => return Ok(other?),
    }
    match phone::notifications::receipt(event, now) {
        Err(phone::notifications::NotificationError::NotSms) => {}
        other => return Ok(other?),
    }
    let kind = event
        .get("eventType")
        .or_else(|| event.get("notificationType"))
        .map_or_else(|| "no eventType".to_owned(), Value::to_string);
    Err(ReceiptError::Unknown(kind))
}

/// The receipts function.
#[derive(Clone)]
pub struct Receipts {
    engine: Engine,
}

impl Receipts {
    pub fn new(engine: Engine) -> Receipts {
        Receipts { engine }
    }

    /// A batch of the receipts queue. Answers the messages to see again: those whose job
    /// could not be written.
    pub async fn queue(&self, event: SqsEvent) -> SqsBatchResponse {
        let failed: Vec<Option<String>> = futures::stream::iter(event.records)
            .map(|message| async move {
                let id = message.message_id.clone().unwrap_or_default();
                match self.take(message.body.as_deref().unwrap_or_default()).await {
                    Ok(()) => None,
                    Err(error) if error.is_retryable() => {
                        tracing::warn!(message = %id, %error, "a receipt was not enqueued; it comes back after its visibility timeout");
                        Some(id)
                    }
                    Err(error) => {
                        tracing::error!(message = %id, %error, "dropping a receipts queue message");
                        None
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        for id in failed.into_iter().flatten() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Enqueues the receipt job one queue message asks for, if any.
    pub async fn take(&self, body: &str) -> Result<(), ReceiptError> {
        let event = event_of(body)?;
        match job_of(&event, self.engine.now())? {
            Some(job) => self.engine.store().transact(vec![job.write()]).await?,
            None => tracing::debug!(event = ?event.get("eventType"), "an event that moves no message"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        space_http::fields::parse_datetime("2026-03-02T10:00:00Z").expect("a time")
    }

    fn sms_event() -> Value {
        json!({
            "eventType": "TEXT_CARRIER_UNREACHABLE",
            "eventVersion": "1.0",
            "eventTimestamp": 1_772_445_540_000_i64,
            "messageId": "9c1a2b3c",
            "messageStatus": "CARRIER_UNREACHABLE",
            "context": {"space_id": "spc_1", "message_id": "sms_1"}
        })
    }

    #[test]
    fn events_come_raw_or_in_their_sns_envelope() {
        let raw = sms_event();
        assert_eq!(event_of(&raw.to_string()).expect("an event"), raw);
        let envelope = json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:space-api-dev-receipts",
            "Message": raw.to_string(),
            "Timestamp": "2026-03-02T09:59:01.000Z",
            "SignatureVersion": "1"
        });
        assert_eq!(event_of(&envelope.to_string()).expect("an event"), raw);
        assert!(matches!(event_of("not json"), Err(ReceiptError::NotANotification(_))));
        assert!(matches!(
            event_of(&json!({"Type": "Notification"}).to_string()),
            Err(ReceiptError::NotANotification(_))
        ));
    }

    #[test]
    fn each_family_reads_its_own_events() {
        let sms = job_of(&sms_event(), now()).expect("parses").expect("a job");
        assert_eq!(sms.kind(), phone::RECEIPT);
        let bounce = json!({
            "eventType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "a@example.com"}]},
            "mail": {"messageId": "x", "tags": {"space_id": ["spc_1"], "message_id": ["mail_1"]}}
        });
        let mail = job_of(&bounce, now()).expect("parses").expect("a job");
        assert_eq!(mail.kind(), mail::RECEIPT);
        let unknown = job_of(&json!({"hello": "world"}), now());
        assert!(matches!(unknown, Err(ReceiptError::Unknown(_))));
        assert!(!unknown.err().is_some_and(|error| error.is_retryable()));
        let foreign = job_of(&json!({"eventType": "TEXT_DELIVERED", "context": {}}), now());
        assert!(matches!(foreign, Err(ReceiptError::Phone(_))));
    }
}
