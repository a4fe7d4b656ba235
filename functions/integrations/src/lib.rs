//! The integrations a Space has connected (a payment provider, an accounting tool), so an
//! agent can tell what the Space runs on. The owner records them through the account API
//! (`/functions/v1/account-api/spaces/{space}/integrations`); keys with `integrations:read`
//! list and read them at `/integrations`, and no key changes them.

use axum::Router;
use serde_json::json;
use space_auth::Domain;
use space_http::fields::{Field, FieldKind};
use space_http::owned::owner_kept;
use space_http::resource::{Filter, Resource};
use space_http::{Engine, Operation};

pub const STATUSES: &[&str] = &["connected", "error", "disconnected"];

/// One connected integration.
pub fn integrations() -> Resource {
    Resource {
        domain: Domain::Integrations,
        name: "integrations",
        collection: "integrations",
        path: "/integrations",
        item_param: "id",
        singular: "integration",
        plural: "integrations",
        event_prefix: "integration",
        id_prefix: "int",
        parent: None,
        fields: vec![
            Field::new(
                "name",
                FieldKind::Text { max: 200 },
                "What the Space calls it, e.g. \"Payments\".",
            )
            .required(),
            Field::new(
                "provider",
                FieldKind::Text { max: 100 },
                "Who provides it, e.g. stripe, quickbooks, shopify.",
            )
            .required(),
            Field::new("status", FieldKind::Enum(STATUSES), "Whether it works right now.")
                .default(|| json!("connected")),
            Field::new(
                "description",
                FieldKind::LongText { max: 2_000 },
                "What it is used for.",
            ),
            Field::new("connected_at", FieldKind::DateTime, "When it was connected (RFC 3339)."),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Equals {
                param: "provider",
                field: "provider",
                kind: FieldKind::Text { max: 100 },
            },
        ],
        rules: None,
    }
}

pub fn operations() -> Vec<Operation> {
    owner_kept(integrations())
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
