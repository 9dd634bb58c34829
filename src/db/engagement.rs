//! Engagement: views and reactions, kept per reader, with running totals per
//! article and hourly and daily buckets. Each group commit gathers what its
//! events add in a [`Tally`] and writes it in the same transaction; view
//! totals may trail the views by a configured lag (see [`Uncounted`]).

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use rustc_hash::FxHashMap;

use super::StoreResult;
use super::articles::public_at;
use super::in_ids::InIdsExt;
use super::schema::{
    article_counts, articles, engagement_days, engagement_hours, reaction_kinds, reactions, readers,
};
use crate::ranking::{Span, Totals};

mod tally;

pub use self::tally::{
    Tally, Uncounted, View, ViewOutcome, ViewSlot, count_views, mark_views_counted, record_view,
};

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
        .get_result(conn)
        .optional()?)
}

/// The kinds of reaction `reader` gave article `article_id`, in display
/// order; none from a reader never seen.
pub fn given_by(
    conn: &mut SqliteConnection,
    article_id: i32,
    reader: &str,
) -> StoreResult<Vec<String>> {
    let Some(reader_id) = find_reader(conn, reader)? else {
        return Ok(Vec::new());
    };
    Ok(reactions::table
        .inner_join(reaction_kinds::table.on(reaction_kinds::key.eq(reactions::kind)))
        .filter(reactions::article_id.eq(article_id))
        .filter(reactions::reader_id.eq(reader_id))
        .order((reaction_kinds::position, reaction_kinds::key))
        .select(reactions::kind)
        .load(conn)?)
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
    tally: &mut Tally,
    article_id: i32,
    kind: &str,
    reader: &str,
    at: NaiveDateTime,
) -> StoreResult<ReactionOutcome> {
    let reader_id = reader_id(conn, reader)?;
    let count = tally.count(conn, article_id, kind)?;
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
            count,
        });
    }
    Ok(ReactionOutcome {
        changed: true,
        count: tally.add_reaction(article_id, kind, 1, at),
    })
}

/// Takes back a reaction; taking back one that is not there changes nothing.
/// The buckets of the hour it was made in lose it, so windows stay exact.
pub fn remove_reaction(
    conn: &mut SqliteConnection,
    tally: &mut Tally,
    article_id: i32,
    kind: &str,
    reader: &str,
) -> StoreResult<ReactionOutcome> {
    let count = tally.count(conn, article_id, kind)?;
    let unchanged = ReactionOutcome {
        changed: false,
        count,
    };
    let Some(reader_id) = find_reader(conn, reader)? else {
        return Ok(unchanged);
    };
    let removed: Option<NaiveDateTime> =
        diesel::delete(reactions::table.find((article_id, kind, reader_id)))
            .returning(reactions::reacted_at)
            .get_result(conn)
            .optional()?;
    let Some(at) = removed else {
        return Ok(unchanged);
    };
    Ok(ReactionOutcome {
        changed: true,
        count: tally.add_reaction(article_id, kind, -1, at),
    })
}

/// The counters of these articles: `{article: {counter: count}}`.
pub fn counts(
    conn: &mut SqliteConnection,
    article_ids: &[i32],
) -> StoreResult<HashMap<i32, HashMap<String, i64>>> {
    let rows: Vec<(i32, String, i64)> = article_counts::table
        .filter(article_counts::article_id.in_ids(article_ids))
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

/// One article's engagement counters ([`counts`] for a single article, as a
/// statement SQLite prepares once).
pub fn counts_of(
    conn: &mut SqliteConnection,
    article_id: i32,
) -> StoreResult<HashMap<String, i64>> {
    Ok(article_counts::table
        .filter(article_counts::article_id.eq(article_id))
        .select((article_counts::counter, article_counts::count))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect())
}

/// Rows of visible articles fetched per query when filtering candidates.
const CANDIDATES_PER_QUERY: usize = 500;

/// Engagement per visible article over a window's buckets, optionally only in
/// some categories, handed to `each` article by article. Reads buckets,
/// never raw events: one range scan of the bucket table's primary key,
/// summed here (cheaper than a join and a GROUP BY in SQLite), then the
/// visibility and category of the articles found. A week at a million
/// articles is hundreds of thousands of totals: the caller keeps what it
/// needs of them (see [`crate::ranking::Top`]), not all.
pub fn each_window_total(
    conn: &mut SqliteConnection,
    span: Span,
    category_ids: Option<&[i32]>,
    now: NaiveDateTime,
    mut each: impl FnMut(Totals),
) -> StoreResult<()> {
    // Summed as the rows are stepped through, never all held: a week at a
    // million articles is 1.7 million rows.
    let mut sums: FxHashMap<i32, (i64, i64)> = FxHashMap::default();
    let mut add = |rows: &mut dyn Iterator<Item = QueryResult<(i32, i32, i32)>>| {
        for row in rows {
            let (article_id, views, reactions) = row?;
            let sum = sums.entry(article_id).or_default();
            sum.0 += i64::from(views);
            sum.1 += i64::from(reactions);
        }
        QueryResult::Ok(())
    };
    match span {
        Span::Hours(from) => add(&mut engagement_hours::table
            .filter(engagement_hours::period.ge(from))
            .select((
                engagement_hours::article_id,
                engagement_hours::views,
                engagement_hours::reactions,
            ))
            .load_iter::<(i32, i32, i32), DefaultLoadingMode>(conn)?)?,
        Span::Days(from) => add(&mut engagement_days::table
            .filter(engagement_days::period.ge(from))
            .select((
                engagement_days::article_id,
                engagement_days::views,
                engagement_days::reactions,
            ))
            .load_iter::<(i32, i32, i32), DefaultLoadingMode>(conn)?)?,
        Span::Everything => add(&mut engagement_days::table
            .select((
                engagement_days::article_id,
                engagement_days::views,
                engagement_days::reactions,
            ))
            .load_iter::<(i32, i32, i32), DefaultLoadingMode>(conn)?)?,
    }
    let candidates: Vec<i32> = sums.keys().copied().collect();
    for chunk in candidates.chunks(CANDIDATES_PER_QUERY) {
        let visible: Vec<(i32, Option<NaiveDateTime>, i32)> = articles::table
            .filter(articles::id.in_ids(chunk))
            .filter(public_at(now))
            .select((articles::id, articles::published_at, articles::category_id))
            .load(conn)?;
        for (article_id, published_at, category_id) in visible {
            let in_category = category_ids.is_none_or(|ids| ids.contains(&category_id));
            if let (true, Some(published_at), Some(&(views, reactions))) =
                (in_category, published_at, sums.get(&article_id))
            {
                each(Totals {
                    article_id,
                    category_id,
                    published_at,
                    views,
                    reactions,
                });
            }
        }
    }
    Ok(())
}
