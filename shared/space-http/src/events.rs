//! Events: every mutation appends one in the same store transaction as the change, so
//! the feed, webhooks and realtime never see a change without its event or the reverse.
//!
//! An event is stored as written here and shown through [`render`], so every reader (the
//! feed today, webhooks and the realtime stream later) hands out the same shape.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use space_auth::Principal;
use space_store::{Condition, Item, Query, Store, StoreError, Write, value_size};

use crate::fields::format_datetime;
use crate::ids::{first_at, has_shape, minted_at, new_id};
use crate::keys;

/// Events are kept this long for the feed and redelivery.
pub const EVENT_RETENTION_DAYS: i64 = 30;

/// The id prefix of events (`evt_…`).
pub const EVENT_ID_PREFIX: &str = "evt";

/// Who made a change, as consumers of events see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A space API key (REST or MCP).
    Key,
    /// The owner, with an account key (minting keys, setting secrets, …).
    Owner,
    /// The platform itself: a visitor on a public route, the worker, the first-run setup.
    System,
}

impl ActorKind {
    /// Decided when the event is written: a stored key id alone cannot tell a space key
    /// from an account key (both are `key_…`), the principal can.
    pub fn of(principal: &Principal) -> ActorKind {
        if !has_shape(&principal.key_id, "key") {
            ActorKind::System
        } else if principal.space_id.is_some() {
            ActorKind::Key
        } else {
            ActorKind::Owner
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Key => "key",
            ActorKind::Owner => "owner",
            ActorKind::System => "system",
        }
    }

    /// The kind an event records; events written before the kind was recorded fall back
    /// to their key id, which cannot tell the owner apart and so reads as a key.
    fn of_stored(body: &Map<String, Value>) -> ActorKind {
        match body.get("actor").and_then(Value::as_str) {
            Some("key") => ActorKind::Key,
            Some("owner") => ActorKind::Owner,
            Some("system") => ActorKind::System,
            _ if body
                .get("key_id")
                .and_then(Value::as_str)
                .is_some_and(|id| has_shape(id, "key")) =>
            {
                ActorKind::Key
            }
            _ => ActorKind::System,
        }
    }
}

