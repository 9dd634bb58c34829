//! What operators see: a request id and one structured log line per request,
//! and Prometheus metrics at `/metrics`.
//!
//! Request counts and latency histograms by route template, method and
//! status; the store's pool and write queue, read when scraped; the caches'
//! hits and misses.

pub mod malformed;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{ApiError, Cause};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use rustc_hash::FxHashMap;

use crate::db::Db;
use crate::memory::Budget;
use crate::related;
use crate::route_table::{RouteTable, UNMATCHED};
use crate::state::AppState;

/// Carries the request id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller.
const MAX_REQUEST_ID: usize = 64;

/// Request latency buckets, in seconds: most answers take well under a
/// millisecond, so the default buckets (from 5 ms) would hide them.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Gives every request an id (answered as `X-Request-Id`), counts and times
/// it by route template, method and status, and logs one line for it when it
/// is answered: id, method, path, route, status and time.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // The caller's id when it is a short token, else a new random one.
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| value.to_str().is_ok_and(is_token))
        .cloned()
        .unwrap_or_else(new_id);
    let started = Instant::now();
    let state = req.app_data::<Data<AppState>>().cloned();
    let routes = req.app_data::<Data<RouteTable>>().cloned();
    let route = routes.as_deref().map_or(UNMATCHED, |routes| {
        routes.template(crate::route_table::routed_path(req.request()))
    });
    let method = req.method().clone();
    let logged = tracing::enabled!(target: "frontpage::http", tracing::Level::INFO)
        .then(|| req.uri().to_string());
    let res = next.call(req).await;
    let status = match &res {
        Ok(res) => res.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    let cause = match &res {
        Ok(res) => res.response().extensions().get::<Cause>().cloned(),
        Err(error) => error.as_error::<ApiError>().and_then(ApiError::cause),
    };
    if let Some(Cause {
        fault,
        what,
        detail,
    }) = cause
    {
        let request_id = id.to_str().unwrap_or_default();
        if fault {
            tracing::error!(%request_id, cause = %detail, "{what}");
        } else {
            tracing::warn!(%request_id, cause = %detail, "{what}");
        }
    }
    if let Some(state) = &state {
        state.metrics.observe(route, &method, status, started);
    }
    if let Some(uri) = logged {
        tracing::info!(
            target: "frontpage::http",
            request_id = %id.to_str().unwrap_or_default(),
            method = %method,
            uri = %uri,
            route,
            status = status.as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "answered"
        );
    }
    let mut res = res?;
    res.headers_mut().insert(REQUEST_ID, id);
    Ok(res)
}

