//! Connections: the owner links a Space to what lies outside it (social accounts,
//! messaging channels, phone numbers, mail senders, ads accounts). A space key lists and uses them through its family's routes; only
//! the owner's key creates, removes, instructs the sandbox provider, or injects inbound
//! messages.
//!
//! A messaging connection gets a signing secret, shown once at creation and kept in the
//! signing-key store: its provider signs the callbacks it posts to
//! `/hooks/messaging/{connection_id}` with it. The public pointer that leads that route to
//! the Space is written with the connection.

use rand::Rng as _;
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_connections::{
    self as connections, AD_NETWORKS, ADS, Channel, KINDS, MAIL, MAX_PER_SPACE, MESSAGING, NETWORKS, Network, PHONE,
    PROVIDERS, SANDBOX, SANDBOX_PROVIDER,
};
use space_http::events::{event_write, update_event_write};
use space_http::fields::{
    CustomKind, Field, FieldKind, WriteMode, body_schema, format_datetime, normalize_phone, validate,
};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::references;
use space_http::{ApiError, FieldErrors};
use space_store::{Condition, Item, Write};

use crate::spaces;

/// How a sandbox failure presents: `transient` is retried, `permanent` fails the post.
pub const FAILURES: &[&str] = &["transient", "permanent"];

fn fields() -> Vec<Field> {
    vec![
        Field::new("kind", FieldKind::Enum(KINDS), "What the connection is for.").required(),
        Field::new(
            "network",
            FieldKind::Enum(NETWORKS),
            "The network: kind `social` requires a social network (x, linkedin, instagram, facebook, pinterest, tiktok, threads, bluesky, youtube), kind `ads` an ad network (meta, google, linkedin).",
        ),
        Field::new(
            "channel",
            FieldKind::Enum(Channel::NAMES),
            "The messaging channel (kind `messaging`, which requires it).",
        ),
        Field::new(
            "address",
            FieldKind::Text { max: 254 },
            "Kind `messaging` (required): the Space's own address on the channel, an E.164 number for whatsapp and sms, an email address for email. Kind `mail` (required): the address mail goes out from (agent@example.com) or a whole domain (example.com).",
        ),
        Field::new(
            "languages",
            FieldKind::Custom(CustomKind {
                schema: connections::languages_schema,
                check: connections::check_languages,
            }),
            "Kind `messaging`: the languages its approved templates are in (BCP 47, e.g. [\"en\", \"de\"]); a template in another language is refused on it. Absent: any.",
        ),
        Field::new(
            "number",
            FieldKind::Phone,
            "Kind `phone` (required): the Space's phone number, valid in its country's numbering plan; stored as E.164.",
        ),
        Field::new(
            "capabilities",
            FieldKind::Custom(CustomKind {
                schema: connections::capabilities_schema,
                check: connections::check_capabilities,
            }),
            "Kind `phone` (required): what the number can do, `sms` and/or `voice`.",
        ),
        Field::new(
            "name",
            FieldKind::Text { max: 200 },
            "How the Space calls it, e.g. \"Acme on LinkedIn\"; required except for a `mail` sender, which defaults to its address.",
        ),
        Field::new(
            "handle",
            FieldKind::Text { max: 100 },
            "The account's handle on the network.",
        ),
        Field::new(
            "provider",
            FieldKind::Enum(PROVIDERS),
            "Who carries the traffic; `sandbox` records it and can be told to fail; `aws` (AWS End User Messaging SMS) carries a phone number's SMS only; `ses` (Amazon SES) a mail sender's mail only.",
        )
        .default(|| json!("sandbox")),
    ]
}

pub fn request_schema() -> Value {
    body_schema(&fields(), WriteMode::Create)
}

/// What a PATCH may change: how the Space calls it, whether it takes new work, and its
/// kind's settings. What it is (kind, network, channel, address, number, provider) stays:
/// another account is another connection.
const UPDATABLE: &[&str] = &["name", "active", "handle", "languages", "capabilities"];

