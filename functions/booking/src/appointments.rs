//! Appointments: booking (from the API or a public page), cancelling and rescheduling.
//! Each is one transaction holding the appointment, its event and its slot claims, so the
//! time an appointment holds is exactly the slices it has claimed.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{Field, FieldKind, WriteMode, body_schema, format_datetime, parse_datetime, validate};
use space_http::ids::new_id;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, Operation, Resource, Schema};
use space_store::{Condition, Item, StoreError, Write};

use crate::availability::{Weekly, parse_zone};
use crate::limits::PageBooking;
use crate::slots::{self, claim, release};
use crate::{APPOINTMENT_PREFIX, appointment_types, appointments, booking_fields};

/// Attempts at a write that lost a race it can retry (a concurrent edit, store contention).
const ATTEMPTS: usize = 3;

/// An appointment type's terms, as the booking rules need them.
pub struct Terms {
    pub id: String,
    pub name: String,
    pub duration: TimeDelta,
    pub before: TimeDelta,
    pub after: TimeDelta,
    pub step: TimeDelta,
    pub zone: Tz,
    pub week: Weekly,
    pub version: u64,
    pub pk: String,
}

impl Terms {
    pub fn of(item: &Item) -> Result<Terms, ApiError> {
        let body = &item.body;
        let minutes = |field: &str| TimeDelta::minutes(body.get(field).and_then(Value::as_i64).unwrap_or(0));
        let corrupt = |what: &str| ApiError::Internal(format!("appointment type {} has an unreadable {what}", item.sk));
        let zone = body
            .get("time_zone")
            .and_then(Value::as_str)
            .map_or(Some(Tz::UTC), parse_zone)
            .ok_or_else(|| corrupt("time_zone"))?;
        let week = match body.get("availability") {
            Some(value) => Weekly::parse(value).map_err(|_| corrupt("availability"))?,
            None => Weekly::parse(&crate::default_availability()).map_err(|_| corrupt("availability"))?,
        };
        let duration = minutes("duration_minutes");
        if duration <= TimeDelta::zero() {
            return Err(corrupt("duration_minutes"));
        }
        let rounded = TimeDelta::minutes((duration.num_minutes() + 4) / 5 * 5);
        let step = match minutes("slot_interval_minutes") {
            step if step > TimeDelta::zero() => step,
            _ => rounded,
        };
        Ok(Terms {
            id: item.sk.clone(),
            name: body.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            duration,
            before: minutes("buffer_before_minutes"),
            after: minutes("buffer_after_minutes"),
            step,
            zone,
            week,
            version: item.version,
            pk: item.pk.clone(),
        })
    }

    /// Refuses a start the type does not offer: off the 5-minute grid, past, or outside
    /// availability. Every refusal names `start`.
    pub fn check_start(&self, start: DateTime<Utc>, duration: TimeDelta, now: DateTime<Utc>) -> Result<(), ApiError> {
        if !slots::on_grid(start) {
            return Err(ApiError::invalid_field(
                "start",
                "must be on a 5-minute mark, like 10:00 or 10:05, with no seconds",
            ));
        }
        if start <= now {
            return Err(ApiError::invalid_field("start", "must be in the future"));
        }
        if !self.week.contains(self.zone, start, start + duration) {
            return Err(ApiError::invalid_field(
                "start",
                format!(
                    "is outside the availability of `{}` ({}, time zone {}); list free times at GET /b/{{booking_page_id}}/slots",
                    self.name,
                    self.week.describe(),
                    self.zone.name()
                ),
            ));
        }
        Ok(())
    }
}

/// The span an appointment holds, buffers included.
fn blocked(
    start: DateTime<Utc>,
    duration: TimeDelta,
    before: TimeDelta,
    after: TimeDelta,
) -> (DateTime<Utc>, DateTime<Utc>) {
    (start - before, start + duration + after)
}

/// The slices an appointment item holds (none once cancelled).
fn held_slices(item: &Item) -> Result<Vec<DateTime<Utc>>, ApiError> {
    if item.body.get("status").and_then(Value::as_str) != Some("confirmed") {
        return Ok(Vec::new());
    }
    let instant = |field: &str| {
        item.body
            .get(field)
            .and_then(Value::as_str)
            .and_then(parse_datetime)
            .ok_or_else(|| ApiError::Internal(format!("appointment {} has no {field}", item.sk)))
    };
    Ok(slots::slices(instant("blocked_from")?, instant("blocked_until")?))
}

