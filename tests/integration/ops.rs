//! Operations: readiness reflects the database and the background workers, `/metrics` covers
//! the writer queue, the pool and request latencies, and SIGTERM drains in-flight requests
//! and queued writes before the process exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use provisor::testing::process::ServerProcess;
use provisor::testing::ScratchDb;
use serde_json::{json, Value};

use crate::harness::TestApp;

fn failing(body: &Value) -> Vec<String> {
    body["failing"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// Polls `/readyz` until `done` holds for its (status, body), for at most `within`.
fn ready_until(app: &TestApp, within: Duration, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let started = Instant::now();
    loop {
        let (s, body) = app.call("GET", "/readyz", None, None);
        if done(s, &body) || started.elapsed() > within {
            return (s, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readyz_names_a_stuck_writer_and_a_stopped_worker() {
    let app = TestApp::spawn_configured(&|c| c.ready_stall = Duration::from_millis(500));
    let (s, body) = ready_until(&app, Duration::from_secs(5), |s, _| s == 200);
    assert_eq!(s, 200, "{body}");
    let parts: Vec<&str> = body["workers"].as_array().unwrap().iter().map(|w| w["part"].as_str().unwrap()).collect();
    assert!(parts.iter().any(|p| p.starts_with("writer")), "{body}");
    assert!(parts.contains(&"sync"), "{body}");
    assert_eq!(body["database"]["ok"], json!(true), "{body}");

    // A write job that holds the writer for 2 s: past the 0.5 s threshold it is stuck.
    let db = app.state.db.clone();
    let slow = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(db.write(|_c| {
            std::thread::sleep(Duration::from_secs(2));
            Ok::<_, provisor::error::AppError>(())
        }))
    });
    let (s, body) = ready_until(&app, Duration::from_secs(5), |s, b| {
        s == 503 && failing(b).iter().any(|f| f.starts_with("writer"))
    });
    assert_eq!(s, 503, "{body}");
    assert_eq!(body["status"], json!("unavailable"), "{body}");
    let stuck = body["workers"].as_array().unwrap().iter().find(|w| w["part"].as_str().unwrap().starts_with("writer"));
    assert_eq!(stuck.map(|w| w["state"].clone()), Some(json!("stuck")), "{body}");
    slow.join().unwrap().unwrap();
    // The job finished: the writer waits for work again and the server is ready.
    let (s, body) = ready_until(&app, Duration::from_secs(5), |s, _| s == 200);
    assert_eq!(s, 200, "{body}");

    // The group-sync worker ends: not ready, and the body says which part.
    assert!(app.state.stop_task("sync"));
    let (s, body) = ready_until(&app, Duration::from_secs(5), |s, _| s == 503);
    assert_eq!(s, 503, "{body}");
    assert_eq!(failing(&body), vec!["sync".to_owned()], "{body}");
    let sync = body["workers"].as_array().unwrap().iter().find(|w| w["part"] == json!("sync")).cloned();
    assert_eq!(sync.map(|w| w["state"].clone()), Some(json!("stopped")), "{body}");
    // Liveness is not readiness.
    let (s, _) = app.call("GET", "/healthz", None, None);
    assert_eq!(s, 200);
}

#[test]
fn metrics_cover_the_writer_queue_the_pool_and_latency_by_status_class() {
    let app = TestApp::spawn();
    let account = app.account("Metered", "o@metered.test", false);
    let token = app.admin_token(&account);
    let (s, v) = app.post("/api/v1/users", &token, json!({ "email": "m@metered.test" }));
    assert_eq!(s, 201, "{v}");
    let (s, _) = app.get("/api/v1/users/nope", &token);
    assert_eq!(s, 404);
    let text = app.client.get(app.url("/metrics")).send().unwrap().text().unwrap();
    for series in [
        "provisor_writer_queue_depth ",
        "provisor_writer_batch_size_bucket{",
        "provisor_writer_batch_size_count ",
        "provisor_writer_queue_wait_seconds_bucket{",
        "provisor_db_pool_connections ",
        "provisor_db_pool_idle_connections ",
        "provisor_db_pool_in_use_connections ",
        "provisor_db_pool_max_connections 8",
        "provisor_db_pool_wait_seconds_count ",
        "provisor_db_pool_timeouts_total ",
        "provisor_db_statements_total ",
    ] {
        assert!(text.lines().any(|l| l.starts_with(series)), "{series} missing:\n{text}");
    }
    let latency = |class: &str, route: &str| {
        text.lines().any(|l| {
            l.starts_with("provisor_http_request_duration_seconds_count{")
                && l.contains(&format!("class=\"{class}\""))
                && l.contains(&format!("route=\"{route}\""))
        })
    };
    assert!(latency("2xx", "/api/v1/users"), "{text}");
    assert!(latency("4xx", "/api/v1/users/{user_id}"), "{text}");
    let batches = text
        .lines()
        .find_map(|l| l.strip_prefix("provisor_writer_batch_size_count "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(batches >= 1.0, "the user's write went through a batch:\n{text}");
}

/// A request sent in two halves: the head and part of the body now, the rest later.
struct SlowRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

fn slow_post(port: u16, path: &str, token: &str, body: &Value) -> SlowRequest {
    let body = body.to_string().into_bytes();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    SlowRequest { stream, rest: rest.to_vec() }
}

impl SlowRequest {
    /// Sends the rest of the body; the response's status.
    fn finish(mut self) -> u16 {
        self.stream.write_all(&self.rest).unwrap();
        let mut answer = String::new();
        let _ = self.stream.read_to_string(&mut answer);
        answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
    }
}

#[test]
fn sigterm_drains_accepted_requests_and_queued_writes_then_exits_zero() {
    let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let db = ScratchDb::create(&spec).expect("scratch database");
    let env = [("PROVISOR_SHUTDOWN_TIMEOUT_SECONDS", "20")];
    let mut server =
        ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &env).expect("server starts");
    let op = server.operator.clone();
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, body: Value| -> (u16, Value) {
        match client.post(format!("{}{path}", server.base)).bearer_auth(&op).json(&body).send() {
            Ok(r) => (r.status().as_u16(), r.json().unwrap_or(Value::Null)),
            Err(_) => (0, Value::Null),
        }
    };
    let (s, acct) = post("/api/v1/accounts", json!({ "name": "Drain", "owner_email": "o@drain.test" }));
    assert_eq!(s, 201, "{acct}");
    let base = format!("/api/v1/accounts/{}", acct["id"].as_str().unwrap());

    // A burst of creates from 6 clients, running until the server stops answering.
    let stop_at = Instant::now() + Duration::from_secs(30);
    let burst: Vec<_> = (0..6)
        .map(|t| {
            let (url, op) = (format!("{}{base}/users", server.base), op.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut outcomes = Vec::new();
                for i in 0.. {
                    let email = format!("u{t}-{i}@drain.test");
                    let status = match client.post(&url).bearer_auth(&op).json(&json!({ "email": email })).send() {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    outcomes.push((email, status));
                    if status == 0 || Instant::now() > stop_at {
                        break;
                    }
                }
                outcomes
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    // Accepted, half its body read, when the signal comes.
    let slow = slow_post(server.port, &format!("{base}/users"), &op, &json!({ "email": "slow@drain.test" }));
    std::thread::sleep(Duration::from_millis(200));
    server.send_sigterm();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(slow.finish(), 201, "the request accepted before SIGTERM is answered");
    let outcomes: Vec<(String, u16)> = burst.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let status = server.wait_exit(Duration::from_secs(45)).expect("the process exits on its own");
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert!(server.log_text().contains("every queued write committed"), "{}", server.log_text());
    let created: Vec<&str> = outcomes.iter().filter(|(_, s)| *s == 201).map(|(e, _)| e.as_str()).collect();
    assert!(created.len() >= 6, "the burst ran: {outcomes:?}");
    assert!(outcomes.iter().all(|(_, s)| *s == 201 || *s == 0), "only answers or refused connections: {outcomes:?}");

    // Everything answered 201 is committed.
    server.restart(&[]).expect("restart");
    let mut stored = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        let r = client
            .get(format!("{}{base}/users?limit=100&offset={offset}", server.base))
            .bearer_auth(&op)
            .send()
            .unwrap();
        let v: Value = r.json().unwrap();
        let users = v["users"].as_array().cloned().unwrap_or_default();
        if users.is_empty() {
            break;
        }
        stored.extend(users.iter().filter_map(|u| u["email"].as_str().map(str::to_owned)));
        offset += users.len();
    }
    assert!(stored.contains("slow@drain.test"), "{stored:?}");
    for email in created {
        assert!(stored.contains(email), "{email} was answered 201 but is not stored");
    }
}

fn table_count(app: &TestApp, table: &str, condition: &str) -> i64 {
    app.count(&format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}"))
}

#[test]
fn retention_purges_each_kind_after_its_period_in_batches() {
    use provisor::service::retention::{purge, Policy, Purged};
    let app = TestApp::spawn();
    let account = app.account("Kept", "o@kept.test", false);
    let token = app.admin_token(&account);
    let (s, user) = app.post("/api/v1/users", &token, json!({ "email": "m@kept.test" }));
    assert_eq!(s, 201, "{user}");
    let (s, group) = app.post("/api/v1/groups", &token, json!({ "name": "Crew" }));
    assert_eq!(s, 201, "{group}");
    let path = format!("/api/v1/groups/{}/members", group["id"].as_str().unwrap());
    let (s, v) = app.post(&path, &token, json!({ "add": [user["id"]] }));
    assert_eq!(s, 200, "{v}");
    let (s, issued) = app.post("/api/v1/tokens", &token, json!({ "scope": "scim", "label": "old idp" }));
    assert_eq!(s, 201, "{issued}");
    let (s, v) = app.delete(&format!("/api/v1/tokens/{}", issued["id"].as_str().unwrap()), &token);
    assert!(s == 200 || s == 204, "{s} {v}");
    // The sync worker applies the membership event; the invitation mail counts as sent.
    let started = Instant::now();
    while table_count(&app, "membership_events", "processed_at IS NULL") > 0 && started.elapsed().as_secs() < 10 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = app.state.env().now;
    app.state
        .db
        .write_blocking(|c| {
            use diesel::{ExpressionMethods, RunQueryDsl};
            use provisor::store::schema::mail_outbox;
            provisor::with_backend!(c, |c| diesel::update(mail_outbox::table)
                .set(mail_outbox::sent_at.eq(now))
                .execute(c))
            .map_err(provisor::error::AppError::from)
        })
        .unwrap();
    let audit = table_count(&app, "audit_log", "1 = 1");
    let mail = table_count(&app, "mail_outbox", "1 = 1");
    assert!(audit >= 4 && mail >= 1, "audit {audit}, mail {mail}");
    assert!(table_count(&app, "membership_events", "processed_at IS NOT NULL") >= 1);

    let db = app.state.db.clone();
    let policy = Policy::default();
    let run = |dry: bool| purge(&db, app.state.env().now, &policy, dry).unwrap();
    assert_eq!(run(true), Purged::default(), "nothing is old yet");
    assert_eq!(run(false), Purged::default());

    // 8 days on: applied events and the revoked token go; audit and mail stay.
    app.clock.advance(chrono::Duration::days(8));
    let counted = run(true);
    assert!(counted.membership_events >= 1 && counted.expired_credentials >= 1, "{counted:?}");
    assert_eq!((counted.audit, counted.mail), (0, 0), "{counted:?}");
    assert_eq!(run(false), counted, "the dry run counts what the purge deletes");
    assert_eq!(table_count(&app, "membership_events", "1 = 1"), 0);
    assert_eq!(table_count(&app, "api_tokens", "revoked_at IS NOT NULL"), 0);
    // Live tokens are kept: the admin token still works.
    let (s, _) = app.get("/api/v1/users", &token);
    assert_eq!(s, 200);

    // 31 days on: the sent mail goes.
    app.clock.advance(chrono::Duration::days(23));
    let purged = run(false);
    assert_eq!(purged.mail as i64, mail, "{purged:?}");
    assert_eq!(table_count(&app, "mail_outbox", "1 = 1"), 0);

    // More audit entries than one batch, a year on: all of them go, the users stay.
    let env = app.state.env();
    app.state
        .db
        .write_blocking(|c| {
            for i in 0..(provisor::service::retention::BATCH + 5) {
                provisor::provisioning::audit::record(
                    c,
                    &env,
                    &account,
                    &provisor::provisioning::Actor::system("test"),
                    provisor::provisioning::Source::Cli,
                    "test.filler",
                    Some(&i.to_string()),
                    json!({}),
                )?;
            }
            Ok::<_, provisor::error::AppError>(())
        })
        .unwrap();
    let all_audit = table_count(&app, "audit_log", "1 = 1");
    app.clock.advance(chrono::Duration::days(400));
    let purged = run(false);
    assert_eq!(purged.audit as i64, all_audit, "{purged:?}");
    assert_eq!(table_count(&app, "audit_log", "1 = 1"), 0);
    let (s, users) = app.get("/api/v1/users", &token);
    assert_eq!(s, 200);
    assert_eq!(users["total"], json!(2), "{users}");
}

#[test]
fn retention_purge_cli_prints_counts_per_kind() {
    let app = TestApp::spawn();
    app.account("Cli", "o@cli-retention.test", false);
    let (code, out, err) = crate::harness::cli(&app, &["retention", "purge", "--dry-run", "--retain-audit-days", "0"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["dry_run"], json!(true), "{out}");
    for kind in ["audit", "mail", "membership_events", "ended_relationships", "expired_credentials"] {
        assert!(out["purged"][kind].is_u64(), "{kind}: {out}");
    }
    // Audit kept forever (0), nothing else is old: nothing would go.
    assert_eq!(out["total"], json!(0), "{out}");
    let (code, out, err) = crate::harness::cli(&app, &["retention", "purge"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out["dry_run"], json!(false), "{out}");
}
