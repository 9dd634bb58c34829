//! How a reader's list is made: candidates from every source blended,
//! then the best picked under the category cap.

use chrono::NaiveDateTime;
use diesel::sqlite::SqliteConnection;
use rustc_hash::{FxHashMap, FxHashSet};

use super::blend::{Blend, Candidate};
use super::graph::Read;
use super::neighbours::Neighbours;
use super::placements::placements;
use super::{
    ALSO_READ_WEIGHT, CANDIDATES_PER_ITEM, Engine, FRESH_WEIGHT, Known, Recommendations,
    Recommended, SEEDS, SIMILAR_ITEMS, SIMILAR_SEEDS, SIMILAR_WEIGHT, Source, Strategy,
    TASTE_CATEGORIES, TASTE_READS, TRENDING_IN_WEIGHT, TRENDING_WEIGHT,
};
use crate::db::StoreResult;

impl Engine {
    /// Up to `limit` articles for `reader`, who is reading `context`.
    pub fn recommend(
        &self,
        conn: &mut SqliteConnection,
        sources: Sources<'_>,
        reader: &str,
        context: Option<i32>,
        limit: usize,
        now: NaiveDateTime,
    ) -> StoreResult<Recommendations> {
        let decay = self.decay(now);
        let history = self.history_of(reader);
        let seeds = seeds(&history, context, decay);
        let strategy = if history.is_empty() {
            Strategy::ColdStart
        } else {
            Strategy::Personalized
        };
        let excluded = history.iter().map(|read| read.article).chain(context);
        let also_read = self.also_read(&seeds, now);
        let parts = also_read.iter().flat_map(|(seed, weight, list)| {
            let (source, weight) = (Source::AlsoRead(*seed), *weight);
            list.iter()
                .map(move |(article, score)| (*article, weight * score, source))
        });
        let mut blend = Blend::starting_with(excluded, ALSO_READ_WEIGHT, parts);
        add_similar(&mut blend, &seeds, sources.related);
        let shared = self.shared(conn, now)?;
        let tree = &shared.tree;
        for (category, share) in self.tastes(conn, sources.known, &history, now)? {
            if tree.get(category).is_none() {
                continue;
            }
            let trending = self.trending(conn, sources.known, tree, Some(category), now)?;
            // A category counts as much as it has of the reader's reads.
            blend.add(
                TRENDING_IN_WEIGHT * share,
                trending
                    .iter()
                    .map(|(id, score)| (*id, *score, Source::TrendingIn(category))),
            );
        }
        let trending = self.trending(conn, sources.known, tree, None, now)?;
        blend.add(
            TRENDING_WEIGHT,
            trending
                .iter()
                .map(|(id, score)| (*id, *score, Source::Trending)),
        );
        blend.add(
            FRESH_WEIGHT,
            shared
                .fresh
                .iter()
                .map(|(id, score)| (*id, *score, Source::Fresh)),
        );

        let mut ranked = blend.ranked(limit * CANDIDATES_PER_ITEM);
        let mut picked = self.pick(conn, sources.known, &ranked, limit, now)?;
        if picked.len() < limit {
            // Too few candidates: a small site, or a reader who has read
            // most of the newest articles. Older ones fill the list.
            let mut left_out: FxHashSet<i32> = history.iter().map(|read| read.article).collect();
            left_out.extend(context);
            left_out.extend(ranked.iter().map(|candidate| candidate.article_id));
            let floor = ranked.last().map_or(FRESH_WEIGHT, |last| last.score);
            ranked.extend(older(conn, &left_out, limit - picked.len(), floor, now)?);
            picked = self.pick(conn, sources.known, &ranked, limit, now)?;
        }
        let items = picked
            .into_iter()
            .map(|candidate| Recommended {
                article_id: candidate.article_id,
                score: candidate.score,
                reason: candidate.source.reason(tree),
            })
            .collect();
        Ok(Recommendations { strategy, items })
    }

    /// What `reader` has read, newest first.
    fn history_of(&self, reader: &str) -> Vec<Read> {
        let mut history = {
            let graph = self.graph.read();
            graph
                .reader(reader)
                .map_or_else(Vec::new, |n| graph.history(n).to_vec())
        };
        history.sort_by(|a, b| b.at.cmp(&a.at).then(b.article.cmp(&a.article)));
        history
    }

    /// The categories of the reader's [`TASTE_READS`] latest reads, with
    /// each one's share of them (see [`favourites`]).
    fn tastes(
        &self,
        conn: &mut SqliteConnection,
        known: Known<'_>,
        history: &[Read],
        now: NaiveDateTime,
    ) -> StoreResult<Vec<(i32, f32)>> {
        let mut recent: Vec<i32> = history
            .iter()
            .take(TASTE_READS)
            .map(|read| read.article)
            .collect();
        recent.sort_unstable();
        recent.dedup();
        let categories: Vec<i32> = placements(conn, &recent, known, now)?
            .values()
            .map(|placement| placement.category_id)
            .collect();
        Ok(favourites(&categories))
    }

    /// What readers of the seeds went on to read: the seeds' neighbour
    /// lists, with the weight of each seed, for the blend to sum per
    /// article ([`Source::AlsoRead`] naming the seed that gave most).
    fn also_read(&self, seeds: &[(i32, f32)], now: NaiveDateTime) -> Vec<(i32, f32, Neighbours)> {
        // Every list is looked up before any is summed, and each list's
        // cache lines are asked for as soon as it is found: they arrive
        // while the next is looked up, rather than one at a time as the sum
        // reaches them (most lists are in no CPU cache). Measured at 100k
        // articles: 42 µs a recommendation before, 36 µs after.
        seeds
            .iter()
            .map(|(seed, weight)| {
                let list = self.neighbours_of(*seed, now);
                prefetch(&list);
                (*seed, *weight, list)
            })
            .collect()
    }

