//! Deleting a Space on both backends: every keyless route into it (published pages, form
//! posts, booking pages, the calendar feed, signed media links) answers 404 from the
//! moment the deletion returns, its keys are refused, and a tombstone is left for the purge
//! (tests/tests/api/purge.rs follows the purge to its end).

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use space_http::operation::Access;
use space_tests::{Response, SPACE_API, TestApp, on_both_backends};

on_both_backends!(deleting_a_space_takes_every_public_route_down);

/// A real 1×1 PNG.
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0d\x49\x44\x41\x54\x78\x9c\x63\x60\x60\x60\xf8\x0f\x00\x01\x04\x01\x00\x5f\xe5\xc3\x4b\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

/// One visitor request to a public route, named by the operation it reaches.
struct Visit {
    operation: &'static str,
    method: Method,
    path: String,
    body: Option<(&'static str, Vec<u8>)>,
    /// Whether the answer is HTML rather than the JSON envelope when refused.
    html_refusal: bool,
    /// A provider callback's signature of its body.
    signature: Option<String>,
}

impl Visit {
    fn new(operation: &'static str, method: Method, path: String) -> Visit {
        Visit {
            operation,
            method,
            path,
            body: None,
            html_refusal: false,
            signature: None,
        }
    }

    fn json(mut self, body: Value) -> Visit {
        self.body = Some(("application/json", body.to_string().into_bytes()));
        self
    }

    /// A JSON body signed with a messaging connection's secret, as its provider sends it.
    fn signed(mut self, body: Value, secret: &str, now: i64) -> Visit {
        let bytes = body.to_string().into_bytes();
        self.signature = Some(inbox::inbound::sign(secret, now, &bytes));
        self.body = Some(("application/json", bytes));
        self
    }

    fn raw(mut self, content_type: &'static str, bytes: &[u8]) -> Visit {
        self.body = Some((content_type, bytes.to_vec()));
        self
    }

