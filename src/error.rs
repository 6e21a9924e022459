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
    pub code: String,
    /// Extension members (e.g. `missing` for `not_entitled`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extensions: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub extensions: Map<String, Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            extensions: Map::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// A bug or an unexpected failure: the detail is logged here, never sent.
    pub fn internal(context: impl std::fmt::Display) -> Self {
        tracing::error!(error = %context, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred; it has been logged",
        )
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:vouch:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
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
                "database_unavailable",
                "the database is unavailable; retry later",
            );
        }
        if is_unique_violation(&err) {
            return ApiError::conflict(
                "conflict",
                "the request conflicts with an existing resource",
            );
        }
        ApiError::internal(err)
    }
}

/// Problem details for a status that arose outside our handlers (router, extractors).
pub fn problem_for_status(status: StatusCode) -> ApiError {
    let (code, detail) = match status.as_u16() {
        400 => ("bad_request", "the request could not be understood"),
        401 => ("unauthorized", "authentication is required"),
        403 => ("forbidden", "this client may not do that"),
        404 => ("not_found", "no such resource"),
        405 => (
            "method_not_allowed",
            "the method is not allowed on this resource",
        ),
        408 => ("request_timeout", "the request took too long to arrive"),
        411 => ("length_required", "a Content-Length is required"),
        413 => ("payload_too_large", "the request body is too large"),
        414 => ("uri_too_long", "the request URI is too long"),
        415 => (
            "unsupported_media_type",
            "the request body must be application/json",
        ),
        431 => ("headers_too_large", "the request headers are too large"),
        503 => ("unavailable", "the service is temporarily unavailable"),
        s if s >= 500 => (
            "internal_error",
            "an unexpected error occurred; it has been logged",
        ),
        _ => ("client_error", "the request was not accepted"),
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
