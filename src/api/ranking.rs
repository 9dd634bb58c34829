//! The Ranking feed: what is read most now.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use chrono::{DateTime, NaiveDateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::articles::{ArticleSummary, Teaser};
use super::extract::Query;
use super::paging::{nothing_named, page_limit};
use crate::content::Status;
use crate::db::articles::Taxonomy;
use crate::db::engagement;
use crate::db::shown;
use crate::db::taxonomy::CategoryTree;
use crate::error::{ApiError, AppResult, Problem};
use crate::ranking::{self, Key, Lookup, Metric, Ranked, Window};
use crate::state::AppState;

/// How far back a ranking looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum RankingWindow {
    /// The last hour (to the hour).
    #[serde(rename = "1h")]
    Hour,
    /// The last 24 hours (to the hour).
    #[default]
    #[serde(rename = "24h")]
    Day,
    /// The last 7 days (to the day).
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days (to the day).
    #[serde(rename = "30d")]
    Month,
    /// All time.
    #[serde(rename = "all")]
    All,
}

impl From<RankingWindow> for Window {
    fn from(window: RankingWindow) -> Self {
        match window {
            RankingWindow::Hour => Window::Hour,
            RankingWindow::Day => Window::Day,
            RankingWindow::Week => Window::Week,
            RankingWindow::Month => Window::Month,
            RankingWindow::All => Window::All,
        }
    }
}

/// What a ranking orders by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankingMetric {
    /// Views in the window.
    Views,
    /// Reactions in the window.
    Reactions,
    /// Views plus weighted reactions in the window, halved every half-life
    /// of the article's age.
    #[default]
    Trending,
}

impl From<RankingMetric> for Metric {
    fn from(metric: RankingMetric) -> Self {
        match metric {
            RankingMetric::Views => Metric::Views,
            RankingMetric::Reactions => Metric::Reactions,
            RankingMetric::Trending => Metric::Trending,
        }
    }
}

/// What to rank.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RankingQuery {
    /// How far back to look; `24h` when not given.
    #[param(inline)]
    pub window: Option<RankingWindow>,
    /// What to order by; `trending` when not given.
    #[param(inline)]
    pub metric: Option<RankingMetric>,
    /// Only this category (slug) and every category below it.
    #[param(example = "news", min_length = 1)]
    #[serde(default, deserialize_with = "crate::api::paging::filled")]
    pub category: Option<String>,
    /// How many articles, 1 to 50.
    #[param(minimum = 1, maximum = 50, default = 10)]
    #[serde(default, deserialize_with = "crate::api::paging::limit")]
    pub limit: Option<u32>,
}

/// One place in the ranking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RankingItem {
    /// 1 for the top article.
    #[schema(minimum = 1)]
    pub rank: u32,
    /// The article.
    #[schema(value_type = ArticleSummary)]
    pub article: Teaser,
    /// What the list is ordered by (see `meta.metric`).
    pub score: f64,
    /// Views in the window.
    pub views: i64,
    /// Reactions in the window.
    pub reactions: i64,
}

/// The `trending` decay in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecayParams {
    /// Hours after publication at which an article's engagement counts half.
    pub half_life_hours: f64,
    /// How many views one reaction is worth.
    pub reaction_weight: f64,
}

/// How a ranking was made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RankingMeta {
    /// The window used.
    pub window: RankingWindow,
    /// The metric used.
    pub metric: RankingMetric,
    /// The category filter, if any.
    #[schema(required = true)]
    pub category: Option<String>,
    /// The limit applied.
    #[schema(minimum = 1)]
    pub limit: u32,
    /// The `trending` parameters.
    pub decay: DecayParams,
    /// When the counts were summed (rankings are reused for a few seconds).
    pub computed_at: DateTime<Utc>,
    /// Always null: the ranking is one page, of `limit` items.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The ranking.
#[derive(Debug, Serialize, ToSchema)]
pub struct RankingResponse {
    /// The articles, best first.
    pub data: Vec<RankingItem>,
    /// How it was made.
    pub meta: RankingMeta,
}

