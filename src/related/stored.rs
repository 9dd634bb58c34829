//! Related lists kept in the store (`related_lists`): a million-article
//! archive's lists take a quarter of an hour of CPU to compute and over a
//! gigabyte to hold, so they are computed once, in the background, and read
//! back when asked for (a few microseconds) instead of being computed again
//! at every start or whenever one is read.
//!
//! A stored list holds while its article and every article in it are as
//! they were when it was computed: its fingerprint hashes their ids and
//! `updated_at`s as the index had them, and is checked against the index
//! when the list is read (against the store itself, [`holds_in_store`],
//! while the index is first built after a start). What a fingerprint cannot
//! tell, a new or changed article that now belongs in the list, the engine
//! handles by deleting the stored lists of that article's best matches (see
//! `Engine::apply`).
//!
//! The terms that make two texts similar are not stored: term numbers are
//! the index's own and change when it is built again. They are found again
//! for the items shown.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::score::fingerprint_of;
use super::{LISTS_VERSION, Related};
use crate::db::StoreResult;
use crate::db::articles::public_at;
use crate::db::in_ids::InIdsExt;
use crate::db::schema::{article_writes, articles, related_lists, related_sync};

/// Bytes per stored item: id, score, flags.
const ITEM_BYTES: usize = 9;
/// The flag of an item in the same category as the list's article.
const SAME_CATEGORY: u8 = 1;
/// Lists written per statement (four bound values each).
const PER_STATEMENT: usize = 2_000;

/// A list as stored.
#[derive(Debug, Clone)]
pub struct StoredList {
    pub article_id: i32,
    pub computed_at: NaiveDateTime,
    pub fingerprint: u64,
    pub items: Vec<Related>,
}

/// Packs a list: per item its id and score (little-endian) and a flags byte.
pub fn encode(items: &[Related]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(items.len() * ITEM_BYTES);
    for item in items {
        bytes.extend_from_slice(&item.id.to_le_bytes());
        bytes.extend_from_slice(&item.score.to_le_bytes());
        bytes.push(if item.same_category { SAME_CATEGORY } else { 0 });
    }
    bytes
}

/// Unpacks what [`encode`] packed; `None` if the bytes are not such a list.
pub fn decode(bytes: &[u8]) -> Option<Vec<Related>> {
    if !bytes.len().is_multiple_of(ITEM_BYTES) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(ITEM_BYTES)
            .map(|item| Related {
                id: i32::from_le_bytes(item[..4].try_into().expect("four bytes")),
                score: f32::from_le_bytes(item[4..8].try_into().expect("four bytes")),
                same_category: item[8] & SAME_CATEGORY != 0,
                ..Related::without_terms()
            })
            .collect(),
    )
}

/// The stored list of article `id`, if there is one and it unpacks.
pub fn load(conn: &mut SqliteConnection, id: i32) -> StoreResult<Option<StoredList>> {
    // One id is compared with `=` (see `in_ids`): the same statement as a
    // lookup by key.
    Ok(load_many(conn, &[id])?.pop())
}

/// The stored lists of these articles, of those that have one that unpacks.
pub fn load_many(conn: &mut SqliteConnection, ids: &[i32]) -> StoreResult<Vec<StoredList>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PER_STATEMENT) {
        let rows: Vec<Row> = related_lists::table
            .filter(related_lists::article_id.in_ids(chunk))
            .select(ROW)
            .load(conn)?;
        found.extend(rows.into_iter().filter_map(unpacked));
    }
    Ok(found)
}

/// Whether `list` still holds as far as the store tells, without the
/// index: its article and items are visible at `now` with the `updated_at`
/// they had when it was computed (see [`super::score::holds`]).
pub fn holds_in_store(
    conn: &mut SqliteConnection,
    list: &StoredList,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let mut ids: Vec<i32> = list.items.iter().map(|item| item.id).collect();
    ids.push(list.article_id);
    let versions: HashMap<i32, NaiveDateTime> = articles::table
        .filter(articles::id.in_ids(&ids))
        .filter(public_at(now))
        .select((articles::id, articles::updated_at))
        .load(conn)?
        .into_iter()
        .collect();
    let fingerprint = fingerprint_of(list.article_id, &list.items, |id| {
        versions.get(&id).copied()
    });
    Ok(fingerprint == Some(list.fingerprint))
}

/// A stored list as read: article id, when computed, fingerprint, items.
type Row = (i32, NaiveDateTime, i64, Vec<u8>);
const ROW: (
    related_lists::article_id,
    related_lists::computed_at,
    related_lists::fingerprint,
    related_lists::items,
) = (
    related_lists::article_id,
    related_lists::computed_at,
    related_lists::fingerprint,
    related_lists::items,
);

/// The list a row holds, if it unpacks.
fn unpacked((article_id, computed_at, fingerprint, items): Row) -> Option<StoredList> {
    Some(StoredList {
        article_id,
        computed_at,
        fingerprint: fingerprint as u64,
        items: decode(&items)?,
    })
}

