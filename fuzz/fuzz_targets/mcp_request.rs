//! Any bytes as an MCP request body, POSTed to `/functions/v1/space-mcp` through the whole
//! app with a full-scope key (an input starting with `C` asks for compact mode). The
//! answer is never 5xx, never a JSON-RPC internal error, and no tool call fails with the
//! `INTERNAL` error code. (The MCP transport's own refusals — not JSON, wrong content
//! type, not acceptable — are plain-text 4xx from rmcp, not the REST envelope.)

#![no_main]

use axum::body::Body;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use space_fuzz::{Harness, check_no_server_error};

fuzz_target!(|data: &[u8]| {
    let (uri, body) = match data.split_first() {
        Some((b'C', rest)) => ("/functions/v1/space-mcp?mode=compact", rest),
        _ => ("/functions/v1/space-mcp", data),
    };
    Harness::with(|harness| {
        let request = http::Request::builder()
            .method("POST")
            .uri(uri)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("authorization", format!("Bearer {}", harness.space_key))
            .body(Body::from(body.to_vec()))
            .expect("a request");
        let answer = harness.send(request);
        check_no_server_error(&answer, "MCP");
        let Ok(reply) = serde_json::from_slice::<Value>(&answer.body) else {
            return;
        };
        for message in reply.as_array().cloned().unwrap_or_else(|| vec![reply]) {
            assert_ne!(
                message["error"]["code"].as_i64(),
                Some(-32603),
                "JSON-RPC internal error: {message}"
            );
            for content in message["result"]["content"].as_array().into_iter().flatten() {
                let text = content["text"].as_str().unwrap_or_default();
                if let Ok(error) = serde_json::from_str::<Value>(text) {
                    assert_ne!(error["error"]["code"], "INTERNAL", "a tool failed internally: {text}");
                }
            }
        }
    });
});
