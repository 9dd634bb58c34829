//! Engagement: views and reactions, kept per reader, with running totals per
//! article and hourly and daily buckets, all updated in the same transaction
//! as the event they count.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;

use super::StoreResult;
use super::schema::{
    article_counts, articles, engagement_days, engagement_hours, reaction_kinds, reactions,
    readers, views,
};
use crate::content::Status;
use crate::ranking::{Span, Totals};

/// The `article_counts` counter of views; reactions count under their kind.
pub const VIEW_COUNTER: &str = "view";

/// A reaction kind.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reaction_kinds)]
pub struct KindRow {
    pub key: String,
    pub label: String,
    pub position: i32,
}

/// Every reaction kind, in display order.
pub fn kinds(conn: &mut SqliteConnection) -> StoreResult<Vec<KindRow>> {
    Ok(reaction_kinds::table
        .order(reaction_kinds::position)
        .select(KindRow::as_select())
        .load(conn)?)
}

/// The hour and the day (since the Unix epoch) that `at` falls in.
pub fn periods(at: NaiveDateTime) -> (i32, i32) {
    let seconds = at.and_utc().timestamp();
    (
        seconds.div_euclid(3600) as i32,
        seconds.div_euclid(86_400) as i32,
    )
}

/// The id of the reader with this key, registering it on first sight.
pub fn reader_id(conn: &mut SqliteConnection, key: &str) -> StoreResult<i32> {
    // Most events come from readers seen before: look up first, write only when new.
    if let Some(id) = find_reader(conn, key)? {
        return Ok(id);
    }
    Ok(diesel::insert_into(readers::table)
        .values(readers::key.eq(key))
        .returning(readers::id)
        .get_result(conn)?)
}

/// The id of a known reader.
pub fn find_reader(conn: &mut SqliteConnection, key: &str) -> StoreResult<Option<i32>> {
    Ok(readers::table
        .filter(readers::key.eq(key))
        .select(readers::id)
        .first(conn)
        .optional()?)
}

/// Adds to an article's buckets for the hour and day of `at`.
fn bump_buckets(
    conn: &mut SqliteConnection,
    article_id: i32,
    at: NaiveDateTime,
    views: i32,
    reactions: i32,
) -> StoreResult<()> {
    let (hour, day) = periods(at);
    diesel::insert_into(engagement_hours::table)
        .values((
            engagement_hours::period.eq(hour),
            engagement_hours::article_id.eq(article_id),
            engagement_hours::views.eq(views),
            engagement_hours::reactions.eq(reactions),
        ))
        .on_conflict((engagement_hours::period, engagement_hours::article_id))
        .do_update()
        .set((
            engagement_hours::views.eq(engagement_hours::views + excluded(engagement_hours::views)),
            engagement_hours::reactions
                .eq(engagement_hours::reactions + excluded(engagement_hours::reactions)),
        ))
        .execute(conn)?;
    diesel::insert_into(engagement_days::table)
        .values((
            engagement_days::period.eq(day),
            engagement_days::article_id.eq(article_id),
            engagement_days::views.eq(views),
            engagement_days::reactions.eq(reactions),
        ))
        .on_conflict((engagement_days::period, engagement_days::article_id))
        .do_update()
        .set((
            engagement_days::views.eq(engagement_days::views + excluded(engagement_days::views)),
            engagement_days::reactions
                .eq(engagement_days::reactions + excluded(engagement_days::reactions)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds `delta` to an article's counter; returns the new total.
fn bump_count(
    conn: &mut SqliteConnection,
    article_id: i32,
    counter: &str,
    delta: i64,
) -> StoreResult<i64> {
    Ok(diesel::insert_into(article_counts::table)
        .values((
            article_counts::article_id.eq(article_id),
            article_counts::counter.eq(counter),
            article_counts::count.eq(delta),
        ))
        .on_conflict((article_counts::article_id, article_counts::counter))
        .do_update()
        .set(article_counts::count.eq(article_counts::count + excluded(article_counts::count)))
        .returning(article_counts::count)
        .get_result(conn)?)
}

/// An article's current total for a counter.
fn count(conn: &mut SqliteConnection, article_id: i32, counter: &str) -> StoreResult<i64> {
    Ok(article_counts::table
        .find((article_id, counter))
        .select(article_counts::count)
        .first(conn)
        .optional()?
        .unwrap_or(0))
}

/// Records one view; returns the article's new view total.
pub fn record_view(
    conn: &mut SqliteConnection,
    article_id: i32,
    reader: Option<&str>,
    at: NaiveDateTime,
) -> StoreResult<i64> {
    let reader_id = reader.map(|key| reader_id(conn, key)).transpose()?;
    diesel::insert_into(views::table)
        .values((
            views::article_id.eq(article_id),
            views::reader_id.eq(reader_id),
            views::viewed_at.eq(at),
        ))
        .execute(conn)?;
    bump_buckets(conn, article_id, at, 1, 0)?;
    bump_count(conn, article_id, VIEW_COUNTER, 1)
}

/// What a reaction write did, and the kind's count afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionOutcome {
    /// False when the reader had already reacted (or not) that way.
    pub changed: bool,
    /// The article's count for this kind.
    pub count: i64,
}

/// True when `kind` is a configured reaction kind.
pub fn kind_exists(conn: &mut SqliteConnection, kind: &str) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(reaction_kinds::table.find(kind))).get_result(conn)?)
}

