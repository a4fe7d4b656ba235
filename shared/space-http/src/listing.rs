//! Pages that never lie. A client (an agent above all) reads `data: []` as "there is no
//! such item" and `next_cursor: null` as "there is nothing more", so a page is never
//! empty while it hands out a cursor, and a cursor is only handed out when something may
//! follow:
//!
//! - a page reads on until it holds `limit` items, or the list ends; it then looks for one
//!   more match, so a page that is exactly full at the end says `next_cursor: null`;
//! - a filter that still reads the items in order (not through an index) reads at most
//!   [`SCAN_BUDGET`] candidates per call. When the budget runs out with matches in hand,
//!   the page answers them with a cursor (a short page means "more may follow", never
//!   "this is all"); with none, the list's [`WhenNothingFound`] decides: a resource list
//!   refuses with a 422 that names its indexed filters, a feed reads on — up to
//!   [`FEED_SCAN_LIMIT`] candidates, after which it answers the one page that is empty and
//!   still has a cursor: a feed must not skip, and one call must not read a whole
//!   partition.

use std::collections::HashMap;

use futures::{StreamExt, stream};
use serde_json::{Map, Value, json};
use space_store::{Item, Query, SortRange};

use crate::cursor::{self, Position};
use crate::error::ApiError;
use crate::operation::Call;
use crate::resource::{MAX_LIMIT, PageRequest};

/// Candidates (items, or index entries) one call examines at most when a filter rejects
/// them, before it answers what it found.
pub const SCAN_BUDGET: usize = 10_000;

/// Candidates a feed's call examines at most while nothing matched.
pub const FEED_SCAN_LIMIT: usize = 10 * SCAN_BUDGET;

/// Bytes of items (as the store counts them) a filter passes over in one call at most,
/// whatever their number: a filter over large items (documents, whiteboards) stops as
/// early as one over many small ones would.
pub const SCAN_BYTES: usize = 32 * 1024 * 1024;

/// The largest read of one round trip while scanning.
const MAX_CHUNK: usize = 1000;

/// Items fetched at once for the entries of an index.
const FETCH_CONCURRENCY: usize = 16;

/// What a list does when [`SCAN_BUDGET`] runs out before anything matched.
pub enum WhenNothingFound<'a> {
    /// Read on to the first match or the end, [`FEED_SCAN_LIMIT`] at most: a feed polled
    /// "since" must not skip.
    ReadOn,
    /// Answer this error instead of an empty page.
    Refuse(&'a (dyn Fn() -> ApiError + Send + Sync)),
}

/// Where a list reads its candidates, in sort-key order (or its reverse).
#[derive(Debug, Clone)]
pub enum Source {
    /// The items of one partition.
    Items { partition: String, range: SortRange },
    /// The entries of an index partition, each naming (body `id`) an item of `items`.
    Entries {
        index: String,
        range: SortRange,
        items: String,
    },
}

/// One candidate: its position (the sort key a cursor resumes after) and the item, if
/// it still exists.
pub struct Candidate {
    pub position: String,
    pub item: Option<Item>,
}

impl Source {
    /// What a cursor is sealed to: a cursor of one list (or one index range) opens on no other.
    fn binding(&self) -> String {
        match self {
            Source::Items { partition, .. } => partition.clone(),
            Source::Entries { index, range, .. } => {
                let range = match range {
                    SortRange::All => String::new(),
                    SortRange::BeginsWith(prefix) => format!("^{prefix}"),
                    SortRange::Between(low, high) => format!("{low}..{high}"),
                };
                format!("{index}|{range}")
            }
        }
    }

    /// The next `limit` candidates after `after`, and whether more may follow: for a list
    /// that pages over several sources itself (a ranked search), with its own cursor.
    pub async fn read(
        &self,
        call: &Call,
        after: Option<String>,
        limit: usize,
        descending: bool,
    ) -> Result<(Vec<Candidate>, bool), ApiError> {
        let store = call.engine.store();
        let (partition, range) = match self {
            Source::Items { partition, range }
            | Source::Entries {
                index: partition,
                range,
                ..
            } => (partition, range),
        };
        let query = Query::partition(partition.as_str())
            .range(range.clone())
            .after(after)
            .limit(limit)
            .descending(descending);
        let page = store.query(query).await?;
        let more = page.last_sk.is_some();
        let Source::Entries { items, .. } = self else {
            let candidates = page
                .items
                .into_iter()
                .map(|item| Candidate {
                    position: item.sk.clone(),
                    item: Some(item),
                })
                .collect();
            return Ok((candidates, more));
        };
        let ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|entry| entry.body.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let mut wanted: Vec<String> = ids;
        wanted.sort_unstable();
        wanted.dedup();
        // Owned futures: borrowed ones in a stream trip the compiler's `Send` inference.
        let fetches = wanted.into_iter().map(|id| {
            let (store, items) = (call.engine.store_arc(), items.clone());
            async move { store.get(&items, &id).await.map(|item| (id, item)) }
        });
        let fetched: Vec<(String, Option<Item>)> = stream::iter(fetches)
            .buffer_unordered(FETCH_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let fetched: HashMap<String, Option<Item>> = fetched.into_iter().collect();
        let candidates = page
            .items
            .into_iter()
            .map(|entry| {
                let item = entry
                    .body
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| fetched.get(id).cloned().flatten());
                Candidate {
                    position: entry.sk,
                    item,
                }
            })
            .collect();
        Ok((candidates, more))
    }
}

