//! Columns: their types, how a column list is read from a request and checked, and how
//! a column checks, filters and orders the values of records.
//!
//! Every column has a server-made `id` (`col_…`) besides its name. Records store their
//! values by column id, so renaming a column moves nothing (the new name is read at the
//! next render), and a column removed and re-added under the same name starts empty
//! instead of bringing back values of the one that was removed.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use space_http::FieldErrors;
use space_http::fields::{FieldKind, parse_datetime};
use space_http::ids::new_id;

/// Columns one table may have.
pub const MAX_COLUMNS: usize = 100;
/// Relation columns one table may have: each is checked in the record's transaction.
pub const MAX_RELATIONS: usize = 20;
/// Choices of one select or multi-select column.
pub const MAX_OPTIONS: usize = 200;
const MAX_OPTION_CHARS: usize = 100;
const MAX_NAME_CHARS: usize = 64;
/// Characters of one text value.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Names a column cannot have: they are the record's own fields, or `values`, the key
/// under which an MCP client may send the column values.
pub const RESERVED_NAMES: &[&str] = &[
    "id",
    "table_id",
    "created_at",
    "updated_at",
    "version",
    "object",
    "values",
];

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Number,
    Boolean,
    Date,
    Datetime,
    Email,
    Url,
    Select,
    MultiSelect,
    Relation,
}

impl ColumnType {
    pub const ALL: [ColumnType; 10] = [
        ColumnType::Text,
        ColumnType::Number,
        ColumnType::Boolean,
        ColumnType::Date,
        ColumnType::Datetime,
        ColumnType::Email,
        ColumnType::Url,
        ColumnType::Select,
        ColumnType::MultiSelect,
        ColumnType::Relation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Number => "number",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
            ColumnType::Email => "email",
            ColumnType::Url => "url",
            ColumnType::Select => "select",
            ColumnType::MultiSelect => "multi_select",
            ColumnType::Relation => "relation",
        }
    }

    pub fn parse(text: &str) -> Option<ColumnType> {
        ColumnType::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    pub fn names() -> Vec<&'static str> {
        ColumnType::ALL.iter().map(|kind| kind.as_str()).collect()
    }

    fn has_options(self) -> bool {
        matches!(self, ColumnType::Select | ColumnType::MultiSelect)
    }
}

/// A column as a table stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub id: String,
    pub name: String,
    pub kind: ColumnType,
    /// The choices of a select or multi-select column.
    pub options: Vec<String>,
    /// The table a relation column links to.
    pub table_id: Option<String>,
    /// The id of the linked table's column that names its records (relations only).
    pub display_column: Option<String>,
}

impl Column {
    pub fn to_json(&self) -> Value {
        let mut column = Map::new();
        column.insert("id".into(), json!(self.id));
        column.insert("name".into(), json!(self.name));
        column.insert("type".into(), json!(self.kind.as_str()));
        if self.kind.has_options() {
            column.insert("options".into(), json!(self.options));
        }
        if let Some(table) = &self.table_id {
            column.insert("table_id".into(), json!(table));
        }
        if let Some(display) = &self.display_column {
            column.insert("display_column".into(), json!(display));
        }
        Value::Object(column)
    }

