//! The CLI verbs operators' scripts rely on: one JSON object on stdout, non-zero exit and
//! a clear message on error.

use serde_json::json;

use crate::harness::{cli, line, TestApp};

#[test]
fn cli_verbs_print_json_and_fail_clearly() {
    let app = TestApp::spawn();
    let (code, v, err) = cli(
        &app,
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--owner-email",
            "owner@acme.test",
            "--kind",
            "master",
            "--bulk-licensing",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let master = v["id"].as_str().unwrap().to_owned();
    let (code, v, err) = cli(
        &app,
        &[
            "account",
            "create",
            "--parent",
            &master,
            "--name",
            "Sub",
            "--owner-email",
            "owner@sub.test",
            "--billing",
            "separate",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let sub = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["parent_id"], master.as_str());

    let (code, v, _) = cli(&app, &["licenses", "set", "--account", &master, "--product", "pro", "--quantity", "50"]);
    assert_eq!(code, 0);
    assert_eq!(line(&v, "pro")["purchased"], 50);
    let (code, v, _) = cli(
        &app,
        &["licenses", "delegate", "--account", &master, "--sub", &sub, "--product", "pro", "--quantity", "5"],
    );
    assert_eq!(code, 0);
    assert_eq!(line(&v, "pro")["remaining"], 45);

    let (code, v, _) = cli(&app, &["token", "create", "--account", &master, "--scope", "admin"]);
    assert_eq!(code, 0);
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("pvs_"));
    // The token works against the running server.
    let (s, _) = app.post("/api/v1/users", &token, json!({ "email": "ann@acme.test", "type": "pro" }));
    assert_eq!(s, 201);
    let (code, v, _) = cli(&app, &["users", "list", "--account", &master]);
    assert_eq!(code, 0);
    let users = v["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert!(users.iter().any(|u| u["email"] == "ann@acme.test" && u["type"] == "pro" && u["id"].is_string()));

    // Errors: non-zero, nothing on stdout, a message on stderr.
    for args in [
        vec!["licenses", "set", "--account", &master, "--product", "gold", "--quantity", "1"],
        vec!["account", "create", "--name", "X", "--owner-email", "owner@acme.test"],
        vec!["token", "create", "--account", "no-such-account", "--scope", "scim"],
        vec!["users", "list", "--account", "no-such-account"],
    ] {
        let (code, v, err) = cli(&app, &args);
        assert_ne!(code, 0, "{args:?}");
        assert_eq!(v, serde_json::Value::Null, "{args:?}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }

    // CSV import from a file with a bad row.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "email,first name,last name,department,user group\nbob@acme.test,Bob,,,\nbad,,,,\n").unwrap();
    let (code, v, err) = cli(&app, &["users", "import", "--account", &master, "--file", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["created"], 1);
    assert_eq!(v["failed"][0]["line"], 3);
    let (code, v, _) = cli(&app, &["mail", "list", "--to", "bob@acme.test"]);
    assert_eq!(code, 0);
    assert!(v["mails"][0]["body"].as_str().unwrap().contains("token=pvi_"));
}

/// The CLI leaves cleanly: 200 invocations (reads and writes, in parallel pairs), no crash
/// at exit (a signal shows as no exit code), every one printing its JSON.
#[test]
fn two_hundred_cli_invocations_exit_cleanly() {
    let app = TestApp::spawn();
    let a = app.account("Exit", "owner@exit.test", false);
    let app = std::sync::Arc::new(app);
    let handles: Vec<_> = (0..2)
        .map(|lane| {
            let (app, a) = (app.clone(), a.clone());
            std::thread::spawn(move || {
                for i in 0..100 {
                    let (code, json, err) = if i % 4 == 0 {
                        let label = format!("exit-{lane}-{i}");
                        cli(&app, &["token", "create", "--account", &a, "--scope", "scim", "--label", &label])
                    } else {
                        cli(&app, &["account", "show", "--id", &a])
                    };
                    assert_eq!(code, 0, "invocation {lane}/{i} exited {code}: {err}");
                    assert!(!json.is_null(), "invocation {lane}/{i} printed no JSON: {err}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn basic_is_not_for_sale() {
    let app = TestApp::spawn();
    let a = app.account("Free", "owner@free.test", false);
    let (code, _, err) = cli(&app, &["licenses", "set", "--account", &a, "--product", "basic", "--quantity", "5"]);
    assert_ne!(code, 0);
    assert!(err.contains("not_purchasable") || err.contains("free and unlimited"), "{err}");
    let (s, e) =
        app.put(&format!("/api/v1/accounts/{a}/licenses/basic"), &app.operator.clone(), json!({ "quantity": 5 }));
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("not_purchasable")), "{e}");
}

#[test]
fn audit_entries_say_which_channel_made_them() {
    let app = TestApp::spawn();
    let a = app.account("Chan", "owner@chan.test", false);
    let (code, _, err) = cli(&app, &["licenses", "set", "--account", &a, "--product", "pro", "--quantity", "3"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&app, &["settings", "set", "--account", &a, "--phone-enabled", "true"]);
    assert_eq!(code, 0, "{err}");
    let t = app.admin_token(&a);
    assert_eq!(app.post("/api/v1/roles", &t, json!({ "name": "R", "permissions": [] })).0, 201);
    let (_, audit) = app.get("/api/v1/audit", &t);
    let source_of = |action: &str| {
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == action).map(|e| e["source"].clone())
    };
    assert_eq!(source_of("licenses.purchased"), Some(json!("cli")), "{audit}");
    assert_eq!(source_of("account.updated"), Some(json!("cli")), "{audit}");
    assert_eq!(source_of("role.created"), Some(json!("api")), "{audit}");
}

/// An import that cannot finish (its second batch fails as if the database went away)
/// reports exactly what it applied and where it stopped, exits non-zero, and running the
/// same file again completes it without duplicating anything.
#[test]
fn a_stopped_import_reports_what_it_applied_and_a_rerun_completes_it() {
    const ROWS: usize = 300;
    let app = TestApp::spawn();
    let a = app.account("Stop", "owner@stop.test", false);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let mut csv = String::from("email,first name\n");
    for i in 0..ROWS {
        csv.push_str(&format!("u{i}@stop.test,U{i}\n"));
    }
    std::fs::write(&path, csv).unwrap();
    let file = path.to_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"))
        .args(["users", "import", "--account", &a, "--file", file])
        .env("PROVISOR_DATABASE_URL", &app.database_url)
        .env("PROVISOR_FAULT", "import:second_batch")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(out.status.code(), Some(3), "{report}");
    // The first batch took effect and is counted; from the second batch's first line on
    // nothing did.
    let applied = report["created"].as_u64().unwrap();
    assert!(applied > 0 && applied < ROWS as u64, "{report}");
    assert_eq!(report["stopped"]["first_line_not_applied"], applied + 2, "{report}");
    assert_eq!(report["stopped"]["code"], "unavailable", "{report}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("run the file again"));
    let stored = |app: &TestApp| {
        let (s, v) = app.call("GET", &format!("/api/v1/accounts/{a}/users?limit=1"), Some(&app.operator), None);
        assert_eq!(s, 200, "{v}");
        v["total"].as_u64().unwrap()
    };
    assert_eq!(stored(&app), applied + 1, "the owner and the applied rows");

    let (code, v, err) = cli(&app, &["users", "import", "--account", &a, "--file", file]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["created"], ROWS as u64 - applied, "{v}");
    assert_eq!(v["unchanged"], applied, "{v}");
    assert!(v.get("stopped").is_none(), "{v}");
    assert_eq!(stored(&app), ROWS as u64 + 1);
}

/// A lost operator token is replaced from the CLI; the new one works and is audited.
#[test]
fn a_new_operator_token_can_be_issued_from_the_cli() {
    let app = TestApp::spawn();
    let (code, v, err) = cli(&app, &["token", "create", "--operator", "--label", "recovery"]);
    assert_eq!(code, 0, "{err}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["scope"], "operator");
    let (s, accounts) = app.call("GET", "/api/v1/accounts", Some(&token), None);
    assert_eq!(s, 200, "{accounts}");
    let logged = app
        .state
        .db
        .read_blocking(|c| {
            use diesel::prelude::*;
            use provisor::store::schema::audit_log as al;
            al::table
                .filter(al::action.eq("operator_token.created"))
                .count()
                .get_result::<i64>(c)
                .map_err(provisor::error::AppError::from)
        })
        .unwrap();
    assert_eq!(logged, 1);
    // Without --operator, an account and a scope are required.
    let (code, _, err) = cli(&app, &["token", "create"]);
    assert_ne!(code, 0, "{err}");
}