fn update_fields() -> Vec<Field> {
    let mut fields: Vec<Field> = fields()
        .into_iter()
        .filter(|field| UPDATABLE.contains(&field.name))
        .map(|field| match field.name {
            "name" | "capabilities" => field.required(),
            _ => field,
        })
        .collect();
    fields.push(
        Field::new(
            "active",
            FieldKind::Boolean,
            "Whether it takes new work: an inactive connection takes no new post, send, reply or campaign launch.",
        )
        .required(),
    );
    fields
}

pub fn update_schema() -> Value {
    let mut schema = body_schema(&update_fields(), WriteMode::Patch);
    schema["minProperties"] = json!(1);
    schema
}

/// At most this many recipients a sandbox connection is told to fail.
pub const MAX_FAIL_RECIPIENTS: usize = 50;

pub fn sandbox_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "fail_next": {"type": "integer", "minimum": 0, "maximum": 100, "description": "How many of the next publishes fail."},
            "failure": {"type": "string", "enum": FAILURES, "description": "`transient` failures are retried; `permanent` ones fail the post at once."},
            "fail_recipients": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 254},
                "maxItems": MAX_FAIL_RECIPIENTS,
                "description": "Messaging and phone: every message to these addresses fails (the list replaces the previous one)."
            },
            "undelivered_recipients": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 254},
                "maxItems": MAX_FAIL_RECIPIENTS,
                "description": "Phone: every SMS to these numbers is sent and then reported undelivered by the carrier (the list replaces the previous one)."
            },
            "bounce_recipients": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 254},
                "maxItems": MAX_FAIL_RECIPIENTS,
                "description": "Mail: every message to these addresses is sent and then reported as a hard bounce, which suppresses the address (the list replaces the previous one)."
            },
            "complain_recipients": {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 254},
                "maxItems": MAX_FAIL_RECIPIENTS,
                "description": "Mail: every message to these addresses is delivered and then reported as a spam complaint, which suppresses the address (the list replaces the previous one)."
            }
        },
        "minProperties": 1,
        "additionalProperties": false
    })
}

pub fn inbound_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "from": {"type": "string", "minLength": 1, "maxLength": 254, "description": "The sender's address on the channel (E.164 for whatsapp and sms, an email address for email)."},
            "text": {"type": "string", "maxLength": inbox::inbound::MAX_TEXT},
            "media": {"type": "array", "maxItems": inbox::inbound::MAX_MEDIA, "items": {"type": "object"}, "description": "What the provider reports of attached media (a URL, a type)."}
        },
        "required": ["from"],
        "additionalProperties": false
    })
}

