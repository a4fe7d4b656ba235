//! Tasks. "List my open tasks and mark the overdue ones high priority" is one list call
//! (`?status=open&overdue=true`) and one PATCH per task.

use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{Field, FieldKind, parse_datetime};
use space_http::resource::{CustomFilter, Filter, Resource, parse_bool};
use space_http::{Engine, Operation};

pub const STATUSES: &[&str] = &["open", "in_progress", "done"];
pub const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

/// The task resource.
pub fn tasks() -> Resource {
    Resource {
        domain: Domain::Tasks,
        name: "tasks",
        collection: "tasks",
        path: "/tasks",
        item_param: "id",
        singular: "task",
        plural: "tasks",
        event_prefix: "task",
        id_prefix: "task",
        parent: None,
        fields: vec![
            Field::new("title", FieldKind::Text { max: 500 }, "What needs doing.").required(),
            Field::new(
                "description",
                FieldKind::LongText { max: 20_000 },
                "Details, in markdown.",
            ),
            Field::new("status", FieldKind::Enum(STATUSES), "Where the task stands.").default(|| json!("open")),
            Field::new("priority", FieldKind::Enum(PRIORITIES), "How urgent it is.").default(|| json!("normal")),
            Field::new("due_at", FieldKind::DateTime, "When it is due (RFC 3339)."),
            Field::new("assignee", FieldKind::Text { max: 200 }, "Who is doing it."),
            Field::new("tags", FieldKind::Tags, "Labels.").default(|| Value::Array(Vec::new())),
            Field::new(
                "contact_id",
                FieldKind::Text { max: 100 },
                "The contact it is about (a conversation's summary lists the contact's open tasks).",
            ),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "priority",
                field: "priority",
                kind: FieldKind::Enum(PRIORITIES),
            },
            Filter::Before {
                param: "due_before",
                field: "due_at",
            },
            Filter::After {
                param: "due_after",
                field: "due_at",
            },
            Filter::Custom(CustomFilter {
                param: "overdue",
                description: "`true`: only tasks past their due time and not done; `false`: only the others.",
                schema: || json!({"type": "boolean"}),
                parse: parse_bool,
                matches: overdue_matches,
            }),
            Filter::Search {
                param: "q",
                fields: &["title", "description"],
            },
            Filter::HasTag {
                param: "tag",
                field: "tags",
            },
            Filter::Lookup {
                param: "contact_id",
                field: "contact_id",
                kind: FieldKind::Text { max: 100 },
                unique: false,
            },
        ],
        rules: None,
    }
}

/// Overdue: due before now and not done.
pub fn is_overdue(task: &Map<String, Value>, now: DateTime<Utc>) -> bool {
    let due = task.get("due_at").and_then(Value::as_str).and_then(parse_datetime);
    let done = task.get("status").and_then(Value::as_str) == Some("done");
    due.is_some_and(|due| due < now) && !done
}

fn overdue_matches(task: &Map<String, Value>, wanted: &Value, now: DateTime<Utc>) -> bool {
    Some(is_overdue(task, now)) == wanted.as_bool()
}

pub fn operations() -> Vec<Operation> {
    tasks().operations()
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
