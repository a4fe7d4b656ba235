//! Who carries SMS out. One implementation per provider: `sandbox` (the default locally
//! and in tests) records what it sent, one record per message, reports delivery later as a
//! carrier's receipt would, and fails every message to the recipients the owner names
//! (`POST …/connections/{id}/sandbox`: `fail_recipients` fail at once,
//! `undelivered_recipients` are sent and reported undelivered); `aws` sends through AWS End
//! User Messaging SMS, whose receipts come back through its event destination
//! ([`crate::notifications`]).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::config::Config;
use aws_sdk_pinpointsmsvoicev2::config::retry::RetryConfig;
use aws_sdk_pinpointsmsvoicev2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_pinpointsmsvoicev2::types::MessageType;
use chrono::TimeDelta;
use serde_json::{Map, Value, json};
use space_connections::sandbox_lists;
use space_http::Engine;
use space_http::fields::format_datetime;
use space_http::keys;
use space_store::{Condition, Item, StoreError, Write};
use tokio::sync::OnceCell;

/// What the provider answered a send with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub provider_message_id: String,
    /// Receipts the provider will report, each after a wait (`delivered` or
    /// `undelivered`). A real provider reports them through its own events instead and
    /// lists none here.
    pub receipts: Vec<(&'static str, TimeDelta)>,
}

pub use space_connections::outbound::SendError;

/// One SMS as a provider needs it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The message's id in the Space (`sms_…`).
    pub id: &'a str,
    /// The Space's number (E.164).
    pub from: &'a str,
    /// The recipient (E.164).
    pub to: &'a str,
    pub text: &'a str,
}

impl<'a> Outgoing<'a> {
    /// The SMS a stored message describes.
    pub fn of(message: &'a Item) -> Outgoing<'a> {
        let text = |name: &str| message.body.get(name).and_then(Value::as_str).unwrap_or_default();
        Outgoing {
            id: &message.sk,
            from: text("from"),
            to: text("to"),
            text: text("text"),
        }
    }
}

/// Sends SMS through one kind of provider.
#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// Whether asking again for a message it may have sent is safe (it answers with the
    /// first send): a provider without an idempotency key is asked once.
    fn repeatable(&self) -> bool;

    async fn send(&self, engine: &Engine, space: &str, connection: &Item, sms: Outgoing<'_>)
    -> Result<Sent, SendError>;
}

/// The provider of a phone connection.
pub async fn provider_for(connection: &Item) -> Arc<dyn SmsProvider> {
    match connection.body.get("provider").and_then(Value::as_str) {
        Some("aws") => aws_from_environment().await,
        _ => Arc::new(Sandbox),
    }
}

/// The AWS adapter over the process's AWS configuration (region and credentials from the
/// environment, as every AWS client here), built once.
async fn aws_from_environment() -> Arc<dyn SmsProvider> {
    static CLIENT: OnceCell<Arc<AwsSms>> = OnceCell::const_new();
    CLIENT
        .get_or_init(|| async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(
                AwsSms::new(aws_sdk_pinpointsmsvoicev2::Client::new(&config))
                    .with_configuration_set(configuration_set()),
            )
        })
        .await
        .clone()
}

/// Where Terraform names the End User Messaging configuration set whose event destination
/// reports delivery receipts.
pub const CONFIGURATION_SET_ENV: &str = "SMS_CONFIGURATION_SET";

/// The configuration set of this process's sends: `None` (unset or empty) sends without
/// one, and then no receipt comes back (locally, or an account without the destination).
fn configuration_set() -> Option<String> {
    std::env::var(CONFIGURATION_SET_ENV)
        .ok()
        .filter(|name| !name.is_empty())
}

/// Records messages in the Space instead of reaching a carrier.
pub struct Sandbox;

/// Where the sandbox keeps what it sent, one item per message.
pub const SENT: &str = "sandbox_sms";
/// When the sandbox's receipt comes: a few seconds after sending.
pub const RECEIPT_AFTER: TimeDelta = TimeDelta::seconds(2);

