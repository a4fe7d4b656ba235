//! Writing a table's definition: create, update, replace and delete, and the column
//! routes. Every write goes through [`plan`], which checks the columns against the
//! table's current ones and against the tables its relations link to, and returns the
//! table's next item with every write that must land with it: its event, and the
//! `referenced_by` lists of linked tables whose links changed (each with its own event).
//! All of it is one transaction, conditional on the version of every table it read.

use std::collections::{BTreeSet, HashMap};

use futures::future::join_all;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{Validated, WriteMode, format_datetime, validate};
use space_http::ids::new_id;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::Resource;
use space_http::{ApiError, FieldErrors, Operation, Schema, keys};
use space_store::{Condition, Item, Query, StoreError, Write};

use crate::columns::{self, Column, ColumnInput, ColumnType, columns_of};
use crate::{column_input_schema, table_schema, tables};

/// Attempts of a write that lost a race with another writer of one of its tables.
const WRITE_RETRIES: usize = 3;
/// Relation columns (of all tables) that may link to one table.
pub const MAX_INCOMING: usize = 100;
/// Store writes per transaction when a deleted table's records are removed.
const PURGE_BATCH: usize = 100;

fn write_access() -> Access {
    Access::Space(Scope::new(Domain::Tables, Action::Write))
}

/// The body schema of a table write.
fn body_schema(mode: WriteMode) -> Value {
    let columns = json!({
        "type": "array",
        "items": column_input_schema(),
        "maxItems": columns::MAX_COLUMNS,
        "description": "The table's columns, in order. On an update this is the whole list: entries with an `id` keep (and may rename or re-option) that column, entries without one add a column, and columns left out are removed."
    });
    let mut schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 200, "description": "The table's name."},
            "description": {"type": "string", "maxLength": 5000, "description": "What the table is for."},
            "columns": columns
        },
        "additionalProperties": false
    });
    match mode {
        WriteMode::Create => schema["required"] = json!(["name"]),
        WriteMode::Replace => schema["required"] = json!(["name", "columns"]),
        WriteMode::Patch => {
            schema["properties"]["description"] = json!({"type": ["string", "null"], "maxLength": 5000});
        }
    }
    schema
}

/// Swaps the generated writes of the table resource for ones that handle columns.
pub fn customize(operations: &mut [Operation]) {
    for operation in operations {
        match operation.name.as_str() {
            "tables_create" => {
                operation.body = Some(Schema::lazy(|| body_schema(WriteMode::Create)).named("TableCreate"));
                operation.summary = "Create a table with its columns".into();
                operation.handler = handler(|call| async move { create(&call).await });
            }
            "tables_update" => {
                operation.body = Some(Schema::lazy(|| body_schema(WriteMode::Patch)).named("TableUpdate"));
                operation.summary =
                    "Update a table: its name, description, or its whole column list (columns matched by id)".into();
                operation.handler = handler(|call| async move { write(&call, WriteMode::Patch).await });
            }
            "tables_replace" => {
                operation.body = Some(Schema::lazy(|| body_schema(WriteMode::Replace)).named("TableReplace"));
                operation.summary = "Replace a table's definition (columns matched by id)".into();
                operation.handler = handler(|call| async move { write(&call, WriteMode::Replace).await });
            }
            "tables_delete" => {
                operation.summary =
                    "Delete a table and its records (409 while another table's relation links to it)".into();
                operation.handler = handler(|call| async move { delete(&call).await });
            }
            _ => {}
        }
    }
}

