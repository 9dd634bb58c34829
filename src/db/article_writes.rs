//! Writing articles: create, replace, upsert by slug, delete. Each function
//! runs inside the caller's transaction, so a failure stores nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::articles::{self as reads, ArticleKey, ArticleRow};
use super::schema::{article_id_mark, article_tags, articles};
use super::search;
use super::taxonomy::{self, CategoryTree};
use super::{Invalid, StoreError, StoreResult, old_slugs, purge};
use crate::content::Status;

mod upsert;
pub use self::upsert::upsert;

/// How an article's slug was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlugChoice {
    /// Given by the client: a clash with another article is a conflict.
    Given(String),
    /// Derived from the title: on create a clash gets a numeric suffix, on
    /// replace the article keeps the slug it has.
    Derived(String),
}

impl SlugChoice {
    /// The slug itself.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Given(slug) | Self::Derived(slug) => slug,
        }
    }
}

/// A validated article, ready to store. Text is already sanitised.
#[derive(Debug, Clone)]
pub struct ArticleWrite {
    pub slug: SlugChoice,
    pub title: String,
    pub summary: String,
    /// The summary was derived from the body, none being given: a new body
    /// derives it again (see [`crate::api::article_input::ArticlePatch`]).
    pub summary_derived: bool,
    pub body_html: String,
    pub word_count: i32,
    pub dateline: Option<String>,
    pub source: Option<String>,
    pub image_url: Option<String>,
    /// Category slug.
    pub category: String,
    /// `(slug, name)` of each tag, in order; unknown tags are created.
    pub tags: Vec<(String, String)>,
    /// Author slug.
    pub author: Option<String>,
    /// Slugs it had before, to add to those it has (see [`old_slugs`]).
    pub old_slugs: Vec<String>,
    pub status: Status,
    /// When it goes public.
    pub published_at: PublishTime,
    pub now: NaiveDateTime,
    /// The feed entry it is imported from: [`upsert`] updates the article
    /// that entry became before, whatever its slug, and keeps that slug.
    /// `None` for writes that do not come from a feed.
    pub feed_entry: Option<FeedEntry>,
}

/// What tells apart two stories under one headline, for a line imported
/// without a slug (see [`upsert`]): the day it was published and its
/// source, when it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Telling {
    pub day: Option<chrono::NaiveDate>,
    /// Lower-cased.
    pub source: Option<String>,
}

impl Telling {
    /// What a write says.
    pub fn of(write: &ArticleWrite) -> Self {
        let day = match write.published_at {
            PublishTime::At(at) => Some(at.date()),
            _ => None,
        };
        Self::new(day, write.source.as_deref())
    }

    pub fn new(day: Option<chrono::NaiveDate>, source: Option<&str>) -> Self {
        Self {
            day,
            source: source.map(str::to_lowercase),
        }
    }

    /// Nothing to tell by: a write with a slug of its own.
    pub fn none() -> Self {
        Self::new(None, None)
    }

    /// True when the two are two stories: published on two days, or by
    /// two sources. What one of them does not say tells nothing.
    pub fn apart(&self, other: &Self) -> bool {
        let days = self.day.zip(other.day).is_some_and(|(a, b)| a != b);
        let sources =
            (self.source.as_ref().zip(other.source.as_ref())).is_some_and(|(a, b)| a != b);
        days || sources
    }
}

/// The feed entry an imported article comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Its id within its feed, as the JSON pair `[feed, entry]` (see
    /// [`crate::transfer`]).
    pub id: String,
    /// A digest of what the entry says, to tell whether it changed since
    /// the last import.
    pub digest: String,
}

/// What a write does to `published_at`. Whatever it is, a published
/// article without one gets `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishTime {
    /// Keep the stored time.
    Keep,
    /// Set this time.
    At(NaiveDateTime),
    /// Remove the stored time.
    Clear,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
    Unchanged,
}

/// The references of a write, resolved to ids.
struct Resolved {
    category_id: i32,
    author_id: Option<i32>,
}

