//! Booking: appointment types with weekly availability in a time zone, booking pages that
//! offer them, and appointments that are never double-booked (see [`slots`]). A booking
//! page is also public, without a key, at `/b/{booking_page_id}`: visitors list its free
//! slots and book one.

mod appointments;
mod availability;
mod limits;
mod pages;
mod public;
mod slots;

use axum::Router;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{CustomKind, Field, FieldKind};
use space_http::resource::{CustomFilter, Filter, Resource};
use space_http::{Engine, FieldErrors, Operation};

pub use availability::{Weekly, default_availability};
pub use limits::{
    DEFAULT_BOOKINGS_PER_HOUR, DEFAULT_UPCOMING_PER_EMAIL, MAX_BOOKINGS_PER_HOUR, MAX_UPCOMING_PER_EMAIL,
};
pub use slots::MAX_BLOCK_MINUTES;

/// Id prefixes, checked before a public route touches the store.
pub const PAGE_PREFIX: &str = "bpage";
pub const TYPE_PREFIX: &str = "atype";
pub const APPOINTMENT_PREFIX: &str = "appt";
pub const STATUSES: &[&str] = &["confirmed", "cancelled"];
pub const SOURCES: &[&str] = &["api", "booking_page"];
/// Appointment types one booking page may offer.
pub const MAX_TYPES_PER_PAGE: usize = 20;

const TIME_ZONE: FieldKind = FieldKind::Custom(CustomKind {
    schema: availability::time_zone_schema,
    check: availability::check_time_zone,
});
const AVAILABILITY: FieldKind = FieldKind::Custom(CustomKind {
    schema: availability::availability_schema,
    check: availability::check_availability,
});
const TYPE_IDS: FieldKind = FieldKind::Custom(CustomKind {
    schema: type_ids_schema,
    check: check_type_ids,
});
const SLUG: FieldKind = FieldKind::Custom(CustomKind {
    schema: slug_schema,
    check: check_slug,
});
const CONTACT: FieldKind = FieldKind::Custom(CustomKind {
    schema: contact_schema,
    check: check_contact,
});

/// What can be booked: a duration, buffers kept free around it, and when.
pub fn appointment_types() -> Resource {
    Resource {
        domain: Domain::Booking,
        name: "booking_appointment_types",
        collection: "booking_appointment_types",
        path: "/booking/appointment-types",
        item_param: "id",
        singular: "appointment type",
        plural: "appointment types",
        event_prefix: "appointment_type",
        id_prefix: TYPE_PREFIX,
        parent: None,
        fields: vec![
            Field::new(
                "name",
                FieldKind::Text { max: 200 },
                "What the visitor books, e.g. `Intro call`.",
            )
            .required(),
            Field::new(
                "description",
                FieldKind::LongText { max: 5000 },
                "Shown on the booking page.",
            ),
            Field::new(
                "duration_minutes",
                FieldKind::Integer {
                    min: 5,
                    max: MAX_BLOCK_MINUTES,
                },
                "How long an appointment lasts.",
            )
            .required(),
            Field::new(
                "buffer_before_minutes",
                FieldKind::Integer { min: 0, max: 120 },
                "Time kept free before each appointment; no other appointment (or its buffers) may use it.",
            )
            .default(zero),
            Field::new(
                "buffer_after_minutes",
                FieldKind::Integer { min: 0, max: 120 },
                "Time kept free after each appointment.",
            )
            .default(zero),
            Field::new(
                "slot_interval_minutes",
                FieldKind::Integer {
                    min: 5,
                    max: MAX_BLOCK_MINUTES,
                },
                "Offered start times are this far apart (a multiple of 5); the duration, rounded up to 5, when absent.",
            ),
            Field::new("time_zone", TIME_ZONE, "The IANA time zone the availability is in.").default(utc),
            Field::new(
                "availability",
                AVAILABILITY,
                "Bookable hours per weekday; Monday to Friday 09:00–17:00 when absent.",
            )
            .default(default_availability),
        ],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["name", "description"],
        }],
        rules: Some(type_rules),
    }
}

