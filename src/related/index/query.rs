//! The More-Like-This query behind Related: the article's [`QUERY_TERMS`]
//! strongest terms (by BM25 weight, leaving out terms too rare to say
//! anything about a topic) scored by BM25, then expanded once with the
//! terms of its best [`FEEDBACK_DOCS`] matches (pseudo-relevance feedback)
//! and scored again. Each match's BM25 score, relative to the best, is
//! blended with the cosine of the two articles in the latent topic model
//! (the query's place pulled towards the same feedback articles).
//! Near-duplicates are told by the cosine of the two articles' weight
//! vectors.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;

use super::{Entry, Index, POSTINGS_PER_TERM, is_set, unit_vector};
use crate::related::latent;

/// Terms of the query article that are looked up: its strongest ones.
const QUERY_TERMS: usize = 40;
/// First matches whose terms expand the query.
const FEEDBACK_DOCS: usize = 8;
/// Weight of the feedback terms against the article's own.
const FEEDBACK_WEIGHT: f32 = 1.0;
/// Cosine similarity at which two articles are the same story.
const DUPLICATE_COSINE: f32 = 0.9;
/// Most first matches looked through for a list (see [`Index::best`]).
const MAX_POOL: usize = 10_000;
/// Weight of the latent cosine against the text score in a match's
/// similarity.
const LATENT_WEIGHT: f32 = 0.6;
/// Terms named as what two similar articles share.
pub const SHARED_TERMS: usize = 3;

/// One article similar to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub id: i32,
    /// BM25 score of the expanded query, relative to the best match (1.0).
    pub similarity: f32,
    /// The terms that contribute most to the two texts' cosine, strongest
    /// first (see [`Index::spelling`]).
    pub terms: Vec<u32>,
    /// The match's term frequencies (without IDF) scaled to length one.
    frequencies: Vec<(u32, f32)>,
}

impl Match {
    /// True when this match and `other` are the same story: a copy filed
    /// again, or the next of a daily series under one title.
    ///
    /// Told by the cosine of their term frequencies, without IDF: a series
    /// filed many times over makes its own words common, and IDF then
    /// weighs the few words that tell one copy from the next above all the
    /// rest (with thirty copies about, a copy with one word more was no
    /// copy of the next).
    pub fn copies(&self, other: &Match) -> bool {
        cosine_at_least(&self.frequencies, &other.frequencies, DUPLICATE_COSINE)
    }
}

/// A match as [`Index::similar`] ranks it, before its shared terms are
/// found.
struct Scored<'a> {
    entry: &'a Entry,
    similarity: f32,
    /// The match's own term weights.
    weights: Vec<(u32, f32)>,
}

impl Index {
    /// The `limit` articles most similar to article `id`, best first, without
    /// the article itself and without near-duplicates of it (see
    /// [`Match::copies`] for those of each other). `scores` is
    /// an accumulator, all zeros (see [`Scratch`]); it is left so.
    pub fn similar(&self, id: i32, limit: usize, scores: &mut Vec<f32>) -> Vec<Match> {
        let Some(query) = self.get(id) else {
            return Vec::new();
        };
        let query_weights = self.weighted(query);
        // Ranked first, and the shared terms found only for those kept.
        self.best(query, &query_weights, limit, scores)
            .into_iter()
            .map(|scored| Match {
                id: scored.entry.id,
                similarity: scored.similarity,
                terms: self.strongest_shared(
                    shared(query_weights.iter().copied(), scored.weights)
                        .map(|(term, a, b)| (term, a * b)),
                    SHARED_TERMS,
                ),
                frequencies: unit_vector(&scored.entry.vector().collect::<Vec<_>>()),
            })
            .collect()
    }

    /// The ids of [`Index::similar`]'s matches, without finding the terms
    /// they share.
    pub fn nearest(&self, id: i32, limit: usize, scores: &mut Vec<f32>) -> Vec<i32> {
        let Some(query) = self.get(id) else {
            return Vec::new();
        };
        let query_weights = self.weighted(query);
        self.best(query, &query_weights, limit, scores)
            .into_iter()
            .map(|scored| scored.entry.id)
            .collect()
    }

