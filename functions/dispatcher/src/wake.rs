//! Bringing a job back at its due time, on AWS's managed timers.
//!
//! A wait of up to 15 minutes is an SQS message with that delay (SQS's limit); a longer one
//! is an EventBridge Scheduler one-time schedule that sends the same message to the same
//! queue and deletes itself once it has fired. A schedule is named after the job and its
//! due time, so waking the same job twice (a stream record seen again) creates it once,
//! and a job withdrawn before its time (its item deleted) can take its schedule with it.

use async_trait::async_trait;
use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode, Target};
use chrono::{DateTime, Utc};
use space_worker::JobRef;
use tokio::sync::OnceCell;

/// The longest delay SQS gives a message.
pub const MAX_QUEUE_DELAY_SECONDS: i64 = 900;
/// Schedule names: at most 64 characters of `[0-9a-zA-Z-_.]`.
const MAX_SCHEDULE_NAME: usize = 64;

/// Why a job could not be woken.
#[derive(Debug, thiserror::Error)]
pub enum WakeError {
    #[error("the dispatcher is not configured: {0} is not set")]
    Config(&'static str),
    #[error("sending the job to its queue failed: {0}")]
    Queue(String),
    #[error("scheduling the job failed: {0}")]
    Schedule(String),
}

/// Brings a job back to the dispatcher at a time.
#[async_trait]
pub trait Wakeups: Send + Sync + 'static {
    /// Makes `job` run at `due` (at once when that is past); waking it twice for the same
    /// time is harmless, since the job runs only while its item exists.
    async fn wake(&self, job: &JobRef, due: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), WakeError>;

    /// Withdraws the wake-up of a job withdrawn before it ran (its item deleted by the
    /// change that made it pointless), so no timer is left to fire for nothing. Forgetting
    /// a job that has no wake-up is harmless.
    async fn forget(&self, job: &JobRef, now: DateTime<Utc>) -> Result<(), WakeError>;
}

/// Where the jobs queue and the schedules are, read from the environment Terraform sets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `JOBS_QUEUE_URL`: the queue the dispatcher reads.
    pub queue_url: String,
    /// `JOBS_QUEUE_ARN`: the same queue, as a schedule's target.
    pub queue_arn: String,
    /// `SCHEDULE_GROUP`: the group the job schedules live in.
    pub schedule_group: String,
    /// `SCHEDULER_ROLE_ARN`: the role schedules send their message with.
    pub scheduler_role_arn: String,
}

impl Settings {
    pub fn from_env() -> Result<Settings, WakeError> {
        let var = |name: &'static str| std::env::var(name).map_err(|_| WakeError::Config(name));
        Ok(Settings {
            queue_url: var("JOBS_QUEUE_URL")?,
            queue_arn: var("JOBS_QUEUE_ARN")?,
            schedule_group: var("SCHEDULE_GROUP")?,
            scheduler_role_arn: var("SCHEDULER_ROLE_ARN")?,
        })
    }
}

/// SQS delays and EventBridge Scheduler schedules. The clients are built by the first wake
/// that needs them, not at start.
pub struct QueueAndSchedules {
    settings: Settings,
    clients: OnceCell<(aws_sdk_sqs::Client, aws_sdk_scheduler::Client)>,
}

impl QueueAndSchedules {
    /// Clients configured the default way (environment, role) when first used.
    pub fn new(settings: Settings) -> QueueAndSchedules {
        QueueAndSchedules {
            settings,
            clients: OnceCell::new(),
        }
    }

    async fn clients(&self) -> &(aws_sdk_sqs::Client, aws_sdk_scheduler::Client) {
        self.clients
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                (
                    aws_sdk_sqs::Client::new(&config),
                    aws_sdk_scheduler::Client::new(&config),
                )
            })
            .await
    }
}