    /// Reads a stored column; `None` for anything this code never wrote.
    fn from_stored(value: &Value) -> Option<Column> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Column {
            id: text("id")?,
            name: text("name")?,
            kind: ColumnType::parse(value.get("type")?.as_str()?)?,
            options: value
                .get("options")
                .and_then(Value::as_array)
                .map(|options| options.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            table_id: text("table_id"),
            display_column: text("display_column"),
        })
    }

    /// Checks and normalizes one value for this column (`null` is handled by the caller).
    /// Relation values are checked for shape here and for existence by the caller.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        match self.kind {
            ColumnType::Text => FieldKind::LongText { max: MAX_TEXT_CHARS }.check(value),
            ColumnType::Number => {
                let number = value.as_number().ok_or("must be a number")?;
                let magnitude = number.as_f64().map_or(0.0, f64::abs);
                if magnitude != 0.0 && !(1e-100..=1e100).contains(&magnitude) {
                    return Err("must be between -1e100 and 1e100, and 0 or at least 1e-100 in size".into());
                }
                Ok(value.clone())
            }
            ColumnType::Boolean => FieldKind::Boolean.check(value),
            ColumnType::Date => {
                let text = value.as_str().ok_or("must be a date, like 2026-11-22")?;
                parse_date(text).ok_or_else(|| "must be a date, like 2026-11-22".into())
            }
            ColumnType::Datetime => FieldKind::DateTime.check(value),
            ColumnType::Email => FieldKind::Email.check(value),
            ColumnType::Url => FieldKind::Url.check(value),
            ColumnType::Select => {
                let text = value.as_str().ok_or("must be a string")?;
                if self.options.iter().any(|option| option == text) {
                    Ok(json!(text))
                } else {
                    Err(format!("must be one of {}", self.options.join(", ")))
                }
            }
            ColumnType::MultiSelect => {
                let list = value.as_array().ok_or("must be a list of strings")?;
                let mut chosen: Vec<&str> = Vec::with_capacity(list.len());
                for entry in list {
                    let text = entry.as_str().ok_or("must be a list of strings")?;
                    if !self.options.iter().any(|option| option == text) {
                        return Err(format!(
                            "`{text}` is not a choice; choices: {}",
                            self.options.join(", ")
                        ));
                    }
                    if !chosen.contains(&text) {
                        chosen.push(text);
                    }
                }
                Ok(json!(chosen))
            }
            ColumnType::Relation => {
                let id = value.as_str().ok_or("must be the id of a record of the linked table")?;
                if !space_http::ids::has_shape(id, crate::RECORD_ID_PREFIX) {
                    return Err(format!("`{id}` is not a record id (they look like rec_01…)"));
                }
                Ok(json!(id))
            }
        }
    }

    /// Parses a `where` value (from a query string) into what [`Column::matches`] compares.
    pub fn parse_filter(&self, raw: &str) -> Result<Value, String> {
        match self.kind {
            ColumnType::Number => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .map(|number| json!(number))
                .ok_or_else(|| "must be a number".into()),
            ColumnType::Boolean => match raw {
                "true" => Ok(json!(true)),
                "false" => Ok(json!(false)),
                _ => Err("must be true or false".into()),
            },
            ColumnType::Datetime => parse_datetime(raw)
                .map(|at| json!(at.timestamp_millis()))
                .ok_or_else(|| "must be an RFC 3339 date-time, like 2026-11-22T17:00:00Z".into()),
            ColumnType::Text | ColumnType::Select | ColumnType::MultiSelect | ColumnType::Relation => {
                if raw.chars().count() > MAX_TEXT_CHARS {
                    Err(format!("must be at most {MAX_TEXT_CHARS} characters"))
                } else {
                    Ok(json!(raw))
                }
            }
            ColumnType::Date | ColumnType::Email | ColumnType::Url => self.check(&json!(raw)),
        }
    }

    /// Whether a stored value equals a parsed filter value (multi-select: contains it).
    pub fn matches(&self, stored: Option<&Value>, wanted: &Value) -> bool {
        let Some(stored) = stored else { return false };
        match self.kind {
            ColumnType::Number => stored.as_f64().zip(wanted.as_f64()).is_some_and(|(a, b)| a == b),
            ColumnType::Datetime => stored
                .as_str()
                .and_then(parse_datetime)
                .is_some_and(|at| Some(at.timestamp_millis()) == wanted.as_i64()),
            ColumnType::MultiSelect => stored.as_array().is_some_and(|chosen| chosen.contains(wanted)),
            _ => stored == wanted,
        }
    }
}

/// `2026-11-22` (also accepted with surrounding spaces); normalized to that form.
fn parse_date(text: &str) -> Option<Value> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .map(|date| json!(date.format("%Y-%m-%d").to_string()))
}

