//! Master-account reports over a three-tier tree (a master, three subs, one of them a master
//! with its own sub): licenses with totals equal to the sums, active users from the pushes
//! made in the test in an injected-clock period, phone, CSV parsed back, API and CLI, and the
//! tree as the boundary.

use crate::harness::{cli, TestApp};
use chrono::Duration;
use serde_json::{json, Value};

struct Tree {
    master: String,
    owner: String,
    s1: String,
    s2: String,
    m2: String,
    s3: String,
}

fn sub(app: &TestApp, token: &str, name: &str, owner: &str, master: bool) -> String {
    let mut body = json!({ "name": name, "owner_email": owner });
    if master {
        body["kind"] = json!("master");
        body["bulk_licensing"] = json!(true);
    }
    let (s, v) = app.post("/api/v1/sub_accounts", token, body);
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn delegate(app: &TestApp, token: &str, sub: &str, quantity: i64) {
    let (s, v) = app.put(&format!("/api/v1/sub_accounts/{sub}/licenses/pro"), token, json!({ "quantity": quantity }));
    assert_eq!(s, 200, "{v}");
}

fn tree(app: &TestApp) -> Tree {
    let master = app.account("Holding", "owner@holding.test", true);
    let owner = app.admin_token(&master);
    app.purchase(&master, "pro", 20);
    let s1 = sub(app, &owner, "East", "owner@east.test", false);
    let s2 = sub(app, &owner, "West", "owner@west.test", false);
    let m2 = sub(app, &owner, "North", "owner@north.test", true);
    delegate(app, &owner, &s1, 5);
    delegate(app, &owner, &s2, 3);
    delegate(app, &owner, &m2, 6);
    let m2_owner = app.admin_token(&m2);
    let s3 = sub(app, &m2_owner, "North Lab", "owner@lab.test", false);
    delegate(app, &m2_owner, &s3, 2);
    Tree { master, owner, s1, s2, m2, s3 }
}

fn scim_push(app: &TestApp, token: &str, email: &str) {
    let (s, v) = app.post(
        "/scim/v2/Users",
        token,
        json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email, "active": true,
                "emails": [{ "value": email, "primary": true }] }),
    );
    assert_eq!(s, 201, "{v}");
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("csv row").iter().map(str::to_owned).collect())
        .collect()
}

