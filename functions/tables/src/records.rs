//! `/tables/{id}/records`: records as flat objects of column values by column name.
//!
//! Stored as `{"values": {<column id>: value}}` and rendered with the table's current
//! column names, every column present (`null` when empty). Each write is one transaction:
//! the record, its event, a check that the table is still at the version the values were
//! validated against, and a check that every linked record exists.
//!
//! Lists filter with `where[<column>]=<value>` (or `where=<JSON object>`, which is what an
//! MCP client sends) and sort with `sort=<column>` / `sort=-<column>`.

use std::cmp::Ordering;
use std::collections::HashSet;

use futures::future::join_all;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::cursor::{self, Position};
use space_http::events::{event_write, update_event_write};
use space_http::fields::{WriteMode, format_datetime};
use space_http::ids::new_id;
use space_http::listing::SCAN_BUDGET;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{PageRequest, list_partition, list_partition_filtered, list_schema, page_params};
use space_http::{ApiError, FieldErrors, Operation, Schema, keys};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};

use crate::columns::{Column, columns_of, compare, find};
use crate::{RECORD_ID_PREFIX, tables};

/// Serialized bytes of one record's values (a record is one store item).
pub const MAX_RECORD_BYTES: usize = 100 * 1024;
/// A sorted list reads the whole table to order it; beyond this many records it refuses.
pub const MAX_SORTED_RECORDS: usize = 5_000;
const WRITE_RETRIES: usize = 3;
/// Writes of a record's transaction before its relation checks: record, table check, event.
const CHECKS_START: usize = 3;
/// Fields every record has besides its columns; a body may carry them back, they are ignored.
const RECORD_FIELDS: &[&str] = &["id", "table_id", "created_at", "updated_at", "version", "object"];

fn record_schema() -> Value {
    json!({
        "type": "object",
        "description": "A record: `id`, `table_id`, `created_at`, `updated_at`, `version`, and one property per column of the table, by column name (null when empty).",
        "required": ["id", "table_id", "created_at", "updated_at", "version"],
        "properties": {
            "id": {"type": "string", "description": "Starts with `rec_`."},
            "table_id": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer", "minimum": 1}
        },
        "additionalProperties": true
    })
}

fn record_body_schema(mode: WriteMode) -> Value {
    let meaning = match mode {
        WriteMode::Patch => "Only the columns sent change; `null` empties a column.",
        WriteMode::Replace => "Columns left out are emptied.",
        WriteMode::Create => "Columns left out start empty.",
    };
    json!({
        "type": "object",
        "description": format!(
            "The column values by column name, flat, like {{\"budget\": 10, \"channel\": \"linkedin\"}}, checked against the table's columns. {meaning} Values: text and email and url strings, numbers, booleans, dates (`2026-11-22`), date-times (RFC 3339), a select's choice, a list of a multi_select's choices, a linked record's id for relations."
        ),
        "properties": {
            "values": {"type": "object", "description": "The column values by column name, if you cannot send them flat (MCP tools)."}
        },
        "additionalProperties": true
    })
}

