//! Syndication: RSS 2.0, Atom and JSON Feed 1.1 documents of the latest
//! articles, of a category's latest, and of the ranking, with absolute links
//! built from `FRONTPAGE_PUBLIC_BASE_URL`. RSS and Atom are written by the
//! `rss` and `atom_syndication` crates; JSON Feed is a few serde structs
//! (see `render`).

mod render;

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use self::render::{Entry, Feed, JsonFeed};
use super::articles::ArticleSummary;
use super::ranking::ranking;
use crate::db;
use crate::db::articles::{self, ListFilter};
use crate::error::{ApiError, AppResult, Problem};
use crate::state::AppState;

/// Items in every feed.
const FEED_ITEMS: u32 = 30;

/// Where feed links point.
#[derive(Debug, Clone)]
pub struct FeedLinks {
    /// The site's name, the feeds' titles start with it.
    pub site_name: String,
    /// Where this server is reached from outside, without a trailing slash.
    pub base_url: String,
    /// An article's public address: `{slug}` and `{id}` are filled in.
    pub article_url: String,
    /// The path of `base_url` (`/news-api` of `https://example.com/news-api`,
    /// where a proxy serves this server), without a trailing slash.
    path_prefix: String,
}

impl FeedLinks {
    pub fn new(site_name: String, base_url: String, article_url: String) -> Self {
        let path_prefix = url::Url::parse(&base_url)
            .map(|url| url.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        Self {
            site_name,
            base_url,
            article_url,
            path_prefix,
        }
    }

    /// `path` (from the root of this server) as clients reach it: behind
    /// the path of the base URL. Used for every `Link` and `Location` of
    /// the API, not only feeds'.
    pub fn public_path(&self, path: &str) -> String {
        format!("{}{path}", self.path_prefix)
    }

    /// The path a proxy serves this server at (`/news-api`), or `""`.
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// What names `article` in feeds for good (see [`Entry::id`]).
    fn article_id(&self, article: &ArticleSummary) -> String {
        format!("{}/api/v1/articles/{}", self.base_url, article.id)
    }

    fn article(&self, article: &ArticleSummary) -> String {
        self.article_url
            .replace("{base}", &self.base_url)
            .replace("{slug}", &article.slug)
            .replace("{id}", &article.id.to_string())
    }
}

/// The document format, from the path's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedFormat {
    /// RSS 2.0, `application/rss+xml`.
    Rss,
    /// Atom 1.0, `application/atom+xml`.
    Atom,
    /// JSON Feed 1.1, `application/feed+json`.
    Json,
}

impl FeedFormat {
    fn content_type(self) -> &'static str {
        match self {
            Self::Rss => "application/rss+xml; charset=utf-8",
            Self::Atom => "application/atom+xml; charset=utf-8",
            Self::Json => "application/feed+json; charset=utf-8",
        }
    }
}

/// The format of a feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FeedPath {
    /// `rss`, `atom` or `json`.
    #[param(inline)]
    pub format: FeedFormat,
}

/// A category's feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CategoryFeedPath {
    /// The category's slug; its sub-categories' articles are included.
    #[param(example = "news")]
    pub slug: String,
    /// `rss`, `atom` or `json`.
    #[param(inline)]
    pub format: FeedFormat,
}

/// The feed's entries for these articles, in their order, with bodies.
async fn entries(state: &AppState, articles: Vec<ArticleSummary>) -> AppResult<Vec<Entry>> {
    let ids: Vec<i32> = articles.iter().map(|article| article.id).collect();
    let mut bodies: HashMap<i32, String> = state
        .db
        .read(move |conn| articles::bodies(conn, &ids))
        .await?;
    let links = &state.feed_links;
    Ok(articles
        .into_iter()
        .map(|article| Entry {
            url: links.article(&article),
            id: links.article_id(&article),
            body_html: bodies.remove(&article.id).unwrap_or_default(),
            article,
        })
        .collect())
}

/// The newest visible articles, of a category subtree when given; `None`
/// when no category has that slug.
async fn newest(state: &AppState, category: Option<String>) -> AppResult<Option<Newest>> {
    let cache = Arc::clone(&state.articles);
    let generation = cache.generation();
    Ok(state
        .db
        .read(move |conn| {
            let taxonomy = cache.taxonomy(conn, generation)?;
            let mut filter = ListFilter::newest(db::now(), i64::from(FEED_ITEMS));
            let mut category_name = None;
            if let Some(slug) = category {
                let tree = &taxonomy.categories;
                let Some(found) = tree.by_slug(&slug) else {
                    return Ok(None);
                };
                category_name = Some(found.name.clone());
                filter.category_ids = Some(tree.subtree_of_slug(&slug));
            }
            let rows = articles::list(conn, &filter)?;
            let extras = articles::extras_with(conn, &rows, taxonomy)?;
            Ok(Some(Newest {
                category_name,
                articles: rows
                    .into_iter()
                    .map(|row| ArticleSummary::new(row, &extras))
                    .collect(),
            }))
        })
        .await?)
}

