//! The article page: one published article and, on request, the feeds a
//! frontend renders around it, in one round trip.

use actix_web::http::header::{self, LastModified};
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::articles::{Article, ShownArticle, load_article};
use super::engagement::{ReactionKind, check_reader};
use super::extract::Query;
use super::keys::key_scopes;
use super::paging::both;
use super::ranking::{RankingItem, RankingMeta, ranking};
use super::recommend::{RecommendationItem, RecommendationMeta, recommendations, required_reader};
use super::related::{RelatedItem, not_yet_related, related_items};
use crate::auth::Scope;
use crate::db::articles::ArticleKey;
use crate::db::old_slugs;
use crate::error::{ApiError, AppResult, FieldError, Location, Problem};
use crate::http_cache::{ShownCounts, SplicedBody};
use crate::state::AppState;

/// How many ranking items `include=ranking` adds (the seed page's box).
const INCLUDED_RANKING: u32 = 8;
/// How many related articles `include=related` adds (the seed page's list).
const INCLUDED_RELATED: u32 = 10;
/// How many recommendations `include=recommendations` adds (the seed page's).
const INCLUDED_RECOMMENDATIONS: u32 = 8;

/// What else to put in the article response.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticlePageQuery {
    /// Comma-separated feeds to add: `related` (10 items), `ranking`
    /// (default parameters, 8 items) and `recommendations` (8 items for
    /// `reader`, with this article as the context).
    #[param(
        example = "related,ranking,recommendations",
        pattern = "^\\s*(related|ranking|recommendations)\\s*(,\\s*(related|ranking|recommendations)\\s*)*$"
    )]
    pub include: Option<String>,
    /// The reader, for `include=recommendations` (1-64 of `A-Za-z0-9_-`).
    #[param(
        example = "r-4f1c2b",
        pattern = "^[A-Za-z0-9_-]{1,64}$",
        min_length = 1,
        max_length = 64
    )]
    pub reader: Option<String>,
}

/// A feed that `include` can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Include {
    Related,
    Ranking,
    Recommendations,
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
            "recommendations" => Include::Recommendations,
            _ => {
                return Err(ApiError::InvalidParameters(vec![FieldError::new(
                    Location::Query,
                    "include",
                    "must be a comma-separated list of: related, ranking, recommendations",
                )]));
            }
        };
        if !wanted.contains(&item) {
            wanted.push(item);
        }
    }
    Ok(wanted)
}

// What the spec shows of the body `spliced` writes: only tests build
// these two, holding them to the same bytes.
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
    /// What the reader should read next (with `include=recommendations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<Vec<RecommendationItem>>,
}

/// About an article page.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ArticlePageMeta {
    /// How the ranking box was made (with `include=ranking`): its window,
    /// metric and `trending` parameters, as `GET /ranking` echoes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub ranking: Option<RankingMeta>,
    /// How the recommendations were made (with `include=recommendations`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub recommendations: Option<RecommendationMeta>,
    /// The reaction kinds, in display order, with the labels a page shows
    /// by its counters (`veryGood! (186)` from `stats.reactions`), so
    /// that the page needs no other request (with any `include`; the same
    /// as `GET /reaction-kinds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub reaction_kinds: Option<Vec<ReactionKind>>,
}

/// An article page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticlePageResponse {
    /// The article, and any included feeds.
    pub data: ArticlePage,
    /// About the response.
    pub meta: ArticlePageMeta,
}

/// The reader to recommend for, when recommendations are included (then
/// required); otherwise ignored, but never accepted malformed.
fn page_reader(recommendations: bool, reader: Option<String>) -> AppResult<Option<String>> {
    if recommendations {
        return required_reader(reader).map(Some);
    }
    if let Some(reader) = &reader {
        check_reader(reader, Location::Query)?;
    }
    Ok(None)
}

/// Article `id_or_slug`, if `req` may read it: when it is public, or with
/// a key that may read drafts.
async fn readable_article(
    state: &AppState,
    req: &HttpRequest,
    id_or_slug: &str,
) -> AppResult<ShownArticle> {
    match load_article(state, ArticleKey::parse(id_or_slug))? {
        Some(shown) if shown.summary().is_public(Utc::now()) => Ok(shown),
        // Drafts and scheduled articles, for keys that may read them.
        Some(shown) => match key_scopes(req).await? {
            Some(scopes) if scopes.contains(&Scope::ReadDrafts) => Ok(shown),
            Some(_) => Err(ApiError::Forbidden(
                "This article is not published, and this key lacks the `read-drafts` scope.".into(),
            )),
            None => Err(ApiError::article_not_found(id_or_slug)),
        },
        None => Err(ApiError::article_not_found(id_or_slug)),
    }
}

