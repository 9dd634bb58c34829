//! Ranking: what is read most now. Turns per-article engagement totals of a
//! window into an ordered list, and keeps recent ones ([`Cache`]); knows
//! nothing about HTTP or SQL.

mod cache;

use std::cmp::Ordering;

use chrono::NaiveDateTime;

pub use self::cache::{Cache, Key, Lookup};

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

/// Most half-lives an article's engagement is decayed by: 0.5^1000 is
/// about 1e-301, still a normal `f64`. Past it (1,000 days at the default
/// half-life) a score would round to zero and the article drop out of the
/// ranking, so that a site of older articles (an archive just imported)
/// had an empty trending box however much it was read; articles that old
/// are ranked by their engagement alone, below any younger one as read.
const MOST_HALF_LIVES: f64 = 1000.0;

/// A score for one article.
pub fn score(totals: &Totals, metric: Metric, decay: Decay, now: NaiveDateTime) -> f64 {
    match metric {
        Metric::Views => totals.views as f64,
        Metric::Reactions => totals.reactions as f64,
        Metric::Trending => {
            let engagement = totals.views as f64 + decay.reaction_weight * totals.reactions as f64;
            let age_hours = ((now - totals.published_at).num_seconds().max(0) as f64) / 3600.0;
            let half_lives = (age_hours / decay.half_life_hours).min(MOST_HALF_LIVES);
            engagement * 0.5f64.powf(half_lives)
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration as Hours};

    use super::*;

    /// A fixed "now" for the tests.
    pub(super) fn moment() -> NaiveDateTime {
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
    fn articles_years_old_still_trend_by_how_much_they_are_read() {
        let now = moment();
        let day = 24;
        let ranked = rank(
            vec![
                totals(1, at(3000 * day, now), 5, 0),
                totals(2, at(1100 * day, now), 36, 3),
                totals(3, at(800 * day, now), 1, 0),
            ],
            Metric::Trending,
            Decay::default(),
            now,
            10,
        );
        let order: Vec<i32> = ranked.iter().map(|r| r.totals.article_id).collect();
        assert_eq!(order, [3, 2, 1], "younger first, then by engagement");
        assert!(ranked.iter().all(|r| r.score > 0.0));
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
