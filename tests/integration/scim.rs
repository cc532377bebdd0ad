//! SCIM 2.0 over real HTTP: discovery, errors, the filter grammar, PATCH paths, ETags,
//! Bulk, uniqueness and tenant isolation. Every test runs on the backend the harness
//! picks (SQLite, or PostgreSQL with PROVISOR_TEST_DATABASE).

use serde_json::{json, Value};

use crate::harness::TestApp;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PROVISOR: &str = "urn:ietf:params:scim:schemas:extension:provisor:2.0:User";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM client of one account.
pub struct Scim<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

/// A response: status, ETag and Location headers, JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub etag: Option<String>,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

impl<'a> Scim<'a> {
    pub fn new(app: &'a TestApp, account: &str) -> Scim<'a> {
        Scim { app, token: app.token(account, "scim", None) }
    }

    pub fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.app.client.request(m, self.app.url(&format!("/scim/v2{path}"))).bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/scim+json").body(b.to_string());
        }
        let resp = req.send().expect("request sent");
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (status, etag, location, content_type) =
            (resp.status().as_u16(), header("etag"), header("location"), header("content-type"));
        let text = resp.text().unwrap_or_default();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Resp { status, etag, location, content_type, body }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: Value) -> Resp {
        self.send("POST", path, Some(&body), &[])
    }

    pub fn put(&self, path: &str, body: Value) -> Resp {
        self.send("PUT", path, Some(&body), &[])
    }

    pub fn patch(&self, path: &str, ops: Value) -> Resp {
        self.send("PATCH", path, Some(&json!({ "schemas": [PATCH_OP], "Operations": ops })), &[])
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, None, &[])
    }

    /// Creates a user; returns its id.
    pub fn user(&self, body: Value) -> String {
        let r = self.post("/Users", body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// `userName`s matching a filter, in response order (the account owner, a user of
    /// every account, left out).
    pub fn names(&self, filter: &str, extra: &str) -> Vec<String> {
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("filter", filter).finish();
        let r = self.get(&format!("/Users?{q}{extra}"));
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        let list = r.body["Resources"].as_array().cloned().unwrap_or_default();
        list.iter()
            .map(|u| u["userName"].as_str().unwrap_or_default().to_owned())
            .filter(|n| !n.starts_with("owner@"))
            .collect()
    }
}

pub fn assert_scim_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{}", r.body);
    assert_eq!(r.body["status"], status.to_string(), "{}", r.body);
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
    assert!(r.content_type.as_deref().is_some_and(|c| c.starts_with("application/scim+json")));
}

fn new_user(name: &str) -> Value {
    json!({ "schemas": [USER], "userName": name, "active": true,
            "emails": [{ "value": name, "type": "work", "primary": true }] })
}

