//! The one mapping from errors to HTTP responses.
//!
//! Every error leaves as `{"error":{"code":"snake_case","message":"..."}}` with the status
//! from the table in `From` impls below. Client errors (4xx) are not logged as errors; server
//! errors (5xx) are logged with their cause and answered with a generic message.
//!
//! Services and the domain say what went wrong in their own `thiserror` enums; the errors of
//! the HTTP edge itself (a body that is not JSON, a missing credential) are the enums
//! [`RequestError`] and [`AccessError`] here. Handlers never pick a status or a code: this
//! file is the only place that does.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::domain::admin::CredentialError;
use crate::domain::classify_input::ClassifyInputError;
use crate::domain::player::NicknameError;
use crate::domain::{DrawingError, IdError, QualityError, ShapeError};
use crate::jobs::{JobConfigError, JobFinished};
use crate::service::accounts::AccountError;
use crate::service::api_keys::ApiKeyError;
use crate::service::backup::BackupError;
use crate::service::evaluation::{ActivationError, EvaluationError};
use crate::service::models::ModelError;
use crate::service::review::ReviewError;
use crate::service::serving::ServingError;
use crate::service::shapes::ShapesError;
use crate::service::submit::SubmitError;
use crate::store::{IngestError, StoreError};

/// Seconds a client is asked to wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// An error as the API answers it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// A named JSON value answered inside the error object next to code and message (the
    /// comparison behind a refused activation).
    detail: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(RETRY_AFTER_SECS),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// A server fault: logged here with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it has been logged",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The error code of an error response, left in its extensions for the metrics middleware.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        if let Some((name, value)) = self.detail {
            body["error"][name] = value;
        }
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is never read, so the connection cannot carry another
            // request: say so, or the client reuses it and its next request fails.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// What is wrong with a request before any service sees it: its body, its query, its path.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("send the body as JSON with Content-Type: application/json")]
    NotJson,
    #[error("the request body is too large")]
    BodyTooLarge,
    /// The body could not be read (the connection broke, a bad encoding).
    #[error("{0}")]
    UnreadableBody(String),
    /// Not JSON at all.
    #[error("{0}")]
    MalformedJson(String),
    /// JSON, but not of the expected shape or values.
    #[error("{0}")]
    InvalidBody(String),
    /// A query parameter the route does not take or cannot parse.
    #[error("{0}")]
    InvalidQuery(String),
    /// A review listing's query that does not decode.
    #[error("{0}")]
    InvalidFilter(String),
    /// One named query parameter that does not parse.
    #[error("query parameter `{name}`: {reason}")]
    InvalidParameter { name: String, reason: String },
    #[error("no such API endpoint")]
    NoSuchEndpoint,
    /// A path parameter that cannot name anything here (`/jobs/abc`): nothing is there.
    #[error("nothing is at this address: a path parameter does not parse")]
    UnparsablePath,
    /// A known path asked with a method it does not take (`Allow` lists those it does).
    #[error("this endpoint does not take that method; the Allow header lists those it takes")]
    MethodNotAllowed,
    /// A classify batch with too few or too many drawings.
    #[error("send 1 to {0} drawings")]
    BatchSize(usize),
    /// One drawing of a classify batch does not parse.
    #[error("drawing {index}: {source}")]
    BatchItem {
        index: usize,
        source: ClassifyInputError,
    },
}

/// Why a caller may not use a route.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No credential, or one that is not valid here.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A valid credential of the wrong kind, or a cross-site request.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A classify request's API key is missing, unknown or revoked.
    #[error("{0}")]
    InvalidApiKey(&'static str),
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            RequestError::NotJson => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            RequestError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            RequestError::UnreadableBody(_) => (StatusCode::BAD_REQUEST, "unreadable_body"),
            RequestError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            RequestError::InvalidBody(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            RequestError::InvalidQuery(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_query"),
            RequestError::InvalidFilter(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_filter"),
            RequestError::InvalidParameter { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameter")
            }
            RequestError::NoSuchEndpoint => (StatusCode::NOT_FOUND, "not_found"),
            RequestError::UnparsablePath => (StatusCode::NOT_FOUND, "not_found"),
            RequestError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
            }
            RequestError::BatchSize(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_batch"),
            RequestError::BatchItem { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_drawing"),
        };
        Self::new(status, code, message)
    }
}

impl From<JobConfigError> for ApiError {
    fn from(e: JobConfigError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_training_config",
            e.to_string(),
        )
    }
}

impl From<JobFinished> for ApiError {
    fn from(e: JobFinished) -> Self {
        Self::new(StatusCode::CONFLICT, "job_finished", e.to_string())
    }
}

impl From<AccessError> for ApiError {
    fn from(e: AccessError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            AccessError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            AccessError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AccessError::InvalidApiKey(_) => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
        };
        Self::new(status, code, message)
    }
}

