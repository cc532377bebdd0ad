//! The database's own metrics (prometheus collectors, registered by `http::metrics`): the
//! group-commit writer's queue depth, batch sizes and the time a job waits before its batch
//! begins, the time a read waits for a pooled connection (plus the waits that timed out),
//! and the SQL statements run. Process-wide: every `Db` of the process adds to the same
//! series.

use std::cell::Cell;
use std::sync::OnceLock;

use diesel::connection::{Instrumentation, InstrumentationEvent};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge};

pub struct StoreStats {
    /// Jobs handed to the writer and not yet taken into a batch.
    pub queue_depth: IntGauge,
    pub batch_size: Histogram,
    pub queue_wait: Histogram,
    pub pool_wait: Histogram,
    pub pool_timeouts: IntCounter,
    /// Every statement sent to the database (transaction control included): the cost model
    /// of a request is "statements × round trip", so this is what a change should lower.
    pub statements: IntCounter,
}

fn build() -> Result<StoreStats, prometheus::Error> {
    Ok(StoreStats {
        queue_depth: IntGauge::new("writer_queue_depth", "write jobs queued for the group-commit writer")?,
        batch_size: Histogram::with_opts(
            HistogramOpts::new("writer_batch_size", "write jobs per group-commit transaction")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]),
        )?,
        queue_wait: Histogram::with_opts(
            HistogramOpts::new("writer_queue_wait_seconds", "from a write job's submission to the start of its batch")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]),
        )?,
        pool_wait: Histogram::with_opts(
            HistogramOpts::new("db_pool_wait_seconds", "time a read waited for a pooled connection")
                .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
        )?,
        pool_timeouts: IntCounter::new("db_pool_timeouts_total", "reads that found no pooled connection in time")?,
        statements: IntCounter::new("db_statements_total", "SQL statements sent to the database")?,
    })
}

/// The collectors (None only if prometheus refused their definitions, which is a bug).
pub fn stats() -> Option<&'static StoreStats> {
    static S: OnceLock<Option<StoreStats>> = OnceLock::new();
    S.get_or_init(|| build().map_err(|e| tracing::error!(error = %e, "store metrics")).ok()).as_ref()
}

thread_local! {
    static ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// Statements run on the calling thread so far: what a test reads before and after one
/// operation on its own connection, untouched by whatever else runs in the process.
pub fn statements_on_this_thread() -> u64 {
    ON_THIS_THREAD.with(Cell::get)
}

/// Counts the statements of one connection (installed on every connection the program
/// opens).
#[derive(Debug, Default)]
pub struct CountStatements;

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            ON_THIS_THREAD.with(|n| n.set(n.get() + 1));
            if let Some(s) = stats() {
                s.statements.inc();
            }
        }
    }
}
