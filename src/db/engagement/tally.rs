//! What a group commit adds to engagement: its views, appended together
//! when the batch ends and counted into the totals and buckets a few times
//! a second ([`Uncounted`]), and its reactions' additions to the counters
//! and buckets, written with one statement per table ([`Tally`]).

mod queued;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use self::queued::QueuedView;
pub use self::queued::{View, ViewOutcome, ViewSlot, record_view};
use super::{VIEW_COUNTER, periods};
use crate::db::StoreResult;
use crate::db::changes::{Changed, Changes};
use crate::db::in_ids::InIdsExt;
use crate::db::json_rows::JsonRows;
use crate::db::schema::{article_counts, articles, view_tally, views};
use crate::db::writer::Batch;

/// Adds `[period, article_id, reactions]` rows to the hourly buckets.
const ADD_TO_HOURS: &str = "INSERT INTO engagement_hours (period, article_id, reactions) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true \
     ON CONFLICT (period, article_id) DO UPDATE SET reactions = reactions + excluded.reactions";
/// The same for the daily buckets.
const ADD_TO_DAYS: &str = "INSERT INTO engagement_days (period, article_id, reactions) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true \
     ON CONFLICT (period, article_id) DO UPDATE SET reactions = reactions + excluded.reactions";
/// Adds `[article_id, counter, delta]` rows to the totals.
const ADD_TO_COUNTS: &str = "INSERT INTO article_counts (article_id, counter, count) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?) WHERE true \
     ON CONFLICT (article_id, counter) DO UPDATE SET count = count + excluded.count";

/// Views in the id range `(?, ?]` that still count: their article exists and
/// is not a later article that took over the id of a deleted one (whose
/// views are being purged, see `view_purges`).
const COUNTED_VIEWS: &str = "FROM views v \
     WHERE v.id > ? AND v.id <= ? \
     AND EXISTS (SELECT 1 FROM articles a WHERE a.id = v.article_id) \
     AND NOT EXISTS (SELECT 1 FROM view_purges p \
                     WHERE p.article_id = v.article_id AND v.id <= p.last_view_id)";

/// Adds `{(period, article_id): reactions}` to a bucket table with one
/// `statement` ([`ADD_TO_HOURS`] or [`ADD_TO_DAYS`]), for the articles in
/// `existing`.
fn add_to_buckets(
    conn: &mut SqliteConnection,
    statement: &'static str,
    sums: &HashMap<(i32, i32), i32>,
    existing: &HashSet<i32>,
) -> StoreResult<()> {
    let rows: Vec<_> = sums
        .iter()
        .filter(|((_, id), sum)| **sum != 0 && existing.contains(id))
        .map(|((period, id), sum)| (period, id, sum))
        .collect();
    if !rows.is_empty() {
        JsonRows::new(statement, &rows).run(conn)?;
    }
    Ok(())
}

/// Adds the views stored after `view_tally.counted_through` to the view
/// totals and the hourly and daily buckets, and moves the mark past them;
/// returns the new mark. The writer calls it (see [`Uncounted::with_lag`]),
/// and so does the store when it opens, which counts the views of a process
/// that died before it could.
pub fn count_views(conn: &mut SqliteConnection) -> StoreResult<i32> {
    use diesel::sql_types::{Integer, Text};
    let after: i32 = view_tally::table
        .select(view_tally::counted_through)
        .get_result(conn)?;
    let last: Option<i32> = views::table
        .select(diesel::dsl::max(views::id))
        .get_result(conn)?;
    let Some(through) = last.filter(|last| *last > after) else {
        return Ok(after);
    };
    diesel::sql_query(format!(
        "INSERT INTO article_counts (article_id, counter, count) \
         SELECT v.article_id, ?, COUNT(*) {COUNTED_VIEWS} GROUP BY v.article_id \
         ON CONFLICT (article_id, counter) DO UPDATE SET count = count + excluded.count"
    ))
    .bind::<Text, _>(VIEW_COUNTER)
    .bind::<Integer, _>(after)
    .bind::<Integer, _>(through)
    .execute(conn)?;
    for (table, seconds) in [("engagement_hours", 3_600), ("engagement_days", 86_400)] {
        diesel::sql_query(format!(
            "INSERT INTO {table} (period, article_id, views) \
             SELECT unixepoch(v.viewed_at) / {seconds}, v.article_id, COUNT(*) {COUNTED_VIEWS} \
             GROUP BY 1, 2 \
             ON CONFLICT (period, article_id) DO UPDATE SET views = views + excluded.views"
        ))
        .bind::<Integer, _>(after)
        .bind::<Integer, _>(through)
        .execute(conn)?;
    }
    diesel::update(view_tally::table)
        .set(view_tally::counted_through.eq(through))
        .execute(conn)?;
    Ok(through)
}

