//! Per article, what its readers went on to read: the lists that "also
//! read" adds up. The most read articles' are computed ahead, lists with new
//! co-reading are computed again in the background, and the rest when first
//! asked for; all are kept in a cache the memory budget sizes.

use std::sync::Arc;

use chrono::NaiveDateTime;
use quick_cache::Weighter;
use rustc_hash::FxHashMap;

use super::{CO_READERS, Engine, Graph, NEIGHBOURS, REFRESH_BATCH};

/// An article's co-read articles, best first.
pub(super) type Neighbours = Arc<[(i32, f32)]>;

/// The most the neighbour lists kept may weigh: 150,000 full lists (the
/// memory budget may allow less, see [`crate::memory`]). A million
/// articles' would weigh 800 MB; the lists of articles nobody reads now are
/// computed again when somebody does (tens of microseconds).
pub const NEIGHBOURS_BYTES: u64 = 128 << 20;

/// Weighs a neighbour list by its bytes, with its entry and `Arc` header.
#[derive(Clone)]
pub(super) struct NeighboursSize;

impl Weighter<i32, Neighbours> for NeighboursSize {
    fn weight(&self, _: &i32, list: &Neighbours) -> u64 {
        (48 + std::mem::size_of_val::<[(i32, f32)]>(list)) as u64
    }
}

impl Engine {
    /// Computes the neighbours of the most read articles, most read first,
    /// until the lists kept nearly fill the memory they are given. Run once
    /// the history is loaded and the memory budget has sized the lists'
    /// cache (see [`crate::memory`]).
    pub fn compute_ahead(&self, now: NaiveDateTime) {
        const CHUNK: usize = 10_000;
        let mut articles: Vec<(usize, i32)> = {
            let graph = self.graph.read();
            graph
                .articles()
                .map(|article| (graph.audience(article).len(), article))
                .collect()
        };
        articles.sort_unstable_by(|a, b| b.cmp(a));
        for chunk in articles.chunks(CHUNK) {
            if self.neighbours.weight() >= self.neighbours.capacity() / 10 * 9 {
                break;
            }
            let ids: Vec<i32> = chunk.iter().map(|(_, article)| *article).collect();
            self.compute_neighbours(&ids, now);
        }
    }

    /// Recomputes the neighbours of `articles`, on every core.
    fn compute_neighbours(&self, articles: &[i32], now: NaiveDateTime) {
        let decay = self.decay(now);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = articles.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for part in articles.chunks(chunk) {
                scope.spawn(move || {
                    for article in part {
                        // The lock is taken per article, so that a view
                        // being recorded never waits for a whole batch.
                        let graph = self.graph.read();
                        let list = neighbours(&graph, *article, decay);
                        drop(graph);
                        self.neighbours.insert(*article, list);
                    }
                });
            }
        });
    }

    /// Recomputes the kept lists of articles with new co-reading, at most
    /// `REFRESH_BATCH` marked at a time; returns how many it recomputed.
    /// Lists not kept are left to be computed when asked for.
    pub fn refresh(&self, now: NaiveDateTime) -> usize {
        let batch: Vec<i32> = {
            let mut dirty = self.dirty.lock();
            let batch: Vec<i32> = dirty.iter().copied().take(REFRESH_BATCH).collect();
            for article in &batch {
                dirty.remove(article);
            }
            batch
        };
        let kept: Vec<i32> = batch
            .iter()
            .copied()
            .filter(|article| self.neighbours.contains_key(article))
            .collect();
        self.compute_neighbours(&kept, now);
        kept.len()
    }

    /// The neighbours of `article`, computed now if they are not kept.
    pub(super) fn neighbours_of(&self, article: i32, now: NaiveDateTime) -> Neighbours {
        if let Some(list) = self.neighbours.get(&article) {
            return list;
        }
        let graph = self.graph.read();
        let list = neighbours(&graph, article, self.decay(now));
        drop(graph);
        self.neighbours.insert(article, Arc::clone(&list));
        list
    }
}

