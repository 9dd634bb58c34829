//! How a batch's views are written: queued as they come, then appended
//! together when the batch ends, after one lookup each of their articles,
//! their readers and the articles' view totals.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::{Counter, Tally, VIEW_COUNTER};
use crate::content::Status;
use crate::db::StoreResult;
use crate::db::articles::ArticleKey;
use crate::db::in_ids::{InIdsExt, InTextsExt};
use crate::db::json_rows::JsonRows;
use crate::db::schema::{article_counts, articles, readers};

/// Appends `[article_id, reader_id, viewed_at]` rows to the views.
const APPEND_VIEWS: &str = "INSERT INTO views (article_id, reader_id, viewed_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)";
/// Registers reader keys not seen before.
const REGISTER_READERS: &str = "INSERT INTO readers (key) SELECT value FROM json_each(?) WHERE true ON CONFLICT (key) DO NOTHING";

/// One view to count.
#[derive(Debug, Clone)]
pub struct View {
    /// The article viewed.
    pub article: ArticleKey,
    /// Who viewed it, if the client says.
    pub reader: Option<String>,
    /// When.
    pub at: NaiveDateTime,
    /// Count it only if public readers can see the article at this time;
    /// `None` counts a view of any article that exists.
    pub visible_at: Option<NaiveDateTime>,
}

/// What became of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewOutcome {
    /// Counted: the article's id and its view total, this view included.
    Counted { article_id: i32, views: i64 },
    /// No (visible) article has that key.
    NotFound,
}

/// Where a queued view's outcome appears once its batch is written.
pub type ViewSlot = Arc<OnceLock<ViewOutcome>>;

/// A view and where its outcome will appear.
#[derive(Debug)]
pub(super) struct QueuedView {
    view: View,
    outcome: ViewSlot,
}

/// Queues a view in this batch. Views are the bulk of all writes, so they
/// are not written one by one: the batch writes all of its views together
/// when it ends, and the returned slot then holds the outcome.
pub fn record_view(tally: &mut Tally, view: View) -> ViewSlot {
    let outcome = ViewSlot::default();
    tally.views.push(QueuedView {
        view,
        outcome: Arc::clone(&outcome),
    });
    outcome
}

/// When the articles some views name can be seen, looked up once per batch.
struct Viewable {
    by_id: HashMap<i32, Option<NaiveDateTime>>,
    by_slug: HashMap<String, (i32, Option<NaiveDateTime>)>,
}

impl Viewable {
    /// Looks up every article `views` name, with one query.
    fn load(conn: &mut SqliteConnection, views: &[QueuedView]) -> StoreResult<Self> {
        let mut ids = Vec::new();
        let mut slugs = Vec::new();
        for queued in views {
            match &queued.view.article {
                ArticleKey::Id(id) => ids.push(*id),
                ArticleKey::Slug(slug) => slugs.push(slug.as_str()),
            }
        }
        let rows: Vec<(i32, String, String, Option<NaiveDateTime>)> = articles::table
            .filter(
                articles::id
                    .in_ids(&ids)
                    .or(articles::slug.in_texts(&slugs)),
            )
            .select((
                articles::id,
                articles::slug,
                articles::status,
                articles::published_at,
            ))
            .load(conn)?;
        let mut viewable = Self {
            by_id: HashMap::with_capacity(rows.len()),
            by_slug: HashMap::new(),
        };
        for (id, slug, status, published_at) in rows {
            // Public from `published_at` on, if published at all.
            let public_from = published_at.filter(|_| status == Status::Published.as_str());
            viewable.by_id.insert(id, public_from);
            viewable.by_slug.insert(slug, (id, public_from));
        }
        Ok(viewable)
    }

    /// The id of the article `key` names, if it exists and (when `at` is
    /// given) the public can see it at `at`.
    fn id(&self, key: &ArticleKey, at: Option<NaiveDateTime>) -> Option<i32> {
        let (id, public_from) = match key {
            ArticleKey::Id(id) => (*id, *self.by_id.get(id)?),
            ArticleKey::Slug(slug) => *self.by_slug.get(slug)?,
        };
        match at {
            None => Some(id),
            Some(at) => public_from.is_some_and(|from| from <= at).then_some(id),
        }
    }
}

