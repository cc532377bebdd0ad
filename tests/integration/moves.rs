//! Moving users between the accounts of one tree: seats move between pools (the license
//! invariant checked by query before and after), phone released, refusals with reasons, a
//! dry run that changes nothing, the CLI with a CSV file, and a SCIM update racing a move.

use crate::harness::{cli, line, TestApp};
use serde_json::{json, Value};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

struct Tree {
    master: String,
    owner: String,
    east: String,
    west: String,
    east_scim: String,
}

fn tree(app: &TestApp) -> Tree {
    let master = app.account("Holding", "owner@holding.test", true);
    let owner = app.admin_token(&master);
    app.purchase(&master, "pro", 10);
    let mk = |name: &str, email: &str| {
        let (s, v) = app.post("/api/v1/sub_accounts", &owner, json!({ "name": name, "owner_email": email }));
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    };
    let (east, west) = (mk("East", "owner@east.test"), mk("West", "owner@west.test"));
    for (sub, n) in [(&east, 3), (&west, 1)] {
        let (s, v) = app.put(&format!("/api/v1/sub_accounts/{sub}/licenses/pro"), &owner, json!({ "quantity": n }));
        assert_eq!(s, 200, "{v}");
    }
    let east_scim = app.token(&east, "scim", None);
    Tree { master, owner, east, west, east_scim }
}

/// An active user of East, `pro` when asked.
fn east_user(app: &TestApp, t: &Tree, email: &str, pro: bool) -> String {
    let (s, v) = app.post("/scim/v2/Users", &t.east_scim, json!({ "schemas": [USER], "userName": email, "active": true, "emails": [{ "value": email, "primary": true }] }));
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    if pro {
        let east_owner = app.admin_token(&t.east);
        let (s, v) = app.patch(&format!("/api/v1/users/{id}"), &east_owner, json!({ "type": "pro" }));
        assert_eq!(s, 200, "{v}");
    }
    id
}

/// `used` of pro in an account, and the invariant (`used + delegated <= available`) by query.
fn pro_used(app: &TestApp, account: &str) -> i64 {
    let pools = app
        .state
        .db
        .read_blocking(|c| provisor::store::licenses::pools(c, account).map_err(provisor::error::AppError::from))
        .unwrap();
    for p in &pools {
        assert!(p.used + p.delegated <= p.available, "{account}: {p:?}");
    }
    let counted = app
        .state
        .db
        .read_blocking(|c| {
            provisor::store::users::list(c, account, &Default::default(), 10_000, 0)
                .map_err(provisor::error::AppError::from)
        })
        .unwrap()
        .0
        .iter()
        .filter(|u| u.seats.contains("pro"))
        .count() as i64;
    let used = pools.iter().find(|p| p.product.as_str() == "pro").map_or(0, |p| p.used);
    assert_eq!(used, counted, "{account}: the pool's count equals the seats users hold");
    used
}

fn statuses(v: &Value) -> Vec<(String, Option<String>)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_str().unwrap().to_owned(), r["reason"].as_str().map(str::to_owned)))
        .collect()
}

#[test]
fn users_move_with_their_seats_and_refusals_say_why() {
    let app = TestApp::spawn();
    let t = tree(&app);
    let a = east_user(&app, &t, "a@east.test", true);
    east_user(&app, &t, "b@east.test", true);
    east_user(&app, &t, "c@east.test", false);
    let east_owner = app.admin_token(&t.east);
    assert_eq!(app.post("/api/v1/users", &east_owner, json!({ "email": "pending@east.test" })).0, 201);
    let stranger = app.account("Stranger", "o@stranger.test", false);
    let _ = stranger;
    let (east_before, west_before) = (pro_used(&app, &t.east), pro_used(&app, &t.west));
    assert_eq!((east_before, west_before), (2, 0));
    let emails = json!([
        "a@east.test",
        "b@east.test",
        "c@east.test",
        "owner@east.test",
        "pending@east.test",
        "o@stranger.test",
        "nobody@east.test"
    ]);

    // Dry run: what would happen, in order (b finds West's only seat taken by a), nothing changes.
    let (s, v) =
        app.post("/api/v1/users/move", &t.owner, json!({ "emails": emails, "to_account": t.west, "dry_run": true }));
    assert_eq!(s, 200, "{v}");
    let expected = vec![
        ("would_move".to_owned(), None),
        ("refused".to_owned(), Some("no_seat_left".to_owned())),
        ("would_move".to_owned(), None),
        ("refused".to_owned(), Some("owner".to_owned())),
        ("refused".to_owned(), Some("pending_invitation".to_owned())),
        ("refused".to_owned(), Some("not_found".to_owned())),
        ("refused".to_owned(), Some("not_found".to_owned())),
    ];
    assert_eq!(statuses(&v), expected, "{v}");
    assert_eq!((pro_used(&app, &t.east), pro_used(&app, &t.west)), (2, 0), "a dry run changes nothing");

    // The move: the same answers, now applied.
    let (s, v) = app.post("/api/v1/users/move", &t.owner, json!({ "emails": emails, "to_account": t.west }));
    assert_eq!(s, 200, "{v}");
    let applied: Vec<_> = expected
        .iter()
        .map(|(s, r)| (if s == "would_move" { "moved".to_owned() } else { s.clone() }, r.clone()))
        .collect();
    assert_eq!(statuses(&v), applied, "{v}");
    assert_eq!((pro_used(&app, &t.east), pro_used(&app, &t.west)), (1, 1), "the seat moved between pools");
    let west_owner = app.admin_token(&t.west);
    let (s, moved) = app.get(&format!("/api/v1/users/{a}"), &west_owner);
    assert_eq!((s, moved["type"].as_str()), (200, Some("pro")), "{moved}");
    assert_eq!(app.get(&format!("/api/v1/users/{a}"), &east_owner).0, 404);
    // Both logs record it; the master's summary still adds up.
    for (acct, action) in [(&t.east, "user.moved_out"), (&t.west, "user.moved_in")] {
        let (_, log) = app.get(&format!("/api/v1/accounts/{acct}/audit"), &t.owner);
        assert!(log["entries"].as_array().unwrap().iter().any(|e| e["action"] == action), "{action} in {acct}");
    }
    let (_, summary) = app.get("/api/v1/licenses", &t.owner);
    assert_eq!(line(&summary, "pro")["delegated_total"], 4, "{summary}");
    // A target outside the tree is a 404; admins without sub_accounts:edit are refused.
    let (s, _) =
        app.post("/api/v1/users/move", &t.owner, json!({ "emails": ["c@east.test"], "to_account": "nowhere" }));
    assert_eq!(s, 404);
    let (s, v) =
        app.post("/api/v1/users/move", &east_owner, json!({ "emails": ["c@east.test"], "to_account": t.master }));
    assert_eq!(s, 404, "a sub's tree does not hold its master: {v}");
}

