//! The daemon against real Dovecot and Postfix on loopback (see `servers.rs`): IDLE and
//! latency, SIGKILL and restart, SMTP down, IMAP restarted, UIDVALIDITY changed, and an
//! owner's shared mailbox.

use crate::common::{Mail, Setup, application, key_in, parse_mail, pdf_text};
use crate::servers::Servers;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";
const KWSA: &str = "keiyaku@kwsa.example";

pub(crate) fn users(s: &Setup) -> Vec<String> {
    let config = esurety::config::Config::load(&s.config()).unwrap();
    let mut u = config.local_addresses();
    u.push("keiri@toride-kogyo.example".into());
    u.push("kanagawa-staff@ejcs.example".into());
    u
}

/// The embedded default pointed at the servers: IMAP (implicit TLS or STARTTLS) for every
/// watched address, SMTP submission with STARTTLS and AUTH.
pub(crate) fn configure(s: &Setup, m: &Servers, implicit_tls: bool) {
    let config = esurety::config::Config::load(&s.config()).unwrap();
    let (port, security) = if implicit_tls { (m.imaps, "tls") } else { (m.imap, "starttls") };
    let mut mail = format!(
        "maildir_root = \"mailboxes\"\npoll_seconds = 2\n\n[mail.imap]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"{security}\"\nca_file = \"{cert}\"\n\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {sub}\nsecurity = \"starttls\"\nca_file = \"{cert}\"\nusername = \"{KANAGAWA}\"\npassword_env = \"ESURETY_TEST_SMTP_PASSWORD\"\n",
        cert = m.ca().display(), sub = m.submission,
    );
    for (a, _) in config.branches.iter().map(|b| (b.address.clone(), ())).chain(config.owners.iter().map(|o| (o.contracts_address.clone(), ()))) {
        mail += &format!("\n[[mail.accounts]]\naddress = \"{a}\"\nusername = \"{a}\"\npassword = \"pw\"\n");
    }
    let text = std::fs::read_to_string(s.config()).unwrap().replace("maildir_root = \"mailboxes\"\n", &mail)
        .replace("address = \"kanagawa@ejcs.example\"\ntel", "address = \"kanagawa@ejcs.example\"\nstaff_address = \"kanagawa-staff@ejcs.example\"\ntel");
    std::fs::write(s.config(), text).unwrap();
}

fn with_servers(implicit_tls: bool) -> (Setup, Servers) {
    let s = Setup::new();
    let m = Servers::start(&users(&s));
    configure(&s, &m, implicit_tls);
    (s, m)
}

pub(crate) fn cmd(s: &Setup) -> Command {
    let mut c = s.cmd();
    c.env("ESURETY_TEST_SMTP_PASSWORD", "pw");
    c
}

