//! What an automation is: a name, a trigger, the steps, and the key event and schedule runs
//! act as. Parsed once at the edge ([`Definition::parse`]); every error names its field.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use space_http::error::FieldErrors;
use space_http::event_types;
use space_http::fields::{TIME_ZONE_PATTERN, label, label_schema};

use crate::placeholders;
use crate::schedule::Schedule;

/// Steps an automation holds at most.
pub const MAX_STEPS: usize = 20;
/// The longest `wait`: 30 days.
pub const MAX_WAIT_SECONDS: u64 = 30 * 24 * 3600;
pub const MAX_NAME_CHARS: usize = 200;
const MAX_TEXT_CHARS: usize = 1600;
const MAX_SHORT_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2000;

/// The step types, in the order the documentation lists them.
pub const STEP_TYPES: [&str; 6] = [
    "create_task",
    "add_tag",
    "send_mail",
    "send_sms",
    "call_webhook",
    "wait",
];

/// What starts a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A key calls `POST /automations/{id}/run`.
    Manual,
    /// Each new event of this type in the Space.
    Event(String),
    /// Each occurrence of a cron expression in a time zone.
    Schedule(Box<Schedule>),
}

impl Trigger {
    pub fn to_json(&self) -> Value {
        match self {
            Trigger::Manual => json!({"type": "manual"}),
            Trigger::Event(event) => json!({"type": "event", "event": event}),
            Trigger::Schedule(schedule) => {
                json!({"type": "schedule", "cron": schedule.cron(), "time_zone": schedule.time_zone()})
            }
        }
    }

    /// The trigger stored in an automation's body (parsed when it was written).
    pub fn of(body: &Map<String, Value>) -> Option<Trigger> {
        parse_trigger(body.get("trigger")?).ok()
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Event(_) => "event",
            Trigger::Schedule(_) => "schedule",
        }
    }
}

/// A checked automation, as created or after a change.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    pub steps: Vec<Value>,
    pub run_as_key_id: Option<String>,
}

impl Definition {
    /// Checks a whole definition (a create, or a stored one with a patch applied).
    pub fn parse(body: &Value) -> Result<Definition, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut add = |field: &str, message: String| errors.entry(field.to_owned()).or_default().push(message);
        let Some(object) = body.as_object() else {
            add("body", "must be a JSON object".into());
            return Err(errors);
        };
        for name in object.keys() {
            if !["name", "enabled", "trigger", "steps", "run_as_key_id"].contains(&name.as_str()) {
                add(name, "is not a field of an automation".into());
            }
        }
        let name = match object
            .get("name")
            .and_then(Value::as_str)
            .and_then(|name| label(name, MAX_NAME_CHARS))
        {
            Some(name) => name.to_owned(),
            _ => {
                add(
                    "name",
                    format!("is required: 1 to {MAX_NAME_CHARS} printable characters, not only spaces"),
                );
                String::new()
            }
        };
        let enabled = match object.get("enabled") {
            None => true,
            Some(Value::Bool(enabled)) => *enabled,
            Some(_) => {
                add("enabled", "must be true or false".into());
                true
            }
        };
        let trigger = match object.get("trigger").map(parse_trigger) {
            Some(Ok(trigger)) => trigger,
            Some(Err((field, message))) => {
                add(&field, message);
                Trigger::Manual
            }
            None => {
                add(
                    "trigger",
                    "is required: {\"type\": \"manual\" | \"event\" | \"schedule\", …}".into(),
                );
                Trigger::Manual
            }
        };
        let mut key_refused = false;
        let run_as_key_id = match object.get("run_as_key_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if space_http::ids::has_shape(id, "key") => Some(id.clone()),
            Some(_) => {
                add(
                    "run_as_key_id",
                    "must be the id of one of the Space's keys (`key_…`)".into(),
                );
                key_refused = true;
                None
            }
        };
        if trigger != Trigger::Manual && run_as_key_id.is_none() && !key_refused {
            add(
                "run_as_key_id",
                "is required for an event or schedule trigger: the key its steps act as".into(),
            );
        }
        let steps = match object.get("steps").and_then(Value::as_array) {
            Some(steps) if !steps.is_empty() && steps.len() <= MAX_STEPS => {
                let mut checked = Vec::new();
                for (index, step) in steps.iter().enumerate() {
                    match parse_step(step) {
                        Ok(step) => checked.push(step),
                        Err((field, message)) => add(&format!("steps[{index}]{field}"), message),
                    }
                }
                checked
            }
            _ => {
                add("steps", format!("is required: 1 to {MAX_STEPS} steps"));
                Vec::new()
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Definition {
            name,
            enabled,
            trigger,
            steps,
            run_as_key_id,
        })
    }

