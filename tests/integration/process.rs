//! The process harness and its fault hooks: the real binary, killed at a named point right
//! after a commit, keeps what it committed once it is started again.

use provisor::testing::process::ServerProcess;
use provisor::testing::ScratchDb;
use serde_json::{json, Value};

fn call(p: &ServerProcess, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", p.base));
    req = req.bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

#[test]
fn a_process_killed_right_after_a_membership_commit_keeps_it() {
    let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let db = ScratchDb::create(&spec).expect("scratch database");
    let mut server =
        ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &[]).expect("server starts");
    let op = server.operator.clone();
    let (s, acct) =
        call(&server, "POST", "/api/v1/accounts", &op, Some(json!({ "name": "Crash", "owner_email": "o@crash.test" })));
    assert_eq!(s, 201, "{acct}");
    let account = acct["id"].as_str().unwrap().to_owned();
    let base = format!("/api/v1/accounts/{account}");
    let (s, user) = call(&server, "POST", &format!("{base}/users"), &op, Some(json!({ "email": "m@crash.test" })));
    assert_eq!(s, 201, "{user}");
    let (s, group) = call(&server, "POST", &format!("{base}/groups"), &op, Some(json!({ "name": "Crew" })));
    assert_eq!(s, 201, "{group}");
    let (user_id, group_id) = (user["id"].as_str().unwrap(), group["id"].as_str().unwrap());

    // Armed: the process aborts the moment the membership's transaction has committed.
    server.restart(&[("PROVISOR_FAULT", "after_commit:membership")]).expect("restart armed");
    let (s, _) =
        call(&server, "POST", &format!("{base}/groups/{group_id}/members"), &op, Some(json!({ "add": [user_id] })));
    assert_eq!(s, 0, "the request got no answer: the process died after the commit");
    assert!(server.wait_exit(std::time::Duration::from_secs(10)).is_some(), "aborted");
    assert!(server.log_text().contains("aborting at after_commit:membership"), "{}", server.log_text());

    server.restart(&[]).expect("restart");
    let (s, g) = call(&server, "GET", &format!("{base}/groups/{group_id}"), &op, None);
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1), "the committed membership survived: {g}");
}
