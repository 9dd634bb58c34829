//! Statements that take all their rows as one bound JSON array.
//!
//! Diesel writes a multi-row `INSERT` with one bind per value, so every row
//! count is a new statement text that SQLite parses and plans again and that
//! Diesel never caches. On the engagement writer, which commits a handful of
//! views at a time, that parsing cost as much as the writing. A [`JsonRows`]
//! statement has one fixed text that unpacks its rows with `json_each`, so
//! it is prepared once per connection.

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{QueryResult, RunQueryDsl};
use serde::Serialize;

/// A fixed statement whose one bind (`?`) is a JSON array of rows.
#[derive(Debug)]
pub struct JsonRows {
    before: &'static str,
    rows: String,
    after: &'static str,
}

impl JsonRows {
    /// `sql` with its single `?` bound to `rows` as a JSON array.
    ///
    /// # Panics
    /// When `sql` does not hold exactly one `?`: a programming error.
    pub fn new<R: Serialize>(sql: &'static str, rows: &[R]) -> Self {
        let (before, after) = sql.split_once('?').expect("the statement has a bind");
        assert!(!after.contains('?'), "the statement has one bind");
        let rows = serde_json::to_string(rows).expect("rows serialise");
        Self {
            before,
            rows,
            after,
        }
    }

    /// Runs the statement; returns the rows it changed.
    pub fn run(self, conn: &mut SqliteConnection) -> QueryResult<usize> {
        self.execute(conn)
    }
}

impl QueryId for JsonRows {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Sqlite> for JsonRows {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql(self.before);
        out.push_bind_param::<Text, _>(&self.rows)?;
        out.push_sql(self.after);
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for JsonRows {}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::JsonRows;

    #[test]
    fn inserts_every_row_and_upserts_with_one_statement_text() {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        diesel::sql_query("CREATE TABLE sums (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
            .execute(&mut conn)
            .unwrap();
        let upsert = "INSERT INTO sums (k, n) SELECT value ->> 0, value ->> 1 \
                      FROM json_each(?) WHERE true \
                      ON CONFLICT (k) DO UPDATE SET n = n + excluded.n";
        let first = JsonRows::new(upsert, &[("a", 1), ("b", 2)]).run(&mut conn);
        assert_eq!(first, Ok(2));
        let second = JsonRows::new(upsert, &[("b", 5), ("c", 7), ("it's", 1)]).run(&mut conn);
        assert_eq!(second, Ok(3));
        assert_eq!(
            JsonRows::new(upsert, &[] as &[(&str, i32)]).run(&mut conn),
            Ok(0)
        );
        let sums: Vec<(String, i32)> = diesel::sql_query("SELECT k, n FROM sums ORDER BY k")
            .load::<Sum>(&mut conn)
            .unwrap()
            .into_iter()
            .map(|row| (row.k, row.n))
            .collect();
        let expected = [("a", 1), ("b", 7), ("c", 7), ("it's", 1)];
        assert_eq!(sums, expected.map(|(k, n)| (k.to_string(), n)));
    }

    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = diesel::sql_types::Text)]
        k: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        n: i32,
    }
}
