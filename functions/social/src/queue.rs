//! Slots and the queue. A slot is a weekly wall-clock time in a time zone (`mon 09:30
//! Europe/Berlin`), for one account or all. `next_slot` gives each post the first future
//! slot its account has not filled; the queue lists scheduled posts in publishing order.
//!
//! Both read a per-account index of the scheduled posts (`<due millis>#<post id>`),
//! written in the transaction that schedules, unschedules, publishes or deletes the post,
//! so neither scans the posts.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_connections as connections;
use space_http::fields::{CustomKind, Field, FieldKind, WriteMode, format_datetime, parse_datetime, validate};
use space_http::keys;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{Filter, Resource};
use space_http::zones::{check_time_zone, parse_zone, resolve, time_zone_schema};
use space_http::{ApiError, Engine};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};

use crate::accounts;

pub const SLOTS: &str = "social_slots";
/// The partition segment of the scheduled-posts index (one partition per account).
const SCHEDULE: &str = "social_schedule";
pub const WEEKDAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Slots read per Space; more are ignored by `next_slot`.
pub const MAX_SLOTS: usize = 1_000;
/// How far `next_slot` looks before it gives up: a year of weeks.
const HORIZON_WEEKS: i64 = 53;
/// Index entries read per page while walking the filled slots.
const INDEX_PAGE: usize = 500;
/// The most scheduled posts `GET /social/queue` answers with.
pub const MAX_QUEUE: usize = 200;

pub fn slots() -> Resource {
    Resource {
        domain: Domain::Social,
        name: "social_slots",
        collection: SLOTS,
        path: "/social/slots",
        item_param: "id",
        singular: "slot",
        plural: "slots",
        event_prefix: "social_slot",
        id_prefix: "slot",
        parent: None,
        fields: vec![
            Field::new("weekday", FieldKind::Enum(WEEKDAYS), "The day of the week, local to time_zone.").required(),
            Field::new(
                "time",
                FieldKind::Custom(CustomKind {
                    schema: || json!({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "examples": ["09:30"]}),
                    check: check_time,
                }),
                "The wall-clock time, `HH:MM`, local to time_zone (it stays 09:30 across daylight saving).",
            )
            .required(),
            Field::new(
                "time_zone",
                FieldKind::Custom(CustomKind {
                    schema: time_zone_schema,
                    check: check_time_zone,
                }),
                "An IANA time zone, like Europe/Berlin.",
            )
            .required(),
            Field::new(
                "account_id",
                FieldKind::Text { max: 100 },
                "The account this slot is for; absent, every account.",
            ),
        ],
        filters: vec![Filter::Equals {
            param: "account_id",
            field: "account_id",
            kind: FieldKind::Text { max: 100 },
        }],
        rules: None,
    }
}

fn check_time(value: &Value) -> Result<Value, String> {
    let text = value.as_str().ok_or("must be a string like 09:30")?;
    clock(text)
        .map(|_| json!(text))
        .ok_or_else(|| "must be a 24-hour time like 09:30".into())
}

