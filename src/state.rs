//! What every handler reaches: the store, the caches and the engines, how a
//! content write reaches each of them, and the thread that keeps the caches
//! within the memory budget.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::web::Data;
use diesel::SqliteConnection;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::api::articles::ArticleCache;
use crate::api::feeds::FeedLinks;
use crate::auth::{self, KeyHash};
use crate::config::{Config, CorsOrigins};
use crate::db::{Db, StoreError, StoreResult, purge};
use crate::drain::Drain;
use crate::http_cache::{CachePolicy, ResponseCache};
use crate::memory::{self, Bounded, Budget, Resizable};
use crate::observe::Metrics;
use crate::ranking::{self, Decay};
use crate::{recommend, related};

/// Engagement writes allowed per client address.
pub type ClientLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// What every handler can reach.
pub struct AppState {
    /// The store.
    pub db: Db,
    /// How long a client has to send a request body.
    pub body_timeout: Duration,
    /// Hash of `FRONTPAGE_ADMIN_TOKEN`, when set.
    pub admin_token_hash: Option<KeyHash>,
    /// `FRONTPAGE_METRICS_TOKEN`, hashed: what `/metrics` asks for, if set
    /// (see [`AppState::is_admin_token`] for the other key it takes).
    pub metrics_token_hash: Option<KeyHash>,
    /// The per-client limit on engagement writes; `None` when turned off.
    pub limiter: Option<ClientLimiter>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How `trending` rankings decay.
    pub decay: Decay,
    /// Recently summed rankings.
    pub rankings: ranking::Cache<crate::api::ranking::Scored>,
    /// Counts content writes (see [`AppState::content_changed`]).
    content_generation: AtomicU64,
    /// Other processes' commits noticed (see [`AppState::notice_other_writers`]).
    others_noticed: AtomicU64,
    /// The Related index and lists.
    pub related: Arc<related::Engine>,
    /// Wakes the thread that keeps `related` current.
    pub related_refresh: related::Refresh,
    /// Who read what, for recommendations.
    pub recommend: Arc<recommend::Engine>,
    /// `Cache-Control` and compression of GET responses.
    pub cache_policy: CachePolicy,
    /// Serialised public responses, ready to serve again.
    pub responses: Arc<ResponseCache>,
    /// Articles ready to show.
    pub articles: Arc<ArticleCache>,
    /// Wakes the thread that removes deleted articles' views.
    pub view_purges: purge::Purger,
    /// Request, store and cache metrics, served at `/metrics`.
    pub metrics: Metrics,
    /// Origins whose pages may call the API from a browser.
    pub cors_origins: CorsOrigins,
    /// Where feed links point.
    pub feed_links: FeedLinks,
    /// Whether `/reader/` serves the example reader page.
    pub reader: bool,
    /// Refuses new requests once shutdown begins; counts those in flight.
    pub drain: Drain,
}

impl AppState {
    /// Drops whatever is cached of article content; every admin write but
    /// one to articles alone runs it once it has committed
    /// ([`AppState::write_content`]; those run [`AppState::articles_changed`]),
    /// so no response shows an old title.
    pub fn content_changed(&self) {
        self.changed(None);
    }

    /// [`AppState::content_changed`] after a write to these articles alone:
    /// the other articles kept stay (see [`ArticleCache::forget`]).
    pub fn articles_changed(&self, ids: &[i32]) {
        self.changed(Some(ids));
    }

    /// A content write: to these articles alone, or to anything (`None`).
    fn changed(&self, articles: Option<&[i32]>) {
        self.content_generation.fetch_add(1, Ordering::SeqCst);
        // Responses last: one made in between from a cache not yet emptied
        // would otherwise be kept as current.
        let every_article = match articles {
            Some(ids) => self.articles.forget(ids),
            None => {
                self.articles.invalidate();
                true
            }
        };
        self.rankings.expire();
        self.recommend.content_changed();
        self.responses.invalidate();
        if every_article {
            // Kept responses share articles' bodies with the article cache
            // (see `http_cache::SplicedBody`), which has just let go of
            // every one: they go too, or they would hold them all outside
            // the budget until each was asked for again.
            self.responses.clear();
        }
        self.related_refresh.nudge();
        self.view_purges.nudge();
    }

