//! The Related feed: articles about the same thing.
//!
//! An in-memory [`Index`] holds every visible article's text vector and its
//! place in a latent topic model ([`latent`]); each article's list (its
//! [`STORED`] best matches, text and topic similarity blended with shared
//! tags, category and closeness in time) is computed once and kept,
//! so a request only reads a list: every list is kept in the store
//! ([`stored`]; the background thread computes the missing ones when it is
//! idle), and the newest articles' lists in memory too, read back at
//! start. A background thread ([`spawn_refresher`]) keeps both current:
//! after every content change, and every few seconds for scheduled
//! articles coming due, it indexes what was published or changed, drops
//! what was unpublished or deleted, and recomputes only the lists that the
//! change can affect.

pub mod eval;
pub mod index;
pub mod latent;
pub mod stored;
pub mod text;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use self::index::Scratch;
pub use self::index::{Document, Index, SHARED_TERMS};
use self::stored::StoredList;
use crate::content::{Status, plain_text};
use crate::db::in_ids::InIdsExt;
use crate::db::schema::{article_tags, articles};
use crate::db::{self, Db, StoreResult};

/// Items kept per article; requests may ask for up to this many.
pub const STORED: usize = 50;
/// The way lists are computed. Bump it with any change to the index or
/// the scoring that changes what a list holds: a start then deletes the
/// stored lists (made the old way), and they are computed again.
pub const LISTS_VERSION: i32 = 1;
/// Added per shared tag (at most three count).
const TAG_BONUS: f32 = 0.04;
/// Added when both articles are in the same category.
const CATEGORY_BONUS: f32 = 0.03;
/// Added, at most, for articles published close together in time; halves
/// every [`RECENCY_HALF_LIFE_DAYS`] apart.
const RECENCY_BONUS: f32 = 0.03;
const RECENCY_HALF_LIFE_DAYS: f32 = 14.0;
/// How long the refresher waits for writes to stop before it indexes them,
/// and at most while they go on.
const SETTLE: Duration = Duration::from_millis(200);
const MAX_SETTLE: Duration = Duration::from_secs(30);
/// How often the refresher looks for scheduled articles that came due.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Changes at once past which [`Engine::sync`] rebuilds everything (or
/// past a tenth of the corpus, if that is more).
const REBUILD_AFTER: usize = 1_000;
/// Articles loaded from the store per query when indexing.
const LOAD_CHUNK: usize = 500;
/// Lists kept in memory, by default: those of the newest articles, which
/// most reads are of, read from the store (or computed) when the index is
/// built. An older article's list is read from the store, or computed when
/// not stored yet (a millisecond or so), and kept for a while (see
/// [`OLDER_LISTS_BYTES`]), so a large archive neither delays the first
/// lists nor fills memory with lists nobody reads.
///
/// Ten thousand: the kept lists are outside the memory budget, and at a
/// million articles a hundred thousand of them (120 MB) left the
/// recommendations' neighbour lists 14 MB. With ten thousand those got
/// 122 MB, and a recommendation took 300 µs of CPU rather than 800 (see
/// `bench/run.sh`). Older lists are a cache within the budget instead.
pub const BUILT_LISTS: usize = 10_000;
/// The most memory for the lists of older articles, read from the store or
/// computed when first asked for: about a hundred thousand of them (the
/// memory budget may allow less, see [`crate::memory`]). Kept without a
/// bound, a million-article archive read at random would in time hold
/// every list (over a gigabyte).
pub const OLDER_LISTS_BYTES: u64 = 128 << 20;
/// Lists of older articles computed and stored at a time, between looks at
/// what changed.
const FILL_CHUNK: usize = 1_000;
/// How far before the last recorded sync a start looks for changed
/// articles: writes are stamped before they commit.
const SYNC_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// Most lists computed when asked for that wait to be stored; past that
/// they are computed again when next asked for.
const MAX_UNSAVED: usize = 20_000;
/// Items of a list read from the store whose terms are found as it is
/// read: the ten a page shows by default (it loads twelve, for any
/// unpublished since), and a few more for a longer `limit`.
const TERMS_FOUND: usize = 16;
/// `term_count` of an item whose terms are not known (read from the store).
const TERMS_UNKNOWN: u8 = u8::MAX;

