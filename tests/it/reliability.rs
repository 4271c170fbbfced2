//! Crashes, concurrency and a store that cannot be written: the daemon is killed with
//! SIGKILL at random moments while a queue of applications and submissions is worked
//! through, started twice on one configuration, and run with its store on a full and then
//! a read-only file system. Afterwards everything a user could check is checked.
//!
//! The test command runs the crash test on 200 applications and 100 submissions with at
//! least 20 kills; `ESURETY_LONG_TESTS=1` runs a long form (1,000 and 500, at least 100).

use crate::common::{Setup, application};
use crate::support;
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";
const KWSA: &str = "keiyaku@kwsa.example";

fn long() -> bool {
    std::env::var("ESURETY_LONG_TESTS").is_ok_and(|v| v == "1")
}

fn daemon(s: &Setup) -> Child {
    s.cmd().args(["run", "--interval", "1"]).env("ESURETY_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn sigkill(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// A small deterministic random source for the kill moments (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn count(s: &Setup, sql: &str) -> i64 {
    s.db().count(sql)
}

/// SQLite's own check of its file (PostgreSQL checks its pages itself).
fn integrity(s: &Setup) {
    if let crate::pg::Db::Sqlite(c, _) = s.db() {
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }
}

/// (保証契約番号, 認証キー) pairs from completion mails' bodies.
pub(crate) fn pairs_in(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut number = None;
    for line in body.lines() {
        let l: String = line.chars().filter(|c| !c.is_whitespace() && *c != '\u{3000}').collect();
        if let Some(n) = l.strip_prefix("保証契約番号：") {
            number = Some(n.to_string());
        } else if let (Some(k), Some(n)) = (l.strip_prefix("認証キー："), number.take()) {
            out.push((n, k.to_string()));
        }
    }
    out
}

pub(crate) struct Figures {
    pub kills: usize,
    pub messages: i64,
    pub duplicates: usize,
    pub missing: usize,
}

/// How far the queue has got: messages stored, outcomes committed, mailbox marks and
/// outgoing mails handed over. Any work a daemon commits raises it.
fn progress(s: &Setup) -> i64 {
    count(s, "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM messages WHERE state != 'new') \
        + (SELECT count(*) FROM messages WHERE marked = 1) + (SELECT count(*) FROM outbox_deliveries)")
}

/// The queue worked through by `daemons` daemons on one store while one of them is killed
/// at random moments (and started again): with one, the daemon itself; with two (a
/// PostgreSQL store), one dies while the other goes on.
pub(crate) fn crash_test(s: Setup, warmup: usize, apps: usize, subs: usize, min_kills: usize, daemons: usize) -> Figures {
    // Certificates to submit: `warmup` applications issued before the storm. Timing this
    // pass and an idle one tells how long this machine takes to start and per message, so
    // the kill moments below fit the machine instead of a figure from a faster one.
    for n in 0..warmup {
        s.drop_mail(KANAGAWA, &application(10_000 + n));
    }
    let t = Instant::now();
    s.once();
    let busy = t.elapsed();
    let mut issued: Vec<(String, String)> = s.mails(MARUICHI).iter().flat_map(|m| pairs_in(&m.body)).collect();
    assert_eq!(issued.len(), warmup * 2);
    s.read_all(MARUICHI);
    let t = Instant::now();
    s.once();
    let start_up = t.elapsed();
    let per_message = busy.saturating_sub(start_up) / warmup.max(1) as u32;
    // A life of `unit` is long enough to start and commit one batch (its time budget and
    // the messages in hand); lives are drawn from a quarter of that to twice it, so many
    // end while starting, deciding, typesetting, committing or sending, and most commit.
    let unit = start_up + esurety::store::BATCH_TIME + per_message * 3;
    let unit_ms = unit.as_millis() as u64;

    // The queue: applications for distinct works, and typed submissions of real pairs.
    for n in 0..apps {
        s.drop_mail(KANAGAWA, &application(n + 1));
    }
    issued.truncate(subs);
    assert_eq!(issued.len(), subs, "enough certificates to submit");
    for (i, (number, key)) in issued.iter().enumerate() {
        s.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, &format!("<sub-{i}@maruichi.example>"), number, key));
    }

    // Kill the daemon at random moments until the queue is done and enough kills were made.
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut kills = 0;
    let started = Instant::now();
    let queue_done = |s: &Setup| count(s, "SELECT count(*) FROM messages WHERE state = 'new'") == 0
        && count(s, "SELECT count(*) FROM messages") == (warmup + apps + subs) as i64
        && count(s, "SELECT count(*) FROM outbox WHERE status = 'pending'") == 0;
    let (mut last, mut stalled, mut longest_stall) = (progress(&s), 0, 0);
    let mut running: Vec<Child> = (1..daemons).map(|_| daemon(&s)).collect();
    loop {
        if running.is_empty() {
            let mut d = daemon(&s);
            std::thread::sleep(Duration::from_millis(unit_ms / 4 + rng.below(unit_ms * 7 / 4)));
            sigkill(&mut d);
        } else {
            // Two at work; one of them dies at a random moment and is started again.
            let mut extra = daemon(&s);
            std::thread::sleep(Duration::from_millis(unit_ms / 4 + rng.below(unit_ms * 7 / 4)));
            if rng.below(2) == 0 {
                std::mem::swap(&mut extra, &mut running[0]);
            }
            sigkill(&mut extra);
        }
        kills += 1;
        // Meanwhile the contractor's mail client reads what has arrived.
        if kills % 3 == 0 {
            s.read_all(MARUICHI);
        }
        if kills >= min_kills && queue_done(&s) {
            break;
        }
        // Progress, not a deadline: lives that end before any commit happen, but a long run
        // of them means work is redone without end (the defect of fixed-size batches).
        let now = progress(&s);
        stalled = if now > last { 0 } else { stalled + 1 };
        longest_stall = longest_stall.max(stalled);
        last = now;
        assert!(stalled < 40, "no progress in 40 lives in a row (lives of {}–{} ms; start-up {start_up:?}, {per_message:?} a message; {kills} kills)", unit_ms / 4, unit_ms * 2);
    }
    for mut d in running {
        sigkill(&mut d);
    }
    eprintln!("crash test ({daemons} daemon(s)): start-up {start_up:?}, {per_message:?} a message, lives {}–{} ms, longest run of lives without progress {longest_stall}", unit_ms / 4, unit_ms * 2);
    // One last clean pass changes nothing.
    s.once();

    // Every message has exactly one outcome.
    let messages = count(&s, "SELECT count(*) FROM messages");
    assert_eq!(messages, (warmup + apps + subs) as i64);
    assert_eq!(count(&s, "SELECT count(*) FROM messages WHERE state != 'done' OR outcome IS NULL"), 0);
    // Each the outcome it should have: issued, or a submission checked; none held for a
    // fault (a second processing would end there, refused by the store).
    assert_eq!(count(&s, "SELECT count(*) FROM messages WHERE outcome NOT IN ('issued', 'submission')"), 0);
    // No certificate issued twice: two per application, numbers without gaps.
    assert_eq!(count(&s, "SELECT count(*) FROM certificates"), ((warmup + apps) * 2) as i64);
    assert_eq!(count(&s, "SELECT count(*) FROM (SELECT application_message_id FROM certificates GROUP BY application_message_id HAVING count(*) != 2) AS odd"), 0);
    assert_eq!(count(&s, "SELECT max(last) FROM serials WHERE office_code = '35075'"), ((warmup + apps) * 2) as i64, "no serial skipped or reused");
    // The registry agrees with the certificates.
    assert_eq!(count(&s, "SELECT count(*) FROM registry"), count(&s, "SELECT count(*) FROM certificates WHERE format = '電子保証'"));
    assert_eq!(count(&s, "SELECT count(*) FROM certificates c JOIN registry r ON r.number = c.number WHERE r.owner != c.owner OR r.status != c.status"), 0);
    let pg = matches!(s.db(), crate::pg::Db::Pg(_));
    let without_fee = if pg { "(v.contents::jsonb - 'fee')::text" } else { "json_remove(v.contents, '$.fee')" };
    let same = if pg { "r.contents::jsonb::text" } else { "r.contents" };
    assert_eq!(count(&s, &format!("SELECT count(*) FROM certificate_versions v JOIN registry_versions r USING (number, version) WHERE {same} != {without_fee}")), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM submissions"), subs as i64);
    assert_eq!(count(&s, "SELECT count(*) FROM submissions WHERE result != 'accepted'"), 0);
    integrity(&s);

    // Every mail that should have gone out went out exactly once: one reply per application
    // and per submission in the contractor's mailbox (In-Reply-To names the request).
    let mut replies: HashMap<String, usize> = HashMap::new();
    for m in s.mails(MARUICHI) {
        *replies.entry(m.in_reply_to.clone().unwrap_or_default()).or_default() += 1;
    }
    let expected: Vec<String> = (1..=apps).map(|n| format!("<app-{n}@maruichi.example>"))
        .chain((0..subs).map(|i| format!("<sub-{i}@maruichi.example>"))).collect();
    let duplicates = expected.iter().filter(|e| replies.get(*e).copied().unwrap_or(0) > 1).count();
    let missing = expected.iter().filter(|e| !replies.contains_key(*e)).count();
    // And the kind of each: a completion per application, a receipt per submission.
    let kinds: BTreeMap<String, usize> = s.mails(MARUICHI).iter().fold(BTreeMap::new(), |mut k, m| {
        *k.entry(m.subject.split('（').next().unwrap_or("").to_string()).or_default() += 1;
        k
    });
    eprintln!("crash test: kills survived {kills}, messages {messages} ({apps} applications + {subs} submissions queued, {warmup} issued before), duplicates found {duplicates}, mails missing {missing}, in {:.1}s; replies by subject {kinds:?}", started.elapsed().as_secs_f64());
    assert_eq!((duplicates, missing), (0, 0));
    assert_eq!(count(&s, "SELECT count(*) FROM outbox WHERE status != 'sent'"), 0);
    Figures { kills, messages, duplicates, missing }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_doubles_nothing() {
    let s = Setup::new();
    let f = if long() { crash_test(s, 250, 1000, 500, 100, 1) } else { crash_test(s, 50, 200, 100, 20, 1) };
    assert!(f.kills >= if long() { 100 } else { 20 });
    assert!(f.messages > 0 && f.duplicates == 0 && f.missing == 0);
}

#[test]
fn a_second_daemon_on_the_same_configuration_refuses_to_start() {
    // SQLite's store has one daemon (its lock file); PostgreSQL's takes several (postgres.rs).
    let s = Setup::on_sqlite();
    s.drop_mail(KANAGAWA, &application(1));
    let mut first = daemon(&s);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&s, "SELECT count(*) FROM outbox WHERE status = 'sent'") == 0 {
        assert!(Instant::now() < deadline, "the first daemon did not work");
        std::thread::sleep(Duration::from_millis(100));
    }
    for args in [&["run", "--once"][..], &["run"][..]] {
        let second = s.cmd().args(args).output().unwrap();
        assert!(!second.status.success(), "{args:?} must not start beside a running daemon");
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(err.contains("another esurety is already running"), "{err}");
    }
    sigkill(&mut first);
    // Once the first is gone, a new one starts (the lock dies with its process).
    s.drop_mail(KANAGAWA, &application(2));
    s.once();
    let replies: Vec<_> = s.mails(MARUICHI).into_iter().map(|m| m.in_reply_to.unwrap_or_default()).collect();
    assert_eq!(replies, ["<app-1@maruichi.example>", "<app-2@maruichi.example>"]);
}

