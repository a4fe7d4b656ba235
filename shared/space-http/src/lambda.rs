//! Running a family: on Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise as a plain
//! local HTTP server. SDK clients are built once, on the first request that needs them, so
//! a cold start pays neither for TLS roots nor for connections unless its request does.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use space_store::StoreError;
use space_store::blobs::{BlobStore, S3BlobStore};
use space_store::deferred::Deferred;
use space_store::dynamodb::DynamoStore;
use space_store::secrets::{SecretVault, SecretsManagerVault, SigningKeys};
use space_store::signing_cache::{CachedSigningKeys, SIGNING_KEY_TTL};

use crate::cursor::CursorKey;
use crate::engine::Engine;
use crate::rest::finish;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Logs straight to stdout: on Lambda a line must be written before the response, since
/// the process may be frozen right after it.
pub fn init_tracing() {
    crate::log::init(std::io::stdout);
}

/// The AWS backends a function's binary carries beyond its table. A family's `main` names
/// the constructors it uses; one that no `main` names is dropped by the linker, so a family
/// without media does not carry the S3 SDK (smaller binary, faster cold start). The
/// catalogue derives each function's IAM permissions from the same value.
#[derive(Clone, Copy)]
pub struct Backends {
    /// Media bytes, in the bucket named by `MEDIA_BUCKET`.
    pub media: Option<BuildBackend<dyn BlobStore>>,
    /// Secret values (written, never read), under the `SECRETS_PREFIX` name prefix.
    pub secret_values: Option<BuildBackend<dyn SecretVault>>,
    /// Keys the platform signs with and reads back (webhook secrets), under the
    /// `SIGNING_KEYS_PREFIX` name prefix, apart from the secret values.
    pub signing_keys: Option<BuildBackend<dyn SigningKeys>>,
}

/// Builds a backend from the SDK config and its setting (a bucket name, a name prefix).
pub type BuildBackend<T> = fn(&SdkConfig, String) -> Arc<T>;

impl Backends {
    /// The table and nothing else.
    pub const TABLE: Backends = Backends {
        media: None,
        secret_values: None,
        signing_keys: None,
    };
    /// The table and the media bucket.
    pub const TABLE_AND_MEDIA: Backends = Backends {
        media: Some(s3_media),
        secret_values: None,
        signing_keys: None,
    };
    /// The table and Secrets Manager.
    pub const TABLE_AND_SECRET_VALUES: Backends = Backends {
        media: None,
        secret_values: Some(secrets_manager),
        signing_keys: None,
    };
    /// The table and the signing keys.
    pub const TABLE_AND_SIGNING_KEYS: Backends = Backends {
        media: None,
        secret_values: None,
        signing_keys: Some(signing_keys),
    };
    /// The table, Secrets Manager and the signing keys: the account API, which sets secret
    /// values and gives each messaging connection its signing secret.
    pub const TABLE_SECRET_VALUES_AND_SIGNING_KEYS: Backends = Backends {
        media: None,
        secret_values: Some(secrets_manager),
        signing_keys: Some(signing_keys),
    };
    /// Every backend: the worker, which signs deliveries and removes deleted Spaces' media,
    /// secret values and signing keys.
    pub const ALL: Backends = Backends {
        media: Some(s3_media),
        secret_values: Some(secrets_manager),
        signing_keys: Some(signing_keys),
    };
}

fn s3_media(config: &SdkConfig, bucket: String) -> Arc<dyn BlobStore> {
    Arc::new(S3BlobStore::new(config, bucket))
}

fn secrets_manager(config: &SdkConfig, prefix: String) -> Arc<dyn SecretVault> {
    Arc::new(SecretsManagerVault::from_config(config, prefix))
}

/// Remembered for a minute per process (`space_store::signing_cache`): every delivery and
/// every inbound hook reads one, and each read would be a Secrets Manager call.
fn signing_keys(config: &SdkConfig, prefix: String) -> Arc<dyn SigningKeys> {
    Arc::new(CachedSigningKeys::new(
        Box::new(SecretsManagerVault::from_config(config, prefix)),
        SIGNING_KEY_TTL,
    ))
}

