//! Conversations under load against `spacectl serve` (release build, embedded store, its
//! own worker). One scenario per run (`--scenario`):
//!
//! - `campaign`: `--recipients` contacts tagged `vip` with a phone number, one WhatsApp
//!   channel (sandbox), an approved template and one campaign to the tag, launched. It
//!   reports how long until every recipient is handled (the campaign `completed`), the
//!   server's memory while it sends, and, from the sandbox's own record of what it sent
//!   (read from the data folder once the server is stopped), how many addresses were sent
//!   more than one message. `--kill` SIGKILLs the server once half the recipients are sent
//!   and starts it again on the same data.
//! - `inbound`: `--rate` signed provider callbacks a second for `--seconds`, from
//!   `--senders` phone numbers on one SMS channel. Per callback, the time from when it was
//!   due to its answer: the message, its thread and `message.received` are written in one
//!   transaction, so the answer is the event. Then whether every message landed on its
//!   sender's one thread and every one has its event.
//!
//! Prints one JSON object. Driven by scripts/bench-messaging.sh.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use space_bench::serve::{SeedKeys, Seeded, Server, all, free_port, percentile, rss_kib, send, wait_ready};
use space_store::embedded::EmbeddedStore;
use space_store::{Query, Store};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Campaign,
    Inbound,
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    server: Seeded,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// `campaign`: the audience's size.
    #[arg(long, default_value_t = 10_000)]
    recipients: usize,
    /// `campaign`: kill the server halfway through the sending.
    #[arg(long)]
    kill: bool,
    /// `inbound`: callbacks a second.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// `inbound`: for how long.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// `inbound`: distinct senders (each its own contact and thread).
    #[arg(long, default_value_t = 1_000)]
    senders: usize,
}

/// How long a campaign may take before the run gives up.
const CAMPAIGN_DEADLINE: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(200);

/// Where the seeded server's owner and Space key act.
struct Target {
    client: reqwest::Client,
    owner: String,
    space: String,
    key: String,
}

impl Target {
    fn account(&self, base: &str, path: &str) -> String {
        format!("{base}/functions/v1/account-api/spaces/{}{path}", self.space)
    }

    /// Connects a sandbox messaging channel: its id and signing secret.
    async fn connect(&self, base: &str, channel: &str, address: &str) -> anyhow::Result<(String, String)> {
        let created = send(
            self.client
                .post(self.account(base, "/connections"))
                .bearer_auth(&self.owner)
                .json(&json!({"kind": "messaging", "channel": channel, "name": format!("Bench {channel}"), "address": address})),
        )
        .await?;
        let id = created["id"].as_str().context("a connection id")?.to_owned();
        let secret = created["signing_secret"]
            .as_str()
            .context("a signing secret")?
            .to_owned();
        Ok((id, secret))
    }
}

/// `value` rounded to a tenth.
fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn phone(n: usize) -> String {
    format!("+1201{:07}", 5_560_000 + n)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let SeedKeys { owner, space, key } = args.server.keys()?;
    let target = Target {
        client: reqwest::Client::new(),
        owner,
        space,
        key,
    };
    let port = free_port()?;
    let mut server = args.server.start(port)?;
    wait_ready(&target.client, &server.base).await?;
    let result = match args.scenario {
        Scenario::Campaign => campaign(&args, &target, &mut server, port).await,
        Scenario::Inbound => inbound(&args, &target, &server).await,
    };
    let _ = server.kill();
    let mut result = result?;
    if args.scenario == Scenario::Campaign {
        let store = EmbeddedStore::open(&args.server.data.join("space.redb"))?;
        let sent = sent_by_address(&store, &target.space).await?;
        result["sandbox_records"] = json!(sent.values().sum::<usize>());
        result["addresses_sent_twice"] = json!(sent.values().filter(|n| **n > 1).count());
    }
    println!("{result}");
    Ok(())
}

