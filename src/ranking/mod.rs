//! Ranking: what is read most now. Turns per-article engagement totals of a
//! window into an ordered list; knows nothing about HTTP or SQL.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{self, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

/// How far back a ranking looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    Hour,
    Day,
    Week,
    Month,
    All,
}

/// Which buckets a window reads, from which period on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Hourly buckets from this hour (since the epoch) on.
    Hours(i32),
    /// Daily buckets from this day (since the epoch) on.
    Days(i32),
    /// Every daily bucket.
    Everything,
}

impl Window {
    /// The buckets covering this window at `now`: exact to the hour for
    /// `1h` and `24h`, to the day for `7d` and `30d`.
    pub fn span(self, now: NaiveDateTime) -> Span {
        let seconds = now.and_utc().timestamp();
        let hour = seconds.div_euclid(3600) as i32;
        let day = seconds.div_euclid(86_400) as i32;
        match self {
            Self::Hour => Span::Hours(hour - 1),
            Self::Day => Span::Hours(hour - 24),
            Self::Week => Span::Days(day - 7),
            Self::Month => Span::Days(day - 30),
            Self::All => Span::Everything,
        }
    }
}

/// What a ranking orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Views,
    Reactions,
    Trending,
}

/// How `trending` weighs reactions and discounts age.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decay {
    /// Hours after publication at which an article's engagement counts half.
    pub half_life_hours: f64,
    /// How many views one reaction is worth.
    pub reaction_weight: f64,
}

impl Default for Decay {
    fn default() -> Self {
        Self {
            half_life_hours: 24.0,
            reaction_weight: 5.0,
        }
    }
}

/// An article's engagement in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub article_id: i32,
    pub category_id: i32,
    pub published_at: NaiveDateTime,
    pub views: i64,
    pub reactions: i64,
}

/// An article's place in a ranking.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub totals: Totals,
    pub score: f64,
}

/// A score for one article.
pub fn score(totals: &Totals, metric: Metric, decay: Decay, now: NaiveDateTime) -> f64 {
    match metric {
        Metric::Views => totals.views as f64,
        Metric::Reactions => totals.reactions as f64,
        Metric::Trending => {
            let engagement = totals.views as f64 + decay.reaction_weight * totals.reactions as f64;
            let age_hours = ((now - totals.published_at).num_seconds().max(0) as f64) / 3600.0;
            engagement * 0.5f64.powf(age_hours / decay.half_life_hours)
        }
    }
}

/// `totals` scored, unless it scores nothing.
pub fn ranked(totals: Totals, metric: Metric, decay: Decay, now: NaiveDateTime) -> Option<Ranked> {
    let score = score(&totals, metric, decay, now);
    (score > 0.0).then_some(Ranked { totals, score })
}

/// The best `limit` of candidates offered one by one, best first: by
/// score, ties to the newer article, then the higher id, so that the order
/// never depends on the database. Holds at most twice `limit` (or 64) at a
/// time: a week at a million articles offers hundreds of thousands.
#[derive(Debug)]
pub struct Top {
    limit: usize,
    kept: Vec<Ranked>,
}

impl Top {
    /// Keeps the best `limit` of what it is offered.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            kept: Vec::new(),
        }
    }

    /// Considers a candidate.
    pub fn offer(&mut self, candidate: Ranked) {
        self.kept.push(candidate);
        if self.kept.len() >= self.limit.saturating_mul(2).max(64) {
            self.kept.select_nth_unstable_by(self.limit, by_rank);
            self.kept.truncate(self.limit);
        }
    }

    /// The best, best first.
    pub fn into_ranked(mut self) -> Vec<Ranked> {
        self.kept.sort_unstable_by(by_rank);
        self.kept.truncate(self.limit);
        self.kept
    }
}

/// Higher scores first, then the newer article, then the higher id.
fn by_rank(a: &Ranked, b: &Ranked) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(b.totals.published_at.cmp(&a.totals.published_at))
        .then(b.totals.article_id.cmp(&a.totals.article_id))
}

/// What a cached ranking is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub window: Window,
    pub metric: Metric,
    pub category: Option<String>,
}