fn is_token(value: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn new_id() -> HeaderValue {
    HeaderValue::from_str(&format!("{:016x}", rand::random::<u64>()))
        .expect("hex digits are a header value")
}

/// `/metrics`: every metric, in Prometheus text format; with
/// `FRONTPAGE_METRICS_TOKEN` set, only for a request that sends it (or the
/// admin token) as a Bearer token.
pub async fn metrics(state: Data<AppState>, req: HttpRequest) -> HttpResponse {
    if let Some(wanted) = &state.metrics_token_hash {
        let sent = crate::api::keys::bearer(&req).map(|token| crate::auth::hash_key(&token));
        let allowed = sent.is_some_and(|sent| {
            crate::auth::same_hash(wanted, &sent) || state.is_admin_token(&sent)
        });
        if !allowed {
            return ApiError::Unauthorized(
                "Metrics need FRONTPAGE_METRICS_TOKEN, sent as `Authorization: Bearer <token>`.",
            )
            .error_response();
        }
    }
    match TextEncoder::new().encode_to_string(&state.metrics.registry.gather()) {
        Ok(text) => HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            ))
            .body(text),
        Err(error) => {
            tracing::error!(%error, "encoding the metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// Numbers each [`Metrics`], for [`SERIES`].
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// The request series of one route template, method and status.
struct Series {
    route: Box<str>,
    latency: Histogram,
    requests: IntCounter,
}

/// What a request is counted by: the [`Metrics`] (its number), the address
/// of the route template's text, the method and the status.
type SeriesKey = (u64, usize, &'static str, u16);

thread_local! {
    /// The request series this thread has counted in: finding one by its
    /// labels hashes them and takes a lock that every worker shares, for
    /// each request. (Those of a dropped [`Metrics`], as in tests that make
    /// several apps on one thread, stay until the thread ends, unused.)
    static SERIES: RefCell<FxHashMap<SeriesKey, Series>> = RefCell::default();
}

/// The metrics of one server.
pub struct Metrics {
    instance: u64,
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    caches: IntCounterVec,
}

impl Metrics {
    /// Adds the progress of the Related engine.
    pub fn watch_related(&self, engine: Arc<related::Engine>) -> anyhow::Result<()> {
        let waiting = IntGauge::new(
            "frontpage_related_lists_waiting",
            "Related lists of older articles not yet computed and stored; the index stores them while idle.",
        )?;
        let up_to_date = IntGauge::new(
            "frontpage_related_up_to_date",
            "1 once the Related index is built and has followed every content write, with every list it computed stored; 0 while it builds, follows a write or stores lists.",
        )?;
        self.registry.register(Box::new(RelatedGauges {
            engine,
            waiting,
            up_to_date,
        }))?;
        Ok(())
    }

    /// Adds what the memory budget found and gave, and what each cache
    /// holds.
    pub fn watch_memory(&self, budget: Arc<Budget>) -> anyhow::Result<()> {
        let gauges = MemoryGauges {
            budget,
            grown: IntGauge::new(
                "frontpage_memory_grown_bytes",
                "Heap held by the Related index and lists and the reading graph, which grow with the store, as of the last balance of the memory budget.",
            )?,
            capacity: IntGaugeVec::new(
                Opts::new(
                    "frontpage_cache_capacity_bytes",
                    "What each in-memory cache may hold, its share of the memory budget.",
                ),
                &["cache"],
            )?,
            held: IntGaugeVec::new(
                Opts::new(
                    "frontpage_cache_bytes",
                    "What each in-memory cache holds, as it weighs its entries.",
                ),
                &["cache"],
            )?,
        };
        self.registry.register(Box::new(gauges))?;
        Ok(())
    }

    /// Metrics for a server over `db`, in a registry of their own.
    pub fn new(db: Db) -> anyhow::Result<Self> {
        let registry = Registry::new();
        let caches = IntCounterVec::new(
            Opts::new(
                "frontpage_cache_lookups_total",
                "Lookups in the in-memory caches, by cache and result (hit or miss).",
            ),
            &["cache", "result"],
        )?;
        registry.register(Box::new(caches.clone()))?;
        registry.register(Box::new(StoreGauges::new(db)?))?;
        registry.register(Box::new(malformed::MALFORMED.clone()))?;
        // Which build answers, as a dashboard shows it across a rollout.
        let build = IntGaugeVec::new(
            Opts::new(
                "frontpage_build_info",
                "Always 1; the version of the server that answers.",
            ),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry.register(Box::new(build))?;
        let labels = ["endpoint", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new(
                "frontpage_http_requests_total",
                "Requests answered, by route template, method and status.",
            ),
            &labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "frontpage_http_requests_duration_seconds",
                "Time from a request's head to its answer, by route template, method and status.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &labels,
        )?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            registry,
            requests,
            latency,
            caches,
        })
    }

    /// Counts a request to `route` answered with `status`, started at `started`.
    fn observe(&self, route: &str, method: &Method, status: StatusCode, started: Instant) {
        let method = method_label(method);
        let key = (
            self.instance,
            route.as_ptr() as usize,
            method,
            status.as_u16(),
        );
        SERIES.with_borrow_mut(|known| {
            let series = known
                .entry(key)
                .or_insert_with(|| self.series(route, method, status));
            // Another template's text, where a dropped route table's was.
            if *series.route != *route {
                *series = self.series(route, method, status);
            }
            series.latency.observe(started.elapsed().as_secs_f64());
            series.requests.inc();
        });
    }

    fn series(&self, route: &str, method: &str, status: StatusCode) -> Series {
        let labels = [route, method, status.as_str()];
        Series {
            route: route.into(),
            latency: self.latency.with_label_values(&labels),
            requests: self.requests.with_label_values(&labels),
        }
    }

    /// The hit and miss counters of the cache called `name`.
    pub fn cache(&self, name: &str) -> CacheCounters {
        CacheCounters {
            hit: self.caches.with_label_values(&[name, "hit"]),
            miss: self.caches.with_label_values(&[name, "miss"]),
        }
    }
}

/// A request's method as a metric label: HEAD as the GET it is answered
/// as, and any method the API has no route for as `OTHER`, so that made-up
/// methods cannot add series without end.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts a cache's hits and misses.
#[derive(Clone)]
pub struct CacheCounters {
    hit: IntCounter,
    miss: IntCounter,
}

/// Counters registered nowhere, for a cache made in a unit test.
#[cfg(test)]
impl Default for CacheCounters {
    fn default() -> Self {
        let counter = |name| IntCounter::new(name, name).expect("a valid metric name");
        Self {
            hit: counter("hit"),
            miss: counter("miss"),
        }
    }
}

impl CacheCounters {
    /// Counts one lookup.
    pub fn record(&self, hit: bool) {
        self.record_many(u64::from(hit), u64::from(!hit));
    }

    /// Counts many lookups at once: each count is an atomic add to a line
    /// that every worker writes, which a request that looks up many keys
    /// (a feed's items) should pay once, not for each.
    pub fn record_many(&self, hits: u64, misses: u64) {
        if hits > 0 {
            self.hit.inc_by(hits);
        }
        if misses > 0 {
            self.miss.inc_by(misses);
        }
    }
}

/// The read pool and the write queue, read when scraped.
struct StoreGauges {
    db: Db,
    connections: IntGauge,
    idle: IntGauge,
    max_connections: IntGauge,
    queued_writes: IntGauge,
    max_queued_writes: IntGauge,
    pending_reads: IntGauge,
    max_pending_reads: IntGauge,
    others_wrote: IntCounter,
    /// What `others_wrote` has been brought up to (scrapes may overlap).
    others_counted: AtomicU64,
}

impl StoreGauges {
    fn new(db: Db) -> prometheus::Result<Self> {
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let max_queued_writes = gauge(
            "frontpage_write_queue_capacity",
            "Writes the queue holds before new ones are refused with 503.",
        )?;
        max_queued_writes.set(crate::db::writer::QUEUE_CAPACITY as i64);
        let max_connections = gauge(
            "frontpage_db_read_connections_max",
            "Most read connections the pool opens.",
        )?;
        max_connections.set(i64::from(db.read_pool_size()));
        let max_pending_reads = gauge(
            "frontpage_read_queue_capacity",
            "Reads waiting or running before new ones are refused with 503.",
        )?;
        max_pending_reads.set(db.max_pending_reads() as i64);
        Ok(Self {
            db,
            connections: gauge("frontpage_db_read_connections", "Read connections open.")?,
            idle: gauge(
                "frontpage_db_read_connections_idle",
                "Read connections open and not in use.",
            )?,
            max_connections,
            queued_writes: gauge(
                "frontpage_write_queue_length",
                "Writes (views, reactions, edits) waiting for the writer.",
            )?,
            max_queued_writes,
            pending_reads: gauge(
                "frontpage_read_queue_length",
                "Reads (lists, searches, feeds) waiting for a connection or running.",
            )?,
            max_pending_reads,
            others_wrote: IntCounter::new(
                "frontpage_store_commits_by_others_total",
                "Times the writer saw another process commit to the store; each drops \
                 every cached article, count and response.",
            )?,
            others_counted: AtomicU64::new(0),
        })
    }

    fn gauges(&self) -> [&IntGauge; 7] {
        [
            &self.connections,
            &self.idle,
            &self.max_connections,
            &self.queued_writes,
            &self.max_queued_writes,
            &self.pending_reads,
            &self.max_pending_reads,
        ]
    }
}

impl Collector for StoreGauges {
    fn desc(&self) -> Vec<&Desc> {
        let gauges = self.gauges().into_iter().flat_map(|g| g.desc());
        gauges.chain(self.others_wrote.desc()).collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (connections, idle) = self.db.read_pool();
        self.connections.set(i64::from(connections));
        self.idle.set(i64::from(idle));
        self.queued_writes.set(self.db.queued_writes() as i64);
        self.pending_reads.set(self.db.pending_reads() as i64);
        let others_wrote = self.db.changes().others_wrote();
        let counted = self
            .others_counted
            .fetch_max(others_wrote, Ordering::SeqCst);
        self.others_wrote
            .inc_by(others_wrote.saturating_sub(counted));
        let gauges = self.gauges().into_iter().flat_map(|g| g.collect());
        gauges.chain(self.others_wrote.collect()).collect()
    }
}

/// The Related engine's progress, read when scraped.
struct RelatedGauges {
    engine: Arc<related::Engine>,
    waiting: IntGauge,
    up_to_date: IntGauge,
}

impl Collector for RelatedGauges {
    fn desc(&self) -> Vec<&Desc> {
        let mut desc = self.waiting.desc();
        desc.extend(self.up_to_date.desc());
        desc
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.waiting.set(self.engine.waiting() as i64);
        self.up_to_date.set(i64::from(self.engine.up_to_date()));
        let mut families = self.waiting.collect();
        families.extend(self.up_to_date.collect());
        families
    }
}

/// The memory budget's gauges, read when scraped.
struct MemoryGauges {
    budget: Arc<Budget>,
    grown: IntGauge,
    capacity: IntGaugeVec,
    held: IntGaugeVec,
}

impl Collector for MemoryGauges {
    fn desc(&self) -> Vec<&Desc> {
        let mut desc = self.grown.desc();
        desc.extend(self.capacity.desc());
        desc.extend(self.held.desc());
        desc
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (cache, bytes) in self.budget.held() {
            self.held.with_label_values(&[cache]).set(bytes as i64);
        }
        let mut families = self.held.collect();
        // Nothing is said of the budget until the store has loaded.
        if let Some(balance) = self.budget.last() {
            self.grown.set(balance.grown as i64);
            for (cache, bytes) in balance.caches {
                self.capacity.with_label_values(&[cache]).set(bytes as i64);
            }
            families.extend(self.grown.collect());
            families.extend(self.capacity.collect());
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::is_token;

    #[test]
    fn only_short_plain_tokens_are_taken_as_request_ids() {
        assert!(is_token("abc-123_X.y"));
        assert!(!is_token(""));
        assert!(!is_token("has space"));
        assert!(!is_token("line\nbreak"));
        assert!(!is_token(&"a".repeat(65)));
    }
}
