//! The owner's side of approvals ([`space_http::approvals`]): list what waits, approve or
//! reject it, and the worker job that runs an approved call once.
//!
//! Approving moves the approval to `approved` and enqueues [`PERFORM`] in one transaction,
//! conditional on the version read: two approvals racing enqueue one job, and approving
//! again answers the approval as it is. The job runs the call as its key, read afresh (a
//! key revoked meanwhile fails it), with the approval's id as its idempotency key, so a
//! job that runs twice performs once and records the same answer.

use async_trait::async_trait;
use serde_json::{Value, json};
use space_auth::Principal;
use space_http::approvals;
use space_http::events::event_write;
use space_http::execute::execute_approved;
use space_http::fields::format_datetime;
use space_http::operation::OperationTable;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{PageRequest, list_partition};
use space_http::{ApiError, Engine, Operation, keys};
use space_store::{Condition, Item, SortRange, StoreError, Write};
use space_worker::{Job, JobError, NewJob, Outcome};

use crate::spaces;

/// The job that runs an approved call.
pub const PERFORM: &str = "approval.perform";
/// The statuses an approval moves through.
pub const STATUSES: [&str; 5] = ["pending", "approved", "rejected", "performed", "failed"];
/// The longest reason a rejection keeps.
pub const MAX_REASON_CHARS: usize = 500;

/// An approval as the owner sees it.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "status", "operation", "method", "path", "scope", "key_id", "request", "created_at", "decided_at", "reason", "result"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": STATUSES, "description": "`pending` until the owner decides; `approved` until the worker ran it; then `performed` (it answered 2xx) or `failed`."},
            "operation": {"type": "string", "description": "The operation the key called."},
            "method": {"type": "string"},
            "path": {"type": "string", "description": "The path it was called on."},
            "scope": {"type": "string", "description": "The scope of the key's `approval_required` that held it."},
            "key_id": {"type": "string"},
            "request": {
                "type": "object",
                "description": "What the key sent: path parameters, query and JSON body, and the version of the item it acts on that the call is held to (the key's `If-Match`, or the version when it asked, for a publish, a schedule or a launch): an edit made since makes the approved call fail with 412.",
                "properties": {
                    "path": {"type": "object", "additionalProperties": {"type": "string"}},
                    "query": {"type": "object", "additionalProperties": {"type": "string"}},
                    "body": {},
                    "if_match": {"type": "integer", "minimum": 0}
                }
            },
            "created_at": {"type": "string", "format": "date-time"},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "reason": {"type": ["string", "null"], "description": "Why it was rejected, if the owner said."},
            "result": {
                "type": ["object", "null"],
                "description": "What the call answered once run: its status and body.",
                "properties": {"status": {"type": "integer"}, "body": {}}
            },
            "version": {"type": "integer"}
        }
    })
}

/// The body of a rejection.
pub fn reject_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS}},
        "additionalProperties": false
    })
}

fn view(item: &Item) -> Value {
    let mut body = item.body.clone();
    body.insert("version".into(), json!(item.version));
    Value::Object(body)
}

fn status(item: &Item) -> &str {
    item.body.get("status").and_then(Value::as_str).unwrap_or_default()
}

/// The approval the path names, in a Space of the caller's account.
async fn owned(call: &Call) -> Result<(String, Item), ApiError> {
    let space = call.path_param("space")?.to_owned();
    spaces::load(&call.engine, &call.principal.account_id, &space).await?;
    let id = call.path_param("approval")?;
    let at = approvals::key(&space, id);
    let item = call
        .engine
        .store()
        .get(&at.pk, &at.sk)
        .await?
        .ok_or_else(|| ApiError::not_found("approval", id))?;
    Ok((space, item))
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let wanted = call.query_param("status").map(str::to_owned);
        if let Some(wanted) = &wanted
            && !STATUSES.contains(&wanted.as_str())
        {
            return Err(ApiError::invalid_field(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
        let page = PageRequest::parse(&call)?;
        let partition = keys::collection_partition(&space, approvals::COLLECTION);
        let listed = list_partition(&call, &partition, SortRange::All, page, |item| {
            wanted.as_deref().is_none_or(|wanted| status(item) == wanted)
        })
        .await?;
        Ok(Reply::ok(listed))
    })
}

pub fn get_handler() -> Handler {
    handler(|call: Call| async move {
        let (_, item) = owned(&call).await?;
        Ok(Reply::ok(view(&item)))
    })
}

pub fn approve_handler() -> Handler {
    handler(|call: Call| async move {
        let (space, item) = owned(&call).await?;
        match status(&item) {
            "pending" => {}
            // Approved before: approving again changes nothing.
            "approved" | "performed" | "failed" => return Ok(Reply::ok(view(&item))),
            _ => {
                return Err(ApiError::Conflict(
                    "The approval was rejected; it cannot be approved now.".into(),
                ));
            }
        }
        let now = call.engine.now();
        let mut body = item.body.clone();
        body.insert("status".into(), json!("approved"));
        body.insert("decided_at".into(), json!(format_datetime(now)));
        let decided = Item::new(item.pk.clone(), item.sk.clone(), body.clone()).with_version(item.version + 1);
        let id = item.sk.clone();
        let job = NewJob::new(PERFORM, json!({"space_id": space, "approval_id": id}), now)
            .named(format!("approval-{id}"))
            .write();
        decide(&call, &space, &item, decided, vec![job], "approval.approved").await
    })
}

pub fn reject_handler() -> Handler {
    handler(|call: Call| async move {
        let reason = match call.body.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if !text.trim().is_empty() && text.chars().count() <= MAX_REASON_CHARS => {
                Some(text.trim().to_owned())
            }
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "reason",
                    format!("must be 1 to {MAX_REASON_CHARS} characters"),
                ));
            }
        };
        let (space, item) = owned(&call).await?;
        match status(&item) {
            "pending" => {}
            "rejected" => return Ok(Reply::ok(view(&item))),
            _ => {
                return Err(ApiError::Conflict(
                    "The approval was approved already; it cannot be rejected now.".into(),
                ));
            }
        }
        let mut body = item.body.clone();
        body.insert("status".into(), json!("rejected"));
        body.insert("decided_at".into(), json!(format_datetime(call.engine.now())));
        body.insert("reason".into(), json!(reason));
        let decided = Item::new(item.pk.clone(), item.sk.clone(), body).with_version(item.version + 1);
        decide(&call, &space, &item, decided, Vec::new(), "approval.rejected").await
    })
}

