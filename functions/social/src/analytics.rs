//! `GET /social/analytics`: per published post and per account, what the network reports
//! (the sandbox's figures here; a real provider's API in production).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use space_http::fields::parse_datetime;
use space_http::keys;
use space_http::operation::{Call, Reply};
use space_http::{ApiError, FieldErrors};
use space_store::Query;

use crate::provider::{Metrics, PUBLICATIONS, sandbox_metrics};

/// Publications read per call, newest first.
pub const MAX_POSTS: usize = 1_000;

fn metrics_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "impressions": {"type": "integer"}, "likes": {"type": "integer"}, "comments": {"type": "integer"},
            "shares": {"type": "integer"}, "clicks": {"type": "integer"}
        },
        "required": ["impressions", "likes", "comments", "shares", "clicks"]
    })
}

pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "post_id": {"type": "string"},
                    "account_id": {"type": "string"},
                    "network_post_id": {"type": "string"},
                    "network_url": {"type": "string"},
                    "published_at": {"type": "string", "format": "date-time"},
                    "metrics": metrics_schema()
                },
                "required": ["post_id", "account_id", "published_at", "metrics"]
            }},
            "totals": {"type": "object", "additionalProperties": metrics_schema(), "description": "Per account id."}
        },
        "required": ["data", "totals"]
    })
}

pub async fn analytics(call: Call) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::new();
    let mut bound = |name: &str| match call.query_param(name).filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => {
            let at = parse_datetime(text);
            if at.is_none() {
                errors.insert(
                    name.into(),
                    vec!["must be an RFC 3339 date-time, like 2026-11-22T17:00:00Z".into()],
                );
            }
            at
        }
    };
    let (from, to) = (bound("from"), bound("to"));
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let account = call.query_param("account_id").filter(|a| !a.is_empty());
    if let Some(account) = account {
        crate::accounts::load(&call, account).await?;
    }
    let partition = keys::collection_partition(call.space_id()?, PUBLICATIONS);
    let page = call
        .engine
        .store()
        .query(Query::partition(partition).descending(true).limit(MAX_POSTS))
        .await?;
    let now = call.engine.now();
    let mut data = Vec::new();
    let mut totals: BTreeMap<String, Metrics> = BTreeMap::new();
    for record in &page.items {
        let text = |field: &str| record.body.get(field).and_then(Value::as_str);
        let Some(published) = text("published_at").and_then(parse_datetime) else {
            continue;
        };
        let owner = text("account_id").unwrap_or_default();
        if account.is_some_and(|a| a != owner)
            || from.is_some_and(|from| published < from)
            || to.is_some_and(|to| published > to)
        {
            continue;
        }
        let metrics = sandbox_metrics(&record.sk, (now - published).num_hours());
        totals.entry(owner.to_owned()).or_default().add(metrics);
        data.push(json!({
            "post_id": record.sk,
            "account_id": owner,
            "network_post_id": text("network_post_id"),
            "network_url": text("network_url"),
            "published_at": text("published_at"),
            "metrics": metrics.to_json(),
        }));
    }
    let totals: serde_json::Map<String, Value> = totals.into_iter().map(|(a, m)| (a, m.to_json())).collect();
    Ok(Reply::ok(json!({"data": data, "totals": totals})))
}
