//! Requests per space key per UTC day, kept [`KEEP_DAYS`] days, for the owner's usage view.
//!
//! Counted in this process's memory and written in batches, off the request path. The
//! rate-limit item is no place for them: it is a one-minute counter that lives two minutes
//! (the embedded store keeps counters in memory only), and keeping minute counters for 90
//! days would mean summing up to 1,440 items per key and day on every read. A batch costs
//! one read-modify-write per key and day every [`FLUSH_AFTER_SECONDS`] at most, whatever
//! the traffic; the price is that a count reaches the store up to that late, and that a
//! process stopped without a flush (a Lambda environment reclaimed) loses its last batch.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_store::{Condition, Item, Query, SortRange, Store, StoreError, Write};

use crate::engine::Engine;
use crate::keys;

/// How many days of counts are kept, today included.
pub const KEEP_DAYS: u64 = 90;
/// A batch is written once its oldest count is this old (or at [`FLUSH_AT_ENTRIES`]).
pub const FLUSH_AFTER_SECONDS: i64 = 10;
/// Past this many keys and days waiting, the batch is written at once.
const FLUSH_AT_ENTRIES: usize = 1_000;
/// Tries of one read-modify-write against other processes' batches.
const WRITE_TRIES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Counted {
    space: String,
    key_id: String,
    day: NaiveDate,
}

/// What waits, by key id: looked up by the request's `&str`, so counting a known key
/// allocates nothing.
#[derive(Default)]
struct Pending {
    keys: HashMap<String, KeyCounts>,
    /// Keys and days waiting, over all keys.
    entries: usize,
    /// When the oldest count still waiting was made (unix seconds).
    oldest: Option<i64>,
}

struct KeyCounts {
    space: String,
    /// Usually one day; two around midnight.
    days: Vec<(NaiveDate, u64)>,
}

impl Pending {
    fn add(&mut self, space: &str, key_id: &str, day: NaiveDate, requests: u64) {
        if !self.keys.contains_key(key_id) {
            self.keys.insert(
                key_id.to_owned(),
                KeyCounts {
                    space: space.to_owned(),
                    days: Vec::new(),
                },
            );
        }
        let Some(key) = self.keys.get_mut(key_id) else {
            return;
        };
        match key.days.iter_mut().find(|(counted, _)| *counted == day) {
            Some((_, count)) => *count += requests,
            None => {
                key.days.push((day, requests));
                self.entries += 1;
            }
        }
    }
}

/// The counts this process has not written yet.
#[derive(Default)]
pub struct UsageTally {
    pending: Mutex<Pending>,
    /// One batch written at a time, so that a flush that returns has written every count
    /// made before it started.
    writing: tokio::sync::Mutex<()>,
}

impl UsageTally {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one request; true when the batch is due.
    fn count(&self, space: &str, key_id: &str, now: DateTime<Utc>) -> bool {
        let mut pending = self.lock();
        let at = now.timestamp();
        let oldest = *pending.oldest.get_or_insert(at);
        pending.add(space, key_id, now.date_naive(), 1);
        at - oldest >= FLUSH_AFTER_SECONDS || pending.entries >= FLUSH_AT_ENTRIES
    }

    fn take(&self) -> Vec<(Counted, u64)> {
        let taken = std::mem::take(&mut *self.lock());
        taken
            .keys
            .into_iter()
            .flat_map(|(key_id, counts)| {
                let space = counts.space;
                counts.days.into_iter().map(move |(day, requests)| {
                    let counted = Counted {
                        space: space.clone(),
                        key_id: key_id.clone(),
                        day,
                    };
                    (counted, requests)
                })
            })
            .collect()
    }

    /// Puts back what could not be written, for the next batch.
    fn restore(&self, unwritten: Vec<(Counted, u64)>, now: i64) {
        if unwritten.is_empty() {
            return;
        }
        let mut pending = self.lock();
        pending.oldest = Some(pending.oldest.map_or(now, |oldest| oldest.min(now)));
        for (counted, requests) in unwritten {
            pending.add(&counted.space, &counted.key_id, counted.day, requests);
        }
    }
}

/// Counts an admitted request of a space key, and starts writing the batch when it is due.
pub fn count_request(engine: &Engine, principal: &Principal) {
    let Some(space) = principal.space_id.as_deref() else {
        return;
    };
    if engine.usage().count(space, &principal.key_id, engine.now()) {
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(error) = flush(&engine).await {
                tracing::warn!(%error, "usage counts not written; kept for the next batch");
            }
        });
    }
}

/// Writes every count this process holds. Counts that fail stay for the next batch.
pub async fn flush(engine: &Engine) -> Result<(), StoreError> {
    let tally = engine.usage();
    let _one_at_a_time = tally.writing.lock().await;
    let mut unwritten = Vec::new();
    let mut failure = None;
    for (counted, requests) in tally.take() {
        if let Err(error) = add(engine.store(), &counted, requests).await {
            unwritten.push((counted, requests));
            failure.get_or_insert(error);
        }
    }
    tally.restore(unwritten, engine.now().timestamp());
    failure.map_or(Ok(()), Err)
}

