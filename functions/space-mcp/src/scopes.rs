//! The default tool list: one tool per scope (`read_contacts`, `write_contacts`,
//! `run_pages`), whose `operation` argument names any operation of that scope.
//!
//! Why per scope: the list's size is bounded by the scope catalogue (59 scopes), not by
//! the operations, which grow with every family; each operation costs one line of a
//! description instead of a whole input schema. A tool still never mixes a read with a
//! change or a live action, so its annotations stay exact: `read_*` is read-only,
//! `write_*` says whether it can delete, `run_*` reaches outside the Space. An
//! operation's full input schema is one `search_operations` call away.
//!
//! The names put the action first so that they never meet an operation's name, which
//! always starts with its domain (`contacts_create`).

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::json;
use space_auth::{Action, Scope};
use space_http::operation::Effect;

use crate::tools::{IDEMPOTENCY_KEY, IF_MATCH, ToolEntry, object};

/// The argument naming the operation to run.
pub const OPERATION: &str = "operation";
/// The argument holding the operation's own arguments.
pub const ARGUMENTS: &str = "arguments";

/// One scope's operations as one tool.
pub struct ScopeTool {
    pub scope: Scope,
    pub tool: Tool,
    /// Positions of the scope's operations in the catalogue's entries.
    pub operations: Vec<usize>,
}

/// `read_contacts`, `write_tasks`, `run_pages`.
pub fn tool_name(scope: Scope) -> String {
    format!("{}_{}", scope.action.as_str(), scope.domain.as_str())
}

/// Groups `entries` by scope, in the catalogue's order.
pub fn group(entries: &[ToolEntry]) -> Vec<ScopeTool> {
    let mut groups: Vec<(Scope, Vec<usize>)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let scope = entry.scope();
        match groups.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, members)) => members.push(index),
            None => groups.push((scope, vec![index])),
        }
    }
    groups
        .into_iter()
        .map(|(scope, operations)| {
            let members: Vec<&ToolEntry> = operations.iter().map(|&i| &entries[i]).collect();
            ScopeTool {
                scope,
                tool: build(scope, &members),
                operations,
            }
        })
        .collect()
}

fn build(scope: Scope, members: &[&ToolEntry]) -> Tool {
    let what = match scope.action {
        Action::Read => "Lists and reads; changes nothing.",
        Action::Write => "Drafts: creates (idempotency_key), changes and deletes (if_match).",
        Action::Run => "Live actions, seen outside the Space.",
    };
    let mut description = format!(
        "{}. {what} Needs `{scope}`. Pass `{OPERATION}` and its `{ARGUMENTS}`; search_operations has their \
         schemas. * = required:",
        scope.domain.about()
    );
    for entry in members {
        description.push_str("\n- ");
        description.push_str(&entry.operation.name);
        description.push('(');
        description.push_str(&entry.signature());
        description.push_str("): ");
        description.push_str(&entry.operation.summary);
    }
    let names: Vec<&str> = members.iter().map(|e| e.operation.name.as_str()).collect();
    let input = json!({
        "type": "object",
        "properties": {
            OPERATION: {"type": "string", "enum": names},
            ARGUMENTS: {"type": "object", "description": "The operation's arguments: path and query parameters and body fields side by side."}
        },
        "required": [OPERATION],
        "additionalProperties": false
    });
    let effects = || members.iter().map(|e| e.operation.effect);
    let title = format!("{}: {}", scope.domain.as_str(), scope.action.as_str());
    let mut annotations = ToolAnnotations::with_title(title)
        .read_only(effects().all(Effect::is_read_only))
        .idempotent(effects().all(Effect::is_idempotent))
        .open_world(effects().any(|e| e == Effect::Live));
    if !effects().all(Effect::is_read_only) {
        annotations.destructive_hint = Some(effects().any(Effect::is_destructive));
    }
    Tool::new(tool_name(scope), description, Arc::new(object(input))).with_annotations(annotations)
}

/// Argument names a signature leaves out: the description states them once per tool.
pub(crate) fn is_common_argument(name: &str) -> bool {
    name == IDEMPOTENCY_KEY || name == IF_MATCH
}
