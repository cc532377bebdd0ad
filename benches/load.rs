//! Load benchmarks over real HTTP, driven by wrk (a C load generator, so the client is not
//! the bottleneck). Each scenario starts the server in this process on a fresh database.
//!
//!     cargo bench --bench load -- admin|import [--backend sqlite|postgres|both] [--seconds N] [--rows N]
//!     cargo bench --bench load -- scim-create|scim-filter|scim [--users 1000,100000] …
//!
//! The SCIM scenarios first store `--users` users (through the provisioning pipeline, in
//! large write transactions), then measure POST /scim/v2/Users (one client, then 8) and
//! GET /scim/v2/Users?filter=userName eq "…" for a random stored user (one client for
//! latency, then 8); `scim` runs both on the same database. The 8-client create rate is
//! printed as a multiple of the python peer `scim2-server` (pinned, installed in a
//! virtualenv under `target/` by `scripts/install-bench-peers`) measured with the same wrk
//! script right after, when the peer is installed.
//!
//!     cargo bench --bench load -- scim-patch [--users 1000] [--seconds N]
//!
//! `scim-patch` measures group membership changes: SCIM `PATCH /Groups/{id}` adding, then
//! removing, one member per request (1 client, then 8), with `--users` stored.
//!
//!     cargo bench --bench load -- saml [--seconds N] [--logins N1,N8]
//!
//! `saml` measures ACS logins end to end (HTTP, validation, replay-cache insert, pipeline,
//! session) for one returning user, for 1,000 returning users taking turns and for JIT-new
//! users, 1 client then 8, each request a
//! freshly signed Entra ID-shaped response (assertion signed, RSA-SHA256), and prints each
//! rate as a ratio of samael's bare parse + verify rate of the same response on 1 and 2
//! threads (the floor), measured first in the same run. The responses are signed before the
//! clock starts and written to a file; wrk (`benches/wrk/saml_acs.lua`) posts each once.
//! The CPU wrk and the server took is printed beside each rate.
//!
//!     cargo bench --bench load -- import-latency [--rows 100000]
//!
//! `import-latency` measures what an identity provider sees while a large import runs:
//! SCIM `POST /Users` latency (one client, one request every 5 ms) with no import, during a
//! `--rows` user import over HTTP, and during the same import by the CLI (another process);
//! then two imports of 60% of `--rows` each at once with SCIM creates in between, checking
//! that both complete and every row is there.
//!
//!     cargo bench --bench load -- multiprocess --backend postgres [--seconds 60]
//!
//! `multiprocess` runs the load of the three-process test (`tests/integration/multiprocess.rs`,
//! shared as a module) with the release binary: three `serve` processes on one PostgreSQL,
//! SCIM creates and PATCHes, memberships, SAML logins (one assertion to two processes at
//! once), license changes and a phone import, the third process killed half-way; it checks
//! the invariants and prints rates and latencies per operation. PostgreSQL only.
//!
//!     cargo bench --bench load -- crash-import [--backend sqlite|postgres] [--rows 100000]
//!
//! `crash-import` is the crash test's phone import at benchmark size: the release binary
//! is killed with `kill -9` a quarter of the way into a `--rows` import, restarted, checked
//! (every batch whole, the license invariant), and the file re-run until it converges.
//!
//! PostgreSQL: `PROVISOR_BENCH_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/test).
//! Results are printed as a table and as one JSON line per measurement.

use std::process::Command;

use provisor::testing::{RunningServer, ScratchDb};
use serde_json::json;

// The process tests' client and load, shared with the `multiprocess` scenario.
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/crash.rs"]
mod crash;
#[allow(dead_code, unused_imports)]
#[path = "../tests/integration/multiprocess.rs"]
mod multiprocess;

/// The crash test's phone import at benchmark size: `kill -9` a quarter of the way in, then
/// restart, check every batch whole and re-run the file to convergence.
fn crash_import(backend: &str, rows: usize) {
    let spec = if backend == "postgres" { pg_url() } else { "sqlite".to_owned() };
    let c = crash::kill_mid_phone_import(&spec, rows as u64);
    let rerun_rate = (rows as u64 - c.survived) as f64 / c.rerun_seconds.max(1e-9);
    println!(
        "crash-import   {backend:<9} rows={rows} killed at {:.1}s with {} users in; {} rows survived, whole batches; \
         re-run converged in {:.1}s ({rerun_rate:.0} new rows/s)",
        c.seconds_to_kill, c.seen, c.survived, c.rerun_seconds
    );
    println!(
        "{}",
        json!({ "scenario": "crash-import", "backend": backend, "rows": rows, "seen_before_kill": c.seen,
                "survived": c.survived, "seconds_to_kill": c.seconds_to_kill, "rerun_seconds": c.rerun_seconds,
                "machine": machine() })
    );
}

/// Three processes on one PostgreSQL under mixed load, one killed half-way.
fn multiprocess_load(backend: &str, seconds: u32) {
    if backend != "postgres" {
        println!("multiprocess: PostgreSQL only, {backend} skipped");
        return;
    }
    let (lines, summary) = multiprocess::mixed_load(&pg_url(), u64::from(seconds));
    println!("multiprocess: 3 processes, {seconds} s, the third killed at {} s", seconds / 2);
    for l in &lines {
        println!("  {l}");
        println!(
            "{}",
            json!({ "scenario": "multiprocess", "backend": backend, "operation": l.kind, "operations": l.total,
                    "rate_per_s": (l.per_second * 10.0).round() / 10.0, "p50_ms": l.p50_ms, "p99_ms": l.p99_ms,
                    "errors": l.by_status.iter().filter(|(s, _)| **s == 0 || **s >= 500).map(|(_, n)| n).sum::<u64>(),
                    "before_kill": l.before_kill })
        );
    }
    println!("  {summary}");
}

struct Opts {
    scenario: String,
    backends: Vec<String>,
    seconds: u32,
    users: Vec<usize>,
    logins: Vec<usize>,
    rows: usize,
    members: usize,
    relationships: usize,
    subs: usize,
    per_sub: usize,
}

