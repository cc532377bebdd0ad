//! What the rows of one import batch share, inside the batch's one write transaction:
//!
//! - **reads that cannot change under the batch**: the account row, a phone site found by
//!   its key, which account claims an e-mail domain, and the users the batch's rows name
//!   (fetched with one `IN (…)` query per batch). Imports never change accounts, sites or
//!   domain claims, so a row reading them again would only repeat a round trip; users are
//!   kept in step with what each row did.
//! - **rows nobody reads back inside a transaction**: audit entries, invitations and
//!   outgoing mail. They are kept in memory and written with one multi-row `INSERT` per
//!   table before the batch commits ([`BatchScope::flush`]), in the order the rows made
//!   them. A row that fails rolls its savepoint back and its kept rows with it
//!   ([`BatchScope::mark`] / [`BatchScope::rollback_to`]).
//!
//! Outside an import there is no scope (`Env::batch` is None) and every write goes out at
//! once, as before.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::error::AppResult;
use crate::store::models::{AccountRow, InvitationRow, NewAudit, NewMail, PhoneSiteRow, UserRow};
use crate::store::{self, DbConn};

/// Rows per multi-row `INSERT`: far below both backends' bound-parameter limits (SQLite
/// 32,766, PostgreSQL 65,535) at seven columns a row.
const ROWS_PER_INSERT: usize = 500;

#[derive(Default)]
struct State {
    accounts: HashMap<String, AccountRow>,
    /// Sites found by (account, key); only hits are kept (a site a later row creates, the
    /// main site, must not be hidden by an earlier miss).
    sites: HashMap<(String, String), PhoneSiteRow>,
    domain_owners: HashMap<String, Option<String>>,
    /// The batch's users by the e-mail address their row gave: None = no such user.
    users: HashMap<String, Option<UserRow>>,
    audit: Vec<NewAudit>,
    invitations: Vec<InvitationRow>,
    mail: Vec<NewMail>,
}

/// One batch's shared state (see the module documentation).
#[derive(Default)]
pub struct BatchScope(Mutex<State>);

/// How much was kept before a row began.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    audit: usize,
    invitations: usize,
    mail: usize,
}

impl BatchScope {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding it cannot leave half an entry: every change is one push or
        // one insert.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn mark(&self) -> Mark {
        let s = self.state();
        Mark { audit: s.audit.len(), invitations: s.invitations.len(), mail: s.mail.len() }
    }

    /// Drops what was kept since `mark` (the row's savepoint rolled back).
    pub fn rollback_to(&self, mark: Mark) {
        let mut s = self.state();
        s.audit.truncate(mark.audit);
        s.invitations.truncate(mark.invitations);
        s.mail.truncate(mark.mail);
    }

    pub fn account(&self, conn: &mut DbConn, id: &str) -> AppResult<Option<AccountRow>> {
        if let Some(a) = self.state().accounts.get(id) {
            return Ok(Some(a.clone()));
        }
        let found = store::accounts::find(conn, id)?;
        if let Some(a) = &found {
            self.state().accounts.insert(id.to_owned(), a.clone());
        }
        Ok(found)
    }

    pub fn find_site(&self, conn: &mut DbConn, account: &str, key: &str) -> AppResult<Option<PhoneSiteRow>> {
        let k = (account.to_owned(), key.to_owned());
        if let Some(s) = self.state().sites.get(&k) {
            return Ok(Some(s.clone()));
        }
        let found = store::phone::find_site(conn, account, key)?;
        if let Some(s) = &found {
            self.state().sites.insert(k, s.clone());
        }
        Ok(found)
    }

    pub fn domain_owner(&self, conn: &mut DbConn, domain: &str) -> AppResult<Option<String>> {
        if let Some(owner) = self.state().domain_owners.get(domain) {
            return Ok(owner.clone());
        }
        let owner = store::accounts::domain_owner(conn, domain)?;
        self.state().domain_owners.insert(domain.to_owned(), owner.clone());
        Ok(owner)
    }

    /// Fetches the users of these addresses not known yet, in one query.
    pub fn prefetch_users(&self, conn: &mut DbConn, emails: &[&str]) -> AppResult<()> {
        let missing: Vec<String> = {
            let s = self.state();
            let mut m: Vec<String> =
                emails.iter().filter(|e| !s.users.contains_key(**e)).map(|e| (*e).to_owned()).collect();
            m.sort();
            m.dedup();
            m
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut found: HashMap<String, UserRow> = HashMap::new();
        for chunk in missing.chunks(ROWS_PER_INSERT) {
            for u in store::users::find_by_emails(conn, chunk)? {
                if let Some(e) = u.email.clone() {
                    found.insert(e, u);
                }
            }
        }
        let mut s = self.state();
        for e in missing {
            let user = found.remove(&e);
            s.users.insert(e, user);
        }
        Ok(())
    }

    /// The user of this address as the batch knows it (None: not fetched).
    pub fn user(&self, email: &str) -> Option<Option<UserRow>> {
        self.state().users.get(email).cloned()
    }

    /// What a row did to the user of `email`: the next row naming it sees the result.
    pub fn remember_user(&self, email: &str, user: Option<UserRow>) {
        self.state().users.insert(email.to_owned(), user);
    }

    /// Forgets the user of `email` (its row failed: what the database holds is unknown).
    pub fn forget_user(&self, email: &str) {
        self.state().users.remove(email);
    }

    pub fn keep_audit(&self, entry: NewAudit) {
        self.state().audit.push(entry);
    }

    pub fn keep_invitation(&self, invitation: InvitationRow, mail: NewMail) {
        let mut s = self.state();
        s.invitations.push(invitation);
        s.mail.push(mail);
    }

    /// Writes what was kept, one multi-row `INSERT` per table (per [`ROWS_PER_INSERT`]
    /// rows), in the caller's transaction, and empties the scope's buffers.
    pub fn flush(&self, conn: &mut DbConn) -> AppResult<()> {
        let (audit, invitations, mail) = {
            let mut s = self.state();
            (std::mem::take(&mut s.audit), std::mem::take(&mut s.invitations), std::mem::take(&mut s.mail))
        };
        // Invitations first: nothing refers to them, but a failure here should stop the
        // batch before its audit entries claim the users were invited.
        for chunk in invitations.chunks(ROWS_PER_INSERT) {
            store::users::insert_invitations(conn, chunk)?;
        }
        for chunk in mail.chunks(ROWS_PER_INSERT) {
            store::audit::queue_mails(conn, chunk)?;
        }
        for chunk in audit.chunks(ROWS_PER_INSERT) {
            store::audit::record_many(conn, chunk)?;
        }
        Ok(())
    }

    /// Whether anything is kept that [`flush`](Self::flush) has not written.
    pub fn is_empty(&self) -> bool {
        let s = self.state();
        s.audit.is_empty() && s.invitations.is_empty() && s.mail.is_empty()
    }
}

impl std::fmt::Debug for BatchScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state();
        f.debug_struct("BatchScope")
            .field("audit", &s.audit.len())
            .field("invitations", &s.invitations.len())
            .field("mail", &s.mail.len())
            .finish()
    }
}
