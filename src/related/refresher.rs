//! The Related engine's background thread: it builds the index, then keeps
//! it and the lists current as the store changes, and computes and stores
//! the lists of older articles not stored yet.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

use super::refresh::FILL_CHUNK;
use super::stored::{self, StoredList};
use super::{Engine, LISTS_VERSION, on_every_core};
use crate::db::{self, Db, StoreResult};

/// How long the refresher waits for writes to stop before it indexes them,
/// and at most while they go on.
const SETTLE: Duration = Duration::from_millis(200);
const MAX_SETTLE: Duration = Duration::from_secs(30);
/// How often the refresher looks for scheduled articles that came due.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Longest wait before building again after builds failed (the wait
/// doubles from [`REFRESH_EVERY`] with each failure).
const MAX_BUILD_RETRY: Duration = Duration::from_secs(300);
/// Pause between chunks of a sweep through the stored lists: at a million
/// of them a sweep takes a share of a core, not all of it, for as long as
/// changes keep coming.
const SWEEP_PAUSE: Duration = Duration::from_millis(20);

impl Engine {
    /// Computes and stores the next [`FILL_CHUNK`] lists waiting to be
    /// stored, on every core; returns how many still wait. If storing them
    /// fails, they wait again.
    ///
    /// A list kept in memory as an older list (computed when asked for
    /// while it waited) is dropped once its new version is stored: the two
    /// may differ, as the index changed in between, and the server would
    /// otherwise show one version until a restart and the other after.
    fn fill(&self, db: &Db) -> StoreResult<usize> {
        let _busy = Busy::begin(&self.busy);
        let chunk = {
            let mut waiting = self.waiting.lock();
            let from = waiting.len().saturating_sub(FILL_CHUNK);
            waiting.split_off(from)
        };
        let lists = on_every_core(&chunk, |id| self.compute_stored(id));
        if let Err(error) = db.write_derived_blocking(move |conn| stored::save(conn, &lists)) {
            self.waiting.lock().extend(chunk);
            return Err(error);
        }
        for id in &chunk {
            self.older.remove(id);
        }
        Ok(self.waiting.lock().len())
    }

    /// True while lists wait to be computed and stored.
    fn filling(&self) -> bool {
        self.waiting() > 0
    }

    /// True when every list computed is stored: none waits, none is
    /// unsaved.
    fn all_stored(&self) -> bool {
        !self.filling() && self.unsaved.lock().is_empty()
    }

    /// How many lists of older articles wait to be computed and stored.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Stores the lists computed since the last call, but those begun
    /// before the index last changed: a change may have made them stale.
    /// Those not stored wait to be computed and stored again.
    fn save_unsaved(&self, db: &Db) -> StoreResult<()> {
        let _busy = Busy::begin(&self.busy);
        let version = self.index_version.load(Ordering::SeqCst);
        let lists: Vec<StoredList> = std::mem::take(&mut *self.unsaved.lock())
            .into_iter()
            .filter(|(begun, _)| *begun == version)
            .map(|(_, list)| list)
            .collect();
        if lists.is_empty() {
            return Ok(());
        }
        let ids: Vec<i32> = lists.iter().map(|list| list.article_id).collect();
        let saved = db.write_derived_blocking(move |conn| stored::save(conn, &lists));
        if saved.is_err() {
            self.waiting.lock().extend(ids);
        }
        saved
    }

    /// True once the index is built and has followed every content write
    /// the refresher was told of, and every list computed is stored: then
    /// the refresher has nothing left to do until the next write.
    pub fn up_to_date(&self) -> bool {
        // `busy` last: a step counts itself before it takes its lists.
        self.whole.load(Ordering::SeqCst)
            && self.followed.load(Ordering::SeqCst) == self.asked.load(Ordering::SeqCst)
            && self.waiting() == 0
            && self.unsaved.lock().is_empty()
            && self.busy.load(Ordering::SeqCst) == 0
    }
}

/// Counts a step of the refresher while it runs.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn begin(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Asks the refresher to look at the store now.
#[derive(Clone)]
pub struct Refresh {
    nudges: SyncSender<()>,
    engine: Arc<Engine>,
}

impl Refresh {
    /// Nudges the refresher; never blocks (a pending nudge covers this one).
    pub fn nudge(&self) {
        self.engine.asked.fetch_add(1, Ordering::SeqCst);
        let _ = self.nudges.try_send(());
    }
}

