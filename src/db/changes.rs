//! What the caches above the store hear of writes, so that they can keep
//! what they show without asking the store again on every read:
//!
//! - which articles' counters (views and reactions) a commit changed: the
//!   writer tells [`Counters`] once the commit is made;
//! - that another process wrote to the database file (an import, say): the
//!   writer sees SQLite's `data_version` move, which only commits on other
//!   connections do, and [`Changes::others_wrote`] counts it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};
use rustc_hash::FxHashMap;

/// An article's counters: `{counter: count}` (views and each reaction kind).
pub type Counts = HashMap<String, i64>;

/// What the writer tells the caches.
#[derive(Default)]
pub struct Changes {
    /// Counters as last read from the store.
    pub counters: Counters,
    /// Commits by other processes seen so far.
    others: AtomicU64,
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("others_wrote", &self.others_wrote())
            .finish_non_exhaustive()
    }
}

impl Changes {
    /// How many times the writer has seen another process's commits; when
    /// this moves, whatever was loaded before may be out of date.
    pub fn others_wrote(&self) -> u64 {
        self.others.load(Ordering::SeqCst)
    }

    /// Another process committed: every counter is forgotten, and readers
    /// of [`Changes::others_wrote`] see a new value.
    pub(super) fn saw_others_write(&self) {
        self.counters.forget_all();
        self.others.fetch_add(1, Ordering::SeqCst);
    }
}

/// Shards of the counter map: readers on different cores rarely share a lock.
const SHARDS: usize = 64;
/// Articles whose counters are kept, per shard.
const PER_SHARD: usize = 4_096;

/// Articles' counters as last read from the store, so that showing an
/// article needs no statement while its counters stay the same. Bounded (a
/// full shard drops an entry for each new one).
///
/// A reader that finds no entry reads the counters and offers them with
/// [`Counters::keep`], along with the [`Counters::epoch`] it saw before it
/// read. Every commit that changes counters moves the epoch before the
/// writer drops the entries it changed, so counters read from an older
/// snapshot are never kept past that commit.
pub struct Counters {
    shards: Vec<Mutex<FxHashMap<i32, Arc<Counts>>>>,
    epoch: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            epoch: AtomicU64::new(0),
        }
    }
}

impl Counters {
    fn shard(&self, article_id: i32) -> MutexGuard<'_, FxHashMap<i32, Arc<Counts>>> {
        self.shards[article_id.unsigned_abs() as usize % SHARDS].lock()
    }

    /// The counters of `article_id`, if kept.
    pub fn get(&self, article_id: i32) -> Option<Arc<Counts>> {
        self.shard(article_id).get(&article_id).cloned()
    }

    /// `read` of the counters of `article_id`, if kept, under the shard's
    /// lock: without cloning the kept `Arc` (see [`Counters::still`]), so
    /// `read` must be quick.
    pub fn with<R>(&self, article_id: i32, read: impl FnOnce(&Arc<Counts>) -> R) -> Option<R> {
        self.shard(article_id).get(&article_id).map(read)
    }

    /// True when `counts` are the counters kept for `article_id`: none of
    /// its counters has changed since they were read. Compares under the
    /// shard lock instead of cloning the kept `Arc`, whose count is an
    /// atomic write to a cache line most likely cold.
    pub fn still(&self, article_id: i32, counts: &Weak<Counts>) -> bool {
        self.shard(article_id)
            .get(&article_id)
            .is_some_and(|kept| std::ptr::eq(Arc::as_ptr(kept), counts.as_ptr()))
    }

    /// Moves with every commit that changes counters: read it before reading
    /// counters from the store, and pass it to [`Counters::keep`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Keeps counters read from the store after `epoch` was read, unless a
    /// commit has changed counters since.
    pub fn keep(&self, epoch: u64, article_id: i32, counts: Arc<Counts>) {
        let mut shard = self.shard(article_id);
        if self.epoch() != epoch {
            return;
        }
        if shard.len() >= PER_SHARD
            && !shard.contains_key(&article_id)
            && let Some(&old) = shard.keys().next()
        {
            shard.remove(&old);
        }
        shard.insert(article_id, counts);
    }

    /// A commit changed these articles' counters.
    pub(super) fn forget(&self, article_ids: &[i32]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for &id in article_ids {
            self.shard(id).remove(&id);
        }
    }

    /// A commit may have changed any counter.
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            shard.lock().clear();
        }
    }
}

/// What one batch changed, for [`Counters`] once it has committed.
#[derive(Debug, Default)]
pub struct Changed {
    /// Articles whose counters changed.
    pub ids: Vec<i32>,
    /// Anything may have changed (a write outside the tally).
    pub all: bool,
}

impl Changed {
    /// Tells `counters`, and clears itself.
    pub(super) fn tell(&mut self, counters: &Counters) {
        if self.all {
            counters.forget_all();
        } else if !self.ids.is_empty() {
            counters.forget(&self.ids);
        }
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(views: i64) -> Arc<Counts> {
        Arc::new(HashMap::from([("view".to_string(), views)]))
    }

    #[test]
    fn counters_read_before_a_commit_that_changed_them_are_not_kept() {
        let counters = Counters::default();
        let before = counters.epoch();
        counters.forget(&[7]);
        counters.keep(before, 7, counts(1));
        assert!(counters.get(7).is_none(), "read before the commit");

        let read = counts(2);
        counters.keep(counters.epoch(), 7, Arc::clone(&read));
        assert_eq!(counters.get(7).unwrap()["view"], 2);
        let shown = Arc::downgrade(&read);
        assert!(counters.still(7, &shown));
        let apart = counts(2);
        assert!(
            !counters.still(7, &Arc::downgrade(&apart)),
            "equal, but read apart"
        );
        counters.forget(&[8]);
        assert_eq!(counters.get(7).unwrap()["view"], 2, "another article");
        assert!(counters.still(7, &shown));
        counters.forget(&[7]);
        assert!(counters.get(7).is_none());
        assert!(!counters.still(7, &shown));
    }

    #[test]
    fn a_write_by_another_process_forgets_every_counter() {
        let changes = Changes::default();
        changes.counters.keep(0, 1, counts(5));
        changes.counters.keep(0, 2, counts(6));
        changes.saw_others_write();
        assert_eq!(changes.others_wrote(), 1);
        assert!(changes.counters.get(1).is_none() && changes.counters.get(2).is_none());
    }

    #[test]
    fn a_full_shard_makes_room() {
        let counters = Counters::default();
        let ids: Vec<i32> = (0..=PER_SHARD as i32).map(|n| n * SHARDS as i32).collect();
        for &id in &ids {
            counters.keep(0, id, counts(1));
        }
        let kept = ids.iter().filter(|&&id| counters.get(id).is_some()).count();
        assert_eq!(kept, PER_SHARD);
        assert!(
            counters.get(*ids.last().unwrap()).is_some(),
            "the newest is kept"
        );
    }
}
