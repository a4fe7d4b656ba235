//! The embedded backend: one redb database, in a file (crash-safe, every commit durable)
//! or in memory (tests). Rate counters live in process memory: they are bookkeeping for
//! the current minute and the store contract lets a backend keep them off disk.
//!
//! Writes are committed in groups: redb has one writer at a time and each durable commit
//! waits for the disk, so writes that arrive while a commit is running wait for the next
//! one and share it. Each keeps its own conditions and outcome (one that fails its
//! condition changes nothing, the others commit); one fsync serves them all.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::item::{Condition, Item, Page, Query, RawItem, Scan, ScanPage, SortRange, Write};
use crate::read_cache::ReadCache;
use crate::store::{Store, holdable_key, validate_item, validate_transaction};

/// Items keyed by `pk \0 sk`, so a partition is one contiguous, ordered range.
const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
const SEPARATOR: char = '\0';
/// Above every character a key can hold; closes a prefix range.
const KEY_CEILING: char = char::MAX;
/// Prune expired counters once the map holds this many.
const COUNTER_PRUNE_AT: usize = 4096;
/// redb's page cache. Bounded, so a long-running server's memory stays flat as the file
/// grows (redb's default is 1 GiB); the OS page cache serves the rest of the file.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// An item as redb holds it: `pk` and `sk` are the table key, the rest is this JSON.
/// Generic over the body so that writing borrows it instead of copying it.
#[derive(Serialize, Deserialize)]
struct StoredItem<B> {
    #[serde(rename = "v")]
    version: u64,
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(rename = "b")]
    body: B,
}

/// Counter values and expiry (unix seconds), by partition and sort key.
type Counters = HashMap<(String, String), (u64, i64)>;

/// One write waiting for the next group commit: its writes, checked and applied
/// together, and where its outcome goes.
struct Pending {
    writes: Vec<Write>,
    /// A single put or delete answers `ConditionFailed`; a transaction names its write.
    single: bool,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// Writes waiting for a commit, and whether a committer is running.
#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    committing: bool,
}

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    queue: Arc<Mutex<Queue>>,
    counters: Arc<Mutex<Counters>>,
    /// Items read since the last commit (see [`ReadCache`]).
    cache: Arc<ReadCache>,
    clock: Arc<dyn Clock>,
    /// File-backed commits fsync; they run on the blocking pool to keep the runtime free.
    durable: bool,
}

