//! The article list: filters, keyset paging newest or oldest first, and
//! full-text search ranked by relevance.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, get};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ArticleSummary, SearchHit};
use crate::api::extract::Query;
use crate::api::keys::{key_scopes, tags_shown};
use crate::api::paging::{both, nothing_named, page_limit, page_response};
use crate::api::{ListMeta, cursor, time};
use crate::auth::Scope;
use diesel::sqlite::SqliteConnection;

use crate::db::articles::{self, ArticleRow, ListFilter, Listed, Order, Taxonomy};
use crate::db::taxonomy::{self, TagsShown};
use crate::db::{self, StoreResult, search, shown};
use crate::error::{ApiError, AppResult, FieldError, Location, Problem};
use crate::state::AppState;

/// A page of articles.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleListResponse {
    /// The items of this page, in order.
    pub data: Vec<ArticleSummary>,
    /// About the response.
    pub meta: ListMeta,
}

/// Order of an article list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ArticleSort {
    /// Newest first.
    #[default]
    #[serde(rename = "-published_at")]
    NewestFirst,
    /// Oldest first.
    #[serde(rename = "published_at")]
    OldestFirst,
}

/// Which articles a list holds by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArticleListStatus {
    /// Published and due: what readers see.
    #[default]
    Published,
    /// Published with a `published_at` still to come (needs `read-drafts`).
    Scheduled,
    /// Drafts, newest first by id (in the order they were created) rather
    /// than by `published_at`, which a draft need not have (needs
    /// `read-drafts`).
    Draft,
}

impl From<ArticleListStatus> for Listed {
    fn from(status: ArticleListStatus) -> Self {
        match status {
            ArticleListStatus::Published => Self::Visible,
            ArticleListStatus::Scheduled => Self::Scheduled,
            ArticleListStatus::Draft => Self::Drafts,
        }
    }
}

/// Filters and paging for the article list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListArticlesQuery {
    /// Full-text search over title, summary and body: articles with every
    /// word (the last also as a prefix), most relevant first, each with a
    /// highlighted `search.snippet`. Combines with the filters; `sort` does
    /// not apply. At most 200 characters; the first 12 words count, and the
    /// best 5,000 matches are ranked.
    #[param(example = "harbour strike", max_length = 200)]
    pub q: Option<String>,
    /// Only this category (slug) and every category below it.
    #[param(example = "news", min_length = 1)]
    pub category: Option<String>,
    /// Only articles with this tag (slug). Without a key that may read
    /// drafts, a tag that no published article carries is unknown (400),
    /// as at `/tags/{slug}`.
    #[param(example = "arctic-warming", min_length = 1)]
    pub tag: Option<String>,
    /// Only articles by this author (slug).
    #[param(example = "mara-ellison", min_length = 1)]
    pub author: Option<String>,
    /// Only articles from this source (exact name).
    #[param(example = "Frontpage Newsroom", min_length = 1)]
    pub source: Option<String>,
    /// Only articles published at or after this instant (RFC 3339).
    #[param(example = "2026-01-01T00:00:00Z")]
    #[serde(default, deserialize_with = "time::optional")]
    pub published_after: Option<DateTime<Utc>>,
    /// Only articles published before this instant (RFC 3339).
    #[param(example = "2026-02-01T00:00:00Z")]
    #[serde(default, deserialize_with = "time::optional")]
    pub published_before: Option<DateTime<Utc>>,
    /// `published` (the default), or for an editor's key with the
    /// `read-drafts` scope `scheduled` or `draft`.
    #[param(inline)]
    pub status: Option<ArticleListStatus>,
    /// `-published_at` (newest first, the default) or `published_at`; not
    /// with `q`, whose results come most relevant first. Drafts are ordered
    /// by creation (id) instead, newest first unless `published_at`. For
    /// `status=scheduled`, `published_at` lists the soonest due first.
    #[param(inline)]
    pub sort: Option<ArticleSort>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[serde(default, deserialize_with = "crate::api::paging::limit")]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Also count every matching article into `meta.total` (one more
    /// query). With `q`, only the best 5,000 matches are ranked, so the
    /// count stops at 5,000.
    #[param(default = false)]
    pub total: Option<bool>,
}

