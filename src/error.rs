//! One error type for the HTTP layer, rendered as RFC 9457
//! `application/problem+json`. Internal causes are logged, never sent.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::StoreError;

mod kinds;
pub use kinds::{KINDS, ProblemKind, kind};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Results of handlers.
pub type AppResult<T> = Result<T, ApiError>;

/// An RFC 9457 problem: the body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/invalid-parameters",
    "title": "Invalid parameters",
    "status": 400,
    "detail": "1 parameter is invalid.",
    "errors": [{"location": "query", "name": "limit", "detail": "must be between 1 and 100"}]
}))]
pub struct Problem {
    /// Identifies the kind of problem; stable, machine-readable.
    #[serde(rename = "type")]
    #[schema(example = "/problems/not-found")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    #[schema(example = "Not found")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 404)]
    pub status: u16,
    /// What went wrong this time, for a human.
    #[schema(example = "No article has the id or slug `no-such-article`.")]
    pub detail: String,
    /// Each bad field or parameter; empty when the problem is not about input.
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// Its `type` under `prefix`, the path a proxy serves this server at
    /// (`/news-api/problems/not-found`): resolved against the address a
    /// client used, `/problems/not-found` would name the proxy's root.
    pub fn placed_under(mut self, prefix: &str) -> Self {
        if self.problem_type.starts_with('/') {
            self.problem_type.insert_str(0, prefix);
        }
        self
    }
}

/// Where a bad value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    /// A query-string parameter.
    Query,
    /// A path segment.
    Path,
    /// A field of the JSON (or NDJSON) body.
    Body,
    /// A request header.
    Header,
}

/// One bad field or parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the value was.
    pub location: Location,
    /// The parameter or field, e.g. `limit` or `tags[2]`.
    pub name: String,
    /// What is wrong with it.
    pub detail: String,
}

impl FieldError {
    /// A problem with one named value.
    pub fn new(location: Location, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            location,
            name: name.into(),
            detail: detail.into(),
        }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read at all (malformed JSON, say).
    #[error("{0}")]
    Malformed(String),
    /// Query or path parameters are invalid.
    #[error("invalid parameters")]
    InvalidParameters(Vec<FieldError>),
    /// The body was read but its fields are invalid.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// A valid key without the scope this needs.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Nothing is at this address.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    /// The write would break a rule (a category still in use).
    #[error("{0}")]
    Conflict(String),
    /// The body's slug is another's.
    #[error("{0}")]
    SlugTaken(String),
    /// `If-Match` or `If-Unmodified-Since` does not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is over the limit for this route.
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// The body did not arrive within this many seconds.
    #[error("request timeout")]
    BodyTimeout(u64),
    /// The request target (path and query) is over this many bytes.
    #[error("URI too long")]
    UriTooLong(usize),
    /// The headers are over this many bytes, or this many headers.
    #[error("request header fields too large")]
    HeadersTooLarge { bytes: usize, count: usize },
    /// The body is not in a media type this route reads.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// The body is in a `Content-Encoding` the server cannot decode.
    #[error("unsupported content encoding")]
    UnsupportedEncoding(String),
    /// This client sent too many engagement writes; retry after the seconds given.
    #[error("rate limited")]
    TooManyRequests(u64),
    /// The server cannot take the request now; retry shortly.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The disk the store is on is full: nothing was written.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The server is shutting down and takes no new requests.
    #[error("shutting down")]
    ShuttingDown,
    /// A bug or an outage; logged, never described to the client.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 404 for an article addressed by id or slug.
    pub fn article_not_found(id_or_slug: &str) -> Self {
        Self::NotFound(format!(
            "No article has the id or slug `{}`.",
            echo(id_or_slug)
        ))
    }

    /// Replaces a store's generic 404 with one that names what was looked up.
    pub fn not_found_as(self, named: impl FnOnce() -> Self) -> Self {
        match self {
            Self::NotFound(_) => named(),
            other => other,
        }
    }

