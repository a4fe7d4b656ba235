//! Seeds a `spacectl serve --store embedded` data folder, before the server opens it, with
//! a "Bench" space and a space key whose rate limit is far above what a load run sends.
//!
//! `seed DATA_DIR` prints `{"account_id","account_key","space_id","space_key"}` as JSON.
//!
//! Why not `POST /account-api/spaces/{id}/keys`: the REST endpoint caps
//! `rate_limit_per_minute` at 100 000, and wrk sends that many in a few seconds; the rest
//! of the run would then measure 429 answers. The key is minted by the same library
//! function the endpoint calls, only without the cap.

use std::path::PathBuf;
use std::sync::Arc;

use account_api::keys::KeyRequest;
use anyhow::Context as _;
use space_auth::ScopeSet;
use space_http::Engine;
use space_store::embedded::EmbeddedStore;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let data = PathBuf::from(std::env::args().nth(1).context("usage: seed DATA_DIR")?);
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let store = EmbeddedStore::open(&data.join("space.redb"))?;
    let engine = Engine::builder(Arc::new(store)).build();
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
            limits: Vec::new(),
            approval_required: space_auth::ScopeSet::default(),
        }),
    )
    .await
    .map_err(|e| anyhow::anyhow!("seeding failed: {e}"))?;
    println!("{}", serde_json::to_string(&created)?);
    Ok(())
}
