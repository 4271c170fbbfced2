//! Issue 16: the company's store on PostgreSQL, beside SQLite in the same run.
//! `cargo bench --bench postgres` (release build; as root, it starts a PostgreSQL cluster
//! of its own on loopback with `tests/servers/pg.sh`, fsync on, on this machine's cores).
//!
//! - P2 on both stores: `ESURETY_BENCH_APPLICATIONS` (default 300) applications (4 PDFs
//!   and 1 mail each) through `esurety run --once`, start to exit.
//! - Two daemons on one PostgreSQL store: the same queue worked by two `run --once` started
//!   together, against one alone (target: not slower together).
//! - `verify` with `ESURETY_BENCH_CERTIFICATES` (default 1,000,000) certificates in the
//!   PostgreSQL store: 10,000 written through esurety's own insert (their keys are checked),
//!   the rest by SQL in bulk (copies of the same contents under other numbers).

mod common;

use esurety::clock::{Clock, FixedClock};
use esurety::registry::{Lockout, Verification, verify};
use esurety::store::Store;
use esurety::config::StoreAt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn application(form: &str, n: usize) -> Vec<u8> {
    let body = form.replace("工事名：○○浄水場△△修繕工事", &format!("工事名：○○浄水場△△修繕工事（第{n}工区）"));
    format!("From: soumu@maruichi.example\r\nTo: kanagawa@ejcs.example\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <bench-{n}@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

fn sample_form() -> String {
    let m = mail_parser::MessageParser::default().parse(esurety::demo::SAMPLES[0].2).unwrap();
    m.body_text(0).unwrap().into_owned()
}

/// A fresh embedded default with `n` applications waiting, on `store` (a URL) or its file.
fn queue(dir: &Path, form: &str, n: usize, store: Option<&str>) -> PathBuf {
    let config = esurety::config::default::init(dir).unwrap();
    let md = esurety::intake::maildir::Maildir::new(config.mail.maildir_root.join("kanagawa@ejcs.example"));
    for i in 0..n {
        md.deliver(&format!("{i}.bench"), &application(form, i)).unwrap();
    }
    let path = dir.join("esurety.toml");
    if let Some(url) = store {
        let text = std::fs::read_to_string(&path).unwrap().replacen("store = \"esurety.db\"", &format!("store = \"{url}\""), 1);
        std::fs::write(&path, text).unwrap();
    }
    path
}

fn run_once(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_esurety"));
    c.args(["--config", config.to_str().unwrap(), "run", "--once"]).env("ESURETY_TEST_NOW", common::NOW).env_remove("ESURETY_STORE");
    c
}

fn timed(config: &Path) -> Duration {
    let t = Instant::now();
    let out = run_once(config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    t.elapsed()
}

struct Cluster {
    dir: PathBuf,
    base: String,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = PathBuf::from(String::from_utf8(Command::new("mktemp").args(["-d", "/tmp/esurety-pg.XXXXXX"]).output().unwrap().stdout).unwrap().trim());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // As a company would run it: every commit made durable (fsync on).
        let out = Command::new(script()).arg("start").arg(&dir).arg(port.to_string()).env("PG_FSYNC", "on").output().unwrap();
        assert!(out.status.success(), "PostgreSQL did not start: {}", String::from_utf8_lossy(&out.stderr));
        Cluster { dir, base: format!("postgres://postgres@127.0.0.1:{port}") }
    }

    fn database(&self, name: &str) -> String {
        let mut c = postgres::Client::connect(&format!("{}/postgres", self.base), postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("{}/{name}", self.base)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/pg.sh")
}

fn main() {
    let apps: usize = std::env::var("ESURETY_BENCH_APPLICATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let n: usize = std::env::var("ESURETY_BENCH_CERTIFICATES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let cluster = Cluster::start();
    let form = sample_form();
    let tmp = esurety::testing::tempdir().unwrap();

    // P2 on both stores, the same queue.
    let sqlite = timed(&queue(&tmp.path().join("sqlite"), &form, apps, None));
    let pg_url = cluster.database("p2");
    let pg = timed(&queue(&tmp.path().join("pg"), &form, apps, Some(&pg_url)));
    let rate = |d: Duration| apps as f64 / d.as_secs_f64();
    println!("P2 {apps} applications through `run --once` on {cores} core(s), the server on the same machine:");
    println!("   SQLite     {:.1} s, {:.1} applications/s", sqlite.as_secs_f64(), rate(sqlite));
    println!("   PostgreSQL {:.1} s, {:.1} applications/s  (target ≥ 30/s)", pg.as_secs_f64(), rate(pg));

    // Two daemons on one PostgreSQL store, the same queue, started together.
    let two_url = cluster.database("two");
    let config = queue(&tmp.path().join("two"), &form, apps, Some(&two_url));
    let t = Instant::now();
    let children: Vec<_> = (0..2).map(|_| run_once(&config).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap()).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let two = t.elapsed();
    let mut db = postgres::Client::connect(&two_url, postgres::NoTls).unwrap();
    let issued: i64 = db.query_one("SELECT count(*) FROM certificates", &[]).unwrap().get(0);
    let last: i64 = db.query_one("SELECT max(last) FROM serials", &[]).unwrap().get(0);
    assert_eq!((issued, last), (2 * apps as i64, 2 * apps as i64), "each application once, serials without gaps");
    println!("   two daemons together on one PostgreSQL store: {:.1} s, {:.1} applications/s (one alone above: {:.1} s; target: not slower)", two.as_secs_f64(), rate(two), pg.as_secs_f64());

    // verify with `n` certificates in the PostgreSQL store.
    let issued = common::Issued::new();
    let template = issued.cert.clone();
    let secrets = esurety::secrets::Secrets::load(&issued.engine.config.secret_file).unwrap();
    let url = cluster.database("verify");
    let mut store = Store::open(&StoreAt::Postgres(esurety::config::PgTarget { url: url.clone(), password_env: None, ca_file: None })).unwrap();
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    db.batch_execute("INSERT INTO messages (id, mailbox, side, source_uid, sha256, size, received_at) VALUES (1, 'kanagawa@ejcs.example', 'branch', 'bench', '\\x00', 0, '2026-07-04T10:00:00+09:00');
                      INSERT INTO applications (id, message, office_code, outcome, created_at) VALUES (1, 1, '35075', 'issued', '2026-07-04T10:00:00+09:00')").unwrap();
    let t = Instant::now();
    let sampled = n.min(10_000);
    let sample = common::fill(&mut store, &template, 1, sampled, &secrets);
    let bulk = n - sampled;
    let contents = serde_json::to_string(&esurety::domain::Certificate { fee: None, ..template.clone() }).unwrap();
    let number = "lpad((90000 + i / 100000)::text, 5, '0') || '-' || lpad((i % 100000)::text, 5, '0') || 'M'";
    db.execute(&format!("INSERT INTO certificates (number, product, format, status, office_code, contractor, owner, project, works_key, application, current_version, created_at)
        SELECT {number}, 'advance', 'electronic', 'valid', '90000', 'bench', 'bench', 'bench ' || i, 'bulk|' || i, 1, 1, '2026-07-04T10:00:00+09:00' FROM generate_series(0, $1::bigint - 1) AS i"), &[&(bulk as i64)]).unwrap();
    db.execute(&format!("INSERT INTO certificate_versions (number, version, kind, issued_at, contents) SELECT {number}, 1, '新規', '2026-07-04T10:00:00+09:00', $2 FROM generate_series(0, $1::bigint - 1) AS i"), &[&(bulk as i64), &contents]).unwrap();
    db.execute(&format!("INSERT INTO registry (number, key_salt, key_hash, key_mac, owner, status, published_at) SELECT {number}, decode(md5(i::text), 'hex'), decode(md5('k' || i), 'hex') || decode(md5('h' || i), 'hex'), 1, 'bench', 'valid', '2026-07-04T10:00:00+09:00' FROM generate_series(0, $1::bigint - 1) AS i"), &[&(bulk as i64)]).unwrap();
    db.execute(&format!("INSERT INTO registry_versions (number, version, kind, published_at, contents) SELECT {number}, 1, '新規', '2026-07-04T10:00:00+09:00', $2 FROM generate_series(0, $1::bigint - 1) AS i"), &[&(bulk as i64), &contents]).unwrap();
    db.batch_execute("ANALYZE").unwrap();
    let total: i64 = db.query_one("SELECT count(*) FROM registry", &[]).unwrap().get(0);
    let size: i64 = db.query_one("SELECT pg_database_size(current_database())", &[]).unwrap().get(0);
    println!("store: {total} certificates in PostgreSQL ({sampled} through esurety's insert, the rest in bulk) in {:.1} s; database {:.0} MB",
        t.elapsed().as_secs_f64(), size as f64 / 1e6);
    drop(store);
    let store = Store::open(&StoreAt::Postgres(esurety::config::PgTarget { url: url.clone(), password_env: None, ca_file: None })).unwrap();
    let clock = FixedClock::parse(common::NOW).unwrap();
    let lockout = Lockout::default();
    let mut times = Vec::new();
    for (number, key) in sample.iter().cycle().take(20_000) {
        let t = Instant::now();
        let v = verify(&store, &secrets, number, key.reveal(), esurety::domain::Caller::default(), None, clock.now(), lockout).unwrap();
        times.push(t.elapsed());
        assert!(matches!(v, Verification::Valid { .. }));
    }
    let (p50, p90, p99) = common::percentiles(times);
    println!("verify on PostgreSQL, right key ({} numbers, 20,000 checks, in process): median {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms  (target p99 ≤ 2 ms)", sample.len());
    let mut bad = Vec::new();
    for (number, _) in sample.iter().take(2_000) {
        let t = Instant::now();
        let v = verify(&store, &secrets, number, "CDEF34679HJK", esurety::domain::Caller::default(), None, clock.now(), lockout).unwrap();
        bad.push(t.elapsed());
        assert!(matches!(v, Verification::Mismatch));
    }
    let (p50, p90, p99) = common::percentiles(bad);
    println!("verify on PostgreSQL, wrong key (2,000 checks, each records a failure): median {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms");
}
