//! Every store key the API uses, built in one place (DESIGN.md, "Item keys"). Nothing
//! else formats a partition or sort key.

use space_auth::TokenHash;

/// Where an item lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    fn new(pk: String, sk: impl Into<String>) -> ItemKey {
        ItemKey { pk, sk: sk.into() }
    }
}

/// The key lookup item, read on every request with a consistent read.
pub fn key_lookup(hash: &TokenHash) -> ItemKey {
    ItemKey::new(format!("KEY#{}", hash.as_str()), "KEY")
}

/// A Space's entry for one of its keys (what `GET /spaces/{space}/keys` lists).
pub fn space_key(space: &str, key_id: &str) -> ItemKey {
    ItemKey::new(space_partition(space), format!("{API_KEY_PREFIX}{key_id}"))
}

/// Sort-key prefix of a Space's key entries.
pub const API_KEY_PREFIX: &str = "APIKEY#";

/// An account's keys, for listing and revoking account keys.
pub fn account_key(account: &str, key_id: &str) -> ItemKey {
    ItemKey::new(account_partition(account), format!("{API_KEY_PREFIX}{key_id}"))
}

pub fn space_partition(space: &str) -> String {
    format!("SPACE#{space}")
}

pub fn account_partition(account: &str) -> String {
    format!("ACCOUNT#{account}")
}

/// The account record itself.
pub fn account_meta(account: &str) -> ItemKey {
    ItemKey::new(account_partition(account), "META")
}

/// A Space as its account lists it.
pub fn account_space(account: &str, space: &str) -> ItemKey {
    ItemKey::new(account_partition(account), format!("{SPACE_PREFIX}{space}"))
}

/// Sort-key prefix of an account's spaces.
pub const SPACE_PREFIX: &str = "SPACE#";

/// A Space read by id. It exists exactly while the Space is live: deleting the Space
/// removes it, so it is what the public routes check (`crate::public`).
pub fn space_meta(space: &str) -> ItemKey {
    ItemKey::new(space_partition(space), "META")
}

/// The partition of deleted Spaces' tombstones, in deletion order: what a purge job reads
/// to find the Spaces whose data it must remove.
pub const SPACE_TOMBSTONES: &str = "TOMBSTONE#SPACE";

/// The tombstone of a Space deleted at `deleted_at` (RFC 3339, so sort order is time order).
pub fn space_tombstone(deleted_at: &str, space: &str) -> ItemKey {
    ItemKey::new(SPACE_TOMBSTONES.to_owned(), format!("{deleted_at}#{space}"))
}

/// The partition of a top-level collection (`contacts`, `tasks`, …) of a Space.
pub fn collection_partition(space: &str, collection: &str) -> String {
    format!("SPACE#{space}#{collection}")
}

/// The partition of a child collection (notes of one contact, records of one table, …).
pub fn child_partition(space: &str, collection: &str, parent_id: &str) -> String {
    format!("SPACE#{space}#{collection}#{parent_id}")
}

pub fn resource(partition: &str, id: &str) -> ItemKey {
    ItemKey::new(partition.to_owned(), id)
}

/// Where a public route finds its Space: `/f/{form_id}` knows only the form's id, so the
/// form's creation also writes this pointer (in the same transaction).
pub fn public_pointer(kind: &str, id: &str) -> ItemKey {
    ItemKey::new(format!("PUBLIC#{kind}#{id}"), "POINTER")
}

/// Where a Space records the items it owns outside its own partitions (public pointers,
/// registry entries): the purge of a deleted Space walks only partitions that start with
/// the Space's, and finds those items through their references here (`crate::references`).
pub fn references_partition(space: &str) -> String {
    format!("SPACE#{space}#REFS")
}

/// The reference to `target`. The length of its partition key leads, so that no two
/// targets share a reference whatever their keys hold.
pub fn reference(space: &str, target: &ItemKey) -> ItemKey {
    ItemKey::new(
        references_partition(space),
        format!("{:04}#{}#{}", target.pk.len(), target.pk, target.sk),
    )
}