fn resolve(conn: &mut SqliteConnection, write: &ArticleWrite) -> StoreResult<Resolved> {
    let (category_id, author_id, problems) =
        find_taxonomy(conn, &write.category, write.author.as_deref())?;
    match category_id {
        Some(category_id) if problems.is_empty() => Ok(Resolved {
            category_id,
            author_id,
        }),
        _ => Err(StoreError::Invalid(problems)),
    }
}

/// What is wrong with an input's `category` and `author`: each must name
/// one that exists. For an input refused before it reaches the store, so
/// that one answer names every problem.
pub fn unknown_taxonomy(
    conn: &mut SqliteConnection,
    category: &str,
    author: Option<&str>,
) -> StoreResult<Vec<Invalid>> {
    Ok(find_taxonomy(conn, category, author)?.2)
}

/// The ids of `category` and `author`, and a problem for each that does
/// not exist.
fn find_taxonomy(
    conn: &mut SqliteConnection,
    category: &str,
    author: Option<&str>,
) -> StoreResult<(Option<i32>, Option<i32>, Vec<Invalid>)> {
    let mut problems = Vec::new();
    let category_id = CategoryTree::load(conn)?
        .by_slug(category)
        .map(|row| row.id);
    if category_id.is_none() {
        problems.push(Invalid {
            field: "category".into(),
            message: format!("no category has the slug `{category}`"),
        });
    }
    let author_id = match author {
        None => None,
        Some(slug) => {
            let found = taxonomy::find_author(conn, slug)?.map(|row| row.id);
            if found.is_none() {
                problems.push(Invalid {
                    field: "author".into(),
                    message: format!("no author has the slug `{slug}`"),
                });
            }
            found
        }
    };
    Ok((category_id, author_id, problems))
}

