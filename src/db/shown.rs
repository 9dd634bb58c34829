//! Articles with everything their wire form needs besides the taxonomy (see
//! [`super::articles::Taxonomy`]), read with one statement.
//!
//! Shown from the store, an article took a read transaction and four
//! statements: its row, its tags, its author and its counters. At a million
//! articles, where most reads miss the article cache, their statements'
//! overhead and the transaction's `BEGIN` and `COMMIT` were a third of a
//! request. Here the tags and the counters come back as JSON from
//! correlated subqueries and the author from a join: one statement, which
//! sees one snapshot without a transaction of its own.

use std::collections::HashMap;

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Integer, Nullable, Text, Timestamp};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{OptionalExtension, QueryResult, RunQueryDsl};

use super::StoreResult;
use super::articles::{ArticleKey, ArticleRow, Extras, Taxonomy};
use super::taxonomy::{AuthorRow, TagRow};

/// An article as [`find`] and [`by_ids`] read it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub row: ArticleRow,
    /// Only from [`find`].
    pub body_html: Option<String>,
    /// In the order the editor gave them.
    pub tags: Vec<TagRow>,
    pub author: Option<AuthorRow>,
    /// Engagement counters by name (see [`super::engagement::counts`]).
    pub counts: HashMap<String, i64>,
}

/// The article `key` names, with its body.
pub fn find(conn: &mut SqliteConnection, key: &ArticleKey) -> StoreResult<Option<Shown>> {
    let which = match key {
        ArticleKey::Id(id) => Which::Id(*id),
        ArticleKey::Slug(slug) => Which::Slug(slug.clone()),
    };
    let query = ShownQuery { which, body: true };
    query
        .get_result::<Columns>(conn)
        .optional()?
        .map(shown)
        .transpose()
}

/// The articles with these ids that exist, without their bodies, in no
/// particular order.
pub fn by_ids(conn: &mut SqliteConnection, ids: &[i32]) -> StoreResult<Vec<Shown>> {
    let which = match ids {
        [] => return Ok(Vec::new()),
        [id] => Which::Id(*id),
        _ => {
            // Each id once, as the statement reads one article per entry;
            // in order, so that the lookups walk the table in order too.
            let mut ids = ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
            Which::Ids(serde_json::to_string(&ids).expect("integers serialise"))
        }
    };
    let query = ShownQuery { which, body: false };
    query
        .load::<Columns>(conn)?
        .into_iter()
        .map(shown)
        .collect()
}

/// The rows of `shown`, with the [`Extras`] their wire forms need (take
/// the bodies first).
pub fn with_extras(shown: Vec<Shown>, taxonomy: Taxonomy) -> (Vec<ArticleRow>, Extras) {
    let mut extras = Extras {
        categories: taxonomy.categories,
        reaction_kinds: taxonomy.reaction_kinds,
        ..Extras::default()
    };
    let rows = shown
        .into_iter()
        .map(|shown| {
            let id = shown.row.id;
            if let Some(author) = shown.author {
                extras.authors.insert(author.id, author);
            }
            extras.tags.insert(id, shown.tags);
            extras.counts.insert(id, shown.counts);
            shown.row
        })
        .collect();
    (rows, extras)
}

/// One article's row and body, with the [`Extras`] its wire form needs.
pub fn one_with_extras(mut shown: Shown, taxonomy: Taxonomy) -> (ArticleRow, String, Extras) {
    let body_html = shown.body_html.take().unwrap_or_default();
    let (mut rows, extras) = with_extras(vec![shown], taxonomy);
    let row = rows.pop().expect("one article in, one row out");
    (row, body_html, extras)
}

/// The row as loaded: the article's own columns, then its body (or null),
/// its tags as JSON, its author's columns and its counters as JSON.
type Columns = (
    ArticleRow,
    (
        Option<String>,
        String,
        Option<i32>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    ),
);

fn shown(
    (row, (body_html, tags, author_id, slug, name, bio, counts)): Columns,
) -> StoreResult<Shown> {
    let mut tags: Vec<(i32, String, String, i32)> = json(&tags)?;
    tags.sort_unstable_by_key(|(.., position)| *position);
    let author = match (author_id, slug, name) {
        (Some(id), Some(slug), Some(name)) => Some(AuthorRow {
            id,
            slug,
            name,
            bio,
        }),
        _ => None,
    };
    Ok(Shown {
        row,
        body_html,
        tags: tags
            .into_iter()
            .map(|(id, slug, name, _)| TagRow { id, slug, name })
            .collect(),
        author,
        counts: json(&counts)?,
    })
}

/// A column SQLite built as JSON, decoded.
fn json<T: serde::de::DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|error| diesel::result::Error::DeserializationError(error.into()).into())
}

/// Which articles a [`ShownQuery`] reads.
enum Which {
    Id(i32),
    Slug(String),
    /// A JSON array of ids: one statement text for any number of them.
    Ids(String),
}

/// One fixed text per [`Which`] and body or not, so SQLite prepares each once
/// per connection (Diesel caches a statement by its text).
struct ShownQuery {
    which: Which,
    body: bool,
}

/// The columns of [`ArticleRow`], in its order.
const ROW: &str = "SELECT a.id, a.slug, a.title, a.summary, a.dateline, a.source, a.image_url, \
     a.category_id, a.author_id, a.status, a.published_at, a.created_at, a.updated_at, \
     a.word_count, a.summary_derived, ";

