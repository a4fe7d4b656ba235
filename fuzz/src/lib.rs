//! What the in-process fuzz targets share: the whole app over an in-memory store, with a
//! bootstrapped Space and a full-scope key, driven one request at a time.

use std::cell::RefCell;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use space_auth::ScopeSet;
use space_http::Engine;
use space_store::blobs::FileBlobStore;
use space_store::embedded::EmbeddedStore;

/// Requests served by one app before it is rebuilt, so the in-memory store and the
/// key's rate window stay small however long the fuzzer runs.
const REQUESTS_PER_APP: u32 = 20_000;

pub struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
    pub space_key: String,
    pub space_id: String,
    served: u32,
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Harness {
    fn new() -> Harness {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let media = std::env::temp_dir().join(format!("space-fuzz-media-{}", std::process::id()));
        let engine = Engine::builder(Arc::new(EmbeddedStore::in_memory()))
            .blobs(Arc::new(FileBlobStore::new(media)))
            .public_url("http://127.0.0.1:8787")
            .build();
        let demo = runtime
            .block_on(spacectl::bootstrap::create_demo(
                &engine,
                "Fuzz",
                Some(account_api::keys::KeyRequest {
                    name: "fuzz".into(),
                    scopes: ScopeSet::all(),
                    expires_at: None,
                    rate_limit_per_minute: Some(100_000),
                    toolsets: None,
                    read_only: false,
                    limits: Vec::new(),
                    approval_required: space_auth::ScopeSet::default(),
                }),
            ))
            .expect("bootstrap");
        Harness {
            runtime,
            router: spacectl::app(engine),
            space_key: demo.space_key,
            space_id: demo.space_id,
            served: 0,
        }
    }

    /// Runs `f` with the current app, rebuilding it every [`REQUESTS_PER_APP`] uses.
    pub fn with<T>(f: impl FnOnce(&mut Harness) -> T) -> T {
        thread_local! {
            static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
        }
        HARNESS.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|h| h.served >= REQUESTS_PER_APP) {
                *slot = Some(Harness::new());
            }
            let harness = slot.as_mut().expect("just built");
            harness.served += 1;
            f(harness)
        })
    }

    /// Sends a request through the whole router and reads the answer.
    pub fn send(&self, request: Request<Body>) -> Answer {
        use tower::ServiceExt as _;
        self.runtime.block_on(async {
            let response = match self.router.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map(|b| b.to_vec())
                .unwrap_or_default();
            Answer { status, headers, body }
        })
    }
}

/// Panics (a finding) on a 5xx.
pub fn check_no_server_error(answer: &Answer, what: &str) {
    assert!(
        !answer.status.is_server_error(),
        "{what}: {} {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
            .chars()
            .take(2000)
            .collect::<String>()
    );
}

/// Panics (a finding) unless the answer is what a client may get for any input:
/// no 5xx, and every error in the JSON envelope.
pub fn check(answer: &Answer, what: &str) {
    check_no_server_error(answer, what);
    if answer.status.is_client_error() {
        let envelope: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        assert!(
            envelope["error"]["code"].is_string() && envelope["error"]["message"].is_string(),
            "{what}: {} without the error envelope: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
}
