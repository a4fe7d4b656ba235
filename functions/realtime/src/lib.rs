//! The realtime stream: `GET /functions/v1/space-realtime`, the Space's events as
//! Server-Sent Events (`events:read`, `?types=` as on the feed). Each SSE event's `id` is the
//! event id, so a client that reconnects with `Last-Event-ID` resumes from the feed with
//! nothing missed or repeated. A comment every 15 s keeps proxies from closing an idle
//! stream, and the key is checked every second: a revoked or expired key ends the stream.
//!
//! The stream follows the feed with a [`FeedTail`], as the webhook fan-out does.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use space_auth::{Action, Domain, PrincipalKind, Scope};
use space_http::auth::{Origin, authenticate, still_valid};
use space_http::events::{EVENT_ID_PREFIX, FeedTail, TypePattern, parse_types, render};
use space_http::ids::{first_at, has_shape, id_clock_now};
use space_http::operation::Effect;
use space_http::{ApiError, Engine};

/// Where the stream is served.
pub const PATH: &str = "/functions/v1/space-realtime";

/// What the function's binary links: the table alone.
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The stream's one route. Locally `spacectl serve` merges it with the families; in AWS it
/// is its own function behind a URL that streams (API Gateway's HTTP APIs buffer a
/// response until it ends, which a stream never does).
pub fn router() -> axum::Router<Engine> {
    axum::Router::new().route(PATH, axum::routing::get(stream))
}
/// How often the feed is read while nothing is waiting to be sent.
const POLL: Duration = Duration::from_millis(100);
/// How often the key is checked.
const KEY_CHECK: Duration = Duration::from_secs(1);
/// How long an idle stream waits before a keep-alive comment.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long one stream lasts: in AWS the function that serves it stops at 15 minutes, so it
/// ends first, cleanly, and the client reconnects with `Last-Event-ID` (as `EventSource`
/// does by itself).
const LIFETIME: Duration = Duration::from_secs(14 * 60);
/// Events read per poll, at most (about).
const BATCH: usize = 1_000;

/// `GET /functions/v1/space-realtime`.
pub async fn stream(State(engine): State<Engine>, request: Request) -> Response {
    match open(engine, request).await {
        Ok(tail) => Sse::new(events(tail))
            .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn open(engine: Engine, request: Request) -> Result<Tail, ApiError> {
    let (parts, _) = request.into_parts();
    let authorization = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let origin = Origin::of(&parts.extensions, &parts.headers);
    let principal = authenticate(&engine, authorization.as_deref(), PrincipalKind::Space, origin)
        .await
        .principal?;
    space_http::execute::authorize(&principal, Scope::new(Domain::Events, Action::Read), Effect::Read)?;
    let space = principal
        .space_id
        .clone()
        .ok_or_else(|| ApiError::Forbidden("Use a space key.".into()))?;
    let query = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri)
        .map_err(|rejection| ApiError::BadRequest(format!("Invalid query string: {}.", rejection.body_text())))?
        .0;
    let types = match query.get("types") {
        Some(raw) => Some(parse_types(raw).map_err(|error| ApiError::invalid_field("types", error.to_string()))?),
        None => None,
    };
    let resume = parts.headers.get("last-event-id").and_then(|value| value.to_str().ok());
    let floor = match resume {
        Some(id) if has_shape(id, EVENT_ID_PREFIX) => id.to_owned(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Last-Event-ID must be the id of an event this stream sent, like evt_01….".into(),
            ));
        }
        None => first_id_at(id_clock_now()),
    };
    Ok(Tail {
        engine,
        authorization: authorization.unwrap_or_default(),
        feed: FeedTail::after(&space, floor),
        types,
        pending: VecDeque::new(),
        checked: Instant::now(),
        opened: Instant::now(),
    })
}

fn first_id_at(millis: u64) -> String {
    first_at(EVENT_ID_PREFIX, millis)
}

/// Where one open stream is in the feed.
struct Tail {
    engine: Engine,
    authorization: String,
    /// Starts where the client resumed (`Last-Event-ID`), or when it connected.
    feed: FeedTail,
    types: Option<Vec<TypePattern>>,
    pending: VecDeque<Event>,
    checked: Instant,
    opened: Instant,
}

impl Tail {
    /// Queues what the feed gained since the last read.
    async fn read(&mut self) -> Result<(), ApiError> {
        for item in self.feed.read(self.engine.store(), BATCH).await? {
            let kind = item
                .body
                .get("type")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if self
                .types
                .as_ref()
                .is_some_and(|types| !types.iter().any(|t| t.matches(&kind)))
            {
                continue;
            }
            let data = render(item.body).to_string();
            self.pending
                .push_back(Event::default().id(item.sk).event(kind).data(data));
        }
        Ok(())
    }
}

fn events(tail: Tail) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(event) = tail.pending.pop_front() {
                return Some((Ok(event), tail));
            }
            if tail.opened.elapsed() >= LIFETIME {
                return None;
            }
            if tail.checked.elapsed() >= KEY_CHECK {
                if !still_valid(&tail.engine, &tail.authorization, PrincipalKind::Space).await {
                    return None;
                }
                tail.checked = Instant::now();
            }
            if let Err(error) = tail.read().await {
                tracing::warn!(%error, "realtime stream could not read the feed; retrying");
            }
            if tail.pending.is_empty() {
                tokio::time::sleep(POLL).await;
            }
        }
    })
}
