//! Builds the actix application: state, middleware, error handling, routes.
//! `main` and the tests use the same [`app`], so tests see what users see.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::Service;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::{Compress, ErrorHandlerResponse, ErrorHandlers, Next, from_fn};
use actix_web::web::{self, Data};
use actix_web::{App, HttpRequest, HttpResponse};
use diesel::SqliteConnection;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use utoipa::openapi::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::SwaggerUi;

use crate::api;
use crate::api::articles::ArticleCache;
use crate::api::feeds::FeedLinks;
use crate::auth::{self, KeyHash};
use crate::config::{Config, CorsOrigins};
use crate::db::{Db, StoreError, StoreResult, purge};
use crate::drain::{self, Drain};
use crate::error::{ApiError, PROBLEM_JSON, echo, problem_for_status, problem_response};
use crate::http_cache::{self, CachePolicy, ResponseCache};
use crate::memory::{self, Bounded, Budget, Resizable};
use crate::observe::{self, Metrics};
use crate::ranking::{self, Decay};
use crate::route_table::RouteTable;
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
    /// The per-client limit on engagement writes; `None` when turned off.
    pub limiter: Option<ClientLimiter>,
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
    /// Drops whatever is cached of article content; every admin write runs
    /// it once it has committed ([`AppState::write_content`]), so no response
    /// shows an old title.
    pub fn content_changed(&self) {
        self.content_generation.fetch_add(1, Ordering::SeqCst);
        // Responses last: one made in between from a cache not yet emptied
        // would otherwise be kept as current.
        self.articles.invalidate();
        self.rankings.expire();
        self.recommend.content_changed();
        self.responses.invalidate();
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
                // These undo the write's own savepoint: nothing changed.
                let refused = matches!(
                    outcome,
                    Err(StoreError::NotFound | StoreError::Conflict(_) | StoreError::Invalid(_))
                );
                if !refused {
                    changed.content_changed();
                }
            })
            .await
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
        let related = Arc::new(related::Engine::new(config.related_lists));
        metrics.watch_related(Arc::clone(&related))?;
        let related_refresh = related::spawn_refresher(Arc::clone(&related), db.clone())?;
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
                Bounded {
                    name: "older related lists",
                    cache: Arc::clone(&related) as Arc<dyn Resizable>,
                    bound: related::OLDER_LISTS_BYTES,
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
            feed_links: FeedLinks {
                site_name: config.site_name.clone(),
                base_url: config.public_base_url.clone(),
                article_url: config.article_url.clone(),
            },
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
            limiter: NonZeroU32::new(config.rate_limit_per_min)
                .map(|per_minute| RateLimiter::keyed(Quota::per_minute(per_minute))),
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

/// How often the balancing thread looks whether the store has loaded.
const LOADED_POLL: Duration = Duration::from_millis(100);

/// Starts the thread that keeps the caches within the memory budget: once
/// the Related index is built and the reading history loaded (until then
/// every cache is at the budget's floor), it sizes the caches, fills the
/// neighbour lists and the article cache, and sizes them again every
/// [`memory::BALANCE_EVERY`] as the store grows.
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
        let started = std::time::Instant::now();
        recommend.compute_ahead(crate::db::now());
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
        loop {
            std::thread::sleep(memory::BALANCE_EVERY);
            let balance = budget.balance();
            tracing::debug!(
                grown_mib = balance.grown >> 20,
                "caches sized to the memory budget"
            );
        }
    })?;
    Ok(())
}

/// Every documented route: operations at the root, the API under `/api/v1`.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(api::ops::healthz)
        .service(api::ops::readyz)
        .service(api::feeds::latest_feed)
        .service(api::feeds::category_feed)
        .service(api::feeds::ranking_feed)
        .service(utoipa_actix_web::scope("/api/v1").configure(api::routes));
}

/// Answers requests no route took: 405 with `Allow` when the path exists, else 404.
async fn fallback(req: HttpRequest, table: Data<RouteTable>) -> Result<HttpResponse, ApiError> {
    match table.allowed(req.path()) {
        Some(allowed) if !allowed.contains(&req.method().as_str()) => Err(
            ApiError::MethodNotAllowed(allowed.into_iter().map(str::to_owned).collect()),
        ),
        _ => Err(ApiError::NotFound(format!(
            "Nothing is at `{}`.",
            echo(req.path())
        ))),
    }
}

/// `/docs` is the Swagger UI at `/docs/`.
async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Turns any error response that is not already a problem (actix's own
/// plain-text errors) into `application/problem+json`.
fn problem_for_plain_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if is_problem(res.headers()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, res) = res.into_parts();
    let problem = problem_response(&problem_for_status(res.status()));
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, problem).map_into_right_body(),
    ))
}

fn is_problem(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(PROBLEM_JSON.as_bytes()))
}