fn get_text(app: &TestApp, path: &str, token: &str, accept: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url(path)).bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let r = req.send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn the_licenses_report_covers_three_tiers_and_its_totals_are_the_sums() {
    let app = TestApp::spawn();
    let t = tree(&app);
    let east = app.admin_token(&t.s1);
    for e in ["a@east.test", "b@east.test"] {
        assert_eq!(app.post("/api/v1/users", &east, json!({ "email": e, "type": "pro" })).0, 201);
    }
    let (s, r) = app.get("/api/v1/reports/licenses", &t.owner);
    assert_eq!(s, 200, "{r}");
    let tiers: Vec<(String, u64)> = r["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["account_id"].as_str().unwrap().to_owned(), a["tier"].as_u64().unwrap()))
        .collect();
    for (id, tier) in [(&t.master, 0), (&t.s1, 1), (&t.s2, 1), (&t.m2, 1), (&t.s3, 2)] {
        assert!(tiers.contains(&(id.clone(), tier)), "{id} at tier {tier}: {tiers:?}");
    }
    let lines = r["lines"].as_array().unwrap();
    let east_pro = lines.iter().find(|l| l["account_id"] == t.s1.as_str() && l["product"] == "pro").unwrap();
    assert_eq!(
        (east_pro["available"].as_i64(), east_pro["used"].as_i64(), east_pro["remaining"].as_i64()),
        (Some(5), Some(2), Some(3))
    );
    assert_eq!(east_pro["source"], "delegated");
    let master_pro = lines.iter().find(|l| l["account_id"] == t.master.as_str()).unwrap();
    assert_eq!((master_pro["source"].as_str(), master_pro["delegated_out"].as_i64()), (Some("purchased"), Some(14)));
    let north_pro = lines.iter().find(|l| l["account_id"] == t.m2.as_str()).unwrap();
    assert_eq!(north_pro["delegated_out"], 2, "the second-level master delegated to its own sub");
    for col in ["available", "used", "delegated_out", "remaining"] {
        let sum: i64 = lines.iter().filter(|l| l["product"] == "pro").map(|l| l[col].as_i64().unwrap()).sum();
        let total = r["totals"].as_array().unwrap().iter().find(|t| t["product"] == "pro").unwrap()[col].as_i64();
        assert_eq!(total, Some(sum), "total {col}");
    }
    // CSV (by format and by Accept), parsed back: one row per line, same numbers.
    for (path, accept) in
        [("/api/v1/reports/licenses?format=csv", None), ("/api/v1/reports/licenses", Some("text/csv"))]
    {
        let (s, text) = get_text(&app, path, &t.owner, accept);
        assert_eq!(s, 200, "{text}");
        let rows = csv_rows(&text);
        assert_eq!(rows.len(), lines.len(), "{text}");
        let east_row = rows.iter().find(|r| r[0] == t.s1 && r[3] == "pro").unwrap();
        assert_eq!((east_row[5].as_str(), east_row[6].as_str(), east_row[8].as_str()), ("5", "2", "3"));
    }
    // A selection within the tree; anything outside it is a 404, like every foreign id.
    let (s, v) = app.get(&format!("/api/v1/reports/licenses?accounts={},{}", t.s1, t.s3), &t.owner);
    assert_eq!((s, v["accounts"].as_array().map(Vec::len)), (200, Some(2)), "{v}");
    let stranger = app.account("Stranger", "o@stranger.test", false);
    assert_eq!(app.get(&format!("/api/v1/reports/licenses?accounts={stranger}"), &t.owner).0, 404);
    assert_eq!(
        app.get(&format!("/api/v1/reports/licenses?accounts={}", t.master), &east).0,
        404,
        "a sub cannot see its master"
    );
    let (s, v) = app.get("/api/v1/reports/licenses?format=xml", &t.owner);
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_format")));
    // The CLI: same report, CSV.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"))
        .args(["report", "licenses", "--account", &t.master, "--format", "csv"])
        .env("PROVISOR_DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(csv_rows(&String::from_utf8_lossy(&out.stdout)).len(), lines.len());
}

#[test]
fn active_users_are_counted_in_the_period_per_account_and_tier() {
    let app = TestApp::spawn();
    let t = tree(&app);
    let east_scim = app.token(&t.s1, "scim", None);
    let lab_scim = app.token(&t.s3, "scim", None);
    let start = app.state.clock.now();
    for e in ["p1@east.test", "p2@east.test", "p3@east.test"] {
        scim_push(&app, &east_scim, e);
    }
    app.clock.advance(Duration::days(40));
    scim_push(&app, &lab_scim, "l1@lab.test");
    // Default period: the last 30 days — only the recent push.
    let (s, r) = app.get("/api/v1/reports/active_users", &t.owner);
    assert_eq!((s, r["total"].as_u64()), (200, Some(1)), "{r}");
    assert_eq!(r["by_tier"]["2"], 1, "{r}");
    // A period covering both, with the list: the four pushes, and the five owners whose
    // accounts were made through the API in it.
    let from = (start - Duration::days(1)).format("%Y-%m-%d").to_string();
    let (s, r) = app.get(&format!("/api/v1/reports/active_users?from={from}&list=true"), &t.owner);
    assert_eq!((s, r["total"].as_u64()), (200, Some(9)), "{r}");
    let east = r["accounts"].as_array().unwrap().iter().find(|a| a["account_id"] == t.s1.as_str()).unwrap().clone();
    assert_eq!(east["active_users"], 4, "{east}");
    let emails: Vec<&str> = east["users"].as_array().unwrap().iter().filter_map(|u| u["email"].as_str()).collect();
    assert!(emails.contains(&"p1@east.test"), "{emails:?}");
    let (s, v) = app.get("/api/v1/reports/active_users?from=yesterday", &t.owner);
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_period")), "{v}");
    // The CLI selects sub accounts with --sub (its clock is the real one: the period is given).
    let to = (app.state.clock.now() + Duration::days(1)).format("%Y-%m-%d").to_string();
    let args = ["report", "active-users", "--account", &t.master, "--sub", &t.s3, "--from", &from, "--to", &to];
    let (code, v, err) = cli(&app, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!((v["accounts"].as_array().map(Vec::len), v["total"].as_u64()), (Some(2), Some(3)), "{v}");
    // The phone report answers for the same tree, totals the sums.
    let (s, p) = app.get("/api/v1/reports/phone", &t.owner);
    assert_eq!(s, 200, "{p}");
    let sum: i64 = p["accounts"].as_array().unwrap().iter().map(|a| a["numbers"].as_i64().unwrap()).sum();
    assert_eq!(p["numbers"].as_i64(), Some(sum));
    let _: Value = p;
}
