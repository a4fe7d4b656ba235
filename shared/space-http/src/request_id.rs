//! A request id for every request: taken from a well-formed incoming `x-request-id` or
//! minted, echoed on the response, held in a task-local for error bodies and log lines
//! ([`crate::log`] adds it to every line written while the request runs).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `"-"` outside of one.
pub fn current() -> String {
    with_current(|id| id.unwrap_or("-").to_owned())
}

/// Calls `with` with the id of the request being served, if any, without copying it.
pub fn with_current<R>(mut with: impl FnMut(Option<&str>) -> R) -> R {
    REQUEST_ID.try_with(|id| with(Some(id))).unwrap_or_else(|_| with(None))
}

/// Runs `future` as part of the request `id` (used by the MCP server for in-process calls).
pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Mints an id: `req_` and a ULID.
pub fn mint() -> String {
    crate::ids::prefixed("req", ulid::Ulid::new())
}

fn accept(header: Option<&HeaderValue>) -> Option<String> {
    let text = header?.to_str().ok()?;
    let fits = !text.is_empty()
        && text.len() <= 128
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    fits.then(|| text.to_owned())
}

/// Axum middleware: sets the id for the request's task and on the response, and writes
/// the request's one `served` line.
pub async fn layer(request: Request, next: Next) -> Response {
    let id = accept(request.headers().get(HEADER)).unwrap_or_else(mint);
    let header = HeaderValue::from_str(&id).ok();
    let method = request.method().clone();
    // The route's template, never the path itself: public paths carry secret tokens
    // (calendar feeds, uploads, downloads), and logs must not.
    let route = request.extensions().get::<MatchedPath>().cloned();
    REQUEST_ID
        .scope(id, async move {
            let mut response = next.run(request).await;
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            tracing::info!(method = %method, route = %route, status = response.status().as_u16(), "served");
            if let Some(header) = header {
                response.headers_mut().insert(HEADER, header);
            }
            response
        })
        .await
}