pub fn operations() -> Vec<Operation> {
    let read = Access::Space(Scope::new(Domain::Tables, Action::Read));
    let write = Access::Space(Scope::new(Domain::Tables, Action::Write));
    let table = || Param::path("id", "The table's id.");
    let record = || Param::path("record_id", "The record's id.");
    let mut list_params = vec![table()];
    list_params.extend(page_params());
    list_params.extend([
        Param::query(
            "where",
            json!({"type": "string"}),
            "Filters by column value, all of which must match: `where[<column>]=<value>` for each column \
             (`?where[channel]=linkedin&where[budget]=10`), or `where=` a JSON object of column names to values \
             (`where={\"channel\":\"linkedin\"}`). Values compare by the column's type; a multi_select matches when \
             it contains the value.",
        ),
        Param::query(
            "sort",
            json!({"type": "string"}),
            "Orders by a column, or `created_at` / `updated_at`: `sort=budget` ascending, `sort=-budget` descending; \
             empty values come last. Sorting reads the whole table (up to 5000 records); `order` applies only \
             without `sort`.",
        ),
        Param::query(
            "q",
            json!({"type": "string", "maxLength": 200}),
            "Case-insensitive text search in every text, email, url and select value.",
        ),
    ]);
    let single = vec![table(), record()];
    vec![
        Operation::new(
            "tables_records_list",
            Method::GET,
            "/tables/{id}/records",
            read,
            Effect::Read,
            "List a table's records, filtered by column values and sorted by a column",
            handler(|call| async move { list(&call).await }),
        )
        .with_params(list_params)
        .answers(StatusCode::OK, || list_schema(record_schema())),
        Operation::new(
            "tables_records_create",
            Method::POST,
            "/tables/{id}/records",
            write,
            Effect::Create,
            "Add a record to a table",
            handler(|call| async move { create(&call).await }),
        )
        .with_params(vec![table()])
        .with_body(Schema::lazy(|| record_body_schema(WriteMode::Create)).named("RecordCreate"))
        .answers(StatusCode::CREATED, Schema::lazy(record_schema).named("Record")),
        Operation::new(
            "tables_records_get",
            Method::GET,
            "/tables/{id}/records/{record_id}",
            read,
            Effect::Read,
            "Get a record",
            handler(|call| async move {
                let (table, record) = load(&call).await?;
                Ok(Reply::ok(render(&table, &record)).with_etag(record.version))
            }),
        )
        .with_params(single.clone())
        .answers(StatusCode::OK, Schema::lazy(record_schema).named("Record")),
        Operation::new(
            "tables_records_update",
            Method::PATCH,
            "/tables/{id}/records/{record_id}",
            write,
            Effect::Update,
            "Update some column values of a record",
            handler(|call| async move { update(&call, WriteMode::Patch).await }),
        )
        .with_params(single.clone())
        .with_body(Schema::lazy(|| record_body_schema(WriteMode::Patch)).named("RecordUpdate"))
        .answers(StatusCode::OK, Schema::lazy(record_schema).named("Record")),
        Operation::new(
            "tables_records_replace",
            Method::PUT,
            "/tables/{id}/records/{record_id}",
            write,
            Effect::Replace,
            "Replace every column value of a record",
            handler(|call| async move { update(&call, WriteMode::Replace).await }),
        )
        .with_params(single.clone())
        .with_body(Schema::lazy(|| record_body_schema(WriteMode::Replace)).named("RecordReplace"))
        .answers(StatusCode::OK, Schema::lazy(record_schema).named("Record")),
        Operation::new(
            "tables_records_delete",
            Method::DELETE,
            "/tables/{id}/records/{record_id}",
            write,
            Effect::Delete,
            "Delete a record",
            handler(|call| async move { delete(&call).await }),
        )
        .with_params(single)
        .answers_no_content(),
    ]
}

/// A record as the API shows it, from its stored body.
fn render_body(table: &Item, columns: &[Column], id: &str, body: &Map<String, Value>, version: u64) -> Value {
    let values = body.get("values").and_then(Value::as_object);
    let mut record = Map::new();
    record.insert("id".into(), json!(id));
    record.insert("table_id".into(), json!(table.sk));
    for column in columns {
        let value = values
            .and_then(|values| values.get(&column.id))
            .cloned()
            .unwrap_or(Value::Null);
        record.insert(column.name.clone(), value);
    }
    for field in ["created_at", "updated_at"] {
        record.insert(field.into(), body.get(field).cloned().unwrap_or(Value::Null));
    }
    record.insert("version".into(), json!(version));
    Value::Object(record)
}

fn render(table: &Item, record: &Item) -> Value {
    render_body(
        table,
        &columns_of(&table.body),
        &record.sk,
        &record.body,
        record.version,
    )
}

fn partition(call: &Call) -> Result<String, ApiError> {
    Ok(keys::table_records_partition(call.space_id()?, call.path_param("id")?))
}

/// The table and the record the path names; 404 for either.
async fn load(call: &Call) -> Result<(Item, Item), ApiError> {
    let record_id = call.path_param("record_id")?;
    let partition = partition(call)?;
    let resource = tables();
    let (table, record) = tokio::join!(
        resource.load(call, call.path_param("id")?),
        call.engine.store().get(&partition, record_id)
    );
    let table = table?;
    let record = record?.ok_or_else(|| ApiError::not_found("record", record_id))?;
    Ok((table, record))
}

/// A relation value to check: the column it was sent for, and where the record lives.
struct Link {
    column: String,
    record_id: String,
    pk: String,
}

