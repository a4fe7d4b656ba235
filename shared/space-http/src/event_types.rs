//! Every type of event the API writes, in one table: what the feed, webhooks and realtime
//! carry, what a webhook may subscribe to, which can start an automation, and what the
//! documentation lists. A change that writes an event of a type missing here fails in a
//! debug build ([`crate::events::event_write`]).

use std::sync::LazyLock;

use crate::events::TypePattern;

/// One type of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// `contact.created`: the resource's name, then what happened.
    pub name: &'static str,
    /// What it means, in one sentence.
    pub about: &'static str,
    /// Whether an automation may be triggered by it. Left out: changes automations make
    /// themselves (so none sets off another in a loop), and the owner's own changes (keys,
    /// secrets, connections, the Space).
    pub starts_automations: bool,
}

impl EventType {
    const fn new(name: &'static str, about: &'static str) -> EventType {
        EventType {
            name,
            about,
            starts_automations: false,
        }
    }

    const fn starts_automations(mut self) -> EventType {
        self.starts_automations = true;
        self
    }
}

/// The table, by name.
pub const ALL: &[EventType] = &[
    EventType::new("ad_campaign.created", "An ad campaign was created."),
    EventType::new("ad_campaign.deleted", "An ad campaign was deleted."),
    EventType::new("ad_campaign.updated", "An ad campaign was changed."),
    EventType::new("agent.created", "An agent was created."),
    EventType::new("agent.deleted", "An agent was deleted."),
    EventType::new("agent.updated", "An agent was changed."),
    EventType::new("app.code_updated", "An app's code was replaced."),
    EventType::new("app.created", "An app was created."),
    EventType::new("app.deleted", "An app was deleted."),
    EventType::new("app.published", "An app was published."),
    EventType::new("app.schema_updated", "An app's data schema was replaced."),
    EventType::new("app.updated", "An app was changed."),
    EventType::new("appointment.cancelled", "An appointment was cancelled."),
    EventType::new("appointment.created", "An appointment was created.").starts_automations(),
    EventType::new("appointment.deleted", "An appointment was deleted.").starts_automations(),
    EventType::new("appointment.rescheduled", "An appointment moved to another time."),
    EventType::new("appointment.updated", "An appointment was changed.").starts_automations(),
    EventType::new("appointment_type.created", "An appointment type was created."),
    EventType::new("appointment_type.deleted", "An appointment type was deleted."),
    EventType::new("appointment_type.updated", "An appointment type was changed."),
    EventType::new("approval.approved", "The owner approved a live action."),
    EventType::new("approval.failed", "An approved live action failed."),
    EventType::new("approval.performed", "An approved live action was done."),
    EventType::new("approval.rejected", "The owner rejected a live action."),
    EventType::new("approval.requested", "A live action waits for the owner's approval."),
    EventType::new("article.created", "A knowledge article was created."),
    EventType::new("article.deleted", "A knowledge article was deleted."),
    EventType::new("article.updated", "A knowledge article was changed."),
    EventType::new("automation.created", "An automation was created."),
    EventType::new("automation.deleted", "An automation was deleted."),
    EventType::new("automation.run.failed", "An automation run stopped at a failed step."),
    EventType::new("automation.run.started", "An automation started a run."),
    EventType::new("automation.run.succeeded", "An automation run finished every step."),
    EventType::new("automation.updated", "An automation was changed."),
    EventType::new("booking_page.created", "A booking page was created."),
    EventType::new("booking_page.deleted", "A booking page was deleted."),
    EventType::new("booking_page.updated", "A booking page was changed."),
    EventType::new("calendar.feed_disabled", "The calendar's iCal feed was turned off."),
    EventType::new("calendar.feed_rotated", "The calendar's iCal feed has a new link."),
    EventType::new("calendar_event.created", "A calendar event was created.").starts_automations(),
    EventType::new("calendar_event.deleted", "A calendar event was deleted.").starts_automations(),
    EventType::new("calendar_event.updated", "A calendar event was changed.").starts_automations(),
    EventType::new("call.created", "A call was logged.").starts_automations(),
    EventType::new("campaign.cancelled", "A campaign was cancelled."),
    EventType::new("campaign.completed", "A campaign handled every recipient."),
    EventType::new("campaign.created", "A messaging campaign was created."),
    EventType::new("campaign.deleted", "A messaging campaign was deleted."),
    EventType::new("campaign.launched", "A campaign was launched."),
    EventType::new("campaign.paused", "A campaign was paused."),
    EventType::new("campaign.resumed", "A paused campaign goes on."),
    EventType::new("campaign.started", "A campaign began sending."),
    EventType::new("campaign.updated", "A messaging campaign was changed."),
    EventType::new("character.created", "A character was created."),
    EventType::new("character.deleted", "A character was deleted."),
    EventType::new("character.updated", "A character was changed."),
    EventType::new("connection.created", "A connection was created."),
    EventType::new("connection.deleted", "A connection was deleted."),
    EventType::new("connection.updated", "A connection was changed."),
    EventType::new("contact.created", "A contact was created.").starts_automations(),
    EventType::new("contact.deleted", "A contact was deleted.").starts_automations(),
    EventType::new("contact.note.created", "A note was added to a contact.").starts_automations(),
    EventType::new("contact.note.deleted", "A note on a contact was deleted."),
    EventType::new("contact.note.updated", "A note on a contact was changed."),
    EventType::new("contact.opted_in", "A contact agreed to messages again."),
    EventType::new("contact.opted_out", "A contact asked for no more messages."),
    EventType::new("contact.updated", "A contact was changed.").starts_automations(),
    EventType::new("document.created", "A document was created.").starts_automations(),
    EventType::new("document.deleted", "A document was deleted."),
    EventType::new("document.updated", "A document was changed.").starts_automations(),
    EventType::new("form.created", "A form was created."),
    EventType::new("form.deleted", "A form was deleted."),
    EventType::new("form.submission.created", "A visitor submitted a form.").starts_automations(),
    EventType::new("form.updated", "A form was changed."),
    EventType::new("integration.created", "An integration was created."),
    EventType::new("integration.deleted", "An integration was deleted."),
    EventType::new("integration.updated", "An integration was changed."),
    EventType::new("invoice.created", "An invoice was created."),
    EventType::new("invoice.deleted", "An invoice was deleted."),
    EventType::new("invoice.updated", "An invoice was changed."),
    EventType::new("key.created", "An API key was created."),
    EventType::new("key.expiring", "An API key expires within a week."),
    EventType::new("key.revoked", "An API key was revoked."),
    EventType::new("mail.bounced", "A mail message bounced (the address is suppressed)."),
    EventType::new(
        "mail.complained",
        "A recipient marked a mail message as spam (suppressed).",
    ),
    EventType::new("mail.delivered", "A recipient's server took a mail message."),
    EventType::new("mail.failed", "A mail message could not be sent."),
    EventType::new("mail.queued", "A mail message was queued.").starts_automations(),
    EventType::new("mail.sent", "The provider accepted a mail message."),
    EventType::new("media.created", "A media item was created."),
    EventType::new("media.deleted", "A media item was deleted."),
    EventType::new("media.updated", "A media item was changed."),
    EventType::new("media.uploaded", "A media item's upload finished."),
    EventType::new("meeting.created", "A meeting was created."),
    EventType::new("meeting.deleted", "A meeting was deleted."),
    EventType::new("meeting.updated", "A meeting was changed."),
    EventType::new("message.delivered", "A message reached the customer."),
    EventType::new("message.failed", "A message could not be sent."),
    EventType::new("message.queued", "A reply was queued on a channel."),
    EventType::new("message.read", "The customer read a message."),
    EventType::new("message.received", "A customer wrote in on a channel.").starts_automations(),
    EventType::new("message.sent", "The channel accepted a message."),
    EventType::new("page.created", "A page was created."),
    EventType::new("page.deleted", "A page was deleted."),
    EventType::new("page.published", "A page went live.").starts_automations(),
    EventType::new("page.unpublished", "A page went offline."),
    EventType::new("page.updated", "A page was changed."),
    EventType::new("secret.deleted", "A secret was deleted."),
    EventType::new("secret.updated", "A secret was changed."),
    EventType::new("sms.delivered", "An SMS reached the phone."),
    EventType::new("sms.failed", "An SMS could not be sent."),
    EventType::new("sms.queued", "An SMS was queued.").starts_automations(),
    EventType::new("sms.sent", "The provider accepted an SMS."),
    EventType::new("sms.undelivered", "The carrier could not deliver an SMS."),
    EventType::new("social_account.updated", "A social account was changed."),
    EventType::new("social_post.created", "A social post was created."),
    EventType::new("social_post.deleted", "A social post was deleted."),
    EventType::new("social_post.failed", "A social post could not be published.").starts_automations(),
    EventType::new("social_post.published", "A social post went live.").starts_automations(),
    EventType::new("social_post.publishing", "A social post is being published."),
    EventType::new(
        "social_post.retrying",
        "Publishing a social post failed and will be tried again.",
    ),
    EventType::new("social_post.scheduled", "A social post was scheduled."),
    EventType::new("social_post.unscheduled", "A scheduled social post went back to draft."),
    EventType::new("social_post.updated", "A social post was changed."),
    EventType::new("social_slot.created", "A queue slot was created."),
    EventType::new("social_slot.deleted", "A queue slot was deleted."),
    EventType::new("social_slot.updated", "A queue slot was changed."),
    EventType::new("space.created", "The Space was created."),
    EventType::new("space.updated", "The Space was changed."),
    EventType::new("table.created", "A table was created."),
    EventType::new("table.deleted", "A table was deleted."),
    EventType::new("table.record.created", "A table record was created.").starts_automations(),
    EventType::new("table.record.deleted", "A table record was deleted."),
    EventType::new("table.record.updated", "A table record was changed.").starts_automations(),
    EventType::new("table.updated", "A table was changed."),
    EventType::new("tag.created", "A tag was created."),
    EventType::new("tag.deleted", "A tag was deleted."),
    EventType::new("tag.deleting", "A tag is being removed from its items."),
    EventType::new("tag.renamed", "A tag was renamed on every item."),
    EventType::new("tag.renaming", "A tag's rename is being applied to its items."),
    EventType::new("tag.updated", "A tag was changed."),
    EventType::new("task.created", "A task was created.").starts_automations(),
    EventType::new("task.deleted", "A task was deleted.").starts_automations(),
    EventType::new("task.updated", "A task was changed.").starts_automations(),
    EventType::new("template.approved", "A message template was approved."),
    EventType::new("template.created", "A message template was created."),
    EventType::new("template.deleted", "A message template was deleted."),
    EventType::new("template.rejected", "A message template was rejected."),
    EventType::new("template.submitted", "A message template was submitted for approval."),
    EventType::new("template.updated", "A message template was changed."),
    EventType::new("thread.closed", "An inbox thread was closed.").starts_automations(),
    EventType::new("thread.created", "An inbox thread was created.").starts_automations(),
    EventType::new("thread.note.created", "A note on a thread was created."),
    EventType::new("thread.note.deleted", "A note on a thread was deleted."),
    EventType::new("thread.note.updated", "A note on a thread was changed."),
    EventType::new("thread.reopened", "An inbox thread was opened again."),
    EventType::new("thread.snoozed", "An inbox thread was snoozed."),
    EventType::new("thread.updated", "An inbox thread was changed."),
    EventType::new("user.created", "A member was created."),
    EventType::new("user.deleted", "A member was deleted."),
    EventType::new("user.updated", "A member was changed."),
    EventType::new("wallet.updated", "The wallet was changed."),
    EventType::new("wallet_transaction.created", "A wallet transaction was created."),
    EventType::new("wallet_transaction.deleted", "A wallet transaction was deleted."),
    EventType::new("wallet_transaction.updated", "A wallet transaction was changed."),
    EventType::new("webhook.created", "A webhook endpoint was created."),
    EventType::new("webhook.deleted", "A webhook endpoint was deleted."),
    EventType::new(
        "webhook.disabled",
        "A webhook endpoint was turned off (410, or five days of failures).",
    ),
    EventType::new(
        "webhook.secret_rotated",
        "A webhook endpoint's signing secret was replaced.",
    ),
    EventType::new("webhook.test", "A test event sent to a webhook endpoint."),
    EventType::new("webhook.updated", "A webhook endpoint was changed."),
    EventType::new("whiteboard.created", "A whiteboard was created."),
    EventType::new("whiteboard.deleted", "A whiteboard was deleted."),
    EventType::new("whiteboard.updated", "A whiteboard was changed."),
];

