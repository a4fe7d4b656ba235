//! What each step does. Steps that act on the Space call the catalogue's operation as the
//! run's key ([`space_http::execute::execute`]): its scope, toolsets, read-only mode, cap and
//! `approval_required` apply exactly as if the key called it, and a refusal (403, 422, 429)
//! fails the step with that answer. A key that must have a live action approved gets a
//! pending approval: the step succeeds with the approval as its output, and the send happens
//! when (and if) the owner approves it.

use serde_json::{Value, json};
use space_http::execute::execute;
use space_http::operation::Call;
use space_http::{ApiError, Engine};
use space_store::Item;
use space_worker::JobError;

use crate::placeholders;
use crate::runs::{Step, StepResult};

/// The name of the secret `call_webhook` steps of `automation` sign with.
pub fn secret_name(automation: &str) -> String {
    format!("automation-{automation}")
}

fn failed(status: u16, code: &str, message: impl Into<String>) -> StepResult {
    StepResult::Failed {
        output: Value::Null,
        error: json!({"status": status, "code": code, "message": message.into()}),
    }
}

/// The step's text fields with their placeholders filled from the run's input and, when
/// one names it, the run's contact (`input.contact_id`); or why not (the step fails).
async fn filled(
    engine: &Engine,
    space: &str,
    definition: &Value,
    input: &Value,
) -> Result<Result<Value, String>, JobError> {
    const TEMPLATED: &[&str] = &["title", "subject", "text", "to"];
    let texts = |value: &Value| -> Vec<String> {
        match value {
            Value::String(text) => vec![text.clone()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    let named = TEMPLATED
        .iter()
        .flat_map(|field| texts(&definition[*field]))
        .any(|text| placeholders::names_contact(&text));
    let contact = if named {
        let Some(id) = input.get("contact_id").and_then(Value::as_str) else {
            return Ok(Err(
                "The step names the run's contact, and the run is about no contact (`input.contact_id`).".into(),
            ));
        };
        let partition = space_http::keys::collection_partition(space, "contacts");
        match engine.store().get(&partition, id).await? {
            Some(contact) => Some(contact.body),
            None => return Ok(Err(format!("The run's contact `{id}` does not exist."))),
        }
    } else {
        None
    };
    let mut filled = definition.clone();
    for field in TEMPLATED {
        let fill = |text: &str| placeholders::fill(text, input, contact.as_ref());
        let value = match &definition[*field] {
            Value::String(text) => match fill(text) {
                Ok(text) => Value::String(text),
                Err(why) => return Ok(Err(why)),
            },
            Value::Array(list) => {
                let mut each = Vec::with_capacity(list.len());
                for text in list.iter().filter_map(Value::as_str) {
                    match fill(text) {
                        Ok(text) => each.push(Value::String(text)),
                        Err(why) => return Ok(Err(why)),
                    }
                }
                Value::Array(each)
            }
            _ => continue,
        };
        filled[*field] = value;
    }
    Ok(Ok(filled))
}

/// Runs step `index` of `run` once (its side effects keyed by run and step).
pub async fn perform(
    steps: &Step,
    engine: &Engine,
    space: &str,
    automation: &str,
    run: &Item,
    index: usize,
    definition: &Value,
) -> Result<StepResult, JobError> {
    let kind = definition["type"].as_str().unwrap_or_default();
    if kind == "call_webhook" {
        return call_webhook(engine, space, automation, run, index, definition).await;
    }
    let input = run.body.get("input").cloned().unwrap_or(Value::Null);
    let definition = match filled(engine, space, definition, &input).await? {
        Ok(filled) => filled,
        Err(why) => return Ok(failed(422, "VALIDATION_FAILED", why)),
    };
    let definition = &definition;
    let (operation, path, body) = match kind {
        "create_task" => ("tasks_create", vec![], json!({"title": definition["title"]})),
        "add_tag" => {
            let Some(contact) = input.get("contact_id").and_then(Value::as_str) else {
                return Ok(failed(
                    422,
                    "VALIDATION_FAILED",
                    "The run is about no contact: start it with `input.contact_id`, or trigger it with a contact's event.",
                ));
            };
            (
                "contacts_tags_add",
                vec![("id", contact.to_owned())],
                json!({"tags": [definition["tag"]]}),
            )
        }
        "send_mail" => (
            "mail_messages_send",
            vec![],
            json!({
                "from_sender_id": definition["from_sender_id"],
                "to": definition["to"],
                "subject": definition["subject"],
                "text": definition["text"],
            }),
        ),
        "send_sms" => (
            "phone_sms_send",
            vec![],
            json!({"from_number_id": definition["from_number_id"], "to": definition["to"], "text": definition["text"]}),
        ),
        other => {
            return Ok(failed(
                422,
                "VALIDATION_FAILED",
                format!("`{other}` is not a step type"),
            ));
        }
    };
    let Some(operation) = steps.operation(operation) else {
        return Ok(failed(
            404,
            "NOT_FOUND",
            format!("The operation `{operation}` does not exist."),
        ));
    };
    let key_id = run.body.get("key_id").and_then(Value::as_str).unwrap_or_default();
    let mut principal = match space_http::approvals::key_principal(engine, space, key_id).await {
        Ok(principal) => principal,
        Err(error) => return refused(error),
    };
    // What the step does names this automation in its events (see `triggers`).
    principal.cause = Some(space_auth::Cause {
        automation_id: automation.to_owned(),
        depth: run
            .body
            .get(crate::runs::DEPTH)
            .and_then(Value::as_u64)
            .and_then(|depth| u32::try_from(depth).ok())
            .unwrap_or(1),
    });
    let mut call = Call::new(engine.clone(), principal);
    call.path = path.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    call.body = body;
    let idempotency_key = format!("{}.{index}", run.sk);
    match execute(operation, call, Some(&idempotency_key)).await {
        Ok(reply) => Ok(StepResult::Succeeded(reply.body.unwrap_or(Value::Null))),
        Err(error) => refused(error),
    }
}

/// A refused call as the step's failure; a fault of the platform is worth another run (the
/// idempotency record keeps it from acting twice), and a call an earlier run applied is
/// the step's success.
fn refused(error: ApiError) -> Result<StepResult, JobError> {
    match error {
        // An earlier run of the step did it and died before recording its answer.
        ApiError::AlreadyApplied { applied_id, .. } => Ok(StepResult::Succeeded(json!({"id": applied_id}))),
        ApiError::Internal(message) => Err(JobError::Retry(message)),
        ApiError::Unavailable { message, .. } => Err(JobError::Retry(message)),
        error => {
            let body = error.body();
            Ok(StepResult::Failed {
                output: Value::Null,
                error: json!({
                    "status": error.status().as_u16(),
                    "code": error.code(),
                    "message": body["error"]["message"],
                    "fields": body["error"].get("fields").cloned().unwrap_or(Value::Null),
                }),
            })
        }
    }
}

/// Posts `{automation_id, run_id, input}` to the step's URL, signed like webhook deliveries
/// (Standard Webhooks, with the automation's secret; `webhook-id` is `<run id>.<step>` for
/// the receiver to dedupe on). Anything but a 2xx fails the step.
async fn call_webhook(
    engine: &Engine,
    space: &str,
    automation: &str,
    run: &Item,
    index: usize,
    definition: &Value,
) -> Result<StepResult, JobError> {
    let url = definition["url"].as_str().unwrap_or_default();
    let allow_local = engine.allow_local_webhooks();
    let target = match webhooks::guard::parse_target(url, allow_local) {
        Ok(target) => target,
        Err(refused) => {
            return Ok(failed(
                422,
                "VALIDATION_FAILED",
                format!("The URL is refused: {refused}"),
            ));
        }
    };
    let Some(keys) = engine.signing_keys() else {
        return Err(JobError::Retry("no signing keys configured".into()));
    };
    let now = engine.now();
    let secrets = keys
        .get_key(space, &secret_name(automation))
        .await?
        .map(|stored| webhooks::signing::in_force(&stored, now))
        .unwrap_or_default();
    if secrets.is_empty() {
        return Ok(failed(409, "CONFLICT", "The automation has no signing secret."));
    }
    let id = format!("{}.{index}", run.sk);
    let body = json!({
        "automation_id": automation,
        "run_id": run.sk,
        "input": run.body.get("input").cloned().unwrap_or(Value::Null),
    })
    .to_string();
    let timestamp = now.timestamp();
    let signature = webhooks::signing::signature(&secrets, &id, timestamp, body.as_bytes());
    let client = webhooks::guard::client(allow_local).map_err(JobError::Retry)?;
    let sent = client
        .post(target)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    Ok(match sent {
        Ok(answer) if answer.status().is_success() => {
            StepResult::Succeeded(json!({"status": answer.status().as_u16()}))
        }
        Ok(answer) => StepResult::Failed {
            output: json!({"status": answer.status().as_u16()}),
            error: json!({"status": answer.status().as_u16(), "code": "WEBHOOK_FAILED", "message": format!("The endpoint answered HTTP {}.", answer.status().as_u16())}),
        },
        Err(error) => failed(
            502,
            "WEBHOOK_FAILED",
            format!(
                "The endpoint could not be reached: {}",
                if error.is_timeout() {
                    "timed out".to_owned()
                } else {
                    error.to_string()
                }
            ),
        ),
    })
}
