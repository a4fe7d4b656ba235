//! The public booking page, without a key: `GET /b/{id}` (a small HTML page that works in
//! an iframe), `GET /b/{id}/slots` (free times as JSON) and `POST /b/{id}/book`. The page
//! id leads to its Space through the public pointer; nothing else of the Space is reachable.

use std::sync::LazyLock;

use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use futures::future::join_all;
use http::{Method, StatusCode};
use maud::{PreEscaped, html};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use space_http::fields::{WriteMode, body_schema, format_datetime, parse_datetime, validate};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, Operation};
use space_store::Item;

use crate::appointments::{Source, Terms, book};
use crate::availability::parse_zone;
use crate::limits::{PageBooking, PageLimits};
use crate::pages::{POINTER_KIND, title_of};
use crate::slots::{self, MAX_BLOCK_MINUTES, slice_name};
use crate::{PAGE_PREFIX, appointment_types, booking_fields, booking_pages};

/// Requests per client address and minute. The engine keeps one counter per address for
/// every public route, and each route compares it with its own limit: a visitor may load
/// the page and browse slots freely, and still book after a few dozen requests.
const PAGE_PER_MINUTE: u32 = 60;
const SLOTS_PER_MINUTE: u32 = 120;
const BOOK_PER_MINUTE: u32 = 30;
/// The widest range one slots request covers, and the most slots it lists.
const MAX_RANGE_DAYS: i64 = 31;
const DEFAULT_RANGE_DAYS: i64 = 7;
const MAX_SLOTS: usize = 500;

/// Finds the page and puts the call inside its Space; 404 for anything unknown.
async fn open_page(call: &mut Call) -> Result<Item, ApiError> {
    let id = call.path_param("booking_page_id")?.to_owned();
    let missing = || ApiError::NotFound(format!("There is no booking page `{id}`."));
    if !space_http::ids::has_shape(&id, PAGE_PREFIX) {
        return Err(missing());
    }
    let pointer = keys::public_pointer(POINTER_KIND, &id);
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
        .ok_or_else(|| ApiError::Internal(format!("booking page pointer {id} has no space")))?;
    space_http::public::enter_space(call, space, missing).await?;
    booking_pages().load(call, &id).await.map_err(|error| match error {
        ApiError::NotFound(_) => missing(),
        other => other,
    })
}

