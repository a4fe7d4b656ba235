//! Messages: the live action (`mail:write`). A message is checked here (its sender a
//! verified mail connection of the Space, every address plain, 1 to 50 recipients, none on
//! the suppression list, a subject, a text and/or an html body), its html sanitized, and
//! stored `queued` with the job that sends it (one transaction). The provider moves it on
//! through the worker: `sent`, then `delivered`, `bounced` or `complained`, or `failed`.

use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_connections::{self as connections, MAIL};
use space_http::email::Email;
use space_http::fields::{Field, FieldKind, format_datetime};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Call, Reply};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, FieldErrors};
use space_store::Item;

use crate::delivery::OUT;
use crate::senders::{is_verified, may_send_as};
use crate::suppressions::suppressed;
use crate::{SEND, html};

pub const MESSAGES: &str = "mail_messages";
pub const STATUSES: &[&str] = &[
    "queued",
    "sending",
    "sent",
    "delivered",
    "bounced",
    "complained",
    "failed",
];
/// What a recipient's own status can be.
pub const RECIPIENT_STATUSES: &[&str] = &["queued", "sent", "delivered", "bounced", "complained", "failed"];
/// At most this many recipients (`to`, `cc` and `bcc` together), as the providers take.
pub const MAX_RECIPIENTS: usize = 50;
/// The longest subject taken (a mail header line's limit, RFC 5322).
pub const MAX_SUBJECT: usize = 998;
/// The longest text body, and the longest html body before sanitizing (characters): both
/// together fit one stored item.
pub const MAX_BODY: usize = 60_000;
const MAX_ID_CHARS: usize = 100;
const FIELDS: &[&str] = &[
    "from_sender_id",
    "from",
    "to",
    "cc",
    "bcc",
    "reply_to",
    "subject",
    "text",
    "html",
];

/// What the send operation's schema cannot say.
pub const SEND_RULES: &str = "`from_sender_id` must be a mail sender of this Space (GET /mail/senders; the owner connects them) \
     that is verified (a sandbox sender is at once; an SES sender once SES verified the address or domain), otherwise 422 \
     (`SENDER_UNVERIFIED` for one not yet verified). `from` defaults to the sender's address; a domain sender takes \
     any address at its domain (default `no-reply@<domain>`). `to` (1 to 50), `cc` and `bcc` hold plain email \
     addresses, at most 50 recipients in all (repeats count once); every address must be valid, otherwise 422. At \
     least one of `text` and `html` is required. The html is sanitized (scripts, event handlers, styles and unknown \
     tags removed) before it is stored and sent: the message shows what was kept. A recipient on the Space's \
     suppression list (a hard bounce or a spam complaint) is 422 `RECIPIENT_SUPPRESSED` naming them, and nothing is \
     sent. The message moves `queued` → `sent` → `delivered`, `bounced` or `complained` (or `failed`), with `mail.*` \
     events; each recipient has its own status. It is sent once: between `queued` and `sent` it is `sending` \
     (handed to the provider).";

pub fn resource() -> Resource {
    Resource {
        domain: Domain::Mail,
        name: "mail_messages",
        collection: MESSAGES,
        path: "/mail/messages",
        item_param: "id",
        singular: "mail message",
        plural: "mail messages",
        event_prefix: "mail",
        id_prefix: "mail",
        parent: None,
        fields: vec![Field::new("status", FieldKind::Enum(STATUSES), "Where the message is.")],
        filters: vec![Filter::Equals {
            param: "status",
            field: "status",
            kind: FieldKind::Enum(STATUSES),
        }],
        rules: None,
    }
}

fn addresses_schema(min: usize, description: &str) -> Value {
    json!({
        "type": "array",
        "items": FieldKind::Email.schema(),
        "minItems": min,
        "maxItems": MAX_RECIPIENTS,
        "description": description
    })
}