/// `POST /tables/{id}/columns`, `PATCH` and `DELETE /tables/{id}/columns/{column}`.
pub fn column_operations() -> Vec<Operation> {
    let table = || Param::path("id", "The table's id.");
    let column = || Param::path("column", "The column's name or id.");
    let change_body = || {
        let mut schema = column_input_schema();
        if let Some(properties) = schema["properties"].as_object_mut() {
            properties.remove("id");
        }
        schema
    };
    let add_body = move || {
        let mut schema = change_body();
        schema["required"] = json!(["name", "type"]);
        schema
    };
    vec![
        Operation::new(
            "tables_columns_add",
            Method::POST,
            "/tables/{id}/columns",
            write_access(),
            Effect::Update,
            "Add a column to a table (existing records are unchanged; the new column starts empty)",
            handler(|call| async move { add_column(&call).await }),
        )
        .with_params(vec![table()])
        .with_body(add_body)
        .answers(StatusCode::CREATED, Schema::lazy(table_schema).named("Table")),
        Operation::new(
            "tables_columns_update",
            Method::PATCH,
            "/tables/{id}/columns/{column}",
            write_access(),
            Effect::Update,
            "Rename a column or change its options or display column (values are kept)",
            handler(|call| async move { change_column(&call).await }),
        )
        .with_params(vec![table(), column()])
        .with_body(change_body)
        .answers(StatusCode::OK, Schema::lazy(table_schema).named("Table")),
        Operation::new(
            "tables_columns_delete",
            Method::DELETE,
            "/tables/{id}/columns/{column}",
            write_access(),
            Effect::Delete,
            "Remove a column (other columns' values are kept; 409 while a relation names it as display column)",
            handler(|call| async move { remove_column(&call).await }),
        )
        .with_params(vec![table(), column()])
        .answers_no_content(),
    ]
}

/// Reads a table body: its fields and, if sent, its column entries.
fn read_body(body: &Value, mode: WriteMode) -> Result<(Validated, Option<Vec<ColumnInput>>), ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    let mut rest = object.clone();
    let sent_columns = rest.remove("columns");
    // Server-managed; a table read and sent back carries it.
    rest.remove("referenced_by");
    let mut errors = FieldErrors::new();
    let validated = validate(&tables().fields, &Value::Object(rest), mode).unwrap_or_else(|field_errors| {
        errors.extend(field_errors);
        Validated::default()
    });
    let inputs = match sent_columns {
        None if mode == WriteMode::Replace => {
            errors.insert("columns".into(), vec!["The columns field is required.".into()]);
            None
        }
        None if mode == WriteMode::Create => Some(Vec::new()),
        None => None,
        Some(Value::Array(entries)) => Some(
            entries
                .iter()
                .enumerate()
                .map(|(index, entry)| columns::parse_input(entry, &format!("columns[{index}]."), &mut errors))
                .collect(),
        ),
        Some(_) => {
            errors.insert(
                "columns".into(),
                vec!["must be a list of columns; send [] for none".into()],
            );
            None
        }
    };
    if errors.is_empty() {
        Ok((validated, inputs))
    } else {
        Err(ApiError::validation(errors))
    }
}

async fn create(call: &Call) -> Result<Reply, ApiError> {
    let (validated, inputs) = read_body(&call.body, WriteMode::Create)?;
    let id = new_id(crate::TABLE_ID_PREFIX);
    let now = format_datetime(call.engine.now());
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.extend(validated.set);
    body.insert("created_at".into(), json!(now));
    let inputs = inputs.unwrap_or_default();
    for _ in 0..WRITE_RETRIES {
        let (item, writes) = plan(call, &id, None, body.clone(), &inputs).await?;
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::created(Resource::render(&item)).with_etag(item.version)),
            // A linked table changed between our read and our write: read it again.
            Err(StoreError::TransactionConflict { .. } | StoreError::Contention) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(kept_changing())
}

fn kept_changing() -> ApiError {
    ApiError::Conflict("The table or a table it links to kept changing while we wrote it; retry.".into())
}

async fn write(call: &Call, mode: WriteMode) -> Result<Reply, ApiError> {
    let (validated, inputs) = read_body(&call.body, mode)?;
    let id = call.path_param("id")?.to_owned();
    let table = change(call, &id, |current| {
        let mut body = current.body.clone();
        if mode == WriteMode::Replace {
            body.retain(|name, _| matches!(name.as_str(), "id" | "created_at"));
        }
        for name in &validated.clear {
            body.remove(*name);
        }
        body.extend(validated.set.clone());
        let inputs = match &inputs {
            Some(inputs) => inputs.clone(),
            None => columns_of(&current.body).iter().map(ColumnInput::keep).collect(),
        };
        Ok((body, inputs))
    })
    .await?;
    Ok(Reply::ok(Resource::render(&table)).with_etag(table.version))
}

fn no_column(reference: &str) -> ApiError {
    ApiError::NotFound(format!("No column `{reference}` in this table."))
}

