//! The one error shape of the API:
//! `{"error": {"code", "message", "fields"?, "request_id"}}`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use space_auth::{KeyStatus, MissingScope, TokenError};
use space_store::StoreError;

use crate::request_id;

/// Per-field validation messages, keyed by field name (or `body` for the whole body).
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Everything a request can fail with. Each variant knows its status and code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// Another item already holds a value that must be unique (409): names that item, so
    /// a client can update it instead of creating a second one.
    #[error("{message}")]
    Duplicate {
        message: String,
        field: String,
        existing_id: String,
    },
    /// A retry whose `Idempotency-Key` was already applied and whose answer is not kept
    /// (409 `CONFLICT`): the call happened, so a caller acting for someone (an approval, an
    /// automation step) counts it done. `applied_id` names what it made, when known.
    #[error("{message}")]
    AlreadyApplied {
        message: String,
        applied_id: Option<String>,
    },
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client does not accept any media type the endpoint answers in (406).
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Validation { message: String, fields: FieldErrors },
    /// A well-formed request a rule of the domain refuses (422), with a code of its own
    /// that a client branches on (`RECIPIENT_OPTED_OUT`, `REPLY_WINDOW_CLOSED`).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// The key used up its daily cap on a live action (429 `LIVE_ACTION_CAP`).
    #[error(
        "This API key may do `{cap}` at most {limit} times per UTC day and has; the cap resets at {resets_at}. Nothing was sent."
    )]
    CapReached {
        cap: space_auth::Cap,
        limit: u32,
        resets_at: String,
        retry_after: u64,
    },
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    /// A fault on our side. The cause is logged; the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) | ApiError::Duplicate { .. } | ApiError::AlreadyApplied { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. } | ApiError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } | ApiError::CapReached { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code clients branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            ApiError::Conflict(_) | ApiError::Duplicate { .. } | ApiError::AlreadyApplied { .. } => "CONFLICT",
            ApiError::PreconditionFailed(_) => "PRECONDITION_FAILED",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::NotAcceptable(_) => "NOT_ACCEPTABLE",
            ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::Validation { .. } => "VALIDATION_FAILED",
            ApiError::Refused { code, .. } => code,
            ApiError::RateLimited { .. } => "RATE_LIMITED",
            ApiError::CapReached { .. } => "LIVE_ACTION_CAP",
            ApiError::Unavailable { .. } => "UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    /// A 422 with one message per bad field.
    pub fn validation(fields: FieldErrors) -> ApiError {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        ApiError::Validation {
            message: format!("The request is invalid: check {}.", names.join(", ")),
            fields,
        }
    }

    /// A 422 about a single field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::validation(FieldErrors::from([(field.to_owned(), vec![message.into()])]))
    }

    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::NotFound(format!("No {what} with id `{id}` in this Space."))
    }

    pub fn fields(&self) -> Option<&FieldErrors> {
        match self {
            ApiError::Validation { fields, .. } => Some(fields),
            _ => None,
        }
    }

    /// The envelope body, with the current request's id.
    pub fn body(&self) -> Value {
        let message = match self {
            ApiError::Internal(_) => "Something went wrong on our side; the request id helps us find it.".to_owned(),
            other => other.to_string(),
        };
        let mut error = json!({
            "code": self.code(),
            "message": message,
            "request_id": request_id::current(),
        });
        if let Some(fields) = self.fields() {
            error["fields"] = json!(fields);
        }
        if let ApiError::Duplicate {
            field,
            existing_id,
            message,
        } = self
        {
            error["fields"] = json!({ field: [message] });
            error["existing_id"] = json!(existing_id);
        }
        if let ApiError::CapReached {
            cap, limit, resets_at, ..
        } = self
        {
            error["cap"] = json!(cap.as_str());
            error["limit"] = json!(limit);
            error["resets_at"] = json!(resets_at);
        }
        json!({ "error": error })
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. }
            | ApiError::CapReached { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body was never read: the connection cannot carry another
            // request, and a client that reused it would see it cut.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Unavailable { reason, retry_after } => {
                tracing::warn!(%reason, "store unavailable");
                ApiError::Unavailable {
                    message: "The data store is unavailable right now; retry shortly.".into(),
                    retry_after: retry_after.max(Duration::from_secs(1)).as_secs(),
                }
            }
            StoreError::Contention => {
                ApiError::Conflict("Another request changed this item at the same moment; retry.".into())
            }
            StoreError::ConditionFailed | StoreError::TransactionConflict { .. } => {
                ApiError::Conflict("The item changed or already exists; read it again and retry.".into())
            }
            StoreError::TooLarge { bytes, limit } => ApiError::invalid_field(
                "body",
                format!(
                    "makes a record of {} KiB and one holds at most {} KiB: send less (shorter text, fewer elements)",
                    bytes.div_ceil(1024),
                    limit / 1024
                ),
            ),
            StoreError::Rejected(reason) => {
                ApiError::BadRequest(format!("The request cannot be stored as it is: {reason}."))
            }
            StoreError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<MissingScope> for ApiError {
    fn from(missing: MissingScope) -> ApiError {
        ApiError::Forbidden(format!("This API key lacks the `{}` scope.", missing.0))
    }
}

impl From<TokenError> for ApiError {
    fn from(error: TokenError) -> ApiError {
        ApiError::Unauthenticated(format!("Invalid API key: {error}."))
    }
}

impl From<KeyStatus> for ApiError {
    fn from(status: KeyStatus) -> ApiError {
        ApiError::Unauthenticated(match status {
            KeyStatus::Expired => "The API key has expired.".into(),
            KeyStatus::Revoked => "The API key has been revoked.".into(),
            KeyStatus::WrongKind => "This endpoint takes a different kind of API key.".into(),
        })
    }
}
