//! Account tree, delegation and summary, disassociation, isolation and the master mirror.

use serde_json::json;

use crate::harness::{line, TestApp};

#[test]
fn two_and_three_tier_trees() {
    let app = TestApp::spawn();
    let top = app.account("Reseller", "owner@reseller.test", true);
    let t = app.admin_token(&top);

    // Two-tier: a plain sub account.
    let (s, sub) = app.post("/api/v1/sub_accounts", &t, json!({ "name": "Customer A", "owner_email": "owner@a.test" }));
    assert_eq!(s, 201, "{sub}");
    assert_eq!(sub["kind"], "sub");
    assert_eq!(sub["billing"], "pay_by_master");
    assert_eq!(sub["parent_id"], top.as_str());

    // Three-tier: a pseudo-master, and a sub below it.
    let (s, pseudo) = app.post(
        "/api/v1/sub_accounts",
        &t,
        json!({ "name": "Distributor", "owner_email": "owner@dist.test", "kind": "master", "billing": "separate" }),
    );
    assert_eq!(s, 201, "{pseudo}");
    assert_eq!(pseudo["is_master"], true);
    let pseudo_id = pseudo["id"].as_str().unwrap();
    let (s, third) = app.post(
        &format!("/api/v1/accounts/{pseudo_id}/sub_accounts"),
        &t,
        json!({ "name": "Leaf", "owner_email": "owner@leaf.test" }),
    );
    assert_eq!(s, 201, "{third}");
    let third_id = third["id"].as_str().unwrap();

    // No fourth tier, and no subs under a non-master.
    let (s, e) = app.post(
        &format!("/api/v1/accounts/{pseudo_id}/sub_accounts"),
        &t,
        json!({ "name": "X", "owner_email": "x@leaf.test", "kind": "master" }),
    );
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("too_many_tiers")), "{e}");
    let (s, e) = app.post(
        &format!("/api/v1/accounts/{third_id}/sub_accounts"),
        &t,
        json!({ "name": "Y", "owner_email": "y@leaf.test" }),
    );
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("not_a_master")), "{e}");

    // Owner e-mails are never reused, and must be valid.
    let (s, e) = app.post("/api/v1/sub_accounts", &t, json!({ "name": "Dup", "owner_email": "OWNER@a.test" }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("email_taken")), "{e}");
    let (s, e) = app.post("/api/v1/sub_accounts", &t, json!({ "name": "Bad", "owner_email": "not-an-email" }));
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_email")), "{e}");

    let (s, list) = app.get("/api/v1/sub_accounts", &t);
    assert_eq!(s, 200);
    assert_eq!(list["sub_accounts"].as_array().unwrap().len(), 2);
}