/// The write that records `kind` (e.g. `contact.created`) about `subject`.
pub fn event_write(
    space: &str,
    kind: &str,
    subject_id: &str,
    data: Value,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Write {
    change_write(space, kind, subject_id, data, None, principal, now)
}

/// [`event_write`] for an update: `before` and `after` are the resource as the API shows it,
/// and the event keeps the previous value of every field that changed (`null` for a field
/// that was absent), so a receiver sees what changed without keeping a copy.
pub fn update_event_write(
    space: &str,
    kind: &str,
    subject_id: &str,
    before: &Value,
    after: Value,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Write {
    let changed = previous(before, &after);
    change_write(space, kind, subject_id, after, Some(changed), principal, now)
}

/// Fields whose value differs between `before` and `after`, with their value before. The
/// change's own bookkeeping (`updated_at`, `version`) is not a change anyone made.
pub fn previous(before: &Value, after: &Value) -> Map<String, Value> {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let names = before
        .keys()
        .chain(after.keys().filter(|name| !before.contains_key(*name)));
    names
        .filter(|name| !matches!(name.as_str(), "updated_at" | "version"))
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| (name.clone(), before.get(name).cloned().unwrap_or(Value::Null)))
        .collect()
}

fn change_write(
    space: &str,
    kind: &str,
    subject_id: &str,
    data: Value,
    previous: Option<Map<String, Value>>,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Write {
    debug_assert!(
        crate::event_types::is_known(kind),
        "`{kind}` is not in event_types::ALL: add it there"
    );
    let id = new_id(EVENT_ID_PREFIX);
    let key = keys::event(space, &id);
    let (mut data, mut previous) = (data, previous);
    let omitted = trim(&mut data, previous.as_mut());
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.insert("type".into(), json!(kind));
    body.insert("subject_id".into(), json!(subject_id));
    body.insert("data".into(), data);
    if let Some(previous) = previous {
        body.insert("previous".into(), Value::Object(previous));
    }
    if !omitted.is_empty() {
        body.insert(OMITTED.into(), json!(omitted));
    }
    body.insert("key_id".into(), json!(principal.key_id));
    body.insert("actor".into(), json!(ActorKind::of(principal).as_str()));
    if let Some(cause) = &principal.cause {
        body.insert(
            CAUSE.into(),
            json!({"automation_id": cause.automation_id, "depth": cause.depth}),
        );
    }
    body.insert("created_at".into(), json!(format_datetime(now)));
    let expires = now.timestamp() + EVENT_RETENTION_DAYS * 24 * 3600;
    Write::put(
        Item::new(key.pk, key.sk, body).expiring_at(expires),
        Condition::NotExists,
    )
}

/// The most an event keeps of its resource and of the previous values, in bytes as the
/// store counts them ([`value_size`]): a change to a large document or whiteboard would
/// otherwise make an event past what one stored item (DynamoDB: 400 KB) or one webhook
/// delivery should carry.
pub const MAX_EVENT_DATA_BYTES: usize = 64 * 1024;

/// Where a stored event names the fields [`trim`] left out.
const OMITTED: &str = "omitted_fields";

/// Leaves the largest fields out of `data` and `previous` (both, by name) until together
/// they fit [`MAX_EVENT_DATA_BYTES`]; the names left out, sorted. The id, the version and
/// the times always stay: a receiver reads the resource for what is missing.
fn trim(data: &mut Value, mut previous: Option<&mut Map<String, Value>>) -> Vec<String> {
    let previous_size = |previous: &Option<&mut Map<String, Value>>| {
        previous
            .as_ref()
            .map_or(0, |fields| fields.values().map(value_size).sum::<usize>())
    };
    let mut total = value_size(data) + previous_size(&previous);
    if total <= MAX_EVENT_DATA_BYTES {
        return Vec::new();
    }
    let mut sizes: Vec<(usize, String)> = Vec::new();
    let fields = data.as_object().into_iter().flat_map(|object| object.keys());
    let earlier = previous.iter().flat_map(|fields| fields.keys());
    for name in fields.chain(earlier) {
        if matches!(name.as_str(), "id" | "version" | "created_at" | "updated_at")
            || sizes.iter().any(|(_, n)| n == name)
        {
            continue;
        }
        let now = data.get(name).map_or(0, value_size);
        let before = previous
            .as_ref()
            .and_then(|fields| fields.get(name))
            .map_or(0, value_size);
        sizes.push((now + before, name.clone()));
    }
    sizes.sort_by(|a, b| b.cmp(a));
    let mut omitted = Vec::new();
    for (size, name) in sizes {
        if total <= MAX_EVENT_DATA_BYTES {
            break;
        }
        if let Some(object) = data.as_object_mut() {
            object.remove(&name);
        }
        if let Some(fields) = previous.as_deref_mut() {
            fields.remove(&name);
        }
        total = total.saturating_sub(size);
        omitted.push(name);
    }
    omitted.sort();
    omitted
}

/// How far behind the newest event it returned a [`FeedTail`] reads again: an id is minted
/// before its transaction commits, so an event with a later id can commit first.
pub const TAIL_OVERLAP_MS: u64 = 2_000;
/// Events a tail reads per store query.
const TAIL_PAGE: usize = 500;
/// Ids a tail remembers within the overlap, at most: what its saved position holds (about
/// 30 bytes each, far below an item's 400 KB). A burst denser than that is read on once it
/// is older than the overlap, when no event of it can still commit.
pub const MAX_RECENT: usize = 4_000;

/// Follows a Space's feed, returning each event once, oldest first: what the webhook
/// fan-out and the realtime stream both read. Each read starts [`TAIL_OVERLAP_MS`] behind
/// the newest event returned so far, skips what it already returned, and pages on until
/// it has read everything stored (or `limit` new events), so a busy feed never holds it
/// inside the overlap.
#[derive(Debug, Clone)]
pub struct FeedTail {
    partition: String,
    /// Nothing at or before this id is returned.
    floor: String,
    /// The newest id returned (or the floor).
    newest: String,
    /// Ids returned within the overlap behind `newest`.
    recent: BTreeSet<String>,
}

impl FeedTail {
    /// A tail of `space`'s feed that returns what comes after `floor`: an event id, or
    /// [`first_at`] a time.
    pub fn after(space: &str, floor: String) -> FeedTail {
        FeedTail {
            partition: keys::events_partition(space),
            newest: floor.clone(),
            floor,
            recent: BTreeSet::new(),
        }
    }

    /// A tail resumed from what [`FeedTail::position`] saved.
    pub fn resume(space: &str, floor: String, newest: String, recent: impl IntoIterator<Item = String>) -> FeedTail {
        FeedTail {
            partition: keys::events_partition(space),
            floor,
            newest,
            recent: recent.into_iter().collect(),
        }
    }

    /// The floor, the newest id returned, and the ids returned within the overlap behind
    /// it: what a tail needs to resume without repeating itself.
    pub fn position(&self) -> (&str, &str, impl Iterator<Item = &String>) {
        (&self.floor, &self.newest, self.recent.iter())
    }

    /// The events stored since the last read, oldest first, at most about `limit`;
    /// `now_millis` is the ids' clock ([`crate::ids::id_clock_now`]).
    pub async fn read(&mut self, store: &dyn Store, limit: usize, now_millis: u64) -> Result<Vec<Item>, StoreError> {
        self.settle(now_millis);
        let since = minted_at(&self.newest).unwrap_or(0).saturating_sub(TAIL_OVERLAP_MS);
        let mut from = first_at(EVENT_ID_PREFIX, since);
        let mut fresh = Vec::new();
        'pages: loop {
            let page = store
                .query(
                    Query::partition(self.partition.clone())
                        .after(Some(from))
                        .limit(TAIL_PAGE),
                )
                .await?;
            let more = page.last_sk.clone();
            for item in page.items {
                if item.sk <= self.floor || self.recent.contains(&item.sk) {
                    continue;
                }
                if self.recent.len() >= MAX_RECENT {
                    break 'pages;
                }
                self.recent.insert(item.sk.clone());
                if item.sk > self.newest {
                    self.newest.clone_from(&item.sk);
                }
                fresh.push(item);
            }
            match more {
                Some(last) if fresh.len() < limit => from = last,
                _ => break,
            }
        }
        self.settle(now_millis);
        Ok(fresh)
    }

    /// Forgets the ids no later read can meet again. Once the newest is older than the
    /// overlap (on the ids' clock, `now_millis`), everything minted up to it has committed
    /// and was read: the floor moves up to it and nothing needs remembering.
    fn settle(&mut self, now_millis: u64) {
        let newest_millis = minted_at(&self.newest).unwrap_or(0);
        if newest_millis.saturating_add(TAIL_OVERLAP_MS) <= now_millis {
            if self.newest > self.floor {
                self.floor.clone_from(&self.newest);
            }
            self.recent.clear();
        } else {
            let horizon = newest_millis.saturating_sub(TAIL_OVERLAP_MS);
            self.recent = self.recent.split_off(&first_at(EVENT_ID_PREFIX, horizon));
        }
    }
}

/// A [`FeedTail`] whose position is kept in the store, one per Space and follower (the
/// webhook fan-out, automation triggers): each poll resumes where the last one saved.
#[derive(Debug, Clone)]
pub struct SavedTail {
    key: keys::ItemKey,
    pub tail: FeedTail,
    /// Whether a position was saved before (the first poll has none).
    pub resumed: bool,
}

impl SavedTail {
    /// The tail of `space` that `follower` saved, or one starting just before `start_millis()`
    /// (when the follower began to care: its oldest subscription) on the first poll.
    pub async fn load(
        store: &dyn Store,
        space: &str,
        follower: &str,
        start_millis: impl FnOnce() -> u64,
    ) -> Result<SavedTail, StoreError> {
        let key = keys::resource(&keys::collection_partition(space, follower), "FANOUT");
        let state = store.get(&key.pk, &key.sk).await?;
        let saved = state.as_ref().and_then(|state| {
            let checkpoint = state.body.get("checkpoint").and_then(Value::as_str)?;
            let floor = state.body.get("floor").and_then(Value::as_str).unwrap_or_default();
            let recent = state.body.get("recent").and_then(Value::as_array).map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            });
            Some((floor.to_owned(), checkpoint.to_owned(), recent.unwrap_or_default()))
        });
        let resumed = saved.is_some();
        let tail = match saved {
            Some((floor, checkpoint, recent)) => FeedTail::resume(space, floor, checkpoint, recent),
            None => FeedTail::after(
                space,
                first_at(EVENT_ID_PREFIX, start_millis().saturating_sub(TAIL_OVERLAP_MS)),
            ),
        };
        Ok(SavedTail { key, tail, resumed })
    }

    /// Keeps the tail's position for the next poll: call it once what was read is acted on.
    pub async fn save(&self, store: &dyn Store) -> Result<(), StoreError> {
        let (floor, checkpoint, recent) = self.tail.position();
        let mut body = Map::new();
        body.insert("floor".into(), json!(floor));
        body.insert("checkpoint".into(), json!(checkpoint));
        body.insert("recent".into(), json!(recent.collect::<Vec<_>>()));
        store
            .put(
                Item::new(self.key.pk.clone(), self.key.sk.clone(), body),
                Condition::None,
            )
            .await
    }
}

