use std::time::Duration;

/// What can go wrong in a store call, in terms the engine can answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The write's condition did not hold (the item exists, is missing, or moved on).
    #[error("the item's condition did not hold")]
    ConditionFailed,
    /// A transaction was refused because the write at `index` failed its condition.
    #[error("transaction write {index} failed its condition")]
    TransactionConflict { index: usize },
    /// Another transaction touched the same items at the same moment; retrying may work.
    #[error("concurrent transactions touched the same items")]
    Contention,
    /// The backend cannot serve right now (down, throttled, timed out).
    #[error("the store is unavailable: {reason}")]
    Unavailable { reason: String, retry_after: Duration },
    /// The request itself is beyond what the store accepts (too many writes, a bad key).
    #[error("the store refused the request: {0}")]
    Rejected(String),
    /// An item larger than any backend holds ([`crate::MAX_ITEM_BYTES`], as DynamoDB
    /// counts): what the client sent makes too large a record.
    #[error("an item of {bytes} bytes is over the {limit} a stored item may hold")]
    TooLarge { bytes: usize, limit: usize },
    /// Stored data could not be decoded, or the backend answered something unexpected.
    #[error("store failure: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn unavailable(reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            reason: reason.into(),
            retry_after: Duration::from_secs(1),
        }
    }

    /// True for a failed condition, in a single write or in a transaction.
    pub fn is_condition_failure(&self) -> bool {
        matches!(
            self,
            StoreError::ConditionFailed | StoreError::TransactionConflict { .. }
        )
    }
}