/// What the sandbox sent, by recipient address: its own record, one per message.
async fn sent_by_address(store: &EmbeddedStore, space: &str) -> anyhow::Result<HashMap<String, usize>> {
    let partition = space_http::keys::collection_partition(space, "sandbox_messages");
    let mut counts = HashMap::new();
    let mut after = None;
    loop {
        let page = store
            .query(Query::partition(partition.clone()).after(after).limit(1_000))
            .await?;
        for item in &page.items {
            let to = item.body.get("to").and_then(Value::as_str).unwrap_or_default();
            *counts.entry(to.to_owned()).or_default() += 1;
        }
        match page.last_sk {
            Some(last) => after = Some(last),
            None => return Ok(counts),
        }
    }
}

async fn campaign(args: &Args, target: &Target, server: &mut Server, port: u16) -> anyhow::Result<Value> {
    let client = &target.client;
    let key = &target.key;
    let api = format!("{}/functions/v1/space-api", server.base);
    let (channel, _) = target.connect(&server.base, "whatsapp", "+12015550100").await?;

    let rows: Vec<Value> = (0..args.recipients)
        .map(|n| json!({"name": format!("Person {n}"), "phone": phone(n), "tags": ["vip"]}))
        .collect();
    let mut created = 0;
    for chunk in rows.chunks(1_000) {
        let imported = send(
            client
                .post(format!("{api}/contacts/import"))
                .bearer_auth(key)
                .json(&json!({"contacts": chunk})),
        )
        .await?;
        created += imported["created"].as_u64().unwrap_or(0) as usize;
    }
    if created != args.recipients {
        bail!("imported {created} of {} contacts", args.recipients);
    }

    let template = send(client.post(format!("{api}/templates")).bearer_auth(key).json(&json!({
        "name": "spring_sale", "language": "en", "category": "marketing",
        "body": "Hello {{1}}, our spring sale starts today."
    })))
    .await?;
    let template = template["id"].as_str().context("a template id")?.to_owned();
    send(
        client
            .post(format!("{api}/templates/{template}/submit"))
            .bearer_auth(key),
    )
    .await?;
    let approved_by = Instant::now() + Duration::from_secs(30);
    while send(client.get(format!("{api}/templates/{template}")).bearer_auth(key)).await?["status"] != "approved" {
        if Instant::now() > approved_by {
            bail!("the template was not approved within 30 s");
        }
        tokio::time::sleep(POLL).await;
    }

    let draft = send(client.post(format!("{api}/campaigns")).bearer_auth(key).json(&json!({
        "name": "Spring sale",
        "connection_id": channel,
        "template_id": template,
        "parameters": ["friend"],
        "audience": {"tags": ["vip"]}
    })))
    .await?;
    let id = draft["id"].as_str().context("a campaign id")?.to_owned();
    let rss_before = rss_kib(&server.child.id().to_string());
    let launched = Instant::now();
    send(client.post(format!("{api}/campaigns/{id}/launch")).bearer_auth(key)).await?;

    let mut rss_peak = 0u64;
    let mut rss_samples = Vec::new();
    let mut killed_at_sent = None;
    let mut last = Value::Null;
    let mut completed = None;
    while launched.elapsed() < CAMPAIGN_DEADLINE {
        tokio::time::sleep(POLL).await;
        if let Some(rss) = rss_kib(&server.child.id().to_string()) {
            rss_peak = rss_peak.max(rss);
            rss_samples.push(rss);
        }
        // Refused while the server restarts: asked again at the next poll.
        let Ok(now) = send(client.get(format!("{api}/campaigns/{id}")).bearer_auth(key)).await else {
            continue;
        };
        let sent = now["totals"]["sent"].as_u64().unwrap_or(0)
            + now["totals"]["delivered"].as_u64().unwrap_or(0)
            + now["totals"]["read"].as_u64().unwrap_or(0);
        if args.kill && killed_at_sent.is_none() && sent as usize >= args.recipients / 2 {
            server.kill()?;
            killed_at_sent = Some(sent);
            *server = args.server.start(port)?;
            wait_ready(client, &server.base).await?;
        }
        let done = now["status"] == "completed";
        last = now;
        if done {
            completed = Some(launched.elapsed());
            break;
        }
    }
    let totals = &last["totals"];
    let handled = args.recipients as u64 - totals["queued"].as_u64().unwrap_or(args.recipients as u64);
    let mib = |kib: Option<u64>| kib.map(|kib| tenths(kib as f64 / 1024.0));
    Ok(json!({
        "scenario": "campaign",
        "recipients": args.recipients,
        "killed": args.kill,
        "killed_at_sent": killed_at_sent,
        "status": last["status"],
        "handled": handled,
        "totals": totals,
        "seconds_to_completed": completed.map(|at| tenths(at.as_secs_f64())),
        "recipients_per_second": completed.map(|at| (args.recipients as f64 / at.as_secs_f64()).round()),
        "rss_mib_at_launch": mib(rss_before),
        "rss_mib_peak": mib(Some(rss_peak)),
        "rss_mib_end": mib(rss_samples.last().copied()),
    }))
}