/// Errors made by the layers outside [`problem_for_plain_errors`], as
/// problems too: `Compress` finding no encoding the client accepts (406),
/// and CORS refusing a preflight or an origin. What they said in plain text
/// becomes the detail.
async fn problems_from_outer_layers<B: MessageBody + 'static>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    match result {
        Ok(res) => {
            let failed = res.status().is_client_error() || res.status().is_server_error();
            if !failed || is_problem(res.headers()) {
                return Ok(res.map_into_left_body());
            }
            let (req, res) = res.into_parts();
            let problem = as_problem(res.map_into_boxed_body()).await;
            Ok(ServiceResponse::new(req, problem).map_into_right_body())
        }
        // Without the request (the inner layers took it) the error itself
        // must answer as a problem.
        Err(error) => {
            let problem = as_problem(error.error_response()).await;
            Err(InternalError::from_response(error, problem).into())
        }
    }
}

/// A plain error response as a problem with the same status and headers.
async fn as_problem(res: HttpResponse) -> HttpResponse {
    let status = res.status();
    let mut problem = problem_for_status(status);
    let headers = res.headers().clone();
    let said = actix_web::body::to_bytes(res.into_body())
        .await
        .unwrap_or_default();
    let said = String::from_utf8_lossy(&said).trim().to_string();
    if status == StatusCode::NOT_ACCEPTABLE {
        problem.detail = format!(
            "No encoding that Accept-Encoding allows is available; this server sends {said}."
        );
    } else if !said.is_empty() {
        problem.detail = format!("{}.", said.trim_end_matches('.'));
    }
    let mut response = problem_response(&problem);
    // The body is new: nothing that described the old one is kept.
    let described_body = [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
    ];
    for (name, value) in &headers {
        if !described_body.contains(name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response
}

/// The whole application over `state`, serving `spec` at `/openapi.json`.
pub fn app(
    state: Data<AppState>,
    spec: OpenApi,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let table = RouteTable::from_spec(&spec);
    let cors = cors(&state.cors_origins);
    let reader = state.reader;
    let (app, _) = App::new()
        .into_utoipa_app()
        .app_data(state)
        .app_data(Data::new(table))
        .configure(routes)
        .split_for_parts();
    let mut app = app
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", spec))
        .route("/docs", web::get().to(docs_redirect))
        .route("/metrics", web::get().to(observe::metrics));
    if reader {
        app = app.configure(crate::reader::routes);
    }
    app.default_service(web::route().to(fallback))
        .wrap(ErrorHandlers::new().default_handler(problem_for_plain_errors))
        .wrap(from_fn(http_cache::conditional))
        .wrap_fn(|mut req, srv| {
            // HEAD is GET without the body (actix drops the body of a HEAD
            // response), so every GET route answers HEAD too.
            if req.method() == Method::HEAD {
                req.head_mut().method = Method::GET;
            }
            srv.call(req)
        })
        .wrap(Compress::default())
        .wrap(from_fn(http_cache::after_compress))
        .wrap(cors)
        .wrap(from_fn(security_headers))
        .wrap(from_fn(limit_request))
        .wrap(from_fn(drain::admit))
        .wrap(from_fn(observe::request_log))
}

/// What an HTML page may load when it does not say: its own scripts, and
/// styles and images of its own (Swagger UI sets inline styles).
const HTML_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Longest request target (path and query) served.
pub const MAX_URI: usize = 8 * 1024;
/// Most header bytes (names and values) and headers a request may carry.
/// Actix-web itself stops reading a head at 128 KiB or 96 headers, and
/// answers that without a body; these limits come first, with a problem.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;

/// Refuses request targets over [`MAX_URI`] (414) and header sets over
/// [`MAX_HEADER_BYTES`] or [`MAX_HEADERS`] (431) with a problem, before any
/// route parses them.
async fn limit_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let target = req
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let refusal = if target > MAX_URI {
        Some(ApiError::UriTooLong(MAX_URI))
    } else if header_bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS {
        Some(ApiError::HeadersTooLarge {
            bytes: MAX_HEADER_BYTES,
            count: MAX_HEADERS,
        })
    } else {
        None
    };
    if let Some(error) = refusal {
        let response = actix_web::ResponseError::error_response(&error);
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// `X-Content-Type-Options: nosniff` on every response, and a restrictive
/// `Content-Security-Policy` on HTML pages that do not set their own; the
/// refusals of compression and CORS (just inside) as problems.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = problems_from_outer_layers(next.call(req).await).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(HTML_POLICY),
        );
    }
    Ok(res)
}

/// Cross-origin access for browsers: any origin (never with credentials;
/// the API authenticates with bearer keys, not cookies) or a list.
fn cors(origins: &CorsOrigins) -> Cors {
    let cors = Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::ACCEPT,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            observe::REQUEST_ID,
        ])
        .expose_headers([
            header::ETAG,
            header::LAST_MODIFIED,
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            observe::REQUEST_ID,
        ])
        .max_age(3600);
    match origins {
        // The same answer for every origin: caches need no `Vary: Origin`.
        CorsOrigins::Any => cors
            .allow_any_origin()
            .send_wildcard()
            .disable_vary_header(),
        CorsOrigins::List(list) => list
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin)),
    }
}
