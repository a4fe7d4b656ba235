//! Minting, listing and revoking keys. The token is generated here, returned once, and
//! only its SHA-256 is stored: in the lookup item (read on every request) and in the
//! Space's key list, written together in one transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value, json};
use space_auth::{
    Cap, CapLimit, Domain, KeyRecord, Principal, PrincipalKind, ScopeSet, StoredLimits, Token, TokenHash, TokenKind,
};
use space_http::events::event_write;
use space_http::fields::{format_datetime, parse_datetime};
use space_http::ids::new_id;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{PageRequest, list_partition};
use space_http::{ApiError, Engine, FieldErrors, keys, usage};
use space_store::{Condition, Item, Query, SortRange, Write};

use crate::spaces;

/// Keys whose usage a list page reads at the same time.
const USAGE_READS_AT_ONCE: usize = 16;

/// The highest per-key limit an owner can set.
pub const MAX_RATE_LIMIT: u64 = 100_000;
/// The highest daily cap on a live action.
pub const MAX_PER_DAY: u64 = 1_000_000;

/// What a new key may do.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub name: String,
    pub scopes: ScopeSet,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit_per_minute: Option<u32>,
    /// Domains the key is pinned to (what MCP lists); `None` for every domain in scope.
    pub toolsets: Option<Vec<Domain>>,
    /// Refuse every operation that is not a read.
    pub read_only: bool,
    /// Caps on live actions per UTC day.
    pub limits: Vec<(Cap, u32)>,
    /// Scopes whose live actions wait for the owner's approval.
    pub approval_required: ScopeSet,
}

/// A freshly minted key: its public view and the token, which exists nowhere else.
pub struct MintedKey {
    pub view: Value,
    pub token: Token,
}

pub fn request_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name", "scopes"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "scopes": {
                "type": "array",
                "minItems": 1,
                "items": scope_schema()
            },
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "rate_limit_per_minute": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_RATE_LIMIT},
            "toolsets": {
                "type": ["array", "null"],
                "description": "Pin the key to these domains: MCP lists only their tools and every call outside them is refused.",
                "items": {"type": "string", "enum": Domain::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>()}
            },
            "read_only": {"type": "boolean", "default": false, "description": "Refuse every operation that is not a read."},
            "limits": limits_schema(),
            "approval_required": approval_schema()
        }
    })
}

/// Scopes whose live actions wait for the owner's approval.
pub fn approval_schema() -> Value {
    json!({
        "type": ["array", "null"],
        "description": "Scopes of this key whose live actions (publish, send, reply, run) wait for the Space owner's approval: such a call answers 202 with a pending approval and runs once the owner approves it. The key's other operations run as usual.",
        "items": scope_schema()
    })
}

/// One scope of the catalogue, named `Scope` wherever a schema takes one.
fn scope_schema() -> Value {
    json!({"type": "string", "title": "Scope", "enum": ScopeSet::all().iter().map(|s| s.to_string()).collect::<Vec<_>>()})
}

/// A key's caps on live actions: per cap name, how many uses per UTC day.
pub fn limits_schema() -> Value {
    let per_cap = json!({
        "type": "object",
        "properties": {"per_day": {"type": "integer", "minimum": 1, "maximum": MAX_PER_DAY}},
        "required": ["per_day"],
        "additionalProperties": false
    });
    let properties: Map<String, Value> = Cap::names()
        .into_iter()
        .map(|name| (name.to_owned(), per_cap.clone()))
        .collect();
    json!({
        "type": ["object", "null"],
        "description": "Caps on live actions, per UTC day, e.g. {\"phone.sms\": {\"per_day\": 50}}. Past a cap the action answers 429 `LIVE_ACTION_CAP` until the next UTC day, and nothing is sent.",
        "properties": properties,
        "additionalProperties": false
    })
}

