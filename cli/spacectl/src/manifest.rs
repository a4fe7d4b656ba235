//! `spacectl manifest`: every function to deploy, the API Gateway routes it owns, the
//! environment it reads and the IAM actions it needs, as JSON. Terraform reads the
//! committed copy, `infra/manifest.json`; a test keeps that copy equal to this output, so
//! a new family reaches the deployment through the catalogue alone.

use axum::Router;
use serde::Serialize;
pub use space_catalogue::Route;
use space_catalogue::{AwsAccess, Function};
use space_http::Engine;

/// Where the committed manifest lives, relative to the repository root.
pub const COMMITTED_PATH: &str = "infra/manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub functions: Vec<FunctionEntry>,
}

/// One Lambda function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionEntry {
    pub name: String,
    /// The crate under `functions/`.
    #[serde(rename = "crate")]
    pub crate_name: String,
    /// The binary `cargo lambda build` packages as `target/lambda/<binary>/bootstrap.zip`.
    pub binary: String,
    /// API Gateway route keys: `GET /functions/v1/space-api/contacts/{id}`.
    pub routes: Vec<String>,
    /// Environment variables Terraform must set; it knows each one's value.
    pub env: Vec<String>,
    /// What the function's role may do; Terraform maps each resource to its ARNs.
    pub permissions: Vec<Permission>,
    /// What invokes it besides API routes: `table_stream` and `jobs_queue` (event source
    /// mappings), `streaming_url` (a function URL that streams its answers).
    pub triggers: Vec<&'static str>,
}

/// IAM actions on one resource of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permission {
    /// `table`, `secret_values` (`space-api/<stage>/*`), `signing_keys`
    /// (`space-api/<stage>-signing/*`), `secret_names` (`*`: listing secrets has no
    /// resource-level permission), `media_bucket`, `media_objects`, `table_stream`,
    /// `jobs_queue`, `job_schedules` (the schedule group's schedules), `scheduler_role`
    /// (the role schedules send with), `stream_failures` (the stream's on-failure queue),
    /// `sms_numbers`, `sms_configuration_set`, `mail_identities`, `mail_configuration_set`
    /// or `receipts_queue` (where the providers' events arrive).
    pub resource: &'static str,
    pub actions: Vec<&'static str>,
}

/// Every DynamoDB call `space-store` makes: `DescribeTable` at start, item reads and
/// writes, queries; `TransactWriteItems` is authorized per item (put, delete, check).
const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
];

/// What the Secrets Manager vault calls. Writing only: no function may read a value.
const SECRET_WRITE_ACTIONS: &[&str] = &[
    "secretsmanager:CreateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:PutSecretValue",
];

/// What the signing-key store calls: the one prefix a function may read back.
const SIGNING_KEY_ACTIONS: &[&str] = &[
    "secretsmanager:CreateSecret",
    "secretsmanager:DeleteSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
];

/// Reading back a signing key, to sign a delivery with it.
const SIGNING_KEY_READ_ACTIONS: &[&str] = &["secretsmanager:GetSecretValue"];

/// What Lambda's event source mapping calls to read the table's stream.
const STREAM_ACTIONS: &[&str] = &[
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
];

/// Sending wake-ups, and what Lambda's event source mapping calls to read the queue.
const JOBS_QUEUE_ACTIONS: &[&str] = &[
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
];

/// What Lambda's event source mapping does on the receipts queue with the function's role:
/// read batches and delete what was handled. Nothing sends to it but SNS.
const RECEIPTS_QUEUE_ACTIONS: &[&str] = &["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"];

/// What a Space's purge adds on the table: a Scan walks every partition of the Space (the
/// table lists partitions no other way), BatchWriteItem removes 25 items a call.
const PURGE_TABLE_ACTIONS: &[&str] = &["dynamodb:BatchWriteItem", "dynamodb:Scan"];

/// Listing secrets shows names and metadata, never values; it has no resource-level
/// permission, so it is granted on `*` (the `secret_names` resource).
const PURGE_LIST_SECRETS: &[&str] = &["secretsmanager:ListSecrets"];

/// A purge deletes secret values and signing keys; it never reads or writes one.
const PURGE_SECRET_ACTIONS: &[&str] = &["secretsmanager:DeleteSecret"];

/// A purge lists a Space's object versions (the bucket is versioned: a plain delete would
/// keep the bytes as a noncurrent version) and deletes each version.
const PURGE_BUCKET_ACTIONS: &[&str] = &["s3:ListBucketVersions"];
const PURGE_OBJECT_ACTIONS: &[&str] = &["s3:DeleteObject", "s3:DeleteObjectVersion"];

const BUCKET_ACTIONS: &[&str] = &["s3:ListBucket"];
const OBJECT_ACTIONS: &[&str] = &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"];

/// The manifest of every function in the catalogue.
pub fn manifest() -> Manifest {
    Manifest {
        functions: space_catalogue::functions().iter().map(entry).collect(),
    }
}

