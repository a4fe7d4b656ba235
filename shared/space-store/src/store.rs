use async_trait::async_trait;

use crate::error::StoreError;
use crate::item::{Condition, Item, Page, Query, RawItem, Scan, ScanPage, Write};

/// DynamoDB's limit, honoured by every backend so that code tested locally runs in AWS.
pub const MAX_TRANSACTION_WRITES: usize = 100;

/// DynamoDB's limit on maps and lists inside one another (the body counts as one),
/// honoured by every backend: the embedded store could write deeper items, but not read
/// them back past `serde_json`'s own nesting limit.
pub const MAX_NESTING: usize = 32;
/// The largest item any backend holds: DynamoDB's limit, counted its way
/// ([`item_size`]), refused alike by every backend.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// A DynamoDB-shaped key-value store. Every read is strongly consistent and skips
/// expired items.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one item.
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// Reads one item with its body as JSON text. A backend that keeps bodies as JSON text
    /// hands it over without building a map first; the others serialize what
    /// [`Store::get`] reads.
    async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<RawItem>, StoreError> {
        let Some(item) = self.get(pk, sk).await? else {
            return Ok(None);
        };
        let body = serde_json::value::to_raw_value(&item.body)
            .map_err(|e| StoreError::Internal(format!("unserializable body {pk}/{sk}: {e}")))?;
        Ok(Some(RawItem {
            version: item.version,
            expires_at: item.expires_at,
            body,
        }))
    }

    /// Writes an item whole if `condition` holds.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    /// Removes an item if `condition` holds. Removing nothing is not an error.
    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError>;

    /// Reads a page of one partition.
    async fn query(&self, query: Query) -> Result<Page, StoreError>;

    /// Applies every write or none (at most [`MAX_TRANSACTION_WRITES`], each item once).
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Adds `by` to a counter and returns the new value, atomically under any
    /// concurrency. Counters are bookkeeping (rate windows): a backend may keep them out
    /// of durable storage, and they vanish at `expires_at`.
    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError>;

    /// One page of a walk over every partition whose key starts with `scan.prefix`, in an
    /// order of the backend's choosing. For removing a tenant's data, not for serving
    /// requests: DynamoDB answers it with a Scan of the whole table.
    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError>;

    /// Removes every listed item, each on its own and unconditionally: a bulk removal that
    /// may stop part-way and be repeated (removing what is gone is not an error).
    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError>;

    /// Puts every listed item, each on its own and unconditionally (of two with one key,
    /// the later): a bulk write of items that stand alone, such as index entries, which
    /// may stop part-way and be repeated.
    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError>;

    /// Makes sure the backend is reachable (opens connections) before the first request.
    async fn warm_up(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Groups of writes that must each apply whole (a post and its bookkeeping, an imported
/// row and its index entries), in order, packed into as few transactions as the store
/// allows: at most `max_groups` groups and `MAX_TRANSACTION_WRITES - reserve` writes each
/// (`reserve` keeps room for writes the caller adds to the last). A group is never split;
/// one larger than a transaction gets one of its own, for the store to refuse.
pub fn pack_transactions<G>(
    groups: impl IntoIterator<Item = G>,
    writes_of: impl Fn(&G) -> usize,
    max_groups: usize,
    reserve: usize,
) -> Vec<Vec<G>> {
    let room = MAX_TRANSACTION_WRITES.saturating_sub(reserve);
    let mut packed: Vec<Vec<G>> = Vec::new();
    let mut writes = 0;
    for group in groups {
        let size = writes_of(&group);
        match packed.last_mut() {
            Some(last) if last.len() < max_groups && writes + size <= room => {
                writes += size;
                last.push(group);
            }
            _ => {
                writes = size;
                packed.push(vec![group]);
            }
        }
    }
    packed
}

/// Checks what every backend must refuse before touching data.
pub(crate) fn validate_transaction(writes: &[Write]) -> Result<(), StoreError> {
    if writes.is_empty() {
        return Err(StoreError::Rejected("a transaction needs at least one write".into()));
    }
    if writes.len() > MAX_TRANSACTION_WRITES {
        return Err(StoreError::Rejected(format!(
            "a transaction takes at most {MAX_TRANSACTION_WRITES} writes, got {}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    for write in writes {
        if !seen.insert(write.key()) {
            return Err(StoreError::Rejected(
                "a transaction touches one item at most once".into(),
            ));
        }
        if let Write::Put { item, .. } = write {
            validate_item(item)?;
        }
    }
    Ok(())
}

/// DynamoDB's limits on a partition key and a sort key, in bytes.
const MAX_PK_BYTES: usize = 2048;
const MAX_SK_BYTES: usize = 1024;

/// Whether an item can live at `pk`/`sk` on every backend: keys are not empty, hold no NUL
/// (the embedded store's separator) and fit DynamoDB's sizes. A read of any other key finds
/// nothing rather than failing, so an id a client made up is simply not found.
pub(crate) fn holdable_key(pk: &str, sk: &str) -> bool {
    !pk.is_empty()
        && !sk.is_empty()
        && pk.len() <= MAX_PK_BYTES
        && sk.len() <= MAX_SK_BYTES
        && !pk.contains('\0')
        && !sk.contains('\0')
}

/// Checks what every backend must refuse in an item before writing it.
pub(crate) fn validate_item(item: &Item) -> Result<(), StoreError> {
    if !holdable_key(&item.pk, &item.sk) {
        return Err(StoreError::Rejected(format!(
            "keys are 1 to {MAX_PK_BYTES} (partition) and {MAX_SK_BYTES} (sort) bytes without NUL characters"
        )));
    }
    /// Whether `value` holds containers more than `levels` deep.
    fn deeper_than(value: &serde_json::Value, levels: usize) -> bool {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => return false,
        };
        levels == 0 || children.into_iter().any(|child| deeper_than(child, levels - 1))
    }
    if item.body.values().any(|value| deeper_than(value, MAX_NESTING - 1)) {
        return Err(StoreError::Rejected(format!(
            "an item nests maps and lists at most {MAX_NESTING} levels deep"
        )));
    }
    let bytes = item_size(item);
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge {
            bytes,
            limit: MAX_ITEM_BYTES,
        });
    }
    Ok(())
}

/// An item's size as DynamoDB counts it, over the attributes the DynamoDB backend writes
/// (see [`value_size`]).
pub fn item_size(item: &Item) -> usize {
    let body = 3 + item
        .body
        .iter()
        .map(|(name, v)| 1 + name.len() + value_size(v))
        .sum::<usize>();
    // pk, sk, version, ttl and body, with their names.
    "pk".len()
        + item.pk.len()
        + "sk".len()
        + item.sk.len()
        + "version".len()
        + 21
        + "ttl".len()
        + 21
        + "body".len()
        + body
}

/// A JSON value's size as DynamoDB counts it: a string its UTF-8 bytes, a number about one
/// byte per two digits plus one, a map or list three bytes plus one per element (and a
/// map's names).
pub fn value_size(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Null | serde_json::Value::Bool(_) => 1,
        serde_json::Value::Number(n) => n.to_string().bytes().filter(u8::is_ascii_digit).count().div_ceil(2) + 1,
        serde_json::Value::String(text) => text.len(),
        serde_json::Value::Array(items) => 3 + items.iter().map(|item| 1 + value_size(item)).sum::<usize>(),
        serde_json::Value::Object(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_packed_whole_under_both_limits() {
        let sizes = [6usize; 40];
        let packed = pack_transactions(sizes, |size| *size, usize::MAX, 1);
        assert_eq!(packed.iter().map(Vec::len).collect::<Vec<_>>(), [16, 16, 8]);
        let packed = pack_transactions(sizes, |size| *size, 10, 0);
        assert_eq!(packed.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 10, 10]);
        let packed = pack_transactions([60usize, 50, 40, 120, 1], |size| *size, usize::MAX, 0);
        assert_eq!(packed, [vec![60], vec![50, 40], vec![120], vec![1]]);
        assert!(pack_transactions(Vec::<usize>::new(), |size| *size, 1, 0).is_empty());
    }
}
