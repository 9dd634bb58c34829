//! The single writer. Every write goes through one connection on one thread,
//! which commits whatever is queued in one `BEGIN IMMEDIATE` transaction
//! (group commit) and answers each caller only once that commit is on disk,
//! so an acknowledged write is a durable write.
//!
//! Each job runs in its own savepoint: a job that fails leaves no trace and
//! does not disturb the others in its batch. Jobs of one batch also share a
//! [`Batch`], which gathers what many of them add to the same rows (counters,
//! say) and writes it once, just before the commit.
//!
//! Committing and syncing are pipelined. With [`Durability::SyncWal`] the
//! connection commits without syncing (`synchronous = NORMAL`), hands the
//! batch's callers to a second thread, and goes on with the next batch while
//! that thread `fdatasync`s the write-ahead log and only then answers them.
//! Syncing the log makes every commit written to it before the sync durable,
//! exactly as `synchronous = FULL` would, but the disk's latency no longer
//! stalls the writer.

mod durable;
mod watch;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError, channel, sync_channel,
};
use std::thread;
use std::time::Duration;

use diesel::Connection;
use diesel::sqlite::SqliteConnection;

use self::durable::{Log, checkpoint, deliver, run_checkpoints, sync};
use self::watch::Watch;
use super::{StoreError, StoreResult};

/// Writes that may wait for the writer; past this the caller is told to retry.
pub const QUEUE_CAPACITY: usize = 10_000;
/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 1_000;

/// What the jobs of one transaction share, written once before it commits.
pub trait Batch: Sized + 'static {
    /// What a batch leaves for the next one (work it put off, say).
    type Carry: Send + 'static;
    /// A batch that takes over what the last one left.
    fn resume(carried: Self::Carry) -> Self;
    /// What is left of `carried` if the batch that took it over fails (the
    /// failed batch's view of the store is lost with its transaction).
    fn forget(carried: &Self::Carry) -> Self::Carry;
    /// Writes what the batch's jobs gathered; an error rolls back the batch.
    /// Returns what to leave for the next batch.
    fn finish(self, conn: &mut SqliteConnection) -> StoreResult<Self::Carry>;
    /// How soon a batch must run, with or without jobs, for the work
    /// `carried` puts off; `None` when it puts off nothing.
    fn due_in(carried: &Self::Carry) -> Option<Duration>;
    /// Called once the batch that left `carried` has committed (and before
    /// it is durable): readers already see it.
    fn committed(_carried: &mut Self::Carry) {}
    /// Called when another connection (another process) has committed
    /// since the writer last looked.
    fn others_wrote(_carried: &Self::Carry) {}
}

/// No shared state.
impl Batch for () {
    type Carry = ();
    fn resume((): ()) -> Self {}
    fn forget((): &()) {}
    fn finish(self, _: &mut SqliteConnection) -> StoreResult<()> {
        Ok(())
    }
    fn due_in((): &()) -> Option<Duration> {
        None
    }
}

/// How a commit reaches the disk before its callers are answered.
pub enum Durability {
    /// The connection syncs each commit itself (`synchronous = FULL`, or a
    /// rollback journal).
    Commit,
    /// The connection does not sync; the write-ahead log file `wal` is synced
    /// after each commit, off the writer thread. The writer's connection must
    /// not checkpoint (`wal_autocheckpoint = 0`): a connection made by
    /// `checkpoint` copies the log into the database on its own thread.
    SyncWal { wal: PathBuf, checkpoint: Open },
}

/// How long the writer waits before it retries carried-over work that failed.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);
/// How often the writer looks for commits by other processes.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Tells a caller how its job ended, once the batch's commit is known.
type Delivery = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job: runs on the writer connection and returns how to deliver its result.
type Job<B> = Box<dyn FnOnce(&mut SqliteConnection, &mut B) -> Delivery + Send>;
/// Opens the writer's connection (again, after a failure).
pub type Open = Box<dyn Fn() -> StoreResult<SqliteConnection> + Send>;