/// Most items a ranking may ask for. A ranking is summed and kept for
/// this many whatever the limit asked, so that every limit shares one sum.
pub const MAX_RANKED: usize = 50;

/// Ranked articles kept beyond [`MAX_RANKED`] in a cached ranking, so that
/// the articles hidden or moved out of the category since it was summed can
/// be skipped without summing again.
const SPARE: usize = 10;

/// A summed ranking, reused for a few seconds whatever editors change, and
/// its articles as last loaded, reused until the next edit (see `items`).
#[derive(Debug)]
pub struct Scored {
    ranked: Vec<Ranked>,
    /// The answer's items and the content generation they were loaded in.
    items: Mutex<Option<(u64, Arc<Vec<RankingItem>>)>>,
}

/// Sums the ranking the article page includes (the default window and
/// metric, everywhere) before a request asks for it: at a million
/// articles that takes about a second, which the first page requests after
/// a start spent waiting.
pub async fn warm(state: Data<AppState>) {
    let key = Key {
        window: RankingWindow::default().into(),
        metric: RankingMetric::default().into(),
        category: None,
    };
    if let Err(error) = fresh_or_computed(&state, key).await {
        tracing::warn!(%error, "summing the ranking at start failed");
    }
}

/// The ranking of `key` if one is fresh, or computed now. Whoever computes
/// holds the key's flight lock; those that waited for it then find the
/// fresh ranking instead.
async fn fresh_or_computed(state: &AppState, key: Key) -> AppResult<(NaiveDateTime, Arc<Scored>)> {
    let _flight = state.rankings.flight(&key).lock_owned().await;
    match state.rankings.fresh(&key) {
        Some(fresh) => Ok(fresh),
        None => compute(state, key).await,
    }
}

/// Sums the window's buckets and ranks, and keeps the result.
async fn compute(state: &AppState, key: Key) -> AppResult<(NaiveDateTime, Arc<Scored>)> {
    let started = Instant::now();
    let begun = state.rankings.expirations();
    let decay = state.decay;
    let kept = key.clone();
    let (now, ranked) = state
        .db
        .read(move |conn| {
            let now = crate::db::now();
            let tree = CategoryTree::load(conn)?;
            let ids = match key.category.as_deref() {
                None => None,
                Some(slug) => match tree.by_slug(slug) {
                    Some(category) => Some(tree.subtree_ids(category.id)),
                    None => return Ok(Err(vec![nothing_named("category", slug)])),
                },
            };
            let mut top = ranking::Top::new(MAX_RANKED + SPARE);
            engagement::each_window_total(
                conn,
                key.window.span(now),
                ids.as_deref(),
                now,
                |totals| {
                    if let Some(ranked) = ranking::ranked(totals, key.metric, decay, now) {
                        top.offer(ranked);
                    }
                },
            )?;
            Ok(Ok((now, top.into_ranked())))
        })
        .await?
        .map_err(ApiError::InvalidParameters)?;
    let scored = Arc::new(Scored {
        ranked,
        items: Mutex::default(),
    });
    state
        .rankings
        .put(kept, now, started.elapsed(), Arc::clone(&scored), begun);
    Ok((now, scored))
}

