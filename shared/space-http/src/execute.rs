//! The one path every call takes after authentication, whether it came over REST or MCP:
//! authorize the scope, then run the handler (once per idempotency key for POST), counting
//! it against the key's cap on the live action when it has one — or, for a live action the
//! key must have approved, write it down for the owner instead ([`crate::approvals`]).

use std::sync::Arc;

use http::Method;
use serde_json::Value;

use crate::approvals;
use crate::caps::{self, CapStore};
use crate::error::ApiError;
use crate::idempotency;
use crate::operation::{Access, Call, Effect, Operation, Reply, handler};
use space_auth::{Principal, Scope};

/// Scope, pinned toolsets and read-only mode: everything a space key's record says about
/// what it may call. MCP filters its tool list with the same function.
pub fn authorize(principal: &Principal, scope: Scope, effect: Effect) -> Result<(), ApiError> {
    principal.require(scope)?;
    if !principal.reaches(scope.domain) {
        return Err(ApiError::Forbidden(format!(
            "This API key is pinned to other toolsets and cannot reach `{}`.",
            scope.domain
        )));
    }
    if principal.read_only && !effect.is_read_only() {
        return Err(ApiError::Forbidden("This API key is read-only.".into()));
    }
    Ok(())
}

/// Authorizes and runs `op`. An empty query parameter (`?cursor=`) is one left out, as
/// OpenAPI documents it (`allowEmptyValue`), whichever way the call arrived.
pub async fn execute(op: &Operation, mut call: Call, idempotency_key: Option<&str>) -> Result<Reply, ApiError> {
    call.query.retain(|_, value| !value.is_empty());
    if op.takes_no_input() {
        match &call.body {
            Value::Null => {}
            Value::Object(object) if object.is_empty() => {}
            Value::Object(object) => {
                let names = object
                    .keys()
                    .map(|name| (name.clone(), vec!["is not accepted here; send {}".into()]));
                return Err(ApiError::validation(names.collect()));
            }
            _ => return Err(ApiError::invalid_field("body", "must be {}")),
        }
    }
    if let Access::Space(scope) = op.access {
        authorize(&call.principal, scope, op.effect)?;
        if op.effect == Effect::Live && call.principal.needs_approval(scope) {
            return ask_approval(op, call, idempotency_key, scope.to_string()).await;
        }
    }
    spend_space_budget(op, &call).await?;
    counted(op, call, |op, call| run(op, call, idempotency_key)).await
}

/// Counts a call of a budgeted operation against its Space ([`Operation::space_budget`]).
async fn spend_space_budget(op: &Operation, call: &Call) -> Result<(), ApiError> {
    let (Some(per_minute), Some(space)) = (op.space_budget, &call.principal.space_id) else {
        return Ok(());
    };
    let window = space_auth::RateWindow::at(call.engine.now());
    let counter = crate::keys::operation_counter(space, &op.name, window.start);
    let decision = crate::budget::spend(&call.engine, &counter, &window, per_minute).await?;
    if decision.allowed {
        return Ok(());
    }
    Err(crate::budget::refusal(
        &decision,
        format!(
            "`{}` may be called {per_minute} times a minute per Space; retry in {} s.",
            op.name, decision.resets_in
        ),
    ))
}

/// What a budgeted operation's description says of its budget.
pub fn budget_rule(per_minute: u32) -> String {
    format!(
        "Reads much per call: a Space may call it {per_minute} times a minute (all its keys together); past that \
         it answers 429 `RATE_LIMITED` with `Retry-After`."
    )
}

/// Runs a call the owner approved ([`crate::approvals`]): authorized again (the key is read
/// afresh), counted against its cap, and done once whatever its method — the approval's id
/// is its idempotency key.
pub async fn execute_approved(op: &Operation, call: Call, approval_id: &str) -> Result<Reply, ApiError> {
    if let Access::Space(scope) = op.access {
        authorize(&call.principal, scope, op.effect)?;
    }
    counted(op, call, |op, call| idempotency::run(op, call, approval_id)).await
}

/// A pending approval in place of the call: with an `Idempotency-Key`, a retry answers the
/// same approval instead of asking again.
async fn ask_approval(
    op: &Operation,
    call: Call,
    idempotency_key: Option<&str>,
    scope: String,
) -> Result<Reply, ApiError> {
    let Some(key) = idempotency_key else {
        return approvals::request(op, call, &scope).await;
    };
    let mut asking = op.clone();
    let waiting = op.clone();
    asking.handler = handler(move |call| {
        let waiting = waiting.clone();
        let scope = scope.clone();
        async move { approvals::request(&waiting, call, &scope).await }
    });
    idempotency::run(&asking, call, key).await
}

/// Runs `perform`, counting it against the key's cap on the operation's live action when
/// the key limits it.
async fn counted<'a, F, Fut>(op: &'a Operation, mut call: Call, perform: F) -> Result<Reply, ApiError>
where
    F: FnOnce(&'a Operation, Call) -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ApiError>>,
{
    let capped = match (op.cap, &call.principal.space_id) {
        (Some(cap), Some(space)) => call.principal.limit(cap).map(|limit| (cap, limit, space.clone())),
        _ => None,
    };
    let Some((cap, limit, space)) = capped else {
        return perform(op, call).await;
    };
    let now = call.engine.now();
    let counting: Arc<CapStore> = Arc::new(caps::cap_store(
        call.engine.store_arc(),
        caps::Counted {
            space: &space,
            key_id: &call.principal.key_id,
            cap,
            limit,
            units: call.cap_units.clone(),
            now,
        },
    ));
    call.engine = call.engine.with_store(counting.clone());
    match perform(op, call).await {
        // However the handler reported its failed transaction, the cap refused it.
        Err(_) if counting.hook().refused() => Err(caps::reached(cap, limit, now)),
        outcome => outcome,
    }
}

/// Runs the handler, once per idempotency key for POST.
async fn run(op: &Operation, call: Call, idempotency_key: Option<&str>) -> Result<Reply, ApiError> {
    // Visitors share one principal: a replay store keyed by it would hand one visitor's
    // response (a form submission) to another, so public routes take no Idempotency-Key.
    let replayable = !matches!(op.access, Access::Public { .. });
    match idempotency_key {
        // Boxed: its state is larger than the rest of a request's future, which every
        // request (most without a key) would otherwise carry and move around.
        Some(key) if op.method == Method::POST && replayable => Box::pin(idempotency::run(op, call, key)).await,
        _ => (op.handler)(call).await,
    }
}
