//! SMTP delivery of the mail outbox, against the test SMTP sink: mails of real actions are
//! delivered and marked sent, temporary failures are retried with backoff, permanent
//! rejections end in `failed`, and a process killed while delivering a burst loses nothing
//! and duplicates only what the crash window allows, under the same Message-ID.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use provisor::mail::MailConfig;
use provisor::testing::process::ServerProcess;
use provisor::testing::smtp_sink::{ReceivedMail, SmtpSink};
use provisor::testing::ScratchDb;
use serde_json::{json, Value};

use crate::harness::{cli, TestApp};

const FROM: &str = "Provisor <noreply@provisor.test>";

/// A server whose sender delivers to `smtp_url`.
fn app_delivering_to(smtp_url: &str) -> TestApp {
    let url = smtp_url.to_owned();
    TestApp::spawn_configured(&move |c| {
        c.mail = MailConfig::from_settings(Some(&url), Some(FROM), &c.public_url, Duration::from_secs(300))
            .expect("mail settings");
    })
}

/// `provisor mail list --to ADDR` (the newest row of that recipient).
fn outbox_row(app: &TestApp, to: &str) -> Value {
    let (code, out, err) = cli(app, &["mail", "list", "--to", to]);
    assert_eq!(code, 0, "{err}");
    out["mails"][0].clone()
}

/// Polls `provisor mail list` until the recipient's row satisfies `pred`.
fn wait_row(app: &TestApp, to: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = outbox_row(app, to);
        if pred(&row) {
            return row;
        }
        assert!(Instant::now() < deadline, "{to}: never {what}: {row}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn to(sink: &SmtpSink, addr: &str) -> Vec<ReceivedMail> {
    sink.messages().into_iter().filter(|m| m.rcpt_to.iter().any(|r| r == addr)).collect()
}

#[test]
fn an_invitation_is_delivered_with_its_headers_and_marked_sent() {
    let sink = SmtpSink::start().expect("sink");
    // Credentials are percent-decoded before they reach AUTH.
    let url = format!("smtp://mailer%40provisor.test:p%3Ass%20word@127.0.0.1:{}", sink.port);
    let app = app_delivering_to(&url);
    let account = app.account("Acme", "owner@acme.test", false);
    let admin = app.admin_token(&account);
    let (s, v) = app.post("/api/v1/users", &admin, json!({ "email": "new@acme.test" }));
    assert_eq!(s, 201, "{v}");

    assert!(
        sink.wait_until(Duration::from_secs(30), |m| m.iter().any(|m| m.rcpt_to == ["new@acme.test"])),
        "the invitation arrived"
    );
    let got = to(&sink, "new@acme.test");
    assert_eq!(got.len(), 1, "delivered once");
    let mail = &got[0];
    assert_eq!(mail.mail_from, "noreply@provisor.test");
    assert_eq!(mail.header("From").as_deref(), Some(FROM));
    assert_eq!(mail.header("To").as_deref(), Some("new@acme.test"));
    assert_eq!(mail.subject().as_deref(), Some("You are invited to join Acme"));
    assert!(mail.body().contains("/invitations/accept?token=pvi_"), "{}", mail.body());
    let host = app.base.trim_start_matches("http://").split(':').next().unwrap().to_owned();
    let message_id = mail.message_id().expect("Message-ID");
    assert!(message_id.starts_with("<outbox.") && message_id.ends_with(&format!("@{host}>")), "{message_id}");
    assert!(sink.credentials().contains(&("mailer@provisor.test".to_owned(), "p:ss word".to_owned())));

    let row = wait_row(&app, "new@acme.test", "sent", |r| r["status"] == "sent");
    assert_eq!(row["message_id"], message_id.as_str(), "{row}");
    assert_eq!(row["attempts"], 1, "{row}");
    assert!(row["sent_at"].is_string() && row["last_error"].is_null(), "{row}");
}

#[test]
fn a_temporary_failure_is_retried_after_the_backoff_under_the_same_message_id() {
    let sink = SmtpSink::start().expect("sink");
    let app = app_delivering_to(&sink.url());
    let account = app.account("Retry", "owner@retry.test", false);
    let admin = app.admin_token(&account);
    // The next message (the owner gets none) is refused once.
    assert!(outbox_row(&app, "owner@retry.test").is_null());
    sink.fail_next(1, 451);
    let (s, v) = app.post("/api/v1/users", &admin, json!({ "email": "later@retry.test" }));
    assert_eq!(s, 201, "{v}");

    let row = wait_row(&app, "later@retry.test", "refused once", |r| r["attempts"] == 1);
    assert_eq!(row["status"], "pending", "{row}");
    assert!(row["last_error"].as_str().unwrap_or("").contains("451"), "{row}");
    assert!(row["next_attempt_at"].is_string(), "{row}");
    let refused = sink.refused();
    assert_eq!(refused.len(), 1);
    assert!(to(&sink, "later@retry.test").is_empty(), "not delivered yet");

    // Not before the backoff (30 s) has passed.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(to(&sink, "later@retry.test").is_empty(), "waits for the backoff");
    app.clock.advance(chrono::Duration::seconds(31));
    assert!(sink.wait_until(Duration::from_secs(30), |m| m.iter().any(|m| m.rcpt_to == ["later@retry.test"])));
    let row = wait_row(&app, "later@retry.test", "sent", |r| r["status"] == "sent");
    assert_eq!(row["attempts"], 2, "{row}");
    let delivered = to(&sink, "later@retry.test");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].message_id(), refused[0].message_id(), "one Message-ID on every attempt");
    assert_eq!(delivered[0].message_id().as_deref(), row["message_id"].as_str());
}

