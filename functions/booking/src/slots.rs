//! Slot claims: how "never double-booked" is made exact. An appointment blocks its time
//! plus its buffers; that span is cut into 5-minute slices, and each slice is a uniqueness
//! claim (`keys::unique(space, "booking-slot", "2099-03-02T10:05Z")`) written with
//! `Condition::NotExists` in the appointment's own transaction. Two appointments whose
//! spans overlap anywhere share a slice, so exactly one of them commits, on every backend.

use std::collections::BTreeSet;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Map, json};
use space_http::keys;
use space_store::{Condition, Item, Query, SortRange, Write};

use crate::availability::GRANULARITY_MINUTES;

/// What the claims are called in `keys::unique`.
pub const CLAIM_KIND: &str = "booking-slot";
/// The longest an appointment may block, buffers included. A reschedule releases the old
/// slices and claims the new ones in one transaction: 2 writes for the appointment and its
/// event plus at most 2 × 49 slices keeps it within the store's 100 writes.
pub const MAX_BLOCK_MINUTES: i64 = 240;
/// Claims outlive the time they block by this much, then the store's TTL tidies them.
const CLAIM_GRACE_DAYS: i64 = 7;

fn slice() -> TimeDelta {
    TimeDelta::minutes(i64::from(GRANULARITY_MINUTES))
}

/// Whether `at` falls on a 5-minute mark (seconds and below zero).
pub fn on_grid(at: DateTime<Utc>) -> bool {
    at.duration_trunc(slice()).is_ok_and(|floor| floor == at)
}

/// The slices `[from, until)` touches: from the mark at or before `from` to the last mark
/// before `until`.
pub fn slices(from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut at = from.duration_trunc(slice()).unwrap_or(from);
    let mut all = Vec::new();
    while at < until {
        all.push(at);
        at += slice();
    }
    all
}

/// The sort key of a slice: minute-precision UTC, which sorts in time order.
pub fn slice_name(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%MZ").to_string()
}

/// The claim of one slice for `appointment_id`.
pub fn claim(space: &str, at: DateTime<Utc>, appointment_id: &str, blocked_until: DateTime<Utc>) -> Write {
    let key = keys::unique(space, CLAIM_KIND, &slice_name(at));
    let mut body = Map::new();
    body.insert("appointment_id".into(), json!(appointment_id));
    let expires = (blocked_until + TimeDelta::days(CLAIM_GRACE_DAYS)).timestamp();
    Write::put(
        Item::new(key.pk, key.sk, body).expiring_at(expires),
        Condition::NotExists,
    )
}

/// Gives a slice back. Only the appointment holding it ever releases it, in a transaction
/// conditioned on that appointment's version, so no condition is needed here.
pub fn release(space: &str, at: DateTime<Utc>) -> Write {
    let key = keys::unique(space, CLAIM_KIND, &slice_name(at));
    Write::delete(key.pk, key.sk, Condition::None)
}

/// The slices already claimed in `[from, until)`.
pub async fn taken(
    store: &dyn space_store::Store,
    space: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<BTreeSet<String>, space_store::StoreError> {
    let partition = keys::unique_partition(space, CLAIM_KIND);
    let range = SortRange::Between(slice_name(from), slice_name(until));
    let mut taken = BTreeSet::new();
    let mut after = None;
    loop {
        let page = store
            .query(
                Query::partition(partition.clone())
                    .range(range.clone())
                    .after(after)
                    .limit(500),
            )
            .await?;
        taken.extend(page.items.into_iter().map(|item| item.sk));
        match page.last_sk {
            Some(last) => after = Some(last),
            None => return Ok(taken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn overlapping_spans_share_a_slice_and_adjacent_ones_do_not() {
        let a = slices(at("2099-03-02T10:00:00Z"), at("2099-03-02T10:30:00Z"));
        assert_eq!(a.len(), 6);
        let b = slices(at("2099-03-02T10:25:00Z"), at("2099-03-02T10:55:00Z"));
        assert!(a.iter().any(|s| b.contains(s)));
        let c = slices(at("2099-03-02T10:30:00Z"), at("2099-03-02T11:00:00Z"));
        assert!(!a.iter().any(|s| c.contains(s)));
        // Off-grid edges round outwards.
        assert_eq!(slices(at("2099-03-02T10:02:00Z"), at("2099-03-02T10:11:00Z")).len(), 3);
        assert_eq!(slice_name(a[1]), "2099-03-02T10:05Z");
    }

    #[test]
    fn the_longest_block_fits_a_reschedule_transaction() {
        let worst = slices(
            at("2099-03-02T10:01:00Z"),
            at("2099-03-02T10:01:00Z") + TimeDelta::minutes(MAX_BLOCK_MINUTES),
        );
        assert!(
            2 + 2 * worst.len() <= space_store::MAX_TRANSACTION_WRITES,
            "{}",
            worst.len()
        );
    }

    #[test]
    fn the_grid_is_five_minutes() {
        assert!(on_grid(at("2099-03-02T10:05:00Z")));
        assert!(!on_grid(at("2099-03-02T10:07:00Z")));
        assert!(!on_grid(at("2099-03-02T10:05:30Z")));
    }
}
