//! The one writer of audit entries: every change (pipeline, services, SAML logins) records
//! what happened through [`record`], in the same transaction as the change.

use super::change::{Actor, Source};
use super::pipeline::Env;
use crate::error::AppResult;
use crate::store::{self, models::NewAudit, DbConn};

#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConn,
    env: &Env,
    account: &str,
    actor: &Actor,
    source: Source,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> AppResult<()> {
    write(conn, env, Some(account), actor, source, action, target, detail)
}

/// An audit entry about the platform itself (no account), e.g. an operator token issued.
pub fn record_platform(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    action: &str,
    target: Option<&str>,
    detail: serde_json::Value,
) -> AppResult<()> {
    write(conn, env, None, actor, source, action, target, detail)
}

#[allow(clippy::too_many_arguments)]
fn write(
    conn: &mut DbConn,
    env: &Env,
    account: Option<&str>,
    actor: &Actor,
    source: Source,
    action: &str,
    target: Option<&str>,
    mut detail: serde_json::Value,
) -> AppResult<()> {
    if let Some(d) = &actor.delegated {
        // Every entry a delegate causes names the relationship, partner and permission.
        let stamp = serde_json::to_value(d.as_ref()).unwrap_or_default();
        match detail.as_object_mut() {
            Some(m) => {
                m.insert("delegation".into(), stamp);
            }
            None => detail = serde_json::json!({ "value": detail, "delegation": stamp }),
        }
    }
    let entry = NewAudit {
        account_id: account.map(str::to_owned),
        actor: actor.label.clone(),
        source: source.as_str().to_owned(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        detail: detail.to_string(),
        created_at: env.now,
    };
    match &env.batch {
        // Written with the batch's other entries, before it commits.
        Some(scope) => scope.keep_audit(entry),
        None => store::audit::record(conn, &entry)?,
    }
    Ok(())
}
