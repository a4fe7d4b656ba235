//! The MCP handler. Everything about the caller (engine, principal, which toolsets and
//! mode were asked for) arrives in the HTTP request's extensions, put there by the
//! router after authentication; the handler itself is stateless.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use space_auth::{Domain, Principal};
use space_http::execute::authorize;
use space_http::operation::{Access, Call};
use space_http::{ApiError, Engine, execute, request_id};

use crate::tools::ToolEntry;

pub const SEARCH_TOOL: &str = "search_operations";
pub const CALL_TOOL: &str = "call_operation";

/// Who is calling and what they asked to see.
#[derive(Clone)]
pub struct Caller {
    pub engine: Engine,
    pub principal: Principal,
    /// `?toolsets=`: narrows the list further than the key's own pins.
    pub toolsets: Option<Vec<Domain>>,
    /// `?mode=compact`: two tools that reach every operation.
    pub compact: bool,
    pub request_id: String,
}

/// Every space operation as a tool, built once per process on first use.
pub struct Catalogue {
    entries: Vec<ToolEntry>,
    by_name: HashMap<String, usize>,
}

pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let entries: Vec<ToolEntry> = space_catalogue::operations()
            .into_iter()
            .filter_map(ToolEntry::new)
            .collect();
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.operation.name.clone(), i))
            .collect();
        Catalogue { entries, by_name }
    })
}

impl Catalogue {
    pub fn entries(&self) -> &[ToolEntry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&ToolEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }
}

impl Caller {
    /// Why this caller may not use `entry`, if it may not.
    fn refusal(&self, entry: &ToolEntry) -> Option<String> {
        let Access::Space(scope) = entry.operation.access else {
            return Some("not a space operation".into());
        };
        if let Err(error) = authorize(&self.principal, scope, entry.operation.effect) {
            return Some(error.to_string());
        }
        if let Some(sets) = &self.toolsets
            && !sets.contains(&scope.domain)
        {
            return Some(format!("the `{}` toolset was not requested", scope.domain));
        }
        None
    }

    fn visible(&self) -> impl Iterator<Item = &'static ToolEntry> + '_ {
        catalogue()
            .entries()
            .iter()
            .filter(|entry| self.refusal(entry).is_none())
    }
}

/// The stateless MCP server.
#[derive(Clone, Copy, Default)]
pub struct SpaceMcp;

fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| ErrorData::internal_error("request reached the MCP handler without authentication", None))
}

fn compact_tools() -> Vec<Tool> {
    let search = json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Words to look for in operation names and descriptions, e.g. \"create contact\". Empty lists everything."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
        },
        "additionalProperties": false
    });
    let call = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "An operation name from search_operations, e.g. contacts_create."},
            "arguments": {"type": "object", "description": "The operation's arguments, as its input schema describes."}
        },
        "required": ["name"],
        "additionalProperties": false
    });
    vec![
        Tool::new(
            SEARCH_TOOL,
            "Find the operations this API key may run: name, description and input schema.",
            Arc::new(object(search)),
        )
        .with_annotations(
            ToolAnnotations::with_title("Search operations")
                .read_only(true)
                .open_world(false),
        ),
        Tool::new(
            CALL_TOOL,
            "Run one operation by name with its arguments; the result is the operation's JSON.",
            Arc::new(object(call)),
        )
        .with_annotations(
            ToolAnnotations::with_title("Call an operation")
                .read_only(false)
                .open_world(true),
        ),
    ]
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

impl SpaceMcp {
    fn search(caller: &Caller, arguments: &JsonObject) -> CallToolResult {
        let query = arguments
            .get("query")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let limit = arguments
            .get("limit")
            .and_then(Value::as_u64)
            .unwrap_or(20)
            .clamp(1, 100) as usize;
        let words: Vec<&str> = query.split_whitespace().collect();
        let found: Vec<Value> = caller
            .visible()
            .filter(|entry| {
                let haystack = format!(
                    "{} {}",
                    entry.operation.name,
                    entry.tool.description.as_deref().unwrap_or("")
                )
                .to_lowercase();
                words
                    .iter()
                    .all(|word| haystack.contains(word) || haystack.contains(word.trim_end_matches('s')))
            })
            .take(limit)
            .map(|entry| {
                json!({
                    "name": entry.operation.name,
                    "description": entry.tool.description,
                    "inputSchema": entry.input_schema(),
                })
            })
            .collect();
        CallToolResult::structured(json!({"operations": found}))
    }

    async fn run(caller: &Caller, name: &str, arguments: JsonObject) -> Result<CallToolResult, ErrorData> {
        let Some(entry) = catalogue().get(name) else {
            return Err(ErrorData::invalid_params(format!("Unknown tool `{name}`."), None));
        };
        if let Some(reason) = caller.refusal(entry) {
            // Not listed for this key, so not callable: nothing runs.
            return Err(ErrorData::invalid_params(
                format!("Tool `{name}` is not available to this API key: {reason}"),
                None,
            ));
        }
        let parts = match entry.split(arguments) {
            Ok(parts) => parts,
            Err(error) => return Ok(error_result(&error)),
        };
        let call = Call {
            engine: caller.engine.clone(),
            principal: caller.principal.clone(),
            path: parts.path,
            query: parts.query,
            body: parts.body,
            if_match: parts.if_match,
            raw: None,
            client: None,
        };
        let outcome = request_id::scope(
            caller.request_id.clone(),
            execute(&entry.operation, call, parts.idempotency_key.as_deref()),
        )
        .await;
        Ok(match outcome {
            Ok(reply) => CallToolResult::structured(reply.into_json().unwrap_or_else(|| json!({}))),
            Err(error) => {
                if matches!(error, ApiError::Internal(_)) {
                    tracing::error!(%error, tool = name, "tool failed");
                }
                request_id::scope(caller.request_id.clone(), async { error_result(&error) }).await
            }
        })
    }
}

/// The REST error envelope as a tool error, so an agent sees the same field messages.
/// It travels as text: `structuredContent` must match the tool's output schema, which
/// describes success.
fn error_result(error: &ApiError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(error.body().to_string())])
}

impl ServerHandler for SpaceMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("space-api", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools act inside one Space with this API key's scopes. Writes make drafts; live actions \
                 (publish, send, run) need `run` scopes. Pass idempotency_key on creates to make retries safe.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&context)?;
        let tools = if caller.compact {
            compact_tools()
        } else {
            caller.visible().map(|entry| entry.tool.clone()).collect()
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        let arguments = request.arguments.unwrap_or_default();
        let result = match (caller.compact, request.name.as_ref()) {
            (true, SEARCH_TOOL) => Self::search(&caller, &arguments),
            (true, CALL_TOOL) => {
                let name = arguments
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let inner = match arguments.get("arguments") {
                    None | Some(Value::Null) => JsonObject::new(),
                    Some(Value::Object(map)) => map.clone(),
                    Some(_) => return Err(ErrorData::invalid_params("`arguments` must be an object", None)),
                };
                Self::run(&caller, &name, inner).await?
            }
            (_, name) => Self::run(&caller, name, arguments).await?,
        };
        Ok(result.into())
    }
}
