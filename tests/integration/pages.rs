//! The HTML pages the links in mails open, over plain HTTP: the user invitation, the
//! delegate invitation (and a customer's invitation of a partner user), "verify to
//! continue" with one-time codes and the delegated token; escaping, CSRF (the double-submit
//! token and the Origin), and error pages with the API's statuses, never a 500.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::Duration;
use provisor::saml::test_idp::{IdpShape, ResponseSpec, TestIdp};
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use crate::harness::TestApp;

const NASTY: &str = "<script>alert(\"x\")</script> & 'quoted'";
const NASTY_ESCAPED: &str = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;";

fn idp() -> &'static TestIdp {
    static IDP: OnceLock<TestIdp> = OnceLock::new();
    IDP.get_or_init(|| provisor::testing::fixture_idp().expect("idp-fixtures load"))
}

/// A browser without a cookie store or redirects: the test carries cookies by hand.
fn browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn is_page(&self) -> bool {
        self.header("content-type").is_some_and(|c| c.starts_with("text/html"))
            && self.header("cache-control") == Some("no-store")
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).map(|i| i + marker.len()).expect("a CSRF field");
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

/// Cookies by name, as a browser keeps them for one site.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, headers: &HeaderMap) {
        for v in headers.get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.0.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn without(&self, name: &str) -> Jar {
        let mut j = self.clone();
        j.0.remove(name);
        j
    }
}

fn get(app: &TestApp, path: &str, jar: &mut Jar) -> Resp {
    let mut req = browser().get(app.url(path));
    if !jar.0.is_empty() {
        req = req.header("Cookie", jar.header());
    }
    let resp = req.send().expect("GET answers");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    jar.take(&headers);
    Resp { status, headers, body: resp.text().unwrap_or_default() }
}

fn post(app: &TestApp, path: &str, jar: &mut Jar, form: &[(&str, &str)], origin: Option<&str>) -> Resp {
    let mut req = browser().post(app.url(path)).form(form);
    if !jar.0.is_empty() {
        req = req.header("Cookie", jar.header());
    }
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let resp = req.send().expect("POST answers");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    jar.take(&headers);
    Resp { status, headers, body: resp.text().unwrap_or_default() }
}

fn mails(app: &TestApp, to: Option<&str>) -> Vec<(String, String)> {
    app.state
        .db
        .read_blocking(|c| provisor::store::audit::list_mail(c, to, 1000).map_err(provisor::error::AppError::from))
        .expect("mail")
        .into_iter()
        .map(|m| (m.subject, m.body))
        .collect()
}

fn last_mail(app: &TestApp, to: &str) -> (String, String) {
    mails(app, Some(to)).into_iter().next().expect("a mail")
}

/// Every absolute URL in every mail is one of the pages.
fn mails_link_only_pages(app: &TestApp) {
    let pages = [
        regex::Regex::new(r"^/invitations/accept\?token=pvi_[A-Za-z0-9_-]{43}$").unwrap(),
        regex::Regex::new(r"^/delegations/[0-9a-f-]{36}/(accept|verify)$").unwrap(),
    ];
    let url = regex::Regex::new(r"https?://\S+").unwrap();
    let mut seen = 0;
    for (subject, body) in mails(app, None) {
        for m in url.find_iter(&body) {
            let path = m.as_str().strip_prefix(app.base.as_str()).unwrap_or_else(|| panic!("{subject}: {body}"));
            assert!(pages.iter().any(|p| p.is_match(path)), "{subject}: a link that is not a page: {path}");
            seen += 1;
        }
        for line in body.lines().filter(|l| l.contains("/api/v1/")) {
            assert!(!line.contains("http"), "{subject}: an absolute API URL: {line}");
        }
    }
    assert!(seen > 0, "no links seen at all");
}

fn user_of_mail(body: &str) -> String {
    body.split("token=").nth(1).and_then(|t| t.split_whitespace().next()).expect("token").to_owned()
}

fn user_status(app: &TestApp, token: &str, id: &str) -> String {
    let (s, v) = app.get(&format!("/api/v1/users/{id}"), token);
    assert_eq!(s, 200, "{v}");
    v["status"].as_str().unwrap().to_owned()
}

