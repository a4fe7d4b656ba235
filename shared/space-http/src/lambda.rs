//! Running a family: on Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise as a plain
//! local HTTP server. SDK clients are built once here; the table connection is opened in
//! the background while the runtime fetches the first event, so a cold start waits for
//! neither DNS nor TLS unless its first request needs the store.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use space_store::blobs::S3BlobStore;
use space_store::deferred::Deferred;
use space_store::dynamodb::DynamoStore;
use space_store::secrets::SecretsManagerVault;
use space_store::{Store, StoreError};

use crate::cursor::CursorKey;
use crate::engine::Engine;
use crate::rest::finish;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Logs as JSON lines on Lambda (CloudWatch), human-readable locally.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        builder.json().with_current_span(true).without_time().try_init()
    } else {
        builder
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// The engine of a deployed function, configured from the environment:
/// `TABLE_NAME`, `CURSOR_SECRET`, for the account API `SECRETS_PREFIX`, and for media
/// `MEDIA_BUCKET` (S3).
///
/// The SDK config and clients are built once, on background tasks started here (see
/// [`Deferred`]); the table connection is opened as soon as they exist. A request that
/// needs none of it (no key, a malformed one) is answered without waiting.
pub fn engine_from_env() -> Result<Engine, BoxError> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let config: Deferred<SdkConfig> = Deferred::spawn(async {
        Ok(Arc::new(
            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
        ))
    });
    let store = Deferred::spawn(with_config(&config, move |config| {
        DynamoStore::from_config(config, table)
    }));
    let warming = store.clone();
    tokio::spawn(async move {
        if let Err(error) = Store::warm_up(&warming).await {
            tracing::warn!(%error, "DynamoDB warm-up failed");
        }
    });
    let mut builder = Engine::builder(Arc::new(store));
    if let Ok(secret) = std::env::var("CURSOR_SECRET") {
        builder = builder.cursor_key(CursorKey::from_secret(&secret));
    }
    if let Ok(prefix) = std::env::var("SECRETS_PREFIX") {
        let vault = Deferred::spawn(with_config(&config, move |config| {
            SecretsManagerVault::new(aws_sdk_secretsmanager::Client::new(config), prefix)
        }));
        builder = builder.vault(Arc::new(vault));
    }
    if let Ok(bucket) = std::env::var("MEDIA_BUCKET") {
        let blobs = Deferred::spawn(with_config(&config, move |config| S3BlobStore::new(config, bucket)));
        builder = builder.blobs(Arc::new(blobs));
    }
    Ok(builder.build())
}

/// A build step that needs the SDK config: waits for it, then builds.
fn with_config<T: Send + Sync + 'static>(
    config: &Deferred<SdkConfig>,
    build: impl FnOnce(&SdkConfig) -> T + Send + 'static,
) -> impl std::future::Future<Output = Result<Arc<T>, StoreError>> + Send + 'static {
    let config = config.clone();
    async move { Ok(Arc::new(build(config.get().await?.as_ref()))) }
}

/// The whole `main` of a family's Lambda binary.
pub async fn run(routes: Router<Engine>) -> Result<(), BoxError> {
    init_tracing();
    let engine = engine_from_env()?;
    let app = finish(routes, engine);
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_http::run(app).await
    } else {
        let address = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8787".into());
        let listener = tokio::net::TcpListener::bind(&address).await?;
        tracing::info!(%address, "serving without Lambda");
        axum::serve(listener, app).await?;
        Ok(())
    }
}
