//! Turns an `Authorization` header into a principal and a rate-limit verdict, with the
//! key lookup and the window counter issued in parallel: one store round trip. Failed
//! lookups are limited per client address, and an address over that budget is refused
//! before the key store is asked.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::ConnectInfo;
use http::HeaderMap;
use space_auth::{
    FAILED_AUTH_PER_MINUTE, KeyRecord, Principal, PrincipalKind, RateDecision, RateWindow, Token, TokenKind,
};
use space_store::Condition;

use crate::budget;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::fields::format_datetime;
use crate::keys;

/// The outcome of authenticating one request. The decision is known whenever the
/// counter was reached, even if the key then turned out to be bad.
pub struct Authenticated {
    pub principal: Result<Principal, ApiError>,
    pub rate: Option<RateDecision>,
}

/// A visitor of a public route of `family`, limited to `per_minute` requests per client
/// address in that family: each family has its own budget.
pub async fn admit_visitor(engine: &Engine, family: &str, client: &str, per_minute: u32) -> Authenticated {
    let window = RateWindow::at(engine.now());
    let counter = keys::visitor_counter(family, client, window.start);
    match budget::spend(engine, &counter, &window, per_minute).await {
        Ok(decision) => {
            let principal = if decision.allowed {
                Ok(Principal::visitor())
            } else {
                Err(budget::refusal(
                    &decision,
                    format!(
                        "Too many requests from your address to /{family}/…; retry in {} s.",
                        decision.resets_in
                    ),
                ))
            };
            Authenticated {
                principal,
                rate: Some(decision),
            }
        }
        Err(error) => Authenticated {
            principal: Err(error.into()),
            rate: None,
        },
    }
}

/// Parses `Authorization: Bearer …` and checks the key for an endpoint that takes `kind`.
///
/// A failed lookup (unknown, revoked or expired key) counts against the client address's
/// budget of [`FAILED_AUTH_PER_MINUTE`]; once it is spent, the address is refused with 429
/// before any store call until the window closes.
pub async fn authenticate(
    engine: &Engine,
    authorization: Option<&str>,
    kind: PrincipalKind,
    origin: Origin<'_>,
) -> Authenticated {
    let token = match parse_bearer(authorization, kind) {
        Ok(token) => token,
        Err(error) => {
            return Authenticated {
                principal: Err(error),
                rate: None,
            };
        }
    };
    let now = engine.now();
    let memory = engine.auth_memory();
    if let Some(refused) = memory.refusal(origin, now.timestamp()) {
        return refused;
    }
    let hash = token.hash();
    let window = RateWindow::at(now);
    let lookup_key = keys::key_lookup(&hash);
    let counter_key = keys::rate_counter(&hash, window.start);
    let spend = |limit| budget::spend(engine, &counter_key, &window, limit);
    // A token this process has seen authenticate is counted alongside its lookup, one round
    // trip, against the limit it had then (a busy key's count is spread over several
    // counters, [`budget::shards`]). Any other is looked up first, so that a token that
    // turns out unknown leaves no counter behind: a stream of made-up tokens costs one
    // counter per address, not each.
    let known = memory.known_limit(hash.as_str());
    let (record, counted) = match known {
        Some(limit) => {
            let (record, decision) = tokio::join!(lookup(engine, &lookup_key), spend(limit));
            (record, Some(decision))
        }
        None => (lookup(engine, &lookup_key).await, None),
    };
    let principal = match record {
        Ok(Some(record)) => record.authenticate(kind, now).map_err(ApiError::from),
        Ok(None) => Err(ApiError::Unauthenticated("Invalid API key: no such key.".into())),
        Err(error) => {
            return Authenticated {
                principal: Err(error),
                rate: None,
            };
        }
    };
    let principal = match principal {
        Ok(principal) => principal,
        Err(error) => {
            if known.is_some() {
                memory.forget(hash.as_str());
            }
            return failed(engine, origin, &window, error).await;
        }
    };
    // A limit changed since this process remembered it is judged with the old one once.
    let decision = match counted {
        Some(decision) => decision,
        None => spend(principal.rate_limit).await,
    };
    let decision = match decision {
        Ok(decision) => decision,
        Err(error) => {
            return Authenticated {
                principal: Err(error.into()),
                rate: None,
            };
        }
    };
    if known != Some(principal.rate_limit) {
        memory.remember(hash.as_str(), principal.rate_limit);
    }
    if !decision.allowed {
        return Authenticated {
            principal: Err(budget::refusal(
                &decision,
                format!(
                    "Rate limit of {} requests per minute exceeded for this API key; retry in {} s.",
                    decision.limit, decision.resets_in
                ),
            )),
            rate: Some(decision),
        };
    }
    record_last_use(engine, &principal);
    crate::usage::count_request(engine, &principal);
    Authenticated {
        principal: Ok(principal),
        rate: Some(decision),
    }
}

