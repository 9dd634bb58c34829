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
//!   articles, with a low weight; for a reader with no history (cold
//!   start) they are all there is. Should every source give too few,
//!   older articles fill the list (see `list::older`).
//!
//! An item's reason is the source that gave it most. Read articles, the
//! context article and articles public readers cannot see are left out, and
//! no category takes more than a configured share of the list while other
//! categories have candidates.

mod blend;
pub mod eval;
pub mod graph;
mod history;
mod list;
mod neighbours;
mod placements;
mod trending;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use parking_lot::{Mutex, RwLock};
use quick_cache::sync::Cache;
use rustc_hash::FxHashSet;

pub use self::graph::Graph;
pub use self::list::Sources;
pub use self::neighbours::NEIGHBOURS_BYTES;
use self::neighbours::{Neighbours, NeighboursSize};
pub use self::placements::{Filing, Known, KnownPlacements, NothingKnown, Placement};
use self::trending::Trending;
use crate::db::StoreResult;
use crate::db::articles::public_at;
use crate::db::schema::articles;
use crate::db::taxonomy::CategoryTree;
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
// Older articles' lists are kept in memory that long (see `add_similar`).
const _: () = assert!(SIMILAR_ITEMS <= crate::related::OLDER_ITEMS);
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
/// How often the trending candidates are summed again (a content write
/// only has them filed again: see [`trending`]).
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
    /// Held while the trending list is filed again after a content write.
    refiling: Mutex<()>,
    /// Counts content writes; a [`Shared`] from an older one is not used,
    /// and trending lists filed in one are filed again.
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
                kept: None,
                computed_at: Instant::now(),
            }),
            first_trending: Mutex::new(()),
            refiling: Mutex::new(()),
            generation: AtomicU64::new(0),
            shared: Mutex::default(),
            loaded: AtomicBool::new(false),
        }
    }

    /// Forgets what was loaded of categories and articles, and has the
    /// next request file the trending lists again; called once a content
    /// write has committed.
    pub fn content_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The category tree and the newest articles, loaded at most once per
    /// content write and [`SHARED_FOR`].
    fn shared(&self, conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<Arc<Shared>> {
        // Read before loading: a write committed meanwhile makes the result
        // old at once, never the other way round.
        let generation = self.generation.load(Ordering::SeqCst);
        if let Some(shared) = self.shared.lock().as_ref()
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
        *self.shared.lock() = Some(Arc::clone(&shared));
        Ok(shared)
    }

    /// The configuration in force.
    pub fn params(&self) -> Params {
        self.params
    }

    /// How much a read made at `at` (Unix seconds) still counts at `now`.
    fn decay(&self, now: NaiveDateTime) -> impl Fn(u32) -> f32 + Copy + use<> {
        let now = now.and_utc().timestamp();
        let half_life = self.params.half_life_days * 86_400.0;
        move |at: u32| 0.5f64.powf((now - i64::from(at)).max(0) as f64 / half_life) as f32
    }
}

/// The newest public articles, the newest scoring most.
fn fresh(conn: &mut SqliteConnection, now: NaiveDateTime) -> StoreResult<Vec<(i32, f32)>> {
    Ok(newest(conn, now, BACKGROUND_ITEMS, 0)?
        .into_iter()
        .enumerate()
        .map(|(rank, id)| (id, 1.0 / (rank as f32 + 1.0)))
        .collect())
}

/// Public articles by publication, newest first: `count` of them after the
/// first `skip`.
fn newest(
    conn: &mut SqliteConnection,
    now: NaiveDateTime,
    count: usize,
    skip: usize,
) -> StoreResult<Vec<i32>> {
    Ok(articles::table
        .filter(public_at(now))
        .order((articles::published_at.desc(), articles::id.desc()))
        .limit(count as i64)
        .offset(skip as i64)
        .select(articles::id)
        .load(conn)?)
}