/// Where a page ends; what a cursor carries.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Position {
    /// `published_at` in microseconds since the epoch.
    t: i64,
    /// Article id.
    i: i32,
    /// The sort the cursor was made for.
    s: ArticleSort,
    /// The status listed (cursors made before there was one list published
    /// articles).
    #[serde(default, skip_serializing_if = "is_published")]
    st: ArticleListStatus,
}

fn is_published(status: &ArticleListStatus) -> bool {
    *status == ArticleListStatus::Published
}

fn decode_position(
    cursor: &str,
    sort: ArticleSort,
    status: ArticleListStatus,
) -> Result<(NaiveDateTime, i32), ApiError> {
    let position: Position = cursor::decode(cursor)?;
    let at = DateTime::from_timestamp_micros(position.t).map(|at| at.naive_utc());
    match at {
        Some(at) if position.s == sort && position.st == status => Ok((at, position.i)),
        _ => Err(ApiError::InvalidParameters(vec![FieldError::new(
            Location::Query,
            "cursor",
            "belongs to another sort order or status, or is not a cursor this API returned",
        )])),
    }
}

/// Refuses a list of `status` to a request whose key may not read drafts.
async fn may_list(req: &HttpRequest, status: ArticleListStatus) -> AppResult<()> {
    if status == ArticleListStatus::Published {
        return Ok(());
    }
    match key_scopes(req).await? {
        Some(scopes) if scopes.contains(&Scope::ReadDrafts) => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "Listing drafts or scheduled articles needs a key with the `read-drafts` scope.".into(),
        )),
        None => Err(ApiError::Unauthorized(
            "Listing drafts or scheduled articles needs an admin key: send it as \
             `Authorization: Bearer <key>`.",
        )),
    }
}

/// The filters of a list query, for the first page newest first.
fn list_filter(query: &ListArticlesQuery) -> ListFilter {
    ListFilter {
        tag: query.tag.clone(),
        author: query.author.clone(),
        source: query.source.clone(),
        published_after: query.published_after.map(|at| at.naive_utc()),
        published_before: query.published_before.map(|at| at.naive_utc()),
        status: query.status.unwrap_or_default().into(),
        ..ListFilter::newest(db::now(), 0)
    }
}

/// The filters that name nothing: given empty (`category=`, as a form's
/// unset field sends it), or a category, tag or author that no category,
/// tag or author has. Each is a problem, all in one answer, as a mistyped
/// one would otherwise read as a list with nothing in it.
fn unknown_names(
    conn: &mut SqliteConnection,
    taxonomy: &Taxonomy,
    names: &Names,
) -> StoreResult<Vec<FieldError>> {
    let mut problems = Vec::new();
    for (name, value) in [
        ("category", &names.category),
        ("tag", &names.tag),
        ("author", &names.author),
        ("source", &names.source),
    ] {
        let Some(value) = value.as_deref() else {
            continue;
        };
        if value.is_empty() {
            problems.push(FieldError::new(Location::Query, name, "must not be empty"));
            continue;
        }
        let found = match name {
            "category" => taxonomy.categories.by_slug(value).is_some(),
            "tag" => taxonomy::find_shown_tag(conn, names.tags_shown, value)?.is_some(),
            "author" => taxonomy::find_author(conn, value)?.is_some(),
            // A source is free text: any names a list, if maybe empty.
            _ => true,
        };
        if !found {
            problems.push(nothing_named(name, value));
        }
    }
    Ok(problems)
}

/// The names a list is filtered by.
#[derive(Debug, Clone)]
struct Names {
    category: Option<String>,
    tag: Option<String>,
    author: Option<String>,
    source: Option<String>,
    /// The tags the request is shown (see [`tags_shown`]): one it is not
    /// shown is as unknown as one that does not exist.
    tags_shown: TagsShown,
}

impl Names {
    /// The names `query` filters by, for `req`; its key is looked up only
    /// when a tag is named.
    async fn of(query: &ListArticlesQuery, req: &HttpRequest) -> AppResult<Self> {
        let tags_shown = match query.tag {
            Some(_) => tags_shown(req).await?,
            None => TagsShown::All,
        };
        Ok(Self {
            category: query.category.clone(),
            tag: query.tag.clone(),
            author: query.author.clone(),
            source: query.source.clone(),
            tags_shown,
        })
    }