#[test]
fn the_invitation_page_shows_who_invites_whom_escaped_and_accepts_through_its_form() {
    let app = TestApp::spawn();
    let account = app.account(&format!("Acme {NASTY}"), "owner@acme.test", false);
    let owner = app.admin_token(&account);
    let (s, v) = app.post("/api/v1/users", &owner, json!({ "email": "new@acme.test", "display_name": NASTY }));
    assert_eq!(s, 201, "{v}");
    let user = v["id"].as_str().unwrap().to_owned();
    let (_, body) = last_mail(&app, "new@acme.test");
    let token = user_of_mail(&body);
    assert!(body.contains(&format!("{}/invitations/accept?token={token}", app.base)), "{body}");

    let mut jar = Jar::default();
    let page = get(&app, &format!("/invitations/accept?token={token}"), &mut jar);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.is_page());
    assert!(page.body.contains(&format!("Acme {NASTY_ESCAPED}")), "{}", page.body);
    assert!(page.body.contains(NASTY_ESCAPED) && page.body.contains("new@acme.test"), "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    let set = page.header("set-cookie").expect("CSRF cookie");
    assert!(set.starts_with("provisor_csrf=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(page.header("content-security-policy").is_some_and(|c| c.contains("default-src 'none'")));
    let csrf = page.csrf();
    assert_eq!(jar.0.get("provisor_csrf"), Some(&csrf));

    // CSRF: no field, a wrong field, no cookie, a foreign or opaque origin: 403, nothing changed.
    let (t, c) = (token.as_str(), csrf.as_str());
    let refusals = [
        (jar.clone(), vec![("token", t)], None),
        (jar.clone(), vec![("token", t), ("csrf", "pvf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")], None),
        (jar.without("provisor_csrf"), vec![("token", t), ("csrf", c)], None),
        (jar.clone(), vec![("token", t), ("csrf", c)], Some("http://evil.example")),
        (jar.clone(), vec![("token", t), ("csrf", c)], Some("null")),
    ];
    for (mut j, form, origin) in refusals {
        let r = post(&app, "/invitations/accept", &mut j, &form, origin);
        assert_eq!(r.status, 403, "{form:?} {origin:?}: {}", r.body);
        assert!(r.is_page() && r.body.contains("csrf_failed"), "{}", r.body);
    }
    assert_eq!(user_status(&app, &owner, &user), "pending");
    // A cross-site fetch says so even without an Origin.
    let r = browser()
        .post(app.url("/invitations/accept"))
        .header("Cookie", jar.header())
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Not a form at all.
    let r = browser()
        .post(app.url("/invitations/accept"))
        .header("Cookie", jar.header())
        .json(&json!({ "token": token, "csrf": csrf }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(user_status(&app, &owner, &user), "pending");

    // Our own origin and the right token: accepted.
    let own = app.base.clone();
    let r = post(&app, "/invitations/accept", &mut jar, &[("token", &token), ("csrf", &csrf)], Some(&own));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("you are now a member of") && r.body.contains(NASTY_ESCAPED), "{}", r.body);
    assert!(!r.body.contains("<script>"));
    assert_eq!(user_status(&app, &owner, &user), "active");

    // Used, unknown, missing, overlong: pages with the API's statuses.
    let r = post(&app, "/invitations/accept", &mut jar, &[("token", &token), ("csrf", &csrf)], None);
    assert_eq!((r.status, r.is_page()), (404, true), "{}", r.body);
    assert!(r.body.contains("invitation_not_found"), "{}", r.body);
    for (path, status) in [
        (format!("/invitations/accept?token={token}"), 404),
        ("/invitations/accept?token=pvi_nope".to_owned(), 404),
        ("/invitations/accept".to_owned(), 400),
        ("/invitations/accept?token=".to_owned(), 400),
        (format!("/invitations/accept?token={}", "x".repeat(5000)), 404),
        ("/invitations/accept?token=%00".to_owned(), 404),
        ("/invitations/accept?token=a&token=b".to_owned(), 404),
    ] {
        let r = get(&app, &path, &mut jar);
        assert_eq!(r.status, status, "{path}: {}", r.body);
    }

    // Expired: 410.
    let (s, v) = app.post("/api/v1/users", &owner, json!({ "email": "late@acme.test" }));
    assert_eq!(s, 201, "{v}");
    let late = user_of_mail(&last_mail(&app, "late@acme.test").1);
    app.clock.advance(Duration::days(31));
    let r = get(&app, &format!("/invitations/accept?token={late}"), &mut jar);
    assert_eq!((r.status, r.is_page()), (410, true), "{}", r.body);
    assert!(r.body.contains("invitation_expired"), "{}", r.body);
    let r = post(&app, "/invitations/accept", &mut jar, &[("token", &late), ("csrf", &csrf)], None);
    assert_eq!(r.status, 410, "{}", r.body);
    mails_link_only_pages(&app);
}

struct World {
    partner: String,
    customer: String,
    partner_owner: String,
    customer_owner: String,
    /// The SSO session of tech@acme.test, a member of the partner.
    jar: Jar,
}

/// A partner (with SSO) and a customer; tech@acme.test is active in the partner and signed
/// in through the partner's ACS with a response signed by the test IdP.
fn world(app: &TestApp, customer_name: &str) -> World {
    let partner = app.account("Acme MSP", "lead@acme.test", false);
    let customer = app.account(customer_name, "boss@globex.test", false);
    let partner_owner = app.admin_token(&partner);
    let customer_owner = app.admin_token(&customer);
    let (s, v) = app.post("/api/v1/users", &partner_owner, json!({ "email": "tech@acme.test" }));
    assert_eq!(s, 201, "{v}");
    let token = user_of_mail(&last_mail(app, "tech@acme.test").1);
    let env = app.state.env();
    app.state.db.write_blocking(|c| provisor::service::users::accept_invitation(c, &env, &token)).expect("accepted");
    let metadata =
        std::fs::read_to_string(provisor::testing::fixtures_dir().join(IdpShape::Okta.metadata_file().unwrap()))
            .unwrap();
    let (s, sso) =
        app.put("/api/v1/sso", &partner_owner, json!({ "idp_metadata": metadata, "allow_idp_initiated": true }));
    assert_eq!(s, 200, "{sso}");
    let jar = sign_in(&sso, "tech@acme.test").0;
    World { partner, customer, partner_owner, customer_owner, jar }
}

/// Posts a signed response to the ACS as a browser would; returns the cookies and the answer.
fn sign_in(sso: &Value, email: &str) -> (Jar, Resp) {
    let spec =
        ResponseSpec::new(IdpShape::Okta, sso["sp_entity_id"].as_str().unwrap(), sso["acs_url"].as_str().unwrap())
            .for_user(email);
    let response = idp().sign_response(&spec).expect("signed");
    let form = [("SAMLResponse", response)];
    let resp = browser().post(sso["acs_url"].as_str().unwrap()).form(&form).send().expect("ACS answers");
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    let mut jar = Jar::default();
    jar.take(&headers);
    let body = resp.text().unwrap_or_default();
    assert!(jar.0.contains_key("provisor_session"), "{status}: no session cookie: {body}");
    (jar, Resp { status, headers, body })
}

fn relationship(app: &TestApp, w: &World, permissions: &[&str]) -> String {
    let (s, v) = app.post(
        "/api/v1/relationships",
        &w.partner_owner,
        json!({ "customer": w.customer, "name": format!("Managed IT {NASTY}"), "allow_delegates": true, "permissions": permissions }),
    );
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = app.post(&format!("/api/v1/relationships/{id}/approve"), &w.customer_owner, json!({}));
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.post(
        &format!("/api/v1/relationships/{id}/delegates"),
        &w.partner_owner,
        json!({ "email": "tech@acme.test" }),
    );
    assert_eq!(s, 201, "{v}");
    id
}

fn delegate_status(app: &TestApp, w: &World, id: &str) -> String {
    let (s, v) = app.get(&format!("/api/v1/relationships/{id}/delegates"), &w.partner_owner);
    assert_eq!(s, 200, "{v}");
    v["delegates"][0]["status"].as_str().unwrap().to_owned()
}

fn mailed_code(app: &TestApp) -> String {
    last_mail(app, "tech@acme.test").0.rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn a_delegate_accepts_on_the_page_and_verifies_with_a_code_to_get_a_token() {
    let app = TestApp::spawn();
    let w = world(&app, &format!("Globex {NASTY}"));
    let id = relationship(&app, &w, &["users:view"]);
    // The partner's owner signs in too (before the test moves the server's clock).
    let (s, sso) = app.get("/api/v1/sso", &w.partner_owner);
    assert_eq!(s, 200);
    let (mut lead, _) = sign_in(&sso, "lead@acme.test");
    let (subject, body) = last_mail(&app, "tech@acme.test");
    assert!(body.contains(&format!("{}/delegations/{id}/accept", app.base)), "{subject}: {body}");
    let accept = format!("/delegations/{id}/accept");

    // Not signed in: 401, and a link to the partner's SP-initiated login that returns here.
    let mut anonymous = Jar::default();
    let r = get(&app, &accept, &mut anonymous);
    assert_eq!((r.status, r.is_page()), (401, true), "{}", r.body);
    let link = format!("/saml/{}/login?target=%2Fdelegations%2F{id}%2Faccept", w.partner);
    assert!(r.body.contains(&link), "{}", r.body);
    let login = browser().get(app.url(&link)).send().unwrap();
    assert_eq!(login.status().as_u16(), 302, "the login starts (its IdP is not contacted)");
    // A session cookie that is not (or no longer) one: 401 too.
    let mut stale = Jar::default();
    stale.0.insert("provisor_session".into(), "pvc_gone".into());
    assert_eq!(get(&app, &accept, &mut stale).status, 401);

    // Signed in: the invitation, escaped, with its permissions and two forms.
    let mut jar = w.jar.clone();
    let page = get(&app, &accept, &mut jar);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("Globex {NASTY_ESCAPED}")), "{}", page.body);
    assert!(page.body.contains(&format!("Managed IT {NASTY_ESCAPED}")), "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("<code>users:view</code>"), "{}", page.body);
    assert!(page.body.contains("id=\"accept\"") && page.body.contains("id=\"accept-all\""), "{}", page.body);
    assert!(page.body.contains("Signed in as tech@acme.test"), "{}", page.body);
    let csrf = page.csrf();

    // CSRF refusals change nothing.
    for (mut j, form, origin) in [
        (jar.clone(), vec![], None),
        (jar.clone(), vec![("csrf", "pvf_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")], None),
        (jar.clone(), vec![("csrf", csrf.as_str())], Some("https://evil.example")),
    ] {
        let r = post(&app, &accept, &mut j, &form, origin);
        assert_eq!(r.status, 403, "{}", r.body);
        let r = post(&app, "/delegations/accept_all", &mut j, &form, origin);
        assert_eq!(r.status, 403, "{}", r.body);
    }
    assert_eq!(delegate_status(&app, &w, &id), "invited");
    // The verify page wants the invitation accepted first.
    let r = get(&app, &format!("/delegations/{id}/verify"), &mut jar);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains(&format!("href=\"/delegations/{id}/accept\"")), "{}", r.body);

    let r = post(&app, &accept, &mut jar, &[("csrf", &csrf)], Some(&app.base));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("You are now a delegate") && r.body.contains(&format!("/delegations/{id}/verify")));
    assert_eq!(delegate_status(&app, &w, &id), "active");
    let again = get(&app, &accept, &mut jar);
    assert_eq!(again.status, 200);
    assert!(again.body.contains("accepted this delegation already"), "{}", again.body);

    // Verify: mail a code, a wrong one, the right one → the token, once.
    let verify = format!("/delegations/{id}/verify");
    let page = get(&app, &verify, &mut jar);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&format!("Globex {NASTY_ESCAPED}")) && !page.body.contains("<script>"));
    let csrf = page.csrf();
    let code_path = format!("{verify}/code");
    assert_eq!(post(&app, &code_path, &mut jar, &[], None).status, 403);
    let r = post(&app, &code_path, &mut jar, &[("csrf", &csrf)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("We mailed a code to t***@acme.test"), "{}", r.body);
    let (_, body) = last_mail(&app, "tech@acme.test");
    assert!(body.contains(&format!("{}/delegations/{id}/verify", app.base)), "{body}");
    let right = mailed_code(&app);
    // Asking again at once: 429 with Retry-After, on the same page.
    let r = post(&app, &code_path, &mut jar, &[("csrf", &csrf)], None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some() && r.body.contains("id=\"enter-code\""), "{}", r.body);

    let wrong = if right == "00000000" { "11111111" } else { "00000000" };
    // CSRF first: a refused post does not count as a try.
    for _ in 0..3 {
        assert_eq!(post(&app, &verify, &mut jar, &[("code", wrong)], None).status, 403);
    }
    let r = post(&app, &verify, &mut jar, &[("code", wrong), ("csrf", &csrf)], None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("code_invalid") && r.body.contains("id=\"enter-code\""), "{}", r.body);
    let r = post(&app, &verify, &mut jar, &[("code", &right), ("csrf", &csrf)], Some(&app.base));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let token = r.body.split("id=\"delegated-token\">").nth(1).and_then(|t| t.split('<').next()).unwrap().to_owned();
    assert!(token.starts_with("pvd_"), "{}", r.body);
    assert!(r.body.contains(&format!("<code id=\"account-id\">{}</code>", w.customer)), "{}", r.body);
    assert!(r.body.contains("id=\"expires-at\""), "{}", r.body);
    let (s, v) = app.get("/api/v1/users", &token);
    assert_eq!(s, 200, "the token works: {v}");
    // The code is used.
    let r = post(&app, &verify, &mut jar, &[("code", &right), ("csrf", &csrf)], None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("code_expired"), "{}", r.body);

    // Five wrong tries lock the code: 429 with Retry-After, even for the right one.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(post(&app, &code_path, &mut jar, &[("csrf", &csrf)], None).status, 200);
    let right = mailed_code(&app);
    let wrong = if right == "00000000" { "11111111" } else { "00000000" };
    for _ in 0..5 {
        assert_eq!(post(&app, &verify, &mut jar, &[("code", wrong), ("csrf", &csrf)], None).status, 403);
    }
    let r = post(&app, &verify, &mut jar, &[("code", &right), ("csrf", &csrf)], None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    // Expired: ten minutes later.
    app.clock.advance(Duration::seconds(61));
    assert_eq!(post(&app, &code_path, &mut jar, &[("csrf", &csrf)], None).status, 200);
    let late = mailed_code(&app);
    app.clock.advance(Duration::minutes(10));
    let r = post(&app, &verify, &mut jar, &[("code", &late), ("csrf", &csrf)], None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("code_expired"), "{}", r.body);

    // Someone else's session sees no delegation here.
    let r = get(&app, &verify, &mut lead);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("Signed in as") || r.body.contains("signed in as"), "{}", r.body);

    // The customer ends it: the pages say so (the API's 409).
    let (s, _) = app.delete(&format!("/api/v1/relationships/{id}"), &w.customer_owner);
    assert_eq!(s, 200);
    for path in [&accept, &verify] {
        let r = get(&app, path, &mut jar);
        assert_eq!((r.status, r.is_page()), (409, true), "{path}: {}", r.body);
        assert!(r.body.contains("relationship_ended"), "{}", r.body);
    }
    mails_link_only_pages(&app);
}

