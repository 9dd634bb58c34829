//! The week's trending articles, everywhere and per category: candidates
//! for every list, and all there is for a reader with no history. Summed
//! from the stored buckets in the background every [`TRENDING_EVERY`];
//! after a content write, the next request files the last sum's articles
//! again under their categories now (an article may have moved to another,
//! or been unpublished), which takes one read of a few hundred articles'
//! placements, not a second sum.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::NaiveDateTime;
use diesel::sqlite::SqliteConnection;
use rustc_hash::FxHashMap;

use super::placements::{Known, placements};
use super::{BACKGROUND_ITEMS, Engine, TRENDING_EVERY};
use crate::db::taxonomy::CategoryTree;
use crate::db::{StoreResult, engagement};
use crate::ranking::{self, Metric, Ranked, Top, Window};

/// The week's trending articles with their scores (the best overall is 1),
/// best first: the top everywhere and the top of each category.
#[derive(Default)]
pub(super) struct TrendingLists {
    everywhere: Vec<(i32, f32)>,
    by_category: FxHashMap<i32, Vec<(i32, f32)>>,
}

pub(super) type TrendingList = Arc<TrendingLists>;

/// Per category, more than a list takes ([`BACKGROUND_ITEMS`]): an article
/// moved to another category, or one unpublished, still leaves a full list
/// when the sum is filed again ([`refiled`]).
const KEPT: usize = 2 * BACKGROUND_ITEMS;

/// The last trending sum, if there is one yet, and when it was made.
pub(super) struct Trending {
    pub(super) kept: Option<Kept>,
    pub(super) computed_at: Instant,
}

/// The last sum, and what requests are given of it.
#[derive(Clone)]
pub(super) struct Kept {
    /// As it was filed when the sum began.
    summed: TrendingList,
    /// Filed by the categories of content generation `filed_in` (see
    /// [`Engine::content_changed`]).
    filed: TrendingList,
    filed_in: u64,
}

impl Engine {
    /// The trending articles of a category's subtree (or of all), best
    /// first, with scores (the best overall is 1).
    pub(super) fn trending(
        &self,
        conn: &mut SqliteConnection,
        known: Known<'_>,
        tree: &CategoryTree,
        category: Option<i32>,
        now: NaiveDateTime,
    ) -> StoreResult<Vec<(i32, f32)>> {
        let trending = self.trending_everywhere(conn, known, now)?;
        let Some(category) = category else {
            return Ok(trending
                .everywhere
                .iter()
                .take(BACKGROUND_ITEMS)
                .copied()
                .collect());
        };
        let mut within: Vec<(i32, f32)> = tree
            .subtree_ids(category)
            .iter()
            .filter_map(|id| trending.by_category.get(id))
            .flatten()
            .copied()
            .collect();
        within.sort_unstable_by(best_first);
        within.truncate(BACKGROUND_ITEMS);
        Ok(within)
    }

    /// The week's trending articles, everywhere and per category: the last
    /// sum, filed by the articles' categories now. Summing the week's
    /// buckets takes a while on a large store (seconds at a million
    /// articles), so requests never sum it again: the background thread
    /// does (see [`Engine::refresh_trending`]). Only before the first sum
    /// do requests wait for one. After a content write, the first request
    /// files the last sum again ([`refiled`]) and the others wait for it:
    /// no response gives an article as trending in a category it has left.
    fn trending_everywhere(
        &self,
        conn: &mut SqliteConnection,
        known: Known<'_>,
        now: NaiveDateTime,
    ) -> StoreResult<TrendingList> {
        // Read before the placements are: a write committed meanwhile has
        // the next request file the list again.
        let generation = self.generation.load(Ordering::SeqCst);
        let kept = match self.trending_kept() {
            Some(kept) => kept,
            None => {
                let _first = self.first_trending.lock();
                match self.trending_kept() {
                    Some(kept) => kept,
                    None => return self.sum_trending(conn, now),
                }
            }
        };
        if kept.filed_in >= generation {
            return Ok(kept.filed);
        }
        let _refiling = self.refiling.lock();
        let kept = self.trending_kept().expect("a sum once made is kept");
        if kept.filed_in >= generation {
            return Ok(kept.filed);
        }
        // From the sum, not from the last filing: what that dropped (an
        // article unpublished, then published again) comes back.
        let filed = Arc::new(refiled(conn, &kept.summed, known, now)?);
        let mut trending = self.trending.lock();
        // Unless a sum has landed meanwhile, which is filed as it began.
        if let Some(current) = trending.kept.as_mut()
            && Arc::ptr_eq(&current.summed, &kept.summed)
        {
            current.filed = Arc::clone(&filed);
            current.filed_in = generation;
        }
        Ok(filed)
    }

