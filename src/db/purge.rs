//! Removing the views of deleted articles.
//!
//! Views are an append-only log with no index by article (appending is the
//! hot path), so deleting an article cannot find its views cheaply. Instead
//! the delete records a purge (see [`record`]) and a background thread walks
//! the log a chunk of ids at a time, each chunk a short write of its own, so
//! the writer never stalls on one long scan.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::schema::{view_purges, views};
use super::{Db, StoreResult};

/// View ids looked at per write.
const CHUNK: i32 = 50_000;
/// Pause between two chunks, so engagement writes keep most of the writer.
const PAUSE: Duration = Duration::from_millis(5);
/// How long to wait after a failed chunk before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// A deleted article whose views are still being removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = view_purges)]
pub struct Purge {
    /// The deleted article.
    pub article_id: i32,
    /// Its views all have ids up to this one.
    pub last_view_id: i32,
    /// Its views below this id are gone.
    pub next_view_id: i32,
}

impl Purge {
    /// True when the view with this id, of this article, is one being purged
    /// (an article created later under the same id only has later views).
    pub fn covers(&self, article_id: i32, view_id: i32) -> bool {
        article_id == self.article_id && view_id <= self.last_view_id
    }
}

/// Records that the article `article_id`, deleted in this transaction, has
/// views to remove.
pub fn record(conn: &mut SqliteConnection, article_id: i32) -> StoreResult<()> {
    let last: Option<i32> = views::table
        .select(diesel::dsl::max(views::id))
        .get_result(conn)?;
    let Some(last) = last else {
        return Ok(());
    };
    diesel::insert_into(view_purges::table)
        .values((
            view_purges::article_id.eq(article_id),
            view_purges::last_view_id.eq(last),
            view_purges::next_view_id.eq(0),
        ))
        .on_conflict(view_purges::article_id)
        .do_update()
        .set(view_purges::last_view_id.eq(last))
        .execute(conn)?;
    Ok(())
}

/// The purges not yet finished.
pub fn pending(conn: &mut SqliteConnection) -> StoreResult<Vec<Purge>> {
    Ok(view_purges::table
        .select(Purge::as_select())
        .order(view_purges::article_id)
        .load(conn)?)
}

/// Removes the next chunk of one purge's views; returns true when the purge
/// is finished (and forgotten).
pub fn step(conn: &mut SqliteConnection, article_id: i32, chunk: i32) -> StoreResult<bool> {
    let Some(purge) = view_purges::table
        .find(article_id)
        .select(Purge::as_select())
        .get_result(conn)
        .optional()?
    else {
        return Ok(true);
    };
    let end = purge
        .next_view_id
        .saturating_add(chunk)
        .min(purge.last_view_id.saturating_add(1));
    diesel::delete(
        views::table
            .filter(views::id.ge(purge.next_view_id))
            .filter(views::id.lt(end))
            .filter(views::article_id.eq(article_id)),
    )
    .execute(conn)?;
    if end > purge.last_view_id {
        diesel::delete(view_purges::table.find(article_id)).execute(conn)?;
        return Ok(true);
    }
    diesel::update(view_purges::table.find(article_id))
        .set(view_purges::next_view_id.eq(end))
        .execute(conn)?;
    Ok(false)
}

/// Wakes the purging thread.
#[derive(Clone)]
pub struct Purger(SyncSender<()>);

impl Purger {
    /// Asks the thread to look for new purges; never blocks.
    pub fn nudge(&self) {
        let _ = self.0.try_send(());
    }
}

/// Starts the thread that finishes every recorded purge: those left from
/// before a restart at once, new ones when nudged.
pub fn spawn(db: Db) -> std::io::Result<Purger> {
    let (nudge, nudges) = sync_channel(1);
    crate::background::spawn("frontpage-purge", move || run(&db, &nudges))?;
    Ok(Purger(nudge))
}

fn run(db: &Db, nudges: &Receiver<()>) {
    loop {
        match db.read_blocking(pending) {
            Ok(purges) => {
                for purge in purges {
                    finish(db, purge.article_id);
                }
            }
            Err(error) => tracing::warn!(%error, "reading pending view purges failed"),
        }
        match nudges.recv_timeout(RETRY_AFTER) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Runs one purge to its end, unless a chunk fails (the next round retries).
fn finish(db: &Db, article_id: i32) {
    loop {
        match db.write_blocking(move |conn| step(conn, article_id, CHUNK)) {
            Ok(true) => {
                tracing::info!(article_id, "views of a deleted article removed");
                return;
            }
            Ok(false) => thread::sleep(PAUSE),
            Err(error) => {
                tracing::warn!(%error, article_id, "removing a deleted article's views failed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    fn store() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute(
            "CREATE TABLE views (id INTEGER PRIMARY KEY NOT NULL, article_id INTEGER NOT NULL,
                 reader_id INTEGER, viewed_at TIMESTAMP NOT NULL);
             CREATE TABLE view_purges (article_id INTEGER PRIMARY KEY NOT NULL,
                 last_view_id INTEGER NOT NULL, next_view_id INTEGER NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn add_views(conn: &mut SqliteConnection, article_id: i32, n: usize) {
        for _ in 0..n {
            diesel::insert_into(views::table)
                .values((
                    views::article_id.eq(article_id),
                    views::viewed_at.eq(chrono::NaiveDateTime::default()),
                ))
                .execute(conn)
                .unwrap();
        }
    }

    fn views_of(conn: &mut SqliteConnection, article_id: i32) -> i64 {
        views::table
            .filter(views::article_id.eq(article_id))
            .count()
            .get_result(conn)
            .unwrap()
    }

    #[test]
    fn a_purge_removes_only_the_deleted_articles_earlier_views_chunk_by_chunk() {
        let mut conn = store();
        add_views(&mut conn, 1, 25);
        add_views(&mut conn, 2, 10);
        add_views(&mut conn, 1, 5);
        record(&mut conn, 1).unwrap();
        // Article 1 comes back under the same id and is viewed again.
        add_views(&mut conn, 1, 3);

        let mut steps = 0;
        while !step(&mut conn, 1, 7).unwrap() {
            steps += 1;
        }
        assert_eq!(steps, 40 / 7, "one step per chunk of 7 ids up to view 40");
        assert_eq!(views_of(&mut conn, 1), 3, "the new article's views stay");
        assert_eq!(views_of(&mut conn, 2), 10);
        assert!(pending(&mut conn).unwrap().is_empty());
    }

    #[test]
    fn no_purge_is_recorded_while_there_are_no_views_at_all() {
        let mut conn = store();
        record(&mut conn, 1).unwrap();
        assert!(pending(&mut conn).unwrap().is_empty());
    }
}
