//! Group commit. Concurrent requests hand their write closures to writer threads; a writer
//! takes every job waiting (up to a bound), runs them in ONE transaction, each inside its
//! own savepoint, commits once and then answers every caller. On SQLite this turns N fsyncs
//! and N lock hand-overs into one, which is where most of a write's cost goes.
//!
//! A job that fails rolls back to its savepoint and does not disturb the others; if the
//! commit itself fails every job of the batch gets the error (none of them took effect).
//!
//! On SQLite the writer threads and the blocking writes of this process (imports, CLI
//! verbs) take turns through one [`WriteGate`], first come first served. Without it they
//! would meet only at SQLite's lock, whose busy handler sleeps in growing steps: a batch
//! loop that re-takes the lock right after its commit starves a writer that is asleep, and
//! a SCIM push waits seconds behind an import instead of one batch.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use diesel::Connection;
use tokio::sync::oneshot;

use super::pool::DbUrl;
use super::{DbConn, StoreError};

/// Upper bound of jobs per SQLite transaction: keeps the latency of the first job bounded.
pub const SQLITE_MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A queued write: runs inside the shared transaction, and returns what to do once the
/// outcome of the commit is known.
trait Job: Send {
    fn run(self: Box<Self>, conn: &mut DbConn) -> Completion;
    fn fail(self: Box<Self>, err: StoreError);
}

struct ClosureJob<F, T, E> {
    f: F,
    reply: oneshot::Sender<Result<T, E>>,
}

/// A job with the instant it was queued (for the queue-wait metric).
struct Queued {
    job: Box<dyn Job>,
    at: std::time::Instant,
}

impl<F, T, E> Job for ClosureJob<F, T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConn) -> Completion {
        let ClosureJob { f, reply } = *self;
        // A nested `transaction` is a savepoint: the job's writes go or stay together.
        // A panicking job (a bug, never client input by design) must not take the writer
        // thread — and every later write of the server — with it: catch it, roll back its
        // savepoint (diesel is still inside it), answer its caller, and go on.
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.transaction::<T, E, _>(f))) {
            Ok(outcome) => outcome,
            Err(panic) => {
                let message = panic_message(&panic);
                tracing::error!(panic = %message, "a write job panicked; its changes were rolled back");
                use diesel::connection::TransactionManager;
                let _ = <DbConn as diesel::Connection>::TransactionManager::rollback_transaction(conn);
                Err(E::from(StoreError::JobPanicked(message)))
            }
        };
        Box::new(move |commit: Result<(), StoreError>| {
            let result = match (outcome, commit) {
                (Ok(v), Ok(())) => Ok(v),
                (Err(e), _) => Err(e),
                (Ok(_), Err(e)) => Err(E::from(e)),
            };
            let _ = reply.send(result);
        })
    }

    fn fail(self: Box<Self>, err: StoreError) {
        let _ = self.reply.send(Err(E::from(err)));
    }
}

/// A first-come-first-served turn at the database's write lock, shared by every writer of
/// one process (unlock hands the turn straight to the longest waiter).
#[derive(Default)]
pub struct WriteGate(parking_lot::FairMutex<()>);

impl WriteGate {
    /// Waits for this thread's turn; the turn ends when the guard drops.
    pub fn enter(&self) -> parking_lot::FairMutexGuard<'_, ()> {
        self.0.lock()
    }
}

pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Queued>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

/// How often the SQLite checkpointer runs.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

impl Writer {
    /// `max_batch` jobs at most share a transaction. PostgreSQL runs several writers with
    /// one job per transaction: batching there would let row locks of unrelated jobs
    /// interleave across writers (a deadlock risk), and PostgreSQL already groups the
    /// flushes of concurrent commits itself.
    pub fn start(
        url: &DbUrl,
        threads: usize,
        max_batch: usize,
        gate: Option<Arc<WriteGate>>,
        health: &crate::health::Health,
    ) -> Result<Writer, StoreError> {
        let (tx, rx) = mpsc::channel::<Queued>();
        let rx = Arc::new(Mutex::new(rx));
        let count = threads.max(1);
        let mut handles = Vec::with_capacity(count);
        for i in 0..count {
            let conn = url.connect()?;
            let rx = Arc::clone(&rx);
            let url = url.clone();
            let gate = gate.clone();
            let beat = health.register(if count == 1 { "writer".to_owned() } else { format!("writer-{i}") });
            let handle = thread::Builder::new()
                .name(format!("db-writer-{i}"))
                .spawn(move || writer_loop(url, conn, rx, max_batch.max(1), gate, beat))
                .map_err(|e| StoreError::Pool(format!("cannot start the database writer: {e}")))?;
            handles.push(handle);
        }
        Ok(Writer { queue: Mutex::new(Some(tx)), stop: Arc::default(), threads: Mutex::new(handles) })
    }

