//! Where candidates are filed and whether public readers can see them now:
//! what the caller already knows (its article cache), else the store, asked
//! about the rest at once.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use rustc_hash::FxHashMap;

use crate::content::Status;
use crate::db::StoreResult;
use crate::db::in_ids::InIdsExt;
use crate::db::schema::articles;

/// Where an article is filed, and whether public readers can see it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub category_id: i32,
    pub public: bool,
}

/// What the caller already knows of articles' [`Placement`]s (from its
/// article cache, say), asked of many at once, so that a recommendation asks
/// the store only about the others, and told what the store said of those,
/// so that the next one need not ask again.
pub trait KnownPlacements {
    /// The placements of `ids` it knows, in order.
    fn placements(&self, ids: &[i32]) -> Vec<Option<Placement>>;
    /// What the store said of articles it did not know, in a read begun
    /// after this was made.
    fn learn(&self, filings: &[Filing]);
}

/// An article as the store files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filing {
    pub id: i32,
    pub category_id: i32,
    /// From when public readers see it; `None` unless it is published.
    pub public_from: Option<NaiveDateTime>,
}

/// Knows nothing, and learns nothing.
pub struct NothingKnown;

impl KnownPlacements for NothingKnown {
    fn placements(&self, ids: &[i32]) -> Vec<Option<Placement>> {
        vec![None; ids.len()]
    }

    fn learn(&self, _: &[Filing]) {}
}

/// [`KnownPlacements`], as recommendations are given it.
pub type Known<'a> = &'a dyn KnownPlacements;

/// The placements of the articles `ids` that exist: those `known` has, and
/// the others from the store with one statement.
pub(super) fn placements(
    conn: &mut SqliteConnection,
    ids: &[i32],
    known: Known<'_>,
    now: NaiveDateTime,
) -> StoreResult<FxHashMap<i32, Placement>> {
    let mut found = FxHashMap::default();
    let mut unknown = Vec::new();
    for (&id, placement) in ids.iter().zip(known.placements(ids)) {
        match placement {
            Some(placement) => {
                found.insert(id, placement);
            }
            None => unknown.push(id),
        }
    }
    if !unknown.is_empty() {
        let rows: Vec<(i32, i32, String, Option<NaiveDateTime>)> = articles::table
            .filter(articles::id.in_ids(&unknown))
            .select((
                articles::id,
                articles::category_id,
                articles::status,
                articles::published_at,
            ))
            .load(conn)?;
        let filings: Vec<Filing> = rows
            .into_iter()
            .map(|(id, category_id, status, published_at)| Filing {
                id,
                category_id,
                public_from: published_at.filter(|_| status == Status::Published.as_str()),
            })
            .collect();
        for filing in &filings {
            let public = filing.public_from.is_some_and(|at| at <= now);
            found.insert(
                filing.id,
                Placement {
                    category_id: filing.category_id,
                    public,
                },
            );
        }
        known.learn(&filings);
    }
    Ok(found)
}
