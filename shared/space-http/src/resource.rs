//! Declarative CRUD. A [`Resource`] is declared once (fields, filters, scope domain, id
//! prefix, optional parent) and yields its list / create / get / update / replace /
//! delete operations with validation, ETags, events and schemas.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};

use crate::Engine;
use crate::error::{ApiError, FieldErrors};
use crate::events::{event_write, update_event_write};
use crate::fields::{
    Field, FieldKind, Validated, WriteMode, body_schema, format_datetime, parse_datetime, parse_datetime_strict,
    validate,
};
use crate::ids::new_id;
use crate::index::{self, entry_id, entry_word, index_words, query_words, words_match};
use crate::keys::{self, ItemKey};
use crate::listing::{self, SCAN_BUDGET, Source, WhenNothingFound, list_page};
use crate::operation::{Access, Answer, Call, Effect, Operation, Param, Reply, handler};
use crate::schema::Schema;

/// Default and maximum page sizes of every list.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// A filtered list examines at most this many candidates per request ([`crate::listing`]).
pub const MAX_SCANNED_PER_PAGE: usize = SCAN_BUDGET;
/// Optimistic-concurrency retries for writes without `If-Match`.
const WRITE_RETRIES: usize = 3;

/// The collection a child resource hangs under.
#[derive(Debug, Clone, Copy)]
pub struct Parent {
    /// The parent's collection (its partition name), e.g. `contacts`.
    pub collection: &'static str,
    /// For messages: "contact".
    pub singular: &'static str,
}

/// A list filter, read from the query string.
#[derive(Clone)]
pub enum Filter {
    /// `?status=open`: the field equals the value (checked against the field's kind).
    Equals {
        param: &'static str,
        field: &'static str,
        kind: FieldKind,
    },
    /// `?q=ada`: case-insensitive substring in any of the fields, found by reading the
    /// items in order (within the scan budget of [`crate::listing`]).
    Search {
        param: &'static str,
        fields: &'static [&'static str],
    },
    /// `?email=ada@example.com`: the field equals the value, normalized as the field
    /// stores it, read from an index kept with the items ([`crate::index`]), never a
    /// scan. `unique` also refuses a second item with the same value (409 naming the
    /// first) and lets `POST ?upsert=<param>` update the item that holds it.
    Lookup {
        param: &'static str,
        field: &'static str,
        kind: FieldKind,
        unique: bool,
    },
    /// `?q=ada lov`: every word starts a word of the fields, ignoring case and accents,
    /// read from a word index kept with the items ([`crate::index`]): the first page of
    /// matches comes in one call. A resource declaring it must write its items only
    /// through this module (or add [`Resource::index_writes`] to its own transactions).
    IndexedSearch {
        param: &'static str,
        fields: &'static [&'static str],
    },
    /// `?due_before=…`: a date-time field strictly before the value.
    Before { param: &'static str, field: &'static str },
    /// `?due_after=…`: a date-time field strictly after the value.
    After { param: &'static str, field: &'static str },
    /// `?tag=vip`: a tags field contains the value.
    HasTag { param: &'static str, field: &'static str },
    /// [`Filter::HasTag`] read from an index of `<tag>#<id>` entries kept with the items,
    /// with a count of the items carrying each tag kept in the same transactions
    /// ([`tag_counts`]): the Space's tags and their usage are read without a scan. A
    /// resource declaring it writes its items through this module, or adds
    /// [`tag_index_writes`] to its own transactions where the tags change. A change of
    /// more tags than fit the item's transaction leaves its tag writes to the job `spill`
    /// makes ([`apply_tag_spill`]).
    IndexedTag {
        param: &'static str,
        field: &'static str,
        spill: SpillJob,
    },
    /// Anything else, e.g. `?overdue=true`.
    Custom(CustomFilter),
}

/// A filter with its own parsing and matching.
#[derive(Clone)]
pub struct CustomFilter {
    pub param: &'static str,
    pub description: &'static str,
    pub schema: fn() -> Value,
    pub parse: fn(&str) -> Result<Value, String>,
    pub matches: fn(&Map<String, Value>, &Value, DateTime<Utc>) -> bool,
}

impl Filter {
    pub fn param(&self) -> &'static str {
        match self {
            Filter::Equals { param, .. }
            | Filter::Search { param, .. }
            | Filter::Lookup { param, .. }
            | Filter::IndexedSearch { param, .. }
            | Filter::Before { param, .. }
            | Filter::After { param, .. }
            | Filter::HasTag { param, .. }
            | Filter::IndexedTag { param, .. } => param,
            Filter::Custom(custom) => custom.param,
        }
    }

    fn doc(&self) -> Param {
        let (schema, description) = match self {
            Filter::Equals { field, kind, .. } => (kind.schema(), format!("Only items whose {field} equals this.")),
            Filter::Search { fields, .. } => (
                json!({"type": "string", "maxLength": 200}),
                format!("Case-insensitive text search in {}.", fields.join(", ")),
            ),
            Filter::Lookup {
                field, kind, unique, ..
            } => (
                kind.schema(),
                format!(
                    "Only the item{} whose {field} is exactly this, compared as stored ({}). Read from an index: \
                     one call answers, and an empty `data` means there is none.",
                    if *unique { "" } else { "s" },
                    match kind {
                        FieldKind::Email => "lowercased, without surrounding spaces",
                        FieldKind::Phone => "in E.164, like +15551234567",
                        _ => "without surrounding spaces",
                    }
                ),
            ),
            Filter::IndexedSearch { fields, .. } => (
                json!({"type": "string", "maxLength": 200}),
                format!(
                    "Words to find in {}: each word of the query must start a word of the item, ignoring case \
                     and accents (`zoe` finds Zoë; `muller` and `mueller` find Müller, but `müller` does not \
                     find a Mueller). Read from an index: the first page of matches comes in one call, ordered \
                     by the matching word. Only the first {} distinct words of an item are indexed.",
                    fields.join(", "),
                    index::MAX_WORDS
                ),
            ),
            Filter::Before { field, .. } => (
                FieldKind::DateTime.schema(),
                format!("Only items whose {field} is before this time."),
            ),
            Filter::After { field, .. } => (
                FieldKind::DateTime.schema(),
                format!("Only items whose {field} is after this time."),
            ),
            Filter::HasTag { field, .. } | Filter::IndexedTag { field, .. } => (
                json!({"type": "string"}),
                format!("Only items whose {field} include this tag."),
            ),
            Filter::Custom(custom) => ((custom.schema)(), custom.description.to_owned()),
        };
        Param::query(self.param(), schema, description)
    }

    /// Parses the query value once per request.
    fn parse(&self, raw: &str) -> Result<Value, String> {
        match self {
            Filter::Equals { kind, .. } => kind.check(&Value::String(raw.to_owned())),
            Filter::Search { .. } => {
                if raw.chars().count() > 200 {
                    Err("must be at most 200 characters".into())
                } else {
                    Ok(Value::String(raw.to_lowercase()))
                }
            }
            Filter::Before { .. } | Filter::After { .. } => parse_datetime_strict(raw)
                .map(|at| json!(at.timestamp_millis()))
                .ok_or_else(|| "must be an RFC 3339 date-time, like 2026-11-22T17:00:00Z".into()),
            Filter::HasTag { .. } | Filter::IndexedTag { .. } => Ok(Value::String(raw.trim().to_owned())),
            Filter::Lookup { kind, .. } => kind.check(&Value::String(raw.to_owned())),
            Filter::IndexedSearch { .. } => {
                if raw.chars().count() > 200 {
                    Err("must be at most 200 characters".into())
                } else {
                    Ok(json!(query_words(raw)))
                }
            }
            Filter::Custom(custom) => (custom.parse)(raw),
        }
    }

    fn matches(&self, item: &Map<String, Value>, wanted: &Value, now: DateTime<Utc>) -> bool {
        let millis = |field: &str| {
            item.get(field)
                .and_then(Value::as_str)
                .and_then(parse_datetime)
                .map(|at| at.timestamp_millis())
        };
        match self {
            Filter::Equals { field, .. } => item.get(*field) == Some(wanted),
            Filter::Search { fields, .. } => {
                let needle = wanted.as_str().unwrap_or_default();
                fields.iter().any(|field| {
                    item.get(*field)
                        .and_then(Value::as_str)
                        .is_some_and(|text| text.to_lowercase().contains(needle))
                })
            }
            Filter::Before { field, .. } => millis(field).zip(wanted.as_i64()).is_some_and(|(at, bound)| at < bound),
            Filter::After { field, .. } => millis(field).zip(wanted.as_i64()).is_some_and(|(at, bound)| at > bound),
            Filter::HasTag { field, .. } | Filter::IndexedTag { field, .. } => item
                .get(*field)
                .and_then(Value::as_array)
                .is_some_and(|tags| tags.iter().any(|tag| tag == wanted)),
            Filter::Lookup { field, .. } => {
                lookup_value(item, field).is_some_and(|value| Some(value) == wanted.as_str())
            }
            Filter::IndexedSearch { fields, .. } => {
                let query: Vec<String> = serde_json::from_value(wanted.clone()).unwrap_or_default();
                query.is_empty() || words_match(&searchable_words(item, fields), &query)
            }
            Filter::Custom(custom) => (custom.matches)(item, wanted, now),
        }
    }

    /// Whether the filter reads an index rather than the items in order.
    fn is_indexed(&self) -> bool {
        matches!(
            self,
            Filter::Lookup { .. } | Filter::IndexedSearch { .. } | Filter::IndexedTag { .. }
        )
    }
}