/// Records that `reader` reacts `kind` to the article; doing it twice counts once.
pub fn add_reaction(
    conn: &mut SqliteConnection,
    article_id: i32,
    kind: &str,
    reader: &str,
    at: NaiveDateTime,
) -> StoreResult<ReactionOutcome> {
    let reader_id = reader_id(conn, reader)?;
    let inserted = diesel::insert_into(reactions::table)
        .values((
            reactions::article_id.eq(article_id),
            reactions::kind.eq(kind),
            reactions::reader_id.eq(reader_id),
            reactions::reacted_at.eq(at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 0 {
        return Ok(ReactionOutcome {
            changed: false,
            count: count(conn, article_id, kind)?,
        });
    }
    bump_buckets(conn, article_id, at, 0, 1)?;
    Ok(ReactionOutcome {
        changed: true,
        count: bump_count(conn, article_id, kind, 1)?,
    })
}

/// Takes back a reaction; taking back one that is not there changes nothing.
/// The buckets of the hour it was made in lose it, so windows stay exact.
pub fn remove_reaction(
    conn: &mut SqliteConnection,
    article_id: i32,
    kind: &str,
    reader: &str,
) -> StoreResult<ReactionOutcome> {
    let Some(reader_id) = find_reader(conn, reader)? else {
        return Ok(ReactionOutcome {
            changed: false,
            count: count(conn, article_id, kind)?,
        });
    };
    let removed: Option<NaiveDateTime> =
        diesel::delete(reactions::table.find((article_id, kind, reader_id)))
            .returning(reactions::reacted_at)
            .get_result(conn)
            .optional()?;
    match removed {
        None => Ok(ReactionOutcome {
            changed: false,
            count: count(conn, article_id, kind)?,
        }),
        Some(at) => {
            bump_buckets(conn, article_id, at, 0, -1)?;
            Ok(ReactionOutcome {
                changed: true,
                count: bump_count(conn, article_id, kind, -1)?,
            })
        }
    }
}

/// The counters of these articles: `{article: {counter: count}}`.
pub fn counts(
    conn: &mut SqliteConnection,
    article_ids: &[i32],
) -> StoreResult<HashMap<i32, HashMap<String, i64>>> {
    let rows: Vec<(i32, String, i64)> = article_counts::table
        .filter(article_counts::article_id.eq_any(article_ids))
        .select((
            article_counts::article_id,
            article_counts::counter,
            article_counts::count,
        ))
        .load(conn)?;
    let mut counts: HashMap<i32, HashMap<String, i64>> = HashMap::new();
    for (article_id, counter, count) in rows {
        counts.entry(article_id).or_default().insert(counter, count);
    }
    Ok(counts)
}

/// Rows of visible articles fetched per query when filtering candidates.
const CANDIDATES_PER_QUERY: usize = 500;

/// Engagement per visible article over a window's buckets, optionally only in
/// some categories. Reads buckets, never raw events: one range scan of the
/// bucket table's primary key, summed here (cheaper than a join and a GROUP
/// BY in SQLite), then the visibility and category of the articles found.
pub fn window_totals(
    conn: &mut SqliteConnection,
    span: Span,
    category_ids: Option<&[i32]>,
    now: NaiveDateTime,
) -> StoreResult<Vec<Totals>> {
    let rows: Vec<(i32, i32, i32)> = match span {
        Span::Hours(from) => engagement_hours::table
            .filter(engagement_hours::period.ge(from))
            .select((
                engagement_hours::article_id,
                engagement_hours::views,
                engagement_hours::reactions,
            ))
            .load(conn)?,
        Span::Days(from) => engagement_days::table
            .filter(engagement_days::period.ge(from))
            .select((
                engagement_days::article_id,
                engagement_days::views,
                engagement_days::reactions,
            ))
            .load(conn)?,
        Span::Everything => engagement_days::table
            .select((
                engagement_days::article_id,
                engagement_days::views,
                engagement_days::reactions,
            ))
            .load(conn)?,
    };
    let mut sums: HashMap<i32, (i64, i64)> = HashMap::new();
    for (article_id, views, reactions) in rows {
        let sum = sums.entry(article_id).or_default();
        sum.0 += i64::from(views);
        sum.1 += i64::from(reactions);
    }
    let candidates: Vec<i32> = sums.keys().copied().collect();
    let mut totals = Vec::with_capacity(candidates.len());
    for chunk in candidates.chunks(CANDIDATES_PER_QUERY) {
        let visible: Vec<(i32, Option<NaiveDateTime>, i32)> = articles::table
            .filter(articles::id.eq_any(chunk))
            .filter(articles::status.eq(Status::Published.as_str()))
            .filter(articles::published_at.le(now))
            .select((articles::id, articles::published_at, articles::category_id))
            .load(conn)?;
        for (article_id, published_at, category_id) in visible {
            let in_category = category_ids.is_none_or(|ids| ids.contains(&category_id));
            if let (true, Some(published_at), Some(&(views, reactions))) =
                (in_category, published_at, sums.get(&article_id))
            {
                totals.push(Totals {
                    article_id,
                    published_at,
                    views,
                    reactions,
                });
            }
        }
    }
    Ok(totals)
}
