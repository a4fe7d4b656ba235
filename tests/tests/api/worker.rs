//! The worker on both backends: jobs enqueued in a transaction run once, failures come back
//! after their backoff and die after the last one, a runner that dies holding a job loses
//! it only until its lease expires, a stopping runner hands back what it holds, and the
//! first real job kind warns a Space before one of its keys expires, once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Map, Value, json};
use space_http::Engine;
use space_store::{Clock, Condition, Item, Query, Write};
use space_tests::{TestApp, on_both_backends};
use space_worker::{DEAD_PARTITION, Handler, Job, JobError, NewJob, Outcome, SHARDS, Worker, partition};
use tokio::sync::mpsc;

on_both_backends!(
    jobs_run_once_and_failures_back_off_then_die,
    a_job_held_by_a_dead_runner_runs_after_its_lease,
    the_only_runner_reclaims_what_a_dead_one_held_at_once,
    a_stopping_runner_releases_what_it_holds,
    a_space_is_warned_once_before_its_key_expires,
);

/// Records `payload.n` with a conditional put: a second run of the same job changes nothing.
struct Record {
    runs: Arc<AtomicUsize>,
}

#[async_trait]
impl Handler for Record {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let n = job.payload["n"].as_u64().unwrap_or_default();
        let done = Item::new("TEST#worker", format!("{n:04}"), Map::new());
        match engine.store().put(done, Condition::NotExists).await {
            Ok(()) => Ok(Outcome::Done),
            Err(error) if error.is_condition_failure() => Ok(Outcome::Done),
            Err(error) => Err(error.into()),
        }
    }
}

/// Fails until its third run.
struct Flaky;

#[async_trait]
impl Handler for Flaky {
    async fn run(&self, _: &Engine, job: &Job) -> Result<Outcome, JobError> {
        if job.failures < 2 {
            Err(JobError::Retry(format!("failure {}", job.failures + 1)))
        } else {
            Ok(Outcome::Done)
        }
    }

    fn retry_delays(&self) -> &[i64] {
        &[5, 300]
    }
}

struct Broken;

#[async_trait]
impl Handler for Broken {
    async fn run(&self, _: &Engine, _: &Job) -> Result<Outcome, JobError> {
        Err(JobError::Retry("always".into()))
    }

    fn retry_delays(&self) -> &[i64] {
        &[5]
    }
}

