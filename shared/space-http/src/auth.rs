//! Turns an `Authorization` header into a principal and a rate-limit verdict, with the
//! key lookup and the window counter issued in parallel: one store round trip.

use space_auth::{KeyRecord, Principal, PrincipalKind, RateDecision, RateWindow, Token, TokenKind};

use space_store::Condition;

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

/// A visitor of a public route, limited to `per_minute` requests per client address.
pub async fn admit_visitor(engine: &Engine, client: &str, per_minute: u32) -> Authenticated {
    let window = RateWindow::at(engine.now());
    let counter = keys::visitor_counter(client, window.start);
    match engine
        .store()
        .increment(&counter.pk, &counter.sk, 1, window.expires_at())
        .await
    {
        Ok(count) => {
            let decision = window.decide(count, per_minute);
            let principal = if decision.allowed {
                Ok(Principal::visitor())
            } else {
                Err(ApiError::RateLimited {
                    message: format!(
                        "Too many requests from your address; retry in {} s.",
                        decision.resets_in
                    ),
                    retry_after: decision.resets_in.max(1) as u64,
                })
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
pub async fn authenticate(engine: &Engine, authorization: Option<&str>, kind: PrincipalKind) -> Authenticated {
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
    let hash = token.hash();
    let window = RateWindow::at(now);
    let lookup_key = keys::key_lookup(&hash);
    let counter_key = keys::rate_counter(&hash, window.start);
    let store = engine.store();
    let (record, count) = tokio::join!(
        store.get_raw(&lookup_key.pk, &lookup_key.sk),
        store.increment(&counter_key.pk, &counter_key.sk, 1, window.expires_at()),
    );

    let record = match record {
        Ok(Some(raw)) => serde_json::from_str::<KeyRecord>(raw.body.get())
            .map_err(|e| ApiError::Internal(format!("unreadable key record: {e}"))),
        Ok(None) => Err(ApiError::Unauthenticated("Invalid API key: no such key.".into())),
        Err(error) => Err(error.into()),
    };
    let principal = record.and_then(|record| record.authenticate(kind, now).map_err(ApiError::from));
    let limit = principal
        .as_ref()
        .map(|p| p.rate_limit)
        .unwrap_or(space_auth::DEFAULT_RATE_LIMIT_PER_MINUTE);
    let rate = match count {
        Ok(count) => Some(window.decide(count, limit)),
        Err(error) => {
            return Authenticated {
                principal: Err(error.into()),
                rate: None,
            };
        }
    };
    let principal = match (principal, rate) {
        (Ok(_), Some(decision)) if !decision.allowed => Err(ApiError::RateLimited {
            message: format!(
                "Rate limit of {} requests per minute exceeded for this API key; retry in {} s.",
                decision.limit, decision.resets_in
            ),
            retry_after: decision.resets_in.max(1) as u64,
        }),
        (principal, _) => principal,
    };
    if let Ok(principal) = &principal {
        record_last_use(engine, principal);
    }
    Authenticated { principal, rate }
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