/// A record body checked against the table's columns.
#[derive(Default)]
struct RecordInput {
    set: Map<String, Value>,
    clear: Vec<String>,
    links: Vec<Link>,
}

/// Reads a record body: flat column values (or under `values`), by column name or id.
fn read_record(call: &Call, columns: &[Column], body: &Value) -> Result<RecordInput, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "body",
            "must be a JSON object of column values",
        ));
    };
    let mut entries: Vec<(&String, &Value)> = object.iter().filter(|(name, _)| name.as_str() != "values").collect();
    match object.get("values") {
        Some(Value::Object(values)) => entries.extend(values.iter()),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "values",
                "must be an object of column values by column name",
            ));
        }
        None => {}
    }
    let space = call.space_id()?;
    let mut input = RecordInput::default();
    let mut errors = FieldErrors::new();
    for (name, value) in entries {
        if RECORD_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let Some(column) = find(columns, name) else {
            let message = if columns.is_empty() {
                "is not a column of this table, which has no columns yet; add some with POST /tables/{id}/columns"
                    .to_owned()
            } else {
                let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
                format!("is not a column of this table; its columns: {}", names.join(", "))
            };
            errors.insert(name.clone(), vec![message]);
            continue;
        };
        if value.is_null() {
            input.clear.push(column.id.clone());
            continue;
        }
        match column.check(value) {
            Ok(normalized) => {
                if let (Some(target), Some(record_id)) = (&column.table_id, normalized.as_str()) {
                    input.links.push(Link {
                        column: name.clone(),
                        record_id: record_id.to_owned(),
                        pk: keys::table_records_partition(space, target),
                    });
                }
                input.set.insert(column.id.clone(), normalized);
            }
            Err(message) => {
                errors.insert(name.clone(), vec![message]);
            }
        }
    }
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Reads every linked record, so that one 422 names every missing one.
async fn check_links(call: &Call, links: &[Link]) -> Result<(), ApiError> {
    let reads = join_all(
        links
            .iter()
            .map(|link| call.engine.store().get(&link.pk, &link.record_id)),
    )
    .await;
    let mut errors = FieldErrors::new();
    for (link, read) in links.iter().zip(reads) {
        if read?.is_none() {
            errors.insert(link.column.clone(), vec![missing_link(link)]);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

fn missing_link(link: &Link) -> String {
    format!("there is no record `{}` in the linked table", link.record_id)
}

/// The transaction's checks of linked records (each record once, never the record written).
fn link_checks<'a>(links: &'a [Link], own: (&str, &str)) -> (Vec<Write>, Vec<&'a Link>) {
    let mut seen = HashSet::new();
    let mut writes = Vec::new();
    let mut checked = Vec::new();
    for link in links {
        if (link.pk.as_str(), link.record_id.as_str()) == own || !seen.insert((link.pk.clone(), link.record_id.clone()))
        {
            continue;
        }
        writes.push(Write::check(link.pk.clone(), link.record_id.clone(), Condition::Exists));
        checked.push(link);
    }
    (writes, checked)
}

fn check_size(values: &Map<String, Value>) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(values).map_or(usize::MAX, |json| json.len());
    if bytes > MAX_RECORD_BYTES {
        return Err(ApiError::invalid_field(
            "body",
            format!("a record's values may take at most {MAX_RECORD_BYTES} bytes of JSON (got {bytes})"),
        ));
    }
    Ok(())
}

fn event(call: &Call, verb: &str, id: &str, data: Value) -> Result<Write, ApiError> {
    Ok(event_write(
        call.space_id()?,
        &format!("table.record.{verb}"),
        id,
        data,
        &call.principal,
        call.engine.now(),
    ))
}

/// A record's `updated` event, with the fields that changed as they were.
fn update_event(call: &Call, id: &str, before: &Value, after: Value) -> Result<Write, ApiError> {
    Ok(update_event_write(
        call.space_id()?,
        "table.record.updated",
        id,
        before,
        after,
        &call.principal,
        call.engine.now(),
    ))
}

fn kept_changing() -> ApiError {
    ApiError::Conflict("The table kept changing while the record was written; retry.".into())
}

/// What a failed record transaction means: `Ok(())` to try again with fresh reads.
fn conflict(error: StoreError, checked: &[&Link], if_match: bool) -> Result<(), ApiError> {
    match error {
        StoreError::TransactionConflict { index: 0 } if if_match => Err(ApiError::PreconditionFailed(
            "The record changed since it was read; the If-Match precondition no longer holds.".into(),
        )),
        StoreError::TransactionConflict { index } if index >= CHECKS_START => match checked.get(index - CHECKS_START) {
            Some(link) => Err(ApiError::invalid_field(&link.column, missing_link(link))),
            None => Ok(()),
        },
        StoreError::TransactionConflict { .. } | StoreError::Contention => Ok(()),
        other => Err(other.into()),
    }
}

async fn create(call: &Call) -> Result<Reply, ApiError> {
    let table_id = call.path_param("id")?;
    let partition = partition(call)?;
    for _ in 0..WRITE_RETRIES {
        let table = tables().load(call, table_id).await?;
        let columns = columns_of(&table.body);
        let input = read_record(call, &columns, &call.body)?;
        check_size(&input.set)?;
        check_links(call, &input.links).await?;
        let id = new_id(RECORD_ID_PREFIX);
        let now = json!(format_datetime(call.engine.now()));
        let mut body = Map::new();
        body.insert("id".into(), json!(id));
        body.insert("values".into(), Value::Object(input.set));
        body.insert("created_at".into(), now.clone());
        body.insert("updated_at".into(), now);
        let item = Item::new(partition.clone(), id.clone(), body);
        let rendered = render_body(&table, &columns, &id, &item.body, item.version);
        let (checks, checked) = link_checks(&input.links, (&partition, &id));
        let mut writes = vec![
            Write::put(item.clone(), Condition::NotExists),
            Write::check(table.pk.clone(), table.sk.clone(), Condition::Version(table.version)),
            event(call, "created", &id, rendered.clone())?,
        ];
        writes.extend(checks);
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::created(rendered).with_etag(item.version)),
            Err(error) => conflict(error, &checked, false)?,
        }
    }
    Err(kept_changing())
}

