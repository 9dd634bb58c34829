//! Configuration, read once from the environment (and `.env`) at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

/// The most workers actix-web runs.
const MAX_WORKERS: usize = 512;
/// Where the database lives when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "data/frontpage.db";
/// The address the server binds when `FRONTPAGE_BIND_ADDR` is not set.
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
/// Engagement writes per client per minute when `FRONTPAGE_RATE_LIMIT_PER_MIN` is not set.
pub const DEFAULT_RATE_LIMIT_PER_MIN: u32 = 120;

/// How long a client has to send a request body unless configured.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// `FRONTPAGE_MEMORY_MB` unless set: a 100,000-article store keeps every
/// article and neighbour list in its caches, and a million-article store
/// runs in under a gibibyte with small caches, since the allocator, SQLite
/// and a few structures take memory outside the budget (the README's
/// "Benchmark against a ceiling" has the figures).
pub const DEFAULT_MEMORY_MB: u64 = 576;

/// Everything the service can be told from outside.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path of the SQLite database file (a `sqlite://` prefix is accepted).
    pub database_path: PathBuf,
    /// Where to listen: an IP address and port, or a host name and port,
    /// looked up when the server binds (the other commands never do).
    pub bind_addr: String,
    /// A bootstrap admin key accepted as a Bearer token, when set.
    pub admin_token: Option<String>,
    /// When set, `/metrics` answers only requests that send it (or the
    /// admin token) as a Bearer token: its request counts show editorial
    /// activity.
    pub metrics_token: Option<String>,
    /// Fill an empty database with demo content on start.
    pub demo: bool,
    /// Engagement writes per client per minute; 0 turns the limit off.
    pub rate_limit_per_min: u32,
    /// Proxies in front, whose `X-Forwarded-For` says who the client is
    /// (see [`crate::api::client::address`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: usize,
    /// `trending`: hours after publication at which engagement counts half.
    pub trending_half_life_hours: f64,
    /// `trending`: how many views one reaction is worth.
    pub trending_reaction_weight: f64,
    /// How long a computed ranking is reused (0: always recompute).
    pub ranking_cache_secs: u64,
    /// Recommendations: days after which a read counts half.
    pub recommend_half_life_days: f64,
    /// Recommendations: most of a list (0 to 1) from one category.
    pub recommend_category_share: f64,
    /// `Cache-Control: max-age` of articles and list pages, in seconds.
    pub cache_max_age: u32,
    /// `Cache-Control: max-age` of the ranking and related feeds, in seconds.
    pub feed_max_age: u32,
    /// `Cache-Control: stale-while-revalidate` of public responses, in seconds.
    pub stale_while_revalidate: u32,
    /// Responses smaller than this are sent uncompressed.
    pub compress_min_bytes: usize,
    /// How long a public response is served from memory (engagement counts
    /// in it may be that old; content never is); 0 turns it off.
    pub response_cache_secs: u64,
    /// Memory for cached responses, in MiB.
    pub response_cache_mb: u64,
    /// How long a client has to send a request body once its head is in
    /// (`FRONTPAGE_BODY_TIMEOUT_SECS`, [`DEFAULT_BODY_TIMEOUT`]).
    pub body_timeout: Duration,
    /// How long view totals and buckets may trail the stored views (a busy
    /// writer counts views a few times a second rather than with every
    /// commit); zero counts them with every commit.
    pub view_totals_lag: Duration,
    /// Memory for articles kept ready to show, in MiB; 0 turns it off.
    /// Their counters are kept apart, and dropped by the commit that
    /// changes them.
    pub article_cache_mb: u64,
    /// What the server's data may take, in MiB (`FRONTPAGE_MEMORY_MB`):
    /// the caches share what the structures that grow with the store leave
    /// of it (see [`crate::memory`]).
    pub memory_mb: u64,
    /// Related lists kept in memory and current, those of the newest
    /// articles (`FRONTPAGE_RELATED_LISTS`); older ones are computed in the
    /// background and kept in the store.
    pub related_lists: usize,
    /// Origins whose pages may call the API from a browser.
    pub cors_origins: CorsOrigins,
    /// Serve the example reader page at `/reader/`.
    pub reader: bool,
    /// The site's name, in feed titles.
    pub site_name: String,
    /// Where this server is reached from outside (feeds link to it).
    pub public_base_url: String,
    /// An article's public address in feeds; `{base}`, `{slug}` and `{id}`
    /// are filled in.
    pub article_url: String,
}

