//! `llms.txt` and `llms-full.txt` (the llmstxt.org shape: an H1, a one-paragraph summary,
//! then sections of links with a line each), generated from the catalogue like the OpenAPI
//! document, so an agent reading them sees exactly the operations the server has.
//!
//! `llms.txt` lists every operation in one line; `llms-full.txt` adds its parameters, body
//! fields, an example request built from its schemas, and what it answers.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use space_auth::{Action, Domain};
use space_http::operation::{Access, ParamIn};
use space_http::{Operation, event_types};

use crate::{MCP_PATH, operations};

const TITLE: &str = "# Space API";
const SUMMARY: &str = "> One scoped, revocable API key lets an AI agent act inside one business workspace \
(a Space) over REST and MCP. A key is locked to one Space and carries scopes per domain: `read` \
lists and inspects, `write` creates and edits drafts, `run` performs live actions (publish, send, \
post, reply, run). It can never reach another Space, members, money or secret values.";

/// An enum longer than this is summed up (its count and first values), not listed.
const LONG_ENUM: usize = 12;

/// Where the full document lives, for the links of the short one.
const FULL_PATH: &str = "/functions/v1/space-api/llms-full.txt";

/// The short document: what the API is, how to authenticate, the scopes, MCP, and one line
/// per operation.
pub fn llms_txt() -> String {
    let mut text = preamble();
    let _ = writeln!(
        text,
        "\n## Events\n\n- [Event types]({FULL_PATH}#event-types): the {} types the feed (`GET /events`), webhooks \
         and realtime carry, and which can start an automation",
        event_types::ALL.len()
    );
    for (group, operations) in grouped() {
        let _ = writeln!(text, "\n## {}\n", heading(group));
        for operation in operations {
            let _ = writeln!(
                text,
                "- [{}]({FULL_PATH}#{}): `{} {}`: {} ({})",
                operation.name,
                operation.name,
                operation.method,
                operation.full_path(),
                operation.summary.trim_end_matches('.'),
                access(&operation)
            );
        }
    }
    text
}

/// The full document: the short one's preamble, the event types, then every operation in
/// detail.
pub fn llms_full_txt() -> String {
    let mut text = preamble();
    text.push_str("\n## Event types\n\n");
    text.push_str(&event_types_table());
    for (group, operations) in grouped() {
        let _ = writeln!(text, "\n## {}", heading(group));
        for operation in operations {
            describe(&mut text, &operation);
        }
    }
    text
}

/// Every event type in a Markdown table: its name, what it means, whether an automation
/// may start on it. Also `docs/events.md`, under a heading of its own.
pub fn event_types_table() -> String {
    let mut text = String::from(
        "Every change writes one event, in the same transaction: `GET /events` lists them (`?types=contact.*`), \
         webhooks post them (`events`: a type, a prefix with `.*`, or `*`), realtime streams them. Each \
         carries `id`, `type`, `created_at`, `actor`, `resource` and `data.object` (the resource as the API \
         shows it; an update adds `data.previous`, the earlier value of each changed field). A resource too large \
         for one event (over 64 KiB with `previous`, a long document) has its largest fields left out, \
         named in `data.omitted_fields`: read the resource for them.\n\n\
         | type | what happened | starts an automation |\n|---|---|---|\n",
    );
    for event in event_types::ALL {
        let _ = writeln!(
            text,
            "| `{}` | {} | {} |",
            event.name,
            event.about,
            if event.starts_automations { "yes" } else { "—" }
        );
    }
    text
}

