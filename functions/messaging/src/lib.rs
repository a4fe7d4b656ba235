//! Messaging: the Space's message templates — what a business may send outside a
//! channel's free-form window — written as drafts (`messaging:write`), submitted for the
//! provider's review, and approved or rejected on the worker; its broadcast
//! [`campaigns`], launched with `messaging:run` and sent on the worker exactly once per
//! recipient; the Space's [`tags`], shared by contacts and threads; and its knowledge base
//! ([`knowledge`]), the articles an agent answers from, found by a ranked word search.

pub mod campaigns;
pub mod knowledge;
pub mod tags;
pub mod templates;

use axum::Router;
use http::{Method, StatusCode};
use space_auth::{Action, Domain, Scope};
use space_http::fields::WriteMode;
use space_http::operation::{Access, Answer, Effect, Param, handler};
use space_http::resource::list_schema;
use space_http::{Engine, Operation, Schema};

pub use campaigns::{Expand as CampaignExpand, Receipt as CampaignReceipt, SendBatch as CampaignSend};
pub use tags::Retag;
pub use templates::Review;

/// The job that reviews a submitted template.
pub const REVIEW: &str = "messaging.review";

/// What a template's body must be beyond its length: a grammar JSON Schema does not state.
const BODY_RULE: &str = "The body's parameters are written {{1}} to {{n}}, numbered in order of first use without \
                         gaps (422 otherwise).";

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = Vec::new();
    for mut operation in templates::templates().operations() {
        match operation.name.as_str() {
            "messaging_templates_list" => operation.response = Some(Schema::lazy(|| list_schema(templates::schema()))),
            "messaging_templates_get" => operation.response = Some(Schema::lazy(templates::schema)),
            "messaging_templates_create" => {
                operation.response = Some(Schema::lazy(templates::schema));
                operation.description = Some(BODY_RULE.into());
            }
            "messaging_templates_update" | "messaging_templates_replace" => {
                let mode = if operation.name == "messaging_templates_update" {
                    WriteMode::Patch
                } else {
                    WriteMode::Replace
                };
                operation.handler = handler(move |call| async move { templates::write(&call, mode).await });
                operation.response = Some(Schema::lazy(templates::schema));
                operation.answers.push(Answer {
                    status: StatusCode::CREATED,
                    description: "The template was approved: the edit is a new draft naming it in `previous_id`."
                        .into(),
                    schema: Some(Schema::lazy(templates::schema)),
                });
                operation.description = Some(format!(
                    "A draft or rejected template is edited and is a draft again; a pending one is 409; an approved \
                     one stays as approved and the edit is a new draft (201) naming it in `previous_id`. {BODY_RULE}"
                ));
            }
            _ => {}
        }
        operations.push(operation);
    }
    operations.extend(campaigns::operations());
    operations.extend(tags::operations());
    operations.extend(knowledge_operations());
    operations.push(
        Operation::new(
            "messaging_templates_submit",
            Method::POST,
            "/templates/{id}/submit",
            Access::Space(Scope::new(Domain::Messaging, Action::Write)),
            Effect::Update,
            "Submit a draft or rejected template for review (pending, then approved or rejected)",
            handler(templates::submit),
        )
        .with_params(vec![Param::path("id", "The template's id.")])
        .with_no_input()
        .answers(StatusCode::OK, templates::schema),
    );
    operations
}

/// The knowledge base's operations: the resource's, with the search on `q` and the writes
/// that enqueue the indexing of the body.
fn knowledge_operations() -> Vec<Operation> {
    let mut operations = knowledge::articles().operations();
    for operation in &mut operations {
        match operation.name.as_str() {
            "messaging_knowledge_list" => {
                operation.summary = "List knowledge articles, or search them ranked by `q` (titles first)".into();
                operation.handler = knowledge::list(operation.handler.clone());
                if let Some(param) = operation.params.iter_mut().find(|param| param.name == "q") {
                    param.description = knowledge::SEARCH_RULE.into();
                }
                operation.description = Some(
                    "With `q`, the matches in rank order (`order` does not apply): every article whose title holds \
                     the words before any matched in its body only."
                        .into(),
                );
            }
            "messaging_knowledge_create" => operation.handler = knowledge::create(),
            "messaging_knowledge_update" => operation.handler = knowledge::write(WriteMode::Patch),
            "messaging_knowledge_replace" => operation.handler = knowledge::write(WriteMode::Replace),
            "messaging_knowledge_delete" => operation.handler = knowledge::delete(),
            _ => {}
        }
    }
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