/// The ranked articles as they are now: loaded again after every edit, so
/// that a cached ranking never shows an old title, nor an article that has
/// since been unpublished, deleted or moved out of the category.
async fn items(state: &AppState, key: &Key, scored: &Scored) -> AppResult<Arc<Vec<RankingItem>>> {
    // Read before loading: an edit committed meanwhile makes the result old
    // at once, never the other way round.
    let generation = state.content_generation();
    if let Some((loaded_in, items)) = scored.items.lock().as_ref()
        && *loaded_in == generation
    {
        return Ok(Arc::clone(items));
    }
    let ranked = &scored.ranked;
    let category = key.category.clone();
    let ids: Vec<i32> = ranked.iter().map(|r| r.totals.article_id).collect();
    let (rows, extras, subtree) = state
        .db
        .read(move |conn| {
            let subtree = match category.as_deref() {
                None => None,
                Some(slug) => {
                    let tree = CategoryTree::load(conn)?;
                    Some(
                        tree.by_slug(slug)
                            .map(|c| tree.subtree_ids(c.id))
                            .unwrap_or_default(),
                    )
                }
            };
            let (rows, extras) =
                shown::with_extras(shown::by_ids(conn, &ids)?, Taxonomy::load(conn)?);
            Ok((rows, extras, subtree))
        })
        .await?;
    let now = crate::db::now();
    let mut rows: HashMap<i32, _> = rows
        .into_iter()
        .filter(|row| {
            row.status == Status::Published.as_str()
                && row.published_at.is_some_and(|at| at <= now)
                && subtree
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&row.category_id))
        })
        .map(|row| (row.id, row))
        .collect();
    let items: Arc<Vec<RankingItem>> = Arc::new(
        ranked
            .iter()
            .filter_map(|r| Some((r, rows.remove(&r.totals.article_id)?)))
            .take(MAX_RANKED)
            .enumerate()
            .map(|(i, (r, row))| RankingItem {
                rank: i as u32 + 1,
                article: Teaser::new(ArticleSummary::new(row, &extras)),
                score: r.score,
                views: r.totals.views,
                reactions: r.totals.reactions,
            })
            .collect(),
    );
    *scored.items.lock() = Some((generation, Arc::clone(&items)));
    Ok(items)
}

/// A ranking, computed or reused.
pub async fn ranking(
    state: &Data<AppState>,
    window: RankingWindow,
    metric: RankingMetric,
    category: Option<String>,
    limit: u32,
) -> AppResult<RankingResponse> {
    let key = Key {
        window: window.into(),
        metric: metric.into(),
        category: category.clone(),
    };
    let decay = state.decay;
    let (computed_at, scored) = match state.rankings.get(&key) {
        Lookup::Hit(computed_at, scored) => (computed_at, scored),
        Lookup::Stale(computed_at, scored) => {
            let (state, key) = (Data::clone(state), key.clone());
            actix_web::rt::spawn(async move {
                if let Err(error) = compute(&state, key).await {
                    tracing::warn!(%error, "summing a ranking again failed; retrying soon");
                }
            });
            (computed_at, scored)
        }
        Lookup::Miss => fresh_or_computed(state, key.clone()).await?,
    };
    let data = items(state, &key, &scored)
        .await?
        .iter()
        .take(limit as usize)
        .cloned()
        .collect();
    Ok(RankingResponse {
        data,
        meta: RankingMeta {
            window,
            metric,
            category,
            limit,
            decay: DecayParams {
                half_life_hours: decay.half_life_hours,
                reaction_weight: decay.reaction_weight,
            },
            computed_at: computed_at.and_utc(),
            next_cursor: None,
        },
    })
}

/// The most read published articles now.
///
/// Counts come from hourly and daily buckets, never raw events, so the cost
/// does not grow with history. A ranking is reused for a few seconds
/// (`FRONTPAGE_RANKING_CACHE_SECS`); `meta.computed_at` says when it was
/// summed. Ties go to the newer article, then the higher id.
#[utoipa::path(
    tag = "feeds",
    params(RankingQuery),
    responses(
        (status = 200, description = "The ranking", body = RankingResponse),
        (status = 400, description = "A parameter is invalid, empty, or names a category that does not exist", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/ranking")]
pub async fn get_ranking(
    state: Data<AppState>,
    query: Query<RankingQuery>,
) -> AppResult<HttpResponse> {
    let query = query.0;
    let limit = page_limit(query.limit, 10, MAX_RANKED as u32)?;
    let response = ranking(
        &state,
        query.window.unwrap_or_default(),
        query.metric.unwrap_or_default(),
        query.category,
        limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(response))
}
