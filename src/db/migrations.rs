//! The store's schema: this version's migrations, applied only to a file
//! that is a frontpage store (or empty) and no newer than this version.

use std::collections::BTreeSet;

use diesel::migration::MigrationSource;
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{QueryableByName, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The schema's migrations, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Diesel's record of the migrations a file has had.
const RECORD: &str = "__diesel_schema_migrations";

/// Applies this version's pending migrations to `conn`'s file and says how
/// many it applied; for a file [`check_schema`] found is one to migrate.
pub fn migrate(conn: &mut SqliteConnection) -> anyhow::Result<usize> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(|error| anyhow::anyhow!("running migrations: {error}"))?;
    Ok(applied.len())
}

/// Refuses a file that holds another application's tables and no record of
/// migrations (migrating it would add frontpage's tables beside them, or
/// fail halfway on a name both use), and a store with migrations this
/// version does not know: a newer version wrote it, and this one would
/// read and write its tables as they were.
pub fn check_schema(conn: &mut SqliteConnection) -> anyhow::Result<()> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let tables: Vec<String> = diesel::sql_query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .load::<Name>(conn)?
    .into_iter()
    .map(|table| table.name)
    .collect();
    if !tables.iter().any(|table| table == RECORD) {
        anyhow::ensure!(
            tables.is_empty(),
            "it is not a frontpage database: it holds another application's tables ({}) \
             and no record of frontpage's migrations; give frontpage a new file",
            tables
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(());
    }
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let known: BTreeSet<String> = MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
        .map_err(|error| anyhow::anyhow!("reading the compiled-in migrations: {error}"))?
        .iter()
        .map(|migration| migration.name().version().to_string())
        .collect();
    let unknown: Vec<String> = diesel::sql_query(format!("SELECT version FROM {RECORD}"))
        .load::<Version>(conn)?
        .into_iter()
        .map(|applied| applied.version)
        .filter(|version| !known.contains(version))
        .collect();
    anyhow::ensure!(
        unknown.is_empty(),
        "it has migration {}, which this version of frontpage does not know: a newer \
         version wrote it (run that one, or restore a backup this one made), or it is \
         another application's database",
        unknown.join(", ")
    );
    Ok(())
}