async fn update(call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
    for _ in 0..WRITE_RETRIES {
        let (table, record) = load(call).await?;
        call.check_if_match(record.version)?;
        let columns = columns_of(&table.body);
        let input = read_record(call, &columns, &call.body)?;
        let mut values = match mode {
            WriteMode::Patch => record
                .body
                .get("values")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            WriteMode::Replace | WriteMode::Create => Map::new(),
        };
        for id in &input.clear {
            values.remove(id);
        }
        values.extend(input.set);
        // Values of removed columns go with the first write after the removal.
        values.retain(|id, _| columns.iter().any(|column| &column.id == id));
        check_size(&values)?;
        check_links(call, &input.links).await?;
        let mut next = record.clone();
        next.version = record.version + 1;
        next.body.insert("values".into(), Value::Object(values));
        next.body
            .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
        let rendered = render_body(&table, &columns, &next.sk, &next.body, next.version);
        let (checks, checked) = link_checks(&input.links, (&record.pk, &record.sk));
        let mut writes = vec![
            Write::put(next.clone(), Condition::Version(record.version)),
            Write::check(table.pk.clone(), table.sk.clone(), Condition::Version(table.version)),
            update_event(
                call,
                &next.sk,
                &render_body(&table, &columns, &record.sk, &record.body, record.version),
                rendered.clone(),
            )?,
        ];
        writes.extend(checks);
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::ok(rendered).with_etag(next.version)),
            Err(error) => conflict(error, &checked, call.if_match.is_some())?,
        }
    }
    Err(kept_changing())
}

