//! Contacts: CRUD with indexed lookups (email, phone) and word search, tags, notes, and a
//! batch import that reports every bad row and never half-writes a good one.

pub mod import;
mod tags;

use axum::Router;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::fields::{Field, FieldKind};
use space_http::operation::describe;
use space_http::resource::{Filter, Parent, Resource};
use space_http::{Engine, FieldErrors, Operation};

/// What the patterns of phone and email fields cannot say.
pub const PHONE_AND_EMAIL: &str = space_http::fields::PHONE_AND_EMAIL_RULES;

/// The contact resource.
pub fn contacts() -> Resource {
    Resource {
        domain: Domain::Contacts,
        name: "contacts",
        collection: "contacts",
        path: "/contacts",
        item_param: "id",
        singular: "contact",
        plural: "contacts",
        event_prefix: "contact",
        id_prefix: "con",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "Full name."),
            Field::new("email", FieldKind::Email, "Email address; stored lowercase."),
            Field::new("phone", FieldKind::Phone, "Phone number."),
            Field::new("company", FieldKind::Text { max: 200 }, "Company or organization."),
            Field::new("job_title", FieldKind::Text { max: 200 }, "Role at the company."),
            Field::new("tags", FieldKind::Tags, "Labels, e.g. `vip`.").default(|| Value::Array(Vec::new())),
        ],
        filters: vec![
            Filter::IndexedSearch {
                param: "q",
                fields: &["name", "email", "phone", "company"],
            },
            // One person, one email: a second contact with it is refused (409 naming the
            // first), or updates the first with `?upsert=email`. A phone may be shared (a
            // household, a switchboard), so it is looked up, not claimed.
            Filter::Lookup {
                param: "email",
                field: "email",
                kind: FieldKind::Email,
                unique: true,
            },
            Filter::Lookup {
                param: "phone",
                field: "phone",
                kind: FieldKind::Phone,
                unique: false,
            },
            Filter::IndexedTag {
                param: "tag",
                field: "tags",
                spill: tag_spill_job,
            },
        ],
        rules: Some(needs_a_handle),
    }
}

/// The fields that make a contact someone: it has at least one.
const HANDLES: [&str; 3] = ["name", "email", "phone"];

/// A contact nobody can reach or name is a mistake, not a contact.
fn needs_a_handle(contact: &mut Map<String, Value>) -> Result<(), FieldErrors> {
    if HANDLES.iter().any(|field| contact.contains_key(*field)) {
        Ok(())
    } else {
        Err(FieldErrors::from([(
            "name".to_owned(),
            vec!["A contact needs at least one of name, email or phone.".to_owned()],
        )]))
    }
}

/// Notes on one contact.
pub fn notes() -> Resource {
    Resource {
        domain: Domain::Contacts,
        name: "contacts_notes",
        collection: "notes",
        path: "/contacts/{id}/notes",
        item_param: "note_id",
        singular: "note",
        plural: "notes",
        event_prefix: "contact.note",
        id_prefix: "note",
        parent: Some(Parent {
            collection: "contacts",
            singular: "contact",
        }),
        fields: vec![Field::new("body", FieldKind::LongText { max: 20_000 }, "The note, in markdown.").required()],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["body"],
        }],
        rules: None,
    }
}

/// Every operation of the family.
pub fn operations() -> Vec<Operation> {
    let mut operations = contacts().operations();
    for operation in &mut operations {
        match operation.name.as_str() {
            // What `needs_a_handle` checks, said in the schema of a whole contact: without a
            // name or an email, a phone. (As `if`/`then` rather than an `anyOf` of `required`
            // lists, which generated clients read as a union and lose the contact's type.)
            "contacts_create" | "contacts_replace" => {
                operation.body = operation.body.as_ref().map(|body| {
                    body.amend(|mut schema| {
                        let [first, second, last] = HANDLES;
                        schema["if"] = json!({"not": {"anyOf": [{"required": [first]}, {"required": [second]}]}});
                        schema["then"] = json!({"required": [last]});
                        schema["examples"] =
                            json!([{"name": "Ada Lovelace", "email": "ada@example.com", "tags": ["vip"]}]);
                        schema
                    })
                });
            }
            _ => {}
        }
    }
    describe(
        &mut operations,
        &["contacts_update"],
        "A contact keeps at least one of `name`, `email` or `phone`: a change that would leave it none is \
         refused (422).",
    );
    describe(
        &mut operations,
        &[
            "contacts_create",
            "contacts_replace",
            "contacts_update",
            "contacts_list",
        ],
        PHONE_AND_EMAIL,
    );
    operations.push(import::operation());
    operations.extend(tags::operations());
    operations.extend(notes().operations());
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

/// The family's routes; the Lambda binary and `spacectl serve` both mount them.
pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}

/// The job that finishes a tag change too large for its item's transaction (contacts and
/// inbox threads alike): [`space_http::resource::apply_tag_spill`].
pub const TAG_SPILL: &str = "tags.spill";

/// The job write of a spilled tag change ([`space_http::resource::SpillJob`]).
pub fn tag_spill_job(payload: serde_json::Value, now: chrono::DateTime<chrono::Utc>) -> space_store::Write {
    space_worker::NewJob::new(TAG_SPILL, payload, now).write()
}

/// Runs [`TAG_SPILL`] jobs.
pub struct TagSpill;

#[async_trait::async_trait]
impl space_worker::Handler for TagSpill {
    async fn run(
        &self,
        engine: &space_http::Engine,
        job: &space_worker::Job,
    ) -> Result<space_worker::Outcome, space_worker::JobError> {
        space_http::resource::apply_tag_spill(engine, &job.payload).await?;
        Ok(space_worker::Outcome::Done)
    }
}