fn taken_message(start: DateTime<Utc>) -> ApiError {
    ApiError::Conflict(format!(
        "{} is no longer free: it overlaps another appointment or the buffers around it. Pick another time.",
        format_datetime(start)
    ))
}

/// Where a booking comes from.
pub enum Source {
    Api,
    /// A visitor on a public page, held to the page's limits.
    BookingPage(PageBooking),
}

/// Books `start` on the appointment type `type_id` for `contact`: checks availability
/// (and a page's limits), then writes the appointment, its event, its slot claims (and the
/// visitor's holdings on the page) in one transaction. A slot someone else holds is 409.
pub async fn book(
    call: &Call,
    type_id: &str,
    start: DateTime<Utc>,
    contact: Value,
    notes: Option<Value>,
    source: Source,
) -> Result<Item, ApiError> {
    let space = call.space_id()?.to_owned();
    let email = contact
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut spent = false;
    for attempt in 0..ATTEMPTS {
        let type_item = match appointment_types().load(call, type_id).await {
            Ok(item) => item,
            Err(ApiError::NotFound(_)) => {
                return Err(ApiError::invalid_field(
                    "appointment_type_id",
                    format!("no appointment type `{type_id}` in this Space"),
                ));
            }
            Err(error) => return Err(error),
        };
        let terms = Terms::of(&type_item)?;
        let now = call.engine.now();
        terms.check_start(start, terms.duration, now)?;
        // The address's own limit first: a visitor over it spends none of the page's hour.
        let holdings = match &source {
            Source::BookingPage(page) => {
                let holdings = page.holdings(call, &email, now).await?;
                holdings.check(&page.limits, &email)?;
                if !spent {
                    page.spend_hour(call).await?;
                    spent = true;
                }
                Some(holdings)
            }
            Source::Api => None,
        };
        let (from, until) = blocked(start, terms.duration, terms.before, terms.after);
        let id = new_id(APPOINTMENT_PREFIX);
        let stamp = format_datetime(now);
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.insert("appointment_type_id".into(), json!(terms.id));
        body.insert("appointment_type_name".into(), json!(terms.name));
        body.insert("start".into(), json!(format_datetime(start)));
        body.insert("end".into(), json!(format_datetime(start + terms.duration)));
        body.insert("duration_minutes".into(), json!(terms.duration.num_minutes()));
        body.insert("buffer_before_minutes".into(), json!(terms.before.num_minutes()));
        body.insert("buffer_after_minutes".into(), json!(terms.after.num_minutes()));
        body.insert("blocked_from".into(), json!(format_datetime(from)));
        body.insert("blocked_until".into(), json!(format_datetime(until)));
        body.insert("time_zone".into(), json!(terms.zone.name()));
        body.insert("contact".into(), contact.clone());
        if let Some(notes) = &notes {
            body.insert("notes".into(), notes.clone());
        }
        body.insert("status".into(), json!("confirmed"));
        match &source {
            Source::Api => {
                body.insert("source".into(), json!("api"));
            }
            Source::BookingPage(page) => {
                body.insert("source".into(), json!("booking_page"));
                body.insert("booking_page_id".into(), json!(page.page_id));
            }
        }
        body.insert("created_at".into(), json!(stamp));
        body.insert("updated_at".into(), json!(stamp));
        let item = Item::new(appointments().partition(call)?, id.clone(), body);
        // The type as read: availability checked against a type that changed meanwhile is
        // checked again.
        let mut writes = vec![
            Write::check(terms.pk.clone(), terms.id.clone(), Condition::Version(terms.version)),
            Write::put(item.clone(), Condition::NotExists),
            appointments().event(call, "created", &item)?,
        ];
        // The holdings as read: when another booking by the same address commits first,
        // this one conflicts on them and counts again.
        let holdings_at = holdings.map(|holdings| {
            writes.push(holdings.adding(&id, start));
            writes.len() - 1
        });
        let first_claim = writes.len();
        writes.extend(
            slots::slices(from, until)
                .into_iter()
                .map(|at| claim(&space, at, &id, until)),
        );
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(item),
            Err(StoreError::TransactionConflict { index }) if index >= first_claim => return Err(taken_message(start)),
            Err(StoreError::TransactionConflict { index }) if index == 0 || Some(index) == holdings_at => {
                pause(attempt).await
            }
            Err(StoreError::Contention) => pause(attempt).await,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "The appointment type or its slots kept changing while booking; retry.".into(),
    ))
}

