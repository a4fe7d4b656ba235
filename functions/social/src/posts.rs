//! Posts and clusters. `POST /social/posts` writes one draft post per account, grouped in a
//! cluster, in one transaction; a cluster's edit reaches every post not yet live. Each
//! account's post carries what that network will receive: the cluster's content and media
//! unless its variant replaces them, and the network's own fields (title, board).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::try_join_all;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_connections::{self as connections, Network};
use space_http::events::{event_write, update_event_write};
use space_http::fields::{CustomKind, Field, FieldKind, format_datetime, parse_datetime};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Call, Reply};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, FieldErrors};
use space_store::{Condition, Item, Query, Write};

use crate::accounts;
use crate::rules::{self, Draft, Media};

pub const POSTS: &str = "social_posts";
pub const CLUSTERS: &str = "social_clusters";
pub const STATUSES: &[&str] = &["draft", "scheduled", "publishing", "published", "failed"];
/// A cluster's status: its posts' when they agree, `partial` when they do not.
pub const CLUSTER_STATUSES: &[&str] = &["draft", "scheduled", "publishing", "published", "failed", "partial"];
pub const MAX_ACCOUNTS: usize = 20;
pub const MAX_MEDIA: usize = 10;
const MAX_ID_CHARS: usize = 100;
/// The longest text any network takes (Facebook's).
pub const MAX_CONTENT: usize = 63_206;
/// Warnings compare a post with the Space's most recent posts, up to this many.
const WARNING_HORIZON: usize = 500;
const DUPLICATE_DAYS: i64 = 30;
const TOO_CLOSE_MINUTES: i64 = 60;
/// What a write (`social:write`) may change or delete. A scheduled post goes live without
/// another call, so it is taken back to a draft with `unschedule` (`social:run`) first; a
/// post on its way out or out is the network's now.
const EDITABLE: &[&str] = &["draft", "failed"];

/// The post resource: its list and get come from the shared machinery; writes are this
/// module's, since one create makes a cluster of posts.
pub fn resource() -> Resource {
    Resource {
        domain: Domain::Social,
        name: "social_posts",
        collection: POSTS,
        path: "/social/posts",
        item_param: "id",
        singular: "post",
        plural: "posts",
        event_prefix: "social_post",
        id_prefix: "post",
        parent: None,
        fields: vec![
            Field::new(
                "content",
                FieldKind::LongText { max: MAX_CONTENT },
                "The text this account publishes; each network has its own limit.",
            ),
            Field::new(
                "title",
                FieldKind::Text { max: 100 },
                "YouTube (required) and Pinterest only.",
            ),
            Field::new(
                "board_id",
                FieldKind::Text { max: MAX_ID_CHARS },
                "Pinterest only: one of the account's boards.",
            ),
            Field::new(
                "media_ids",
                FieldKind::Custom(media_ids_kind()),
                "Media of the Space (/media) to attach.",
            ),
            Field::new(
                "scheduled_at",
                FieldKind::DateTime,
                "When it is planned for. Scheduling it is `POST …/schedule` (social:run).",
            ),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "account_id",
                field: "account_id",
                kind: FieldKind::Text { max: MAX_ID_CHARS },
            },
            Filter::Equals {
                param: "cluster_id",
                field: "cluster_id",
                kind: FieldKind::Text { max: MAX_ID_CHARS },
            },
            Filter::After {
                param: "from",
                field: "scheduled_at",
            },
            Filter::Before {
                param: "to",
                field: "scheduled_at",
            },
        ],
        rules: None,
    }
}

pub fn media_ids_kind() -> CustomKind {
    CustomKind {
        schema: || json!({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}, "maxItems": MAX_MEDIA}),
        check: check_media_ids,
    }
}

fn check_media_ids(value: &Value) -> Result<Value, String> {
    let list = value.as_array().ok_or("must be an array of media ids")?;
    if list.len() > MAX_MEDIA {
        return Err(format!("must hold at most {MAX_MEDIA} media ids"));
    }
    let mut ids: Vec<String> = Vec::new();
    for id in list {
        let id = id
            .as_str()
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.chars().count() <= MAX_ID_CHARS)
            .ok_or("must be an array of media ids (strings)")?;
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(json!(ids))
}

