//! Where kept articles are filed (their category, and from when they are
//! public): what a recommendation asks of a hundred candidates, answered
//! from a table of 16 bytes an article rather than from the entries.

use chrono::{DateTime, Utc};

use super::ArticleCache;
use crate::api::articles::{ArticleStatus, ArticleSummary};
use crate::db::articles::ArticleKey;
use crate::recommend::{Filing, KnownPlacements, Placement};

/// [`ArticleCache::known`].
pub struct KnownToCache<'a> {
    cache: &'a ArticleCache,
    /// The content generation before the store was read.
    generation: u64,
}

impl KnownPlacements for KnownToCache<'_> {
    fn placements(&self, ids: &[i32]) -> Vec<Option<Placement>> {
        self.cache.placements(ids, Utc::now())
    }

    fn learn(&self, filings: &[Filing]) {
        let learnt = filings
            .iter()
            .map(|filing| {
                let published = filing.public_from.map(|at| at.and_utc());
                (filing.id, Filed::new(filing.category_id, published))
            })
            .collect();
        self.cache.file(self.generation, learnt);
    }
}

/// Where an article is filed and from when public readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Filed {
    category_id: i32,
    /// Microseconds since the epoch; [`Filed::NEVER`] for a draft,
    /// [`Filed::UNKNOWN`] for a slot not filled.
    public_from: i64,
}

impl Filed {
    const NEVER: i64 = i64::MAX;
    pub(super) const UNKNOWN: Self = Self {
        category_id: 0,
        public_from: i64::MIN,
    };

    pub(super) fn of(summary: &ArticleSummary) -> Self {
        let published = match (summary.status, summary.published_at) {
            (ArticleStatus::Published, at) => at,
            _ => None,
        };
        Self::new(summary.category_id, published)
    }

    /// Filed in `category_id`, public from `published` (never if `None`).
    fn new(category_id: i32, published: Option<DateTime<Utc>>) -> Self {
        let public_from = match published {
            // Rounded up: never public before its time.
            Some(at) => at.timestamp_micros() + i64::from(at.timestamp_subsec_nanos() % 1_000 != 0),
            None => Self::NEVER,
        };
        Self {
            category_id,
            public_from,
        }
    }

    fn at(self, now: i64) -> Placement {
        Placement {
            category_id: self.category_id,
            public: self.public_from <= now,
        }
    }
}

impl ArticleCache {
    /// Where each of `ids` is filed and whether public readers can see it
    /// at `now`; `None` for articles not kept.
    ///
    /// Not counted as lookups, and does not mark entries as used: a
    /// recommendation asks this of a hundred candidates it mostly drops.
    pub fn placements(&self, ids: &[i32], now: DateTime<Utc>) -> Vec<Option<Placement>> {
        let now = now.timestamp_micros();
        let generation = self.generation();
        let mut learnt = Vec::new();
        let found = {
            let table = self.filed.read();
            ids.iter()
                .map(|&id| {
                    let slot = usize::try_from(id).ok().and_then(|slot| table.get(slot));
                    let filed = match slot {
                        Some(filed) if *filed != Filed::UNKNOWN => *filed,
                        _ => {
                            let cached = self
                                .entries
                                .as_ref()?
                                .peek(&ArticleKey::Id(id))
                                .filter(|cached| self.holds(&ArticleKey::Id(id), cached))?;
                            let filed = Filed::of(&cached.summary);
                            learnt.push((id, filed));
                            filed
                        }
                    };
                    Some(filed.at(now))
                })
                .collect()
        };
        self.file(generation, learnt);
        found
    }

    /// Keeps where articles are filed, as learnt in content generation
    /// `generation`.
    fn file(&self, generation: u64, learnt: Vec<(i32, Filed)>) {
        if learnt.is_empty() {
            return;
        }
        let mut table = self.filed.write();
        // Every content write moves the generation under this lock
        // (`invalidate`, `forget`): unmoved, what was learnt is still true.
        if self.generation() == generation {
            for (id, filed) in learnt {
                let Ok(slot) = usize::try_from(id) else {
                    continue;
                };
                if table.len() <= slot {
                    table.resize(slot + 1, Filed::UNKNOWN);
                }
                table[slot] = filed;
            }
        }
    }

    /// The placements this cache knows, for a recommendation that reads
    /// the store only after this call: what the store tells it of other
    /// articles is kept too (a million-article store's cache holds a tenth
    /// of them, and a recommendation asks after about seventy).
    pub fn known(&self) -> KnownToCache<'_> {
        KnownToCache {
            cache: self,
            generation: self.generation(),
        }
    }
}
