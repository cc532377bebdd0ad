//! How many SQL statements the hot paths send: the cost of a request on PostgreSQL is
//! statements × round trip, and on SQLite each statement is a prepare-bind-step. The counts
//! are read on the test's own thread (the service runs there), so nothing else the test
//! binary does at the same time is counted. The budgets are what the code sends today;
//! a change that adds statements to these paths has to raise them knowingly.

use crate::harness::TestApp;
use provisor::provisioning::Actor;
use provisor::service;
use provisor::store::stats::statements_on_this_thread;
use serde_json::json;

fn phone_account(app: &TestApp, rows: u64) -> String {
    let a = app.account("Stmts", "owner@stmts.test", false);
    let t = app.admin_token(&a);
    let (s, v) = app.patch("/api/v1/account", &t, json!({ "phone_enabled": true }));
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.post("/api/v1/phone/sites", &t, json!({ "name": "Bulk", "code": "2", "extension_length": 6 }));
    assert_eq!(s, 201, "{v}");
    app.purchase(&a, "regional_unlimited", rows as i64);
    let numbers: Vec<String> = (0..rows).map(|i| format!("+1212{:07}", 5_000_000 + i)).collect();
    let (s, v) = app.post("/api/v1/phone/numbers", &t, json!({ "numbers": numbers }));
    assert_eq!(s, 200, "{v}");
    a
}

/// The benchmark's row: a new user with site, extension, number, calling plan, SMS and a
/// desk phone.
fn phone_csv(rows: u64) -> String {
    let mut csv = String::from(
        "Email,Site Code,Extension Number,Phone Number,Calling Plan,SMS,Desk Phone Brand 1,Desk Phone Model 1,Desk Phone MAC Address 1\n",
    );
    for i in 0..rows {
        csv.push_str(&format!(
            "user{i}@stmts.test,2,{},+1 212 {:07},Regional Unlimited,Yes,Poly,VVX 450,{:012X}\n",
            100_000 + i,
            5_000_000 + i,
            0x0004_F200_0000u64 + i
        ));
    }
    csv
}

#[test]
fn a_phone_import_row_costs_a_bounded_number_of_statements() {
    let app = TestApp::spawn();
    let rows = 300;
    let account = phone_account(&app, rows);
    let csv = phone_csv(rows);
    let actor = Actor::system("test");
    let before = statements_on_this_thread();
    let report = service::phone::import_csv(
        &app.state.db,
        || app.state.env(),
        &actor,
        &account,
        csv.as_bytes(),
        service::phone::parse_mode(None).unwrap(),
        false,
        |_| {},
    )
    .expect("import");
    let statements = statements_on_this_thread() - before;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.created, rows, "{report:?}");
    let per_row = statements as f64 / rows as f64;
    eprintln!("phone import: {statements} statements for {rows} rows ({per_row:.1} per row)");
    assert!(per_row <= PHONE_ROW_BUDGET, "{per_row:.1} statements per imported row (budget {PHONE_ROW_BUDGET})");
}

const PHONE_ROW_BUDGET: f64 = 30.0;
