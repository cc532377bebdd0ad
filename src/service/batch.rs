//! Streaming imports: rows are read one by one and applied in transactions of
//! [`IMPORT_BATCH`] rows, so memory stays flat whatever the file's size and one commit serves
//! a few hundred rows. Each row still goes through the pipeline in its own savepoint, so a bad
//! row fails alone.

use crate::error::{AppError, AppResult};
use crate::store::{Db, DbConn};

/// Rows per transaction: big enough to amortise the commit, small enough to keep other
/// writers (SCIM pushes, logins, another import) waiting only briefly.
pub const IMPORT_BATCH: usize = 250;

/// How often a batch waits again for a database another writer holds (each wait is the
/// connection's busy timeout): a busy database makes an import wait, not fail.
const BUSY_RETRIES: u32 = 12;

/// SQLite's "the write lock is held elsewhere" (after its busy timeout ran out).
fn is_busy(e: &AppError) -> bool {
    let text = e.to_string();
    text.contains("database is locked") || text.contains("database is busy")
}

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
        let mut attempt = 0;
        loop {
            // Retried only when the transaction could not even begin: then nothing of the
            // batch ran and the report is untouched.
            let mut started = false;
            let result = db.write_blocking::<_, AppError, _>(|c: &mut DbConn| {
                started = true;
                apply(c, report, batch)
            });
            match result {
                Err(e) if !started && attempt < BUSY_RETRIES && is_busy(&e) => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(attempt)));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
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
