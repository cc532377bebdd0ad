//! The newcomer's path (README as written): rules that read `memberOf` fire for SCIM pushes,
//! a rules document naming what does not exist is refused, CLI output links to the address
//! the server really runs under, certificates are accepted as PEM text, PEM or DER files,
//! Zoom's calling-plan names are understood, the SP entity ID can go back to its default.

use provisor::testing::process::ServerProcess;
use provisor::testing::ScratchDb;
use serde_json::{json, Value};

use crate::harness::{cli, TestApp};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

#[test]
fn readme_style_rules_fire_for_scim_pushes_and_unknown_targets_are_refused() {
    let app = TestApp::spawn();
    let a = app.account("Rules", "owner@rules.test", false);
    let t = app.admin_token(&a);
    let scim = app.token(&a, "scim", None);
    let rules = json!({ "rules": [
        { "attribute": "memberOf", "match": { "equals": "contractors" }, "negate": true, "target": "group", "value": "Employees" },
        { "attribute": "memberOf", "match": { "equals": "Crew" }, "target": "group", "value": "Crew Members" }
    ] });
    // Neither group exists: refused, naming both.
    let (s, v) = app.call("PUT", "/api/v1/mapping", Some(&t), Some(rules.clone()));
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "unknown_target", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("\"Employees\"") && msg.contains("\"Crew Members\""), "{msg}");
    // A missing site or sub account is refused too.
    let (s, v) = app.call(
        "PUT",
        "/api/v1/mapping",
        Some(&t),
        Some(json!({ "rules": [ { "attribute": "office", "match": { "equals": "LON" }, "target": "phone_site", "value": "London" } ] })),
    );
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("unknown_target")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("phone is not enabled"), "{v}");
    for name in ["Employees", "Crew Members", "Crew"] {
        let (s, v) = app.call("POST", "/api/v1/groups", Some(&t), Some(json!({ "name": name })));
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = app.call("PUT", "/api/v1/mapping", Some(&t), Some(rules));
    assert_eq!(s, 200, "{v}");
    // A SCIM user: not a contractor, so an Employee.
    let (s, u) = app.call(
        "POST",
        "/scim/v2/Users",
        Some(&scim),
        Some(json!({ "schemas": [USER], "userName": "ann@rules.test" })),
    );
    assert_eq!(s, 201, "{u}");
    let names = |u: &Value| {
        let mut n: Vec<String> =
            u["groups"].as_array().unwrap().iter().map(|g| g["display"].as_str().unwrap().to_owned()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&u), ["Employees"], "{u}");
    // The IdP puts her into Crew (a SCIM group push): the rule reading `memberOf` sees her
    // SCIM `groups` at her next push and adds the rule's group.
    let id = u["id"].as_str().unwrap();
    let (s, g) = app.call("GET", "/scim/v2/Groups?filter=displayName%20eq%20%22Crew%22", Some(&scim), None);
    assert_eq!(s, 200, "{g}");
    let crew = g["Resources"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = app.call(
        "PATCH",
        &format!("/scim/v2/Groups/{crew}"),
        Some(&scim),
        Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [ { "op": "add", "path": "members", "value": [ { "value": id } ] } ] })),
    );
    assert!(s == 200 || s == 204, "{v}");
    // The group change alone runs her rules again: no user push needed.
    let (s, u) = app.call("GET", &format!("/scim/v2/Users/{id}"), Some(&scim), None);
    assert_eq!(s, 200, "{u}");
    assert_eq!(names(&u), ["Crew", "Crew Members", "Employees"], "{u}");
    // And leaving Crew takes the rule's group away again.
    let (s, v) = app.call(
        "PATCH",
        &format!("/scim/v2/Groups/{crew}"),
        Some(&scim),
        Some(json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [ { "op": "remove", "path": format!("members[value eq \"{id}\"]") } ] })),
    );
    assert!(s == 200 || s == 204, "{v}");
    let (_, u) = app.call("GET", &format!("/scim/v2/Users/{id}"), Some(&scim), None);
    assert_eq!(names(&u), ["Employees"], "{u}");
}

