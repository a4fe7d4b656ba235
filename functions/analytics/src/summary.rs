//! The summary of a period, counted from the Space's events in one pass over the feed
//! between the period's two times (event ids are ordered by the time they were minted).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use space_http::ApiError;
use space_http::events::{EVENT_ID_PREFIX, TAIL_OVERLAP_MS};
use space_http::fields::{format_datetime, parse_datetime};
use space_http::ids::first_at;
use space_http::keys;
use space_http::operation::{Call, Reply};
use space_store::{Item, Query, SortRange};

use crate::Period;

/// Events read per store query.
const PAGE: usize = 1000;

pub fn schema() -> Value {
    let count = |what: &str| json!({"type": "integer", "minimum": 0, "description": what});
    json!({
        "type": "object",
        "required": ["from", "to", "contacts_created", "form_submissions", "messages_in", "messages_out",
                     "median_first_response_seconds", "first_responses", "posts_published", "appointments_booked"],
        "properties": {
            "from": {"type": "string", "format": "date-time"},
            "to": {"type": "string", "format": "date-time"},
            "contacts_created": count("Contacts created, by keys, imports, forms and inbound messages."),
            "form_submissions": count("Form submissions received."),
            "messages_in": count("Inbox messages received from contacts."),
            "messages_out": count("Inbox replies sent (queued) to contacts."),
            "median_first_response_seconds": {
                "type": ["number", "null"],
                "description": "The median time from a contact's message that waited for an answer to the thread's next reply, both in the period; null when there was none."
            },
            "first_responses": count("How many waits the median is taken over."),
            "posts_published": count("Social posts that went live."),
            "appointments_booked": count("Appointments booked.")
        }
    })
}

/// What one pass over the feed counts.
#[derive(Debug, Default, PartialEq)]
pub struct Tally {
    pub contacts_created: u64,
    pub form_submissions: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub posts_published: u64,
    pub appointments_booked: u64,
    /// Per thread: when its oldest unanswered inbound message came.
    waiting: HashMap<String, DateTime<Utc>>,
    /// Seconds from a wait's start to its answer.
    responses: Vec<f64>,
}

impl Tally {
    /// Counts one event (oldest first).
    pub fn add(&mut self, kind: &str, data: &Value, at: DateTime<Utc>) {
        let thread = || data.get("thread_id").and_then(Value::as_str).map(str::to_owned);
        match kind {
            "contact.created" => self.contacts_created += 1,
            "form.submission.created" => self.form_submissions += 1,
            "social_post.published" => self.posts_published += 1,
            "appointment.created" => self.appointments_booked += 1,
            "message.received" => {
                self.messages_in += 1;
                if let Some(thread) = thread() {
                    self.waiting.entry(thread).or_insert(at);
                }
            }
            "message.queued" => {
                self.messages_out += 1;
                if let Some(since) = thread().and_then(|thread| self.waiting.remove(&thread)) {
                    self.responses
                        .push((at - since).num_milliseconds().max(0) as f64 / 1000.0);
                }
            }
            _ => {}
        }
    }

    /// The median of the first responses, if any.
    pub fn median_response(&mut self) -> Option<f64> {
        if self.responses.is_empty() {
            return None;
        }
        self.responses.sort_by(f64::total_cmp);
        let middle = self.responses.len() / 2;
        Some(if self.responses.len() % 2 == 1 {
            self.responses[middle]
        } else {
            (self.responses[middle - 1] + self.responses[middle]) / 2.0
        })
    }
}

fn millis(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp_millis()).unwrap_or(0)
}

/// Counts the events of `space` created in `period`.
pub async fn tally(call: &Call, space: &str, period: Period) -> Result<Tally, ApiError> {
    // Ids are minted just before their event commits: read a little wider than the period
    // and keep what the events' own times put inside it.
    let range = SortRange::Between(
        first_at(EVENT_ID_PREFIX, millis(period.from).saturating_sub(TAIL_OVERLAP_MS)),
        first_at(EVENT_ID_PREFIX, millis(period.to).saturating_add(TAIL_OVERLAP_MS)),
    );
    let partition = keys::events_partition(space);
    let mut tally = Tally::default();
    let mut after = None;
    loop {
        let page = call
            .engine
            .store()
            .query(
                Query::partition(partition.clone())
                    .range(range.clone())
                    .after(after)
                    .limit(PAGE),
            )
            .await?;
        for event in &page.items {
            count(&mut tally, event, period);
        }
        match page.last_sk {
            Some(last) => after = Some(last),
            None => return Ok(tally),
        }
    }
}

fn count(tally: &mut Tally, event: &Item, period: Period) {
    let Some(at) = event
        .body
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
    else {
        return;
    };
    if at < period.from || at >= period.to {
        return;
    }
    let kind = event.body.get("type").and_then(Value::as_str).unwrap_or_default();
    tally.add(kind, event.body.get("data").unwrap_or(&Value::Null), at);
}

pub async fn get(call: Call) -> Result<Reply, ApiError> {
    let period = Period::of_summary(&call)?;
    let space = call.space_id()?.to_owned();
    let mut tally = tally(&call, &space, period).await?;
    let median = tally.median_response();
    Ok(Reply::ok(json!({
        "from": format_datetime(period.from),
        "to": format_datetime(period.to),
        "contacts_created": tally.contacts_created,
        "form_submissions": tally.form_submissions,
        "messages_in": tally.messages_in,
        "messages_out": tally.messages_out,
        "median_first_response_seconds": median,
        "first_responses": tally.responses.len(),
        "posts_published": tally.posts_published,
        "appointments_booked": tally.appointments_booked,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn a_first_response_is_the_wait_of_the_oldest_unanswered_message() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let at = |seconds: i64| start + TimeDelta::seconds(seconds);
        let mut tally = Tally::default();
        let thread = |id: &str| json!({"thread_id": id});
        tally.add("message.received", &thread("a"), at(0));
        tally.add("message.received", &thread("a"), at(30));
        tally.add("message.queued", &thread("a"), at(60));
        tally.add("message.queued", &thread("a"), at(90));
        tally.add("message.received", &thread("b"), at(100));
        tally.add("message.queued", &thread("b"), at(400));
        tally.add("message.received", &thread("c"), at(500));
        assert_eq!((tally.messages_in, tally.messages_out), (4, 3));
        assert_eq!(
            tally.responses,
            vec![60.0, 300.0],
            "a second reply is no first response; c waits"
        );
        assert_eq!(tally.median_response(), Some(180.0));
        assert_eq!(Tally::default().median_response(), None);
    }
}
