//! SAML SSO over real HTTP: configuration (API and CLI), IdP- and SP-initiated logins
//! signed by the test IdP in Okta, Entra ID and AD FS shapes, JIT provisioning through the
//! pipeline, sessions, the replay cache (also under concurrent posts), and refusals with
//! their audit entries.

use std::sync::OnceLock;

use base64::Engine as _;
use provisor::saml::authn_request::decode_redirect;
use provisor::saml::test_idp::{IdpShape, ResponseSpec, SigningKey, SpecAttribute, TestIdp};
use serde_json::{json, Value};

use crate::harness::{cli, line, TestApp};

fn idp() -> &'static TestIdp {
    static IDP: OnceLock<TestIdp> = OnceLock::new();
    IDP.get_or_init(|| provisor::testing::fixture_idp().expect("idp-fixtures load"))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(provisor::testing::fixtures_dir().join(name)).expect("fixture")
}

fn b64(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml.as_bytes())
}

/// A client that does not follow redirects (the Location is what is tested).
fn browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

struct Sso {
    account: String,
    token: String,
    entity_id: String,
    acs_url: String,
}

/// An account whose SSO trusts the shape's metadata (idp-a and idp-b).
fn configure(app: &TestApp, shape: IdpShape, extra: Value) -> Sso {
    let account = app.account("Acme", &format!("owner-{}@acme.test", uuid::Uuid::new_v4()), true);
    configure_account(app, &account, shape, extra)
}

fn configure_account(app: &TestApp, account: &str, shape: IdpShape, extra: Value) -> Sso {
    let token = app.admin_token(account);
    let mut body = json!({ "idp_metadata": fixture(shape.metadata_file().expect("metadata")) });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let (s, v) = app.put("/api/v1/sso", &token, body);
    assert_eq!(s, 200, "{v}");
    Sso {
        account: account.to_owned(),
        token,
        entity_id: v["sp_entity_id"].as_str().expect("sp_entity_id").to_owned(),
        acs_url: v["acs_url"].as_str().expect("acs_url").to_owned(),
    }
}

fn spec(shape: IdpShape, sso: &Sso) -> ResponseSpec {
    ResponseSpec::new(shape, &sso.entity_id, &sso.acs_url)
}

