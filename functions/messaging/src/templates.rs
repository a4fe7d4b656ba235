//! Message templates: what a business may send outside a channel's free-form window. A
//! template is written as a `draft`, submitted (`pending`), and reviewed on the worker by
//! the provider's rules (`approved`, or `rejected` with a reason). An approved template is
//! immutable: an edit makes a new draft beside it, so what was approved stays what sends.

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use space_auth::{Domain, Principal};
use space_http::events::update_event_write;
use space_http::fields::{CustomKind, Field, FieldKind, WriteMode, body_schema, format_datetime, validate};
use space_http::keys;
use space_http::operation::{Call, Reply};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, Engine, FieldErrors};
use space_store::{Condition, Item, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::REVIEW;

pub const COLLECTION: &str = "messaging_templates";
pub const STATUSES: &[&str] = &["draft", "pending", "approved", "rejected"];
pub const CATEGORIES: &[&str] = &["marketing", "utility", "authentication"];
pub const MAX_BODY: usize = 1_024;
pub const MAX_HEADER: usize = 60;
pub const MAX_BUTTONS: usize = 10;
/// What a replace leaves of a stored template: its bookkeeping and where it came from.
const KEPT: &[&str] = &["id", "created_at", "updated_at", "version", "status", "previous_id"];
/// Words of fixed text the review wants per parameter: a template that is mostly blanks is
/// a free-form message in disguise.
const WORDS_PER_PARAMETER: usize = 3;

const NAME: FieldKind = FieldKind::Custom(CustomKind {
    schema: || json!({"type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[a-z0-9_]+$"}),
    check: |value| {
        let text = value.as_str().ok_or("must be a string")?;
        let valid = !text.is_empty()
            && text.len() <= 512
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(json!(text))
        } else {
            Err("must be lowercase letters, digits and underscores, like order_update".into())
        }
    },
});

/// The three kinds of button, each an object of exactly its fields.
const QUICK_REPLY: &[Field] = &[
    Field::new("type", FieldKind::Enum(&["quick_reply"]), "A reply the customer taps.").required(),
    Field::new("text", FieldKind::Text { max: 25 }, "The button's label.").required(),
];
const URL_BUTTON: &[Field] = &[
    Field::new("type", FieldKind::Enum(&["url"]), "Opens a web page.").required(),
    Field::new("text", FieldKind::Text { max: 25 }, "The button's label.").required(),
    Field::new("url", FieldKind::Url, "The page it opens.").required(),
];
const PHONE_BUTTON: &[Field] = &[
    Field::new("type", FieldKind::Enum(&["phone_number"]), "Calls a number.").required(),
    Field::new("text", FieldKind::Text { max: 25 }, "The button's label.").required(),
    Field::new("phone_number", FieldKind::Phone, "The number it calls.").required(),
];
const BUTTON_KINDS: [(&str, &[Field]); 3] = [
    ("quick_reply", QUICK_REPLY),
    ("url", URL_BUTTON),
    ("phone_number", PHONE_BUTTON),
];

const BUTTONS: FieldKind = FieldKind::Custom(CustomKind {
    schema: || {
        let kinds: Vec<Value> = BUTTON_KINDS
            .iter()
            .map(|(_, fields)| body_schema(fields, WriteMode::Create))
            .collect();
        json!({"type": "array", "maxItems": MAX_BUTTONS, "items": {"oneOf": kinds}})
    },
    check: check_buttons,
});

/// Each button checked as the object of its type, with the fields' own checks.
fn check_buttons(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be a list of buttons")?;
    if list.len() > MAX_BUTTONS {
        return Err(format!("must hold at most {MAX_BUTTONS} buttons"));
    }
    let mut checked = Vec::with_capacity(list.len());
    for (index, button) in list.iter().enumerate() {
        let kind = button.get("type").and_then(Value::as_str).unwrap_or_default();
        let Some((_, fields)) = BUTTON_KINDS.iter().find(|(name, _)| *name == kind) else {
            return Err(format!("button {index}: type is quick_reply, url or phone_number"));
        };
        match validate(fields, button, WriteMode::Create) {
            Ok(valid) => checked.push(Value::Object(valid.set)),
            Err(errors) => {
                let problems: Vec<String> = errors
                    .into_iter()
                    .map(|(field, messages)| format!("{field} {}", messages.join("; ")))
                    .collect();
                return Err(format!("button {index} ({kind}): {}", problems.join(", ")));
            }
        }
    }
    Ok(Value::Array(checked))
}

