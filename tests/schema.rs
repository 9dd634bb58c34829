//! `src/db/schema.rs`, which Diesel's queries are checked against at
//! compile time, says what the migrations make: every table it declares has
//! those columns, no others, each nullable as declared. After a migration,
//! update it by hand or with `diesel print-schema`.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use frontpage::db::Db;
use regex::Regex;

#[derive(QueryableByName, Debug, PartialEq)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[test]
fn the_schema_module_matches_the_migrated_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    drop(Db::open(&path, 1).expect("a migrated store"));
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();

    let declared = include_str!("../src/db/schema.rs");
    let table = Regex::new(r"table!\s*\{\s*(\w+)\s*\([^)]*\)\s*\{([^}]*)\}").unwrap();
    let column = Regex::new(r"(\w+)\s*->\s*(Nullable<)?\w+").unwrap();
    let mut tables = 0;
    for found in table.captures_iter(declared) {
        tables += 1;
        let name = &found[1];
        let mut expected: Vec<(String, bool)> = column
            .captures_iter(&found[2])
            .map(|c| (c[1].to_string(), c.get(2).is_some()))
            .collect();
        let mut actual: Vec<(String, bool)> = diesel::sql_query(format!(
            "SELECT name, \"notnull\", pk FROM pragma_table_info('{name}')"
        ))
        .load::<Column>(&mut conn)
        .unwrap()
        .into_iter()
        // SQLite lets an INTEGER PRIMARY KEY be written NULL (it
        // picks the next id), but never stores one.
        .map(|c| (c.name, c.notnull == 0 && c.pk == 0))
        .collect();
        assert!(
            !actual.is_empty(),
            "no table `{name}` in the migrated store"
        );
        expected.sort();
        actual.sort();
        assert_eq!(
            expected, actual,
            "`{name}` in src/db/schema.rs (left) against the migrations (right): (column, nullable)"
        );
    }
    assert!(tables >= 20, "read {tables} tables from schema.rs");
}