fn offered(page: &Item) -> Vec<String> {
    page.body
        .get("appointment_type_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The appointment type a visitor asked for: one the page offers (the only one when the
/// page offers one and none is named).
async fn chosen_type(call: &Call, page: &Item, asked: Option<&str>) -> Result<Item, ApiError> {
    let ids = offered(page);
    let id = match (asked, ids.as_slice()) {
        (Some(id), _) => id.to_owned(),
        (None, [only]) => only.clone(),
        (None, []) => {
            return Err(ApiError::NotFound(
                "This booking page offers nothing to book yet.".into(),
            ));
        }
        (None, _) => {
            return Err(ApiError::invalid_field(
                "appointment_type_id",
                format!(
                    "this page offers several appointment types; name one of {}",
                    ids.join(", ")
                ),
            ));
        }
    };
    let not_offered = || {
        ApiError::invalid_field(
            "appointment_type_id",
            format!("`{id}` is not offered on this booking page"),
        )
    };
    if !ids.contains(&id) {
        return Err(not_offered());
    }
    appointment_types().load(call, &id).await.map_err(|error| match error {
        ApiError::NotFound(_) => not_offered(),
        other => other,
    })
}

fn public_type(item: &Item) -> Value {
    let mut view = Map::new();
    view.insert("id".into(), json!(item.sk));
    for field in ["name", "description", "duration_minutes", "time_zone"] {
        if let Some(value) = item.body.get(field) {
            view.insert(field.into(), value.clone());
        }
    }
    Value::Object(view)
}

fn page_zone(page: &Item) -> Tz {
    page.body
        .get("time_zone")
        .and_then(Value::as_str)
        .and_then(parse_zone)
        .unwrap_or(Tz::UTC)
}

fn instant_param(call: &Call, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match call.query_param(name) {
        None | Some("") => Ok(None),
        Some(raw) => parse_datetime(raw)
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(name, "must be an RFC 3339 date-time, like 2099-03-02T00:00:00Z")),
    }
}

async fn slots_handler(call: Call) -> Result<Reply, ApiError> {
    let mut call = call;
    let page = open_page(&mut call).await?;
    let type_item = chosen_type(
        &call,
        &page,
        call.query_param("appointment_type_id").filter(|id| !id.is_empty()),
    )
    .await?;
    let terms = Terms::of(&type_item)?;
    let now = call.engine.now();
    let from = instant_param(&call, "from")?.unwrap_or(now);
    let to = instant_param(&call, "to")?.unwrap_or(from + TimeDelta::days(DEFAULT_RANGE_DAYS));
    if to <= from {
        return Err(ApiError::invalid_field("to", "must be after `from`"));
    }
    if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
        return Err(ApiError::invalid_field(
            "to",
            format!("a request covers at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let earliest = from.max(now);
    let candidates = if earliest < to {
        terms
            .week
            .starts_between(terms.zone, earliest, to, terms.duration, terms.step)
    } else {
        Vec::new()
    };
    let margin = TimeDelta::minutes(MAX_BLOCK_MINUTES);
    let taken = slots::taken(call.engine.store(), call.space_id()?, earliest - margin, to + margin).await?;
    let zone = page_zone(&page);
    let mut free = Vec::new();
    let mut truncated = false;
    for start in candidates.into_iter().filter(|start| *start > now) {
        let end = start + terms.duration;
        let blocked = slots::slices(start - terms.before, end + terms.after);
        if blocked.iter().any(|at| taken.contains(&slice_name(*at))) {
            continue;
        }
        if free.len() == MAX_SLOTS {
            truncated = true;
            break;
        }
        free.push(json!({
            "start": format_datetime(start),
            "end": format_datetime(end),
            "local_start": start.with_timezone(&zone).to_rfc3339(),
        }));
    }
    Ok(Reply::ok(json!({
        "booking_page_id": page.sk,
        "appointment_type": public_type(&type_item),
        "time_zone": zone.name(),
        "from": format_datetime(from),
        "to": format_datetime(to),
        "slots": free,
        "truncated": truncated,
    })))
}

async fn book_handler(call: Call) -> Result<Reply, ApiError> {
    let mut call = call;
    let page = open_page(&mut call).await?;
    // The API's booking fields, with the type optional when the page offers one.
    let mut fields = booking_fields();
    for field in &mut fields {
        if field.name == "appointment_type_id" {
            field.required = false;
        }
    }
    let checked = validate(&fields, &call.body, WriteMode::Create)
        .map_err(ApiError::validation)?
        .set;
    let asked = checked.get("appointment_type_id").and_then(Value::as_str);
    let type_item = chosen_type(&call, &page, asked).await?;
    let start = checked
        .get("start")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
        .ok_or_else(|| ApiError::invalid_field("start", "must be an RFC 3339 date-time"))?;
    let contact = checked.get("contact").cloned().unwrap_or(Value::Null);
    let item = book(
        &call,
        &type_item.sk,
        start,
        contact,
        checked.get("notes").cloned(),
        Source::BookingPage(PageBooking {
            page_id: page.sk.clone(),
            limits: PageLimits::of(&page),
        }),
    )
    .await?;
    let mut view = Map::new();
    for field in [
        "id",
        "appointment_type_id",
        "appointment_type_name",
        "start",
        "end",
        "time_zone",
        "status",
        "contact",
    ] {
        if let Some(value) = item.body.get(field) {
            view.insert(field.into(), value.clone());
        }
    }
    Ok(Reply::created(Value::Object(view)))
}

const SCRIPT: &str = include_str!("booking.js");
const STYLE: &str = include_str!("booking.css");

/// The page's Content-Security-Policy: only its own script and style, requests only to
/// this origin, embeddable anywhere (it is a widget).
static POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes()));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *",
        hash(SCRIPT),
        hash(STYLE)
    )
});

