//! Every family of the API in one list. Adding a family means adding it here; routes,
//! OpenAPI, MCP tools and the deployment manifest all follow from this list.
//!
//! This is the one crate under `shared/` that knows the families: it sits above them,
//! and only the binaries that serve many families (`spacectl`, `space-mcp`) use it.

pub mod llms;

use axum::Router;
use space_http::lambda::Backends;
use space_http::{Engine, Operation};

/// What a family's function may touch in AWS, beyond its own logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsAccess {
    /// Read and write items of the table.
    Table,
    /// Create, update and delete secret values (never read them).
    SecretValuesWrite,
    /// Read and write objects in the media bucket.
    MediaBucket,
    /// Create, read and delete the platform's signing keys (webhook secrets).
    SigningKeys,
    /// Read the signing keys, never change them (the dispatcher signs deliveries).
    SigningKeysRead,
    /// Read the table's stream (the dispatcher's trigger).
    TableStream,
    /// Send to and read the jobs queue, create job schedules that send to it, and pass
    /// their role (the dispatcher).
    JobQueue,
    /// Send SMS from the account's End User Messaging phone numbers through the SMS
    /// configuration set, whose event destination reports receipts (the dispatcher, whose
    /// jobs send the phone family's messages).
    SmsSend,
    /// Send mail from the account's SES identities through the mail configuration set,
    /// whose event destination reports bounces, complaints and deliveries; create the
    /// identities, read their verification, and delete them (the dispatcher, whose jobs
    /// register and remove the mail family's senders and send its messages).
    MailSend,
    /// Read and delete messages of the receipts queue, where the providers' events arrive
    /// (the receipts function's trigger).
    ReceiptsQueue,
    /// Remove a deleted Space's data: walk and bulk-delete table items, list and delete its
    /// secret values and signing keys (never read them), list and delete every version of
    /// its media objects (the dispatcher, which runs the purge).
    SpacePurge,
}

/// What invokes a function besides the API's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The table's stream, new items only.
    TableStream,
    /// The jobs queue.
    JobsQueue,
    /// A function URL that streams its response (API Gateway's HTTP APIs buffer one).
    StreamingUrl,
    /// The receipts queue: SES and End User Messaging SMS events, through SNS.
    ReceiptsQueue,
}

impl Trigger {
    /// The name the manifest and Terraform use.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::TableStream => "table_stream",
            Trigger::JobsQueue => "jobs_queue",
            Trigger::StreamingUrl => "streaming_url",
            Trigger::ReceiptsQueue => "receipts_queue",
        }
    }
}

/// One resource family: one crate, one Lambda binary of the same name.
pub struct Family {
    pub name: &'static str,
    pub operations: fn() -> Vec<Operation>,
    pub router: fn() -> Router<Engine>,
    /// What the family's binary links; its AWS permissions follow from it.
    pub backends: Backends,
    /// It streams answers (exports): API Gateway's HTTP APIs buffer a response until it
    /// ends, and a Lambda's buffered answer is at most 6 MB, so in AWS such a family is
    /// served through its own streaming function URL, like the realtime stream.
    pub streaming: bool,
}

impl Family {
    /// What the family's function may touch in AWS.
    pub fn aws(&self) -> Vec<AwsAccess> {
        aws_access(self.backends)
    }
}

/// The AWS access a binary with `backends` needs: the table always, then one entry per
/// backend it carries.
pub fn aws_access(backends: Backends) -> Vec<AwsAccess> {
    let mut access = vec![AwsAccess::Table];
    if backends.secret_values.is_some() {
        access.push(AwsAccess::SecretValuesWrite);
    }
    if backends.media.is_some() {
        access.push(AwsAccess::MediaBucket);
    }
    if backends.signing_keys.is_some() {
        access.push(AwsAccess::SigningKeys);
    }
    access
}