#[test]
fn cli_links_use_the_public_url_serve_runs_under() {
    let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let db = ScratchDb::create(&spec).expect("scratch database");
    let mut server = ServerProcess::start_binary(
        env!("CARGO_BIN_EXE_provisor").into(),
        db.url(),
        &[("PROVISOR_PUBLIC_URL", "https://sso.example.test/")],
    )
    .expect("server starts");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"))
            .args(args)
            .env("PROVISOR_DATABASE_URL", db.url())
            .env_remove("PROVISOR_PUBLIC_URL")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), v, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, acct, err) = run(&["account", "create", "--name", "Url", "--owner-email", "o@url.test"]);
    assert_eq!(code, Some(0), "{err}");
    let id = acct["id"].as_str().unwrap().to_owned();
    let cert = std::fs::read_to_string(provisor::testing::fixtures_dir().join("idp-a.crt.pem")).unwrap();
    // The certificate as PEM text on the command line.
    let (code, v, err) = run(&[
        "sso",
        "set",
        "--account",
        &id,
        "--idp-entity-id",
        "https://idp.example.test",
        "--idp-certificate",
        &cert,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["acs_url"], format!("https://sso.example.test/saml/{id}/acs"), "{v}");
    // A DER file works as well.
    let der_path = provisor::testing::fixtures_dir().join("idp-a.crt.der");
    let (code, v, err) = run(&["sso", "set", "--account", &id, "--idp-certificate", der_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    // A custom SP entity ID, then back to the default.
    let (code, v2, err) = run(&["sso", "set", "--account", &id, "--sp-entity-id", "urn:custom:sp"]);
    assert_eq!((code, v2["sp_entity_id"].as_str()), (Some(0), Some("urn:custom:sp")), "{err}");
    let (code, v3, err) = run(&["sso", "set", "--account", &id, "--sp-entity-id", "default"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v3["sp_entity_id"], v["sp_entity_id"], "{v3}");
    assert_eq!(v3["sp_entity_id"], format!("https://sso.example.test/saml/{id}/metadata"));
    server.kill();
}

#[test]
fn zoom_calling_plan_names_are_accepted_by_the_cli() {
    let app = TestApp::spawn();
    let a = app.account("Plans", "owner@plans.test", false);
    let (code, v, err) =
        cli(&app, &["licenses", "set", "--account", &a, "--product", "US/CA Metered", "--quantity", "3"]);
    assert_eq!(code, 0, "{err} {v}");
    let (code, v, err) = cli(&app, &["licenses", "summary", "--account", &a]);
    assert_eq!(code, 0, "{err}");
    assert!(v.to_string().contains("regional_metered"), "{v}");
}

#[test]
fn messages_help_and_never_leak_internals() {
    let app = TestApp::spawn();
    let a = app.account("Msg", "owner@msg.test", false);
    let t = app.admin_token(&a);
    let scim = app.token(&a, "scim", None);
    let mut bodies: Vec<Value> = Vec::new();
    // A wrong method on a known path: 405 naming what the path has.
    let r = app.client.patch(app.url("/api/v1/mapping")).bearer_auth(&t).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("PUT") && !allow.contains("PATCH"), "{allow}");
    let v: Value = r.json().unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    // The mirror too; an unknown path stays a 404.
    let r = app.client.put(app.url(&format!("/api/v1/accounts/{a}/users"))).bearer_auth(&t).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
    let (s, v) = app.call("GET", "/api/v1/no-such-thing", Some(&t), None);
    assert_eq!(s, 404, "{v}");
    // A custom role is assigned by its id (as responses show it) or its name.
    let (s, role) =
        app.call("POST", "/api/v1/roles", Some(&t), Some(json!({ "name": "Helpdesk", "permissions": ["users:view"] })));
    assert_eq!(s, 201, "{role}");
    let role_id = role["id"].as_str().unwrap();
    let (s, u) =
        app.call("POST", "/api/v1/users", Some(&t), Some(json!({ "email": "r@msg.test", "custom_role": role_id })));
    assert_eq!(s, 201, "{u}");
    assert_eq!(u["custom_role_id"], role_id, "{u}");
    let (s, v) =
        app.call("POST", "/api/v1/users", Some(&t), Some(json!({ "email": "q@msg.test", "custom_role": "Nope" })));
    assert_eq!(s, 400, "{v}");
    bodies.push(v);
    // Uniqueness conflicts, over SCIM and the admin API.
    let user = json!({ "schemas": [USER], "userName": "dup@msg.test" });
    let (s, _) = app.call("POST", "/scim/v2/Users", Some(&scim), Some(user.clone()));
    assert_eq!(s, 201);
    let (s, v) = app.call("POST", "/scim/v2/Users", Some(&scim), Some(user));
    assert_eq!(s, 409, "{v}");
    bodies.push(v);
    let (s, v) = app.call("POST", "/api/v1/users", Some(&t), Some(json!({ "email": "dup@msg.test" })));
    assert_eq!(s, 409, "{v}");
    bodies.push(v);
    let (s, v) = app.call("POST", "/api/v1/groups", Some(&t), Some(json!({ "name": "G" })));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.call("POST", "/api/v1/groups", Some(&t), Some(json!({ "name": "G" })));
    assert_eq!(s, 409, "{v}");
    bodies.push(v);
    // An invitation used twice explains itself.
    let (s, v) = app.call("POST", "/api/v1/invitations/accept", None, Some(json!({ "token": "pvi_nope" })));
    assert_eq!(s, 404, "{v}");
    assert_eq!(v["error"]["code"], "invitation_not_found", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("already accepted"), "{v}");
    bodies.push(v);
    // Phone not enabled: advice that fits every interface.
    let (s, v) = app.call("POST", "/api/v1/phone/sites", Some(&t), Some(json!({ "name": "London", "code": "2" })));
    assert_eq!(s, 409, "{v}");
    bodies.push(v);
    for b in &bodies {
        let text = b.to_string();
        for leak in ["UNIQUE constraint", "Some(", "Error {", "duplicate key", "PATCH /api"] {
            assert!(!text.contains(leak), "{leak:?} in {text}");
        }
    }
}
