//! What Amazon SES reports of a message it took, turned into the family's [`Receipt`] job.
//!
//! SES publishes sending events through the configuration set [`crate::provider::Ses`]
//! names on every send, to an SNS topic whose queue the `receipts` function reads. Each
//! event carries the message's tags (`mail.tags`, a map of arrays), and every send tags its
//! message with `space_id` and `message_id`: the event names the message it is about, so
//! no index from SES's message id to ours is needed. What the event says becomes the
//! payload the sandbox's report uses (`{"space_id", "message_id", "fates"}`), so one job
//! moves a message whoever carried it.
//!
//! - `Bounce` with `bounceType` `Permanent`: each bounced recipient `bounced` (and
//!   suppressed by the job). A `Transient` or `Undetermined` bounce is no receipt: the
//!   address may take mail later, so it is neither suppressed nor the message moved.
//! - `Complaint`: each complaining recipient `complained` (and suppressed).
//! - `Delivery`: each recipient delivered to `delivered`.
//! - `Reject`: SES took the message but refused to send it (it found a virus), before any
//!   recipient was tried: the message `failed` (`PROVIDER_REJECTED`, with SES's reason);
//!   nobody is suppressed.
//! - Anything else (`Send`, `DeliveryDelay`, `Open`, `Click`, …) is no receipt.
//!
//! [`Receipt`]: crate::delivery::Receipt

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use space_connections::receipt_job;
use space_worker::NewJob;

use crate::RECEIPT;
use crate::provider::Fate;

/// The tags every SES send carries, naming the message in the Space.
pub const SPACE_TAG: &str = "space_id";
pub const MESSAGE_TAG: &str = "message_id";

/// Why a notification gives no receipt job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// Not an SES sending event at all (another family's, or something else).
    #[error("not an Amazon SES sending event")]
    NotMail,
    /// An SES event that cannot be read or names no message of ours.
    #[error("an Amazon SES event that does not parse: {0}")]
    Malformed(String),
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The first value of the message tag `name` (`mail.tags.<name>[0]`).
fn tag<'a>(event: &'a Value, name: &str) -> Result<&'a str, NotificationError> {
    event
        .pointer("/mail/tags")
        .and_then(|tags| tags.get(name))
        .and_then(Value::as_array)
        .and_then(|values| values.first())
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| NotificationError::Malformed(format!("no `{name}` tag: not a message of the Space API")))
}

/// The addresses listed under `pointer`: objects with `emailAddress`, or plain strings.
fn addresses(event: &Value, pointer: &str) -> Vec<String> {
    event
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.get("emailAddress").and_then(Value::as_str).or(entry.as_str()))
        .map(|address| address.trim().to_ascii_lowercase())
        .filter(|address| !address.is_empty())
        .collect()
}

/// When the event happened, if it says; a receipt job is due then (or now, if later).
fn happened(event: &Value, kind: &str) -> Option<DateTime<Utc>> {
    let at = text(event, &format!("/{kind}/timestamp")).or_else(|| text(event, "/mail/timestamp"))?;
    DateTime::parse_from_rfc3339(at).ok().map(|at| at.with_timezone(&Utc))
}