/// A uniqueness claim (page slugs, booked slots), written with a conditional put.
pub fn unique(space: &str, what: &str, value: &str) -> ItemKey {
    ItemKey::new(unique_partition(space, what), value)
}

/// All claims of one kind, in value order (booked slots are listed by time this way).
pub fn unique_partition(space: &str, what: &str) -> String {
    format!("SPACE#{space}#UNIQUE#{what}")
}

/// Where a resource's index entries are scoped (`crate::index`): the collection, or
/// `<collection>#<parent id>` for a child resource, so lookups never cross parents.
pub fn index_scope(collection: &str, parent_id: Option<&str>) -> String {
    match parent_id {
        Some(parent) => format!("{collection}#{parent}"),
        None => collection.to_owned(),
    }
}

/// The claim of a unique lookup: which item holds `value` in `field`.
pub fn lookup_claim(space: &str, scope: &str, field: &str, value: &str) -> ItemKey {
    unique(space, &format!("{scope}.{field}"), value)
}

/// The entries of a lookup whose value several items may share, `<value>#<id>`.
pub fn lookup_partition(space: &str, scope: &str, field: &str) -> String {
    format!("SPACE#{space}#IDX#{scope}#{field}")
}

pub fn lookup_entry(space: &str, scope: &str, field: &str, value: &str, id: &str) -> ItemKey {
    ItemKey::new(lookup_partition(space, scope, field), format!("{value}#{id}"))
}

/// The usage counters of a tags field: `<tag>#in` and `<tag>#out`, each an item whose
/// version is its count.
pub fn tag_counter_partition(space: &str, scope: &str, field: &str) -> String {
    format!("SPACE#{space}#TAGCOUNT#{scope}#{field}")
}

pub fn tag_counter(space: &str, scope: &str, field: &str, tag: &str, side: &str) -> ItemKey {
    ItemKey::new(tag_counter_partition(space, scope, field), format!("{tag}#{side}"))
}

/// The search words of a resource's items, `<word>#<id>`.
pub fn search_partition(space: &str, scope: &str) -> String {
    format!("SPACE#{space}#SEARCH#{scope}")
}

pub fn search_entry(space: &str, scope: &str, word: &str, id: &str) -> ItemKey {
    ItemKey::new(search_partition(space, scope), format!("{word}#{id}"))
}

/// A Space's iCal feed settings: the current feed token. The public feed route finds the
/// Space through `public_pointer("calendar-feed", <sha256 of the token>)`.
pub fn calendar_feed(space: &str) -> ItemKey {
    ItemKey::new(collection_partition(space, "calendar_feed"), "FEED")
}

pub fn events_partition(space: &str) -> String {
    format!("SPACE#{space}#EVENTS")
}

/// The Space whose feed `partition` is, if it is one.
pub fn events_partition_space(partition: &str) -> Option<&str> {
    partition
        .strip_prefix("SPACE#")?
        .strip_suffix("#EVENTS")
        .filter(|space| !space.contains('#'))
}

pub fn event(space: &str, id: &str) -> ItemKey {
    ItemKey::new(events_partition(space), id)
}

/// The slots of a key's open realtime streams (`STREAMS#<key_id>`, one item a slot, each
/// leased: they expire on their own).
pub fn stream_slots(key_id: &str) -> String {
    format!("STREAMS#{key_id}")
}

/// A key's request counter for one rate window, keyed by the token hash so that it can
/// be counted in parallel with the key lookup.
pub fn rate_counter(hash: &TokenHash, window_start: i64) -> ItemKey {
    ItemKey::new(format!("RL#{}", hash.as_str()), window_start.to_string())
}

/// A space key's uses of a capped live action on one UTC day (`YYYY-MM-DD`), under the
/// Space so its purge takes them.
pub fn cap_counter(space: &str, key_id: &str, cap: &str, day: &str) -> ItemKey {
    ItemKey::new(format!("SPACE#{space}#CAPS"), format!("{key_id}#{cap}#{day}"))
}