/// The template resource.
pub fn templates() -> Resource {
    Resource {
        domain: Domain::Messaging,
        name: "messaging_templates",
        collection: COLLECTION,
        path: "/templates",
        item_param: "id",
        singular: "template",
        plural: "templates",
        event_prefix: "template",
        id_prefix: "tpl",
        parent: None,
        fields: vec![
            Field::new("name", NAME, "Lowercase letters, digits and underscores.").required(),
            Field::new(
                "language",
                space_connections::LANGUAGE,
                "The language of its text (BCP 47).",
            )
            .required(),
            Field::new(
                "category",
                FieldKind::Enum(CATEGORIES),
                "What it is for; providers price and review each differently.",
            )
            .required(),
            Field::new("header", FieldKind::Text { max: MAX_HEADER }, "A title above the body."),
            Field::new(
                "body",
                FieldKind::LongText { max: MAX_BODY },
                "The text, with parameters {{1}}…{{n}} numbered in order without gaps.",
            )
            .required(),
            Field::new("footer", FieldKind::Text { max: MAX_HEADER }, "A line below the body."),
            Field::new("buttons", BUTTONS, "Up to 10 buttons."),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "category",
                field: "category",
                kind: FieldKind::Enum(CATEGORIES),
            },
            Filter::Equals {
                param: "language",
                field: "language",
                kind: space_connections::LANGUAGE,
            },
        ],
        rules: Some(rules),
    }
}

/// The parameters `{{n}}` of a body, in order of appearance; `None` when a `{{` opens
/// something else.
fn placeholders(body: &str) -> Option<Vec<usize>> {
    let mut found = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        found.push(after[..end].trim().parse::<usize>().ok()?);
        rest = &after[end + 2..];
    }
    Some(found)
}

/// The number of parameters a body takes, or why its parameters are wrong.
pub fn parameter_count(body: &str) -> Result<usize, String> {
    let found = placeholders(body).ok_or("parameters are written {{1}}, {{2}}, … (a number between double braces)")?;
    for (position, number) in found.iter().enumerate() {
        if *number != position + 1 {
            return Err(format!(
                "parameters must be numbered {{{{1}}}} to {{{{n}}}} in order without gaps; found {{{{{number}}}}} where {{{{{}}}}} belongs",
                position + 1
            ));
        }
    }
    Ok(found.len())
}

/// A new template is a draft; its parameters are counted from its body.
fn rules(template: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let body = template.get("body").and_then(Value::as_str).unwrap_or_default();
    let count = parameter_count(body).map_err(|why| FieldErrors::from([("body".to_owned(), vec![why])]))?;
    template.insert("parameter_count".into(), json!(count));
    template.entry("status").or_insert_with(|| json!("draft"));
    Ok(())
}

pub fn schema() -> Value {
    let mut schema = templates().item_schema();
    let properties = &mut schema["properties"];
    properties["status"] = json!({"type": "string", "enum": STATUSES, "description": "`draft` → POST …/submit → `pending` → `approved` or `rejected`."});
    properties["parameter_count"] = json!({"type": "integer", "minimum": 0});
    properties["rejection_reason"] = json!({"type": "string"});
    properties["previous_id"] = json!({"type": "string", "description": "The approved template this draft edits."});
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend([json!("status"), json!("parameter_count")]);
    }
    schema
}

fn status(item: &Item) -> &str {
    item.body.get("status").and_then(Value::as_str).unwrap_or("draft")
}

