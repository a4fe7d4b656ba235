//! An outbound message's way through its provider (`queued → sending → sent → delivered |
//! read`, or `failed`), recorded the same way by every family that sends: the inbox's
//! replies, the phone's SMS and agent mail. Each move is the message's next version, written
//! only if nothing moved the message meanwhile, so a receipt that arrives twice or late
//! changes nothing.
//!
//! A message is sent once. Before its provider is asked, the message is claimed `sending`;
//! a run that finds it `sending` knows an earlier ask may have gone out (the run died, or
//! the answer was lost). A provider that recognises a message asked for twice
//! ([`Attempt::repeatable`]: the sandboxes, any provider taking an idempotency key) is asked
//! again and answers with its first send. Any other is never asked twice: the provider's
//! receipt settles the message (it went), and without one within [`SETTLE_AFTER`] it fails
//! `OUTCOME_UNKNOWN`, so an owner may decide to send it again; nothing sends it twice on
//! its own.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use space_auth::Principal;
use space_http::Engine;
use space_http::events::{event_write, update_event_write};
use space_http::fields::format_datetime;
use space_http::resource::Resource;
use space_store::{Condition, Item, StoreError, Write};
use space_worker::{Job, JobError, NewJob, Outcome};

/// Why a provider did not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not sent, worth another try later (the provider is down, throttling).
    #[error("{0}")]
    Transient(String),
    /// Perhaps sent: the request may have reached the provider and its answer was lost (a
    /// timeout, a broken connection, an unreadable answer, the provider's internal error).
    #[error("{0}")]
    Unknown(String),
    /// Never worth another try (the recipient does not exist, the provider refused).
    #[error("{code}: {message}")]
    Permanent { code: String, message: String },
}

impl From<StoreError> for SendError {
    fn from(error: StoreError) -> SendError {
        SendError::Transient(error.to_string())
    }
}

impl SendError {
    /// What an API call to a provider that answered with an error (`Some(code)` and its
    /// message), or not at all (`None`), means for the message: `retry` codes were refused
    /// before any sending (throttling), `unknown` codes may have sent (an internal error),
    /// any other code is the provider's refusal; no answer may have sent.
    pub fn from_failure(
        provider: &str,
        answer: Option<(&str, &str)>,
        detail: impl std::fmt::Display,
        retry: &[&str],
        unknown: &[&str],
    ) -> SendError {
        match answer {
            Some((code, message)) if retry.contains(&code) => SendError::Transient(format!("{code}: {message}")),
            Some((code, message)) if unknown.contains(&code) => SendError::Unknown(format!("{code}: {message}")),
            Some((code, message)) => SendError::Permanent {
                code: "PROVIDER_REFUSED".into(),
                message: format!("{provider} refused the message ({code}: {message})."),
            },
            None => SendError::Unknown(detail.to_string()),
        }
    }
}

/// How long a message handed to a provider that cannot be asked twice waits for the
/// provider's receipt before it fails `OUTCOME_UNKNOWN`.
pub const SETTLE_AFTER: TimeDelta = TimeDelta::hours(1);

/// The error code of a message whose send was never confirmed nor refused.
pub const OUTCOME_UNKNOWN: &str = "OUTCOME_UNKNOWN";

/// One run of a send job: how many earlier runs failed transiently, how many may, and
/// whether the provider recognises a message asked for twice (see the module's doc).
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub failures: usize,
    pub retries: usize,
    pub repeatable: bool,
}

fn status(message: &Item) -> &str {
    message.body.get("status").and_then(Value::as_str).unwrap_or_default()
}

/// When `message` was claimed `sending` (its `sending_at`), if it was.
fn sending_since(message: &Item) -> Option<DateTime<Utc>> {
    let at = message.body.get("sending_at").and_then(Value::as_str)?;
    DateTime::parse_from_rfc3339(at).ok().map(|at| at.with_timezone(&Utc))
}

/// Whether `message` failed only because its send was never confirmed nor refused.
fn outcome_unknown(message: &Item) -> bool {
    status(message) == "failed"
        && message
            .body
            .get("error")
            .and_then(|error| error.get("code"))
            .and_then(Value::as_str)
            == Some(OUTCOME_UNKNOWN)
}