/// Posts a SAMLResponse to the ACS; returns status, headers and body (JSON when asked).
fn post_acs(
    app: &TestApp,
    acs_url: &str,
    saml_response: &str,
    relay: Option<&str>,
    json: bool,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut form = vec![("SAMLResponse", saml_response.to_owned())];
    if let Some(r) = relay {
        form.push(("RelayState", r.to_owned()));
    }
    let mut req = browser().post(acs_url).form(&form);
    if json {
        req = req.header("Accept", "application/json");
    }
    let resp = req.send().expect("ACS answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().unwrap_or_default();
    let _ = app;
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn session_cookie(headers: &reqwest::header::HeaderMap) -> String {
    let set = headers.get("set-cookie").and_then(|v| v.to_str().ok()).expect("Set-Cookie").to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    set.split(';').next().expect("cookie pair").to_owned()
}

fn get_session(app: &TestApp, cookie: &str) -> (u16, Value) {
    let resp = browser().get(app.url("/saml/session")).header("Cookie", cookie).send().expect("session answers");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn audit_actions(app: &TestApp, account: &str) -> Vec<Value> {
    app.state
        .db
        .read_blocking(|c| provisor::store::audit::list(c, account, None, 500).map_err(provisor::error::AppError::from))
        .expect("audit")
        .into_iter()
        .map(|a| json!({ "action": a.action, "source": a.source, "detail": serde_json::from_str::<Value>(&a.detail).unwrap_or(Value::Null) }))
        .collect()
}

fn refusals(app: &TestApp, account: &str) -> Vec<String> {
    audit_actions(app, account)
        .into_iter()
        .filter(|a| a["action"] == "saml.login_refused")
        .map(|a| a["detail"]["reason"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn configuration_api_metadata_and_certificate_rollover() {
    let app = TestApp::spawn();
    let account = app.account("Acme", "owner@acme.test", false);
    let token = app.admin_token(&account);

    // Nothing configured yet: 404; a configuration without a signing certificate is refused.
    assert_eq!(app.get("/api/v1/sso", &token).0, 404);
    let (s, v) = app.put("/api/v1/sso", &token, json!({ "idp_entity_id": "https://idp.example.com" }));
    assert_eq!((s, v["error"]["code"].as_str()), (400, Some("invalid_sso_config")), "{v}");
    let (s, v) = app.put("/api/v1/sso", &token, json!({ "idp_metadata": "<html>no</html>" }));
    assert_eq!(s, 400, "{v}");
    let (s, _) = app.put(
        "/api/v1/sso",
        &token,
        json!({ "idp_metadata": "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>" }),
    );
    assert_eq!(s, 400);
    let (s, v) = app.put("/api/v1/sso", &token, json!({ "idp_entity_id": "x", "idp_certificates": ["not a pem"] }));
    assert_eq!(s, 400, "{v}");
    let (s, v) = app.put(
        "/api/v1/sso",
        &token,
        json!({ "idp_metadata": fixture("okta-metadata.xml"), "clock_skew_seconds": 100000 }),
    );
    assert_eq!(s, 400, "{v}");
    let (s, v) = app.put("/api/v1/sso", &token, json!({ "idp_metadata": fixture("okta-metadata.xml"), "bogus": 1 }));
    assert_eq!(s, 400, "{v}");

    // Metadata XML as the body itself.
    let resp = app
        .client
        .put(app.url("/api/v1/sso"))
        .bearer_auth(&token)
        .header("Content-Type", "application/samlmetadata+xml")
        .body(fixture("okta-metadata.xml"))
        .send()
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().expect("json");
    assert_eq!(v["idp_entity_id"], IdpShape::Okta.entity_id());
    assert_eq!(v["certificates"].as_array().map(Vec::len), Some(2), "idp-a and idp-b from the metadata: {v}");
    assert_eq!(v["acs_url"], format!("{}/saml/{account}/acs", app.base));
    assert_eq!(v["sp_entity_id"], format!("{}/saml/{account}/metadata", app.base));
    assert_eq!(v["clock_skew_seconds"], 180);
    assert_eq!(v["jit_enabled"], true);
    assert_eq!(v["allow_idp_initiated"], false);
    assert!(v["sso_url"].as_str().is_some_and(|u| u.starts_with("https://")), "{v}");

    // SP metadata, public, derived from the public URL (never the Host header).
    let resp = browser()
        .get(app.url(&format!("/saml/{account}/metadata")))
        .header("Host", "evil.example")
        .send()
        .expect("metadata");
    assert_eq!(resp.status().as_u16(), 200);
    let xml = resp.text().expect("xml");
    assert!(xml.contains(&format!("entityID=\"{}/saml/{account}/metadata\"", app.base)), "{xml}");
    assert!(xml.contains(&format!("Location=\"{}/saml/{account}/acs\"", app.base)), "{xml}");
    assert!(!xml.contains("evil.example"));
    assert_eq!(browser().get(app.url("/saml/no-such-account/metadata")).send().expect("404").status().as_u16(), 404);

    // Rollover: keep only idp-a, then a response signed by idp-b is refused until b is added.
    let pem_a = fixture("idp-a.crt.pem");
    let pem_b = fixture("idp-b.crt.pem");
    let (s, v) = app.put("/api/v1/sso", &token, json!({ "idp_certificates": [pem_a], "allow_idp_initiated": true }));
    assert_eq!((s, v["certificates"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let sso = Sso {
        account: account.clone(),
        token: token.clone(),
        entity_id: v["sp_entity_id"].as_str().unwrap().into(),
        acs_url: v["acs_url"].as_str().unwrap().into(),
    };
    let mut by_b = spec(IdpShape::Okta, &sso);
    by_b.key = SigningKey::IdpB;
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&by_b).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("signature_invalid")), "{v}");
    let (s, cert) = app.post("/api/v1/sso/certificates", &token, json!({ "pem": pem_b }));
    assert_eq!(s, 201, "{cert}");
    assert_eq!(
        app.post("/api/v1/sso/certificates", &token, json!({ "pem": fixture("idp-b.crt.pem") })).0,
        409,
        "already trusted"
    );
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&by_b).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    // Old certificate removed (by fingerprint): idp-a signatures stop working.
    let (_, cfg) = app.get("/api/v1/sso", &token);
    let a_fp = cfg["certificates"].as_array().unwrap().iter().find(|c| c["id"] != cert["id"]).unwrap()
        ["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.delete(&format!("/api/v1/sso/certificates/{a_fp}"), &token).0, 204);
    let (s, _, v) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("signature_invalid")), "{v}");
    // The last certificate cannot go.
    let (s, v) = app.delete(&format!("/api/v1/sso/certificates/{}", cert["id"].as_str().unwrap()), &token);
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("last_certificate")), "{v}");

    // Another tenant's token never reaches this configuration, nor does a SCIM token.
    let other = app.account("Other", "owner@other.test", false);
    let other_token = app.admin_token(&other);
    assert!(matches!(app.get(&format!("/api/v1/accounts/{account}/sso"), &other_token).0, 403 | 404));
    let scim_token = app.token(&account, "scim", None);
    assert!(matches!(app.get("/api/v1/sso", &scim_token).0, 401 | 403));
    // The audit log has every change.
    let actions: Vec<String> =
        audit_actions(&app, &account).iter().map(|a| a["action"].as_str().unwrap().to_owned()).collect();
    for a in ["sso.configured", "sso.certificate_added", "sso.certificate_removed"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    assert_eq!(app.delete("/api/v1/sso", &token).0, 204);
    assert_eq!(app.get("/api/v1/sso", &token).0, 404);
}

#[test]
fn idp_initiated_login_provisions_through_the_pipeline_and_starts_a_session() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    app.purchase(&sso.account, "pro", 5);
    let (_, _) = app.post("/api/v1/groups", &sso.token, json!({ "name": "Engineers" }));
    let rules = json!({ "rules": [
        { "attribute": "groups", "match": { "equals": "Engineering" }, "target": "user_type", "value": "pro" },
        { "attribute": "groups", "match": { "equals": "Engineering" }, "target": "group", "value": "Engineers" }
    ] });
    assert_eq!(app.put("/api/v1/mapping", &sso.token, rules).0, 200);

    // JSON client: the login result and the cookie.
    let xml = idp().response_xml(&spec(IdpShape::Okta, &sso)).unwrap();
    let (s, headers, v) = post_acs(&app, &sso.acs_url, &b64(&xml), None, true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["email"], "jane.doe@example.com");
    assert_eq!(v["user"]["first_name"], "Jane");
    assert_eq!(v["user"]["type"], "pro", "mapping rule applied at login: {v}");
    assert_eq!(v["user"]["status"], "active");
    assert_eq!(v["outcome"]["created"], true);
    assert_eq!(v["redirect_to"], "/saml/session");
    let cookie = session_cookie(&headers);
    let (s, me) = get_session(&app, &cookie);
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["user"]["email"], "jane.doe@example.com");
    assert_eq!(me["user"]["type"], "pro");
    assert_eq!(me["groups"], json!(["Engineers"]));
    assert!(me["user"]["last_login_at"].is_string());
    let (_, summary) = app.get("/api/v1/licenses", &sso.token);
    assert_eq!(line(&summary, "pro")["used"], 1);

    // The same response again: replay, refused, audited; the session stays as it was.
    let (s, _, v) = post_acs(&app, &sso.acs_url, &b64(&xml), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("replayed")), "{v}");
    assert_eq!(refusals(&app, &sso.account), vec!["replayed"]);
    // IdP-initiated being allowed does not make an InResponseTo we never issued acceptable.
    let forged = spec(IdpShape::Okta, &sso).in_response_to("_not_ours");
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&forged).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("in_response_to_unknown")), "{v}");

    // Browser: a fresh response → 303 to a safe RelayState; unsafe RelayState → default page.
    let (s, headers, _) = post_acs(
        &app,
        &sso.acs_url,
        &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(),
        Some("/welcome?x=1"),
        false,
    );
    assert_eq!(s, 303);
    assert_eq!(headers.get("location").unwrap(), "/welcome?x=1");
    let (s, headers, _) = post_acs(
        &app,
        &sso.acs_url,
        &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(),
        Some("https://evil.example/phish"),
        false,
    );
    assert_eq!(s, 303);
    assert_eq!(headers.get("location").unwrap(), "/saml/session");
    // A returning login updates, never duplicates.
    let (_, users) = app.get("/api/v1/users", &sso.token);
    let janes = users["users"].as_array().unwrap().iter().filter(|u| u["email"] == "jane.doe@example.com").count();
    assert_eq!(janes, 1, "{users}");
    let audit = audit_actions(&app, &sso.account);
    assert!(audit.iter().filter(|a| a["action"] == "saml.login" && a["source"] == "saml").count() >= 3, "{audit:?}");

    // Logout ends the session.
    let resp = browser().post(app.url("/saml/logout")).header("Cookie", &cookie).send().unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(get_session(&app, &cookie).0, 401);
    assert_eq!(get_session(&app, "provisor_session=pvc_forged").0, 401);
}