#[test]
fn vanity_names_and_domains_are_unique_system_wide() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let b = app.account("B", "owner@b.test", false);
    let (ta, tb) = (app.admin_token(&a), app.admin_token(&b));
    assert_eq!(app.patch("/api/v1/account", &ta, json!({ "vanity_name": "Acme" })).0, 200);
    let (s, e) = app.patch("/api/v1/account", &tb, json!({ "vanity_name": "acme" }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("vanity_taken")));
    // Domain claims: both may claim; the first to prove control by DNS wins.
    let (s, claim) = app.post("/api/v1/account/domains", &ta, json!({ "domain": "Acme.org" }));
    assert_eq!((s, claim["status"].as_str()), (201, Some("pending")), "{claim}");
    assert_eq!(claim["verification"]["name"], "_provisor-challenge.acme.org");
    let (s, other) = app.post("/api/v1/account/domains", &tb, json!({ "domain": "acme.org" }));
    assert_eq!((s, other["status"].as_str()), (201, Some("pending")), "{other}");
    // No record, or the wrong one: not verified.
    let (s, e) = app.post("/api/v1/account/domains/acme.org/verify", &ta, json!({}));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("verification_failed")), "{e}");
    app.dns.set("_provisor-challenge.acme.org", vec![other["verification"]["value"].as_str().unwrap().to_owned()]);
    assert_eq!(app.post("/api/v1/account/domains/acme.org/verify", &ta, json!({})).0, 409);
    // B published its value: B wins; A can no longer verify, a third account cannot claim.
    let (s, v) = app.post("/api/v1/account/domains/acme.org/verify", &tb, json!({}));
    assert_eq!((s, v["status"].as_str()), (200, Some("verified")), "{v}");
    app.dns.set("_provisor-challenge.acme.org", vec![claim["verification"]["value"].as_str().unwrap().to_owned()]);
    let (s, e) = app.post("/api/v1/account/domains/acme.org/verify", &ta, json!({}));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("domain_taken")), "{e}");
    let c = app.account("C", "owner@c.test", false);
    let (s, e) = app.post("/api/v1/account/domains", &app.admin_token(&c), json!({ "domain": "acme.org" }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("domain_taken")));
    let (_, listed) = app.get("/api/v1/account/domains", &ta);
    assert_eq!(listed["domains"][0]["status"], "pending", "{listed}");
    let (_, bv) = app.get("/api/v1/account", &tb);
    assert_eq!(bv["domains"], json!(["acme.org"]), "{bv}");
    // The operator approves without DNS (on the mirror); an account admin cannot.
    assert_eq!(app.post("/api/v1/account/domains", &ta, json!({ "domain": "a-only.example" })).0, 201);
    let (s, v) =
        app.post(&format!("/api/v1/accounts/{a}/account/domains/a-only.example/verify"), &app.operator, json!({}));
    assert_eq!((s, v["status"].as_str()), (200, Some("verified")), "{v}");
    let (s, e) = app.post("/api/v1/account/domains", &tb, json!({ "domain": "not a domain" }));
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_domain")));
    // Settings are per account: a setting on A is not seen on B.
    assert_eq!(app.patch("/api/v1/account", &ta, json!({ "settings": { "recording": "locked_off" } })).0, 200);
    let (_, bv) = app.get("/api/v1/account", &tb);
    assert_eq!(bv["settings"], json!({}));
}

#[test]
fn delegation_and_the_dashboard_example() {
    let app = TestApp::spawn();
    let m = app.account("Master", "owner@master.test", true);
    let t = app.admin_token(&m);
    app.purchase(&m, "pro", 5000);
    let mut subs = Vec::new();
    for i in 0..2 {
        let (s, v) = app.post("/api/v1/sub_accounts", &t, json!({ "name": format!("Sub {i}"), "owner_email": format!("owner@sub{i}.test"), "licenses": { "pro": 1000 } }));
        assert_eq!(s, 201, "{v}");
        subs.push(v["id"].as_str().unwrap().to_owned());
    }
    for i in 0..10 {
        let (s, v) = app.post("/api/v1/users", &t, json!({ "email": format!("u{i}@master.test"), "type": "pro" }));
        assert_eq!(s, 201, "{v}");
    }
    let (_, summary) = app.get("/api/v1/licenses", &t);
    let pro = line(&summary, "pro");
    assert_eq!(pro["purchased"], 5000);
    assert_eq!(pro["used"], 10);
    assert_eq!(pro["delegated"][&subs[0]], 1000);
    assert_eq!(pro["delegated"][&subs[1]], 1000);
    assert_eq!(pro["remaining"], 2990, "{summary}");

    // The sub sees what was delegated to it as its own pool.
    let (_, sub_summary) = app.get(&format!("/api/v1/accounts/{}/licenses", subs[0]), &t);
    assert_eq!(line(&sub_summary, "pro")["purchased"], 1000);

    // Over-delegation and reclaiming seats in use are refused.
    let (s, e) = app.put(&format!("/api/v1/sub_accounts/{}/licenses/pro", subs[0]), &t, json!({ "quantity": 4000 }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("no_seat_left")), "{e}");
    let st = app.token(&subs[0], "admin", None);
    assert_eq!(app.post("/api/v1/users", &st, json!({ "email": "x@sub0.test", "type": "pro" })).0, 201);
    let (s, e) = app.put(&format!("/api/v1/sub_accounts/{}/licenses/pro", subs[0]), &t, json!({ "quantity": 0 }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("licenses_in_use")), "{e}");
    // Reclaim down to what is used is fine.
    let (s, v) = app.put(&format!("/api/v1/sub_accounts/{}/licenses/pro", subs[0]), &t, json!({ "quantity": 1 }));
    assert_eq!(s, 200, "{v}");
    assert_eq!(line(&v, "pro")["remaining"], 5000 - 10 - 1 - 1000);
    // A sub receiving delegation cannot buy licenses itself.
    let (s, e) =
        app.put(&format!("/api/v1/accounts/{}/licenses/pro", subs[0]), &app.operator.clone(), json!({ "quantity": 5 }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("licenses_delegated")), "{e}");
    // Only the operator sets purchased counts.
    let (s, _) = app.put("/api/v1/licenses/pro", &t, json!({ "quantity": 9000 }));
    assert_eq!(s, 403);
}