#[test]
fn discovery_documents_and_protocol_errors() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);

    let spc = scim.get("/ServiceProviderConfig");
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["bulk"]["maxPayloadSize"], 1024 * 1024);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    let schemas = scim.get("/Schemas");
    let ids: Vec<&str> =
        schemas.body["Resources"].as_array().unwrap().iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, [USER, GROUP, ENTERPRISE, PROVISOR]);
    let provisor = scim.get(&format!("/Schemas/{PROVISOR}"));
    let attrs: Vec<&str> =
        provisor.body["attributes"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    assert_eq!(attrs, ["userType", "addons", "subAccount", "phone", "provisioningIssues"]);
    assert_eq!(scim.get("/ResourceTypes/User").body["schemaExtensions"][0]["schema"], ENTERPRISE);

    assert_scim_error(&scim.get("/Nope"), 404, None);
    assert_scim_error(&scim.get("/Schemas/urn:nope"), 404, None);
    assert_scim_error(&scim.send("DELETE", "/ServiceProviderConfig", None, &[]), 405, None);
    assert_scim_error(&scim.send("PATCH", "/Users", Some(&json!({})), &[]), 405, None);
    assert_scim_error(&scim.get("/Users/does-not-exist"), 404, None);

    // Bodies: bad JSON, wrong types, wrong schema, missing userName, too large, wrong type.
    let raw = |body: &str, ct: &str| {
        let resp = app
            .client
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(&scim.token)
            .header("Content-Type", ct)
            .body(body.to_owned())
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Resp { status, etag: None, location: None, content_type, body: resp.json().unwrap_or(Value::Null) }
    };
    assert_scim_error(&raw("{not json", "application/scim+json"), 400, Some("invalidSyntax"));
    assert_scim_error(&raw("[1,2]", "application/json"), 400, Some("invalidSyntax"));
    assert_scim_error(
        &raw(&json!({"schemas": [USER], "userName": 5}).to_string(), "application/json"),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &raw(&json!({"schemas": [USER], "active": true}).to_string(), "application/json"),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(&raw(&json!({"userName": "x"}).to_string(), "application/json"), 400, Some("invalidSyntax"));
    assert_scim_error(
        &raw(&json!({"schemas": [USER], "userName": "x", "bogus": 1}).to_string(), "application/json"),
        400,
        Some("invalidSyntax"),
    );
    // A non-ASCII key shorter than a URN prefix once panicked the adapter (a byte slice).
    for key in ["abcé", "é", "日本語", "urn:é"] {
        assert_scim_error(
            &raw(&json!({"schemas": [USER], "userName": "x", key: 1}).to_string(), "application/json"),
            400,
            Some("invalidSyntax"),
        );
    }
    assert_scim_error(&raw("userName=x", "application/x-www-form-urlencoded"), 415, None);
    let huge = json!({"schemas": [USER], "userName": "x", "nickName": "n".repeat(2 * 1024 * 1024)}).to_string();
    assert_scim_error(&raw(&huge, "application/scim+json"), 413, None);
    assert_scim_error(
        &scim.send("PATCH", "/Users/x", Some(&json!({"Operations": []})), &[]),
        400,
        Some("invalidSyntax"),
    );
    assert_scim_error(&scim.get("/Users?filter=userName%20eq"), 400, Some("invalidFilter"));
    assert_scim_error(&scim.get("/Users?filter=nope%20eq%201"), 400, Some("invalidFilter"));
    assert_scim_error(&scim.get("/Users?count=many"), 400, Some("invalidValue"));
    // Hostile input is a SCIM error on every backend, never a 500.
    assert_scim_error(
        &scim.post("/Users", json!({"schemas": [USER], "userName": "nul\u{0}"})),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(&scim.get("/Users?filter=userName%20eq%20%22a%00%22"), 400, Some("invalidValue"));
    assert_scim_error(&scim.get("/Users/a%00b"), 404, None);
    assert_scim_error(
        &scim.patch("/Users/x", json!([{"op": "add", "path": "title", "value": "\u{0}"}])),
        400,
        Some("invalidValue"),
    );
    for q in [
        "filter=meta.lastModified%20gt%20%22-200000-01-01T00:00:00Z%22",
        "filter=meta.created%20lt%20%229999-12-31T23:59:59.999999999Z%22",
        "startIndex=9223372036854775807&count=1000",
        "filter=userName%20sw%20%22%25_%5C%22&sortBy=emails.value&sortOrder=descending",
        "filter=emails%5Btype%20eq%20%22work%22%20and%20not%20(value%20co%20%22%25%22)%5D",
    ] {
        let r = scim.get(&format!("/Users?{q}"));
        assert!(r.status == 200 || r.status == 400, "{q}: {} {}", r.status, r.body);
    }

    // Authentication: none, unknown, or an admin token.
    let resp = app.client.get(app.url("/scim/v2/Users")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_eq!(resp.json::<Value>().unwrap()["schemas"], json!([ERROR]));
    let bad = Scim { app: &app, token: "nope".into() };
    assert_scim_error(&bad.get("/Users"), 401, None);
    let admin = Scim { app: &app, token: app.admin_token(&a) };
    assert_scim_error(&admin.get("/Users"), 403, None);
}

#[test]
fn user_lifecycle_through_the_pipeline() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let admin = app.admin_token(&a);

    let r = scim.post(
        "/Users",
        json!({ "schemas": [USER, ENTERPRISE], "userName": "Bjensen@A.test", "externalId": "ext-1",
                "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen"},
                "displayName": "Babs", "title": "Tour Guide", "active": true, "password": "secret",
                "emails": [{"value": "bjensen@a.test", "type": "work", "primary": true}, {"value": "babs@home.test", "type": "home"}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
                ENTERPRISE: {"department": "Tours", "costCenter": "4130", "manager": {"value": "m-1"}} }),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.location.as_deref(), r.body["meta"]["location"].as_str());
    let small = scim.post("/Users?attributes=userName", new_user("small@a.test"));
    assert_eq!(small.status, 201);
    assert!(small.body.get("meta").is_none());
    assert!(small.location.as_deref().is_some_and(|l| l.ends_with(small.body["id"].as_str().unwrap())));
    assert_eq!(small.etag.as_deref(), Some("W/\"1\""));
    assert_eq!(r.etag.as_deref(), Some("W/\"1\""));
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert!(r.body.get("password").is_none());
    assert_eq!(r.body["phoneNumbers"][0]["value"], "+1 555 0100", "attributes without a column round-trip");
    assert_eq!(r.body[ENTERPRISE]["manager"]["value"], "m-1");

    // The pipeline wrote the columns: the admin API sees an active user at once.
    let (s, u) = app.get(&format!("/api/v1/users/{id}"), &admin);
    assert_eq!(s, 200, "{u}");
    assert_eq!((u["status"].as_str(), u["email"].as_str()), (Some("active"), Some("bjensen@a.test")));
    assert_eq!(u["department"], "Tours");
    assert_eq!(u["job_title"], "Tour Guide");

    // Columns win over the stored document.
    let (s, u) = app.call("PATCH", &format!("/api/v1/users/{id}"), Some(&admin), Some(json!({"department": "Sales"})));
    assert_eq!(s, 200, "{u}");
    let got = scim.get(&format!("/Users/{id}"));
    assert_eq!(got.body[ENTERPRISE]["department"], "Sales");
    assert_eq!(got.body[ENTERPRISE]["costCenter"], "4130");
    assert_eq!(got.etag.as_deref(), Some("W/\"2\""));

    // Deactivation is soft: data kept, reactivation restores.
    let r = scim.patch(&format!("/Users/{id}"), json!([{"op": "replace", "value": {"active": false}}]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["title"], "Tour Guide");
    let (_, u) = app.get(&format!("/api/v1/users/{id}"), &admin);
    assert_eq!(u["status"], "inactive");
    let r = scim.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "active", "value": true}]));
    assert_eq!(r.body["active"], true);

    // PUT replaces: what the IdP sent before and omits now is cleared.
    let r = scim.put(
        &format!("/Users/{id}"),
        json!({ "schemas": [USER], "id": id, "userName": "bjensen@a.test", "active": true,
                "emails": [{"value": "barbara@a.test", "type": "work", "primary": true}] }),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.get("title").is_none() && r.body.get("displayName").is_none() && r.body.get("externalId").is_none());
    assert_eq!(r.body["emails"], json!([{"value": "barbara@a.test", "type": "work", "primary": true}]));
    assert!(r.body.get(ENTERPRISE).is_none(), "{}", r.body);
    assert_eq!(scim.names("emails.value eq \"barbara@a.test\"", ""), ["bjensen@a.test"]);
    assert!(scim.names("emails.value eq \"bjensen@a.test\"", "").is_empty(), "the e-mail index follows");

    // A PATCH that changes nothing keeps the version.
    let before = scim.get(&format!("/Users/{id}")).etag;
    let r =
        scim.patch(&format!("/Users/{id}"), json!([{"op": "replace", "path": "userName", "value": "bjensen@a.test"}]));
    assert_eq!(r.status, 200);
    assert_eq!(r.etag, before);

    let r = scim.delete(&format!("/Users/{id}"));
    assert_eq!(r.status, 204);
    assert_scim_error(&scim.get(&format!("/Users/{id}")), 404, None);
    assert_scim_error(&scim.delete(&format!("/Users/{id}")), 404, None);
    let (s, _) = app.get(&format!("/api/v1/users/{id}"), &admin);
    assert_eq!(s, 404);
}

