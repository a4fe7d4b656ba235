//! Automations: step lists the Space's owner defines through the account API ([`owner`]),
//! started by a key (`POST /automations/{id}/run`), by an event of the Space, or by a
//! schedule ([`triggers`]), and carried out step by step on the worker ([`runs`],
//! [`steps`]). A key reads automations and their runs and, with `automations:run`, runs one.

pub mod definition;
pub mod owner;
pub mod placeholders;
pub mod runs;
pub mod schedule;
pub mod steps;
pub mod triggers;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::owned::owners_copy;
use space_http::resource::{PageRequest, list_partition, list_schema, page_params};
use space_http::{ApiError, Engine, Operation, Schema, keys};
use space_store::SortRange;

pub use runs::{STEP, Step};
pub use triggers::{TICK, Tick, Triggers};

/// Where a Space's automations are kept.
pub const COLLECTION: &str = "automations";
/// The id prefix of automations.
pub const ID_PREFIX: &str = "aut";
/// The longest `input` a run takes, as JSON.
pub const MAX_INPUT_BYTES: usize = 16 * 1024;

pub fn automations_partition(space: &str) -> String {
    keys::collection_partition(space, COLLECTION)
}

/// What a run does and as whom, for the descriptions of the operations.
pub const RUN_RULES: &str = "The run is queued and answered 202; the worker then carries out its steps in order, each \
     once. Every step acts as the key that called `run`: a step whose operation the key may not call (scope, toolsets, \
     read-only, its daily cap) fails with that answer recorded on the step, the run is `failed` and the later steps are \
     `skipped`. With a key whose `approval_required` names the step's scope, a sending step succeeds with the pending \
     approval as its output, and sends once the owner approves it. `add_tag` tags `input.contact_id`. Event and \
     schedule runs act as the automation's `run_as_key_id` in the same way.";

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Automations, action))
}

fn id_param() -> Param {
    Param::path("id", "The automation's id.")
}

fn run_body() -> Value {
    json!({
        "type": "object",
        "properties": {
            "input": {
                "type": "object",
                "description": "What the run is about, passed to its steps and webhooks: `contact_id` names the contact `add_tag` tags and `{{contact.<field>}}` reads; `{{input.<name>}}` in a step's text takes the value of `<name>`.",
                "properties": {"contact_id": {"type": "string"}}
            }
        },
        "additionalProperties": false
    })
}

