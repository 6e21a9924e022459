//! HTTP handlers, one module per resource. Handlers parse input into domain types, call one
//! service function and map the result; they never touch the database themselves.

use crate::error::ErrorCode;
use actix_web::{
    dev::ResourceDef,
    error::{JsonPayloadError, PathError, QueryPayloadError},
    http::{header, Method},
    web, HttpRequest, HttpResponse, ResponseError,
};

use utoipa::openapi::OpenApi;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{problem_for_status, ApiError};

pub mod accounts;
pub mod admin;
pub mod billing;
pub mod evidence;
pub mod examples;
pub mod exceptions;
pub mod exchange;
pub mod exchange_jitsi;
pub mod health;
pub mod json;
pub mod me;
pub mod overview;
pub mod status_lists;
pub mod tokens;
pub mod verifications;
pub mod webhooks;

/// Register every API route; the OpenAPI spec is generated from this same registration.
pub fn configure(cfg: &mut ServiceConfig) {
    // The router tries routes in this order: the hot paths (issuance, authorize) come first.
    tokens::configure(cfg);
    health::configure(cfg);
    accounts::configure(cfg);
    evidence::configure(cfg);
    verifications::configure(cfg);
    billing::configure(cfg);
    exceptions::configure(cfg);
    admin::configure(cfg);
    me::configure(cfg);
    overview::configure(cfg);
    webhooks::configure(cfg);
    status_lists::configure(cfg);
    exchange::configure(cfg);
    exchange_jitsi::configure(cfg);
}

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match &err {
            QueryPayloadError::Deserialize(e) => {
                format!("invalid query string: {}", without_values(&e.to_string()))
            }
            _ => "invalid query string".to_owned(),
        };
        ApiError::bad_request(ErrorCode::InvalidQuery, detail).into()
    })
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        let detail = match &err {
            PathError::Deserialize(e) => {
                format!("invalid path: {}", without_values(&e.to_string()))
            }
            _ => "invalid path".to_owned(),
        };
        ApiError::not_found(ErrorCode::NotFound, detail).into()
    })
}

/// Turn actix's JSON errors into problems without echoing values from the body (they may be
/// codes or tokens).
pub fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::ContentType => ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "the request body must be sent as Content-Type: application/json",
        ),
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::Deserialize(e) => body_error(&e),
        JsonPayloadError::Serialize(e) => ApiError::internal(e),
        JsonPayloadError::Payload(e) => {
            let status = e.status_code();
            let mut problem = problem_for_status(status);
            if status.is_server_error() {
                problem = ApiError::bad_request(
                    ErrorCode::BadRequest,
                    "the request body could not be read",
                );
            }
            problem
        }
        _ => ApiError::bad_request(ErrorCode::InvalidBody, "the request body could not be read"),
    }
}

pub fn body_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            ErrorCode::MalformedJson,
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        ),
        Category::Data => {
            let msg = e.to_string();
            // serde_json appends the position; drop it before judging the message.
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!(
                    "{} (line {}, column {})",
                    without_values(msg),
                    e.line(),
                    e.column()
                ),
            )
        }
    }
}

/// A serde error message with any submitted value left out. serde quotes values in type and
/// value errors (`invalid type: string "..."`) and in enum errors (`unknown variant `...``), and
/// a value may be a secret; field names and what was expected come from our own types and stay.
/// What was expected is cut at the *last* ", expected ", so a value containing that text
/// cannot smuggle itself out.
pub fn without_values(msg: &str) -> String {
    let expected = || {
        msg.rsplit_once(", expected ")
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_else(|| "another value".to_owned())
    };
    if msg.starts_with("unknown variant") {
        format!(
            "a field has a value that is not allowed, expected {}",
            expected()
        )
    } else if msg.starts_with("invalid type")
        || msg.starts_with("invalid value")
        || msg.starts_with("invalid length")
    {
        format!(
            "a field has the wrong type or value, expected {}",
            expected()
        )
    } else if msg.starts_with("missing field")
        || msg.starts_with("duplicate field")
        || msg.starts_with("unknown field")
    {
        // Field names: ours, or (unknown ones) a name the caller chose, shown so it can fix it;
        // bounded so a field name cannot carry a long payload.
        msg.chars().take(200).collect()
    } else {
        "a field has a value that could not be read".to_owned()
    }
}

/// Deserialize a field that may be absent (`None`), null (`Some(None)`) or set.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}

/// An optional whole number that JSON may also spell as a float with no fraction (`600.0`):
/// JSON Schema's `integer` admits both, and so do clients that keep every number as a double.
pub fn whole_number<'de, D>(d: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    match <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? {
        None => Ok(None),
        Some(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => Ok(Some(u)),
            (None, Some(f)) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => {
                Ok(Some(f as u64))
            }
            _ => Err(D::Error::custom("expected a whole number of at least 0")),
        },
    }
}

/// Known routes and their methods, from the spec: an unmatched request to a known path is a
/// 405 with `Allow`, anything else a 404.
pub struct RouteTable(Vec<(ResourceDef, Vec<Method>)>);

impl RouteTable {
    pub fn from_spec(spec: &OpenApi) -> Self {
        let routes = spec
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (item.get.is_some(), Method::GET),
                    (item.post.is_some(), Method::POST),
                    (item.put.is_some(), Method::PUT),
                    (item.patch.is_some(), Method::PATCH),
                    (item.delete.is_some(), Method::DELETE),
                ]
                .into_iter()
                .filter_map(|(present, m)| present.then_some(m))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        RouteTable(routes)
    }
}

pub async fn fallback(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    let path = req.path();
    if let Some((_, methods)) = table.0.iter().find(|(def, _)| def.is_match(path)) {
        let allow = methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut res = ApiError::new(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::MethodNotAllowed,
            // A made-up method is not echoed (it may be kilobytes of anything).
            format!(
                "{} is not allowed here; allowed: {allow}",
                crate::telemetry::method_label(req.method())
            ),
        )
        .error_response();
        if let Ok(v) = header::HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        return res;
    }
    ApiError::not_found(ErrorCode::NotFound, "no such route").error_response()
}

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn serde_messages_lose_the_submitted_values() {
        for (msg, kept) in [
            (
                "unknown variant `s3cr3t`, expected one of `email`, `sms`",
                "expected one of `email`, `sms`",
            ),
            (
                "unknown variant `s3cr3t, expected x`, expected `a` or `b`",
                "expected `a` or `b`",
            ),
            (
                "invalid type: string \"s3cr3t\", expected u32",
                "expected u32",
            ),
            (
                "invalid value: integer `-1`, expected a positive number",
                "expected a positive",
            ),
            ("missing field `reason`", "missing field `reason`"),
            ("some other s3cr3t message", "could not be read"),
        ] {
            let out = without_values(msg);
            assert!(!out.contains("s3cr3t"), "{out}");
            assert!(out.contains(kept), "{out}");
        }
    }
}
