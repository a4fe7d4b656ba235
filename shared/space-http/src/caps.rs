//! Caps on live actions ([`space_auth::Cap`]), counted exactly. A call to an operation
//! that declares a cap, made with a key that limits it, runs over a store that adds the
//! day's counter to the handler's first successful transaction — the action's own writes
//! (a capped handler makes its change with `transact`) —
//! as a count that fails the transaction at the limit. So a refused or failed action takes
//! nothing, two racing for the last unit cannot both have it, and past the cap the action
//! is not done at all: the caller gets 429 `LIVE_ACTION_CAP` until the next UTC day.
//!
//! A call is one use unless its handler says it is more ([`CapUnits`]: a cluster's
//! publish is one use per post). A handler whose first transaction has no room for the
//! count spends it in a transaction of its own just before: the action may then fail with
//! its use spent, never happen without it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use space_auth::Cap;
use space_store::hooked::{Hooked, WriteHook};
use space_store::{Store, StoreError, Write};

use crate::error::ApiError;
use crate::fields::format_datetime;
use crate::keys;

/// How often a transaction that met another one on the counter is tried again.
const CONTENTION_ROUNDS: u32 = 12;
/// A counter outlives its day by this much before the store may drop it.
const KEPT_AFTER: TimeDelta = TimeDelta::days(2);

/// When the UTC day of `now` ends: when a cap resets.
pub fn resets_at(now: DateTime<Utc>) -> DateTime<Utc> {
    let midnight = now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    midnight + TimeDelta::days(1)
}

/// What a capped operation's description says of its cap.
pub fn rule(cap: Cap) -> String {
    format!(
        "Counts as one use of the `{cap}` cap of a key that limits it (`limits` at minting): past the key's uses \
         for the UTC day it answers 429 `LIVE_ACTION_CAP` with `Retry-After` until the next UTC midnight, and \
         nothing is done."
    )
}

/// The answer past a cap.
pub fn reached(cap: Cap, limit: u32, now: DateTime<Utc>) -> ApiError {
    let resets = resets_at(now);
    ApiError::CapReached {
        cap,
        limit,
        resets_at: format_datetime(resets),
        retry_after: u64::try_from((resets - now).num_seconds().max(1)).unwrap_or(1),
    }
}

/// How many uses of its cap a call's action is: one, unless the handler sets more before
/// its first transaction. Shared between the call and the store that counts it.
#[derive(Debug, Clone, Default)]
pub struct CapUnits(Arc<AtomicU64>);

impl CapUnits {
    pub fn set(&self, units: u64) {
        self.0.store(units, Ordering::SeqCst);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst).max(1)
    }
}

/// The hook of the store a capped call runs over ([`CapStore`]).
pub struct CapCount {
    counter: keys::ItemKey,
    limit: u64,
    units: CapUnits,
    expires_at: i64,
    /// Whether a transaction already carried the count (later ones go through as they are).
    counted: AtomicBool,
    /// Whether the count refused a transaction: the call is over its cap.
    refused: AtomicBool,
}

/// The store a capped call runs over.
pub type CapStore = Hooked<CapCount>;

/// What a capped call counts: `units` of `key_id`'s `limit` on `cap` for the day of `now`.
pub struct Counted<'a> {
    pub space: &'a str,
    pub key_id: &'a str,
    pub cap: Cap,
    pub limit: u32,
    pub units: CapUnits,
    pub now: DateTime<Utc>,
}

/// `inner`, counting the call's action as `counted` says.
pub fn cap_store(inner: Arc<dyn Store>, counted: Counted<'_>) -> CapStore {
    Hooked::new(inner, CapCount::new(counted))
}

impl CapCount {
    fn new(counted: Counted<'_>) -> CapCount {
        let Counted {
            space,
            key_id,
            cap,
            limit,
            units,
            now,
        } = counted;
        let day = now.format("%Y-%m-%d").to_string();
        CapCount {
            counter: keys::cap_counter(space, key_id, cap.as_str(), &day),
            limit: u64::from(limit),
            units,
            expires_at: (resets_at(now) + KEPT_AFTER).timestamp(),
            counted: AtomicBool::new(false),
            refused: AtomicBool::new(false),
        }
    }

    /// Whether the cap refused the call's action.
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl WriteHook for CapCount {
    async fn write(&self, inner: &dyn Store, writes: Vec<Write>, _single: bool) -> Result<(), StoreError> {
        if self.counted.load(Ordering::SeqCst) {
            return inner.transact(writes).await;
        }
        if writes.len() >= space_store::MAX_TRANSACTION_WRITES {
            self.count(inner, Vec::new()).await?;
            return inner.transact(writes).await;
        }
        self.count(inner, writes).await
    }

    /// A single put or delete is bookkeeping around the action (an idempotency claim, its
    /// release), never the action: it goes through uncounted.
    fn hooks_single_writes(&self) -> bool {
        false
    }
}

impl CapCount {
    /// Writes `writes` with the call's units added to the day's counter, all or nothing.
    async fn count(&self, inner: &dyn Store, mut writes: Vec<Write>) -> Result<(), StoreError> {
        let at = writes.len();
        writes.push(Write::Count {
            pk: self.counter.pk.clone(),
            sk: self.counter.sk.clone(),
            limit: self.limit,
            expires_at: self.expires_at,
            by: self.units.get(),
        });
        let mut round = 0;
        loop {
            match inner.transact(writes.clone()).await {
                Ok(()) => {
                    self.counted.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                Err(StoreError::TransactionConflict { index }) if index == at => {
                    self.refused.store(true, Ordering::SeqCst);
                    return Err(StoreError::TransactionConflict { index });
                }
                // Another request's transaction held the counter: nothing was written, so
                // the same writes may go again.
                Err(StoreError::Contention) if round < CONTENTION_ROUNDS => {
                    round += 1;
                    // Jittered, so that the calls that collided do not collide again.
                    let ceiling = 2u64 << round.min(6);
                    tokio::time::sleep(Duration::from_millis(rand::random_range(1..=ceiling))).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_reset_at_the_next_utc_midnight() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T23:59:30Z")
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or_default();
        assert!(format_datetime(resets_at(now)).starts_with("2026-12-06T00:00:00"));
        let ApiError::CapReached { retry_after, .. } = reached(Cap::PhoneSms, 5, now) else {
            panic!("a cap error");
        };
        assert_eq!(retry_after, 30);
    }
}