/// Public pages that offer appointment types.
pub fn booking_pages() -> Resource {
    Resource {
        domain: Domain::Booking,
        name: "booking_pages",
        collection: "booking_pages",
        path: "/booking/pages",
        item_param: "id",
        singular: "booking page",
        plural: "booking pages",
        event_prefix: "booking_page",
        id_prefix: PAGE_PREFIX,
        parent: None,
        fields: vec![
            Field::new(
                "name",
                FieldKind::Text { max: 200 },
                "The page's name inside the Space.",
            )
            .required(),
            Field::new(
                "title",
                FieldKind::Text { max: 200 },
                "The heading visitors see; the name when absent.",
            ),
            Field::new(
                "slug",
                SLUG,
                "A short label for links and analytics, like `intro-call`.",
            ),
            Field::new(
                "description",
                FieldKind::LongText { max: 5000 },
                "Shown under the title.",
            ),
            Field::new(
                "appointment_type_ids",
                TYPE_IDS,
                "The appointment types offered, in order (ids of this Space).",
            )
            .default(|| Value::Array(Vec::new())),
            Field::new("time_zone", TIME_ZONE, "The time zone the public page shows times in.").default(utc),
            Field::new(
                "max_upcoming_per_email",
                FieldKind::Integer {
                    min: 1,
                    max: MAX_UPCOMING_PER_EMAIL,
                },
                "Upcoming appointments one email address may hold through the page; one more is refused (422). 3 when absent.",
            )
            .default(|| json!(DEFAULT_UPCOMING_PER_EMAIL)),
            Field::new(
                "max_bookings_per_hour",
                FieldKind::Integer {
                    min: 1,
                    max: MAX_BOOKINGS_PER_HOUR,
                },
                "Bookings the page takes per clock hour, from everyone; more are refused (429 with Retry-After). 20 when absent.",
            )
            .default(|| json!(DEFAULT_BOOKINGS_PER_HOUR)),
        ],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["name", "title", "slug"],
        }],
        rules: None,
    }
}

/// Booked time.
pub fn appointments() -> Resource {
    Resource {
        domain: Domain::Booking,
        name: "booking_appointments",
        collection: "booking_appointments",
        path: "/booking/appointments",
        item_param: "id",
        singular: "appointment",
        plural: "appointments",
        event_prefix: "appointment",
        id_prefix: APPOINTMENT_PREFIX,
        parent: None,
        fields: appointment_fields(),
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "appointment_type_id",
                field: "appointment_type_id",
                kind: FieldKind::Text { max: 64 },
            },
            Filter::Equals {
                param: "booking_page_id",
                field: "booking_page_id",
                kind: FieldKind::Text { max: 64 },
            },
            Filter::After {
                param: "start_after",
                field: "start",
            },
            Filter::Before {
                param: "start_before",
                field: "start",
            },
            Filter::Custom(CustomFilter {
                param: "email",
                description: "Only appointments of the contact with this email.",
                schema: || FieldKind::Email.schema(),
                parse: |raw| FieldKind::Email.check(&Value::String(raw.to_owned())),
                matches: |item, wanted, _| item.get("contact").and_then(|c| c.get("email")) == Some(wanted),
            }),
        ],
        rules: None,
    }
}

/// What a client sends to book (the rest of an appointment is derived).
pub fn booking_fields() -> Vec<Field> {
    vec![
        Field::new(
            "appointment_type_id",
            FieldKind::Text { max: 64 },
            "The appointment type to book.",
        )
        .required(),
        Field::new(
            "start",
            FieldKind::DateTime,
            "When it starts (RFC 3339), on a 5-minute mark, inside the type's availability.",
        )
        .required(),
        Field::new(
            "contact",
            CONTACT,
            "Who is coming: `{\"email\": \"…\", \"name\": \"…\"}`.",
        )
        .required(),
        Field::new(
            "notes",
            FieldKind::LongText { max: 5000 },
            "Anything the host should know.",
        ),
    ]
}

