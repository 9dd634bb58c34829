//! The slugs articles had before their current ones: a link made with an
//! old slug still finds its article (see the `old_slugs` migration).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::article_writes::slug_owner;
use super::schema::old_slugs;
use super::{Invalid, StoreError, StoreResult};

/// Article `id` moved from slug `from` to `to`: `from` now names it as an
/// old slug, and `to`, its own again, no longer does.
pub fn moved(conn: &mut SqliteConnection, id: i32, from: &str, to: &str) -> StoreResult<()> {
    taken(conn, to)?;
    diesel::replace_into(old_slugs::table)
        .values((old_slugs::slug.eq(from), old_slugs::article_id.eq(id)))
        .execute(conn)?;
    Ok(())
}

/// An article has `slug` now: it is no other's old slug.
pub fn taken(conn: &mut SqliteConnection, slug: &str) -> StoreResult<()> {
    diesel::delete(old_slugs::table.find(slug)).execute(conn)?;
    Ok(())
}

/// The article that had `slug` before its current one, if one did.
pub fn article_of(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Option<i32>> {
    Ok(old_slugs::table
        .find(slug)
        .select(old_slugs::article_id)
        .get_result(conn)
        .optional()?)
}

/// Records `given` as old slugs of article `id` (an import of an export,
/// or another site's addresses), taking them from any other article's old
/// slugs; one that another article has now is refused.
pub fn given(conn: &mut SqliteConnection, id: i32, given: &[String]) -> StoreResult<()> {
    for slug in given {
        match slug_owner(conn, slug)? {
            Some(owner) if owner != id => {
                return Err(StoreError::Invalid(vec![Invalid {
                    field: "old_slugs".into(),
                    message: format!("`{slug}` is another article's slug"),
                }]));
            }
            // Its own slug now: nothing to send on.
            Some(_) => continue,
            None => {}
        }
        diesel::replace_into(old_slugs::table)
            .values((old_slugs::slug.eq(slug), old_slugs::article_id.eq(id)))
            .execute(conn)?;
    }
    Ok(())
}

/// The old slugs of each of the articles `ids`, in slug order.
pub fn of_articles(
    conn: &mut SqliteConnection,
    ids: &[i32],
) -> StoreResult<HashMap<i32, Vec<String>>> {
    let rows: Vec<(i32, String)> = old_slugs::table
        .filter(old_slugs::article_id.eq_any(ids))
        .order((old_slugs::article_id, old_slugs::slug))
        .select((old_slugs::article_id, old_slugs::slug))
        .load(conn)?;
    let mut found: HashMap<i32, Vec<String>> = HashMap::new();
    for (id, slug) in rows {
        found.entry(id).or_default().push(slug);
    }
    Ok(found)
}