/// Minutes after midnight of `HH:MM`.
fn clock(text: &str) -> Option<u32> {
    let (hours, minutes) = text.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// A slot write handler (`mode`: create, PATCH or PUT), refusing a slot for an account the
/// Space does not have (beside whatever else is wrong with the body).
pub fn guarded(write: Handler, mode: WriteMode) -> Handler {
    handler(move |call: Call| {
        let write = write.clone();
        async move {
            let mut errors = validate(&slots().fields, &call.body, mode).err().unwrap_or_default();
            if let Some(account) = call.body.get("account_id").and_then(Value::as_str)
                && accounts::load(&call, account).await.is_err()
            {
                errors.insert(
                    "account_id".into(),
                    vec![format!("there is no social account `{account}` in this Space")],
                );
            }
            if !errors.is_empty() {
                return Err(ApiError::validation(errors));
            }
            write(call).await
        }
    })
}

/// The index entry of a scheduled post.
fn entry_key(space: &str, account: &str, at: DateTime<Utc>, post: &str) -> keys::ItemKey {
    keys::resource(
        &keys::child_partition(space, SCHEDULE, account),
        &format!("{:013}#{post}", at.timestamp_millis().max(0)),
    )
}

/// The post's place in its account's queue, if it is scheduled.
fn entry_of(space: &str, post: &Item) -> Option<keys::ItemKey> {
    let scheduled = matches!(
        post.body.get("status").and_then(Value::as_str),
        Some("scheduled" | "publishing")
    );
    let account = post.body.get("account_id").and_then(Value::as_str)?;
    let at = post
        .body
        .get("scheduled_at")
        .and_then(Value::as_str)
        .and_then(parse_datetime)?;
    scheduled.then(|| entry_key(space, account, at, &post.sk))
}

/// The index writes that follow a post from `before` to `after` (either absent for a
/// create or a delete): the entry moves with the time and goes when the post leaves the
/// queue.
pub fn index_writes(space: &str, before: Option<&Item>, after: Option<&Item>) -> Vec<Write> {
    let old = before.and_then(|post| entry_of(space, post));
    let new = after.and_then(|post| entry_of(space, post));
    if old == new {
        return Vec::new();
    }
    let mut writes = Vec::new();
    if let Some(old) = old {
        writes.push(Write::delete(old.pk, old.sk, Condition::None));
    }
    if let (Some(new), Some(post)) = (new, after) {
        let mut body = Map::new();
        body.insert("post_id".into(), json!(post.sk));
        body.insert(
            "scheduled_at".into(),
            post.body.get("scheduled_at").cloned().unwrap_or(Value::Null),
        );
        writes.push(Write::put(Item::new(new.pk, new.sk, body), Condition::None));
    }
    writes
}

/// One slot's weekly occurrences, in order.
struct Weekly {
    zone: Tz,
    minutes: u32,
    next_date: NaiveDate,
}

impl Weekly {
    fn of(slot: &Item, now: DateTime<Utc>) -> Option<Weekly> {
        let text = |field: &str| slot.body.get(field).and_then(Value::as_str);
        let zone = parse_zone(text("time_zone")?)?;
        let minutes = clock(text("time")?)?;
        let weekday = WEEKDAYS.iter().position(|d| Some(*d) == text("weekday"))? as i64;
        let today = now.with_timezone(&zone).date_naive();
        let ahead = (weekday - i64::from(today.weekday().num_days_from_monday())).rem_euclid(7);
        // A day early, so today's occurrence is seen whether or not it has passed.
        let next_date = today + TimeDelta::days(ahead) - TimeDelta::days(7);
        Some(Weekly {
            zone,
            minutes,
            next_date,
        })
    }

    fn next(&mut self) -> Option<DateTime<Utc>> {
        let at = resolve(self.zone, self.next_date, self.minutes);
        self.next_date += TimeDelta::days(7);
        at
    }
}

/// The slots of the Space that apply to `account`.
async fn slots_for(engine: &Engine, space: &str, account: &str) -> Result<Vec<Item>, StoreError> {
    let partition = keys::collection_partition(space, SLOTS);
    let page = engine
        .store()
        .query(Query::partition(partition).limit(MAX_SLOTS))
        .await?;
    Ok(page
        .items
        .into_iter()
        .filter(|slot| match slot.body.get("account_id").and_then(Value::as_str) {
            Some(only) => only == account,
            None => true,
        })
        .collect())
}

/// The first slot of `account` after `now` that no scheduled post of the account fills;
/// `None` without slots (or with every slot of the next year filled).
pub async fn next_slot(
    engine: &Engine,
    space: &str,
    account: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut weeklies: Vec<Weekly> = slots_for(engine, space, account)
        .await?
        .iter()
        .filter_map(|slot| Weekly::of(slot, now))
        .collect();
    let mut heap = BinaryHeap::new();
    for (index, weekly) in weeklies.iter_mut().enumerate() {
        if let Some(at) = weekly.next() {
            heap.push(Reverse((at, index)));
        }
    }
    let horizon = now + TimeDelta::weeks(HORIZON_WEEKS);
    let partition = keys::child_partition(space, SCHEDULE, account);
    let start = format!("{:013}", now.timestamp_millis().max(0));
    let mut filled: Vec<i64> = Vec::new();
    let mut position = 0;
    let mut after: Option<String> = None;
    let mut exhausted = false;
    while let Some(Reverse((at, index))) = heap.pop() {
        if at > horizon {
            return Ok(None);
        }
        if let Some(next) = weeklies[index].next() {
            heap.push(Reverse((next, index)));
        }
        if at <= now {
            continue;
        }
        let millis = at.timestamp_millis();
        // Walk the index (in time order) up to this candidate.
        loop {
            while position < filled.len() && filled[position] < millis {
                position += 1;
            }
            if position < filled.len() || exhausted {
                break;
            }
            let page = engine
                .store()
                .query(
                    Query::partition(partition.clone())
                        .range(SortRange::Between(start.clone(), "9".repeat(13)))
                        .after(after.clone())
                        .limit(INDEX_PAGE),
                )
                .await?;
            exhausted = page.last_sk.is_none();
            after = page.items.last().map(|item| item.sk.clone());
            filled.extend(
                page.items
                    .iter()
                    .filter_map(|item| item.sk.split_once('#').and_then(|(m, _)| m.parse::<i64>().ok())),
            );
        }
        if filled.get(position) != Some(&millis) {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

pub fn queue_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": crate::posts::post_schema(), "description": "Scheduled posts, in publishing order."},
            "next_free_slots": {"type": "object", "additionalProperties": {"type": ["string", "null"], "format": "date-time"}, "description": "Per account id: its next slot no post fills (null: it has no slots)."}
        },
        "required": ["data", "next_free_slots"]
    })
}

