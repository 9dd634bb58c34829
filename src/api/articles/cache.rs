//! Articles as shown, kept in memory between requests: bounded in bytes,
//! forgotten when they change (every one at a write that may change any),
//! and warmed at start and again after a write that forgot every one.

mod filed;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use diesel::sqlite::SqliteConnection;
use parking_lot::{Mutex, RwLock};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde_json::value::RawValue;

use super::{Article, ArticleSummary, JsonText, ShownArticle, Teaser, render};
use crate::db::articles::{self, ArticleKey, ListFilter, Taxonomy};
use crate::db::changes::Counts;
use crate::db::{self, Db, StoreResult};
use crate::observe::CacheCounters;
use filed::Filed;
pub use filed::KnownToCache;

/// Articles as shown, kept between requests so that a read needs no
/// statement; their counters, which change with every view, are kept apart
/// (see [`crate::db::changes::Counters`]). Bounded in bytes. A write to
/// articles calls [`ArticleCache::forget`] with them once it has committed;
/// any other content write (the category tree, an author, a tag) calls
/// [`ArticleCache::invalidate`], and so does the first request after the
/// writer has seen another process write to the store (see
/// [`crate::state::AppState::notice_other_writers`]).
pub struct ArticleCache {
    /// `None` when turned off.
    entries: Option<Cache<ArticleKey, Arc<CachedArticle>, ArticleSize>>,
    /// Counts content writes: an entry loaded before one is not kept (see
    /// [`ArticleCache::put`]).
    generation: AtomicU64,
    /// The generation of the last write that may have changed any article:
    /// entries loaded before it do not serve.
    floor: AtomicU64,
    /// The generation of the last write to each article written since
    /// `floor` (see [`ArticleCache::forget`]).
    changed: RwLock<HashMap<i32, u64>>,
    lookups: CacheCounters,
    /// Where kept articles are filed, by id: what a recommendation asks of
    /// a hundred candidates, answered from 16 bytes an article rather than
    /// from the entries themselves (three cache misses each). Emptied with
    /// the entries, an article's slot with its entry; filled from them as
    /// it is asked.
    filed: RwLock<Vec<Filed>>,
    /// The category tree and reaction kinds, and the generation they were
    /// loaded in: what every article shares, kept so that loading an
    /// article the cache does not hold reads only that article's rows.
    taxonomy: Mutex<Option<(u64, Taxonomy)>>,
    /// What every published article weighed, once warming found room for
    /// them all: the cache could use little more (see
    /// [`crate::memory::Resizable::wanted`]). Zero until then.
    all_weigh: AtomicU64,
    /// Told when every article is forgotten; the receiving end is handed
    /// out once (see [`ArticleCache::emptied`]).
    emptied: SyncSender<()>,
    emptied_told: Mutex<Option<Receiver<()>>>,
}

/// An article, the content generation it was loaded in, and its list form
/// as last shown.
pub(super) struct CachedArticle {
    pub(super) summary: Arc<ArticleSummary>,
    body_html: JsonText,
    generation: u64,
    /// The summary's JSON and the counters it shows.
    shown: Mutex<Option<(Arc<Counts>, Arc<RawValue>)>>,
}

impl CachedArticle {
    pub(super) fn new(article: Article, generation: u64) -> Self {
        Self {
            summary: Arc::new(article.summary),
            body_html: article.body_html,
            generation,
            shown: Mutex::default(),
        }
    }

    /// The article as a read shows it with `counts`.
    pub(super) fn shown(&self, counts: Arc<Counts>) -> ShownArticle {
        ShownArticle {
            teaser: self.teaser(&counts),
            body_html: self.body_html.clone(),
            counts,
        }
    }

    /// Its list form showing `counts`, if it was last shown with these
    /// very counters (the same `Arc`: a pointer compared, quick enough for
    /// the counters' lock, under which [`super::load::teasers`] asks).
    pub(super) fn shown_teaser(&self, counts: &Arc<Counts>) -> Option<Teaser> {
        let shown = self.shown.lock();
        let (_, json) = shown
            .as_ref()
            .filter(|(shown, _)| Arc::ptr_eq(shown, counts))?;
        Some(Teaser {
            summary: Arc::clone(&self.summary),
            json: Arc::clone(json),
            counts: Some(Arc::downgrade(counts)),
        })
    }