/// A connection as the owner sees it: what a space key sees, and the sandbox's orders.
pub fn schema() -> Value {
    let mut schema = request_schema();
    let properties = schema["properties"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut properties: Map<String, Value> = properties;
    properties.insert("id".into(), json!({"type": "string"}));
    properties.insert(
        "active".into(),
        json!({"type": "boolean", "description": "Whether it takes new work."}),
    );
    properties.insert("created_at".into(), json!({"type": "string", "format": "date-time"}));
    properties.insert("version".into(), json!({"type": "integer"}));
    properties.insert(SANDBOX.into(), sandbox_schema());
    properties.insert(
        "verified".into(),
        json!({"type": "boolean", "description": "Mail: whether mail may go out from the sender (a sandbox sender at once, an SES sender once SES verified it)."}),
    );
    properties.insert(
        "verification_status".into(),
        json!({"type": "string", "description": "Mail: the provider's word on the sender's verification (`success`, `pending`, `failed`, …)."}),
    );
    properties.insert(
        "address_type".into(),
        json!({"type": "string", "enum": ["address", "domain"], "description": "Mail: whether the sender is one address or a whole domain."}),
    );
    properties.insert(
        "signing_secret".into(),
        json!({"type": "string", "readOnly": true, "description": "Messaging: the secret the provider signs its callbacks with (HMAC-SHA256 of `<unix time>.<body>`, hex, in `X-Space-Signature: t=<unix time>,sha256=…`), shown only when the connection is created."}),
    );
    json!({
        "type": "object",
        "properties": properties,
        "required": ["id", "kind", "name", "provider", "active", "created_at", "version"]
    })
}

fn owner_view(item: &Item) -> Value {
    let mut body = item.body.clone();
    // The owner reads its pause as `active: false`.
    body.remove(connections::OWNER_PAUSED);
    body.insert("version".into(), json!(item.version));
    Value::Object(body)
}

async fn owned(call: &Call) -> Result<(String, Item), ApiError> {
    let space = call.path_param("space")?.to_owned();
    spaces::load(&call.engine, &call.principal.account_id, &space).await?;
    let id = call.path_param("connection")?;
    let item = connections::get(&call.engine, &space, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection", id))?;
    Ok((space, item))
}

pub fn create_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        let mut validated = validate(&fields(), &call.body, WriteMode::Create).map_err(ApiError::validation)?;
        check_kind(&mut validated.set)?;
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let mut existing = 0;
        for kind in KINDS {
            existing += connections::list(&call.engine, &space, kind).await?.len();
        }
        if existing >= MAX_PER_SPACE {
            return Err(ApiError::Conflict(format!(
                "A Space holds at most {MAX_PER_SPACE} connections; remove one first."
            )));
        }
        let id = new_id(connections::ID_PREFIX);
        let mut body = validated.set;
        let mut provider_writes = Vec::new();
        if body.get("kind").and_then(Value::as_str) == Some(MAIL) {
            let job = mail::senders::prepare(&space, &id, &mut body, call.engine.now())
                .map_err(|error| ApiError::invalid_field("address", error.to_string()))?;
            if let Some(job) = job {
                let address = body.get("address").and_then(Value::as_str).unwrap_or_default();
                provider_writes = vec![
                    mail::senders::claim_ses_domain(&call.engine, &space, address).await?,
                    job,
                ];
            }
        }
        body.insert("id".into(), json!(id));
        body.insert("active".into(), json!(true));
        body.insert("created_at".into(), json!(format_datetime(call.engine.now())));
        let key = connections::key(&space, &id);
        let item = Item::new(key.pk, key.sk, body);
        provider_writes.extend(phone::numbers::claim_aws_number(&call.engine, &space, &item).await?);
        let event = event_write(
            &space,
            "connection.created",
            &id,
            connections::render(&item),
            &call.principal,
            call.engine.now(),
        );
        let mut shown = owner_view(&item);
        let mut writes = vec![Write::put(item.clone(), Condition::NotExists), event];
        writes.extend(provider_writes);
        if connections::channel(&item).is_some() {
            let secret = new_signing_secret();
            let keys = signing_keys(&call)?;
            keys.put_key(&space, &connections::secret_name(&id), &secret).await?;
            let mut pointer = Map::new();
            pointer.insert("space_id".into(), json!(space));
            let at = keys::public_pointer(connections::HOOK_POINTER, &id);
            writes.extend(references::put(
                &space,
                Item::new(at.pk, at.sk, pointer),
                Condition::NotExists,
            ));
            shown["signing_secret"] = json!(secret);
            if let Err(error) = call.engine.store().transact(writes).await {
                let _ = keys.delete_key(&space, &connections::secret_name(&id)).await;
                return Err(error.into());
            }
            return Ok(Reply::created(shown));
        }
        call.engine.store().transact(writes).await?;
        Ok(Reply::created(shown))
    })
}

