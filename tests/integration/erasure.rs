//! Erasure on request: after `POST /users/{id}/erasure` (or `provisor users erase`) no text
//! column of any table holds the person's e-mail, names or ids, and the audit log still
//! tells what happened under the pseudonym.

use diesel::RunQueryDsl;
use provisor::store::DbConn;
use serde_json::{json, Value};

use crate::harness::{cli, TestApp};

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
}

#[derive(diesel::QueryableByName)]
struct Hit {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// Every (table, column) of the database, whatever its type: the scan casts each to text.
fn every_column(c: &mut DbConn) -> Vec<(String, String)> {
    match c {
        DbConn::Sqlite(c) => {
            let tables: Vec<Name> =
                diesel::sql_query("SELECT name AS name FROM sqlite_master WHERE type = 'table'").load(c).unwrap();
            let mut out = Vec::new();
            for t in tables.into_iter().filter(|t| !t.name.starts_with("sqlite_")) {
                let cols: Vec<Name> =
                    diesel::sql_query(format!("SELECT name AS name FROM pragma_table_info('{}')", t.name))
                        .load(c)
                        .unwrap();
                out.extend(cols.into_iter().map(|col| (t.name.clone(), col.name)));
            }
            out
        }
        DbConn::Pg(c) => diesel::sql_query(
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name \
             FROM information_schema.columns c JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
        )
        .load::<Column>(c)
        .unwrap()
        .into_iter()
        .map(|col| (col.table_name, col.column_name))
        .collect(),
    }
}

/// Every stored value, in any column of any table, that contains one of `needles`
/// (case-insensitively), as "table.column: value".
fn mentions(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let needles: Vec<String> = needles.iter().map(|n| n.to_lowercase()).collect();
    app.state
        .db
        .read_blocking(move |c| {
            let columns = every_column(c);
            assert!(columns.len() > 100, "the scan sees the whole schema: {} columns", columns.len());
            let mut found = Vec::new();
            for (table, column) in &columns {
                for needle in &needles {
                    let sql = format!(
                        "SELECT CAST(\"{column}\" AS TEXT) AS value FROM \"{table}\" \
                         WHERE lower(CAST(\"{column}\" AS TEXT)) LIKE '%{needle}%'"
                    );
                    let hits: Vec<Hit> = provisor::with_backend!(c, |c| diesel::sql_query(&sql).load(c)).unwrap();
                    found.extend(hits.into_iter().map(|h| format!("{table}.{column}: {}", h.value)));
                }
            }
            Ok::<_, provisor::error::AppError>(found)
        })
        .unwrap()
}

#[test]
fn erasure_leaves_no_personal_value_in_any_column_and_the_audit_keeps_a_pseudonym() {
    let app = TestApp::spawn();
    let account = app.account("Erasing", "owner@erasing.test", false);
    let admin = app.admin_token(&account);
    let scim = app.token(&account, "scim", None);

    // Okta pushes the person, then renames them (the old names end up in the audit log).
    let (s, user) = app.post(
        "/scim/v2/Users",
        &scim,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "zebulon.quixote@erasing.test",
            "externalId": "00uzq7erasure",
            "name": { "givenName": "Zebulon", "familyName": "Quixotic" },
            "displayName": "Zebulon Quixotic",
            "emails": [
                { "primary": true, "value": "zebulon.quixote@erasing.test", "type": "work" },
                { "value": "zq.private@home-erasing.test", "type": "home" }
            ],
            "title": "Windmill Inspector",
            "active": true
        }),
    );
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    let (s, v) = app.call(
        "PATCH",
        &format!("/scim/v2/Users/{id}"),
        Some(&scim),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "value": { "name.familyName": "Quixote", "displayName": "Zebulon Quixote" } }]
        })),
    );
    assert_eq!(s, 200, "{v}");
    // A group membership, an invitation resend's mail and an admin's own account change.
    let (s, group) = app.post("/api/v1/groups", &admin, json!({ "name": "Windmills" }));
    assert_eq!(s, 201, "{group}");
    let (s, v) =
        app.post(&format!("/api/v1/groups/{}/members", group["id"].as_str().unwrap()), &admin, json!({ "add": [id] }));
    assert_eq!(s, 200, "{v}");
    let (s, other) =
        app.post("/api/v1/users", &admin, json!({ "email": "sancho@erasing.test", "first_name": "Sancho" }));
    assert_eq!(s, 201, "{other}");

    let personal = ["zebulon", "quixot", "00uzq7erasure", "zq.private", "windmill inspector"];
    let before = mentions(&app, &personal);
    assert!(!before.is_empty(), "the person is stored before the erasure");

    // Another tenant cannot erase them; the owner cannot be erased.
    let stranger = app.account("Stranger", "owner@stranger.test", false);
    let stranger_admin = app.admin_token(&stranger);
    let (s, v) = app.post(&format!("/api/v1/users/{id}/erasure"), &stranger_admin, json!({}));
    assert_eq!(s, 404, "{v}");
    let (_, owners) = app.get("/api/v1/users?email=owner@erasing.test", &admin);
    let owner_id = owners["users"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = app.post(&format!("/api/v1/users/{owner_id}/erasure"), &admin, json!({}));
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("owner_role")), "{v}");

    let (s, report) = app.post(&format!("/api/v1/users/{id}/erasure"), &admin, json!({}));
    assert_eq!(s, 200, "{report}");
    let pseudonym = format!("erased:{id}");
    assert_eq!(report["pseudonym"], json!(pseudonym), "{report}");
    assert!(report["audit_entries"].as_u64().unwrap() >= 2, "{report}");

    let left = mentions(&app, &personal);
    assert!(left.is_empty(), "personal data left after the erasure:\n{}", left.join("\n"));
    let (s, _) = app.get(&format!("/api/v1/users/{id}"), &admin);
    assert_eq!(s, 404);
    let (s, _) = app.get(&format!("/scim/v2/Users/{id}"), &scim);
    assert_eq!(s, 404);
    // Nobody else lost anything.
    let (s, v) = app.get(&format!("/api/v1/users/{}", other["id"].as_str().unwrap()), &admin);
    assert_eq!((s, v["email"].as_str()), (200, Some("sancho@erasing.test")), "{v}");
    assert!(!mentions(&app, &["sancho@erasing.test"]).is_empty());

    // The audit log still tells the story, under the pseudonym.
    let (s, audit) = app.get("/api/v1/audit?limit=100", &admin);
    assert_eq!(s, 200, "{audit}");
    let entries = audit["entries"].as_array().or(audit["audit"].as_array()).cloned().unwrap_or_default();
    let about: Vec<&Value> = entries.iter().filter(|e| e["target"] == json!(id)).collect();
    let actions: Vec<&str> = about.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["user.created", "user.updated", "user.deleted", "user.erased"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    assert!(audit.to_string().contains(&pseudonym), "{audit}");
    // A second erasure finds nobody.
    let (s, _) = app.post(&format!("/api/v1/users/{id}/erasure"), &admin, json!({}));
    assert_eq!(s, 404);
}

#[test]
fn users_erase_cli_takes_an_email_and_prints_the_report() {
    let app = TestApp::spawn();
    let account = app.account("CliErase", "owner@cli-erase.test", false);
    let admin = app.admin_token(&account);
    let (s, v) = app.post(
        "/api/v1/users",
        &admin,
        json!({ "email": "dulcinea@cli-erase.test", "first_name": "Dulcinea", "last_name": "Tobosoz" }),
    );
    assert_eq!(s, 201, "{v}");
    // The invitation mail to the person is deleted with them.
    assert!(!mentions(&app, &["dulcinea"]).is_empty());
    let (code, out, err) = cli(&app, &["users", "erase", "--account", &account, "--user", "Dulcinea@CLI-Erase.test"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["user_id"], v["id"], "{out}");
    assert!(out["mail_deleted"].as_u64().unwrap() >= 1, "{out}");
    let left = mentions(&app, &["dulcinea", "tobosoz"]);
    assert!(left.is_empty(), "{left:?}");
    let (code, _, err) = cli(&app, &["users", "erase", "--account", &account, "--user", "nobody@cli-erase.test"]);
    assert_ne!(code, 0);
    assert!(err.contains("not found") || err.contains("not_found"), "{err}");
}