fn parse_args() -> Opts {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut o = Opts {
        scenario: "admin".into(),
        backends: vec!["sqlite".into(), "postgres".into()],
        seconds: 10,
        users: vec![1000, 100_000],
        logins: Vec::new(),
        rows: 100_000,
        members: 10_000,
        relationships: 50,
        subs: 100,
        per_sub: 1000,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => {
                o.backends = match args.next().as_deref() {
                    Some("both") | None => vec!["sqlite".into(), "postgres".into()],
                    Some(b) => vec![b.to_owned()],
                }
            }
            "--subs" => o.subs = args.next().and_then(|s| s.parse().ok()).unwrap_or(100),
            "--per-sub" => o.per_sub = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000),
            "--members" => o.members = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000),
            "--relationships" => o.relationships = args.next().and_then(|s| s.parse().ok()).unwrap_or(50),
            "--rows" => o.rows = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000),
            "--seconds" => o.seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(10),
            "--users" => {
                o.users = args
                    .next()
                    .map(|s| s.split(',').filter_map(|n| n.trim().replace('_', "").parse().ok()).collect())
                    .unwrap_or_default()
            }
            "--logins" => {
                o.logins = args
                    .next()
                    .map(|s| s.split(',').filter_map(|n| n.trim().replace('_', "").parse().ok()).collect())
                    .unwrap_or_default()
            }
            s if !s.starts_with('-') => o.scenario = s.to_owned(),
            _ => {}
        }
    }
    o
}

fn pg_url() -> String {
    std::env::var("PROVISOR_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Runs wrk and returns (rate/s, requests, failures, p50 ms, p99 ms) from the script's RESULT line.
fn wrk(script: &str, url: &str, threads: u32, conns: u32, seconds: u32, args: &[&str]) -> (f64, u64, u64, f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
            script,
            url,
            "--",
        ])
        .args(args)
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RESULT")).unwrap_or_else(|| panic!("no RESULT from wrk: {text}"));
    let field = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let failures = field("non201") + field("failures");
    (field("rate"), field("requests") as u64, failures as u64, field("p50_ms"), field("p99_ms"))
}

fn script_path(name: &str) -> String {
    format!("{}/benches/wrk/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} cores, {model}")
}

fn report(scenario: &str, backend: &str, clients: u32, r: (f64, u64, u64, f64, f64)) {
    println!(
        "{scenario:<14} {backend:<9} clients={clients:<2} rate={:>8.0}/s requests={:<8} failures={:<4} p50={:.2}ms p99={:.2}ms",
        r.0, r.1, r.2, r.3, r.4
    );
    println!(
        "{}",
        json!({ "scenario": scenario, "backend": backend, "clients": clients, "rate_per_s": r.0.round(), "requests": r.1,
                 "failures": r.2, "p50_ms": r.3, "p99_ms": r.4, "machine": machine() })
    );
}

/// Admin API: POST /api/v1/users (a pending invitation with its outbox mail and audit entry).
fn admin(backend: &str, seconds: u32) {
    let (_db, server, _account, token) = server_with_account(backend, "admin");
    let url = format!("{}/api/v1/users", server.base);
    let script = script_path("create_users.lua");
    // Warm up (connections, caches, page cache).
    wrk(&script, &url, 1, 2, 1, &["warm", &token, "admin"]);
    report("admin-create", backend, 1, wrk(&script, &url, 1, 1, seconds, &["seq", &token, "admin"]));
    report("admin-create", backend, 8, wrk(&script, &url, 2, 8, seconds, &["par", &token, "admin"]));
}