#[test]
fn disassociation_keeps_users_and_never_double_counts() {
    let app = TestApp::spawn();
    let m = app.account("Master", "owner@master.test", true);
    let t = app.admin_token(&m);
    app.purchase(&m, "pro", 100);
    let (_, sub) = app.post(
        "/api/v1/sub_accounts",
        &t,
        json!({ "name": "Sub", "owner_email": "owner@sub.test", "licenses": { "pro": 20 } }),
    );
    let sub = sub["id"].as_str().unwrap().to_owned();
    let st = app.token(&sub, "admin", None);
    for i in 0..3 {
        assert_eq!(app.post("/api/v1/users", &st, json!({ "email": format!("u{i}@sub.test"), "type": "pro" })).0, 201);
    }
    assert_eq!(app.patch("/api/v1/account", &st, json!({ "settings": { "waiting_room": true } })).0, 200);

    let path = format!("/api/v1/sub_accounts/{sub}/disassociate");
    let (s, e) = app.post(&path, &t, json!({}));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("licenses_in_use")), "{e}");
    let (s, report) = app.post(&path, &t, json!({ "downgrade_users": true }));
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["downgraded_users"].as_array().unwrap().len(), 3);
    assert_eq!(report["returned"]["pro"], 20);

    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(line(&summary, "pro")["remaining"], 100);
    let (_, acct) = app.get("/api/v1/account", &st);
    assert_eq!(acct["kind"], "standard");
    assert_eq!(acct["settings"]["waiting_room"], true);
    let (_, users) = app.get("/api/v1/users", &st);
    assert_eq!(users["total"], 4, "the owner and the three users stay");
    assert!(users["users"].as_array().unwrap().iter().all(|u| u["type"] == "basic"));
    // The master no longer reaches it.
    assert_eq!(app.get(&format!("/api/v1/accounts/{sub}/users"), &t).0, 404);
}

