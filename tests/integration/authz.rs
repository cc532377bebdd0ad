//! The authorization model end to end: every principal × every sensitive action, allowed or
//! refused as the model says, with the state read back from the database afterwards.

use serde_json::{json, Value};

use crate::harness::TestApp;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

fn stored_user(app: &TestApp, account: &str, id: &str) -> provisor::store::models::UserRow {
    let (account, id) = (account.to_owned(), id.to_owned());
    app.state
        .db
        .write_blocking(move |c| {
            provisor::store::users::find(c, &account, &id).map_err(provisor::error::AppError::from)
        })
        .unwrap()
        .expect("user still stored")
}

fn scim_patch(app: &TestApp, token: &str, id: &str, ops: Value) -> (u16, Value) {
    app.call(
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        Some(token),
        Some(json!({ "schemas": [PATCH_OP], "Operations": ops })),
    )
}

struct World {
    master: String,
    sub: String,
    owner: String,
    owner_id: String,
    eve: String,
    eve_id: String,
    mel: String,
    sam_id: String,
    scim: String,
    mirror: String,
    sub_owner_id: String,
}

/// A master with an owner, Eve (Admin), Mel (member with a Helpdesk role: users:edit),
/// Sam (member), a SCIM token, a sub account, and Max: an Admin of the master given
/// `sub_accounts:edit`, who acts in the sub through the mirror.
fn world(app: &TestApp) -> World {
    let master = app.account("Master", "owner@m.test", true);
    let owner = app.admin_token(&master);
    let (_, acct) = app.get("/api/v1/account", &owner);
    let owner_id = acct["owner_id"].as_str().unwrap().to_owned();
    let mk = |email: &str, body: Value| {
        let (s, v) = app.post("/api/v1/users", &owner, body);
        assert_eq!(s, 201, "{email}: {v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let eve_id = mk("eve", json!({ "email": "eve@m.test", "role": "admin" }));
    assert_eq!(app.post("/api/v1/roles", &owner, json!({ "name": "Helpdesk", "permissions": ["users:edit"] })).0, 201);
    mk("mel", json!({ "email": "mel@m.test", "custom_role": "Helpdesk" }));
    let sam_id = mk("sam", json!({ "email": "sam@m.test" }));
    assert_eq!(
        app.post("/api/v1/roles", &owner, json!({ "name": "SubMgr", "permissions": ["sub_accounts:edit"] })).0,
        201
    );
    mk("max", json!({ "email": "max@m.test", "role": "admin", "custom_role": "SubMgr" }));
    let (s, sub) = app.post("/api/v1/sub_accounts", &owner, json!({ "name": "Sub", "owner_email": "owner@s.test" }));
    assert_eq!(s, 201, "{sub}");
    let sub = sub["id"].as_str().unwrap().to_owned();
    let sub_owner = app.admin_token(&sub);
    let (_, sacct) = app.get("/api/v1/account", &sub_owner);
    World {
        eve: app.token(&master, "admin", Some("eve@m.test")),
        mel: app.token(&master, "admin", Some("mel@m.test")),
        scim: app.token(&master, "scim", None),
        mirror: app.token(&master, "admin", Some("max@m.test")),
        sub_owner_id: sacct["owner_id"].as_str().unwrap().to_owned(),
        master,
        sub,
        owner,
        owner_id,
        eve_id,
        sam_id,
    }
}

#[test]
fn role_grants_follow_the_model() {
    let app = TestApp::spawn();
    let w = world(&app);
    let sam = format!("/api/v1/users/{}", w.sam_id);

    // Grant Admin: the owner yes; an Admin, a member with users:edit: no.
    for (who, token) in [("eve", &w.eve), ("mel", &w.mel)] {
        let (s, e) = app.patch(&sam, token, json!({ "role": "admin" }));
        assert_eq!((s, code(&e)), (403, Some("owner_only")), "{who}: {e}");
    }
    assert_eq!(stored_user(&app, &w.master, &w.sam_id).role.as_str(), "member");
    // Remove Admin: Eve cannot demote herself or another Admin.
    let (s, e) = app.patch(&format!("/api/v1/users/{}", w.eve_id), &w.eve, json!({ "role": "member" }));
    assert_eq!((s, code(&e)), (403, Some("owner_only")), "{e}");
    assert_eq!(stored_user(&app, &w.master, &w.eve_id).role.as_str(), "admin");

    // Custom roles: nobody creates one holding more than they hold.
    let everything: Vec<String> = {
        let (_, cat) = app.call("GET", "/api/v1/permissions", None, None);
        cat["permissions"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(everything.len(), 32);
    let (s, e) = app.post("/api/v1/roles", &w.eve, json!({ "name": "God", "permissions": everything }));
    assert_eq!((s, code(&e)), (403, Some("not_held")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("sub_accounts:edit"), "{e}");
    let (s, e) = app.post("/api/v1/roles", &w.mel, json!({ "name": "Mine", "permissions": ["users:view"] }));
    assert_eq!((s, code(&e)), (403, Some("missing_permission")), "{e}");
    assert_eq!(app.post("/api/v1/roles", &w.owner, json!({ "name": "God", "permissions": everything })).0, 201);
    // … nor assigns one holding more: Eve cannot give Sam (or herself) the God role.
    for id in [&w.sam_id, &w.eve_id] {
        let (s, e) = app.patch(&format!("/api/v1/users/{id}"), &w.eve, json!({ "custom_role": "God" }));
        assert_eq!((s, code(&e)), (403, Some("not_held")), "{e}");
        assert_eq!(stored_user(&app, &w.master, id).custom_role_id, None);
    }
    // A role within her holdings is fine.
    assert_eq!(app.patch(&sam, &w.eve, json!({ "custom_role": "Helpdesk" })).0, 200);
    // The owner grants anything.
    let (s, v) = app.patch(&sam, &w.owner, json!({ "role": "admin" }));
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");

    // The mirror actor administers the sub (Admin included) but is not its owner.
    let (s, u) = app.post(&format!("/api/v1/accounts/{}/users", w.sub), &w.mirror, json!({ "email": "x@s.test" }));
    assert_eq!(s, 201, "{u}");
    let x = u["id"].as_str().unwrap();
    let (s, v) = app.patch(&format!("/api/v1/accounts/{}/users/{x}", w.sub), &w.mirror, json!({ "role": "admin" }));
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")), "{v}");
    let sub_owner = format!("/api/v1/accounts/{}/users/{}", w.sub, w.sub_owner_id);
    let (s, e) = app.patch(&sub_owner, &w.mirror, json!({ "status": "inactive" }));
    assert_eq!((s, code(&e)), (403, Some("owner_protected")), "{e}");
    assert_ne!(stored_user(&app, &w.sub, &w.sub_owner_id).status.as_str(), "inactive");
}

#[test]
fn tokens_never_reach_beyond_their_minter() {
    let app = TestApp::spawn();
    let w = world(&app);
    // Eve cannot mint a token acting as the owner…
    let (s, e) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin", "user_email": "owner@m.test" }));
    assert_eq!((s, code(&e)), (403, Some("owner_protected")), "{e}");
    // … and a token without a user acts as its minter, not the owner.
    let (s, t) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin" }));
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["user_id"].as_str(), Some(w.eve_id.as_str()));
    let eve2 = t["token"].as_str().unwrap();
    let (s, e) = app.patch(&format!("/api/v1/users/{}", w.sam_id), eve2, json!({ "role": "admin" }));
    assert_eq!((s, code(&e)), (403, Some("owner_only")), "{e}");
    // Nor a token for a user holding more than she does (Max holds sub_accounts:edit).
    let (s, e) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin", "user_email": "max@m.test" }));
    assert_eq!((s, code(&e)), (403, Some("not_held")), "{e}");
    // Mel holds no tokens permission at all.
    let (s, e) = app.post("/api/v1/tokens", &w.mel, json!({ "scope": "scim" }));
    assert_eq!((s, code(&e)), (403, Some("missing_permission")), "{e}");
    // The owner can mint for anyone with admin rights.
    assert_eq!(app.post("/api/v1/tokens", &w.owner, json!({ "scope": "admin", "user_email": "max@m.test" })).0, 201);
    // A SCIM token opens no admin route.
    assert_eq!(app.get("/api/v1/users", &w.scim).0, 403);
}

#[test]
fn mapping_rules_grant_only_what_their_storer_may() {
    let app = TestApp::spawn();
    let w = world(&app);
    let rule = |target: &str, value: &str| json!({ "rules": [{ "attribute": "title", "match": { "equals": "boss" }, "target": target, "value": value }] });
    let documents = [
        ("rules admin", rule("role", "admin")),
        ("rules member", rule("role", "member")),
        ("defaults", json!({ "when_no_match": { "role": "default" }, "defaults": { "role": "admin" } })),
        ("direct", json!({ "direct": [{ "attribute": "title", "target": "role" }] })),
        ("custom role beyond", rule("role", "SubMgr")),
        (
            "placement",
            json!({ "placement": [{ "sub_account": "Sub", "conditions": [{ "attribute": "department", "match": { "equals": "Placed" } }] }] }),
        ),
        ("sub_account rule", rule("sub_account", "Sub")),
    ];
    for (what, doc) in &documents {
        let (s, e) = app.put("/api/v1/mapping", &w.eve, doc.clone());
        assert_eq!(s, 403, "Eve storing {what}: {e}");
        let (_, stored) = app.get("/api/v1/mapping", &w.owner);
        assert_eq!(stored["version"], 0, "nothing stored after {what}: {stored}");
    }
    // Rules within Eve's rights are hers to store.
    assert_eq!(app.put("/api/v1/mapping", &w.eve, rule("role", "Helpdesk")).0, 200);
    // The owner stores any of them.
    for (what, doc) in &documents {
        let (s, e) = app.put("/api/v1/mapping", &w.owner, doc.clone());
        assert_eq!(s, 200, "owner storing {what}: {e}");
    }
}

#[test]
fn nobody_but_the_owner_changes_the_owner() {
    let app = TestApp::spawn();
    let w = world(&app);
    let owner = format!("/api/v1/users/{}", w.owner_id);
    let before = stored_user(&app, &w.master, &w.owner_id);

    // Deactivate: an Admin, a member with users:edit, the IdP — all refused.
    for (who, token) in [("eve", &w.eve), ("mel", &w.mel)] {
        let (s, e) = app.patch(&owner, token, json!({ "status": "inactive" }));
        assert_eq!((s, code(&e)), (403, Some("owner_protected")), "{who}: {e}");
    }
    let (s, e) = scim_patch(&app, &w.scim, &w.owner_id, json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!(s, 403, "{e}");
    assert_eq!(app.call("DELETE", &format!("/scim/v2/Users/{}", w.owner_id), Some(&w.scim), None).0, 409);
    // Delete or demote: refused for everyone (ownership moves only by transfer).
    assert_eq!(app.delete(&owner, &w.eve).0, 409);
    assert_eq!(app.patch(&owner, &w.eve, json!({ "role": "member" })).0, 409);

    // Placement and role rules never move or re-role the owner (or place an Admin).
    let doc = json!({
        "rules": [{ "attribute": "department", "match": { "equals": "Placed" }, "target": "role", "value": "member" }],
        "placement": [{ "sub_account": "Sub", "conditions": [{ "attribute": "department", "match": { "equals": "Placed" } }] }],
    });
    assert_eq!(app.put("/api/v1/mapping", &w.owner, doc).0, 200);
    for id in [&w.owner_id, &w.eve_id] {
        let (s, v) = scim_patch(
            &app,
            &w.scim,
            id,
            json!([{ "op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Placed" }]),
        );
        assert_eq!(s, 200, "{v}");
    }
    let after = stored_user(&app, &w.master, &w.owner_id);
    assert_eq!(
        (after.account_id.as_str(), after.role.as_str(), after.status),
        (w.master.as_str(), "owner", before.status)
    );
    let eve = stored_user(&app, &w.master, &w.eve_id);
    assert_eq!(eve.account_id, w.master, "an Admin is not placed");
    assert!(eve.provisioning_issues.contains("privileged_user_kept"), "{}", eve.provisioning_issues);
    // A member is placed as the rules say.
    let (s, _) = scim_patch(
        &app,
        &w.scim,
        &w.sam_id,
        json!([{ "op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Placed" }]),
    );
    assert_eq!(s, 200);
    let (s, sam) = app.get(&format!("/api/v1/accounts/{}/users/{}", w.sub, w.sam_id), &w.owner);
    assert_eq!(s, 200, "{sam}");

    // The IdP still deprovisions an Admin who leaves.
    assert_eq!(app.call("DELETE", &format!("/scim/v2/Users/{}", w.eve_id), Some(&w.scim), None).0, 204);
}

#[test]
fn a_panicking_write_job_rolls_back_alone_and_the_writer_goes_on() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let owner = app.admin_token(&a);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The injected fault: a job that writes, then panics. Its write must not survive.
    let account = a.clone();
    let env = app.state.env();
    let result: Result<(), provisor::error::AppError> = rt.block_on(app.state.db.write(move |c| {
        provisor::provisioning::audit::record(
            c,
            &env,
            &account,
            &provisor::provisioning::Actor::system("test"),
            provisor::provisioning::Source::Api,
            "test.before_panic",
            None,
            json!({}),
        )?;
        panic!("injected fault inside a write job");
    }));
    let err = result.unwrap_err();
    assert_eq!(err.code(), "internal", "{err}");
    // The next 100 writes, through HTTP, all succeed.
    for i in 0..100 {
        let (s, v) = app.post("/api/v1/groups", &owner, json!({ "name": format!("G{i}") }));
        assert_eq!(s, 201, "write {i} after the panic: {v}");
    }
    let (_, audit) = app.get("/api/v1/audit?limit=1000", &owner);
    assert!(
        !audit["entries"].as_array().unwrap().iter().any(|e| e["action"] == "test.before_panic"),
        "the panicking job's write was rolled back"
    );
}

#[test]
fn disassociation_takes_back_everything_the_master_granted_itself() {
    let app = TestApp::spawn();
    let w = world(&app);
    let mirror = |p: &str| format!("/api/v1/accounts/{}{p}", w.sub);
    // Through the mirror, Max mints a SCIM and an admin token in the sub, configures its SSO
    // trust and its mapping rules.
    let (s, scim) = app.post(&mirror("/tokens"), &w.mirror, json!({ "scope": "scim" }));
    assert_eq!(s, 201, "{scim}");
    let scim = scim["token"].as_str().unwrap().to_owned();
    // (Not one acting as the sub's owner: that is the owner's own act.)
    let (s, e) = app.post(&mirror("/tokens"), &w.mirror, json!({ "scope": "admin", "user_email": "owner@s.test" }));
    assert_eq!((s, code(&e)), (403, Some("owner_protected")), "{e}");
    assert_eq!(app.post(&mirror("/users"), &w.mirror, json!({ "email": "ann@s.test", "role": "admin" })).0, 201);
    let (s, adm) = app.post(&mirror("/tokens"), &w.mirror, json!({ "scope": "admin", "user_email": "ann@s.test" }));
    assert_eq!(s, 201, "{adm}");
    let adm = adm["token"].as_str().unwrap().to_owned();
    let metadata = std::fs::read_to_string(provisor::testing::fixtures_dir().join("okta-metadata.xml")).unwrap();
    assert_eq!(app.put(&mirror("/sso"), &w.mirror, json!({ "idp_metadata": metadata })).0, 200);
    let rules = json!({ "rules": [{ "attribute": "title", "match": { "equals": "x" }, "target": "department", "value": "X" }] });
    assert_eq!(app.put(&mirror("/mapping"), &w.mirror, rules).0, 200);
    // The sub's own owner has a token of their own.
    let own = app.admin_token(&w.sub);
    assert_eq!(app.call("GET", "/scim/v2/Users", Some(&scim), None).0, 200);
    assert_eq!(app.get("/api/v1/users", &adm).0, 200);

    let (s, report) = app.post(&format!("/api/v1/sub_accounts/{}/disassociate", w.sub), &w.owner, json!({}));
    assert_eq!(s, 200, "{report}");
    assert_eq!((report["revoked_tokens"].as_u64(), report["removed_sso"].as_bool()), (Some(2), Some(true)), "{report}");

    // At once, in this process: the mirror is a foreign account, the minted tokens are dead,
    // the trust and the rules are gone; the sub's own token still works.
    assert_eq!(app.get(&mirror("/users"), &w.mirror).0, 404);
    assert_eq!(app.get(&mirror("/users"), &w.owner).0, 404);
    assert_eq!(app.call("GET", "/scim/v2/Users", Some(&scim), None).0, 401);
    assert_eq!(app.get("/api/v1/users", &adm).0, 401);
    assert_eq!(app.get("/api/v1/sso", &own).0, 404);
    let (_, m) = app.get("/api/v1/mapping", &own);
    assert_eq!(m["rules"], json!({}), "{m}");
    assert_eq!(app.get("/api/v1/users", &own).0, 200);
}

#[test]
fn the_masters_idp_keeps_reaching_the_users_it_placed_and_nothing_else() {
    let app = TestApp::spawn();
    let w = world(&app);
    let doc = json!({ "placement": [{ "sub_account": "Sub",
        "conditions": [{ "attribute": "department", "match": { "equals": "Placed" } }] }] });
    assert_eq!(app.put("/api/v1/mapping", &w.owner, doc).0, 200);
    let (s, u) = app.call(
        "POST",
        "/scim/v2/Users",
        Some(&w.scim),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": "placed@m.test", "active": true,
            "emails": [{ "value": "placed@m.test", "primary": true, "type": "work" }],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Placed" },
        })),
    );
    assert_eq!(s, 201, "{u}");
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(stored_user(&app, &w.sub, &id).account_id, w.sub, "placed in the sub");
    // Visible to the master's IdP: by id, by filter.
    assert_eq!(app.call("GET", &format!("/scim/v2/Users/{id}"), Some(&w.scim), None).0, 200);
    let (_, list) = app.call("GET", "/scim/v2/Users?filter=userName%20eq%20%22placed@m.test%22", Some(&w.scim), None);
    assert_eq!(list["totalResults"], 1, "{list}");
    let (_, list) = app.call("GET", "/scim/v2/Users?filter=emails%20co%20%22placed%22", Some(&w.scim), None);
    assert_eq!(list["totalResults"], 1, "{list}");
    // Nothing else of the sub is: its own users stay invisible.
    let (s, _) = app.call("GET", &format!("/scim/v2/Users/{}", w.sub_owner_id), Some(&w.scim), None);
    assert_eq!(s, 404);
    // The IdP deprovisions them: deactivate, then delete.
    let (s, v) = scim_patch(&app, &w.scim, &id, json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!(s, 200, "{v}");
    assert_eq!(stored_user(&app, &w.sub, &id).status.as_str(), "inactive");
    assert_eq!(app.call("DELETE", &format!("/scim/v2/Users/{id}"), Some(&w.scim), None).0, 204);
    let (s, _) = app.get(&format!("/api/v1/accounts/{}/users/{id}", w.sub), &w.owner);
    assert_eq!(s, 404, "deleted from the sub");
}

#[test]
fn ownership_moves_only_by_the_owners_explicit_transfer() {
    let app = TestApp::spawn();
    let w = world(&app);
    // An active user (pushed by the IdP) to hand the account to.
    let (s, u) = app.call(
        "POST",
        "/scim/v2/Users",
        Some(&w.scim),
        Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "olly@m.test", "active": true,
                     "emails": [{ "value": "olly@m.test", "primary": true }] })),
    );
    assert_eq!(s, 201, "{u}");
    let olly = u["id"].as_str().unwrap().to_owned();
    for (who, token) in [("eve", &w.eve), ("mel", &w.mel)] {
        let (s, e) = app.post("/api/v1/account/owner", token, json!({ "user_id": olly }));
        assert_eq!(s, 403, "{who}: {e}");
    }
    // A pending user cannot receive it.
    let (s, e) = app.post("/api/v1/account/owner", &w.owner, json!({ "user_id": w.sam_id }));
    assert_eq!((s, code(&e)), (409, Some("user_not_active")), "{e}");
    let (s, v) = app.post("/api/v1/account/owner", &w.owner, json!({ "user_id": olly }));
    assert_eq!(s, 200, "{v}");
    assert_eq!(stored_user(&app, &w.master, &olly).role.as_str(), "owner");
    assert_eq!(stored_user(&app, &w.master, &w.owner_id).role.as_str(), "admin");
    let (_, acct) = app.get("/api/v1/account", &w.eve);
    assert_eq!(acct["owner_id"].as_str(), Some(olly.as_str()), "{acct}");
    // The former owner's token now carries an Admin's rights, at once.
    let (s, e) = app.patch(&format!("/api/v1/users/{}", w.sam_id), &w.owner, json!({ "role": "admin" }));
    assert_eq!((s, code(&e)), (403, Some("owner_only")), "{e}");
}

