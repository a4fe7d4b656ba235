//! Forms end to end on both backends: declarations, public submissions (JSON and
//! browser form posts) that create the contact or fill its empty fields without telling
//! whether it existed, limits, scopes and isolation.

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Response, TestApp, on_both_backends};

on_both_backends!(
    forms_crud_and_field_declarations,
    a_json_submission_creates_then_completes_the_contact,
    a_known_email_is_neither_overwritten_nor_revealed,
    a_browser_submission_gets_html_back,
    bad_submissions_change_nothing,
    concurrent_submissions_for_one_new_email_make_one_contact,
    submissions_are_limited_per_client_address,
    form_scopes_and_other_spaces,
);

/// What `forms::PUBLIC_PER_MINUTE` allows each client address.
const PUBLIC_PER_MINUTE: u32 = 60;

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

async fn create_form(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/forms")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

/// A form with one field of each kind a contact form uses.
pub(crate) async fn lead_form(app: &TestApp) -> String {
    let form = create_form(
        app,
        json!({
            "name": "Leads",
            "fields": [
                {"name": "email", "type": "email", "required": true},
                {"name": "name", "label": "Your name"},
                {"name": "phone", "type": "phone"},
                {"name": "plan", "type": "select", "options": ["basic", "pro"]},
                {"name": "seats", "type": "number"},
                {"name": "consent", "type": "checkbox", "required": true, "label": "I agree"},
                {"name": "message", "type": "textarea"}
            ],
            "success_message": "We will call you back."
        }),
    )
    .await;
    id_of(&form)
}

pub(crate) async fn submit_json(app: &TestApp, form: &str, values: Value) -> Response {
    app.request(Method::POST, &format!("/f/{form}"))
        .json(values)
        .send()
        .await
}

async fn submit_browser(app: &TestApp, form: &str, encoded: &str) -> Response {
    app.request(Method::POST, &format!("/f/{form}"))
        .raw("application/x-www-form-urlencoded", encoded.to_owned())
        .send()
        .await
}

async fn contacts_with_email(app: &TestApp, email: &str) -> Vec<Value> {
    let listed = app
        .space(Method::GET, &format!("/contacts?email={email}"))
        .send()
        .await
        .expect(200);
    listed.body["data"].as_array().cloned().unwrap_or_default()
}

fn count(events: &[String], kind: &str) -> usize {
    events.iter().filter(|e| *e == kind).count()
}

async fn forms_crud_and_field_declarations(app: TestApp) {
    // The seed's shape.
    let created = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Contact us", "fields": [{"name": "email", "type": "email", "required": true}]}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.header("etag"), Some("\"1\""));
    let form = created.body;
    let id = id_of(&form);
    assert!(id.starts_with("form_"), "{id}");
    assert_eq!(
        form["fields"],
        json!([{"name": "email", "type": "email", "required": true}])
    );
    // The public pointer was written with the form: its URL answers (422: email missing).
    let empty = submit_json(&app, &id, json!({})).await.expect(422);
    assert_eq!(
        empty.body["error"]["fields"]["email"][0],
        "The email field is required."
    );

    let refused = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Broken", "fields": [{"name": "plan", "type": "select"}, {"name": "x", "type": "colour"}, {"name": "Plan"}]}))
        .send()
        .await
        .expect(422);
    let message = refused.body["error"]["fields"]["fields"][0]
        .as_str()
        .unwrap_or_default();
    for expected in [
        "fields[0].options is required",
        "fields[1].type must be one of",
        "fields[2].name is used",
    ] {
        assert!(message.contains(expected), "{expected} in {message}");
    }
    app.space(Method::POST, "/forms")
        .json(json!({"name": "Empty", "fields": []}))
        .send()
        .await
        .expect(422);
    app.space(Method::POST, "/forms")
        .json(json!({"fields": [{"name": "email"}]}))
        .send()
        .await
        .expect(422);

    let listed = app.space(Method::GET, "/forms?q=contact").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1));
    app.space(Method::GET, &format!("/forms/{id}")).send().await.expect(200);
    let patched = app
        .space(Method::PATCH, &format!("/forms/{id}"))
        .json(json!({"fields": [{"name": "email", "type": "email", "required": true}, {"name": "topic", "type": "select", "options": ["sales", "support"]}], "submit_label": "Ask"}))
        .send()
        .await
        .expect(200);
    assert_eq!(patched.body["version"], 2);
    assert_eq!(patched.body["fields"][1]["options"], json!(["sales", "support"]));
    let replaced = app
        .space(Method::PUT, &format!("/forms/{id}"))
        .json(json!({"name": "Contact", "fields": [{"name": "email", "type": "email"}]}))
        .send()
        .await
        .expect(200);
    assert!(
        replaced.body.get("submit_label").is_none(),
        "PUT clears what it leaves out"
    );

    app.space(Method::DELETE, &format!("/forms/{id}"))
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &format!("/forms/{id}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/forms/{id}")).send().await.expect(404);
    // The pointer went with the form.
    let gone = submit_json(&app, &id, json!({"email": "a@example.com"}))
        .await
        .expect(404);
    assert_eq!(gone.error_code(), "NOT_FOUND");
    let events = app.event_types().await;
    assert_eq!(count(&events, "form.created"), 1);
    assert_eq!(count(&events, "form.updated"), 2);
    assert_eq!(count(&events, "form.deleted"), 1);
}