/// The slug of the article that had slug `id_or_slug` before its current
/// one, if `req` may read it (see [`crate::db::old_slugs`]).
pub(super) async fn current_slug(
    state: &AppState,
    req: &HttpRequest,
    id_or_slug: &str,
) -> AppResult<Option<String>> {
    let ArticleKey::Slug(old) = ArticleKey::parse(id_or_slug) else {
        return Ok(None);
    };
    let Some(id) = state
        .db
        .read(move |conn| old_slugs::article_of(conn, &old))
        .await?
    else {
        return Ok(None);
    };
    match readable_article(state, req, &id.to_string()).await {
        Ok(article) => Ok(Some(article.summary().slug.clone())),
        Err(ApiError::NotFound(_) | ApiError::Forbidden(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A permanent redirect (308) to the article's address by `slug`, then
/// `rest` (`""`, or `/related`), with `req`'s query: where a link made with
/// an old slug goes.
pub(super) fn moved(state: &AppState, req: &HttpRequest, slug: &str, rest: &str) -> HttpResponse {
    let mut location = state
        .feed_links
        .public_path(&format!("/api/v1/articles/{slug}{rest}"));
    if !req.query_string().is_empty() {
        location.push('?');
        location.push_str(req.query_string());
    }
    let authorized = req.headers().contains_key(header::AUTHORIZATION);
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, location))
        .insert_header((
            header::CACHE_CONTROL,
            state.cache_policy.cache_control(
                crate::route_table::routed_path(req),
                req.query_string(),
                authorized,
            ),
        ))
        .finish()
}

/// The feeds a page adds to its article, as [`ArticlePage`] names them.
#[derive(Debug, Default, Serialize)]
pub(super) struct Feeds {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) related: Option<Vec<RelatedItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) ranking: Option<Vec<RankingItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) recommendations: Option<Vec<RecommendationItem>>,
}

impl Feeds {
    fn is_empty(&self) -> bool {
        self.related.is_none() && self.ranking.is_none() && self.recommendations.is_none()
    }

    /// About the bytes of its JSON, a little over: its articles' JSON and
    /// what each item says besides (score, reasons, rank).
    fn json_len(&self) -> usize {
        const ITEM: usize = 200;
        let related = self.related.iter().flatten().map(|item| &item.article);
        let ranking = self.ranking.iter().flatten().map(|item| &item.article);
        let recommended = self
            .recommendations
            .iter()
            .flatten()
            .map(|item| &item.article);
        related
            .chain(ranking)
            .chain(recommended)
            .map(|article| article.json_len() + ITEM)
            .sum()
    }
}

