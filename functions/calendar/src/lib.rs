//! Calendar: events with a time zone, attendees and an optional recurrence rule.
//! `GET /calendar/events?from=&to=` lists the occurrences in a range with recurrences
//! expanded; a read-only iCal feed at a secret, rotatable URL serves the same events to
//! any calendar app.

mod feed;
mod ical;
mod recurrence;
mod vtimezone;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{CustomKind, Field, FieldKind, format_datetime, parse_datetime};
use space_http::operation::{Call, Param, Reply, handler};
use space_http::resource::{CustomFilter, Filter, Resource};
use space_http::{ApiError, Engine, FieldErrors, Operation};
use space_store::{Item, Query};

use crate::recurrence::{Budget, Occurrences, Stop};

pub const EVENT_PREFIX: &str = "calev";
pub const STATUSES: &[&str] = &["confirmed", "tentative", "cancelled"];
/// Attendees of one event at most.
pub const MAX_ATTENDEES: usize = 100;
/// Occurrences one range request returns at most; the answer says when there were more.
pub const MAX_OCCURRENCES: usize = 1000;
/// Candidate occurrences one range listing may read across all its events (the longest
/// counted rules are walked from their first start; everything else from the range).
pub const EXPANSION_STEPS: usize = 200_000;
/// Time one range listing may spend expanding: past it the answer asks for a narrower range.
const EXPANSION_TIME: Duration = Duration::from_millis(250);
/// The widest range one request expands.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Events one range request or one feed reads at most.
pub const MAX_EVENTS_SCANNED: usize = 5000;
/// The longest single event.
const MAX_EVENT_DAYS: i64 = 366;

const TIME_ZONE: FieldKind = FieldKind::Custom(CustomKind {
    schema: space_http::fields::time_zone_schema,
    check: check_time_zone,
});
const ATTENDEES: FieldKind = FieldKind::Custom(CustomKind {
    schema: || {
        json!({
            "type": "array",
            "items": FieldKind::Email.schema(),
            "maxItems": MAX_ATTENDEES,
            "uniqueItems": true
        })
    },
    check: check_attendees,
});
const RECURRENCE: FieldKind = FieldKind::Custom(CustomKind {
    schema: || {
        json!({
            "type": "string",
            "maxLength": 500,
            "examples": ["FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", "FREQ=MONTHLY;BYMONTHDAY=1;UNTIL=20991231T000000Z"]
        })
    },
    check: |value| recurrence::normalize(value.as_str().ok_or("must be a string")?).map(Value::String),
});

/// Calendar events.
pub fn events() -> Resource {
    Resource {
        domain: Domain::Calendar,
        name: "calendar_events",
        collection: "calendar_events",
        path: "/calendar/events",
        item_param: "id",
        singular: "calendar event",
        plural: "calendar events",
        event_prefix: "calendar_event",
        id_prefix: EVENT_PREFIX,
        parent: None,
        fields: vec![
            Field::new("title", FieldKind::Text { max: 500 }, "What it is (the iCal SUMMARY).").required(),
            Field::new("description", FieldKind::LongText { max: 20_000 }, "Details."),
            Field::new("location", FieldKind::Text { max: 500 }, "Where, or a meeting link."),
            Field::new(
                "start",
                FieldKind::DateTime,
                "When the (first) occurrence starts (RFC 3339).",
            )
            .required(),
            Field::new(
                "end",
                FieldKind::DateTime,
                "When the (first) occurrence ends; after `start`.",
            )
            .required(),
            Field::new(
                "time_zone",
                TIME_ZONE,
                "The IANA time zone the event lives in; recurrences keep its local time.",
            )
            .default(|| json!("UTC")),
            Field::new("attendees", ATTENDEES, "Attendees' email addresses; stored lowercase.").default(|| json!([])),
            Field::new(
                "recurrence",
                RECURRENCE,
                "An RFC 5545 RRULE, e.g. `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10`.",
            ),
            Field::new("status", FieldKind::Enum(STATUSES), "Whether it happens.").default(|| json!("confirmed")),
        ],
        filters: vec![
            Filter::Search {
                param: "q",
                fields: &["title", "description", "location"],
            },
            Filter::Custom(CustomFilter {
                param: "attendee",
                description: "Only events with this attendee.",
                schema: || FieldKind::Email.schema(),
                parse: |raw| FieldKind::Email.check(&Value::String(raw.to_owned())),
                matches: |item, wanted, _| {
                    item.get("attendees")
                        .and_then(Value::as_array)
                        .is_some_and(|list| list.contains(wanted))
                },
            }),
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
        ],
        rules: Some(event_rules),
    }
}

