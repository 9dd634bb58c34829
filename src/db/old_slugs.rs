//! The slugs articles had before their current ones: a link made with an
//! old slug still finds its article (see the `old_slugs` migration).

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::StoreResult;
use super::schema::old_slugs;

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
