//! Declarative CRUD. A [`Resource`] is declared once (fields, filters, scope domain, id
//! prefix, optional parent) and yields its list / create / get / update / replace /
//! delete operations with validation, ETags, events and schemas.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};

use crate::cursor::{self, Position};
use crate::error::{ApiError, FieldErrors};
use crate::events::{event_write, update_event_write};
use crate::fields::{Field, FieldKind, Validated, WriteMode, body_schema, format_datetime, parse_datetime, validate};
use crate::ids::new_id;
use crate::keys::{self, ItemKey};
use crate::operation::{Access, Call, Effect, Operation, Param, Reply, handler};
use crate::schema::Schema;

/// Default and maximum page sizes of every list.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;
/// A filtered list examines at most this many items per request, then hands out a cursor.
pub const MAX_SCANNED_PER_PAGE: usize = 2000;
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
    /// `?q=ada`: case-insensitive substring in any of the fields.
    Search {
        param: &'static str,
        fields: &'static [&'static str],
    },
    /// `?due_before=…`: a date-time field strictly before the value.
    Before { param: &'static str, field: &'static str },
    /// `?due_after=…`: a date-time field strictly after the value.
    After { param: &'static str, field: &'static str },
    /// `?tag=vip`: a tags field contains the value.
    HasTag { param: &'static str, field: &'static str },
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
            | Filter::Before { param, .. }
            | Filter::After { param, .. }
            | Filter::HasTag { param, .. } => param,
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
            Filter::Before { field, .. } => (
                json!({"type": "string", "format": "date-time"}),
                format!("Only items whose {field} is before this time."),
            ),
            Filter::After { field, .. } => (
                json!({"type": "string", "format": "date-time"}),
                format!("Only items whose {field} is after this time."),
            ),
            Filter::HasTag { field, .. } => (
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
            Filter::Before { .. } | Filter::After { .. } => parse_datetime(raw)
                .map(|at| json!(at.timestamp_millis()))
                .ok_or_else(|| "must be an RFC 3339 date-time, like 2026-11-22T17:00:00Z".into()),
            Filter::HasTag { .. } => Ok(Value::String(raw.trim().to_owned())),
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
            Filter::HasTag { field, .. } => item
                .get(*field)
                .and_then(Value::as_array)
                .is_some_and(|tags| tags.iter().any(|tag| tag == wanted)),
            Filter::Custom(custom) => (custom.matches)(item, wanted, now),
        }
    }
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
        let item_schema = Schema::lazy({
            let this = Arc::clone(&this);
            move || this.item_schema()
        });
        let body = |mode: WriteMode| {
            let this = Arc::clone(&this);
            Some(Schema::lazy(move || body_schema(&this.fields, mode)))
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
        vec![
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
        ]
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
        Operation {
            name: format!("{}_{verb}", self.name),
            method,
            params: self.path_params(!matches!(verb, "list" | "create")),
            path,
            access: self.scope(action),
            effect,
            summary,
            body: None,
            response: None,
            success: StatusCode::OK,
            raw_body: false,
            max_body_bytes: None,
            media_types: &[],
            handler: run,
        }
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

    /// [`Resource::render`] for a body the caller owns (a list moves its items in).
    fn view(mut body: Map<String, Value>, version: u64) -> Value {
        body.insert("version".into(), json!(version));
        Value::Object(body)
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
        let listed = list_partition(call, &partition, SortRange::All, page, |item| {
            filters.iter().all(|(f, v)| f.matches(&item.body, v, now))
        })
        .await?;
        Ok(Reply::ok(listed))
    }

    /// Validates a create body into the stored item and the writes that add it.
    pub fn prepare_create(&self, call: &Call, body: &Value) -> Result<(Item, Vec<Write>), FieldErrors> {
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
        Ok((item, writes))
    }

    async fn create(&self, call: &Call) -> Result<Reply, ApiError> {
        let (item, writes) = self.prepare_create(call, &call.body).map_err(ApiError::validation)?;
        let has_parent = self.parent.is_some();
        match call.engine.store().transact(writes).await {
            Ok(()) => Ok(Reply::created(Self::render(&item)).with_etag(item.version)),
            Err(StoreError::TransactionConflict { index: 0 }) if has_parent => {
                let parent = self.parent.map(|p| p.singular).unwrap_or("parent");
                Err(ApiError::not_found(parent, call.path_param("id")?))
            }
            Err(error) => Err(error.into()),
        }
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
                if mode == WriteMode::Replace {
                    body.retain(|name, _| BASE_FIELDS.contains(&name.as_str()));
                }
                for name in &validated.clear {
                    body.remove(*name);
                }
                body.extend(validated.set.clone());
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
    /// the item and its event (a version-history entry, a related item's update).
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
            match call.engine.store().transact(writes).await {
                Ok(()) => return Ok(next),
                Err(StoreError::TransactionConflict { index: 0 }) => {
                    if call.if_match.is_some() {
                        return Err(ApiError::PreconditionFailed(
                            "The item changed since it was read; the If-Match precondition no longer holds.".into(),
                        ));
                    }
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
        let writes = vec![
            Write::delete(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            self.event(call, "deleted", &current)?,
        ];
        match call.engine.store().transact(writes).await {
            Ok(()) => Ok(Reply::no_content()),
            Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::PreconditionFailed(
                "The item changed while it was being deleted; read it again.".into(),
            )),
            Err(error) => Err(error.into()),
        }
    }
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
            "The `next_cursor` of the previous page.",
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
            "next_cursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; null on the last page."}
        },
        "required": ["data", "next_cursor"]
    })
}