/// What readers of `article` went on to read: its latest [`CO_READERS`]
/// readers, and what each read after it. A read adds its weight,
/// discounted by its age and by how much its reader reads; a candidate's
/// sum is divided by the square root of its own audience, so that what
/// everyone reads does not crowd out what these readers read in particular.
/// The best [`NEIGHBOURS`], best first.
fn neighbours(graph: &Graph, article: i32, decay: impl Fn(u32) -> f32) -> Neighbours {
    let mut scores: FxHashMap<i32, f32> = FxHashMap::default();
    for co_reader in graph.audience(article).iter().rev().take(CO_READERS) {
        let history = graph.history(co_reader.reader);
        let activity = (history.len() as f32).sqrt();
        for read in history {
            if read.article != article && read.at >= co_reader.at {
                *scores.entry(read.article).or_default() += read.weight * decay(read.at) / activity;
            }
        }
    }
    let mut ranked: Vec<(i32, f32)> = scores
        .into_iter()
        .map(|(other, score)| {
            let audience = (graph.audience(other).len().max(1) as f32).sqrt();
            (other, score / audience)
        })
        .filter(|(_, score)| *score > 0.0)
        .collect();
    let by_score = |a: &(i32, f32), b: &(i32, f32)| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0));
    if ranked.len() > NEIGHBOURS {
        ranked.select_nth_unstable_by(NEIGHBOURS, by_score);
        ranked.truncate(NEIGHBOURS);
    }
    ranked.sort_unstable_by(by_score);
    ranked.into()
}

/// The reading graph grows with the store.
impl crate::memory::Grown for Engine {
    fn heap_bytes(&self) -> u64 {
        self.graph.read().heap_bytes()
    }
}

/// The neighbour lists kept are a cache.
impl crate::memory::Resizable for Engine {
    fn resize(&self, bytes: u64) {
        self.neighbours.set_capacity(bytes);
    }

    fn held(&self) -> u64 {
        self.neighbours.weight()
    }

    /// A list for every article someone read: each of the size of those
    /// kept (a sixteenth more), or full while none are.
    fn wanted(&self) -> Option<u64> {
        let read = self.graph.read().articles().count() as u64;
        let each = self
            .neighbours
            .weight()
            .checked_div(self.neighbours.len() as u64)
            .unwrap_or_else(|| NeighboursSize.weight(&0, &Arc::from(vec![(0, 0.0); NEIGHBOURS])));
        Some(read * (each + each / 16))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Params, Signal};
    use super::*;
    use crate::ranking::Decay;

    fn engine() -> Engine {
        Engine::new(Params {
            half_life_days: 7.0,
            category_share: 0.5,
            decay: Decay {
                half_life_hours: 24.0,
                reaction_weight: 5.0,
            },
        })
    }

    #[test]
    fn neighbour_lists_follow_new_reads_after_a_refresh() {
        let engine = engine();
        let now = crate::db::now();
        let at = |minutes: i64| now - chrono::TimeDelta::minutes(minutes);
        engine.record("r1", 1, at(30), Signal::View);
        engine.record("r1", 2, at(20), Signal::View);
        let ids = |list: Neighbours| list.iter().map(|(id, _)| *id).collect::<Vec<_>>();
        assert_eq!(ids(engine.neighbours_of(1, now)), vec![2]);

        // Two readers go on from 1 to 3: 3 overtakes 2 once refreshed.
        for reader in ["r2", "r3"] {
            engine.record(reader, 1, at(10), Signal::View);
            engine.record(reader, 3, at(5), Signal::View);
        }
        assert_eq!(
            ids(engine.neighbours_of(1, now)),
            vec![2],
            "kept until refreshed"
        );
        assert_eq!(engine.refresh(now), 1, "the one list kept is recomputed");
        assert_eq!(ids(engine.neighbours_of(1, now)), vec![3, 2]);
        // What was read before is not what readers went on to read.
        assert!(ids(engine.neighbours_of(3, now)).is_empty());
    }
}