    /// The `limit` best matches of `query` (weighed as `query_weights`),
    /// best first.
    ///
    /// Near-duplicates are left out of a pool of the first matches. An
    /// article with many of them (a daily series under one title, a story
    /// filed again and again) can have a pool of nothing else, and so an
    /// empty list: the pool then grows until the list is full, nothing
    /// more matches, or it holds [`MAX_POOL`].
    fn best(
        &self,
        query: &Entry,
        query_weights: &[(u32, f32)],
        limit: usize,
        scores: &mut Vec<f32>,
    ) -> Vec<Scored<'_>> {
        let mut pool = limit * 3 + 10;
        loop {
            let (best, matched) = self.best_of(query, query_weights, limit, pool, scores);
            if best.len() >= limit || matched < pool || pool >= MAX_POOL {
                return best;
            }
            pool = (pool * 4).min(MAX_POOL);
        }
    }

    /// [`Index::best`] out of the first `pool` matches; with how many
    /// matched, up to `pool`.
    fn best_of(
        &self,
        query: &Entry,
        query_weights: &[(u32, f32)],
        limit: usize,
        pool: usize,
        scores: &mut Vec<f32>,
    ) -> (Vec<Scored<'_>>, usize) {
        let id = query.id;
        let first = self.search(query_weights, id, pool, scores);
        // The best first matches stand for the query's topic: their terms
        // expand the text query, their places the latent one.
        let feedback: Vec<&Entry> = first
            .iter()
            .filter_map(|(slot, _)| self.slots[*slot as usize].as_ref())
            .take(FEEDBACK_DOCS)
            .collect();
        let query_point = query.latent.as_ref().map(|own| {
            let others = feedback.iter().filter_map(|entry| entry.latent.as_ref());
            latent::centroid(own, others, FEEDBACK_WEIGHT)
        });
        let candidates = if feedback.is_empty() {
            first
        } else {
            let mut expanded: FxHashMap<u32, f32> = query_weights.iter().copied().collect();
            for entry in &feedback {
                for (term, weight) in &self.weighted(entry) {
                    *expanded.entry(*term).or_default() +=
                        FEEDBACK_WEIGHT * weight / feedback.len() as f32;
                }
            }
            let expanded: Vec<(u32, f32)> = expanded.into_iter().collect();
            self.search(&expanded, id, pool, scores)
        };
        let best = candidates
            .first()
            .map_or(1.0, |(_, score)| *score)
            .max(f32::MIN_POSITIVE);
        let matched = candidates.len();
        let query_unit = unit_vector(query_weights);
        let mut scored: Vec<_> = candidates
            .into_iter()
            .filter_map(|(slot, score)| {
                let entry = self.slots[slot as usize].as_ref()?;
                let other_weights = self.weighted(entry);
                if cosine(&query_unit, &unit_vector(&other_weights)) >= DUPLICATE_COSINE {
                    return None;
                }
                let text = score / best;
                let similarity = match (&query_point, &entry.latent) {
                    (Some(a), Some(b)) => {
                        (1.0 - LATENT_WEIGHT) * text + LATENT_WEIGHT * latent::cosine(a, b)
                    }
                    _ => text,
                };
                Some(Scored {
                    entry,
                    similarity,
                    weights: other_weights,
                })
            })
            .collect();
        scored.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.entry.id.cmp(&b.entry.id))
        });
        scored.truncate(limit);
        (scored, matched)
    }

    /// Slots with the highest BM25 score for the strongest terms of `query`
    /// (each counted once, as More-Like-This does), without article `skip`:
    /// scored over the [`POSTINGS_PER_TERM`] strongest postings of each term.
    pub(super) fn search(
        &self,
        query: &[(u32, f32)],
        skip: i32,
        limit: usize,
        scores: &mut Vec<f32>,
    ) -> Vec<(u32, f32)> {
        let min_df = (self.counted / 1000).clamp(2, 5) as u32;
        let mut strongest: Vec<(u32, f32)> = query
            .iter()
            .copied()
            .filter(|(term, _)| self.document_frequency[*term as usize] >= min_df)
            .collect();
        strongest.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        strongest.truncate(QUERY_TERMS);
        let skip = self.slot_of.get(&skip).copied();
        let ranked = {
            // A dense accumulator, zeroed again after use: a query touches
            // up to 80,000 articles.
            scores.resize(self.slots.len(), 0.0);
            let postings: Vec<(f32, &[(u32, f32)])> = strongest
                .iter()
                .map(|(term, _)| {
                    let postings = &self.postings[*term as usize];
                    let read = postings.len().min(POSTINGS_PER_TERM);
                    (self.idf(*term), &postings[..read])
                })
                .collect();
            // Every slot is written and the count moves on only for a
            // first touch: a branch there would go either way at random,
            // and its mispredictions cost more than the accumulation.
            let mut touched = vec![0u32; postings.iter().map(|(_, read)| read.len()).sum()];
            let mut count = 0;
            for (idf, read) in postings {
                for (slot, tf) in read {
                    let score = &mut scores[*slot as usize];
                    touched[count] = *slot;
                    count += usize::from(*score == 0.0);
                    *score += idf * tf;
                }
            }
            touched.truncate(count);
            // The best `limit` kept as they come, as integers: a positive
            // score's bits order as the score does, and the slot's
            // complement puts the lower slot first among equals. Collecting
            // every touched slot and selecting from them took a quarter of
            // a search at a million articles. Once the heap is full, a key
            // is first held against a copy of its weakest.
            let mut best: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(limit + 1);
            let mut weakest = 0;
            for slot in touched {
                let score = std::mem::take(&mut scores[slot as usize]);
                if Some(slot) == skip || !is_set(&self.live, slot) {
                    continue;
                }
                debug_assert!(score > 0.0, "score {score} of slot {slot}");
                let key = (u64::from(score.to_bits()) << 32) | u64::from(!slot);
                if best.len() < limit {
                    best.push(Reverse(key));
                } else if key > weakest
                    && let Some(mut least) = best.peek_mut()
                {
                    *least = Reverse(key);
                } else {
                    continue;
                }
                if best.len() == limit {
                    weakest = best.peek().map_or(0, |least| least.0);
                }
            }
            best.into_sorted_vec()
        };
        ranked
            .into_iter()
            .map(|Reverse(key)| (!(key as u32), f32::from_bits((key >> 32) as u32)))
            .collect()
    }

    /// The `count` terms that make the texts of articles `a` and `b`
    /// similar, as [`Index::similar`] names them; empty if either is not
    /// indexed.
    pub fn shared_terms_of(&self, a: i32, b: i32, count: usize) -> Vec<u32> {
        match (self.get(a), self.get(b)) {
            // Weighted as `similar` weighs them, but only the terms both
            // have: at a million articles, weighing the two whole vectors
            // for each item shown took 8% of a Related request.
            (Some(a), Some(b)) => self.strongest_shared(
                shared(a.vector(), b.vector()).map(|(term, a, b)| {
                    let idf = self.idf(term);
                    (term, (a * idf) * (b * idf))
                }),
                count,
            ),
            _ => Vec::new(),
        }
    }

    /// The `count` terms that add most to the cosine of two vectors, of
    /// their shared terms with the product of their weights.
    fn strongest_shared(&self, shared: impl Iterator<Item = (u32, f32)>, count: usize) -> Vec<u32> {
        let mut shared: Vec<(u32, f32)> = shared.collect();
        // Ties go by spelling: term numbers depend on the order in which a
        // build met the terms, which differs from one start to the next.
        let strongest_first = |x: &(u32, f32), y: &(u32, f32)| {
            y.1.total_cmp(&x.1)
                .then_with(|| self.spelling(x.0).cmp(self.spelling(y.0)))
        };
        if count > 0 && shared.len() > count {
            shared.select_nth_unstable_by(count - 1, strongest_first);
            shared.truncate(count);
        }
        shared.sort_unstable_by(strongest_first);
        shared
            .into_iter()
            .take(count)
            .map(|(term, _)| term)
            .collect()
    }
}

