//! `migrate-data`: copies a whole installation from an SQLite database into a PostgreSQL one.
//!
//! Nothing here names a table. The tables, their columns, primary keys and foreign keys are
//! read from the databases' own catalogues (SQLite's `sqlite_master` and `pragma_table_info`,
//! PostgreSQL's `information_schema` and `pg_constraint`), so a table added by a migration is
//! copied without a change here; the two sides must agree on every table and column.
//!
//! - **Order**: tables are copied parents first, a topological order of the target's foreign
//!   keys (ties by name). A foreign key of a table to itself (`accounts.parent_id`) is written
//!   as `NULL` first and set once all the table's rows are in.
//! - **Conversion**: rows are read from SQLite as `json_array(…)` (blobs as hex) and inserted
//!   through `json_array_elements` with a cast to each target column's type: `0`/`1` become
//!   booleans, timestamp text becomes `timestamp`, hex becomes `bytea`.
//! - **One transaction per table**: a table is copied in batches inside one PostgreSQL
//!   transaction, verified, and recorded as done in [`PROGRESS_TABLE`] in that same
//!   transaction. An interrupted run leaves every table either complete and verified or
//!   untouched; run again, it skips the verified tables and redoes the one it was in.
//! - **Verification**: row count and the SHA-256 of a canonical rendering of every row
//!   (ordered by primary key, bytewise for text) on both sides; a difference rolls the
//!   table back.
//! - **Sequences**: `BIGSERIAL` columns get `setval` to their highest copied value.
//! - **Installations**: the source gets a random `installation_id` platform setting on first
//!   use; the target's progress rows carry it, so a target holding another installation's
//!   copy, or any data not written by this copy, is refused.
//!
//! The source is read inside one read transaction (a snapshot): stop the servers first, or
//! writes made during the copy are not in it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use diesel::connection::{DefaultLoadingMode, SimpleConnection};
use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DbConn, DbUrl, StoreError};

/// The target's record of verified tables (not part of the schema: only `migrate-data`
/// creates and reads it).
pub const PROGRESS_TABLE: &str = "__provisor_migrate_data";

/// The platform setting naming an installation.
pub const INSTALLATION_ID: &str = "installation_id";

/// Rows per insert statement unless told otherwise.
pub const DEFAULT_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the target already holds data: table {table} has {rows} rows that this copy did not write; migrate-data copies into an empty database (or continues its own interrupted copy): create a new database or schema and run it again")]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("the target holds a copy of another installation ({found}; this source is {ours}): use an empty database or schema")]
    OtherInstallation { found: String, ours: String },
    #[error("the two databases' schemas differ ({0}); run the same provisor version's migrations on both")]
    SchemaDrift(String),
    #[error("column {table}.{column} has type {ty}, which migrate-data does not convert")]
    UnsupportedType { table: String, column: String, ty: String },
    #[error("table {table}: {detail}")]
    BadValue { table: String, detail: String },
    #[error("verification failed for table {table}: source {src_rows} rows (sha256 {src_sum}), target {dst_rows} rows (sha256 {dst_sum}); the table was rolled back on the target")]
    Mismatch { table: String, src_rows: i64, src_sum: String, dst_rows: i64, dst_sum: String },
    #[error("table {table}: {detail}")]
    Interrupted { table: String, detail: String },
}

impl From<diesel::result::Error> for CopyError {
    fn from(e: diesel::result::Error) -> CopyError {
        CopyError::Store(StoreError::Diesel(e))
    }
}

/// How a column's values are converted and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int,
    Float,
    Text,
    Timestamp,
    Bytes,
}