/// A post as the API shows it.
pub fn post_schema() -> Value {
    let mut schema = resource().item_schema();
    let properties = &mut schema["properties"];
    properties["status"] = json!({"type": "string", "enum": STATUSES});
    properties["account_id"] = json!({"type": "string", "description": "The social account it publishes to."});
    properties["cluster_id"] = json!({"type": "string"});
    properties["network"] = json!({"type": "string", "enum": Network::NAMES});
    properties["network_post_id"] = json!({"type": "string", "description": "The network's id of the published post."});
    properties["network_url"] = json!({"type": "string", "description": "Where the published post is."});
    properties["published_at"] = json!({"type": "string", "format": "date-time"});
    properties["error"] = json!({
        "type": "object",
        "description": "Why publishing failed (`failed`), or why the last attempt did (`scheduled`, retrying).",
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"]
    });
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend([
            json!("status"),
            json!("account_id"),
            json!("cluster_id"),
            json!("network"),
            json!("content"),
        ]);
    }
    schema
}

fn variant_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "content": {"type": "string", "maxLength": MAX_CONTENT, "description": "This account's text instead of the cluster's."},
            "media_ids": (media_ids_kind().schema)(),
            "board_id": {"type": "string", "maxLength": MAX_ID_CHARS, "description": "Pinterest: the board to pin to."},
            "title": {"type": "string", "maxLength": 100, "description": "YouTube (required) and Pinterest."}
        },
        "additionalProperties": false
    })
}

/// `POST /social/posts` and `PUT /social/clusters/{id}`: a create names the accounts.
pub fn cluster_request_schema(create: bool) -> Value {
    let mut properties = json!({
        "content": {"type": "string", "maxLength": MAX_CONTENT, "description": "The text every account publishes unless its variant has its own."},
        "scheduled_at": {"type": "string", "format": "date-time", "description": "When it is planned for; `POST /social/clusters/{id}/schedule` (social:run) schedules it."},
        "media_ids": (media_ids_kind().schema)(),
        "variants": {"type": "object", "description": "Per account id: what differs on that account. An edit replaces the variants it names and keeps the others.", "additionalProperties": variant_schema()}
    });
    let mut required = vec![json!("content")];
    if create {
        properties["account_ids"] = json!({
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
            "minItems": 1,
            "maxItems": MAX_ACCOUNTS,
            "uniqueItems": true,
            "description": "The social accounts to post to: one post each."
        });
        required.push(json!("account_ids"));
    }
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

pub fn warning_schema() -> Value {
    json!({
        "type": "object",
        "description": "Worth a look, never an error: `DUPLICATE_CONTENT` (the same text on the account within 30 days), `TOO_CLOSE` (another post on the account within 60 minutes); looked for among the Space's 500 most recently created posts.",
        "properties": {
            "code": {"type": "string", "enum": ["DUPLICATE_CONTENT", "TOO_CLOSE"]},
            "message": {"type": "string"},
            "account_id": {"type": "string"},
            "post_id": {"type": "string", "description": "The other post."}
        },
        "required": ["code", "message", "account_id", "post_id"]
    })
}

pub fn cluster_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "content": {"type": "string"},
            "media_ids": {"type": "array", "items": {"type": "string"}},
            "scheduled_at": {"type": ["string", "null"], "format": "date-time"},
            "variants": {"type": "object", "additionalProperties": variant_schema()},
            "status": {"type": "string", "enum": CLUSTER_STATUSES},
            "posts": {"type": "array", "items": post_schema()},
            "warnings": {"type": "array", "items": warning_schema()},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "content", "media_ids", "variants", "status", "posts", "warnings", "version"]
    })
}

/// A cluster request, checked field by field.
struct ClusterInput {
    content: String,
    account_ids: Vec<String>,
    scheduled_at: Option<String>,
    media_ids: Vec<String>,
    variants: BTreeMap<String, Map<String, Value>>,
}