#[test]
fn sp_initiated_login_round_trip_and_in_response_to_rules() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::EntraId, json!({ "allowed_redirects": ["https://portal.example.com/app"] }));

    // The login redirect carries a deflated AuthnRequest to the IdP's SSO URL.
    let resp = browser().get(app.url(&format!("/saml/{}/login?target=/reports/7", sso.account))).send().unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers().get("location").unwrap().to_str().unwrap().to_owned();
    let request = decode_redirect(&location).expect("AuthnRequest");
    assert_eq!(request.acs_url.as_deref(), Some(sso.acs_url.as_str()));
    assert_eq!(request.issuer.as_deref(), Some(sso.entity_id.as_str()));
    assert!(request.relay_state.is_none(), "the target stays with us, not in RelayState");

    // The IdP answers: 303 to the stored target (not to whatever RelayState says).
    let answer = ResponseSpec::answering(IdpShape::EntraId, &request);
    let (s, headers, _) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&answer).unwrap(), Some("https://evil.example"), false);
    assert_eq!(s, 303);
    assert_eq!(headers.get("location").unwrap(), "/reports/7");
    let cookie = session_cookie(&headers);
    let (_, me) = get_session(&app, &cookie);
    assert_eq!(me["user"]["email"], "jane.doe@example.com");
    assert_eq!(me["user"]["first_name"], "Jane");

    // A second answer to the same request (new assertion ID) is refused: consumed once.
    let again = ResponseSpec::answering(IdpShape::EntraId, &request);
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&again).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("in_response_to_unknown")), "{v}");
    // An InResponseTo we never issued is refused even though the signature is good.
    let forged = spec(IdpShape::EntraId, &sso).in_response_to("_never_issued");
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&forged).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("in_response_to_unknown")), "{v}");
    // IdP-initiated is off for this account.
    let (s, _, v) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::EntraId, &sso)).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("idp_initiated_refused")), "{v}");
    // A request of another account cannot be answered here.
    let other = configure(&app, IdpShape::EntraId, json!({}));
    let resp = browser().get(app.url(&format!("/saml/{}/login", other.account))).send().unwrap();
    let other_request = decode_redirect(resp.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let cross = spec(IdpShape::EntraId, &sso).in_response_to(&other_request.id);
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&cross).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("in_response_to_unknown")), "{v}");

    // Redirect targets: local paths and configured prefixes only.
    for (target, want) in [
        ("https://portal.example.com/app/x", 302),
        ("https://evil.example/", 400),
        ("//evil.example/x", 400),
        ("javascript:alert(1)", 400),
    ] {
        let url = format!("{}/saml/{}/login?target={}", app.base, sso.account, url_escape(target));
        let resp = browser().get(url).header("Accept", "application/json").send().unwrap();
        assert_eq!(resp.status().as_u16(), want, "{target}");
    }
    let reasons = refusals(&app, &sso.account);
    assert_eq!(reasons.iter().filter(|r| *r == "in_response_to_unknown").count(), 3, "{reasons:?}");
    assert!(reasons.contains(&"idp_initiated_refused".to_owned()));
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn vanity_name_urls_and_adfs_upn() {
    let app = TestApp::spawn();
    let account = app.account("Corp", "owner@corp.example.com", false);
    let operator = app.operator.clone();
    let (s, v) = app.patch(&format!("/api/v1/accounts/{account}/account"), &operator, json!({ "vanity_name": "corp" }));
    assert_eq!(s, 200, "{v}");
    let sso = configure_account(&app, &account, IdpShape::Adfs, json!({ "allow_idp_initiated": true }));
    // The IdP may be configured with the vanity URL: ACS, Destination and Recipient follow it.
    let acs = format!("{}/saml/corp/acs", app.base);
    let answer = ResponseSpec::new(IdpShape::Adfs, &sso.entity_id, &acs);
    let (s, _, v) = post_acs(&app, &acs, &idp().sign_response(&answer).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["email"], "jane.doe@corp.example.com", "the UPN names an AD FS user with a transient NameID");
    // A response addressed to the id URL but posted to the vanity URL is refused.
    let wrong = ResponseSpec::new(IdpShape::Adfs, &sso.entity_id, &sso.acs_url);
    let (s, _, v) = post_acs(&app, &acs, &idp().sign_response(&wrong).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("destination_mismatch")), "{v}");
}