/// PATCH and PUT: a draft or rejected template is edited (and is a draft again); a pending
/// one waits for its review (409); an approved one stays as it is and the edit becomes a
/// new draft (201), naming it in `previous_id`.
pub async fn write(call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
    let resource = templates();
    let validated = validate(&resource.fields, &call.body, mode).map_err(ApiError::validation)?;
    let id = call.path_param("id")?.to_owned();
    let current = resource.load(call, &id).await?;
    match status(&current) {
        "pending" => Err(ApiError::Conflict(
            "The template is under review: edit it once it is approved or rejected.".into(),
        )),
        "approved" => {
            let mut body = current.body.clone();
            for field in [
                "id",
                "created_at",
                "updated_at",
                "status",
                "parameter_count",
                "rejection_reason",
            ] {
                body.remove(field);
            }
            validated.apply(&mut body, mode, &[]);
            let (mut item, _) = resource
                .prepare_create(call, &Value::Object(body))
                .map_err(ApiError::validation)?;
            item.body.insert("previous_id".into(), json!(current.sk));
            let writes = vec![
                Write::put(item.clone(), Condition::NotExists),
                resource.event(call, "created", &item)?,
            ];
            call.engine.store().transact(writes).await?;
            Ok(Reply::created(Resource::render(&item)).with_etag(item.version))
        }
        _ => {
            let item = resource
                .modify(call, &id, |body| {
                    validated.apply(body, mode, KEPT);
                    body.insert("status".into(), json!("draft"));
                    body.remove("rejection_reason");
                    Ok(())
                })
                .await?;
            Ok(Reply::ok(Resource::render(&item)).with_etag(item.version))
        }
    }
}

/// `POST /templates/{id}/submit`: a draft (or rejected) template goes for review.
pub async fn submit(call: Call) -> Result<Reply, ApiError> {
    let resource = templates();
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    let now = call.engine.now();
    let current = resource.load(&call, &id).await?;
    call.check_if_match(current.version)?;
    if !matches!(status(&current), "draft" | "rejected") {
        return Err(ApiError::Conflict(format!(
            "The template is {}: only a draft or rejected template is submitted.",
            status(&current)
        )));
    }
    let mut next = current.clone();
    next.body.insert("status".into(), json!("pending"));
    next.body.remove("rejection_reason");
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next.version += 1;
    let writes = vec![
        Write::put(next.clone(), Condition::Version(current.version)),
        update_event_write(
            &space,
            "template.submitted",
            &id,
            &Resource::render(&current),
            Resource::render(&next),
            &call.principal,
            now,
        ),
        NewJob::new(
            REVIEW,
            json!({"space_id": space, "template_id": id, "version": next.version}),
            now,
        )
        .write(),
    ];
    call.engine.store().transact(writes).await?;
    Ok(Reply::ok(Resource::render(&next)).with_etag(next.version))
}

/// Why the provider would refuse a template, if it would (the sandbox applies these; a
/// real provider answers for itself).
pub fn review(template: &Map<String, Value>) -> Option<String> {
    let body = template.get("body").and_then(Value::as_str).unwrap_or_default().trim();
    let count = parameter_count(body).unwrap_or(0);
    if body.starts_with("{{") || body.ends_with("}}") {
        return Some("The body may not start or end with a parameter.".into());
    }
    let words = placeholders_removed(body).split_whitespace().count();
    if count > 0 && words < WORDS_PER_PARAMETER * count {
        return Some(format!(
            "The body has too many parameters for its length: at least {} words of fixed text are needed for {count}.",
            WORDS_PER_PARAMETER * count
        ));
    }
    None
}

fn placeholders_removed(body: &str) -> String {
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        text.push_str(&rest[..start]);
        text.push(' ');
        match rest[start..].find("}}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => return text,
        }
    }
    text.push_str(rest);
    text
}

/// Reviews a pending template, once.
pub struct Review;

#[async_trait]
impl Handler for Review {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let text = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, id) = (text("space_id")?, text("template_id")?);
        let partition = keys::collection_partition(space, COLLECTION);
        let Some(current) = engine.store().get(&partition, id).await? else {
            return Ok(Outcome::Done);
        };
        let submitted = job.payload.get("version").and_then(Value::as_u64);
        if status(&current) != "pending" || submitted != Some(current.version) {
            return Ok(Outcome::Done);
        }
        let now = engine.now();
        let mut next = current.clone();
        let kind = match review(&current.body) {
            None => {
                next.body.insert("status".into(), json!("approved"));
                "template.approved"
            }
            Some(reason) => {
                next.body.insert("status".into(), json!("rejected"));
                next.body.insert("rejection_reason".into(), json!(reason));
                "template.rejected"
            }
        };
        next.body.insert("updated_at".into(), json!(format_datetime(now)));
        next.version += 1;
        let event = update_event_write(
            space,
            kind,
            id,
            &Resource::render(&current),
            Resource::render(&next),
            &Principal::system(),
            now,
        );
        match engine
            .store()
            .transact(vec![Write::put(next, Condition::Version(current.version)), event])
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => Ok(Outcome::Done),
            Err(error) => Err(error.into()),
        }
    }
}