fn check_time_zone(value: &Value) -> Result<Value, String> {
    let text = value.as_str().ok_or("must be a string")?;
    text.parse::<Tz>()
        .map(|tz| Value::String(tz.name().to_owned()))
        .map_err(|_| "must be an IANA time zone name, like Europe/Berlin or UTC".into())
}

fn check_attendees(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be a list of email addresses")?;
    let mut emails: Vec<Value> = Vec::with_capacity(list.len());
    for entry in list {
        let email = FieldKind::Email
            .check(entry)
            .map_err(|message| format!("each attendee {message}"))?;
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    if emails.len() > MAX_ATTENDEES {
        return Err(format!("at most {MAX_ATTENDEES} attendees"));
    }
    Ok(Value::Array(emails))
}

/// The event's times and zone, as stored.
pub struct Timing {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub zone: Tz,
    pub rule: Option<String>,
    /// A counted rule's last start, derived when the event was written.
    pub last: Option<DateTime<Utc>>,
}

impl Timing {
    pub fn of(event: &Map<String, Value>) -> Option<Timing> {
        let instant = |field: &str| event.get(field).and_then(Value::as_str).and_then(parse_datetime);
        Some(Timing {
            start: instant("start")?,
            end: instant("end")?,
            zone: event
                .get("time_zone")
                .and_then(Value::as_str)
                .map_or(Some(Tz::UTC), |name| name.parse().ok())?,
            rule: event.get("recurrence").and_then(Value::as_str).map(str::to_owned),
            last: instant(LAST_START),
        })
    }
}

/// Derived, not writable: when a counted series' last occurrence starts.
const LAST_START: &str = "recurrence_last_start";

fn event_rules(event: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    event.remove(LAST_START);
    let mut errors = FieldErrors::new();
    if let Some(timing) = Timing::of(event) {
        if timing.end <= timing.start {
            errors.insert("end".into(), vec!["must be after start".into()]);
        } else if timing.end - timing.start > TimeDelta::days(MAX_EVENT_DAYS) {
            errors.insert(
                "end".into(),
                vec![format!("an event lasts at most {MAX_EVENT_DAYS} days")],
            );
        }
        if let Some(rule) = &timing.rule {
            match recurrence::check(rule, timing.start, timing.zone)
                .and_then(|()| recurrence::last_start(rule, timing.start, timing.zone))
            {
                Ok(last) => {
                    if let Some(last) = last {
                        event.insert(LAST_START.into(), json!(format_datetime(last)));
                    }
                }
                Err(message) => {
                    errors.insert("recurrence".into(), vec![message]);
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Reads every event of the call's Space, up to [`MAX_EVENTS_SCANNED`]; `true` when there
/// were more.
pub async fn all_events(call: &Call) -> Result<(Vec<Item>, bool), ApiError> {
    let partition = events().partition(call)?;
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = call
            .engine
            .store()
            .query(Query::partition(partition.clone()).after(after).limit(200))
            .await?;
        items.extend(page.items);
        if items.len() >= MAX_EVENTS_SCANNED {
            let more = page.last_sk.is_some() || items.len() > MAX_EVENTS_SCANNED;
            items.truncate(MAX_EVENTS_SCANNED);
            return Ok((items, more));
        }
        match page.last_sk {
            Some(last) => after = Some(last),
            None => return Ok((items, false)),
        }
    }
}

fn range_param(call: &Call, name: &str) -> Result<DateTime<Utc>, ApiError> {
    match call.query_param(name) {
        None | Some("") => Err(ApiError::invalid_field(
            name,
            "give both `from` and `to` to list occurrences in a range",
        )),
        Some(raw) => parse_datetime(raw)
            .ok_or_else(|| ApiError::invalid_field(name, "must be an RFC 3339 date-time, like 2099-03-01T00:00:00Z")),
    }
}

/// The list filters, applied to events before a range listing expands them.
struct RangeFilters {
    search: Option<String>,
    attendee: Option<Value>,
    status: Option<Value>,
}

impl RangeFilters {
    fn parse(call: &Call) -> Result<RangeFilters, ApiError> {
        let mut errors = FieldErrors::new();
        let mut checked = |name: &str, kind: FieldKind| {
            let raw = call.query_param(name)?;
            kind.check(&json!(raw))
                .map_err(|message| errors.insert(name.to_owned(), vec![message]))
                .ok()
        };
        let attendee = checked("attendee", FieldKind::Email);
        let status = checked("status", FieldKind::Enum(STATUSES));
        let search = checked("q", FieldKind::Text { max: 200 }).and_then(|q| q.as_str().map(str::to_lowercase));
        if errors.is_empty() {
            Ok(RangeFilters {
                search,
                attendee,
                status,
            })
        } else {
            Err(ApiError::validation(errors))
        }
    }

    fn keep(&self, event: &Map<String, Value>) -> bool {
        let search = self.search.as_deref().is_none_or(|needle| {
            ["title", "description", "location"].iter().any(|field| {
                event
                    .get(*field)
                    .and_then(Value::as_str)
                    .is_some_and(|text| text.to_lowercase().contains(needle))
            })
        });
        let attendee = self.attendee.as_ref().is_none_or(|wanted| {
            event
                .get("attendees")
                .and_then(Value::as_array)
                .is_some_and(|list| list.contains(wanted))
        });
        let status = self
            .status
            .as_ref()
            .is_none_or(|wanted| event.get("status") == Some(wanted));
        search && attendee && status
    }
}

/// `?from=&to=`: every occurrence overlapping the range, recurrences expanded, by start.
async fn occurrences(call: &Call) -> Result<Reply, ApiError> {
    let filters = RangeFilters::parse(call)?;
    let (from, to) = (range_param(call, "from")?, range_param(call, "to")?);
    if to <= from {
        return Err(ApiError::invalid_field("to", "must be after `from`"));
    }
    if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
        return Err(ApiError::invalid_field(
            "to",
            format!("a range covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let (mut items, scan_truncated) = all_events(call).await?;
    items.retain(|item| filters.keep(&item.body));
    // Up to a thousand occurrences: the answer is written on the CPU pool too.
    let expanded = space_http::cpu::run(move |cancelled| {
        let budget = Budget::new(EXPANSION_STEPS, EXPANSION_TIME, cancelled);
        expand(&items, from, to, budget).map(|(data, truncated)| {
            json!({"data": data, "next_cursor": null, "truncated": truncated || scan_truncated}).to_string()
        })
    })
    .await?;
    match expanded {
        Ok(text) => Ok(Reply::json_text(http::StatusCode::OK, text)),
        Err(Stop::OverBudget) => Err(ApiError::invalid_field(
            "to",
            "expanding the recurring events in this range takes more work than one request may do: \
             narrow the range (`from`, `to`) or filter with `q`, `attendee` or `status`",
        )),
        Err(Stop::Cancelled) => Err(ApiError::Unavailable {
            message: "The listing was cancelled; retry.".into(),
            retry_after: 1,
        }),
    }
}

/// The first [`MAX_OCCURRENCES`] occurrences of `items` in `[from, to)`, by start then id
/// (`items` come in id order), merged lazily: each event's expansion is read only as far as
/// the merge needs it; `true` when there were more.
fn expand(
    items: &[Item],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mut budget: Budget,
) -> Result<(Vec<Value>, bool), Stop> {
    struct Source<'a> {
        item: &'a Item,
        recurring: bool,
        duration: TimeDelta,
        occurrences: Occurrences,
    }
    let mut sources = Vec::new();
    for item in items {
        let Some(timing) = Timing::of(&item.body) else { continue };
        let duration = timing.end - timing.start;
        let once = || Occurrences::once(timing.start, duration, from, to);
        let occurrences = match &timing.rule {
            // A rule stored before a stricter check: the event is listed once.
            Some(rule) => Occurrences::of_rule(rule, timing.start, timing.zone, timing.last, duration, from, to)
                .unwrap_or_else(|_| once()),
            None => once(),
        };
        sources.push(Source {
            item,
            recurring: timing.rule.is_some(),
            duration,
            occurrences,
        });
    }
    let mut next = BinaryHeap::new();
    for (index, source) in sources.iter_mut().enumerate() {
        if let Some(start) = source.occurrences.next(&mut budget)? {
            next.push(Reverse((start, index)));
        }
    }
    let mut data = Vec::new();
    while let Some(Reverse((start, index))) = next.pop() {
        if data.len() == MAX_OCCURRENCES {
            return Ok((data, true));
        }
        let source = &mut sources[index];
        let mut occurrence = Resource::render(source.item);
        if let Some(body) = occurrence.as_object_mut() {
            body.insert("start".into(), json!(format_datetime(start)));
            body.insert("end".into(), json!(format_datetime(start + source.duration)));
            if source.recurring {
                body.insert("recurrence_id".into(), json!(format_datetime(start)));
            }
        }
        data.push(occurrence);
        if let Some(later) = source.occurrences.next(&mut budget)? {
            next.push(Reverse((later, index)));
        }
    }
    Ok((data, false))
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = events().operations();
    for operation in &mut operations {
        operation.response = operation.response.as_ref().map(|schema| {
            schema.amend(|mut schema| {
                let item = if schema["properties"]["data"]["items"].is_object() {
                    &mut schema["properties"]["data"]["items"]
                } else {
                    &mut schema
                };
                if let Some(properties) = item["properties"].as_object_mut() {
                    properties.insert(
                        LAST_START.into(),
                        json!({
                            "type": "string",
                            "format": "date-time",
                            "readOnly": true,
                            "description": "Set by the server for a series with COUNT: when its last occurrence starts."
                        }),
                    );
                }
                schema
            })
        });
        if operation.name == "calendar_events_list" {
            let inner = Arc::clone(&operation.handler);
            operation.handler = handler(move |call| {
                let inner = Arc::clone(&inner);
                async move {
                    if call.query_param("from").is_some() || call.query_param("to").is_some() {
                        occurrences(&call).await
                    } else {
                        inner(call).await
                    }
                }
            });
            operation.params.extend([
                Param::query(
                    "from",
                    json!({"type": "string", "format": "date-time"}),
                    format!(
                        "With `to`: list occurrences overlapping [from, to) instead of events, recurrences expanded, by start \
                         (at most {MAX_OCCURRENCES}; `truncated` says when there were more; range at most {MAX_RANGE_DAYS} days; \
                         `q`, `attendee` and `status` still apply, paging does not)."
                    ),
                ),
                Param::query("to", json!({"type": "string", "format": "date-time"}), "End of the range (exclusive); see `from`."),
            ]);
            operation.response = operation.response.as_ref().map(|schema| {
                schema.map(|mut schema| {
                    schema["properties"]["truncated"] = json!({
                        "type": "boolean",
                        "description": "Range listings only: more occurrences exist than were returned; narrow the range."
                    });
                    schema
                })
            });
        }
    }
    operations.extend(feed::operations());
    space_http::operation::describe(
        &mut operations,
        &[
            "calendar_events_create",
            "calendar_events_replace",
            "calendar_events_update",
        ],
        "An event ends after it starts; `recurrence` is an RRULE the server can expand and `time_zone` a name \
         the tz database has; attendees are plain email addresses with at most 64 characters before the `@`. \
         Otherwise 422.",
    );
    space_http::operation::describe(
        &mut operations,
        &["calendar_events_list"],
        "`from` and `to` come together, `to` after `from`, within the range limit; otherwise 422.",
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
    fn attendees_are_emails_lowercased_once() {
        assert_eq!(
            check_attendees(&json!(["Ada@Example.com", "ada@example.com"])).unwrap(),
            json!(["ada@example.com"])
        );
        assert!(check_attendees(&json!(["nope"])).is_err());
        assert!(check_attendees(&json!("ada@example.com")).is_err());
    }

    #[test]
    fn rules_see_the_whole_event() {
        let mut event = Map::new();
        event.insert("start".into(), json!("2099-03-02T10:00:00.000Z"));
        event.insert("end".into(), json!("2099-03-02T09:00:00.000Z"));
        assert!(event_rules(&mut event).unwrap_err().contains_key("end"));
        event.insert("end".into(), json!("2099-03-02T11:00:00.000Z"));
        event.insert("recurrence".into(), json!("FREQ=DAILY;UNTIL=20990101T000000Z"));
        assert!(event_rules(&mut event).unwrap_err().contains_key("recurrence"));
        event.insert("recurrence".into(), json!("FREQ=DAILY;COUNT=3"));
        assert!(event_rules(&mut event).is_ok());
        assert_eq!(event[LAST_START], "2099-03-04T10:00:00.000Z");
        event.insert("recurrence".into(), json!("FREQ=DAILY"));
        assert!(event_rules(&mut event).is_ok());
        assert!(!event.contains_key(LAST_START), "an endless series has no last start");
    }
}
