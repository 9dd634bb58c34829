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

pub mod eval;
pub mod graph;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use rustc_hash::{FxHashMap, FxHashSet};

pub use self::graph::Graph;
use self::graph::Read;
use crate::content::Status;
use crate::db::in_ids::InIdsExt;
use crate::db::schema::{articles, reactions, readers, views};
use crate::db::taxonomy::CategoryTree;
use crate::db::{StoreResult, engagement, purge};
use crate::ranking::{self, Decay, Metric, Ranked, Top, Window};

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

/// A blended candidate: its article, total score and the source that gave
/// it most.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    article_id: i32,
    score: f32,
    source: Source,
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

/// The week's trending articles with their scores (the best overall is 1),
/// best first: the top everywhere and the top of each category.
#[derive(Default)]
struct TrendingLists {
    everywhere: Vec<(i32, f32)>,
    by_category: FxHashMap<i32, Vec<(i32, f32)>>,
}

type TrendingList = Arc<TrendingLists>;

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

/// The last trending list, and when it was summed.
struct Trending {
    list: Option<TrendingList>,
    computed_at: Instant,
}
/// An article's co-read articles, best first.
type Neighbours = Arc<[(i32, f32)]>;

/// The most the neighbour lists kept may weigh: 150,000 full lists (the
/// memory budget may allow less, see [`crate::memory`]). A million
/// articles' would weigh 800 MB; the lists of articles nobody reads now are
/// computed again when somebody does (tens of microseconds).
pub const NEIGHBOURS_BYTES: u64 = 128 << 20;

/// Weighs a neighbour list by its bytes, with its entry and `Arc` header.
#[derive(Clone)]
struct NeighboursSize;

impl Weighter<i32, Neighbours> for NeighboursSize {
    fn weight(&self, _: &i32, list: &Neighbours) -> u64 {
        (48 + std::mem::size_of_val::<[(i32, f32)]>(list)) as u64
    }
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