/// Adds `requests` to one key's day, against batches other processes write at once. The
/// counts of a deleted Space are dropped.
async fn add(store: &dyn Store, counted: &Counted, requests: u64) -> Result<(), StoreError> {
    let day = counted.day.format("%Y-%m-%d").to_string();
    let key = keys::key_usage(&counted.space, &counted.key_id, &day);
    for _ in 0..WRITE_TRIES {
        let written = match store.get(&key.pk, &key.sk).await? {
            Some(mut item) => {
                let seen = item.version;
                let total = item.body.get("requests").and_then(Value::as_u64).unwrap_or(0) + requests;
                item.version += 1;
                item.body.insert("requests".into(), json!(total));
                store.put(item, Condition::Version(seen)).await
            }
            None => {
                let mut body = Map::new();
                body.insert("key_id".into(), json!(counted.key_id));
                body.insert("date".into(), json!(day));
                body.insert("requests".into(), json!(requests));
                let item = Item::new(key.pk.clone(), key.sk.clone(), body).expiring_at(forgotten_at(counted.day));
                // Only while the Space lives: a batch written after its purge would leave
                // counts behind.
                let space = keys::space_meta(&counted.space);
                store
                    .transact(vec![
                        Write::check(space.pk, space.sk, Condition::Exists),
                        Write::put(item, Condition::NotExists),
                    ])
                    .await
            }
        };
        match written {
            Err(StoreError::TransactionConflict { index: 0 }) => return Ok(()),
            Err(error) if error.is_condition_failure() || error == StoreError::Contention => continue,
            other => return other,
        }
    }
    Err(StoreError::Contention)
}

/// When a day's count may go: once it has left the kept window.
fn forgotten_at(day: NaiveDate) -> i64 {
    day.checked_add_days(Days::new(KEEP_DAYS + 1))
        .and_then(|end| end.and_hms_opt(0, 0, 0))
        .map_or(i64::MAX, |end| end.and_utc().timestamp())
}

/// One key's requests on each day of the kept window that had any, newest first.
pub async fn days(
    store: &dyn Store,
    space: &str,
    key_id: &str,
    today: NaiveDate,
) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
    let first = today.checked_sub_days(Days::new(KEEP_DAYS - 1)).unwrap_or(today);
    between(store, space, key_id, first, today).await
}

/// One key's requests on each day from `first` to `last`, newest first.
pub async fn between(
    store: &dyn Store,
    space: &str,
    key_id: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
    let from = keys::key_usage(space, key_id, &first.format("%Y-%m-%d").to_string());
    let to = keys::key_usage(space, key_id, &last.format("%Y-%m-%d").to_string());
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query(
                Query::partition(from.pk.clone())
                    .range(SortRange::Between(from.sk.clone(), to.sk.clone()))
                    .after(after)
                    .limit(100),
            )
            .await?;
        for item in &page.items {
            let date = item
                .body
                .get("date")
                .and_then(Value::as_str)
                .and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok());
            let requests = item.body.get("requests").and_then(Value::as_u64).unwrap_or(0);
            if let Some(date) = date {
                found.push((date, requests));
            }
        }
        match page.last_sk {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    found.sort_by_key(|(day, _)| std::cmp::Reverse(*day));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_batch_is_due_once_its_oldest_count_has_waited() {
        let tally = UsageTally::default();
        let start = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        assert!(!tally.count("spc_1", "key_1", start));
        assert!(!tally.count("spc_1", "key_1", start + chrono::Duration::seconds(9)));
        assert!(tally.count("spc_1", "key_1", start + chrono::Duration::seconds(10)));
        let taken = tally.take();
        assert_eq!(taken.iter().map(|(_, n)| n).sum::<u64>(), 3);
        assert!(!tally.count("spc_1", "key_1", start + chrono::Duration::seconds(11)));
    }

    #[test]
    fn unwritten_counts_join_the_next_batch() {
        let tally = UsageTally::default();
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        tally.count("spc_1", "key_1", now);
        let failed = tally.take();
        tally.count("spc_1", "key_1", now);
        tally.restore(failed, now.timestamp());
        let again = tally.take();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, 2);
        assert!(tally.take().is_empty());
    }

    #[test]
    fn counts_fall_on_their_utc_day() {
        let tally = UsageTally::default();
        let late = Utc.with_ymd_and_hms(2026, 12, 5, 23, 59, 59).unwrap();
        tally.count("spc_1", "key_1", late);
        tally.count("spc_1", "key_1", late + chrono::Duration::seconds(1));
        let mut days: Vec<_> = tally.take().into_iter().map(|(c, n)| (c.day, n)).collect();
        days.sort();
        assert_eq!(
            days,
            vec![
                (NaiveDate::from_ymd_opt(2026, 12, 5).unwrap(), 1),
                (NaiveDate::from_ymd_opt(2026, 12, 6).unwrap(), 1)
            ]
        );
    }

    #[test]
    fn a_day_is_forgotten_after_the_kept_window() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let gone = Utc.timestamp_opt(forgotten_at(day), 0).unwrap();
        assert_eq!(gone.date_naive(), NaiveDate::from_ymd_opt(2027, 3, 6).unwrap());
    }
}
