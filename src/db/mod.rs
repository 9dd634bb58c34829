//! The SQLite store: connection pools, pragmas, embedded migrations, and one
//! module of plain synchronous query functions per table group.
//!
//! Reads go through a pool of connections on the blocking thread pool; writes
//! through the single [`writer`] thread, which group-commits them, so writers
//! never fight over SQLite's one write lock. The async side reaches both
//! through [`Db::read`] and [`Db::write`]; neither blocks an async worker.
//!
//! Point lookups use `get_result`, never `first`: `first` adds `LIMIT ?`, and
//! SQLite compiles a statement with a bound `LIMIT` again every time it runs,
//! so the statement cache would not help.

pub mod article_writes;
pub mod articles;
pub mod changes;
pub mod engagement;
pub mod in_ids;
pub mod json_rows;
pub mod keys;
pub mod purge;
pub mod schema;
pub mod search;
pub mod shown;
pub mod stored_time;
pub mod taxonomy;
pub mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryResult, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use self::changes::Changes;
use self::engagement::{Tally, Uncounted};
use self::writer::{Durability, Writer};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a connection waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read waits for a pooled connection before it is told to retry.
const POOL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a short lookup waits for a pooled connection: it waits on an
/// async worker, which answers nothing else meanwhile.
const LOOKUP_TIMEOUT: Duration = Duration::from_millis(250);
/// Reads that may be waiting for a connection or running, per connection;
/// past that, a read is refused at once (503) rather than queued.
const PENDING_READS_PER_CONNECTION: usize = 64;

/// Counts the reads handed to the blocking pool and refuses new ones past a
/// bound, so that a flood of slow reads cannot queue without limit.
struct ReadQueue {
    pending: AtomicUsize,
    max: usize,
}

/// A read's place in the [`ReadQueue`], given back when dropped.
struct ReadTicket(Arc<ReadQueue>);

impl ReadQueue {
    fn enter(queue: &Arc<Self>) -> StoreResult<ReadTicket> {
        let pending = queue.pending.fetch_add(1, Ordering::AcqRel);
        let ticket = ReadTicket(Arc::clone(queue));
        if pending >= queue.max {
            return Err(StoreError::Busy(format!(
                "{pending} reads are already waiting"
            )));
        }
        Ok(ticket)
    }
}

impl Drop for ReadTicket {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;

/// What can go wrong in the store, in terms the HTTP layer can translate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist (or is not visible).
    #[error("not found")]
    NotFound,
    /// A unique key is taken; the message says which.
    #[error("{0}")]
    Conflict(String),
    /// Input refers to rows that do not exist, or would break the model.
    #[error("invalid input")]
    Invalid(Vec<Invalid>),
    /// No connection could be had in time.
    #[error("database busy: {0}")]
    Busy(String),
    /// A blocking task died before it could answer.
    #[error("internal: {0}")]
    Internal(String),
    /// Anything else the database said.
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// One field of an input that the store rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The input field, e.g. `category`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl StoreError {
    /// A rejection of a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Invalid {
            field: field.into(),
            message: message.into(),
        }])
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        Self::Busy(error.to_string())
    }
}

/// The current time as stored: UTC, to the second.
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)))
}

/// Results of store functions.
pub type StoreResult<T> = Result<T, StoreError>;