/// The key as lists show it; `with_token` for the mint response.
pub fn schema(with_token: bool) -> Value {
    let mut schema = json!({
        "type": "object",
        "required": ["id", "name", "scopes", "prefix", "expires_at", "rate_limit_per_minute", "toolsets", "read_only", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string"}},
            "prefix": {"type": "string", "description": "The start of the token, to tell keys apart."},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "rate_limit_per_minute": {"type": ["integer", "null"]},
            "toolsets": {"type": ["array", "null"], "items": {"type": "string"}},
            "read_only": {"type": "boolean"},
            "approval_required": {"type": "array", "items": {"type": "string"}, "description": "Scopes whose live actions wait for the owner's approval."},
            "limits": {
                "type": "object",
                "description": "Caps on live actions per UTC day, by cap name.",
                "additionalProperties": {"type": "object", "properties": {"per_day": {"type": "integer"}}, "required": ["per_day"]}
            },
            "created_at": {"type": "string", "format": "date-time"}
        }
    });
    if !with_token {
        schema["properties"]["last_used_at"] = json!({"type": ["string", "null"], "format": "date-time"});
        schema["properties"]["requests_today"] =
            json!({"type": "integer", "description": "Requests made with the key this UTC day."});
        schema["properties"]["requests_this_month"] =
            json!({"type": "integer", "description": "Requests made with the key this UTC month."});
        if let Some(required) = schema["required"].as_array_mut() {
            required.extend([
                json!("last_used_at"),
                json!("requests_today"),
                json!("requests_this_month"),
            ]);
        }
    }
    if with_token {
        schema["properties"]["token"] =
            json!({"type": "string", "description": "The secret. Shown once; store it now."});
        if let Some(required) = schema["required"].as_array_mut() {
            required.push(json!("token"));
        }
    }
    schema
}

/// Checks a mint request, reporting every bad field (unknown scopes by name).
pub fn parse_request(body: &Value, now: DateTime<Utc>) -> Result<KeyRequest, ApiError> {
    let mut errors = FieldErrors::new();
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    for extra in object.keys().filter(|k| {
        ![
            "name",
            "scopes",
            "expires_at",
            "rate_limit_per_minute",
            "toolsets",
            "read_only",
            "limits",
            "approval_required",
        ]
        .contains(&k.as_str())
    }) {
        errors.insert(extra.clone(), vec!["is not a field of a key".into()]);
    }
    let name = object.get("name").and_then(Value::as_str).map(str::trim).unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        errors.insert(
            "name".into(),
            vec!["The name field is required: 1 to 100 printable characters.".into()],
        );
    }
    let scopes = match object.get("scopes").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => {
            let texts: Vec<&str> = list.iter().map(|v| v.as_str().unwrap_or("")).collect();
            match ScopeSet::parse_all(texts) {
                Ok(set) => set,
                Err(problems) => {
                    errors.insert("scopes".into(), problems.iter().map(ToString::to_string).collect());
                    ScopeSet::default()
                }
            }
        }
        _ => {
            errors.insert(
                "scopes".into(),
                vec!["The scopes field is required: a non-empty list like [\"contacts:read\"].".into()],
            );
            ScopeSet::default()
        }
    };
    let expires_at = match object.get("expires_at") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_str().and_then(parse_datetime) {
            Some(at) if at > now => Some(at),
            Some(_) => {
                errors.insert("expires_at".into(), vec!["must be in the future".into()]);
                None
            }
            None => {
                errors.insert(
                    "expires_at".into(),
                    vec!["must be an RFC 3339 date-time or null".into()],
                );
                None
            }
        },
    };
    let rate_limit_per_minute = match object.get("rate_limit_per_minute") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64().filter(|n| (1..=MAX_RATE_LIMIT).contains(n)) {
            Some(limit) => u32::try_from(limit).ok(),
            None => {
                errors.insert(
                    "rate_limit_per_minute".into(),
                    vec![format!("must be a whole number from 1 to {MAX_RATE_LIMIT}, or null")],
                );
                None
            }
        },
    };
    let toolsets = match object.get("toolsets") {
        None | Some(Value::Null) => None,
        Some(Value::Array(names)) => {
            let parsed: Vec<Result<Domain, String>> = names
                .iter()
                .map(|name| {
                    let text = name.as_str().unwrap_or_default();
                    text.parse::<Domain>().map_err(|_| format!("`{text}` is not a domain"))
                })
                .collect();
            let problems: Vec<String> = parsed.iter().filter_map(|p| p.as_ref().err().cloned()).collect();
            if problems.is_empty() {
                Some(parsed.into_iter().filter_map(Result::ok).collect())
            } else {
                errors.insert("toolsets".into(), problems);
                None
            }
        }
        Some(_) => {
            errors.insert(
                "toolsets".into(),
                vec!["must be a list of domains, like [\"contacts\"], or null".into()],
            );
            None
        }
    };
    let read_only = match object.get("read_only") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            errors.insert("read_only".into(), vec!["must be true or false".into()]);
            false
        }
    };
    let limits = parse_limits(object.get("limits"), &mut errors);
    let approval_required = parse_approval(object.get("approval_required"), scopes, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(KeyRequest {
        name: name.to_owned(),
        scopes,
        expires_at,
        rate_limit_per_minute,
        toolsets,
        read_only,
        limits,
        approval_required,
    })
}

