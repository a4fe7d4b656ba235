//! A request id for every request: taken from a well-formed incoming `x-request-id` or
//! minted, echoed on the response, attached to the tracing span and to error bodies.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `"-"` outside of one.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "-".to_owned())
}

/// Runs `future` as part of the request `id` (used by the MCP server for in-process calls).
pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Mints an id: `req_` and a ULID.
pub fn mint() -> String {
    format!("req_{}", ulid::Ulid::new().to_string().to_lowercase())
}

fn accept(header: Option<&HeaderValue>) -> Option<String> {
    let text = header?.to_str().ok()?;
    let fits = !text.is_empty()
        && text.len() <= 128
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    fits.then(|| text.to_owned())
}

/// Axum middleware: sets the id for the request's task and span, and on the response.
pub async fn layer(request: Request, next: Next) -> Response {
    let id = accept(request.headers().get(HEADER)).unwrap_or_else(mint);
    // The route's template, never the path itself: public paths carry secret tokens
    // (calendar feeds, uploads, downloads), and logs must not.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    span.in_scope(|| tracing::info!(status = response.status().as_u16(), "served"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