    /// Whether a step calls out of the Space, which needs a signing secret.
    pub fn calls_webhooks(&self) -> bool {
        self.steps.iter().any(|step| step["type"] == "call_webhook")
    }

    /// The fields stored (and shown) for this definition.
    pub fn fields(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("name".into(), json!(self.name));
        body.insert("enabled".into(), json!(self.enabled));
        body.insert("trigger".into(), self.trigger.to_json());
        body.insert("steps".into(), Value::Array(self.steps.clone()));
        body.insert("run_as_key_id".into(), json!(self.run_as_key_id));
        body
    }

    /// When the schedule fires next after `now`, if it is an enabled schedule.
    pub fn next_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.trigger {
            Trigger::Schedule(schedule) if self.enabled => schedule.next_after(now),
            _ => None,
        }
    }
}

type FieldError = (String, String);

fn parse_trigger(value: &Value) -> Result<Trigger, FieldError> {
    let error = |field: &str, message: String| (format!("trigger{field}"), message);
    let Some(object) = value.as_object() else {
        return Err(error("", "must be an object with a `type`".into()));
    };
    let allowed: &[&str] = match object.get("type").and_then(Value::as_str) {
        Some("manual") => &["type"],
        Some("event") => &["type", "event"],
        Some("schedule") => &["type", "cron", "time_zone"],
        _ => return Err(error(".type", "must be one of manual, event, schedule".into())),
    };
    if let Some(extra) = object.keys().find(|name| !allowed.contains(&name.as_str())) {
        return Err(error(
            &format!(".{extra}"),
            "is not a field of this trigger type".into(),
        ));
    }
    match object.get("type").and_then(Value::as_str) {
        Some("event") => match object.get("event").and_then(Value::as_str) {
            Some(event) if event_types::automation_triggers().any(|known| known == event) => {
                Ok(Trigger::Event(event.to_owned()))
            }
            _ => Err(error(
                ".event",
                format!(
                    "must be one of the event types: {}",
                    event_types::automation_triggers().collect::<Vec<_>>().join(", ")
                ),
            )),
        },
        Some("schedule") => {
            let cron = object.get("cron").and_then(Value::as_str).unwrap_or_default();
            let zone = object.get("time_zone").and_then(Value::as_str).unwrap_or("UTC");
            Schedule::parse(cron, zone).map(|schedule| Trigger::Schedule(Box::new(schedule))).map_err(|problem| match problem {
                crate::schedule::ScheduleError::Cron(message) => error(".cron", message),
                crate::schedule::ScheduleError::TimeZone => error(
                    ".time_zone",
                    format!("must be an IANA time zone the tz database has, like Europe/Berlin (pattern {TIME_ZONE_PATTERN})"),
                ),
            })
        }
        _ => Ok(Trigger::Manual),
    }
}

/// A string field of a step: present, not only white space, at most `max` characters.
fn text(object: &Map<String, Value>, name: &str, max: usize) -> Result<String, FieldError> {
    match object.get(name).and_then(Value::as_str) {
        Some(value) if !value.trim().is_empty() && value.chars().count() <= max => Ok(value.to_owned()),
        _ => Err((
            format!(".{name}"),
            format!("is required: 1 to {max} characters, not only spaces"),
        )),
    }
}

/// `value` of the step field at `at`, its placeholders checked ([`placeholders`]).
fn templated(at: &str, value: String) -> Result<String, FieldError> {
    placeholders::check(&value).map_err(|message| (at.to_owned(), message))?;
    Ok(value)
}

/// A one-line label field of a step (a task's title).
fn one_label(object: &Map<String, Value>, name: &str, max: usize) -> Result<String, FieldError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .and_then(|value| label(value, max))
        .map(str::to_owned)
        .ok_or_else(|| {
            (
                format!(".{name}"),
                format!("is required: 1 to {max} printable characters, not only spaces"),
            )
        })
}

