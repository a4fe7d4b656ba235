//! A thread's messages, oldest first, and replying: the live action (`inbox:run`). A reply
//! is checked against the channel's rules here, stored `queued` with the job that sends it
//! (one transaction), and moved on by the provider through the worker.

use serde_json::{Map, Value, json};
use space_connections::segments::{self, MAX_SEGMENTS};
use space_connections::{self as connections, Channel};
use space_http::events::{event_write, update_event_write};
use space_http::fields::format_datetime;
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Call, Param, Reply};
use space_http::resource::{PageRequest, Resource, list_partition};
use space_http::{ApiError, FieldErrors};
use space_store::{Condition, Item, SortRange, StoreError, Write};
use space_worker::NewJob;

use crate::SEND;
use crate::inbound::opted_out;
use crate::threads::{self, text};

pub const MESSAGES: &str = "inbox_messages";
pub const STATUSES: &[&str] = &["received", "queued", "sending", "sent", "delivered", "read", "failed"];
/// The longest reply.
pub const MAX_REPLY: usize = 4_096;
pub const MAX_MEDIA: usize = 10;
const MAX_ID_CHARS: usize = 100;
const WRITE_RETRIES: usize = 3;

pub fn schema() -> Value {
    json!({
        "type": "object",
        "title": "InboxMessage",
        "properties": {
            "id": {"type": "string", "description": "Starts with `msg_`."},
            "thread_id": {"type": "string"},
            "contact_id": {"type": "string"},
            "channel_id": {"type": "string"},
            "channel": {"type": "string", "enum": Channel::NAMES},
            "direction": {"type": "string", "enum": ["inbound", "outbound"]},
            "status": {"type": "string", "enum": STATUSES, "description": "Inbound: `received`. Outbound: `queued` → `sending` (handed to the provider) → `sent` → `delivered` → `read`, or `failed`."},
            "from": {"type": "string"},
            "to": {"type": "string"},
            "text": {"type": "string"},
            "media": {"type": "array", "items": {"type": "object"}, "description": "Inbound: what the provider reported of attached media."},
            "media_ids": {"type": "array", "items": {"type": "string"}, "description": "Outbound: media of the Space attached."},
            "segments": {"type": "integer", "description": "SMS: how many segments the text takes."},
            "encoding": {"type": "string", "enum": ["GSM-7", "UCS-2"], "description": "SMS: how the text travels."},
            "template_id": {"type": "string", "description": "Outbound: the approved template sent."},
            "parameters": {"type": "array", "items": {"type": "string"}},
            "provider_message_id": {"type": "string"},
            "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
            "sent_at": {"type": "string", "format": "date-time"},
            "delivered_at": {"type": "string", "format": "date-time"},
            "read_at": {"type": "string", "format": "date-time"},
            "failed_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "thread_id", "direction", "status", "text", "created_at", "version"]
    })
}

pub fn list_params() -> Vec<Param> {
    vec![
        Param::path("id", "The thread's id."),
        Param::query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": space_http::resource::MAX_LIMIT, "default": space_http::resource::DEFAULT_LIMIT}),
            "How many messages to return.",
        ),
        Param::query(
            "cursor",
            json!({"type": "string"}),
            "The `next_cursor` of the previous page, as the API gave it.",
        ),
        Param::query(
            "order",
            json!({"type": "string", "enum": ["asc", "desc"], "default": "asc"}),
            "`asc` (the default) lists oldest first, `desc` newest first.",
        ),
    ]
}

pub fn partition(space: &str, thread_id: &str) -> String {
    keys::child_partition(space, MESSAGES, thread_id)
}

/// `GET /inbox/threads/{id}/messages`: oldest first unless `order=desc`.
pub async fn list(call: Call) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::new();
    let mut page = PageRequest::from_call(&call, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    page.descending = call.query_param("order") == Some("desc");
    let thread = threads::load(&call, call.path_param("id")?).await?;
    let partition = partition(call.space_id()?, &thread.sk);
    Ok(Reply::ok(
        list_partition(&call, &partition, SortRange::All, page, |_| true).await?,
    ))
}

pub fn reply_schema() -> Value {
    json!({
        "type": "object",
        "description": "Free-form `text`, or an approved template (`template_id` with exactly its `parameters`), which also goes outside WhatsApp's 24-hour window.",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_REPLY, "description": "The reply. SMS counts it in segments (GSM-7 160/153, UCS-2 70/67), at most 10."},
            "template_id": {"type": "string", "maxLength": MAX_ID_CHARS, "description": "An approved template (/templates) to send instead of text."},
            "parameters": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_PARAMETER},
                "maxItems": MAX_PARAMETERS,
                "description": "The template's {{1}}…{{n}}, in order."
            },
            "media_ids": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
                "maxItems": MAX_MEDIA,
                "description": "Media of the Space (/media) to attach."
            }
        },
        "additionalProperties": false
    })
}