/// Says it started, then never finishes.
struct Stuck {
    started: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl Handler for Stuck {
    async fn run(&self, _: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let _ = self.started.send(job.id.clone());
        std::future::pending().await
    }
}

async fn enqueue(app: &TestApp, jobs: Vec<NewJob>) {
    let writes: Vec<Write> = jobs.into_iter().map(NewJob::write).collect();
    app.engine.store().transact(writes).await.expect("jobs enqueued");
}

async fn pending_jobs(app: &TestApp) -> Vec<Item> {
    let mut items = Vec::new();
    for shard in 0..SHARDS {
        let page = app
            .engine
            .store()
            .query(Query::partition(partition(shard)).limit(1000))
            .await
            .expect("a query");
        items.extend(page.items);
    }
    items
}

async fn dead_jobs(app: &TestApp) -> Vec<Item> {
    app.engine
        .store()
        .query(Query::partition(DEAD_PARTITION).limit(100))
        .await
        .expect("a query")
        .items
}

async fn jobs_run_once_and_failures_back_off_then_die(app: TestApp) {
    let runs = Arc::new(AtomicUsize::new(0));
    let worker = Worker::new(app.engine.clone())
        .handle(
            "test.record",
            Record {
                runs: Arc::clone(&runs),
            },
        )
        .handle("test.flaky", Flaky)
        .handle("test.broken", Broken);
    let now = app.clock.now();
    let mut jobs: Vec<NewJob> = (0..10)
        .map(|n| NewJob::new("test.record", json!({"n": n}), now))
        .collect();
    jobs.push(NewJob::new("test.record", json!({"n": 99}), now).at(now + TimeDelta::hours(1)));
    jobs.push(NewJob::new("test.flaky", json!({}), now));
    jobs.push(NewJob::new("test.broken", json!({}), now));
    jobs.push(NewJob::new("test.unknown", json!({}), now));
    enqueue(&app, jobs).await;

    let pass = worker.run_due().await.expect("a pass");
    assert_eq!((pass.done, pass.later, pass.dead), (10, 2, 1), "{pass:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    let recorded = app
        .engine
        .store()
        .query(Query::partition("TEST#worker").limit(100))
        .await
        .expect("a query");
    assert_eq!(recorded.items.len(), 10);
    let dead = dead_jobs(&app).await;
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0].body["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("test.unknown"))
    );

    // Nothing is due again before its backoff.
    assert_eq!(worker.run_due().await.expect("a pass"), Default::default());
    app.clock.advance(TimeDelta::seconds(5));
    let pass = worker.run_due().await.expect("a pass");
    assert_eq!(
        (pass.done, pass.later, pass.dead),
        (0, 1, 1),
        "flaky waits 300 s more, broken is out of retries"
    );
    let dead = dead_jobs(&app).await;
    assert!(
        dead.iter()
            .any(|item| item.body["kind"] == "test.broken" && item.body["last_error"] == "always")
    );
    app.clock.advance(TimeDelta::seconds(300));
    let pass = worker.run_due().await.expect("a pass");
    assert_eq!(pass.done, 1, "flaky succeeds on its third run");

    // The job scheduled for later runs at its time, once.
    app.clock.advance(TimeDelta::hours(1));
    assert_eq!(worker.run_due().await.expect("a pass").done, 1);
    assert_eq!(worker.run_due().await.expect("a pass"), Default::default());
    assert_eq!(runs.load(Ordering::SeqCst), 11);
    assert!(pending_jobs(&app).await.is_empty(), "every job settled");

    // A job enqueued again under its name at the same time is one job.
    let named = || NewJob::new("test.record", json!({"n": 7}), app.clock.now()).named("record-7");
    enqueue(&app, vec![named()]).await;
    enqueue(&app, vec![named()]).await;
    assert_eq!(pending_jobs(&app).await.len(), 1);
    assert_eq!(worker.run_due().await.expect("a pass").done, 1);
}

async fn a_job_held_by_a_dead_runner_runs_after_its_lease(app: TestApp) {
    let (started, mut runs) = mpsc::unbounded_channel();
    let crashing = Worker::new(app.engine.clone()).handle("test.job", Stuck { started });
    enqueue(&app, vec![NewJob::new("test.job", json!({}), app.clock.now())]).await;
    let crash = tokio::spawn(async move { crashing.run_due().await });
    runs.recv().await.expect("the first runner started the job");
    crash.abort();

    let runs = Arc::new(AtomicUsize::new(0));
    let survivor = Worker::new(app.engine.clone()).handle(
        "test.job",
        Record {
            runs: Arc::clone(&runs),
        },
    );
    assert_eq!(
        survivor.run_due().await.expect("a pass"),
        Default::default(),
        "held by a live lease"
    );
    app.clock.advance(TimeDelta::seconds(61));
    assert_eq!(survivor.run_due().await.expect("a pass").done, 1, "the lease expired");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(pending_jobs(&app).await.is_empty());
}

/// What `spacectl serve` does at start on its embedded store (one process per file).
async fn the_only_runner_reclaims_what_a_dead_one_held_at_once(app: TestApp) {
    let (started, mut runs) = mpsc::unbounded_channel();
    let crashing = Worker::new(app.engine.clone()).handle("test.job", Stuck { started });
    enqueue(
        &app,
        vec![
            NewJob::new("test.job", json!({}), app.clock.now()),
            NewJob::new("test.other", json!({"n": 1}), app.clock.now() + TimeDelta::hours(1)),
        ],
    )
    .await;
    let crash = tokio::spawn(async move { crashing.run_due().await });
    runs.recv().await.expect("the first runner started the job");
    crash.abort();

    let runs = Arc::new(AtomicUsize::new(0));
    let restarted = Worker::new(app.engine.clone()).handle(
        "test.job",
        Record {
            runs: Arc::clone(&runs),
        },
    );
    assert_eq!(
        restarted.reclaim_all().await.expect("a reclaim"),
        1,
        "only the held job"
    );
    assert_eq!(
        restarted.run_due().await.expect("a pass").done,
        1,
        "at once, no lease to wait for"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(pending_jobs(&app).await.len(), 1, "the later job still waits");
}

async fn a_stopping_runner_releases_what_it_holds(app: TestApp) {
    let (started, mut runs) = mpsc::unbounded_channel();
    let stopping = Worker::new(app.engine.clone()).handle("test.job", Stuck { started });
    enqueue(&app, vec![NewJob::new("test.job", json!({}), app.clock.now())]).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        stopping
            .run_until(stop, Duration::from_millis(10), Duration::from_millis(50))
            .await
    });
    runs.recv().await.expect("the runner started the job");
    let _ = stop.send(());
    let pass = runner.await.expect("the runner stops");
    assert_eq!(pass.released, 1);