    /// Narrows `filter` to the category's subtree; the problems of the
    /// names that name nothing instead, if any (see [`unknown_names`]).
    fn narrow(
        &self,
        conn: &mut SqliteConnection,
        taxonomy: &Taxonomy,
        filter: &mut ListFilter,
    ) -> StoreResult<Vec<FieldError>> {
        let unknown = unknown_names(conn, taxonomy, self)?;
        if unknown.is_empty() {
            filter.category_ids = self
                .category
                .as_deref()
                .map(|slug| taxonomy.categories.subtree_of_slug(slug));
        }
        Ok(unknown)
    }
}

/// Where a page of search results ends.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchPosition {
    /// The query the cursor was made for.
    q: String,
    /// Its filters (see [`filters_key`]).
    f: u64,
    /// Results already shown.
    o: usize,
}

/// The filters of a search, hashed into its cursors: an offset into one
/// filtered result list means nothing in another.
fn filters_key(query: &ListArticlesQuery) -> u64 {
    let mut filters = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        query.category,
        query.tag,
        query.author,
        query.source,
        query.published_after,
        query.published_before
    );
    // Only when not the default, so that cursors made before editors could
    // list drafts still hold.
    if let Some(status) = query
        .status
        .filter(|status| *status != ArticleListStatus::Published)
    {
        filters.push_str(&format!("|{status:?}"));
    }
    xxhash_rust::xxh3::xxh3_64(filters.as_bytes())
}

/// The `q` branch of [`list_articles`]: filtered matches by relevance,
/// offset-paged (within the best [`search::MAX_MATCHES`]).
async fn search_articles(
    state: &AppState,
    req: &HttpRequest,
    q: String,
    query: ListArticlesQuery,
) -> AppResult<HttpResponse> {
    let bad_q = |detail: &str| {
        ApiError::InvalidParameters(vec![FieldError::new(Location::Query, "q", detail)])
    };
    if q.chars().count() > 200 {
        return Err(bad_q("is longer than 200 characters"));
    }
    let expression = search::match_expression(&q).ok_or_else(|| bad_q("has no words"))?;
    if query.sort.is_some() {
        return Err(ApiError::InvalidParameters(vec![FieldError::new(
            Location::Query,
            "sort",
            "does not apply with `q`: search results come most relevant first",
        )]));
    }
    let limit = page_limit(query.limit, 20, 100)? as usize;
    let offset = match query.cursor.as_deref() {
        None => 0,
        Some(cursor) => {
            let position: SearchPosition = cursor::decode(cursor)?;
            if position.q != q || position.f != filters_key(&query) {
                return Err(ApiError::InvalidParameters(vec![FieldError::new(
                    Location::Query,
                    "cursor",
                    "belongs to another search (other words or filters) \
                     or is not a cursor this API returned",
                )]));
            }
            position.o
        }
    };
    let filters = filters_key(&query);
    let mut filter = list_filter(&query);
    let names = Names::of(&query, req).await?;
    let with_total = query.total.unwrap_or(false);
    let cache = Arc::clone(&state.articles);
    let generation = cache.generation();
    let (page, more, total, rows, extras, snippets) = state
        .db
        .read(move |conn| {
            let taxonomy = cache.taxonomy(conn, generation)?;
            let unknown = names.narrow(conn, &taxonomy, &mut filter)?;
            if !unknown.is_empty() {
                return Ok(Err(unknown));
            }
            let ranked = search::matches(conn, &expression)?;
            let ids: Vec<i32> = ranked.iter().map(|(id, _)| *id).collect();
            let visible = articles::matching_among(conn, &filter, &ids)?;
            let ranked: Vec<(i32, f64)> = ranked
                .into_iter()
                .filter(|(id, _)| visible.contains(id))
                .collect();
            let page: Vec<(i32, f64)> = ranked.iter().skip(offset).take(limit).copied().collect();
            let more = ranked.len() > offset + page.len();
            let ids: Vec<i32> = page.iter().map(|(id, _)| *id).collect();
            let (rows, extras) = shown::with_extras(shown::by_ids(conn, &ids)?, taxonomy);
            let snippets = search::snippets(conn, &expression, &ids)?;
            Ok(Ok((
                page,
                more,
                ranked.len() as i64,
                rows,
                extras,
                snippets,
            )))
        })
        .await?
        .map_err(ApiError::InvalidParameters)?;
    let mut by_id: HashMap<i32, ArticleRow> = rows.into_iter().map(|row| (row.id, row)).collect();
    let data = page
        .iter()
        .filter_map(|(id, score)| {
            let mut summary = ArticleSummary::new(by_id.remove(id)?, &extras);
            summary.search = Some(SearchHit {
                score: *score,
                snippet: snippets.get(id).cloned().unwrap_or_default(),
            });
            Some(summary)
        })
        .collect();
    let next_cursor = more.then(|| {
        cursor::encode(&SearchPosition {
            q,
            f: filters,
            o: offset + page.len(),
        })
    });
    let body = ArticleListResponse {
        data,
        meta: ListMeta {
            next_cursor: next_cursor.clone(),
            limit: limit as u32,
            total: with_total.then_some(total),
        },
    };
    Ok(page_response(req, &body, next_cursor.as_deref()))
}

