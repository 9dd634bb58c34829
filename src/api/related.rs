//! The Related feed over HTTP: an article's stored list, with reasons.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get, http::header};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::WholeListMeta;
use super::articles::{ArticleSummary, Teaser, teasers, visible_id};
use super::extract::Query;
use super::page::{current_slug, moved};
use super::paging::page_limit;
use crate::db::articles;
use crate::error::{ApiError, AppResult, Problem};
use crate::http_cache::{ShownCounts, SplicedBody};
use crate::related::{Related, STORED};
use crate::state::AppState;

/// Most items a request may ask for.
pub const MAX_RELATED: u32 = crate::related::STORED as u32;

/// Why an article is in another's Related list; an item may have several.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RelatedReason {
    /// The texts are about the same things.
    #[schema(title = "SimilarTextReason")]
    SimilarText {
        /// The words that weigh most in the match, strongest first. Empty
        /// while the server's text index is first built after a start
        /// (about a minute at a million articles), when lists are read
        /// from the store, which keeps no words.
        #[schema(example = json!(["harbour", "strike", "dockers"]))]
        terms: Vec<String>,
    },
    /// Both articles carry these tags (slugs).
    #[schema(title = "SharedTagsReason")]
    SharedTags {
        #[schema(example = json!(["harbour"]))]
        tags: Vec<String>,
    },
    /// Both articles are in this category (slug).
    #[schema(title = "SameCategoryReason")]
    SameCategory {
        #[schema(example = "business")]
        category: String,
    },
}

/// One related article.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelatedItem {
    /// The article.
    #[schema(value_type = ArticleSummary)]
    pub article: Teaser,
    /// How related, higher first: text similarity (0 to 1) plus small
    /// bonuses for shared tags, the same category and closeness in time.
    #[schema(example = 0.42)]
    pub score: f32,
    /// Why it is related.
    pub reasons: Vec<RelatedReason>,
}

/// An article's Related list.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedResponse {
    /// Most related first.
    pub data: Vec<RelatedItem>,
    /// About the response.
    pub meta: WholeListMeta,
}

/// How many related articles.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelatedQuery {
    /// How many articles, 1 to 50.
    #[param(minimum = 1, maximum = 50, default = 10)]
    #[serde(default, deserialize_with = "crate::api::paging::limit")]
    pub limit: Option<u32>,
}

/// The first `limit` items of article `id`'s stored list that public
/// readers can see now; `None` when they cannot see article `id` itself.
/// Empty while a just-published article waits to be indexed (a few seconds
/// at most).
///
/// Whether article `id` is public is told by its teaser, which the items'
/// shared tags need anyway: one read of the store, not a lookup of its own
/// before the list (at a million articles, most are in no cache).
pub async fn related_items(
    state: &AppState,
    id: i32,
    limit: u32,
) -> AppResult<Option<Vec<RelatedItem>>> {
    let first = limit as usize + 2;
    // One more than the first look takes: a list no longer than the look is
    // then the whole list, not an older article's kept cut short.
    let Some(mut list) = list_of(state, id, first + 1).await? else {
        let own = teasers(state, &[id])?;
        let public = own.get(&id).is_some_and(|own| own.is_public(Utc::now()));
        return Ok(public.then(Vec::new));
    };
    // A couple more than asked for leaves room for articles unpublished
    // since the list was made, without loading all fifty for a page that
    // shows ten; should more than that have gone, the whole list is loaded.
    let mut found = HashMap::new();
    for wanted in [first, STORED] {
        if wanted == STORED {
            list = list_of(state, id, STORED).await?.unwrap_or(list);
        }
        let mut ids: Vec<i32> = list.iter().take(wanted).map(|item| item.id).collect();
        ids.push(id);
        found = teasers(state, &ids)?;
        let now = Utc::now();
        if !found.get(&id).is_some_and(|own| own.is_public(now)) {
            return Ok(None);
        }
        let shown = shown(&list, id, &found, now).count();
        if shown >= limit as usize || wanted >= list.len() {
            break;
        }
    }
    let now = Utc::now();
    let shown: Vec<(&Related, Teaser)> = shown(&list, id, &found, now)
        .take(limit as usize)
        .map(|(item, article)| (item, article.clone()))
        .collect();
    let Some(own) = found.get(&id) else {
        return Ok(None);
    };
    let own_tags: Vec<&str> = own.tags().iter().map(|tag| tag.slug.as_str()).collect();
    let words = state.related.words(id, shown.iter().map(|(item, _)| *item));
    let items = shown
        .into_iter()
        .zip(words)
        .map(|((item, article), terms)| {
            let mut reasons = vec![RelatedReason::SimilarText { terms }];
            let shared: Vec<String> = article
                .tags()
                .iter()
                .filter(|tag| own_tags.contains(&tag.slug.as_str()))
                .map(|tag| tag.slug.clone())
                .collect();
            if !shared.is_empty() {
                reasons.push(RelatedReason::SharedTags { tags: shared });
            }
            if item.same_category {
                reasons.push(RelatedReason::SameCategory {
                    category: article.category().slug.clone(),
                });
            }
            RelatedItem {
                article,
                score: item.score,
                reasons,
            }
        })
        .collect();
    Ok(Some(items))
}

