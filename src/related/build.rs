//! Building the Related index from scratch, at start or after a bulk
//! change, and getting the newest articles' lists back: read from the
//! store where a stored list still holds, computed otherwise.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use diesel::sqlite::SqliteConnection;

use super::refresh::{
    CHECKED_FULLY_UP_TO, FILL_CHUNK, LOAD_CHUNK, REACH, REBUILD_AFTER, load, visible,
};
use super::score::holds;
use super::stored::{self, StoredList};
use super::{Engine, Index, LISTS_VERSION, Older, SHARED_TERMS, on_every_core};
use crate::db::{Db, StoreResult};

/// How far before the last recorded sync a start looks for changed
/// articles: writes are stamped before they commit.
const SYNC_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl Engine {
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
        // Before the new index is in, with which a list read from the store
        // is shown if it holds, whatever version computed it.
        if let Some(db) = self.store.get() {
            forget_other_versions(conn, db)?;
        }
        let count = index.len();
        *self.index.write().expect("index lock") = index;
        self.followed_since_build.store(0, Ordering::SeqCst);
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
        // A list read from the store while `reconcile` deleted it is not
        // kept (see `keep_older`).
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.older.clear();
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

    /// Reads the stored lists of older articles into memory, newest first
    /// (as news is read), until the cache of older lists is nine tenths
    /// full or every stored list is in: the first reads after a start then
    /// find them there rather than each reading the store and finding its
    /// terms.
    /// Returns how many lists it read. For a background thread, once the
    /// index is built.
    pub fn warm_older(&self, db: &Db) -> StoreResult<usize> {
        let ids = db.read_blocking(|conn| visible(conn, crate::db::now()))?;
        let mut warmed = 0;
        for chunk in ids.chunks(LOAD_CHUNK) {
            if self.older.weight() >= self.older.capacity() / 10 * 9 {
                break;
            }
            let wanted: Vec<i32> = {
                let kept = self.lists.read().expect("lists lock");
                chunk
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| !kept.contains_key(id) && self.older.peek(id).is_none())
                    .collect()
            };
            let changes = self.changes.load(Ordering::SeqCst);
            let lists = db.read_blocking(|conn| stored::load_many(conn, &wanted))?;
            for list in lists {
                let id = list.article_id;
                // Locked per list: a change waits for one list, not a chunk.
                let shown = Self::read_back(&self.index.read().expect("index lock"), list);
                if let Some(list) = shown {
                    self.keep_older(id, Older::cut(&list), changes);
                    warmed += 1;
                }
            }
        }
        Ok(warmed)
    }

    /// After the index was built afresh: deletes the stored lists that an
    /// article changed or published since the last recorded sync may now
    /// belong in (every stored list, when that is much of the corpus), and
    /// returns the articles whose stored lists are left.
    fn reconcile(
        &self,
        conn: &mut SqliteConnection,
        db: &Db,
        now: NaiveDateTime,
    ) -> StoreResult<HashSet<i32>> {
        let synced = stored::synced(conn)?;
        let mut have: HashSet<i32> = stored::ids(conn)?.into_iter().collect();
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
                // them, and stored as they are current; while few changed,
                // the lists of each one's closest are looked at too (see
                // `apply`).
                let lists = on_every_core(&changed, |id| self.compute_stored(id));
                let mut reached = Vec::new();
                if changed.len() <= CHECKED_FULLY_UP_TO {
                    for id in &changed {
                        reached.extend(self.reach(*id, REACH));
                    }
                }
                reached.extend(changed);
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
}

/// Deletes the stored lists if another [`LISTS_VERSION`] computed them
/// (the version recorded becomes this one when the rebuild records its
/// sync).
fn forget_other_versions(conn: &mut SqliteConnection, db: &Db) -> StoreResult<()> {
    match stored::synced(conn)?.map(|(_, version)| version) {
        None | Some(LISTS_VERSION) => {}
        Some(_) => {
            tracing::info!("related lists stored by another version; computing them again");
            db.write_derived_blocking(stored::clear)?;
        }
    }
    Ok(())
}
