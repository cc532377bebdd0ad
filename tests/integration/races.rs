//! Read-then-write doors under real concurrent requests (run on PostgreSQL in CI, where
//! several writers run at once): each invariant is read back from the database afterwards.

use std::sync::Arc;
use std::thread;

use serde_json::{json, Value};

use crate::harness::{line, TestApp};

fn in_parallel<T: Send + 'static>(jobs: Vec<Box<dyn FnOnce() -> T + Send>>) -> Vec<T> {
    let handles: Vec<_> = jobs.into_iter().map(thread::spawn).collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Door 8: deleting a user while their type changes releases each seat exactly once.
#[test]
fn a_delete_racing_a_type_change_releases_seats_once() {
    let app = Arc::new(TestApp::spawn());
    let a = app.account("Seats", "owner@seats.test", false);
    let t = app.admin_token(&a);
    app.purchase(&a, "pro", 100);
    app.purchase(&a, "business", 100);
    let mut ids = Vec::new();
    for i in 0..20 {
        let (s, u) = app.post("/api/v1/users", &t, json!({ "email": format!("u{i}@seats.test"), "type": "pro" }));
        assert_eq!(s, 201, "{u}");
        ids.push(u["id"].as_str().unwrap().to_owned());
    }
    let mut jobs: Vec<Box<dyn FnOnce() -> (u16, Value) + Send>> = Vec::new();
    for id in &ids {
        for kind in ["delete", "patch"] {
            let (app, t, id) = (app.clone(), t.clone(), id.clone());
            jobs.push(Box::new(move || match kind {
                "delete" => app.delete(&format!("/api/v1/users/{id}"), &t),
                _ => app.patch(&format!("/api/v1/users/{id}"), &t, json!({ "type": "business" })),
            }));
        }
    }
    for (s, v) in in_parallel(jobs) {
        assert!(matches!(s, 200 | 204 | 404 | 409 | 412), "{s} {v}");
    }
    let (_, users) = app.get("/api/v1/users?limit=1000", &t);
    let users = users["users"].as_array().unwrap().clone();
    let count = |ty: &str| users.iter().filter(|u| u["type"] == ty).count() as i64;
    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(line(&summary, "pro")["used"].as_i64(), Some(count("pro")), "{summary}");
    assert_eq!(line(&summary, "business")["used"].as_i64(), Some(count("business")), "{summary}");
}

/// Door 11: concurrent additions to the number pool never exceed the licensed capacity.
#[test]
fn concurrent_number_additions_stay_within_capacity() {
    let app = Arc::new(TestApp::spawn());
    let a = app.account("Pool", "owner@pool.test", false);
    let t = app.admin_token(&a);
    assert_eq!(app.patch("/api/v1/account", &t, json!({ "phone_enabled": true })).0, 200);
    app.purchase(&a, "regional_metered", 3);
    let (_, probe) = app.post("/api/v1/phone/numbers", &t, json!({ "numbers": [] }));
    let capacity = probe["capacity"].as_i64().expect("capacity");
    assert!(capacity > 0, "{probe}");
    let mut jobs: Vec<Box<dyn FnOnce() -> (u16, Value) + Send>> = Vec::new();
    for i in 0..16 {
        let (app, t) = (app.clone(), t.clone());
        let numbers: Vec<String> = (0..capacity).map(|k| format!("+1415555{:04}", i * 100 + k)).collect();
        jobs.push(Box::new(move || app.post("/api/v1/phone/numbers", &t, json!({ "numbers": numbers }))));
    }
    for (s, v) in in_parallel(jobs) {
        assert_eq!(s, 200, "{v}");
    }
    let (_, pool) = app.get("/api/v1/phone/numbers?limit=1000", &t);
    let held = pool["numbers"].as_array().map(Vec::len).unwrap_or_default() as i64;
    assert_eq!(held, capacity, "the pool holds exactly its capacity: {pool}");
}

/// Door 7: an invitation accepted while an admin deactivates the user never leaves the user
/// active, and never loses the admin's change.
#[test]
fn acceptance_racing_deactivation_leaves_the_user_inactive() {
    let app = Arc::new(TestApp::spawn());
    let a = app.account("Inv", "owner@inv.test", false);
    let t = app.admin_token(&a);
    let mut cases = Vec::new();
    for i in 0..12 {
        let email = format!("p{i}@inv.test");
        let (s, u) = app.post("/api/v1/users", &t, json!({ "email": email }));
        assert_eq!(s, 201, "{u}");
        cases.push((u["id"].as_str().unwrap().to_owned(), crate::users::invitation_token(&app, &email)));
    }
    let mut jobs: Vec<Box<dyn FnOnce() -> (u16, Value) + Send>> = Vec::new();
    for (id, token) in &cases {
        let (app1, t1, id1) = (app.clone(), t.clone(), id.clone());
        jobs.push(Box::new(move || app1.patch(&format!("/api/v1/users/{id1}"), &t1, json!({ "status": "inactive" }))));
        let (app2, token) = (app.clone(), token.clone());
        jobs.push(Box::new(move || {
            app2.call("POST", "/api/v1/invitations/accept", None, Some(json!({ "token": token })))
        }));
    }
    for (s, v) in in_parallel(jobs) {
        assert!(s < 500, "{s} {v}");
    }
    for (id, _) in &cases {
        let (s, u) = app.get(&format!("/api/v1/users/{id}"), &t);
        assert_eq!(s, 200, "{u}");
        assert_eq!(u["status"], "inactive", "{u}");
    }
}
