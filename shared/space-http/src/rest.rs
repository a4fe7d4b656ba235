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

use space_auth::PrincipalKind;

use crate::auth::{Origin, UNKNOWN_CLIENT, admit_visitor, authenticate};
use crate::engine::Engine;
use crate::error::ApiError;
use crate::execute::execute;
use crate::operation::{Access, Call, IfMatch, Operation, RawBody, Reply, SIGNATURE_HEADER};
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
        .fallback(|| async {
            ApiError::NotFound("No such route. The API lives under /functions/v1/space-api/.".into())
        })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("This route does not take that method.".into())
        })
        .layer(middleware::from_fn(request_id::layer))
        .with_state(engine)
}

async fn serve(engine: Engine, operation: &Operation, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let origin = Origin::of(&parts.extensions, &parts.headers);
    // Only public routes limit every request by address; formatting it costs every other.
    let client = match operation.access {
        Access::Public { .. } => origin.address(),
        Access::Space(_) | Access::Account => None,
    };
    let authenticated = match (operation.access, operation.access.principal_kind()) {
        (Access::Public { per_minute }, _) => {
            let client = client.as_deref().unwrap_or(UNKNOWN_CLIENT);
            admit_visitor(&engine, operation.public_family(), client, per_minute).await
        }
        (_, kind) => {
            let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
            authenticate(&engine, authorization, kind.unwrap_or(PrincipalKind::Space), origin).await
        }
    };
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
        let limit = operation.max_body_bytes.unwrap_or(engine.max_body_bytes());
        // A body declared too large is refused as such (nothing of it is kept); any other
        // is read only once the path is admitted.
        let declared_too_large = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|length| length > limit);
        if let Some(admit) = operation.admits.filter(|_| !declared_too_large) {
            admit(&engine, &path)?;
        }
        let (body, raw) = if operation.raw_body {
            (Value::Null, Some(read_raw(&parts.headers, body, limit).await?))
        } else if operation.takes_body() {
            (read_json(&parts.headers, body, limit).await?, None)
        } else {
            (Value::Null, None)
        };
        // A header sent empty says nothing, like an empty query parameter.
        let present = |name| parts.headers.get(name).filter(|value| !value.is_empty());
        let if_match = match present(header::IF_MATCH.as_str()) {
            None => None,
            Some(value) => Some(value.to_str().ok().and_then(IfMatch::parse).ok_or_else(|| {
                ApiError::BadRequest("If-Match must be an ETag from a previous response, like \"3\", or *.".into())
            })?),
        };
        let idempotency_key = present(IDEMPOTENCY_KEY).map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
        let signature = match operation.access {
            Access::Public { .. } => present(SIGNATURE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            Access::Space(_) | Access::Account => None,
        };
        let call = Call {
            engine: engine.clone(),
            principal,
            path,
            query,
            body,
            if_match,
            raw,
            client,
            signature,
            cap_units: Default::default(),
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

/// What a refused body may still bring, read and dropped before the 413 goes out, and for
/// how long, as long as it keeps coming: a client still sending then reads the answer
/// instead of a reset connection (closing a socket with unread data resets it). Beyond
/// any of these the connection is cut. A client that asked to be told first
/// (`Expect: 100-continue`) is answered at once and sends nothing.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);
const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_millis(50);

/// Reads a body whole with its content type; 413 over the limit.
pub async fn read_raw(headers: &HeaderMap, body: Body, limit: usize) -> Result<RawBody, ApiError> {
    use futures::StreamExt as _;

    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut stream = body.into_data_stream();
    let mut kept = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut too_big = declared.is_some_and(|length| length > limit);
    while !too_big {
        match stream.next().await {
            None => break,
            Some(Ok(chunk)) if kept.len() + chunk.len() <= limit => kept.extend_from_slice(&chunk),
            Some(Ok(_)) => too_big = true,
            Some(Err(_)) => return Err(ApiError::BadRequest("The body could not be read whole.".into())),
        }
    }
    if too_big {
        let waits_for_continue = headers
            .get(header::EXPECT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if !waits_for_continue {
            let mut drained = 0;
            let drain = async {
                while let Ok(Some(Ok(chunk))) = tokio::time::timeout(DRAIN_IDLE, stream.next()).await {
                    drained += chunk.len();
                    if drained > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
        }
        return Err(too_large(limit));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok(RawBody {
        content_type,
        bytes: kept.into(),
    })
}

/// Reads a JSON body: 415 for another content type, 413 over the limit, 400 when malformed.
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    parse_json(&read_raw(headers, body, limit).await?)
}

/// `application/json` (or `…+json`) bytes to a value; no body is `Null`, and a body of
/// `null` is refused (no operation takes one), so that the two are never confused.
pub fn parse_json(raw: &RawBody) -> Result<Value, ApiError> {
    if raw.bytes.is_empty() {
        return Ok(Value::Null);
    }
    if !is_json(&raw.content_type) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "Send the body as JSON with `Content-Type: application/json` (got `{}`).",
            if raw.content_type.is_empty() {
                "nothing"
            } else {
                raw.content_type.as_str()
            }
        )));
    }
    match serde_json::from_slice(&raw.bytes) {
        Ok(Value::Null) => Err(ApiError::BadRequest(
            "The body is `null`: send a JSON object, or no body where none is needed.".into(),
        )),
        Ok(value) => Ok(value),
        Err(error) => Err(ApiError::BadRequest(format!("The body is not valid JSON: {error}."))),
    }
}

/// The media type without parameters, lowercased.
pub fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

pub fn is_json(content_type: &str) -> bool {
    let essence = essence(content_type);
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("The body is larger than the {limit} bytes this route accepts."))
}

