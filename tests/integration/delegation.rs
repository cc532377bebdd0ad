//! Delegated administration over real HTTP: relationships (request, approve, decline,
//! invite, expiry, extension, warnings, termination), delegates and their invitations,
//! one-time codes, delegated tokens held to the relationship's scope, undisclosed views.

use crate::harness::TestApp;
use chrono::Duration;
use serde_json::{json, Value};

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

/// The newest mail to `to` (subject, body).
fn last_mail(app: &TestApp, to: &str) -> Option<(String, String)> {
    app.state
        .db
        .read_blocking(|c| provisor::store::audit::list_mail(c, Some(to), 1).map_err(provisor::error::AppError::from))
        .expect("mail")
        .into_iter()
        .next()
        .map(|m| (m.subject, m.body))
}

fn mails_to(app: &TestApp, to: &str) -> Vec<String> {
    app.state
        .db
        .read_blocking(|c| {
            provisor::store::audit::list_mail(c, Some(to), 1000).map_err(provisor::error::AppError::from)
        })
        .expect("mail")
        .into_iter()
        .map(|m| m.subject)
        .collect()
}

/// Creates a user through the admin API and accepts their invitation (the token from the
/// mail), so they are active; returns the user id.
fn person(app: &TestApp, owner_token: &str, email: &str, extra: Value) -> String {
    let mut body = json!({ "email": email });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, v) = app.post("/api/v1/users", owner_token, body);
    assert_eq!(s, 201, "{v}");
    let (_, mail) = last_mail(app, email).expect("invitation mail");
    let token = mail.split("token=").nth(1).and_then(|t| t.split_whitespace().next()).expect("token").to_owned();
    let env = app.state.env();
    app.state.db.write_blocking(|c| provisor::service::users::accept_invitation(c, &env, &token)).expect("accepted");
    v["id"].as_str().unwrap().to_owned()
}

struct World {
    partner: String,
    customer: String,
    partner_owner: String,
    customer_owner: String,
    /// A member of the partner with no admin rights.
    tech_id: String,
    tech: String,
}

fn world(app: &TestApp) -> World {
    let partner = app.account("Acme MSP", "lead@acme.test", false);
    let customer = app.account("Globex", "boss@globex.test", false);
    let partner_owner = app.admin_token(&partner);
    let customer_owner = app.admin_token(&customer);
    let tech_id = person(app, &partner_owner, "tech@acme.test", json!({}));
    person(app, &customer_owner, "worker@globex.test", json!({}));
    let tech = app.token(&partner, "user", Some("tech@acme.test"));
    World { partner, customer, partner_owner, customer_owner, tech_id, tech }
}

fn request(app: &TestApp, w: &World, permissions: &[&str], extra: Value) -> String {
    let mut body = json!({
        "customer": w.customer, "name": "Managed IT", "allow_delegates": true, "permissions": permissions,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, v) = app.post("/api/v1/relationships", &w.partner_owner, body);
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "pending");
    v["id"].as_str().unwrap().to_owned()
}

fn approve(app: &TestApp, w: &World, id: &str) {
    let (s, v) = app.post(&format!("/api/v1/relationships/{id}/approve"), &w.customer_owner, json!({}));
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
}

/// Adds tech as a delegate, accepts, asks for a code and exchanges it: a delegated token.
fn enter(app: &TestApp, w: &World, id: &str) -> String {
    let (s, v) = app.post(
        &format!("/api/v1/relationships/{id}/delegates"),
        &w.partner_owner,
        json!({ "email": "tech@acme.test" }),
    );
    assert!(s == 201 || s == 200, "{v}");
    let (s, v) = app.post(&format!("/api/v1/delegations/{id}/accept"), &w.tech, json!({}));
    assert_eq!(s, 200, "{v}");
    session(app, w, id)
}

fn session(app: &TestApp, w: &World, id: &str) -> String {
    let (s, v) = app.post(&format!("/api/v1/delegations/{id}/code"), &w.tech, json!({}));
    assert_eq!(s, 201, "{v}");
    let code = mailed_code(app);
    let (s, v) = app.post(&format!("/api/v1/delegations/{id}/session"), &w.tech, json!({ "code": code }));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["relationship_id"], id);
    assert_ne!(v["account_id"], w.partner.as_str());
    v["token"].as_str().unwrap().to_owned()
}

