//! Broadcast campaigns: one approved template sent on one messaging channel to an audience
//! (contacts carrying any of some tags, or a list of contacts). A campaign is written as a
//! `draft` (`messaging:write`) and launched, paused, resumed and cancelled with
//! `messaging:run`; everything after the launch happens on the worker:
//!
//! - [`Expand`] turns the audience into one recipient item per contact (keyed by the
//!   contact's id, put only if absent), a page of contacts per run (read from the
//!   contacts' tag index for a tag audience), its place kept on the
//!   campaign (`expand_after`) and each next page a new job written with that checkpoint.
//! - [`SendBatch`] claims up to [`BATCH`] recipients (`queued → sending`, conditional) and
//!   sends each through the channel's provider, the one the inbox's replies use. The
//!   provider is asked with an idempotency key per recipient (`<campaign>.<contact>`): a
//!   run that died after the provider answered and before the recipient was recorded
//!   finds the recipient `sending`, asks again with the same key and is answered with the
//!   first send, so nobody receives a campaign twice. Its place is kept on the campaign
//!   (`send_after`); a paused campaign writes no next batch, a cancelled one's batches mark
//!   the unsent recipients `cancelled`. A batch that finds its channel paused by the
//!   Space's owner sends nothing and pauses the campaign where it stands (`campaign.paused`
//!   by the system); it is resumed once the channel is.
//! - [`Receipt`] moves a recipient to `delivered` or `read`.
//!
//! Every recipient is counted under exactly one status in `totals`: each move writes, in
//! the recipient's own transaction, one counter of entries into its new status and one of
//! exits from its old one (counters only grow, so a repeated or conflicting move fails
//! whole and nothing drifts); a total is entries minus exits.

use async_trait::async_trait;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Principal, Scope};
use space_connections::messaging::{MessagingProvider, SendError, opted_out, provider_for};
use space_connections::{self as connections, Addressing, Channel, MESSAGING};
use space_http::events::update_event_write;
use space_http::fields::{CustomKind, Field, FieldKind, format_datetime, normalize_tag, parse_datetime};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Handler as CallHandler, Param, Reply, handler};
use space_http::resource::{Filter, PageRequest, Resource, list_partition, list_schema};
use space_http::{ApiError, Engine, FieldErrors, Operation, Schema};
use space_store::{Condition, Item, Query, SortRange, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::templates;

pub const COLLECTION: &str = "messaging_campaigns";
pub const RECIPIENTS: &str = "messaging_campaign_recipients";
pub const TOTALS: &str = "messaging_campaign_totals";
/// The job that turns the audience into recipients, a page at a time.
pub const EXPAND: &str = "messaging.campaign.expand";
/// The job that sends one batch of recipients.
pub const SEND: &str = "messaging.campaign.send";
/// The job that records a provider's receipt on a recipient.
pub const RECEIPT: &str = "messaging.campaign.receipt";
/// Recipients one send job handles.
pub const BATCH: usize = 50;
/// Contacts one expansion job reads.
const EXPAND_PAGE: usize = 100;
pub const STATUSES: &[&str] = &["draft", "scheduled", "sending", "paused", "completed", "cancelled"];
pub const RECIPIENT_STATUSES: &[&str] = &[
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "failed",
    "skipped_opted_out",
    "skipped_no_address",
    "cancelled",
];
/// The buckets of `totals`: a recipient being sent (`sending`) still counts as `queued`.
pub const TOTALS_KEYS: &[&str] = &[
    "queued",
    "sent",
    "delivered",
    "read",
    "failed",
    "skipped_opted_out",
    "skipped_no_address",
    "cancelled",
];
pub const MAX_AUDIENCE_TAGS: usize = 20;
pub const MAX_AUDIENCE_CONTACTS: usize = 1_000;
const MAX_PARAMETERS: usize = 100;
const MAX_PARAMETER: usize = 1_024;
const MAX_ID_CHARS: usize = 100;
/// Counters never expire (the store drops an item only after its `expires_at`).
const NEVER: i64 = 253_402_300_799;
/// How often a checkpoint is tried again when the campaign moved meanwhile.
const CHECKPOINT_TRIES: usize = 5;
/// Fields only the server writes: a replace keeps them.
const SERVER_FIELDS: &[&str] = &["status", "totals"];

const PARAMETERS: FieldKind = FieldKind::Custom(CustomKind {
    schema: || json!({"type": "array", "maxItems": MAX_PARAMETERS, "items": {"type": "string", "minLength": 1, "maxLength": MAX_PARAMETER}}),
    check: |value| {
        let list = value.as_array().ok_or("must be a list of strings")?;
        if list.len() > MAX_PARAMETERS {
            return Err(format!("must hold at most {MAX_PARAMETERS} parameters"));
        }
        let valid = list.iter().all(|item| {
            item.as_str()
                .is_some_and(|text| !text.trim().is_empty() && text.chars().count() <= MAX_PARAMETER)
        });
        if valid {
            Ok(value.clone())
        } else {
            Err(format!(
                "must be non-empty strings of at most {MAX_PARAMETER} characters"
            ))
        }
    },
});

const AUDIENCE: FieldKind = FieldKind::Custom(CustomKind {
    schema: || {
        json!({
            "type": "object",
            "description": "Exactly one of `tags` (contacts carrying any of them) or `contact_ids`.",
            "properties": {
                "tags": {"type": "array", "minItems": 1, "maxItems": MAX_AUDIENCE_TAGS, "items": space_http::fields::label_schema(64)},
                "contact_ids": {"type": "array", "minItems": 1, "maxItems": MAX_AUDIENCE_CONTACTS, "items": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}}
            },
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 1,
            "examples": [{"tags": ["vip"]}]
        })
    },
    check: check_audience,
});