/// Whether the owner listed `to` under `list` of the sandbox's orders.
fn sandbox_sent(connection: &Item, record: &Item, to: &str) -> Sent {
    let receipt = if sandbox_lists(connection, "undelivered_recipients", to) {
        "undelivered"
    } else {
        "delivered"
    };
    Sent {
        provider_message_id: record
            .body
            .get("provider_message_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        receipts: vec![(receipt, RECEIPT_AFTER)],
    }
}

#[async_trait]
impl SmsProvider for Sandbox {
    fn repeatable(&self) -> bool {
        true
    }

    /// Asked twice for one message (a run that died after sending), it sends once.
    async fn send(
        &self,
        engine: &Engine,
        space: &str,
        connection: &Item,
        sms: Outgoing<'_>,
    ) -> Result<Sent, SendError> {
        let key = keys::resource(&keys::collection_partition(space, SENT), sms.id);
        if let Some(done) = engine.store().get(&key.pk, &key.sk).await? {
            return Ok(sandbox_sent(connection, &done, sms.to));
        }
        if sandbox_lists(connection, "fail_recipients", sms.to) {
            return Err(SendError::Permanent {
                code: "RECIPIENT_UNREACHABLE".into(),
                message: format!(
                    "The carrier could not reach {} (sandbox: told to fail this recipient).",
                    sms.to
                ),
            });
        }
        let mut body = Map::new();
        body.insert("message_id".into(), json!(sms.id));
        body.insert("connection_id".into(), json!(connection.sk));
        body.insert("provider_message_id".into(), json!(format!("sbx_{}", sms.id)));
        body.insert("from".into(), json!(sms.from));
        body.insert("to".into(), json!(sms.to));
        body.insert("text".into(), json!(sms.text));
        body.insert("sent_at".into(), json!(format_datetime(engine.now())));
        let record = Item::new(key.pk.clone(), key.sk.clone(), body);
        match engine
            .store()
            .transact(vec![Write::put(record.clone(), Condition::NotExists)])
            .await
        {
            Ok(()) => Ok(sandbox_sent(connection, &record, sms.to)),
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
                let done = engine.store().get(&key.pk, &key.sk).await?;
                done.map(|done| sandbox_sent(connection, &done, sms.to))
                    .ok_or_else(|| SendError::Transient("the sent record vanished".into()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// AWS End User Messaging SMS (`SendTextMessage`): the number is the origination identity,
/// every message transactional. Each send names the configuration set (when one is
/// configured) and carries its Space and its id as the message's `Context`
/// ([`notifications::SPACE_KEY`], [`notifications::MESSAGE_KEY`]): the carrier's receipts
/// go through the set's event destination to the `receipts` function with the context
/// echoed, which names the message without an index from AWS's ids to ours. The API has no
/// idempotency token, so a message is asked for once ([`SmsProvider::repeatable`]), with the
/// SDK's own retries off: an ask whose answer is lost waits for the carrier's receipt.
///
/// [`notifications::SPACE_KEY`]: crate::notifications::SPACE_KEY
/// [`notifications::MESSAGE_KEY`]: crate::notifications::MESSAGE_KEY
pub struct AwsSms {
    client: aws_sdk_pinpointsmsvoicev2::Client,
    configuration_set: Option<String>,
}

/// Error codes of `SendTextMessage` refused before sending, worth another try.
const AWS_TRANSIENT: &[&str] = &["ThrottlingException", "ServiceUnavailable"];
/// Error codes of `SendTextMessage` after which the message may have gone.
const AWS_UNKNOWN: &[&str] = &["InternalServerException"];

impl AwsSms {
    pub fn new(client: aws_sdk_pinpointsmsvoicev2::Client) -> AwsSms {
        AwsSms {
            client,
            configuration_set: None,
        }
    }

    /// Sends through the configuration set `name` (`None`: through none).
    pub fn with_configuration_set(mut self, name: Option<String>) -> AwsSms {
        self.configuration_set = name;
        self
    }
}

#[async_trait]
impl SmsProvider for AwsSms {
    fn repeatable(&self) -> bool {
        false
    }

    async fn send(
        &self,
        _engine: &Engine,
        space: &str,
        _connection: &Item,
        sms: Outgoing<'_>,
    ) -> Result<Sent, SendError> {
        use crate::notifications::{MESSAGE_KEY, SPACE_KEY};
        let answer = self
            .client
            .send_text_message()
            .origination_identity(sms.from)
            .destination_phone_number(sms.to)
            .message_body(sms.text)
            .message_type(MessageType::Transactional)
            .set_configuration_set_name(self.configuration_set.clone())
            .context(SPACE_KEY, space)
            .context(MESSAGE_KEY, sms.id)
            .customize()
            .config_override(Config::builder().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match answer {
            Ok(output) => match output.message_id() {
                Some(id) if !id.is_empty() => Ok(Sent {
                    provider_message_id: id.to_owned(),
                    receipts: Vec::new(),
                }),
                _ => Err(SendError::Unknown(
                    "SendTextMessage answered without a MessageId".into(),
                )),
            },
            Err(failure) => {
                let service = failure.as_service_error();
                let answer =
                    service.map(|error| (error.code().unwrap_or("Unknown"), error.message().unwrap_or("refused")));
                Err(SendError::from_failure(
                    "AWS End User Messaging",
                    answer,
                    format!("SendTextMessage: {}", DisplayErrorContext(&failure)),
                    AWS_TRANSIENT,
                    AWS_UNKNOWN,
                ))
            }
        }
    }
}