fn appointment_fields() -> Vec<Field> {
    let mut fields = booking_fields();
    fields.extend([
        Field::new(
            "status",
            FieldKind::Enum(STATUSES),
            "`confirmed`, or `cancelled` (its time is free again).",
        )
        .default(|| json!("confirmed")),
        Field::new("end", FieldKind::DateTime, "When it ends (start + duration)."),
        Field::new(
            "appointment_type_name",
            FieldKind::Text { max: 200 },
            "The type's name when booked.",
        ),
        Field::new(
            "duration_minutes",
            FieldKind::Integer {
                min: 5,
                max: MAX_BLOCK_MINUTES,
            },
            "Its length when booked.",
        ),
        Field::new(
            "buffer_before_minutes",
            FieldKind::Integer { min: 0, max: 120 },
            "Buffer kept free before it.",
        ),
        Field::new(
            "buffer_after_minutes",
            FieldKind::Integer { min: 0, max: 120 },
            "Buffer kept free after it.",
        ),
        Field::new(
            "blocked_from",
            FieldKind::DateTime,
            "Start of the time it holds (start minus the buffer before).",
        ),
        Field::new(
            "blocked_until",
            FieldKind::DateTime,
            "End of the time it holds (end plus the buffer after).",
        ),
        Field::new("time_zone", TIME_ZONE, "The appointment type's time zone."),
        Field::new(
            "source",
            FieldKind::Enum(SOURCES),
            "`api`, or `booking_page` when a visitor booked it.",
        ),
        Field::new(
            "booking_page_id",
            FieldKind::Text { max: 64 },
            "The booking page it was booked on.",
        ),
        Field::new(
            "previous_start",
            FieldKind::DateTime,
            "Where it started before the last reschedule.",
        ),
        Field::new("cancelled_at", FieldKind::DateTime, "When it was cancelled."),
        Field::new(
            "cancellation_reason",
            FieldKind::Text { max: 500 },
            "Why, if a reason was given.",
        ),
    ]);
    fields
}

fn zero() -> Value {
    json!(0)
}

fn utc() -> Value {
    json!("UTC")
}