/// One item of a Related list. Kept small and inline: a hundred thousand
/// lists of fifty items are five million of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub id: i32,
    /// The blended score the list is ordered by.
    pub score: f32,
    /// The first `term_count` are the terms that make the texts similar.
    terms: [u32; SHARED_TERMS],
    term_count: u8,
    /// Both articles are in the same category.
    pub same_category: bool,
}

impl Related {
    /// The terms that make the texts similar, strongest first, if known
    /// (see [`Engine::words`]): `None` for [`TERMS_UNKNOWN`], which is past
    /// the end of `terms`.
    fn terms(&self) -> Option<&[u32]> {
        self.terms.get(..usize::from(self.term_count))
    }

    /// The item with these terms (at most [`SHARED_TERMS`] are kept).
    fn with_terms(&self, terms: &[u32]) -> Self {
        let count = terms.len().min(SHARED_TERMS);
        let mut item = self.clone();
        item.terms[..count].copy_from_slice(&terms[..count]);
        item.term_count = count as u8;
        item
    }

    /// An item with no terms known yet, to fill in.
    fn without_terms() -> Self {
        Self {
            id: 0,
            score: 0.0,
            terms: [0; SHARED_TERMS],
            term_count: TERMS_UNKNOWN,
            same_category: false,
        }
    }
}

/// Weighs a list by the bytes it holds.
#[derive(Clone)]
struct ListSize;

impl Weighter<i32, Arc<Vec<Related>>> for ListSize {
    fn weight(&self, _: &i32, list: &Arc<Vec<Related>>) -> u64 {
        (64 + std::mem::size_of_val::<[Related]>(list)) as u64
    }
}

/// The index and the lists computed from it.
pub struct Engine {
    index: RwLock<Index>,
    /// The lists of the newest articles, and of those changed since, kept
    /// current.
    lists: RwLock<HashMap<i32, Arc<Vec<Related>>>>,
    /// Lists of older articles, read from the store or computed when asked
    /// for; dropped, not recomputed, when a change reaches them.
    older: Cache<i32, Arc<Vec<Related>>, ListSize>,
    /// Counts changes to the index, each counted before `older` is looked
    /// through for the lists it reaches, and deletions of stored lists: a
    /// list read from the store before either is not kept.
    changes: AtomicU64,
    /// Counts changes to the index alone: a list computed from it may be
    /// stored while the count holds.
    index_version: AtomicU64,
    /// How many lists (of the newest articles) are computed ahead.
    built: usize,
    scratch: Scratch,
    /// Where the lists of older articles are kept (see [`stored`]), once
    /// the refresher runs.
    store: OnceLock<Db>,
    /// Lists computed, with the index version when each was begun, to be
    /// stored by the refresher.
    unsaved: Mutex<Vec<(u64, StoredList)>>,
    /// Articles whose lists are neither kept in memory nor stored, newest
    /// last: computed and stored by the refresher when it is idle.
    waiting: Mutex<Vec<i32>>,
    /// Set once the refresher has built the index for the first time (or
    /// failed to).
    built_once: AtomicBool,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new(BUILT_LISTS)
    }
}

impl Engine {
    /// An empty engine that computes the lists of the `built` newest
    /// articles ahead.
    pub fn new(built: usize) -> Self {
        Self {
            index: RwLock::default(),
            lists: RwLock::default(),
            older: Cache::with_weighter(
                (OLDER_LISTS_BYTES / 1_000) as usize,
                OLDER_LISTS_BYTES,
                ListSize,
            ),
            changes: AtomicU64::new(0),
            index_version: AtomicU64::new(0),
            built,
            scratch: Scratch::default(),
            store: OnceLock::new(),
            unsaved: Mutex::default(),
            waiting: Mutex::default(),
            built_once: AtomicBool::new(false),
        }
    }

    /// True once the index has been built from the store for the first
    /// time, or building it has failed.
    pub fn built_once(&self) -> bool {
        self.built_once.load(Ordering::SeqCst)
    }

    /// The list of article `id`: kept in memory, read from the store, or
    /// computed now (milliseconds: not for an async worker); `None` if the
    /// article is not indexed.
    pub fn list(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        self.stored(id)
            .or_else(|| self.from_store(id))
            .or_else(|| self.compute_list(id))
    }

    /// Computes the list of article `id` and keeps it, in memory for a
    /// while and in the store; `None` if the article is not indexed.
    /// Milliseconds of CPU: not for an async worker.
    pub fn compute_list(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let changes = self.changes.load(Ordering::SeqCst);
        let version = self.index_version.load(Ordering::SeqCst);
        let list = self.compute_stored(id)?;
        let items = Arc::new(list.items.clone());
        self.to_store(version, list);
        self.keep_older(id, &items, changes);
        Some(items)
    }

