//! Lists of articles: filters, and keyset paging newest or oldest first.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::dsl::AsSelect;
use diesel::prelude::*;
use diesel::sqlite::{Sqlite, SqliteConnection};

use super::{ArticleRow, public_at};
use crate::content::Status;
use crate::db::StoreResult;
use crate::db::in_ids::InIdsExt;
use crate::db::schema::{article_tags, articles, authors, tags};

/// Which articles a list holds by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Listed {
    /// Published, and due: what readers see.
    #[default]
    Visible,
    /// Published with a `published_at` still to come.
    Scheduled,
    /// Drafts, newest (by id) first.
    Drafts,
}

/// Which way a list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// What a list asks for. Empty filters match every article of its status
/// (visible at `now`, unless an editor asks for others).
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub now: NaiveDateTime,
    /// Which articles by status: what readers see, unless an editor asks.
    pub status: Listed,
    /// A category and all below it; `Some(vec![])` matches nothing.
    pub category_ids: Option<Vec<i32>>,
    pub tag: Option<String>,
    pub author: Option<String>,
    pub source: Option<String>,
    /// Inclusive.
    pub published_after: Option<NaiveDateTime>,
    /// Exclusive.
    pub published_before: Option<NaiveDateTime>,
    pub order: Order,
    /// The `(published_at, id)` of the last item of the previous page (of
    /// drafts, only the id counts).
    pub after: Option<(NaiveDateTime, i32)>,
    pub limit: i64,
}

impl ListFilter {
    /// Every article visible at `now`, newest first, `limit` at a time.
    pub fn newest(now: NaiveDateTime, limit: i64) -> Self {
        Self {
            now,
            status: Listed::Visible,
            category_ids: None,
            tag: None,
            author: None,
            source: None,
            published_after: None,
            published_before: None,
            order: Order::NewestFirst,
            after: None,
            limit,
        }
    }
}

/// One page of the filter's articles in `(published_at, id)` order (drafts
/// by id).
pub fn list(conn: &mut SqliteConnection, filter: &ListFilter) -> StoreResult<Vec<ArticleRow>> {
    Ok(list_query(filter).load(conn)?)
}

/// Which of `ids` have the filter's status and match it (its paging aside).
pub fn matching_among(
    conn: &mut SqliteConnection,
    filter: &ListFilter,
    ids: &[i32],
) -> StoreResult<HashSet<i32>> {
    Ok(filtered(filter)
        .filter(articles::id.in_ids(ids))
        .select(articles::id)
        .load::<i32>(conn)?
        .into_iter()
        .collect())
}

/// How many articles of the filter's status match it, ignoring its paging.
pub fn count(conn: &mut SqliteConnection, filter: &ListFilter) -> StoreResult<i64> {
    Ok(filtered(filter)
        .select(diesel::dsl::count_star())
        .get_result(conn)?)
}

type ListQuery = articles::BoxedQuery<'static, Sqlite, AsSelect<ArticleRow, Sqlite>>;

/// Articles of the filter's status (visible ones, unless an editor asks)
/// matching its filters, in no order and unpaged.
fn filtered(filter: &ListFilter) -> articles::BoxedQuery<'static, Sqlite> {
    use articles::dsl as a;
    let mut query = match filter.status {
        Listed::Visible => a::articles.filter(public_at(filter.now)).into_boxed(),
        Listed::Scheduled => a::articles
            .filter(a::status.eq(Status::Published.as_str()))
            .filter(a::published_at.gt(filter.now))
            .into_boxed(),
        Listed::Drafts => a::articles
            .filter(a::status.eq(Status::Draft.as_str()))
            .into_boxed(),
    };
    if let Some(ids) = &filter.category_ids {
        query = query.filter(a::category_id.in_ids(ids));
    }
    if let Some(tag) = &filter.tag {
        let tagged = article_tags::table
            .inner_join(tags::table)
            .filter(tags::slug.eq(tag.clone()))
            .select(article_tags::article_id);
        query = query.filter(a::id.eq_any(tagged));
    }
    if let Some(author) = &filter.author {
        let author_ids = authors::table
            .filter(authors::slug.eq(author.clone()))
            .select(authors::id);
        query = query.filter(a::author_id.eq_any(author_ids.nullable()));
    }
    if let Some(source) = &filter.source {
        query = query.filter(a::source.eq(source.clone()));
    }
    if let Some(after) = filter.published_after {
        query = query.filter(a::published_at.ge(after));
    }
    if let Some(before) = filter.published_before {
        query = query.filter(a::published_at.lt(before));
    }
    query
}