/// The items of article `id`'s `list` that public readers may see at
/// `now`, in order, with their teasers from `found`. An item with the
/// title of article `id` or of an item before it is left out: a daily
/// series under one title ("In brief", "Quotable") is a different text each
/// day, and the same wire story from two outlets shares its headline, but
/// a reader sees the same line twice.
fn shown<'a>(
    list: &'a [Related],
    id: i32,
    found: &'a HashMap<i32, Teaser>,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a Related, &'a Teaser)> {
    let mut titles: Vec<&str> = found
        .get(&id)
        .map(|own| own.title().trim())
        .into_iter()
        .collect();
    list.iter()
        .filter(move |item| item.id != id)
        .filter_map(move |item| {
            let article = found
                .get(&item.id)
                .filter(|article| article.is_public(now))?;
            let title = article.title().trim();
            if titles.iter().any(|seen| seen.eq_ignore_ascii_case(title)) {
                return None;
            }
            titles.push(title);
            Some((item, article))
        })
}

/// Article `id`'s list, with its first `wanted` items at least if it has
/// them: from memory, else from the store, else computed (milliseconds of
/// CPU, kept off the async workers); `None` if it is not indexed.
async fn list_of(state: &AppState, id: i32, wanted: usize) -> AppResult<Option<Arc<Vec<Related>>>> {
    let kept = state.related.stored(id, wanted);
    if let Some(list) = kept.or_else(|| state.related.from_store(id)) {
        return Ok(Some(list));
    }
    let engine = Arc::clone(&state.related);
    super::off_worker("related list", move || engine.compute_list(id)).await
}

/// Articles about the same thing as this one.
///
/// Text similarity over title and body (the title counts more), blended with
/// shared tags, the same category and closeness in time. Never the article
/// itself, an unpublished article, or a near-duplicate (the same story
/// stored twice), and one item of each story filed again and again. Lists are computed ahead and kept current within seconds
/// of any publish, edit or unpublish.
#[utoipa::path(
    tag = "feeds",
    params(("id_or_slug" = String, Path, description = "Numeric id or slug", example = "42"), RelatedQuery),
    responses(
        (status = 200, description = "The related articles", body = RelatedResponse),
        (status = 400, description = "`limit` is out of range", body = Problem, content_type = "application/problem+json"),
        (status = 308, description = "The slug is one the article had before: `Location` is its Related list by its slug now",
            headers(("Location" = String))),
        (status = 404, description = "No published article has this id or slug", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/articles/{id_or_slug}/related")]
pub async fn get_related(
    state: Data<AppState>,
    req: HttpRequest,
    id_or_slug: Path<String>,
    query: Query<RelatedQuery>,
) -> AppResult<HttpResponse> {
    let limit = page_limit(query.0.limit, 10, MAX_RELATED)?;
    let not_found = || ApiError::article_not_found(&id_or_slug);
    let id = match articles::ArticleKey::parse(&id_or_slug) {
        articles::ArticleKey::Id(id) => id,
        slug => match visible_id(&state, &slug)? {
            Some(id) => id,
            None => {
                return match current_slug(&state, &req, &id_or_slug).await? {
                    Some(slug) => Ok(moved(&state, &req, &slug, "/related")),
                    None => Err(not_found()),
                };
            }
        },
    };
    let body = RelatedResponse {
        data: related_items(&state, id, limit)
            .await?
            .ok_or_else(not_found)?,
        meta: WholeListMeta::default(),
    };
    let mut response = HttpResponse::Ok();
    if not_yet_related(&state, id, &body.data) {
        response.insert_header((header::CACHE_CONTROL, "no-store"));
    }
    let (spliced, shown) = spliced(&body).map_err(|error| {
        ApiError::Internal(format!("a Related list did not serialise: {error}"))
    })?;
    if let Some(shown) = shown {
        response.extensions_mut().insert(shown);
    }
    Ok(super::spliced_json(response, spliced))
}

/// The bytes `body` serialises to, its teasers spliced from the JSON the
/// article cache keeps (see [`SplicedBody`]): the response cache then holds
/// a list's scores and reasons, a seventh of its bytes, and shares the rest.
/// With it, the counters its teasers show, when each is the one kept: the
/// response stays exact, past the engagement lag, while they are.
pub(super) fn spliced(
    body: &RelatedResponse,
) -> serde_json::Result<(SplicedBody, Option<ShownCounts>)> {
    let mut spliced = SplicedBody::with_capacity(body.data.len() * 128 + 64);
    let mut shown = Some(ShownCounts::default());
    spliced.own(br#"{"data":["#);
    for (index, item) in body.data.iter().enumerate() {
        if index > 0 {
            spliced.own(b",");
        }
        spliced.own(br#"{"article":"#);
        spliced.shared(item.article.json_shared());
        spliced.own(br#","score":"#);
        spliced.own_json(&item.score)?;
        spliced.own(br#","reasons":"#);
        spliced.own_json(&item.reasons)?;
        spliced.own(b"}");
        match (&mut shown, item.article.counts_shown()) {
            (Some(shown), Some(counts)) => shown.add(item.article.id(), counts),
            _ => shown = None,
        }
    }
    spliced.own(br#"],"meta":"#);
    spliced.own_json(&body.meta)?;
    spliced.own(b"}");
    Ok((spliced, shown.filter(|_| !body.data.is_empty())))
}

/// True when `items`, the list of article `id`, is empty only because the
/// article is not indexed yet (the index is being built, or the article
/// was published a moment ago): such an answer must not be kept by any
/// cache, nor this server's (see `http_cache::conditional`).
pub fn not_yet_related(state: &AppState, id: i32, items: &[RelatedItem]) -> bool {
    items.is_empty() && !state.related.indexed(id)
}
