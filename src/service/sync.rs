//! The group-sync engine: partner groups bound to relationships, their members kept as
//! delegates. Every membership change commits with its `membership_events` row; the worker
//! ([`drain`]) applies events in order and marks them done in one transaction, so a crash
//! loses nothing and applies nothing twice. [`reconcile`] recomputes every binding from the
//! memberships (in one transaction per binding: never a partial view) and repairs drift.
//! Large removals are held ([`Threshold`]) for an admin to confirm or discard.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use serde::Serialize;

use crate::domain::authz::{check_grant, stored_role_permissions, PermissionSet};
use crate::domain::delegation::{Side, Status};
use crate::domain::sync::{add_source, drift, remove_source, Source, Threshold};
use crate::error::{AppError, AppResult};
use crate::provisioning::{audit, Actor, Env};
use crate::secrets::new_id;
use crate::store::models::{DelegateRow, GroupBindingRow, MembershipEventRow, NewMail, RelationshipRow, SyncHoldRow};
use crate::store::{self, DbConn};

/// A bound group as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BindingView {
    pub id: String,
    pub relationship_id: String,
    pub group_id: String,
    pub group_name: Option<String>,
    pub permissions: Vec<String>,
    /// Members become active delegates at once (else they get an invitation to accept).
    pub auto_accept: bool,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_synced_at: Option<NaiveDateTime>,
}

/// What one drain of the event outbox did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainReport {
    pub events: usize,
    /// Source changes applied (a delegate added or a source dropped).
    pub applied: usize,
    /// Events with nothing to do (no binding, or the membership changed back since).
    pub skipped: usize,
    /// Removals held for confirmation.
    pub held: usize,
    /// Milliseconds from each applied event's commit to its application.
    #[serde(skip)]
    pub latencies_ms: Vec<f64>,
    /// Hashes of delegated tokens revoked (for the caches).
    #[serde(skip)]
    pub revoked: Vec<String>,
}