    /// Its list form showing `counts`: rendered again only when they are
    /// not the values it was last shown with (counters read again with the
    /// same values, after a write elsewhere dropped them, are kept instead,
    /// so that the next look is a pointer's).
    pub(super) fn teaser(&self, counts: &Arc<Counts>) -> Teaser {
        if let Some(teaser) = self.shown_teaser(counts) {
            return teaser;
        }
        let summary = Arc::clone(&self.summary);
        let mut shown = self.shown.lock();
        if let Some((kept, json)) = shown.as_mut().filter(|(kept, _)| kept == counts) {
            *kept = Arc::clone(counts);
            let json = Arc::clone(json);
            let counts = Some(Arc::downgrade(counts));
            return Teaser {
                summary,
                json,
                counts,
            };
        }
        drop(shown);
        let mut rendered = ArticleSummary::clone(&self.summary);
        rendered.stats.refresh(counts);
        let json = render(&rendered);
        *self.shown.lock() = Some((Arc::clone(counts), Arc::clone(&json)));
        let counts = Some(Arc::downgrade(counts));
        Teaser {
            summary,
            json,
            counts,
        }
    }
}

/// Weighs an entry by the bytes it holds, roughly: the body, the summary
/// (its strings and about a kilobyte of the rest), and the summary's JSON
/// once shown (its strings again and about 600 bytes of the rest).
#[derive(Clone)]
struct ArticleSize;

impl Weighter<ArticleKey, Arc<CachedArticle>> for ArticleSize {
    fn weight(&self, _: &ArticleKey, cached: &Arc<CachedArticle>) -> u64 {
        let summary = &cached.summary;
        let strings = summary.slug.len() + summary.title.len() + summary.summary.len();
        (cached.body_html.json_len() + 2 * strings + 1024 + 600) as u64
    }
}

impl ArticleCache {
    /// A cache of at most `bytes`; zero turns it off.
    pub fn new(bytes: u64, lookups: CacheCounters) -> Self {
        let (emptied, emptied_told) = sync_channel(1);
        Self {
            lookups,
            entries: (bytes > 0)
                .then(|| Cache::with_weighter((bytes / 4096).max(16) as usize, bytes, ArticleSize)),
            generation: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            changed: RwLock::default(),
            filed: RwLock::default(),
            taxonomy: Mutex::default(),
            all_weigh: AtomicU64::new(0),
            emptied,
            emptied_told: Mutex::new(Some(emptied_told)),
        }
    }

    /// The taxonomy kept for content `generation`, if it is.
    pub fn kept_taxonomy(&self, generation: u64) -> Option<Taxonomy> {
        match &*self.taxonomy.lock() {
            Some((kept, taxonomy)) if *kept == generation => Some(taxonomy.clone()),
            _ => None,
        }
    }

    /// The category tree and reaction kinds, loaded at most once per
    /// content write. `generation` must have been read (see
    /// [`ArticleCache::generation`]) before `conn`'s transaction read
    /// anything: what it loads is then at least that new, and a write
    /// committed in between makes it old at once, never the other way round.
    pub fn taxonomy(&self, conn: &mut SqliteConnection, generation: u64) -> StoreResult<Taxonomy> {
        if let Some(taxonomy) = self.kept_taxonomy(generation) {
            return Ok(taxonomy);
        }
        let taxonomy = Taxonomy::load(conn)?;
        let mut kept = self.taxonomy.lock();
        // A slower load of an older generation must not replace a newer.
        if kept.as_ref().is_none_or(|(kept, _)| *kept < generation) {
            *kept = Some((generation, taxonomy.clone()));
        }
        Ok(taxonomy)
    }

    /// Forgets every article: content changed that any may show.
    pub fn invalidate(&self) {
        // Under the table's lock, so that nothing learnt before the write
        // is kept after it (see `placements` and `put`).
        let mut filed = self.filed.write();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.floor.store(generation, Ordering::SeqCst);
        self.changed.write().clear();
        filed.clear();
        if let Some(entries) = &self.entries {
            entries.clear();
        }
        // A word still pending covers this one.
        let _ = self.emptied.try_send(());
    }

