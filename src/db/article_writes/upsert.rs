//! Import's write: an article created or replaced by its slug, or by the
//! feed entry it was imported from.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::{
    ArticleWrite, PublishTime, SlugChoice, Telling, Upserted, create, replace, slug_owner,
};
use crate::content::{self, Status};
use crate::db::StoreResult;
use crate::db::schema::{articles, authors, categories, feed_entries};

/// Creates or replaces the article with the write's slug (given or derived),
/// or, for a feed entry imported before, the article it became: only when
/// the entry changed since, and keeping what editors choose and a feed does
/// not say (whether it is public, when, its category: the feed gives only
/// the import's default; its author, dateline and image). Returns the article written, or `None` for an entry whose
/// article was deleted, which an import does not bring back.
pub fn upsert(
    conn: &mut SqliteConnection,
    write: &ArticleWrite,
) -> StoreResult<(Option<i32>, Upserted)> {
    let imported = match &write.feed_entry {
        Some(entry) => feed_entries::table
            .find(&entry.id)
            .select((feed_entries::article_id, feed_entries::digest))
            .first::<(Option<i32>, Option<String>)>(conn)
            .optional()?,
        None => None,
    };
    let said = write.feed_entry.as_ref().map(|entry| &entry.digest);
    let upserted = match imported {
        Some((None, _)) => return Ok((None, Upserted::Unchanged)),
        Some((Some(id), digest)) if digest.as_ref() == said => {
            return Ok((Some(id), Upserted::Unchanged));
        }
        // Imported before what entries say was recorded (migration 16): the
        // article may have been edited since. What the entry says now is
        // recorded, and the article kept.
        Some((Some(id), None)) => {
            record_entry(conn, write, id)?;
            return Ok((Some(id), Upserted::Unchanged));
        }
        Some((Some(id), _)) => {
            // What a feed does not say, and editors choose.
            let (status, category, author, dateline, image_url): Kept = articles::table
                .inner_join(categories::table)
                .left_join(authors::table)
                .filter(articles::id.eq(id))
                .select((
                    articles::status,
                    categories::slug,
                    authors::slug.nullable(),
                    articles::dateline,
                    articles::image_url,
                ))
                .first(conn)?;
            // A derived slug is not applied to an existing article: the one
            // it has stays, though the headline it was made from changed.
            let write = ArticleWrite {
                slug: SlugChoice::Derived(String::new()),
                status: Status::from_stored(&status),
                published_at: PublishTime::Keep,
                category,
                author,
                dateline,
                image_url,
                ..write.clone()
            };
            (id, updated(replace(conn, id, &write)?))
        }
        None => {
            let slug = write.slug.as_str();
            let owner = match &write.slug {
                SlugChoice::Derived(slug) if write.feed_entry.is_none() => {
                    same_story(conn, slug, write)?
                }
                _ => slug_owner(conn, slug)?,
            };
            match owner {
                // Unless another feed entry became it: the same headline on
                // the same day from another entry, or another feed, is
                // another story, and gets a slug of its own (`-2`).
                Some(id) if write.feed_entry.is_none() || !from_a_feed(conn, id)? => {
                    (id, updated(replace(conn, id, write)?))
                }
                owner => {
                    let slug = match owner {
                        Some(_) => SlugChoice::Derived(slug.to_string()),
                        // A derived slug stays one: its owner may be
                        // another story (see `same_story`).
                        None => write.slug.clone(),
                    };
                    let write = ArticleWrite {
                        slug,
                        ..write.clone()
                    };
                    (create(conn, &write)?, Upserted::Created)
                }
            }
        }
    };
    record_entry(conn, write, upserted.0)?;
    Ok((Some(upserted.0), upserted.1))
}

/// An article's status, category and author slugs, dateline and image.
type Kept = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Records that the write's feed entry, if it has one, became article `id`
/// and says what it says now.
fn record_entry(conn: &mut SqliteConnection, write: &ArticleWrite, id: i32) -> StoreResult<()> {
    if let Some(entry) = &write.feed_entry {
        diesel::replace_into(feed_entries::table)
            .values((
                feed_entries::entry.eq(&entry.id),
                feed_entries::article_id.eq(id),
                feed_entries::digest.eq(&entry.digest),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The article a line without a slug updates: the one with the slug made
/// from its title, unless that one is another story. Then it is the
/// line's own among `slug-2`, `slug-3`, ..., if an earlier import made it;
/// none otherwise, so that one is made. Another story is one whose title
/// makes the same slug cut at 80 characters but other words after (two
/// live blogs of one election night; see `content::slugify`), or one
/// [`Telling`] tells apart: published on another day (a daily column under
/// one title, "Quotable"), or by another source (one wire story from two
/// outlets).
fn same_story(
    conn: &mut SqliteConnection,
    slug: &str,
    line: &ArticleWrite,
) -> StoreResult<Option<i32>> {
    let whole = slug::slugify(&line.title);
    let telling = Telling::of(line);
    let owner: Option<Story> = articles::table
        .filter(articles::slug.eq(slug))
        .select(Story::as_select())
        .first(conn)
        .optional()?;
    let cut_short = |theirs: &Story| {
        content::slugify(&theirs.title) == slug && slug::slugify(&theirs.title) != whole
    };
    match owner {
        // Its headline may have been corrected since: the slug stays.
        Some(theirs) if !cut_short(&theirs) && !theirs.telling().apart(&telling) => {
            return Ok(Some(theirs.id));
        }
        None => return Ok(None),
        Some(_) => {}
    }
    // The suffixed slugs `free_slug` makes: the range of the slug index
    // from `slug-0` to before `slug-:` (`:` follows `9`), digits alone
    // checked here; of a daily column, those of the line's day.
    let prefix = format!("{slug}-");
    let mut query = articles::table
        .filter(articles::slug.ge(format!("{prefix}0")))
        .filter(articles::slug.lt(format!("{prefix}:")))
        .select((articles::slug, Story::as_select()))
        .into_boxed();
    if let Some(day) = telling.day {
        let start = day.and_time(chrono::NaiveTime::MIN);
        query = query.filter(
            articles::published_at
                .is_null()
                .or(articles::published_at.between(start, start + chrono::TimeDelta::days(1))),
        );
    }
    let mut suffixed: Vec<(u64, Story)> = query
        .load::<(String, Story)>(conn)?
        .into_iter()
        .filter_map(|(theirs, story)| Some((theirs.strip_prefix(&prefix)?.parse().ok()?, story)))
        .collect();
    suffixed.sort_unstable_by_key(|(n, _)| *n);
    Ok(suffixed
        .into_iter()
        .find(|(_, theirs)| {
            slug::slugify(&theirs.title) == whole && !theirs.telling().apart(&telling)
        })
        .map(|(_, theirs)| theirs.id))
}

/// An article as [`same_story`] compares it with a line.
#[derive(Queryable, Selectable)]
#[diesel(table_name = articles)]
struct Story {
    id: i32,
    title: String,
    published_at: Option<chrono::NaiveDateTime>,
    source: Option<String>,
}

impl Story {
    fn telling(&self) -> Telling {
        Telling::new(
            self.published_at.map(|at| at.date()),
            self.source.as_deref(),
        )
    }
}

/// Whether article `id` is what a feed entry became.
fn from_a_feed(conn: &mut SqliteConnection, id: i32) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        feed_entries::table.filter(feed_entries::article_id.eq(id)),
    ))
    .get_result(conn)?)
}

/// What a [`replace`] that `changed` (or not) did.
fn updated(changed: bool) -> Upserted {
    if changed {
        Upserted::Updated
    } else {
        Upserted::Unchanged
    }
}
