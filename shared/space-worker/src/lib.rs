//! Later work: durable jobs that every family enqueues and one runner executes.
//!
//! A job is an item (`JOBS#<shard>` / `<due millis>#<job id>`) written in the same store
//! transaction as the change that causes it: a crash never loses one, and a change that did
//! not commit never runs one. A runner claims a due job by rewriting it with a lease (a
//! write conditional on its version, so one claimer wins), runs its kind's [`Handler`], then
//! deletes it, moves it later (a retry after a backoff, or a handler's own "not yet"), or
//! moves it to the dead-letter partition, each conditional on the claimed version. A runner
//! that dies mid-job leaves a lease that expires, and the job runs again: jobs run at least
//! once, so handlers change state only through conditional writes and a second run finds
//! nothing to do.
//!
//! `spacectl serve` runs [`Worker::run_until`] as a background task over its store. In AWS
//! the dispatcher function runs the same handlers on the same items, woken instead of
//! polling: the table's stream shows it each new job item ([`JobRef::of`] says when it is
//! due), a queue message or a schedule brings the job back at that time, and
//! [`Worker::run_job`] claims and runs it exactly as a pass would.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt as _;
use serde_json::{Map, Value, json};
use space_http::Engine;
use space_http::fields::{format_datetime, parse_datetime};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};

/// Job partitions: due jobs are read from each, so one hot partition never holds them all.
pub const SHARDS: u32 = 4;
/// Where jobs that failed for good are kept, for inspection.
pub const DEAD_PARTITION: &str = "JOBS#DEAD";
/// How long dead jobs are kept.
const DEAD_RETENTION_DAYS: i64 = 30;
/// Waits after the first, second, … failure (the Standard Webhooks schedule): past the last
/// one the job is dead.
pub const DEFAULT_RETRY_DELAYS: &[i64] = &[5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// A job to enqueue: [`NewJob::write`] goes into the transaction of the change.
#[derive(Debug, Clone)]
pub struct NewJob {
    kind: String,
    payload: Value,
    due: DateTime<Utc>,
    id: Option<String>,
}

impl NewJob {
    /// A job of `kind` (the name its handler is registered under), due at once.
    pub fn new(kind: impl Into<String>, payload: Value, now: DateTime<Utc>) -> NewJob {
        NewJob {
            kind: kind.into(),
            payload,
            due: now,
            id: None,
        }
    }

    /// Due at `due` instead.
    pub fn at(mut self, due: DateTime<Utc>) -> NewJob {
        self.due = due;
        self
    }

    /// A job named by what it does (e.g. `key-expiring-key_01…`): enqueued again for the same
    /// time, it is the same item, so a repeated enqueue is harmless.
    pub fn named(mut self, name: impl Into<String>) -> NewJob {
        self.id = Some(name.into());
        self
    }

    /// The kind of job (its handler's name).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// What the handler is given.
    pub fn payload(&self) -> &Value {
        &self.payload
    }

    /// When it is due.
    pub fn due(&self) -> DateTime<Utc> {
        self.due
    }

    /// Its name, when it is named ([`NewJob::named`]).
    pub fn name(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The write that enqueues the job.
    pub fn write(self) -> Write {
        let named = self.id.is_some();
        let id = self.id.unwrap_or_else(|| format!("job_{}", ulid::Ulid::new()));
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.insert("kind".into(), json!(self.kind));
        body.insert("payload".into(), self.payload);
        body.insert("due_at".into(), json!(format_datetime(self.due)));
        body.insert("attempts".into(), json!(0));
        body.insert("failures".into(), json!(0));
        let item = Item::new(partition_of(&id), sort_key(self.due, &id), body);
        Write::put(item, if named { Condition::None } else { Condition::NotExists })
    }
}

/// The write that withdraws the job named `id` (see [`NewJob::named`]) enqueued for `due`:
/// it goes into the transaction of the change that makes the job pointless. A job that
/// already ran or moved (a retry) is not there, and deleting nothing is harmless; in AWS
/// the dispatcher sees the deletion and withdraws the job's schedule with it.
pub fn cancel(id: &str, due: DateTime<Utc>) -> Write {
    Write::delete(partition_of(id), sort_key(due, id), Condition::None)
}

/// The partition of shard `shard`.
pub fn partition(shard: u32) -> String {
    format!("JOBS#{shard}")
}

fn partition_of(id: &str) -> String {
    // FNV-1a: stable across processes and versions, unlike the standard hasher.
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    partition(hash % SHARDS)
}

/// Due time first, so a range query reads exactly the jobs due by now.
fn sort_key(due: DateTime<Utc>, id: &str) -> String {
    format!("{:013}#{id}", due.timestamp_millis().max(0))
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: Value,
    /// Runs started, this one included.
    pub attempts: u64,
    /// Earlier runs that failed.
    pub failures: u64,
    item: Item,
}

/// What a run achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Not yet: run again at this time (a scheduled action moved, a `Retry-After`).
    Later(DateTime<Utc>),
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another try after the kind's next delay.
    #[error("{0}")]
    Retry(String),
    /// Worth another try after this wait (a `Retry-After`), counted as a failure.
    #[error("{0}")]
    RetryAfter(String, TimeDelta),
    /// Never worth another try: the job goes to the dead-letter partition.
    #[error("{0}")]
    Fail(String),
}

impl From<StoreError> for JobError {
    fn from(error: StoreError) -> JobError {
        JobError::Retry(error.to_string())
    }
}

/// Runs the jobs of one kind. A run may happen twice: change state only through
/// conditional writes.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError>;

    /// Seconds to wait after the first, second, … failure; past the last the job is dead.
    fn retry_delays(&self) -> &[i64] {
        DEFAULT_RETRY_DELAYS
    }
}