/// `["phone:run", …]`: scopes of the key itself (approving what it cannot do is no rule).
fn parse_approval(value: Option<&Value>, scopes: ScopeSet, errors: &mut FieldErrors) -> ScopeSet {
    let names = match value {
        None | Some(Value::Null) => return ScopeSet::default(),
        Some(Value::Array(names)) => names,
        Some(_) => {
            errors.insert(
                "approval_required".into(),
                vec!["must be a list of the key's scopes, like [\"phone:run\"], or null".into()],
            );
            return ScopeSet::default();
        }
    };
    let mut set = ScopeSet::default();
    let mut problems = Vec::new();
    for name in names {
        let text = name.as_str().unwrap_or_default();
        match text.parse::<space_auth::Scope>() {
            Ok(scope) if scopes.contains(scope) => set.insert(scope),
            Ok(_) => problems.push(format!("`{text}` is not one of this key's scopes")),
            Err(error) => problems.push(format!("`{text}`: {error}")),
        }
    }
    if !problems.is_empty() {
        errors.insert("approval_required".into(), problems);
    }
    set
}

/// `{"phone.sms": {"per_day": 50}, …}`: known cap names only (the message lists them),
/// each with a whole `per_day` from 1 to [`MAX_PER_DAY`].
fn parse_limits(value: Option<&Value>, errors: &mut FieldErrors) -> Vec<(Cap, u32)> {
    let object = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(object)) => object,
        Some(_) => {
            errors.insert(
                "limits".into(),
                vec!["must be an object like {\"phone.sms\": {\"per_day\": 50}}, or null".into()],
            );
            return Vec::new();
        }
    };
    let mut limits = Vec::new();
    let mut problems = Vec::new();
    for (name, limit) in object {
        let Some(cap) = Cap::parse(name) else {
            problems.push(format!(
                "`{name}` is not a cap; the caps are {}",
                Cap::names().join(", ")
            ));
            continue;
        };
        let per_day = limit
            .as_object()
            .filter(|fields| fields.len() == 1)
            .and_then(|fields| fields.get("per_day"))
            .and_then(Value::as_u64)
            .filter(|n| (1..=MAX_PER_DAY).contains(n))
            .and_then(|n| u32::try_from(n).ok());
        match per_day {
            Some(per_day) => limits.push((cap, per_day)),
            None => problems.push(format!(
                "`{name}` takes {{\"per_day\": N}} with N a whole number from 1 to {MAX_PER_DAY}"
            )),
        }
    }
    if !problems.is_empty() {
        errors.insert("limits".into(), problems);
    }
    limits.sort();
    limits
}

