//! SMS: the live action (`phone:run`). A message is checked here (the recipient's number
//! in its country's plan, the text's segments, the recipient's consent), stored `queued`
//! with the job that sends it (one transaction), and moved on by the provider through the
//! worker: `sent`, then `delivered` or `undelivered`, or `failed`.

use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_connections::segments::{self, MAX_SEGMENTS};
use space_connections::{self as connections, Channel, PHONE};
use space_http::fields::{Field, FieldKind, format_datetime, normalize_phone};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Call, Reply};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, FieldErrors};
use space_store::Item;

use crate::SEND;
use crate::delivery::OUT;

pub const MESSAGES: &str = "phone_sms";
pub const STATUSES: &[&str] = &["queued", "sending", "sent", "delivered", "undelivered", "failed"];
/// The longest text taken (Twilio's limit); its segments are the rule that counts.
pub const MAX_TEXT: usize = 1_600;
const MAX_ID_CHARS: usize = 100;

/// What the send operation's schema cannot say.
pub const SEND_RULES: &str = "`from_number_id` must be one of the Space's numbers (GET /phone/numbers) with the `sms` \
     capability, and `to` a phone number valid in its country's numbering plan (libphonenumber's metadata), \
     otherwise 422. The text is counted in SMS segments (GSM-7: 160 in one message, 153 per part; anything \
     outside GSM-7 goes as UCS-2: 70, 67 per part), at most 10, else 422; the answer carries `segments` and \
     `encoding`. A recipient who opted out of SMS (they sent STOP to the Space) is 422 `RECIPIENT_OPTED_OUT`. \
     The message moves `queued` → `sent` → `delivered` or `undelivered` (or `failed`) with `sms.*` events, and is \
     sent once: between `queued` and `sent` it is `sending` (handed to the provider).";

pub fn resource() -> Resource {
    Resource {
        domain: Domain::Phone,
        name: "phone_sms",
        collection: MESSAGES,
        path: "/phone/sms",
        item_param: "id",
        singular: "sms",
        plural: "sms",
        event_prefix: "sms",
        id_prefix: "sms",
        parent: None,
        fields: vec![
            Field::new("to", FieldKind::Phone, "The recipient."),
            Field::new("status", FieldKind::Enum(STATUSES), "Where the message is."),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "to",
                field: "to",
                kind: FieldKind::Phone,
            },
        ],
        rules: None,
    }
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "title": "SmsMessage",
        "properties": {
            "id": {"type": "string", "description": "Starts with `sms_`."},
            "from_number_id": {"type": "string"},
            "from": {"type": "string", "description": "The Space's number, E.164."},
            "to": {"type": "string", "description": "E.164."},
            "text": {"type": "string"},
            "segments": {"type": "integer", "minimum": 1, "maximum": MAX_SEGMENTS},
            "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"]},
            "status": {"type": "string", "enum": STATUSES, "description": "`queued` → `sending` (handed to the provider) → `sent` → `delivered` or `undelivered`, or `failed` (`error.code` `OUTCOME_UNKNOWN`: the provider never answered and the message was not sent again; it may have arrived)."},
            "provider": {"type": "string"},
            "provider_message_id": {"type": "string"},
            "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
            "sent_at": {"type": "string", "format": "date-time"},
            "delivered_at": {"type": "string", "format": "date-time"},
            "undelivered_at": {"type": "string", "format": "date-time"},
            "failed_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "from_number_id", "from", "to", "text", "segments", "encoding", "status", "created_at", "version"]
    })
}

pub fn send_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "from_number_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "description": "One of the Space's numbers (GET /phone/numbers)."},
            "to": FieldKind::Phone.schema(),
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "\\S", "description": "At most 10 SMS segments (GSM-7 160/153, UCS-2 70/67)."}
        },
        "required": ["from_number_id", "to", "text"],
        "additionalProperties": false
    })
}

/// A send request, checked.
struct SendInput {
    from_number_id: String,
    to: String,
    text: String,
    count: segments::Count,
}

