//! The week's trending articles, everywhere and per category: candidates
//! for every list, and all there is for a reader with no history. Summed
//! from the stored buckets in the background, every [`TRENDING_EVERY`], and
//! after a content write (an article may have moved to another category).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::NaiveDateTime;
use diesel::sqlite::SqliteConnection;
use rustc_hash::FxHashMap;

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
/// (see [`Engine::content_changed`]) its sum began in.
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
        tree: &CategoryTree,
        category: Option<i32>,
        now: NaiveDateTime,
    ) -> StoreResult<Vec<(i32, f32)>> {
        let trending = self.trending_everywhere(conn, now)?;
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
        within.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        within.truncate(BACKGROUND_ITEMS);
        Ok(within)
    }

    /// The week's trending articles, everywhere and per category: the last
    /// list summed. Summing the week's buckets takes a while on a large
    /// store (seconds at a million articles), so requests never sum it
    /// again: the background thread does (see [`Engine::refresh_trending`]).
    /// Only before the first list do requests wait for one to be summed.
    fn trending_everywhere(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
    ) -> StoreResult<TrendingList> {
        if let Some(list) = self.trending_list() {
            return Ok(list);
        }
        let _first = self.first_trending.lock().expect("first trending lock");
        match self.trending_list() {
            Some(list) => Ok(list),
            None => self.sum_trending(conn, now),
        }
    }

    fn trending_list(&self) -> Option<TrendingList> {
        self.trending.lock().expect("trending lock").list.clone()
    }

    /// Sums the week's trending articles again if the last sum is
    /// [`TRENDING_EVERY`] old, began before the last content write (which
    /// may have moved an article to another category), or if there is none
    /// yet.
    pub(super) fn refresh_trending(
        &self,
        conn: &mut SqliteConnection,
        now: NaiveDateTime,
    ) -> StoreResult<()> {
        let due = {
            let trending = self.trending.lock().expect("trending lock");
            trending.list.is_none()
                || trending.computed_at.elapsed() >= TRENDING_EVERY
                || trending.generation != self.generation.load(Ordering::SeqCst)
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