    async fn send(&self, app: &TestApp) -> Response {
        let mut request = app.request(self.method.clone(), &self.path);
        if let Some((content_type, bytes)) = &self.body {
            request = request.raw(content_type, bytes.clone());
        }
        if let Some(signature) = &self.signature {
            request = request.header(space_http::operation::SIGNATURE_HEADER, signature);
        }
        request.send().await
    }
}

/// A signed local link (`/u/…`, `/d/…`) to a media item, as a path of this server.
fn link(app: &TestApp, space: &str, media_id: &str, grant: assets::Grant) -> String {
    let url = assets::Link {
        space: space.to_owned(),
        media_id: media_id.to_owned(),
        grant,
        expires_at: app.engine.now().timestamp() + 600,
    }
    .url(&app.engine);
    url.trim_start_matches(&app.base).to_owned()
}

async fn deleting_a_space_takes_every_public_route_down(app: TestApp) {
    let (space, key) = app.other_space().await;
    let call = |method: Method, path: &str, body: Value| {
        app.request(method, &format!("{SPACE_API}{path}"))
            .key(&key)
            .json(body)
            .send()
    };
    let form = call(
        Method::POST,
        "/forms",
        json!({"name": "Contact", "fields": [{"name": "email", "type": "email", "required": true}]}),
    )
    .await
    .expect(201);
    let form = id_of(&form.body);
    let page = call(
        Method::POST,
        "/pages",
        json!({"title": "Hello", "slug": "hello", "layout_html": format!("<h1>Hello</h1>{{{{form:{form}}}}}")}),
    )
    .await
    .expect(201);
    let page = id_of(&page.body);
    call(Method::POST, &format!("/pages/{page}/publish"), json!({}))
        .await
        .expect(200);
    let kind = call(
        Method::POST,
        "/booking/appointment-types",
        json!({"name": "Intro", "duration_minutes": 30}),
    )
    .await
    .expect(201);
    let booking_page = call(
        Method::POST,
        "/booking/pages",
        json!({"name": "Book", "appointment_type_ids": [id_of(&kind.body)]}),
    )
    .await
    .expect(201);
    let booking_page = id_of(&booking_page.body);
    call(
        Method::POST,
        "/calendar/events",
        json!({"title": "Private board meeting", "start": "2099-03-02T09:00:00Z", "end": "2099-03-02T10:00:00Z"}),
    )
    .await
    .expect(201);
    let feed = call(Method::POST, "/calendar/ical-token/rotate", json!({}))
        .await
        .expect(200);
    let feed = feed.body["url"].as_str().expect("a feed URL").to_owned();
    let media = call(
        Method::POST,
        "/media",
        json!({"filename": "dot.png", "content_type": "image/png", "content_base64": STANDARD.encode(PNG)}),
    )
    .await
    .expect(201);
    let media = id_of(&media.body);
    let upload = || async {
        let pending = call(
            Method::POST,
            "/media/uploads",
            json!({"filename": "dot.png", "content_type": "image/png", "size": PNG.len()}),
        )
        .await
        .expect(201);
        link(&app, &space, &id_of(&pending.body), assets::Grant::Upload)
    };
    let (upload_before, upload_after) = (upload().await, upload().await);
    let channel = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "messaging", "channel": "sms", "name": "Texts", "address": "+12015550100"}))
        .send()
        .await
        .expect(201);
    let secret = channel.body["signing_secret"].as_str().expect("a secret").to_owned();
    let channel = id_of(&channel.body);

    // Every keyless route, each with a request that works while the Space lives.
    let visits = |upload: &str, start: &str, email: &str| {
        vec![
            Visit::new("pages_view", Method::GET, format!("/p/{space}/hello")),
            Visit::new("forms_submit", Method::POST, format!("/f/{form}")).json(json!({"email": email})),
            Visit::new("forms_submit", Method::POST, format!("/f/{form}?page={page}")).json(json!({"email": email})),
            Visit {
                html_refusal: true,
                ..Visit::new("forms_submit", Method::POST, format!("/f/{form}")).raw(
                    "application/x-www-form-urlencoded",
                    format!("email={}", email.replace('@', "%40")).as_bytes(),
                )
            },
            Visit::new("booking_public_page", Method::GET, format!("/b/{booking_page}")),
            Visit::new(
                "booking_public_slots",
                Method::GET,
                format!("/b/{booking_page}/slots?from=2099-03-02T00:00:00Z&to=2099-03-03T00:00:00Z"),
            ),
            Visit::new("booking_public_book", Method::POST, format!("/b/{booking_page}/book"))
                .json(json!({"start": start, "contact": {"email": email}})),
            Visit::new("calendar_public_feed", Method::GET, feed.clone()),
            Visit::new(
                "assets_media_download",
                Method::GET,
                link(&app, &space, &media, assets::Grant::Download),
            ),
            Visit::new("assets_media_upload_receive", Method::PUT, upload.to_owned()).raw("image/png", PNG),
            Visit::new("inbox_hook", Method::POST, format!("/hooks/messaging/{channel}")).signed(
                json!({"from": "+12015550123", "text": email}),
                &secret,
                app.engine.now().timestamp(),
            ),
        ]
    };
    let before = visits(&upload_before, "2099-03-02T10:00:00Z", "before@example.com");
    for visit in &before {
        let answer = visit.send(&app).await;
        assert!(
            matches!(answer.status, 200 | 201),
            "{} {} before the deletion: {} {}",
            visit.method,
            visit.path,
            answer.status,
            answer.text
        );
    }
    let page_html = before[0].send(&app).await.expect(200);
    assert!(page_html.text.contains("<h1>Hello</h1>"));
    let calendar = before[7].send(&app).await.expect(200);
    assert!(calendar.text.contains("Private board meeting"));

    // The test covers every public route the catalogue has that leads into a Space (the
    // console is one page for everyone, with nothing of a Space in it).
    let covered: BTreeSet<&str> = before.iter().map(|visit| visit.operation).collect();
    let public: BTreeSet<String> = space_catalogue::operations()
        .into_iter()
        .filter(|operation| matches!(operation.access, Access::Public { .. }))
        .filter(|operation| operation.public_family() != "console")
        .map(|operation| operation.name)
        .collect();
    assert_eq!(
        covered,
        public.iter().map(String::as_str).collect(),
        "a public route this test does not try"
    );

    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);

    for visit in visits(&upload_after, "2099-03-02T11:00:00Z", "after@example.com") {
        let answer = visit.send(&app).await;
        assert_eq!(
            answer.status, 404,
            "{} {} after the deletion: {}",
            visit.method, visit.path, answer.text
        );
        if visit.html_refusal {
            assert!(answer.text.contains("Form not found"), "{}", answer.text);
        } else {
            assert_eq!(answer.error_code(), "NOT_FOUND", "{} {}", visit.method, visit.path);
        }
        assert!(!answer.text.contains("Private board meeting") && !answer.text.contains("Hello"));
    }

    // Its keys are refused over REST and MCP; the owner sees it deleting, and can add
    // nothing to it.
    call(Method::GET, "/contacts", Value::Null).await.expect(401);
    app.mcp(&key, "", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect(401);
    let shown = app
        .account(Method::GET, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(200);
    assert_eq!(shown.body["status"], "deleting");
    app.account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(json!({"name": "late", "scopes": ["contacts:read"]}))
        .send()
        .await
        .expect(409);

    // The tombstone names the Space for the purge.
    let tombstones = app
        .engine
        .store()
        .query(space_store::Query::partition(space_http::keys::SPACE_TOMBSTONES))
        .await
        .expect("tombstones read");
    let named: Vec<&str> = tombstones
        .items
        .iter()
        .filter_map(|item| item.body.get("space_id").and_then(Value::as_str))
        .collect();
    assert_eq!(named, [space.as_str()]);

    // The demo Space's public routes are untouched.
    let theirs = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Still here", "fields": [{"name": "email", "type": "email"}]}))
        .send()
        .await
        .expect(201);
    app.request(Method::POST, &format!("/f/{}", id_of(&theirs.body)))
        .json(json!({"email": "still@example.com"}))
        .send()
        .await
        .expect(201);
}
