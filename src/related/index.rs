//! The text model behind Related: every visible article's terms with BM25
//! term frequencies (title words count [`TITLE_WEIGHT`] times), an inverted
//! index over them with each term's strongest postings first, and the
//! articles' places in a latent topic model. The query over it is in
//! `query`.
//!
//! IDF is applied when vectors are read, never stored, so articles indexed
//! at different times compare fairly as the corpus grows.

mod packed;
mod query;
mod update;

use chrono::NaiveDateTime;
use rustc_hash::FxHashMap;

use self::packed::Packed;
pub use self::query::{Lease, Match, SHARED_TERMS, Scratch};
use super::latent::{Latent, Point};
use super::text::{Analyzer, Terms};

/// How many times a title word counts against a body word.
pub const TITLE_WEIGHT: u32 = 3;
/// BM25's term-frequency saturation and length normalisation.
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Dimensions of the latent topic model.
const LATENT_DIMENSIONS: usize = 100;
/// Most articles the topic model is trained on: a sample that size finds
/// the same topics, in bounded time and memory.
const LATENT_SAMPLE: usize = 20_000;
/// Postings read per query term: its strongest, as each term's postings
/// are kept strongest first ("impact order"). A query then costs the same
/// in a corpus of ten thousand articles as in one of a million, where a
/// common term's full postings would cover most of it; the articles that
/// score best for a term are the ones that use it most.
const POSTINGS_PER_TERM: usize = 2_000;
/// Postings kept per term: twice those read, so that removed articles
/// seldom leave a term with too few (it is then rebuilt from the articles'
/// vectors). The weaker ones are never read: in a million articles a
/// common term's full postings would hold most of them.
const POSTINGS_KEPT: usize = 2 * POSTINGS_PER_TERM;

/// An article as the index sees it.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: i32,
    pub title: String,
    pub body: String,
    pub category_id: i32,
    pub tag_ids: Vec<i32>,
    pub published_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// An article whose terms are counted but not yet weighted.
struct Counted {
    terms: Packed,
    length: u32,
    /// The article, without its text.
    document: Document,
}

/// An indexed article.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i32,
    /// Weighted term occurrences.
    length: u32,
    /// BM25's length normalisation of the article, against the average
    /// length when it was indexed: with a term's count, it gives the
    /// term's saturated frequency (see [`Entry::vector`]).
    norm: f32,
    /// `(term, count)`, sorted by term, packed (see [`Packed`]).
    terms: Packed,
    /// Its place in the latent topic space, once there is a model.
    latent: Option<Point>,
    pub category_id: i32,
    pub tag_ids: Box<[i32]>,
    pub published_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Entry {
    /// `(term, saturated term frequency)` (BM25's, with length
    /// normalisation), by term; IDF is applied when it is read.
    fn vector(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.terms
            .iter()
            .map(|(term, count)| (term, saturated(count as f32, self.norm)))
    }
}

/// BM25's saturated frequency of a term counted `count` times in an
/// article whose length normalisation is `norm`.
fn saturated(count: f32, norm: f32) -> f32 {
    count * (K1 + 1.0) / (count + norm)
}

/// The index. Not thread-safe by itself: the engine wraps it in a lock.
#[derive(Default)]
pub struct Index {
    analyzer: Analyzer,
    terms: FxHashMap<String, u32>,
    /// The word shown for each term: the one most articles use for its
    /// stem (see [`Index::term_id`]).
    spellings: Vec<String>,
    /// Per term, the lead of its spelling in a majority vote.
    spelling_votes: Vec<u16>,
    document_frequency: Vec<u32>,
    /// Per term, `(slot, saturated term frequency)`, strongest first
    /// ([`impact_order`]): at most [`POSTINGS_KEPT`], the strongest of all.
    postings: Vec<Vec<(u32, f32)>>,
    /// Per term, true when weaker postings than those kept were dropped.
    truncated: Vec<bool>,
    slots: Vec<Option<Entry>>,
    /// A bit per slot, set while it holds an article: a query checks every
    /// slot it touches, and reading the entries themselves (over 100 MB at
    /// a million articles) missed the CPU's caches on each.
    live: Vec<u64>,
    /// By article id; Fx, not SipHash: an item of a list shown looks up
    /// both articles.
    slot_of: FxHashMap<i32, u32>,
    /// Postings that point at removed slots, cleaned up by [`Index::compact`].
    stale: usize,
    /// Articles whose terms are in `document_frequency`.
    counted: usize,
    /// Their summed lengths (weighted term occurrences).
    total_length: f64,
    /// The topic model, trained when many articles are indexed at once.
    latent: Option<Latent>,
    /// Articles indexed when the model was last trained (or tried to be).
    trained_on: usize,
}