    /// Queues a list computed from the index at `version` to be stored by
    /// the refresher, if there is a store and room.
    fn to_store(&self, version: u64, list: StoredList) {
        if self.store.get().is_some() {
            let mut unsaved = self.unsaved.lock().expect("unsaved lock");
            if unsaved.len() < MAX_UNSAVED {
                unsaved.push((version, list));
            }
        }
    }

    /// The list of article `id` if it is already made and in memory; never
    /// computes or reads the store.
    pub fn stored(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let kept = self.lists.read().expect("lists lock").get(&id).cloned();
        kept.or_else(|| self.older.get(&id))
    }

    /// The list of article `id` from the store, if one is stored and still
    /// holds: a short indexed read, fine on an async worker.
    pub fn from_store(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let db = self.store.get()?;
        let changes = self.changes.load(Ordering::SeqCst);
        let list = match db.lookup_one(|conn| stored::load(conn, id)) {
            Ok(list) => list?,
            Err(error) => {
                tracing::warn!(%error, id, "reading a stored related list failed");
                return None;
            }
        };
        let index = self.index.read().expect("index lock");
        if !holds(&index, &list) {
            return None;
        }
        // The store keeps no terms: found once here for the items a page
        // shows, rather than by every request that shows them.
        let items = list
            .items
            .into_iter()
            .enumerate()
            .map(|(rank, item)| match item.terms() {
                None if rank < TERMS_FOUND => {
                    item.with_terms(&index.shared_terms_of(id, item.id, SHARED_TERMS))
                }
                _ => item,
            })
            .collect();
        drop(index);
        let list = Arc::new(items);
        self.keep_older(id, &list, changes);
        Some(list)
    }

    /// Keeps the list of an older article that was begun when the index
    /// had seen `changes` changes.
    fn keep_older(&self, id: i32, list: &Arc<Vec<Related>>, changes: u64) {
        self.older.insert(id, Arc::clone(list));
        // A change counted after this list was begun may have looked
        // through `older` before it was in: then it is not kept.
        if self.changes.load(Ordering::SeqCst) != changes {
            self.older.remove(&id);
        }
    }

    /// The words that make the texts of article `id` and of `item`, an
    /// item of its list, similar, strongest first.
    pub fn words(&self, id: i32, item: &Related) -> Vec<String> {
        let index = self.index.read().expect("index lock");
        let found;
        let terms = match item.terms() {
            Some(terms) => terms,
            None => {
                found = index.shared_terms_of(id, item.id, SHARED_TERMS);
                &found
            }
        };
        terms
            .iter()
            .map(|term| index.spelling(*term).to_string())
            .collect()
    }

    /// Computes and stores the list of article `id`, to be kept current.
    fn refresh_list(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let version = self.index_version.load(Ordering::SeqCst);
        let list = self.compute_stored(id)?;
        let items = Arc::new(list.items.clone());
        self.to_store(version, list);
        self.lists
            .write()
            .expect("lists lock")
            .insert(id, Arc::clone(&items));
        self.older.remove(&id);
        Some(items)
    }

    /// Computes and stores the lists of many articles, on every core.
    fn refresh_lists(&self, ids: &[i32]) {
        on_every_core(ids, |id| self.refresh_list(id).map(|_| ()));
    }