#[test]
fn a_permanent_rejection_fails_the_row_after_three_attempts() {
    let sink = SmtpSink::start().expect("sink");
    sink.reject_recipient("nobody@reject.test", 550);
    let app = app_delivering_to(&sink.url());
    let account = app.account("Reject", "owner@reject.test", false);
    let admin = app.admin_token(&account);
    assert_eq!(app.post("/api/v1/users", &admin, json!({ "email": "nobody@reject.test" })).0, 201);
    assert_eq!(app.post("/api/v1/users", &admin, json!({ "email": "fine@reject.test" })).0, 201);

    let row = wait_row(&app, "nobody@reject.test", "rejected once", |r| r["attempts"] == 1);
    assert_eq!(row["status"], "pending", "{row}");
    assert!(row["last_error"].as_str().unwrap_or("").contains("550"), "{row}");
    app.clock.advance(chrono::Duration::seconds(31));
    wait_row(&app, "nobody@reject.test", "rejected twice", |r| r["attempts"] == 2);
    app.clock.advance(chrono::Duration::seconds(61));
    let row = wait_row(&app, "nobody@reject.test", "failed", |r| r["status"] == "failed");
    assert_eq!(row["attempts"], 3, "{row}");
    assert!(row["failed_at"].is_string() && row["sent_at"].is_null(), "{row}");
    // Nothing else waited for it.
    wait_row(&app, "fine@reject.test", "sent", |r| r["status"] == "sent");
    assert!(to(&sink, "nobody@reject.test").is_empty());
}

#[test]
fn a_server_without_smtp_keeps_mail_in_the_outbox() {
    let app = TestApp::spawn();
    let account = app.account("Quiet", "owner@quiet.test", false);
    let admin = app.admin_token(&account);
    assert_eq!(app.post("/api/v1/users", &admin, json!({ "email": "kept@quiet.test" })).0, 201);
    std::thread::sleep(Duration::from_millis(1000));
    let row = outbox_row(&app, "kept@quiet.test");
    assert_eq!(row["status"], "pending", "{row}");
    assert_eq!(row["attempts"], 0, "{row}");
    assert!(row["message_id"].is_null() && row["sent_at"].is_null(), "{row}");
}

