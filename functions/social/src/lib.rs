//! Social publishing: the Space's connected accounts, draft posts grouped in clusters (one
//! post per account, each within its network's rules), and going live — scheduled or now —
//! through a worker job that publishes each post exactly once.
//!
//! `social:read` lists accounts and posts, `social:write` writes drafts and pauses
//! accounts, `social:run` schedules, publishes and unschedules. Accounts are connected by
//! the owner (account API, `/spaces/{space}/connections`), never by a space key.

pub mod accounts;
pub mod analytics;
pub mod posts;
pub mod provider;
pub mod publish;
pub mod queue;
pub mod rules;

use axum::Router;
use http::{Method, StatusCode};
use space_auth::{Action, Domain, Scope};
use space_http::fields::WriteMode;
use space_http::operation::{Access, Call, Effect, Param, handler};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

pub use publish::{PUBLISH, Publish};

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Social, action))
}

fn id_param(what: &str) -> Vec<Param> {
    vec![Param::path("id", format!("The {what}'s id."))]
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let read = access(Action::Read);
    let write = access(Action::Write);
    let run = access(Action::Run);
    let mut operations = vec![
        Operation::new(
            "social_accounts_list",
            Method::GET,
            "/social/accounts",
            read,
            Effect::Read,
            "List the Space's social accounts (connected by the owner)",
            handler(accounts::list),
        )
        .answers(StatusCode::OK, || list_schema(accounts::schema())),
        Operation::new(
            "social_accounts_get",
            Method::GET,
            "/social/accounts/{id}",
            read,
            Effect::Read,
            "Get a social account",
            handler(accounts::get),
        )
        .with_params(id_param("account"))
        .answers(StatusCode::OK, accounts::schema),
        Operation::new(
            "social_accounts_boards",
            Method::GET,
            "/social/accounts/{id}/boards",
            read,
            Effect::Read,
            "List a Pinterest account's boards (an empty list on other networks)",
            handler(accounts::list_boards),
        )
        .with_params(id_param("account"))
        .answers(StatusCode::OK, accounts::boards_schema),
        Operation::new(
            "social_accounts_activate",
            Method::PATCH,
            "/social/accounts/{id}/activate",
            write,
            Effect::Update,
            "Pause or resume an account: a paused one takes no new posts and its scheduled posts wait",
            handler(accounts::activate),
        )
        .with_description(
            "An account the Space's owner paused (through the account API) is resumed only by the owner: \
             `active: true` answers 409 until then.",
        )
        .with_params(id_param("account"))
        .with_body(accounts::activate_schema)
        .answers(StatusCode::OK, accounts::schema),
    ];
    for mut operation in posts::resource().operations() {
        let name = operation.name.clone();
        match name.as_str() {
            "social_posts_list" => {
                operation.response = Some(Schema::lazy(|| list_schema(posts::post_schema())));
            }
            "social_posts_get" => operation.response = Some(Schema::lazy(posts::post_schema)),
            "social_posts_create" => {
                operation.summary = "Create draft posts: one per account, grouped in a cluster (the answer)".into();
                operation.params.retain(|param| param.name != "upsert");
                operation.handler = handler(posts::create);
                operation.body = Some(Schema::lazy(|| posts::cluster_request_schema(true)));
                operation.response = Some(Schema::lazy(posts::cluster_schema));
            }
            "social_posts_update" => {
                operation.summary = "Edit one account's draft or failed post; the answer carries warnings".into();
                operation.handler = handler(posts::update_post);
                operation.response = Some(Schema::lazy(|| {
                    let mut schema = posts::post_schema();
                    schema["properties"]["warnings"] =
                        serde_json::json!({"type": "array", "items": posts::warning_schema()});
                    schema
                }));
            }
            "social_posts_delete" => {
                operation.summary = "Delete one account's draft or failed post".into();
                operation.handler = handler(posts::delete_post);
            }
            // A post's accounts and network come from its cluster: PATCH edits it.
            "social_posts_replace" => continue,
            _ => {}
        }
        operations.push(operation);
    }
    for mut operation in queue::slots().operations() {
        let mode = match operation.name.as_str() {
            "social_slots_create" => Some(WriteMode::Create),
            "social_slots_update" => Some(WriteMode::Patch),
            "social_slots_replace" => Some(WriteMode::Replace),
            _ => None,
        };
        if let Some(mode) = mode {
            operation.handler = queue::guarded(operation.handler.clone(), mode);
        }
        operations.push(operation);
    }
    operations.push(
        Operation::new(
            "social_queue",
            Method::GET,
            "/social/queue",
            read,
            Effect::Read,
            "The scheduled posts in publishing order, and each account's next free slot",
            handler(queue::queue),
        )
        .with_params(vec![
            Param::query(
                "account_id",
                serde_json::json!({"type": "string", "maxLength": 100}),
                "Only this account's queue.",
            ),
            Param::query(
                "limit",
                serde_json::json!({"type": "integer", "minimum": 1, "maximum": queue::MAX_QUEUE, "default": 50}),
                "How many scheduled posts to answer with.",
            ),
        ])
        .answers(StatusCode::OK, queue::queue_schema),
    );
    operations.push(
        Operation::new(
            "social_analytics",
            Method::GET,
            "/social/analytics",
            read,
            Effect::Read,
            "Impressions, likes, comments, shares and clicks per published post and per account",
            handler(analytics::analytics),
        )
        .with_params(vec![
            Param::query(
                "account_id",
                serde_json::json!({"type": "string", "maxLength": 100}),
                "Only this account's posts.",
            ),
            Param::query(
                "from",
                serde_json::json!({"type": "string", "format": "date-time"}),
                "Only posts published at or after this time.",
            ),
            Param::query(
                "to",
                serde_json::json!({"type": "string", "format": "date-time"}),
                "Only posts published at or before this time.",
            ),
        ])
        .answers(StatusCode::OK, analytics::schema),
    );
    operations.extend([
        Operation::new(
            "social_clusters_get",
            Method::GET,
            "/social/clusters/{id}",
            read,
            Effect::Read,
            "Get a cluster with its posts",
            handler(posts::get_cluster),
        )
        .with_params(id_param("cluster"))
        .answers(StatusCode::OK, posts::cluster_schema),
        Operation::new(
            "social_clusters_replace",
            Method::PUT,
            "/social/clusters/{id}",
            write,
            Effect::Replace,
            "Edit every draft or failed post of a cluster (variants not named are kept; published ones stay)",
            handler(posts::replace_cluster),
        )
        .with_params(id_param("cluster"))
        .with_body(|| posts::cluster_request_schema(false))
        .answers(StatusCode::OK, posts::cluster_schema),
        Operation::new(
            "social_clusters_delete",
            Method::DELETE,
            "/social/clusters/{id}",
            write,
            Effect::Delete,
            "Delete a cluster's draft and failed posts (published ones stay)",
            handler(posts::delete_cluster),
        )
        .with_params(id_param("cluster"))
        .answers_no_content(),
    ]);
    for (target, path_segment, what) in [
        (publish::Target::Cluster, "clusters", "cluster"),
        (publish::Target::Post, "posts", "post"),
    ] {
        let answer = move || -> Schema {
            match target {
                publish::Target::Cluster => Schema::lazy(posts::cluster_schema),
                publish::Target::Post => Schema::lazy(posts::post_schema),
            }
        };
        let verbs = [
            (
                publish::Verb::Schedule,
                "schedule",
                format!("Schedule a {what} at a future time or its accounts' next free slots"),
            ),
            (
                publish::Verb::Publish,
                "publish",
                format!("Publish a {what} now (queued, published within seconds)"),
            ),
            (
                publish::Verb::Unschedule,
                "unschedule",
                format!("Take a scheduled {what} back to draft"),
            ),
        ];
        for (verb, name, summary) in verbs {
            let operation = Operation::new(
                format!("social_{path_segment}_{name}"),
                Method::POST,
                format!("/social/{path_segment}/{{id}}/{name}"),
                run,
                Effect::Live,
                summary,
                publish::live(target, verb),
            )
            .with_params(id_param(what));
            let going_live = move |operation: Operation| {
                operation
                    .capped(space_auth::Cap::SocialPublish)
                    .approving_version(move |call: Call| async move {
                        let id = call.path_param("id")?;
                        Ok(match target {
                            publish::Target::Cluster => posts::load_cluster(&call, id).await?.version,
                            publish::Target::Post => posts::load_post(&call, id).await?.version,
                        })
                    })
            };
            let operation = match verb {
                // A scheduled post goes live without another call: it is counted now.
                publish::Verb::Schedule => going_live(operation.with_body(publish::schedule_schema)),
                publish::Verb::Publish => going_live(operation.with_no_input()),
                publish::Verb::Unschedule => operation.with_no_input(),
            };
            operations.push(operation.answers(StatusCode::OK, answer()));
        }
    }
    space_http::operation::describe(
        &mut operations,
        &["social_posts_create", "social_clusters_replace", "social_posts_update"],
        "Each account must be a social account of the Space (and active, for a new post); each post must keep its \
         network's rules for text length, title, board and media (a 422 names `variants.<account id>.<field>`); \
         media must be ready media of the Space.",
    );
    space_http::operation::describe(
        &mut operations,
        &[
            "social_clusters_replace",
            "social_clusters_delete",
            "social_posts_update",
            "social_posts_delete",
        ],
        "A scheduled post is 409 until `unschedule` (social:run) takes it back to a draft: what goes live is \
         changed with the right that makes it go live.",
    );
    space_http::operation::describe(
        &mut operations,
        &["social_clusters_schedule", "social_clusters_publish"],
        "A cluster's call is one use of the key's `social.publish` cap per post it schedules or publishes; \
         a post taken back with `unschedule` does not give its use back.",
    );
    space_http::operation::describe(
        &mut operations,
        &["social_clusters_schedule", "social_posts_schedule"],
        "`scheduled_at` must be in the future; `next_slot` needs a slot of the account (POST /social/slots) that \
         no scheduled post fills within a year.",
    );
    space_http::operation::describe(
        &mut operations,
        &["social_slots_create", "social_slots_update", "social_slots_replace"],
        "`time_zone` must be a zone the tz database has; `account_id`, when given, a social account of the Space.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
