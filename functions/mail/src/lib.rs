//! Mail: agent mail sent from the Space's senders. Senders are connections of kind `mail`
//! (an address or a domain), connected by the owner (account API,
//! `/spaces/{space}/connections`) and verified by their provider ([`senders`]); a key with
//! `mail:write` sends from a verified one and reads what it sent, each message leaving
//! through the sender's provider on the worker ([`delivery`]). What became of each
//! recipient comes back from the provider: the sandbox reports it itself, SES through its
//! events ([`notifications`], read by the `receipts` function). Addresses that hard-bounce
//! or complain go on the Space's suppression list ([`suppressions`]), which later sends
//! respect.

pub mod delivery;
pub mod html;
pub mod messages;
pub mod notifications;
pub mod provider;
pub mod senders;
pub mod suppressions;

use axum::Router;
use http::{Method, StatusCode};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Effect, handler};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

pub use delivery::{Receipt, Send};
pub use senders::{Identity, IdentityDelete};

/// The job that sends a queued message.
pub const SEND: &str = "mail.send";
/// The job that records a provider's report (delivered, bounced, complained).
pub const RECEIPT: &str = "mail.receipt";
/// The job that registers an SES sender and reads its verification.
pub const IDENTITY: &str = "mail.identity";
/// The job that removes a disconnected SES sender's identity.
pub const IDENTITY_DELETE: &str = "mail.identity_delete";

/// The family's one scope: mail offers `write` only, which both sends and reads back what
/// was sent.
fn access() -> Access {
    Access::Space(Scope::new(Domain::Mail, Action::Write))
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = vec![
        Operation::new(
            "mail_senders_list",
            Method::GET,
            "/mail/senders",
            access(),
            Effect::Read,
            "List the Space's mail senders and whether each is verified (connected by the owner)",
            handler(senders::list),
        )
        .answers(StatusCode::OK, || list_schema(senders::schema())),
        Operation::new(
            "mail_messages_send",
            Method::POST,
            "/mail/messages",
            access(),
            Effect::Live,
            "Send a mail from one of the Space's verified senders (queued, then sent by the provider)",
            handler(messages::send),
        )
        .capped(space_auth::Cap::MailSend)
        .with_description(messages::SEND_RULES)
        .with_body(messages::send_schema)
        .answers(StatusCode::ACCEPTED, messages::schema),
    ];
    for mut operation in messages::resource().operations() {
        match operation.name.as_str() {
            "mail_messages_list" => {
                operation.summary = "List sent mail, newest first, with its status (filter by status)".into();
                operation.response = Some(Schema::lazy(|| list_schema(messages::schema())));
            }
            "mail_messages_get" => {
                operation.summary = "Get one mail message and each recipient's status".into();
                operation.response = Some(Schema::lazy(messages::schema));
            }
            // A message changes only through its provider.
            _ => continue,
        }
        operation.access = access();
        operations.push(operation);
    }
    operations
}

/// What this family's Lambda binary carries beyond the table: nothing (SES is reached from
/// the worker).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
