//! Booking end to end on both backends: appointment types and their availability,
//! appointments that are never double-booked (also under concurrency), cancel and
//! reschedule giving time back, booking pages with their embed metadata, and the public
//! booking page that lists free slots and books one without a key.

use std::collections::HashMap;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use space_auth::Action;
use space_http::operation::Access;
use space_store::Clock;
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    appointment_types_default_to_weekdays_nine_to_five_utc,
    appointments_only_inside_availability,
    availability_follows_the_types_time_zone_across_dst,
    ten_concurrent_identical_bookings_give_exactly_one_201,
    overlaps_and_buffers_conflict_adjacent_times_do_not,
    cancel_and_reschedule_give_time_back,
    booking_pages_embed_metadata_and_type_checks,
    the_public_page_lists_free_slots_and_books_without_a_key,
    deleting_a_page_takes_its_public_url_down,
    an_email_holds_at_most_the_pages_upcoming_appointments,
    a_page_takes_at_most_its_bookings_per_hour,
    page_limits_are_the_owners_to_set_and_are_checked,
    every_route_needs_its_scope_and_the_right_space,
);

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

async fn appointment_type(app: &TestApp, body: Value) -> String {
    id(&app
        .space(Method::POST, "/booking/appointment-types")
        .json(body)
        .send()
        .await
        .expect(201)
        .body)
}

async fn intro_call(app: &TestApp) -> String {
    appointment_type(app, json!({"name": "Intro call", "duration_minutes": 30})).await
}

fn booking(type_id: &str, start: &str, email: &str) -> Value {
    json!({"appointment_type_id": type_id, "start": start, "contact": {"email": email}})
}

async fn book(app: &TestApp, type_id: &str, start: &str) -> space_tests::Response {
    app.space(Method::POST, "/booking/appointments")
        .json(booking(type_id, start, "ada@example.com"))
        .send()
        .await
}