#[test]
fn tokens_expire_record_their_use_and_are_revoked_by_their_user_or_a_token_admin() {
    let app = TestApp::spawn();
    let w = world(&app);
    let server_now = app.state.env().now.and_utc();
    let soon = (server_now + chrono::Duration::hours(1)).to_rfc3339();
    let (s, t) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin", "expires_at": soon, "label": "ci" }));
    assert_eq!(s, 201, "{t}");
    let short = t["token"].as_str().unwrap().to_owned();
    let short_id = t["id"].as_str().unwrap().to_owned();
    let (s, me) = app.get("/api/v1/me", &short);
    assert_eq!(
        (s, me["user_id"].as_str(), me["standing"].as_str()),
        (200, Some(w.eve_id.as_str()), Some("admin")),
        "{me}"
    );
    assert!(!me["permissions"].as_array().unwrap().iter().any(|p| p == "sub_accounts:edit"), "{me}");
    // Its use is recorded (through the writer, shortly after).
    let mut used = Value::Null;
    for _ in 0..50 {
        let (_, mine) = app.get("/api/v1/me/tokens", &w.eve);
        used = mine["tokens"].as_array().unwrap().iter().find(|x| x["id"] == short_id.as_str()).unwrap()
            ["last_used_at"]
            .clone();
        if !used.is_null() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(used.is_string(), "last_used_at recorded");
    // A past expiry is refused; after its expiry the token is refused, cached or not.
    let past = (server_now - chrono::Duration::hours(1)).to_rfc3339();
    let (s, e) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin", "expires_at": past }));
    assert_eq!((s, code(&e)), (400, Some("invalid_expiry")), "{e}");
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.get("/api/v1/me", &short).0, 401);

    // Revocation: the token's own user through /me, or a holder of tokens:edit; Mel (no
    // tokens permission) cannot revoke Eve's token, not even through /me.
    let (_, t2) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin" }));
    let (id2, tok2) = (t2["id"].as_str().unwrap().to_owned(), t2["token"].as_str().unwrap().to_owned());
    assert_eq!(app.delete(&format!("/api/v1/me/tokens/{id2}"), &w.mel).0, 404);
    assert_eq!(app.delete(&format!("/api/v1/tokens/{id2}"), &w.mel).0, 403);
    assert_eq!(app.get("/api/v1/me", &tok2).0, 200);
    assert_eq!(app.delete(&format!("/api/v1/me/tokens/{id2}"), &w.eve).0, 204);
    assert_eq!(app.get("/api/v1/me", &tok2).0, 401);
    let (_, t3) = app.post("/api/v1/tokens", &w.eve, json!({ "scope": "admin" }));
    assert_eq!(app.delete(&format!("/api/v1/tokens/{}", t3["id"].as_str().unwrap()), &w.owner).0, 204);
    assert_eq!(app.get("/api/v1/me", t3["token"].as_str().unwrap()).0, 401);
    // A SCIM token names no user: no self routes.
    assert_eq!(app.get("/api/v1/me", &w.scim).0, 403);
}