fn email_schema(description: &str) -> Value {
    let mut schema = FieldKind::Email.schema();
    schema["description"] = json!(description);
    schema
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "title": "MailMessage",
        "properties": {
            "id": {"type": "string", "description": "Starts with `mail_`."},
            "from_sender_id": {"type": "string"},
            "from": {"type": "string"},
            "to": {"type": "array", "items": {"type": "string"}},
            "cc": {"type": "array", "items": {"type": "string"}},
            "bcc": {"type": "array", "items": {"type": "string"}},
            "reply_to": {"type": "string"},
            "subject": {"type": "string"},
            "text": {"type": "string"},
            "html": {"type": "string", "description": "As sanitized when the message was accepted: what was sent."},
            "recipients": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "address": {"type": "string"},
                        "type": {"type": "string", "enum": ["to", "cc", "bcc"]},
                        "status": {"type": "string", "enum": RECIPIENT_STATUSES}
                    },
                    "required": ["address", "type", "status"]
                },
                "description": "Each recipient and what the provider reported of them."
            },
            "status": {"type": "string", "enum": STATUSES, "description": "`queued` → `sending` (handed to the provider) → `sent` → `delivered` (every recipient delivered), `bounced` or `complained` (some recipient bounced or complained: complained wins), or `failed` (`error.code` `OUTCOME_UNKNOWN`: the provider never answered and the message was not sent again; it may have arrived)."},
            "provider": {"type": "string"},
            "provider_message_id": {"type": "string"},
            "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
            "sent_at": {"type": "string", "format": "date-time"},
            "delivered_at": {"type": "string", "format": "date-time"},
            "bounced_at": {"type": "string", "format": "date-time"},
            "complained_at": {"type": "string", "format": "date-time"},
            "failed_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "from_sender_id", "from", "to", "subject", "recipients", "status", "created_at", "version"]
    })
}

pub fn send_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "from_sender_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS, "description": "A verified mail sender of the Space (GET /mail/senders)."},
            "from": email_schema("The address it goes out as: the sender's own, or one at a domain sender's domain."),
            "to": addresses_schema(1, "1 to 50 addresses."),
            "cc": addresses_schema(0, "Copies; to, cc and bcc hold at most 50 recipients together."),
            "bcc": addresses_schema(0, "Blind copies; to, cc and bcc hold at most 50 recipients together."),
            "reply_to": email_schema("Where replies go."),
            "subject": {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT, "pattern": "^[^\\r\\n]*\\S[^\\r\\n]*$", "description": "One line.", "examples": ["Your order shipped"]},
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_BODY, "pattern": "\\S", "description": "The plain text body; `text`, `html` or both."},
            "html": {"type": "string", "minLength": 1, "maxLength": MAX_BODY, "pattern": "\\S", "description": "The html body, sanitized before it is stored and sent (scripts, event handlers and unknown tags are removed); `text`, `html` or both."}
        },
        "required": ["from_sender_id", "to", "subject"],
        "additionalProperties": false
    })
}

/// A send request, checked.
struct SendInput {
    from_sender_id: String,
    from: Option<String>,
    /// Each recipient once, with the list it came in.
    recipients: Vec<(String, &'static str)>,
    reply_to: Option<String>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
}

/// A list of addresses, each checked; a bad one is named in the field's errors.
fn addresses(object: &Map<String, Value>, name: &str, required: bool, errors: &mut FieldErrors) -> Vec<String> {
    let list = match object.get(name) {
        None | Some(Value::Null) if !required => return Vec::new(),
        None | Some(Value::Null) => {
            errors.insert(
                name.into(),
                vec![format!(
                    "The {name} field is required: a list of 1 to {MAX_RECIPIENTS} email addresses."
                )],
            );
            return Vec::new();
        }
        Some(Value::Array(list)) => list,
        Some(_) => {
            errors.insert(name.into(), vec!["must be a list of email addresses".into()]);
            return Vec::new();
        }
    };
    if required && list.is_empty() {
        errors.insert(name.into(), vec!["must hold at least one address".into()]);
    }
    if list.len() > MAX_RECIPIENTS {
        errors.insert(
            name.into(),
            vec![format!("holds {} addresses; at most {MAX_RECIPIENTS}", list.len())],
        );
        return Vec::new();
    }
    let mut kept = Vec::new();
    let mut problems = Vec::new();
    for entry in list {
        match entry.as_str().map(Email::parse) {
            Some(Ok(email)) => kept.push(String::from(email)),
            Some(Err(why)) => problems.push(format!("`{}` {why}", entry.as_str().unwrap_or_default())),
            None => problems.push("must hold strings (email addresses)".into()),
        }
    }
    if !problems.is_empty() {
        errors.insert(name.into(), problems);
    }
    kept
}

fn one_address(object: &Map<String, Value>, name: &str, errors: &mut FieldErrors) -> Option<String> {
    match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match Email::parse(text) {
            Ok(email) => Some(email.into()),
            Err(why) => {
                errors.insert(name.into(), vec![why.to_string()]);
                None
            }
        },
        Some(_) => {
            errors.insert(name.into(), vec!["must be an email address".into()]);
            None
        }
    }
}

