//! How the Related engine follows the store: building the index from
//! scratch, and bringing it and the lists up to date after a change (the
//! thread that does both is in `refresher`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::score::holds;
use super::stored::{self, StoredList};
use super::{Document, Engine, Index, LISTS_VERSION, SHARED_TERMS, STORED, on_every_core};
use crate::content::{Status, plain_text};
use crate::db::in_ids::InIdsExt;
use crate::db::schema::{article_tags, articles};
use crate::db::{Db, StoreResult};

/// Changes at once past which [`Engine::sync`] rebuilds everything (or
/// past a tenth of the corpus, if that is more).
const REBUILD_AFTER: usize = 1_000;
/// How many of a new or changed article's closest matches by text have
/// their lists computed again (see [`Engine::apply`]), while at most
/// [`CHECKED_FULLY_UP_TO`] articles change at once.
const REACH: usize = 200;
/// Changed articles at once up to which [`REACH`] holds; past that only
/// the lists of a change's own items are looked at (a bulk write).
const CHECKED_FULLY_UP_TO: usize = 20;
/// Articles loaded from the store per query when indexing.
const LOAD_CHUNK: usize = 500;
/// Lists of older articles computed and stored at a time, between looks at
/// what changed.
pub(super) const FILL_CHUNK: usize = 1_000;
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

    /// Brings the index and the lists up to date with what is visible at
    /// `now`, touching only what changed; returns how many lists it
    /// recomputed (articles indexed, when it rebuilt everything). Reads
    /// every visible article's `updated_at`: for after a content write.
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
        // A new or changed article may belong in the lists of the articles
        // most like it. Its own scores for them say little of theirs for it
        // (each list's scores are relative to its own query's best, and the
        // closest by text need not be its best after the bonuses), so while
        // few articles change, the lists of its `REACH` closest are computed
        // again (those kept in memory at once; stored ones are deleted and
        // queued for the refresher below). Past that, only the lists of its
        // own items whose last item it beats.
        let checked_fully = changed.len() <= CHECKED_FULLY_UP_TO;
        let mut reached = Vec::new();
        for id in &changed {
            let Some(list) = self.refresh_list(*id) else {
                continue;
            };
            let closest = if checked_fully {
                self.reach(*id, REACH)
            } else {
                Vec::new()
            };
            let lists = self.lists.read().expect("lists lock");
            affected.extend(closest.iter().filter(|other| lists.contains_key(*other)));
            reached.extend(closest);
            for item in list.iter() {
                reached.push(item.id);
                // A list not kept is deleted and queued below.
                let beaten = lists.get(&item.id).is_some_and(|theirs| {
                    checked_fully
                        || theirs.len() < STORED
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
        reached.sort_unstable();
        reached.dedup();
        if let Some(db) = self.store.get().filter(|_| !reached.is_empty()) {
            let ids = reached.clone();
            match db.write_derived_blocking(move |conn| stored::remove(conn, &ids)) {
                // Those not kept in memory wait to be computed and stored
                // again by the refresher, rather than by a request.
                Ok(()) => {
                    let kept = self.lists.read().expect("lists lock");
                    self.waiting
                        .lock()
                        .expect("waiting lock")
                        .extend(reached.iter().filter(|id| !kept.contains_key(*id)));
                }
                Err(error) => {
                    tracing::error!(%error, "deleting stale related lists failed; deleting all");
                    db.write_derived_blocking(stored::clear)?;
                }
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
