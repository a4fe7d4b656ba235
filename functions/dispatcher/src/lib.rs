//! Later work, in AWS and locally: the registry of every job kind and source, and the
//! dispatcher function that runs them in AWS.
//!
//! Locally `spacectl serve` runs [`worker`] in passes over its store. In AWS nothing polls:
//!
//! - The table's stream invokes [`Dispatcher::stream`] with each batch of changes. A new
//!   job item is handed to [`Wakeups`], which brings it back at its due time (an SQS message
//!   delayed up to 15 minutes, or an EventBridge Scheduler one-time schedule for later). New
//!   events go to the worker's sources, so the webhook fan-out reads only the feeds that
//!   moved.
//! - The jobs queue invokes [`Dispatcher::queue`]: each message names a job item, which
//!   [`Worker::run_job`] claims and runs as a pass would. A job moved later (a retry, a
//!   `Retry-After`) is a new item, so the stream wakes it again; a job that is done is gone.
//!
//! Failures are reported per record (`ReportBatchItemFailures`): the stream is retried from
//! the first record that failed, a queue message comes back after its visibility timeout.

pub mod wake;

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt as _;
use serde_json::Value;
use space_http::Engine;
use space_http::lambda::Backends;
use space_store::Item;
use space_worker::{JobRef, RunJob, Worker};

pub use wake::{WakeError, Wakeups};

/// What the dispatcher's binary links: the table, the signing keys deliveries sign with, and
/// the media and secret-value backends a Space's purge removes from. Its IAM permissions
/// are listed apart (`space_catalogue::functions`): it reads signing keys and only deletes
/// the rest.
pub const BACKENDS: Backends = Backends::ALL;

/// Queue messages run at once (a batch holds at most 10).
const CONCURRENCY: usize = 10;

/// The worker over `engine`, with every source and the handler of every kind of job the
/// API enqueues: the one list, used by `spacectl serve` and by the dispatcher.
pub fn worker(engine: Engine) -> Worker {
    Worker::new(engine)
        .source(space_worker::FeedSource(webhooks::Fanout))
        .source(space_worker::FeedSource(automations::Triggers))
        .handle(webhooks::DELIVER, webhooks::Deliver)
        .handle(account_api::jobs::KEY_EXPIRING, account_api::jobs::KeyExpiring)
        .handle(social::PUBLISH, social::Publish)
        .handle(inbox::SEND, inbox::Send)
        .handle(inbox::RECEIPT, inbox::Receipt)
        .handle(inbox::UNSNOOZE, inbox::Unsnooze)
        .handle(phone::SEND, phone::Send)
        .handle(phone::RECEIPT, phone::Receipt)
        .handle(mail::SEND, mail::Send)
        .handle(mail::RECEIPT, mail::Receipt)
        .handle(mail::IDENTITY, mail::Identity)
        .handle(mail::IDENTITY_DELETE, mail::IdentityDelete)
        .handle(messaging::REVIEW, messaging::Review)
        .handle(automations::STEP, automations::Step::new(space_catalogue::operations))
        .handle(automations::TICK, automations::Tick)
        .handle(messaging::campaigns::EXPAND, messaging::CampaignExpand)
        .handle(messaging::campaigns::SEND, messaging::CampaignSend)
        .handle(messaging::campaigns::RECEIPT, messaging::CampaignReceipt)
        .handle(messaging::tags::RETAG, messaging::Retag)
        .handle(
            account_api::approvals::PERFORM,
            account_api::approvals::Perform::new(space_catalogue::operations),
        )
        .handle(messaging::knowledge::INDEX, messaging::knowledge::IndexWords)
        .handle(contacts::import::SEARCH_WORDS, contacts::import::SearchWords)
        .handle(contacts::TAG_SPILL, contacts::TagSpill)
        .handle(account_api::purge::SPACE_PURGE, account_api::purge::Purge::default())
}

/// Why an invocation's event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the event is neither a DynamoDB stream batch nor an SQS batch: {0}")]
    Unknown(String),
    #[error("the event does not parse: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// The dispatcher function: a worker, and how it wakes jobs later.
#[derive(Clone)]
pub struct Dispatcher {
    worker: Worker,
    engine: Engine,
    wakeups: Arc<dyn Wakeups>,
}

impl Dispatcher {
    pub fn new(engine: Engine, wakeups: Arc<dyn Wakeups>) -> Dispatcher {
        Dispatcher {
            worker: worker(engine.clone()),
            engine,
            wakeups,
        }
    }