/// The body of an article's page: the bytes [`ArticlePageResponse`]
/// serialises to, with the article spliced from the JSON it keeps rather
/// than copied and serialised field by field, as the parts the response
/// cache keeps (the article's body shared with the article kept; see
/// [`SplicedBody`]).
pub(super) fn spliced(
    article: &ShownArticle,
    feeds: &Feeds,
    meta: &ArticlePageMeta,
) -> serde_json::Result<SplicedBody> {
    // `Article` serialises its summary's fields, then `body_html`, then
    // `ArticlePage` the feeds. A page never shows a search hit (that is a
    // list's).
    debug_assert!(article.summary().search.is_none());
    let summary = article
        .summary_json()
        .strip_suffix('}')
        .expect("a summary serialises to a JSON object");
    let mut body = SplicedBody::with_capacity(summary.len() + feeds.json_len() + 64);
    for part in [r#"{"data":"#, summary, r#","body_html":"#] {
        body.own(part.as_bytes());
    }
    body.shared(article.body_shared());
    // The feeds' object joins the article's fields.
    if !feeds.is_empty() {
        body.own_fields(feeds)?;
    }
    body.own(br#"},"meta":"#);
    body.own_json(meta)?;
    body.own(b"}");
    Ok(body)
}

/// The body of an article's page with nothing included.
pub(super) fn alone(article: &ShownArticle) -> SplicedBody {
    spliced(article, &Feeds::default(), &ArticlePageMeta::default())
        .expect("an empty page serialises")
}

/// The reaction kinds, with their labels, for a page's counters.
fn reaction_kinds(state: &AppState) -> AppResult<Vec<ReactionKind>> {
    let cache = &state.articles;
    let generation = cache.generation();
    // Kept, mostly: no pooled connection is taken to find that out.
    let taxonomy = match cache.kept_taxonomy(generation) {
        Some(taxonomy) => taxonomy,
        None => state
            .db
            .lookup_one(|conn| cache.taxonomy(conn, generation))?,
    };
    Ok(taxonomy
        .reaction_kinds
        .iter()
        .map(ReactionKind::from)
        .collect())
}

/// Get one published article by id or slug.
///
/// Drafts and articles scheduled for later are not found, except with an
/// admin key that has the `read-drafts` scope.
/// `include=related,ranking,recommendations&reader=...` adds the Related
/// list, the Ranking box and the reader's recommendations, so the page
/// needs one request.
#[utoipa::path(
    tag = "articles",
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"), ArticlePageQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The article", body = ArticlePageResponse,
            headers(("Last-Modified" = String, description = "When its content last changed (an HTTP date; each change moves it at least a second on): for `If-Unmodified-Since` on a write"))),
        (status = 401, description = "A Bearer key that is not valid or has been revoked", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The article is not published and the key lacks the `read-drafts` scope", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`include` names something unknown, or `reader` is missing or malformed with `include=recommendations`", body = Problem, content_type = "application/problem+json"),
        (status = 308, description = "The slug is one the article had before: `Location` is its address by its slug now, with the same query",
            headers(("Location" = String))),
        (status = 404, description = "No published article has this id or slug", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/articles/{id_or_slug}")]
pub async fn get_article(
    state: Data<AppState>,
    req: HttpRequest,
    id_or_slug: Path<String>,
    query: Query<ArticlePageQuery>,
) -> AppResult<HttpResponse> {
    let query = query.0;
    // A reader is checked whatever `include` says: malformed, it is refused.
    let wanted = includes(query.include.as_deref());
    let wanted_recommendations = wanted
        .as_ref()
        .is_ok_and(|wanted| wanted.contains(&Include::Recommendations));
    let (wanted, reader) = both(wanted, page_reader(wanted_recommendations, query.reader))?;
    let article = match readable_article(&state, &req, &id_or_slug).await {
        Err(ApiError::NotFound(detail)) => {
            return match current_slug(&state, &req, &id_or_slug).await? {
                Some(slug) => Ok(moved(&state, &req, &slug, "")),
                None => Err(ApiError::NotFound(detail)),
            };
        }
        found => found?,
    };
    let last_modified = std::time::SystemTime::from(article.summary().updated_at);
    let mut response = HttpResponse::Ok();
    response.insert_header(LastModified(last_modified.into()));
    if wanted.is_empty() {
        // The article alone stays exact while its counters do.
        response
            .extensions_mut()
            .insert(ShownCounts::of(article.summary().id, article.counts()));
        return Ok(super::spliced_json(response, alone(&article)));
    }
    if reader.is_some() {
        response.insert_header((header::CACHE_CONTROL, crate::http_cache::PERSONAL));
    }
    let id = article.summary().id;
    let related = if wanted.contains(&Include::Related) {
        // A draft, shown to an editor, gets no list.
        let items = related_items(&state, id, INCLUDED_RELATED)
            .await?
            .unwrap_or_default();
        if not_yet_related(&state, id, &items) {
            response.insert_header((header::CACHE_CONTROL, "no-store"));
        }
        Some(items)
    } else {
        None
    };
    let (ranking, ranking_meta) = if wanted.contains(&Include::Ranking) {
        let feed = ranking(
            &state,
            Default::default(),
            Default::default(),
            None,
            INCLUDED_RANKING,
        )
        .await?;
        (Some(feed.data), Some(feed.meta))
    } else {
        (None, None)
    };
    let (recommendations, recommendations_meta) = match reader {
        Some(reader) => {
            let (items, meta) =
                recommendations(&state, reader, Some(id), INCLUDED_RECOMMENDATIONS)?;
            (Some(items), Some(meta))
        }
        None => (None, None),
    };
    let feeds = Feeds {
        related,
        ranking,
        recommendations,
    };
    let meta = ArticlePageMeta {
        ranking: ranking_meta,
        recommendations: recommendations_meta,
        reaction_kinds: Some(reaction_kinds(&state)?),
    };
    let body = spliced(&article, &feeds, &meta)
        .map_err(|error| ApiError::Internal(format!("serialising the answer: {error}")))?;
    Ok(super::spliced_json(response, body))
}