/// How long a receipt that came before its message was recorded `sent` waits, each time:
/// a send's own retries end with the message sent or failed within minutes.
const EARLY_RECEIPT_WAIT: i64 = 60;
/// How many such waits before the receipt is given up (kept with the dead jobs): the
/// send's retries are over long before.
const EARLY_RECEIPT_WAITS: u64 = 30;

/// What a receipt job does with a message still `queued`: the provider's event overtook
/// the record of its send (a run that died between the provider's answer and `sent`,
/// retried), so the job waits for it, [`EARLY_RECEIPT_WAITS`] times at most.
pub fn wait_for_send(engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
    if job.attempts > EARLY_RECEIPT_WAITS {
        return Err(JobError::Fail(format!(
            "the message was still queued after {EARLY_RECEIPT_WAITS} waits for its send"
        )));
    }
    Ok(Outcome::Later(
        engine.now() + chrono::TimeDelta::seconds(EARLY_RECEIPT_WAIT),
    ))
}

/// The messages of one family: their events are `<events>.<status>`.
#[derive(Debug, Clone, Copy)]
pub struct Outbound {
    pub events: &'static str,
}

/// `message` at `status` from `now`: the status, its `<status>_at`, `updated_at`, the next
/// version.
pub fn moved(message: &Item, status: &str, now: DateTime<Utc>) -> Item {
    let mut next = message.clone();
    let at = format_datetime(now);
    next.body.insert("status".into(), json!(status));
    next.body.insert(format!("{status}_at"), json!(at));
    next.body.insert("updated_at".into(), json!(at));
    next.version += 1;
    next
}

impl Outbound {
    /// Stores a new `queued` message with its `<events>.queued` event and the `send_job`
    /// that sends it (`{"space_id", "message_id"}`), in one transaction; the message as
    /// answered.
    pub async fn queue(
        self,
        engine: &Engine,
        space: &str,
        message: Item,
        send_job: &str,
        principal: &Principal,
    ) -> Result<Value, StoreError> {
        let now = engine.now();
        let id = message.sk.clone();
        let shown = Resource::render(&message);
        let writes = vec![
            Write::put(message, Condition::NotExists),
            event_write(
                space,
                &format!("{}.queued", self.events),
                &id,
                shown.clone(),
                principal,
                now,
            ),
            NewJob::new(send_job, json!({"space_id": space, "message_id": id}), now).write(),
        ];
        engine.store().transact(writes).await?;
        Ok(shown)
    }

