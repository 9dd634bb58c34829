//! Loading articles in their wire forms: from the [`ArticleCache`](super::ArticleCache) and the
//! kept counters (see [`crate::db::changes::Counters`]) where they have
//! them, and from the store otherwise (then cached).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;

use super::cache::CachedArticle;
use super::{Article, ArticleSummary, JsonText, ShownArticle, Teaser};
use crate::db::articles::{self, ArticleKey};
use crate::db::changes::Counts;
use crate::db::{self, StoreResult, engagement, shown};
use crate::error::AppResult;
use crate::state::AppState;

/// Loads article `key` as a read shows it, whatever its status, with the
/// counters kept now (see [`crate::db::changes::Counters`]): from the
/// [`ArticleCache`](super::ArticleCache), or from the store (and then cached).
pub fn load_article(state: &AppState, key: ArticleKey) -> AppResult<Option<ShownArticle>> {
    let generation = state.articles.generation();
    if let Some(cached) = state.articles.get(&key) {
        let counts = kept_counts(state, cached.summary.id)?;
        return Ok(Some(cached.shown(counts)));
    }
    let counters = &state.db.changes().counters;
    let epoch = counters.epoch();
    Ok(state.db.lookup_one(|conn| {
        let Some(found) = shown::find(conn, &key)? else {
            return Ok(None);
        };
        let taxonomy = state.articles.taxonomy(conn, generation)?;
        let (row, body_html, mut extras) = shown::one_with_extras(found, taxonomy);
        let id = row.id;
        let article = Article {
            summary: ArticleSummary::new(row, &extras),
            body_html: JsonText::new(&body_html),
        };
        let counts = Arc::new(extras.counts.remove(&id).unwrap_or_default());
        counters.keep(epoch, id, Arc::clone(&counts));
        let cached = Arc::new(CachedArticle::new(article, generation));
        let shown = cached.shown(counts);
        state.articles.put(key, cached);
        Ok(Some(shown))
    })?)
}

/// The id of the article `key` names if public readers can see it now: from
/// the [`ArticleCache`](super::ArticleCache), or with one indexed statement.
pub fn visible_id(state: &AppState, key: &ArticleKey) -> AppResult<Option<i32>> {
    if let Some(cached) = state.articles.get(key) {
        let summary = &cached.summary;
        return Ok(summary.is_public(Utc::now()).then_some(summary.id));
    }
    let now = db::now();
    Ok(state
        .db
        .lookup_one(|conn| articles::visible_id(conn, key, now))?)
}

/// An article's counters: as kept (see [`crate::db::changes::Counters`]),
/// or read with one statement and then kept.
fn kept_counts(state: &AppState, id: i32) -> StoreResult<Arc<Counts>> {
    let counters = &state.db.changes().counters;
    if let Some(counts) = counters.get(id) {
        return Ok(counts);
    }
    let epoch = counters.epoch();
    let counts = Arc::new(
        state
            .db
            .lookup_one(|conn| engagement::counts_of(conn, id))?,
    );
    counters.keep(epoch, id, Arc::clone(&counts));
    Ok(counts)
}

/// The list forms of the articles with these ids (those that exist), as
/// feeds show them: from the [`ArticleCache`](super::ArticleCache) and the kept counters where
/// they have them, and from the store otherwise (one read transaction, only
/// then).
pub fn teasers(state: &AppState, ids: &[i32]) -> StoreResult<HashMap<i32, Teaser>> {
    let counters = &state.db.changes().counters;
    let epoch = counters.epoch();
    let mut found = HashMap::with_capacity(ids.len());
    let mut uncounted = Vec::new();
    let mut missing = Vec::new();
    for &id in ids {
        let Some(cached) = state.articles.find(&ArticleKey::Id(id)) else {
            missing.push(id);
            continue;
        };
        // Mostly shown with its counters already: no clone of them (a
        // cold cache line), and rendered outside their lock otherwise.
        match counters.with(id, |counts| {
            cached
                .shown_teaser(counts)
                .ok_or_else(|| Arc::clone(counts))
        }) {
            Some(Ok(teaser)) => {
                found.insert(id, teaser);
            }
            Some(Err(counts)) => {
                found.insert(id, cached.teaser(&counts));
            }
            None => uncounted.push((id, cached)),
        }
    }
    state
        .articles
        .count(ids.len() - missing.len(), missing.len());
    if missing.is_empty() && uncounted.is_empty() {
        return Ok(found);
    }
    // Read before the store is (see `ArticleCache::taxonomy`).
    let generation = state.articles.generation();
    // Each statement sees one snapshot, and the two read different
    // articles: no transaction is needed.
    state.db.lookup_one(|conn| {
        if !uncounted.is_empty() {
            let ids: Vec<i32> = uncounted.iter().map(|(id, _)| *id).collect();
            let mut counts = engagement::counts(conn, &ids)?;
            for (id, cached) in uncounted {
                let counts = Arc::new(counts.remove(&id).unwrap_or_default());
                found.insert(id, cached.teaser(&counts));
                counters.keep(epoch, id, counts);
            }
        }
        if !missing.is_empty() {
            let shown = shown::by_ids(conn, &missing)?;
            let taxonomy = state.articles.taxonomy(conn, generation)?;
            let (rows, extras) = shown::with_extras(shown, taxonomy);
            found.extend(
                rows.into_iter()
                    .map(|row| (row.id, Teaser::new(ArticleSummary::new(row, &extras)))),
            );
        }
        Ok(found)
    })
}
