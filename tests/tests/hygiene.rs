//! Hygiene, for every route the catalogue declares: no `Server` header and no CORS
//! headers on any answer; every body over its route's limit refused with the 413 envelope,
//! public routes included; public routes limited per client address; and no token or
//! secret value in the logs of a run that mints, uses and revokes keys and sets secrets.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use space_http::Operation;
use space_http::operation::Access;
use space_tests::{ACCOUNT_API, SPACE_API, TestApp, on_both_backends};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

on_both_backends!(
    no_server_or_cors_headers,
    every_body_over_its_limit_is_refused,
    public_routes_are_limited_per_client_address,
);

/// A concrete path for a route: every `{param}` filled in.
fn concrete(operation: &Operation) -> String {
    let mut path = String::new();
    for segment in operation.full_path().split('/').skip(1) {
        path.push('/');
        if segment.starts_with('{') {
            path.push_str("hyg_01");
        } else {
            path.push_str(segment);
        }
    }
    path
}

/// The `Authorization` header an operation needs to get as far as reading its body.
fn authorization(app: &TestApp, operation: &Operation) -> Option<String> {
    match operation.access {
        Access::Space(_) => Some(format!("Bearer {}", app.key())),
        Access::Account => Some(format!("Bearer {}", app.account_key())),
        Access::Public { .. } => None,
    }
}

/// An HTTP/1.1 answer read off a raw socket.
struct RawAnswer {
    status: u16,
    head: String,
    body: Value,
}

/// Sends `head` (and `body`, which may be cut short by the server answering early) on a
/// fresh connection and reads the answer until the server closes it.
async fn raw(app: &TestApp, head: String, body: &[u8]) -> RawAnswer {
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("the server accepts");
    stream.write_all(head.as_bytes()).await.expect("the head is sent");
    // The server may answer and close before taking the whole body: that is the point.
    let _ = stream.write_all(body).await;
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "no answer within 20 s to {head}");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head_text, body_text) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head_text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    RawAnswer {
        status,
        head: head_text.to_ascii_lowercase(),
        body: serde_json::from_str(body_text).unwrap_or(Value::Null),
    }
}

fn request_head(app: &TestApp, operation: &Operation, client: &str, extra: &str) -> String {
    let host = app.base.trim_start_matches("http://");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nX-Forwarded-For: {client}\r\n",
        operation.method,
        concrete(operation)
    );
    if let Some(authorization) = authorization(app, operation) {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    head.push_str(extra);
    head.push_str("\r\n");
    head
}

#[track_caller]
fn assert_too_large(answer: &RawAnswer, what: &str) {
    assert_eq!(answer.status, 413, "{what}: {}", answer.head);
    assert_eq!(
        answer.body["error"]["code"], "PAYLOAD_TOO_LARGE",
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.body["error"]["request_id"].is_string(),
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.head.contains("content-type: application/json"),
        "{what}: {}",
        answer.head
    );
    // The unread rest of the body makes the connection unusable: the client is told so.
    assert!(answer.head.contains("connection: close"), "{what}: {}", answer.head);
}