/// Every account-scoped route, walked from the route table: a role holding only
/// `area:view` reads that area's routes and is refused (403 `missing_permission`) on every
/// write route of it and on every route of every other area.
#[test]
fn a_view_only_role_reads_its_area_and_writes_nothing() {
    use provisor::http::routes::{Need, ACCOUNT_SCOPED};
    let app = TestApp::spawn();
    let a = app.account("Walk", "owner@walk.test", true);
    let owner = app.admin_token(&a);
    let areas: std::collections::BTreeSet<String> = ACCOUNT_SCOPED
        .iter()
        .flat_map(|t| t.iter())
        .filter_map(|r| match r.need {
            Need::Perm(p) => Some(p.area.as_str().to_owned()),
            _ => None,
        })
        .collect();
    for area in &areas {
        let role = format!("{area} viewer");
        let (s, v) =
            app.post("/api/v1/roles", &owner, json!({ "name": role, "permissions": [format!("{area}:view")] }));
        assert_eq!(s, 201, "{v}");
        let email = format!("{}@walk.test", area.replace('_', "-"));
        let (s, v) = app.post("/api/v1/users", &owner, json!({ "email": email, "custom_role": role }));
        assert_eq!(s, 201, "{v}");
        let token = app.token(&a, "admin", Some(&email));
        for r in ACCOUNT_SCOPED.iter().flat_map(|t| t.iter()) {
            let Need::Perm(p) = r.need else { continue };
            let path = format!("/api/v1{}", crate::harness::fill_route(r.path));
            let body = if r.method == "GET" || r.method == "DELETE" { None } else { Some(json!({})) };
            let (s, v) = app.call(r.method, &path, Some(&token), body);
            let holds = p.area.as_str() == area && p.level == provisor::domain::authz::Level::View;
            if holds {
                assert_ne!(s, 403, "{area} viewer refused {} {}: {v}", r.method, r.path);
            } else {
                assert_eq!(
                    (s, v["error"]["code"].as_str()),
                    (403, Some("missing_permission")),
                    "{area} viewer on {} {} (needs {p})",
                    r.method,
                    r.path
                );
            }
        }
    }
}