async fn pause(attempt: usize) {
    tokio::time::sleep(Duration::from_millis(10 * (attempt as u64 + 1))).await;
}

/// Reads the body of an action, refusing fields it does not take.
fn action_body<'a>(call: &'a Call, allowed: &[&str]) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match &call.body {
        Value::Null => Ok(None),
        Value::Object(object) => {
            if let Some(extra) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
                return Err(ApiError::invalid_field(
                    extra,
                    format!("is not accepted here; send {}", allowed.join(", ")),
                ));
            }
            Ok(Some(object))
        }
        _ => Err(ApiError::invalid_field("body", "must be a JSON object")),
    }
}

async fn create(call: Call) -> Result<Reply, ApiError> {
    let fields = booking_fields();
    let checked = validate(&fields, &call.body, WriteMode::Create).map_err(ApiError::validation)?;
    let set = checked.set;
    let type_id = set
        .get("appointment_type_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let start = set
        .get("start")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
        .ok_or_else(|| ApiError::invalid_field("start", "must be an RFC 3339 date-time"))?;
    let contact = set.get("contact").cloned().unwrap_or(Value::Null);
    let item = book(&call, type_id, start, contact, set.get("notes").cloned(), Source::Api).await?;
    Ok(Reply::created(Resource::render(&item)).with_etag(item.version))
}

/// The outcome of one attempt at changing an appointment.
enum Attempt {
    Done(Item),
    Retry,
}

/// Commits `next` over `current` with `event` and the slot changes; maps a lost claim to
/// 409 and a concurrent edit to a retry (or 412 under `If-Match`).
async fn commit(
    call: &Call,
    current: &Item,
    next: Item,
    verb: &str,
    releases: Vec<Write>,
    claims: Vec<Write>,
    start: DateTime<Utc>,
) -> Result<Attempt, ApiError> {
    let mut writes = vec![
        Write::put(next.clone(), Condition::Version(current.version)),
        appointments().event(call, verb, &next)?,
    ];
    writes.extend(releases);
    let first_claim = writes.len();
    writes.extend(claims);
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Attempt::Done(next)),
        Err(StoreError::TransactionConflict { index }) if index >= first_claim => Err(taken_message(start)),
        Err(StoreError::TransactionConflict { index: 0 }) if call.if_match.is_some() => {
            Err(ApiError::PreconditionFailed(
                "The appointment changed since it was read; the If-Match precondition no longer holds.".into(),
            ))
        }
        Err(StoreError::TransactionConflict { index: 0 } | StoreError::Contention) => Ok(Attempt::Retry),
        Err(error) => Err(error.into()),
    }
}

fn confirmed(item: &Item) -> Result<(), ApiError> {
    match item.body.get("status").and_then(Value::as_str) {
        Some("confirmed") => Ok(()),
        _ => Err(ApiError::Conflict(format!(
            "Appointment `{}` is cancelled; book a new one instead.",
            item.sk
        ))),
    }
}

fn touched(current: &Item, now: DateTime<Utc>) -> Item {
    let mut next = current.clone();
    next.version = current.version + 1;
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next
}

async fn cancel(call: Call) -> Result<Reply, ApiError> {
    let reason = match action_body(&call, &["reason"])?.and_then(|body| body.get("reason")) {
        None => None,
        Some(value) => Some(
            FieldKind::Text { max: 500 }
                .check(value)
                .map_err(|message| ApiError::invalid_field("reason", message))?,
        ),
    };
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    for attempt in 0..ATTEMPTS {
        let current = appointments().load(&call, &id).await?;
        call.check_if_match(current.version)?;
        confirmed(&current)?;
        let now = call.engine.now();
        let mut next = touched(&current, now);
        next.body.insert("status".into(), json!("cancelled"));
        next.body.insert("cancelled_at".into(), json!(format_datetime(now)));
        if let Some(reason) = &reason {
            next.body.insert("cancellation_reason".into(), reason.clone());
        }
        let releases = held_slices(&current)?
            .into_iter()
            .map(|at| release(&space, at))
            .collect();
        match commit(&call, &current, next, "cancelled", releases, Vec::new(), now).await? {
            Attempt::Done(item) => return Ok(Reply::ok(Resource::render(&item)).with_etag(item.version)),
            Attempt::Retry => pause(attempt).await,
        }
    }
    Err(ApiError::Conflict(
        "The appointment kept changing while it was being cancelled; retry.".into(),
    ))
}