/// Limits as a key record and a key's view hold them.
fn stored_limits(limits: &[(Cap, u32)]) -> StoredLimits {
    limits
        .iter()
        .map(|(cap, per_day)| (cap.as_str().to_owned(), CapLimit { per_day: *per_day }))
        .collect()
}

fn view(id: &str, request: &KeyRequest, prefix: &str, created_at: &str) -> Map<String, Value> {
    let mut view = Map::new();
    view.insert("id".into(), json!(id));
    view.insert("name".into(), json!(request.name));
    view.insert("scopes".into(), json!(request.scopes));
    view.insert("prefix".into(), json!(prefix));
    view.insert("expires_at".into(), json!(request.expires_at.map(format_datetime)));
    view.insert("rate_limit_per_minute".into(), json!(request.rate_limit_per_minute));
    let toolsets: Option<Vec<&str>> = request
        .toolsets
        .as_ref()
        .map(|sets| sets.iter().map(|d| d.as_str()).collect());
    view.insert("toolsets".into(), json!(toolsets));
    view.insert("read_only".into(), json!(request.read_only));
    view.insert("limits".into(), json!(stored_limits(&request.limits)));
    view.insert("approval_required".into(), json!(request.approval_required));
    view.insert("created_at".into(), json!(created_at));
    view
}

/// Mints a key for `space` (checked to exist in the same transaction), or an account
/// key when `space` is `None`.
pub async fn mint(
    engine: &Engine,
    actor: &Principal,
    space: Option<&str>,
    request: KeyRequest,
) -> Result<MintedKey, ApiError> {
    let kind = if space.is_some() {
        TokenKind::Space
    } else {
        TokenKind::Account
    };
    let token = Token::generate(kind);
    let id = new_id("key");
    let created_at = format_datetime(engine.now());
    let record = KeyRecord {
        key_id: id.clone(),
        kind: PrincipalKind::from(kind),
        account_id: actor.account_id.clone(),
        space_id: space.map(str::to_owned),
        scopes: request.scopes,
        rate_limit_per_minute: request.rate_limit_per_minute,
        expires_at: request.expires_at,
        revoked_at: None,
        toolsets: request
            .toolsets
            .as_ref()
            .map(|sets| sets.iter().map(|d| d.as_str().to_owned()).collect()),
        read_only: request.read_only,
        limits: stored_limits(&request.limits),
        approval_required: request.approval_required,
    };
    let public = view(&id, &request, &token.display_prefix(), &created_at);
    let mut listed_body = public.clone();
    listed_body.insert("token_hash".into(), json!(token.hash().as_str()));
    let lookup = keys::key_lookup(&token.hash());
    let record_body = match serde_json::to_value(&record) {
        Ok(Value::Object(body)) => body,
        _ => return Err(ApiError::Internal("key record did not serialize to an object".into())),
    };
    let mut writes = vec![Write::put(
        Item::new(lookup.pk, lookup.sk, record_body),
        Condition::NotExists,
    )];
    match space {
        Some(space) => {
            let meta = keys::space_meta(space);
            let listed = keys::space_key(space, &id);
            writes.push(Write::check(meta.pk, meta.sk, Condition::Exists));
            writes.push(Write::put(
                Item::new(listed.pk, listed.sk, listed_body),
                Condition::NotExists,
            ));
            writes.push(event_write(
                space,
                "key.created",
                &id,
                Value::Object(public.clone()),
                actor,
                engine.now(),
            ));
            if let Some(expires_at) = request.expires_at {
                writes.push(crate::jobs::key_expiring_job(space, &id, expires_at, engine.now()));
            }
        }
        None => {
            let listed = keys::account_key(&actor.account_id, &id);
            writes.push(Write::put(
                Item::new(listed.pk, listed.sk, listed_body),
                Condition::NotExists,
            ));
        }
    }
    engine.store().transact(writes).await.map_err(|error| match error {
        space_store::StoreError::TransactionConflict { index: 1 } => ApiError::not_found("space", space.unwrap_or("")),
        other => other.into(),
    })?;
    let mut view = public;
    view.insert("token".into(), json!(token.expose()));
    Ok(MintedKey {
        view: Value::Object(view),
        token,
    })
}

