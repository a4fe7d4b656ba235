//! How many streams one key holds open at once. A stream reads the store ten times a second
//! for up to 14 minutes (in AWS it also holds a function instance), so a key's requests a
//! minute would otherwise open streams without end. Each stream holds one of its key's
//! [`STREAMS_PER_KEY`] slots: a store item leased for [`LEASE`] and renewed while the stream
//! runs, so the limit holds however many processes serve streams. A stream that ends gives
//! its slot back; one whose process died frees it when its lease runs out.

use std::time::Duration;

use serde_json::Map;
use space_http::{ApiError, Engine, keys};
use space_store::{Condition, Item, StoreError};

/// Streams one key may hold open at once.
pub const STREAMS_PER_KEY: u64 = 5;
/// How long a slot stays taken without a renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often a running stream renews its slot.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);

/// One taken slot.
pub struct Slot {
    engine: Engine,
    pk: String,
    sk: String,
    version: u64,
}

/// Takes a free slot of `key_id`, or answers 429 when all are taken.
pub async fn claim(engine: &Engine, key_id: &str) -> Result<Slot, ApiError> {
    let pk = keys::stream_slots(key_id);
    let first = rand::random_range(0..STREAMS_PER_KEY);
    for step in 0..STREAMS_PER_KEY {
        let sk = ((first + step) % STREAMS_PER_KEY).to_string();
        // A claim starts at a random version: a holder whose lease ran out and whose slot
        // was taken cannot renew the taker's.
        let version = rand::random_range(1..u64::MAX / 2);
        let item = leased(engine, &pk, &sk, version);
        match engine.store().put(item, Condition::NotExists).await {
            Ok(()) => {
                return Ok(Slot {
                    engine: engine.clone(),
                    pk,
                    sk,
                    version,
                });
            }
            Err(StoreError::ConditionFailed) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::RateLimited {
        message: format!(
            "This API key already holds {STREAMS_PER_KEY} realtime streams open: close one, or retry once one ends."
        ),
        retry_after: LEASE.as_secs(),
    })
}

fn leased(engine: &Engine, pk: &str, sk: &str, version: u64) -> Item {
    let until = engine.now().timestamp() + LEASE.as_secs() as i64;
    Item::new(pk, sk, Map::new()).with_version(version).expiring_at(until)
}

impl Slot {
    /// Extends the lease; `false` when the slot was lost (its lease ran out and another
    /// stream took it), and the stream should end.
    pub async fn renew(&mut self) -> bool {
        let next = leased(&self.engine, &self.pk, &self.sk, self.version + 1);
        match self.engine.store().put(next, Condition::Version(self.version)).await {
            Ok(()) => {
                self.version += 1;
                true
            }
            Err(StoreError::ConditionFailed) => false,
            // The store did not answer: keep streaming, the next renewal tries again.
            Err(error) => {
                tracing::warn!(%error, "realtime stream could not renew its slot");
                true
            }
        }
    }

    /// Gives the slot back (unless another stream has it by now).
    pub async fn release(self) {
        let deleted = self
            .engine
            .store()
            .delete(&self.pk, &self.sk, Condition::Version(self.version))
            .await;
        if let Err(error) = deleted.or_else(|error| match error {
            StoreError::ConditionFailed => Ok(()),
            other => Err(other),
        }) {
            tracing::warn!(%error, "realtime stream could not give its slot back; its lease runs out");
        }
    }
}