/// Starts the thread that builds the index, then keeps it and the lists
/// current: on every nudge and every `REFRESH_EVERY` (five seconds). It
/// calls `lists_changed` whenever lists shown may have changed: what was
/// kept of answers that show them is stale.
pub fn spawn_refresher(
    engine: Arc<Engine>,
    db: Db,
    lists_changed: impl Fn() + Send + 'static,
) -> std::io::Result<Refresh> {
    let _ = engine.store.set(db.clone());
    let (sender, nudges) = sync_channel(1);
    let refreshed = Arc::clone(&engine);
    crate::background::spawn("frontpage-related", move || {
        refresh_loop(&refreshed, &db, &nudges, &lists_changed)
    })?;
    Ok(Refresh {
        nudges: sender,
        engine,
    })
}

fn refresh_loop(engine: &Engine, db: &Db, nudges: &Receiver<()>, lists_changed: &dyn Fn()) {
    let mut synced_at = db::now();
    // Whether the last build succeeded. Until one does, each pass builds
    // again: one that follows changes would take a half-made start (its
    // stored lists not reconciled, its newest lists not made) for current.
    let built = || engine.whole.load(Ordering::SeqCst);
    engine.trust_stored_until_built(db);
    rebuild(engine, db, synced_at);
    engine.built_once.store(true, Ordering::SeqCst);
    // Stored lists a change made stale before a server stopped, before its
    // sweep was through them, are found again.
    engine.sweep.lock().begin();
    lists_changed();
    // Whether the next pass must look at every article: a failed pass is
    // tried again in full.
    let mut look_at_all = false;
    let mut due_at = Instant::now() + REFRESH_EVERY;
    // The wait before building again should this build fail.
    let mut build_retry = REFRESH_EVERY;
    // When storing the waiting lists began, while they are stored.
    let mut filling_since = None;
    // Not before then after storing them failed: a full disk is not tried
    // again and again.
    let mut fill_from = Instant::now();
    // When the next chunk of stored lists is looked through (see
    // `Engine::sweep`).
    let mut sweep_at = Instant::now();
    loop {
        // Every content write nudges (another process's too, once the
        // writer notices it); without one, only scheduled articles can have
        // come due, and looking at every article would cost a million-article
        // store seconds of CPU each time. While lists wait to be stored, a
        // chunk of them is stored between looks.
        let due = due_at.saturating_duration_since(Instant::now());
        let mut wait = if engine.filling() {
            due.min(fill_from.saturating_duration_since(Instant::now()))
        } else {
            due
        };
        if engine.sweeping() {
            wait = wait.min(sweep_at.saturating_duration_since(Instant::now()));
        }
        match wait_for_nudge(nudges, wait) {
            Wake::Nudged => look_at_all = true,
            Wake::TimedOut => {}
            Wake::Stopped => return,
        }
        if !built() && Instant::now() >= due_at {
            synced_at = db::now();
            if rebuild(engine, db, synced_at) {
                lists_changed();
                build_retry = REFRESH_EVERY;
            } else {
                // A store that keeps failing (a full disk) is not made to
                // build every few seconds.
                build_retry = (build_retry * 2).min(MAX_BUILD_RETRY);
            }
            due_at = Instant::now() + build_retry;
            look_at_all = false;
        } else if built() && (look_at_all || Instant::now() >= due_at) {
            due_at = Instant::now() + REFRESH_EVERY;
            let _busy = Busy::begin(&engine.busy);
            // Read before the store is: a write told of later is looked at
            // again.
            let asked = engine.asked.load(Ordering::SeqCst);
            if let Some((now, recomputed)) = bring_up_to_date(engine, db, look_at_all, synced_at) {
                if recomputed > 0 {
                    lists_changed();
                }
                if look_at_all {
                    engine.followed.store(asked, Ordering::SeqCst);
                }
                synced_at = now;
                look_at_all = false;
            }
        }
        if let Err(error) = engine.save_unsaved(db) {
            tracing::warn!(%error, "storing related lists computed when asked for failed");
        }
        // Once this pass followed every write and its lists are stored:
        // not while they wait, as the store may be failing (a full disk)
        // and a build that cannot store its lists fails.
        if built() && !look_at_all && engine.all_stored() && engine.take_rebuild_due() {
            synced_at = db::now();
            if rebuild(engine, db, synced_at) {
                lists_changed();
                if let Err(error) = engine.warm_older(db) {
                    tracing::warn!(%error, "reading stored related lists into memory failed");
                }
            } else {
                due_at = Instant::now() + build_retry;
            }
        }
        if engine.filling() && Instant::now() >= fill_from {
            let since = *filling_since.get_or_insert_with(Instant::now);
            match engine.fill(db) {
                Ok(0) => {
                    // A few lists a sweep queued are stored in moments:
                    // only a longer fill (after a start) is worth a line.
                    let seconds = since.elapsed().as_secs_f32();
                    if seconds >= 1.0 {
                        tracing::info!(seconds, "related lists of older articles stored");
                    } else {
                        tracing::debug!(seconds, "related lists of older articles stored");
                    }
                    filling_since = None;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "storing related lists failed; retrying soon");
                    fill_from = Instant::now() + REFRESH_EVERY;
                }
            }
        }
        if engine.sweeping() && Instant::now() >= sweep_at {
            sweep_at = Instant::now() + SWEEP_PAUSE;
            if let Err(error) = engine.sweep(db) {
                tracing::warn!(%error, "looking through stored related lists failed; retrying soon");
                sweep_at = Instant::now() + REFRESH_EVERY;
            }
        }
    }
}