pub(super) fn slug_owner(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Option<i32>> {
    Ok(articles::table
        .filter(articles::slug.eq(slug))
        .select(articles::id)
        .get_result(conn)
        .optional()?)
}

fn slug_conflict(slug: &str) -> StoreError {
    StoreError::SlugTaken(format!("An article with the slug `{slug}` exists already."))
}

/// A derived slug that no article has: `slug`, `slug-2`, `slug-3`, ...
fn free_slug(conn: &mut SqliteConnection, slug: &str) -> StoreResult<String> {
    let mut candidate = slug.to_string();
    let mut n = 2;
    while slug_owner(conn, &candidate)?.is_some() {
        candidate = format!("{slug}-{n}");
        n += 1;
    }
    Ok(candidate)
}

fn published_at(write: &ArticleWrite, existing: Option<NaiveDateTime>) -> Option<NaiveDateTime> {
    let chosen = match write.published_at {
        PublishTime::Keep => existing,
        PublishTime::At(at) => Some(at),
        PublishTime::Clear => None,
    };
    chosen.or(match write.status {
        Status::Published => Some(write.now),
        Status::Draft => None,
    })
}

fn store_tags(
    conn: &mut SqliteConnection,
    article_id: i32,
    tags: &[(String, String)],
) -> StoreResult<()> {
    let tag_ids = taxonomy::ensure_tags(conn, tags)?;
    diesel::delete(article_tags::table.filter(article_tags::article_id.eq(article_id)))
        .execute(conn)?;
    let rows: Vec<_> = tag_ids
        .iter()
        .enumerate()
        .map(|(position, tag_id)| {
            (
                article_tags::article_id.eq(article_id),
                article_tags::tag_id.eq(*tag_id),
                article_tags::position.eq(position as i32),
            )
        })
        .collect();
    diesel::insert_into(article_tags::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}

/// Stores a new article; returns its id.
pub fn create(conn: &mut SqliteConnection, write: &ArticleWrite) -> StoreResult<i32> {
    let id = insert(conn, write)?;
    index_for_search(conn, id, write)?;
    Ok(id)
}

/// [`create`] for bulk fills: the article is searchable once
/// [`search::index_pending`] has run, which indexes many at a time.
pub fn create_unindexed(conn: &mut SqliteConnection, write: &ArticleWrite) -> StoreResult<i32> {
    let id = insert(conn, write)?;
    search::defer(conn, id)?;
    Ok(id)
}

fn insert(conn: &mut SqliteConnection, write: &ArticleWrite) -> StoreResult<i32> {
    let refs = resolve(conn, write)?;
    let slug = match &write.slug {
        SlugChoice::Given(slug) if slug_owner(conn, slug)?.is_some() => {
            return Err(slug_conflict(slug));
        }
        SlugChoice::Given(slug) => slug.clone(),
        SlugChoice::Derived(slug) => free_slug(conn, slug)?,
    };
    // Past every id any article ever had (see `article_id_mark`): caches
    // keyed by id must never take a new article for a deleted one.
    let newest: Option<i32> = articles::table
        .select(diesel::dsl::max(articles::id))
        .get_result(conn)?;
    let deleted: i32 = article_id_mark::table
        .select(article_id_mark::last_deleted)
        .get_result(conn)?;
    let id = diesel::insert_into(articles::table)
        .values((
            articles::id.eq(newest.unwrap_or(0).max(deleted) + 1),
            articles::slug.eq(&slug),
            articles::created_at.eq(write.now),
            articles::published_at.eq(published_at(write, None)),
            content_columns(write, &refs, write.now),
        ))
        .returning(articles::id)
        .get_result(conn)?;
    old_slugs::taken(conn, &slug)?;
    old_slugs::given(conn, id, &write.old_slugs)?;
    store_tags(conn, id, &write.tags)?;
    Ok(id)
}

type ContentColumns<'a> = (
    diesel::dsl::Eq<articles::title, &'a str>,
    diesel::dsl::Eq<articles::summary, &'a str>,
    diesel::dsl::Eq<articles::summary_derived, bool>,
    diesel::dsl::Eq<articles::body_html, &'a str>,
    diesel::dsl::Eq<articles::word_count, i32>,
    diesel::dsl::Eq<articles::dateline, Option<&'a str>>,
    diesel::dsl::Eq<articles::source, Option<&'a str>>,
    diesel::dsl::Eq<articles::image_url, Option<&'a str>>,
    diesel::dsl::Eq<articles::category_id, i32>,
    diesel::dsl::Eq<articles::author_id, Option<i32>>,
    diesel::dsl::Eq<articles::status, &'static str>,
    diesel::dsl::Eq<articles::updated_at, NaiveDateTime>,
);

/// The columns a create and a replace both set.
fn content_columns<'a>(
    write: &'a ArticleWrite,
    refs: &Resolved,
    updated_at: NaiveDateTime,
) -> ContentColumns<'a> {
    (
        articles::title.eq(write.title.as_str()),
        articles::summary.eq(write.summary.as_str()),
        articles::summary_derived.eq(write.summary_derived),
        articles::body_html.eq(write.body_html.as_str()),
        articles::word_count.eq(write.word_count),
        articles::dateline.eq(write.dateline.as_deref()),
        articles::source.eq(write.source.as_deref()),
        articles::image_url.eq(write.image_url.as_deref()),
        articles::category_id.eq(refs.category_id),
        articles::author_id.eq(refs.author_id),
        articles::status.eq(write.status.as_str()),
        articles::updated_at.eq(updated_at),
    )
}

