//! Reading articles: lookups and the rows that go with them; the
//! keyset-paged lists are in `list`.

mod list;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::in_ids::InIdsExt;
use super::schema::{article_tags, articles, tags};
use super::stored_time::{MaybeStoredTime, StoredTime};
use super::taxonomy::{self, AuthorRow, CategoryTree, TagRow};
use super::{StoreResult, engagement};
use crate::content::Status;

pub use self::list::{ListFilter, Listed, Order, count, list, matching_among};

/// An article without its body: everything a list shows.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = articles)]
pub struct ArticleRow {
    pub id: i32,
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub dateline: Option<String>,
    pub source: Option<String>,
    pub image_url: Option<String>,
    pub category_id: i32,
    pub author_id: Option<i32>,
    pub status: String,
    #[diesel(deserialize_as = MaybeStoredTime)]
    pub published_at: Option<NaiveDateTime>,
    #[diesel(deserialize_as = StoredTime)]
    pub created_at: NaiveDateTime,
    #[diesel(deserialize_as = StoredTime)]
    pub updated_at: NaiveDateTime,
    pub word_count: i32,
    /// The summary was derived from the body (none was given).
    pub summary_derived: bool,
}

/// How a request names an article.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArticleKey {
    Id(i32),
    Slug(String),
}

impl ArticleKey {
    /// An id as it is written (digits, no leading zero) is an id; anything
    /// else is a slug.
    pub fn parse(id_or_slug: &str) -> Self {
        // Only an id as it is written (`42`, not `042`): each article has
        // one URL by id, and no slug is all digits.
        match id_or_slug.parse::<i32>() {
            Ok(id)
                if id_or_slug.bytes().all(|b| b.is_ascii_digit())
                    && id.to_string() == id_or_slug =>
            {
                Self::Id(id)
            }
            _ => Self::Slug(id_or_slug.to_string()),
        }
    }
}

/// The article with this id or slug, whatever its status.
pub fn find(conn: &mut SqliteConnection, key: &ArticleKey) -> StoreResult<Option<ArticleRow>> {
    // Not boxed, so that SQLite reuses the prepared statements.
    let query = articles::table.select(ArticleRow::as_select());
    let found = match key {
        ArticleKey::Id(id) => query.filter(articles::id.eq(*id)).get_result(conn),
        ArticleKey::Slug(slug) => query.filter(articles::slug.eq(slug)).get_result(conn),
    };
    Ok(found.optional()?)
}

/// When the article `key` names was last written, if there is one.
pub fn last_written(
    conn: &mut SqliteConnection,
    key: &ArticleKey,
) -> StoreResult<Option<NaiveDateTime>> {
    let query = articles::table.select(articles::updated_at);
    let found = match key {
        ArticleKey::Id(id) => query.filter(articles::id.eq(*id)).get_result(conn),
        ArticleKey::Slug(slug) => query.filter(articles::slug.eq(slug)).get_result(conn),
    };
    Ok(found.optional()?)
}

/// Articles public readers can see at `now`: published, and due. Every
/// public read of the store filters by this one rule (and
/// `ArticleSummary::is_public` is its form for an article in memory).
#[diesel::dsl::auto_type]
pub fn public_at(now: NaiveDateTime) -> _ {
    let published: &'static str = Status::Published.as_str();
    articles::status
        .eq(published)
        .and(articles::published_at.le(now))
}

/// The id of the article `key` names, if public readers can see it at `now`.
/// Written without boxing so that SQLite reuses the prepared statement: it
/// runs on every view.
pub fn visible_id(
    conn: &mut SqliteConnection,
    key: &ArticleKey,
    now: NaiveDateTime,
) -> StoreResult<Option<i32>> {
    let visible = public_at(now);
    let found = match key {
        ArticleKey::Id(id) => articles::table
            .filter(articles::id.eq(*id))
            .filter(visible)
            .select(articles::id)
            .get_result(conn),
        ArticleKey::Slug(slug) => articles::table
            .filter(articles::slug.eq(slug))
            .filter(visible)
            .select(articles::id)
            .get_result(conn),
    };
    Ok(found.optional()?)
}

