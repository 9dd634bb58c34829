//! How the Related engine follows the store: bringing the index and the
//! lists up to date after a change (building them from scratch is in
//! `build`; the thread that does both is in `refresher`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::score::holds;
use super::stored;
use super::{Document, Engine, STORED};
use crate::content::plain_text;
use crate::db::articles::public_at;
use crate::db::in_ids::InIdsExt;
use crate::db::schema::{article_tags, articles};
use crate::db::{Db, StoreResult};

/// Changes at once past which [`Engine::sync`] rebuilds everything (or
/// past a tenth of the corpus, if that is more).
pub(super) const REBUILD_AFTER: usize = 1_000;
/// How many of a new or changed article's closest matches by text have
/// their lists computed again (see [`Engine::apply`]), while at most
/// [`CHECKED_FULLY_UP_TO`] articles change at once.
pub(super) const REACH: usize = 200;
/// Changed articles at once up to which [`REACH`] holds; past that only
/// the lists of a change's own items are looked at (a bulk write).
pub(super) const CHECKED_FULLY_UP_TO: usize = 20;
/// Changes followed one by one after which the index is built again from
/// scratch (see [`Engine::take_rebuild_due`]): one per this many articles,
/// and at least [`REBUILD_AFTER_CHANGES`].
pub(super) const REBUILD_AFTER_SHARE: usize = 100;
pub(super) const REBUILD_AFTER_CHANGES: usize = 20;
/// Articles loaded from the store per query when indexing.
pub(super) const LOAD_CHUNK: usize = 500;
/// Lists of older articles computed and stored at a time, between looks at
/// what changed.
pub(super) const FILL_CHUNK: usize = 1_000;
/// Stored lists looked through at a time for those a change made stale
/// (see [`Engine::sweep`]).
const SWEEP_CHUNK: usize = 5_000;

/// Where the look through the stored lists for those a change made stale
/// stands. A change during a lap has the lists already looked at in it
/// looked at again, in a lap up to where it was.
#[derive(Debug, Default)]
pub(super) struct Sweep {
    /// The article after whose list the lap goes on; `None` when idle.
    after: Option<i32>,
    /// The last article whose list the lap looks at; `None`: every one.
    until: Option<i32>,
    /// Where the lap was when a change came during it: the next lap goes
    /// up to there.
    then: Option<i32>,
    /// Changes begun: one that comes while a chunk is looked at may have
    /// come after its lists were (see [`Sweep::looked_to`]).
    changes: u64,
}

impl Sweep {
    /// A change (or a start): every stored list is to be looked at after
    /// it.
    pub(super) fn begin(&mut self) {
        self.changes += 1;
        match self.after {
            None => {
                self.after = Some(i32::MIN);
                self.until = None;
                self.then = None;
            }
            // Nothing looked at yet: this lap is enough.
            Some(i32::MIN) => self.until = None,
            Some(at) => {
                self.until = None;
                self.then = Some(self.then.map_or(at, |then| then.max(at)));
            }
        }
    }

    /// The lists up to article `last` were looked at, begun after
    /// `changes` changes; `None`: none was left to look at. A change since
    /// may have come after they were: the next lap goes up to `last`.
    fn looked_to(&mut self, last: Option<i32>, changes: u64) {
        if let Some(last) = last.filter(|_| self.changes != changes) {
            self.then = Some(self.then.map_or(last, |then| then.max(last)));
        }
        let lap_over = match (last, self.until) {
            (None, _) => true,
            (Some(last), Some(until)) => last >= until,
            (Some(_), None) => false,
        };
        if !lap_over {
            self.after = last;
            return;
        }
        match self.then.take() {
            Some(then) => {
                self.after = Some(i32::MIN);
                self.until = Some(then);
            }
            None => self.after = None,
        }
    }
}

