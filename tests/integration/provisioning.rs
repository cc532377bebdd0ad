//! The provisioning pipeline end to end: mapping rules, placement, phone provisioning,
//! the number pool, groups and the bulk phone CSV.

use std::sync::{Arc, Barrier};

use provisor::provisioning::{self, Actor, IdentityChange, Operation, Shortage, Source};
use serde_json::{json, Value};

use crate::harness::{line, TestApp};

fn phone_account(app: &TestApp, name: &str) -> (String, String) {
    let a = app.account(name, &format!("owner@{}.test", name.to_lowercase()), false);
    let t = app.admin_token(&a);
    let (s, v) = app.patch("/api/v1/account", &t, json!({ "phone_enabled": true }));
    assert_eq!(s, 200, "{v}");
    (a, t)
}

fn attrs(pairs: &[(&str, &[&str])]) -> std::collections::BTreeMap<String, Vec<String>> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
}

/// Runs an IdP-style change (mapping applied, issues reported) straight through the pipeline.
fn idp_change(
    app: &TestApp,
    account: &str,
    email: &str,
    attributes: std::collections::BTreeMap<String, Vec<String>>,
) -> provisioning::Outcome {
    let mut change = IdentityChange::new(account, Source::Saml, Actor::system("test-idp"), Operation::Upsert);
    change.explicit.email = provisioning::Field::Set(email.to_owned());
    change.attributes = attributes;
    change.apply_mapping = true;
    change.shortage = Shortage::Report;
    let env = app.state.env();
    app.state.db.write_blocking(|c| provisioning::run(c, &env, change)).expect("change applies").outcome
}

#[test]
fn two_hundred_parallel_next_free_extensions_are_distinct() {
    let app = Arc::new(TestApp::spawn());
    let (_, t) = phone_account(&app, "Phones");
    let t = Arc::new(t);
    let barrier = Arc::new(Barrier::new(200));
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (app, t, barrier) = (app.clone(), t.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                app.post(
                    "/api/v1/users",
                    &t,
                    json!({ "email": format!("e{i}@phones.test"), "phone": { "extension": 0 } }),
                )
            })
        })
        .collect();
    let mut extensions = std::collections::BTreeSet::new();
    for h in handles {
        let (s, v) = h.join().unwrap();
        assert_eq!(s, 201, "{v}");
        let e = v["phone"]["extension"].as_i64().unwrap_or_else(|| panic!("an extension: {v}"));
        assert!((1000..=9999).contains(&e), "{e}");
        assert!(extensions.insert(e), "extension {e} handed out twice");
    }
    assert_eq!(extensions.len(), 200);
}

