//! `spacectl serve`: picks the store, bootstraps, and serves until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use space_http::Engine;
use space_http::cursor::CursorKey;
use space_store::Store;
use space_store::blobs::{BlobStore, FileBlobStore, MemoryBlobStore, S3BlobStore};
use space_store::dynamodb::DynamoStore;
use space_store::embedded::EmbeddedStore;
use space_store::secrets::{FileVault, MemoryVault, SecretVault, SecretsManagerVault, SigningKeys};
use space_store::signing_cache::{CachedSigningKeys, SIGNING_KEY_TTL};

use crate::bootstrap::{bootstrap_if_empty, write_file};

/// Which store backs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// A crash-safe redb file in the data folder.
    Embedded,
    /// Everything in memory; gone on exit.
    Memory,
    /// DynamoDB and Secrets Manager, configured the AWS SDK's usual way.
    Dynamodb,
}

/// Options of `spacectl serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// Where the embedded store, secret values and bootstrap.json live.
    #[arg(long, default_value = ".space")]
    pub data: PathBuf,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
    pub store: StoreKind,
    /// The DynamoDB table (with `--store dynamodb`).
    #[arg(long, env = "TABLE_NAME", default_value = "space-api")]
    pub table: String,
    /// Create the DynamoDB table (and the `MEDIA_BUCKET` bucket) if it does not exist.
    #[arg(long)]
    pub create_table: bool,
    /// The origin clients reach this server at, for the absolute links it hands out
    /// (feeds, published and booking pages, uploads); by default the address it listens
    /// on, `http://127.0.0.1:8787` unless --host or --port say otherwise.
    #[arg(long, env = "PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// Let webhooks target plain `http` on this machine (local development); by default
    /// only `https` to public addresses is delivered to.
    #[arg(long)]
    pub allow_local_webhooks: bool,
    /// The per-minute request limit of the owner key a first start mints (100 by default,
    /// as every key; up to 100,000): a busy local console or a test run may want more.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub owner_rate_limit: Option<u32>,
}

fn parse_public_url(text: &str) -> Result<String, space_http::engine::BadPublicUrl> {
    space_http::engine::parse_public_url(text)
}

/// The origin links point at: `--public-url`, else the address the server listens on.
pub fn public_url(options: &ServeOptions, listening: SocketAddr) -> String {
    options
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{listening}"))
}

/// Builds the engine for the chosen store, its links pointing at `public_url`.
pub async fn engine(options: &ServeOptions, public_url: String) -> anyhow::Result<Engine> {
    let files = || Arc::new(FileBlobStore::new(options.data.join("media")));
    type Backends = (
        Arc<dyn Store>,
        Arc<dyn SecretVault>,
        Arc<dyn SigningKeys>,
        Arc<dyn BlobStore>,
    );
    let (store, vault, signing, blobs): Backends = match options.store {
        StoreKind::Embedded => {
            std::fs::create_dir_all(&options.data)
                .with_context(|| format!("cannot create {}", options.data.display()))?;
            let store = EmbeddedStore::open(&options.data.join("space.redb"))?;
            (
                Arc::new(store),
                Arc::new(FileVault::new(options.data.join("secrets"))),
                Arc::new(FileVault::new(options.data.join("signing-keys"))),
                files(),
            )
        }
        StoreKind::Memory => (
            Arc::new(EmbeddedStore::in_memory()),
            Arc::new(MemoryVault::default()),
            Arc::new(MemoryVault::default()),
            Arc::new(MemoryBlobStore::default()),
        ),
        StoreKind::Dynamodb => {
            // One SDK config for every client: loading it reads the TLS roots.
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let store = DynamoStore::from_config(&config, options.table.clone());
            if options.create_table {
                store.create_table().await?;
            }
            store.warm_up().await.context("DynamoDB is not reachable")?;
            let prefix = std::env::var("SECRETS_PREFIX").unwrap_or_else(|_| "space-api/local".into());
            // Media in S3 when a bucket is named, else in files beside the other local data.
            let blobs: Arc<dyn BlobStore> = match std::env::var("MEDIA_BUCKET") {
                Ok(bucket) => {
                    let bucket = S3BlobStore::new(&config, bucket);
                    if options.create_table {
                        bucket.create_bucket().await?;
                    }
                    Arc::new(bucket)
                }
                Err(_) => files(),
            };
            (
                Arc::new(store),
                Arc::new(SecretsManagerVault::from_config(&config, prefix.clone())),
                Arc::new(CachedSigningKeys::new(
                    Box::new(SecretsManagerVault::from_config(&config, format!("{prefix}-signing"))),
                    SIGNING_KEY_TTL,
                )),
                blobs,
            )
        }
    };
    let cursor_key = match (options.store, std::env::var("CURSOR_SECRET")) {
        (_, Ok(secret)) => CursorKey::from_secret(&secret),
        (StoreKind::Memory, Err(_)) => CursorKey::random(),
        (_, Err(_)) => persistent_cursor_key(&options.data)?,
    };
    Ok(Engine::builder(store)
        .vault(vault)
        .signing_keys(signing)
        .allow_local_webhooks(options.allow_local_webhooks)
        .blobs(blobs)
        .public_url(public_url)
        .cursor_key(cursor_key)
        .build())
}

