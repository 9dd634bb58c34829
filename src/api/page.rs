//! The article page: one published article and, on request, the feeds a
//! frontend renders around it, in one round trip.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::Meta;
use super::articles::{Article, ArticleStatus, ArticleSummary, load_article};
use super::extract::Query;
use super::ranking::{RankingItem, ranking};
use super::related::{RelatedItem, related_items};
use crate::app::AppState;
use crate::db::articles::ArticleKey;
use crate::error::{ApiError, AppResult, FieldError, Location, Problem};

/// How many ranking items `include=ranking` adds (the seed page's box).
const INCLUDED_RANKING: u32 = 8;
/// How many related articles `include=related` adds (the seed page's list).
const INCLUDED_RELATED: u32 = 10;

/// What else to put in the article response.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticlePageQuery {
    /// Comma-separated feeds to add: `related` (10 items) and `ranking`
    /// (default parameters, 8 items).
    #[param(example = "related,ranking")]
    pub include: Option<String>,
}

/// A feed that `include` can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    Related,
    Ranking,
}

fn includes(include: Option<&str>) -> AppResult<Vec<Include>> {
    let mut wanted = Vec::new();
    for name in include
        .into_iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
    {
        let item = match name {
            "related" => Include::Related,
            "ranking" => Include::Ranking,
            _ => {
                return Err(ApiError::InvalidParameters(vec![FieldError::new(
                    Location::Query,
                    "include",
                    "must be a comma-separated list of: related, ranking",
                )]));
            }
        };
        if !wanted.contains(&item) {
            wanted.push(item);
        }
    }
    Ok(wanted)
}

/// An article with the feeds that were asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticlePage {
    #[serde(flatten)]
    pub article: Article,
    /// Articles about the same thing (with `include=related`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<Vec<RelatedItem>>,
    /// The most read articles now (with `include=ranking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<Vec<RankingItem>>,
}

/// An article page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticlePageResponse {
    /// The article, and any included feeds.
    pub data: ArticlePage,
    /// About the response.
    pub meta: Meta,
}

fn is_public(article: &ArticleSummary, now: DateTime<Utc>) -> bool {
    article.status == ArticleStatus::Published && article.published_at.is_some_and(|at| at <= now)
}

/// Get one published article by id or slug.
///
/// Drafts and articles scheduled for later are not found.
/// `include=related,ranking` adds the Related list and the Ranking box, so
/// the page needs one request.
#[utoipa::path(
    tag = "articles",
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"), ArticlePageQuery),
    responses(
        (status = 200, description = "The article", body = ArticlePageResponse),
        (status = 400, description = "`include` names something unknown", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No published article has this id or slug", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/articles/{id_or_slug}")]
pub async fn get_article(
    state: Data<AppState>,
    id_or_slug: Path<String>,
    query: Query<ArticlePageQuery>,
) -> AppResult<HttpResponse> {
    let wanted = includes(query.0.include.as_deref())?;
    let key = ArticleKey::parse(&id_or_slug);
    let article = match load_article(&state, key).await? {
        Some(article) if is_public(&article.summary, Utc::now()) => article,
        _ => return Err(ApiError::article_not_found(&id_or_slug)),
    };
    let related = if wanted.contains(&Include::Related) {
        Some(related_items(&state, article.summary.id, INCLUDED_RELATED).await?)
    } else {
        None
    };
    let ranking = if wanted.contains(&Include::Ranking) {
        let feed = ranking(
            &state,
            Default::default(),
            Default::default(),
            None,
            INCLUDED_RANKING,
        )
        .await?;
        Some(feed.data)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ArticlePageResponse {
        data: ArticlePage {
            article,
            related,
            ranking,
        },
        meta: Meta::default(),
    }))
}