fn mailed_code(app: &TestApp) -> String {
    let (subject, _) = last_mail(app, "tech@acme.test").expect("code mail");
    subject.rsplit(' ').next().unwrap().to_owned()
}

fn sweep(app: &TestApp) -> provisor::service::delegation::SweepReport {
    let env = app.state.env();
    let (report, revoked) =
        app.state.db.write_blocking(|c| provisor::service::delegation::sweep(c, &env)).expect("sweep");
    for h in &revoked {
        app.state.tokens.forget_hash(h);
    }
    app.state.authorization_changed();
    report
}

#[test]
fn a_partner_request_is_approved_and_a_delegate_acts_within_its_scope() {
    let app = TestApp::spawn();
    let w = world(&app);
    let id = request(&app, &w, &["users:edit", "tokens:edit", "roles:edit", "external_accounts:edit"], json!({}));
    // The customer's owner is asked; the partner's other admins see the request too.
    assert!(mails_to(&app, "boss@globex.test").iter().any(|s| s.contains("requests access")));
    let (s, v) = app.get("/api/v1/relationships?side=customer", &w.customer_owner);
    assert_eq!((s, v["relationships"][0]["side"].as_str()), (200, Some("customer")), "{v}");
    // Before approval nobody can add delegates.
    let (s, v) = app.post(
        &format!("/api/v1/relationships/{id}/delegates"),
        &w.partner_owner,
        json!({ "email": "tech@acme.test" }),
    );
    assert_eq!((s, code(&v)), (409, Some("relationship_not_active")), "{v}");
    // Only the customer approves.
    let (s, v) = app.post(&format!("/api/v1/relationships/{id}/approve"), &w.partner_owner, json!({}));
    assert_eq!((s, code(&v)), (403, Some("customer_only")), "{v}");
    approve(&app, &w, &id);

    // The member tech holds no admin right in the partner account, yet is a delegate.
    let (s, v) = app.get("/api/v1/users", &w.tech);
    assert_eq!((s, code(&v)), (403, Some("missing_permission")), "{v}");
    let (s, v) = app.post(
        &format!("/api/v1/relationships/{id}/delegates"),
        &w.partner_owner,
        json!({ "email": "tech@acme.test" }),
    );
    assert_eq!((s, v["status"].as_str()), (201, Some("invited")), "{v}");
    let (s, v) = app.get("/api/v1/delegations", &w.tech);
    assert_eq!((s, v["delegations"][0]["status"].as_str()), (200, Some("invited")), "{v}");
    // Codes only once the invitation is accepted.
    let (s, v) = app.post(&format!("/api/v1/delegations/{id}/code"), &w.tech, json!({}));
    assert_eq!((s, code(&v)), (409, Some("invitation_not_accepted")), "{v}");
    let (s, v) = app.post("/api/v1/delegations/accept_all", &w.tech, json!({}));
    assert_eq!((s, v["accepted"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let delegated = session(&app, &w, &id);

    // Inside the customer: its users, not the partner's.
    let (s, v) = app.get("/api/v1/users", &delegated);
    assert_eq!(s, 200, "{v}");
    let listed = v.to_string();
    assert!(listed.contains("worker@globex.test") && !listed.contains("tech@acme.test"), "{v}");
    // A change is audited with delegate, partner, relationship and permission.
    let worker = v["users"].as_array().unwrap().iter().find(|u| u["email"] == "worker@globex.test").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, v) = app.patch(&format!("/api/v1/users/{worker}"), &delegated, json!({ "department": "Ops" }));
    assert_eq!(s, 200, "{v}");
    let (_, log) = app.get("/api/v1/audit", &w.customer_owner);
    let entry =
        log["entries"].as_array().unwrap().iter().find(|e| e["action"] == "user.updated").expect("entry").clone();
    assert_eq!(entry["detail"]["delegation"]["relationship_id"], id.as_str(), "{entry}");
    assert_eq!(entry["detail"]["delegation"]["permission"], "users:edit", "{entry}");
    assert_eq!(entry["detail"]["delegation"]["partner"], "Acme MSP", "{entry}");
    assert!(entry["actor"].as_str().unwrap().contains("tech@acme.test"), "{entry}");

    // Never tokens, roles or relationships, whatever the scope says.
    for (path, body) in [
        ("/api/v1/tokens", json!({ "scope": "admin" })),
        ("/api/v1/tokens", json!({ "scope": "user" })),
        ("/api/v1/roles", json!({ "name": "Backdoor", "permissions": ["users:edit"] })),
        ("/api/v1/relationships", json!({ "customer": w.partner, "name": "x", "permissions": ["users:view"] })),
        (
            "/api/v1/relationships/invitations",
            json!({ "partner_email": "tech@acme.test", "permissions": ["users:view"] }),
        ),
    ] {
        let (s, v) = app.post(path, &delegated, body);
        assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "{path}: {v}");
    }
    let (s, v) = app.get("/api/v1/me", &delegated);
    assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "{v}");
    // The customer's own token list does not show the delegate's session; the delegate view does.
    let (_, toks) = app.get("/api/v1/tokens", &w.customer_owner);
    assert!(toks["tokens"].as_array().unwrap().iter().all(|t| t["scope"] != "delegated"), "{toks}");
    let (_, ds) = app.get(&format!("/api/v1/relationships/{id}/delegates"), &w.customer_owner);
    assert_eq!(ds["delegates"][0]["sessions"].as_array().map(Vec::len), Some(1), "{ds}");
    assert_eq!(ds["delegates"][0]["email"], "tech@acme.test", "{ds}");
    assert_eq!(ds["delegates"][0]["sources"], json!(["manual"]), "{ds}");

    // The customer terminates: the next request is refused.
    let (s, v) = app.delete(&format!("/api/v1/relationships/{id}"), &w.customer_owner);
    assert_eq!((s, v["status"].as_str(), v["ended_by"].as_str()), (200, Some("terminated"), Some("customer")), "{v}");
    let (s, v) = app.get("/api/v1/users", &delegated);
    assert_eq!(s, 401, "{v}");
    assert!(mails_to(&app, "lead@acme.test").iter().any(|s| s.contains("ended your access")));
    // Both sides' logs hold the lifecycle.
    for token in [&w.partner_owner, &w.customer_owner] {
        let (_, log) = app.get("/api/v1/audit", token);
        let actions: Vec<&str> =
            log["entries"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
        for a in [
            "relationship.requested",
            "relationship.approved",
            "delegate.added",
            "delegate.accepted",
            "delegation.session_started",
            "relationship.terminated",
        ] {
            assert!(actions.contains(&a), "{a} missing in {actions:?}");
        }
    }
}

#[test]
fn the_scope_matrix_holds_for_every_route_of_the_catalogue() {
    use provisor::domain::authz::PermissionSet;
    use provisor::domain::delegation::delegate_permissions;
    use provisor::http::routes::{Need, ACCOUNT_SCOPED};
    let app = TestApp::spawn();
    let w = world(&app);
    let all: Vec<String> = PermissionSet::all().names();
    let scopes: Vec<(&str, Vec<String>)> = vec![
        ("view-only users", vec!["users:view".into(), "groups:view".into(), "roles:view".into()]),
        ("phone edit", vec!["phone_sites:edit".into(), "phone_numbers:edit".into(), "phone_users:edit".into()]),
        ("everything", all),
    ];
    for (label, perms) in &scopes {
        let names: Vec<&str> = perms.iter().map(String::as_str).collect();
        let id = request(&app, &w, &names, json!({}));
        approve(&app, &w, &id);
        let token = enter(&app, &w, &id);
        let holds = delegate_permissions(PermissionSet::parse_names(perms).unwrap());
        for r in ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()) {
            // Routes that would end the session under test are checked last, separately.
            if r.path.starts_with("/relationships/{relationship_id}") && r.method != "GET" {
                continue;
            }
            let path = format!("/api/v1{}", crate::harness::fill_route(r.path));
            let body = if r.method == "GET" || r.method == "DELETE" { None } else { Some(json!({})) };
            let (s, v) = app.call(r.method, &path, Some(&token), body);
            let allowed = matches!(r.need, Need::Perm(p) if holds.contains(p)) || r.need == Need::Public;
            if allowed {
                assert!(s != 403 && s != 401, "{label}: {} {} refused: {s} {v}", r.method, r.path);
            } else {
                assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "{label}: {} {}", r.method, r.path);
            }
        }
    }
}

