//! The account's mapping rules, compiled once per version and shared by every change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::mapping::CompiledMapping;
use crate::error::{AppError, AppResult};
use crate::store::{self, DbConn};

/// How long a compiled rule set is used without asking the database for its version.
/// Rules set through this process replace the cached copy at once; other processes pick
/// them up within this window.
pub const RECHECK_AFTER: Duration = Duration::from_secs(2);

struct Cached {
    version: i64,
    compiled: Option<Arc<CompiledMapping>>,
    checked: Instant,
}

#[derive(Default)]
pub struct MappingCache {
    map: RwLock<HashMap<String, Cached>>,
}

impl MappingCache {
    /// The account's compiled rules, if it has any. Costs one primary-key lookup (the
    /// version) when the cached copy is current.
    pub fn get(&self, conn: &mut DbConn, account: &str) -> AppResult<Option<Arc<CompiledMapping>>> {
        if let Ok(map) = self.map.read() {
            if let Some(c) = map.get(account) {
                if c.checked.elapsed() < RECHECK_AFTER {
                    return Ok(c.compiled.clone());
                }
            }
        }
        let version = store::mapping::version(conn, account)?.unwrap_or(0);
        if let Ok(mut map) = self.map.write() {
            if let Some(c) = map.get_mut(account) {
                if c.version == version {
                    c.checked = Instant::now();
                    return Ok(c.compiled.clone());
                }
            }
        }
        let compiled = match store::mapping::get(conn, account)? {
            // Stored rules were validated when they were set; a failure here is a bug or a
            // hand-edited database, not bad input.
            Some((text, _)) => Some(Arc::new(
                CompiledMapping::from_json(&text)
                    .map_err(|e| AppError::Internal(format!("stored mapping rules: {e}")))?,
            )),
            None => None,
        };
        self.remember(account, version, compiled.clone());
        Ok(compiled)
    }

    /// Replaces the cached rules of an account (after they were set through this process).
    pub fn remember(&self, account: &str, version: i64, compiled: Option<Arc<CompiledMapping>>) {
        if let Ok(mut map) = self.map.write() {
            if map.len() > 100_000 {
                map.clear();
            }
            map.insert(account.to_owned(), Cached { version, compiled, checked: Instant::now() });
        }
    }
}