    /// Writes `next` over `message` with its event and `extra`; `false` when the message
    /// moved meanwhile.
    pub async fn record(
        self,
        engine: &Engine,
        space: &str,
        message: &Item,
        next: Item,
        extra: Vec<Write>,
    ) -> Result<bool, JobError> {
        let status = next.body.get("status").and_then(|s| s.as_str()).unwrap_or_default();
        let event = update_event_write(
            space,
            &format!("{}.{status}", self.events),
            &message.sk,
            &Resource::render(message),
            Resource::render(&next),
            &Principal::system(),
            engine.now(),
        );
        let mut writes = vec![Write::put(next, Condition::Version(message.version)), event];
        writes.extend(extra);
        match engine.store().transact(writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether a send job asks the provider for `message`: `None` to ask, else the job's
    /// outcome. `queued` is asked; `sending` is asked again only when `repeatable`, else it
    /// waits for the provider's receipt until [`SETTLE_AFTER`], then fails
    /// [`OUTCOME_UNKNOWN`]; anything else is settled.
    pub async fn pending(
        self,
        engine: &Engine,
        space: &str,
        message: &Item,
        repeatable: bool,
    ) -> Result<Option<Outcome>, JobError> {
        match status(message) {
            "queued" => Ok(None),
            "sending" if repeatable => Ok(None),
            "sending" => {
                let settle = sending_since(message).unwrap_or(DateTime::<Utc>::MIN_UTC) + SETTLE_AFTER;
                if engine.now() < settle {
                    return Ok(Some(Outcome::Later(settle)));
                }
                let why = "The provider neither confirmed nor refused this message (its answer was lost). It was \
                           not sent again, so that it cannot arrive twice: it may have arrived.";
                self.fail(engine, space, message, OUTCOME_UNKNOWN, why).await.map(Some)
            }
            _ => Ok(Some(Outcome::Done)),
        }
    }

    /// Claims `message` (`queued` or `sending`) for one ask of its provider: `queued` becomes
    /// `sending` at its next version, without an event (the ask's outcome has one). The
    /// message as claimed, which the outcome is recorded over.
    pub async fn claim(self, engine: &Engine, message: &Item) -> Result<Item, JobError> {
        if status(message) == "sending" {
            return Ok(message.clone());
        }
        let claimed = moved(message, "sending", engine.now());
        let write = Write::put(claimed.clone(), Condition::Version(message.version));
        match engine.store().transact(vec![write]).await {
            Ok(()) => Ok(claimed),
            Err(error) if error.is_condition_failure() => {
                Err(JobError::Retry("the message moved while it was claimed".into()))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// What a send job does when its provider did not send `message` (as claimed): a
    /// failure that sent nothing, or that may have when the provider can be asked again, is
    /// tried again after the next delay while tries are left (the message `queued` again),
    /// else the message fails; one that may have sent, with a provider that cannot be asked
    /// twice, waits for its receipt ([`Outbound::pending`]); a refusal fails it.
    pub async fn not_sent(
        self,
        engine: &Engine,
        space: &str,
        message: &Item,
        error: SendError,
        attempt: Attempt,
    ) -> Result<Outcome, JobError> {
        match error {
            SendError::Unknown(_) if !attempt.repeatable => {
                let since = sending_since(message).unwrap_or_else(|| engine.now());
                Ok(Outcome::Later(since + SETTLE_AFTER))
            }
            SendError::Transient(why) | SendError::Unknown(why) if attempt.failures < attempt.retries => {
                let mut queued = message.clone();
                queued.body.insert("status".into(), json!("queued"));
                queued.body.remove("sending_at");
                queued.version += 1;
                let write = Write::put(queued, Condition::Version(message.version));
                match engine.store().transact(vec![write]).await {
                    Ok(()) => Err(JobError::Retry(why)),
                    // Moved meanwhile (a receipt): the next run finds where it is.
                    Err(error) if error.is_condition_failure() => Err(JobError::Retry(why)),
                    Err(error) => Err(error.into()),
                }
            }
            SendError::Transient(why) | SendError::Unknown(why) => {
                let why = format!("The provider kept failing: {why}");
                self.fail(engine, space, message, "PROVIDER_UNAVAILABLE", &why).await
            }
            SendError::Permanent { code, message: why } => self.fail(engine, space, message, &code, &why).await,
        }
    }

    /// The message a provider's receipt is about, recorded `sent` first when it was still
    /// `sending` or had failed [`OUTCOME_UNKNOWN`] (the receipt shows it went; `adjust`
    /// marks what else a sent message has); otherwise `message` as it is.
    pub async fn confirmed(
        self,
        engine: &Engine,
        space: &str,
        message: Item,
        adjust: impl FnOnce(&mut Item),
    ) -> Result<Item, JobError> {
        if status(&message) != "sending" && !outcome_unknown(&message) {
            return Ok(message);
        }
        let mut next = moved(&message, "sent", engine.now());
        next.body.remove("error");
        next.body.remove("failed_at");
        adjust(&mut next);
        if self.record(engine, space, &message, next.clone(), Vec::new()).await? {
            Ok(next)
        } else {
            Err(JobError::Retry(
                "the message changed while its receipt was recorded".into(),
            ))
        }
    }

    /// Records `message` as failed, with the provider's code and reason; the job is done.
    pub async fn fail(
        self,
        engine: &Engine,
        space: &str,
        message: &Item,
        code: &str,
        why: &str,
    ) -> Result<Outcome, JobError> {
        let mut next = moved(message, "failed", engine.now());
        next.body.insert("error".into(), json!({"code": code, "message": why}));
        self.record(engine, space, message, next, Vec::new()).await?;
        Ok(Outcome::Done)
    }
}