#[test]
fn serve_refuses_half_or_invalid_mail_settings() {
    let db = ScratchDb::create("sqlite").expect("scratch database");
    let serve = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--database-url", db.url()])
            .env_remove("PROVISOR_SMTP_URL")
            .env_remove("PROVISOR_MAIL_FROM");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("provisor runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = serve(&[("PROVISOR_SMTP_URL", "smtp://127.0.0.1:2525")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("PROVISOR_MAIL_FROM"), "{err}");
    let (code, err) = serve(&[("PROVISOR_MAIL_FROM", "noreply@x.test")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("PROVISOR_SMTP_URL"), "{err}");
    let (code, err) =
        serve(&[("PROVISOR_SMTP_URL", "http://127.0.0.1:2525"), ("PROVISOR_MAIL_FROM", "noreply@x.test")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not a valid SMTP URL"), "{err}");
}

// ---- crash and restart with the real binary ----

fn call(p: &ServerProcess, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let req = client
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", p.base))
        .bearer_auth(token)
        .json(&body);
    match req.send() {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.json().unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Every outbox row, through `provisor mail list`.
fn all_rows(database_url: &str) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisor"))
        .args(["mail", "list", "--limit", "1000"])
        .env("PROVISOR_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("provisor runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["mails"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_burst_survives_kill_9_and_duplicates_only_from_the_crash_window() {
    const USERS: usize = 200;
    let spec = std::env::var("PROVISOR_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let db = ScratchDb::create(&spec).expect("scratch database");
    let sink = SmtpSink::start().expect("sink");
    let smtp_url = sink.url();
    let delivering: Vec<(&str, &str)> = vec![
        ("PROVISOR_SMTP_URL", &smtp_url),
        ("PROVISOR_MAIL_FROM", "noreply@burst.test"),
        ("PROVISOR_MAIL_LEASE_SECONDS", "8"),
    ];

    // Without SMTP the mails of 200 invitations pile up in the outbox.
    let mut server =
        ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &[]).expect("server starts");
    let op = server.operator.clone();
    let (s, acct) =
        call(&server, "POST", "/api/v1/accounts", &op, json!({ "name": "Burst", "owner_email": "o@burst.test" }));
    assert_eq!(s, 201, "{acct}");
    let users = format!("/api/v1/accounts/{}/users", acct["id"].as_str().unwrap());
    for i in 0..USERS {
        let (s, v) = call(&server, "POST", &users, &op, json!({ "email": format!("u{i}@burst.test") }));
        assert_eq!(s, 201, "{v}");
    }
    let rows = all_rows(db.url());
    assert_eq!(rows.len(), USERS, "one invitation each");
    assert!(rows.iter().all(|r| r["status"] == "pending"));
    assert!(sink.messages().is_empty());

    // 1. The deterministic crash window: the process dies right after the server accepted
    //    the first message, before its row is marked.
    let mut armed = delivering.clone();
    armed.push(("PROVISOR_FAULT", "mail:after_accept"));
    let _ = server.restart(&armed); // may die before it answers /readyz
    assert!(server.wait_exit(Duration::from_secs(30)).is_some(), "aborted: {}", server.log_text());
    assert!(server.log_text().contains("aborting at mail:after_accept"), "{}", server.log_text());
    assert_eq!(sink.messages().len(), 1, "one message accepted before the crash");

    // 2. kill -9 in the middle of the burst (a slow server keeps it going for a while).
    sink.set_delay(Duration::from_millis(5));
    server.restart(&delivering).expect("restart delivering");
    assert!(sink.wait_for(60, Duration::from_secs(60)), "the burst is under way");
    server.kill();
    let at_kill = sink.messages().len();
    assert!(at_kill < rows.len(), "killed before the end ({at_kill} received)");
    sink.set_delay(Duration::ZERO);

    // 3. Two processes finish the work together.
    server.restart(&delivering).expect("restart");
    let mut second = ServerProcess::start_binary(env!("CARGO_BIN_EXE_provisor").into(), db.url(), &delivering)
        .expect("second process");
    let deadline = Instant::now() + Duration::from_secs(120);
    let rows = loop {
        let rows = all_rows(db.url());
        if rows.iter().all(|r| r["status"] == "sent") {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "not all delivered: {:?}\n{}",
            rows.iter().filter(|r| r["status"] != "sent").take(3).collect::<Vec<_>>(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    second.kill();
    server.kill();

    let received = sink.messages();
    let row_ids: BTreeSet<String> =
        rows.iter().map(|r| r["message_id"].as_str().expect("every row has a Message-ID").to_owned()).collect();
    assert_eq!(row_ids.len(), rows.len(), "one Message-ID per row");
    let got_ids: BTreeSet<String> = received.iter().map(|m| m.message_id().expect("Message-ID")).collect();
    assert_eq!(got_ids, row_ids, "every row delivered, nothing else");
    // A message received twice carries the same Message-ID: one Message-ID per recipient,
    // and each Message-ID went to its row's recipient only.
    let recipient_of: BTreeMap<&str, &str> =
        rows.iter().map(|r| (r["message_id"].as_str().unwrap(), r["to"].as_str().unwrap())).collect();
    let mut ids_per_recipient: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &received {
        let id = m.message_id().unwrap();
        assert_eq!(m.rcpt_to, [recipient_of[id.as_str()]], "{id}");
        ids_per_recipient.entry(m.rcpt_to.join(",")).or_default().insert(id);
    }
    assert!(ids_per_recipient.values().all(|ids| ids.len() == 1), "{ids_per_recipient:?}");
    // Duplicates only from the crash windows: the aborted process's one message for sure,
    // at most one more from the process killed while sending (each sends one at a time).
    let duplicates = received.len() - got_ids.len();
    eprintln!(
        "{} rows, {} messages received, {duplicates} duplicates, {at_kill} before the kill",
        rows.len(),
        received.len()
    );
    assert!((1..=2).contains(&duplicates), "{duplicates} duplicates");
    assert!(rows.iter().all(|r| r["attempts"].as_i64() >= Some(1)));
}
