//! `POST /f/{form_id}`: a visitor submits a form without a key. The pointer written with
//! the form names its Space; the values are checked against the form's fields (or, from
//! a published page, the fields the page shows); the submission, its event and the
//! contact it creates or completes are one transaction.
//!
//! A browser (form-encoded post) gets small HTML pages back; an API client (JSON) gets the
//! usual JSON and error envelope. Either answer is the same whether the email was known:
//! a visitor learns nothing about the Space's contacts and changes none of their values.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_http::fields::format_datetime;
use space_http::ids::{has_shape, new_id};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, RawBody, Reply, handler};
use space_http::rest::{essence, is_json, parse_json};
use space_http::{ApiError, Operation};
use space_store::{Condition, Item, StoreError, Write};

use crate::definition::{Source, check_submission, form_fields};
use crate::html::{html_reply, missing_page, problems_page, success_message, thanks_page};
use crate::{CAPTURED_VERSION, POINTER_KIND, forms, submissions};

/// Requests per minute and client address on the public routes (page views and posts
/// share the engine's visitor counter, so this is also what a page allows).
pub const PUBLIC_PER_MINUTE: u32 = 60;
/// A submission's body, whole.
const MAX_SUBMISSION_BYTES: usize = 64 * 1024;
/// Attempts when a concurrent submission claims the same new contact first.
const ATTEMPTS: usize = 4;
/// Contact fields a form can fill, by the form field that feeds them.
const CONTACT_FIELDS_BY_NAME: &[(&str, &str)] = &[
    ("name", "name"),
    ("full_name", "name"),
    ("company", "company"),
    ("job_title", "job_title"),
];

pub fn operation() -> Operation {
    Operation::new(
        "forms_submit",
        Method::POST,
        "/f/{form_id}",
        Access::Public { per_minute: PUBLIC_PER_MINUTE },
        Effect::Create,
        "Submit a form without a key (JSON or form-encoded); creates the contact with the submitted email, or fills its empty fields (never its email or phone)",
        handler(|call| async move { submit(call).await }),
    )
    .with_params(vec![
        Param::path("form_id", "The form's id."),
        Param::query(
            "page",
            json!({"type": "string"}),
            "The published page the form was shown on (its rendered form posts here with it): the values are checked against the form as that page shows it.",
        ),
    ])
    .with_body(|| json!({
        "type": "object",
        "description": "The values by field name. `application/x-www-form-urlencoded` (what a browser sends) is accepted too and answered with HTML.",
        "additionalProperties": true
    }))
    .answers(StatusCode::CREATED, receipt_schema)
    .with_raw_body(Some(MAX_SUBMISSION_BYTES))
}

/// What a visitor gets back: the values as stored and the form's message. No id of the
/// submission or the contact, since an id's time part would tell whether the contact
/// existed before.
fn receipt_schema() -> Value {
    json!({
        "type": "object",
        "required": ["form_id", "data", "received_at", "message"],
        "properties": {
            "form_id": {"type": "string"},
            "data": {"type": "object", "description": "The submitted values by field name, normalized."},
            "received_at": {"type": "string", "format": "date-time"},
            "message": {"type": "string", "description": "The form's success message."}
        },
        "additionalProperties": false
    })
}

fn receipt(form: &Shown, submission: &Item) -> Value {
    let field = |name: &str| submission.body.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "form_id": form.id,
        "data": field("data"),
        "received_at": field("created_at"),
        "message": success_message(&form.body),
    })
}

/// The form a submission is checked against: the current form, or the copy a published
/// page captured when the post names that page.
struct Shown {
    id: String,
    version: u64,
    page_id: Option<String>,
    body: Map<String, Value>,
}