#[test]
fn tenant_isolation_on_every_route() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", true);
    let b = app.account("B", "owner@b.test", true);
    let ta = app.admin_token(&a);
    let tb = app.admin_token(&b);
    let (_, bu) = app.post("/api/v1/users", &tb, json!({ "email": "victim@b.test" }));
    let b_user = bu["id"].as_str().unwrap().to_owned();
    let (_, bsub) = app.post("/api/v1/sub_accounts", &tb, json!({ "name": "B sub", "owner_email": "owner@bsub.test" }));
    let b_sub = bsub["id"].as_str().unwrap().to_owned();

    // A's token on B's account through the mirror: 404 everywhere, as if B did not exist.
    for (m, p) in [
        ("GET", format!("/api/v1/accounts/{b}/account")),
        ("GET", format!("/api/v1/accounts/{b}/users")),
        ("GET", format!("/api/v1/accounts/{b}/users/{b_user}")),
        ("PATCH", format!("/api/v1/accounts/{b}/users/{b_user}")),
        ("DELETE", format!("/api/v1/accounts/{b}/users/{b_user}")),
        ("GET", format!("/api/v1/accounts/{b}/licenses")),
        ("GET", format!("/api/v1/accounts/{b}/sub_accounts")),
        ("GET", format!("/api/v1/accounts/{b_sub}/users")),
        ("GET", format!("/api/v1/accounts/{b}/audit")),
        ("GET", format!("/api/v1/accounts/{b}/tokens")),
        ("GET", format!("/api/v1/accounts/{b}/roles")),
        ("GET", format!("/api/v1/accounts/{b}/invitations")),
        ("GET", format!("/api/v1/accounts/{b}/users/export")),
    ] {
        let body = if m == "PATCH" { Some(json!({ "department": "x" })) } else { None };
        let (s, _) = app.call(m, &p, Some(&ta), body);
        assert_eq!(s, 404, "{m} {p}");
    }
    // A's own routes never show B's user.
    for (m, p) in [("GET", format!("/api/v1/users/{b_user}")), ("DELETE", format!("/api/v1/users/{b_user}"))] {
        assert_eq!(app.call(m, &p, Some(&ta), None).0, 404, "{m} {p}");
    }
    assert_eq!(app.post(&format!("/api/v1/sub_accounts/{b_sub}/disassociate"), &ta, json!({})).0, 404);
    assert_eq!(app.put(&format!("/api/v1/sub_accounts/{b_sub}/licenses/pro"), &ta, json!({ "quantity": 1 })).0, 404);
    // Operator-only routes refuse account tokens.
    assert_eq!(app.get(&format!("/api/v1/accounts/{b}"), &ta).0, 403);
    assert_eq!(app.get("/api/v1/accounts", &ta).0, 403);
    // No token, a bad token.
    assert_eq!(app.call("GET", "/api/v1/users", None, None).0, 401);
    assert_eq!(app.get("/api/v1/users", "pvs_not-a-real-token").0, 401);
    // SCIM tokens do not open the admin API.
    let scim = app.token(&a, "scim", None);
    assert_eq!(app.get("/api/v1/users", &scim).0, 403);
}

#[test]
fn master_mirror_needs_manage_sub_accounts() {
    let app = TestApp::spawn();
    let m = app.account("Master", "owner@master.test", true);
    let owner = app.admin_token(&m);
    let (_, sub) = app.post("/api/v1/sub_accounts", &owner, json!({ "name": "Sub", "owner_email": "owner@sub.test" }));
    let sub = sub["id"].as_str().unwrap().to_owned();

    // Identical bodies on both paths.
    let st = app.admin_token(&sub);
    let (s1, own) = app.get("/api/v1/account", &st);
    let (s2, mirrored) = app.get(&format!("/api/v1/accounts/{sub}/account"), &owner);
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(own, mirrored);

    // A plain admin of the master: refused.
    let (_, adm) = app.post("/api/v1/users", &owner, json!({ "email": "admin@master.test", "role": "admin" }));
    assert_eq!(adm["role"], "admin");
    let admin_token = app.token(&m, "admin", Some("admin@master.test"));
    let (s, e) = app.get(&format!("/api/v1/accounts/{sub}/users"), &admin_token);
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("missing_permission")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("sub_accounts:edit"), "{e}");

    // Given a custom role with sub_accounts:manage: allowed.
    let (s, role) = app.post(
        "/api/v1/roles",
        &owner,
        json!({ "name": "Sub-account manager", "permissions": ["sub_accounts:manage", "users:read"] }),
    );
    assert_eq!(s, 201, "{role}");
    let admin_id = adm["id"].as_str().unwrap();
    let (s, v) =
        app.patch(&format!("/api/v1/users/{admin_id}"), &owner, json!({ "custom_role": "Sub-account manager" }));
    assert_eq!(s, 200, "{v}");
    let (s, users) = app.get(&format!("/api/v1/accounts/{sub}/users"), &admin_token);
    assert_eq!(s, 200, "{users}");
    // Writes through the mirror act in the sub and are audited with the master's user.
    let (s, u) = app.post(&format!("/api/v1/accounts/{sub}/users"), &admin_token, json!({ "email": "new@sub.test" }));
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["account_id"], sub.as_str());
    let (_, audit) = app.get("/api/v1/audit", &st);
    let created = audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "user.created").unwrap();
    assert!(created["actor"].as_str().unwrap().ends_with(&format!("@{m}")), "{created}");

    // The openapi document lists the mirror.
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(s, 200);
    assert!(doc["paths"]["/api/v1/accounts/{account_id}/users"].is_object());
    assert!(doc["paths"]["/api/v1/users"].is_object());
}