/// `FRONTPAGE_CORS_ORIGINS`: `*` (the default), or a comma-separated list
/// of origins such as `https://www.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

impl CorsOrigins {
    fn parse(value: &str) -> anyhow::Result<Self> {
        if value.trim() == "*" {
            return Ok(Self::Any);
        }
        let mut origins = Vec::new();
        for origin in value.split(',').map(str::trim) {
            if origin.is_empty() {
                bail!(
                    "FRONTPAGE_CORS_ORIGINS: {value:?} has an empty origin; \
                     list origins separated by single commas"
                );
            }
            let parsed = url::Url::parse(origin).ok().filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.path() == "/"
                    && !origin.ends_with('/')
                    && url.query().is_none()
            });
            if parsed.is_none() {
                bail!(
                    "FRONTPAGE_CORS_ORIGINS: {origin:?} is not an origin \
                     (a scheme, a host and maybe a port, like https://www.example.com)"
                );
            }
            origins.push(origin.to_string());
        }
        Ok(Self::List(origins))
    }
}

/// An admin token shorter than this is warned about: the README asks for a
/// long random value (`openssl rand -hex 32` gives 64 characters).
pub const SHORT_ADMIN_TOKEN: usize = 16;

impl Config {
    /// What in this configuration works but is likely a mistake, for the
    /// server to warn about as it starts.
    pub fn doubts(&self) -> Vec<String> {
        let mut doubts = Vec::new();
        if self
            .admin_token
            .as_ref()
            .is_some_and(|token| token.chars().count() < SHORT_ADMIN_TOKEN)
        {
            doubts.push(format!(
                "FRONTPAGE_ADMIN_TOKEN is shorter than {SHORT_ADMIN_TOKEN} characters: \
                 anyone who guesses it can write; use a long random value"
            ));
        }
        let unspecified = self
            .bind_addr
            .parse::<SocketAddr>()
            .is_ok_and(|addr| addr.ip().is_unspecified());
        if unspecified && self.public_base_url.starts_with("http://") {
            let listed = format!("http://{}", self.bind_addr);
            if self.public_base_url == listed {
                doubts.push(format!(
                    "feeds link to {listed}, which no reader can reach: \
                     set FRONTPAGE_PUBLIC_BASE_URL to the address readers use"
                ));
            }
        }
        doubts
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from any key-value source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        // Trimmed: a value read from a mounted secret or a `.env` line
        // often ends in a newline or a space, which no setting means.
        let get = |name: &str| {
            get(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        let bind_addr = get("FRONTPAGE_BIND_ADDR").unwrap_or_else(|| DEFAULT_BIND_ADDR.into());
        let workers = match get("FRONTPAGE_WORKERS") {
            Some(value) => match parse_number("FRONTPAGE_WORKERS", &value)? {
                workers @ 1..=MAX_WORKERS => workers,
                _ => bail!("FRONTPAGE_WORKERS: expected 1 to {MAX_WORKERS}, got {value:?}"),
            },
            None => {
                std::thread::available_parallelism().map_or(2, |cores| cores.get().min(MAX_WORKERS))
            }
        };
        let public_base_url = match get("FRONTPAGE_PUBLIC_BASE_URL") {
            Some(value) => parse_base_url(&value)?,
            None => format!("http://{bind_addr}"),
        };
        let demo = match get("FRONTPAGE_DEMO") {
            Some(value) => parse_flag("FRONTPAGE_DEMO", &value)?,
            None => true,
        };
        Ok(Self {
            database_path: database_path(&database_url)?,
            bind_addr: parse_bind_addr(&bind_addr)?,
            admin_token: get("FRONTPAGE_ADMIN_TOKEN"),
            metrics_token: get("FRONTPAGE_METRICS_TOKEN"),
            demo,
            rate_limit_per_min: match get("FRONTPAGE_RATE_LIMIT_PER_MIN") {
                Some(value) => parse_number("FRONTPAGE_RATE_LIMIT_PER_MIN", &value)?,
                None => DEFAULT_RATE_LIMIT_PER_MIN,
            },
            trusted_proxies: crate::api::client::parse_trusted(
                &get("FRONTPAGE_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|problem| anyhow::anyhow!("FRONTPAGE_TRUSTED_PROXIES: {problem}"))?,
            workers,
            trending_half_life_hours: match get("FRONTPAGE_TRENDING_HALF_LIFE_HOURS") {
                Some(value) => parse_positive("FRONTPAGE_TRENDING_HALF_LIFE_HOURS", &value)?,
                None => 24.0,
            },
            trending_reaction_weight: match get("FRONTPAGE_TRENDING_REACTION_WEIGHT") {
                Some(value) => parse_positive("FRONTPAGE_TRENDING_REACTION_WEIGHT", &value)?,
                None => 5.0,
            },
            ranking_cache_secs: match get("FRONTPAGE_RANKING_CACHE_SECS") {
                Some(value) => parse_number("FRONTPAGE_RANKING_CACHE_SECS", &value)?,
                None => 5,
            },
            recommend_half_life_days: match get("FRONTPAGE_RECOMMEND_HALF_LIFE_DAYS") {
                Some(value) => parse_positive("FRONTPAGE_RECOMMEND_HALF_LIFE_DAYS", &value)?,
                None => 7.0,
            },
            recommend_category_share: match get("FRONTPAGE_RECOMMEND_CATEGORY_SHARE") {
                Some(value) => parse_share("FRONTPAGE_RECOMMEND_CATEGORY_SHARE", &value)?,
                None => 0.5,
            },
            cache_max_age: match get("FRONTPAGE_CACHE_MAX_AGE") {
                Some(value) => parse_number("FRONTPAGE_CACHE_MAX_AGE", &value)?,
                None => 30,
            },
            feed_max_age: match get("FRONTPAGE_FEED_MAX_AGE") {
                Some(value) => parse_number("FRONTPAGE_FEED_MAX_AGE", &value)?,
                None => 10,
            },
            stale_while_revalidate: match get("FRONTPAGE_STALE_WHILE_REVALIDATE") {
                Some(value) => parse_number("FRONTPAGE_STALE_WHILE_REVALIDATE", &value)?,
                None => 60,
            },
            compress_min_bytes: match get("FRONTPAGE_COMPRESS_MIN_BYTES") {
                Some(value) => parse_number("FRONTPAGE_COMPRESS_MIN_BYTES", &value)?,
                None => 1024,
            },
            response_cache_secs: match get("FRONTPAGE_RESPONSE_CACHE_SECS") {
                Some(value) => parse_number("FRONTPAGE_RESPONSE_CACHE_SECS", &value)?,
                None => 2,
            },
            body_timeout: Duration::from_secs(match get("FRONTPAGE_BODY_TIMEOUT_SECS") {
                Some(value) => match parse_number("FRONTPAGE_BODY_TIMEOUT_SECS", &value)? {
                    0 => bail!("FRONTPAGE_BODY_TIMEOUT_SECS: expected at least 1 second"),
                    seconds => seconds,
                },
                None => DEFAULT_BODY_TIMEOUT.as_secs(),
            }),
            view_totals_lag: Duration::from_millis(match get("FRONTPAGE_VIEW_TOTALS_LAG_MS") {
                Some(value) => parse_number("FRONTPAGE_VIEW_TOTALS_LAG_MS", &value)?,
                None => 100,
            }),
            response_cache_mb: match get("FRONTPAGE_RESPONSE_CACHE_MB") {
                Some(value) => parse_number("FRONTPAGE_RESPONSE_CACHE_MB", &value)?,
                None => 256,
            },
            article_cache_mb: match get("FRONTPAGE_ARTICLE_CACHE_MB") {
                Some(value) => parse_number("FRONTPAGE_ARTICLE_CACHE_MB", &value)?,
                None => 320,
            },
            memory_mb: match get("FRONTPAGE_MEMORY_MB") {
                // Not "no limit", nor "no caches": the other settings say
                // that (the caches' own sizes, 0 turning one off).
                Some(value) => match parse_number("FRONTPAGE_MEMORY_MB", &value)? {
                    0 => bail!(
                        "FRONTPAGE_MEMORY_MB: expected the MiB the server's data may take \
                         (default {DEFAULT_MEMORY_MB}), got 0; to turn a cache off, set its \
                         own size to 0"
                    ),
                    mb => mb,
                },
                None => DEFAULT_MEMORY_MB,
            },
            related_lists: match get("FRONTPAGE_RELATED_LISTS") {
                Some(value) => parse_number("FRONTPAGE_RELATED_LISTS", &value)?,
                None => crate::related::BUILT_LISTS,
            },
            cors_origins: match get("FRONTPAGE_CORS_ORIGINS") {
                Some(value) => CorsOrigins::parse(&value)?,
                None => CorsOrigins::Any,
            },
            reader: match get("FRONTPAGE_READER") {
                Some(value) => parse_flag("FRONTPAGE_READER", &value)?,
                None => demo,
            },
            site_name: get("FRONTPAGE_SITE_NAME").unwrap_or_else(|| "Frontpage".into()),
            article_url: match get("FRONTPAGE_ARTICLE_URL") {
                Some(value) => parse_article_url(&value, &public_base_url)?,
                None => "{base}/api/v1/articles/{slug}".into(),
            },
            public_base_url,
        })
    }
}

/// The file `DATABASE_URL` names: a path, or one behind `sqlite://`,
/// `sqlite:`, `file:` or `file://` (every command reads it as this path).
/// Another scheme, SQLite's `:memory:` and URI parameters (`?mode=...`)
/// are refused: the store is one SQLite file, with a write-ahead log beside
/// it, opened the same way by every command.
fn database_path(url: &str) -> anyhow::Result<PathBuf> {
    let refused = || {
        anyhow::anyhow!(
            "DATABASE_URL: expected the path of a SQLite file, such as data/frontpage.db or \
             sqlite:///var/lib/frontpage/store.db, got {url:?}"
        )
    };
    let (path, prefixed) = match url.strip_prefix("file://") {
        // `file:///var/x.db`, or `file://localhost/var/x.db` (RFC 8089).
        Some(rest) => match rest.strip_prefix("localhost").unwrap_or(rest) {
            path if path.starts_with('/') => (path, true),
            _ => return Err(refused()),
        },
        None => ["sqlite://", "sqlite:", "file:"]
            .iter()
            .find_map(|prefix| url.strip_prefix(prefix))
            .map_or((url, false), |path| (path, true)),
    };
    let scheme = path
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.is_empty() && !scheme.contains('/'));
    let uri = path.starts_with("file:") || (prefixed && path.contains(['?', '#']));
    if scheme || uri || path == ":memory:" || path.is_empty() {
        return Err(refused());
    }
    Ok(PathBuf::from(path))
}

/// `FRONTPAGE_ARTICLE_URL`: a template that gives each article its own
/// absolute http(s) link, so it names `{slug}` or `{id}`.
fn parse_article_url(value: &str, base_url: &str) -> anyhow::Result<String> {
    let template = value.trim();
    let example = template
        .replace("{base}", base_url)
        .replace("{slug}", "an-article")
        .replace("{id}", "1");
    let absolute = url::Url::parse(&example)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    // A placeholder misspelt (`{slgu}`) would stay in every feed's links.
    let unknown = example.contains(['{', '}']);
    if !absolute || unknown || !(template.contains("{slug}") || template.contains("{id}")) {
        bail!(
            "FRONTPAGE_ARTICLE_URL: expected an http(s) URL template naming {{slug}} or {{id}} \
             (and no other placeholder but {{base}}), such as https://news.example.com/{{slug}} \
             or {{base}}/articles/{{id}}, got {value:?}"
        );
    }
    Ok(template.to_string())
}

fn parse_base_url(value: &str) -> anyhow::Result<String> {
    let trimmed = value.trim().trim_end_matches('/');
    match url::Url::parse(trimmed) {
        // Every link in a feed starts with it: a fragment would end each
        // one there, and credentials would be published in every feed.
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Ok(trimmed.to_string())
        }
        _ => bail!(
            "FRONTPAGE_PUBLIC_BASE_URL: expected an http(s) URL with no query, fragment or \
             credentials, such as https://api.example.com, got {value:?}"
        ),
    }
}

fn parse_flag(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}: expected true or false, got {value:?}"),
    }
}

