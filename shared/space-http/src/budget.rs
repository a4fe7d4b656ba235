//! Budgets: how often something may happen in a window (requests of a key or a client
//! address, failed key lookups of an address, bookings of a page). Each is one atomic
//! store counter per window, so the count is exact however many requests race, and a
//! refusal is a 429 with `Retry-After` like every other limit.

use space_auth::{RateDecision, RateWindow};
use space_store::StoreError;

use crate::engine::Engine;
use crate::error::ApiError;
use crate::keys::ItemKey;

/// The most one counter item is given per window: DynamoDB writes one item about 1,000
/// times a second, so a budget above this (a provider's callbacks, 120,000 a minute) is
/// split over several items ([`shards`]).
pub const SHARD_LIMIT: u32 = 30_000;

/// The most counters one budget is split over: a limit far above any request rate (a
/// bench key's `u32::MAX`) gets bigger shares, not more counters.
pub const MAX_SHARDS: u32 = 16;

/// How many counters `limit` is split over.
fn shard_count(limit: u32) -> u32 {
    limit.div_ceil(SHARD_LIMIT).clamp(1, MAX_SHARDS)
}

/// Counter `shard` of `count` for `counter`, with its share of `limit` (the shares add up
/// to `limit`).
fn shard(counter: &ItemKey, limit: u32, count: u32, shard: u32) -> (ItemKey, u32) {
    let share = limit / count + u32::from(shard < limit % count);
    let key = ItemKey {
        pk: counter.pk.clone(),
        sk: format!("{}#{shard}", counter.sk),
    };
    (key, share)
}

/// The counters `limit` is split over, each with its share (the shares add up to `limit`):
/// `counter` itself when one is enough, else `counter#0`, `counter#1`, ….
pub fn shards(counter: &ItemKey, limit: u32) -> Vec<(ItemKey, u32)> {
    let count = shard_count(limit);
    if count == 1 {
        return vec![(counter.clone(), limit)];
    }
    (0..count).map(|n| shard(counter, limit, count, n)).collect()
}

/// Counts one use of `counter` in `window` and judges it against `limit`. A sharded budget
/// starts at a random shard and moves on while the shard it counted on is full, so it stays
/// exact: a use is refused only once every shard gave all of its share.
pub async fn spend(
    engine: &Engine,
    counter: &ItemKey,
    window: &RateWindow,
    limit: u32,
) -> Result<RateDecision, StoreError> {
    let count = shard_count(limit);
    // One counter (every key at its usual limits): counted as it is.
    if count == 1 {
        let used = engine
            .store()
            .increment(&counter.pk, &counter.sk, 1, window.expires_at())
            .await?;
        return Ok(window.decide(used, limit));
    }
    let first = rand::random_range(0..count);
    let mut last = None;
    for step in 0..count {
        let (key, share) = shard(counter, limit, count, (first + step) % count);
        let used = engine
            .store()
            .increment(&key.pk, &key.sk, 1, window.expires_at())
            .await?;
        let decision = window.decide(used, share);
        if decision.allowed {
            // What is left of the whole budget, judged from this shard.
            let left = decision.remaining.saturating_mul(u64::from(count));
            return Ok(RateDecision {
                limit: u64::from(limit),
                remaining: left.min(u64::from(limit)),
                ..decision
            });
        }
        last = Some(decision);
    }
    Ok(RateDecision {
        limit: u64::from(limit),
        remaining: 0,
        ..last.unwrap_or_else(|| window.decide(1, 0))
    })
}

/// The 429 for a spent budget; `why` says which budget and when it refills.
pub fn refusal(decision: &RateDecision, why: impl Into<String>) -> ApiError {
    ApiError::RateLimited {
        message: why.into(),
        retry_after: decision.resets_in.max(1) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_split_into_shares_that_add_up() {
        let counter = ItemKey {
            pk: "RATE#hook".into(),
            sk: "203.0.113.1#2026-12-06T04:00".into(),
        };
        assert_eq!(shards(&counter, 600), vec![(counter.clone(), 600)]);
        assert_eq!(shards(&counter, SHARD_LIMIT).len(), 1);
        let split = shards(&counter, 120_001);
        assert_eq!(split.len(), 5);
        // A limit far above any rate gets bigger shares, not more counters.
        let huge = shards(&counter, u32::MAX);
        assert_eq!(huge.len(), MAX_SHARDS as usize);
        assert_eq!(
            huge.iter().map(|(_, share)| u64::from(*share)).sum::<u64>(),
            u64::from(u32::MAX)
        );
        assert_eq!(split.iter().map(|(_, share)| share).sum::<u32>(), 120_001);
        assert!(split.iter().all(|(_, share)| *share <= SHARD_LIMIT));
        assert_eq!(split[4].0.sk, format!("{}#4", counter.sk));
    }
}
