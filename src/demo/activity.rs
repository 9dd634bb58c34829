//! Simulated readers for the demo: a few hundred of them, reading a skewed
//! handful of stories much more than the rest, so that rankings, reaction
//! counts and recommendations show something on first start. Deterministic:
//! the same seed gives the same activity.

use chrono::NaiveDateTime;
use diesel::sqlite::SqliteConnection;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::articles::ArticleKey;
use crate::db::engagement::{self, Tally, View};
use crate::db::{StoreError, StoreResult};

/// How many demo readers there are.
pub const READERS: usize = 300;
/// Reaction kinds demo readers give, with how often.
const KINDS: [(&str, u32); 4] = [("very_good", 55), ("good", 28), ("neutral", 11), ("bad", 6)];

/// What a simulation stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub views: usize,
    pub reactions: usize,
}

/// Records views and reactions of [`READERS`] readers on `articles`
/// (`(id, published_at)`), each at a time between publication and `now`.
pub fn simulate(
    conn: &mut SqliteConnection,
    tally: &mut Tally,
    articles: &[(i32, NaiveDateTime)],
    now: NaiveDateTime,
    seed: u64,
) -> StoreResult<Activity> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Popularity falls with a random rank (a Zipf-like skew), not with age.
    let mut ranks: Vec<usize> = (0..articles.len()).collect();
    for i in (1..ranks.len()).rev() {
        ranks.swap(i, rng.random_range(0..=i));
    }
    let weights: Vec<f64> = ranks
        .iter()
        .map(|rank| 1.0 / (*rank as f64 + 1.0).powf(1.1))
        .collect();
    let pick =
        WeightedIndex::new(&weights).map_err(|error| StoreError::Internal(error.to_string()))?;
    let kind = WeightedIndex::new(KINDS.iter().map(|(_, weight)| *weight))
        .map_err(|error| StoreError::Internal(error.to_string()))?;
    let mut activity = Activity::default();
    for reader in 0..READERS {
        let key = format!("demo-reader-{reader:03}");
        for _ in 0..rng.random_range(3..30) {
            let (article_id, published_at) = articles[pick.sample(&mut rng)];
            let span = (now - published_at).num_seconds().max(1);
            let at = published_at + chrono::Duration::seconds(rng.random_range(0..span));
            let view = View {
                article: ArticleKey::Id(article_id),
                reader: Some(key.clone()),
                at,
                visible_at: None,
            };
            engagement::record_view(tally, view);
            activity.views += 1;
            if rng.random_bool(0.2) {
                let (kind, _) = KINDS[kind.sample(&mut rng)];
                if engagement::add_reaction(conn, tally, article_id, kind, &key, at)?.changed {
                    activity.reactions += 1;
                }
            }
        }
    }
    Ok(activity)
}