    /// Scores the candidates for article `id`'s list; with the list's
    /// [`fingerprint`].
    fn compute(&self, id: i32) -> Option<(Vec<Related>, u64)> {
        let mut scratch = self.scratch.lend();
        let index = self.index.read().expect("index lock");
        let query = index.get(id)?;
        let mut list: Vec<Related> = index
            .similar(id, STORED * 2, &mut scratch.scores)
            .into_iter()
            .filter_map(|found| {
                let other = index.get(found.id)?;
                let shared_tags = other
                    .tag_ids
                    .iter()
                    .filter(|tag| query.tag_ids.contains(tag))
                    .count();
                let same_category = other.category_id == query.category_id;
                let apart_days = (query.published_at - other.published_at)
                    .num_seconds()
                    .unsigned_abs() as f32
                    / 86_400.0;
                let score = found.similarity
                    + TAG_BONUS * shared_tags.min(3) as f32
                    + if same_category { CATEGORY_BONUS } else { 0.0 }
                    + RECENCY_BONUS * 0.5f32.powf(apart_days / RECENCY_HALF_LIFE_DAYS);
                let mut terms = [0; SHARED_TERMS];
                let term_count = found.terms.len().min(SHARED_TERMS);
                terms[..term_count].copy_from_slice(&found.terms[..term_count]);
                Some(Related {
                    id: found.id,
                    score,
                    terms,
                    term_count: term_count as u8,
                    same_category,
                })
            })
            .collect();
        list.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.id.cmp(&a.id)));
        list.truncate(STORED);
        // Twice as many were scored: kept as they are, a million-article
        // store's lists would hold as much unused room as items.
        list.shrink_to_fit();
        let fingerprint = fingerprint(&index, id, &list)?;
        Some((list, fingerprint))
    }

    /// [`Engine::compute`], as the list is stored.
    fn compute_stored(&self, id: i32) -> Option<StoredList> {
        let (items, fingerprint) = self.compute(id)?;
        Some(StoredList {
            article_id: id,
            computed_at: db::now(),
            fingerprint,
            items,
        })
    }

    /// Indexes everything visible at `now` from scratch and makes the lists
    /// of the newest articles (read from the store where a stored list
    /// still holds); returns how many articles were indexed.
    pub fn rebuild(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<usize> {
        let started = std::time::Instant::now();
        // Newest first (see `visible`).
        let ids: Vec<i32> = visible(conn, now)?.into_iter().map(|(id, _)| id).collect();
        let mut index = Index::default();
        let mut failed = None;
        index.extend(
            ids.chunks(LOAD_CHUNK)
                .map_while(|chunk| load(conn, chunk).map_err(|error| failed = Some(error)).ok()),
        );
        if let Some(error) = failed {
            return Err(error);
        }
        let count = index.len();
        *self.index.write().expect("index lock") = index;
        self.index_version.fetch_add(1, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.lists.write().expect("lists lock").clear();
        self.older.clear();
        let newest = &ids[..ids.len().min(self.built)];
        let Some(db) = self.store.get() else {
            self.refresh_lists(newest);
            tracing::info!(
                articles = count,
                lists = newest.len(),
                seconds = started.elapsed().as_secs_f32(),
                "related index and lists built"
            );
            return Ok(count);
        };
        let mut have = self.reconcile(conn, db, now)?;
        let read = self.keep_newest(conn, db, newest, &mut have)?;
        tracing::info!(
            articles = count,
            lists = newest.len(),
            read_from_store = read,
            seconds = started.elapsed().as_secs_f32(),
            "related index and lists built"
        );
        let kept = self.lists.read().expect("lists lock");
        // Newest last: taken from the end.
        let mut waiting: Vec<i32> = ids
            .into_iter()
            .filter(|id| !have.contains(id) && !kept.contains_key(id))
            .collect();
        waiting.reverse();
        tracing::info!(
            stored = have.len(),
            to_store = waiting.len(),
            "related lists of older articles checked"
        );
        *self.waiting.lock().expect("waiting lock") = waiting;
        Ok(count)
    }

    /// After the index was built afresh: deletes the stored lists that an
    /// article changed or published since the last recorded sync may now
    /// belong in (every stored list, when that is much of the corpus or
    /// another [`LISTS_VERSION`] stored them), and returns the articles
    /// whose stored lists are left.
    fn reconcile(
        &self,
        conn: &mut SqliteConnection,
        db: &Db,
        now: NaiveDateTime,
    ) -> StoreResult<HashSet<i32>> {
        let synced = stored::synced(conn)?;
        let mut have: HashSet<i32> = stored::ids(conn)?.into_iter().collect();
        if synced.is_some_and(|(_, version)| version != LISTS_VERSION) {
            tracing::info!("related lists stored by another version; computing them again");
            db.write_derived_blocking(stored::clear)?;
            have.clear();
        }
        let since = synced.map(|(at, _)| at - SYNC_MARGIN);
        let (corpus, changed): (usize, Vec<i32>) = {
            let index = self.index.read().expect("index lock");
            let changed = index
                .ids()
                .filter(|id| {
                    let entry = index.get(*id).expect("indexed");
                    since.is_none_or(|since| {
                        entry.updated_at >= since || entry.published_at >= since
                    })
                })
                .collect();
            (index.len(), changed)
        };
        if !have.is_empty() && !changed.is_empty() {
            if changed.len() > REBUILD_AFTER.max(corpus / 10) {
                db.write_derived_blocking(stored::clear)?;
                have.clear();
            } else {
                // The changed articles' own lists are computed to find
                // them, and stored as they are current.
                let lists = on_every_core(&changed, |id| self.compute_stored(id));
                let mut reached = changed;
                reached.extend(
                    lists
                        .iter()
                        .flat_map(|list| list.items.iter().map(|item| item.id)),
                );
                for id in &reached {
                    have.remove(id);
                }
                have.extend(lists.iter().map(|list| list.article_id));
                db.write_derived_blocking(move |conn| {
                    stored::remove(conn, &reached)?;
                    stored::save(conn, &lists)
                })?;
            }
        }
        db.write_derived_blocking(move |conn| stored::set_synced_at(conn, now))?;
        Ok(have)
    }

    /// Keeps the lists of the `newest` articles in memory: those in `have`
    /// read from the store, if they still hold, with their terms found
    /// again; the others computed and stored (and added to `have`).
    /// Returns how many were read. Reading a list is a hundredth of
    /// computing it: a restart of a million-article server read its
    /// newest lists in seconds instead of a minute of both cores.
    fn keep_newest(
        &self,
        conn: &mut SqliteConnection,
        db: &Db,
        newest: &[i32],
        have: &mut HashSet<i32>,
    ) -> StoreResult<usize> {
        let mut read = 0;
        let mut missing = Vec::new();
        for chunk in newest.chunks(FILL_CHUNK) {
            let wanted: Vec<i32> = chunk
                .iter()
                .copied()
                .filter(|id| have.contains(id))
                .collect();
            let loaded: HashMap<i32, StoredList> = stored::load_many(conn, &wanted)?
                .into_iter()
                .map(|list| (list.article_id, list))
                .collect();
            let holding = on_every_core(chunk, |id| {
                let list = loaded.get(&id)?;
                let index = self.index.read().expect("index lock");
                if !holds(&index, list) {
                    return None;
                }
                let items = list
                    .items
                    .iter()
                    .map(|item| item.with_terms(&index.shared_terms_of(id, item.id, SHARED_TERMS)))
                    .collect();
                Some((id, Arc::new(items)))
            });
            read += holding.len();
            let mut lists = self.lists.write().expect("lists lock");
            for (id, list) in holding {
                lists.insert(id, list);
            }
            missing.extend(chunk.iter().filter(|id| !lists.contains_key(id)));
        }
        for chunk in missing.chunks(FILL_CHUNK) {
            let computed = on_every_core(chunk, |id| self.compute_stored(id));
            {
                let mut lists = self.lists.write().expect("lists lock");
                for list in &computed {
                    lists.insert(list.article_id, Arc::new(list.items.clone()));
                    have.insert(list.article_id);
                }
            }
            db.write_derived_blocking(move |conn| stored::save(conn, &computed))?;
        }
        Ok(read)
    }

    /// Computes and stores the next [`FILL_CHUNK`] lists waiting to be
    /// stored, on every core; returns how many still wait.
    fn fill(&self, db: &Db) -> StoreResult<usize> {
        let chunk = {
            let mut waiting = self.waiting.lock().expect("waiting lock");
            let from = waiting.len().saturating_sub(FILL_CHUNK);
            waiting.split_off(from)
        };
        let lists = on_every_core(&chunk, |id| self.compute_stored(id));
        db.write_derived_blocking(move |conn| stored::save(conn, &lists))?;
        Ok(self.waiting.lock().expect("waiting lock").len())
    }

    /// True while lists wait to be computed and stored.
    fn filling(&self) -> bool {
        self.waiting() > 0
    }

    /// How many lists of older articles wait to be computed and stored.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().expect("waiting lock").len()
    }

    /// Stores the lists computed since the last call, but those begun
    /// before the index last changed: a change may have made them stale.
    fn save_unsaved(&self, db: &Db) -> StoreResult<()> {
        let version = self.index_version.load(Ordering::SeqCst);
        let lists: Vec<StoredList> =
            std::mem::take(&mut *self.unsaved.lock().expect("unsaved lock"))
                .into_iter()
                .filter(|(begun, _)| *begun == version)
                .map(|(_, list)| list)
                .collect();
        if lists.is_empty() {
            return Ok(());
        }
        db.write_derived_blocking(move |conn| stored::save(conn, &lists))
    }

    /// Brings the index and the lists up to date with what is visible at
    /// `now`, touching only what changed; returns how many lists it
    /// recomputed. Reads every visible article's `updated_at`: for after a
    /// content write.
    pub fn sync(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<usize> {
        let current: HashMap<i32, NaiveDateTime> = visible(conn, now)?.into_iter().collect();
        let (changed, removed): (Vec<i32>, Vec<i32>) = {
            let index = self.index.read().expect("index lock");
            let changed = current
                .iter()
                .filter(|(id, updated)| index.get(**id).is_none_or(|e| e.updated_at != **updated))
                .map(|(id, _)| *id)
                .collect();
            let removed = index.ids().filter(|id| !current.contains_key(id)).collect();
            (changed, removed)
        };
        self.apply(conn, now, current.len(), changed, removed)
    }

    /// Indexes the articles that came due after `since`, up to `now`
    /// (scheduled ones), without reading the others: what the refresher
    /// does when no write has happened.
    pub fn index_due(
        &self,
        conn: &mut SqliteConnection,
        since: NaiveDateTime,
        now: NaiveDateTime,
    ) -> StoreResult<usize> {
        let due: Vec<i32> = articles::table
            .filter(articles::status.eq(Status::Published.as_str()))
            .filter(articles::published_at.gt(since))
            .filter(articles::published_at.le(now))
            .select(articles::id)
            .load(conn)?;
        let changed: Vec<i32> = {
            let index = self.index.read().expect("index lock");
            due.into_iter()
                .filter(|id| index.get(*id).is_none())
                .collect()
        };
        let corpus = self.index.read().expect("index lock").len() + changed.len();
        self.apply(conn, now, corpus, changed, Vec::new())
    }

    /// Indexes `changed` articles and drops `removed` ones from a corpus of
    /// `corpus`, and recomputes the lists they affect.
    fn apply(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
        corpus: usize,
        changed: Vec<i32>,
        removed: Vec<i32>,
    ) -> StoreResult<usize> {
        if changed.is_empty() && removed.is_empty() {
            return Ok(0);
        }
        // A bulk import changes much of the corpus: building everything
        // afresh is then cheaper than following each change.
        // So is a corpus that has outgrown its topic model.
        let outgrown = self.index.read().expect("index lock").model_is_stale();
        if outgrown || changed.len() + removed.len() > REBUILD_AFTER.max(corpus / 10) {
            return self.rebuild(conn, now);
        }
        let documents = load(conn, &changed)?;
        // Lists that hold a changed or removed article: a scan of every list
        // costs a few milliseconds, less than keeping a reverse index.
        let touched: HashSet<i32> = changed.iter().chain(&removed).copied().collect();
        let mut affected: HashSet<i32> = self
            .lists
            .read()
            .expect("lists lock")
            .iter()
            .filter(|(_, list)| list.iter().any(|item| touched.contains(&item.id)))
            .map(|(id, _)| *id)
            .collect();
        {
            let mut index = self.index.write().expect("index lock");
            for id in &removed {
                index.remove(*id);
            }
            for document in documents {
                index.insert(document);
            }
        }
        self.index_version.fetch_add(1, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
        {
            let mut lists = self.lists.write().expect("lists lock");
            for id in &removed {
                lists.remove(id);
            }
        }
        // An older list the change reaches is dropped, to be computed
        // afresh when next asked for.
        self.older.retain(|id, list| {
            !touched.contains(id) && !list.iter().any(|item| touched.contains(&item.id))
        });
        // A new or changed article belongs in the lists of its own best
        // matches when it beats their last item: similarity is symmetric.
        let mut reached = Vec::new();
        for id in &changed {
            let Some(list) = self.refresh_list(*id) else {
                continue;
            };
            let lists = self.lists.read().expect("lists lock");
            for item in list.iter() {
                reached.push(item.id);
                // A list not kept is computed afresh when asked for.
                let beaten = lists.get(&item.id).is_some_and(|theirs| {
                    theirs.len() < STORED
                        || theirs.last().is_some_and(|last| last.score < item.score)
                });
                if beaten {
                    affected.insert(item.id);
                }
            }
        }
        // Stored lists hold while their items are unchanged: those the new
        // and changed articles may now belong in are deleted. Then counted
        // as a change, so that a list read from the store meanwhile is not
        // kept, and dropped from memory.
        if let Some(db) = self.store.get().filter(|_| !reached.is_empty()) {
            let ids = reached.clone();
            if let Err(error) = db.write_derived_blocking(move |conn| stored::remove(conn, &ids)) {
                tracing::error!(%error, "deleting stale related lists failed; deleting all");
                db.write_derived_blocking(stored::clear)?;
            }
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
        for id in &reached {
            self.older.remove(id);
        }
        for id in &changed {
            affected.remove(id);
        }
        for id in &removed {
            affected.remove(id);
        }
        let recomputed = changed.len() + affected.len();
        self.refresh_lists(&affected.into_iter().collect::<Vec<_>>());
        Ok(recomputed)
    }
}

/// `work` done for each of `ids`, split evenly over every core; what it
/// gave, in no particular order.
fn on_every_core<T: Send>(ids: &[i32], work: impl Fn(i32) -> Option<T> + Sync) -> Vec<T> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = ids.len().div_ceil(threads).max(1);
    let work = &work;
    thread::scope(|scope| {
        let parts: Vec<_> = ids
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().filter_map(|id| work(*id)).collect::<Vec<T>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a list worker panicked"))
            .collect()
    })
}

/// What a list of article `id` was computed from: the ids and `updated_at`s
/// of the article and its items as `index` has them, hashed; `None` when
/// one of them is not indexed (any more).
fn fingerprint(index: &Index, id: i32, items: &[Related]) -> Option<u64> {
    let mut bytes = Vec::with_capacity((items.len() + 1) * 12);
    for id in std::iter::once(id).chain(items.iter().map(|item| item.id)) {
        let updated_at = index.get(id)?.updated_at.and_utc().timestamp_micros();
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&updated_at.to_le_bytes());
    }
    Some(xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// Whether a stored list still holds: its article and items are indexed as
/// they were when it was computed.
fn holds(index: &Index, list: &StoredList) -> bool {
    fingerprint(index, list.article_id, &list.items) == Some(list.fingerprint)
}

/// `(id, updated_at)` of every article public readers can see at `now`,
/// newest first.
fn visible(
    conn: &mut SqliteConnection,
    now: NaiveDateTime,
) -> StoreResult<Vec<(i32, NaiveDateTime)>> {
    Ok(articles::table
        .filter(articles::status.eq(Status::Published.as_str()))
        .filter(articles::published_at.le(now))
        .order((articles::published_at.desc(), articles::id.desc()))
        .select((articles::id, articles::updated_at))
        .load(conn)?)
}

/// The articles with these ids, as the index reads them.
fn load(conn: &mut SqliteConnection, ids: &[i32]) -> StoreResult<Vec<Document>> {
    type Row = (
        i32,
        String,
        String,
        i32,
        Option<NaiveDateTime>,
        NaiveDateTime,
    );
    let mut documents = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(LOAD_CHUNK) {
        let rows: Vec<Row> = articles::table
            .filter(articles::id.in_ids(chunk))
            .select((
                articles::id,
                articles::title,
                articles::body_html,
                articles::category_id,
                articles::published_at,
                articles::updated_at,
            ))
            .load(conn)?;
        let mut tags: HashMap<i32, Vec<i32>> = HashMap::new();
        for (article, tag) in article_tags::table
            .filter(article_tags::article_id.in_ids(chunk))
            .select((article_tags::article_id, article_tags::tag_id))
            .load::<(i32, i32)>(conn)?
        {
            tags.entry(article).or_default().push(tag);
        }
        for (id, title, body_html, category_id, published_at, updated_at) in rows {
            documents.push(Document {
                id,
                title,
                body: plain_text(&body_html),
                category_id,
                tag_ids: tags.remove(&id).unwrap_or_default(),
                published_at: published_at.unwrap_or(updated_at),
                updated_at,
            });
        }
    }
    Ok(documents)
}

/// Asks the refresher to look at the store now.
#[derive(Clone)]
pub struct Refresh(SyncSender<()>);

impl Refresh {
    /// Nudges the refresher; never blocks (a pending nudge covers this one).
    pub fn nudge(&self) {
        let _ = self.0.try_send(());
    }
}

/// Starts the thread that builds the index, then keeps it and the lists
/// current: on every nudge and every [`REFRESH_EVERY`].
pub fn spawn_refresher(engine: Arc<Engine>, db: Db) -> std::io::Result<Refresh> {
    let _ = engine.store.set(db.clone());
    let (nudge, nudges) = sync_channel(1);
    crate::background::spawn("frontpage-related", move || {
        refresh_loop(&engine, &db, &nudges)
    })?;
    Ok(Refresh(nudge))
}

fn refresh_loop(engine: &Engine, db: &Db, nudges: &Receiver<()>) {
    let mut synced_at = db::now();
    // Whether the next pass must look at every article: a failed pass is
    // tried again in full.
    let mut look_at_all = false;
    if let Err(error) = db.read_blocking(|conn| engine.rebuild(conn, synced_at)) {
        tracing::error!(%error, "building the related index failed");
        look_at_all = true;
    }
    engine.built_once.store(true, Ordering::SeqCst);
    let mut due_at = Instant::now() + REFRESH_EVERY;
    // When storing the waiting lists began, while they are stored.
    let mut filling_since = None;
    loop {
        // Every content write nudges (another process's too, once the
        // writer notices it); without one, only scheduled articles can have
        // come due, and looking at every article would cost a million-article
        // store seconds of CPU each time. While lists wait to be stored, a
        // chunk of them is stored between looks.
        let wait = if engine.filling() {
            Duration::ZERO
        } else {
            due_at.saturating_duration_since(Instant::now())
        };
        let nudged = match nudges.recv_timeout(wait) {
            Ok(()) => {
                // Writes often come in runs (a bulk import nudges every 500
                // articles): let a run finish, so it is indexed once.
                let started = Instant::now();
                while started.elapsed() < MAX_SETTLE {
                    match nudges.recv_timeout(SETTLE) {
                        Ok(()) => {}
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        look_at_all |= nudged;
        if look_at_all || Instant::now() >= due_at {
            due_at = Instant::now() + REFRESH_EVERY;
            let now = db::now();
            let synced = db.read_blocking(|conn| {
                if look_at_all {
                    engine.sync(conn, now)
                } else {
                    engine.index_due(conn, synced_at, now)
                }
            });
            match synced {
                Ok(_) => {
                    if look_at_all {
                        // Every change before `now` has reached the stored lists.
                        let recorded =
                            db.write_derived_blocking(move |conn| stored::set_synced_at(conn, now));
                        if let Err(error) = recorded {
                            tracing::warn!(%error, "recording the related lists' sync failed");
                        }
                    }
                    synced_at = now;
                    look_at_all = false;
                }
                Err(error) => {
                    tracing::warn!(%error, "refreshing related lists failed; retrying soon")
                }
            }
        }
        if let Err(error) = engine.save_unsaved(db) {
            tracing::warn!(%error, "storing related lists computed when asked for failed");
        }
        if engine.filling() {
            let since = *filling_since.get_or_insert_with(Instant::now);
            match engine.fill(db) {
                Ok(0) => {
                    tracing::info!(
                        seconds = since.elapsed().as_secs_f32(),
                        "related lists of older articles stored"
                    );
                    filling_since = None;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "storing related lists failed; retrying soon"),
            }
        }
    }
}
/// The index and the lists kept current grow with the store.
impl crate::memory::Grown for Engine {
    fn heap_bytes(&self) -> u64 {
        let index = self.index.read().expect("index lock").heap_bytes();
        let lists = self.lists.read().expect("lists lock");
        let items: usize = lists.values().map(|list| list.capacity()).sum();
        let entries = lists.capacity() * (std::mem::size_of::<(i32, Arc<Vec<Related>>)>() + 1);
        index + (items * std::mem::size_of::<Related>() + lists.len() * 40 + entries) as u64
    }
}

/// The lists of older articles are a cache.
impl crate::memory::Resizable for Engine {
    fn resize(&self, bytes: u64) {
        self.older.set_capacity(bytes);
    }

    fn held(&self) -> u64 {
        self.older.weight()
    }

    /// A full list for every indexed article whose list is not kept
    /// current, and an eighth more: filled to its bound, the cache held
    /// seven eighths of it (its shards fill unevenly).
    fn wanted(&self) -> Option<u64> {
        let indexed = self.index.read().expect("index lock").len();
        let kept = self.lists.read().expect("lists lock").len();
        let full = ListSize.weight(&0, &Arc::new(vec![Related::without_terms(); STORED]));
        let all = indexed.saturating_sub(kept) as u64 * full;
        Some(all + all / 8)
    }
}
