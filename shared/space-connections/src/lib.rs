//! Connections: what reaches outside a Space (social accounts, messaging channels, phone
//! numbers, mail senders and ads accounts). The owner
//! creates and removes them through the account API; a space key only uses them.
//!
//! One item per connection in the Space's `connections` collection. This crate owns its
//! shape so the account API that writes it and the families that read it agree, and the
//! rules of the traffic more than one family sends ([`segments`]: SMS length).

pub mod messaging;
pub mod outbound;
pub mod segments;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use space_http::Engine;
use space_http::fields::{CustomKind, FieldKind};
use space_http::keys;
use space_store::{Item, Query, StoreError};
use space_worker::NewJob;

/// The collection every connection of a Space lives in.
pub const COLLECTION: &str = "connections";
/// The id prefix of a connection.
pub const ID_PREFIX: &str = "conn";
/// At most this many connections per Space: lists of them are read whole.
pub const MAX_PER_SPACE: usize = 200;

/// What a connection is for.
pub const KINDS: &[&str] = &["social", "messaging", "phone", "mail", "ads"];
/// The kind of a social account.
pub const SOCIAL: &str = "social";
/// The kind of a messaging channel (the inbox's conversations run over it).
pub const MESSAGING: &str = "messaging";
/// The kind of a phone number of the Space (the phone family sends SMS from it).
pub const PHONE: &str = "phone";
/// The kind of a mail sender of the Space (an address or a whole domain the mail family
/// sends from once it is verified).
pub const MAIL: &str = "mail";
/// The kind of an ads account (the ads family drafts campaigns on it; launching one is the
/// owner's, in the app).
pub const ADS: &str = "ads";
/// The ad networks an ads account can be on.
pub const AD_NETWORKS: &[&str] = &["meta", "google", "linkedin"];
/// Every network a connection may name: the social networks, then the ad networks that are
/// not social ones (`linkedin` is both). A connection's kind decides which it takes.
pub const NETWORKS: &[&str] = &[
    "x",
    "linkedin",
    "instagram",
    "facebook",
    "pinterest",
    "tiktok",
    "threads",
    "bluesky",
    "youtube",
    "meta",
    "google",
];
/// Who carries the traffic: `sandbox` records it and can be told to fail; `aws` (phone
/// numbers only) is AWS End User Messaging SMS; `ses` (mail senders only) is Amazon SES.
pub const PROVIDERS: &[&str] = &["sandbox", "aws", "ses"];
/// The provider of every kind; the others exist for some kinds only.
pub const SANDBOX_PROVIDER: &str = "sandbox";
/// What a phone number can do.
pub const CAPABILITIES: &[&str] = &["sms", "voice"];

/// A BCP 47 language tag (`en`, `en-US`, `pt-BR`): a template's language, and each of the
/// languages a messaging channel sends templates in.
pub const LANGUAGE: FieldKind = FieldKind::Custom(CustomKind {
    schema: language_schema,
    check: check_language,
});

fn language_schema() -> Value {
    json!({"type": "string", "maxLength": 35, "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", "examples": ["en", "en-US", "pt-BR"]})
}

/// A language tag as the schema's pattern says: a primary language of 2 or 3 letters,
/// then subtags of 2 to 8 letters or digits.
fn check_language(value: &Value) -> Result<Value, String> {
    let text = value.as_str().ok_or("must be a string")?;
    let mut parts = text.split('-');
    let primary = parts.next().unwrap_or_default();
    let valid = text.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|part| (2..=8).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if valid {
        Ok(json!(text))
    } else {
        Err("must be a BCP 47 language tag, like en or en-US".into())
    }
}

/// At most this many languages per messaging channel.
pub const MAX_LANGUAGES: usize = 20;

/// A messaging channel's `languages`: 1 to [`MAX_LANGUAGES`] distinct [`LANGUAGE`] tags,
/// in the order given (matched to a template's language without case).
pub fn check_languages(value: &Value) -> Result<Value, String> {
    let list = value
        .as_array()
        .ok_or("must be a list of language tags, like [\"en\", \"de\"]")?;
    if list.is_empty() || list.len() > MAX_LANGUAGES {
        return Err(format!("must list 1 to {MAX_LANGUAGES} languages"));
    }
    let mut seen: Vec<String> = Vec::new();
    for tag in list {
        let tag = check_language(tag)?;
        let tag = tag.as_str().unwrap_or_default().to_owned();
        if seen.contains(&tag) {
            return Err(format!("lists `{tag}` twice"));
        }
        seen.push(tag);
    }
    Ok(json!(seen))
}

pub fn languages_schema() -> Value {
    json!({
        "type": "array",
        "items": language_schema(),
        "minItems": 1,
        "maxItems": MAX_LANGUAGES,
        "uniqueItems": true,
        "examples": [["en", "de"]]
    })
}

