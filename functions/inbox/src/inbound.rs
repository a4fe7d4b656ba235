//! Inbound messages. A provider posts each one to `POST /hooks/messaging/{connection_id}`,
//! signed with the connection's secret; the owner injects one through the account API.
//! Both reach [`accept`], which threads it in the request's own transaction: the contact
//! (found through the contacts' phone or email index, or created), the open thread (found
//! through its claim, or opened), the message, the thread's counters, an opt-out or opt-in,
//! and their events commit together or not at all.
//!
//! In the request rather than on the worker: the provider is answered only once the
//! message is stored (its own retries cover a failure), the answer can name the thread,
//! and the message reaches `message.received` without waiting for a worker pass. Two
//! messages from a new sender racing each other both try to claim the open thread; the
//! loser's transaction fails on the claim and its retry finds the winner's contact and
//! thread.

use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use rand::Rng as _;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use space_connections::{self as connections, Addressing, Channel, MESSAGING};
use space_http::events::event_write;
use space_http::fields::format_datetime;
use space_http::ids::{has_shape, new_id};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, RawBody, Reply, handler};
use space_http::resource::Resource;
use space_http::rest::parse_json;
use space_http::{ApiError, FieldErrors, Operation};
use space_store::{Condition, Item, StoreError, Write};

use crate::messages::{self, MESSAGES};
use crate::threads::{self, text};

/// The longest inbound text kept.
pub const MAX_TEXT: usize = 4_096;
/// The most media an inbound message reports.
pub const MAX_MEDIA: usize = 10;
/// A provider's callback body, whole.
const MAX_HOOK_BYTES: usize = 64 * 1024;
/// Callbacks per minute from one address: a provider posts every channel's traffic from a
/// few addresses, 1,000 a second at a busy time; the limit only stops a flood.
const HOOK_PER_MINUTE: u32 = 120_000;
/// Attempts at threading a message when other messages race it for the same thread.
const ATTEMPTS: usize = 10;
/// Exact messages (any case, trimmed) that opt a contact out of a channel, and back in.
pub const OPT_OUT: &[&str] = &[
    "STOP",
    "UNSUBSCRIBE",
    "END",
    "QUIT",
    "STOPALL",
    "REVOKE",
    "OPTOUT",
    "CANCEL",
];
pub const OPT_IN: &[&str] = &["START", "YES", "UNSTOP"];
/// Where a contact's consent per channel is kept, `<contact id>#<channel>`.
pub use space_connections::messaging::{consent_key, opted_out};
/// Where a sender on a channel without phone or email (Instagram, Messenger) is mapped to
/// its contact, `<connection id>#<handle>`.
const SENDERS: &str = "inbox_senders";

/// What an inbound message says, checked.
struct Inbound {
    /// The provider's id for the message, when it sends one: a repeat is received once.
    provider_id: Option<String>,
    from: String,
    text: String,
    media: Vec<Value>,
}

/// The longest provider's message id taken.
pub const MAX_PROVIDER_ID: usize = 200;
/// How long a provider's message id is remembered, to receive a repeat once.
const RECEIVED_FOR_SECONDS: i64 = 7 * 24 * 3600;
/// Where a received provider's message id names its message, `<connection id>#<id>`.
const RECEIVED: &str = "inbox_received";

