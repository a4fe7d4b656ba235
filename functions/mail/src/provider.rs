//! Who carries mail out. One implementation per provider: `sandbox` (the default locally
//! and in tests) records what it sent, one record per message, reports each recipient's
//! fate later as a provider's notifications would, and obeys the owner's orders
//! (`POST …/connections/{id}/sandbox`: `fail_recipients` fail the message at once,
//! `bounce_recipients` and `complain_recipients` are sent and then reported as a hard
//! bounce or a spam complaint); `ses` sends through Amazon SES (v2 `SendEmail`), whose
//! reports come back through its event destination ([`crate::notifications`]).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sesv2::config::Config;
use aws_sdk_sesv2::config::retry::RetryConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use chrono::TimeDelta;
use serde_json::{Map, Value, json};
use space_connections::sandbox_lists;
use space_http::Engine;
use space_http::fields::format_datetime;
use space_http::keys;
use space_store::{Condition, Item, StoreError, Write};
use tokio::sync::OnceCell;

/// What a recipient's provider reports after sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Delivered,
    Bounced,
    Complained,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Delivered => "delivered",
            Fate::Bounced => "bounced",
            Fate::Complained => "complained",
        }
    }

    pub fn parse(text: &str) -> Option<Fate> {
        [Fate::Delivered, Fate::Bounced, Fate::Complained]
            .into_iter()
            .find(|fate| fate.as_str() == text)
    }
}

/// What the provider answered a send with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub provider_message_id: String,
    /// What the provider will report of each recipient, after a wait. A real provider
    /// reports through its own notifications instead and lists nothing here.
    pub report: Option<(Vec<(String, Fate)>, TimeDelta)>,
}

pub use space_connections::outbound::SendError;

/// One message as a provider needs it.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The message's id in the Space (`mail_…`).
    pub id: &'a str,
    pub from: &'a str,
    pub to: Vec<&'a str>,
    pub cc: Vec<&'a str>,
    pub bcc: Vec<&'a str>,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    /// Sanitized when the message was accepted.
    pub html: Option<&'a str>,
}