/// The languages a messaging channel sends templates in; empty when it names none.
pub fn languages(connection: &Item) -> Vec<&str> {
    connection
        .body
        .get("languages")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a channel sends a template in `language`: any, unless it lists its languages.
pub fn sends_language(connection: &Item, language: &str) -> bool {
    let listed = languages(connection);
    listed.is_empty() || listed.iter().any(|tag| tag.eq_ignore_ascii_case(language))
}

/// The receipt job (`kind`, with `payload`) a provider's `event` asks for: due when the
/// event happened (`at`, never later than `now`), and named after the event
/// (`<family>-receipt-<digest>`), so the same event delivered twice is one job.
pub fn receipt_job(
    kind: &str,
    family: &str,
    event: &Value,
    payload: Value,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> NewJob {
    let digest = Sha256::digest(event.to_string().as_bytes());
    NewJob::new(kind, payload, now)
        .at(at.map_or(now, |at| at.min(now)))
        .named(format!("{family}-receipt-{}", hex::encode(&digest[..16])))
}

/// The capabilities of a phone connection: a non-empty list of [`CAPABILITIES`], each
/// once, in the order given.
pub fn check_capabilities(value: &Value) -> Result<Value, String> {
    let list = value
        .as_array()
        .filter(|list| !list.is_empty() && list.len() <= CAPABILITIES.len() * 4)
        .ok_or_else(|| format!("must be a non-empty list of {}", CAPABILITIES.join(", ")))?;
    let mut kept: Vec<&str> = Vec::new();
    for entry in list {
        match entry.as_str().filter(|name| CAPABILITIES.contains(name)) {
            Some(name) if !kept.contains(&name) => kept.push(name),
            Some(_) => {}
            None => return Err(format!("holds only {}", CAPABILITIES.join(", "))),
        }
    }
    Ok(json!(kept))
}

/// The JSON Schema of [`check_capabilities`]'s list.
pub fn capabilities_schema() -> Value {
    json!({
        "type": "array",
        "items": {"type": "string", "enum": CAPABILITIES},
        "minItems": 1,
        "maxItems": CAPABILITIES.len() * 4,
        "description": "What the number can do: `sms`, `voice` (repeats count once)."
    })
}

/// Whether phone connection `item` has `capability`.
pub fn has_capability(item: &Item, capability: &str) -> bool {
    item.body
        .get("capabilities")
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|c| c.as_str() == Some(capability)))
}

/// A social network an account can be connected on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    X,
    Linkedin,
    Instagram,
    Facebook,
    Pinterest,
    Tiktok,
    Threads,
    Bluesky,
    Youtube,
}

impl Network {
    pub const ALL: &'static [Network] = &[
        Network::X,
        Network::Linkedin,
        Network::Instagram,
        Network::Facebook,
        Network::Pinterest,
        Network::Tiktok,
        Network::Threads,
        Network::Bluesky,
        Network::Youtube,
    ];

    /// The names the API uses.
    pub const NAMES: &'static [&'static str] = &[
        "x",
        "linkedin",
        "instagram",
        "facebook",
        "pinterest",
        "tiktok",
        "threads",
        "bluesky",
        "youtube",
    ];

    pub fn as_str(self) -> &'static str {
        Network::NAMES[self as usize]
    }

    /// How people write its name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Network::X => "X",
            Network::Linkedin => "LinkedIn",
            Network::Instagram => "Instagram",
            Network::Facebook => "Facebook",
            Network::Pinterest => "Pinterest",
            Network::Tiktok => "TikTok",
            Network::Threads => "Threads",
            Network::Bluesky => "Bluesky",
            Network::Youtube => "YouTube",
        }
    }

    pub fn parse(text: &str) -> Option<Network> {
        Network::NAMES
            .iter()
            .position(|name| *name == text)
            .map(|i| Network::ALL[i])
    }
}

/// A messaging channel a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Whatsapp,
    Sms,
    Email,
    Instagram,
    Messenger,
}

/// How a channel addresses people, which decides how an inbound sender is checked and
/// which contact field finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// E.164 phone numbers (the contact's `phone`).
    Phone,
    /// Email addresses (the contact's `email`).
    Email,
    /// The network's own id of a person (no contact field holds it).
    Handle,
}