/// Builds the index from scratch and makes the newest lists; true if it
/// did. That follows every write told of before it began.
fn rebuild(engine: &Engine, db: &Db, now: NaiveDateTime) -> bool {
    let _busy = Busy::begin(&engine.busy);
    let asked = engine.asked.load(Ordering::SeqCst);
    match db.read_blocking(|conn| engine.rebuild(conn, now, &[])) {
        Ok(_) => {
            engine.followed.store(asked, Ordering::SeqCst);
            engine.whole.store(true, Ordering::SeqCst);
            true
        }
        Err(error) => {
            // The index may be the new one without its lists: not up to
            // date until a build succeeds.
            engine.whole.store(false, Ordering::SeqCst);
            tracing::error!(%error, "building the related index failed; retrying soon");
            false
        }
    }
}

/// Why the refresher woke.
enum Wake {
    /// A content write (and any that followed it closely).
    Nudged,
    /// Nothing came within the wait.
    TimedOut,
    /// Every sender is gone: the server is stopping.
    Stopped,
}

/// Waits up to `wait` for a nudge, then lets a run of them settle.
fn wait_for_nudge(nudges: &Receiver<()>, wait: Duration) -> Wake {
    match nudges.recv_timeout(wait) {
        Ok(()) => {
            // Writes often come in runs (a bulk import nudges every 500
            // articles): let a run finish, so it is indexed once.
            let started = Instant::now();
            while started.elapsed() < MAX_SETTLE {
                match nudges.recv_timeout(SETTLE) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return Wake::Stopped,
                }
            }
            Wake::Nudged
        }
        Err(RecvTimeoutError::Timeout) => Wake::TimedOut,
        Err(RecvTimeoutError::Disconnected) => Wake::Stopped,
    }
}