/// An approved template of the Space, rendered with `parameters`: its text, or why not.
/// `connection` is the channel it goes out on: a channel that lists its `languages` sends
/// templates in those only.
pub async fn render(
    engine: &Engine,
    space: &str,
    connection: &Item,
    id: &str,
    parameters: &[String],
) -> Result<(Item, String), ApiError> {
    let partition = keys::collection_partition(space, COLLECTION);
    let template =
        engine.store().get(&partition, id).await?.ok_or_else(|| {
            ApiError::invalid_field("template_id", format!("there is no template `{id}` in this Space"))
        })?;
    if status(&template) != "approved" {
        return Err(ApiError::Refused {
            code: "TEMPLATE_NOT_APPROVED",
            message: format!(
                "Template `{id}` is {}: only an approved template is sent (POST /templates/{{id}}/submit).",
                status(&template)
            ),
        });
    }
    let language = template
        .body
        .get("language")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !space_connections::sends_language(connection, language) {
        return Err(ApiError::invalid_field(
            "template_id",
            format!(
                "template `{id}` is in `{language}`; this channel sends templates in {} only (its connection's `languages`)",
                space_connections::languages(connection).join(", ")
            ),
        ));
    }
    let body = template.body.get("body").and_then(Value::as_str).unwrap_or_default();
    let count = parameter_count(body).unwrap_or(0);
    if parameters.len() != count {
        return Err(ApiError::invalid_field(
            "parameters",
            format!(
                "the template takes exactly {count} parameters; {} were sent",
                parameters.len()
            ),
        ));
    }
    let mut text = body.to_owned();
    for (n, value) in parameters.iter().enumerate().rev() {
        text = text.replace(&format!("{{{{{}}}}}", n + 1), value);
    }
    Ok((template, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_button_is_exactly_the_object_of_its_type() {
        let checked = check_buttons(&json!([
            {"type": "quick_reply", "text": "Yes"},
            {"type": "url", "text": "Track", "url": "https://example.com/track"},
            {"type": "phone_number", "text": "Call", "phone_number": "+1 (415) 555-2671"}
        ]))
        .expect("valid buttons");
        assert_eq!(checked[2]["phone_number"], "+14155552671", "stored as E.164");
        for refused in [
            json!([{"type": "url", "text": "Track"}]),
            json!([{"type": "quick_reply", "text": "Yes", "url": "https://example.com"}]),
            json!([{"type": "url", "text": "Track", "url": format!("https://example.com/{}", "a".repeat(space_http::fields::MAX_URL_CHARS))}]),
            json!([{"type": "email", "text": "Mail"}]),
        ] {
            assert!(check_buttons(&refused).is_err(), "{refused}");
        }
        let schema = (match BUTTONS {
            FieldKind::Custom(kind) => kind.schema,
            _ => unreachable!("buttons are a custom kind"),
        })();
        assert_eq!(schema["items"]["oneOf"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn parameters_are_numbered_in_order_without_gaps() {
        assert_eq!(parameter_count("Hi {{1}}, your order {{2}} shipped."), Ok(2));
        assert_eq!(parameter_count("No parameters."), Ok(0));
        assert!(parameter_count("Hi {{2}}").is_err());
        assert!(parameter_count("Hi {{1}} and {{3}}").is_err());
        assert!(parameter_count("Hi {{name}}").is_err());
    }

    #[test]
    fn the_review_refuses_edges_and_blanks() {
        let body = |text: &str| {
            let mut map = Map::new();
            map.insert("body".into(), json!(text));
            map
        };
        assert_eq!(review(&body("Hi {{1}}, your order has shipped today.")), None);
        assert!(review(&body("{{1}} is your code, do not share it.")).is_some());
        assert!(review(&body("Your order has shipped, {{1}}")).is_some());
        assert!(review(&body("Hi {{1}} {{2}} now")).is_some());
    }
}