#[test]
fn users_of_an_associated_domain_belong_to_its_account() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", true);
    let b = app.account("B", "owner@b.test", false);
    let (ta, tb) = (app.admin_token(&a), app.admin_token(&b));
    let (s, claim) = app.post("/api/v1/account/domains", &ta, json!({ "domain": "acme.example" }));
    assert_eq!(s, 201, "{claim}");
    // An unverified claim routes nobody and blocks nobody.
    assert_eq!(app.post("/api/v1/users", &tb, json!({ "email": "early@acme.example" })).0, 201);
    app.dns.set("_provisor-challenge.acme.example", vec![claim["verification"]["value"].as_str().unwrap().to_owned()]);
    assert_eq!(app.post("/api/v1/account/domains/acme.example/verify", &ta, json!({})).0, 200);
    let (s, e) = app.post("/api/v1/users", &tb, json!({ "email": "bob@acme.example" }));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("domain_associated")), "{e}");
    assert_eq!(app.post("/api/v1/users", &ta, json!({ "email": "bob@acme.example" })).0, 201);
    // The account's own sub accounts may hold them.
    let (_, sub) = app.post("/api/v1/sub_accounts", &ta, json!({ "name": "S", "owner_email": "owner@s.test" }));
    let sub = sub["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/api/v1/accounts/{sub}/users"), &ta, json!({ "email": "carl@acme.example" })).0, 201);
}

/// One text rule on both backends: a NUL in a URL or a JSON body is a 400 naming it, never
/// a 500 (PostgreSQL) nor a stored NUL (SQLite).
#[test]
fn nul_characters_are_refused_everywhere_with_a_clear_error() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let t = app.admin_token(&a);
    let cases: Vec<(&str, String, Option<serde_json::Value>)> = vec![
        ("GET", "/api/v1/users?email=%00".into(), None),
        ("GET", "/api/v1/users/%00".into(), None),
        ("POST", "/api/v1/users".into(), Some(json!({ "email": "n@a.test", "first_name": "a\u{0}b" }))),
        ("POST", "/api/v1/groups".into(), Some(json!({ "name": "g\u{0}" }))),
        ("POST", "/api/v1/roles".into(), Some(json!({ "name": "r\u{0}", "permissions": [] }))),
        ("POST", "/api/v1/tokens".into(), Some(json!({ "scope": "scim", "label": "\u{0}" }))),
    ];
    for (m, p, body) in cases {
        let (s, v) = app.call(m, &p, Some(&t), body);
        assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_text")), "{m} {p}: {v}");
    }
    // Nothing was stored.
    let (_, users) = app.get("/api/v1/users", &t);
    assert!(!users.to_string().contains("n@a.test"), "{users}");
    // SCIM: a NUL in a filter string is a SCIM invalidFilter.
    let scim = app.token(&a, "scim", None);
    let (s, v) = app.call("GET", "/scim/v2/Users?filter=userName%20eq%20%22%5Cu0000%22", Some(&scim), None);
    assert_eq!((s, v["scimType"].as_str()), (400, Some("invalidFilter")), "{v}");
}