    /// A word each time a write has forgotten every article
    /// ([`ArticleCache::invalidate`]; one word may stand for several), for
    /// the thread that warms the cache again: feeds do not fill it (see
    /// [`super::teasers`]), and emptied it would stay cold for the teasers
    /// of every Related list and recommendation until each article was
    /// read alone. Handed out once; `None` after that, and when the cache
    /// is turned off.
    pub fn emptied(&self) -> Option<Receiver<()>> {
        self.entries.as_ref()?;
        self.emptied_told.lock().take()
    }

    /// Forgets the articles with these ids: a write changed them (or
    /// created or deleted them), and nothing else. The others stay: an
    /// editor's every save used to empty the whole cache, and each feed
    /// item then came from the store until articles were read one by one
    /// again (Related at 100k served a third of its rate).
    ///
    /// Entries kept by id are removed. One kept by slug, perhaps a slug
    /// the article no longer has, is found to be stale when next looked up
    /// (see [`ArticleCache::holds`]): looking through every entry for them
    /// took 25 ms a write at 100k articles. True when it forgot every
    /// article instead (see [`MOST_CHANGED`]).
    pub fn forget(&self, ids: &[i32]) -> bool {
        let mut filed = self.filed.write();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut changed = self.changed.write();
        if changed.len() + ids.len() > MOST_CHANGED {
            // Bounded: past it, everything is forgotten (and the record with
            // it), as any other content write does.
            drop((filed, changed));
            self.invalidate();
            return true;
        }
        for &id in ids {
            changed.insert(id, generation);
            if let Some(slot) = usize::try_from(id)
                .ok()
                .and_then(|slot| filed.get_mut(slot))
            {
                *slot = Filed::UNKNOWN;
            }
            if let Some(entries) = &self.entries {
                entries.remove(&ArticleKey::Id(id));
            }
        }
        false
    }

    /// Whether an entry kept under `key` still serves: loaded since the
    /// last write that may have changed any article, and, kept by slug,
    /// since the last write to it (one kept by id is removed then).
    ///
    /// `changed` is read before `floor`: `invalidate` moves `floor` before
    /// it empties `changed`, so a write to the article is seen in one or
    /// the other.
    fn holds(&self, key: &ArticleKey, cached: &CachedArticle) -> bool {
        let unchanged = match key {
            ArticleKey::Id(_) => true,
            ArticleKey::Slug(_) => self
                .changed
                .read()
                .get(&cached.summary.id)
                .is_none_or(|at| cached.generation >= *at),
        };
        unchanged && cached.generation >= self.floor.load(Ordering::SeqCst)
    }

