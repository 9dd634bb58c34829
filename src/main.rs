//! The `frontpage` command: serve the API (the default), migrate, manage keys,
//! print the OpenAPI document.

use anyhow::Context;
use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use frontpage::config::Config;
use frontpage::db::{Db, StoreError, keys};
use frontpage::demo::bulk;
use frontpage::transfer::{self, FeedDefaults};
use frontpage::{auth, openapi, recommend, related, server};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the system allocator: a request makes and frees
/// many small buffers on two threads at once, and with mimalloc a full
/// article page took 12% less CPU, a recommendation 9% less, and the server
/// held 12% less memory at 100k articles (`bench/run.sh`). Built without
/// transparent huge pages (`no_thp`): with them, the server held 40-60 MiB
/// more at a million articles and was no faster.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Frontpage: a headless JSON content API for news sites.
///
/// Configuration comes from the environment and `.env` (see `.env.example`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Manage admin API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Import articles from NDJSON files (one article input per line, as
    /// `POST /api/v1/articles/bulk` takes) or RSS 2.0 / Atom feeds, upserting
    /// by slug: importing a file twice changes nothing the second time.
    Import {
        /// The files; each is read as a feed when it starts with `<`.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// The category (slug) of articles imported from feeds.
        #[arg(long, default_value = "news")]
        category: String,
    },
    /// Copy the live database to a new file, consistently, while the server
    /// runs (SQLite's `VACUUM INTO`); restore by pointing DATABASE_URL at it.
    Backup {
        /// The new file; it must not exist.
        path: std::path::PathBuf,
    },
    /// Write every article (drafts too) as NDJSON that `import` takes back.
    Export {
        /// The file to write; standard output when absent.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Fill a new, empty database with a large synthetic store (for benchmarks).
    Demo {
        /// Articles to create.
        #[arg(long, default_value_t = 10_000)]
        articles: usize,
        /// Readers to register.
        #[arg(long, default_value_t = 100_000)]
        readers: usize,
        /// View events to record, skewed towards a few popular articles.
        #[arg(long, default_value_t = 1_000_000)]
        views: usize,
        /// Spread publication and views over this many days before now.
        #[arg(long, default_value_t = 30)]
        days: i64,
        /// Seed of the random generator (same seed, same store).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Measure a feed against a labelled corpus (nothing is served or kept).
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Related: precision@k and nDCG@k, where an item is relevant when it
    /// has the query's label. Reads JSON lines with `id`, `category` (the
    /// label), `text`, and optionally `title` and `split` (only `test`
    /// documents query when present).
    Related {
        /// The labelled corpus.
        #[arg(long)]
        dataset: std::path::PathBuf,
        /// List length scored.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Score at most this many queries.
        #[arg(long)]
        queries: Option<usize>,
    },
    /// Recommendation: replays an order-lines CSV (Instacart's columns) as
    /// views, holds out each user's last order, and prints HitRate@k and
    /// NDCG@k for the engine and for a most-popular baseline.
    Recommend {
        /// The interaction log.
        #[arg(long)]
        dataset: std::path::PathBuf,
        /// List length scored.
        #[arg(long, default_value_t = 10)]
        k: usize,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// A name to recognise the key by (who or what uses it).
        name: String,
        /// What the key may do; repeat for several. Without one, both.
        #[arg(long = "scope", value_enum)]
        scopes: Vec<auth::Scope>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id; it stops working at once.
    Revoke {
        /// The key's id, from `keys list`.
        id: i32,
    },
}

fn main() -> anyhow::Result<()> {
    // A missing .env is normal; a broken one is worth knowing about.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        return Err(error).context("reading .env");
    }
    init_logging()?;
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(Config::from_env()?),
        Command::Migrate => {
            let config = Config::from_env()?;
            let db = Db::open(&config.database_path, 1)?;
            println!("database {} is up to date", config.database_path.display());
            drop(db);
            Ok(())
        }
        Command::Keys(command) => manage_keys(&Config::from_env()?, command),
        Command::Demo {
            articles,
            readers,
            views,
            days,
            seed,
        } => {
            let size = bulk::Size {
                articles,
                readers,
                views,
                days: days.max(1),
            };
            generate_demo(&Config::from_env()?, size, seed)
        }
        Command::Openapi => {
            print!("{}", openapi::spec_json());
            Ok(())
        }
        Command::Import { files, category } => {
            import_files(&Config::from_env()?, &files, &FeedDefaults { category })
        }
        Command::Backup { path } => backup(&Config::from_env()?, &path),
        Command::Export { output } => export_articles(&Config::from_env()?, output.as_deref()),
        Command::Eval(EvalCommand::Related {
            dataset,
            k,
            queries,
        }) => {
            println!("{}", related::eval::run(&dataset, k.max(1), queries)?);
            Ok(())
        }
        Command::Eval(EvalCommand::Recommend { dataset, k }) => {
            println!("{}", recommend::eval::run(&dataset, k.max(1))?);
            Ok(())
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as text or,
/// with `FRONTPAGE_LOG_FORMAT=json`, one JSON object per line.
fn init_logging() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("FRONTPAGE_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().flatten_event(true).init(),
        // Colours only on a terminal: a log file gets plain text.
        Ok("text") | Err(_) => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => anyhow::bail!("FRONTPAGE_LOG_FORMAT: expected text or json, got {other:?}"),
    }
    Ok(())
}

/// Imports each file with a progress bar (plain progress lines when stderr
/// is not a terminal) and prints what it did; fails when any line failed.
fn import_files(
    config: &Config,
    files: &[std::path::PathBuf],
    defaults: &FeedDefaults,
) -> anyhow::Result<()> {
    let db = open_existing(config)?;
    // Every file is read, and the feeds' category checked, before anything
    // is stored: a file that cannot be read stops the import, not half of
    // it. So every file's records are in memory at once.
    let read = files
        .iter()
        .map(|file| Ok((file.display().to_string(), transfer::read(file, defaults)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if read.iter().any(|(_, file)| file.feed) {
        ensure_category(&db, &defaults.category)?;
    }
    let terminal = std::io::stderr().is_terminal();
    let mut failed = 0;
    for (name, transfer::Read { records, .. }) in read {
        let total = records.len();
        let bar = ProgressBar::new(total as u64).with_style(ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        )?);
        bar.set_message(name.clone());
        if !terminal {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let report = transfer::import(&db, records, |done| {
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
                println!("  line {}: {} {}", failure.line, error.name, error.detail);
            }
        }
        failed += report.failed;
    }
    if failed > 0 {
        anyhow::bail!("{failed} article(s) were not imported");
    }
    Ok(())
}

/// Fails, saying what to do, when the category every feed entry goes in
/// does not exist (else each entry would fail alike).
fn ensure_category(db: &Db, slug: &str) -> anyhow::Result<()> {
    let exists = db.read_blocking(|conn| {
        Ok(frontpage::db::taxonomy::CategoryTree::load(conn)?
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

/// Writes a consistent copy of the database to `path`, checks it, and says
/// what it holds.
fn backup(config: &Config, path: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !path.exists(),
        "{} exists; give a new file to back up to",
        path.display()
    );
    let started = std::time::Instant::now();
    let target = path.to_str().context("the backup path is not UTF-8")?;
    let source = open_existing(config)?;
    source.backup_to(target)?;
    let articles = frontpage::db::check_integrity(path)?;
    println!(
        "backed up {} to {} ({articles} articles, integrity ok) in {:.1}s",
        config.database_path.display(),
        path.display(),
        started.elapsed().as_secs_f32()
    );
    Ok(())
}

fn export_articles(config: &Config, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let db = open_existing(config)?;
    let count = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            let count = transfer::export(&db, &mut out)?;
            out.into_inner()
                .map_err(|error| error.into_error())?
                .sync_all()?;
            count
        }
        None => transfer::export(&db, &mut std::io::stdout().lock())?,
    };
    eprintln!("exported {count} articles");
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let bound = server::bind(&config)?;
        tracing::info!(
            "serving on http://{addr} (API docs: http://{addr}/docs/)",
            addr = bound.addr
        );
        // On SIGTERM or SIGINT the server refuses new requests and finishes
        // the ones in flight (for up to 30 s), then stops (`drain`).
        bound.server.await.context("server stopped with an error")?;
        bound.db.flush().await.context("committing queued writes")?;
        tracing::info!("stopped; every queued write is committed");
        Ok(())
    })
}

fn generate_demo(config: &Config, size: bulk::Size, seed: u64) -> anyhow::Result<()> {
    let db = Db::open(&config.database_path, 1)?;
    let started = std::time::Instant::now();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:>9} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")?
            .progress_chars("=> "),
    );
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

/// Opens the server's store for a command that works on what it holds. The
/// file must exist: with the wrong `DATABASE_URL`, or the default relative
/// path from another folder, the command would otherwise create an empty
/// store, act on it and report success (a backup of nothing, a key the
/// server never sees).
fn open_existing(config: &Config) -> anyhow::Result<Db> {
    let path = &config.database_path;
    anyhow::ensure!(
        path.exists(),
        "no database at {}: set DATABASE_URL to the server's database, \
         or create one with `frontpage migrate`",
        path.display()
    );
    Db::open(path, 1)
}

fn manage_keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let db = open_existing(config)?;
    match command {
        KeysCommand::Create { name, scopes } => {
            let name = name.trim();
            if name.is_empty() {
                anyhow::bail!("give the key a name, e.g. `frontpage keys create importer`");
            }
            let scopes = if scopes.is_empty() {
                auth::Scope::ALL.to_vec()
            } else {
                scopes
            };
            let scopes = auth::Scope::list_to_string(&scopes);
            let key = auth::generate_key();
            let (stored, prefix, hash, granted) = (
                name.to_string(),
                auth::shown_prefix(&key),
                auth::hash_key(&key),
                scopes.clone(),
            );
            let id = db.write_blocking(move |conn| {
                keys::insert(conn, &stored, &prefix, &hash, &granted)
            })?;
            println!("{key}");
            eprintln!(
                "created key {id} ({name}, scopes: {scopes}); this is the only time it is shown"
            );
        }
        KeysCommand::List => {
            println!(
                "{:<5} {:<12} {:<20} {:<20} {:<18} name",
                "id", "prefix", "created", "revoked", "scopes"
            );
            for key in db.write_blocking(keys::list)? {
                let revoked = key
                    .revoked_at
                    .map_or_else(|| "-".to_string(), |at| at.format("%F %T").to_string());
                println!(
                    "{:<5} {:<12} {:<20} {:<20} {:<18} {}",
                    key.id,
                    key.prefix,
                    key.created_at.format("%F %T"),
                    revoked,
                    key.scopes,
                    key.name
                );
            }
        }
        KeysCommand::Revoke { id } => {
            match db.write_blocking(move |conn| keys::revoke(conn, id)) {
                Err(StoreError::NotFound) => {
                    anyhow::bail!("no key has the id {id} (see `frontpage keys list`)")
                }
                other => other.with_context(|| format!("revoking key {id}"))?,
            }
            println!("revoked key {id}");
        }
    }
    Ok(())
}