fn parse_positive(name: &str, value: &str) -> anyhow::Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(number) if number.is_finite() && number > 0.0 => Ok(number),
        _ => bail!("{name}: expected a positive number, got {value:?}"),
    }
}

fn parse_share(name: &str, value: &str) -> anyhow::Result<f64> {
    let share = parse_positive(name, value)?;
    if share > 1.0 {
        anyhow::bail!("{name}: {value:?} is not a share between 0 and 1");
    }
    Ok(share)
}

/// `FRONTPAGE_BIND_ADDR`: an IP address and port (`[::1]:8080` for IPv6),
/// or a host name and port (`localhost:8080`), which is looked up only when
/// the server binds, and tried address by address. A host of digits and
/// dots must be an IPv4 address: the system's resolver reads `0` as
/// `0.0.0.0`, and `1.2` as `1.0.0.2`.
fn parse_bind_addr(value: &str) -> anyhow::Result<String> {
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(value.to_string());
    }
    let refused = |why: &str| {
        anyhow::anyhow!(
            "FRONTPAGE_BIND_ADDR: expected host:port, such as 127.0.0.1:8080 or \
             localhost:8080, got {value:?} ({why})"
        )
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(|| refused("no port"))?;
    port.parse::<u16>()
        .map_err(|_| refused("the port is not a number up to 65535"))?;
    if host.is_empty() || host.contains(':') {
        return Err(refused("an IPv6 address goes in brackets: [::1]:8080"));
    }
    if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(refused("not an IPv4 address"));
    }
    let name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    if !host.chars().all(name) {
        return Err(refused("not a host name"));
    }
    Ok(value.to_string())
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{name}: expected a whole number, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn the_bind_address_may_name_a_host() {
        let named = config(&[("FRONTPAGE_BIND_ADDR", "localhost:9000")]).unwrap();
        assert_eq!(named.bind_addr, "localhost:9000");
        assert_eq!(named.public_base_url, "http://localhost:9000");
        let ipv6 = config(&[("FRONTPAGE_BIND_ADDR", "[::1]:9000")]).unwrap();
        assert_eq!(ipv6.bind_addr, "[::1]:9000");
        refused(
            "FRONTPAGE_BIND_ADDR",
            &[
                "localhost",
                "127.0.0.1",
                "localhost:http",
                "0:8080",
                "1.2:8080",
                "fe80::1:8080",
                ":8080",
                "my host:8080",
            ],
        );
    }

    /// Asserts that each of `values` for setting `name` is refused, with
    /// an error that names the setting.
    fn refused(name: &str, values: &[&str]) {
        for value in values {
            let error = config(&[(name, value)]).unwrap_err();
            assert!(error.to_string().contains(name), "{value}: {error}");
        }
    }

    #[test]
    fn defaults_serve_locally_from_a_file_under_data() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_path, PathBuf::from("data/frontpage.db"));
        assert!(config.demo);
        assert_eq!(config.admin_token, None);
    }

    #[test]
    fn sqlite_url_prefix_is_accepted() {
        let config = config(&[("DATABASE_URL", "sqlite:///tmp/x.db")]).unwrap();
        assert_eq!(config.database_path, PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn cors_origins_are_any_by_default_or_a_checked_list() {
        assert_eq!(config(&[]).unwrap().cors_origins, CorsOrigins::Any);
        let list = config(&[(
            "FRONTPAGE_CORS_ORIGINS",
            "https://www.example.com, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            list.cors_origins,
            CorsOrigins::List(vec![
                "https://www.example.com".into(),
                "http://localhost:3000".into()
            ])
        );
        refused(
            "FRONTPAGE_CORS_ORIGINS",
            &[
                "www.example.com",
                "https://example.com/path",
                "ftp://x.org",
                ",",
                "https://www.example.com,,http://localhost:3000",
            ],
        );
    }

    #[test]
    fn a_database_url_names_one_sqlite_file() {
        for (url, path) in [
            ("sqlite:///tmp/x.db", "/tmp/x.db"),
            ("sqlite:x.db", "x.db"),
            ("file:x.db", "x.db"),
            ("file:///tmp/x.db", "/tmp/x.db"),
            ("file://localhost/tmp/x.db", "/tmp/x.db"),
            ("./data/a b.db", "./data/a b.db"),
        ] {
            let config = config(&[("DATABASE_URL", url)]).unwrap();
            assert_eq!(config.database_path, PathBuf::from(path), "{url}");
        }
        for url in [
            "postgres://localhost/x",
            "mysql://u:p@h/db",
            ":memory:",
            "sqlite::memory:",
            "sqlite:file::memory:",
            "file:x.db?mode=memory",
            "file://server/share/x.db",
        ] {
            let error = config(&[("DATABASE_URL", url)]).unwrap_err().to_string();
            assert!(
                error.contains("DATABASE_URL") && error.contains(url),
                "{url}: {error}"
            );
        }
    }

    /// A mounted secret ends in a newline; a `.env` line may end in a space.
    #[test]
    fn values_are_read_without_surrounding_whitespace() {
        let config = config(&[
            ("FRONTPAGE_ADMIN_TOKEN", "secret-token-123456\n"),
            ("DATABASE_URL", "/srv/news/frontpage.db "),
        ])
        .unwrap();
        assert_eq!(config.admin_token.as_deref(), Some("secret-token-123456"));
        assert_eq!(
            config.database_path,
            PathBuf::from("/srv/news/frontpage.db")
        );
    }

    /// Feed links start with the base URL: it may carry no fragment, query
    /// or credentials.
    #[test]
    fn the_public_base_url_is_an_address_to_link_to() {
        let given = config(&[("FRONTPAGE_PUBLIC_BASE_URL", "https://example.com/news-api/")]);
        assert_eq!(
            given.unwrap().public_base_url,
            "https://example.com/news-api"
        );
        refused(
            "FRONTPAGE_PUBLIC_BASE_URL",
            &[
                "https://example.com/news-api#top",
                "https://editor:secret@example.com",
                "https://example.com/?edition=uk",
                "example.com",
            ],
        );
    }

    #[test]
    fn a_short_token_and_feeds_linking_to_every_interface_are_doubted() {
        assert!(config(&[]).unwrap().doubts().is_empty());
        let doubts = config(&[
            ("FRONTPAGE_ADMIN_TOKEN", "abc"),
            ("FRONTPAGE_BIND_ADDR", "0.0.0.0:8080"),
        ])
        .unwrap()
        .doubts();
        assert_eq!(doubts.len(), 2, "{doubts:?}");
        assert!(doubts[0].contains("FRONTPAGE_ADMIN_TOKEN"));
        assert!(doubts[1].contains("http://0.0.0.0:8080"));
        let given = config(&[
            ("FRONTPAGE_ADMIN_TOKEN", "a-long-enough-admin-token"),
            ("FRONTPAGE_BIND_ADDR", "0.0.0.0:8080"),
            ("FRONTPAGE_PUBLIC_BASE_URL", "https://news.example.com"),
        ]);
        assert!(given.unwrap().doubts().is_empty());
    }

    #[test]
    fn workers_and_article_links_are_checked() {
        for workers in ["0", "513"] {
            let error = config(&[("FRONTPAGE_WORKERS", workers)]).unwrap_err();
            assert!(error.to_string().contains("expected 1 to 512"), "{error}");
        }
        assert_eq!(config(&[("FRONTPAGE_WORKERS", "3")]).unwrap().workers, 3);
        refused(
            "FRONTPAGE_ARTICLE_URL",
            &[
                "nothing",
                "{bogus}",
                "https://news.example.com/",
                "/articles/{slug}",
                "{base}/{slug}/{bogus}",
            ],
        );
        let config = config(&[("FRONTPAGE_ARTICLE_URL", "{base}/read/{id}")]).unwrap();
        assert_eq!(config.article_url, "{base}/read/{id}");
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        refused("FRONTPAGE_DEMO", &["maybe"]);
        refused("FRONTPAGE_BIND_ADDR", &["nowhere"]);
        refused("FRONTPAGE_MEMORY_MB", &["0"]);
        assert_eq!(
            config(&[("FRONTPAGE_MEMORY_MB", "64")]).unwrap().memory_mb,
            64
        );
    }
}