async fn every_body_over_its_limit_is_refused(app: TestApp) {
    let operations = space_catalogue::operations();
    let mut checked = 0;
    for (index, operation) in operations.iter().filter(|o| o.takes_body()).enumerate() {
        let limit = operation.max_body_bytes.unwrap_or(app.engine.max_body_bytes());
        let what = format!("{} {}", operation.method, operation.full_path());
        // Declared too large: refused without waiting for the body (none follows the head).
        let client = format!("192.0.2.{}", index % 250 + 1);
        let head = request_head(&app, operation, &client, &format!("Content-Length: {}\r\n", limit + 1));
        assert_too_large(&raw(&app, head, b"").await, &what);
        // Sent chunked, with no length: refused once the limit is passed.
        if limit <= 2 * 1024 * 1024 {
            let head = request_head(&app, operation, &client, "Transfer-Encoding: chunked\r\n");
            let mut body = format!("{:x}\r\n", limit + 1).into_bytes();
            body.extend(std::iter::repeat_n(b' ', limit + 1));
            body.extend(b"\r\n0\r\n\r\n");
            assert_too_large(&raw(&app, head, &body).await, &format!("{what} (chunked)"));
        }
        checked += 1;
    }
    assert!(checked >= 60, "only {checked} routes take a body?");
    let public = operations
        .iter()
        .filter(|o| matches!(o.access, Access::Public { .. }) && o.takes_body())
        .count();
    assert!(
        public >= 3,
        "the public routes that take a body (forms, booking, uploads) were checked"
    );

    // The MCP endpoint, which reads its own body.
    let host = app.base.trim_start_matches("http://");
    let head = format!(
        "POST /functions/v1/space-mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        app.key(),
        64 * 1024 * 1024
    );
    assert_too_large(&raw(&app, head, b"").await, "MCP");
    let head = format!(
        "POST /functions/v1/space-mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.key(),
    );
    let size = 8 * 1024 * 1024 + 1;
    let mut body = format!("{size:x}\r\n").into_bytes();
    body.extend(std::iter::repeat_n(b' ', size));
    body.extend(b"\r\n0\r\n\r\n");
    let answer = raw(&app, head, &body).await;
    assert_eq!(answer.status, 413, "MCP (chunked): {}", answer.head);
}

/// Headers no answer may carry.
fn assert_clean(response: &space_tests::Response, what: &str) {
    assert!(response.header("server").is_none(), "{what}: a Server header");
    for (name, _) in &response.headers {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "{what}: CORS header {name} (the API has no CORS policy)"
        );
    }
}

async fn no_server_or_cors_headers(app: TestApp) {
    let origin = "https://evil.example";
    let mut seen = 0;
    for operation in space_catalogue::operations() {
        let path = concrete(&operation);
        let what = format!("{} {}", operation.method, operation.full_path());
        // A browser's preflight from another origin.
        let preflight = app
            .request(Method::OPTIONS, &path)
            .header("origin", origin)
            .header("access-control-request-method", operation.method.as_str())
            .header("access-control-request-headers", "authorization, content-type")
            .header("x-forwarded-for", "198.18.0.1")
            .send()
            .await;
        assert_clean(&preflight, &format!("OPTIONS {what}"));
        // The request itself, from that origin.
        let mut request = app
            .request(operation.method.clone(), &path)
            .header("origin", origin)
            .header("x-forwarded-for", &format!("198.18.1.{}", seen % 250));
        if let Some(authorization) = authorization(&app, &operation) {
            request = request.header("authorization", &authorization);
        }
        if operation.takes_body() {
            request = request.json(json!({}));
        }
        assert_clean(&request.send().await, &what);
        seen += 1;
    }
    // Answers from outside the catalogue: the documents, MCP, no route, no key.
    for path in [
        "/functions/v1/space-api/openapi.json".to_owned(),
        "/functions/v1/space-mcp".to_owned(),
        "/nowhere".to_owned(),
        format!("{SPACE_API}/contacts"),
        format!("{ACCOUNT_API}/spaces"),
    ] {
        let response = app.request(Method::GET, &path).header("origin", origin).send().await;
        assert_clean(&response, &format!("GET {path}"));
    }
    let listed = app
        .space(Method::GET, "/contacts")
        .header("origin", origin)
        .send()
        .await
        .expect(200);
    assert_clean(&listed, "GET /contacts with a key");
    assert!(seen > 100, "every route was tried");
}

/// How many requests of each public route's budget are really sent.
const LAST_REQUESTS: u32 = 50;

