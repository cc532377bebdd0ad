//! The group-sync engine over real HTTP: SCIM membership changes reach every bound
//! relationship's delegate list (polled, never slept on), sources (manual and groups) and the
//! union of their permissions, unbinding, nested groups refused, the threshold hold,
//! reconcile, status and metrics, and a crash between a membership commit and its
//! propagation.

use std::time::{Duration, Instant};

use crate::harness::{cli, TestApp};
use provisor::testing::process::ServerProcess;
use provisor::testing::ScratchDb;
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn code(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

/// Polls `f` until it returns `Some`, for up to 10 s.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct World {
    partner: String,
    lead: String,
    scim: String,
    customers: Vec<(String, String)>,
}

fn world(app: &TestApp, customers: usize) -> World {
    let partner = app.account("Acme MSP", "lead@acme.test", false);
    let lead = app.admin_token(&partner);
    let scim = app.token(&partner, "scim", None);
    let customers = (0..customers)
        .map(|i| {
            let c = app.account(&format!("Customer {i}"), &format!("boss@c{i}.test"), false);
            let t = app.admin_token(&c);
            (c, t)
        })
        .collect();
    World { partner, lead, scim, customers }
}

fn scim_user(app: &TestApp, w: &World, email: &str) -> String {
    let (s, v) = app.post(
        "/scim/v2/Users",
        &w.scim,
        json!({ "schemas": [USER], "userName": email, "active": true, "emails": [{ "value": email, "type": "work", "primary": true }] }),
    );
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn scim_group(app: &TestApp, w: &World, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
    let (s, v) =
        app.post("/scim/v2/Groups", &w.scim, json!({ "schemas": [GROUP], "displayName": name, "members": members }));
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn patch_members(app: &TestApp, w: &World, group: &str, op: &str, users: &[&str]) -> (u16, Value) {
    let value: Vec<Value> = users.iter().map(|u| json!({ "value": u })).collect();
    let body = if op == "remove" && users.len() == 1 {
        json!({ "schemas": [PATCH], "Operations": [{ "op": "remove", "path": format!("members[value eq \"{}\"]", users[0]) }] })
    } else {
        json!({ "schemas": [PATCH], "Operations": [{ "op": op, "path": "members", "value": value }] })
    };
    app.patch(&format!("/scim/v2/Groups/{group}"), &w.scim, body)
}

/// An approved relationship to customer `i`.
fn relationship(app: &TestApp, w: &World, i: usize, permissions: &[&str]) -> String {
    let (c, boss) = &w.customers[i];
    let (s, v) = app.post(
        "/api/v1/relationships",
        &w.lead,
        json!({ "customer": c, "name": format!("IT {i}"), "allow_delegates": true, "permissions": permissions }),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/v1/relationships/{id}/approve"), boss, json!({})).0, 200);
    id
}

fn bind(app: &TestApp, w: &World, rel: &str, group: &str, permissions: Option<&[&str]>, auto_accept: bool) -> String {
    let mut body = json!({ "group_id": group, "auto_accept": auto_accept });
    if let Some(p) = permissions {
        body["permissions"] = json!(p);
    }
    let (s, v) = app.post(&format!("/api/v1/relationships/{rel}/groups"), &w.lead, body);
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn delegates(app: &TestApp, w: &World, rel: &str) -> Vec<Value> {
    let (s, v) = app.get(&format!("/api/v1/relationships/{rel}/delegates"), &w.lead);
    assert_eq!(s, 200, "{v}");
    v["delegates"].as_array().cloned().unwrap_or_default()
}

fn delegate(app: &TestApp, w: &World, rel: &str, user: &str) -> Option<Value> {
    delegates(app, w, rel).into_iter().find(|d| d["user_id"] == user)
}

/// A delegated token for `email` (a partner user) in `rel`: their own user token, a code, a session.
fn enter(app: &TestApp, w: &World, rel: &str, email: &str) -> String {
    let me = app.token(&w.partner, "user", Some(email));
    let _ = app.post(&format!("/api/v1/delegations/{rel}/accept"), &me, json!({}));
    let (s, v) = app.post(&format!("/api/v1/delegations/{rel}/code"), &me, json!({}));
    assert_eq!(s, 201, "{v}");
    let subject = app
        .state
        .db
        .read_blocking(|c| {
            provisor::store::audit::list_mail(c, Some(email), 1).map_err(provisor::error::AppError::from)
        })
        .unwrap()
        .remove(0)
        .subject;
    let code = subject.rsplit(' ').next().unwrap().to_owned();
    let (s, v) = app.post(&format!("/api/v1/delegations/{rel}/session"), &me, json!({ "code": code }));
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().unwrap().to_owned()
}

#[test]
fn a_scim_membership_change_reaches_every_bound_relationship_and_a_removal_ends_access() {
    let app = TestApp::spawn();
    let w = world(&app, 2);
    let ann = scim_user(&app, &w, "ann@acme.test");
    let group = scim_group(&app, &w, "Support", &[]);
    let (a, b) = (relationship(&app, &w, 0, &["users:view"]), relationship(&app, &w, 1, &["users:view"]));
    bind(&app, &w, &a, &group, None, true);
    bind(&app, &w, &b, &group, None, false);
    assert!(delegates(&app, &w, &a).is_empty());

    let (s, v) = patch_members(&app, &w, &group, "add", &[&ann]);
    assert!(s == 200 || s == 204, "{v}");
    let da = until("ann in A", || delegate(&app, &w, &a, &ann));
    assert_eq!((da["status"].as_str(), da["sources"].clone()), (Some("active"), json!([format!("group:{group}")])));
    let db = until("ann in B", || delegate(&app, &w, &b, &ann));
    assert_eq!(db["status"], "invited", "B does not auto-accept: {db}");
    let (_, r) = app.get(&format!("/api/v1/relationships/{a}"), &w.lead);
    assert!(r["last_synced_at"].is_string() && r["sync_lag_ms"] == 0, "{r}");

    let token = enter(&app, &w, &a, "ann@acme.test");
    assert_eq!(app.get("/api/v1/users", &token).0, 200);
    let (s, v) = patch_members(&app, &w, &group, "remove", &[&ann]);
    assert!(s == 200 || s == 204, "{v}");
    let refused = until("access ends", || {
        let (s, v) = app.get("/api/v1/users", &token);
        (s == 401).then_some(v)
    });
    assert_eq!(code(&refused), Some("delegation_ended"), "{refused}");
    until("ann gone from B", || delegate(&app, &w, &b, &ann).is_none().then_some(()));

    // Status and metrics tell what the worker did.
    let (s, st) = app.get("/api/v1/sync/status", &w.lead);
    assert_eq!((s, st["outbox_depth"].as_i64()), (200, Some(0)), "{st}");
    let text = app.client.get(app.url("/metrics")).send().unwrap().text().unwrap();
    for name in [
        "provisor_sync_outbox_depth",
        "provisor_sync_events_applied_total",
        "provisor_sync_propagation_seconds",
        "provisor_http_requests_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
}

#[test]
fn sources_combine_and_permissions_are_their_union() {
    let app = TestApp::spawn();
    let w = world(&app, 1);
    let bo = scim_user(&app, &w, "bo@acme.test");
    let readers = scim_group(&app, &w, "Readers", &[&bo]);
    let groupies = scim_group(&app, &w, "Groupies", &[&bo]);
    let rel = relationship(&app, &w, 0, &["users:view", "groups:view", "sso:view"]);
    bind(&app, &w, &rel, &readers, Some(&["users:view"]), true);
    bind(&app, &w, &rel, &groupies, Some(&["groups:view"]), true);
    // Binding imports current members at once.
    let d = delegate(&app, &w, &rel, &bo).expect("imported at bind");
    assert_eq!(d["sources"].as_array().map(Vec::len), Some(2), "{d}");
    let token = enter(&app, &w, &rel, "bo@acme.test");
    assert_eq!(app.get("/api/v1/users", &token).0, 200);
    assert_eq!(app.get("/api/v1/groups", &token).0, 200);
    let (s, v) = app.get("/api/v1/sso", &token);
    assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "no source carries sso:view: {v}");
    // A manual source joins; leaving one group narrows the union.
    let (s, v) =
        app.post(&format!("/api/v1/relationships/{rel}/delegates"), &w.lead, json!({ "email": "bo@acme.test" }));
    assert!(s == 200 || s == 201, "{v}");
    patch_members(&app, &w, &readers, "remove", &[&bo]);
    until("the Readers source goes", || {
        let d = delegate(&app, &w, &rel, &bo)?;
        (d["sources"].as_array()?.len() == 2 && !d["sources"].to_string().contains(&readers)).then_some(())
    });
    let (s, v) = app.get("/api/v1/sso", &token);
    assert!(s != 403 && s != 401, "the manual source carries the whole scope: {s} {v}");
    // Removing the manual source leaves the group one; unbinding the last group removes the delegate.
    assert_eq!(app.delete(&format!("/api/v1/relationships/{rel}/delegates/{bo}"), &w.lead).0, 204);
    let d = delegate(&app, &w, &rel, &bo).expect("still a delegate through Groupies");
    assert_eq!(d["sources"], json!([format!("group:{groupies}")]));
    let (s, v) = app.get("/api/v1/users", &token);
    assert_eq!((s, code(&v)), (403, Some("outside_delegated_scope")), "{v}");
    let (_, bs) = app.get(&format!("/api/v1/relationships/{rel}/groups"), &w.lead);
    let binding = bs["groups"].as_array().unwrap().iter().find(|b| b["group_id"] == groupies.as_str()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.delete(&format!("/api/v1/relationships/{rel}/groups/{binding}"), &w.lead).0, 204);
    assert!(delegate(&app, &w, &rel, &bo).is_none());
    assert_eq!(app.get("/api/v1/groups", &token).0, 401);
}

#[test]
fn bindings_are_checked_and_nested_groups_are_refused() {
    let app = TestApp::spawn();
    let w = world(&app, 1);
    let cy = scim_user(&app, &w, "cy@acme.test");
    let inner = scim_group(&app, &w, "Inner", &[&cy]);
    let outer = scim_group(&app, &w, "Outer", &[]);
    let (s, v) = patch_members(&app, &w, &outer, "add", &[&inner]);
    assert_eq!(s, 400, "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("is a group"), "{v}");
    let rel = relationship(&app, &w, 0, &["users:view"]);
    let (s, v) = app.post(
        &format!("/api/v1/relationships/{rel}/groups"),
        &w.lead,
        json!({ "group_id": inner, "permissions": ["users:edit"] }),
    );
    assert_eq!((s, code(&v)), (400, Some("beyond_relationship")), "{v}");
    let (s, v) = app.post(&format!("/api/v1/relationships/{rel}/groups"), &w.lead, json!({ "group_id": "nope" }));
    assert_eq!(s, 404, "{v}");
    bind(&app, &w, &rel, &inner, None, false);
    let (s, v) = app.post(&format!("/api/v1/relationships/{rel}/groups"), &w.lead, json!({ "group_id": inner }));
    assert_eq!((s, code(&v)), (409, Some("already_bound")), "{v}");
    let (_, boss) = &w.customers[0];
    let (s, v) = app.post(&format!("/api/v1/relationships/{rel}/groups"), boss, json!({ "group_id": inner }));
    assert_eq!((s, code(&v)), (403, Some("partner_only")), "{v}");
    // Deleting a bound group unbinds it.
    assert_eq!(delegates(&app, &w, &rel).len(), 1);
    assert_eq!(app.delete(&format!("/scim/v2/Groups/{inner}"), &w.scim).0, 204);
    until("the deleted group's delegates go", || delegates(&app, &w, &rel).is_empty().then_some(()));
}

#[test]
fn a_mass_removal_is_held_until_confirmed_and_reconcile_repairs_drift() {
    let app = TestApp::spawn();
    let w = world(&app, 1);
    let users: Vec<String> = (0..12).map(|i| scim_user(&app, &w, &format!("u{i}@acme.test"))).collect();
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    let group = scim_group(&app, &w, "Everyone", &refs);
    let rel = relationship(&app, &w, 0, &["users:view"]);
    bind(&app, &w, &rel, &group, None, true);
    assert_eq!(delegates(&app, &w, &rel).len(), 12);
    // The IdP empties the group (a broken push): held, nobody loses access yet.
    let (s, v) = app.put(
        &format!("/scim/v2/Groups/{group}"),
        &w.scim,
        json!({ "schemas": [GROUP], "displayName": "Everyone", "members": [] }),
    );
    assert_eq!(s, 200, "{v}");
    let hold = until("a hold", || {
        let (_, v) = app.get("/api/v1/sync/held", &w.lead);
        v["held"].as_array()?.first().cloned()
    });
    assert_eq!(
        (hold["status"].as_str(), hold["removals"].as_array().map(Vec::len)),
        (Some("held"), Some(12)),
        "{hold}"
    );
    assert_eq!(delegates(&app, &w, &rel).len(), 12, "held, not applied");
    assert_eq!(app.get("/api/v1/sync/status", &w.lead).1["held_removals"], 1);
    // An ordinary single removal still applies at once.
    let single = scim_user(&app, &w, "single@acme.test");
    patch_members(&app, &w, &group, "add", &[&single]);
    until("single added", || delegate(&app, &w, &rel, &single));
    patch_members(&app, &w, &group, "remove", &[&single]);
    until("single removed", || delegate(&app, &w, &rel, &single).is_none().then_some(()));
    // The customer cannot decide; the partner confirms (the CLI lists it too).
    let id = hold["id"].as_str().unwrap();
    let (_, boss) = &w.customers[0];
    assert_eq!(
        app.post(&format!("/api/v1/sync/held/{id}/confirm"), boss, json!({})).1["error"]["code"],
        "partner_only"
    );
    let (code_, listed, _) = cli(&app, &["sync", "held", "list"]);
    assert_eq!((code_, listed["held"].as_array().map(Vec::len)), (0, Some(1)), "{listed}");
    let (s, v) = app.post(&format!("/api/v1/sync/held/{id}/confirm"), &w.lead, json!({}));
    assert_eq!((s, v["status"].as_str()), (200, Some("confirmed")), "{v}");
    assert!(delegates(&app, &w, &rel).is_empty());
    let (s, v) = app.post(&format!("/api/v1/sync/held/{id}/discard"), &w.lead, json!({}));
    assert_eq!((s, code(&v)), (409, Some("already_decided")), "{v}");

    // Drift (a membership written behind the engine's back): a dry run reports, a run repairs.
    let env = app.state.env();
    let u0 = users[0].clone();
    let g = group.clone();
    app.state
        .db
        .write_blocking(|c| {
            provisor::store::groups::add_member(c, &g, &u0, env.now).map_err(provisor::error::AppError::from)
        })
        .unwrap();
    let (s, v) = app.post("/api/v1/sync/reconcile?dry_run=true", &w.lead, json!({}));
    assert_eq!((s, v["missing"].as_u64(), v["repaired"].as_u64()), (200, Some(1), Some(0)), "{v}");
    assert!(delegates(&app, &w, &rel).is_empty(), "a dry run changes nothing");
    let (code_, v, _) = cli(&app, &["sync", "reconcile", "--account", &w.partner]);
    assert_eq!((code_, v["missing"].as_u64(), v["repaired"].as_u64()), (0, Some(1), Some(1)), "{v}");
    assert_eq!(delegates(&app, &w, &rel).len(), 1);
    let (_, v) = app.post("/api/v1/sync/reconcile", &w.lead, json!({}));
    assert_eq!((v["missing"].as_u64(), v["extra"].as_u64()), (Some(0), Some(0)), "in step: {v}");
}

/// The process dies between a membership commit and its propagation: after the restart the
/// event is applied, exactly once.
#[test]
fn a_membership_committed_before_a_crash_is_propagated_once_after_restart() {
    let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let db = ScratchDb::create(&spec).expect("scratch database");
    let mut server =
        ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &[]).expect("server starts");
    let op = server.operator.clone();
    let client = reqwest::blocking::Client::new();
    let call = |server: &ServerProcess, method: &str, path: &str, body: Value| -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        match client.request(m, format!("{}{path}", server.base)).bearer_auth(&op).json(&body).send() {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.json().unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    };
    let mk = |name: &str, owner: &str| {
        let (s, v) = call(&server, "POST", "/api/v1/accounts", json!({ "name": name, "owner_email": owner }));
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let (partner, customer) = (mk("Partner", "lead@p.test"), mk("Customer", "boss@c.test"));
    let (p, c) = (format!("/api/v1/accounts/{partner}"), format!("/api/v1/accounts/{customer}"));
    let (s, scim) = call(&server, "POST", &format!("{p}/tokens"), json!({ "scope": "scim" }));
    assert_eq!(s, 201, "{scim}");
    let scim = scim["token"].as_str().unwrap().to_owned();
    let user = client
        .post(format!("{}/scim/v2/Users", server.base))
        .bearer_auth(&scim)
        .json(&json!({ "schemas": [USER], "userName": "dee@p.test", "active": true, "emails": [{ "value": "dee@p.test", "primary": true }] }))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, group) = call(&server, "POST", &format!("{p}/groups"), json!({ "name": "Crew" }));
    let group = group["id"].as_str().unwrap().to_owned();
    let (s, rel) = call(
        &server,
        "POST",
        &format!("{p}/relationships"),
        json!({ "customer": customer, "name": "R", "allow_delegates": true, "permissions": ["users:view"] }),
    );
    assert_eq!(s, 201, "{rel}");
    let rel = rel["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&server, "POST", &format!("{c}/relationships/{rel}/approve"), json!({})).0, 200);
    let (s, v) = call(
        &server,
        "POST",
        &format!("{p}/relationships/{rel}/groups"),
        json!({ "group_id": group, "auto_accept": true }),
    );
    assert_eq!(s, 201, "{v}");

    server.restart(&[("PROVISOR_FAULT", "after_commit:membership")]).expect("restart armed");
    let (s, _) = call(&server, "POST", &format!("{p}/groups/{group}/members"), json!({ "add": [user] }));
    assert_eq!(s, 0, "the process died right after the commit");
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    server.restart(&[]).expect("restart");
    let started = Instant::now();
    let d = loop {
        let (_, v) = call(&server, "GET", &format!("{p}/relationships/{rel}/delegates"), Value::Null);
        if let Some(d) = v["delegates"].as_array().and_then(|a| a.first()).cloned() {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the event was never applied: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((d["user_id"].as_str(), d["sources"].clone()), (Some(user.as_str()), json!([format!("group:{group}")])));
    // Exactly once: one delegate.added entry, nothing left in the outbox.
    std::thread::sleep(Duration::from_millis(300));
    let (_, log) = call(&server, "GET", &format!("{p}/audit"), Value::Null);
    let added = log["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "delegate.added").count();
    assert_eq!(added, 1, "{log}");
    let (_, st) = call(&server, "GET", &format!("{p}/sync/status"), Value::Null);
    assert_eq!(st["outbox_depth"], 0, "{st}");
}

fn applied_events(base: &str) -> u64 {
    let text = reqwest::blocking::get(format!("{base}/metrics")).and_then(|r| r.text()).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("provisor_sync_events_applied_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// Two server processes drain one outbox under a burst of 5,000 membership changes sent to
/// both: every event is applied exactly once (the two processes' counters add up to the
/// number of events) and the delegate list ends equal to a reconcile's view.
#[test]
fn two_processes_drain_one_outbox_exactly_once() {
    let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let db = ScratchDb::create(&spec).expect("scratch database");
    let no_hold = [("PROVISOR_SYNC_HOLD_MIN", "1000000")];
    let one = ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &no_hold).expect("one");
    let two = ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &no_hold).expect("two");
    let op = one.operator.clone();
    let client = reqwest::blocking::Client::new();
    let call = |base: &str, method: &str, path: &str, token: &str, body: Value| -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = client.request(m, format!("{base}{path}")).bearer_auth(token).json(&body).send().expect("answer");
        let s = r.status().as_u16();
        (s, r.json().unwrap_or(Value::Null))
    };
    let mk = |name: &str, owner: &str| {
        let (s, v) = call(&one.base, "POST", "/api/v1/accounts", &op, json!({ "name": name, "owner_email": owner }));
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let (partner, customer) = (mk("Partner", "lead@p.test"), mk("Customer", "boss@c.test"));
    let (p, c) = (format!("/api/v1/accounts/{partner}"), format!("/api/v1/accounts/{customer}"));
    let (_, scim) = call(&one.base, "POST", &format!("{p}/tokens"), &op, json!({ "scope": "scim" }));
    let scim = scim["token"].as_str().unwrap().to_owned();
    let users: Vec<String> = (0..250)
        .map(|i| {
            let email = format!("m{i}@p.test");
            let base = if i % 2 == 0 { &one.base } else { &two.base };
            let (s, v) = call(base, "POST", "/scim/v2/Users", &scim, json!({ "schemas": [USER], "userName": email, "active": true, "emails": [{ "value": email, "primary": true }] }));
            assert_eq!(s, 201, "{v}");
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let (_, group) = call(&one.base, "POST", &format!("{p}/groups"), &op, json!({ "name": "Crew" }));
    let group = group["id"].as_str().unwrap().to_owned();
    let (_, rel) = call(
        &one.base,
        "POST",
        &format!("{p}/relationships"),
        &op,
        json!({ "customer": customer, "name": "R", "allow_delegates": true, "permissions": ["users:view"] }),
    );
    let rel = rel["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&one.base, "POST", &format!("{c}/relationships/{rel}/approve"), &op, json!({})).0, 200);
    let (s, v) = call(
        &one.base,
        "POST",
        &format!("{p}/relationships/{rel}/groups"),
        &op,
        json!({ "group_id": group, "auto_accept": true }),
    );
    assert_eq!(s, 201, "{v}");
    let before = applied_events(&one.base) + applied_events(&two.base);

    // 20 alternating full adds and removals of 250 members, half through each process.
    for round in 0..20 {
        let base = if round % 2 == 0 { &one.base } else { &two.base };
        let key = if round % 2 == 0 { "add" } else { "remove" };
        let (s, v) = call(base, "POST", &format!("{p}/groups/{group}/members"), &op, json!({ key: users }));
        assert_eq!(s, 200, "{v}");
    }
    let started = Instant::now();
    loop {
        let (_, st) = call(&one.base, "GET", &format!("{p}/sync/status"), &op, Value::Null);
        if st["outbox_depth"] == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the outbox never drained: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let applied = applied_events(&one.base) + applied_events(&two.base) - before;
    assert_eq!(applied, 5000, "every event applied exactly once across both processes");
    // The last round removed everyone: no delegate is left, and a reconcile agrees.
    let (_, ds) = call(&two.base, "GET", &format!("{p}/relationships/{rel}/delegates"), &op, Value::Null);
    assert_eq!(ds["delegates"].as_array().map(Vec::len), Some(0), "{ds}");
    let (_, r) = call(&one.base, "POST", &format!("{p}/sync/reconcile?dry_run=true"), &op, json!({}));
    assert_eq!((r["missing"].as_u64(), r["extra"].as_u64()), (Some(0), Some(0)), "{r}");
    drop((one, two));
}

/// Duplicated and out-of-order events (an `added` replayed after the member left, a
/// `removed` arriving for someone who is back) converge on the membership as it is.
#[test]
fn duplicate_and_out_of_order_events_converge_on_the_current_membership() {
    let app = TestApp::spawn();
    let w = world(&app, 1);
    let (eve, fay) = (scim_user(&app, &w, "eve@acme.test"), scim_user(&app, &w, "fay@acme.test"));
    let group = scim_group(&app, &w, "Ops", &[&eve]);
    let rel = relationship(&app, &w, 0, &["users:view"]);
    bind(&app, &w, &rel, &group, None, true);
    let env = app.state.env();
    let (p, g, e, f) = (w.partner.clone(), group.clone(), eve.clone(), fay.clone());
    app.state
        .db
        .write_blocking(|c| {
            use provisor::store::groups::record_event;
            // eve is a member: a stray `removed` for her changes nothing; fay is not: a
            // replayed `added` (twice) for her changes nothing either.
            record_event(c, &p, &g, &e, "removed", "scim", env.now)?;
            record_event(c, &p, &g, &f, "added", "scim", env.now)?;
            record_event(c, &p, &g, &f, "added", "scim", env.now)?;
            record_event(c, &p, &g, &e, "added", "scim", env.now)?;
            Ok::<_, provisor::error::AppError>(())
        })
        .unwrap();
    until("the outbox drains", || (app.get("/api/v1/sync/status", &w.lead).1["outbox_depth"] == 0).then_some(()));
    let ds = delegates(&app, &w, &rel);
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0]["user_id"], eve.as_str());
    assert_eq!(ds[0]["sources"], json!([format!("group:{group}")]), "one source, not two");
    let _ = fay;
}