/// The resource type of an event type: everything before the last `.`
/// (`calendar_event.updated` is about a `calendar_event`).
pub fn resource_type(kind: &str) -> &str {
    kind.rsplit_once('.').map_or(kind, |(resource, _)| resource)
}

/// Where a stored event keeps the automation run that wrote it ([`space_auth::Cause`]).
const CAUSE: &str = "caused_by";

/// The automation run that wrote a stored event, if one did.
pub fn cause_of(stored: &Map<String, Value>) -> Option<space_auth::Cause> {
    let cause = stored.get(CAUSE)?;
    Some(space_auth::Cause {
        automation_id: cause.get("automation_id")?.as_str()?.to_owned(),
        depth: u32::try_from(cause.get("depth")?.as_u64()?).ok()?,
    })
}

/// A stored event as the API shows it (see [`schema`]).
pub fn render(mut stored: Map<String, Value>) -> Value {
    let automation = stored.get(CAUSE).and_then(|cause| cause.get("automation_id")).cloned();
    let actor = ActorKind::of_stored(&stored);
    let mut take = |name: &str| stored.remove(name).unwrap_or(Value::Null);
    let id = take("id");
    let kind = take("type");
    let created_at = take("created_at");
    let subject = take("subject_id");
    let object = take("data");
    let previous = take("previous");
    let omitted = take(OMITTED);
    let key_id = match actor {
        ActorKind::System => Value::Null,
        ActorKind::Key | ActorKind::Owner => take("key_id"),
    };
    let resource = kind.as_str().map(resource_type).unwrap_or_default();
    let mut by = json!({"kind": actor.as_str(), "key_id": key_id});
    if let Some(automation) = automation {
        by["automation_id"] = automation;
    }
    let mut data = json!({"object": object});
    if !previous.is_null() {
        data["previous"] = previous;
    }
    if !omitted.is_null() {
        data[OMITTED] = omitted;
    }
    json!({
        "id": id,
        "type": kind,
        "created_at": created_at,
        "actor": by,
        "resource": {"type": resource, "id": subject},
        "data": data,
    })
}

