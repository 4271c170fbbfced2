//! Attacks on issue 25's changes (OAuth 2.0 logins, the loopback redirect, `/metrics`), each
//! a finding of the attack on that issue that a user or an operator would see (each failed
//! before its fix):
//! a `/metrics` client that never finishes its headers keeps its connection (and with a
//! thousand of them, the process's file descriptors); a stranger on the machine trickling
//! bytes to `mailbox authorize --loopback` keeps the browser's redirect waiting; a pass that
//! marks the messages of a mailbox whose token cannot be had holds the store locked.

use crate::common::{Setup, application};
use crate::mail_servers::{configure, server_mails, users, wait_for};
use crate::registry_service::Serving;
use crate::oauth::Idp;
use crate::servers::{Servers, free_port};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

/// Whether the server closes a connection whose request headers never end, within `max`.
fn closes_half_request(addr: &str, max: Duration) -> bool {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
    c.set_read_timeout(Some(max)).unwrap();
    let mut buf = [0u8; 512];
    // A 408, a close or a reset free the connection; a timeout of our read means it is kept.
    match c.read(&mut buf) {
        Ok(_) => true,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[test]
fn the_metrics_listener_closes_a_connection_that_never_finishes_its_headers() {
    let s = Setup::new();
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let serving = Serving::start(&s, &["serve"]);
    let metrics = serving.log.lock().unwrap().lines().find_map(|l| l.split("metrics on http://").nth(1).map(|u| u.trim().trim_end_matches("/metrics").to_string())).expect("a `metrics on` line");
    let web = serving.url.trim_start_matches("http://").to_string();
    // The [web] listener lets a request's headers take 15 s; the metrics listener must not
    // keep such a connection for ever either (a thousand of them take every descriptor of
    // a process under systemd's default limit of 1024: the web server, IMAP, SMTP and the
    // store then fail with "Too many open files").
    assert!(closes_half_request(&web, Duration::from_secs(25)), "control: [web] closes it");
    assert!(closes_half_request(&metrics, Duration::from_secs(25)), "the metrics listener kept a connection whose headers never ended for 25 s");
}

/// `[mail.imap]` (on a port where nothing listens: nothing here logs in) with every
/// watched mailbox on a password but kanagawa, on OAuth 2.0 with `extra` keys.
fn oauth_config(s: &Setup, extra: &str) {
    let config = esurety::config::Config::load(&s.config()).unwrap();
    let mut mail = "maildir_root = \"mailboxes\"\n\n[mail.imap]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"plain\"\n".to_string();
    for a in config.branches.iter().map(|b| b.address.clone()).chain(config.owners.iter().map(|o| o.contracts_address.clone())) {
        if a == KANAGAWA {
            mail += &format!("\n[[mail.accounts]]\naddress = \"{a}\"\nusername = \"{a}\"\n{extra}");
        } else {
            mail += &format!("\n[[mail.accounts]]\naddress = \"{a}\"\nusername = \"{a}\"\npassword = \"pw\"\n");
        }
    }
    s.edit_config(|t| t.replace("maildir_root = \"mailboxes\"\n", &mail));
}

#[test]
fn a_stranger_trickling_bytes_does_not_keep_the_browser_redirect_waiting() {
    let s = Setup::new();
    let nowhere = free_port();
    oauth_config(&s, &format!(
        "auth = \"oauth2\"\nprovider = \"custom\"\ntoken_url = \"http://127.0.0.1:{nowhere}/token\"\nauthorize_url = \"http://127.0.0.1:{nowhere}/authorize\"\nclient_id = \"c\"\nscope = \"mail\"\n"
    ));
    let mut child = s.cmd().args(["mailbox", "authorize", KANAGAWA, "--loopback"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "mailbox authorize ended before showing the address");
        if let Some(u) = line.strip_prefix("url: ") {
            break url::Url::parse(u.trim()).unwrap();
        }
    };
    let get = |k: &str| url.query_pairs().find(|(q, _)| q == k).map(|(_, v)| v.into_owned()).unwrap();
    let redirect = url::Url::parse(&get("redirect_uri")).unwrap();
    let port = redirect.port().unwrap();
    let state = get("state");
    // A stranger on the machine connects first and sends a byte every 3 s (under the 5 s
    // each read is given), as a slow client would.
    let stranger = std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        for _ in 0..15 {
            if c.write_all(b"G").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    // The person's browser comes back with the right state and a code.
    let began = Instant::now();
    let mut browser = TcpStream::connect(("127.0.0.1", port)).unwrap();
    browser.write_all(format!("GET /callback?state={state}&code=the-code HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes()).unwrap();
    browser.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let mut answer = String::new();
    let _ = browser.read_to_string(&mut answer);
    let waited = began.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let _ = stranger.join();
    assert!(answer.starts_with("HTTP/1.1 200"), "the browser got no answer in {waited:?} while a stranger trickled bytes: {answer:?}");
    assert!(waited < Duration::from_secs(10), "the browser waited {waited:?} behind the stranger");
}

/// `esurety mailbox authorize ARGS` (device flow), approved by kanagawa as a person would.
fn authorize_device(s: &Setup, idp: &Idp, args: &[&str]) {
    let mut child = crate::mail_servers::cmd(s).args(["mailbox", "authorize"]).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "mailbox authorize ended before showing a code");
        if let Some(code) = line.strip_prefix("code: ") {
            idp.approve("device", code.trim(), KANAGAWA);
            break;
        }
    }
    assert!(child.wait().unwrap().success());
}

/// The mail servers with kanagawa on OAuth 2.0 (device flow) at `idp`, its access tokens
/// living 3 s, authorized at the terminal as a person would.
fn kanagawa_on_oauth(s: &Setup, idp: &Idp) -> Servers {
    let m = Servers::start_with_oauth(&users(s), idp.get("OAUTH_DOVECOT_INTROSPECTION_URL"));
    configure(s, &m, true);
    let keys = format!(
        "auth = \"oauth2\"\nprovider = \"custom\"\ntoken_url = \"{}\"\ndevice_url = \"{}\"\nclient_id = \"{}\"\nscope = \"{}\"\n",
        idp.get("OAUTH_TOKEN_URL"), idp.get("OAUTH_DEVICE_AUTHORIZATION_URL"), idp.get("OAUTH_DEVICE_CLIENT_ID"), idp.get("OAUTH_SCOPE"),
    );
    s.edit_config(|t| t.replace(&format!("address = \"{KANAGAWA}\"\nusername = \"{KANAGAWA}\"\npassword = \"pw\"\n"), &format!("address = \"{KANAGAWA}\"\nusername = \"{KANAGAWA}\"\n{keys}")));
    idp.op("lifetime", &["3"]);
    authorize_device(s, idp, &[KANAGAWA]);
    m
}

#[test]
fn marking_the_mail_of_a_mailbox_without_a_token_does_not_lock_the_store() {
    let s = Setup::new();
    let idp = Idp::start(&[KANAGAWA]);
    let m = kanagawa_on_oauth(&s, &idp);

    // A message processed but not yet marked in its mailbox (as after an IMAP hiccup
    // while marking, or a crash just before).
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    let out = crate::mail_servers::cmd(&s).args(["run", "--once"]).env("ESURETY_CRASH_AT", "marked_before").output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("crash injected"), "{}", String::from_utf8_lossy(&out.stderr));

    // The provider away; the access token expired. The pass cannot read kanagawa (said so)
    // and cannot mark its message (tried again later): it must not hold the store meanwhile.
    idp.stop();
    std::thread::sleep(Duration::from_secs(4));
    let began = Instant::now();
    let out = crate::mail_servers::cmd(&s).args(["run", "--once"]).env("ESURETY_LOG", "info").output().unwrap();
    let took = began.elapsed();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("unavailable: kanagawa@ejcs.example"), "{log}");
    assert!(!log.contains("database is locked"), "the pass waited for its own lock: {log}");
    assert!(took < Duration::from_secs(15), "one pass took {took:?}: {log}");
}

/// Two daemons on one PostgreSQL store, the access token just expired, a provider that
/// rotates refresh tokens (each refresh revokes the one it was given): one refreshes, the
/// other uses what it saved; neither marks the login refused.
#[test]
fn two_daemons_on_one_postgres_store_share_a_rotating_refresh_token() {
    let s = Setup::new();
    if !crate::pg::on_postgres() {
        s.use_store(&crate::pg::database());
    }
    let idp = Idp::start(&[KANAGAWA]);
    let m = kanagawa_on_oauth(&s, &idp);
    for round in 0..6 {
        std::thread::sleep(Duration::from_secs(4)); // the 3 s access token has expired
        let both: Vec<_> = (0..2).map(|_| crate::mail_servers::cmd(&s).args(["run", "--once"]).env("ESURETY_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()).collect();
        let logs: Vec<String> = both.into_iter().map(|c| {
            let out = c.wait_with_output().unwrap();
            let log = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "round {round}: {log}");
            log
        }).collect();
        let all = logs.join("\n");
        assert!(!all.contains("oauth_refresh_refused"), "round {round}: a daemon had the login refused: {all}");
        assert_eq!(all.matches("\"oauth_refreshed\"").count(), 1, "round {round}: one refresh for both: {all}");
    }
    let list = s.run(&["mailbox", "list", "--json"]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["state"], "authorized", "{v}");
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    let out = crate::mail_servers::cmd(&s).args(["run", "--once"]).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("stored 1 new"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The relay on OAuth 2.0 pointed at a port that offers no AUTH (an operator's mistake, or
/// a server that does not offer XOAUTH2): a refused login, tried again later, never the
/// recipient's permanent refusal.
#[test]
fn a_relay_that_takes_no_oauth_login_does_not_fail_the_mail_for_good() {
    let s = Setup::new();
    let idp = Idp::start(&[KANAGAWA]);
    let m = kanagawa_on_oauth(&s, &idp);
    idp.op("lifetime", &["3600"]);
    let keys = format!(
        "auth = \"oauth2\"\nprovider = \"custom\"\ntoken_url = \"{}\"\ndevice_url = \"{}\"\nclient_id = \"{}\"\nscope = \"{}\"\n",
        idp.get("OAUTH_TOKEN_URL"), idp.get("OAUTH_DEVICE_AUTHORIZATION_URL"), idp.get("OAUTH_DEVICE_CLIENT_ID"), idp.get("OAUTH_SCOPE"),
    );
    let relay = format!("port = {}\nsecurity = \"starttls\"\nca_file = \"{}\"\nusername = \"{KANAGAWA}\"\npassword_env = \"ESURETY_TEST_SMTP_PASSWORD\"\n", m.submission, m.ca().display());
    s.edit_config(|t| {
        assert!(t.contains(&relay));
        t.replace(&relay, &format!("port = {}\nsecurity = \"plain\"\nusername = \"{KANAGAWA}\"\n{keys}", m.smtp))
    });
    authorize_device(&s, &idp, &[KANAGAWA, "--smtp"]);
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    let out = crate::mail_servers::cmd(&s).args(["run", "--once"]).env("ESURETY_LOG", "info").output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let failed = s.run(&["staff", "failed", "--json"]);
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(failed.as_array().map(Vec::len), Some(0), "the relay's refusal of the login made the mail fail for good: {failed}\n{log}");
}