impl Kind {
    fn of(pg_type: &str) -> Option<Kind> {
        Some(match pg_type {
            "boolean" => Kind::Bool,
            "smallint" | "integer" | "bigint" => Kind::Int,
            "real" | "double precision" => Kind::Float,
            "text" | "character varying" | "character" => Kind::Text,
            "timestamp without time zone" => Kind::Timestamp,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// The target's type name, used in the insert's cast.
    pub pg_type: String,
}

/// One table as both catalogues describe it.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub name: String,
    pub columns: Vec<Column>,
    /// Indexes into `columns`, in primary-key order.
    pub key: Vec<usize>,
    /// Columns referencing this same table, set after all rows are in.
    pub self_refs: Vec<usize>,
}

/// What happened to one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableReport {
    pub table: String,
    pub rows: i64,
    pub sha256: String,
    /// `copied` in this run, or `already_verified` by an earlier one.
    pub status: &'static str,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CopyReport {
    pub installation_id: String,
    pub tables: Vec<TableReport>,
    pub rows_copied: i64,
}

/// Progress of a run, for the command line to show.
pub enum Progress<'a> {
    Table { table: &'a str, index: usize, of: usize, rows: i64 },
    Rows { table: &'a str, done: i64 },
    Done { table: &'a str, rows: i64, skipped: bool },
}

#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub batch: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { batch: DEFAULT_BATCH }
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    child: String,
    #[diesel(sql_type = Text)]
    parent: String,
    #[diesel(sql_type = Text)]
    cols: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    j: String,
}

#[derive(QueryableByName)]
struct Done {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    installation_id: String,
    #[diesel(sql_type = BigInt)]
    row_count: i64,
    #[diesel(sql_type = Text)]
    checksum: String,
}

#[derive(QueryableByName)]
struct Sequence {
    #[diesel(sql_type = Nullable<Text>)]
    s: Option<String>,
}

/// A catalogue name, safe to double-quote (names come from the databases themselves, but a
/// name that needs escaping is refused rather than trusted).
fn ident(name: &str) -> Result<String, CopyError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(format!("\"{name}\""))
    } else {
        Err(CopyError::SchemaDrift(format!("unexpected table or column name {name:?}")))
    }
}

/// Opens the source (migrated to this version, given an installation id) and the target
/// (migrated), then copies. `now` stamps a new installation id.
pub fn migrate_data(
    from: &str,
    to: &str,
    opts: &CopyOptions,
    now: NaiveDateTime,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<CopyReport, CopyError> {
    let from_url = DbUrl::parse(from)?;
    let to_url = DbUrl::parse(to)?;
    if from_url.backend() != super::Backend::Sqlite {
        return Err(CopyError::Usage(format!(
            "--from must be an SQLite URL (sqlite://PATH), not {}",
            from_url.display()
        )));
    }
    if to_url.backend() != super::Backend::Postgres {
        return Err(CopyError::Usage(format!(
            "--to must be a PostgreSQL URL (postgres://USER@HOST/DB), not {}",
            to_url.display()
        )));
    }
    if let DbUrl::Sqlite(path) = &from_url {
        if !path.exists() {
            return Err(CopyError::Usage(format!("no SQLite database at {}", path.display())));
        }
    }
    let mut source = from_url.connect()?;
    super::pool::run_migrations(&mut source)?;
    let installation = super::write_tx(&mut source, |c| -> Result<String, CopyError> {
        if let Some(id) = super::platform::get(c, INSTALLATION_ID)? {
            return Ok(id);
        }
        let id = crate::secrets::new_id();
        super::platform::put(c, INSTALLATION_ID, &id, now)?;
        Ok(id)
    })?;
    let mut target = to_url.connect()?;
    super::pool::run_migrations(&mut target)?;
    let (DbConn::Sqlite(src), DbConn::Pg(dst)) = (&mut source, &mut target) else {
        return Err(CopyError::Usage("--from must be SQLite and --to PostgreSQL".into()));
    };
    // One snapshot of the source for the whole run.
    src.batch_execute("BEGIN DEFERRED; SELECT count(*) FROM sqlite_master;")?;
    let result = copy_all(src, dst, &installation, opts, progress);
    let _ = src.batch_execute("ROLLBACK");
    result
}

fn copy_all(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    installation: &str,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<CopyReport, CopyError> {
    let plan = plan(src, dst)?;
    dst.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {PROGRESS_TABLE} (table_name TEXT PRIMARY KEY, installation_id TEXT NOT NULL, \
         row_count BIGINT NOT NULL, checksum TEXT NOT NULL, verified_at TIMESTAMP NOT NULL DEFAULT now())"
    ))?;
    let done: Vec<Done> = diesel::sql_query(format!(
        "SELECT table_name, installation_id, row_count, checksum FROM {PROGRESS_TABLE} ORDER BY table_name"
    ))
    .load(dst)?;
    if let Some(other) = done.iter().find(|d| d.installation_id != installation) {
        return Err(CopyError::OtherInstallation {
            found: other.installation_id.clone(),
            ours: installation.to_owned(),
        });
    }
    let done: BTreeMap<String, Done> = done.into_iter().map(|d| (d.table_name.clone(), d)).collect();
    // Refuse before writing anything: every table not verified yet must be empty.
    for t in plan.iter().filter(|t| !done.contains_key(&t.name)) {
        let n = count(dst, &t.name)?;
        if n > 0 {
            return Err(CopyError::TargetNotEmpty { table: t.name.clone(), rows: n });
        }
    }
    let mut tables = Vec::with_capacity(plan.len());
    let mut rows_copied = 0;
    let mut copied_now = 0usize;
    for (i, t) in plan.iter().enumerate() {
        if let Some(d) = done.get(&t.name) {
            progress(Progress::Done { table: &t.name, rows: d.row_count, skipped: true });
            tables.push(TableReport {
                table: t.name.clone(),
                rows: d.row_count,
                sha256: d.checksum.clone(),
                status: "already_verified",
            });
            continue;
        }
        let rows = count_sqlite(src, &t.name)?;
        progress(Progress::Table { table: &t.name, index: i + 1, of: plan.len(), rows });
        let (n, sum) = dst.transaction(|dst| -> Result<(i64, String), CopyError> {
            let (n, sum) = copy_table(src, dst, t, opts, progress)?;
            diesel::sql_query(format!(
                "INSERT INTO {PROGRESS_TABLE} (table_name, installation_id, row_count, checksum) VALUES ($1, $2, $3, $4)"
            ))
            .bind::<Text, _>(&t.name)
            .bind::<Text, _>(installation)
            .bind::<BigInt, _>(n)
            .bind::<Text, _>(&sum)
            .execute(dst)?;
            Ok((n, sum))
        })?;
        progress(Progress::Done { table: &t.name, rows: n, skipped: false });
        rows_copied += n;
        copied_now += 1;
        crate::fault::point(&format!("migrate-data:after_table:{copied_now}"));
        tables.push(TableReport { table: t.name.clone(), rows: n, sha256: sum, status: "copied" });
    }
    Ok(CopyReport { installation_id: installation.to_owned(), tables, rows_copied })
}

