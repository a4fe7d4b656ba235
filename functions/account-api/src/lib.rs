//! The account API: what only an owner may do. Spaces, space keys (minted here, the token
//! shown once), and secret values (written to the vault, never read back).
//!
//! The functions in [`spaces`], [`keys`] and [`secrets`] hold the rules and take plain
//! arguments, so `spacectl` and the tests use them without HTTP; [`operations`] wraps
//! them as routes. The owner's web console ([`console`]) is served from here too.

pub mod approvals;
pub mod automations;
pub mod catalogue;
pub mod connections;
pub mod console;
pub mod jobs;
pub mod keys;
pub mod mcp_setup;
pub mod purge;
pub mod secrets;
pub mod spaces;
pub mod suppressions;

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_http::operation::{Access, Effect, Handler, Param};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

fn operation(name: &str, method: Method, path: &str, effect: Effect, summary: &str, handler: Handler) -> Operation {
    let params = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| match name {
            "space" => Param::path("space", "The Space's id."),
            "key" => Param::path("key", "The key's id."),
            "connection" => Param::path("connection", "The connection's id."),
            "approval" => Param::path("approval", "The approval's id."),
            "automation" => Param::path("automation", "The automation's id."),
            "address" => Param::path("address", "The email address (URL-encoded)."),
            _ => Param {
                schema: json!({"type": "string", "pattern": secrets::NAME_PATTERN}),
                ..Param::path("name", "The secret's name.")
            },
        })
        .collect();
    Operation::new(name, method, path, Access::Account, effect, summary, handler).with_params(params)
}

fn space_name_body() -> Value {
    json!({
        "type": "object",
        "properties": {"name": space_http::fields::label_schema(spaces::MAX_NAME_CHARS)},
        "required": ["name"],
        "additionalProperties": false
    })
}

fn secret_value_body() -> Value {
    json!({
        "type": "object",
        "properties": {"value": {"type": "string", "minLength": 1, "maxLength": secrets::MAX_VALUE_BYTES, "description": "At most 65,536 bytes once encoded as UTF-8 (Secrets Manager's limit): as many ASCII characters, fewer of others."}},
        "required": ["value"],
        "additionalProperties": false
    })
}

/// Every operation of the account API, and the console's routes.
pub fn operations() -> Vec<Operation> {
    let mut operations = api_operations();
    operations.extend(console::operations());
    operations
}

