//! What AWS End User Messaging SMS reports of a message it took, turned into the family's
//! [`Receipt`] job.
//!
//! End User Messaging publishes SMS events through the configuration set
//! [`crate::provider::AwsSms`] names on every send, to an SNS topic whose queue the
//! `receipts` function reads. Each event echoes the message's `context`, and every send
//! puts the message's Space and id there: the event names the message it is about, so no
//! index from AWS's message id to ours is needed. The payload is the one the sandbox's
//! receipts use (`{"space_id", "message_id", "status"}`), so one job moves a message
//! whoever carried it.
//!
//! - `TEXT_DELIVERED`, `TEXT_SUCCESSFUL` (the carrier took it; countries report one or
//!   the other): `delivered`.
//! - `TEXT_BLOCKED`, `TEXT_CARRIER_BLOCKED`, `TEXT_PROTECT_BLOCKED`, `TEXT_SPAM`,
//!   `TEXT_TTL_EXPIRED`, `TEXT_CARRIER_UNREACHABLE`, `TEXT_UNREACHABLE`, `TEXT_INVALID`,
//!   `TEXT_INVALID_MESSAGE`: `undelivered`.
//! - The rest (`TEXT_QUEUED`, `TEXT_PENDING`, `TEXT_SENT`, and `TEXT_UNKNOWN`, which says
//!   that no final word came) is no receipt: the message stays `sent`.
//!
//! [`Receipt`]: crate::delivery::Receipt

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use space_connections::receipt_job;
use space_worker::NewJob;

use crate::RECEIPT;

/// The context keys every send carries, naming the message in the Space.
pub const SPACE_KEY: &str = "space_id";
pub const MESSAGE_KEY: &str = "message_id";

/// Why a notification gives no receipt job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Not an SMS event at all (another family's, or something else).
    #[error("not an AWS End User Messaging SMS event")]
    NotSms,
    /// An SMS event that cannot be read or names no message of ours.
    #[error("an SMS event that does not parse: {0}")]
    Malformed(String),
}

/// The receipt an event type is, if it is one.
fn status_of(event_type: &str) -> Option<&'static str> {
    match event_type {
        "TEXT_DELIVERED" | "TEXT_SUCCESSFUL" => Some("delivered"),
        "TEXT_BLOCKED"
        | "TEXT_CARRIER_BLOCKED"
        | "TEXT_PROTECT_BLOCKED"
        | "TEXT_SPAM"
        | "TEXT_TTL_EXPIRED"
        | "TEXT_CARRIER_UNREACHABLE"
        | "TEXT_UNREACHABLE"
        | "TEXT_INVALID"
        | "TEXT_INVALID_MESSAGE" => Some("undelivered"),
        _ => None,
    }
}

fn context<'a>(event: &'a Value, key: &str) -> Result<&'a str, NotificationError> {
    event
        .get("context")
        .and_then(|context| context.get(key))
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            NotificationError::Malformed(format!("no `{key}` in its context: not a message of the Space API"))
        })
}

