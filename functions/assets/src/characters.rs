//! `/characters`: a recurring person, mascot or product for generated media, with the
//! media items that show it. Every referenced id must be a ready media item of the Space.

use std::collections::BTreeSet;

use serde_json::Value;
use space_auth::Domain;
use space_http::ApiError;
use space_http::fields::{Field, FieldKind, WriteMode, validate};
use space_http::ids::has_shape;
use space_http::operation::{Call, Operation, handler};
use space_http::resource::{Filter, Resource};

/// At most this many reference images per character.
pub const MAX_REFERENCES: usize = 20;

pub fn characters() -> Resource {
    Resource {
        domain: Domain::Assets,
        name: "assets_characters",
        collection: "characters",
        path: "/characters",
        item_param: "id",
        singular: "character",
        plural: "characters",
        event_prefix: "character",
        id_prefix: "chr",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "The character's name.").required(),
            Field::new(
                "description",
                FieldKind::LongText { max: 5000 },
                "Who or what it is: looks, voice, personality.",
            ),
            Field::new(
                "reference_media_ids",
                FieldKind::Tags,
                "Ids (`med_…`) of ready media items of this Space that show the character.",
            )
            .default(|| Value::Array(Vec::new())),
        ],
        filters: vec![Filter::Search {
            param: "q",
            fields: &["name", "description"],
        }],
        rules: None,
    }
}

/// Field problems and unknown or unready references, reported together.
async fn check(call: &Call, mode: WriteMode) -> Result<(), ApiError> {
    let mut errors = validate(&characters().fields, &call.body, mode)
        .err()
        .unwrap_or_default();
    if let Some(Value::Array(ids)) = call.body.get("reference_media_ids") {
        let ids: BTreeSet<&str> = ids.iter().filter_map(Value::as_str).map(str::trim).collect();
        if ids.len() > MAX_REFERENCES {
            errors.insert(
                "reference_media_ids".into(),
                vec![format!("must hold at most {MAX_REFERENCES} media ids")],
            );
        } else if let Some(message) = unknown_references(call, &ids).await? {
            errors.insert("reference_media_ids".into(), vec![message]);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(errors))
    }
}

async fn unknown_references(call: &Call, ids: &BTreeSet<&str>) -> Result<Option<String>, ApiError> {
    let partition = crate::media::partition(call)?;
    let store = call.engine.store();
    let lookups = ids.iter().map(|id| {
        let partition = &partition;
        async move {
            if !has_shape(id, "med") {
                return Ok::<_, ApiError>(Some(*id));
            }
            let item = store.get(partition, id).await?;
            let ready = item.is_some_and(|item| item.body.get("status").and_then(Value::as_str) == Some("ready"));
            Ok(if ready { None } else { Some(*id) })
        }
    });
    let bad: Vec<&str> = futures::future::try_join_all(lookups)
        .await?
        .into_iter()
        .flatten()
        .collect();
    Ok((!bad.is_empty()).then(|| format!("no ready media item in this Space has the id {}", bad.join(", "))))
}

/// The CRUD operations, with the references checked before every write.
pub fn operations() -> Vec<Operation> {
    characters()
        .operations()
        .into_iter()
        .map(|mut operation| {
            let mode = match operation.name.rsplit('_').next() {
                Some("create") => WriteMode::Create,
                Some("update") => WriteMode::Patch,
                Some("replace") => WriteMode::Replace,
                _ => return operation,
            };
            let inner = operation.handler.clone();
            operation.handler = handler(move |call| {
                let inner = inner.clone();
                async move {
                    check(&call, mode).await?;
                    inner(call).await
                }
            });
            operation
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writes_are_wrapped_and_names_carry_the_domain() {
        let names: Vec<String> = operations().into_iter().map(|op| op.name).collect();
        assert_eq!(
            names,
            [
                "assets_characters_list",
                "assets_characters_create",
                "assets_characters_get",
                "assets_characters_update",
                "assets_characters_replace",
                "assets_characters_delete"
            ]
        );
    }
}