/// A space key's requests on one UTC day (`YYYY-MM-DD`), so one key's days are one range.
pub fn key_usage(space: &str, key_id: &str, day: &str) -> ItemKey {
    ItemKey::new(format!("SPACE#{space}#USAGE"), format!("{key_id}#{day}"))
}

/// A Space's calls of one budgeted operation in one window.
pub fn operation_counter(space: &str, operation: &str, window_start: i64) -> ItemKey {
    ItemKey::new(format!("RL#op#{space}#{operation}"), window_start.to_string())
}

/// A client address's request counter on one family of public routes.
pub fn visitor_counter(family: &str, client: &str, window_start: i64) -> ItemKey {
    ItemKey::new(format!("RL#visitor#{family}#{client}"), window_start.to_string())
}

/// A client address's failed key lookups in one window: one counter per address, however
/// many different tokens it tries.
pub fn failed_auth_counter(client: &str, window_start: i64) -> ItemKey {
    ItemKey::new(format!("RL#auth-failures#{client}"), window_start.to_string())
}

/// A budget a Space's owner sets on something of theirs (`what`, e.g. a booking page's
/// bookings per hour), counted per window.
pub fn space_counter(space: &str, what: &str, window_start: i64) -> ItemKey {
    ItemKey::new(format!("SPACE#{space}#RL#{what}"), window_start.to_string())
}

/// An idempotency record of one key (the owner is a Space or an account partition).
pub fn idempotency(owner_partition: &str, key_id: &str, idempotency_key: &str) -> ItemKey {
    ItemKey::new(format!("{owner_partition}#IDEM"), format!("{key_id}#{idempotency_key}"))
}

/// Metadata of a secret (never its value) in a Space.
pub fn secret(space: &str, name: &str) -> ItemKey {
    ItemKey::new(secrets_partition(space), name)
}

pub fn secrets_partition(space: &str) -> String {
    collection_partition(space, "SECRETS")
}

/// The saved versions of one document; sort keys are the zero-padded version numbers, so
/// the partition lists in version order.
pub fn document_versions_partition(space: &str, document_id: &str) -> String {
    child_partition(space, "document_versions", document_id)
}

/// Version `version` of a document, as it was when that version was written.
pub fn document_version(space: &str, document_id: &str, version: u64) -> ItemKey {
    ItemKey::new(
        document_versions_partition(space, document_id),
        format!("{version:012}"),
    )
}

/// The records of one user-defined table.
pub fn table_records_partition(space: &str, table_id: &str) -> String {
    child_partition(space, "records", table_id)
}

/// The blob-store folder that holds every blob of a Space.
pub fn space_blobs(space: &str) -> String {
    space.to_owned()
}

/// Where a media item's bytes live in the blob store (under [`space_blobs`]).
pub fn media_blob(space: &str, media_id: &str) -> String {
    format!("{}/media/{media_id}", space_blobs(space))
}

/// An app's draft code or schema (`part` is `code` or `schema`).
pub fn app_draft(space: &str, app_id: &str, part: &str) -> ItemKey {
    ItemKey::new(child_partition(space, "app_drafts", app_id), part)
}

/// The published versions of an app, numbered from 1.
pub fn app_versions_partition(space: &str, app_id: &str) -> String {
    child_partition(space, "app_versions", app_id)
}

/// One published version; zero-padded so that sort order is numeric order.
pub fn app_version(space: &str, app_id: &str, number: u64) -> ItemKey {
    ItemKey::new(app_versions_partition(space, app_id), format!("{number:010}"))
}

/// The live snapshot of a published page, one per page (what `/p/{space}/{slug}` serves).
pub fn page_snapshot(space: &str, page_id: &str) -> ItemKey {
    ItemKey::new(collection_partition(space, "page_snapshots"), page_id)
}

/// The copy of a form a published page captured, as the page shows it: what a post from
/// that page (`POST /f/{form_id}?page={page_id}`) is checked against.
pub fn page_form(space: &str, page_id: &str, form_id: &str) -> ItemKey {
    ItemKey::new(child_partition(space, "page_forms", page_id), form_id)
}
