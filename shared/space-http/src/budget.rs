//! Budgets: how often something may happen in a window (requests of a key or a client
//! address, failed key lookups of an address, bookings of a page). Each is one atomic
//! store counter per window, so the count is exact however many requests race, and a
//! refusal is a 429 with `Retry-After` like every other limit.

use space_auth::{RateDecision, RateWindow};
use space_store::StoreError;

use crate::engine::Engine;
use crate::error::ApiError;
use crate::keys::ItemKey;

/// Counts one use of `counter` in `window` and judges it against `limit`.
pub async fn spend(
    engine: &Engine,
    counter: &ItemKey,
    window: &RateWindow,
    limit: u32,
) -> Result<RateDecision, StoreError> {
    let count = engine
        .store()
        .increment(&counter.pk, &counter.sk, 1, window.expires_at())
        .await?;
    Ok(window.decide(count, limit))
}

/// The 429 for a spent budget; `why` says which budget and when it refills.
pub fn refusal(decision: &RateDecision, why: impl Into<String>) -> ApiError {
    ApiError::RateLimited {
        message: why.into(),
        retry_after: decision.resets_in.max(1) as u64,
    }
}