async fn appointment_type_crud(app: &TestApp) {
    let created = app
        .space(Method::POST, "/booking/appointment-types")
        .json(json!({"name": "Intro call", "duration_minutes": 30}))
        .send()
        .await
        .expect(201);
    let type_id = id(&created.body);
    assert!(type_id.starts_with("atype_"));
    assert_eq!(created.body["time_zone"], "UTC");
    assert_eq!(created.body["buffer_before_minutes"], 0);
    let weekday = json!([{"start": "09:00", "end": "17:00"}]);
    assert_eq!(
        created.body["availability"],
        json!({"monday": weekday, "tuesday": weekday, "wednesday": weekday, "thursday": weekday, "friday": weekday})
    );
    let patched = app
        .space(Method::PATCH, &format!("/booking/appointment-types/{type_id}"))
        .json(json!({"availability": {"saturday": [{"start": "10:00", "end": "12:00"}]}, "buffer_after_minutes": 10}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        patched.body["availability"],
        json!({"saturday": [{"start": "10:00", "end": "12:00"}]})
    );
    assert_eq!(patched.body["version"], 2);
    let replaced = app
        .space(Method::PUT, &format!("/booking/appointment-types/{type_id}"))
        .json(json!({"name": "Deep dive", "duration_minutes": 60, "time_zone": "Europe/Berlin"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        replaced.body["buffer_after_minutes"], 0,
        "PUT resets what it leaves out"
    );
    assert_eq!(replaced.body["time_zone"], "Europe/Berlin");
    app.space(Method::GET, &format!("/booking/appointment-types/{type_id}"))
        .send()
        .await
        .expect(200);
    let listed = app
        .space(Method::GET, "/booking/appointment-types?q=deep")
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    app.space(Method::DELETE, &format!("/booking/appointment-types/{type_id}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/booking/appointment-types/{type_id}"))
        .send()
        .await
        .expect(404);
}

async fn appointment_types_default_to_weekdays_nine_to_five_utc(app: TestApp) {
    appointment_type_crud(&app).await;
    for (body, field) in [
        (json!({"name": "x", "duration_minutes": 0}), "duration_minutes"),
        (json!({"name": "x"}), "duration_minutes"),
        (
            json!({"name": "x", "duration_minutes": 30, "time_zone": "Mars/Olympus"}),
            "time_zone",
        ),
        (
            json!({"name": "x", "duration_minutes": 30, "availability": {"monday": [{"start": "17:00", "end": "09:00"}]}}),
            "availability",
        ),
        (
            json!({"name": "x", "duration_minutes": 30, "availability": {"someday": []}}),
            "availability",
        ),
        (
            json!({"name": "x", "duration_minutes": 200, "buffer_before_minutes": 60}),
            "duration_minutes",
        ),
        (
            json!({"name": "x", "duration_minutes": 30, "slot_interval_minutes": 7}),
            "slot_interval_minutes",
        ),
    ] {
        let response = app
            .space(Method::POST, "/booking/appointment-types")
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
    let kinds = app.event_types().await;
    for kind in [
        "appointment_type.created",
        "appointment_type.updated",
        "appointment_type.deleted",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn appointments_only_inside_availability(app: TestApp) {
    let type_id = intro_call(&app).await;
    // The seed's own shape.
    let created = book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(201);
    let appointment = id(&created.body);
    assert!(appointment.starts_with("appt_"));
    assert_eq!(created.body["status"], "confirmed");
    assert_eq!(created.body["end"], "2099-03-02T10:30:00.000Z");
    assert_eq!(created.body["source"], "api");
    assert_eq!(created.body["contact"], json!({"email": "ada@example.com"}));
    assert_eq!(created.header("etag"), Some("\"1\""));

    for start in [
        "2099-03-07T10:00:00Z", // a Saturday
        "2099-03-02T08:30:00Z", // before nine
        "2099-03-02T16:45:00Z", // would end at 17:15
        "2099-03-02T10:02:00Z", // off the 5-minute grid
        "2020-03-02T10:00:00Z", // in the past
    ] {
        let response = book(&app, &type_id, start).await.expect(422);
        assert_eq!(response.error_code(), "VALIDATION_FAILED");
        assert!(
            response.body["error"]["fields"]["start"].is_array(),
            "{start}: {}",
            response.text
        );
    }
    let outside = book(&app, &type_id, "2099-03-07T10:00:00Z").await;
    assert!(
        outside.text.contains("monday 09:00–17:00"),
        "the message says when: {}",
        outside.text
    );
    let unknown = book(&app, "atype_01jdxxxxxxxxxxxxxxxxxxxxxx", "2099-03-02T11:00:00Z")
        .await
        .expect(422);
    assert!(unknown.body["error"]["fields"]["appointment_type_id"].is_array());
    for body in [
        json!({"appointment_type_id": type_id, "start": "2099-03-02T11:00:00Z", "contact": {"name": "No email"}}),
        json!({"appointment_type_id": type_id, "start": "2099-03-02T11:00:00Z", "contact": {"email": "nope"}}),
        json!({"appointment_type_id": type_id, "start": "2099-03-02T11:00:00Z"}),
    ] {
        let response = app
            .space(Method::POST, "/booking/appointments")
            .json(body)
            .send()
            .await
            .expect(422);
        assert!(
            response.body["error"]["fields"]["contact"].is_array(),
            "{}",
            response.text
        );
    }
    let bad = app
        .space(Method::POST, "/booking/appointments")
        .json(json!({"start": "tomorrow", "status": "cancelled"}))
        .send()
        .await
        .expect(422);
    for field in ["start", "status", "appointment_type_id", "contact"] {
        assert!(bad.body["error"]["fields"][field].is_array(), "{field}: {}", bad.text);
    }

    // The same time again is taken; the next half hour is free.
    let taken = book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(409);
    assert_eq!(taken.error_code(), "CONFLICT");
    book(&app, &type_id, "2099-03-02T10:30:00Z").await.expect(201);
    book(&app, &type_id, "2099-03-02T16:30:00Z").await.expect(201);

    // Read, filter, edit.
    let got = app
        .space(Method::GET, &format!("/booking/appointments/{appointment}"))
        .send()
        .await
        .expect(200);
    assert_eq!(got.body["appointment_type_name"], "Intro call");
    let listed = app
        .space(Method::GET, "/booking/appointments?status=confirmed&order=asc")
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(3));
    let later = app
        .space(Method::GET, "/booking/appointments?start_after=2099-03-02T10:15:00Z")
        .send()
        .await
        .expect(200);
    assert_eq!(later.body["data"].as_array().map(Vec::len), Some(2));
    let by_email = app
        .space(Method::GET, "/booking/appointments?email=ADA@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(by_email.body["data"].as_array().map(Vec::len), Some(3));
    let noted = app
        .space(Method::PATCH, &format!("/booking/appointments/{appointment}"))
        .json(json!({"notes": "Bring the deck", "contact": {"email": "ada@example.com", "name": "Ada"}}))
        .send()
        .await
        .expect(200);
    assert_eq!(noted.body["notes"], "Bring the deck");
    assert_eq!(noted.body["contact"]["name"], "Ada");
    let moved = app
        .space(Method::PATCH, &format!("/booking/appointments/{appointment}"))
        .json(json!({"start": "2099-03-02T12:00:00Z"}))
        .send()
        .await
        .expect(422);
    assert!(moved.text.contains("reschedule"), "{}", moved.text);

    // Deleting an appointment frees its time.
    app.space(Method::DELETE, &format!("/booking/appointments/{appointment}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/booking/appointments/{appointment}"))
        .send()
        .await
        .expect(404);
    book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(201);
    let kinds = app.event_types().await;
    assert_eq!(kinds.iter().filter(|k| *k == "appointment.created").count(), 4);
    assert!(kinds.iter().any(|k| k == "appointment.deleted"));
    assert!(kinds.iter().any(|k| k == "appointment.updated"));
}

async fn availability_follows_the_types_time_zone_across_dst(app: TestApp) {
    let type_id = appointment_type(
        &app,
        json!({"name": "NY call", "duration_minutes": 30, "time_zone": "America/New_York",
               "availability": {"monday": [{"start": "09:00", "end": "10:00"}]}}),
    )
    .await;
    // 2 March 2099: New York is on EST (UTC-5), so 09:00 local is 14:00 UTC.
    book(&app, &type_id, "2099-03-02T14:00:00Z").await.expect(201);
    book(&app, &type_id, "2099-03-02T13:00:00Z").await.expect(422);
    // 9 March 2099, after the clocks went forward on the 8th: 09:00 EDT is 13:00 UTC.
    book(&app, &type_id, "2099-03-09T13:00:00Z").await.expect(201);
    book(&app, &type_id, "2099-03-09T14:30:00Z").await.expect(422);
}

async fn ten_concurrent_identical_bookings_give_exactly_one_201(app: TestApp) {
    let type_id = intro_call(&app).await;
    let body = booking(&type_id, "2099-03-02T10:00:00Z", "race@example.com");
    let responses = join_all((0..10).map(|_| {
        app.space(Method::POST, "/booking/appointments")
            .json(body.clone())
            .send()
    }))
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
    for response in responses.iter().filter(|r| r.status == 409) {
        assert_eq!(response.error_code(), "CONFLICT");
    }
    // Overlapping (not identical) starts race too: whoever wins, no two appointments overlap.
    let starts: Vec<String> = ["10:35", "10:40", "10:45", "10:50", "10:55", "11:00", "11:05"]
        .iter()
        .map(|at| format!("2099-03-02T{at}:00Z"))
        .collect();
    let responses = join_all(starts.iter().map(|start| book(&app, &type_id, start))).await;
    let won = responses.iter().filter(|r| r.status == 201).count();
    assert!(won >= 1, "someone wins");
    let listed = app
        .space(Method::GET, "/booking/appointments?limit=50")
        .send()
        .await
        .expect(200);
    let mut booked: Vec<(String, String)> = listed.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["start"].as_str().unwrap_or_default().to_owned(),
                a["end"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(booked.len(), 1 + won);
    booked.sort();
    for pair in booked.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "no two appointments overlap: {booked:?}");
    }
    assert_eq!(
        app.event_types()
            .await
            .iter()
            .filter(|k| *k == "appointment.created")
            .count(),
        1 + won
    );
}

async fn overlaps_and_buffers_conflict_adjacent_times_do_not(app: TestApp) {
    let buffered = appointment_type(
        &app,
        json!({"name": "Consult", "duration_minutes": 30, "buffer_before_minutes": 10, "buffer_after_minutes": 15}),
    )
    .await;
    let plain = intro_call(&app).await;
    // Holds 09:50–10:45.
    book(&app, &buffered, "2099-03-02T10:00:00Z").await.expect(201);
    book(&app, &plain, "2099-03-02T10:15:00Z").await.expect(409);
    book(&app, &plain, "2099-03-02T10:30:00Z").await.expect(409); // in the buffer after
    book(&app, &plain, "2099-03-02T09:30:00Z").await.expect(409); // ends in the buffer before
    book(&app, &plain, "2099-03-02T09:20:00Z").await.expect(201); // ends at 09:50 exactly
    book(&app, &plain, "2099-03-02T10:45:00Z").await.expect(201); // starts at 10:45 exactly
    // A buffered booking needs its buffers free too: 11:15 holds 11:05–12:00, after 10:45–11:15.
    book(&app, &buffered, "2099-03-02T11:15:00Z").await.expect(409);
    book(&app, &buffered, "2099-03-02T11:25:00Z").await.expect(201);
}

async fn cancel_and_reschedule_give_time_back(app: TestApp) {
    let type_id = intro_call(&app).await;
    let first = id(&book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(201).body);
    let cancelled = app
        .space(Method::POST, &format!("/booking/appointments/{first}/cancel"))
        .json(json!({"reason": "Double-booked on their side"}))
        .send()
        .await
        .expect(200);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancellation_reason"], "Double-booked on their side");
    assert!(cancelled.body["cancelled_at"].is_string());
    app.space(Method::POST, &format!("/booking/appointments/{first}/cancel"))
        .json(json!({}))
        .send()
        .await
        .expect(409);
    app.space(Method::POST, &format!("/booking/appointments/{first}/reschedule"))
        .json(json!({"start": "2099-03-02T11:00:00Z"}))
        .send()
        .await
        .expect(409);
    // The cancelled time is free again.
    let second = id(&book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(201).body);

    // Reschedule claims the new time and frees the old one in one step.
    let moved = app
        .space(Method::POST, &format!("/booking/appointments/{second}/reschedule"))
        .json(json!({"start": "2099-03-02T11:00:00Z"}))
        .send()
        .await
        .expect(200);
    assert_eq!(moved.body["start"], "2099-03-02T11:00:00.000Z");
    assert_eq!(moved.body["end"], "2099-03-02T11:30:00.000Z");
    assert_eq!(moved.body["previous_start"], "2099-03-02T10:00:00.000Z");
    book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(201);
    book(&app, &type_id, "2099-03-02T11:00:00Z").await.expect(409);

    // Into a taken time: 409, and nothing moved or was released.
    let third = id(&book(&app, &type_id, "2099-03-02T14:00:00Z").await.expect(201).body);
    let refused = app
        .space(Method::POST, &format!("/booking/appointments/{third}/reschedule"))
        .json(json!({"start": "2099-03-02T11:15:00Z"}))
        .send()
        .await
        .expect(409);
    assert_eq!(refused.error_code(), "CONFLICT");
    let unchanged = app
        .space(Method::GET, &format!("/booking/appointments/{third}"))
        .send()
        .await
        .expect(200);
    assert_eq!(unchanged.body["start"], "2099-03-02T14:00:00.000Z");
    assert_eq!(unchanged.body["version"], 1);
    book(&app, &type_id, "2099-03-02T14:00:00Z").await.expect(409);

    // Outside availability names `start`; an overlapping move of itself is fine.
    let outside = app
        .space(Method::POST, &format!("/booking/appointments/{third}/reschedule"))
        .json(json!({"start": "2099-03-07T14:00:00Z"}))
        .send()
        .await
        .expect(422);
    assert!(outside.body["error"]["fields"]["start"].is_array());
    app.space(Method::POST, &format!("/booking/appointments/{third}/reschedule"))
        .json(json!({}))
        .send()
        .await
        .expect(422);
    let nudged = app
        .space(Method::POST, &format!("/booking/appointments/{third}/reschedule"))
        .json(json!({"start": "2099-03-02T14:15:00Z"}))
        .send()
        .await
        .expect(200);
    assert_eq!(nudged.body["version"], 2);
    book(&app, &type_id, "2099-03-02T14:00:00Z").await.expect(409); // 14:15 overlaps it
    book(&app, &type_id, "2099-03-02T13:45:00Z").await.expect(201);

    // A stale If-Match is 412 and changes nothing.
    app.space(Method::POST, &format!("/booking/appointments/{third}/cancel"))
        .header("if-match", "\"1\"")
        .json(json!({}))
        .send()
        .await
        .expect(412);
    app.space(Method::POST, &format!("/booking/appointments/{third}/cancel"))
        .header("if-match", "\"2\"")
        .send()
        .await
        .expect(200);
    book(&app, &type_id, "2099-03-02T14:15:00Z").await.expect(201);
    let kinds = app.event_types().await;
    assert_eq!(kinds.iter().filter(|k| *k == "appointment.cancelled").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "appointment.rescheduled").count(), 2);
}

async fn booking_pages_embed_metadata_and_type_checks(app: TestApp) {
    let type_id = intro_call(&app).await;
    let page = app
        .space(Method::POST, "/booking/pages")
        .json(json!({"name": "Sales", "title": "Talk to sales", "slug": "talk-to-sales", "appointment_type_ids": [type_id], "time_zone": "Europe/Berlin"}))
        .send()
        .await
        .expect(201);
    let page_id = id(&page.body);
    assert!(page_id.starts_with("bpage_"));
    for (body, field) in [
        (
            json!({"name": "x", "appointment_type_ids": ["con_1"]}),
            "appointment_type_ids",
        ),
        (
            json!({"name": "x", "appointment_type_ids": ["atype_01jdxxxxxxxxxxxxxxxxxxxxxx"]}),
            "appointment_type_ids",
        ),
        (json!({"name": "x", "slug": "Not A Slug"}), "slug"),
        (json!({"name": "x", "time_zone": "Nowhere"}), "time_zone"),
        (json!({"title": "no name"}), "name"),
    ] {
        let response = app
            .space(Method::POST, "/booking/pages")
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
    let path = format!("/booking/pages/{page_id}");
    app.space(Method::PATCH, &path)
        .json(json!({"appointment_type_ids": ["atype_01jdxxxxxxxxxxxxxxxxxxxxxx"]}))
        .send()
        .await
        .expect(422);
    let patched = app
        .space(Method::PATCH, &path)
        .json(json!({"description": "Thirty minutes, no slides."}))
        .send()
        .await
        .expect(200);
    assert_eq!(patched.body["appointment_type_ids"], json!([type_id]));
    app.space(Method::PUT, &path)
        .json(json!({"name": "Sales", "title": "Talk to sales", "appointment_type_ids": [type_id]}))
        .send()
        .await
        .expect(200);
    app.space(Method::GET, &path).send().await.expect(200);
    let listed = app
        .space(Method::GET, "/booking/pages?q=sales")
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));

    let embed = app
        .space(Method::GET, &format!("{path}/embed"))
        .send()
        .await
        .expect(200);
    // Absolute, on the configured public origin.
    let absolute = embed;
    let url = format!("{}/b/{page_id}", app.base);
    assert_eq!(absolute.body["url"], url);
    assert_eq!(absolute.body["slots_url"], format!("{url}/slots"));
    assert_eq!(absolute.body["book_url"], format!("{url}/book"));
    let iframe = absolute.body["iframe"].as_str().unwrap_or_default();
    assert!(
        iframe.starts_with("<iframe ")
            && iframe.contains(&format!("src=\"{url}\""))
            && iframe.contains("title=\"Talk to sales\""),
        "{iframe}"
    );
    app.space(Method::GET, "/booking/pages/bpage_01jdxxxxxxxxxxxxxxxxxxxxxx/embed")
        .send()
        .await
        .expect(404);
    // The embedded URL is the live public page.
    let public = app.request(Method::GET, &url).send().await.expect(200);
    assert!(
        public
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
}

async fn the_public_page_lists_free_slots_and_books_without_a_key(app: TestApp) {
    let type_id = intro_call(&app).await;
    let other_type = appointment_type(&app, json!({"name": "Not offered", "duration_minutes": 60})).await;
    let page = app
        .space(Method::POST, "/booking/pages")
        .json(json!({"name": "Book", "title": "Book <Ada> & co", "description": "Pick a time.", "appointment_type_ids": [type_id], "time_zone": "Europe/Berlin"}))
        .send()
        .await
        .expect(201);
    let page_id = id(&page.body);

    // The HTML page: escaped, with its data, locked down by its CSP.
    let html = app
        .request(Method::GET, &format!("/b/{page_id}"))
        .send()
        .await
        .expect(200);
    assert!(
        html.text.contains("<h1>Book &lt;Ada&gt; &amp; co</h1>"),
        "{}",
        html.text
    );
    assert!(!html.text.contains("<Ada>"));
    assert!(html.text.contains(&type_id));
    let policy = html.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("default-src 'none'")
            && policy.contains("script-src 'sha256-")
            && policy.contains("connect-src 'self'"),
        "{policy}"
    );
    assert!(!policy.contains("unsafe-inline"));

    // Free slots of a Monday: 09:00 to 16:30, every 30 minutes.
    let day = "from=2099-03-02T00:00:00Z&to=2099-03-03T00:00:00Z";
    let slots_path = format!("/b/{page_id}/slots?{day}");
    let slots = app.request(Method::GET, &slots_path).send().await.expect(200);
    let list = slots.body["slots"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 16, "{}", slots.text);
    assert_eq!(list[0]["start"], "2099-03-02T09:00:00.000Z");
    assert_eq!(
        list[0]["local_start"], "2099-03-02T10:00:00+01:00",
        "shown in the page's zone"
    );
    assert_eq!(slots.body["appointment_type"]["name"], "Intro call");
    assert_eq!(slots.body["time_zone"], "Europe/Berlin");

    // An appointment booked through the API takes its slot off the list.
    book(&app, &type_id, "2099-03-02T09:00:00Z").await.expect(201);
    let after_api = app.request(Method::GET, &slots_path).send().await.expect(200);
    assert_eq!(after_api.body["slots"].as_array().map(Vec::len), Some(15));

    // A visitor books one, without a key.
    let booked = app
        .request(Method::POST, &format!("/b/{page_id}/book"))
        .json(json!({"start": "2099-03-02T10:00:00Z", "contact": {"email": "Visitor@Example.com", "name": "Vi"}}))
        .send()
        .await
        .expect(201);
    assert_eq!(booked.body["status"], "confirmed");
    assert_eq!(booked.body["contact"]["email"], "visitor@example.com");
    let appointment = id(&booked.body);
    let seen = app
        .space(Method::GET, &format!("/booking/appointments/{appointment}"))
        .send()
        .await
        .expect(200);
    assert_eq!(seen.body["source"], "booking_page");
    assert_eq!(seen.body["booking_page_id"], page_id);
    let after_visit = app.request(Method::GET, &slots_path).send().await.expect(200);
    assert_eq!(after_visit.body["slots"].as_array().map(Vec::len), Some(14));
    let kinds = app.event_types().await;
    assert_eq!(kinds.iter().filter(|k| *k == "appointment.created").count(), 2);

    // Refusals.
    let visit = |body: Value| {
        app.request(Method::POST, &format!("/b/{page_id}/book"))
            .json(body)
            .send()
    };
    visit(json!({"start": "2099-03-02T10:00:00Z", "contact": {"email": "late@example.com"}}))
        .await
        .expect(409);
    let outside = visit(json!({"start": "2099-03-07T10:00:00Z", "contact": {"email": "x@example.com"}}))
        .await
        .expect(422);
    assert!(outside.body["error"]["fields"]["start"].is_array());
    let not_offered = visit(json!({"appointment_type_id": other_type, "start": "2099-03-02T12:00:00Z", "contact": {"email": "x@example.com"}}))
        .await
        .expect(422);
    assert!(not_offered.body["error"]["fields"]["appointment_type_id"].is_array());
    app.request(
        Method::GET,
        &format!("/b/{page_id}/slots?appointment_type_id={other_type}"),
    )
    .send()
    .await
    .expect(422);
    app.request(
        Method::GET,
        &format!("/b/{page_id}/slots?from=2099-03-01T00:00:00Z&to=2099-05-01T00:00:00Z"),
    )
    .send()
    .await
    .expect(422);
    app.request(Method::GET, &format!("/b/{page_id}/slots?from=yesterday"))
        .send()
        .await
        .expect(422);
    app.request(Method::GET, "/b/bpage_01jdxxxxxxxxxxxxxxxxxxxxxx/slots")
        .send()
        .await
        .expect(404);
    app.request(Method::GET, "/b/not-a-page").send().await.expect(404);
    // A public route never takes a key's word for anything: the visitor is still a visitor.
    app.request(Method::POST, &format!("/b/{page_id}/book"))
        .key(app.key())
        .json(json!({}))
        .send()
        .await
        .expect(422);

    // Visitors are limited per address: in a fresh minute, thirty requests reach booking.
    app.clock.advance(chrono::TimeDelta::seconds(60));
    let mut statuses = Vec::new();
    for _ in 0..31 {
        let response = app
            .request(Method::POST, &format!("/b/{page_id}/book"))
            .header("x-forwarded-for", "203.0.113.7")
            .json(json!({"start": "2099-03-07T10:00:00Z", "contact": {"email": "x@example.com"}}))
            .send()
            .await;
        statuses.push(response.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 422).count(), 30, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
    // Another address is not held back.
    app.request(Method::GET, &format!("/b/{page_id}/slots"))
        .header("x-forwarded-for", "203.0.113.8")
        .send()
        .await
        .expect(200);
}

/// A page offering the intro call (weekdays 09:00–17:00 UTC, 30 minutes), with `extra`.
async fn page_with(app: &TestApp, type_id: &str, extra: Value) -> String {
    let mut body = json!({"name": "Book", "appointment_type_ids": [type_id]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    id(&app
        .space(Method::POST, "/booking/pages")
        .json(body)
        .send()
        .await
        .expect(201)
        .body)
}

/// A visitor books `start` on `page` as `email`, from `client`.
async fn visit(app: &TestApp, page: &str, start: &str, email: &str, client: &str) -> space_tests::Response {
    app.request(Method::POST, &format!("/b/{page}/book"))
        .header("x-forwarded-for", client)
        .json(json!({"start": start, "contact": {"email": email}}))
        .send()
        .await
}

/// Half-hour slots of the weekdays 2 to 6 March 2099, in order.
fn slots_of_a_week() -> Vec<String> {
    (2..=6)
        .flat_map(|day| {
            (9..17).flat_map(move |hour| [0, 30].map(|minute| format!("2099-03-0{day}T{hour:02}:{minute:02}:00Z")))
        })
        .collect()
}

/// Confirmed appointments booked through `page`.
async fn confirmed_on(app: &TestApp, page: &str) -> Vec<Value> {
    let listed = app
        .space(
            Method::GET,
            &format!("/booking/appointments?booking_page_id={page}&status=confirmed&limit=200"),
        )
        .send()
        .await
        .expect(200);
    listed.body["data"].as_array().cloned().unwrap_or_default()
}

async fn an_email_holds_at_most_the_pages_upcoming_appointments(app: TestApp) {
    let type_id = intro_call(&app).await;
    let page = page_with(&app, &type_id, json!({})).await;
    let shown = app
        .space(Method::GET, &format!("/booking/pages/{page}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["max_upcoming_per_email"], 3, "{}", shown.text);
    assert_eq!(shown.body["max_bookings_per_hour"], 20);
    let slots = slots_of_a_week();

    // Eight bookings by one address at once (written differently): at most three commit.
    let spellings = ["ada@example.com", "Ada@Example.com", " ADA@example.com "];
    let responses = join_all((0..8).map(|n| visit(&app, &page, &slots[n], spellings[n % 3], "203.0.113.10"))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(statuses.iter().filter(|s| **s == 201).count() <= 3, "{statuses:?}");
    assert!(statuses.iter().all(|s| [201, 409, 422].contains(s)), "{statuses:?}");
    // Then one at a time until refused: exactly three in all.
    for start in &slots[8..12] {
        if visit(&app, &page, start, "ada@example.com", "203.0.113.10")
            .await
            .status
            == 422
        {
            break;
        }
    }
    assert_eq!(confirmed_on(&app, &page).await.len(), 3);
    let events = app.event_types().await.len();
    let refused = visit(&app, &page, &slots[12], "ada@example.com", "203.0.113.10")
        .await
        .expect(422);
    assert_eq!(refused.error_code(), "VALIDATION_FAILED");
    let why = refused.body["error"]["fields"]["contact"][0]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("3 upcoming appointments"), "{}", refused.text);
    assert_eq!(confirmed_on(&app, &page).await.len(), 3, "nothing was booked");
    assert_eq!(app.event_types().await.len(), events, "nothing was written");

    // Another address books; the API is not held to the page's rule.
    visit(&app, &page, &slots[12], "grace@example.com", "203.0.113.11")
        .await
        .expect(201);
    app.space(Method::POST, "/booking/appointments")
        .json(booking(&type_id, &slots[13], "ada@example.com"))
        .send()
        .await
        .expect(201);

    // Cancelling one gives its place back.
    let held = confirmed_on(&app, &page).await;
    let ada = held
        .iter()
        .find(|a| a["contact"]["email"] == "ada@example.com")
        .expect("one of Ada's");
    app.space(Method::POST, &format!("/booking/appointments/{}/cancel", id(ada)))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    visit(&app, &page, &slots[14], "ada@example.com", "203.0.113.10")
        .await
        .expect(201);
    visit(&app, &page, &slots[15], "ada@example.com", "203.0.113.10")
        .await
        .expect(422);
}

async fn a_page_takes_at_most_its_bookings_per_hour(app: TestApp) {
    let type_id = intro_call(&app).await;
    let page = page_with(&app, &type_id, json!({"max_bookings_per_hour": 4})).await;
    let slots = slots_of_a_week();

    // Eight visitors at once, each from their own address: exactly four get in.
    let responses = join_all((0..8).map(|n| {
        let email = format!("visitor{n}@example.com");
        let client = format!("198.51.100.{n}");
        let start = slots[n].clone();
        let app = &app;
        let page = &page;
        async move { visit(app, page, &start, &email, &client).await }
    }))
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 4, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 4, "{statuses:?}");
    for refused in responses.iter().filter(|r| r.status == 429) {
        assert_eq!(refused.error_code(), "RATE_LIMITED");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("4 bookings an hour")
        );
        let retry_after: i64 = refused
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After");
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
    }
    assert_eq!(confirmed_on(&app, &page).await.len(), 4, "nothing more was booked");

    // The owner's own bookings do not spend the page's hour.
    app.space(Method::POST, "/booking/appointments")
        .json(booking(&type_id, &slots[20], "owner@example.com"))
        .send()
        .await
        .expect(201);
    // Another page has its own budget.
    let other = page_with(&app, &type_id, json!({"max_bookings_per_hour": 1})).await;
    visit(&app, &other, &slots[21], "x@example.com", "198.51.100.50")
        .await
        .expect(201);
    visit(&app, &other, &slots[22], "y@example.com", "198.51.100.51")
        .await
        .expect(429);

    // The next hour takes bookings again.
    let retry_after: i64 = responses
        .iter()
        .find(|r| r.status == 429)
        .and_then(|r| r.header("retry-after"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600);
    app.clock.advance(chrono::TimeDelta::seconds(retry_after));
    visit(&app, &page, &slots[8], "late@example.com", "198.51.100.9")
        .await
        .expect(201);
}

async fn page_limits_are_the_owners_to_set_and_are_checked(app: TestApp) {
    let type_id = intro_call(&app).await;
    let page = page_with(&app, &type_id, json!({"max_upcoming_per_email": 1})).await;
    let path = format!("/booking/pages/{page}");
    for bad in [
        json!({"max_upcoming_per_email": 0}),
        json!({"max_upcoming_per_email": 21}),
        json!({"max_upcoming_per_email": "many"}),
        json!({"max_bookings_per_hour": 0}),
        json!({"max_bookings_per_hour": 1001}),
        json!({"max_bookings_per_hour": 2.5}),
    ] {
        let field = bad
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        let refused = app
            .space(Method::PATCH, &path)
            .json(bad.clone())
            .send()
            .await
            .expect(422);
        assert!(
            refused.body["error"]["fields"][&field].is_array(),
            "{bad}: {}",
            refused.text
        );
    }
    // Only a key that may write booking changes them.
    let reader = app.mint(&["booking:read"], None).await;
    app.request(Method::PATCH, &format!("{SPACE_API}{path}"))
        .key(&reader)
        .json(json!({"max_upcoming_per_email": 5}))
        .send()
        .await
        .expect(403);

    // An appointment that has started no longer counts against its address.
    let now = app.clock.now();
    let mut day = now.date_naive() + chrono::TimeDelta::days(1);
    while matches!(
        chrono::Datelike::weekday(&day),
        chrono::Weekday::Sat | chrono::Weekday::Sun
    ) {
        day += chrono::TimeDelta::days(1);
    }
    let at = |hour: u32| format!("{day}T{hour:02}:00:00Z");
    visit(&app, &page, &at(10), "ada@example.com", "203.0.113.20")
        .await
        .expect(201);
    visit(&app, &page, &at(11), "ada@example.com", "203.0.113.20")
        .await
        .expect(422);
    let writer = app.mint(&["booking:write"], None).await;
    let raised = app
        .request(Method::PATCH, &format!("{SPACE_API}{path}"))
        .key(&writer)
        .json(json!({"max_upcoming_per_email": 2}))
        .send()
        .await
        .expect(200);
    assert_eq!(raised.body["max_upcoming_per_email"], 2);
    visit(&app, &page, &at(11), "ada@example.com", "203.0.113.20")
        .await
        .expect(201);
    visit(&app, &page, &at(12), "ada@example.com", "203.0.113.20")
        .await
        .expect(422);
    let ten_thirty = day.and_hms_opt(10, 30, 0).expect("a time").and_utc();
    app.clock.advance(ten_thirty - now);
    visit(&app, &page, &at(12), "ada@example.com", "203.0.113.20")
        .await
        .expect(201);

    // The catalogue documents them, so OpenAPI and MCP carry them.
    let spec = serde_json::to_string(&spacectl::openapi()).unwrap_or_default();
    assert!(spec.contains("max_upcoming_per_email") && spec.contains("max_bookings_per_hour"));
}

async fn deleting_a_page_takes_its_public_url_down(app: TestApp) {
    let type_id = intro_call(&app).await;
    let page = app
        .space(Method::POST, "/booking/pages")
        .json(json!({"name": "Short-lived", "appointment_type_ids": [type_id]}))
        .send()
        .await
        .expect(201);
    let page_id = id(&page.body);
    app.request(Method::GET, &format!("/b/{page_id}/slots"))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &format!("/booking/pages/{page_id}"))
        .header("if-match", "\"9\"")
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &format!("/booking/pages/{page_id}"))
        .send()
        .await
        .expect(204);
    for path in [format!("/b/{page_id}"), format!("/b/{page_id}/slots")] {
        let response = app.request(Method::GET, &path).send().await.expect(404);
        assert_eq!(response.error_code(), "NOT_FOUND");
    }
    app.request(Method::POST, &format!("/b/{page_id}/book"))
        .json(json!({"start": "2099-03-02T10:00:00Z", "contact": {"email": "x@example.com"}}))
        .send()
        .await
        .expect(404);
    assert!(app.event_types().await.iter().any(|k| k == "booking_page.deleted"));
}

async fn every_route_needs_its_scope_and_the_right_space(app: TestApp) {
    let type_id = intro_call(&app).await;
    let page = app
        .space(Method::POST, "/booking/pages")
        .json(json!({"name": "P", "appointment_type_ids": [type_id]}))
        .send()
        .await
        .expect(201);
    let page_id = id(&page.body);
    let appointment = id(&book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(201).body);
    let bodies: HashMap<&str, Value> = HashMap::from([
        (
            "booking_appointment_types_create",
            json!({"name": "X", "duration_minutes": 30}),
        ),
        ("booking_appointment_types_update", json!({"name": "Changed"})),
        (
            "booking_appointment_types_replace",
            json!({"name": "Changed", "duration_minutes": 45}),
        ),
        ("booking_pages_create", json!({"name": "X"})),
        ("booking_pages_update", json!({"name": "Changed"})),
        ("booking_pages_replace", json!({"name": "Changed"})),
        (
            "booking_appointments_create",
            booking(&type_id, "2099-03-02T11:00:00Z", "x@example.com"),
        ),
        ("booking_appointments_update", json!({"notes": "x"})),
        ("booking_appointments_cancel", json!({})),
        (
            "booking_appointments_reschedule",
            json!({"start": "2099-03-02T12:00:00Z"}),
        ),
    ]);
    scope_matrix(&app, &type_id, &page_id, &appointment, &bodies).await;
    other_space(&app, &type_id, &page_id, &appointment, &bodies).await;
    // Nothing refused above changed anything.
    let still = app
        .space(Method::GET, &format!("/booking/appointments/{appointment}"))
        .send()
        .await
        .expect(200);
    assert_eq!(still.body["version"], 1);
    assert_eq!(still.body["status"], "confirmed");
    book(&app, &type_id, "2099-03-02T10:00:00Z").await.expect(409);
    book(&app, &type_id, "2099-03-02T11:00:00Z").await.expect(201);
}

/// One space route of the booking domain, its `{id}` filled in.
struct Route {
    name: String,
    method: Method,
    path: String,
    action: Action,
    has_ids: bool,
}

/// Every booking route of the catalogue, each `{id}` filled with the item of its own
/// collection, so a route added later is checked too.
fn booking_routes(type_id: &str, page_id: &str, appointment: &str) -> Vec<Route> {
    let mut routes = Vec::new();
    for operation in spacectl::operations() {
        let Access::Space(scope) = operation.access else {
            continue;
        };
        if scope.domain.as_str() != "booking" {
            continue;
        }
        let item = if operation.path.starts_with("/booking/appointment-types") {
            type_id
        } else if operation.path.starts_with("/booking/pages") {
            page_id
        } else {
            appointment
        };
        let path = operation.path.replace("{id}", item);
        assert!(
            !path.contains('{'),
            "{}: a parameter the test does not fill",
            operation.name
        );
        routes.push(Route {
            name: operation.name.clone(),
            method: Method::from_bytes(operation.method.as_str().as_bytes()).expect("a method"),
            path,
            action: scope.action,
            has_ids: operation.path.contains('{'),
        });
    }
    assert!(routes.len() >= 20, "{} booking routes", routes.len());
    routes
}

/// A key with the domain's other action, or only other domains, is refused every route
/// with 403 naming the scope, and nothing is written; the key with it gets through.
async fn scope_matrix(app: &TestApp, type_id: &str, page_id: &str, appointment: &str, bodies: &HashMap<&str, Value>) {
    let reader = app.mint(&["booking:read"], None).await;
    let writer = app.mint(&["booking:write"], None).await;
    let stranger = app
        .mint(&["calendar:read", "calendar:write", "contacts:write"], None)
        .await;
    let events = app.event_types().await.len();
    for route in booking_routes(type_id, page_id, appointment) {
        let (lacking, allowed) = if route.action == Action::Read {
            (&writer, &reader)
        } else {
            (&reader, &writer)
        };
        let scope = format!("booking:{}", route.action.as_str());
        for key in [lacking, &stranger] {
            let response = app
                .request(route.method.clone(), &format!("{SPACE_API}{}", route.path))
                .key(key)
                .json(bodies.get(route.name.as_str()).cloned().unwrap_or(json!({})))
                .send()
                .await;
            assert_eq!(response.status, 403, "{}: {}", route.name, response.text);
            assert_eq!(response.error_code(), "FORBIDDEN");
            let message = response.body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&scope),
                "{}: the message names {scope}: {message}",
                route.name
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
}

/// Another Space's full-scope key finds none of this Space's ids and lists nothing of it.
async fn other_space(app: &TestApp, type_id: &str, page_id: &str, appointment: &str, bodies: &HashMap<&str, Value>) {
    let (_, other) = app.other_space().await;
    let events = app.event_types().await.len();
    for route in booking_routes(type_id, page_id, appointment) {
        let response = app
            .request(route.method.clone(), &format!("{SPACE_API}{}", route.path))
            .key(&other)
            .json(bodies.get(route.name.as_str()).cloned().unwrap_or(json!({})))
            .send()
            .await;
        if route.has_ids {
            assert_eq!(response.status, 404, "{}: {}", route.name, response.text);
            assert_eq!(response.error_code(), "NOT_FOUND");
        } else if route.method == Method::GET {
            assert_eq!(
                response.body["data"],
                json!([]),
                "{}: the other Space lists nothing of ours",
                route.name
            );
        } else if route.name == "booking_appointments_create" {
            // Our appointment type is not theirs.
            assert_eq!(response.status, 422, "{}", response.text);
        }
    }
    assert_eq!(
        app.event_types().await.len(),
        events,
        "nothing was written in this Space"
    );
}
