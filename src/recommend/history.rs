//! What readers read: each view and reaction as it is acknowledged, and
//! the stored history, loaded in the background at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::graph::{self, Graph, Read};
use super::{DIRTY_PER_READ, Engine, REACTION_SIGNAL, REFRESH_EVERY, Signal};
use crate::db::schema::{reactions, readers, views};
use crate::db::{StoreResult, purge};

impl Engine {
    /// True once the stored reading history has been loaded, or loading it
    /// has failed.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Records an acknowledged view or reaction.
    pub fn record(&self, reader: &str, article: i32, at: NaiveDateTime, signal: Signal) {
        let weight = match signal {
            Signal::View => 1.0,
            Signal::Reaction => REACTION_SIGNAL,
        };
        let mut graph = self.graph.write();
        if !graph.record(reader, article, graph::seconds(at), weight) {
            return;
        }
        // What this reader read before now leads to `article` too.
        let number = graph.reader(reader).expect("just recorded");
        let mut earlier: Vec<Read> = graph.history(number).to_vec();
        drop(graph);
        earlier.sort_unstable_by_key(|read| std::cmp::Reverse(read.at));
        self.dirty.lock().extend(
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
            let mut graph = self.graph.write();
            let arrived = std::mem::replace(&mut *graph, built);
            graph.absorb(arrived);
        }
        Ok(loaded)
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
        self.graph.read().readers()
    }
}
