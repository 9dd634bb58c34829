//! The category tree: public reads and admin writes.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, delete, get, patch, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::articles::NamedRef;
use super::extract::JsonBody;
use super::input::{check_parent, created, derive_slug, done, nullable, present, slug_and_name};
use super::keys::Admin;
use super::{Meta, WholeListMeta};
use crate::db::taxonomy::{self, CategoryTree, CategoryWrite};
use crate::error::{ApiError, AppResult, Problem};
use crate::state::AppState;

/// A category and everything below it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryNode {
    /// Stable identifier, usable in URLs.
    #[schema(example = "news")]
    pub slug: String,
    /// Display name.
    #[schema(example = "News")]
    pub name: String,
    /// Sub-categories, in display order.
    #[schema(no_recursion)]
    pub children: Vec<CategoryNode>,
}

/// The category tree, from its roots.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryTreeResponse {
    /// The root categories, each with everything below it.
    pub data: Vec<CategoryNode>,
    /// About the response.
    pub meta: WholeListMeta,
}

/// One category with its place in the tree.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Category {
    /// Stable identifier, usable in URLs.
    #[schema(example = "world")]
    pub slug: String,
    /// Display name.
    #[schema(example = "World")]
    pub name: String,
    /// Display order among its siblings.
    pub position: i32,
    /// The category above it; null for a root.
    #[schema(required = true)]
    pub parent: Option<NamedRef>,
    /// From the root down to this category.
    pub breadcrumb: Vec<NamedRef>,
    /// The categories directly below it.
    pub children: Vec<NamedRef>,
}

/// One category.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryResponse {
    /// The resource.
    pub data: Category,
    /// About the response.
    pub meta: Meta,
}

fn named(slug: &str, name: &str) -> NamedRef {
    NamedRef {
        slug: slug.to_string(),
        name: name.to_string(),
    }
}

fn node(tree: &CategoryTree, id: i32, depth: usize) -> Option<CategoryNode> {
    let row = tree.get(id)?;
    // Depth is bounded by the number of categories, so a cycle cannot recurse forever.
    let children = if depth > 64 {
        vec![]
    } else {
        tree.children(Some(id))
            .filter_map(|child| node(tree, child.id, depth + 1))
            .collect()
    };
    Some(CategoryNode {
        slug: row.slug.clone(),
        name: row.name.clone(),
        children,
    })
}

fn category(tree: &CategoryTree, slug: &str) -> Option<Category> {
    let row = tree.by_slug(slug)?;
    Some(Category {
        slug: row.slug.clone(),
        name: row.name.clone(),
        position: row.position,
        parent: row
            .parent_id
            .and_then(|id| tree.get(id))
            .map(|p| named(&p.slug, &p.name)),
        breadcrumb: tree
            .path(row.id)
            .into_iter()
            .map(|c| named(&c.slug, &c.name))
            .collect(),
        children: tree
            .children(Some(row.id))
            .map(|c| named(&c.slug, &c.name))
            .collect(),
    })
}

/// The category tree.
#[utoipa::path(tag = "taxonomy", responses((status = 200, description = "Every category, nested", body = CategoryTreeResponse)))]
#[get("/categories")]
pub async fn list_categories(state: Data<AppState>) -> AppResult<HttpResponse> {
    let tree = state.db.read(CategoryTree::load).await?;
    let roots = tree
        .children(None)
        .filter_map(|root| node(&tree, root.id, 0))
        .collect();
    Ok(HttpResponse::Ok().json(CategoryTreeResponse {
        data: roots,
        meta: WholeListMeta::default(),
    }))
}

fn category_not_found(slug: &str) -> ApiError {
    ApiError::NotFound(format!(
        "No category has the slug `{}`.",
        crate::error::echo(slug)
    ))
}

