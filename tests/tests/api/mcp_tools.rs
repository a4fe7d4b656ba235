//! The tool list an MCP client receives: one tool per scope by default (bounded by the
//! scope catalogue, whatever the number of operations), one per operation or two in the
//! other modes, each calling the same operations under the same scopes. The README's
//! table of sizes is this module's measurement (`UPDATE_README=1` rewrites it).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use space_http::fields::thousands;
use space_tests::TestApp;

const START: &str = "<!-- mcp-size:start -->";
const END: &str = "<!-- mcp-size:end -->";

async fn list(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let listed = app
        .mcp(key, query, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .expect(200);
    listed.body["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("a tool list: {}", listed.text))
}

async fn call(app: &TestApp, key: &str, tool: &str, arguments: Value) -> Value {
    let called = app
        .mcp(
            key,
            "",
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
        )
        .send()
        .await
        .expect(200);
    called.body["result"].clone()
}

fn names(tools: &[Value]) -> Vec<&str> {
    tools.iter().filter_map(|t| t["name"].as_str()).collect()
}

/// What a client without deferred loading pays every turn: name, description and input
/// schema, in tokens (bytes / 4).
fn tokens(tools: &[Value]) -> usize {
    tools
        .iter()
        .map(|t| {
            t["name"].as_str().map_or(0, str::len)
                + t["description"].as_str().map_or(0, str::len)
                + t["inputSchema"].to_string().len()
        })
        .sum::<usize>()
        / 4
}

/// Every tool's whole JSON, output schemas and annotations included.
fn whole_tokens(tools: &[Value]) -> usize {
    tools.iter().map(|t| t.to_string().len()).sum::<usize>() / 4
}

fn listed_names(tool: &Value) -> Vec<String> {
    tool["inputSchema"]["properties"]["operation"]["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_list_reaches_every_operation_in_one_tool_per_scope() {
    let app = TestApp::embedded().await;
    let tools = list(&app, app.key(), "").await;
    let operations = list(&app, app.key(), "?mode=operations").await;
    assert!(tools.len() <= 128, "{}", tools.len());
    assert!(tokens(&tools) <= 20_000, "{}", tokens(&tools));
    assert_eq!(names(&tools).last(), Some(&"search_operations"));

    // Every operation the key may call is in exactly one tool's `operation` enum.
    let mut reachable = Vec::new();
    for tool in &tools[..tools.len() - 1] {
        let name = tool["name"].as_str().unwrap_or_default();
        let action = name.split('_').next().unwrap_or_default();
        assert!(["read", "write", "run"].contains(&action), "{name}");
        let listed = tool["inputSchema"]["properties"]["operation"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!listed.is_empty(), "{tool}");
        for operation in &listed {
            let description = tool["description"].as_str().unwrap_or_default();
            assert!(
                description.contains(&format!("\n- {}(", operation.as_str().unwrap_or_default())),
                "{name} describes {operation}"
            );
        }
        reachable.extend(listed.into_iter().filter_map(|v| v.as_str().map(String::from)));
        let hints = &tool["annotations"];
        assert_eq!(hints["readOnlyHint"], json!(action == "read"), "{name}");
        // Open world where a listed operation is: every run tool, and mail's write (its
        // one scope sends).
        let live = operations.iter().any(|op| {
            listed_names(tool).contains(&op["name"].as_str().unwrap_or_default().to_owned())
                && op["annotations"]["openWorldHint"] == json!(true)
        });
        assert_eq!(hints["openWorldHint"], json!(live), "{name}");
        assert!(action != "run" || live, "{name}");
    }
    let expected: Vec<String> = names(&operations).into_iter().map(String::from).collect();
    assert_eq!(reachable.len(), expected.len(), "no operation twice");
    assert_eq!(
        reachable.iter().collect::<BTreeSet<_>>(),
        expected.iter().collect::<BTreeSet<_>>()
    );
    let write_contacts = tools.iter().find(|t| t["name"] == "write_contacts").cloned();
    assert_eq!(
        write_contacts.map(|t| t["annotations"]["destructiveHint"].clone()),
        Some(json!(true)),
        "it can delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_tools_run_their_own_operations_under_the_keys_scopes() {
    let app = TestApp::embedded().await;
    let key = app.mint(&["contacts:read", "contacts:write", "tasks:read"], None).await;
    assert_eq!(
        names(&list(&app, &key, "").await),
        ["read_contacts", "write_contacts", "read_tasks", "search_operations"]
    );

    let created = call(
        &app,
        &key,
        "write_contacts",
        json!({"operation": "contacts_create", "arguments": {"name": "Grace", "email": "grace@example.com"}, }),
    )
    .await;
    assert_ne!(created["isError"], json!(true), "{created}");
    let id = created["structuredContent"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let fetched = app
        .space(reqwest::Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(fetched.body, created["structuredContent"], "the REST item");

    let read = call(
        &app,
        &key,
        "read_contacts",
        json!({"operation": "contacts_get", "arguments": {"id": id}}),
    )
    .await;
    assert_eq!(read["structuredContent"]["name"], "Grace", "{read}");

    // An operation of another tool, or none, is a tool error naming the choices; nothing runs.
    for arguments in [
        json!({"operation": "contacts_delete", "arguments": {"id": id}}),
        json!({"arguments": {"id": id}}),
    ] {
        let refused = call(&app, &key, "read_contacts", arguments).await;
        assert_eq!(refused["isError"], json!(true), "{refused}");
        let text = refused["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("operation") && text.contains("contacts_get"), "{text}");
    }
    app.space(reqwest::Method::GET, &format!("/contacts/{id}"))
        .send()
        .await
        .expect(200);

    // A scope the key lacks is not listed and not callable, whichever tool names it.
    let refused = app
        .mcp(
            &key,
            "",
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "write_tasks", "arguments": {"operation": "tasks_create", "arguments": {"title": "No"}}}}),
        )
        .send()
        .await
        .expect(200);
    assert!(
        refused.body["error"].is_object() || refused.body["result"]["isError"] == json!(true),
        "{}",
        refused.text
    );
    let tasks = app.space(reqwest::Method::GET, "/tasks").send().await.expect(200);
    assert_eq!(tasks.body["data"], json!([]), "nothing was created");

    // An operation's body limit holds over MCP as over REST (MCP's own limit is larger,
    // for base64 files): a 2 MiB contact is refused as too large, before any check of it.
    let huge = call(
        &app,
        &key,
        "write_contacts",
        json!({"operation": "contacts_create", "arguments": {"name": "x".repeat(2 * 1024 * 1024)}}),
    )
    .await;
    assert_eq!(huge["isError"], json!(true), "a refusal");
    let text = huge["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{}", &text[..text.len().min(300)]);

    // Validation speaks the REST envelope's field messages.
    let invalid = call(
        &app,
        &key,
        "write_contacts",
        json!({"operation": "contacts_create", "arguments": {"email": "not-an-email"}}),
    )
    .await;
    assert_eq!(invalid["isError"], json!(true));
    assert!(
        invalid["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("email")
    );

    // The input schema is one search away.
    let found = call(&app, &key, "search_operations", json!({"query": "contacts_create"})).await;
    let operations = found["structuredContent"]["operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(operations[0]["name"], "contacts_create", "{found}");
    assert!(operations[0]["inputSchema"]["properties"]["email"].is_object());

    // A read-only key sees the read tools only.
    let read_only = app
        .account(reqwest::Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "ro", "scopes": ["contacts:read", "contacts:write"], "read_only": true}))
        .send()
        .await
        .expect(201);
    let token = read_only.body["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        names(&list(&app, &token, "").await),
        ["read_contacts", "search_operations"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_mode_is_refused_and_an_empty_one_is_the_default() {
    let app = TestApp::embedded().await;
    let refused = app
        .mcp(
            app.key(),
            "?mode=everything",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .send()
        .await
        .expect(422);
    assert!(refused.text.contains("scopes"), "{}", refused.text);
    assert_eq!(
        names(&list(&app, app.key(), "?mode=").await),
        names(&list(&app, app.key(), "").await)
    );
}

/// The README's table: each mode for a full-scope key and for a two-domain one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_states_the_sizes_of_every_mode() {
    let app = TestApp::embedded().await;
    let two = app
        .mint(&["contacts:read", "contacts:write", "tasks:read", "tasks:write"], None)
        .await;
    let mut table = String::from(
        "| key | mode | tools | ≈ tokens: name, description, input schema | ≈ tokens: whole list |\n|---|---|---|---|---|\n",
    );
    for (label, key) in [("full scope", app.key()), ("contacts + tasks", two.as_str())] {
        for (mode, query) in [
            ("scopes (default)", ""),
            ("operations", "?mode=operations"),
            ("compact", "?mode=compact"),
        ] {
            let tools = list(&app, key, query).await;
            table.push_str(&format!(
                "| {label} | {mode} | {} | {} | {} |\n",
                tools.len(),
                thousands(tokens(&tools)),
                thousands(whole_tokens(&tools))
            ));
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the {START} … {END} block");
    };
    let current = &readme[start + START.len()..end];
    let wanted = format!("\n{table}");
    if current != wanted {
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{START}{wanted}{}", &readme[..start], &readme[end..]);
            std::fs::write(&path, updated).expect("README.md is writable");
        } else {
            panic!("README.md's tool sizes are stale; rerun with UPDATE_README=1:\n{table}");
        }
    }
}

/// The transport's own refusals answer in the JSON envelope, with the status that names
/// the fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refusals_are_json_envelopes() {
    let app = TestApp::embedded().await;
    let endpoint = "/functions/v1/space-mcp";
    let rpc = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let refusals = [
        (
            app.request(reqwest::Method::POST, endpoint)
                .key(app.key())
                .json(rpc.clone()),
            406,
            "NOT_ACCEPTABLE",
        ),
        (
            app.request(reqwest::Method::POST, endpoint)
                .key(app.key())
                .header("accept", "application/json, text/event-stream")
                .raw("text/plain", "tools/list"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            app.request(reqwest::Method::POST, endpoint)
                .key(app.key())
                .header("accept", "application/json, text/event-stream")
                .raw("application/json", "{not json"),
            400,
            "BAD_REQUEST",
        ),
        (
            app.request(reqwest::Method::GET, endpoint)
                .key(app.key())
                .header("accept", "text/event-stream"),
            405,
            "METHOD_NOT_ALLOWED",
        ),
    ];
    for (request, status, code) in refusals {
        let answer = request.send().await.expect(status);
        assert_eq!(answer.error_code(), code, "{}", answer.text);
        assert!(answer.body["error"]["request_id"].is_string(), "{}", answer.text);
        assert!(
            answer.header("ratelimit").is_some(),
            "the key's budget is still reported"
        );
    }
}