/// The receipt job an SMS event (the event itself, not its SNS envelope) asks for:
/// `Ok(None)` for an event that moves nothing, [`NotificationError::NotSms`] for anything
/// that is not an SMS event. Due when the event happened (at most `now`) and named after
/// the event, so the same event enqueued twice is one job.
pub fn receipt(event: &Value, now: DateTime<Utc>) -> Result<Option<NewJob>, NotificationError> {
    let event_type = event
        .get("eventType")
        .and_then(Value::as_str)
        .filter(|kind| kind.starts_with("TEXT_"))
        .ok_or(NotificationError::NotSms)?;
    let Some(status) = status_of(event_type) else {
        return Ok(None);
    };
    let space = context(event, SPACE_KEY)?;
    let message = context(event, MESSAGE_KEY)?;
    let at = event
        .get("eventTimestamp")
        .and_then(Value::as_i64)
        .and_then(DateTime::from_timestamp_millis);
    let payload = json!({"space_id": space, "message_id": message, "status": status});
    Ok(Some(receipt_job(RECEIPT, "sms", event, payload, at, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    /// An SMS event as End User Messaging publishes it for a message sent with the
    /// configuration set and the Space API's context.
    fn event(kind: &str, status: &str) -> Value {
        json!({
            "eventType": kind,
            "eventVersion": "1.0",
            "eventTimestamp": 1_772_445_540_000_i64,
            "isFinal": true,
            "originationPhoneNumber": "+12015550100",
            "destinationPhoneNumber": "+12015550123",
            "isInternationalSend": false,
            "isoCountryCode": "US",
            "mcc": "310",
            "mnc": "800",
            "messageId": "9c1a2b3c-4d5e-6f70-8192-a3b4c5example",
            "messageRequestTimestamp": 1_772_445_539_000_i64,
            "messageEncoding": "GSM",
            "messageType": "TRANSACTIONAL",
            "messageStatus": status,
            "messageStatusDescription": "Message has been accepted by phone",
            "context": {"space_id": "spc_01HZY", "message_id": "sms_01HZZ"},
            "totalMessageParts": 1,
            "totalMessagePrice": 0.00581,
            "totalCarrierFee": 0.00302
        })
    }

    fn job(event: &Value) -> NewJob {
        receipt(event, now()).expect("parses").expect("a receipt")
    }

    #[test]
    fn delivered_and_successful_are_delivered() {
        for kind in ["TEXT_DELIVERED", "TEXT_SUCCESSFUL"] {
            let job = job(&event(kind, "DELIVERED"));
            assert_eq!(job.kind(), RECEIPT);
            assert_eq!(
                job.payload(),
                &json!({"space_id": "spc_01HZY", "message_id": "sms_01HZZ", "status": "delivered"})
            );
            assert_eq!(job.due().timestamp_millis(), 1_772_445_540_000);
        }
    }

    #[test]
    fn failures_are_undelivered() {
        for kind in [
            "TEXT_BLOCKED",
            "TEXT_TTL_EXPIRED",
            "TEXT_CARRIER_UNREACHABLE",
            "TEXT_INVALID",
            "TEXT_UNREACHABLE",
            "TEXT_CARRIER_BLOCKED",
            "TEXT_SPAM",
        ] {
            assert_eq!(job(&event(kind, "FAILED")).payload()["status"], "undelivered", "{kind}");
        }
    }

    #[test]
    fn progress_and_unknown_are_no_receipt() {
        for kind in ["TEXT_QUEUED", "TEXT_PENDING", "TEXT_SENT", "TEXT_UNKNOWN"] {
            assert!(
                receipt(&event(kind, "PENDING"), now()).expect("parses").is_none(),
                "{kind}"
            );
        }
    }

    #[test]
    fn the_same_event_is_the_same_job() {
        let delivered = event("TEXT_DELIVERED", "DELIVERED");
        assert_eq!(job(&delivered).name(), job(&delivered).name());
        assert_ne!(job(&delivered).name(), job(&event("TEXT_BLOCKED", "FAILED")).name());
        let mut late = delivered.clone();
        late["eventTimestamp"] = json!(4_102_444_800_000_i64);
        assert_eq!(job(&late).due(), now());
    }

    #[test]
    fn what_is_not_ours_is_refused() {
        let mail = json!({"eventType": "Bounce", "mail": {}});
        assert_eq!(receipt(&mail, now()).err(), Some(NotificationError::NotSms));
        assert_eq!(
            receipt(&json!({"eventType": "VOICE_COMPLETED"}), now()).err(),
            Some(NotificationError::NotSms)
        );
        let mut foreign = event("TEXT_DELIVERED", "DELIVERED");
        foreign["context"] = json!({"account": "bar"});
        assert!(matches!(receipt(&foreign, now()), Err(NotificationError::Malformed(_))));
        foreign.as_object_mut().expect("an object").remove("context");
        assert!(matches!(receipt(&foreign, now()), Err(NotificationError::Malformed(_))));
    }
}
