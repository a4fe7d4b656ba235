//! The call log of the Space's numbers: what each number's provider reports of its calls
//! (who called whom, which way, how long, how it ended, the recording). A space key reads
//! it (`phone:read`); the entries come from the provider, or, with the sandbox, from the
//! owner standing in for it (account API, `POST …/connections/{id}/calls`, [`record`]).

use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_connections::{self as connections, PHONE};
use space_http::events::event_write;
use space_http::fields::{Field, FieldKind, format_datetime, normalize_phone, parse_datetime};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::Call;
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, FieldErrors};
use space_store::{Condition, Item, Write};

pub const CALLS: &str = "phone_calls";
pub const DIRECTIONS: &[&str] = &["inbound", "outbound"];
/// How a call ended, as carriers report it.
pub const STATUSES: &[&str] = &["completed", "busy", "no-answer", "failed", "canceled"];
/// The longest call the log takes (a day).
pub const MAX_DURATION: i64 = 86_400;
const MAX_ID_CHARS: usize = 100;

/// What the record operation's schema cannot say.
pub const RECORD_RULES: &str = "The connection must be a phone number with the `voice` capability (409 otherwise). \
     An inbound call needs `from` (the caller) and an outbound one `to` (who was called); the other end is the \
     connection's own number. Phone numbers must be valid in their country's numbering plan (libphonenumber's \
     metadata), and `started_at` must not be in the future; otherwise 422.";

pub fn resource() -> Resource {
    Resource {
        domain: Domain::Phone,
        name: "phone_calls",
        collection: CALLS,
        path: "/phone/calls",
        item_param: "id",
        singular: "call",
        plural: "calls",
        event_prefix: "call",
        id_prefix: "call",
        parent: None,
        fields: vec![
            Field::new("from", FieldKind::Phone, "Who called."),
            Field::new("to", FieldKind::Phone, "Who was called."),
            Field::new("direction", FieldKind::Enum(DIRECTIONS), "Inbound or outbound."),
        ],
        filters: vec![
            Filter::Equals {
                param: "from",
                field: "from",
                kind: FieldKind::Phone,
            },
            Filter::Equals {
                param: "to",
                field: "to",
                kind: FieldKind::Phone,
            },
            Filter::Equals {
                param: "direction",
                field: "direction",
                kind: FieldKind::Enum(DIRECTIONS),
            },
        ],
        rules: None,
    }
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "Starts with `call_`."},
            "number_id": {"type": "string", "description": "The Space's number the call was on (/phone/numbers)."},
            "from": {"type": "string", "description": "E.164."},
            "to": {"type": "string", "description": "E.164."},
            "direction": {"type": "string", "enum": DIRECTIONS},
            "duration_seconds": {"type": "integer", "minimum": 0},
            "status": {"type": "string", "enum": STATUSES},
            "recording_media_id": {"type": ["string", "null"], "description": "The recording, a media item of the Space (/media), if there is one."},
            "started_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "number_id", "from", "to", "direction", "duration_seconds", "status", "started_at", "created_at", "version"]
    })
}

pub fn record_schema() -> Value {
    let phone = |description: &str| {
        let mut schema = FieldKind::Phone.schema();
        schema["description"] = json!(format!("{description} {}", space_http::fields::PHONE_RULE));
        schema
    };
    json!({
        "type": "object",
        "properties": {
            "direction": {"type": "string", "enum": DIRECTIONS},
            "from": phone("Inbound: the caller."),
            "to": phone("Outbound: who was called."),
            "duration_seconds": {"type": "integer", "minimum": 0, "maximum": MAX_DURATION},
            "status": {"type": "string", "enum": STATUSES},
            "recording_media_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
            "started_at": {"type": "string", "format": "date-time", "description": "When the call began; now when left out."}
        },
        "required": ["direction", "duration_seconds", "status"],
        "additionalProperties": false
    })
}

fn phone(object: &Map<String, Value>, name: &str, errors: &mut FieldErrors) -> Option<String> {
    match object.get(name) {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_str().map(normalize_phone) {
            Some(Ok(number)) => Some(number),
            _ => {
                errors.insert(name.into(), vec![space_http::fields::PHONE_RULE.into()]);
                None
            }
        },
    }
}