    fn problem(&self) -> Problem {
        let status = self.status_code();
        let (code, detail, errors) = match self {
            Self::Malformed(detail) => ("malformed-request", detail.clone(), vec![]),
            Self::InvalidParameters(errors) => (
                "invalid-parameters",
                count_detail(errors.len(), "parameter is", "parameters are"),
                errors.clone(),
            ),
            Self::Validation(errors) => (
                "validation-failed",
                count_detail(errors.len(), "field is", "fields are"),
                errors.clone(),
            ),
            Self::Unauthorized(why) => ("unauthorized", (*why).to_string(), vec![]),
            Self::Forbidden(detail) => ("forbidden", detail.clone(), vec![]),
            Self::NotFound(detail) => ("not-found", detail.clone(), vec![]),
            Self::MethodNotAllowed(allow) => (
                "method-not-allowed",
                format!("This resource allows {}.", allow.join(", ")),
                vec![],
            ),
            Self::Conflict(detail) => ("conflict", detail.clone(), vec![]),
            Self::SlugTaken(detail) => (
                "conflict",
                detail.clone(),
                vec![FieldError::new(Location::Body, "slug", detail.clone())],
            ),
            Self::PreconditionFailed(detail) => ("precondition-failed", detail.clone(), vec![]),
            Self::PayloadTooLarge(limit) => (
                "payload-too-large",
                format!("The body is over this route's limit of {limit} bytes."),
                vec![],
            ),
            Self::BodyTimeout(seconds) => (
                "request-timeout",
                format!("The body did not arrive within {seconds} s."),
                vec![],
            ),
            Self::UriTooLong(limit) => (
                "uri-too-long",
                format!("The path and query are over {limit} bytes."),
                vec![],
            ),
            Self::HeadersTooLarge { bytes, count } => (
                "headers-too-large",
                format!("Send at most {count} headers and {bytes} bytes of them."),
                vec![],
            ),
            Self::UnsupportedMediaType(expected) => (
                "unsupported-media-type",
                if *expected == "application/json" {
                    "Send the body as `application/json` (or another `+json` type, such as \
                     `application/merge-patch+json`)."
                        .to_string()
                } else {
                    format!("Send the body as `{expected}`.")
                },
                vec![],
            ),
            Self::UnsupportedEncoding(encoding) => (
                "unsupported-media-type",
                format!(
                    "The body's `Content-Encoding: {encoding}` cannot be decoded; send it as \
                     it is, or with one of {DECODED_ENCODINGS}."
                ),
                vec![],
            ),
            Self::TooManyRequests(seconds) => (
                "rate-limited",
                format!(
                    "This client is over its limit of engagement writes; retry in {seconds} s."
                ),
                vec![],
            ),
            Self::Unavailable(_) => (
                "unavailable",
                "The server is busy; retry shortly.".to_string(),
                vec![],
            ),
            Self::ShuttingDown => (
                "unavailable",
                "The server is shutting down; retry shortly.".to_string(),
                vec![],
            ),
            Self::StorageFull(_) => (
                "storage-full",
                "The server's disk is full: nothing was stored. Retry later.".to_string(),
                vec![],
            ),
            Self::Internal(_) => (
                "internal",
                "Something went wrong on our side; it has been logged.".to_string(),
                vec![],
            ),
        };
        let kind = kind(code).expect("every problem's kind is in KINDS");
        debug_assert_eq!(kind.status, status);
        Problem {
            problem_type: format!("/problems/{code}"),
            title: kind.title.to_string(),
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

/// Client input quoted back in a message, cut short if it is long.
pub fn echo(input: &str) -> String {
    const MAX: usize = 100;
    match input.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &input[..end]),
        None => input.to_string(),
    }
}

fn count_detail(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one} invalid.")
    } else {
        format!("{count} {many} invalid.")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Malformed(_) | Self::InvalidParameters(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) | Self::SlugTaken(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Self::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::ShuttingDown | Self::StorageFull(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = problem_response(&self.problem());
        // Logged by the request log, with the request's id (see
        // `observe::request_log`).
        if let Some(cause) = self.cause() {
            response.extensions_mut().insert(cause);
        }
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::MethodNotAllowed(allow) => {
                if let Ok(value) = HeaderValue::from_str(&allow.join(", ")) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Self::UnsupportedEncoding(_) => {
                // RFC 9110, 15.5.16: what the server can decode.
                headers.insert(
                    header::ACCEPT_ENCODING,
                    HeaderValue::from_static(DECODED_ENCODINGS),
                );
            }
            Self::TooManyRequests(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*seconds));
            }
            Self::Unavailable(_) | Self::ShuttingDown => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::StorageFull(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            _ => {}
        }
        response
    }
}

