//! The SQLite store: connection pools, pragmas, embedded migrations, and one
//! module of plain synchronous query functions per table group.
//!
//! Reads go through a pool of connections; writes through a single writer
//! connection in `BEGIN IMMEDIATE` transactions, so writers never fight over
//! SQLite's one write lock. The async side reaches both through [`Db::read`]
//! and [`Db::write`], which run the closure on the blocking thread pool.

pub mod article_writes;
pub mod articles;
pub mod keys;
pub mod schema;
pub mod taxonomy;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The migrations in `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How long a connection waits for SQLite's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a pooled connection before it is told to retry.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;
/// A connection checked out of one of the pools.
pub type Conn = PooledConnection<ConnectionManager<SqliteConnection>>;

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

/// Applies the pragmas every connection needs, whenever the pool opens one.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};
             PRAGMA foreign_keys = ON;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -32000;",
            BUSY_TIMEOUT.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The store: a pool of readers and a single writer over one database file.
#[derive(Clone)]
pub struct Db {
    read: SqlitePool,
    write: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database at `path`, switches it to WAL
    /// and applies any pending migrations.
    pub fn open(path: &Path, readers: u32) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database folder {}", parent.display()))?;
        }
        let url = path
            .to_str()
            .with_context(|| format!("database path {} is not UTF-8", path.display()))?;
        // WAL is a property of the file: set it once, before the pools open.
        let mut setup = SqliteConnection::establish(url)
            .with_context(|| format!("opening the database {}", path.display()))?;
        setup
            .batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA optimize = 0x10002;",
                BUSY_TIMEOUT.as_millis()
            ))
            .context("switching the database to WAL")?;
        drop(setup);

        let build = |size: u32| {
            Pool::builder()
                .max_size(size)
                .min_idle(Some(1))
                .connection_timeout(POOL_TIMEOUT)
                .connection_customizer(Box::new(Pragmas))
                .build(ConnectionManager::<SqliteConnection>::new(url))
        };
        let db = Self {
            read: build(readers.max(1)).context("opening the read pool")?,
            write: build(1).context("opening the write connection")?,
        };
        db.migrate()?;
        Ok(db)
    }

    /// Applies pending migrations; returns how many ran.
    pub fn migrate(&self) -> anyhow::Result<usize> {
        let mut conn = self.write.get().context("checking out the writer")?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|error| anyhow::anyhow!("running migrations: {error}"))?;
        Ok(applied.len())
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
        let pool = self.read.clone();
        blocking(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer, off the
    /// async workers. Nothing of it is kept unless it returns `Ok`.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.write.clone();
        blocking(move || pool.get()?.immediate_transaction(work)).await
    }

    /// The writer connection, for command-line work that is already blocking.
    pub fn writer(&self) -> StoreResult<Conn> {
        Ok(self.write.get()?)
    }
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