/// The receipt job an SES sending event (the event itself, not its SNS envelope) asks
/// for: `Ok(None)` for an event that moves nothing, [`NotificationError::NotMail`] for
/// anything that is not an SES event. Due when the event happened (at most `now`) and
/// named after the event, so the same event enqueued twice is one job.
pub fn receipt(event: &Value, now: DateTime<Utc>) -> Result<Option<NewJob>, NotificationError> {
    // Event publishing names it `eventType`; an identity's own notifications
    // `notificationType` (they carry no tags, so they are refused below as not ours).
    let Some(kind) = text(event, "/eventType").or_else(|| text(event, "/notificationType")) else {
        return Err(NotificationError::NotMail);
    };
    if !event.get("mail").is_some_and(Value::is_object) {
        return Err(NotificationError::NotMail);
    }
    if kind == "Reject" {
        let space = tag(event, SPACE_TAG)?;
        let message = tag(event, MESSAGE_TAG)?;
        let reason = text(event, "/reject/reason").unwrap_or("Amazon SES rejected the message");
        let payload = json!({"space_id": space, "message_id": message, "rejected": reason});
        return Ok(Some(receipt_job(
            RECEIPT,
            "mail",
            event,
            payload,
            happened(event, "reject"),
            now,
        )));
    }
    let (fate, field, listed) = match kind {
        "Bounce" => match text(event, "/bounce/bounceType") {
            Some("Permanent") => (Fate::Bounced, "bounce", "/bounce/bouncedRecipients"),
            Some(_) => return Ok(None),
            None => return Err(NotificationError::Malformed("a bounce without its bounceType".into())),
        },
        "Complaint" => (Fate::Complained, "complaint", "/complaint/complainedRecipients"),
        "Delivery" => (Fate::Delivered, "delivery", "/delivery/recipients"),
        _ => return Ok(None),
    };
    let space = tag(event, SPACE_TAG)?;
    let message = tag(event, MESSAGE_TAG)?;
    let recipients = addresses(event, listed);
    if recipients.is_empty() {
        return Err(NotificationError::Malformed(format!(
            "a {kind} event naming no recipient"
        )));
    }
    let fates: Map<String, Value> = recipients
        .into_iter()
        .map(|address| (address, json!(fate.as_str())))
        .collect();
    let payload = json!({"space_id": space, "message_id": message, "fates": fates});
    Ok(Some(receipt_job(
        RECEIPT,
        "mail",
        event,
        payload,
        happened(event, field),
        now,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .expect("a time")
            .with_timezone(&Utc)
    }

    /// The `mail` object of an event, as SES publishes it for a message sent with the
    /// configuration set and the Space API's tags.
    fn mail(destination: &[&str]) -> Value {
        json!({
            "timestamp": "2026-03-02T09:58:01.012Z",
            "source": "agent@example.com",
            "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/agent@example.com",
            "sendingAccountId": "123456789012",
            "messageId": "0100018e0a1b2c3d-5e6f7a8b-1111-2222-3333-444455556666-000000",
            "destination": destination,
            "headersTruncated": false,
            "commonHeaders": {"from": ["agent@example.com"], "to": destination, "subject": "Your order"},
            "tags": {
                "ses:configuration-set": ["space-api-dev-mail"],
                "ses:source-ip": ["192.0.2.10"],
                "ses:from-domain": ["example.com"],
                "ses:caller-identity": ["space-api-dev-dispatcher"],
                "space_id": ["spc_01HZY"],
                "message_id": ["mail_01HZZ"]
            }
        })
    }

    fn bounce(kind: &str) -> Value {
        json!({
            "eventType": "Bounce",
            "bounce": {
                "bounceType": kind,
                "bounceSubType": "General",
                "bouncedRecipients": [{
                    "emailAddress": "Gone@Example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                }],
                "timestamp": "2026-03-02T09:59:02.669Z",
                "feedbackId": "0100018e0a1b2c3d-aaaa-bbbb-cccc-ddddeeeeffff-000000",
                "reportingMTA": "dsn; a1-2.smtp-out.amazonses.com"
            },
            "mail": mail(&["gone@example.com", "ada@example.com"])
        })
    }

    fn job(event: &Value) -> NewJob {
        receipt(event, now()).expect("parses").expect("a receipt")
    }

    #[test]
    fn a_permanent_bounce_bounces_its_recipients() {
        let event = bounce("Permanent");
        let job = job(&event);
        assert_eq!(job.kind(), RECEIPT);
        assert_eq!(
            job.payload(),
            &json!({"space_id": "spc_01HZY", "message_id": "mail_01HZZ", "fates": {"gone@example.com": "bounced"}})
        );
        assert_eq!(job.due().to_rfc3339(), "2026-03-02T09:59:02.669+00:00");
        // The same event twice is the same job; another event another.
        assert_eq!(
            job.name(),
            receipt(&event, now()).expect("parses").expect("a receipt").name()
        );
        assert!(job.name().is_some_and(|name| name.starts_with("mail-receipt-")));
        assert_ne!(job.name(), self::job(&bounce_of("other@example.com")).name());
    }

    fn bounce_of(address: &str) -> Value {
        let mut event = bounce("Permanent");
        event["bounce"]["bouncedRecipients"][0]["emailAddress"] = json!(address);
        event
    }

    #[test]
    fn a_soft_bounce_moves_nothing() {
        assert!(receipt(&bounce("Transient"), now()).expect("parses").is_none());
        assert!(receipt(&bounce("Undetermined"), now()).expect("parses").is_none());
    }

    #[test]
    fn complaints_and_deliveries() {
        let complaint = json!({
            "eventType": "Complaint",
            "complaint": {
                "feedbackId": "0100018e0a1b2c3d-complaint-000000",
                "complaintSubType": null,
                "complainedRecipients": [{"emailAddress": "ada@example.com"}],
                "timestamp": "2026-03-02T09:59:30.000Z",
                "userAgent": "Mozilla/5.0",
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2026-03-02T09:59:29.000Z"
            },
            "mail": mail(&["ada@example.com"])
        });
        assert_eq!(
            job(&complaint).payload()["fates"],
            json!({"ada@example.com": "complained"})
        );
        let delivery = json!({
            "eventType": "Delivery",
            "delivery": {
                "timestamp": "2026-03-02T09:58:03.106Z",
                "processingTimeMillis": 2094,
                "recipients": ["ada@example.com", "grace@example.com"],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a1-2.smtp-out.amazonses.com"
            },
            "mail": mail(&["ada@example.com", "grace@example.com"])
        });
        assert_eq!(
            job(&delivery).payload()["fates"],
            json!({"ada@example.com": "delivered", "grace@example.com": "delivered"})
        );
    }

    #[test]
    fn a_reject_fails_the_message_with_the_reason() {
        let event =
            json!({"eventType": "Reject", "mail": mail(&["ada@example.com"]), "reject": {"reason": "Bad content"}});
        assert_eq!(job(&event).payload()["rejected"], "Bad content");
        assert!(job(&event).payload().get("fates").is_none());
    }

    #[test]
    fn other_events_move_nothing() {
        for kind in ["Send", "DeliveryDelay", "Open", "Click", "Rendering Failure"] {
            let event =
                json!({"eventType": kind, "mail": mail(&["ada@example.com"]), "reject": {"reason": "Bad content"}});
            assert!(receipt(&event, now()).expect("parses").is_none(), "{kind}");
        }
    }

    #[test]
    fn a_future_timestamp_is_due_now() {
        let mut event = bounce("Permanent");
        event["bounce"]["timestamp"] = json!("2030-01-01T00:00:00Z");
        assert_eq!(job(&event).due(), now());
    }

    #[test]
    fn what_is_not_ours_is_refused() {
        let sms = json!({"eventType": "TEXT_DELIVERED", "messageId": "x", "context": {}});
        assert_eq!(receipt(&sms, now()).err(), Some(NotificationError::NotMail));
        assert_eq!(receipt(&json!("text"), now()).err(), Some(NotificationError::NotMail));
        let mut untagged = bounce("Permanent");
        untagged["mail"]["tags"] = json!({"ses:configuration-set": ["x"]});
        assert!(matches!(
            receipt(&untagged, now()),
            Err(NotificationError::Malformed(_))
        ));
        let mut nobody = bounce("Permanent");
        nobody["bounce"]["bouncedRecipients"] = json!([]);
        assert!(matches!(receipt(&nobody, now()), Err(NotificationError::Malformed(_))));
        let mut typeless = bounce("Permanent");
        typeless["bounce"]
            .as_object_mut()
            .expect("an object")
            .remove("bounceType");
        assert!(matches!(
            receipt(&typeless, now()),
            Err(NotificationError::Malformed(_))
        ));
    }
}
