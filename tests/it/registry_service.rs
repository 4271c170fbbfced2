//! The registry as a service (`registry-service.md`), across real processes on loopback:
//! the surety company's deployment serving its registry (`esurety run` or `serve`), and a
//! water authority's own deployment (`init --side owner`) with its own store, checking
//! submissions through it over HTTP with a token from `token add`.

use crate::common::{Setup, key_in, pdf_text};
use crate::support;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KWSA: &str = "keiyaku@kwsa.example";
const MARUICHI: &str = "soumu@maruichi.example";
const TORIDE_KOGYO: &str = "info@toride-kogyo.example";

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

/// A process of the binary that serves `[web]`; killed (SIGTERM, then waited) on drop.
pub struct Serving {
    child: Child,
    pub url: String,
    #[allow(dead_code)]
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serving {
    /// Starts `esurety ARGS` on `s` and waits for its `listening on URL` line.
    pub fn start(s: &Setup, args: &[&str]) -> Serving {
        let mut child = s.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_string());
                }
                keep.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("no `listening on` from esurety {args:?}: {}", log.lock().unwrap()));
        Serving { child, url, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGTERM and wait: the process's clean stop.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let status = terminate(&mut self.child);
        std::mem::forget(self);
        status
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`): status, headers
/// (lower-case names), body.
pub fn http(base: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let authority = base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(authority).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    c.write_all(req.as_bytes()).unwrap();
    // A server may answer before it has read a large body and close: that is an answer.
    let _ = c.write_all(body);
    // Read the head, then exactly the body it announces (a server may keep the
    // connection open whatever we asked).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = c.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "no HTTP answer: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let mut body = raw[split + 4..].to_vec();
    let length = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    loop {
        let done = match length {
            Some(l) => body.len() >= l,
            None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else { return out };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

fn verify_json(base: &str, token: &str, number: &str, key: &str) -> (u16, Value) {
    let body = json!({"number": number, "key": key}).to_string();
    let (status, _, body) = http(base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], body.as_bytes());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The company's deployment with 35075-00001M/00002K (water authority, 丸一建設) and
/// 08075-00001M (取手市, 取手興業) issued, and a token for the water authority.
pub fn company() -> (Setup, String) {
    let s = Setup::init(&["--side", "branch", "--listen", "127.0.0.1:0"]);
    s.drop_mail("kanagawa@ejcs.example", &fixture("valid/001.eml"));
    s.drop_mail("ibaraki@ejcs.example", &fixture("valid/002.eml"));
    s.once();
    let token = s.run_ok(&["token", "add", "--name", "神奈川県内広域水道企業団"]).trim().to_string();
    assert!(token.starts_with("esr_"), "{token}");
    (s, token)
}

pub fn owner(registry_url: &str, token: &str) -> Setup {
    let o = Setup::init(&["--side", "owner", "--registry-url", registry_url]);
    o.env.borrow_mut().push(("ESURETY_REGISTRY_TOKEN".into(), token.to_string()));
    o
}

fn submissions(o: &Setup) -> Vec<Value> {
    o.json(&["submissions"]).as_array().unwrap().clone()
}

fn result_of<'a>(subs: &'a [Value], number: &str) -> &'a Value {
    subs.iter().find(|s| s["number"] == number).unwrap_or_else(|| panic!("{number} not in {subs:?}"))
}

#[test]
fn an_owner_on_its_own_machine_accepts_rejects_and_leaves_unchecked_through_the_companys_registry() {
    let (company, token) = company();
    // The company's daemon: mailboxes and the registry on [web].
    let registry = Serving::start(&company, &["run", "--interval", "1"]);
    let o = owner(&registry.url, &token);
    // The company's signing certificate, as it publishes it, trusted for its PDFs.
    std::fs::copy(company.dir.join("signing-chain.pem"), o.dir.join("ejcs-signing.pem")).unwrap();
    o.edit_config(|t| t.replace("# signer_ca_file = \"ejcs-signing.pem\"", "signer_ca_file = \"ejcs-signing.pem\""));
    let m = company.mails(MARUICHI).remove(0);
    let t = company.mails(TORIDE_KOGYO).remove(0);
    let notice = m.attachments.iter().find(|(n, _)| n.contains("35075-00001M")).unwrap().1.clone();
    let key = key_in(&pdf_text(&notice)).unwrap();
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fwd@maruichi.example>", &m.raw));
    o.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<wrong@maruichi.example>", "35075-00001M", "CDEF34679HJK"));
    o.drop_mail(KWSA, &support::forward(TORIDE_KOGYO, KWSA, "<toride@toride-kogyo.example>", &t.raw));
    let altered = support::altered_notice(&company, "35075-00002K", &key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00002K")).unwrap().1)).unwrap(), "××浄水場全面更新工事");
    o.drop_mail(KWSA, &support::attach(MARUICHI, KWSA, "<altered@maruichi.example>", "notice.pdf", &altered));
    o.drop_mail(KWSA, &esurety::demo::contractor::other_surety(MARUICHI, KWSA));
    o.drop_mail(KWSA, &esurety::demo::contractor::insurer_policy("keiyaku@sanwa-doboku.example", KWSA));
    let unrelated = o.drop_mail(KWSA, &esurety::demo::contractor::unrelated("somu@kwsa.example", KWSA));
    let out = o.once();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains(&token) && !said.contains(&key), "no token or key in what the owner's run prints");

    let subs = submissions(&o);
    assert!(!subs.is_empty(), "{said}\nregistry: {}", registry.log.lock().unwrap());
    let fwd: Vec<&Value> = subs.iter().filter(|s| s["message_id"] == "<fwd@maruichi.example>").collect();
    assert_eq!(fwd.len(), 2, "{subs:#?}\n{said}");
    assert!(fwd.iter().all(|s| s["result"] == "accepted" && s["issuer"] == "東日本建設業保証株式会社"), "{fwd:?}");
    assert!(fwd.iter().all(|s| s["signature"] == "valid"), "the company's signature, trusted: {fwd:?}");
    let wrong = subs.iter().find(|s| s["message_id"] == "<wrong@maruichi.example>").unwrap();
    assert_eq!(wrong["result"], "rejected");
    assert!(wrong["reasons"][0].as_str().unwrap().contains("一致しません"), "{wrong}");
    let other_owner = result_of(&subs, "08075-00001M");
    assert_eq!(other_owner["result"], "rejected");
    assert!(other_owner["reasons"][0].as_str().unwrap().contains("取手市長"), "{other_owner}");
    let altered = subs.iter().find(|s| s["message_id"] == "<altered@maruichi.example>").unwrap();
    assert_eq!(altered["result"], "rejected");
    assert!(altered["reasons"][0].as_str().unwrap().contains("工事名"), "{altered}");
    assert_eq!(altered["signature"], "none", "typeset by another tool, unsigned: {altered}");
    let west = result_of(&subs, "27075-00012M");
    assert_eq!((west["result"].as_str(), west["issuer"].as_str()), (Some("unchecked"), Some("西日本建設業保証株式会社")), "{west}");
    let insurer = result_of(&subs, "T2026-0034471");
    assert_eq!((insurer["result"].as_str(), insurer["issuer"].as_str()), (Some("unchecked"), Some("あおぞら損害保険株式会社")), "{insurer}");
    assert_eq!(subs.len(), 7, "{subs:?}");
    // The unrelated mail is exactly as it was: still new, unflagged.
    assert!(o.files(KWSA).iter().any(|(uid, flags, new)| *uid == unrelated && flags.is_empty() && *new));
    // The sender of the unchecked notices is told a person will check them.
    let replies: Vec<_> = crate::common::mails_in(&o.maildir("relay")).into_iter().filter(|m| m.to.contains(&"keiyaku@sanwa-doboku.example".to_string())).collect();
    assert!(replies.iter().any(|r| r.body.contains("担当者が確認します")), "{replies:?}");

    // The registry recorded each check it answered, with the token, never the key.
    let tokens = company.json(&["token", "list"]);
    assert!(tokens[0]["last_used_at"].is_string(), "{tokens}");
    assert_eq!(company.db().find(&token), Vec::<String>::new(), "the token is not in the company's store");
    assert_eq!(o.db().find(&key), Vec::<String>::new(), "the key is not in the owner's store");
    // The owner's staff at a terminal ask the same registry.
    let v = o.json(&["verify", "35075-00001M", &key]);
    assert_eq!((v["result"].as_str(), v["certificate"]["project"].as_str()), (Some("valid"), Some("○○浄水場△△修繕工事")), "{v}");
    assert!(registry.stop().success(), "the company's daemon stops cleanly on SIGTERM");
}

#[test]
fn submissions_wait_while_the_registry_is_away_and_are_checked_when_it_is_back() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let port = registry.port();
    let url = registry.url.clone();
    assert!(registry.stop().success());
    // The same address again when it comes back.
    company.edit_config(|t| t.replace("127.0.0.1:0", &format!("127.0.0.1:{port}")));
    let o = owner(&url, &token);
    o.edit_config(|t| t.replacen("side = \"owner\"", "side = \"owner\"\nregistry_wait_hours = 0", 1)
        .replace("contracts_address = \"keiyaku@kwsa.example\"", "contracts_address = \"keiyaku@kwsa.example\"\nstaff_address = \"keiyaku-staff@kwsa.example\""));
    let m = company.mails(MARUICHI).remove(0);
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<fwd@maruichi.example>", &m.raw));
    let out = o.once();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("left for a later pass 1"), "{said}");
    assert!(submissions(&o).is_empty(), "nothing rejected while the registry is away");
    let staff = crate::common::mails_in(&o.maildir("relay"));
    let told: Vec<_> = staff.iter().filter(|m| m.to.contains(&"keiyaku-staff@kwsa.example".to_string())).collect();
    assert_eq!(told.len(), 1, "staff told once: {staff:?}");
    assert!(told[0].body.contains("接続できない") && told[0].body.contains("<fwd@maruichi.example>"), "{}", told[0].body);
    o.once();
    assert_eq!(crate::common::mails_in(&o.maildir("relay")).iter().filter(|m| m.to.contains(&"keiyaku-staff@kwsa.example".to_string())).count(), 1, "told once, not per pass");

    let back = Serving::start(&company, &["serve"]);
    assert_eq!(back.port(), port);
    o.once();
    let subs = submissions(&o);
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert!(subs.iter().all(|s| s["result"] == "accepted"), "{subs:?}");
    // No signer_ca_file for this issuer: the signed PDFs are registered `untrusted`, and
    // the registry's answer still decides.
    assert!(subs.iter().all(|s| s["signature"] == "untrusted" && s["signature_reason"].as_str().unwrap().contains("signer_ca_file")), "{subs:?}");

    // A revoked token: a clear error, nothing rejected, the submission waits.
    company.run_ok(&["token", "revoke", "1"]);
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<again@maruichi.example>", &m.raw));
    let out = o.once();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("refuses our token") && said.contains("left for a later pass 1"), "{said}");
    assert_eq!(submissions(&o).len(), 2, "nothing registered for the waiting submission");
    drop(back);
}

#[test]
fn the_api_refuses_bad_requests_clearly_and_keeps_serving() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let base = registry.url.clone();
    let m = company.mails(MARUICHI).remove(0);
    let key = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00001M")).unwrap().1)).unwrap();
    let auth = format!("Bearer {token}");
    let json_type = ("Content-Type", "application/json");
    let good = json!({"number": "35075-00001M", "key": key}).to_string();
    let cases: Vec<(&str, Vec<(&str, &str)>, Vec<u8>, u16, &str)> = vec![
        ("no token", vec![json_type], good.clone().into_bytes(), 401, "missing_token"),
        ("bad token", vec![("Authorization", "Bearer esr_0000"), json_type], good.clone().into_bytes(), 401, "bad_token"),
        ("malformed JSON", vec![("Authorization", &auth), json_type], b"{\"number\": \"35075-".to_vec(), 400, "bad_json"),
        ("unknown field", vec![("Authorization", &auth), json_type], br#"{"number": "35075-00001M", "key": "x", "admin": true}"#.to_vec(), 400, "bad_json"),
        ("10 MB body", vec![("Authorization", &auth), json_type], vec![b' '; 10 << 20], 413, "body_too_large"),
        ("wrong content type", vec![("Authorization", &auth), ("Content-Type", "text/plain")], good.clone().into_bytes(), 415, "unsupported_media_type"),
    ];
    for (what, headers, body, status, code) in &cases {
        let (st, _, b) = http(&base, "POST", "/api/v1/verify", headers, body);
        let v: Value = serde_json::from_slice(&b).unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&b)));
        assert_eq!((st, v["error"].as_str().unwrap_or("")), (*status, *code), "{what}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: a message says why");
    }
    let long = json!({"number": "3".repeat(10_000), "key": key}).to_string();
    let (st, _, b) = http(&base, "POST", "/api/v1/verify", &[("Authorization", &auth), json_type], long.as_bytes());
    assert!((400..500).contains(&st), "a 10,000-character number: {st} {}", String::from_utf8_lossy(&b));
    // Still serving, and the right answer for the right pair.
    let (st, v) = verify_json(&base, &token, "35075-00001M", &key);
    assert_eq!(st, 200);
    assert_eq!(v["result"], "valid", "{v}");
    assert_eq!(v["certificate"]["project"], "○○浄水場△△修繕工事");
    assert_eq!(v["certificate"]["office"], "神奈川支店");
    assert_eq!(v["history"][0]["kind"], "新規");
    let mut cli: Value = serde_json::from_str(&company.run_ok(&["verify", "35075-00001M", &key, "--json"])).unwrap();
    cli["certificate"]["office"] = json!("神奈川支店");
    cli["certificate"]["office_tel"] = v["certificate"]["office_tel"].clone();
    assert_eq!(v, cli, "the API answers what `esurety verify --json` prints (with the office's name and telephone)");
    let (st, _, b) = http(&base, "GET", "/api/v1/health", &[], b"");
    assert_eq!((st, serde_json::from_slice::<Value>(&b).unwrap()), (200, json!({"status": "ok"})));
    // A client that sends half a request and holds on does not keep the server from
    // stopping on SIGTERM.
    let mut hold = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    hold.write_all(b"POST /api/v1/verify HTTP/1.1\r\nHost: x\r\n").unwrap();
    let t = Instant::now();
    assert!(registry.stop().success(), "a clean stop");
    assert!(t.elapsed() < Duration::from_secs(20), "stopped in {:?}", t.elapsed());
}

#[test]
fn the_api_holds_its_lockout_under_a_stream_of_wrong_keys() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let base = registry.url.clone();
    let m = company.mails(MARUICHI).remove(0);
    let key = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00001M")).unwrap().1)).unwrap();
    // Five wrong keys lock the number: then even the right key answers `locked`.
    for wrong in ["CDEF34679HJK", "CDEF34679HKJ", "CDEF34679JHK", "CDEF34679JKH", "CDEF34679KHJ"] {
        let (st, v) = verify_json(&base, &token, "35075-00001M", wrong);
        assert_eq!((st, v["result"].as_str()), (200, Some("mismatch")), "{v}");
    }
    let (st, v) = verify_json(&base, &token, "35075-00001M", &key);
    assert_eq!((st, v["result"].as_str()), (200, Some("locked")), "{v}");
    assert!(v["locked_until"].is_string());
    assert!(v.get("certificate").is_none(), "nothing of the certificate while locked");
    // Guessing across numbers: the token is stopped with 429 and Retry-After, after the
    // token's limit (200 an hour: an owner's system relays every contractor's mistakes).
    let mut refused = None;
    let mut answered = 0;
    for n in 1..260 {
        let (st, headers, _) = http(&base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")],
            json!({"number": format!("35075-{n:05}K"), "key": "CDEF34679HJK"}).to_string().as_bytes());
        if st == 429 {
            refused = Some(headers);
            break;
        }
        assert_eq!(st, 200);
        answered += 1;
    }
    assert!((190..=200).contains(&answered), "{answered} guesses answered before the stop (5 were counted on 35075-00001M)");
    let headers = refused.expect("a token guessing across numbers is stopped");
    let (_, _, b) = http(&base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], br#"{"number":"35075-00099K","key":"CDEF34679HJK"}"#);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["error"], "too_many_failures", "told apart from a mere rate limit");
    let wait: u64 = headers.iter().find(|(k, _)| k == "retry-after").unwrap().1.parse().unwrap();
    assert!(wait > 0);
    // Another number's right key from that token also waits: checks are not made.
    let (st, _) = verify_json(&base, &token, "35075-00002K", "CDEF34679HJK");
    assert_eq!(st, 429);
}

#[test]
fn an_owner_checks_through_https_with_the_companys_ca() {
    let (company, token) = company();
    let tls = company.dir.join("tls");
    let ok = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ca.sh")).arg(&tls).status().unwrap();
    assert!(ok.success(), "openssl made the test CA");
    company.edit_config(|t| t.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"", tls.join("cert.pem").display(), tls.join("key.pem").display())));
    let registry = Serving::start(&company, &["serve"]);
    assert!(registry.url.starts_with("https://127.0.0.1:"), "{}", registry.url);
    let url = format!("https://localhost:{}", registry.port());
    let o = owner(&url, &token);
    o.edit_config(|t| t.replace("token_env = \"ESURETY_REGISTRY_TOKEN\"", &format!("token_env = \"ESURETY_REGISTRY_TOKEN\"\nca_file = \"{}\"", tls.join("ca.pem").display())));
    let m = company.mails(MARUICHI).remove(0);
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<tls@maruichi.example>", &m.raw));
    o.once();
    let subs = submissions(&o);
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert!(subs.iter().all(|s| s["result"] == "accepted"), "{subs:?}");
    // No signer_ca_file for this issuer: the signed PDFs are registered `untrusted`, and
    // the registry's answer still decides.
    assert!(subs.iter().all(|s| s["signature"] == "untrusted" && s["signature_reason"].as_str().unwrap().contains("signer_ca_file")), "{subs:?}");

    // Without the company's CA the owner side does not trust the server: it waits.
    let o2 = owner(&url, &token);
    o2.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<untrusted@maruichi.example>", &m.raw));
    let out = o2.once();
    assert!(String::from_utf8_lossy(&out.stderr).contains("left for a later pass 1"));
    assert!(submissions(&o2).is_empty());
}

#[test]
fn a_configuration_with_only_one_side_is_valid_and_plain_http_elsewhere_than_loopback_is_refused() {
    let b = Setup::init(&["--side", "branch"]);
    let text = std::fs::read_to_string(b.config()).unwrap();
    assert!(text.contains("side = \"branch\"") && text.contains("[web]"));
    b.once();
    let o = Setup::init(&["--side", "owner", "--registry-url", "http://127.0.0.1:9"]);
    // Commands that only read work without the token; the daemon says what is missing.
    o.run_ok(&["submissions"]);
    let out = o.run(&["run", "--once"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ESURETY_REGISTRY_TOKEN"), "{}", String::from_utf8_lossy(&out.stderr));
    b.edit_config(|t| t.replace("listen = \"127.0.0.1:8080\"", "listen = \"0.0.0.0:8080\""));
    let out = b.run(&["serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_cert"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn one_senders_wrong_keys_stop_at_that_sender_and_never_lock_the_owners_token() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let o = owner(&registry.url, &token);
    // One mail with twelve made-up pairs: the sender is stopped after ten wrong keys (its
    // mail waits), on the owner's side, before the registry's limit for the token.
    let body: String = (1..=12).map(|n| format!("保証契約番号：35075-1{n:04}M\n認証キー：CDEF34679HJK\n\n")).collect();
    let guesses = format!("From: guesser@stranger.example\r\nTo: {KWSA}\r\nSubject: guesses\r\nMessage-ID: <guess@stranger.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}");
    o.drop_mail(KWSA, guesses.as_bytes());
    let out = o.once();
    assert!(String::from_utf8_lossy(&out.stderr).contains("left for a later pass 1"), "{}", String::from_utf8_lossy(&out.stderr));
    let m = company.mails(MARUICHI).remove(0);
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<real@maruichi.example>", &m.raw));
    let out = o.once();
    let subs = submissions(&o);
    assert!(!subs.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let real: Vec<_> = subs.iter().filter(|s| s["message_id"] == "<real@maruichi.example>").collect();
    assert_eq!(real.len(), 2, "{subs:?}");
    assert!(real.iter().all(|s| s["result"] == "accepted"), "another sender's submission is checked at once: {subs:?}");
    let (st, _) = verify_json(&registry.url, &token, "35075-00002K", "CDEF34679HJK");
    assert_eq!(st, 200, "the owner's token is not locked");
}

#[test]
fn one_client_cannot_hold_every_connection() {
    let (company, _) = company();
    let registry = Serving::start(&company, &["serve"]);
    let addr = registry.url.trim_start_matches("http://").to_string();
    // 32 idle connections from one address are all it may hold: the 33rd is closed at once.
    let held: Vec<std::net::TcpStream> = (0..32).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = std::net::TcpStream::connect(&addr).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = extra.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer: {}", String::from_utf8_lossy(&buf[..n]));
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let (st, _, _) = http(&registry.url, "GET", "/api/v1/health", &[], b"");
    assert_eq!(st, 200, "served again once the others closed");
}

/// Ten made-up pairs from `from` (one mail), the real numbers among them with wrong keys.
fn guesses(from: &str, mid: &str, serial: u32) -> Vec<u8> {
    let body: String = (0..10).map(|n| {
        let number = match n {
            0 => "35075-00001M".to_string(),
            1 => "35075-00002K".to_string(),
            n => format!("35075-{:05}M", serial * 10 + n),
        };
        format!("保証契約番号：{number}\n認証キー：CDEF34679HJK\n\n")
    }).collect();
    format!("From: {from}\r\nTo: {KWSA}\r\nSubject: guesses\r\nMessage-ID: {mid}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").into_bytes()
}

/// Issue 23 item 2: strangers forging senders spend only their own budgets, never the
/// owner's token's, nor lock the real numbers they guess at.
#[test]
fn a_real_contractors_submission_is_accepted_after_twenty_five_forged_senders_guessed() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let o = owner(&registry.url, &token);
    // 25 forged senders, 20 guesses each (two mails of ten), the real numbers among them.
    for s in 1..=25u32 {
        for part in 0..2 {
            o.drop_mail(KWSA, &guesses(&format!("forger{s}@stranger{s}.example"), &format!("<g{s}-{part}@stranger.example>"), 10 + s * 2 + part));
        }
    }
    let m = company.mails(MARUICHI).remove(0);
    o.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, "<real@maruichi.example>", &m.raw));
    let mut said = String::new();
    let mut real = vec![];
    // In that pass or the next.
    for _ in 0..2 {
        said = String::from_utf8_lossy(&o.once().stderr).into_owned();
        real = submissions(&o).into_iter().filter(|s| s["message_id"] == "<real@maruichi.example>").collect::<Vec<_>>();
        if !real.is_empty() {
            break;
        }
    }
    assert_eq!(real.len(), 2, "{said}\nregistry: {}", registry.log.lock().unwrap());
    assert!(real.iter().all(|s| s["result"] == "accepted"), "{real:?}");
    // Each stranger stopped at its own ten: 250 of the 500 guesses reached the registry.
    let failures = company.db().count("SELECT count(*) FROM registry_failures");
    assert_eq!(failures, 250, "each forged sender's second mail waits on the owner's side");
    // The owner's system, asking for no sender, still has its token's whole budget.
    let (st, v) = verify_json(&registry.url, &token, "35075-00099K", "CDEF34679HJK");
    assert_eq!((st, v["result"].as_str()), (200, Some("mismatch")), "{v}");
    // Many callers failing on one number: staff are told, nobody is locked.
    assert!(registry.log.lock().unwrap().contains("registry_number_alert"), "{}", registry.log.lock().unwrap());
}

fn lookup_form(base: &str, number: &str, key: &str) -> (u16, String) {
    let form = format!("number={}&key={}", url_encode(number), url_encode(key));
    let (st, _, body) = http(base, "POST", "/lookup", &[("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
    (st, String::from_utf8_lossy(&body).into_owned())
}

fn url_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Issue 23 item 3: wrong keys typed on the lookup page lock that person out, never the
/// owner's system asking with the right key.
#[test]
fn six_wrong_keys_on_the_lookup_page_leave_the_owners_check_of_the_right_key_valid() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let m = company.mails(MARUICHI).remove(0);
    let key = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00001M")).unwrap().1)).unwrap();
    for wrong in ["CDEF34679HJK", "CDEF34679HKJ", "CDEF34679JHK", "CDEF34679JKH", "CDEF34679KHJ", "CDEF34679KJH"] {
        let (st, _) = lookup_form(&registry.url, "35075-00001M", wrong);
        assert!(st == 200 || st == 429, "{st}");
    }
    // The person at the page is locked out of that number, even with the right key.
    let (st, page) = lookup_form(&registry.url, "35075-00001M", &key);
    assert_eq!(st, 429, "{page}");
    assert!(page.contains("しばらく確認できません"));
    // The owner's system asks with the right key: valid.
    let (st, v) = verify_json(&registry.url, &token, "35075-00001M", &key);
    assert_eq!((st, v["result"].as_str()), (200, Some("valid")), "{v}");
    // And the token alone still has its per-number lock: five wrong keys, then `locked`.
    for wrong in ["CDEF34679HJK", "CDEF34679HKJ", "CDEF34679JHK", "CDEF34679JKH", "CDEF34679KHJ"] {
        let (_, v) = verify_json(&registry.url, &token, "35075-00002K", wrong);
        assert_eq!(v["result"], "mismatch", "{v}");
    }
    let key2 = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00002K")).unwrap().1)).unwrap();
    let (_, v) = verify_json(&registry.url, &token, "35075-00002K", &key2);
    assert_eq!(v["result"], "locked", "{v}");
    // Another end sender relayed by the same token is not locked out by those five.
    let (_, v) = verify_with(&registry.url, &token, json!({"number": "35075-00002K", "key": key2, "sender": "soumu@maruichi.example"}));
    assert_eq!(v["result"], "valid", "{v}");
}

fn verify_with(base: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = http(base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], body.to_string().as_bytes());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Issue 23 items 5 and 1: the record of checks keeps a number only when it is one (a key
/// typed into the number field is not kept), malformed input is answered as such on both
/// stores, and records older than 90 days go.
#[test]
fn the_record_of_checks_keeps_only_well_formed_numbers_and_is_pruned() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let base = registry.url.clone();
    let typed_key = "HJKLMNPRTWXY";
    // A person types the key into the number field, and a NUL after a number.
    let (st, page) = lookup_form(&base, typed_key, "CDEF34679HJK");
    assert_eq!(st, 200, "{page}");
    let (st, page) = lookup_form(&base, "35075-00001M\0", "CDEF34679HJK");
    assert_eq!(st, 200, "{page}");
    assert!(page.contains("保証契約番号または認証キーが正しくありません"));
    // The API: the same, and a NUL in the number is `malformed`, not a server error.
    let (st, v) = verify_with(&base, &token, json!({"number": typed_key, "key": "CDEF34679HJK"}));
    assert_eq!((st, v["result"].as_str()), (200, Some("malformed")), "{v}");
    let (st, v) = verify_with(&base, &token, json!({"number": "3507\u{0}5-00001M", "key": "CDEF34679HJK", "ref": "a"}));
    assert_eq!((st, v["result"].as_str()), (200, Some("malformed")), "{v}");
    // Control characters in ref or sender, or an absurd length: refused, nothing checked.
    for body in [json!({"number": "35075-00001M", "key": "CDEF34679HJK", "ref": "a\u{0}b"}),
                 json!({"number": "35075-00001M", "key": "CDEF34679HJK", "sender": "x@y.example\r\nBcc: z"})] {
        let (st, v) = verify_with(&base, &token, body);
        assert_eq!((st, v["error"].as_str()), (400, Some("malformed_field")), "{v}");
    }
    let (st, v) = verify_with(&base, &token, json!({"number": "35075-00001M", "key": "CDEF34679HJK", "sender": "x".repeat(201)}));
    assert_eq!((st, v["error"].as_str()), (422, Some("too_long")), "{v}");
    let mut db = company.db();
    let numbers: Vec<String> = db.texts("SELECT number FROM registry_checks ORDER BY id").into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(numbers, ["(malformed)", "(malformed)", "(malformed)", "(malformed)"], "only the page's and the API's four checks, no typed value");
    assert_eq!(db.find(typed_key), Vec::<String>::new(), "what was typed into the number field is not kept");
    // A check 91 days later: the older records go.
    drop(registry);
    company.env.borrow_mut().push(("ESURETY_TEST_NOW".into(), "2026-10-03T10:00:00+09:00".into()));
    let out = company.run(&["verify", "35075-00001m", "CDEF34679HJK", "--json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mismatch"), "{}", String::from_utf8_lossy(&out.stderr));
    let numbers = company.db().texts("SELECT number, via FROM registry_checks");
    assert_eq!(numbers, vec![vec![Some("35075-00001M".to_string()), Some("cli".to_string())]], "kept in its canonical form; the older ones pruned");
}

/// A registry that is not esurety: answers every verify request with `answer`, and notes
/// the path of each request it is sent.
struct Stub {
    url: String,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Stub {
    fn start(answer: Value) -> Stub {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let noted = asked.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { return };
                let (answer, noted) = (answer.to_string(), noted.clone());
                std::thread::spawn(move || {
                    let mut raw = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        // One request: its head, then the body it announces.
                        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match c.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => raw.extend_from_slice(&buf[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                        let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                        while raw.len() < end + 4 + length {
                            match c.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => raw.extend_from_slice(&buf[..n]),
                            }
                        }
                        noted.lock().unwrap().push(head.split(' ').nth(1).unwrap_or("").to_string());
                        raw.drain(..end + 4 + length);
                        let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}", answer.len());
                        if c.write_all(resp.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Stub { url, asked }
    }
}

/// Issue 23 item 6: a registry's answer for another number is no answer (the submission
/// waits, the log says why), and a pair goes only to the registries that may hold it.
#[test]
fn a_registrys_answer_for_another_number_is_not_taken_and_a_pair_goes_only_where_it_may_be_held() {
    let (company, token) = company();
    let registry = Serving::start(&company, &["serve"]);
    let m = company.mails(MARUICHI).remove(0);
    let key_of = |n: &str| key_in(&pdf_text(&m.attachments.iter().find(|(a, _)| a.contains(n)).unwrap().1)).unwrap();
    // A real answer, for 35075-00002K, given by a registry to any question.
    let (_, other) = verify_json(&registry.url, &token, "35075-00002K", &key_of("35075-00002K"));
    assert_eq!(other["result"], "valid");
    let liar = Stub::start(other);
    let o = owner(&format!("{}/liar/", liar.url), &token);
    o.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<one@maruichi.example>", "35075-00001M", &key_of("35075-00001M")));
    let out = o.once();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(liar.asked.lock().unwrap().as_slice(), ["/liar/api/v1/verify"]);
    assert!(submissions(&o).is_empty(), "not accepted on another number's certificate: {:?}\n{said}", submissions(&o));
    assert!(said.contains("left for a later pass 1") && said.contains("registry_wrong_number"), "{said}");

    // Two registries whose patterns match the number, and one without a pattern, listed
    // first: the pair goes to those whose pattern matches, never to the catch-all.
    let any = Stub::start(json!({"result": "mismatch"}));
    let o = owner(&registry.url, &token);
    o.edit_config(|t| t.replacen("[[registries]]", &format!(
        "[[registries]]\nissuer = \"北日本建設業保証株式会社\"\nurl = \"{}/any/\"\ntoken = \"t\"\n\n[[registries]]\nissuer = \"西日本建設業保証株式会社\"\nurl = \"{}/west/\"\ntoken = \"t\"\nnumbers = '^\\d{{5}}-'\n\n[[registries]]", any.url, any.url), 1));
    o.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<two@maruichi.example>", "35075-00001M", &key_of("35075-00001M")));
    let out = o.once();
    let subs = submissions(&o);
    assert_eq!(subs.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(subs[0]["result"], "accepted", "{subs:?}");
    assert!(!any.asked.lock().unwrap().iter().any(|p| p.starts_with("/any/")), "the catch-all was not asked: {:?}", any.asked.lock().unwrap());
}

fn verify_as(base: &str, token: &str, number: &str, key: &str, sender: &str) -> (u16, Value) {
    let body = json!({"number": number, "key": key, "sender": sender}).to_string();
    let (status, _, body) = http(base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], body.as_bytes());
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Strangers relayed by an owner's system cannot spend what its real contractors need:
/// past the relay limit (2,000 failures an hour through one address), a new stranger is
/// stopped, but a contractor who has given a right key through the token before is still
/// checked, and gets `valid`.
#[test]
fn strangers_relayed_past_the_relay_limit_leave_a_known_contractor_checked() {
    let (company, token) = company();
    company.edit_config(|t| t.replacen("\n[web]\n", "\n[web]\napi_per_minute = 1000000\n", 1));
    let registry = Serving::start(&company, &["serve"]);
    let m = company.mails(MARUICHI).remove(0);
    let key_of = |n: &str| key_in(&pdf_text(&m.attachments.iter().find(|(name, _)| name.contains(n)).unwrap().1)).unwrap();
    let (st, v) = verify_as(&registry.url, &token, "35075-00001M", &key_of("35075-00001M"), MARUICHI);
    assert_eq!((st, v["result"].as_str()), (200, Some("valid")), "{v}");
    // 201 strangers, ten wrong keys each, on numbers that do not exist.
    for s in 0..201 {
        for n in 0..10 {
            let (st, v) = verify_as(&registry.url, &token, &format!("35075-{:05}M", 100 + n), "CDEF34679HJK", &format!("forger{s}@stranger{s}.example"));
            assert!(st == 200 || st == 429, "{st} {v}");
        }
    }
    let (st, v) = verify_as(&registry.url, &token, "35075-00002K", "CDEF34679HJK", "newcomer@stranger.example");
    assert!(st == 429 || v["result"] == "locked", "a new stranger is stopped by the relay limit: {st} {v}");
    let (st, v) = verify_as(&registry.url, &token, "35075-00002K", &key_of("35075-00002K"), MARUICHI);
    assert_eq!((st, v["result"].as_str()), (200, Some("valid")), "the known contractor is checked: {v}");
}
