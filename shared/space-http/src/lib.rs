//! The engine every Space API function runs on.
//!
//! A family declares [`Operation`]s (usually through a [`Resource`]); this crate turns
//! them into authenticated, rate-limited, idempotent REST routes ([`rest`]), an OpenAPI
//! document ([`openapi`]) and, through the MCP server, tools — all running the same
//! handler through [`execute`].

pub mod approvals;
pub mod auth;
pub mod budget;
pub mod caps;
pub mod cpu;
pub mod cursor;
pub mod email;
pub mod engine;
pub mod error;
pub mod event_types;
pub mod events;
pub mod execute;
pub mod fields;
pub mod idempotency;
pub mod ids;
pub mod index;
pub mod keys;
pub mod lambda;
pub mod listing;
pub mod log;
pub mod openapi;
pub mod operation;
pub mod owned;
pub mod public;
pub mod references;
pub mod request_id;
pub mod resource;
pub mod rest;
pub mod schema;
pub mod usage;
pub mod zones;

pub use email::Email;
pub use engine::Engine;
pub use error::{ApiError, FieldErrors};
pub use execute::execute;
pub use fields::{Field, FieldKind};
pub use operation::{Access, Call, Effect, Operation, Param, Reply, handler};
pub use resource::{Filter, Parent, Resource};
pub use schema::Schema;
