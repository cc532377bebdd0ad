//! Mapping rules: one JSON document per account (the format is documented in the README
//! and in `domain::mapping`), validated and compiled before it is stored.

use crate::domain::mapping::{CompiledMapping, MappingConfig, Target};
use crate::domain::users::BaseRole;
use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env, Source};
use crate::store::{self, DbConn};

/// Largest rules document accepted.
pub const MAX_RULES_BYTES: usize = 512 * 1024;

/// The account's rules (an empty document when none were set) and their version.
pub fn get(conn: &mut DbConn, account: &str) -> AppResult<(serde_json::Value, i64)> {
    match store::mapping::get(conn, account)? {
        Some((text, version)) => {
            Ok((serde_json::from_str(&text).map_err(|e| AppError::Internal(e.to_string()))?, version))
        }
        None => Ok((serde_json::to_value(MappingConfig::default()).map_err(|e| AppError::Internal(e.to_string()))?, 0)),
    }
}

/// Validates, compiles and stores a rules document. Rules that grant the Admin role need
/// the owner (or the platform), as granting Admin directly does.
pub fn set(conn: &mut DbConn, env: &Env, actor: &Actor, source: Source, account: &str, text: &str) -> AppResult<i64> {
    if text.len() > MAX_RULES_BYTES {
        return Err(AppError::PayloadTooLarge { limit: MAX_RULES_BYTES });
    }
    let compiled =
        CompiledMapping::from_json(text).map_err(|e| AppError::bad_request("invalid_rules", e.to_string()))?;
    let grants_admin = compiled
        .config()
        .rules
        .iter()
        .any(|r| r.target == Target::Role && BaseRole::parse(&r.value) == Some(BaseRole::Admin));
    if grants_admin && !matches!(actor.role, Some(BaseRole::Owner) | None) {
        return Err(AppError::forbidden("only the account owner can set rules that grant the Admin role"));
    }
    let canonical = serde_json::to_string(compiled.config()).map_err(|e| AppError::Internal(e.to_string()))?;
    let version = store::mapping::put(conn, account, &canonical, env.now)?;
    env.mappings.remember(account, version, Some(std::sync::Arc::new(compiled.clone())));
    audit::record(
        conn,
        env,
        account,
        actor,
        source,
        "mapping.updated",
        None,
        serde_json::json!({ "version": version, "rules": compiled.config().rules.len() }),
    )?;
    Ok(version)
}