#[test]
fn expiry_ends_access_at_the_instant_and_auto_extension_and_warnings_follow_the_clock() {
    let app = TestApp::spawn();
    let w = world(&app);
    let now = app.state.clock.now();
    let soon = (now + Duration::hours(2)).to_rfc3339();
    let id = request(&app, &w, &["users:view"], json!({ "expires_at": soon }));
    approve(&app, &w, &id);
    let token = enter(&app, &w, &id);
    let (_, ds) = app.get(&format!("/api/v1/relationships/{id}"), &w.partner_owner);
    assert_eq!(ds["status"], "active");
    assert_eq!(app.get("/api/v1/users", &token).0, 200);
    app.clock.advance(Duration::hours(2));
    let (s, v) = app.get("/api/v1/users", &token);
    assert_eq!((s, code(&v)), (401, Some("delegation_ended")), "{v}");
    let (_, r) = app.get(&format!("/api/v1/relationships/{id}"), &w.customer_owner);
    assert_eq!((r["status"].as_str(), r["ended_by"].as_str()), (Some("expired"), Some("expiry")), "{r}");
    assert_eq!(sweep(&app).expired, 1);
    assert_eq!(sweep(&app).expired, 0, "written down once");

    // Auto-extension: the end moves by 180 days and access goes on.
    let end = (app.state.clock.now() + Duration::hours(4)).to_rfc3339();
    let id = request(&app, &w, &["users:view"], json!({ "expires_at": end, "auto_extend": true }));
    approve(&app, &w, &id);
    let token = enter(&app, &w, &id);
    app.clock.advance(Duration::hours(5));
    assert_eq!(app.get("/api/v1/users", &token).0, 200, "past the stored end, extended");
    assert_eq!(sweep(&app).extended, 1);
    let (_, r) = app.get(&format!("/api/v1/relationships/{id}"), &w.partner_owner);
    let moved = chrono::DateTime::parse_from_rfc3339(r["expires_at"].as_str().unwrap()).unwrap();
    assert!(moved > app.state.clock.now() + Duration::days(170), "{r}");

    // Warnings at 30, 7 and 1 days, each once, to both sides.
    let end = (app.state.clock.now() + Duration::days(40)).to_rfc3339();
    let id = request(&app, &w, &["users:view"], json!({ "expires_at": end }));
    approve(&app, &w, &id);
    let warned = |app: &TestApp, who: &str| mails_to(app, who).iter().filter(|s| s.contains("expires in")).count();
    assert_eq!(sweep(&app).warnings, 0);
    app.clock.advance(Duration::days(10) + Duration::minutes(1));
    assert_eq!(sweep(&app).warnings, 1);
    assert_eq!(sweep(&app).warnings, 0);
    assert_eq!((warned(&app, "lead@acme.test"), warned(&app, "boss@globex.test")), (1, 1));
    app.clock.advance(Duration::days(23));
    assert_eq!(sweep(&app).warnings, 1);
    app.clock.advance(Duration::days(6));
    assert_eq!(sweep(&app).warnings, 1);
    assert_eq!(sweep(&app).warnings, 0);
    assert_eq!((warned(&app, "lead@acme.test"), warned(&app, "boss@globex.test")), (3, 3));
    let _ = id;
}