    /// Stops taking jobs and waits, at most `within`, until every job already queued has
    /// run and been answered (graceful shutdown). True when the writer threads ended in
    /// time; later submissions fail with [`StoreError::WriterGone`].
    pub fn close(&self, within: std::time::Duration) -> bool {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        let deadline = std::time::Instant::now() + within;
        let Ok(threads) = self.threads.lock() else { return false };
        loop {
            if threads.iter().all(|t| t.is_finished()) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Runs `PRAGMA wal_checkpoint(PASSIVE)` from its own connection every
    /// [`CHECKPOINT_EVERY`] (connections are opened with `wal_autocheckpoint = 0`).
    pub fn start_checkpointer(&mut self, url: &DbUrl, health: &crate::health::Health) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        let mut conn = url.connect()?;
        let stop = Arc::clone(&self.stop);
        let beat = health.register("checkpointer");
        thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    thread::sleep(CHECKPOINT_EVERY);
                    beat.busy();
                    if let Err(e) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                    beat.idle();
                }
                let _ = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);");
            })
            .map_err(|e| StoreError::Pool(format!("cannot start the checkpointer: {e}")))?;
        Ok(())
    }

    pub async fn submit<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + From<diesel::result::Error> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(ClosureJob { f, reply });
        {
            let guard = self.queue.lock().map_err(|_| E::from(StoreError::WriterGone))?;
            let sender = guard.as_ref().ok_or_else(|| E::from(StoreError::WriterGone))?;
            sender.send(Queued { job, at: std::time::Instant::now() }).map_err(|_| E::from(StoreError::WriterGone))?;
            if let Some(s) = super::stats::stats() {
                s.queue_depth.inc();
            }
        }
        rx.await.map_err(|_| E::from(StoreError::WriterGone))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the writer threads once the queue is drained.
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn writer_loop(
    url: DbUrl,
    mut conn: DbConn,
    rx: Arc<Mutex<mpsc::Receiver<Queued>>>,
    max_batch: usize,
    gate: Option<Arc<WriteGate>>,
    beat: crate::health::Beat,
) {
    loop {
        // Idle before the lock: on PostgreSQL several writers share the queue, and one
        // waiting for the lock while another waits for a job is waiting for work too.
        beat.idle();
        let (batch, _turn) = {
            let Ok(rx) = rx.lock() else { return };
            let Ok(first) = rx.recv() else { return };
            // Busy from here: a writer that waits for its turn or its transaction too long
            // is stuck as far as readiness goes.
            beat.busy();
            // Wait for the turn before gathering the rest: what queued meanwhile (behind an
            // import's batch, say) goes into this transaction too.
            let turn = gate.as_ref().map(|g| g.enter());
            let mut queued = vec![first];
            while queued.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => queued.push(job),
                    Err(_) => break,
                }
            }
            if let Some(s) = super::stats::stats() {
                s.queue_depth.sub(i64::try_from(queued.len()).unwrap_or(0));
                s.batch_size.observe(queued.len() as f64);
                for q in &queued {
                    s.queue_wait.observe(q.at.elapsed().as_secs_f64());
                }
            }
            let batch: Vec<Box<dyn Job>> = queued.into_iter().map(|q| q.job).collect();
            (batch, turn)
        };
        if let Err(batch) = run_batch(&mut conn, batch) {
            // The connection is unusable (e.g. the PostgreSQL server restarted): reconnect
            // once and retry; if that fails too, answer the jobs with the error.
            match url.connect() {
                Ok(fresh) => {
                    conn = fresh;
                    if let Err(batch) = run_batch(&mut conn, batch) {
                        fail_all(batch, "cannot begin a transaction after reconnecting");
                    }
                }
                Err(e) => fail_all(batch, &e.to_string()),
            }
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

fn fail_all(batch: Vec<Box<dyn Job>>, msg: &str) {
    for job in batch {
        job.fail(StoreError::Pool(format!("database unavailable: {msg}")));
    }
}

/// Runs one batch; gives the batch back untouched when the transaction cannot even begin.
fn run_batch(conn: &mut DbConn, batch: Vec<Box<dyn Job>>) -> Result<(), Vec<Box<dyn Job>>> {
    if super::begin_write(conn).is_err() {
        return Err(batch);
    }
    let completions: Vec<Completion> = batch.into_iter().map(|job| job.run(conn)).collect();
    let commit = super::commit(conn).map_err(|e| {
        let _ = super::rollback(conn);
        e.to_string()
    });
    match commit {
        Ok(()) => crate::fault::committed(),
        Err(_) => crate::fault::rolled_back(),
    }
    for done in completions {
        done(commit.clone().map_err(|m| StoreError::Pool(format!("commit failed: {m}"))));
    }
    Ok(())
}