/// The handle callers use to queue writes.
pub struct Writer<B> {
    queue: SyncSender<Job<B>>,
    /// Jobs queued and not yet taken by the writer thread.
    queued: Arc<AtomicUsize>,
}

impl<B> Clone for Writer<B> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            queued: Arc::clone(&self.queued),
        }
    }
}

impl<B: Batch> Writer<B> {
    /// Starts the writer thread over connections made by `open`, and the
    /// thread that makes its commits durable.
    pub fn start(open: Open, durability: Durability, carry: B::Carry) -> std::io::Result<Self> {
        let (queue, jobs) = sync_channel(QUEUE_CAPACITY);
        let (committed, to_sync) = channel();
        let log = Arc::new(Log::default());
        let queued = Arc::new(AtomicUsize::new(0));
        let (wal, synced) = match durability {
            Durability::Commit => (None, None),
            Durability::SyncWal { wal, checkpoint } => {
                let (synced, checkpoints) = sync_channel(1);
                let log = Arc::clone(&log);
                thread::Builder::new()
                    .name("frontpage-checkpoint".into())
                    .spawn(move || run_checkpoints(&checkpoints, &checkpoint, &log))?;
                (Some(wal), Some(synced))
            }
        };
        thread::Builder::new()
            .name("frontpage-sync".into())
            .spawn(move || sync(&to_sync, wal.as_deref(), synced.as_ref()))?;
        let taken = Arc::clone(&queued);
        thread::Builder::new()
            .name("frontpage-writer".into())
            .spawn(move || run(&jobs, &open, &committed, &log, &taken, carry))?;
        Ok(Self { queue, queued })
    }