fn parse_cluster(body: &Value, create: bool) -> Result<ClusterInput, ApiError> {
    let mut errors = FieldErrors::new();
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("body", "must be a JSON object"));
    };
    let allowed: &[&str] = if create {
        &["content", "account_ids", "scheduled_at", "media_ids", "variants"]
    } else {
        &["content", "scheduled_at", "media_ids", "variants"]
    };
    for name in object.keys().filter(|name| !allowed.contains(&name.as_str())) {
        let why = if name == "account_ids" {
            "A cluster's accounts are fixed: create another cluster, or delete one account's post.".to_owned()
        } else {
            format!("is not accepted; send {}", allowed.join(", "))
        };
        errors.insert(name.clone(), vec![why]);
    }
    let content = match object
        .get("content")
        .map(|v| FieldKind::LongText { max: MAX_CONTENT }.check(v))
    {
        Some(Ok(Value::String(text))) => text,
        Some(Err(message)) => {
            errors.insert("content".into(), vec![message]);
            String::new()
        }
        _ => {
            errors.insert(
                "content".into(),
                vec!["The content field is required (it may be empty when media carry the post).".into()],
            );
            String::new()
        }
    };
    let mut account_ids = Vec::new();
    if create {
        match object.get("account_ids").and_then(Value::as_array) {
            Some(ids) if !ids.is_empty() && ids.len() <= MAX_ACCOUNTS => {
                for id in ids {
                    match id.as_str().map(str::trim).filter(|id| !id.is_empty()) {
                        Some(id) if !account_ids.iter().any(|known| known == id) => account_ids.push(id.to_owned()),
                        Some(id) => {
                            errors.insert("account_ids".into(), vec![format!("names `{id}` twice")]);
                        }
                        None => {
                            errors.insert("account_ids".into(), vec!["must hold account ids (strings)".into()]);
                        }
                    }
                }
            }
            _ => {
                errors.insert(
                    "account_ids".into(),
                    vec![format!("must be a list of 1 to {MAX_ACCOUNTS} social account ids")],
                );
            }
        }
    }
    let scheduled_at = match object.get("scheduled_at") {
        None | Some(Value::Null) => None,
        Some(value) => match FieldKind::DateTime.check(value) {
            Ok(Value::String(at)) => Some(at),
            Ok(_) => None,
            Err(message) => {
                errors.insert("scheduled_at".into(), vec![message]);
                None
            }
        },
    };
    let media_ids = match object.get("media_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => match check_media_ids(value) {
            Ok(ids) => strings(&ids),
            Err(message) => {
                errors.insert("media_ids".into(), vec![message]);
                Vec::new()
            }
        },
    };
    let mut variants = BTreeMap::new();
    match object.get("variants") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (account, variant) in given {
                match parse_variant(variant) {
                    Ok(variant) => {
                        variants.insert(account.clone(), variant);
                    }
                    Err(problems) => {
                        for (field, message) in problems {
                            errors
                                .entry(format!("variants.{account}{field}"))
                                .or_default()
                                .push(message);
                        }
                    }
                }
            }
        }
        Some(_) => {
            errors.insert("variants".into(), vec!["must be an object keyed by account id".into()]);
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(ClusterInput {
        content,
        account_ids,
        scheduled_at,
        media_ids,
        variants,
    })
}

