//! Rankings summed in the last few seconds, served while one caller sums
//! them again (see [`Cache`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{self, AtomicU64};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use parking_lot::Mutex;

use super::{Metric, Window};

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
        let mut flights = self.flights.lock();
        if flights.len() >= MAX_ENTRIES {
            flights.clear();
        }
        flights.entry(key.clone()).or_default().clone()
    }

    /// A ranking for `key` only if it is fresh (what a caller that waited
    /// for the flight lock checks before computing).
    pub fn fresh(&self, key: &Key) -> Option<(NaiveDateTime, Arc<V>)> {
        let entries = self.entries.lock();
        let entry = entries.get(key)?;
        self.is_fresh(entry)
            .then(|| (entry.computed_at, entry.ranking.clone()))
    }

    /// What to serve for `key`, and whether this caller computes it.
    pub fn get(&self, key: &Key) -> Lookup<V> {
        let mut entries = self.entries.lock();
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
        let mut entries = self.entries.lock();
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
    use super::*;
    use crate::ranking::tests::moment;

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
}
