//! Property tests: the parsers and the PATCH applier never panic and stay fast on
//! arbitrary input, parsed filters and paths round-trip through `Display`, and the
//! evaluator obeys basic boolean laws.
//!
//! The number of cases defaults to a value that keeps each property well under a few
//! seconds in a debug build; set `PROPTEST_CASES` to run more (or fewer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use serde_json::{json, Map, Value};

use crate::scim::eval::CompiledFilter;
use crate::scim::filter::Filter;
use crate::scim::patch::{apply, PatchOutcome, PatchRequest, PATCH_OP_URN};
use crate::scim::path::PatchPath;
use crate::scim::schema::{ResourceSchema, GROUP, USER};

/// Generous bound: each case takes microseconds; this only catches blow-ups.
const MAX_CASE_TIME: Duration = Duration::from_secs(2);

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default_cases);
    ProptestConfig::with_cases(cases)
}

const TOKENS: &[&str] = &[
    "userName",
    "USERNAME",
    "emails",
    "emails.value",
    "emails.type",
    "value",
    "type",
    "primary",
    "name.givenName",
    "name",
    "meta.lastModified",
    "meta.created",
    "active",
    "id",
    "externalId",
    "members",
    "members.value",
    "$ref",
    "display",
    "title",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName",
    "urn:",
    "eq",
    "ne",
    "co",
    "sw",
    "ew",
    "gt",
    "ge",
    "lt",
    "le",
    "pr",
    "EQ",
    "Pr",
    "and",
    "or",
    "not",
    "AND",
    "Or",
    "NOT",
    "(",
    ")",
    "[",
    "]",
    ".",
    ":",
    "\"",
    "\\",
    "\"bjensen\"",
    "\"BJ\"",
    "\"work\"",
    "\"2011-05-13T04:42:34Z\"",
    "\"\\u00e9\\ud83d\\ude00\"",
    "\"\\ud800\"",
    "\"a\\\"b\"",
    "42",
    "-1.5e3",
    "01",
    "1e999",
    "true",
    "false",
    "null",
    "FALSE",
    "#",
    "é",
    "",
];

/// Sequences of filter-ish tokens, joined with or without spaces.
fn token_soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(TOKENS), 0..40),
        prop::collection::vec(prop::sample::select(&[" ", " ", " ", "", "  "][..]), 40),
    )
        .prop_map(|(toks, seps)| {
            let mut s = String::new();
            for (t, sep) in toks.iter().zip(seps.iter().cycle()) {
                s.push_str(t);
                s.push_str(sep);
            }
            s
        })
}

const ATTRS: &[&str] = &[
    "userName",
    "USERNAME",
    "title",
    "active",
    "emails",
    "emails.value",
    "emails.type",
    "name.givenName",
    "meta.lastModified",
    "id",
    "externalId",
    "department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons",
    "members.value",
    "nope",
];
const SUBS: &[&str] = &["value", "type", "primary", "display", "nope"];
const OPS: &[&str] = &["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Co"];
const VALUES: &[&str] = &[
    "\"bjensen\"",
    "\"BJ\"",
    "\"work\"",
    "\"\"",
    "\"2011-05-13T04:42:34Z\"",
    "\"2011-05-13T06:42:34+02:00\"",
    "\"example.com\"",
    "\"\\u00e9\"",
    "true",
    "False",
    "null",
    "42",
    "-1.5",
];

/// Attribute expressions `attr op value` / `attr pr` over `attrs`.
fn attr_expr(attrs: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (prop::sample::select(attrs), prop::sample::select(OPS), prop::sample::select(VALUES))
            .prop_map(|(a, o, v)| format!("{a} {o} {v}")),
        1 => prop::sample::select(attrs).prop_map(|a| format!("{a} pr")),
    ]
}

/// Mostly well-formed filters: attribute expressions combined with and/or/not/(…) and
/// value paths, in mixed keyword case.
fn filter_text() -> impl Strategy<Value = String> {
    let value_filter = attr_expr(SUBS).prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(&["and", "or", "AND"][..]), inner.clone())
                .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    });
    let leaf = prop_oneof![
        4 => attr_expr(ATTRS),
        1 => (prop::sample::select(&["emails", "members", "addresses", "name", "title"][..]), value_filter)
            .prop_map(|(a, f)| format!("{a}[{f}]")),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(&["and", "or", "Or", "AND"][..]), inner.clone())
                .prop_map(|(a, k, b)| format!("{a} {k} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

/// A well-formed filter with one token inserted, deleted or replaced.
fn mutated_filter() -> impl Strategy<Value = String> {
    (filter_text(), any::<prop::sample::Index>(), prop::sample::select(TOKENS), 0..3u8).prop_map(|(f, at, tok, how)| {
        let mut words: Vec<&str> = f.split(' ').collect();
        let i = at.index(words.len().max(1)).min(words.len());
        match how {
            0 => words.insert(i, tok),
            1 if i < words.len() => {
                words.remove(i);
            }
            _ if i < words.len() => words[i] = tok,
            _ => words.push(tok),
        }
        words.join(" ")
    })
}

/// Mostly well-formed PATCH paths, including filtered ones with a trailing sub-attribute.
fn path_input() -> impl Strategy<Value = String> {
    let value_filter = attr_expr(SUBS);
    prop_oneof![
        3 => prop::sample::select(PATHS).prop_map(str::to_string),
        3 => (
            prop::sample::select(&["emails", "members", "addresses", "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons"][..]),
            value_filter,
            prop::sample::select(&["", ".value", ".type", ".primary", ".x.y", ". value", "value"][..]),
        )
            .prop_map(|(a, f, sub)| format!("{a}[{f}]{sub}")),
        2 => filter_input(),
    ]
}

fn filter_input() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => filter_text(),
        3 => mutated_filter(),
        2 => token_soup(),
        1 => "\\PC{0,200}",
        1 => "[()\\[\\] a-z\"]{0,200}",
    ]
}