/// Rankings summed in the last few seconds, so that a busy front page does
/// not sum buckets on every request. Counts in a ranking may lag by the TTL.
/// `V` is what is kept per ranking (the HTTP layer keeps scores, and loads
/// the articles they rank again after every edit). After a change to the
/// content, [`Cache::expire`] has the next caller sum them again.
///
/// When an entry's time is up, one caller is chosen to recompute it in the
/// background while every caller, that one too, is served the old one
/// (stale-while-revalidate), so that no request waits for a sum (seconds
/// at a million articles) and a burst never piles up identical ones. An
/// entry lives the TTL or ten times what it took to sum, whichever is
/// longer, so that summing takes at most a tenth of a core per ranking.
/// After a content write the first caller sums before it answers.
#[derive(Debug)]
pub struct Cache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<Key, Entry<V>>>,
    /// Counts [`Cache::expire`] calls: an entry begun before the last one
    /// is stale, however young.
    expirations: AtomicU64,
    /// One lock per key, held by whoever computes it, so that a burst of
    /// misses computes a ranking once and the rest wait for it.
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// What [`Cache::get`] tells a caller.
#[derive(Debug)]
pub enum Lookup<V> {
    /// Serve this ranking, summed at the time given.
    Hit(NaiveDateTime, Arc<V>),
    /// Serve this ranking, and sum it again in the background (then
    /// [`Cache::put`] it): its time is up and this caller was chosen.
    Stale(NaiveDateTime, Arc<V>),
    /// Sum it now and put it: there is none, or the content has changed.
    Miss,
}

#[derive(Debug)]
struct Entry<V> {
    stored: Instant,
    computed_at: NaiveDateTime,
    ranking: Arc<V>,
    /// How long summing it took.
    took: Duration,
    /// Since when a caller has been recomputing this entry.
    refreshing: Option<Instant>,
    /// [`Cache::expirations`] when its sum began.
    begun: u64,
}

/// Most rankings kept at once; the cache starts over when it is full.
const MAX_ENTRIES: usize = 512;
/// A recomputation that takes longer than this is presumed failed.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