/// Turns committed changes into jobs, the way DynamoDB Streams feed the dispatcher in AWS:
/// locally each pass polls every source before it claims jobs, so what a source enqueues
/// runs in the same pass. A source keeps its own checkpoint and may see a change twice.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// Reads what changed since the last poll and enqueues its jobs; returns how many.
    async fn poll(&self, engine: &Engine) -> Result<usize, JobError>;

    /// The same, told which items changed (in AWS, a batch of the table's stream): a source
    /// may look only where they point. By default it polls everything.
    async fn changed(&self, engine: &Engine, items: &[Item]) -> Result<usize, JobError> {
        let _ = items;
        self.poll(engine).await
    }
}

/// What follows the event feeds of some Spaces (the webhook fan-out, automations' event
/// triggers): the Spaces are listed in one registry partition, one item per Space keyed by
/// its id, and each is followed on its own.
#[async_trait]
pub trait FeedFollower: Send + Sync + 'static {
    /// The partition listing the Spaces to follow.
    const REGISTRY: &'static str;

    /// Reads `space`'s new events and enqueues what they call for; returns how many.
    async fn follow(&self, engine: &Engine, space: &str) -> Result<usize, JobError>;
}

/// The [`Source`] of a [`FeedFollower`]: a poll visits every registered Space; a batch of
/// changed items visits only the Spaces whose feeds gained events.
pub struct FeedSource<F>(pub F);

/// Registered Spaces a poll reads per query.
const FEED_SPACES: usize = 1000;

impl<F: FeedFollower> FeedSource<F> {
    /// Follows each of `spaces`, one failing Space holding up none of the others: every
    /// Space is visited, and the first failure is answered after (its Space is followed
    /// again on the next poll or retried batch; the others saved their progress).
    async fn follow_each<'a>(
        &self,
        engine: &Engine,
        spaces: impl IntoIterator<Item = &'a str>,
        enqueued: &mut usize,
    ) -> Option<JobError> {
        let mut failure = None;
        for space in spaces {
            match self.0.follow(engine, space).await {
                Ok(count) => *enqueued += count,
                Err(error) => {
                    tracing::warn!(space, %error, registry = F::REGISTRY, "feed not followed");
                    failure.get_or_insert(error);
                }
            }
        }
        failure
    }
}

#[async_trait]
impl<F: FeedFollower> Source for FeedSource<F> {
    async fn poll(&self, engine: &Engine) -> Result<usize, JobError> {
        let mut enqueued = 0;
        let mut failure = None;
        let mut after = None;
        loop {
            let spaces = engine
                .store()
                .query(
                    space_store::Query::partition(F::REGISTRY)
                        .after(after)
                        .limit(FEED_SPACES),
                )
                .await?;
            let names: Vec<&str> = spaces.items.iter().map(|space| space.sk.as_str()).collect();
            if let Some(error) = self.follow_each(engine, names, &mut enqueued).await {
                failure.get_or_insert(error);
            }
            match spaces.last_sk {
                Some(last) => after = Some(last),
                None => break,
            }
        }
        failure.map_or(Ok(enqueued), Err)
    }

