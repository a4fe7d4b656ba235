//! Storage for the Space API, shaped like DynamoDB so that the embedded backend and the
//! DynamoDB backend can be swapped without the engine noticing.
//!
//! An [`Item`] lives at a partition key and a sort key, carries a JSON body, a version for
//! optimistic concurrency and an optional expiry. Expired items are invisible on every
//! read, whether or not the backend has deleted them yet (DynamoDB's TTL deletes late).

mod clock;
mod error;
mod item;
mod read_cache;
mod store;

pub mod blobs;
pub mod deferred;
pub mod dynamodb;
pub mod embedded;
pub mod hooked;
pub mod secrets;
pub mod signing_cache;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::StoreError;
pub use item::{Condition, Item, Page, Query, RawItem, Scan, ScanPage, SortRange, Write};
pub use store::{MAX_ITEM_BYTES, MAX_NESTING, MAX_TRANSACTION_WRITES, Store, item_size, pack_transactions, value_size};
