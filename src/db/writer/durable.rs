//! After the commit: syncing the write-ahead log before callers are
//! answered, and copying the log into the database on a thread of its own.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use diesel::sql_types::Integer;
use diesel::sqlite::SqliteConnection;
use diesel::{QueryableByName, RunQueryDsl, sql_query};
use parking_lot::Mutex;

use super::{Delivery, Open};
use crate::db::StoreResult;

/// How often the log is copied into the database while writes come in.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// Log length (in pages) past which the writer is asked to let it restart.
const RESTART_AFTER_FRAMES: i32 = 4_096;

/// Makes committed batches durable by syncing `wal` (when commits do not sync
/// themselves), then answers their callers and nudges the checkpointer.
/// Batches that queue up while one sync runs share the next one.
pub(super) fn sync(
    committed: &Receiver<Vec<Delivery>>,
    wal: Option<&Path>,
    checkpoint: Option<&SyncSender<()>>,
) {
    while let Ok(first) = committed.recv() {
        let mut deliveries = first;
        for more in committed.try_iter() {
            deliveries.extend(more);
        }
        let synced = wal.map_or(Ok(()), |wal| {
            sync_file(wal).map_err(|error| {
                tracing::error!(%error, wal = %wal.display(), "cannot sync the write-ahead log");
                format!("syncing the write-ahead log: {error}")
            })
        });
        deliver(deliveries, &synced);
        if let Some(checkpoint) = checkpoint {
            // Full means a nudge is already waiting.
            let _ = checkpoint.try_send(());
        }
    }
}

/// Flushes a file's data to the disk. Opened afresh each time, so that a log
/// SQLite deleted and created again is the one synced.
fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_data()
}

/// What the writer and the checkpoint thread share about the log.
#[derive(Default)]
pub(super) struct Log {
    /// Set when the log is long: the writer then checkpoints between batches.
    pub(super) restart: AtomicBool,
    /// Held while either checkpoints: a second checkpoint at the same time
    /// would find the log busy and copy nothing.
    pub(super) checkpointing: Mutex<()>,
}

/// What `PRAGMA wal_checkpoint` reports.
#[derive(Debug, QueryableByName)]
pub(super) struct CheckpointReport {
    /// 1 when another connection kept the checkpoint from running.
    #[diesel(sql_type = Integer)]
    busy: i32,
    /// Frames in the log.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Frames copied into the database.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

impl CheckpointReport {
    /// Everything in the log is in the database now.
    pub(super) fn complete(&self) -> bool {
        self.busy == 0 && self.checkpointed >= self.log
    }
}

pub(super) fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> StoreResult<CheckpointReport> {
    Ok(sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result(conn)?)
}

/// Copies the log into the database at most every [`CHECKPOINT_EVERY`] while
/// commits come in, without blocking the writer (a passive checkpoint), until
/// the writer stops; then once more, fully.
///
/// SQLite starts the log afresh only when a write begins after a checkpoint
/// copied all of it, which under steady writes never happens here: new
/// commits always land while this thread copies. So once the log is longer
/// than [`RESTART_AFTER_FRAMES`], it asks the writer to checkpoint itself
/// between two batches, which only copies what this thread has not yet
/// copied, and lets the next batch start the log afresh.
pub(super) fn run_checkpoints(commits: &Receiver<()>, open: &Open, log: &Log) {
    let mut conn: Option<SqliteConnection> = None;
    let mut run = |mode: &str| -> Option<CheckpointReport> {
        let _running = log.checkpointing.lock();
        let report = match conn.as_mut() {
            Some(conn) => Ok(conn),
            None => open().map(|opened| conn.insert(opened)),
        }
        .and_then(|conn| checkpoint(conn, mode));
        match report {
            Ok(report) => Some(report),
            Err(error) => {
                tracing::warn!(%error, "checkpoint failed; the next one will retry");
                conn = None;
                None
            }
        }
    };
    while commits.recv().is_ok() {
        let started = Instant::now();
        if run("PASSIVE").is_some_and(|report| report.log > RESTART_AFTER_FRAMES) {
            log.restart.store(true, Ordering::Relaxed);
        }
        thread::sleep(CHECKPOINT_EVERY.saturating_sub(started.elapsed()));
    }
    run("TRUNCATE");
}

/// Tells each caller how its job ended.
pub(super) fn deliver(deliveries: Vec<Delivery>, outcome: &Result<(), String>) {
    for deliver in deliveries {
        deliver(outcome.clone());
    }
}