fn parse(channel: Channel, body: &Value) -> Result<Inbound, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "body",
            "must be a JSON object with from, text and media",
        ));
    };
    let mut errors = FieldErrors::new();
    for extra in object
        .keys()
        .filter(|k| !matches!(k.as_str(), "id" | "from" | "text" | "media"))
    {
        errors.insert(
            extra.clone(),
            vec!["is not accepted; send id, from, text and media".into()],
        );
    }
    let provider_id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() && id.chars().count() <= MAX_PROVIDER_ID => Some(id.clone()),
        Some(_) => {
            errors.insert(
                "id".into(),
                vec![format!("must be a string of 1 to {MAX_PROVIDER_ID} characters")],
            );
            None
        }
    };
    let from = match object.get("from").and_then(Value::as_str) {
        Some(from) => match channel.address(from) {
            Ok(from) => from,
            Err(message) => {
                errors.insert(
                    "from".into(),
                    vec![format!("{message} (a {} address)", channel.as_str())],
                );
                String::new()
            }
        },
        None => {
            errors.insert("from".into(), vec!["The from field is required.".into()]);
            String::new()
        }
    };
    let text = match object.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) if text.chars().count() <= MAX_TEXT => text.clone(),
        Some(_) => {
            errors.insert(
                "text".into(),
                vec![format!("must be a string of at most {MAX_TEXT} characters")],
            );
            String::new()
        }
    };
    let media = match object.get("media") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.len() <= MAX_MEDIA && list.iter().all(Value::is_object) => list.clone(),
        Some(_) => {
            errors.insert(
                "media".into(),
                vec![format!("must be a list of at most {MAX_MEDIA} objects")],
            );
            Vec::new()
        }
    };
    if text.trim().is_empty() && media.is_empty() && !errors.contains_key("text") {
        errors.insert("text".into(), vec!["A message needs text or media.".into()]);
    }
    if errors.is_empty() {
        Ok(Inbound {
            provider_id,
            from,
            text,
            media,
        })
    } else {
        Err(ApiError::validation(errors))
    }
}

/// What `text` asks of the contact's consent: `Some(true)` opts out, `Some(false)` in.
pub fn consent_keyword(text: &str) -> Option<bool> {
    let word = text.trim().to_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(true)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// Whether a contact holding phone number `number` (E.164) opted out of `channel`: what
/// a message to a number, not to a thread, is checked against (the phone family's SMS).
pub async fn number_opted_out(call: &Call, number: &str, channel: Channel) -> Result<bool, ApiError> {
    let space = call.space_id()?.to_owned();
    let holders = contacts::contacts()
        .find_by_lookup(call, "phone", number, NUMBER_HOLDERS)
        .await?;
    for contact in holders {
        if opted_out(&call.engine, &space, &contact, channel.as_str()).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The most contacts sharing one number that an opt-out check reads.
const NUMBER_HOLDERS: usize = 20;

pub fn received_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "message": messages::schema(),
            "thread": threads::schema(),
            "contact_id": {"type": "string"},
            "opted_out": {"type": ["boolean", "null"], "description": "Set when the message was an opt-out (true) or opt-in (false) keyword."}
        },
        "required": ["message", "thread", "contact_id"]
    })
}

/// Receives an inbound message on messaging connection `connection` of the call's Space:
/// the account API's injection and the signed hook both end here.
pub async fn accept(call: &Call, connection: &Item, body: &Value) -> Result<Value, ApiError> {
    let channel = match (text(connection, "kind"), connections::channel(connection)) {
        (Some(MESSAGING), Some(channel)) => channel,
        _ => {
            return Err(ApiError::Conflict(
                "This connection is not a messaging channel: it takes no inbound messages.".into(),
            ));
        }
    };
    let inbound = parse(channel, body)?;
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        match receive(call, connection, channel, &inbound).await {
            Ok(received) => return Ok(received),
            Err(Attempt::Raced(error)) => last = Some(error),
            Err(Attempt::Failed(error)) => return Err(error),
        }
        pause(attempt).await;
    }
    Err(last
        .map(ApiError::from)
        .unwrap_or_else(|| ApiError::Conflict("Retry the message.".into())))
}