/// The contact the owner's key sees a submission recorded on (the visitor never does).
async fn contact_of(app: &TestApp, form: &str) -> Value {
    let listed = app
        .space(Method::GET, &format!("/forms/{form}/submissions?limit=1"))
        .send()
        .await
        .expect(200);
    listed.body["data"][0]["contact_id"].clone()
}

async fn a_json_submission_creates_then_completes_the_contact(app: TestApp) {
    let form = lead_form(&app).await;
    let first = submit_json(
        &app,
        &form,
        json!({"email": "Ada@Example.com", "name": "Ada", "plan": "pro", "seats": "3", "consent": true}),
    )
    .await
    .expect(201);
    assert_eq!(first.body["form_id"], form.as_str());
    assert_eq!(
        first.body["data"],
        json!({"email": "ada@example.com", "name": "Ada", "plan": "pro", "seats": 3, "consent": true})
    );
    assert_eq!(first.body["message"], "We will call you back.");
    let contact_id = contact_of(&app, &form).await.as_str().expect("a contact").to_owned();
    let contacts = contacts_with_email(&app, "ada@example.com").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["id"], contact_id.as_str());
    assert_eq!(contacts[0]["name"], "Ada");

    // The same email again is recorded on that contact and fills what it lacks only, but
    // never an address: whoever knows Ada's email cannot give her contact their phone.
    submit_json(
        &app,
        &form,
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "phone": "+44 20 7946 0958", "consent": "yes"}),
    )
    .await
    .expect(201);
    assert_eq!(contact_of(&app, &form).await, contact_id.as_str());
    let contact = app
        .space(Method::GET, &format!("/contacts/{contact_id}"))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(
        (contact["name"].as_str(), contact["phone"].as_str()),
        (Some("Ada"), None)
    );
    assert_eq!(contacts_with_email(&app, "ada@example.com").await.len(), 1);

    // A contact made through the API is found by its email too.
    let grace = app
        .contact(json!({"name": "Grace", "email": "grace@example.com"}))
        .await;
    submit_json(&app, &form, json!({"email": "GRACE@example.com", "consent": true}))
        .await
        .expect(201);
    assert_eq!(contact_of(&app, &form).await, grace["id"]);

    // Public routes take no Idempotency-Key: two visitors sending the same one each get
    // their own submission, never the other's.
    for email in ["one@example.com", "two@example.com"] {
        let reply = app
            .request(Method::POST, &format!("/f/{form}"))
            .header("idempotency-key", "same")
            .json(json!({"email": email, "consent": true}))
            .send()
            .await
            .expect(201);
        assert_eq!(reply.body["data"]["email"], email);
    }

    let listed = app
        .space(Method::GET, &format!("/forms/{form}/submissions?limit=2"))
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(2));
    assert!(listed.body["next_cursor"].is_string());
    let all = app
        .space(Method::GET, &format!("/forms/{form}/submissions?order=asc"))
        .send()
        .await
        .expect(200);
    let submissions = all.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(submissions.len(), 5);
    assert_eq!(submissions[0]["data"], first.body["data"]);
    assert_eq!(submissions[0]["form_version"], 1);
    assert!(
        submissions[1]["data"]["phone"].is_string(),
        "the submission keeps the phone"
    );
    let one = app
        .space(
            Method::GET,
            &format!("/forms/{form}/submissions/{}", id_of(&submissions[0])),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(one.body["data"]["plan"], "pro");

    let events = app.event_types().await;
    assert_eq!(count(&events, "form.submission.created"), 5);
    assert_eq!(count(&events, "contact.created"), 4, "Ada, Grace (API), one, two");
    assert_eq!(
        count(&events, "contact.updated"),
        0,
        "neither submission changed a contact"
    );
}

