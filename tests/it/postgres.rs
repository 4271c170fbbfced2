//! The company's store on PostgreSQL (`store.md`): several daemons on one store, and what
//! it must survive, against a real server (see `pg.rs`).

use crate::common::Setup;
use crate::pg;

/// A configuration on a database of its own on the shared cluster (whatever the suite's
/// store parameter).
fn on_postgres() -> Setup {
    let s = Setup::new();
    if !pg::on_postgres() {
        s.use_store(&pg::database());
    }
    s
}

/// Two daemons work one queue (200 applications, 100 submissions) on one PostgreSQL store
/// while one or the other is killed with SIGKILL at random moments and started again:
/// every message one outcome, no certificate twice, serials without gaps, one reply each,
/// nothing left in the outbox.
#[test]
fn two_daemons_on_one_store_lose_nothing_and_double_nothing_when_either_is_killed() {
    let f = crate::reliability::crash_test(on_postgres(), 50, 200, 100, 12, 2);
    assert!(f.kills >= 12);
    assert!(f.messages == 350 && f.duplicates == 0 && f.missing == 0);
}

/// Two daemons sweep one outbox of mail waiting for SMTP (the server was down while 12
/// applications were answered) at the same moment, on real Postfix: each mail goes out
/// once, by one of them (each holds a mail while it sends it).
#[test]
fn two_daemons_sweeping_one_outbox_over_smtp_send_each_mail_once() {
    use crate::mail_servers::{cmd, completions, configure, server_mails, users, wait_for};
    let s = on_postgres();
    let m = crate::servers::Servers::start(&users(&s));
    configure(&s, &m, false);
    let n = 12;
    for i in 0..n {
        m.send(MARUICHI, &[KANAGAWA], &application(i));
    }
    wait_for("delivery to the branch", Duration::from_secs(20), || server_mails(&m.maildir(KANAGAWA)).len() == n);
    m.stop_smtp();
    let out = cmd(&s).args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.json(&["outbox"]).as_array().unwrap().iter().all(|o| o["status"] == "pending"), "all waiting for the server");
    m.start_smtp();
    let sweep = || cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", "2026-07-04T11:00:00+09:00").stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (sweep(), sweep());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    wait_for("every notice", Duration::from_secs(30), || completions(&m).len() >= n);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(completions(&m).len(), n, "each once");
    assert!(s.json(&["outbox"]).as_array().unwrap().iter().all(|o| o["status"] == "sent"));
    let said = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).split("mail sent ").nth(1).and_then(|t| t.split(',').next()).and_then(|n| n.trim().parse::<usize>().ok()).unwrap_or(0);
    assert_eq!(said(&a) + said(&b), n, "between them, each mail sent by one: {} + {}", said(&a), said(&b));
}

/// The sending daemon's connection to the store is ended (`pg_terminate_backend`) while it
/// stands between the two recipients of one mail over real SMTP (取手興業's completion
/// notice, also to its 希望する address). The mail stays its own: a second daemon passing
/// at that moment leaves it alone. An hour later its hold has lapsed and the second daemon
/// takes the mail; the first, going on, finds its connection gone (its pass stops, as any
/// pass does then) and sends nothing more. Each recipient gets one copy.
#[test]
fn a_daemon_whose_store_connection_drops_mid_mail_keeps_its_hold_and_stops_once_it_lapsed() {
    held_mid_mail(true);
}

/// The same without the connection ended: a daemon held up between two recipients for
/// longer than its hold lasts loses the mail to the second daemon, and when it goes on it
/// finds the mail no longer its own and leaves it (its pass goes on with the rest).
#[test]
fn a_daemon_held_up_mid_mail_past_its_hold_leaves_the_mail_to_the_other() {
    held_mid_mail(false);
}