/// Losing a right takes effect within 1 s in every process, not only the one that made the
/// change: a second server on the same database serves Eve from its caches until they
/// expire (TOKEN_CACHE_TTL / CONTEXT_CACHE_TTL, 1 s).
#[test]
fn a_lost_right_is_lost_everywhere_within_a_second() {
    let app = TestApp::spawn();
    let w = world(&app);
    let second = provisor::testing::RunningServer::start_replica(&app.database_url, 2, &app.base).expect("second");
    let at_second = |path: &str, token: &str| {
        let r = app.client.get(format!("{}{path}", second.base)).bearer_auth(token).send().unwrap();
        r.status().as_u16()
    };
    // Warm the second process's caches, then take Eve's rights away through the first.
    let (_, t) = app.post("/api/v1/tokens", &w.owner, json!({ "scope": "admin", "user_email": "eve@m.test" }));
    let eve = t["token"].as_str().unwrap().to_owned();
    assert_eq!(at_second("/api/v1/users", &eve), 200);
    assert_eq!(app.patch(&format!("/api/v1/users/{}", w.eve_id), &w.owner, json!({ "status": "inactive" })).0, 200);
    let deactivated = std::time::Instant::now();
    let revoked = app.post("/api/v1/tokens", &w.owner, json!({ "scope": "admin", "user_email": "mel@m.test" }));
    let mel = revoked.1["token"].as_str().unwrap().to_owned();
    assert_eq!(at_second("/api/v1/users", &mel), 200);
    assert_eq!(app.delete(&format!("/api/v1/tokens/{}", revoked.1["id"].as_str().unwrap()), &w.owner).0, 204);
    loop {
        let (e, m) = (at_second("/api/v1/users", &eve), at_second("/api/v1/users", &mel));
        if e == 401 && m == 401 {
            break;
        }
        assert!(deactivated.elapsed() < std::time::Duration::from_millis(1500), "still {e}/{m} after 1.5 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