/// Every family, in a stable order.
pub fn families() -> Vec<Family> {
    vec![
        Family {
            name: "contacts",
            operations: contacts::operations,
            router: contacts::router,
            backends: contacts::BACKENDS,
            streaming: false,
        },
        Family {
            name: "tasks",
            operations: tasks::operations,
            router: tasks::router,
            backends: tasks::BACKENDS,
            streaming: false,
        },
        Family {
            name: "booking",
            operations: booking::operations,
            router: booking::router,
            backends: booking::BACKENDS,
            streaming: false,
        },
        Family {
            name: "calendar",
            operations: calendar::operations,
            router: calendar::router,
            backends: calendar::BACKENDS,
            streaming: false,
        },
        Family {
            name: "forms",
            operations: forms::operations,
            router: forms::router,
            backends: forms::BACKENDS,
            streaming: false,
        },
        Family {
            name: "pages",
            operations: pages::operations,
            router: pages::router,
            backends: pages::BACKENDS,
            streaming: false,
        },
        Family {
            name: "tables",
            operations: tables::operations,
            router: tables::router,
            backends: tables::BACKENDS,
            streaming: false,
        },
        Family {
            name: "documents",
            operations: documents::operations,
            router: documents::router,
            backends: documents::BACKENDS,
            streaming: false,
        },
        Family {
            name: "whiteboards",
            operations: whiteboards::operations,
            router: whiteboards::router,
            backends: whiteboards::BACKENDS,
            streaming: false,
        },
        Family {
            name: "meet",
            operations: meet::operations,
            router: meet::router,
            backends: meet::BACKENDS,
            streaming: false,
        },
        Family {
            name: "agents",
            operations: agents::operations,
            router: agents::router,
            backends: agents::BACKENDS,
            streaming: false,
        },
        Family {
            name: "social",
            operations: social::operations,
            router: social::router,
            backends: social::BACKENDS,
            streaming: false,
        },
        Family {
            name: "inbox",
            operations: inbox::operations,
            router: inbox::router,
            backends: inbox::BACKENDS,
            streaming: false,
        },
        Family {
            name: "phone",
            operations: phone::operations,
            router: phone::router,
            backends: phone::BACKENDS,
            streaming: false,
        },
        Family {
            name: "mail",
            operations: mail::operations,
            router: mail::router,
            backends: mail::BACKENDS,
            streaming: false,
        },
        Family {
            name: "ads",
            operations: ads::operations,
            router: ads::router,
            backends: ads::BACKENDS,
            streaming: false,
        },
        Family {
            name: "automations",
            operations: automations::operations,
            router: automations::router,
            backends: automations::BACKENDS,
            streaming: false,
        },
        Family {
            name: "messaging",
            operations: messaging::operations,
            router: messaging::router,
            backends: messaging::BACKENDS,
            streaming: false,
        },
        Family {
            name: "wallet",
            operations: wallet::operations,
            router: wallet::router,
            backends: wallet::BACKENDS,
            streaming: false,
        },
        Family {
            name: "finance",
            operations: finance::operations,
            router: finance::router,
            backends: finance::BACKENDS,
            streaming: false,
        },
        Family {
            name: "integrations",
            operations: integrations::operations,
            router: integrations::router,
            backends: integrations::BACKENDS,
            streaming: false,
        },
        Family {
            name: "analytics",
            operations: analytics::operations,
            router: analytics::router,
            backends: analytics::BACKENDS,
            streaming: true,
        },
        Family {
            name: "team",
            operations: team::operations,
            router: team::router,
            backends: team::BACKENDS,
            streaming: false,
        },
        Family {
            name: "webhooks",
            operations: webhooks::operations,
            router: webhooks::router,
            backends: webhooks::BACKENDS,
            streaming: false,
        },
        Family {
            name: "assets",
            operations: assets::operations,
            router: assets::router,
            backends: assets::BACKENDS,
            streaming: false,
        },
        Family {
            name: "apps",
            operations: apps::operations,
            router: apps::router,
            backends: apps::BACKENDS,
            streaming: false,
        },
        Family {
            name: "secrets",
            operations: secrets::operations,
            router: secrets::router,
            backends: secrets::BACKENDS,
            streaming: false,
        },
        Family {
            name: "events",
            operations: events::operations,
            router: events::router,
            backends: events::BACKENDS,
            streaming: false,
        },
        Family {
            name: "account-api",
            operations: account_api::operations,
            router: account_api::router,
            backends: account_api::BACKENDS,
            streaming: false,
        },
    ]
}

