//! `column IN (ids)` whose SQL text does not depend on how many ids there are
//! (and the same for text keys).
//!
//! Diesel's `eq_any` writes one bind per id, so every list length is a new
//! statement that SQLite parses and plans again, and Diesel never caches it.
//! On the read path that parsing cost more than the lookups. [`InIds`] binds
//! the whole list as one JSON array and lets SQLite's `json_each` unpack it:
//! one statement text, prepared once per connection. A single id is
//! compared with `=` instead: SQLite builds a temporary index for every
//! `IN (SELECT ...)` it runs, which cost more than the lookup of one
//! article (a tenth of an uncached article read at a million articles).

use diesel::expression::{AppearsOnTable, Expression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Integer, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, SelectableExpression};

/// `column IN (ids)`, as one bound JSON array, or `column = id`.
#[derive(Debug, Clone)]
pub struct InIds<C> {
    column: C,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    Id(i32),
    Key(String),
    /// Any other number of them, as a JSON array.
    Json(String),
}

/// Adds [`InIds`] to integer columns.
pub trait InIdsExt: Expression<SqlType = Integer> + Sized {
    /// This column is one of `ids` (none when `ids` is empty).
    fn in_ids(self, ids: &[i32]) -> InIds<Self> {
        let values = match ids {
            [id] => Values::Id(*id),
            _ => Values::Json(serde_json::to_string(ids).expect("integers serialise")),
        };
        InIds {
            column: self,
            values,
        }
    }
}

impl<C: Expression<SqlType = Integer>> InIdsExt for C {}

/// Adds [`InIds`] to text columns.
pub trait InTextsExt: Expression<SqlType = Text> + Sized {
    /// This column is one of `keys` (none when `keys` is empty).
    fn in_texts<K: AsRef<str>>(self, keys: &[K]) -> InIds<Self> {
        let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
        let values = match keys[..] {
            [key] => Values::Key(key.to_owned()),
            _ => Values::Json(serde_json::to_string(&keys).expect("strings serialise")),
        };
        InIds {
            column: self,
            values,
        }
    }
}

impl<C: Expression<SqlType = Text>> InTextsExt for C {}

impl<C> Expression for InIds<C> {
    type SqlType = Bool;
}

impl<C: AppearsOnTable<QS>, QS> AppearsOnTable<QS> for InIds<C> {}

impl<C: SelectableExpression<QS>, QS> SelectableExpression<QS> for InIds<C> {}

impl<C: ValidGrouping<()>> ValidGrouping<()> for InIds<C> {
    type IsAggregate = C::IsAggregate;
}

impl<C> QueryId for InIds<C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C: QueryFragment<Sqlite>> QueryFragment<Sqlite> for InIds<C> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        match &self.values {
            Values::Id(id) => {
                out.push_sql(" = ");
                out.push_bind_param::<Integer, _>(id)?;
            }
            Values::Key(key) => {
                out.push_sql(" = ");
                out.push_bind_param::<Text, _>(key)?;
            }
            Values::Json(values) => {
                out.push_sql(" IN (SELECT value FROM json_each(");
                out.push_bind_param::<Text, _>(values)?;
                out.push_sql("))");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::{InIdsExt, InTextsExt};
    use crate::db::schema::categories;

    #[test]
    fn matches_exactly_the_listed_ids_and_none_for_an_empty_list() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE categories (id INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query("INSERT INTO categories (id) VALUES (1), (2), (3), (4)")
            .execute(&mut conn)
            .unwrap();
        let found = |conn: &mut SqliteConnection, ids: &[i32]| -> Vec<i32> {
            categories::table
                .filter(categories::id.in_ids(ids))
                .select(categories::id)
                .order(categories::id)
                .load(conn)
                .unwrap()
        };
        assert_eq!(found(&mut conn, &[4, 2, 9]), vec![2, 4]);
        assert_eq!(found(&mut conn, &[]), Vec::<i32>::new());
        assert_eq!(found(&mut conn, &[1, 1, 3]), vec![1, 3]);
        assert_eq!(found(&mut conn, &[3]), vec![3]);
        assert_eq!(found(&mut conn, &[9]), Vec::<i32>::new());
    }

    #[test]
    fn matches_exactly_the_listed_keys() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE categories (id INTEGER PRIMARY KEY, slug TEXT)")
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query("INSERT INTO categories (id, slug) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            .execute(&mut conn)
            .unwrap();
        let found = |conn: &mut SqliteConnection, keys: &[&str]| -> Vec<i32> {
            categories::table
                .filter(categories::slug.in_texts(keys))
                .select(categories::id)
                .order(categories::id)
                .load(conn)
                .unwrap()
        };
        assert_eq!(found(&mut conn, &["c", "a", "z"]), vec![1, 3]);
        assert_eq!(found(&mut conn, &["b"]), vec![2]);
        assert_eq!(found(&mut conn, &["z"]), Vec::<i32>::new());
        assert_eq!(found(&mut conn, &[]), Vec::<i32>::new());
    }
}
