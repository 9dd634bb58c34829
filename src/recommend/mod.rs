//! The Recommendation feed: what this reader should read next.
//!
//! Candidates come from four sources, each scaled so that its best
//! candidate scores 1 and then weighted:
//! - **also read**: what readers of the reader's recent articles went on to
//!   read (item-to-item co-engagement over the in-memory [`Graph`], kept per
//!   article as a neighbour list that a background thread refreshes as
//!   reads arrive), each read discounted as it ages and each co-reader by
//!   how much they read;
//! - **similar to**: the Related lists of the reader's latest articles (those
//!   already made);
//! - **trending in**: the trending articles of the categories the reader
//!   reads most;
//! - **trending** and **fresh**: what everyone reads now and the newest
//!   articles, with a low weight, so that a list is always full; for a
//!   reader with no history (cold start) they are all there is.
//!
//! An item's reason is the source that gave it most. Read articles, the
//! context article and articles public readers cannot see are left out, and
//! no category takes more than a configured share of the list while other
//! categories have candidates.

mod blend;
pub mod eval;
pub mod graph;
mod neighbours;
mod placements;
mod trending;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use quick_cache::sync::Cache;
use rustc_hash::{FxHashMap, FxHashSet};

use self::blend::{Blend, Candidate, Scores, Summed};
pub use self::graph::Graph;
use self::graph::Read;
pub use self::neighbours::NEIGHBOURS_BYTES;
use self::neighbours::{Neighbours, NeighboursSize};
use self::placements::placements;
pub use self::placements::{Filing, Known, KnownPlacements, NothingKnown, Placement};
use self::trending::Trending;
use crate::content::Status;
use crate::db::schema::{articles, reactions, readers, views};
use crate::db::taxonomy::CategoryTree;
use crate::db::{StoreResult, purge};
use crate::ranking::Decay;

/// Weights of the sources in the blend.
const ALSO_READ_WEIGHT: f32 = 1.0;
const SIMILAR_WEIGHT: f32 = 0.5;
const TRENDING_IN_WEIGHT: f32 = 0.3;
const TRENDING_WEIGHT: f32 = 0.15;
const FRESH_WEIGHT: f32 = 0.1;
/// The reader's latest articles that seed "also read".
const SEEDS: usize = 20;
/// The latest of those whose Related lists are used.
const SIMILAR_SEEDS: usize = 5;
/// Items taken from each Related list.
const SIMILAR_ITEMS: usize = 20;
/// Co-readers looked at per article: its most recent readers.
const CO_READERS: usize = 300;
/// Co-read articles kept per article.
const NEIGHBOURS: usize = 100;
/// Most neighbour lists recomputed per refresh; the rest wait their turn.
const REFRESH_BATCH: usize = 2_000;
/// How often the lists of articles with new co-reading are recomputed.
const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Of a reader's reads, the latest whose lists a new read can change.
const DIRTY_PER_READ: usize = SEEDS;
/// The reader's latest articles whose categories count as theirs.
const TASTE_READS: usize = 50;
/// Categories whose trending articles are candidates.
const TASTE_CATEGORIES: usize = 2;
/// Candidates taken from each trending list and from the newest articles.
const BACKGROUND_ITEMS: usize = 30;
/// Candidates looked at per item asked for, before the category cap gives
/// way.
const CANDIDATES_PER_ITEM: usize = 10;
/// How often the trending candidates are summed again.
const TRENDING_EVERY: Duration = Duration::from_secs(60);
/// Longest a loaded category tree and list of the newest articles serve,
/// when no content write ends them sooner: an article scheduled to go live
/// joins the fresh candidates this long after it does, at most.
const SHARED_FOR: Duration = Duration::from_secs(1);
/// How a reaction counts against a view.
const REACTION_SIGNAL: f32 = 2.0;

/// What the engine is told by configuration.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Days after which a read counts half, as a seed and as co-engagement.
    pub half_life_days: f64,
    /// Most of a list (a share, 0 to 1) that may come from one category.
    pub category_share: f64,
    /// How trending candidates are scored.
    pub decay: Decay,
}

impl Params {
    /// Most items of a `limit`-item list from one category (at least one).
    pub fn max_per_category(&self, limit: usize) -> usize {
        ((self.category_share * limit as f64).floor() as usize).max(1)
    }
}

/// How a list was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// From the reader's history.
    Personalized,
    /// The reader has no history: trending and fresh articles.
    ColdStart,
}

/// Why an article is recommended.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Readers of this article went on to read it.
    AlsoRead { because_of: i32 },
    /// It is like this article, which the reader read.
    SimilarTo { article: i32 },
    /// It is trending in this category (slug), which the reader reads.
    TrendingIn { category: String },
    /// It is trending everywhere.
    Trending,
    /// It is new.
    Fresh,
}

