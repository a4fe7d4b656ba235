//! Calendar end to end on both backends: events and their validation, recurrences
//! expanded in a range (in the event's time zone, across DST), the iCal feed parsed back
//! as RFC 5545, and token rotation killing the old feed URL at once.

use std::collections::HashMap;

use icalendar::parser::{Component, read_calendar, unfold};
use reqwest::Method;
use serde_json::{Value, json};
use space_auth::Action;
use space_http::operation::Access;
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    events_are_validated_and_edited,
    recurrences_expand_inside_the_range,
    expansion_is_capped_per_request,
    rules_that_repeat_more_than_hourly_are_refused,
    old_rules_expand_from_the_window,
    counted_series_know_their_last_occurrence,
    expansion_past_its_budget_asks_for_a_narrower_range,
    the_ical_feed_parses_back_as_rfc_5545,
    attendees_that_would_break_the_feed_are_refused_and_never_written,
    rotating_the_token_kills_the_old_url_at_once,
    every_route_needs_its_scope_and_the_right_space,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn event(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/calendar/events")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

fn starts(listing: &Value) -> Vec<String> {
    listing["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| o["start"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn events_are_validated_and_edited(app: TestApp) {
    let created = event(
        &app,
        json!({"title": "Kickoff", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z",
               "attendees": ["Ada@Example.com", "grace@example.com", "ada@example.com"], "location": "Room 1"}),
    )
    .await;
    let event_id = id(&created);
    assert!(event_id.starts_with("calev_"));
    assert_eq!(created["time_zone"], "UTC");
    assert_eq!(created["status"], "confirmed");
    assert_eq!(created["attendees"], json!(["ada@example.com", "grace@example.com"]));
    for (body, field) in [
        (
            json!({"title": "x", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T09:00:00Z"}),
            "end",
        ),
        (
            json!({"title": "x", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z", "time_zone": "Moon/Base"}),
            "time_zone",
        ),
        (
            json!({"title": "x", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z", "recurrence": "FREQ=SOMETIMES"}),
            "recurrence",
        ),
        (
            json!({"title": "x", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z", "recurrence": "FREQ=MINUTELY"}),
            "recurrence",
        ),
        (
            json!({"title": "x", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z", "recurrence": "FREQ=DAILY;UNTIL=20990101T000000Z"}),
            "recurrence",
        ),
        (
            json!({"title": "x", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z", "attendees": ["not an email"]}),
            "attendees",
        ),
        (
            json!({"title": "x", "start": "soon", "end": "2099-03-02T11:00:00Z"}),
            "start",
        ),
        (
            json!({"start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z"}),
            "title",
        ),
    ] {
        let response = app
            .space(Method::POST, "/calendar/events")
            .json(body.clone())
            .send()
            .await
            .expect(422);
        assert!(
            response.body["error"]["fields"][field].is_array(),
            "{body}: {}",
            response.text
        );
    }
    let path = format!("/calendar/events/{event_id}");
    // A PATCH is checked against the whole event: moving the end before the start is refused.
    app.space(Method::PATCH, &path)
        .json(json!({"end": "2099-03-02T09:00:00Z"}))
        .send()
        .await
        .expect(422);
    let patched = app
        .space(Method::PATCH, &path)
        .json(json!({"recurrence": "rrule:freq=weekly;count=3", "time_zone": "Europe/Berlin"}))
        .send()
        .await
        .expect(200);
    assert_eq!(patched.body["recurrence"], "FREQ=WEEKLY;COUNT=3");
    let replaced = app
        .space(Method::PUT, &path)
        .json(json!({"title": "Kickoff v2", "start": "2099-03-03T10:00:00Z", "end": "2099-03-03T11:00:00Z"}))
        .send()
        .await
        .expect(200);
    assert!(
        replaced.body.get("recurrence").is_none(),
        "PUT clears what it leaves out"
    );
    assert_eq!(replaced.body["version"], 3);
    app.space(Method::GET, &path).send().await.expect(200);
    event(&app, json!({"title": "Lunch", "start": "2099-03-04T12:00:00Z", "end": "2099-03-04T13:00:00Z", "attendees": ["bob@example.com"]})).await;
    let search = app
        .space(Method::GET, "/calendar/events?q=kickoff")
        .send()
        .await
        .expect(200);
    assert_eq!(search.body["data"].as_array().map(Vec::len), Some(1));
    let bobs = app
        .space(Method::GET, "/calendar/events?attendee=Bob@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(bobs.body["data"][0]["title"], "Lunch");
    let all = app.space(Method::GET, "/calendar/events").send().await.expect(200);
    assert_eq!(all.body["data"].as_array().map(Vec::len), Some(2));
    assert!(all.body["next_cursor"].is_null());
    app.space(Method::DELETE, &path).send().await.expect(204);
    app.space(Method::GET, &path).send().await.expect(404);
    let kinds = app.event_types().await;
    for kind in [
        "calendar_event.created",
        "calendar_event.updated",
        "calendar_event.deleted",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}");
    }
}

async fn recurrences_expand_inside_the_range(app: TestApp) {
    // Mondays and Wednesdays at 10:00 Berlin time, ten times, from Monday 2 March 2099.
    let series = event(
        &app,
        json!({"title": "Standup", "start": "2099-03-02T09:00:00Z", "end": "2099-03-02T09:15:00Z",
               "time_zone": "Europe/Berlin", "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10"}),
    )
    .await;
    event(
        &app,
        json!({"title": "Launch", "start": "2099-03-05T15:00:00Z", "end": "2099-03-05T16:00:00Z"}),
    )
    .await;
    event(
        &app,
        json!({"title": "Next year", "start": "2100-03-05T15:00:00Z", "end": "2100-03-05T16:00:00Z"}),
    )
    .await;

    let all = app
        .space(
            Method::GET,
            "/calendar/events?from=2099-03-01T00:00:00Z&to=2099-05-01T00:00:00Z",
        )
        .send()
        .await
        .expect(200);
    let found = starts(&all.body);
    assert_eq!(found.len(), 11, "{found:?}");
    assert_eq!(all.body["truncated"], false);
    let standups: Vec<&Value> = all.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["title"] == "Standup")
        .collect();
    assert_eq!(standups.len(), 10);
    assert_eq!(standups[0]["start"], "2099-03-02T09:00:00.000Z");
    assert_eq!(standups[0]["end"], "2099-03-02T09:15:00.000Z");
    assert_eq!(standups[0]["id"], series["id"]);
    assert_eq!(standups[0]["recurrence_id"], "2099-03-02T09:00:00.000Z");
    // Berlin moves to summer time on 29 March 2099: still 10:00 local, now 08:00 UTC.
    assert_eq!(standups[8]["start"], "2099-03-30T08:00:00.000Z");
    assert_eq!(standups[9]["start"], "2099-04-01T08:00:00.000Z");
    // In start order, the one-off among them.
    assert_eq!(found[2], "2099-03-05T15:00:00.000Z");

    let window = app
        .space(
            Method::GET,
            "/calendar/events?from=2099-03-10T00:00:00Z&to=2099-03-17T00:00:00Z",
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        starts(&window.body),
        ["2099-03-11T09:00:00.000Z", "2099-03-16T09:00:00.000Z"]
    );
    // An occurrence still running at `from` overlaps the range.
    let overlap = app
        .space(
            Method::GET,
            "/calendar/events?from=2099-03-02T09:10:00Z&to=2099-03-02T09:20:00Z",
        )
        .send()
        .await
        .expect(200);
    assert_eq!(starts(&overlap.body), ["2099-03-02T09:00:00.000Z"]);

    // The list filters still apply to a range.
    let launches = app
        .space(
            Method::GET,
            "/calendar/events?from=2099-03-01T00:00:00Z&to=2099-05-01T00:00:00Z&q=LAUNCH",
        )
        .send()
        .await
        .expect(200);
    assert_eq!(starts(&launches.body), ["2099-03-05T15:00:00.000Z"]);
    let bad = app
        .space(
            Method::GET,
            "/calendar/events?from=2099-03-01T00:00:00Z&to=2099-05-01T00:00:00Z&status=maybe&attendee=nope",
        )
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["status"].is_array() && bad.body["error"]["fields"]["attendee"].is_array());

    for query in [
        "from=2099-03-01T00:00:00Z",
        "to=2099-03-01T00:00:00Z",
        "from=2099-03-02T00:00:00Z&to=2099-03-01T00:00:00Z",
        "from=2099-01-01T00:00:00Z&to=2101-01-01T00:00:00Z",
        "from=monday&to=friday",
    ] {
        app.space(Method::GET, &format!("/calendar/events?{query}"))
            .send()
            .await
            .expect(422);
    }
}

async fn expansion_is_capped_per_request(app: TestApp) {
    event(&app, json!({"title": "Ping", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T10:05:00Z", "recurrence": "FREQ=HOURLY"})).await;
    let listed = app
        .space(
            Method::GET,
            "/calendar/events?from=2099-03-01T00:00:00Z&to=2099-06-01T00:00:00Z",
        )
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1000));
    assert_eq!(listed.body["truncated"], true);
}

async fn rules_that_repeat_more_than_hourly_are_refused(app: TestApp) {
    let dense = [
        "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;\
         BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29;BYSECOND=0,30",
        "FREQ=HOURLY;BYMINUTE=0,30",
        "FREQ=MINUTELY;INTERVAL=60",
        "FREQ=WEEKLY;BYMINUTE=1,2;BYSETPOS=1,2",
    ];
    for rule in dense {
        let refused = app
            .space(Method::POST, "/calendar/events")
            .json(json!({"title": "Spam", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z", "recurrence": rule}))
            .send()
            .await
            .expect(422);
        let message = refused.body["error"]["fields"]["recurrence"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("hour"), "{rule}: {message}");
    }
    let never = app
        .space(Method::POST, "/calendar/events")
        .json(
            json!({"title": "Never", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z",
                     "recurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}),
        )
        .send()
        .await
        .expect(422);
    assert!(never.body["error"]["fields"]["recurrence"].is_array());

    let created = event(
        &app,
        json!({"title": "Weekly", "start": "2026-01-05T09:00:00Z", "end": "2026-01-05T10:00:00Z", "recurrence": "FREQ=WEEKLY"}),
    )
    .await;
    let path = format!("/calendar/events/{}", id(&created));
    app.space(Method::PATCH, &path)
        .json(json!({"recurrence": "FREQ=HOURLY;BYSECOND=0,1"}))
        .send()
        .await
        .expect(422);
    let unchanged = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(unchanged.body["recurrence"], "FREQ=WEEKLY");
    assert_eq!(unchanged.body["version"], 1);
}

/// An hourly rule started 50 years before the range lists exactly the range's hours, and
/// 100 of them answer at once: expansion starts at the range, not at the first start.
async fn old_rules_expand_from_the_window(app: TestApp) {
    for n in 0..100 {
        event(
            &app,
            json!({"title": format!("Tick {n}"), "start": "2026-01-01T00:15:00Z", "end": "2026-01-01T00:45:00Z",
                   "time_zone": "Europe/Berlin", "recurrence": "FREQ=HOURLY;INTERVAL=5"}),
        )
        .await;
    }
    let listed = app
        .space(
            Method::GET,
            "/calendar/events?from=2076-03-02T00:00:00Z&to=2076-03-03T00:00:00Z&q=tick%207",
        )
        .send()
        .await
        .expect(200);
    // Tick 7 and Tick 70..79; every five hours from 2026-01-01T01:15 Berlin.
    let ticks = starts(&listed.body);
    assert_eq!(listed.body["truncated"], false);
    assert_eq!(ticks.len(), 11 * 5, "{ticks:?}");
    let hours: std::collections::BTreeSet<&str> = ticks.iter().map(|s| &s[11..16]).collect();
    // 2026-01-01T00:15Z + 5 h × k lands on 2076-03-02 at these UTC hours (18,262 days later).
    assert_eq!(
        hours.into_iter().collect::<Vec<_>>(),
        ["03:15", "08:15", "13:15", "18:15", "23:15"]
    );
    let all = app
        .space(
            Method::GET,
            "/calendar/events?from=2076-01-01T00:00:00Z&to=2076-12-31T00:00:00Z",
        )
        .send()
        .await
        .expect(200);
    assert_eq!(all.body["data"].as_array().map(Vec::len), Some(1000));
    assert_eq!(all.body["truncated"], true);
    // Hourly rules step in the zone's local time: 03:15 Berlin (CET) is 02:15 UTC.
    assert_eq!(
        starts(&all.body)[0],
        "2076-01-01T02:15:00.000Z",
        "the earliest occurrences come first"
    );
}

/// The starts a range listing returns.
async fn listed_starts(app: &TestApp, from: &str, to: &str) -> Vec<String> {
    let listed = app
        .space(Method::GET, &format!("/calendar/events?from={from}&to={to}"))
        .send()
        .await
        .expect(200);
    starts(&listed.body)
}

async fn counted_series_know_their_last_occurrence(app: TestApp) {
    let created = event(
        &app,
        json!({"title": "Course", "start": "2026-01-05T09:00:00Z", "end": "2026-01-05T10:00:00Z",
               "time_zone": "America/New_York", "recurrence": "FREQ=WEEKLY;BYDAY=MO;COUNT=1000"}),
    )
    .await;
    // 999 weeks after the first Monday, still 04:00 New York (EST).
    assert_eq!(created["recurrence_last_start"], "2045-02-27T09:00:00.000Z");
    let none: Vec<String> = Vec::new();
    assert_eq!(
        listed_starts(&app, "2045-03-01T00:00:00Z", "2045-04-01T00:00:00Z").await,
        none,
        "the series ended in February"
    );
    assert_eq!(
        listed_starts(&app, "2045-02-20T00:00:00Z", "2045-04-01T00:00:00Z").await,
        ["2045-02-20T09:00:00.000Z", "2045-02-27T09:00:00.000Z"]
    );
    assert_eq!(
        listed_starts(&app, "2040-07-01T00:00:00Z", "2040-07-10T00:00:00Z").await,
        ["2040-07-02T08:00:00.000Z", "2040-07-09T08:00:00.000Z"]
    );
    assert_eq!(
        listed_starts(&app, "2045-02-28T00:00:00Z", "2046-01-01T00:00:00Z").await,
        none
    );

    let path = format!("/calendar/events/{}", id(&created));
    let endless = app
        .space(Method::PATCH, &path)
        .json(json!({"recurrence": "FREQ=WEEKLY;BYDAY=MO"}))
        .send()
        .await
        .expect(200);
    assert!(endless.body.get("recurrence_last_start").is_none());
    let refused = app
        .space(Method::PATCH, &path)
        .json(json!({"recurrence_last_start": "2030-01-01T00:00:00Z"}))
        .send()
        .await;
    assert_eq!(refused.status, 422, "the derived field is not writable");
}

/// Counted rules stored before their last occurrence was kept are walked from their first
/// start; 201 of them need more work than one listing may do, and the answer says so.
async fn expansion_past_its_budget_asks_for_a_narrower_range(app: TestApp) {
    let created = event(
        &app,
        json!({"title": "Old", "start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:30:00Z", "recurrence": "FREQ=HOURLY;COUNT=1000"}),
    )
    .await;
    let store = app.engine.store();
    let stored = store
        .query(space_store::Query::partition(space_http::keys::collection_partition(
            &app.demo.space_id,
            "calendar_events",
        )))
        .await
        .expect("a query");
    let template = stored
        .items
        .into_iter()
        .find(|item| item.sk == id(&created))
        .expect("the event");
    for n in 0..200 {
        let mut item = template.clone();
        item.sk = format!("calev_old{n:04}");
        item.body.insert("id".into(), json!(item.sk));
        item.body.remove("recurrence_last_start");
        store.put(item, space_store::Condition::None).await.expect("a put");
    }
    let refused = app
        .space(
            Method::GET,
            "/calendar/events?from=2027-01-01T00:00:00Z&to=2027-02-01T00:00:00Z",
        )
        .send()
        .await
        .expect(422);
    let message = refused.body["error"]["fields"]["to"][0].as_str().unwrap_or_default();
    assert!(message.contains("narrow the range"), "{message}");
    // A range the series reach is cheap: each walk stops at the range.
    app.space(
        Method::GET,
        "/calendar/events?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
    )
    .send()
    .await
    .expect(200);
}

/// The feed's text, checked line by line: CRLF endings only, at most 75 octets a line.
fn check_lines(text: &str) {
    assert!(text.ends_with("\r\n"));
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "a bare CR or LF");
    for line in text.split("\r\n") {
        assert!(line.len() <= 75, "{} octets: {line}", line.len());
    }
}

fn property<'a>(component: &'a Component<'_>, name: &str) -> Option<&'a icalendar::parser::Property<'a>> {
    component.properties.iter().find(|p| p.name.as_str() == name)
}

fn value(component: &Component<'_>, name: &str) -> String {
    property(component, name)
        .map(|p| p.val.as_str().to_owned())
        .unwrap_or_default()
}

/// Addresses RFC 5322 allows but iCal reads differently: a quoted local part with `;` and
/// `:` becomes new parameters of the ATTENDEE line.
const HOSTILE_ATTENDEES: &[&str] = &[
    "\"x;ROLE=CHAIR:mailto:boss\"@example.com",
    "\"ada\"@example.com",
    "Ada <ada@example.com>",
    "ada@example.com (Ada)",
    "ada,grace@example.com",
    "ada@example.com\r\nATTENDEE:mailto:eve@example.com",
    "ada@[127.0.0.1]",
];

async fn attendees_that_would_break_the_feed_are_refused_and_never_written(app: TestApp) {
    let times = json!({"title": "Call", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z"});
    for hostile in HOSTILE_ATTENDEES {
        let mut body = times.clone();
        body["attendees"] = json!(["grace@example.com", hostile]);
        let refused = app
            .space(Method::POST, "/calendar/events")
            .json(body)
            .send()
            .await
            .expect(422);
        assert!(
            refused.body["error"]["fields"]["attendees"].is_array(),
            "{hostile}: {}",
            refused.text
        );
        let listed = app.space(Method::GET, "/calendar/events").send().await.expect(200);
        assert_eq!(listed.body["data"], json!([]), "{hostile} was stored");
    }
    // An event stored before the check was strict still never writes such a line.
    let created = event(
        &app,
        json!({"title": "Call", "start": "2099-03-02T10:00:00Z", "end": "2099-03-02T11:00:00Z",
                                     "attendees": ["grace@example.com"]}),
    )
    .await;
    let store = app.engine.store();
    let partition = space_http::keys::collection_partition(&app.demo.space_id, "calendar_events");
    let mut stored = store
        .get(&partition, &id(&created))
        .await
        .unwrap()
        .expect("the event is stored");
    let mut attendees = vec![json!("grace@example.com")];
    attendees.extend(HOSTILE_ATTENDEES.iter().map(|a| json!(a)));
    stored.body.insert("attendees".into(), Value::Array(attendees));
    stored.version += 1;
    store.put(stored, space_store::Condition::None).await.unwrap();
    let rotated = app
        .space(Method::POST, "/calendar/ical-token/rotate")
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let url = rotated.body["url"].as_str().unwrap_or_default().to_owned();
    let feed = app.request(Method::GET, &url).send().await.expect(200);
    check_lines(&feed.text);
    let unfolded = unfold(&feed.text);
    let attendee_lines: Vec<&str> = unfolded.lines().filter(|l| l.starts_with("ATTENDEE")).collect();
    assert_eq!(
        attendee_lines,
        ["ATTENDEE;ROLE=REQ-PARTICIPANT:mailto:grace@example.com"],
        "{}",
        feed.text
    );
}

async fn the_ical_feed_parses_back_as_rfc_5545(app: TestApp) {
    let long = "A long description, with commas; semicolons and a backslash \\ and ünïcödé, \
                long enough to be folded more than once by the writer of the feed.\nSecond line.";
    event(
        &app,
        json!({"title": "Standup", "description": long, "start": "2099-03-02T09:00:00Z", "end": "2099-03-02T09:15:00Z",
               "time_zone": "Europe/Berlin", "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10",
               "attendees": ["ada@example.com", "grace@example.com"], "location": "Room 1"}),
    )
    .await;
    event(&app, json!({"title": "Launch", "start": "2099-03-05T15:00:00Z", "end": "2099-03-05T16:00:00Z", "status": "tentative"})).await;

    let shown = app.space(Method::GET, "/calendar/ical-token").send().await.expect(200);
    assert_eq!(shown.body["enabled"], false);
    assert!(shown.body["url"].is_null());
    let rotated = app
        .space(Method::POST, "/calendar/ical-token/rotate")
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let url = rotated.body["url"].as_str().unwrap_or_default().to_owned();
    assert!(
        url.starts_with(&format!("{}/c/", app.base)) && url.ends_with("/calendar.ics"),
        "{url}"
    );

    let feed = app.request(Method::GET, &url).send().await.expect(200);
    assert_eq!(feed.header("content-type"), Some("text/calendar; charset=utf-8"));
    check_lines(&feed.text);
    let unfolded = unfold(&feed.text);
    let calendar = read_calendar(&unfolded).unwrap_or_else(|error| panic!("the feed parses: {error}\n{}", feed.text));
    let top = |name: &str| {
        calendar
            .properties
            .iter()
            .find(|p| p.name.as_str() == name)
            .map(|p| p.val.as_str().to_owned())
    };
    assert_eq!(top("VERSION").as_deref(), Some("2.0"));
    assert!(top("PRODID").is_some());

    let zones: Vec<&Component> = calendar
        .components
        .iter()
        .filter(|c| c.name.as_str() == "VTIMEZONE")
        .collect();
    assert_eq!(zones.len(), 1);
    assert_eq!(value(zones[0], "TZID"), "Europe/Berlin");
    let observances: Vec<&str> = zones[0].components.iter().map(|c| c.name.as_str()).collect();
    assert!(
        observances.contains(&"DAYLIGHT") && observances.contains(&"STANDARD"),
        "{observances:?}"
    );

    let events: Vec<&Component> = calendar
        .components
        .iter()
        .filter(|c| c.name.as_str() == "VEVENT")
        .collect();
    assert_eq!(events.len(), 2);
    for event in &events {
        for required in ["UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY"] {
            assert!(property(event, required).is_some(), "{required} missing");
        }
        assert!(value(event, "UID").ends_with("@space-api"));
        assert!(value(event, "DTSTAMP").ends_with('Z'));
    }
    let standup = events
        .iter()
        .find(|e| value(e, "SUMMARY") == "Standup")
        .expect("the standup");
    let start = property(standup, "DTSTART").expect("DTSTART");
    assert_eq!(start.val.as_str(), "20990302T100000", "local time in its zone");
    let tzid = start
        .params
        .iter()
        .find(|p| p.key.as_str() == "TZID")
        .and_then(|p| p.val.as_ref())
        .map(|v| v.as_str().to_owned());
    assert_eq!(tzid.as_deref(), Some("Europe/Berlin"));
    assert_eq!(value(standup, "DTEND"), "20990302T101500");
    assert_eq!(value(standup, "RRULE"), "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10");
    assert_eq!(value(standup, "LOCATION"), "Room 1");
    let description = property(standup, "DESCRIPTION")
        .expect("a description")
        .val
        .clone()
        .unescape_text();
    assert_eq!(description.as_str(), long);
    let attendees: Vec<&str> = standup
        .properties
        .iter()
        .filter(|p| p.name.as_str() == "ATTENDEE")
        .map(|p| p.val.as_str())
        .collect();
    assert_eq!(attendees, ["mailto:ada@example.com", "mailto:grace@example.com"]);
    let launch = events
        .iter()
        .find(|e| value(e, "SUMMARY") == "Launch")
        .expect("the launch");
    assert_eq!(value(launch, "DTSTART"), "20990305T150000Z");
    assert_eq!(value(launch, "STATUS"), "TENTATIVE");
    assert!(property(launch, "RRULE").is_none());

    // The typed parser of the same crate reads it too.
    let typed: icalendar::Calendar = unfolded.parse().unwrap_or_else(|error| panic!("typed parse: {error}"));
    assert_eq!(typed.components.iter().filter(|c| c.as_event().is_some()).count(), 2);
}

async fn rotating_the_token_kills_the_old_url_at_once(app: TestApp) {
    event(
        &app,
        json!({"title": "Only event", "start": "2099-03-05T15:00:00Z", "end": "2099-03-05T16:00:00Z"}),
    )
    .await;
    let first = app
        .space(Method::POST, "/calendar/ical-token/rotate")
        .send()
        .await
        .expect(200);
    let old = first.body["url"].as_str().unwrap_or_default().to_owned();
    // Absolute, on the configured public origin; `webcal://` for calendar apps.
    assert!(old.starts_with(&format!("{}/c/", app.base)), "{old}");
    assert!(old.ends_with("/calendar.ics"), "{old}");
    assert_eq!(first.body["webcal_url"], old.replacen("http://", "webcal://", 1));
    app.request(Method::GET, &old).send().await.expect(200);

    let second = app
        .space(Method::POST, "/calendar/ical-token/rotate")
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let new = second.body["url"].as_str().unwrap_or_default().to_owned();
    assert_ne!(old, new);
    let gone = app.request(Method::GET, &old).send().await.expect(404);
    assert_eq!(gone.error_code(), "NOT_FOUND");
    let feed = app.request(Method::GET, &new).send().await.expect(200);
    assert!(feed.text.contains("SUMMARY:Only event"));
    let shown = app.space(Method::GET, "/calendar/ical-token").send().await.expect(200);
    assert_eq!(shown.body["url"], new);

    // Another Space's feed is its own: none of our events, and our URL is untouched.
    let (_, other) = app.other_space().await;
    let theirs = app
        .request(Method::POST, &format!("{SPACE_API}/calendar/ical-token/rotate"))
        .key(&other)
        .send()
        .await
        .expect(200);
    let their_feed = app
        .request(Method::GET, theirs.body["url"].as_str().unwrap_or_default())
        .send()
        .await
        .expect(200);
    assert!(!their_feed.text.contains("Only event"));
    app.request(Method::GET, &new).send().await.expect(200);

    // Made-up tokens and turning the feed off.
    app.request(Method::GET, "/c/not-a-token/calendar.ics")
        .send()
        .await
        .expect(404);
    app.request(Method::GET, &format!("/c/{}/calendar.ics", "A".repeat(43)))
        .send()
        .await
        .expect(404);
    app.space(Method::DELETE, "/calendar/ical-token")
        .send()
        .await
        .expect(204);
    app.request(Method::GET, &new).send().await.expect(404);
    assert_eq!(
        app.space(Method::GET, "/calendar/ical-token")
            .send()
            .await
            .expect(200)
            .body["enabled"],
        false
    );
    app.space(Method::DELETE, "/calendar/ical-token")
        .send()
        .await
        .expect(404);
    let kinds = app.event_types().await;
    assert_eq!(kinds.iter().filter(|k| *k == "calendar.feed_rotated").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "calendar.feed_disabled").count(), 1);
    for kind in &kinds {
        assert!(!kind.contains(new.trim_start_matches("/c/").trim_end_matches("/calendar.ics")));
    }
}

/// One space route of the calendar domain, its `{id}` filled in.
struct Route {
    name: String,
    method: Method,
    path: String,
    action: Action,
    has_ids: bool,
}

fn calendar_routes(event_id: &str) -> Vec<Route> {
    let routes: Vec<Route> = spacectl::operations()
        .into_iter()
        .filter_map(|operation| {
            let Access::Space(scope) = operation.access else {
                return None;
            };
            (scope.domain.as_str() == "calendar").then(|| Route {
                name: operation.name.clone(),
                method: Method::from_bytes(operation.method.as_str().as_bytes()).expect("a method"),
                path: operation.path.replace("{id}", event_id),
                action: scope.action,
                has_ids: operation.path.contains('{'),
            })
        })
        .collect();
    assert!(routes.iter().all(|r| !r.path.contains('{')));
    assert!(routes.len() >= 9, "{} calendar routes", routes.len());
    routes
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let created = event(
        &app,
        json!({"title": "Mine", "start": "2099-03-05T15:00:00Z", "end": "2099-03-05T16:00:00Z"}),
    )
    .await;
    let event_id = id(&created);
    let feed = app
        .space(Method::POST, "/calendar/ical-token/rotate")
        .send()
        .await
        .expect(200);
    let url = feed.body["url"].as_str().unwrap_or_default().to_owned();
    let bodies: HashMap<&str, Value> = HashMap::from([
        (
            "calendar_events_create",
            json!({"title": "X", "start": "2099-03-05T15:00:00Z", "end": "2099-03-05T16:00:00Z"}),
        ),
        ("calendar_events_update", json!({"title": "Changed"})),
        (
            "calendar_events_replace",
            json!({"title": "Changed", "start": "2099-03-05T15:00:00Z", "end": "2099-03-05T16:00:00Z"}),
        ),
    ]);
    let body = |name: &str| bodies.get(name).cloned().unwrap_or(json!({}));

    let reader = app.mint(&["calendar:read"], None).await;
    let writer = app.mint(&["calendar:write"], None).await;
    let stranger = app
        .mint(&["booking:read", "booking:write", "contacts:read"], None)
        .await;
    let events = app.event_types().await.len();
    for route in calendar_routes(&event_id) {
        let (lacking, allowed) = if route.action == Action::Read {
            (&writer, &reader)
        } else {
            (&reader, &writer)
        };
        let scope = format!("calendar:{}", route.action.as_str());
        for key in [lacking, &stranger] {
            let response = app
                .request(route.method.clone(), &format!("{SPACE_API}{}", route.path))
                .key(key)
                .json(body(&route.name))
                .send()
                .await;
            assert_eq!(response.status, 403, "{}: {}", route.name, response.text);
            assert!(
                response.body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&scope),
                "{}: {}",
                route.name,
                response.text
            );
        }
        if route.action == Action::Read {
            let response = app
                .request(route.method.clone(), &format!("{SPACE_API}{}", route.path))
                .key(allowed)
                .send()
                .await;
            assert_eq!(response.status, 200, "{}: {}", route.name, response.text);
        }
    }
    assert_eq!(app.event_types().await.len(), events, "a refused call wrote nothing");
    // The feed URL survived every refused rotate and delete.
    app.request(Method::GET, &url).send().await.expect(200);

    let (_, other) = app.other_space().await;
    for route in calendar_routes(&event_id) {
        let response = app
            .request(route.method.clone(), &format!("{SPACE_API}{}", route.path))
            .key(&other)
            .json(body(&route.name))
            .send()
            .await;
        if route.has_ids {
            assert_eq!(response.status, 404, "{}: {}", route.name, response.text);
            assert_eq!(response.error_code(), "NOT_FOUND");
        } else if route.name == "calendar_events_list" {
            assert_eq!(response.body["data"], json!([]));
        } else if route.name == "calendar_feed_get" {
            assert_ne!(
                response.body["url"].as_str(),
                Some(url.as_str()),
                "the other Space never sees our feed"
            );
        }
    }
    assert_eq!(
        app.event_types().await.len(),
        events,
        "nothing was written in this Space"
    );
    app.request(Method::GET, &url).send().await.expect(200);
    let mine = app
        .space(Method::GET, &format!("/calendar/events/{event_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(mine.body["title"], "Mine");
    assert_eq!(mine.body["version"], 1);
}
