//! Issue 25 § 4: how long a PostgreSQL failover stops issuing.
//! `cargo bench --bench failover` (release build; as root, it starts its own clusters on
//! loopback with `tests/servers/pg.sh`, fsync on). Each run: a primary and its synchronous
//! streaming standby, a store URL naming both (`…@primary,standby/db`), `ESURETY_BENCH_APPLICATIONS`
//! (default 200) applications waiting, one `esurety run --interval 1`. Once 40
//! certificates are issued the primary's postmaster is killed (SIGKILL) and the standby
//! promoted at once (`pg_ctl promote`, as a failover manager would once it has decided).
//! Timed: kill → standby promoted, and kill → the first certificate committed on the new
//! primary. Then every application must be answered once, with serials without gaps.
//! `ESURETY_BENCH_RUNS` (default 7) runs; min, median, max.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOW: &str = "2026-07-04T10:00:00+09:00";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/pg.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pg(args: &[&str]) {
    let out = Command::new(script()).args(args).env("PG_FSYNC", "on").output().unwrap();
    assert!(out.status.success(), "pg.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn new() -> Cluster {
        let dir = PathBuf::from(String::from_utf8(Command::new("mktemp").args(["-d", "/tmp/esurety-pg.XXXXXX"]).output().unwrap().stdout).unwrap().trim());
        Cluster { dir, port: free_port() }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).arg("immediate").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn count(url: &str, sql: &str) -> Option<i64> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).ok()?;
    c.query_one(sql, &[]).ok().map(|r| r.get(0))
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn application(form: &str, n: usize) -> Vec<u8> {
    let body = form.replace("工事名：○○浄水場△△修繕工事", &format!("工事名：○○浄水場△△修繕工事（第{n}工区）"));
    format!("From: soumu@maruichi.example\r\nTo: kanagawa@ejcs.example\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <bench-{n}@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

/// One failover: (kill → promoted, kill → first new certificate).
fn run(form: &str, apps: usize) -> (Duration, Duration) {
    let primary = Cluster::new();
    pg(&["start", primary.dir.to_str().unwrap(), &primary.port.to_string()]);
    let mut c = postgres::Client::connect(&primary.url("postgres"), postgres::NoTls).unwrap();
    c.batch_execute("CREATE DATABASE bench").unwrap();
    let standby = Cluster::new();
    pg(&["standby", standby.dir.to_str().unwrap(), &standby.port.to_string(), &primary.port.to_string()]);
    wait_until("the standby streaming", Duration::from_secs(30), || count(&primary.url("postgres"), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == Some(1));
    c.batch_execute("ALTER SYSTEM SET synchronous_standby_names = '*'").unwrap();
    c.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_until("the standby synchronous", Duration::from_secs(30), || count(&primary.url("postgres"), "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == Some(1));
    drop(c);

    let tmp = esurety::testing::tempdir().unwrap();
    let dir = tmp.path().join("bench");
    let config = esurety::config::default::init(&dir).unwrap();
    let md = esurety::intake::maildir::Maildir::new(config.mail.maildir_root.join("kanagawa@ejcs.example"));
    for i in 0..apps {
        md.deliver(&format!("{i}.bench"), &application(form, i)).unwrap();
    }
    let path = dir.join("esurety.toml");
    let both = format!("postgres://postgres@127.0.0.1:{},127.0.0.1:{}/bench", primary.port, standby.port);
    let text = std::fs::read_to_string(&path).unwrap().replacen("store = \"esurety.db\"", &format!("store = \"{both}\""), 1);
    std::fs::write(&path, text).unwrap();
    let mut daemon: Child = Command::new(env!("CARGO_BIN_EXE_esurety")).args(["--config", path.to_str().unwrap(), "run", "--interval", "1"])
        .env("ESURETY_TEST_NOW", NOW).env_remove("ESURETY_STORE").stdout(Stdio::null()).stderr(std::fs::File::create(dir.join("daemon.log")).unwrap()).spawn().unwrap();

    let on_primary = primary.url("bench");
    let on_standby = standby.url("bench");
    wait_until("40 certificates", Duration::from_secs(120), || count(&on_primary, "SELECT count(*) FROM certificates").unwrap_or(0) >= 40);
    let killed = Instant::now();
    pg(&["kill", primary.dir.to_str().unwrap()]);
    pg(&["promote", standby.dir.to_str().unwrap()]);
    let promoted = killed.elapsed();
    let kept = count(&on_standby, "SELECT count(*) FROM certificates").unwrap();
    wait_until("a new certificate", Duration::from_secs(120), || count(&on_standby, "SELECT count(*) FROM certificates").unwrap_or(0) > kept);
    let first = killed.elapsed();
    wait_until("every application answered", Duration::from_secs(300), || {
        count(&on_standby, "SELECT count(*) FROM messages WHERE state = 'done'") == Some(apps as i64)
    });
    let _ = daemon.kill();
    let _ = daemon.wait();
    let issued = count(&on_standby, "SELECT count(*) FROM certificates").unwrap();
    let last = count(&on_standby, "SELECT max(last) FROM serials").unwrap();
    assert_eq!((issued, last), (2 * apps as i64, 2 * apps as i64), "each application once, serials without gaps: {}", std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default());
    println!("   kept {kept:>3} certificates; promoted after {:>4} ms; first new certificate {:>5} ms after the kill", promoted.as_millis(), first.as_millis());
    (promoted, first)
}

fn main() {
    let apps: usize = std::env::var("ESURETY_BENCH_APPLICATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let runs: usize = std::env::var("ESURETY_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let m = mail_parser::MessageParser::default().parse(esurety::demo::SAMPLES[0].2).unwrap();
    let form = m.body_text(0).unwrap().into_owned();
    println!("failover: {runs} runs, {apps} applications each, the primary killed after 40 certificates, the standby promoted at once");
    let mut promoted = Vec::new();
    let mut first = Vec::new();
    for _ in 0..runs {
        let (p, f) = run(&form, apps);
        promoted.push(p);
        first.push(f);
    }
    let show = |mut v: Vec<Duration>| {
        v.sort();
        format!("min {} ms, median {} ms, max {} ms", v[0].as_millis(), v[v.len() / 2].as_millis(), v[v.len() - 1].as_millis())
    };
    println!("kill → standby promoted:           {}", show(promoted));
    println!("kill → first new certificate:      {}", show(first));
}
