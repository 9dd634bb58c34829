//! Tags: public reads and admin writes.

use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{JsonBody, Query};
use super::input::{created, derive_slug, done, present, slug_and_name};
use super::keys::{Admin, tags_shown};
use super::paging::{SlugPageQuery, page_response, slug_page};
use super::{ListMeta, Meta};
use crate::db::taxonomy::{self, TagRow};
use crate::error::{ApiError, AppResult, Problem};
use crate::state::AppState;

/// A tag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tag {
    /// Stable identifier, usable in URLs.
    #[schema(example = "port-strike")]
    pub slug: String,
    /// Display name.
    #[schema(example = "Port strike")]
    pub name: String,
}

impl From<TagRow> for Tag {
    fn from(row: TagRow) -> Self {
        Self {
            slug: row.slug,
            name: row.name,
        }
    }
}

/// One tag.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagResponse {
    /// The resource.
    pub data: Tag,
    /// About the response.
    pub meta: Meta,
}

/// A page of tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagListResponse {
    /// The items of this page, in order.
    pub data: Vec<Tag>,
    /// About the response.
    pub meta: ListMeta,
}

/// A new tag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    /// URL slug; derived from the name when absent (`C++` makes
    /// `c-plus-plus`, `C#` `c-sharp`).
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub slug: Option<String>,
    /// Display name, 1 to 100 characters.
    #[schema(schema_with = super::input::name_schema)]
    pub name: String,
}

/// Changes to a tag; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagPatch {
    /// New slug.
    #[schema(value_type = String, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    #[serde(default, deserialize_with = "present")]
    pub slug: Option<String>,
    /// New display name.
    #[schema(schema_with = super::input::optional_name_schema)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
}

fn tag_not_found(slug: &str) -> ApiError {
    ApiError::NotFound(format!(
        "No tag has the slug `{}`.",
        crate::error::echo(slug)
    ))
}

/// `response`, marked as depending on the request's key: a cache must not
/// answer an editor with the tags it kept for readers.
fn by_key(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().append(
        header::VARY,
        header::HeaderValue::from_static("Authorization"),
    );
    response
}

/// List tags in slug order.
///
/// Only tags that at least one published article carries: the tag of a
/// draft or an embargoed story stays hidden with it. With an admin key that
/// has the `read-drafts` scope, every tag.
#[utoipa::path(
    tag = "taxonomy",
    params(SlugPageQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of tags", body = TagListResponse,
            headers(("Link" = String, description = "RFC 8288 link to the next page, when there is one"))),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "An `Authorization` header with a key that is not valid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/tags")]
pub async fn list_tags(
    state: Data<AppState>,
    req: HttpRequest,
    query: Query<SlugPageQuery>,
) -> AppResult<HttpResponse> {
    let (limit, after) = query.0.resolve("tags")?;
    let shown = tags_shown(&req).await?;
    let mut rows = state
        .db
        .read(move |conn| taxonomy::list_tags(conn, shown, after.as_deref(), i64::from(limit) + 1))
        .await?;
    let next_cursor = slug_page(&mut rows, limit, "tags", |row| &row.slug);
    let body = TagListResponse {
        data: rows.into_iter().map(Tag::from).collect(),
        meta: ListMeta {
            next_cursor: next_cursor.clone(),
            limit,
            total: None,
        },
    };
    Ok(by_key(page_response(&req, &body, next_cursor.as_deref())))
}

/// One tag, if a published article carries it (any tag, with an admin key
/// that has the `read-drafts` scope).
#[utoipa::path(
    tag = "taxonomy",
    params(("slug" = String, Path, description = "Tag slug", example = "arctic-warming")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The tag", body = TagResponse),
        (status = 401, description = "An `Authorization` header with a key that is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tag", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/tags/{slug}")]
pub async fn get_tag(
    state: Data<AppState>,
    req: HttpRequest,
    slug: Path<String>,
) -> AppResult<HttpResponse> {
    let lookup = slug.clone();
    let shown = tags_shown(&req).await?;
    let row = state
        .db
        .read(move |conn| taxonomy::find_shown_tag(conn, shown, &lookup))
        .await?;
    let data = row.map(Tag::from).ok_or_else(|| tag_not_found(&slug))?;
    Ok(by_key(HttpResponse::Ok().json(TagResponse {
        data,
        meta: Meta::default(),
    })))
}

/// Create a tag.
#[utoipa::path(
    tag = "taxonomy",
    request_body = TagInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = TagResponse, headers(("Location" = String))),
    )
)]
#[post("/tags")]
pub async fn create_tag(
    state: Data<AppState>,
    _admin: Admin,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input: TagInput = body.parse()?;
    let mut errors = Vec::new();
    let (slug, name) = slug_and_name(input.slug, Some(input.name), &mut errors);
    let slug = derive_slug(slug, name.as_deref(), &mut errors);
    done(errors)?;
    let name = name.unwrap_or_default();
    let row = AppState::write_content(&state, move |conn| taxonomy::insert_tag(conn, &slug, &name))
        .await?;
    let location = format!("/api/v1/tags/{}", row.slug);
    Ok(created(
        &state,
        &location,
        TagResponse {
            data: row.into(),
            meta: Meta::default(),
        },
    ))
}

/// Rename a tag or change its slug.
#[utoipa::path(
    tag = "taxonomy",
    request_body = TagPatch,
    params(("slug" = String, Path, description = "Tag slug", example = "arctic-warming")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = TagResponse),
        (status = 404, description = "No such tag", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/tags/{slug}")]
pub async fn update_tag(
    state: Data<AppState>,
    _admin: Admin,
    slug: Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input: TagPatch = body.parse()?;
    let mut errors = Vec::new();
    let (new_slug, name) = slug_and_name(input.slug, input.name, &mut errors);
    done(errors)?;
    let lookup = slug.clone();
    let row = AppState::write_content(&state, move |conn| {
        taxonomy::update_tag(conn, &lookup, new_slug.as_deref(), name.as_deref())
    })
    .await
    .map_err(|error| ApiError::from(error).not_found_as(|| tag_not_found(&slug)))?;
    Ok(HttpResponse::Ok().json(TagResponse {
        data: row.into(),
        meta: Meta::default(),
    }))
}

/// Delete a tag: it comes off every article that carries it.
#[utoipa::path(
    tag = "taxonomy",
    params(("slug" = String, Path, description = "Tag slug", example = "arctic-warming")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted, and taken off its articles"),
        (status = 404, description = "No such tag", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/tags/{slug}")]
pub async fn delete_tag(
    state: Data<AppState>,
    _admin: Admin,
    slug: Path<String>,
) -> AppResult<HttpResponse> {
    let lookup = slug.clone();
    AppState::write_content(&state, move |conn| {
        taxonomy::delete_tag(conn, &lookup, crate::db::now())
    })
    .await
    .map_err(|error| ApiError::from(error).not_found_as(|| tag_not_found(&slug)))?;
    Ok(HttpResponse::NoContent().finish())
}