/// The sanitised HTML bodies of the articles with these ids.
pub fn bodies(conn: &mut SqliteConnection, ids: &[i32]) -> StoreResult<HashMap<i32, String>> {
    Ok(articles::table
        .filter(articles::id.in_ids(ids))
        .select((articles::id, articles::body_html))
        .load::<(i32, String)>(conn)?
        .into_iter()
        .collect())
}

/// The sanitised HTML body of an article.
pub fn body(conn: &mut SqliteConnection, id: i32) -> StoreResult<String> {
    Ok(articles::table
        .find(id)
        .select(articles::body_html)
        .get_result(conn)?)
}

/// What the wire forms of all articles share and only a content write
/// changes: the category tree and the reaction kinds. Cheap to clone, so
/// that it can be kept for many loads.
#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    pub categories: Arc<CategoryTree>,
    /// Reaction kinds, in display order.
    pub reaction_kinds: Arc<[engagement::KindRow]>,
}

impl Taxonomy {
    pub fn load(conn: &mut SqliteConnection) -> StoreResult<Self> {
        let categories = CategoryTree::load(conn)?;
        Self::with_categories(conn, categories)
    }

    /// The taxonomy around a category tree already loaded.
    pub fn with_categories(
        conn: &mut SqliteConnection,
        categories: CategoryTree,
    ) -> StoreResult<Self> {
        Ok(Self {
            categories: Arc::new(categories),
            reaction_kinds: engagement::kinds(conn)?.into(),
        })
    }
}

/// The rows an article's wire form needs besides its own.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub categories: Arc<CategoryTree>,
    pub tags: HashMap<i32, Vec<TagRow>>,
    pub authors: HashMap<i32, AuthorRow>,
    /// Reaction kinds, in display order.
    pub reaction_kinds: Arc<[engagement::KindRow]>,
    /// Engagement counters per article (see [`engagement::counts`]).
    pub counts: HashMap<i32, HashMap<String, i64>>,
}

/// Loads, in a few queries, what `rows` need to be shown.
pub fn extras(conn: &mut SqliteConnection, rows: &[ArticleRow]) -> StoreResult<Extras> {
    let taxonomy = Taxonomy::load(conn)?;
    extras_with(conn, rows, taxonomy)
}

/// Like [`extras`], with the taxonomy already loaded.
pub fn extras_with(
    conn: &mut SqliteConnection,
    rows: &[ArticleRow],
    taxonomy: Taxonomy,
) -> StoreResult<Extras> {
    let ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
    let author_ids: Vec<i32> = rows.iter().filter_map(|row| row.author_id).collect();
    let tagged: Vec<(i32, TagRow)> = article_tags::table
        .inner_join(tags::table)
        .filter(article_tags::article_id.in_ids(&ids))
        .order((article_tags::article_id, article_tags::position))
        .select((article_tags::article_id, TagRow::as_select()))
        .load(conn)?;
    let mut tags: HashMap<i32, Vec<TagRow>> = HashMap::new();
    for (article_id, tag) in tagged {
        tags.entry(article_id).or_default().push(tag);
    }
    Ok(Extras {
        categories: taxonomy.categories,
        tags,
        authors: taxonomy::authors_by_id(conn, &author_ids)?,
        counts: engagement::counts(conn, &ids)?,
        reaction_kinds: taxonomy.reaction_kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_article_has_one_url_by_id() {
        assert_eq!(ArticleKey::parse("42"), ArticleKey::Id(42));
        assert_eq!(ArticleKey::parse("0"), ArticleKey::Id(0));
        for slug in ["042", "+42", "99999999999", "budget-2026"] {
            assert_eq!(ArticleKey::parse(slug), ArticleKey::Slug(slug.into()));
        }
    }
}