/// An audience: exactly one of a list of tags (normalized) or of contact ids (deduplicated
/// and sorted, the order the expansion walks them in).
fn check_audience(value: &Value) -> Result<Value, String> {
    let object = value.as_object().ok_or("must be an object with tags or contact_ids")?;
    match (object.get("tags"), object.get("contact_ids"), object.len()) {
        (Some(tags), None, 1) => {
            let list = tags
                .as_array()
                .filter(|list| !list.is_empty())
                .ok_or("tags must be a non-empty list")?;
            if list.len() > MAX_AUDIENCE_TAGS {
                return Err(format!("tags: at most {MAX_AUDIENCE_TAGS}"));
            }
            let mut tags = list.iter().map(normalize_tag).collect::<Result<Vec<_>, _>>()?;
            tags.sort();
            tags.dedup();
            Ok(json!({"tags": tags}))
        }
        (None, Some(ids), 1) => {
            let list = ids
                .as_array()
                .filter(|list| !list.is_empty())
                .ok_or("contact_ids must be a non-empty list")?;
            if list.len() > MAX_AUDIENCE_CONTACTS {
                return Err(format!("contact_ids: at most {MAX_AUDIENCE_CONTACTS}"));
            }
            let mut ids = list
                .iter()
                .map(|id| {
                    id.as_str()
                        .map(str::trim)
                        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_CHARS)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("contact_ids must be contact ids of at most {MAX_ID_CHARS} characters"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            ids.dedup();
            Ok(json!({"contact_ids": ids}))
        }
        _ => Err("must hold exactly one of tags or contact_ids".into()),
    }
}

/// The campaign resource: its drafts' CRUD.
pub fn campaigns() -> Resource {
    Resource {
        domain: Domain::Messaging,
        name: "messaging_campaigns",
        collection: COLLECTION,
        path: "/campaigns",
        item_param: "id",
        singular: "campaign",
        plural: "campaigns",
        event_prefix: "campaign",
        id_prefix: "cmp",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "What the campaign is called.").required(),
            Field::new(
                "connection_id",
                FieldKind::Text { max: MAX_ID_CHARS },
                "The messaging channel it sends on (GET /inbox/channels).",
            )
            .required(),
            Field::new(
                "template_id",
                FieldKind::Text { max: MAX_ID_CHARS },
                "The approved template it sends.",
            )
            .required(),
            Field::new("parameters", PARAMETERS, "The template's {{1}}…{{n}}, in order.")
                .default(|| Value::Array(Vec::new())),
            Field::new(
                "audience",
                AUDIENCE,
                "`{\"tags\": [\"vip\"]}` or `{\"contact_ids\": [...]}`.",
            )
            .required(),
            Field::new(
                "scheduled_at",
                FieldKind::DateTime,
                "When a launched campaign starts sending; now when absent or past.",
            ),
        ],
        filters: vec![Filter::Equals {
            param: "status",
            field: "status",
            kind: FieldKind::Enum(STATUSES),
        }],
        rules: Some(rules),
    }
}

fn rules(campaign: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    campaign.entry("status").or_insert_with(|| json!("draft"));
    Ok(())
}

pub fn schema() -> Value {
    let mut schema = campaigns().item_schema();
    let properties = &mut schema["properties"];
    properties["status"] = json!({"type": "string", "enum": STATUSES, "description": "`draft` → launch → `scheduled` → `sending` → `completed`; `paused` ⇄ `sending`; `cancelled`."});
    let buckets: Map<String, Value> = TOTALS_KEYS
        .iter()
        .map(|key| ((*key).to_owned(), json!({"type": "integer", "minimum": 0})))
        .collect();
    properties["totals"] = json!({"type": "object", "properties": buckets, "description": "Recipients by status, each counted once (one being sent counts as queued)."});
    properties["text"] = json!({"type": "string", "description": "What is sent: the template rendered with the parameters, fixed at launch."});
    properties["launched_at"] = json!({"type": "string", "format": "date-time"});
    properties["completed_at"] = json!({"type": "string", "format": "date-time"});
    properties["cancelled_at"] = json!({"type": "string", "format": "date-time"});
    if let Some(required) = schema["required"].as_array_mut() {
        required.push(json!("status"));
    }
    schema
}

pub fn recipient_schema() -> Value {
    json!({
        "type": "object",
        "title": "CampaignRecipient",
        "properties": {
            "id": {"type": "string", "description": "The contact's id."},
            "contact_id": {"type": "string"},
            "campaign_id": {"type": "string"},
            "status": {"type": "string", "enum": RECIPIENT_STATUSES},
            "to": {"type": "string"},
            "message_id": {"type": "string", "description": "The idempotency key the provider is sent with."},
            "provider_message_id": {"type": "string"},
            "error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
            "sent_at": {"type": "string", "format": "date-time"},
            "delivered_at": {"type": "string", "format": "date-time"},
            "read_at": {"type": "string", "format": "date-time"},
            "failed_at": {"type": "string", "format": "date-time"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "contact_id", "status", "version"]
    })
}

fn text<'a>(item: &'a Item, field: &str) -> Option<&'a str> {
    item.body.get(field).and_then(Value::as_str)
}

fn status(item: &Item) -> &str {
    text(item, "status").unwrap_or("draft")
}

pub fn recipients_partition(space: &str, campaign: &str) -> String {
    keys::child_partition(space, RECIPIENTS, campaign)
}

fn totals_partition(space: &str, campaign: &str) -> String {
    keys::child_partition(space, TOTALS, campaign)
}

/// The counter writes of a recipient's move: an exit from `from` (if it was counted) and
/// an entry into `to`.
fn counted(space: &str, campaign: &str, from: Option<&str>, to: &str) -> Vec<Write> {
    let bucket = |status: &str| if status == "sending" { "queued" } else { status }.to_owned();
    let (from, to) = (from.map(bucket), bucket(to));
    if from.as_deref() == Some(to.as_str()) {
        return Vec::new();
    }
    let pk = totals_partition(space, campaign);
    let count = |sk: String| Write::Count {
        pk: pk.clone(),
        sk,
        limit: u64::MAX,
        expires_at: NEVER,
        by: 1,
    };
    let mut writes: Vec<Write> = from.into_iter().map(|from| count(format!("out#{from}"))).collect();
    writes.push(count(format!("in#{to}")));
    writes
}

