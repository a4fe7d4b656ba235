//! The operation catalogue. Every route of every family is an [`Operation`]: its name,
//! method, path, the scope it needs, its parameters and schemas, and its handler. REST
//! routes, OpenAPI and MCP tools are all generated from these values, and a call runs
//! the same handler whichever way it arrives.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use futures::future::BoxFuture;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Domain, Principal, PrincipalKind, Scope};

use crate::caps::CapUnits;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::schema::Schema;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A space key holding this scope.
    Space(Scope),
    /// An account (owner) key.
    Account,
    /// No key: a visitor of a published page, form or booking page. Limited to
    /// `per_minute` requests per client address and route family
    /// ([`Operation::public_family`]); the handler finds the Space from the route and can
    /// reach nothing else.
    Public { per_minute: u32 },
}

impl Access {
    /// The kind of key the operation takes; `None` for public routes.
    pub fn principal_kind(self) -> Option<PrincipalKind> {
        match self {
            Access::Space(_) => Some(PrincipalKind::Space),
            Access::Account => Some(PrincipalKind::Account),
            Access::Public { .. } => None,
        }
    }

    /// The URL prefix the operation's path is mounted under.
    pub fn base_path(self) -> &'static str {
        match self {
            Access::Space(_) => SPACE_API_BASE,
            Access::Account => ACCOUNT_API_BASE,
            Access::Public { .. } => "",
        }
    }
}

pub const SPACE_API_BASE: &str = "/functions/v1/space-api";
pub const ACCOUNT_API_BASE: &str = "/functions/v1/account-api";

/// What an operation does, for MCP annotations and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Lists or inspects; changes nothing.
    Read,
    /// Creates something new.
    Create,
    /// Changes part of an existing item.
    Update,
    /// Overwrites an existing item.
    Replace,
    Delete,
    /// A live action (publish, send, run): visible outside the Space.
    Live,
}

impl Effect {
    pub fn is_read_only(self) -> bool {
        self == Effect::Read
    }

    pub fn is_destructive(self) -> bool {
        matches!(self, Effect::Delete | Effect::Replace)
    }

    pub fn is_idempotent(self) -> bool {
        matches!(self, Effect::Read | Effect::Replace | Effect::Delete | Effect::Update)
    }
}

/// Where a parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Path,
    Query,
}

/// A path or query parameter.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub location: ParamIn,
    pub required: bool,
    pub schema: Value,
    pub description: String,
}

impl Param {
    pub fn path(name: &'static str, description: impl Into<String>) -> Param {
        Param {
            name,
            location: ParamIn::Path,
            required: true,
            schema: json!({"type": "string"}),
            description: description.into(),
        }
    }

    pub fn query(name: &'static str, schema: Value, description: impl Into<String>) -> Param {
        Param {
            name,
            location: ParamIn::Query,
            required: false,
            schema,
            description: description.into(),
        }
    }
}

/// The input of one call, the same whether it came over REST or MCP.
#[derive(Clone)]
pub struct Call {
    pub engine: Engine,
    pub principal: Principal,
    pub path: HashMap<String, String>,
    pub query: HashMap<String, String>,
    /// The JSON body (`Null` when there is none).
    pub body: Value,
    /// The version an `If-Match` header (or MCP argument) insists on.
    pub if_match: Option<IfMatch>,
    /// The undecoded body, for operations that read it themselves (uploads, forms).
    pub raw: Option<RawBody>,
    /// The client's address, on public routes (their limits and records); `None` elsewhere.
    pub client: Option<String>,
    /// The [`SIGNATURE_HEADER`] of a public route's request: a provider's signed callback
    /// proves itself with it, since it has no key. `None` elsewhere.
    pub signature: Option<String>,
    /// How many uses of the operation's cap the action is, when it is more than one.
    pub cap_units: CapUnits,
}

/// Where a provider's callback to a public route carries its signature of the body.
pub const SIGNATURE_HEADER: &str = "x-space-signature";