/// Which source gave a candidate most: a [`Reason`] with the category by
/// id, so that blending thousands of candidates copies no strings.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    AlsoRead(i32),
    SimilarTo(i32),
    TrendingIn(i32),
    Trending,
    Fresh,
}

impl Source {
    fn reason(self, tree: &CategoryTree) -> Reason {
        match self {
            Self::AlsoRead(because_of) => Reason::AlsoRead { because_of },
            Self::SimilarTo(article) => Reason::SimilarTo { article },
            Self::TrendingIn(category) => Reason::TrendingIn {
                category: tree
                    .get(category)
                    .map(|row| row.slug.clone())
                    .unwrap_or_default(),
            },
            Self::Trending => Reason::Trending,
            Self::Fresh => Reason::Fresh,
        }
    }
}

/// One recommended article.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommended {
    pub article_id: i32,
    pub score: f32,
    pub reason: Reason,
}

/// A recommendation list.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    pub strategy: Strategy,
    pub items: Vec<Recommended>,
}

/// What a reader did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    View,
    Reaction,
}

/// What every list reads from the store and only a content write changes:
/// loaded once for many requests rather than by each.
struct Shared {
    /// The content generation it was loaded in.
    generation: u64,
    loaded_at: Instant,
    tree: CategoryTree,
    /// The newest public articles, scored for the blend.
    fresh: Vec<(i32, f32)>,
}

/// The reading graph and what recommendations are computed from.
pub struct Engine {
    graph: RwLock<Graph>,
    /// Per article, what its readers went on to read: computed ahead for
    /// the most read articles, so that a request mostly adds up lists.
    neighbours: Cache<i32, Neighbours, NeighboursSize>,
    /// Articles whose neighbours have changed since they were computed.
    dirty: Mutex<FxHashSet<i32>>,
    params: Params,
    trending: Mutex<Trending>,
    /// Held while the first trending list is summed.
    first_trending: Mutex<()>,
    /// Counts content writes; a [`Shared`] from an older one is not used.
    generation: AtomicU64,
    shared: Mutex<Option<Arc<Shared>>>,
    /// Set once the stored reading history has been loaded (or failed to).
    loaded: AtomicBool,
}

impl Engine {
    pub fn new(params: Params) -> Self {
        Self {
            graph: RwLock::default(),
            neighbours: Cache::with_weighter(
                (NEIGHBOURS_BYTES / 800) as usize,
                NEIGHBOURS_BYTES,
                NeighboursSize,
            ),
            dirty: Mutex::default(),
            params,
            trending: Mutex::new(Trending {
                list: None,
                computed_at: Instant::now(),
            }),
            first_trending: Mutex::new(()),
            generation: AtomicU64::new(0),
            shared: Mutex::default(),
            loaded: AtomicBool::new(false),
        }
    }