fn type_rules(item: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let minutes = |field: &str| item.get(field).and_then(Value::as_i64).unwrap_or(0);
    let mut errors = FieldErrors::new();
    let blocked = minutes("duration_minutes") + minutes("buffer_before_minutes") + minutes("buffer_after_minutes");
    if blocked > MAX_BLOCK_MINUTES {
        errors.insert(
            "duration_minutes".into(),
            vec![format!(
                "with its buffers an appointment may block at most {MAX_BLOCK_MINUTES} minutes; this blocks {blocked}"
            )],
        );
    }
    if minutes("slot_interval_minutes") % 5 != 0 {
        errors.insert("slot_interval_minutes".into(), vec!["must be a multiple of 5".into()]);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn type_ids_schema() -> Value {
    json!({
        "type": "array",
        "items": {"type": "string", "pattern": "^atype_[0-9a-z]{26}$"},
        "maxItems": MAX_TYPES_PER_PAGE,
        "uniqueItems": true
    })
}

fn check_type_ids(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be a list of appointment type ids")?;
    let mut ids: Vec<Value> = Vec::with_capacity(list.len());
    for entry in list {
        let id = entry
            .as_str()
            .map(str::trim)
            .ok_or("must be a list of appointment type ids (strings)")?;
        if !space_http::ids::has_shape(id, TYPE_PREFIX) {
            return Err(format!(
                "`{id}` is not an appointment type id (they look like {TYPE_PREFIX}_01…)"
            ));
        }
        let id = json!(id);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_TYPES_PER_PAGE {
        return Err(format!("a page offers at most {MAX_TYPES_PER_PAGE} appointment types"));
    }
    Ok(Value::Array(ids))
}

fn slug_schema() -> Value {
    json!({"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 64})
}

fn check_slug(value: &Value) -> Result<Value, String> {
    let slug = value.as_str().ok_or("must be a string")?;
    let valid = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if valid {
        Ok(json!(slug))
    } else {
        Err("must be 1 to 64 lowercase letters, digits and single hyphens, like intro-call".into())
    }
}

fn contact_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "email": FieldKind::Email.schema(),
            "name": FieldKind::Text { max: 200 }.schema(),
            "phone": FieldKind::Phone.schema()
        },
        "required": ["email"],
        "additionalProperties": false
    })
}

fn check_contact(value: &Value) -> Result<Value, String> {
    let object = value
        .as_object()
        .ok_or("must be an object like {\"email\": \"ada@example.com\", \"name\": \"Ada\"}")?;
    let mut contact = Map::new();
    for (key, field) in object {
        let kind = match key.as_str() {
            "email" => FieldKind::Email,
            "name" => FieldKind::Text { max: 200 },
            "phone" => FieldKind::Phone,
            _ => {
                return Err(format!(
                    "`{key}` is not a contact field; send email, and optionally name and phone"
                ));
            }
        };
        if field.is_null() {
            continue;
        }
        contact.insert(
            key.clone(),
            kind.check(field).map_err(|message| format!("{key} {message}"))?,
        );
    }
    if !contact.contains_key("email") {
        return Err("needs an email, like {\"email\": \"ada@example.com\"}".into());
    }
    Ok(Value::Object(contact))
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = appointment_types().operations();
    operations.extend(pages::operations());
    operations.extend(appointments::operations());
    operations.extend(public::operations());
    let describe = space_http::operation::describe;
    describe(
        &mut operations,
        &[
            "booking_appointments_create",
            "booking_appointments_reschedule",
            "booking_public_book",
        ],
        "A booking starts in the future, inside the appointment type's availability and the page's limits, \
         and not over another booking; otherwise 422 (409 when the time was just taken).",
    );
    describe(
        &mut operations,
        &[
            "booking_pages_create",
            "booking_pages_replace",
            "booking_pages_update",
            "booking_appointments_create",
        ],
        "Appointment type ids must name appointment types of this Space; otherwise 422.",
    );
    describe(
        &mut operations,
        &["booking_public_slots"],
        "The appointment type must be one the page offers, and the range within the limit; otherwise 422.",
    );
    describe(
        &mut operations,
        &[
            "booking_appointment_types_create",
            "booking_appointment_types_replace",
            "booking_appointment_types_update",
            "booking_pages_create",
            "booking_pages_replace",
            "booking_pages_update",
        ],
        "A time zone must be a name the tz database has, and an availability window ends after it starts; \
         otherwise 422.",
    );
    describe(
        &mut operations,
        &[
            "booking_appointments_create",
            "booking_appointments_update",
            "booking_appointments_list",
            "booking_public_book",
        ],
        space_http::fields::PHONE_AND_EMAIL_RULES,
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_normalized_and_checked() {
        let contact = check_contact(&json!({"email": " Ada@Example.com ", "name": "Ada"})).unwrap();
        assert_eq!(contact, json!({"email": "ada@example.com", "name": "Ada"}));
        assert!(check_contact(&json!({"name": "Ada"})).unwrap_err().contains("email"));
        assert!(
            check_contact(&json!({"email": "ada@example.com", "age": 3}))
                .unwrap_err()
                .contains("age")
        );
        assert!(check_contact(&json!("ada@example.com")).is_err());
    }

    #[test]
    fn type_ids_and_slugs_are_checked() {
        let id = space_http::ids::new_id(TYPE_PREFIX);
        assert_eq!(check_type_ids(&json!([id, id])).unwrap(), json!([id]));
        assert!(check_type_ids(&json!(["con_01"])).is_err());
        assert_eq!(check_slug(&json!("intro-call")).unwrap(), json!("intro-call"));
        for bad in ["Intro", "intro--call", "-x", ""] {
            assert!(check_slug(&json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn operation_names_are_unique() {
        let operations = operations();
        let mut names: Vec<&str> = operations.iter().map(|o| o.name.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
