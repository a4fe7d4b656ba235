//! The test harness: a real HTTP server on a loopback port, over a chosen store, with a
//! bootstrapped account and Space, a hand-driven clock, and a client that fails the test
//! if any response ever contains a secret value set anywhere in the suite.

pub mod counting;
pub mod faults;

use std::sync::{Arc, Mutex};

use chrono::{DurationRound, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use space_auth::ScopeSet;
use space_http::Engine;
use space_store::blobs::{BlobStore, FileBlobStore, S3BlobStore};
use space_store::dynamodb::DynamoStore;
use space_store::embedded::EmbeddedStore;
use space_store::secrets::MemoryVault;
use space_store::{ManualClock, Store};
use spacectl::bootstrap::{Bootstrap, create_demo};

pub const SPACE_API: &str = "/functions/v1/space-api";
pub const ACCOUNT_API: &str = "/functions/v1/account-api";

/// Every secret value any test has set; no response of the suite may contain one.
static SECRET_VALUES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Registers a secret value the client must never see again.
pub fn forbid_in_responses(value: &str) {
    SECRET_VALUES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(value.to_owned());
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Dynamodb,
}

/// A running API with a demo account.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub vault: MemoryVault,
    /// Media bytes: files in the test's folder on the embedded backend, a fresh S3 bucket
    /// on moto on the DynamoDB one.
    pub blobs: Arc<dyn BlobStore>,
    pub demo: Bootstrap,
    pub backend: Backend,
    _data: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error code of an envelope, checking the envelope's shape on the way.
    pub fn error_code(&self) -> &str {
        let error = &self.body["error"];
        assert!(error["message"].is_string(), "no error message in {}", self.text);
        assert!(
            error["request_id"].as_str().is_some_and(|id| id.starts_with("req_")),
            "no request id in {}",
            self.text
        );
        assert_eq!(
            self.header("x-request-id"),
            error["request_id"].as_str(),
            "request id header and body differ"
        );
        error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text))
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }
}

/// A request being built.
pub struct Request<'a> {
    app: &'a TestApp,
    builder: reqwest::RequestBuilder,
}

impl Request<'_> {
    pub fn key(mut self, key: &str) -> Self {
        self.builder = self.builder.bearer_auth(key);
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.builder = self.builder.json(&body);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type).body(body);
        self
    }

    pub async fn send(self) -> Response {
        let response = self.builder.send().await.expect("the test server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        self.app.check_no_secret(&text);
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        assert!(status < 500 || status == 503, "server error {status}: {text}");
        Response {
            status,
            headers,
            body,
            text,
        }
    }
}

