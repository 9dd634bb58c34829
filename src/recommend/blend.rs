//! Candidates from several sources, added up into one ranked list: each
//! source scaled so that its best candidate scores its weight, and each
//! candidate's reason the source that gave it most.

use std::collections::hash_map::Entry;

use rustc_hash::{FxHashMap, FxHashSet};

use super::Source;

/// A blended candidate: its article, total score and the source that gave
/// it most.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) article_id: i32,
    pub(super) score: f32,
    pub(super) source: Source,
}

/// Per article: a total score, and the source that gave most with what it
/// gave.
pub(super) type Scores = FxHashMap<i32, (f32, Source, f32)>;

/// A source's sums over candidates that are neither excluded nor worth
/// nothing, and the best of them.
pub(super) struct Summed {
    scores: Scores,
    best: f32,
}

impl Summed {
    /// Sums whose entries hold, besides the total, the part of the source
    /// that gave most (one seed of several, say). Against the other
    /// sources of a blend, what counts is what this source gave in all:
    /// each part becomes its total.
    pub(super) fn new(mut scores: Scores) -> Self {
        let mut best = 0.0f32;
        for (total, _, part) in scores.values_mut() {
            *part = *total;
            // Not `f32::max`: no sum is NaN, and its NaN handling made this
            // pass over thousands of sums a chain of dependent steps.
            if *total > best {
                best = *total;
            }
        }
        Self { scores, best }
    }
}

/// Candidates from several sources, summed. Sums are kept in the units of
/// the first source, which `scale` turns into blend scores: the largest
/// source is neither copied nor scaled entry by entry.
pub(super) struct Blend {
    excluded: FxHashSet<i32>,
    scores: Scores,
    scale: f32,
}

impl Blend {
    /// The blend of a first source's sums, whose best scores `weight`.
    pub(super) fn starting_with(excluded: FxHashSet<i32>, weight: f32, summed: Summed) -> Self {
        let scale = if summed.best > 0.0 {
            weight / summed.best
        } else {
            1.0
        };
        Self {
            excluded,
            scores: summed.scores,
            scale,
        }
    }

    /// Adds a source's candidates, scaled so that its best scores `weight`.
    pub(super) fn add<I>(&mut self, weight: f32, candidates: I)
    where
        I: Iterator<Item = (i32, f32, Source)> + Clone,
    {
        let wanted =
            candidates.filter(|(id, score, _)| *score > 0.0 && !self.excluded.contains(id));
        let best = wanted
            .clone()
            .map(|(_, score, _)| score)
            .fold(0.0, f32::max);
        if best <= 0.0 {
            return;
        }
        // In the blend's units (see `scale`).
        let factor = weight / best / self.scale;
        for (id, score, source) in wanted {
            let part = score * factor;
            match self.scores.entry(id) {
                Entry::Vacant(entry) => {
                    entry.insert((part, source, part));
                }
                Entry::Occupied(entry) => {
                    let (total, best_source, best_part) = entry.into_mut();
                    *total += part;
                    if part > *best_part {
                        *best_source = source;
                        *best_part = part;
                    }
                }
            }
        }
    }

    /// The best `limit` candidates, best first; ties go to the higher id.
    /// Selected as integers: a positive score's bits order as the score
    /// does (every sum is above zero), and ids are positive, so score and
    /// id make one key, compared as one integer (measured: 14% of a
    /// recommendation's CPU for the old two-key comparator).
    pub(super) fn ranked(self, limit: usize) -> Vec<Candidate> {
        let key = |id: i32, score: f32| {
            debug_assert!(score > 0.0 && id > 0, "key of {id} at {score}");
            (u64::from(score.to_bits()) << 32) | u64::from(id as u32)
        };
        let mut keys: Vec<u64> = self
            .scores
            .iter()
            .map(|(id, (score, _, _))| key(*id, *score))
            .collect();
        if keys.len() > limit {
            keys.select_nth_unstable_by(limit, |a, b| b.cmp(a));
            keys.truncate(limit);
        }
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.into_iter()
            .map(|key| {
                let article_id = key as u32 as i32;
                let (score, source, _) = self.scores[&article_id];
                Candidate {
                    article_id,
                    score: score * self.scale,
                    source,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blend_ranks_by_score_then_higher_id_and_keeps_each_best_source() {
        let also_read = Source::AlsoRead(9);
        // Article 1's also-read sum came from two seeds, 1.0 each.
        let summed = Summed::new(
            [
                (1, (2.0, also_read, 1.0)),
                (2, (4.0, also_read, 4.0)),
                (3, (2.0, also_read, 2.0)),
            ]
            .into_iter()
            .collect(),
        );
        let mut blend = Blend::starting_with([5].into_iter().collect(), 1.0, summed);
        blend.add(
            0.5,
            [
                (1, 1.0, Source::Trending),
                (5, 1.0, Source::Trending),
                (4, 0.5, Source::Trending),
                (3, 0.8, Source::Trending),
            ]
            .into_iter(),
        );
        let ranked: Vec<(i32, f32, Source)> = blend
            .ranked(3)
            .into_iter()
            .map(|c| (c.article_id, c.score, c.source))
            .collect();
        // 1 ties 2 at 1.0: 0.5 from also-read in all (though no seed gave
        // more than 0.25) and 0.5 from trending, equal, so the first stays.
        // 3 gets 0.5 + 0.4, most from also-read; 4 (0.25) is cut; 5 is
        // excluded.
        assert_eq!(
            ranked,
            vec![
                (2, 1.0, also_read),
                (1, 1.0, also_read),
                (3, 0.9, also_read)
            ]
        );
    }
}