    /// Runs an admin write of content ([`Db::write`]) and, once it has
    /// committed, drops what is cached of content ([`AppState::content_changed`])
    /// before the caller hears of it. Done on the writer's side, not by the
    /// handler after it: a client that hangs up, or a commit whose sync to
    /// disk fails, must not leave old pages cached until the next write.
    pub async fn write_content<T, F>(state: &Data<Self>, work: F) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let changed = Data::clone(state);
        state
            .db
            .write_then(work, move |outcome| {
                if !outcome.as_ref().is_err_and(refused) {
                    changed.content_changed();
                }
            })
            .await
    }

    /// [`AppState::write_content`] for a write to articles alone (not the
    /// category tree, authors or tags): `changed` names those it wrote, from
    /// what it returns, and only they are dropped from the article cache.
    pub async fn write_articles<T, F>(
        state: &Data<Self>,
        work: F,
        changed: fn(&T) -> i32,
    ) -> StoreResult<T>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let state = Data::clone(state);
        state
            .db
            .clone()
            .write_then(work, move |outcome| match outcome {
                Ok(written) => state.articles_changed(&[changed(written)]),
                Err(error) if refused(error) => {}
                // Maybe half written: whatever it was is dropped.
                Err(_) => state.content_changed(),
            })
            .await
    }

    /// True when `hash` is that of `FRONTPAGE_ADMIN_TOKEN`, which grants
    /// every scope.
    pub fn is_admin_token(&self, hash: &KeyHash) -> bool {
        self.admin_token_hash
            .is_some_and(|admin| auth::same_hash(&admin, hash))
    }

    /// Treats a commit by another process (an import, a script) as a
    /// content write, once: the writer looks for them a few times a second
    /// (see [`crate::db::changes`]), and every request calls this first.
    pub fn notice_other_writers(&self) {
        let seen = self.db.changes().others_wrote();
        if self.others_noticed.swap(seen, Ordering::SeqCst) != seen {
            tracing::info!("another process wrote to the store; cached content is dropped");
            self.content_changed();
        }
    }

    /// How many content writes there have been; what was loaded of content
    /// in an older generation is not shown again.
    pub fn content_generation(&self) -> u64 {
        self.content_generation.load(Ordering::SeqCst)
    }

    /// State for a configuration over an open store; starts the threads that
    /// build the Related index and load the reading history.
    pub fn new(config: &Config, db: Db) -> anyhow::Result<Self> {
        let others_noticed = db.changes().others_wrote();
        let metrics = Metrics::new(db.clone())?;
        // Built again while serving (see `Engine::take_rebuild_due`) only
        // while a second index fits in an eighth of the memory budget.
        let related = Arc::new(
            related::Engine::new(config.related_lists)
                .with_rebuild_room(config.memory_mb * MIB / REBUILD_ROOM_SHARE),
        );
        metrics.watch_related(Arc::clone(&related))?;
        let decay = Decay {
            half_life_hours: config.trending_half_life_hours,
            reaction_weight: config.trending_reaction_weight,
        };
        let recommend = Arc::new(recommend::Engine::new(recommend::Params {
            half_life_days: config.recommend_half_life_days,
            category_share: config.recommend_category_share,
            decay,
        }));
        recommend.spawn_loader(db.clone())?;
        let view_purges = purge::spawn(db.clone())?;
        let articles = Arc::new(ArticleCache::new(
            config.article_cache_mb * MIB,
            metrics.cache("articles"),
        ));
        let responses = Arc::new(ResponseCache::new(
            config.response_cache_mb * MIB,
            Duration::from_secs(config.response_cache_secs),
            metrics.cache("responses"),
        ));
        spawn_sweeping(&responses)?;
        // Answers kept while a write's lists were being recomputed show the
        // old lists: dropped once they are made (the write itself dropped
        // everything kept before it).
        let related_refresh = related::spawn_refresher(Arc::clone(&related), db.clone(), {
            let responses = Arc::clone(&responses);
            move || responses.related_changed()
        })?;
        let budget = Arc::new(Budget::new(
            config.memory_mb * MIB,
            vec![
                Arc::clone(&related) as Arc<dyn memory::Grown>,
                Arc::clone(&recommend) as Arc<dyn memory::Grown>,
            ],
            // In the order they are served (see `memory`).
            vec![
                Bounded {
                    name: "neighbours",
                    cache: Arc::clone(&recommend) as Arc<dyn Resizable>,
                    bound: recommend::NEIGHBOURS_BYTES,
                },
                Bounded {
                    name: "older related lists",
                    cache: Arc::clone(&related) as Arc<dyn Resizable>,
                    bound: related::OLDER_LISTS_BYTES,
                },
                Bounded {
                    name: "articles",
                    cache: Arc::clone(&articles) as Arc<dyn Resizable>,
                    bound: config.article_cache_mb * MIB,
                },
                Bounded {
                    name: "responses",
                    cache: Arc::clone(&responses) as Arc<dyn Resizable>,
                    // Turned off, it holds nothing and is given nothing.
                    bound: if config.response_cache_secs == 0 {
                        0
                    } else {
                        config.response_cache_mb * MIB
                    },
                },
            ],
        ));
        metrics.watch_memory(Arc::clone(&budget))?;
        spawn_balancing(
            budget,
            Arc::clone(&articles),
            Arc::clone(&related),
            Arc::clone(&recommend),
            db.clone(),
        )?;
        Ok(Self {
            view_purges,
            articles,
            recommend,
            responses,
            metrics,
            cors_origins: config.cors_origins.clone(),
            reader: config.reader,
            feed_links: FeedLinks::new(
                config.site_name.clone(),
                config.public_base_url.clone(),
                config.article_url.clone(),
            ),
            cache_policy: CachePolicy {
                max_age: config.cache_max_age,
                feed_max_age: config.feed_max_age,
                stale_while_revalidate: config.stale_while_revalidate,
                compress_min_bytes: config.compress_min_bytes,
            },
            related,
            related_refresh,
            db,
            admin_token_hash: config.admin_token.as_deref().map(auth::hash_key),
            metrics_token_hash: config.metrics_token.as_deref().map(auth::hash_key),
            limiter: NonZeroU32::new(config.rate_limit_per_min)
                .map(|per_minute| RateLimiter::keyed(Quota::per_minute(per_minute))),
            trusted_proxies: config.trusted_proxies.clone(),
            decay,
            rankings: ranking::Cache::new(Duration::from_secs(config.ranking_cache_secs)),
            body_timeout: config.body_timeout,
            content_generation: AtomicU64::new(0),
            others_noticed: AtomicU64::new(others_noticed),
            drain: Drain::default(),
        })
    }
}