/// A file system of its own for the store, mounted for the test (the tests run as root).
struct Mount(std::path::PathBuf);
impl Mount {
    fn tmpfs(at: &std::path::Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status().unwrap();
        assert!(ok.success(), "mounting a tmpfs for the store needs root (the test command runs as root)");
        Mount(at.to_path_buf())
    }
    fn remount(&self, opt: &str) {
        assert!(Command::new("mount").args(["-o", &format!("remount,{opt}")]).arg(&self.0).status().unwrap().success());
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Stops a daemon with SIGTERM and returns what it said on standard error.
fn stop(child: Child) -> String {
    assert!(Command::new("kill").arg(child.id().to_string()).status().unwrap().success());
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned()
}

#[test]
fn a_full_disk_or_a_read_only_store_stops_new_work_loses_nothing_and_work_resumes() {
    // The store's own disk (PostgreSQL's server keeps its disk: postgres.rs stops the server).
    let s = Setup::on_sqlite();
    let fs = Mount::tmpfs(&s.dir.join("storefs"), "16m");
    let text = std::fs::read_to_string(s.config()).unwrap().replace("store = \"esurety.db\"", "store = \"storefs/esurety.db\"");
    std::fs::write(s.config(), text).unwrap();
    s.drop_mail(KANAGAWA, &application(1));
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 1);

    // The disk fills up: nothing more can be stored.
    let filler = fs.0.join("filler");
    let _ = Command::new("dd").args(["if=/dev/zero", "bs=64k"]).arg(format!("of={}", filler.display())).stderr(Stdio::null()).status();
    for n in 2..=4 {
        s.drop_mail(KANAGAWA, &application(n));
    }
    let once = s.run(&["run", "--once"]);
    assert!(!once.status.success(), "--once says it could not work");
    let err = String::from_utf8_lossy(&once.stderr);
    assert!(err.contains("cannot be written") && err.contains("full"), "a clear error: {err}");
    let d = daemon(&s);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.mails(MARUICHI).len(), 1, "no new work while the disk is full");
    assert_eq!(s.files(KANAGAWA).iter().filter(|(_, f, _)| f.contains('S')).count(), 1, "the new applications are not marked as processed");