/// Pragmas of every connection. None syncs at commit: readers never commit,
/// and the writer's commits are made durable by syncing the write-ahead log
/// before they are acknowledged (see [`writer`]).
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
struct ReaderPragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ReaderPragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&connection_pragmas(READER_CACHE_KIB))
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens a connection that writes.
fn open_writer(url: &str) -> StoreResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(url)
        .map_err(|error| StoreError::Internal(format!("opening the writer: {error}")))?;
    conn.batch_execute(&connection_pragmas(WRITER_CACHE_KIB))?;
    Ok(conn)
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
    let url = format!("file:{}?mode=ro", path.display());
    let mut conn = SqliteConnection::establish(&url)
        .with_context(|| format!("opening {} to check it", path.display()))?;
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
fn refresh_statistics(conn: &mut SqliteConnection) -> QueryResult<()> {
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

/// The store: a pool of readers and a single writer over one database file.
#[derive(Clone)]
pub struct Db {
    read: SqlitePool,
    read_queue: Arc<ReadQueue>,
    writer: Writer<Tally>,
    changes: Arc<Changes>,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, switches it to WAL,
    /// applies any pending migrations and starts the writer. View totals are
    /// written with the views.
    pub fn open(path: &Path, readers: u32) -> anyhow::Result<Self> {
        Self::open_with_view_lag(path, readers, Duration::ZERO)
    }

    /// [`Db::open`], with view totals and buckets that may trail the views
    /// by up to `view_lag` (counted a few times a second rather than with
    /// every commit, which a busy writer can ill afford).
    pub fn open_with_view_lag(
        path: &Path,
        readers: u32,
        view_lag: Duration,
    ) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database folder {}", parent.display()))?;
        }
        let url = path
            .to_str()
            .with_context(|| format!("database path {} is not UTF-8", path.display()))?
            .to_string();
        // WAL is a property of the file: set it, and migrate, before anything else opens it.
        let mut setup = open_writer(&url)
            .with_context(|| format!("opening the database {}", path.display()))?;
        setup
            .batch_execute("PRAGMA journal_mode = WAL;")
            .context("switching the database to WAL")?;
        setup
            .run_pending_migrations(MIGRATIONS)
            .map_err(|error| anyhow::anyhow!("running migrations: {error}"))?;
        let indexed = search::index_pending(&mut setup).context("indexing articles for search")?;
        if indexed > 0 {
            tracing::info!(articles = indexed, "indexed stored articles for search");
        }
        // One transaction: another process's writer may count the same views
        // at the same time, and a crash halfway would count them twice.
        let counted = setup
            .immediate_transaction(engagement::count_views)
            .context("counting the views stored after the last count")?;
        tracing::debug!(through = counted, "view totals are up to date");
        refresh_statistics(&mut setup).context("refreshing the query planner's statistics")?;

        let read = Pool::builder()
            .max_size(readers.max(1))
            .min_idle(Some(1))
            .connection_timeout(POOL_TIMEOUT)
            // A connection to a local file does not go stale; checking it
            // would cost a query on every read.
            .test_on_check_out(false)
            .connection_customizer(Box::new(ReaderPragmas))
            .build(ConnectionManager::<SqliteConnection>::new(&url))
            .context("opening the read pool")?;
        // Closed only now that the pool holds a connection: the last
        // connection to close checkpoints the log and waits for the file to
        // reach the disk, which took 5 s to start a freshly copied or filled
        // million-article store (the checkpoint thread does it later).
        drop(setup);
        let durability = Durability::SyncWal {
            wal: format!("{url}-wal").into(),
            checkpoint: {
                let url = url.clone();
                Box::new(move || open_writer(&url))
            },
        };
        let changes = Arc::new(Changes::default());
        let writer = Writer::start(
            Box::new(move || {
                let mut conn = open_writer(&url)?;
                conn.batch_execute("PRAGMA wal_autocheckpoint = 0")?;
                Ok(conn)
            }),
            durability,
            Uncounted::with_lag(view_lag)
                .counted_through(counted)
                .telling(Arc::clone(&changes)),
        )
        .context("starting the writer")?;
        let read_queue = Arc::new(ReadQueue {
            pending: AtomicUsize::new(0),
            max: readers.max(1) as usize * PENDING_READS_PER_CONNECTION,
        });
        Ok(Self {
            read,
            read_queue,
            writer,
            changes,
        })
    }

    /// What the writer has said of its commits and of other processes'.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// True when the database answers and no migration is pending.
    pub fn is_ready(&self) -> StoreResult<bool> {
        let mut conn = self.read.get()?;
        diesel::sql_query("SELECT 1").execute(&mut conn)?;
        let pending = conn.has_pending_migration(MIGRATIONS).map_err(|error| {
            StoreError::Internal(format!("reading the migration table: {error}"))
        })?;
        Ok(!pending)
    }

    /// Runs read-only work on a pooled reader, off the async workers.
    pub async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let ticket = ReadQueue::enter(&self.read_queue)?;
        let pool = self.read.clone();
        blocking(move || {
            let _ticket = ticket;
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
    }

    /// A short read (a few indexed lookups) on the calling thread, even an
    /// async worker: handing it to the blocking pool and back costs more than
    /// the read itself. Anything that scans or sorts goes through [`Db::read`].
    /// The lookups share one read transaction: they see one snapshot, and
    /// SQLite takes its locks once instead of once per statement.
    pub fn lookup<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T>,
    {
        let mut conn = self.read.get_timeout(LOOKUP_TIMEOUT)?;
        let conn: &mut SqliteConnection = &mut conn;
        conn.transaction(work)
    }

    /// [`Db::lookup`] of a single statement, which needs no transaction of
    /// its own to see one snapshot.
    pub fn lookup_one<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T>,
    {
        let mut conn = self.read.get_timeout(LOOKUP_TIMEOUT)?;
        work(&mut conn)
    }

    /// Writes a consistent copy of the whole database to the new file
    /// `path` (`VACUUM INTO`: one read transaction, so writers carry on).
    pub fn backup_to(&self, path: &str) -> StoreResult<()> {
        self.read_blocking(|conn| {
            diesel::sql_query("VACUUM INTO ?")
                .bind::<diesel::sql_types::Text, _>(path)
                .execute(conn)?;
            Ok(())
        })
    }

    /// Read connections open, and how many of them are idle.
    pub fn read_pool(&self) -> (u32, u32) {
        let state = self.read.state();
        (state.connections, state.idle_connections)
    }

    /// The most read connections the pool opens.
    pub fn read_pool_size(&self) -> u32 {
        self.read.max_size()
    }

    /// Reads waiting for a connection or running (see [`Db::read`]).
    pub fn pending_reads(&self) -> usize {
        self.read_queue.pending.load(Ordering::Acquire)
    }

    /// Most reads that may wait or run at once; past that [`Db::read`] is
    /// `Busy` at once.
    pub fn max_pending_reads(&self) -> usize {
        self.read_queue.max
    }

    /// Writes waiting for the writer.
    pub fn queued_writes(&self) -> usize {
        self.writer.queued()
    }

    /// Waits until every write queued before this call has committed: for a
    /// clean shutdown.
    pub async fn flush(&self) -> StoreResult<()> {
        self.write(|_| Ok(())).await
    }

    /// [`Db::read`] for code on a thread of its own, which may block.
    pub fn read_blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T>,
    {
        let mut conn = self.read.get()?;
        work(&mut conn)
    }

    /// Runs `work` on the writer, in its own savepoint of the next group
    /// commit; resolves once that commit is on disk. Nothing of it is kept
    /// unless it returns `Ok`.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_then(work, |_| ()).await
    }

    /// [`Db::write`] that runs `then` with the outcome once the commit is on
    /// disk (or the write failed): before the caller hears of it, and
    /// whether or not the caller still waits.
    pub async fn write_then<T, F, C>(&self, work: F, then: C) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        C: FnOnce(&StoreResult<T>) + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.writer.submit(
            |conn, tally| {
                tally.untallied();
                work(conn)
            },
            move |outcome| {
                then(&outcome);
                let _ = reply.send(outcome);
            },
        )?;
        result.await.unwrap_or_else(|_| Err(dropped()))
    }

    /// [`Db::write`] for engagement events, which add what they count to the
    /// batch's [`Tally`].
    pub async fn write_tallied<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection, &mut Tally) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.writer.submit(work, move |outcome| {
            let _ = reply.send(outcome);
        })?;
        result.await.unwrap_or_else(|_| Err(dropped()))
    }

    /// Adds to the next group commit's [`Tally`] without a write of its own
    /// (see [`engagement::record_view`]); resolves once that commit is on disk.
    pub async fn tally<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Tally) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.writer.submit_to_batch(work, move |outcome| {
            let _ = reply.send(outcome);
        })?;
        result.await.unwrap_or_else(|_| Err(dropped()))
    }

    /// [`Db::write`] for code that may block: the command line and start-up.
    pub fn write_blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_tallied_blocking(|conn, tally| {
            tally.untallied();
            work(conn)
        })
    }

    /// [`Db::write_blocking`] for writes that change no article's counters
    /// (what is derived from articles and kept in the store, say): the
    /// caches keep the counters they hold, and responses that show them.
    pub fn write_derived_blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.write_tallied_blocking(|conn, _| work(conn))
    }

    /// [`Db::write_tallied`] for code that may block.
    pub fn write_tallied_blocking<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection, &mut Tally) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, result) = std::sync::mpsc::sync_channel(1);
        self.writer.submit(work, move |outcome| {
            let _ = reply.send(outcome);
        })?;
        result.recv().unwrap_or_else(|_| Err(dropped()))
    }
}

/// A write the writer could not run (it could not open the database).
fn dropped() -> StoreError {
    StoreError::Busy("the writer could not run this write".into())
}

async fn blocking<T, F>(work: F) -> StoreResult<T>
where
    F: FnOnce() -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    actix_web::rt::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Internal(format!("blocking task failed: {error}")))?
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::BigInt;

    use super::*;

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
