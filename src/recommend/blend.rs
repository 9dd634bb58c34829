//! Candidates from several sources, added up into one ranked list: each
//! source scaled so that its best candidate scores its weight, and each
//! candidate's reason the source that gave it most.
//!
//! A list sums thousands of parts (twenty seeds' neighbour lists of a
//! hundred, then the other sources), so the sums are kept in a table
//! indexed by article id rather than in a hash map: adding a part is one
//! array read. Each thread keeps its table between lists (4 bytes per id,
//! 4 MB at a million articles) and clears only the entries a list touched.

use std::cell::Cell;

use super::Source;

/// A blended candidate: its article, total score and the source that gave
/// it most.
#[derive(Debug, Clone, Copy)]
pub(super) struct Candidate {
    pub(super) article_id: i32,
    pub(super) score: f32,
    pub(super) source: Source,
}

/// One article's sum so far.
#[derive(Debug, Clone, Copy)]
struct Sum {
    article_id: i32,
    total: f32,
    /// The source that gave most, and what it gave.
    source: Source,
    best_part: f32,
}

/// A slot of an article never added to.
const UNSEEN: u32 = 0;
/// A slot of an article left out of the list.
const EXCLUDED: u32 = u32::MAX;

/// The sums of one list: per article id, a slot saying where its sum is in
/// `sums` (one past its index), or that it is [`UNSEEN`] or [`EXCLUDED`].
#[derive(Default)]
struct Tally {
    slots: Vec<u32>,
    sums: Vec<Sum>,
    excluded: Vec<i32>,
}

thread_local! {
    /// The table the last list on this thread used, cleared, kept for the
    /// next.
    static SPARE: Cell<Tally> = Cell::default();
}

impl Tally {
    /// The slot of article `id`, the table grown to hold it; `None` for an
    /// id no article has (ids are positive).
    #[inline(always)]
    fn slot(slots: &mut Vec<u32>, id: i32) -> Option<&mut u32> {
        let index = usize::try_from(id).ok().filter(|index| *index > 0)?;
        if index >= slots.len() {
            slots.resize((index + 1).next_power_of_two(), UNSEEN);
        }
        Some(&mut slots[index])
    }

    fn exclude(&mut self, id: i32) {
        if let Some(slot) = Self::slot(&mut self.slots, id)
            && *slot != EXCLUDED
        {
            *slot = EXCLUDED;
            self.excluded.push(id);
        }
    }

    fn is_excluded(&self, id: i32) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|index| self.slots.get(index))
            .is_some_and(|slot| *slot == EXCLUDED)
    }

    /// Adds `part` to article `id`'s sum, unless it is excluded. Inlined
    /// into the loops over parts, so that the loads of the next parts'
    /// slots overlap this one's.
    #[inline(always)]
    fn add(&mut self, id: i32, part: f32, source: Source) {
        let Some(slot) = Self::slot(&mut self.slots, id) else {
            return;
        };
        match *slot {
            EXCLUDED => {}
            UNSEEN => {
                self.sums.push(Sum {
                    article_id: id,
                    total: part,
                    source,
                    best_part: part,
                });
                *slot = self.sums.len() as u32;
            }
            at => {
                let sum = &mut self.sums[at as usize - 1];
                sum.total += part;
                if part > sum.best_part {
                    sum.source = source;
                    sum.best_part = part;
                }
            }
        }
    }

    /// The sum of article `id`, which was added to.
    fn sum(&self, id: i32) -> &Sum {
        &self.sums[self.slots[id as usize] as usize - 1]
    }

    /// Empties every slot a list used, ready for the next.
    fn clear(&mut self) {
        for id in self
            .sums
            .iter()
            .map(|sum| sum.article_id)
            .chain(self.excluded.iter().copied())
        {
            self.slots[id as usize] = UNSEEN;
        }
        self.sums.clear();
        self.excluded.clear();
    }
}

/// Candidates from several sources, summed. Sums are kept in the units of
/// the first source, which `scale` turns into blend scores: the largest
/// source is neither copied nor scaled entry by entry.
pub(super) struct Blend {
    tally: Tally,
    scale: f32,
}

impl Blend {
    /// The blend of a first source whose best candidate scores `weight`:
    /// its parts added up per article (the reason of each, the part that
    /// gave most), leaving out the articles in `excluded`. Against the other
    /// sources, what counts is what this source gave an article in all.
    pub(super) fn starting_with(
        excluded: impl IntoIterator<Item = i32>,
        weight: f32,
        parts: impl IntoIterator<Item = (i32, f32, Source)>,
    ) -> Self {
        let mut tally = SPARE.take();
        for id in excluded {
            tally.exclude(id);
        }
        for (id, part, source) in parts {
            if part > 0.0 {
                tally.add(id, part, source);
            }
        }
        let mut best = 0.0f32;
        for sum in &mut tally.sums {
            sum.best_part = sum.total;
            // Not `f32::max`: no sum is NaN, and its NaN handling made this
            // pass over thousands of sums a chain of dependent steps.
            if sum.total > best {
                best = sum.total;
            }
        }
        let scale = if best > 0.0 { weight / best } else { 1.0 };
        Self { tally, scale }
    }