/// The distinct tags an item's tags `field` holds.
pub fn tags_of(item: &Map<String, Value>, field: &str) -> Vec<String> {
    let mut tags: Vec<String> = item
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Counters never expire.
const NEVER: i64 = 253_402_300_799;

/// The usage counters of the tags an item gains and loses: one entry counted for each
/// gained tag, one exit for each lost one (counters only grow, so a write that fails
/// counts nothing and a total never drifts).
fn tag_count_writes(space: &str, scope: &str, field: &str, old: &[String], new: &[String]) -> Vec<Write> {
    let count = |tag: &str, side: &str| {
        let key = keys::tag_counter(space, scope, field, tag, side);
        Write::Count {
            pk: key.pk,
            sk: key.sk,
            limit: u64::MAX,
            expires_at: NEVER,
            by: 1,
        }
    };
    let lost = old.iter().filter(|tag| !new.contains(tag)).map(|tag| count(tag, "out"));
    let gained = new.iter().filter(|tag| !old.contains(tag)).map(|tag| count(tag, "in"));
    lost.chain(gained).collect()
}

/// The index writes (entries and counters) of an item of scope `scope` whose tags
/// `field` move from `old` to `new`: for writes made outside [`Resource`].
pub fn tag_index_writes(space: &str, scope: &str, field: &str, id: &str, old: &[String], new: &[String]) -> Vec<Write> {
    let mut writes: Vec<Write> = old
        .iter()
        .filter(|tag| !new.contains(tag))
        .map(|tag| {
            let key = keys::lookup_entry(space, scope, field, tag, id);
            Write::delete(key.pk, key.sk, Condition::None)
        })
        .collect();
    for tag in new.iter().filter(|tag| !old.contains(tag)) {
        let key = keys::lookup_entry(space, scope, field, tag, id);
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        writes.push(Write::put(Item::new(key.pk, key.sk, body), Condition::None));
    }
    writes.extend(tag_count_writes(space, scope, field, old, new));
    writes
}

/// Makes the job write that finishes a tag change too large for its item's transaction:
/// `payload` for a job that calls [`apply_tag_spill`], due at the time given.
pub type SpillJob = fn(payload: Value, now: DateTime<Utc>) -> Write;

/// Where a spilled change's counts are marked applied, one marker per chunk.
const SPILLED: &str = "tag-spill";
/// How long a chunk's marker is kept: far longer than any retry of its job.
const SPILL_MARK_SECONDS: i64 = 30 * 24 * 3600;

/// `writes` (an item moving from `before` to `after`) as one transaction: when they are
/// more than a transaction takes and the item's tags changed, its tag index writes and
/// counts leave the transaction for a job ([`Filter::IndexedTag`]'s `spill`), enqueued in
/// it: the item, its event and its other entries commit together, the tags follow on the
/// worker, each count once. With the writes, the job's payload when there is one: once the
/// transaction commits, [`apply_tag_spill`] it at once, so that filters and counts need
/// not wait for the worker (whose run then finds nothing left to do).
pub fn fitted(
    filters: &[Filter],
    space: &str,
    scope: &str,
    mut writes: Vec<Write>,
    before: Option<&Item>,
    after: Option<&Item>,
    now: DateTime<Utc>,
) -> (Vec<Write>, Option<Value>) {
    if writes.len() <= space_store::MAX_TRANSACTION_WRITES {
        return (writes, None);
    }
    let Some(item) = after.or(before) else {
        return (writes, None);
    };
    let tags = |item: Option<&Item>, field: &str| item.map(|item| tags_of(&item.body, field)).unwrap_or_default();
    let mut changes = Vec::new();
    let mut spill_job = None;
    for filter in filters {
        if let Filter::IndexedTag { field, spill, .. } = filter {
            let (old, new) = (tags(before, field), tags(after, field));
            if old == new {
                continue;
            }
            let moved: Vec<(String, String)> = tag_index_writes(space, scope, field, &item.sk, &old, &new)
                .iter()
                .map(|write| {
                    let (pk, sk) = write.key();
                    (pk.to_owned(), sk.to_owned())
                })
                .collect();
            writes.retain(|write| {
                let (pk, sk) = write.key();
                !moved.iter().any(|(p, s)| p == pk && s == sk)
            });
            changes.push(json!({"field": field, "old": old, "new": new}));
            spill_job = Some(*spill);
        }
    }
    let Some(job) = spill_job else {
        return (writes, None);
    };
    let payload = json!({
        "space_id": space,
        "scope": scope,
        "items": item.pk,
        "id": item.sk,
        "spill": new_id("spl"),
        "changes": changes,
    });
    writes.push(job(payload.clone(), now));
    (writes, Some(payload))
}

/// [`apply_tag_spill`] right after the change committed, if it spilled: a failure here
/// is left to the job, which the change enqueued.
pub async fn finish_spill(engine: &Engine, spill: Option<Value>) {
    if let Some(payload) = spill
        && let Err(error) = apply_tag_spill(engine, &payload).await
    {
        tracing::warn!(%error, "a spilled tag change is left to its job");
    }
}

/// Applies a spilled tag change ([`fitted`]): the counts, in chunks each marked applied
/// in its own transaction, so a second run counts nothing again; then the index entries as
/// the item stands now (an entry for each gained tag it still carries, none for each lost
/// tag it no longer does), which later changes of the item may have moved on.
pub async fn apply_tag_spill(engine: &Engine, payload: &Value) -> Result<(), StoreError> {
    let text = |name: &str| payload.get(name).and_then(Value::as_str).unwrap_or_default();
    let (space, scope, id, spill) = (text("space_id"), text("scope"), text("id"), text("spill"));
    let list = |change: &Value, name: &str| -> Vec<String> {
        change
            .get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|tag| tag.as_str().map(str::to_owned))
            .collect()
    };
    let changes = payload.get("changes").and_then(Value::as_array).into_iter().flatten();
    let current = engine.store().get(text("items"), id).await?;
    for (number, change) in changes.enumerate() {
        let field = change.get("field").and_then(Value::as_str).unwrap_or_default();
        let (old, new) = (list(change, "old"), list(change, "new"));
        let counts = tag_count_writes(space, scope, field, &old, &new);
        let per_chunk = space_store::MAX_TRANSACTION_WRITES - 1;
        for (chunk, counts) in counts.chunks(per_chunk).enumerate() {
            let mark = keys::unique(space, SPILLED, &format!("{spill}#{number}#{chunk}"));
            let mut writes = counts.to_vec();
            let marked_at = writes.len();
            let expires = engine.now().timestamp() + SPILL_MARK_SECONDS;
            writes.push(Write::put(
                Item::new(mark.pk, mark.sk, Map::new()).expiring_at(expires),
                Condition::NotExists,
            ));
            match engine.store().transact(writes).await {
                Ok(()) => {}
                Err(StoreError::TransactionConflict { index }) if index == marked_at => {}
                Err(error) => return Err(error),
            }
        }
        let carried = current
            .as_ref()
            .map(|item| tags_of(&item.body, field))
            .unwrap_or_default();
        let mut entries = Vec::new();
        for tag in new.iter().filter(|tag| !old.contains(tag) && carried.contains(tag)) {
            entries.push(Write::put(
                entry_item(keys::lookup_entry(space, scope, field, tag, id), id),
                Condition::None,
            ));
        }
        for tag in old.iter().filter(|tag| !new.contains(tag) && !carried.contains(tag)) {
            let key = keys::lookup_entry(space, scope, field, tag, id);
            entries.push(Write::delete(key.pk, key.sk, Condition::None));
        }
        for chunk in entries.chunks(space_store::MAX_TRANSACTION_WRITES) {
            engine.store().transact(chunk.to_vec()).await?;
        }
    }
    Ok(())
}

