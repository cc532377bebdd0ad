//! Model-based property test: random sequences of SCIM operations (create, PATCH `active`,
//! PUT with or without `active`, group membership add/remove, delete) run against the
//! server; after every step each user read back must agree with a small model — its
//! `active`, its `groups` — and its ETag must change exactly when its representation does.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::harness::TestApp;
use crate::scim::{Scim, GROUP, PATCH_OP, USER};

const USERS: usize = 4;
const GROUPS: [&str; 2] = ["Red", "Blue"];

#[derive(Debug, Clone)]
enum Op {
    Create(usize),
    SetActive(usize, bool),
    Put(usize, Option<bool>),
    Join(usize, usize),
    Leave(usize, usize),
    Delete(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..USERS;
    let g = 0..GROUPS.len();
    prop_oneof![
        3 => u.clone().prop_map(Op::Create),
        2 => (u.clone(), any::<bool>()).prop_map(|(i, a)| Op::SetActive(i, a)),
        2 => (u.clone(), proptest::option::of(any::<bool>())).prop_map(|(i, a)| Op::Put(i, a)),
        3 => (u.clone(), g.clone()).prop_map(|(i, g)| Op::Join(i, g)),
        2 => (u.clone(), g).prop_map(|(i, g)| Op::Leave(i, g)),
        1 => u.prop_map(Op::Delete),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelUser {
    id: String,
    active: bool,
    groups: BTreeSet<String>,
}

/// The representation without `meta` (which carries the version itself).
fn representation(body: &Value) -> Value {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.remove("meta");
    }
    b
}

fn run(app: &TestApp, case: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    // A fresh account per case on one server: cases cost requests, not databases.
    let a = app.account(&format!("Model {case}"), &format!("owner@model{case}.test"), false);
    let scim = Scim::new(app, &a);
    let mut group_ids = Vec::new();
    for g in GROUPS {
        let r = scim.post("/Groups", json!({ "schemas": [GROUP], "displayName": g }));
        prop_assert_eq!(r.status, 201);
        group_ids.push(r.body["id"].as_str().unwrap_or_default().to_owned());
    }
    let mut model: BTreeMap<usize, ModelUser> = BTreeMap::new();
    let mut seen: BTreeMap<String, (String, Value)> = BTreeMap::new();
    let name = |i: usize| format!("u{i}@model{case}.test");
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Create(i) => {
                let r = scim.post("/Users", json!({ "schemas": [USER], "userName": name(*i), "active": true }));
                if model.contains_key(i) {
                    prop_assert_eq!(r.status, 409, "step {}: duplicate create", step);
                } else {
                    prop_assert_eq!(r.status, 201, "step {}: {}", step, r.body);
                    let id = r.body["id"].as_str().unwrap_or_default().to_owned();
                    model.insert(*i, ModelUser { id, active: true, groups: BTreeSet::new() });
                }
            }
            Op::SetActive(i, active) => {
                let Some(u) = model.get_mut(i) else { continue };
                let r = scim.patch(
                    &format!("/Users/{}", u.id),
                    json!([{ "op": "replace", "path": "active", "value": active }]),
                );
                prop_assert_eq!(r.status, 200, "step {}: {}", step, r.body);
                u.active = *active;
            }
            Op::Put(i, active) => {
                let Some(u) = model.get_mut(i) else { continue };
                let mut body = json!({ "schemas": [USER], "userName": name(*i) });
                if let Some(a) = active {
                    body["active"] = json!(a);
                    u.active = *a;
                }
                let r = scim.put(&format!("/Users/{}", u.id), body);
                prop_assert_eq!(r.status, 200, "step {}: {}", step, r.body);
            }
            Op::Join(i, g) | Op::Leave(i, g) => {
                let Some(u) = model.get_mut(i) else { continue };
                let join = matches!(op, Op::Join(..));
                let ops = if join {
                    json!([{ "op": "add", "path": "members", "value": [{ "value": u.id }] }])
                } else {
                    json!([{ "op": "remove", "path": format!("members[value eq \"{}\"]", u.id) }])
                };
                let r = scim.send(
                    "PATCH",
                    &format!("/Groups/{}", group_ids[*g]),
                    Some(&json!({ "schemas": [PATCH_OP], "Operations": ops })),
                    &[],
                );
                prop_assert!(r.status == 200 || r.status == 204, "step {}: {} {}", step, r.status, r.body);
                if join {
                    u.groups.insert(GROUPS[*g].to_owned());
                } else {
                    u.groups.remove(GROUPS[*g]);
                }
            }
            Op::Delete(i) => {
                let Some(u) = model.remove(i) else { continue };
                prop_assert_eq!(scim.delete(&format!("/Users/{}", u.id)).status, 204, "step {}", step);
                prop_assert_eq!(scim.get(&format!("/Users/{}", u.id)).status, 404, "step {}", step);
                seen.remove(&u.id);
            }
        }
        // Every user agrees with the model, and its ETag moves with its representation.
        for u in model.values() {
            let r = scim.get(&format!("/Users/{}", u.id));
            prop_assert_eq!(r.status, 200);
            let active = r.body.get("active").and_then(Value::as_bool).unwrap_or(true);
            prop_assert_eq!(active, u.active, "step {} ({:?}): active of {}: {}", step, op, u.id, r.body);
            let groups: BTreeSet<String> = r.body["groups"]
                .as_array()
                .map(|g| g.iter().filter_map(|x| x["display"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            prop_assert_eq!(&groups, &u.groups, "step {} ({:?}): groups of {}", step, op, u.id);
            let etag = r.etag.clone().unwrap_or_default();
            let now = representation(&r.body);
            if let Some((old_etag, old)) = seen.get(&u.id) {
                if *old != now {
                    prop_assert_ne!(old_etag, &etag, "step {} ({:?}): representation changed, ETag did not", step, op);
                }
                if *old_etag == etag {
                    prop_assert_eq!(old, &now, "step {} ({:?}): same ETag, other representation", step, op);
                }
            }
            seen.insert(u.id.clone(), (etag, now));
        }
    }
    Ok(())
}

#[test]
fn random_scim_operations_agree_with_the_model() {
    let app = TestApp::spawn();
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).map_or(12, |c: u32| c.min(48));
    let config = ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let case = std::cell::Cell::new(0usize);
    let outcome = runner.run(&prop::collection::vec(op(), 1..18), |ops| {
        case.set(case.get() + 1);
        run(&app, case.get(), &ops)
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
