//! Removing a deleted Space: the job `DELETE /spaces/{space}` enqueues in the transaction
//! that marks the Space `deleting`. It removes, in bounded steps, the Space's keys, what
//! providers hold for it (its SES identities, by jobs of their own), its secret values,
//! signing keys, media blobs, and every item under its partitions (resources, events,
//! lookup and search entries, claims, and through their references the public pointers
//! and registry entries it owns elsewhere), then the Space's own record.
//!
//! Progress lives in the Space's tombstone, written after every step with a condition on
//! its version: a process killed mid-run leaves the tombstone at the last finished step,
//! and the next run (after the job's lease expires) repeats at most that one step. Every
//! step is a removal, and removing what is already gone changes nothing, so a step run
//! twice does no harm.
//!
//! Writers that were already running when the Space was deleted (a webhook fan-out that
//! read the Space's endpoints a moment before) may still add an item behind the walk, so
//! the walk over the Space's partitions repeats until one finds nothing to remove.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use space_http::{Engine, keys, references};
use space_store::{Condition, Item, Scan, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

/// The job kind.
pub const SPACE_PURGE: &str = "space.purge";

/// Blobs, secret values and signing keys are listed from their own backends: these many
/// per step.
const OUTSIDE_BATCH: usize = 100;

/// The job that purges `space`, whose tombstone is at `tombstone_sk`, enqueued in the
/// transaction that marks the Space deleting. Named after the Space: a second enqueue for
/// the same Space at the same time is the same job.
pub fn job(space: &str, account: &str, tombstone_sk: &str, now: DateTime<Utc>) -> Write {
    NewJob::new(
        SPACE_PURGE,
        json!({"space_id": space, "account_id": account, "tombstone": tombstone_sk}),
        now,
    )
    .named(format!("space-purge-{space}"))
    .write()
}

/// Where a purge stands: what it is removing, where its walk over the Space's partitions
/// stopped, and what it removed so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: Phase,
    /// The last key the current walk reached (`pk`, `sk`); `None` at a walk's start.
    #[serde(default)]
    pub after: Option<(String, String)>,
    /// Items the current walk removed: a walk that removes none is the last.
    #[serde(default)]
    pub walk_removed: u64,
    #[serde(default)]
    pub removed: Removed,
}

/// What a purge does, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Revoke every key again: one minted between the deletion's read and its write.
    #[default]
    Keys,
    /// Enqueue the deletion of what providers hold for the Space (its SES identities),
    /// while its connections still say what that is.
    Providers,
    SecretValues,
    SigningKeys,
    Blobs,
    /// Walk the Space's partitions, removing what each page finds.
    Items,
    /// Remove the Space's record from its account and the tombstone: the Space is gone.
    Finish,
}

/// Counts of what a purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    #[serde(default)]
    pub items: u64,
    #[serde(default)]
    pub references: u64,
    #[serde(default)]
    pub blobs: u64,
    #[serde(default)]
    pub secret_values: u64,
    #[serde(default)]
    pub signing_keys: u64,
}

/// The progress a tombstone holds (a fresh one for a tombstone written before purges
/// recorded any).
pub fn progress_of(tombstone: &Item) -> Progress {
    tombstone
        .body
        .get("purge")
        .cloned()
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default()
}

/// Runs purges in steps of `batch` items, at most `steps_per_run` steps or `run_time` per
/// run; then the job comes back at once to carry on, so no run outlives its lease.
#[derive(Debug, Clone, Copy)]
pub struct Purge {
    pub batch: usize,
    pub steps_per_run: usize,
    pub run_time: Duration,
}

impl Default for Purge {
    fn default() -> Purge {
        Purge {
            batch: 1000,
            steps_per_run: 200,
            run_time: Duration::from_secs(20),
        }
    }
}

/// What one step did.
enum Step {
    /// Progress to record; the purge goes on.
    Continue,
    /// The Space is gone.
    Done,
}

#[async_trait]
impl Handler for Purge {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, account, tombstone_sk) = (field("space_id")?, field("account_id")?, field("tombstone")?);
        let Some(mut tombstone) = engine.store().get(keys::SPACE_TOMBSTONES, tombstone_sk).await? else {
            // Finished by an earlier run.
            return Ok(Outcome::Done);
        };
        let started = Instant::now();
        let mut progress = progress_of(&tombstone);
        for _ in 0..self.steps_per_run.max(1) {
            match self.step(engine, space, account, &tombstone, &mut progress).await? {
                Step::Done => return Ok(Outcome::Done),
                Step::Continue => {}
            }
            let mut next = tombstone.clone();
            next.version += 1;
            next.body.insert(
                "purge".into(),
                serde_json::to_value(&progress).map_err(|error| JobError::Fail(error.to_string()))?,
            );
            match engine
                .store()
                .put(next.clone(), Condition::Version(tombstone.version))
                .await
            {
                Ok(()) => tombstone = next,
                // Another run moved the purge on (this one outlived its lease): the job comes
                // back and starts from what that run recorded.
                Err(error) if error.is_condition_failure() => return Ok(Outcome::Later(engine.now())),
                Err(error) => return Err(error.into()),
            }
            if started.elapsed() >= self.run_time {
                break;
            }
        }
        Ok(Outcome::Later(engine.now()))
    }
}

