//! The state every handler receives: the store, the clock, the cursor key and limits.
//! Built once per process (per Lambda cold start) and cloned cheaply per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use space_store::blobs::BlobStore;
use space_store::secrets::{SecretVault, SigningKeys};
use space_store::{Clock, Store, SystemClock};

use crate::auth::AuthMemory;
use crate::cursor::CursorKey;
use crate::usage::UsageTally;

/// Request bodies above this size are refused with 413 unless a route says otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where clients reach the API when nothing else is configured: `spacectl serve`'s
/// default address.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8787";

/// Why a public base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the public URL must be an http(s) origin like https://api.example.com, without a path, query or fragment (got `{0}`)"
)]
pub struct BadPublicUrl(pub String);

/// Checks a public base URL: `http(s)://host[:port]`, a trailing slash dropped.
pub fn parse_public_url(text: &str) -> Result<String, BadPublicUrl> {
    let url = text.trim().trim_end_matches('/');
    let refused = || BadPublicUrl(text.to_owned());
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(refused)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if host.is_empty() || !host.chars().all(allowed) {
        return Err(refused());
    }
    Ok(url.to_owned())
}

/// Shared state of the API. Cloning it clones two `Arc`s.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    shared: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    cursor_key: CursorKey,
    vault: Option<Arc<dyn SecretVault>>,
    signing_keys: Option<Arc<dyn SigningKeys>>,
    blobs: Option<Arc<dyn BlobStore>>,
    public_url: String,
    max_body_bytes: usize,
    allow_local_webhooks: bool,
    /// When this process last recorded each key's `last_used_at` (unix seconds).
    key_touches: Mutex<HashMap<String, i64>>,
    auth: AuthMemory,
    usage: UsageTally,
}

/// `last_used_at` is written at most this often per key and process.
const TOUCH_INTERVAL_SECONDS: i64 = 60;

impl Engine {
    /// Whether this request should record `last_used_at` for `key_id` (at most once a
    /// minute per key, so the bookkeeping never becomes a write per request).
    pub fn claim_key_touch(&self, key_id: &str, now: i64) -> bool {
        let mut touches = self.shared.key_touches.lock().unwrap_or_else(|p| p.into_inner());
        match touches.get(key_id) {
            Some(last) if now - last < TOUCH_INTERVAL_SECONDS => false,
            _ => {
                if touches.len() > 10_000 {
                    touches.clear();
                }
                touches.insert(key_id.to_owned(), now);
                true
            }
        }
    }

    /// What authentication remembers between requests in this process.
    pub(crate) fn auth_memory(&self) -> &AuthMemory {
        &self.shared.auth
    }

    /// The usage counts this process has not written yet.
    pub(crate) fn usage(&self) -> &UsageTally {
        &self.shared.usage
    }

    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder {
            store,
            clock: Arc::new(SystemClock),
            cursor_key: None,
            vault: None,
            signing_keys: None,
            blobs: None,
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            allow_local_webhooks: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub fn store_arc(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The same engine over another store (a wrapper around this one's): what one call
    /// runs with when its writes must carry something more.
    pub fn with_store(&self, store: Arc<dyn Store>) -> Engine {
        Engine {
            store,
            shared: Arc::clone(&self.shared),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    pub fn cursor_key(&self) -> &CursorKey {
        &self.shared.cursor_key
    }

    /// The secret vault; only the account API is built with one.
    pub fn vault(&self) -> Option<&dyn SecretVault> {
        self.shared.vault.as_deref()
    }

    /// Where media bytes go; deployments without a bucket have none.
    pub fn blobs(&self) -> Option<&dyn BlobStore> {
        self.shared.blobs.as_deref()
    }

    /// The origin clients reach this API at (`https://api.example.com`), without a
    /// trailing slash.
    pub fn public_url(&self) -> &str {
        &self.shared.public_url
    }

    /// The absolute URL of `path` (`/c/…/calendar.ics`): the one way the API builds a
    /// link it hands out, so every link points where the deployment is reached.
    pub fn public_link(&self, path: &str) -> String {
        format!("{}{path}", self.shared.public_url)
    }

    pub fn max_body_bytes(&self) -> usize {
        self.shared.max_body_bytes
    }

    /// Keys the platform signs with and reads back (webhook secrets).
    pub fn signing_keys(&self) -> Option<&dyn SigningKeys> {
        self.shared.signing_keys.as_deref()
    }

    /// Whether webhooks may target plain `http` on loopback (local development, tests).
    pub fn allow_local_webhooks(&self) -> bool {
        self.shared.allow_local_webhooks
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    cursor_key: Option<CursorKey>,
    vault: Option<Arc<dyn SecretVault>>,
    signing_keys: Option<Arc<dyn SigningKeys>>,
    blobs: Option<Arc<dyn BlobStore>>,
    public_url: String,
    max_body_bytes: usize,
    allow_local_webhooks: bool,
}

impl EngineBuilder {
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The key that seals cursors. Instances of one deployment must share it; without
    /// one, a random key is used and cursors die with the process.
    pub fn cursor_key(mut self, key: CursorKey) -> Self {
        self.cursor_key = Some(key);
        self
    }

    pub fn vault(mut self, vault: Arc<dyn SecretVault>) -> Self {
        self.vault = Some(vault);
        self
    }

    pub fn signing_keys(mut self, keys: Arc<dyn SigningKeys>) -> Self {
        self.signing_keys = Some(keys);
        self
    }

    pub fn allow_local_webhooks(mut self, allow: bool) -> Self {
        self.allow_local_webhooks = allow;
        self
    }

    pub fn blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The origin clients reach the API at ([`DEFAULT_PUBLIC_URL`] if not given); check
    /// a configured one with [`parse_public_url`] first.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    pub fn build(self) -> Engine {
        Engine {
            store: self.store,
            shared: Arc::new(Inner {
                clock: self.clock,
                cursor_key: self.cursor_key.unwrap_or_else(CursorKey::random),
                vault: self.vault,
                signing_keys: self.signing_keys,
                blobs: self.blobs,
                public_url: self.public_url,
                max_body_bytes: self.max_body_bytes,
                allow_local_webhooks: self.allow_local_webhooks,
                key_touches: Mutex::default(),
                auth: AuthMemory::default(),
                usage: UsageTally::default(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_origins() {
        assert_eq!(
            parse_public_url("https://api.example.com/"),
            Ok("https://api.example.com".into())
        );
        assert_eq!(
            parse_public_url("http://127.0.0.1:8787"),
            Ok("http://127.0.0.1:8787".into())
        );
        assert_eq!(parse_public_url("http://[::1]:8787"), Ok("http://[::1]:8787".into()));
        for bad in [
            "api.example.com",
            "ftp://x",
            "https://",
            "https://x/api",
            "https://x?y",
            "https://x\"",
            "javascript:alert(1)",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_are_absolute_from_the_configured_origin() {
        let store: Arc<dyn Store> = Arc::new(space_store::embedded::EmbeddedStore::in_memory());
        let engine = Engine::builder(Arc::clone(&store)).build();
        assert_eq!(
            engine.public_link("/p/spc_1/about"),
            "http://127.0.0.1:8787/p/spc_1/about"
        );
        let engine = Engine::builder(store).public_url("https://api.example.com/").build();
        assert_eq!(engine.public_link("/b/bpg_1"), "https://api.example.com/b/bpg_1");
    }
}
