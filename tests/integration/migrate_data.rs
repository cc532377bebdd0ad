//! Growing out of one machine: `provisor migrate-data` from an SQLite installation built
//! through the API to a scratch PostgreSQL database, then served and read back there; an
//! interrupted copy resumed; a verification mismatch rolled back; a target of another
//! installation refused. And `provisor backup` / `restore` of SQLite: a backup taken while
//! writes go on, restored and served, and a restore refused under a running server.
//!
//! The source is always SQLite; the target is `PROVISOR_TEST_DATABASE` when it is a
//! PostgreSQL URL, else `PROVISOR_TEST_POSTGRES_URL` (default the local test server).

use std::collections::BTreeSet;
use std::process::Command;

use diesel::{Connection, RunQueryDsl};
use provisor::testing::ScratchDb;
use serde_json::{json, Value};

use crate::harness::TestApp;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn postgres() -> String {
    match std::env::var("PROVISOR_TEST_DATABASE") {
        Ok(spec) if spec.starts_with("postgres") => spec,
        _ => std::env::var("PROVISOR_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    }
}

/// True (and says so) when the run is SQLite-only (`PROVISOR_SKIP_POSTGRES=1`): the copy
/// needs a PostgreSQL target.
fn skipped_without_postgres() -> bool {
    let skip = std::env::var("PROVISOR_SKIP_POSTGRES").is_ok_and(|v| v == "1");
    if skip {
        eprintln!("SKIPPED: migrate-data needs PostgreSQL (PROVISOR_SKIP_POSTGRES=1)");
    }
    skip
}

/// Runs the binary; returns (exit code, stdout JSON, stderr). A crash is code -1.
fn provisor(args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provisor"));
    cmd.args(args).env("RUST_LOG", "warn").env_remove("PROVISOR_FAULT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("provisor runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn migrate(from: &str, to: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut args = vec!["migrate-data", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    provisor(&args, env)
}

/// Every table `src/store/schema.rs` declares.
fn schema_tables() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/schema.rs")).unwrap();
    let mut tables = BTreeSet::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "diesel::table! {" {
            let name = lines.next().unwrap().trim().split([' ', '(']).next().unwrap().to_owned();
            tables.insert(name);
        }
    }
    assert!(tables.len() > 20, "{tables:?}");
    tables
}

fn report_tables(report: &Value) -> Vec<(String, i64, String)> {
    report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_owned(),
                t["rows"].as_i64().unwrap(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn pg_count(url: &str, sql: &str) -> i64 {
    let mut c = diesel::PgConnection::establish(url).unwrap();
    diesel::sql_query(sql).get_result::<N>(&mut c).unwrap().n
}

fn sqlite_count(url: &str, sql: &str) -> i64 {
    let path = url.strip_prefix("sqlite://").unwrap();
    let mut c = diesel::SqliteConnection::establish(path).unwrap();
    diesel::sql_query(sql).get_result::<N>(&mut c).unwrap().n
}

fn until(what: &str, mut f: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !f() {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

struct Installation {
    app: TestApp,
    admin: String,
    partner_lead: String,
    rel: String,
    ann: String,
}

/// An SQLite installation with users, licenses, phone, SSO, a relationship with a
/// group-synced delegate, mail in the outbox and membership events.
fn installation() -> Installation {
    let app = TestApp::spawn_on("sqlite");
    let acme = app.account("Acme", "owner@acme.test", false);
    let admin = app.admin_token(&acme);
    app.purchase(&acme, "pro", 10);
    app.purchase(&acme, "regional_metered", 5);
    let (s, v) = app.patch("/api/v1/account", &admin, json!({ "phone_enabled": true }));
    assert_eq!(s, 200, "{v}");
    let (s, v) =
        app.post("/api/v1/phone/sites", &admin, json!({ "name": "London", "code": "12", "extension_length": 3 }));
    assert_eq!(s, 201, "{v}");
    let (s, v) =
        app.post("/api/v1/phone/numbers", &admin, json!({ "numbers": ["+1 415 555 0100", "+1 415 555 0101"] }));
    assert_eq!(s, 200, "{v}");
    for i in 0..5 {
        let (s, v) = app.post(
            "/api/v1/users",
            &admin,
            json!({ "email": format!("u{i}@acme.test"), "type": "pro", "phone": { "extension": 0 } }),
        );
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) =
        app.post("/api/v1/users", &admin, json!({ "email": "num@acme.test", "phone": { "number": "+14155550100" } }));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["phone"]["number"], "+14155550100", "{v}");
    // A master with a sub account: `accounts.parent_id` refers to its own table.
    let holding = app.account("Holding", "owner@holding.test", true);
    let (s, v) = app.post(
        "/api/v1/sub_accounts",
        &app.admin_token(&holding),
        json!({ "name": "Holding East", "owner_email": "owner@east.test" }),
    );
    assert_eq!(s, 201, "{v}");
    let metadata = std::fs::read_to_string(provisor::testing::fixtures_dir().join("okta-metadata.xml")).unwrap();
    let (s, v) = app.put("/api/v1/sso", &admin, json!({ "idp_metadata": metadata }));
    assert_eq!(s, 200, "{v}");

    // A partner whose SCIM group is bound to a relationship with Acme: its member becomes a
    // delegate through group sync.
    let partner = app.account("Partner MSP", "lead@partner.test", false);
    let partner_lead = app.admin_token(&partner);
    let scim = app.token(&partner, "scim", None);
    let (s, v) = app.post(
        "/scim/v2/Users",
        &scim,
        json!({ "schemas": [USER], "userName": "ann@partner.test", "emails": [{ "value": "ann@partner.test", "primary": true }] }),
    );
    assert_eq!(s, 201, "{v}");
    let ann = v["id"].as_str().unwrap().to_owned();
    let (s, v) =
        app.post("/scim/v2/Groups", &scim, json!({ "schemas": [GROUP], "displayName": "Support", "members": [] }));
    assert_eq!(s, 201, "{v}");
    let group = v["id"].as_str().unwrap().to_owned();
    let (s, v) = app.post(
        "/api/v1/relationships",
        &partner_lead,
        json!({ "customer": acme, "name": "IT", "allow_delegates": true, "permissions": ["users:view"] }),
    );
    assert_eq!(s, 201, "{v}");
    let rel = v["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/v1/relationships/{rel}/approve"), &admin, json!({})).0, 200);
    let (s, v) = app.post(
        &format!("/api/v1/relationships/{rel}/groups"),
        &partner_lead,
        json!({ "group_id": group, "auto_accept": true }),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.patch(
        &format!("/scim/v2/Groups/{group}"),
        &scim,
        json!({ "schemas": [PATCH], "Operations": [{ "op": "add", "path": "members", "value": [{ "value": ann }] }] }),
    );
    assert!(s == 200 || s == 204, "{v}");
    until("ann is a delegate", || {
        let (_, v) = app.get(&format!("/api/v1/relationships/{rel}/delegates"), &partner_lead);
        v["delegates"].as_array().is_some_and(|d| d.iter().any(|d| d["user_id"] == ann.as_str()))
    });
    until("the sync outbox is drained", || {
        let (_, st) = app.get("/api/v1/sync/status", &partner_lead);
        st["outbox_depth"].as_i64() == Some(0)
    });
    Installation { app, admin, partner_lead, rel, ann }
}

/// What a client sees of the installation (the same through either server).
fn view(app: &TestApp, i: &Installation) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        "/api/v1/users?limit=100",
        "/api/v1/licenses",
        "/api/v1/phone/sites",
        "/api/v1/phone/numbers",
        "/api/v1/groups",
    ] {
        let (s, v) = app.get(path, &i.admin);
        assert_eq!(s, 200, "{path}: {v}");
        out.push((path.to_owned(), v));
    }
    let (s, sso) = app.get("/api/v1/sso", &i.admin);
    assert_eq!(s, 200, "{sso}");
    out.push(("sso".into(), json!([sso["idp_entity_id"], sso["sso_url"], sso["certificates"], sso["jit_enabled"]])));
    let (s, d) = app.get(&format!("/api/v1/relationships/{}/delegates", i.rel), &i.partner_lead);
    assert_eq!(s, 200, "{d}");
    out.push(("delegates".into(), d));
    let (s, r) = app.get(&format!("/api/v1/relationships/{}", i.rel), &i.partner_lead);
    assert_eq!(s, 200, "{r}");
    out.push(("relationship".into(), json!([r["status"], r["permissions"], r["name"]])));
    out
}

#[test]
fn an_sqlite_installation_moves_to_postgresql_and_is_served_there() {
    if skipped_without_postgres() {
        return;
    }
    let i = installation();
    let before = view(&i.app, &i);
    let source = i.app.database_url.clone();
    for (table, min) in [("mail_outbox", 1), ("membership_events", 1), ("delegates", 1), ("sso_configs", 1)] {
        assert!(sqlite_count(&source, &format!("SELECT count(*) AS n FROM {table}")) >= min, "{table} has rows");
    }
    let target = ScratchDb::create(&postgres()).unwrap();
    let (code, report, err) = migrate(&source, target.url(), &["--batch-size", "3"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("copied and verified"), "progress lines on a pipe: {err}");

    // Every table of the schema was copied, with the source's row count, parents first.
    let copied = report_tables(&report);
    let names: BTreeSet<String> = copied.iter().map(|t| t.0.clone()).collect();
    assert_eq!(names, schema_tables(), "migrate-data copies exactly the schema's tables");
    for (table, rows, status) in &copied {
        assert_eq!(status, "copied");
        assert_eq!(*rows, sqlite_count(&source, &format!("SELECT count(*) AS n FROM {table}")), "{table}");
        assert_eq!(*rows, pg_count(target.url(), &format!("SELECT count(*) AS n FROM {table}")), "{table}");
    }
    let parented = "SELECT count(*) AS n FROM accounts WHERE parent_id IS NOT NULL";
    assert_eq!(pg_count(target.url(), parented), 1, "the self-reference is set after the rows");
    let pos = |t: &str| copied.iter().position(|c| c.0 == t).unwrap();
    assert!(
        pos("accounts") < pos("users") && pos("users") < pos("delegates") && pos("relationships") < pos("delegates")
    );

    // A server on PostgreSQL sees the same installation, and new writes do not collide.
    let base = i.app.base.clone();
    let operator = i.app.operator.clone();
    let moved = TestApp::serve_existing(target, &operator, &base);
    assert_eq!(view(&moved, &i), before);
    let (s, v) =
        moved.post("/api/v1/users", &i.admin, json!({ "email": "new@acme.test", "phone": { "extension": 0 } }));
    assert_eq!(s, 201, "{v}");
    let ext = v["phone"]["extension"].as_i64().unwrap();
    let (_, users) = moved.get("/api/v1/users?limit=100", &i.admin);
    let taken =
        users["users"].as_array().unwrap().iter().filter(|u| u["phone"]["extension"].as_i64() == Some(ext)).count();
    assert_eq!(taken, 1, "the next extension is free: {users}");
    let (s, v) = moved.patch(
        &format!("/api/v1/users/{}", v["id"].as_str().unwrap()),
        &i.admin,
        json!({ "phone": { "number": "+14155550101" } }),
    );
    assert_eq!((s, v["phone"]["number"].as_str()), (200, Some("+14155550101")), "{v}");
    // The sequences continue after the copied ids (audit and outbox rows were just written).
    let max_audit = sqlite_count(&source, "SELECT max(id) AS n FROM audit_log");
    assert!(pg_count(&moved.database_url, "SELECT max(id) AS n FROM audit_log") > max_audit);
    let (s, v) = moved.get(&format!("/api/v1/relationships/{}/delegates", i.rel), &i.partner_lead);
    assert!(s == 200 && v.to_string().contains(&i.ann), "{v}");
}

#[test]
fn an_interrupted_copy_continues_and_another_installation_is_refused() {
    if skipped_without_postgres() {
        return;
    }
    let i = installation();
    let source = i.app.database_url.clone();
    let target = ScratchDb::create(&postgres()).unwrap();
    let to = target.url().to_owned();

    // Killed after five tables: those five are verified and kept.
    let (code, _, err) = migrate(&source, &to, &[], &[("PROVISOR_FAULT", "migrate-data:after_table:5")]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("aborting at migrate-data:after_table:5"), "{err}");
    assert_eq!(pg_count(&to, "SELECT count(*) AS n FROM __provisor_migrate_data"), 5);

    // A batch fails in the middle of a table: that table is rolled back, nothing of it stays.
    let (code, _, err) =
        migrate(&source, &to, &["--batch-size", "1"], &[("PROVISOR_FAULT", "migrate-data:second_batch")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    let verified = pg_count(&to, "SELECT count(*) AS n FROM __provisor_migrate_data");
    assert!(verified >= 5, "{verified}");
    let failed = err.split("table ").nth(1).unwrap().split(':').next().unwrap().to_owned();
    assert_eq!(pg_count(&to, &format!("SELECT count(*) AS n FROM {failed}")), 0, "{failed} was rolled back");

    // Run again: the verified tables are skipped, the rest copied.
    let (code, report, err) = migrate(&source, &to, &[], &[]);
    assert_eq!(code, 0, "{err}");
    let tables = report_tables(&report);
    let skipped = tables.iter().filter(|t| t.2 == "already_verified").count() as i64;
    assert_eq!(skipped, verified);
    assert_eq!(tables.iter().map(|t| t.0.clone()).collect::<BTreeSet<_>>(), schema_tables());
    for (table, rows, _) in &tables {
        assert_eq!(*rows, pg_count(&to, &format!("SELECT count(*) AS n FROM {table}")), "{table}");
    }
    // Once more: nothing left to do.
    let (code, report, _) = migrate(&source, &to, &[], &[]);
    assert_eq!((code, report["rows_copied"].as_i64()), (0, Some(0)));

    // Another installation is refused, and so is a PostgreSQL database a server already uses.
    let other = TestApp::spawn_on("sqlite");
    let (code, _, err) = migrate(&other.database_url, &to, &[], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("another installation"), "{err}");
    let used = TestApp::spawn_on(&postgres());
    let (code, _, err) = migrate(&other.database_url, &used.database_url, &[], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already holds data"), "{err}");
    // Wrong kinds of URL say which is wanted.
    let (code, _, err) = migrate(&to, &other.database_url, &[], &[]);
    assert_eq!(code, 3);
    assert!(err.contains("--from must be an SQLite URL"), "{err}");
}

#[test]
fn a_checksum_mismatch_rolls_the_table_back_and_fails() {
    if skipped_without_postgres() {
        return;
    }
    let i = installation();
    let source = i.app.database_url.clone();
    let target = ScratchDb::create(&postgres()).unwrap();
    let to = target.url().to_owned();
    let (code, _, err) = migrate(&source, &to, &[], &[("PROVISOR_FAULT", "migrate-data:tamper")]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("verification failed for table accounts"), "{err}");
    assert_eq!(pg_count(&to, "SELECT count(*) AS n FROM __provisor_migrate_data"), 0);
    assert_eq!(pg_count(&to, "SELECT count(*) AS n FROM accounts"), 0);
    let (code, _, err) = migrate(&source, &to, &[], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_online_backup_under_writes_restores_and_serves() {
    let i = installation();
    let app = &i.app;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("provisor.backup");
    let file_s = file.to_str().unwrap().to_owned();
    let db_env = [("PROVISOR_DATABASE_URL", app.database_url.as_str())];

    // Users are created while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (base, admin, stop) = (app.base.clone(), i.admin.clone(), stop.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{base}/api/v1/users"))
                    .bearer_auth(&admin)
                    .json(&json!({ "email": format!("w{n}@acme.test") }))
                    .send()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201);
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (code, v, err) = provisor(&["backup", "--to", &file_s], &db_env);
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["integrity"], "ok", "{v}");
    assert!(written > 2, "writes went on ({written})");

    // The copy is one consistent snapshot: every user has its e-mail row and its audit entry.
    let url = format!("sqlite://{file_s}");
    let users = sqlite_count(&url, "SELECT count(*) AS n FROM users");
    assert_eq!(users, sqlite_count(&url, "SELECT count(*) AS n FROM user_emails"));
    assert_eq!(sqlite_count(&url, "SELECT count(*) AS n FROM pragma_foreign_key_check"), 0);
    let live = sqlite_count(&app.database_url, "SELECT count(*) AS n FROM users");
    assert!(users < live, "users made after the backup are not in it ({users} < {live})");
    // Never over an existing file.
    assert_eq!(provisor(&["backup", "--to", &file_s], &db_env).0, 3);

    // Restored into a new database and served: the backup's users are there.
    let restored = ScratchDb::create("sqlite").unwrap();
    let (code, v, err) = provisor(&["restore", "--from", &file_s], &[("PROVISOR_DATABASE_URL", restored.url())]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["integrity"], "ok");
    let served = TestApp::serve_existing(restored, &app.operator, &app.base);
    let (s, list) = served.get("/api/v1/users?limit=1000", &i.admin);
    assert_eq!(s, 200, "{list}");
    let acme_users = sqlite_count(&url, &format!("SELECT count(*) AS n FROM users WHERE account_id = (SELECT account_id FROM api_tokens WHERE token_hash = '{}')", provisor::secrets::hash_secret(&i.admin)));
    assert_eq!(list["users"].as_array().unwrap().len() as i64, acme_users, "{list}");

    // Over a database a server has open: refused, unless forced.
    let (code, _, err) = provisor(&["restore", "--from", &file_s], &db_env);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is in use by process"), "{err}");
    let (code, _, err) = provisor(&["restore", "--from", &file_s, "--force"], &db_env);
    assert_eq!(code, 0, "{err}");
    let (s, list) = app.get("/api/v1/users?limit=1000", &i.admin);
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        list["users"].as_array().unwrap().len() as i64,
        acme_users,
        "the running server reads the restored data"
    );
    // PostgreSQL is pointed to its own tools.
    let (code, _, err) = provisor(&["backup", "--to", &file_s, "--database-url", &postgres()], &[]);
    assert!(code == 3 && err.contains("pg_dump --format=custom"), "{err}");
}
