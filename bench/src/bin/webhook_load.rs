//! Load on what happens after a change: webhooks and the realtime stream, end to end
//! through `spacectl serve` (its worker, its store) and receivers in this process.
//!
//! `webhook-load --spacectl PATH --data DIR --key KEY --scenario NAME` starts the server on
//! a seeded data folder (see `seed`), creates contacts at a steady rate and measures, per
//! receiver, the time from a change's answer to its delivery. Scenarios:
//!
//! - `steady`: `--rate` changes/s for `--seconds`, `--endpoints` healthy receivers;
//! - `outage`: the same, but receiver 0 answers 500 for `--failing` seconds, then refuses
//!   connections for 10 s, then recovers; the others stay healthy. Reports the healthy
//!   receivers' latency while its retries pile up, and how long after recovery receiver 0
//!   has every event;
//! - `kill`: the server is killed with SIGKILL halfway and restarted on the same data; the
//!   load retries failed requests with their `Idempotency-Key`;
//! - `sse`: one realtime stream open; the time from a change's answer to its SSE event.
//!
//! Prints one JSON object per scenario on stdout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Parser;
use futures::StreamExt as _;
use serde_json::{Value, json};
use space_bench::serve::{Server, free_port, percentile, wait_ready};

#[derive(Parser, Debug, Clone)]
struct Args {
    #[arg(long)]
    spacectl: PathBuf,
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    key: String,
    #[arg(long, default_value = "steady")]
    scenario: String,
    #[arg(long, default_value_t = 200)]
    rate: u32,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    endpoints: usize,
    /// Seconds receiver 0 answers 500 in the outage scenario (then 10 s refused).
    #[arg(long, default_value_t = 40)]
    failing: u64,
    /// How long to wait for the last deliveries after the load.
    #[arg(long, default_value_t = 30)]
    drain: u64,
}

/// When each change was answered, by contact id.
type Commits = Arc<Mutex<HashMap<String, Instant>>>;

/// What one receiver saw: (webhook-id, contact id, arrival).
#[derive(Default)]
struct Seen {
    deliveries: Vec<(String, String, Instant)>,
    refused: u64,
}

/// How a receiver answers: 0 healthy, 1 failing (500).
struct Receiver {
    mode: AtomicU8,
    seen: Mutex<Seen>,
}

async fn hook(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let at = Instant::now();
    if receiver.mode.load(Ordering::Relaxed) == 1 {
        if let Ok(mut seen) = receiver.seen.lock() {
            seen.refused += 1;
        }
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let contact = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| {
            event
                .pointer("/data/object/id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    if let Ok(mut seen) = receiver.seen.lock() {
        seen.deliveries.push((id, contact, at));
    }
    StatusCode::NO_CONTENT
}

/// A receiver listening on `port` (0: any) until `stop` fires; returns its address.
async fn listen(receiver: Arc<Receiver>, port: u16) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    let app = Router::new().route("/hook", post(hook)).with_state(receiver);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, task))
}