/// Drift of one binding, found and (unless a dry run) repaired.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct BindingDrift {
    pub binding_id: String,
    pub relationship_id: String,
    pub group_id: String,
    /// Group members who were not delegates through this group.
    pub missing: Vec<String>,
    /// Delegates through this group who are no longer members.
    pub extra: Vec<String>,
    pub repaired: bool,
    /// The removals were held for confirmation instead (too many at once).
    pub held: bool,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ReconcileReport {
    pub dry_run: bool,
    pub bindings: usize,
    pub missing: usize,
    pub extra: usize,
    /// Group sources whose binding is gone, dropped.
    pub dangling_sources: usize,
    pub repaired: usize,
    pub held: usize,
    pub drift: Vec<BindingDrift>,
    #[serde(skip)]
    pub revoked: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// Membership events not yet applied (of the account's groups).
    pub outbox_depth: i64,
    pub oldest_event_age_ms: i64,
    /// Held removals awaiting a decision.
    pub held_removals: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldView {
    pub id: String,
    pub relationship_id: String,
    /// `held`, `confirmed` or `discarded`.
    pub status: String,
    pub reason: String,
    pub removals: Vec<HeldRemoval>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<NaiveDateTime>,
    pub decided_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
pub struct HeldRemoval {
    pub user_id: String,
    pub source: String,
}

fn system() -> Actor {
    Actor { via: crate::provisioning::Source::Sync, ..Actor::system("group-sync") }
}

fn active(r: &RelationshipRow, now: NaiveDateTime) -> bool {
    let t = crate::domain::delegation::Timing {
        status: Status::parse(&r.status).unwrap_or(Status::Terminated),
        created_at: r.created_at,
        expires_at: r.expires_at,
        auto_extend: r.auto_extend,
    };
    crate::domain::delegation::effective(t, now).status == Status::Active
}

fn sources_of(d: &DelegateRow) -> Vec<String> {
    serde_json::from_str(&d.sources).unwrap_or_default()
}

/// The permissions of each bound group of a relationship.
pub fn binding_permissions(conn: &mut DbConn, relationship: &str) -> AppResult<BTreeMap<String, PermissionSet>> {
    Ok(store::sync::bindings_of(conn, relationship)?
        .into_iter()
        .map(|b| (b.group_id, stored_role_permissions(&b.permissions)))
        .collect())
}

fn view(conn: &mut DbConn, b: &GroupBindingRow) -> AppResult<BindingView> {
    let group = store::groups::find_any(conn, &b.group_id)?;
    Ok(BindingView {
        id: b.id.clone(),
        relationship_id: b.relationship_id.clone(),
        group_id: b.group_id.clone(),
        group_name: group.map(|g| g.display_name),
        permissions: stored_role_permissions(&b.permissions).names(),
        auto_accept: b.auto_accept,
        created_at: b.created_at,
        last_synced_at: b.last_synced_at,
    })
}

/// The partner side's relationship, active (bindings change only there).
fn partner_relationship(conn: &mut DbConn, caller: &str, id: &str, now: NaiveDateTime) -> AppResult<RelationshipRow> {
    let r = store::delegation::find(conn, id)?.ok_or(AppError::not_found("relationship"))?;
    if r.customer_account_id == caller {
        return Err(AppError::denied("partner_only", "only the partner side binds groups"));
    }
    if r.partner_account_id != caller {
        return Err(AppError::not_found("relationship"));
    }
    if !active(&r, now) {
        return Err(AppError::conflict("relationship_not_active", "groups are bound to an active relationship"));
    }
    Ok(r)
}

fn delegate_invitation(conn: &mut DbConn, env: &Env, r: &RelationshipRow, user: &str) -> AppResult<()> {
    let Some(email) = store::users::find_any(conn, user)?.and_then(|u| u.email) else { return Ok(()) };
    let customer = store::accounts::find(conn, &r.customer_account_id)?.map(|a| a.name).unwrap_or_default();
    store::audit::queue_mail(
        conn,
        &NewMail {
            account_id: Some(r.partner_account_id.clone()),
            recipient: email,
            subject: format!("You can now administer {customer}"),
            body: format!(
                "Your group membership makes you a delegate of relationship {} in {customer}.\n\nAccept: {}/delegations/{}/accept\n",
                r.name,
                env.public_url.trim_end_matches('/'),
                r.id,
            ),
            created_at: env.now,
        },
    )?;
    Ok(())
}

/// Audits a delegate's arrival or departure by sync in both accounts (the customer of an
/// undisclosed relationship sees the pseudonym).
fn audit_delegate(
    conn: &mut DbConn,
    env: &Env,
    r: &RelationshipRow,
    user: &str,
    action: &str,
    detail: serde_json::Value,
) -> AppResult<()> {
    let shown = if r.undisclosed { crate::domain::delegation::pseudonym(&r.id, user) } else { user.to_owned() };
    let actor = system();
    for (account, who) in [(&r.partner_account_id, user.to_owned()), (&r.customer_account_id, shown)] {
        let mut d = detail.clone();
        if let Some(m) = d.as_object_mut() {
            m.insert("relationship".into(), r.id.clone().into());
            m.insert("delegate".into(), who.into());
        }
        audit::record(conn, env, account, &actor, actor.via, action, Some(&r.id), d)?;
    }
    Ok(())
}

/// Gives `user` the `source` in `r` (a new delegate, or a new source of an existing one).
fn grant(
    conn: &mut DbConn,
    env: &Env,
    r: &RelationshipRow,
    user: &str,
    source: &Source,
    auto_accept: bool,
) -> AppResult<bool> {
    match store::delegation::delegate(conn, &r.id, user)? {
        Some(mut d) => {
            let mut sources = sources_of(&d);
            let mut changed = add_source(&mut sources, source);
            if auto_accept && d.status != "active" {
                d.status = "active".into();
                d.accepted_at = Some(env.now);
                changed = true;
            }
            if changed {
                d.sources = serde_json::to_string(&sources)?;
                store::delegation::update_delegate(conn, &d)?;
            }
            Ok(changed)
        }
        None => {
            let status = if auto_accept { "active" } else { "invited" };
            store::delegation::insert_delegate(
                conn,
                &DelegateRow {
                    relationship_id: r.id.clone(),
                    user_id: user.to_owned(),
                    status: status.into(),
                    sources: serde_json::to_string(&[source.name()])?,
                    added_at: env.now,
                    accepted_at: auto_accept.then_some(env.now),
                },
            )?;
            if !auto_accept {
                delegate_invitation(conn, env, r, user)?;
            }
            let detail = serde_json::json!({ "source": source.name(), "status": status });
            audit_delegate(conn, env, r, user, "delegate.added", detail)?;
            Ok(true)
        }
    }
}

/// Drops `source` from `user` in `r`; the delegate goes (and its sessions end) when no
/// source remains. Returns whether anything changed and the revoked token hashes.
fn revoke(
    conn: &mut DbConn,
    env: &Env,
    r: &RelationshipRow,
    user: &str,
    source: &Source,
) -> AppResult<(bool, Vec<String>)> {
    let Some(mut d) = store::delegation::delegate(conn, &r.id, user)? else { return Ok((false, Vec::new())) };
    let mut sources = sources_of(&d);
    if !remove_source(&mut sources, source) {
        return Ok((false, Vec::new()));
    }
    if !sources.is_empty() {
        d.sources = serde_json::to_string(&sources)?;
        store::delegation::update_delegate(conn, &d)?;
        return Ok((true, Vec::new()));
    }
    store::delegation::delete_delegate(conn, &r.id, user)?;
    let hashes = store::delegation::revoke_sessions(conn, &r.id, Some(user), env.now)?;
    let detail = serde_json::json!({ "source": source.name(), "sessions_ended": hashes.len() });
    audit_delegate(conn, env, r, user, "delegate.removed", detail)?;
    Ok((true, hashes))
}

/// Applies removals to one relationship, or holds them when there are too many at once.
/// Returns (applied, held, revoked hashes).
fn remove_or_hold(
    conn: &mut DbConn,
    env: &Env,
    threshold: Threshold,
    r: &RelationshipRow,
    removals: &[HeldRemoval],
    reason: &str,
) -> AppResult<(usize, bool, Vec<String>)> {
    if removals.is_empty() {
        return Ok((0, false, Vec::new()));
    }
    let total = usize::try_from(store::delegation::count_delegates(conn, &r.id)?).unwrap_or(usize::MAX);
    // How many delegates would be left with no source at all (only those named are read).
    let mut dropping: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for rm in removals {
        dropping.entry(rm.user_id.as_str()).or_default().insert(rm.source.as_str());
    }
    let mut gone = 0;
    for (user, drop) in &dropping {
        if let Some(d) = store::delegation::delegate(conn, &r.id, user)? {
            gone += usize::from(sources_of(&d).iter().all(|s| drop.contains(s.as_str())));
        }
    }
    if threshold.holds(gone, total) {
        let hold = SyncHoldRow {
            id: new_id(),
            relationship_id: r.id.clone(),
            removals: serde_json::to_string(removals)?,
            reason: format!("{reason}: {gone} of {total} delegates would lose access at once"),
            status: "held".into(),
            created_at: env.now,
            decided_at: None,
            decided_by: None,
        };
        store::sync::insert_hold(conn, &hold)?;
        let actor = system();
        let detail = serde_json::json!({ "hold": hold.id, "removals": removals.len(), "delegates": total });
        audit::record(conn, env, &r.partner_account_id, &actor, actor.via, "sync.removal_held", Some(&r.id), detail)?;
        return Ok((0, true, Vec::new()));
    }
    let (mut applied, mut revoked) = (0, Vec::new());
    for rm in removals {
        let Some(source) = Source::parse(&rm.source) else { continue };
        let (changed, hashes) = revoke(conn, env, r, &rm.user_id, &source)?;
        applied += usize::from(changed);
        revoked.extend(hashes);
    }
    Ok((applied, false, revoked))
}

/// Applies up to `limit` pending membership events, in order, each against the membership
/// as it is now, and marks them done — all in the caller's transaction.
pub fn drain(conn: &mut DbConn, env: &Env, threshold: Threshold, limit: i64) -> AppResult<DrainReport> {
    let events = store::sync::claim_events(conn, limit)?;
    let mut report = DrainReport { events: events.len(), ..Default::default() };
    if events.is_empty() {
        return Ok(report);
    }
    let groups: Vec<String> = events.iter().map(|e| e.group_id.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    // Another process may hold earlier or later events of these groups: apply after it,
    // against the membership as it left it (events of one group never race).
    store::sync::lock_groups(conn, &groups)?;
    let mut by_group: BTreeMap<String, Vec<(GroupBindingRow, RelationshipRow)>> = BTreeMap::new();
    for (b, r) in store::sync::bindings_of_groups(conn, &groups)? {
        by_group.entry(b.group_id.clone()).or_default().push((b, r));
    }
    // Removals are collected per relationship so the threshold sees the whole batch.
    let mut removals: BTreeMap<String, (RelationshipRow, Vec<HeldRemoval>)> = BTreeMap::new();
    let mut touched: BTreeSet<(String, String)> = BTreeSet::new();
    let mut membership: BTreeMap<(String, String), bool> = BTreeMap::new();
    for e in &events {
        let Some(bound) = by_group.get(&e.group_id) else {
            report.skipped += 1;
            continue;
        };
        let member = match membership.get(&(e.group_id.clone(), e.user_id.clone())) {
            Some(m) => *m,
            None => {
                let m = current_member(conn, e)?;
                membership.insert((e.group_id.clone(), e.user_id.clone()), m);
                m
            }
        };
        let source = Source::Group(e.group_id.clone());
        let mut did = false;
        for (b, r) in bound {
            if !active(r, env.now) {
                continue;
            }
            match (e.change.as_str(), member) {
                ("added", true) if grant(conn, env, r, &e.user_id, &source, b.auto_accept)? => {
                    report.applied += 1;
                    did = true;
                }
                ("removed", false) => {
                    let entry = removals.entry(r.id.clone()).or_insert_with(|| (r.clone(), Vec::new()));
                    let rm = HeldRemoval { user_id: e.user_id.clone(), source: source.name() };
                    if !entry.1.contains(&rm) {
                        entry.1.push(rm);
                    }
                    did = true;
                }
                _ => {}
            }
            touched.insert((b.id.clone(), r.id.clone()));
        }
        if did {
            report.latencies_ms.push((env.now - e.created_at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        } else {
            report.skipped += 1;
        }
    }
    for (r, rms) in removals.values() {
        let (applied, held, revoked) = remove_or_hold(conn, env, threshold, r, rms, "membership removals")?;
        report.applied += applied;
        report.held += if held { rms.len() } else { 0 };
        report.revoked.extend(revoked);
    }
    for (binding, relationship) in &touched {
        store::sync::touch_binding(conn, binding, env.now)?;
        store::sync::touch_relationship(conn, relationship, env.now)?;
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    store::sync::mark_processed(conn, &ids, env.now)?;
    Ok(report)
}

/// Is the event's user a member of its group now (and an active user who may delegate)?
fn current_member(conn: &mut DbConn, e: &MembershipEventRow) -> AppResult<bool> {
    if !store::groups::is_member(conn, &e.group_id, &e.user_id)? {
        return Ok(false);
    }
    Ok(store::users::find_any(conn, &e.user_id)?
        .is_some_and(|u| u.status == crate::domain::users::UserStatus::Active && u.account_id == e.account_id))
}

/// Recomputes one binding from the group's current members and repairs the difference
/// (unless `dry_run`); removals go through the threshold.
pub fn reconcile_binding(
    conn: &mut DbConn,
    env: &Env,
    threshold: Threshold,
    b: &GroupBindingRow,
    r: &RelationshipRow,
    dry_run: bool,
) -> AppResult<(BindingDrift, Vec<String>)> {
    let source = Source::Group(b.group_id.clone());
    let members: BTreeSet<String> = if active(r, env.now) {
        store::sync::active_member_ids(conn, &b.group_id)?.into_iter().collect()
    } else {
        BTreeSet::new()
    };
    let carriers: BTreeSet<String> = store::delegation::delegates_of(conn, &r.id)?
        .into_iter()
        .filter(|d| sources_of(d).contains(&source.name()))
        .map(|d| d.user_id)
        .collect();
    let found = drift(&members, &carriers);
    let mut out = BindingDrift {
        binding_id: b.id.clone(),
        relationship_id: r.id.clone(),
        group_id: b.group_id.clone(),
        missing: found.missing.clone(),
        extra: found.extra.clone(),
        repaired: false,
        held: false,
    };
    let mut revoked = Vec::new();
    if dry_run || found.is_empty() || !active(r, env.now) {
        return Ok((out, revoked));
    }
    for u in &found.missing {
        grant(conn, env, r, u, &source, b.auto_accept)?;
    }
    let rms: Vec<HeldRemoval> =
        found.extra.iter().map(|u| HeldRemoval { user_id: u.clone(), source: source.name() }).collect();
    let (_, held, hashes) = remove_or_hold(conn, env, threshold, r, &rms, "reconcile")?;
    revoked.extend(hashes);
    out.held = held;
    out.repaired = true;
    store::sync::touch_binding(conn, &b.id, env.now)?;
    store::sync::touch_relationship(conn, &r.id, env.now)?;
    Ok((out, revoked))
}

/// Group sources whose binding no longer exists, dropped from a relationship's delegates.
fn drop_dangling(conn: &mut DbConn, env: &Env, r: &RelationshipRow, dry_run: bool) -> AppResult<(usize, Vec<String>)> {
    let bound: BTreeSet<String> = binding_permissions(conn, &r.id)?.into_keys().collect();
    let (mut n, mut revoked) = (0, Vec::new());
    for d in store::delegation::delegates_of(conn, &r.id)? {
        for s in sources_of(&d) {
            if let Some(Source::Group(g)) = Source::parse(&s) {
                if !bound.contains(&g) {
                    n += 1;
                    if !dry_run {
                        revoked.extend(revoke(conn, env, r, &d.user_id, &Source::Group(g))?.1);
                    }
                }
            }
        }
    }
    Ok((n, revoked))
}

/// Binds a partner group to a relationship and imports its current members.
#[allow(clippy::too_many_arguments)]
pub fn bind(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    relationship: &str,
    group_id: &str,
    permissions: Option<Vec<String>>,
    auto_accept: bool,
) -> AppResult<BindingView> {
    let r = partner_relationship(conn, caller, relationship, env.now)?;
    if !r.allow_delegates {
        return Err(AppError::conflict("delegates_not_allowed", "this relationship does not allow delegates"));
    }
    let group = store::groups::find(conn, caller, group_id)?.ok_or(AppError::not_found("group"))?;
    let rel_perms = stored_role_permissions(&r.permissions);
    let perms = match permissions {
        Some(names) => {
            let set = PermissionSet::parse_names(&names).map_err(|n| {
                AppError::bad_request("unknown_permission", format!("{n:?} is not a permission of the catalogue"))
            })?;
            check_grant(rel_perms, set).map_err(|e| {
                AppError::bad_request("beyond_relationship", format!("a binding stays within its relationship: {e}"))
            })?;
            set
        }
        None => rel_perms,
    };
    let row = GroupBindingRow {
        id: new_id(),
        relationship_id: r.id.clone(),
        group_id: group.id.clone(),
        permissions: serde_json::to_string(&perms.names())?,
        auto_accept,
        created_at: env.now,
        last_synced_at: None,
    };
    store::sync::insert_binding(conn, &row)
        .map_err(AppError::on_unique("already_bound", "this group is bound to the relationship already"))?;
    store::sync::lock_groups(conn, std::slice::from_ref(&row.group_id))?;
    let (imported, _) = reconcile_binding(conn, env, Threshold::default(), &row, &r, false)?;
    let detail = serde_json::json!({
        "relationship": r.id, "group": group.id, "permissions": perms.names(), "auto_accept": auto_accept,
        "imported": imported.missing.len(),
    });
    audit::record(conn, env, caller, actor, actor.via, "relationship.group_bound", Some(&r.id), detail)?;
    let row = store::sync::binding(conn, &r.id, &row.id)?.ok_or(AppError::not_found("binding"))?;
    view(conn, &row)
}

pub fn bindings(conn: &mut DbConn, caller: &str, relationship: &str) -> AppResult<Vec<BindingView>> {
    let r = store::delegation::find(conn, relationship)?.ok_or(AppError::not_found("relationship"))?;
    if r.partner_account_id != caller && r.customer_account_id != caller {
        return Err(AppError::not_found("relationship"));
    }
    let rows = store::sync::bindings_of(conn, &r.id)?;
    rows.iter().map(|b| view(conn, b)).collect()
}

/// Unbinds a group: its source goes from every delegate of the relationship (delegates
/// left with none go, their sessions end). An admin's explicit act: never held.
pub fn unbind(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: &str,
    relationship: &str,
    binding: &str,
) -> AppResult<Vec<String>> {
    let r = store::delegation::find(conn, relationship)?.ok_or(AppError::not_found("relationship"))?;
    if r.partner_account_id != caller {
        return Err(AppError::not_found("relationship"));
    }
    let b = store::sync::binding(conn, &r.id, binding)?.ok_or(AppError::not_found("binding"))?;
    store::sync::delete_binding(conn, &b.id)?;
    let source = Source::Group(b.group_id.clone());
    let mut revoked = Vec::new();
    let mut dropped = 0;
    for d in store::delegation::delegates_of(conn, &r.id)? {
        let (changed, hashes) = revoke(conn, env, &r, &d.user_id, &source)?;
        dropped += usize::from(changed);
        revoked.extend(hashes);
    }
    let detail = serde_json::json!({ "relationship": r.id, "group": b.group_id, "sources_dropped": dropped });
    audit::record(conn, env, caller, actor, actor.via, "relationship.group_unbound", Some(&r.id), detail)?;
    Ok(revoked)
}

/// A group is being deleted: every binding of it goes as an unbinding would.
pub fn group_deleted(conn: &mut DbConn, env: &Env, group: &str) -> AppResult<Vec<String>> {
    let mut revoked = Vec::new();
    for (b, r) in store::sync::bindings_of_groups(conn, &[group.to_owned()])? {
        store::sync::delete_binding(conn, &b.id)?;
        let source = Source::Group(b.group_id.clone());
        for d in store::delegation::delegates_of(conn, &r.id)? {
            revoked.extend(revoke(conn, env, &r, &d.user_id, &source)?.1);
        }
    }
    Ok(revoked)
}

/// Reconciles every binding of one relationship (with its dangling sources).
pub fn reconcile_relationship(
    conn: &mut DbConn,
    env: &Env,
    threshold: Threshold,
    r: &RelationshipRow,
    dry_run: bool,
) -> AppResult<ReconcileReport> {
    let mut report = ReconcileReport { dry_run, ..Default::default() };
    let bindings = store::sync::bindings_of(conn, &r.id)?;
    let groups: Vec<String> = bindings.iter().map(|b| b.group_id.clone()).collect();
    store::sync::lock_groups(conn, &groups)?;
    for b in bindings {
        let (d, revoked) = reconcile_binding(conn, env, threshold, &b, r, dry_run)?;
        absorb(&mut report, d, revoked);
    }
    let (dangling, revoked) = drop_dangling(conn, env, r, dry_run)?;
    report.dangling_sources += dangling;
    report.revoked.extend(revoked);
    Ok(report)
}

/// Adds one binding's result to a report.
pub fn absorb(report: &mut ReconcileReport, d: BindingDrift, revoked: Vec<String>) {
    report.bindings += 1;
    report.missing += d.missing.len();
    report.extra += d.extra.len();
    report.repaired += usize::from(d.repaired);
    report.held += usize::from(d.held);
    report.revoked.extend(revoked);
    if !d.missing.is_empty() || !d.extra.is_empty() {
        report.drift.push(d);
    }
}

/// The relationships whose bindings a reconcile of `account` (all when `None`) covers.
pub fn relationships_to_reconcile(conn: &mut DbConn, account: Option<&str>) -> AppResult<Vec<RelationshipRow>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (_, r) in store::sync::all_bindings(conn, account)? {
        if seen.insert(r.id.clone()) {
            out.push(r);
        }
    }
    Ok(out)
}

pub fn status(conn: &mut DbConn, env: &Env, account: Option<&str>) -> AppResult<SyncStatus> {
    let (depth, oldest) = store::sync::pending(conn, account)?;
    let held = store::sync::holds_of(conn, account, Some("held"))?.len();
    Ok(SyncStatus {
        outbox_depth: depth,
        oldest_event_age_ms: oldest.map_or(0, |t| (env.now - t).num_milliseconds().max(0)),
        held_removals: held,
    })
}

fn hold_view(h: SyncHoldRow) -> HoldView {
    HoldView {
        removals: serde_json::from_str(&h.removals).unwrap_or_default(),
        id: h.id,
        relationship_id: h.relationship_id,
        status: h.status,
        reason: h.reason,
        created_at: h.created_at,
        decided_at: h.decided_at,
        decided_by: h.decided_by,
    }
}

pub fn holds(conn: &mut DbConn, account: Option<&str>) -> AppResult<Vec<HoldView>> {
    Ok(store::sync::holds_of(conn, account, None)?.into_iter().map(hold_view).collect())
}

/// Confirms (applies) or discards a held removal. Only the partner side decides: the
/// removals are about its people. Returns the view and the revoked token hashes.
pub fn decide(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    caller: Option<&str>,
    id: &str,
    confirm: bool,
) -> AppResult<(HoldView, Vec<String>)> {
    let h = store::sync::hold(conn, id)?.ok_or(AppError::not_found("held removal"))?;
    let r = store::delegation::find(conn, &h.relationship_id)?.ok_or(AppError::not_found("held removal"))?;
    if let Some(c) = caller {
        if r.customer_account_id == c {
            return Err(AppError::denied("partner_only", "the partner side decides on its delegates' removal"));
        }
        if r.partner_account_id != c {
            return Err(AppError::not_found("held removal"));
        }
    }
    let status = if confirm { "confirmed" } else { "discarded" };
    if !store::sync::decide_hold(conn, id, status, env.now, &actor.label)? {
        return Err(AppError::conflict("already_decided", "this removal was confirmed or discarded already"));
    }
    let mut revoked = Vec::new();
    if confirm {
        let removals: Vec<HeldRemoval> = serde_json::from_str(&h.removals).unwrap_or_default();
        for rm in &removals {
            // Someone back in the group meanwhile keeps their access.
            let still_gone = match Source::parse(&rm.source) {
                Some(Source::Group(g)) => !store::groups::is_member(conn, &g, &rm.user_id)?,
                _ => true,
            };
            if let (true, Some(source)) = (still_gone, Source::parse(&rm.source)) {
                revoked.extend(revoke(conn, env, &r, &rm.user_id, &source)?.1);
            }
        }
    }
    let detail = serde_json::json!({ "hold": id, "decision": status });
    audit::record(conn, env, &r.partner_account_id, actor, actor.via, "sync.hold_decided", Some(&r.id), detail)?;
    let h = store::sync::hold(conn, id)?.ok_or(AppError::not_found("held removal"))?;
    Ok((hold_view(h), revoked))
}

/// The side a caller stands on in a relationship (for views that differ by side).
pub fn side(r: &RelationshipRow, caller: &str) -> Option<Side> {
    if r.partner_account_id == caller {
        Some(Side::Partner)
    } else if r.customer_account_id == caller {
        Some(Side::Customer)
    } else {
        None
    }
}