#[test]
fn the_cli_moves_a_csv_of_emails_and_a_racing_scim_update_loses_nothing() {
    let app = TestApp::spawn();
    let t = tree(&app);
    let ids: Vec<String> = (0..6).map(|i| east_user(&app, &t, &format!("u{i}@east.test"), false)).collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("move.csv");
    std::fs::write(&file, "email\nu0@east.test\nu1@east.test\n").unwrap();
    let (code, v, err) = cli(
        &app,
        &["users", "move", "--account", &t.master, "--to", &t.west, "--file", file.to_str().unwrap(), "--dry-run"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["results"][0]["status"], "would_move", "{v}");
    let (code, v, err) =
        cli(&app, &["users", "move", "--account", &t.master, "--to", &t.west, "--file", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (v["results"][0]["status"].as_str(), v["results"][1]["status"].as_str()),
        (Some("moved"), Some("moved")),
        "{v}"
    );

    // SCIM updates of users being moved, at the same time: each request is answered
    // cleanly (applied before the move, or not found after it), nothing half-applied.
    let racing: Vec<&String> = ids.iter().skip(2).collect();
    let (scim_statuses, moved) = std::thread::scope(|s| {
        let updates = s.spawn(|| {
            racing
                .iter()
                .map(|id| {
                    app.patch(
                        &format!("/scim/v2/Users/{id}"),
                        &t.east_scim,
                        json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{ "op": "replace", "path": "displayName", "value": "Renamed" }] }),
                    )
                    .0
                })
                .collect::<Vec<u16>>()
        });
        let emails: Vec<String> = (2..6).map(|i| format!("u{i}@east.test")).collect();
        let (s, v) = app.post("/api/v1/users/move", &t.owner, json!({ "emails": emails, "to_account": t.west }));
        assert_eq!(s, 200, "{v}");
        (updates.join().unwrap(), v)
    });
    for s in &scim_statuses {
        assert!([200, 404, 409].contains(s), "a SCIM update answered {s}");
    }
    assert!(statuses(&moved).iter().all(|(s, _)| s == "moved"), "{moved}");
    let west_owner = app.admin_token(&t.west);
    for id in &racing {
        let (s, u) = app.get(&format!("/api/v1/users/{id}"), &west_owner);
        assert_eq!(s, 200, "every user ended in West: {u}");
    }
    pro_used(&app, &t.east);
    pro_used(&app, &t.west);
}

#[test]
fn a_moved_users_phone_number_and_extension_are_released() {
    let app = TestApp::spawn();
    let t = tree(&app);
    let (s, v) = app.patch("/api/v1/account", &t.owner, json!({ "phone_enabled": true }));
    assert_eq!(s, 200, "{v}");
    app.purchase(&t.master, "regional_metered", 2);
    let (s, v) = app.post("/api/v1/phone/numbers", &t.owner, json!({ "numbers": ["+1 415 555 0100"] }));
    assert_eq!(s, 200, "{v}");
    let scim = app.token(&t.master, "scim", None);
    let (s, v) = app.post("/scim/v2/Users", &scim, json!({ "schemas": [USER], "userName": "ph@holding.test", "active": true, "emails": [{ "value": "ph@holding.test", "primary": true }] }));
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = app.patch(
        &format!("/api/v1/users/{id}"),
        &t.owner,
        json!({ "phone": { "number": "+1 415-555-0100", "extension": 1234 } }),
    );
    assert_eq!((s, v["phone"]["number"].as_str()), (200, Some("+14155550100")), "{v}");
    let (s, v) =
        app.post("/api/v1/users/move", &t.owner, json!({ "emails": ["ph@holding.test"], "to_account": t.east }));
    assert_eq!((s, v["results"][0]["status"].as_str()), (200, Some("moved")), "{v}");
    let (_, pool) = app.get("/api/v1/phone/numbers", &t.owner);
    let n = pool["numbers"].as_array().unwrap().iter().find(|n| n["number"] == "+14155550100").unwrap().clone();
    assert!(n["assigned_user_id"].is_null(), "the number went back to the pool: {n}");
    let east_owner = app.admin_token(&t.east);
    let (s, u) = app.get(&format!("/api/v1/users/{id}"), &east_owner);
    assert_eq!(s, 200, "{u}");
    assert!(u["phone"].is_null() || u["phone"]["extension"].is_null(), "no extension or number kept: {u}");
    let (_, summary) = app.get("/api/v1/licenses", &t.owner);
    assert_eq!(
        line(&summary, "regional_metered")["used"].as_i64().unwrap_or(0),
        0,
        "the calling plan seat is back: {summary}"
    );
}