/// A visitor who knows an email can add to that contact, never replace what it holds, and
/// gets the same answer as for an unknown email: no id, nothing that depends on the contact.
async fn a_known_email_is_neither_overwritten_nor_revealed(app: TestApp) {
    let form = create_form(
        &app,
        json!({"name": "Lead", "fields": [
            {"name": "email", "type": "email", "required": true},
            {"name": "name"}, {"name": "company"}, {"name": "phone", "type": "phone"}, {"name": "job_title"}
        ]}),
    )
    .await;
    let form = id_of(&form);
    let known = app
        .contact(
            json!({"name": "Known Person", "email": "known@example.com", "company": "Acme", "phone": "+12025550100"}),
        )
        .await;
    let values = |email: &str| json!({"email": email, "name": "Mallory", "company": "Evil Corp", "phone": "+12025550199", "job_title": "CEO"});
    let answers = [
        submit_json(&app, &form, values("known@example.com")).await.expect(201),
        submit_json(&app, &form, values("unknown@example.com"))
            .await
            .expect(201),
    ];
    let shape = |response: &Response| {
        let mut body = response.body.clone();
        body["data"]["email"] = json!("…");
        body
    };
    assert_eq!(shape(&answers[0]), shape(&answers[1]), "the same answer either way");
    for answer in &answers {
        let keys: Vec<&str> = answer
            .body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["data", "form_id", "message", "received_at"], "{}", answer.text);
        for id_prefix in ["con_", "sub_"] {
            assert!(!answer.text.contains(id_prefix), "an internal id in {}", answer.text);
        }
    }
    let browser =
        |email: &str| format!("email={email}&name=Mallory&company=Evil+Corp&phone=%2B12025550199&job_title=CEO");
    let pages = [
        submit_browser(&app, &form, &browser("known%40example.com"))
            .await
            .expect(200),
        submit_browser(&app, &form, &browser("unknown2%40example.com"))
            .await
            .expect(200),
    ];
    assert_eq!(pages[0].text, pages[1].text);

    // The known contact kept every value it had and gained the one it lacked.
    let contact = app
        .space(Method::GET, &format!("/contacts/{}", id_of(&known)))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(contact["name"], "Known Person");
    assert_eq!(contact["company"], "Acme");
    assert_eq!(contact["phone"], "+12025550100");
    assert_eq!(contact["job_title"], "CEO");
    // The owner's key still sees which contact each submission was recorded on.
    let listed = app
        .space(Method::GET, &format!("/forms/{form}/submissions?order=asc"))
        .send()
        .await
        .expect(200);
    let recorded: Vec<&Value> = listed.body["data"]
        .as_array()
        .map(|data| data.iter().map(|s| &s["contact_id"]).collect())
        .unwrap_or_default();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0], &known["id"]);
    assert_eq!(recorded[2], &known["id"]);
    let unknown = contacts_with_email(&app, "unknown@example.com").await;
    assert_eq!(unknown.len(), 1);
    assert_eq!(recorded[1], &unknown[0]["id"]);
    assert_eq!(
        unknown[0]["name"], "Mallory",
        "a new contact takes the submitted values"
    );
}