/// How many items of scope `scope` carry each tag in `field`, from the counters (two
/// small items per tag ever used).
pub async fn tag_counts(
    store: &dyn space_store::Store,
    space: &str,
    scope: &str,
    field: &str,
) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    let partition = keys::tag_counter_partition(space, scope, field);
    let mut sides: std::collections::BTreeMap<String, (u64, u64)> = std::collections::BTreeMap::new();
    let mut after = None;
    loop {
        let page = store
            .query(space_store::Query::partition(partition.clone()).after(after).limit(500))
            .await?;
        for item in &page.items {
            if let Some((tag, side)) = item.sk.rsplit_once('#') {
                let entry = sides.entry(tag.to_owned()).or_default();
                match side {
                    "in" => entry.0 = item.version,
                    _ => entry.1 = item.version,
                }
            }
        }
        if page.last_sk.is_none() {
            break;
        }
        after = page.last_sk;
    }
    Ok(sides
        .into_iter()
        .map(|(tag, (gained, lost))| (tag, gained.saturating_sub(lost)))
        .collect())
}

/// How many items of scope `scope` carry `tag` in `field`: its two counters, read by key.
pub async fn tag_count(
    store: &dyn space_store::Store,
    space: &str,
    scope: &str,
    field: &str,
    tag: &str,
) -> Result<u64, StoreError> {
    let (gained, lost) = (
        keys::tag_counter(space, scope, field, tag, "in"),
        keys::tag_counter(space, scope, field, tag, "out"),
    );
    let (gained, lost) = tokio::try_join!(store.get(&gained.pk, &gained.sk), store.get(&lost.pk, &lost.sk))?;
    let version = |item: Option<Item>| item.map_or(0, |item| item.version);
    Ok(version(gained).saturating_sub(version(lost)))
}

/// The value a lookup indexes: the stored text of the field, when it has one.
fn lookup_value<'a>(item: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    item.get(field)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}

/// The words of an item's searchable fields, as the index holds them.
fn searchable_words(item: &Map<String, Value>, fields: &[&str]) -> Vec<String> {
    index_words(
        fields
            .iter()
            .filter_map(|field| item.get(*field).and_then(Value::as_str)),
    )
}

/// An index entry pointing at the item `id`.
fn entry_item(key: ItemKey, id: &str) -> Item {
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    Item::new(key.pk, key.sk, body)
}

/// A boolean query parameter (`true` / `false`).
pub fn parse_bool(raw: &str) -> Result<Value, String> {
    match raw {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => Err("must be true or false".into()),
    }
}

/// Whole-item checks that need more than one field, run after merging a write; they may
/// also set fields the server derives from others (a recurring event's last occurrence).
pub type Rules = fn(&mut Map<String, Value>) -> Result<(), FieldErrors>;

/// One CRUD resource.
#[derive(Clone)]
pub struct Resource {
    pub domain: Domain,
    /// Prefix of the operation names: `contacts` gives `contacts_list`, ….
    pub name: &'static str,
    /// The partition segment, e.g. `contacts` or `notes`.
    pub collection: &'static str,
    /// The collection path, e.g. `/contacts` or `/contacts/{id}/notes`.
    pub path: &'static str,
    /// The item's path parameter: `id`, or e.g. `note_id` under a parent's `{id}`.
    pub item_param: &'static str,
    pub singular: &'static str,
    pub plural: &'static str,
    /// Events are `<event_prefix>.created` and so on.
    pub event_prefix: &'static str,
    pub id_prefix: &'static str,
    pub parent: Option<Parent>,
    pub fields: Vec<Field>,
    pub filters: Vec<Filter>,
    pub rules: Option<Rules>,
}

/// Server-managed fields every item carries.
pub const BASE_FIELDS: [&str; 4] = ["id", "created_at", "updated_at", "version"];

impl Resource {
    fn scope(&self, action: Action) -> Access {
        Access::Space(Scope::new(self.domain, action))
    }

    fn item_path(&self) -> String {
        format!("{}/{{{}}}", self.path, self.item_param)
    }

    fn path_params(&self, with_item: bool) -> Vec<Param> {
        let mut params = Vec::new();
        if let Some(parent) = self.parent {
            params.push(Param::path("id", format!("The {}'s id.", parent.singular)));
        }
        if with_item {
            params.push(Param::path(self.item_param, format!("The {}'s id.", self.singular)));
        }
        params
    }

    /// The name of the item's schema in OpenAPI (`Task`); its bodies are `TaskCreate` (a
    /// create or a replace) and `TaskUpdate`, its pages `TaskList`. A child resource's name
    /// starts with its parent's (`ContactNote`, `ThreadNote`): two families' notes are two
    /// types a client tells apart by name.
    pub fn type_name(&self) -> String {
        match self.parent {
            Some(parent) => crate::openapi::pascal(&format!("{} {}", parent.singular, self.singular)),
            None => crate::openapi::pascal(self.singular),
        }
    }

    /// The JSON Schema of one item as the API returns it.
    pub fn item_schema(&self) -> Value {
        let mut properties = Map::new();
        properties.insert(
            "id".into(),
            json!({"type": "string", "description": format!("Starts with `{}_`.", self.id_prefix)}),
        );
        properties.insert("created_at".into(), json!({"type": "string", "format": "date-time"}));
        properties.insert("updated_at".into(), json!({"type": "string", "format": "date-time"}));
        properties.insert(
            "version".into(),
            json!({"type": "integer", "minimum": 1, "description": "Increases on every change; the ETag."}),
        );
        for field in &self.fields {
            properties.insert(field.name.into(), field.schema());
        }
        let mut required: Vec<&str> = BASE_FIELDS.to_vec();
        required.extend(
            self.fields
                .iter()
                .filter(|f| f.required || f.default.is_some())
                .map(|f| f.name),
        );
        json!({"type": "object", "properties": properties, "required": required})
    }