#[test]
fn a_customers_invitation_opens_the_same_page_and_accept_all_takes_everything() {
    let app = TestApp::spawn();
    let w = world(&app, "Globex");
    let (s, v) = app.post(
        "/api/v1/relationships/invitations",
        &w.customer_owner,
        json!({ "partner_email": "tech@acme.test", "permissions": ["users:view"] }),
    );
    assert_eq!(s, 201, "{v}");
    let invited = v["id"].as_str().unwrap().to_owned();
    let (_, body) = last_mail(&app, "tech@acme.test");
    assert!(body.contains(&format!("{}/delegations/{invited}/accept", app.base)), "{body}");
    // And a delegate invitation in another relationship.
    let other = relationship(&app, &w, &["groups:view"]);

    let mut jar = w.jar.clone();
    let page = get(&app, &format!("/delegations/{invited}/accept"), &mut jar);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("invites you to administer its account as its partner"), "{}", page.body);
    assert!(page.body.contains("Accept all my open invitations (2)"), "{}", page.body);
    let csrf = page.csrf();
    let r = post(&app, "/delegations/accept_all", &mut jar, &[("csrf", &csrf), ("from", &invited)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("You accepted 2 invitations"), "{}", r.body);
    let (s, v) = app.get(&format!("/api/v1/relationships/{invited}"), &w.customer_owner);
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
    assert_eq!(delegate_status(&app, &w, &other), "active");
    let r = post(&app, "/delegations/accept_all", &mut jar, &[("csrf", &csrf)], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("no open invitations"), "{}", r.body);
    // The customer's invitation, accepted, is a delegation whose verify page works.
    assert_eq!(get(&app, &format!("/delegations/{invited}/verify"), &mut jar).status, 200);
    mails_link_only_pages(&app);
}