/// A cursor key kept in the data folder, so cursors survive restarts.
fn persistent_cursor_key(data: &Path) -> anyhow::Result<CursorKey> {
    let path = data.join("cursor.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(CursorKey::from_secret(text.trim()));
    }
    let secret = space_auth::Token::generate(space_auth::TokenKind::Account)
        .expose()
        .to_owned();
    std::fs::create_dir_all(data)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, secret.as_bytes())?;
    Ok(CursorKey::from_secret(&secret))
}

/// Serves until a shutdown signal; in-flight requests finish first.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    // Listening first: with `--port 0` the links must name the port the system picked.
    let address: SocketAddr = format!("{}:{}", options.host, options.port)
        .parse()
        .context("bad --host/--port")?;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
    let engine = engine(&options, public_url(&options, local)).await?;
    if let Some(created) = bootstrap_if_empty(&engine, options.owner_rate_limit)
        .await
        .map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?
    {
        let path = options.data.join("bootstrap.json");
        write_file(&path, &created)?;
        println!(
            "Created a Demo space. These keys are shown once (also in {}):",
            path.display()
        );
        println!("  account key: {}", created.account_key);
        println!("  space id:    {}", created.space_id);
        println!("  space key:   {}", created.space_key);
    }
    println!("Space API listening on http://{local}/functions/v1/space-api");
    println!("Console: http://{local}/console");
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
    });
    // One signal stops both the server and the worker.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    let worker = crate::worker(engine.clone());
    if matches!(options.store, StoreKind::Embedded) {
        // The file admits one process: a lease in it was left by one that died.
        match worker.reclaim_all().await {
            Ok(0) => {}
            Ok(freed) => tracing::info!(freed, "jobs held by a process that stopped run again now"),
            Err(error) => {
                tracing::warn!(%error, "could not free jobs left by a stopped process; their leases will expire")
            }
        }
    }
    let worker = tokio::spawn({
        let stop = stopped(stop.clone());
        async move { worker.run_until(stop, WORKER_EVERY, WORKER_GRACE).await }
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stopping.send(true);
    });
    // Public routes limit visitors by the peer address.
    let app = crate::app(engine.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(stopped(stop)).await?;
    // The last requests' usage counts, which would otherwise wait for a next batch.
    if let Err(error) = space_http::usage::flush(&engine).await {
        tracing::warn!(%error, "the last usage counts were not written");
    }
    let pass = worker.await.unwrap_or_default();
    println!("Stopped cleanly ({} jobs released to the next start).", pass.released);
    Ok(())
}

/// How often the local worker looks for due jobs.
const WORKER_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
/// How long a stopping worker lets running jobs finish before it releases them.
const WORKER_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