const MIB: u64 = 1 << 20;
/// The Related index is built again while serving only while it takes at
/// most this share of the memory budget (one over this).
const REBUILD_ROOM_SHARE: u64 = 8;

/// How often the balancing thread looks whether the store has loaded.
const LOADED_POLL: Duration = Duration::from_millis(100);

/// Starts the thread that keeps the caches within the memory budget: once
/// the Related index is built and the reading history loaded (until then
/// every cache is at the budget's floor), it sizes the caches, fills the
/// neighbour lists, the article cache and the older Related lists, and
/// sizes them again every [`memory::BALANCE_EVERY`] as the store grows. It
/// warms the article cache again whenever a write empties it.
fn spawn_balancing(
    budget: Arc<Budget>,
    articles: Arc<ArticleCache>,
    related: Arc<related::Engine>,
    recommend: Arc<recommend::Engine>,
    db: Db,
) -> std::io::Result<()> {
    crate::background::spawn("frontpage-memory", move || {
        while !(related.built_once() && recommend.loaded()) {
            std::thread::sleep(LOADED_POLL);
        }
        let sized = |balance: memory::Balance| {
            tracing::info!(
                grown_mib = balance.grown >> 20,
                caches_mib = ?balance.caches.iter().map(|(name, bytes)| (*name, bytes >> 20)).collect::<Vec<_>>(),
                "caches sized to the memory budget"
            );
        };
        sized(budget.balance());
        let started = Instant::now();
        recommend.compute_ahead(crate::db::now());
        let emptied = articles.emptied();
        if let Some(emptied) = &emptied {
            // What emptied it before now is warmed over here.
            let _ = emptied.try_recv();
        }
        match articles.warm(&db) {
            Ok(count) => tracing::info!(
                articles = count,
                seconds = started.elapsed().as_secs_f32(),
                "neighbour lists computed ahead and article cache warmed"
            ),
            Err(error) => tracing::warn!(%error, "warming the article cache failed"),
        }
        // Filled, the caches know better what they could use: what a small
        // store's leave goes to the caches after them.
        sized(budget.balance());
        let started = Instant::now();
        match related.warm_older(&db) {
            Ok(count) => tracing::info!(
                lists = count,
                seconds = started.elapsed().as_secs_f32(),
                "related lists of older articles warmed"
            ),
            Err(error) => tracing::warn!(%error, "warming the older related lists failed"),
        }
        // The article cache is warmed again once writes that emptied it
        // have paused for `WARM_AGAIN_AFTER`: an import empties it again
        // and again, and is warmed for once, after its last batch.
        let mut balance_at = Instant::now() + memory::BALANCE_EVERY;
        let mut warm_at: Option<Instant> = None;
        loop {
            let due = warm_at.map_or(balance_at, |at| at.min(balance_at));
            let wait = due.saturating_duration_since(Instant::now());
            let told = match &emptied {
                Some(emptied) => emptied.recv_timeout(wait).is_ok(),
                None => {
                    std::thread::sleep(wait);
                    false
                }
            };
            if told {
                warm_at = Some(Instant::now() + WARM_AGAIN_AFTER);
                continue;
            }
            let now = Instant::now();
            if warm_at.is_some_and(|at| at <= now) {
                warm_at = None;
                warm_again(&articles, &db);
            }
            if balance_at <= now {
                let balance = budget.balance();
                tracing::debug!(
                    grown_mib = balance.grown >> 20,
                    "caches sized to the memory budget"
                );
                balance_at = Instant::now() + memory::BALANCE_EVERY;
            }
        }
    })?;
    Ok(())
}