    /// Counts content writes: what was loaded in an older one is not kept.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(super) fn get(&self, key: &ArticleKey) -> Option<Arc<CachedArticle>> {
        let found = self.find(key);
        self.lookups.record(found.is_some());
        found
    }

    /// [`ArticleCache::get`] without counting the lookup: for a caller that
    /// looks up many and counts them at once ([`ArticleCache::count`]).
    pub(super) fn find(&self, key: &ArticleKey) -> Option<Arc<CachedArticle>> {
        self.entries
            .as_ref()?
            .get(key)
            .filter(|cached| self.holds(key, cached))
    }

    /// Counts lookups made with [`ArticleCache::find`].
    pub(super) fn count(&self, hits: usize, misses: usize) {
        if self.entries.is_some() {
            self.lookups.record_many(hits as u64, misses as u64);
        }
    }

    /// Keeps `cached` under `key`, unless it was loaded before a content
    /// write: that write may have changed it, and forgot it (or every
    /// article) before this could keep it.
    pub(super) fn put(&self, key: ArticleKey, cached: Arc<CachedArticle>) {
        // Under the table's lock: a write moves the generation and forgets
        // under it, so it comes wholly before or after this.
        let _filed = self.filed.read();
        if let Some(entries) = &self.entries
            && cached.generation == self.generation()
        {
            entries.insert(key, cached);
        }
    }

    /// Fills the cache with the newest published articles, as news is read
    /// newest first, until every article is in or it is nine tenths full,
    /// and keeps their counters and their list forms: the first reads after
    /// a start then do not all go to the store, nor render every feed item.
    /// Once a warm has found room for every article, a later one loads as
    /// much as they weighed then (up to the capacity): stopped at nine
    /// tenths of a cache sized to them, it would leave the oldest twentieth
    /// out, and Related teasers would go to the store for those. Returns
    /// how many articles it loaded. For a background thread.
    ///
    /// Stops when a write forgets every article meanwhile: what it loaded
    /// before is gone, and a warm after that write starts again from the
    /// newest.
    pub fn warm(&self, db: &Db) -> StoreResult<usize> {
        let Some(entries) = &self.entries else {
            return Ok(0);
        };
        let mut filter = ListFilter::newest(db::now(), WARM_CHUNK);
        let counters = &db.changes().counters;
        let floor = self.floor.load(Ordering::SeqCst);
        let (all, capacity) = (self.all_weigh.load(Ordering::Relaxed), entries.capacity());
        // Counted as put, not only as held: the cache's shards fill
        // unevenly, and a full one may never hold its whole capacity. Once
        // every article fitted, what reads put meanwhile is not counted: it
        // may be any article, and would leave the oldest out.
        let room_left = |put: u64| match all {
            0 => put.max(entries.weight()) < capacity / 10 * 9,
            all => put < all.min(capacity),
        };
        let (mut warmed, mut put) = (0, 0);
        while room_left(put) && self.floor.load(Ordering::SeqCst) == floor {
            let generation = self.generation();
            let epoch = counters.epoch();
            let (rows, mut bodies, mut extras) = db.read_blocking(|conn| {
                let rows = articles::list(conn, &filter)?;
                let ids: Vec<i32> = rows.iter().map(|row| row.id).collect();
                let bodies = articles::bodies(conn, &ids)?;
                let extras = articles::extras(conn, &rows)?;
                Ok((rows, bodies, extras))
            })?;
            let Some(last) = rows.last() else {
                if self.floor.load(Ordering::SeqCst) == floor {
                    self.all_weigh.store(put, Ordering::Relaxed);
                }
                break;
            };
            let after = last.published_at.map(|at| (at, last.id));
            let (mut count, mut bytes) = (0, 0);
            for row in rows {
                if let Some(body_html) = bodies.remove(&row.id) {
                    let id = row.id;
                    let summary = ArticleSummary::new(row, &extras);
                    let article = Article {
                        summary,
                        body_html: JsonText::new(&body_html),
                    };
                    let cached = CachedArticle::new(article, generation);
                    // Counters kept already (a read since the start) stay:
                    // responses cached since are checked against them.
                    let counts = match counters.get(id) {
                        Some(kept) => kept,
                        None => {
                            let counts = Arc::new(extras.counts.remove(&id).unwrap_or_default());
                            counters.keep(epoch, id, Arc::clone(&counts));
                            counts
                        }
                    };
                    cached.teaser(&counts);
                    let (key, cached) = (ArticleKey::Id(id), Arc::new(cached));
                    bytes += ArticleSize.weight(&key, &cached);
                    count += 1;
                    self.put(key, cached);
                }
            }
            // A write to some articles meanwhile had `put` refuse the rest
            // of the chunk: it is loaded again (for as long as writes come
            // faster than a chunk loads).
            if self.generation() == generation {
                filter.after = after;
                warmed += count;
                put += bytes;
            }
        }
        Ok(warmed)
    }
}

/// Articles kept are a cache.
impl crate::memory::Resizable for ArticleCache {
    fn resize(&self, bytes: u64) {
        if let Some(entries) = &self.entries {
            entries.set_capacity(bytes);
        }
    }

    fn held(&self) -> u64 {
        self.entries.as_ref().map_or(0, Cache::weight)
    }

    /// Once every article was in, what they weigh (or more, as it holds
    /// now), and a sixteenth more for what is published next: the rest of
    /// its bound would go unused.
    fn wanted(&self) -> Option<u64> {
        let all = self.all_weigh.load(Ordering::Relaxed);
        (all > 0).then(|| {
            let all = all.max(self.held());
            all + all / 16
        })
    }
}

/// Articles whose last write [`ArticleCache::forget`] records, at most:
/// past it, a write forgets every article (a megabyte or so).
const MOST_CHANGED: usize = 65_536;

/// Articles loaded per query while warming the [`ArticleCache`].
const WARM_CHUNK: i64 = 500;
