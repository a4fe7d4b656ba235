//! `spacectl`: the whole API in one process. The same family routers the Lambda binaries
//! serve are merged on one port, over the embedded store (or DynamoDB).

pub mod bootstrap;
pub mod serve;

use axum::Router;
use axum::routing::get;
use space_http::{Engine, Operation};

/// Every operation of every family and of the account API, in a stable order.
pub fn operations() -> Vec<Operation> {
    let mut operations = Vec::new();
    operations.extend(contacts::operations());
    operations.extend(tasks::operations());
    operations.extend(secrets::operations());
    operations.extend(account_api::operations());
    operations
}

/// The OpenAPI document of everything `spacectl serve` answers.
pub fn openapi() -> serde_json::Value {
    let operations = operations();
    let refs: Vec<&Operation> = operations.iter().collect();
    space_http::openapi::spec(&refs, "Space API", env!("CARGO_PKG_VERSION"))
}

/// The routes of every family, the account API and the generated documents.
pub fn routes() -> Router<Engine> {
    let spec = std::sync::Arc::new(openapi());
    let serve_spec = move || {
        let spec = std::sync::Arc::clone(&spec);
        async move { axum::Json((*spec).clone()) }
    };
    Router::new()
        .merge(contacts::router())
        .merge(tasks::router())
        .merge(secrets::router())
        .merge(account_api::router())
        .route("/openapi.json", get(serve_spec.clone()))
        .route("/functions/v1/space-api/openapi.json", get(serve_spec))
}

/// The finished application over `engine`.
pub fn app(engine: Engine) -> Router {
    space_http::rest::finish(routes(), engine)
}