fn api_operations() -> Vec<Operation> {
    use space_http::resource::page_params;
    let mut list_spaces = operation(
        "spaces_list",
        Method::GET,
        "/spaces",
        Effect::Read,
        "List the account's spaces",
        spaces::list_handler(),
    );
    list_spaces.params = page_params();
    let mut list_keys = operation(
        "keys_list",
        Method::GET,
        "/spaces/{space}/keys",
        Effect::Read,
        "List a Space's keys (never their tokens)",
        keys::list_handler(),
    );
    list_keys.params.extend(page_params());
    let mut list_secrets = operation(
        "secret_values_list",
        Method::GET,
        "/spaces/{space}/secrets",
        Effect::Read,
        "List a Space's secret names",
        secrets::list_handler(),
    );
    list_secrets.params.extend(page_params());
    let mut list_approvals = operation(
        "approvals_list",
        Method::GET,
        "/spaces/{space}/approvals",
        Effect::Read,
        "List a Space's approvals: live actions of keys with `approval_required`, oldest first",
        approvals::list_handler(),
    );
    list_approvals.params.push(Param::query(
        "status",
        json!({"type": "string", "enum": approvals::STATUSES}),
        "Only approvals in this status (`pending`: what waits for you).",
    ));
    list_approvals.params.extend(page_params());
    let mut list_automations = operation(
        "automations_owner_list",
        Method::GET,
        "/spaces/{space}/automations",
        Effect::Read,
        "List a Space's automations, newest first",
        automations::list_handler(),
    );
    list_automations.params.extend(page_params());
    let mut operations = vec![
        list_automations.answers(StatusCode::OK, || list_schema(::automations::definition::schema())),
        operation(
            "automations_owner_create",
            Method::POST,
            "/spaces/{space}/automations",
            Effect::Create,
            "Define an automation: a trigger (manual, event, schedule) and its steps",
            automations::create_handler(),
        )
        .showing_secret()
        .with_description(::automations::owner::RULES)
        .with_body(Schema::lazy(|| ::automations::definition::request_schema(false)).named("AutomationCreate"))
        .answers(
            StatusCode::CREATED,
            Schema::lazy(::automations::definition::schema).named("Automation"),
        ),
        operation(
            "automations_owner_get",
            Method::GET,
            "/spaces/{space}/automations/{automation}",
            Effect::Read,
            "Get an automation",
            automations::get_handler(),
        )
        .answers(
            StatusCode::OK,
            Schema::lazy(::automations::definition::schema).named("Automation"),
        ),
        operation(
            "automations_owner_update",
            Method::PATCH,
            "/spaces/{space}/automations/{automation}",
            Effect::Update,
            "Change an automation (any of its fields; `enabled: false` pauses its triggers)",
            automations::update_handler(),
        )
        .with_description(::automations::owner::RULES)
        .with_body(Schema::lazy(|| ::automations::definition::request_schema(true)).named("AutomationUpdate"))
        .answers(
            StatusCode::OK,
            Schema::lazy(::automations::definition::schema).named("Automation"),
        ),
        operation(
            "automations_owner_delete",
            Method::DELETE,
            "/spaces/{space}/automations/{automation}",
            Effect::Delete,
            "Delete an automation: its triggers stop, and it and its runs are no longer shown",
            automations::delete_handler(),
        )
        .answers_no_content(),
    ];
    operations.extend(vec![
        list_approvals.answers(StatusCode::OK, || list_schema(approvals::schema())),
        operation(
            "approvals_get",
            Method::GET,
            "/spaces/{space}/approvals/{approval}",
            Effect::Read,
            "Get an approval: the call that waits, or what it answered",
            approvals::get_handler(),
        )
        .answers(StatusCode::OK, Schema::lazy(approvals::schema).named("Approval")),
        operation(
            "approvals_approve",
            Method::POST,
            "/spaces/{space}/approvals/{approval}/approve",
            Effect::Update,
            "Approve a pending live action: the worker runs it once, as its key",
            approvals::approve_handler(),
        )
        .with_description("Approving an approved approval answers it as it is; a rejected one is 409.")
        .with_no_input()
        .answers(StatusCode::OK, Schema::lazy(approvals::schema).named("Approval")),
        operation(
            "approvals_reject",
            Method::POST,
            "/spaces/{space}/approvals/{approval}/reject",
            Effect::Update,
            "Reject a pending live action: it is never run",
            approvals::reject_handler(),
        )
        .with_description("Rejecting a rejected approval answers it as it is; an approved one is 409.")
        .with_optional_body(Schema::lazy(approvals::reject_schema).named("ApprovalReject"))
        .answers(StatusCode::OK, Schema::lazy(approvals::schema).named("Approval")),
        operation(
            "scopes_list",
            Method::GET,
            "/scopes",
            Effect::Read,
            "The scope catalogue: every domain with the actions it offers, and the toolsets a key may pin",
            catalogue::get_handler(),
        )
        .answers(StatusCode::OK, Schema::lazy(catalogue::schema).named("ScopeCatalogue")),
        list_spaces.answers(StatusCode::OK, || list_schema(spaces::schema())),
        operation(
            "spaces_create",
            Method::POST,
            "/spaces",
            Effect::Create,
            "Create a Space",
            spaces::create_handler(),
        )
        .with_body(Schema::lazy(space_name_body).named("SpaceCreate"))
        .answers(StatusCode::CREATED, spaces::schema),
        operation(
            "spaces_get",
            Method::GET,
            "/spaces/{space}",
            Effect::Read,
            "Get a Space",
            spaces::get_handler(),
        )
        .answers(StatusCode::OK, spaces::schema),
        operation(
            "spaces_replace",
            Method::PUT,
            "/spaces/{space}",
            Effect::Replace,
            "Rename a Space",
            spaces::replace_handler(),
        )
        .with_body(Schema::lazy(space_name_body).named("SpaceCreate"))
        .answers(StatusCode::OK, spaces::schema),
        operation(
            "spaces_delete",
            Method::DELETE,
            "/spaces/{space}",
            Effect::Delete,
            "Delete a Space: its keys stop working at once, it reads `deleting` while its data is removed, then it is gone",
            spaces::delete_handler(),
        )
        .answers_no_content(),
        list_keys.answers(StatusCode::OK, || list_schema(keys::schema(false))),
        operation(
            "keys_create",
            Method::POST,
            "/spaces/{space}/keys",
            Effect::Create,
            "Mint a space key; the token is in this response only",
            keys::create_handler(),
        )
        .showing_secret()
        .with_description("`expires_at`, when given, lies in the future; otherwise 422.")
        .with_body(Schema::lazy(keys::request_schema).named("KeyCreate"))
        .answers(
            StatusCode::CREATED,
            Schema::lazy(|| keys::schema(true)).named("KeyCreated"),
        ),
        operation(
            "keys_delete",
            Method::DELETE,
            "/spaces/{space}/keys/{key}",
            Effect::Delete,
            "Revoke a space key (effective on the next request)",
            keys::revoke_handler(),
        )
        .answers_no_content(),
        operation(
            "keys_usage",
            Method::GET,
            "/spaces/{space}/keys/{key}/usage",
            Effect::Read,
            "A space key's requests per UTC day over the last 90 days, today and this month",
            keys::usage_handler(),
        )
        .with_description("Counts reach this view within seconds of the requests, in batches.")
        .answers(StatusCode::OK, Schema::lazy(keys::usage_schema).named("KeyUsage")),
        list_secrets.answers(StatusCode::OK, || list_schema(secrets::schema())),
        operation(
            "secret_values_put",
            Method::PUT,
            "/spaces/{space}/secrets/{name}",
            Effect::Replace,
            "Set a secret's value (write-only: no API returns it)",
            secrets::put_handler(),
        )
        .with_body(secret_value_body)
        .answers_no_content(),
        operation(
            "connections_list",
            Method::GET,
            "/spaces/{space}/connections",
            Effect::Read,
            "List a Space's connections (social accounts, …)",
            connections::list_handler(),
        )
        .answers(StatusCode::OK, || list_schema(connections::schema())),
        operation(
            "connections_create",
            Method::POST,
            "/spaces/{space}/connections",
            Effect::Create,
            "Connect an account to a Space; its keys may then use it, never connect or remove one",
            connections::create_handler(),
        )
        .showing_secret()
        .with_description(
            "The fields depend on `kind`: a `social` connection takes `network` and `handle`; a `messaging` one \
             takes `channel` and an `address` on that channel (a phone number in international format for \
             `whatsapp` and `sms`, an email address for `email`, a handle for `instagram` and `messenger`); a \
             `phone` one takes `number` (valid in its country's numbering plan) and `capabilities`; an `ads` one \
             takes an ad `network` (`meta`, `google` or `linkedin`; a `social` one a social network). Only a \
             `phone` connection may use the `aws` provider, only a `mail` one `ses`. A field of another kind, a \
             network of another kind, or an address that is not of its channel, is 422. An `aws` number, and an \
             `ses` sender's domain, belong to one Space: 409 while another Space (or, for a number, another \
             connection) holds it; a domain is free again once SES has deleted its identities.",
        )
        .with_body(connections::request_schema)
        .answers(StatusCode::CREATED, connections::schema),
        operation(
            "connections_get",
            Method::GET,
            "/spaces/{space}/connections/{connection}",
            Effect::Read,
            "Get a connection",
            connections::get_handler(),
        )
        .answers(StatusCode::OK, connections::schema),
        operation(
            "connections_update",
            Method::PATCH,
            "/spaces/{space}/connections/{connection}",
            Effect::Update,
            "Rename a connection, pause or resume it, or change its kind's settings",
            connections::update_handler(),
        )
        .with_description(
            "Changes `name`, `active` (an inactive connection takes no new post, send, reply or campaign launch), and the \
             settings of its kind: `languages` for `messaging` (null: any), `capabilities` for `phone`, `handle` for \
             `social` and `ads`. A setting of another kind is 422: which kind a connection is depends on the stored \
             connection. What it is (kind, network, channel, address, number, provider) does not change: connect \
             the other account instead.",
        )
        .with_body(connections::update_schema)
        .answers(StatusCode::OK, connections::schema),
        operation(
            "connections_delete",
            Method::DELETE,
            "/spaces/{space}/connections/{connection}",
            Effect::Delete,
            "Disconnect: the Space's posts through it fail instead of publishing",
            connections::delete_handler(),
        )
        .answers_no_content(),
        operation(
            "connections_sandbox",
            Method::POST,
            "/spaces/{space}/connections/{connection}/sandbox",
            Effect::Update,
            "Tell a sandbox connection to fail its next publishes (transient or permanent), or every message to some recipients",
            connections::sandbox_handler(),
        )
        .with_body(connections::sandbox_schema)
        .answers(StatusCode::OK, connections::schema),
        operation(
            "connections_inbound",
            Method::POST,
            "/spaces/{space}/connections/{connection}/inbound",
            Effect::Create,
            "Inject an inbound message on a messaging connection, as its provider's signed callback would",
            connections::inbound_handler(),
        )
        .with_description(
            "`from` is an address on the connection's channel (a phone number in international format for \
             `whatsapp` and `sms`, an email address for `email`): another shape is 422, as is a connection that \
             is not a messaging channel (409).",
        )
        .with_body(connections::inbound_schema)
        .answers(StatusCode::CREATED, inbox::inbound::received_schema),
        operation(
            "connections_calls",
            Method::POST,
            "/spaces/{space}/connections/{connection}/calls",
            Effect::Create,
            "Record a call on a phone number's log, as its provider's report of the call would",
            connections::calls_handler(),
        )
        .with_description(phone::calls::RECORD_RULES)
        .with_body(phone::calls::record_schema)
        .answers(StatusCode::CREATED, phone::calls::schema),
        operation(
            "suppressions_list",
            Method::GET,
            "/spaces/{space}/mail/suppressions",
            Effect::Read,
            "List a Space's mail suppression list (addresses that hard-bounced or complained), by address",
            suppressions::list_handler(),
        )
        .with_params(vec![
            Param::path("space", "The Space's id."),
            Param::query(
                "cursor",
                json!({"type": "string"}),
                "The `next_cursor` of the previous page, as the API gave it: any other value is refused (400).",
            ),
        ])
        .answers(StatusCode::OK, suppressions::list_schema),
        operation(
            "suppressions_delete",
            Method::DELETE,
            "/spaces/{space}/mail/suppressions/{address}",
            Effect::Delete,
            "Remove an address from a Space's mail suppression list (mail may go to it again)",
            suppressions::delete_handler(),
        )
        .answers_no_content(),
        operation(
            "secret_values_delete",
            Method::DELETE,
            "/spaces/{space}/secrets/{name}",
            Effect::Delete,
            "Delete a secret and its value",
            secrets::delete_handler(),
        )
        .answers_no_content(),
    ]);
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE_SECRET_VALUES_AND_SIGNING_KEYS;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(api_operations()).merge(console::router())
}