    fn trending_kept(&self) -> Option<Kept> {
        self.trending.lock().kept.clone()
    }

    /// Sums the week's trending articles again if the last sum is
    /// [`TRENDING_EVERY`] old, or if there is none yet.
    pub(super) fn refresh_trending(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
    ) -> StoreResult<()> {
        let due = {
            let trending = self.trending.lock();
            trending.kept.is_none() || trending.computed_at.elapsed() >= TRENDING_EVERY
        };
        if due {
            // Requests that find no list wait for this one.
            let _first = self.first_trending.lock();
            self.sum_trending(conn, now)?;
        }
        Ok(())
    }

    fn sum_trending(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
    ) -> StoreResult<TrendingList> {
        // Read before summing: a write committed meanwhile has the next
        // request file the sum again.
        let generation = self.generation.load(Ordering::SeqCst);
        // The best of each category and of all, kept as the week's totals
        // are read: never all of them at once.
        let decay = self.params.decay;
        let mut everywhere = Top::new(KEPT);
        let mut by_category: FxHashMap<i32, Top> = FxHashMap::default();
        engagement::each_window_total(conn, Window::Week.span(now), None, now, |totals| {
            let Some(ranked) = ranking::ranked(totals, Metric::Trending, decay, now) else {
                return;
            };
            by_category
                .entry(ranked.totals.category_id)
                .or_insert_with(|| Top::new(KEPT))
                .offer(ranked.clone());
            everywhere.offer(ranked);
        })?;
        let everywhere = everywhere.into_ranked();
        // Scaled to the best before narrowing to f32: old articles' decayed
        // scores are too small for one.
        let best = everywhere.first().map_or(1.0, |r| r.score);
        let scaled = |ranked: Vec<Ranked>| -> Vec<(i32, f32)> {
            ranked
                .iter()
                .map(|r| (r.totals.article_id, (r.score / best) as f32))
                .collect()
        };
        let lists = TrendingLists {
            everywhere: scaled(everywhere),
            by_category: by_category
                .into_iter()
                .map(|(category, top)| (category, scaled(top.into_ranked())))
                .collect(),
        };
        let list = Arc::new(lists);
        let mut trending = self.trending.lock();
        *trending = Trending {
            kept: Some(Kept {
                summed: Arc::clone(&list),
                filed: Arc::clone(&list),
                filed_in: generation,
            }),
            computed_at: Instant::now(),
        };
        Ok(list)
    }
}

/// `list`'s articles under the categories they are in now, without those
/// public readers cannot see now, as a sum now would file them; each keeps
/// the score it was summed with. An article from past its old category's
/// [`KEPT`] best is in no list, so one moved from there joins its new
/// category's list only with the next sum.
fn refiled(
    conn: &mut SqliteConnection,
    list: &TrendingLists,
    known: Known<'_>,
    now: NaiveDateTime,
) -> StoreResult<TrendingLists> {
    let mut ids: Vec<i32> = list
        .everywhere
        .iter()
        .chain(list.by_category.values().flatten())
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let placements = placements(conn, &ids, known, now)?;
    let public = |id: i32| placements.get(&id).filter(|placement| placement.public);
    let everywhere = list
        .everywhere
        .iter()
        .filter(|(id, _)| public(*id).is_some())
        .copied()
        .collect();
    let mut by_category: FxHashMap<i32, Vec<(i32, f32)>> = FxHashMap::default();
    for &(id, score) in list.by_category.values().flatten() {
        if let Some(placement) = public(id) {
            by_category
                .entry(placement.category_id)
                .or_default()
                .push((id, score));
        }
    }
    for items in by_category.values_mut() {
        items.sort_unstable_by(best_first);
        items.truncate(KEPT);
    }
    Ok(TrendingLists {
        everywhere,
        by_category,
    })
}

/// Higher score first; ties to the higher id.
fn best_first(a: &(i32, f32), b: &(i32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(b.0.cmp(&a.0))
}
