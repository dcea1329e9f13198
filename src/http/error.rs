//! The one place where errors become HTTP answers (RFC 6749 §5.2 codes).

use super::{json, Body};
use crate::service;
use hyper::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Response, StatusCode};
use serde::Serialize;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] service::Error),
    /// Malformed input: bad form, bad Basic header, duplicated parameter, wrong media type.
    #[error("invalid request: {0}")]
    BadRequest(String),
    #[error("no such endpoint")]
    NotFound,
    #[error("method not allowed")]
    /// Holds the `Allow` header's value.
    MethodNotAllowed(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("the request body was not received in time")]
    Timeout,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    /// The request field at fault, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// Renders the error. `realm` names the tenant in `WWW-Authenticate`.
    pub fn into_response(self, realm: &str) -> Response<Body> {
        let (status, code, description) = self.status_and_code();
        if status.is_server_error() {
            // The detail (never a secret: errors carry no credentials) goes to the log
            // beside the request's line; the caller sees only the fixed message.
            tracing::error!(error = %self, "request failed");
        }
        let field = match &self {
            ApiError::Service(service::Error::Invalid { field, .. }) => Some(field.as_str()),
            ApiError::Service(_)
            | ApiError::BadRequest(_)
            | ApiError::NotFound
            | ApiError::MethodNotAllowed(_)
            | ApiError::PayloadTooLarge
            | ApiError::Timeout => None,
        };
        let mut response = json(
            status,
            &ErrorBody {
                error: code,
                error_description: &description,
                field,
            },
        );
        self.add_headers(response.headers_mut(), status, realm);
        response
    }

    /// The status and the words a page shows for this error (the console's pages); a
    /// server error is logged as `into_response` logs it.
    pub(super) fn for_people(self) -> (StatusCode, String) {
        let (status, _, description) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, description)
    }

    /// Every error's status, RFC 6749 code and description, in one exhaustive table.
    fn status_and_code(&self) -> (StatusCode, &'static str, String) {
        use service::Error as S;
        match self {
            ApiError::Service(e) => match e {
                S::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
                S::InvalidClient => (
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client authentication failed".into(),
                ),
                S::InvalidGrant(m) => (StatusCode::BAD_REQUEST, "invalid_grant", (*m).into()),
                S::UnauthorizedClient(m) => {
                    (StatusCode::BAD_REQUEST, "unauthorized_client", (*m).into())
                }
                S::UnsupportedGrantType => (
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "this grant type is not supported".into(),
                ),
                S::InvalidScope(m) => (StatusCode::BAD_REQUEST, "invalid_scope", m.clone()),
                S::Unauthenticated => (
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "authentication required".into(),
                ),
                S::Forbidden => (
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    "the caller lacks the required permission".into(),
                ),
                S::UnknownTenant => (
                    StatusCode::NOT_FOUND,
                    "tenant_not_found",
                    "unknown or inactive tenant".into(),
                ),
                S::Invalid { field, message } => (
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("{field}: {message}"),
                ),
                S::NotFound(what) => (
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no such {what}"),
                ),
                S::Unavailable => unavailable(),
                S::RateLimited(_) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; retry after the time in Retry-After".into(),
                ),
                S::Overloaded => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "too many password checks are waiting; retry shortly".into(),
                ),
                S::Duplicate(what) => (
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("a duplicate of {what}"),
                ),
                S::ManagedByFile(m) => (StatusCode::CONFLICT, "managed_by_file", m.clone()),
                S::Internal(_) | S::Hash(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "an internal error occurred".into(),
                ),
            },
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint".into(),
            ),
            ApiError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method".into(),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                "the request body is too large".into(),
            ),
            ApiError::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                "the request body was not received in time".into(),
            ),
        }
    }

    /// What the status asks the client to do next: authenticate, wait, or use another
    /// method.
    fn add_headers(&self, headers: &mut HeaderMap, status: StatusCode, realm: &str) {
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!("Basic realm=\"{realm}\"");
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(WWW_AUTHENTICATE, value);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let ApiError::Service(service::Error::RateLimited(wait)) = self {
            // Whole seconds, rounded up: a client that waits that long gets through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            if let Ok(value) = HeaderValue::from_str(allow) {
                headers.insert(ALLOW, value);
            }
        }
    }
}

fn unavailable() -> (StatusCode, &'static str, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the token store is unavailable; retry shortly".into(),
    )
}
