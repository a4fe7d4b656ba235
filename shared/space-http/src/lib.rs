//! The engine every Space API function runs on.
//!
//! A family declares [`Operation`]s (usually through a [`Resource`]); this crate turns
//! them into authenticated, rate-limited, idempotent REST routes ([`rest`]), an OpenAPI
//! document ([`openapi`]) and, through the MCP server, tools — all running the same
//! handler through [`execute`].

/// Every binary of the API (each Lambda function, spacectl) links this crate, so the
/// allocator is chosen once, here. A request allocates and frees many small JSON values
/// from several threads; glibc's malloc spent about a quarter of the CPU of an MCP
/// `tools/call` under load (perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod auth;
pub mod cursor;
pub mod engine;
pub mod error;
pub mod events;
pub mod execute;
pub mod fields;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod lambda;
pub mod openapi;
pub mod operation;
pub mod request_id;
pub mod resource;
pub mod rest;

pub use engine::Engine;
pub use error::{ApiError, FieldErrors};
pub use execute::execute;
pub use fields::{Field, FieldKind};
pub use operation::{Access, Call, Effect, Operation, Param, Reply, handler};
pub use resource::{Filter, Parent, Resource};