#[test]
fn bad_requests_to_the_pages_are_pages_never_500() {
    let app = TestApp::spawn();
    let w = world(&app, "Globex");
    let id = relationship(&app, &w, &["users:view"]);
    let mut jar = w.jar.clone();
    let csrf = get(&app, &format!("/delegations/{id}/accept"), &mut jar).csrf();

    for path in [
        "/delegations/no-such-id/accept".to_owned(),
        "/delegations/no-such-id/verify".to_owned(),
        format!("/delegations/{}/accept", "z".repeat(300)),
        "/delegations/%3Cscript%3E/accept".to_owned(),
    ] {
        let r = get(&app, &path, &mut jar);
        assert_eq!((r.status, r.is_page()), (404, true), "{path}: {}", r.body);
        assert!(!r.body.contains("<script>"), "{}", r.body);
    }
    // POSTs: CSRF passes, then the same refusals as the API.
    for path in
        ["/delegations/no-such-id/accept", "/delegations/no-such-id/verify", "/delegations/no-such-id/verify/code"]
    {
        let r = post(&app, path, &mut jar, &[("csrf", &csrf), ("code", "12345678")], None);
        assert_eq!((r.status, r.is_page()), (404, true), "{path}: {}", r.body);
    }
    // Without a session a valid CSRF post is a 401 sign-in page.
    let mut no_session = jar.without("provisor_session");
    let r = post(&app, &format!("/delegations/{id}/accept"), &mut no_session, &[("csrf", &csrf)], None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post(&app, "/delegations/accept_all", &mut no_session, &[("csrf", &csrf)], None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(delegate_status(&app, &w, &id), "invited");
    // Repeated fields, oversized forms, and methods the pages do not have.
    let r = post(&app, &format!("/delegations/{id}/accept"), &mut jar, &[("csrf", &csrf), ("csrf", &csrf)], None);
    assert_eq!(r.status, 400, "{}", r.body);
    let big = "x".repeat(40_000);
    let r = post(&app, &format!("/delegations/{id}/accept"), &mut jar, &[("csrf", &csrf), ("pad", &big)], None);
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(delegate_status(&app, &w, &id), "invited");
    let r = browser().get(app.url("/delegations/accept_all")).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let r = browser().delete(app.url(&format!("/delegations/{id}/verify"))).send().unwrap();
    assert_eq!(r.status().as_u16(), 405);

    // The pages are in the OpenAPI document, as text/html, public.
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", None, None);
    assert_eq!(s, 200);
    let op = &doc["paths"]["/delegations/{relationship_id}/verify"]["post"];
    assert_eq!(op["tags"], json!(["pages"]), "{op}");
    assert!(op["responses"]["200"]["content"]["text/html"].is_object(), "{op}");
    assert!(op["description"].as_str().unwrap_or_default().contains("Public"), "{op}");
}