async fn add_column(call: &Call) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::new();
    let mut input = columns::parse_input(&call.body, "", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    input.id = None;
    let id = call.path_param("id")?.to_owned();
    let table = change(call, &id, |current| {
        let mut inputs: Vec<ColumnInput> = columns_of(&current.body).iter().map(ColumnInput::keep).collect();
        inputs.push(input.clone());
        Ok((current.body.clone(), inputs))
    })
    .await?;
    Ok(Reply::created(Resource::render(&table)).with_etag(table.version))
}

async fn change_column(call: &Call) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::new();
    let input = columns::parse_input(&call.body, "", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let id = call.path_param("id")?.to_owned();
    let reference = call.path_param("column")?.to_owned();
    let table = change(call, &id, |current| {
        let existing = columns_of(&current.body);
        let target = columns::find(&existing, &reference)
            .ok_or_else(|| no_column(&reference))?
            .id
            .clone();
        let inputs = existing
            .iter()
            .map(|column| {
                if column.id == target {
                    ColumnInput {
                        id: Some(target.clone()),
                        ..input.clone()
                    }
                } else {
                    ColumnInput::keep(column)
                }
            })
            .collect();
        Ok((current.body.clone(), inputs))
    })
    .await?;
    Ok(Reply::ok(Resource::render(&table)).with_etag(table.version))
}

async fn remove_column(call: &Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    let reference = call.path_param("column")?.to_owned();
    change(call, &id, |current| {
        let existing = columns_of(&current.body);
        let target = columns::find(&existing, &reference)
            .ok_or_else(|| no_column(&reference))?
            .id
            .clone();
        let inputs = existing
            .iter()
            .filter(|column| column.id != target)
            .map(ColumnInput::keep)
            .collect();
        Ok((current.body.clone(), inputs))
    })
    .await?;
    Ok(Reply::no_content())
}