/// A campaign's totals, from its counters (a handful of items).
pub async fn totals(engine: &Engine, space: &str, campaign: &str) -> Result<Value, StoreError> {
    let page = engine
        .store()
        .query(Query::partition(totals_partition(space, campaign)).limit(4 * TOTALS_KEYS.len()))
        .await?;
    let mut totals: Map<String, Value> = TOTALS_KEYS.iter().map(|key| ((*key).to_owned(), json!(0))).collect();
    for key in TOTALS_KEYS {
        let read = |side: &str| {
            page.items
                .iter()
                .find(|item| item.sk == format!("{side}#{key}"))
                .map_or(0, |item| item.version)
        };
        totals.insert((*key).to_owned(), json!(read("in").saturating_sub(read("out"))));
    }
    Ok(Value::Object(totals))
}

/// A campaign as answered: the item with its totals.
async fn rendered(engine: &Engine, space: &str, campaign: &Item) -> Result<Value, ApiError> {
    let mut view = Resource::render(campaign);
    if let Some(object) = view.as_object_mut() {
        for internal in ["expand_after", "send_after", "expanded"] {
            object.remove(internal);
        }
        object.insert("totals".into(), totals(engine, space, &campaign.sk).await?);
    }
    Ok(view)
}

/// What a launch sends, checked: the connection is a messaging channel of the Space (not
/// paused, when `launching`) and the template is approved and takes exactly the
/// parameters; the rendered text.
async fn check_sendable(
    engine: &Engine,
    space: &str,
    body: &Map<String, Value>,
    launching: bool,
) -> Result<String, ApiError> {
    let connection_id = body.get("connection_id").and_then(Value::as_str).unwrap_or_default();
    let connection = connections::get(engine, space, connection_id)
        .await?
        .filter(|c| text(c, "kind") == Some(MESSAGING) && connections::channel(c).is_some())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "connection_id",
                format!("there is no messaging channel `{connection_id}` in this Space (GET /inbox/channels)"),
            )
        })?;
    if launching {
        refuse_paused(&connection, "launching")?;
    }
    let template_id = body.get("template_id").and_then(Value::as_str).unwrap_or_default();
    let parameters: Vec<String> = body
        .get("parameters")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let (_, text) = templates::render(engine, space, &connection, template_id, &parameters).await?;
    Ok(text)
}

/// 409 when the Space's owner paused the channel: nothing goes out on it until resumed.
fn refuse_paused(connection: &Item, doing: &str) -> Result<(), ApiError> {
    if connections::is_active(connection) {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "The channel `{}` is paused by the Space's owner: resume it before {doing}.",
        connection.sk
    )))
}

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Messaging, action))
}

/// Every campaign operation: the drafts' CRUD (writes only while a draft), the live
/// actions and the recipients.
pub fn operations() -> Vec<Operation> {
    let mut operations = Vec::new();
    for mut operation in campaigns().operations() {
        match operation.name.as_str() {
            "messaging_campaigns_list" => {
                operation.response = Some(Schema::lazy(|| list_schema(schema())));
                operation.description = Some("`totals` are on each campaign read by id.".into());
            }
            "messaging_campaigns_get" => {
                operation.handler = handler(get);
                operation.response = Some(Schema::lazy(schema));
            }
            "messaging_campaigns_create" => {
                operation.handler = checked_draft(operation.handler.clone(), false);
                operation.response = Some(Schema::lazy(schema));
                operation.description = Some(DRAFT_RULE.into());
            }
            "messaging_campaigns_update" | "messaging_campaigns_replace" => {
                operation.handler = checked_draft(operation.handler.clone(), true);
                operation.response = Some(Schema::lazy(schema));
                operation.description = Some(format!("Only a draft is edited (409 otherwise). {DRAFT_RULE}"));
            }
            "messaging_campaigns_delete" => {
                operation.handler = drafts_only(operation.handler.clone());
                operation.description = Some("Only a draft is deleted (409 otherwise); cancel a launched one.".into());
            }
            _ => {}
        }
        operations.push(operation);
    }
    let id = || vec![Param::path("id", "The campaign's id.")];
    let action = |name: &str, summary: &str, description: &str, effect: Effect, run: CallHandler| {
        Operation::new(
            format!("messaging_campaigns_{name}"),
            Method::POST,
            format!("/campaigns/{{id}}/{name}"),
            access(Action::Run),
            effect,
            summary,
            run,
        )
        .with_params(id())
        .with_no_input()
        .with_description(description)
        .answers(StatusCode::OK, schema)
    };
    operations.extend([
        action(
            "launch",
            "Launch a draft campaign: it sends now, or at its scheduled_at",
            "A draft becomes `scheduled` (until `scheduled_at`) or `sending`; anything else is 409 naming its status. \
             The channel must be a messaging connection and the template approved with exactly its parameters \
             (422). The worker sends to each recipient once, in batches, skipping contacts who opted out of the \
             channel (`skipped_opted_out`) and those without an address on it (`skipped_no_address`).",
            Effect::Live,
            handler(|call| async move { act(call, Act::Launch).await }),
        )
        .approving_version(|call: Call| async move { Ok(campaigns().load(&call, call.path_param("id")?).await?.version) }),
        action(
            "pause",
            "Pause a sending campaign (no new batch starts)",
            "Only a `sending` campaign is paused (409 otherwise). A campaign whose channel the Space's owner pauses is paused by its next batch (`campaign.paused`, actor `system`).",
            Effect::Update,
            handler(|call| async move { act(call, Act::Pause).await }),
        ),
        action(
            "resume",
            "Resume a paused campaign",
            "Only a `paused` campaign is resumed (409 otherwise), and not while its channel is paused by the Space's owner (409).",
            Effect::Update,
            handler(|call| async move { act(call, Act::Resume).await }),
        ),
        action(
            "cancel",
            "Cancel a scheduled, sending or paused campaign: unsent recipients become cancelled",
            "A draft is deleted rather than cancelled, and a completed or cancelled campaign is 409.",
            Effect::Update,
            handler(|call| async move { act(call, Act::Cancel).await }),
        ),
    ]);
    let mut params = id();
    params.extend([
        Param::query(
            "status",
            json!({"type": "string", "enum": RECIPIENT_STATUSES}),
            "Only recipients at this status.",
        ),
        Param::query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": space_http::resource::MAX_LIMIT, "default": space_http::resource::DEFAULT_LIMIT}),
            "How many recipients to return.",
        ),
        Param::query(
            "cursor",
            json!({"type": "string"}),
            "The `next_cursor` of the previous page, as the API gave it.",
        ),
    ]);
    operations.push(
        Operation::new(
            "messaging_campaigns_recipients",
            Method::GET,
            "/campaigns/{id}/recipients",
            access(Action::Read),
            Effect::Read,
            "List a campaign's recipients and where each one's message is",
            handler(recipients),
        )
        .with_params(params)
        .answers(StatusCode::OK, || list_schema(recipient_schema())),
    );
    operations
}