/// A short pause, random and growing with each attempt, so that messages racing for one
/// thread (a busy sender) spread out instead of colliding again.
async fn pause(attempt: usize) {
    let most = 5 * (attempt as u64 + 1);
    let millis = rand::rng().random_range(0..=most);
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

/// How one attempt ended short of success.
enum Attempt {
    /// Another writer touched the same thread or claim: read again and retry.
    Raced(StoreError),
    Failed(ApiError),
}

impl From<ApiError> for Attempt {
    fn from(error: ApiError) -> Attempt {
        Attempt::Failed(error)
    }
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Attempt {
        Attempt::Failed(error.into())
    }
}

/// The contact `from` is, through the contacts' index (phone, email) or the senders' map
/// (handles): its id, or `None` when there is none yet.
async fn find_contact(call: &Call, channel_id: &str, channel: Channel, from: &str) -> Result<Option<String>, ApiError> {
    let contacts = contacts::contacts();
    match channel.addressing() {
        Addressing::Phone => Ok(contacts
            .find_by_lookup(call, "phone", from, 1)
            .await?
            .into_iter()
            .next()),
        Addressing::Email => contacts.find_unique(call, "email", from).await,
        Addressing::Handle => {
            let space = call.space_id()?;
            let key = keys::unique(space, SENDERS, &format!("{channel_id}#{from}"));
            Ok(call
                .engine
                .store()
                .get(&key.pk, &key.sk)
                .await?
                .and_then(|item| text(&item, "id").map(str::to_owned)))
        }
    }
}

/// The contact to create for a new sender, with the writes that create it.
fn new_contact(call: &Call, channel_id: &str, channel: Channel, from: &str) -> Result<(String, Vec<Write>), ApiError> {
    let field = match channel.addressing() {
        Addressing::Phone => "phone",
        Addressing::Email => "email",
        Addressing::Handle => "name",
    };
    let (item, mut writes) = contacts::contacts()
        .prepare_create(call, &json!({ field: from }))
        .map_err(ApiError::validation)?;
    if channel.addressing() == Addressing::Handle {
        let key = keys::unique(call.space_id()?, SENDERS, &format!("{channel_id}#{from}"));
        let mut body = Map::new();
        body.insert("id".into(), json!(item.sk));
        writes.push(Write::put(Item::new(key.pk, key.sk, body), Condition::None));
    }
    Ok((item.sk, writes))
}

async fn receive(call: &Call, connection: &Item, channel: Channel, inbound: &Inbound) -> Result<Value, Attempt> {
    let space = call.space_id()?.to_owned();
    let engine = &call.engine;
    let now = engine.now();
    let at = format_datetime(now);
    let channel_id = connection.sk.clone();
    let mut writes = Vec::new();
    // The provider's id, remembered with the message it made (a repeat finds it).
    let mut remembered = None;
    if let Some(provider_id) = &inbound.provider_id {
        let seen = keys::unique(&space, RECEIVED, &format!("{channel_id}#{provider_id}"));
        let earlier = engine.store().get(&seen.pk, &seen.sk).await?;
        if let Some(earlier) = &earlier
            && let Some(answer) = received_before(engine, &space, earlier).await?
        {
            return Ok(answer);
        }
        let condition = earlier.map_or(Condition::NotExists, |earlier| Condition::Version(earlier.version));
        remembered = Some((seen, condition));
    }
    let claim = threads::open_claim(&space, &channel_id, &inbound.from);
    let claimed = engine.store().get(&claim.pk, &claim.sk).await?;
    let open = match claimed.as_ref().and_then(|claim| text(claim, "id")) {
        Some(id) => threads::get(engine, &space, id).await?,
        None => None,
    };
    let (current, mut thread) = match open {
        Some(thread) => (Some(thread.clone()), thread),
        None => {
            let contact_id = match find_contact(call, &channel_id, channel, &inbound.from).await? {
                Some(id) => id,
                None => {
                    let (id, contact_writes) = new_contact(call, &channel_id, channel, &inbound.from)?;
                    writes.extend(contact_writes);
                    id
                }
            };
            let id = new_id("thr");
            let mut body = Map::new();
            body.insert("id".into(), json!(id));
            body.insert("status".into(), json!("open"));
            body.insert("contact_id".into(), json!(contact_id));
            body.insert("channel_id".into(), json!(channel_id));
            body.insert("channel".into(), json!(channel.as_str()));
            body.insert("address".into(), json!(inbound.from));
            body.insert("tags".into(), json!([]));
            body.insert("inbound_count".into(), json!(0));
            body.insert("outbound_count".into(), json!(0));
            body.insert("created_at".into(), json!(at));
            let thread = Item::new(threads::partition(&space), id, body);
            match claimed {
                // A claim whose thread is gone holds nothing: the new thread takes it over.
                Some(stale) => {
                    let mut body = Map::new();
                    body.insert("id".into(), json!(thread.sk));
                    let next = Item::new(stale.pk.clone(), stale.sk.clone(), body).with_version(stale.version + 1);
                    writes.push(Write::put(next, Condition::Version(stale.version)));
                }
                None => writes.push(threads::claim_write(&space, &thread)),
            }
            (None, thread)
        }
    };
    let contact_id = text(&thread, "contact_id").unwrap_or_default().to_owned();
    let message_id = new_id("msg");
    let mut message = Map::new();
    message.insert("id".into(), json!(message_id));
    message.insert("thread_id".into(), json!(thread.sk));
    message.insert("contact_id".into(), json!(contact_id));
    message.insert("channel_id".into(), json!(channel_id));
    message.insert("channel".into(), json!(channel.as_str()));
    message.insert("direction".into(), json!("inbound"));
    message.insert("status".into(), json!("received"));
    message.insert("from".into(), json!(inbound.from));
    message.insert(
        "to".into(),
        connection.body.get("address").cloned().unwrap_or(Value::Null),
    );
    message.insert("text".into(), json!(inbound.text));
    message.insert("media".into(), json!(inbound.media));
    if let Some(provider_id) = &inbound.provider_id {
        message.insert("provider_message_id".into(), json!(provider_id));
    }
    message.insert("created_at".into(), json!(at));
    message.insert("updated_at".into(), json!(at));
    let message = Item::new(
        keys::child_partition(&space, MESSAGES, &thread.sk),
        message_id.clone(),
        message,
    );

    let inbound_count = thread.body.get("inbound_count").and_then(Value::as_u64).unwrap_or(0);
    thread.body.insert("inbound_count".into(), json!(inbound_count + 1));
    thread.body.insert("last_inbound_at".into(), json!(at));
    thread.body.insert("last_message_at".into(), json!(at));
    thread.body.insert("updated_at".into(), json!(at));
    threads::set_preview(&mut thread, &inbound.text);
    if threads::status(&thread) == "snoozed" {
        // A contact who writes again wakes the thread; the snooze's job goes with it.
        writes.extend(threads::withdraw_snooze(&thread));
        thread.body.insert("status".into(), json!("open"));
        thread.body.remove("snooze");
        thread.body.remove("snoozed_until");
    }
    writes.extend(threads::index_writes(&space, current.as_ref(), &thread));
    match &current {
        Some(current) => {
            thread.version = current.version + 1;
            writes.push(Write::put(thread.clone(), Condition::Version(current.version)));
            writes.push(space_http::events::update_event_write(
                &space,
                "thread.updated",
                &thread.sk,
                &Resource::render(current),
                Resource::render(&thread),
                &call.principal,
                now,
            ));
        }
        None => {
            writes.push(Write::put(thread.clone(), Condition::NotExists));
            writes.push(event_write(
                &space,
                "thread.created",
                &thread.sk,
                Resource::render(&thread),
                &call.principal,
                now,
            ));
        }
    }
    if let Some((seen, condition)) = remembered {
        let mut made = Map::new();
        made.insert("message_id".into(), json!(message.sk));
        made.insert("thread_id".into(), json!(thread.sk));
        let item = Item::new(seen.pk, seen.sk, made).expiring_at(now.timestamp() + RECEIVED_FOR_SECONDS);
        writes.push(Write::put(item, condition));
    }
    writes.push(Write::put(message.clone(), Condition::NotExists));
    writes.push(event_write(
        &space,
        "message.received",
        &message_id,
        Resource::render(&message),
        &call.principal,
        now,
    ));
    let consent = consent_keyword(&inbound.text);
    if let Some(out) = consent {
        let key = consent_key(&space, &contact_id, channel.as_str());
        let mut body = Map::new();
        body.insert("contact_id".into(), json!(contact_id));
        body.insert("channel".into(), json!(channel.as_str()));
        body.insert("opted_out".into(), json!(out));
        body.insert("message_id".into(), json!(message_id));
        body.insert("updated_at".into(), json!(at));
        let data = Value::Object(body.clone());
        writes.push(Write::put(Item::new(key.pk, key.sk, body), Condition::None));
        writes.push(event_write(
            &space,
            if out { "contact.opted_out" } else { "contact.opted_in" },
            &contact_id,
            data,
            &call.principal,
            now,
        ));
    }
    match engine.store().transact(writes).await {
        Ok(()) => Ok(json!({
            "message": Resource::render(&message),
            "thread": Resource::render(&thread),
            "contact_id": contact_id,
            "opted_out": consent,
        })),
        Err(
            error @ (StoreError::TransactionConflict { .. } | StoreError::Contention | StoreError::ConditionFailed),
        ) => Err(Attempt::Raced(error)),
        Err(error) => Err(error.into()),
    }
}

/// The answer a repeated provider's message gets: the first one's, as its message and
/// thread are now; `None` when they are gone (it is then received again).
async fn received_before(engine: &space_http::Engine, space: &str, seen: &Item) -> Result<Option<Value>, ApiError> {
    let (Some(message_id), Some(thread_id)) = (text(seen, "message_id"), text(seen, "thread_id")) else {
        return Ok(None);
    };
    let partition = keys::child_partition(space, MESSAGES, thread_id);
    let Some(message) = engine.store().get(&partition, message_id).await? else {
        return Ok(None);
    };
    let Some(thread) = threads::get(engine, space, thread_id).await? else {
        return Ok(None);
    };
    let consent = consent_keyword(text(&message, "text").unwrap_or_default());
    Ok(Some(json!({
        "message": Resource::render(&message),
        "thread": Resource::render(&thread),
        "contact_id": text(&thread, "contact_id"),
        "opted_out": consent,
    })))
}

/// `POST /hooks/messaging/{connection_id}`: a provider's callback.
pub fn hook() -> Operation {
    Operation::new(
        "inbox_hook",
        Method::POST,
        "/hooks/messaging/{connection_id}",
        Access::Public {
            per_minute: HOOK_PER_MINUTE,
        },
        Effect::Create,
        "A messaging provider's inbound message, signed with the connection's secret",
        handler(|call| async move { receive_hook(call).await }),
    )
    .with_description(
        "`X-Space-Signature: t=<unix seconds>,sha256=<hex>` carries the HMAC-SHA256 of `<unix seconds>.<raw body>` \
         keyed with the connection's signing secret (shown once, when the owner created the connection). A missing \
         or wrong signature, or a time more than five minutes from the server's, is 401 and changes nothing; an \
         address that sends 20 wrong ones in a minute is refused (429) until the minute ends. A \
         callback repeated with the same `id` (the provider's retry) is answered with the first one's message and \
         stores nothing again.",
    )
    .with_params(vec![Param::path("connection_id", "The messaging connection's id.")])
    .with_body(|| {
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": MAX_PROVIDER_ID, "description": "The provider's id for the message: a repeat with the same id within a week stores nothing again."},
                "from": {"type": "string", "minLength": 1, "maxLength": 254},
                "text": {"type": "string", "maxLength": MAX_TEXT},
                "media": {"type": "array", "maxItems": MAX_MEDIA, "items": {"type": "object"}}
            },
            "required": ["from"],
            "additionalProperties": false
        })
    })
    .answers(StatusCode::OK, received_schema)
    .with_raw_body(Some(MAX_HOOK_BYTES))
}