fn once(s: &Setup) -> String {
    let out = cmd(s).args(["run", "--once"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn daemon(s: &Setup) -> Child {
    cmd(s).args(["run"]).env_remove("ESURETY_TEST_NOW").env("ESURETY_LOG", "info")
        .stdout(Stdio::null()).stderr(std::fs::File::create(s.dir.join(format!("daemon-{}.log", s.seq.get()))).unwrap())
        .spawn().unwrap()
}

/// Waits until the daemon last started says its IDLE connection is up.
fn idle_ready(s: &Setup) {
    let log = s.dir.join(format!("daemon-{}.log", s.seq.get()));
    wait_for("the IDLE connection", Duration::from_secs(10), || std::fs::read_to_string(&log).is_ok_and(|l| l.contains("idle_ready")));
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let t = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "the daemon stopped cleanly: {st:?}");
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every message in a server-side Maildir (new and cur), with its file name.
pub(crate) fn server_mails(dir: &Path) -> Vec<(String, Mail)> {
    let mut out = vec![];
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            out.push((p.file_name().unwrap().to_string_lossy().into_owned(), parse_mail(&std::fs::read(&p).unwrap())));
        }
    }
    out
}

/// 丸一建設's application 0 sent to the branch, one pass, and its notice arrived.
fn issue_one(s: &Setup, m: &Servers) {
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    once(s);
    wait_for("the notice", Duration::from_secs(10), || completions(m).len() == 1);
}

pub(crate) fn completions(m: &Servers) -> Vec<Mail> {
    server_mails(&m.maildir(MARUICHI)).into_iter().map(|(_, m)| m).filter(|m| m.subject.starts_with("電子保証（認証キー）発行完了のお知らせ")).collect()
}

/// Waits until `f` holds. `max` is what a fast machine needs; the test fails only after
/// several times that, so a slow or busy machine does not fail it (a deadline here only
/// turns a hang into a failure, it never decides a verdict that timing should not).
pub(crate) fn wait_for(what: &str, max: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let max = max * 6;
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < max, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t.elapsed()
}

fn flags_of(dir: &Path, message_id: &str) -> String {
    server_mails(dir).into_iter().find(|(_, m)| m.raw.windows(message_id.len()).any(|w| w == message_id.as_bytes()))
        .map(|(name, _)| name.rsplit_once(":2,").map(|(_, f)| f.to_string()).unwrap_or_default())
        .unwrap_or_else(|| panic!("{message_id} in {}", dir.display()))
}

#[test]
fn an_application_by_smtp_is_seen_through_idle_and_the_notice_arrives_by_imap() {
    let (s, m) = with_servers(true);
    let d = daemon(&s);
    idle_ready(&s);
    let t0 = Instant::now();
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    let accepted = t0.elapsed();
    let latency = wait_for("the completion notice", Duration::from_secs(30), || !completions(&m).is_empty());
    eprintln!("notice latency (application's 250 → notice in the contractor's Maildir): {} ms (SMTP transaction {} ms)", latency.as_millis(), accepted.as_millis());
    std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/notice-latency.txt"), format!("{}\n", latency.as_millis())).ok();
    stop(d);
    let c = completions(&m);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].in_reply_to.as_deref(), Some("<app-0@maruichi.example>"));
    let key = key_in(&pdf_text(&c[0].attachments[0].1)).unwrap();
    assert_eq!(s.json(&["verify", "35075-00001M", &key])["result"], "valid");
    assert!(flags_of(&m.maildir(KANAGAWA), "<app-0@maruichi.example>").contains('S'), "the application is marked seen on the server");
    assert!(std::fs::read_to_string(s.dir.join("daemon-0.log")).unwrap().contains("watching"), "a health line at start");
}

#[test]
fn a_daemon_killed_while_processing_and_restarted_gives_every_application_one_outcome_and_one_reply() {
    let (s, m) = with_servers(false);
    let n = 6;
    for i in 0..n {
        m.send(MARUICHI, &[KANAGAWA], &application(i));
    }
    wait_for("delivery to the branch", Duration::from_secs(20), || server_mails(&m.maildir(KANAGAWA)).len() == n);
    // Killed right after the first outcome is committed, before its mailbox mark and its reply.
    let crashed = cmd(&s).args(["run"]).env_remove("ESURETY_TEST_NOW").env("ESURETY_CRASH_AT", "processed").output().unwrap();
    assert!(!crashed.status.success());
    assert!(completions(&m).is_empty(), "nothing was sent before the crash");
    // Killed again with SIGKILL while it works through the rest.
    let mut d = daemon(&s);
    wait_for("a notice", Duration::from_secs(30), || !completions(&m).is_empty());
    d.kill().unwrap();
    d.wait().unwrap();
    s.seq.set(s.seq.get() + 1);
    // Started again after the hold the killed daemon may have had on a mail (PostgreSQL)
    // has lapsed: its clock eleven minutes ahead.
    let later = (chrono::Local::now() + chrono::Duration::minutes(11)).to_rfc3339();
    let d = cmd(&s).args(["run"]).env("ESURETY_TEST_NOW", later).env("ESURETY_LOG", "info")
        .stdout(Stdio::null()).stderr(std::fs::File::create(s.dir.join(format!("daemon-{}.log", s.seq.get()))).unwrap())
        .spawn().unwrap();
    wait_for("every notice", Duration::from_secs(60), || completions(&m).len() >= n);
    std::thread::sleep(Duration::from_secs(3)); // nothing more should come
    stop(d);
    let c = completions(&m);
    let mut ids: Vec<String> = c.iter().map(|x| String::from_utf8_lossy(&x.raw).lines().find(|l| l.to_ascii_lowercase().starts_with("message-id:")).unwrap_or("").to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "exactly one reply per application");
    // SMTP's own window (RFC 1047): a kill between the server's 250 and our record of it
    // sends that message again, with the same Message-ID. One kill, at most one copy.
    assert!(c.len() <= n + 1, "{} copies of {n} replies", c.len());
    let mut replied_to: Vec<_> = c.iter().map(|x| x.in_reply_to.clone().unwrap()).collect();
    replied_to.sort();
    replied_to.dedup();
    assert_eq!(replied_to.len(), n);
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 2 * n, "two certificates per application, none twice");
    for i in 0..n {
        assert!(flags_of(&m.maildir(KANAGAWA), &format!("<app-{i}@maruichi.example>")).contains('S'));
    }
}