fn strings<'a>(message: &'a Item, name: &str) -> Vec<&'a str> {
    message
        .body
        .get(name)
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl<'a> Outgoing<'a> {
    /// The message a stored item describes.
    pub fn of(message: &'a Item) -> Outgoing<'a> {
        let text = |name: &str| message.body.get(name).and_then(Value::as_str);
        Outgoing {
            id: &message.sk,
            from: text("from").unwrap_or_default(),
            to: strings(message, "to"),
            cc: strings(message, "cc"),
            bcc: strings(message, "bcc"),
            reply_to: text("reply_to"),
            subject: text("subject").unwrap_or_default(),
            text: text("text"),
            html: text("html"),
        }
    }

    /// Every recipient, `to` then `cc` then `bcc`.
    pub fn recipients(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.to.iter().chain(&self.cc).chain(&self.bcc).copied()
    }
}

/// Sends mail through one kind of provider.
#[async_trait]
pub trait MailProvider: Send + Sync {
    /// Whether asking again for a message it may have sent is safe (it answers with the
    /// first send): a provider without an idempotency key is asked once.
    fn repeatable(&self) -> bool;

    async fn send(&self, engine: &Engine, space: &str, sender: &Item, mail: &Outgoing<'_>) -> Result<Sent, SendError>;
}

/// The provider of a mail sender.
pub async fn provider_for(sender: &Item) -> Arc<dyn MailProvider> {
    match sender.body.get("provider").and_then(Value::as_str) {
        Some("ses") => Arc::new(Ses::new(ses_client().await).with_configuration_set(configuration_set())),
        _ => Arc::new(Sandbox),
    }
}

/// The SES client over the process's AWS configuration (region, credentials and endpoint
/// from the environment, as every AWS client here), built once.
pub async fn ses_client() -> aws_sdk_sesv2::Client {
    static CLIENT: OnceCell<aws_sdk_sesv2::Client> = OnceCell::const_new();
    CLIENT
        .get_or_init(|| async {
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            aws_sdk_sesv2::Client::new(&config)
        })
        .await
        .clone()
}

/// Where Terraform names the SES configuration set whose event destination reports
/// bounces, complaints and deliveries.
pub const CONFIGURATION_SET_ENV: &str = "MAIL_CONFIGURATION_SET";

/// The configuration set of this process's sends: `None` (unset or empty) sends without
/// one, and then nothing reports back (locally, or an account without the destination).
fn configuration_set() -> Option<String> {
    std::env::var(CONFIGURATION_SET_ENV)
        .ok()
        .filter(|name| !name.is_empty())
}

/// Records messages in the Space instead of reaching anyone.
pub struct Sandbox;

/// Where the sandbox keeps what it sent, one item per message.
pub const SENT: &str = "sandbox_mail";
/// When the sandbox's report comes: a few seconds after sending.
pub const REPORT_AFTER: TimeDelta = TimeDelta::seconds(2);

/// Whether the owner listed `address` under `list` of the sandbox's orders.
fn sandbox_sent(sender: &Item, record: &Item, mail: &Outgoing<'_>) -> Sent {
    let fates = mail
        .recipients()
        .map(|address| {
            let fate = if sandbox_lists(sender, "complain_recipients", address) {
                Fate::Complained
            } else if sandbox_lists(sender, "bounce_recipients", address) {
                Fate::Bounced
            } else {
                Fate::Delivered
            };
            (address.to_owned(), fate)
        })
        .collect();
    Sent {
        provider_message_id: record
            .body
            .get("provider_message_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        report: Some((fates, REPORT_AFTER)),
    }
}

#[async_trait]
impl MailProvider for Sandbox {
    fn repeatable(&self) -> bool {
        true
    }

    /// Asked twice for one message (a run that died after sending), it sends once.
    async fn send(&self, engine: &Engine, space: &str, sender: &Item, mail: &Outgoing<'_>) -> Result<Sent, SendError> {
        let key = keys::resource(&keys::collection_partition(space, SENT), mail.id);
        if let Some(done) = engine.store().get(&key.pk, &key.sk).await? {
            return Ok(sandbox_sent(sender, &done, mail));
        }
        if let Some(refused) = mail
            .recipients()
            .find(|to| sandbox_lists(sender, "fail_recipients", to))
        {
            return Err(SendError::Permanent {
                code: "RECIPIENT_UNREACHABLE".into(),
                message: format!(
                    "The provider refused the message to {refused} (sandbox: told to fail this recipient)."
                ),
            });
        }
        let mut body = Map::new();
        body.insert("message_id".into(), json!(mail.id));
        body.insert("connection_id".into(), json!(sender.sk));
        body.insert("provider_message_id".into(), json!(format!("sbx_{}", mail.id)));
        body.insert("from".into(), json!(mail.from));
        body.insert("recipients".into(), json!(mail.recipients().collect::<Vec<_>>()));
        body.insert("subject".into(), json!(mail.subject));
        body.insert("sent_at".into(), json!(format_datetime(engine.now())));
        let record = Item::new(key.pk.clone(), key.sk.clone(), body);
        match engine
            .store()
            .transact(vec![Write::put(record.clone(), Condition::NotExists)])
            .await
        {
            Ok(()) => Ok(sandbox_sent(sender, &record, mail)),
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
                let done = engine.store().get(&key.pk, &key.sk).await?;
                done.map(|done| sandbox_sent(sender, &done, mail))
                    .ok_or_else(|| SendError::Transient("the sent record vanished".into()))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Amazon SES (v2 `SendEmail`, simple content: the subject, the text and the sanitized
/// html). Each send names the configuration set (when one is configured) and tags the
/// message with its Space and its id ([`notifications::SPACE_TAG`],
/// [`notifications::MESSAGE_TAG`]): SES's events for it (bounces, complaints, deliveries)
/// go through the set's event destination to the `receipts` function and carry the tags
/// back, which name the message without an index from SES's ids to ours. The API has no
/// idempotency token, so a message is asked for once ([`MailProvider::repeatable`]), with
/// the SDK's own retries off: an ask whose answer is lost waits for SES's events.
///
/// [`notifications::SPACE_TAG`]: crate::notifications::SPACE_TAG
/// [`notifications::MESSAGE_TAG`]: crate::notifications::MESSAGE_TAG
pub struct Ses {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
}

/// Error codes of `SendEmail` refused before sending, worth another try.
const SES_TRANSIENT: &[&str] = &["TooManyRequestsException", "ThrottlingException", "ServiceUnavailable"];
/// Error codes of `SendEmail` after which the message may have gone.
const SES_UNKNOWN: &[&str] = &["InternalFailure"];

impl Ses {
    pub fn new(client: aws_sdk_sesv2::Client) -> Ses {
        Ses {
            client,
            configuration_set: None,
        }
    }

    /// Sends through the configuration set `name` (`None`: through none).
    pub fn with_configuration_set(mut self, name: Option<String>) -> Ses {
        self.configuration_set = name;
        self
    }
}

fn tag(name: &str, value: &str) -> Result<MessageTag, SendError> {
    MessageTag::builder()
        .name(name)
        .value(value)
        .build()
        .map_err(|error| SendError::Permanent {
            code: "PROVIDER_REFUSED".into(),
            message: error.to_string(),
        })
}

fn content(data: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|error| SendError::Permanent {
            code: "PROVIDER_REFUSED".into(),
            message: error.to_string(),
        })
}

#[async_trait]
impl MailProvider for Ses {
    fn repeatable(&self) -> bool {
        false
    }

    async fn send(
        &self,
        _engine: &Engine,
        space: &str,
        _sender: &Item,
        mail: &Outgoing<'_>,
    ) -> Result<Sent, SendError> {
        use crate::notifications::{MESSAGE_TAG, SPACE_TAG};
        let owned = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let destination = Destination::builder()
            .set_to_addresses(Some(owned(&mail.to)))
            .set_cc_addresses((!mail.cc.is_empty()).then(|| owned(&mail.cc)))
            .set_bcc_addresses((!mail.bcc.is_empty()).then(|| owned(&mail.bcc)))
            .build();
        let mut body = Body::builder();
        if let Some(text) = mail.text {
            body = body.text(content(text)?);
        }
        if let Some(html) = mail.html {
            body = body.html(content(html)?);
        }
        let message = Message::builder()
            .subject(content(mail.subject)?)
            .body(body.build())
            .build();
        let answer = self
            .client
            .send_email()
            .from_email_address(mail.from)
            .destination(destination)
            .set_reply_to_addresses(mail.reply_to.map(|to| vec![to.to_owned()]))
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(self.configuration_set.clone())
            .email_tags(tag(SPACE_TAG, space)?)
            .email_tags(tag(MESSAGE_TAG, mail.id)?)
            .customize()
            .config_override(Config::builder().retry_config(RetryConfig::disabled()))
            .send()
            .await;
        match answer {
            Ok(output) => match output.message_id() {
                Some(id) if !id.is_empty() => Ok(Sent {
                    provider_message_id: id.to_owned(),
                    report: None,
                }),
                _ => Err(SendError::Unknown("SendEmail answered without a MessageId".into())),
            },
            Err(failure) => {
                let service = failure.as_service_error();
                let answer =
                    service.map(|error| (error.code().unwrap_or("Unknown"), error.message().unwrap_or("refused")));
                Err(SendError::from_failure(
                    "Amazon SES",
                    answer,
                    format!("SendEmail: {}", DisplayErrorContext(&failure)),
                    SES_TRANSIENT,
                    SES_UNKNOWN,
                ))
            }
        }
    }
}
