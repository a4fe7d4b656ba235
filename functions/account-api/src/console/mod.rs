//! The owner's console: one page, a stylesheet and a script, built into the binary, that
//! call the account API with the key the owner pastes in. The page holds no data of its
//! own and reaches nothing a key does not, so it is served without a key, limited per
//! client address like every public route.
//!
//! Every answer under `/console` carries a Content-Security-Policy that allows only this
//! origin's script, style and API (no inline code, no third party, no framing), so an
//! injected string can neither run nor send the key anywhere. The one other origin it may
//! reach is the realtime stream's, when that is not beside the API (in AWS, a function
//! URL: [`realtime_url`]).

use axum::Router;
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use space_connections::{AD_NETWORKS, CAPABILITIES, Channel, KINDS, Network};
use space_http::operation::{Access, Call, Effect, Handler, Param, Reply, handler};
use space_http::{ApiError, Engine, Operation};

use crate::mcp_setup;

/// Requests per minute a client address may make to `/console…` (a page load is four).
pub const PER_MINUTE: u32 = 120;

/// The policy on every console answer; the page's also lets scripts reach the realtime
/// stream's origin when that is another ([`page_policy`]).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Where the realtime stream is served beside the API (`spacectl serve`).
pub const REALTIME_PATH: &str = "/functions/v1/space-realtime";

/// The item that records the realtime stream's URL where it is not beside the API: in AWS
/// it is the realtime function's own URL, made after the functions (so it cannot be in
/// their environment), which Terraform writes here (`infra/worker.tf`).
pub const REALTIME_URL_ITEM: (&str, &str) = ("PLATFORM", "REALTIME_URL");

/// The realtime stream's URL: the one the table records, else beside the API.
pub async fn realtime_url(engine: &Engine) -> Result<String, ApiError> {
    let (pk, sk) = REALTIME_URL_ITEM;
    let recorded = engine.store().get(pk, sk).await?;
    Ok(
        match recorded
            .as_ref()
            .and_then(|item| item.body.get("url"))
            .and_then(Value::as_str)
        {
            Some(url) => url.to_owned(),
            None => format!("{}{REALTIME_PATH}", engine.public_url()),
        },
    )
}

/// The console page's policy: [`CONTENT_SECURITY_POLICY`], with the realtime stream's
/// origin added to `connect-src` when it is not the API's.
pub fn page_policy(public_url: &str, realtime_url: &str) -> String {
    let origin = |url: &str| {
        let uri: http::Uri = url.parse().ok()?;
        Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
    };
    match origin(realtime_url) {
        Some(realtime) if Some(&realtime) != origin(public_url).as_ref() => {
            CONTENT_SECURITY_POLICY.replace("connect-src 'self'", &format!("connect-src 'self' {realtime}"))
        }
        _ => CONTENT_SECURITY_POLICY.to_owned(),
    }
}

const PAGE: &str = include_str!("index.html");
const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");

/// Where the token goes in the MCP lines of [`config`]: the script puts a new key's there.
pub const TOKEN_SLOT: &str = "{TOKEN}";

/// The static files under `/console/`.
pub const FILES: &[&str] = &["console.css", "console.js"];

/// What the console needs to know that the server decides: the MCP lines to paste (with
/// [`TOKEN_SLOT`] for the token), the kinds of connection an owner can make, and where the
/// realtime stream is.
pub fn config(origin: &str, realtime_url: &str) -> Value {
    json!({
        "mcp": {
            "claude_code": mcp_setup::claude_code_command(origin, TOKEN_SLOT),
            "mcp_json": mcp_setup::mcp_json(origin, TOKEN_SLOT),
            "token_slot": TOKEN_SLOT,
        },
        "connections": {
            "kinds": KINDS,
            "networks": Network::NAMES,
            "ad_networks": AD_NETWORKS,
            "channels": Channel::NAMES,
            "capabilities": CAPABILITIES,
        },
        "realtime_url": realtime_url,
    })
}

