//! Driving a real `spacectl serve` from a load generator: start it on a data folder, wait
//! until it answers, kill it (SIGKILL) and start it again; and the percentile the figures use.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// A running `spacectl serve --store embedded` and where it listens.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `spacectl` on `data` at `port`; its output goes to `data/spacectl.log`.
    pub fn start(spacectl: &Path, data: &Path, port: u16) -> anyhow::Result<Server> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("spacectl.log"))?;
        let child = Command::new(spacectl)
            .args([
                "serve",
                "--store",
                "embedded",
                "--host",
                "127.0.0.1",
                "--allow-local-webhooks",
            ])
            .arg("--data")
            .arg(data)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("spacectl starts")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// SIGKILL: nothing is flushed or handed back.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// Where a load driver finds its server: the `spacectl` binary, the data folder the `seed`
/// binary prepared, and the seed's JSON answer.
#[derive(clap::Args, Debug, Clone)]
pub struct Seeded {
    #[arg(long)]
    pub spacectl: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    /// The seed's JSON (account key, space id, space key).
    #[arg(long)]
    pub seed: PathBuf,
}

/// The keys and Space the seed made.
pub struct SeedKeys {
    /// The owner's account key.
    pub owner: String,
    pub space: String,
    /// A full-scope key of the Space, without a reachable rate limit.
    pub key: String,
}

impl Seeded {
    pub fn keys(&self) -> anyhow::Result<SeedKeys> {
        let seed: Value = serde_json::from_slice(&std::fs::read(&self.seed)?)?;
        let field = |name: &str| {
            seed[name]
                .as_str()
                .map(String::from)
                .with_context(|| format!("the seed's `{name}`"))
        };
        Ok(SeedKeys {
            owner: field("account_key")?,
            space: field("space_id")?,
            key: field("space_key")?,
        })
    }

    /// Starts `spacectl serve` on the data folder at `port`.
    pub fn start(&self, port: u16) -> anyhow::Result<Server> {
        Server::start(&self.spacectl, &self.data, port)
    }
}

/// Waits until the server answers (up to 10 s).
pub async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..400 {
        if client
            .get(format!("{base}/functions/v1/space-api/openapi.json"))
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("spacectl did not answer at {base}")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `p`th percentile of `sorted` (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One request: its JSON body, or the status and body as the error.
pub async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let answer = request.send().await?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(body)
}

/// Every page of a list (`url` may carry its own query).
pub async fn all(client: &reqwest::Client, url: &str, key: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = client.get(url).bearer_auth(key).query(&[("limit", "200")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page = send(request).await?;
        items.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
}

/// The resident memory of `process` (a pid, or `self`) in KiB, from Linux's `/proc`;
/// `None` elsewhere.
pub fn rss_kib(process: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
