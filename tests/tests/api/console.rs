//! The owner's console: its page, stylesheet, script and settings answer with a strict
//! Content-Security-Policy (errors too); the scope catalogue it builds its grid from is
//! `space_auth`'s; its MCP lines are the CLI's; and the owner's account key watches the live
//! stream of its own Spaces, never another account's.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use space_auth::{Action, Domain};
use space_tests::{ACCOUNT_API, Response, TestApp, on_both_backends};

on_both_backends!(
    every_console_answer_carries_the_security_headers,
    the_page_loads_only_its_own_script_and_style,
    the_scope_catalogue_is_space_auths,
    the_mcp_lines_are_the_clis,
    an_account_key_watches_its_own_space_live,
    an_account_key_cannot_watch_another_accounts_space,
    the_live_view_follows_the_realtime_url_the_table_records,
);

const REALTIME: &str = "/functions/v1/space-realtime";

const POLICY: &[&str] = &[
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
];

fn assert_secured(response: &Response, path: &str) {
    let policy = response.header("content-security-policy").unwrap_or_default();
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    for directive in POLICY {
        assert!(
            directives.contains(directive),
            "{path}: `{directive}` missing from `{policy}`"
        );
    }
    assert_eq!(
        directives.len(),
        POLICY.len(),
        "{path}: only these directives: {policy}"
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"), "{path}");
    assert_eq!(response.header("referrer-policy"), Some("no-referrer"), "{path}");
}

async fn every_console_answer_carries_the_security_headers(app: TestApp) {
    for (path, media_type) in [
        ("/console", "text/html"),
        ("/console/console.css", "text/css"),
        ("/console/console.js", "text/javascript"),
        ("/console/config.json", "application/json"),
    ] {
        let response = app.request(Method::GET, path).send().await.expect(200);
        assert_secured(&response, path);
        assert!(
            response
                .header("content-type")
                .unwrap_or_default()
                .starts_with(media_type),
            "{path}: {:?}",
            response.header("content-type")
        );
    }
    let missing = app.request(Method::GET, "/console/other.js").send().await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(missing.error_code(), "NOT_FOUND");
    assert_secured(&missing, "/console/other.js");
    for path in ["/console", "/console/console.js"] {
        let put = app.request(Method::PUT, path).send().await;
        assert_eq!(put.status, 405);
        assert_eq!(put.error_code(), "METHOD_NOT_ALLOWED");
        assert_eq!(put.header("allow"), Some("GET, HEAD"));
        assert_secured(&put, path);
    }
}

async fn the_page_loads_only_its_own_script_and_style(app: TestApp) {
    let page = app.request(Method::GET, "/console").send().await.expect(200).text;
    // No inline code: every script has a same-origin `src`, no element carries a style or
    // an event handler attribute, and nothing is loaded from elsewhere.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains(r#"<script src="/console/console.js" defer></script>"#));
    assert!(page.contains(r#"<link rel="stylesheet" href="/console/console.css">"#));
    assert!(!page.contains("<style"));
    let lowered = page.to_lowercase();
    assert!(!lowered.contains(" style="));
    assert!(!lowered.contains(" onclick=") && !lowered.contains(" onsubmit=") && !lowered.contains(" onload="));
    assert!(
        !lowered.contains("http://") && !lowered.contains("https://"),
        "no third-party address"
    );
    // Every control has a label that names it.
    for id in ids_of_controls(&page) {
        assert!(page.contains(&format!(r#"for="{id}""#)), "#{id} has no <label for>");
    }
    let script = app
        .request(Method::GET, "/console/console.js")
        .send()
        .await
        .expect(200)
        .text;
    for forbidden in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "localStorage",
        "sessionStorage",
        "document.cookie",
        "eval(",
    ] {
        assert!(!script.contains(forbidden), "the script uses {forbidden}");
    }
    assert!(
        !script.contains("EventSource"),
        "the key goes in a header, which EventSource cannot send"
    );
}

/// The ids of the page's `<input>`, `<select>` and `<textarea>` elements.
fn ids_of_controls(page: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for tag in ["<input", "<select", "<textarea"] {
        for (at, _) in page.match_indices(tag) {
            let element = &page[at..at + page[at..].find('>').unwrap_or(0)];
            let id = element
                .split("id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("a control without an id: {element}"));
            ids.push(id.to_owned());
        }
    }
    assert!(ids.len() >= 10, "the page's controls: {ids:?}");
    ids
}

async fn the_scope_catalogue_is_space_auths(app: TestApp) {
    let catalogue = app.account(Method::GET, "/scopes").send().await.expect(200).body;
    let domains: Vec<Value> = Domain::ALL
        .iter()
        .map(|domain| {
            let actions: Vec<&str> = domain.actions().iter().map(|action| action.as_str()).collect();
            json!({"name": domain.as_str(), "about": domain.about(), "actions": actions})
        })
        .collect();
    assert_eq!(catalogue["domains"], json!(domains));
    let actions: Vec<Value> = Action::ALL
        .iter()
        .map(|action| json!({"name": action.as_str(), "about": action.about(), "live": *action == Action::Run}))
        .collect();
    assert_eq!(catalogue["actions"], json!(actions));
    let toolsets: Vec<&str> = Domain::ALL.iter().map(|domain| domain.as_str()).collect();
    assert_eq!(catalogue["toolsets"], json!(toolsets));
    // Every cell of the grid mints, and nothing outside it.
    let every: Vec<String> = space_auth::Scope::all().map(|scope| scope.to_string()).collect();
    let grid: Vec<String> = catalogue["domains"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|domain| {
            let name = domain["name"].as_str().unwrap_or_default().to_owned();
            domain["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |action| format!("{name}:{}", action.as_str().unwrap_or_default()))
        })
        .collect();
    assert_eq!(grid, every);

    let anonymous = app.request(Method::GET, &format!("{ACCOUNT_API}/scopes")).send().await;
    assert_eq!(anonymous.status, 401);
    let with_space_key = app
        .request(Method::GET, &format!("{ACCOUNT_API}/scopes"))
        .key(app.key())
        .send()
        .await;
    assert_eq!(with_space_key.status, 401, "{}", with_space_key.text);
}

async fn the_mcp_lines_are_the_clis(app: TestApp) {
    let config = app
        .request(Method::GET, "/console/config.json")
        .send()
        .await
        .expect(200)
        .body;
    let slot = config["mcp"]["token_slot"].as_str().expect("a slot");
    let token = app.key();
    let fill = |text: &Value| text.as_str().unwrap_or_default().replace(slot, token);
    assert_eq!(
        fill(&config["mcp"]["claude_code"]),
        account_api::mcp_setup::claude_code_command(&app.base, token)
    );
    assert_eq!(
        fill(&config["mcp"]["mcp_json"]),
        account_api::mcp_setup::mcp_json(&app.base, token)
    );
    assert_eq!(account_api::mcp_setup::MCP_PATH, space_catalogue::MCP_PATH);
    assert_eq!(config["connections"]["kinds"], json!(space_connections::KINDS));
    assert_eq!(
        config["connections"]["ad_networks"],
        json!(space_connections::AD_NETWORKS)
    );
    assert_eq!(config["realtime_url"], format!("{}{REALTIME}", app.base));
    assert_eq!(account_api::console::REALTIME_PATH, realtime::PATH);
}

/// In AWS the stream is a function URL, another origin, which Terraform records in the
/// table: the console is told it, and its page may reach that origin (and no other).
async fn the_live_view_follows_the_realtime_url_the_table_records(app: TestApp) {
    let (pk, sk) = account_api::console::REALTIME_URL_ITEM;
    let terraform = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/worker.tf"))
        .expect("infra/worker.tf reads");
    for key in [pk, sk] {
        assert!(
            terraform.contains(&format!("{{ S = \"{key}\" }}")),
            "Terraform writes {key}"
        );
    }
    let stream = "https://abc123.lambda-url.eu-west-1.on.aws/functions/v1/space-realtime";
    let mut body = serde_json::Map::new();
    body.insert("url".into(), json!(stream));
    app.engine
        .store()
        .put(space_store::Item::new(pk, sk, body), space_store::Condition::None)
        .await
        .expect("the item is written");
    let config = app
        .request(Method::GET, "/console/config.json")
        .send()
        .await
        .expect(200);
    assert_eq!(config.body["realtime_url"], stream);
    let page = app.request(Method::GET, "/console").send().await.expect(200);
    let policy = page.header("content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("connect-src 'self' https://abc123.lambda-url.eu-west-1.on.aws;"),
        "{policy}"
    );
    // Only the page: the other answers keep the policy without it.
    let script = app.request(Method::GET, "/console/console.js").send().await.expect(200);
    assert_secured(&script, "/console/console.js");
}

/// A stream's raw text until `wanted` shows up in it, or `None` when `wait` passes first.
async fn read_until(response: &mut reqwest::Response, wanted: &str, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut text = String::new();
    while !text.contains(wanted) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(_) | Err(_) => return None,
        }
    }
    Some(text)
}

async fn watch(app: &TestApp, key: &str, query: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{REALTIME}{query}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("an answer")
}

async fn an_account_key_watches_its_own_space_live(app: TestApp) {
    let mut stream = watch(&app, app.account_key(), &format!("?space={}", app.demo.space_id)).await;
    assert_eq!(stream.status(), 200);
    let ada = app.contact(json!({"name": "Ada"})).await;
    let id = ada["id"].as_str().expect("an id");
    let seen = read_until(&mut stream, id, Duration::from_secs(5)).await;
    assert!(
        seen.is_some_and(|text| text.contains("event: contact.created")),
        "the owner sees the change"
    );
    // A deleted Space ends the owner's stream.
    let (other, _) = app.other_space().await;
    let mut watching_other = watch(&app, app.account_key(), &format!("?space={other}")).await;
    assert_eq!(watching_other.status(), 200);
    app.account(Method::DELETE, &format!("/spaces/{other}"))
        .send()
        .await
        .expect(204);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, watching_other.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(_) => break,
            Err(_) => panic!("the stream of a deleted Space did not end"),
        }
    }
}

async fn an_account_key_cannot_watch_another_accounts_space(app: TestApp) {
    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Elsewhere", None)
        .await
        .expect("a second account");
    // The other owner's Space looks like one that does not exist.
    for key in [app.account_key(), stranger.account_key.as_str()] {
        let space = if key == app.account_key() {
            &stranger.space_id
        } else {
            &app.demo.space_id
        };
        let refused = watch(&app, key, &format!("?space={space}")).await;
        assert_eq!(refused.status(), 404);
        let body: Value = refused.json().await.expect("the envelope");
        assert_eq!(body["error"]["code"], "NOT_FOUND");
    }
    let nowhere = watch(&app, app.account_key(), "").await;
    assert_eq!(nowhere.status(), 422, "an account key names the Space");
    let odd = watch(&app, app.account_key(), "?space=spc%00x").await;
    assert_eq!(odd.status(), 404);
    // A space key stays within its own Space, whatever it names.
    let elsewhere = watch(&app, app.key(), &format!("?space={}", stranger.space_id)).await;
    assert_eq!(elsewhere.status(), 404);
    let own = watch(&app, app.key(), &format!("?space={}", app.demo.space_id)).await;
    assert_eq!(own.status(), 200);
    // A revoked or made-up account key is refused.
    let unknown = watch(&app, "wka_live_nope", &format!("?space={}", app.demo.space_id)).await;
    assert_eq!(unknown.status(), 401);
}
