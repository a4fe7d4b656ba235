//! A store wrapper that fails, slows or throttles chosen calls, for showing what clients
//! see when the store misbehaves. Faults are planned by kind of call and by call number:
//! "fail the 2nd transaction from now", "throttle every write for the next 5 calls",
//! "make every read take 200 ms". A journal of what writes changed lets a test check
//! that a request which failed left nothing half-done.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use space_store::{Condition, Item, Page, Query, Scan, ScanPage, Store, StoreError, Write};

/// The kinds of store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Get,
    Query,
    Put,
    Delete,
    Transact,
    Increment,
    /// A walk across partitions (a Space purge).
    Scan,
    /// A bulk removal (a Space purge).
    DeleteMany,
    /// A bulk write of index entries (an import's words).
    PutMany,
}

impl Kind {
    pub const READS: &[Kind] = &[Kind::Get, Kind::Query, Kind::Scan];
    pub const WRITES: &[Kind] = &[Kind::Put, Kind::Delete, Kind::Transact, Kind::DeleteMany];
    /// Everything but the rate counters, which a request touches before anything else.
    pub const DATA: &[Kind] = &[Kind::Get, Kind::Query, Kind::Put, Kind::Delete, Kind::Transact];
    pub const ALL: &[Kind] = &[
        Kind::Get,
        Kind::Query,
        Kind::Put,
        Kind::Delete,
        Kind::Transact,
        Kind::Increment,
        Kind::Scan,
        Kind::DeleteMany,
    ];
}

/// What happens to a call a plan hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The store is down: the call fails without touching data.
    Unavailable,
    /// The store says "slow down" (DynamoDB's throttling), asking for a later retry.
    Throttled { retry_after: Duration },
    /// The call waits, then goes through.
    Slow(Duration),
    /// The call waits, then fails as a timeout would (nothing written).
    Timeout(Duration),
}

/// Which calls a fault hits: of the listed kinds, the ones numbered `skip + 1` to
/// `skip + times` counted from when the plan was added.
#[derive(Debug, Clone)]
pub struct Plan {
    kinds: Vec<Kind>,
    skip: u64,
    times: Option<u64>,
    fault: Fault,
}

impl Plan {
    /// Every call of these kinds, until told otherwise.
    pub fn on(kinds: &[Kind], fault: Fault) -> Plan {
        Plan {
            kinds: kinds.to_vec(),
            skip: 0,
            times: None,
            fault,
        }
    }

    /// Lets the first `calls` matching calls through.
    pub fn after(mut self, calls: u64) -> Plan {
        self.skip = calls;
        self
    }

    /// Hits this many matching calls, then none.
    pub fn times(mut self, calls: u64) -> Plan {
        self.times = Some(calls);
        self
    }

    /// Hits only the `n`-th matching call (1-based).
    pub fn nth(self, n: u64) -> Plan {
        self.after(n.saturating_sub(1)).times(1)
    }
}

struct Active {
    plan: Plan,
    seen: u64,
}

/// Passes calls through, except the ones a [`Plan`] hits.
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    fail_reads: AtomicBool,
    fail_writes: AtomicBool,
    plans: Mutex<Vec<Active>>,
    calls: Mutex<Vec<Kind>>,
    /// The partition of every counter incremented, in order.
    counters: Mutex<Vec<String>>,
    injected: AtomicU64,
    /// While on: each item a write reached, as it was before the first such write.
    journal: Mutex<Option<Journal>>,
}

/// Items by `(pk, sk)`, as they were before the journal started.
type Journal = HashMap<(String, String), Option<Item>>;