async fn delete(call: &Call) -> Result<Reply, ApiError> {
    let (table, record) = load(call).await?;
    call.check_if_match(record.version)?;
    let writes = vec![
        Write::delete(record.pk.clone(), record.sk.clone(), Condition::Version(record.version)),
        event(call, "deleted", &record.sk, render(&table, &record))?,
    ];
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(Reply::no_content()),
        Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::PreconditionFailed(
            "The record changed while it was being deleted; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// `where` filters: the column and the parsed value to compare with.
fn read_filters(call: &Call, columns: &[Column], errors: &mut FieldErrors) -> Vec<(Column, Value)> {
    let mut wanted: Vec<(String, String, String)> = Vec::new();
    for (key, raw) in &call.query {
        if let Some(name) = key.strip_prefix("where[").and_then(|rest| rest.strip_suffix(']')) {
            wanted.push((key.clone(), name.to_owned(), raw.clone()));
        } else if key == "where" {
            match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(object)) => {
                    for (name, value) in object {
                        let text = match value {
                            Value::String(text) => text,
                            Value::Number(_) | Value::Bool(_) => value.to_string(),
                            _ => {
                                errors.insert(
                                    format!("where[{name}]"),
                                    vec!["must be a string, number or boolean".into()],
                                );
                                continue;
                            }
                        };
                        wanted.push((format!("where[{name}]"), name, text));
                    }
                }
                _ => {
                    errors.insert(
                        "where".into(),
                        vec!["use where[<column>]=<value>, or where=<JSON object>, like where={\"channel\":\"linkedin\"}".into()],
                    );
                }
            }
        }
    }
    let mut filters = Vec::with_capacity(wanted.len());
    for (key, name, raw) in wanted {
        let Some(column) = find(columns, &name) else {
            errors.insert(key, vec![format!("the table has no column `{name}`")]);
            continue;
        };
        match column.parse_filter(&raw) {
            Ok(value) => filters.push((column.clone(), value)),
            Err(message) => {
                errors.insert(key, vec![message]);
            }
        }
    }
    filters
}

/// What `sort` orders by.
enum SortBy {
    Column(String),
    Field(&'static str),
}

struct Sort {
    by: SortBy,
    descending: bool,
    /// The parameter as sent: cursors are bound to it.
    spec: String,
}

impl Sort {
    fn value(&self, body: &Map<String, Value>) -> Value {
        match &self.by {
            SortBy::Column(id) => body
                .get("values")
                .and_then(|values| values.get(id))
                .cloned()
                .unwrap_or(Value::Null),
            SortBy::Field(field) => body.get(*field).cloned().unwrap_or(Value::Null),
        }
    }

