//! An outbound message's way through its provider (`queued → sent → delivered | read`, or
//! `failed`), recorded the same way by every family that sends: the inbox's replies, the
//! phone's SMS and agent mail. Each move is the message's next version with its event, written only
//! if nothing moved the message meanwhile, so a receipt that arrives twice or late changes
//! nothing.

use chrono::{DateTime, Utc};
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
    /// Worth another try later (the provider is down, throttling).
    #[error("{0}")]
    Transient(String),
    /// Never worth another try (the recipient does not exist, the provider refused).
    #[error("{code}: {message}")]
    Permanent { code: String, message: String },
}

impl From<StoreError> for SendError {
    fn from(error: StoreError) -> SendError {
        SendError::Transient(error.to_string())
    }
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

    /// What a send job does when its provider did not send: tries again after the next
    /// delay while a transient failure has tries left (`failures` so far, `retries` in
    /// all), else records the message failed.
    pub async fn not_sent(
        self,
        engine: &Engine,
        space: &str,
        message: &Item,
        error: SendError,
        failures: usize,
        retries: usize,
    ) -> Result<Outcome, JobError> {
        match error {
            SendError::Transient(why) if failures < retries => Err(JobError::Retry(why)),
            SendError::Transient(why) => {
                let why = format!("The provider kept failing: {why}");
                self.fail(engine, space, message, "PROVIDER_UNAVAILABLE", &why).await
            }
            SendError::Permanent { code, message: why } => self.fail(engine, space, message, &code, &why).await,
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