/// The page's data as JSON inside `<script type="application/json">`. A script element's
/// text is not HTML (entities are not decoded), so maud's escaping does not apply there:
/// `<`, `>` and `&` become JSON's own `\u` escapes instead, which keeps the JSON valid and
/// leaves nothing that could end the element.
fn script_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The booking page: its title and description escaped by maud; its own style sheet and
/// script as they are (the CSP allows exactly these, by hash); the data its script reads.
fn page_html(title: &str, description: &str, data: &Value) -> String {
    html! {
        (PreEscaped("<!doctype html>\n"))
        html lang="en" {
            "\n"
            head {
                "\n"
                meta charset="utf-8";
                "\n"
                meta name="viewport" content="width=device-width, initial-scale=1";
                "\n"
                title { (title) }
                "\n"
                style { (PreEscaped(STYLE)) }
                "\n"
            }
            "\n"
            body {
                "\n"
                main {
                    "\n"
                    h1 { (title) }
                    "\n"
                    p class="about" { (description) }
                    "\n"
                    label id="type-row" { "What " select id="type" {} }
                    "\n"
                    p class="zone" { "Times in " span id="zone" {} }
                    "\n"
                    div id="slots" aria-live="polite" {}
                    "\n"
                    form id="form" hidden {
                        "\n"
                        p { "Booking " strong id="chosen" {} }
                        "\n"
                        label { "Email " input id="email" type="email" required autocomplete="email"; }
                        "\n"
                        label { "Name " input id="name" autocomplete="name"; }
                        "\n"
                        button type="submit" { "Book" }
                        "\n"
                    }
                    "\n"
                    p id="message" role="status" {}
                    "\n"
                }
                "\n"
                script type="application/json" id="booking-data" { (PreEscaped(script_json(data))) }
                "\n"
                script { (PreEscaped(SCRIPT)) }
                "\n"
            }
            "\n"
        }
        "\n"
    }
    .into_string()
}

async fn page_handler(call: Call) -> Result<Reply, ApiError> {
    let mut call = call;
    let page = open_page(&mut call).await?;
    let types_resource = appointment_types();
    let ids = offered(&page);
    let loaded = join_all(ids.iter().map(|id| types_resource.load(&call, id))).await;
    let types: Vec<Value> = loaded
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .map(public_type)
        .collect();
    let title = title_of(&page.body);
    let description = page.body.get("description").and_then(Value::as_str).unwrap_or_default();
    let data = json!({
        "id": page.sk,
        "title": title,
        "time_zone": page_zone(&page).name(),
        "types": types,
        "slots_url": format!("/b/{}/slots", page.sk),
        "book_url": format!("/b/{}/book", page.sk),
    });
    let html = page_html(title, description, &data);
    Ok(Reply::raw(StatusCode::OK, "text/html; charset=utf-8", html)
        .with_header("content-security-policy", POLICY.as_str())
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
        .with_header("cache-control", "no-store"))
}

fn slots_schema() -> Value {
    json!({
        "type": "object",
        "required": ["booking_page_id", "appointment_type", "time_zone", "from", "to", "slots", "truncated"],
        "properties": {
            "booking_page_id": {"type": "string"},
            "appointment_type": {"type": "object"},
            "time_zone": {"type": "string", "description": "The page's time zone; `local_start` is in it."},
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "slots": {"type": "array", "items": {
                "type": "object",
                "required": ["start", "end", "local_start"],
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "local_start": {"type": "string", "format": "date-time"}
                }
            }},
            "truncated": {"type": "boolean", "description": "More free slots exist in the range than were listed."}
        }
    })
}

