//! The Space's members. An agent that assigns a task or routes a conversation needs to know
//! who works in the Space, and must never be able to add, remove or promote anyone: members
//! are kept by the owner (`/functions/v1/account-api/spaces/{space}/users`) and read by keys
//! with `team:read` (`/users`).

use axum::Router;
use serde_json::json;
use space_auth::Domain;
use space_http::fields::{CustomKind, Field, FieldKind};
use space_http::operation::describe;
use space_http::owned::owner_kept;
use space_http::resource::{Filter, Resource};
use space_http::zones::{check_time_zone, time_zone_schema};
use space_http::{Engine, Operation};

pub const ROLES: &[&str] = &["owner", "admin", "member", "guest"];

/// A member of the Space.
pub fn users() -> Resource {
    Resource {
        domain: Domain::Team,
        name: "team_users",
        collection: "users",
        path: "/users",
        item_param: "id",
        singular: "user",
        plural: "users",
        event_prefix: "user",
        id_prefix: "usr",
        parent: None,
        fields: vec![
            Field::new("name", FieldKind::Text { max: 200 }, "The member's name.").required(),
            Field::new(
                "email",
                FieldKind::Email,
                "Where the member is reached; one member per address in a Space.",
            )
            .required(),
            Field::new("role", FieldKind::Enum(ROLES), "What the member may do in the app.")
                .default(|| json!("member")),
            Field::new(
                "title",
                FieldKind::Text { max: 200 },
                "Job title, e.g. \"Support lead\".",
            ),
            Field::new(
                "time_zone",
                FieldKind::Custom(CustomKind {
                    schema: time_zone_schema,
                    check: check_time_zone,
                }),
                "Where the member works: an IANA time zone, e.g. Europe/Berlin.",
            ),
        ],
        filters: vec![
            Filter::Equals {
                param: "role",
                field: "role",
                kind: FieldKind::Enum(ROLES),
            },
            Filter::Lookup {
                param: "email",
                field: "email",
                kind: FieldKind::Email,
                unique: true,
            },
            Filter::Search {
                param: "q",
                fields: &["name", "email", "title"],
            },
        ],
        rules: None,
    }
}

pub fn operations() -> Vec<Operation> {
    let mut operations = owner_kept(users());
    describe(
        &mut operations,
        &[
            "team_users_create",
            "team_users_replace",
            "team_users_update",
            "team_users_list",
        ],
        "An email address has at most 64 characters before the `@`, and a time zone is one the tz database \
         has; otherwise 422.",
    );
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
