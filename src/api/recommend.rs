//! The Recommendation feed over HTTP: what this reader should read next.

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::articles::{ArticleSummary, Teaser, teasers, visible_id};
use super::engagement::check_reader;
use super::extract::Query;
use super::paging::{both, page_limit};
use crate::db::{self, articles};
use crate::error::{ApiError, AppResult, Location, Problem};
use crate::recommend::{self, Sources, Strategy};
use crate::state::AppState;

/// Why an article is recommended.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecommendationReason {
    /// Readers of an article this reader read (or is reading) went on to
    /// read it.
    #[schema(title = "AlsoReadReason")]
    AlsoRead {
        /// That article's id.
        #[schema(example = 123)]
        because_of: i32,
    },
    /// It is about the same thing as an article this reader read.
    #[schema(title = "SimilarToReason")]
    SimilarTo {
        /// That article's id.
        #[schema(example = 123)]
        article: i32,
    },
    /// It is trending in a category this reader reads most.
    #[schema(title = "TrendingInReason")]
    TrendingIn {
        /// The category's slug.
        #[schema(example = "news")]
        category: String,
    },
    /// It is trending across the site.
    #[schema(title = "TrendingReason")]
    Trending,
    /// It is new.
    #[schema(title = "FreshReason")]
    Fresh,
}

impl From<recommend::Reason> for RecommendationReason {
    fn from(reason: recommend::Reason) -> Self {
        match reason {
            recommend::Reason::AlsoRead { because_of } => Self::AlsoRead { because_of },
            recommend::Reason::SimilarTo { article } => Self::SimilarTo { article },
            recommend::Reason::TrendingIn { category } => Self::TrendingIn { category },
            recommend::Reason::Trending => Self::Trending,
            recommend::Reason::Fresh => Self::Fresh,
        }
    }
}

/// How a list was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationStrategy {
    /// From the reader's history.
    Personalized,
    /// The reader has no history yet: trending and fresh articles (and,
    /// with a `context`, what its readers went on to read).
    ColdStart,
}

/// One recommended article.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecommendationItem {
    /// The article.
    #[schema(value_type = ArticleSummary)]
    pub article: Teaser,
    /// How strongly it is recommended, higher first: the weighted sum of
    /// what each source gave it.
    #[schema(example = 0.87)]
    pub score: f32,
    /// The source that gave it most.
    pub reason: RecommendationReason,
}

/// How the list was made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecommendationMeta {
    /// `personalized` when the reader has history, else `cold_start`.
    pub strategy: RecommendationStrategy,
    /// The reader the list is for.
    #[schema(example = "r-4f1c2b")]
    pub reader: String,
    /// The article being read, if given.
    #[schema(required = true)]
    pub context: Option<i32>,
    /// The limit applied.
    #[schema(minimum = 1)]
    pub limit: u32,
    /// Most items of the list from one category, while other categories
    /// have candidates.
    pub max_per_category: u32,
    /// Always null: the list is one page, of `limit` items.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A reader's recommendations.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendationResponse {
    /// Best first.
    pub data: Vec<RecommendationItem>,
    /// How the list was made.
    pub meta: RecommendationMeta,
}

/// For whom, and where.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecommendationQuery {
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
    /// The article being read (id or slug): left out of the list, and its
    /// readers' next reads weigh most.
    #[param(example = "42", min_length = 1)]
    #[serde(default, deserialize_with = "crate::api::paging::filled")]
    pub context: Option<String>,
    /// How many articles, 1 to 50.
    #[param(minimum = 1, maximum = 50, default = 8)]
    #[serde(default, deserialize_with = "crate::api::paging::limit")]
    pub limit: Option<u32>,
}

/// The reader's list and how it was made. `context` must be visible.
///
/// Computed on the calling worker: a list is a few lookups in memory and a
/// few prepared statements, less work than a hop to the blocking pool.
pub fn recommendations(
    state: &AppState,
    reader: String,
    context: Option<i32>,
    limit: u32,
) -> AppResult<(Vec<RecommendationItem>, RecommendationMeta)> {
    // Made before the store is read (see `ArticleCache::known`).
    let known = state.articles.known();
    // Without a transaction: mostly nothing is read from the store, and
    // what is (placements, the newest articles) needs no common snapshot.
    let list = state.db.lookup_one(|conn| {
        let sources = Sources {
            related: &state.related,
            known: &known,
        };
        state
            .recommend
            .recommend(conn, sources, &reader, context, limit as usize, db::now())
    })?;
    let ids: Vec<i32> = list.items.iter().map(|item| item.article_id).collect();
    let mut found = teasers(state, &ids)?;
    let items = list
        .items
        .into_iter()
        .filter_map(|item| {
            Some(RecommendationItem {
                article: found.remove(&item.article_id)?,
                score: item.score,
                reason: item.reason.into(),
            })
        })
        .collect();
    let meta = RecommendationMeta {
        strategy: match list.strategy {
            Strategy::Personalized => RecommendationStrategy::Personalized,
            Strategy::ColdStart => RecommendationStrategy::ColdStart,
        },
        reader,
        context,
        limit,
        max_per_category: state.recommend.params().max_per_category(limit as usize) as u32,
        next_cursor: None,
    };
    Ok((items, meta))
}

/// A required, well-formed reader id from the query string.
pub fn required_reader(reader: Option<String>) -> AppResult<String> {
    let reader = reader.ok_or_else(|| {
        ApiError::InvalidParameters(vec![crate::error::FieldError::new(
            Location::Query,
            "reader",
            "is required: the anonymous reader id the client keeps",
        )])
    })?;
    check_reader(&reader, Location::Query)?;
    Ok(reader)
}

/// What this reader should read next.
///
/// Blends what readers of the same articles went on to read (recent
/// co-reading weighs more), articles similar to the reader's latest reads,
/// and what is trending in the categories they read most. Never an article
/// the reader has viewed, the `context` article, or an unpublished one; no
/// category takes more than a configured share of the list (while other
/// categories have candidates). A reader with
/// no history (or one never seen) gets a cold-start list of trending and
/// fresh articles, with `meta.strategy` `cold_start`. A view counts in the
/// reader's next request.
#[utoipa::path(
    tag = "feeds",
    params(RecommendationQuery),
    responses(
        (status = 200, description = "The recommendations", body = RecommendationResponse),
        (status = 400, description = "`reader` is missing or malformed, `context` is empty, or `limit` is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No published article has the `context` id or slug", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/recommendations")]
pub async fn get_recommendations(
    state: Data<AppState>,
    query: Query<RecommendationQuery>,
) -> AppResult<HttpResponse> {
    let query = query.0;
    let (limit, reader) = both(
        page_limit(query.limit, 8, 50),
        required_reader(query.reader),
    )?;
    let context = match query.context {
        Some(context) => {
            let key = articles::ArticleKey::parse(&context);
            let id =
                visible_id(&state, &key)?.ok_or_else(|| ApiError::article_not_found(&context))?;
            Some(id)
        }
        None => None,
    };
    let (data, meta) = recommendations(&state, reader, context, limit)?;
    let mut response = HttpResponse::Ok();
    response.insert_header((header::CACHE_CONTROL, crate::http_cache::PERSONAL));
    Ok(super::json(
        response,
        &RecommendationResponse { data, meta },
    ))
}