/// The most parameters a template reply carries, and the longest.
const MAX_PARAMETERS: usize = 100;
const MAX_PARAMETER: usize = 1_024;

/// What a reply sends: free-form text, or an approved template with its parameters.
enum Content {
    Text(String),
    Template { id: String, parameters: Vec<String> },
}

/// A reply request, checked.
struct ReplyInput {
    content: Content,
    media_ids: Vec<String>,
}

fn parse_reply(body: &Value) -> Result<ReplyInput, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object with text"));
    };
    let mut errors = FieldErrors::new();
    for extra in object
        .keys()
        .filter(|k| !matches!(k.as_str(), "text" | "template_id" | "parameters" | "media_ids"))
    {
        errors.insert(
            extra.clone(),
            vec!["is not accepted; send text, or template_id and parameters, and media_ids".into()],
        );
    }
    let content = match (object.get("text"), object.get("template_id")) {
        (Some(_), Some(_)) => {
            errors.insert("template_id".into(), vec!["send text or template_id, not both".into()]);
            None
        }
        (None, Some(id)) => match id.as_str().map(str::trim).filter(|id| !id.is_empty()) {
            Some(id) => {
                let parameters = match object.get("parameters") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(list)) if list.len() <= MAX_PARAMETERS => {
                        let values: Vec<String> = list
                            .iter()
                            .filter_map(Value::as_str)
                            .filter(|v| !v.trim().is_empty() && v.chars().count() <= MAX_PARAMETER)
                            .map(str::to_owned)
                            .collect();
                        if values.len() != list.len() {
                            errors.insert(
                                "parameters".into(),
                                vec![format!(
                                    "must be non-empty strings of at most {MAX_PARAMETER} characters"
                                )],
                            );
                        }
                        values
                    }
                    Some(_) => {
                        errors.insert(
                            "parameters".into(),
                            vec![format!("must be a list of at most {MAX_PARAMETERS} strings")],
                        );
                        Vec::new()
                    }
                };
                Some(Content::Template {
                    id: id.to_owned(),
                    parameters,
                })
            }
            None => {
                errors.insert("template_id".into(), vec!["must be a template id".into()]);
                None
            }
        },
        (text, None) => {
            if object.contains_key("parameters") {
                errors.insert("parameters".into(), vec!["go with template_id".into()]);
            }
            match text.and_then(Value::as_str) {
                Some(text) if !text.trim().is_empty() && text.chars().count() <= MAX_REPLY => {
                    Some(Content::Text(text.to_owned()))
                }
                Some(text) if text.trim().is_empty() => {
                    errors.insert("text".into(), vec!["must not be empty".into()]);
                    None
                }
                Some(_) => {
                    errors.insert("text".into(), vec![format!("must be at most {MAX_REPLY} characters")]);
                    None
                }
                None => {
                    errors.insert(
                        "text".into(),
                        vec!["The text field is required (or template_id with parameters).".into()],
                    );
                    None
                }
            }
        }
    };
    let media_ids = match object.get("media_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.len() <= MAX_MEDIA => {
            let ids: Vec<String> = list
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ID_CHARS)
                .map(str::to_owned)
                .collect();
            if ids.len() != list.len() {
                errors.insert("media_ids".into(), vec!["must hold media ids (strings)".into()]);
            }
            ids
        }
        Some(_) => {
            errors.insert(
                "media_ids".into(),
                vec![format!("must be a list of at most {MAX_MEDIA} media ids")],
            );
            Vec::new()
        }
    };
    match content {
        Some(content) if errors.is_empty() => Ok(ReplyInput { content, media_ids }),
        _ => Err(ApiError::validation(errors)),
    }
}

/// `POST /inbox/threads/{id}/reply`.
pub async fn reply(call: Call) -> Result<Reply, ApiError> {
    let input = parse_reply(&call.body)?;
    let space = call.space_id()?.to_owned();
    let id = call.path_param("id")?.to_owned();
    for _ in 0..WRITE_RETRIES {
        let thread = threads::load(&call, &id).await?;
        call.check_if_match(thread.version)?;
        let writes_and_message = plan_reply(&call, &space, &thread, &input).await?;
        let (writes, message) = writes_and_message;
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::created(Resource::render(&message))),
            Err(StoreError::TransactionConflict { index: 0 } | StoreError::Contention) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "The thread kept changing while we replied; retry.".into(),
    ))
}

fn window_closed(until: Option<chrono::DateTime<chrono::Utc>>) -> ApiError {
    ApiError::Refused {
        code: "REPLY_WINDOW_CLOSED",
        message: match until {
            Some(until) => format!(
                "WhatsApp takes free-form replies only within 24 hours of the contact's last message; that window closed at {}. Send an approved template instead (template_id).",
                format_datetime(until)
            ),
            None => "WhatsApp takes free-form replies only within 24 hours of a message from the contact, and they have sent none. Send an approved template instead (template_id).".into(),
        },
    }
}