#[test]
fn one_hundred_parallel_requests_for_one_number_have_one_winner() {
    let app = Arc::new(TestApp::spawn());
    let (a, t) = phone_account(&app, "Numbers");
    app.purchase(&a, "regional_metered", 5);
    let (s, r) = app.post(
        "/api/v1/phone/numbers",
        &t,
        json!({ "numbers": ["+1 (415) 555-0100", "555-0101", "+1 415 555 0199"] }),
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["added"], json!(["+14155550100", "+14155550199"]), "{r}");
    assert!(r["failed"][0]["reason"].as_str().unwrap().len() > 5, "an incomplete number is refused: {r}");
    let mut ids = Vec::new();
    for i in 0..100 {
        let (s, v) = app.post("/api/v1/users", &t, json!({ "email": format!("n{i}@numbers.test") }));
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let t = Arc::new(t);
    let barrier = Arc::new(Barrier::new(100));
    let handles: Vec<_> = ids
        .iter()
        .map(|id| {
            let (app, t, barrier, id) = (app.clone(), t.clone(), barrier.clone(), id.clone());
            std::thread::spawn(move || {
                barrier.wait();
                app.patch(&format!("/api/v1/users/{id}"), &t, json!({ "phone": { "number": "+1 415-555-0100" } }))
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let holders: Vec<&Value> =
        results.iter().map(|(_, v)| v).filter(|v| v["phone"]["number"] == "+14155550100").collect();
    assert_eq!(holders.len(), 1, "exactly one holder");
    let losers = results
        .iter()
        .filter(|(_, v)| {
            v["provisioning_issues"].as_array().is_some_and(|a| a.iter().any(|i| i["code"] == "number_taken"))
        })
        .count();
    assert_eq!(losers, 99);
    let (_, pool) = app.get("/api/v1/phone/numbers", &t);
    let assigned: Vec<&Value> =
        pool["numbers"].as_array().unwrap().iter().filter(|n| n["assigned_user_id"].is_string()).collect();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["assigned_user_id"], holders[0]["id"]);
    // A number outside the pool never applies.
    let (_, v) =
        app.patch(&format!("/api/v1/users/{}", ids[0]), &t, json!({ "phone": { "number": "+1 212 555 0000" } }));
    assert!(v["provisioning_issues"].as_array().unwrap().iter().any(|i| i["code"] == "number_not_in_pool"), "{v}");
}

#[test]
fn extensions_sites_and_conflicts() {
    let app = TestApp::spawn();
    let (_, t) = phone_account(&app, "Sites");
    let (s, _) = app.post("/api/v1/phone/sites", &t, json!({ "name": "London", "code": "12", "extension_length": 3 }));
    assert_eq!(s, 201);
    for (body, code) in [
        (json!({ "name": "Bad", "code": "1234" }), 400),
        (json!({ "name": "Bad", "code": "1a" }), 400),
        (json!({ "name": "London 2", "code": "12" }), 409),
        (json!({ "name": "X", "code": "7", "extension_length": 9 }), 400),
    ] {
        assert_eq!(app.post("/api/v1/phone/sites", &t, body.clone()).0, code, "{body}");
    }
    // Main site "1" with 4-digit extensions: 2345 → long form 12345.
    let (_, a) = app.post("/api/v1/users", &t, json!({ "email": "a@sites.test", "phone": { "extension": 2345 } }));
    assert_eq!(a["phone"]["long_extension"], "12345", "{a}");
    // London "12" with 3-digit extensions: 345 → 12345 too: refused, reported, not stolen.
    let (_, b) = app.post(
        "/api/v1/users",
        &t,
        json!({ "email": "b@sites.test", "phone": { "site": "London", "extension": 345 } }),
    );
    assert!(b["provisioning_issues"].as_array().unwrap().iter().any(|i| i["code"] == "extension_taken"), "{b}");
    assert!(b["phone"].is_null() || b["phone"]["extension"].is_null(), "{b}");
    // A taken short extension in the same site keeps the user's own.
    let (_, c) = app.post("/api/v1/users", &t, json!({ "email": "c@sites.test", "phone": { "extension": 2346 } }));
    let cid = c["id"].as_str().unwrap();
    let (_, c2) = app.patch(&format!("/api/v1/users/{cid}"), &t, json!({ "phone": { "extension": 2345 } }));
    assert_eq!(c2["phone"]["extension"], 2346);
    assert!(c2["provisioning_issues"].as_array().unwrap().iter().any(|i| i["code"] == "extension_taken"));
    // Out of the site's range.
    let (_, d) =
        app.patch(&format!("/api/v1/users/{cid}"), &t, json!({ "phone": { "site": "London", "extension": 5 } }));
    assert!(d["provisioning_issues"].as_array().unwrap().iter().any(|i| i["code"] == "invalid_extension"), "{d}");
    // Phone off → phone fields are reported, not applied.
    let o = app.account("NoPhone", "owner@nophone.test", false);
    let tn = app.admin_token(&o);
    let (_, e) = app.post("/api/v1/users", &tn, json!({ "email": "e@nophone.test", "phone": { "extension": 0 } }));
    assert!(e["provisioning_issues"].as_array().unwrap().iter().any(|i| i["code"] == "phone_not_enabled"), "{e}");
}

#[test]
fn bundled_and_unbundled_licensing() {
    let app = TestApp::spawn();
    let (a, t) = phone_account(&app, "Bundled");
    app.purchase(&a, "enterprise", 2);
    app.purchase(&a, "global_select", 1);
    let (s, u) = app.post("/api/v1/users", &t, json!({ "email": "ent@bundled.test", "type": "enterprise" }));
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["phone"]["calling_plan"], "regional_unlimited", "{u}");
    assert_eq!(u["phone"]["calling_plan_bundled"], true);
    assert!(u["phone"]["extension"].is_i64(), "a bundled phone user gets an extension: {u}");
    assert!(u["addons"].as_array().unwrap().contains(&json!("power_pack")));
    assert_eq!(u["seats"], json!(["enterprise"]), "bundled entitlements take no seat");
    // A calling plan the bundle does not include takes its own seat.
    let id = u["id"].as_str().unwrap();
    let (_, u2) =
        app.patch(&format!("/api/v1/users/{id}"), &t, json!({ "phone": { "calling_plan": "Global Select" } }));
    assert_eq!(u2["phone"]["calling_plan"], "global_select");
    assert_eq!(u2["seats"], json!(["enterprise", "global_select"]), "{u2}");

    // Automatic phone provisioning off: Enterprise alone brings no phone.
    assert_eq!(app.patch("/api/v1/account", &t, json!({ "auto_phone_provisioning": false })).0, 200);
    let (_, v) = app.post("/api/v1/users", &t, json!({ "email": "ent2@bundled.test", "type": "enterprise" }));
    assert!(v["phone"].is_null(), "{v}");

    // Unbundled: each entitlement on its own seat.
    let (b, tb) = phone_account(&app, "Unbundled");
    assert_eq!(app.patch("/api/v1/account", &tb, json!({ "bundled_licensing": false })).0, 200);
    app.purchase(&b, "enterprise", 1);
    app.purchase(&b, "regional_metered", 1);
    let (_, w) = app.post("/api/v1/users", &tb, json!({ "email": "ent@unbundled.test", "type": "enterprise" }));
    assert!(w["phone"].is_null(), "unbundled Enterprise is not a phone user: {w}");
    let wid = w["id"].as_str().unwrap();
    let (_, w2) = app.patch(&format!("/api/v1/users/{wid}"), &tb, json!({ "phone": { "calling_plan": "100" } }));
    assert_eq!(w2["phone"]["calling_plan"], "regional_metered", "{w2}");
    assert_eq!(w2["phone"]["calling_plan_bundled"], false);
    assert!(w2["phone"]["extension"].is_i64(), "a licensed phone user gets an extension: {w2}");
    let (_, summary) = app.get("/api/v1/licenses", &tb);
    assert_eq!(line(&summary, "regional_metered")["used"], 1);
    // No seat left: the change is refused by the admin API (409), nothing half-applied.
    let (_, x) = app.post("/api/v1/users", &tb, json!({ "email": "x@unbundled.test" }));
    let (s, e) = app.patch(
        &format!("/api/v1/users/{}", x["id"].as_str().unwrap()),
        &tb,
        json!({ "phone": { "calling_plan": "regional_metered", "extension": 0 } }),
    );
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("no_seat_left")), "{e}");
    let (_, x2) = app.get(&format!("/api/v1/users/{}", x["id"].as_str().unwrap()), &tb);
    assert!(x2["phone"].is_null(), "{x2}");
}

#[test]
fn mapping_rules_placement_and_groups() {
    let app = TestApp::spawn();
    let m = app.account("Uni", "owner@uni.test", true);
    let t = app.admin_token(&m);
    app.purchase(&m, "pro", 10);
    app.purchase(&m, "business", 10);
    app.purchase(&m, "large_meetings", 10);
    let (_, sub) = app.post("/api/v1/sub_accounts", &t, json!({ "name": "Healthcare", "owner_email": "owner@health.test", "licenses": { "business": 5, "large_meetings": 5 } }));
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    for g in ["Staff", "Researchers", "Manual"] {
        assert_eq!(app.post("/api/v1/groups", &t, json!({ "name": g })).0, 201);
    }
    let rules = json!({
        "rules": [
            { "attribute": "title", "match": { "regex": "^(senior|lead) " }, "target": "user_type", "value": "business" },
            { "attribute": "department", "match": { "equals": "research" }, "target": "user_type", "value": "pro" },
            { "attribute": "memberOf", "match": { "contains": "staff" }, "target": "group", "value": "Staff" },
            { "attribute": "department", "match": { "one_of": ["research", "lab"] }, "target": "group", "value": "Researchers" },
            { "attribute": "memberOf", "match": { "equals": "contractors" }, "negate": true, "target": "addon", "value": "large_meetings" }
        ],
        "placement": [ {
            "sub_account": "Healthcare",
            "conditions": [
                { "attribute": "memberOf", "match": { "equals": "global_users" } },
                { "attribute": "department", "match": { "one_of": ["HIPAA", "Developer", "Tester"] } }
            ],
            "user_type": "business",
            "addons": ["large_meetings"]
        } ]
    });
    let (s, v) = app.put("/api/v1/mapping", &t, rules);
    assert_eq!(s, 200, "{v}");

    // First matching rule wins for the user type; every matching group rule adds.
    let o = idp_change(
        &app,
        &m,
        "ann@uni.test",
        attrs(&[("title", &["Senior Scientist"]), ("department", &["research"]), ("memberOf", &["all-staff", "x"])]),
    );
    assert!(o.created && o.issues.is_empty(), "{o:?}");
    let (_, ann) = app.get(&format!("/api/v1/users/{}", o.user_id), &t);
    assert_eq!(ann["type"], "business");
    assert_eq!(ann["addons"], json!(["large_meetings"]));
    let (_, groups) = app.get("/api/v1/groups", &t);
    let members_of = |name: &str| -> Vec<String> {
        groups["groups"].as_array().unwrap().iter().find(|g| g["name"] == name).unwrap()["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(members_of("Staff"), vec![o.user_id.clone()]);
    assert_eq!(members_of("Researchers"), vec![o.user_id.clone()]);

    // Next login with changed attributes: type follows, managed groups follow, manual ones stay.
    let gid = groups["groups"].as_array().unwrap().iter().find(|g| g["name"] == "Manual").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.post(&format!("/api/v1/groups/{gid}/members"), &t, json!({ "add": [o.user_id] })).0, 200);
    let o2 =
        idp_change(&app, &m, "ann@uni.test", attrs(&[("department", &["research"]), ("memberOf", &["contractors"])]));
    let (_, ann) = app.get(&format!("/api/v1/users/{}", o2.user_id), &t);
    assert_eq!(ann["type"], "pro", "{ann}");
    // No add-on rule matched any more: the rule-managed add-on goes, and its seat with it.
    assert_eq!(ann["addons"], json!([]), "{ann}");
    let (_, groups2) = app.get(&format!("/api/v1/groups/{gid}"), &t);
    assert_eq!(groups2["members"].as_array().unwrap().len(), 1, "the manual group stays");
    let events = app
        .state
        .db
        .read_blocking(|c| provisor::store::groups::events(c, &m, 0, 100).map_err(provisor::error::AppError::from))
        .unwrap();
    let kinds: Vec<(String, String)> = events.iter().map(|e| (e.change.clone(), e.source.clone())).collect();
    assert!(kinds.contains(&("removed".into(), "saml".into())), "{kinds:?}");
    assert!(kinds.contains(&("added".into(), "api".into())), "{kinds:?}");

    // Placement: every condition holds → the user lands in the sub, meeting license only.
    let p = idp_change(
        &app,
        &m,
        "nurse@uni.test",
        attrs(&[("memberOf", &["global_users", "all-staff"]), ("department", &["HIPAA"])]),
    );
    assert_eq!(p.account_id, sub_id, "{p:?}");
    let (_, nurse) = app.get(&format!("/api/v1/accounts/{sub_id}/users/{}", p.user_id), &t);
    assert_eq!(nurse["type"], "business");
    assert_eq!(nurse["addons"], json!(["large_meetings"]));
    let (_, sub_groups) = app.get(&format!("/api/v1/accounts/{sub_id}/groups"), &t);
    assert!(sub_groups["groups"].as_array().unwrap().is_empty(), "no groups through placement");
    let (_, summary) = app.get(&format!("/api/v1/accounts/{sub_id}/licenses"), &t);
    assert_eq!(line(&summary, "business")["used"], 1, "the sub's own (delegated) pool pays");
    // One condition fails → stays in the master, with the issue reported.
    let q = idp_change(&app, &m, "dev@uni.test", attrs(&[("memberOf", &["global_users"]), ("department", &["Sales"])]));
    assert_eq!(q.account_id, m);
    assert!(q.issues.iter().any(|i| i.code.as_str() == "placement_partial_match"), "{q:?}");
    let (_, dev) = app.get(&format!("/api/v1/users/{}", q.user_id), &t);
    assert_eq!(dev["provisioning_issues"][0]["code"], "placement_partial_match");
}

#[test]
fn mapping_rules_are_validated_and_admin_grants_need_the_owner() {
    let app = TestApp::spawn();
    let a = app.account("R", "owner@r.test", false);
    let owner = app.admin_token(&a);
    let (s, e) = app.put(
        "/api/v1/mapping",
        &owner,
        json!({ "rules": [ { "attribute": "x", "match": { "regex": "(" }, "target": "user_type", "value": "pro" } ] }),
    );
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_rules")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("rule 1"), "{e}");
    let (s, _) = app.put("/api/v1/mapping", &owner, json!({ "rules": [ { "attribute": "x", "match": { "equals": "y" }, "target": "user_type", "value": "platinum" } ] }));
    assert_eq!(s, 400);
    app.post("/api/v1/users", &owner, json!({ "email": "adm@r.test", "role": "admin" }));
    let admin = app.token(&a, "admin", Some("adm@r.test"));
    let grant = json!({ "rules": [ { "attribute": "groups", "match": { "equals": "it" }, "target": "role", "value": "admin" } ] });
    assert_eq!(app.put("/api/v1/mapping", &admin, grant.clone()).0, 403);
    let (s, v) = app.put("/api/v1/mapping", &owner, grant);
    assert_eq!(s, 200, "{v}");
    let (_, got) = app.get("/api/v1/mapping", &owner);
    assert_eq!(got["version"], 1);
    assert_eq!(got["rules"]["rules"][0]["value"], "admin");
}

fn import(app: &TestApp, token: &str, csv: &str, query: &str) -> Value {
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/phone/import{query}")))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().unwrap()
}

#[test]
fn phone_csv_merge_replace_and_dry_run() {
    let app = TestApp::spawn();
    let (a, t) = phone_account(&app, "Csv");
    app.purchase(&a, "regional_unlimited", 10);
    assert_eq!(
        app.post("/api/v1/phone/numbers", &t, json!({ "numbers": ["+44 20 7946 0018", "+44 20 7946 0019"] })).0,
        200
    );
    let full = "Email,Site Code,Extension Number,Phone Number,Calling Plan,SMS,Desk Phone Brand 1,Desk Phone Model 1,Desk Phone MAC Address 1\n\
                amy@csv.test,1,1001,+44 20 7946 0018,Regional Unlimited,Yes,Poly,VVX 450,00:04:f2:aa:bb:cc\n\
                bob@csv.test,1,0,,Regional Unlimited,No,,,\n\
                bad@csv.test,1,1002,,Platinum Plan,Yes,,,\n\
                cat@csv.test,1,1003,,,Maybe,,,\n";
    let r = import(&app, &t, full, "");
    assert_eq!(r["rows"], 4, "{r}");
    assert_eq!(r["created"], 2, "{r}");
    let failed: Vec<u64> = r["failed"].as_array().unwrap().iter().map(|f| f["line"].as_u64().unwrap()).collect();
    assert_eq!(failed, vec![4, 5], "{r}");
    let amy = |app: &TestApp| -> Value {
        let (_, users) = app.get("/api/v1/users?email=amy@", &t);
        users["users"][0].clone()
    };
    let u = amy(&app);
    assert_eq!(u["phone"]["extension"], 1001, "{u}");
    assert_eq!(u["phone"]["number"], "+442079460018");
    assert_eq!(u["phone"]["calling_plan"], "regional_unlimited");

    // Merge (default): a row without the number keeps it.
    let partial = "Email,SMS\namy@csv.test,No\n";
    let r = import(&app, &t, partial, "?mode=merge");
    assert!(r["failed"].as_array().unwrap().is_empty(), "{r}");
    let u = amy(&app);
    assert_eq!(u["phone"]["number"], "+442079460018", "merge keeps the number: {u}");
    assert_eq!(u["phone"]["sms_enabled"], false);

    // Dry run of a replace: lists the removals first and changes nothing.
    let r = import(&app, &t, partial, "?mode=replace&dry_run=true");
    assert_eq!(r["dry_run"], true);
    let changes: Vec<String> =
        r["changes"][0]["changes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert!(changes.iter().any(|c| c.contains("+442079460018") && c.starts_with('-')), "{changes:?}");
    let first_non_removal = changes.iter().position(|c| !c.starts_with('-')).unwrap_or(changes.len());
    assert!(
        changes[..first_non_removal].iter().all(|c| c.starts_with('-'))
            && changes[first_non_removal..].iter().all(|c| !c.starts_with('-')),
        "removals first: {changes:?}"
    );
    let u = amy(&app);
    assert_eq!(u["phone"]["number"], "+442079460018", "dry run writes nothing");
    assert_eq!(u["phone"]["calling_plan"], "regional_unlimited");

    // Replace: the row is the whole profile; the number and calling plan go.
    let r = import(&app, &t, partial, "?mode=replace");
    assert!(r["failed"].as_array().unwrap().is_empty(), "{r}");
    // The real run reports what it removed, as its dry run did.
    let done: Vec<String> = r["changes"][0]["changes"]
        .as_array()
        .expect("the replace reports its changes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(done, changes, "the import reports what its dry run said: {r}");
    let u = amy(&app);
    assert!(u["phone"].is_null() || u["phone"]["number"].is_null(), "replace removes the number: {u}");
    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(line(&summary, "regional_unlimited")["used"], 1, "amy's calling plan seat went back; bob keeps his");
    let (_, pool) = app.get("/api/v1/phone/numbers", &t);
    assert!(pool["numbers"].as_array().unwrap().iter().all(|n| n["assigned_user_id"].is_null()), "{pool}");
}

/// The dry run and the import share one reading of the file and one pipeline: on the same
/// file they report the same rows, changes and issues (a seat that is not there included),
/// and only the import writes.
#[test]
fn a_phone_csv_dry_run_reports_exactly_what_the_import_does() {
    let app = TestApp::spawn();
    let (a, t) = phone_account(&app, "Same");
    app.purchase(&a, "regional_unlimited", 1);
    assert_eq!(app.post("/api/v1/phone/numbers", &t, json!({ "numbers": ["+44 20 7946 0031"] })).0, 200);
    let csv = "Email,Site Code,Extension Number,Phone Number,Calling Plan,SMS\n\
               amy@same.test,1,1001,+44 20 7946 0031,Regional Unlimited,Yes\n\
               bob@same.test,1,1001,,Regional Unlimited,No\n\
               cat@same.test,1,0,,,Maybe\n";
    let dry = import(&app, &t, csv, "?dry_run=true");
    let (_, before) = app.get("/api/v1/users", &t);
    assert_eq!(before["total"], 1, "a dry run writes nothing: only the owner exists: {before}");
    let real = import(&app, &t, csv, "");
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("dry_run");
        v
    };
    assert_eq!(strip(dry.clone()), strip(real.clone()), "dry run: {dry}\nimport: {real}");
    let bob = real["changes"].as_array().unwrap().iter().find(|r| r["email"] == "bob@same.test").unwrap();
    let codes: Vec<&str> = bob["issues"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"no_seat_left") && codes.contains(&"extension_taken"), "{bob}");
    assert_eq!(real["failed"].as_array().unwrap().len(), 1, "cat's SMS cell: {real}");
    let (_, after) = app.get("/api/v1/users", &t);
    assert_eq!(after["total"], 3, "{after}");
}

/// Rule-managed groups and add-ons are left when no rule matches any more (department
/// Sales → SalesG, Eng → EngG, then HR or nothing → neither), and their seats go back;
/// what was given by hand stays.
#[test]
fn rule_managed_groups_and_addons_are_left_when_no_rule_matches() {
    let app = TestApp::spawn();
    let m = app.account("Rules", "owner@rules.test", false);
    let t = app.admin_token(&m);
    app.purchase(&m, "webinar", 5);
    for g in ["SalesG", "EngG", "Hand"] {
        assert_eq!(app.post("/api/v1/groups", &t, json!({ "name": g })).0, 201);
    }
    let rules = json!({ "rules": [
        { "attribute": "department", "match": { "equals": "Sales" }, "target": "group", "value": "SalesG" },
        { "attribute": "department", "match": { "equals": "Eng" }, "target": "group", "value": "EngG" },
        { "attribute": "department", "match": { "equals": "Sales" }, "target": "addon", "value": "webinar" }
    ] });
    assert_eq!(app.put("/api/v1/mapping", &t, rules).0, 200);
    let groups_of = |id: &str| -> Vec<String> {
        let (_, gs) = app.get("/api/v1/groups", &t);
        gs["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["members"].as_array().unwrap().iter().any(|m| m["user_id"] == id))
            .map(|g| g["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let o = idp_change(&app, &m, "sam@rules.test", attrs(&[("department", &["Sales"])]));
    assert_eq!(groups_of(&o.user_id), vec!["SalesG"]);
    let (_, u) = app.get(&format!("/api/v1/users/{}", o.user_id), &t);
    assert_eq!(u["addons"], json!(["webinar"]), "{u}");
    let hand =
        app.get("/api/v1/groups", &t).1["groups"].as_array().unwrap().iter().find(|g| g["name"] == "Hand").unwrap()
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(app.post(&format!("/api/v1/groups/{hand}/members"), &t, json!({ "add": [o.user_id] })).0, 200);
    idp_change(&app, &m, "sam@rules.test", attrs(&[("department", &["Eng"])]));
    assert_eq!(groups_of(&o.user_id), vec!["EngG", "Hand"]);
    for dept in [&["HR"][..], &[][..]] {
        idp_change(&app, &m, "sam@rules.test", attrs(&[("department", dept)]));
        assert_eq!(groups_of(&o.user_id), vec!["Hand"], "department {dept:?}");
    }
    let (_, u) = app.get(&format!("/api/v1/users/{}", o.user_id), &t);
    assert_eq!(u["addons"], json!([]), "{u}");
    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(crate::harness::line(&summary, "webinar")["used"], 0, "the webinar seat went back: {summary}");
}

#[test]
fn a_removal_records_what_it_released() {
    let app = TestApp::spawn();
    let (a, t) = phone_account(&app, "Gone");
    app.purchase(&a, "regional_metered", 5);
    app.purchase(&a, "pro", 5);
    assert_eq!(app.post("/api/v1/phone/numbers", &t, json!({ "numbers": ["+1 415 555 0142"] })).0, 200);
    let (s, u) = app.post(
        "/api/v1/users",
        &t,
        json!({ "email": "gone@gone.test", "type": "pro", "phone": { "extension": 0, "number": "+1 415 555 0142" } }),
    );
    assert_eq!(s, 201, "{u}");
    let id = u["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/users/{id}"), &t).0, 204);
    let (_, audit) = app.get(&format!("/api/v1/audit?target={id}"), &t);
    let entry =
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "user.deleted").expect("entry").clone();
    let text = entry.to_string();
    assert!(text.contains("pro") && text.contains("+14155550142") && text.contains("extension"), "{entry}");
}

/// A dry run sees what earlier rows of the same file consume, across batches: the row that
/// finds no calling-plan seat left in the real import is reported so by its dry run too.
#[test]
fn a_dry_run_sees_seats_used_by_earlier_rows_of_the_file() {
    const ROWS: usize = 300;
    let app = TestApp::spawn();
    let (a, t) = phone_account(&app, "Dry");
    app.purchase(&a, "regional_metered", (ROWS - 1) as i64);
    let mut csv = String::from("Email,Calling Plan\n");
    for i in 0..ROWS {
        csv.push_str(&format!("p{i}@dry.test,US/CA Metered\n"));
    }
    let short = |r: &Value| -> Vec<u64> {
        r["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["issues"].as_array().unwrap().iter().any(|i| i["code"] == "no_seat_left"))
            .map(|c| c["line"].as_u64().unwrap())
            .collect()
    };
    let dry = import(&app, &t, &csv, "?dry_run=true");
    let real = import(&app, &t, &csv, "");
    assert_eq!(short(&real), vec![ROWS as u64 + 1], "the last row finds no seat");
    assert_eq!(short(&dry), short(&real), "the dry run said the same");
    // And no extension twice.
    let extensions = |r: &Value| -> Vec<String> {
        let mut e: Vec<String> = r["changes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["changes"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()))
            .filter(|x| x.contains("phone.extension"))
            .collect();
        e.sort();
        e
    };
    let (d, r) = (extensions(&dry), extensions(&real));
    assert!(d.len() >= ROWS - 1, "{}", d.len());
    assert!(d == r, "the dry run assigns the extensions the import does");
}
