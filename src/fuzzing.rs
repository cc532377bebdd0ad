//! The bodies of the coverage-guided fuzz targets (`fuzz/fuzz_targets/`), one plain function
//! per target, so that libFuzzer and `cargo test` (which replays every committed corpus and
//! regression file, see `tests/integration/fuzz_corpus.rs`) run exactly the same code.
//!
//! Each function takes arbitrary bytes. The contract every target checks is "an error, never
//! a panic" (and no hang, no unbounded memory); where it is cheap a target also asserts a real
//! property: a parsed filter or PATCH path survives `Display` → parse unchanged, normalising a
//! SCIM body twice changes nothing, a mapping document survives serialise → parse, a user CSV
//! survives read → write → read, and an accepted SAML response really answers our request
//! from the configured IdP. A broken property panics, which libFuzzer reports as a crash.
//!
//! Only in builds with the `test-support` feature (tests, benches, the fuzz crate): nothing
//! here is part of the shipped binary.
#![allow(clippy::panic)]

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::domain::mapping::{Attributes, CompiledMapping, MappingConfig};
use crate::domain::phone_csv::{row_fields, ImportMode, PhoneCsvReader};
use crate::domain::users::{read_user_csv, write_user_csv, UserCsvRow};
use crate::provisioning::{Actor, Operation};
use crate::saml::certs::IdpCertificate;
use crate::saml::metadata::IdpMetadata;
use crate::saml::test_idp::IdpShape;
use crate::saml::validate::{validate_response, AcsInput, OutstandingRequest, SpValidationConfig};
use crate::scim::eval::CompiledFilter;
use crate::scim::filter::Filter;
use crate::scim::patch::{apply, PatchRequest};
use crate::scim::path::PatchPath;
use crate::scim::schema::{ResourceSchema, GROUP, USER};
use crate::service::scim::{adapter, bulk, parse_json};

/// One fuzz target: its name (the file under `fuzz/fuzz_targets/`, the folders under
/// `fuzz/corpus/` and `fuzz/regressions/`) and its body.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every fuzz target, in the order of the README's table.
pub const TARGETS: &[Target] = &[
    Target { name: "scim_user_body", run: scim_user_body },
    Target { name: "scim_group_body", run: scim_group_body },
    Target { name: "scim_filter", run: scim_filter },
    Target { name: "scim_patch", run: scim_patch },
    Target { name: "scim_bulk", run: scim_bulk },
    Target { name: "saml_prescan", run: saml_prescan },
    Target { name: "saml_validate", run: saml_validate },
    Target { name: "phone_csv", run: phone_csv },
    Target { name: "user_csv", run: user_csv },
    Target { name: "mapping_rules", run: mapping_rules },
    Target { name: "idp_metadata", run: idp_metadata },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

// ---------------------------------------------------------------------------------------
// SCIM
// ---------------------------------------------------------------------------------------

/// A stored User as the applier sees it: the PATCH target's resource.
fn sample_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "0190a5c4-7a7e-7000-8000-000000000001",
        "externalId": "e-1",
        "userName": "ada@example.com",
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "displayName": "Ada Lovelace",
        "title": "Engineer",
        "active": true,
        "emails": [
            { "value": "ada@example.com", "type": "work", "primary": true },
            { "value": "ada@home.example", "type": "home" }
        ],
        "phoneNumbers": [{ "value": "+1 555 0100", "type": "work" }],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Research",
            "manager": { "value": "0190a5c4-7a7e-7000-8000-000000000002" }
        },
        "meta": { "resourceType": "User", "version": "W/\"3\"" }
    })
}

fn sample_group() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "0190a5c4-7a7e-7000-8000-0000000000g1",
        "displayName": "Research",
        "members": [
            { "value": "0190a5c4-7a7e-7000-8000-000000000001", "display": "Ada Lovelace" },
            { "value": "0190a5c4-7a7e-7000-8000-000000000003" }
        ],
        "meta": { "resourceType": "Group", "version": "W/\"1\"" }
    })
}

