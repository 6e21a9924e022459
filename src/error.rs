//! One error type for the API, written as RFC 9457 problem details with a stable `code`, and
//! the rendering of every other error response (actix's own) as problem details too.

use actix_web::{
    body::BoxBody,
    dev::ServiceResponse,
    http::{
        header::{self, HeaderName, HeaderValue},
        StatusCode,
    },
    HttpResponse, ResponseError,
};
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use serde::Serialize;
use serde_json::{Map, Value};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Every stable `code` Vouch sends in a problem, spelled once (snake_case on the wire).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    AccountExists,
    AccountNotFound,
    AccountSuspended,
    AlreadyApproved,
    BadRequest,
    BillingLinkChanged,
    ClientError,
    ClientExists,
    ClientNotFound,
    Conflict,
    CustomerLinked,
    DatabaseUnavailable,
    DeviceBindingRequired,
    DeviceMismatch,
    ExceptionDecided,
    ExceptionNotApproved,
    ExceptionNotFound,
    ExceptionPending,
    ExceptionPurged,
    Expired,
    Forbidden,
    FourEyes,
    HeadersTooLarge,
    InternalError,
    InvalidAudience,
    InvalidBody,
    InvalidCode,
    InvalidCredentials,
    InvalidCursor,
    InvalidCustomerId,
    InvalidDescription,
    InvalidDeviceJkt,
    InvalidDisplayName,
    InvalidDpopProof,
    InvalidEmail,
    InvalidEventType,
    InvalidExpiresAt,
    InvalidExpiringWithinDays,
    InvalidExternalId,
    InvalidLimit,
    InvalidLocale,
    InvalidName,
    InvalidOrganization,
    InvalidPhone,
    InvalidPrincipal,
    InvalidQuery,
    InvalidReason,
    InvalidReference,
    /// A request RFC 6749 §5.2 would call `invalid_request`: a required parameter is missing
    /// or empty, or one is repeated (e.g. `token` at `/v1/tokens/revoke`).
    InvalidRequest,
    InvalidRoom,
    InvalidSignature,
    InvalidStatement,
    InvalidToken,
    InvalidTtl,
    InvalidUrl,
    JitsiKeyNotFound,
    LengthRequired,
    LivemodeMismatch,
    MalformedJson,
    MalformedPayload,
    MethodNotAllowed,
    MissingCredentials,
    NoSigningKey,
    NotConfigured,
    NotEntitled,
    NotFound,
    PayloadTooLarge,
    PhoneCountryNotAllowed,
    PhoneInUse,
    RateLimited,
    RequestTimeout,
    Revoked,
    RotationPending,
    StatusListNotFound,
    TimestampOutOfTolerance,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    UriTooLong,
    UrlNotAllowed,
    VerificationNotFound,
    WebhookDisabled,
    WebhookNotFound,
    WrongAudience,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status this code is always sent with; `None` for `internal_error` (any 5xx),
    /// `client_error` (any other 4xx) and `account_suspended` (409 or 403), which carry the
    /// status the failure arose with.
    pub fn status(self) -> Option<StatusCode> {
        use ErrorCode::*;
        Some(match self {
            BadRequest
            | DeviceBindingRequired
            | InvalidAudience
            | InvalidBody
            | InvalidCode
            | InvalidCursor
            | InvalidCustomerId
            | InvalidDescription
            | InvalidDeviceJkt
            | InvalidDisplayName
            | InvalidDpopProof
            | InvalidEmail
            | InvalidEventType
            | InvalidExpiresAt
            | InvalidExpiringWithinDays
            | InvalidExternalId
            | InvalidLimit
            | InvalidLocale
            | InvalidName
            | InvalidOrganization
            | InvalidPhone
            | InvalidPrincipal
            | InvalidQuery
            | InvalidReason
            | InvalidReference
            | InvalidRequest
            | InvalidRoom
            | InvalidSignature
            | InvalidStatement
            | InvalidTtl
            | InvalidUrl
            | LivemodeMismatch
            | MalformedJson
            | MalformedPayload
            | PhoneCountryNotAllowed
            | TimestampOutOfTolerance
            | UrlNotAllowed => StatusCode::BAD_REQUEST,
            InvalidCredentials | MissingCredentials | Unauthorized => StatusCode::UNAUTHORIZED,
            // The authorize reasons, as the meeting-server exchanges refuse with them.
            DeviceMismatch | Expired | Forbidden | FourEyes | InvalidToken | NotEntitled
            | Revoked | WrongAudience => StatusCode::FORBIDDEN,
            AccountNotFound | ClientNotFound | ExceptionNotFound | JitsiKeyNotFound | NotFound
            | StatusListNotFound | VerificationNotFound | WebhookNotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AccountExists | AlreadyApproved | BillingLinkChanged | ClientExists | Conflict
            | CustomerLinked | ExceptionDecided | ExceptionNotApproved | ExceptionPending
            | ExceptionPurged | PhoneInUse | RotationPending | WebhookDisabled => {
                StatusCode::CONFLICT
            }
            LengthRequired => StatusCode::LENGTH_REQUIRED,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UriTooLong => StatusCode::URI_TOO_LONG,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            DatabaseUnavailable | NoSigningKey | NotConfigured | Unavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // 409 where a suspended account may not do something (send codes), 403 where an
            // exchange refuses its token for the authorize reason `account_suspended`.
            InternalError | ClientError | AccountSuspended => return None,
        })
    }
}

