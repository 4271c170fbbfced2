//! The staff desk on the web (`desk.md`), against `esurety serve` on loopback: logins and
//! roles over plain HTTP (every route for every role), CSRF and origin checks, the login
//! lockout, logout, mail shown as text; and the staff's day in a real Chromium (see
//! `browser.rs`): a branch user releases, rejects, prints and retries, an owner user
//! settles an unchecked submission, and the action log names them.

use crate::browser::Browser;
use crate::common::{Setup, parse_mail, pdf_text};
use crate::registry_service::{Serving, http};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const NAGANO: &str = "nagano@ejcs.example";
const KWSA: &str = "keiyaku@kwsa.example";
const MARUICHI: &str = "soumu@maruichi.example";
const STRANGER: &str = "x@stranger.example";
pub(crate) const PASSWORD: &str = "correct horse battery";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

fn application(from: &str, mid: &str, edit: impl Fn(String) -> String) -> Vec<u8> {
    let body = edit(parse_mail(&fixture("valid/001.eml")).body);
    format!("From: {from}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

pub(crate) fn add_user(s: &Setup, name: &str, roles: &[&str]) {
    let mut args = vec!["user", "add", name, "--password-stdin"];
    for r in roles {
        args.extend(["--role", r]);
    }
    let mut child = s.cmd().args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A combined deployment serving [web], with: two held mails at Kanagawa (an application
/// from a stranger naming 丸一建設, and a mail whose subject and body carry markup), a
/// paper certificate at Nagano, a completion mail given up on (its relay broken for ten
/// days), a West Japan notice at the water authority (unchecked); and users.
fn desk() -> Setup {
    let s = Setup::new();
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n");
    s.drop_mail(KANAGAWA, &application(STRANGER, "held-1@stranger.example", |b| b));
    s.drop_mail(KANAGAWA, "From: x@stranger.example\r\nTo: kanagawa@ejcs.example\r\nSubject: <script>alert('held')</script> #set page(width: 1pt)\r\nMessage-ID: <held-2@stranger.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n<b>bold?</b> <img src=x onerror=alert(2)> #let x = 1\r\n".as_bytes());
    s.drop_mail(NAGANO, esurety::demo::SAMPLES[3].2);
    s.drop_mail(KANAGAWA, &application(MARUICHI, "fail-1@maruichi.example", |b| b.replace("メールアドレス：soumu@maruichi.example", "メールアドレス：genba@partner.example")));
    s.drop_mail(KWSA, &esurety::demo::contractor::other_surety(MARUICHI, KWSA));
    let relay = s.dir.join("mailboxes/relay");
    std::fs::remove_dir_all(&relay).unwrap();
    std::fs::write(&relay, b"not a Maildir").unwrap();
    for day in 4..=14 {
        let out = s.cmd().env("ESURETY_TEST_NOW", format!("2026-07-{day:02}T10:00:00+09:00")).args(["run", "--once"]).output().unwrap();
        assert!(out.status.success());
    }
    std::fs::remove_file(&relay).unwrap();
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(relay.join(sub)).unwrap();
    }
    add_user(&s, "佐藤", &["branch:kanagawa@ejcs.example"]);
    add_user(&s, "長野太郎", &["branch:nagano@ejcs.example"]);
    add_user(&s, "田中", &["owner:keiyaku@kwsa.example"]);
    add_user(&s, "管理者", &["admin"]);
    s
}

fn held_ids(s: &Setup) -> Vec<i64> {
    s.json(&["staff", "held"]).as_array().unwrap().iter().map(|h| h["id"].as_i64().unwrap()).collect()
}

/// An HTTP session of the desk: its cookie and CSRF token.
pub(crate) struct Login {
    base: String,
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

fn set_cookie(headers: &[(String, String)], name: &str) -> Option<String> {
    headers.iter().filter(|(k, _)| k == "set-cookie").filter_map(|(_, v)| v.split(';').next()).find(|c| c.starts_with(&format!("{name}="))).map(str::to_string)
}

fn form_csrf(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf\" value=\"")?;
    Some(html[i + 19..].split('"').next()?.to_string())
}

fn try_login(base: &str, name: &str, password: &str) -> (u16, Vec<(String, String)>, String) {
    let (_, headers, body) = http(base, "GET", "/desk/login", &[], b"");
    let login_cookie = set_cookie(&headers, "esurety_login").unwrap();
    let csrf = form_csrf(&String::from_utf8_lossy(&body)).unwrap();
    let form = format!("name={}&password={}&csrf={csrf}", enc(name), enc(password));
    let (st, h, b) = http(base, "POST", "/desk/login", &[("Cookie", &login_cookie), ("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
    (st, h, String::from_utf8_lossy(&b).into_owned())
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn login(base: &str, name: &str) -> Login {
    let (st, headers, body) = try_login(base, name, PASSWORD);
    assert_eq!(st, 303, "{name} logs in: {body}");
    let cookie = set_cookie(&headers, "esurety_desk").unwrap();
    let (_, _, page) = http(base, "GET", "/desk/", &[("Cookie", &cookie)], b"");
    let csrf = form_csrf(&String::from_utf8_lossy(&page)).expect("the logout form carries the token");
    Login { base: base.to_string(), cookie, csrf }
}

impl Login {
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let (st, _, b) = http(&self.base, "GET", path, &[("Cookie", &self.cookie)], b"");
        (st, String::from_utf8_lossy(&b).into_owned())
    }

    pub(crate) fn post(&self, path: &str, form: &str) -> u16 {
        http(&self.base, "POST", path, &[("Cookie", &self.cookie), ("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes()).0
    }
}

#[test]
fn each_role_reaches_only_its_own_pages_and_actions() {
    let s = desk();
    let registry = Serving::start(&s, &["serve"]);
    let base = registry.url.clone();
    let held = held_ids(&s);
    let kanagawa_held = held[0];
    let paper = s.json(&["staff", "paper"]);
    let paper_number = paper[0]["number"].as_str().unwrap().to_string();
    assert!(paper_number.starts_with("20075"), "Nagano's paper certificate: {paper}");
    let subs = s.json(&["submissions"]);
    let unchecked = subs.as_array().unwrap().iter().find(|r| r["result"] == "unchecked").unwrap()["id"].as_i64().unwrap();
    let k = login(&base, "佐藤");
    let n = login(&base, "長野太郎");
    let w = login(&base, "田中");
    let a = login(&base, "管理者");
    // (path, 佐藤 Kanagawa, 長野太郎 Nagano, 田中 water authority, admin)
    let held_one = format!("/desk/held/{kanagawa_held}");
    let paper_pdf = format!("/desk/certificates/{paper_number}/certificate.pdf");
    let table: Vec<(&str, [u16; 4])> = vec![
        ("/desk/", [200, 200, 200, 200]),
        ("/desk/held", [200, 200, 403, 200]),
        (&held_one, [200, 404, 403, 200]),
        ("/desk/paper", [200, 200, 403, 200]),
        ("/desk/failed", [200, 200, 403, 200]),
        ("/desk/certificates", [200, 200, 403, 200]),
        ("/desk/certificates/35075-00001M", [200, 404, 403, 200]),
        ("/desk/certificates/35075-00001M/notice.pdf", [200, 403, 403, 200]),
        (&paper_pdf, [403, 200, 403, 200]),
        ("/desk/submissions", [403, 403, 200, 200]),
        ("/desk/actions", [200, 200, 200, 200]),
        ("/desk/admin/users", [403, 403, 403, 200]),
        ("/desk/admin/tokens", [403, 403, 403, 200]),
    ];
    for (path, expected) in &table {
        for (who, want) in [&k, &n, &w, &a].iter().zip(expected) {
            let (st, _) = who.get(path);
            assert_eq!(st, *want, "GET {path} as {}", ["佐藤", "長野太郎", "田中", "管理者"][[&k, &n, &w, &a].iter().position(|x| std::ptr::eq(*x, *who)).unwrap()]);
        }
        let (st, headers, _) = http(&base, "GET", path, &[], b"");
        assert_eq!(st, 303, "GET {path} without a session");
        assert!(headers.iter().any(|(k, v)| k == "location" && v == "/desk/login"));
    }
    // Lists show only the user's own: Nagano's list has not Kanagawa's held mail.
    assert!(!n.get("/desk/held").1.contains(&format!("/desk/held/{kanagawa_held}\"")));
    assert!(k.get("/desk/held").1.contains(&format!("/desk/held/{kanagawa_held}\"")));
    assert!(!k.get("/desk/certificates").1.contains("20075-"), "Kanagawa does not find Nagano's certificates");
    // Actions out of scope, with a valid token: refused, and nothing happens.
    assert!([403, 404].contains(&n.post(&format!("/desk/held/{kanagawa_held}/release"), &format!("csrf={}", n.csrf))));
    assert!([403, 404].contains(&n.post(&format!("/desk/held/{kanagawa_held}/reject"), &format!("csrf={}&reason=x", n.csrf))));
    assert_eq!(k.post(&format!("/desk/paper/{paper_number}/printed"), &format!("csrf={}", k.csrf)), 403);
    assert_eq!(k.post(&format!("/desk/submissions/{unchecked}/settle"), &format!("csrf={}&result=accepted&note=x", k.csrf)), 403);
    assert_eq!(n.post("/desk/certificates/35075-00001M/resend", &format!("csrf={}", n.csrf)), 403);
    assert_eq!(k.post("/desk/admin/tokens", &format!("csrf={}&name=x", k.csrf)), 403, "only the admin makes tokens");
    assert_eq!(w.post("/desk/admin/users", &format!("csrf={}&name=x&roles=admin&password={PASSWORD}&again={PASSWORD}", w.csrf).replace(' ', "+")), 403, "only the admin adds users");
    let failed_mid = s.json(&["staff", "failed"])[0]["message_id"].as_str().unwrap().to_string();
    assert_eq!(w.post("/desk/failed/retry", &format!("csrf={}&message_id={}", w.csrf, enc(&failed_mid))), 403);
    assert_eq!(n.post("/desk/failed/retry", &format!("csrf={}&message_id={}", n.csrf, enc(&failed_mid))), 403, "Kanagawa's failed mail");
    assert_eq!(held_ids(&s), held, "nothing released or rejected");
    assert_eq!(s.json(&["staff", "paper"]).as_array().unwrap().len(), 1);
    // Nothing was done; only the key notices taken (by the two who may) are recorded.
    let actions = s.json(&["staff", "actions"]);
    let did: Vec<(&str, &str)> = actions.as_array().unwrap().iter().map(|x| (x["action"].as_str().unwrap(), x["by"].as_str().unwrap())).collect();
    assert_eq!(did, [("notice_download", "佐藤"), ("notice_download", "管理者")], "no action happened");
}

#[test]
fn changing_requests_need_the_session_token_and_the_same_origin() {
    let s = desk();
    let registry = Serving::start(&s, &["serve"]);
    let k = login(&registry.url, "佐藤");
    let id = held_ids(&s)[0];
    let path = format!("/desk/held/{id}/release");
    assert_eq!(k.post(&path, ""), 403, "no token");
    assert_eq!(k.post(&path, "csrf=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), 403, "a wrong token");
    let (st, _, _) = http(&k.base, "POST", &path, &[("Cookie", &k.cookie), ("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "https://evil.example")], format!("csrf={}", k.csrf).as_bytes());
    assert_eq!(st, 403, "another origin, even with the token");
    assert_eq!(held_ids(&s)[0], id, "still held");
    // The right token from our own page: done.
    assert_eq!(k.post(&path, &format!("csrf={}", k.csrf)), 303);
    assert!(!held_ids(&s).contains(&id));
    // The token of another session does not work for this one.
    let other = login(&registry.url, "佐藤");
    assert_ne!(other.csrf, k.csrf, "each session has its own token");
    let next = held_ids(&s)[0];
    assert_eq!(k.post(&format!("/desk/held/{next}/reject"), &format!("csrf={}&reason=x", other.csrf)), 403);
}

#[test]
fn logins_are_limited_logout_ends_the_session_and_mail_shows_as_text() {
    let s = desk();
    let registry = Serving::start(&s, &["serve"]);
    let base = registry.url.clone();
    let (st, _, unknown) = try_login(&base, "だれか", PASSWORD);
    let (st2, _, wrong) = try_login(&base, "佐藤", "not the password at all");
    assert_eq!((st, st2), (200, 200));
    let msg = |b: &str| b.split("id=\"message\">").nth(1).and_then(|r| r.split('<').next()).unwrap_or("").to_string();
    assert_eq!(msg(&unknown), msg(&wrong), "unknown user and wrong password: one message");
    assert!(msg(&wrong).contains("正しくありません"));
    for _ in 0..4 {
        try_login(&base, "佐藤", "not the password at all");
    }
    let (st, _, body) = try_login(&base, "佐藤", PASSWORD);
    assert_eq!(st, 429, "locked after 5 failures, even with the right password: {}", msg(&body));
    // Another user from the same address is not locked (the address allows 20).
    let k = login(&base, "長野太郎");
    assert_eq!(k.get("/desk/").0, 200);
    assert_eq!(k.post("/desk/logout", &format!("csrf={}", k.csrf)), 303);
    assert_eq!(k.get("/desk/").0, 303, "the old cookie no longer works");

    // A held mail with markup: text on the page, never HTML.
    let a = login(&base, "管理者");
    let id = held_ids(&s)[1];
    let (st, page) = a.get(&format!("/desk/held/{id}"));
    assert_eq!(st, 200);
    assert!(page.contains("&lt;script&gt;alert(") && !page.contains("<script>alert"), "subject escaped");
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;") && !page.contains("<img src=x"), "body escaped");
    assert!(page.contains("#set page(width: 1pt)") && page.contains("#let x = 1"), "Typst markup shown as it is");
    // Sessions and passwords are not in the store in clear.
    let cookie_id = a.cookie.split('=').nth(1).unwrap();
    assert_eq!(s.db().find(cookie_id), Vec::<String>::new(), "no session id in the store");
    assert_eq!(s.db().find(PASSWORD), Vec::<String>::new(), "no password in the store");
    let users = s.json(&["user", "list"]);
    assert!(!users.to_string().contains("argon2"), "user list shows no hash");
    // Disabling a user ends their session and their logins.
    s.run_ok(&["user", "disable", "管理者"]);
    assert_eq!(a.get("/desk/").0, 303, "the disabled user's session ended");
    assert_eq!(try_login(&base, "管理者", PASSWORD).0, 200, "and they cannot log in");
    assert!(s.json(&["user", "list"]).as_array().unwrap().iter().any(|u| u["name"] == "管理者" && u["disabled"] == true));
}

#[test]
fn the_staff_do_their_day_in_a_real_browser() {
    let _one = crate::browser::ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let s = desk();
    let registry = Serving::start(&s, &["serve"]);
    let base = registry.url.clone();
    let held = held_ids(&s);
    let failed_before = s.json(&["staff", "failed"]).as_array().unwrap().len();
    assert_eq!(failed_before, 1);
    add_user(&s, "佐藤長野", &["branch:kanagawa@ejcs.example", "branch:nagano@ejcs.example"]);

    let b = Browser::start();
    b.go(&format!("{base}/desk/"));
    b.type_into("#name", "佐藤長野");
    b.type_into("#password", PASSWORD);
    b.screenshot("desk-login");
    b.click("#login");
    assert!(b.wait_text("#summary", "保留メール").contains("保留メール"));
    assert!(b.title().starts_with("(4)"), "what waits, in the title: {}", b.title());
    assert!(!b.overflows());
    b.screenshot("desk-index");
    // Held: release the application as 丸一建設.
    b.click("#nav-held");
    b.screenshot("desk-held");
    b.click(&format!("#open-{}", held[0]));
    assert_eq!(b.wait_text("#from", STRANGER), STRANGER);
    assert!(!b.overflows());
    b.screenshot("desk-held-one");
    b.click("#release");
    assert!(b.wait_text("#notice", "保留を解除しました").contains("保留を解除しました"));
    // Reject the other with a reason.
    b.click(&format!("#open-{}", held[1]));
    assert!(b.wait_text("#subject", "<script>alert('held')</script>").contains("<script>alert('held')</script>"), "shown as text");
    assert!(!b.alert_open());
    b.type_into("#reason", "申込書が添付されていません。");
    b.click("#reject");
    assert!(b.wait_text("#notice", "理由をメールで返信しました").contains("理由をメールで返信しました"));
    // Paper: the PDF link, then printed.
    b.click("#nav-paper");
    b.screenshot("desk-paper");
    let paper = s.json(&["staff", "paper"]);
    let number = paper[0]["number"].as_str().unwrap().to_string();
    let cookie = b.cookie("esurety_desk");
    let (st, headers, pdf) = http(&base, "GET", &format!("/desk/certificates/{number}/certificate.pdf"), &[("Cookie", &format!("esurety_desk={cookie}"))], b"");
    assert_eq!(st, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/pdf"));
    assert!(pdf_text(&pdf).contains(&number));
    b.click(&format!("#printed-{number}"));
    assert!(b.wait_text("#notice", "印刷済み").contains("印刷済み"));
    // Failed mail: retry.
    b.click("#nav-failed");
    b.screenshot("desk-failed");
    b.click("#retry-1");
    assert!(b.wait_text("#notice", "送信をやり直します").contains("送信をやり直します"));
    // Certificates: search and a certificate's page.
    b.click("#nav-certificates");
    b.type_into("#q", "浄水場");
    b.click("#search");
    assert!(b.wait_text("#certificates", "35075-0000").contains("35075-0000"));
    b.screenshot("desk-certificates");
    b.go(&format!("{base}/desk/certificates/35075-00001M"));
    assert!(b.wait_text("#versions", "新規").contains("新規"));
    b.screenshot("desk-certificate");
    b.click("#logout");
    b.find("#login");

    // The owner's contract staff settle the West Japan notice by hand.
    b.type_into("#name", "田中");
    b.type_into("#password", PASSWORD);
    b.click("#login");
    b.click("#nav-submissions");
    let subs = s.json(&["submissions"]);
    let id = subs.as_array().unwrap().iter().find(|r| r["result"] == "unchecked").unwrap()["id"].as_i64().unwrap();
    b.screenshot("desk-submissions");
    b.click(&format!("#accept-{id}"));
    b.type_into(&format!("#note-{id}"), "西日本建設業保証の確認サービスで確認済み");
    b.click(&format!("#settle-{id}"));
    assert!(b.wait_text("#notice", "確認結果を登録しました").contains("確認結果を登録しました"));
    b.click("#nav-actions");
    let log = b.wait_text("#actions", "田中");
    assert!(log.contains("田中") && log.contains("担当者確認：受付"), "{log}");
    assert!(!log.contains("佐藤長野"), "the owner's staff do not see the branch's actions");
    b.screenshot("desk-actions");
    b.click("#logout");
    // The admin makes a token for an owner's system: shown once.
    b.type_into("#name", "管理者");
    b.type_into("#password", PASSWORD);
    b.click("#login");
    b.click("#nav-tokens");
    b.type_into("#token-name", "神奈川県内広域水道企業団 契約システム");
    b.click("#add-token");
    assert!(b.wait_text("#token", "esr_").starts_with("esr_"));
    assert!(!b.overflows());
    b.screenshot("desk-tokens");
    b.click("#nav-users");
    b.wait_text("#users", "田中");
    b.screenshot("desk-users");
    b.close();

    // What the actions did, seen from the command line and the mailboxes.
    let actions = s.json(&["staff", "actions"]);
    let did: Vec<(String, String)> = actions.as_array().unwrap().iter().map(|a| (a["by"].as_str().unwrap().to_string(), a["action"].as_str().unwrap().to_string())).collect();
    for (by, what) in [("佐藤長野", "release"), ("佐藤長野", "reject"), ("佐藤長野", "printed"), ("佐藤長野", "retry"), ("田中", "settle_accepted")] {
        assert!(did.contains(&(by.to_string(), what.to_string())), "{by} {what} in {did:?}");
    }
    let subs = s.json(&["submissions"]);
    let settled = subs.as_array().unwrap().iter().find(|r| r["id"] == id).unwrap();
    assert_eq!((settled["result"].as_str(), settled["settled_by"].as_str()), (Some("accepted"), Some("田中")));
    s.once();
    let done: Vec<_> = s.mails(MARUICHI).into_iter().filter(|m| m.subject.starts_with("電子保証（認証キー）発行完了のお知らせ")).collect();
    assert!(done.iter().any(|m| m.body.contains("○○浄水場△△修繕工事")), "the released application got its certificates");
    let relay = crate::common::mails_in(&s.maildir("relay"));
    assert!(relay.iter().any(|m| m.to.contains(&STRANGER.to_string()) && m.body.contains("申込書が添付されていません")), "the rejection was mailed");
    assert!(relay.iter().any(|m| m.to.contains(&"genba@partner.example".to_string())), "the retried mail reached who lacked it");
    assert!(s.json(&["staff", "failed"]).as_array().unwrap().is_empty());
    let _: Value = s.json(&["user", "list"]);
}

#[test]
fn the_admin_adds_users_and_makes_and_revokes_tokens_on_the_desk() {
    let s = desk();
    let registry = Serving::start(&s, &["serve"]);
    let base = registry.url.clone();
    let a = login(&base, "管理者");
    // A user with a password too short, or two passwords that differ, is not added.
    let form = |pw: &str, again: &str| format!("csrf={}&name={}&roles={}&password={}&again={}", a.csrf, enc("鈴木"), enc("branch:nagano@ejcs.example"), enc(pw), enc(again));
    assert_eq!(a.post("/desk/admin/users", &form("short", "short")), 200);
    assert_eq!(a.post("/desk/admin/users", &form(PASSWORD, "something else entirely")), 200);
    assert!(!s.json(&["user", "list"]).to_string().contains("鈴木"));
    assert_eq!(a.post("/desk/admin/users", &form(PASSWORD, PASSWORD)), 303);
    let new = login(&base, "鈴木");
    assert_eq!(new.get("/desk/held").0, 200);
    assert_eq!(new.get("/desk/admin/users").0, 403);
    // A token, shown once on the page that made it, works in the API; revoked, it does not.
    let (st, _, _) = http(&base, "POST", "/desk/admin/tokens", &[("Cookie", &a.cookie), ("Content-Type", "application/x-www-form-urlencoded")], format!("csrf={}&name={}", a.csrf, enc("三島市 契約システム")).as_bytes());
    assert_eq!(st, 303, "made, then shown on the page it redirects to (a reload makes no second token)");
    let (_, page) = a.get("/desk/admin/tokens");
    let token = page.split("id=\"token\">").nth(1).and_then(|r| r.split('<').next()).unwrap().to_string();
    assert!(token.starts_with("esr_"), "{token}");
    assert!(!a.get("/desk/admin/tokens").1.contains(&token), "shown only once");
    // The admin cannot disable themselves (nor the last admin).
    let me = s.json(&["user", "list"]).as_array().unwrap().iter().find(|u| u["name"] == "管理者").unwrap()["id"].as_i64().unwrap();
    assert_eq!(a.post(&format!("/desk/admin/users/{me}/disable"), &format!("csrf={}", a.csrf)), 409);
    let ask = |t: &str| http(&base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {t}")), ("Content-Type", "application/json")], br#"{"number":"35075-00001M","key":"CDEF34679HJK"}"#).0;
    assert_eq!(ask(&token), 200);
    let id = s.json(&["token", "list"]).as_array().unwrap().iter().find(|t| t["name"] == "三島市 契約システム").unwrap()["id"].as_i64().unwrap();
    assert_eq!(a.post(&format!("/desk/admin/tokens/{id}/revoke"), &format!("csrf={}", a.csrf)), 303);
    assert_eq!(ask(&token), 401);
    let did: Vec<String> = s.json(&["staff", "actions"]).as_array().unwrap().iter().filter(|x| x["by"] == "管理者").map(|x| x["action"].as_str().unwrap().to_string()).collect();
    assert_eq!(did, ["user_add", "token_add", "token_revoke"]);
}

#[test]
fn many_logins_at_once_do_not_get_past_the_limit_and_the_cookie_is_secure_behind_a_tls_proxy() {
    let s = desk();
    s.edit_config(|t| t.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:0\"\npublic_url = \"https://desk.ejcs.example\""));
    let registry = Serving::start(&s, &["serve"]);
    let base = registry.url.clone();
    // 20 wrong passwords for one user at the same moment: at most 5 are even checked.
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..20).map(|_| scope.spawn(|| try_login(&base, "佐藤", "a wrong password, guessed").0)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = answers.iter().filter(|&&st| st == 200).count();
    assert!(checked <= 5, "{checked} checked: {answers:?}");
    assert!(answers.iter().all(|&st| st == 200 || st == 429), "{answers:?}");
    // Behind a TLS proxy (public_url https), the session cookie is Secure; a POST whose
    // Origin is not public_url's is refused.
    let (st, headers, _) = try_login(&base, "田中", PASSWORD);
    assert_eq!(st, 303);
    let cookie = headers.iter().find(|(k, v)| k == "set-cookie" && v.starts_with("esurety_desk=")).unwrap().1.clone();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let (_, _, page) = http(&base, "GET", "/desk/", &[("Cookie", &session)], b"");
    let csrf = form_csrf(&String::from_utf8_lossy(&page)).unwrap();
    let post = |origin: &str| http(&base, "POST", "/desk/logout", &[("Cookie", &session), ("Origin", origin), ("Content-Type", "application/x-www-form-urlencoded")], format!("csrf={csrf}").as_bytes()).0;
    assert_eq!(post(&base), 403, "the Host's origin is not the public one");
    assert_eq!(post("https://desk.ejcs.example"), 303);
}

/// Two owner staff settle the same unchecked submission at the same moment, on two web
/// servers of one store: one settles it, the other is told someone else did, and the log
/// holds one action. On PostgreSQL the test holds the submission's row until both
/// requests wait on it, so both have read it as unchecked before either writes (the race
/// a check-then-write loses); on SQLite each write takes the file's lock in turn.
#[test]
fn two_staff_settling_one_submission_on_two_servers_settle_it_once() {
    let s = desk();
    let servers = [Serving::start(&s, &["serve"]), Serving::start(&s, &["serve"])];
    let id = s.db().count("SELECT id FROM submissions WHERE result = 'unchecked'");
    let sessions: Vec<Login> = servers.iter().map(|x| login(&x.url, "田中")).collect();
    let mut hold = s.db();
    let pg = matches!(hold, crate::pg::Db::Pg(_));
    if pg {
        hold.execute(&format!("BEGIN; SELECT id FROM submissions WHERE id = {id} FOR UPDATE"));
    }
    let start = std::sync::Barrier::new(2);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let hs: Vec<_> = sessions.iter().enumerate().map(|(i, a)| {
            let start = &start;
            scope.spawn(move || {
                start.wait();
                let result = ["accepted", "rejected"][i];
                let form = format!("csrf={}&result={result}&note={}", a.csrf, enc(&format!("担当者{i}が確認")));
                let (st, _, body) = http(&a.base, "POST", &format!("/desk/submissions/{id}/settle"), &[("Cookie", &a.cookie), ("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
                (st, String::from_utf8_lossy(&body).into_owned())
            })
        }).collect();
        if pg {
            // Both settle requests wait on the held row; then it is let go.
            let_go_once_both_wait(&s, &mut hold, "the two requests never both waited on the submission");
        }
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|(st, _)| *st).collect();
    statuses.sort();
    assert_eq!(statuses, [303, 409], "one settles it, the other is refused: {answers:?}");
    let refused = &answers.iter().find(|(st, _)| *st == 409).unwrap().1;
    assert!(refused.contains("ほかの担当者がすでに処理しました") && refused.contains("田中"), "{refused}");
    let settles: Vec<Value> = s.json(&["staff", "actions"]).as_array().unwrap().iter().filter(|x| x["action"].as_str().unwrap().starts_with("settle_")).cloned().collect();
    assert_eq!(settles.len(), 1, "one action recorded: {settles:?}");
    for x in servers {
        assert!(x.stop().success());
    }
}

/// A token made on one web server is shown on the page its form redirects to even when
/// that page is served by another server of the same store (behind a load balancer), and
/// shown once; the store holds it only sealed, and not after it was shown.
#[test]
fn a_new_token_made_on_one_server_is_shown_once_by_another() {
    let s = desk();
    let (a, b) = (Serving::start(&s, &["serve"]), Serving::start(&s, &["serve"]));
    let on_a = login(&a.url, "管理者");
    let (st, _, _) = http(&a.url, "POST", "/desk/admin/tokens", &[("Cookie", &on_a.cookie), ("Content-Type", "application/x-www-form-urlencoded")], format!("csrf={}&name={}", on_a.csrf, enc("三島市 契約システム")).as_bytes());
    assert_eq!(st, 303);
    let on_b = Login { base: b.url.clone(), cookie: on_a.cookie.clone(), csrf: on_a.csrf.clone() };
    let (st, page) = on_b.get("/desk/admin/tokens?done=token_made");
    assert_eq!(st, 200);
    let token = page.split("id=\"token\">").nth(1).and_then(|r| r.split('<').next()).unwrap_or_else(|| panic!("the new token on the other server's page: {page}")).to_string();
    assert!(token.starts_with("esr_"), "{token}");
    assert!(s.db().find(&token).is_empty(), "not in the store once shown");
    assert!(!on_a.get("/desk/admin/tokens").1.contains(&token) && !on_b.get("/desk/admin/tokens").1.contains(&token), "shown only once");
    let ask = http(&a.url, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], br#"{"number":"35075-00001M","key":"CDEF34679HJK"}"#).0;
    assert_eq!(ask, 200, "the token shown is the one made");
    for x in [a, b] {
        assert!(x.stop().success());
    }
}

/// Wrong passwords for one user on two web servers of one store: the limit (5 in 15
/// minutes) holds across them. After four, two more arrive at once, one at each server;
/// on PostgreSQL the test keeps the failures from being written until both have begun
/// (a lock on the table that lets them read, not add), so both would read four: the
/// sixth is not checked, because each counts and adds under the lock of the user's name.
#[test]
fn wrong_passwords_on_two_servers_at_once_do_not_get_past_the_limit() {
    let s = desk();
    let servers = [Serving::start(&s, &["serve"]), Serving::start(&s, &["serve"])];
    for i in 0..4 {
        assert_eq!(try_login(&servers[i % 2].url, "佐藤", "a wrong password, guessed").0, 200);
    }
    let mut hold = s.db();
    let pg = matches!(hold, crate::pg::Db::Pg(_));
    if pg {
        hold.execute("BEGIN; LOCK TABLE login_failures IN SHARE MODE");
    }
    let start = std::sync::Barrier::new(2);
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let hs: Vec<_> = servers.iter().map(|x| {
            let (start, url) = (&start, x.url.clone());
            scope.spawn(move || {
                // The form first (its CSRF cookie), then both POSTs at once.
                let (_, headers, body) = http(&url, "GET", "/desk/login", &[], b"");
                let cookie = set_cookie(&headers, "esurety_login").unwrap();
                let csrf = form_csrf(&String::from_utf8_lossy(&body)).unwrap();
                start.wait();
                let form = format!("name={}&password={}&csrf={csrf}", enc("佐藤"), enc("another wrong one"));
                http(&url, "POST", "/desk/login", &[("Cookie", &cookie), ("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes()).0
            })
        }).collect();
        if pg {
            let_go_once_both_wait(&s, &mut hold, "the two logins never both waited");
        }
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = answers.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 429], "the fifth failure is checked, the sixth is refused unchecked: {answers:?}");
    assert_eq!(s.db().count("SELECT count(*) FROM login_failures WHERE key = 'user:佐藤'"), 5);
    assert_eq!(try_login(&servers[0].url, "佐藤", PASSWORD).0, 429, "locked on either server, even with the right password");
    assert_eq!(try_login(&servers[1].url, "佐藤", PASSWORD).0, 429);
    for x in servers {
        assert!(x.stop().success());
    }
}

/// While one desk request typesets a PDF (held there by the test for as long as it
/// likes), the rest of the desk answers: another user logs in and opens pages, the first
/// opens the actions page. They complete while the PDF is still in flight.
#[test]
fn a_pdf_being_typeset_does_not_hold_up_logins_and_pages() {
    let s = desk();
    let pause = s.dir.join("pause");
    std::fs::create_dir_all(&pause).unwrap();
    s.env.borrow_mut().push(("ESURETY_PAUSE_AT".into(), "desk_typesetting".into()));
    s.env.borrow_mut().push(("ESURETY_PAUSE_FILE".into(), pause.join("go").display().to_string()));
    let server = Serving::start(&s, &["serve"]);
    let sato = login(&server.url, "佐藤");
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| http(&sato.base, "GET", "/desk/certificates/35075-00001M/certificate.pdf", &[("Cookie", &sato.cookie)], b""));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !pause.join("go.reached").exists() {
            assert!(std::time::Instant::now() < deadline && !slow.is_finished(), "the PDF never reached its typesetting");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        scope.spawn(|| {
            let tx = tx;
            let nagano = login(&server.url, "長野太郎");
            let pages = [nagano.get("/desk/paper").0, sato.get("/desk/actions").0, sato.get("/desk/").0];
            let _ = tx.send(pages);
        });
        // Only a deadline to end the test if they wait (they must not): the order is what
        // is asserted.
        let meanwhile = rx.recv_timeout(std::time::Duration::from_secs(20));
        let still_typesetting = !slow.is_finished();
        std::fs::write(pause.join("go"), b"").unwrap();
        let (st, _, pdf) = slow.join().unwrap();
        assert_eq!(st, 200);
        assert!(pdf.starts_with(b"%PDF"));
        assert!(still_typesetting, "the PDF was still being typeset meanwhile");
        assert_eq!(meanwhile, Ok([200, 200, 200]), "a login and three pages answered while a PDF was being typeset");
    });
    assert!(server.stop().success());
}

/// The actions page reads a page of the log, not all of it: 100 a page, newest first,
/// with a link to older ones, and every action the user may see is on exactly one page.
#[test]
fn the_actions_page_shows_the_log_a_page_at_a_time() {
    let s = desk();
    let mut db = s.db();
    // 250 printings at Kanagawa (佐藤's), between them 250 at an office that is not his.
    for i in 0..250 {
        db.execute(&format!("INSERT INTO staff_actions (at, by, action, target, detail) VALUES ('2026-07-15T10:00:00+09:00', '佐藤', 'printed', '35075-{i:05}M', NULL), ('2026-07-15T10:00:00+09:00', '他支店', 'printed', '99999-{i:05}M', NULL)"));
    }
    let server = Serving::start(&s, &["serve"]);
    let sato = login(&server.url, "佐藤");
    let (mut seen, mut pages, mut path) = (Vec::new(), 0, "/desk/actions".to_string());
    loop {
        let (st, page) = sato.get(&path);
        assert_eq!(st, 200);
        pages += 1;
        let here: Vec<String> = page.split("<td>35075-").skip(1).map(|r| r.split('<').next().unwrap().to_string()).collect();
        assert!(here.len() <= 100, "{} on one page", here.len());
        assert!(!page.contains("99999-"), "another office's actions are not shown");
        seen.extend(here);
        match page.split("href=\"/desk/actions?before=").nth(1) {
            Some(rest) => path = format!("/desk/actions?before={}", rest.split('"').next().unwrap()),
            None => break,
        }
        assert!(pages < 10, "the pages end");
    }
    let printed: Vec<&String> = seen.iter().filter(|n| n.ends_with('M') && n.len() == 6).collect();
    let mut unique = printed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((printed.len(), unique.len()), (250, 250), "each of 佐藤's 250 on one page");
    assert!(pages >= 3);
    assert!(server.stop().success());
}

/// The key notice carries the 認証キー in clear: taking it from the desk is recorded (who,
/// when, which certificate), in `esurety staff actions` and on the desk's actions page
/// (for those who may see the certificate); the certificate's PDF is not.
#[test]
fn taking_a_key_notice_from_the_desk_is_recorded() {
    let s = desk();
    let server = Serving::start(&s, &["serve"]);
    let sato = login(&server.url, "佐藤");
    let (st, _, pdf) = http(&server.url, "GET", "/desk/certificates/35075-00001M/notice.pdf", &[("Cookie", &sato.cookie)], b"");
    assert_eq!(st, 200);
    assert!(crate::common::key_in(&pdf_text(&pdf)).is_some(), "the notice with its key");
    assert_eq!(http(&server.url, "GET", "/desk/certificates/35075-00001M/certificate.pdf", &[("Cookie", &sato.cookie)], b"").0, 200);
    let taken: Vec<Value> = s.json(&["staff", "actions"]).as_array().unwrap().iter().filter(|x| x["action"] == "notice_download").cloned().collect();
    assert_eq!(taken.len(), 1, "the notice taken once, the certificate not recorded: {taken:?}");
    assert_eq!((taken[0]["by"].as_str(), taken[0]["target"].as_str(), taken[0]["detail"].as_str()), (Some("佐藤"), Some("35075-00001M"), Some("version 1")));
    assert!(taken[0]["at"].as_str().is_some_and(|t| t.starts_with("2026-")));
    let page = sato.get("/desk/actions").1;
    assert!(page.contains("認証キー通知書の取得") && page.contains("35075-00001M"), "{page}");
    let nagano = login(&server.url, "長野太郎");
    assert!(!nagano.get("/desk/actions").1.contains("認証キー通知書の取得"), "not shown to another branch");
    assert!(server.stop().success());
}

/// On PostgreSQL: waits until two sessions of the store wait on a lock that `hold`'s open
/// transaction has, then commits it, so both requests meet at the same moment.
fn let_go_once_both_wait(s: &Setup, hold: &mut crate::pg::Db, never: &str) {
    let mut watch = s.db();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while watch.count("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()") < 2 {
        assert!(std::time::Instant::now() < deadline, "{never}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    hold.execute("COMMIT");
}