/// The manifest as `spacectl manifest` prints it and `infra/manifest.json` holds it.
pub fn to_json(manifest: &Manifest) -> String {
    let mut text = serde_json::to_string_pretty(manifest).expect("the manifest is plain data");
    text.push('\n');
    text
}

fn entry(function: &Function) -> FunctionEntry {
    let mut env = Vec::new();
    let mut permissions = Vec::new();
    for access in &function.aws {
        match access {
            AwsAccess::Table => {
                env.extend(["TABLE_NAME", "CURSOR_SECRET"]);
                permissions.push(Permission {
                    resource: "table",
                    actions: TABLE_ACTIONS.to_vec(),
                });
            }
            AwsAccess::SecretValuesWrite => {
                env.push("SECRETS_PREFIX");
                permissions.push(Permission {
                    resource: "secret_values",
                    actions: SECRET_WRITE_ACTIONS.to_vec(),
                });
            }
            AwsAccess::SigningKeys => {
                env.push("SIGNING_KEYS_PREFIX");
                permissions.push(Permission {
                    resource: "signing_keys",
                    actions: SIGNING_KEY_ACTIONS.to_vec(),
                });
            }
            AwsAccess::SigningKeysRead => {
                env.push("SIGNING_KEYS_PREFIX");
                permissions.push(Permission {
                    resource: "signing_keys",
                    actions: SIGNING_KEY_READ_ACTIONS.to_vec(),
                });
            }
            AwsAccess::TableStream => {
                permissions.push(Permission {
                    resource: "table_stream",
                    actions: STREAM_ACTIONS.to_vec(),
                });
                // Batches that keep failing go to the on-failure queue, sent with the
                // function's own role.
                permissions.push(Permission {
                    resource: "stream_failures",
                    actions: vec!["sqs:SendMessage"],
                });
            }
            AwsAccess::JobQueue => {
                env.extend([
                    "JOBS_QUEUE_URL",
                    "JOBS_QUEUE_ARN",
                    "SCHEDULE_GROUP",
                    "SCHEDULER_ROLE_ARN",
                ]);
                permissions.push(Permission {
                    resource: "jobs_queue",
                    actions: JOBS_QUEUE_ACTIONS.to_vec(),
                });
                permissions.push(Permission {
                    resource: "job_schedules",
                    actions: vec!["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
                });
                permissions.push(Permission {
                    resource: "scheduler_role",
                    actions: vec!["iam:PassRole"],
                });
            }
            AwsAccess::MediaBucket => {
                env.push("MEDIA_BUCKET");
                permissions.push(Permission {
                    resource: "media_bucket",
                    actions: BUCKET_ACTIONS.to_vec(),
                });
                permissions.push(Permission {
                    resource: "media_objects",
                    actions: OBJECT_ACTIONS.to_vec(),
                });
            }
            AwsAccess::SmsSend => {
                env.push("SMS_CONFIGURATION_SET");
                permissions.push(Permission {
                    resource: "sms_numbers",
                    actions: vec!["sms-voice:SendTextMessage"],
                });
                // A send naming a configuration set is authorized on the set too.
                permissions.push(Permission {
                    resource: "sms_configuration_set",
                    actions: vec!["sms-voice:SendTextMessage"],
                });
            }
            AwsAccess::MailSend => {
                env.push("MAIL_CONFIGURATION_SET");
                permissions.push(Permission {
                    resource: "mail_identities",
                    actions: vec![
                        "ses:CreateEmailIdentity",
                        "ses:DeleteEmailIdentity",
                        "ses:GetEmailIdentity",
                        "ses:SendEmail",
                    ],
                });
                permissions.push(Permission {
                    resource: "mail_configuration_set",
                    actions: vec!["ses:SendEmail"],
                });
            }
            AwsAccess::ReceiptsQueue => {
                permissions.push(Permission {
                    resource: "receipts_queue",
                    actions: RECEIPTS_QUEUE_ACTIONS.to_vec(),
                });
            }
            AwsAccess::SpacePurge => {
                env.extend(["SECRETS_PREFIX", "SIGNING_KEYS_PREFIX", "MEDIA_BUCKET"]);
                for (resource, actions) in [
                    ("table", PURGE_TABLE_ACTIONS),
                    ("secret_values", PURGE_SECRET_ACTIONS),
                    ("signing_keys", PURGE_SECRET_ACTIONS),
                    ("secret_names", PURGE_LIST_SECRETS),
                    ("media_bucket", PURGE_BUCKET_ACTIONS),
                    ("media_objects", PURGE_OBJECT_ACTIONS),
                ] {
                    permissions.push(Permission {
                        resource,
                        actions: actions.to_vec(),
                    });
                }
            }
        }
    }
    env.extend(function.env);
    let mut unique_env = Vec::with_capacity(env.len());
    for name in env {
        if !unique_env.contains(&name) {
            unique_env.push(name);
        }
    }
    let env = unique_env;
    // One statement per resource (IAM statement ids must be unique): the actions of every
    // access on the same resource together, sorted.
    let mut merged: Vec<Permission> = Vec::with_capacity(permissions.len());
    for permission in permissions {
        match merged.iter_mut().find(|p| p.resource == permission.resource) {
            Some(existing) => {
                existing.actions.extend(permission.actions);
                existing.actions.sort_unstable();
                existing.actions.dedup();
            }
            None => merged.push(permission),
        }
    }
    let permissions = merged;
    FunctionEntry {
        name: function.name.to_owned(),
        crate_name: function.name.to_owned(),
        binary: function.name.to_owned(),
        routes: function.routes.iter().map(route_key).collect(),
        env: env.into_iter().map(str::to_owned).collect(),
        permissions,
        triggers: function.triggers.iter().map(|trigger| trigger.as_str()).collect(),
    }
}

/// An API Gateway route key. Both use `{param}`; a catch-all `{*rest}` becomes `{rest+}`.
pub fn route_key(route: &Route) -> String {
    let path: Vec<String> = route
        .path
        .split('/')
        .map(
            |segment| match segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!("{{{name}+}}"),
                None => segment.to_owned(),
            },
        )
        .collect();
    format!("{} {}", route.method, path.join("/"))
}