#[test]
fn requests_are_declined_or_lapse_and_wider_scopes_wait_for_approval() {
    let app = TestApp::spawn();
    let w = world(&app);
    let declined = request(&app, &w, &["users:view"], json!({}));
    let (s, v) = app.post(&format!("/api/v1/relationships/{declined}/decline"), &w.customer_owner, json!({}));
    assert_eq!((s, v["status"].as_str()), (200, Some("declined")), "{v}");
    let (s, v) = app.post(&format!("/api/v1/relationships/{declined}/approve"), &w.customer_owner, json!({}));
    assert_eq!((s, code(&v)), (409, Some("relationship_ended")), "{v}");

    let lapsing = request(&app, &w, &["users:view"], json!({}));
    app.clock.advance(Duration::days(90));
    let (_, v) = app.get(&format!("/api/v1/relationships/{lapsing}"), &w.customer_owner);
    assert_eq!(v["status"], "expired", "{v}");
    let (s, v) = app.post(&format!("/api/v1/relationships/{lapsing}/approve"), &w.customer_owner, json!({}));
    assert_eq!((s, code(&v)), (409, Some("relationship_ended")), "{v}");

    // A wider set is a request; the current one stays in force until approved.
    let id = request(&app, &w, &["users:view"], json!({}));
    approve(&app, &w, &id);
    let token = enter(&app, &w, &id);
    let (s, v) =
        app.patch(&format!("/api/v1/relationships/{id}"), &w.partner_owner, json!({ "permissions": ["users:edit"] }));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["permissions"].clone(), v["pending_permissions"].clone()),
        (json!(["users:view"]), json!(["users:view", "users:edit"]))
    );
    let (s, v) = app.post("/api/v1/users", &token, json!({ "email": "new@globex.test" }));
    assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "{v}");
    approve(&app, &w, &id);
    let (s, v) = app.post("/api/v1/users", &token, json!({ "email": "new@globex.test" }));
    assert_eq!(s, 201, "{v}");
    // A narrower set applies at once.
    let (s, v) =
        app.patch(&format!("/api/v1/relationships/{id}"), &w.partner_owner, json!({ "permissions": ["users:view"] }));
    assert_eq!((s, v["pending_permissions"].clone()), (200, Value::Null), "{v}");
    let (s, v) = app.post("/api/v1/users", &token, json!({ "email": "newer@globex.test" }));
    assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "{v}");
    assert_eq!(app.get("/api/v1/users", &token).0, 200);
    // The partner terminates too; the customer may not change the relationship.
    let (s, v) = app.patch(&format!("/api/v1/relationships/{id}"), &w.customer_owner, json!({ "name": "x" }));
    assert_eq!((s, code(&v)), (403, Some("partner_only")), "{v}");
    let (s, v) = app.post(&format!("/api/v1/relationships/{id}/terminate"), &w.partner_owner, json!({}));
    assert_eq!((s, v["ended_by"].as_str()), (200, Some("partner")), "{v}");
    let (s, v) = app.get("/api/v1/users", &token);
    assert_eq!((s, code(&v)), (401, Some("delegation_ended")), "{v}");
    // Bad input is refused clearly.
    for (body, c) in [
        (json!({ "customer": w.partner, "name": "self", "permissions": ["users:view"] }), "self_relationship"),
        (json!({ "customer": w.customer, "name": "x", "permissions": ["users:admin"] }), "unknown_permission"),
        (json!({ "customer": w.customer, "name": "x", "permissions": [] }), "no_permissions"),
        (
            json!({ "customer": w.customer, "name": "x", "permissions": ["users:view"], "expires_at": "2099-01-01T00:00:00Z" }),
            "invalid_expiry",
        ),
    ] {
        let (s, v) = app.post("/api/v1/relationships", &w.partner_owner, body);
        assert_eq!((s, code(&v)), (400, Some(c)), "{v}");
    }
    let (s, _) = app.post(
        "/api/v1/relationships",
        &w.partner_owner,
        json!({ "customer": "nobody", "name": "x", "permissions": ["users:view"] }),
    );
    assert_eq!(s, 404);
}

