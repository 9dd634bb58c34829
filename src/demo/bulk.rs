//! A large synthetic store for benchmarks: `frontpage demo --articles N
//! --readers R --views V`. Articles go through the normal write path; views
//! are inserted in large batches with their totals and buckets computed in
//! memory, which is what makes ten million of them take a minute, not hours.

use std::collections::HashMap;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{CATEGORIES, is_empty, seed_taxonomy};
use crate::content::Status;
use crate::db::article_writes::{self, ArticleWrite, PublishTime, SlugChoice};
use crate::db::engagement::{self, VIEW_COUNTER, periods};
use crate::db::schema::{article_counts, engagement_days, engagement_hours, readers, views};
use crate::db::{self, Db, StoreResult, search};

/// How big a store to make.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub articles: usize,
    pub readers: usize,
    pub views: usize,
    /// Publication times and views spread over this many days before now.
    pub days: i64,
}

/// Rows per insert statement (SQLite allows 32,766 bound values).
const ROWS_PER_INSERT: usize = 5_000;
/// Readers or views per write transaction.
const PER_TRANSACTION: usize = 50_000;
/// Articles per write transaction: few enough that what a transaction
/// writes (about 3 KiB an article) stays in the writer's page cache. Past
/// it, SQLite spills pages to the log mid-transaction, and every statement's
/// savepoint then costs more as the transaction grows: 50,000 articles per
/// transaction filled 200,000 in 13 minutes.
const ARTICLES_PER_TRANSACTION: usize = 2_000;

const WORDS: &[&str] = &[
    "harbour",
    "strike",
    "minister",
    "budget",
    "storm",
    "flood",
    "barrier",
    "election",
    "mayor",
    "council",
    "rail",
    "battery",
    "satellite",
    "launch",
    "festival",
    "film",
    "band",
    "tour",
    "drought",
    "crop",
    "hospital",
    "triage",
    "glacier",
    "museum",
    "textiles",
    "league",
    "title",
    "marathon",
    "doping",
    "inflation",
    "rates",
    "bank",
    "market",
    "shares",
    "trade",
    "port",
    "ship",
    "union",
    "talks",
    "court",
    "ruling",
    "climate",
    "ice",
    "orbit",
    "rocket",
];

fn sentence(rng: &mut StdRng, words: usize) -> String {
    let text: Vec<&str> = (0..words)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    let mut sentence = text.join(" ");
    if let Some(first) = sentence.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    sentence
}

/// Fills an empty store; `progress` hears how far it got (done, total, what).
pub fn generate(
    db: &Db,
    size: Size,
    seed: u64,
    progress: &dyn Fn(u64, u64, &str),
) -> anyhow::Result<()> {
    let fresh = db.write_blocking(|conn| {
        let empty = is_empty(conn)?;
        if empty {
            seed_taxonomy(conn)?;
        }
        Ok(empty)
    })?;
    anyhow::ensure!(
        fresh,
        "the database already has content; point DATABASE_URL at a new file"
    );
    let now = db::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let published = create_articles(db, size, now, &mut rng, progress)?;
    index_for_search(db, size.articles as u64, progress)?;
    create_readers(db, size.readers, progress)?;
    create_views(db, size, &published, now, &mut rng, progress)?;
    Ok(())
}

