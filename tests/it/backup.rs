//! Backups and the store check, as an operator runs them: `esurety backup` while a real
//! daemon issues certificates, the copy put back in the store's place, every key issued
//! before it verified through the CLI; `store check` on the copy, on damaged copies (a page
//! overwritten, a registry entry deleted, the wrong secret), and on PostgreSQL, where
//! `backup` refuses and says what to run instead.

use crate::common::{Setup, application};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

/// Every (number, key) the completion mails in the contractor's Maildir name.
fn keys_mailed(s: &Setup) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for m in s.mails(MARUICHI) {
        let mut number = None;
        for line in m.body.lines() {
            if let Some((_, n)) = line.split_once("保証契約番号：") {
                number = Some(n.trim().to_string());
            } else if let (Some(n), Some((_, k))) = (&number, line.split_once("認証キー　　：")) {
                out.push((n.clone(), k.trim().to_string()));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn certificates(s: &Setup) -> i64 {
    let c = rusqlite::Connection::open_with_flags(s.dir.join("esurety.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.query_row("SELECT count(*) FROM certificates", [], |r| r.get(0)).unwrap()
}

fn check(s: &Setup, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let out = s.cmd().args(["store", "check", "--json"]).args(args).envs(env.iter().copied()).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn failed(report: &Value, name: &str) -> String {
    let c = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {report:#}"));
    assert_eq!(c["ok"], false, "{name} should fail: {report:#}");
    c["detail"].as_str().unwrap().to_string()
}

fn fingerprint(s: &Setup) -> String {
    esurety::secrets::Secrets::load(&s.dir.join("esurety.secret")).unwrap().fingerprint()
}

struct Daemon(Child);

impl Daemon {
    fn stop(mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let st = self.0.wait().unwrap();
        assert!(st.success(), "the daemon stopped with {st}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_backup_taken_while_the_daemon_issues_restores_and_every_key_issued_before_it_verifies() {
    let s = Setup::on_sqlite();
    for i in 1..=8 {
        s.drop_mail(KANAGAWA, &application(i));
    }
    s.once();
    let daemon = Daemon(s.cmd().args(["run", "--interval", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    // Applications keep arriving while the daemon runs and the backup is taken.
    let dir = s.dir.clone();
    let feeder = std::thread::spawn(move || {
        for i in 9..=40 {
            let name = format!("17831{i:05}.T{i}.feeder");
            let md = dir.join("mailboxes").join(KANAGAWA);
            std::fs::write(md.join("tmp").join(&name), application(i)).unwrap();
            std::fs::rename(md.join("tmp").join(&name), md.join("new").join(&name)).unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    });
    // The daemon has issued (and mailed) some of the new ones: it is writing.
    let deadline = Instant::now() + Duration::from_secs(60);
    let before = loop {
        let keys = keys_mailed(&s);
        if keys.len() > 16 {
            break keys;
        }
        assert!(Instant::now() < deadline, "the daemon issued nothing new");
        std::thread::sleep(Duration::from_millis(50));
    };
    let issued_before = certificates(&s);
    let to = s.dir.join("backups").join("esurety-1.db");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let out = s.run_ok(&["backup", "--to", to.to_str().unwrap()]);
    let issued_after = certificates(&s);
    assert!(out.contains(to.to_str().unwrap()) && out.contains(&fingerprint(&s)), "path and fingerprint printed: {out}");
    assert!(!to.with_file_name("esurety-1.db-wal").exists(), "the copy is one file");
    let secret = std::fs::read(s.dir.join("esurety.secret")).unwrap();
    assert!(!out.contains(&esurety::text::hex(&secret)), "never the secret");
    feeder.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while certificates(&s) < 80 {
        assert!(Instant::now() < deadline, "the daemon did not issue all 40 applications: {}", certificates(&s));
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop();
    assert!(issued_before < 80, "the backup was taken while applications were still being issued");

    // Restore: the daemon stopped, the store's file and its WAL replaced by the copy.
    let store = s.dir.join("esurety.db");
    std::fs::rename(&store, s.dir.join("esurety.db.broken")).unwrap();
    for side in ["esurety.db-wal", "esurety.db-shm"] {
        let _ = std::fs::remove_file(s.dir.join(side));
    }
    std::fs::copy(&to, &store).unwrap();
    let restored = certificates(&s);
    assert!((issued_before..=issued_after).contains(&restored), "the copy is one moment during the backup: {issued_before} ≤ {restored} ≤ {issued_after}");
    for (number, key) in &before {
        let v = s.json(&["verify", number, key]);
        assert_eq!(v["result"], "valid", "{number} after the restore: {v}");
    }
    let (code, report) = check(&s, &[], &[]);
    assert_eq!((code, &report["ok"]), (0, &Value::Bool(true)), "{report:#}");
    assert_eq!(report["registry"]["verified"], report["registry"]["entries"]);
    assert_eq!(report["registry"]["verified"].as_i64().unwrap(), restored, "every electronic certificate's entry verified");
    assert_eq!(report["backup"]["secret_fingerprint"], fingerprint(&s));
    // The daemon goes on from the restored store: the applications after the copy are
    // still in the mailbox's history, but new ones get the next serials.
    let serials: Vec<i64> = report["serials"].as_array().unwrap().iter().map(|o| o["last"].as_i64().unwrap()).collect();
    assert_eq!(serials, [restored]);
}

/// A small store on SQLite with a backup of it; the backup's path.
fn with_backup(s: &Setup) -> PathBuf {
    for i in 1..=3 {
        s.drop_mail(KANAGAWA, &application(i));
    }
    s.once();
    let to = s.dir.join("copy.db");
    s.run_ok(&["backup", "--to", to.to_str().unwrap()]);
    to
}

fn copy_of(backup: &Path, name: &str) -> PathBuf {
    let to = backup.with_file_name(name);
    std::fs::copy(backup, &to).unwrap();
    to
}

#[test]
fn store_check_passes_on_a_copy_and_fails_on_a_damaged_one_saying_why() {
    let s = Setup::on_sqlite();
    let backup = with_backup(&s);
    let (code, report) = check(&s, &["--store", backup.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["registry"]["verified"], 6);
    assert_eq!(report["tables"].as_array().unwrap().iter().find(|t| t[0] == "certificates").unwrap()[1], 6);
    // The live store passes too, and says it is no copy.
    let (code, report) = check(&s, &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["backup"], Value::Null);

    // An existing file is not replaced unless told.
    let out = s.run(&["backup", "--to", backup.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{}", String::from_utf8_lossy(&out.stderr));
    s.run_ok(&["backup", "--to", backup.to_str().unwrap(), "--force"]);
    let out = s.run(&["backup", "--to", s.dir.join("esurety.db").to_str().unwrap(), "--force"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the store itself"), "{}", String::from_utf8_lossy(&out.stderr));

    // A page overwritten: the registry's first page of its table.
    let paged = copy_of(&backup, "paged.db");
    let (root, size): (i64, i64) = {
        let c = rusqlite::Connection::open(&paged).unwrap();
        (c.query_row("SELECT rootpage FROM sqlite_schema WHERE name = 'registry'", [], |r| r.get(0)).unwrap(), c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap())
    };
    let mut bytes = std::fs::read(&paged).unwrap();
    let at = ((root - 1) * size) as usize;
    for b in &mut bytes[at..at + 8] {
        *b ^= 0xa5;
    }
    std::fs::write(&paged, bytes).unwrap();
    let (code, report) = check(&s, &["--store", paged.to_str().unwrap()], &[]);
    assert_eq!((code, &report["ok"]), (1, &Value::Bool(false)));
    let why = failed(&report, "integrity");
    assert!(why.contains("integrity_check") && why.contains("registry"), "{why}");

    // A registry entry deleted (its versions with it, as a careless hand would).
    let deleted = copy_of(&backup, "deleted.db");
    rusqlite::Connection::open(&deleted).unwrap().execute_batch(
        "DELETE FROM registry_versions WHERE number = '35075-00003M'; DELETE FROM registry WHERE number = '35075-00003M';").unwrap();
    let (code, report) = check(&s, &["--store", deleted.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    let why = failed(&report, "registry");
    assert!(why.contains("35075-00003M") && why.contains("no registry entry"), "{why}");
    assert_eq!(report["registry"]["unpublished"], 1);

    // A certificate deleted: a gap in the office's serials.
    let gap = copy_of(&backup, "gap.db");
    rusqlite::Connection::open(&gap).unwrap().execute_batch(
        "DELETE FROM registry_versions WHERE number = '35075-00002K'; DELETE FROM registry WHERE number = '35075-00002K';
         DELETE FROM sealed_keys WHERE number = '35075-00002K'; DELETE FROM certificate_versions WHERE number = '35075-00002K';
         DELETE FROM issued_documents WHERE number = '35075-00002K';
         DELETE FROM certificates WHERE number = '35075-00002K';").unwrap();
    let (code, report) = check(&s, &["--store", gap.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    let why = failed(&report, "serials");
    assert!(why.contains("office 35075") && why.contains("00002"), "{why}");

    // The wrong secret: no sealed key opens, and the copy names another fingerprint.
    let other = "11".repeat(32);
    let (code, report) = check(&s, &["--store", backup.to_str().unwrap()], &[("ESURETY_SECRET", other.as_str())]);
    assert_eq!(code, 1);
    assert!(failed(&report, "registry").contains("written under another secret"), "{report:#}");
    let why = failed(&report, "secret");
    assert!(why.contains(&fingerprint(&s)), "{why}");
    // The text a person reads says the same.
    let out = s.cmd().args(["store", "check", "--store", backup.to_str().unwrap()]).env("ESURETY_SECRET", &other).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL secret") && text.contains("does NOT hold"), "{text}");
}

#[test]
fn store_check_reads_a_postgresql_store_and_backup_there_says_what_to_run() {
    let s = Setup::on_sqlite();
    s.use_store(&crate::pg::database());
    for i in 1..=3 {
        s.drop_mail(KANAGAWA, &application(i));
    }
    s.once();
    let (code, report) = check(&s, &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["kind"], "postgres");
    assert_eq!(report["registry"]["verified"], 6);
    let out = s.run(&["backup", "--to", s.dir.join("pg.db").to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_basebackup") && err.contains("pg_dump"), "{err}");
    assert!(!s.dir.join("pg.db").exists());

    let mut db = s.db();
    db.execute("DELETE FROM registry_versions WHERE number = '35075-00001M'; DELETE FROM registry WHERE number = '35075-00001M';");
    let (code, report) = check(&s, &[], &[]);
    assert_eq!(code, 1);
    assert!(failed(&report, "registry").contains("35075-00001M"), "{report:#}");
}