/// Delegated administration: `GET /api/v1/users?limit=50` in a customer account with the
/// owner's token and with a partner delegate's delegated token (all permissions), three
/// alternating rounds each with 8 clients; prints the medians and their ratio (the cost of
/// resolving the relationship and checking its scope).
fn delegated(backend: &str, seconds: u32) {
    use provisor::domain::authz::{PermissionSet, Standing};
    use provisor::provisioning::{Actor, Source};
    use provisor::service::{accounts, delegation};
    let (_db, server, customer, owner) = server_with_account(backend, "admin");
    seed(&server, &customer, 200);
    let env = server.state.env();
    let system = Actor::system("bench");
    let token = server
        .state
        .db
        .write_blocking(|c| {
            let (partner, _) = accounts::create(
                c,
                &env,
                &system,
                Source::Cli,
                accounts::NewAccount {
                    name: "Partner".into(),
                    owner_email: "lead@partner.test".into(),
                    owner_first_name: None,
                    owner_last_name: None,
                    is_master: false,
                    bulk_licensing: false,
                    parent_id: None,
                    billing: None,
                    vanity_name: None,
                },
            )?;
            let lead = provisor::store::users::owner(c, &partner.id)?.expect("partner owner");
            let me = Actor::person("bench-lead", Some(lead.id.clone()), Standing::Owner, PermissionSet::all());
            let input = delegation::RequestInput {
                customer: customer.clone(),
                name: "Bench".into(),
                expires_at: None,
                auto_extend: false,
                allow_delegates: true,
                undisclosed: false,
                permissions: PermissionSet::all().names(),
            };
            let rel = delegation::request(c, &env, &me, &partner.id, input)?;
            delegation::approve(c, &env, &system, &customer, &rel.id)?;
            delegation::add_delegate(c, &env, &me, &partner.id, &rel.id, "lead@partner.test")?;
            delegation::accept_delegation(c, &env, &me, &partner.id, &rel.id)?;
            delegation::send_code(c, &env, &me, &partner.id, &rel.id)?;
            let mail = provisor::store::audit::list_mail(c, Some("lead@partner.test"), 1)?;
            let code = mail.first().and_then(|m| m.subject.rsplit(' ').next()).unwrap_or_default().to_owned();
            let session = delegation::open_session(c, &env, &me, &partner.id, &rel.id, &code)??;
            Ok::<_, provisor::error::AppError>(session.token)
        })
        .expect("a delegated session");
    let url = format!("{}/api/v1/users?limit=50", server.base);
    let script = script_path("get_path.lua");
    wrk(&script, &url, 1, 2, 1, &[&owner]);
    wrk(&script, &url, 1, 2, 1, &[&token]);
    let (mut own, mut dlg) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let r = wrk(&script, &url, 2, 8, seconds, &[&owner]);
        report("users-owner", backend, 8, r);
        own.push(r.0);
        let r = wrk(&script, &url, 2, 8, seconds, &[&token]);
        report("users-delegate", backend, 8, r);
        dlg.push(r.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (o, d) = (median(&mut own), median(&mut dlg));
    println!(
        "delegated      {backend:<9} owner median={o:.0}/s delegate median={d:.0}/s ratio={:.3} (cost {:.1}%)",
        d / o,
        (1.0 - d / o) * 100.0
    );
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Group sync: a group of `members` bound to `relationships` relationships (initial bind
/// time); then single adds and removes through the admin API, each timed from the response
/// to the delegate row changing (p50/p99); then a full reconcile of every binding (time and
/// memory).
fn sync(backend: &str, members: usize, relationships: usize) {
    use provisor::domain::authz::{PermissionSet, Standing};
    use provisor::provisioning::{Actor, Source};
    use provisor::service::{accounts, delegation};
    let (_db, server, partner, owner) = server_with_account(backend, "admin");
    let extra = 100;
    seed(&server, &partner, members + extra);
    let ids: Vec<String> = server
        .state
        .db
        .read_blocking(|c| {
            (0..members + extra)
                .map(|i| {
                    provisor::store::users::find_by_email(c, &format!("seed-{i}@bench.test"))
                        .map(|u| u.map(|u| u.id).unwrap_or_default())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(provisor::error::AppError::from)
        })
        .expect("ids");
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        let r = client.post(format!("{}{path}", server.base)).bearer_auth(&owner).json(&body).send().expect("answer");
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().unwrap_or_default();
        assert!(status < 300, "{path}: {status} {v}");
        v
    };
    let group = post("/api/v1/groups", json!({ "name": "Support" }))["id"].as_str().unwrap_or_default().to_owned();
    for chunk in ids[..members].chunks(1000) {
        post(&format!("/api/v1/groups/{group}/members"), json!({ "add": chunk }));
    }
    let env = server.state.env();
    let system = Actor::system("bench");
    let rels: Vec<String> = server
        .state
        .db
        .write_blocking(|c| {
            let lead = provisor::store::users::owner(c, &partner)?.expect("owner");
            let me = Actor::person("bench-lead", Some(lead.id.clone()), Standing::Owner, PermissionSet::all());
            (0..relationships)
                .map(|i| {
                    let (customer, _) = accounts::create(
                        c,
                        &env,
                        &system,
                        Source::Cli,
                        accounts::NewAccount {
                            name: format!("Customer {i}"),
                            owner_email: format!("boss@c{i}.test"),
                            owner_first_name: None,
                            owner_last_name: None,
                            is_master: false,
                            bulk_licensing: false,
                            parent_id: None,
                            billing: None,
                            vanity_name: None,
                        },
                    )?;
                    let input = delegation::RequestInput {
                        customer: customer.id.clone(),
                        name: format!("R{i}"),
                        expires_at: None,
                        auto_extend: false,
                        allow_delegates: true,
                        undisclosed: false,
                        permissions: vec!["users:view".into()],
                    };
                    let r = delegation::request(c, &env, &me, &partner, input)?;
                    delegation::approve(c, &env, &system, &customer.id, &r.id)?;
                    Ok(r.id)
                })
                .collect::<Result<Vec<_>, provisor::error::AppError>>()
        })
        .expect("relationships");
    // Let the worker skip the setup's membership events first.
    while server
        .state
        .db
        .read_blocking(|c| provisor::store::sync::any_pending(c).map_err(provisor::error::AppError::from))
        .unwrap_or(false)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let rss_before = rss_mib();
    let started = std::time::Instant::now();
    for r in &rels {
        post(&format!("/api/v1/relationships/{r}/groups"), json!({ "group_id": group, "auto_accept": true }));
    }
    let bind_s = started.elapsed().as_secs_f64();
    let rows = members * relationships;
    println!(
        "sync-bind      {backend:<9} members={members} relationships={relationships} delegate_rows={rows} took={bind_s:.1}s ({:.0} rows/s)",
        rows as f64 / bind_s
    );
    // Single adds and removes: response → the delegate row of the last relationship changes.
    let last = rels.last().cloned().unwrap_or_default();
    let present = |user: &str| {
        server
            .state
            .db
            .read_blocking(|c| {
                provisor::store::delegation::delegate(c, &last, user).map_err(provisor::error::AppError::from)
            })
            .map(|d| d.is_some())
            .unwrap_or(false)
    };
    let mut lat = Vec::new();
    for user in &ids[members..] {
        for (key, want) in [("add", true), ("remove", false)] {
            post(&format!("/api/v1/groups/{group}/members"), json!({ key: [user] }));
            let t0 = std::time::Instant::now();
            while present(user) != want {
                std::thread::sleep(std::time::Duration::from_micros(500));
                assert!(t0.elapsed().as_secs() < 30, "a change never propagated");
            }
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "sync-propagate {backend:<9} changes={} p50={:.1}ms p99={:.1}ms max={:.1}ms (each reaching {relationships} relationships)",
        lat.len(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0),
        lat.last().copied().unwrap_or(0.0)
    );
    let started = std::time::Instant::now();
    let report = post("/api/v1/sync/reconcile", json!({}));
    let reconcile_s = started.elapsed().as_secs_f64();
    println!(
        "sync-reconcile {backend:<9} bindings={} delegate_rows={rows} drift={} took={reconcile_s:.1}s rss_before_bind={rss_before:.0}MiB rss_after={:.0}MiB",
        report["bindings"], report["missing"].as_u64().unwrap_or(0) + report["extra"].as_u64().unwrap_or(0), rss_mib()
    );
    println!(
        "{}",
        json!({ "scenario": "sync", "backend": backend, "members": members, "relationships": relationships,
                "bind_s": bind_s, "propagation_p50_ms": percentile(&lat, 50.0), "propagation_p99_ms": percentile(&lat, 99.0),
                "reconcile_s": reconcile_s, "machine": machine() })
    );
}

/// Reports and moves: a master with `subs` sub accounts of `per_sub` users each; the
/// licenses and active-users reports over the whole tree (median of 5), then moving
/// `per_sub * 10` users from the first ten subs into the last one through the API (rows/s),
/// with the process's memory before and after.
fn reports(backend: &str, per_sub: usize, subs: usize) {
    use provisor::provisioning::{Actor, Source};
    use provisor::service::accounts;
    let (_db, server, master, owner) = server_with_account(backend, "admin");
    let env = server.state.env();
    let system = Actor::system("bench");
    server
        .state
        .db
        .write_blocking(|c| {
            let mut row = provisor::store::accounts::find(c, &master)?.expect("master");
            row.is_master = true;
            row.bulk_licensing = true;
            provisor::store::accounts::update(c, &row)?;
            Ok::<_, provisor::error::AppError>(())
        })
        .expect("master");
    let sub_ids: Vec<String> = (0..subs)
        .map(|i| {
            server
                .state
                .db
                .write_blocking(|c| {
                    accounts::create(
                        c,
                        &env,
                        &system,
                        Source::Cli,
                        accounts::NewAccount {
                            name: format!("Sub {i}"),
                            owner_email: format!("owner@s{i}.test"),
                            owner_first_name: None,
                            owner_last_name: None,
                            is_master: false,
                            bulk_licensing: false,
                            parent_id: Some(master.clone()),
                            billing: None,
                            vanity_name: None,
                        },
                    )
                })
                .expect("sub")
                .0
                .id
        })
        .collect();
    let started = std::time::Instant::now();
    for (i, sub) in sub_ids.iter().enumerate() {
        seed_named(&server, sub, &format!("s{i}"), per_sub);
    }
    println!("seeded {} users in {} subs in {:.1}s", per_sub * subs, subs, started.elapsed().as_secs_f64());
    let client = reqwest::blocking::Client::new();
    let get = |path: &str| {
        let t0 = std::time::Instant::now();
        let r = client.get(format!("{}{path}", server.base)).bearer_auth(&owner).send().expect("answer");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let _ = r.bytes();
        t0.elapsed().as_secs_f64() * 1000.0
    };
    for (name, path) in [("licenses", "/api/v1/reports/licenses"), ("active_users", "/api/v1/reports/active_users")] {
        let mut t: Vec<f64> = (0..5).map(|_| get(path)).collect();
        t.sort_by(f64::total_cmp);
        println!("report-{name:<13} {backend:<9} accounts={} users={} median={:.0}ms", subs + 1, per_sub * subs, t[2]);
    }
    let movers = (per_sub * 10).min(per_sub * subs.saturating_sub(1));
    let emails: Vec<String> =
        (0..movers).map(|k| format!("seed-s{}-{}@bench.test", k / per_sub, k % per_sub)).collect();
    let target = sub_ids.last().cloned().unwrap_or_default();
    let rss_before = rss_mib();
    let started = std::time::Instant::now();
    let mut moved = 0;
    for chunk in emails.chunks(1000) {
        let r = client
            .post(format!("{}/api/v1/users/move", server.base))
            .bearer_auth(&owner)
            .json(&json!({ "emails": chunk, "to_account": target }))
            .send()
            .expect("answer");
        let v: serde_json::Value = r.json().unwrap_or_default();
        moved += v["results"].as_array().map_or(0, |a| a.iter().filter(|r| r["status"] == "moved").count());
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "users-move     {backend:<9} users={movers} moved={moved} took={took:.1}s ({:.0} rows/s) rss_before={rss_before:.0}MiB rss_after={:.0}MiB",
        movers as f64 / took,
        rss_mib()
    );
}

/// Stores `n` users named `seed-<tag>-<i>@bench.test` in `account` through the pipeline.
fn seed_named(server: &RunningServer, account: &str, tag: &str, n: usize) {
    use provisor::provisioning::{Actor, Operation};
    use provisor::scim::schema::USER;
    use provisor::service::scim::adapter;
    let env = server.state.env();
    let actor = Actor::system("bench-seed");
    server
        .state
        .db
        .write_blocking(|c| {
            for i in 0..n {
                let name = format!("seed-{tag}-{i}@bench.test");
                let body = json!({ "schemas": [provisor::scim::schema::USER_URN], "userName": name, "active": true,
                    "emails": [{"value": name, "type": "work", "primary": true}] });
                let doc = adapter::normalize(&body, &USER)
                    .map_err(|e| provisor::error::AppError::bad_request("seed", e.to_string()))?;
                let change = adapter::user_change(account, &actor, Operation::Create, &doc, None)
                    .map_err(|e| provisor::error::AppError::bad_request("seed", e.to_string()))?;
                provisor::provisioning::run(c, &env, change)?;
            }
            Ok::<_, provisor::error::AppError>(())
        })
        .expect("seeding");
}

/// A fresh server with one account; returns it with the account id and a token of `scope`.
fn server_with_account(backend: &str, scope: &str) -> (ScratchDb, RunningServer, String, String) {
    let spec = if backend == "postgres" { pg_url() } else { "sqlite".into() };
    let db = ScratchDb::create(&spec).expect("scratch database");
    let server = RunningServer::start_unthrottled(db.url(), 2).expect("server");
    let env = server.state.env();
    let actor = provisor::provisioning::Actor::system("bench");
    let account = server
        .state
        .db
        .write_blocking(|c| {
            provisor::service::accounts::create(
                c,
                &env,
                &actor,
                provisor::provisioning::Source::Cli,
                provisor::service::accounts::NewAccount {
                    name: "Bench".into(),
                    owner_email: "owner@bench.test".into(),
                    owner_first_name: None,
                    owner_last_name: None,
                    is_master: false,
                    bulk_licensing: false,
                    parent_id: None,
                    billing: None,
                    vanity_name: None,
                },
            )
        })
        .expect("account")
        .0
        .id;
    let token = server
        .state
        .db
        .write_blocking(|c| {
            provisor::service::tokens::create(
                c,
                &env,
                &actor,
                provisor::provisioning::Source::Cli,
                &account,
                scope,
                None,
                None,
                None,
            )
        })
        .expect("token")
        .token;
    (db, server, account, token)
}

/// Stores `n` users named `seed-<i>@bench.test` through the SCIM adapter and the
/// provisioning pipeline, 2,000 per transaction (4 writers in parallel on PostgreSQL).
fn seed(server: &RunningServer, account: &str, n: usize) {
    use provisor::provisioning::{Actor, Operation};
    use provisor::scim::schema::USER;
    use provisor::service::scim::adapter;
    let started = std::time::Instant::now();
    let chunks: Vec<(usize, usize)> = (0..n).step_by(2000).map(|s| (s, (s + 2000).min(n))).collect();
    let writers = if server.state.db.backend() == provisor::store::Backend::Postgres { 4 } else { 1 };
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..writers {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(from, to)) = chunks.get(k) else { break };
                let env = server.state.env();
                let actor = Actor::system("bench-seed");
                server
                    .state
                    .db
                    .write_blocking(|c| {
                        for i in from..to {
                            let name = format!("seed-{i}@bench.test");
                            let body = json!({ "schemas": [provisor::scim::schema::USER_URN], "userName": name,
                                "name": {"givenName": "Seed", "familyName": i.to_string()}, "active": true,
                                "emails": [{"value": name, "type": "work", "primary": true}], "externalId": format!("seed-{i}") });
                            let doc = adapter::normalize(&body, &USER).map_err(|e| provisor::error::AppError::bad_request("seed", e.to_string()))?;
                            let change = adapter::user_change(account, &actor, Operation::Create, &doc, None)
                                .map_err(|e| provisor::error::AppError::bad_request("seed", e.to_string()))?;
                            provisor::provisioning::run(c, &env, change)?;
                        }
                        Ok::<_, provisor::error::AppError>(())
                    })
                    .expect("seeding");
            });
        }
    });
    println!("seeded {n} users in {:.1}s", started.elapsed().as_secs_f64());
}