    // Space is back: the same daemon picks everything up, once.
    std::fs::remove_file(&filler).unwrap();
    wait_for_replies(&s, 4);

    let said = stop(d);
    assert!(said.contains("the store cannot be written") && said.contains("no new mail is taken"), "the daemon said why it took no work: {said}");

    // The store's file system is read-only when the daemon starts (a file system cannot be
    // remounted read-only under open files), then writable again.
    fs.remount("ro");
    s.drop_mail(KANAGAWA, &application(5));
    let d = daemon(&s);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.mails(MARUICHI).len(), 4, "no new work on a read-only store");
    fs.remount("rw");
    wait_for_replies(&s, 5);
    let said = stop(d);
    assert!(said.contains("the store cannot be written") && said.contains("read-only"), "the daemon said why it took no work: {said}");

    let replies: Vec<String> = s.mails(MARUICHI).into_iter().map(|m| m.in_reply_to.unwrap_or_default()).collect();
    for n in 1..=5 {
        assert_eq!(replies.iter().filter(|r| **r == format!("<app-{n}@maruichi.example>")).count(), 1, "application {n}: one reply");
    }
    assert_eq!(count(&s, "SELECT count(*) FROM certificates"), 10);
    integrity(&s);
}

fn wait_for_replies(s: &Setup, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while s.mails(MARUICHI).len() < n {
        assert!(Instant::now() < deadline, "work did not resume ({} of {n} replies)", s.mails(MARUICHI).len());
        std::thread::sleep(Duration::from_millis(200));
    }
}