/// Records one call on phone connection `connection` of the call's Space.
pub async fn record(call: &Call, connection: &Item, body: &Value) -> Result<Value, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    let mut errors = FieldErrors::new();
    for extra in object.keys().filter(|k| {
        !matches!(
            k.as_str(),
            "direction" | "from" | "to" | "duration_seconds" | "status" | "recording_media_id" | "started_at"
        )
    }) {
        errors.insert(extra.clone(), vec!["is not a field of a call".into()]);
    }
    let direction = object
        .get("direction")
        .and_then(Value::as_str)
        .filter(|d| DIRECTIONS.contains(d));
    if direction.is_none() {
        errors.insert(
            "direction".into(),
            vec![format!("must be one of {}", DIRECTIONS.join(", "))],
        );
    }
    let status = object
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| STATUSES.contains(s));
    if status.is_none() {
        errors.insert("status".into(), vec![format!("must be one of {}", STATUSES.join(", "))]);
    }
    let duration = object
        .get("duration_seconds")
        .and_then(Value::as_f64)
        .filter(|n| n.fract() == 0.0 && (0.0..=MAX_DURATION as f64).contains(n))
        .map(|n| n as i64);
    if duration.is_none() {
        errors.insert(
            "duration_seconds".into(),
            vec![format!("must be a whole number of seconds from 0 to {MAX_DURATION}")],
        );
    }
    let from = phone(object, "from", &mut errors);
    let to = phone(object, "to", &mut errors);
    let recording = match object.get("recording_media_id") {
        None | Some(Value::Null) => None,
        Some(value) => match value
            .as_str()
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_CHARS)
        {
            Some(id) => Some(id.to_owned()),
            None => {
                errors.insert("recording_media_id".into(), vec!["must be a media id".into()]);
                None
            }
        },
    };
    let now = call.engine.now();
    let started_at = match object.get("started_at") {
        None | Some(Value::Null) => Some(now),
        Some(value) => match value.as_str().and_then(parse_datetime) {
            Some(at) if at <= now => Some(at),
            _ => {
                errors.insert(
                    "started_at".into(),
                    vec!["must be an RFC 3339 date-time, not in the future".into()],
                );
                None
            }
        },
    };
    let own = connection
        .body
        .get("number")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (from, to) = match direction {
        Some("inbound") => {
            if from.is_none() && !errors.contains_key("from") {
                errors.insert("from".into(), vec!["is required for an inbound call".into()]);
            }
            (from, Some(own))
        }
        _ => {
            if to.is_none() && !errors.contains_key("to") {
                errors.insert("to".into(), vec!["is required for an outbound call".into()]);
            }
            (Some(own), to)
        }
    };
    let (Some(direction), Some(status), Some(duration), Some(started_at), Some(from), Some(to)) =
        (direction, status, duration, started_at, from, to)
    else {
        return Err(ApiError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if connection.body.get("kind").and_then(Value::as_str) != Some(PHONE)
        || !connections::has_capability(connection, "voice")
    {
        return Err(ApiError::Conflict(
            "This connection is not a phone number with the `voice` capability: it has no calls.".into(),
        ));
    }
    let space = call.space_id()?;
    let id = new_id("call");
    let at = format_datetime(now);
    let mut item_body = Map::new();
    item_body.insert("id".into(), json!(id));
    item_body.insert("number_id".into(), json!(connection.sk));
    item_body.insert("from".into(), json!(from));
    item_body.insert("to".into(), json!(to));
    item_body.insert("direction".into(), json!(direction));
    item_body.insert("duration_seconds".into(), json!(duration));
    item_body.insert("status".into(), json!(status));
    item_body.insert("recording_media_id".into(), json!(recording));
    item_body.insert("started_at".into(), json!(format_datetime(started_at)));
    item_body.insert("created_at".into(), json!(at));
    item_body.insert("updated_at".into(), json!(at));
    let item = Item::new(keys::collection_partition(space, CALLS), id.clone(), item_body);
    let shown = Resource::render(&item);
    call.engine
        .store()
        .transact(vec![
            Write::put(item, Condition::NotExists),
            event_write(space, "call.created", &id, shown.clone(), &call.principal, now),
        ])
        .await?;
    Ok(shown)
}