impl From<crate::domain::review::FilterError> for ApiError {
    fn from(e: crate::domain::review::FilterError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_filter",
            e.to_string(),
        )
    }
}

impl From<ClassifyInputError> for ApiError {
    fn from(e: ClassifyInputError) -> Self {
        let code = match e {
            ClassifyInputError::Body(_) => "invalid_body",
            _ => "invalid_drawing",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

impl From<NicknameError> for ApiError {
    fn from(e: NicknameError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_nickname",
            e.to_string(),
        )
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Limited(limited) => limited.into(),
            SubmitError::PlayerBlocked => {
                Self::new(StatusCode::FORBIDDEN, "player_blocked", e.to_string())
            }
            SubmitError::Id(e) => e.into(),
            SubmitError::Drawing(e) => e.into(),
            SubmitError::RetiredShape(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "retired_shape",
                e.to_string(),
            ),
            SubmitError::UnknownShape(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_shape",
                e.to_string(),
            ),
            SubmitError::Ingest(e) => e.into(),
            SubmitError::Store(e) => e.into(),
            SubmitError::Worker(cause) => Self::internal(cause),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(e: ApiKeyError) -> Self {
        match e {
            ApiKeyError::Input(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_key_request",
                e.to_string(),
            ),
            ApiKeyError::NotFound(_) => Self::not_found("API key"),
            ApiKeyError::Store(e) => e.into(),
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::NotFound(_) => Self::not_found("model"),
            ModelError::Active(_) => Self::new(StatusCode::CONFLICT, "model_active", e.to_string()),
            ModelError::Serving(e) => e.into(),
            ModelError::Manifest { .. } => Self::internal(e),
            ModelError::Store(e) => e.into(),
        }
    }
}

impl From<ReviewError> for ApiError {
    fn from(e: ReviewError) -> Self {
        match e {
            ReviewError::DrawingNotFound => Self::not_found("drawing"),
            ReviewError::PlayerNotFound => Self::not_found("player"),
            ReviewError::InvalidBulk(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                e.to_string(),
            ),
            ReviewError::Damaged { .. } | ReviewError::Thumbnail(_) => Self::internal(e),
            ReviewError::Store(e) => e.into(),
        }
    }
}

impl From<ShapesError> for ApiError {
    fn from(e: ShapesError) -> Self {
        match e {
            ShapesError::Invalid(e) => e.into(),
            ShapesError::NothingToChange => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_shape",
                e.to_string(),
            ),
            ShapesError::Exists(_) => {
                Self::new(StatusCode::CONFLICT, "shape_exists", e.to_string())
            }
            ShapesError::NotFound => Self::not_found("shape"),
            ShapesError::NoneCollected => Self::unavailable("no_shapes", e.to_string()),
            ShapesError::PictureNotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            ShapesError::BadPicture(_) => {
                Self::new(StatusCode::CONFLICT, "invalid_picture", e.to_string())
            }
            ShapesError::Store(e) => e.into(),
        }
    }
}

impl From<crate::service::limits::Limited> for ApiError {
    fn from(limited: crate::service::limits::Limited) -> Self {
        let secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "too many requests for this {}; retry in {secs} s",
                    limited.scope.replace('_', " ")
                ),
            )
        }
    }
}

impl From<DrawingError> for ApiError {
    fn from(e: DrawingError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_drawing",
            e.to_string(),
        )
    }
}

impl From<QualityError> for ApiError {
    fn from(e: QualityError) -> Self {
        let code = match e {
            QualityError::Threshold => "invalid_settings",
            QualityError::Bins => "invalid_query",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    }
}

impl From<ShapeError> for ApiError {
    fn from(e: ShapeError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_shape",
            e.to_string(),
        )
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> Self {
        match e {
            IdError::Drawing(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            IdError::IdempotencyKey => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                e.to_string(),
            ),
            // A path naming something that cannot exist is simply not found.
            IdError::ApiKey(_) => Self::not_found("API key"),
            IdError::ModelVersion(_) => Self::not_found("model"),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::IdempotencyConflict => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                e.to_string(),
            ),
            IngestError::Overloaded => Self::unavailable("overloaded", e.to_string()),
            IngestError::Stopped => Self::unavailable("shutting_down", e.to_string()),
            IngestError::DiskFull { .. } => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                e.to_string(),
            ),
            IngestError::BreakerOpen { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    format!("{e}; please retry later"),
                )
            },
            IngestError::Storage(cause) => {
                tracing::error!(%cause, "storing a drawing failed");
                Self::unavailable(
                    "storage_unavailable",
                    "the drawing could not be stored; please retry",
                )
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(cause = %e, "store error");
        Self::unavailable(
            "storage_unavailable",
            "storage is unavailable; please retry",
        )
    }
}

