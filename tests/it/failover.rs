//! Failover (`operations.md` § Failover): a store URL naming a primary and its streaming
//! standby (`postgres://…@h1:p1,h2:p2/db`, synchronous replication), the primary lost in
//! the middle of a pass and the standby promoted. A real `esurety run` and a real
//! `esurety serve` carry on against the new primary. These tests start clusters of their
//! own, so they run once, whatever the suite's store parameter (see `tests/run.sh`).

use crate::common::{Setup, application};
use crate::pg::{self, Cluster};
use crate::registry_service::{Serving, http};
use std::time::{Duration, Instant};

const KANAGAWA: &str = "kanagawa@ejcs.example";

/// A primary, its synchronous standby, and a configuration whose store names both (the
/// primary first), with `[web]` and `[metrics]` on free loopback ports.
struct Pair {
    primary: Cluster,
    standby: Cluster,
    /// The database on the primary alone, and on the standby alone.
    on_primary: String,
    on_standby: String,
    s: Setup,
}

fn pair() -> Pair {
    let primary = Cluster::own();
    let on_primary = pg::database_on(&primary.base_url());
    let standby = Cluster::standby_of(&primary, true);
    let name = on_primary.rsplit('/').next().unwrap().to_string();
    let on_standby = format!("{}/{name}", standby.base_url());
    let s = Setup::on_sqlite();
    s.use_store(&format!("postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{name}", primary.port, standby.port));
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    Pair { primary, standby, on_primary, on_standby, s }
}

fn count(url: &str, sql: &str) -> Option<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).ok()?;
    c.query_one(sql, &[]).ok().map(|r| r.get(0))
}

fn wait_until(what: &str, limit: Duration, log: &Serving, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {}", log.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A registry check through the web server's API (a write: the check is recorded): its
/// HTTP status and `result`.
fn api_check(web: &Serving, token: &str) -> (u16, String) {
    let body = br#"{"number": "35075-00001M", "key": "CDEF34679HJK"}"#;
    let (status, _, answer) = http(&web.url, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], body);
    (status, serde_json::from_slice::<serde_json::Value>(&answer).unwrap_or_default()["result"].as_str().unwrap_or("").to_string())
}