fn sample_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223",
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": true,
        "title": "Guide",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "meta": {"created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Tour Operations", "manager": {"value": "m1"}
        },
        "urn:ietf:params:scim:schemas:extension:provisor:2.0:User": {"addons": {"webinar": true}}
    })
}

fn sample_group() -> Value {
    json!({
        "id": "g1",
        "displayName": "Guides",
        "members": [{"value": "2819c223", "display": "Babs"}, {"value": "u2"}]
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn filter_parser_never_panics_and_round_trips(input in filter_input()) {
        let start = Instant::now();
        if let Ok(f) = Filter::parse(&input) {
            let printed = f.to_string();
            let reparsed = Filter::parse(&printed);
            prop_assert_eq!(reparsed.as_ref(), Ok(&f), "printed as {}", printed);
            for schema in [&USER, &GROUP] {
                if let Ok(c) = CompiledFilter::compile(&f, schema) {
                    let _ = c.matches(&sample_user());
                    let _ = c.matches(&sample_group());
                }
            }
            let _ = f.conjuncts();
        }
        prop_assert!(start.elapsed() < MAX_CASE_TIME);
    }

    #[test]
    fn evaluator_obeys_boolean_laws(input in token_soup()) {
        let Ok(f) = Filter::parse(&input) else { return Ok(()) };
        let Ok(c) = CompiledFilter::compile(&f, &USER) else { return Ok(()) };
        let user = sample_user();
        let hit = c.matches(&user);
        let negated = Filter::parse(&format!("not ({f})")).unwrap();
        prop_assert_eq!(CompiledFilter::compile(&negated, &USER).unwrap().matches(&user), !hit);
        let both = Filter::parse(&format!("({f}) and ({f})")).unwrap();
        prop_assert_eq!(CompiledFilter::compile(&both, &USER).unwrap().matches(&user), hit);
        let either = Filter::parse(&format!("({f}) or not ({f})")).unwrap();
        prop_assert!(CompiledFilter::compile(&either, &USER).unwrap().matches(&user));
    }

    #[test]
    fn path_parser_never_panics_and_round_trips(input in path_input()) {
        let start = Instant::now();
        if let Ok(p) = PatchPath::parse(&input) {
            let printed = p.to_string();
            let reparsed = PatchPath::parse(&printed);
            prop_assert_eq!(reparsed.as_ref(), Ok(&p), "printed as {}", printed);
        }
        prop_assert!(start.elapsed() < MAX_CASE_TIME);
    }
}

const PATHS: &[&str] = &[
    "userName",
    "active",
    "title",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.primary",
    "emails[type eq \"work\"]",
    "emails[type eq \"work\"].value",
    "emails[type eq \"home\"].primary",
    "emails[value co \"@\"]",
    "phoneNumbers[type eq \"mobile\"].value",
    "id",
    "meta.lastModified",
    "members",
    "members[value eq \"u2\"]",
    "members[value eq \"u2\"].display",
    "displayName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:addons",
    "urn:ietf:params:scim:schemas:extension:provisor:2.0:User:provisioningIssues",
    "nope",
];

const KEYS: &[&str] = &[
    "value",
    "type",
    "primary",
    "display",
    "givenName",
    "active",
    "userName",
    "displayName",
    "id",
    "schemas",
    "members",
    "emails",
    "name",
    "name.familyName",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "department",
    "bogus",
    // Non-ASCII keys, some shorter than a URN prefix in bytes but not in chars.
    "abcé",
    "é",
    "urn:é",
    "日本語",
    "userNamé",
];

/// A JSON object key: mostly known ones, sometimes any printable Unicode.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => "\\PC{0,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        2 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(|n| json!(n)),
        6 => prop::sample::select(&["True", "False", "work", "home", "u2", "2011-05-13T04:42:34Z", "", "x@y.z"][..])
            .prop_map(|s| Value::String(s.to_string())),
        2 => "[a-zA-Z0-9@. ]{0,12}".prop_map(Value::String),
        1 => "\\PC{0,12}".prop_map(Value::String),
        1 => prop::sample::select(&["José", "jose\u{301}", "a\u{200b}b", "日本", "Ä@ü.de", "\u{0}"][..])
            .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..4)
                .prop_map(|kv| { Value::Object(kv.into_iter().collect::<Map<_, _>>()) }),
        ]
    })
}