/// Tags, author and counters, then the tables and the start of the filter.
/// `json_group_array` and `json_group_object` give `[]` and `{}` for none.
/// The tags come with their positions, put in order by [`shown`]: an aggregate's
/// `ORDER BY` opened a temporary B-tree for every article read (a tenth of
/// the CPU of a read that misses the article cache).
const EXTRAS: &str = ", (SELECT json_group_array(json_array(t.id, t.slug, t.name, g.position)) \
       FROM article_tags g JOIN tags t ON t.id = g.tag_id WHERE g.article_id = a.id), \
     au.id, au.slug, au.name, au.bio, \
     (SELECT json_group_object(c.counter, c.count) FROM article_counts c \
       WHERE c.article_id = a.id) \
     FROM ";

/// One article, its author joined.
const ARTICLE: &str = "articles a LEFT JOIN authors au ON au.id = a.author_id WHERE ";

/// The articles a JSON array of ids, bound between these two, names: each
/// looked up by its id as the array is read (`a.id IN (SELECT ...)` copied
/// the ids into a temporary B-tree first).
const LISTED_FROM: &str = "json_each(";
const LISTED_JOIN: &str = ") j CROSS JOIN articles a ON a.id = j.value \
     LEFT JOIN authors au ON au.id = a.author_id";

impl QueryId for ShownQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for ShownQuery {
    type SqlType = (
        (
            Integer,
            Text,
            Text,
            Text,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Text>,
            Integer,
            Nullable<Integer>,
            Text,
            Nullable<Timestamp>,
            Timestamp,
            Timestamp,
            Integer,
            Bool,
        ),
        (
            Nullable<Text>,
            Text,
            Nullable<Integer>,
            Nullable<Text>,
            Nullable<Text>,
            Nullable<Text>,
            Text,
        ),
    );
}

impl QueryFragment<Sqlite> for ShownQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(ROW);
        out.push_sql(if self.body { "a.body_html" } else { "NULL" });
        out.push_sql(EXTRAS);
        match &self.which {
            Which::Id(id) => {
                out.push_sql(ARTICLE);
                out.push_sql("a.id = ");
                out.push_bind_param::<Integer, _>(id)?;
            }
            Which::Slug(slug) => {
                out.push_sql(ARTICLE);
                out.push_sql("a.slug = ");
                out.push_bind_param::<Text, _>(slug)?;
            }
            Which::Ids(ids) => {
                out.push_sql(LISTED_FROM);
                out.push_bind_param::<Text, _>(ids)?;
                out.push_sql(LISTED_JOIN);
            }
        }
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for ShownQuery {}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use diesel_migrations::MigrationHarness;

    use super::*;

    /// Two articles: one with two tags given out of id order, an author and
    /// counters; one with none of them.
    fn store() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.run_pending_migrations(crate::db::MIGRATIONS).unwrap();
        conn.batch_execute(
            "INSERT INTO categories (id, slug, name, position) VALUES (1, 'news', 'News', 0);
             INSERT INTO authors (id, slug, name, bio) VALUES (3, 'ana', 'Ana Ruiz', 'Port reporter');
             INSERT INTO tags (id, slug, name) VALUES (1, 'port', 'Port'), (2, 'strike', 'Strike');
             INSERT INTO articles (id, slug, title, summary, body_html, category_id, author_id,
                 status, published_at, created_at, updated_at, word_count)
             VALUES (7, 'strike', 'Strike', 'Dockers out.', '<p>Day one.</p>', 1, 3,
                 'published', '2026-01-01 08:00:00', '2026-01-01 07:00:00',
                 '2026-01-02 09:30:00.250', 3),
                    (8, 'quiet', 'Quiet', 'Nothing.', '<p>Calm.</p>', 1, NULL,
                 'draft', NULL, '2026-01-03 00:00:00', '2026-01-03 00:00:00', 1);
             INSERT INTO article_tags (article_id, tag_id, position) VALUES (7, 2, 0), (7, 1, 1);
             INSERT INTO article_counts (article_id, counter, count)
             VALUES (7, 'view', 186), (7, 'very_good', 4);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn one_statement_reads_the_row_body_tags_in_order_author_and_counters() {
        let mut conn = store();
        let found = find(&mut conn, &ArticleKey::Slug("strike".into()))
            .unwrap()
            .unwrap();
        assert_eq!(found.row.id, 7);
        assert_eq!(found.body_html.as_deref(), Some("<p>Day one.</p>"));
        let tags: Vec<&str> = found.tags.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(tags, ["strike", "port"]);
        let author = found.author.unwrap();
        assert_eq!((author.id, author.name.as_str()), (3, "Ana Ruiz"));
        assert_eq!(author.bio.as_deref(), Some("Port reporter"));
        assert_eq!(found.counts["view"], 186);
        assert_eq!(found.counts["very_good"], 4);
        assert_eq!(found.row.updated_at.to_string(), "2026-01-02 09:30:00.250");

        let bare = find(&mut conn, &ArticleKey::Id(8)).unwrap().unwrap();
        assert!(bare.tags.is_empty() && bare.author.is_none() && bare.counts.is_empty());
        assert_eq!(bare.row.published_at, None);
        assert!(find(&mut conn, &ArticleKey::Id(9)).unwrap().is_none());
    }

    #[test]
    fn many_at_once_leave_out_bodies_and_missing_ids() {
        let mut conn = store();
        for ids in [&[8, 9, 7][..], &[7][..], &[7, 8, 7][..]] {
            let mut found = by_ids(&mut conn, ids).unwrap();
            found.sort_by_key(|shown| shown.row.id);
            let got: Vec<i32> = found.iter().map(|shown| shown.row.id).collect();
            let mut want: Vec<i32> = ids.iter().copied().filter(|id| *id != 9).collect();
            want.sort_unstable();
            want.dedup();
            assert_eq!(got, want);
            assert!(found.iter().all(|shown| shown.body_html.is_none()));
            assert_eq!(found.iter().find(|s| s.row.id == 7).unwrap().tags.len(), 2);
        }
        assert!(by_ids(&mut conn, &[]).unwrap().is_empty());
    }
}