async fn reschedule(call: Call) -> Result<Reply, ApiError> {
    let body = action_body(&call, &["start"])?;
    let start = match body.and_then(|b| b.get("start")) {
        None | Some(Value::Null) => return Err(ApiError::invalid_field("start", "The start field is required.")),
        Some(value) => FieldKind::DateTime
            .check(value)
            .ok()
            .and_then(|v| v.as_str().and_then(parse_datetime))
            .ok_or_else(|| {
                ApiError::invalid_field("start", "must be an RFC 3339 date-time, like 2099-03-02T10:00:00Z")
            })?,
    };
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    for attempt in 0..ATTEMPTS {
        let current = appointments().load(&call, &id).await?;
        call.check_if_match(current.version)?;
        confirmed(&current)?;
        let type_id = current
            .body
            .get("appointment_type_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let type_item = match appointment_types().load(&call, type_id).await {
            Ok(item) => item,
            Err(ApiError::NotFound(_)) => {
                return Err(ApiError::Conflict(format!(
                    "The appointment's type `{type_id}` was deleted, so its availability is unknown; cancel and book again."
                )));
            }
            Err(error) => return Err(error),
        };
        let terms = Terms::of(&type_item)?;
        // The appointment keeps the length and buffers it was booked with.
        let minutes = |field: &str| TimeDelta::minutes(current.body.get(field).and_then(Value::as_i64).unwrap_or(0));
        let (duration, before, after) = (
            minutes("duration_minutes"),
            minutes("buffer_before_minutes"),
            minutes("buffer_after_minutes"),
        );
        let now = call.engine.now();
        terms.check_start(start, duration, now)?;
        let (from, until) = blocked(start, duration, before, after);
        let old: BTreeSet<DateTime<Utc>> = held_slices(&current)?.into_iter().collect();
        let new: BTreeSet<DateTime<Utc>> = slots::slices(from, until).into_iter().collect();
        let releases = old.difference(&new).map(|at| release(&space, *at)).collect();
        let claims = new.difference(&old).map(|at| claim(&space, *at, &id, until)).collect();
        let mut next = touched(&current, now);
        let previous = current.body.get("start").cloned().unwrap_or(Value::Null);
        next.body.insert("previous_start".into(), previous);
        next.body.insert("start".into(), json!(format_datetime(start)));
        next.body.insert("end".into(), json!(format_datetime(start + duration)));
        next.body.insert("blocked_from".into(), json!(format_datetime(from)));
        next.body.insert("blocked_until".into(), json!(format_datetime(until)));
        match commit(&call, &current, next, "rescheduled", releases, claims, start).await? {
            Attempt::Done(item) => return Ok(Reply::ok(Resource::render(&item)).with_etag(item.version)),
            Attempt::Retry => pause(attempt).await,
        }
    }
    Err(ApiError::Conflict(
        "The appointment kept changing while it was being rescheduled; retry.".into(),
    ))
}

async fn delete(call: Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let space = call.space_id()?.to_owned();
    for attempt in 0..ATTEMPTS {
        let current = appointments().load(&call, &id).await?;
        call.check_if_match(current.version)?;
        let mut writes = vec![
            Write::delete(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            appointments().event(&call, "deleted", &current)?,
        ];
        writes.extend(held_slices(&current)?.into_iter().map(|at| release(&space, at)));
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::no_content()),
            Err(StoreError::TransactionConflict { index: 0 }) if call.if_match.is_some() => {
                return Err(ApiError::PreconditionFailed(
                    "The appointment changed while it was being deleted; read it again.".into(),
                ));
            }
            Err(StoreError::TransactionConflict { index: 0 } | StoreError::Contention) => pause(attempt).await,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "The appointment kept changing while it was being deleted; retry.".into(),
    ))
}