/// Marks every stored view as counted, for a writer that wrote their totals
/// and buckets itself (the demo's bulk fill, after [`count_views`]).
pub fn mark_views_counted(conn: &mut SqliteConnection) -> StoreResult<()> {
    let last: Option<i32> = views::table
        .select(diesel::dsl::max(views::id))
        .get_result(conn)?;
    if let Some(last) = last {
        diesel::update(view_tally::table)
            .set(view_tally::counted_through.eq(last))
            .execute(conn)?;
    }
    Ok(())
}

/// A counter as one batch sees it.
#[derive(Debug, Clone, Copy)]
struct Counter {
    /// The total when the batch first touched it.
    stored: i64,
    /// What the batch has added since.
    added: i64,
}

/// Views stored but not yet in the totals and buckets, which a batch hands
/// to the next (see [`count_views`]).
#[derive(Debug, Default)]
pub struct Uncounted {
    /// How long the totals may trail the views; zero counts them with every
    /// commit.
    lag: Duration,
    /// The mark (`view_tally.counted_through`) `views` was counted from;
    /// `None` when unknown, as after a failed batch.
    from: Option<i32>,
    /// Views per article after the mark.
    views: HashMap<i32, i64>,
    /// When the totals were last brought up to date.
    counted_at: Option<Instant>,
    /// Where the writer tells the caches what its commits changed.
    changes: Arc<Changes>,
    /// What the last batch changed, told once it has committed.
    changed: Changed,
}

impl Uncounted {
    /// Brings `views` in step with the store, reading them again when the
    /// mark moved or is unknown.
    fn sync(&mut self, conn: &mut SqliteConnection) -> StoreResult<()> {
        let mark: i32 = view_tally::table
            .select(view_tally::counted_through)
            .get_result(conn)?;
        if self.from != Some(mark) {
            self.views = views::table
                .filter(views::id.gt(mark))
                .group_by(views::article_id)
                .select((views::article_id, diesel::dsl::count_star()))
                .load::<(i32, i64)>(conn)?
                .into_iter()
                .collect();
            self.from = Some(mark);
        }
        Ok(())
    }

    /// Nothing uncounted yet; the totals may trail the views by up to
    /// `lag` (at most `lag` after the last count, the writer counts the
    /// views appended since, with its next batch or with a batch of its own).
    pub fn with_lag(lag: Duration) -> Self {
        Self {
            lag,
            ..Self::default()
        }
    }

    /// The same, telling `changes` what each commit changed.
    pub fn telling(self, changes: Arc<Changes>) -> Self {
        Self { changes, ..self }
    }

    /// The same, knowing that every view up to `mark` is counted (as the
    /// store just made sure when it opened), so nothing is due yet.
    pub fn counted_through(self, mark: i32) -> Self {
        Self {
            from: Some(mark),
            counted_at: Some(Instant::now()),
            ..self
        }
    }

    /// How long the totals may wait before they are brought up to date;
    /// `None` when they are up to date.
    fn due_in(&self) -> Option<Duration> {
        let behind = self.from.is_none() || !self.views.is_empty();
        behind.then(|| {
            self.counted_at
                .map_or(Duration::ZERO, |at| self.lag.saturating_sub(at.elapsed()))
        })
    }

    /// True when the totals should be brought up to date now.
    fn due(&self) -> bool {
        self.due_in() == Some(Duration::ZERO)
    }
}

/// The engagement a batch of writes adds. Events are written as they come.
/// What reactions add to totals and buckets is gathered here and written
/// with one statement per table just before the batch commits (see
/// [`Batch`]), in the same transaction, so a thousand reactions of one
/// batch cost three upserts, not three thousand.
///
/// Views, the bulk of all writes, go further: a batch only appends them,
/// and their totals and buckets are counted from the stored views by
/// [`count_views`] (see [`Uncounted::with_lag`]), so that a busy writer
/// rewrites those pages a few times a second rather than once per commit.
/// A crash cannot lose them: the store counts what is left when it opens.
#[derive(Debug, Default)]
pub struct Tally {
    views: Vec<QueuedView>,
    /// View totals, uncounted views included, with this batch's additions.
    view_totals: HashMap<i32, Counter>,
    uncounted: Uncounted,
    counters: HashMap<(i32, String), Counter>,
    hours: HashMap<(i32, i32), i32>,
    days: HashMap<(i32, i32), i32>,
    /// A job wrote without the tally (an edit, a deletion): any counter
    /// may have changed.
    untallied: bool,
}

impl Tally {
    /// Notes that a job of this batch writes without the tally, so the
    /// caches forget every counter once the batch commits.
    pub fn untallied(&mut self) {
        self.untallied = true;
    }