/// Brings the index and lists up to date: with every article looked at
/// when `look_at_all`, else with the scheduled ones that came due since
/// `synced_at`. Returns the time it is now up to date with and how many
/// lists it recomputed, or `None` when it failed (logged; tried again at
/// the next pass).
fn bring_up_to_date(
    engine: &Engine,
    db: &Db,
    look_at_all: bool,
    synced_at: NaiveDateTime,
) -> Option<(NaiveDateTime, usize)> {
    let now = db::now();
    let began = Instant::now();
    let synced = db.read_blocking(|conn| {
        // Before the articles: a write counted after is looked at again.
        let writes = stored::writes_to_articles(conn)?;
        // The record still holds: it names every write counted, and this
        // version's lists.
        let holds = stored::synced(conn)?.is_some_and(|synced| {
            synced.article_writes == Some(writes) && synced.lists_version == LISTS_VERSION
        });
        let recomputed = if look_at_all {
            engine.sync(conn, now)?
        } else {
            engine.index_due(conn, synced_at, now)?
        };
        // Every change before `now` has reached the stored lists: recorded
        // after a look at every article (which follows every write counted
        // before it) when the record does not name every write counted and
        // this version of the lists, or lists were computed; and after a
        // look at the scheduled articles alone that took in some come due,
        // if no write came since the last record, so that a start finds
        // nothing changed. A look that found nothing leaves the record as
        // it is: it still holds, and the commit would have every other
        // server on the store drop its caches and look in turn (two servers
        // on one store did so about once a second each).
        let record = if look_at_all {
            recomputed > 0 || !holds
        } else {
            recomputed > 0 && holds
        };
        Ok((recomputed, record.then_some(writes)))
    });
    let (recomputed, record) = match synced {
        Ok(synced) => synced,
        Err(error) => {
            tracing::warn!(%error, "refreshing related lists failed; retrying soon");
            return None;
        }
    };
    if recomputed > 0 {
        tracing::debug!(
            recomputed,
            seconds = began.elapsed().as_secs_f32(),
            "related index and lists brought up to date"
        );
    }
    if let Some(writes) = record
        && let Err(error) = engine.record_synced(db, now, writes)
    {
        tracing::warn!(%error, "recording the related lists' sync failed");
    }
    Some((now, recomputed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::related::tests::engine_of_older_articles;

    /// A look records in the store how far the lists have followed only
    /// when that moved: a look at every article when a write came since
    /// the record (one that found nothing new writes nothing, or another
    /// server on the store would take the commit for a write and look in
    /// turn), and a look at the scheduled articles when it took in one come
    /// due and no write came since the record.
    #[test]
    fn a_look_records_how_far_the_lists_followed_only_when_that_moved() {
        use diesel::prelude::*;

        use crate::content::Status;
        use crate::db::schema::articles;

        #[derive(QueryableByName)]
        struct DataVersion {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            data_version: i64,
        }

        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("sync.db");
        let db = Db::open(&path, 1).unwrap();
        crate::demo::seed_if_empty(&db).unwrap();
        // As another process on the store: its data version moves with
        // every commit but its own.
        let mut other = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let mut data_version = || {
            diesel::sql_query("PRAGMA data_version")
                .get_result::<DataVersion>(&mut other)
                .unwrap()
                .data_version
        };
        let engine = Engine::new(crate::related::BUILT_LISTS);
        let _ = engine.store.set(db.clone());
        let writes = || db.read_blocking(stored::writes_to_articles).unwrap();
        let record = || {
            let synced = db.read_blocking(stored::synced).unwrap();
            synced.map(|synced| (synced.at, synced.article_writes))
        };
        let drafts: Vec<i32> = db
            .read_blocking(|conn| {
                let drafts = articles::table.filter(articles::status.eq(Status::Draft.as_str()));
                Ok(drafts.select(articles::id).limit(2).load(conn)?)
            })
            .unwrap();
        assert_eq!(drafts.len(), 2, "the demo has drafts");
        // Publishes `id` two seconds from now (times are stored to the
        // second: at least one); returns when it is due.
        let schedule = |id: i32| {
            let due = db::now() + chrono::TimeDelta::seconds(2);
            db.write_derived_blocking(move |conn| {
                let published = (
                    articles::status.eq(Status::Published.as_str()),
                    articles::published_at.eq(due),
                );
                diesel::update(articles::table.find(id))
                    .set(published)
                    .execute(conn)?;
                Ok(())
            })
            .unwrap();
            due
        };
        let wait_until = |due| {
            while db::now() <= due {
                std::thread::sleep(Duration::from_millis(50));
            }
        };

        let (looked, recomputed) = bring_up_to_date(&engine, &db, true, db::now()).unwrap();
        assert!(recomputed > 0, "every list computed");
        assert_eq!(record(), Some((looked, Some(writes()))));
        let before = data_version();
        let (again, recomputed) = bring_up_to_date(&engine, &db, true, looked).unwrap();
        assert_eq!(recomputed, 0);
        assert_eq!(data_version(), before, "a look that found nothing wrote");

        // A write (an article scheduled), followed by a look at every one.
        let due = schedule(drafts[0]);
        let (looked, _) = bring_up_to_date(&engine, &db, true, again).unwrap();
        assert_eq!(record(), Some((looked, Some(writes()))), "a write since");
        wait_until(due);
        let (taken_in, recomputed) = bring_up_to_date(&engine, &db, false, looked).unwrap();
        assert!(recomputed > 0, "the article come due indexed");
        assert_eq!(record(), Some((taken_in, Some(writes()))));

        // Scheduled (a write), and come due before any look at every
        // article: the look at the scheduled ones takes it in, and does not
        // record that the lists followed a write they have not.
        let due = schedule(drafts[1]);
        wait_until(due);
        let (_, recomputed) = bring_up_to_date(&engine, &db, false, taken_in).unwrap();
        assert!(recomputed > 0);
        assert_eq!(record(), Some((taken_in, Some(writes() - 1))));
    }

    /// A list computed when asked for while it waited to be stored is
    /// dropped from memory once a fill stores the list computed then: the
    /// two may differ, and the server would show the first until a restart.
    #[test]
    fn a_fill_drops_the_kept_list_it_stored_anew() {
        let dir = tempfile::TempDir::new().unwrap();
        let db = Db::open(&dir.path().join("fill.db"), 1).unwrap();
        let engine = engine_of_older_articles();
        engine.compute_list(7).expect("indexed");
        let other = engine.compute_list(8).expect("indexed");
        engine.waiting.lock().push(7);
        assert!(engine.stored(7, 1).is_some(), "kept when computed");

        assert_eq!(engine.fill(&db).unwrap(), 0, "nothing left waiting");
        assert!(engine.stored(7, 1).is_none(), "dropped once stored anew");
        assert_eq!(engine.stored(8, 1), Some(other), "not filled: kept");
    }
}