/// The JSON Schema of one event as [`render`] shows it.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "created_at", "actor", "resource", "data"],
        "properties": {
            "id": {
                "type": "string",
                "description": "Starts with `evt_`. Ids sort in the order the events happened: pass the last one you handled as `after` to get what happened since."
            },
            "type": {
                "type": "string",
                "description": "What happened, `<resource type>.<verb>`: `contact.created`, `page.published`, `calendar_event.deleted`, …"
            },
            "created_at": {"type": "string", "format": "date-time"},
            "actor": {
                "type": "object",
                "description": "Who made the change.",
                "required": ["kind", "key_id"],
                "properties": {
                    "kind": {
                        "type": "string",
                        "enum": ["key", "owner", "system"],
                        "description": "`key`: a space API key; `owner`: the owner with an account key; `system`: the platform (a visitor on a public page or form, scheduled work)."
                    },
                    "key_id": {
                        "type": ["string", "null"],
                        "description": "The id of the key that made the change; null for `system`."
                    },
                    "automation_id": {
                        "type": "string",
                        "description": "Present when a step of this automation's run made the change (with the key the automation runs as)."
                    }
                }
            },
            "resource": {
                "type": "object",
                "description": "What the event is about.",
                "required": ["type", "id"],
                "properties": {
                    "type": {"type": "string", "description": "The event type before its last `.`, e.g. `calendar_event`."},
                    "id": {"type": "string", "description": "The resource's id (a secret's name for secrets)."}
                }
            },
            "data": {
                "type": "object",
                "required": ["object"],
                "properties": {
                    "object": {
                        "type": "object",
                        "description": "The resource as the change left it; for a deletion, as it was before."
                    },
                    "previous": {
                        "type": "object",
                        "description": "On `.updated` events: the value before the change of each field that changed (`null` if it had none). Fields that did not change are absent."
                    },
                    "omitted_fields": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Present when the resource is too large for one event (over 64 KiB with `previous`): the fields left out of `object` and `previous`, largest first until it fit. Read the resource for them."
                    }
                }
            }
        }
    })
}

