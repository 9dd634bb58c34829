//! Authors: public reads and admin writes.

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{JsonBody, Query};
use super::input::{check_bio, created, derive_slug, done, nullable, present, slug_and_name};
use super::keys::Admin;
use super::paging::{SlugPageQuery, page_response, slug_page};
use super::{ListMeta, Meta};
use crate::db::taxonomy::{self, AuthorRow, AuthorWrite};
use crate::error::{ApiError, AppResult, Problem};
use crate::state::AppState;

/// An author.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Author {
    /// Stable identifier, usable in URLs.
    #[schema(example = "mara-ellison")]
    pub slug: String,
    /// Display name.
    #[schema(example = "Mara Ellison")]
    pub name: String,
    /// A short biography.
    #[schema(required = true)]
    pub bio: Option<String>,
}

impl From<AuthorRow> for Author {
    fn from(row: AuthorRow) -> Self {
        Self {
            slug: row.slug,
            name: row.name,
            bio: row.bio,
        }
    }
}

/// One author.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorResponse {
    /// The resource.
    pub data: Author,
    /// About the response.
    pub meta: Meta,
}

/// A page of authors.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorListResponse {
    /// The items of this page, in order.
    pub data: Vec<Author>,
    /// About the response.
    pub meta: ListMeta,
}

/// A new author.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Mara Ellison", "bio": "Covers shipping and trade."}))]
pub struct AuthorInput {
    /// URL slug; derived from the name when absent (`C++` makes
    /// `c-plus-plus`, `C#` `c-sharp`).
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub slug: Option<String>,
    /// Display name, 1 to 100 characters.
    #[schema(schema_with = super::input::name_schema)]
    pub name: String,
    /// A short biography, up to 2000 characters.
    pub bio: Option<String>,
}

/// Changes to an author; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorPatch {
    /// New slug.
    #[schema(value_type = String, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    #[serde(default, deserialize_with = "present")]
    pub slug: Option<String>,
    /// New display name.
    #[schema(schema_with = super::input::optional_name_schema)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    /// New biography; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
}

fn author_not_found(slug: &str) -> ApiError {
    ApiError::NotFound(format!(
        "No author has the slug `{}`.",
        crate::error::echo(slug)
    ))
}

/// List authors in slug order.
#[utoipa::path(
    tag = "taxonomy",
    params(SlugPageQuery),
    responses(
        (status = 200, description = "A page of authors", body = AuthorListResponse,
            headers(("Link" = String, description = "RFC 8288 link to the next page, when there is one"))),
        (status = 400, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/authors")]
pub async fn list_authors(
    state: Data<AppState>,
    req: HttpRequest,
    query: Query<SlugPageQuery>,
) -> AppResult<HttpResponse> {
    let (limit, after) = query.0.resolve("authors")?;
    let mut rows = state
        .db
        .read(move |conn| taxonomy::list_authors(conn, after.as_deref(), i64::from(limit) + 1))
        .await?;
    let next_cursor = slug_page(&mut rows, limit, "authors", |row| &row.slug);
    let body = AuthorListResponse {
        data: rows.into_iter().map(Author::from).collect(),
        meta: ListMeta {
            next_cursor: next_cursor.clone(),
            limit,
            total: None,
        },
    };
    Ok(page_response(&req, &body, next_cursor.as_deref()))
}

/// One author.
#[utoipa::path(
    tag = "taxonomy",
    params(("slug" = String, Path, description = "Author slug", example = "mara-ellison")),
    responses(
        (status = 200, description = "The author", body = AuthorResponse),
        (status = 404, description = "No such author", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/authors/{slug}")]
pub async fn get_author(state: Data<AppState>, slug: Path<String>) -> AppResult<HttpResponse> {
    let lookup = slug.clone();
    let row = state
        .db
        .read(move |conn| taxonomy::find_author(conn, &lookup))
        .await?;
    let data = row
        .map(Author::from)
        .ok_or_else(|| author_not_found(&slug))?;
    Ok(HttpResponse::Ok().json(AuthorResponse {
        data,
        meta: Meta::default(),
    }))
}

/// Create an author.
#[utoipa::path(
    tag = "taxonomy",
    request_body = AuthorInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = AuthorResponse, headers(("Location" = String))),
    )
)]
#[post("/authors")]
pub async fn create_author(
    state: Data<AppState>,
    _admin: Admin,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input: AuthorInput = body.parse()?;
    let mut errors = Vec::new();
    let (slug, name) = slug_and_name(input.slug, Some(input.name), &mut errors);
    let bio = check_bio(input.bio, &mut errors);
    let slug = derive_slug(slug, name.as_deref(), &mut errors);
    done(errors)?;
    let write = AuthorWrite {
        slug: Some(slug),
        name,
        bio: Some(bio),
    };
    let row =
        AppState::write_content(&state, move |conn| taxonomy::insert_author(conn, &write)).await?;
    let location = format!("/api/v1/authors/{}", row.slug);
    Ok(created(
        &state,
        &location,
        AuthorResponse {
            data: row.into(),
            meta: Meta::default(),
        },
    ))
}

/// Change an author.
#[utoipa::path(
    tag = "taxonomy",
    request_body = AuthorPatch,
    params(("slug" = String, Path, description = "Author slug", example = "mara-ellison")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = AuthorResponse),
        (status = 404, description = "No such author", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/authors/{slug}")]
pub async fn update_author(
    state: Data<AppState>,
    _admin: Admin,
    slug: Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input: AuthorPatch = body.parse()?;
    let mut errors = Vec::new();
    let (new_slug, name) = slug_and_name(input.slug, input.name, &mut errors);
    let bio = input.bio.map(|bio| check_bio(bio, &mut errors));
    done(errors)?;
    let write = AuthorWrite {
        slug: new_slug,
        name,
        bio,
    };
    let lookup = slug.clone();
    let row = AppState::write_content(&state, move |conn| {
        taxonomy::update_author(conn, &lookup, &write)
    })
    .await
    .map_err(|error| ApiError::from(error).not_found_as(|| author_not_found(&slug)))?;
    Ok(HttpResponse::Ok().json(AuthorResponse {
        data: row.into(),
        meta: Meta::default(),
    }))
}

/// Delete an author that no article names.
#[utoipa::path(
    tag = "taxonomy",
    params(("slug" = String, Path, description = "Author slug", example = "mara-ellison")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such author", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Articles (drafts included) name this author", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/authors/{slug}")]
pub async fn delete_author(
    state: Data<AppState>,
    _admin: Admin,
    slug: Path<String>,
) -> AppResult<HttpResponse> {
    let lookup = slug.clone();
    AppState::write_content(&state, move |conn| taxonomy::delete_author(conn, &lookup))
        .await
        .map_err(|error| ApiError::from(error).not_found_as(|| author_not_found(&slug)))?;
    Ok(HttpResponse::NoContent().finish())
}
