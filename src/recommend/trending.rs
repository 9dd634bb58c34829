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

/// The last trending list, when it was summed, and the content generation
/// (see [`Engine::content_changed`]) whose categories it is filed by.
pub(super) struct Trending {
    pub(super) list: Option<TrendingList>,
    pub(super) computed_at: Instant,
    pub(super) generation: u64,
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
            return Ok(trending.everywhere.clone());
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
    /// list summed, filed by the articles' categories now. Summing the
    /// week's buckets takes a while on a large store (seconds at a million
    /// articles), so requests never sum it again: the background thread
    /// does (see [`Engine::refresh_trending`]). Only before the first list
    /// do requests wait for one to be summed. After a content write, the
    /// first request files the list again ([`refiled`]) and the others
    /// wait for it: no response gives an article as trending in a category
    /// it has left.
    fn trending_everywhere(
        &self,
        conn: &mut SqliteConnection,
        known: Known<'_>,
        now: NaiveDateTime,
    ) -> StoreResult<TrendingList> {
        // Read before the placements are: a write committed meanwhile has
        // the next request file the list again.
        let generation = self.generation.load(Ordering::SeqCst);
        let (list, filed_in) = match self.trending_list() {
            Some(kept) => kept,
            None => {
                let _first = self.first_trending.lock().expect("first trending lock");
                match self.trending_list() {
                    Some(kept) => kept,
                    None => return self.sum_trending(conn, now),
                }
            }
        };
        if filed_in >= generation {
            return Ok(list);
        }
        let _refiling = self.refiling.lock().expect("refiling lock");
        let (list, filed_in) = self.trending_list().expect("a list once summed is kept");
        if filed_in >= generation {
            return Ok(list);
        }
        let list_refiled = Arc::new(refiled(conn, &list, known, now)?);
        let mut trending = self.trending.lock().expect("trending lock");
        // Unless a sum has landed meanwhile, which is filed as it began.
        if trending
            .list
            .as_ref()
            .is_some_and(|kept| Arc::ptr_eq(kept, &list))
        {
            trending.list = Some(Arc::clone(&list_refiled));
            trending.generation = generation;
        }
        Ok(list_refiled)
    }

    /// The last list and the generation it is filed by.
    fn trending_list(&self) -> Option<(TrendingList, u64)> {
        let trending = self.trending.lock().expect("trending lock");
        Some((trending.list.clone()?, trending.generation))
    }

    /// Sums the week's trending articles again if the last sum is
    /// [`TRENDING_EVERY`] old, or if there is none yet.
    pub(super) fn refresh_trending(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
    ) -> StoreResult<()> {
        let due = {
            let trending = self.trending.lock().expect("trending lock");
            trending.list.is_none() || trending.computed_at.elapsed() >= TRENDING_EVERY
        };
        if due {
            // Requests that find no list wait for this one.
            let _first = self.first_trending.lock().expect("first trending lock");
            self.sum_trending(conn, now)?;
        }
        Ok(())
    }

    fn sum_trending(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
    ) -> StoreResult<TrendingList> {
        // Read before summing: a write committed meanwhile leaves the sum
        // due again.
        let generation = self.generation.load(Ordering::SeqCst);
        // The best of each category and of all, kept as the week's totals
        // are read: never all of them at once.
        let decay = self.params.decay;
        let mut everywhere = Top::new(BACKGROUND_ITEMS);
        let mut by_category: FxHashMap<i32, Top> = FxHashMap::default();
        engagement::each_window_total(conn, Window::Week.span(now), None, now, |totals| {
            let Some(ranked) = ranking::ranked(totals, Metric::Trending, decay, now) else {
                return;
            };
            by_category
                .entry(ranked.totals.category_id)
                .or_insert_with(|| Top::new(BACKGROUND_ITEMS))
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
        let mut trending = self.trending.lock().expect("trending lock");
        *trending = Trending {
            list: Some(Arc::clone(&list)),
            computed_at: Instant::now(),
            generation,
        };
        Ok(list)
    }
}

/// `list`'s articles under the categories they are in now, without those
/// public readers cannot see now, as a sum now would file them; each keeps
/// the score it was summed with. An article unpublished since leaves its
/// lists one short until the next sum.
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
        items.truncate(BACKGROUND_ITEMS);
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
