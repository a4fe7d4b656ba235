//! Who publishes to the networks. One implementation per provider; `sandbox` (the default
//! locally and in tests) keeps what it "published", with a network id and URL, and fails
//! the next publishes when the owner tells it to (`POST …/connections/{id}/sandbox`).

use async_trait::async_trait;
use serde_json::{Value, json};
use space_connections::{self as connections, Network, SANDBOX};
use space_http::Engine;
use space_http::fields::format_datetime;
use space_http::keys;
use space_store::{Condition, Item, StoreError, Write};

/// What the network answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub network_post_id: String,
    pub network_url: String,
    pub published_at: String,
}

/// Why it did not publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// Worth another try later (the network is down, rate limited).
    #[error("{0}")]
    Transient(String),
    /// Never worth another try (the network refused the post).
    #[error("{code}: {message}")]
    Permanent { code: String, message: String },
}

impl From<StoreError> for PublishError {
    fn from(error: StoreError) -> PublishError {
        PublishError::Transient(error.to_string())
    }
}

/// Publishes posts through one kind of provider. Asked twice for the same post (a run
/// that died after the network answered), it must not publish twice.
#[async_trait]
pub trait Provider: Send + Sync {
    async fn publish(
        &self,
        engine: &Engine,
        space: &str,
        account: &Item,
        post: &Item,
    ) -> Result<Published, PublishError>;
}

/// The provider of `account`'s connection.
pub fn provider_for(account: &Item) -> &'static dyn Provider {
    match account.body.get("provider").and_then(Value::as_str) {
        // The only provider so far; the match is where real ones join.
        Some("sandbox") | None | Some(_) => &Sandbox,
    }
}

/// Records publications in the Space (one item per post) instead of reaching a network.
pub struct Sandbox;

/// Where the sandbox keeps what it published.
pub const PUBLICATIONS: &str = "sandbox_publications";

impl Sandbox {
    /// Takes one of the failures the owner ordered, if any is left.
    async fn ordered_failure(&self, engine: &Engine, account: &Item) -> Result<Option<PublishError>, StoreError> {
        let mut account = account.clone();
        for _ in 0..5 {
            let orders = account.body.get(SANDBOX).cloned().unwrap_or(Value::Null);
            let left = orders.get("fail_next").and_then(Value::as_u64).unwrap_or(0);
            if left == 0 {
                return Ok(None);
            }
            let permanent = orders.get("failure").and_then(Value::as_str) == Some("permanent");
            let mut next = account.clone();
            next.body.insert(
                SANDBOX.into(),
                json!({"fail_next": left - 1, "failure": orders.get("failure")}),
            );
            next.version += 1;
            match engine
                .store()
                .transact(vec![Write::put(next, Condition::Version(account.version))])
                .await
            {
                Ok(()) => {
                    return Ok(Some(if permanent {
                        PublishError::Permanent {
                            code: "REJECTED".into(),
                            message: "The network refused the post (sandbox: told to fail).".into(),
                        }
                    } else {
                        PublishError::Transient("The network is unavailable (sandbox: told to fail).".into())
                    }));
                }
                Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
                    let space_and_id = (account.pk.clone(), account.sk.clone());
                    match engine.store().get(&space_and_id.0, &space_and_id.1).await? {
                        Some(fresh) => account = fresh,
                        None => return Ok(None),
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Contention)
    }
}

/// A network id that looks like one and is the same every time for a post.
fn network_id(post_id: &str) -> String {
    let hash = post_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}", hash % 10_000_000_000_000_000_000)
}

fn url(network: Option<Network>, handle: &str, id: &str) -> String {
    match network {
        Some(Network::X) => format!("https://x.com/{handle}/status/{id}"),
        Some(Network::Linkedin) => format!("https://www.linkedin.com/feed/update/urn:li:share:{id}"),
        Some(Network::Instagram) => format!("https://www.instagram.com/p/{id}"),
        Some(Network::Facebook) => format!("https://www.facebook.com/{handle}/posts/{id}"),
        Some(Network::Pinterest) => format!("https://www.pinterest.com/pin/{id}"),
        Some(Network::Tiktok) => format!("https://www.tiktok.com/@{handle}/video/{id}"),
        Some(Network::Threads) => format!("https://www.threads.net/@{handle}/post/{id}"),
        Some(Network::Bluesky) => format!("https://bsky.app/profile/{handle}/post/{id}"),
        Some(Network::Youtube) => format!("https://www.youtube.com/watch?v={id}"),
        None => format!("https://sandbox.invalid/{id}"),
    }
}

#[async_trait]
impl Provider for Sandbox {
    async fn publish(
        &self,
        engine: &Engine,
        space: &str,
        account: &Item,
        post: &Item,
    ) -> Result<Published, PublishError> {
        let key = keys::resource(&keys::collection_partition(space, PUBLICATIONS), &post.sk);
        if let Some(done) = engine.store().get(&key.pk, &key.sk).await? {
            return Ok(published(&done));
        }
        if let Some(failure) = self.ordered_failure(engine, account).await? {
            return Err(failure);
        }
        let id = network_id(&post.sk);
        let handle = account.body.get("handle").and_then(Value::as_str).unwrap_or("sandbox");
        let mut body = serde_json::Map::new();
        body.insert("post_id".into(), json!(post.sk));
        body.insert("account_id".into(), json!(account.sk));
        body.insert("network_post_id".into(), json!(id));
        body.insert(
            "network_url".into(),
            json!(url(connections::network(account), handle, &id)),
        );
        body.insert("published_at".into(), json!(format_datetime(engine.now())));
        body.insert(
            "content".into(),
            post.body.get("content").cloned().unwrap_or(Value::Null),
        );
        let record = Item::new(key.pk.clone(), key.sk.clone(), body);
        match engine
            .store()
            .transact(vec![Write::put(record.clone(), Condition::NotExists)])
            .await
        {
            Ok(()) => Ok(published(&record)),
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
                let done = engine.store().get(&key.pk, &key.sk).await?;
                done.map(|done| published(&done))
                    .ok_or_else(|| PublishError::Transient("the publication record vanished".into()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

fn published(record: &Item) -> Published {
    let text = |field: &str| {
        record
            .body
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Published {
        network_post_id: text("network_post_id"),
        network_url: text("network_url"),
        published_at: text("published_at"),
    }
}

/// What a published post has gathered on its network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metrics {
    pub impressions: u64,
    pub likes: u64,
    pub comments: u64,
    pub shares: u64,
    pub clicks: u64,
}

impl Metrics {
    pub fn to_json(self) -> Value {
        json!({
            "impressions": self.impressions,
            "likes": self.likes,
            "comments": self.comments,
            "shares": self.shares,
            "clicks": self.clicks,
        })
    }

    pub fn add(&mut self, other: Metrics) {
        self.impressions += other.impressions;
        self.likes += other.likes;
        self.comments += other.comments;
        self.shares += other.shares;
        self.clicks += other.clicks;
    }
}

/// The sandbox's figures for a publication: the same for the same post and hour, growing
/// for a week after it was published, so analytics can be tested to the unit.
pub fn sandbox_metrics(post_id: &str, hours_since: i64) -> Metrics {
    let seed = network_id(post_id).parse::<u64>().unwrap_or(0);
    let hours = hours_since.clamp(0, 168) as u64 + 1;
    let impressions = (100 + seed % 400) * hours;
    Metrics {
        impressions,
        likes: impressions * (2 + seed % 5) / 100,
        comments: impressions * (1 + seed % 3) / 1000,
        shares: impressions * (1 + seed % 4) / 500,
        clicks: impressions * (1 + seed % 6) / 200,
    }
}