/// Lists one partition a page at a time, keeping the items `keep` accepts.
pub async fn list_partition(
    call: &Call,
    partition: &str,
    range: SortRange,
    page: PageRequest,
    keep: impl Fn(&Item) -> bool,
) -> Result<Value, ApiError> {
    let key = call.engine.cursor_key();
    let mut after = match &page.cursor {
        None => page.start_after.clone(),
        Some(text) => {
            let position = cursor::open(key, partition, text)
                .map_err(|e| ApiError::BadRequest(format!("Invalid cursor: {e}.")))?;
            if position.descending != page.descending {
                return Err(ApiError::BadRequest(
                    "Invalid cursor: it was issued for the other `order`.".into(),
                ));
            }
            Some(position.last_sk)
        }
    };
    let mut data = Vec::with_capacity(page.limit);
    let mut scanned = 0usize;
    let mut last_returned: Option<String> = None;
    loop {
        let chunk = (page.limit - data.len()).max(page.limit.min(100)).min(MAX_LIMIT);
        let query = Query::partition(partition)
            .range(range.clone())
            .after(after.clone())
            .limit(chunk)
            .descending(page.descending);
        let result = call.engine.store().query(query).await?;
        let more_in_store = result.last_sk.is_some();
        let last_in_chunk = result.items.last().map(|item| item.sk.clone());
        let mut stopped_early = false;
        // Items are moved into the answer, not cloned: a page is rendered once.
        for item in result.items {
            scanned += 1;
            if keep(&item) {
                data.push(Resource::view(item.body, item.version));
            }
            last_returned = Some(item.sk);
            if data.len() == page.limit || scanned >= MAX_SCANNED_PER_PAGE {
                stopped_early = true;
                break;
            }
        }
        if stopped_early {
            let exhausted = !more_in_store && last_returned == last_in_chunk;
            let next = (!exhausted)
                .then(|| seal(key, partition, last_returned.clone(), page.descending))
                .flatten();
            return Ok(json!({"data": data, "next_cursor": next}));
        }
        match result.last_sk {
            Some(last) => after = Some(last),
            None => return Ok(json!({"data": data, "next_cursor": null})),
        }
    }
}

fn seal(key: &cursor::CursorKey, partition: &str, last_sk: Option<String>, descending: bool) -> Option<String> {
    last_sk.map(|last_sk| cursor::seal(key, partition, &Position { last_sk, descending }))
}

/// `body` (a JSON object as text) with `"version": N` appended, built without decoding the
/// body. `None` when the text is not an object or may already name a `version` (a body
/// never does today; the caller then decodes and overwrites it, as for lists).
fn with_version(body: &str, version: u64) -> Option<String> {
    let inner = body.trim().strip_prefix('{')?.strip_suffix('}')?.trim_end();
    if inner.contains("\"version\"") {
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
        assert_eq!(with_version("[1]", 4), None);
        assert_eq!(with_version("", 4), None);
    }
}