    /// Adds a source's candidates, scaled so that its best scores `weight`.
    pub(super) fn add<I>(&mut self, weight: f32, candidates: I)
    where
        I: Iterator<Item = (i32, f32, Source)> + Clone,
    {
        let best = candidates
            .clone()
            .filter(|(id, score, _)| *score > 0.0 && !self.tally.is_excluded(*id))
            .map(|(_, score, _)| score)
            .fold(0.0, f32::max);
        if best <= 0.0 {
            return;
        }
        // In the blend's units (see `scale`).
        let factor = weight / best / self.scale;
        for (id, score, source) in candidates {
            if score > 0.0 {
                self.tally.add(id, score * factor, source);
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
            .tally
            .sums
            .iter()
            .map(|sum| key(sum.article_id, sum.total))
            .collect();
        if keys.len() > limit {
            keys.select_nth_unstable_by(limit, |a, b| b.cmp(a));
            keys.truncate(limit);
        }
        keys.sort_unstable_by(|a, b| b.cmp(a));
        keys.into_iter()
            .map(|key| {
                let sum = self.tally.sum(key as u32 as i32);
                Candidate {
                    article_id: sum.article_id,
                    score: sum.total * self.scale,
                    source: sum.source,
                }
            })
            .collect()
    }
}

/// The table goes back to its thread, cleared, for the next list.
impl Drop for Blend {
    fn drop(&mut self) {
        let mut tally = std::mem::take(&mut self.tally);
        tally.clear();
        SPARE.set(tally);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(blend: Blend, limit: usize) -> Vec<(i32, f32, Source)> {
        blend
            .ranked(limit)
            .into_iter()
            .map(|c| (c.article_id, c.score, c.source))
            .collect()
    }

    #[test]
    fn the_blend_ranks_by_score_then_higher_id_and_keeps_each_best_source() {
        let (seed_8, seed_9) = (Source::AlsoRead(8), Source::AlsoRead(9));
        // Article 1's also-read sum comes from two seeds, 9 giving most;
        // 5's is left out.
        let parts = [
            (1, 0.5, seed_8),
            (2, 4.0, seed_9),
            (1, 1.5, seed_9),
            (3, 2.0, seed_8),
            (5, 9.0, seed_9),
        ];
        let mut blend = Blend::starting_with([5], 1.0, parts);
        blend.add(
            0.5,
            [
                (1, 1.0, Source::Trending),
                (5, 2.0, Source::Trending),
                (4, 0.5, Source::Trending),
                (3, 0.8, Source::Trending),
            ]
            .into_iter(),
        );
        // 1 ties 2 at 1.0: 0.5 from also-read in all (though no seed gave
        // more than 0.375) and 0.5 from trending, equal, so the first stays.
        // 3 gets 0.5 + 0.4, most from also-read; 4 (0.25) is cut; 5 is
        // excluded, and does not count as trending's best either.
        assert_eq!(
            ranked(blend, 3),
            vec![(2, 1.0, seed_9), (1, 1.0, seed_9), (3, 0.9, seed_8)]
        );
    }

    #[test]
    fn a_list_starts_from_an_empty_table_on_the_same_thread() {
        let first = Blend::starting_with([2], 1.0, [(1, 1.0, Source::AlsoRead(7))]);
        assert_eq!(ranked(first, 5), vec![(1, 1.0, Source::AlsoRead(7))]);
        // Neither the first list's sum of 1 nor its exclusion of 2 is left.
        let second = Blend::starting_with(
            [3],
            1.0,
            [
                (2, 2.0, Source::Fresh),
                (1, 1.0, Source::Trending),
                (3, 5.0, Source::Fresh),
            ],
        );
        assert_eq!(
            ranked(second, 5),
            vec![(2, 1.0, Source::Fresh), (1, 0.5, Source::Trending)]
        );
    }

    #[test]
    fn ids_past_the_table_grow_it_and_ids_no_article_has_are_skipped() {
        let blend = Blend::starting_with(
            [0],
            1.0,
            [
                (-4, 1.0, Source::Fresh),
                (3_000_000, 2.0, Source::Fresh),
                (0, 1.0, Source::Fresh),
            ],
        );
        assert_eq!(ranked(blend, 5), vec![(3_000_000, 1.0, Source::Fresh)]);
    }
}