/// `GET /social/queue?account_id=`: the first scheduled posts across the Space's accounts
/// (or one), in publishing order, and each account's next free slot.
pub async fn queue(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    let accounts: Vec<String> = match call.query_param("account_id").filter(|a| !a.is_empty()) {
        Some(account) => vec![accounts::load(&call, account).await?.sk],
        None => connections::list(&call.engine, &space, accounts::KIND)
            .await?
            .into_iter()
            .map(|item| item.sk)
            .collect(),
    };
    let limit = match call.query_param("limit").filter(|l| !l.is_empty()) {
        None => 50,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_QUEUE).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", format!("must be a whole number from 1 to {MAX_QUEUE}")))?,
    };
    let now = call.engine.now();
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut next_free = Map::new();
    for account in &accounts {
        let partition = keys::child_partition(&space, SCHEDULE, account);
        let page = call
            .engine
            .store()
            .query(Query::partition(partition).limit(limit))
            .await?;
        entries.extend(page.items.into_iter().map(|item| {
            let post = item
                .body
                .get("post_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (item.sk, post)
        }));
        let free = next_slot(&call.engine, &space, account, now).await?;
        next_free.insert(
            account.clone(),
            free.map_or(Value::Null, |at| json!(format_datetime(at))),
        );
    }
    entries.sort();
    entries.truncate(limit);
    let partition = keys::collection_partition(&space, crate::posts::POSTS);
    let reads = entries
        .iter()
        .map(|(_, post)| call.engine.store().get(&partition, post));
    let posts: Vec<Value> = futures::future::try_join_all(reads)
        .await?
        .iter()
        .flatten()
        .map(Resource::render)
        .collect();
    Ok(Reply::ok(json!({"data": posts, "next_free_slots": next_free})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn slot(weekday: &str, time: &str, zone: &str) -> Item {
        let mut body = Map::new();
        body.insert("weekday".into(), json!(weekday));
        body.insert("time".into(), json!(time));
        body.insert("time_zone".into(), json!(zone));
        Item::new("p", "s", body)
    }

    fn occurrences(item: &Item, now: &str, count: usize) -> Vec<DateTime<Utc>> {
        let now = at(now);
        let mut weekly = Weekly::of(item, now).expect("a slot");
        std::iter::from_fn(|| weekly.next())
            .filter(|t| *t > now)
            .take(count)
            .collect()
    }

    #[test]
    fn a_berlin_slot_keeps_its_wall_clock_time_across_both_changes() {
        // 2027-03-28 and 2027-10-31 are the last Sundays of March and October.
        let sunday = slot("sun", "09:30", "Europe/Berlin");
        assert_eq!(
            occurrences(&sunday, "2027-03-20T12:00:00Z", 2),
            [at("2027-03-21T08:30:00Z"), at("2027-03-28T07:30:00Z")]
        );
        assert_eq!(
            occurrences(&sunday, "2027-10-23T12:00:00Z", 2),
            [at("2027-10-24T07:30:00Z"), at("2027-10-31T08:30:00Z")]
        );
        // 02:30 does not happen on the March change: it lands just after the jump.
        let night = slot("sun", "02:30", "Europe/Berlin");
        assert_eq!(
            occurrences(&night, "2027-03-27T00:00:00Z", 1),
            [at("2027-03-28T01:30:00Z")]
        );
    }

    #[test]
    fn today_counts_until_its_time_has_passed() {
        // 2027-01-04 is a Monday.
        let monday = slot("mon", "09:00", "UTC");
        assert_eq!(
            occurrences(&monday, "2027-01-04T08:00:00Z", 1),
            [at("2027-01-04T09:00:00Z")]
        );
        assert_eq!(
            occurrences(&monday, "2027-01-04T09:00:00Z", 1),
            [at("2027-01-11T09:00:00Z")]
        );
    }
}