    /// The six CRUD operations. Their schemas are built when first read (OpenAPI, MCP),
    /// not here: a function's cold start runs this.
    pub fn operations(self) -> Vec<Operation> {
        let this = Arc::new(self);
        let type_name = this.type_name();
        let item_schema = Schema::lazy({
            let this = Arc::clone(&this);
            move || this.item_schema()
        })
        .named(type_name.clone());
        // A replace takes what a create takes: one schema, one name.
        let body = |mode: WriteMode| {
            let this = Arc::clone(&this);
            let suffix = if mode == WriteMode::Patch { "Update" } else { "Create" };
            Some(Schema::lazy(move || body_schema(&this.fields, mode)).named(format!("{type_name}{suffix}")))
        };
        let collection = this.path.to_owned();
        let item = this.item_path();
        let mut list_params = this.path_params(false);
        list_params.extend(page_params());
        list_params.extend(this.filters.iter().map(Filter::doc));
        let operation = |verb, method, path, action, effect, summary| Operation {
            response: Some(item_schema.clone()),
            ..this.operation(verb, method, path, action, effect, summary)
        };
        let mut operations = vec![
            Operation {
                params: list_params,
                response: Some(item_schema.map(list_schema)),
                ..operation(
                    "list",
                    Method::GET,
                    collection.clone(),
                    Action::Read,
                    Effect::Read,
                    format!("List {}", this.plural),
                )
            },
            Operation {
                body: body(WriteMode::Create),
                success: StatusCode::CREATED,
                ..operation(
                    "create",
                    Method::POST,
                    collection,
                    Action::Write,
                    Effect::Create,
                    format!("Create a {}", this.singular),
                )
            },
            operation(
                "get",
                Method::GET,
                item.clone(),
                Action::Read,
                Effect::Read,
                format!("Get a {}", this.singular),
            ),
            Operation {
                body: body(WriteMode::Patch),
                ..operation(
                    "update",
                    Method::PATCH,
                    item.clone(),
                    Action::Write,
                    Effect::Update,
                    format!("Update some fields of a {}", this.singular),
                )
            },
            Operation {
                body: body(WriteMode::Replace),
                ..operation(
                    "replace",
                    Method::PUT,
                    item.clone(),
                    Action::Write,
                    Effect::Replace,
                    format!("Replace a {}", this.singular),
                )
            },
            Operation {
                response: None,
                success: StatusCode::NO_CONTENT,
                ..operation(
                    "delete",
                    Method::DELETE,
                    item,
                    Action::Write,
                    Effect::Delete,
                    format!("Delete a {}", this.singular),
                )
            },
        ];
        let unique: Vec<&'static str> = this.unique_lookups().map(|(param, ..)| param).collect();
        if !unique.is_empty() {
            let duplicate = Answer {
                status: StatusCode::CONFLICT,
                description: format!(
                    "Another {} already has this {}: `error.existing_id` names it and `error.fields` the field. \
                     Update that one (or create with `upsert`) instead of adding a duplicate.",
                    this.singular,
                    unique.join(" or ")
                ),
                schema: None,
            };
            for operation in &mut operations {
                if operation.effect == Effect::Create {
                    operation.params.push(Param::query(
                        "upsert",
                        json!({"type": "string", "enum": unique}),
                        format!(
                            "Create or update by this field: when another {} already has the value sent, update \
                             it with the fields sent (200) instead of refusing with 409; otherwise create (201).",
                            this.singular
                        ),
                    ));
                    operation.answers.push(Answer {
                        status: StatusCode::OK,
                        description: format!(
                            "With `upsert`: the existing {} with that value, updated with the fields sent.",
                            this.singular
                        ),
                        schema: Some(item_schema.clone()),
                    });
                }
                if matches!(operation.effect, Effect::Create | Effect::Update | Effect::Replace) {
                    operation.answers.push(duplicate.clone());
                }
            }
        }
        operations
    }

    /// One operation of the resource, without schemas; `verb` picks the handler.
    fn operation(
        self: &Arc<Self>,
        verb: &'static str,
        method: Method,
        path: String,
        action: Action,
        effect: Effect,
        summary: String,
    ) -> Operation {
        let resource = Arc::clone(self);
        let run = handler(move |call| {
            let resource = Arc::clone(&resource);
            async move {
                match verb {
                    "list" => resource.list(&call).await,
                    "create" => resource.create(&call).await,
                    "get" => resource.get(&call).await,
                    "update" => resource.write(&call, WriteMode::Patch).await,
                    "replace" => resource.write(&call, WriteMode::Replace).await,
                    _ => resource.delete(&call).await,
                }
            }
        });
        let params = self.path_params(!matches!(verb, "list" | "create"));
        Operation::new(
            format!("{}_{verb}", self.name),
            method,
            path,
            self.scope(action),
            effect,
            summary,
            run,
        )
        .with_params(params)
    }

    /// The partition this call's items live in.
    pub fn partition(&self, call: &Call) -> Result<String, ApiError> {
        let space = call.space_id()?;
        Ok(match self.parent {
            Some(_) => keys::child_partition(space, self.collection, call.path_param("id")?),
            None => keys::collection_partition(space, self.collection),
        })
    }

    /// Where the parent item is, for child resources.
    fn parent_key(&self, call: &Call) -> Result<Option<ItemKey>, ApiError> {
        let Some(parent) = self.parent else { return Ok(None) };
        let space = call.space_id()?;
        let partition = keys::collection_partition(space, parent.collection);
        Ok(Some(keys::resource(&partition, call.path_param("id")?)))
    }

    async fn ensure_parent(&self, call: &Call) -> Result<(), ApiError> {
        if let (Some(parent), Some(key)) = (self.parent, self.parent_key(call)?)
            && call.engine.store().get(&key.pk, &key.sk).await?.is_none()
        {
            return Err(ApiError::not_found(parent.singular, &key.sk));
        }
        Ok(())
    }

    /// The item as the API shows it.
    pub fn render(item: &Item) -> Value {
        Self::view(item.body.clone(), item.version)
    }

    /// [`Resource::render`] for a body the caller owns.
    fn view(body: Map<String, Value>, version: u64) -> Value {
        listing::view(body, version)
    }

    /// Reads one item or answers 404.
    pub async fn load(&self, call: &Call, id: &str) -> Result<Item, ApiError> {
        let partition = self.partition(call)?;
        self.found(call, id, call.engine.store().get(&partition, id)).await
    }

    /// Awaits `read` of item `id` beside the parent check: the item, or 404 for either.
    async fn found<T>(
        &self,
        call: &Call,
        id: &str,
        read: impl Future<Output = Result<Option<T>, StoreError>>,
    ) -> Result<T, ApiError> {
        let (item, parent) = tokio::join!(read, self.ensure_parent(call));
        parent?;
        item?.ok_or_else(|| ApiError::not_found(self.singular, id))
    }

    /// Reads one item and answers it as stored plus its version: the stored JSON text is
    /// passed through, not decoded into a map and encoded again.
    async fn get(&self, call: &Call) -> Result<Reply, ApiError> {
        let id = call.path_param(self.item_param)?;
        let partition = self.partition(call)?;
        let item = self
            .found(call, id, call.engine.store().get_raw(&partition, id))
            .await?;
        let reply = match with_version(item.body.get(), item.version) {
            Some(text) => Reply::json_text(StatusCode::OK, text),
            None => {
                let body = serde_json::from_str(item.body.get())
                    .map_err(|e| ApiError::Internal(format!("unreadable {} {id}: {e}", self.singular)))?;
                Reply::ok(Self::view(body, item.version))
            }
        };
        Ok(reply.with_etag(item.version))
    }