fn preamble() -> String {
    let mut text = format!("{TITLE}\n\n{SUMMARY}\n\n");
    text.push_str(
        "Base URLs (locally `http://127.0.0.1:8787`): the Space API at `/functions/v1/space-api`, \
         the account API (the owner's: Spaces, keys, secrets) at `/functions/v1/account-api`, MCP \
         (streamable HTTP) at `/functions/v1/space-mcp`. The OpenAPI document: \
         `/functions/v1/space-api/openapi.json`.\n\n",
    );
    text.push_str("## Authentication\n\n");
    text.push_str(
        "- Send `Authorization: Bearer wks_live_…` (a space key) on every Space API and MCP call; the \
         account API takes the owner's `wka_live_…` key. Keys are shown once, when minted.\n\
         - Errors are JSON: `{\"error\": {\"code\", \"message\", \"fields\"?, \"request_id\"}}`: 401 without a \
         valid key, 403 naming the missing scope, 404 for anything outside the key's Space, 422 with a \
         message per field, 429 with `Retry-After`.\n\
         - POST takes `Idempotency-Key`; items carry an `ETag` and writes honour `If-Match`. Lists answer \
         `{\"data\": [...], \"next_cursor\"}`: pass `cursor` to continue.\n",
    );
    text.push_str("\n## Scopes\n\n| domain | read | write | run | what it covers |\n|---|---|---|---|---|\n");
    for domain in Domain::ALL {
        let mark = |action: Action| {
            if domain.actions().contains(&action) {
                "yes"
            } else {
                "—"
            }
        };
        let _ = writeln!(
            text,
            "| `{}` | {} | {} | {} | {} |",
            domain.as_str(),
            mark(Action::Read),
            mark(Action::Write),
            mark(Action::Run),
            domain.about()
        );
    }
    let _ = write!(
        text,
        "\n## MCP\n\n- [Endpoint]({MCP_PATH}): streamable HTTP with the same key; `tools/list` shows only what \
         the key's scopes allow: one tool per scope (`read_contacts`, `write_contacts`, `run_pages`), called \
         with `{{\"operation\": \"contacts_create\", \"arguments\": {{…}}}}` (an operation below), and \
         `search_operations`, which returns an operation's input schema. `?mode=operations` lists one tool per \
         operation (named as below); `?mode=compact` two tools; `?toolsets=contacts,tasks` narrows any list.\n\
         - Claude Code: `claude mcp add --transport http space http://127.0.0.1:8787{MCP_PATH} --header \
         \"Authorization: Bearer $KEY\"`\n\
         - Cursor: `.cursor/mcp.json`: `{{\"mcpServers\": {{\"space\": {{\"url\": \"http://127.0.0.1:8787{MCP_PATH}\", \
         \"headers\": {{\"Authorization\": \"Bearer ${{env:KEY}}\"}}}}}}}}`\n"
    );
    text
}

/// Operations in catalogue order, grouped by domain (or `account`, `public`) in the order
/// each group first appears.
pub fn grouped() -> Vec<(&'static str, Vec<Operation>)> {
    let mut groups: Vec<(&'static str, Vec<Operation>)> = Vec::new();
    for operation in operations() {
        let group = operation.group();
        match groups.iter_mut().find(|(name, _)| *name == group) {
            Some((_, members)) => members.push(operation),
            None => groups.push((group, vec![operation])),
        }
    }
    groups
}

fn heading(group: &str) -> String {
    match group {
        "account" => "Account API (owner key)".to_owned(),
        "public" => "Public routes (no key)".to_owned(),
        domain => match domain.parse::<Domain>() {
            Ok(parsed) => format!("{domain}: {}", parsed.about()),
            Err(_) => domain.to_owned(),
        },
    }
}

fn access(operation: &Operation) -> String {
    match operation.access {
        Access::Space(scope) => format!("scope `{scope}`"),
        Access::Account => "account key".to_owned(),
        Access::Public { .. } => "no key".to_owned(),
    }
}

fn describe(text: &mut String, operation: &Operation) {
    let _ = writeln!(text, "\n### {}\n", operation.name);
    let _ = writeln!(
        text,
        "`{} {}`: {}. Needs: {}.",
        operation.method,
        operation.full_path(),
        operation.summary.trim_end_matches('.'),
        access(operation)
    );
    if !operation.params.is_empty() {
        text.push_str("\nParameters:\n");
        for param in &operation.params {
            let place = match param.location {
                ParamIn::Path => "path",
                ParamIn::Query => "query",
            };
            let _ = writeln!(
                text,
                "- `{}` ({place}, {}{}){}",
                param.name,
                type_of(&param.schema),
                if param.required { ", required" } else { "" },
                sentence(&param.description)
            );
        }
    }
    if let Some(body) = &operation.body {
        text.push_str("\nBody fields:\n");
        let required = required_of(body);
        for (name, schema) in properties_of(body) {
            let _ = writeln!(
                text,
                "- `{name}` ({}{}){}",
                type_of(schema),
                if required.contains(&name.as_str()) {
                    ", required"
                } else {
                    ""
                },
                sentence(schema.get("description").and_then(Value::as_str).unwrap_or_default())
            );
        }
    }
    let path = example_path(operation);
    let authorization = match operation.access {
        Access::Space(_) => " -H \"Authorization: Bearer $KEY\"",
        Access::Account => " -H \"Authorization: Bearer $ACCOUNT_KEY\"",
        Access::Public { .. } => "",
    };
    let _ = write!(
        text,
        "\nExample:\n\n```sh\ncurl -X {} \"$BASE{path}\"{authorization}",
        operation.method
    );
    if let Some(body) = operation.body.as_ref().filter(|_| !operation.raw_body) {
        let _ = write!(
            text,
            " -H 'Content-Type: application/json' -d '{}'",
            example(body).to_string().replace('\'', "'\\''")
        );
    }
    text.push_str("\n```\n");
    match &operation.response {
        Some(response) => {
            let _ = writeln!(
                text,
                "\nAnswers {}:\n\n```json\n{}\n```",
                operation.success.as_u16(),
                example(response)
            );
        }
        // An operation that is documented only to refuse (launching an ad campaign).
        None if !operation.success.is_success() => {
            let _ = writeln!(
                text,
                "\nAnswers {} with the error envelope.",
                operation.success.as_u16()
            );
        }
        None => {
            let _ = writeln!(text, "\nAnswers {} with no body.", operation.success.as_u16());
        }
    }
}

fn sentence(description: &str) -> String {
    if description.is_empty() {
        String::new()
    } else {
        format!(": {description}")
    }
}

fn example_path(operation: &Operation) -> String {
    let mut path = operation.full_path();
    for param in operation.params.iter().filter(|param| param.location == ParamIn::Path) {
        let value = example(&param.schema);
        let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
        path = path.replace(&format!("{{{}}}", param.name), &value);
    }
    path
}

fn properties_of(schema: &Value) -> Vec<(&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.iter().collect())
        .unwrap_or_default()
}

