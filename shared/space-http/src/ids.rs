//! Type-prefixed, time-ordered ids (`con_01jd…`): sorting ids sorts by creation time,
//! which is what the store's sort keys and the events feed rely on.

use std::sync::Mutex;

use ulid::Generator;

static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

/// A new id with the given type prefix, strictly after every id minted before it in
/// this process.
pub fn new_id(prefix: &str) -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let generator = guard.get_or_insert_with(Generator::new);
    // The monotonic generator only fails after 2^80 ids in one millisecond.
    let ulid = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    drop(guard);
    prefixed(prefix, ulid)
}

/// `{prefix}_{ulid in lowercase}`, built in one allocation.
pub fn prefixed(prefix: &str, ulid: ulid::Ulid) -> String {
    let mut digits = [0u8; ulid::ULID_LEN];
    let mut id = String::with_capacity(prefix.len() + 1 + ulid::ULID_LEN);
    id.push_str(prefix);
    id.push('_');
    id.push_str(ulid.array_to_str(&mut digits));
    id[prefix.len()..].make_ascii_lowercase();
    id
}

/// When `id` (`{prefix}_{ulid}`) was minted, in milliseconds since the epoch: ids order by
/// it, which is what readers that tail a partition from a position go by.
pub fn minted_at(id: &str) -> Option<u64> {
    let (_, ulid) = id.split_once('_')?;
    ulid.to_ascii_uppercase()
        .parse::<ulid::Ulid>()
        .ok()
        .map(|ulid| ulid.timestamp_ms())
}

/// The smallest id with `prefix` minted at `millis`: a position to read a partition after.
pub fn first_at(prefix: &str, millis: u64) -> String {
    prefixed(prefix, ulid::Ulid::from_parts(millis, 0))
}

/// Milliseconds on the clock ids are minted with (the machine's).
pub fn id_clock_now() -> u64 {
    ulid::Ulid::new().timestamp_ms()
}

/// Whether `id` could have been minted with `prefix` (cheap shape check before a read).
pub fn has_shape(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| rest.len() == 26 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}