/// List published articles (or, for an editor, drafts or scheduled ones),
/// newest first, or search them.
///
/// Filters combine with AND. Follow `meta.next_cursor` (or the
/// `Link: rel="next"` header) until it is null. The list is keyset-paged:
/// every article of the list appears exactly once, even when several share
/// a timestamp or articles are published or edited meanwhile. A search (`q`) is ranked
/// by relevance and paged by position in that ranking, so an article
/// published or edited between two pages may move a result from one page
/// to the next (shown twice, or not at all); its cursor holds only with the
/// same words and filters.
///
/// An editor's key with the `read-drafts` scope may list `status=draft`
/// (newest first by creation) or `status=scheduled` instead.
#[utoipa::path(
    tag = "articles",
    params(ListArticlesQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of articles", body = ArticleListResponse,
            headers(("Link" = String, description = "RFC 8288 link to the next page, when there is one"))),
        (status = 400, description = "A parameter is invalid, empty, or names a category, tag or author that does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`status` other than `published` without a key, or with a key that is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`status` other than `published` with a key that lacks the `read-drafts` scope", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/articles")]
pub async fn list_articles(
    state: Data<AppState>,
    req: HttpRequest,
    query: Query<ListArticlesQuery>,
) -> AppResult<HttpResponse> {
    let query = query.0;
    let status = query.status.unwrap_or_default();
    may_list(&req, status).await?;
    if let Some(q) = query.q.clone() {
        return search_articles(&state, &req, q, query).await;
    }
    let sort = query.sort.unwrap_or_default();
    let after = query
        .cursor
        .as_deref()
        .map(|c| decode_position(c, sort, status))
        .transpose();
    let (limit, after) = both(page_limit(query.limit, 20, 100), after)?;
    let mut filter = list_filter(&query);
    filter.order = match sort {
        ArticleSort::NewestFirst => Order::NewestFirst,
        ArticleSort::OldestFirst => Order::OldestFirst,
    };
    filter.after = after;
    filter.limit = i64::from(limit) + 1;
    let names = Names::of(&query, &req).await?;
    let with_total = query.total.unwrap_or(false);
    let cache = Arc::clone(&state.articles);
    let generation = cache.generation();
    let (mut rows, extras, total) = state
        .db
        .read(move |conn| {
            let taxonomy = cache.taxonomy(conn, generation)?;
            let unknown = names.narrow(conn, &taxonomy, &mut filter)?;
            if !unknown.is_empty() {
                return Ok(Err(unknown));
            }
            let rows = articles::list(conn, &filter)?;
            let extras = articles::extras_with(conn, &rows, taxonomy)?;
            let total = with_total
                .then(|| articles::count(conn, &filter))
                .transpose()?;
            Ok(Ok((rows, extras, total)))
        })
        .await?
        .map_err(ApiError::InvalidParameters)?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|last| {
            cursor::encode(&Position {
                // Drafts are paged by id alone (see `drafts_in_order`).
                t: last
                    .published_at
                    .map_or(0, |at| at.and_utc().timestamp_micros()),
                i: last.id,
                s: sort,
                st: status,
            })
        })
    } else {
        None
    };
    let body = ArticleListResponse {
        data: rows
            .into_iter()
            .map(|row| ArticleSummary::new(row, &extras))
            .collect(),
        meta: ListMeta {
            next_cursor: next_cursor.clone(),
            limit,
            total,
        },
    };
    Ok(page_response(&req, &body, next_cursor.as_deref()))
}