/// The first `count` stored lists of articles after `after`, by article id,
/// of those that unpack; with the last article id read.
pub fn load_after(
    conn: &mut SqliteConnection,
    after: i32,
    count: usize,
) -> StoreResult<(Vec<StoredList>, Option<i32>)> {
    let rows: Vec<Row> = related_lists::table
        .filter(related_lists::article_id.gt(after))
        .order(related_lists::article_id)
        .limit(count as i64)
        .select(ROW)
        .load(conn)?;
    let last = rows.last().map(|(article_id, ..)| *article_id);
    let lists = rows.into_iter().filter_map(unpacked).collect();
    Ok((lists, last))
}

/// Stores `lists`, replacing older ones; lists of articles deleted since
/// they were computed are left out.
pub fn save(conn: &mut SqliteConnection, lists: &[StoredList]) -> StoreResult<()> {
    for chunk in lists.chunks(PER_STATEMENT) {
        let ids: Vec<i32> = chunk.iter().map(|list| list.article_id).collect();
        let existing: std::collections::HashSet<i32> = articles::table
            .filter(articles::id.in_ids(&ids))
            .select(articles::id)
            .load::<i32>(conn)?
            .into_iter()
            .collect();
        let rows: Vec<_> = chunk
            .iter()
            .filter(|list| existing.contains(&list.article_id))
            .map(|list| {
                (
                    related_lists::article_id.eq(list.article_id),
                    related_lists::computed_at.eq(list.computed_at),
                    related_lists::fingerprint.eq(list.fingerprint as i64),
                    related_lists::items.eq(encode(&list.items)),
                )
            })
            .collect();
        diesel::replace_into(related_lists::table)
            .values(&rows)
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes the stored lists of `ids`.
pub fn remove(conn: &mut SqliteConnection, ids: &[i32]) -> StoreResult<()> {
    for chunk in ids.chunks(PER_STATEMENT) {
        diesel::delete(related_lists::table.filter(related_lists::article_id.in_ids(chunk)))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes every stored list.
pub fn clear(conn: &mut SqliteConnection) -> StoreResult<()> {
    diesel::delete(related_lists::table).execute(conn)?;
    Ok(())
}

/// The articles that have a stored list.
pub fn ids(conn: &mut SqliteConnection) -> StoreResult<Vec<i32>> {
    Ok(related_lists::table
        .select(related_lists::article_id)
        .load(conn)?)
}

/// How far the stored lists are known to have followed the articles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Synced {
    /// Changes to articles before then have reached them (a write stamped
    /// just before may have committed after: see `build::SYNC_MARGIN`).
    pub at: NaiveDateTime,
    /// The [`LISTS_VERSION`] that computed them.
    pub lists_version: i32,
    /// The [`writes_to_articles`] they have followed, if known.
    pub article_writes: Option<i64>,
}

/// How far the stored lists have followed the articles, if they ever were
/// recorded as following them.
pub fn synced(conn: &mut SqliteConnection) -> StoreResult<Option<Synced>> {
    let row: Option<(NaiveDateTime, i32, Option<i64>)> = related_sync::table
        .select((
            related_sync::synced_at,
            related_sync::lists_version,
            related_sync::article_writes,
        ))
        .get_result(conn)
        .optional()?;
    Ok(row.map(|(at, lists_version, article_writes)| Synced {
        at,
        lists_version,
        article_writes,
    }))
}

/// Records that the stored lists, computed by this [`LISTS_VERSION`], have
/// followed every change to articles before `at` and the first
/// `article_writes` writes to them.
pub fn set_synced(
    conn: &mut SqliteConnection,
    at: NaiveDateTime,
    article_writes: i64,
) -> StoreResult<()> {
    diesel::replace_into(related_sync::table)
        .values((
            related_sync::id.eq(1),
            related_sync::synced_at.eq(at),
            related_sync::lists_version.eq(LISTS_VERSION),
            related_sync::article_writes.eq(Some(article_writes)),
        ))
        .execute(conn)?;
    Ok(())
}

/// How many times articles have been written (inserted, updated, deleted),
/// by any process: a trigger counts each write inside its transaction, so
/// the count moves in the order writes commit. Read it before reading the
/// articles it is to vouch for.
pub fn writes_to_articles(conn: &mut SqliteConnection) -> StoreResult<i64> {
    Ok(article_writes::table
        .select(article_writes::count)
        .get_result(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_unpacks_as_it_was_packed_without_its_terms() {
        let items = vec![
            Related {
                id: 7,
                score: 0.75,
                same_category: true,
                ..Related::without_terms()
            },
            Related {
                id: -3,
                score: f32::MIN_POSITIVE,
                same_category: false,
                ..Related::without_terms()
            },
        ];
        assert_eq!(decode(&encode(&items)), Some(items));
        assert_eq!(decode(&[1, 2, 3]), None, "not whole items");
        assert_eq!(decode(&[]), Some(Vec::new()));
    }
}
