//! Mailboxes on OAuth 2.0 against real servers: a real authorization server
//! (django-oauth-toolkit, `tests/servers/oauth.sh`: token, device authorization,
//! authorization with PKCE, introspection, revocation), Dovecot checking access tokens at
//! its introspection endpoint (XOAUTH2, OAUTHBEARER), Postfix's submission port taking only
//! OAuth logins through Dovecot. The first refresh tokens are obtained by
//! `esurety mailbox authorize` as a person would (`oauth-approve.py` drives the server's
//! own login and consent pages); then the daemon reads and sends, refreshes, and says so
//! when its refresh token is revoked.

use crate::common::{Setup, application};
use crate::desk_web::{PASSWORD, add_user, login};
use crate::registry_service::Serving;
use crate::mail_servers::{completions, configure, server_mails, users, wait_for};
use crate::servers::{Servers, free_port, script};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const IBARAKI: &str = "ibaraki@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";
const TORIDE_KOGYO: &str = "info@toride-kogyo.example";
const STAFF: &str = "kanagawa-staff@ejcs.example";
/// The relay's login (its own user, so revoking the branch mailbox's leaves it alone).
const RELAY: &str = "relay@ejcs.example";

/// The authorization server, stopped when dropped.
pub(crate) struct Idp {
    dir: esurety::testing::TempDir,
    env: Value,
}

impl Idp {
    pub(crate) fn start(users: &[&str]) -> Idp {
        let mut why = String::new();
        for _ in 0..3 {
            let dir = esurety::testing::tempdir_in_named("esurety-idp-").unwrap();
            let out = Command::new(script("oauth.sh")).arg("start").arg(dir.path()).arg(free_port().to_string())
                .args(users.iter().map(|u| format!("{u}:pw"))).stdin(Stdio::null()).output().unwrap();
            if out.status.success() {
                let env = serde_json::from_slice(&std::fs::read(dir.path().join("oauth.json")).unwrap()).unwrap();
                return Idp { dir, env };
            }
            why += &String::from_utf8_lossy(&out.stderr);
        }
        panic!("the authorization server did not start: {why}");
    }

    pub(crate) fn get(&self, k: &str) -> &str {
        self.env[k].as_str().unwrap_or_else(|| panic!("{k} in oauth.json"))
    }

