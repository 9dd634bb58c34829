//! Building the Related index from scratch, at start or after a bulk
//! change, and getting the newest articles' lists back: read from the
//! store where a stored list still holds, computed otherwise.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::refresh::{
    CHECKED_FULLY_UP_TO, FILL_CHUNK, LOAD_CHUNK, REACH, REBUILD_AFTER, load, visible,
};
use super::score::holds;
use super::stored::{self, StoredList};
use super::{Engine, Index, LISTS_VERSION, Older, SHARED_TERMS, on_every_core};
use crate::content::Status;
use crate::db::schema::articles;
use crate::db::{Db, StoreResult};

/// How far before the last recorded sync a start looks for changed
/// articles: writes are stamped before they commit.
const SYNC_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

impl Engine {
    /// Indexes everything visible at `now` from scratch and makes the lists
    /// of the newest articles (read from the store where a stored list
    /// still holds); returns how many articles were indexed. `changed`
    /// names articles known to have changed since the last recorded sync,
    /// besides those their timestamps tell (see [`Engine::reconcile`]).
    pub fn rebuild(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
        changed: &[i32],
    ) -> StoreResult<usize> {
        let started = std::time::Instant::now();
        // Before the articles: a write counted after is looked at again.
        let writes = stored::writes_to_articles(conn)?;
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
        *self.index.write() = index;
        self.followed_since_build.store(0, Ordering::SeqCst);
        self.index_version.fetch_add(1, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.lists.write().clear();
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
        let mut have = self.reconcile(conn, db, now, writes, changed)?;
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
        let kept = self.lists.read();
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
        *self.waiting.lock() = waiting;
        Ok(count)
    }

    /// Records that the stored lists have followed every change to
    /// articles before `at` and the first `writes` writes to them (see
    /// [`stored::set_synced`]); unless stale lists could not be deleted in
    /// this run.
    pub(super) fn record_synced(&self, db: &Db, at: NaiveDateTime, writes: i64) -> StoreResult<()> {
        if self.store_behind.load(Ordering::SeqCst) {
            return Ok(());
        }
        db.write_derived_blocking(move |conn| stored::set_synced(conn, at, writes))
    }

    /// Has stored lists served as they are until the index is first built,
    /// if nothing has changed since they were last brought up to date (see
    /// [`Engine::trusts_stored`]): a million articles take a minute to
    /// index, and their pages would show no Related list meanwhile.
    pub(super) fn trust_stored_until_built(&self, db: &Db) {
        match db.read_blocking(|conn| stored_lists_current_until(conn, crate::db::now())) {
            Ok(Some((writes, until))) => {
                let until = until.and_utc().timestamp_micros();
                self.trusted_until.store(until, Ordering::SeqCst);
                self.trusted_writes.store(writes, Ordering::SeqCst);
                tracing::info!("stored related lists current: shown while the index is built");
            }
            Ok(None) => {
                tracing::info!(
                    "stored related lists not known to be current: none shown until indexed"
                )
            }
            Err(error) => {
                tracing::warn!(%error, "checking the stored related lists failed");
            }
        }
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
                let kept = self.lists.read();
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
                let shown = Self::read_back(&self.index.read(), list);
                if let Some(list) = shown {
                    self.keep_older(id, Older::cut(&list), changes);
                    warmed += 1;
                }
            }
        }
        Ok(warmed)
    }

    /// After the index was built afresh from the store as it was after
    /// `writes` writes to articles: deletes the stored lists that an
    /// article changed or published since the last recorded sync may now
    /// belong in (every stored list, when that is much of the corpus), and
    /// returns the articles whose stored lists are left. Changed are those
    /// stamped since (less [`SYNC_MARGIN`]) and those in `known_changed`:
    /// an import stamps its articles when it begins, and its last batches
    /// may commit long after.
    fn reconcile(
        &self,
        conn: &mut SqliteConnection,
        db: &Db,
        now: NaiveDateTime,
        writes: i64,
        known_changed: &[i32],
    ) -> StoreResult<HashSet<i32>> {
        let synced = stored::synced(conn)?;
        let mut have: HashSet<i32> = stored::ids(conn)?.into_iter().collect();
        let since = synced.map(|synced| synced.at - SYNC_MARGIN);
        let (corpus, changed): (usize, Vec<i32>) = {
            let index = self.index.read();
            let known: HashSet<i32> = known_changed.iter().copied().collect();
            let changed = index
                .ids()
                .filter(|id| {
                    let entry = index.get(*id).expect("indexed");
                    known.contains(id)
                        || since.is_none_or(|since| {
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
        self.record_synced(db, now, writes)?;
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
                let index = self.index.read();
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
            let mut lists = self.lists.write();
            for (id, list) in holding {
                lists.insert(id, list);
            }
            missing.extend(chunk.iter().filter(|id| !lists.contains_key(id)));
        }
        for chunk in missing.chunks(FILL_CHUNK) {
            let computed = on_every_core(chunk, |id| self.compute_stored(id));
            {
                let mut lists = self.lists.write();
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

/// If the stored lists are current at `now`, the count of writes to
/// articles they have followed and until when they stay current: they were
/// computed by this [`LISTS_VERSION`], have followed every write to
/// articles there has been, and no scheduled article has come due since
/// they were last brought up to date. Then, until the next scheduled
/// article comes due or another write comes, each list that
/// [`stored::holds_in_store`] is the list the index would give, the index
/// not built yet. Three short indexed reads, at any size of store.
fn stored_lists_current_until(
    conn: &mut SqliteConnection,
    now: NaiveDateTime,
) -> StoreResult<Option<(i64, NaiveDateTime)>> {
    let Some(synced) = stored::synced(conn)? else {
        return Ok(None);
    };
    let writes = stored::writes_to_articles(conn)?;
    if synced.lists_version != LISTS_VERSION || synced.article_writes != Some(writes) {
        return Ok(None);
    }
    let next_due: Option<Option<NaiveDateTime>> = articles::table
        .filter(articles::status.eq(Status::Published.as_str()))
        .filter(articles::published_at.gt(synced.at))
        .order((articles::published_at, articles::id))
        .select(articles::published_at)
        .first(conn)
        .optional()?;
    match next_due.flatten() {
        Some(due) if due <= now => Ok(None),
        Some(due) => Ok(Some((writes, due))),
        None => Ok(Some((writes, NaiveDateTime::MAX))),
    }
}

/// Deletes the stored lists if another [`LISTS_VERSION`] computed them
/// (the version recorded becomes this one when the rebuild records its
/// sync).
fn forget_other_versions(conn: &mut SqliteConnection, db: &Db) -> StoreResult<()> {
    match stored::synced(conn)?.map(|synced| synced.lists_version) {
        None | Some(LISTS_VERSION) => {}
        Some(_) => {
            tracing::info!("related lists stored by another version; computing them again");
            db.write_derived_blocking(stored::clear)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::related::BUILT_LISTS;

    fn ids(list: &[super::super::Related]) -> Vec<i32> {
        list.iter().map(|item| item.id).collect()
    }

    /// Runs `write` on the store's writer.
    fn write(
        db: &Db,
        write: impl FnOnce(&mut SqliteConnection) -> QueryResult<usize> + Send + 'static,
    ) {
        db.write_derived_blocking(move |conn| Ok(write(conn)?))
            .unwrap();
    }

    /// Until the index is first built, a restart shows each stored list that
    /// still holds as the store tells it, if the lists had followed every
    /// write when it stopped; not one an item of which has changed since it
    /// was computed, and none once another write comes, when a write came
    /// first, or when a scheduled article comes due.
    #[test]
    fn stored_lists_are_shown_before_the_index_is_built_while_they_hold() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Db::open(&dir.path().join("lists.db"), 2).unwrap();
        crate::demo::seed_if_empty(&db).unwrap();
        let now = crate::db::now();
        let in_an_hour = now + chrono::TimeDelta::hours(1);
        write(&db, move |conn| {
            let draft = articles::table.filter(articles::status.eq("draft"));
            let draft: i32 = draft.select(articles::id).first(conn)?;
            diesel::update(articles::table.find(draft))
                .set((
                    articles::status.eq(Status::Published.as_str()),
                    articles::published_at.eq(in_an_hour),
                ))
                .execute(conn)
        });
        let first = Engine::new(BUILT_LISTS);
        let _ = first.store.set(db.clone());
        db.read_blocking(|conn| first.rebuild(conn, now, &[]))
            .unwrap();
        let until = |at| {
            let current = db.read_blocking(|conn| stored_lists_current_until(conn, at));
            current.unwrap().map(|(_, until)| until)
        };
        assert_eq!(until(now), Some(in_an_hour));
        let later = in_an_hour + chrono::TimeDelta::seconds(1);
        assert_eq!(until(later), None, "a scheduled article came due");

        // Lists in id order: the first one, and one without its first item.
        let mut lists: Vec<(i32, Arc<Vec<super::super::Related>>)> = first
            .lists
            .read()
            .iter()
            .filter(|(_, list)| list.len() >= 3)
            .map(|(id, list)| (*id, Arc::clone(list)))
            .collect();
        lists.sort_by_key(|(id, _)| *id);
        let (id, list) = lists[0].clone();
        let edited = list[0].id;
        let (other, other_list) = lists
            .iter()
            .find(|(other, items)| *other != edited && items.iter().all(|item| item.id != edited))
            .cloned()
            .expect("a list without it");
        // Edited, and the lists recorded as following it, as the refresher
        // does: the stored list that holds it no longer holds.
        write(&db, move |conn| {
            diesel::update(articles::table.find(edited))
                .set(articles::updated_at.eq(in_an_hour))
                .execute(conn)
        });
        let writes = db.read_blocking(stored::writes_to_articles).unwrap();
        first.record_synced(&db, now, writes).unwrap();

        let restarted = Engine::new(BUILT_LISTS);
        let _ = restarted.store.set(db.clone());
        assert!(restarted.from_store(other).is_none(), "not trusted yet");
        restarted.trust_stored_until_built(&db);
        assert!(restarted.from_store(id).is_none(), "an item changed");
        let shown = restarted.from_store(other).expect("stored and holding");
        assert_eq!(ids(&shown), ids(&other_list));

        let due = crate::db::now().and_utc().timestamp_micros();
        let until = restarted.trusted_until.swap(due, Ordering::SeqCst);
        assert_eq!(until, in_an_hour.and_utc().timestamp_micros());
        assert!(
            restarted.from_store(other).is_none(),
            "the scheduled one due"
        );
        restarted.trusted_until.store(until, Ordering::SeqCst);
        restarted.built_once.store(true, Ordering::SeqCst);
        assert!(
            restarted.from_store(other).is_none(),
            "built (or failed to)"
        );
        restarted.built_once.store(false, Ordering::SeqCst);
        assert!(restarted.from_store(other).is_some());
        write(&db, move |conn| {
            diesel::update(articles::table.find(id))
                .set(articles::title.eq("Written since"))
                .execute(conn)
        });
        assert!(restarted.from_store(other).is_none(), "a write since");

        let after_a_write = Engine::new(BUILT_LISTS);
        let _ = after_a_write.store.set(db.clone());
        after_a_write.trust_stored_until_built(&db);
        assert!(
            after_a_write.from_store(other).is_none(),
            "a write came first"
        );
    }
}
