//! The account's mapping rules, compiled once per version and shared by every change.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::TtlCache;
use crate::domain::mapping::CompiledMapping;
use crate::error::{AppError, AppResult};
use crate::store::{self, DbConn};

/// How long a compiled rule set is used without asking the database for its version.
/// Rules set through this process replace the cached copy at once; other processes pick
/// them up within this window.
pub const RECHECK_AFTER: Duration = Duration::from_secs(2);

/// A compiled rule set and the version it was compiled from.
#[derive(Clone)]
struct Cached {
    version: i64,
    compiled: Option<Arc<CompiledMapping>>,
}

pub struct MappingCache(TtlCache<String, Cached>);

impl Default for MappingCache {
    fn default() -> Self {
        MappingCache(TtlCache::new(RECHECK_AFTER, 100_000))
    }
}

impl MappingCache {
    /// The account's compiled rules, if it has any. Costs one primary-key lookup (the
    /// version) when the cached copy is older than [`RECHECK_AFTER`].
    pub fn get(&self, conn: &mut DbConn, account: &str) -> AppResult<Option<Arc<CompiledMapping>>> {
        let cached = self.0.get_with_age(account);
        if let Some((c, age)) = &cached {
            if *age < RECHECK_AFTER {
                return Ok(c.compiled.clone());
            }
        }
        let version = store::mapping::version(conn, account)?.unwrap_or(0);
        if let Some((c, _)) = cached {
            if c.version == version {
                self.0.put(account.to_owned(), c.clone());
                return Ok(c.compiled);
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
        self.0.put(account.to_owned(), Cached { version, compiled });
    }
}