fn parse_step(value: &Value) -> Result<Value, FieldError> {
    let Some(object) = value.as_object() else {
        return Err((String::new(), "must be an object with a `type`".into()));
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or_default();
    let fields: &[&str] = match kind {
        "create_task" => &["type", "title"],
        "add_tag" => &["type", "tag"],
        "send_mail" => &["type", "from_sender_id", "to", "subject", "text"],
        "send_sms" => &["type", "from_number_id", "to", "text"],
        "call_webhook" => &["type", "url"],
        "wait" => &["type", "seconds"],
        _ => return Err((".type".into(), format!("must be one of {}", STEP_TYPES.join(", ")))),
    };
    if let Some(extra) = object.keys().find(|name| !fields.contains(&name.as_str())) {
        return Err((format!(".{extra}"), format!("is not a field of a `{kind}` step")));
    }
    let step = match kind {
        "create_task" => {
            json!({"type": kind, "title": templated(".title", one_label(object, "title", MAX_SHORT_CHARS)?)?})
        }
        "add_tag" => {
            let tag = object.get("tag").cloned().unwrap_or(Value::Null);
            let tag = space_http::fields::normalize_tag(&tag).map_err(|message| (".tag".into(), message))?;
            json!({"type": kind, "tag": tag})
        }
        "send_mail" => {
            let to: Vec<String> = match object.get("to") {
                Some(Value::String(one)) if !one.trim().is_empty() => vec![one.clone()],
                Some(Value::Array(many)) if !many.is_empty() && many.len() <= 50 => many
                    .iter()
                    .map(|address| address.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| (".to".to_owned(), "must list email addresses".to_owned()))?,
                _ => {
                    return Err((
                        ".to".into(),
                        "is required: an email address or a list of 1 to 50".into(),
                    ));
                }
            };
            for address in &to {
                placeholders::check(address).map_err(|message| (".to".to_owned(), message))?;
            }
            json!({
                "type": kind,
                "from_sender_id": text(object, "from_sender_id", MAX_SHORT_CHARS)?,
                "to": to,
                "subject": templated(".subject", text(object, "subject", MAX_SHORT_CHARS)?)?,
                "text": templated(".text", text(object, "text", MAX_TEXT_CHARS * 10)?)?,
            })
        }
        "send_sms" => json!({
            "type": kind,
            "from_number_id": text(object, "from_number_id", MAX_SHORT_CHARS)?,
            "to": templated(".to", text(object, "to", 40)?)?,
            "text": templated(".text", text(object, "text", MAX_TEXT_CHARS)?)?,
        }),
        "call_webhook" => {
            let url = text(object, "url", MAX_URL_CHARS)?;
            // The guard's shape check (scheme, host); loopback targets are refused where
            // the server does not allow local webhooks, when the step runs.
            webhooks::guard::parse_target(&url, true).map_err(|message| (".url".to_owned(), message))?;
            json!({"type": kind, "url": url})
        }
        _ => match object.get("seconds").and_then(Value::as_u64) {
            Some(seconds) if (1..=MAX_WAIT_SECONDS).contains(&seconds) => json!({"type": kind, "seconds": seconds}),
            _ => {
                return Err((
                    ".seconds".into(),
                    format!("must be a whole number of seconds from 1 to {MAX_WAIT_SECONDS} (30 days)"),
                ));
            }
        },
    };
    Ok(step)
}

/// The request body of a create (and, all optional, of a change).
pub fn request_schema(partial: bool) -> Value {
    let step = json!({
        "type": "object",
        "description": "One step: `create_task` {title}, `add_tag` {tag} (to the run's contact), `send_mail` {from_sender_id, to, subject, text}, `send_sms` {from_number_id, to, text}, `call_webhook` {url}, `wait` {seconds}. A title, `to`, subject or text may hold `{{input.<name>}}` (a value of the run's input) and `{{contact.<field>}}` (name, email, phone, company or job_title of the run's contact, `input.contact_id`), filled in when the step runs; any other `{{…}}` is refused.",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": STEP_TYPES},
            "title": label_schema(MAX_SHORT_CHARS),
            "tag": label_schema(64),
            "from_sender_id": {"type": "string", "minLength": 1, "maxLength": MAX_SHORT_CHARS, "pattern": "\\S"},
            "from_number_id": {"type": "string", "minLength": 1, "maxLength": MAX_SHORT_CHARS, "pattern": "\\S"},
            "to": {"description": "An email address or a list of 1 to 50 (send_mail), a phone number (send_sms)."},
            "subject": {"type": "string", "minLength": 1, "maxLength": MAX_SHORT_CHARS, "pattern": "\\S"},
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS * 10, "pattern": "\\S", "description": "At most 1,600 characters for send_sms, 16,000 for send_mail."},
            "url": {"type": "string", "format": "uri", "maxLength": MAX_URL_CHARS},
            "seconds": {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_SECONDS}
        }
    });
    let mut schema = json!({
        "type": "object",
        "properties": {
            "name": label_schema(MAX_NAME_CHARS),
            "enabled": {"type": "boolean", "default": true},
            "trigger": trigger_schema(),
            "steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": step},
            "run_as_key_id": {"type": ["string", "null"], "pattern": "^key_[0-9A-Za-z]{26}$", "description": "The space key event and schedule runs act as (required for those triggers): each step is authorized, capped and approval-checked as that key."}
        },
        "additionalProperties": false
    });
    if !partial {
        schema["required"] = json!(["name", "trigger", "steps"]);
    }
    schema
}