    /// Writes queued and not yet started.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Queues `work`; `reply` gets its result once the commit is durable. A
    /// full queue is `Busy` at once, so callers can shed load instead of
    /// piling up. `work` may change the batch only once nothing can fail.
    pub fn submit<T, F, R>(&self, work: F, reply: R) -> StoreResult<()>
    where
        F: FnOnce(&mut SqliteConnection, &mut B) -> StoreResult<T> + Send + 'static,
        R: FnOnce(StoreResult<T>) + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(
            move |conn, batch| conn.transaction(|conn| work(conn, batch)),
            reply,
        )
    }

    /// Queues work that only adds to the batch (which writes it when the
    /// batch ends), so it needs neither the connection nor a savepoint of
    /// its own; `reply` gets its result once the commit is durable.
    pub fn submit_to_batch<T, F, R>(&self, work: F, reply: R) -> StoreResult<()>
    where
        F: FnOnce(&mut B) -> T + Send + 'static,
        R: FnOnce(StoreResult<T>) + Send + 'static,
        T: Send + 'static,
    {
        self.enqueue(move |_, batch| Ok(work(batch)), reply)
    }

    fn enqueue<T, F, R>(&self, work: F, reply: R) -> StoreResult<()>
    where
        F: FnOnce(&mut SqliteConnection, &mut B) -> StoreResult<T> + Send + 'static,
        R: FnOnce(StoreResult<T>) + Send + 'static,
        T: Send + 'static,
    {
        let job: Job<B> = Box::new(move |conn, batch| {
            let result = work(conn, batch);
            Box::new(move |commit: Result<(), String>| match commit {
                Ok(()) => reply(result),
                Err(cause) => reply(Err(commit_error(cause))),
            })
        });
        // Counted before it is sent, so the writer never takes more than
        // was counted.
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.queue.try_send(job).map_err(|error| {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            match error {
                TrySendError::Full(_) => StoreError::Busy("the write queue is full".into()),
                TrySendError::Disconnected(_) => {
                    StoreError::Internal("the writer has stopped".into())
                }
            }
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

/// Takes jobs until every handle is dropped; each round commits all that is
/// queued and passes its callers on to the sync thread. Between rounds, it
/// checkpoints when the checkpoint thread asks it to (see [`run_checkpoints`]).
fn run<B: Batch>(
    jobs: &Receiver<Job<B>>,
    open: &Open,
    committed: &Sender<Vec<Delivery>>,
    log: &Log,
    queued: &AtomicUsize,
    mut carried: B::Carry,
) {
    let mut conn: Option<SqliteConnection> = None;
    let mut watch = Watch::default();
    let mut open_queue = true;
    while open_queue {
        watch.look::<B>(&mut conn, open, &carried);
        // A batch of no jobs, when the work carried over is due first (or
        // when the queue closes with work carried over). Waits no longer
        // than the next look for other processes' commits.
        let due = B::due_in(&carried);
        let first = match jobs.recv_timeout(due.map_or(WATCH_EVERY, |due| due.min(WATCH_EVERY))) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) if B::due_in(&carried) == Some(Duration::ZERO) => None,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) if due.is_none() => break,
            Err(RecvTimeoutError::Disconnected) => {
                open_queue = false;
                None
            }
        };
        if let Some(writer) = conn.as_mut() {
            checkpoint_when_asked(writer, log);
        }
        let mut batch: Vec<Job<B>> = first.into_iter().collect();
        if !batch.is_empty() {
            batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        }
        queued.fetch_sub(batch.len(), Ordering::Relaxed);
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
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            writer.immediate_transaction(|conn| {
                // Left in place should the batch fail.
                let forgotten = B::forget(&carried);
                let mut shared = B::resume(std::mem::replace(&mut carried, forgotten));
                for job in batch {
                    deliveries.push(job(conn, &mut shared));
                }
                shared.finish(conn)
            })
        }));
        let commit = match outcome {
            Ok(Ok(carry)) => {
                carried = carry;
                B::committed(&mut carried);
                if deliveries.is_empty() {
                    // Nobody waits on it: the next sync covers it.
                    continue;
                }
                if let Err(unsent) = committed.send(deliveries) {
                    deliver(unsent.0, &Err("the sync thread has stopped".into()));
                }
                continue;
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => {
                // A panicking job leaves the connection in an unknown state:
                // drop it (rolling back) and open a fresh one next round.
                tracing::error!("a write panicked; its batch was rolled back");
                conn = None;
                Err("a write in the same batch failed".to_string())
            }
        };
        if deliveries.is_empty()
            && let Err(cause) = &commit
        {
            // Only carried-over work failed, and it is due again at once:
            // give whatever failed (a full disk, say) a moment.
            tracing::warn!(cause, "deferred writes failed; retrying shortly");
            thread::sleep(RETRY_AFTER_FAILURE);
        }
        deliver(deliveries, &commit);
    }
}

/// Checkpoints when the checkpoint thread asked the writer to, so that the
/// log can start again from its beginning.
fn checkpoint_when_asked(writer: &mut SqliteConnection, log: &Log) {
    if !log.restart.load(Ordering::Relaxed) {
        return;
    }
    // Waits for a checkpoint the other thread is running: after it, little
    // is left to copy.
    let _running = log.checkpointing.lock();
    match checkpoint(writer, "PASSIVE") {
        Ok(report) if report.complete() => log.restart.store(false, Ordering::Relaxed),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "the writer's checkpoint failed"),
    }
}

/// Answers jobs that never ran (their results are dropped with them).
fn fail_unrun<B>(batch: Vec<Job<B>>, cause: &str) {
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
        let writer: Writer<()> = Writer::start(
            Box::new(move || Ok(SqliteConnection::establish(&url).unwrap())),
            Durability::Commit,
            (),
        )
        .unwrap();
        let (done, results) = mpsc::channel();
        for v in 0..200 {
            let done = done.clone();
            // Every tenth job inserts a row and then fails: its row must vanish.
            let work = move |conn: &mut SqliteConnection, _: &mut ()| {
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
