//! The reactions one reader gave an article, so that a page can show the
//! reader's own (a highlighted `veryGood!`) without keeping them itself.

use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::Meta;
use crate::api::articles::visible_id;
use crate::api::extract::Query;
use crate::api::recommend::required_reader;
use crate::db::articles::ArticleKey;
use crate::db::engagement;
use crate::error::{ApiError, AppResult, Problem};
use crate::state::AppState;

/// Whose reactions.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GivenQuery {
    /// The anonymous reader id the client keeps (1-64 of `A-Za-z0-9_-`).
    // Required, but an `Option` so that a missing one is our problem naming it.
    #[param(
        required = true,
        example = "r-4f1c2b",
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub reader: Option<String>,
}

/// The reactions a reader gave an article.
#[derive(Debug, Serialize, ToSchema)]
pub struct Given {
    /// The article's id.
    pub article_id: i32,
    /// Reaction kind keys, in display order; empty when none.
    #[schema(example = json!(["very_good"]))]
    pub kinds: Vec<String>,
}

/// The reactions a reader gave an article.
#[derive(Debug, Serialize, ToSchema)]
pub struct GivenResponse {
    /// The resource.
    pub data: Given,
    /// About the response.
    pub meta: Meta,
}

/// The reactions this reader gave a published article.
///
/// Answered for one reader: `Cache-Control: private, no-cache`.
#[utoipa::path(
    tag = "engagement",
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"), GivenQuery),
    responses(
        (status = 200, description = "The reader's reactions", body = GivenResponse),
        (status = 400, description = "`reader` is missing or malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No published article has this id or slug", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/articles/{id_or_slug}/reactions")]
pub async fn reactions_given(
    state: Data<AppState>,
    id_or_slug: Path<String>,
    query: Query<GivenQuery>,
) -> AppResult<HttpResponse> {
    let reader = required_reader(query.0.reader)?;
    let article_id = visible_id(&state, &ArticleKey::parse(&id_or_slug))?
        .ok_or_else(|| ApiError::article_not_found(&id_or_slug))?;
    let kinds = state
        .db
        .read(move |conn| engagement::given_by(conn, article_id, &reader))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, crate::http_cache::PERSONAL))
        .json(GivenResponse {
            data: Given { article_id, kinds },
            meta: Meta::default(),
        }))
}