/// Whether the API writes events of type `name`.
pub fn is_known(name: &str) -> bool {
    ALL.iter().any(|event| event.name == name)
}

/// The types an automation may be triggered by.
pub fn automation_triggers() -> impl Iterator<Item = &'static str> {
    ALL.iter()
        .filter(|event| event.starts_automations)
        .map(|event| event.name)
}

/// Every subscription entry that selects at least one type: `*`, each prefix of a type
/// with `.*` (`contact.*`, `contact.note.*`), and each type; what a webhook's `events`
/// takes, as its schema's `enum`.
pub fn patterns() -> &'static [String] {
    static PATTERNS: LazyLock<Vec<String>> = LazyLock::new(|| {
        let mut patterns = vec!["*".to_owned()];
        for event in ALL {
            let segments: Vec<&str> = event.name.split('.').collect();
            for end in 1..segments.len() {
                let wildcard = format!("{}.*", segments[..end].join("."));
                if !patterns.contains(&wildcard) {
                    patterns.push(wildcard);
                }
            }
        }
        patterns.extend(ALL.iter().map(|event| event.name.to_owned()));
        patterns
    });
    &PATTERNS
}

/// Whether `pattern` is a well-formed entry that selects at least one type.
pub fn selects_any(pattern: &str) -> bool {
    TypePattern::parse(pattern).is_ok_and(|parsed| ALL.iter().any(|event| parsed.matches(event.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_well_formed_and_once_each() {
        let names: Vec<&str> = ALL.iter().map(|event| event.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted by name, each once");
        for event in ALL {
            assert!(
                matches!(TypePattern::parse(event.name), Ok(TypePattern::Exact(_))),
                "{}",
                event.name
            );
            assert!(event.about.ends_with('.'), "{}", event.name);
        }
    }

    #[test]
    fn patterns_are_exactly_the_entries_that_select_a_type() {
        for pattern in patterns() {
            assert!(selects_any(pattern), "{pattern}");
        }
        for pattern in ["contact.*", "contact.note.*", "automation.run.*", "*", "page.published"] {
            assert!(patterns().iter().any(|p| p == pattern), "{pattern}");
        }
        for pattern in ["contcat.created", "contact.note", "con.*", "contact.created.*", ""] {
            assert!(!selects_any(pattern), "{pattern}");
            assert!(!patterns().iter().any(|p| p == pattern), "{pattern}");
        }
    }
}
