//! The Related feed: articles about the same thing.
//!
//! An in-memory [`Index`] holds every visible article's text vector and its
//! place in a latent topic model ([`latent`]); each article's list (its
//! [`STORED`] best matches, text and topic similarity blended with shared
//! tags, category and closeness in time) is computed once and kept,
//! so a request only reads a list: every list is kept in the store
//! ([`stored`]; the background thread computes the missing ones when it is
//! idle), and the newest articles' lists in memory too, read back at
//! start; older articles' lists are cached in memory cut short, as many
//! as fit read in at start, newest first. A background thread
//! ([`spawn_refresher`]) keeps both current: after every content change,
//! and every few seconds for scheduled articles coming due, it indexes what
//! was published or changed, drops what was unpublished or deleted, and
//! recomputes only the lists that the change can affect.

mod build;
pub mod eval;
pub mod index;
pub mod latent;
mod refresh;
mod refresher;
mod score;
pub mod stored;
pub mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;

use parking_lot::{Mutex, RwLock};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use self::index::Scratch;
pub use self::index::{Document, Index, SHARED_TERMS};
use self::refresh::Sweep;
pub use self::refresher::{Refresh, spawn_refresher};
use self::score::holds;
use self::stored::StoredList;
use crate::db::Db;

/// Items kept per article; requests may ask for up to this many.
pub const STORED: usize = 50;
/// The way lists are computed. Bump it with any change to the index or
/// the scoring that changes what a list holds: a start then deletes the
/// stored lists (made the old way), and they are computed again.
///
/// 2: near-duplicates are left out of a pool that grows until the list is
/// full; version 1's fixed pool could leave a list short, or empty.
/// 3: a list holds one of two items that are near-duplicates of each other.
/// 4: web addresses are no terms.
pub const LISTS_VERSION: i32 = 4;
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
/// The most memory for the lists of older articles, read from the store
/// at start (the newest, as many as fit) or when first asked for, or
/// computed then: about two hundred thousand of them, cut to
/// [`OLDER_ITEMS`] (the memory budget may allow less, see
/// [`crate::memory`]). Kept without a bound, a million-article archive
/// read at random would in time hold every list (0.7 GB).
pub const OLDER_LISTS_BYTES: u64 = 128 << 20;
/// Items of an older article's list kept in memory: the ten a page shows
/// by default (it loads twelve, for any unpublished since) and the twenty
/// a recommendation takes from a seed's list. The rest are kept as ids
/// only, for [`Engine::reindex`] to drop the list when one changes: a
/// list cut this way weighs 0.7 KB rather than 1.3, and at a hundred
/// thousand articles every older list fits in the budget. A longer
/// `limit` reads the whole list from the store.
pub const OLDER_ITEMS: usize = 20;
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

/// An older article's list as kept in memory: its first [`OLDER_ITEMS`]
/// items, and the ids of the rest.
#[derive(Clone)]
struct Older {
    items: Arc<Vec<Related>>,
    rest: Arc<[i32]>,
}

impl Older {
    /// A list kept whole.
    fn whole(list: &Arc<Vec<Related>>) -> Self {
        Self {
            items: Arc::clone(list),
            rest: Arc::new([]),
        }
    }

    /// A list kept cut to its first [`OLDER_ITEMS`] items.
    fn cut(list: &[Related]) -> Self {
        let (items, rest) = list.split_at(list.len().min(OLDER_ITEMS));
        Self {
            items: Arc::new(items.to_vec()),
            rest: rest.iter().map(|item| item.id).collect(),
        }
    }

    /// The ids of every item, the cut ones too.
    fn ids(&self) -> impl Iterator<Item = i32> + '_ {
        let items = self.items.iter().map(|item| item.id);
        items.chain(self.rest.iter().copied())
    }
}

/// Weighs a list kept in memory by the bytes it holds, with its entry, its
/// three allocations' headers and the allocator's rounding.
#[derive(Clone)]
struct ListSize;

impl Weighter<i32, Older> for ListSize {
    fn weight(&self, _: &i32, list: &Older) -> u64 {
        let items = std::mem::size_of_val::<[Related]>(&list.items);
        (128 + items + std::mem::size_of_val(&*list.rest)) as u64
    }
}

