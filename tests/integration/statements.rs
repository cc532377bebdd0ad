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

/// A merge import of `csv` run on the calling thread (so its statements count there).
fn import_on_this_thread(app: &TestApp, account: &str, csv: &str) -> service::phone::PhoneImportReport {
    service::phone::import_csv(
        &app.state.db,
        || app.state.env(),
        &Actor::system("test"),
        account,
        csv.as_bytes(),
        service::phone::parse_mode(None).unwrap(),
        false,
        |_| {},
    )
    .expect("import")
}

/// The budget of the backend the test runs on.
fn for_backend<T>(app: &TestApp, sqlite: T, postgres: T) -> T {
    match app.state.db.backend() {
        provisor::store::Backend::Sqlite => sqlite,
        provisor::store::Backend::Postgres => postgres,
    }
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
    let before = statements_on_this_thread();
    let report = import_on_this_thread(&app, &account, &csv);
    let statements = statements_on_this_thread() - before;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.created, rows, "{report:?}");
    let per_row = statements as f64 / rows as f64;
    eprintln!("phone import: {statements} statements for {rows} rows ({per_row:.1} per row)");
    let budget = for_backend(&app, PHONE_ROW_BUDGET_SQLITE, PHONE_ROW_BUDGET_POSTGRES);
    assert!(per_row <= budget, "{per_row:.1} statements per imported row (budget {budget})");
}

/// 11.2 today: savepoint and release, the user, its e-mail index, phone profile and desk
/// phone inserted, the number checked and taken, the extension and MAC checked, the seat taken
/// (18.1 before imports shared a batch scope).
const PHONE_ROW_BUDGET_SQLITE: f64 = 12.0;
/// 12.8 today: the site row is also locked (`FOR UPDATE`), and batches are smaller.
const PHONE_ROW_BUDGET_POSTGRES: f64 = 13.5;

/// What a batch keeps for its end (audit entries, invitations, mails) is written for the
/// rows that took effect and only for them: a row that fails takes its kept rows with it.
#[test]
fn a_batch_writes_the_kept_rows_of_its_good_rows_only() {
    let app = TestApp::spawn();
    let account = phone_account(&app, 10);
    // Another account's user: the row naming them fails with email_taken.
    let other = app.account("Other", "owner@other-stmts.test", false);
    let ot = app.admin_token(&other);
    let (s, v) = app.post("/api/v1/users", &ot, json!({ "email": "taken@other-stmts.test" }));
    assert_eq!(s, 201, "{v}");
    let mut csv = phone_csv(10);
    csv.push_str("taken@other-stmts.test,2,100500,,,,,,\n");
    // Twice the same new address: the second row sees the user the first one created.
    csv.push_str("user3@stmts.test,2,100003,,,,,,\n");
    let audit_before = app.count(&format!("SELECT COUNT(*) AS n FROM audit_log WHERE account_id = '{account}'"));
    let report = import_on_this_thread(&app, &account, &csv);
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.created, 10, "{report:?}");
    assert_eq!(report.unchanged, 1, "the repeated row changes nothing: {report:?}");
    let created = app.count(&format!(
        "SELECT COUNT(*) AS n FROM audit_log WHERE account_id = '{account}' AND action = 'user.created'"
    ));
    assert_eq!(created, 11, "the owner's and the ten rows'");
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) AS n FROM audit_log WHERE account_id = '{account}'")) - audit_before,
        10,
        "one entry per created user, none for the failed or unchanged row"
    );
    assert_eq!(app.count(&format!("SELECT COUNT(*) AS n FROM invitations WHERE account_id = '{account}'")), 10);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM mail_outbox WHERE recipient LIKE '%@stmts.test'"), 10);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM users WHERE email LIKE 'user%@stmts.test'"), 10);
}

