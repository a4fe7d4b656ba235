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

use crate::scopes::{self, ARGUMENTS, OPERATION, ScopeTool};
use crate::tools::{ToolEntry, object};

pub const SEARCH_TOOL: &str = "search_operations";
pub const CALL_TOOL: &str = "call_operation";

/// Who is calling and what they asked to see.
#[derive(Clone)]
pub struct Caller {
    pub engine: Engine,
    pub principal: Principal,
    /// `?toolsets=`: narrows the list further than the key's own pins.
    pub toolsets: Option<Vec<Domain>>,
    /// `?mode=`: which shape of tool list.
    pub mode: Mode,
    pub request_id: String,
}

/// The shapes the tool list comes in (`?mode=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// One tool per scope the key holds, plus `search_operations` (the default).
    #[default]
    Scopes,
    /// One tool per operation (`?mode=operations`, or `full`).
    Operations,
    /// `search_operations` and `call_operation` only.
    Compact,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "scopes" => Some(Mode::Scopes),
            "operations" | "full" => Some(Mode::Operations),
            "compact" => Some(Mode::Compact),
            _ => None,
        }
    }
}

/// Every space operation as a tool, and every scope as one, built once per process on
/// first use.
pub struct Catalogue {
    entries: Vec<ToolEntry>,
    by_name: HashMap<String, usize>,
    scope_tools: Vec<ScopeTool>,
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
        let scope_tools = scopes::group(&entries);
        Catalogue {
            entries,
            by_name,
            scope_tools,
        }
    })
}

impl Catalogue {
    pub fn entries(&self) -> &[ToolEntry] {
        &self.entries
    }

    pub fn get(&self, name: &str) -> Option<&ToolEntry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    pub fn scope_tools(&self) -> &[ScopeTool] {
        &self.scope_tools
    }

    fn scope_tool(&self, name: &str) -> Option<&ScopeTool> {
        self.scope_tools.iter().find(|group| group.tool.name == name)
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

    /// The tools `tools/list` shows this caller.
    pub fn tools(&self) -> Vec<Tool> {
        match self.mode {
            Mode::Operations => self.visible().map(|entry| entry.tool.clone()).collect(),
            Mode::Compact => compact_tools(),
            Mode::Scopes => {
                let entries = catalogue().entries();
                let mut tools: Vec<Tool> = catalogue()
                    .scope_tools()
                    .iter()
                    .filter(|group| group.operations.iter().any(|&i| self.refusal(&entries[i]).is_none()))
                    .map(|group| group.tool.clone())
                    .collect();
                if !tools.is_empty() {
                    tools.extend(compact_tools().into_iter().filter(|tool| tool.name == SEARCH_TOOL));
                }
                tools
            }
        }
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
        // The operation's own body limit, as over REST: MCP's larger request limit is for
        // the operations that take base64 files.
        let limit = entry.operation.max_body_bytes.unwrap_or(caller.engine.max_body_bytes());
        if json_len(&parts.body) > limit {
            return Ok(error_result(&ApiError::PayloadTooLarge(format!(
                "The body is larger than the {limit} bytes `{name}` accepts."
            ))));
        }
        let call = Call {
            engine: caller.engine.clone(),
            principal: caller.principal.clone(),
            path: parts.path,
            query: parts.query,
            body: parts.body,
            if_match: parts.if_match,
            raw: None,
            client: None,
            signature: None,
            cap_units: Default::default(),
        };
        let outcome = request_id::scope(
            caller.request_id.clone(),
            execute(&entry.operation, call, parts.idempotency_key.as_deref()),
        )
        .await;
        Ok(match outcome {
            Ok(reply) => match reply.stream.as_ref().and_then(|streamed| streamed.take()) {
                Some(chunks) => CallToolResult::success(vec![ContentBlock::text(gather(chunks).await)]),
                None => CallToolResult::structured(reply.into_json().unwrap_or_else(|| json!({}))),
            },
            Err(error) => {
                if matches!(error, ApiError::Internal(_)) {
                    tracing::error!(%error, tool = name, "tool failed");
                }
                request_id::scope(caller.request_id.clone(), async { error_result(&error) }).await
            }
        })
    }
}

/// The most of a streamed answer (an export) a tool result carries: a model's context is
/// no place for a whole file, and REST streams it whole.
const STREAM_LIMIT: usize = 256 * 1024;

/// A streamed answer as text, up to [`STREAM_LIMIT`] bytes, cut at a line's end, with a
/// last line saying so when there was more.
async fn gather(mut chunks: space_http::operation::Chunks) -> String {
    use futures::StreamExt as _;
    let mut text = Vec::new();
    let mut more = false;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) if text.len() + bytes.len() <= STREAM_LIMIT => text.extend_from_slice(&bytes),
            Ok(bytes) => {
                text.extend_from_slice(&bytes[..STREAM_LIMIT.saturating_sub(text.len())]);
                more = true;
                break;
            }
            Err(error) => {
                tracing::error!(%error, "a streamed answer failed");
                more = true;
                break;
            }
        }
    }
    if more {
        let whole_lines = text.iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1);
        text.truncate(whole_lines);
    }
    let mut text = String::from_utf8_lossy(&text).into_owned();
    if more {
        text.push_str("… (cut here: call the REST endpoint for the whole file)\n");
    }
    text
}

/// The object under `field` of a tool's arguments; absent or null is an empty one.
fn nested(arguments: &JsonObject, field: &str) -> Result<JsonObject, ErrorData> {
    match arguments.get(field) {
        None | Some(Value::Null) => Ok(JsonObject::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(ErrorData::invalid_params(format!("`{field}` must be an object"), None)),
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
        Ok(ListToolsResult::with_all_items(caller.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = caller(&context)?;
        let arguments = request.arguments.unwrap_or_default();
        let name = request.name.as_ref();
        // Every shape of tool answers in every mode: a client that cached another mode's
        // list keeps working, and scopes are checked per operation whichever way it came.
        let result = if name == SEARCH_TOOL {
            Self::search(&caller, &arguments)
        } else if name == CALL_TOOL {
            let operation = arguments.get("name").and_then(Value::as_str).unwrap_or_default();
            Self::run(&caller, operation, nested(&arguments, "arguments")?).await?
        } else if let Some(group) = catalogue().scope_tool(name) {
            match arguments.get(OPERATION).and_then(Value::as_str) {
                Some(operation)
                    if group
                        .operations
                        .iter()
                        .any(|&i| catalogue().entries()[i].operation.name == operation) =>
                {
                    Self::run(&caller, operation, nested(&arguments, ARGUMENTS)?).await?
                }
                _ => {
                    let names: Vec<&str> = group
                        .operations
                        .iter()
                        .map(|&i| catalogue().entries()[i].operation.name.as_str())
                        .collect();
                    error_result(&ApiError::invalid_field(
                        OPERATION,
                        format!("must be one of this tool's operations: {}", names.join(", ")),
                    ))
                }
            }
        } else {
            Self::run(&caller, name, arguments).await?
        };
        Ok(result.into())
    }
}

/// The length of `value` written as JSON, without keeping the text.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}
