//! Operations to axum routes. The adapter does only HTTP: it authenticates, parses the
//! path, query, body and headers into a [`Call`], runs [`execute`], and writes the reply
//! with its ETag and rate-limit headers. Every failure, the framework's own included,
//! leaves as the JSON error envelope.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use space_auth::RateDecision;

use crate::auth::authenticate;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::execute::execute;
use crate::operation::{Call, IfMatch, Operation, Reply};
use crate::request_id;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The routes of `operations`, each under its API's base path. Merge the routers of
/// several families, then [`finish`] once.
pub fn routes(operations: Vec<Operation>) -> Router<Engine> {
    let mut router = Router::new();
    for operation in operations {
        let filter = method_filter(&operation.method);
        let path = operation.full_path();
        let operation = Arc::new(operation);
        router = router.route(
            &path,
            on(filter, move |State(engine): State<Engine>, request: Request| {
                let operation = Arc::clone(&operation);
                async move { serve(engine, &operation, request).await }
            }),
        );
    }
    router
}

fn method_filter(method: &http::Method) -> MethodFilter {
    match *method {
        http::Method::GET => MethodFilter::GET,
        http::Method::POST => MethodFilter::POST,
        http::Method::PUT => MethodFilter::PUT,
        http::Method::PATCH => MethodFilter::PATCH,
        http::Method::DELETE => MethodFilter::DELETE,
        _ => MethodFilter::OPTIONS,
    }
}

/// Adds what every deployment needs around the routes: JSON 404 and 405, request ids,
/// and the engine as state.
pub fn finish(router: Router<Engine>, engine: Engine) -> Router {
    router
        .fallback(|| async { ApiError::NotFound("No such route. The API lives under /functions/v1/space-api/.".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed("This route does not take that method.".into()) })
        .layer(middleware::from_fn(request_id::layer))
        .with_state(engine)
}

async fn serve(engine: Engine, operation: &Operation, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let authenticated = authenticate(&engine, authorization, operation.access.principal_kind()).await;
    let rate = authenticated.rate;
    let outcome = async {
        let principal = authenticated.principal?;
        let path = RawPathParams::from_request_parts(&mut parts, &())
            .await
            .map_err(|rejection| ApiError::BadRequest(format!("Invalid path: {}.", rejection.body_text())))?
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let query = axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map_err(|rejection| ApiError::BadRequest(format!("Invalid query string: {}.", rejection.body_text())))?
            .0;
        let body = if operation.takes_body() {
            read_json(&parts.headers, body, engine.max_body_bytes()).await?
        } else {
            Value::Null
        };
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(value) => Some(value.to_str().ok().and_then(IfMatch::parse).ok_or_else(|| {
                ApiError::BadRequest("If-Match must be an ETag from a previous response, like \"3\", or *.".into())
            })?),
        };
        let idempotency_key = parts.headers.get(IDEMPOTENCY_KEY).map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
        let call = Call {
            engine: engine.clone(),
            principal,
            path,
            query,
            body,
            if_match,
        };
        execute(operation, call, idempotency_key.as_deref()).await
    }
    .await;
    let mut response = match outcome {
        Ok(reply) => reply_response(reply),
        Err(error) => error.into_response(),
    };
    if let Some(decision) = rate {
        rate_limit_headers(response.headers_mut(), &decision);
    }
    response
}

/// Reads a JSON body: 415 for another content type, 413 over the limit, 400 when malformed.
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large(limit))?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !(essence.starts_with("application/") && essence.ends_with("+json")) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Send the body as JSON with `Content-Type: application/json` (got `{}`).",
            if content_type.is_empty() { "nothing" } else { content_type }
        )));
    }
    serde_json::from_slice(&bytes).map_err(|error| ApiError::BadRequest(format!("The body is not valid JSON: {error}.")))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("The body is larger than the {limit} bytes this route accepts."))
}

fn reply_response(reply: Reply) -> Response {
    let mut response = match reply.body {
        Some(body) => (reply.status, axum::Json(body)).into_response(),
        None => reply.status.into_response(),
    };
    if let Some(etag) = reply.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if reply.status == StatusCode::NO_CONTENT {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
}

/// `RateLimit-Policy` and `RateLimit` (IETF httpapi draft, structured fields).
pub fn rate_limit_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    let policy = format!("\"per-key\";q={};w={}", decision.limit, space_auth::rate_limit::WINDOW_SECONDS);
    let state = format!("\"per-key\";r={};t={}", decision.remaining, decision.resets_in);
    if let (Ok(policy), Ok(state)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&state)) {
        headers.insert("ratelimit-policy", policy);
        headers.insert("ratelimit", state);
    }
}
