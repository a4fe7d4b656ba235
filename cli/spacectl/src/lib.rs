//! `spacectl`: the whole API in one process. The same family routers the Lambda binaries
//! serve are merged on one port, over the embedded store (or DynamoDB). [`client`] holds
//! the owner's commands, which talk to a running API over HTTP.

pub mod bootstrap;
pub mod client;
pub mod log_sink;
pub mod manifest;
pub mod serve;

use axum::Router;
use space_http::Engine;

pub use space_catalogue::{openapi, operations};

/// The routes of every family, the MCP server and the generated documents.
pub fn routes() -> Router<Engine> {
    space_catalogue::routes().merge(space_mcp::router())
}

/// The finished application over `engine`.
pub fn app(engine: Engine) -> Router {
    space_http::rest::finish(routes(), engine)
}

/// The worker over `engine`, with the handler of every kind of job the API enqueues (the
/// dispatcher's list, the one AWS runs).
pub use dispatcher::worker;
