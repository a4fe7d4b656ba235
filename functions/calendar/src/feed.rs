//! The read-only iCal feed at a secret URL, `GET /c/{token}/calendar.ics`. The Space keeps
//! its current token in one settings item; the public route finds the Space through a
//! pointer keyed by the token's SHA-256, never the token itself. Rotating replaces the
//! settings, deletes the old pointer and writes the new one in one transaction, so the old
//! URL stops working the moment the new one exists.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{Datelike, Utc};
use chrono_tz::Tz;
use http::{Method, StatusCode};
use rand::Rng as _;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use space_auth::{Action, Domain, Scope};
use space_http::events::event_write;
use space_http::fields::{format_datetime, parse_datetime};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, Email, Operation};
use space_store::{Condition, Item, StoreError, Write};

use crate::ical::{Writer, local_stamp, utc_stamp};
use crate::{Timing, all_events, vtimezone};

/// The kind of public pointer the feed writes.
const POINTER_KIND: &str = "calendar-feed";
/// Feed fetches per client address and minute.
const FEED_PER_MINUTE: u32 = 60;
/// Random bytes in a token (43 characters of URL-safe base64).
const TOKEN_BYTES: usize = 32;
const ATTEMPTS: usize = 3;
/// Years before and after today a VTIMEZONE covers at most.
const ZONE_YEARS: i32 = 20;
/// Calendar apps are told to refresh this often.
const REFRESH: &str = "PT1H";

fn new_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::rng().random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The feed's settings as the API shows them, with its absolute URLs.
fn describe(call: &Call, settings: Option<&Item>) -> Value {
    let Some(settings) = settings else {
        return json!({"enabled": false, "url": null, "webcal_url": null, "created_at": null});
    };
    let token = settings.body.get("token").and_then(Value::as_str).unwrap_or_default();
    let url = call.engine.public_link(&format!("/c/{token}/calendar.ics"));
    let webcal = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| format!("webcal://{rest}"));
    json!({
        "enabled": true,
        "url": url,
        "webcal_url": webcal,
        "created_at": settings.body.get("created_at"),
    })
}

fn feed_schema() -> Value {
    json!({
        "type": "object",
        "required": ["enabled", "url"],
        "properties": {
            "enabled": {"type": "boolean", "description": "Whether the Space has a feed URL (rotate creates one)."},
            "url": {"type": ["string", "null"], "format": "uri", "description": "The secret feed URL (absolute): anyone holding it can read the calendar."},
            "webcal_url": {"type": ["string", "null"], "description": "The same URL as `webcal://`, which calendar apps subscribe to."},
            "created_at": {"type": ["string", "null"], "format": "date-time"}
        }
    })
}

async fn settings(call: &Call) -> Result<Option<Item>, ApiError> {
    let key = keys::calendar_feed(call.space_id()?);
    Ok(call.engine.store().get(&key.pk, &key.sk).await?)
}

async fn show(call: Call) -> Result<Reply, ApiError> {
    let current = settings(&call).await?;
    Ok(Reply::ok(describe(&call, current.as_ref())))
}

/// The writes that remove the current token's pointer and its reference.
fn pointer_delete(space: &str, current: &Item) -> Vec<Write> {
    let Some(hash) = current.body.get("token_hash").and_then(Value::as_str) else {
        return Vec::new();
    };
    space_http::references::delete(space, &keys::public_pointer(POINTER_KIND, hash)).into()
}

async fn rotate(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    for attempt in 0..ATTEMPTS {
        let current = settings(&call).await?;
        let now = call.engine.now();
        let token = new_token();
        let hash = token_hash(&token);
        let key = keys::calendar_feed(&space);
        let mut body = Map::new();
        body.insert("token".into(), json!(token));
        body.insert("token_hash".into(), json!(hash));
        body.insert("created_at".into(), json!(format_datetime(now)));
        let (condition, version) = match &current {
            Some(item) => (Condition::Version(item.version), item.version + 1),
            None => (Condition::NotExists, 1),
        };
        let next = Item::new(key.pk, key.sk, body).with_version(version);
        let pointer = keys::public_pointer(POINTER_KIND, &hash);
        let mut pointer_body = Map::new();
        pointer_body.insert("space_id".into(), json!(space));
        let mut writes = vec![Write::put(next.clone(), condition)];
        writes.extend(space_http::references::put(
            &space,
            Item::new(pointer.pk, pointer.sk, pointer_body),
            Condition::NotExists,
        ));
        writes.push(event_write(
            &space,
            "calendar.feed_rotated",
            "calendar-feed",
            json!({"created_at": format_datetime(now)}),
            &call.principal,
            now,
        ));
        if let Some(current) = &current {
            writes.extend(pointer_delete(&space, current));
        }
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::ok(describe(&call, Some(&next)))),
            Err(StoreError::TransactionConflict { .. } | StoreError::Contention) => {
                tokio::time::sleep(std::time::Duration::from_millis(10 * (attempt as u64 + 1))).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::Conflict(
        "The feed was rotated by another request at the same moment; retry.".into(),
    ))
}