/// Reads both catalogues and returns the tables in copy order.
pub fn plan(src: &mut SqliteConnection, dst: &mut PgConnection) -> Result<Vec<TablePlan>, CopyError> {
    let src_tables: BTreeSet<String> =
        diesel::sql_query("SELECT name AS name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .load::<Name>(src)?
            .into_iter()
            .map(|n| n.name)
            .filter(|n| !n.starts_with("sqlite_") && !n.starts_with("__"))
            .collect();
    let dst_tables: BTreeSet<String> = diesel::sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .load::<Name>(dst)?
    .into_iter()
    .map(|n| n.name)
    .filter(|n| !n.starts_with("__"))
    .collect();
    if src_tables != dst_tables {
        let only_src: Vec<_> = src_tables.difference(&dst_tables).cloned().collect();
        let only_dst: Vec<_> = dst_tables.difference(&src_tables).cloned().collect();
        return Err(CopyError::SchemaDrift(format!(
            "tables only in the source: {only_src:?}, only in the target: {only_dst:?}"
        )));
    }
    let fks: Vec<ForeignKey> = diesel::sql_query(
        "SELECT cl.relname::text AS child, pr.relname::text AS parent, \
           (SELECT string_agg(a.attname::text, ',') FROM pg_attribute a \
             WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)) AS cols \
         FROM pg_constraint c \
         JOIN pg_class cl ON cl.oid = c.conrelid \
         JOIN pg_class pr ON pr.oid = c.confrelid \
         JOIN pg_namespace ns ON ns.oid = cl.relnamespace \
         WHERE c.contype = 'f' AND ns.nspname = current_schema()",
    )
    .load(dst)?;
    let mut tables = BTreeMap::new();
    for name in &src_tables {
        let quoted = ident(name)?;
        let s_cols: Vec<SqliteColumn> =
            diesel::sql_query(format!("SELECT name AS name, pk AS pk FROM pragma_table_info('{}')", name)).load(src)?;
        let p_cols: Vec<PgColumn> = diesel::sql_query(
            "SELECT column_name::text AS name, data_type::text AS ty FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind::<Text, _>(name)
        .load(dst)?;
        let p_types: BTreeMap<&str, &str> = p_cols.iter().map(|c| (c.name.as_str(), c.ty.as_str())).collect();
        let s_names: BTreeSet<&str> = s_cols.iter().map(|c| c.name.as_str()).collect();
        if s_names.len() != p_types.len() || s_names.iter().any(|n| !p_types.contains_key(n)) {
            let p_names: BTreeSet<&str> = p_types.keys().copied().collect();
            return Err(CopyError::SchemaDrift(format!(
                "table {quoted} has columns {s_names:?} in the source and {p_names:?} in the target"
            )));
        }
        let mut columns = Vec::with_capacity(s_cols.len());
        for c in &s_cols {
            ident(&c.name)?;
            let ty = p_types.get(c.name.as_str()).copied().unwrap_or_default();
            let kind = Kind::of(ty).ok_or_else(|| CopyError::UnsupportedType {
                table: name.clone(),
                column: c.name.clone(),
                ty: ty.to_owned(),
            })?;
            columns.push(Column { name: c.name.clone(), kind, pg_type: ty.to_owned() });
        }
        let mut key: Vec<(i64, usize)> =
            s_cols.iter().enumerate().filter(|(_, c)| c.pk > 0).map(|(i, c)| (c.pk, i)).collect();
        key.sort();
        if key.is_empty() {
            return Err(CopyError::SchemaDrift(format!("table {quoted} has no primary key")));
        }
        let self_refs: Vec<usize> = fks
            .iter()
            .filter(|f| &f.child == name && &f.parent == name)
            .flat_map(|f| f.cols.split(',').map(str::to_owned).collect::<Vec<_>>())
            .filter_map(|col| columns.iter().position(|c| c.name == col))
            .collect();
        tables.insert(
            name.clone(),
            TablePlan { name: name.clone(), columns, key: key.into_iter().map(|(_, i)| i).collect(), self_refs },
        );
    }
    // Kahn's algorithm over child → parent edges, ready tables taken by name.
    let mut parents: BTreeMap<&str, BTreeSet<&str>> =
        src_tables.iter().map(|t| (t.as_str(), BTreeSet::new())).collect();
    for f in fks.iter().filter(|f| f.child != f.parent) {
        if let Some(p) = parents.get_mut(f.child.as_str()) {
            p.insert(f.parent.as_str());
        }
    }
    let mut order = Vec::with_capacity(tables.len());
    while !parents.is_empty() {
        let ready: Vec<&str> = parents.iter().filter(|(_, p)| p.is_empty()).map(|(t, _)| *t).collect();
        if ready.is_empty() {
            let left: Vec<&str> = parents.keys().copied().collect();
            return Err(CopyError::SchemaDrift(format!("the foreign keys of {left:?} form a cycle")));
        }
        for t in ready {
            parents.remove(t);
            for p in parents.values_mut() {
                p.remove(t);
            }
            if let Some(plan) = tables.remove(t) {
                order.push(plan);
            }
        }
    }
    Ok(order)
}

fn count(dst: &mut PgConnection, table: &str) -> Result<i64, CopyError> {
    let q = format!("SELECT count(*) AS n FROM {}", ident(table)?);
    Ok(diesel::sql_query(q).get_result::<Count>(dst)?.n)
}

fn count_sqlite(src: &mut SqliteConnection, table: &str) -> Result<i64, CopyError> {
    let q = format!("SELECT count(*) AS n FROM {}", ident(table)?);
    Ok(diesel::sql_query(q).get_result::<Count>(src)?.n)
}

/// Copies one table inside the target's open transaction and verifies it; returns its row
/// count and checksum.
fn copy_table(
    src: &mut SqliteConnection,
    dst: &mut PgConnection,
    t: &TablePlan,
    opts: &CopyOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<(i64, String), CopyError> {
    let table = ident(&t.name)?;
    let names: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect::<Result<_, _>>()?;
    let select: Vec<String> = t
        .columns
        .iter()
        .zip(&names)
        .map(|(c, n)| if c.kind == Kind::Bytes { format!("hex({n})") } else { n.clone() })
        .collect();
    let src_order: Vec<String> =
        key_columns(t, &names, |c, n| if c.kind == Kind::Text { format!("{n} COLLATE BINARY") } else { n.to_owned() });
    let casts: Vec<String> = t.columns.iter().enumerate().map(|(i, c)| cast(c, &format!("r->>{i}"))).collect();
    let insert = format!(
        "INSERT INTO {table} ({}) SELECT {} FROM json_array_elements($1::json) AS r",
        names.join(", "),
        casts.join(", ")
    );
    let query = format!("SELECT json_array({}) AS j FROM {table} ORDER BY {}", select.join(", "), src_order.join(", "));

    let mut hasher = Sha256::new();
    let mut rows = 0i64;
    let mut batch: Vec<Value> = Vec::with_capacity(opts.batch.max(1));
    let mut batches = 0usize;
    // Key columns + self-referencing columns of rows whose self-reference is set.
    let mut deferred: Vec<Value> = Vec::new();
    let mut line = String::new();
    for row in diesel::sql_query(query).load_iter::<JsonRow, DefaultLoadingMode>(src)? {
        let row = row?;
        let value: Value = serde_json::from_str(&row.j)
            .map_err(|e| CopyError::BadValue { table: t.name.clone(), detail: format!("unreadable row: {e}") })?;
        let Value::Array(mut cells) = value else {
            return Err(CopyError::BadValue { table: t.name.clone(), detail: "a row is not an array".into() });
        };
        canonical_row(t, &cells, &mut line)?;
        hasher.update(line.as_bytes());
        rows += 1;
        if !t.self_refs.is_empty() {
            let refs: Vec<Value> = t.self_refs.iter().filter_map(|&i| cells.get(i).cloned()).collect();
            if refs.iter().any(|v| !v.is_null()) {
                let mut entry: Vec<Value> = t.key.iter().filter_map(|&i| cells.get(i).cloned()).collect();
                entry.extend(refs);
                deferred.push(Value::Array(entry));
            }
            for &i in &t.self_refs {
                if let Some(c) = cells.get_mut(i) {
                    *c = Value::Null;
                }
            }
        }
        batch.push(Value::Array(cells));
        if batch.len() >= opts.batch.max(1) {
            batches += 1;
            insert_batch(dst, &insert, &mut batch, batches, &t.name)?;
            progress(Progress::Rows { table: &t.name, done: rows });
        }
    }
    if !batch.is_empty() {
        batches += 1;
        insert_batch(dst, &insert, &mut batch, batches, &t.name)?;
        progress(Progress::Rows { table: &t.name, done: rows });
    }
    if !deferred.is_empty() {
        set_self_refs(dst, t, &names, deferred, opts.batch.max(1))?;
    }
    if crate::fault::fails("migrate-data:tamper") {
        tamper(dst, t, &names)?;
    }
    reset_sequences(dst, t, &names)?;
    let src_sum = hex::encode(hasher.finalize());
    let (dst_rows, dst_sum) = target_checksum(dst, t, &names)?;
    if dst_rows != rows || dst_sum != src_sum {
        return Err(CopyError::Mismatch { table: t.name.clone(), src_rows: rows, src_sum, dst_rows, dst_sum });
    }
    Ok((rows, src_sum))
}

fn key_columns(t: &TablePlan, names: &[String], f: impl Fn(&Column, &str) -> String) -> Vec<String> {
    t.key.iter().filter_map(|&i| Some(f(t.columns.get(i)?, names.get(i)?))).collect()
}

/// The SQL that turns the JSON text `expr` into a value of the column's type.
fn cast(c: &Column, expr: &str) -> String {
    match c.kind {
        Kind::Bytes => format!("decode({expr}, 'hex')"),
        _ => format!("({expr})::{}", c.pg_type),
    }
}

fn insert_batch(
    dst: &mut PgConnection,
    insert: &str,
    batch: &mut Vec<Value>,
    number: usize,
    table: &str,
) -> Result<(), CopyError> {
    if number == 2 && crate::fault::fails("migrate-data:second_batch") {
        return Err(CopyError::Interrupted {
            table: table.to_owned(),
            detail: "the second batch failed (fault point)".into(),
        });
    }
    let json = serde_json::to_string(&Value::Array(std::mem::take(batch)))
        .map_err(|e| CopyError::BadValue { table: table.to_owned(), detail: e.to_string() })?;
    diesel::sql_query(insert).bind::<Text, _>(json).execute(dst)?;
    Ok(())
}

fn set_self_refs(
    dst: &mut PgConnection,
    t: &TablePlan,
    names: &[String],
    deferred: Vec<Value>,
    batch: usize,
) -> Result<(), CopyError> {
    let table = ident(&t.name)?;
    let k = t.key.len();
    let mut sets = Vec::new();
    for (j, &i) in t.self_refs.iter().enumerate() {
        if let (Some(c), Some(n)) = (t.columns.get(i), names.get(i)) {
            sets.push(format!("{n} = {}", cast(c, &format!("r->>{}", k + j))));
        }
    }
    let mut wheres = Vec::new();
    for (j, &i) in t.key.iter().enumerate() {
        if let (Some(c), Some(n)) = (t.columns.get(i), names.get(i)) {
            wheres.push(format!("{table}.{n} = {}", cast(c, &format!("r->>{j}"))));
        }
    }
    let update = format!(
        "UPDATE {table} SET {} FROM json_array_elements($1::json) AS r WHERE {}",
        sets.join(", "),
        wheres.join(" AND ")
    );
    for chunk in deferred.chunks(batch) {
        let json = serde_json::to_string(chunk)
            .map_err(|e| CopyError::BadValue { table: t.name.clone(), detail: e.to_string() })?;
        diesel::sql_query(&update).bind::<Text, _>(json).execute(dst)?;
    }
    Ok(())
}

/// Test fault: changes one non-key text value of the copied table, so verification must fail.
fn tamper(dst: &mut PgConnection, t: &TablePlan, names: &[String]) -> Result<(), CopyError> {
    let table = ident(&t.name)?;
    let target = t
        .columns
        .iter()
        .zip(names)
        .enumerate()
        .find(|(i, (c, _))| c.kind == Kind::Text && !t.key.contains(i) && !t.self_refs.contains(i));
    if let Some((_, (_, n))) = target {
        diesel::sql_query(format!(
            "UPDATE {table} SET {n} = {n} || '~' WHERE ctid = (SELECT ctid FROM {table} WHERE {n} IS NOT NULL LIMIT 1)"
        ))
        .execute(dst)?;
    }
    Ok(())
}

fn reset_sequences(dst: &mut PgConnection, t: &TablePlan, names: &[String]) -> Result<(), CopyError> {
    let table = ident(&t.name)?;
    for (c, n) in t.columns.iter().zip(names) {
        if c.kind != Kind::Int {
            continue;
        }
        let seq: Sequence = diesel::sql_query("SELECT pg_get_serial_sequence($1, $2) AS s")
            .bind::<Text, _>(&table)
            .bind::<Text, _>(&c.name)
            .get_result(dst)?;
        if let Some(s) = seq.s {
            diesel::sql_query(format!(
                "SELECT setval($1, COALESCE((SELECT max({n}) FROM {table}), 1), (SELECT max({n}) FROM {table}) IS NOT NULL)"
            ))
            .bind::<Text, _>(s)
            .execute(dst)?;
        }
    }
    Ok(())
}

/// Count and checksum of the target's rows, read back through a cursor in key order.
fn target_checksum(dst: &mut PgConnection, t: &TablePlan, names: &[String]) -> Result<(i64, String), CopyError> {
    let table = ident(&t.name)?;
    let order =
        key_columns(t, names, |c, n| if c.kind == Kind::Text { format!("{n} COLLATE \"C\"") } else { n.to_owned() });
    dst.batch_execute(&format!(
        "DECLARE provisor_verify NO SCROLL CURSOR FOR SELECT json_build_array({})::text AS j FROM {table} ORDER BY {}",
        names.join(", "),
        order.join(", ")
    ))?;
    let mut hasher = Sha256::new();
    let mut rows = 0i64;
    let mut line = String::new();
    loop {
        let page: Vec<JsonRow> = diesel::sql_query("FETCH FORWARD 1000 FROM provisor_verify").load(dst)?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let value: Value = serde_json::from_str(&row.j)
                .map_err(|e| CopyError::BadValue { table: t.name.clone(), detail: format!("unreadable row: {e}") })?;
            let Value::Array(cells) = value else {
                return Err(CopyError::BadValue { table: t.name.clone(), detail: "a row is not an array".into() });
            };
            canonical_row(t, &cells, &mut line)?;
            hasher.update(line.as_bytes());
            rows += 1;
        }
    }
    dst.batch_execute("CLOSE provisor_verify")?;
    Ok((rows, hex::encode(hasher.finalize())))
}

/// One row rendered the same way from either backend: cells by column kind, tab-separated,
/// newline-terminated.
fn canonical_row(t: &TablePlan, cells: &[Value], out: &mut String) -> Result<(), CopyError> {
    out.clear();
    if cells.len() != t.columns.len() {
        return Err(CopyError::BadValue {
            table: t.name.clone(),
            detail: format!("a row has {} values for {} columns", cells.len(), t.columns.len()),
        });
    }
    for (i, (c, v)) in t.columns.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push('\t');
        }
        let cell = canonical(c.kind, v).ok_or_else(|| CopyError::BadValue {
            table: t.name.clone(),
            detail: format!("column {} holds {v}, not a {:?} value", c.name, c.kind),
        })?;
        out.push_str(&cell);
    }
    out.push('\n');
    Ok(())
}