/// What each kind needs beyond the common fields: a social account its social network, an
/// ads account its ad network, a messaging channel its channel and the Space's address on
/// it (normalized here), a phone number its number and capabilities, a mail sender its
/// address (an email address or a domain). Only a phone number may go through `aws`, only
/// a mail sender through `ses`.
fn check_kind(set: &mut Map<String, Value>) -> Result<(), ApiError> {
    let mut errors = FieldErrors::new();
    let kind = set.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
    let (needed, foreign): (&[&str], &[&str]) = match kind.as_str() {
        MESSAGING => (
            &["channel", "address"],
            &["network", "handle", "number", "capabilities"],
        ),
        PHONE => (
            &["number", "capabilities"],
            &["network", "handle", "channel", "address", "languages"],
        ),
        MAIL => (
            &["address"],
            &["network", "handle", "channel", "number", "capabilities", "languages"],
        ),
        ADS => (
            &["network"],
            &["handle", "channel", "address", "number", "capabilities", "languages"],
        ),
        _ => (
            &["network"],
            &["channel", "address", "number", "capabilities", "languages"],
        ),
    };
    let networks: Option<(&[&str], &str)> = match kind.as_str() {
        ADS => Some((AD_NETWORKS, "an ad network")),
        connections::SOCIAL => Some((Network::NAMES, "a social network")),
        _ => None,
    };
    if let (Some((networks, which)), Some(network)) = (networks, set.get("network").and_then(Value::as_str))
        && !networks.contains(&network)
    {
        errors.insert(
            "network".into(),
            vec![format!(
                "a {kind} connection is on {which}: one of {}",
                networks.join(", ")
            )],
        );
    }
    let provider = set.get("provider").and_then(Value::as_str).unwrap_or(SANDBOX_PROVIDER);
    let allowed = match kind.as_str() {
        PHONE => "aws",
        MAIL => "ses",
        _ => SANDBOX_PROVIDER,
    };
    if provider != SANDBOX_PROVIDER && provider != allowed {
        let only = if allowed == SANDBOX_PROVIDER {
            format!("`{SANDBOX_PROVIDER}` only")
        } else {
            format!("`{SANDBOX_PROVIDER}` or `{allowed}`")
        };
        errors.insert(
            "provider".into(),
            vec![format!("a {kind} connection goes through {only}")],
        );
    }
    if kind != MAIL && !set.contains_key("name") {
        errors.insert("name".into(), vec![format!("is required for a {kind} connection")]);
    }
    if kind == MAIL
        && let Some(address) = set.get("address").and_then(Value::as_str)
        && let Err(error) = mail::senders::parse_sender(address)
    {
        errors.insert("address".into(), vec![error.to_string()]);
    }
    for field in needed.iter().filter(|f| !set.contains_key(**f)) {
        errors.insert((*field).into(), vec![format!("is required for a {kind} connection")]);
    }
    for field in foreign.iter().filter(|f| set.contains_key(**f)) {
        errors.insert((*field).into(), vec![format!("is not part of a {kind} connection")]);
    }
    if let (Some(channel), Some(address)) = (
        set.get("channel").and_then(Value::as_str).and_then(Channel::parse),
        set.get("address").and_then(Value::as_str),
    ) {
        match channel.address(address) {
            Ok(address) => {
                set.insert("address".into(), json!(address));
            }
            Err(message) => {
                errors.insert(
                    "address".into(),
                    vec![format!("{message} (a {} address)", channel.as_str())],
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

/// 32 random bytes, hex: what a provider keys its HMAC with.
fn new_signing_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("mss_{}", hex::encode(bytes))
}

fn signing_keys(call: &Call) -> Result<&dyn space_store::secrets::SigningKeys, ApiError> {
    call.engine.signing_keys().ok_or_else(|| ApiError::Unavailable {
        message: "Signing keys are not configured on this server.".into(),
        retry_after: 60,
    })
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let mut data = Vec::new();
        for kind in KINDS {
            data.extend(
                connections::list(&call.engine, &space, kind)
                    .await?
                    .iter()
                    .map(owner_view),
            );
        }
        Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
    })
}

pub fn get_handler() -> Handler {
    handler(|call: Call| async move {
        let (_, item) = owned(&call).await?;
        Ok(Reply::ok(owner_view(&item)))
    })
}

/// The fields of `kind` a PATCH may set beyond `name` and `active`.
fn settings_of(kind: &str) -> &'static [&'static str] {
    match kind {
        MESSAGING => &["languages"],
        PHONE => &["capabilities"],
        MAIL => &[],
        _ => &["handle"],
    }
}

pub fn update_handler() -> Handler {
    handler(|call: Call| async move {
        let (space, item) = owned(&call).await?;
        let validated = validate(&update_fields(), &call.body, WriteMode::Patch).map_err(ApiError::validation)?;
        if validated.set.is_empty() && validated.clear.is_empty() {
            return Err(ApiError::invalid_field(
                "body",
                format!("send at least one of {} to change", UPDATABLE.join(", ")),
            ));
        }
        call.check_if_match(item.version)?;
        let kind = item
            .body
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut errors = FieldErrors::new();
        for name in validated
            .set
            .keys()
            .map(String::as_str)
            .chain(validated.clear.iter().copied())
        {
            if !matches!(name, "name" | "active") && !settings_of(&kind).contains(&name) {
                errors.insert(name.into(), vec![format!("is not part of a {kind} connection")]);
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let mut updated = item.clone();
        validated.apply(&mut updated.body, WriteMode::Patch, &[]);
        match validated.set.get("active").and_then(Value::as_bool) {
            Some(false) => {
                updated.body.insert(connections::OWNER_PAUSED.into(), json!(true));
            }
            Some(true) => {
                updated.body.remove(connections::OWNER_PAUSED);
            }
            None => {}
        }
        updated.version += 1;
        let event = update_event_write(
            &space,
            "connection.updated",
            &item.sk,
            &connections::render(&item),
            connections::render(&updated),
            &call.principal,
            call.engine.now(),
        );
        call.engine
            .store()
            .transact(vec![
                Write::put(updated.clone(), Condition::Version(item.version)),
                event,
            ])
            .await?;
        Ok(Reply::ok(owner_view(&updated)))
    })
}

pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let (space, item) = owned(&call).await?;
        let id = item.sk.clone();
        let event = event_write(
            &space,
            "connection.deleted",
            &id,
            connections::render(&item),
            &call.principal,
            call.engine.now(),
        );
        let mut writes = vec![
            Write::delete(item.pk.clone(), item.sk.clone(), Condition::Version(item.version)),
            event,
        ];
        // An SES sender's identity goes with it, on the worker.
        writes.extend(mail::senders::on_disconnect(&space, &item, call.engine.now()));
        writes.extend(phone::numbers::release_aws_number(&space, &item).into_iter().flatten());
        let messaging = connections::channel(&item).is_some();
        if messaging {
            writes.extend(references::delete(
                &space,
                &keys::public_pointer(connections::HOOK_POINTER, &id),
            ));
        }
        call.engine.store().transact(writes).await?;
        if messaging && let Some(keys) = call.engine.signing_keys() {
            // The pointer is gone, so no callback reaches the secret any more; a purge of
            // the Space removes one left behind.
            let _ = keys.delete_key(&space, &connections::secret_name(&id)).await;
        }
        Ok(Reply::no_content())
    })
}