    /// The best `limit` candidates that public readers can see, at most a
    /// share of them from one category. Only when the first candidates hold
    /// too few other categories to fill the list does the cap give way,
    /// best first: a short list would be no more diverse.
    fn pick(
        &self,
        conn: &mut SqliteConnection,
        known: Known<'_>,
        ranked: &[Candidate],
        limit: usize,
        now: NaiveDateTime,
    ) -> StoreResult<Vec<Candidate>> {
        let per_category = self.params.max_per_category(limit);
        let mut taken: FxHashMap<i32, usize> = FxHashMap::default();
        let mut picked = Vec::with_capacity(limit);
        let mut over_cap = Vec::new();
        // Mostly the first chunk fills the list: placements are asked for a
        // few more candidates than it needs.
        for batch in ranked.chunks(limit * 2 + 4) {
            let ids: Vec<i32> = batch.iter().map(|item| item.article_id).collect();
            let placements = placements(conn, &ids, known, now)?;
            for item in batch {
                let Some(placement) = placements
                    .get(&item.article_id)
                    .filter(|placement| placement.public)
                else {
                    continue;
                };
                let count = taken.entry(placement.category_id).or_default();
                if *count < per_category {
                    *count += 1;
                    picked.push(*item);
                } else {
                    over_cap.push(*item);
                }
                if picked.len() == limit {
                    return Ok(picked);
                }
            }
        }
        let missing = limit - picked.len();
        picked.extend(over_cap.into_iter().take(missing));
        picked.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.article_id.cmp(&a.article_id))
        });
        Ok(picked)
    }
}

/// Public articles to fill a list `wanted` short, newest first, none of
/// them in `left_out`, as [`Source::Fresh`]: scored below `floor` (the
/// last candidate's score) and less each, so that they come after every
/// candidate the sources gave, in order. Looks through the 1,000 newest
/// at most.
fn older(
    conn: &mut SqliteConnection,
    left_out: &FxHashSet<i32>,
    wanted: usize,
    floor: f32,
    now: NaiveDateTime,
) -> StoreResult<Vec<Candidate>> {
    const PAGE: usize = 200;
    let mut found = Vec::with_capacity(wanted);
    for page in 0..5 {
        let ids = super::newest(conn, now, PAGE, page * PAGE)?;
        let last_page = ids.len() < PAGE;
        for id in ids.into_iter().filter(|id| !left_out.contains(id)) {
            found.push(Candidate {
                article_id: id,
                score: floor / (found.len() + 2) as f32,
                source: Source::Fresh,
            });
        }
        // Twice what is missing: the category cap may pass some over.
        if last_page || found.len() >= wanted * 2 {
            break;
        }
    }
    Ok(found)
}

/// The articles that seed a reader's list, newest first, each weighted by
/// how recently it was read; the context article first, at full weight.
fn seeds(history: &[Read], context: Option<i32>, decay: impl Fn(u32) -> f32) -> Vec<(i32, f32)> {
    context
        .map(|id| (id, 1.0))
        .into_iter()
        .chain(
            history
                .iter()
                .filter(|read| Some(read.article) != context)
                .map(|read| (read.article, read.weight * decay(read.at))),
        )
        .take(SEEDS)
        .collect()
}

/// Starts loading the cache lines `items` spans, without waiting for them.
#[inline]
fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        let bytes = std::mem::size_of_val(items);
        if bytes == 0 {
            return;
        }
        // From the start of the line the first item begins in: a list
        // seldom begins a line (an `Arc`'s counts come first).
        let skew = items.as_ptr() as usize % LINE;
        let first = items.as_ptr().cast::<i8>().wrapping_sub(skew);
        for offset in (0..skew + bytes).step_by(LINE) {
            // SAFETY: a prefetch has no effect the program can see and
            // never faults, whatever the address; SSE is part of x86-64.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

/// What a recommendation reads in memory besides the reading history.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The Related lists, for "similar to" a recent read.
    pub related: &'a crate::related::Engine,
    /// Articles' placements the caller already has.
    pub known: Known<'a>,
}

/// Adds to `blend` what is similar to the first [`SIMILAR_SEEDS`] seeds:
/// only lists already made, as computing an old article's list takes
/// milliseconds, too long for one source of many.
fn add_similar(blend: &mut Blend, seeds: &[(i32, f32)], related: &crate::related::Engine) {
    let similar: Vec<_> = seeds
        .iter()
        .take(SIMILAR_SEEDS)
        .filter_map(|(seed, weight)| Some((*seed, *weight, related.stored(*seed, SIMILAR_ITEMS)?)))
        .collect();
    blend.add(
        SIMILAR_WEIGHT,
        similar.iter().flat_map(|(seed, weight, list)| {
            let (seed, weight) = (*seed, *weight);
            list.iter()
                .take(SIMILAR_ITEMS)
                .map(move |item| (item.id, weight * item.score, Source::SimilarTo(seed)))
        }),
    );
}

/// The categories read most, with their share of the reads, most first.
fn favourites(categories: &[i32]) -> Vec<(i32, f32)> {
    let mut counts: FxHashMap<i32, usize> = FxHashMap::default();
    for category in categories {
        *counts.entry(*category).or_default() += 1;
    }
    let mut ranked: Vec<(i32, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(TASTE_CATEGORIES)
        .map(|(category, count)| (category, count as f32 / categories.len() as f32))
        .collect()
}