/// Dense accumulators for [`Index::similar`], all zeros between uses: at
/// most one per core, as each takes 4 MB at a million articles and more
/// searches at once than cores would only take turns. One kept per thread
/// instead grew with the threads that ever asked for a Related list that
/// was not made yet, dozens of them under load. Borrow one before taking
/// the index's lock, so that waiting for one never holds the lock.
pub struct Scratch {
    /// The accumulators not lent out, and how many exist.
    kept: Mutex<(Vec<Vec<f32>>, usize)>,
    returned: Condvar,
    most: usize,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            kept: Mutex::default(),
            returned: Condvar::new(),
            most: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl Scratch {
    /// An accumulator, once one is free.
    pub fn lend(&self) -> Lease<'_> {
        let mut kept = self.kept.lock();
        loop {
            if let Some(scores) = kept.0.pop() {
                return Lease {
                    scratch: self,
                    scores,
                };
            }
            if kept.1 < self.most {
                kept.1 += 1;
                return Lease {
                    scratch: self,
                    scores: Vec::new(),
                };
            }
            self.returned.wait(&mut kept);
        }
    }
}

/// An accumulator lent out; given back when dropped.
pub struct Lease<'a> {
    scratch: &'a Scratch,
    pub scores: Vec<f32>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut kept = self.scratch.kept.lock();
        if std::thread::panicking() {
            // Maybe not zeroed: made afresh when next needed.
            kept.1 -= 1;
        } else {
            kept.0.push(std::mem::take(&mut self.scores));
        }
        self.scratch.returned.notify_one();
    }
}