fn body_text(object: &Map<String, Value>, name: &str, errors: &mut FieldErrors) -> Option<String> {
    match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => {
            errors.insert(name.into(), vec!["must not be empty; leave it out instead".into()]);
            None
        }
        Some(Value::String(text)) if text.chars().count() > MAX_BODY => {
            errors.insert(name.into(), vec![format!("must be at most {MAX_BODY} characters")]);
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.insert(name.into(), vec!["must be a string".into()]);
            None
        }
    }
}

fn parse(body: &Value) -> Result<SendInput, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "body",
            "must be a JSON object with from_sender_id, to, subject and text or html",
        ));
    };
    let mut errors = FieldErrors::new();
    for extra in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.insert(
            extra.clone(),
            vec![format!("is not accepted; send {}", FIELDS.join(", "))],
        );
    }
    let from_sender_id = match object.get("from_sender_id").and_then(Value::as_str).map(str::trim) {
        Some(id) if !id.is_empty() && id.chars().count() <= MAX_ID_CHARS => id.to_owned(),
        _ => {
            errors.insert(
                "from_sender_id".into(),
                vec!["The from_sender_id field is required: a mail sender's id (a connection of kind `mail`).".into()],
            );
            String::new()
        }
    };
    let from = one_address(object, "from", &mut errors);
    let mut recipients: Vec<(String, &'static str)> = Vec::new();
    for (name, required) in [("to", true), ("cc", false), ("bcc", false)] {
        for address in addresses(object, name, required, &mut errors) {
            if !recipients.iter().any(|(kept, _)| *kept == address) {
                recipients.push((address, name));
            }
        }
    }
    if recipients.len() > MAX_RECIPIENTS {
        errors.insert(
            "to".into(),
            vec![format!(
                "to, cc and bcc hold {} recipients together; at most {MAX_RECIPIENTS}",
                recipients.len()
            )],
        );
    }
    let reply_to = one_address(object, "reply_to", &mut errors);
    let subject = match object.get("subject").and_then(Value::as_str) {
        Some(subject) if subject.trim().is_empty() => {
            errors.insert("subject".into(), vec!["must not be empty".into()]);
            String::new()
        }
        Some(subject) if subject.chars().count() > MAX_SUBJECT || subject.contains(['\r', '\n']) => {
            errors.insert(
                "subject".into(),
                vec![format!("must be one line of at most {MAX_SUBJECT} characters")],
            );
            String::new()
        }
        Some(subject) => subject.to_owned(),
        None => {
            errors.insert("subject".into(), vec!["The subject field is required.".into()]);
            String::new()
        }
    };
    let text = body_text(object, "text", &mut errors);
    let html = body_text(object, "html", &mut errors).map(|html| html::sanitize(&html));
    if text.is_none() && html.as_deref().is_some_and(|html| html.trim().is_empty()) {
        errors.insert(
            "html".into(),
            vec!["has nothing left once sanitized (scripts and unknown tags are removed); send text, or html with content".into()],
        );
    }
    if text.is_none() && html.is_none() && !errors.contains_key("text") && !errors.contains_key("html") {
        errors.insert(
            "text".into(),
            vec!["A message needs a body: send text, html or both.".into()],
        );
    }
    if errors.is_empty() {
        Ok(SendInput {
            from_sender_id,
            from,
            recipients,
            reply_to,
            subject,
            text,
            html,
        })
    } else {
        Err(ApiError::validation(errors))
    }
}

