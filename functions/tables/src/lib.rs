//! Tables: user-defined tables with typed columns, and their records.
//!
//! - A table is `{name, description, columns}`; each column has a server-made id, a name
//!   and a type (text, number, boolean, date, datetime, email, url, select, multi_select,
//!   relation). Columns change through the table (`PATCH /tables/{id}` with the whole
//!   `columns` list, matched by column `id`) or one at a time under
//!   `/tables/{id}/columns`.
//! - A record is a flat object of column values by column name, checked against the
//!   columns (422 naming every bad field). It is stored by column id, so renaming a column
//!   rewrites nothing and loses nothing, and removing one leaves every other value alone.
//! - A relation column links to a table (`table_id`); its values are ids of records of
//!   that table, checked to exist in the same transaction as the record. It may name a
//!   `display_column` of the linked table, the column that labels linked records. That
//!   column cannot be removed while the relation points at it (409), and a table that
//!   another table's relation links to cannot be deleted (409). Each table keeps the list
//!   of relation columns that point at it (`referenced_by`), changed in the same
//!   transaction as the relation, so both refusals are exact under concurrency.

mod columns;
mod definition;
mod records;

use axum::Router;
use serde_json::{Value, json};
use space_auth::Domain;
use space_http::fields::{Field, FieldKind};
use space_http::resource::{Filter, Resource, list_schema};
use space_http::{Engine, Operation, Schema};

pub use columns::{Column, ColumnType};

/// Records' ids start with this.
pub const RECORD_ID_PREFIX: &str = "rec";
/// Tables' ids start with this.
pub const TABLE_ID_PREFIX: &str = "tbl";

/// The table resource: its generated list and get, and the helpers the custom writes use.
pub fn tables() -> Resource {
    Resource {
        domain: Domain::Tables,
        name: "tables",
        collection: "tables",
        path: "/tables",
        item_param: "id",
        singular: "table",
        plural: "tables",
        event_prefix: "table",
        id_prefix: TABLE_ID_PREFIX,
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "The table's name.").required(),
            Field::new(
                "description",
                FieldKind::LongText { max: 5_000 },
                "What the table is for.",
            ),
        ],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["name", "description"],
        }],
        rules: None,
    }
}

/// A column as requests send it.
pub fn column_input_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "An existing column's id: keeps that column (and its values) and changes only what is sent. Leave out to add a column."},
            "name": {"type": "string", "minLength": 1, "maxLength": 64, "description": "Unique in the table (ignoring case)."},
            "type": {"type": "string", "enum": ColumnType::names()},
            "options": {"type": "array", "items": space_http::fields::label_schema(100), "minItems": 1, "maxItems": columns::MAX_OPTIONS, "description": "The choices of a select or multi_select column."},
            "table_id": {"type": "string", "description": "Relation columns: the table whose records the values are."},
            "display_column": {"type": ["string", "null"], "description": "Relation columns: the name or id of the linked table's column that labels its records; stored as the column's id. That column cannot be removed while this relation names it."}
        },
        "additionalProperties": false
    })
}

/// A column as the API returns it.
fn column_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "name", "type"],
        "properties": {
            "id": {"type": "string", "description": "Starts with `col_`; stays the same when the column is renamed."},
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ColumnType::names()},
            "options": {"type": "array", "items": {"type": "string"}},
            "table_id": {"type": "string"},
            "display_column": {"type": "string", "description": "The id of the linked table's labelling column."}
        }
    })
}

/// A table as the API returns it.
pub fn table_schema() -> Value {
    let mut schema = tables().item_schema();
    schema["properties"]["columns"] = json!({"type": "array", "items": column_schema()});
    schema["properties"]["referenced_by"] = json!({
        "type": "array",
        "description": "Relation columns of tables (this one included) that link to this table.",
        "items": {
            "type": "object",
            "required": ["table_id", "column_id"],
            "properties": {
                "table_id": {"type": "string"},
                "column_id": {"type": "string"},
                "display_column": {"type": "string", "description": "The column of this table the relation names."}
            }
        }
    });
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend([json!("columns"), json!("referenced_by")]);
    }
    schema
}

/// Every operation of the family: tables, their columns, their records.
pub fn operations() -> Vec<Operation> {
    let mut operations = tables().operations();
    for operation in &mut operations {
        operation.response = match operation.name.as_str() {
            "tables_list" => Some(Schema::lazy(|| list_schema(table_schema()))),
            "tables_delete" => None,
            _ => Some(Schema::lazy(table_schema).named("Table")),
        };
    }
    definition::customize(&mut operations);
    operations.extend(definition::column_operations());
    operations.extend(records::operations());
    space_http::operation::describe(
        &mut operations,
        &[
            "tables_create",
            "tables_replace",
            "tables_update",
            "tables_columns_add",
            "tables_columns_update",
        ],
        "Column names are unique in a table ignoring case; only select and multi_select columns take options; \
         a relation column's `table_id` names a table of this Space; an `id` names an existing column. \
         Otherwise 422.",
    );
    space_http::operation::describe(
        &mut operations,
        &[
            "tables_records_create",
            "tables_records_replace",
            "tables_records_update",
            "tables_records_list",
        ],
        "Values, filters and sort name the table's columns and take their types; otherwise 422.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