    async fn changed(&self, engine: &Engine, items: &[Item]) -> Result<usize, JobError> {
        let mut spaces: Vec<&str> = items
            .iter()
            .filter_map(|item| space_http::keys::events_partition_space(&item.pk))
            .collect();
        spaces.sort_unstable();
        spaces.dedup();
        let mut enqueued = 0;
        match self.follow_each(engine, spaces, &mut enqueued).await {
            Some(error) => Err(error),
            None => Ok(enqueued),
        }
    }
}

/// Where a job item is and when it is due: what the AWS dispatcher needs to wake it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobRef {
    pub pk: String,
    pub sk: String,
    /// The Space the job works for, when its payload names one: the tenant of a fair
    /// queue, so that one Space's backlog of wake-ups does not hold up the others'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
}

impl JobRef {
    /// The job an item is, if it is a runnable job (not a dead one).
    pub fn of(item: &Item) -> Option<JobRef> {
        let shard = item.pk.strip_prefix("JOBS#")?;
        (shard.parse::<u32>().is_ok() && due_of(&item.sk).is_some()).then(|| JobRef {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            space: item
                .body
                .get("payload")
                .and_then(|payload| payload.get("space_id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// When the job is due, read from its sort key.
    pub fn due(&self) -> Option<DateTime<Utc>> {
        due_of(&self.sk)
    }

    /// The job's id, read from its sort key.
    pub fn id(&self) -> &str {
        self.sk.split_once('#').map_or(self.sk.as_str(), |(_, id)| id)
    }
}

fn due_of(sk: &str) -> Option<DateTime<Utc>> {
    let (millis, _) = sk.split_once('#')?;
    DateTime::from_timestamp_millis(millis.parse().ok()?)
}

/// What [`Worker::run_job`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunJob {
    /// The job ran (and is now done, moved later or dead).
    Ran,
    /// No such item: it already ran, or it moved (its new item wakes on its own).
    Gone,
    /// Not due until then: wake it again at that time.
    NotDue(DateTime<Utc>),
    /// Another runner holds it until then: if that runner dies, try again after that.
    Held(DateTime<Utc>),
}

/// How a runner behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How long a claim holds a job: a run that takes longer may be repeated elsewhere.
    pub lease: TimeDelta,
    /// Due jobs claimed per shard and pass.
    pub batch: usize,
    /// Jobs run at once.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            lease: TimeDelta::seconds(60),
            batch: 256,
            concurrency: 64,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub done: usize,
    pub later: usize,
    pub dead: usize,
    /// Claimed by this pass but finished by nobody (the pass was stopped): released.
    pub released: usize,
}

/// The handlers by kind, and the runner over an engine's store.
#[derive(Clone)]
pub struct Worker {
    engine: Engine,
    handlers: HashMap<String, Arc<dyn Handler>>,
    sources: Vec<Arc<dyn Source>>,
    options: Options,
    /// Jobs claimed and not yet finished: released if the runner stops first.
    held: Arc<Mutex<HashMap<String, Job>>>,
}

enum Finished {
    Done,
    Later,
    Dead,
}

impl Worker {
    pub fn new(engine: Engine) -> Worker {
        Worker {
            engine,
            handlers: HashMap::new(),
            sources: Vec::new(),
            options: Options::default(),
            held: Arc::default(),
        }
    }

    pub fn options(mut self, options: Options) -> Worker {
        self.options = options;
        self
    }

    /// Registers the handler of `kind`.
    pub fn handle(mut self, kind: impl Into<String>, handler: impl Handler) -> Worker {
        self.handlers.insert(kind.into(), Arc::new(handler));
        self
    }

    /// Adds a source of jobs, polled at the start of every pass.
    pub fn source(mut self, source: impl Source) -> Worker {
        self.sources.push(Arc::new(source));
        self
    }

    /// Polls the sources, then claims every job due now (up to the batch per shard) and
    /// runs them, `concurrency` at a time: each job runs as soon as it is claimed.
    pub async fn run_due(&self) -> Result<Pass, StoreError> {
        for source in &self.sources {
            if let Err(error) = source.poll(&self.engine).await {
                tracing::warn!(%error, "a job source failed; polling it again next pass");
            }
        }
        let now = self.engine.now();
        let bound = format!("{:013}#~", now.timestamp_millis().max(0));
        let mut due = Vec::new();
        for shard in 0..SHARDS {
            let page = self
                .engine
                .store()
                .query(
                    Query::partition(partition(shard))
                        .range(SortRange::Between(String::new(), bound.clone()))
                        .limit(self.options.batch),
                )
                .await?;
            due.extend(page.items);
        }
        let finished: Vec<Result<Option<Finished>, StoreError>> = futures::stream::iter(due)
            .map(|item| async move {
                match self.claim(item, now).await? {
                    Some(job) => self.finish(job).await.map(Some),
                    None => Ok(None),
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut pass = Pass::default();
        for result in finished {
            match result? {
                Some(Finished::Done) => pass.done += 1,
                Some(Finished::Later) => pass.later += 1,
                Some(Finished::Dead) => pass.dead += 1,
                None => {}
            }
        }
        Ok(pass)
    }

    /// Shows every source the items that changed (the AWS dispatcher's stream batch);
    /// returns how many jobs they enqueued.
    pub async fn changed(&self, items: &[Item]) -> Result<usize, JobError> {
        let mut enqueued = 0;
        for source in &self.sources {
            enqueued += source.changed(&self.engine, items).await?;
        }
        Ok(enqueued)
    }

    /// Claims and runs the one job at `job` if it is due and free: the AWS dispatcher's
    /// path, woken by a queue message instead of a pass.
    pub async fn run_job(&self, job: &JobRef) -> Result<RunJob, StoreError> {
        let Some(item) = self.engine.store().get(&job.pk, &job.sk).await? else {
            return Ok(RunJob::Gone);
        };
        let now = self.engine.now();
        if let Some(due) = job.due().filter(|due| *due > now) {
            return Ok(RunJob::NotDue(due));
        }
        if let Some(until) = lease_of(&item).filter(|until| *until > now) {
            return Ok(RunJob::Held(until));
        }
        match self.claim(item, now).await? {
            Some(claimed) => {
                self.finish(claimed).await?;
                Ok(RunJob::Ran)
            }
            // Claimed by another runner between the read and the write.
            None => Ok(RunJob::Held(now + self.options.lease)),
        }
    }

    /// Takes the job if it is not held by a live lease; `None` when another runner has it.
    async fn claim(&self, item: Item, now: DateTime<Utc>) -> Result<Option<Job>, StoreError> {
        if lease_of(&item).is_some_and(|until| until > now) {
            return Ok(None);
        }
        let count = |field: &str| item.body.get(field).and_then(Value::as_u64).unwrap_or(0);
        let (attempts, failures) = (count("attempts") + 1, count("failures"));
        let mut held = item.clone();
        held.version = item.version + 1;
        held.body.insert("attempts".into(), json!(attempts));
        held.body
            .insert("lease_until".into(), json!(format_datetime(now + self.options.lease)));
        match self
            .engine
            .store()
            .put(held.clone(), Condition::Version(item.version))
            .await
        {
            Ok(()) => {}
            Err(error) if error.is_condition_failure() => return Ok(None),
            Err(error) => return Err(error),
        }
        let text = |field: &str| {
            held.body
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let job = Job {
            id: text("id"),
            kind: text("kind"),
            payload: held.body.get("payload").cloned().unwrap_or(Value::Null),
            attempts,
            failures,
            item: held,
        };
        if let Ok(mut jobs) = self.held.lock() {
            jobs.insert(job.item.sk.clone(), job.clone());
        }
        Ok(Some(job))
    }

    async fn finish(&self, job: Job) -> Result<Finished, StoreError> {
        let handler = self.handlers.get(&job.kind).cloned();
        let result = match &handler {
            Some(handler) => handler.run(&self.engine, &job).await,
            None => Err(JobError::Fail(format!("no handler for jobs of kind `{}`", job.kind))),
        };
        let now = self.engine.now();
        let finished = match result {
            Ok(Outcome::Done) => {
                self.settle(vec![Write::delete(
                    &job.item.pk,
                    &job.item.sk,
                    Condition::Version(job.item.version),
                )])
                .await?;
                Finished::Done
            }
            Ok(Outcome::Later(due)) => {
                self.settle(moved(&job, due, job.failures, None)).await?;
                Finished::Later
            }
            Err(failure @ (JobError::Retry(_) | JobError::RetryAfter(..))) => {
                let delays = handler
                    .as_ref()
                    .map_or(DEFAULT_RETRY_DELAYS, |handler| handler.retry_delays());
                let (error, asked) = match failure {
                    JobError::RetryAfter(error, wait) => (error, Some(wait)),
                    other => (other.to_string(), None),
                };
                match usize::try_from(job.failures).ok().and_then(|failed| delays.get(failed)) {
                    Some(delay) => {
                        let due = now + asked.unwrap_or_else(|| TimeDelta::seconds(*delay));
                        tracing::warn!(job = %job.id, kind = %job.kind, %error, retry_at = %format_datetime(due), "job failed; retrying");
                        self.settle(moved(&job, due, job.failures + 1, Some(&error))).await?;
                        Finished::Later
                    }
                    None => {
                        self.settle(dead(&job, &error, now)).await?;
                        Finished::Dead
                    }
                }
            }
            Err(JobError::Fail(error)) => {
                self.settle(dead(&job, &error, now)).await?;
                Finished::Dead
            }
        };
        if let Ok(mut jobs) = self.held.lock() {
            jobs.remove(&job.item.sk);
        }
        Ok(finished)
    }

    /// Applies a job's last writes. A failed condition means the lease ran out and another
    /// runner took the job over: it is theirs to settle.
    async fn settle(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        match self.engine.store().transact(writes).await {
            Err(error) if error.is_condition_failure() => Ok(()),
            other => other,
        }
    }

    /// Frees every job held under a lease, whoever holds it: for a runner that knows it is
    /// the only one (the embedded store admits one process), so what a killed process held
    /// runs now instead of when its lease runs out. Returns how many it freed.
    pub async fn reclaim_all(&self) -> Result<usize, StoreError> {
        let mut freed = 0;
        for shard in 0..SHARDS {
            let mut after = None;
            loop {
                let page = self
                    .engine
                    .store()
                    .query(Query::partition(partition(shard)).after(after.clone()).limit(500))
                    .await?;
                for item in page.items {
                    if lease_of(&item).is_none() {
                        continue;
                    }
                    let mut free = item.clone();
                    free.version = item.version + 1;
                    free.body.remove("lease_until");
                    match self.engine.store().put(free, Condition::Version(item.version)).await {
                        Ok(()) => freed += 1,
                        Err(error) if error.is_condition_failure() => {}
                        Err(error) => return Err(error),
                    }
                }
                match page.last_sk {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
        }
        Ok(freed)
    }

    /// Gives back every job this runner holds, due at once, for another runner (or the next
    /// start) to take.
    pub async fn release_held(&self) -> usize {
        let jobs: Vec<Job> = match self.held.lock() {
            Ok(mut jobs) => jobs.drain().map(|(_, job)| job).collect(),
            Err(_) => return 0,
        };
        let mut released = 0;
        for job in jobs {
            let mut free = job.item.clone();
            free.version = job.item.version + 1;
            free.body.remove("lease_until");
            match self
                .engine
                .store()
                .put(free, Condition::Version(job.item.version))
                .await
            {
                Ok(()) => released += 1,
                Err(error) => tracing::warn!(job = %job.id, %error, "could not release a job; its lease will expire"),
            }
        }
        released
    }

    /// Runs passes until `stop` completes, the next at once after a pass that ran jobs
    /// (there may be more due) and `every` after one that found none; then lets the running
    /// pass finish within `grace` and releases what it still holds.
    pub async fn run_until(&self, stop: impl Future<Output = ()>, every: Duration, grace: Duration) -> Pass {
        tokio::pin!(stop);
        let mut total = Pass::default();
        loop {
            let pass = self.run_due();
            tokio::pin!(pass);
            let result = tokio::select! {
                result = &mut pass => result,
                () = &mut stop => {
                    let result = tokio::time::timeout(grace, &mut pass).await;
                    if let Ok(Ok(pass)) = result {
                        add(&mut total, pass);
                    }
                    total.released += self.release_held().await;
                    return total;
                }
            };
            let busy = match result {
                Ok(pass) => {
                    add(&mut total, pass);
                    pass.done + pass.later + pass.dead > 0
                }
                Err(error) => {
                    tracing::warn!(%error, "worker pass failed; trying again");
                    false
                }
            };
            if busy {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = &mut stop => {
                    total.released += self.release_held().await;
                    return total;
                }
            }
        }
    }
}

fn lease_of(item: &Item) -> Option<DateTime<Utc>> {
    item.body
        .get("lease_until")
        .and_then(Value::as_str)
        .and_then(parse_datetime)
}

fn add(total: &mut Pass, pass: Pass) {
    total.done += pass.done;
    total.later += pass.later;
    total.dead += pass.dead;
    total.released += pass.released;
}

/// The claimed item deleted and the job written again at `due`, free. A job moved to the
/// very millisecond it was due at (a handler's "again at once") moves one millisecond on:
/// it must be a new item, since a new item is what wakes a job in AWS (the table's stream).
fn moved(job: &Job, due: DateTime<Utc>, failures: u64, error: Option<&str>) -> Vec<Write> {
    let due = if sort_key(due, &job.id) == job.item.sk {
        due + TimeDelta::milliseconds(1)
    } else {
        due
    };
    let mut body = job.item.body.clone();
    body.remove("lease_until");
    body.insert("due_at".into(), json!(format_datetime(due)));
    body.insert("failures".into(), json!(failures));
    if let Some(error) = error {
        body.insert("last_error".into(), json!(error));
    }
    vec![
        Write::delete(&job.item.pk, &job.item.sk, Condition::Version(job.item.version)),
        Write::put(
            Item::new(job.item.pk.clone(), sort_key(due, &job.id), body),
            Condition::None,
        ),
    ]
}

/// The claimed item moved to the dead-letter partition with its last error.
fn dead(job: &Job, error: &str, now: DateTime<Utc>) -> Vec<Write> {
    tracing::warn!(job = %job.id, kind = %job.kind, %error, "job failed for good");
    let mut body = job.item.body.clone();
    body.remove("lease_until");
    body.insert("last_error".into(), json!(error));
    body.insert("dead_at".into(), json!(format_datetime(now)));
    let expires = now.timestamp() + DEAD_RETENTION_DAYS * 24 * 3600;
    vec![
        Write::delete(&job.item.pk, &job.item.sk, Condition::Version(job.item.version)),
        Write::put(
            Item::new(DEAD_PARTITION, sort_key(now, &job.id), body).expiring_at(expires),
            Condition::None,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_sort_by_due_time_and_spread_over_shards() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let early = sort_key(now, "job_b");
        let late = sort_key(now + TimeDelta::milliseconds(1), "job_a");
        assert!(early < late);
        assert!(late < format!("{:013}#~", (now + TimeDelta::milliseconds(1)).timestamp_millis()));
        let shards: std::collections::HashSet<String> = (0..64).map(|n| partition_of(&format!("job_{n}"))).collect();
        assert_eq!(shards.len(), SHARDS as usize);
        assert_eq!(partition_of("job_x"), partition_of("job_x"));
    }

    #[test]
    fn a_job_moved_to_its_own_due_time_is_a_new_item() {
        let due = DateTime::from_timestamp_millis(1_796_000_000_123).unwrap();
        let Write::Put { item, .. } = NewJob::new("k", json!({}), due).named("again").write() else {
            panic!("a job is a put");
        };
        let job = Job {
            id: "again".into(),
            kind: "k".into(),
            payload: json!({}),
            attempts: 1,
            failures: 0,
            item: item.clone(),
        };
        let writes = moved(&job, due, 0, None);
        let keys: Vec<(&str, &str)> = writes.iter().map(Write::key).collect();
        assert_eq!(keys[0], (item.pk.as_str(), item.sk.as_str()));
        assert_ne!(keys[1], keys[0], "a transaction touches an item once");
        assert_eq!(
            JobRef {
                pk: keys[1].0.into(),
                sk: keys[1].1.into(),
                space: None,
            }
            .due(),
            Some(due + TimeDelta::milliseconds(1))
        );
    }

    #[test]
    fn a_job_item_names_its_due_time_and_id() {
        let due = DateTime::from_timestamp_millis(1_796_000_000_123).unwrap();
        let Write::Put { item, .. } = NewJob::new("k", json!({}), due).named("key-expiring-x").write() else {
            panic!("a job is a put");
        };
        let job = JobRef::of(&item).expect("a job item");
        assert_eq!(job.due(), Some(due));
        assert_eq!(job.id(), "key-expiring-x");
        let dead = Item::new(DEAD_PARTITION, item.sk.clone(), Map::new());
        assert_eq!(JobRef::of(&dead), None);
        assert_eq!(JobRef::of(&Item::new("S#x", "EVT", Map::new())), None);
    }
}
