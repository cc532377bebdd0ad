//! The OpenAPI document against the running API: every answer of the list routes has the
//! shape its documented schema states, and the regressions `scripts/openapi-check`
//! (schemathesis) found.

use serde_json::{json, Value};

use crate::harness::TestApp;

/// Resolves a `{"$ref": "#/components/schemas/X"}` in the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// Checks the value against the parts of the schema the document uses for responses:
/// `$ref`, `type` (with `null`), `required`, `properties`, `additionalProperties: false`,
/// `items`, `enum`. Returns the first mismatch, with its JSON path.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    if let Some(any) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Value::as_array) {
        return if any.iter().any(|s| conforms(doc, s, value, at).is_ok()) {
            Ok(())
        } else {
            Err(format!("{at}: {value} matches none of {}", Value::Array(any.clone())))
        };
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty() || types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
    if !fits {
        return Err(format!("{at}: {value} is a {kind}, the schema says {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    match value {
        Value::Object(map) => {
            for r in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !map.contains_key(r) {
                    return Err(format!("{at}: required property {r:?} is missing"));
                }
            }
            for (k, v) in map {
                match schema["properties"].get(k) {
                    Some(p) => conforms(doc, p, v, &format!("{at}.{k}"))?,
                    None if schema["additionalProperties"] == json!(false) => {
                        return Err(format!("{at}: property {k:?} is not in the schema"))
                    }
                    None => {
                        if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                            conforms(doc, extra, v, &format!("{at}.{k}"))?;
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    conforms(doc, item, v, &format!("{at}[{i}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every GET route without path parameters, called by the owner of a master account with
/// a user, a group, a role, a token and a sub account: each 200 answer conforms to the
/// documented 200 schema (the list routes once documented bare arrays while they answer
/// `{"users": […], …}` objects), and every status is a documented one.
#[test]
fn openapi_get_answers_conform_to_their_documented_schemas() {
    let app = TestApp::spawn();
    let a = app.account("Doc Master", "owner@doc.test", true);
    let t = app.admin_token(&a);
    let (s, v) = app.patch("/api/v1/account", &t, json!({ "phone_enabled": true }));
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.post("/api/v1/users", &t, json!({ "email": "ann@doc.test", "first_name": "Ann" }));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.post("/api/v1/groups", &t, json!({ "name": "Sales" }));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.post("/api/v1/roles", &t, json!({ "name": "Helpdesk", "permissions": ["users:view"] }));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.post("/api/v1/sub_accounts", &t, json!({ "name": "Doc Sub", "owner_email": "owner@docsub.test" }));
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.post("/api/v1/phone/sites", &t, json!({ "name": "Main", "code": "1" }));
    assert!(s == 201 || s == 409, "{s} {v}");

    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(s, 200);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let Some(op) = item.get("get") else { continue };
        if !path.starts_with("/api/v1/") || path.contains('{') || path == "/api/v1/openapi.json" {
            continue;
        }
        let (status, body) = app.get(path, &t);
        let documented = &op["responses"][status.to_string()];
        assert!(documented.is_object(), "GET {path} answered {status}, which is not documented: {body}");
        let Some(schema) = documented["content"]["application/json"].get("schema") else { continue };
        if let Err(e) = conforms(&doc, schema, &body, "$") {
            panic!("GET {path} ({status}) does not match its schema: {e}\n{body}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} answers were checked");
}

/// Every path parameter of every operation has a schema (ids are UUIDs), every operation
/// id is unique, and the mirror's `account_id` is a UUID: schemathesis could not generate
/// half the operations before.
#[test]
fn openapi_every_path_parameter_is_typed() {
    let app = TestApp::spawn();
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(s, 200);
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(ids.insert(id.clone()), "operationId {id:?} twice ({method} {path})");
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for name in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                let p = params
                    .iter()
                    .find(|p| p["name"] == name && p["in"] == "path")
                    .unwrap_or_else(|| panic!("{method} {path}: path parameter {name} is not declared"));
                assert_eq!(p["required"], true, "{method} {path} {name}");
                assert_eq!(p["schema"]["type"], "string", "{method} {path} {name}: {p}");
                if name.ends_with("_id") && name != "certificate_id" {
                    assert_eq!(p["schema"]["format"], "uuid", "{method} {path} {name}");
                }
            }
            for p in &params {
                assert!(
                    p["in"] != "path" || path.contains(&format!("{{{}}}", p["name"].as_str().unwrap_or(""))),
                    "{method} {path}: {p} is documented in the path but is not in it"
                );
            }
        }
    }
}

/// Adding a user needs an e-mail address: the document says so (`NewUser`), and the API
/// refuses a body without one with the documented 400.
#[test]
fn openapi_adding_a_user_documents_the_required_email() {
    let app = TestApp::spawn();
    let a = app.account("Doc Users", "owner@docusers.test", false);
    let t = app.admin_token(&a);
    let (_, doc) = app.call("GET", "/api/v1/openapi.json", None, None);
    let body = &doc["paths"]["/api/v1/users"]["post"]["requestBody"]["content"]["application/json"]["schema"];
    let schema = resolve(&doc, body);
    assert!(schema["required"].as_array().is_some_and(|r| r.contains(&json!("email"))), "{schema}");
    assert_eq!(schema["additionalProperties"], false);
    let tiers = &doc["components"]["schemas"]["UserInput"]["properties"]["type"]["enum"];
    assert!(tiers.as_array().is_some_and(|t| t.contains(&json!("business_plus"))), "{tiers}");
    let (s, v) = app.post("/api/v1/users", &t, json!({ "first_name": "No Mail" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("missing_email")), "{v}");
    assert!(doc["paths"]["/api/v1/users"]["post"]["responses"]["400"].is_object());
}

fn post_csv(app: &TestApp, token: &str, path: &str, csv: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body(csv.to_owned())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or_default())
}

/// Found by schemathesis: an empty CSV body, or one whose header cannot be used (no e-mail
/// column), was answered 200 with a report of nothing done. Such a file cannot import a
/// single row: it is refused whole with a 400; a good file still imports.
#[test]
fn openapi_csv_imports_refuse_an_empty_body_or_an_unusable_header() {
    let app = TestApp::spawn();
    let a = app.account("Doc Csv", "owner@doccsv.test", false);
    let t = app.admin_token(&a);
    let (s, v) = app.patch("/api/v1/account", &t, json!({ "phone_enabled": true }));
    assert_eq!(s, 200, "{v}");
    for path in ["/api/v1/users/import", "/api/v1/phone/import", &format!("/api/v1/accounts/{a}/users/import")] {
        for body in ["", "  \n\r\n"] {
            let (s, v) = post_csv(&app, &t, path, body);
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("empty_body")), "{path} {body:?}: {v}");
        }
        for body in ["[null, null]", "name,department\nAnn,Sales\n", "email,Email\nann@doccsv.test,x\n"] {
            let (s, v) = post_csv(&app, &t, path, body);
            assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_csv_header")), "{path} {body:?}: {v}");
        }
    }
    let (s, v) = post_csv(&app, &t, "/api/v1/users/import", "email,first name\nann@doccsv.test,Ann\n");
    assert_eq!((s, v["created"].as_i64()), (200, Some(1)), "{v}");
    // A file without a header whose first row is a user still imports (the header is optional).
    let (s, v) = post_csv(&app, &t, "/api/v1/users/import", "bob@doccsv.test,Bob\n");
    assert_eq!((s, v["created"].as_i64()), (200, Some(1)), "{v}");
    let (s, v) = post_csv(&app, &t, "/api/v1/phone/import", "Email,Extension\nann@doccsv.test,\n");
    assert_eq!(s, 200, "{v}");
}

/// Every success answer that has a body documents its schema, so a client generator gets
/// a type for it (204 and redirects carry none).
#[test]
fn openapi_every_success_answer_with_a_body_has_a_schema() {
    let app = TestApp::spawn();
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(s, 200);
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            for (status, answer) in op["responses"].as_object().into_iter().flatten() {
                if !status.starts_with('2') || status == "204" {
                    continue;
                }
                let has_schema = answer["content"]
                    .as_object()
                    .is_some_and(|c| !c.is_empty() && c.values().all(|m| m.get("schema").is_some()));
                if !has_schema {
                    missing.push(format!("{} {path} {status}", method.to_uppercase()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "success answers without a schema:\n{}", missing.join("\n"));
}
