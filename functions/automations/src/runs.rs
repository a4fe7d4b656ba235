//! Runs: one automation carried out once, step by step on the worker.
//!
//! A run is written with its first step's job and its `automation.run.started` event in one
//! transaction. Each step is one job ([`STEP`], named by run and step, so enqueuing it twice
//! is harmless). A job moves its step `pending → running → succeeded | failed` and the run
//! on, each move a write conditional on the run's version, so a job that runs twice finds
//! its step settled and does nothing; while a step runs it is leased to its job, so a copy
//! running at the same time waits for it. Steps that call an operation pass `<run id>.<step>`
//! as the idempotency key: a job that dies between the call and its record calls again and
//! gets the first answer back, and the side effect happens once. A failed step fails the run
//! and skips the steps after it; `wait` moves its job later ([`Outcome::Later`]).

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_http::events::event_write;
use space_http::fields::{format_datetime, parse_datetime};
use space_http::operation::OperationTable;
use space_http::{Engine, Operation, keys};
use space_store::{Condition, Item, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::steps;

/// The job that carries out one step of a run.
pub const STEP: &str = "automations.step";
/// Where an automation's runs are kept.
pub const RUNS: &str = "automation_runs";
/// The statuses of a run.
pub const RUN_STATUSES: [&str; 5] = ["queued", "running", "waiting", "succeeded", "failed"];
/// The statuses of a step.
pub const STEP_STATUSES: [&str; 5] = ["pending", "running", "succeeded", "failed", "skipped"];
/// Which job carries out the running step, until when (kept inside, never shown): a copy
/// of the job (a redelivery, an expired worker lease) waits for it instead of calling the
/// step's operation beside it.
const LEASE: &str = "_step_lease";
/// How long a job holds the step it runs: as long as the worker's own lease on a job.
const STEP_LEASE: TimeDelta = TimeDelta::seconds(60);
/// The id prefix of runs.
pub const RUN_PREFIX: &str = "arun";

pub fn runs_partition(space: &str, automation: &str) -> String {
    keys::child_partition(space, RUNS, automation)
}

/// A run as keys see it.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "automation_id", "status", "trigger", "key_id", "input", "steps", "created_at", "updated_at", "finished_at"],
        "properties": {
            "id": {"type": "string"},
            "automation_id": {"type": "string"},
            "status": {"type": "string", "enum": RUN_STATUSES, "description": "`queued` until its first step starts; `waiting` during a `wait` step; `failed` when a step failed (the steps after it are `skipped`)."},
            "trigger": {"type": "object", "description": "What started it: `manual` (with the key), `event` (with `event_id`), or `schedule` (with `scheduled_for`).", "properties": {"type": {"type": "string", "enum": ["manual", "event", "schedule"]}}},
            "key_id": {"type": "string", "description": "The key its steps act as."},
            "input": {"description": "What the run is about: the caller's `input`, or the triggering event's `event_id`, `event_type` and (for a contact's event) `contact_id`."},
            "steps": {"type": "array", "items": {
                "type": "object",
                "required": ["index", "type", "status", "output", "error", "started_at", "finished_at"],
                "properties": {
                    "index": {"type": "integer"},
                    "type": {"type": "string"},
                    "status": {"type": "string", "enum": STEP_STATUSES},
                    "output": {"description": "What the step's operation answered (the task, the contact's tags, the queued message, a pending approval), or the webhook's status."},
                    "error": {"type": ["object", "null"], "description": "Why it failed: the answer's status, code and message."},
                    "started_at": {"type": ["string", "null"], "format": "date-time"},
                    "finished_at": {"type": ["string", "null"], "format": "date-time"}
                }
            }},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "version": {"type": "integer"}
        }
    })
}

/// A run as shown: the step definitions it copied (`_definitions`) stay inside.
pub fn view(item: &Item) -> Value {
    space_http::resource::Resource::render(item)
}

/// What started a run, as the run records it.
#[derive(Debug, Clone)]
pub struct Start {
    pub run_id: String,
    pub trigger: Value,
    pub key_id: String,
    pub input: Value,
    /// Where the run stands in a chain of automations ([`space_auth::Cause::depth`]).
    pub depth: u32,
}

/// Where a run keeps its [`Start::depth`].
pub const DEPTH: &str = "_depth";