impl Index {
    /// The number of indexed articles.
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    /// Bytes held on the heap, about: the entries with their terms, places
    /// and tags, the postings, the vocabulary and the maps. Walks every
    /// entry: milliseconds at a million articles.
    pub fn heap_bytes(&self) -> u64 {
        use std::mem::size_of;
        let entries: usize = self
            .slots
            .iter()
            .flatten()
            .map(|entry| {
                entry.terms.heap_bytes()
                    + entry.latent.as_ref().map_or(0, Point::heap_bytes)
                    + entry.tag_ids.len() * size_of::<i32>()
            })
            .sum();
        let postings: usize = self.postings.iter().map(Vec::capacity).sum();
        let spellings: usize = self.spellings.iter().map(String::capacity).sum();
        let per_term = size_of::<Vec<(u32, f32)>>() + size_of::<String>() * 2 + 4 + 4 + 2 + 1 + 1;
        (self.slots.capacity() * size_of::<Option<Entry>>()
            + entries
            + postings * size_of::<(u32, f32)>()
            + 2 * spellings
            + self.postings.capacity() * per_term
            + self.live.capacity() * size_of::<u64>()
            + self.slot_of.capacity() * (size_of::<(i32, u32)>() + 1)
            + self.latent.as_ref().map_or(0, Latent::heap_bytes)) as u64
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// The indexed article with this id.
    pub fn get(&self, id: i32) -> Option<&Entry> {
        let slot = *self.slot_of.get(&id)?;
        self.slots[slot as usize].as_ref()
    }

    /// True when the corpus has doubled since the topic model was trained
    /// (or has grown large enough to have one): articles added one by one
    /// are placed in the model, but do not shape it.
    pub fn model_is_stale(&self) -> bool {
        self.len() >= Latent::minimum_corpus(LATENT_DIMENSIONS) && self.len() >= 2 * self.trained_on
    }

    /// A word that stems to `term`, as first seen.
    pub fn spelling(&self, term: u32) -> &str {
        &self.spellings[term as usize]
    }

    /// [`Index::spelling`] of a term that may come from another index.
    pub fn spelling_of(&self, term: u32) -> Option<&str> {
        self.spellings.get(term as usize).map(String::as_str)
    }

    /// Every indexed article id.
    pub fn ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.slot_of.keys().copied()
    }

    /// Indexes many articles at once, counting all their terms before
    /// weighting any. Takes them in chunks, so that only the chunk's texts
    /// are in memory at a time.
    pub fn extend(&mut self, chunks: impl IntoIterator<Item = Vec<Document>>) {
        let mut counted = Vec::new();
        for chunk in chunks {
            for document in chunk {
                self.remove(document.id);
                counted.push(self.count(document));
            }
        }
        self.slots.reserve(counted.len());
        for (placed, document) in counted.into_iter().enumerate() {
            self.place(document);
            // Common terms' postings would otherwise hold most of the
            // corpus until the end.
            if placed % 50_000 == 49_999 {
                self.keep_strongest(4 * POSTINGS_KEPT);
            }
        }
        self.keep_strongest(POSTINGS_KEPT);
        for postings in &mut self.postings {
            postings.sort_unstable_by(impact_order);
        }
        self.train();
    }

    /// Cuts every term's postings longer than `longest` to the strongest
    /// [`POSTINGS_KEPT`], in no particular order.
    fn keep_strongest(&mut self, longest: usize) {
        for (postings, truncated) in self.postings.iter_mut().zip(&mut self.truncated) {
            if postings.len() > longest {
                postings.select_nth_unstable_by(POSTINGS_KEPT, impact_order);
                postings.truncate(POSTINGS_KEPT);
                postings.shrink_to_fit();
                *truncated = true;
            }
        }
    }

    /// Trains the topic model on the indexed articles (an even sample of at
    /// most [`LATENT_SAMPLE`] of them) and places every article in it.
    fn train(&mut self) {
        let entries: Vec<&Entry> = self.slots.iter().flatten().collect();
        let step = entries.len().div_ceil(LATENT_SAMPLE).max(1);
        let rows: Vec<Vec<(u32, f32)>> = entries
            .iter()
            .step_by(step)
            .map(|entry| unit_vector(&self.weighted(entry)))
            .collect();
        self.trained_on = entries.len();
        self.latent = Latent::train(&rows, self.spellings.len(), LATENT_DIMENSIONS);
        drop(rows);
        let Some(model) = &self.latent else {
            return;
        };
        let points: Vec<Point> = entries
            .iter()
            .map(|entry| model.embed(&unit_vector(&self.weighted(entry))))
            .collect();
        for (entry, point) in self.slots.iter_mut().flatten().zip(points) {
            entry.latent = Some(point);
        }
    }