/// Whether the key behind `authorization` still authenticates (not revoked, not expired):
/// for a long-lived answer such as the realtime stream, which checks it while it runs. No
/// rate counter is spent.
pub async fn still_valid(engine: &Engine, authorization: &str, kind: PrincipalKind) -> bool {
    let Ok(token) = parse_bearer(Some(authorization), kind) else {
        return false;
    };
    match lookup(engine, &keys::key_lookup(&token.hash())).await {
        Ok(Some(record)) => record.authenticate(kind, engine.now()).is_ok(),
        Ok(None) => false,
        // The store failing is not the key failing: keep the stream, check again later.
        Err(_) => true,
    }
}

async fn lookup(engine: &Engine, key: &keys::ItemKey) -> Result<Option<KeyRecord>, ApiError> {
    match engine.store().get_raw(&key.pk, &key.sk).await? {
        Some(raw) => serde_json::from_str::<KeyRecord>(raw.body.get())
            .map(Some)
            .map_err(|e| ApiError::Internal(format!("unreadable key record: {e}"))),
        None => Ok(None),
    }
}

/// Counts a failed lookup against the client address's budget. The failure that spends it
/// is answered 429 instead of 401, and the address is refused without a lookup until the
/// window closes.
async fn failed(engine: &Engine, origin: Origin<'_>, window: &RateWindow, error: ApiError) -> Authenticated {
    let client = origin.address().unwrap_or_else(|| UNKNOWN_CLIENT.to_owned());
    failed_from(engine, client, window, error).await
}

/// A signed public route's failed signature (a provider's callback), counted against the
/// client address's budget exactly as a failed key lookup is: the answer is `error`, or
/// 429 once the budget is spent.
pub async fn failed_signature(engine: &Engine, client: Option<&str>, error: ApiError) -> ApiError {
    let client = client.unwrap_or(UNKNOWN_CLIENT).to_owned();
    let window = RateWindow::at(engine.now());
    match failed_from(engine, client, &window, error).await.principal {
        Err(error) => error,
        Ok(_) => ApiError::Internal("a failure counted as a success".into()),
    }
}

/// The 429 for an address that spent its failed-authentication budget, while it lasts:
/// checked by a signed public route before it reads any secret.
pub fn refused_address(engine: &Engine, client: Option<&str>) -> Option<ApiError> {
    let now = engine.now().timestamp();
    engine
        .auth_memory()
        .refusal_of(client.unwrap_or(UNKNOWN_CLIENT), now)
        .map(|refused| match refused.principal {
            Err(error) => error,
            Ok(_) => ApiError::Internal("a refusal without an error".into()),
        })
}

async fn failed_from(engine: &Engine, client: String, window: &RateWindow, error: ApiError) -> Authenticated {
    let counter = keys::failed_auth_counter(&client, window.start);
    match budget::spend(engine, &counter, window, FAILED_AUTH_PER_MINUTE).await {
        Ok(decision) if decision.allowed => Authenticated {
            principal: Err(error),
            rate: Some(decision),
        },
        Ok(decision) => {
            let now = engine.now().timestamp();
            engine.auth_memory().lock_out(client, window.start + window.length, now);
            Authenticated {
                principal: Err(failures_refusal(&decision)),
                rate: Some(decision),
            }
        }
        // Uncounted, the request is still refused: the key was not valid.
        Err(count_error) => {
            tracing::warn!(error = %count_error, "failed authentication not counted");
            Authenticated {
                principal: Err(error),
                rate: None,
            }
        }
    }
}

fn failures_refusal(decision: &RateDecision) -> ApiError {
    budget::refusal(
        decision,
        format!(
            "Too many failed authentications from your address; retry in {} s.",
            decision.resets_in
        ),
    )
}

/// What a request's client address is called when it cannot be told.
pub const UNKNOWN_CLIENT: &str = "unknown";

/// Where a request came from, read only when a limit needs it: formatting the address
/// would cost every request otherwise.
#[derive(Clone, Copy)]
pub struct Origin<'a> {
    extensions: &'a http::Extensions,
    headers: &'a HeaderMap,
}

impl<'a> Origin<'a> {
    pub fn of(extensions: &'a http::Extensions, headers: &'a HeaderMap) -> Origin<'a> {
        Origin { extensions, headers }
    }

    /// The socket's peer when we serve directly, else the last `X-Forwarded-For` entry
    /// (the one API Gateway appends; earlier ones are the client's own claims).
    pub fn address(&self) -> Option<String> {
        if let Some(ConnectInfo(peer)) = self.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Some(peer.ip().to_string());
        }
        let forwarded = self.headers.get("x-forwarded-for")?.to_str().ok()?;
        let last = forwarded.rsplit(',').next()?.trim();
        (!last.is_empty() && last.len() <= 64).then(|| last.to_owned())
    }
}