/// The sender a message names, if it is a verified mail connection of this Space.
async fn sender(call: &Call, space: &str, id: &str) -> Result<Item, ApiError> {
    let sender = connections::get(&call.engine, space, id)
        .await?
        .filter(|item| item.body.get("kind").and_then(Value::as_str) == Some(MAIL))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "from_sender_id",
                format!("there is no mail sender `{id}` in this Space (GET /mail/senders)"),
            )
        })?;
    if !is_verified(&sender) || !connections::is_active(&sender) {
        let address = sender.body.get("address").and_then(Value::as_str).unwrap_or_default();
        return Err(ApiError::Refused {
            code: "SENDER_UNVERIFIED",
            message: format!(
                "The sender {address} is not verified yet: the provider must confirm the address or domain before mail goes out from it."
            ),
        });
    }
    Ok(sender)
}

/// The address the message goes out as.
fn from_address(sender: &Item, asked: Option<String>) -> Result<String, ApiError> {
    let address = sender.body.get("address").and_then(Value::as_str).unwrap_or_default();
    let from = match asked {
        Some(from) => from,
        None if address.contains('@') => address.to_owned(),
        None => format!("no-reply@{address}"),
    };
    if may_send_as(sender, &from) {
        Ok(from)
    } else {
        Err(ApiError::invalid_field(
            "from",
            format!(
                "the sender {address} cannot send as {from} (an address sender sends as itself, a domain sender as any address at its domain)"
            ),
        ))
    }
}

/// `POST /mail/messages`.
pub async fn send(call: Call) -> Result<Reply, ApiError> {
    let input = parse(&call.body)?;
    let space = call.space_id()?.to_owned();
    let sender = sender(&call, &space, &input.from_sender_id).await?;
    let from = from_address(&sender, input.from)?;
    let addresses: Vec<&str> = input.recipients.iter().map(|(a, _)| a.as_str()).collect();
    let refused = suppressed(&call.engine, &space, &addresses).await?;
    if !refused.is_empty() {
        return Err(ApiError::Refused {
            code: "RECIPIENT_SUPPRESSED",
            message: format!(
                "These recipients are on the Space's suppression list (a hard bounce or a spam complaint), so nothing was sent: {}. Remove them from the message, or the owner removes them from the list.",
                refused.join(", ")
            ),
        });
    }
    let now = call.engine.now();
    let at = format_datetime(now);
    let id = new_id("mail");
    let list = |kind: &str| -> Vec<&str> {
        input
            .recipients
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(a, _)| a.as_str())
            .collect()
    };
    let recipients: Vec<Value> = input
        .recipients
        .iter()
        .map(|(address, kind)| json!({"address": address, "type": kind, "status": "queued"}))
        .collect();
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("from_sender_id".into(), json!(sender.sk));
    body.insert("from".into(), json!(from));
    body.insert("to".into(), json!(list("to")));
    body.insert("cc".into(), json!(list("cc")));
    body.insert("bcc".into(), json!(list("bcc")));
    if let Some(reply_to) = &input.reply_to {
        body.insert("reply_to".into(), json!(reply_to));
    }
    body.insert("subject".into(), json!(input.subject));
    if let Some(text) = &input.text {
        body.insert("text".into(), json!(text));
    }
    if let Some(html) = &input.html {
        body.insert("html".into(), json!(html));
    }
    body.insert("recipients".into(), json!(recipients));
    body.insert("status".into(), json!("queued"));
    body.insert(
        "provider".into(),
        sender.body.get("provider").cloned().unwrap_or(Value::Null),
    );
    body.insert("created_at".into(), json!(at));
    body.insert("updated_at".into(), json!(at));
    let message = Item::new(keys::collection_partition(&space, MESSAGES), id.clone(), body);
    let shown = OUT.queue(&call.engine, &space, message, SEND, &call.principal).await?;
    Ok(Reply::accepted(shown))
}
