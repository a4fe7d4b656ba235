//! `/contacts/{id}/tags`: list, add and remove labels without rewriting the contact.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{FieldKind, MAX_TAGS, normalize_tag};
use space_http::operation::{Access, Effect, Param, Reply, handler};
use space_http::{ApiError, Operation, Schema};

use crate::contacts;

fn tags_of(contact: &serde_json::Map<String, Value>) -> Vec<Value> {
    contact
        .get("tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn tag_list_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"data": FieldKind::Tags.schema()},
        "required": ["data"]
    })
}

pub fn operations() -> Vec<Operation> {
    let resource = Arc::new(contacts());
    let id = || Param::path("id", "The contact's id.");
    let (list_resource, add_resource, remove_resource) = (Arc::clone(&resource), Arc::clone(&resource), resource);
    vec![
        Operation {
            name: "contacts_tags_list".into(),
            method: Method::GET,
            path: "/contacts/{id}/tags".into(),
            access: Access::Space(Scope::new(Domain::Contacts, Action::Read)),
            effect: Effect::Read,
            summary: "List a contact's tags".into(),
            description: None,
            params: vec![id()],
            body: None,
            optional_body: false,
            no_input: false,
            response: Some(Schema::lazy(tag_list_schema).named("ContactTags")),
            success: StatusCode::OK,
            raw_body: false,
            max_body_bytes: None,
            media_types: &[],
            answers: Vec::new(),
            cap: None,
            space_budget: None,
            shows_secret: false,
            approves_version: None,
            admits: None,
            handler: handler(move |call| {
                let resource = Arc::clone(&list_resource);
                async move {
                    let contact = resource.load(&call, call.path_param("id")?).await?;
                    Ok(Reply::ok(json!({"data": tags_of(&contact.body)})))
                }
            }),
        },
        Operation {
            name: "contacts_tags_add".into(),
            method: Method::POST,
            path: "/contacts/{id}/tags".into(),
            access: Access::Space(Scope::new(Domain::Contacts, Action::Write)),
            effect: Effect::Update,
            summary: "Add tags to a contact (existing tags are kept)".into(),
            description: None,
            params: vec![id()],
            body: Some(Schema::lazy(|| {
                json!({
                    "type": "object",
                    "properties": {"tags": FieldKind::Tags.schema()},
                    "required": ["tags"],
                    "additionalProperties": false
                })
            })),
            optional_body: false,
            no_input: false,
            response: Some(Schema::lazy(tag_list_schema).named("ContactTags")),
            success: StatusCode::OK,
            raw_body: false,
            max_body_bytes: None,
            media_types: &[],
            answers: Vec::new(),
            cap: None,
            space_budget: None,
            shows_secret: false,
            approves_version: None,
            admits: None,
            handler: handler(move |call| {
                let resource = Arc::clone(&add_resource);
                async move {
                    let wanted = parse_tags(&call.body)?;
                    let id = call.path_param("id")?.to_owned();
                    let contact = resource
                        .modify(&call, &id, |body| {
                            let mut tags = tags_of(body);
                            for tag in &wanted {
                                if !tags.contains(tag) {
                                    tags.push(tag.clone());
                                }
                            }
                            if tags.len() > MAX_TAGS {
                                return Err(ApiError::invalid_field(
                                    "tags",
                                    format!("a contact has at most {MAX_TAGS} tags"),
                                ));
                            }
                            body.insert("tags".into(), Value::Array(tags));
                            Ok(())
                        })
                        .await?;
                    Ok(Reply::ok(json!({"data": tags_of(&contact.body)})).with_etag(contact.version))
                }
            }),
        },
        Operation {
            name: "contacts_tags_remove".into(),
            method: Method::DELETE,
            path: "/contacts/{id}/tags/{tag}".into(),
            access: Access::Space(Scope::new(Domain::Contacts, Action::Write)),
            effect: Effect::Delete,
            summary: "Remove a tag from a contact".into(),
            description: None,
            params: vec![id(), Param::path("tag", "The tag to remove.")],
            body: None,
            optional_body: false,
            no_input: false,
            response: None,
            success: StatusCode::NO_CONTENT,
            raw_body: false,
            max_body_bytes: None,
            media_types: &[],
            answers: Vec::new(),
            cap: None,
            space_budget: None,
            shows_secret: false,
            approves_version: None,
            admits: None,
            handler: handler(move |call| {
                let resource = Arc::clone(&remove_resource);
                async move {
                    let tag = Value::String(call.path_param("tag")?.to_owned());
                    let id = call.path_param("id")?.to_owned();
                    resource
                        .modify(&call, &id, |body| {
                            let mut tags = tags_of(body);
                            let before = tags.len();
                            tags.retain(|existing| existing != &tag);
                            if tags.len() == before {
                                return Err(ApiError::NotFound(format!("The contact has no tag {tag}.")));
                            }
                            body.insert("tags".into(), Value::Array(tags));
                            Ok(())
                        })
                        .await?;
                    Ok(Reply::no_content())
                }
            }),
        },
    ]
}

fn parse_tags(body: &Value) -> Result<Vec<Value>, ApiError> {
    let list = body
        .get("tags")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid_field("tags", "must be a list of strings, like [\"vip\"]"))?;
    if let Some(extra) = body.as_object().and_then(|o| o.keys().find(|k| *k != "tags")) {
        return Err(ApiError::invalid_field(extra, "is not accepted here; send only `tags`"));
    }
    list.iter()
        .map(|tag| {
            normalize_tag(tag)
                .map(Value::String)
                .map_err(|message| ApiError::invalid_field("tags", message))
        })
        .collect()
}