const DRAFT_RULE: &str = "`connection_id` must be a messaging channel of the Space and `template_id` an approved \
                          template taking exactly `parameters`, in one of the channel's `languages` when it lists \
                          them (422 otherwise).";

/// Runs `plain` for a campaign still a draft (409 naming its status otherwise).
fn drafts_only(plain: CallHandler) -> CallHandler {
    handler(move |call: Call| {
        let plain = plain.clone();
        async move {
            let current = campaigns().load(&call, call.path_param("id")?).await?;
            if status(&current) != "draft" {
                return Err(not_now(&current, "only a draft is edited or deleted"));
            }
            plain(call).await
        }
    })
}

/// Runs `plain` once what the draft would send is sendable; `edit` also wants a draft.
fn checked_draft(plain: CallHandler, edit: bool) -> CallHandler {
    handler(move |call: Call| {
        let plain = plain.clone();
        async move {
            let space = call.space_id()?.to_owned();
            let mut merged = Map::new();
            if edit {
                let current = campaigns().load(&call, call.path_param("id")?).await?;
                if status(&current) != "draft" {
                    return Err(not_now(&current, "only a draft is edited"));
                }
                merged = current.body;
            }
            if let Some(body) = call.body.as_object() {
                for (field, value) in body {
                    if SERVER_FIELDS.contains(&field.as_str()) {
                        return Err(ApiError::invalid_field(field, "is set by the server"));
                    }
                    merged.insert(field.clone(), value.clone());
                }
            }
            // Malformed fields are the field checks' to answer, in the plain handler.
            let ids_given = ["connection_id", "template_id"]
                .iter()
                .all(|field| merged.get(*field).is_some_and(Value::is_string));
            if ids_given && merged.get("parameters").is_none_or(|p| PARAMETERS.check(p).is_ok()) {
                check_sendable(&call.engine, &space, &merged, false).await?;
            }
            plain(call).await
        }
    })
}

fn not_now(campaign: &Item, why: &str) -> ApiError {
    ApiError::Conflict(format!("The campaign is {}: {why}.", status(campaign)))
}

/// `GET /campaigns/{id}`: the campaign with its totals.
async fn get(call: Call) -> Result<Reply, ApiError> {
    let campaign = campaigns().load(&call, call.path_param("id")?).await?;
    let view = rendered(&call.engine, call.space_id()?, &campaign).await?;
    Ok(Reply::ok(view).with_etag(campaign.version))
}

/// `GET /campaigns/{id}/recipients?status=`.
async fn recipients(call: Call) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::new();
    let wanted = call.query_param("status").map(str::to_owned);
    let page = PageRequest::from_call(&call, &mut errors);
    if let Some(wanted) = &wanted
        && !RECIPIENT_STATUSES.contains(&wanted.as_str())
    {
        errors.insert(
            "status".into(),
            vec![format!("must be one of {}", RECIPIENT_STATUSES.join(", "))],
        );
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let campaign = campaigns().load(&call, call.path_param("id")?).await?;
    let partition = recipients_partition(call.space_id()?, &campaign.sk);
    let listed = list_partition(&call, &partition, SortRange::All, page, |item| {
        wanted.as_deref().is_none_or(|wanted| status(item) == wanted)
    })
    .await?;
    Ok(Reply::ok(listed))
}

/// The live actions on a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Launch,
    Pause,
    Resume,
    Cancel,
}