async fn a_browser_submission_gets_html_back(app: TestApp) {
    let form = lead_form(&app).await;
    let thanks = submit_browser(
        &app,
        &form,
        "email=bob%40example.com&name=Bob+B&consent=on&plan=&submit=Send",
    )
    .await
    .expect(200);
    assert_eq!(thanks.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        thanks
            .header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'none'"))
    );
    assert!(
        thanks.text.contains("Thank you") && thanks.text.contains("We will call you back."),
        "{}",
        thanks.text
    );
    let contacts = contacts_with_email(&app, "bob@example.com").await;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["name"], "Bob B");

    let problems = submit_browser(&app, &form, "email=not-an-email&seats=many")
        .await
        .expect(422);
    assert_eq!(problems.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(problems.header("content-security-policy").is_some());
    for expected in [
        "must be a valid email address",
        "<strong>I agree</strong>: must be checked",
        "<strong>Seats</strong>",
    ] {
        assert!(problems.text.contains(expected), "{expected} in {}", problems.text);
    }
    let missing = submit_browser(&app, "form_01jdxxxxxxxxxxxxxxxxxxxxxx", "email=x%40example.com")
        .await
        .expect(404);
    assert!(missing.text.contains("Form not found"));
    let submissions = app
        .space(Method::GET, &format!("/forms/{form}/submissions"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        submissions.body["data"].as_array().map(Vec::len),
        Some(1),
        "only the good post was stored"
    );
}

async fn bad_submissions_change_nothing(app: TestApp) {
    let form = lead_form(&app).await;
    let events = app.event_types().await.len();
    let invalid = submit_json(
        &app,
        &form,
        json!({"email": "nope", "plan": "gold", "colour": "red", "consent": false}),
    )
    .await
    .expect(422);
    assert_eq!(invalid.error_code(), "VALIDATION_FAILED");
    let fields = invalid.body["error"]["fields"].as_object().cloned().unwrap_or_default();
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["colour", "consent", "email", "plan"]);
    let url = format!("/f/{form}");
    app.request(Method::POST, &url)
        .raw("text/plain", "email=a@example.com")
        .send()
        .await
        .expect(415);
    app.request(Method::POST, &url)
        .raw("multipart/form-data; boundary=x", "--x--")
        .send()
        .await
        .expect(415);
    app.request(Method::POST, &url)
        .raw("application/json", "{\"email\":")
        .send()
        .await
        .expect(400);
    app.request(Method::POST, &url)
        .json(json!(["a@example.com"]))
        .send()
        .await
        .expect(422);
    let huge = format!("{{\"message\": \"{}\"}}", "x".repeat(70 * 1024));
    app.request(Method::POST, &url)
        .raw("application/json", huge)
        .send()
        .await
        .expect(413);
    app.request(Method::POST, "/f/nope")
        .json(json!({}))
        .send()
        .await
        .expect(404);
    app.request(Method::GET, &url).send().await.expect(405);
    assert_eq!(app.event_types().await.len(), events, "nothing was written");
    let submissions = app
        .space(Method::GET, &format!("/forms/{form}/submissions"))
        .send()
        .await
        .expect(200);
    assert_eq!(submissions.body["data"], json!([]));
    let contacts = app.space(Method::GET, "/contacts").send().await.expect(200);
    assert_eq!(contacts.body["data"], json!([]));
}