async fn public_routes_are_limited_per_client_address(app: TestApp) {
    let public: Vec<Operation> = space_catalogue::operations()
        .into_iter()
        .filter(|o| matches!(o.access, Access::Public { .. }))
        .collect();
    assert!(
        public.len() >= 6,
        "pages, forms, booking, feeds, uploads and downloads are public"
    );
    for (index, operation) in public.iter().enumerate() {
        let Access::Public { per_minute } = operation.access else {
            continue;
        };
        let path = concrete(operation);
        let what = format!("{} {}", operation.method, operation.full_path());
        // One client address per route: the counter is the address's, across routes.
        let client = format!("203.0.113.{}", index + 1);
        let send = |forwarded: String| {
            let mut request = app
                .request(operation.method.clone(), &path)
                .header("x-forwarded-for", &forwarded);
            if operation.takes_body() {
                request = request.json(json!({}));
            }
            request.send()
        };
        // All but the last requests of the budget are counted straight on the address's
        // counters: a route allowing 120,000 a minute is not sent 120,000 requests. The
        // first shard keeps the last ones; a request starting on a full shard moves on.
        let head = per_minute.saturating_sub(LAST_REQUESTS);
        let window = space_auth::rate_limit::RateWindow::at(app.engine.now());
        let counter = space_http::keys::visitor_counter(operation.public_family(), &client, window.start);
        let mut to_count = head;
        for (index, (shard, share)) in space_http::budget::shards(&counter, per_minute)
            .iter()
            .enumerate()
            .rev()
        {
            let count = if index == 0 { to_count } else { (*share).min(to_count) };
            to_count -= count;
            if count > 0 {
                app.engine
                    .store()
                    .increment(&shard.pk, &shard.sk, u64::from(count), window.expires_at())
                    .await
                    .expect("counted");
            }
        }
        for n in head..per_minute {
            // Entries before the last are the client's own claims: they change nothing.
            let response = send(format!("10.{}.{}.1, {client}", n / 250 % 250, n % 250)).await;
            assert_ne!(response.status, 429, "{what}: request {n} of {per_minute} was limited");
        }
        let limited = send(format!("10.9.9.9, {client}")).await.expect(429);
        assert_eq!(limited.error_code(), "RATE_LIMITED", "{what}");
        assert!(
            limited
                .header("retry-after")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|s| s >= 1),
            "{what}: no Retry-After"
        );
        // Another address is not held back by the first.
        let other = send(format!("203.0.113.{}", 200 + index)).await;
        assert_ne!(other.status, 429, "{what}: another address was limited too");
    }
}