/// Signs `n` responses for the account's ACS, in parallel; `user(i)` names the i-th user.
fn sign_responses(entity_id: &str, acs: &str, n: usize, user: impl Fn(usize) -> String + Sync) -> Vec<String> {
    use provisor::saml::test_idp::{IdpShape, ResponseSpec, SpecAttribute};
    let idp = provisor::testing::fixture_idp().expect("idp-fixtures");
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = std::sync::Mutex::new(vec![String::new(); n]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let email = user(i);
                let mut spec = ResponseSpec::new(IdpShape::EntraId, entity_id, acs);
                spec.name_id = email.clone();
                spec.attributes = vec![
                    SpecAttribute::new("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", &[&email]),
                    SpecAttribute::new("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", &["Bench"]),
                    SpecAttribute::new("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", &["User"]),
                    SpecAttribute::new("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", &["Everyone"]),
                ];
                let form: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("SAMLResponse", &idp.sign_response(&spec).expect("sign"))
                    .finish();
                out.lock().expect("lock")[i] = form;
            });
        }
    });
    out.into_inner().expect("lock")
}

/// Posts every body once over `clients` keep-alive connections; 303 (to the target) is a
/// login. Returns (rate/s, requests, failures, p50 ms, p99 ms).
fn post_all(acs: &str, bodies: &[String], clients: usize) -> (f64, u64, u64, f64, f64) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::atomic::AtomicU64::new(0);
    let latencies = std::sync::Mutex::new(Vec::with_capacity(bodies.len()));
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client");
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let t = std::time::Instant::now();
                    let resp = client
                        .post(acs)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send();
                    let ok = matches!(&resp, Ok(r) if r.status().as_u16() == 303);
                    if let Ok(r) = resp {
                        let _ = r.bytes();
                    }
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    if !ok {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                latencies.lock().expect("lock").extend(mine);
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let mut l = latencies.into_inner().expect("lock");
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or(0.0);
    (bodies.len() as f64 / secs, bodies.len() as u64, failures.into_inner(), pct(0.50), pct(0.99))
}