/// RFC 9457 problem details as Vouch writes them.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "urn:vouch:problem:account_not_found",
    "title": "Not Found",
    "status": 404,
    "detail": "no account with this id",
    "code": "account_not_found"
}))]
pub struct Problem {
    /// `urn:vouch:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable reason.
    pub code: ErrorCode,
    /// Extension members (e.g. `missing` for `not_entitled`). Any members: generated clients
    /// must accept them (a bare `object` reads as "no members" to some).
    #[serde(flatten)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub extensions: Map<String, Value>,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub detail: String,
    pub extensions: Map<String, Value>,
    pub retry_after: Option<u64>,
    /// Further response headers (e.g. `DPoP-Nonce` on a refused DPoP proof).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        debug_assert!(
            code.status().is_none_or(|s| s == status),
            "{code} is sent with another status than {status}"
        );
        ApiError {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn forbidden(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn unauthorized(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn unavailable(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// A bug or an unexpected failure: the detail is logged here, never sent.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        tracing::error!(error = %context, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Send a further header with the problem; a value that is not a valid header is dropped.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.headers.push((name, value));
        }
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:vouch:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            extensions: self.extensions.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.content_type(PROBLEM_JSON);
        if let Some(secs) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        for (name, value) in &self.headers {
            builder.insert_header((name.clone(), value.clone()));
        }
        builder.json(self.problem())
    }
}

/// Whether a database error means "the database cannot serve this now" (unreachable, or a lock
/// not granted in time) rather than a bad query: the caller may retry.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            use sea_orm::sqlx::Error as E;
            match e.as_ref() {
                E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => true,
                E::Protocol(_) => true,
                // 57P01 admin_shutdown, 57P03 cannot_connect_now, 08xxx connection exceptions,
                // 55P03 lock_not_available (`lock_timeout`), 25P03 the session was ended for
                // idling in a transaction
                E::Database(db) => db.code().is_some_and(|c| {
                    c.starts_with("08")
                        || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "55P03" | "25P03")
                }),
                _ => false,
            }
        }
        DbErr::Conn(_) => true,
        _ => false,
    }
}

/// Whether an insert or update lost to a unique constraint (a duplicate, or a lost race).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::unavailable(
                ErrorCode::DatabaseUnavailable,
                "the database is unavailable; retry later",
            );
        }
        if is_unique_violation(&err) {
            return ApiError::conflict(
                ErrorCode::Conflict,
                "the request conflicts with an existing resource",
            );
        }
        ApiError::internal(err)
    }
}

/// Problem details for a status that arose outside our handlers (router, extractors).
pub fn problem_for_status(status: StatusCode) -> ApiError {
    let (code, detail) = match status.as_u16() {
        400 => (ErrorCode::BadRequest, "the request could not be understood"),
        401 => (ErrorCode::Unauthorized, "authentication is required"),
        403 => (ErrorCode::Forbidden, "this client may not do that"),
        404 => (ErrorCode::NotFound, "no such resource"),
        405 => (
            ErrorCode::MethodNotAllowed,
            "the method is not allowed on this resource",
        ),
        408 => (
            ErrorCode::RequestTimeout,
            "the request took too long to arrive",
        ),
        411 => (ErrorCode::LengthRequired, "a Content-Length is required"),
        413 => (ErrorCode::PayloadTooLarge, "the request body is too large"),
        414 => (ErrorCode::UriTooLong, "the request URI is too long"),
        415 => (
            ErrorCode::UnsupportedMediaType,
            "the request body must be application/json",
        ),
        431 => (
            ErrorCode::HeadersTooLarge,
            "the request headers are too large",
        ),
        503 => (
            ErrorCode::Unavailable,
            "the service is temporarily unavailable",
        ),
        s if s >= 500 => (
            ErrorCode::InternalError,
            "an unexpected error occurred; it has been logged",
        ),
        _ => (ErrorCode::ClientError, "the request was not accepted"),
    };
    ApiError::new(status, code, detail)
}

/// Any error response not already problem+json (actix's own 404/405/413, ...) becomes one.
pub fn problemize(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON));
    if is_problem {
        return res;
    }
    let keep: Vec<(HeaderName, HeaderValue)> =
        [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE]
            .into_iter()
            .filter_map(|name| res.headers().get(&name).map(|v| (name, v.clone())))
            .collect();
    let (req, _old) = res.into_parts();
    let mut new: HttpResponse = problem_for_status(status).error_response();
    for (name, value) in keep {
        new.headers_mut().insert(name, value);
    }
    ServiceResponse::new(req, new)
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn every_code_is_one_snake_case_string_on_the_wire_and_in_the_type_uri() {
        for &code in ErrorCode::VARIANTS {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, Value::String(code.as_str().to_owned()));
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
            assert!(code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        let problem = ApiError::not_found(ErrorCode::AccountNotFound, "no account").problem();
        assert_eq!(problem.type_, "urn:vouch:problem:account_not_found");
        assert_eq!(problem.code.as_str(), "account_not_found");
    }

    #[test]
    fn a_status_from_outside_the_handlers_gets_a_code_that_goes_with_it() {
        for s in 400..600 {
            let status = StatusCode::from_u16(s).unwrap();
            let err = problem_for_status(status);
            assert_eq!(err.status, status);
            assert!(err.code.status().is_none_or(|fixed| fixed == status), "{s}");
        }
    }
}
