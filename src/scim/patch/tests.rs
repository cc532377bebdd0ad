#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use super::*;
use crate::scim::schema::{ENTERPRISE_USER_URN, GROUP, PROVISOR_USER_URN, USER, USER_URN};

const ID: &str = "2819c223-7f76-453a-919d-413861904646";

fn user() -> Value {
    json!({
        "schemas": [USER_URN],
        "id": ID,
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "meta": {"resourceType": "User", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"1\""}
    })
}

fn group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": ID, "display": "Babs Jensen", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a"}
        ]
    })
}

fn body(ops: Value) -> PatchRequest {
    PatchRequest::from_json(&json!({"schemas": [PATCH_OP_URN], "Operations": ops})).unwrap()
}

fn run(resource: &Value, schema: &ResourceSchema, ops: Value) -> Result<PatchOutcome, ScimError> {
    apply(resource, &PatchRequest::from_json(&json!({"schemas": [PATCH_OP_URN], "Operations": ops}))?, schema)
}

fn ok_user(ops: Value) -> PatchOutcome {
    run(&user(), &USER, ops).unwrap_or_else(|e| panic!("{e:?}"))
}

fn err_user(ops: Value) -> ScimError {
    run(&user(), &USER, ops).unwrap_err()
}

#[test]
fn request_parsing() {
    let req = body(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "ADD", "path": "emails[type eq \"work\"].value", "value": "x@y.z"},
        {"op": "remove", "path": "members[value eq \"1\"]"},
        {"op": "replace", "value": {"active": false}}
    ]));
    let kinds: Vec<_> = req.operations.iter().map(|o| o.op).collect();
    assert_eq!(kinds, [PatchOpKind::Replace, PatchOpKind::Add, PatchOpKind::Remove, PatchOpKind::Replace]);
    assert!(req.operations[3].path.is_none());
    assert!(PatchRequest::from_slice(br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"operations":[{"op":"remove","path":"title"}]}"#).is_ok());

    let cases: &[(&[u8], &str)] = &[
        (b"{", "invalidSyntax"),
        (b"[]", "invalidSyntax"),
        (br#"{"Operations":[{"op":"add","path":"title","value":"x"}]}"#, "invalidSyntax"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}"#, "invalidSyntax"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[]}"#, "invalidSyntax"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[1]}"#, "invalidSyntax"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"merge","path":"x"}]}"#, "invalidSyntax"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"path":"x"}]}"#, "invalidSyntax"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"title"}]}"#, "invalidValue"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":5,"value":1}]}"#, "invalidPath"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"a..b","value":1}]}"#, "invalidPath"),
        (br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"emails[type eq]","value":1}]}"#, "invalidFilter"),
    ];
    for (raw, ty) in cases {
        let e = PatchRequest::from_slice(raw).unwrap_err();
        assert_eq!(e.scim_type(), *ty, "{}: {e}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn entra_boolean_strings() {
    for (sent, want) in [("False", false), ("false", false), ("TRUE", true)] {
        let out = ok_user(json!([{"op": "Replace", "path": "active", "value": sent}]));
        assert_eq!(out.resource["active"], json!(want));
    }
    let out = ok_user(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(
        out.changes,
        [Change {
            attribute: "active".into(),
            kind: ChangeKind::Set { old: Some(json!(true)), new: Some(json!(false)) }
        }]
    );
    let out = ok_user(json!([{"op": "Replace", "value": {"active": "False", "displayName": "B"}}]));
    assert_eq!(out.resource["active"], json!(false));
    assert_eq!(err_user(json!([{"op": "Replace", "path": "active", "value": "no"}])).scim_type(), "invalidValue");
}

#[test]
fn okta_pathless_replace() {
    let out = ok_user(json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(out.resource["active"], json!(false));
    assert_eq!(out.changes.len(), 1);

    // Okta echoes the id when renaming a group: equal readOnly values are ignored.
    let g = group();
    let out = run(
        &g,
        &GROUP,
        json!([{"op": "replace", "value": {"id": "e9e30dba-f08f-4109-8486-d5c6a331660a", "displayName": "Guides"}}]),
    )
    .unwrap();
    assert_eq!(out.resource["displayName"], "Guides");
    assert_eq!(out.resource["id"], g["id"]);
    let e = run(&g, &GROUP, json!([{"op": "replace", "value": {"id": "other", "displayName": "Guides"}}])).unwrap_err();
    assert_eq!(e.scim_type(), "mutability");
}

#[test]
fn group_members_entra_and_okta() {
    let g = group();
    // Entra ID: add with a value array.
    let out = run(&g, &GROUP, json!([{"op": "Add", "path": "members", "value": [{"value": "id1"}]}])).unwrap();
    assert_eq!(out.resource["members"].as_array().unwrap().len(), 3);
    assert_eq!(
        out.changes,
        [Change {
            attribute: "members".into(),
            kind: ChangeKind::Elements { added: vec![json!({"value": "id1"})], removed: vec![] }
        }]
    );
    // Adding members already present (even with other sub-attributes) is a no-op.
    let out = run(
        &g,
        &GROUP,
        json!([{"op": "Add", "path": "members", "value": [{"value": ID.to_uppercase(), "display": "Someone else"}, {"value": "902c246b-6245-4190-8e05-00816be7344a"}]}]),
    )
    .unwrap();
    assert!(out.is_noop(), "{:?}", out.changes);
    assert_eq!(out.resource, g);

    // Entra ID: remove with a value array and no filter.
    let out =
        run(&g, &GROUP, json!([{"op": "Remove", "path": "members", "value": [{"value": ID}, {"value": "absent"}]}]))
            .unwrap();
    assert_eq!(out.resource["members"], json!([{"value": "902c246b-6245-4190-8e05-00816be7344a"}]));
    let Some(Change { kind: ChangeKind::Elements { added, removed }, .. }) = out.change("members") else { panic!() };
    assert!(added.is_empty());
    assert_eq!(removed.len(), 1);

    // Okta: remove through a value filter; removing an absent member is a no-op.
    let out = run(&g, &GROUP, json!([{"op": "remove", "path": format!("members[value eq \"{ID}\"]")}])).unwrap();
    assert_eq!(out.resource["members"].as_array().unwrap().len(), 1);
    let out = run(&g, &GROUP, json!([{"op": "remove", "path": "members[value eq \"nobody\"]"}])).unwrap();
    assert!(out.is_noop());

    // Okta: add with display.
    let out = run(&g, &GROUP, json!([{"op": "add", "path": "members", "value": [{"value": "u3", "display": "U3"}]}]))
        .unwrap();
    assert_eq!(out.resource["members"][2], json!({"value": "u3", "display": "U3"}));

    // Remove all members, then replace the list.
    let out = run(&g, &GROUP, json!([{"op": "remove", "path": "members"}])).unwrap();
    assert!(out.resource.get("members").is_none());
    let out = run(
        &g,
        &GROUP,
        json!([{"op": "replace", "path": "members", "value": [{"value": "a"}, {"value": "A"}, {"value": "b"}]}]),
    )
    .unwrap();
    assert_eq!(out.resource["members"], json!([{"value": "a"}, {"value": "b"}]));
    let Some(Change { kind: ChangeKind::Elements { added, removed }, .. }) = out.change("members") else { panic!() };
    assert_eq!((added.len(), removed.len()), (2, 2));

    // Member sub-attributes are immutable once set.
    let e =
        run(&g, &GROUP, json!([{"op": "replace", "path": format!("members[value eq \"{ID}\"].value"), "value": "x"}]))
            .unwrap_err();
    assert_eq!(e.scim_type(), "mutability");
    let out = run(&g, &GROUP, json!([{"op": "add", "path": "members[value eq \"902c246b-6245-4190-8e05-00816be7344a\"].display", "value": "Set once"}])).unwrap();
    assert_eq!(out.resource["members"][1]["display"], "Set once");
}

#[test]
fn value_filter_paths() {
    // replace a sub-attribute of the matching values
    let out =
        ok_user(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"}]));
    assert_eq!(out.resource["emails"][0]["value"], "barbara@example.com");
    let Some(Change { kind: ChangeKind::Elements { added, removed }, .. }) = out.change("emails") else { panic!() };
    assert_eq!((added.len(), removed.len()), (1, 1));

    // replace with no match builds the value the filter describes, as Entra ID expects when
    // it sets a work address on a user without one
    let out = ok_user(json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x@y.z"}]));
    let emails = out.resource["emails"].as_array().unwrap();
    assert!(emails.iter().any(|e| *e == json!({"type": "other", "value": "x@y.z"})), "{emails:?}");
    // …but a filter that describes no single value is still noTarget
    let e = err_user(
        json!([{"op": "replace", "path": "emails[type ne \"work\" and type ne \"home\"].value", "value": "x@y.z"}]),
    );
    assert_eq!(e.scim_type(), "noTarget");

    // add with no match builds the element from the filter (Entra ID)
    let out = ok_user(json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"}]));
    assert_eq!(out.resource["phoneNumbers"], json!([{"type": "mobile", "value": "+1 555 0100"}]));
    let out =
        ok_user(json!([{"op": "add", "path": "addresses[type eq \"work\"]", "value": {"locality": "Hollywood"}}]));
    assert_eq!(out.resource["addresses"], json!([{"type": "work", "locality": "Hollywood"}]));
    // …but only for all-`eq` filters
    let e = err_user(json!([{"op": "add", "path": "phoneNumbers[type ne \"mobile\"].value", "value": "1"}]));
    assert_eq!(e.scim_type(), "noTarget");

    // remove the matching values, or a sub-attribute of them
    let out = ok_user(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(out.resource["emails"].as_array().unwrap().len(), 1);
    let out = ok_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert!(out.resource["emails"][0].get("primary").is_none());
    let out = ok_user(json!([{"op": "remove", "path": "emails[value co \"@\"]"}]));
    assert!(out.resource.get("emails").is_none());

    // replace whole matching values
    let out = ok_user(
        json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "new@jensen.org", "type": "home"}}]),
    );
    assert_eq!(out.resource["emails"][1], json!({"value": "new@jensen.org", "type": "home"}));

    // filters against the schema
    assert_eq!(err_user(json!([{"op": "remove", "path": "emails[nope eq \"x\"]"}])).scim_type(), "invalidFilter");
    assert_eq!(err_user(json!([{"op": "remove", "path": "name[givenName eq \"x\"]"}])).scim_type(), "invalidPath");
    assert_eq!(err_user(json!([{"op": "remove", "path": "emails[type eq \"x\"].nope"}])).scim_type(), "invalidPath");
}

#[test]
fn primary_is_exclusive() {
    let out = ok_user(
        json!([{"op": "add", "path": "emails", "value": [{"value": "new@x.org", "type": "other", "primary": true}]}]),
    );
    let emails = out.resource["emails"].as_array().unwrap();
    assert_eq!(emails[0]["primary"], json!(false));
    assert_eq!(emails[2]["primary"], json!(true));

    let out = ok_user(json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]));
    assert_eq!(out.resource["emails"][0]["primary"], json!(false));
    assert_eq!(out.resource["emails"][1]["primary"], json!(true));

    let two = json!([{"op": "add", "path": "emails", "value": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": true}]}]);
    assert_eq!(err_user(two).scim_type(), "invalidValue");
    // Re-adding the current primary changes nothing.
    let out = ok_user(
        json!([{"op": "add", "path": "emails", "value": {"value": "BJENSEN@example.com", "type": "work", "primary": true}}]),
    );
    assert!(out.is_noop(), "{:?}", out.changes);
}

#[test]
fn extensions_and_urn_paths() {
    let out = ok_user(json!([
        {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tour Operations"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "26118915"}
    ]));
    assert_eq!(
        out.resource[ENTERPRISE_USER_URN],
        json!({"department": "Tour Operations", "manager": {"value": "26118915"}})
    );
    assert_eq!(out.resource["schemas"], json!([USER_URN, ENTERPRISE_USER_URN]));
    let names: Vec<&str> = out.changes.iter().map(|c| c.attribute.as_str()).collect();
    assert_eq!(
        names,
        [
            "schemas",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:manager"
        ]
    );

    // path-less add with the extension URN as key merges into the extension
    let out = ok_user(json!([{"op": "add", "value": {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "manager": {"value": "m1"}},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter": "4130",
        "name.givenName": "Babs",
        "schemas": ["ignored"]
    }}]));
    let ext = &out.resource[ENTERPRISE_USER_URN];
    assert_eq!(ext["employeeNumber"], "701984");
    assert_eq!(ext["costCenter"], "4130");
    assert_eq!(ext["manager"]["value"], "m1");
    assert_eq!(out.resource["name"]["givenName"], "Babs");

    // sub-attribute path in an extension; then removing the whole extension
    let with_ext = out.resource.clone();
    let out = run(&with_ext, &USER, json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m2"}])).unwrap();
    assert_eq!(out.resource[ENTERPRISE_USER_URN]["manager"], json!({"value": "m2"}));
    let out = run(
        &with_ext,
        &USER,
        json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]),
    )
    .unwrap();
    assert!(out.resource.get(ENTERPRISE_USER_URN).is_none());
    assert_eq!(out.resource["schemas"], json!([USER_URN]));

    // manager.displayName is readOnly: targeting it is an error, sending it in a value is ignored
    assert_eq!(
        err_user(json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName", "value": "x"}])).scim_type(),
        "mutability"
    );
    let out = ok_user(json!([{"op": "add", "path": "manager", "value": {"value": "m", "displayName": "Boss"}}]));
    assert_eq!(out.resource[ENTERPRISE_USER_URN]["manager"], json!({"value": "m"}));
}

#[test]
fn provisor_extension() {
    let mut u = user();
    u[PROVISOR_USER_URN] = json!({"addons": {"webinar": true}, "provisioningIssues": [{"code": "E1", "message": "m"}]});
    u["schemas"] = json!([USER_URN, PROVISOR_USER_URN]);
    let out = run(&u, &USER, json!([
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons", "value": {"largeMeetings": "True"}},
        {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:userType", "value": "pro"},
        {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:phone.extension", "value": "1234"}
    ])).unwrap();
    let ext = &out.resource[PROVISOR_USER_URN];
    assert_eq!(ext["addons"], json!({"webinar": true, "largeMeetings": true}), "flags merge");
    assert_eq!(ext["userType"], "pro");
    assert_eq!(ext["phone"], json!({"extension": 1234}), "Entra's numeric strings become integers");
    // Unqualified userType is the core attribute.
    let out2 = run(&u, &USER, json!([{"op": "replace", "path": "userType", "value": "Employee"}])).unwrap();
    assert_eq!(out2.resource["userType"], "Employee");

    let out = run(
        &out.resource,
        &USER,
        json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons.webinar"}]),
    )
    .unwrap();
    assert_eq!(out.resource[PROVISOR_USER_URN]["addons"], json!({"largeMeetings": true}));

    // provisioningIssues is readOnly, and survives removal of the whole extension.
    let e = run(&u, &USER, json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:provisioningIssues"}])).unwrap_err();
    assert_eq!(e.scim_type(), "mutability");
    let out =
        run(&u, &USER, json!([{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:provisor:2.0:User"}]))
            .unwrap();
    assert_eq!(out.resource[PROVISOR_USER_URN], json!({"provisioningIssues": [{"code": "E1", "message": "m"}]}));
    assert_eq!(out.resource["schemas"], json!([USER_URN, PROVISOR_USER_URN]));

    // A whole extension object as a client library serialises it, `schemas` included.
    let out = run(
        &u,
        &USER,
        json!([{"op": "replace", "path": PROVISOR_USER_URN,
        "value": {"schemas": [PROVISOR_USER_URN], "userType": "pro"}}]),
    )
    .unwrap();
    assert_eq!(out.resource[PROVISOR_USER_URN]["userType"], "pro");
}

#[test]
fn complex_single_valued_merge() {
    let out = ok_user(json!([{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}]));
    assert_eq!(out.resource["name"], json!({"givenName": "Babs", "familyName": "Jensen"}));
    let out = ok_user(json!([{"op": "Replace", "path": "name.familyName", "value": "Smith"}]));
    assert_eq!(out.resource["name"]["familyName"], "Smith");
    let out = ok_user(json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "name.familyName"}]));
    assert!(out.resource.get("name").is_none());
    let out = ok_user(json!([{"op": "replace", "path": "name", "value": null}]));
    assert!(out.resource.get("name").is_none());
}

#[test]
fn errors_by_scim_type() {
    let cases = [
        (json!([{"op": "remove"}]), "noTarget"),
        (json!([{"op": "remove", "value": {"title": "x"}}]), "noTarget"),
        (json!([{"op": "remove", "path": "userName"}]), "mutability"),
        (json!([{"op": "replace", "path": "userName", "value": null}]), "mutability"),
        (json!([{"op": "replace", "value": {"userName": null}}]), "mutability"),
        (json!([{"op": "replace", "path": "userName", "value": ""}]), "invalidValue"),
        (json!([{"op": "replace", "path": "id", "value": "x"}]), "mutability"),
        (json!([{"op": "replace", "path": "meta.lastModified", "value": "2020-01-01T00:00:00Z"}]), "mutability"),
        (json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]), "mutability"),
        (json!([{"op": "replace", "value": {"meta": {"version": "W/\"2\""}}}]), "mutability"),
        (json!([{"op": "add", "path": "nope", "value": "x"}]), "invalidPath"),
        (json!([{"op": "add", "path": "name.nope", "value": "x"}]), "invalidPath"),
        (json!([{"op": "add", "path": "urn:example:unknown:1.0:User:x", "value": "x"}]), "invalidPath"),
        (json!([{"op": "add", "value": {"nope": "x"}}]), "invalidPath"),
        (
            json!([{"op": "add", "value": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"userName": "x"}}}]),
            "invalidPath",
        ),
        (json!([{"op": "add", "value": "x"}]), "invalidValue"),
        (json!([{"op": "add", "path": "userName", "value": 5}]), "invalidValue"),
        (json!([{"op": "add", "path": "emails", "value": 5}]), "invalidValue"),
        (json!([{"op": "add", "path": "emails", "value": [{"value": "a", "nope": 1}]}]), "invalidValue"),
        (json!([{"op": "add", "path": "name", "value": ["x"]}]), "invalidValue"),
        (json!([{"op": "add", "path": "title", "value": null}]), "invalidValue"),
        (
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": 1}]),
            "invalidValue",
        ),
        // atomic: the first operation is fine, the second fails
        (
            json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "id", "value": "y"}]),
            "mutability",
        ),
    ];
    for (ops, ty) in cases {
        let e = run(&user(), &USER, ops.clone()).unwrap_err();
        assert_eq!(e.scim_type(), ty, "{ops}: {e}");
        assert!(!e.detail().is_empty());
    }
    assert_eq!(
        run(&json!([]), &USER, json!([{"op": "remove", "path": "title"}])).unwrap_err().scim_type(),
        "invalidValue"
    );
}

#[test]
fn noop_and_canonical_keys() {
    let out = ok_user(json!([{"op": "replace", "path": "displayName", "value": "Babs Jensen"}]));
    assert!(out.is_noop());
    assert_eq!(out.resource, user());
    let out = ok_user(
        json!([{"op": "remove", "path": "title"}, {"op": "add", "path": "title", "value": "x"}, {"op": "remove", "path": "title"}]),
    );
    assert!(out.is_noop());

    let mut u = user();
    let v = u.as_object_mut().unwrap().remove("displayName").unwrap();
    u["displayname"] = v;
    let out = run(&u, &USER, json!([{"op": "replace", "path": "DISPLAYNAME", "value": "Babs Jensen"}])).unwrap();
    assert!(out.is_noop());
    assert_eq!(out.resource["displayName"], "Babs Jensen");
    assert!(out.resource.get("displayname").is_none());

    let out = ok_user(json!([{"op": "replace", "path": "TITLE", "value": "Tour Guide"}]));
    assert_eq!(out.resource["title"], "Tour Guide");
    assert_eq!(out.change("title").unwrap().kind, ChangeKind::Set { old: None, new: Some(json!("Tour Guide")) });
}

#[test]
fn multi_valued_sub_attribute_without_filter() {
    let out = ok_user(json!([{"op": "replace", "path": "emails.type", "value": "other"}]));
    assert!(out.resource["emails"].as_array().unwrap().iter().all(|e| e["type"] == "other"));
    let out = ok_user(json!([{"op": "add", "path": "ims.value", "value": "handle"}]));
    assert_eq!(out.resource["ims"], json!([{"value": "handle"}]));
    assert_eq!(
        err_user(json!([{"op": "replace", "path": "emails.primary", "value": true}])).scim_type(),
        "invalidValue"
    );
}

#[test]
fn scalar_coercion() {
    use crate::scim::schema::{Returned, Uniqueness};
    let def = |attr_type| AttributeDef {
        name: "n",
        attr_type,
        multi_valued: false,
        description: "",
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    };
    let int = def(AttrType::Integer);
    assert_eq!(coerce_scalar(&int, &json!(5)).unwrap(), json!(5));
    assert_eq!(coerce_scalar(&int, &json!("7")).unwrap(), json!(7));
    assert!(coerce_scalar(&int, &json!(1.5)).is_err());
    let dec = def(AttrType::Decimal);
    assert_eq!(coerce_scalar(&dec, &json!("1.5")).unwrap(), json!(1.5));
    assert!(coerce_scalar(&dec, &json!("NaN")).is_err());
    let dt = def(AttrType::DateTime);
    assert!(coerce_scalar(&dt, &json!("2011-05-13T04:42:34Z")).is_ok());
    assert!(coerce_scalar(&dt, &json!("yesterday")).is_err());
    assert!(coerce_scalar(&def(AttrType::Binary), &json!(true)).is_err());
}
