//! Categories, authors and tags in an export, so that it imports into a
//! store that has none of them, as when a site moves to a new one: one
//! NDJSON line each, before the articles, told from them by `kind`
//! (`{"kind": "category", "slug": "world", "name": "World", "parent":
//! "news", "position": 0}`). Imported, each is created, or changed to
//! match the line, by its slug. What each imported feed entry became comes
//! after the articles, in lines of the same form (`"kind": "feed_entry"`).

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::input::{check_bio, check_parent, slug_and_name};
use crate::db::schema::{articles, feed_entries};
use crate::db::taxonomy::{
    self, AuthorWrite, CategoryTree, CategoryWrite, TagsShown, find_author, find_tag,
};
use crate::db::{Db, StoreError, StoreResult};
use crate::error::{ApiError, FieldError, Location};

/// A category, author or tag, or what a feed entry became, as a line of
/// an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Named {
    Category {
        slug: String,
        name: String,
        /// The parent's slug; `null` for a root.
        parent: Option<String>,
        #[serde(default)]
        position: i32,
    },
    Author {
        slug: String,
        name: String,
        #[serde(default)]
        bio: Option<String>,
    },
    Tag {
        slug: String,
        name: String,
    },
    /// What a feed entry became (see [`crate::db::article_writes::FeedEntry`]),
    /// after the articles: a feed imported again into the new store
    /// updates the same articles, and brings back none that was deleted.
    FeedEntry {
        /// The entry's id within its feed, `[feed, entry]`.
        entry: String,
        /// The slug of the article it became; `null` once that was deleted.
        article: Option<String>,
        /// What the entry said at its last import.
        digest: Option<String>,
    },
}

/// A `Named` line of a file, or why it could not be read; by line number.
pub type Line = (usize, Result<Named, Vec<FieldError>>);

/// The `Named` a JSON line holds, if it has a `kind` (an article has none).
pub fn from_line(value: &Value) -> Option<Result<Named, Vec<FieldError>>> {
    value.get("kind")?;
    let named = serde_json::from_value::<Named>(value.clone())
        .map_err(|error| vec![FieldError::new(Location::Body, "(line)", error.to_string())]);
    Some(named.and_then(checked))
}

/// `named` with its name trimmed, if its fields are valid (as the API's
/// taxonomy writes check them).
fn checked(named: Named) -> Result<Named, Vec<FieldError>> {
    let mut errors = Vec::new();
    let named = match named {
        Named::Category {
            slug,
            name,
            parent,
            position,
        } => {
            let (slug, name) = slug_and_name(Some(slug), Some(name), &mut errors);
            check_parent(parent.as_deref(), &mut errors);
            Named::Category {
                slug: slug.unwrap_or_default(),
                name: name.unwrap_or_default(),
                parent,
                position,
            }
        }
        Named::Author { slug, name, bio } => {
            let (slug, name) = slug_and_name(Some(slug), Some(name), &mut errors);
            let bio = check_bio(bio, &mut errors);
            Named::Author {
                slug: slug.unwrap_or_default(),
                name: name.unwrap_or_default(),
                bio,
            }
        }
        Named::Tag { slug, name } => {
            let (slug, name) = slug_and_name(Some(slug), Some(name), &mut errors);
            Named::Tag {
                slug: slug.unwrap_or_default(),
                name: name.unwrap_or_default(),
            }
        }
        Named::FeedEntry {
            entry,
            article,
            digest,
        } => {
            // As `transfer` writes them: `[feed, entry]`, 32 hex digits.
            if serde_json::from_str::<(String, String)>(&entry).is_err() {
                errors.push(FieldError::new(
                    Location::Body,
                    "entry",
                    "must be a feed's id and an entry's, as a JSON pair of strings",
                ));
            }
            let hex = |digest: &String| {
                digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
            };
            if digest.as_ref().is_some_and(|digest| !hex(digest)) {
                errors.push(FieldError::new(
                    Location::Body,
                    "digest",
                    "must be 32 hexadecimal digits, or null",
                ));
            }
            Named::FeedEntry {
                entry,
                article,
                digest,
            }
        }
    };
    if errors.is_empty() {
        Ok(named)
    } else {
        Err(errors)
    }
}