#[test]
fn jit_off_inactive_users_and_pending_invitations() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true, "jit_enabled": false }));
    // Unknown user, JIT off: refused, nothing created.
    let (s, _, v) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("jit_disabled")), "{v}");
    let (_, users) = app.get("/api/v1/users", &sso.token);
    assert!(users["users"].as_array().unwrap().iter().all(|u| u["email"] != "jane.doe@example.com"));

    // An invited (pending) user signing in through the IdP accepts the invitation.
    let (s, invited) = app.post("/api/v1/users", &sso.token, json!({ "email": "jane.doe@example.com" }));
    assert_eq!((s, invited["status"].as_str()), (201, Some("pending")), "{invited}");
    let (s, _, v) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["id"], invited["id"]);
    assert_eq!(v["user"]["status"], "active");
    let (_, pending) = app.get("/api/v1/invitations", &sso.token);
    assert!(pending.to_string().find("jane.doe@example.com").is_none(), "invitation consumed: {pending}");

    // Deactivated (as an IdP's SCIM active=false does): refused, and their session ends.
    let cookie = {
        let (_, headers, _) =
            post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
        session_cookie(&headers)
    };
    let id = invited["id"].as_str().unwrap();
    let (s, v) = app.patch(&format!("/api/v1/users/{id}"), &sso.token, json!({ "status": "inactive" }));
    assert_eq!(s, 200, "{v}");
    assert_eq!(get_session(&app, &cookie).0, 401);
    let (s, _, v) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("user_inactive")), "{v}");
    let reasons = refusals(&app, &sso.account);
    assert!(
        reasons.contains(&"jit_disabled".to_owned()) && reasons.contains(&"user_inactive".to_owned()),
        "{reasons:?}"
    );
}

#[test]
fn master_configuration_places_users_into_sub_accounts() {
    let app = TestApp::spawn();
    let master = app.account("Uni", "owner@uni.test", true);
    let sso = configure_account(&app, &master, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    app.purchase(&master, "business", 10);
    let (s, sub) = app.post(
        "/api/v1/sub_accounts",
        &sso.token,
        json!({ "name": "Healthcare", "owner_email": "owner@health.test", "licenses": { "business": 3 } }),
    );
    assert_eq!(s, 201, "{sub}");
    let rules = json!({ "placement": [ {
        "sub_account": "Healthcare",
        "conditions": [ { "attribute": "groups", "match": { "equals": "Nurses" } }, { "attribute": "department", "match": { "equals": "HIPAA" } } ],
        "user_type": "business"
    } ] });
    assert_eq!(app.put("/api/v1/mapping", &sso.token, rules).0, 200);
    let mut nurse = spec(IdpShape::Okta, &sso);
    nurse.name_id = "nurse@uni.test".into();
    nurse.attributes = vec![
        SpecAttribute::new("email", &["nurse@uni.test"]),
        SpecAttribute::new("groups", &["Everyone", "Nurses"]),
        SpecAttribute::new("department", &["HIPAA"]),
    ];
    let (s, headers, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&nurse).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["account_id"], sub["id"], "{v}");
    assert_eq!(v["user"]["type"], "business");
    let (_, me) = get_session(&app, &session_cookie(&headers));
    assert_eq!(me["user"]["account_id"], sub["id"]);
    // One condition fails: the user stays in the master, with the issue stored.
    let mut other = nurse.clone();
    other.name_id = "clerk@uni.test".into();
    other.attributes =
        vec![SpecAttribute::new("email", &["clerk@uni.test"]), SpecAttribute::new("groups", &["Nurses"])];
    let (s, _, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&other).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["account_id"], master);
    assert!(v["outcome"]["issues"].to_string().contains("placement_partial_match"), "{v}");

    // The sub account has a configuration of its own (set by the master's admin through the
    // mirror): its ACS trusts its IdP, not the master's, and provisions into the sub.
    let sub_id = sub["id"].as_str().unwrap();
    let metadata = fixture("entra-metadata.xml");
    let (s, sub_sso) = app.put(
        &format!("/api/v1/accounts/{sub_id}/sso"),
        &app.operator.clone(),
        json!({ "idp_metadata": metadata, "allow_idp_initiated": true }),
    );
    assert_eq!(s, 200, "{sub_sso}");
    let sub_cfg = Sso {
        account: sub_id.to_owned(),
        token: String::new(),
        entity_id: sub_sso["sp_entity_id"].as_str().unwrap().to_owned(),
        acs_url: sub_sso["acs_url"].as_str().unwrap().to_owned(),
    };
    let mut entra = spec(IdpShape::EntraId, &sub_cfg);
    entra.name_id = "doctor@uni.test".into();
    entra.attributes = vec![SpecAttribute::new(
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        &["doctor@uni.test"],
    )];
    let (s, _, v) = post_acs(&app, &sub_cfg.acs_url, &idp().sign_response(&entra).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["account_id"], sub["id"]);
    // The master's IdP (Okta) is not trusted at the sub's ACS.
    let okta_at_sub = spec(IdpShape::Okta, &sub_cfg);
    let (s, _, v) = post_acs(&app, &sub_cfg.acs_url, &idp().sign_response(&okta_at_sub).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("issuer_mismatch")), "{v}");
}

