//! The single writer. Every write goes through one connection on one thread,
//! which commits whatever is queued in one `BEGIN IMMEDIATE` transaction
//! (group commit) and answers each caller only after that commit, so an
//! acknowledged write is a durable write.
//!
//! Each job runs in its own savepoint: a job that fails leaves no trace and
//! does not disturb the others in its batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread;

use diesel::Connection;
use diesel::sqlite::SqliteConnection;

use super::{StoreError, StoreResult};

/// Writes that may wait for the writer; past this the caller is told to retry.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 1_000;

/// Tells a caller how its job ended, once the batch's commit is known.
type Delivery = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job: runs on the writer connection and returns how to deliver its result.
type Job = Box<dyn FnOnce(&mut SqliteConnection) -> Delivery + Send>;
/// Opens the writer's connection (again, after a failure).
pub type Open = Box<dyn Fn() -> StoreResult<SqliteConnection> + Send>;

/// The handle callers use to queue writes.
#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Job>,
}

impl Writer {
    /// Starts the writer thread over connections made by `open`.
    pub fn start(open: Open) -> std::io::Result<Self> {
        let (queue, jobs) = sync_channel(QUEUE_CAPACITY);
        thread::Builder::new()
            .name("frontpage-writer".into())
            .spawn(move || run(&jobs, &open))?;
        Ok(Self { queue })
    }

    /// Queues `work`; `reply` gets its result after the commit. A full queue
    /// is `Busy` at once, so callers can shed load instead of piling up.
    pub fn submit<T, F, R>(&self, work: F, reply: R) -> StoreResult<()>
    where
        F: FnOnce(&mut SqliteConnection) -> StoreResult<T> + Send + 'static,
        R: FnOnce(StoreResult<T>) + Send + 'static,
        T: Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            let result = conn.transaction(work);
            Box::new(move |commit: Result<(), String>| match commit {
                Ok(()) => reply(result),
                Err(cause) => reply(Err(commit_error(cause))),
            })
        });
        self.queue.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => StoreError::Busy("the write queue is full".into()),
            TrySendError::Disconnected(_) => StoreError::Internal("the writer has stopped".into()),
        })
    }
}

fn commit_error(cause: String) -> StoreError {
    if cause.contains("database is locked") {
        StoreError::Busy(cause)
    } else {
        StoreError::Internal(format!("commit failed: {cause}"))
    }
}

/// Takes jobs until every handle is dropped; each round commits all that is queued.
fn run(jobs: &Receiver<Job>, open: &Open) {
    let mut conn: Option<SqliteConnection> = None;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        let writer = match conn.as_mut() {
            Some(writer) => writer,
            None => match open() {
                Ok(opened) => conn.insert(opened),
                Err(error) => {
                    tracing::error!(%error, "cannot open the writer connection");
                    fail_unrun(batch, &error.to_string());
                    continue;
                }
            },
        };
        let mut deliveries = Vec::with_capacity(batch.len());
        let committed = catch_unwind(AssertUnwindSafe(|| {
            writer.immediate_transaction(|conn| {
                for job in batch {
                    deliveries.push(job(conn));
                }
                Ok::<_, diesel::result::Error>(())
            })
        }));
        let commit = match committed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => {
                // A panicking job leaves the connection in an unknown state:
                // drop it (rolling back) and open a fresh one next round.
                tracing::error!("a write panicked; its batch was rolled back");
                conn = None;
                Err("a write in the same batch failed".to_string())
            }
        };
        for deliver in deliveries {
            deliver(commit.clone());
        }
    }
}

/// Answers jobs that never ran (their results are dropped with them).
fn fail_unrun(batch: Vec<Job>, cause: &str) {
    tracing::warn!(
        jobs = batch.len(),
        cause,
        "dropping writes that could not run"
    );
    drop(batch);
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel::{QueryableByName, RunQueryDsl};

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[test]
    fn a_failing_job_leaves_no_trace_and_spares_its_batch() {
        let dir = tempfile::TempDir::new().unwrap();
        let url = dir.path().join("w.db").to_string_lossy().to_string();
        let mut setup = SqliteConnection::establish(&url).unwrap();
        setup
            .batch_execute("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        let writer = Writer::start(Box::new(move || {
            Ok(SqliteConnection::establish(&url).unwrap())
        }))
        .unwrap();
        let (done, results) = mpsc::channel();
        for v in 0..200 {
            let done = done.clone();
            // Every tenth job inserts a row and then fails: its row must vanish.
            let work = move |conn: &mut SqliteConnection| {
                diesel::sql_query(format!("INSERT INTO t (v) VALUES ({v})")).execute(conn)?;
                if v % 10 == 0 {
                    Err(StoreError::Conflict("on purpose".into()))
                } else {
                    Ok(v)
                }
            };
            writer
                .submit(work, move |result| done.send(result.is_ok()).unwrap())
                .unwrap();
        }
        let ok = results.iter().take(200).filter(|ok| *ok).count();
        assert_eq!(ok, 180);
        let count: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .get_result(&mut setup)
            .unwrap();
        assert_eq!(count.n, 180);
    }
}