/// The path of the MCP server (streamable HTTP, every method).
pub const MCP_PATH: &str = "/functions/v1/space-mcp";

/// The function that serves MCP and the documents generated from this catalogue: it links
/// every family that a space key reaches.
pub const MCP_FUNCTION: &str = "space-mcp";

/// Documents generated from the catalogue, served with `GET` by [`MCP_FUNCTION`] in AWS
/// (and by `spacectl serve` locally).
pub const GENERATED_DOCUMENTS: &[&str] = &[
    "/functions/v1/space-api/openapi.json",
    "/functions/v1/space-api/llms.txt",
    "/functions/v1/space-api/llms-full.txt",
    "/llms.txt",
    "/llms-full.txt",
];

/// A method (`GET`, …, or `ANY` for every method) and a full path, axum syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
}

/// One deployed Lambda function: a crate under `functions/` with a binary of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    /// Every route the function answers; API Gateway sends each one to this function only.
    pub routes: Vec<Route>,
    pub aws: Vec<AwsAccess>,
    /// Environment variables the function reads beyond those its AWS access implies.
    pub env: &'static [&'static str],
    /// What else invokes it.
    pub triggers: &'static [Trigger],
}

/// Where a function learns the API's public origin, for the absolute links it hands out
/// (calendar feeds, published and booking pages, uploads).
pub const PUBLIC_URL_ENV: &str = space_http::lambda::PUBLIC_URL_ENV;

/// The function that runs later work in AWS (`functions/dispatcher`).
pub const DISPATCHER_FUNCTION: &str = "dispatcher";
/// The function that turns the providers' events into receipt jobs in AWS
/// (`functions/receipts`).
pub const RECEIPTS_FUNCTION: &str = "receipts";
/// The function that serves the realtime stream in AWS (`functions/realtime`), behind a
/// streaming function URL.
pub const REALTIME_FUNCTION: &str = "realtime";

/// Every function to deploy: one per family, the dispatcher, the receipts consumer, the
/// realtime stream, then the MCP server.
pub fn functions() -> Vec<Function> {
    let families = families();
    let mut functions: Vec<Function> = families
        .iter()
        .map(|family| Function {
            name: family.name,
            // A streaming family is reached at its function URL, not through API Gateway.
            routes: match family.streaming {
                true => Vec::new(),
                false => (family.operations)()
                    .iter()
                    .map(|operation| Route {
                        method: operation.method.as_str().to_owned(),
                        path: operation.full_path(),
                    })
                    .collect(),
            },
            aws: family.aws(),
            env: &[PUBLIC_URL_ENV],
            triggers: match family.streaming {
                true => &[Trigger::StreamingUrl],
                false => &[],
            },
        })
        .collect();
    functions.push(Function {
        name: DISPATCHER_FUNCTION,
        routes: Vec::new(),
        aws: vec![
            AwsAccess::Table,
            AwsAccess::TableStream,
            AwsAccess::JobQueue,
            AwsAccess::SigningKeysRead,
            AwsAccess::SpacePurge,
            AwsAccess::SmsSend,
            AwsAccess::MailSend,
        ],
        env: &[],
        triggers: &[Trigger::TableStream, Trigger::JobsQueue],
    });
    functions.push(Function {
        name: RECEIPTS_FUNCTION,
        routes: Vec::new(),
        aws: vec![AwsAccess::Table, AwsAccess::ReceiptsQueue],
        env: &[],
        triggers: &[Trigger::ReceiptsQueue],
    });
    functions.push(Function {
        name: REALTIME_FUNCTION,
        routes: Vec::new(),
        aws: vec![AwsAccess::Table],
        env: &[],
        triggers: &[Trigger::StreamingUrl],
    });
    // The MCP server runs the space-key operations of every family in-process, so it needs
    // what they need — except writing secret values, which no space key may do.
    let mut mcp_aws = Vec::new();
    for family in &families {
        let serves_space_keys = (family.operations)()
            .iter()
            .any(|operation| matches!(operation.access, space_http::Access::Space(_)));
        if serves_space_keys {
            for access in family.aws() {
                if access != AwsAccess::SecretValuesWrite && !mcp_aws.contains(&access) {
                    mcp_aws.push(access);
                }
            }
        }
    }
    let mut mcp_routes = vec![Route {
        method: "ANY".into(),
        path: MCP_PATH.into(),
    }];
    mcp_routes.extend(GENERATED_DOCUMENTS.iter().map(|path| Route {
        method: "GET".into(),
        path: (*path).into(),
    }));
    functions.push(Function {
        name: MCP_FUNCTION,
        routes: mcp_routes,
        aws: mcp_aws,
        // rmcp checks the Host header; in AWS that is the API's own host name.
        env: &["MCP_ALLOWED_HOSTS", PUBLIC_URL_ENV],
        triggers: &[],
    });
    functions
}