    async fn list(&self, call: &Call) -> Result<Reply, ApiError> {
        let mut errors = FieldErrors::new();
        let filters: Vec<(&Filter, Value)> = self
            .filters
            .iter()
            .filter_map(|filter| {
                let raw = call.query_param(filter.param())?;
                match filter.parse(raw) {
                    Ok(value) => Some((filter, value)),
                    Err(message) => {
                        errors.insert(filter.param().into(), vec![message]);
                        None
                    }
                }
            })
            .collect();
        let page = PageRequest::from_call(call, &mut errors);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let partition = self.partition(call)?;
        self.ensure_parent(call).await?;
        let now = call.engine.now();
        let matches = |item: &Item| filters.iter().all(|(f, v)| f.matches(&item.body, v, now));
        let space = call.space_id()?;
        let scope = self.index_scope(call)?;
        // The most selective index a filter offers: a unique value, a shared value, words.
        let lookup = |unique_wanted: bool| {
            filters.iter().find_map(|(filter, value)| match filter {
                Filter::Lookup { field, unique, .. } if *unique == unique_wanted => {
                    value.as_str().map(|value| (*field, value))
                }
                Filter::IndexedTag { field, .. } if !unique_wanted => value.as_str().map(|value| (*field, value)),
                _ => None,
            })
        };
        if let Some((field, value)) = lookup(true) {
            let found = match self.holder_in(call, space, &scope, field, value).await? {
                Some(id) => call
                    .engine
                    .store()
                    .get(&partition, &id)
                    .await?
                    .filter(|item| matches(item)),
                None => None,
            };
            let data: Vec<Value> = found.iter().map(Self::render).collect();
            return Ok(Reply::ok(json!({"data": data, "next_cursor": null})));
        }
        let source_and_position: Option<(Source, EntryCheck)> = if let Some((field, value)) = lookup(false) {
            let value = value.to_owned();
            let source = Source::Entries {
                index: keys::lookup_partition(space, &scope, field),
                range: SortRange::BeginsWith(format!("{value}#")),
                items: partition.clone(),
            };
            Some((
                source,
                Box::new(move |sk: &str, _: &Item| entry_id(sk, &value).is_some()),
            ))
        } else {
            self.word_source(&filters, space, &scope, &partition)
        };
        let listed = match source_and_position {
            Some((source, position_ok)) => {
                // Matches come in the index's order (a value's items oldest first, words
                // alphabetically): `order` has no meaning there.
                let page = PageRequest {
                    descending: false,
                    ..page
                };
                let refuse = || self.too_broad(&filters);
                list_page(call, &source, page, WhenNothingFound::Refuse(&refuse), |sk, item| {
                    position_ok(sk, item) && matches(item)
                })
                .await?
            }
            None => {
                let source = Source::Items {
                    partition: partition.clone(),
                    range: SortRange::All,
                };
                let refuse = || self.too_broad(&filters);
                list_page(call, &source, page, WhenNothingFound::Refuse(&refuse), |_, item| {
                    matches(item)
                })
                .await?
            }
        };
        Ok(Reply::ok(listed))
    }