#[async_trait]
impl Wakeups for QueueAndSchedules {
    async fn wake(&self, job: &JobRef, due: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), WakeError> {
        let body = message(job);
        // Whole seconds, rounded up: early is a wasted wake, late by under a second is not.
        let delay = ((due - now).num_milliseconds().max(0) + 999) / 1000;
        let (sqs, scheduler) = self.clients().await;
        if delay <= MAX_QUEUE_DELAY_SECONDS {
            sqs.send_message()
                .queue_url(&self.settings.queue_url)
                .message_body(body)
                .delay_seconds(i32::try_from(delay).unwrap_or(0))
                // A fair queue's tenant: a Space with a backlog yields to quiet ones.
                .set_message_group_id(job.space.clone())
                .send()
                .await
                .map_err(|error| WakeError::Queue(aws_sdk_sqs::error::DisplayErrorContext(error).to_string()))?;
            return Ok(());
        }
        let target = Target::builder()
            .arn(&self.settings.queue_arn)
            .role_arn(&self.settings.scheduler_role_arn)
            .input(body)
            .build()
            .map_err(|error| WakeError::Schedule(error.to_string()))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|error| WakeError::Schedule(error.to_string()))?;
        let result = scheduler
            .create_schedule()
            .name(schedule_name(job))
            .group_name(&self.settings.schedule_group)
            .schedule_expression(at_expression(due))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target)
            .send()
            .await;
        // Named after the job and its time: it exists because this wake already ran.
        settled(result, |error| error.is_conflict_exception())
    }

    async fn forget(&self, job: &JobRef, now: DateTime<Utc>) -> Result<(), WakeError> {
        // A job already due has no schedule left (they delete themselves once fired). A
        // queue message cannot be withdrawn: it arrives, finds no job and is dropped; but
        // the wake may have been a schedule even when less than the queue's limit is left.
        if job.due().is_none_or(|due| due <= now) {
            return Ok(());
        }
        let (_, scheduler) = self.clients().await;
        let result = scheduler
            .delete_schedule()
            .name(schedule_name(job))
            .group_name(&self.settings.schedule_group)
            .send()
            .await;
        // Never created (the stream had not shown the job yet) or already gone.
        settled(result, |error| error.is_resource_not_found_exception())
    }
}

/// A Scheduler call's outcome: done, or failed with the one service error (`already`) that
/// means what was asked is already so.
fn settled<O, E, R>(
    result: Result<O, aws_sdk_scheduler::error::SdkError<E, R>>,
    already: impl FnOnce(&E) -> bool,
) -> Result<(), WakeError>
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(error) if error.as_service_error().is_some_and(already) => Ok(()),
        Err(error) => Err(WakeError::Schedule(
            aws_sdk_scheduler::error::DisplayErrorContext(error).to_string(),
        )),
    }
}

/// The message that names a job: what the queue carries and a schedule sends.
pub fn message(job: &JobRef) -> String {
    serde_json::json!({"pk": job.pk, "sk": job.sk}).to_string()
}

/// Scheduler's one-time expression, at the second (rounded up) the job is due.
pub fn at_expression(due: DateTime<Utc>) -> String {
    let second = if due.timestamp_subsec_millis() > 0 {
        due.timestamp() + 1
    } else {
        due.timestamp()
    };
    let at = DateTime::from_timestamp(second, 0).unwrap_or(due);
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

/// `<due millis>-<job id>`, in the characters Scheduler allows; a name too long keeps its
/// start and ends with a hash of the whole, so it stays unique.
pub fn schedule_name(job: &JobRef) -> String {
    let clean: String = job
        .sk
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '-' | '_' | '.') {
                character
            } else {
                '-'
            }
        })
        .collect();
    if clean.len() <= MAX_SCHEDULE_NAME {
        return clean;
    }
    // FNV-1a over the whole sort key: stable across processes and versions.
    let hash = job.sk.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let suffix = format!("-{hash:016x}");
    format!("{}{suffix}", &clean[..MAX_SCHEDULE_NAME - suffix.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(sk: &str) -> JobRef {
        JobRef {
            pk: "JOBS#1".into(),
            sk: sk.into(),
            space: None,
        }
    }

    #[test]
    fn schedule_names_are_valid_unique_and_stable() {
        let short = schedule_name(&job("1796000000123#job_01JZ"));
        assert_eq!(short, "1796000000123-job_01JZ");
        let long_a = schedule_name(&job(&format!("1796000000123#{}", "a".repeat(80))));
        let long_b = schedule_name(&job(&format!("1796000000123#{}b", "a".repeat(79))));
        for name in [&long_a, &long_b] {
            assert_eq!(name.len(), MAX_SCHEDULE_NAME);
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        }
        assert_ne!(long_a, long_b);
        assert_eq!(
            long_a,
            schedule_name(&job(&format!("1796000000123#{}", "a".repeat(80))))
        );
    }

    #[test]
    fn at_expressions_round_up_to_the_second() {
        let due = DateTime::from_timestamp_millis(1_796_000_000_123).unwrap();
        assert_eq!(at_expression(due), "at(2026-11-30T00:53:21)");
        let whole = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
        assert_eq!(at_expression(whole), "at(2026-11-30T00:53:20)");
    }
}