fn operation() -> impl Strategy<Value = Value> {
    let op = prop_oneof![
        20 => prop::sample::select(&["add", "Add", "remove", "Remove", "replace", "Replace"][..]),
        1 => Just("bogus"),
    ];
    let path = prop_oneof![
        6 => prop::sample::select(PATHS).prop_map(|p| Some(p.to_string())),
        1 => path_input().prop_map(Some),
        2 => Just(None),
    ];
    let value = prop_oneof![1 => Just(None), 6 => json_value().prop_map(Some)];
    (op, path, value).prop_map(|(op, path, value)| {
        let mut m = Map::new();
        m.insert("op".into(), json!(op));
        if let Some(p) = path {
            m.insert("path".into(), json!(p));
        }
        if let Some(v) = value {
            m.insert("value".into(), v);
        }
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn patch_applier_never_panics(ops in prop::collection::vec(operation(), 1..5), group in any::<bool>()) {
        let start = Instant::now();
        let (resource, schema) = if group { (sample_group(), &GROUP) } else { (sample_user(), &USER) };
        // The whole (atomic) batch, then each operation on its own.
        let mut bodies = vec![json!({"schemas": [PATCH_OP_URN], "Operations": ops.clone()})];
        bodies.extend(ops.iter().map(|op| json!({"schemas": [PATCH_OP_URN], "Operations": [op]})));
        for body in bodies {
            let Ok(req) = PatchRequest::from_json(&body) else { continue };
            match apply(&resource, &req, schema) {
                Ok(out) => check_outcome(&resource, &out, schema)?,
                Err(e) => prop_assert!(!e.detail().is_empty()),
            }
        }
        prop_assert!(start.elapsed() < MAX_CASE_TIME);
    }
}

fn check_outcome(before: &Value, out: &PatchOutcome, schema: &ResourceSchema) -> Result<(), TestCaseError> {
    prop_assert!(out.resource.is_object());
    for c in &out.changes {
        prop_assert_eq!(c.attribute.to_ascii_lowercase(), c.attribute.clone());
    }
    // Server-managed attributes are never changed by a patch.
    prop_assert_eq!(&out.resource["id"], &before["id"]);
    prop_assert_eq!(&out.resource["meta"], &before["meta"]);
    // The result is a fixed point of an empty path-less add.
    let noop = PatchRequest::from_json(&json!({
        "schemas": [PATCH_OP_URN],
        "Operations": [{"op": "add", "value": {}}]
    }))
    .unwrap();
    let again = apply(&out.resource, &noop, schema).unwrap();
    prop_assert!(again.is_noop());
    prop_assert_eq!(&again.resource, &out.resource);
    Ok(())
}

/// A User-ish body: known keys with arbitrary values, so normalisation goes deep.
fn user_body() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(
        &[
            "userName",
            "active",
            "emails",
            "name",
            "externalId",
            "title",
            "groups",
            "id",
            "meta",
            "password",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "urn:ietf:params:scim:schemas:extension:provisor:2.0:User",
            "urn:example:other:2.0:User",
        ][..],
    );
    let key = prop_oneof![8 => keys.prop_map(str::to_owned), 1 => json_key()];
    prop::collection::vec((key, json_value()), 0..8).prop_map(|pairs| {
        let mut m: Map<String, Value> = pairs.into_iter().collect();
        m.insert("schemas".into(), json!([crate::scim::schema::USER_URN]));
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// The service provider's own parsing of request input (query strings, search and
    /// Bulk bodies, resource bodies) never panics: hostile input is a SCIM error.
    #[test]
    fn request_input_never_panics(query in "\\PC{0,120}", filter in filter_input(), body in user_body(), raw in json_value()) {
        let start = Instant::now();
        let _ = crate::scim::query::ListParams::from_query(&query);
        let q = format!("filter={}&sortBy={}&attributes={}", urlencode(&filter), urlencode(&query), urlencode(&query));
        if let Ok(p) = crate::scim::query::ListParams::from_query(&q) {
            for (schema, table) in [(&USER, crate::store::scim::Table::Users), (&GROUP, crate::store::scim::Table::Groups)] {
                let _ = crate::store::scim_query::plan(&p, schema, table, "acc");
                let _ = crate::store::scim_query::key_lookup(&p, schema, table);
            }
        }
        let _ = crate::scim::query::ListParams::from_search(&raw);
        for schema in [&USER, &GROUP] {
            let _ = super::adapter::normalize(&raw, schema);
        }
        if let Ok(doc) = super::adapter::normalize(&body, &USER) {
            let actor = crate::provisioning::Actor::system("proptest");
            let _ = super::adapter::user_change("acc", &actor, crate::provisioning::Operation::Create, &doc, Some(&body));
            let _ = super::adapter::flatten(&doc);
        }
        let _ = super::adapter::group_members(&raw);
        let _ = super::bulk::parse(&json!({"schemas": [super::bulk::BULK_REQUEST_URN], "Operations": [raw.clone()]}));
        prop_assert!(start.elapsed() < MAX_CASE_TIME);
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