/// A returning user's SAML login, after validation: replay entry, the user through the
/// pipeline, the session and the audit entry, in one transaction.
#[test]
fn a_returning_users_saml_login_costs_a_bounded_number_of_statements() {
    use provisor::clock::Clock;
    use provisor::saml::test_idp::{IdpShape, ResponseSpec};
    use provisor::saml::{validate_response, AcsInput, OutstandingRequest};
    let app = TestApp::spawn();
    let account = app.account("Sso", "owner@sso-stmts.test", true);
    let token = app.admin_token(&account);
    let shape = IdpShape::EntraId;
    let metadata = std::fs::read_to_string(provisor::testing::fixtures_dir().join(shape.metadata_file().unwrap()))
        .expect("metadata");
    let (s, v) = app.put("/api/v1/sso", &token, json!({ "idp_metadata": metadata, "allow_idp_initiated": true }));
    assert_eq!(s, 200, "{v}");
    let (entity, acs) = (v["sp_entity_id"].as_str().unwrap().to_owned(), v["acs_url"].as_str().unwrap().to_owned());
    let idp = provisor::testing::fixture_idp().expect("idp");
    let sign = || idp.sign_response(&ResponseSpec::new(shape, &entity, &acs).for_user("pat@sso-stmts.test")).unwrap();
    // The first login (JIT) over HTTP.
    let first = app
        .client
        .post(&acs)
        .header("Accept", "application/json")
        .form(&[("SAMLResponse", sign())])
        .send()
        .expect("ACS answers");
    assert_eq!(first.status().as_u16(), 200, "{}", first.text().unwrap_or_default());

    let sso = app.state.db.read_blocking(|c| service::sso::load(c, &account)).expect("load").expect("configured");
    let urls =
        service::sso::SpUrls::new(&app.state.config.public_url, &account, &account, sso.row.sp_entity_id.as_deref());
    let response = sign();
    let input = AcsInput { saml_response: &response, relay_state: None, outstanding_request: OutstandingRequest::None };
    let login = validate_response(&input, &sso.validation_config(&urls), app.clock.now()).expect("valid");
    let env = app.state.env();
    let before = statements_on_this_thread();
    let success = app
        .state
        .db
        .write_blocking(|c| service::saml_login::complete_login(c, &env, &account, &sso, &login))
        .expect("login");
    let statements = statements_on_this_thread() - before;
    assert!(!success.outcome.created);
    eprintln!("returning SAML login: {statements} statements");
    let budget = for_backend(&app, SAML_RETURNING_BUDGET_SQLITE, SAML_RETURNING_BUDGET_POSTGRES);
    assert!(statements <= budget, "{statements} statements for a returning login (budget {budget})");
}

/// 13 today: BEGIN IMMEDIATE with its two busy-timeout pragmas, the replay entry, the user, the
/// account, the phone profile, the user row (last login), the attributes the rules read, the
/// session, the audit entry, COMMIT, and the pooled connection's check.
const SAML_RETURNING_BUDGET_SQLITE: u64 = 13;
/// 11 today: the same without the pragmas (the user is read with its row locked).
const SAML_RETURNING_BUDGET_POSTGRES: u64 = 11;

/// The attributes the rules read are rewritten only when they differ, and then they are.
#[test]
fn stored_attributes_change_only_when_different() {
    use provisor::store::users::{attributes, put_attributes};
    let app = TestApp::spawn();
    let account = app.account("Attrs", "owner@attrs.test", false);
    let t = app.admin_token(&account);
    let (s, v) = app.post("/api/v1/users", &t, json!({ "email": "ann@attrs.test" }));
    assert_eq!(s, 201, "{v}");
    let user = v["id"].as_str().unwrap().to_owned();
    let t0 = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let at = |h: u32| t0 + chrono::Duration::hours(i64::from(h));
    let stored = |app: &TestApp| {
        app.state.db.read_blocking(|c| attributes(c, &user).map_err(provisor::error::AppError::from)).expect("read")
    };
    // When they were last stored, compared with a time between two puts.
    let stored_before = |app: &TestApp, time: &str| {
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM user_attributes WHERE user_id = '{user}' AND updated_at < '{time}'"
        ))
    };
    let put = |json: &str, h: u32| {
        app.state.db.write_blocking(|c| put_attributes(c, &user, json, at(h)).map_err(provisor::error::AppError::from))
    };
    put(r#"{"dept":["a"]}"#, 1).expect("first");
    assert_eq!(stored(&app).as_deref(), Some(r#"{"dept":["a"]}"#));
    put(r#"{"dept":["a"]}"#, 2).expect("same");
    assert_eq!(stored_before(&app, "2026-01-01 01:30:00"), 1, "the same attributes are not rewritten");
    put(r#"{"dept":["b"]}"#, 3).expect("changed");
    assert_eq!(stored(&app).as_deref(), Some(r#"{"dept":["b"]}"#));
    assert_eq!(stored_before(&app, "2026-01-01 02:30:00"), 0, "changed attributes are stored with their time");
}