impl Channel {
    pub const ALL: &'static [Channel] = &[
        Channel::Whatsapp,
        Channel::Sms,
        Channel::Email,
        Channel::Instagram,
        Channel::Messenger,
    ];

    /// The names the API uses.
    pub const NAMES: &'static [&'static str] = &["whatsapp", "sms", "email", "instagram", "messenger"];

    pub fn as_str(self) -> &'static str {
        Channel::NAMES[self as usize]
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::NAMES
            .iter()
            .position(|name| *name == text)
            .map(|i| Channel::ALL[i])
    }

    pub fn addressing(self) -> Addressing {
        match self {
            Channel::Whatsapp | Channel::Sms => Addressing::Phone,
            Channel::Email => Addressing::Email,
            Channel::Instagram | Channel::Messenger => Addressing::Handle,
        }
    }

    /// An address on this channel as stored (E.164, lowercase email, trimmed handle), or
    /// why it is not one.
    pub fn address(self, text: &str) -> Result<String, String> {
        let kind = match self.addressing() {
            Addressing::Phone => FieldKind::Phone,
            Addressing::Email => FieldKind::Email,
            Addressing::Handle => FieldKind::Text { max: 100 },
        };
        match kind.check(&Value::String(text.to_owned()))? {
            Value::String(address) if !address.is_empty() => Ok(address),
            _ => Err("must not be empty".into()),
        }
    }
}

/// The channel of a messaging connection.
pub fn channel(item: &Item) -> Option<Channel> {
    item.body
        .get("channel")
        .and_then(Value::as_str)
        .and_then(Channel::parse)
}

/// The name, in the signing-key store, of the secret a messaging connection's provider
/// signs its callbacks with.
pub fn secret_name(connection_id: &str) -> String {
    format!("messaging-{connection_id}")
}

/// The `kind` of the public pointer (`keys::public_pointer`) that takes a provider's
/// callback (`/hooks/messaging/{connection_id}`) to the connection's Space.
pub const HOOK_POINTER: &str = "messaging-connection";

/// The item key of connection `id`.
pub fn key(space: &str, id: &str) -> keys::ItemKey {
    keys::resource(&keys::collection_partition(space, COLLECTION), id)
}

/// A connection as both APIs show it (the sandbox's settings are the owner's only).
pub fn render(item: &Item) -> Value {
    let mut body: Map<String, Value> = item.body.clone();
    body.remove(SANDBOX);
    body.remove(OWNER_PAUSED);
    body.insert("version".into(), json!(item.version));
    Value::Object(body)
}

/// Set while the Space's owner holds the connection paused (`active: false` through the
/// account API): a space key may pause a social account, never resume one the owner
/// paused.
pub const OWNER_PAUSED: &str = "owner_paused";

/// Whether the Space's owner paused `item` (see [`OWNER_PAUSED`]).
pub fn owner_paused(item: &Item) -> bool {
    item.body.get(OWNER_PAUSED).and_then(Value::as_bool) == Some(true)
}

/// The field holding the sandbox provider's instructions (`fail_next`, `failure`).
pub const SANDBOX: &str = "sandbox";

/// Whether the owner's orders to the sandbox list `address` under `list`
/// (`fail_recipients`, `bounce_recipients`, …) on `connection`.
pub fn sandbox_lists(connection: &Item, list: &str, address: &str) -> bool {
    connection
        .body
        .get(SANDBOX)
        .and_then(|orders| orders.get(list))
        .and_then(Value::as_array)
        .is_some_and(|listed| listed.iter().any(|entry| entry.as_str() == Some(address)))
}

/// Connection `id` of the Space, if there is one.
pub async fn get(engine: &Engine, space: &str, id: &str) -> Result<Option<Item>, StoreError> {
    // Not an id this API issued (a NUL, say, which no store key may hold): no such connection.
    if !space_http::ids::has_shape(id, ID_PREFIX) {
        return Ok(None);
    }
    let key = key(space, id);
    engine.store().get(&key.pk, &key.sk).await
}

/// Every connection of the Space of `kind`, oldest first.
pub async fn list(engine: &Engine, space: &str, kind: &str) -> Result<Vec<Item>, StoreError> {
    let partition = keys::collection_partition(space, COLLECTION);
    let page = engine
        .store()
        .query(Query::partition(&partition).limit(MAX_PER_SPACE))
        .await?;
    Ok(page
        .items
        .into_iter()
        .filter(|item| item.body.get("kind").and_then(Value::as_str) == Some(kind))
        .collect())
}

/// The network of a social connection.
pub fn network(item: &Item) -> Option<Network> {
    item.body
        .get("network")
        .and_then(Value::as_str)
        .and_then(Network::parse)
}

/// Whether the connection takes new work (the space key can pause a social account).
pub fn is_active(item: &Item) -> bool {
    item.body.get("active").and_then(Value::as_bool).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_the_social_and_the_ad_networks_once_each() {
        let mut wanted: Vec<&str> = Network::NAMES.to_vec();
        wanted.extend(AD_NETWORKS.iter().filter(|name| !Network::NAMES.contains(name)));
        assert_eq!(NETWORKS, wanted.as_slice());
    }
}
