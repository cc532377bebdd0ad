//! Online backup and restore of an SQLite database through SQLite's backup API
//! (`sqlite3_backup_*`, from the `libsqlite3-sys` that Diesel links), and the check that
//! no server has the database open.
//!
//! - **Backup** copies every page in one `sqlite3_backup_step(-1)`: one read transaction
//!   of the source, so the copy is one consistent snapshot while the server keeps writing
//!   (WAL readers do not block writers). The copy is written next to the target file,
//!   switched to `journal_mode=DELETE` (one self-contained file), checked with
//!   `PRAGMA integrity_check`, synced, then renamed into place: a failed backup leaves no
//!   file behind.
//! - **Restore** checks the backup file first, refuses a database a server has open unless
//!   forced, copies the file's pages into it with the same API (through SQLite's locks, so
//!   a forced restore under a live server is still atomic for its readers), and checks the
//!   result.
//! - **In use**: every connection to a WAL database holds a shared `fcntl` lock on byte 128
//!   of its `-shm` file (SQLite's "DMS" slot) while it is open; `F_GETLK` reports the
//!   process holding one. The server always runs in WAL mode.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use libsqlite3_sys as ffi;

use super::DbUrl;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("SQLite backup of {path} failed: {detail}")]
    Sqlite { path: String, detail: String },
    #[error("{path} failed its integrity check: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("{path} is not a provisor database (it has no migration history)")]
    NotProvisor { path: String },
    #[error(
        "{path} is in use by process {pid} (a running server?): stop it first, or pass --force to restore under it"
    )]
    InUse { path: String, pid: i32 },
}

/// What a backup or restore wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub file: String,
    pub bytes: u64,
    pub integrity: &'static str,
    pub migrations: i64,
}

/// The PostgreSQL equivalent, named in the refusal.
pub const PG_BACKUP_HINT: &str =
    "backup works on SQLite databases; for PostgreSQL use pg_dump: pg_dump --format=custom --file=FILE 'postgres://USER@HOST/DB'";
pub const PG_RESTORE_HINT: &str = "restore works on SQLite databases; for PostgreSQL use pg_restore: pg_restore --clean --if-exists --no-owner --dbname='postgres://USER@HOST/DB' FILE";

fn sqlite_path(url: &str, hint: &str) -> Result<PathBuf, BackupError> {
    match DbUrl::parse(url).map_err(|e| BackupError::Usage(e.to_string()))? {
        DbUrl::Sqlite(p) => Ok(p),
        DbUrl::Postgres(_) => Err(BackupError::Usage(hint.to_owned())),
    }
}

/// `provisor backup --to FILE`: an online, checked copy of the database at `url`.
pub fn backup(url: &str, to: &Path) -> Result<BackupReport, BackupError> {
    let src = sqlite_path(url, PG_BACKUP_HINT)?;
    if !src.exists() {
        return Err(BackupError::Usage(format!("no SQLite database at {}", src.display())));
    }
    if to.exists() {
        return Err(BackupError::Usage(format!(
            "{} exists: backup never overwrites a file; remove it or choose another name",
            to.display()
        )));
    }
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        copy_pages(&src, &partial)?;
        let report = check(&partial, true)?;
        sync(&partial)?;
        std::fs::rename(&partial, to).map_err(|e| io(to, e))?;
        Ok(BackupReport { file: to.display().to_string(), ..report })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `provisor restore --from FILE`: replaces the database at `url` with the backup `from`.
pub fn restore(url: &str, from: &Path, force: bool) -> Result<BackupReport, BackupError> {
    let dst = sqlite_path(url, PG_RESTORE_HINT)?;
    if !from.is_file() {
        return Err(BackupError::Usage(format!("no backup file at {}", from.display())));
    }
    check(from, false)?;
    if !force {
        if let Some(pid) = in_use(&dst)? {
            return Err(BackupError::InUse { path: dst.display().to_string(), pid });
        }
    }
    if let Some(dir) = dst.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
    }
    copy_pages(from, &dst)?;
    let report = check(&dst, false)?;
    Ok(BackupReport { file: dst.display().to_string(), ..report })
}

/// The process (other than this one) that has the WAL database at `path` open, if any.
pub fn in_use(path: &Path) -> Result<Option<i32>, BackupError> {
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let shm = PathBuf::from(shm);
    let file = match std::fs::OpenOptions::new().read(true).write(true).open(&shm) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&shm, e)),
    };
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` is plain data, zeroed is a valid value; F_GETLK only fills it in.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 128;
    lock.l_len = 1;
    // SAFETY: a valid open descriptor and a pointer to a live `flock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    if rc != 0 {
        return Err(io(&shm, std::io::Error::last_os_error()));
    }
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid))
}