/// At most this many patterns in one `types`.
pub const MAX_PATTERNS: usize = 20;
/// Longest pattern accepted; event types are short (`calendar_event.updated`).
const MAX_PATTERN_CHARS: usize = 100;

/// Why a `types` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("must list at least one event type")]
    Empty,
    #[error("may list at most {MAX_PATTERNS} patterns")]
    TooMany,
    #[error("`{0}` is not an event type (like `page.published`) or a wildcard (like `contact.*` or `*`)")]
    Malformed(String),
}

/// One entry of a list of event types (the feed's `types`, a webhook's `events`): an exact
/// type, `prefix.*` for every type under a prefix, or `*` for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    Any,
    Exact(String),
    /// The prefix with its trailing dot (`contact.`), so `contact.*` never matches
    /// `contacts.created`.
    Prefix(String),
}

impl TypePattern {
    /// The JSON Schema `pattern` of one entry, exactly what [`TypePattern::parse`] accepts.
    pub const SCHEMA_PATTERN: &'static str =
        "^(\\*|[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*\\.\\*|[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)+)$";

    /// Parses `page.published` or `contact.*`: lowercase segments of letters, digits and
    /// `_` joined by dots; an exact type has at least two segments.
    pub fn parse(text: &str) -> Result<TypePattern, PatternError> {
        let malformed = || PatternError::Malformed(text.chars().take(MAX_PATTERN_CHARS).collect());
        if text == "*" {
            return Ok(TypePattern::Any);
        }
        if text.len() > MAX_PATTERN_CHARS {
            return Err(malformed());
        }
        let (body, wildcard) = match text.strip_suffix(".*") {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        let segments: Vec<&str> = body.split('.').collect();
        let well_formed = segments.iter().all(|segment| {
            segment.starts_with(|c: char| c.is_ascii_lowercase())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        });
        match (well_formed, wildcard, segments.len()) {
            (true, true, _) => Ok(TypePattern::Prefix(format!("{body}."))),
            (true, false, 2..) => Ok(TypePattern::Exact(body.to_owned())),
            _ => Err(malformed()),
        }
    }

    pub fn matches(&self, kind: &str) -> bool {
        match self {
            TypePattern::Any => true,
            TypePattern::Exact(exact) => kind == exact,
            TypePattern::Prefix(prefix) => kind.starts_with(prefix.as_str()),
        }
    }
}

/// Parses a comma-separated `types` value; spaces around entries are ignored.
pub fn parse_types(text: &str) -> Result<Vec<TypePattern>, PatternError> {
    let entries: Vec<&str> = text.split(',').map(str::trim).collect();
    if entries.iter().all(|entry| entry.is_empty()) {
        return Err(PatternError::Empty);
    }
    if entries.len() > MAX_PATTERNS {
        return Err(PatternError::TooMany);
    }
    entries.into_iter().map(TypePattern::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use space_auth::ScopeSet;

    fn principal(key_id: &str, space: Option<&str>) -> Principal {
        Principal {
            key_id: key_id.into(),
            account_id: "acc_1".into(),
            space_id: space.map(str::to_owned),
            scopes: ScopeSet::default(),
            rate_limit: 0,
            toolsets: None,
            read_only: false,
            limits: Vec::new(),
            approval_required: ScopeSet::default(),
            cause: None,
        }
    }

    const KEY: &str = "key_01jd0000000000000000000000";

    #[test]
    fn the_actor_kind_comes_from_the_principal() {
        assert_eq!(ActorKind::of(&principal(KEY, Some("spc_1"))), ActorKind::Key);
        assert_eq!(ActorKind::of(&principal(KEY, None)), ActorKind::Owner);
        assert_eq!(
            ActorKind::of(&Principal::visitor().in_space("spc_1")),
            ActorKind::System
        );
        assert_eq!(ActorKind::of(&principal("bootstrap", None)), ActorKind::System);
    }

    #[test]
    fn a_stored_event_renders_in_the_public_shape() {
        let write = event_write(
            "spc_1",
            "calendar_event.updated",
            "cev_1",
            json!({"id": "cev_1", "title": "Standup"}),
            &principal(KEY, None),
            Utc::now(),
        );
        let Write::Put { item, .. } = write else {
            panic!("an event is a put")
        };
        let rendered = render(item.body.clone());
        assert_eq!(rendered["id"], item.body["id"]);
        assert_eq!(rendered["type"], "calendar_event.updated");
        assert_eq!(rendered["actor"], json!({"kind": "owner", "key_id": KEY}));
        assert_eq!(rendered["resource"], json!({"type": "calendar_event", "id": "cev_1"}));
        assert_eq!(rendered["data"]["object"]["title"], "Standup");
        assert_eq!(
            rendered.as_object().map(|o| o.len()),
            Some(6),
            "nothing stored leaks through"
        );
    }

    #[test]
    fn events_from_before_the_kind_was_recorded_still_render() {
        let old = |key_id: &str| {
            let stored = json!({"id": "evt_1", "type": "contact.created", "subject_id": "con_1", "data": {}, "key_id": key_id, "created_at": "2026-01-01T00:00:00.000Z"});
            render(stored.as_object().cloned().unwrap_or_default())
        };
        assert_eq!(old(KEY)["actor"], json!({"kind": "key", "key_id": KEY}));
        assert_eq!(old("visitor")["actor"], json!({"kind": "system", "key_id": null}));
    }

    /// More events inside the overlap than one page holds (a busy feed): a tail still gets
    /// past them, returns each once, and finds a late commit behind its newest event.
    #[tokio::test]
    async fn a_tail_pages_through_a_busy_overlap_and_repeats_nothing() {
        let store = space_store::embedded::EmbeddedStore::in_memory();
        let writer = principal(KEY, Some("spc_1"));
        let now = Utc::now();
        let write = |n: usize| event_write("spc_1", "contact.created", &format!("con_{n}"), json!({}), &writer, now);
        // Minted first, committed last.
        let late = write(9_999);
        for chunk in (0..1_200).collect::<Vec<_>>().chunks(100) {
            store
                .transact(chunk.iter().map(|n| write(*n)).collect())
                .await
                .expect("events are written");
        }
        let millis = now.timestamp_millis() as u64;
        let mut tail = FeedTail::after("spc_1", first_at(EVENT_ID_PREFIX, 0));
        let mut seen = BTreeSet::new();
        for _ in 0..3 {
            for item in tail.read(&store, 10_000, millis).await.expect("a read") {
                assert!(seen.insert(item.sk), "returned twice");
            }
        }
        assert_eq!(seen.len(), 1_200);
        // An event minted before the others that commits after them (within the overlap)
        // is returned.
        store.transact(vec![late]).await.expect("the late event");
        let again = tail.read(&store, 10_000, millis).await.expect("a read");
        assert_eq!(again.len(), 1);
        let (floor, newest, recent) = tail.position();
        let mut resumed = FeedTail::resume("spc_1", floor.to_owned(), newest.to_owned(), recent.cloned());
        assert!(
            resumed.read(&store, 10_000, millis).await.expect("a read").is_empty(),
            "a resumed tail repeats nothing"
        );
    }

    /// A burst denser than a tail may remember (thousands of events within the overlap)
    /// keeps its saved position bounded: the tail reads what it may remember, then the rest
    /// once the burst is older than the overlap, each event once.
    #[tokio::test]
    async fn a_dense_burst_keeps_the_position_bounded_and_repeats_nothing() {
        let store = space_store::embedded::EmbeddedStore::in_memory();
        let writer = principal(KEY, Some("spc_1"));
        let now = Utc::now();
        let total = MAX_RECENT * 2 + 500;
        let events: Vec<Write> = (0..total)
            .map(|n| event_write("spc_1", "contact.created", &format!("con_{n}"), json!({}), &writer, now))
            .collect();
        for chunk in events.chunks(100) {
            store.transact(chunk.to_vec()).await.expect("events are written");
        }
        let millis = now.timestamp_millis() as u64;
        let mut tail = FeedTail::after("spc_1", first_at(EVENT_ID_PREFIX, 0));
        let mut seen = BTreeSet::new();
        let mut read = |tail: &mut FeedTail, fresh: Vec<Item>| {
            for item in fresh {
                assert!(seen.insert(item.sk), "returned twice");
            }
            assert!(tail.position().2.count() <= MAX_RECENT, "the position stays bounded");
        };
        let fresh = tail.read(&store, usize::MAX, millis).await.expect("a read");
        assert_eq!(fresh.len(), MAX_RECENT, "what it may remember, no more");
        read(&mut tail, fresh);
        let fresh = tail.read(&store, usize::MAX, millis).await.expect("a read");
        assert!(fresh.is_empty(), "inside the overlap it waits");
        read(&mut tail, fresh);
        // Saved and resumed once the burst is older than the overlap: the rest, once.
        let later = crate::ids::id_clock_now() + TAIL_OVERLAP_MS;
        for _ in 0..3 {
            let (floor, newest, recent) = tail.position();
            let mut resumed = FeedTail::resume("spc_1", floor.to_owned(), newest.to_owned(), recent.cloned());
            let fresh = resumed.read(&store, usize::MAX, later).await.expect("a read");
            read(&mut resumed, fresh);
            tail = resumed;
        }
        assert_eq!(seen.len(), total);
    }
}
