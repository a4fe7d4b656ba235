//! Every space operation is a tool, named and shaped from the catalogue.

use http::Method;
use serde_json::{Value, json};
use space_http::operation::{Access, Effect};
use space_mcp::catalogue;
use space_mcp::tools::{IDEMPOTENCY_KEY, IF_MATCH};

#[test]
fn every_space_operation_is_exactly_one_tool() {
    let operations = space_catalogue::operations();
    let space_operations: Vec<_> = operations
        .iter()
        .filter(|o| matches!(o.access, Access::Space(_)))
        .collect();
    let tools = catalogue().entries();
    assert_eq!(tools.len(), space_operations.len());
    for (tool, operation) in tools.iter().zip(&space_operations) {
        assert_eq!(tool.tool.name, operation.name, "tools keep the catalogue's order");
        let domain = operation.domain().map(|d| d.as_str()).unwrap_or_default();
        assert!(
            operation.name.starts_with(domain),
            "{} is named <domain>_<operation>",
            operation.name
        );
    }
}

#[test]
fn input_schemas_are_parameters_and_body_side_by_side() {
    for entry in catalogue().entries() {
        let schema = entry.input_schema();
        let properties = schema["properties"].as_object().expect("an object schema");
        for param in &entry.operation.params {
            assert!(
                properties.contains_key(param.name),
                "{}: {} missing",
                entry.operation.name,
                param.name
            );
        }
        if let Some(body) = &entry.operation.body {
            for (field, field_schema) in body["properties"].as_object().into_iter().flatten() {
                assert!(
                    !entry.operation.params.iter().any(|p| p.name == field),
                    "{}: body field {field} collides with a parameter",
                    entry.operation.name
                );
                assert_eq!(
                    &properties[field], field_schema,
                    "{}: {field} is the REST body's schema",
                    entry.operation.name
                );
            }
        }
        assert_eq!(
            properties.contains_key(IDEMPOTENCY_KEY),
            entry.operation.method == Method::POST
        );
        let changes = matches!(
            entry.operation.effect,
            Effect::Update | Effect::Replace | Effect::Delete
        );
        assert_eq!(properties.contains_key(IF_MATCH), changes, "{}", entry.operation.name);
    }
}

#[test]
fn annotations_follow_the_effect() {
    let tool = |name: &str| {
        catalogue()
            .get(name)
            .unwrap_or_else(|| panic!("{name} exists"))
            .tool
            .clone()
    };
    let list = tool("contacts_list").annotations.unwrap();
    assert_eq!(list.read_only_hint, Some(true));
    let delete = tool("contacts_delete").annotations.unwrap();
    assert_eq!(
        (delete.destructive_hint, delete.idempotent_hint),
        (Some(true), Some(true))
    );
    let create = tool("tasks_create").annotations.unwrap();
    assert_eq!(
        (create.read_only_hint, create.destructive_hint, create.open_world_hint),
        (Some(false), Some(false), Some(false))
    );
}

#[test]
fn arguments_split_back_into_the_rest_request() {
    let entry = catalogue().get("contacts_notes_update").expect("notes update");
    let arguments = json!({"id": "con_1", "note_id": "note_2", "body": "Hello", "if_match": 3});
    let Value::Object(arguments) = arguments else {
        unreachable!()
    };
    let parts = entry.split(arguments).expect("valid arguments");
    assert_eq!(parts.path["id"], "con_1");
    assert_eq!(parts.path["note_id"], "note_2");
    assert_eq!(parts.body, json!({"body": "Hello"}));
    assert_eq!(parts.if_match, Some(space_http::operation::IfMatch::Version(3)));

    let list = catalogue().get("tasks_list").expect("tasks list");
    let Value::Object(arguments) = json!({"status": "open", "limit": 5, "surprise": true}) else {
        unreachable!()
    };
    let error = list.split(arguments).expect_err("unknown arguments are refused");
    assert!(error.fields().is_some_and(|f| f.contains_key("surprise")));
}