/// Every category (each after its parent), author and tag of the store.
pub fn export(conn: &mut SqliteConnection) -> StoreResult<Vec<Named>> {
    let tree = CategoryTree::load(conn)?;
    let mut named = Vec::new();
    let mut parents = vec![None];
    while let Some(parent) = parents.pop() {
        for row in tree.children(parent) {
            named.push(Named::Category {
                slug: row.slug.clone(),
                name: row.name.clone(),
                parent: parent.and_then(|id| tree.get(id)).map(|p| p.slug.clone()),
                position: row.position,
            });
            parents.push(Some(row.id));
        }
    }
    named.extend(
        taxonomy::list_authors(conn, None, i64::MAX)?
            .into_iter()
            .map(|row| Named::Author {
                slug: row.slug,
                name: row.name,
                bio: row.bio,
            }),
    );
    named.extend(
        taxonomy::list_tags(conn, TagsShown::All, None, i64::MAX)?
            .into_iter()
            .map(|row| Named::Tag {
                slug: row.slug,
                name: row.name,
            }),
    );
    Ok(named)
}

/// What each feed entry imported into the store became, as lines for after
/// the articles.
pub fn export_feed_entries(conn: &mut SqliteConnection) -> StoreResult<Vec<Named>> {
    let rows: Vec<(String, Option<String>, Option<String>)> = feed_entries::table
        .left_join(articles::table)
        .order(feed_entries::entry)
        .select((
            feed_entries::entry,
            articles::slug.nullable(),
            feed_entries::digest,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(entry, article, digest)| Named::FeedEntry {
            entry,
            article,
            digest,
        })
        .collect())
}

/// What importing one `Named` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

/// What importing a file's categories, authors and tags did.
#[derive(Debug, Default)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// The lines that failed, with why.
    pub failed: Vec<(usize, Vec<FieldError>)>,
}

/// Creates, or changes to match, each valid line's category, author or
/// tag, in order (so a parent comes before its children), each on its own:
/// one that fails is reported and leaves the others standing.
pub fn import(db: &Db, lines: Vec<Line>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut valid = Vec::new();
    for (line, named) in lines {
        match named {
            Ok(named) => valid.push((line, named)),
            Err(errors) => report.failed.push((line, errors)),
        }
    }
    let valid = parents_first(valid);
    let outcomes = db.write_blocking(move |conn| {
        let mut outcomes = Vec::with_capacity(valid.len());
        for (line, named) in valid {
            match conn.transaction(|conn| apply(conn, &named)) {
                Ok(outcome) => outcomes.push((line, Ok(outcome))),
                Err(
                    error @ (StoreError::Invalid(_)
                    | StoreError::Conflict(_)
                    | StoreError::SlugTaken(_)),
                ) => {
                    outcomes.push((line, Err(error)));
                }
                Err(error) => return Err(error),
            }
        }
        Ok(outcomes)
    })?;
    for (line, outcome) in outcomes {
        match outcome {
            Ok(Outcome::Created) => report.created += 1,
            Ok(Outcome::Updated) => report.updated += 1,
            Ok(Outcome::Unchanged) => report.unchanged += 1,
            Err(error) => report
                .failed
                .push((line, crate::api::import::line_errors(ApiError::from(error)))),
        }
    }
    report.failed.sort_by_key(|(line, _)| *line);
    Ok(report)
}