/// The terms two vectors sorted by term share, with each one's value.
fn shared(
    a: impl IntoIterator<Item = (u32, f32)>,
    b: impl IntoIterator<Item = (u32, f32)>,
) -> impl Iterator<Item = (u32, f32, f32)> {
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    let (mut x, mut y) = (a.next(), b.next());
    std::iter::from_fn(move || {
        loop {
            let ((term, first), (other, second)) = (x?, y?);
            match term.cmp(&other) {
                std::cmp::Ordering::Less => x = a.next(),
                std::cmp::Ordering::Greater => y = b.next(),
                std::cmp::Ordering::Equal => {
                    (x, y) = (a.next(), b.next());
                    return Some((term, first, second));
                }
            }
        }
    })
}

/// Whether the cosine of two unit vectors sorted by term is at least
/// `least`; most pairs are told apart after a few of their terms.
///
/// The cosine is the sum over shared terms, so by Cauchy-Schwarz at most
/// the square root of the product of the squared weights each has on them:
/// one minus what it has on terms the other lacks. Once that bound is
/// below `least`, the rest need not be read.
fn cosine_at_least(a: &[(u32, f32)], b: &[(u32, f32)], least: f32) -> bool {
    let floor = least * least;
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    let (mut kept_a, mut kept_b) = (1.0f32, 1.0f32);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                kept_a -= a[i].1 * a[i].1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                kept_b -= b[j].1 * b[j].1;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
                continue;
            }
        }
        if kept_a * kept_b < floor {
            return false;
        }
    }
    sum >= least
}

/// The dot product of two unit vectors sorted by term.
fn cosine(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A unit vector over a few terms, so that two share many.
    fn unit_vectors() -> impl Strategy<Value = Vec<(u32, f32)>> {
        proptest::collection::btree_map(0..40u32, 0.01f32..10.0, 1..30)
            .prop_map(|weights| unit_vector(&weights.into_iter().collect::<Vec<_>>()))
    }

    proptest! {
        /// Stopping early never changes the answer, away from the rounding
        /// at the threshold itself.
        #[test]
        fn a_cosine_stopped_early_tells_what_the_whole_one_does(
            a in unit_vectors(),
            b in unit_vectors(),
            least in 0.05f32..0.99,
        ) {
            let whole = cosine(&a, &b);
            prop_assume!((whole - least).abs() > 1e-4);
            prop_assert_eq!(cosine_at_least(&a, &b, least), whole >= least);
        }
    }
}