#[test]
fn a_customer_invites_a_partner_user_who_accepts_and_becomes_the_first_delegate() {
    let app = TestApp::spawn();
    let w = world(&app);
    let (s, v) = app.post(
        "/api/v1/relationships/invitations",
        &w.customer_owner,
        json!({ "partner_email": "tech@acme.test", "permissions": ["users:view"] }),
    );
    assert_eq!((s, v["status"].as_str(), v["side"].as_str()), (201, Some("invited"), Some("customer")), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(mails_to(&app, "tech@acme.test").iter().any(|s| s.contains("invites you")));
    let (_, v) = app.get("/api/v1/delegations", &w.tech);
    assert_eq!(
        (v["delegations"][0]["kind"].as_str(), v["delegations"][0]["status"].as_str()),
        (Some("relationship_invitation"), Some("invited")),
        "{v}"
    );
    // Someone else of the partner cannot accept it.
    let (s, _) = app.post(&format!("/api/v1/relationships/{id}/accept"), &w.partner_owner, json!({}));
    assert_eq!(s, 404);
    let (s, v) = app.post(&format!("/api/v1/relationships/{id}/accept"), &w.tech, json!({}));
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
    let (_, v) = app.get(&format!("/api/v1/relationships/{id}/delegates"), &w.partner_owner);
    assert_eq!(
        (v["delegates"][0]["user_id"].as_str(), v["delegates"][0]["status"].as_str()),
        (Some(w.tech_id.as_str()), Some("active")),
        "{v}"
    );
    let token = session(&app, &w, &id);
    assert_eq!(app.get("/api/v1/users", &token).0, 200);
    // The partner's admins see the relationship though none of them created it.
    let (_, v) = app.get("/api/v1/relationships?side=partner", &w.partner_owner);
    assert_eq!(v["relationships"].as_array().map(Vec::len), Some(1), "{v}");
    // A grant beyond the inviter's own is refused.
    let helper = person(&app, &w.customer_owner, "helper@globex.test", json!({ "role": "admin" }));
    let _ = helper;
    let admin = app.token(&w.customer, "admin", Some("helper@globex.test"));
    let (s, v) = app.post(
        "/api/v1/relationships/invitations",
        &admin,
        json!({ "partner_email": "tech@acme.test", "permissions": ["sub_accounts:edit"] }),
    );
    assert_eq!((s, code(&v)), (403, Some("not_held")), "{v}");
}

#[test]
fn an_undisclosed_relationship_shows_the_customer_a_pseudonym_everywhere() {
    let app = TestApp::spawn();
    let w = world(&app);
    let id = request(&app, &w, &["users:edit"], json!({ "undisclosed": true }));
    approve(&app, &w, &id);
    let token = enter(&app, &w, &id);
    let (_, v) = app.get(&format!("/api/v1/relationships/{id}/delegates"), &w.customer_owner);
    let d = &v["delegates"][0];
    let pseudonym = d["user_id"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("delegate-") && d["email"].is_null(), "{v}");
    assert_eq!(d["display_name"], "Acme MSP delegate");
    let (_, v) = app.get(&format!("/api/v1/relationships/{id}/delegates"), &w.partner_owner);
    assert_eq!(v["delegates"][0]["email"], "tech@acme.test", "the partner sees its people");
    // The contact stays visible.
    let (_, r) = app.get(&format!("/api/v1/relationships/{id}"), &w.customer_owner);
    assert_eq!(r["contact"]["email"], "lead@acme.test", "{r}");
    let (s, v) = app.post("/api/v1/users", &token, json!({ "email": "temp@globex.test" }));
    assert_eq!(s, 201, "{v}");
    let (_, log) = app.get("/api/v1/audit", &w.customer_owner);
    let text = log.to_string();
    assert!(
        !text.contains("tech@acme.test") && !text.contains(&w.tech_id),
        "the customer's log names no delegate: {text}"
    );
    assert!(text.contains(&format!("Acme MSP delegate ({pseudonym})")), "{text}");
    // The customer removes the delegate by pseudonym; access ends at the next request.
    assert_eq!(app.delete(&format!("/api/v1/relationships/{id}/delegates/{pseudonym}"), &w.customer_owner).0, 204);
    let (s, v) = app.get("/api/v1/users", &token);
    assert_eq!((s, code(&v)), (401, Some("delegation_ended")), "{v}");
}

#[test]
fn one_time_codes_lock_after_five_wrong_tries_are_single_use_expire_and_resends_are_throttled() {
    let app = TestApp::spawn();
    let w = world(&app);
    let id = request(&app, &w, &["users:view"], json!({}));
    approve(&app, &w, &id);
    enter(&app, &w, &id);
    let code_path = format!("/api/v1/delegations/{id}/code");
    let session_path = format!("/api/v1/delegations/{id}/session");
    // Re-sends are throttled.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(app.post(&code_path, &w.tech, json!({})).0, 201);
    let right = mailed_code(&app);
    let resp = app.client.post(app.url(&code_path)).bearer_auth(&w.tech).json(&json!({})).send().unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let wrong = if right == "00000000" { "11111111" } else { "00000000" };
    for _ in 0..5 {
        let (s, v) = app.post(&session_path, &w.tech, json!({ "code": wrong }));
        assert_eq!((s, code(&v)), (403, Some("code_invalid")), "{v}");
    }
    let (s, v) = app.post(&session_path, &w.tech, json!({ "code": right }));
    assert_eq!((s, code(&v)), (429, Some("rate_limited")), "locked even for the right code: {v}");
    // A new code after the throttle; used once only.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(app.post(&code_path, &w.tech, json!({})).0, 201);
    let fresh = mailed_code(&app);
    assert_eq!(app.post(&session_path, &w.tech, json!({ "code": fresh })).0, 201);
    let (s, v) = app.post(&session_path, &w.tech, json!({ "code": fresh }));
    assert_eq!((s, code(&v)), (403, Some("code_expired")), "{v}");
    // Ten minutes and it has expired.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(app.post(&code_path, &w.tech, json!({})).0, 201);
    let late = mailed_code(&app);
    app.clock.advance(Duration::minutes(10));
    let (s, v) = app.post(&session_path, &w.tech, json!({ "code": late }));
    assert_eq!((s, code(&v)), (403, Some("code_expired")), "{v}");
    // Someone who is not a delegate gets nothing.
    let (s, _) = app.post(&code_path, &w.partner_owner, json!({}));
    assert_eq!(s, 404);
}

#[test]
fn a_delegate_never_reaches_beyond_its_customer() {
    let app = TestApp::spawn();
    let w = world(&app);
    // The customer has a sub account; a second customer of the same partner exists too.
    let master = app.account("Initech", "boss@initech.test", true);
    let master_owner = app.admin_token(&master);
    let (s, sub) = app.post(
        "/api/v1/sub_accounts",
        &master_owner,
        json!({ "name": "Initech East", "owner_email": "east@initech.test" }),
    );
    assert_eq!(s, 201, "{sub}");
    let sub = sub["id"].as_str().unwrap().to_owned();
    let (s, v) = app.post(
        "/api/v1/relationships",
        &w.partner_owner,
        json!({ "customer": master, "name": "Initech IT", "allow_delegates": true, "permissions": PermissionNames::all() }),
    );
    assert_eq!(s, 201, "{v}");
    let initech_rel = v["id"].as_str().unwrap().to_owned();
    let (s, v) = app.post(&format!("/api/v1/relationships/{initech_rel}/approve"), &master_owner, json!({}));
    assert_eq!(s, 200, "{v}");
    let id = request(&app, &w, &["users:view"], json!({}));
    approve(&app, &w, &id);
    let globex = enter(&app, &w, &id);
    let initech = enter(&app, &w, &initech_rel);
    // Not the customer's sub account, not another customer, not the partner.
    assert_eq!(app.get(&format!("/api/v1/accounts/{sub}/users"), &initech).0, 404);
    assert_eq!(app.get(&format!("/api/v1/accounts/{master}/users"), &globex).0, 404);
    assert_eq!(app.get(&format!("/api/v1/accounts/{}/users", w.partner), &globex).0, 404);
    assert_eq!(app.get(&format!("/api/v1/accounts/{}/users", w.customer), &globex).0, 200);
    // The partner user's own token reaches no customer either.
    assert_eq!(app.get(&format!("/api/v1/accounts/{}/users", w.customer), &w.tech).0, 404);
    // Removing the delegate ends access at once; deactivating the partner user too.
    assert_eq!(app.delete(&format!("/api/v1/relationships/{id}/delegates/{}", w.tech_id), &w.partner_owner).0, 204);
    let (s, v) = app.get("/api/v1/users", &globex);
    assert_eq!((s, code(&v)), (401, Some("delegation_ended")), "{v}");
    assert_eq!(app.get("/api/v1/users", &initech).0, 200);
    let (s, v) = app.patch(&format!("/api/v1/users/{}", w.tech_id), &w.partner_owner, json!({ "status": "inactive" }));
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.get("/api/v1/users", &initech);
    assert_eq!((s, code(&v)), (401, Some("delegation_ended")), "{v}");
}

#[test]
fn a_member_makes_a_user_token_for_themselves_only() {
    let app = TestApp::spawn();
    let w = world(&app);
    let (s, v) = app.post("/api/v1/tokens", &w.tech, json!({ "scope": "user", "label": "laptop" }));
    assert_eq!((s, v["scope"].as_str()), (201, Some("user")), "{v}");
    let mine = v["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/me", &mine).1["user_id"], w.tech_id.as_str());
    let (s, v) = app.post("/api/v1/tokens", &w.tech, json!({ "scope": "user", "user_email": "lead@acme.test" }));
    assert_eq!((s, code(&v)), (403, Some("self_only")), "{v}");
    let (s, v) = app.post("/api/v1/tokens", &w.tech, json!({ "scope": "admin" }));
    assert_eq!((s, code(&v)), (403, Some("missing_permission")), "{v}");
}