/// Sweeps the response cache every [`crate::http_cache::SWEEP_EVERY`] (see
/// [`ResponseCache::sweep`]) for as long as the server has it.
fn spawn_sweeping(responses: &Arc<ResponseCache>) -> std::io::Result<()> {
    let responses = Arc::downgrade(responses);
    crate::background::spawn("frontpage-responses", move || {
        loop {
            std::thread::sleep(crate::http_cache::SWEEP_EVERY);
            match responses.upgrade() {
                Some(responses) => responses.sweep(),
                None => return,
            }
        }
    })?;
    Ok(())
}

/// Fills the article cache again after a write forgot every article (a
/// category, author or tag write, an import, another process's write).
fn warm_again(articles: &ArticleCache, db: &Db) {
    let started = Instant::now();
    match articles.warm(db) {
        Ok(count) => tracing::info!(
            articles = count,
            seconds = started.elapsed().as_secs_f32(),
            "article cache warmed again after a write emptied it"
        ),
        Err(error) => tracing::warn!(%error, "warming the article cache again failed"),
    }
}

/// How long content writes must pause before the article cache they
/// emptied is warmed again.
const WARM_AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Whether a write's error undid its own savepoint: nothing changed.
fn refused(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::NotFound
            | StoreError::Changed
            | StoreError::Conflict(_)
            | StoreError::SlugTaken(_)
            | StoreError::Invalid(_)
    )
}