/// One page of `source`: the items `keep(position, item)` accepts, as the API shows them.
pub async fn list_page(
    call: &Call,
    source: &Source,
    page: PageRequest,
    when_nothing_found: WhenNothingFound<'_>,
    keep: impl Fn(&str, &Item) -> bool,
) -> Result<Value, ApiError> {
    let key = call.engine.cursor_key();
    let binding = source.binding();
    let mut after = match &page.cursor {
        None => page.start_after.clone(),
        Some(text) => {
            let position =
                cursor::open(key, &binding, text).map_err(|e| ApiError::BadRequest(format!("Invalid cursor: {e}.")))?;
            if position.descending != page.descending {
                return Err(ApiError::BadRequest(
                    "Invalid cursor: it was issued for the other `order`.".into(),
                ));
            }
            Some(position.last_sk)
        }
    };
    let seal = |last_sk: String| {
        json!(cursor::seal(
            key,
            &binding,
            &Position {
                last_sk,
                descending: page.descending
            }
        ))
    };
    let answer = |data: Vec<Value>, next: Value| json!({"data": data, "next_cursor": next});
    let mut data = Vec::with_capacity(page.limit);
    let mut last_kept: Option<String> = None;
    let mut examined = 0usize;
    let mut bytes = 0usize;
    // The first read is the page and one more (an unfiltered list needs no other); a
    // filter that rejects reads on in larger steps.
    let mut chunk = (page.limit + 1).min(MAX_LIMIT + 1);
    loop {
        let (candidates, more) = source.read(call, after.clone(), chunk, page.descending).await?;
        for candidate in candidates {
            examined += 1;
            let item = match candidate.item {
                Some(item) if keep(&candidate.position, &item) => Some(item),
                // What the filter passes over is what the budget counts: a page's own
                // items are bounded by its limit, and an unfiltered list counts nothing.
                Some(item) => {
                    bytes += space_store::item_size(&item);
                    None
                }
                None => None,
            };
            if let Some(item) = item {
                if data.len() == page.limit {
                    // A match beyond the page: the cursor resumes right after the page.
                    let next = last_kept.map_or(Value::Null, seal);
                    return Ok(answer(data, next));
                }
                data.push(view(item.body, item.version));
                last_kept = Some(candidate.position.clone());
            }
            after = Some(candidate.position);
        }
        if !more {
            return Ok(answer(data, Value::Null));
        }
        if examined >= SCAN_BUDGET || bytes >= SCAN_BYTES {
            let feed_spent = examined >= FEED_SCAN_LIMIT || bytes >= SCAN_BYTES;
            match (&when_nothing_found, data.is_empty(), after.clone()) {
                (_, false, Some(position)) => return Ok(answer(data, seal(position))),
                (WhenNothingFound::Refuse(refusal), true, _) => return Err(refusal()),
                (WhenNothingFound::ReadOn, true, Some(position)) if feed_spent => {
                    return Ok(answer(data, seal(position)));
                }
                _ => {}
            }
        }
        // Within the budget, never read past it: the budget is what a call examines. Large
        // items are read fewer at a time, so one read stays within the bytes left.
        let average = bytes / examined.max(1);
        let fit = SCAN_BYTES.saturating_sub(bytes) / average.max(1);
        chunk = match SCAN_BUDGET.checked_sub(examined) {
            Some(left) if left > 0 => (chunk * 2).min(MAX_CHUNK).min(left),
            _ => MAX_CHUNK,
        }
        .min(fit.max(1));
    }
}

/// An item as the API shows it: its body and its version. Fields named with a leading `_`
/// are the server's own bookkeeping (a job's token, say) and are never shown.
pub(crate) fn view(mut body: Map<String, Value>, version: u64) -> Value {
    body.retain(|field, _| !field.starts_with('_'));
    body.insert("version".into(), json!(version));
    Value::Object(body)
}