/// Moves a campaign by `act`, with its event and the job that carries on, in one
/// transaction conditional on the version read.
async fn act(call: Call, act: Act) -> Result<Reply, ApiError> {
    let space = call.space_id()?.to_owned();
    let id = call.path_param("id")?.to_owned();
    let current = campaigns().load(&call, &id).await?;
    call.check_if_match(current.version)?;
    let now = call.engine.now();
    let at = format_datetime(now);
    let mut next = current.clone();
    let expanded = current.body.get("expanded").and_then(Value::as_bool) == Some(true);
    let carry_on = || {
        NewJob::new(
            SEND,
            json!({"space_id": space, "campaign_id": id, "after": current.body.get("send_after").cloned().unwrap_or(Value::Null)}),
            now,
        )
        .write()
    };
    let mut jobs = Vec::new();
    let kind = match (act, status(&current)) {
        (Act::Launch, "draft") => {
            let text = check_sendable(&call.engine, &space, &current.body, true).await?;
            let start = text_at(&current, "scheduled_at").filter(|at| *at > now);
            next.body.insert("text".into(), json!(text));
            next.body.insert(
                "status".into(),
                json!(if start.is_some() { "scheduled" } else { "sending" }),
            );
            next.body.insert("launched_at".into(), json!(at));
            jobs.push(
                NewJob::new(
                    EXPAND,
                    json!({"space_id": space, "campaign_id": id, "after": null}),
                    now,
                )
                .at(start.unwrap_or(now))
                .write(),
            );
            "campaign.launched"
        }
        (Act::Pause, "sending") => {
            next.body.insert("status".into(), json!("paused"));
            "campaign.paused"
        }
        (Act::Resume, "paused") => {
            let connection_id = text(&current, "connection_id").unwrap_or_default();
            if let Some(connection) = connections::get(&call.engine, &space, connection_id).await? {
                refuse_paused(&connection, "resuming the campaign")?;
            }
            next.body.insert("status".into(), json!("sending"));
            if expanded {
                jobs.push(carry_on());
            }
            "campaign.resumed"
        }
        (Act::Cancel, "scheduled" | "sending" | "paused") => {
            next.body.insert("status".into(), json!("cancelled"));
            next.body.insert("cancelled_at".into(), json!(at));
            if expanded {
                jobs.push(carry_on());
            }
            "campaign.cancelled"
        }
        (_, now_status) => {
            let allowed = match act {
                Act::Launch => "only a draft is launched",
                Act::Pause => "only a sending campaign is paused",
                Act::Resume => "only a paused campaign is resumed",
                Act::Cancel => "only a scheduled, sending or paused campaign is cancelled",
            };
            return Err(ApiError::Conflict(format!("The campaign is {now_status}: {allowed}.")));
        }
    };
    next.body.insert("updated_at".into(), json!(at));
    next.version += 1;
    let mut writes = vec![
        Write::put(next.clone(), Condition::Version(current.version)),
        update_event_write(
            &space,
            kind,
            &id,
            &Resource::render(&current),
            Resource::render(&next),
            &call.principal,
            now,
        ),
    ];
    writes.extend(jobs);
    match call.engine.store().transact(writes).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed | StoreError::TransactionConflict { index: 0 }) => {
            return Err(ApiError::Conflict(
                "The campaign changed while it was being moved; read it again.".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let view = rendered(&call.engine, &space, &next).await?;
    Ok(Reply::ok(view).with_etag(next.version))
}

fn text_at(item: &Item, field: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    text(item, field).and_then(parse_datetime)
}

fn payload<'a>(job: &'a Job, name: &str) -> Result<&'a str, JobError> {
    job.payload
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
}

/// The checkpoint a job was written for (`null` at the start).
fn after(job: &Job) -> Option<String> {
    job.payload.get("after").and_then(Value::as_str).map(str::to_owned)
}

fn checkpoint(campaign: &Item, field: &str) -> Option<String> {
    text(campaign, field).map(str::to_owned)
}

async fn load_campaign(engine: &Engine, space: &str, id: &str) -> Result<Option<Item>, StoreError> {
    engine
        .store()
        .get(&keys::collection_partition(space, COLLECTION), id)
        .await
}

/// A campaign's next version with `change` applied.
fn advanced(current: &Item, now: chrono::DateTime<chrono::Utc>, change: impl FnOnce(&mut Map<String, Value>)) -> Item {
    let mut next = current.clone();
    change(&mut next.body);
    next.body.insert("updated_at".into(), json!(format_datetime(now)));
    next.version += 1;
    next
}

/// A campaign move written by the worker, with its event.
fn system_move(space: &str, kind: &str, current: &Item, next: &Item, now: chrono::DateTime<chrono::Utc>) -> Write {
    update_event_write(
        space,
        kind,
        &current.sk,
        &Resource::render(current),
        Resource::render(next),
        &Principal::system(),
        now,
    )
}

/// Turns a launched campaign's audience into recipients, one page of contacts per run.
pub struct Expand;

