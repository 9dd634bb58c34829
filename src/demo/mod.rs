//! Demo content for a first start: a category tree under Home, a few authors,
//! and original articles, stored through the same validation and write path
//! as the API. Publish times are spread over the last 30 days.

use chrono::Duration;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

pub mod activity;
pub mod bulk;

use crate::api::article_input::ArticleInput;
use crate::api::input::Checked;
use crate::content::Status;
use crate::db::engagement::Tally;
use crate::db::schema::{articles, categories};
use crate::db::taxonomy::{self, AuthorWrite, CategoryWrite};
use crate::db::{self, Db, StoreError, StoreResult, article_writes};

/// Seeds the simulated reader activity, so every first start looks the same.
const DEMO_SEED: u64 = 2026;

/// The demo articles, one `ArticleInput` per line, written for this project.
const ARTICLES: &str = include_str!("articles.ndjson");

/// `(slug, name, parent)`, parents before children.
pub const CATEGORIES: &[(&str, &str, Option<&str>)] = &[
    ("home", "Home", None),
    ("news", "News", Some("home")),
    ("world", "World", Some("news")),
    ("politics", "Politics", Some("news")),
    ("business", "Business", Some("home")),
    ("markets", "Markets", Some("business")),
    ("economy", "Economy", Some("business")),
    ("technology", "Technology", Some("home")),
    ("science", "Science", Some("home")),
    ("climate", "Climate", Some("science")),
    ("space", "Space", Some("science")),
    ("sport", "Sport", Some("home")),
    ("football", "Football", Some("sport")),
    ("athletics", "Athletics", Some("sport")),
    ("culture", "Culture", Some("home")),
    ("film", "Film", Some("culture")),
    ("music", "Music", Some("culture")),
];

/// `(slug, name, bio)`.
pub const AUTHORS: &[(&str, &str, &str)] = &[
    (
        "mara-ellison",
        "Mara Ellison",
        "Covers trade, shipping and the economy.",
    ),
    ("tomasz-quill", "Tomasz Quill", "Political correspondent."),
    (
        "aiko-brandt",
        "Aiko Brandt",
        "Science and technology reporter.",
    ),
    ("daniel-osei", "Daniel Osei", "Sports writer."),
    ("priya-raman", "Priya Raman", "Arts and culture editor."),
];

/// Minutes before now that demo article `i` of `n` was published: spread
/// evenly over 30 days, newest first, with a little jitter.
fn minutes_ago(i: usize, n: usize) -> i64 {
    (20 + i * 43_000 / n.max(1) + (i * 7_919) % 97) as i64
}

/// Fills an empty store with the demo set; returns how many articles it
/// stored, or `None` when the store already had content.
pub fn seed_if_empty(db: &Db) -> anyhow::Result<Option<usize>> {
    Ok(db.write_tallied_blocking(seed)?)
}

fn seed(conn: &mut SqliteConnection, tally: &mut Tally) -> StoreResult<Option<usize>> {
    if !is_empty(conn)? {
        return Ok(None);
    }
    seed_taxonomy(conn)?;
    let now = db::now();
    let mut readable = Vec::new();
    let lines: Vec<&str> = ARTICLES
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let mut input: ArticleInput = serde_json::from_str(line)
            .map_err(|error| StoreError::Internal(format!("demo article {}: {error}", i + 1)))?;
        let published = now - Duration::minutes(minutes_ago(i, lines.len()));
        input.published_at = Some(Checked::Valid(published.and_utc()));
        let write = input.validate(now).map_err(|errors| {
            StoreError::Internal(format!("demo article {}: {errors:?}", i + 1))
        })?;
        let id = article_writes::create(conn, &write)?;
        if write.status == Status::Published {
            readable.push((id, published));
        }
    }
    activity::simulate(conn, tally, &readable, now, DEMO_SEED)?;
    // Counted before the server answers: a ranking asked for at once would
    // otherwise be summed without them, and kept for its cache's seconds.
    tally.count_views_now();
    Ok(Some(lines.len()))
}

/// True when the store has neither articles nor categories.
pub fn is_empty(conn: &mut SqliteConnection) -> StoreResult<bool> {
    let has_articles: bool =
        diesel::select(diesel::dsl::exists(articles::table.select(articles::id)))
            .get_result(conn)?;
    let has_categories: bool = diesel::select(diesel::dsl::exists(
        categories::table.select(categories::id),
    ))
    .get_result(conn)?;
    Ok(!has_articles && !has_categories)
}

/// The demo category tree and authors.
pub fn seed_taxonomy(conn: &mut SqliteConnection) -> StoreResult<()> {
    for (position, (slug, name, parent)) in CATEGORIES.iter().enumerate() {
        let category = CategoryWrite {
            slug: Some(slug.to_string()),
            name: Some(name.to_string()),
            parent: Some(parent.map(str::to_string)),
            position: Some(position as i32),
        };
        taxonomy::insert_category(conn, &category)?;
    }
    for (slug, name, bio) in AUTHORS {
        let author = AuthorWrite {
            slug: Some(slug.to_string()),
            name: Some(name.to_string()),
            bio: Some(Some(bio.to_string())),
        };
        taxonomy::insert_author(conn, &author)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_articles_spread_over_the_last_thirty_days() {
        let n = ARTICLES.lines().count();
        assert!(n >= 60, "only {n} demo articles");
        for i in 0..n {
            let minutes = minutes_ago(i, n);
            assert!(
                minutes > 0 && minutes < 30 * 24 * 60,
                "article {i}: {minutes}"
            );
        }
    }
}
