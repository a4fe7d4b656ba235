//! What one booking page lets visitors take, so that nobody can fill it: each email address
//! holds at most `max_upcoming_per_email` future appointments booked through the page
//! (422), and the page takes at most `max_bookings_per_hour` bookings (429). The owner
//! sets both on the page; pages without them get the defaults.
//!
//! Both are exact under concurrency. The hourly budget is an atomic store counter (see
//! [`space_http::budget`]). An address's appointments are one item per page and address,
//! rewritten in the booking's own transaction on the version it was read at, so two
//! bookings racing for the last place cannot both commit.

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use serde_json::{Map, Value, json};
use space_auth::RateWindow;
use space_http::fields::parse_datetime;
use space_http::keys::{self, ItemKey};
use space_http::operation::Call;
use space_http::{ApiError, budget};
use space_store::{Condition, Item, Write};

use crate::appointments;

pub const DEFAULT_UPCOMING_PER_EMAIL: i64 = 3;
pub const MAX_UPCOMING_PER_EMAIL: i64 = 20;
pub const DEFAULT_BOOKINGS_PER_HOUR: i64 = 20;
pub const MAX_BOOKINGS_PER_HOUR: i64 = 1000;

/// The uniqueness kind of the per-address items.
const HOLDINGS_KIND: &str = "booking-page-email";
/// The hourly budget's window.
const HOUR_SECONDS: i64 = 3600;
/// A holdings item outlives the last appointment it lists by this much, then TTL tidies it.
const HOLDINGS_GRACE_DAYS: i64 = 7;

/// A page's limits as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    pub upcoming_per_email: usize,
    pub bookings_per_hour: u32,
}

impl PageLimits {
    pub fn of(page: &Item) -> PageLimits {
        let number = |field: &str, default: i64, max: i64| {
            page.body
                .get(field)
                .and_then(Value::as_i64)
                .unwrap_or(default)
                .clamp(1, max)
        };
        PageLimits {
            upcoming_per_email: number(
                "max_upcoming_per_email",
                DEFAULT_UPCOMING_PER_EMAIL,
                MAX_UPCOMING_PER_EMAIL,
            ) as usize,
            bookings_per_hour: number(
                "max_bookings_per_hour",
                DEFAULT_BOOKINGS_PER_HOUR,
                MAX_BOOKINGS_PER_HOUR,
            ) as u32,
        }
    }
}

/// A booking made on a public page: which page, and its limits.
pub struct PageBooking {
    pub page_id: String,
    pub limits: PageLimits,
}

impl PageBooking {
    /// Spends one booking of the page's hourly budget; 429 with `Retry-After` once spent.
    /// Spent before the booking's transaction, so an attempt that then loses its slot to
    /// another visitor (409) has spent one too: the budget never lets more through.
    pub async fn spend_hour(&self, call: &Call) -> Result<(), ApiError> {
        let window = RateWindow::of(call.engine.now(), HOUR_SECONDS);
        let counter = keys::space_counter(
            call.space_id()?,
            &format!("booking-page#{}", self.page_id),
            window.start,
        );
        let decision = budget::spend(&call.engine, &counter, &window, self.limits.bookings_per_hour).await?;
        if decision.allowed {
            return Ok(());
        }
        Err(budget::refusal(
            &decision,
            format!(
                "This booking page takes at most {} bookings an hour, and that many were made; nothing was booked. Try again in {} s.",
                decision.limit, decision.resets_in
            ),
        ))
    }

    /// What `email` holds on this page now: its confirmed appointments that have not
    /// started. Each listed appointment is read again, so a cancelled, deleted or
    /// rescheduled one counts as it is now.
    pub async fn holdings(&self, call: &Call, email: &str, now: DateTime<Utc>) -> Result<Holdings, ApiError> {
        let key = keys::unique(call.space_id()?, HOLDINGS_KIND, &format!("{}#{email}", self.page_id));
        let stored = call.engine.store().get(&key.pk, &key.sk).await?;
        let listed: Vec<String> = stored
            .as_ref()
            .and_then(|item| item.body.get("appointments"))
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let resource = appointments();
        let loaded = join_all(listed.iter().map(|id| resource.load(call, id))).await;
        let mut upcoming = Vec::new();
        for (id, result) in listed.into_iter().zip(loaded) {
            let item = match result {
                Ok(item) => item,
                Err(ApiError::NotFound(_)) => continue,
                Err(error) => return Err(error),
            };
            let confirmed = item.body.get("status").and_then(Value::as_str) == Some("confirmed");
            let start = item.body.get("start").and_then(Value::as_str).and_then(parse_datetime);
            if let (true, Some(start)) = (confirmed, start)
                && start > now
            {
                upcoming.push((id, start));
            }
        }
        Ok(Holdings {
            key,
            version: stored.map(|item| item.version),
            upcoming,
        })
    }
}

/// An address's upcoming appointments on one page, as read.
pub struct Holdings {
    key: ItemKey,
    version: Option<u64>,
    upcoming: Vec<(String, DateTime<Utc>)>,
}

impl Holdings {
    /// Refuses one more when the address already holds as many as the page allows.
    pub fn check(&self, limits: &PageLimits, email: &str) -> Result<(), ApiError> {
        let held = self.upcoming.len();
        if held < limits.upcoming_per_email {
            return Ok(());
        }
        Err(ApiError::invalid_field(
            "contact",
            format!(
                "{email} already has {held} upcoming appointments on this booking page, the most it allows ({}); nothing was booked",
                limits.upcoming_per_email
            ),
        ))
    }

    /// The write that adds `appointment_id`, conditioned on the holdings being unchanged
    /// since they were read.
    pub fn adding(&self, appointment_id: &str, start: DateTime<Utc>) -> Write {
        let mut ids: Vec<Value> = self.upcoming.iter().map(|(id, _)| json!(id)).collect();
        ids.push(json!(appointment_id));
        let last = self
            .upcoming
            .iter()
            .map(|(_, at)| *at)
            .chain([start])
            .max()
            .unwrap_or(start);
        let mut body = Map::new();
        body.insert("appointments".into(), Value::Array(ids));
        let mut item = Item::new(self.key.pk.clone(), self.key.sk.clone(), body)
            .expiring_at((last + TimeDelta::days(HOLDINGS_GRACE_DAYS)).timestamp());
        let condition = match self.version {
            Some(version) => {
                item.version = version + 1;
                Condition::Version(version)
            }
            None => Condition::NotExists,
        };
        Write::put(item, condition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: Value) -> Item {
        Item::new("pk", "bpage_1", body.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn pages_without_limits_get_the_defaults_and_the_schema_says_so() {
        let defaults = PageLimits::of(&page(json!({"name": "Old page"})));
        assert_eq!(defaults.upcoming_per_email, DEFAULT_UPCOMING_PER_EMAIL as usize);
        assert_eq!(defaults.bookings_per_hour, DEFAULT_BOOKINGS_PER_HOUR as u32);
        let set = PageLimits::of(&page(
            json!({"max_upcoming_per_email": 1, "max_bookings_per_hour": 5000}),
        ));
        assert_eq!(
            (set.upcoming_per_email, set.bookings_per_hour),
            (1, MAX_BOOKINGS_PER_HOUR as u32)
        );
        for field in crate::booking_pages().fields {
            let default = match field.name {
                "max_upcoming_per_email" => DEFAULT_UPCOMING_PER_EMAIL,
                "max_bookings_per_hour" => DEFAULT_BOOKINGS_PER_HOUR,
                _ => continue,
            };
            assert!(
                field.description.contains(&format!("{default} when absent")),
                "{}",
                field.name
            );
        }
    }
}
