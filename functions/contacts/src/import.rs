//! `POST /contacts/import`: up to 1,000 contacts in one call. Every row is validated
//! first; good rows are written with their events and index entries in transactions of
//! up to 50 rows, each row atomic with its own writes, so a row is either fully imported
//! or not at all. A row whose email another contact (or an earlier row) already has is
//! reported as a duplicate naming that contact, and the rest of its batch is still written.

use std::collections::{BTreeMap, HashMap};

use std::collections::HashSet;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Call, Effect, Reply, handler};
use space_http::{ApiError, Operation, Schema};
use space_store::{StoreError, Write, pack_transactions};

use crate::contacts;

pub const MAX_ROWS: usize = 1000;
/// Rows per store transaction at most; a batch also stays within the store's limit of
/// writes (a row is its contact, its event and its index entries).
const ROWS_PER_TRANSACTION: usize = 50;

pub fn operation() -> Operation {
    operation_for(contacts)
}

/// The import of rows of `resource` (the contacts as declared; a benchmark passes them
/// without their indexes to measure what the indexes cost).
pub fn operation_for(resource: fn() -> space_http::resource::Resource) -> Operation {
    Operation {
        name: "contacts_import".into(),
        method: Method::POST,
        path: "/contacts/import".into(),
        access: Access::Space(Scope::new(Domain::Contacts, Action::Write)),
        effect: Effect::Create,
        summary: format!("Import up to {MAX_ROWS} contacts; bad rows are reported, good rows created"),
        description: None,
        params: Vec::new(),
        body: Some(Schema::lazy(|| {
            // Any row is taken, and reported on: a bad row is no reason to refuse the rest.
            let row = json!({
                "description": "A contact as `POST /contacts` takes it (ContactCreate). A row that is not one is not created, and `results` says why."
            });
            json!({
                "type": "object",
                "properties": {"contacts": {"type": "array", "items": row, "minItems": 1, "maxItems": MAX_ROWS}},
                "required": ["contacts"],
                "additionalProperties": false
            })
        })
        .named("ContactImport")),
        optional_body: false,
        no_input: false,
        response: Some(Schema::lazy(|| {
            json!({
                "type": "object",
                "required": ["created", "failed", "results"],
                "properties": {
                    "created": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "results": {"type": "array", "items": {
                        "type": "object",
                        "required": ["index", "status"],
                        "properties": {
                            "index": {"type": "integer"},
                            "status": {"type": "string", "enum": ["created", "invalid", "duplicate", "not_written"]},
                            "id": {"type": "string"},
                            "existing_id": {"type": "string", "description": "For a duplicate: the contact that already has the email."},
                            "errors": {"type": "object"}
                        }
                    }}
                }
            })
        })
        .named("ContactImportResult")),
        success: StatusCode::OK,
        raw_body: false,
        max_body_bytes: None,
        media_types: &[],
        answers: Vec::new(),
        cap: None,
        handler: handler(move |call| async move { import(&call, resource()).await }),
    }
}