/// The `Content-Encoding`s of a request body that the server decodes.
pub const DECODED_ENCODINGS: &str = "gzip, deflate";

/// Renders a problem as a response with the problem media type, the
/// problem kept with it, to render again under a proxy's path (see
/// `app::security_headers`).
pub fn problem_response(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status)
        .content_type(PROBLEM_JSON)
        .json(problem);
    response.extensions_mut().insert(problem.clone());
    response
}

/// A generic problem for a bare status (what actix itself produced): of
/// the status's first kind, else `about:blank` (RFC 9457 §4.2.1: nothing
/// beyond what the status says).
pub fn problem_for_status(status: StatusCode) -> Problem {
    let (problem_type, title) = match kinds::of_status(status) {
        Some(kind) => (format!("/problems/{}", kind.code), kind.title.to_string()),
        None => {
            // Sentence case, like every other problem title ("Not found").
            let reason = status.canonical_reason().unwrap_or("Error");
            let title = reason[..1].to_string() + &reason[1..].to_lowercase();
            ("about:blank".to_string(), title)
        }
    };
    Problem {
        problem_type,
        detail: format!("{title}."),
        title,
        status: status.as_u16(),
        errors: vec![],
    }
}

/// Why a request failed on the server's side, for the log: never sent.
#[derive(Debug, Clone)]
pub struct Cause {
    /// Whether the operator must act (a fault, a full disk) rather than
    /// wait (a busy store).
    pub fault: bool,
    /// What kind of failure, as the log line's message.
    pub what: &'static str,
    /// What failed this time (a store's error, a task's panic).
    pub detail: String,
}

impl ApiError {
    /// What the log should say of this error, if it is the server's.
    pub fn cause(&self) -> Option<Cause> {
        let (fault, what, detail) = match self {
            Self::Internal(detail) => (true, "internal error", detail),
            Self::StorageFull(detail) => (true, "storage full", detail),
            Self::Unavailable(detail) => (false, "unavailable", detail),
            _ => return None,
        };
        Some(Cause {
            fault,
            what,
            detail: detail.clone(),
        })
    }
}

