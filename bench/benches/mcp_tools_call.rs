//! In-process cost of an MCP `tools/call contacts_list` (20 contacts) through the whole app,
//! as `scripts/bench.sh` sends it over a socket: the official Python SDK client's own
//! request (stateless 2026-07-28 protocol), authenticated by a space key. Routing, auth,
//! rmcp's request handling, the REST handler, and the JSON-RPC answer with
//! `structuredContent` and its text copy.
//!
//! `cargo bench -p space-bench --bench mcp_tools_call`

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, StatusCode, header};
use space_store::embedded::EmbeddedStore;
use tower::ServiceExt as _;

/// What bench/mcp/tools_call.lua sends.
const TOOLS_CALL: &str = concat!(
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"contacts_list","arguments":{"limit":20},"#,
    r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","#,
    r#""io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},"#,
    r#""io.modelcontextprotocol/clientCapabilities":{}}}}"#
);

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, body)
}

async fn tools_call(app: &Router, authorization: &str) -> axum::body::Bytes {
    let request = Request::post("/functions/v1/space-mcp")
        .header(header::HOST, "127.0.0.1")
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "contacts_list")
        .body(Body::from(TOOLS_CALL))
        .expect("request");
    let (status, body) = send(app, request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    body
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = EmbeddedStore::open(&folder.path().join("space.redb")).expect("open redb file");
    let (app, key) = rt.block_on(space_bench::bench_app(Arc::new(store))).expect("bench app");
    let authorization = format!("Bearer {key}");
    rt.block_on(async {
        for i in 0..20 {
            let request = Request::post("/functions/v1/space-api/contacts")
                .header(header::AUTHORIZATION, &authorization)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    r#"{{"name":"Contact {i}","email":"c{i}@example.com"}}"#
                )))
                .expect("request");
            let (status, body) = send(&app, request).await;
            assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
        }
        // Fail fast, before measuring, if the tool does not answer 20 contacts.
        let body = tools_call(&app, &authorization).await;
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON-RPC answer");
        let listed = answer["result"]["structuredContent"]["data"].as_array().map(Vec::len);
        assert_eq!(listed, Some(20), "{answer}");
    });

    let mut group = c.benchmark_group("mcp");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("tools_call_contacts_list_20", |b| {
        b.to_async(&rt).iter(|| tools_call(&app, &authorization));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