async fn import(call: &Call, resource: space_http::resource::Resource) -> Result<Reply, ApiError> {
    let rows = match &call.body {
        Value::Object(object) => match object.get("contacts") {
            Some(Value::Array(rows)) if object.len() == 1 => rows,
            _ => {
                return Err(ApiError::invalid_field(
                    "contacts",
                    "send {\"contacts\": [ … ]} with only that field",
                ));
            }
        },
        _ => return Err(ApiError::invalid_field("contacts", "send {\"contacts\": [ … ]}")),
    };
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(ApiError::invalid_field(
            "contacts",
            format!("must hold 1 to {MAX_ROWS} contacts"),
        ));
    }
    let mut results: BTreeMap<usize, Value> = BTreeMap::new();
    let mut ready: Vec<Row> = Vec::new();
    let mut emails: HashMap<String, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        match resource.prepare_create(call, row) {
            Ok((item, writes)) => {
                let email = item.body.get("email").and_then(Value::as_str).map(str::to_owned);
                if let Some(first) = email.and_then(|email| emails.insert(email, index)) {
                    let message = format!("row {first} has the same email");
                    results.insert(
                        index,
                        json!({"index": index, "status": "invalid", "errors": {"email": [message]}}),
                    );
                    continue;
                }
                ready.push(Row {
                    index,
                    id: item.sk,
                    writes,
                });
            }
            Err(errors) => {
                results.insert(index, json!({"index": index, "status": "invalid", "errors": errors}));
            }
        }
    }
    for mut batch in batches(ready) {
        // A batch refused because one row's email is taken drops that row and goes again:
        // each round settles at least one row.
        while !batch.is_empty() {
            let writes: Vec<Write> = batch.iter().flat_map(|row| row.writes.iter().cloned()).collect();
            match call.engine.store().transact(writes.clone()).await {
                Ok(()) => {
                    for row in batch.drain(..) {
                        results.insert(
                            row.index,
                            json!({"index": row.index, "status": "created", "id": row.id}),
                        );
                    }
                }
                Err(StoreError::TransactionConflict { index: at }) => {
                    let owner = owner_of(&batch, at);
                    let row = batch.remove(owner);
                    let result = match resource.duplicate(call, writes.get(at)).await? {
                        Some(ApiError::Duplicate {
                            message,
                            field,
                            existing_id,
                        }) => json!({"index": row.index, "status": "duplicate", "existing_id": existing_id,
                                     "errors": {field: [message]}}),
                        _ => json!({"index": row.index, "status": "not_written",
                                    "errors": {"store": ["another write changed what this row needs; retry it"]}}),
                    };
                    results.insert(row.index, result);
                }
                Err(error) => {
                    for row in batch.drain(..) {
                        let result = json!({"index": row.index, "status": "not_written",
                                            "errors": {"store": [error.to_string()]}});
                        results.insert(row.index, result);
                    }
                }
            }
        }
    }
    let created = results.values().filter(|r| r["status"] == "created").count();
    Ok(Reply::ok(json!({
        "created": created,
        "failed": rows.len() - created,
        "results": results.into_values().collect::<Vec<_>>(),
    })))
}

/// A valid row and the writes that create it.
struct Row {
    index: usize,
    id: String,
    writes: Vec<Write>,
}

/// Rows grouped into transactions of at most [`ROWS_PER_TRANSACTION`] rows and
/// [`space_store::MAX_TRANSACTION_WRITES`] writes.
/// Rows touching an item another row of the batch touches (a tag's usage counter) start
/// a transaction of their own: a transaction writes each item once.
fn batches(rows: Vec<Row>) -> Vec<Vec<Row>> {
    let mut batches = Vec::new();
    let mut current: Vec<Row> = Vec::new();
    let mut keys: HashSet<(String, String)> = HashSet::new();
    for row in rows {
        let row_keys: Vec<(String, String)> = row
            .writes
            .iter()
            .map(|write| {
                let (pk, sk) = write.key();
                (pk.to_owned(), sk.to_owned())
            })
            .collect();
        if row_keys.iter().any(|key| keys.contains(key)) {
            batches.extend(pack_transactions(
                std::mem::take(&mut current),
                |row: &Row| row.writes.len(),
                ROWS_PER_TRANSACTION,
                0,
            ));
            keys.clear();
        }
        keys.extend(row_keys);
        current.push(row);
    }
    batches.extend(pack_transactions(
        current,
        |row: &Row| row.writes.len(),
        ROWS_PER_TRANSACTION,
        0,
    ));
    batches
}

/// The position in `batch` of the row whose writes include the transaction's write `at`.
fn owner_of(batch: &[Row], at: usize) -> usize {
    let mut end = 0;
    for (position, row) in batch.iter().enumerate() {
        end += row.writes.len();
        if at < end {
            return position;
        }
    }
    batch.len().saturating_sub(1)
}
