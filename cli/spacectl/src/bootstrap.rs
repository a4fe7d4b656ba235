//! First start on an empty store: an account, its key, a "Demo" Space and an all-scopes
//! space key, printed once and written to `bootstrap.json` (mode 0600).

use std::path::Path;

use account_api::keys::{KeyRequest, mint};
use account_api::spaces::{create_account, create_space};
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use space_auth::{Principal, ScopeSet};
use space_http::{ApiError, Engine};
use space_store::{Condition, Item};

/// What a first start creates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bootstrap {
    pub account_id: String,
    pub account_key: String,
    pub space_id: String,
    pub space_key: String,
}

/// The item whose presence means "already bootstrapped".
const MARKER_PK: &str = "SYSTEM";
const MARKER_SK: &str = "BOOTSTRAP";

/// Creates the demo account, space and keys unless the store has them already; the owner
/// key allows `owner_rate_limit` requests a minute (the default limit when `None`).
pub async fn bootstrap_if_empty(engine: &Engine, owner_rate_limit: Option<u32>) -> Result<Option<Bootstrap>, ApiError> {
    if engine.store().get(MARKER_PK, MARKER_SK).await?.is_some() {
        return Ok(None);
    }
    let created = create_owned_demo(engine, "Demo", None, owner_rate_limit).await?;
    let marker = Map::from_iter([("space_id".to_owned(), json!(created.space_id))]);
    engine
        .store()
        .put(Item::new(MARKER_PK, MARKER_SK, marker), Condition::NotExists)
        .await?;
    Ok(Some(created))
}

/// An account with a key, one Space and one space key with `scopes` (all by default).
pub async fn create_demo(
    engine: &Engine,
    space_name: &str,
    space_key: Option<KeyRequest>,
) -> Result<Bootstrap, ApiError> {
    create_owned_demo(engine, space_name, space_key, None).await
}

async fn create_owned_demo(
    engine: &Engine,
    space_name: &str,
    space_key: Option<KeyRequest>,
    owner_rate_limit: Option<u32>,
) -> Result<Bootstrap, ApiError> {
    let account_id = create_account(engine, "Owner").await?;
    let owner = Principal {
        key_id: "bootstrap".into(),
        account_id: account_id.clone(),
        space_id: None,
        scopes: ScopeSet::default(),
        rate_limit: 0,
        toolsets: None,
        read_only: false,
        limits: Vec::new(),
        approval_required: space_auth::ScopeSet::default(),
        cause: None,
    };
    let account_key = mint(
        engine,
        &owner,
        None,
        KeyRequest {
            name: "Owner key".into(),
            scopes: ScopeSet::default(),
            expires_at: None,
            rate_limit_per_minute: owner_rate_limit,
            toolsets: None,
            read_only: false,
            limits: Vec::new(),
            approval_required: space_auth::ScopeSet::default(),
        },
    )
    .await?;
    let space = create_space(engine, &owner, space_name).await?;
    let request = space_key.unwrap_or(KeyRequest {
        name: "All scopes".into(),
        scopes: ScopeSet::all(),
        expires_at: None,
        rate_limit_per_minute: None,
        toolsets: None,
        read_only: false,
        limits: Vec::new(),
        approval_required: space_auth::ScopeSet::default(),
    });
    let space_key = mint(engine, &owner, Some(&space.sk_id()), request).await?;
    Ok(Bootstrap {
        account_id,
        account_key: account_key.token.expose().to_owned(),
        space_id: space.sk_id(),
        space_key: space_key.token.expose().to_owned(),
    })
}

trait SpaceId {
    fn sk_id(&self) -> String;
}

impl SpaceId for Item {
    /// A Space's META item keeps its id in the body.
    fn sk_id(&self) -> String {
        self.body
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

/// Writes `bootstrap.json` readable by its owner only.
pub fn write_file(path: &Path, bootstrap: &Bootstrap) -> std::io::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(serde_json::to_string_pretty(bootstrap).unwrap_or_default().as_bytes())?;
    file.sync_all()
}