/// Bytes with their content type: an upload in, or HTML, iCal or a file out.
#[derive(Debug, Clone, PartialEq)]
pub struct RawBody {
    pub content_type: String,
    pub bytes: bytes::Bytes,
}

/// A parsed `If-Match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Version(u64),
}

impl IfMatch {
    /// Parses `"3"`, `W/"3"` or `*`; `None` for anything else.
    pub fn parse(text: &str) -> Option<IfMatch> {
        let text = text.trim();
        if text == "*" {
            return Some(IfMatch::Any);
        }
        let quoted = text.strip_prefix("W/").unwrap_or(text);
        quoted
            .strip_prefix('"')?
            .strip_suffix('"')?
            .parse()
            .ok()
            .map(IfMatch::Version)
    }

    pub fn matches(self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Version(expected) => expected == version,
        }
    }
}

/// The ETag of an item version.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

impl Call {
    /// A call with only the essentials; REST and MCP fill in the rest.
    pub fn new(engine: Engine, principal: Principal) -> Call {
        Call {
            engine,
            principal,
            path: HashMap::new(),
            query: HashMap::new(),
            body: Value::Null,
            if_match: None,
            raw: None,
            client: None,
            signature: None,
            cap_units: CapUnits::default(),
        }
    }

    /// The Space the calling key is locked to.
    pub fn space_id(&self) -> Result<&str, ApiError> {
        self.principal
            .space_id
            .as_deref()
            .ok_or_else(|| ApiError::Internal("space operation reached without a space principal".into()))
    }

    /// A path parameter the route guarantees.
    pub fn path_param(&self, name: &str) -> Result<&str, ApiError> {
        self.path
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| ApiError::BadRequest(format!("Missing path parameter `{name}`.")))
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// Refuses the call if the item moved past the version the caller saw.
    pub fn check_if_match(&self, current_version: u64) -> Result<(), ApiError> {
        match self.if_match {
            Some(expected) if !expected.matches(current_version) => Err(ApiError::PreconditionFailed(format!(
                "The item is at version {current_version}; the If-Match precondition no longer holds. Read it again."
            ))),
            _ => Ok(()),
        }
    }
}

const JSON: &str = "application/json";

/// What a handler answers: JSON (the usual), or raw bytes (a public page, a feed, a file).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub etag: Option<String>,
    pub raw: Option<RawBody>,
    /// Extra response headers (e.g. a Content-Security-Policy on public HTML).
    pub headers: Vec<(&'static str, String)>,
    /// A body made while it is sent (an export), never held whole.
    pub stream: Option<Streamed>,
}

/// The chunks of a streamed body.
pub type Chunks = futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// A body produced as it is sent, in one media type. Taken once, by whoever sends it.
#[derive(Clone)]
pub struct Streamed {
    pub content_type: &'static str,
    chunks: Arc<std::sync::Mutex<Option<Chunks>>>,
}

impl Streamed {
    pub fn new(content_type: &'static str, chunks: Chunks) -> Streamed {
        Streamed {
            content_type,
            chunks: Arc::new(std::sync::Mutex::new(Some(chunks))),
        }
    }