    /// Reads an article's terms into the vocabulary and the document
    /// frequencies; its text is dropped.
    fn count(&mut self, document: Document) -> Counted {
        let mut terms = Terms::default();
        self.analyzer.add(&document.title, TITLE_WEIGHT, &mut terms);
        self.analyzer.add(&document.body, 1, &mut terms);
        let length: u32 = terms.counts.values().sum();
        // New terms are numbered in the order of their stems, not of the
        // hash map: numbers break ties between equal scores, and the same
        // articles then give the same lists at every start.
        let mut stems: Vec<(&String, &u32)> = terms.counts.iter().collect();
        stems.sort_unstable();
        let mut counts = stems
            .into_iter()
            .map(|(stem, count)| (self.term_id(stem, &terms.spellings[stem]), *count))
            .collect::<Vec<_>>();
        for (term, _) in &counts {
            self.document_frequency[*term as usize] += 1;
        }
        self.counted += 1;
        self.total_length += f64::from(length);
        // Packed at once: a large build holds every article's counts
        // before it weighs any.
        counts.sort_unstable_by_key(|(term, _)| *term);
        Counted {
            terms: Packed::new(&counts),
            length,
            document: Document {
                title: String::new(),
                body: String::new(),
                ..document
            },
        }
    }

    /// The term of `stem`, which an article spells `spelling`. The word
    /// shown for a term is chosen by a majority vote of the articles (Boyer
    /// and Moore's, which needs one counter): the first to come would show
    /// a hospital's story as `hospitality`, the shortest an organisation's
    /// as `organ` (Snowball stems both to one).
    fn term_id(&mut self, stem: &str, spelling: &str) -> u32 {
        if let Some(&id) = self.terms.get(stem) {
            let (kept, votes) = (
                &mut self.spellings[id as usize],
                &mut self.spelling_votes[id as usize],
            );
            if kept == spelling {
                *votes = votes.saturating_add(1);
            } else if *votes == 0 {
                *kept = spelling.to_string();
                *votes = 1;
            } else {
                *votes -= 1;
            }
            return id;
        }
        let id = self.spellings.len() as u32;
        self.terms.insert(stem.to_string(), id);
        self.spellings.push(spelling.to_string());
        self.spelling_votes.push(1);
        self.document_frequency.push(0);
        self.postings.push(Vec::new());
        self.truncated.push(false);
        id
    }

    fn idf(&self, term: u32) -> f32 {
        let documents = (self.counted + 1) as f32;
        let df = self.document_frequency[term as usize].max(1) as f32;
        (documents / df).ln() + 1.0
    }

    /// Weighs a counted article's terms (BM25 term frequency, against the
    /// average length of everything counted) and appends it to the
    /// postings (out of impact order); returns its slot.
    fn place(&mut self, counted: Counted) -> u32 {
        let Counted {
            terms,
            length,
            document,
        } = counted;
        let average = (self.total_length / self.counted.max(1) as f64).max(1.0);
        let mut entry = Entry {
            length,
            norm: K1 * (1.0 - B + B * (f64::from(length) / average) as f32),
            id: document.id,
            terms,
            latent: None,
            category_id: document.category_id,
            tag_ids: document.tag_ids.into(),
            published_at: document.published_at,
            updated_at: document.updated_at,
        };
        entry.latent = self
            .latent
            .as_ref()
            .map(|model| model.embed(&unit_vector(&self.weighted(&entry))));
        let slot = self.slots.len() as u32;
        for (term, weight) in entry.vector() {
            self.postings[term as usize].push((slot, weight));
        }
        set(&mut self.live, slot, true);
        self.slots.push(Some(entry));
        self.slot_of.insert(document.id, slot);
        slot
    }

    /// An article's vector (saturated term frequencies) weighted by the
    /// terms' current IDF, so articles indexed at different times compare
    /// fairly.
    fn weighted(&self, entry: &Entry) -> Vec<(u32, f32)> {
        entry
            .vector()
            .map(|(term, tf)| (term, tf * self.idf(term)))
            .collect()
    }
}

/// True when bit `slot` of `bits` is set.
fn is_set(bits: &[u64], slot: u32) -> bool {
    bits[slot as usize / 64] & (1 << (slot % 64)) != 0
}

/// Sets or clears bit `slot` of `bits`, growing them to hold it.
fn set(bits: &mut Vec<u64>, slot: u32, on: bool) {
    let word = slot as usize / 64;
    if word >= bits.len() {
        bits.resize(word + 1, 0);
    }
    if on {
        bits[word] |= 1 << (slot % 64);
    } else {
        bits[word] &= !(1 << (slot % 64));
    }
}

/// Postings strongest first; among equals, the newer article (the later
/// slot) first.
fn impact_order(a: &(u32, f32), b: &(u32, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(b.0.cmp(&a.0))
}

/// A copy of a vector scaled to unit length.
fn unit_vector(vector: &[(u32, f32)]) -> Vec<(u32, f32)> {
    let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector
            .iter()
            .map(|(term, weight)| (*term, weight / norm))
            .collect()
    } else {
        vector.to_vec()
    }
}

#[cfg(test)]
mod tests;