/// Writes the owner's decision with its event (and job), if nobody decided meanwhile.
async fn decide(
    call: &Call,
    space: &str,
    before: &Item,
    decided: Item,
    mut writes: Vec<Write>,
    event: &str,
) -> Result<Reply, ApiError> {
    let shown = view(&decided);
    writes.push(Write::put(decided, Condition::Version(before.version)));
    writes.push(event_write(
        space,
        event,
        &before.sk,
        shown.clone(),
        &call.principal,
        call.engine.now(),
    ));
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Reply::ok(shown)),
        Err(StoreError::TransactionConflict { .. }) => Err(ApiError::Conflict(
            "The approval was decided meanwhile; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// Runs an approved call once and records its answer.
#[derive(Clone)]
pub struct Perform {
    operations: OperationTable,
}

impl Perform {
    /// `operations`: every operation a space key can call (the catalogue), read on the
    /// first call of one.
    pub fn new(operations: fn() -> Vec<Operation>) -> Perform {
        Perform {
            operations: OperationTable::new(operations),
        }
    }

    fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }
}

#[async_trait]
impl space_worker::Handler for Perform {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, id) = (field("space_id")?, field("approval_id")?);
        let at = approvals::key(space, id);
        let Some(item) = engine.store().get(&at.pk, &at.sk).await? else {
            return Ok(Outcome::Done);
        };
        if status(&item) != "approved" {
            return Ok(Outcome::Done);
        }
        let name = item.body.get("operation").and_then(Value::as_str).unwrap_or_default();
        let key_id = item.body.get("key_id").and_then(Value::as_str).unwrap_or_default();
        let outcome = match (
            self.operation(name),
            approvals::key_principal(engine, space, key_id).await,
        ) {
            (Some(operation), Ok(principal)) => {
                let call = approvals::replay(&item.body, engine.clone(), principal);
                execute_approved(operation, call, id).await
            }
            (None, _) => Err(ApiError::NotFound(format!("The operation `{name}` no longer exists."))),
            (_, Err(error)) => Err(error),
        };
        let (answered, body) = match outcome {
            Ok(reply) => (reply.status, reply.body.unwrap_or(Value::Null)),
            // An earlier run did it and died before recording its answer: performed, and
            // the result names what it made.
            Err(ApiError::AlreadyApplied { applied_id, .. }) => (http::StatusCode::OK, json!({"id": applied_id})),
            // A fault of the platform is worth another run: the call's idempotency record
            // keeps a second run from doing it twice.
            Err(ApiError::Internal(message)) => return Err(JobError::Retry(message)),
            Err(ApiError::Unavailable { message, .. }) => return Err(JobError::Retry(message)),
            Err(error) => (error.status(), error.body()),
        };
        let done = if answered.is_success() { "performed" } else { "failed" };
        let mut body_after = item.body.clone();
        body_after.insert("status".into(), json!(done));
        body_after.insert("result".into(), json!({"status": answered.as_u16(), "body": body}));
        let after = Item::new(item.pk.clone(), item.sk.clone(), body_after).with_version(item.version + 1);
        let shown = view(&after);
        let writes = vec![
            Write::put(after, Condition::Version(item.version)),
            event_write(
                space,
                &format!("approval.{done}"),
                id,
                shown,
                &Principal::system(),
                engine.now(),
            ),
        ];
        match engine.store().transact(writes).await {
            Ok(()) | Err(StoreError::TransactionConflict { .. }) => Ok(Outcome::Done),
            Err(error) => Err(error.into()),
        }
    }
}