    /// True once the stored reading history has been loaded, or loading it
    /// has failed.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Forgets what was loaded of categories and articles; called once a
    /// content write has committed.
    pub fn content_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The category tree and the newest articles, loaded at most once per
    /// content write and [`SHARED_FOR`].
    fn shared(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<Arc<Shared>> {
        // Read before loading: a write committed meanwhile makes the result
        // old at once, never the other way round.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(shared) = self.shared.lock().expect("shared lock").as_ref()
            && shared.generation == generation
            && shared.loaded_at.elapsed() < SHARED_FOR
        {
            return Ok(Arc::clone(shared));
        }
        let shared = Arc::new(Shared {
            generation,
            loaded_at: Instant::now(),
            tree: CategoryTree::load(conn)?,
            fresh: fresh(conn, now)?,
        });
        *self.shared.lock().expect("shared lock") = Some(Arc::clone(&shared));
        Ok(shared)
    }

    /// The configuration in force.
    pub fn params(&self) -> Params {
        self.params
    }

    /// Records an acknowledged view or reaction.
    pub fn record(&self, reader: &str, article: i32, at: NaiveDateTime, signal: Signal) {
        let weight = match signal {
            Signal::View => 1.0,
            Signal::Reaction => REACTION_SIGNAL,
        };
        let mut graph = self.graph.write().expect("graph lock");
        if !graph.record(reader, article, graph::seconds(at), weight) {
            return;
        }
        // What this reader read before now leads to `article` too.
        let number = graph.reader(reader).expect("just recorded");
        let mut earlier: Vec<Read> = graph.history(number).to_vec();
        drop(graph);
        earlier.sort_unstable_by_key(|read| std::cmp::Reverse(read.at));
        self.dirty.lock().expect("dirty lock").extend(
            earlier
                .iter()
                .take(DIRTY_PER_READ + 1)
                .map(|read| read.article),
        );
    }

    /// Loads every stored view and reaction of a known reader and computes
    /// every article's neighbours; returns how many events it read. Events
    /// recorded meanwhile are kept.
    pub fn load(&self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        const CHUNK: i32 = 500_000;
        let readers: Vec<(i32, String)> = readers::table
            .select((readers::id, readers::key))
            .load(conn)?;
        let number: HashMap<i32, u32> = readers
            .iter()
            .enumerate()
            .map(|(number, (id, _))| (*id, number as u32))
            .collect();
        let keys: Vec<Box<str>> = readers.into_iter().map(|(_, key)| key.into()).collect();
        // Views of deleted articles that are still being removed.
        let purges = purge::pending(conn)?;
        let mut events = Vec::new();
        let last: Option<i32> = views::table
            .select(diesel::dsl::max(views::id))
            .get_result(conn)?;
        let mut from = 0;
        while from <= last.unwrap_or(0) {
            let rows: Vec<(i32, Option<i32>, i32, NaiveDateTime)> = views::table
                .filter(views::id.ge(from).and(views::id.lt(from + CHUNK)))
                .filter(views::reader_id.is_not_null())
                .select((
                    views::id,
                    views::reader_id,
                    views::article_id,
                    views::viewed_at,
                ))
                .load(conn)?;
            events.extend(rows.into_iter().filter_map(|(id, reader, article, at)| {
                if purges.iter().any(|purge| purge.covers(article, id)) {
                    return None;
                }
                let read = Read {
                    article,
                    at: graph::seconds(at),
                    weight: 1.0,
                };
                Some((*number.get(&reader?)?, read))
            }));
            from += CHUNK;
        }
        let rows: Vec<(i32, i32, NaiveDateTime)> = reactions::table
            .select((
                reactions::reader_id,
                reactions::article_id,
                reactions::reacted_at,
            ))
            .load(conn)?;
        events.extend(rows.into_iter().filter_map(|(reader, article, at)| {
            let read = Read {
                article,
                at: graph::seconds(at),
                weight: REACTION_SIGNAL,
            };
            Some((*number.get(&reader)?, read))
        }));
        let loaded = events.len();
        let built = Graph::build(keys, events);
        {
            let mut graph = self.graph.write().expect("graph lock");
            let arrived = std::mem::replace(&mut *graph, built);
            graph.absorb(arrived);
        }
        Ok(loaded)
    }

    /// How much a read made at `at` (Unix seconds) still counts at `now`.
    fn decay(&self, now: NaiveDateTime) -> impl Fn(u32) -> f32 + Copy + use<> {
        let now = now.and_utc().timestamp();
        let half_life = self.params.half_life_days * 86_400.0;
        move |at: u32| 0.5f64.powf((now - i64::from(at)).max(0) as f64 / half_life) as f32
    }

    /// Starts a thread that loads the stored history into the graph.
    pub fn spawn_loader(self: &Arc<Self>, db: crate::db::Db) -> std::io::Result<()> {
        let engine = Arc::clone(self);
        crate::background::spawn("frontpage-recommend", move || {
            let refresh_trending = || {
                let now = crate::db::now();
                if let Err(error) = db.read_blocking(|conn| engine.refresh_trending(conn, now)) {
                    tracing::warn!(%error, "summing trending articles failed; retrying soon");
                }
            };
            // Trending first: it reads only the stored buckets, takes a
            // second or two at a million articles, and until it is summed
            // every recommendation waits for it; the history takes longer
            // to load, and recommendations without it only lack the
            // reader's part.
            refresh_trending();
            let started = Instant::now();
            match db.read_blocking(|conn| engine.load(conn)) {
                Ok(events) => tracing::info!(
                    events,
                    readers = engine.readers(),
                    seconds = started.elapsed().as_secs_f32(),
                    "reading history loaded"
                ),
                Err(error) => tracing::error!(%error, "loading reading history failed"),
            }
            engine.loaded.store(true, Ordering::SeqCst);
            loop {
                refresh_trending();
                std::thread::sleep(REFRESH_EVERY);
                engine.refresh(crate::db::now());
            }
        })?;
        Ok(())
    }

    /// Readers in the graph.
    pub fn readers(&self) -> usize {
        self.graph.read().expect("graph lock").readers()
    }

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
        let mut history = {
            let graph = self.graph.read().expect("graph lock");
            graph
                .reader(reader)
                .map_or_else(Vec::new, |n| graph.history(n).to_vec())
        };
        history.sort_by(|a, b| b.at.cmp(&a.at).then(b.article.cmp(&a.article)));
        let seeds = seeds(&history, context, decay);
        let strategy = if history.is_empty() {
            Strategy::ColdStart
        } else {
            Strategy::Personalized
        };
        let mut excluded: FxHashSet<i32> = history.iter().map(|read| read.article).collect();
        excluded.extend(context);
        let also_read = self.also_read(&seeds, &excluded, now);
        let mut blend = Blend::starting_with(excluded, ALSO_READ_WEIGHT, also_read);

        // Only lists already made: computing an old article's list takes
        // milliseconds, too long for one source of many.
        let similar: Vec<_> = seeds
            .iter()
            .take(SIMILAR_SEEDS)
            .filter_map(|(seed, weight)| Some((*seed, *weight, sources.related.stored(*seed)?)))
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

        let shared = self.shared(conn, now)?;
        let tree = &shared.tree;
        let mut recent: Vec<i32> = history
            .iter()
            .take(TASTE_READS)
            .map(|read| read.article)
            .collect();
        recent.sort_unstable();
        recent.dedup();
        let categories: Vec<i32> = placements(conn, &recent, sources.known, now)?
            .values()
            .map(|placement| placement.category_id)
            .collect();
        for (category, share) in favourites(&categories) {
            if tree.get(category).is_none() {
                continue;
            }
            let trending = self.trending(conn, tree, Some(category), now)?;
            // A category counts as much as it has of the reader's reads.
            blend.add(
                TRENDING_IN_WEIGHT * share,
                trending
                    .iter()
                    .map(|(id, score)| (*id, *score, Source::TrendingIn(category))),
            );
        }
        let trending = self.trending(conn, tree, None, now)?;
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

        let ranked = blend.ranked(limit * CANDIDATES_PER_ITEM);
        let items = self
            .pick(conn, sources.known, ranked, limit, now)?
            .into_iter()
            .map(|candidate| Recommended {
                article_id: candidate.article_id,
                score: candidate.score,
                reason: candidate.source.reason(tree),
            })
            .collect();
        Ok(Recommendations { strategy, items })
    }