/// Replaces every field of article `id`; returns whether anything changed.
/// An identical write touches nothing, not even `updated_at`.
pub fn replace(conn: &mut SqliteConnection, id: i32, write: &ArticleWrite) -> StoreResult<bool> {
    let current = reads::find(conn, &ArticleKey::Id(id))?.ok_or(StoreError::NotFound)?;
    let refs = resolve(conn, write)?;
    let slug = match &write.slug {
        SlugChoice::Given(slug) => match slug_owner(conn, slug)? {
            Some(owner) if owner != id => return Err(slug_conflict(slug)),
            _ => slug.clone(),
        },
        SlugChoice::Derived(_) => current.slug.clone(),
    };
    // Not part of what the article shows: kept even when nothing else changes.
    old_slugs::given(conn, id, &write.old_slugs)?;
    if slug == current.slug && is_unchanged(conn, &current, &refs, write)? {
        return Ok(false);
    }
    diesel::update(articles::table.find(id))
        .set((
            articles::slug.eq(&slug),
            articles::published_at.eq(published_at(write, current.published_at)),
            // Times are kept to the second: a change within the second of
            // the last one still moves `updated_at` (a second on), which
            // is how the Related index and `Last-Modified` tell versions
            // apart.
            content_columns(
                write,
                &refs,
                write
                    .now
                    .max(current.updated_at + chrono::TimeDelta::seconds(1)),
            ),
        ))
        .execute(conn)?;
    if slug != current.slug {
        old_slugs::moved(conn, id, &current.slug, &slug)?;
    }
    store_tags(conn, id, &write.tags)?;
    index_for_search(conn, id, write)?;
    Ok(true)
}

/// Whether `write` would store what `current` holds already: its
/// columns, tags and body.
fn is_unchanged(
    conn: &mut SqliteConnection,
    current: &ArticleRow,
    refs: &Resolved,
    write: &ArticleWrite,
) -> StoreResult<bool> {
    let id = current.id;
    let extras = reads::extras(conn, std::slice::from_ref(current))?;
    let tags: Vec<Option<i32>> = extras
        .tags
        .get(&id)
        .into_iter()
        .flatten()
        .map(|tag| Some(tag.id))
        .collect();
    let mut wanted_tags = Vec::with_capacity(write.tags.len());
    for tag in taxonomy::find_tags(conn, &write.tags)? {
        // A new tag is a change (`None` never matches a stored one).
        if tag.is_none() || !wanted_tags.contains(&tag) {
            wanted_tags.push(tag);
        }
    }
    Ok(current.title == write.title
        && current.summary == write.summary
        && current.summary_derived == write.summary_derived
        && current.word_count == write.word_count
        && current.dateline == write.dateline
        && current.source == write.source
        && current.image_url == write.image_url
        && current.category_id == refs.category_id
        && current.author_id == refs.author_id
        && current.status == write.status.as_str()
        && current.published_at == published_at(write, current.published_at)
        && tags == wanted_tags
        && reads::body(conn, id)? == write.body_html)
}

/// Fails with [`StoreError::Changed`] unless article `id` was last changed
/// at `expected` (when a conditional write names a version: see
/// [`crate::api::preconditions`]), so that a write between the check and
/// this transaction is not written over.
pub fn unchanged_since(
    conn: &mut SqliteConnection,
    id: i32,
    expected: Option<NaiveDateTime>,
) -> StoreResult<()> {
    if expected.is_none() {
        return Ok(());
    }
    let updated_at: NaiveDateTime = articles::table
        .find(id)
        .select(articles::updated_at)
        .get_result(conn)?;
    same_version(updated_at, expected)
}

/// [`unchanged_since`] for an article whose `updated_at` was read already.
pub fn same_version(updated_at: NaiveDateTime, expected: Option<NaiveDateTime>) -> StoreResult<()> {
    match expected {
        Some(expected) if expected != updated_at => Err(StoreError::Changed),
        _ => Ok(()),
    }
}

/// Deletes an article with its tag links and engagement; its views are
/// removed afterwards, in the background (see [`purge`]).
pub fn delete(conn: &mut SqliteConnection, id: i32) -> StoreResult<()> {
    match diesel::delete(articles::table.find(id)).execute(conn)? {
        0 => Err(StoreError::NotFound),
        _ => {
            search::remove(conn, id)?;
            purge::record(conn, id)
        }
    }
}

fn index_for_search(conn: &mut SqliteConnection, id: i32, write: &ArticleWrite) -> StoreResult<()> {
    search::index(conn, id, &write.title, &write.summary, &write.body_html)
}