struct PermissionNames;

impl PermissionNames {
    fn all() -> Vec<String> {
        provisor::domain::authz::PermissionSet::all().names()
    }
}

/// An approval racing a termination never brings a terminated relationship back: one of
/// them wins cleanly and the loser is refused (409), never both applied out of order.
#[test]
fn a_termination_is_never_overwritten_by_a_concurrent_approval() {
    let app = TestApp::spawn();
    let w = world(&app);
    let ids: Vec<String> = (0..12).map(|_| request(&app, &w, &["users:view"], json!({}))).collect();
    let results: Vec<(String, u16, u16)> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|id| {
                let (app, w) = (&app, &w);
                s.spawn(move || {
                    let approve = s.spawn(move || {
                        app.post(&format!("/api/v1/relationships/{id}/approve"), &w.customer_owner, json!({})).0
                    });
                    let terminate =
                        app.post(&format!("/api/v1/relationships/{id}/terminate"), &w.partner_owner, json!({})).0;
                    (id.clone(), approve.join().unwrap(), terminate)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (id, approved, terminated) in results {
        let (_, r) = app.get(&format!("/api/v1/relationships/{id}"), &w.customer_owner);
        assert!([200, 409].contains(&approved) && [200, 409].contains(&terminated), "{approved} {terminated}");
        if terminated == 200 {
            assert_eq!(r["status"], "terminated", "a 200 termination stands: {r}");
        } else {
            assert_eq!((approved, r["status"].as_str()), (200, Some("active")), "{r}");
        }
    }
}

#[test]
fn an_ended_relationship_is_purged_with_its_delegates_codes_and_tokens_after_its_period() {
    use provisor::service::retention::{purge, Policy};
    let app = TestApp::spawn();
    let w = world(&app);
    let ended = request(&app, &w, &["users:view"], json!({}));
    approve(&app, &w, &ended);
    let delegated = enter(&app, &w, &ended);
    let (s, _) = app.get("/api/v1/users", &delegated);
    assert_eq!(s, 200);
    let (s, v) = app.delete(&format!("/api/v1/relationships/{ended}"), &w.customer_owner);
    assert_eq!((s, v["status"].as_str()), (200, Some("terminated")), "{v}");
    let kept = request(&app, &w, &["users:view"], json!({ "name": "Still running" }));
    approve(&app, &w, &kept);
    let of =
        |table: &str, id: &str| app.count(&format!("SELECT COUNT(*) AS n FROM {table} WHERE relationship_id = '{id}'"));
    assert!(of("delegates", &ended) == 1 && of("delegate_codes", &ended) >= 1 && of("api_tokens", &ended) >= 1);

    let db = app.state.db.clone();
    let policy = Policy::default();
    let run = |dry: bool| purge(&db, app.state.env().now, &policy, dry).unwrap();
    assert_eq!(run(false).ended_relationships, 0, "ended today: kept for 90 days");
    app.clock.advance(Duration::days(89));
    assert_eq!(run(true).ended_relationships, 0, "89 days on: still kept");
    app.clock.advance(Duration::days(2));
    assert_eq!(run(true).ended_relationships, 1, "91 days on: due");
    assert_eq!(run(false).ended_relationships, 1);
    for table in ["delegates", "delegate_codes", "api_tokens"] {
        assert_eq!(of(table, &ended), 0, "{table} rows of the purged relationship");
    }
    let (s, _) = app.get(&format!("/api/v1/relationships/{ended}"), &w.customer_owner);
    assert_eq!(s, 404);
    let (s, v) = app.get(&format!("/api/v1/relationships/{kept}"), &w.customer_owner);
    assert_eq!((s, v["name"].as_str()), (200, Some("Still running")), "{v}");
    assert_eq!(run(false).ended_relationships, 0, "a second purge finds nothing");
}
