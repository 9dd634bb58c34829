//! How a connection to the store is set up (pragmas, the writer's own
//! connection, a read-only one for commands that only read), and the
//! checks, copies and statistics run on the file.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::CustomizeConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryResult, RunQueryDsl};

use super::{StoreError, StoreResult, schema};

/// How long a connection waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pragmas of every connection. None syncs at commit: readers never commit,
/// and the writer's commits are made durable by syncing the write-ahead log
/// before they are acknowledged (see [`super::writer`]).
fn connection_pragmas(cache_kib: u32) -> String {
    format!(
        "PRAGMA busy_timeout = {};
         PRAGMA foreign_keys = ON;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA mmap_size = {MMAP_BYTES};",
        BUSY_TIMEOUT.as_millis()
    )
}

/// How much of the database file each connection maps into memory: all of
/// it, up to a terabyte (see `.cargo/config.toml`, which lifts SQLite's
/// 2 GiB cap). Mapped pages are the kernel's page cache, shared by every
/// connection and not the process's own memory; a page read through the map
/// costs no system call and no copy.
const MMAP_BYTES: u64 = 1 << 40;

/// Page cache of each reader: the database file is also memory-mapped, so
/// this holds pages read from the write-ahead log. With 64 MiB, four readers added 250 MB to a
/// million-article server and served random articles no faster.
const READER_CACHE_KIB: u32 = 16_384;
/// Page cache of the writer. Small on purpose: SQLite scans the whole cache's
/// hash table at every commit that split a b-tree page, which with a 64 MiB
/// cache cost more than a tenth of the writer's time.
const WRITER_CACHE_KIB: u32 = 8_192;

/// Applies the reader pragmas whenever the pool opens a connection.
#[derive(Debug)]
pub(super) struct ReaderPragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ReaderPragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&connection_pragmas(READER_CACHE_KIB))
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens a connection that writes.
pub(super) fn open_writer(url: &str) -> StoreResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(url)
        .map_err(|error| StoreError::Internal(format!("opening the writer: {error}")))?;
    conn.batch_execute(&connection_pragmas(WRITER_CACHE_KIB))?;
    Ok(conn)
}

/// Opens the database file at `path` in SQLite's read-only mode: a command
/// that only reads (a backup, an export) cannot write to the store, so a
/// server on it does not take the command for another process's writes
/// and drop its caches. Only the connection's own pragmas are set: nothing
/// in the file is migrated or changed.
///
/// With no other connection open, SQLite creates the write-ahead log and
/// its index beside the file and, read-only, cannot remove them: run such
/// commands as the user the server runs as.
pub fn open_read_only(path: &Path) -> anyhow::Result<SqliteConnection> {
    let url = read_only_uri(path)
        .with_context(|| format!("database path {} is not UTF-8", path.display()))?;
    let mut conn = SqliteConnection::establish(&url)
        .with_context(|| format!("opening {} to read it", path.display()))?;
    conn.batch_execute(&connection_pragmas(READER_CACHE_KIB))
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(conn)
}

/// Writes a consistent copy of the whole database `conn` reads to the new
/// file `path` (`VACUUM INTO`: one read transaction, so writers carry on).
pub fn backup_to(conn: &mut SqliteConnection, path: &str) -> StoreResult<()> {
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(path)
        .execute(conn)?;
    Ok(())
}

/// The `file:` URI that opens `path` read-only. The characters a URI gives
/// a meaning (`%`, `?`, `#`) are escaped in the path, and an absolute path
/// follows an empty authority (`file://`), so that one starting `//` is not
/// read as naming a host.
fn read_only_uri(path: &Path) -> Option<String> {
    let absolute = path.has_root();
    let path = path.to_str()?;
    let mut uri = String::from(if absolute { "file://" } else { "file:" });
    for c in path.chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=ro");
    Some(uri)
}

/// Runs SQLite's `integrity_check` on the database file at `path`, opened
/// read-only so that checking a backup leaves it as it was; returns how
/// many articles it holds when the check is `ok`.
pub fn check_integrity(path: &Path) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = open_read_only(path)?;
    let check: Check = diesel::sql_query("PRAGMA integrity_check").get_result(&mut conn)?;
    anyhow::ensure!(
        check.integrity_check == "ok",
        "integrity check failed: {}",
        check.integrity_check
    );
    Ok(diesel::QueryDsl::count(schema::articles::table).get_result(&mut conn)?)
}

/// Refreshes the query planner's table statistics, keeping only the summary
/// ones (`sqlite_stat1`). The bundled SQLite also gathers per-value samples
/// (`sqlite_stat4`); with those, every statement that compares an indexed
/// column to a bound value is compiled again whenever the value changes, which
/// made a quarter of the writer's time SQL parsing.
pub(super) fn refresh_statistics(conn: &mut SqliteConnection) -> QueryResult<()> {
    // Each table is analysed from a sample of about a thousand rows per
    // index rather than a full scan: a million-article store's first start
    // otherwise spent seconds here before it answered.
    conn.batch_execute("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002")?;
    let samples: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat4')",
    ))
    .get_result(conn)?;
    if samples {
        // Reloading the statistics makes connections opened later see the change.
        conn.batch_execute("DELETE FROM sqlite_stat4; ANALYZE sqlite_schema;")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::BigInt;

    use super::*;
    use crate::db::Db;

    #[test]
    fn a_read_only_uri_names_the_file_whatever_its_path() {
        let uri = |path: &str| read_only_uri(Path::new(path)).unwrap();
        assert_eq!(uri("data/frontpage.db"), "file:data/frontpage.db?mode=ro");
        assert_eq!(uri("/srv/news.db"), "file:///srv/news.db?mode=ro");
        assert_eq!(uri("//srv/news.db"), "file:////srv/news.db?mode=ro");
        assert_eq!(
            uri("/tmp/a b/50%?#1.db"),
            "file:///tmp/a b/50%25%3f%231.db?mode=ro"
        );
        // Opened for real: each names the file it was made from.
        let dir = tempfile::TempDir::new().unwrap();
        for name in ["plain.db", "50%?#1.db"] {
            let path = dir.path().join(name);
            Db::open(&path, 1).unwrap();
            let doubled = format!("/{}", path.display());
            for path in [path.clone(), std::path::PathBuf::from(doubled)] {
                let mut conn = open_read_only(&path).unwrap();
                let tables: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
                    "(SELECT count(*) FROM sqlite_schema WHERE name = 'articles')",
                ))
                .get_result(&mut conn)
                .unwrap();
                assert_eq!(tables, 1, "{}", path.display());
            }
        }
    }

    #[derive(diesel::QueryableByName)]
    struct MmapSize {
        #[diesel(sql_type = BigInt)]
        mmap_size: i64,
    }

    /// SQLite quietly caps `mmap_size` at its build's limit: this fails if
    /// the build options of `.cargo/config.toml` were not applied.
    #[test]
    fn readers_map_the_whole_store_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("store.db"), 1).unwrap();
        let mapped = db
            .lookup(|conn| Ok(diesel::sql_query("PRAGMA mmap_size").get_result::<MmapSize>(conn)?))
            .unwrap();
        assert_eq!(mapped.mmap_size, MMAP_BYTES as i64);
    }
}