fn create_articles(
    db: &Db,
    size: Size,
    now: NaiveDateTime,
    rng: &mut StdRng,
    progress: &dyn Fn(u64, u64, &str),
) -> anyhow::Result<Vec<(i32, NaiveDateTime)>> {
    let mut published = Vec::with_capacity(size.articles);
    let span = size.days * 86_400;
    for start in (0..size.articles).step_by(ARTICLES_PER_TRANSACTION) {
        let end = (start + ARTICLES_PER_TRANSACTION).min(size.articles);
        let writes: Vec<(ArticleWrite, NaiveDateTime)> = (start..end)
            .map(|i| {
                let title = format!("{} {i}", sentence(rng, 7));
                let body = (0..6)
                    .map(|_| sentence(rng, 18))
                    .collect::<Vec<_>>()
                    .join(". ");
                let at = now - Duration::seconds(rng.random_range(60..span.max(61)));
                let write = ArticleWrite {
                    slug: SlugChoice::Given(format!("synthetic-story-{i}")),
                    summary: sentence(rng, 20),
                    summary_derived: false,
                    body_html: format!("<p>{body}.</p>"),
                    word_count: 108,
                    dateline: Some("LONDON".into()),
                    source: Some("Frontpage Bench".into()),
                    image_url: None,
                    category: CATEGORIES[1 + i % (CATEGORIES.len() - 1)].0.to_string(),
                    tags: vec![(
                        WORDS[i % WORDS.len()].to_string(),
                        WORDS[i % WORDS.len()].to_string(),
                    )],
                    author: None,
                    old_slugs: Vec::new(),
                    status: Status::Published,
                    published_at: PublishTime::At(at),
                    now,
                    title,
                    feed_entry: None,
                };
                (write, at)
            })
            .collect();
        let ids = db.write_blocking(move |conn| {
            writes
                .iter()
                .map(|(write, at)| Ok((article_writes::create_unindexed(conn, write)?, *at)))
                .collect::<StoreResult<Vec<_>>>()
        })?;
        published.extend(ids);
        progress(end as u64, size.articles as u64, "articles");
    }
    Ok(published)
}

/// Indexes the new articles for search, a chunk per commit.
fn index_for_search(db: &Db, total: u64, progress: &dyn Fn(u64, u64, &str)) -> anyhow::Result<()> {
    let mut done = 0;
    loop {
        let (taken, _) = db.write_blocking(search::index_pending_chunk)?;
        if taken == 0 {
            return Ok(());
        }
        done += taken as u64;
        progress(done, total, "indexed");
    }
}

fn create_readers(db: &Db, count: usize, progress: &dyn Fn(u64, u64, &str)) -> anyhow::Result<()> {
    for start in (0..count).step_by(PER_TRANSACTION) {
        let end = (start + PER_TRANSACTION).min(count);
        db.write_blocking(move |conn| {
            let keys: Vec<_> = (start..end)
                .map(|i| readers::key.eq(format!("reader-{i}")))
                .collect();
            for chunk in keys.chunks(ROWS_PER_INSERT) {
                diesel::insert_into(readers::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            Ok(())
        })?;
        progress(end as u64, count as u64, "readers");
    }
    Ok(())
}

/// Views per article, skewed so that a few articles get most of them.
fn views_per_article(
    total: usize,
    articles: usize,
    rng: &mut StdRng,
) -> anyhow::Result<Vec<usize>> {
    let weights: Vec<f64> = (0..articles)
        .map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.8))
        .collect();
    let pick = WeightedIndex::new(&weights)?;
    let mut counts = vec![0usize; articles];
    // Sampling 10 million times is slow; sample a million and scale.
    let samples = total.clamp(1, 1_000_000);
    for _ in 0..samples {
        counts[pick.sample(rng)] += 1;
    }
    let scale = total as f64 / samples as f64;
    let mut scaled: Vec<usize> = counts
        .iter()
        .map(|c| (*c as f64 * scale) as usize)
        .collect();
    let missing = total.saturating_sub(scaled.iter().sum());
    scaled[0] += missing;
    Ok(scaled)
}

type ViewRow = (i32, i32, NaiveDateTime);

