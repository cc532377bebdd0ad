//! Replays recorded Entra ID and Okta traffic (`tests/fixtures/scim/`, format in its
//! README) against a real server, step by step.

use std::collections::HashMap;

use serde_json::Value;

use crate::harness::TestApp;
use crate::scim::Scim;

fn fill(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}

fn fill_json(v: &Value, vars: &HashMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(fill(s, vars)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_json(x, vars)).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (fill(k, vars), fill_json(x, vars))).collect()),
        other => other.clone(),
    }
}

/// Whether `expected` is contained in `actual` (see the fixtures README).
fn contains(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|x| contains(v, x))),
        (Value::Array(e), Value::Array(a)) => e.len() == a.len() && e.iter().zip(a).all(|(x, y)| contains(x, y)),
        (e, a) => e == a,
    }
}

fn replay(file: &str) {
    let path = format!("{}/tests/fixtures/scim/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fixture: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let app = TestApp::spawn();
    let account = app.account("IdP", "owner@idp.test", false);
    let scim = Scim::new(&app, &account);
    let mut vars: HashMap<String, String> = HashMap::new();
    for (i, step) in fixture["steps"].as_array().expect("steps").iter().enumerate() {
        let req = &step["request"];
        let method = req["method"].as_str().expect("method");
        let url = fill(req["path"].as_str().expect("path"), &vars);
        let headers: Vec<(String, String)> = req["headers"]
            .as_object()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), fill(v.as_str().unwrap_or_default(), &vars))).collect())
            .unwrap_or_default();
        let body = req.get("body").map(|b| fill_json(b, &vars));
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = app.client.request(m, app.url(&format!("/scim/v2{url}"))).bearer_auth(&scim.token);
        let mut typed = false;
        for (k, v) in &headers {
            typed |= k.eq_ignore_ascii_case("content-type");
            r = r.header(k.as_str(), v.as_str());
        }
        if let Some(b) = &body {
            if !typed {
                r = r.header("Content-Type", "application/scim+json");
            }
            r = r.body(b.to_string());
        }
        let resp = r.send().expect("sent");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let actual: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON response") };
        let ctx = format!("{file} step {i}: {method} {url}\n  response {status}: {actual}");

        let expect = &step["response"];
        assert_eq!(Some(u64::from(status)), expect["status"].as_u64(), "{ctx}");
        if let Some(b) = expect.get("body") {
            let want = fill_json(b, &vars);
            assert!(contains(&want, &actual), "{ctx}\n  expected to contain: {want}");
        }
        for ptr in expect["absent"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let ptr = fill(ptr, &vars);
            assert!(actual.pointer(&ptr).is_none(), "{ctx}\n  expected no {ptr}");
        }
        if let Some(caps) = step["capture"].as_object() {
            for (name, ptr) in caps {
                let v = actual
                    .pointer(ptr.as_str().unwrap_or_default())
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{ctx}\n  nothing to capture at {ptr}"));
                vars.insert(name.clone(), v.to_owned());
            }
        }
    }
}

#[test]
fn entra_id_users() {
    replay("entra/users.json");
}

#[test]
fn entra_id_groups() {
    replay("entra/groups.json");
}

#[test]
fn okta_users() {
    replay("okta/users.json");
}

#[test]
fn okta_groups() {
    replay("okta/groups.json");
}