/// The writes that create a run of `automation` and enqueue its first step: the run only if
/// no run has its id (an event or an occurrence starts one run, however often it is seen).
pub fn start_writes(
    space: &str,
    automation: &Item,
    start: Start,
    actor: &Principal,
    now: DateTime<Utc>,
) -> (Value, Vec<Write>) {
    let stamp = json!(format_datetime(now));
    let definitions = automation
        .body
        .get("steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let steps: Vec<Value> = definitions
        .iter()
        .enumerate()
        .map(|(index, definition)| {
            json!({
                "index": index,
                "type": definition.get("type").cloned().unwrap_or(Value::Null),
                "status": "pending",
                "output": null,
                "error": null,
                "started_at": null,
                "finished_at": null,
            })
        })
        .collect();
    let mut body = Map::new();
    body.insert("id".into(), json!(start.run_id));
    body.insert("automation_id".into(), json!(automation.sk));
    body.insert("status".into(), json!("queued"));
    body.insert("trigger".into(), start.trigger);
    body.insert("key_id".into(), json!(start.key_id));
    body.insert("input".into(), start.input);
    body.insert(DEPTH.into(), json!(start.depth));
    body.insert("steps".into(), Value::Array(steps));
    // The steps as they were when the run started: a later change to the automation does
    // not change a run under way.
    body.insert("_definitions".into(), Value::Array(definitions));
    body.insert("created_at".into(), stamp.clone());
    body.insert("updated_at".into(), stamp);
    body.insert("finished_at".into(), Value::Null);
    let item = Item::new(runs_partition(space, &automation.sk), start.run_id.clone(), body);
    let shown = view(&item);
    let writes = vec![
        Write::put(item, Condition::NotExists),
        step_job(space, &automation.sk, &start.run_id, 0, now),
        event_write(
            space,
            "automation.run.started",
            &start.run_id,
            shown.clone(),
            actor,
            now,
        ),
    ];
    (shown, writes)
}

fn step_job(space: &str, automation: &str, run: &str, index: usize, due: DateTime<Utc>) -> Write {
    NewJob::new(
        STEP,
        json!({"space_id": space, "automation_id": automation, "run_id": run, "index": index}),
        due,
    )
    .named(format!("{run}-{index}"))
    .write()
}

/// What a step came to.
#[derive(Debug, Clone)]
pub enum StepResult {
    Succeeded(Value),
    Failed { output: Value, error: Value },
}

/// Carries out the steps of runs.
#[derive(Clone)]
pub struct Step {
    operations: OperationTable,
}

impl Step {
    /// `operations`: every operation a space key can call (the catalogue), read on the
    /// first call of one.
    pub fn new(operations: fn() -> Vec<Operation>) -> Step {
        Step {
            operations: OperationTable::new(operations),
        }
    }

    pub(crate) fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }
}

fn text<'a>(body: &'a Map<String, Value>, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or_default()
}

#[async_trait]
impl Handler for Step {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, automation, run_id) = (field("space_id")?, field("automation_id")?, field("run_id")?);
        let index = job
            .payload
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|index| usize::try_from(index).ok())
            .ok_or_else(|| JobError::Fail("payload without `index`".into()))?;
        let partition = runs_partition(space, automation);
        let Some(mut run) = engine.store().get(&partition, run_id).await? else {
            return Ok(Outcome::Done);
        };
        if matches!(text(&run.body, "status"), "succeeded" | "failed") {
            return Ok(Outcome::Done);
        }
        let definition = run
            .body
            .get("_definitions")
            .and_then(|steps| steps.get(index))
            .cloned()
            .unwrap_or(Value::Null);
        let Some(step) = run.body.get("steps").and_then(|steps| steps.get(index)).cloned() else {
            return Ok(Outcome::Done);
        };
        let now = engine.now();
        let is_wait = step["type"] == "wait";
        let lease = json!({"job": job.id, "until": format_datetime(now + STEP_LEASE)});
        match step["status"].as_str() {
            Some("pending") => {
                let run_status = if is_wait { "waiting" } else { "running" };
                run = advance(engine, &run, |body| {
                    body.insert("status".into(), json!(run_status));
                    body.insert(LEASE.into(), lease);
                    set_step(
                        body,
                        index,
                        &[
                            ("status", json!("running")),
                            ("started_at", json!(format_datetime(now))),
                        ],
                    );
                })
                .await?;
            }
            // A wait does nothing but wait: whichever job finds it over settles it.
            Some("running") if is_wait => {}
            Some("running") => {
                let held = run.body.get(LEASE);
                let holder = held.and_then(|lease| lease.get("job")).and_then(Value::as_str);
                let until = held
                    .and_then(|lease| lease.get("until"))
                    .and_then(Value::as_str)
                    .and_then(parse_datetime);
                match until {
                    // Another copy of this job is carrying the step out: look again once
                    // its lease is over, by which time it has settled the step or died.
                    Some(until) if holder != Some(job.id.as_str()) && until > now => return Ok(Outcome::Later(until)),
                    Some(_) if holder == Some(job.id.as_str()) => {}
                    _ => {
                        run = advance(engine, &run, |body| {
                            body.insert(LEASE.into(), lease);
                        })
                        .await?;
                    }
                }
            }
            // Settled by an earlier run of this job.
            _ => return Ok(Outcome::Done),
        }
        if is_wait {
            let started = run.body["steps"][index]["started_at"]
                .as_str()
                .and_then(parse_datetime)
                .unwrap_or(now);
            let seconds = definition["seconds"].as_i64().unwrap_or(0);
            let due = started + TimeDelta::seconds(seconds);
            if now < due {
                return Ok(Outcome::Later(due));
            }
            return settle(
                engine,
                space,
                automation,
                &run,
                index,
                StepResult::Succeeded(json!({"waited_seconds": seconds})),
            )
            .await;
        }
        let result = steps::perform(self, engine, space, automation, &run, index, &definition).await?;
        settle(engine, space, automation, &run, index, result).await
    }
}

