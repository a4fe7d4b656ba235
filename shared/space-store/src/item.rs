use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// One stored item. `version` starts at 1 and is what `If-Match` compares against.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub version: u64,
    /// Unix seconds after which the item no longer exists for any reader.
    pub expires_at: Option<i64>,
    pub body: Map<String, Value>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, body: Map<String, Value>) -> Item {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            version: 1,
            expires_at: None,
            body,
        }
    }

    pub fn with_version(mut self, version: u64) -> Item {
        self.version = version;
        self
    }

    pub fn expiring_at(mut self, unix_seconds: i64) -> Item {
        self.expires_at = Some(unix_seconds);
        self
    }

    /// Whether a reader at `now` (unix seconds) must treat the item as gone.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// One stored item's version and body as JSON text, for a reader that decodes the body
/// into its own type or passes it on as it is (the key lookup, a `GET` of one item).
#[derive(Debug, Clone)]
pub struct RawItem {
    pub version: u64,
    /// Unix seconds after which the item no longer exists for any reader.
    pub expires_at: Option<i64>,
    pub body: Box<RawValue>,
}

/// A precondition on the item a write touches. Expired items count as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Condition {
    #[default]
    None,
    NotExists,
    Exists,
    /// The item exists and has exactly this version.
    Version(u64),
}

impl Condition {
    /// Evaluates the condition against what is stored now.
    pub fn holds(self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Condition::None, _) => true,
            (Condition::NotExists, current) => current.is_none(),
            (Condition::Exists, current) => current.is_some(),
            (Condition::Version(expected), Some(item)) => item.version == expected,
            (Condition::Version(_), None) => false,
        }
    }
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Writes nothing; fails the transaction unless the condition holds.
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Adds `by` (one for a quota) to a counter unless that would take it past `limit`,
    /// failing the transaction then: a quota taken in the same transaction as the action it allows, so an action
    /// that fails takes nothing and two racing for the last unit cannot both have it. The
    /// counter is an item whose version is its count; its window belongs in its key (a day
    /// in the sort key), and `expires_at` (unix seconds, after the window) only lets the
    /// store drop it.
    Count {
        pk: String,
        sk: String,
        limit: u64,
        expires_at: i64,
        /// How much to add: one unit of a quota, or several items' worth of a usage count
        /// written in one transaction (which touches each counter once).
        by: u64,
    },
}

impl Write {
    pub fn put(item: Item, condition: Condition) -> Write {
        Write::Put { item, condition }
    }

    pub fn delete(pk: impl Into<String>, sk: impl Into<String>, condition: Condition) -> Write {
        Write::Delete {
            pk: pk.into(),
            sk: sk.into(),
            condition,
        }
    }

    pub fn check(pk: impl Into<String>, sk: impl Into<String>, condition: Condition) -> Write {
        Write::Check {
            pk: pk.into(),
            sk: sk.into(),
            condition,
        }
    }

    /// See [`Write::Count`].
    pub fn count(pk: impl Into<String>, sk: impl Into<String>, limit: u64, expires_at: i64) -> Write {
        Write::Count {
            pk: pk.into(),
            sk: sk.into(),
            limit,
            expires_at,
            by: 1,
        }
    }

    pub fn key(&self) -> (&str, &str) {
        match self {
            Write::Put { item, .. } => (&item.pk, &item.sk),
            Write::Delete { pk, sk, .. } | Write::Check { pk, sk, .. } | Write::Count { pk, sk, .. } => (pk, sk),
        }
    }

    /// The precondition on the item; a count's limit is a condition of its own.
    pub fn condition(&self) -> Condition {
        match self {
            Write::Put { condition, .. } | Write::Delete { condition, .. } | Write::Check { condition, .. } => {
                *condition
            }
            Write::Count { .. } => Condition::None,
        }
    }
}

/// Which sort keys of a partition a query visits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SortRange {
    #[default]
    All,
    BeginsWith(String),
    /// Both ends inclusive.
    Between(String, String),
}

impl SortRange {
    pub fn contains(&self, sk: &str) -> bool {
        match self {
            SortRange::All => true,
            SortRange::BeginsWith(prefix) => sk.starts_with(prefix.as_str()),
            SortRange::Between(low, high) => low.as_str() <= sk && sk <= high.as_str(),
        }
    }
}

/// A page of one partition, in sort-key order or its reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    pub range: SortRange,
    /// Resume strictly after this sort key (in the direction of the scan).
    pub after: Option<String>,
    pub limit: usize,
    pub descending: bool,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Query {
        Query {
            pk: pk.into(),
            range: SortRange::All,
            after: None,
            limit: 100,
            descending: false,
        }
    }

    pub fn range(mut self, range: SortRange) -> Query {
        self.range = range;
        self
    }

    pub fn after(mut self, sk: Option<String>) -> Query {
        self.after = sk;
        self
    }

    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = limit;
        self
    }

    pub fn descending(mut self, descending: bool) -> Query {
        self.descending = descending;
        self
    }
}

/// What a query returns. `last_sk` is set when the scan stopped before the partition's
/// end, so a caller can continue with `after(last_sk)`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub last_sk: Option<String>,
}

/// A walk over every stored item whose partition key starts with `prefix`, across
/// partitions: what removing all of a tenant's data needs, never what serving a request
/// needs (on DynamoDB it reads the whole table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub prefix: String,
    /// Resume strictly after this key (`pk`, `sk`), where the last page stopped.
    pub after: Option<(String, String)>,
    /// Items the backend examines for one page; a page may hold fewer matches, even none.
    pub limit: usize,
}

impl Scan {
    pub fn prefix(prefix: impl Into<String>) -> Scan {
        Scan {
            prefix: prefix.into(),
            after: None,
            limit: 1000,
        }
    }

    pub fn after(mut self, key: Option<(String, String)>) -> Scan {
        self.after = key;
        self
    }

    pub fn limit(mut self, limit: usize) -> Scan {
        self.limit = limit;
        self
    }
}

/// A page of a [`Scan`]: the keys of the items found, expired ones included (they are still
/// stored), and where to resume while the walk is not over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    pub keys: Vec<(String, String)>,
    pub last: Option<(String, String)>,
}