/// Every operation of the family (the Space API's; the owner's are the account API's).
pub fn operations() -> Vec<Operation> {
    let mut list = Operation::new(
        "automations_list",
        Method::GET,
        "/automations",
        access(Action::Read),
        Effect::Read,
        "List the Space's automations (defined by the owner), newest first",
        handler(|call: Call| async move {
            let space = call.space_id()?.to_owned();
            let page = PageRequest::parse(&call)?;
            let listed = list_partition(&call, &automations_partition(&space), SortRange::All, page, |_| true).await?;
            Ok(Reply::ok(listed))
        }),
    );
    list.params = page_params();
    let mut runs_list = Operation::new(
        "automations_runs_list",
        Method::GET,
        "/automations/{id}/runs",
        access(Action::Read),
        Effect::Read,
        "List an automation's runs, newest first, with each step's status (filter by status)",
        handler(|call: Call| async move {
            let space = call.space_id()?.to_owned();
            let id = call.path_param("id")?.to_owned();
            let wanted = call.query_param("status").map(str::to_owned);
            if let Some(wanted) = &wanted
                && !runs::RUN_STATUSES.contains(&wanted.as_str())
            {
                return Err(ApiError::invalid_field(
                    "status",
                    format!("must be one of {}", runs::RUN_STATUSES.join(", ")),
                ));
            }
            let page = PageRequest::parse(&call)?;
            owner::load(&call.engine, &space, &id).await?;
            let listed = list_partition(
                &call,
                &runs::runs_partition(&space, &id),
                SortRange::All,
                page,
                |item| {
                    wanted
                        .as_deref()
                        .is_none_or(|wanted| item.body.get("status").and_then(Value::as_str) == Some(wanted))
                },
            )
            .await?;
            Ok(Reply::ok(listed))
        }),
    );
    runs_list.params = vec![id_param()];
    runs_list.params.push(Param::query(
        "status",
        json!({"type": "string", "enum": runs::RUN_STATUSES}),
        "Only runs in this status.",
    ));
    runs_list.params.extend(page_params());
    let mut operations = vec![
        list.answers(StatusCode::OK, || list_schema(definition::schema())),
        Operation::new(
            "automations_get",
            Method::GET,
            "/automations/{id}",
            access(Action::Read),
            Effect::Read,
            "Get an automation: its trigger and steps",
            handler(|call: Call| async move {
                let space = call.space_id()?.to_owned();
                let item = owner::load(&call.engine, &space, call.path_param("id")?).await?;
                Ok(Reply::ok(owner::view(&item)).with_etag(item.version))
            }),
        )
        .with_params(vec![id_param()])
        .answers(StatusCode::OK, Schema::lazy(definition::schema).named("Automation")),
        Operation::new(
            "automations_run",
            Method::POST,
            "/automations/{id}/run",
            access(Action::Run),
            Effect::Live,
            "Run an automation now, as this key: its steps may create, tag and send",
            handler(run),
        )
        .with_description(RUN_RULES)
        .with_params(vec![id_param()])
        .with_optional_body(Schema::lazy(run_body).named("AutomationRun"))
        .answers(
            StatusCode::ACCEPTED,
            Schema::lazy(runs::schema).named("AutomationRunStatus"),
        ),
        runs_list.answers(StatusCode::OK, || list_schema(runs::schema())),
        Operation::new(
            "automations_runs_get",
            Method::GET,
            "/automations/{id}/runs/{run_id}",
            access(Action::Read),
            Effect::Read,
            "Get a run: its status and each step's status, output, error and times",
            handler(|call: Call| async move {
                let space = call.space_id()?.to_owned();
                let id = call.path_param("id")?;
                let run_id = call.path_param("run_id")?;
                let item = call
                    .engine
                    .store()
                    .get(&runs::runs_partition(&space, id), run_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("automation run", run_id))?;
                Ok(Reply::ok(runs::view(&item)).with_etag(item.version))
            }),
        )
        .with_params(vec![id_param(), Param::path("run_id", "The run's id.")])
        .answers(StatusCode::OK, Schema::lazy(runs::schema).named("AutomationRunStatus")),
    ];
    // The owner follows the runs of what they defined, without a key.
    let owners: Vec<Operation> = operations
        .iter()
        .filter(|operation| operation.name.starts_with("automations_runs_"))
        .map(owners_copy)
        .collect();
    operations.extend(owners);
    operations
}

/// Starts a manual run as the calling key.
async fn run(call: Call) -> Result<Reply, ApiError> {
    let input = match &call.body {
        Value::Null => json!({}),
        Value::Object(body) => {
            if let Some(extra) = body.keys().find(|name| name.as_str() != "input") {
                return Err(ApiError::invalid_field(
                    extra,
                    "is not accepted here; send {\"input\": {…}}",
                ));
            }
            match body.get("input") {
                None | Some(Value::Null) => json!({}),
                Some(Value::Object(input)) => {
                    if input.get("contact_id").is_some_and(|id| !id.is_string()) {
                        return Err(ApiError::invalid_field("input.contact_id", "must be a contact's id"));
                    }
                    if Value::Object(input.clone()).to_string().len() > MAX_INPUT_BYTES {
                        return Err(ApiError::invalid_field(
                            "input",
                            format!("must be at most {MAX_INPUT_BYTES} bytes as JSON"),
                        ));
                    }
                    Value::Object(input.clone())
                }
                Some(_) => return Err(ApiError::invalid_field("input", "must be an object")),
            }
        }
        _ => return Err(ApiError::invalid_field("body", "must be a JSON object")),
    };
    let space = call.space_id()?.to_owned();
    let automation = owner::load(&call.engine, &space, call.path_param("id")?).await?;
    if automation.body.get("enabled") == Some(&json!(false)) {
        return Err(ApiError::Conflict(
            "The automation is disabled; the owner can enable it.".into(),
        ));
    }
    let now = call.engine.now();
    let start = runs::Start {
        run_id: space_http::ids::new_id(runs::RUN_PREFIX),
        trigger: json!({"type": "manual"}),
        key_id: call.principal.key_id.clone(),
        input,
        depth: 1,
    };
    let (shown, writes) = runs::start_writes(&space, &automation, start, &call.principal, now);
    call.engine.store().transact(writes).await?;
    Ok(Reply::accepted(shown))
}

/// What this family's Lambda binary carries beyond the table: nothing (steps run on the
/// worker).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
