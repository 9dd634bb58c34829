//! The pages a problem's `type` leads to: what each kind of problem means
//! and what to do about it (RFC 9457 §3.1.1), for a developer who follows
//! the link in an error.

use actix_web::http::header::ContentType;
use actix_web::web::Path;
use actix_web::{HttpResponse, get};

use crate::error::{ApiError, AppResult, KINDS, Problem, ProblemKind, kind};

// The pages link to each other by relative paths: behind a proxy that
// serves this server under a path, they stay under it.

/// Every kind of problem the API answers with.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "A page listing every kind of problem", body = String, content_type = "text/html"))
)]
#[get("/problems")]
pub async fn problems() -> HttpResponse {
    let items: String = KINDS
        .iter()
        .map(|kind| {
            format!(
                "<li><a href=\"problems/{code}\"><code>/problems/{code}</code></a>: {status} {title}</li>\n",
                code = kind.code,
                status = kind.status.as_u16(),
                title = kind.title,
            )
        })
        .collect();
    page("Problems", &format!("<ul>\n{items}</ul>"))
}

/// What one kind of problem means: the page its `type` names.
#[utoipa::path(
    tag = "operations",
    params(("code" = String, Path, description = "The last segment of a problem's `type`", example = "not-found")),
    responses(
        (status = 200, description = "A page describing the kind of problem", body = String, content_type = "text/html"),
        (status = 404, description = "No kind of problem has this code", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/problems/{code}")]
pub async fn problem(code: Path<String>) -> AppResult<HttpResponse> {
    let kind = kind(&code).ok_or_else(|| {
        ApiError::NotFound(format!(
            "No kind of problem is called `{}`; /problems lists them.",
            crate::error::echo(&code)
        ))
    })?;
    Ok(page(kind.title, &described(kind)))
}

/// A kind's page body: its status and what it means.
fn described(kind: &ProblemKind) -> String {
    format!(
        "<p><code>type: /problems/{code}</code>, sent with status {status}.</p>\n<p>{about}</p>\n\
         <p>The body of such a response is <code>application/problem+json</code>: \
         <code>title</code> is always \"{title}\", <code>detail</code> says what went \
         wrong this time, and <code>errors</code> names each bad field or parameter. \
         <a href=\"../problems\">Every kind</a>.</p>",
        code = kind.code,
        status = kind.status.as_u16(),
        about = code_spans(kind.about),
        title = kind.title,
    )
}

/// `text` with its `code` spans marked up. The texts are the server's own,
/// with no `<` or `&` in them.
fn code_spans(text: &str) -> String {
    debug_assert!(!text.contains(['<', '&']));
    text.split('`')
        .enumerate()
        .map(|(at, part)| {
            if at % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// An HTML page headed `title`: the server's own text, nothing a request
/// gave.
fn page(title: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::html()).body(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{title} · Frontpage</title></head>\n\
         <body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_are_marked_up() {
        assert_eq!(
            code_spans("Send `a` or `b`."),
            "Send <code>a</code> or <code>b</code>."
        );
    }
}