/// The index and the lists computed from it.
pub struct Engine {
    index: RwLock<Index>,
    /// The lists of the newest articles, and of those changed since, kept
    /// current.
    lists: RwLock<HashMap<i32, Arc<Vec<Related>>>>,
    /// Lists of older articles, read from the store (at start, see
    /// [`Engine::warm_older`], or when asked for) or computed when asked
    /// for, cut to [`OLDER_ITEMS`]; dropped, not recomputed, when a change
    /// reaches them.
    older: Cache<i32, Older, ListSize>,
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
    /// Articles whose lists are neither kept in memory nor stored (or
    /// stored but stale), newest last: computed and stored by the refresher
    /// when it is idle.
    waiting: Mutex<Vec<i32>>,
    /// Where the look through the stored lists for those a change made
    /// stale stands (see [`Engine::sweep`]).
    sweep: Mutex<Sweep>,
    /// Set once the refresher has built the index for the first time (or
    /// failed to).
    built_once: AtomicBool,
    /// The count of writes to articles (see [`stored::writes_to_articles`])
    /// with which the stored lists were found current at start, -1 if they
    /// were not or a write has come since; and until when (Unix
    /// microseconds: when the next scheduled article comes due). Until the
    /// index is built, lists are then read from the store as they are (see
    /// [`Engine::trusts_stored`]).
    trusted_writes: AtomicI64,
    trusted_until: AtomicI64,
    /// Content writes the refresher has been told of, the start counted as
    /// the first; and how many of them the index had seen when it last
    /// finished following the store (see [`Engine::up_to_date`]).
    asked: AtomicU64,
    followed: AtomicU64,
    /// Refresher steps under way: building, following the store, or
    /// storing lists taken from `waiting` or `unsaved`.
    busy: AtomicUsize,
    /// Changes (an article published, edited, unpublished) followed one
    /// by one since the index was last built from scratch (see
    /// [`Engine::take_rebuild_due`]).
    followed_since_build: AtomicUsize,
    /// False while a build of the index has failed, perhaps halfway (the
    /// refresher builds again).
    whole: AtomicBool,
    /// Set when the stored lists a change made stale could not be deleted:
    /// the lists are then never recorded current again in this run (see
    /// [`Engine::record_synced`]), as a later look at the store would find
    /// nothing changed and say they are.
    store_behind: AtomicBool,
    /// The most the index may take for it to be built again while the
    /// server runs: the old one serves until the new one is in, so for a
    /// while both are in memory.
    rebuild_room: u64,
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
                (OLDER_LISTS_BYTES / 700) as usize,
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
            sweep: Mutex::default(),
            built_once: AtomicBool::new(false),
            trusted_writes: AtomicI64::new(-1),
            trusted_until: AtomicI64::new(0),
            asked: AtomicU64::new(1),
            followed: AtomicU64::new(0),
            busy: AtomicUsize::new(0),
            followed_since_build: AtomicUsize::new(0),
            whole: AtomicBool::new(false),
            store_behind: AtomicBool::new(false),
            rebuild_room: u64::MAX,
        }
    }

    /// This engine, built again while the server runs only while its index
    /// takes at most `bytes` (see [`Engine::take_rebuild_due`]).
    pub fn with_rebuild_room(self, bytes: u64) -> Self {
        Self {
            rebuild_room: bytes,
            ..self
        }
    }

    /// True once the index has been built from the store for the first
    /// time, or building it has failed.
    pub fn built_once(&self) -> bool {
        self.built_once.load(Ordering::SeqCst)
    }

    /// True when article `id` is in the index: its list can be made. A
    /// public article is not while the index is first built, and for the
    /// moment after it is published.
    pub fn indexed(&self, id: i32) -> bool {
        self.index.read().get(id).is_some()
    }

    /// The whole list of article `id`: kept in memory, read from the
    /// store, or computed now (milliseconds: not for an async worker);
    /// `None` if the article is not indexed.
    pub fn list(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        self.stored(id, STORED)
            .or_else(|| self.from_store(id))
            .or_else(|| self.compute_list(id))
    }

    /// Computes the list of article `id` and keeps it, in memory for a
    /// while and in the store; `None` if the article is not indexed.
    /// Kept whole: until it is stored, a longer `limit` would compute it
    /// again. Milliseconds of CPU: not for an async worker.
    pub fn compute_list(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let changes = self.changes.load(Ordering::SeqCst);
        let version = self.index_version.load(Ordering::SeqCst);
        let list = self.compute_stored(id)?;
        let items = Arc::new(list.items.clone());
        self.to_store(version, list);
        self.keep_older(id, Older::whole(&items), changes);
        Some(items)
    }

    /// Queues a list computed from the index at `version` to be stored by
    /// the refresher, if there is a store and room.
    fn to_store(&self, version: u64, list: StoredList) {
        if self.store.get().is_some() {
            let mut unsaved = self.unsaved.lock();
            if unsaved.len() < MAX_UNSAVED {
                unsaved.push((version, list));
            }
        }
    }

    /// The list of article `id`, with its first `wanted` items at least if
    /// it has them, if it is already made and in memory; never computes or
    /// reads the store. An older article's list is kept cut to
    /// [`OLDER_ITEMS`] items: `None` for more.
    pub fn stored(&self, id: i32, wanted: usize) -> Option<Arc<Vec<Related>>> {
        let kept = self.lists.read().get(&id).cloned();
        kept.or_else(|| {
            self.older
                .get(&id)
                .filter(|older| older.rest.is_empty() || older.items.len() >= wanted)
                .map(|older| older.items)
        })
    }

    /// The whole list of article `id` from the store, if one is stored and
    /// still holds: a short indexed read, fine on an async worker.
    ///
    /// Until the index is first built, a list is checked against the
    /// store instead, if [`Engine::trusts_stored`], and shown without the
    /// words its items share (the store keeps none).
    pub fn from_store(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let db = self.store.get()?;
        let changes = self.changes.load(Ordering::SeqCst);
        if self.trusts_stored() && !self.indexed(id) {
            let trusted = self.trusted_writes.load(Ordering::SeqCst);
            let now = crate::db::now();
            let holding = db.lookup(|conn| {
                if stored::writes_to_articles(conn)? != trusted {
                    return Ok(Err(()));
                }
                let list = stored::load(conn, id)?;
                Ok(Ok(match list {
                    Some(list) if stored::holds_in_store(conn, &list, now)? => Some(list),
                    _ => None,
                }))
            });
            return match holding {
                // Not kept: the index, once built, finds the words.
                Ok(Ok(list)) => list.map(|list| Arc::new(list.items)),
                Ok(Err(())) => {
                    // Written since: what it changed is known once indexed.
                    self.trusted_writes.store(-1, Ordering::SeqCst);
                    None
                }
                Err(error) => {
                    tracing::warn!(%error, id, "reading a stored related list failed");
                    None
                }
            };
        }
        let list = match db.lookup_one(|conn| stored::load(conn, id)) {
            Ok(list) => list?,
            Err(error) => {
                tracing::warn!(%error, id, "reading a stored related list failed");
                return None;
            }
        };
        let list = Self::read_back(&self.index.read(), list)?;
        self.keep_older(id, Older::cut(&list), changes);
        Some(list)
    }

    /// True until the index is first built, if the stored lists were
    /// current at start, no write has been seen since and no scheduled
    /// article has come due (see [`Engine::trust_stored_until_built`]): each
    /// stored list whose article and items are as they were then is the
    /// list the index would give, while the store counts no write since
    /// (checked with each list, see [`Engine::from_store`]).
    fn trusts_stored(&self) -> bool {
        !self.built_once.load(Ordering::SeqCst)
            && self.trusted_writes.load(Ordering::SeqCst) >= 0
            && crate::db::now().and_utc().timestamp_micros()
                < self.trusted_until.load(Ordering::SeqCst)
    }

    /// A list read from the store as requests show it, if it still holds:
    /// the store keeps no terms, so they are found once here for the items
    /// a page shows, rather than by every request that shows them.
    fn read_back(index: &Index, list: StoredList) -> Option<Arc<Vec<Related>>> {
        if !holds(index, &list) {
            return None;
        }
        let id = list.article_id;
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
        Some(Arc::new(items))
    }

    /// Keeps the list of an older article that was begun when the index
    /// had seen `changes` changes.
    fn keep_older(&self, id: i32, list: Older, changes: u64) {
        self.older.insert(id, list);
        // A change counted after this list was begun may have looked
        // through `older` before it was in: then it is not kept.
        if self.changes.load(Ordering::SeqCst) != changes {
            self.older.remove(&id);
        }
    }

    /// For each of `items`, items of article `id`'s list, the words that
    /// make the two texts similar, strongest first. The index is locked
    /// once for all of them: its lock word is written by every reader.
    pub fn words<'a>(
        &self,
        id: i32,
        items: impl IntoIterator<Item = &'a Related>,
    ) -> Vec<Vec<String>> {
        let index = self.index.read();
        items
            .into_iter()
            .map(|item| {
                let found;
                let terms = match item.terms() {
                    Some(terms) => terms,
                    None => {
                        found = index.shared_terms_of(id, item.id, SHARED_TERMS);
                        &found
                    }
                };
                // A list taken just before the index was built afresh names
                // terms of the old index, which the new one may not have:
                // skipped, not a panic.
                terms
                    .iter()
                    .filter_map(|term| index.spelling_of(*term))
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }

    /// Computes and stores the list of article `id`, to be kept current.
    fn refresh_list(&self, id: i32) -> Option<Arc<Vec<Related>>> {
        let version = self.index_version.load(Ordering::SeqCst);
        let list = self.compute_stored(id)?;
        let items = Arc::new(list.items.clone());
        self.to_store(version, list);
        self.lists.write().insert(id, Arc::clone(&items));
        self.older.remove(&id);
        Some(items)
    }

    /// Computes and stores the lists of many articles, on every core.
    fn refresh_lists(&self, ids: &[i32]) {
        on_every_core(ids, |id| self.refresh_list(id).map(|_| ()));
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

/// The index and the lists kept current grow with the store.
impl crate::memory::Grown for Engine {
    fn heap_bytes(&self) -> u64 {
        let index = self.index.read().heap_bytes();
        let lists = self.lists.read();
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
        let indexed = self.index.read().len();
        let kept = self.lists.read().len();
        let full = ListSize.weight(&0, &Older::cut(&vec![Related::without_terms(); STORED]));
        let all = indexed.saturating_sub(kept) as u64 * full;
        Some(all + all / 8)
    }
}

#[cfg(test)]
mod tests;