/// Orders two values of one column: numbers by value, text case-insensitively, lists
/// element by element. Dates and date-times are stored normalized, so text order is time
/// order.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or_default()
            .partial_cmp(&y.as_f64().unwrap_or_default())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()).then_with(|| x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (left, right) in x.iter().zip(y) {
                let order = compare(left, right);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// The columns of a stored table.
pub fn columns_of(table: &Map<String, Value>) -> Vec<Column> {
    table
        .get("columns")
        .and_then(Value::as_array)
        .map(|columns| columns.iter().filter_map(Column::from_stored).collect())
        .unwrap_or_default()
}

/// Finds a column by id, or else by name.
pub fn find<'a>(columns: &'a [Column], reference: &str) -> Option<&'a Column> {
    columns
        .iter()
        .find(|column| column.id == reference)
        .or_else(|| columns.iter().find(|column| column.name == reference))
        .or_else(|| {
            columns
                .iter()
                .find(|column| column.name.eq_ignore_ascii_case(reference))
        })
}

/// A column as a request describes it: everything optional, so that an entry naming an
/// existing column by `id` changes only what it sends.
#[derive(Debug, Clone, Default)]
pub struct ColumnInput {
    /// Where errors about this entry are reported: `columns[2].` or, for the column
    /// routes, nothing.
    pub label: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<ColumnType>,
    pub options: Option<Vec<String>>,
    pub table_id: Option<String>,
    /// `Some(None)` clears it; a name or an id of the linked table's column otherwise.
    pub display_column: Option<Option<String>>,
}

impl ColumnInput {
    /// An entry that keeps an existing column as it is.
    pub fn keep(column: &Column) -> ColumnInput {
        ColumnInput {
            id: Some(column.id.clone()),
            ..ColumnInput::default()
        }
    }

    fn error(&self, errors: &mut FieldErrors, field: &str, message: impl Into<String>) {
        errors
            .entry(format!("{}{field}", self.label))
            .or_default()
            .push(message.into());
    }
}

const INPUT_PROPERTIES: &[&str] = &["id", "name", "type", "options", "table_id", "display_column"];

/// Reads one column entry; problems go to `errors` under `label`.
pub fn parse_input(value: &Value, label: &str, errors: &mut FieldErrors) -> ColumnInput {
    let mut input = ColumnInput {
        label: label.to_owned(),
        ..ColumnInput::default()
    };
    let Some(object) = value.as_object() else {
        let key = if label.is_empty() {
            "body".to_owned()
        } else {
            label.trim_end_matches('.').to_owned()
        };
        errors
            .entry(key)
            .or_default()
            .push("must be a column object, like {\"name\": \"budget\", \"type\": \"number\"}".into());
        return input;
    };
    for (key, value) in object {
        match key.as_str() {
            "id" => match value.as_str() {
                Some(id) => input.id = Some(id.to_owned()),
                None => input.error(errors, "id", "must be a column id"),
            },
            "name" => match check_name(value) {
                Ok(name) => input.name = Some(name),
                Err(message) => input.error(errors, "name", message),
            },
            "type" => match value.as_str().and_then(ColumnType::parse) {
                Some(kind) => input.kind = Some(kind),
                None => input.error(
                    errors,
                    "type",
                    format!("must be one of {}", ColumnType::names().join(", ")),
                ),
            },
            "options" => match check_options(value) {
                Ok(options) => input.options = Some(options),
                Err(message) => input.error(errors, "options", message),
            },
            "table_id" => match value.as_str() {
                Some(table) if space_http::ids::has_shape(table.trim(), crate::TABLE_ID_PREFIX) => {
                    input.table_id = Some(table.trim().to_owned());
                }
                _ => input.error(errors, "table_id", "must be the id of a table of this Space"),
            },
            "display_column" => match value {
                Value::Null => input.display_column = Some(None),
                Value::String(reference) if !reference.trim().is_empty() => {
                    input.display_column = Some(Some(reference.trim().to_owned()));
                }
                _ => input.error(
                    errors,
                    "display_column",
                    "must be the name or id of a column of the linked table",
                ),
            },
            other => input.error(
                errors,
                other,
                format!(
                    "is not a property of a column; columns have {}",
                    INPUT_PROPERTIES.join(", ")
                ),
            ),
        }
    }
    input
}

fn check_name(value: &Value) -> Result<String, String> {
    let name = value.as_str().ok_or("must be a string")?.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(|c| c.is_control() || c == '[' || c == ']') || name.starts_with('-') {
        return Err(
            "must not start with `-` or hold `[`, `]` or control characters (they mark filters and sorting)".into(),
        );
    }
    if RESERVED_NAMES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "`{name}` is reserved; reserved names: {}",
            RESERVED_NAMES.join(", ")
        ));
    }
    Ok(name.to_owned())
}