    /// Computes the neighbours of the most read articles, most read first,
    /// until the lists kept nearly fill the memory they are given. Run once
    /// the history is loaded and the memory budget has sized the lists'
    /// cache (see [`crate::memory`]).
    pub fn compute_ahead(&self, now: NaiveDateTime) {
        const CHUNK: usize = 10_000;
        let mut articles: Vec<(usize, i32)> = {
            let graph = self.graph.read().expect("graph lock");
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
                        let graph = self.graph.read().expect("graph lock");
                        let list = neighbours(&graph, *article, decay);
                        drop(graph);
                        self.neighbours.insert(*article, list);
                    }
                });
            }
        });
    }

    /// Recomputes the kept lists of articles with new co-reading, at most
    /// [`REFRESH_BATCH`] marked at a time; returns how many it recomputed.
    /// Lists not kept are left to be computed when asked for.
    pub fn refresh(&self, now: NaiveDateTime) -> usize {
        let batch: Vec<i32> = {
            let mut dirty = self.dirty.lock().expect("dirty lock");
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
    fn neighbours_of(&self, article: i32, now: NaiveDateTime) -> Neighbours {
        if let Some(list) = self.neighbours.get(&article) {
            return list;
        }
        let graph = self.graph.read().expect("graph lock");
        let list = neighbours(&graph, article, self.decay(now));
        drop(graph);
        self.neighbours.insert(article, Arc::clone(&list));
        list
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

    /// The trending articles of a category's subtree (or of all), best
    /// first, with scores (the best overall is 1).
    fn trending(
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
    /// again: the background thread does, every [`TRENDING_EVERY`]. Only
    /// before the first list do requests wait for one to be summed.
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
    /// [`TRENDING_EVERY`] old, or if there is none yet.
    fn refresh_trending(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<()> {
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
                .offer(Some(ranked.clone()));
            everywhere.offer(Some(ranked));
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
        trending.list = Some(Arc::clone(&list));
        trending.computed_at = Instant::now();
        Ok(list)
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

/// What a recommendation reads in memory besides the reading history.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The Related lists, for "similar to" a recent read.
    pub related: &'a crate::related::Engine,
    /// Articles' placements the caller already has.
    pub known: Known<'a>,
}

/// Where an article is filed, and whether public readers can see it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub category_id: i32,
    pub public: bool,
}

/// What the caller already knows of articles' [`Placement`]s (from its
/// article cache, say), asked of many at once, so that a recommendation asks
/// the store only about the others, and told what the store said of those,
/// so that the next one need not ask again.
pub trait KnownPlacements {
    /// The placements of `ids` it knows, in order.
    fn placements(&self, ids: &[i32]) -> Vec<Option<Placement>>;
    /// What the store said of articles it did not know, in a read begun
    /// after this was made.
    fn learn(&self, filings: &[Filing]);
}

/// An article as the store files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filing {
    pub id: i32,
    pub category_id: i32,
    /// From when public readers see it; `None` unless it is published.
    pub public_from: Option<NaiveDateTime>,
}

/// Knows nothing, and learns nothing.
pub struct NothingKnown;

impl KnownPlacements for NothingKnown {
    fn placements(&self, ids: &[i32]) -> Vec<Option<Placement>> {
        vec![None; ids.len()]
    }

    fn learn(&self, _: &[Filing]) {}
}

/// [`KnownPlacements`], as recommendations are given it.
pub type Known<'a> = &'a dyn KnownPlacements;

/// The placements of the articles `ids` that exist: those `known` has, and
/// the others from the store with one statement.
fn placements(
    conn: &mut SqliteConnection,
    ids: &[i32],
    known: Known<'_>,
    now: NaiveDateTime,
) -> StoreResult<FxHashMap<i32, Placement>> {
    let mut found = FxHashMap::default();
    let mut unknown = Vec::new();
    for (&id, placement) in ids.iter().zip(known.placements(ids)) {
        match placement {
            Some(placement) => {
                found.insert(id, placement);
            }
            None => unknown.push(id),
        }
    }
    if !unknown.is_empty() {
        let rows: Vec<(i32, i32, String, Option<NaiveDateTime>)> = articles::table
            .filter(articles::id.in_ids(&unknown))
            .select((
                articles::id,
                articles::category_id,
                articles::status,
                articles::published_at,
            ))
            .load(conn)?;
        let filings: Vec<Filing> = rows
            .into_iter()
            .map(|(id, category_id, status, published_at)| Filing {
                id,
                category_id,
                public_from: published_at.filter(|_| status == Status::Published.as_str()),
            })
            .collect();
        for filing in &filings {
            let public = filing.public_from.is_some_and(|at| at <= now);
            found.insert(
                filing.id,
                Placement {
                    category_id: filing.category_id,
                    public,
                },
            );
        }
        known.learn(&filings);
    }
    Ok(found)
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

/// Per article: a total score, and the source that gave most with what it
/// gave.
type Scores = FxHashMap<i32, (f32, Source, f32)>;

/// A source's sums over candidates that are neither excluded nor worth
/// nothing, and the best of them.
struct Summed {
    scores: Scores,
    best: f32,
}

impl Summed {
    /// Sums whose entries hold, besides the total, the part of the source
    /// that gave most (one seed of several, say). Against the other
    /// sources of a blend, what counts is what this source gave in all:
    /// each part becomes its total.
    fn new(mut scores: Scores) -> Self {
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
struct Blend {
    excluded: FxHashSet<i32>,
    scores: Scores,
    scale: f32,
}

impl Blend {
    /// The blend of a first source's sums, whose best scores `weight`.
    fn starting_with(excluded: FxHashSet<i32>, weight: f32, summed: Summed) -> Self {
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
    fn add<I>(&mut self, weight: f32, candidates: I)
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
    fn ranked(self, limit: usize) -> Vec<Candidate> {
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

/// The reading graph grows with the store.
impl crate::memory::Grown for Engine {
    fn heap_bytes(&self) -> u64 {
        self.graph.read().expect("graph lock").heap_bytes()
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
        let read = self.graph.read().expect("graph lock").articles().count() as u64;
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
    use super::*;

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