fn flush(
    db: &Db,
    rows: Vec<ViewRow>,
    hours: Vec<(i32, i32, i32)>,
    days: Vec<(i32, i32, i32)>,
    totals: Vec<(i32, i64)>,
) -> anyhow::Result<()> {
    db.write_blocking(move |conn| {
        // These views come with their totals and buckets: count any that
        // came before them, then mark these counted too.
        engagement::count_views(conn)?;
        let values: Vec<_> = rows
            .iter()
            .map(|(article, reader, at)| {
                (
                    views::article_id.eq(article),
                    views::reader_id.eq(Some(*reader)),
                    views::viewed_at.eq(at),
                )
            })
            .collect();
        for chunk in values.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(views::table)
                .values(chunk)
                .execute(conn)?;
        }
        insert_buckets(conn, &hours, &days)?;
        let counts: Vec<_> = totals
            .iter()
            .map(|(article, count)| {
                (
                    article_counts::article_id.eq(article),
                    article_counts::counter.eq(VIEW_COUNTER),
                    article_counts::count.eq(count),
                )
            })
            .collect();
        for chunk in counts.chunks(ROWS_PER_INSERT) {
            diesel::insert_into(article_counts::table)
                .values(chunk)
                .execute(conn)?;
        }
        engagement::mark_views_counted(conn)
    })?;
    Ok(())
}

fn insert_buckets(
    conn: &mut SqliteConnection,
    hours: &[(i32, i32, i32)],
    days: &[(i32, i32, i32)],
) -> StoreResult<()> {
    let hour_rows: Vec<_> = hours
        .iter()
        .map(|(period, article, views)| {
            (
                engagement_hours::period.eq(period),
                engagement_hours::article_id.eq(article),
                engagement_hours::views.eq(views),
            )
        })
        .collect();
    for chunk in hour_rows.chunks(ROWS_PER_INSERT) {
        diesel::insert_into(engagement_hours::table)
            .values(chunk)
            .execute(conn)?;
    }
    let day_rows: Vec<_> = days
        .iter()
        .map(|(period, article, views)| {
            (
                engagement_days::period.eq(period),
                engagement_days::article_id.eq(article),
                engagement_days::views.eq(views),
            )
        })
        .collect();
    for chunk in day_rows.chunks(ROWS_PER_INSERT) {
        diesel::insert_into(engagement_days::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

fn create_views(
    db: &Db,
    size: Size,
    published: &[(i32, NaiveDateTime)],
    now: NaiveDateTime,
    rng: &mut StdRng,
    progress: &dyn Fn(u64, u64, &str),
) -> anyhow::Result<()> {
    if published.is_empty() || size.readers == 0 {
        return Ok(());
    }
    let per_article = views_per_article(size.views, published.len(), rng)?;
    let (mut rows, mut hours, mut days, mut totals) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut done = 0usize;
    for (&(article, at), &count) in published.iter().zip(&per_article) {
        let span = (now - at).num_seconds().max(1);
        let (mut by_hour, mut by_day) = (HashMap::<i32, i32>::new(), HashMap::<i32, i32>::new());
        for _ in 0..count {
            let viewed_at = at + Duration::seconds(rng.random_range(0..span));
            let (hour, day) = periods(viewed_at);
            *by_hour.entry(hour).or_default() += 1;
            *by_day.entry(day).or_default() += 1;
            // Reader ids are 1..=R, as create_readers inserted them.
            rows.push((
                article,
                rng.random_range(1..=size.readers as i32),
                viewed_at,
            ));
        }
        hours.extend(by_hour.into_iter().map(|(period, n)| (period, article, n)));
        days.extend(by_day.into_iter().map(|(period, n)| (period, article, n)));
        if count > 0 {
            totals.push((article, count as i64));
        }
        if rows.len() >= PER_TRANSACTION {
            done += rows.len();
            flush(
                db,
                std::mem::take(&mut rows),
                std::mem::take(&mut hours),
                std::mem::take(&mut days),
                std::mem::take(&mut totals),
            )?;
            progress(done as u64, size.views as u64, "views");
        }
    }
    done += rows.len();
    flush(db, rows, hours, days, totals)?;
    progress(done as u64, size.views as u64, "views");
    Ok(())
}