async fn disable(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    let current = settings(&call)
        .await?
        .ok_or_else(|| ApiError::NotFound("This Space has no iCal feed.".into()))?;
    let now = call.engine.now();
    let mut writes = vec![
        Write::delete(
            current.pk.clone(),
            current.sk.clone(),
            Condition::Version(current.version),
        ),
        event_write(
            &space,
            "calendar.feed_disabled",
            "calendar-feed",
            json!({"disabled_at": format_datetime(now)}),
            &call.principal,
            now,
        ),
    ];
    writes.extend(pointer_delete(&space, &current));
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::Conflict(
            "The feed was rotated at the same moment; retry.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// `UTC` events are written in UTC (`…Z`); others with their `TZID` and a VTIMEZONE.
fn is_utc(zone: Tz) -> bool {
    matches!(
        zone.name(),
        "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Etc/Universal" | "Universal" | "Etc/Zulu" | "Zulu"
    )
}

/// The whole calendar as RFC 5545 text.
fn calendar(events: &[Item], now: chrono::DateTime<Utc>) -> String {
    let mut writer = Writer::new();
    writer.begin("VCALENDAR");
    writer.raw("VERSION", "2.0");
    writer.raw("PRODID", "-//Space API//Calendar feed//EN");
    writer.raw("CALSCALE", "GREGORIAN");
    writer.raw("METHOD", "PUBLISH");
    writer.text("X-WR-CALNAME", "Space calendar");
    writer.raw("REFRESH-INTERVAL;VALUE=DURATION", REFRESH);
    writer.raw("X-PUBLISHED-TTL", REFRESH);

    // The years each zone is needed for.
    let mut zones: BTreeMap<&str, (Tz, i32, i32)> = BTreeMap::new();
    let timed: Vec<(&Item, Timing)> = events
        .iter()
        .filter_map(|item| Some((item, Timing::of(&item.body)?)))
        .collect();
    for (_, timing) in &timed {
        if is_utc(timing.zone) {
            continue;
        }
        // Years around today only: a zone's work is bounded whatever dates events carry
        // (earlier times read the first observance, later ones the repeating rules).
        let (this_year, reach) = (now.year(), ZONE_YEARS);
        let first = (timing.start.with_timezone(&timing.zone).year() - 1).clamp(this_year - reach, this_year + reach);
        let last =
            (timing.end.with_timezone(&timing.zone).year().max(this_year) + 10).clamp(this_year, this_year + reach);
        let entry = zones.entry(timing.zone.name()).or_insert((timing.zone, first, last));
        entry.1 = entry.1.min(first);
        entry.2 = entry.2.max(last);
    }
    for (zone, first, last) in zones.values() {
        writer.lines(&vtimezone::block(*zone, *first, *last));
    }

    for (item, timing) in &timed {
        let body = &item.body;
        let text = |field: &str| body.get(field).and_then(Value::as_str).filter(|t| !t.is_empty());
        let stamp = |field: &str| text(field).and_then(parse_datetime).map(utc_stamp);
        writer.begin("VEVENT");
        writer.text("UID", &format!("{}@space-api", item.sk));
        writer.raw("DTSTAMP", &stamp("updated_at").unwrap_or_else(|| utc_stamp(now)));
        if let Some(created) = stamp("created_at") {
            writer.raw("CREATED", &created);
        }
        if let Some(modified) = stamp("updated_at") {
            writer.raw("LAST-MODIFIED", &modified);
        }
        writer.raw("SEQUENCE", &item.version.saturating_sub(1).to_string());
        if is_utc(timing.zone) {
            writer.raw("DTSTART", &utc_stamp(timing.start));
            writer.raw("DTEND", &utc_stamp(timing.end));
        } else {
            let local = |at: chrono::DateTime<Utc>| local_stamp(at.with_timezone(&timing.zone).naive_local());
            let zone = format!("TZID={}", timing.zone.name());
            writer.raw(&format!("DTSTART;{zone}"), &local(timing.start));
            writer.raw(&format!("DTEND;{zone}"), &local(timing.end));
        }
        if let Some(rule) = &timing.rule {
            writer.raw("RRULE", rule);
        }
        writer.text("SUMMARY", text("title").unwrap_or("(no title)"));
        if let Some(description) = text("description") {
            writer.text("DESCRIPTION", description);
        }
        if let Some(location) = text("location") {
            writer.text("LOCATION", location);
        }
        if let Some(status) = text("status") {
            writer.raw("STATUS", &status.to_ascii_uppercase());
        }
        for attendee in body
            .get("attendees")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            // Written raw, so only what the attendee check accepts today (an address stored
            // before it was strict could carry `;` or `:` into the line).
            .filter_map(|attendee| Email::parse(attendee).ok())
        {
            writer.raw("ATTENDEE;ROLE=REQ-PARTICIPANT", &format!("mailto:{attendee}"));
        }
        writer.end("VEVENT");
    }
    writer.end("VCALENDAR");
    writer.finish()
}

async fn serve_feed(call: Call) -> Result<Reply, ApiError> {
    let mut call = call;
    let token = call.path_param("token")?.to_owned();
    let missing =
        || ApiError::NotFound("There is no calendar feed at this address (the link may have been rotated).".into());
    if !plausible_token(&token) {
        return Err(missing());
    }
    let pointer = keys::public_pointer(POINTER_KIND, &token_hash(&token));
    let found = call
        .engine
        .store()
        .get(&pointer.pk, &pointer.sk)
        .await?
        .ok_or_else(missing)?;
    let space = found
        .body
        .get("space_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Internal("calendar feed pointer without a space".into()))?;
    space_http::public::enter_space(&mut call, space, missing).await?;
    let (events, _) = all_events(&call).await?;
    let now = call.engine.now();
    let text = space_http::cpu::run(move |_| calendar(&events, now)).await?;
    Ok(Reply::raw(StatusCode::OK, "text/calendar; charset=utf-8", text)
        .with_header("content-disposition", "inline; filename=\"calendar.ics\"")
        .with_header("cache-control", "private, max-age=300")
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer"))
}

pub fn operations() -> Vec<Operation> {
    vec![
        Operation::new(
            "calendar_feed_get",
            Method::GET,
            "/calendar/ical-token",
            Access::Space(Scope::new(Domain::Calendar, Action::Read)),
            Effect::Read,
            "The Space's secret iCal feed URL (read-only, for calendar apps)",
            handler(show),
        )
        .answers(StatusCode::OK, feed_schema),
        Operation::new(
            "calendar_feed_rotate",
            Method::POST,
            "/calendar/ical-token/rotate",
            Access::Space(Scope::new(Domain::Calendar, Action::Write)),
            Effect::Update,
            "Create or replace the iCal feed URL; the old URL stops working at once",
            handler(rotate),
        )
        .with_no_input()
        .answers(StatusCode::OK, feed_schema),
        Operation::new(
            "calendar_feed_disable",
            Method::DELETE,
            "/calendar/ical-token",
            Access::Space(Scope::new(Domain::Calendar, Action::Write)),
            Effect::Delete,
            "Turn the iCal feed off; its URL stops working at once",
            handler(disable),
        )
        .answers_no_content(),
        Operation::new(
            "calendar_public_feed",
            Method::GET,
            "/c/{token}/calendar.ics",
            Access::Public {
                per_minute: FEED_PER_MINUTE,
            },
            Effect::Read,
            "The calendar as an iCal feed (text/calendar), for the holder of the secret URL",
            handler(serve_feed),
        )
        .with_params(vec![Param::path("token", "The secret feed token.")])
        .answers_as(StatusCode::OK, &["text/calendar"]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(body: Value) -> Item {
        let mut item = Item::new(
            "p",
            body["id"].as_str().unwrap_or("calev_1"),
            body.as_object().cloned().unwrap_or_default(),
        );
        item.version = 2;
        item
    }

    #[test]
    fn tokens_are_long_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(plausible_token(&a), "{a}");
        assert!(!plausible_token("short"));
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn the_feed_is_rfc_5545_shaped() {
        let events = [
            item(json!({
                "id": "calev_a", "title": "Standup, daily; really", "start": "2099-03-02T09:00:00.000Z", "end": "2099-03-02T09:15:00.000Z",
                "time_zone": "Europe/Berlin", "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10", "attendees": ["ada@example.com"],
                "status": "confirmed", "created_at": "2026-11-22T10:00:00.000Z", "updated_at": "2026-11-22T11:00:00.000Z"
            })),
            item(
                json!({"id": "calev_b", "title": "Launch", "start": "2099-03-05T15:00:00.000Z", "end": "2099-03-05T16:00:00.000Z", "time_zone": "UTC"}),
            ),
        ];
        let text = calendar(&events, Utc::now());
        assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'), "bare LF");
        assert!(
            text.contains("DTSTART;TZID=Europe/Berlin:20990302T100000\r\n"),
            "{text}"
        );
        assert!(text.contains("SUMMARY:Standup\\, daily\\; really\r\n"));
        assert!(text.contains("RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10\r\n"));
        assert!(text.contains("DTSTART:20990305T150000Z\r\n"));
        assert!(text.contains("SEQUENCE:1\r\n"));
        assert!(text.contains("ATTENDEE;ROLE=REQ-PARTICIPANT:mailto:ada@example.com\r\n"));
        assert_eq!(text.matches("BEGIN:VTIMEZONE").count(), 1);
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
    }

    #[test]
    fn a_feed_without_events_is_still_a_calendar() {
        let text = calendar(&[], Utc::now());
        assert!(text.contains("BEGIN:VCALENDAR") && text.contains("END:VCALENDAR"));
        assert!(!text.contains("VEVENT"));
    }
}
