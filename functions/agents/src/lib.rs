//! Cloud agents: a name, instructions, a model, the operations the agent may call, and
//! whether it is enabled.
//!
//! `operations` are checked against the catalogue of space operations. That catalogue
//! (`space-catalogue`) depends on every family, this one included, so this crate cannot
//! ask it: it reads `shared/space-catalogue/operations.txt`, which `space-catalogue`
//! generates and a test there keeps equal to the real list.

use axum::Router;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{CustomKind, Field, FieldKind};
use space_http::resource::{CustomFilter, Filter, Resource, parse_bool};
use space_http::{Engine, FieldErrors, Operation};

/// Every space operation's name, one per line (generated; see the crate docs).
const CATALOGUE: &str = include_str!("../../../shared/space-catalogue/operations.txt");

/// The names of every operation a space key, and so an agent, can call.
pub fn known_operations() -> impl Iterator<Item = &'static str> {
    CATALOGUE
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// The agent resource.
pub fn agents() -> Resource {
    Resource {
        domain: Domain::Agents,
        name: "agents",
        collection: "agents",
        path: "/agents",
        item_param: "id",
        singular: "agent",
        plural: "agents",
        event_prefix: "agent",
        id_prefix: "agt",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "The agent's name.").required(),
            Field::new(
                "instructions",
                FieldKind::LongText { max: 50_000 },
                "What the agent does and how, in markdown.",
            )
            .default(|| json!("")),
            Field::new("model", MODEL, "The model it runs on, e.g. `claude-sonnet-4-5`.").required(),
            Field::new(
                "operations",
                FieldKind::Tags,
                "Operation names it may call (`contacts_list`, `tasks_create`, …, as in the MCP tool list), or \
                 `<domain>_*` for every operation of a domain.",
            )
            .default(|| Value::Array(Vec::new())),
            Field::new("enabled", FieldKind::Boolean, "Whether it runs.").default(|| json!(true)),
        ],
        filters: vec![
            Filter::Custom(CustomFilter {
                param: "enabled",
                description: "`true`: only enabled agents; `false`: only disabled ones.",
                schema: || json!({"type": "boolean"}),
                parse: parse_bool,
                matches: |agent, wanted, _| agent.get("enabled") == Some(wanted),
            }),
            Filter::Search {
                param: "q",
                fields: &["name", "instructions"],
            },
        ],
        rules: Some(rules),
    }
}

/// Checks what a single field cannot: operations against the catalogue, the model's name.
fn rules(agent: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    let unknown: Vec<String> = agent
        .get("operations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| !is_known(name))
        .map(|name| {
            format!("`{name}` is not an operation of the catalogue; use names like `contacts_list`, or `contacts_*`")
        })
        .collect();
    if !unknown.is_empty() {
        errors.insert("operations".into(), unknown);
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// A model's name: letters, digits and `. - _ : / @`.
const MODEL: FieldKind = FieldKind::Custom(CustomKind {
    schema: || json!({"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[A-Za-z0-9._:/@-]+$"}),
    check: |value| {
        let model = value.as_str().ok_or("must be a string")?;
        let model_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/' | '@');
        if model.is_empty() || model.len() > 100 || !model.chars().all(model_chars) {
            return Err(
                "must be a model name of 1 to 100 letters, digits and . - _ : / @, like claude-sonnet-4-5".into(),
            );
        }
        Ok(Value::String(model.to_owned()))
    },
});

/// An exact operation name, or `<prefix>_*` matching at least one.
pub fn is_known(name: &str) -> bool {
    match name.strip_suffix('*') {
        Some(prefix) => prefix.ends_with('_') && known_operations().any(|known| known.starts_with(prefix)),
        None => known_operations().any(|known| known == name),
    }
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = agents().operations();
    space_http::operation::describe(
        &mut operations,
        &["agents_create", "agents_replace", "agents_update"],
        "`operations` names operations of the catalogue (as in the MCP tool list or `GET /openapi.json`), \
         or `<domain>_*`; otherwise 422.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_domain_wildcards_are_checked_against_the_catalogue() {
        assert!(is_known("contacts_list"));
        assert!(is_known("agents_create"));
        assert!(is_known("contacts_*"));
        assert!(!is_known("contacts_explode"));
        assert!(!is_known("contact*"));
        assert!(!is_known("nothing_*"));
        assert!(!is_known("*"));
    }
}