    /// One invocation, whichever of its two event sources sent it.
    pub async fn handle(&self, event: Value) -> Result<Value, DispatchError> {
        let source = event
            .pointer("/Records/0/eventSource")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match source.as_str() {
            "aws:dynamodb" => Ok(serde_json::to_value(self.stream(serde_json::from_value(event)?).await)?),
            "aws:sqs" => Ok(serde_json::to_value(self.queue(serde_json::from_value(event)?).await)?),
            // An empty batch (a test invoke): nothing to do.
            "" if event
                .get("Records")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty) =>
            {
                Ok(serde_json::json!({"batchItemFailures": []}))
            }
            other => Err(DispatchError::Unknown(other.to_owned())),
        }
    }

    /// A batch of the table's stream: wakes new jobs, shows new items to the sources.
    /// Answers the first record that failed (the stream resumes there), or none.
    pub async fn stream(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let now = self.engine.now();
        let mut first_failed: Option<usize> = None;
        let mut changed: Vec<(usize, Item)> = Vec::new();
        for (index, record) in event.records.iter().enumerate() {
            let image = match record.event_name.as_str() {
                "INSERT" => &record.change.new_image,
                "REMOVE" => &record.change.old_image,
                _ => continue,
            };
            let Some(item) = decode(image) else {
                continue;
            };
            if record.event_name == "REMOVE" {
                // A job withdrawn before it ran takes its wake-up with it.
                if let Some(job) = JobRef::of(&item)
                    && let Err(error) = self.wakeups.forget(&job, now).await
                {
                    tracing::warn!(job = job.id(), %error, "could not withdraw a job's wake-up; the stream retries it");
                    first_failed = Some(index);
                    break;
                }
                continue;
            }
            match JobRef::of(&item) {
                Some(job) => {
                    let due = job.due().unwrap_or(now);
                    if let Err(error) = self.wakeups.wake(&job, due, now).await {
                        tracing::warn!(job = job.id(), %error, "could not wake a job; the stream retries it");
                        first_failed = Some(index);
                        break;
                    }
                }
                None => changed.push((index, item)),
            }
        }
        if let Some(&(index, _)) = changed.first() {
            let items: Vec<Item> = changed.into_iter().map(|(_, item)| item).collect();
            if let Err(error) = self.worker.changed(&items).await {
                tracing::warn!(%error, "a job source failed; the stream retries its batch");
                first_failed = Some(first_failed.map_or(index, |failed| failed.min(index)));
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Some(record) = first_failed.and_then(|index| event.records.get(index)) {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// A batch of the jobs queue: runs each named job. Answers the messages to see again.
    pub async fn queue(&self, event: SqsEvent) -> SqsBatchResponse {
        let failed: Vec<Option<String>> = futures::stream::iter(event.records)
            .map(|message| async move {
                let id = message.message_id.clone().unwrap_or_default();
                match self.run_message(message.body.as_deref().unwrap_or_default()).await {
                    Ok(()) => None,
                    Err(error) => {
                        tracing::warn!(message = %id, %error, "a job message failed; it comes back after its visibility timeout");
                        Some(id)
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        for id in failed.into_iter().flatten() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        response
    }

    async fn run_message(&self, body: &str) -> Result<(), DispatchFailure> {
        let job: JobRef = match serde_json::from_str(body) {
            Ok(job) => job,
            Err(error) => {
                // Not ours, and never will be: dropping it loses nothing.
                tracing::error!(%error, "dropping a jobs queue message that names no job");
                return Ok(());
            }
        };
        let now = self.engine.now();
        match self.worker.run_job(&job).await? {
            RunJob::Ran | RunJob::Gone => Ok(()),
            // Woken early (schedules fire within a minute), or held by a runner that may
            // die: wake again at the due time or when its lease ends.
            RunJob::NotDue(at) | RunJob::Held(at) => Ok(self.wakeups.wake(&job, at, now).await?),
        }
    }
}

/// A stream record's image as an item; `None` (logged) for one that does not decode, which
/// retrying cannot help.
fn decode(image: &serde_dynamo::Item) -> Option<Item> {
    let attributes: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = image.clone().into();
    match space_store::dynamodb::item_from_attributes(attributes) {
        Ok(item) => Some(item),
        Err(error) => {
            tracing::error!(%error, "skipping a stream record whose image does not decode");
            None
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum DispatchFailure {
    #[error(transparent)]
    Store(#[from] space_store::StoreError),
    #[error(transparent)]
    Wake(#[from] WakeError),
}