    /// The chunks, the first time; `None` after.
    pub fn take(&self) -> Option<Chunks> {
        self.chunks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Streamed {
    fn eq(&self, other: &Streamed) -> bool {
        Arc::ptr_eq(&self.chunks, &other.chunks)
    }
}

impl Reply {
    fn json(status: StatusCode, body: Option<Value>) -> Reply {
        Reply {
            status,
            body,
            etag: None,
            raw: None,
            headers: Vec::new(),
            stream: None,
        }
    }

    pub fn ok(body: Value) -> Reply {
        Reply::json(StatusCode::OK, Some(body))
    }

    pub fn created(body: Value) -> Reply {
        Reply::json(StatusCode::CREATED, Some(body))
    }

    /// 202: the work was queued (a delivery, a retry) and happens after the answer.
    pub fn accepted(body: Value) -> Reply {
        Reply::json(StatusCode::ACCEPTED, Some(body))
    }

    pub fn no_content() -> Reply {
        Reply::json(StatusCode::NO_CONTENT, None)
    }

    /// Bytes of any content type.
    pub fn raw(status: StatusCode, content_type: impl Into<String>, bytes: impl Into<bytes::Bytes>) -> Reply {
        Reply {
            raw: Some(RawBody {
                content_type: content_type.into(),
                bytes: bytes.into(),
            }),
            ..Reply::json(status, None)
        }
    }

    /// A body sent as it is made, in `content_type`.
    pub fn streamed(status: StatusCode, content_type: &'static str, chunks: Chunks) -> Reply {
        Reply {
            stream: Some(Streamed::new(content_type, chunks)),
            ..Reply::json(status, None)
        }
    }

    /// JSON the handler already holds as text (an item as stored): REST writes it as it
    /// is, without decoding and encoding it again.
    pub fn json_text(status: StatusCode, text: String) -> Reply {
        Reply::raw(status, JSON, text)
    }

    /// The body as a JSON value, for callers that need one (MCP's structured result):
    /// the body, or JSON text parsed. `None` for no body or one of another type.
    pub fn into_json(self) -> Option<Value> {
        match (self.body, self.raw) {
            (Some(body), _) => Some(body),
            (None, Some(raw)) if raw.content_type == JSON => serde_json::from_slice(&raw.bytes).ok(),
            (None, _) => None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Reply {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_etag(mut self, version: u64) -> Reply {
        self.etag = Some(etag(version));
        self
    }
}

pub type Handler = Arc<dyn Fn(Call) -> BoxFuture<'static, Result<Reply, ApiError>> + Send + Sync>;

/// Wraps an async function as a [`Handler`].
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Reply, ApiError>> + Send + 'static,
{
    Arc::new(move |call| Box::pin(f(call)))
}

/// One operation of the API.
#[derive(Clone)]
pub struct Operation {
    /// `<domain>_<verb>`, e.g. `contacts_create`: the MCP tool name and OpenAPI operationId.
    pub name: String,
    pub method: Method,
    /// Relative to the API's base path, axum syntax: `/contacts/{id}`.
    pub path: String,
    pub access: Access,
    pub effect: Effect,
    pub summary: String,
    /// What a client must know that the schemas cannot say (a rule between two fields, a
    /// time that must be in the future): the OpenAPI description.
    pub description: Option<String>,
    pub params: Vec<Param>,
    /// JSON Schema of the body, for operations that take one.
    pub body: Option<Schema>,
    /// The body may be left out (an action whose every field is optional).
    pub optional_body: bool,
    /// An action with nothing to say (publish, rotate): its body is `{}` or nothing.
    pub no_input: bool,
    /// JSON Schema of the success body (`None` for 204).
    pub response: Option<Schema>,
    pub success: StatusCode,
    /// The handler reads the body itself from [`Call::raw`] (uploads, form posts).
    pub raw_body: bool,
    /// A body limit other than the engine's default.
    pub max_body_bytes: Option<usize>,
    /// The media types a success answer comes in when it is not JSON (HTML, iCal, a
    /// file's own type): what OpenAPI documents for it.
    pub media_types: &'static [&'static str],
    /// Answers besides the success and the generic errors that a client must tell apart
    /// (an upsert's 200 beside a create's 201, a duplicate's 409): what OpenAPI documents.
    pub answers: Vec<Answer>,
    /// The cap a live action counts against ([`crate::caps`]), for keys that limit it.
    pub cap: Option<space_auth::Cap>,
    /// Calls a Space may make a minute, whatever its keys' limits: for an operation that
    /// reads much per call (a summary over weeks of events), so that one Space's calls
    /// cannot take the store from the others.
    pub space_budget: Option<u32>,
    /// Its answer shows a secret once (a key's token, a signing secret): an
    /// `Idempotency-Key` replay must not keep it, so a retry is told what the first call
    /// made instead ([`crate::idempotency`]).
    pub shows_secret: bool,
    /// For a live action on one item whose content is what goes live (publish, schedule,
    /// launch): reads that item's version. An approval holds the call to it (the caller's
    /// `If-Match`, else the version read when it was asked), so what runs is what the
    /// owner was asked about: an edit in between makes the approved call fail with 412.
    pub approves_version: Option<VersionOf>,
    /// Checked on the path before a raw body is read (a signed link's signature and
    /// expiry): a request that cannot succeed is refused before its body is taken in.
    pub admits: Option<Admit>,
    pub handler: Handler,
}

/// A check of a request's path parameters ([`Operation::admits`]).
pub type Admit = fn(&crate::Engine, &HashMap<String, String>) -> Result<(), ApiError>;

/// Reads the version of the item a call acts on ([`Operation::approves_version`]).
pub type VersionOf = Arc<dyn Fn(Call) -> BoxFuture<'static, Result<u64, ApiError>> + Send + Sync>;

/// Adds `rule` to the description of each operation of `names`: what a client must know
/// that no schema says (one field relative to another, a value that must exist).
pub fn describe(operations: &mut [Operation], names: &[&str], rule: &str) {
    for operation in operations.iter_mut().filter(|o| names.contains(&o.name.as_str())) {
        operation.description = Some(match operation.description.take() {
            Some(earlier) => format!("{earlier} {rule}"),
            None => rule.to_owned(),
        });
    }
}

/// One documented answer of an operation: its status, when it happens, and its body
/// (`None` for the error envelope).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub description: String,
    pub schema: Option<Schema>,
}

impl Operation {
    /// An operation with no parameters, no body and a 200 answer; the `with_*` methods
    /// fill in the rest.
    pub fn new(
        name: impl Into<String>,
        method: Method,
        path: impl Into<String>,
        access: Access,
        effect: Effect,
        summary: impl Into<String>,
        handler: Handler,
    ) -> Operation {
        Operation {
            name: name.into(),
            method,
            path: path.into(),
            access,
            effect,
            summary: summary.into(),
            description: None,
            params: Vec::new(),
            body: None,
            optional_body: false,
            no_input: false,
            response: None,
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
            handler,
        }
    }

    /// Refuses, before its body is read, a request whose path `admit` turns down
    /// ([`Operation::admits`]).
    pub fn admitted_by(mut self, admit: Admit) -> Operation {
        self.admits = Some(admit);
        self
    }

    /// An approval of this live action holds it to its item's version as `read` finds it
    /// ([`Operation::approves_version`]).
    pub fn approving_version<F, Fut>(mut self, read: F) -> Operation
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<u64, ApiError>> + Send + 'static,
    {
        self.approves_version = Some(Arc::new(move |call| Box::pin(read(call))));
        self
    }

    /// Its answer shows a secret once ([`Operation::shows_secret`]).
    pub fn showing_secret(mut self) -> Operation {
        self.shows_secret = true;
        self
    }

    /// At most `per_minute` calls a minute per Space ([`Operation::space_budget`]).
    pub fn budgeted(mut self, per_minute: u32) -> Operation {
        self.space_budget = Some(per_minute);
        self
    }

    /// A live action that counts against `cap` for keys with a limit on it.
    pub fn capped(mut self, cap: space_auth::Cap) -> Operation {
        self.cap = Some(cap);
        self
    }

    /// Rules the schemas cannot state, for the OpenAPI description.
    pub fn with_description(mut self, description: impl Into<String>) -> Operation {
        self.description = Some(description.into());
        self
    }

    pub fn with_params(mut self, params: Vec<Param>) -> Operation {
        self.params = params;
        self
    }

    /// The JSON Schema of the body.
    pub fn with_body(mut self, schema: impl Into<Schema>) -> Operation {
        self.body = Some(schema.into());
        self
    }

    /// An action that takes no input: `{}` or no body at all; anything else is refused.
    pub fn with_no_input(mut self) -> Operation {
        self.body = Some(Schema::lazy(crate::fields::empty_body_schema));
        self.no_input = true;
        self
    }

    /// The JSON Schema of a body that may also be left out.
    pub fn with_optional_body(mut self, schema: impl Into<Schema>) -> Operation {
        self.body = Some(schema.into());
        self.optional_body = true;
        self
    }

    /// The success status and the JSON Schema of its body.
    pub fn answers(mut self, success: StatusCode, response: impl Into<Schema>) -> Operation {
        self.success = success;
        self.response = Some(response.into());
        self
    }

    /// Documents another answer a client must tell apart from the success ([`Answer`]).
    pub fn with_answer(mut self, answer: Answer) -> Operation {
        self.answers.push(answer);
        self
    }

    /// Answers 204 with no body.
    pub fn answers_no_content(mut self) -> Operation {
        self.success = StatusCode::NO_CONTENT;
        self.response = None;
        self
    }

    /// The success status, answered as bytes of `media_types` rather than JSON.
    pub fn answers_as(mut self, success: StatusCode, media_types: &'static [&'static str]) -> Operation {
        self.success = success;
        self.response = None;
        self.media_types = media_types;
        self
    }

    /// Hands the handler the undecoded body, up to `max_bytes` if given.
    pub fn with_raw_body(mut self, max_bytes: Option<usize>) -> Operation {
        self.raw_body = true;
        self.max_body_bytes = max_bytes;
        self
    }

    /// The full path the router serves.
    pub fn full_path(&self) -> String {
        format!("{}{}", self.access.base_path(), self.path)
    }

    /// The family a public route's budget is counted in: the first segment of its path
    /// (`p` for published pages, `f` for form posts, `b` for booking pages, `c` for
    /// calendar feeds, `u` and `d` for signed media links, `hooks` for providers' signed
    /// callbacks). A visitor reading pages does not
    /// use up what the same address may post to forms, nor the other way round.
    pub fn public_family(&self) -> &str {
        self.path.trim_start_matches('/').split('/').next().unwrap_or_default()
    }

    /// The OpenAPI tag and MCP toolset: the domain, or `account`.
    pub fn group(&self) -> &'static str {
        match self.access {
            Access::Space(scope) => scope.domain.as_str(),
            Access::Account => "account",
            Access::Public { .. } => "public",
        }
    }

    pub fn domain(&self) -> Option<Domain> {
        match self.access {
            Access::Space(scope) => Some(scope.domain),
            Access::Account | Access::Public { .. } => None,
        }
    }

    /// The scope under which a key may make this operation wait for the owner's approval
    /// ([`crate::approvals`]): a space key's live actions.
    pub fn approvable(&self) -> Option<Scope> {
        match self.access {
            Access::Space(scope) if self.effect == Effect::Live => Some(scope),
            _ => None,
        }
    }

    /// Whether the operation takes a body.
    pub fn takes_body(&self) -> bool {
        self.body.is_some() || self.raw_body
    }

    /// Whether a request may leave the body out.
    pub fn body_is_optional(&self) -> bool {
        self.optional_body || self.no_input
    }

    /// An action with nothing to say (publish, rotate): its body is `{}` or nothing at all.
    /// A flag, not a look at the schema: serving requests never builds a schema.
    pub fn takes_no_input(&self) -> bool {
        self.no_input
    }
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("path", &self.path)
            .field("access", &self.access)
            .finish_non_exhaustive()
    }
}

/// The catalogue's operations by name, for a job that calls one as a key would (an
/// automation's step, an approved call). Built on the first lookup: a worker that never
/// calls an operation never builds the catalogue.
#[derive(Clone)]
pub struct OperationTable {
    operations: fn() -> Vec<Operation>,
    by_name: Arc<OnceLock<HashMap<String, Operation>>>,
}

impl OperationTable {
    /// `operations`: every operation a space key can call (the catalogue).
    pub fn new(operations: fn() -> Vec<Operation>) -> OperationTable {
        OperationTable {
            operations,
            by_name: Arc::default(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Operation> {
        self.by_name
            .get_or_init(|| {
                (self.operations)()
                    .into_iter()
                    .map(|operation| (operation.name.clone(), operation))
                    .collect()
            })
            .get(name)
    }
}
