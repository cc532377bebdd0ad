//! Pending invitations: created with a new user (admin API, CSV), re-sent, accepted. The
//! invitation mail goes to the durable outbox in the same transaction.

use chrono::Duration;

use super::pipeline::Env;
use crate::clock::to_utc;
use crate::domain::users::{invitation_expired, invitation_expiry, UserStatus, INVITATION_TTL_DAYS};
use crate::error::{AppError, AppResult};
use crate::secrets::{hash_secret, new_secret};
use crate::store::models::{AccountRow, InvitationRow, NewAudit, NewMail, UserRow};
use crate::store::{self, DbConn};

fn mail(env: &Env, account: &AccountRow, email: &str, token: &str) -> NewMail {
    NewMail {
        account_id: Some(account.id.clone()),
        recipient: email.to_owned(),
        subject: format!("You are invited to join {}", account.name),
        body: format!(
            "You have been invited to join {}.\n\nAccept the invitation within {INVITATION_TTL_DAYS} days:\n{}/invitations/accept?token={token}\n\n\
             (API: POST {}/api/v1/invitations/accept with {{\"token\": \"{token}\"}})\n",
            account.name,
            env.public_url.trim_end_matches('/'),
            env.public_url.trim_end_matches('/'),
        ),
        created_at: env.now,
    }
}

/// Creates the invitation of a new pending user; returns its token.
pub fn create(conn: &mut DbConn, env: &Env, account: &AccountRow, user: &UserRow, email: &str) -> AppResult<String> {
    let token = new_secret("pvi_");
    let expires = invitation_expiry(to_utc(env.now)).naive_utc();
    store::users::insert_invitation(
        conn,
        &InvitationRow {
            id: crate::secrets::new_id(),
            user_id: user.id.clone(),
            account_id: account.id.clone(),
            token_hash: hash_secret(&token),
            sent_count: 1,
            created_at: env.now,
            expires_at: expires,
        },
    )?;
    store::audit::queue_mail(conn, &mail(env, account, email, &token))?;
    Ok(token)
}

/// Sends a pending user's invitation again with a fresh token and a new 30-day window.
pub fn resend(conn: &mut DbConn, env: &Env, account: &AccountRow, user_id: &str, actor: &str) -> AppResult<String> {
    let user = store::users::find(conn, &account.id, user_id)?.ok_or(AppError::not_found("user"))?;
    if user.status != UserStatus::Pending {
        return Err(AppError::conflict("not_pending", "the user has already accepted the invitation"));
    }
    let email = user.email.clone().ok_or_else(|| AppError::conflict("no_email", "the user has no e-mail address"))?;
    let token = new_secret("pvi_");
    let expires = env.now + Duration::days(INVITATION_TTL_DAYS);
    match store::users::invitation_for_user(conn, &user.id)? {
        Some(inv) => store::users::renew_invitation(conn, &inv.id, &hash_secret(&token), env.now, expires)?,
        None => {
            create(conn, env, account, &user, &email)?;
            return Ok(token);
        }
    }
    store::audit::queue_mail(conn, &mail(env, account, &email, &token))?;
    store::audit::record(
        conn,
        &NewAudit {
            account_id: Some(account.id.clone()),
            actor: actor.to_owned(),
            source: "api".into(),
            action: "invitation.resent".into(),
            target: Some(user.id.clone()),
            detail: serde_json::json!({ "email": email }).to_string(),
            created_at: env.now,
        },
    )?;
    Ok(token)
}

/// Accepts an invitation: the user becomes active. Expired invitations are refused (410).
pub fn accept(conn: &mut DbConn, env: &Env, token: &str) -> AppResult<UserRow> {
    let inv = store::users::invitation_by_hash(conn, &hash_secret(token))?.ok_or(AppError::not_found("invitation"))?;
    if invitation_expired(to_utc(inv.expires_at), to_utc(env.now)) {
        return Err(AppError::Gone {
            code: "invitation_expired",
            message: "the invitation has expired; ask an administrator to send it again".into(),
        });
    }
    let mut user = store::users::find_any(conn, &inv.user_id)?.ok_or(AppError::not_found("user"))?;
    user.status = UserStatus::Active;
    user.version += 1;
    user.updated_at = env.now;
    store::users::update(conn, &user, None)?;
    store::users::delete_invitation(conn, &inv.id)?;
    store::audit::record(
        conn,
        &NewAudit {
            account_id: Some(inv.account_id.clone()),
            actor: format!("user:{}", user.id),
            source: "api".into(),
            action: "invitation.accepted".into(),
            target: Some(user.id.clone()),
            detail: "{}".into(),
            created_at: env.now,
        },
    )?;
    Ok(user)
}
