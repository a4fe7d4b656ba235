//! Ads: the Space's ads accounts and draft campaigns. Accounts are connections of kind
//! `ads`, connected by the owner (account API, `/spaces/{space}/connections`); a key lists
//! them (`ads:read`) and drafts campaigns on them (`ads:write`). Nothing here spends money:
//! a campaign is always a draft, and `POST /ads/campaigns/{id}/launch` answers 403 for
//! every key, because launching is the owner's, in the app.

pub mod accounts;
pub mod campaigns;

use axum::Router;
use http::{Method, StatusCode};
use space_auth::{Action, Domain, Scope};
use space_http::fields::WriteMode;
use space_http::operation::{Access, Answer, Effect, Param, handler};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

fn access(action: Action) -> Access {
    Access::Space(Scope::new(Domain::Ads, action))
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = vec![
        Operation::new(
            "ads_accounts_list",
            Method::GET,
            "/ads/accounts",
            access(Action::Read),
            Effect::Read,
            "List the Space's ads accounts (connected by the owner)",
            handler(accounts::list),
        )
        .answers(StatusCode::OK, || list_schema(accounts::schema())),
        Operation::new(
            "ads_accounts_get",
            Method::GET,
            "/ads/accounts/{id}",
            access(Action::Read),
            Effect::Read,
            "Get an ads account",
            handler(accounts::get),
        )
        .with_params(vec![Param::path("id", "The ads account's id.")])
        .answers(StatusCode::OK, accounts::schema),
    ];
    for mut operation in campaigns::campaigns().operations() {
        let item = || Schema::lazy(campaigns::schema);
        match operation.name.as_str() {
            "ads_campaigns_list" => {
                operation.summary = "List draft ad campaigns (filter by account_id, objective)".into();
                operation.response = Some(Schema::lazy(|| list_schema(campaigns::schema())));
            }
            "ads_campaigns_get" => operation.response = Some(item()),
            "ads_campaigns_create" | "ads_campaigns_update" | "ads_campaigns_replace" => {
                let mode = match operation.name.as_str() {
                    "ads_campaigns_create" => WriteMode::Create,
                    "ads_campaigns_update" => WriteMode::Patch,
                    _ => WriteMode::Replace,
                };
                if mode == WriteMode::Create {
                    operation.summary = "Draft an ad campaign (never launched through the API)".into();
                }
                operation.handler = campaigns::checked(operation.handler.clone(), mode);
                operation.response = Some(item());
                operation.description = Some(campaigns::RULES.into());
            }
            _ => {}
        }
        operations.push(operation);
    }
    let mut launch = Operation::new(
        "ads_campaigns_launch",
        Method::POST,
        "/ads/campaigns/{id}/launch",
        access(Action::Write),
        Effect::Read,
        "Not available to keys: always 403, as launching spends money and happens in the app",
        handler(campaigns::launch),
    )
    .with_params(vec![Param::path("id", "The campaign's id.")])
    .with_no_input()
    .with_description(format!(
        "Answers 403 for every key, whatever its scopes, and changes nothing (a campaign of another Space is \
         404). {} Draft and edit campaigns with the other operations; the owner launches them in the app.",
        campaigns::LAUNCH_REFUSAL
    ));
    launch.success = StatusCode::FORBIDDEN;
    launch.answers.push(Answer {
        status: StatusCode::FORBIDDEN,
        description: "Always: launching a campaign spends money and is the owner's, in the app.".into(),
        schema: None,
    });
    operations.push(launch);
    operations
}

/// What this family's Lambda binary carries beyond the table: nothing.
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