    /// What readers of the seeds went on to read: per article, the sum of
    /// the seeds' neighbour lists, each weighted by its seed, and the seed
    /// that gave most ([`Source::AlsoRead`]) with what it gave; without the
    /// articles in `excluded`.
    fn also_read(
        &self,
        seeds: &[(i32, f32)],
        excluded: &FxHashSet<i32>,
        now: NaiveDateTime,
    ) -> Summed {
        // Every list is looked up before any is summed: the lookups' cache
        // misses then overlap rather than each waiting for the last sum.
        let lists: Vec<Neighbours> = seeds
            .iter()
            .map(|(seed, _)| self.neighbours_of(*seed, now))
            .collect();
        let mut scores =
            Scores::with_capacity_and_hasher(seeds.len() * NEIGHBOURS, Default::default());
        for ((seed, weight), list) in seeds.iter().zip(&lists) {
            let source = Source::AlsoRead(*seed);
            for (article, score) in list.iter() {
                let part = weight * score;
                if part <= 0.0 || part.is_nan() {
                    continue;
                }
                let total = scores.entry(*article).or_insert((0.0, source, 0.0));
                total.0 += part;
                if part > total.2 {
                    total.1 = source;
                    total.2 = part;
                }
            }
        }
        // Removed afterwards: the excluded are tens of articles (the
        // reader's history), the parts summed thousands.
        for article in excluded {
            scores.remove(article);
        }
        Summed::new(scores)
    }

    /// The best `limit` candidates that public readers can see, at most a
    /// share of them from one category. Only when the first candidates hold
    /// too few other categories to fill the list does the cap give way,
    /// best first: a short list would be no more diverse.
    fn pick(
        &self,
        conn: &mut SqliteConnection,
        known: Known<'_>,
        ranked: Vec<Candidate>,
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

/// What a recommendation reads in memory besides the reading history.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The Related lists, for "similar to" a recent read.
    pub related: &'a crate::related::Engine,
    /// Articles' placements the caller already has.
    pub known: Known<'a>,
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

/// The newest public articles, the newest scoring most.
fn fresh(conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<Vec<(i32, f32)>> {
    let ids: Vec<i32> = articles::table
        .filter(articles::status.eq(Status::Published.as_str()))
        .filter(articles::published_at.le(now))
        .order((articles::published_at.desc(), articles::id.desc()))
        .limit(BACKGROUND_ITEMS as i64)
        .select(articles::id)
        .load(conn)?;
    Ok(ids
        .into_iter()
        .enumerate()
        .map(|(rank, id)| (id, 1.0 / (rank as f32 + 1.0)))
        .collect())
}
