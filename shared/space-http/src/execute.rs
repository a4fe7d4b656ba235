//! The one path every call takes after authentication, whether it came over REST or MCP:
//! authorize the scope, then run the handler (once per idempotency key for POST).

use http::Method;

use crate::error::ApiError;
use crate::idempotency;
use crate::operation::{Access, Call, Operation, Reply};

/// Authorizes and runs `op`.
pub async fn execute(op: &Operation, call: Call, idempotency_key: Option<&str>) -> Result<Reply, ApiError> {
    if let Access::Space(scope) = op.access {
        call.principal.require(scope)?;
    }
    match idempotency_key {
        Some(key) if op.method == Method::POST => idempotency::run(op, call, key).await,
        _ => (op.handler)(call).await,
    }
}