fn reply_response(reply: Reply) -> Response {
    let streamed = reply
        .stream
        .as_ref()
        .and_then(|streamed| Some((streamed.content_type, streamed.take()?)));
    let mut response = match (streamed, reply.raw, reply.body) {
        (Some((content_type, chunks)), _, _) => {
            let mut response = (reply.status, axum::body::Body::from_stream(chunks)).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        (None, Some(raw), _) => {
            let mut response = (reply.status, raw.bytes).into_response();
            if let Ok(value) = HeaderValue::from_str(&raw.content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        (None, None, Some(body)) => (reply.status, axum::Json(body)).into_response(),
        (None, None, None) => reply.status.into_response(),
    };
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(name), HeaderValue::from_str(&value)) {
            response.headers_mut().insert(name, value);
        }
    }
    if let Some(etag) = reply
        .etag
        .and_then(|e| HeaderValue::from_maybe_shared(bytes::Bytes::from(e)).ok())
    {
        response.headers_mut().insert(header::ETAG, etag);
    }
    if reply.status == StatusCode::NO_CONTENT {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    response
}

/// `RateLimit-Policy` and `RateLimit` (IETF httpapi draft, structured fields).
pub fn rate_limit_headers(headers: &mut HeaderMap, decision: &RateDecision) {
    thread_local! {
        /// The last policy value built on this thread: a key's limit rarely changes.
        static POLICY: std::cell::RefCell<Option<(u64, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    let policy = POLICY.with_borrow_mut(|cached| match cached {
        Some((limit, value)) if *limit == decision.limit => value.clone(),
        _ => {
            let value = header_value(format_args!(
                "\"per-key\";q={};w={}",
                decision.limit,
                space_auth::rate_limit::WINDOW_SECONDS
            ));
            *cached = Some((decision.limit, value.clone()));
            value
        }
    });
    let state = header_value(format_args!(
        "\"per-key\";r={};t={}",
        decision.remaining, decision.resets_in
    ));
    headers.insert("ratelimit-policy", policy);
    headers.insert("ratelimit", state);
}

/// A header value of ASCII text formatted without an intermediate `String`.
fn header_value(text: std::fmt::Arguments<'_>) -> HeaderValue {
    let mut buffer = bytes::BytesMut::with_capacity(48);
    // Writing to a growable buffer cannot fail.
    let _ = std::fmt::Write::write_fmt(&mut buffer, text);
    HeaderValue::from_maybe_shared(buffer.freeze()).unwrap_or_else(|_| HeaderValue::from_static(""))
}
