//! The MCP server at `/functions/v1/space-mcp`: streamable HTTP, stateless, JSON
//! responses (it runs in Lambda). The same space key as REST; `tools/list` shows the
//! operations its scopes allow, and `tools/call` runs the REST handler in-process through
//! the same engine: validation, events, rate limit and idempotency included.
//!
//! This function also serves the generated documents (`openapi.json`), since it is the
//! one that links every family.

mod scopes;
mod server;
pub mod tools;

use std::sync::{Arc, OnceLock};

use axum::Router;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderValue, StatusCode, header};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use space_auth::{Domain, PrincipalKind};
use space_http::auth::{Origin, authenticate};
use space_http::rest::rate_limit_headers;
use space_http::{ApiError, Engine, request_id};
use tower::ServiceExt as _;

pub use scopes::ScopeTool;
pub use server::{CALL_TOOL, Caller, Catalogue, Mode, SEARCH_TOOL, SpaceMcp, catalogue};

pub const PATH: &str = "/functions/v1/space-mcp";
/// MCP bodies carry base64 uploads, so they may be larger than REST's JSON.
const MAX_MCP_BODY_BYTES: usize = 8 * 1024 * 1024;

type McpService = StreamableHttpService<SpaceMcp, NeverSessionManager>;

/// Hosts the server answers for: `MCP_ALLOWED_HOSTS` (comma-separated, `*` for any, for
/// a gateway that checks hosts itself), loopback by default.
fn service() -> &'static McpService {
    static SERVICE: OnceLock<McpService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let mut config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .with_max_request_body_bytes(MAX_MCP_BODY_BYTES);
        match std::env::var("MCP_ALLOWED_HOSTS") {
            Ok(hosts) if hosts.trim() == "*" => config = config.disable_allowed_hosts(),
            Ok(hosts) => config = config.with_allowed_hosts(hosts.split(',').map(|h| h.trim().to_owned())),
            Err(_) => {}
        }
        StreamableHttpService::new(|| Ok(SpaceMcp), Arc::new(NeverSessionManager::default()), config)
    })
}

/// What this binary carries beyond the table: what the families it runs in-process need
/// (media uploads, webhook signing keys), never secret values, which no space key writes.
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends {
    media: space_http::lambda::Backends::TABLE_AND_MEDIA.media,
    secret_values: None,
    signing_keys: space_http::lambda::Backends::TABLE_AND_SIGNING_KEYS.signing_keys,
};

/// The MCP endpoint and the generated documents.
pub fn router() -> Router<Engine> {
    Router::new()
        .route(PATH, any(serve))
        .route("/openapi.json", get(serve_openapi))
        .route("/functions/v1/space-api/openapi.json", get(serve_openapi))
        .route("/llms.txt", get(serve_llms))
        .route("/functions/v1/space-api/llms.txt", get(serve_llms))
        .route("/llms-full.txt", get(serve_llms_full))
        .route("/functions/v1/space-api/llms-full.txt", get(serve_llms_full))
}

/// `llms.txt`, generated on its first request like the OpenAPI document.
async fn serve_llms() -> Response {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    markdown(DOCUMENT.get_or_init(|| Bytes::from(space_catalogue::llms::llms_txt())))
}

/// `llms-full.txt`, likewise.
async fn serve_llms_full() -> Response {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    markdown(DOCUMENT.get_or_init(|| Bytes::from(space_catalogue::llms::llms_full_txt())))
}

fn markdown(document: &Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        document.clone(),
    )
        .into_response()
}

/// The OpenAPI document, generated and serialized on its first request: generating it
/// walks every operation of every family, work a cold start must not pay for.
async fn serve_openapi() -> Response {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        serde_json::to_vec(&space_catalogue::openapi())
            .map(Bytes::from)
            .unwrap_or_default()
    });
    ([(header::CONTENT_TYPE, "application/json")], document.clone()).into_response()
}

/// `?toolsets=a,b` and `?mode=scopes|operations|compact`.
fn view(query: Option<&str>) -> Result<(Option<Vec<Domain>>, Mode), ApiError> {
    let mut toolsets = None;
    let mut mode = Mode::default();
    for (name, value) in query.unwrap_or("").split('&').filter_map(|pair| pair.split_once('=')) {
        match name {
            "toolsets" => {
                let mut domains = Vec::new();
                for text in value.split(',').filter(|t| !t.is_empty()) {
                    let domain = text.parse::<Domain>().map_err(|_| {
                        ApiError::invalid_field(
                            "toolsets",
                            format!("`{text}` is not a toolset; use domain names like contacts,tasks"),
                        )
                    })?;
                    domains.push(domain);
                }
                toolsets = Some(domains);
            }
            "mode" if !value.is_empty() => {
                mode = Mode::parse(value).ok_or_else(|| {
                    ApiError::invalid_field(
                        "mode",
                        format!("`{value}` is not a mode; use scopes (the default), operations or compact"),
                    )
                })?;
            }
            _ => {}
        }
    }
    Ok((toolsets, mode))
}

/// The MCP transport's own refusals (a missing `Accept`, a body that is not JSON, a GET
/// for a stream this stateless server does not keep) come as plain text; clients get
/// the JSON envelope every other error has, with the status that names the fault.
async fn in_json(response: Response, sent_json: bool) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = match axum::body::to_bytes(response.into_body(), 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::NOT_ACCEPTABLE => {
            ApiError::NotAcceptable(format!("{text}. Send `Accept: application/json, text/event-stream`."))
        }
        // The transport says 415 for a JSON body it cannot parse: that is a bad request.
        StatusCode::UNSUPPORTED_MEDIA_TYPE if sent_json => {
            ApiError::BadRequest(format!("The body is not a JSON-RPC message: {text}."))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(format!("{text}.")),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::MethodNotAllowed("This MCP endpoint is stateless: send each JSON-RPC message with POST.".into())
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(format!(
            "The body is larger than the {MAX_MCP_BODY_BYTES} bytes this endpoint accepts."
        )),
        status if status.is_client_error() => ApiError::BadRequest(format!("{text}.")),
        _ => ApiError::Internal(format!("MCP transport answered {status}: {text}")),
    };
    let mut response = error.into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

async fn serve(State(engine): State<Engine>, mut request: Request) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let origin = Origin::of(request.extensions(), request.headers());
    let authenticated = authenticate(&engine, authorization, PrincipalKind::Space, origin).await;
    // A body declared too large is refused before a byte of it is read.
    let declared_too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|length| length > MAX_MCP_BODY_BYTES);
    let mut response = match (authenticated.principal, view(request.uri().query())) {
        (Err(error), _) => {
            let unauthenticated = matches!(error, ApiError::Unauthenticated(_));
            let mut response = error.into_response();
            if unauthenticated {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"space-mcp\""),
                );
            }
            response
        }
        (Ok(_), Err(error)) => error.into_response(),
        (Ok(_), Ok(_)) if declared_too_large => ApiError::PayloadTooLarge(format!(
            "The body is larger than the {MAX_MCP_BODY_BYTES} bytes this endpoint accepts."
        ))
        .into_response(),
        (Ok(principal), Ok((toolsets, mode))) => {
            request.extensions_mut().insert(Caller {
                engine,
                principal,
                toolsets,
                mode,
                request_id: request_id::current(),
            });
            let sent_json = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            match service().clone().oneshot(request).await {
                Ok(response) => in_json(response.map(Body::new), sent_json).await,
                Err(never) => match never {},
            }
        }
    };
    if let Some(decision) = authenticated.rate {
        rate_limit_headers(response.headers_mut(), &decision);
    }
    response
}