    /// The word index to read for a `q` with words, and which of an item's entries counts:
    /// the index is read on the longest query word (the fewest entries), and an item whose
    /// several words start with it is taken at the first of them only, so it appears once
    /// across all pages.
    fn word_source(
        &self,
        filters: &[(&Filter, Value)],
        space: &str,
        scope: &str,
        partition: &str,
    ) -> Option<(Source, EntryCheck)> {
        filters.iter().find_map(|(filter, value)| {
            let Filter::IndexedSearch { fields, .. } = filter else {
                return None;
            };
            let query: Vec<String> = serde_json::from_value(value.clone()).ok()?;
            let longest = query.into_iter().max_by_key(|word| word.chars().count())?;
            let fields: &'static [&'static str] = fields;
            let source = Source::Entries {
                index: keys::search_partition(space, scope),
                range: SortRange::BeginsWith(longest.clone()),
                items: partition.to_owned(),
            };
            let first_entry = move |sk: &str, item: &Item| {
                let words = searchable_words(&item.body, fields);
                let starting = words.iter().filter(|word| word.starts_with(longest.as_str()));
                starting.min().is_some_and(|word| word == entry_word(sk))
            };
            Some((source, Box::new(first_entry) as EntryCheck))
        })
    }

    /// The 422 for a list whose filters read [`SCAN_BUDGET`] items in order and matched none.
    fn too_broad(&self, filters: &[(&Filter, Value)]) -> ApiError {
        let indexed: Vec<&str> = self
            .filters
            .iter()
            .filter(|f| f.is_indexed())
            .map(Filter::param)
            .collect();
        let hint = if indexed.is_empty() {
            String::new()
        } else {
            format!(" Add an indexed filter ({}) to search all of them.", indexed.join(", "))
        };
        let message = format!(
            "No {} among the {SCAN_BUDGET} read from this position matched; this filter reads the {} in order.{hint}",
            self.singular, self.plural
        );
        let fields = filters
            .iter()
            .filter(|(f, _)| !f.is_indexed())
            .map(|(f, _)| (f.param().to_owned(), vec![message.clone()]))
            .collect::<FieldErrors>();
        if fields.is_empty() {
            ApiError::invalid_field("q", message)
        } else {
            ApiError::validation(fields)
        }
    }

    /// The unique lookups this resource declares: `(param, field)`.
    fn unique_lookups(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.filters.iter().filter_map(|filter| match filter {
            Filter::Lookup {
                param,
                field,
                unique: true,
                ..
            } => Some((*param, *field)),
            _ => None,
        })
    }

    /// Where this call's index entries are scoped (`keys::index_scope`).
    fn index_scope(&self, call: &Call) -> Result<String, ApiError> {
        let parent = match self.parent {
            Some(_) => Some(call.path_param("id")?),
            None => None,
        };
        Ok(keys::index_scope(self.collection, parent))
    }

    /// The id of the item whose unique `field` holds `value` in this call's scope (the
    /// contact with this email), without scanning.
    pub async fn find_unique(&self, call: &Call, field: &str, value: &str) -> Result<Option<String>, ApiError> {
        let space = call.space_id()?;
        let scope = self.index_scope(call)?;
        Ok(self.holder_in(call, space, &scope, field, value).await?)
    }

    /// The ids of the items whose shared lookup `field` holds `value` in this call's scope
    /// (the contacts with this phone), oldest first, up to `limit`: read from the index.
    pub async fn find_by_lookup(
        &self,
        call: &Call,
        field: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<String>, ApiError> {
        let space = call.space_id()?;
        let scope = self.index_scope(call)?;
        let query = Query::partition(keys::lookup_partition(space, &scope, field))
            .range(SortRange::BeginsWith(format!("{value}#")))
            .limit(limit);
        let page = call.engine.store().query(query).await?;
        Ok(page
            .items
            .iter()
            .filter_map(|entry| entry_id(&entry.sk, value).map(str::to_owned))
            .collect())
    }

    async fn holder_in(
        &self,
        call: &Call,
        space: &str,
        scope: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<String>, StoreError> {
        let claim = keys::lookup_claim(space, scope, field, value);
        Ok(call
            .engine
            .store()
            .get(&claim.pk, &claim.sk)
            .await?
            .and_then(|claim| claim.body.get("id").and_then(Value::as_str).map(str::to_owned)))
    }

    /// The index entries of `item`: `(key, unique claim?)`.
    fn index_entries(&self, space: &str, scope: &str, item: &Item) -> Vec<(ItemKey, bool)> {
        let mut entries = Vec::new();
        for filter in &self.filters {
            match filter {
                Filter::Lookup { field, unique, .. } => {
                    if let Some(value) = lookup_value(&item.body, field) {
                        let key = if *unique {
                            keys::lookup_claim(space, scope, field, value)
                        } else {
                            keys::lookup_entry(space, scope, field, value, &item.sk)
                        };
                        entries.push((key, *unique));
                    }
                }
                Filter::IndexedSearch { fields, .. } => {
                    for word in searchable_words(&item.body, fields) {
                        entries.push((keys::search_entry(space, scope, &word, &item.sk), false));
                    }
                }
                Filter::IndexedTag { field, .. } => {
                    for tag in tags_of(&item.body, field) {
                        entries.push((keys::lookup_entry(space, scope, field, &tag, &item.sk), false));
                    }
                }
                _ => {}
            }
        }
        entries
    }

    /// The index writes that move an item from `before` to `after` (`None` for absent):
    /// entries it gains are put (a unique claim only if no other item holds it), entries it
    /// loses are deleted, the rest are left alone. Commit them in the item's transaction.
    pub fn index_writes(
        &self,
        call: &Call,
        before: Option<&Item>,
        after: Option<&Item>,
    ) -> Result<Vec<Write>, ApiError> {
        if !self.filters.iter().any(Filter::is_indexed) {
            return Ok(Vec::new());
        }
        let space = call.space_id()?;
        let scope = self.index_scope(call)?;
        Ok(self.index_writes_in(space, &scope, before, after))
    }

    /// [`Resource::index_writes`] in a Space and index scope named outright (a job).
    pub fn index_writes_in(&self, space: &str, scope: &str, before: Option<&Item>, after: Option<&Item>) -> Vec<Write> {
        let old = before
            .map(|item| self.index_entries(space, scope, item))
            .unwrap_or_default();
        let new = after
            .map(|item| self.index_entries(space, scope, item))
            .unwrap_or_default();
        let mut writes = Vec::new();
        for (key, _) in old.iter().filter(|entry| !new.contains(entry)) {
            writes.push(Write::delete(key.pk.clone(), key.sk.clone(), Condition::None));
        }
        if let Some(item) = after {
            for (key, unique) in new.into_iter().filter(|entry| !old.contains(entry)) {
                let condition = if unique { Condition::NotExists } else { Condition::None };
                writes.push(Write::put(entry_item(key, &item.sk), condition));
            }
        }
        for filter in &self.filters {
            if let Filter::IndexedTag { field, .. } = filter {
                let tags = |item: Option<&Item>| item.map(|item| tags_of(&item.body, field)).unwrap_or_default();
                writes.extend(tag_count_writes(space, scope, field, &tags(before), &tags(after)));
            }
        }
        writes
    }

    /// `writes` (of [`Resource::prepare_create`]) without the item's search-word entries,
    /// for a bulk write that leaves them to [`Resource::write_search_words`] afterwards:
    /// a row then costs its item, its event and its lookups, not one write per word.
    pub fn without_search_words(&self, call: &Call, writes: Vec<Write>) -> Result<Vec<Write>, ApiError> {
        let words = keys::search_partition(call.space_id()?, &self.index_scope(call)?);
        Ok(writes.into_iter().filter(|write| write.key().0 != words).collect())
    }

    /// Writes the search-word entries of the items `ids` of `space` (a top-level resource)
    /// as each item is now, in bulk ([`Store::put_many`]: one store write for many
    /// entries, no transaction); an item gone is skipped. Then it reads each item again: an
    /// item changed meanwhile loses the entries of the version read that its new version
    /// lacks, and goes round again with its new words (the entries an update left out, as
    /// an update writes only the words it adds); an item deleted meanwhile loses them all.
    /// Entries are put whole, so a second run changes nothing. Answers how many items
    /// have their words.
    ///
    /// [`Store::put_many`]: space_store::Store::put_many
    pub async fn write_search_words(&self, engine: &Engine, space: &str, ids: &[String]) -> Result<usize, StoreError> {
        let Some(fields) = self.filters.iter().find_map(|filter| match filter {
            Filter::IndexedSearch { fields, .. } => Some(*fields),
            _ => None,
        }) else {
            return Ok(0);
        };
        if self.parent.is_some() {
            return Err(StoreError::Rejected(format!(
                "{} is a child resource: its words are written with each item",
                self.collection
            )));
        }
        let partition = keys::collection_partition(space, self.collection);
        let scope = keys::index_scope(self.collection, None);
        let entries = |item: &Item| -> Vec<ItemKey> {
            searchable_words(&item.body, fields)
                .iter()
                .map(|word| keys::search_entry(space, &scope, word, &item.sk))
                .collect()
        };
        let read = |ids: Vec<String>| {
            let partition = partition.clone();
            futures::stream::iter(ids)
                .map(move |id| {
                    let (store, partition) = (engine.store_arc(), partition.clone());
                    async move { store.get(&partition, &id).await }
                })
                .buffered(16)
                .try_collect::<Vec<Option<Item>>>()
        };
        let mut pending = ids.to_vec();
        let mut written = 0;
        for _ in 0..WRITE_RETRIES {
            let items: Vec<Item> = read(pending).await?.into_iter().flatten().collect();
            let puts = items
                .iter()
                .flat_map(|item| entries(item).into_iter().map(|key| entry_item(key, &item.sk)))
                .collect();
            engine.store().put_many(puts).await?;
            let now = read(items.iter().map(|item| item.sk.clone()).collect()).await?;
            let mut stale = Vec::new();
            pending = Vec::new();
            for (before, after) in items.iter().zip(now) {
                match after {
                    Some(after) if after.version == before.version => written += 1,
                    Some(after) => {
                        let keep = entries(&after);
                        stale.extend(entries(before).into_iter().filter(|key| !keep.contains(key)));
                        pending.push(after.sk);
                    }
                    None => stale.extend(entries(before)),
                }
            }
            engine
                .store()
                .delete_many(stale.into_iter().map(|key| (key.pk, key.sk)).collect())
                .await?;
            if pending.is_empty() {
                return Ok(written);
            }
        }
        Err(StoreError::Contention)
    }

    /// The 409 for a transaction refused at `write`, when that write claims a unique value
    /// another item holds (naming that item); `None` for any other refusal.
    pub async fn duplicate(&self, call: &Call, write: Option<&Write>) -> Result<Option<ApiError>, ApiError> {
        let Some(Write::Put { item: claim, .. }) = write else {
            return Ok(None);
        };
        let space = call.space_id()?;
        let scope = self.index_scope(call)?;
        for (param, field) in self.unique_lookups() {
            if claim.pk != keys::lookup_claim(space, &scope, field, "").pk {
                continue;
            }
            let error = match self.holder_in(call, space, &scope, field, &claim.sk).await? {
                Some(existing_id) => ApiError::Duplicate {
                    message: format!(
                        "Another {} already has this {field}: {existing_id}. Update that one, or create with `upsert={param}`.",
                        self.singular
                    ),
                    field: field.to_owned(),
                    existing_id,
                },
                None => ApiError::Conflict(format!(
                    "Another {} held this {field} a moment ago; retry.",
                    self.singular
                )),
            };
            return Ok(Some(error));
        }
        Ok(None)
    }

    /// Validates a create body into the stored item and the writes that add it (a spilled
    /// tag change is left to its job: see [`fitted`]).
    pub fn prepare_create(&self, call: &Call, body: &Value) -> Result<(Item, Vec<Write>), FieldErrors> {
        self.prepare(call, body).map(|(item, writes, _)| (item, writes))
    }

    /// [`Resource::prepare_create`] with the spilled tag change, if any.
    fn prepare(&self, call: &Call, body: &Value) -> Result<(Item, Vec<Write>, Option<Value>), FieldErrors> {
        let Validated { mut set, .. } = validate(&self.fields, body, WriteMode::Create)?;
        if let Some(rules) = self.rules {
            rules(&mut set)?;
        }
        let internal = |e: ApiError| FieldErrors::from([("body".to_owned(), vec![e.to_string()])]);
        let partition = self.partition(call).map_err(internal)?;
        let id = new_id(self.id_prefix);
        let now = format_datetime(call.engine.now());
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.extend(set);
        body.insert("created_at".into(), json!(now));
        body.insert("updated_at".into(), json!(now));
        let item = Item::new(partition, id.clone(), body);
        let mut writes = Vec::with_capacity(3);
        if let Ok(Some(parent)) = self.parent_key(call) {
            writes.push(Write::check(parent.pk, parent.sk, Condition::Exists));
        }
        writes.push(Write::put(item.clone(), Condition::NotExists));
        writes.push(self.event(call, "created", &item).map_err(internal)?);
        writes.extend(self.index_writes(call, None, Some(&item)).map_err(internal)?);
        let (writes, spill) = self.fit(call, writes, None, Some(&item)).map_err(internal)?;
        Ok((item, writes, spill))
    }

    /// [`fitted`] for this resource's items in the call's Space.
    fn fit(
        &self,
        call: &Call,
        writes: Vec<Write>,
        before: Option<&Item>,
        after: Option<&Item>,
    ) -> Result<(Vec<Write>, Option<Value>), ApiError> {
        if writes.len() <= space_store::MAX_TRANSACTION_WRITES {
            return Ok((writes, None));
        }
        let (space, scope) = (call.space_id()?, self.index_scope(call)?);
        Ok(fitted(
            &self.filters,
            space,
            &scope,
            writes,
            before,
            after,
            call.engine.now(),
        ))
    }

    async fn create(&self, call: &Call) -> Result<Reply, ApiError> {
        if let Some(raw) = call.query_param("upsert") {
            return self.upsert(call, raw).await;
        }
        for _ in 0..WRITE_RETRIES {
            match self.try_create(call).await? {
                Created::Done(reply) => return Ok(reply),
                Created::Taken(error) => return Err(error),
                Created::Contended => continue,
            }
        }
        Err(StoreError::Contention.into())
    }

    /// One attempt at a create: done, refused because a unique value is taken, or caught
    /// in another transaction on the same items (worth another attempt).
    async fn try_create(&self, call: &Call) -> Result<Created, ApiError> {
        let (item, writes, spill) = self.prepare(call, &call.body).map_err(ApiError::validation)?;
        let has_parent = self.parent.is_some();
        match call.engine.store().transact(writes.clone()).await {
            Ok(()) => {
                finish_spill(&call.engine, spill).await;
                Ok(Created::Done(
                    Reply::created(Self::render(&item)).with_etag(item.version),
                ))
            }
            Err(StoreError::TransactionConflict { index: 0 }) if has_parent => {
                let parent = self.parent.map(|p| p.singular).unwrap_or("parent");
                Err(ApiError::not_found(parent, call.path_param("id")?))
            }
            Err(StoreError::TransactionConflict { index }) => match self.duplicate(call, writes.get(index)).await? {
                Some(error @ ApiError::Duplicate { .. }) => Ok(Created::Taken(error)),
                Some(_) => Ok(Created::Contended),
                None => Err(StoreError::TransactionConflict { index }.into()),
            },
            Err(StoreError::Contention) => Ok(Created::Contended),
            Err(error) => Err(error.into()),
        }
    }

    /// `POST ?upsert=<field>`: updates the item that holds the body's value of a unique
    /// field with the fields sent (200), or creates one (201). A create that loses a race
    /// for the value updates the winner instead.
    async fn upsert(&self, call: &Call, raw: &str) -> Result<Reply, ApiError> {
        let Some((_, field)) = self.unique_lookups().find(|(param, _)| *param == raw) else {
            let options: Vec<&str> = self.unique_lookups().map(|(param, _)| param).collect();
            return Err(ApiError::invalid_field(
                "upsert",
                if options.is_empty() {
                    format!("{} have no unique field to upsert by", self.plural)
                } else {
                    format!("must be one of {}", options.join(", "))
                },
            ));
        };
        // The body is a create's (its schema says so), applied as a patch to the holder.
        validate(&self.fields, &call.body, WriteMode::Create).map_err(ApiError::validation)?;
        let patch = validate(&self.fields, &call.body, WriteMode::Patch).map_err(ApiError::validation)?;
        let Some(value) = patch.set.get(field).and_then(Value::as_str).map(str::to_owned) else {
            return Err(ApiError::invalid_field(
                field,
                format!("is required to upsert by {field}"),
            ));
        };
        for _ in 0..WRITE_RETRIES {
            if let Some(id) = self.find_unique(call, field, &value).await? {
                let updated = self
                    .modify(call, &id, |body| {
                        for name in &patch.clear {
                            body.remove(*name);
                        }
                        body.extend(patch.set.clone());
                        Ok(())
                    })
                    .await;
                match updated {
                    Ok(item) => return Ok(Reply::ok(Self::render(&item)).with_etag(item.version)),
                    // Deleted (or its value changed) since the claim was read: look again.
                    Err(ApiError::NotFound(_) | ApiError::Duplicate { .. }) => continue,
                    Err(error) => return Err(error),
                }
            }
            match self.try_create(call).await? {
                Created::Done(reply) => return Ok(reply),
                Created::Taken(_) | Created::Contended => continue,
            }
        }
        Err(ApiError::Conflict(format!(
            "The {} with this {field} kept changing while we wrote it; retry.",
            self.singular
        )))
    }

    /// The event write for a change to `item`.
    pub fn event(&self, call: &Call, verb: &str, item: &Item) -> Result<Write, ApiError> {
        Ok(event_write(
            call.space_id()?,
            &format!("{}.{verb}", self.event_prefix),
            &item.sk,
            Self::render(item),
            &call.principal,
            call.engine.now(),
        ))
    }

    /// The event write for an update of `before` into `after`, with what changed.
    pub fn update_event(&self, call: &Call, before: &Item, after: &Item) -> Result<Write, ApiError> {
        Ok(update_event_write(
            call.space_id()?,
            &format!("{}.updated", self.event_prefix),
            &after.sk,
            &Self::render(before),
            Self::render(after),
            &call.principal,
            call.engine.now(),
        ))
    }

    async fn write(&self, call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
        let validated = validate(&self.fields, &call.body, mode).map_err(ApiError::validation)?;
        let id = call.path_param(self.item_param)?.to_owned();
        let item = self
            .modify(call, &id, |body| {
                validated.apply(body, mode, &BASE_FIELDS);
                Ok(())
            })
            .await?;
        Ok(Reply::ok(Self::render(&item)).with_etag(item.version))
    }

    /// Read-modify-write of one item with its `updated` event: honours `If-Match`, and
    /// without it retries a few times when another writer got there first.
    pub async fn modify<F>(&self, call: &Call, id: &str, change: F) -> Result<Item, ApiError>
    where
        F: FnMut(&mut Map<String, Value>) -> Result<(), ApiError>,
    {
        self.modify_with(call, id, change, |_| Ok(Vec::new())).await
    }

    /// [`Resource::modify`] that also commits `extra(next)` in the same transaction, after
    /// the item and its event (a version-history entry, a related item's update), and the
    /// item's index entries after those.
    pub async fn modify_with<F, E>(&self, call: &Call, id: &str, mut change: F, extra: E) -> Result<Item, ApiError>
    where
        F: FnMut(&mut Map<String, Value>) -> Result<(), ApiError>,
        E: Fn(&Item) -> Result<Vec<Write>, ApiError>,
    {
        for _ in 0..WRITE_RETRIES {
            let current = self.load(call, id).await?;
            call.check_if_match(current.version)?;
            let mut next = current.clone();
            change(&mut next.body)?;
            if let Some(rules) = self.rules {
                rules(&mut next.body).map_err(ApiError::validation)?;
            }
            next.version = current.version + 1;
            next.body
                .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
            let mut writes = vec![
                Write::put(next.clone(), Condition::Version(current.version)),
                self.update_event(call, &current, &next)?,
            ];
            writes.extend(extra(&next)?);
            writes.extend(self.index_writes(call, Some(&current), Some(&next))?);
            let (writes, spill) = self.fit(call, writes, Some(&current), Some(&next))?;
            match call.engine.store().transact(writes.clone()).await {
                Ok(()) => {
                    finish_spill(&call.engine, spill).await;
                    return Ok(next);
                }
                Err(StoreError::TransactionConflict { index: 0 }) => {
                    if call.if_match.is_some() {
                        return Err(ApiError::PreconditionFailed(
                            "The item changed since it was read; the If-Match precondition no longer holds.".into(),
                        ));
                    }
                }
                Err(StoreError::TransactionConflict { index }) => {
                    if let Some(error) = self.duplicate(call, writes.get(index)).await? {
                        return Err(error);
                    }
                    return Err(StoreError::TransactionConflict { index }.into());
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "The {} kept changing while we wrote it; retry.",
            self.singular
        )))
    }

    async fn delete(&self, call: &Call) -> Result<Reply, ApiError> {
        let id = call.path_param(self.item_param)?;
        let current = self.load(call, id).await?;
        call.check_if_match(current.version)?;
        let mut writes = vec![
            Write::delete(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            self.event(call, "deleted", &current)?,
        ];
        writes.extend(self.index_writes(call, Some(&current), None)?);
        let (writes, spill) = self.fit(call, writes, Some(&current), None)?;
        match call.engine.store().transact(writes).await {
            Ok(()) => {
                finish_spill(&call.engine, spill).await;
                Ok(Reply::no_content())
            }
            Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::PreconditionFailed(
                "The item changed while it was being deleted; read it again.".into(),
            )),
            Err(error) => Err(error.into()),
        }
    }
}

/// Whether an index entry (its sort key) stands for the item it names in this list.
type EntryCheck = Box<dyn Fn(&str, &Item) -> bool + Send + Sync>;

/// How one create attempt ended, short of an error to answer.
enum Created {
    Done(Reply),
    /// A unique value is held by another item: the 409 to answer (or to upsert past).
    Taken(ApiError),
    /// Another transaction touched the same items; try again.
    Contended,
}

/// `limit`, `cursor` and `order`, checked.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
    pub descending: bool,
    /// Where the first page starts, strictly after this sort key (a feed polled with
    /// "what happened since"); a cursor, once the client has one, takes over.
    pub start_after: Option<String>,
}