/// One account's variant; problems are (`.field` or empty, message).
fn parse_variant(value: &Value) -> Result<Map<String, Value>, Vec<(String, String)>> {
    let Some(object) = value.as_object() else {
        return Err(vec![(String::new(), "must be an object".into())]);
    };
    let mut problems = Vec::new();
    let mut variant = Map::new();
    for (name, value) in object {
        let checked = match name.as_str() {
            "content" => FieldKind::LongText { max: MAX_CONTENT }.check(value),
            "title" => FieldKind::Text { max: 100 }.check(value),
            "board_id" => FieldKind::Text { max: MAX_ID_CHARS }.check(value),
            "media_ids" => check_media_ids(value),
            _ => Err("is not accepted; a variant has content, media_ids, board_id and title".into()),
        };
        match checked {
            Ok(value) => {
                variant.insert(name.clone(), value);
            }
            Err(message) => problems.push((format!(".{name}"), message)),
        }
    }
    if problems.is_empty() {
        Ok(variant)
    } else {
        Err(problems)
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

/// The media items of the Space named in `ids`: `(found, missing or not ready)`.
async fn load_media(call: &Call, ids: &BTreeSet<String>) -> Result<(Vec<Media>, Vec<(String, String)>), ApiError> {
    let space = call.space_id()?;
    let partition = keys::collection_partition(space, "media");
    let reads = ids.iter().map(|id| {
        let partition = partition.clone();
        async move { call.engine.store().get(&partition, id).await.map(|item| (id, item)) }
    });
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (id, item) in try_join_all(reads).await? {
        match item {
            None => problems.push((id.clone(), format!("there is no media `{id}` in this Space"))),
            Some(item) if text(&item.body, "status") != Some("ready") => {
                problems.push((id.clone(), format!("media `{id}` has not finished uploading")))
            }
            Some(item) => found.push(Media {
                id: id.clone(),
                content_type: text(&item.body, "content_type").unwrap_or_default().to_owned(),
            }),
        }
    }
    Ok((found, problems))
}

/// What one account's post says, before the rules look at it.
struct Planned {
    account: Item,
    network: Network,
    content: String,
    title: Option<String>,
    board_id: Option<String>,
    media_ids: Vec<String>,
}

fn plan(account: Item, cluster: &ClusterFields, variant: Option<&Map<String, Value>>) -> Option<Planned> {
    let network = connections::network(&account)?;
    let own = |field: &str| variant.and_then(|v| v.get(field));
    Some(Planned {
        network,
        content: own("content")
            .and_then(Value::as_str)
            .map_or_else(|| cluster.content.clone(), String::from),
        title: own("title").and_then(Value::as_str).map(String::from),
        board_id: own("board_id").and_then(Value::as_str).map(String::from),
        media_ids: own("media_ids").map_or_else(|| cluster.media_ids.clone(), strings),
        account,
    })
}

/// The parts of a cluster its posts inherit.
struct ClusterFields {
    content: String,
    media_ids: Vec<String>,
}

/// Checks every planned post against its network's rules and the Space's media; each
/// problem is reported under `variants.<account id>.<field>`.
async fn check_plans(call: &Call, plans: &[Planned], errors: &mut FieldErrors) -> Result<(), ApiError> {
    let wanted: BTreeSet<String> = plans.iter().flat_map(|p| p.media_ids.iter().cloned()).collect();
    let (media, missing) = load_media(call, &wanted).await?;
    for planned in plans {
        let account = &planned.account.sk;
        for (id, message) in missing.iter().filter(|(id, _)| planned.media_ids.contains(id)) {
            let _ = id;
            errors
                .entry(format!("variants.{account}.media_ids"))
                .or_default()
                .push(message.clone());
        }
        let attached: Vec<Media> = planned
            .media_ids
            .iter()
            .filter_map(|id| media.iter().find(|m| &m.id == id).cloned())
            .collect();
        if attached.len() != planned.media_ids.len() {
            continue;
        }
        let boards = accounts::boards(&planned.account);
        let draft = Draft {
            content: &planned.content,
            title: planned.title.as_deref(),
            board_id: planned.board_id.as_deref(),
            media: &attached,
            boards: &boards,
        };
        for (field, message) in rules::check(planned.network, draft) {
            errors
                .entry(format!("variants.{account}.{field}"))
                .or_default()
                .push(message);
        }
    }
    Ok(())
}

fn post_body(planned: &Planned, cluster_id: &str, scheduled_at: Option<&str>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("cluster_id".into(), json!(cluster_id));
    body.insert("account_id".into(), json!(planned.account.sk));
    body.insert("network".into(), json!(planned.network.as_str()));
    body.insert("content".into(), json!(planned.content));
    body.insert("media_ids".into(), json!(planned.media_ids));
    if let Some(title) = &planned.title {
        body.insert("title".into(), json!(title));
    }
    if let Some(board) = &planned.board_id {
        body.insert("board_id".into(), json!(board));
    }
    if let Some(at) = scheduled_at {
        body.insert("scheduled_at".into(), json!(at));
    }
    body
}

/// The time a post stands for when comparing it with others: when it is planned,
/// published or, failing both, written.
fn moment(body: &Map<String, Value>) -> Option<DateTime<Utc>> {
    ["published_at", "scheduled_at", "created_at"]
        .iter()
        .find_map(|field| text(body, field).and_then(parse_datetime))
}

/// `DUPLICATE_CONTENT` and `TOO_CLOSE` for the posts about to be written, against the
/// Space's recent posts (other than `skip`: the posts being replaced).
async fn warnings(call: &Call, posts: &[Map<String, Value>], skip: &BTreeSet<String>) -> Result<Vec<Value>, ApiError> {
    let partition = keys::collection_partition(call.space_id()?, POSTS);
    let recent = call
        .engine
        .store()
        .query(Query::partition(partition).descending(true).limit(WARNING_HORIZON))
        .await?
        .items;
    let now = call.engine.now();
    let mut found = Vec::new();
    for post in posts {
        let account = text(post, "account_id").unwrap_or_default();
        let at = text(post, "scheduled_at").and_then(parse_datetime);
        for other in recent.iter().filter(|other| !skip.contains(&other.sk)) {
            if text(&other.body, "account_id") != Some(account) {
                continue;
            }
            let other_at = moment(&other.body);
            let same_text = text(&other.body, "content") == text(post, "content");
            let recent_enough =
                other_at.is_some_and(|t| (at.unwrap_or(now) - t).abs() <= TimeDelta::days(DUPLICATE_DAYS));
            if same_text && recent_enough && !text(post, "content").unwrap_or_default().is_empty() {
                found.push(json!({
                    "code": "DUPLICATE_CONTENT",
                    "message": format!("Post `{}` on this account has the same text within {DUPLICATE_DAYS} days.", other.sk),
                    "account_id": account,
                    "post_id": other.sk,
                }));
            }
            let other_planned = text(&other.body, "scheduled_at")
                .or_else(|| text(&other.body, "published_at"))
                .and_then(parse_datetime);
            if let (Some(at), Some(other_at)) = (at, other_planned)
                && (at - other_at).abs() < TimeDelta::minutes(TOO_CLOSE_MINUTES)
            {
                found.push(json!({
                    "code": "TOO_CLOSE",
                    "message": format!("Post `{}` on this account is planned within {TOO_CLOSE_MINUTES} minutes of this one.", other.sk),
                    "account_id": account,
                    "post_id": other.sk,
                }));
            }
        }
    }
    Ok(found)
}

/// A cluster as the API shows it, with its posts (in the order of its accounts).
pub async fn render_cluster(call: &Call, cluster: &Item, warnings: Vec<Value>) -> Result<Value, ApiError> {
    let posts = load_posts(call, cluster).await?;
    let statuses: BTreeSet<&str> = posts.iter().filter_map(|p| text(&p.body, "status")).collect();
    let status = match statuses.len() {
        1 => statuses.into_iter().next().unwrap_or("draft"),
        0 => "draft",
        _ => "partial",
    };
    let mut body = cluster.body.clone();
    body.remove("post_ids");
    body.entry("scheduled_at").or_insert(Value::Null);
    body.insert("status".into(), json!(status));
    body.insert(
        "posts".into(),
        Value::Array(posts.iter().map(Resource::render).collect()),
    );
    body.insert("warnings".into(), Value::Array(warnings));
    body.insert("version".into(), json!(cluster.version));
    Ok(Value::Object(body))
}

/// The posts a cluster still has.
pub async fn load_posts(call: &Call, cluster: &Item) -> Result<Vec<Item>, ApiError> {
    let partition = keys::collection_partition(call.space_id()?, POSTS);
    let ids = cluster.body.get("post_ids").map(strings).unwrap_or_default();
    let reads = ids.iter().map(|id| call.engine.store().get(&partition, id));
    Ok(try_join_all(reads).await?.into_iter().flatten().collect())
}

pub async fn load_cluster(call: &Call, id: &str) -> Result<Item, ApiError> {
    let partition = keys::collection_partition(call.space_id()?, CLUSTERS);
    call.engine
        .store()
        .get(&partition, id)
        .await?
        .ok_or_else(|| ApiError::not_found("cluster", id))
}

/// `POST /social/posts`.
pub async fn create(call: Call) -> Result<Reply, ApiError> {
    let input = parse_cluster(&call.body, true)?;
    let mut errors = FieldErrors::new();
    let mut accounts = Vec::new();
    for id in &input.account_ids {
        match connections::get(&call.engine, call.space_id()?, id).await? {
            Some(item) if text(&item.body, "kind") == Some(accounts::KIND) => {
                if connections::is_active(&item) {
                    accounts.push(item);
                } else {
                    errors
                        .entry("account_ids".into())
                        .or_default()
                        .push(format!("account `{id}` is inactive: it takes no new posts"));
                }
            }
            _ => errors.entry("account_ids".into()).or_default().push(format!(
                "there is no social account `{id}` in this Space (GET /social/accounts)"
            )),
        }
    }
    for account in input.variants.keys().filter(|a| !input.account_ids.contains(a)) {
        errors.insert(format!("variants.{account}"), vec!["is not one of account_ids".into()]);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let fields = ClusterFields {
        content: input.content.clone(),
        media_ids: input.media_ids.clone(),
    };
    let plans: Vec<Planned> = accounts
        .into_iter()
        .filter_map(|account| {
            let variant = input.variants.get(&account.sk);
            plan(account, &fields, variant)
        })
        .collect();
    check_plans(&call, &plans, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }

    let space = call.space_id()?.to_owned();
    let now = format_datetime(call.engine.now());
    let cluster_id = new_id("clu");
    let mut writes = Vec::new();
    let mut bodies = Vec::new();
    let mut post_ids = Vec::new();
    for planned in &plans {
        let id = new_id("post");
        let mut body = post_body(planned, &cluster_id, input.scheduled_at.as_deref());
        body.insert("id".into(), json!(id));
        body.insert("status".into(), json!("draft"));
        body.insert("created_at".into(), json!(now));
        body.insert("updated_at".into(), json!(now));
        bodies.push(body.clone());
        let key = keys::resource(&keys::collection_partition(&space, POSTS), &id);
        let item = Item::new(key.pk, key.sk, body);
        writes.push(event_write(
            &space,
            "social_post.created",
            &id,
            Resource::render(&item),
            &call.principal,
            call.engine.now(),
        ));
        writes.push(Write::put(item, Condition::NotExists));
        post_ids.push(id);
    }
    let found = warnings(&call, &bodies, &BTreeSet::new()).await?;
    let mut cluster = Map::new();
    cluster.insert("id".into(), json!(cluster_id));
    cluster.insert("content".into(), json!(input.content));
    cluster.insert("media_ids".into(), json!(input.media_ids));
    if let Some(at) = &input.scheduled_at {
        cluster.insert("scheduled_at".into(), json!(at));
    }
    cluster.insert("variants".into(), json!(input.variants));
    cluster.insert("post_ids".into(), json!(post_ids));
    cluster.insert("created_at".into(), json!(now));
    cluster.insert("updated_at".into(), json!(now));
    let key = keys::resource(&keys::collection_partition(&space, CLUSTERS), &cluster_id);
    let cluster = Item::new(key.pk, key.sk, cluster);
    writes.push(Write::put(cluster.clone(), Condition::NotExists));
    call.engine.store().transact(writes).await?;
    Ok(Reply::created(render_cluster(&call, &cluster, found).await?).with_etag(cluster.version))
}

pub async fn get_cluster(call: Call) -> Result<Reply, ApiError> {
    let cluster = load_cluster(&call, call.path_param("id")?).await?;
    Ok(Reply::ok(render_cluster(&call, &cluster, Vec::new()).await?).with_etag(cluster.version))
}

fn not_editable(post: &Item) -> ApiError {
    match text(&post.body, "status") {
        Some("scheduled") => ApiError::Conflict(format!(
            "Post `{id}` is scheduled: take it back to a draft with POST /social/posts/{id}/unschedule \
             (social:run) before changing or deleting it.",
            id = post.sk
        )),
        status => ApiError::Conflict(format!(
            "Post `{}` is {}: what is published or publishing is the network's now.",
            post.sk,
            status.unwrap_or("published")
        )),
    }
}

/// A write to a whole cluster is refused, before anything changes, while one of its posts
/// is scheduled; published ones stay as they are.
fn none_scheduled(posts: &[Item]) -> Result<(), ApiError> {
    match posts.iter().find(|p| text(&p.body, "status") == Some("scheduled")) {
        Some(post) => Err(not_editable(post)),
        None => Ok(()),
    }
}

/// `PUT /social/clusters/{id}`: every draft or failed post takes the new content, media and
/// variants; variants not named are kept.
pub async fn replace_cluster(call: Call) -> Result<Reply, ApiError> {
    let input = parse_cluster(&call.body, false)?;
    let current = load_cluster(&call, call.path_param("id")?).await?;
    call.check_if_match(current.version)?;
    let posts = load_posts(&call, &current).await?;
    none_scheduled(&posts)?;
    let mut variants: BTreeMap<String, Map<String, Value>> = current
        .body
        .get("variants")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let mut errors = FieldErrors::new();
    let members: Vec<&str> = posts.iter().filter_map(|p| text(&p.body, "account_id")).collect();
    for (account, variant) in input.variants {
        if members.contains(&account.as_str()) {
            variants.insert(account, variant);
        } else {
            errors.insert(
                format!("variants.{account}"),
                vec!["is not an account of this cluster".into()],
            );
        }
    }
    let fields = ClusterFields {
        content: input.content.clone(),
        media_ids: input.media_ids.clone(),
    };
    let mut plans = Vec::new();
    let mut editable = Vec::new();
    for post in posts
        .iter()
        .filter(|p| EDITABLE.contains(&text(&p.body, "status").unwrap_or_default()))
    {
        let account_id = text(&post.body, "account_id").unwrap_or_default();
        let Some(account) = connections::get(&call.engine, call.space_id()?, account_id).await? else {
            errors.insert(
                format!("variants.{account_id}"),
                vec!["the account was disconnected; delete this post".into()],
            );
            continue;
        };
        if let Some(planned) = plan(account, &fields, variants.get(account_id)) {
            plans.push(planned);
            editable.push(post);
        }
    }
    check_plans(&call, &plans, &mut errors).await?;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let space = call.space_id()?.to_owned();
    let now = call.engine.now();
    let mut writes = Vec::new();
    let mut bodies = Vec::new();
    for (planned, post) in plans.iter().zip(&editable) {
        let mut body = post_body(planned, &current.sk, input.scheduled_at.as_deref());
        for field in ["id", "status", "created_at", crate::publish::TOKEN, "error"] {
            if let Some(value) = post.body.get(field) {
                body.insert(field.into(), value.clone());
            }
        }
        body.insert("updated_at".into(), json!(format_datetime(now)));
        bodies.push(body.clone());
        let next = Item::new(post.pk.clone(), post.sk.clone(), body).with_version(post.version + 1);
        writes.push(update_event_write(
            &space,
            "social_post.updated",
            &post.sk,
            &Resource::render(post),
            Resource::render(&next),
            &call.principal,
            now,
        ));
        writes.push(Write::put(next, Condition::Version(post.version)));
    }
    let skip: BTreeSet<String> = posts.iter().map(|p| p.sk.clone()).collect();
    let found = warnings(&call, &bodies, &skip).await?;
    let mut cluster = current.clone();
    cluster.body.insert("content".into(), json!(input.content));
    cluster.body.insert("media_ids".into(), json!(input.media_ids));
    match &input.scheduled_at {
        Some(at) => cluster.body.insert("scheduled_at".into(), json!(at)),
        None => cluster.body.remove("scheduled_at"),
    };
    cluster.body.insert("variants".into(), json!(variants));
    cluster.body.insert("updated_at".into(), json!(format_datetime(now)));
    cluster.version += 1;
    writes.push(Write::put(cluster.clone(), Condition::Version(current.version)));
    call.engine.store().transact(writes).await?;
    Ok(Reply::ok(render_cluster(&call, &cluster, found).await?).with_etag(cluster.version))
}

/// `DELETE /social/clusters/{id}`: removes every post not live; the cluster goes when
/// none is left, and stays holding the published ones otherwise.
pub async fn delete_cluster(call: Call) -> Result<Reply, ApiError> {
    let current = load_cluster(&call, call.path_param("id")?).await?;
    call.check_if_match(current.version)?;
    let posts = load_posts(&call, &current).await?;
    none_scheduled(&posts)?;
    let space = call.space_id()?.to_owned();
    let mut writes = Vec::new();
    let mut kept = Vec::new();
    for post in &posts {
        if EDITABLE.contains(&text(&post.body, "status").unwrap_or_default()) {
            writes.push(delete_post_writes(&call, &space, post));
        } else {
            kept.push(post.sk.clone());
        }
    }
    let mut writes: Vec<Write> = writes.into_iter().flatten().collect();
    if kept.is_empty() {
        writes.push(Write::delete(
            current.pk.clone(),
            current.sk.clone(),
            Condition::Version(current.version),
        ));
    } else {
        let mut cluster = current.clone();
        cluster.body.insert("post_ids".into(), json!(kept));
        cluster.version += 1;
        writes.push(Write::put(cluster, Condition::Version(current.version)));
    }
    call.engine.store().transact(writes).await?;
    Ok(Reply::no_content())
}

fn delete_post_writes(call: &Call, space: &str, post: &Item) -> Vec<Write> {
    let mut writes = crate::queue::index_writes(space, Some(post), None);
    writes.extend(crate::publish::cancel(post));
    writes.extend([
        Write::delete(post.pk.clone(), post.sk.clone(), Condition::Version(post.version)),
        event_write(
            space,
            "social_post.deleted",
            &post.sk,
            Resource::render(post),
            &call.principal,
            call.engine.now(),
        ),
    ]);
    writes
}

pub async fn load_post(call: &Call, id: &str) -> Result<Item, ApiError> {
    resource().load(call, id).await
}

/// `PATCH /social/posts/{id}`: one account's post, while a draft or failed.
pub async fn update_post(call: Call) -> Result<Reply, ApiError> {
    let resource = resource();
    let validated = space_http::fields::validate(&resource.fields, &call.body, space_http::fields::WriteMode::Patch)
        .map_err(ApiError::validation)?;
    let current = load_post(&call, call.path_param("id")?).await?;
    call.check_if_match(current.version)?;
    let status = text(&current.body, "status").unwrap_or_default();
    if !EDITABLE.contains(&status) {
        return Err(not_editable(&current));
    }
    let mut next = current.clone();
    validated.apply(&mut next.body, space_http::fields::WriteMode::Patch, &[]);
    let account_id = text(&current.body, "account_id").unwrap_or_default().to_owned();
    let account = connections::get(&call.engine, call.space_id()?, &account_id)
        .await?
        .ok_or_else(|| ApiError::Conflict("The post's account was disconnected; delete the post.".into()))?;
    let fields = ClusterFields {
        content: text(&next.body, "content").unwrap_or_default().to_owned(),
        media_ids: next.body.get("media_ids").map(strings).unwrap_or_default(),
    };
    let mut own = Map::new();
    for field in ["title", "board_id"] {
        if let Some(value) = next.body.get(field) {
            own.insert(field.into(), value.clone());
        }
    }
    let plans: Vec<Planned> = plan(account, &fields, Some(&own)).into_iter().collect();
    let mut errors = FieldErrors::new();
    check_plans(&call, &plans, &mut errors).await?;
    if !errors.is_empty() {
        // One post: its fields are its own, not a variant's.
        let prefix = format!("variants.{account_id}.");
        let errors = errors
            .into_iter()
            .map(|(field, messages)| (field.strip_prefix(&prefix).unwrap_or(&field).to_owned(), messages))
            .collect();
        return Err(ApiError::validation(errors));
    }
    let now = call.engine.now();
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next.version += 1;
    let skip = BTreeSet::from([current.sk.clone()]);
    let found = warnings(&call, std::slice::from_ref(&next.body), &skip).await?;
    let event = update_event_write(
        call.space_id()?,
        "social_post.updated",
        &current.sk,
        &Resource::render(&current),
        Resource::render(&next),
        &call.principal,
        now,
    );
    let version = next.version;
    let mut shown = Resource::render(&next);
    let mut writes = vec![Write::put(next, Condition::Version(current.version)), event];
    // The cluster shows its posts: an edit of one is a new version of it too, which a
    // cluster's If-Match (and an approval of its schedule or publish) is held to.
    if let Ok(cluster) = load_cluster(&call, text(&current.body, "cluster_id").unwrap_or_default()).await {
        let mut touched = cluster.clone();
        touched.version += 1;
        writes.push(Write::put(touched, Condition::Version(cluster.version)));
    }
    call.engine.store().transact(writes).await?;
    if let Some(object) = shown.as_object_mut() {
        object.insert("warnings".into(), Value::Array(found));
    }
    Ok(Reply::ok(shown).with_etag(version))
}

/// `DELETE /social/posts/{id}`: a post not live; its cluster forgets it (and goes when
/// it was the last).
pub async fn delete_post(call: Call) -> Result<Reply, ApiError> {
    let current = load_post(&call, call.path_param("id")?).await?;
    call.check_if_match(current.version)?;
    if !EDITABLE.contains(&text(&current.body, "status").unwrap_or_default()) {
        return Err(not_editable(&current));
    }
    let space = call.space_id()?.to_owned();
    let mut writes = delete_post_writes(&call, &space, &current);
    let cluster_id = text(&current.body, "cluster_id").unwrap_or_default();
    if let Ok(cluster) = load_cluster(&call, cluster_id).await {
        let rest: Vec<String> = cluster
            .body
            .get("post_ids")
            .map(strings)
            .unwrap_or_default()
            .into_iter()
            .filter(|id| *id != current.sk)
            .collect();
        if rest.is_empty() {
            writes.push(Write::delete(
                cluster.pk.clone(),
                cluster.sk.clone(),
                Condition::Version(cluster.version),
            ));
        } else {
            let mut next = cluster.clone();
            next.body.insert("post_ids".into(), json!(rest));
            next.version += 1;
            writes.push(Write::put(next, Condition::Version(cluster.version)));
        }
    }
    call.engine.store().transact(writes).await?;
    Ok(Reply::no_content())
}