fn required_of(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A short type for a schema: `string`, `integer`, `string: a | b`, `array of string`, …
fn type_of(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_owned))
            .collect();
        if names.len() > LONG_ENUM {
            let kind = schema.get("title").and_then(Value::as_str).unwrap_or("value");
            return format!("one of {} {kind}s, e.g. {}, …", names.len(), names[..3].join(" | "));
        }
        return format!("one of {}", names.join(" | "));
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" or "),
        _ if schema.get("oneOf").is_some() || schema.get("anyOf").is_some() => "one of several shapes".to_owned(),
        _ => "any".to_owned(),
    };
    match (
        kind.as_str(),
        schema.get("items"),
        schema.get("format").and_then(Value::as_str),
    ) {
        ("array", Some(items), _) => format!("array of {}", type_of(items)),
        (_, _, Some(format)) => format!("{kind}, {format}"),
        _ => kind,
    }
}

/// A value the schema accepts: its own example or default if it has one, else one built
/// from its type. An object shows its required fields and those with an example of their
/// own (or, with neither, its first field): what is needed, not everything possible.
pub fn example(schema: &Value) -> Value {
    let listed = schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|examples| examples.first());
    if let Some(example) = schema.get("example").or(listed).or_else(|| schema.get("default")) {
        return example.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    let first_shape = ["oneOf", "anyOf"].iter().find_map(|key| {
        schema
            .get(*key)
            .and_then(Value::as_array)
            .and_then(|shapes| shapes.first())
    });
    // An object's `anyOf` of `required` lists (one of these fields) is no shape of its own.
    if let Some(first) = first_shape.filter(|_| schema.get("properties").is_none()) {
        return example(first);
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => return Value::Null,
    };
    match kind {
        "object" => {
            let mut required = required_of(schema);
            required.extend(first_shape.map(required_of).unwrap_or_default());
            let properties = properties_of(schema);
            let mut fields: Map<String, Value> = properties
                .iter()
                .filter(|(name, property)| required.contains(&name.as_str()) || property.get("example").is_some())
                .map(|(name, property)| ((*name).clone(), example(property)))
                .collect();
            if let (true, Some((name, property))) = (fields.is_empty(), properties.first()) {
                fields.insert((*name).clone(), example(property));
            }
            Value::Object(fields)
        }
        "array" => {
            let minimum = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            match schema.get("items") {
                Some(items) if minimum > 0 => json!([example(items)]),
                _ => json!([]),
            }
        }
        "string" => json!(string_example(schema)),
        "integer" => json!(schema.get("minimum").and_then(Value::as_i64).unwrap_or(1).max(1)),
        "number" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(1.0).max(1.0)),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

fn string_example(schema: &Value) -> String {
    match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-12-07T10:00:00Z".to_owned(),
        Some("date") => "2026-12-07".to_owned(),
        Some("email") => "ada@example.com".to_owned(),
        Some("uri" | "url") => "https://example.com/".to_owned(),
        _ => {
            let minimum = schema.get("minLength").and_then(Value::as_u64).unwrap_or(1);
            let base = "example";
            let length = usize::try_from(minimum).unwrap_or(1).max(base.len());
            base.chars().cycle().take(length).collect()
        }
    }
}
