//! Benchmarks of the Space API. Nothing here is used by the product:
//!
//! - `benches/authenticated_get.rs`, `benches/mcp_tools_call.rs`: criterion, the whole app
//!   in process (`cargo bench -p space-bench`), on the fixture below;
//! - `src/bin/bare.rs`: a bare axum server with a constant JSON answer, the baseline that
//!   `scripts/bench.sh` loads with wrk next to `spacectl serve`.

pub mod serve;

use std::sync::Arc;

use account_api::keys::KeyRequest;
use axum::Router;
use space_auth::ScopeSet;
use space_http::Engine;
use space_store::Store;

/// The whole app (`spacectl::app`) over `store`, with a "Bench" space and a full-scope key
/// (returned) whose rate limit a benchmark cannot reach: the REST endpoint caps limits at
/// 100 000/min, the library does not, and a 429 would measure the wrong path.
pub async fn bench_app(store: Arc<dyn Store>) -> anyhow::Result<(Router, String)> {
    let space = bench_space(store).await?;
    Ok((space.app, space.keys.space_key))
}

/// [`bench_app`] with everything a benchmark may need besides the router: the engine, the
/// Space's id and the owner's key.
pub struct BenchSpace {
    pub app: Router,
    pub engine: Engine,
    pub keys: spacectl::bootstrap::Bootstrap,
}

pub async fn bench_space(store: Arc<dyn Store>) -> anyhow::Result<BenchSpace> {
    let engine = Engine::builder(store).build();
    let keys = spacectl::bootstrap::create_demo(
        &engine,
        "Bench",
        Some(KeyRequest {
            name: "bench".into(),
            scopes: ScopeSet::all(),
            expires_at: None,
            rate_limit_per_minute: Some(u32::MAX),
            toolsets: None,
            read_only: false,
            limits: Vec::new(),
            approval_required: space_auth::ScopeSet::default(),
        }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("bootstrapping the bench space failed: {e}"))?;
    Ok(BenchSpace {
        app: spacectl::app(engine.clone()),
        engine,
        keys,
    })
}

/// Runs the worker `spacectl serve` runs over `engine` until a pass finds nothing due:
/// what a write left for later (an import's search words) is then done.
pub async fn drain_jobs(engine: &Engine) -> anyhow::Result<()> {
    let worker = spacectl::worker(engine.clone());
    while worker.run_due().await?.done > 0 {}
    Ok(())
}

/// One request through `app` (`path` under `base`): its status and JSON body.
pub async fn call(
    app: &Router,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (http::StatusCode, serde_json::Value) {
    use tower::ServiceExt as _;
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::AUTHORIZATION, auth);
    if body.is_some() {
        request = request.header(http::header::CONTENT_TYPE, "application/json");
    }
    let body = body.map_or_else(axum::body::Body::empty, |b| axum::body::Body::from(b.to_string()));
    let Ok(request) = request.body(body) else {
        return (http::StatusCode::BAD_REQUEST, serde_json::Value::Null);
    };
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