    // Released, not leased: the next runner takes it at once, without waiting for a lease.
    let runs = Arc::new(AtomicUsize::new(0));
    let next = Worker::new(app.engine.clone()).handle(
        "test.job",
        Record {
            runs: Arc::clone(&runs),
        },
    );
    assert_eq!(next.run_due().await.expect("a pass").done, 1);
}

async fn a_space_is_warned_once_before_its_key_expires(app: TestApp) {
    let worker = spacectl::worker(app.engine.clone());
    let mint = |days: i64| {
        let expires_at = space_http::fields::format_datetime(app.clock.now() + TimeDelta::days(days));
        app.account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
            .json(json!({"name": format!("{days} days"), "scopes": ["contacts:read"], "expires_at": expires_at}))
    };
    let soon = mint(3).send().await.expect(201).body;
    let later = mint(30).send().await.expect(201).body;
    let revoked = mint(10).send().await.expect(201).body;
    let expiring = |types: &[String]| types.iter().filter(|t| *t == "key.expiring").count();

    worker.run_due().await.expect("a pass");
    assert_eq!(
        expiring(&app.event_types().await),
        1,
        "the key expiring in 3 days is warned at once"
    );
    app.account(
        Method::DELETE,
        &format!(
            "/spaces/{}/keys/{}",
            app.demo.space_id,
            revoked["id"].as_str().unwrap_or_default()
        ),
    )
    .send()
    .await
    .expect(204);
    app.clock.advance(TimeDelta::days(3) + TimeDelta::minutes(1));
    worker.run_due().await.expect("a pass");
    assert_eq!(expiring(&app.event_types().await), 1, "a revoked key is not warned");
    app.clock.advance(TimeDelta::days(20));
    worker.run_due().await.expect("a pass");
    assert_eq!(
        expiring(&app.event_types().await),
        2,
        "the 30-day key is warned 7 days before"
    );

    // Running the same warning again changes nothing.
    let again = NewJob::new(
        account_api::jobs::KEY_EXPIRING,
        json!({"space_id": app.demo.space_id, "key_id": later["id"]}),
        app.clock.now(),
    );
    enqueue(&app, vec![again]).await;
    assert_eq!(worker.run_due().await.expect("a pass").done, 1);
    assert_eq!(expiring(&app.event_types().await), 2);
    assert!(soon["id"].is_string());
    let warned: Vec<Value> = {
        let partition = space_http::keys::events_partition(&app.demo.space_id);
        let page = app
            .engine
            .store()
            .query(Query::partition(partition).limit(500))
            .await
            .expect("a query");
        page.items
            .into_iter()
            .filter(|item| item.body["type"] == "key.expiring")
            .map(|item| Value::Object(item.body))
            .collect()
    };
    assert_eq!(warned[0]["subject_id"], soon["id"]);
    assert_eq!(warned[0]["key_id"], "system");
    assert_eq!(warned[1]["data"]["expires_at"], later["expires_at"]);
}