impl PageRequest {
    /// Reads the paging parameters of a list that has no filters.
    pub fn parse(call: &Call) -> Result<PageRequest, ApiError> {
        let mut errors = FieldErrors::new();
        let page = PageRequest::from_call(call, &mut errors);
        if errors.is_empty() {
            Ok(page)
        } else {
            Err(ApiError::validation(errors))
        }
    }

    /// Reads the paging parameters, adding any problem to `errors` (for lists that also
    /// check filters, so one 422 names every bad parameter).
    pub fn from_call(call: &Call, errors: &mut FieldErrors) -> PageRequest {
        let limit = match call.query_param("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
                _ => {
                    errors.insert(
                        "limit".into(),
                        vec![format!("must be a whole number from 1 to {MAX_LIMIT}")],
                    );
                    DEFAULT_LIMIT
                }
            },
        };
        let descending = match call.query_param("order") {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(_) => {
                errors.insert("order".into(), vec!["must be asc or desc".into()]);
                true
            }
        };
        PageRequest {
            limit,
            cursor: call.query_param("cursor").map(str::to_owned),
            descending,
            start_after: None,
        }
    }
}

/// The paging parameters every list documents.
pub fn page_params() -> Vec<Param> {
    vec![
        Param::query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
            "How many items to return.",
        ),
        Param::query(
            "cursor",
            json!({"type": "string"}),
            "The `next_cursor` of the previous page, as the API gave it: any other value is refused (400).",
        ),
        Param::query(
            "order",
            json!({"type": "string", "enum": ["desc", "asc"], "default": "desc"}),
            "`desc` lists newest first, `asc` oldest first.",
        ),
    ]
}

