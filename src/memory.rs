//! The memory budget (`FRONTPAGE_MEMORY_MB`).
//!
//! What the server keeps in memory is of two kinds. Some of it grows with
//! the store and must be held whatever it weighs: the Related index and the
//! newest articles' lists, the reading graph. The rest are caches, which
//! only make reads faster: recommendation neighbour lists, older articles'
//! Related lists, articles ready to show, serialised responses. The caches
//! share what the growing part leaves of the budget, in that order (what a
//! megabyte of each saves, most first: a neighbour list missed costs tens
//! of microseconds of CPU and a recommendation sums twenty; an older
//! Related list, 0.7 KB, a read from the store and finding its words, about
//! 25 µs; an article, 2.8 KB, a read from the store; a response, rendering
//! what is cached below it), each up to its own bound: a small store runs
//! with every cache at its bound, a million-article one with small caches
//! rather than with more memory than it was given. The shares are worked
//! out again as the store grows.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

/// No cache is made smaller than this (or than its bound, if that is
/// smaller): a store too large for its budget still keeps its hottest
/// entries.
pub const FLOOR: u64 = 4 << 20;

/// How often the shares are worked out again once the store is loaded.
pub const BALANCE_EVERY: Duration = Duration::from_secs(30);

/// Something that holds memory the budget cannot take back.
pub trait Grown: Send + Sync {
    /// Bytes held on the heap, about.
    fn heap_bytes(&self) -> u64;
}

/// A cache whose capacity the budget sets.
pub trait Resizable: Send + Sync {
    /// Holds at most `bytes` from now on, dropping entries if it holds more.
    fn resize(&self, bytes: u64);

    /// Bytes held now, as the cache weighs its entries.
    fn held(&self) -> u64;

    /// The most it could hold were every key in it, when the store says;
    /// a share past that would go unused.
    fn wanted(&self) -> Option<u64> {
        None
    }
}

/// A cache under the budget, and the most it may ever take.
pub struct Bounded {
    pub name: &'static str,
    pub cache: Arc<dyn Resizable>,
    pub bound: u64,
}

/// The budget and what it covers.
pub struct Budget {
    bytes: u64,
    grown: Vec<Arc<dyn Grown>>,
    caches: Vec<Bounded>,
    last: Mutex<Option<Balance>>,
}

impl Budget {
    /// A budget of `bytes` over the structures in `grown` and the caches
    /// in `caches`. Every cache starts at [`FLOOR`] until the first
    /// [`Budget::balance`]: before the store is loaded nothing says how
    /// much the growing part will take.
    pub fn new(bytes: u64, grown: Vec<Arc<dyn Grown>>, caches: Vec<Bounded>) -> Self {
        for cache in &caches {
            cache.cache.resize(cache.bound.min(FLOOR));
        }
        Self {
            bytes,
            grown,
            caches,
            last: Mutex::default(),
        }
    }

    /// Sizes every cache to its share of what the growing structures leave
    /// now, and says what each got.
    pub fn balance(&self) -> Balance {
        let grown: u64 = self.grown.iter().map(|part| part.heap_bytes()).sum();
        let bounds: Vec<u64> = self
            .caches
            .iter()
            .map(|cache| {
                let wanted = cache.cache.wanted().unwrap_or(u64::MAX);
                cache.bound.min(wanted.max(FLOOR))
            })
            .collect();
        let sizes = shares(self.bytes, grown, &bounds);
        for (cache, size) in self.caches.iter().zip(&sizes) {
            cache.cache.resize(*size);
        }
        let balance = Balance {
            grown,
            caches: self
                .caches
                .iter()
                .map(|cache| cache.name)
                .zip(sizes)
                .collect(),
        };
        *self.last.lock() = Some(balance.clone());
        balance
    }

    /// What the last [`Budget::balance`] found and gave, if there was one.
    pub fn last(&self) -> Option<Balance> {
        self.last.lock().clone()
    }

    /// What each cache holds now.
    pub fn held(&self) -> Vec<(&'static str, u64)> {
        self.caches
            .iter()
            .map(|cache| (cache.name, cache.cache.held()))
            .collect()
    }
}

/// What [`Budget::balance`] found and gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Balance {
    /// Bytes held by the structures that grow with the store.
    pub grown: u64,
    /// Each cache's capacity, in bytes.
    pub caches: Vec<(&'static str, u64)>,
}

/// Each cache's capacity, the caches taken in order: each gets what it
/// may hold of what `grown` and the caches before it leave of `budget`,
/// never below [`FLOOR`] (nor above its bound).
pub fn shares(budget: u64, grown: u64, bounds: &[u64]) -> Vec<u64> {
    let mut left = budget.saturating_sub(grown);
    bounds
        .iter()
        .map(|&bound| {
            let share = bound.min(left);
            left -= share;
            share.max(FLOOR).min(bound)
        })
        .collect()
}

#[cfg(test)]
mod tests {

    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_small_store_gets_every_cache_at_its_bound() {
        assert_eq!(
            shares(768 * MIB, 100 * MIB, &[320 * MIB, 128 * MIB]),
            [320 * MIB, 128 * MIB]
        );
    }

    #[test]
    fn a_large_store_serves_the_caches_in_order() {
        // 600 grown leaves 168 of 768: the first cache's bound, and the
        // rest for the second.
        assert_eq!(
            shares(768 * MIB, 600 * MIB, &[128 * MIB, 320 * MIB, 64 * MIB]),
            [128 * MIB, 40 * MIB, FLOOR]
        );
    }

    #[test]
    fn no_cache_goes_below_the_floor_or_above_its_bound() {
        assert_eq!(
            shares(768 * MIB, 2_000 * MIB, &[320 * MIB, 2 * MIB]),
            [FLOOR, 2 * MIB]
        );
    }

    struct Fixed(u64);

    impl Grown for Fixed {
        fn heap_bytes(&self) -> u64 {
            self.0
        }
    }

    #[derive(Default)]
    struct Recorded(Mutex<Vec<u64>>);

    impl Resizable for Recorded {
        fn resize(&self, bytes: u64) {
            self.0.lock().push(bytes);
        }

        fn held(&self) -> u64 {
            0
        }
    }

    #[test]
    fn caches_start_at_the_floor_and_get_their_share_when_balanced() {
        let cache = Arc::new(Recorded::default());
        let budget = Budget::new(
            100 * MIB,
            vec![Arc::new(Fixed(60 * MIB)), Arc::new(Fixed(20 * MIB))],
            vec![Bounded {
                name: "articles",
                cache: Arc::clone(&cache) as Arc<dyn Resizable>,
                bound: 64 * MIB,
            }],
        );
        assert_eq!(
            budget.balance(),
            Balance {
                grown: 80 * MIB,
                caches: vec![("articles", 20 * MIB)],
            }
        );
        assert_eq!(*cache.0.lock(), [FLOOR, 20 * MIB]);
        assert_eq!(budget.last().unwrap().caches, [("articles", 20 * MIB)]);
    }
}
