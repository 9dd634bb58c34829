//! What the `frontpage` command does besides serving: each subcommand that
//! works on a store, as a function that `main` hands over to once the
//! arguments are parsed.

pub mod keys;
pub mod transfer;

use anyhow::Context;
use diesel::RunQueryDsl;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::MigrationHarness;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::db::Db;
use crate::demo::bulk;

/// Creates the store if needed and applies pending migrations.
pub fn migrate(config: &Config) -> anyhow::Result<()> {
    let new = !config.database_path.exists();
    let db = Db::open(&config.database_path, 1)?;
    let path = config.database_path.display();
    match db.migrated() {
        _ if new => println!("created the database {path}, migrated to the latest schema"),
        0 => println!("database {path} is up to date"),
        applied => println!("database {path} migrated to the latest schema ({applied} migrations)"),
    }
    drop(db);
    Ok(())
}

/// Writes a consistent copy of the database to `path`, checks it, and says
/// what it holds.
pub fn backup(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !path.exists(),
        "{} exists; give a new file to back up to",
        path.display()
    );
    let started = std::time::Instant::now();
    let target = path.to_str().context("the backup path is not UTF-8")?;
    // Read-only and not migrated: the copy is of the store as it is.
    let mut source = open_store(existing(config)?)?;
    crate::db::backup_to(&mut source, target)?;
    // A copy that fails its check is no backup: it goes, and the command
    // can be run again.
    let articles = crate::db::check_integrity(path).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })?;
    println!(
        "backed up {} to {} ({articles} articles, integrity ok) in {:.1}s",
        config.database_path.display(),
        path.display(),
        started.elapsed().as_secs_f32()
    );
    Ok(())
}

/// A progress bar after `message`: done of total, a whole rate and the
/// time left (indicatif's own `{per_sec}` shows four decimals).
pub fn progress_style(message: &str) -> anyhow::Result<ProgressStyle> {
    let template = format!("{message} [{{bar:40}}] {{pos}}/{{len}} ({{rate}}/s, eta {{eta}})");
    Ok(ProgressStyle::with_template(&template)?.with_key(
        "rate",
        |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
            let _ = write!(out, "{:.0}", state.per_sec());
        },
    ))
}

/// Fills a new, empty store with a synthetic one of `size` (for
/// benchmarks), with a progress bar.
pub fn generate_demo(config: &Config, size: bulk::Size, seed: u64) -> anyhow::Result<()> {
    let db = Db::open(&config.database_path, 1)?;
    let started = std::time::Instant::now();
    let bar = ProgressBar::new(0).with_style(progress_style("{msg:>9}")?.progress_chars("=> "));
    let phase = std::cell::RefCell::new(String::new());
    bulk::generate(&db, size, seed, &|done, total, what| {
        if *phase.borrow() != what {
            *phase.borrow_mut() = what.to_string();
            bar.set_message(what.to_string());
            bar.set_length(total);
        }
        bar.set_position(done);
        if bar.is_hidden() && done == total {
            eprintln!("{what}: {done}");
        }
    })?;
    bar.finish_and_clear();
    eprintln!(
        "filled {} with {} articles, {} readers and {} views in {:.1?}",
        config.database_path.display(),
        size.articles,
        size.readers,
        size.views,
        started.elapsed()
    );
    Ok(())
}

/// Opens the server's store, which must exist, for a command that writes
/// to it: migrated first, as the server opens it.
pub fn open_existing(config: &Config) -> anyhow::Result<Db> {
    Db::open(existing(config)?, 1)
}

/// Opens the server's store, which must exist, read-only: for a command
/// that only reads it, so that a server on the same store does not take
/// the command for another process's writes and drop its caches. Nothing
/// is migrated, so a store that needs migrating is refused: its tables are
/// not yet as this version reads them.
pub fn read_existing(config: &Config) -> anyhow::Result<SqliteConnection> {
    let path = existing(config)?;
    let mut conn = open_store(path)?;
    let pending = conn
        .has_pending_migration(crate::db::MIGRATIONS)
        .map_err(|error| anyhow::anyhow!("reading the migration table: {error}"))?;
    anyhow::ensure!(
        !pending,
        "the database {} needs migrating to this version's schema: run `frontpage migrate`, \
         or start the server, first",
        path.display()
    );
    crate::db::check_schema(&mut conn).with_context(|| format!("reading {}", path.display()))?;
    Ok(conn)
}

/// Opens the file at `path` read-only if it is a frontpage store (one that
/// has Diesel's migration table), whatever its version.
fn open_store(path: &std::path::Path) -> anyhow::Result<SqliteConnection> {
    let not_a_store = || {
        format!(
            "{} is not a frontpage database: create one with `frontpage migrate`",
            path.display()
        )
    };
    let mut conn = crate::db::open_read_only(path).with_context(not_a_store)?;
    // Checked before Diesel is asked about migrations: asked of a file
    // without its table, it would try to create it, which a read-only
    // connection cannot.
    let migrated: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(
        "EXISTS (SELECT 1 FROM sqlite_schema WHERE name = '__diesel_schema_migrations')",
    ))
    .get_result(&mut conn)
    .with_context(not_a_store)?;
    anyhow::ensure!(migrated, not_a_store());
    Ok(conn)
}

/// The server's store, which must exist: with the wrong `DATABASE_URL`, or
/// the default relative path from another folder, a command would
/// otherwise create an empty store, act on it and report success (a backup
/// of nothing, a key the server never sees).
fn existing(config: &Config) -> anyhow::Result<&std::path::Path> {
    let path = &config.database_path;
    anyhow::ensure!(
        path.exists(),
        "no database at {}: set DATABASE_URL to the server's database, \
         or create one with `frontpage migrate`",
        path.display()
    );
    Ok(path)
}
