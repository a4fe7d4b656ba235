//! Connections: the owner links a Space to what lies outside it (a social account today).
//! A space key lists and uses them through its family's routes; only the owner's key
//! creates, removes, or instructs the sandbox provider.

use serde_json::{Map, Value, json};
use space_connections::{self as connections, KINDS, MAX_PER_SPACE, Network, PROVIDERS, SANDBOX};
use space_http::events::event_write;
use space_http::fields::{Field, FieldKind, WriteMode, body_schema, format_datetime, validate};
use space_http::ids::new_id;
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::{ApiError, FieldErrors};
use space_store::{Condition, Item, Write};

use crate::spaces;

/// How a sandbox failure presents: `transient` is retried, `permanent` fails the post.
pub const FAILURES: &[&str] = &["transient", "permanent"];

fn fields() -> Vec<Field> {
    vec![
        Field::new("kind", FieldKind::Enum(KINDS), "What the connection is for.").required(),
        Field::new(
            "network",
            FieldKind::Enum(Network::NAMES),
            "The social network (kind `social`).",
        )
        .required(),
        Field::new(
            "name",
            FieldKind::Text { max: 200 },
            "How the Space calls it, e.g. \"Acme on LinkedIn\".",
        )
        .required(),
        Field::new(
            "handle",
            FieldKind::Text { max: 100 },
            "The account's handle on the network.",
        ),
        Field::new(
            "provider",
            FieldKind::Enum(PROVIDERS),
            "Who carries the traffic; `sandbox` records it and can be told to fail.",
        )
        .default(|| json!("sandbox")),
    ]
}

pub fn request_schema() -> Value {
    body_schema(&fields(), WriteMode::Create)
}

pub fn sandbox_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "fail_next": {"type": "integer", "minimum": 0, "maximum": 100, "description": "How many of the next publishes fail."},
            "failure": {"type": "string", "enum": FAILURES, "description": "`transient` failures are retried; `permanent` ones fail the post at once."}
        },
        "required": ["fail_next"],
        "additionalProperties": false
    })
}

/// A connection as the owner sees it: what a space key sees, and the sandbox's orders.
pub fn schema() -> Value {
    let mut schema = request_schema();
    let properties = schema["properties"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut properties: Map<String, Value> = properties;
    properties.insert("id".into(), json!({"type": "string"}));
    properties.insert(
        "active".into(),
        json!({"type": "boolean", "description": "Whether it takes new work."}),
    );
    properties.insert("created_at".into(), json!({"type": "string", "format": "date-time"}));
    properties.insert("version".into(), json!({"type": "integer"}));
    properties.insert(SANDBOX.into(), sandbox_schema());
    json!({
        "type": "object",
        "properties": properties,
        "required": ["id", "kind", "name", "provider", "active", "created_at", "version"]
    })
}

fn owner_view(item: &Item) -> Value {
    let mut body = item.body.clone();
    body.insert("version".into(), json!(item.version));
    Value::Object(body)
}

async fn owned(call: &Call) -> Result<(String, Item), ApiError> {
    let space = call.path_param("space")?.to_owned();
    spaces::load(&call.engine, &call.principal.account_id, &space).await?;
    let id = call.path_param("connection")?;
    let item = connections::get(&call.engine, &space, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection", id))?;
    Ok((space, item))
}

pub fn create_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        let validated = validate(&fields(), &call.body, WriteMode::Create).map_err(ApiError::validation)?;
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let mut existing = 0;
        for kind in KINDS {
            existing += connections::list(&call.engine, &space, kind).await?.len();
        }
        if existing >= MAX_PER_SPACE {
            return Err(ApiError::Conflict(format!(
                "A Space holds at most {MAX_PER_SPACE} connections; remove one first."
            )));
        }
        let id = new_id(connections::ID_PREFIX);
        let mut body = validated.set;
        body.insert("id".into(), json!(id));
        body.insert("active".into(), json!(true));
        body.insert("created_at".into(), json!(format_datetime(call.engine.now())));
        let key = connections::key(&space, &id);
        let item = Item::new(key.pk, key.sk, body);
        let event = event_write(
            &space,
            "connection.created",
            &id,
            connections::render(&item),
            &call.principal,
            call.engine.now(),
        );
        let shown = owner_view(&item);
        call.engine
            .store()
            .transact(vec![Write::put(item, Condition::NotExists), event])
            .await?;
        Ok(Reply::created(shown))
    })
}

pub fn list_handler() -> Handler {
    handler(|call: Call| async move {
        let space = call.path_param("space")?.to_owned();
        spaces::load(&call.engine, &call.principal.account_id, &space).await?;
        let mut data = Vec::new();
        for kind in KINDS {
            data.extend(
                connections::list(&call.engine, &space, kind)
                    .await?
                    .iter()
                    .map(owner_view),
            );
        }
        Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
    })
}

pub fn get_handler() -> Handler {
    handler(|call: Call| async move {
        let (_, item) = owned(&call).await?;
        Ok(Reply::ok(owner_view(&item)))
    })
}

pub fn delete_handler() -> Handler {
    handler(|call: Call| async move {
        let (space, item) = owned(&call).await?;
        let id = item.sk.clone();
        let event = event_write(
            &space,
            "connection.deleted",
            &id,
            connections::render(&item),
            &call.principal,
            call.engine.now(),
        );
        call.engine
            .store()
            .transact(vec![
                Write::delete(item.pk.clone(), item.sk.clone(), Condition::Version(item.version)),
                event,
            ])
            .await?;
        Ok(Reply::no_content())
    })
}

/// Tells the sandbox provider to fail the next publishes through this connection.
pub fn sandbox_handler() -> Handler {
    handler(|call: Call| async move {
        let mut errors = FieldErrors::new();
        let body = call.body.as_object().cloned().unwrap_or_default();
        for extra in body.keys().filter(|k| !matches!(k.as_str(), "fail_next" | "failure")) {
            errors.insert(
                extra.clone(),
                vec!["is not accepted; send fail_next and failure".into()],
            );
        }
        // JSON Schema's integers include `20.0`.
        let fail_next = body
            .get("fail_next")
            .and_then(Value::as_f64)
            .filter(|n| n.fract() == 0.0 && (0.0..=100.0).contains(n))
            .map(|n| n as u64);
        if fail_next.is_none() {
            errors.insert("fail_next".into(), vec!["must be a whole number from 0 to 100".into()]);
        }
        let failure = match body.get("failure") {
            None | Some(Value::Null) => Some("transient"),
            Some(value) => value.as_str().filter(|f| FAILURES.contains(f)),
        };
        if failure.is_none() {
            errors.insert(
                "failure".into(),
                vec![format!("must be one of {}", FAILURES.join(", "))],
            );
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let (_, mut item) = owned(&call).await?;
        if item.body.get("provider").and_then(Value::as_str) != Some("sandbox") {
            return Err(ApiError::Conflict(
                "Only a sandbox connection takes these instructions.".into(),
            ));
        }
        item.body
            .insert(SANDBOX.into(), json!({"fail_next": fail_next, "failure": failure}));
        let condition = Condition::Version(item.version);
        item.version += 1;
        let shown = owner_view(&item);
        call.engine.store().transact(vec![Write::put(item, condition)]).await?;
        Ok(Reply::ok(shown))
    })
}
