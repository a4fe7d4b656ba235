//! Phone: the Space's numbers, their call log, and SMS. Numbers are connections of kind
//! `phone`, connected by the owner (account API, `/spaces/{space}/connections`); a key
//! lists them and the calls on them (`phone:read`) and sends SMS from them (`phone:run`),
//! each message leaving through its number's provider on the worker ([`delivery`]). The
//! carrier's receipts come back from the provider: the sandbox reports them itself, AWS End
//! User Messaging through its events ([`notifications`], read by the `receipts` function).

pub mod calls;
pub mod delivery;
pub mod notifications;
pub mod numbers;
pub mod provider;
pub mod sms;

use axum::Router;
use http::{Method, StatusCode};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Effect, handler};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

pub use delivery::{Receipt, Send};

/// The job that sends a queued SMS.
pub const SEND: &str = "phone.sms_send";
/// The job that records a provider's receipt (delivered, undelivered).
pub const RECEIPT: &str = "phone.sms_receipt";

/// What a filter on a phone number takes beyond its pattern.
const NUMBER_FILTER_RULE: &str = "A phone number filter (`from`, `to`) must be valid in its country's numbering plan \
     (libphonenumber's metadata), otherwise 422; it matches however the number was written.";

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Phone, action))
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = vec![
        Operation::new(
            "phone_numbers_list",
            Method::GET,
            "/phone/numbers",
            access(Action::Read),
            Effect::Read,
            "List the Space's phone numbers and what each can do (connected by the owner)",
            handler(numbers::list),
        )
        .answers(StatusCode::OK, || list_schema(numbers::schema())),
    ];
    for mut operation in calls::resource().operations() {
        match operation.name.as_str() {
            "phone_calls_list" => {
                operation.summary = "The call log (filter by from, to, direction)".into();
                operation.description = Some(NUMBER_FILTER_RULE.into());
                operation.response = Some(Schema::lazy(|| list_schema(calls::schema())));
            }
            "phone_calls_get" => {
                operation.summary = "Get one call of the log".into();
                operation.response = Some(Schema::lazy(calls::schema));
            }
            // The log is what the provider reports: a key reads it, never writes it.
            _ => continue,
        }
        operations.push(operation);
    }
    operations.push(
        Operation::new(
            "phone_sms_send",
            Method::POST,
            "/phone/sms",
            access(Action::Run),
            Effect::Live,
            "Send an SMS from one of the Space's numbers (queued, then sent by the provider)",
            handler(sms::send),
        )
        .capped(space_auth::Cap::PhoneSms)
        .with_description(sms::SEND_RULES)
        .with_body(sms::send_schema)
        .answers(StatusCode::CREATED, sms::schema),
    );
    for mut operation in sms::resource().operations() {
        match operation.name.as_str() {
            "phone_sms_list" => {
                operation.summary = "List sent SMS with their status (filter by status, to)".into();
                operation.description = Some(NUMBER_FILTER_RULE.into());
                operation.response = Some(Schema::lazy(|| list_schema(sms::schema())));
            }
            "phone_sms_get" => {
                operation.summary = "Get one SMS and its status".into();
                operation.response = Some(Schema::lazy(sms::schema));
            }
            _ => continue,
        }
        operations.push(operation);
    }
    operations
}

/// What this family's Lambda binary carries beyond the table: nothing.
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
