//! Pages end to end on both backends: the seed's calls, slug uniqueness (also under
//! concurrency), publish snapshots served publicly as sanitized HTML under a strict CSP,
//! embedded forms, the `pages:run` scope, and isolation between Spaces.

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Response, SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    the_seed_calls_work_as_written,
    slugs_are_derived_unique_and_released,
    concurrent_creates_with_one_slug_give_one_201_and_one_409,
    a_published_page_is_a_snapshot,
    published_html_is_sanitized_under_a_strict_csp,
    a_pricing_page_with_the_contact_form_embedded,
    a_live_page_shows_the_forms_it_was_published_with,
    publishing_needs_pages_run,
    page_routes_refuse_other_spaces,
    each_public_route_family_has_its_own_budget_per_address,
);

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

async fn create_page(app: &TestApp, body: Value) -> Value {
    app.space(Method::POST, "/pages")
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

async fn publish(app: &TestApp, id: &str) -> Value {
    app.space(Method::POST, &format!("/pages/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(200)
        .body
}

/// What a visitor gets at `/p/{space}/{slug}`.
async fn visit(app: &TestApp, space: &str, slug: &str) -> Response {
    app.request(Method::GET, &format!("/p/{space}/{slug}")).send().await
}

async fn live(app: &TestApp, slug: &str) -> Response {
    visit(app, &app.demo.space_id, slug).await
}

async fn the_seed_calls_work_as_written(app: TestApp) {
    let page = create_page(&app, json!({"title": "Launch", "layout_html": "<h1>Hello</h1>"})).await;
    let id = id_of(&page);
    assert!(id.starts_with("page_"));
    assert_eq!(
        (page["slug"].as_str(), page["status"].as_str(), page["version"].as_u64()),
        (Some("launch"), Some("draft"), Some(1))
    );
    live(&app, "launch").await.expect(404);

    let published = app
        .space(Method::POST, &format!("/pages/{id}/publish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    assert_eq!(published.header("etag"), Some("\"2\""));
    let space = &app.demo.space_id;
    assert_eq!(published.body["status"], "published");
    assert_eq!(published.body["published_slug"], "launch");
    assert_eq!(published.body["public_path"], format!("/p/{space}/launch"));
    assert_eq!(published.body["public_url"], format!("{}/p/{space}/launch", app.base));
    assert!(published.body["published_at"].is_string());

    let html = live(&app, "launch").await.expect(200);
    assert_eq!(html.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(html.header("content-security-policy"), Some(CSP));
    assert!(html.text.starts_with("<!doctype html>"), "{}", html.text);
    assert!(
        html.text.contains("<title>Launch</title>") && html.text.contains("<h1>Hello</h1>"),
        "{}",
        html.text
    );
    assert!(
        html.header("ratelimit-policy").is_some(),
        "public routes are limited per address"
    );

    // Publishing again without a body works; a body with anything in it is refused.
    app.space(Method::POST, &format!("/pages/{id}/publish"))
        .send()
        .await
        .expect(200);
    let refused = app
        .space(Method::POST, &format!("/pages/{id}/publish"))
        .json(json!({"live": true}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["live"].is_array());
    let got = app.space(Method::GET, &format!("/pages/{id}")).send().await.expect(200);
    assert_eq!(got.body["version"], 3);
    let events = app.event_types().await;
    assert_eq!(events.iter().filter(|e| *e == "page.created").count(), 1);
    assert_eq!(events.iter().filter(|e| *e == "page.published").count(), 2);
}

async fn slugs_are_derived_unique_and_released(app: TestApp) {
    let first = create_page(&app, json!({"title": "Launch"})).await;
    let second = create_page(&app, json!({"title": "Launch"})).await;
    let third = create_page(&app, json!({"title": "  Launch!!  "})).await;
    assert_eq!(
        [&first["slug"], &second["slug"], &third["slug"]],
        ["launch", "launch-2", "launch-3"]
    );
    assert_eq!(first["layout_html"], "", "layout defaults to empty");

    let clash = app
        .space(Method::POST, "/pages")
        .json(json!({"title": "Other", "slug": "launch"}))
        .send()
        .await
        .expect(409);
    assert_eq!(clash.error_code(), "CONFLICT");
    assert!(
        clash.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`launch`"))
    );
    let bad = app
        .space(Method::POST, "/pages")
        .json(json!({"title": "Other", "slug": "Not a slug!"}))
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["slug"].is_array());
    app.space(Method::POST, "/pages")
        .json(json!({"slug": "no-title"}))
        .send()
        .await
        .expect(422);
    let explicit = create_page(&app, json!({"title": "Prices", "slug": "Pricing"})).await;
    assert_eq!(explicit["slug"], "pricing", "slugs are lowercased");

    // Renaming onto a taken slug is 409; renaming away frees the old one.
    let (first_id, second_id) = (id_of(&first), id_of(&second));
    app.space(Method::PATCH, &format!("/pages/{second_id}"))
        .json(json!({"slug": "launch"}))
        .send()
        .await
        .expect(409);
    let moved = app
        .space(Method::PATCH, &format!("/pages/{first_id}"))
        .json(json!({"slug": "hello"}))
        .send()
        .await
        .expect(200);
    assert_eq!(moved.body["slug"], "hello");
    let reused = create_page(&app, json!({"title": "Again", "slug": "launch"})).await;
    // Its own slug is no clash; the title alone leaves the slug alone.
    app.space(Method::PATCH, &format!("/pages/{first_id}"))
        .json(json!({"slug": "hello", "title": "Hello world"}))
        .send()
        .await
        .expect(200);
    // `null` derives it again from the (new) title; PUT without a slug keeps it.
    let derived = app
        .space(Method::PATCH, &format!("/pages/{first_id}"))
        .json(json!({"slug": null}))
        .send()
        .await
        .expect(200);
    assert_eq!(derived.body["slug"], "hello-world");
    let replaced = app
        .space(Method::PUT, &format!("/pages/{first_id}"))
        .json(json!({"title": "Replaced", "layout_html": "<p>new</p>", "status": "published", "id": "ignored"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (replaced.body["slug"].as_str(), replaced.body["status"].as_str()),
        (Some("hello-world"), Some("draft"))
    );
    assert_eq!(
        replaced.body["id"],
        first_id.as_str(),
        "server-written fields sent back are ignored"
    );
    let stale = app
        .space(Method::PATCH, &format!("/pages/{first_id}"))
        .header("if-match", "\"1\"")
        .json(json!({"title": "x"}))
        .send()
        .await;
    stale.expect(412);

    // Deleting releases the slug.
    app.space(Method::DELETE, &format!("/pages/{}", id_of(&reused)))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/pages/{}", id_of(&reused)))
        .send()
        .await
        .expect(404);
    create_page(&app, json!({"title": "Launch again", "slug": "launch"})).await;

    let found = app.space(Method::GET, "/pages?q=launch").send().await.expect(200);
    let slugs: Vec<&str> = found.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["slug"].as_str())
        .collect();
    assert_eq!(slugs, ["launch", "launch-3", "launch-2"]);
    let drafts = app
        .space(Method::GET, "/pages?status=draft&limit=2")
        .send()
        .await
        .expect(200);
    assert_eq!(drafts.body["data"].as_array().map(Vec::len), Some(2));
    assert!(drafts.body["next_cursor"].is_string());
    app.space(Method::GET, "/pages?status=live").send().await.expect(422);
}

async fn concurrent_creates_with_one_slug_give_one_201_and_one_409(app: TestApp) {
    for round in 0..3 {
        let body = json!({"title": "Race", "slug": format!("race-{round}")});
        let (a, b) = tokio::join!(
            app.space(Method::POST, "/pages").json(body.clone()).send(),
            app.space(Method::POST, "/pages").json(body.clone()).send(),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}: {} / {}", a.text, b.text);
    }
    // Derived slugs under concurrency are all distinct.
    let replies = futures::future::join_all(
        (0..4).map(|_| app.space(Method::POST, "/pages").json(json!({"title": "Offer"})).send()),
    )
    .await;
    let mut slugs: Vec<String> = replies
        .iter()
        .map(|r| r.body["slug"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    slugs.sort();
    assert_eq!(slugs, ["offer", "offer-2", "offer-3", "offer-4"]);
    let listed = app.space(Method::GET, "/pages?limit=200").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(7));
}

async fn a_published_page_is_a_snapshot(app: TestApp) {
    let page = create_page(&app, json!({"title": "About", "layout_html": "<p>v1</p>"})).await;
    let id = id_of(&page);
    publish(&app, &id).await;
    let path = format!("/pages/{id}");
    app.space(Method::PATCH, &path)
        .json(json!({"layout_html": "<p>v2</p>", "title": "About us"}))
        .send()
        .await
        .expect(200);
    let still = live(&app, "about").await.expect(200);
    assert!(
        still.text.contains("<p>v1</p>") && still.text.contains("<title>About</title>"),
        "draft edits change nothing live"
    );
    let got = app.space(Method::GET, &path).send().await.expect(200);
    assert_eq!(
        (got.body["status"].as_str(), got.body["layout_html"].as_str()),
        (Some("published"), Some("<p>v2</p>"))
    );

    // A new draft slug is not live either, and the live one stays taken.
    app.space(Method::PATCH, &path)
        .json(json!({"slug": "about-us"}))
        .send()
        .await
        .expect(200);
    live(&app, "about").await.expect(200);
    live(&app, "about-us").await.expect(404);
    app.space(Method::POST, "/pages")
        .json(json!({"title": "Squatter", "slug": "about"}))
        .send()
        .await
        .expect(409);

    // The next publish moves everything live at once and frees the old address.
    let republished = publish(&app, &id).await;
    assert_eq!(republished["public_path"], format!("/p/{}/about-us", app.demo.space_id));
    let moved = live(&app, "about-us").await.expect(200);
    assert!(moved.text.contains("<p>v2</p>") && moved.text.contains("<title>About us</title>"));
    live(&app, "about").await.expect(404);
    create_page(&app, json!({"title": "New about", "slug": "about"})).await;

    let down = app
        .space(Method::POST, &format!("/pages/{id}/unpublish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    assert_eq!(down.body["status"], "draft");
    for gone in ["public_path", "public_url", "published_at"] {
        assert!(down.body.get(gone).is_none(), "{gone}");
    }
    live(&app, "about-us").await.expect(404);
    app.space(Method::POST, &format!("/pages/{id}/unpublish"))
        .json(json!({}))
        .send()
        .await
        .expect(409);

    // A published page is not deleted by a write (taking it down is `pages:run`); once
    // unpublished, deleting it frees its slug.
    publish(&app, &id).await;
    live(&app, "about-us").await.expect(200);
    let refused = app.space(Method::DELETE, &path).send().await.expect(409);
    assert!(refused.text.contains("/unpublish"), "{}", refused.text);
    live(&app, "about-us").await.expect(200);
    app.space(Method::POST, &format!("/pages/{id}/unpublish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &path).send().await.expect(204);
    live(&app, "about-us").await.expect(404);
    create_page(&app, json!({"title": "Reuse", "slug": "about-us"})).await;
    let events = app.event_types().await;
    assert_eq!(events.iter().filter(|e| *e == "page.unpublished").count(), 2);
    assert_eq!(events.iter().filter(|e| *e == "page.deleted").count(), 1);
}

async fn published_html_is_sanitized_under_a_strict_csp(app: TestApp) {
    let layout = "<h1 onclick=\"steal()\" style=\"color:#333\">Sale</h1><script>alert('x')</script>\
                  <p>Save <b>50%</b> <a href=\"javascript:alert(1)\">now</a> <a href=\"https://example.com/terms\">terms</a></p>\
                  <img src=\"https://example.com/a.png\" onerror=\"x()\" alt=\"banner\"><iframe src=\"https://evil.example\"></iframe>\
                  <form action=\"https://evil.example/steal\"><input name=\"card\"></form><style>h1{font-size:3rem}</style>";
    let page = create_page(
        &app,
        json!({"title": "Sale <script>", "slug": "sale", "layout_html": layout}),
    )
    .await;
    assert_eq!(page["layout_html"], layout, "the draft keeps what was written");
    publish(&app, &id_of(&page)).await;
    let html = live(&app, "sale").await.expect(200);
    let csp = html.header("content-security-policy").unwrap_or_default();
    assert_eq!(csp, CSP);
    assert!(!csp.contains("script-src"), "no script source is allowed at all");
    assert_eq!(html.header("x-content-type-options"), Some("nosniff"));
    for forbidden in [
        "<script",
        "alert(",
        "onclick",
        "onerror",
        "javascript:",
        "<iframe",
        "evil.example",
        "name=\"card\"",
    ] {
        assert!(!html.text.contains(forbidden), "{forbidden} survived: {}", html.text);
    }
    for kept in [
        "<h1 style=\"color:#333\">Sale</h1>",
        "<b>50%</b>",
        "href=\"https://example.com/terms\"",
        "src=\"https://example.com/a.png\"",
        "<style>h1{font-size:3rem}</style>",
        "<title>Sale &lt;script&gt;</title>",
    ] {
        assert!(html.text.contains(kept), "{kept} missing: {}", html.text);
    }
}

async fn a_pricing_page_with_the_contact_form_embedded(app: TestApp) {
    let form = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Contact us", "fields": [{"name": "email", "type": "email", "required": true}, {"name": "name", "label": "Your name"}]}))
        .send()
        .await
        .expect(201);
    let form_id = id_of(&form.body);
    let page = create_page(
        &app,
        json!({"title": "Pricing", "slug": "pricing", "layout_html": format!("<h1>Pricing</h1><div class=\"cta\">{{{{form:{form_id}}}}}</div>")}),
    )
    .await;
    publish(&app, &id_of(&page)).await;
    let html = live(&app, "pricing").await.expect(200);
    let action = format!(
        "<form class=\"space-form\" method=\"post\" action=\"/f/{form_id}?page={}\"",
        id_of(&page)
    );
    for expected in [
        action.as_str(),
        "<div class=\"cta\"><form",
        "type=\"email\"",
        "name=\"email\"",
        "autocomplete=\"email\" required>",
        "<label for=\"",
        "Your name</label>",
        "<button type=\"submit\">Send</button>",
    ] {
        assert!(html.text.contains(expected), "{expected} missing: {}", html.text);
    }
    assert!(!html.text.contains("{{form:"), "the placeholder is replaced");

    // What the browser posts from that page creates the contact.
    let thanks = app
        .request(Method::POST, &format!("/f/{form_id}"))
        .raw(
            "application/x-www-form-urlencoded",
            "email=visitor%40example.com&name=Visitor",
        )
        .send()
        .await
        .expect(200);
    assert!(thanks.text.contains("Thank you"));
    let contacts = app
        .space(Method::GET, "/contacts?email=visitor@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(contacts.body["data"][0]["name"], "Visitor");

    // Publishing refuses forms that are not this Space's.
    let (_, other_key) = app.other_space().await;
    let theirs = app
        .request(Method::POST, &format!("{SPACE_API}/forms"))
        .key(&other_key)
        .json(json!({"name": "Theirs", "fields": [{"name": "email", "type": "email"}]}))
        .send()
        .await
        .expect(201);
    let broken = create_page(
        &app,
        json!({"title": "Broken", "layout_html": format!("{{{{form:{}}}}} {{{{form:form_01jdxxxxxxxxxxxxxxxxxxxxxx}}}}", id_of(&theirs.body))}),
    )
    .await;
    let refused = app
        .space(Method::POST, &format!("/pages/{}/publish", id_of(&broken)))
        .json(json!({}))
        .send()
        .await
        .expect(422);
    let problems = refused.body["error"]["fields"]["layout_html"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(problems.len(), 2, "{}", refused.text);
    live(&app, "broken").await.expect(404);

    // A form deleted after publishing leaves the page up, without it.
    app.space(Method::DELETE, &format!("/forms/{form_id}"))
        .send()
        .await
        .expect(204);
    let without = live(&app, "pricing").await.expect(200);
    assert!(without.text.contains("<h1>Pricing</h1>") && !without.text.contains("<form"));
}

/// Editing a form (`forms:write`) changes nothing on a live page: the page shows, and
/// checks posts from it against, the form as it was published (`pages:run`).
async fn a_live_page_shows_the_forms_it_was_published_with(app: TestApp) {
    let form_editor = app.mint(&["forms:read", "forms:write"], Some(100_000)).await;
    let form = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Contact", "fields": [{"name": "email", "type": "email", "required": true}, {"name": "name", "label": "Your name"}]}))
        .send()
        .await
        .expect(201);
    let form_id = id_of(&form.body);
    let page = create_page(
        &app,
        json!({"title": "Contact", "slug": "contact", "layout_html": format!("<h1>Talk to us</h1>{{{{form:{form_id}}}}}")}),
    )
    .await;
    let page_id = id_of(&page);
    publish(&app, &page_id).await;
    let shown = live(&app, "contact").await.expect(200);
    let from_page = format!("/f/{form_id}?page={page_id}");
    for expected in [
        format!("action=\"{from_page}\""),
        "Your name</label>".to_owned(),
        "<button type=\"submit\">Send</button>".to_owned(),
    ] {
        assert!(shown.text.contains(&expected), "{expected} missing: {}", shown.text);
    }

    app.request(Method::PATCH, &format!("{SPACE_API}/forms/{form_id}"))
        .key(&form_editor)
        .json(json!({
            "fields": [
                {"name": "email", "type": "email", "required": true},
                {"name": "name", "label": "Card number"},
                {"name": "cvc", "required": true, "label": "CVC"}
            ],
            "submit_label": "Pay now"
        }))
        .send()
        .await
        .expect(200);
    let after_edit = live(&app, "contact").await.expect(200);
    assert_eq!(after_edit.text, shown.text, "the live page did not change");

    // Posts from the page are checked against the form it shows; posts straight to the
    // form against the form as it is now.
    let post = |path: String, values: Value| app.request(Method::POST, &path).json(values).send();
    post(from_page.clone(), json!({"email": "a@example.com", "name": "A"}))
        .await
        .expect(201);
    let unknown = post(from_page.clone(), json!({"email": "b@example.com", "cvc": "123"}))
        .await
        .expect(422);
    assert!(unknown.body["error"]["fields"]["cvc"].is_array(), "{}", unknown.text);
    let browser = app
        .request(Method::POST, &from_page)
        .raw("application/x-www-form-urlencoded", "email=c%40example.com")
        .send()
        .await
        .expect(200);
    assert!(browser.text.contains("Thank you"));
    let direct = post(format!("/f/{form_id}"), json!({"email": "d@example.com"}))
        .await
        .expect(422);
    assert!(direct.body["error"]["fields"]["cvc"].is_array(), "{}", direct.text);
    let submissions = app
        .space(Method::GET, &format!("/forms/{form_id}/submissions?order=asc"))
        .send()
        .await
        .expect(200);
    let first = &submissions.body["data"][0];
    assert_eq!(
        (first["form_version"].as_u64(), first["page_id"].as_str()),
        (Some(1), Some(page_id.as_str()))
    );

    // Publishing again shows the edited form, and posts from the page follow it.
    publish(&app, &page_id).await;
    let republished = live(&app, "contact").await.expect(200);
    assert!(
        republished.text.contains("Pay now") && republished.text.contains("CVC"),
        "{}",
        republished.text
    );
    post(from_page.clone(), json!({"email": "e@example.com"}))
        .await
        .expect(422);
    post(from_page.clone(), json!({"email": "e@example.com", "cvc": "123"}))
        .await
        .expect(201);

    // A page without the form, or taken down, keeps no copy to post against.
    app.space(Method::PATCH, &format!("/pages/{page_id}"))
        .json(json!({"layout_html": "<h1>Call us</h1>"}))
        .send()
        .await
        .expect(200);
    publish(&app, &page_id).await;
    post(from_page.clone(), json!({"email": "f@example.com", "cvc": "1"}))
        .await
        .expect(404);
    app.space(Method::PATCH, &format!("/pages/{page_id}"))
        .json(json!({"layout_html": format!("{{{{form:{form_id}}}}}")}))
        .send()
        .await
        .expect(200);
    publish(&app, &page_id).await;
    post(from_page.clone(), json!({"email": "g@example.com", "cvc": "1"}))
        .await
        .expect(201);
    app.space(Method::POST, &format!("/pages/{page_id}/unpublish"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let gone = post(from_page.clone(), json!({"email": "h@example.com", "cvc": "1"}))
        .await
        .expect(404);
    assert_eq!(gone.error_code(), "NOT_FOUND");
    post(format!("/f/{form_id}"), json!({"email": "h@example.com", "cvc": "1"}))
        .await
        .expect(201);
    post(
        format!("/f/{form_id}?page=nonsense"),
        json!({"email": "i@example.com", "cvc": "1"}),
    )
    .await
    .expect(404);

    // A page embeds a bounded number of forms.
    let mut layout = String::new();
    for n in 0..11 {
        let extra = app
            .space(Method::POST, "/forms")
            .json(json!({"name": format!("Form {n}"), "fields": [{"name": "email", "type": "email"}]}))
            .send()
            .await
            .expect(201);
        layout.push_str(&format!("{{{{form:{}}}}}", id_of(&extra.body)));
    }
    let crowded = create_page(&app, json!({"title": "Crowded", "layout_html": layout})).await;
    let refused = app
        .space(Method::POST, &format!("/pages/{}/publish", id_of(&crowded)))
        .json(json!({}))
        .send()
        .await
        .expect(422);
    assert!(refused.text.contains("at most 10"), "{}", refused.text);
}

async fn publishing_needs_pages_run(app: TestApp) {
    let builder = app.mint(&["pages:read", "pages:write"], Some(100_000)).await;
    let page = app
        .request(Method::POST, &format!("{SPACE_API}/pages"))
        .key(&builder)
        .json(json!({"title": "Launch"}))
        .send()
        .await
        .expect(201);
    let id = id_of(&page.body);
    app.request(Method::PATCH, &format!("{SPACE_API}/pages/{id}"))
        .key(&builder)
        .json(json!({"layout_html": "<p>hi</p>"}))
        .send()
        .await
        .expect(200);
    let events = app.event_types().await.len();
    for action in ["publish", "unpublish"] {
        let refused = app
            .request(Method::POST, &format!("{SPACE_API}/pages/{id}/{action}"))
            .key(&builder)
            .json(json!({}))
            .send()
            .await
            .expect(403);
        assert_eq!(refused.error_code(), "FORBIDDEN");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("pages:run"))
        );
    }
    assert_eq!(app.event_types().await.len(), events, "refused calls changed nothing");
    let page = app
        .request(Method::GET, &format!("{SPACE_API}/pages/{id}"))
        .key(&builder)
        .send()
        .await
        .expect(200);
    assert_eq!(page.body["status"], "draft");
    live(&app, "launch").await.expect(404);

    // `pages:run` is what publishes.
    let runner = app.mint(&["pages:run"], Some(100_000)).await;
    app.request(Method::POST, &format!("{SPACE_API}/pages/{id}/publish"))
        .key(&runner)
        .json(json!({}))
        .send()
        .await
        .expect(200);
    live(&app, "launch").await.expect(200);

    // Reading and writing are separate too; a read-only key refuses what changes anything.
    let reader = app.mint(&["pages:read"], Some(100_000)).await;
    let writer = app.mint(&["pages:write"], Some(100_000)).await;
    let read_only = {
        let minted = app
            .account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
            .json(json!({"name": "ro", "scopes": ["pages:read", "pages:write", "pages:run"], "read_only": true, "rate_limit_per_minute": 100000}))
            .send()
            .await
            .expect(201);
        minted.body["token"].as_str().unwrap_or_default().to_owned()
    };
    let events = app.event_types().await.len();
    let item = format!("{SPACE_API}/pages/{id}");
    let cases: Vec<(Method, String, Option<Value>, &str)> = vec![
        (
            Method::POST,
            format!("{SPACE_API}/pages"),
            Some(json!({"title": "x"})),
            "pages:write",
        ),
        (Method::PATCH, item.clone(), Some(json!({"title": "x"})), "pages:write"),
        (Method::PUT, item.clone(), Some(json!({"title": "x"})), "pages:write"),
        (Method::DELETE, item.clone(), None, "pages:write"),
        (Method::POST, format!("{item}/publish"), Some(json!({})), "pages:run"),
        (Method::POST, format!("{item}/unpublish"), Some(json!({})), "pages:run"),
    ];
    for (method, path, body, scope) in &cases {
        for key in [&reader, &read_only] {
            let mut request = app.request(method.clone(), path).key(key);
            if let Some(body) = body {
                request = request.json(body.clone());
            }
            let refused = request.send().await.expect(403);
            let message = refused.body["error"]["message"].as_str().unwrap_or_default().to_owned();
            assert!(
                key == &read_only || message.contains(scope),
                "{method} {path}: {message}"
            );
        }
    }
    for path in [format!("{SPACE_API}/pages"), item.clone()] {
        app.request(Method::GET, &path).key(&reader).send().await.expect(200);
        let refused = app.request(Method::GET, &path).key(&writer).send().await.expect(403);
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("pages:read"))
        );
        app.request(Method::GET, &path).send().await.expect(401);
    }
    assert_eq!(app.event_types().await.len(), events, "refused calls changed nothing");
    live(&app, "launch").await.expect(200);
}

async fn page_routes_refuse_other_spaces(app: TestApp) {
    let page = create_page(&app, json!({"title": "Mine", "layout_html": "<p>mine</p>"})).await;
    let id = id_of(&page);
    publish(&app, &id).await;
    let (other_space, other_key) = app.other_space().await;
    let events = app.event_types().await.len();
    let item = format!("{SPACE_API}/pages/{id}");
    for (method, path, body) in [
        (Method::GET, item.clone(), None),
        (Method::PATCH, item.clone(), Some(json!({"title": "Theirs"}))),
        (Method::PUT, item.clone(), Some(json!({"title": "Theirs"}))),
        (Method::DELETE, item.clone(), None),
        (Method::POST, format!("{item}/publish"), Some(json!({}))),
        (Method::POST, format!("{item}/unpublish"), Some(json!({}))),
    ] {
        let mut request = app.request(method.clone(), &path).key(&other_key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect(404);
        assert_eq!(response.error_code(), "NOT_FOUND", "{method} {path}");
    }
    assert_eq!(app.event_types().await.len(), events);
    let theirs = app
        .request(Method::GET, &format!("{SPACE_API}/pages"))
        .key(&other_key)
        .send()
        .await
        .expect(200);
    assert_eq!(theirs.body["data"], json!([]));
    // The same slug in another Space is another page; ours is not served there.
    visit(&app, &other_space, "mine").await.expect(404);
    let their_page = app
        .request(Method::POST, &format!("{SPACE_API}/pages"))
        .key(&other_key)
        .json(json!({"title": "Mine", "layout_html": "<p>theirs</p>"}))
        .send()
        .await
        .expect(201);
    assert_eq!(their_page.body["slug"], "mine", "slugs are unique per Space");
    app.request(
        Method::POST,
        &format!("{SPACE_API}/pages/{}/publish", id_of(&their_page.body)),
    )
    .key(&other_key)
    .json(json!({}))
    .send()
    .await
    .expect(200);
    assert!(
        visit(&app, &other_space, "mine")
            .await
            .expect(200)
            .text
            .contains("<p>theirs</p>")
    );
    assert!(live(&app, "mine").await.expect(200).text.contains("<p>mine</p>"));
    // Malformed addresses cost nothing and find nothing.
    for path in ["/p/nope/mine", "/p/spc_01jdxxxxxxxxxxxxxxxxxxxxxx/mine"] {
        app.request(Method::GET, path).send().await.expect(404);
    }
    visit(&app, &app.demo.space_id, "Not_A_Slug").await.expect(404);
    app.request(Method::GET, &format!("/p/{}", app.demo.space_id))
        .send()
        .await
        .expect(404);
}

/// One address that reads a published page until its budget is spent can still post the
/// page's form and open a booking page: each public route family (`/p`, `/f`, `/b`, …) has
/// its own budget per address. Another address is not held back at all.
async fn each_public_route_family_has_its_own_budget_per_address(app: TestApp) {
    let families: std::collections::BTreeSet<String> = space_catalogue::operations()
        .iter()
        .filter(|operation| matches!(operation.access, space_http::Access::Public { .. }))
        .map(|operation| operation.public_family().to_owned())
        .collect();
    assert_eq!(
        families,
        ["b", "c", "console", "d", "f", "hooks", "p", "u"]
            .map(String::from)
            .into(),
        "the public route families"
    );
    let limit_of = |name: &str| {
        space_catalogue::operations()
            .iter()
            .find_map(|operation| match operation.access {
                space_http::Access::Public { per_minute } if operation.name == name => Some(per_minute),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no public operation {name}"))
    };
    let (views, posts) = (limit_of("pages_view"), limit_of("forms_submit"));

    let form = app
        .space(Method::POST, "/forms")
        .json(json!({"name": "Contact", "fields": [{"name": "email", "type": "email", "required": true}]}))
        .send()
        .await
        .expect(201);
    let form_id = id_of(&form.body);
    let page = create_page(
        &app,
        json!({"title": "Busy", "slug": "busy", "layout_html": format!("<h1>Busy</h1>{{{{form:{form_id}}}}}")}),
    )
    .await;
    publish(&app, &id_of(&page)).await;
    let kind = app
        .space(Method::POST, "/booking/appointment-types")
        .json(json!({"name": "Intro", "duration_minutes": 30}))
        .send()
        .await
        .expect(201);
    let booking = app
        .space(Method::POST, "/booking/pages")
        .json(json!({"name": "Book", "appointment_type_ids": [id_of(&kind.body)]}))
        .send()
        .await
        .expect(201);
    let from =
        |address: &str, method: Method, path: String| app.request(method, &path).header("x-forwarded-for", address);
    let page_path = format!("/p/{}/busy", app.demo.space_id);
    let busy = "203.0.113.50";
    for _ in 0..views {
        from(busy, Method::GET, page_path.clone()).send().await.expect(200);
    }
    let refused = from(busy, Method::GET, page_path.clone()).send().await.expect(429);
    assert_eq!(refused.error_code(), "RATE_LIMITED");
    assert!(
        refused.text.contains("/p/"),
        "the refusal names the family: {}",
        refused.text
    );
    assert!(refused.header("retry-after").is_some());

    // The same address posts the form it read, and opens a booking page, on budgets of
    // their own.
    let posted = from(busy, Method::POST, format!("/f/{form_id}?page={}", id_of(&page)))
        .json(json!({"email": "busy@example.com"}))
        .send()
        .await
        .expect(201);
    assert!(
        posted
            .header("ratelimit")
            .is_some_and(|state| state.contains(&format!("r={}", posts - 1))),
        "the form budget is untouched by the page views: {:?}",
        posted.header("ratelimit")
    );
    from(busy, Method::GET, format!("/b/{}", id_of(&booking.body)))
        .send()
        .await
        .expect(200);
    // Another address reads the page.
    from("198.51.100.20", Method::GET, page_path.clone())
        .send()
        .await
        .expect(200);
    // The page budget comes back with the next window.
    app.clock.advance(chrono::TimeDelta::seconds(60));
    from(busy, Method::GET, page_path).send().await.expect(200);
}
