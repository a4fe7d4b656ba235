//! `POST /contacts/import`: up to 1,000 contacts in one call. Every row is validated
//! first; good rows are written with their events in transactions of 50, each row
//! atomic with its event, so a row is either fully imported or not at all.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{WriteMode, body_schema};
use space_http::operation::{Access, Call, Effect, Reply, handler};
use space_http::{ApiError, Operation, Schema};

use crate::contacts;

pub const MAX_ROWS: usize = 1000;
/// Rows per store transaction: each row is two writes (contact and event).
const ROWS_PER_TRANSACTION: usize = 50;

pub fn operation() -> Operation {
    Operation {
        name: "contacts_import".into(),
        method: Method::POST,
        path: "/contacts/import".into(),
        access: Access::Space(Scope::new(Domain::Contacts, Action::Write)),
        effect: Effect::Create,
        summary: format!("Import up to {MAX_ROWS} contacts; bad rows are reported, good rows created"),
        params: Vec::new(),
        body: Some(Schema::lazy(|| {
            let row = body_schema(&contacts().fields, WriteMode::Create);
            json!({
                "type": "object",
                "properties": {"contacts": {"type": "array", "items": row, "minItems": 1, "maxItems": MAX_ROWS}},
                "required": ["contacts"],
                "additionalProperties": false
            })
        })),
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
                            "status": {"type": "string", "enum": ["created", "invalid", "not_written"]},
                            "id": {"type": "string"},
                            "errors": {"type": "object"}
                        }
                    }}
                }
            })
        })),
        success: StatusCode::OK,
        raw_body: false,
        max_body_bytes: None,
        media_types: &[],
        handler: handler(|call| async move { import(&call).await }),
    }
}

async fn import(call: &Call) -> Result<Reply, ApiError> {
    // A bare array is accepted too; the object form is what the schema and MCP use.
    let rows = match &call.body {
        Value::Array(rows) => rows,
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
    let resource = contacts();
    let mut results: BTreeMap<usize, Value> = BTreeMap::new();
    let mut ready = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        match resource.prepare_create(call, row) {
            Ok((item, writes)) => ready.push((index, item.sk, writes)),
            Err(errors) => {
                results.insert(index, json!({"index": index, "status": "invalid", "errors": errors}));
            }
        }
    }
    for chunk in ready.chunks(ROWS_PER_TRANSACTION) {
        let writes = chunk.iter().flat_map(|(_, _, writes)| writes.iter().cloned()).collect();
        let outcome = call.engine.store().transact(writes).await;
        for (index, id, _) in chunk {
            let result = match &outcome {
                Ok(()) => json!({"index": index, "status": "created", "id": id}),
                Err(error) => {
                    json!({"index": index, "status": "not_written", "errors": {"store": [error.to_string()]}})
                }
            };
            results.insert(*index, result);
        }
    }
    let created = results.values().filter(|r| r["status"] == "created").count();
    Ok(Reply::ok(json!({
        "created": created,
        "failed": rows.len() - created,
        "results": results.into_values().collect::<Vec<_>>(),
    })))
}
