//! Streaming imports: rows are read one by one and applied in short write transactions, so
//! memory stays flat whatever the file's size, one commit serves many rows, and other writers
//! (SCIM pushes, logins, another import) wait at most one batch. Each row still goes through
//! the pipeline in its own savepoint, so a bad row fails alone.
//!
//! A batch's size adapts so that its transaction takes about [`BATCH_TARGET`]: rows differ in
//! cost (a phone row with a desk phone, a user row whose mapping places it in a sub account)
//! and so do machines, so a fixed row count would be either too long somewhere or wasteful
//! everywhere else.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::store::{Backend, Db, DbConn};

/// An import's report, built batch by batch: each batch writes into a fresh part, which is
/// absorbed only once the batch's transaction has committed, so the report counts exactly
/// the rows that took effect.
pub trait BatchReport: Default {
    fn absorb(&mut self, part: Self);
    /// Where the report records that the import stopped.
    fn stopped_mut(&mut self) -> &mut Option<ImportStopped>;
    /// The import stopped at a batch that could not be applied.
    fn stop(&mut self, stopped: ImportStopped) {
        *self.stopped_mut() = Some(stopped);
    }
}

/// Why and where an import stopped before the end of its file. Every row before
/// `first_line_not_applied` took effect (and is counted in the report); none from it on.
/// Running the same file again is safe: rows already applied come out `unchanged`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ImportStopped {
    /// The CSV line of the first row that was not applied.
    pub first_line_not_applied: u64,
    pub code: String,
    pub message: String,
}

/// The transaction time a batch aims at: a SCIM push queued behind it waits about this long.
pub const BATCH_TARGET: Duration = Duration::from_millis(25);

/// Rows in the first batch, and the bounds a batch's size moves in.
pub const FIRST_BATCH: usize = 64;
const MIN_BATCH: usize = 8;
const MAX_BATCH: usize = 2_000;

/// How often a batch waits again for a database another writer holds (each wait is the
/// connection's busy timeout): a busy database makes an import wait, not fail.
const BUSY_RETRIES: u32 = 12;

/// The size of the next batch after one of `size` rows took `took`: proportional to the
/// target, moving at most by a factor of two per step (one slow batch, e.g. a checkpoint,
/// must not collapse the size).
pub fn next_batch_size(size: usize, took: Duration) -> usize {
    let took = took.as_secs_f64().max(1e-4);
    let ideal = size as f64 * BATCH_TARGET.as_secs_f64() / took;
    let bounded = ideal.clamp(size as f64 / 2.0, size as f64 * 2.0);
    (bounded as usize).clamp(MIN_BATCH, MAX_BATCH)
}

/// How long a batch loop steps back after a commit on SQLite, so that a writer of another
/// process (a server while the CLI imports), polling for the lock every millisecond, takes
/// it before the next batch does. Writers of this process need no pause: they queue at the
/// write gate and get the next turn.
fn pause_after(took: Duration) -> Duration {
    (took / 8).clamp(Duration::from_millis(2), Duration::from_millis(5))
}

/// SQLite's "the write lock is held elsewhere" (after waiting its full time).
fn is_busy(e: &AppError) -> bool {
    crate::store::is_lock_message(&e.to_string())
}

