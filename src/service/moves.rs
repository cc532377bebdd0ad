//! Moving users between the associated accounts of one tree (master ↔ sub, sub ↔ sub), row
//! by row. Each user's move is one transaction through the pipeline (`move_to`): its seats go
//! back to its account's pools and come from the target's, its phone number and extension
//! are released, it leaves its groups; its tokens, sessions and delegations end; both
//! accounts' audit logs record the move. A dry run is the same run over every row in one
//! transaction, rolled back, so later rows see earlier rows' seats.
//!
//! Decisions (also in the README): owners, Admins and users with a pending invitation are
//! refused (an owner would leave its account ownerless, an Admin's rights do not carry over,
//! an invitation names its account); a target without a seat for what the user holds refuses
//! the row (`no_seat_left`) rather than downgrading the user to Basic behind the admin's back;
//! what the user holds in phone terms is released (the target's own rules and imports assign
//! phone anew), meeting license and meeting add-ons carry over.

use serde::Serialize;

use crate::domain::accounts::normalize_email;
use crate::domain::users::{BaseRole, UserStatus};
use crate::error::{AppError, AppResult};
use crate::provisioning::{self, audit, Actor, Env, IdentityChange, Operation, Shortage, Source};
use crate::store::{self, DbConn};

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct MoveResult {
    pub email: String,
    /// `moved`, `would_move` or `refused`.
    pub status: String,
    pub reason: Option<String>,
}

fn refused(email: &str, reason: impl Into<String>) -> MoveResult {
    MoveResult { email: email.to_owned(), status: "refused".into(), reason: Some(reason.into()) }
}

/// The accounts a caller in `root` may move users between: its tree, three tiers deep.
pub fn tree(conn: &mut DbConn, root: &str) -> AppResult<Vec<String>> {
    Ok(super::reports::accounts(conn, root, None)?.into_iter().map(|a| a.account_id).collect())
}

/// Moves one user (by e-mail) into `target`; a refusal is a result, not an error. The
/// outer error fails the transaction (a database fault). Returns the result and the hashes
/// of revoked tokens.
pub fn move_one(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    tree: &[String],
    target: &str,
    email: &str,
    dry_run: bool,
) -> AppResult<(MoveResult, Vec<String>)> {
    let Ok(normalized) = normalize_email(email) else { return Ok((refused(email, "invalid_email"), Vec::new())) };
    let Some(user) = store::users::find_by_email(conn, &normalized)?.filter(|u| tree.contains(&u.account_id)) else {
        // Users outside the caller's tree look like unknown ones.
        return Ok((refused(email, "not_found"), Vec::new()));
    };
    let reason = match (user.role, user.status) {
        _ if user.account_id == target => Some("already_there"),
        (BaseRole::Owner, _) => Some("owner"),
        (BaseRole::Admin, _) => Some("admin"),
        (_, UserStatus::Pending) => Some("pending_invitation"),
        _ => None,
    };
    if let Some(r) = reason {
        return Ok((refused(email, r), Vec::new()));
    }
    let to = store::accounts::find(conn, target)?.ok_or(AppError::not_found("account"))?;
    let from = user.account_id.clone();
    let mut change = IdentityChange::new(
        from.clone(),
        Source::Api,
        actor.clone(),
        Operation::Update { user_id: user.id.clone(), expected_version: None },
    );
    change.shortage = Shortage::Refuse;
    change.move_to = Some(to);
    // What the user holds is settled again in the target (seats from its pools).
    change.explicit.user_type = user.user_type.parse::<crate::domain::catalog::UserTier>().ok();
    change.explicit.addons = Some(provisioning::entitlements::parse_addons(&user.addons));
    // The pipeline's own refusals (a seat short, a domain routed elsewhere) refuse the row;
    // they leave nothing behind: the savepoint rolls back.
    let outcome = store::in_savepoint(conn, |c| provisioning::run(c, env, change));
    if let Err(e) = outcome {
        return match e {
            AppError::Internal(_) | AppError::Unavailable(_) => Err(e),
            other => Ok((refused(email, other.code()), Vec::new())),
        };
    }
    // What the user held in the old account ends: tokens, SSO sessions, delegations.
    let mut revoked = Vec::new();
    for t in store::tokens::list_of_user(conn, &from, &user.id)? {
        if t.revoked_at.is_none() {
            revoked.extend(store::tokens::revoke(conn, &from, &t.id, env.now)?);
        }
    }
    store::saml::delete_sessions_of(conn, &from, &user.id)?;
    for (d, r) in store::delegation::delegations_of_user(conn, &user.id)? {
        store::delegation::delete_delegate(conn, &r.id, &d.user_id)?;
        revoked.extend(store::delegation::revoke_sessions(conn, &r.id, Some(&d.user_id), env.now)?);
    }
    let detail = serde_json::json!({ "email": normalized, "from": from, "to": target });
    audit::record(conn, env, &from, actor, actor.via, "user.moved_out", Some(&user.id), detail.clone())?;
    audit::record(conn, env, target, actor, actor.via, "user.moved_in", Some(&user.id), detail)?;
    let status = if dry_run { "would_move" } else { "moved" };
    Ok((MoveResult { email: email.to_owned(), status: status.into(), reason: None }, revoked))
}

/// A dry run of a whole list: every row in one transaction, rolled back by the caller.
pub fn dry_run_all(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    tree: &[String],
    target: &str,
    emails: &[String],
) -> AppResult<Vec<MoveResult>> {
    let mut out = Vec::with_capacity(emails.len());
    for e in emails {
        out.push(move_one(conn, env, actor, tree, target, e, true)?.0);
    }
    Ok(out)
}

/// Checks the target is in the caller's tree (else: not found, like every foreign id).
pub fn check_target(tree: &[String], target: &str) -> AppResult<()> {
    if tree.iter().any(|a| a == target) {
        Ok(())
    } else {
        Err(AppError::not_found("account"))
    }
}