#[test]
fn the_binary_carries_exactly_the_backends_its_permissions_allow() {
    let functions = space_catalogue::functions();
    let mcp = functions
        .iter()
        .find(|f| f.name == space_catalogue::MCP_FUNCTION)
        .expect("the MCP function is in the manifest");
    // The catalogue computes the MCP function's permissions from the families it serves;
    // the binary links the backends of `space_mcp::BACKENDS`. They must agree, or the
    // function either lacks a permission or carries an SDK it may not use.
    // (as sets: the manifest lists them in the order the families are declared)
    let linked = space_catalogue::aws_access(space_mcp::BACKENDS);
    assert_eq!(linked.len(), mcp.aws.len(), "{linked:?} vs {:?}", mcp.aws);
    assert!(
        linked.iter().all(|access| mcp.aws.contains(access)),
        "{linked:?} vs {:?}",
        mcp.aws
    );
}

/// Name, description and input schema in tokens (bytes / 4), what a client without
/// deferred loading pays on every turn.
fn tokens(tool: &rmcp::model::Tool) -> usize {
    let schema = serde_json::to_string(&*tool.input_schema).unwrap_or_default();
    (tool.name.len() + tool.description.as_deref().map_or(0, str::len) + schema.len()) / 4
}

/// About 300 operations once every domain of the scope catalogue has its families.
const PLANNED_OPERATIONS: usize = 300;

#[test]
fn every_operation_is_in_exactly_one_scope_tool_of_its_scope() {
    let entries = catalogue().entries();
    let mut seen = vec![0; entries.len()];
    for group in catalogue().scope_tools() {
        let listed = group.tool.input_schema["properties"]["operation"]["enum"]
            .as_array()
            .expect("an enum of operations");
        assert_eq!(listed.len(), group.operations.len());
        for (&index, name) in group.operations.iter().zip(listed) {
            seen[index] += 1;
            assert_eq!(entries[index].operation.name, *name);
            assert_eq!(entries[index].scope(), group.scope, "{name}");
            assert!(
                catalogue().get(&group.tool.name).is_none(),
                "{} is also an operation",
                group.tool.name
            );
        }
    }
    assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
}

#[test]
fn scope_tools_are_annotated_by_what_they_can_do() {
    let entries = catalogue().entries();
    for group in catalogue().scope_tools() {
        let annotations = group.tool.annotations.clone().expect("annotations");
        let effects: Vec<Effect> = group.operations.iter().map(|&i| entries[i].operation.effect).collect();
        let name = &group.tool.name;
        assert_eq!(
            annotations.read_only_hint,
            Some(effects.iter().all(|e| *e == Effect::Read)),
            "{name}"
        );
        assert_eq!(
            annotations.open_world_hint,
            Some(effects.contains(&Effect::Live)),
            "{name}"
        );
        if name.starts_with("read_") {
            assert_eq!(annotations.destructive_hint, None, "{name}");
        } else {
            assert_eq!(
                annotations.destructive_hint,
                Some(effects.iter().any(|e| matches!(e, Effect::Delete | Effect::Replace))),
                "{name}"
            );
        }
    }
    let by_name = |name: &str| {
        catalogue()
            .scope_tools()
            .iter()
            .find(|g| g.tool.name == name)
            .and_then(|g| g.tool.annotations.clone())
            .unwrap_or_else(|| panic!("{name} exists"))
    };
    assert_eq!(by_name("read_contacts").read_only_hint, Some(true));
    assert_eq!(by_name("write_contacts").destructive_hint, Some(true));
    assert_eq!(by_name("run_pages").open_world_hint, Some(true));
}

/// The default list's size is bounded by the scope catalogue, and what grows with the
/// operations (one line each) fits 20,000 tokens at the planned count.
#[test]
fn the_default_tool_list_fits_any_client_at_the_planned_size() {
    let scopes = space_auth::Scope::all().count();
    assert!(scopes < 128, "one tool per scope plus search_operations: {scopes}");
    let groups = catalogue().scope_tools();
    let total: usize = groups.iter().map(|g| tokens(&g.tool)).sum();
    let operations = catalogue().entries().len();
    let projected = total * PLANNED_OPERATIONS / operations;
    assert!(
        projected <= 20_000,
        "{total} tokens for {operations} operations is {projected} at {PLANNED_OPERATIONS}"
    );
}