/// A store on `table` at the next of the moto servers `scripts/with-moto.sh` started
/// (`MOTO_DYNAMODB_ENDPOINTS`): each answers one request at a time, so the tests' tables
/// are dealt out among them and one test's burst holds up only those beside it.
async fn dynamodb_store(table: String) -> DynamoStore {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let endpoints: Vec<String> = std::env::var("MOTO_DYNAMODB_ENDPOINTS")
        .map(|list| {
            list.split(',')
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if endpoints.is_empty() {
        return DynamoStore::from_env(table).await;
    }
    let next = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoints[next % endpoints.len()])
        .load()
        .await;
    DynamoStore::from_config(&config, table)
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        match backend {
            Backend::Embedded => TestApp::embedded().await,
            Backend::Dynamodb => TestApp::dynamodb().await,
        }
    }

    /// The embedded store in a redb file, as `spacectl serve` runs it.
    pub async fn embedded() -> TestApp {
        let data = tempfile::tempdir().expect("a temp dir");
        let clock = test_clock();
        let store = EmbeddedStore::open(&data.path().join("space.redb"))
            .expect("redb opens")
            .with_clock(clock.clone());
        TestApp::serve(Arc::new(store), clock, data, Backend::Embedded).await
    }

    /// DynamoDB on the moto server `scripts/with-moto.sh` started, one fresh table per test.
    pub async fn dynamodb() -> TestApp {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            "the DynamoDB tests need moto: run through scripts/with-moto.sh (make test does)"
        );
        let clock = test_clock();
        let table = format!("space-test-{}", space_http::ids::new_id("t").replace('_', "-"));
        let store = dynamodb_store(table).await.with_clock(clock.clone());
        // moto serves many DynamoDB tests of the run: under a burst of another test it may
        // answer late, so creating the table is tried a few times.
        let mut tries = 0;
        while let Err(error) = store.create_table().await {
            tries += 1;
            assert!(tries < 4, "moto creates the table: {error:?}");
        }
        TestApp::serve(
            Arc::new(store),
            clock,
            tempfile::tempdir().expect("a temp dir"),
            Backend::Dynamodb,
        )
        .await
    }

    /// Serves any store (tests wrap stores to count or break calls).
    pub async fn serve(
        store: Arc<dyn Store>,
        clock: Arc<ManualClock>,
        data: tempfile::TempDir,
        backend: Backend,
    ) -> TestApp {
        let vault = MemoryVault::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let blobs: Arc<dyn BlobStore> = match backend {
            Backend::Embedded => Arc::new(FileBlobStore::new(data.path().join("media"))),
            Backend::Dynamodb => {
                let bucket = format!("space-test-{}", space_http::ids::new_id("b").replace('_', "-"));
                let bucket = S3BlobStore::from_env(bucket).await;
                bucket.create_bucket().await.expect("moto creates the bucket");
                Arc::new(bucket)
            }
        };
        let engine = Engine::builder(store)
            .clock(clock.clone())
            .vault(Arc::new(vault.clone()))
            .signing_keys(Arc::new(MemoryVault::default()))
            .allow_local_webhooks(true)
            .blobs(Arc::clone(&blobs))
            .public_url(base.clone())
            .build();
        let demo = create_demo(
            &engine,
            "Test space",
            Some(account_api::keys::KeyRequest {
                name: "all scopes".into(),
                scopes: ScopeSet::all(),
                expires_at: None,
                rate_limit_per_minute: Some(100_000),
                toolsets: None,
                read_only: false,
                limits: Vec::new(),
                approval_required: space_auth::ScopeSet::default(),
            }),
        )
        .await
        .expect("bootstrap");
        let app = spacectl::app(engine.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestApp {
            base,
            client: reqwest::Client::new(),
            engine,
            clock,
            vault,
            blobs,
            demo,
            backend,
            _data: data,
            server,
        }
    }

    pub fn key(&self) -> &str {
        &self.demo.space_key
    }

    pub fn account_key(&self) -> &str {
        &self.demo.account_key
    }

    /// A request to any path of the server, or to an absolute URL the API handed out.
    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        Request {
            app: self,
            builder: self.client.request(method, url),
        }
    }

    /// A JSON-RPC request to the MCP endpoint (`query` like `?mode=operations`, or empty).
    pub fn mcp(&self, key: &str, query: &str, body: Value) -> Request<'_> {
        self.request(Method::POST, &format!("/functions/v1/space-mcp{query}"))
            .key(key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(body)
    }

    /// A request to the space API with the full-scope key.
    pub fn space(&self, method: Method, path: &str) -> Request<'_> {
        self.request(method, &format!("{SPACE_API}{path}"))
            .key(&self.demo.space_key)
    }

    /// A request to the account API with the owner's key.
    pub fn account(&self, method: Method, path: &str) -> Request<'_> {
        self.request(method, &format!("{ACCOUNT_API}{path}"))
            .key(&self.demo.account_key)
    }

    /// Mints a key on the demo Space through the account API.
    pub async fn mint(&self, scopes: &[&str], rate_limit: Option<u32>) -> String {
        self.mint_on(&self.demo.space_id, scopes, rate_limit).await
    }

    pub async fn mint_on(&self, space: &str, scopes: &[&str], rate_limit: Option<u32>) -> String {
        let response = self
            .account(Method::POST, &format!("/spaces/{space}/keys"))
            .json(json!({"name": "test key", "scopes": scopes, "rate_limit_per_minute": rate_limit}))
            .send()
            .await
            .expect(201);
        response.body["token"].as_str().expect("a token").to_owned()
    }

    /// A second Space of the same account, with a full-scope key.
    pub async fn other_space(&self) -> (String, String) {
        let space = self
            .account(Method::POST, "/spaces")
            .json(json!({"name": "Other"}))
            .send()
            .await
            .expect(201);
        let id = space.body["id"].as_str().expect("an id").to_owned();
        let scopes: Vec<String> = ScopeSet::all().iter().map(|s| s.to_string()).collect();
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let key = self.mint_on(&id, &scopes, Some(100_000)).await;
        (id, key)
    }

    /// Creates a contact with the full-scope key and returns its body.
    pub async fn contact(&self, body: Value) -> Value {
        self.space(Method::POST, "/contacts")
            .json(body)
            .send()
            .await
            .expect(201)
            .body
    }

    /// The Space's events feed, read straight from the store.
    /// One pass of the worker `spacectl serve` runs: every job due now.
    pub async fn worker_pass(&self) {
        spacectl::worker(self.engine.clone())
            .run_due()
            .await
            .expect("a worker pass");
    }

    /// Worker passes until one finds nothing due (jobs a pass enqueues run in the next).
    pub async fn worker_drain(&self) {
        let worker = spacectl::worker(self.engine.clone());
        for _ in 0..1_000 {
            let pass = worker.run_due().await.expect("a worker pass");
            if pass.done + pass.later + pass.dead == 0 {
                return;
            }
        }
        panic!("the worker never went idle");
    }

    pub async fn event_types(&self) -> Vec<String> {
        let partition = space_http::keys::events_partition(&self.demo.space_id);
        let mut types = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .engine
                .store()
                .query(space_store::Query::partition(partition.clone()).after(after).limit(100))
                .await
                .expect("events read");
            types.extend(
                page.items
                    .iter()
                    .filter_map(|i| i.body.get("type").and_then(Value::as_str).map(str::to_owned)),
            );
            match page.last_sk {
                Some(last) => after = Some(last),
                None => return types,
            }
        }
    }

    fn check_no_secret(&self, text: &str) {
        let values = SECRET_VALUES.lock().unwrap_or_else(|p| p.into_inner());
        for value in values.iter() {
            assert!(
                !text.contains(value.as_str()),
                "a secret value leaked into a response: {text}"
            );
        }
    }
}

/// A clock at the start of a minute (plus one second), so a test's requests share one
/// rate window unless the test moves time itself.
fn test_clock() -> Arc<ManualClock> {
    let minute = Utc::now()
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap_or_else(|_| Utc::now());
    Arc::new(ManualClock::new(minute + TimeDelta::seconds(1)))
}

/// A 1×1 PNG, the smallest image the media checks accept.
pub const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0d\x49\x44\x41\x54\x78\x9c\x63\x60\x60\x60\xf8\x0f\x00\x01\x04\x01\x00\x5f\xe5\xc3\x4b\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// Runs each listed test against both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::TestApp::start($crate::Backend::Embedded).await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::TestApp::start($crate::Backend::Dynamodb).await).await;
                }
            )*
        }
    };
}