impl Engine {
    /// Brings the index and the lists up to date with what is visible at
    /// `now`, touching only what changed; returns how many lists it
    /// recomputed (articles indexed, when it rebuilt everything). Reads
    /// every visible article's `updated_at`: for after a content write.
    pub fn sync(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<usize> {
        let current: HashMap<i32, NaiveDateTime> = visible(conn, now)?.into_iter().collect();
        let (changed, removed): (Vec<i32>, Vec<i32>) = {
            let index = self.index.read();
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
            .filter(public_at(now))
            .filter(articles::published_at.gt(since))
            .select(articles::id)
            .load(conn)?;
        let changed: Vec<i32> = {
            let index = self.index.read();
            due.into_iter()
                .filter(|id| index.get(*id).is_none())
                .collect()
        };
        let corpus = self.index.read().len() + changed.len();
        self.apply(conn, now, corpus, changed, Vec::new())
    }

    /// True when enough changes were followed since the index was last
    /// built from scratch that it should be built again: following a
    /// change recomputes only the lists it reaches, and the others keep
    /// the word statistics and topic model of the corpus they were made
    /// from. Built again, every list is as a restart would make it.
    ///
    /// Not while the index takes more than the room for a second one (see
    /// [`Engine::with_rebuild_room`]): that is logged, the lists stay as
    /// they are until a restart, and the count starts again.
    pub(super) fn take_rebuild_due(&self) -> bool {
        let followed = self.followed_since_build.load(Ordering::SeqCst);
        let index = {
            let index = self.index.read();
            if followed < (index.len() / REBUILD_AFTER_SHARE).max(REBUILD_AFTER_CHANGES) {
                return false;
            }
            index.heap_bytes()
        };
        if index > self.rebuild_room {
            tracing::info!(
                changes = followed,
                index_mib = index >> 20,
                room_mib = self.rebuild_room >> 20,
                "related lists have drifted from a fresh build; no room in the memory \
                 budget to build the index again beside the one serving, so they stay \
                 until a restart"
            );
            self.followed_since_build.store(0, Ordering::SeqCst);
            return false;
        }
        true
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
        // A list's fingerprint covers its article and items: an article
        // published can make none stale, one edited or removed may.
        // Begun once the index has the change: a list looked at before then
        // is looked at again.
        let edited = !removed.is_empty() || {
            let index = self.index.read();
            changed.iter().any(|id| index.get(*id).is_some())
        };
        let sweep_stale = || {
            if edited {
                self.sweep.lock().begin();
            }
        };
        // A bulk import changes much of the corpus: building everything
        // afresh is then cheaper than following each change.
        // So is a corpus that has outgrown its topic model.
        let outgrown = self.index.read().model_is_stale();
        if outgrown || changed.len() + removed.len() > REBUILD_AFTER.max(corpus / 10) {
            let indexed = self.rebuild(conn, now, &changed);
            sweep_stale();
            return indexed;
        }
        let documents = load(conn, &changed)?;
        let touched: HashSet<i32> = changed.iter().chain(&removed).copied().collect();
        let mut affected = self.lists_holding(&touched);
        self.reindex(documents, &removed, &touched);
        sweep_stale();
        self.followed_since_build
            .fetch_add(touched.len(), Ordering::SeqCst);
        let reached = self.recompute_changed(&changed, &mut affected);
        self.forget_stored(&reached)?;
        for id in changed.iter().chain(&removed) {
            affected.remove(id);
        }
        let recomputed = changed.len() + affected.len();
        self.refresh_lists(&affected.into_iter().collect::<Vec<_>>());
        Ok(recomputed)
    }

    /// True while stored lists are to be looked through for those a change
    /// made stale.
    pub(super) fn sweeping(&self) -> bool {
        self.sweep.lock().after.is_some()
    }

    /// Looks through the next [`SWEEP_CHUNK`] stored lists and queues those
    /// that no longer hold to be computed and stored again; returns whether
    /// more are to be looked through.
    ///
    /// Following a change recomputes the lists it reaches by text, but not
    /// every stored list that holds the changed article: after a thousand
    /// edits at 100k articles, two lists in five held one. A request for
    /// such a list computed it (milliseconds instead of microseconds); the
    /// sweep has them computed ahead instead.
    pub(super) fn sweep(&self, db: &Db) -> StoreResult<bool> {
        let (after, changes) = {
            let sweep = self.sweep.lock();
            let Some(after) = sweep.after else {
                return Ok(false);
            };
            (after, sweep.changes)
        };
        let (lists, last) =
            db.read_blocking(move |conn| stored::load_after(conn, after, SWEEP_CHUNK))?;
        let stale: Vec<i32> = {
            let index = self.index.read();
            let kept = self.lists.read();
            lists
                .into_iter()
                .filter(|list| {
                    index.get(list.article_id).is_some()
                        && !kept.contains_key(&list.article_id)
                        && !holds(&index, list)
                })
                .map(|list| list.article_id)
                .collect()
        };
        if !stale.is_empty() {
            let mut waiting = self.waiting.lock();
            let queued: HashSet<i32> = waiting.iter().copied().collect();
            waiting.extend(stale.into_iter().filter(|id| !queued.contains(id)));
        }
        let mut sweep = self.sweep.lock();
        sweep.looked_to(last, changes);
        Ok(sweep.after.is_some())
    }

    /// The kept lists that hold one of the `touched` articles: a scan of
    /// every list costs a few milliseconds, less than keeping a reverse
    /// index.
    fn lists_holding(&self, touched: &HashSet<i32>) -> HashSet<i32> {
        self.lists
            .read()
            .iter()
            .filter(|(_, list)| list.iter().any(|item| touched.contains(&item.id)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Puts `documents` in the index and takes `removed` out, with their
    /// kept lists; an older list that holds one of the `touched` articles
    /// is dropped, to be computed afresh when next asked for.
    pub(super) fn reindex(
        &self,
        documents: Vec<Document>,
        removed: &[i32],
        touched: &HashSet<i32>,
    ) {
        {
            let mut index = self.index.write();
            for id in removed {
                index.remove(*id);
            }
            for document in documents {
                index.insert(document);
            }
        }
        self.index_version.fetch_add(1, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
        {
            let mut lists = self.lists.write();
            for id in removed {
                lists.remove(id);
            }
        }
        self.older.retain(|id, list| {
            !touched.contains(id) && !list.ids().any(|item| touched.contains(&item))
        });
    }

    /// Computes the lists of the `changed` articles again. Returns the
    /// articles whose lists they may now belong in, sorted, and adds to
    /// `affected` those of them kept in memory that must be computed again.
    ///
    /// A new or changed article may belong in the lists of the articles
    /// most like it. Its own scores for them say little of theirs for it
    /// (each list's scores are relative to its own query's best, and the
    /// closest by text need not be its best after the bonuses), so while
    /// few articles change, the lists of its `REACH` closest are computed
    /// again. Past that, only the lists of its own items whose last item it
    /// beats.
    fn recompute_changed(&self, changed: &[i32], affected: &mut HashSet<i32>) -> Vec<i32> {
        let checked_fully = changed.len() <= CHECKED_FULLY_UP_TO;
        let mut reached = Vec::new();
        for id in changed {
            let Some(list) = self.refresh_list(*id) else {
                continue;
            };
            let closest = if checked_fully {
                self.reach(*id, REACH)
            } else {
                Vec::new()
            };
            let lists = self.lists.read();
            affected.extend(closest.iter().filter(|other| lists.contains_key(*other)));
            reached.extend(closest);
            for item in list.iter() {
                reached.push(item.id);
                // A list not kept is deleted and queued by `forget_stored`.
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
        reached.sort_unstable();
        reached.dedup();
        reached
    }

    /// Deletes the stored lists of the `reached` articles, which new and
    /// changed articles may now belong in (a stored list holds only while
    /// its items are unchanged), and forgets any kept as an older list.
    /// Those not kept in memory wait to be computed and stored again by the
    /// refresher, rather than by a request. Counted as a change, so that a
    /// list read from the store meanwhile is not kept.
    fn forget_stored(&self, reached: &[i32]) -> StoreResult<()> {
        if let Some(db) = self.store.get().filter(|_| !reached.is_empty()) {
            let ids = reached.to_vec();
            match db.write_derived_blocking(move |conn| stored::remove(conn, &ids)) {
                Ok(()) => {
                    let kept = self.lists.read();
                    self.waiting
                        .lock()
                        .extend(reached.iter().filter(|id| !kept.contains_key(*id)));
                }
                Err(error) => {
                    tracing::error!(%error, "deleting stale related lists failed; deleting all");
                    if let Err(error) = db.write_derived_blocking(stored::clear) {
                        self.store_behind.store(true, Ordering::SeqCst);
                        return Err(error);
                    }
                }
            }
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
        for id in reached {
            self.older.remove(id);
        }
        Ok(())
    }
}

/// `(id, updated_at)` of every article public readers can see at `now`,
/// newest first.
pub(super) fn visible(
    conn: &mut SqliteConnection,
    now: NaiveDateTime,
) -> StoreResult<Vec<(i32, NaiveDateTime)>> {
    Ok(articles::table
        .filter(public_at(now))
        .order((articles::published_at.desc(), articles::id.desc()))
        .select((articles::id, articles::updated_at))
        .load(conn)?)
}

/// The articles with these ids, as the index reads them.
pub(super) fn load(conn: &mut SqliteConnection, ids: &[i32]) -> StoreResult<Vec<Document>> {
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

#[cfg(test)]
mod tests {
    use super::Sweep;

    /// A change during a lap has the lists looked at before it looked at
    /// again, in a lap up to where it came; a change before the lap has
    /// looked at any, none.
    #[test]
    fn a_change_during_a_sweep_has_it_look_again_up_to_where_it_was() {
        let mut sweep = Sweep::default();
        sweep.begin();
        sweep.begin();
        assert_eq!(sweep.after, Some(i32::MIN));
        sweep.looked_to(Some(500), sweep.changes);
        assert_eq!(sweep.after, Some(500));
        sweep.begin();
        sweep.looked_to(Some(800), sweep.changes);
        sweep.begin();
        assert_eq!(sweep.after, Some(800), "goes on where it was");
        sweep.looked_to(Some(900), sweep.changes);
        sweep.looked_to(None, sweep.changes);
        assert_eq!(sweep.after, Some(i32::MIN), "again from the first");
        sweep.looked_to(Some(700), sweep.changes);
        assert_eq!(sweep.after, Some(700));
        sweep.looked_to(Some(800), sweep.changes);
        assert_eq!(sweep.after, None, "through at the last change's place");

        // A change during the second lap: the rest, then up to it.
        sweep.begin();
        sweep.looked_to(Some(500), sweep.changes);
        sweep.begin();
        sweep.looked_to(None, sweep.changes);
        sweep.looked_to(Some(300), sweep.changes);
        sweep.begin();
        sweep.looked_to(Some(600), sweep.changes);
        assert_eq!(sweep.after, Some(600), "past where the second lap ended");
        sweep.looked_to(None, sweep.changes);
        sweep.looked_to(Some(300), sweep.changes);
        assert_eq!(sweep.after, None);

        // A change while a chunk is looked at: its lists may have been
        // looked at before it, and are looked at again.
        sweep.begin();
        let changes = sweep.changes;
        sweep.begin();
        sweep.looked_to(Some(400), changes);
        sweep.looked_to(None, sweep.changes);
        assert_eq!(sweep.after, Some(i32::MIN), "again from the first");
        sweep.looked_to(Some(400), sweep.changes);
        assert_eq!(sweep.after, None, "up to the chunk's last");
    }
}