/// 取手興業's completion notice (to info@ and its 希望する address keiri@) over real SMTP,
/// its first daemon stopped between the two recipients, its store connection ended or not;
/// a second daemon at once and an hour later.
fn held_mid_mail(end_connection: bool) {
    use crate::mail_servers::{cmd, configure, server_mails, users, wait_for};
    let s = on_postgres();
    let m = crate::servers::Servers::start(&users(&s));
    configure(&s, &m, false);
    let raw = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications/valid/002.eml")).unwrap();
    m.send("info@toride-kogyo.example", &["ibaraki@ejcs.example"], &raw);
    wait_for("delivery to the branch", Duration::from_secs(10), || !server_mails(&m.maildir("ibaraki@ejcs.example")).is_empty());
    let notices = |a: &str| server_mails(&m.maildir(a)).into_iter().filter(|(_, x)| x.subject.starts_with("電子保証（認証キー）発行完了のお知らせ")).count();
    let first = Paused::start(&s, cmd(&s).args(["run", "--once"]), "sending#2");
    wait_for("the first recipient's copy", Duration::from_secs(10), || notices("info@toride-kogyo.example") == 1);
    if end_connection {
        let mut admin = postgres::Client::connect(&store_url(&s), postgres::NoTls).unwrap();
        let ended: i64 = admin.query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'esurety' AND datname = current_database()", &[],
        ).unwrap().get(0);
        assert_eq!(ended, 1, "the first daemon's connection ended");
    }
    let second = cmd(&s).args(["run", "--once"]).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(mail_sent(&second), 0, "the mail is still the first daemon's: {}", String::from_utf8_lossy(&second.stderr));
    let later = cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", "2026-07-04T11:00:00+09:00").output().unwrap();
    assert!(later.status.success(), "{}", String::from_utf8_lossy(&later.stderr));
    assert_eq!(mail_sent(&later), 1, "its hold lapsed, the second daemon sends the mail: {}", String::from_utf8_lossy(&later.stderr));
    wait_for("the second recipient's copy", Duration::from_secs(10), || notices("keiri@toride-kogyo.example") >= 1);
    let first = first.go();
    if !end_connection {
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    }
    assert_eq!(mail_sent(&first), 0, "the first daemon stopped: {}", String::from_utf8_lossy(&first.stderr));
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!((notices("info@toride-kogyo.example"), notices("keiri@toride-kogyo.example")), (1, 1), "one copy each");
    assert_eq!(s.json(&["outbox"])[0]["status"], "sent");
}