/// The checks of a reply on `thread`, then the writes that queue it.
async fn plan_reply(
    call: &Call,
    space: &str,
    thread: &Item,
    input: &ReplyInput,
) -> Result<(Vec<Write>, Item), ApiError> {
    if threads::status(thread) == "closed" {
        return Err(ApiError::Conflict(
            "The thread is closed: reopen it (POST …/reopen) to reply.".into(),
        ));
    }
    let channel_id = text(thread, "channel_id").unwrap_or_default();
    let connection = connections::get(&call.engine, space, channel_id)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict("The thread's messaging connection was removed: it takes no replies.".into())
        })?;
    let channel = connections::channel(&connection)
        .ok_or_else(|| ApiError::Conflict("The thread's connection is not a messaging channel.".into()))?;
    if !connections::is_active(&connection) {
        return Err(ApiError::Conflict(
            "The thread's channel is paused by the Space's owner: it takes no replies until it is resumed.".into(),
        ));
    }
    let contact_id = text(thread, "contact_id").unwrap_or_default();
    if opted_out(&call.engine, space, contact_id, channel.as_str()).await? {
        return Err(ApiError::Refused {
            code: "RECIPIENT_OPTED_OUT",
            message: format!(
                "The contact opted out of {} (they sent STOP); they must opt in again (START) before you can message them.",
                channel.as_str()
            ),
        });
    }
    let now = call.engine.now();
    let (content, template) = match &input.content {
        Content::Text(text) => {
            let (allowed, until) = threads::reply_window(thread, now);
            if !allowed {
                return Err(window_closed(until));
            }
            (text.clone(), None)
        }
        Content::Template { id, parameters } => {
            let (template, text) =
                messaging::templates::render(&call.engine, space, &connection, id, parameters).await?;
            (text, Some((template.sk, parameters.clone())))
        }
    };
    let mut body = Map::new();
    if channel == Channel::Sms {
        let count = segments::count(&content);
        if count.segments > MAX_SEGMENTS {
            return Err(ApiError::invalid_field(
                "text",
                format!(
                    "takes {} SMS segments ({}); a reply takes at most {MAX_SEGMENTS}",
                    count.segments,
                    count.encoding.as_str()
                ),
            ));
        }
        body.insert("segments".into(), json!(count.segments));
        body.insert("encoding".into(), json!(count.encoding.as_str()));
    }
    let media_partition = keys::collection_partition(space, "media");
    for media_id in &input.media_ids {
        let ready = call
            .engine
            .store()
            .get(&media_partition, media_id)
            .await?
            .is_some_and(|media| text(&media, "status") == Some("ready"));
        if !ready {
            return Err(ApiError::invalid_field(
                "media_ids",
                format!("there is no ready media `{media_id}` in this Space"),
            ));
        }
    }
    let at = format_datetime(now);
    let message_id = new_id("msg");
    body.insert("id".into(), json!(message_id));
    body.insert("thread_id".into(), json!(thread.sk));
    body.insert("contact_id".into(), json!(contact_id));
    body.insert("channel_id".into(), json!(channel_id));
    body.insert("channel".into(), json!(channel.as_str()));
    body.insert("direction".into(), json!("outbound"));
    body.insert("status".into(), json!("queued"));
    body.insert(
        "from".into(),
        connection.body.get("address").cloned().unwrap_or(Value::Null),
    );
    body.insert("to".into(), thread.body.get("address").cloned().unwrap_or(Value::Null));
    body.insert("text".into(), json!(content));
    if let Some((template_id, parameters)) = template {
        body.insert("template_id".into(), json!(template_id));
        body.insert("parameters".into(), json!(parameters));
    }
    body.insert("media_ids".into(), json!(input.media_ids));
    body.insert("created_at".into(), json!(at));
    body.insert("updated_at".into(), json!(at));
    let message = Item::new(partition(space, &thread.sk), message_id.clone(), body);
    let mut next = thread.clone();
    let outbound = thread.body.get("outbound_count").and_then(Value::as_u64).unwrap_or(0);
    next.body.insert("outbound_count".into(), json!(outbound + 1));
    next.body.insert("last_outbound_at".into(), json!(at));
    next.body.insert("last_message_at".into(), json!(at));
    next.body.insert("updated_at".into(), json!(at));
    threads::set_preview(&mut next, &content);
    next.version = thread.version + 1;
    let mut writes = vec![
        Write::put(next.clone(), Condition::Version(thread.version)),
        update_event_write(
            space,
            "thread.updated",
            &thread.sk,
            &Resource::render(thread),
            Resource::render(&next),
            &call.principal,
            now,
        ),
        Write::put(message.clone(), Condition::NotExists),
        event_write(
            space,
            "message.queued",
            &message_id,
            Resource::render(&message),
            &call.principal,
            now,
        ),
        NewJob::new(
            SEND,
            json!({"space_id": space, "thread_id": thread.sk, "message_id": message_id}),
            now,
        )
        .write(),
    ];
    writes.extend(threads::index_writes(space, Some(thread), &next));
    Ok((writes, message))
}