/// The newest articles of the site or of a category.
struct Newest {
    /// The category's name, if one was asked for.
    category_name: Option<String>,
    articles: Vec<ArticleSummary>,
}

/// The latest articles as a feed.
///
/// The 30 newest published articles, with their summaries and full bodies,
/// as RSS 2.0, Atom or JSON Feed 1.1. Links are absolute, built from
/// `FRONTPAGE_PUBLIC_BASE_URL` and `FRONTPAGE_ARTICLE_URL`.
#[utoipa::path(
    tag = "syndication",
    params(FeedPath),
    responses(
        (status = 200, description = "The feed", content(
            (String = "application/rss+xml"),
            (String = "application/atom+xml"),
            (JsonFeed = "application/feed+json"),
        )),
        (status = 404, description = "The extension is not rss, atom or json", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/feeds/latest.{format}")]
pub async fn latest_feed(state: Data<AppState>, path: Path<FeedPath>) -> AppResult<HttpResponse> {
    let format = path.format;
    let articles = newest(&state, None)
        .await?
        .map(|newest| newest.articles)
        .unwrap_or_default();
    let site = &state.feed_links.site_name;
    let about = (
        format!("{site}: latest"),
        format!("The newest articles of {site}."),
    );
    serve(&state, about, "latest", format, articles).await
}

/// A category's latest articles as a feed.
///
/// The 30 newest published articles of the category and every category
/// below it, as RSS 2.0, Atom or JSON Feed 1.1.
#[utoipa::path(
    tag = "syndication",
    params(CategoryFeedPath),
    responses(
        (status = 200, description = "The feed", content(
            (String = "application/rss+xml"),
            (String = "application/atom+xml"),
            (JsonFeed = "application/feed+json"),
        )),
        (status = 404, description = "No category has this slug, or the extension is not rss, atom or json", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/feeds/category/{slug}.{format}")]
pub async fn category_feed(
    state: Data<AppState>,
    path: Path<CategoryFeedPath>,
) -> AppResult<HttpResponse> {
    let CategoryFeedPath { slug, format } = path.into_inner();
    let newest = newest(&state, Some(slug.clone()))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("No category has the slug `{slug}`.")))?;
    let site = &state.feed_links.site_name;
    let name = newest.category_name.unwrap_or_else(|| slug.clone());
    let about = (
        format!("{site}: {name}"),
        format!("The newest articles of {site} in {name}."),
    );
    let feed = format!("category/{slug}");
    serve(&state, about, &feed, format, newest.articles).await
}

/// The ranking as a feed.
///
/// The ranking with its default parameters (trending over 24 hours), best
/// first, 30 articles, as RSS 2.0, Atom or JSON Feed 1.1.
#[utoipa::path(
    tag = "syndication",
    params(FeedPath),
    responses(
        (status = 200, description = "The feed", content(
            (String = "application/rss+xml"),
            (String = "application/atom+xml"),
            (JsonFeed = "application/feed+json"),
        )),
        (status = 404, description = "The extension is not rss, atom or json", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/feeds/ranking.{format}")]
pub async fn ranking_feed(state: Data<AppState>, path: Path<FeedPath>) -> AppResult<HttpResponse> {
    let format = path.format;
    let ranked = ranking(
        &state,
        Default::default(),
        Default::default(),
        None,
        FEED_ITEMS,
    )
    .await?;
    let articles = ranked
        .data
        .iter()
        .map(|item| item.article.to_summary())
        .collect();
    let site = &state.feed_links.site_name;
    let about = (
        format!("{site}: most read"),
        format!("What readers of {site} read most now."),
    );
    serve(&state, about, "ranking", format, articles).await
}

/// Answers with the feed `/feeds/{name}.{format}` of these articles, with
/// its title and description.
async fn serve(
    state: &AppState,
    (title, description): (String, String),
    name: &str,
    format: FeedFormat,
    articles: Vec<ArticleSummary>,
) -> AppResult<HttpResponse> {
    let feed = Feed {
        title,
        description,
        self_url: format!(
            "{}/feeds/{name}.{}",
            state.feed_links.base_url,
            extension(format)
        ),
        entries: entries(state, articles).await?,
    };
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(feed.render(format, &state.feed_links)))
}

fn extension(format: FeedFormat) -> &'static str {
    match format {
        FeedFormat::Rss => "rss",
        FeedFormat::Atom => "atom",
        FeedFormat::Json => "json",
    }
}