/// Read-modify-write of one table: `edit` gives the next body and column entries from the
/// current item; honours `If-Match` and retries races without it.
async fn change<F>(call: &Call, id: &str, edit: F) -> Result<Item, ApiError>
where
    F: Fn(&Item) -> Result<(Map<String, Value>, Vec<ColumnInput>), ApiError>,
{
    for _ in 0..WRITE_RETRIES {
        let current = tables().load(call, id).await?;
        call.check_if_match(current.version)?;
        let (body, inputs) = edit(&current)?;
        let (next, writes) = plan(call, id, Some(&current), body, &inputs).await?;
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(next),
            Err(StoreError::TransactionConflict { index: 0 }) if call.if_match.is_some() => {
                return Err(ApiError::PreconditionFailed(
                    "The table changed since it was read; the If-Match precondition no longer holds.".into(),
                ));
            }
            Err(StoreError::TransactionConflict { .. } | StoreError::Contention) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(kept_changing())
}

/// The `referenced_by` entries of a stored table.
fn references_of(table: &Map<String, Value>) -> Vec<Value> {
    table
        .get("referenced_by")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn reference_source(entry: &Value) -> &str {
    entry.get("table_id").and_then(Value::as_str).unwrap_or_default()
}

/// What `table_id`'s relation columns contribute to the `referenced_by` of `target`.
fn references_from(table_id: &str, columns: &[Column], target: &str) -> Vec<Value> {
    columns
        .iter()
        .filter(|column| column.kind == ColumnType::Relation && column.table_id.as_deref() == Some(target))
        .map(|column| {
            let mut entry = json!({"table_id": table_id, "column_id": column.id});
            if let Some(display) = &column.display_column {
                entry["display_column"] = json!(display);
            }
            entry
        })
        .collect()
}

/// `current` with `table_id`'s entries replaced by `entries`, in a stable order.
fn with_references(current: &[Value], table_id: &str, entries: Vec<Value>) -> Vec<Value> {
    let mut next: Vec<Value> = current
        .iter()
        .filter(|entry| reference_source(entry) != table_id)
        .cloned()
        .collect();
    next.extend(entries);
    next.sort_by_key(|entry| {
        (
            reference_source(entry).to_owned(),
            entry["column_id"].as_str().unwrap_or_default().to_owned(),
        )
    });
    next
}

/// The linked tables of this Space with these ids (missing ones are absent).
async fn load_tables(call: &Call, ids: &BTreeSet<String>) -> Result<HashMap<String, Item>, ApiError> {
    let partition = keys::collection_partition(call.space_id()?, "tables");
    let reads = join_all(ids.iter().map(|id| call.engine.store().get(&partition, id))).await;
    let mut loaded = HashMap::new();
    for read in reads {
        if let Some(item) = read? {
            loaded.insert(item.sk.clone(), item);
        }
    }
    Ok(loaded)
}

/// `item` with new references, one version on, with its `updated` event.
fn relink(call: &Call, item: &Item, references: Vec<Value>) -> Result<[Write; 2], ApiError> {
    let mut next = item.clone();
    next.version = item.version + 1;
    next.body.insert("referenced_by".into(), Value::Array(references));
    next.body
        .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
    Ok([
        Write::put(next.clone(), Condition::Version(item.version)),
        tables().update_event(call, item, &next)?,
    ])
}

/// The table's next item and every write that must land with it.
async fn plan(
    call: &Call,
    table_id: &str,
    current: Option<&Item>,
    mut body: Map<String, Value>,
    inputs: &[ColumnInput],
) -> Result<(Item, Vec<Write>), ApiError> {
    let existing = current.map(|item| columns_of(&item.body)).unwrap_or_default();
    let mut errors = FieldErrors::new();
    let drafts = columns::resolve(inputs, &existing, current.is_none(), &mut errors);
    let linked = |columns: &mut dyn Iterator<Item = &Column>| -> BTreeSet<String> {
        columns
            .filter_map(|column| column.table_id.clone())
            .filter(|target| target != table_id)
            .collect()
    };
    let mut others = linked(&mut existing.iter());
    others.extend(linked(&mut drafts.iter().map(|draft| &draft.column)));
    let loaded = load_tables(call, &others).await?;

    // Relations: the linked table must exist; the display column is resolved to its id.
    let draft_columns: Vec<Column> = drafts.iter().map(|draft| draft.column.clone()).collect();
    let mut columns = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let mut column = draft.column;
        if let Some(target) = column.table_id.clone() {
            let target_columns = if target == table_id {
                // A self-relation may still name a column this write removes: that is the
                // 409 below, not an unknown column.
                let mut own = draft_columns.clone();
                own.extend(
                    existing
                        .iter()
                        .filter(|old| !draft_columns.iter().any(|new| new.id == old.id))
                        .cloned(),
                );
                Some(own)
            } else {
                loaded.get(&target).map(|item| columns_of(&item.body))
            };
            match target_columns {
                None => {
                    errors
                        .entry(format!("{}table_id", draft.label))
                        .or_default()
                        .push(format!("there is no table `{target}` in this Space"));
                }
                Some(target_columns) => {
                    if let Some(reference) = &draft.display_reference {
                        match columns::find(&target_columns, reference) {
                            Some(display) => column.display_column = Some(display.id.clone()),
                            None => errors
                                .entry(format!("{}display_column", draft.label))
                                .or_default()
                                .push(format!("the linked table has no column `{reference}`")),
                        }
                    }
                }
            }
        }
        columns.push(column);
    }

    // Linked tables whose list of incoming relations changes.
    let mut writes = Vec::new();
    for (target, item) in &loaded {
        let current_references = references_of(&item.body);
        let next_references = with_references(
            &current_references,
            table_id,
            references_from(table_id, &columns, target),
        );
        if next_references.len() > MAX_INCOMING && next_references.len() > current_references.len() {
            errors.entry("columns".into()).or_default().push(format!(
                "table `{target}` already has {MAX_INCOMING} relation columns linking to it"
            ));
        }
        if next_references != current_references {
            writes.extend(relink(call, item, next_references)?);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }

    // This table's own incoming relations: its self-relations change with its columns.
    let own_references = current.map(|item| references_of(&item.body)).unwrap_or_default();
    let own_references = with_references(&own_references, table_id, references_from(table_id, &columns, table_id));
    let removed: Vec<&Column> = existing
        .iter()
        .filter(|old| !columns.iter().any(|new| new.id == old.id))
        .collect();
    for entry in &own_references {
        let named = entry.get("display_column").and_then(Value::as_str);
        if let Some(column) = removed.iter().find(|column| Some(column.id.as_str()) == named) {
            return Err(ApiError::Conflict(format!(
                "Column `{}` is the display column of {}; change that relation's display_column or remove it first.",
                column.name,
                describe_reference(call, table_id, &columns, entry).await
            )));
        }
    }

    let now = json!(format_datetime(call.engine.now()));
    body.insert(
        "columns".into(),
        Value::Array(columns.iter().map(Column::to_json).collect()),
    );
    body.insert("referenced_by".into(), Value::Array(own_references));
    body.insert("updated_at".into(), now);
    let (item, condition, verb) = match current {
        Some(current) => (
            Item {
                body,
                version: current.version + 1,
                ..current.clone()
            },
            Condition::Version(current.version),
            "updated",
        ),
        None => {
            let partition = keys::collection_partition(call.space_id()?, "tables");
            (Item::new(partition, table_id, body), Condition::NotExists, "created")
        }
    };
    let mut all = vec![Write::put(item.clone(), condition), tables().event(call, verb, &item)?];
    all.extend(writes);
    Ok((item, all))
}

/// "the relation `Campaign` of table `Posts` (tbl_…)", as well as can be told.
async fn describe_reference(call: &Call, table_id: &str, own_columns: &[Column], entry: &Value) -> String {
    let source = reference_source(entry);
    let column_id = entry.get("column_id").and_then(Value::as_str).unwrap_or_default();
    if source == table_id {
        let name = own_columns
            .iter()
            .find(|column| column.id == column_id)
            .map_or(column_id, |c| c.name.as_str());
        return format!("this table's relation column `{name}`");
    }
    let loaded = load_tables(call, &BTreeSet::from([source.to_owned()]))
        .await
        .unwrap_or_default();
    match loaded.get(source) {
        Some(table) => {
            let columns = columns_of(&table.body);
            let name = columns
                .iter()
                .find(|column| column.id == column_id)
                .map_or(column_id, |c| c.name.as_str());
            let table_name = table.body.get("name").and_then(Value::as_str).unwrap_or(source);
            format!("the relation column `{name}` of table `{table_name}` ({source})")
        }
        None => format!("the relation column `{column_id}` of table `{source}`"),
    }
}

async fn delete(call: &Call) -> Result<Reply, ApiError> {
    let id = call.path_param("id")?.to_owned();
    for _ in 0..WRITE_RETRIES {
        let current = tables().load(call, &id).await?;
        call.check_if_match(current.version)?;
        let columns = columns_of(&current.body);
        if let Some(entry) = references_of(&current.body)
            .iter()
            .find(|entry| reference_source(entry) != id)
        {
            return Err(ApiError::Conflict(format!(
                "The table is linked to by {}; remove that relation column first.",
                describe_reference(call, &id, &columns, entry).await
            )));
        }
        let targets: BTreeSet<String> = columns
            .iter()
            .filter_map(|column| column.table_id.clone())
            .filter(|target| *target != id)
            .collect();
        let mut writes = vec![
            Write::delete(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            tables().event(call, "deleted", &current)?,
        ];
        for item in load_tables(call, &targets).await?.values() {
            let references = references_of(&item.body);
            let next = with_references(&references, &id, Vec::new());
            if next != references {
                writes.extend(relink(call, item, next)?);
            }
        }
        match call.engine.store().transact(writes).await {
            Ok(()) => {
                // Records of a deleted table are unreachable (their routes answer 404 once
                // the table is gone), so a failure here leaves garbage, never a wrong answer.
                if let Err(error) = purge_records(call, &id).await {
                    tracing::warn!(%error, table = id, "could not delete every record of a deleted table");
                }
                return Ok(Reply::no_content());
            }
            Err(StoreError::TransactionConflict { index: 0 }) if call.if_match.is_some() => {
                return Err(ApiError::PreconditionFailed(
                    "The table changed while it was being deleted; read it again.".into(),
                ));
            }
            Err(StoreError::TransactionConflict { .. } | StoreError::Contention) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(kept_changing())
}

async fn purge_records(call: &Call, table_id: &str) -> Result<(), ApiError> {
    let partition = keys::table_records_partition(call.space_id()?, table_id);
    loop {
        let page = call
            .engine
            .store()
            .query(Query::partition(partition.clone()).limit(PURGE_BATCH))
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        let deletes = page
            .items
            .iter()
            .map(|item| Write::delete(item.pk.clone(), item.sk.clone(), Condition::None))
            .collect();
        call.engine.store().transact(deletes).await?;
        if page.last_sk.is_none() {
            return Ok(());
        }
    }
}