/// The router a function's binary serves, to check that a route sent to it is one it
/// answers.
pub fn router(function: &str) -> Option<Router<Engine>> {
    match function {
        space_catalogue::MCP_FUNCTION => return Some(space_mcp::router()),
        space_catalogue::REALTIME_FUNCTION => return Some(realtime::router()),
        // Invoked by its stream and queue, never by a route.
        space_catalogue::DISPATCHER_FUNCTION => return Some(Router::new()),
        // Invoked by the receipts queue only.
        space_catalogue::RECEIPTS_FUNCTION => return Some(Router::new()),
        _ => {}
    }
    space_catalogue::families()
        .into_iter()
        .find(|family| family.name == function)
        .map(|family| (family.router)())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route {
            method: method.into(),
            path: path.into(),
        }
    }

    #[test]
    fn route_keys_keep_params_and_turn_catch_alls_greedy() {
        assert_eq!(
            route_key(&route("GET", "/functions/v1/space-api/contacts/{id}")),
            "GET /functions/v1/space-api/contacts/{id}"
        );
        assert_eq!(route_key(&route("ANY", "/b/{page}/{*rest}")), "ANY /b/{page}/{rest+}");
    }

    #[test]
    fn no_function_may_read_a_secret_value() {
        // Only the signing keys (their own prefix) are read back; secret values never are.
        for function in manifest().functions {
            for permission in function.permissions.iter().filter(|p| p.resource != "signing_keys") {
                assert!(
                    permission
                        .actions
                        .iter()
                        .all(|action| !action.starts_with("secretsmanager:Get")),
                    "{} may read secret values",
                    function.name
                );
            }
        }
    }

    #[test]
    fn only_the_account_api_writes_secret_values() {
        let writes = |p: &Permission| {
            p.resource == "secret_values"
                && p.actions
                    .iter()
                    .any(|a| matches!(*a, "secretsmanager:CreateSecret" | "secretsmanager:PutSecretValue"))
        };
        let writers: Vec<String> = manifest()
            .functions
            .into_iter()
            .filter(|f| f.permissions.iter().any(writes))
            .map(|f| f.name)
            .collect();
        assert_eq!(writers, ["account-api"]);
    }

    #[test]
    fn only_the_dispatcher_walks_the_table_and_deletes_what_a_purge_removes() {
        for function in manifest().functions {
            let purges = function.name == space_catalogue::DISPATCHER_FUNCTION;
            let actions: Vec<&str> = function.permissions.iter().flat_map(|p| p.actions.clone()).collect();
            for action in [
                "dynamodb:Scan",
                "dynamodb:BatchWriteItem",
                "secretsmanager:ListSecrets",
                "s3:DeleteObjectVersion",
            ] {
                assert_eq!(actions.contains(&action), purges, "{}: {action}", function.name);
            }
            let resources: Vec<&str> = function.permissions.iter().map(|p| p.resource).collect();
            let mut unique = resources.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(
                unique.len(),
                resources.len(),
                "{}: one statement per resource",
                function.name
            );
        }
        let dispatcher = manifest()
            .functions
            .into_iter()
            .find(|f| f.name == space_catalogue::DISPATCHER_FUNCTION)
            .expect("the dispatcher");
        let on = |resource: &str| -> Vec<&str> {
            dispatcher
                .permissions
                .iter()
                .find(|p| p.resource == resource)
                .map(|p| p.actions.clone())
                .unwrap_or_default()
        };
        assert_eq!(on("secret_values"), ["secretsmanager:DeleteSecret"]);
        assert_eq!(
            on("signing_keys"),
            ["secretsmanager:DeleteSecret", "secretsmanager:GetSecretValue"]
        );
        assert_eq!(on("media_objects"), ["s3:DeleteObject", "s3:DeleteObjectVersion"]);
    }
}