#[test]
fn hostile_posts_are_refused_with_clear_errors_and_audited() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let good = idp().response_xml(&spec(IdpShape::Okta, &sso)).unwrap();

    let tampered = good.replace("jane.doe@example.com", "ceo@example.com");
    let mut by_attacker = spec(IdpShape::Okta, &sso);
    by_attacker.key = SigningKey::Attacker;
    let mut wrong_audience = spec(IdpShape::Okta, &sso);
    wrong_audience.audience = Some("https://other-sp.example.com".into());
    let mut expired = spec(IdpShape::Okta, &sso);
    expired.issue_instant_offset = chrono::Duration::hours(-3);
    expired.not_on_or_after_offset = Some(chrono::Duration::hours(-2));
    expired.subject_not_on_or_after_offset = chrono::Duration::hours(-2);
    let dtd = format!("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{good}");

    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("tampered", b64(&tampered), 403, "signature_invalid"),
        ("attacker key", idp().sign_response(&by_attacker).unwrap(), 403, "signature_invalid"),
        ("wrong audience", idp().sign_response(&wrong_audience).unwrap(), 403, "audience_mismatch"),
        ("expired", idp().sign_response(&expired).unwrap(), 403, "expired"),
        ("dtd", b64(&dtd), 400, "xml_dtd_refused"),
        ("not base64", "%%%not-base64%%%".into(), 400, "bad_encoding"),
        ("not xml", b64("hello"), 400, "malformed"),
    ];
    for (name, value, status, code) in &cases {
        let (s, _, v) = post_acs(&app, &sso.acs_url, value, None, true);
        assert_eq!((s, v["error"]["code"].as_str()), (*status, Some(*code)), "{name}: {v}");
    }
    // Browsers get an HTML page naming the reason, with the message escaped.
    let resp = browser().post(&sso.acs_url).form(&[("SAMLResponse", b64(&tampered))]).send().unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    let page = resp.text().unwrap();
    assert!(page.contains("signature_invalid") && !page.contains("<script"), "{page}");
    // Form problems: no SAMLResponse, duplicated field, oversized body, unknown account.
    let resp =
        browser().post(&sso.acs_url).header("Accept", "application/json").form(&[("RelayState", "/x")]).send().unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = browser()
        .post(&sso.acs_url)
        .header("Accept", "application/json")
        .form(&[("SAMLResponse", b64(&good)), ("SAMLResponse", b64(&good))])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let huge = "A".repeat(2 * 1024 * 1024);
    let resp = browser()
        .post(&sso.acs_url)
        .header("Accept", "application/json")
        .form(&[("SAMLResponse", huge)])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let resp = browser()
        .post(app.url("/saml/nope/acs"))
        .header("Accept", "application/json")
        .form(&[("SAMLResponse", b64(&good))])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // Nobody was provisioned by any of it, and every refusal is in the audit log.
    let (_, users) = app.get("/api/v1/users", &sso.token);
    assert!(users["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["email"] != "ceo@example.com" && u["email"] != "jane.doe@example.com"));
    let reasons = refusals(&app, &sso.account);
    for (_, _, _, code) in &cases {
        assert!(reasons.iter().any(|r| r == code), "{code} audited: {reasons:?}");
    }
    // The genuine response still works afterwards.
    let (s, _, v) = post_acs(&app, &sso.acs_url, &b64(&good), None, true);
    assert_eq!(s, 200, "{v}");
}

/// A forged `Reference URI="http://127.0.0.1:PORT/…"` must never make the server connect.
#[test]
fn foreign_reference_uri_is_never_fetched_through_the_acs() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (hits, stop) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if listener.accept().is_ok() {
                    hits.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let xml = idp().response_xml(&spec(IdpShape::Okta, &sso)).unwrap();
    let start = xml.find("URI=\"#").expect("reference");
    let end = start + xml[start + 5..].find('"').unwrap() + 6;
    for uri in [format!("http://127.0.0.1:{port}/steal"), "file:///etc/passwd".to_owned()] {
        let attacked = format!("{}URI=\"{uri}\"{}", &xml[..start], &xml[end..]);
        let (s, _, v) = post_acs(&app, &sso.acs_url, &b64(&attacked), None, true);
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("reference_uri_refused")), "{v}");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    assert_eq!(hits.load(Ordering::Relaxed), 0, "the server connected to the forged Reference URI");
}

/// Eight simultaneous posts of one assertion: exactly one login.
#[test]
fn concurrent_replays_yield_exactly_one_login() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let value = idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap();
    let barrier = std::sync::Barrier::new(8);
    let statuses: Vec<(u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let (st, _, v) = post_acs(&app, &sso.acs_url, &value, None, true);
                    (st, v)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(
        statuses.iter().filter(|(s, _)| *s != 200).all(|(s, v)| *s == 403 && v["error"]["code"] == "replayed"),
        "{statuses:?}"
    );
    // Distinct users logging in at once: each provisioned once, no duplicates.
    let specs: Vec<String> = (0..8)
        .map(|i| {
            let mut sp = spec(IdpShape::Okta, &sso);
            sp.name_id = format!("user{i}@example.com");
            sp.attributes = vec![SpecAttribute::new("email", &[&format!("user{i}@example.com")])];
            idp().sign_response(&sp).unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for v in &specs {
            s.spawn(|| assert_eq!(post_acs(&app, &sso.acs_url, v, None, true).0, 200));
        }
    });
    let (_, users) = app.get("/api/v1/users?limit=100", &sso.token);
    let n = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"].as_str().is_some_and(|e| e.starts_with("user")))
        .count();
    assert_eq!(n, 8, "{users}");
}