/// Every operation of every family, in family order.
pub fn operations() -> Vec<Operation> {
    families().iter().flat_map(|family| (family.operations)()).collect()
}

/// The routes of every family and the realtime stream, merged.
pub fn routes() -> Router<Engine> {
    families()
        .iter()
        .fold(realtime::router(), |router, family| router.merge((family.router)()))
}

/// The OpenAPI document of every operation.
pub fn openapi() -> serde_json::Value {
    let operations = operations();
    let refs: Vec<&Operation> = operations.iter().collect();
    space_http::openapi::spec(&refs, "Space API", env!("CARGO_PKG_VERSION"))
}

/// Where the committed list of space operation names lives, relative to the repository
/// root. The agents family validates an agent's `operations` against it: it cannot depend
/// on this crate (this crate depends on it), so it reads the file, and a test here keeps
/// the file equal to [`operation_names`].
pub const OPERATIONS_PATH: &str = "shared/space-catalogue/operations.txt";

/// The names of every operation a space key can call (the MCP tools), one per line, in
/// catalogue order, after a header saying how to regenerate the file.
pub fn operation_names() -> String {
    let mut text = String::from(
        "# Every operation a space key can call. Generated from space-catalogue; do not edit.\n\
         # Regenerate: UPDATE_OPERATIONS=1 cargo test -p space-catalogue --test operations\n",
    );
    for operation in operations() {
        if matches!(operation.access, space_http::Access::Space(_)) {
            text.push_str(&operation.name);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use space_auth::Cap;
    use space_http::Effect;

    /// A cap a key may set is one some live action of its domain counts against, and only
    /// live actions count.
    #[test]
    fn every_cap_is_declared_by_live_actions_of_its_domain() {
        let operations = super::operations();
        for cap in Cap::ALL {
            let declaring: Vec<&str> = operations
                .iter()
                .filter(|operation| operation.cap == Some(*cap))
                .map(|operation| operation.name.as_str())
                .collect();
            assert!(!declaring.is_empty(), "no operation counts against {cap}");
        }
        for operation in operations.iter().filter(|operation| operation.cap.is_some()) {
            assert_eq!(operation.effect, Effect::Live, "{} is capped", operation.name);
            assert_eq!(operation.domain(), operation.cap.map(Cap::domain), "{}", operation.name);
        }
    }

    /// Exports read the families' own collections: the names they spell are the families'.
    #[test]
    fn exports_read_the_families_collections() {
        use analytics::export::{DATASETS, Source, dataset};
        let expected = |name: &str| match name {
            "contacts" => (None, contacts::contacts().collection),
            "messages" => (Some(inbox::threads::THREADS), inbox::messages::MESSAGES),
            "posts" => (None, social::posts::POSTS),
            "submissions" => (Some(forms::forms().collection), forms::submissions().collection),
            other => panic!("no family for the dataset {other}"),
        };
        for name in DATASETS {
            let read = match dataset(name).map(|d| d.source) {
                Some(Source::Collection(collection)) => (None, collection),
                Some(Source::Children { parents, children }) => (Some(parents), children),
                None => panic!("{name} is not defined"),
            };
            assert_eq!(read, expected(name), "{name}");
        }
    }

    /// An approval keeps the call's path, query and JSON body to run it later: a live
    /// action that read its body undecoded could not be kept.
    #[test]
    fn every_approvable_action_takes_json() {
        for operation in super::operations().iter().filter(|o| o.approvable().is_some()) {
            assert!(!operation.raw_body, "{} takes a raw body", operation.name);
        }
    }
}
