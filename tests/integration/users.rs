//! Users: invitations, roles, CSV, bulk changes, concurrency, bad input.

use std::sync::Arc;

use serde_json::json;

use crate::harness::{line, TestApp};

pub fn invitation_token(app: &TestApp, email: &str) -> String {
    let mails = app
        .state
        .db
        .read_blocking(|c| {
            provisor::store::audit::list_mail(c, Some(email), 10).map_err(provisor::error::AppError::from)
        })
        .unwrap();
    let body = &mails.first().expect("an invitation mail").body;
    let start = body.find("token=").expect("token in mail") + "token=".len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}

#[test]
fn invitations_expire_and_can_be_resent() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let t = app.admin_token(&a);
    let (s, u) = app.post("/api/v1/users", &t, json!({ "email": "Ann@A.test", "first_name": "Ann" }));
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["status"], "pending");
    assert_eq!(u["email"], "ann@a.test");
    let uid = u["id"].as_str().unwrap().to_owned();

    let first = invitation_token(&app, "ann@a.test");
    app.clock.advance(chrono::Duration::days(29));
    let (_, inv) = app.get("/api/v1/invitations", &t);
    assert_eq!(inv["invitations"][0]["expired"], false);
    app.clock.advance(chrono::Duration::days(2));
    let (_, inv) = app.get("/api/v1/invitations", &t);
    assert_eq!(inv["invitations"][0]["expired"], true);
    let (s, e) = app.call("POST", "/api/v1/invitations/accept", None, Some(json!({ "token": first })));
    assert_eq!((s, e["error"]["code"].as_str()), (410, Some("invitation_expired")), "{e}");

    let (s, r) = app.post(&format!("/api/v1/users/{uid}/invitation/resend"), &t, json!({}));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["sent_count"], 2);
    assert_eq!(r["expired"], false);
    let second = invitation_token(&app, "ann@a.test");
    assert_ne!(first, second);
    let (s, e) = app.call("POST", "/api/v1/invitations/accept", None, Some(json!({ "token": first })));
    assert_eq!(s, 404, "the old token is gone: {e}");
    let (s, accepted) = app.call("POST", "/api/v1/invitations/accept", None, Some(json!({ "token": second })));
    assert_eq!(s, 200, "{accepted}");
    assert_eq!(accepted["status"], "active");
    let (s, e) = app.post(&format!("/api/v1/users/{uid}/invitation/resend"), &t, json!({}));
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("not_pending")));

    // Expired, never accepted invitations are purged with their users.
    let (_, u2) = app.post("/api/v1/users", &t, json!({ "email": "bob@a.test" }));
    app.clock.advance(chrono::Duration::days(31));
    let env = app.state.env();
    let purged = app.state.db.write_blocking(|c| provisor::service::users::purge_expired_invitations(c, &env)).unwrap();
    assert_eq!(purged, 1);
    assert_eq!(app.get(&format!("/api/v1/users/{}", u2["id"].as_str().unwrap()), &t).0, 404);
}

#[test]
fn only_the_owner_grants_or_removes_admin() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let owner = app.admin_token(&a);
    let (_, adm) = app.post("/api/v1/users", &owner, json!({ "email": "adm@a.test", "role": "admin" }));
    assert_eq!(adm["role"], "admin");
    let (_, mem) = app.post("/api/v1/users", &owner, json!({ "email": "mem@a.test" }));
    let mem_id = mem["id"].as_str().unwrap();
    let admin = app.token(&a, "admin", Some("adm@a.test"));

    let (s, e) = app.patch(&format!("/api/v1/users/{mem_id}"), &admin, json!({ "role": "admin" }));
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("owner_only")), "{e}");
    let (s, e) =
        app.patch(&format!("/api/v1/users/{}", adm["id"].as_str().unwrap()), &admin, json!({ "role": "member" }));
    assert_eq!(s, 403, "{e}");
    // Admins still manage other fields.
    assert_eq!(app.patch(&format!("/api/v1/users/{mem_id}"), &admin, json!({ "department": "Sales" })).0, 200);
    // The owner can.
    let (s, v) = app.patch(&format!("/api/v1/users/{mem_id}"), &owner, json!({ "role": "admin" }));
    assert_eq!((s, v["role"].as_str()), (200, Some("admin")));
    // Nobody makes a second owner or demotes the owner.
    let (s, _) = app.patch(&format!("/api/v1/users/{mem_id}"), &owner, json!({ "role": "owner" }));
    assert_eq!(s, 409);
    let (_, acct) = app.get("/api/v1/account", &owner);
    let (s, _) = app.delete(&format!("/api/v1/users/{}", acct["owner_id"].as_str().unwrap()), &owner);
    assert_eq!(s, 409);
    // Members get no admin API.
    let (s, _) = app.post("/api/v1/tokens", &owner, json!({ "scope": "admin", "user_email": "nobody@a.test" }));
    assert_eq!(s, 404);
}