/// `{"data": [...], "next_cursor": ...}` around an item schema.
pub fn list_schema(item: Value) -> Value {
    json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page (a filtered page may be short, even empty, and have one)."}
        },
        "required": ["data", "next_cursor"]
    })
}

/// Lists one partition a page at a time, keeping the items `keep` accepts. A filter
/// that rejects everything within the scan budget reads on to the first match or the
/// end (a feed must not skip); see [`crate::listing`] for what a page promises.
pub async fn list_partition(
    call: &Call,
    partition: &str,
    range: SortRange,
    page: PageRequest,
    keep: impl Fn(&Item) -> bool,
) -> Result<Value, ApiError> {
    let source = Source::Items {
        partition: partition.to_owned(),
        range,
    };
    list_page(call, &source, page, WhenNothingFound::ReadOn, |_, item| keep(item)).await
}

/// [`list_partition`] for a list filtered as the client asked: when the scan budget
/// passes without a match, it answers `refusal()` (a 422 naming the filters) rather than
/// read a whole partition in one call.
pub async fn list_partition_filtered(
    call: &Call,
    partition: &str,
    range: SortRange,
    page: PageRequest,
    refusal: &(dyn Fn() -> ApiError + Send + Sync),
    keep: impl Fn(&Item) -> bool,
) -> Result<Value, ApiError> {
    let source = Source::Items {
        partition: partition.to_owned(),
        range,
    };
    list_page(call, &source, page, WhenNothingFound::Refuse(refusal), |_, item| {
        keep(item)
    })
    .await
}

/// `body` (a JSON object as text) with `"version": N` appended, built without decoding the
/// body. `None` when the text is not an object, may already name a `version` (a body never
/// does today) or may hold an internal `_` field: the caller then decodes it and shows it
/// as lists do. Either test can be fooled only by a string value, which costs the decoding.
fn with_version(body: &str, version: u64) -> Option<String> {
    let inner = body.trim().strip_prefix('{')?.strip_suffix('}')?.trim_end();
    if inner.contains("\"version\"") || inner.contains("\"_") {
        return None;
    }
    let mut text = String::with_capacity(inner.len() + 32);
    text.push('{');
    text.push_str(inner);
    if !inner.trim_start().is_empty() {
        text.push(',');
    }
    // Writing to a String cannot fail.
    let _ = write!(text, "\"version\":{version}}}");
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::with_version;
    use serde_json::{Value, json};

    fn parsed(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn version_is_appended_to_an_object_as_stored() {
        let text = with_version(r#"{"id":"con_1","name":"Ada \"}\""}"#, 7).expect("an object");
        assert_eq!(parsed(&text), json!({"id": "con_1", "name": "Ada \"}\"", "version": 7}));
        assert_eq!(
            parsed(&with_version("{}", 1).expect("empty object")),
            json!({"version": 1})
        );
        assert_eq!(
            parsed(&with_version(" { } ", 2).expect("spaces")),
            json!({"version": 2})
        );
        let spaced = with_version("{\n  \"a\": [1, {}]\n}\n", u64::MAX).expect("pretty");
        assert_eq!(parsed(&spaced), json!({"a": [1, {}], "version": u64::MAX}));
    }

    #[test]
    fn anything_else_is_left_to_the_decoding_path() {
        assert_eq!(with_version(r#"{"version":3}"#, 4), None, "would repeat the key");
        assert_eq!(
            with_version(r#"{"label":"version"}"#, 4),
            None,
            "a value that reads like the key"
        );
        assert_eq!(
            with_version(r#"{"_job":"sch_1"}"#, 4),
            None,
            "internal fields are dropped there"
        );
        assert_eq!(with_version("[1]", 4), None);
        assert_eq!(with_version("", 4), None);
    }
}