/// An item whose state differs from before the journal started.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub pk: String,
    pub sk: String,
    pub before: Option<Item>,
    pub after: Option<Item>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> FaultyStore {
        FaultyStore {
            inner,
            fail_reads: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
            plans: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            counters: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
            journal: Mutex::new(None),
        }
    }

    /// Starts noting what writes reach (a fresh journal).
    pub fn start_journal(&self) {
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(HashMap::new());
    }

    /// Stops the journal and answers the items whose state now differs from before it
    /// started (a write that was undone, or rewrote the same thing, is no change).
    pub async fn changes(&self) -> Result<Vec<Change>, StoreError> {
        let noted = self
            .journal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        let mut changes = Vec::new();
        for ((pk, sk), before) in noted {
            let after = self.inner.get(&pk, &sk).await?;
            if after != before {
                changes.push(Change { pk, sk, before, after });
            }
        }
        changes.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        Ok(changes)
    }

    /// Notes the items `keys` names as they are before a write reaches them.
    async fn note(&self, keys: &[(&str, &str)]) -> Result<(), StoreError> {
        let fresh: Vec<(String, String)> = {
            let journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
            let Some(journal) = journal.as_ref() else {
                return Ok(());
            };
            keys.iter()
                .map(|(pk, sk)| ((*pk).to_owned(), (*sk).to_owned()))
                .filter(|key| !journal.contains_key(key))
                .collect()
        };
        for (pk, sk) in fresh {
            let before = self.inner.get(&pk, &sk).await?;
            if let Some(journal) = self.journal.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
                journal.entry((pk, sk)).or_insert(before);
            }
        }
        Ok(())
    }

    /// Every read fails as unavailable while `fail` holds.
    pub fn fail_reads(&self, fail: bool) {
        self.fail_reads.store(fail, Ordering::SeqCst);
    }

    /// Every write (counters included) fails as unavailable while `fail` holds.
    pub fn fail_writes(&self, fail: bool) {
        self.fail_writes.store(fail, Ordering::SeqCst);
    }

    /// Adds a plan; its call numbers count from now.
    pub fn inject(&self, plan: Plan) {
        self.plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Active { plan, seen: 0 });
    }

    /// Removes every plan and switch: calls go through again.
    pub fn heal(&self) {
        self.plans.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.fail_reads(false);
        self.fail_writes(false);
    }

    /// How many calls a fault has hit since the store was made.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    /// Every call made so far, in order (faulted ones included).
    pub fn calls(&self) -> Vec<Kind> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets the calls recorded so far.
    pub fn reset_calls(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.counters.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The partition of every counter incremented since the last reset, in order.
    pub fn counter_partitions(&self) -> Vec<String> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records the call and decides its fault, if any.
    fn fault_for(&self, kind: Kind) -> Option<Fault> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(kind);
        let switched = match kind {
            Kind::Get | Kind::Query | Kind::Scan => self.fail_reads.load(Ordering::SeqCst),
            _ => self.fail_writes.load(Ordering::SeqCst),
        };
        if switched {
            return Some(Fault::Unavailable);
        }
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        let mut hit = None;
        for active in plans.iter_mut().filter(|a| a.plan.kinds.contains(&kind)) {
            active.seen += 1;
            let after_skip = active.seen > active.plan.skip;
            let within = active.plan.times.is_none_or(|t| active.seen <= active.plan.skip + t);
            if hit.is_none() && after_skip && within {
                hit = Some(active.plan.fault.clone());
            }
        }
        hit
    }

    /// Applies the fault for a call of `kind`: `Ok` lets the call through.
    async fn enter(&self, kind: Kind) -> Result<(), StoreError> {
        let Some(fault) = self.fault_for(kind) else {
            return Ok(());
        };
        self.injected.fetch_add(1, Ordering::SeqCst);
        match fault {
            Fault::Unavailable => Err(StoreError::unavailable(format!("injected fault on {kind:?}"))),
            Fault::Throttled { retry_after } => Err(StoreError::Unavailable {
                reason: format!("injected throttling on {kind:?}"),
                retry_after,
            }),
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Fault::Timeout(delay) => {
                tokio::time::sleep(delay).await;
                Err(StoreError::unavailable(format!("injected timeout on {kind:?}")))
            }
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.enter(Kind::Get).await?;
        self.inner.get(pk, sk).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.enter(Kind::Put).await?;
        self.note(&[(&item.pk, &item.sk)]).await?;
        self.inner.put(item, condition).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        self.enter(Kind::Delete).await?;
        self.note(&[(pk, sk)]).await?;
        self.inner.delete(pk, sk, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.enter(Kind::Query).await?;
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.enter(Kind::Transact).await?;
        let keys: Vec<(&str, &str)> = writes
            .iter()
            .filter(|w| !matches!(w, Write::Check { .. }))
            .map(Write::key)
            .collect();
        self.note(&keys).await?;
        self.inner.transact(writes).await
    }

    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError> {
        self.enter(Kind::Scan).await?;
        self.inner.scan(scan).await
    }

    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        self.enter(Kind::DeleteMany).await?;
        let noted: Vec<(&str, &str)> = keys.iter().map(|(pk, sk)| (pk.as_str(), sk.as_str())).collect();
        self.note(&noted).await?;
        self.inner.delete_many(keys).await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        self.enter(Kind::PutMany).await?;
        let noted: Vec<(&str, &str)> = items.iter().map(|item| (item.pk.as_str(), item.sk.as_str())).collect();
        self.note(&noted).await?;
        self.inner.put_many(items).await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(pk.to_owned());
        self.enter(Kind::Increment).await?;
        self.inner.increment(pk, sk, by, expires_at).await
    }

    async fn warm_up(&self) -> Result<(), StoreError> {
        self.inner.warm_up().await
    }
}