fn trigger_schema() -> Value {
    json!({
        "type": "object",
        "description": "`manual` (a key runs it), `event` (each new event of that type, except those the automation's own runs caused; a chain of automations starting one another stops after 5), or `schedule` (a cron expression, minute hour day month weekday, in `time_zone`).",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "enum": ["manual", "event", "schedule"]},
            "event": {"type": "string", "enum": event_types::automation_triggers().collect::<Vec<_>>()},
            "cron": {"type": "string", "examples": ["0 9 * * MON"]},
            "time_zone": space_http::fields::time_zone_schema()
        },
        "additionalProperties": false
    })
}

/// An automation as the owner and keys see it.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "enabled", "trigger", "steps", "run_as_key_id", "next_run_at", "created_at", "updated_at", "version"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "enabled": {"type": "boolean"},
            "trigger": trigger_schema(),
            "steps": {"type": "array", "items": {"type": "object"}},
            "run_as_key_id": {"type": ["string", "null"]},
            "next_run_at": {"type": ["string", "null"], "format": "date-time", "description": "When an enabled schedule fires next."},
            "webhook_secret": {"type": "string", "description": "The secret `call_webhook` steps sign with (Standard Webhooks): in the answer that created it only."},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(body: Value) -> FieldErrors {
        Definition::parse(&body).err().unwrap_or_default()
    }

    #[test]
    fn a_definition_names_every_bad_field() {
        let bad = errors(json!({
            "name": "",
            "trigger": {"type": "event", "event": "contact.exploded"},
            "steps": [{"type": "wait", "seconds": 0}, {"type": "teleport"}, {"type": "call_webhook", "url": "ftp://x"}]
        }));
        for field in [
            "name",
            "trigger.event",
            "steps[0].seconds",
            "steps[1].type",
            "steps[2].url",
        ] {
            assert!(bad.contains_key(field), "{field} in {bad:?}");
        }
        assert!(bad["trigger.event"][0].contains("contact.created"));
        assert!(errors(json!({"name": "x", "trigger": {"type": "manual"}, "steps": []})).contains_key("steps"));
        let keyless = json!({"name": "x", "trigger": {"type": "event", "event": "contact.created"}, "steps": [{"type": "wait", "seconds": 5}]});
        assert!(errors(keyless).contains_key("run_as_key_id"));
    }

    #[test]
    fn a_good_definition_parses() {
        let parsed = Definition::parse(&json!({
            "name": "Welcome",
            "trigger": {"type": "schedule", "cron": "0 9 * * MON", "time_zone": "Europe/Berlin"},
            "run_as_key_id": "key_01jd0000000000000000000000",
            "steps": [{"type": "add_tag", "tag": "New"}, {"type": "send_mail", "from_sender_id": "con_1", "to": "a@example.com", "subject": "Hi", "text": "Hello"}]
        }))
        .expect("valid");
        assert_eq!(parsed.steps[0]["tag"], "New");
        assert_eq!(parsed.steps[1]["to"], json!(["a@example.com"]));
        assert!(parsed.enabled);
    }
}