/// CPU seconds (user + system) used so far by `who` (`RUSAGE_SELF`: this process, the
/// server's threads included; `RUSAGE_CHILDREN`: the waited-for children, i.e. wrk).
fn cpu_seconds(who: libc::c_int) -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Runs `f` (which runs wrk to its end) and returns its result with the CPU the client
/// (wrk) and the server (this process) took meanwhile, in cores (CPU-seconds per second).
fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (client0, server0) = (cpu_seconds(libc::RUSAGE_CHILDREN), cpu_seconds(libc::RUSAGE_SELF));
    let started = std::time::Instant::now();
    let out = f();
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let client = (cpu_seconds(libc::RUSAGE_CHILDREN) - client0) / wall;
    let server = (cpu_seconds(libc::RUSAGE_SELF) - server0) / wall;
    (out, client, server)
}

/// SAML ACS logins, returning and JIT-new users, 1 client then 8 (wrk: 1×1, then 2×8), each
/// next to samael's bare parse + verify rate on 1 and 2 threads measured in the same run.
///
/// Every request posts its own freshly signed response: they are signed before the clock
/// starts and written to a file that `benches/wrk/saml_acs.lua` cycles through (each wrk
/// thread its own share, so no assertion is posted twice). `logins` sets how many are
/// signed for the 1- and the 8-client runs (default 1,500 and 3,000 per second of the run):
/// more than the run posts, or the replays show up as failures.
/// How many users take turns in the `saml-acs-returning-many` runs.
const RETURNING_USERS: usize = 1_000;