/// One category, with its parent, breadcrumb and children.
#[utoipa::path(
    tag = "taxonomy",
    params(("slug" = String, Path, description = "Category slug", example = "news")),
    responses(
        (status = 200, description = "The category", body = CategoryResponse),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/categories/{slug}")]
pub async fn get_category(state: Data<AppState>, slug: Path<String>) -> AppResult<HttpResponse> {
    let tree = state.db.read(CategoryTree::load).await?;
    let data = category(&tree, &slug).ok_or_else(|| category_not_found(&slug))?;
    Ok(HttpResponse::Ok().json(CategoryResponse {
        data,
        meta: Meta::default(),
    }))
}

/// A new category.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "World", "parent": "news"}))]
pub struct CategoryInput {
    /// URL slug; derived from the name when absent (`C++` makes
    /// `c-plus-plus`, `C#` `c-sharp`).
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub slug: Option<String>,
    /// Display name, 1 to 100 characters.
    #[schema(schema_with = super::input::name_schema)]
    pub name: String,
    /// Slug of the parent category; a root when absent.
    #[schema(pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub parent: Option<String>,
    /// Display order among its siblings (default 0).
    pub position: Option<i32>,
}

/// Changes to a category; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryPatch {
    /// New slug.
    #[schema(value_type = String, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    #[serde(default, deserialize_with = "present")]
    pub slug: Option<String>,
    /// New display name.
    #[schema(schema_with = super::input::optional_name_schema)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    /// New parent slug; `null` makes it a root.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$", max_length = 100)]
    pub parent: Option<Option<String>>,
    /// New display order among its siblings.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i32)]
    pub position: Option<i32>,
}

/// Create a category.
#[utoipa::path(
    tag = "taxonomy",
    request_body = CategoryInput,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = CategoryResponse, headers(("Location" = String))),
    )
)]
#[post("/categories")]
pub async fn create_category(
    state: Data<AppState>,
    _admin: Admin,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input: CategoryInput = body.parse()?;
    let mut errors = Vec::new();
    let (slug, name) = slug_and_name(input.slug, Some(input.name), &mut errors);
    check_parent(input.parent.as_deref(), &mut errors);
    let slug = derive_slug(slug, name.as_deref(), &mut errors);
    done(errors)?;
    let write = CategoryWrite {
        slug: Some(slug.clone()),
        name,
        parent: Some(input.parent),
        position: input.position,
    };
    let tree = AppState::write_content(&state, move |conn| {
        taxonomy::insert_category(conn, &write)?;
        CategoryTree::load(conn)
    })
    .await?;
    let data = category(&tree, &slug).ok_or_else(|| category_not_found(&slug))?;
    Ok(created(
        &state,
        &format!("/api/v1/categories/{slug}"),
        CategoryResponse {
            data,
            meta: Meta::default(),
        },
    ))
}

/// Change a category: rename it, change its slug or move it in the tree.
#[utoipa::path(
    tag = "taxonomy",
    request_body = CategoryPatch,
    params(("slug" = String, Path, description = "Category slug", example = "news")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changed", body = CategoryResponse),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, or the move would make a cycle", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/categories/{slug}")]
pub async fn update_category(
    state: Data<AppState>,
    _admin: Admin,
    slug: Path<String>,
    body: JsonBody,
) -> AppResult<HttpResponse> {
    let input: CategoryPatch = body.parse()?;
    let mut errors = Vec::new();
    let (new_slug, name) = slug_and_name(input.slug, input.name, &mut errors);
    check_parent(
        input.parent.as_ref().and_then(Option::as_deref),
        &mut errors,
    );
    done(errors)?;
    let current = slug.into_inner();
    let final_slug = new_slug.clone().unwrap_or_else(|| current.clone());
    let write = CategoryWrite {
        slug: new_slug,
        name,
        parent: input.parent,
        position: input.position,
    };
    let lookup = current.clone();
    let tree = AppState::write_content(&state, move |conn| {
        taxonomy::update_category(conn, &lookup, &write)?;
        CategoryTree::load(conn)
    })
    .await
    .map_err(|error| ApiError::from(error).not_found_as(|| category_not_found(&current)))?;
    let data = category(&tree, &final_slug).ok_or_else(|| category_not_found(&final_slug))?;
    Ok(HttpResponse::Ok().json(CategoryResponse {
        data,
        meta: Meta::default(),
    }))
}

/// Delete a category that has no sub-categories and no articles.
#[utoipa::path(
    tag = "taxonomy",
    params(("slug" = String, Path, description = "Category slug", example = "news")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has sub-categories, or articles (drafts included)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/categories/{slug}")]
pub async fn delete_category(
    state: Data<AppState>,
    _admin: Admin,
    slug: Path<String>,
) -> AppResult<HttpResponse> {
    let lookup = slug.clone();
    AppState::write_content(&state, move |conn| taxonomy::delete_category(conn, &lookup))
        .await
        .map_err(|error| ApiError::from(error).not_found_as(|| category_not_found(&slug)))?;
    Ok(HttpResponse::NoContent().finish())
}