impl Purge {
    /// One bounded step of the phase `progress` is in, moving `progress` on.
    async fn step(
        &self,
        engine: &Engine,
        space: &str,
        account: &str,
        tombstone: &Item,
        progress: &mut Progress,
    ) -> Result<Step, JobError> {
        let missing = |what: &str| {
            JobError::Retry(format!(
                "this worker has no {what} backend, so it cannot remove the Space's {what}"
            ))
        };
        match progress.phase {
            Phase::Keys => {
                crate::keys::revoke_all(engine, space)
                    .await
                    .map_err(|error| JobError::Retry(error.to_string()))?;
                progress.phase = Phase::Providers;
            }
            Phase::Providers => {
                for jobs in mail::senders::on_purge(engine, space).await?.chunks(25) {
                    engine.store().transact(jobs.to_vec()).await?;
                }
                progress.phase = Phase::SecretValues;
            }
            Phase::SecretValues => {
                let vault = engine.vault().ok_or_else(|| missing("secret values"))?;
                match vault.delete_all(space, OUTSIDE_BATCH).await? {
                    0 => progress.phase = Phase::SigningKeys,
                    removed => progress.removed.secret_values += removed as u64,
                }
            }
            Phase::SigningKeys => {
                let signing = engine.signing_keys().ok_or_else(|| missing("signing keys"))?;
                match signing.delete_all_keys(space, OUTSIDE_BATCH).await? {
                    0 => progress.phase = Phase::Blobs,
                    removed => progress.removed.signing_keys += removed as u64,
                }
            }
            Phase::Blobs => {
                let blobs = engine.blobs().ok_or_else(|| missing("media"))?;
                match blobs
                    .delete_folder(&keys::space_blobs(space), self.batch.max(1))
                    .await?
                {
                    0 => progress.phase = Phase::Items,
                    removed => progress.removed.blobs += removed as u64,
                }
            }
            Phase::Items => self.walk(engine, space, progress).await?,
            Phase::Finish => {
                let listed = keys::account_space(account, space);
                let writes = vec![
                    Write::delete(
                        tombstone.pk.clone(),
                        tombstone.sk.clone(),
                        Condition::Version(tombstone.version),
                    ),
                    Write::delete(listed.pk, listed.sk, Condition::None),
                ];
                return match engine.store().transact(writes).await {
                    Ok(()) => {
                        tracing::info!(space, removed = ?progress.removed, "space purged");
                        Ok(Step::Done)
                    }
                    // Another run moved the tombstone on, or finished: recording progress
                    // fails the same way, and the job comes back to see which.
                    Err(StoreError::TransactionConflict { .. }) => Ok(Step::Continue),
                    Err(error) => Err(error.into()),
                };
            }
        }
        Ok(Step::Continue)
    }

    /// One page of the walk over every partition of the Space (`SPACE#<space>` and those
    /// under it): the items a reference names go first, then the page itself, so that a
    /// reference is never lost before its item.
    async fn walk(&self, engine: &Engine, space: &str, progress: &mut Progress) -> Result<(), JobError> {
        let own = keys::space_partition(space);
        let under = format!("{own}#");
        let page = engine
            .store()
            .scan(
                Scan::prefix(own.as_str())
                    .after(progress.after.clone())
                    .limit(self.batch.max(1)),
            )
            .await?;
        // The prefix also matches a Space whose id merely starts with this one's.
        let found: Vec<(String, String)> = page
            .keys
            .into_iter()
            .filter(|(pk, _)| *pk == own || pk.starts_with(&under))
            .collect();
        let referenced = keys::references_partition(space);
        let mut targets = Vec::new();
        for (pk, sk) in found.iter().filter(|(pk, _)| *pk == referenced) {
            if let Some(target) = engine.store().get(pk, sk).await?.as_ref().and_then(references::target) {
                targets.push((target.pk, target.sk));
            }
        }
        if !targets.is_empty() {
            progress.removed.references += targets.len() as u64;
            engine.store().delete_many(targets).await?;
        }
        if !found.is_empty() {
            progress.removed.items += found.len() as u64;
            progress.walk_removed += found.len() as u64;
            engine.store().delete_many(found).await?;
        }
        match page.last {
            Some(last) => progress.after = Some(last),
            // A walk that removed nothing proves the Space empty; otherwise walk again.
            None if progress.walk_removed == 0 => progress.phase = Phase::Finish,
            None => {
                progress.after = None;
                progress.walk_removed = 0;
            }
        }
        Ok(())
    }
}
