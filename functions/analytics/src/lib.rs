//! Analytics, read only (`analytics:read`): what happened in the Space over a period, and
//! its data as files.
//!
//! - [`summary`] counts from the Space's events (contacts created, form submissions,
//!   messages in and out, the median first response, posts published, appointments
//!   booked): one read of the feed between two times, no counter kept on the write path.
//!   The feed is kept [`EVENT_RETENTION_DAYS`] days, and so is what a summary can reach.
//! - [`export`] streams a dataset as RFC 4180 CSV or JSON lines a page of the store at a
//!   time: the response never holds the dataset, whatever its size.

pub mod export;
pub mod summary;

use axum::Router;
use chrono::{DateTime, TimeDelta, Timelike as _, Utc};
use http::{Method, StatusCode};
use serde_json::json;
use space_auth::{Action, Domain, Scope};
use space_http::events::EVENT_RETENTION_DAYS;
use space_http::fields::{format_datetime, parse_datetime_strict};
use space_http::operation::{Access, Call, Effect, Param, handler};
use space_http::{ApiError, Engine, FieldErrors, Operation, Schema};

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// Summaries and exports a Space may ask for a minute: each reads up to weeks of events or
/// a whole dataset.
pub const READS_PER_MINUTE: u32 = 10;

/// The period a summary covers when the caller names none.
const DEFAULT_DAYS: i64 = 7;

/// The ends of a period a caller may give, each optional.
type Bounds = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A period `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    /// `from` and `to` of the query, each optional, as RFC 3339 date-times.
    fn parse(call: &Call) -> Result<Bounds, ApiError> {
        let mut errors = FieldErrors::new();
        let mut read = |name: &str| {
            let text = call.query_param(name)?;
            let parsed = parse_datetime_strict(text);
            if parsed.is_none() {
                errors.insert(
                    name.into(),
                    vec!["must be an RFC 3339 date-time, like 2026-12-01T00:00:00Z".into()],
                );
            }
            parsed
        };
        let (from, to) = (read("from"), read("to"));
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            errors.insert("to".into(), vec!["must be after `from`".into()]);
        }
        if errors.is_empty() {
            Ok((from, to))
        } else {
            Err(ApiError::validation(errors))
        }
    }

    /// A summary's period: `to` defaults to now, `from` to [`DEFAULT_DAYS`] before `to`;
    /// `from` lies within the events' retention.
    fn of_summary(call: &Call) -> Result<Period, ApiError> {
        let now = call.engine.now();
        let (from, to) = Period::parse(call)?;
        // Now, rounded up to the next second: what happened in this very instant is in.
        let to = to.unwrap_or_else(|| {
            now.with_nanosecond(0)
                .map_or(now, |second| second + TimeDelta::seconds(1))
        });
        let from = from.unwrap_or(to - TimeDelta::days(DEFAULT_DAYS));
        let horizon = now - TimeDelta::days(EVENT_RETENTION_DAYS);
        if from < horizon {
            return Err(ApiError::invalid_field(
                "from",
                format!(
                    "reaches back further than the {EVENT_RETENTION_DAYS} days events are kept: use {} or later",
                    format_datetime(horizon)
                ),
            ));
        }
        if from >= to {
            return Err(ApiError::invalid_field(
                "from",
                "must be before `to` (which defaults to now)",
            ));
        }
        Ok(Period { from, to })
    }
}

fn period_params(what: &str) -> Vec<Param> {
    vec![
        Param::query(
            "from",
            json!({"type": "string", "format": "date-time"}),
            format!("Start of the period (inclusive), RFC 3339. {what}"),
        ),
        Param::query(
            "to",
            json!({"type": "string", "format": "date-time"}),
            "End of the period (exclusive), RFC 3339; after `from`. A summary's defaults to now.",
        ),
    ]
}

pub fn operations() -> Vec<Operation> {
    let read = Access::Space(Scope::new(Domain::Analytics, Action::Read));
    let mut export_params = vec![
        Param {
            required: true,
            ..Param::query(
                "dataset",
                json!({"type": "string", "enum": export::DATASETS}),
                "What to export: contacts, inbox messages, social posts or form submissions.",
            )
        },
        Param::query(
            "format",
            json!({"type": "string", "enum": ["csv", "json"], "default": "csv"}),
            "`csv` (RFC 4180, a header row first) or `json` (JSON lines: one object per line).",
        ),
    ];
    export_params.extend(period_params(
        "Only rows created in the period; every row when left out.",
    ));
    vec![
        Operation::new(
            "analytics_summary",
            Method::GET,
            "/analytics/summary",
            read,
            Effect::Read,
            "Summarize a period: contacts created, form submissions, messages in and out, median first response, posts published, appointments booked",
            handler(summary::get),
        )
        .with_params(period_params(&format!(
            "Defaults to {DEFAULT_DAYS} days before `to`; at most {EVENT_RETENTION_DAYS} days back (how long events are kept)."
        )))
        .with_description(format!(
            "Counted from the Space's events, which are kept {EVENT_RETENTION_DAYS} days: `from` earlier than \
             that is 422, and so is a `from` that is not before `to`."
        ))
        .budgeted(READS_PER_MINUTE)
        .answers(StatusCode::OK, Schema::lazy(summary::schema).named("AnalyticsSummary")),
        Operation::new(
            "analytics_export",
            Method::GET,
            "/analytics/export",
            read,
            Effect::Read,
            "Export a dataset as CSV or JSON lines, streamed",
            handler(export::get),
        )
        .with_params(export_params)
        .with_description(
            "The file is sent as it is read, oldest rows first within each partition, so it may be of any size; \
             `from` not before `to` is 422. CSV cells hold text as it is; lists and objects are written as JSON. \
             A dataset is its domain's data: the key also needs `contacts:read`, `inbox:read`, `social:read` or \
             `forms:read` for it (403 without).",
        )
        .budgeted(READS_PER_MINUTE)
        .answers_as(StatusCode::OK, &[export::CSV, export::JSON_LINES]),
    ]
}

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