#[async_trait]
impl Handler for Expand {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let space = payload(job, "space_id")?;
        let id = payload(job, "campaign_id")?;
        let from = after(job);
        let Some(mut campaign) = load_campaign(engine, space, id).await? else {
            return Ok(Outcome::Done);
        };
        if campaign.body.get("expanded").and_then(Value::as_bool) == Some(true)
            || checkpoint(&campaign, "expand_after") != from
        {
            return Ok(Outcome::Done);
        }
        let now = engine.now();
        if status(&campaign) == "scheduled" {
            if text_at(&campaign, "scheduled_at").is_some_and(|at| at > now) {
                // Rescheduled by nothing we know of: wait for the time.
                return Ok(Outcome::Later(text_at(&campaign, "scheduled_at").unwrap_or(now)));
            }
            let next = advanced(&campaign, now, |body| {
                body.insert("status".into(), json!("sending"));
            });
            let writes = vec![
                Write::put(next.clone(), Condition::Version(campaign.version)),
                system_move(space, "campaign.started", &campaign, &next, now),
            ];
            match engine.store().transact(writes).await {
                Ok(()) => campaign = next,
                Err(error) if error.is_condition_failure() => return Err(JobError::Retry("the campaign moved".into())),
                Err(error) => return Err(error.into()),
            }
        }
        let (next_after, finished) = if status(&campaign) == "cancelled" {
            (from.clone(), true)
        } else {
            expand_page(engine, space, &campaign, from.as_deref(), now).await?
        };
        for _ in 0..CHECKPOINT_TRIES {
            let next = advanced(&campaign, now, |body| {
                body.insert("expand_after".into(), json!(next_after));
                if finished {
                    body.insert("expanded".into(), json!(true));
                }
            });
            let mut writes = vec![Write::put(next, Condition::Version(campaign.version))];
            if !finished {
                writes.push(
                    NewJob::new(
                        EXPAND,
                        json!({"space_id": space, "campaign_id": id, "after": next_after}),
                        now,
                    )
                    .write(),
                );
            } else if matches!(status(&campaign), "sending" | "cancelled") {
                writes
                    .push(NewJob::new(SEND, json!({"space_id": space, "campaign_id": id, "after": null}), now).write());
            }
            match engine.store().transact(writes).await {
                Ok(()) => return Ok(Outcome::Done),
                Err(error) if error.is_condition_failure() => {
                    let Some(now_campaign) = load_campaign(engine, space, id).await? else {
                        return Ok(Outcome::Done);
                    };
                    if checkpoint(&now_campaign, "expand_after") != from {
                        return Ok(Outcome::Done);
                    }
                    campaign = now_campaign;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(JobError::Retry("the campaign kept moving".into()))
    }
}

/// Writes the recipients of one page of the audience: where the next page starts and
/// whether this was the last.
async fn expand_page(
    engine: &Engine,
    space: &str,
    campaign: &Item,
    from: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Option<String>, bool), JobError> {
    let audience = campaign.body.get("audience").cloned().unwrap_or(Value::Null);
    let contacts_partition = keys::collection_partition(space, "contacts");
    let (contacts, next_after, finished) = if let Some(ids) = audience.get("contact_ids").and_then(Value::as_array) {
        let ids: Vec<&str> = ids
            .iter()
            .filter_map(Value::as_str)
            .filter(|id| from.is_none_or(|from| *id > from))
            .take(EXPAND_PAGE)
            .collect();
        let mut found = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(contact) = engine.store().get(&contacts_partition, id).await? {
                found.push(contact);
            }
        }
        let finished = ids.len() < EXPAND_PAGE;
        (found, ids.last().map(|id| (*id).to_owned()), finished)
    } else {
        let tags: Vec<&str> = audience
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| tags.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let (entries, finished) = tag_entries(engine, space, &tags, from).await?;
        let last = entries.last().cloned().or_else(|| from.map(str::to_owned));
        let mut chosen = Vec::with_capacity(entries.len());
        for entry in &entries {
            let Some((_, id)) = entry.split_once('#') else {
                continue;
            };
            if let Some(contact) = engine.store().get(&contacts_partition, id).await? {
                chosen.push(contact);
            }
        }
        (chosen, last, finished)
    };
    let channel = campaign_channel(engine, space, campaign).await?;
    for contact in contacts {
        let (status, to) = match address(&contact, channel) {
            _ if opted_out(engine, space, &contact.sk, channel.map_or("", Channel::as_str)).await? => {
                ("skipped_opted_out", None)
            }
            Some(to) => ("queued", Some(to)),
            None => ("skipped_no_address", None),
        };
        let at = format_datetime(now);
        let mut body = Map::new();
        body.insert("id".into(), json!(contact.sk));
        body.insert("contact_id".into(), json!(contact.sk));
        body.insert("campaign_id".into(), json!(campaign.sk));
        body.insert("status".into(), json!(status));
        if let Some(to) = to {
            body.insert("to".into(), json!(to));
        }
        body.insert("message_id".into(), json!(format!("{}.{}", campaign.sk, contact.sk)));
        body.insert("created_at".into(), json!(at));
        body.insert("updated_at".into(), json!(at));
        let recipient = Item::new(recipients_partition(space, &campaign.sk), contact.sk.clone(), body);
        let mut writes = vec![Write::put(recipient, Condition::NotExists)];
        writes.extend(counted(space, &campaign.sk, None, status));
        match engine.store().transact(writes).await {
            // Already a recipient: an earlier run of this page wrote (and counted) it.
            Ok(()) => {}
            Err(error) if error.is_condition_failure() => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok((next_after, finished))
}

/// The next page of the audience tags' index entries (`<tag>#<contact id>`, the tags in
/// order) after the entry `from`; whether none are left. The contacts' tag index is read,
/// never the contacts; a contact carrying two of the tags comes twice and is written once.
async fn tag_entries(
    engine: &Engine,
    space: &str,
    tags: &[&str],
    from: Option<&str>,
) -> Result<(Vec<String>, bool), StoreError> {
    let index = keys::lookup_partition(space, &keys::index_scope("contacts", None), "tags");
    // In the order of the entries, which is not quite the tags' own ("a b#" < "a#").
    let mut prefixes: Vec<String> = tags.iter().map(|tag| format!("{tag}#")).collect();
    prefixes.sort();
    for prefix in prefixes {
        let after = match from {
            Some(from) if from.starts_with(&prefix) => Some(from.to_owned()),
            // Past this tag's entries already.
            Some(from) if from > prefix.as_str() => continue,
            _ => None,
        };
        let page = engine
            .store()
            .query(
                Query::partition(index.clone())
                    .range(SortRange::BeginsWith(prefix))
                    .after(after)
                    .limit(EXPAND_PAGE),
            )
            .await?;
        if !page.items.is_empty() {
            return Ok((page.items.into_iter().map(|entry| entry.sk).collect(), false));
        }
    }
    Ok((Vec::new(), true))
}

async fn campaign_channel(engine: &Engine, space: &str, campaign: &Item) -> Result<Option<Channel>, StoreError> {
    let connection = connections::get(engine, space, text(campaign, "connection_id").unwrap_or_default()).await?;
    Ok(connection.as_ref().and_then(connections::channel))
}

/// Where a contact is reached on `channel`, if anywhere.
fn address(contact: &Item, channel: Option<Channel>) -> Option<String> {
    let field = match channel?.addressing() {
        Addressing::Phone => "phone",
        Addressing::Email => "email",
        Addressing::Handle => return None,
    };
    text(contact, field).filter(|to| !to.is_empty()).map(str::to_owned)
}

/// Sends (or, once the campaign is cancelled, cancels) one batch of recipients.
pub struct SendBatch;

/// What a batch does to its recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Send,
    Cancel,
}

/// Waits after a provider's transient failures within a batch.
pub const RETRY_DELAYS: &[i64] = &[30, 120, 600, 1_800];

#[async_trait]
impl Handler for SendBatch {
    fn retry_delays(&self) -> &[i64] {
        RETRY_DELAYS
    }

    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let space = payload(job, "space_id")?;
        let id = payload(job, "campaign_id")?;
        let from = after(job);
        let Some(mut campaign) = load_campaign(engine, space, id).await? else {
            return Ok(Outcome::Done);
        };
        if campaign.body.get("expanded").and_then(Value::as_bool) != Some(true)
            || checkpoint(&campaign, "send_after") != from
        {
            return Ok(Outcome::Done);
        }
        let mode = match status(&campaign) {
            "sending" => Mode::Send,
            "cancelled" => Mode::Cancel,
            _ => return Ok(Outcome::Done),
        };
        let connection = connections::get(engine, space, text(&campaign, "connection_id").unwrap_or_default()).await?;
        if mode == Mode::Send && connection.as_ref().is_some_and(|c| !connections::is_active(c)) {
            return pause_for_channel(engine, space, campaign).await;
        }
        let page = engine
            .store()
            .query(
                Query::partition(recipients_partition(space, id))
                    .after(from.clone())
                    .limit(BATCH),
            )
            .await?;
        let finished = page.last_sk.is_none() || page.items.len() < BATCH;
        let next_after = page.items.last().map(|item| item.sk.clone()).or(from.clone());
        let batch = Batch {
            engine,
            space,
            campaign: &campaign,
            connection: connection.as_ref(),
        };
        for recipient in page.items {
            batch.handle(recipient, mode).await?;
        }
        let now = engine.now();
        for _ in 0..CHECKPOINT_TRIES {
            let completes = finished && mode == Mode::Send;
            let next = advanced(&campaign, now, |body| {
                body.insert("send_after".into(), json!(next_after));
                if completes {
                    body.insert("status".into(), json!("completed"));
                    body.insert("completed_at".into(), json!(format_datetime(now)));
                }
            });
            let mut writes = vec![Write::put(next.clone(), Condition::Version(campaign.version))];
            if completes {
                writes.push(system_move(space, "campaign.completed", &campaign, &next, now));
            } else if !finished {
                writes.push(
                    NewJob::new(
                        SEND,
                        json!({"space_id": space, "campaign_id": id, "after": next_after}),
                        now,
                    )
                    .write(),
                );
            }
            match engine.store().transact(writes).await {
                Ok(()) => return Ok(Outcome::Done),
                Err(error) if error.is_condition_failure() => {
                    let Some(now_campaign) = load_campaign(engine, space, id).await? else {
                        return Ok(Outcome::Done);
                    };
                    let same_mode = matches!(
                        (mode, status(&now_campaign)),
                        (Mode::Send, "sending") | (Mode::Cancel, "cancelled")
                    );
                    // Paused or cancelled meanwhile: the move enqueued what carries on.
                    if checkpoint(&now_campaign, "send_after") != from || !same_mode {
                        return Ok(Outcome::Done);
                    }
                    campaign = now_campaign;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(JobError::Retry("the campaign kept moving".into()))
    }
}

/// Pauses a sending campaign whose channel the Space's owner paused, its checkpoint kept
/// so that a resume starts again with the batch that found the channel paused.
async fn pause_for_channel(engine: &Engine, space: &str, mut campaign: Item) -> Result<Outcome, JobError> {
    for _ in 0..CHECKPOINT_TRIES {
        let now = engine.now();
        let next = advanced(&campaign, now, |body| {
            body.insert("status".into(), json!("paused"));
        });
        let writes = vec![
            Write::put(next.clone(), Condition::Version(campaign.version)),
            system_move(space, "campaign.paused", &campaign, &next, now),
        ];
        match engine.store().transact(writes).await {
            Ok(()) => return Ok(Outcome::Done),
            Err(error) if error.is_condition_failure() => {
                match load_campaign(engine, space, &campaign.sk).await? {
                    // Paused, cancelled or resumed meanwhile: that move decides what follows.
                    Some(now_campaign) if status(&now_campaign) == "sending" => campaign = now_campaign,
                    _ => return Ok(Outcome::Done),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(JobError::Retry("the campaign kept moving".into()))
}

/// What one batch works with.
struct Batch<'a> {
    engine: &'a Engine,
    space: &'a str,
    campaign: &'a Item,
    connection: Option<&'a Item>,
}

impl Batch<'_> {
    /// Moves `recipient` to `status` (with `change`), counted; `false` when it moved meanwhile.
    async fn move_to(
        &self,
        recipient: &Item,
        status_to: &str,
        change: impl FnOnce(&mut Map<String, Value>),
        extra: Vec<Write>,
    ) -> Result<Option<Item>, JobError> {
        let now = self.engine.now();
        let mut next = recipient.clone();
        let at = format_datetime(now);
        next.body.insert("status".into(), json!(status_to));
        if matches!(status_to, "sent" | "failed" | "delivered" | "read") {
            next.body.insert(format!("{status_to}_at"), json!(at));
        }
        next.body.insert("updated_at".into(), json!(at));
        change(&mut next.body);
        next.version += 1;
        let mut writes = vec![Write::put(next.clone(), Condition::Version(recipient.version))];
        writes.extend(counted(
            self.space,
            &self.campaign.sk,
            Some(status(recipient)),
            status_to,
        ));
        writes.extend(extra);
        for _ in 0..CHECKPOINT_TRIES {
            match self.engine.store().transact(writes.clone()).await {
                Ok(()) => return Ok(Some(next)),
                Err(error) if error.is_condition_failure() => {
                    // Another move of the recipient wins; a race on a shared counter is
                    // tried again, the recipient's condition still guarding it.
                    let stored = self.engine.store().get(&recipient.pk, &recipient.sk).await?;
                    if stored.is_none_or(|stored| stored.version != recipient.version) {
                        return Ok(None);
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(JobError::Retry(
            "the campaign's totals kept being written meanwhile".into(),
        ))
    }

    async fn handle(&self, recipient: Item, mode: Mode) -> Result<(), JobError> {
        let current = status(&recipient).to_owned();
        match (mode, current.as_str()) {
            (Mode::Cancel, "queued") => {
                self.move_to(&recipient, "cancelled", |_| {}, Vec::new()).await?;
                Ok(())
            }
            // Claimed before the cancel: it may have reached the provider, so it is
            // finished (the provider answers a repeat with the first send).
            (_, "sending") => self.send(recipient).await,
            (Mode::Send, "queued") => {
                let channel = self.connection.and_then(connections::channel);
                let contact = text(&recipient, "contact_id").unwrap_or_default();
                if opted_out(self.engine, self.space, contact, channel.map_or("", Channel::as_str)).await? {
                    self.move_to(&recipient, "skipped_opted_out", |_| {}, Vec::new())
                        .await?;
                    return Ok(());
                }
                match self.move_to(&recipient, "sending", |_| {}, Vec::new()).await? {
                    Some(claimed) => self.send(claimed).await,
                    // Another run claimed it and may have died since: sending it again
                    // under the same key is answered with that run's send.
                    None => match self.engine.store().get(&recipient.pk, &recipient.sk).await? {
                        Some(claimed) if status(&claimed) == "sending" => self.send(claimed).await,
                        _ => Ok(()),
                    },
                }
            }
            _ => Ok(()),
        }
    }

    /// Sends a claimed recipient through the channel's provider, keyed by its message id.
    async fn send(&self, recipient: Item) -> Result<(), JobError> {
        let Some(connection) = self.connection else {
            let error = json!({"code": "CONNECTION_REMOVED", "message": "The messaging connection was removed."});
            self.move_to(
                &recipient,
                "failed",
                |body| {
                    body.insert("error".into(), error);
                },
                Vec::new(),
            )
            .await?;
            return Ok(());
        };
        let message_id = text(&recipient, "message_id").unwrap_or_default().to_owned();
        let mut body = Map::new();
        body.insert("to".into(), recipient.body.get("to").cloned().unwrap_or(Value::Null));
        body.insert(
            "text".into(),
            self.campaign.body.get("text").cloned().unwrap_or(Value::Null),
        );
        body.insert("campaign_id".into(), json!(self.campaign.sk));
        let message = Item::new(recipient.pk.clone(), message_id, body);
        let provider: &dyn MessagingProvider = provider_for(connection);
        match provider.send(self.engine, self.space, connection, &message).await {
            Ok(sent) => {
                let now = self.engine.now();
                let receipts = sent
                    .receipts
                    .iter()
                    .map(|(status, wait)| {
                        NewJob::new(
                            RECEIPT,
                            json!({"space_id": self.space, "campaign_id": self.campaign.sk, "contact_id": recipient.sk, "status": status}),
                            now,
                        )
                        .at(now + *wait)
                        .write()
                    })
                    .collect();
                let provider_id = sent.provider_message_id;
                self.move_to(
                    &recipient,
                    "sent",
                    |body| {
                        body.insert("provider_message_id".into(), json!(provider_id));
                    },
                    receipts,
                )
                .await?;
                Ok(())
            }
            // A messaging provider recognises the idempotency key: asking again is safe.
            Err(SendError::Transient(why) | SendError::Unknown(why)) => Err(JobError::Retry(why)),
            Err(SendError::Permanent { code, message }) => {
                self.move_to(
                    &recipient,
                    "failed",
                    |body| {
                        body.insert("error".into(), json!({"code": code, "message": message}));
                    },
                    Vec::new(),
                )
                .await?;
                Ok(())
            }
        }
    }
}

/// How far along a recipient's status is: receipts only move it forward.
fn rank(status: &str) -> u8 {
    match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        _ => 0,
    }
}

/// A provider's receipt on a campaign message: the recipient moves to `delivered` or `read`.
pub struct Receipt;

#[async_trait]
impl Handler for Receipt {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let space = payload(job, "space_id")?;
        let id = payload(job, "campaign_id")?;
        let wanted = payload(job, "status")?;
        if !matches!(wanted, "delivered" | "read") {
            return Err(JobError::Fail(format!("`{wanted}` is not a receipt")));
        }
        let Some(campaign) = load_campaign(engine, space, id).await? else {
            return Ok(Outcome::Done);
        };
        let batch = Batch {
            engine,
            space,
            campaign: &campaign,
            connection: None,
        };
        let partition = recipients_partition(space, id);
        let contact = payload(job, "contact_id")?;
        // The other receipt of the same message may be moving it at the same moment.
        for _ in 0..CHECKPOINT_TRIES {
            let Some(recipient) = engine.store().get(&partition, contact).await? else {
                return Ok(Outcome::Done);
            };
            let current = status(&recipient);
            if rank(current) == 0 || rank(current) >= rank(wanted) {
                return Ok(Outcome::Done);
            }
            if batch.move_to(&recipient, wanted, |_| {}, Vec::new()).await?.is_some() {
                return Ok(Outcome::Done);
            }
        }
        Err(JobError::Retry(
            "the recipient kept moving while its receipt was recorded".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_is_tags_or_contacts_never_both() {
        assert_eq!(
            check_audience(&json!({"tags": ["vip", "vip", "beta"]})),
            Ok(json!({"tags": ["beta", "vip"]}))
        );
        assert_eq!(
            check_audience(&json!({"contact_ids": ["con_b", "con_a", "con_b"]})),
            Ok(json!({"contact_ids": ["con_a", "con_b"]}))
        );
        for refused in [
            json!({}),
            json!({"tags": []}),
            json!({"tags": ["vip"], "contact_ids": ["con_a"]}),
            json!({"segment": "all"}),
            json!(["vip"]),
            json!({"contact_ids": [1]}),
        ] {
            assert!(check_audience(&refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_move_counts_one_exit_and_one_entry() {
        let writes = counted("spc", "cmp", Some("queued"), "sent");
        assert_eq!(writes.len(), 2);
        assert!(
            counted("spc", "cmp", Some("queued"), "sending").is_empty(),
            "a claim is still queued"
        );
        assert_eq!(counted("spc", "cmp", None, "queued").len(), 1);
    }
}