/// Feeds `items` to `apply` in batches, each in one write transaction. Items that failed to
/// parse go to `on_invalid`. `progress` hears the number of items read after every batch.
/// A batch that cannot be applied (the database went away, say) stops the import: the
/// report then says where (`BatchReport::stop`), and the rows read so far are returned.
pub fn apply_in_batches<T, E, R: BatchReport>(
    db: &Db,
    items: impl IntoIterator<Item = Result<T, E>>,
    report: &mut R,
    mut on_invalid: impl FnMut(&mut R, E),
    mut apply: impl FnMut(&mut DbConn, &mut R, &[T]) -> AppResult<()>,
    line_of: impl Fn(&T) -> u64,
    mut progress: impl FnMut(u64),
) -> u64 {
    let sqlite = db.backend() == Backend::Sqlite;
    let mut size = FIRST_BATCH;
    let mut batch: Vec<T> = Vec::with_capacity(size);
    let mut read = 0u64;
    let mut batches = 0u32;
    // Applies the batch; its part of the report joins `report` once committed. Returns how
    // long the transaction took.
    let mut flush = |batch: &mut Vec<T>, report: &mut R| -> Result<Duration, AppError> {
        if batch.is_empty() {
            return Ok(Duration::ZERO);
        }
        batches += 1;
        if batches == 2 && crate::fault::fails("import:second_batch") {
            return Err(AppError::Unavailable("injected fault: the second batch cannot be applied".into()));
        }
        let mut attempt = 0;
        let (took, part) = loop {
            let mut began: Option<Instant> = None;
            let mut part = R::default();
            let result = db.write_blocking::<_, AppError, _>(|c: &mut DbConn| {
                began = Some(Instant::now());
                apply(c, &mut part, batch)
            });
            match result {
                // Nothing of a failed attempt took effect and its part is dropped: retrying
                // is safe.
                Err(e) if attempt < BUSY_RETRIES && is_busy(&e) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20 * u64::from(attempt)));
                }
                Err(e) => return Err(e),
                Ok(()) => break (began.map(|t| t.elapsed()).unwrap_or_default(), part),
            }
        };
        report.absorb(part);
        batch.clear();
        if sqlite {
            std::thread::sleep(pause_after(took));
        }
        Ok(took)
    };
    let stop = |batch: &mut Vec<T>, report: &mut R, e: AppError| {
        if let AppError::Internal(detail) = &e {
            tracing::error!(error = %detail, "an import batch could not be applied; the import stopped");
        }
        let first = batch.first().map(&line_of).unwrap_or_default();
        report.stop(ImportStopped {
            first_line_not_applied: first,
            code: e.code().to_owned(),
            message: format!("{}; rows from line {first} on were not applied — run the file again", e.public_message()),
        });
    };
    for item in items {
        read += 1;
        match item {
            Ok(row) => batch.push(row),
            Err(e) => on_invalid(report, e),
        }
        if batch.len() >= size {
            match flush(&mut batch, report) {
                Ok(took) => size = next_batch_size(size, took),
                Err(e) => {
                    stop(&mut batch, report, e);
                    return read;
                }
            }
            progress(read);
        }
    }
    if let Err(e) = flush(&mut batch, report) {
        stop(&mut batch, report, e);
        return read;
    }
    progress(read);
    read
}

/// Feeds `items` to `apply` on one connection, inside the caller's transaction: what a dry
/// run uses, so that every row sees what the rows before it did (seats, extensions, numbers),
/// exactly as in the import, and the caller rolls everything back at the end.
pub fn apply_all<T, E, R: BatchReport>(
    conn: &mut DbConn,
    items: impl IntoIterator<Item = Result<T, E>>,
    report: &mut R,
    mut on_invalid: impl FnMut(&mut R, E),
    mut apply: impl FnMut(&mut DbConn, &mut R, &[T]) -> AppResult<()>,
    mut progress: impl FnMut(u64),
) -> AppResult<u64> {
    let mut batch: Vec<T> = Vec::with_capacity(FIRST_BATCH);
    let mut read = 0u64;
    for item in items {
        read += 1;
        match item {
            Ok(row) => batch.push(row),
            Err(e) => on_invalid(report, e),
        }
        if batch.len() >= FIRST_BATCH {
            apply(conn, report, &batch)?;
            batch.clear();
            progress(read);
        }
    }
    if !batch.is_empty() {
        apply(conn, report, &batch)?;
    }
    progress(read);
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_follows_the_target_within_a_factor_of_two_per_step() {
        // Twice as fast as the target: double; twice as slow: halve.
        assert_eq!(next_batch_size(100, BATCH_TARGET / 2), 200);
        assert_eq!(next_batch_size(100, BATCH_TARGET * 2), 50);
        // A stall of a second moves it by two, not by 25.
        assert_eq!(next_batch_size(100, Duration::from_secs(1)), 50);
        assert_eq!(next_batch_size(100, Duration::ZERO), 200);
        // Bounds.
        assert_eq!(next_batch_size(MIN_BATCH, Duration::from_secs(5)), MIN_BATCH);
        assert_eq!(next_batch_size(MAX_BATCH, Duration::from_micros(1)), MAX_BATCH);
        // Close to the target it stays put.
        let same = next_batch_size(300, BATCH_TARGET);
        assert!((299..=300).contains(&same), "{same}");
    }
}