/// Marks the lookup item revoked and drops the key from its Space's list, together.
fn revoke_writes(listed: &Item, now: DateTime<Utc>) -> Result<Vec<Write>, ApiError> {
    let hash = listed
        .body
        .get("token_hash")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Internal("key list item without a token hash".into()))?;
    let lookup = keys::key_lookup(&TokenHash::from_stored(hash.to_owned()));
    Ok(vec![
        Write::delete(listed.pk.clone(), listed.sk.clone(), Condition::None),
        Write::put(
            Item::new(lookup.pk, lookup.sk, revoked_record(listed, now)),
            Condition::Exists,
        ),
    ])
}

/// The lookup item of a revoked key: enough to answer "revoked" and nothing to use.
fn revoked_record(listed: &Item, now: DateTime<Utc>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("key_id".into(), listed.body.get("id").cloned().unwrap_or(Value::Null));
    body.insert("kind".into(), json!("space"));
    body.insert("account_id".into(), json!(""));
    body.insert("revoked_at".into(), json!(format_datetime(now)));
    body
}

/// Revokes every key of a Space, in transactions of up to 45 keys. A deletion and its
/// purge may revoke at the same moment: a transaction that meets the other's is read again.
pub async fn revoke_all(engine: &Engine, space: &str) -> Result<(), ApiError> {
    let mut collisions = 0;
    loop {
        let page = engine
            .store()
            .query(
                Query::partition(keys::space_partition(space))
                    .range(SortRange::BeginsWith(keys::API_KEY_PREFIX.into()))
                    .limit(45),
            )
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(page.items.len() * 2);
        for listed in &page.items {
            writes.extend(revoke_writes(listed, engine.now())?);
        }
        match engine.store().transact(writes).await {
            Ok(()) => {}
            Err(space_store::StoreError::Contention | space_store::StoreError::TransactionConflict { .. })
                if collisions < 5 =>
            {
                collisions += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?;
        spaces::load(&call.engine, &call.principal.account_id, space).await?;
        let page = PageRequest::parse(&call)?;
        let partition = keys::space_partition(space);
        let mut listed = list_partition(
            &call,
            &partition,
            SortRange::BeginsWith(keys::API_KEY_PREFIX.into()),
            page,
            |_| true,
        )
        .await?;
        if let Some(data) = listed.get_mut("data").and_then(Value::as_array_mut) {
            for key in data.iter_mut().filter_map(Value::as_object_mut) {
                key.remove("token_hash");
                key.remove("version");
                key.entry("last_used_at").or_insert(Value::Null);
            }
            with_usage(&call.engine, space, data).await?;
        }
        Ok(Reply::ok(listed))
    })
}

pub fn create_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?;
        spaces::load(&call.engine, &call.principal.account_id, space).await?;
        let request = parse_request(&call.body, call.engine.now())?;
        let minted = mint(&call.engine, &call.principal, Some(space), request).await?;
        Ok(Reply::created(minted.view))
    })
}

pub fn revoke_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?;
        let key_id = call.path_param("key")?;
        spaces::load(&call.engine, &call.principal.account_id, space).await?;
        let listed_key = keys::space_key(space, key_id);
        let listed = call
            .engine
            .store()
            .get(&listed_key.pk, &listed_key.sk)
            .await?
            .ok_or_else(|| ApiError::not_found("key", key_id))?;
        let mut writes = revoke_writes(&listed, call.engine.now())?;
        writes.push(event_write(
            space,
            "key.revoked",
            key_id,
            json!({"id": key_id}),
            &call.principal,
            call.engine.now(),
        ));
        call.engine.store().transact(writes).await?;
        Ok(Reply::no_content())
    })
}