    /// Has the batch count every view before it commits, rather than up to
    /// the lag later: for a bulk of views that readers should see counted
    /// from the first request (the demo's, before the server answers).
    pub fn count_views_now(&mut self) {
        self.uncounted.counted_at = None;
    }

    /// An article's reaction counter, this batch's additions included. The
    /// first call for a counter reads its stored total.
    pub fn count(
        &mut self,
        conn: &mut SqliteConnection,
        article_id: i32,
        counter: &str,
    ) -> StoreResult<i64> {
        let key = (article_id, counter.to_string());
        if let Some(seen) = self.counters.get(&key) {
            return Ok(seen.stored + seen.added);
        }
        let stored = article_counts::table
            .find((article_id, counter))
            .select(article_counts::count)
            .get_result(conn)
            .optional()?
            .unwrap_or(0);
        self.counters.insert(key, Counter { stored, added: 0 });
        Ok(stored)
    }

    /// Adds a reaction made `at` (or taken back, `delta` -1) to its counter
    /// and to the buckets of its hour and day; returns the counter's new
    /// total. Cannot fail, so a job calls it last, once its events are
    /// written.
    pub(super) fn add_reaction(
        &mut self,
        article_id: i32,
        kind: &str,
        delta: i64,
        at: NaiveDateTime,
    ) -> i64 {
        let (hour, day) = periods(at);
        for (buckets, period) in [(&mut self.hours, hour), (&mut self.days, day)] {
            *buckets.entry((period, article_id)).or_default() += delta as i32;
        }
        let seen = self
            .counters
            .entry((article_id, kind.to_string()))
            .or_insert(Counter {
                stored: 0,
                added: 0,
            });
        seen.added += delta;
        seen.stored + seen.added
    }
}

impl Batch for Tally {
    type Carry = Uncounted;

    fn resume(uncounted: Uncounted) -> Self {
        Self {
            uncounted,
            ..Self::default()
        }
    }

    /// After a failed batch the uncounted views are unknown: the next
    /// batch reads them again, and counts them at once.
    fn forget(uncounted: &Uncounted) -> Uncounted {
        Uncounted::with_lag(uncounted.lag).telling(Arc::clone(&uncounted.changes))
    }

    fn committed(uncounted: &mut Uncounted) {
        uncounted.changed.tell(&uncounted.changes.counters);
    }

    fn others_wrote(uncounted: &Uncounted) {
        uncounted.changes.saw_others_write();
    }

    fn due_in(uncounted: &Uncounted) -> Option<Duration> {
        uncounted.due_in()
    }

    /// Writes the queued views, then adds the batch's reactions to the
    /// stored rows, skipping articles deleted in the same batch (their rows
    /// went with them), and counts the views when they are due.
    fn finish(mut self, conn: &mut SqliteConnection) -> StoreResult<Uncounted> {
        self.write_views(conn)?;
        let mut touched: Vec<i32> = self.counters.keys().map(|(id, _)| *id).collect();
        touched.extend(self.hours.keys().map(|(_, id)| *id));
        touched.sort_unstable();
        touched.dedup();
        if !touched.is_empty() {
            let existing: HashSet<i32> = articles::table
                .filter(articles::id.in_ids(&touched))
                .select(articles::id)
                .load::<i32>(conn)?
                .into_iter()
                .collect();
            let counts: Vec<_> = self
                .counters
                .iter()
                .filter(|((id, _), seen)| seen.added != 0 && existing.contains(id))
                .map(|((id, counter), seen)| (id, counter, seen.added))
                .collect();
            if !counts.is_empty() {
                JsonRows::new(ADD_TO_COUNTS, &counts).run(conn)?;
            }
            let changed = &mut self.uncounted.changed;
            changed.ids.extend(counts.iter().map(|(id, _, _)| **id));
            add_to_buckets(conn, ADD_TO_HOURS, &self.hours, &existing)?;
            add_to_buckets(conn, ADD_TO_DAYS, &self.days, &existing)?;
        }
        let mut uncounted = self.uncounted;
        uncounted.changed.all |= self.untallied;
        for (id, seen) in self.view_totals {
            *uncounted.views.entry(id).or_default() += seen.added;
        }
        if uncounted.due() {
            let changed = &mut uncounted.changed;
            match uncounted.from {
                Some(_) => changed.ids.extend(uncounted.views.keys()),
                None => changed.all = true,
            }
            uncounted = Uncounted {
                from: Some(count_views(conn)?),
                views: HashMap::new(),
                counted_at: Some(Instant::now()),
                ..uncounted
            };
        }
        Ok(uncounted)
    }
}
