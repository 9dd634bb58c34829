//! How the writer notices commits by other processes (a CLI import, a
//! restore), which the caches built from the store must hear of.

use std::time::Instant;

use diesel::sqlite::SqliteConnection;
use diesel::{QueryableByName, RunQueryDsl, sql_query};

use super::{Batch, Open, WATCH_EVERY};

/// Looks for commits by other connections: SQLite's `data_version` on the
/// writer's connection moves only for those, and only this process's writer
/// commits here.
#[derive(Default)]
pub(super) struct Watch {
    /// The last `data_version` seen, on the connection open then.
    seen: Option<i64>,
    looked_at: Option<Instant>,
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    data_version: i64,
}

impl Watch {
    /// Looks, at most every [`WATCH_EVERY`], opening the connection if need
    /// be; tells the batch when another connection committed. A connection
    /// opened afresh cannot tell what it missed, so that counts too.
    pub(super) fn look<B: Batch>(
        &mut self,
        conn: &mut Option<SqliteConnection>,
        open: &Open,
        carried: &B::Carry,
    ) {
        if self.looked_at.is_some_and(|at| at.elapsed() < WATCH_EVERY) {
            return;
        }
        self.looked_at = Some(Instant::now());
        if conn.is_none() {
            match open() {
                Ok(opened) => *conn = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, "cannot open the writer connection");
                    return;
                }
            }
            if self.seen.take().is_some() {
                B::others_wrote(carried);
            }
        }
        let Some(writer) = conn.as_mut() else {
            return;
        };
        match sql_query("PRAGMA data_version").get_result::<DataVersion>(writer) {
            Ok(DataVersion { data_version }) => {
                if self.seen.is_some_and(|seen| seen != data_version) {
                    B::others_wrote(carried);
                }
                self.seen = Some(data_version);
            }
            Err(error) => tracing::warn!(%error, "reading the data version"),
        }
    }
}