/// One mail to two recipients over real SMTP (取手興業's completion notice, also to the
/// 希望する address), the daemon killed right after the first recipient's delivery is
/// recorded: the next pass (on PostgreSQL, once the dead daemon's hold has lapsed) sends it
/// to the second only. Each recipient gets one copy, on PostgreSQL as on a SQLite file
/// (each recipient's delivery is committed as it happens).
#[test]
fn a_crash_between_the_recipients_of_one_mail_sends_no_one_a_second_copy() {
    let (s, m) = with_servers(false);
    let raw = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications/valid/002.eml")).unwrap();
    m.send("info@toride-kogyo.example", &["ibaraki@ejcs.example"], &raw);
    wait_for("delivery to the branch", Duration::from_secs(10), || !server_mails(&m.maildir("ibaraki@ejcs.example")).is_empty());
    let crashed = cmd(&s).args(["run", "--once"]).env("ESURETY_CRASH_AT", "delivered_one").output().unwrap();
    assert!(!crashed.status.success(), "the crash was injected: {}", String::from_utf8_lossy(&crashed.stderr));
    // On PostgreSQL the dead daemon's hold on the mail lapses after ten minutes.
    let later = cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", "2026-07-04T10:11:00+09:00").output().unwrap();
    assert!(later.status.success(), "{}", String::from_utf8_lossy(&later.stderr));
    let notices = |a: &str| server_mails(&m.maildir(a)).into_iter().filter(|(_, x)| x.subject.starts_with("電子保証（認証キー）発行完了のお知らせ")).count();
    wait_for("both copies", Duration::from_secs(10), || notices("info@toride-kogyo.example") >= 1 && notices("keiri@toride-kogyo.example") >= 1);
    once(&s);
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!((notices("info@toride-kogyo.example"), notices("keiri@toride-kogyo.example")), (1, 1), "one copy each");
    assert_eq!(s.json(&["outbox"])[0]["status"], "sent");
}

#[test]
fn with_the_smtp_server_down_notices_wait_in_the_outbox_and_go_out_once_when_it_is_back() {
    let (s, m) = with_servers(false);
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery to the branch", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    m.stop_smtp();
    once(&s);
    let o = s.json(&["outbox"]);
    assert_eq!(o[0]["status"], "pending");
    assert_eq!(o[0]["attempts"], 1);
    assert!(o[0]["last_error"].as_str().unwrap().contains("soumu@maruichi.example"), "{o}");
    once(&s); // not due yet: no second attempt
    assert_eq!(s.json(&["outbox"])[0]["attempts"], 1);
    m.start_smtp();
    let later = cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", "2026-07-04T10:10:00+09:00").output().unwrap();
    assert!(later.status.success());
    let o = s.json(&["outbox"]);
    assert_eq!((o[0]["status"].as_str(), o[0]["attempts"].as_i64()), (Some("sent"), Some(2)));
    wait_for("the notice", Duration::from_secs(10), || !completions(&m).is_empty());
    cmd(&s).args(["run", "--once"]).env("ESURETY_TEST_NOW", "2026-07-04T11:00:00+09:00").output().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(completions(&m).len(), 1, "sent once");
}

#[test]
fn the_daemon_reconnects_when_the_imap_server_restarts_under_it() {
    let (s, m) = with_servers(false);
    let d = daemon(&s);
    idle_ready(&s);
    m.restart_imap();
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("the notice after the restart", Duration::from_secs(60), || !completions(&m).is_empty());
    stop(d);
    assert_eq!(completions(&m).len(), 1);
}

