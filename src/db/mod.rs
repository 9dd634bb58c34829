//! The SQLite store: connection pools, embedded migrations, and one module
//! of plain synchronous query functions per table group (a connection's
//! pragmas are in `connection`).
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
mod connection;
pub mod engagement;
mod error;
pub mod in_ids;
pub mod json_rows;
pub mod keys;
mod migrations;
pub mod old_slugs;
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
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::MigrationHarness;

use self::changes::Changes;
use self::connection::{ReaderPragmas, open_writer, refresh_statistics};
pub use self::connection::{backup_to, check_integrity, open_read_only};
use self::engagement::{Tally, Uncounted};
pub use self::error::{Invalid, StoreError, StoreResult};
pub use self::migrations::{MIGRATIONS, check_schema};
use self::writer::{Durability, Writer};

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

/// The current time as stored: UTC, to the second.
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)))
}

/// The store: a pool of readers and a single writer over one database file.
#[derive(Clone)]
pub struct Db {
    read: SqlitePool,
    read_queue: Arc<ReadQueue>,
    writer: Writer<Tally>,
    changes: Arc<Changes>,
    /// How many migrations opening it applied.
    migrated: usize,
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
        anyhow::ensure!(
            !path.is_dir(),
            "the database {} is a folder: DATABASE_URL names the file, such as {}",
            path.display(),
            path.join("frontpage.db").display()
        );
        // WAL is a property of the file: set it, and migrate, before anything else opens it.
        let mut setup = open_writer(&url)
            .map_err(|error| {
                // SQLite says only that it could not; the system says why.
                let why = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .err()
                    .map_or_else(String::new, |why| format!(": {why}"));
                anyhow::anyhow!("{error}{why}")
            })
            .with_context(|| format!("opening the database {}", path.display()))?;
        // Before anything is written: WAL, once set, is kept in the file.
        check_schema(&mut setup)
            .with_context(|| format!("opening the database {}", path.display()))?;
        setup
            .batch_execute("PRAGMA journal_mode = WAL;")
            .context("switching the database to WAL")?;
        let migrated = migrations::migrate(&mut setup)
            .with_context(|| format!("migrating the database {}", path.display()))?;
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
            migrated,
        })
    }

    /// How many migrations opening the store applied: none when it was
    /// already at this version's schema.
    pub fn migrated(&self) -> usize {
        self.migrated
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