#[test]
fn csv_import_keeps_good_rows_and_reports_bad_ones() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let t = app.admin_token(&a);
    let csv = "email,first name,last name,department,user group\n\
               ann@a.test,Ann,Lee,Sales,\n\
               not-an-email,Bob,Ray,,\n\
               carl@a.test,Carl,,Support,Nope\n\
               ,Dee,,,\n\
               owner@a.test,The,Owner,Board,\n";
    let (status, report) = import_users(&app, &t, csv.to_owned());
    assert_eq!(status, 200);
    assert_eq!(report["rows"], 5, "{report}");
    assert_eq!(report["created"], 2, "{report}");
    assert_eq!(report["updated"], 1, "the owner's row updates the owner: {report}");
    let failed: Vec<u64> = report["failed"].as_array().unwrap().iter().map(|f| f["line"].as_u64().unwrap()).collect();
    assert_eq!(failed, vec![3, 5], "{report}");
    let issue = &report["issues"][0];
    assert_eq!(issue["line"], 4);
    assert_eq!(issue["issues"][0]["code"], "group_not_found");

    let (_, users) = app.get("/api/v1/users?status=pending", &t);
    assert_eq!(users["total"], 2);
    let export = app.client.get(app.url("/api/v1/users/export")).bearer_auth(&t).send().unwrap().text().unwrap();
    assert!(export.starts_with("email,first name,last name,department,user group\n"), "{export}");
    assert!(export.contains("ann@a.test,Ann,Lee,Sales,"), "{export}");
    assert!(export.contains("owner@a.test,The,Owner,Board,"), "{export}");
}

#[test]
fn bulk_type_change_stays_within_seats() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let t = app.admin_token(&a);
    app.purchase(&a, "pro", 5);
    for i in 0..8 {
        assert_eq!(app.post("/api/v1/users", &t, json!({ "email": format!("u{i}@a.test") })).0, 201);
    }
    let (s, r) = app.post("/api/v1/users/bulk/change_type", &t, json!({ "from": "basic", "to": "pro" }));
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["changed"].as_array().unwrap().len(), 5);
    assert_eq!(r["skipped"].as_array().unwrap().len(), 4, "9 Basic users (the owner too) for 5 seats");
    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(line(&summary, "pro")["used"], 5);
    let (s, r) = app.post("/api/v1/users/bulk/remove", &t, json!({ "type": "pro" }));
    assert_eq!(s, 200, "{r}");
    // The owner (changed to Pro first, being the oldest user) is never removed.
    assert_eq!(r["changed"].as_array().unwrap().len(), 4, "{r}");
    assert_eq!(r["skipped"].as_array().unwrap().len(), 1, "{r}");
    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(line(&summary, "pro")["used"], 1);
    let (_, audit) = app.get("/api/v1/audit?limit=1000", &t);
    let deleted = audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "user.deleted").count();
    assert_eq!(deleted, 4);
}

#[test]
fn sixty_four_parallel_assignments_of_forty_seats() {
    let app = Arc::new(TestApp::spawn());
    let a = app.account("A", "owner@a.test", false);
    let t = Arc::new(app.admin_token(&a));
    app.purchase(&a, "pro", 40);
    let barrier = Arc::new(std::sync::Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|i| {
            let (app, t, barrier) = (app.clone(), t.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                app.post("/api/v1/users", &t, json!({ "email": format!("p{i}@a.test"), "type": "pro" }))
            })
        })
        .collect();
    let results: Vec<(u16, serde_json::Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 201).count();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 409).collect();
    assert_eq!(ok, 40, "{results:?}");
    assert_eq!(refused.len(), 24, "{results:?}");
    assert!(refused.iter().all(|(_, e)| e["error"]["code"] == "no_seat_left"));
    let (_, summary) = app.get("/api/v1/licenses", &t);
    let pro = line(&summary, "pro");
    assert_eq!((pro["used"].as_i64(), pro["remaining"].as_i64()), (Some(40), Some(0)), "{summary}");
    let (_, users) = app.get("/api/v1/users?type=pro", &t);
    assert_eq!(users["total"], 40);
}

