//! Authentication and authorization for the Space API, independent of transport and storage.
//!
//! - [`token`]: the `wks_live_` / `wka_live_` key format, checksummed so a typo is rejected
//!   before any store call, and hashed with SHA-256 at rest.
//! - [`scope`]: the catalogue of domains and which of `read` / `write` / `run` each offers.
//!   This is the single source every route, MCP tool and document is checked against.
//! - [`principal`]: who is calling and what the key may do.
//! - [`caps`]: the live actions a key's daily limits can cap.
//! - [`rate_limit`]: fixed-window arithmetic; the counter itself lives in the store.

pub mod caps;
pub mod principal;
pub mod rate_limit;
pub mod scope;
pub mod token;

pub use caps::{Cap, CapLimit, StoredLimits};
pub use principal::{Cause, KeyRecord, KeyStatus, MissingScope, Principal, PrincipalKind};
pub use rate_limit::{DEFAULT_RATE_LIMIT_PER_MINUTE, FAILED_AUTH_PER_MINUTE, RateDecision, RateWindow};
pub use scope::{Action, Domain, Scope, ScopeError, ScopeSet};
pub use token::{Token, TokenError, TokenHash, TokenKind};