/// POST/PUT body normalisation, then what the handler derives from the document.
/// Property: normalising a normalised document changes nothing.
fn scim_body(data: &[u8], schema: &ResourceSchema) -> Option<Value> {
    let body = parse_json(data).ok()?;
    let doc = adapter::normalize(&body, schema).ok()?;
    match adapter::normalize(&doc, schema) {
        Ok(again) => assert_eq!(again, doc, "normalize is not idempotent"),
        Err(e) => panic!("a normalised document is refused: {e}\n{doc}"),
    }
    Some(doc)
}

/// SCIM User body: [`adapter::normalize`], then the pipeline change it becomes.
pub fn scim_user_body(data: &[u8]) {
    let Some(doc) = scim_body(data, &USER) else { return };
    let _ = adapter::email_values(&doc);
    let _ = adapter::flatten(&doc);
    let previous = sample_user();
    let actor = Actor::system("fuzz");
    let _ = adapter::user_change("acct-fuzz", &actor, Operation::Create, &doc, None);
    let _ = adapter::user_change(
        "acct-fuzz",
        &actor,
        Operation::Update { user_id: "u-1".into(), expected_version: Some(3) },
        &doc,
        Some(&previous),
    );
}

/// SCIM Group body: [`adapter::normalize`], then its name and members.
pub fn scim_group_body(data: &[u8]) {
    let Some(doc) = scim_body(data, &GROUP) else { return };
    let _ = adapter::group_fields(&doc);
    let _ = adapter::group_members(&doc);
}

/// The filter parser. Properties: the canonical form parses back to the same filter, and
/// a filter that compiles against a schema evaluates without panicking.
pub fn scim_filter(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let Ok(filter) = Filter::parse(input) else { return };
    let shown = filter.to_string();
    match Filter::parse(&shown) {
        Ok(again) => assert_eq!(again, filter, "`{shown}` parses to another filter than `{input}`"),
        Err(e) => panic!("the display form `{shown}` of `{input}` does not parse: {e}"),
    }
    for (schema, resource) in [(&USER, sample_user()), (&GROUP, sample_group())] {
        if let Ok(compiled) = CompiledFilter::compile(&filter, schema) {
            let _ = compiled.matches(&resource);
        }
    }
}

/// PATCH: the input as a path (parse → display → parse), and as a PatchOp body applied to a
/// stored User and Group. Properties: every operation's path round-trips, an applied patch
/// yields an object, and a patch that reports no change leaves the resource as it was up to
/// the order of multi-valued elements.
pub fn scim_patch(data: &[u8]) {
    if let Some(input) = text(data) {
        path_round_trip(input);
    }
    let Ok(request) = PatchRequest::from_slice(data) else { return };
    for op in &request.operations {
        if let Some(path) = &op.path {
            path_round_trip(&path.to_string());
        }
    }
    for (schema, resource) in [(&USER, sample_user()), (&GROUP, sample_group())] {
        let Ok(outcome) = apply(&resource, &request, schema) else { continue };
        assert!(outcome.resource.is_object(), "a patched resource is not an object");
        if outcome.is_noop() {
            assert!(
                same_up_to_order(&outcome.resource, &resource),
                "a patch without changes altered the resource:\n{}",
                outcome.resource
            );
        }
    }
}

fn path_round_trip(input: &str) {
    let Ok(path) = PatchPath::parse(input) else { return };
    let shown = path.to_string();
    match PatchPath::parse(&shown) {
        Ok(again) => assert_eq!(again, path, "path `{shown}` parses to another path than `{input}`"),
        Err(e) => panic!("the display form `{shown}` of path `{input}` does not parse: {e}"),
    }
}

/// Equal JSON, where arrays compare as multisets.
fn same_up_to_order(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_up_to_order(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return false;
            }
            let mut unused: Vec<&Value> = y.iter().collect();
            x.iter().all(|v| match unused.iter().position(|w| same_up_to_order(v, w)) {
                Some(i) => {
                    unused.swap_remove(i);
                    true
                }
                None => false,
            })
        }
        _ => a == b,
    }
}

