//! Benchmarks of the Space API. Nothing here is used by the product:
//!
//! - `benches/authenticated_get.rs`, `benches/mcp_tools_call.rs`: criterion, the whole app
//!   in process (`cargo bench -p space-bench`), on the fixture below;
//! - `src/bin/bare.rs`: a bare axum server with a constant JSON answer, the baseline that
//!   `scripts/bench.sh` loads with wrk next to `spacectl serve`.

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
    let engine = Engine::builder(store).build();
    let created = spacectl::bootstrap::create_demo(
        &engine,
        "Bench",
        Some(KeyRequest {
            name: "bench".into(),
            scopes: ScopeSet::all(),
            expires_at: None,
            rate_limit_per_minute: Some(u32::MAX),
            toolsets: None,
            read_only: false,
        }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("bootstrapping the bench space failed: {e}"))?;
    Ok((spacectl::app(engine), created.space_key))
}