#[test]
fn a_mailbox_whose_uidvalidity_changed_is_resynchronised_without_reprocessing() {
    let (s, m) = with_servers(false);
    issue_one(&s, &m);
    // Dovecot's view of the folder is rebuilt: new UIDVALIDITY, new UIDs, flags kept in the file names.
    std::thread::sleep(Duration::from_millis(1100));
    let md = m.maildir(KANAGAWA);
    let validity = |md: &Path| std::fs::read_to_string(md.join("dovecot-uidlist")).unwrap().split_whitespace().nth(1).unwrap().to_string();
    let before = validity(&md);
    for f in ["dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"] {
        let _ = std::fs::remove_file(md.join(f));
    }
    // A second application arrives under the new UIDVALIDITY.
    m.send(MARUICHI, &[KANAGAWA], &application(1));
    wait_for("delivery", Duration::from_secs(10), || server_mails(&md).len() == 2);
    once(&s);
    wait_for("the second notice", Duration::from_secs(10), || completions(&m).len() == 2);
    std::thread::sleep(Duration::from_millis(700));
    assert_ne!(validity(&md), before, "UIDVALIDITY changed");
    assert_eq!(completions(&m).len(), 2, "the first application was not processed again");
    assert!(flags_of(&md, "<app-0@maruichi.example>").contains('S') && flags_of(&md, "<app-1@maruichi.example>").contains('S'));
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 4);
}

#[test]
fn an_owner_mailbox_flags_the_submission_and_leaves_other_mail_unseen() {
    let (s, m) = with_servers(false);
    issue_one(&s, &m);
    let completion = completions(&m).remove(0);
    let fwd = crate::support::forward(MARUICHI, KWSA, "<fwd@maruichi.example>", &completion.raw);
    m.send(MARUICHI, &[KWSA], &fwd);
    m.send("somu@kwsa.example", &[KWSA], b"From: somu@kwsa.example\r\nTo: keiyaku@kwsa.example\r\nSubject: meeting\r\nMessage-ID: <meeting@kwsa.example>\r\n\r\nNext Tuesday.\r\n");
    wait_for("both in the owner's mailbox", Duration::from_secs(10), || server_mails(&m.maildir(KWSA)).len() == 2);
    once(&s);
    let subs = s.json(&["submissions"]);
    assert_eq!(subs.as_array().unwrap().len(), 2);
    assert!(subs.as_array().unwrap().iter().all(|x| x["result"] == "accepted"));
    let md = m.maildir(KWSA);
    let kw = std::fs::read_to_string(md.join("dovecot-keywords")).unwrap();
    let letter = kw.lines().find_map(|l| l.strip_suffix(" esurety-checked")).map(|n| (b'a' + n.parse::<u8>().unwrap()) as char).expect("the keyword is known to Dovecot");
    let sub_flags = flags_of(&md, "<fwd@maruichi.example>");
    assert!(sub_flags.contains(letter) && !sub_flags.contains('S'), "checked, left unread: {sub_flags}");
    assert_eq!(flags_of(&md, "<meeting@kwsa.example>"), "", "the other mail: not seen, not flagged");
    wait_for("the receipt", Duration::from_secs(10), || server_mails(&m.maildir(MARUICHI)).iter().any(|(_, x)| x.subject.starts_with("【電子保証】受付結果")));
}

#[test]
fn a_permanent_refusal_marks_the_mail_failed_keeps_it_and_tells_the_branch_staff() {
    let (s, m) = with_servers(false);
    // The notice is to go to soumu@ and to an address the server does not know.
    let raw = with_notify(&application(0), "nobody@maruichi.example");
    m.send(MARUICHI, &[KANAGAWA], &raw);
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    once(&s);
    let o = s.json(&["outbox"]);
    let notice = o.as_array().unwrap().iter().find(|x| x["kind"] == "completion").unwrap();
    assert_eq!(notice["status"], "failed", "{o}");
    assert!(notice["last_error"].as_str().unwrap().contains("550"), "the server's reply is kept: {notice}");
    assert_eq!(completions(&m).len(), 1, "the recipient the server knows got it");
    wait_for("the staff notice", Duration::from_secs(10), || {
        server_mails(&m.maildir("kanagawa-staff@ejcs.example")).iter().any(|(_, x)| x.subject.starts_with("【esurety】メールを送信できませんでした") && x.body.contains("nobody@maruichi.example"))
    });
}