/// Writes `run` changed by `change`, if nobody changed it meanwhile.
async fn advance(engine: &Engine, run: &Item, change: impl FnOnce(&mut Map<String, Value>)) -> Result<Item, JobError> {
    let mut body = run.body.clone();
    change(&mut body);
    body.insert("updated_at".into(), json!(format_datetime(engine.now())));
    let after = Item::new(run.pk.clone(), run.sk.clone(), body).with_version(run.version + 1);
    match engine.store().put(after.clone(), Condition::Version(run.version)).await {
        Ok(()) => Ok(after),
        Err(error) if error.is_condition_failure() => Err(JobError::Retry("the run changed meanwhile".into())),
        Err(error) => Err(error.into()),
    }
}

fn set_step(body: &mut Map<String, Value>, index: usize, fields: &[(&str, Value)]) {
    if let Some(step) = body
        .get_mut("steps")
        .and_then(Value::as_array_mut)
        .and_then(|steps| steps.get_mut(index))
        .and_then(Value::as_object_mut)
    {
        for (name, value) in fields {
            step.insert((*name).to_owned(), value.clone());
        }
    }
}

/// Records a step's result and moves the run on: the next step's job, or the run's end
/// with its event.
async fn settle(
    engine: &Engine,
    space: &str,
    automation: &str,
    run: &Item,
    index: usize,
    result: StepResult,
) -> Result<Outcome, JobError> {
    let now = engine.now();
    let stamp = json!(format_datetime(now));
    let mut body = run.body.clone();
    let count = body.get("steps").and_then(Value::as_array).map_or(0, Vec::len);
    let failed = matches!(result, StepResult::Failed { .. });
    match result {
        StepResult::Succeeded(output) => set_step(
            &mut body,
            index,
            &[
                ("status", json!("succeeded")),
                ("output", output),
                ("finished_at", stamp.clone()),
            ],
        ),
        StepResult::Failed { output, error } => {
            set_step(
                &mut body,
                index,
                &[
                    ("status", json!("failed")),
                    ("output", output),
                    ("error", error),
                    ("finished_at", stamp.clone()),
                ],
            );
            for later in index + 1..count {
                set_step(&mut body, later, &[("status", json!("skipped"))]);
            }
        }
    }
    let last = index + 1 >= count;
    let status = match (failed, last) {
        (true, _) => "failed",
        (false, true) => "succeeded",
        (false, false) => "running",
    };
    body.insert("status".into(), json!(status));
    body.insert("updated_at".into(), stamp.clone());
    if failed || last {
        body.insert("finished_at".into(), stamp);
    }
    let after = Item::new(run.pk.clone(), run.sk.clone(), body).with_version(run.version + 1);
    let shown = view(&after);
    let mut writes = vec![Write::put(after, Condition::Version(run.version))];
    if failed || last {
        writes.push(event_write(
            space,
            &format!("automation.run.{status}"),
            &run.sk,
            shown,
            &Principal::system(),
            now,
        ));
    } else {
        writes.push(step_job(space, automation, &run.sk, index + 1, now));
    }
    match engine.store().transact(writes).await {
        Ok(()) => Ok(Outcome::Done),
        // Another run of this job recorded it first.
        Err(StoreError::TransactionConflict { .. }) => Ok(Outcome::Done),
        Err(error) if error.is_condition_failure() => Ok(Outcome::Done),
        Err(error) => Err(error.into()),
    }
}