/// Every line any test of this binary logs, at every level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let installed = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .event_format(space_http::log::LogFormat::Text)
            .with_writer(move || LogWriter(Arc::clone(&sink)))
            .try_init();
        assert!(installed.is_ok(), "the capturing subscriber is the first one");
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()), bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Full tokens in `text`: the prefix and at least 20 characters of the token's alphabet.
fn tokens_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["wks_live_", "wka_live_"] {
        for (at, _) in text.match_indices(prefix) {
            let rest: String = text[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            if rest.len() >= 20 {
                found.push(format!("{prefix}{}…", &rest[..4]));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_and_secret_values_never_reach_the_logs() {
    let logs = captured_logs();
    let app = TestApp::embedded().await;
    let space = app.demo.space_id.clone();
    let mut secrets = Vec::new();
    let mut tokens = vec![app.key().to_owned(), app.account_key().to_owned()];

    // Keys minted, used (REST and MCP), revoked, used again.
    let minted = app
        .account(Method::POST, &format!("/spaces/{space}/keys"))
        .json(
            json!({"name": "logged", "scopes": ["contacts:read", "contacts:write", "secrets:read", "calendar:write"]}),
        )
        .send()
        .await
        .expect(201);
    let token = minted.body["token"].as_str().expect("a token").to_owned();
    let key_id = minted.body["id"].as_str().expect("an id").to_owned();
    tokens.push(token.clone());
    app.request(Method::POST, &format!("{SPACE_API}/contacts"))
        .key(&token)
        .json(json!({"name": "Logged", "email": "logged@example.com"}))
        .send()
        .await
        .expect(201);
    app.mcp(&token, "", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await;
    // A key over the wrong API, a mangled one, one in the query string.
    app.request(Method::GET, &format!("{ACCOUNT_API}/spaces"))
        .key(&token)
        .send()
        .await
        .expect(401);
    // Its last character changed (to one it is not: a token can end in `x`).
    let replacement = if token.ends_with('x') { 'y' } else { 'x' };
    let mangled = format!("{}{replacement}", &token[..token.len() - 1]);
    app.request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(&mangled)
        .send()
        .await
        .expect(401);
    app.request(Method::GET, &format!("{SPACE_API}/contacts?api_key={token}"))
        .send()
        .await
        .expect(401);
    app.account(Method::DELETE, &format!("/spaces/{space}/keys/{key_id}"))
        .send()
        .await
        .expect(204);
    app.request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(&token)
        .send()
        .await
        .expect(401);

    // Secret values written through the account API, then listed by name.
    for (n, name) in ["STRIPE_KEY", "SMTP_PASSWORD"].iter().enumerate() {
        let value = format!("sv-{n}-{}", space_http::ids::new_id("v"));
        app.account(Method::PUT, &format!("/spaces/{space}/secrets/{name}"))
            .json(json!({"value": value}))
            .send()
            .await
            .expect(204);
        secrets.push(value);
    }
    // A bad value (too long) is refused without being echoed or logged.
    let long = format!("long-{}", "z".repeat(100 * 1024));
    app.account(Method::PUT, &format!("/spaces/{space}/secrets/TOO_LONG"))
        .json(json!({"value": long}))
        .send()
        .await
        .expect(422);
    app.space(Method::GET, "/secrets").send().await.expect(200);

    // The same through `spacectl`: the account key and the value on standard input, a key
    // minted and printed once.
    let config = tempfile::tempdir().expect("a temp dir");
    let spacectl = |command: &[&str], stdin: String| {
        let mut args = vec!["spacectl".to_owned()];
        args.extend(command.iter().map(|a| (*a).to_owned()));
        args.extend(["--url".to_owned(), app.base.clone(), "--config-dir".to_owned()]);
        args.push(config.path().display().to_string());
        let what = format!("spacectl {command:?}");
        async move {
            let mut input = std::io::Cursor::new(stdin.into_bytes());
            let mut out = Vec::new();
            let io = spacectl::client::Io {
                input: spacectl::client::Input::Piped(&mut input),
                out: &mut out,
                err: &mut std::io::sink(),
                stop: Box::pin(std::future::pending()),
            };
            assert_eq!(spacectl::client::run(args, io).await, 0, "{what}");
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    spacectl(&["login"], app.account_key().to_owned()).await;
    let value = format!("sv-cli-{}", space_http::ids::new_id("v"));
    spacectl(&["secrets", "set", "CLI_SECRET"], value.clone()).await;
    secrets.push(value);
    let printed = spacectl(
        &["keys", "create", "--name", "cli", "--scopes", "contacts:read"],
        String::new(),
    )
    .await;
    tokens.push(printed.trim().to_owned());

    // The calendar's secret feed URL, fetched as a calendar app would.
    let feed = app
        .space(Method::POST, "/calendar/ical-token/rotate")
        .json(json!({}))
        .send()
        .await
        .expect(200);
    let url = feed.body["url"].as_str().expect("a feed URL").to_owned();
    let feed_token = url
        .split("/c/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a token in the feed URL")
        .to_owned();
    app.request(Method::GET, &format!("/c/{feed_token}/calendar.ics"))
        .send()
        .await
        .expect(200);
    secrets.push(feed_token);

    drop(app);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        text.contains("served") && text.contains("route=/functions/v1/space-api/contacts"),
        "the requests were logged (the capture works): {}",
        &text[..text.len().min(2000)]
    );
    assert!(
        text.contains("route=/c/{token}/calendar.ics"),
        "public routes log their template"
    );
    let leaked = tokens_in(&text);
    assert!(leaked.is_empty(), "tokens in the logs: {leaked:?}");
    for token in &tokens {
        assert!(!text.contains(&token[9..]), "a token's secret part is in the logs");
    }
    for value in &secrets {
        assert!(!text.contains(value.as_str()), "a secret value is in the logs");
    }
    assert!(!text.contains(&long[..64]), "a refused secret value is in the logs");
    println!("{} log lines scanned", text.lines().count());
}
