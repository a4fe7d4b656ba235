//! The realtime stream: `GET /functions/v1/space-realtime`, the Space's events as
//! Server-Sent Events (`events:read`, `?types=` as on the feed); the owner's account key
//! watches one of its Spaces with `?space=`. Each SSE event's `id` is the
//! event id, so a client that reconnects with `Last-Event-ID` resumes from the feed with
//! nothing missed or repeated. A comment every 15 s keeps proxies from closing an idle
//! stream, and the key is checked every second: a revoked or expired key ends the stream.
//! A key holds at most [`slots::STREAMS_PER_KEY`] streams open at once.
//!
//! The stream follows the feed with a [`FeedTail`], as the webhook fan-out does.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use space_auth::{Action, Domain, PrincipalKind, Scope, TokenKind};
use space_http::auth::{Origin, authenticate, still_valid};
use space_http::events::{EVENT_ID_PREFIX, FeedTail, TypePattern, parse_types, render};
use space_http::ids::{first_at, has_shape, id_clock_now};
use space_http::operation::Effect;
use space_http::{ApiError, Engine};

mod slots;

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
    let query = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&parts.uri)
        .map_err(|rejection| ApiError::BadRequest(format!("Invalid query string: {}.", rejection.body_text())))?
        .0;
    let kind = watcher_kind(authorization.as_deref());
    let principal = authenticate(&engine, authorization.as_deref(), kind, origin)
        .await
        .principal?;
    let wanted = query.get("space").map(String::as_str);
    let space = match kind {
        PrincipalKind::Space => {
            space_http::execute::authorize(&principal, Scope::new(Domain::Events, Action::Read), Effect::Read)?;
            let space = principal
                .space_id
                .clone()
                .ok_or_else(|| ApiError::Forbidden("Use a space key.".into()))?;
            if wanted.is_some_and(|wanted| wanted != space) {
                return Err(ApiError::not_found("space", wanted.unwrap_or_default()));
            }
            space
        }
        PrincipalKind::Account => {
            let space = wanted.ok_or_else(|| {
                ApiError::invalid_field("space", "An account key watches one of its Spaces: add ?space=spc_….")
            })?;
            owned_space(&engine, &principal.account_id, space).await?;
            space.to_owned()
        }
    };
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
    let watched_by_owner = (kind == PrincipalKind::Account).then(|| (principal.account_id.clone(), space.clone()));
    let slot = slots::claim(&engine, &principal.key_id).await?;
    Ok(Tail {
        slot: Some(slot),
        renewed: Instant::now(),
        engine,
        authorization: authorization.unwrap_or_default(),
        kind,
        watched_by_owner,
        feed: FeedTail::after(&space, floor),
        types,
        pending: VecDeque::new(),
        checked: Instant::now(),
        opened: Instant::now(),
    })
}

/// A space key watches its own Space; the owner's account key (`wka_…`) watches any Space
/// of its account, named by `?space=`, so the console can show what an agent does without
/// holding a space key.
fn watcher_kind(authorization: Option<&str>) -> PrincipalKind {
    let credentials = authorization
        .and_then(|header| header.split_once(' '))
        .map(|(_, credentials)| credentials.trim())
        .unwrap_or_default();
    if credentials.starts_with(TokenKind::Account.prefix()) {
        PrincipalKind::Account
    } else {
        PrincipalKind::Space
    }
}

/// Whether `space` is a live Space of `account`; another account's Space, like one that
/// does not exist, is not found.
async fn owned_space(engine: &Engine, account: &str, space: &str) -> Result<(), ApiError> {
    if !has_shape(space, "spc") {
        return Err(ApiError::not_found("space", space));
    }
    let record = space_http::keys::space_meta(space);
    let owner = engine.store().get(&record.pk, &record.sk).await?.and_then(|item| {
        item.body
            .get("account_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    });
    match owner {
        Some(owner) if owner == account => Ok(()),
        _ => Err(ApiError::not_found("space", space)),
    }
}

fn first_id_at(millis: u64) -> String {
    first_at(EVENT_ID_PREFIX, millis)
}

/// Where one open stream is in the feed.
struct Tail {
    engine: Engine,
    authorization: String,
    kind: PrincipalKind,
    /// The account and Space an owner watches: the stream ends when the Space is deleted.
    watched_by_owner: Option<(String, String)>,
    /// Starts where the client resumed (`Last-Event-ID`), or when it connected.
    feed: FeedTail,
    types: Option<Vec<TypePattern>>,
    pending: VecDeque<Event>,
    checked: Instant,
    opened: Instant,
    /// The key's stream slot this stream holds, given back when it ends.
    slot: Option<slots::Slot>,
    renewed: Instant,
}

impl Drop for Tail {
    fn drop(&mut self) {
        // Dropped when the client goes away as when the stream ends: the slot goes back
        // at once rather than when its lease runs out.
        if let (Some(slot), Ok(runtime)) = (self.slot.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(slot.release());
        }
    }
}

impl Tail {
    /// The key still works, and an owner's Space is still theirs and live.
    async fn still_allowed(&self) -> bool {
        if !still_valid(&self.engine, &self.authorization, self.kind).await {
            return false;
        }
        match &self.watched_by_owner {
            Some((account, space)) => !matches!(
                owned_space(&self.engine, account, space).await,
                Err(ApiError::NotFound(_))
            ),
            None => true,
        }
    }

    /// Queues what the feed gained since the last read.
    async fn read(&mut self) -> Result<(), ApiError> {
        for item in self.feed.read(self.engine.store(), BATCH, id_clock_now()).await? {
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
                if !tail.still_allowed().await {
                    return None;
                }
                tail.checked = Instant::now();
            }
            if tail.renewed.elapsed() >= slots::RENEW_EVERY {
                let kept = match tail.slot.as_mut() {
                    Some(slot) => slot.renew().await,
                    None => true,
                };
                if !kept {
                    return None;
                }
                tail.renewed = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_token_watches_as_the_owner_and_anything_else_as_a_space_key() {
        assert_eq!(watcher_kind(Some("Bearer wka_live_abc")), PrincipalKind::Account);
        assert_eq!(watcher_kind(Some("bearer  wka_live_abc ")), PrincipalKind::Account);
        // Whatever is not an account key is checked as a space key, which refuses it.
        for other in [Some("Bearer wks_live_abc"), Some("Bearer"), Some("wka_live_abc"), None] {
            assert_eq!(watcher_kind(other), PrincipalKind::Space, "{other:?}");
        }
    }
}
