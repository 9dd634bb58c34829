//! The `frontpage` command: parses its arguments and hands over, to the
//! server (the default) or to a subcommand in [`frontpage::commands`].

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, Subcommand};
use frontpage::commands::{self, keys, transfer};
use frontpage::config::Config;
use frontpage::demo::bulk;
use frontpage::transfer::FeedDefaults;
use frontpage::{auth, observe, openapi, recommend, related, server};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
    /// `POST /api/v1/articles/bulk` takes, and the lines `export` writes) or
    /// RSS, Atom and JSON Feed feeds, upserting by slug or feed entry:
    /// importing a file twice changes nothing the second time.
    Import {
        /// The files; each is read as a feed when it starts with `<` or is a
        /// JSON Feed.
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
    /// Write the whole site as NDJSON that `import` takes back: categories,
    /// authors, tags, every article (drafts too) and what each feed entry
    /// became.
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
    let command = cli.command.unwrap_or(Command::Serve);
    if !matches!(command, Command::Serve) {
        // A command's output piped into `head` ends quietly, as other Unix
        // tools' does, rather than in a panic on the closed pipe. The
        // server keeps SIGPIPE ignored: a client that hangs up must not
        // stop it.
        // SAFETY: setting a signal's disposition to its default, before
        // any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match command {
        Command::Serve => serve(Config::from_env()?),
        Command::Migrate => commands::migrate(&Config::from_env()?),
        Command::Keys(KeysCommand::Create { name, scopes }) => {
            keys::create(&Config::from_env()?, &name, scopes)
        }
        Command::Keys(KeysCommand::List) => keys::list(&Config::from_env()?),
        Command::Keys(KeysCommand::Revoke { id }) => keys::revoke(&Config::from_env()?, id),
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
            commands::generate_demo(&Config::from_env()?, size, seed)
        }
        Command::Openapi => {
            print!("{}", openapi::spec_json());
            Ok(())
        }
        Command::Import { files, category } => {
            transfer::import(&Config::from_env()?, &files, &FeedDefaults { category })
        }
        Command::Backup { path } => commands::backup(&Config::from_env()?, &path),
        Command::Export { output } => transfer::export(&Config::from_env()?, output.as_deref()),
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
    // Unset, `info`; set but not understood, an error (falling back would
    // drop the parts that were right, such as `warn`, without a word).
    let filter = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("RUST_LOG: cannot read {directives:?}"))?,
        Ok(_) | Err(std::env::VarError::NotPresent) => EnvFilter::new("info"),
        Err(std::env::VarError::NotUnicode(_)) => anyhow::bail!("RUST_LOG: not UTF-8"),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Trimmed, and empty for unset, as every other setting is.
    let format = std::env::var("FRONTPAGE_LOG_FORMAT");
    let logs = match format.as_deref().map(str::trim) {
        Ok("json") => logs.json().flatten_event(true).with_filter(filter).boxed(),
        // Colours only on a terminal: a log file gets plain text.
        Ok("text" | "") | Err(_) => logs
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter)
            .boxed(),
        Ok(other) => anyhow::bail!("FRONTPAGE_LOG_FORMAT: expected text or json, got {other:?}"),
    };
    // Requests too malformed to route are counted, not logged, whatever
    // `RUST_LOG` lets through (see `observe::malformed`).
    tracing_subscriber::registry()
        .with(observe::malformed::layer(
            observe::malformed::MALFORMED.clone(),
        ))
        .with(logs)
        .init();
    Ok(())
}

/// Serves the API until SIGTERM or SIGINT, then commits what is queued.
fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        for doubt in config.doubts() {
            tracing::warn!("{doubt}");
        }
        let bound = server::bind(&config)?;
        tracing::info!(
            "serving on http://{addr} (API docs: http://{addr}/docs/)",
            addr = bound.addr
        );
        // On SIGTERM or SIGINT the server refuses new requests and finishes
        // the ones in flight (for up to 20 s), then stops (`drain`).
        bound.server.await.context("server stopped with an error")?;
        bound.db.flush().await.context("committing queued writes")?;
        tracing::info!("stopped; every queued write is committed");
        Ok(())
    })
}
