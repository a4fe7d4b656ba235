//! `spacectl`: the whole API in one process. The same family routers the Lambda binaries
//! serve are merged on one port, over the embedded store (or DynamoDB).

pub mod bootstrap;
pub mod serve;

use axum::Router;
use axum::routing::get;
use space_http::Engine;

pub use space_catalogue::{openapi, operations};

/// The routes of every family and the generated documents.
pub fn routes() -> Router<Engine> {
    let spec = std::sync::Arc::new(openapi());
    let serve_spec = move || {
        let spec = std::sync::Arc::clone(&spec);
        async move { axum::Json((*spec).clone()) }
    };
    space_catalogue::routes()
        .route("/openapi.json", get(serve_spec.clone()))
        .route("/functions/v1/space-api/openapi.json", get(serve_spec))
}

/// The finished application over `engine`.
pub fn app(engine: Engine) -> Router {
    space_http::rest::finish(routes(), engine)
}
