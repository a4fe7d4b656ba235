//! The inbox: conversations with contacts over the Space's messaging channels (WhatsApp,
//! SMS, email, Instagram, Messenger). Inbound messages arrive through the channel's
//! provider ([`inbound`]) and are threaded per contact; a key reads threads and messages
//! (`inbox:read`), assigns, tags, snoozes, closes and writes internal notes
//! (`inbox:write`), and replies within the channel's rules (`inbox:run`), the reply
//! leaving through the provider on the worker ([`delivery`]).
//!
//! Channels are connections of kind `messaging`, connected by the owner (account API,
//! `/spaces/{space}/connections`), never by a space key.

pub mod channels;
pub mod delivery;
pub mod inbound;
pub mod messages;
/// The channels' providers live in `space-connections`, shared with messaging campaigns.
pub use space_connections::messaging as provider;
pub mod threads;

use axum::Router;
use http::{Method, StatusCode};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Effect, Param, handler};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

pub use delivery::{Receipt, Send, Unsnooze};

/// The job that sends a queued reply.
pub const SEND: &str = "inbox.send";
/// The job that records a provider's receipt (delivered, read).
pub const RECEIPT: &str = "inbox.receipt";
/// The job that reopens a snoozed thread.
pub const UNSNOOZE: &str = "inbox.unsnooze";

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Inbox, action))
}

fn thread_param() -> Vec<Param> {
    vec![Param::path("id", "The thread's id.")]
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let read = access(Action::Read);
    let write = access(Action::Write);
    let run = access(Action::Run);
    let mut operations = vec![
        Operation::new(
            "inbox_channels_list",
            Method::GET,
            "/inbox/channels",
            read,
            Effect::Read,
            "List the Space's messaging channels (connected by the owner)",
            handler(channels::list),
        )
        .answers(StatusCode::OK, || list_schema(channels::schema())),
    ];
    for mut operation in threads::resource().operations() {
        match operation.name.as_str() {
            "inbox_threads_list" => {
                operation.summary =
                    "List conversation threads (filter by status, channel, assignee, tag, contact)".into();
                operation.response = Some(Schema::lazy(|| list_schema(threads::schema())));
            }
            "inbox_threads_get" => operation.response = Some(Schema::lazy(threads::schema)),
            "inbox_threads_update" => {
                operation.summary = "Assign, tag or snooze a thread".into();
                operation.description =
                    Some("`snoozed_until` must be in the future and at most 366 days ahead (422 otherwise); null wakes the thread now.".into());
                operation.handler = handler(threads::update);
                operation.body = Some(Schema::lazy(threads::update_schema));
                operation.response = Some(Schema::lazy(threads::schema));
            }
            // Threads open when a contact writes; they are closed, never deleted or replaced.
            _ => continue,
        }
        operations.push(operation);
    }
    operations.extend([
        Operation::new(
            "inbox_threads_close",
            Method::POST,
            "/inbox/threads/{id}/close",
            write,
            Effect::Update,
            "Close a thread (the contact's next message opens a new one)",
            handler(threads::close),
        )
        .with_params(thread_param())
        .with_no_input()
        .answers(StatusCode::OK, threads::schema),
        Operation::new(
            "inbox_threads_reopen",
            Method::POST,
            "/inbox/threads/{id}/reopen",
            write,
            Effect::Update,
            "Reopen a closed or snoozed thread",
            handler(threads::reopen),
        )
        .with_params(thread_param())
        .with_no_input()
        .answers(StatusCode::OK, threads::schema),
        Operation::new(
            "inbox_threads_tags_add",
            Method::POST,
            "/inbox/threads/{id}/tags",
            write,
            Effect::Update,
            "Add tags to a thread (the Space's tags, as on contacts; existing tags are kept)",
            handler(threads::add_tags),
        )
        .with_description(format!(
            "A thread holds at most {} tags, counting those it has already: tags that would take it past that are 422.",
            space_http::fields::MAX_TAGS
        ))
        .with_params(thread_param())
        .with_body(threads::tags_schema)
        .answers(StatusCode::OK, threads::schema),
        Operation::new(
            "inbox_threads_messages",
            Method::GET,
            "/inbox/threads/{id}/messages",
            read,
            Effect::Read,
            "List a thread's messages, oldest first",
            handler(messages::list),
        )
        .with_params(messages::list_params())
        .answers(StatusCode::OK, || list_schema(messages::schema())),
        Operation::new(
            "inbox_threads_summary",
            Method::GET,
            "/inbox/threads/{id}/summary",
            read,
            Effect::Read,
            "A thread at a glance: contact, message counts, reply window, opt-out, open tasks",
            handler(threads::summary),
        )
        .with_params(thread_param())
        .answers(StatusCode::OK, threads::summary_schema),
        Operation::new(
            "inbox_threads_reply",
            Method::POST,
            "/inbox/threads/{id}/reply",
            run,
            Effect::Live,
            "Reply to the contact on the thread's channel (queued, then sent by the provider)",
            handler(messages::reply),
        )
        .capped(space_auth::Cap::InboxReply)
        .with_description(
            "Send exactly one of `text` or `template_id` (422 otherwise). A closed thread is 409. A contact who opted out of the channel is 422 `RECIPIENT_OPTED_OUT`. On WhatsApp \
             free-form text goes only within 24 hours of the contact's last message, else 422 \
             `REPLY_WINDOW_CLOSED`; an approved template (`template_id`, exactly its `parameters`, in one of the channel's `languages` when it lists them) goes any time, \
             and one not approved is 422 `TEMPLATE_NOT_APPROVED`. SMS text is counted in segments (GSM-7 160, \
             153 per part; UCS-2 70, 67 per part), at most 10, and the answer carries `segments`. The message \
             moves `queued` → `sent` → `delivered` → `read` (or `failed`) with `message.*` events, passing \
             `sending` while the provider has it.",
        )
        .with_params(thread_param())
        .with_body(messages::reply_schema)
        .answers(StatusCode::CREATED, messages::schema),
    ]);
    operations.extend(threads::notes().operations());
    operations.push(inbound::hook());
    operations
}

/// What this family's Lambda binary carries beyond the table: the signing keys, to check
/// providers' callbacks.
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE_AND_SIGNING_KEYS;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