pub fn operations() -> Vec<Operation> {
    let page_id = || Param::path("booking_page_id", "The booking page's id.");
    let book_body = || {
        let mut schema = body_schema(&booking_fields(), WriteMode::Create);
        schema["required"] = json!(["start", "contact"]);
        schema
    };
    vec![
        Operation::new(
            "booking_public_page",
            Method::GET,
            "/b/{booking_page_id}",
            Access::Public {
                per_minute: PAGE_PER_MINUTE,
            },
            Effect::Read,
            "The public booking page (HTML): pick a free time and book it, no key needed",
            handler(page_handler),
        )
        .with_params(vec![page_id()])
        .answers_as(StatusCode::OK, &["text/html"]),
        Operation::new(
            "booking_public_slots",
            Method::GET,
            "/b/{booking_page_id}/slots",
            Access::Public {
                per_minute: SLOTS_PER_MINUTE,
            },
            Effect::Read,
            "Free slots of a booking page's appointment type (JSON), no key needed",
            handler(slots_handler),
        )
        .with_params(vec![
            page_id(),
            Param::query(
                "appointment_type_id",
                json!({"type": "string"}),
                "Which type; optional when the page offers one.",
            ),
            Param::query(
                "from",
                json!({"type": "string", "format": "date-time"}),
                "Start of the range (default: now).",
            ),
            Param::query(
                "to",
                json!({"type": "string", "format": "date-time"}),
                format!(
                    "End of the range (default: {DEFAULT_RANGE_DAYS} days after `from`; at most {MAX_RANGE_DAYS} days)."
                ),
            ),
        ])
        .answers(StatusCode::OK, slots_schema),
        Operation::new(
            "booking_public_book",
            Method::POST,
            "/b/{booking_page_id}/book",
            Access::Public {
                per_minute: BOOK_PER_MINUTE,
            },
            Effect::Create,
            "Book a free slot on a booking page, no key needed (409 when it was just taken; 422 naming `contact` when the address holds as many upcoming appointments as the page allows; 429 when the page's bookings per hour are spent)",
            handler(book_handler),
        )
        .with_params(vec![page_id()])
        .with_body(book_body)
        .answers(StatusCode::CREATED, || {
            json!({
                "type": "object",
                "required": ["id", "appointment_type_id", "start", "end", "status"],
                "properties": {
                    "id": {"type": "string"},
                    "appointment_type_id": {"type": "string"},
                    "appointment_type_name": {"type": "string"},
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "time_zone": {"type": "string"},
                    "status": {"type": "string"},
                    "contact": {"type": "object"}
                }
            })
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The markup is the one the page carried before maud wrote it, byte for byte: the CSP
    /// hashes of its style and script still match what it holds.
    #[test]
    fn the_booking_page_keeps_its_markup() {
        let data = json!({"id": "bpage_1", "title": "Book <Ada> & co", "types": []});
        let expected = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>Book &lt;Ada&gt; &amp; co</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n<h1>Book &lt;Ada&gt; &amp; co</h1>\n<p class=\"about\">Say &quot;hi&quot;</p>\n\
             <label id=\"type-row\">What <select id=\"type\"></select></label>\n<p class=\"zone\">Times in <span id=\"zone\"></span></p>\n\
             <div id=\"slots\" aria-live=\"polite\"></div>\n\
             <form id=\"form\" hidden>\n<p>Booking <strong id=\"chosen\"></strong></p>\n\
             <label>Email <input id=\"email\" type=\"email\" required autocomplete=\"email\"></label>\n\
             <label>Name <input id=\"name\" autocomplete=\"name\"></label>\n<button type=\"submit\">Book</button>\n</form>\n\
             <p id=\"message\" role=\"status\"></p>\n</main>\n<script type=\"application/json\" id=\"booking-data\">{{\"id\":\"bpage_1\",\"title\":\"Book \\u003cAda\\u003e \\u0026 co\",\"types\":[]}}</script>\n\
             <script>{SCRIPT}</script>\n</body>\n</html>\n"
        );
        assert_eq!(page_html("Book <Ada> & co", "Say \"hi\"", &data), expected);
    }
}