impl<V> Cache<V> {
    /// A cache whose entries live `ttl` (zero: no caching).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
            expirations: AtomicU64::new(0),
            flights: Mutex::default(),
        }
    }

    /// The lock to hold while computing `key`.
    pub fn flight(&self, key: &Key) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = match self.flights.lock() {
            Ok(flights) => flights,
            Err(poisoned) => poisoned.into_inner(),
        };
        if flights.len() >= MAX_ENTRIES {
            flights.clear();
        }
        flights.entry(key.clone()).or_default().clone()
    }

    /// A ranking for `key` only if it is fresh (what a caller that waited
    /// for the flight lock checks before computing).
    pub fn fresh(&self, key: &Key) -> Option<(NaiveDateTime, Arc<V>)> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        self.is_fresh(entry)
            .then(|| (entry.computed_at, entry.ranking.clone()))
    }

    /// What to serve for `key`, and whether this caller computes it.
    pub fn get(&self, key: &Key) -> Lookup<V> {
        let Ok(mut entries) = self.entries.lock() else {
            return Lookup::Miss;
        };
        let Some(entry) = entries.get_mut(key) else {
            return Lookup::Miss;
        };
        let (computed_at, ranking) = (entry.computed_at, entry.ranking.clone());
        if self.is_fresh(entry) {
            return Lookup::Hit(computed_at, ranking);
        }
        let expired = self.is_expired(entry);
        match entry.refreshing {
            Some(since) if since.elapsed() < REFRESH_TIMEOUT => Lookup::Hit(computed_at, ranking),
            _ => {
                entry.refreshing = Some(Instant::now());
                if expired {
                    Lookup::Miss
                } else {
                    Lookup::Stale(computed_at, ranking)
                }
            }
        }
    }

    /// Whether a content write came after `entry`'s sum began.
    fn is_expired(&self, entry: &Entry<V>) -> bool {
        entry.begun != self.expirations()
    }

    fn is_fresh(&self, entry: &Entry<V>) -> bool {
        !self.is_expired(entry) && entry.stored.elapsed() < self.ttl.max(entry.took * 10)
    }

    /// What a caller reads before it begins a sum, to hand to [`Cache::put`].
    pub fn expirations(&self) -> u64 {
        self.expirations.load(atomic::Ordering::SeqCst)
    }

    /// Keeps a ranking summed at `computed_at`, which took `took`, begun
    /// when [`Cache::expirations`] said `begun`: if a write has expired the
    /// rankings since, it may not count what the write changed, and is kept
    /// only to be served while the next caller sums again.
    pub fn put(
        &self,
        key: Key,
        computed_at: NaiveDateTime,
        took: Duration,
        ranking: Arc<V>,
        begun: u64,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            let entry = Entry {
                stored: Instant::now(),
                computed_at,
                ranking,
                took,
                refreshing: None,
                begun,
            };
            entries.insert(key, entry);
        }
    }

    /// Marks every ranking stale (after a write that may change which
    /// articles qualify): the next caller sums it again while the others
    /// are served the old scores, never more than one sum at a time per
    /// ranking, however often editors write.
    pub fn expire(&self) {
        self.expirations.fetch_add(1, atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration as Hours};

    use super::*;

    /// A fixed "now" for the tests.
    fn moment() -> NaiveDateTime {
        DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc()
    }

    fn at(hours_ago: i64, now: NaiveDateTime) -> NaiveDateTime {
        now - Hours::hours(hours_ago)
    }

    /// The best `limit` of `candidates`.
    fn rank(
        candidates: Vec<Totals>,
        metric: Metric,
        decay: Decay,
        now: NaiveDateTime,
        limit: usize,
    ) -> Vec<Ranked> {
        let mut top = Top::new(limit);
        for candidate in candidates
            .into_iter()
            .filter_map(|totals| ranked(totals, metric, decay, now))
        {
            top.offer(candidate);
        }
        top.into_ranked()
    }

    fn totals(id: i32, published_at: NaiveDateTime, views: i64, reactions: i64) -> Totals {
        Totals {
            article_id: id,
            category_id: 1,
            published_at,
            views,
            reactions,
        }
    }

    #[test]
    fn trending_prefers_the_newer_of_two_equally_read_articles() {
        let now = moment();
        let ranked = rank(
            vec![
                totals(1, at(30, now), 100, 0),
                totals(2, at(2, now), 100, 0),
            ],
            Metric::Trending,
            Decay::default(),
            now,
            10,
        );
        assert_eq!(
            ranked
                .iter()
                .map(|r| r.totals.article_id)
                .collect::<Vec<_>>(),
            [2, 1]
        );
        assert!(ranked[0].score > ranked[1].score);
    }

    #[test]
    fn a_half_life_halves_the_score() {
        let now = moment();
        let decay = Decay {
            half_life_hours: 10.0,
            reaction_weight: 2.0,
        };
        let score = score(
            &totals(1, at(10, now), 80, 10),
            Metric::Trending,
            decay,
            now,
        );
        assert!((score - 50.0).abs() < 1e-9, "{score}");
    }

    #[test]
    fn the_top_of_candidates_offered_one_by_one_is_the_top_of_all_sorted() {
        let now = moment();
        // A thousand candidates in a scrambled order, with tied scores.
        let candidates: Vec<Totals> = (0..1000)
            .map(|n: i64| {
                let id = (n * 389 % 1000) as i32 + 1;
                totals(id, at(i64::from(id % 7), now), i64::from(id % 50), 0)
            })
            .collect();
        let mut all: Vec<Ranked> = candidates
            .iter()
            .filter_map(|t| ranked(t.clone(), Metric::Views, Decay::default(), now))
            .collect();
        all.sort_by(by_rank);
        all.truncate(10);

        let mut top = Top::new(10);
        for candidate in candidates
            .into_iter()
            .filter_map(|totals| ranked(totals, Metric::Views, Decay::default(), now))
        {
            top.offer(candidate);
            assert!(top.kept.len() < 64, "holds a bounded number");
        }
        assert_eq!(top.into_ranked(), all);
    }

    #[test]
    fn ties_break_by_newer_then_higher_id_and_zero_scores_are_dropped() {
        let now = moment();
        let same = at(5, now);
        let ranked = rank(
            vec![
                totals(1, same, 5, 0),
                totals(3, same, 5, 0),
                totals(2, at(1, now), 5, 0),
                totals(4, now, 0, 9),
            ],
            Metric::Views,
            Decay::default(),
            now,
            10,
        );
        assert_eq!(
            ranked
                .iter()
                .map(|r| r.totals.article_id)
                .collect::<Vec<_>>(),
            [2, 3, 1]
        );
    }

    fn key() -> Key {
        Key {
            window: Window::Day,
            metric: Metric::Views,
            category: None,
        }
    }

    fn served<V: Copy>(lookup: Lookup<V>) -> Option<V> {
        match lookup {
            Lookup::Hit(_, ranking) | Lookup::Stale(_, ranking) => Some(*ranking),
            Lookup::Miss => None,
        }
    }

    #[test]
    fn a_ranking_past_its_time_is_served_while_one_caller_sums_it_again() {
        let cache: Cache<u8> = Cache::new(Duration::from_millis(1));
        let now = moment();
        assert!(
            matches!(cache.get(&key()), Lookup::Miss),
            "a miss is summed"
        );
        cache.put(key(), now, Duration::ZERO, Arc::new(1), cache.expirations());
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(
            matches!(cache.get(&key()), Lookup::Stale(_, r) if *r == 1),
            "the first caller after its time serves it and sums it again"
        );
        assert!(
            matches!(cache.get(&key()), Lookup::Hit(_, r) if *r == 1),
            "the others serve it meanwhile"
        );
        cache.put(key(), now, Duration::ZERO, Arc::new(2), cache.expirations());
        assert_eq!(served(cache.get(&key())), Some(2));
        assert!(matches!(
            Cache::<()>::new(Duration::ZERO).get(&key()),
            Lookup::Miss
        ));
    }

    #[test]
    fn a_ranking_that_took_long_to_sum_lives_ten_times_as_long() {
        let cache: Cache<u8> = Cache::new(Duration::from_millis(1));
        let now = moment();
        cache.put(
            key(),
            now,
            Duration::from_secs(1),
            Arc::new(1),
            cache.expirations(),
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(matches!(cache.get(&key()), Lookup::Hit(_, r) if *r == 1));
    }

    #[test]
    fn after_a_content_write_one_caller_sums_before_answering() {
        let cache: Cache<u8> = Cache::new(Duration::from_secs(600));
        let now = moment();
        cache.put(key(), now, Duration::ZERO, Arc::new(1), cache.expirations());
        assert_eq!(cache.fresh(&key()).map(|(_, v)| *v), Some(1));
        cache.expire();
        assert!(cache.fresh(&key()).is_none());
        assert!(
            matches!(cache.get(&key()), Lookup::Miss),
            "the first caller sums again"
        );
        assert_eq!(
            served(cache.get(&key())),
            Some(1),
            "the others get the old one"
        );
        cache.put(key(), now, Duration::ZERO, Arc::new(2), cache.expirations());
        assert_eq!(cache.fresh(&key()).map(|(_, v)| *v), Some(2));
    }

    #[test]
    fn a_sum_begun_before_a_content_write_is_summed_again() {
        let cache: Cache<u8> = Cache::new(Duration::from_secs(600));
        let begun = cache.expirations();
        cache.expire();
        cache.put(key(), moment(), Duration::ZERO, Arc::new(1), begun);
        assert!(cache.fresh(&key()).is_none());
        assert!(
            matches!(cache.get(&key()), Lookup::Miss),
            "the next caller sums again"
        );
    }

    #[test]
    fn windows_read_hours_or_days() {
        let now = DateTime::from_timestamp(86_400 * 100 + 3_600 * 5, 0)
            .unwrap()
            .naive_utc();
        assert_eq!(Window::Hour.span(now), Span::Hours(2_404));
        assert_eq!(Window::Day.span(now), Span::Hours(2_381));
        assert_eq!(Window::Week.span(now), Span::Days(93));
        assert_eq!(Window::All.span(now), Span::Everything);
    }
}