    /// `oauth.sh OP DIR ARGS…` (expire, revoke, lifetime, tokens): its JSON answer.
    pub(crate) fn op(&self, op: &str, args: &[&str]) -> Value {
        let out = Command::new(script("oauth.sh")).arg(op).arg(self.dir.path()).args(args).stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "oauth.sh {op}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    pub(crate) fn approve(&self, how: &str, what: &str, user: &str) {
        let out = Command::new("python3").arg(script("oauth-approve.py")).args([how, &self.dir.path().display().to_string(), what, "--user", user, "--password", "pw"])
            .stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "oauth-approve.py {how}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
}

impl Idp {
    /// Stops the server (the provider away); the test's drop stops it again, harmlessly.
    pub(crate) fn stop(&self) {
        let _ = Command::new(script("oauth.sh")).arg("stop").arg(self.dir.path()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The keys of a login on the test's authorization server (`provider = "custom"`).
fn oauth_keys(idp: &Idp, client: &str, device: bool) -> String {
    let device_url = if device { format!("device_url = \"{}\"\n", idp.get("OAUTH_DEVICE_AUTHORIZATION_URL")) } else { String::new() };
    format!(
        "auth = \"oauth2\"\nprovider = \"custom\"\ntoken_url = \"{}\"\n{device_url}authorize_url = \"{}\"\nclient_id = \"{client}\"\nscope = \"{}\"\n",
        idp.get("OAUTH_TOKEN_URL"), idp.get("OAUTH_AUTHORIZE_URL"), idp.get("OAUTH_SCOPE"),
    )
}

/// The embedded default on the servers: the branch mailbox kanagawa and the relay log in
/// with OAuth 2.0 (the relay on the OAuth-only submission port), every other mailbox with
/// its password.
fn setup() -> (Setup, Servers, Idp) {
    let s = Setup::new();
    let mut all = users(&s);
    all.push(RELAY.into());
    let idp = Idp::start(&[KANAGAWA, RELAY]);
    let m = Servers::start_with_oauth(&all, idp.get("OAUTH_DOVECOT_INTROSPECTION_URL"));
    configure(&s, &m, true);
    let text = std::fs::read_to_string(s.config()).unwrap();
    let text = text
        .replace(&format!("address = \"{KANAGAWA}\"\nusername = \"{KANAGAWA}\"\npassword = \"pw\"\n"), &format!("address = \"{KANAGAWA}\"\nusername = \"{KANAGAWA}\"\n{}", oauth_keys(&idp, idp.get("OAUTH_DEVICE_CLIENT_ID"), true)))
        .replace(&format!("port = {}\nsecurity = \"starttls\"\nca_file = \"{}\"\nusername = \"{KANAGAWA}\"\npassword_env = \"ESURETY_TEST_SMTP_PASSWORD\"\n", m.submission, m.ca().display()),
                 &format!("port = {}\nsecurity = \"starttls\"\nca_file = \"{}\"\nusername = \"{RELAY}\"\n{}", m.oauth_submission, m.ca().display(), oauth_keys(&idp, idp.get("OAUTH_PKCE_CLIENT_ID"), false)));
    assert_eq!(text.matches("auth = \"oauth2\"").count(), 2, "both logins configured on OAuth");
    std::fs::write(s.config(), text).unwrap();
    (s, m, idp)
}

/// `esurety mailbox authorize ARGS`, approved on the server by `user` as a person would:
/// the code it shows typed in (device flow), or the address it shows opened (loopback).
fn authorize(s: &Setup, idp: &Idp, args: &[&str], user: &str) -> String {
    let mut child = s.cmd().args(["mailbox", "authorize"]).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "esurety mailbox authorize ended before showing what to do: {said}");
        said += &line;
        if let Some(code) = line.strip_prefix("code: ") {
            idp.approve("device", code.trim(), user);
            break;
        }
        if let Some(url) = line.strip_prefix("url: ") {
            idp.approve("authorize", url.trim(), user);
            break;
        }
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    said += &rest;
    assert!(child.wait().unwrap().success(), "esurety mailbox authorize: {said}");
    said
}

fn once(s: &Setup) -> String {
    let out = s.cmd().args(["run", "--once"]).env("ESURETY_LOG", "info").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn states(s: &Setup) -> Vec<(String, String)> {
    let out = s.run(&["mailbox", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().iter().map(|r| (r["login"].as_str().unwrap().to_string(), r["state"].as_str().unwrap().to_string())).collect()
}

/// Whether the log has a line of this event for this login.
fn said(log: &str, event: &str, login: &str) -> bool {
    log.lines().any(|l| l.contains(event) && l.contains(login))
}

fn bid_bond() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications/bid_bond/001.eml")).unwrap()
}

#[test]
fn a_mailbox_on_oauth_reads_and_sends_refreshes_its_token_and_waits_when_its_refresh_token_is_revoked() {
    let (s, m, idp) = setup();
    let imap = format!("imap:{KANAGAWA}");
    let smtp = format!("smtp:{RELAY}");
    assert_eq!(states(&s), [(imap.clone(), "not_authorized".to_string()), (smtp.clone(), "not_authorized".to_string())]);

    // The first refresh tokens, at the terminal: the device code for the mailbox, a
    // browser redirected to a loopback port (PKCE) for the relay. No token is printed.
    let told = authorize(&s, &idp, &[KANAGAWA], KANAGAWA) + &authorize(&s, &idp, &[RELAY, "--smtp"], RELAY);
    assert!(told.contains(&format!("{KANAGAWA} is authorized")) && told.contains(&format!("{RELAY} is authorized")), "{told}");
    let live = idp.op("tokens", &[]);
    assert_eq!(live["refresh_live"], 2, "one refresh token per login: {live}");
    assert_eq!(states(&s), [(imap.clone(), "authorized".to_string()), (smtp.clone(), "authorized".to_string())]);

    // Read over IMAP with a token, sent through the OAuth-only submission port.
    m.send(MARUICHI, &[KANAGAWA], &application(0));
    wait_for("delivery", Duration::from_secs(10), || !server_mails(&m.maildir(KANAGAWA)).is_empty());
    let log = once(&s);
    wait_for("the completion notice", Duration::from_secs(10), || completions(&m).len() == 1);
    assert!(!log.contains("oauth_refresh_refused"), "{log}");

    // Tokens that the server no longer takes (expired at the authorization server) are
    // refreshed once more and the login tried again.
    // (The server rotates refresh tokens: each refresh revokes the one it was given.)
    let before = idp.op("tokens", &[])["refresh_revoked"].as_i64().unwrap();
    assert!(idp.op("expire", &[])["expired"].as_i64().unwrap() >= 1);
    m.send(MARUICHI, &[KANAGAWA], &application(1));
    wait_for("delivery", Duration::from_secs(10), || server_mails(&m.maildir(KANAGAWA)).len() == 2);
    let log = once(&s);
    assert!(said(&log, "oauth_token_refused_by_server", &imap), "the server refused the expired token: {log}");
    wait_for("the second notice", Duration::from_secs(10), || completions(&m).len() == 2);
    let after = idp.op("tokens", &[])["refresh_revoked"].as_i64().unwrap();
    assert!(after > before, "refreshed at the token endpoint: {before} → {after}");

    // Tokens that live 3 seconds are refreshed before they expire, without a refusal.
    idp.op("lifetime", &["3"]);
    idp.op("expire", &[]);
    once(&s); // refreshes after the refusal: these tokens live 3 s
    std::thread::sleep(Duration::from_secs(4));
    m.send(MARUICHI, &[KANAGAWA], &application(2));
    wait_for("delivery", Duration::from_secs(10), || server_mails(&m.maildir(KANAGAWA)).len() == 3);
    let log = once(&s);
    assert!(said(&log, "oauth_refreshed", &imap) && !said(&log, "oauth_token_refused_by_server", &imap), "refreshed ahead of expiry: {log}");
    wait_for("the third notice", Duration::from_secs(10), || completions(&m).len() == 3);
    idp.op("lifetime", &["3600"]);

    // The mailbox's refresh token revoked: said once in the log, in `mailbox list`, in the
    // staff digest (sent through the relay, still authorized); the mailbox waits, the
    // other mailboxes go on.
    // (One application processed and left unmarked by a crash: its mark waits for the login.)
    m.send(MARUICHI, &[KANAGAWA], &application(3));
    wait_for("delivery", Duration::from_secs(10), || server_mails(&m.maildir(KANAGAWA)).len() == 4);
    let crashed = s.cmd().args(["run", "--once"]).env("ESURETY_CRASH_AT", "marked_before").output().unwrap();
    assert!(!crashed.status.success(), "crashed before marking");
    idp.op("revoke", &[KANAGAWA]);
    m.send(MARUICHI, &[KANAGAWA], &application(5));
    m.send(TORIDE_KOGYO, &[IBARAKI], &bid_bond());
    wait_for("delivery", Duration::from_secs(10), || server_mails(&m.maildir(KANAGAWA)).len() == 5 && !server_mails(&m.maildir(IBARAKI)).is_empty());
    let log = once(&s);
    assert_eq!(log.matches("oauth_refresh_refused").count(), 1, "{log}");
    assert!(log.contains("invalid_grant"), "the provider's reason: {log}");
    // The mark waits without holding the store: no login inside the store's transaction.
    assert!(said(&log, "mark_failed", KANAGAWA) && !log.contains("database is locked"), "{log}");
    wait_for("ibaraki's answer", Duration::from_secs(10), || !server_mails(&m.maildir(TORIDE_KOGYO)).is_empty());
    wait_for("the processed application's notice", Duration::from_secs(10), || completions(&m).len() == 4);
    let log = once(&s);
    assert_eq!(completions(&m).len(), 4, "kanagawa's new application waits: {log}");
    assert_eq!(states(&s), [(imap.clone(), "refused".to_string()), (smtp.clone(), "authorized".to_string())]);
    assert!(!log.contains("oauth_refresh_refused"), "said once, not at every pass: {log}");
    let out = s.run(&["digest"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    once(&s);
    wait_for("the digest", Duration::from_secs(10), || !server_mails(&m.maildir(STAFF)).is_empty());
    let digest = server_mails(&m.maildir(STAFF)).into_iter().map(|(_, m)| m.body).find(|b| b.contains("esurety mailbox authorize")).expect("the digest says what to run");
    assert!(digest.contains(&format!("imap:{KANAGAWA}")) && digest.contains("invalid_grant"), "{digest}");

    // On the desk: the branch's staff see what to run; another branch's do not.
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n");
    add_user(&s, "佐藤", &["branch:kanagawa@ejcs.example"]);
    add_user(&s, "茨城太郎", &["branch:ibaraki@ejcs.example"]);
    let web = Serving::start(&s, &["serve"]);
    let page = login(&web.url, "佐藤").get("/desk/").1;
    assert!(page.contains("id=\"mail-refused\"") && page.contains(&format!("esurety mailbox authorize {KANAGAWA}")), "{page}");
    assert!(!login(&web.url, "茨城太郎").get("/desk/").1.contains("mail-refused"), "not another branch's mailbox");
    {
        let _one = crate::browser::ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let b = crate::browser::Browser::start();
        b.go(&format!("{}/desk/", web.url));
        b.type_into("#name", "佐藤");
        b.type_into("#password", PASSWORD);
        b.click("#login");
        assert!(b.wait_text("#mail-refused", "認可").contains(&format!("esurety mailbox authorize {KANAGAWA}")));
        assert!(!b.overflows());
        b.screenshot("desk-oauth-refused");
    }
    drop(web);

    // Authorized again: what waited is processed.
    authorize(&s, &idp, &[KANAGAWA], KANAGAWA);
    assert_eq!(states(&s)[0], (imap, "authorized".to_string()));
    let log = once(&s);
    assert!(said(&log, "imap_oauth_login", "XOAUTH2"), "XOAUTH2 first, where the server offers both: {log}");
    wait_for("the waiting application's notice", Duration::from_secs(10), || completions(&m).len() == 5);

    // A server that offers only OAUTHBEARER (RFC 7628) is logged in to with it.
    let conf = m.dir.path().join("dovecot/dovecot.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("auth_mechanisms = plain login xoauth2 oauthbearer"));
    std::fs::write(&conf, text.replace("auth_mechanisms = plain login xoauth2 oauthbearer", "auth_mechanisms = plain login oauthbearer")).unwrap();
    m.restart_imap();
    m.send(MARUICHI, &[KANAGAWA], &application(4));
    wait_for("delivery", Duration::from_secs(10), || server_mails(&m.maildir(KANAGAWA)).len() == 6);
    let log = once(&s);
    assert!(said(&log, "imap_oauth_login", "OAUTHBEARER"), "{log}");
    wait_for("the sixth notice", Duration::from_secs(10), || completions(&m).len() == 6);
}