impl EmbeddedStore {
    /// Opens (or creates) the database file at `path`.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Internal(format!("cannot open {}: {e}", path.display())))?;
        Self::from_database(db, true)
    }

    /// A store that lives and dies with the process.
    pub fn in_memory() -> EmbeddedStore {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory redb database always opens");
        Self::from_database(db, false).expect("an in-memory redb database always takes a table")
    }

    /// Replaces the clock (tests move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> EmbeddedStore {
        self.clock = clock;
        self
    }

    fn from_database(db: Database, durable: bool) -> Result<EmbeddedStore, StoreError> {
        let txn = db.begin_write().map_err(internal)?;
        txn.open_table(ITEMS).map_err(internal)?;
        txn.commit().map_err(internal)?;
        Ok(EmbeddedStore {
            db: Arc::new(db),
            queue: Arc::default(),
            counters: Arc::default(),
            cache: Arc::default(),
            clock: Arc::new(SystemClock),
            durable,
        })
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Commits `writes` (all or none, each on its condition) in the next group commit.
    async fn write(&self, writes: Vec<Write>, single: bool) -> Result<(), StoreError> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.pending.push(Pending { writes, single, reply });
            !std::mem::replace(&mut queue.committing, true)
        };
        if start {
            // The first writer to find no committer runs one until the queue is empty; on
            // the blocking pool when commits hit the disk. It runs to the end even when its
            // caller stops waiting: others' writes depend on it.
            let store = self.clone();
            if self.durable {
                tokio::task::spawn_blocking(move || store.commit_all());
            } else {
                store.commit_all();
            }
        }
        outcome
            .await
            .map_err(|_| StoreError::Internal("the commit stopped before answering".into()))?
    }

    /// Commits what is queued, group after group, until nothing is.
    fn commit_all(&self) {
        loop {
            let group = {
                let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if queue.pending.is_empty() {
                    queue.committing = false;
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            let now = self.now();
            match commit_group(&self.db, &group, now) {
                Ok(outcomes) => {
                    // Readers must not see a cached item older than what just committed.
                    self.cache.invalidate();
                    for (pending, outcome) in group.into_iter().zip(outcomes) {
                        let _ = pending.reply.send(outcome);
                    }
                }
                Err(error) => {
                    self.cache.invalidate();
                    for pending in group {
                        let _ = pending.reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// The live item at `pk`/`sk` with its body as stored text: from the read cache, or
    /// read (and cached) in a read transaction.
    fn read_cached(&self, pk: &str, sk: &str) -> Result<Option<Arc<RawItem>>, StoreError> {
        if !holdable_key(pk, sk) {
            return Ok(None);
        }
        let key = composite(pk, sk)?;
        let item = match self.cache.get(&key) {
            Some(item) => item,
            None => {
                let generation = self.cache.generation();
                let txn = self.db.begin_read().map_err(internal)?;
                let table = txn.open_table(ITEMS).map_err(internal)?;
                let Some(guard) = table.get(key.as_str()).map_err(internal)? else {
                    return Ok(None);
                };
                let stored: StoredItem<&RawValue> = serde_json::from_slice(guard.value())
                    .map_err(|e| StoreError::Internal(format!("corrupt item {pk}/{sk}: {e}")))?;
                let item = Arc::new(RawItem {
                    version: stored.version,
                    expires_at: stored.expires_at,
                    body: stored.body.to_owned(),
                });
                self.cache.insert(key, generation, Arc::clone(&item));
                item
            }
        };
        let expired = item.expires_at.is_some_and(|at| at <= self.now());
        Ok((!expired).then_some(item))
    }
}

fn internal(error: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(error.to_string())
}

fn composite(pk: &str, sk: &str) -> Result<String, StoreError> {
    if pk.contains(SEPARATOR) || sk.contains(SEPARATOR) {
        return Err(StoreError::Rejected("keys may not contain NUL characters".into()));
    }
    let mut key = String::with_capacity(pk.len() + sk.len() + 1);
    key.push_str(pk);
    key.push(SEPARATOR);
    key.push_str(sk);
    Ok(key)
}

fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, StoreError> {
    let stored: StoredItem<Map<String, Value>> =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Internal(format!("corrupt item {pk}/{sk}: {e}")))?;
    Ok(Item {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        version: stored.version,
        expires_at: stored.expires_at,
        body: stored.body,
    })
}

fn encode(item: &Item) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&StoredItem {
        version: item.version,
        expires_at: item.expires_at,
        body: &item.body,
    })
    .map_err(internal)
}

/// Reads the live (unexpired) item at a key inside any table handle.
fn read_live<T: ReadableTable<&'static str, &'static [u8]>>(
    table: &T,
    pk: &str,
    sk: &str,
    now: i64,
) -> Result<Option<Item>, StoreError> {
    let key = composite(pk, sk)?;
    let Some(guard) = table.get(key.as_str()).map_err(internal)? else {
        return Ok(None);
    };
    let item = decode(pk, sk, guard.value())?;
    Ok((!item.is_expired(now)).then_some(item))
}

/// One redb transaction for a group: each pending write's conditions are checked against
/// what the group has written so far, and its writes applied only if all hold. Returns each
/// one's outcome; an error here (the disk, an encoding) fails the whole group, uncommitted.
fn commit_group(db: &Database, group: &[Pending], now: i64) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let txn = db.begin_write().map_err(internal)?;
    let mut outcomes = Vec::with_capacity(group.len());
    {
        let mut table = txn.open_table(ITEMS).map_err(internal)?;
        for pending in group {
            let mut failed = None;
            for (index, write) in pending.writes.iter().enumerate() {
                let (pk, sk) = write.key();
                if let Write::Count { limit, by, .. } = write {
                    let used = read_live(&table, pk, sk, now)?.map_or(0, |counter| counter.version);
                    if used.saturating_add(*by) > *limit {
                        failed = Some(if pending.single {
                            StoreError::ConditionFailed
                        } else {
                            StoreError::TransactionConflict { index }
                        });
                        break;
                    }
                    continue;
                }
                let condition = write.condition();
                if condition != Condition::None && !condition.holds(read_live(&table, pk, sk, now)?.as_ref()) {
                    failed = Some(if pending.single {
                        StoreError::ConditionFailed
                    } else {
                        StoreError::TransactionConflict { index }
                    });
                    break;
                }
            }
            if let Some(error) = failed {
                outcomes.push(Err(error));
                continue;
            }
            for write in &pending.writes {
                apply(&mut table, write, now)?;
            }
            outcomes.push(Ok(()));
        }
    }
    txn.commit().map_err(internal)?;
    Ok(outcomes)
}

fn apply(table: &mut redb::Table<&'static str, &'static [u8]>, write: &Write, now: i64) -> Result<(), StoreError> {
    match write {
        Write::Put { item, .. } => {
            let key = composite(&item.pk, &item.sk)?;
            table.insert(key.as_str(), encode(item)?.as_slice()).map_err(internal)?;
        }
        Write::Delete { pk, sk, .. } => {
            let key = composite(pk, sk)?;
            table.remove(key.as_str()).map_err(internal)?;
        }
        Write::Check { .. } => {}
        Write::Count {
            pk, sk, expires_at, by, ..
        } => {
            let used = read_live(&*table, pk, sk, now)?.map_or(0, |counter| counter.version);
            let counter = Item::new(pk.clone(), sk.clone(), Map::new())
                .with_version(used.saturating_add(*by))
                .expiring_at(*expires_at);
            let key = composite(pk, sk)?;
            table
                .insert(key.as_str(), encode(&counter)?.as_slice())
                .map_err(internal)?;
        }
    }
    Ok(())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let Some(cached) = self.read_cached(pk, sk)? else {
            return Ok(None);
        };
        let body = serde_json::from_str(cached.body.get())
            .map_err(|e| StoreError::Internal(format!("corrupt item {pk}/{sk}: {e}")))?;
        Ok(Some(Item {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            version: cached.version,
            expires_at: cached.expires_at,
            body,
        }))
    }

    async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<RawItem>, StoreError> {
        Ok(self.read_cached(pk, sk)?.map(|cached| RawItem::clone(&cached)))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        validate_item(&item)?;
        self.write(vec![Write::Put { item, condition }], true).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        self.write(vec![Write::delete(pk, sk, condition)], true).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let now = self.now();
        let partition_start = composite(&query.pk, "")?;
        let (mut lower, mut upper) = match &query.range {
            SortRange::All => (
                Bound::Included(partition_start.clone()),
                Bound::Included(format!("{partition_start}{KEY_CEILING}")),
            ),
            SortRange::BeginsWith(prefix) => (
                Bound::Included(composite(&query.pk, prefix)?),
                Bound::Included(format!("{}{KEY_CEILING}", composite(&query.pk, prefix)?)),
            ),
            SortRange::Between(low, high) => (
                Bound::Included(composite(&query.pk, low)?),
                Bound::Included(composite(&query.pk, high)?),
            ),
        };
        if let Some(after) = &query.after {
            let resume = composite(&query.pk, after)?;
            if query.descending {
                upper = Bound::Excluded(resume);
            } else {
                lower = Bound::Excluded(resume);
            }
        }
        let txn = self.db.begin_read().map_err(internal)?;
        let table = txn.open_table(ITEMS).map_err(internal)?;
        let bounds = (lower.as_ref().map(String::as_str), upper.as_ref().map(String::as_str));
        let range = table.range::<&str>(bounds).map_err(internal)?;
        let entries: Box<dyn Iterator<Item = _>> = if query.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let limit = query.limit.max(1);
        let mut page = Page::default();
        let mut scanned = 0usize;
        let mut last_sk = None;
        for entry in entries {
            let (key, value) = entry.map_err(internal)?;
            let sk = &key.value()[partition_start.len()..];
            if !query.range.contains(sk) {
                continue;
            }
            if scanned == limit {
                // There is at least one more item: the caller may continue.
                page.last_sk = last_sk;
                return Ok(page);
            }
            scanned += 1;
            last_sk = Some(sk.to_owned());
            let item = decode(&query.pk, sk, value.value())?;
            if !item.is_expired(now) {
                page.items.push(item);
            }
        }
        Ok(page)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&writes)?;
        self.write(writes, false).await
    }

    /// A range of the ordered table: every key of the prefix's partitions is contiguous.
    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError> {
        if scan.prefix.contains(SEPARATOR) {
            return Err(StoreError::Rejected("keys may not contain NUL characters".into()));
        }
        let lower = match &scan.after {
            Some((pk, sk)) => Bound::Excluded(composite(pk, sk)?),
            None => Bound::Included(scan.prefix.clone()),
        };
        let upper: Bound<String> = Bound::Included(format!("{}{KEY_CEILING}", scan.prefix));
        let txn = self.db.begin_read().map_err(internal)?;
        let table = txn.open_table(ITEMS).map_err(internal)?;
        let bounds = (lower.as_ref().map(String::as_str), upper.as_ref().map(String::as_str));
        let limit = scan.limit.max(1);
        let mut page = ScanPage::default();
        for entry in table.range::<&str>(bounds).map_err(internal)? {
            let (key, _) = entry.map_err(internal)?;
            let Some((pk, sk)) = key.value().split_once(SEPARATOR) else {
                return Err(StoreError::Internal(format!(
                    "stored key without a separator: {:?}",
                    key.value()
                )));
            };
            if !pk.starts_with(scan.prefix.as_str()) {
                continue;
            }
            if page.keys.len() == limit {
                page.last = page.keys.last().cloned();
                return Ok(page);
            }
            page.keys.push((pk.to_owned(), sk.to_owned()));
        }
        Ok(page)
    }

    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let writes: Vec<Write> = keys
            .into_iter()
            .filter(|key| seen.insert(key.clone()))
            .map(|(pk, sk)| Write::delete(pk, sk, Condition::None))
            .collect();
        if writes.is_empty() {
            return Ok(());
        }
        self.write(writes, false).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut latest = std::collections::HashMap::with_capacity(items.len());
        for item in items {
            validate_item(&item)?;
            latest.insert((item.pk.clone(), item.sk.clone()), item);
        }
        if latest.is_empty() {
            return Ok(());
        }
        let writes = latest
            .into_values()
            .map(|item| Write::put(item, Condition::None))
            .collect();
        self.write(writes, false).await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        let now = self.now();
        let mut counters = self.counters.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if counters.len() >= COUNTER_PRUNE_AT {
            counters.retain(|_, (_, expiry)| *expiry > now);
        }
        let entry = counters
            .entry((pk.to_owned(), sk.to_owned()))
            .or_insert((0, expires_at));
        if entry.1 <= now {
            *entry = (0, expires_at);
        }
        entry.0 += by;
        entry.1 = entry.1.max(expires_at);
        Ok(entry.0)
    }
}