#[test]
fn bad_input_is_a_clear_4xx() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let t = app.admin_token(&a);
    let resp = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&t)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: serde_json::Value = resp.json().unwrap();
    assert_eq!(v["error"]["code"], "invalid_json");
    for (body, code) in [
        (json!({ "email": "a@a.test", "type": "gold" }), "invalid_type"),
        (json!({ "email": "a@a.test", "role": "king" }), "invalid_role"),
        (json!({ "email": "a@a.test", "unknown": 1 }), "invalid_json"),
        (json!({ "first_name": "x" }), "missing_email"),
        (json!({ "email": "a@a.test", "addons": ["jetpack"] }), "invalid_addon"),
        (json!({ "email": "a@a.test", "type": "pro" }), "no_seat_left"),
    ] {
        let (s, e) = app.post("/api/v1/users", &t, body.clone());
        assert!(s == 400 || s == 409, "{body}: {s} {e}");
        assert_eq!(e["error"]["code"], code, "{body}");
    }
    let (s, e) = app.get("/api/v1/users?limit=abc", &t);
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_query")));
    let (s, e) = app.get("/api/v1/nothing-here", &t);
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
    // If-Match mismatch → 412.
    let (_, u) = app.post("/api/v1/users", &t, json!({ "email": "b@a.test" }));
    let id = u["id"].as_str().unwrap();
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&t)
        .header("If-Match", "W/\"99\"")
        .json(&json!({ "department": "x" }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 412);
    let (s, _) = app.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
    let (s, r) = app.call("GET", "/readyz", None, None);
    assert_eq!(s, 200, "{r}");
}

/// Two large imports at once, with a SCIM client writing meanwhile: both complete, every
/// row is there, nobody gets a 500 (on SQLite they once fought over the write lock and one
/// gave up half-applied).
#[test]
fn concurrent_imports_both_complete() {
    const ROWS: usize = 2_000;
    let app = std::sync::Arc::new(TestApp::spawn());
    let a = app.account("Bulk", "owner@bulk.test", false);
    let t = app.admin_token(&a);
    let scim = app.token(&a, "scim", None);
    let import = |lane: usize| {
        let (app, t) = (app.clone(), t.clone());
        std::thread::spawn(move || {
            let mut csv = String::from("email,first name\n");
            for i in 0..ROWS {
                csv.push_str(&format!("l{lane}-{i}@bulk.test,N{i}\n"));
            }
            import_users(&app, &t, csv)
        })
    };
    let (one, two) = (import(1), import(2));
    let pusher = {
        let (app, scim) = (app.clone(), scim.clone());
        std::thread::spawn(move || {
            for i in 0..50 {
                let (s, v) = app.call(
                    "POST",
                    "/scim/v2/Users",
                    Some(&scim),
                    Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("scim{i}@bulk.test") })),
                );
                assert_eq!(s, 201, "SCIM create {i} during the imports: {v}");
            }
        })
    };
    for h in [one, two] {
        let (s, report) = h.join().unwrap();
        assert_eq!(s, 200, "{report}");
        assert_eq!(report["created"], ROWS as u64, "{report}");
        assert_eq!(report["failed"], json!([]), "{report}");
    }
    pusher.join().unwrap();
    let counted = app
        .state
        .db
        .read_blocking(|c| {
            use diesel::prelude::*;
            provisor::store::schema::users::table.count().get_result::<i64>(c).map_err(provisor::error::AppError::from)
        })
        .unwrap();
    // 2 × ROWS imported, 50 from SCIM, the owner.
    assert_eq!(counted, (2 * ROWS + 50 + 1) as i64);
}

/// POSTs a user CSV to the import; the status and the report.
fn import_users(app: &TestApp, token: &str, csv: String) -> (u16, serde_json::Value) {
    let resp = app
        .client
        .post(app.url("/api/v1/users/import"))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body(csv)
        .timeout(std::time::Duration::from_secs(300))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json::<serde_json::Value>().unwrap_or_default())
}