/// A cell's canonical text; `None` when the value does not fit the column's kind.
pub fn canonical(kind: Kind, v: &Value) -> Option<String> {
    if v.is_null() {
        return Some("\\N".into());
    }
    match kind {
        Kind::Bool => match v {
            Value::Bool(b) => Some(if *b { "t" } else { "f" }.into()),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some("f".into()),
                Some(1) => Some("t".into()),
                _ => None,
            },
            _ => None,
        },
        Kind::Int => v.as_i64().map(|n| n.to_string()),
        Kind::Float => v.as_f64().map(|f| format!("{f:?}")),
        Kind::Text => v.as_str().and_then(|s| serde_json::to_string(s).ok()),
        Kind::Timestamp => {
            let s = v.as_str()?.replacen('T', " ", 1);
            NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
                .ok()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
        Kind::Bytes => {
            let s = v.as_str()?;
            Some(s.strip_prefix("\\x").unwrap_or(s).to_ascii_lowercase())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_backends_render_a_cell_the_same_way() {
        assert_eq!(canonical(Kind::Bool, &json!(1)), canonical(Kind::Bool, &json!(true)));
        assert_eq!(canonical(Kind::Bool, &json!(0)), canonical(Kind::Bool, &json!(false)));
        assert_eq!(canonical(Kind::Bool, &json!(2)), None);
        assert_eq!(
            canonical(Kind::Timestamp, &json!("2026-12-03 13:49:11.1234")),
            canonical(Kind::Timestamp, &json!("2026-12-03T13:49:11.1234"))
        );
        assert_eq!(
            canonical(Kind::Timestamp, &json!("2026-12-03 13:49:11")).as_deref(),
            Some("2026-12-03 13:49:11.000000")
        );
        assert_eq!(canonical(Kind::Timestamp, &json!("yesterday")), None);
        assert_eq!(canonical(Kind::Bytes, &json!("00FF")), canonical(Kind::Bytes, &json!("\\x00ff")));
        assert_eq!(canonical(Kind::Text, &json!("a\tb")).as_deref(), Some("\"a\\tb\""));
        assert_ne!(canonical(Kind::Text, &json!("\\N")), canonical(Kind::Text, &Value::Null));
        assert_eq!(canonical(Kind::Int, &json!("7")), None);
    }
}