fn unsigned() -> ApiError {
    ApiError::Unauthenticated(
        "The callback's X-Space-Signature is missing, does not match its body or is more than five minutes from now: \
         sign `<unix time>.<body>` with the connection's secret and send `t=<unix time>,sha256=<hex>`."
            .into(),
    )
}

/// 401 for a bad signature, counted against the address's failed-authentication budget
/// (429 once it is spent).
async fn bad_signature(call: &Call) -> ApiError {
    space_http::auth::failed_signature(&call.engine, call.client.as_deref(), unsigned()).await
}

async fn receive_hook(call: Call) -> Result<Reply, ApiError> {
    // An address that keeps sending bad signatures is refused before any secret is read,
    // as one that keeps sending bad keys is.
    if let Some(refused) = space_http::auth::refused_address(&call.engine, call.client.as_deref()) {
        return Err(refused);
    }
    // No signature costs nothing to refuse; a wrong one is counted (it may cost a fresh
    // read of the secret).
    let signature = call.signature.clone().ok_or_else(unsigned)?;
    let id = call.path_param("connection_id")?.to_owned();
    let missing = || ApiError::NotFound(format!("No messaging connection with id `{id}`."));
    if !has_shape(&id, connections::ID_PREFIX) {
        return Err(missing());
    }
    let pointer = keys::public_pointer(connections::HOOK_POINTER, &id);
    let pointer = call
        .engine
        .store()
        .get(&pointer.pk, &pointer.sk)
        .await?
        .ok_or_else(missing)?;
    let space = text(&pointer, "space_id").ok_or_else(missing)?.to_owned();
    let mut call = call;
    space_http::public::enter_space(&mut call, &space, missing).await?;
    let connection = connections::get(&call.engine, &space, &id).await?.ok_or_else(missing)?;
    let keys = call.engine.signing_keys().ok_or_else(|| ApiError::Unavailable {
        message: "Signing keys are not configured on this server.".into(),
        retry_after: 60,
    })?;
    let name = connections::secret_name(&id);
    let Some(secret) = keys.get_key(&space, &name).await? else {
        return Err(bad_signature(&call).await);
    };
    let raw = call.raw.clone().unwrap_or(RawBody {
        content_type: String::new(),
        bytes: Default::default(),
    });
    let now = call.engine.now().timestamp();
    if !verify(&secret, &raw.bytes, &signature, now) {
        // The remembered secret may predate a rotation served by another process.
        let fresh = keys.get_key_fresh(&space, &name).await?;
        if fresh.is_none_or(|fresh| fresh == secret || !verify(&fresh, &raw.bytes, &signature, now)) {
            return Err(bad_signature(&call).await);
        }
    }
    let body = parse_json(&raw)?;
    let received = accept(&call, &connection, &body).await?;
    Ok(Reply::ok(received))
}