/// The Bulk request body: parsed into operations, each resolved as the runner would
/// (references substituted, its data read as the single request's body would be).
pub fn scim_bulk(data: &[u8]) {
    let Ok(request) = parse_json(data) else { return };
    let Ok(ops) = bulk::plan(&request) else { return };
    for op in ops {
        let Some(body) = op.data.as_ref() else { continue };
        let schema = if op.is_users { &USER } else { &GROUP };
        match op.method.as_str() {
            "POST" | "PUT" => {
                let _ = adapter::normalize(body, schema);
            }
            "PATCH" => {
                if let Ok(patch) = PatchRequest::from_json(body) {
                    let resource = if op.is_users { sample_user() } else { sample_group() };
                    let _ = apply(&resource, &patch, schema);
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// SAML
// ---------------------------------------------------------------------------------------

/// The SP the SAML seeds were signed for (`provisor test-idp --at` [`SAML_SEED_INSTANT`]).
pub const SAML_SP_ENTITY_ID: &str = "https://provisor.example.test/saml/metadata";
/// The ACS URL of the seeds.
pub const SAML_ACS_URL: &str = "https://provisor.example.test/saml/acs";
/// The AuthnRequest the seeds answer.
pub const SAML_REQUEST_ID: &str = "_provisor0fuzz0request0001";

/// When the committed SAML seeds were signed: validation runs at this instant (plus a
/// second), so the seeds stay valid forever and the fuzzer reaches the signature checks.
pub fn saml_seed_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

const SHAPES: [IdpShape; 4] = [IdpShape::Okta, IdpShape::EntraId, IdpShape::Adfs, IdpShape::Generic];

/// Trusts the fixture keys idp-a and idp-b, as the SAML tests do.
fn trusted_certificates() -> &'static [IdpCertificate] {
    static CERTS: OnceLock<Vec<IdpCertificate>> = OnceLock::new();
    CERTS.get_or_init(|| {
        let mut certs = Vec::new();
        for pem in
            [&include_bytes!("../idp-fixtures/idp-a.crt.pem")[..], &include_bytes!("../idp-fixtures/idp-b.crt.pem")[..]]
        {
            match IdpCertificate::from_pem(pem) {
                Ok(found) => certs.extend(found),
                Err(e) => panic!("fixture certificate: {e}"),
            }
        }
        certs
    })
}

/// The SP configuration for the IdP whose entity ID the document names (Okta's otherwise).
fn saml_config(xml: &str) -> SpValidationConfig {
    let shape = SHAPES.into_iter().find(|s| xml.contains(s.entity_id())).unwrap_or(IdpShape::Okta);
    SpValidationConfig::new(shape.entity_id(), trusted_certificates().to_vec(), SAML_SP_ENTITY_ID, SAML_ACS_URL)
}

/// The pre-scan alone (DTDs, encodings, depth, comments, signature references, algorithms).
/// Property: allowing SHA-1 never refuses what the strict scan accepts.
pub fn saml_prescan(data: &[u8]) {
    let _ = crate::saml::prescan::contains_dtd(data);
    let Some(xml) = text(data) else { return };
    if crate::saml::prescan::prescan(xml, false).is_ok() {
        if let Err(e) = crate::saml::prescan::prescan(xml, true) {
            panic!("accepted without SHA-1 but refused with it: {e}");
        }
    }
}

/// The whole ACS validation path: base64 decoding, pre-scan, signature verification and
/// reduction by samael/libxmlsec1, the checks on the signed document. The input is the
/// decoded Response XML (the seeds are genuinely signed). Property: an accepted response
/// was issued by the configured IdP, answers our request and has not expired.
pub fn saml_validate(data: &[u8]) {
    let _ = saml_accepts(data);
}

/// [`saml_validate`], telling whether the response was accepted (the replay test checks
/// that the committed seeds still are, so the fuzzer starts past the signature checks).
pub fn saml_accepts(data: &[u8]) -> bool {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let cfg = saml_config(&String::from_utf8_lossy(data));
    let input = AcsInput {
        saml_response: &encoded,
        relay_state: Some("/after-login"),
        outstanding_request: OutstandingRequest::Id(SAML_REQUEST_ID),
    };
    let now = saml_seed_instant() + Duration::seconds(1);
    let Ok(login) = validate_response(&input, &cfg, now) else { return false };
    assert_eq!(login.issuer, cfg.idp_entity_id, "accepted from another issuer");
    assert_eq!(login.in_response_to.as_deref(), Some(SAML_REQUEST_ID), "accepted an answer to another request");
    assert!(login.assertion_expires_at > now, "accepted an expired assertion");
    assert!(login.signed.response || login.signed.assertion, "accepted unsigned content");
    assert!(!login.name_id.value.is_empty(), "accepted an empty NameID");
    true
}

/// The IdP metadata parser. Property: metadata that parses also parses when its own entity
/// ID is asked for, to the same result, and yields a usable validation configuration.
pub fn idp_metadata(data: &[u8]) {
    let Some(xml) = text(data) else { return };
    let Ok(metadata) = IdpMetadata::parse(xml) else { return };
    match IdpMetadata::parse_for_entity(xml, &metadata.entity_id) {
        Ok(again) => assert_eq!(again, metadata, "parse_for_entity disagrees with parse"),
        Err(e) => panic!("metadata of {:?} refused when asked for that entity: {e}", metadata.entity_id),
    }
    let _ = metadata.sso_url();
    let _ = metadata.validation_config(SAML_SP_ENTITY_ID, SAML_ACS_URL);
}

// ---------------------------------------------------------------------------------------
// CSV and mapping documents
// ---------------------------------------------------------------------------------------

/// The phone CSV reader: header, every row, and the fields each row sets in both modes.
pub fn phone_csv(data: &[u8]) {
    let Ok(reader) = PhoneCsvReader::new(data) else { return };
    let _ = reader.ignored_columns();
    for row in reader {
        match row {
            Ok(row) => {
                assert!(row.line >= 2, "a data row on line {}", row.line);
                let _ = row_fields(&row, ImportMode::Merge, &[]);
                let _ = row_fields(&row, ImportMode::Replace, &[]);
            }
            Err(errors) => assert!(!errors.is_empty(), "a refused row without an error"),
        }
    }
}

/// The user CSV reader. Property: the valid rows, written back with
/// [`write_user_csv`], read back to the same rows.
pub fn user_csv(data: &[u8]) {
    let rows: Vec<UserCsvRow> = read_user_csv(data).filter_map(Result::ok).collect();
    let fields = |r: &UserCsvRow| {
        [
            r.email.clone(),
            r.first_name.clone().unwrap_or_default(),
            r.last_name.clone().unwrap_or_default(),
            r.department.clone().unwrap_or_default(),
            r.group.clone().unwrap_or_default(),
        ]
    };
    let mut written = Vec::new();
    if let Err(e) = write_user_csv(&mut written, rows.iter().map(fields)) {
        panic!("cannot write rows that were read: {e}");
    }
    let again: Vec<[String; 5]> = read_user_csv(written.as_slice())
        .map(|r| match r {
            Ok(row) => fields(&row),
            Err(e) => panic!("a written row reads back as an error: {e:?}"),
        })
        .collect();
    let before: Vec<[String; 5]> = rows.iter().map(fields).collect();
    assert_eq!(again, before, "user CSV does not survive read → write → read");
}

/// The mapping-rules document (`provisor mapping set --file`). Properties: a document that
/// parses survives serialise → parse, and compiled rules evaluate.
pub fn mapping_rules(data: &[u8]) {
    let Some(input) = text(data) else { return };
    let Ok(config) = MappingConfig::from_json(input) else { return };
    let written = match serde_json::to_string(&config) {
        Ok(w) => w,
        Err(e) => panic!("a parsed mapping does not serialise: {e}"),
    };
    match MappingConfig::from_json(&written) {
        Ok(again) => assert_eq!(again, config, "mapping does not survive serialise → parse: {written}"),
        Err(e) => panic!("a serialised mapping does not parse: {e}\n{written}"),
    }
    let _ = config.reach();
    let _ = config.named_targets();
    let Ok(compiled) = CompiledMapping::compile(&config) else { return };
    let mut attributes = Attributes::new();
    let _ = compiled.evaluate(&attributes);
    for (k, v) in [
        ("department", "Research"),
        ("groups", "Engineering"),
        ("email", "ada@example.com"),
        ("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "b7a3c1d2"),
        ("title", "Sales Manager"),
    ] {
        attributes.entry(k.to_owned()).or_default().push(v.to_owned());
    }
    let _ = compiled.evaluate(&attributes);
}