/// The `metrics on URL` line a process printed, then one counter's value there.
fn counter(serving: &Serving, name: &str) -> f64 {
    let url = serving.log.lock().unwrap().lines().find_map(|l| l.split("metrics on ").nth(1).map(|u| u.trim().to_string())).expect("a `metrics on` line");
    let (base, path) = url.trim_start_matches("http://").split_once('/').map(|(b, p)| (format!("http://{b}"), format!("/{p}"))).unwrap();
    let (_, _, body) = http(&base, "GET", &path, &[], b"");
    String::from_utf8(body).unwrap().lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

/// The daemon works through 24 applications; mid-pass the primary is killed (SIGKILL, as
/// when its machine is lost) and the standby promoted. The daemon finds the new primary
/// and carries on: every application answered once, two certificates each, serials
/// without gaps, each reply in the contractor's Maildir once, nothing left in the outbox;
/// the web server's next registry check is answered; the reconnect is counted. Prints the
/// time from the kill to the first new certificate.
#[test]
fn the_primary_killed_mid_pass_and_the_standby_promoted_lose_nothing_and_double_nothing() {
    let p = pair();
    let s = &p.s;
    let token = s.run_ok(&["token", "add", "--name", "神奈川県内広域水道企業団"]).trim().to_string();
    let apps = 24;
    for n in 1..=apps {
        s.drop_mail(KANAGAWA, &application(n));
    }
    let web = Serving::start(s, &["serve"]);
    assert_eq!(api_check(&web, &token).0, 200, "the web server answers (no such certificate yet)");
    let daemon = Serving::start(s, &["run", "--interval", "1"]);
    wait_until("the first certificates", Duration::from_secs(60), &daemon, || count(&p.on_primary, "SELECT count(*) FROM certificates").unwrap_or(0) > 0);
    let killed = Instant::now();
    p.primary.kill();
    p.standby.promote();
    let kept = count(&p.on_standby, "SELECT count(*) FROM certificates").unwrap();
    assert!(kept < 2 * apps as i64, "the primary was killed mid-pass ({kept} certificates on the standby)");
    wait_until("a new certificate on the new primary", Duration::from_secs(30), &daemon, || count(&p.on_standby, "SELECT count(*) FROM certificates").unwrap_or(0) > kept);
    let took = killed.elapsed();
    eprintln!("failover: {kept} certificates kept; first new certificate {} ms after the kill", took.as_millis());
    wait_until("every application answered", Duration::from_secs(60), &daemon, || {
        count(&p.on_standby, "SELECT count(*) FROM messages WHERE state = 'done'") == Some(apps as i64)
            && count(&p.on_standby, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == Some(0)
    });
    crate::postgres::all_answered_once(s, apps);
    assert!(counter(&daemon, "esurety_store_reconnects_total") >= 1.0, "the reconnect is counted");
    // The web server's connection went with the old primary: its next check connects to
    // the new one and is answered (and recorded) there.
    assert_eq!(api_check(&web, &token), (200, "mismatch".to_string()), "{}", web.log.lock().unwrap());
    assert_eq!(count(&p.on_standby, "SELECT count(*) FROM registry_checks"), Some(2), "each check recorded once: the one before (kept) and the one after");
    let said = daemon.log.lock().unwrap().clone();
    assert!(said.contains("is away") && !said.contains("panicked"), "{said}");
    assert!(daemon.stop().success());
    assert!(web.stop().success());
}

/// A switchover where the old primary stays up: it is made read-only
/// (`default_transaction_read_only`, as a failover manager fences it) in the middle of a
/// pass, then the standby is promoted. The daemon's next write there is refused (25006):
/// it drops that connection, skips the read-only host, works on with the new primary, and
/// says why it moved. The web server's idle connection to the old one is asked before use
/// and left for the new one: its first check after the switchover is answered. Nothing
/// lost, nothing doubled.
#[test]
fn a_primary_that_turns_read_only_mid_pass_is_left_for_the_promoted_standby() {
    let p = pair();
    let s = &p.s;
    let token = s.run_ok(&["token", "add", "--name", "神奈川県内広域水道企業団"]).trim().to_string();
    let apps = 24;
    for n in 1..=apps {
        s.drop_mail(KANAGAWA, &application(n));
    }
    let web = Serving::start(s, &["serve"]);
    assert_eq!(api_check(&web, &token).0, 200);
    let daemon = Serving::start(s, &["run", "--interval", "1"]);
    wait_until("the first certificates", Duration::from_secs(60), &daemon, || count(&p.on_primary, "SELECT count(*) FROM certificates").unwrap_or(0) > 0);
    let mut old = postgres::Client::connect(&p.on_primary, postgres::NoTls).unwrap();
    old.batch_execute("ALTER SYSTEM SET default_transaction_read_only = on").unwrap();
    old.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_until("a write refused by the read-only primary", Duration::from_secs(30), &daemon, || daemon.log.lock().unwrap().contains("no longer takes writes"));
    p.standby.promote();
    wait_until("every application answered", Duration::from_secs(60), &daemon, || {
        count(&p.on_standby, "SELECT count(*) FROM messages WHERE state = 'done'") == Some(apps as i64)
            && count(&p.on_standby, "SELECT count(*) FROM outbox WHERE status <> 'sent'") == Some(0)
    });
    crate::postgres::all_answered_once(s, apps);
    let on_old = count(&p.on_primary, "SELECT count(*) FROM certificates").unwrap();
    assert!(on_old < 2 * apps as i64, "the rest was issued on the new primary only ({on_old} on the old one)");
    // The web server's connection to the old primary is still open, idle since its first
    // check: asked before use, it is found read-only and left, so the first check after
    // the switchover is answered (and recorded) by the new primary.
    assert_eq!(api_check(&web, &token), (200, "mismatch".to_string()), "{}", web.log.lock().unwrap());
    assert_eq!(count(&p.on_standby, "SELECT count(*) FROM registry_checks"), Some(2));
    assert!(daemon.stop().success());
    assert!(web.stop().success());
}