async fn concurrent_submissions_for_one_new_email_make_one_contact(app: TestApp) {
    let form = lead_form(&app).await;
    let replies = futures::future::join_all((0..6).map(|i| {
        submit_json(
            &app,
            &form,
            json!({"email": "rush@example.com", "consent": true, "seats": i}),
        )
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let contacts = contacts_with_email(&app, "rush@example.com").await;
    assert_eq!(contacts.len(), 1, "one contact for one email");
    let submissions = app
        .space(Method::GET, &format!("/forms/{form}/submissions"))
        .send()
        .await
        .expect(200);
    let submissions = submissions.body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(submissions.len(), 6);
    for submission in &submissions {
        assert_eq!(submission["contact_id"], contacts[0]["id"]);
    }
}

async fn submissions_are_limited_per_client_address(app: TestApp) {
    let form = lead_form(&app).await;
    let post = |address: &'static str| {
        app.request(Method::POST, &format!("/f/{form}"))
            .header("x-forwarded-for", address)
            .json(json!({}))
            .send()
    };
    for _ in 0..PUBLIC_PER_MINUTE {
        post("203.0.113.7").await.expect(422);
    }
    let limited = post("203.0.113.7").await.expect(429);
    assert_eq!(limited.error_code(), "RATE_LIMITED");
    assert!(limited.header("retry-after").is_some());
    // Another address is not held back by the first one's posts.
    let other = post("198.51.100.9").await.expect(422);
    assert!(
        other
            .header("ratelimit")
            .is_some_and(|state| state.contains(&format!("r={}", PUBLIC_PER_MINUTE - 1)))
    );
}

async fn form_scopes_and_other_spaces(app: TestApp) {
    let form = lead_form(&app).await;
    submit_json(&app, &form, json!({"email": "scope@example.com", "consent": true}))
        .await
        .expect(201);
    let listed = app
        .space(Method::GET, &format!("/forms/{form}/submissions"))
        .send()
        .await
        .expect(200);
    let submission = id_of(&listed.body["data"][0]);
    let reader = app.mint(&["forms:read"], Some(100_000)).await;
    let writer = app.mint(&["forms:write"], Some(100_000)).await;
    let item = format!("/functions/v1/space-api/forms/{form}");
    let events = app.event_types().await.len();

    let body = json!({"name": "Renamed", "fields": [{"name": "email", "type": "email"}]});
    for (method, path, body) in [
        (
            Method::POST,
            "/functions/v1/space-api/forms".to_owned(),
            Some(body.clone()),
        ),
        (Method::PATCH, item.clone(), Some(json!({"name": "Renamed"}))),
        (Method::PUT, item.clone(), Some(body.clone())),
        (Method::DELETE, item.clone(), None),
    ] {
        let mut request = app.request(method.clone(), &path).key(&reader);
        if let Some(body) = body {
            request = request.json(body);
        }
        let refused = request.send().await.expect(403);
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("forms:write")),
            "{method} {path}"
        );
    }
    for path in [
        "/functions/v1/space-api/forms".to_owned(),
        item.clone(),
        format!("{item}/submissions"),
        format!("{item}/submissions/{submission}"),
    ] {
        app.request(Method::GET, &path).key(&reader).send().await.expect(200);
        let refused = app.request(Method::GET, &path).key(&writer).send().await.expect(403);
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("forms:read")),
            "{path}"
        );
        app.request(Method::GET, &path).send().await.expect(401);
    }
    assert_eq!(app.event_types().await.len(), events, "refused calls changed nothing");
    app.request(Method::POST, "/functions/v1/space-api/forms")
        .key(&writer)
        .json(body.clone())
        .send()
        .await
        .expect(201);

    // Another Space: its key finds none of these ids, and its lists are empty.
    let (_, other) = app.other_space().await;
    for (method, path) in [
        (Method::GET, item.clone()),
        (Method::PATCH, item.clone()),
        (Method::PUT, item.clone()),
        (Method::DELETE, item.clone()),
        (Method::GET, format!("{item}/submissions")),
        (Method::GET, format!("{item}/submissions/{submission}")),
    ] {
        let mut request = app.request(method.clone(), &path).key(&other);
        if matches!(method, Method::PATCH | Method::PUT) {
            request = request.json(body.clone());
        }
        request.send().await.expect(404);
    }
    let theirs = app
        .request(Method::GET, "/functions/v1/space-api/forms")
        .key(&other)
        .send()
        .await
        .expect(200);
    assert_eq!(theirs.body["data"], json!([]));
    let their_contacts = app
        .request(Method::GET, "/functions/v1/space-api/contacts")
        .key(&other)
        .send()
        .await
        .expect(200);
    assert_eq!(
        their_contacts.body["data"],
        json!([]),
        "a submission lands in its form's Space only"
    );
    app.space(Method::GET, &format!("/forms/{form}"))
        .send()
        .await
        .expect(200);
}