/// The lines `waiting` in their order, but each category after its parent
/// when they have that one too: a file written by hand may name a child first,
/// and would otherwise import whole only when imported again. A cycle is
/// left as written, for the store to refuse.
fn parents_first(mut waiting: Vec<(usize, Named)>) -> Vec<(usize, Named)> {
    let category = |named: &Named| match named {
        Named::Category { slug, parent, .. } => Some((slug.clone(), parent.clone())),
        _ => None,
    };
    let given: HashSet<String> = waiting
        .iter()
        .filter_map(|(_, named)| Some(category(named)?.0))
        .collect();
    let mut placed = HashSet::new();
    let mut ordered = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let (ready, rest): (Vec<_>, Vec<_>) =
            waiting
                .into_iter()
                .partition(|(_, named)| match category(named) {
                    Some((_, Some(parent))) => !given.contains(&parent) || placed.contains(&parent),
                    _ => true,
                });
        if ready.is_empty() {
            ordered.extend(rest);
            break;
        }
        placed.extend(
            ready
                .iter()
                .filter_map(|(_, named)| Some(category(named)?.0)),
        );
        ordered.extend(ready);
        waiting = rest;
    }
    ordered
}

/// Creates `named`, or changes the one with its slug to match it.
fn apply(conn: &mut SqliteConnection, named: &Named) -> StoreResult<Outcome> {
    match named {
        Named::Category {
            slug,
            name,
            parent,
            position,
        } => {
            let tree = CategoryTree::load(conn)?;
            let write = CategoryWrite {
                slug: Some(slug.clone()),
                name: Some(name.clone()),
                parent: Some(parent.clone()),
                position: Some(*position),
            };
            let Some(row) = tree.by_slug(slug) else {
                taxonomy::insert_category(conn, &write)?;
                return Ok(Outcome::Created);
            };
            let current_parent = row.parent_id.and_then(|id| tree.get(id));
            if row.name == *name
                && current_parent.map(|p| &p.slug) == parent.as_ref()
                && row.position == *position
            {
                return Ok(Outcome::Unchanged);
            }
            taxonomy::update_category(conn, slug, &write)?;
            Ok(Outcome::Updated)
        }
        Named::Author { slug, name, bio } => {
            let write = AuthorWrite {
                slug: Some(slug.clone()),
                name: Some(name.clone()),
                bio: Some(bio.clone()),
            };
            match find_author(conn, slug)? {
                None => {
                    taxonomy::insert_author(conn, &write)?;
                    Ok(Outcome::Created)
                }
                Some(row) if row.name == *name && row.bio == *bio => Ok(Outcome::Unchanged),
                Some(_) => {
                    taxonomy::update_author(conn, slug, &write)?;
                    Ok(Outcome::Updated)
                }
            }
        }
        Named::FeedEntry {
            entry,
            article,
            digest,
        } => {
            let article_id = match article {
                Some(slug) => Some(
                    articles::table
                        .filter(articles::slug.eq(slug))
                        .select(articles::id)
                        .first::<i32>(conn)
                        .optional()?
                        .ok_or_else(|| {
                            StoreError::invalid(
                                "article",
                                format!("no article has the slug `{slug}`"),
                            )
                        })?,
                ),
                None => None,
            };
            let current: Option<(Option<i32>, Option<String>)> = feed_entries::table
                .find(entry)
                .select((feed_entries::article_id, feed_entries::digest))
                .first(conn)
                .optional()?;
            let outcome = match current {
                Some(current) if current == (article_id, digest.clone()) => {
                    return Ok(Outcome::Unchanged);
                }
                Some(_) => Outcome::Updated,
                None => Outcome::Created,
            };
            diesel::replace_into(feed_entries::table)
                .values((
                    feed_entries::entry.eq(entry),
                    feed_entries::article_id.eq(article_id),
                    feed_entries::digest.eq(digest),
                ))
                .execute(conn)?;
            Ok(outcome)
        }
        Named::Tag { slug, name } => match find_tag(conn, slug)? {
            None => {
                taxonomy::insert_tag(conn, slug, name)?;
                Ok(Outcome::Created)
            }
            Some(row) if row.name == *name => Ok(Outcome::Unchanged),
            Some(_) => {
                taxonomy::update_tag(conn, slug, None, Some(name))?;
                Ok(Outcome::Updated)
            }
        },
    }
}
