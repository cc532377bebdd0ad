//! The README walkthrough, executed: its mapping document is stored and works, every verb
//! and flag of its CLI synopsis exists, and its local SAML walkthrough signs someone in. The
//! blocks are read from README.md itself, so the README cannot drift from the behaviour.

use serde_json::{json, Value};

use crate::harness::TestApp;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The fenced blocks (`lang`) of the README section `heading`, in order.
fn blocks(heading: &str, lang: &str) -> Vec<String> {
    let text = readme();
    let start = text.find(&format!("\n## {heading}\n")).unwrap_or_else(|| panic!("README has no section {heading}"));
    let rest = &text[start + heading.len() + 4..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut out = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("```{lang}") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(body.join("\n"));
        }
    }
    assert!(!out.is_empty(), "no ```{lang} block in README section {heading}");
    out
}

fn provisor(app: &TestApp, args: &[String], public_url: &str) -> (i32, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PROVISOR_DATABASE_URL", &app.database_url)
        .env("PROVISOR_PUBLIC_URL", public_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("provisor runs");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn the_readme_mapping_document_is_accepted_and_works() {
    let doc: Value = serde_json::from_str(&blocks("Mapping rules", "json")[0]).expect("the README's rules are JSON");
    let app = TestApp::spawn();
    let a = app.account("Readme", "owner@readme.test", true);
    let t = app.admin_token(&a);
    // What the document names must exist first (README: "create them first").
    let (s, v) = app.call("PATCH", "/api/v1/account", Some(&t), Some(json!({ "phone_enabled": true })));
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.call("POST", "/api/v1/phone/sites", Some(&t), Some(json!({ "name": "London", "code": "2" })));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.call("POST", "/api/v1/groups", Some(&t), Some(json!({ "name": "Employees" })));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.call(
        "POST",
        "/api/v1/sub_accounts",
        Some(&t),
        Some(json!({ "name": "Healthcare", "owner_email": "owner@health.test" })),
    );
    assert_eq!(s, 201, "{v}");
    for (product, n) in [("pro", 10), ("business", 10), ("enterprise", 10), ("webinar", 10)] {
        let path = format!("/api/v1/accounts/{a}/licenses/{product}");
        let (s, v) = app.call("PUT", &path, Some(&app.operator), Some(json!({ "quantity": n })));
        assert_eq!(s, 200, "{product}: {v}");
    }
    let (s, v) = app.call("PUT", "/api/v1/mapping", Some(&t), Some(doc));
    assert_eq!(s, 200, "the README's mapping document: {v}");
    // A SCIM push of a salesperson: Business (the department rule), in Employees (the
    // negated contractors rule).
    let scim = app.token(&a, "scim", None);
    let (s, u) = app.call(
        "POST",
        "/scim/v2/Users",
        Some(&scim),
        Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                                 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                     "userName": "sam@readme.test",
                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Sales" } })),
    );
    assert_eq!(s, 201, "{u}");
    let groups: Vec<&str> = u["groups"].as_array().unwrap().iter().map(|g| g["display"].as_str().unwrap()).collect();
    assert_eq!(groups, ["Employees"], "{u}");
    let id = u["id"].as_str().unwrap();
    let (s, user) = app.call("GET", &format!("/api/v1/users/{id}"), Some(&t), None);
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["type"], "business", "{user}");
}

#[test]
fn every_verb_and_flag_of_the_cli_synopsis_exists() {
    let app = TestApp::spawn();
    let synopsis = blocks("CLI", "sh").join("\n");
    let mut commands: Vec<Vec<String>> = Vec::new();
    for line in synopsis.lines() {
        let line = line.split(" # ").next().unwrap_or("").split("  #").next().unwrap_or("");
        let tokens: Vec<&str> = line.split_whitespace().collect();
        for (i, tok) in tokens.iter().enumerate() {
            if *tok == "provisor" {
                let rest: Vec<String> =
                    tokens[i + 1..].iter().take_while(|t| **t != "provisor").map(|t| t.to_string()).collect();
                commands.push(rest);
            } else if i == 0 && tok.starts_with('[') {
                // A continuation line of the command above: its flags belong to it.
                if let Some(last) = commands.last_mut() {
                    last.extend(tokens.iter().map(|t| t.to_string()));
                }
                break;
            }
        }
    }
    assert!(commands.len() >= 20, "the synopsis lists the verbs: {commands:?}");
    for cmd in commands {
        let verbs: Vec<String> = cmd
            .iter()
            .take_while(|t| t.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !t.starts_with('-'))
            .cloned()
            .collect();
        let mut args = verbs.clone();
        args.push("--help".into());
        let (code, _, _) = provisor(&app, &args, "http://127.0.0.1:8080");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor")).args(&args).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(code, 0, "`provisor {}` from the README does not exist", verbs.join(" "));
        for flag in cmd.iter().flat_map(|t| t.split(['[', ']', '|', '='])).filter(|t| t.starts_with("--")) {
            let flag = flag.trim_end_matches('…').trim_end_matches(',');
            assert!(help.contains(flag), "`provisor {}` has no {flag} (README synopsis)", verbs.join(" "));
        }
    }
}

#[test]
fn the_readme_saml_walkthrough_signs_someone_in() {
    let app = TestApp::spawn();
    let a = app.account("Walk", "owner@walk.test", false);
    let block = blocks("SAML 2.0 single sign-on", "sh").pop().unwrap();
    let host = app.base.trim_start_matches("http://").to_owned();
    let script = block.replace("\\\n", " ").replace("127.0.0.1:8080", &host).replace("/ID/", &format!("/{a}/"));
    let script = script.replace("--account ID", &format!("--account {a}"));
    let lines: Vec<&str> = script.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 3, "sso set, test-idp, curl: {lines:?}");
    let words = |l: &str| -> Vec<String> { l.split_whitespace().skip(1).map(str::to_owned).collect() };
    // 1. provisor sso set …
    let (code, v, err) = provisor(&app, &words(lines[0]), &app.base);
    assert_eq!(code, 0, "{}: {err}", lines[0]);
    assert_eq!(v["acs_url"], format!("{}/saml/{a}/acs", app.base), "{v}");
    // 2. R=$(provisor test-idp … | jq -r .saml_response)
    let signer = lines[1].trim_start_matches("R=$(").split(" | jq").next().unwrap();
    let (code, v, err) = provisor(&app, &words(signer), &app.base);
    assert_eq!(code, 0, "{signer}: {err}");
    let response = v["saml_response"].as_str().expect("test-idp prints saml_response").to_owned();
    // 3. curl -si URL -H 'Accept: application/json' --data-urlencode "SAMLResponse=$R"
    let url = lines[2].split_whitespace().find(|w| w.starts_with("http")).unwrap();
    let r = app
        .client
        .post(url)
        .header("Accept", "application/json")
        .form(&[("SAMLResponse", response.as_str())])
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["email"], "jane.doe@example.com", "{body}");
}

#[test]
fn the_reference_names_every_product_and_permission() {
    use provisor::domain::authz::Permission;
    use provisor::domain::catalog::{AddOn, CallingPlan, UserTier};
    let text = readme();
    let reference = blocks_section(&text, "Reference");
    let mut names: Vec<String> = UserTier::ALL.iter().map(|t| t.as_str().to_owned()).collect();
    names.extend(AddOn::ALL.iter().map(|a| a.as_str().to_owned()));
    names.extend(CallingPlan::ALL.iter().map(|p| p.as_str().to_owned()));
    for n in names {
        assert!(reference.contains(&format!("`{n}`")), "README's Reference does not list {n}");
    }
    // Every area of the permission catalogue is named where the README lists it.
    for p in Permission::catalogue() {
        let area = p.name();
        let area = area.split(':').next().unwrap();
        assert!(text.contains(&format!("`{area}`")), "README does not name the area {area}");
    }
}

fn blocks_section(text: &str, heading: &str) -> String {
    let start = text.find(&format!("\n## {heading}\n")).expect("section");
    let rest = &text[start + 1..];
    rest[..rest[3..].find("\n## ").map(|i| i + 3).unwrap_or(rest.len())].to_owned()
}
