//! Every family of the API in one list. Adding a family means adding it here; routes,
//! OpenAPI, MCP tools and the deployment manifest all follow from this list.
//!
//! This is the one crate under `shared/` that knows the families: it sits above them,
//! and only the binaries that serve many families (`spacectl`, `space-mcp`) use it.

use axum::Router;
use space_http::{Engine, Operation};

/// What a family's function may touch in AWS, beyond its own logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsAccess {
    /// Read and write items of the table.
    Table,
    /// Create, update and delete secret values (never read them).
    SecretValuesWrite,
    /// Read and write objects in the media bucket.
    MediaBucket,
}

/// One resource family: one crate, one Lambda binary of the same name.
pub struct Family {
    pub name: &'static str,
    pub operations: fn() -> Vec<Operation>,
    pub router: fn() -> Router<Engine>,
    pub aws: &'static [AwsAccess],
}

/// Every family, in a stable order.
pub fn families() -> Vec<Family> {
    vec![
        Family {
            name: "contacts",
            operations: contacts::operations,
            router: contacts::router,
            aws: &[AwsAccess::Table],
        },
        Family {
            name: "tasks",
            operations: tasks::operations,
            router: tasks::router,
            aws: &[AwsAccess::Table],
        },
        Family {
            name: "secrets",
            operations: secrets::operations,
            router: secrets::router,
            aws: &[AwsAccess::Table],
        },
        Family {
            name: "account-api",
            operations: account_api::operations,
            router: account_api::router,
            aws: &[AwsAccess::Table, AwsAccess::SecretValuesWrite],
        },
    ]
}

/// Every operation of every family, in family order.
pub fn operations() -> Vec<Operation> {
    families().iter().flat_map(|family| (family.operations)()).collect()
}

/// The routes of every family, merged.
pub fn routes() -> Router<Engine> {
    families().iter().fold(Router::new(), |router, family| router.merge((family.router)()))
}

/// The OpenAPI document of every operation.
pub fn openapi() -> serde_json::Value {
    let operations = operations();
    let refs: Vec<&Operation> = operations.iter().collect();
    space_http::openapi::spec(&refs, "Space API", env!("CARGO_PKG_VERSION"))
}