impl From<ActivationError> for ApiError {
    fn from(e: ActivationError) -> Self {
        let message = e.to_string();
        match e {
            ActivationError::Model(e) => e.into(),
            ActivationError::SignificantlyWorse(comparison) => Self {
                detail: Some((
                    "comparison",
                    serde_json::to_value(&comparison).unwrap_or_default(),
                )),
                ..Self::new(StatusCode::CONFLICT, "significantly_worse", message)
            },
            ActivationError::Evaluation(EvaluationError::Store(e)) => e.into(),
            ActivationError::Evaluation(EvaluationError::Model { .. }) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_model", message)
            }
            ActivationError::Evaluation(EvaluationError::Classify(e)) => Self::internal(e),
        }
    }
}

impl From<ServingError> for ApiError {
    fn from(e: ServingError) -> Self {
        match e {
            ServingError::NoModel => Self::unavailable("no_active_model", e.to_string()),
            ServingError::Busy | ServingError::Stopped => {
                Self::unavailable("classifier_busy", e.to_string())
            }
            ServingError::Drawing(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_drawing",
                e.to_string(),
            ),
            ServingError::UnknownVersion(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            ServingError::InvalidModel { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_model",
                e.to_string(),
            ),
            ServingError::NothingToRollBackTo => Self::new(
                StatusCode::CONFLICT,
                "nothing_to_roll_back_to",
                e.to_string(),
            ),
            ServingError::Store(e) => e.into(),
        }
    }
}

impl From<CredentialError> for ApiError {
    fn from(e: CredentialError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_credentials",
            e.to_string(),
        )
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let message = e.to_string();
        match e {
            AccountError::Credentials(e) => e.into(),
            AccountError::WrongPassword => {
                Self::new(StatusCode::UNAUTHORIZED, "wrong_credentials", message)
            }
            AccountError::BadSetupToken => {
                Self::new(StatusCode::FORBIDDEN, "invalid_setup_token", message)
            }
            AccountError::AlreadySetUp => {
                Self::new(StatusCode::CONFLICT, "already_set_up", message)
            }
            AccountError::UsernameTaken(_) => {
                Self::new(StatusCode::CONFLICT, "username_taken", message)
            }
            AccountError::NoSuchAdmin(_) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            AccountError::Hash(cause) => Self::internal(cause),
            AccountError::Store(e) => e.into(),
        }
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            // Over HTTP the destination is a name in the backup directory: say so, without
            // the path on the server's disk.
            BackupError::DestinationNotEmpty(_) => Self::new(
                StatusCode::CONFLICT,
                "backup_destination_not_empty",
                "a backup folder of that name already exists in the backup directory; choose another name",
            ),
            BackupError::RelativeDestination(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_backup_destination",
                e.to_string(),
            ),
            BackupError::DestinationInRequest => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "backup_destination_not_allowed",
                e.to_string(),
            ),
            BackupError::InvalidName(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_backup_name",
                e.to_string(),
            ),
            BackupError::ClusterMode => {
                Self::new(StatusCode::CONFLICT, "use_pg_dump", e.to_string())
            }
            BackupError::Store(e) => e.into(),
            other => Self::internal(other),
        }
    }
}

impl From<crate::jobs::import::UploadError> for ApiError {
    fn from(e: crate::jobs::import::UploadError) -> Self {
        use crate::jobs::import::UploadError;
        match e {
            UploadError::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload_too_large",
                e.to_string(),
            ),
            UploadError::Read(_) => {
                Self::new(StatusCode::BAD_REQUEST, "body_read_failed", e.to_string())
            }
            UploadError::Write(cause) => Self::internal(cause),
            UploadError::Store(cause) => cause.into(),
        }
    }
}

impl From<crate::transfer::import::ImportError> for ApiError {
    fn from(e: crate::transfer::import::ImportError) -> Self {
        use crate::transfer::import::ImportError;
        match e {
            ImportError::SourceName(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_parameter",
                e.to_string(),
            ),
            ImportError::Read(cause) => Self::new(
                StatusCode::BAD_REQUEST,
                "body_read_failed",
                format!("the upload broke off: {cause}"),
            ),
            ImportError::Ingest(e) => e.into(),
            ImportError::Store(e) => e.into(),
        }
    }
}