/// Creates contacts at `rate` per second for `seconds`, each retried with its
/// `Idempotency-Key` until answered (a server restarting refuses connections for a while).
async fn load(client: reqwest::Client, base: String, key: String, rate: u32, seconds: u64, commits: Commits) -> u64 {
    let total = u64::from(rate) * seconds;
    let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for n in 0..total {
        ticks.tick().await;
        let (client, base, key, commits) = (client.clone(), base.clone(), key.clone(), commits.clone());
        tasks.push(tokio::spawn(async move {
            let idempotency = format!("load-{n}-{}", std::process::id());
            for _ in 0..400 {
                let answer = client
                    .post(format!("{base}/functions/v1/space-api/contacts"))
                    .bearer_auth(&key)
                    .header("idempotency-key", &idempotency)
                    .json(&json!({"name": format!("Load {n}")}))
                    .send()
                    .await;
                if let Ok(answer) = answer
                    && answer.status().is_success()
                    && let Ok(body) = answer.json::<Value>().await
                    && let Some(id) = body.get("id").and_then(Value::as_str)
                {
                    if let Ok(mut commits) = commits.lock() {
                        commits.entry(id.to_owned()).or_insert_with(Instant::now);
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    total
}

async fn create_endpoint(client: &reqwest::Client, base: &str, key: &str, url: &str) -> anyhow::Result<()> {
    let answer = client
        .post(format!("{base}/functions/v1/space-api/webhooks"))
        .bearer_auth(key)
        .json(&json!({"url": url, "events": ["contact.created"]}))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!(
            "creating the endpoint answered {}: {}",
            answer.status(),
            answer.text().await?
        );
    }
    Ok(())
}

/// Latencies (ms, sorted), lost and duplicate counts of one receiver against the commits.
fn summarize(seen: &Seen, commits: &HashMap<String, Instant>, since: Option<Instant>) -> Value {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut latencies = Vec::new();
    for (id, contact, at) in &seen.deliveries {
        let count = ids.entry(id.as_str()).or_default();
        *count += 1;
        if *count == 1
            && let Some(committed) = commits.get(contact)
            && since.is_none_or(|since| *committed >= since)
        {
            latencies.push(at.saturating_duration_since(*committed).as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let delivered: std::collections::HashSet<&str> = seen.deliveries.iter().map(|(_, c, _)| c.as_str()).collect();
    let lost = commits
        .keys()
        .filter(|contact| !delivered.contains(contact.as_str()))
        .count();
    json!({
        "delivered": ids.len(),
        "lost": lost,
        "duplicates": ids.values().filter(|count| **count > 1).count(),
        "refused_attempts": seen.refused,
        "p50_ms": percentile(&latencies, 50.0),
        "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let port = free_port()?;
    let mut server = Server::start(&args.spacectl, &args.data, port)?;
    wait_ready(&client, &server.base).await?;
    let result = match args.scenario.as_str() {
        "sse" => sse(&args, &client, &server.base).await,
        _ => webhooks(&args, &client, &mut server, port).await,
    };
    let _ = server.child.kill();
    let _ = server.child.wait();
    println!("{}", result?);
    Ok(())
}

async fn webhooks(args: &Args, client: &reqwest::Client, server: &mut Server, port: u16) -> anyhow::Result<Value> {
    let receivers: Vec<Arc<Receiver>> = (0..args.endpoints)
        .map(|_| {
            Arc::new(Receiver {
                mode: AtomicU8::new(0),
                seen: Mutex::default(),
            })
        })
        .collect();
    let mut listening = Vec::new();
    for receiver in &receivers {
        let (address, task) = listen(receiver.clone(), 0).await?;
        create_endpoint(client, &server.base, &args.key, &format!("http://{address}/hook")).await?;
        listening.push((address, task));
    }
    let commits: Commits = Arc::default();
    let started = Instant::now();
    let loading = tokio::spawn(load(
        client.clone(),
        server.base.clone(),
        args.key.clone(),
        args.rate,
        args.seconds,
        commits.clone(),
    ));
    let mut recovered_at = None;
    let mut restart_ms = None;
    match args.scenario.as_str() {
        "outage" => {
            receivers[0].mode.store(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(args.failing)).await;
            let (address, task) = listening.swap_remove(0);
            task.abort();
            let _ = task.await;
            tokio::time::sleep(Duration::from_secs(10)).await;
            receivers[0].mode.store(0, Ordering::Relaxed);
            let (_, task) = listen(receivers[0].clone(), address.port()).await?;
            listening.push((address, task));
            recovered_at = Some(Instant::now());
        }
        "kill" => {
            tokio::time::sleep(Duration::from_secs(args.seconds / 2)).await;
            // SIGKILL: no signal handler runs, nothing is released.
            let killed = Instant::now();
            server.child.kill()?;
            server.child.wait()?;
            *server = Server::start(&args.spacectl, &args.data, port)?;
            wait_ready(client, &server.base).await?;
            restart_ms = Some(killed.elapsed().as_secs_f64() * 1000.0);
        }
        _ => {}
    }
    let total = loading.await?;
    let load_seconds = started.elapsed().as_secs_f64();
    let expected = commits.lock().map(|c| c.len()).unwrap_or(0);
    // Wait for every receiver to have every change (or the drain time, or for the outage's
    // receiver the retry schedule's next step: 5 minutes).
    let deadline = Instant::now()
        + Duration::from_secs(args.drain)
        + if recovered_at.is_some() {
            Duration::from_secs(360)
        } else {
            Duration::ZERO
        };
    let complete = |receiver: &Receiver| -> bool {
        receiver.seen.lock().is_ok_and(|seen| {
            let contacts: std::collections::HashSet<&str> =
                seen.deliveries.iter().map(|(_, c, _)| c.as_str()).collect();
            contacts.len() >= expected
        })
    };
    let mut all_at = None;
    while Instant::now() < deadline {
        if receivers.iter().all(|receiver| complete(receiver)) {
            all_at = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let commits = commits.lock().map(|c| c.clone()).unwrap_or_default();
    let per_receiver: Vec<Value> = receivers
        .iter()
        .map(|receiver| {
            receiver
                .seen
                .lock()
                .map(|seen| summarize(&seen, &commits, None))
                .unwrap_or(Value::Null)
        })
        .collect();
    Ok(json!({
        "scenario": args.scenario,
        "rate_per_s": args.rate,
        "changes_sent": total,
        "changes_committed": expected,
        "load_seconds": load_seconds,
        "achieved_rate_per_s": expected as f64 / load_seconds,
        "receivers": per_receiver,
        "all_delivered": all_at.is_some(),
        "restart_ms": restart_ms,
        "recovery_to_complete_s": recovered_at.zip(all_at).map(|(from, to)| to.saturating_duration_since(from).as_secs_f64()),
    }))
}

async fn sse(args: &Args, client: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    let stream = client
        .get(format!("{base}/functions/v1/space-realtime?types=contact.created"))
        .bearer_auth(&args.key)
        .send()
        .await?;
    if !stream.status().is_success() {
        bail!("the stream answered {}", stream.status());
    }
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let reader = tokio::spawn({
        let arrivals = arrivals.clone();
        async move {
            let mut body = stream.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = body.next().await {
                let at = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    let contact = event
                        .lines()
                        .find_map(|line| line.strip_prefix("data:"))
                        .and_then(|data| serde_json::from_str::<Value>(data.trim()).ok())
                        .and_then(|event| {
                            event
                                .pointer("/data/object/id")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        });
                    if let (Some(contact), Ok(mut arrivals)) = (contact, arrivals.lock()) {
                        arrivals.entry(contact).or_insert(at);
                    }
                }
            }
        }
    });
    let commits: Commits = Arc::default();
    let total = load(
        client.clone(),
        base.to_owned(),
        args.key.clone(),
        args.rate,
        args.seconds,
        commits.clone(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    let expected = commits.lock().map(|c| c.len()).unwrap_or(0);
    while Instant::now() < deadline && arrivals.lock().map(|a| a.len()).unwrap_or(0) < expected {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.abort();
    let commits = commits.lock().map(|c| c.clone()).unwrap_or_default();
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut latencies: Vec<f64> = commits
        .iter()
        .filter_map(|(contact, committed)| {
            arrivals
                .get(contact)
                .map(|at| at.saturating_duration_since(*committed).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "sse",
        "rate_per_s": args.rate,
        "changes_sent": total,
        "changes_committed": expected,
        "received": arrivals.len(),
        "lost": expected.saturating_sub(latencies.len()),
        "p50_ms": percentile(&latencies, 50.0),
        "p99_ms": percentile(&latencies, 99.0),
        "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
    }))
}
