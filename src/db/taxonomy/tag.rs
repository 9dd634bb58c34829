//! Tags: listed as readers or editors are shown them, found by slug or by
//! name, created as articles name them, renamed and deleted.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::{Sqlite, SqliteConnection};

use super::{TagRow, ensure_slug_free};
use crate::db::articles::public_at;
use crate::db::schema::{article_tags, articles, tags};
use crate::db::{StoreError, StoreResult};

/// Which tags a reader of the tag list is shown.
#[derive(Debug, Clone, Copy)]
pub enum TagsShown {
    /// Those that at least one article public at this time carries, so
    /// that the tag of an embargoed story stays as hidden as the story.
    Public(NaiveDateTime),
    /// Every tag, used or not (for editors).
    All,
}

/// The tags `shown` names.
fn shown_tags(shown: TagsShown) -> tags::BoxedQuery<'static, Sqlite> {
    let TagsShown::Public(now) = shown else {
        return tags::table.into_boxed();
    };
    let in_use = article_tags::table
        .inner_join(articles::table)
        .filter(article_tags::tag_id.eq(tags::id))
        .filter(public_at(now));
    tags::table.filter(diesel::dsl::exists(in_use)).into_boxed()
}

/// The tags `shown` names, in slug order, after `after` when paging.
pub fn list_tags(
    conn: &mut SqliteConnection,
    shown: TagsShown,
    after: Option<&str>,
    limit: i64,
) -> StoreResult<Vec<TagRow>> {
    let mut query = shown_tags(shown)
        .select(TagRow::as_select())
        .order(tags::slug)
        .limit(limit);
    if let Some(after) = after {
        query = query.filter(tags::slug.gt(after.to_string()));
    }
    Ok(query.load(conn)?)
}

/// The tag with this slug, if `shown` names it.
pub fn find_shown_tag(
    conn: &mut SqliteConnection,
    shown: TagsShown,
    slug: &str,
) -> StoreResult<Option<TagRow>> {
    Ok(shown_tags(shown)
        .filter(tags::slug.eq(slug.to_string()))
        .select(TagRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// The tag with this slug.
pub fn find_tag(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Option<TagRow>> {
    Ok(tags::table
        .filter(tags::slug.eq(slug))
        .select(TagRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// Creates a tag; a taken slug is a conflict.
pub fn insert_tag(conn: &mut SqliteConnection, slug: &str, name: &str) -> StoreResult<TagRow> {
    ensure_slug_free(find_tag(conn, slug)?.is_some(), "tag", slug)?;
    Ok(diesel::insert_into(tags::table)
        .values((tags::slug.eq(slug), tags::name.eq(name)))
        .returning(TagRow::as_returning())
        .get_result(conn)?)
}

/// Renames a tag or changes its slug.
pub fn update_tag(
    conn: &mut SqliteConnection,
    slug: &str,
    new_slug: Option<&str>,
    name: Option<&str>,
) -> StoreResult<TagRow> {
    let row = find_tag(conn, slug)?.ok_or(StoreError::NotFound)?;
    if let Some(new_slug) = new_slug.filter(|s| *s != slug) {
        ensure_slug_free(find_tag(conn, new_slug)?.is_some(), "tag", new_slug)?;
    }
    Ok(diesel::update(tags::table.find(row.id))
        .set((
            tags::slug.eq(new_slug.unwrap_or(&row.slug)),
            tags::name.eq(name.unwrap_or(&row.name)),
        ))
        .returning(TagRow::as_returning())
        .get_result(conn)?)
}

/// The ids of the tags that an article's `(slug, name)`s name (see
/// [`find_tags`]), creating the ones that are new; each once, in order.
pub fn ensure_tags(
    conn: &mut SqliteConnection,
    wanted: &[(String, String)],
) -> StoreResult<Vec<i32>> {
    let mut ids = Vec::with_capacity(wanted.len());
    for ((slug, name), found) in wanted.iter().zip(find_tags(conn, wanted)?) {
        let id = match found {
            Some(id) => id,
            None => insert_tag(conn, slug, name)?.id,
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The tag each `(slug, name)` names, if one exists. Editors may give a
/// tag by its slug or by its name, and a tag's name need not be what its
/// slug was made from (`cop`, "Climate Summit"), nor stay so after a
/// rename. Given as a slug (`slug == name`), it is the tag with that slug,
/// else the oldest with that name (ignoring ASCII case); given as a name,
/// the oldest with that name first, then the one with the slug made of it.
pub fn find_tags(
    conn: &mut SqliteConnection,
    wanted: &[(String, String)],
) -> StoreResult<Vec<Option<i32>>> {
    wanted
        .iter()
        .map(|(slug, name)| {
            let by_slug = |conn: &mut SqliteConnection| -> StoreResult<Option<i32>> {
                Ok(find_tag(conn, slug)?.map(|tag| tag.id))
            };
            let by_name = |conn: &mut SqliteConnection| -> StoreResult<Option<i32>> {
                Ok(tags::table
                    .filter(
                        diesel::dsl::sql::<diesel::sql_types::Bool>("name = ")
                            .bind::<diesel::sql_types::Text, _>(name)
                            .sql(" COLLATE NOCASE"),
                    )
                    .order(tags::id)
                    .select(tags::id)
                    .first(conn)
                    .optional()?)
            };
            if slug == name {
                match by_slug(conn)? {
                    Some(id) => Ok(Some(id)),
                    None => by_name(conn),
                }
            } else {
                match by_name(conn)? {
                    Some(id) => Ok(Some(id)),
                    None => by_slug(conn),
                }
            }
        })
        .collect()
}

/// Deletes a tag and takes it off every article, whose `updated_at` moves
/// on as an edit moves it (to `now`, and at least a second past what it
/// was: see `article_writes::replace`), since their tags changed: so
/// `Last-Modified` and the Related index, which weighs shared tags, see a
/// new version.
pub fn delete_tag(conn: &mut SqliteConnection, slug: &str, now: NaiveDateTime) -> StoreResult<()> {
    let tag = find_tag(conn, slug)?.ok_or(StoreError::NotFound)?;
    diesel::sql_query(
        "UPDATE articles SET updated_at = MAX(?, datetime(updated_at, '+1 second')) \
         WHERE id IN (SELECT article_id FROM article_tags WHERE tag_id = ?)",
    )
    .bind::<diesel::sql_types::Timestamp, _>(now)
    .bind::<diesel::sql_types::Integer, _>(tag.id)
    .execute(conn)?;
    // Its links go with it (`ON DELETE CASCADE`).
    diesel::delete(tags::table.find(tag.id)).execute(conn)?;
    Ok(())
}