fn check_options(value: &Value) -> Result<Vec<String>, String> {
    let list = value.as_array().ok_or("must be a list of strings")?;
    // Counted as sent, as the schema's maxItems does; repeats are then dropped.
    if list.is_empty() || list.len() > MAX_OPTIONS {
        return Err(format!("must list 1 to {MAX_OPTIONS} choices"));
    }
    let mut options: Vec<String> = Vec::with_capacity(list.len());
    for entry in list {
        let raw = entry.as_str().ok_or("must be a list of strings")?;
        let Some(option) = space_http::fields::label(raw, MAX_OPTION_CHARS) else {
            return Err(format!(
                "each option must be 1 to {MAX_OPTION_CHARS} printable characters"
            ));
        };
        if !options.iter().any(|known| known == option) {
            options.push(option.to_owned());
        }
    }
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(format!("must list 1 to {MAX_OPTIONS} choices"));
    }
    Ok(options)
}

/// A column resolved against the table's current columns, before its relation (if any)
/// has been checked against the linked table.
#[derive(Debug, Clone)]
pub struct Draft {
    pub column: Column,
    pub label: String,
    /// The display column as the request named it, still to be resolved in the linked
    /// table (an id kept from before resolves to itself).
    pub display_reference: Option<String>,
}

/// Turns entries into the table's next columns: entries with an `id` change that column,
/// entries without one add a column; existing columns no entry names are removed. On a new
/// table every entry is new (ids copied from another table are ignored).
pub fn resolve(inputs: &[ColumnInput], existing: &[Column], new_table: bool, errors: &mut FieldErrors) -> Vec<Draft> {
    let mut drafts = Vec::with_capacity(inputs.len());
    let mut seen_ids = HashSet::new();
    for input in inputs {
        let base = match (&input.id, new_table) {
            (Some(id), false) => match existing.iter().find(|column| &column.id == id) {
                Some(column) if seen_ids.insert(id.clone()) => Some(column),
                Some(_) => {
                    input.error(errors, "id", "names a column that another entry already names");
                    continue;
                }
                None => {
                    input.error(
                        errors,
                        "id",
                        format!("no column with id `{id}` in this table; leave `id` out to add a column"),
                    );
                    continue;
                }
            },
            _ => None,
        };
        let Some(name) = input.name.clone().or_else(|| base.map(|column| column.name.clone())) else {
            input.error(errors, "name", "The name field is required.");
            continue;
        };
        let Some(kind) = input.kind.or(base.map(|column| column.kind)) else {
            input.error(
                errors,
                "type",
                format!("The type field is required: one of {}.", ColumnType::names().join(", ")),
            );
            continue;
        };
        if let Some(base) = base
            && base.kind != kind
        {
            input.error(
                errors,
                "type",
                format!(
                    "a column's type cannot change (this one is {}); add a new column and remove this one",
                    base.kind.as_str()
                ),
            );
            continue;
        }
        let options = match (kind.has_options(), &input.options) {
            (true, Some(options)) => options.clone(),
            (true, None) => match base {
                Some(base) => base.options.clone(),
                None => {
                    input.error(
                        errors,
                        "options",
                        format!("{} columns need options: a list of their choices", kind.as_str()),
                    );
                    continue;
                }
            },
            (false, Some(_)) => {
                input.error(errors, "options", "only select and multi_select columns have options");
                continue;
            }
            (false, None) => Vec::new(),
        };
        let is_relation = kind == ColumnType::Relation;
        let table_id = match (is_relation, &input.table_id, base.and_then(|b| b.table_id.as_ref())) {
            (true, Some(wanted), Some(current)) if wanted != current => {
                input.error(
                    errors,
                    "table_id",
                    "a relation's linked table cannot change; add a new relation column",
                );
                continue;
            }
            (true, wanted, current) => match wanted.clone().or_else(|| current.cloned()) {
                Some(table) => Some(table),
                None => {
                    input.error(
                        errors,
                        "table_id",
                        "relation columns need the id of the table they link to",
                    );
                    continue;
                }
            },
            (false, Some(_), _) => {
                input.error(errors, "table_id", "only relation columns link to a table");
                continue;
            }
            (false, None, _) => None,
        };
        let display_reference = match (is_relation, &input.display_column) {
            (true, Some(reference)) => reference.clone(),
            (true, None) => base.and_then(|b| b.display_column.clone()),
            (false, Some(_)) => {
                input.error(errors, "display_column", "only relation columns have a display column");
                continue;
            }
            (false, None) => None,
        };
        let id = base.map(|column| column.id.clone()).unwrap_or_else(|| new_id("col"));
        drafts.push(Draft {
            column: Column {
                id,
                name,
                kind,
                options,
                table_id,
                display_column: None,
            },
            label: input.label.clone(),
            display_reference,
        });
    }
    let mut names = HashSet::new();
    for draft in &drafts {
        if !names.insert(draft.column.name.to_lowercase()) {
            errors
                .entry(format!("{}name", draft.label))
                .or_default()
                .push(format!("another column is already named `{}`", draft.column.name));
        }
    }
    if drafts.len() > MAX_COLUMNS {
        errors
            .entry("columns".into())
            .or_default()
            .push(format!("a table has at most {MAX_COLUMNS} columns"));
    }
    if drafts
        .iter()
        .filter(|draft| draft.column.kind == ColumnType::Relation)
        .count()
        > MAX_RELATIONS
    {
        errors
            .entry("columns".into())
            .or_default()
            .push(format!("a table has at most {MAX_RELATIONS} relation columns"));
    }
    drafts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: ColumnType) -> Column {
        Column {
            id: "col_1".into(),
            name: "c".into(),
            kind,
            options: vec!["linkedin".into(), "x".into()],
            table_id: None,
            display_column: None,
        }
    }

    #[test]
    fn values_are_checked_and_normalized_by_type() {
        assert_eq!(column(ColumnType::Number).check(&json!(10)), Ok(json!(10)));
        assert!(column(ColumnType::Number).check(&json!("10")).is_err());
        assert!(column(ColumnType::Number).check(&json!(1e300)).is_err());
        assert_eq!(
            column(ColumnType::Date).check(&json!("2026-1-2")),
            Ok(json!("2026-01-02"))
        );
        assert!(column(ColumnType::Date).check(&json!("2026-02-30")).is_err());
        assert_eq!(
            column(ColumnType::Email).check(&json!("A@Example.com")),
            Ok(json!("a@example.com"))
        );
        assert_eq!(column(ColumnType::Select).check(&json!("x")), Ok(json!("x")));
        assert!(column(ColumnType::Select).check(&json!("tiktok")).is_err());
        assert_eq!(
            column(ColumnType::MultiSelect).check(&json!(["x", "x", "linkedin"])),
            Ok(json!(["x", "linkedin"]))
        );
        assert!(column(ColumnType::Relation).check(&json!("nope")).is_err());
    }

    #[test]
    fn filters_compare_by_type() {
        let number = column(ColumnType::Number);
        let wanted = number.parse_filter("10").unwrap();
        assert!(number.matches(Some(&json!(10)), &wanted));
        assert!(number.matches(Some(&json!(10.0)), &wanted));
        assert!(!number.matches(None, &wanted));
        assert!(number.parse_filter("ten").is_err());
        let multi = column(ColumnType::MultiSelect);
        assert!(multi.matches(Some(&json!(["x", "linkedin"])), &multi.parse_filter("x").unwrap()));
    }

    #[test]
    fn ordering_is_by_value() {
        assert_eq!(compare(&json!(2), &json!(10)), Ordering::Less);
        assert_eq!(compare(&json!("apple"), &json!("Banana")), Ordering::Less);
        assert_eq!(compare(&json!(["a"]), &json!(["a", "b"])), Ordering::Less);
    }

    #[test]
    fn names_are_checked() {
        let mut errors = FieldErrors::new();
        parse_input(&json!({"name": "id", "type": "text"}), "columns[0].", &mut errors);
        parse_input(
            &json!({"name": "-x", "type": "nope", "colour": 1}),
            "columns[1].",
            &mut errors,
        );
        assert!(errors.contains_key("columns[0].name"));
        assert!(errors.contains_key("columns[1].name"));
        assert!(errors.contains_key("columns[1].type"));
        assert!(errors.contains_key("columns[1].colour"));
    }
}