fn list_query(filter: &ListFilter) -> ListQuery {
    use articles::dsl as a;
    let mut query = filtered(filter).select(ArticleRow::as_select());
    if filter.status == Listed::Drafts {
        return drafts_in_order(query, filter);
    }
    // The redundant bound on published_at lets SQLite seek instead of filter.
    query = match (filter.order, filter.after) {
        (Order::NewestFirst, Some((at, id))) => query
            .filter(a::published_at.le(at))
            .filter(a::published_at.lt(at).or(a::id.lt(id))),
        (Order::OldestFirst, Some((at, id))) => query
            .filter(a::published_at.ge(at))
            .filter(a::published_at.gt(at).or(a::id.gt(id))),
        (_, None) => query,
    };
    query = match filter.order {
        Order::NewestFirst => query.order((a::published_at.desc(), a::id.desc())),
        Order::OldestFirst => query.order((a::published_at.asc(), a::id.asc())),
    };
    query.limit(filter.limit)
}

/// A page of drafts in id order, newest first unless asked otherwise
/// (found by the status index, then sorted: drafts are few). A draft need
/// not have a date, and a key that changes with every edit
/// (`updated_at`) would move a draft edited meanwhile behind the cursor of
/// an editor paging through: ids never change, nor are they reused.
fn drafts_in_order(mut query: ListQuery, filter: &ListFilter) -> ListQuery {
    use articles::dsl as a;
    query = match (filter.order, filter.after) {
        (Order::NewestFirst, Some((_, id))) => query.filter(a::id.lt(id)),
        (Order::OldestFirst, Some((_, id))) => query.filter(a::id.gt(id)),
        (_, None) => query,
    };
    query = match filter.order {
        Order::NewestFirst => query.order(a::id.desc()),
        Order::OldestFirst => query.order(a::id.asc()),
    };
    query.limit(filter.limit)
}

#[cfg(test)]
mod tests {
    use diesel::query_builder::{AstPass, QueryFragment, QueryId};
    use diesel::sql_types::{Integer, Text};

    use super::*;
    use crate::db::Db;

    /// `EXPLAIN QUERY PLAN` in front of a query.
    struct Explain<Q>(Q);

    impl<Q> QueryId for Explain<Q> {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for Explain<Q> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
            out.push_sql("EXPLAIN QUERY PLAN ");
            self.0.walk_ast(out.reborrow())
        }
    }

    impl<Q> diesel::query_builder::Query for Explain<Q> {
        type SqlType = (Integer, Integer, Integer, Text);
    }

    impl<Q> RunQueryDsl<SqliteConnection> for Explain<Q> {}

    fn plan(conn: &mut SqliteConnection, filter: &ListFilter) -> Vec<String> {
        let rows: Vec<(i32, i32, i32, String)> = Explain(list_query(filter)).load(conn).unwrap();
        rows.into_iter().map(|(_, _, _, detail)| detail).collect()
    }

    #[test]
    fn every_list_query_walks_an_index_instead_of_scanning_articles() {
        let dir = tempfile::TempDir::new().unwrap();
        Db::open(&dir.path().join("plan.db"), 1).unwrap();
        let url = dir.path().join("plan.db");
        let mut conn =
            <SqliteConnection as diesel::Connection>::establish(url.to_str().unwrap()).unwrap();
        // The store's threads may still hold a lock for a moment as they stop.
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA busy_timeout = 5000",
        )
        .unwrap();
        let now = crate::db::now();
        let base = ListFilter {
            after: Some((now, 10)),
            ..ListFilter::newest(now, 21)
        };
        let filters = [
            base.clone(),
            ListFilter {
                order: Order::OldestFirst,
                ..base.clone()
            },
            ListFilter {
                category_ids: Some(vec![1]),
                ..base.clone()
            },
            ListFilter {
                category_ids: Some(vec![1, 2, 3]),
                ..base.clone()
            },
            ListFilter {
                tag: Some("t".into()),
                ..base.clone()
            },
            ListFilter {
                author: Some("a".into()),
                ..base.clone()
            },
            ListFilter {
                source: Some("s".into()),
                ..base.clone()
            },
            ListFilter {
                published_after: Some(now),
                published_before: Some(now),
                ..base.clone()
            },
            ListFilter {
                status: Listed::Scheduled,
                ..base.clone()
            },
            ListFilter {
                status: Listed::Drafts,
                ..base.clone()
            },
        ];
        for filter in &filters {
            let plan = plan(&mut conn, filter);
            assert!(
                plan.iter().all(|step| !step.starts_with("SCAN articles")
                    && !step.starts_with("SCAN article_tags")),
                "{filter:?} scans: {plan:#?}"
            );
        }
    }
}