/// Tells the sandbox provider to fail the next publishes through this connection.
pub fn sandbox_handler() -> Handler {
    handler(|call: Call| async move {
        let mut errors = FieldErrors::new();
        let body = call.body.as_object().cloned().unwrap_or_default();
        for extra in body.keys().filter(|k| {
            !matches!(
                k.as_str(),
                "fail_next"
                    | "failure"
                    | "fail_recipients"
                    | "undelivered_recipients"
                    | "bounce_recipients"
                    | "complain_recipients"
            )
        }) {
            errors.insert(
                extra.clone(),
                vec!["is not accepted; send fail_next, failure, fail_recipients, undelivered_recipients, bounce_recipients and complain_recipients".into()],
            );
        }
        if body.is_empty() {
            errors.insert("fail_next".into(), vec!["send fail_next or fail_recipients".into()]);
        }
        // JSON Schema's integers include `20.0`.
        let fail_next = match body.get("fail_next") {
            None => Some(0),
            Some(value) => value
                .as_f64()
                .filter(|n| n.fract() == 0.0 && (0.0..=100.0).contains(n))
                .map(|n| n as u64),
        };
        if fail_next.is_none() {
            errors.insert("fail_next".into(), vec!["must be a whole number from 0 to 100".into()]);
        }
        let fail_recipients = recipients(&body, "fail_recipients", &mut errors);
        let undelivered_recipients = recipients(&body, "undelivered_recipients", &mut errors);
        let bounce_recipients = recipients(&body, "bounce_recipients", &mut errors);
        let complain_recipients = recipients(&body, "complain_recipients", &mut errors);
        let failure = match body.get("failure") {
            None | Some(Value::Null) => Some("transient"),
            Some(value) => value.as_str().filter(|f| FAILURES.contains(f)),
        };
        if failure.is_none() {
            errors.insert(
                "failure".into(),
                vec![format!("must be one of {}", FAILURES.join(", "))],
            );
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let (_, mut item) = owned(&call).await?;
        if item.body.get("provider").and_then(Value::as_str) != Some("sandbox") {
            return Err(ApiError::Conflict(
                "Only a sandbox connection takes these instructions.".into(),
            ));
        }
        // Addresses as the channel stores them, so a recipient matches however it was typed.
        let channel = connections::channel(&item);
        let phone = item.body.get("kind").and_then(Value::as_str) == Some(PHONE);
        let mail = item.body.get("kind").and_then(Value::as_str) == Some(MAIL);
        let normalized = |list: Vec<String>| -> Vec<String> {
            list.into_iter()
                .map(|address| match channel {
                    Some(channel) => channel.address(&address).unwrap_or(address),
                    None if phone => normalize_phone(&address).unwrap_or(address),
                    None if mail => space_http::email::Email::parse(&address)
                        .map(String::from)
                        .unwrap_or(address),
                    None => address,
                })
                .collect()
        };
        let fail_recipients = normalized(fail_recipients);
        let undelivered_recipients = normalized(undelivered_recipients);
        let bounce_recipients = normalized(bounce_recipients);
        let complain_recipients = normalized(complain_recipients);
        item.body.insert(
            SANDBOX.into(),
            json!({
                "fail_next": fail_next,
                "failure": failure,
                "fail_recipients": fail_recipients,
                "undelivered_recipients": undelivered_recipients,
                "bounce_recipients": bounce_recipients,
                "complain_recipients": complain_recipients,
            }),
        );
        let condition = Condition::Version(item.version);
        item.version += 1;
        let shown = owner_view(&item);
        call.engine.store().transact(vec![Write::put(item, condition)]).await?;
        Ok(Reply::ok(shown))
    })
}

/// A list of addresses the sandbox is told about, checked.
fn recipients(body: &Map<String, Value>, name: &str, errors: &mut FieldErrors) -> Vec<String> {
    match body.get(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.len() <= MAX_FAIL_RECIPIENTS => {
            let addresses: Vec<String> = list
                .iter()
                .filter_map(Value::as_str)
                .map(str::trim)
                .map(str::to_owned)
                .collect();
            if addresses.len() != list.len() {
                errors.insert(name.into(), vec!["must hold addresses (strings)".into()]);
            }
            // An address of spaces alone matches no recipient: kept out rather than refused.
            addresses.into_iter().filter(|address| !address.is_empty()).collect()
        }
        Some(_) => {
            errors.insert(
                name.into(),
                vec![format!("must be a list of at most {MAX_FAIL_RECIPIENTS} addresses")],
            );
            Vec::new()
        }
    }
}

/// Injects an inbound message on a messaging connection, as its provider's signed callback
/// would: the same code receives it, after the callback's signature check.
pub fn inbound_handler() -> Handler {
    handler(|call: Call| async move {
        let (space, item) = owned(&call).await?;
        // The owner stands in for the provider: the events show the platform as the actor,
        // as they do for a real provider's callback.
        let mut inside = call.clone();
        inside.principal = Principal::system().in_space(&space);
        let received = inbox::inbound::accept(&inside, &item, &call.body).await?;
        Ok(Reply::created(received))
    })
}

/// Records a call on a phone connection's log, as its provider's report of the call would:
/// the owner stands in for the provider (the sandbox has no other way to place calls).
pub fn calls_handler() -> Handler {
    handler(|call: Call| async move {
        let (space, item) = owned(&call).await?;
        let mut inside = call.clone();
        inside.principal = Principal::system().in_space(&space);
        let recorded = phone::calls::record(&inside, &item, &call.body).await?;
        Ok(Reply::created(recorded))
    })
}
