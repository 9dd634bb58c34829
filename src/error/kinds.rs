//! Every kind of problem the API answers with: what its `type` names, and
//! the page that `type` leads to (`/problems/{code}`, RFC 9457 §3.1.1).

use actix_web::http::StatusCode;

/// A kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemKind {
    /// The last segment of its `type`: `/problems/{code}`.
    pub code: &'static str,
    /// Its `title`, the same for every problem of the kind.
    pub title: &'static str,
    /// The status it is sent with.
    pub status: StatusCode,
    /// What it means and what to do about it, for the page.
    pub about: &'static str,
}

/// Every kind, the first of each status the one a bare status of it gets
/// (see [`super::problem_for_status`]).
pub const KINDS: &[ProblemKind] = &[
    ProblemKind {
        code: "malformed-request",
        title: "Malformed request",
        status: StatusCode::BAD_REQUEST,
        about: "The request could not be read at all: a body that is not JSON, a line of \
                NDJSON that is not, a header that cannot be parsed. `detail` says what and \
                where. Fix the request; sending it again as it is fails again.",
    },
    ProblemKind {
        code: "invalid-parameters",
        title: "Invalid parameters",
        status: StatusCode::BAD_REQUEST,
        about: "One or more query or path parameters are invalid or unknown. `errors` \
                names each, with its location (`query`, `path`, `header`) and what is \
                wrong with it.",
    },
    ProblemKind {
        code: "unauthorized",
        title: "Unauthorized",
        status: StatusCode::UNAUTHORIZED,
        about: "The route needs a key (`Authorization: Bearer KEY`), and none was sent, \
                or the key sent is not valid or has been revoked.",
    },
    ProblemKind {
        code: "forbidden",
        title: "Forbidden",
        status: StatusCode::FORBIDDEN,
        about: "The key is valid but lacks the scope this needs (`write` or \
                `read-drafts`); `detail` names it.",
    },
    ProblemKind {
        code: "not-found",
        title: "Not found",
        status: StatusCode::NOT_FOUND,
        about: "Nothing is at this address: no such route, or no resource the request may \
                see has this id or slug (a draft or a scheduled article is not found \
                without a `read-drafts` key).",
    },
    ProblemKind {
        code: "method-not-allowed",
        title: "Method not allowed",
        status: StatusCode::METHOD_NOT_ALLOWED,
        about: "The address exists, but not with this method. `Allow` lists the methods \
                it takes.",
    },
    ProblemKind {
        code: "not-acceptable",
        title: "Not acceptable",
        status: StatusCode::NOT_ACCEPTABLE,
        about: "`Accept-Encoding` refuses every encoding the server can send (`identity` \
                included). Allow one of those `detail` names.",
    },
    ProblemKind {
        code: "request-timeout",
        title: "Request timeout",
        status: StatusCode::REQUEST_TIMEOUT,
        about: "The request's body did not arrive in time. Nothing was written; send it \
                again.",
    },
    ProblemKind {
        code: "conflict",
        title: "Conflict",
        status: StatusCode::CONFLICT,
        about: "The write would break a rule of the store: a slug another resource has \
                (`errors` names the field), or a category, author or tag still in use. \
                Nothing was written.",
    },
    ProblemKind {
        code: "precondition-failed",
        title: "Precondition failed",
        status: StatusCode::PRECONDITION_FAILED,
        about: "`If-Match` or `If-Unmodified-Since` does not hold: the resource changed \
                since it was read. Nothing was written; read it again, and apply the \
                change to what it is now.",
    },
    ProblemKind {
        code: "payload-too-large",
        title: "Payload too large",
        status: StatusCode::PAYLOAD_TOO_LARGE,
        about: "The body is over the route's limit, which `detail` gives. Nothing was \
                written; a bulk import can be sent in parts.",
    },
    ProblemKind {
        code: "uri-too-long",
        title: "URI too long",
        status: StatusCode::URI_TOO_LONG,
        about: "The path and query are over the limit `detail` gives.",
    },
    ProblemKind {
        code: "unsupported-media-type",
        title: "Unsupported media type",
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        about: "The body's `Content-Type` is not one the route reads, or its \
                `Content-Encoding` cannot be decoded; `detail` says what to send.",
    },
    ProblemKind {
        code: "validation-failed",
        title: "Validation failed",
        status: StatusCode::UNPROCESSABLE_ENTITY,
        about: "The body was read, but fields in it are invalid. `errors` names each \
                field (`tags[2]`, say) and what is wrong with it, all of them at once. \
                Nothing was written.",
    },
    ProblemKind {
        code: "rate-limited",
        title: "Too many requests",
        status: StatusCode::TOO_MANY_REQUESTS,
        about: "This client sent more engagement writes (views, reactions) than its \
                limit allows. Retry after the seconds `Retry-After` gives.",
    },
    ProblemKind {
        code: "headers-too-large",
        title: "Request header fields too large",
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        about: "Too many headers, or too many bytes of them; `detail` gives the limits.",
    },
    ProblemKind {
        code: "internal",
        title: "Internal server error",
        status: StatusCode::INTERNAL_SERVER_ERROR,
        about: "Something went wrong on the server's side. It has been logged, with the \
                request's `X-Request-Id`; quote that when reporting it.",
    },
    ProblemKind {
        code: "unavailable",
        title: "Service unavailable",
        status: StatusCode::SERVICE_UNAVAILABLE,
        about: "The server cannot take the request now: the store is busy, or the server \
                is shutting down. Retry after the seconds `Retry-After` gives.",
    },
    ProblemKind {
        code: "storage-full",
        title: "Storage full",
        status: StatusCode::SERVICE_UNAVAILABLE,
        about: "The disk the store is on is full; nothing was written. Retry after the \
                seconds `Retry-After` gives, once an operator has made room.",
    },
];

/// The kind whose code is `code`.
pub fn kind(code: &str) -> Option<&'static ProblemKind> {
    KINDS.iter().find(|kind| kind.code == code)
}

/// The kind a bare `status` gets, if one has it.
pub fn of_status(status: StatusCode) -> Option<&'static ProblemKind> {
    KINDS.iter().find(|kind| kind.status == status)
}