/// What a PATCH may change: the notes and who is coming, never the time (reschedule) or
/// the status (cancel).
fn editable_fields() -> Vec<Field> {
    booking_fields()
        .into_iter()
        .filter(|field| matches!(field.name, "contact" | "notes"))
        .collect()
}

async fn update(call: Call) -> Result<Reply, ApiError> {
    let fields = editable_fields();
    if let Some(object) = call.body.as_object()
        && let Some(field) = object
            .keys()
            .find(|key| matches!(key.as_str(), "start" | "status" | "appointment_type_id"))
    {
        let how = match field.as_str() {
            "start" => "POST /booking/appointments/{id}/reschedule moves an appointment",
            "status" => "POST /booking/appointments/{id}/cancel cancels an appointment",
            _ => "cancel this appointment and book the other type",
        };
        return Err(ApiError::invalid_field(
            field,
            format!("cannot be changed with PATCH; {how}"),
        ));
    }
    let checked = validate(&fields, &call.body, WriteMode::Patch).map_err(ApiError::validation)?;
    let id = call.path_param("id")?.to_owned();
    let item = appointments()
        .modify(&call, &id, |body| {
            for name in &checked.clear {
                body.remove(*name);
            }
            body.extend(checked.set.clone());
            Ok(())
        })
        .await?;
    Ok(Reply::ok(Resource::render(&item)).with_etag(item.version))
}

pub fn operations() -> Vec<Operation> {
    let resource = appointments();
    let item_schema = Schema::lazy(|| appointments().item_schema()).named(appointments().type_name());
    let write = Access::Space(Scope::new(Domain::Booking, Action::Write));
    let id = || vec![Param::path("id", "The appointment's id.")];
    let generated = resource.operations();
    let mut operations: Vec<Operation> = generated
        .into_iter()
        .filter(|op| {
            matches!(
                op.name.as_str(),
                "booking_appointments_list" | "booking_appointments_get"
            )
        })
        .collect();
    operations.push(
        Operation::new(
            "booking_appointments_create",
            Method::POST,
            "/booking/appointments",
            write,
            Effect::Create,
            "Book an appointment (409 when the time overlaps another; 422 naming `start` outside availability)",
            handler(create),
        )
        .with_body(Schema::lazy(|| body_schema(&booking_fields(), WriteMode::Create)).named("AppointmentCreate"))
        .answers(StatusCode::CREATED, item_schema.clone()),
    );
    operations.push(
        Operation::new(
            "booking_appointments_update",
            Method::PATCH,
            "/booking/appointments/{id}",
            write,
            Effect::Update,
            "Update an appointment's notes or contact",
            handler(update),
        )
        .with_params(id())
        .with_body(Schema::lazy(|| body_schema(&editable_fields(), WriteMode::Patch)).named("AppointmentUpdate"))
        .answers(StatusCode::OK, item_schema.clone()),
    );
    operations.push(
        Operation::new(
            "booking_appointments_delete",
            Method::DELETE,
            "/booking/appointments/{id}",
            write,
            Effect::Delete,
            "Delete an appointment (its time is free again)",
            handler(delete),
        )
        .with_params(id())
        .answers_no_content(),
    );
    operations.push(
        Operation::new(
            "booking_appointments_cancel",
            Method::POST,
            "/booking/appointments/{id}/cancel",
            write,
            Effect::Update,
            "Cancel an appointment; its time is free to book again",
            handler(cancel),
        )
        .with_params(id())
        .with_optional_body(|| {
            let mut reason = FieldKind::Text { max: 500 }.schema();
            reason["description"] = json!("Why, kept on the appointment.");
            json!({"type": "object", "properties": {"reason": reason}, "additionalProperties": false})
        })
        .answers(StatusCode::OK, item_schema.clone()),
    );
    operations.push(
        Operation::new(
            "booking_appointments_reschedule",
            Method::POST,
            "/booking/appointments/{id}/reschedule",
            write,
            Effect::Update,
            "Move an appointment to a new start: claims the new time and frees the old one at once",
            handler(reschedule),
        )
        .with_params(id())
        .with_body(|| json!({
            "type": "object",
            "properties": {"start": {"description": "The new start (RFC 3339), inside availability.", "type": "string", "format": "date-time", "pattern": space_http::fields::DATE_TIME_PATTERN}},
            "required": ["start"],
            "additionalProperties": false
        }))
        .answers(StatusCode::OK, item_schema),
    );
    operations
}
