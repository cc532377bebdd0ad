//! Pending invitations: created with a new user (admin API, CSV), re-sent, accepted. The
//! invitation mail goes to the durable outbox in the same transaction.

use chrono::Duration;

use super::change::{Actor, Source};
use super::pipeline::Env;
use crate::clock::to_utc;
use crate::domain::users::{invitation_expiry, UserStatus, INVITATION_TTL_DAYS};
use crate::error::{AppError, AppResult};
use crate::secrets::{hash_secret, new_secret};
use crate::store::models::{AccountRow, InvitationRow, NewMail, UserRow};
use crate::store::{self, DbConn};

fn mail(env: &Env, account: &AccountRow, email: &str, token: &str) -> NewMail {
    NewMail {
        account_id: Some(account.id.clone()),
        recipient: email.to_owned(),
        subject: format!("You are invited to join {}", account.name),
        body: format!(
            "You have been invited to join {}.\n\nAccept the invitation within {INVITATION_TTL_DAYS} days:\n{}/invitations/accept?token={token}\n\n\
             (API: POST /api/v1/invitations/accept with {{\"token\": \"{token}\"}})\n",
            account.name,
            env.public_url.trim_end_matches('/'),
        ),
        created_at: env.now,
    }
}

/// Creates the invitation of a new pending user; returns its token.
pub fn create(conn: &mut DbConn, env: &Env, account: &AccountRow, user: &UserRow, email: &str) -> AppResult<String> {
    let token = new_secret("pvi_");
    let expires = invitation_expiry(to_utc(env.now)).naive_utc();
    let invitation = InvitationRow {
        id: crate::secrets::new_id(),
        user_id: user.id.clone(),
        account_id: account.id.clone(),
        token_hash: hash_secret(&token),
        sent_count: 1,
        created_at: env.now,
        expires_at: expires,
    };
    let mail = mail(env, account, email, &token);
    match &env.batch {
        Some(scope) => scope.keep_invitation(invitation, mail),
        None => {
            store::users::insert_invitation(conn, &invitation)?;
            store::audit::queue_mail(conn, &mail)?;
        }
    }
    Ok(token)
}

/// Sends a pending user's invitation again with a fresh token and a new 30-day window.
pub fn resend(conn: &mut DbConn, env: &Env, account: &AccountRow, user_id: &str, actor: &Actor) -> AppResult<String> {
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
    let detail = serde_json::json!({ "email": email });
    super::audit::record(conn, env, &account.id, actor, Source::Api, "invitation.resent", Some(&user.id), detail)?;
    Ok(token)
}