fn saml(backend: &str, seconds: u32, logins: &[usize]) {
    let (_db, server, account, token) = server_with_account(backend, "admin");
    let client = reqwest::blocking::Client::new();
    let metadata =
        std::fs::read_to_string(provisor::testing::fixtures_dir().join("entra-metadata.xml")).expect("metadata");
    let cfg: serde_json::Value = client
        .put(format!("{}/api/v1/sso", server.base))
        .bearer_auth(&token)
        .json(&json!({ "idp_metadata": metadata, "allow_idp_initiated": true }))
        .send()
        .and_then(|r| r.json())
        .expect("SSO configured");
    let entity_id = cfg["sp_entity_id"].as_str().expect("sp_entity_id").to_owned();
    let acs = cfg["acs_url"].as_str().expect("acs_url").to_owned();

    // The floor first: samael alone (and our whole validator) on the same kind of response.
    let one = sign_responses(&entity_id, &acs, 1, |_| "floor@bench.test".into());
    let value: String =
        url::form_urlencoded::parse(one[0].as_bytes()).next().map(|(_, v)| v.into_owned()).expect("value");
    let loaded = server
        .state
        .db
        .read_blocking(|c| provisor::service::sso::load(c, &account))
        .expect("load")
        .expect("configured");
    let urls = provisor::service::sso::SpUrls::new(&server.state.config.public_url, &account, &account, None);
    let vcfg = loaded.validation_config(&urls);
    let mut floor = [0.0f64; 2];
    for threads in [1usize, 2] {
        let dur = std::time::Duration::from_secs(3);
        let bare = provisor::testing::saml_bench::bench_bare_verify(&value, &vcfg, threads, dur).expect("bare");
        let full = provisor::testing::saml_bench::bench_full_validate(&value, None, &vcfg, threads, dur).expect("full");
        floor[threads - 1] = bare.per_second;
        println!(
            "saml-floor     threads={threads} samael_parse_verify={:.0}/s provisor_validate={:.0}/s",
            bare.per_second, full.per_second
        );
        println!(
            "{}",
            json!({ "scenario": "saml-floor", "threads": threads, "samael_per_s": bare.per_second.round(),
                    "validate_per_s": full.per_second.round(), "machine": machine() })
        );
    }

    // The returning users exist before the clock starts: one user signing in again and
    // again (on PostgreSQL its row lock serialises the 8 clients), and 1,000 users taking
    // turns (what an identity provider's morning looks like).
    let first = sign_responses(&entity_id, &acs, 1, |_| "returning@bench.test".into());
    assert_eq!(post_all(&acs, &first, 1).2, 0, "first login");
    let many = sign_responses(&entity_id, &acs, RETURNING_USERS, |i| format!("back-{i}@bench.test"));
    assert_eq!(post_all(&acs, &many, 2).2, 0, "first logins");
    drop(many);
    let dir = std::env::temp_dir().join(format!("provisor-saml-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let script = script_path("saml_acs.lua");
    let wanted = |clients: u32| {
        let per_second = if clients == 1 { 1500 } else { 3000 };
        let given = if clients == 1 { logins.first() } else { logins.get(1).or(logins.first()) };
        given.copied().unwrap_or(per_second * seconds as usize)
    };
    for kind in ["returning", "returning-many", "jit"] {
        for (clients, threads) in [(1u32, 1u32), (8, 2)] {
            let n = wanted(clients);
            let bodies = sign_responses(&entity_id, &acs, n, |i| match kind {
                "jit" => format!("jit-{clients}-{i}@bench.test"),
                "returning-many" => format!("back-{}@bench.test", i % RETURNING_USERS),
                _ => "returning@bench.test".into(),
            });
            let file = dir.join(format!("{kind}-{clients}.txt"));
            std::fs::write(&file, bodies.join("\n")).expect("bodies written");
            drop(bodies);
            let path = file.to_string_lossy().into_owned();
            let (r, client_cpu, server_cpu) =
                with_cpu(|| wrk(&script, &acs, threads, clients, seconds, &[&path, &threads.to_string()]));
            let _ = std::fs::remove_file(&file);
            let scenario = format!("saml-acs-{kind}");
            report(&scenario, backend, clients, r);
            let base = floor[(threads - 1) as usize];
            let ratio = if base > 0.0 { r.0 / base } else { 0.0 };
            println!(
                "{:<14} {backend:<9} clients={clients:<2} ratio={ratio:.2} of samael's {threads}-thread floor ({base:.0}/s); \
                 client (wrk) CPU {client_cpu:.2} cores, server CPU {server_cpu:.2} cores; {n} bodies signed",
                scenario
            );
            println!(
                "{}",
                json!({ "scenario": scenario, "backend": backend, "clients": clients, "rate_per_s": r.0.round(),
                        "floor_threads": threads, "floor_per_s": base.round(), "ratio_to_floor": (ratio * 100.0).round() / 100.0,
                        "client_cpu_cores": (client_cpu * 100.0).round() / 100.0,
                        "server_cpu_cores": (server_cpu * 100.0).round() / 100.0, "bodies": n, "machine": machine() })
            );
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

/// SCIM: creates and/or userName lookups with `users` stored.
fn scim(backend: &str, seconds: u32, users: usize, create: bool, filter: bool) {
    let (_db, server, account, token) = server_with_account(backend, "scim");
    seed(&server, &account, users);
    let tag = format!("{users}");
    if filter {
        let url = format!("{}/scim/v2/Users", server.base);
        let script = script_path("filter_users.lua");
        let n = users.to_string();
        wrk(&script, &url, 1, 2, 1, &[&token, &n, "seed"]);
        report(&format!("scim-filter@{tag}"), backend, 1, wrk(&script, &url, 1, 1, seconds, &[&token, &n, "seed"]));
        report(&format!("scim-filter@{tag}"), backend, 8, wrk(&script, &url, 2, 8, seconds, &[&token, &n, "seed"]));
    }
    if create {
        let url = format!("{}/scim/v2/Users", server.base);
        let script = script_path("create_users.lua");
        wrk(&script, &url, 1, 2, 1, &["warm", &token, "scim"]);
        report(&format!("scim-create@{tag}"), backend, 1, wrk(&script, &url, 1, 1, seconds, &["seq", &token, "scim"]));
        let ours = wrk(&script, &url, 2, 8, seconds, &["par", &token, "scim"]);
        report(&format!("scim-create@{tag}"), backend, 8, ours);
        match scim_peer_create_rate(seconds) {
            Some(peer) => {
                let ratio = if peer.0 > 0.0 { ours.0 / peer.0 } else { 0.0 };
                println!(
                    "scim-create@{tag} {backend:<9} clients=8  {ratio:.1}x the python peer scim2-server {SCIM_PEER_VERSION} \
                     ({:.0}/s, p99 {:.1} ms, same wrk script, same run)",
                    peer.0, peer.4
                );
                println!(
                    "{}",
                    json!({ "scenario": format!("scim-create@{tag}"), "backend": backend, "clients": 8, "rate_per_s": ours.0.round(),
                            "peer": format!("scim2-server {SCIM_PEER_VERSION}"), "peer_rate_per_s": peer.0.round(),
                            "ratio_to_peer": (ratio * 10.0).round() / 10.0, "machine": machine() })
                );
            }
            None => {
                println!("scim-create@{tag}: the python peer is not installed (scripts/install-bench-peers); no ratio")
            }
        }
    }
}

/// SCIM group membership PATCHes (`add` then `remove` of one member per request, as Entra
/// ID and Okta send them) on one group, with `users` stored: 1 client, then 8 (2×8).
fn scim_patch(backend: &str, seconds: u32, users: usize) {
    let (_db, server, account, token) = server_with_account(backend, "scim");
    seed(&server, &account, users);
    let client = reqwest::blocking::Client::new();
    let group: serde_json::Value = client
        .post(format!("{}/scim/v2/Groups", server.base))
        .bearer_auth(&token)
        .header("Content-Type", "application/scim+json")
        .body(
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bench Members" })
                .to_string(),
        )
        .send()
        .and_then(|r| r.json())
        .expect("group created");
    let group_id = group["id"].as_str().expect("group id").to_owned();
    let mut ids: Vec<String> = Vec::with_capacity(users);
    loop {
        let page: serde_json::Value = client
            .get(format!("{}/scim/v2/Users?startIndex={}&count=500", server.base, ids.len() + 1))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.json())
            .expect("users listed");
        let got: Vec<String> = page["Resources"]
            .as_array()
            .map(|a| a.iter().filter_map(|u| u["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        ids.extend(got);
    }
    let file = std::env::temp_dir().join(format!("provisor-patch-bench-{}.txt", std::process::id()));
    std::fs::write(&file, ids.join("\n")).expect("ids written");
    let path = file.to_string_lossy().into_owned();
    let url = format!("{}/scim/v2/Groups/{group_id}", server.base);
    let script = script_path("patch_members.lua");
    wrk(&script, &url, 1, 2, 1, &[&token, &group_id, &path, "1"]);
    let tag = format!("{users}");
    for (clients, threads) in [(1u32, 1u32), (8, 2)] {
        let r = wrk(&script, &url, threads, clients, seconds, &[&token, &group_id, &path, &threads.to_string()]);
        report(&format!("scim-patch-members@{tag}"), backend, clients, r);
    }
    let _ = std::fs::remove_file(&file);
}

/// The pinned python SCIM server the SCIM create rate is compared with.
const SCIM_PEER_VERSION: &str = "0.8.1";

/// Starts the python peer (`scim2-server`, installed by `scripts/install-bench-peers` in a
/// virtualenv under `target/`) on a free loopback port and measures `POST /Users` with the
/// same wrk script and shape as ours (2 threads × 8 connections); `None` when it is not
/// installed.
fn scim_peer_create_rate(seconds: u32) -> Option<(f64, u64, u64, f64, f64)> {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scim-peer-venv/bin/scim2-server");
    if !bin.exists() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let token = "peer-bench-token";
    let mut child = Command::new(&bin)
        .args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", token])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let started = std::time::Instant::now();
    while client.get(format!("{base}/ServiceProviderConfig")).bearer_auth(token).send().is_err() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let url = format!("{base}/Users");
    let script = script_path("create_users.lua");
    wrk(&script, &url, 1, 2, 1, &["peerwarm", token, "scim"]);
    let rate = wrk(&script, &url, 2, 8, seconds, &["peer", token, "scim"]);
    let _ = child.kill();
    let _ = child.wait();
    Some(rate)
}

/// Bulk phone CSV through the CLI (`provisor phone import`): 10,000 then `--rows` (100,000) rows with
/// phone columns (site, extension, number, calling plan, SMS, a desk phone), each row a new
/// user. Reports rows/s and the importer's peak resident memory (flat = streamed).
fn import(backend: &str, rows: usize) {
    let rows = u32::try_from(rows).expect("--rows fits u32");
    let sizes: Vec<u32> = if rows > 10_000 { vec![10_000, rows] } else { vec![rows] };
    use provisor::provisioning::{Actor, Source};
    use provisor::service;
    let spec = if backend == "postgres" { pg_url() } else { "sqlite".into() };
    let db = ScratchDb::create(&spec).expect("scratch database");
    let store = provisor::store::Db::open(db.url(), &Default::default()).expect("database");
    let env = provisor::provisioning::Env::standalone(chrono::Utc::now().naive_utc(), "http://127.0.0.1");
    let actor = Actor::system("bench");
    let total: u32 = sizes.iter().sum();
    let account = store
        .write_blocking(|c| {
            let (a, _) = service::accounts::create(
                c,
                &env,
                &actor,
                Source::Cli,
                service::accounts::NewAccount {
                    name: "Import".into(),
                    owner_email: "owner@import.test".into(),
                    owner_first_name: None,
                    owner_last_name: None,
                    is_master: false,
                    bulk_licensing: false,
                    parent_id: None,
                    billing: None,
                    vanity_name: None,
                },
            )?;
            service::accounts::update(
                c,
                &env,
                &actor,
                &a.id,
                service::accounts::AccountUpdate { phone_enabled: Some(true), ..Default::default() },
            )?;
            let plan = provisor::domain::catalog::Product::CallingPlan(
                provisor::domain::catalog::CallingPlan::RegionalUnlimited,
            );
            service::licenses::purchase(c, &env, &actor, Source::Cli, &a.id, plan, i64::from(total))?;
            service::phone::create_site(
                c,
                &env,
                &actor,
                &a.id,
                &service::phone::NewSite { name: "Bulk".into(), code: "2".into(), extension_length: Some(6) },
            )?;
            Ok::<_, provisor::error::AppError>(a.id)
        })
        .expect("setup");
    for chunk in (0..total).collect::<Vec<_>>().chunks(10_000) {
        let numbers: Vec<String> = chunk.iter().map(|i| format!("+1212{:07}", 5_000_000 + i)).collect();
        store
            .write_blocking(|c| service::phone::add_numbers(c, &env, &actor, Source::Cli, &account, &numbers))
            .expect("numbers");
    }
    drop(store);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut offset = 0u32;
    for rows in sizes {
        let path = dir.path().join(format!("phone-{rows}.csv"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("csv"));
        use std::io::Write;
        writeln!(f, "Email,Site Code,Extension Number,Phone Number,Calling Plan,SMS,Desk Phone Brand 1,Desk Phone Model 1,Desk Phone MAC Address 1").expect("write");
        for i in offset..offset + rows {
            writeln!(
                f,
                "user{i}@import.test,2,{},+1 212 {:07},Regional Unlimited,Yes,Poly,VVX 450,{:012X}",
                100_000 + i,
                5_000_000 + i,
                0x0004_F200_0000u64 + u64::from(i)
            )
            .expect("write");
        }
        f.flush().expect("flush");
        drop(f);
        offset += rows;
        let start = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_provisor"))
            .args(["phone", "import", "--account", &account, "--file"])
            .arg(&path)
            .env("PROVISOR_DATABASE_URL", db.url())
            .env("RUST_LOG", "warn")
            .output()
            .expect("provisor runs");
        let secs = start.elapsed().as_secs_f64();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let failed = report["failed"].as_array().map(|a| a.len()).unwrap_or(usize::MAX);
        // Peak RSS of the largest child so far (KiB on Linux): the 10k run first, so the
        // 100k figure shows whether memory grows with the file.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        let rate = f64::from(rows) / secs;
        println!("phone-import   {backend:<9} rows={rows:<7} rate={rate:>8.0}/s seconds={secs:.2} failed={failed} peak_rss_max_so_far={}MiB", usage.ru_maxrss / 1024);
        println!(
            "{}",
            json!({ "scenario": "phone-import", "backend": backend, "rows": rows, "rate_per_s": rate.round(), "seconds": secs,
            "failed_rows": failed, "peak_rss_kib_max_so_far": usage.ru_maxrss, "applied": report["applied"], "machine": machine() })
        );
    }
}

/// A user CSV of `rows` rows whose e-mails start with `lane`.
fn user_csv(lane: &str, rows: usize) -> String {
    let mut csv = String::with_capacity(rows * 40);
    csv.push_str("email,first name,last name,department\n");
    for i in 0..rows {
        csv.push_str(&format!("{lane}-{i}@bench.test,First{i},Last{i},Dept{}\n", i % 7));
    }
    csv
}

/// Percentile `p` (0..=100) of sorted milliseconds.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// SCIM creates, one at a time with a 5 ms pause, until `done` says stop (or `max` were
/// sent); returns their latencies in ms, sorted, and the number of non-201 answers.
fn scim_probe(base: &str, token: &str, tag: &str, max: usize, done: &dyn Fn() -> bool) -> (Vec<f64>, usize) {
    let client = reqwest::blocking::Client::new();
    let mut lat = Vec::new();
    let mut failures = 0;
    for i in 0..max {
        if done() {
            break;
        }
        let body = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                           "userName": format!("probe-{tag}-{i}@bench.test"), "active": true });
        let t = std::time::Instant::now();
        let r = client
            .post(format!("{base}/scim/v2/Users"))
            .bearer_auth(token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
            .send();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if !matches!(r, Ok(ref r) if r.status().as_u16() == 201) {
            failures += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (lat, failures)
}

fn report_latency(phase: &str, backend: &str, lat: &[f64], failures: usize, import_rows_per_s: Option<f64>) {
    let (p50, p99, max) = (percentile(lat, 50.0), percentile(lat, 99.0), lat.last().copied().unwrap_or(0.0));
    println!(
        "import-latency {backend:<9} {phase:<22} scim_creates={:<6} failures={failures:<3} p50={p50:.2}ms p99={p99:.2}ms max={max:.2}ms{}",
        lat.len(),
        import_rows_per_s.map(|r| format!(" import={r:.0} rows/s")).unwrap_or_default()
    );
    println!(
        "{}",
        json!({ "scenario": "import-latency", "backend": backend, "phase": phase, "scim_creates": lat.len(),
                 "failures": failures, "p50_ms": p50, "p99_ms": p99, "max_ms": max,
                 "import_rows_per_s": import_rows_per_s.map(f64::round), "machine": machine() })
    );
}

/// See the module comment.
fn import_latency(backend: &str, rows: usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (db, server, account, admin) = server_with_account(backend, "admin");
    let env = server.state.env();
    let scim = server
        .state
        .db
        .write_blocking(|c| {
            provisor::service::tokens::create(
                c,
                &env,
                &provisor::provisioning::Actor::system("bench"),
                provisor::provisioning::Source::Cli,
                &account,
                "scim",
                None,
                None,
                None,
            )
        })
        .expect("token")
        .token;
    let base = server.base.clone();
    let (lat, failures) = scim_probe(&base, &scim, "idle", 1000, &|| false);
    report_latency("no import", backend, &lat, failures, None);

    // An import over HTTP, in this process.
    let import_over_http = |lane: &str, n: usize| {
        let (base, admin, csv) = (base.clone(), admin.clone(), user_csv(lane, n));
        std::thread::spawn(move || {
            let t = std::time::Instant::now();
            let r = reqwest::blocking::Client::new()
                .post(format!("{base}/api/v1/users/import"))
                .bearer_auth(&admin)
                .header("Content-Type", "text/csv")
                .body(csv)
                .timeout(std::time::Duration::from_secs(3600))
                .send()
                .expect("import request");
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().unwrap_or_default();
            (status, v, t.elapsed())
        })
    };
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let one = import_over_http("http", rows);
    let watcher = std::thread::spawn(move || {
        let r = one.join().expect("import thread");
        flag.store(true, Ordering::SeqCst);
        r
    });
    let (lat, failures) = scim_probe(&base, &scim, "http", usize::MAX, &|| finished.load(Ordering::SeqCst));
    let (status, v, took) = watcher.join().expect("watcher");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["created"], rows as u64, "import report: {v}");
    report_latency("during HTTP import", backend, &lat, failures, Some(rows as f64 / took.as_secs_f64()));

    // The same import by the CLI: another process on the same database.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users.csv");
    std::fs::write(&path, user_csv("cli", rows)).expect("csv");
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let (url, acct) = (db.url().to_owned(), account.clone());
    let cli = std::thread::spawn(move || {
        let t = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_provisor"))
            .args(["users", "import", "--account", &acct, "--file"])
            .arg(&path)
            .env("PROVISOR_DATABASE_URL", &url)
            .output()
            .expect("provisor users import");
        flag.store(true, Ordering::SeqCst);
        (out, t.elapsed())
    });
    let (lat, failures) = scim_probe(&base, &scim, "cli", usize::MAX, &|| finished.load(Ordering::SeqCst));
    let (out, took) = cli.join().expect("cli thread");
    assert!(out.status.success(), "CLI import failed: {}", String::from_utf8_lossy(&out.stderr));
    report_latency("during CLI import", backend, &lat, failures, Some(rows as f64 / took.as_secs_f64()));

    // Two imports at once, SCIM creates in between: both complete, every row is there.
    let each = rows * 6 / 10;
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let (a, b) = (import_over_http("twin-a", each), import_over_http("twin-b", each));
    let watcher = std::thread::spawn(move || {
        let r = (a.join().expect("import a"), b.join().expect("import b"));
        flag.store(true, Ordering::SeqCst);
        r
    });
    let started = std::time::Instant::now();
    let (lat, failures) = scim_probe(&base, &scim, "twin", usize::MAX, &|| finished.load(Ordering::SeqCst));
    let ((sa, va, _), (sb, vb, _)) = watcher.join().expect("watcher");
    let took = started.elapsed();
    for (s, v) in [(sa, &va), (sb, &vb)] {
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["created"], each as u64, "import report: {v}");
        assert_eq!(v["failed"], json!([]), "import report: {v}");
    }
    let stored: i64 = server
        .state
        .db
        .read_blocking(|c| {
            use diesel::prelude::*;
            provisor::store::schema::users::table
                .filter(provisor::store::schema::users::user_name.like("twin-%"))
                .count()
                .get_result::<i64>(c)
                .map_err(provisor::error::AppError::from)
        })
        .expect("count");
    assert_eq!(stored, 2 * each as i64, "rows of the two imports stored");
    report_latency(
        &format!("during 2x{each} imports"),
        backend,
        &lat,
        failures,
        Some((2 * each) as f64 / took.as_secs_f64()),
    );
}

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: a load run
    // there would take minutes and fill the disk, so the test run only checks it builds.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load benchmarks run with `cargo bench --bench load -- SCENARIO`; nothing to do under cargo test");
        return;
    }
    let o = parse_args();
    println!("machine: {}", machine());
    for backend in &o.backends {
        match o.scenario.as_str() {
            "admin" => admin(backend, o.seconds),
            "delegated" => delegated(backend, o.seconds),
            "sync" => sync(backend, o.members, o.relationships),
            "reports" => reports(backend, o.per_sub, o.subs),
            "import" => import(backend, o.rows),
            "import-latency" => import_latency(backend, o.rows),
            "saml" => saml(backend, o.seconds, &o.logins),
            "multiprocess" => multiprocess_load(backend, o.seconds),
            "crash-import" => crash_import(backend, o.rows),
            "scim-patch" => {
                for &n in &o.users {
                    scim_patch(backend, o.seconds, n);
                }
            }
            "scim-create" | "scim-filter" | "scim" => {
                for &n in &o.users {
                    let create = o.scenario != "scim-filter";
                    let filter = o.scenario != "scim-create";
                    scim(backend, o.seconds, n, create, filter);
                }
            }
            other => {
                eprintln!("unknown scenario {other:?}; known: admin, delegated, sync, reports, import, import-latency, scim-create, scim-filter, scim, scim-patch, saml, multiprocess, crash-import");
                std::process::exit(2);
            }
        }
    }
}
