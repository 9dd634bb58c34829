//! How an article's Related list is made: its best matches by text and
//! topic (see [`super::index`]), each with bonuses for shared tags, the
//! same category and closeness in time; and the fingerprint that tells
//! whether a stored list still holds.

use chrono::NaiveDateTime;

use super::index::{Entry, Match};
use super::stored::StoredList;
use super::{Engine, Index, Related, SHARED_TERMS, STORED};
use crate::db;

/// Added per shared tag (at most three count).
const TAG_BONUS: f32 = 0.04;
/// Added when both articles are in the same category.
const CATEGORY_BONUS: f32 = 0.03;
/// Added, at most, for articles published close together in time; halves
/// every [`RECENCY_HALF_LIFE_DAYS`] apart.
const RECENCY_BONUS: f32 = 0.03;
const RECENCY_HALF_LIFE_DAYS: f32 = 14.0;
/// Most matches a list is made from when copies leave it under half full
/// (see [`Engine::compute`]).
const MOST_MATCHES: usize = STORED * 2 * 16;

impl Engine {
    /// The `count` articles most like article `id` by text, best first:
    /// those whose lists it may belong in.
    pub(super) fn reach(&self, id: i32, count: usize) -> Vec<i32> {
        let mut scratch = self.scratch.lend();
        let index = self.index.read();
        index.nearest(id, count, &mut scratch.scores)
    }

    /// Scores the candidates for article `id`'s list; with the list's
    /// [`fingerprint`].
    ///
    /// Twice as many matches as a list holds are scored, as the bonuses
    /// reorder them; a match that copies one scored above it is left out
    /// (see [`Match::copies`]). A list that copies leave under half full,
    /// with more matches to take, is made again from four times as many,
    /// up to [`MOST_MATCHES`]: matches that are mostly one daily series.
    /// Not for a few short: at 100k demo articles one list in twelve lost
    /// a few items to copies, and searching again for them cost a third
    /// more time over all lists.
    pub(super) fn compute(&self, id: i32) -> Option<(Vec<Related>, u64)> {
        let mut scratch = self.scratch.lend();
        let index = self.index.read();
        let query = index.get(id)?;
        let mut wanted = STORED * 2;
        let mut list = loop {
            let found = index.similar(id, wanted, &mut scratch.scores);
            let every_match = found.len() < wanted;
            let mut ranked: Vec<(Related, Match)> = found
                .into_iter()
                .filter_map(|found| Some((scored(&index, query, &found)?, found)))
                .collect();
            ranked.sort_by(|(a, _), (b, _)| b.score.total_cmp(&a.score).then(b.id.cmp(&a.id)));
            let mut kept: Vec<(Related, Match)> = Vec::with_capacity(STORED);
            for (item, found) in ranked {
                if kept.len() == STORED {
                    break;
                }
                if !kept.iter().any(|(_, above)| above.copies(&found)) {
                    kept.push((item, found));
                }
            }
            if kept.len() >= STORED / 2 || every_match || wanted >= MOST_MATCHES {
                break kept.into_iter().map(|(item, _)| item).collect::<Vec<_>>();
            }
            wanted = (wanted * 4).min(MOST_MATCHES);
        };
        // The items may sit in the room the matches took: kept so, a
        // million-article store's lists would hold more unused room than
        // items.
        list.shrink_to_fit();
        let fingerprint = fingerprint(&index, id, &list)?;
        Some((list, fingerprint))
    }

    /// [`Engine::compute`], as the list is stored.
    pub(super) fn compute_stored(&self, id: i32) -> Option<StoredList> {
        let (items, fingerprint) = self.compute(id)?;
        Some(StoredList {
            article_id: id,
            computed_at: db::now(),
            fingerprint,
            items,
        })
    }
}

/// `found`, a match of the `query` article, as an item of its list:
/// its similarity with the bonuses.
fn scored(index: &Index, query: &Entry, found: &Match) -> Option<Related> {
    let other = index.get(found.id)?;
    let shared_tags = other
        .tag_ids
        .iter()
        .filter(|tag| query.tag_ids.contains(tag))
        .count();
    let same_category = other.category_id == query.category_id;
    let apart_days = (query.published_at - other.published_at)
        .num_seconds()
        .unsigned_abs() as f32
        / 86_400.0;
    let score = found.similarity
        + TAG_BONUS * shared_tags.min(3) as f32
        + if same_category { CATEGORY_BONUS } else { 0.0 }
        + RECENCY_BONUS * 0.5f32.powf(apart_days / RECENCY_HALF_LIFE_DAYS);
    let mut terms = [0; SHARED_TERMS];
    let term_count = found.terms.len().min(SHARED_TERMS);
    terms[..term_count].copy_from_slice(&found.terms[..term_count]);
    Some(Related {
        id: found.id,
        score,
        terms,
        term_count: term_count as u8,
        same_category,
    })
}

/// What a list of article `id` was computed from: the ids and `updated_at`s
/// of the article and its items as `index` has them, hashed; `None` when
/// one of them is not indexed (any more).
pub(super) fn fingerprint(index: &Index, id: i32, items: &[Related]) -> Option<u64> {
    fingerprint_of(id, items, |id| index.get(id).map(|entry| entry.updated_at))
}

/// [`fingerprint`], with each article's `updated_at` told by `updated_at`:
/// `None` for one that is not visible.
pub(super) fn fingerprint_of(
    id: i32,
    items: &[Related],
    updated_at: impl Fn(i32) -> Option<NaiveDateTime>,
) -> Option<u64> {
    let mut bytes = Vec::with_capacity((items.len() + 1) * 12);
    for id in std::iter::once(id).chain(items.iter().map(|item| item.id)) {
        let updated_at = updated_at(id)?.and_utc().timestamp_micros();
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&updated_at.to_le_bytes());
    }
    Some(xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// Whether a stored list still holds: its article and items are indexed as
/// they were when it was computed.
pub(super) fn holds(index: &Index, list: &StoredList) -> bool {
    fingerprint(index, list.article_id, &list.items) == Some(list.fingerprint)
}