async fn submit(call: Call) -> Result<Reply, ApiError> {
    let raw = call.raw.clone().unwrap_or(RawBody {
        content_type: String::new(),
        bytes: Default::default(),
    });
    let browser = essence(&raw.content_type) == "application/x-www-form-urlencoded";
    let form_id = call.path_param("form_id")?.to_owned();
    let page = call.query_param("page").map(str::to_owned);
    let (call, form) = match find(call, &form_id, page.as_deref()).await {
        Ok(found) => found,
        Err(ApiError::NotFound(_)) if browser => return Ok(html_reply(StatusCode::NOT_FOUND, missing_page())),
        Err(error) => return Err(error),
    };
    let (values, source) = if browser {
        (parse_form_encoded(&raw.bytes), Source::Browser)
    } else if raw.bytes.is_empty() || is_json(&raw.content_type) {
        match parse_json(&raw)? {
            Value::Object(values) => (values, Source::Json),
            Value::Null => (Map::new(), Source::Json),
            _ => {
                return Err(ApiError::invalid_field(
                    "body",
                    "must be a JSON object of values by field name",
                ));
            }
        }
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Send the values as JSON (`application/json`) or as a browser form (`application/x-www-form-urlencoded`); got `{}`.",
            raw.content_type
        )));
    };
    let data = match check_submission(&form_fields(&form.body), &values, source) {
        Ok(data) => data,
        Err(errors) if browser => {
            return Ok(html_reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                problems_page(&form.body, &errors),
            ));
        }
        Err(errors) => return Err(ApiError::validation(errors)),
    };
    let submission = record(&call, &form, data).await?;
    if browser {
        Ok(html_reply(StatusCode::OK, thanks_page(&form.body)))
    } else {
        Ok(Reply::created(receipt(&form, &submission)))
    }
}

/// The form behind a public id, as the visitor was shown it, and a call acting in its
/// Space. A post from a page (`?page=`) is checked against the copy that page captured
/// when it was published, so editing a form changes nothing on a live page until it is
/// published again; the copy goes when the page is unpublished or republished without
/// the form, and the form's own deletion takes every post down.
async fn find(call: Call, form_id: &str, page: Option<&str>) -> Result<(Call, Shown), ApiError> {
    let missing = || ApiError::NotFound(format!("No form with id `{form_id}`."));
    if !has_shape(form_id, "form") || page.is_some_and(|page| !has_shape(page, "page")) {
        return Err(missing());
    }
    let key = keys::public_pointer(POINTER_KIND, form_id);
    let pointer = call.engine.store().get(&key.pk, &key.sk).await?.ok_or_else(missing)?;
    let space = pointer
        .body
        .get("space_id")
        .and_then(Value::as_str)
        .ok_or_else(missing)?;
    let mut call = call;
    space_http::public::enter_space(&mut call, space, missing).await?;
    let store = call.engine.store();
    let form = store
        .get(&forms().partition(&call)?, form_id)
        .await?
        .ok_or_else(missing)?;
    let shown = match page {
        None => Shown {
            id: form.sk,
            version: form.version,
            page_id: None,
            body: form.body,
        },
        Some(page) => {
            let key = keys::page_form(space, page, form_id);
            let copy = store.get(&key.pk, &key.sk).await?.ok_or_else(|| {
                ApiError::NotFound(format!(
                    "The page `{page}` does not show the form `{form_id}` any more; reload the page."
                ))
            })?;
            let version =
                copy.body.get(CAPTURED_VERSION).and_then(Value::as_u64).ok_or_else(|| {
                    ApiError::Internal(format!("page {page}'s copy of form {form_id} has no version"))
                })?;
            Shown {
                id: form.sk,
                version,
                page_id: Some(page.to_owned()),
                body: copy.body,
            }
        }
    };
    Ok((call, shown))
}

/// `a=1&b=2` to a map; a repeated name keeps its last value.
fn parse_form_encoded(bytes: &[u8]) -> Map<String, Value> {
    form_urlencoded::parse(bytes)
        .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
        .collect()
}

/// Writes the submission with its event and the contact change, retrying when another
/// submission for the same new email got there first.
async fn record(call: &Call, form: &Shown, data: Map<String, Value>) -> Result<Item, ApiError> {
    let space = call.space_id()?;
    let contact = contact_values(form, &data);
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let plan = match &contact {
            Some(values) => Some(plan_contact(call, values.clone()).await?),
            None => None,
        };
        let id = new_id("sub");
        let now = format_datetime(call.engine.now());
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.insert("form_id".into(), json!(form.id));
        body.insert("form_version".into(), json!(form.version));
        if let Some(page) = &form.page_id {
            body.insert("page_id".into(), json!(page));
        }
        body.insert("data".into(), Value::Object(data.clone()));
        if let Some(plan) = &plan {
            body.insert("contact_id".into(), json!(plan.contact_id));
        }
        body.insert("created_at".into(), json!(now));
        body.insert("updated_at".into(), json!(now));
        let submission = Item::new(
            keys::child_partition(space, submissions().collection, &form.id),
            id,
            body,
        );
        let mut writes = vec![
            Write::put(submission.clone(), Condition::NotExists),
            submissions().event(call, "created", &submission)?,
        ];
        if let Some(plan) = plan {
            writes.extend(plan.writes);
        }
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(submission),
            Err(error @ (StoreError::TransactionConflict { .. } | StoreError::Contention)) => last_error = Some(error),
            Err(error) => return Err(error.into()),
        }
    }
    Err(last_error
        .map(ApiError::from)
        .unwrap_or_else(|| ApiError::Conflict("Retry the submission.".into())))
}

