//! Keyset paging shared by every list: limits, cursors by slug, and the
//! `Link: rel="next"` header.

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::cursor;
#[cfg(doc)]
use super::feeds::FeedLinks;
use crate::error::{ApiError, AppResult, FieldError, Location};
use crate::state::AppState;

/// Reads a `limit` parameter; one that is not a whole number reads as 0,
/// which [`page_limit`] refuses with the range it takes (rather than the
/// parser's "invalid digit found in string").
pub fn limit<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.map(|text| text.trim().parse().unwrap_or(0)))
}

/// The values of two checks of a request's parameters, or every parameter
/// either refused, in one answer (another error, as either gave it).
pub fn both<A, B>(first: AppResult<A>, second: AppResult<B>) -> AppResult<(A, B)> {
    match (first, second) {
        (Ok(first), Ok(second)) => Ok((first, second)),
        (Err(ApiError::InvalidParameters(mut named)), Err(ApiError::InvalidParameters(more))) => {
            named.extend(more);
            Err(ApiError::InvalidParameters(named))
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    }
}

/// Reads a parameter that names something (a slug, an id): given empty
/// (`category=`, as a form's unset field sends it), it is refused, not
/// taken for a name nothing has.
pub fn filled<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) if text.is_empty() => Err(serde::de::Error::custom("must not be empty")),
        text => Ok(text),
    }
}

/// The problem of a query parameter naming a `name` (a category, a tag,
/// an author) that no such thing has: not a list with nothing in it.
pub fn nothing_named(name: &str, slug: &str) -> FieldError {
    FieldError::new(
        Location::Query,
        name,
        format!("no {name} has the slug `{slug}`"),
    )
}

/// Checks a `limit` against its bounds.
pub fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match limit.unwrap_or(default) {
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::InvalidParameters(vec![FieldError::new(
            Location::Query,
            "limit",
            format!("must be between 1 and {max}"),
        )])),
    }
}

/// The URL of the next page: this request's, with `cursor` replaced (from
/// the root, as clients reach it: see [`FeedLinks::public_path`]).
pub fn next_page_url(req: &HttpRequest, next_cursor: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if key != "cursor" {
            query.append_pair(&key, &value);
        }
    }
    query.append_pair("cursor", next_cursor);
    let path = format!("{}?{}", req.path(), query.finish());
    match req.app_data::<Data<AppState>>() {
        Some(state) => state.feed_links.public_path(&path),
        None => path,
    }
}

/// A list response with `meta.next_cursor` and, when there is a next page,
/// an RFC 8288 `Link: <...>; rel="next"` header.
pub fn page_response<T: Serialize>(
    req: &HttpRequest,
    body: &T,
    next_cursor: Option<&str>,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(next) = next_cursor {
        response.insert_header((
            header::LINK,
            format!("<{}>; rel=\"next\"", next_page_url(req, next)),
        ));
    }
    super::json(response, body)
}

/// Paging for lists ordered by slug.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlugPageQuery {
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 100)]
    #[serde(default, deserialize_with = "crate::api::paging::limit")]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Where a slug-ordered page ends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlugPosition {
    /// Which list the cursor belongs to.
    l: String,
    /// The last slug of the previous page.
    s: String,
}

impl SlugPageQuery {
    /// The validated limit and the slug to continue after, for the list
    /// named `list` (a cursor of another list is refused).
    pub fn resolve(&self, list: &str) -> AppResult<(u32, Option<String>)> {
        let limit = page_limit(self.limit, 100, 100)?;
        let after = match self.cursor.as_deref() {
            None => None,
            Some(text) => match cursor::decode::<SlugPosition>(text)? {
                position if position.l == list => Some(position.s),
                _ => return Err(cursor::invalid()),
            },
        };
        Ok((limit, after))
    }
}

/// Cuts a page fetched with one extra row; returns the cursor of the next page.
pub fn slug_page<T>(
    rows: &mut Vec<T>,
    limit: u32,
    list: &str,
    slug: impl Fn(&T) -> &str,
) -> Option<String> {
    if rows.len() <= limit as usize {
        return None;
    }
    rows.truncate(limit as usize);
    rows.last().map(|last| {
        cursor::encode(&SlugPosition {
            l: list.to_string(),
            s: slug(last).to_string(),
        })
    })
}