#[test]
fn the_filter_grammar_against_a_known_population() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let people = [
        ("alice", "Alice", Some("E-1"), Some("Engineer"), Some("Eng"), true, vec!["alice@x.test", "al@home.test"]),
        ("bob", "Bob", Some("e-1"), Some("Manager"), Some("Eng"), true, vec!["bob@x.test"]),
        ("carol", "Carol", None, Some("Engineer"), Some("Sales"), false, vec!["carol@y.test"]),
        ("dave", "Dave", Some("E-4"), None, None, true, vec![]),
        ("Eve", "Eve", Some("E-5"), Some("Chief Engineer"), Some("Sales"), true, vec!["EVE@X.test"]),
    ];
    for (name, display, ext, title, dept, active, emails) in &people {
        let mut u =
            json!({ "schemas": [USER, ENTERPRISE], "userName": name, "displayName": display, "active": active });
        if let Some(e) = ext {
            u["externalId"] = json!(e);
        }
        if let Some(t) = title {
            u["title"] = json!(t);
        }
        if let Some(d) = dept {
            u[ENTERPRISE] = json!({"department": d});
        }
        if !emails.is_empty() {
            u["emails"] = emails
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"value": e, "type": if i == 0 { "work" } else { "home" }, "primary": i == 0}))
                .collect();
        }
        scim.user(u);
        app.clock.advance(chrono::Duration::seconds(10));
    }
    let carol_modified = scim.get("/Users?filter=userName%20eq%20%22carol%22").body["Resources"][0]["meta"]
        ["lastModified"]
        .as_str()
        .unwrap()
        .to_owned();

    let table: Vec<(String, Vec<&str>)> = vec![
        (r#"userName eq "ALICE""#.into(), vec!["alice"]),
        (r#"userName ne "alice""#.into(), vec!["bob", "carol", "dave", "Eve"]),
        (r#"userName sw "a" or userName ew "E""#.into(), vec!["alice", "dave", "Eve"]),
        (r#"userName co "o""#.into(), vec!["bob", "carol"]),
        (r#"userName gt "carol""#.into(), vec!["dave", "Eve"]),
        (r#"userName le "bob""#.into(), vec!["alice", "bob"]),
        (r#"externalId eq "E-1""#.into(), vec!["alice"]),
        (r#"externalId eq "e-1""#.into(), vec!["bob"]),
        (r#"externalId pr"#.into(), vec!["alice", "bob", "dave", "Eve"]),
        (r#"not (externalId pr)"#.into(), vec!["carol"]),
        (r#"not (externalId eq "E-1")"#.into(), vec!["bob", "carol", "dave", "Eve"]),
        (r#"externalId co "E-""#.into(), vec!["alice", "dave", "Eve"]),
        (r#"displayName eq "bob""#.into(), vec!["bob"]),
        (r#"emails.value eq "eve@x.test""#.into(), vec!["Eve"]),
        (r#"emails eq "AL@home.test""#.into(), vec!["alice"]),
        (r#"emails.value ew "@x.test""#.into(), vec!["alice", "bob", "Eve"]),
        (r#"emails[type eq "home"]"#.into(), vec!["alice"]),
        (r#"emails[type eq "work" and value co "y.test"]"#.into(), vec!["carol"]),
        (r#"emails pr"#.into(), vec!["alice", "bob", "carol", "Eve"]),
        (r#"active eq false"#.into(), vec!["carol"]),
        (r#"active eq "True" and title co "engineer""#.into(), vec!["alice", "Eve"]),
        (r#"title eq "Engineer" or title eq "Manager""#.into(), vec!["alice", "bob", "carol"]),
        (r#"title pr and not (title sw "Chief")"#.into(), vec!["alice", "bob", "carol"]),
        (r#"department eq "eng""#.into(), vec!["alice", "bob"]),
        (format!(r#"{ENTERPRISE}:department eq "Sales" and userName ne "carol""#), vec!["Eve"]),
        (format!(r#"meta.lastModified gt "{carol_modified}""#), vec!["dave", "Eve"]),
        (format!(r#"meta.lastModified le "{carol_modified}""#), vec!["alice", "bob", "carol"]),
        (format!(r#"meta.created eq "{carol_modified}""#), vec!["carol"]),
        (r#"(userName eq "alice" or userName eq "bob") and (title eq "Manager")"#.into(), vec!["bob"]),
        (r#"userName eq "alice" or (displayName eq "Dave" and not (active eq false))"#.into(), vec!["alice", "dave"]),
        (r#"USERNAME EQ "bob" AND ACTIVE EQ TRUE"#.into(), vec!["bob"]),
        (r#"id eq "not-an-id""#.into(), vec![]),
        (r#"name.givenName pr"#.into(), vec![]),
    ];
    for (filter, expected) in &table {
        assert_eq!(&scim.names(filter, ""), expected, "{filter}");
    }
    // Sorting and paging.
    assert_eq!(
        scim.names("userName pr", "&sortBy=userName&sortOrder=descending"),
        ["Eve", "dave", "carol", "bob", "alice"]
    );
    assert_eq!(scim.names("userName pr", "&sortBy=title"), ["Eve", "alice", "carol", "bob", "dave"]);
    assert_eq!(scim.names("userName pr", "&sortBy=displayName&startIndex=2&count=2"), ["bob", "carol"]);
    // Six users: the five and the account owner.
    let page = scim.get("/Users?startIndex=5&count=2");
    assert_eq!((page.body["totalResults"].as_i64(), page.body["itemsPerPage"].as_i64()), (Some(6), Some(2)));
    assert_eq!(page.body["startIndex"], 5);
    let page = scim.get("/Users?startIndex=6&count=2");
    assert_eq!(page.body["itemsPerPage"], 1);
    let page = scim.get("/Users?count=0");
    assert_eq!(page.body["totalResults"], 6);
    assert_eq!(page.body["Resources"], json!([]));
    let page = scim.get("/Users?filter=title%20co%20%22engineer%22&count=1&startIndex=2&sortBy=userName");
    assert_eq!(page.body["totalResults"], 3);
    assert_eq!(page.body["Resources"][0]["userName"], "carol");

    // attributes / excludedAttributes, and POST /.search.
    let r = scim.get("/Users?filter=userName%20eq%20%22alice%22&attributes=userName,emails.value");
    assert_eq!(
        r.body["Resources"][0],
        json!({"schemas": [USER], "id": r.body["Resources"][0]["id"], "userName": "alice",
        "emails": [{"value": "alice@x.test"}, {"value": "al@home.test"}]})
    );
    let r = scim.get("/Users?filter=userName%20eq%20%22alice%22&excludedAttributes=emails,meta");
    assert!(r.body["Resources"][0].get("emails").is_none() && r.body["Resources"][0].get("meta").is_none());
    assert_eq!(r.body["Resources"][0]["displayName"], "Alice");
    let r = scim.post(
        "/Users/.search",
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "title co \"engineer\"",
               "sortBy": "userName", "attributes": ["userName"], "startIndex": 1, "count": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["totalResults"], 3);
    assert_eq!(
        r.body["Resources"].as_array().unwrap().iter().map(|u| u["userName"].clone()).collect::<Vec<_>>(),
        [json!("alice"), json!("carol")]
    );
    let g = scim.post("/Groups", json!({"schemas": [GROUP], "displayName": "Engineers"}));
    assert_eq!(g.status, 201);
    let r = scim.post(
        "/.search",
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName sw \"e\""}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let kinds: Vec<&str> =
        r.body["Resources"].as_array().unwrap().iter().filter_map(|x| x["meta"]["resourceType"].as_str()).collect();
    assert_eq!(kinds, ["User", "Group"], "Eve, then the group: {}", r.body);
}

#[test]
fn patch_paths_with_value_filters() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let id = scim.user(json!({ "schemas": [USER], "userName": "pat",
        "emails": [{"value": "pat@work.test", "type": "work", "primary": true}, {"value": "pat@home.test", "type": "home"}] }));
    let path = format!("/Users/{id}");

    let r = scim
        .patch(&path, json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "PAT2@work.test"}]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["emails"][0]["value"], "PAT2@work.test");
    assert_eq!(scim.names("emails.value eq \"pat2@work.test\"", ""), ["pat"]);
    let r = scim.patch(&path, json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]));
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 1);
    let r =
        scim.patch(&path, json!([{"op": "add", "path": "emails[type eq \"other\"].value", "value": "pat@other.test"}]));
    assert_eq!(r.body["emails"][1], json!({"type": "other", "value": "pat@other.test"}));
    let r = scim.patch(&path, json!([{"op": "replace", "value": {"name.givenName": "Pat", "displayName": "Pat P", ENTERPRISE: {"division": "North"}}}]));
    assert_eq!((r.body["name"]["givenName"].as_str(), r.body["displayName"].as_str()), (Some("Pat"), Some("Pat P")));
    assert_eq!(r.body[ENTERPRISE]["division"], "North");
    let r =
        scim.patch(&path, json!([{"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "displayName"}]));
    assert!(r.body.get("name").is_none() && r.body.get("displayName").is_none(), "{}", r.body);

    // Errors carry the scimType of the problem.
    // Entra ID's `replace emails[type eq "fax"].value` on a user without one adds it.
    let r =
        scim.patch(&path, json!([{"op": "replace", "path": "emails[type eq \"fax\"].value", "value": "fax@a.test"}]));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.body["emails"].as_array().unwrap().iter().any(|e| e["type"] == "fax" && e["value"] == "fax@a.test"),
        "{}",
        r.body
    );
    assert_scim_error(
        &scim.patch(&path, json!([{"op": "replace", "path": "emails[type ne \"work\" and type ne \"other\" and type ne \"fax\"].value", "value": "x@y.z"}])),
        400,
        Some("noTarget"),
    );
    assert_scim_error(
        &scim.patch(&path, json!([{"op": "replace", "path": "nope", "value": 1}])),
        400,
        Some("invalidPath"),
    );
    assert_scim_error(&scim.patch(&path, json!([{"op": "remove", "path": "userName"}])), 400, Some("mutability"));
    assert_scim_error(
        &scim.patch(&path, json!([{"op": "replace", "path": "id", "value": "x"}])),
        400,
        Some("mutability"),
    );
    assert_scim_error(
        &scim.patch(&path, json!([{"op": "replace", "path": "active", "value": "maybe"}])),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(
        &scim.patch(&path, json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])),
        400,
        Some("invalidFilter"),
    );
    assert_scim_error(&scim.patch(&path, json!([{"op": "remove"}])), 400, Some("noTarget"));
    assert_scim_error(&scim.patch(&path, json!([{"op": "move", "path": "title"}])), 400, Some("invalidSyntax"));

    // Group members: add, remove by filter, remove by value list, replace.
    let u2 = scim.user(new_user("u2@a.test"));
    let u3 = scim.user(new_user("u3@a.test"));
    let g = scim.post("/Groups", json!({"schemas": [GROUP], "displayName": "Team", "members": [{"value": id}]}));
    assert_eq!(g.status, 201, "{}", g.body);
    let gpath = format!("/Groups/{}", g.body["id"].as_str().unwrap());
    let r = scim.patch(
        &gpath,
        json!([{"op": "add", "path": "members", "value": [{"value": u2, "display": "Two"}, {"value": u3}]}]),
    );
    assert_eq!(r.body["members"].as_array().unwrap().len(), 3, "{}", r.body);
    let r = scim.patch(&gpath, json!([{"op": "remove", "path": format!("members[value eq \"{u2}\"]")}]));
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    let r = scim.patch(&gpath, json!([{"op": "remove", "path": "members", "value": [{"value": u3}]}]));
    assert_eq!(
        r.body["members"],
        json!([{"value": id, "$ref": format!("{}/scim/v2/Users/{id}", app.base), "type": "User", "display": "pat"}])
    );
    let r =
        scim.patch(&gpath, json!([{"op": "replace", "path": "members", "value": [{"value": u2, "display": "Two"}]}]));
    assert_eq!(r.body["members"][0]["display"], "Two");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    let user = scim.get(&format!("/Users/{u2}"));
    assert_eq!(user.body["groups"][0]["display"], "Team");
    assert_scim_error(
        &scim.patch(&gpath, json!([{"op": "add", "path": "members", "value": [{"value": "ghost"}]}])),
        400,
        Some("invalidValue"),
    );
    assert_scim_error(&scim.patch(&gpath, json!([{"op": "remove", "path": "displayName"}])), 400, Some("mutability"));
    let r = scim.get(&format!("{gpath}?excludedAttributes=members"));
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Team");

    // Every membership change went to the outbox.
    let events = app
        .state
        .db
        .read_blocking(|c| provisor::store::groups::events(c, &a, 0, 100).map_err(provisor::error::AppError::from))
        .unwrap();
    let summary: Vec<(&str, &str)> = events.iter().map(|e| (e.change.as_str(), e.source.as_str())).collect();
    assert_eq!(summary.len(), 7, "{summary:?}");
    assert!(summary.iter().all(|(_, s)| *s == "scim"));
}

#[test]
fn etags_and_if_match() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let id = scim.user(new_user("race@a.test"));
    let path = format!("/Users/{id}");
    let etag = scim.get(&path).etag.unwrap();
    assert_eq!(scim.send("GET", &path, None, &[("If-None-Match", &etag)]).status, 304);

    // Two updates with the same ETag, at once: exactly one wins, the other gets 412.
    let body = |title: &str| json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": title}]});
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = ["One", "Two"]
            .into_iter()
            .map(|t| {
                let (scim, path, etag, b) = (&scim, &path, &etag, body(t));
                s.spawn(move || scim.send("PATCH", path, Some(&b), &[("If-Match", etag)]).status)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = results.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 412], "{results:?}");
    // Without If-Match, concurrent updates all apply (none fails on the internal version check).
    let plain: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (scim, path) = (&scim, &path);
                s.spawn(move || {
                    scim.patch(path, json!([{"op": "replace", "path": "nickName", "value": format!("n{i}")}])).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(plain, [200, 200, 200, 200]);
    let etag = scim.get(&path).etag.unwrap();
    assert_eq!(etag, "W/\"6\"");
    let stale = scim.send("PUT", &path, Some(&new_user("race@a.test")), &[("If-Match", "W/\"2\"")]);
    assert_scim_error(&stale, 412, None);
    assert_scim_error(&scim.send("DELETE", &path, None, &[("If-Match", "W/\"999\"")]), 412, None);
    let current = scim.get(&path).etag.unwrap();
    assert_eq!(current, etag);
    assert_eq!(scim.send("PUT", &path, Some(&new_user("race@a.test")), &[("If-Match", "*")]).status, 200);

    // Groups too.
    let g = scim.post("/Groups", json!({"schemas": [GROUP], "displayName": "G"}));
    let gpath = format!("/Groups/{}", g.body["id"].as_str().unwrap());
    let add =
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
    let r = scim.send("PATCH", &gpath, Some(&add), &[("If-Match", g.etag.as_deref().unwrap())]);
    assert_eq!((r.status, r.etag.as_deref()), (200, Some("W/\"2\"")));
    assert_scim_error(&scim.send("PATCH", &gpath, Some(&add), &[("If-Match", g.etag.as_deref().unwrap())]), 412, None);
}

#[test]
fn bulk_with_references_and_a_failing_operation() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    scim.user(new_user("taken@a.test"));
    let bulk = |ops: Value, fail: Option<u32>| {
        let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
        if let Some(n) = fail {
            body["failOnErrors"] = json!(n);
        }
        scim.post("/Bulk", body)
    };
    // The group refers to a user declared after it: it waits for it.
    let r = bulk(
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": [GROUP], "displayName": "Bulk", "members": [{"type": "User", "value": "bulkId:u"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": new_user("bulk@a.test")},
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": new_user("TAKEN@a.test")},
            {"method": "PATCH", "path": "/Users/bulkId:u", "data": {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "Bulky"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:dup"},
            {"method": "PUT", "path": "/Nope/1", "data": {}}
        ]),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    let by_id = |b: &str| ops.iter().find(|o| o["bulkId"] == b).cloned().unwrap_or(Value::Null);
    assert_eq!(by_id("u")["status"], "201");
    assert_eq!(by_id("g")["status"], "201");
    assert_eq!(by_id("dup")["status"], "409");
    assert_eq!(by_id("dup")["response"]["scimType"], "uniqueness");
    let statuses: Vec<&str> =
        ops.iter().filter(|o| o.get("bulkId").is_none()).filter_map(|o| o["status"].as_str()).collect();
    assert_eq!(statuses, ["200", "409", "404"], "{}", r.body);
    let group = scim.get(by_id("g")["location"].as_str().unwrap().rsplit_once("/scim/v2").unwrap().1);
    let user = scim.get(by_id("u")["location"].as_str().unwrap().rsplit_once("/scim/v2").unwrap().1);
    assert_eq!(group.body["members"][0]["value"], user.body["id"]);
    assert_eq!(user.body["title"], "Bulky");

    // failOnErrors stops after that many errors; circular references fail.
    let r = bulk(
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": new_user("taken@a.test")},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": new_user("never@a.test")}
        ]),
        Some(1),
    );
    assert_eq!(r.body["Operations"].as_array().unwrap().len(), 1, "{}", r.body);
    assert!(scim.names("userName eq \"never@a.test\"", "").is_empty());
    let r = bulk(
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"schemas": [GROUP], "displayName": "X", "members": [{"value": "bulkId:y"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "y", "data": {"schemas": [GROUP], "displayName": "Y", "members": [{"value": "bulkId:x"}]}}
        ]),
        None,
    );
    let statuses: Vec<&str> =
        r.body["Operations"].as_array().unwrap().iter().filter_map(|o| o["status"].as_str()).collect();
    assert_eq!(statuses, ["409", "409"]);
    assert_scim_error(&scim.post("/Bulk", json!({"Operations": []})), 400, Some("invalidSyntax"));
}

#[test]
fn uniqueness_is_a_scim_conflict() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let b = app.account("B", "owner@b.test", false);
    let (sa, sb) = (Scim::new(&app, &a), Scim::new(&app, &b));
    let id = sa.user(new_user("jo@a.test"));
    assert_scim_error(&sa.post("/Users", json!({"schemas": [USER], "userName": "JO@A.TEST"})), 409, Some("uniqueness"));
    // Same userName in another account is fine; the same e-mail is not (system-wide).
    assert_eq!(sb.post("/Users", json!({"schemas": [USER], "userName": "jo@a.test"})).status, 201);
    assert_scim_error(
        &sb.post(
            "/Users",
            new_user("other@b.test")
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("emails".into(), json!([{"value": "jo@a.test", "primary": true}]));
                    Value::Object(o)
                })
                .unwrap(),
        ),
        409,
        Some("uniqueness"),
    );
    let other = sa.user(new_user("ann@a.test"));
    assert_scim_error(
        &sa.patch(&format!("/Users/{other}"), json!([{"op": "replace", "path": "userName", "value": "Jo@a.test"}])),
        409,
        Some("uniqueness"),
    );
    assert_eq!(sa.post("/Groups", json!({"schemas": [GROUP], "displayName": "Ops"})).status, 201);
    assert_scim_error(&sa.post("/Groups", json!({"schemas": [GROUP], "displayName": "OPS"})), 409, Some("uniqueness"));
    assert_scim_error(&sa.post("/Groups", json!({"schemas": [GROUP]})), 400, Some("invalidValue"));
    assert_scim_error(
        &sa.post(
            "/Groups",
            json!({"schemas": [GROUP], "displayName": "N", "members": [{"value": id, "type": "Group"}]}),
        ),
        400,
        Some("invalidValue"),
    );
}

#[test]
fn a_token_never_reaches_another_account() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let b = app.account("B", "owner@b.test", false);
    let (sa, sb) = (Scim::new(&app, &a), Scim::new(&app, &b));
    let ua = sa.user(new_user("mine@a.test"));
    let ga = sa.post("/Groups", json!({"schemas": [GROUP], "displayName": "Mine", "members": [{"value": ua}]}));
    let ga = ga.body["id"].as_str().unwrap().to_owned();
    let ub = sb.user(new_user("theirs@b.test"));

    for (path, body) in [
        (format!("/Users/{ua}"), new_user("x@b.test")),
        (format!("/Groups/{ga}"), json!({"schemas": [GROUP], "displayName": "pwned"})),
    ] {
        assert_scim_error(&sb.get(&path), 404, None);
        assert_scim_error(&sb.put(&path, body), 404, None);
        assert_scim_error(
            &sb.patch(&path, json!([{"op": "replace", "path": "displayName", "value": "pwned"}])),
            404,
            None,
        );
        assert_scim_error(&sb.delete(&path), 404, None);
    }
    assert!(sb.names(&format!("id eq \"{ua}\""), "").is_empty());
    assert!(sb.names("userName eq \"mine@a.test\"", "").is_empty());
    assert_eq!(sb.get("/Users").body["totalResults"], 2, "their user and their owner");
    assert_eq!(sb.get("/Groups").body["totalResults"], 0);
    let r = sb.post("/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}));
    assert_eq!(r.body["totalResults"], 2);
    // A foreign user cannot be made a member, nor found through a group filter.
    assert_scim_error(
        &sb.post("/Groups", json!({"schemas": [GROUP], "displayName": "Steal", "members": [{"value": ua}]})),
        400,
        Some("invalidValue"),
    );
    let r = sb.get(&format!("/Groups?filter=members.value%20eq%20%22{ua}%22"));
    assert_eq!(r.body["totalResults"], 0);
    let r = sb.post(
        "/Bulk",
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "DELETE", "path": format!("/Users/{ua}")}]}),
    );
    assert_eq!(r.body["Operations"][0]["status"], "404");
    assert_eq!(sa.get(&format!("/Users/{ua}")).status, 200);
    assert_eq!(sa.get(&format!("/Users/{ub}")).status, 404);
}

#[test]
fn the_product_extension_reports_what_it_could_not_apply() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    app.purchase(&a, "pro", 1);
    let scim = Scim::new(&app, &a);
    let admin = app.admin_token(&a);
    let body = |name: &str| {
        json!({"schemas": [USER, PROVISOR], "userName": name,
               PROVISOR: {"userType": "Pro", "addons": {"webinar": true}, "subAccount": "EU"}})
    };
    let first = scim.post("/Users", body("p1@a.test"));
    assert_eq!(first.status, 201, "{}", first.body);
    let second = scim.post(
        "/Users?attributes=userName,urn:ietf:params:scim:schemas:extension:provisor:2.0:User:provisioningIssues",
        body("p2@a.test"),
    );
    let issues = second.body[PROVISOR]["provisioningIssues"].as_array().cloned().unwrap_or_default();
    let codes: Vec<&str> = issues.iter().filter_map(|i| i["code"].as_str()).collect();
    assert_eq!(codes, ["no_seat_left", "no_seat_left"], "{}", second.body);
    // What was asked for stays visible; the admin API shows what was applied.
    let p2 = scim.get(&format!("/Users/{}", second.body["id"].as_str().unwrap()));
    assert_eq!(p2.body[PROVISOR]["userType"], "Pro");
    assert!(p2.body[PROVISOR].get("provisioningIssues").is_none(), "returned on request only");
    let (_, u1) = app.get(&format!("/api/v1/users/{}", first.body["id"].as_str().unwrap()), &admin);
    let (_, u2) = app.get(&format!("/api/v1/users/{}", second.body["id"].as_str().unwrap()), &admin);
    assert_eq!((u1["type"].as_str(), u2["type"].as_str()), (Some("pro"), Some("basic")));
    let found = scim.names(&format!("{PROVISOR}:provisioningIssues.code eq \"no_seat_left\""), "");
    assert_eq!(found, ["p1@a.test", "p2@a.test"], "the webinar add-on has no seat either");
    assert_scim_error(
        &scim.post(
            "/Users",
            json!({"schemas": [USER, PROVISOR], "userName": "bad@a.test", PROVISOR: {"userType": "Platinum"}}),
        ),
        400,
        Some("invalidValue"),
    );

    // Users that never came through SCIM show their applied state.
    let (s, u) = app.post("/api/v1/users", &admin, json!({"email": "invited@a.test", "first_name": "In"}));
    assert_eq!(s, 201, "{u}");
    let r = scim.get(&format!("/Users/{}", u["id"].as_str().unwrap()));
    assert_eq!(r.body[PROVISOR]["userType"], "basic");
    assert_eq!(r.body["emails"][0]["value"], "invited@a.test");
    assert_eq!(r.body["name"]["givenName"], "In");
}

#[test]
fn a_put_without_active_keeps_the_status_and_the_response_states_it() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let id = scim.user(new_user("kim@a.test"));
    let path = format!("/Users/{id}");
    let r = scim.patch(&path, json!([{ "op": "replace", "path": "active", "value": false }]));
    assert_eq!((r.status, &r.body["active"]), (200, &json!(false)), "{:?}", r.body);
    // Entra ID and others PUT the whole user without `active`: it stays deactivated.
    let r = scim.put(
        &path,
        json!({ "schemas": [USER], "userName": "kim@a.test", "displayName": "Kim",
                                     "emails": [{ "value": "kim@a.test", "type": "work", "primary": true }] }),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["active"], false, "the PUT response states active: {:?}", r.body);
    assert_eq!(scim.get(&path).body["active"], false);
    // Saying it reactivates.
    let r = scim.put(&path, json!({ "schemas": [USER], "userName": "kim@a.test", "active": true }));
    assert_eq!((r.status, &r.body["active"]), (200, &json!(true)), "{:?}", r.body);
}

#[test]
fn a_users_etag_changes_when_its_groups_do() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let uid = scim.user(new_user("ned@a.test"));
    let path = format!("/Users/{uid}");
    let etag = |scim: &Scim| scim.get(&path).etag.expect("etag");
    let e0 = etag(&scim);
    let g = scim.post("/Groups", json!({ "schemas": [GROUP], "displayName": "Eng" }));
    assert_eq!(g.status, 201, "{:?}", g.body);
    let gid = g.body["id"].as_str().unwrap().to_owned();
    let gpath = format!("/Groups/{gid}");
    let mut seen = vec![e0.clone()];
    let mut step = |what: &str, r: Resp| {
        assert!(r.status < 300, "{what}: {:?}", r.body);
        let e = etag(&scim);
        assert!(!seen.contains(&e), "{what}: the ETag did not change ({e})");
        seen.push(e.clone());
        // A conditional GET with the old ETag is no longer 304.
        let old = seen[seen.len() - 2].clone();
        assert_eq!(scim.send("GET", &path, None, &[("If-None-Match", &old)]).status, 200, "{what}");
        scim.get(&path).body
    };
    let u = step("added", scim.patch(&gpath, json!([{ "op": "add", "path": "members", "value": [{ "value": uid }] }])));
    assert_eq!(u["groups"][0]["display"], "Eng", "{u}");
    let u =
        step("renamed", scim.patch(&gpath, json!([{ "op": "replace", "path": "displayName", "value": "Platform" }])));
    assert_eq!(u["groups"][0]["display"], "Platform", "{u}");
    let u = step(
        "removed",
        scim.patch(&gpath, json!([{ "op": "remove", "path": format!("members[value eq \"{uid}\"]") }])),
    );
    assert!(u["groups"].as_array().is_none_or(|g| g.is_empty()), "{u}");
    let _ =
        step("re-added", scim.patch(&gpath, json!([{ "op": "add", "path": "members", "value": [{ "value": uid }] }])));
    let u = step("group deleted", scim.delete(&gpath));
    assert!(u["groups"].as_array().is_none_or(|g| g.is_empty()), "{u}");
}

#[test]
fn deeply_nested_filters_are_answered_never_a_500() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    scim.user(new_user("deep@a.test"));
    for depth in [44usize, 60] {
        // An even number of `not`s: the filter means userName eq "deep@a.test".
        let depth = depth - depth % 2;
        let filter = format!("{}userName eq \"deep@a.test\"{}", "not (".repeat(depth), ")".repeat(depth));
        let r = scim.get(&format!("/Users?filter={}", url_encode(&filter)));
        assert_eq!(r.status, 200, "depth {depth}: {:?}", r.body);
        assert_eq!(r.body["totalResults"], 1, "depth {depth}: {:?}", r.body);
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn user_names_are_unique_in_their_normalized_form_and_invisible_characters_are_refused() {
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let scim = Scim::new(&app, &a);
    let nfc = "Jos\u{e9}@a.test";
    let nfd = "Jose\u{301}@a.test";
    assert_eq!(scim.post("/Users", json!({ "schemas": [USER], "userName": nfc })).status, 201);
    assert_scim_error(&scim.post("/Users", json!({ "schemas": [USER], "userName": nfd })), 409, Some("uniqueness"));
    assert_eq!(scim.post("/Users", json!({ "schemas": [USER], "userName": "ANN" })).status, 201);
    assert_scim_error(
        &scim.post("/Users", json!({ "schemas": [USER], "userName": "\u{ff21}\u{ff2e}\u{ff2e}" })),
        409,
        Some("uniqueness"),
    );
    // A lookup in any of the forms finds the one user.
    let found = scim.names(&format!("userName eq \"{nfd}\""), "");
    assert_eq!(found.len(), 1, "{found:?}");
    for bad in ["a\u{200b}b@a.test", "\u{202e}moc.a@b", "tab\tname"] {
        let r = scim.post("/Users", json!({ "schemas": [USER], "userName": bad }));
        assert_eq!(r.status, 400, "{bad:?}: {:?}", r.body);
    }
}

#[test]
fn gzip_encoded_bodies_are_read() {
    use std::io::Write;
    let app = TestApp::spawn();
    let a = app.account("A", "owner@a.test", false);
    let token = app.token(&a, "scim", None);
    let post_gzip = |parts: &[&[u8]]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for p in parts {
            gz.write_all(p).unwrap();
        }
        app.client
            .post(app.url("/scim/v2/Users"))
            .bearer_auth(&token)
            .header("Content-Type", "application/scim+json")
            .header("Content-Encoding", "gzip")
            .body(gz.finish().unwrap())
            .send()
            .unwrap()
    };
    let body = serde_json::to_vec(&new_user("zip@a.test")).unwrap();
    let r = post_gzip(&[&body]);
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().unwrap();
    assert_eq!(v["userName"], "zip@a.test", "{v}");
    // A bomb is cut at the decoded limit: 4 MiB of one letter compress to a few KiB.
    let filler = vec![b'a'; 4 * 1024 * 1024];
    let r =
        post_gzip(&[b"{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"", &filler, b"\"}"]);
    assert_eq!(r.status().as_u16(), 413);
}

/// A body that stops arriving half-way is answered 408 once the idle timeout passes (SCIM
/// in SCIM's error format), and the connection closes; the worker is free for others.
#[test]
fn a_body_that_stops_arriving_times_out_with_408() {
    use std::io::{Read, Write};
    let app = TestApp::spawn_configured(&|c| c.body_idle_timeout = std::time::Duration::from_secs(1));
    let a = app.account("A", "owner@a.test", false);
    let scim = app.token(&a, "scim", None);
    let admin = app.admin_token(&a);
    let addr = app.base.trim_start_matches("http://").to_owned();
    for (path, token, content_type) in
        [("/scim/v2/Users", &scim, "application/scim+json"), ("/api/v1/users", &admin, "application/json")]
    {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let started = std::time::Instant::now();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: 200\r\n\r\n{{\"userName\": \"slow"
        )
        .unwrap();
        let mut answer = String::new();
        // The server closes the connection after answering: read to the end.
        let _ = s.read_to_string(&mut answer);
        let waited = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(answer.contains("body_timeout") || answer.contains(ERROR), "{path}: {answer}");
        if path.starts_with("/scim") {
            assert!(answer.contains(ERROR), "{path}: {answer}");
        }
        assert!(waited < std::time::Duration::from_secs(15), "{path}: answered after {waited:?}");
    }
    // Nothing was created and the server still answers.
    let (s, v) = app.call("GET", "/scim/v2/Users?filter=userName%20sw%20%22slow%22", Some(&scim), None);
    assert_eq!((s, v["totalResults"].clone()), (200, json!(0)), "{v}");
}