#[test]
fn cli_sso_set_configures_a_working_login() {
    let app = TestApp::spawn();
    let account = app.account("Cli", "owner@cli.test", false);
    let metadata = provisor::testing::fixtures_dir().join("okta-metadata.xml");
    let (code, out, err) = cli(
        &app,
        &[
            "sso",
            "set",
            "--account",
            &account,
            "--idp-metadata",
            metadata.to_str().unwrap(),
            "--allow-idp-initiated",
            "--clock-skew-seconds",
            "120",
            "--sp-entity-id",
            "urn:provisor:cli-test",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["idp_entity_id"], IdpShape::Okta.entity_id());
    assert_eq!(out["sp_entity_id"], "urn:provisor:cli-test");
    assert_eq!(out["clock_skew_seconds"], 120);
    assert_eq!(out["allow_idp_initiated"], true);
    // Bad input: a clear message and a non-zero exit.
    let (code, _, err) =
        cli(&app, &["sso", "set", "--account", &account, "--idp-metadata", "/nonexistent/metadata.xml"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot read"), "{err}");
    let (code, shown, _) = cli(&app, &["sso", "show", "--account", &account]);
    assert_eq!(code, 0);
    assert_eq!(shown["certificates"].as_array().map(Vec::len), Some(2));

    // The test IdP verb signs a response the server accepts.
    let acs = format!("{}/saml/{account}/acs", app.base);
    let (code, signed, err) = cli(
        &app,
        &[
            "test-idp",
            "--sp-entity-id",
            "urn:provisor:cli-test",
            "--acs-url",
            &acs,
            "--name-id",
            "cli.user@example.com",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (s, _, v) = post_acs(&app, &acs, signed["saml_response"].as_str().unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    // `--name-id` names the person: the e-mail claim follows it (it used to stay Jane's).
    assert_eq!(v["user"]["email"], "cli.user@example.com", "{v}");
}

/// JIT login with phone: the mapped license, site, extension, number and calling plan and
/// the mapped group; a second login with changed attributes updates them.
#[test]
fn jit_login_provisions_phone_and_a_second_login_updates_it() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let t = sso.token.clone();
    assert_eq!(app.patch("/api/v1/account", &t, json!({ "phone_enabled": true })).0, 200);
    app.purchase(&sso.account, "pro", 5);
    app.purchase(&sso.account, "regional_unlimited", 5);
    let (s, site) =
        app.post("/api/v1/phone/sites", &t, json!({ "name": "London", "code": "12", "extension_length": 3 }));
    assert_eq!(s, 201, "{site}");
    let numbers = json!({ "numbers": ["+44 20 7946 0018", "+44 20 7946 0019"] });
    assert_eq!(app.post("/api/v1/phone/numbers", &t, numbers).0, 200);
    assert_eq!(app.post("/api/v1/groups", &t, json!({ "name": "Engineers" })).0, 201);
    assert_eq!(app.post("/api/v1/groups", &t, json!({ "name": "Sellers" })).0, 201);
    let rules = json!({
        "rules": [
            { "attribute": "groups", "match": { "equals": "Engineering" }, "target": "user_type", "value": "pro" },
            { "attribute": "groups", "match": { "equals": "Engineering" }, "target": "group", "value": "Engineers" },
            { "attribute": "groups", "match": { "equals": "Sales" }, "target": "group", "value": "Sellers" },
            { "attribute": "groups", "match": { "equals": "Engineering" }, "target": "calling_plan", "value": "Regional Unlimited" },
            { "attribute": "office", "match": { "contains": "LON" }, "target": "phone_site", "value": "London" }
        ],
        "direct": [
            { "attribute": "telephoneNumber", "target": "phone_number" },
            { "attribute": "telephoneExtension", "target": "phone_extension" }
        ]
    });
    let (s, v) = app.put("/api/v1/mapping", &t, rules);
    assert_eq!(s, 200, "{v}");

    let login = |groups: &[&str], number: &str, extension: &str| -> Value {
        let mut sp = spec(IdpShape::Okta, &sso);
        sp.attributes = vec![
            SpecAttribute::new("email", &["jane.doe@example.com"]),
            SpecAttribute::new("firstName", &["Jane"]),
            SpecAttribute::new("groups", groups),
            SpecAttribute::new("office", &["LON-3"]),
            SpecAttribute::new("telephoneNumber", &[number]),
            SpecAttribute::new("telephoneExtension", &[extension]),
        ];
        let (s, headers, v) = post_acs(&app, &sso.acs_url, &idp().sign_response(&sp).unwrap(), None, true);
        assert_eq!(s, 200, "{v}");
        let (_, me) = get_session(&app, &session_cookie(&headers));
        me
    };
    let me = login(&["Everyone", "Engineering"], "+44 20 7946 0018", "101");
    let u = &me["user"];
    assert_eq!(u["type"], "pro", "{me}");
    assert_eq!(u["phone"]["site_id"], site["id"], "{me}");
    assert_eq!(u["phone"]["extension"], 101, "{me}");
    assert_eq!(u["phone"]["number"], "+442079460018", "{me}");
    assert_eq!(u["phone"]["calling_plan"], "regional_unlimited", "{me}");
    assert_eq!(me["groups"], json!(["Engineers"]));
    assert!(u["provisioning_issues"].as_array().unwrap().is_empty(), "{me}");

    // Changed attributes at the next login: new number and extension, the managed groups
    // follow; targets no rule matches keep their value (the default `when_no_match`).
    let me = login(&["Everyone", "Sales"], "+44 20 7946 0019", "102");
    let u = &me["user"];
    assert_eq!(u["phone"]["number"], "+442079460019", "{me}");
    assert_eq!(u["phone"]["extension"], 102, "{me}");
    assert_eq!(me["groups"], json!(["Sellers"]), "{me}");
    assert_eq!(u["type"], "pro", "{me}");
    let (_, pool) = app.get("/api/v1/phone/numbers", &t);
    let old = pool["numbers"].as_array().unwrap().iter().find(|n| n["number"] == "+442079460018").unwrap().clone();
    assert!(old["assigned_user_id"].is_null(), "the old number went back to the pool: {pool}");
    let (_, summary) = app.get("/api/v1/licenses", &t);
    assert_eq!(line(&summary, "pro")["used"], 1);
    assert_eq!(line(&summary, "regional_unlimited")["used"], 1);
}

/// Two server processes on one database behind one public URL: a login request made at one
/// is answered at the other, and an assertion used at one is a replay at the other.
#[test]
fn replay_cache_and_requests_are_shared_by_server_processes() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let second =
        provisor::testing::RunningServer::start_replica(&app.database_url, 2, &app.base).expect("second server");
    let acs_at = |server_base: &str| format!("{server_base}/saml/{}/acs", sso.account);

    // Used at the first process, refused at the second.
    let value = idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap();
    assert_eq!(post_acs(&app, &acs_at(&app.base), &value, None, true).0, 200);
    let (s, _, v) = post_acs(&app, &acs_at(&second.base), &value, None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("replayed")), "{v}");

    // SP-initiated at the second process, answered at the first (and only once).
    let resp = browser().get(format!("{}/saml/{}/login?target=/here", second.base, sso.account)).send().unwrap();
    let request = decode_redirect(resp.headers().get("location").unwrap().to_str().unwrap()).unwrap();
    let answer = idp().sign_response(&ResponseSpec::answering(IdpShape::Okta, &request)).unwrap();
    let (s, headers, _) = post_acs(&app, &acs_at(&app.base), &answer, None, false);
    assert_eq!((s, headers.get("location").map(|l| l.to_str().unwrap().to_owned())), (303, Some("/here".to_owned())));
    let again = idp().sign_response(&ResponseSpec::answering(IdpShape::Okta, &request)).unwrap();
    let (s, _, v) = post_acs(&app, &acs_at(&second.base), &again, None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("in_response_to_unknown")), "{v}");

    // The session cookie works at either process.
    let (_, headers, _) =
        post_acs(&app, &acs_at(&second.base), &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
    assert_eq!(get_session(&app, &session_cookie(&headers)).0, 200);

    // Expired entries are purged: a day later nothing of it is left.
    let later = chrono::Utc::now().naive_utc() + chrono::Duration::days(1);
    let purged = app
        .state
        .db
        .write_blocking(|c| provisor::store::saml::purge_expired(c, later).map_err(provisor::error::AppError::from))
        .unwrap();
    assert!(purged.replay_entries >= 3 && purged.sessions >= 2, "{purged:?}");
    let again = app
        .state
        .db
        .write_blocking(|c| provisor::store::saml::purge_expired(c, later).map_err(provisor::error::AppError::from))
        .unwrap();
    assert_eq!(again, provisor::store::saml::Purged::default());
}

/// The first login of one new user arriving twice at once (two tabs, two assertions): both
/// succeed and there is one user.
#[test]
fn simultaneous_first_logins_of_one_user_create_it_once() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    for round in 0..3 {
        let email = format!("twin{round}@example.com");
        let bodies: Vec<String> = (0..6)
            .map(|_| {
                let mut sp = spec(IdpShape::Okta, &sso);
                sp.name_id = email.clone();
                sp.attributes = vec![SpecAttribute::new("email", &[&email])];
                idp().sign_response(&sp).unwrap()
            })
            .collect();
        let barrier = std::sync::Barrier::new(bodies.len());
        let results: Vec<(u16, Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = bodies
                .iter()
                .map(|b| {
                    let barrier = &barrier;
                    let sso = &sso;
                    let app = &app;
                    s.spawn(move || {
                        barrier.wait();
                        let (st, _, v) = post_acs(app, &sso.acs_url, b, None, true);
                        (st, v)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
        let ids: std::collections::BTreeSet<String> =
            results.iter().map(|(_, v)| v["user"]["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 1, "{results:?}");
    }
}

/// SHA-1 is refused unless the account allows it (a legacy IdP), and then only for it.
#[test]
fn sha1_signatures_need_the_accounts_explicit_consent() {
    use provisor::saml::test_idp::Algorithms;
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let sha1 = || {
        let mut sp = spec(IdpShape::Okta, &sso);
        sp.algorithms = Algorithms::SHA1;
        idp().sign_response(&sp).unwrap()
    };
    let (s, _, v) = post_acs(&app, &sso.acs_url, &sha1(), None, true);
    assert_eq!(s, 403, "{v}");
    assert!(
        matches!(v["error"]["code"].as_str(), Some("signature_algorithm_refused" | "digest_algorithm_refused")),
        "{v}"
    );
    let (s, v) = app.put("/api/v1/sso", &sso.token, json!({ "allow_sha1": true }));
    assert_eq!((s, v["allow_sha1"].as_bool()), (200, Some(true)), "{v}");
    let (s, _, v) = post_acs(&app, &sso.acs_url, &sha1(), None, true);
    assert_eq!(s, 200, "{v}");
}

#[test]
fn tenants_are_isolated_in_refusals_and_in_the_replay_cache() {
    let app = TestApp::spawn();
    let a = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let b = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    // Jane is a deactivated user of B. A login at A with her address says only "taken".
    let (s, jane) = app.post("/api/v1/users", &b.token, json!({ "email": "jane.doe@example.com" }));
    assert_eq!(s, 201, "{jane}");
    let id = jane["id"].as_str().unwrap();
    assert_eq!(app.patch(&format!("/api/v1/users/{id}"), &b.token, json!({ "status": "inactive" })).0, 200);
    let (s, _, v) = post_acs(&app, &a.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &a)).unwrap(), None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("email_taken")), "{v}");
    assert!(!v.to_string().contains("inactive"), "{v}");

    // One assertion ID, used by the IdP of A and (independently) by the IdP of B: each
    // account accepts it once; a replay at the same account is refused.
    let mut at_a = spec(IdpShape::Okta, &a).for_user("ann@example.com");
    at_a.assertion_id = Some("_shared-assertion-id".into());
    let mut at_b = spec(IdpShape::Okta, &b).for_user("bob@example.com");
    at_b.assertion_id = Some("_shared-assertion-id".into());
    let (ra, rb) = (idp().sign_response(&at_a).unwrap(), idp().sign_response(&at_b).unwrap());
    assert_eq!(post_acs(&app, &a.acs_url, &ra, None, true).0, 200);
    let (s, _, v) = post_acs(&app, &b.acs_url, &rb, None, true);
    assert_eq!(s, 200, "another tenant's assertion IDs do not block this one: {v}");
    let (s, _, v) = post_acs(&app, &a.acs_url, &ra, None, true);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("replayed")), "{v}");
}

#[test]
fn sessions_are_listed_and_ended_per_user() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let (s, headers, v) =
        post_acs(&app, &sso.acs_url, &idp().sign_response(&spec(IdpShape::Okta, &sso)).unwrap(), None, true);
    assert_eq!(s, 200, "{v}");
    let cookie = session_cookie(&headers);
    let id = v["user"]["id"].as_str().unwrap();
    let (s, list) = app.get(&format!("/api/v1/users/{id}/sessions"), &sso.token);
    assert_eq!((s, list["sessions"].as_array().map(Vec::len)), (200, Some(1)), "{list}");
    assert!(!list.to_string().contains(&cookie), "the cookie's value is never shown");
    let (s, ended) = app.delete(&format!("/api/v1/users/{id}/sessions"), &sso.token);
    assert_eq!((s, ended["ended"].as_u64()), (200, Some(1)), "{ended}");
    assert_eq!(get_session(&app, &cookie).0, 401);
}

#[test]
fn unauthenticated_endpoints_are_rate_limited_per_account_and_client() {
    let app = TestApp::spawn();
    let a = configure(&app, IdpShape::Okta, json!({}));
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = |account: &str| {
        client.get(app.url(&format!("/saml/{account}/login"))).header("Accept", "application/json").send().unwrap()
    };
    let mut limited = None;
    let started = std::time::Instant::now();
    for _ in 0..(provisor::config::DEFAULT_PUBLIC_BURST + 50) {
        let r = login(&a.account);
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
        assert!(r.status().is_redirection(), "{}", r.status());
    }
    let r = limited.expect("the burst ran out");
    // The bucket refills at the rate while the burst is being spent (slowly, on a busy machine).
    let refilled = started.elapsed().as_secs_f64().ceil() as i64 * i64::from(provisor::config::DEFAULT_PUBLIC_RATE);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    let body: Value = r.json().unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // The login requests written stay bounded by the limit.
    let rows = app
        .state
        .db
        .read_blocking(|c| {
            use diesel::prelude::*;
            provisor::store::schema::saml_requests::table
                .count()
                .get_result::<i64>(c)
                .map_err(provisor::error::AppError::from)
        })
        .unwrap();
    assert!(rows <= i64::from(provisor::config::DEFAULT_PUBLIC_BURST) + refilled + 10, "{rows} request rows");
    // Another account's bucket is its own.
    let b = configure(&app, IdpShape::Okta, json!({}));
    assert!(login(&b.account).status().is_redirection());
}

/// A partner user signed in through the partner's SAML login uses their session cookie as
/// their own credential: the delegate routes answer, nothing beyond their role does, and a
/// cookie-borne change from another origin is refused.
#[test]
fn a_partner_users_sso_session_reaches_the_delegate_routes() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let xml = idp().response_xml(&spec(IdpShape::Okta, &sso)).unwrap();
    let (s, headers, v) = post_acs(&app, &sso.acs_url, &b64(&xml), None, true);
    assert_eq!(s, 200, "{v}");
    let cookie = session_cookie(&headers);
    let customer = app.account("Globex", "boss@globex.test", false);
    let boss = app.admin_token(&customer);
    let (s, r) = app.post(
        "/api/v1/relationships",
        &sso.token,
        json!({ "customer": customer, "name": "Support", "allow_delegates": true, "permissions": ["users:view"] }),
    );
    assert_eq!(s, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post(&format!("/api/v1/relationships/{id}/approve"), &boss, json!({})).0, 200);
    let (s, d) = app.post(
        &format!("/api/v1/relationships/{id}/delegates"),
        &sso.token,
        json!({ "email": "jane.doe@example.com" }),
    );
    assert_eq!(s, 201, "{d}");

    let with_cookie = |method: reqwest::Method, path: &str, origin: Option<&str>| {
        let mut req = browser().request(method, app.url(path)).header("Cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("Origin", o);
        }
        let resp = req.json(&json!({})).send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let (s, v) = with_cookie(reqwest::Method::GET, "/api/v1/delegations", None);
    assert_eq!((s, v["delegations"][0]["relationship_id"].as_str()), (200, Some(id.as_str())), "{v}");
    let (s, v) = with_cookie(reqwest::Method::GET, "/api/v1/users", None);
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("missing_permission")), "a member's session: {v}");
    let accept = format!("/api/v1/delegations/{id}/accept");
    let (s, v) = with_cookie(reqwest::Method::POST, &accept, Some("https://evil.example"));
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("cross_origin")), "{v}");
    let (s, v) = with_cookie(reqwest::Method::POST, &accept, Some(&app.base));
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
    let (s, v) = with_cookie(reqwest::Method::POST, &format!("/api/v1/delegations/{id}/code"), None);
    assert_eq!(s, 201, "{v}");
    // A bearer token wins over the cookie: the session is not mixed with someone else's token.
    let (s, v) = app.get("/api/v1/delegations", &sso.token);
    assert_eq!((s, v["delegations"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
}

/// The active-users report counts real SSO logins (its `saml.login` audit entries).
#[test]
fn sso_logins_count_as_activity_in_the_active_users_report() {
    let app = TestApp::spawn();
    let sso = configure(&app, IdpShape::Okta, json!({ "allow_idp_initiated": true }));
    let (_, before) = app.get("/api/v1/reports/active_users?list=true", &sso.token);
    let listed = |r: &Value| r["accounts"][0]["users"].to_string().contains("jane.doe@example.com");
    assert!(!listed(&before), "{before}");
    let xml = idp().response_xml(&spec(IdpShape::Okta, &sso)).unwrap();
    let (s, _, v) = post_acs(&app, &sso.acs_url, &b64(&xml), None, true);
    assert_eq!(s, 200, "{v}");
    let (s, after) = app.get("/api/v1/reports/active_users?list=true", &sso.token);
    assert_eq!(s, 200, "{after}");
    assert!(listed(&after), "the SSO login counts: {after}");
    assert_eq!(after["total"].as_u64(), before["total"].as_u64().map(|n| n + 1), "{after}");
}
