//! Streaming imports: rows are read one by one and applied in transactions of
//! [`IMPORT_BATCH`] rows, so memory stays flat whatever the file's size and one commit serves
//! a thousand rows. Each row still goes through the pipeline in its own savepoint, so a bad
//! row fails alone.

use crate::error::{AppError, AppResult};
use crate::store::{Db, DbConn};

/// Rows per transaction: big enough to amortise the commit, small enough to keep other
/// writers waiting only briefly.
pub const IMPORT_BATCH: usize = 1000;

/// Feeds `items` to `apply` in batches, each in one write transaction. Items that failed to
/// parse go to `on_invalid`. `progress` hears the number of items read after every batch.
pub fn apply_in_batches<T, E, R>(
    db: &Db,
    items: impl IntoIterator<Item = Result<T, E>>,
    report: &mut R,
    mut on_invalid: impl FnMut(&mut R, E),
    mut apply: impl FnMut(&mut DbConn, &mut R, &[T]) -> AppResult<()>,
    mut progress: impl FnMut(u64),
) -> AppResult<u64> {
    let mut batch: Vec<T> = Vec::with_capacity(IMPORT_BATCH);
    let mut read = 0u64;
    let mut flush = |batch: &mut Vec<T>, report: &mut R| -> AppResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        db.write_blocking::<_, AppError, _>(|c: &mut DbConn| apply(c, report, batch))?;
        batch.clear();
        Ok(())
    };
    for item in items {
        read += 1;
        match item {
            Ok(row) => batch.push(row),
            Err(e) => on_invalid(report, e),
        }
        if batch.len() >= IMPORT_BATCH {
            flush(&mut batch, report)?;
            progress(read);
        }
    }
    flush(&mut batch, report)?;
    progress(read);
    Ok(read)
}