fn parse(body: &Value) -> Result<SendInput, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "body",
            "must be a JSON object with from_number_id, to and text",
        ));
    };
    let mut errors = FieldErrors::new();
    for extra in object
        .keys()
        .filter(|k| !matches!(k.as_str(), "from_number_id" | "to" | "text"))
    {
        errors.insert(
            extra.clone(),
            vec!["is not accepted; send from_number_id, to and text".into()],
        );
    }
    let from_number_id = match object.get("from_number_id").and_then(Value::as_str).map(str::trim) {
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS => id.to_owned(),
        _ => {
            errors.insert(
                "from_number_id".into(),
                vec!["The from_number_id field is required: a number's id (GET /phone/numbers).".into()],
            );
            String::new()
        }
    };
    let to = match object.get("to").and_then(Value::as_str) {
        Some(to) => normalize_phone(to).unwrap_or_else(|_| {
            errors.insert("to".into(), vec![space_http::fields::PHONE_RULE.into()]);
            String::new()
        }),
        None => {
            errors.insert(
                "to".into(),
                vec!["The to field is required: a phone number in international format.".into()],
            );
            String::new()
        }
    };
    let text = match object.get("text").and_then(Value::as_str) {
        Some(text) if !text.trim().is_empty() && text.chars().count() <= MAX_TEXT => text.to_owned(),
        Some(text) if text.trim().is_empty() => {
            errors.insert("text".into(), vec!["must not be empty".into()]);
            String::new()
        }
        Some(_) => {
            errors.insert("text".into(), vec![format!("must be at most {MAX_TEXT} characters")]);
            String::new()
        }
        None => {
            errors.insert("text".into(), vec!["The text field is required.".into()]);
            String::new()
        }
    };
    let count = segments::count(&text);
    if count.segments > MAX_SEGMENTS && !errors.contains_key("text") {
        errors.insert(
            "text".into(),
            vec![format!(
                "takes {} SMS segments ({}); a message takes at most {MAX_SEGMENTS}",
                count.segments,
                count.encoding.as_str()
            )],
        );
    }
    if errors.is_empty() {
        Ok(SendInput {
            from_number_id,
            to,
            text,
            count,
        })
    } else {
        Err(ApiError::validation(errors))
    }
}

/// `POST /phone/sms`.
pub async fn send(call: Call) -> Result<Reply, ApiError> {
    let input = parse(&call.body)?;
    let space = call.space_id()?.to_owned();
    let number = connections::get(&call.engine, &space, &input.from_number_id)
        .await?
        .filter(|item| item.body.get("kind").and_then(Value::as_str) == Some(PHONE))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "from_number_id",
                format!(
                    "there is no phone number `{}` in this Space (GET /phone/numbers)",
                    input.from_number_id
                ),
            )
        })?;
    if !connections::has_capability(&number, "sms") {
        return Err(ApiError::invalid_field(
            "from_number_id",
            "this number does not send SMS (its capabilities lack `sms`)",
        ));
    }
    if !connections::is_active(&number) {
        return Err(ApiError::invalid_field(
            "from_number_id",
            "this number is paused by the Space's owner (its connection is not active)",
        ));
    }
    if inbox::inbound::number_opted_out(&call, &input.to, Channel::Sms).await? {
        return Err(ApiError::Refused {
            code: "RECIPIENT_OPTED_OUT",
            message: format!(
                "{} opted out of SMS from this Space (they sent STOP); they must opt in again (START) before you can message them.",
                input.to
            ),
        });
    }
    let now = call.engine.now();
    let at = format_datetime(now);
    let id = new_id("sms");
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("from_number_id".into(), json!(number.sk));
    body.insert("from".into(), number.body.get("number").cloned().unwrap_or(Value::Null));
    body.insert("to".into(), json!(input.to));
    body.insert("text".into(), json!(input.text));
    body.insert("segments".into(), json!(input.count.segments));
    body.insert("encoding".into(), json!(input.count.encoding.as_str()));
    body.insert("status".into(), json!("queued"));
    body.insert(
        "provider".into(),
        number.body.get("provider").cloned().unwrap_or(Value::Null),
    );
    body.insert("created_at".into(), json!(at));
    body.insert("updated_at".into(), json!(at));
    let message = Item::new(keys::collection_partition(&space, MESSAGES), id.clone(), body);
    let shown = OUT.queue(&call.engine, &space, message, SEND, &call.principal).await?;
    Ok(Reply::created(shown))
}