fn partial_path(to: &Path) -> PathBuf {
    let mut p = to.as_os_str().to_owned();
    p.push(format!(".partial-{}", std::process::id()));
    PathBuf::from(p)
}

fn io(path: &Path, e: std::io::Error) -> BackupError {
    BackupError::Io { path: path.display().to_string(), detail: e.to_string() }
}

fn sync(path: &Path) -> Result<(), BackupError> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| io(path, e))
}

/// An open `sqlite3*`, closed on drop.
struct Raw {
    db: *mut ffi::sqlite3,
    path: String,
}

impl Raw {
    fn open(path: &Path, create: bool) -> Result<Raw, BackupError> {
        let shown = path.display().to_string();
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| BackupError::Usage(format!("{shown}: a path with a NUL byte")))?;
        let mut flags = ffi::SQLITE_OPEN_READWRITE;
        if create {
            flags |= ffi::SQLITE_OPEN_CREATE;
        }
        let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
        // SAFETY: a NUL-terminated path, an out pointer, default VFS.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
        let raw = Raw { db, path: shown };
        if rc != ffi::SQLITE_OK {
            return Err(raw.error());
        }
        // SAFETY: an open handle.
        unsafe { ffi::sqlite3_busy_timeout(raw.db, 10_000) };
        Ok(raw)
    }

    fn error(&self) -> BackupError {
        let detail = if self.db.is_null() {
            "out of memory".to_owned()
        } else {
            // SAFETY: an open (or failed-open) handle; the message is copied at once.
            unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) }.to_string_lossy().into_owned()
        };
        BackupError::Sqlite { path: self.path.clone(), detail }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: closes the handle this value owns (null is a no-op).
        unsafe { ffi::sqlite3_close(self.db) };
    }
}

/// Copies every page of `from` into `to` in one step (one consistent snapshot of `from`).
fn copy_pages(from: &Path, to: &Path) -> Result<(), BackupError> {
    let src = Raw::open(from, false)?;
    let dst = Raw::open(to, true)?;
    let main = c"main";
    // SAFETY: two open handles; the backup object is finished below before they close.
    let b = unsafe { ffi::sqlite3_backup_init(dst.db, main.as_ptr(), src.db, main.as_ptr()) };
    if b.is_null() {
        return Err(dst.error());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rc;
    loop {
        // SAFETY: a live backup object.
        rc = unsafe { ffi::sqlite3_backup_step(b, -1) };
        if (rc == ffi::SQLITE_BUSY || rc == ffi::SQLITE_LOCKED) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        break;
    }
    // SAFETY: finishes (and frees) the backup object exactly once.
    let finished = unsafe { ffi::sqlite3_backup_finish(b) };
    if rc != ffi::SQLITE_DONE {
        // SAFETY: a static string for any code.
        let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errstr(rc)) }.to_string_lossy().into_owned();
        return Err(BackupError::Sqlite { path: from.display().to_string(), detail: msg });
    }
    if finished != ffi::SQLITE_OK {
        return Err(dst.error());
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Integrity {
    #[diesel(sql_type = Text)]
    integrity_check: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `PRAGMA integrity_check` and the migration history of the database file at `path`;
/// `self_contained` switches it to a rollback journal first (a backup is one file).
fn check(path: &Path, self_contained: bool) -> Result<BackupReport, BackupError> {
    let shown = path.display().to_string();
    let path_str = path.to_str().ok_or_else(|| BackupError::Usage(format!("{shown}: the path is not UTF-8")))?;
    let sql = |e: diesel::result::Error| BackupError::Corrupt { path: shown.clone(), detail: e.to_string() };
    let mut c = SqliteConnection::establish(path_str)
        .map_err(|e| BackupError::Sqlite { path: shown.clone(), detail: e.to_string() })?;
    c.batch_execute("PRAGMA busy_timeout = 10000").map_err(sql)?;
    if self_contained {
        c.batch_execute("PRAGMA journal_mode = DELETE").map_err(sql)?;
    }
    let rows: Vec<Integrity> = diesel::sql_query("PRAGMA integrity_check").load(&mut c).map_err(sql)?;
    let problems: Vec<String> = rows.into_iter().map(|r| r.integrity_check).filter(|m| m != "ok").collect();
    if !problems.is_empty() {
        return Err(BackupError::Corrupt { path: shown, detail: problems.join("; ") });
    }
    let migrations = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut c)
        .map_err(|_| BackupError::NotProvisor { path: shown.clone() })?
        .n;
    drop(c);
    let bytes = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
    Ok(BackupReport { file: shown, bytes, integrity: "ok", migrations })
}