/// The same application with another 電子保証発行完了のお知らせ address.
fn with_notify(raw: &[u8], address: &str) -> Vec<u8> {
    let m = parse_mail(raw);
    let body = m.body.replace("メールアドレス：soumu@maruichi.example", &format!("メールアドレス：{address}"));
    format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <notify@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

#[test]
fn processed_applications_can_be_moved_to_a_folder() {
    let (s, m) = with_servers(false);
    let text = std::fs::read_to_string(s.config()).unwrap().replace(
        "address = \"kanagawa@ejcs.example\"\nusername = \"kanagawa@ejcs.example\"\npassword = \"pw\"\n",
        "address = \"kanagawa@ejcs.example\"\nusername = \"kanagawa@ejcs.example\"\npassword = \"pw\"\nmove_processed_to = \"Processed\"\n",
    );
    std::fs::write(s.config(), text).unwrap();
    issue_one(&s, &m);
    assert!(server_mails(&m.maildir(KANAGAWA)).is_empty(), "moved out of INBOX");
    assert!(flags_of(&m.maildir(KANAGAWA).join(".Processed"), "<app-0@maruichi.example>").contains('S'), "in Processed, seen");
    once(&s);
    assert_eq!(completions(&m).len(), 1);
}

/// A resync after UIDVALIDITY changed, interrupted after its first chunk (20 messages),
/// resumes where it got to: the application already answered is not answered again, the
/// new one is answered once, nothing is stored twice. And it keeps to `process_since`:
/// a mail older than that day, never read before, is not read now either.
#[test]
fn an_interrupted_resync_resumes_where_it_got_to_and_keeps_to_process_since() {
    let (s, m) = with_servers(false);
    let yesterday = (chrono::Local::now() - chrono::Duration::days(1)).format("%Y-%m-%d");
    let text = std::fs::read_to_string(s.config()).unwrap().replace("poll_seconds = 2\n", &format!("poll_seconds = 2\nprocess_since = \"{yesterday}\"\n"));
    std::fs::write(s.config(), text).unwrap();
    let md = m.maildir(KANAGAWA);
    issue_one(&s, &m);
    for i in 0..21 {
        m.send(MARUICHI, &[KANAGAWA], format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: note {i}\r\nMessage-ID: <note-{i}@maruichi.example>\r\n\r\nhello\r\n").as_bytes());
    }
    wait_for("delivery", Duration::from_secs(20), || server_mails(&md).len() == 22);
    once(&s);
    // An application from years ago, in the folder but older than process_since.
    let old = md.join("new").join("1577836800.M1P1.old");
    std::fs::write(&old, String::from_utf8(application(9)).unwrap().replace("<app-9@", "<old-9@")).unwrap();
    let f = std::fs::File::options().write(true).open(&old).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800)).unwrap(); // 2020-01-01
    drop(f);
    // The folder's index is rebuilt: a new UIDVALIDITY. Then a new application arrives.
    std::thread::sleep(Duration::from_millis(1100));
    for f in ["dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"] {
        let _ = std::fs::remove_file(md.join(f));
    }
    m.send(MARUICHI, &[KANAGAWA], &application(1));
    wait_for("delivery", Duration::from_secs(10), || server_mails(&md).len() == 24);
    let crashed = cmd(&s).args(["run", "--once"]).env("ESURETY_CRASH_AT", "resynced_chunk").output().unwrap();
    assert!(!crashed.status.success(), "the resync was interrupted after its first chunk");
    once(&s);
    wait_for("the second notice", Duration::from_secs(10), || completions(&m).len() == 2);
    std::thread::sleep(Duration::from_millis(700));
    once(&s);
    assert_eq!(completions(&m).len(), 2, "app-0 once, app-1 once");
    let mut db = s.db();
    let mut count = |sql: &str| -> i64 { db.count(sql) };
    assert_eq!(count("SELECT count(*) FROM messages WHERE mailbox = 'kanagawa@ejcs.example'"), 23, "each message stored once");
    assert_eq!(count("SELECT count(*) FROM messages WHERE message_id = '<old-9@maruichi.example>'"), 0, "older than process_since: not read");
    assert!(flags_of(&md, "<old-9@maruichi.example>").is_empty(), "and left as it was");
    assert!(flags_of(&md, "<app-1@maruichi.example>").contains('S'));
}

/// A crash while an IMAP message is being stored (its row written, its bytes not yet)
/// leaves nothing half-stored: the next pass stores it whole and answers it once.
#[test]
fn a_crash_while_storing_an_imap_message_leaves_nothing_half_stored() {
    let (s, m) = with_servers(false);
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    let crashed = cmd(&s).args(["run", "--once"]).env("ESURETY_CRASH_AT", "stored_row").output().unwrap();
    assert!(!crashed.status.success(), "crashed between the row and its bytes");
    let rows: i64 = s.db().count("SELECT count(*) FROM messages");
    assert_eq!(rows, 0, "no row without its bytes");
    once(&s);
    wait_for("the notice", Duration::from_secs(10), || completions(&m).len() == 1);
    std::thread::sleep(Duration::from_millis(700));
    once(&s);
    assert_eq!(completions(&m).len(), 1);
}
