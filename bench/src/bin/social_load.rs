//! Social publishing under load against `spacectl serve` (release build, embedded store,
//! its own worker): `--accounts` LinkedIn accounts (sandbox), `--posts` one-account drafts
//! scheduled at times spread over `--window` seconds (starting 20 s out), then it waits
//! for every post's time and reads back what happened:
//!
//! - lateness: `published_at - scheduled_at` per post (p50, p99, max);
//! - missed: posts not `published` 60 s after the last one's time;
//! - duplicates: posts with more than one `social_post.published` event in the feed (the
//!   sandbox keeps one publication per post, so a second publish would show there).
//!
//! `--kill` SIGKILLs the server halfway through the window and starts it again on the
//! same data. Prints one JSON object. Driven by scripts/bench-social.sh.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use serde_json::{Value, json};
use space_bench::serve::{SeedKeys, Seeded, all, free_port, percentile, send, wait_ready};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    server: Seeded,
    #[arg(long, default_value_t = 1000)]
    posts: usize,
    #[arg(long, default_value_t = 20)]
    accounts: usize,
    #[arg(long, default_value_t = 300)]
    window: i64,
    #[arg(long)]
    kill: bool,
}

const LEAD_SECONDS: i64 = 20;
const GRACE_SECONDS: i64 = 60;

fn time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let SeedKeys { owner, space, key } = args.server.keys()?;
    let client = reqwest::Client::new();
    let port = free_port()?;
    let mut server = args.server.start(port)?;
    wait_ready(&client, &server.base).await?;
    let api = format!("{}/functions/v1/space-api", server.base);

    let mut accounts = Vec::new();
    for n in 0..args.accounts {
        let created = send(
            client
                .post(format!(
                    "{}/functions/v1/account-api/spaces/{space}/connections",
                    server.base
                ))
                .bearer_auth(&owner)
                .json(&json!({"kind": "social", "network": "linkedin", "name": format!("Account {n}")})),
        )
        .await?;
        accounts.push(created["id"].as_str().context("an account id")?.to_owned());
    }
    let start = Utc::now() + TimeDelta::seconds(LEAD_SECONDS);
    let mut planned: HashMap<String, DateTime<Utc>> = HashMap::new();
    for n in 0..args.posts {
        let at = start + TimeDelta::milliseconds(n as i64 * args.window * 1000 / args.posts as i64);
        let cluster = send(
            client
                .post(format!("{api}/social/posts"))
                .bearer_auth(&key)
                .json(&json!({"content": format!("Post {n}"), "account_ids": [accounts[n % accounts.len()]]})),
        )
        .await?;
        let id = cluster["id"].as_str().context("a cluster id")?;
        let scheduled = send(
            client
                .post(format!("{api}/social/clusters/{id}/schedule"))
                .bearer_auth(&key)
                .json(&json!({"scheduled_at": at.to_rfc3339()})),
        )
        .await?;
        let post = scheduled["posts"][0]["id"].as_str().context("a post id")?.to_owned();
        planned.insert(post, at);
    }
    let scheduled_by = Utc::now();
    if scheduled_by > start {
        eprintln!("social-load: scheduling took past the first post's time ({scheduled_by} > {start})");
    }

    let end = start + TimeDelta::seconds(args.window);
    let mut killed_at = None;
    if args.kill {
        let half = start + TimeDelta::seconds(args.window / 2);
        tokio::time::sleep((half - Utc::now()).to_std().unwrap_or_default()).await;
        server.kill()?;
        killed_at = Some(Utc::now());
        server = args.server.start(port)?;
        wait_ready(&client, &server.base).await?;
    }
    let deadline = end + TimeDelta::seconds(GRACE_SECONDS);
    let mut posts = Vec::new();
    while Utc::now() < deadline {
        tokio::time::sleep(Duration::from_secs(5)).await;
        if Utc::now() < end {
            continue;
        }
        posts = all(&client, &format!("{api}/social/posts"), &key).await?;
        let published = posts.iter().filter(|p| p["status"] == "published").count();
        if published >= planned.len() {
            break;
        }
    }
    let events = all(&client, &format!("{api}/events?types=social_post.published"), &key)
        .await
        .unwrap_or_default();
    let mut per_post: HashMap<String, u32> = HashMap::new();
    for event in &events {
        if let Some(id) = event["resource"]["id"].as_str() {
            *per_post.entry(id.to_owned()).or_default() += 1;
        }
    }
    let mut lateness = Vec::new();
    let mut missed = 0;
    for post in &posts {
        let id = post["id"].as_str().unwrap_or_default();
        let Some(at) = planned.get(id) else { continue };
        match (post["status"].as_str(), time(&post["published_at"])) {
            (Some("published"), Some(published)) => {
                lateness.push((published - *at).num_milliseconds() as f64);
            }
            _ => missed += 1,
        }
    }
    missed += planned.len().saturating_sub(posts.len());
    lateness.sort_by(f64::total_cmp);
    let _ = server.kill();
    println!(
        "{}",
        json!({
            "posts": planned.len(),
            "accounts": accounts.len(),
            "window_s": args.window,
            "killed": args.kill,
            "published": lateness.len(),
            "missed": missed,
            "published_events": events.len(),
            "duplicates": per_post.values().filter(|n| **n > 1).count(),
            "lateness_p50_ms": percentile(&lateness, 50.0),
            "lateness_p99_ms": percentile(&lateness, 99.0),
            "lateness_max_ms": lateness.last().copied().unwrap_or(f64::NAN),
            "within_2s": lateness.iter().filter(|ms| **ms <= 2000.0).count(),
            "killed_at": killed_at.map(|t| t.to_rfc3339()),
        })
    );
    Ok(())
}