/// The contact fields a submission carries: the first email field's value, the first
/// phone field's, and fields named like contact fields. `None` without an email.
fn contact_values(form: &Shown, data: &Map<String, Value>) -> Option<Map<String, Value>> {
    let fields = form_fields(&form.body);
    let first_of = |kind: &str| {
        fields
            .iter()
            .find(|f| f.kind == kind && data.contains_key(&f.name))
            .and_then(|f| data.get(&f.name))
    };
    let email = first_of("email")?.clone();
    let contact_fields = contacts::contacts().fields;
    let mut values = Map::new();
    values.insert("email".into(), email);
    if let Some(phone) = first_of("phone") {
        values.insert("phone".into(), phone.clone());
    }
    for (field_name, contact_field) in CONTACT_FIELDS_BY_NAME {
        if values.contains_key(*contact_field) {
            continue;
        }
        let value = fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(field_name) && matches!(f.kind.as_str(), "text" | "textarea"))
            .and_then(|f| data.get(&f.name));
        if let Some(value) = value {
            values.insert((*contact_field).into(), value.clone());
        }
    }
    // Only what the contact's own fields accept (a 1000-character name is a form's
    // business, not a contact's).
    let checked: Map<String, Value> = values
        .into_iter()
        .filter_map(|(name, value)| {
            let field = contact_fields.iter().find(|f| f.name == name)?;
            field.check(&value).ok().map(|value| (name, value))
        })
        .collect();
    checked.contains_key("email").then_some(checked)
}

/// What a known contact never takes from a visitor, even when it has none: an address the
/// Space reaches it by or recognises it by (an inbound text is filed under the contact with
/// its phone, and its STOP opts that contact out). The submission keeps it.
const IDENTIFYING: &[&str] = &["email", "phone"];

/// The writes that create the contact with `values["email"]`, or complete it.
struct ContactPlan {
    contact_id: String,
    writes: Vec<Write>,
}

/// Finds the contact with the email (the contacts' email index, never a scan), and plans
/// its creation, or for a known contact the filling of its empty fields: whoever knows an
/// email may add details to that contact, never overwrite it nor give it an address. The index's claim on the email makes
/// two concurrent submissions for one new email create one contact: the second
/// transaction fails on it, and its retry finds the first one's contact.
async fn plan_contact(call: &Call, values: Map<String, Value>) -> Result<ContactPlan, ApiError> {
    let resource = contacts::contacts();
    let email = values
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let partition = resource.partition(call)?;
    let existing = match resource.find_unique(call, "email", &email).await? {
        Some(id) => call.engine.store().get(&partition, &id).await?,
        None => None,
    };
    match existing {
        Some(contact) => {
            let mut writes = Vec::new();
            let mut next = contact.clone();
            let mut changed = false;
            for (name, value) in &values {
                if !IDENTIFYING.contains(&name.as_str()) && is_empty(next.body.get(name)) {
                    next.body.insert(name.clone(), value.clone());
                    changed = true;
                }
            }
            if changed {
                next.version = contact.version + 1;
                next.body
                    .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
                writes.push(Write::put(next.clone(), Condition::Version(contact.version)));
                writes.push(resource.update_event(call, &contact, &next)?);
                writes.extend(resource.index_writes(call, Some(&contact), Some(&next))?);
            }
            Ok(ContactPlan {
                contact_id: contact.sk,
                writes,
            })
        }
        None => {
            let (item, writes) = resource
                .prepare_create(call, &Value::Object(values))
                .map_err(ApiError::validation)?;
            Ok(ContactPlan {
                contact_id: item.sk,
                writes,
            })
        }
    }
}

/// Whether a contact's field holds nothing a submission would overwrite.
fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.trim().is_empty(),
        Some(_) => false,
    }
}