async fn inbound(args: &Args, target: &Target, server: &Server) -> anyhow::Result<Value> {
    let client = &target.client;
    let (channel, secret) = target.connect(&server.base, "sms", "+12015550199").await?;
    let hook = Arc::new(format!("{}/hooks/messaging/{channel}", server.base));
    let secret = Arc::new(secret);
    let total = u64::from(args.rate) * args.seconds;
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let rss_before = rss_kib(&server.child.id().to_string());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for n in 0..total {
        ticks.tick().await;
        let due = started + every.mul_f64(n as f64);
        let sender = n as usize % args.senders.max(1);
        let from = phone(sender);
        let (client, hook, secret) = (client.clone(), hook.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"from": from, "text": format!("Message {n}")}).to_string();
            let signature = inbox::inbound::sign(&secret, chrono::Utc::now().timestamp(), body.as_bytes());
            let answer = client
                .post(hook.as_str())
                .header("content-type", "application/json")
                .header("x-space-signature", signature)
                .body(body)
                .send()
                .await;
            let status = answer.map_or(0, |answer| answer.status().as_u16());
            (sender, status, due.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let sent_in = started.elapsed();
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut accepted_per_sender = vec![0u64; args.senders.max(1)];
    let mut refused: HashMap<u16, u64> = HashMap::new();
    for task in tasks {
        match task.await {
            Ok((sender, status, ms)) if (200..300).contains(&status) => {
                latencies.push(ms);
                accepted_per_sender[sender] += 1;
            }
            Ok((_, status, _)) => *refused.entry(status).or_default() += 1,
            Err(_) => *refused.entry(0).or_default() += 1,
        }
    }
    let rss_after = rss_kib(&server.child.id().to_string());
    latencies.sort_by(f64::total_cmp);

    let api = format!("{}/functions/v1/space-api", server.base);
    let threads = all(client, &format!("{api}/inbox/threads"), &target.key).await?;
    let mut per_address: HashMap<String, (usize, u64)> = HashMap::new();
    for thread in &threads {
        let entry = per_address
            .entry(thread["address"].as_str().unwrap_or_default().to_owned())
            .or_default();
        entry.0 += 1;
        entry.1 += thread["inbound_count"].as_u64().unwrap_or(0);
    }
    // Each sender's accepted messages on one thread, no more and no fewer.
    let misthreaded = (0..args.senders)
        .filter(|sender| {
            let accepted = accepted_per_sender[*sender];
            let found = per_address.get(&phone(*sender)).copied().unwrap_or_default();
            found != if accepted == 0 { (0, 0) } else { (1, accepted) }
        })
        .count();
    let events = all(client, &format!("{api}/events?types=message.received"), &target.key).await?;
    let mib = |kib: Option<u64>| kib.map(|kib| tenths(kib as f64 / 1024.0));
    Ok(json!({
        "scenario": "inbound",
        "rate": args.rate,
        "seconds": args.seconds,
        "senders": args.senders,
        "callbacks": total,
        "accepted": latencies.len(),
        "refused_by_status": refused,
        "offered_per_second": (total as f64 / sent_in.as_secs_f64()).round(),
        "threads": threads.len(),
        "senders_misthreaded": misthreaded,
        "message_received_events": events.len(),
        "p50_ms": tenths(percentile(&latencies, 50.0)),
        "p99_ms": tenths(percentile(&latencies, 99.0)),
        "max_ms": tenths(latencies.last().copied().unwrap_or(f64::NAN)),
        "rss_mib_before": mib(rss_before),
        "rss_mib_after": mib(rss_after),
    }))
}