/// The environment variable that holds the API's public origin.
pub const PUBLIC_URL_ENV: &str = "PUBLIC_URL";

/// The engine of a deployed function, configured from the environment: `TABLE_NAME`,
/// `CURSOR_SECRET`, `PUBLIC_URL` (the API's origin, for the links it hands out; Terraform
/// sets it), and for the backends the function carries `MEDIA_BUCKET`, `SECRETS_PREFIX`
/// and `SIGNING_KEYS_PREFIX`.
///
/// Nothing is built here: the SDK config and each client are [`Deferred`], made once by the
/// first request that reaches them (a missing or malformed key never does). The first
/// store call opens the table's connection, which later requests reuse.
pub fn engine_from_env(backends: Backends) -> Result<Engine, BoxError> {
    let table = std::env::var("TABLE_NAME").map_err(|_| "TABLE_NAME is not set")?;
    let config: Deferred<SdkConfig> = Deferred::lazy(|| async {
        Ok(Arc::new(
            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
        ))
    });
    let store = Deferred::lazy(with_config(&config, move |config| {
        Arc::new(DynamoStore::from_config(config, table.clone()))
    }));
    let mut builder = Engine::builder(Arc::new(store));
    if let Ok(url) = std::env::var(PUBLIC_URL_ENV) {
        builder = builder.public_url(crate::engine::parse_public_url(&url)?);
    }
    if let Ok(secret) = std::env::var("CURSOR_SECRET") {
        builder = builder.cursor_key(CursorKey::from_secret(&secret));
    }
    if let (Some(build), Ok(prefix)) = (backends.secret_values, std::env::var("SECRETS_PREFIX")) {
        let vault = Deferred::lazy(with_config(&config, move |config| build(config, prefix.clone())));
        builder = builder.vault(Arc::new(vault));
    }
    if let (Some(build), Ok(prefix)) = (backends.signing_keys, std::env::var("SIGNING_KEYS_PREFIX")) {
        let keys = Deferred::lazy(with_config(&config, move |config| build(config, prefix.clone())));
        builder = builder.signing_keys(Arc::new(keys));
    }
    if let (Some(build), Ok(bucket)) = (backends.media, std::env::var("MEDIA_BUCKET")) {
        let blobs = Deferred::lazy(with_config(&config, move |config| build(config, bucket.clone())));
        builder = builder.blobs(Arc::new(blobs));
    }
    Ok(builder.build())
}

type BuildFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<T>, StoreError>> + Send>>;

/// A build step that needs the SDK config: waits for it (building it if nobody has), then
/// builds.
fn with_config<T: ?Sized + Send + Sync + 'static>(
    config: &Deferred<SdkConfig>,
    build: impl Fn(&SdkConfig) -> Arc<T> + Send + Sync + Clone + 'static,
) -> impl Fn() -> BuildFuture<T> + Send + Sync + 'static {
    let config = config.clone();
    move || {
        let config = config.clone();
        let build = build.clone();
        Box::pin(async move { Ok(build(config.get().await?.as_ref())) })
    }
}

/// The whole `main` of a family's Lambda binary.
pub async fn run(routes: Router<Engine>, backends: Backends) -> Result<(), BoxError> {
    serve(routes, backends, false).await
}

/// The `main` of a function whose answers stream (behind a function URL in
/// `RESPONSE_STREAM` mode): each body is sent as it is written, not when it ends.
pub async fn run_streaming(routes: Router<Engine>, backends: Backends) -> Result<(), BoxError> {
    serve(routes, backends, true).await
}

async fn serve(routes: Router<Engine>, backends: Backends, streaming: bool) -> Result<(), BoxError> {
    init_tracing();
    let engine = engine_from_env(backends)?;
    let app = finish(routes, engine);
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        if streaming {
            lambda_http::run_with_streaming_response(app).await
        } else {
            lambda_http::run(app).await
        }
    } else {
        let address = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8787".into());
        let listener = tokio::net::TcpListener::bind(&address).await?;
        tracing::info!(%address, "serving without Lambda");
        axum::serve(listener, app).await?;
        Ok(())
    }
}