/// SQLite's word for a full disk (`SQLITE_FULL`).
const DISK_FULL: &str = "database or disk is full";

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound("Nothing is at this address.".into()),
            StoreError::Conflict(detail) => Self::Conflict(detail),
            StoreError::SlugTaken(detail) => Self::SlugTaken(detail),
            StoreError::Changed => Self::PreconditionFailed(
                "The article changed while this request was checked: read it again and \
                 resend with its new ETag."
                    .into(),
            ),
            StoreError::Invalid(fields) => Self::Validation(
                fields
                    .into_iter()
                    .map(|f| FieldError::new(Location::Body, f.field, f.message))
                    .collect(),
            ),
            StoreError::Busy(cause) => Self::Unavailable(cause),
            StoreError::Internal(cause) if cause.contains(DISK_FULL) => Self::StorageFull(cause),
            StoreError::Internal(cause) => Self::Internal(cause),
            StoreError::Database(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains(DISK_FULL) =>
            {
                Self::StorageFull(info.message().to_string())
            }
            StoreError::Database(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("database is locked") =>
            {
                Self::Unavailable(info.message().to_string())
            }
            StoreError::Database(error) => Self::Internal(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;
    use actix_web::http::header;

    use super::ApiError;
    use crate::db::StoreError;

    /// Every problem's `type` names a kind with a page, whose title and
    /// status it has.
    #[test]
    fn every_problem_is_of_a_documented_kind() {
        use super::{ApiError as E, KINDS, kind, problem_for_status};
        let errors = [
            E::Malformed("x".into()),
            E::InvalidParameters(vec![]),
            E::Validation(vec![]),
            E::Unauthorized("x"),
            E::Forbidden("x".into()),
            E::NotFound("x".into()),
            E::MethodNotAllowed(vec!["GET".into()]),
            E::Conflict("x".into()),
            E::SlugTaken("x".into()),
            E::PreconditionFailed("x".into()),
            E::PayloadTooLarge(1),
            E::BodyTimeout(1),
            E::UriTooLong(1),
            E::HeadersTooLarge { bytes: 1, count: 1 },
            E::UnsupportedMediaType("application/json"),
            E::UnsupportedEncoding("zstd".into()),
            E::TooManyRequests(1),
            E::Unavailable("x".into()),
            E::StorageFull("x".into()),
            E::ShuttingDown,
            E::Internal("x".into()),
        ];
        for error in &errors {
            let problem = error.problem();
            let code = problem.problem_type.strip_prefix("/problems/").unwrap();
            let kind = kind(code).unwrap_or_else(|| panic!("{code} has no page"));
            assert_eq!(
                (kind.title, kind.status),
                (problem.title.as_str(), error.status_code())
            );
        }
        // Every kind is one some error is of, or a bare status actix
        // answers with (406, when `Accept-Encoding` refuses every encoding).
        let mut sent: Vec<String> = errors
            .iter()
            .map(|error| error.problem().problem_type)
            .collect();
        sent.push(problem_for_status(actix_web::http::StatusCode::NOT_ACCEPTABLE).problem_type);
        for kind in KINDS {
            assert!(
                sent.contains(&format!("/problems/{}", kind.code)),
                "{} is never sent",
                kind.code
            );
            assert!(
                !kind.about.contains(['<', '&']),
                "{} is not plain text",
                kind.code
            );
        }
        // A bare status: its first kind, else nothing beyond the status.
        let bad = problem_for_status(actix_web::http::StatusCode::BAD_REQUEST);
        assert_eq!(bad.problem_type, "/problems/malformed-request");
        let teapot = problem_for_status(actix_web::http::StatusCode::IM_A_TEAPOT);
        assert_eq!(
            (teapot.problem_type.as_str(), teapot.title.as_str()),
            ("about:blank", "I'm a teapot")
        );
    }

    #[test]
    fn a_busy_store_is_a_503_problem_with_retry_after() {
        let response =
            ApiError::from(StoreError::Busy("the write queue is full".into())).error_response();
        assert_eq!(response.status().as_u16(), 503);
        let headers = response.headers();
        assert_eq!(headers.get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
    }

    /// A full disk is not the server's bug: 503, a minute to wait, and the
    /// cause kept for the log (which names the request), not sent.
    #[test]
    fn a_full_disk_is_a_503_with_its_cause_kept_for_the_log() {
        let failed = StoreError::Internal("commit failed: database or disk is full".into());
        let response = ApiError::from(failed).error_response();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "60");
        let cause = response
            .extensions()
            .get::<super::Cause>()
            .cloned()
            .unwrap();
        assert!(
            cause.fault && cause.detail.contains("disk is full"),
            "{cause:?}"
        );
        let internal = ApiError::Internal("a bug".into()).error_response();
        assert_eq!(internal.status().as_u16(), 500);
        assert!(internal.extensions().get::<super::Cause>().is_some());
        let missing = ApiError::NotFound("nothing".into()).error_response();
        assert!(missing.extensions().get::<super::Cause>().is_none());
    }
}
