//! `POST /contacts/import`: up to 1,000 contacts in one call. Every row is validated
//! first; good rows are written with their events and lookup entries (the email claim) in
//! transactions of up to 50 rows, each row atomic with its own writes, so a row is either
//! fully imported or not at all. A row whose email another contact (or an earlier row)
//! already has is reported as a duplicate naming that contact, and the rest of its batch is
//! still written.
//!
//! The rows' search words are not in those transactions: each transaction also enqueues a
//! [`SEARCH_WORDS`] job for its rows, which writes their words after the answer. An
//! imported contact is found by `?email=` and `?phone=` the moment the import answers, and
//! by `?q=` once the job ran (the next worker pass, usually within a second). Word entries
//! are most of an indexed row's writes: an import with them inline wrote five times as
//! much in the request (docs/benchmarks.md).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::Engine;
use space_http::operation::{Access, Call, Effect, Reply, handler};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, Operation, Schema};
use space_store::{StoreError, Write, pack_transactions};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::contacts;

pub const MAX_ROWS: usize = 1000;
/// Rows per store transaction at most; a batch also stays within the store's limit of
/// writes (a row is its contact, its event and its lookup entries; the batch adds its job).
const ROWS_PER_TRANSACTION: usize = 50;
/// The job that writes the search words of imported contacts.
pub const SEARCH_WORDS: &str = "contacts.search_words";

pub fn operation() -> Operation {
    operation_for(contacts)
}

/// The import of rows of `resource` (the contacts as declared; a benchmark passes them
/// without their indexes to measure what the indexes cost).
pub fn operation_for(resource: fn() -> Resource) -> Operation {
    Operation {
        name: "contacts_import".into(),
        method: Method::POST,
        path: "/contacts/import".into(),
        access: Access::Space(Scope::new(Domain::Contacts, Action::Write)),
        effect: Effect::Create,
        summary: format!("Import up to {MAX_ROWS} contacts; bad rows are reported, good rows created"),
        description: Some(
            "Imported contacts are found by `email` and `phone` at once, and by `q` (word search) within about a second: their words are indexed after the answer.".into(),
        ),
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
        space_budget: None,
        shows_secret: false,
        approves_version: None,
        admits: None,
        handler: handler(move |call| async move { import(&call, resource()).await }),
    }
}

async fn import(call: &Call, resource: Resource) -> Result<Reply, ApiError> {
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
                let writes = resource.without_search_words(call, writes)?;
                let (counts, writes): (Vec<Write>, Vec<Write>) = writes
                    .into_iter()
                    .partition(|write| matches!(write, Write::Count { .. }));
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
                    counts,
                });
            }
            Err(errors) => {
                results.insert(index, json!({"index": index, "status": "invalid", "errors": errors}));
            }
        }
    }
    let searched = resource
        .filters
        .iter()
        .any(|filter| matches!(filter, Filter::IndexedSearch { .. }));
    // One batch after the other: the batches share their tags' counters.
    for batch in batches(ready, usize::from(searched)) {
        results.extend(settle(call, &resource, batch, searched).await?);
    }
    let created = results.values().filter(|r| r["status"] == "created").count();
    Ok(Reply::ok(json!({
        "created": created,
        "failed": rows.len() - created,
        "results": results.into_values().collect::<Vec<_>>(),
    })))
}

/// Writes one batch of rows, with their tags' counters and, when `searched`, the job that
/// indexes their words. A
/// batch refused because one row's email is taken drops that row and goes again: each
/// round settles at least one row. Answers each row's result.
async fn settle(
    call: &Call,
    resource: &Resource,
    mut batch: Vec<Row>,
    searched: bool,
) -> Result<Vec<(usize, Value)>, ApiError> {
    let space = call.space_id()?;
    let mut results = Vec::with_capacity(batch.len());
    while !batch.is_empty() {
        // Each row's writes in order (a refusal's index names its row), then the counters and the job.
        let mut writes: Vec<Write> = batch.iter().flat_map(|row| row.writes.iter().cloned()).collect();
        writes.extend(merged_counts(&batch));
        if searched {
            let ids: Vec<&str> = batch.iter().map(|row| row.id.as_str()).collect();
            let payload = json!({"space": space, "ids": ids});
            writes.push(NewJob::new(SEARCH_WORDS, payload, call.engine.now()).write());
        }
        match call.engine.store().transact(writes.clone()).await {
            Ok(()) => {
                for row in batch.drain(..) {
                    results.push((
                        row.index,
                        json!({"index": row.index, "status": "created", "id": row.id}),
                    ));
                }
            }
            Err(StoreError::TransactionConflict { index: at }) => {
                let row = batch.remove(owner_of(&batch, at));
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
                results.push((row.index, result));
            }
            Err(error) => {
                for row in batch.drain(..) {
                    let result = json!({"index": row.index, "status": "not_written",
                                        "errors": {"store": [error.to_string()]}});
                    results.push((row.index, result));
                }
            }
        }
    }
    Ok(results)
}

/// A valid row and the writes that create it.
struct Row {
    index: usize,
    id: String,
    writes: Vec<Write>,
    /// Its tags' usage counters, written once per batch ([`merged_counts`]).
    counts: Vec<Write>,
}

/// Rows grouped into transactions of at most [`ROWS_PER_TRANSACTION`] rows and
/// [`space_store::MAX_TRANSACTION_WRITES`] writes, less `reserve` (the batch's job).
fn batches(rows: Vec<Row>, reserve: usize) -> Vec<Vec<Row>> {
    pack_transactions(
        rows,
        |row| row.writes.len() + row.counts.len(),
        ROWS_PER_TRANSACTION,
        reserve,
    )
}

/// The rows' counter writes as one write per counter, each adding what the rows add: a
/// transaction touches an item once, and the rows of a batch share their tags' counters.
fn merged_counts(batch: &[Row]) -> Vec<Write> {
    let mut merged: Vec<Write> = Vec::new();
    for count in batch.iter().flat_map(|row| row.counts.iter()) {
        let Write::Count { pk, sk, by, .. } = count else {
            continue;
        };
        match merged
            .iter_mut()
            .find(|write| write.key() == (pk.as_str(), sk.as_str()))
        {
            Some(Write::Count { by: total, .. }) => *total += by,
            _ => merged.push(count.clone()),
        }
    }
    merged
}

/// Writes the search words of the contacts an import transaction created (payload
/// `{"space", "ids"}`), as each contact is now.
pub struct SearchWords;

#[async_trait]
impl Handler for SearchWords {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let space = job.payload["space"]
            .as_str()
            .ok_or_else(|| JobError::Fail("the job names no Space".into()))?;
        let ids: Vec<String> = serde_json::from_value(job.payload["ids"].clone())
            .map_err(|error| JobError::Fail(format!("the job's ids do not parse: {error}")))?;
        contacts().write_search_words(engine, space, &ids).await?;
        Ok(Outcome::Done)
    }
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
