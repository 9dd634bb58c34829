//! `import` and `export`: articles in and out of a store as files.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use diesel::sqlite::SqliteConnection;
use indicatif::ProgressBar;

use super::{open_existing, read_existing};
use crate::config::Config;
use crate::db::Db;
use crate::transfer::taxonomy::{self, Named};
use crate::transfer::{self, FeedDefaults};

/// Imports each file with a progress bar (plain progress lines when stderr
/// is not a terminal) and prints what it did; fails when any line failed.
pub fn import(config: &Config, files: &[PathBuf], defaults: &FeedDefaults) -> anyhow::Result<()> {
    let db = open_existing(config)?;
    // Every file is read, and the feeds' category checked, before anything
    // is stored: a file that cannot be read stops the import, not half of
    // it. So every file's records are in memory at once.
    let mut read = files
        .iter()
        .map(|file| Ok((file.display().to_string(), transfer::read(file, defaults)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if read.iter().any(|(_, file)| file.feed) {
        // A category line of one of the files may be about to make it.
        let coming = read
            .iter()
            .flat_map(|(_, file)| &file.taxonomy)
            .any(|(_, named)| {
                matches!(named, Ok(Named::Category { slug, .. }) if *slug == defaults.category)
            });
        if !coming {
            ensure_category(&db, &defaults.category)?;
        }
    }
    // Every file's categories, authors and tags before any article, which
    // may name them; what a file's feed entries became, after its articles
    // and before the next file (a feed read again).
    let mut failed = 0;
    let mut entries = Vec::with_capacity(read.len());
    for (name, file) in &mut read {
        let (became, named): (Vec<_>, Vec<_>) = std::mem::take(&mut file.taxonomy)
            .into_iter()
            .partition(|(_, line)| matches!(line, Ok(Named::FeedEntry { .. })));
        if !named.is_empty() {
            failed += import_named(&db, name, "categories, authors and tags", named)?;
        } else if became.is_empty() && file.records.is_empty() && !file.feed {
            println!("{name}: nothing to import (no articles, categories, authors or tags)");
        }
        entries.push(became);
    }
    let terminal = std::io::stderr().is_terminal();
    for ((name, transfer::Read { records, feed, .. }), became) in read.into_iter().zip(entries) {
        if !records.is_empty() || feed {
            failed += import_records(&db, &name, records, feed, terminal)?;
        }
        if !became.is_empty() {
            failed += import_named(&db, &name, "feed entries", became)?;
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} line(s) or entries were not imported");
    }
    Ok(())
}

/// Imports a file's articles (or a feed's entries) with a progress bar and
/// prints what it did; returns how many failed.
fn import_records(
    db: &Db,
    name: &str,
    records: Vec<transfer::Record>,
    feed: bool,
    terminal: bool,
) -> anyhow::Result<usize> {
    let unit = if feed { "entry" } else { "line" };
    let total = records.len();
    let bar = ProgressBar::new(total as u64).with_style(super::progress_style("{msg}")?);
    bar.set_message(name.to_string());
    if !terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let report = transfer::import(db, records, |done| {
        bar.set_position(done as u64);
        if !terminal {
            eprintln!("{name}: {done}/{total}");
        }
    })?;
    bar.finish_and_clear();
    println!(
        "{name}: {} created, {} updated, {} unchanged, {} failed",
        report.created, report.updated, report.unchanged, report.failed
    );
    for failure in &report.errors {
        for error in &failure.errors {
            println!("  {unit} {}: {} {}", failure.line, error.name, error.detail);
        }
    }
    Ok(report.failed)
}

/// Imports a file's `what` (categories, authors and tags, or what its feed
/// entries became) and prints what it did; returns how many failed.
fn import_named(
    db: &Db,
    name: &str,
    what: &str,
    lines: Vec<taxonomy::Line>,
) -> anyhow::Result<usize> {
    let report = taxonomy::import(db, lines)?;
    println!(
        "{name}: {what}: {} created, {} updated, {} unchanged, {} failed",
        report.created,
        report.updated,
        report.unchanged,
        report.failed.len()
    );
    for (line, errors) in &report.failed {
        for error in errors {
            println!("  line {line}: {} {}", error.name, error.detail);
        }
    }
    Ok(report.failed.len())
}

/// Fails, saying what to do, when the category every feed entry goes in
/// does not exist (else each entry would fail alike).
fn ensure_category(db: &Db, slug: &str) -> anyhow::Result<()> {
    let exists = db.read_blocking(|conn| {
        Ok(crate::db::taxonomy::CategoryTree::load(conn)?
            .by_slug(slug)
            .is_some())
    })?;
    anyhow::ensure!(
        exists,
        "no category has the slug `{slug}`, which feed entries go in: create it \
         (POST /api/v1/categories) or name another with --category"
    );
    Ok(())
}

/// Writes every category, author, tag and article as NDJSON to `output`
/// (synced to disk before it returns), or to standard output.
pub fn export(config: &Config, output: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = output {
        anyhow::ensure!(
            !names_the_store(&config.database_path, path),
            "{} is the database itself (or its log): give another file to export to",
            path.display()
        );
    }
    let mut conn = read_existing(config)?;
    let exported = match output {
        // A device or a pipe (`-o /dev/stdout`) is written as it is.
        Some(path) if path.exists() && !path.is_file() => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("opening {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let count = transfer::export(&mut conn, &mut out)?;
            out.into_inner().map_err(|error| error.into_error())?;
            count
        }
        Some(path) => export_whole(&mut conn, path)?,
        None => transfer::export(&mut conn, &mut std::io::stdout().lock())?,
    };
    eprintln!(
        "exported {} articles, after {} categories, authors and tags, and what {} feed \
         entries became",
        exported.articles, exported.named, exported.feed_entries
    );
    Ok(())
}

/// Exports to the file `path` whole or not at all: written beside it, and
/// renamed over it once on disk, so that a failed export leaves an earlier
/// one as it was. The file gets the earlier one's permissions, or those a
/// new file gets (the umask's).
fn export_whole(conn: &mut SqliteConnection, path: &Path) -> anyhow::Result<transfer::Exported> {
    use std::os::unix::fs::PermissionsExt;
    let folder = folder_of(path);
    let file = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(folder)
        .with_context(|| format!("creating a file in {}", folder.display()))?;
    if let Ok(earlier) = std::fs::metadata(path) {
        file.as_file().set_permissions(earlier.permissions())?;
    }
    let mut out = std::io::BufWriter::new(file);
    let count = transfer::export(conn, &mut out)?;
    let file = out.into_inner().map_err(|error| error.into_error())?;
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // The rename is durable once the folder is.
    std::fs::File::open(folder)?.sync_all()?;
    Ok(count)
}

/// Whether `path` names the database file at `store`, or one of the files
/// SQLite keeps beside it.
fn names_the_store(store: &Path, path: &Path) -> bool {
    let Some((store, path)) = store.canonicalize().ok().zip(resolved(path)) else {
        return false;
    };
    ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
        let mut beside = store.clone().into_os_string();
        beside.push(suffix);
        path == Path::new(&beside)
    })
}

/// `path` with every link and `..` resolved, whether or not it exists.
fn resolved(path: &Path) -> Option<PathBuf> {
    if path.exists() {
        return path.canonicalize().ok();
    }
    Some(folder_of(path).canonicalize().ok()?.join(path.file_name()?))
}

/// The folder a file `path` names is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    }
}