/// How far a callback's signed time may be from the server's: a body and signature
/// captured in transit and sent again later is refused.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// Whether `header` (`t=<unix seconds>,sha256=<hex>`) is the HMAC-SHA256 of
/// `<t>.<body>` keyed with `secret`, compared in constant time, with `t` within
/// [`SIGNATURE_TOLERANCE_SECONDS`] of `now` (unix seconds).
pub fn verify(secret: &str, body: &[u8], header: &str, now: i64) -> bool {
    let mut timestamp = None;
    let mut sent = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("sha256", value)) => sent = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(sent)) = (timestamp, sent) else {
        return false;
    };
    if (now - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&sent).is_ok()
}

/// The `t=<unix seconds>,sha256=<hex>` header a provider sends for `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("t={timestamp},sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_exact_in_any_case() {
        assert_eq!(consent_keyword(" stop "), Some(true));
        assert_eq!(consent_keyword("StopAll"), Some(true));
        assert_eq!(consent_keyword("unstop"), Some(false));
        assert_eq!(consent_keyword("please stop"), None);
        assert_eq!(consent_keyword("STOP!"), None);
    }

    #[test]
    fn a_signature_matches_its_body_secret_and_time_only() {
        let body = b"{\"from\":\"+12015550123\"}";
        let now = 1_765_000_000;
        let header = sign("mss_secret", now, body);
        assert!(verify("mss_secret", body, &header, now));
        assert!(verify("mss_secret", body, &header, now + SIGNATURE_TOLERANCE_SECONDS));
        assert!(!verify(
            "mss_secret",
            body,
            &header,
            now + SIGNATURE_TOLERANCE_SECONDS + 1
        ));
        assert!(!verify(
            "mss_secret",
            body,
            &header,
            now - SIGNATURE_TOLERANCE_SECONDS - 1
        ));
        assert!(!verify("mss_other", body, &header, now));
        assert!(!verify("mss_secret", b"{\"from\":\"+12015550124\"}", &header, now));
        let moved = header.replacen(&format!("t={now}"), &format!("t={}", now + 1), 1);
        assert!(!verify("mss_secret", body, &moved, now), "the time is signed");
        let bare = header.split_once(',').map(|(_, mac)| mac).unwrap_or_default();
        assert!(!verify("mss_secret", body, bare, now), "a signature without its time");
        assert!(!verify("mss_secret", b"{}", "t=1,sha256=zz", 1));
        assert!(!verify("mss_secret", b"{}", "", now));
    }
}
