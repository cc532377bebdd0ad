//! `provisor migrate-data`, `provisor backup` and `provisor restore`: moving and keeping a
//! whole installation (`store::copy`, `store::backup`). Their exit codes say what to do:
//!
//! - `0` done (copied and verified; backup or restore written and checked);
//! - `1` failed part-way (a database unreachable, a copy interrupted): fix the cause and run
//!   the same command again — `migrate-data` keeps the tables it verified and continues;
//! - `3` refused, nothing written (a target holding other data, a database in use, a file
//!   that exists, a URL of the wrong kind);
//! - `4` `migrate-data` verification failed: the table named was rolled back.

use std::io::IsTerminal;
use std::path::PathBuf;

use serde_json::json;

use crate::clock::{Clock, SystemClock};
use crate::store::backup::{self, BackupError};
use crate::store::copy::{self, CopyError, CopyOptions, Progress};

#[derive(Debug, clap::Args)]
pub struct MigrateDataArgs {
    /// The SQLite installation to copy (sqlite://PATH).
    #[arg(long)]
    pub from: String,
    /// An empty PostgreSQL database (postgres://USER@HOST/DB), or one this copy was
    /// interrupted on.
    #[arg(long)]
    pub to: String,
    /// Rows per insert statement.
    #[arg(long, default_value_t = copy::DEFAULT_BATCH)]
    pub batch_size: usize,
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The file to write (must not exist).
    #[arg(long)]
    pub to: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A file written by `provisor backup`.
    #[arg(long)]
    pub from: PathBuf,
    /// Restore even when a server has the database open.
    #[arg(long)]
    pub force: bool,
}

fn print(v: &serde_json::Value) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{v}");
}

fn fail(code: i32, message: &str, hint: &str) -> i32 {
    eprintln!("error: {message}");
    if !hint.is_empty() {
        eprintln!("hint: {hint}");
    }
    code
}

/// Runs `migrate-data`; returns the exit code.
pub fn migrate_data(args: &MigrateDataArgs) -> i32 {
    let terminal = std::io::stderr().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut show = |p: Progress<'_>| match p {
        Progress::Table { table, index, of, rows } => {
            if terminal {
                let b = super::count_bar(rows.max(0) as u64, "rows");
                b.set_message(table.to_owned());
                b.println(format!("[{index}/{of}] {table}: {rows} rows"));
                bar = Some(b);
            } else {
                eprintln!("migrate-data: [{index}/{of}] {table}: copying {rows} rows");
            }
        }
        Progress::Rows { table, done } => match &bar {
            Some(b) => b.set_position(done.max(0) as u64),
            None => eprintln!("migrate-data: {table}: {done} rows copied"),
        },
        Progress::Done { table, rows, skipped } => {
            let what = if skipped { "already verified, skipped" } else { "copied and verified" };
            match bar.take() {
                Some(b) => {
                    b.finish_and_clear();
                    eprintln!("{table}: {rows} rows {what}");
                }
                None => eprintln!("migrate-data: {table}: {rows} rows {what}"),
            }
        }
    };
    let opts = CopyOptions { batch: args.batch_size.max(1) };
    match copy::migrate_data(&args.from, &args.to, &opts, SystemClock.now_naive(), &mut show) {
        Ok(report) => {
            print(&json!({
                "migrated": true,
                "installation_id": report.installation_id,
                "rows_copied": report.rows_copied,
                "tables": report.tables,
            }));
            0
        }
        Err(e) => {
            let again = "fix the cause and run the same command again: verified tables are kept, the copy continues";
            match &e {
                CopyError::Usage(_)
                | CopyError::TargetNotEmpty { .. }
                | CopyError::OtherInstallation { .. }
                | CopyError::SchemaDrift(_)
                | CopyError::UnsupportedType { .. } => fail(3, &e.to_string(), "nothing was copied in this run"),
                CopyError::Mismatch { .. } => fail(
                    4,
                    &e.to_string(),
                    "the source changed during the copy (stop every server on it) or the target altered the data; run again to retry that table",
                ),
                CopyError::Store(_) | CopyError::BadValue { .. } | CopyError::Interrupted { .. } => {
                    fail(1, &e.to_string(), again)
                }
            }
        }
    }
}

fn backup_failed(e: &BackupError) -> i32 {
    match e {
        BackupError::Usage(_) | BackupError::InUse { .. } => fail(3, &e.to_string(), ""),
        _ => fail(1, &e.to_string(), ""),
    }
}

/// Runs `backup --to FILE` on the database URL; returns the exit code.
pub fn backup(database_url: &str, args: &BackupArgs) -> i32 {
    match backup::backup(database_url, &args.to) {
        Ok(r) => {
            print(&json!({ "backup": r.file, "bytes": r.bytes, "integrity": r.integrity, "migrations": r.migrations }));
            0
        }
        Err(e) => backup_failed(&e),
    }
}

/// Runs `restore --from FILE [--force]` onto the database URL; returns the exit code.
pub fn restore(database_url: &str, args: &RestoreArgs) -> i32 {
    match backup::restore(database_url, &args.from, args.force) {
        Ok(r) => {
            print(&json!({
                "restored": r.file,
                "from": args.from.display().to_string(),
                "bytes": r.bytes,
                "integrity": r.integrity,
                "migrations": r.migrations,
            }));
            0
        }
        Err(e) => backup_failed(&e),
    }
}