/// What a key's usage answers: its days with requests in the kept window, newest first.
pub fn usage_schema() -> Value {
    json!({
        "type": "object",
        "required": ["key_id", "days", "today", "this_month"],
        "properties": {
            "key_id": {"type": "string"},
            "days": {
                "type": "array",
                "description": "The UTC days of the last 90 with any request, newest first.",
                "items": {
                    "type": "object",
                    "required": ["date", "requests"],
                    "properties": {
                        "date": {"type": "string", "format": "date"},
                        "requests": {"type": "integer"}
                    }
                }
            },
            "today": {"type": "integer", "description": "Requests this UTC day."},
            "this_month": {"type": "integer", "description": "Requests this UTC month."}
        }
    })
}

/// Writes the counts this process still holds before they are read, so that a single
/// process (`spacectl serve`) answers exactly; other processes' counts arrive with their
/// next batch.
async fn written_usage(engine: &Engine) {
    if let Err(error) = usage::flush(engine).await {
        tracing::warn!(%error, "usage counts of this process not written before reading");
    }
}

fn month_start(today: NaiveDate) -> NaiveDate {
    today.with_day(1).unwrap_or(today)
}

/// Adds `requests_today` and `requests_this_month` to each listed key: one small query per
/// key, a few at a time, since a page holds up to 200 keys.
async fn with_usage(engine: &Engine, space: &str, listed: &mut [Value]) -> Result<(), ApiError> {
    written_usage(engine).await;
    let today = engine.now().date_naive();
    for batch in listed.chunks_mut(USAGE_READS_AT_ONCE) {
        let read = batch.iter().map(|key| {
            let id = key.get("id").and_then(Value::as_str).unwrap_or_default();
            month_totals(engine, space, id, today)
        });
        let totals = futures::future::try_join_all(read).await?;
        for (key, (on_today, this_month)) in batch.iter_mut().zip(totals) {
            if let Some(key) = key.as_object_mut() {
                key.insert("requests_today".into(), json!(on_today));
                key.insert("requests_this_month".into(), json!(this_month));
            }
        }
    }
    Ok(())
}

/// Requests today and this month.
async fn month_totals(engine: &Engine, space: &str, key_id: &str, today: NaiveDate) -> Result<(u64, u64), ApiError> {
    let days = usage::between(engine.store(), space, key_id, month_start(today), today).await?;
    Ok(totals(&days, today))
}

fn totals(days: &[(NaiveDate, u64)], today: NaiveDate) -> (u64, u64) {
    let on_today = days.iter().filter(|(day, _)| *day == today).map(|(_, n)| n).sum();
    let this_month = days
        .iter()
        .filter(|(day, _)| *day >= month_start(today))
        .map(|(_, n)| n)
        .sum();
    (on_today, this_month)
}

/// A key of `space` and its use over the kept window; another Space's key is not found.
pub async fn key_usage(engine: &Engine, space: &str, key_id: &str) -> Result<Value, ApiError> {
    let listed = keys::space_key(space, key_id);
    engine
        .store()
        .get(&listed.pk, &listed.sk)
        .await?
        .ok_or_else(|| ApiError::not_found("key", key_id))?;
    written_usage(engine).await;
    let today = engine.now().date_naive();
    let days = usage::days(engine.store(), space, key_id, today).await?;
    let (on_today, this_month) = totals(&days, today);
    let days: Vec<Value> = days
        .iter()
        .map(|(day, requests)| json!({"date": day.format("%Y-%m-%d").to_string(), "requests": requests}))
        .collect();
    Ok(json!({
        "key_id": key_id,
        "days": days,
        "today": on_today,
        "this_month": this_month,
    }))
}

pub fn usage_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?;
        let key_id = call.path_param("key")?;
        spaces::load(&call.engine, &call.principal.account_id, space).await?;
        Ok(Reply::ok(key_usage(&call.engine, space, key_id).await?))
    })
}