fn config_schema() -> Value {
    let text = json!({"type": "string"});
    let names = |names: &[&str]| json!({"type": "array", "items": {"type": "string", "enum": names}});
    json!({
        "type": "object",
        "required": ["mcp", "connections", "realtime_url"],
        "properties": {
            "mcp": {
                "type": "object",
                "required": ["claude_code", "mcp_json", "token_slot"],
                "description": "The lines to paste with a new key, `token_slot` standing for its token.",
                "properties": {"claude_code": text, "mcp_json": text, "token_slot": text}
            },
            "connections": {
                "type": "object",
                "required": ["kinds", "networks", "ad_networks", "channels", "capabilities"],
                "properties": {
                    "kinds": names(KINDS),
                    "networks": names(Network::NAMES),
                    "ad_networks": names(AD_NETWORKS),
                    "channels": names(Channel::NAMES),
                    "capabilities": names(CAPABILITIES)
                }
            },
            "realtime_url": {"type": "string", "format": "uri", "description": "The realtime stream (Server-Sent Events) the live view follows."}
        }
    })
}

fn page_handler() -> Handler {
    handler(|call: Call| async move {
        let policy = page_policy(call.engine.public_url(), &realtime_url(&call.engine).await?);
        Ok(Reply::raw(StatusCode::OK, "text/html; charset=utf-8", PAGE).with_header("content-security-policy", policy))
    })
}

fn file_handler() -> Handler {
    handler(|call: Call| async move {
        let file = call.path_param("file")?;
        match file {
            "console.css" => Ok(Reply::raw(StatusCode::OK, "text/css; charset=utf-8", STYLE)),
            "console.js" => Ok(Reply::raw(StatusCode::OK, "text/javascript; charset=utf-8", SCRIPT)),
            _ => Err(ApiError::NotFound(format!("The console has no file `{file}`."))),
        }
    })
}

/// The console's routes as operations, so that they reach OpenAPI and the deployment.
pub fn operations() -> Vec<Operation> {
    let access = Access::Public { per_minute: PER_MINUTE };
    vec![
        Operation::new(
            "console_view",
            Method::GET,
            "/console",
            access,
            Effect::Read,
            "The owner's console: a web page that manages Spaces, keys, secrets and connections with the account key pasted into it (no key to load it)",
            page_handler(),
        )
        .answers_as(StatusCode::OK, &["text/html"]),
        Operation::new(
            "console_config",
            Method::GET,
            "/console/config.json",
            access,
            Effect::Read,
            "The console's settings: the MCP lines to paste with a new key, the kinds of connection, where the live stream is",
            handler(|call: Call| async move {
                let realtime = realtime_url(&call.engine).await?;
                Ok(Reply::ok(config(call.engine.public_url(), &realtime)))
            }),
        )
        .answers(StatusCode::OK, config_schema),
        Operation::new(
            "console_file",
            Method::GET,
            "/console/{file}",
            access,
            Effect::Read,
            "A file of the console: its stylesheet or its script",
            file_handler(),
        )
        .with_params(vec![Param {
            schema: json!({"type": "string", "enum": FILES}),
            ..Param::path("file", "The file's name.")
        }])
        .answers_as(StatusCode::OK, &["text/css", "text/javascript"]),
    ]
}

/// The console's routes, every answer (errors included) with the security headers.
pub fn router() -> Router<Engine> {
    let others = MethodFilter::POST
        .or(MethodFilter::PUT)
        .or(MethodFilter::PATCH)
        .or(MethodFilter::DELETE)
        .or(MethodFilter::OPTIONS);
    let refuse = || async {
        (
            [(header::ALLOW, "GET, HEAD")],
            ApiError::MethodNotAllowed("The console is only read: use GET.".into()),
        )
    };
    operations()
        .iter()
        .fold(space_http::rest::routes(operations()), |router, operation| {
            router.route(&operation.full_path(), on(others, refuse))
        })
        .layer(axum::middleware::map_response(secured))
}

async fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // The page sets its own (the same, or with the realtime stream's origin).
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