/// Entries a process keeps of known tokens or refused addresses before it starts afresh.
const MEMORY_ENTRIES: usize = 10_000;

/// What a process remembers between requests so that failed authentication stays cheap
/// for us: the tokens that authenticated here and their rate limits (see [`authenticate`]), and the client
/// addresses that spent their failed-lookup budget, until when. Losing it (a new process,
/// a full map) only costs one lookup more; the store's counters stay the truth.
#[derive(Default)]
pub struct AuthMemory {
    known: Mutex<HashMap<String, u32>>,
    refused: Mutex<HashMap<String, i64>>,
    /// The latest end of any refusal: while it is past, no request looks at `refused`.
    refused_until: AtomicI64,
}

impl AuthMemory {
    /// The rate limit of a token that authenticated here.
    fn known_limit(&self, hash: &str) -> Option<u32> {
        lock(&self.known).get(hash).copied()
    }

    fn remember(&self, hash: &str, rate_limit: u32) {
        let mut known = lock(&self.known);
        if known.len() >= MEMORY_ENTRIES {
            known.clear();
        }
        known.insert(hash.to_owned(), rate_limit);
    }

    fn forget(&self, hash: &str) {
        lock(&self.known).remove(hash);
    }

    fn lock_out(&self, client: String, until: i64, now: i64) {
        let mut refused = lock(&self.refused);
        if refused.len() >= MEMORY_ENTRIES {
            refused.retain(|_, end| *end > now);
            if refused.len() >= MEMORY_ENTRIES {
                refused.clear();
            }
        }
        refused.insert(client, until);
        self.refused_until.fetch_max(until, Ordering::Relaxed);
    }

    /// The 429 for an address that spent its failed-lookup budget, while it lasts.
    fn refusal(&self, origin: Origin<'_>, now: i64) -> Option<Authenticated> {
        if self.refused_until.load(Ordering::Relaxed) <= now {
            return None;
        }
        let client = origin.address().unwrap_or_else(|| UNKNOWN_CLIENT.to_owned());
        self.refusal_of(&client, now)
    }

    fn refusal_of(&self, client: &str, now: i64) -> Option<Authenticated> {
        if self.refused_until.load(Ordering::Relaxed) <= now {
            return None;
        }
        let until = *lock(&self.refused).get(client).filter(|until| **until > now)?;
        let decision = RateDecision {
            allowed: false,
            limit: u64::from(FAILED_AUTH_PER_MINUTE),
            remaining: 0,
            resets_in: until - now,
        };
        Some(Authenticated {
            principal: Err(failures_refusal(&decision)),
            rate: Some(decision),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Updates the key's `last_used_at` in its list entry, off the request path.
fn record_last_use(engine: &Engine, principal: &Principal) {
    let now = engine.now();
    if !engine.claim_key_touch(&principal.key_id, now.timestamp()) {
        return;
    }
    let key = match &principal.space_id {
        Some(space) => keys::space_key(space, &principal.key_id),
        None => keys::account_key(&principal.account_id, &principal.key_id),
    };
    let store = engine.store_arc();
    tokio::spawn(async move {
        let Ok(Some(mut item)) = store.get(&key.pk, &key.sk).await else {
            return;
        };
        let seen = item.version;
        item.version += 1;
        item.body
            .insert("last_used_at".into(), serde_json::json!(format_datetime(now)));
        // A revoked key's entry is gone: the condition keeps it from coming back.
        if let Err(error) = store.put(item, Condition::Version(seen)).await {
            tracing::debug!(%error, "last_used_at not recorded");
        }
    });
}

fn parse_bearer(authorization: Option<&str>, kind: PrincipalKind) -> Result<Token, ApiError> {
    let expected = match kind {
        PrincipalKind::Space => TokenKind::Space,
        PrincipalKind::Account => TokenKind::Account,
    };
    let header = authorization.ok_or_else(|| {
        ApiError::Unauthenticated(format!(
            "Missing API key: send `Authorization: Bearer {}…`.",
            expected.prefix()
        ))
    })?;
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || credentials.trim().is_empty() {
        return Err(ApiError::Unauthenticated(
            "The Authorization header must be `Bearer <API key>`.".into(),
        ));
    }
    let token = Token::parse(credentials.trim())?;
    if token.kind() != expected {
        return Err(ApiError::Unauthenticated(format!(
            "This endpoint takes a {} key ({}…), not a {} key.",
            expected.as_str(),
            expected.prefix(),
            token.kind().as_str()
        )));
    }
    Ok(token)
}