/// The ids of these reader keys, registering those not seen before; one
/// query, and two statements more when some are new.
fn reader_ids(conn: &mut SqliteConnection, keys: &[&str]) -> StoreResult<HashMap<String, i32>> {
    let find = |conn: &mut SqliteConnection, keys: &[&str]| -> StoreResult<Vec<(String, i32)>> {
        Ok(readers::table
            .filter(readers::key.in_texts(keys))
            .select((readers::key, readers::id))
            .load(conn)?)
    };
    let mut ids: HashMap<String, i32> = find(conn, keys)?.into_iter().collect();
    let new: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|key| !ids.contains_key(*key))
        .collect();
    if !new.is_empty() {
        JsonRows::new(REGISTER_READERS, &new).run(conn)?;
        ids.extend(find(conn, &new)?);
    }
    Ok(ids)
}

impl Tally {
    /// Reads the view totals of the articles this batch has not counted
    /// views of yet, with one query, adding the views not yet counted.
    fn load_view_totals(
        &mut self,
        conn: &mut SqliteConnection,
        article_ids: &[i32],
    ) -> StoreResult<()> {
        let unseen: Vec<i32> = article_ids
            .iter()
            .copied()
            .filter(|id| !self.view_totals.contains_key(id))
            .collect();
        if unseen.is_empty() {
            return Ok(());
        }
        let stored: HashMap<i32, i64> = article_counts::table
            .filter(article_counts::counter.eq(VIEW_COUNTER))
            .filter(article_counts::article_id.in_ids(&unseen))
            .select((article_counts::article_id, article_counts::count))
            .load::<(i32, i64)>(conn)?
            .into_iter()
            .collect();
        for id in unseen {
            let stored = stored.get(&id).copied().unwrap_or(0)
                + self.uncounted.views.get(&id).copied().unwrap_or(0);
            self.view_totals.insert(id, Counter { stored, added: 0 });
        }
        Ok(())
    }

    /// Appends the queued views with one statement, after one lookup each
    /// of their articles, their readers and the articles' view totals.
    pub(super) fn write_views(&mut self, conn: &mut SqliteConnection) -> StoreResult<()> {
        let queued = std::mem::take(&mut self.views);
        if queued.is_empty() {
            return Ok(());
        }
        self.uncounted.sync(conn)?;
        let viewable = Viewable::load(conn, &queued)?;
        let mut keys: Vec<&str> = queued
            .iter()
            .filter_map(|queued| queued.view.reader.as_deref())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let readers = reader_ids(conn, &keys)?;
        let found: Vec<Option<i32>> = queued
            .iter()
            .map(|queued| viewable.id(&queued.view.article, queued.view.visible_at))
            .collect();
        let ids: Vec<i32> = found.iter().flatten().copied().collect();
        self.load_view_totals(conn, &ids)?;
        let mut rows = Vec::with_capacity(ids.len());
        for (QueuedView { view, outcome }, article_id) in queued.into_iter().zip(found) {
            let Some(article_id) = article_id else {
                let _ = outcome.set(ViewOutcome::NotFound);
                continue;
            };
            let total = self.view_totals.get_mut(&article_id).expect("loaded above");
            total.added += 1;
            let views = total.stored + total.added;
            let _ = outcome.set(ViewOutcome::Counted { article_id, views });
            let reader_id = view.reader.and_then(|key| readers.get(&key).copied());
            rows.push((article_id, reader_id, timestamp(view.at)));
        }
        if !rows.is_empty() {
            JsonRows::new(APPEND_VIEWS, &rows).run(conn)?;
        }
        Ok(())
    }
}

/// A time as Diesel stores a `Timestamp` in SQLite, for statements that
/// bind it inside JSON.
fn timestamp(at: NaiveDateTime) -> String {
    at.format("%F %T%.f").to_string()
}