    /// Present values first in the chosen direction, empty ones last, ties by id.
    fn order(&self, a: &(Value, String), b: &(Value, String)) -> Ordering {
        let directed = |order: Ordering| if self.descending { order.reverse() } else { order };
        match (a.0.is_null(), b.0.is_null()) {
            (false, false) => directed(compare(&a.0, &b.0).then_with(|| a.1.cmp(&b.1))),
            (false, true) => Ordering::Less,
            (true, false) => Ordering::Greater,
            (true, true) => directed(a.1.cmp(&b.1)),
        }
    }
}

fn read_sort(call: &Call, columns: &[Column], errors: &mut FieldErrors) -> Option<Sort> {
    let spec = call.query_param("sort")?;
    let (descending, name) = match spec.strip_prefix('-') {
        Some(name) => (true, name),
        None => (false, spec),
    };
    let by = match name {
        "created_at" => SortBy::Field("created_at"),
        "updated_at" => SortBy::Field("updated_at"),
        _ => match find(columns, name) {
            Some(column) => SortBy::Column(column.id.clone()),
            None => {
                errors.insert(
                    "sort".into(),
                    vec![format!(
                        "the table has no column `{name}`; use sort=<column> or sort=-<column>"
                    )],
                );
                return None;
            }
        },
    };
    Some(Sort {
        by,
        descending,
        spec: spec.to_owned(),
    })
}

fn searchable(value: &Value, needle: &str) -> bool {
    match value {
        Value::String(text) => text.to_lowercase().contains(needle),
        Value::Array(items) => items.iter().any(|item| searchable(item, needle)),
        _ => false,
    }
}

async fn list(call: &Call) -> Result<Reply, ApiError> {
    let table = tables().load(call, call.path_param("id")?).await?;
    let columns = columns_of(&table.body);
    let mut errors = FieldErrors::new();
    let filters = read_filters(call, &columns, &mut errors);
    let sort = read_sort(call, &columns, &mut errors);
    let search = match call.query_param("q") {
        Some(q) if q.chars().count() > 200 => {
            errors.insert("q".into(), vec!["must be at most 200 characters".into()]);
            None
        }
        q => q.map(str::to_lowercase),
    };
    let page = PageRequest::from_call(call, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let text_columns: Vec<&str> = columns
        .iter()
        .filter(|column| {
            use crate::ColumnType::*;
            matches!(column.kind, Text | Email | Url | Select | MultiSelect)
        })
        .map(|column| column.id.as_str())
        .collect();
    let keep = |body: &Map<String, Value>| {
        let values = body.get("values").and_then(Value::as_object);
        let value = |id: &str| values.and_then(|values| values.get(id));
        filters
            .iter()
            .all(|(column, wanted)| column.matches(value(&column.id), wanted))
            && search.as_deref().is_none_or(|needle| {
                text_columns
                    .iter()
                    .any(|id| value(id).is_some_and(|value| searchable(value, needle)))
            })
    };
    let partition = partition(call)?;
    let mut listed = match &sort {
        None if filters.is_empty() && search.is_none() => {
            list_partition(call, &partition, SortRange::All, page, |item| keep(&item.body)).await?
        }
        None => {
            let refusal = || {
                let param = if search.is_some() { "q" } else { "where" };
                ApiError::invalid_field(
                    param,
                    format!(
                        "no record among the {SCAN_BUDGET} read from this position matched; filters read the \
                         table in order: narrow them to find the rest"
                    ),
                )
            };
            list_partition_filtered(call, &partition, SortRange::All, page, &refusal, |item| {
                keep(&item.body)
            })
            .await?
        }
        Some(sort) => sorted(call, &partition, sort, page, |body| keep(body)).await?,
    };
    if let Some(records) = listed.get_mut("data").and_then(Value::as_array_mut) {
        for record in records.iter_mut() {
            if let Some(body) = record.as_object() {
                let id = body.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
                let version = body.get("version").and_then(Value::as_u64).unwrap_or(1);
                *record = render_body(&table, &columns, &id, body, version);
            }
        }
    }
    Ok(Reply::ok(listed))
}

/// A page of the table ordered by `sort`: reads every record, orders them, and resumes
/// after the (value, id) a cursor carries.
async fn sorted(
    call: &Call,
    partition: &str,
    sort: &Sort,
    page: PageRequest,
    keep: impl Fn(&Map<String, Value>) -> bool,
) -> Result<Value, ApiError> {
    let binding = format!("{partition}?sort={}", sort.spec);
    let after: Option<(Value, String)> = match &page.cursor {
        None => None,
        Some(text) => {
            let position = cursor::open(call.engine.cursor_key(), &binding, text)
                .map_err(|error| ApiError::BadRequest(format!("Invalid cursor: {error}.")))?;
            let key: (Value, String) = serde_json::from_str(&position.last_sk)
                .map_err(|_| ApiError::BadRequest("Invalid cursor: it does not belong to a sorted list.".into()))?;
            Some(key)
        }
    };
    let mut items = Vec::new();
    let mut from = None;
    loop {
        let result = call
            .engine
            .store()
            .query(Query::partition(partition).after(from).limit(500))
            .await?;
        items.extend(result.items);
        if items.len() > MAX_SORTED_RECORDS {
            return Err(ApiError::invalid_field(
                "sort",
                format!(
                    "sorting reads the whole table and works up to {MAX_SORTED_RECORDS} records; list without sort"
                ),
            ));
        }
        match result.last_sk {
            Some(last) => from = Some(last),
            None => break,
        }
    }
    let mut keyed: Vec<((Value, String), Item)> = items
        .into_iter()
        .filter(|item| keep(&item.body))
        .map(|item| ((sort.value(&item.body), item.sk.clone()), item))
        .filter(|(key, _)| {
            after
                .as_ref()
                .is_none_or(|after| sort.order(key, after) == Ordering::Greater)
        })
        .collect();
    keyed.sort_by(|(a, _), (b, _)| sort.order(a, b));
    let more = keyed.len() > page.limit;
    keyed.truncate(page.limit);
    let next_cursor = match keyed.last() {
        Some((key, _)) if more => {
            let last_sk = serde_json::to_string(key).map_err(|error| ApiError::Internal(error.to_string()))?;
            Some(cursor::seal(
                call.engine.cursor_key(),
                &binding,
                &Position {
                    last_sk,
                    descending: sort.descending,
                },
            ))
        }
        _ => None,
    };
    let data: Vec<Value> = keyed
        .iter()
        .map(|(_, item)| space_http::resource::Resource::render(item))
        .collect();
    Ok(json!({"data": data, "next_cursor": next_cursor}))
}