/// A mail waits for a server that defers it (here the SMTP server is down: a temporary
/// failure, as a greylisting server's 4xx is). Two daemons pass at the same moment; one
/// tries the mail and defers it again, and the other, which had listed it as due just
/// before, does not try it a third time: one attempt per due time, whatever the number of
/// daemons, so the ten attempts last hours and not minutes.
#[test]
fn a_mail_one_daemon_just_deferred_is_not_tried_again_by_another() {
    use crate::mail_servers::{cmd, configure, server_mails, users, wait_for};
    let s = on_postgres();
    let m = crate::servers::Servers::start(&users(&s));
    configure(&s, &m, false);
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery to the branch", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    m.stop_smtp();
    let first = cmd(&s).args(["run", "--once"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!((s.json(&["outbox"])[0]["status"].as_str(), s.json(&["outbox"])[0]["attempts"].as_i64()), (Some("pending"), Some(1)));
    let later = "2026-07-04T10:10:00+09:00";
    let b = Paused::start(&s, cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", later), "outbox_listed");
    let a = cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", later).output().unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(s.json(&["outbox"])[0]["attempts"], 2, "one daemon tried it again");
    let b = b.go();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let o = s.json(&["outbox"]);
    assert_eq!((o[0]["status"].as_str(), o[0]["attempts"].as_i64()), (Some("pending"), Some(2)), "the other did not try it just after: {o}");
}

/// The store's URL in the configuration.
fn store_url(s: &Setup) -> String {
    let toml: toml::Table = std::fs::read_to_string(s.config()).unwrap().parse().unwrap();
    toml["store"].as_str().unwrap().to_string()
}

/// How many mails a pass says it sent (`mail sent N, …` on standard error).
fn mail_sent(o: &std::process::Output) -> usize {
    String::from_utf8_lossy(&o.stderr).split("mail sent ").nth(1).and_then(|t| t.split(',').next()).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// An `esurety run --once` held at a point of its pass (`ESURETY_PAUSE_AT`, see
/// `faults::pause`) until [`Paused::go`]; killed if the test ends before.
struct Paused {
    child: Option<Child>,
    file: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Paused {
    fn start(s: &Setup, c: &mut std::process::Command, at: &str) -> Paused {
        let file = s.dir.join(format!("pause-{}", at.replace('#', "-")));
        let log = s.dir.join(format!("pause-{}.log", at.replace('#', "-")));
        let child = c.env("ESURETY_PAUSE_AT", at).env("ESURETY_PAUSE_FILE", &file)
            .stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        let mut p = Paused { child: Some(child), file, log };
        let reached = std::path::PathBuf::from(format!("{}.reached", p.file.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reached.exists() {
            let exited = p.child.as_mut().unwrap().try_wait().unwrap();
            assert!(exited.is_none() && Instant::now() < deadline, "it did not reach {at}: {}", std::fs::read_to_string(&p.log).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(20));
        }
        p
    }

    fn go(mut self) -> std::process::Output {
        std::fs::write(&self.file, "").unwrap();
        let status = self.child.take().unwrap().wait().unwrap();
        std::process::Output { status, stdout: Vec::new(), stderr: std::fs::read(&self.log).unwrap() }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Two web servers of the registry on one store, asked at once (60 wrong keys for one
/// number, from one token, half to each, within the 32 connections a server takes from one
/// address): the number's lockout (5 failures) holds across
/// them. Each check counts the failures under the locks of what it counts (the number,
/// the token, the address), so no check reads a count another is about to raise.
#[test]
fn two_registry_servers_on_one_store_keep_one_lockout_for_concurrent_wrong_keys() {
    use crate::registry_service::{Serving, http};
    let s = Setup::init(&["--side", "branch", "--listen", "127.0.0.1:0"]);
    if !pg::on_postgres() {
        s.use_store(&pg::database());
    }
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    assert_eq!(s.json(&["certificate", "35075-00001M"])["number"], "35075-00001M");
    let token = s.run_ok(&["token", "add", "--name", "神奈川県内広域水道企業団"]).trim().to_string();
    let servers = [Serving::start(&s, &["serve"]), Serving::start(&s, &["serve"])];
    let urls: Vec<String> = servers.iter().map(|x| x.url.clone()).collect();
    let n = 60;
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let asks: Vec<_> = (0..n).map(|i| {
        let (url, token, start) = (urls[i % 2].clone(), token.clone(), start.clone());
        std::thread::spawn(move || {
            start.wait();
            let body = format!("{{\"number\": \"35075-00001M\", \"key\": \"CDEF34679H{}\"}}", ["JK", "KJ", "JJ", "KK"][i % 4]);
            let (st, _, answer) = http(&url, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], body.as_bytes());
            (st, serde_json::from_slice::<serde_json::Value>(&answer).unwrap_or_default()["result"].as_str().unwrap_or("").to_string())
        })
    }).collect();
    let answers: Vec<(u16, String)> = asks.into_iter().map(|t| t.join().unwrap()).collect();
    let mismatches = answers.iter().filter(|(_, r)| r == "mismatch").count();
    let locked = answers.iter().filter(|(_, r)| r == "locked").count();
    assert_eq!((mismatches, locked), (5, n - 5), "five wrong keys checked, then locked: {answers:?}");
    assert_eq!(s.db().count("SELECT count(*) FROM registry_failures WHERE number = '35075-00001M'"), 5);
    for x in servers {
        assert!(x.stop().success());
    }
}

use crate::common::application;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

/// A daemon whose standard error goes to a file (what it says while it waits).
fn daemon(s: &Setup, log: &std::path::Path) -> Child {
    s.cmd().args(["run", "--interval", "1"]).env("ESURETY_LOG", "warn")
        .stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A store's count, or `None` while its server cannot be asked.
fn try_count(url: &str, sql: &str) -> Option<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).ok()?;
    c.query_one(sql, &[]).ok().map(|r| r.get(0))
}

/// `apps` applications each answered once, and nothing else: an outcome each, two
/// certificates each, serials without gaps, one completion mail each, nothing waiting.
pub(crate) fn all_answered_once(s: &Setup, apps: usize) {
    let mut db = s.db();
    assert_eq!(db.count("SELECT count(*) FROM messages"), apps as i64);
    assert_eq!(db.count("SELECT count(*) FROM messages WHERE state = 'done' AND outcome = 'issued'"), apps as i64);
    assert_eq!(db.count("SELECT count(*) FROM certificates"), 2 * apps as i64);
    assert_eq!(db.count("SELECT max(last) FROM serials WHERE office_code = '35075'"), 2 * apps as i64, "serials without gaps");
    assert_eq!(db.count("SELECT count(*) FROM outbox WHERE status <> 'sent'"), 0, "nothing waits in the outbox");
    let mut replies = std::collections::HashMap::<String, usize>::new();
    for m in s.mails(MARUICHI) {
        *replies.entry(m.in_reply_to.unwrap_or_default()).or_default() += 1;
    }
    for n in 1..=apps {
        assert_eq!(replies.get(&format!("<app-{n}@maruichi.example>")), Some(&1), "app-{n} answered once: {replies:?}");
    }
    assert_eq!(replies.len(), apps, "{replies:?}");
}

/// The server crashes (`pg_ctl stop -m immediate`) in the middle of a pass and comes back:
/// the daemon says why it waits while the server is away, then goes on; nothing is lost
/// or doubled.
#[test]
fn the_server_crashing_mid_pass_loses_nothing_and_the_daemon_says_why_it_waits() {
    let cluster = pg::Cluster::own();
    let url = pg::database_on(&cluster.base_url());
    let s = Setup::new();
    s.use_store(&url);
    let apps = 60;
    for n in 1..=apps {
        s.drop_mail(KANAGAWA, &application(n));
    }
    let log = s.dir.join("daemon.log");
    let mut d = daemon(&s, &log);
    wait_until("the first certificates", Duration::from_secs(60), || try_count(&url, "SELECT count(*) FROM certificates").unwrap_or(0) > 0);
    cluster.crash();
    std::thread::sleep(Duration::from_secs(3));
    assert!(d.try_wait().unwrap().is_none(), "the daemon waits for the server; it does not exit");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("is away") && said.contains("trying again"), "it says why it waits: {said}");
    assert!(!said.contains("postgres@") || !said.contains("password"), "{said}");
    cluster.restart();
    wait_until("every application answered", Duration::from_secs(120), || {
        try_count(&url, "SELECT count(*) FROM messages WHERE state = 'done'") == Some(apps as i64)
            && try_count(&url, "SELECT count(*) FROM outbox WHERE status = 'pending'") == Some(0)
    });
    d.kill().unwrap();
    d.wait().unwrap();
    all_answered_once(&s, apps);
}

/// The server ends the daemon's connection (`pg_terminate_backend`) again and again while
/// it works through a queue: each time the batch is lost whole and done again.
#[test]
fn connections_ended_by_the_server_mid_batch_lose_nothing_and_double_nothing() {
    let s = on_postgres();
    let toml: toml::Table = std::fs::read_to_string(s.config()).unwrap().parse().unwrap();
    let url = toml["store"].as_str().unwrap().to_string();
    let apps = 60;
    for n in 1..=apps {
        s.drop_mail(KANAGAWA, &application(n));
    }
    let log = s.dir.join("daemon.log");
    let mut d = daemon(&s, &log);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // Ten times, the daemon's connection is ended while it is inside a transaction (a
    // batch), then it is left to work for a moment.
    let mut ended = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while ended < 10 {
        let n: i64 = admin.query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'esurety' AND datname = current_database() AND state = 'idle in transaction'", &[]).unwrap().get(0);
        if n > 0 {
            ended += n;
            std::thread::sleep(Duration::from_millis(400));
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(Instant::now() < deadline, "only {ended} connections ended inside a transaction: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }
    wait_until("every application answered", Duration::from_secs(120), || {
        admin.query_one("SELECT count(*) FROM messages WHERE state = 'done'", &[]).unwrap().get::<_, i64>(0) == apps as i64
    });
    wait_until("the outbox emptied", Duration::from_secs(60), || {
        admin.query_one("SELECT count(*) FROM outbox WHERE status = 'pending'", &[]).unwrap().get::<_, i64>(0) == 0
    });
    assert!(d.try_wait().unwrap().is_none(), "the daemon went on");
    d.kill().unwrap();
    d.wait().unwrap();
    eprintln!("connections ended by the server: {ended}");
    all_answered_once(&s, apps);
}

/// The server is not there when the daemon starts: it waits and says why, and starts
/// work once the server is up.
#[test]
fn a_daemon_started_while_the_server_is_away_waits_and_says_why() {
    let cluster = pg::Cluster::own();
    let url = pg::database_on(&cluster.base_url());
    let s = Setup::new();
    s.use_store(&url);
    s.drop_mail(KANAGAWA, &application(1));
    cluster.crash();
    let log = s.dir.join("daemon.log");
    let mut d = daemon(&s, &log);
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.try_wait().unwrap().is_none(), "it waits");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("is away") && said.contains("trying again"), "{said}");
    cluster.restart();
    wait_until("the application answered", Duration::from_secs(60), || s.mails(MARUICHI).len() == 1);
    d.kill().unwrap();
    d.wait().unwrap();
    all_answered_once(&s, 1);
}

/// `store migrate` copies the demo's SQLite store into an empty PostgreSQL database; on
/// the copy, `certificates`, `verify` (right and wrong key) and typesetting a key notice
/// again give the same answers as on the file, and a contractor's resend request is
/// answered from the copy with the same key. A second copy into
/// the same database is refused.
#[test]
fn the_demos_store_migrated_to_postgres_answers_as_before() {
    let tmp = esurety::testing::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let bin = env!("CARGO_BIN_EXE_esurety");
    let out = std::process::Command::new(bin).arg("demo").arg(&dir).env_remove("ESURETY_STORE").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = dir.join("company/esurety.toml");
    let url = pg::database();
    let run = |args: &[&str], store: Option<&str>| -> std::process::Output {
        let mut c = std::process::Command::new(bin);
        c.arg("--config").arg(&config).args(args).env_remove("ESURETY_STORE");
        if let Some(s) = store {
            c.env("ESURETY_STORE", s);
        }
        c.output().unwrap()
    };
    let ok = |o: std::process::Output| -> String {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    // A pair 丸一建設 was mailed by the Kanagawa branch.
    let contractor = dir.join("company/mailboxes").join(MARUICHI);
    let pairs: Vec<(String, String)> = crate::common::mails_in(&contractor).iter().flat_map(|m| crate::reliability::pairs_in(&m.body)).collect();
    let (number, key) = pairs.iter().find(|(n, _)| n.starts_with("35075-")).cloned().expect("the demo mailed 丸一建設 a completion");
    let wrong: String = key.chars().rev().collect();
    assert_ne!(wrong, key);

    // A wrong key is an answer too (its exit status says so).
    let answer = |o: std::process::Output| (o.status.code(), String::from_utf8(o.stdout).unwrap());
    let before = (ok(run(&["certificates", "--json"], None)), ok(run(&["verify", &number, &key, "--json"], None)), answer(run(&["verify", &number, &wrong, "--json"], None)));
    let migrated: serde_json::Value = serde_json::from_str(&ok(run(&["store", "migrate", "--to", &url, "--json"], None))).unwrap();
    let tables: std::collections::BTreeMap<String, i64> = migrated["tables"].as_array().unwrap().iter()
        .map(|t| (t[0].as_str().unwrap().to_string(), t[1].as_i64().unwrap())).collect();
    assert!(tables["certificates"] > 0 && tables["registry"] > 0 && tables["messages"] > 0, "{migrated}");
    // On the copy the failed check above is there too, so the same questions count alike.
    let after = (ok(run(&["certificates", "--json"], Some(&url))), ok(run(&["verify", &number, &key, "--json"], Some(&url))), answer(run(&["verify", &number, &wrong, "--json"], Some(&url))));
    assert_eq!(before.0, after.0, "the same certificates");
    assert_eq!(before.1, after.1, "the same answer to the right key");
    assert_eq!(before.2, after.2, "the same answer to a wrong key");
    assert!(before.1.contains("\"valid\""), "{}", before.1);
    assert!(before.2.1.contains("\"mismatch\""), "{:?}", before.2);
    // The notice typeset again from the copy's sealed key is the one mailed.
    let (a, b) = (tmp.path().join("a.pdf"), tmp.path().join("b.pdf"));
    ok(run(&["render", "notice", &number, "-o", a.to_str().unwrap()], None));
    ok(run(&["render", "notice", &number, "-o", b.to_str().unwrap()], Some(&url)));
    let (ta, tb) = (crate::common::pdf_text(&std::fs::read(&a).unwrap()), crate::common::pdf_text(&std::fs::read(&b).unwrap()));
    assert_eq!(ta, tb);
    assert!(ta.contains(&key));
    // 丸一建設 asks for the notice again: the daemon on the copy mails it, with the same key.
    let request = format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?6KqN6Ki844Kt44O844Gu44GK55+l44KJ44Gb44Gu5YaN6YCB44Gu44GK6aGY44GE?=\r\nMessage-ID: <resend-after-migrate@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n保証契約番号：{number}\r\n");
    let inbox = dir.join("company/mailboxes").join(KANAGAWA);
    std::fs::write(inbox.join("new").join("1790000000.resend.test"), request).unwrap();
    ok(run(&["run", "--once"], Some(&url)));
    let resent: Vec<_> = crate::common::mails_in(&contractor).into_iter().filter(|m| m.subject.starts_with("電子保証（認証キー）のお知らせ（再送）")).collect();
    assert_eq!(resent.len(), 1, "the resend from the copy");
    assert_eq!(crate::common::key_in(&crate::common::pdf_text(&resent[0].attachments[0].1)).as_deref(), Some(key.as_str()), "the same key");
    // Into a database that is not empty: refused, nothing changed.
    let again = run(&["store", "migrate", "--to", &url], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{}", String::from_utf8_lossy(&again.stderr));
}

/// A server that takes TCP clients only over TLS: with `store_ca_file` (the CA that signed
/// its certificate) the daemon works through it; without, it is refused and says why.
#[test]
fn the_store_is_reached_over_tls_with_the_ca_file_and_refused_without() {
    let tls = esurety::testing::tempdir().unwrap();
    let ca = std::process::Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ca.sh")).arg(tls.path()).output().unwrap();
    assert!(ca.status.success());
    let cluster = pg::Cluster::own_tls(tls.path());
    let url = cluster.database_by_socket();
    let s = Setup::new();
    s.use_store(&url);
    // Without the CA: plain TCP, which the server refuses.
    s.drop_mail(KANAGAWA, &application(1));
    let refused = s.run(&["run", "--once"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("refuses us") && said.contains("no encryption"), "{said}");
    assert!(s.mails(MARUICHI).is_empty());
    // With it: TLS, the certificate checked against the CA.
    let ca_file = tls.path().join("ca.pem");
    s.edit_config(|t| t.replacen(&format!("store = \"{url}\""), &format!("store = \"{url}\"\nstore_ca_file = \"{}\"", ca_file.display()), 1));
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 1, "the application answered");
    // Another CA: the server's certificate is not trusted.
    let other = esurety::testing::tempdir().unwrap();
    assert!(std::process::Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ca.sh")).arg(other.path()).output().unwrap().status.success());
    s.edit_config(|t| t.replace(&ca_file.display().to_string(), &other.path().join("ca.pem").display().to_string()));
    let untrusted = s.run(&["run", "--once"]);
    assert!(!untrusted.status.success());
    let said = String::from_utf8_lossy(&untrusted.stderr);
    assert!(said.contains("is away"), "{said}");
}

/// With `store_ca_file`, TLS is required: a server that offers none (the shared cluster
/// takes plain TCP) is not used in plain text, and the daemon says why.
#[test]
fn a_ca_file_never_falls_back_to_plain_text() {
    let tls = esurety::testing::tempdir().unwrap();
    assert!(std::process::Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ca.sh")).arg(tls.path()).output().unwrap().status.success());
    let s = on_postgres();
    let url = store_url(&s);
    s.edit_config(|t| t.replacen(&format!("store = \"{url}\""), &format!("store = \"{url}\"\nstore_ca_file = \"{}\"", tls.path().join("ca.pem").display()), 1));
    s.drop_mail(KANAGAWA, &application(1));
    let out = s.run(&["run", "--once"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("does not support TLS"), "{said}");
    assert!(s.mails(MARUICHI).is_empty());
}

/// A daemon that serves `[web]` on a PostgreSQL store, asked for a page, stops cleanly on
/// SIGTERM: its connections are closed off the web server's threads (the driver may not
/// block on them), and nothing panics.
#[test]
fn a_daemon_serving_the_web_on_postgres_stops_cleanly() {
    let s = Setup::init(&["--side", "branch", "--listen", "127.0.0.1:0"]);
    if !pg::on_postgres() {
        s.use_store(&pg::database());
    }
    let web = crate::registry_service::Serving::start(&s, &["run", "--interval", "1"]);
    let code = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(web.url.trim_start_matches("http://")).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
        let mut r = String::new();
        let _ = c.read_to_string(&mut r);
        r.split_whitespace().nth(1).unwrap_or("").to_string()
    };
    assert_eq!(code, "200");
    let log = web.log.clone();
    let status = web.stop();
    std::thread::sleep(Duration::from_millis(300)); // the last lines read
    let said = log.lock().unwrap().clone();
    assert!(status.success() && !said.contains("panicked"), "{status:?}: {said}");
    assert!(said.contains("esurety: stopped"), "{said}");
}

/// What only the configuration can correct is said at once, not waited out: a password
/// that is not in the environment, a database that does not exist.
#[test]
fn a_store_that_refuses_us_is_said_at_start_and_the_daemon_exits() {
    let s = Setup::new();
    let url = pg::database();
    s.use_store(&url);
    s.edit_config(|t| t.replacen(&format!("store = \"{url}\""), &format!("store = \"{url}\"\nstore_password_env = \"ESURETY_TEST_NO_SUCH_PASSWORD\""), 1));
    let out = s.cmd().args(["run", "--interval", "1"]).env_remove("ESURETY_TEST_NO_SUCH_PASSWORD").output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("refuses us") && said.contains("ESURETY_TEST_NO_SUCH_PASSWORD is not set"), "{said}");
    let missing = format!("{}_gone", url);
    s.edit_config(|t| t.replace(&url, &missing).replace("store_password_env = \"ESURETY_TEST_NO_SUCH_PASSWORD\"\n", ""));
    let out = s.cmd().args(["run", "--interval", "1"]).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("refuses us") && said.contains("does not exist"), "{said}");
}

/// An owner's deployment on PostgreSQL asks a remote registry with no transaction open: a
/// registry that takes its time (here one that never answers, until the client's timeout)
/// leaves no session of esurety idle in a transaction, holding its locks, meanwhile. The
/// submission waits for a later pass.
#[test]
fn an_owner_on_postgres_holds_no_transaction_while_it_asks_a_registry() {
    use std::io::Read;
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", hole.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = asked.clone();
    std::thread::spawn(move || {
        // Takes each request and never answers it.
        let mut held = vec![];
        for mut c in hole.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            held.push(c);
        }
    });
    let o = Setup::init(&["--side", "owner", "--registry-url", &url]);
    if !pg::on_postgres() {
        o.use_store(&pg::database());
    }
    o.edit_config(|t| t.replacen("[[registries]]", "[[registries]]\ntimeout_seconds = 4", 1));
    o.env.borrow_mut().push(("ESURETY_REGISTRY_TOKEN".into(), "esr_x".into()));
    o.drop_mail("keiyaku@kwsa.example", &crate::support::typed(MARUICHI, "keiyaku@kwsa.example", "<slow@maruichi.example>", "35075-00001M", "CDEF34679HJK"));
    let mut db = o.db();
    let mut run = o.cmd().args(["run", "--once"]).stderr(Stdio::piped()).spawn().unwrap();
    let (mut in_tx, mut seen_asking) = (0, 0);
    let started = Instant::now();
    while run.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(30) {
        if asked.load(std::sync::atomic::Ordering::SeqCst) {
            seen_asking += 1;
            in_tx = in_tx.max(db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'esurety' AND state LIKE 'idle in transaction%'"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(seen_asking > 10, "the registry was being asked while we looked ({seen_asking} looks)");
    assert_eq!(in_tx, 0, "a session idle in a transaction while the registry was asked");
    assert!(o.json(&["submissions"]).as_array().unwrap().is_empty(), "not answered: it waits for the registry");
    assert_eq!(db.texts("SELECT state FROM messages"), [[Some("new".to_string())]]);
}

/// `store migrate` is a copy of one moment: it takes the daemon's lock, so it is refused
/// while a daemon runs on the file (whose writes it would half copy), and works once the
/// daemon is stopped.
#[test]
fn store_migrate_is_refused_while_a_daemon_runs_on_the_file() {
    let s = Setup::on_sqlite();
    s.drop_mail(KANAGAWA, &application(1));
    s.once();
    // The daemon holds its lock once it has logged its first pass.
    let mut daemon = s.cmd().args(["run", "--interval", "60"]).env("ESURETY_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = daemon.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("store_ms") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the daemon's first pass");
    let out = s.run(&["run", "--once"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"), "the daemon holds its lock");
    let url = pg::database();
    let out = s.run(&["store", "migrate", "--to", &url]);
    assert!(!out.status.success(), "copied while a daemon was writing");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"), "{}", String::from_utf8_lossy(&out.stderr));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let out = s.run(&["store", "migrate", "--to", &url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The two schemas are written apart (SQLite's versions 1–13, PostgreSQL's baseline at 10
/// and its later versions): built fresh, they have the same tables, the same columns with
/// the same nullability, the same primary keys, foreign keys and indexes (by their columns,
/// uniqueness and whether partial), so they cannot drift apart unseen.
#[test]
fn the_sqlite_and_postgresql_schemas_are_the_same_table_by_table() {
    use std::collections::BTreeSet;
    let tmp = esurety::testing::tempdir().unwrap();
    let file = tmp.path().join("s.db");
    drop(esurety::store::Store::open(&esurety::config::StoreAt::File(file.clone())).unwrap());
    let lite = rusqlite::Connection::open(&file).unwrap();
    let url = pg::database();
    drop(esurety::store::Store::open(&esurety::config::StoreAt::parse(&url, tmp.path(), None, None)).unwrap());
    let mut pgc = postgres::Client::connect(&url, postgres::NoTls).unwrap();

    type Schema = BTreeSet<String>;
    let strings = |st: &mut rusqlite::Statement, p: &[&dyn rusqlite::ToSql]| -> Vec<Vec<String>> {
        let n = st.column_count();
        st.query_map(p, |r| (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Text(t) => t,
            rusqlite::types::Value::Null => String::new(),
            v => format!("{v:?}"),
        })).collect::<Result<Vec<_>, _>>()).unwrap().map(Result::unwrap).collect()
    };
    let mut sqlite = Schema::new();
    let tables: Vec<String> = strings(&mut lite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").unwrap(), &[])
        .into_iter().map(|r| r[0].clone()).collect();
    for t in &tables {
        let cols = strings(&mut lite.prepare("SELECT name, \"notnull\", pk FROM pragma_table_info(?1)").unwrap(), &[t]);
        let mut pk: Vec<(i64, String)> = vec![];
        for c in &cols {
            let not_null = c[1] == "1" || c[2] != "0";
            sqlite.insert(format!("{t}.{} {}", c[0], if not_null { "NOT NULL" } else { "NULL" }));
            if c[2] != "0" {
                pk.push((c[2].parse().unwrap(), c[0].clone()));
            }
        }
        pk.sort();
        if !pk.is_empty() {
            sqlite.insert(format!("{t} PRIMARY KEY ({})", pk.iter().map(|p| p.1.as_str()).collect::<Vec<_>>().join(", ")));
        }
        for fk in strings(&mut lite.prepare("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)").unwrap(), &[t]) {
            sqlite.insert(format!("{t}.{} REFERENCES {}", fk[1], fk[0]));
        }
        for ix in strings(&mut lite.prepare("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1)").unwrap(), &[t]) {
            if ix[2] == "pk" {
                continue;
            }
            let cols: Vec<String> = strings(&mut lite.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno").unwrap(), &[&ix[0]]).into_iter().map(|r| r[0].clone()).collect();
            sqlite.insert(format!("{t} {}INDEX ({}){}", if ix[1] == "1" { "UNIQUE " } else { "" }, cols.join(", "), if ix[3] == "1" { " WHERE …" } else { "" }));
        }
    }

    let mut postgres = Schema::new();
    let rows = |c: &mut postgres::Client, sql: &str| -> Vec<Vec<String>> {
        c.query(sql, &[]).unwrap().iter().map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i).unwrap_or_default()).collect()).collect()
    };
    for c in rows(&mut pgc, "SELECT table_name::text, column_name::text, is_nullable::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_version'") {
        postgres.insert(format!("{}.{} {}", c[0], c[1], if c[2] == "NO" { "NOT NULL" } else { "NULL" }));
    }
    for t in &tables {
        let pk = rows(&mut pgc, &format!("SELECT string_agg(a.attname::text, ', ' ORDER BY array_position(i.indkey, a.attnum)) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{t}'::regclass AND i.indisprimary"));
        if let Some(pk) = pk.first().filter(|r| !r[0].is_empty()) {
            postgres.insert(format!("{t} PRIMARY KEY ({})", pk[0]));
        }
    }
    for fk in rows(&mut pgc, "SELECT cl.relname::text, a.attname::text, ref.relname::text FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class ref ON ref.oid = c.confrelid
                               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE c.contype = 'f' AND n.nspname = 'public'") {
        postgres.insert(format!("{}.{} REFERENCES {}", fk[0], fk[1], fk[2]));
    }
    for ix in rows(&mut pgc, "SELECT t.relname::text, CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END,
                                     (SELECT string_agg(a.attname::text, ', ' ORDER BY array_position(i.indkey, a.attnum)) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)),
                                     CASE WHEN i.indpred IS NULL THEN '' ELSE ' WHERE …' END
                              FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
                              WHERE n.nspname = 'public' AND NOT i.indisprimary AND t.relname <> 'schema_version'") {
        postgres.insert(format!("{} {}INDEX ({}){}", ix[0], ix[1], ix[2], ix[3]));
    }
    // SQLite's implicit `rowid` is an explicit column on PostgreSQL where the code uses it.
    postgres.retain(|l| !l.contains(".rowid ") && !l.contains("(rowid)"));
    let only_sqlite: Vec<&String> = sqlite.difference(&postgres).collect();
    let only_pg: Vec<&String> = postgres.difference(&sqlite).collect();
    assert!(sqlite.len() > 100, "{sqlite:?}");
    assert!(only_sqlite.is_empty() && only_pg.is_empty(), "only on SQLite: {only_sqlite:#?}\nonly on PostgreSQL: {only_pg:#?}");
}

/// Two daemons' batches on PostgreSQL never wait for each other in a circle: a batch that
/// holds an earlier message's locks does not wait for another lock; it ends before that
/// message (`WouldWait`), which the next batch takes first, holding nothing. Here each
/// batch holds one message's lock and its next message wants the other's: without the
/// rule both wait, and PostgreSQL ends one with a deadlock (40P01) after a second.
#[test]
fn two_batches_that_want_each_others_locks_end_early_instead_of_deadlocking() {
    use esurety::store::{Store, StoreError};
    use esurety::config::StoreAt;
    let tmp = esurety::testing::tempdir().unwrap();
    let at = StoreAt::parse(&pg::database(), tmp.path(), None, None);
    drop(Store::open(&at).unwrap());
    let both = std::sync::Arc::new(std::sync::Barrier::new(2));
    let batch = |first: &'static str, second: &'static str| {
        let (at, both) = (at.clone(), both.clone());
        std::thread::spawn(move || -> Result<(), StoreError> {
            let mut store = Store::open(&at).unwrap();
            store.batch(|store| {
                store.next_message();
                store.write(|tx| tx.lock_job(first))?;
                both.wait();
                store.next_message();
                store.write(|tx| tx.lock_job(second))
            })
        })
    };
    let started = Instant::now();
    let (a, b) = (batch("works A", "works B"), batch("works B", "works A"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    let deadlock = |r: &Result<(), StoreError>| matches!(r, Err(StoreError::Pg(e)) if e.code().is_some_and(|c| c.code() == "40P01"));
    assert!(!deadlock(&a) && !deadlock(&b), "{a:?} {b:?}");
    // At least one ends before the lock the other holds (the other may then find it free).
    let ended = [&a, &b].iter().filter(|r| matches!(r, Err(StoreError::WouldWait(_)))).count();
    assert!(ended >= 1 && [&a, &b].iter().all(|r| r.is_ok() || matches!(r, Err(StoreError::WouldWait(_)))), "{a:?} {b:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "nobody waited for the deadlock detector");
    // The message in hand, first in a batch of its own, waits for the lock as usual.
    let mut store = Store::open(&at).unwrap();
    store.batch(|store| {
        store.next_message();
        store.write(|tx| tx.lock_job("works A"))?;
        store.next_message();
        store.write(|tx| tx.lock_job("works B"))
    }).unwrap();
}
