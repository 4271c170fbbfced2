//! Signed PDFs (issue 26, signing.md), checked by independent tools as an owner's reader
//! would: poppler's `pdfsig` (Debian) with an NSS database of the trusted certificates,
//! and pyHanko (PyPI) with the same trust (`tests/servers/pades.sh`). The demo company's
//! own certificate (`esurety init`), and a company certificate from a CA in a PKCS#12
//! file; a changed byte breaks both tools' judgment.

use crate::common::{Setup, application, pdf_text};
use std::path::Path;
use std::process::Command;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

fn pades(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/pades.sh");
    let out = Command::new(script).args(args).output().unwrap();
    assert!(out.status.success(), "pades.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What pdfsig and pyHanko say of `pdf`, trusting `trust` only.
fn judged(dir: &Path, name: &str, pdf: &[u8], trust: &Path) -> (String, String) {
    judged_by(dir, name, pdf, &[trust])
}

/// The same, trusting several certificates (a signer's CA and a timestamp authority's).
fn judged_by(dir: &Path, name: &str, pdf: &[u8], trust: &[&Path]) -> (String, String) {
    let file = dir.join(name);
    std::fs::write(&file, pdf).unwrap();
    let mut args = vec![file.to_str().unwrap().to_string()];
    args.extend(trust.iter().map(|t| t.to_str().unwrap().to_string()));
    let with = |tool: &str| pades(&std::iter::once(tool).chain(args.iter().map(String::as_str)).collect::<Vec<_>>());
    (with("pdfsig"), with("pyhanko"))
}

fn assert_valid(dir: &Path, name: &str, pdf: &[u8], trust: &Path) {
    assert_valid_by(dir, name, pdf, &[trust]);
}

fn assert_valid_by(dir: &Path, name: &str, pdf: &[u8], trust: &[&Path]) {
    let (pdfsig, pyhanko) = judged_by(dir, name, pdf, trust);
    for said in ["Signature Type: ETSI.CAdES.detached", "Total document signed", "Signature Validation: Signature is Valid.", "Certificate Validation: Certificate is Trusted."] {
        assert!(pdfsig.contains(said), "pdfsig on {name}: {said} in\n{pdfsig}");
    }
    assert_eq!(pdfsig.matches("Signature #").count(), 1, "one signature in {name}");
    assert!(pyhanko.trim_end().ends_with(":VALID"), "pyHanko on {name}: {pyhanko}");
}

/// `pdf` with one byte of its typeset content changed (inside what the signature covers).
fn altered(pdf: &[u8]) -> Vec<u8> {
    let mut b = pdf.to_vec();
    let at = b.windows(8).position(|w| w == b"/Length ").expect("a stream") + 1;
    b[at] = b'l';
    b
}

#[test]
fn the_demo_company_signs_every_pdf_it_mails_and_a_changed_byte_is_caught() {
    let s = Setup::new();
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1);
    let pdfs = &mails[0].attachments;
    assert!(pdfs.len() >= 2 && pdfs.iter().all(|(n, _)| n.ends_with(".pdf")), "{:?}", pdfs.iter().map(|p| &p.0).collect::<Vec<_>>());
    let trust = s.dir.join("signing-chain.pem");
    let subject = Command::new("openssl").args(["x509", "-noout", "-subject", "-nameopt", "utf8", "-in"]).arg(&trust).output().unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout).into_owned();
    assert!(subject.contains("DEMO") && subject.contains("東日本建設業保証株式会社"), "the demo certificate says it is a demo: {subject}");
    for (name, pdf) in pdfs {
        assert_valid(&s.dir, name, pdf, &trust);
        let (pdfsig, _) = judged(&s.dir, name, pdf, &trust);
        assert!(pdfsig.contains("DEMO signing certificate"), "{pdfsig}");
        // What was typeset stays readable inside the signed file.
        assert!(pdf_text(pdf).contains("35075-0000"), "{name}: the number is still in the text");
    }
    // An owner who receives a changed file: both tools say so.
    let (name, pdf) = &pdfs[1];
    let (pdfsig, pyhanko) = judged(&s.dir, &format!("changed-{name}"), &altered(pdf), &trust);
    assert!(pdfsig.contains("Digest Mismatch") && !pdfsig.contains("Signature is Valid"), "{pdfsig}");
    assert!(pyhanko.contains(":INVALID"), "{pyhanko}");
    // And a reader who trusts only some other certificate does not trust it.
    let other = s.dir.join("other.pem");
    std::fs::write(&other, esurety::signature::demo::certificate("別会社", std::time::SystemTime::now(), 1).unwrap().1).unwrap();
    let (pdfsig, pyhanko) = judged(&s.dir, name, pdf, &other);
    assert!(pdfsig.contains("Signature is Valid.") && !pdfsig.contains("Certificate is Trusted."), "{pdfsig}");
    assert!(!pyhanko.trim_end().ends_with(":VALID"), "{pyhanko}");
}

/// A test CA and a company certificate it issued (RSA-2048), in a PKCS#12 file with
/// `password`: (CA certificate, PKCS#12 file).
fn company_certificate(dir: &Path, password: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=esurety test signing CA/O=Test CA/C=JP", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", "ca.key", "-out", "ca.pem"]);
    run(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Higashi Nihon Surety Co./O=Higashi Nihon Surety Co./C=JP", "-keyout", "company.key", "-out", "company.csr"]);
    std::fs::write(dir.join("company.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n").unwrap();
    run(&["x509", "-req", "-in", "company.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650", "-extfile", "company.ext", "-out", "company.pem"]);
    run(&["pkcs12", "-export", "-inkey", "company.key", "-in", "company.pem", "-certfile", "ca.pem", "-passout", &format!("pass:{password}"), "-out", "company.p12"]);
    (dir.join("ca.pem"), dir.join("company.p12"))
}

#[test]
fn a_company_certificate_from_a_pkcs12_file_signs_and_chains_to_its_ca() {
    let s = Setup::new();
    let password = "p12-pass-8Jq2";
    let (ca, p12) = company_certificate(&s.dir, password);
    s.edit_config(|t| t.replace("key = \"signing-key.pem\"\nchain = \"signing-chain.pem\"", &format!("pkcs12 = \"{}\"\npassword_env = \"TEST_P12_PASSWORD\"", p12.file_name().unwrap().to_str().unwrap())));

    // A wrong password: refused at start, naming the variable, never the password.
    s.env.borrow_mut().push(("TEST_P12_PASSWORD".into(), "wrong-password-7Rt".into()));
    let out = s.run(&["run", "--once"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success() && said.contains("signing.pkcs12") && said.contains("TEST_P12_PASSWORD"), "{said}");
    assert!(!said.contains("wrong-password-7Rt"), "the password is never printed: {said}");

    s.env.borrow_mut().clear();
    s.env.borrow_mut().push(("TEST_P12_PASSWORD".into(), password.into()));
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1);
    for (name, pdf) in &mails[0].attachments {
        // Trusting the CA alone: the chain in the signature leads to it.
        assert_valid(&s.dir, name, pdf, &ca);
        let (pdfsig, _) = judged(&s.dir, name, pdf, &ca);
        assert!(pdfsig.contains("Signer Certificate Common Name: Higashi Nihon Surety Co."), "{pdfsig}");
        // The owner side, trusting the CA (signer_ca_file), follows the same chain.
        use esurety::signature::verify::{SignatureStatus, Trust, anchors_pem, judge};
        let read = esurety::owner::submission::pdf::read(pdf).unwrap();
        let now = std::time::SystemTime::now();
        assert_eq!(judge(read.signature.as_ref(), &Trust { signers: anchors_pem(&std::fs::read(&ca).unwrap()).unwrap(), timestamps: vec![] }, now).status, SignatureStatus::Valid, "{name}");
        let other = esurety::signature::demo::certificate("別会社", now, 1).unwrap().1;
        assert_eq!(judge(read.signature.as_ref(), &Trust { signers: anchors_pem(other.as_bytes()).unwrap(), timestamps: vec![] }, now).status, SignatureStatus::Untrusted, "{name}");
    }
}

/// The text of the first QR code on the first page of `pdf`, as a phone would read it
/// from the printed page: the page rendered at 150 dpi (poppler's pdftoppm), decoded by
/// zbar's zbarimg (Debian's zbar-tools).
fn qr_code(dir: &Path, name: &str, pdf: &[u8]) -> String {
    let file = dir.join(name);
    std::fs::write(&file, pdf).unwrap();
    let page = dir.join(format!("{name}-page"));
    let out = Command::new("pdftoppm").args(["-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile"]).arg(&file).arg(&page).output().unwrap();
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("zbarimg").args(["--nodbus", "-q", "--raw"]).arg(dir.join(format!("{name}-page.png"))).output().unwrap();
    assert!(out.status.success(), "zbarimg found no code in {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_qr_code_on_the_certificate_and_the_notice_opens_the_lookup_page_with_the_number() {
    let _one = crate::browser::ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = Setup::new();
    let port = crate::servers::free_port();
    let public = format!("http://127.0.0.1:{port}");
    s.edit_config(|t| t + &format!("\n[web]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{public}\"\n"));
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    let mails = s.mails(MARUICHI);
    let pdfs: Vec<_> = mails[0].attachments.iter().filter(|(n, _)| n.starts_with("認証キーのお知らせ") || n.starts_with("保証証書")).collect();
    assert_eq!(pdfs.len(), 4, "a notice and a certificate for each of the two products");
    let trust = s.dir.join("signing-chain.pem");
    let mut first = None;
    for (name, pdf) in pdfs {
        let number = name.trim_end_matches(".pdf").rsplit('_').next().unwrap();
        let url = qr_code(&s.dir, name, pdf);
        assert_eq!(url, format!("{public}/?number={number}"), "the QR code of {name}");
        if let Some(key) = crate::common::key_in(&pdf_text(pdf)) {
            assert!(!url.contains(&key), "never the key");
        }
        // The code is part of what is signed.
        assert_valid(&s.dir, name, pdf, &trust);
        first.get_or_insert((url, number.to_string()));
    }
    let (url, number) = first.unwrap();

    // The URL opens the lookup page with the number filled in, in Chromium.
    let serving = crate::registry_service::Serving::start(&s, &["serve"]);
    assert_eq!(serving.url.trim_end_matches('/'), public);
    let b = crate::browser::Browser::start();
    b.go(&url);
    b.find("#number");
    let value = |script: &str| b.call("POST", &b.s("/execute/sync"), serde_json::json!({"script": script, "args": []}));
    assert_eq!(value("return document.getElementById('number').value"), serde_json::json!(number));
    assert_eq!(value("return document.getElementById('key').value"), serde_json::json!(""), "the key is typed by the owner");
    assert_eq!(value("return document.activeElement.id"), serde_json::json!("key"), "the cursor waits in the key's field");
    b.screenshot("lookup-from-qr-code");
    // Anything but a number is not echoed.
    b.go(&format!("{public}/?number=%3Cscript%3Ealert(1)%3C/script%3E"));
    b.find("#number");
    assert_eq!(value("return document.getElementById('number').value"), serde_json::json!(""));
    assert!(!b.alert_open());
    b.close();
    drop(serving);
}

/// The documents the registry lists for a right key (`certificate.documents`).
fn documents_of(base: &str, token: &str, verify: &str) -> Vec<serde_json::Value> {
    let (_, _, body) = crate::registry_service::http(base, "POST", "/api/v1/verify", &[("Authorization", &format!("Bearer {token}")), ("Content-Type", "application/json")], verify.as_bytes());
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    answer["certificate"]["documents"].as_array().unwrap_or_else(|| panic!("documents in {answer}")).clone()
}

/// `s` with its signatures timestamped by the authority at `url` (and `extra` lines of
/// `[signing]`).
fn use_tsa(s: &Setup, url: &str, extra: &str) {
    s.edit_config(|t| t.replace("chain = \"signing-chain.pem\"\n", &format!("chain = \"signing-chain.pem\"\ntsa_url = \"{url}\"\n{extra}")));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_registry_serves_the_signed_file_it_mailed_and_the_hash_of_each_document() {
    use crate::registry_service::{Serving, http};
    let s = Setup::init(&["--side", "branch", "--listen", "127.0.0.1:0"]);
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    let mail = &s.mails(MARUICHI)[0];
    let file = |prefix: &str| mail.attachments.iter().find(|(n, _)| n.starts_with(prefix) && n.contains("35075-00001M")).unwrap().1.clone();
    let (notice, certificate) = (file("認証キーのお知らせ"), file("保証証書"));
    let key = crate::common::key_in(&pdf_text(&notice)).unwrap();
    let token = s.run_ok(&["token", "add", "--name", "神奈川県内広域水道企業団"]).trim().to_string();
    let other = s.run_ok(&["token", "add", "--name", "他の発注者"]).trim().to_string();
    let registry = Serving::start(&s, &["serve"]);
    let bearer = |t: &str| format!("Bearer {t}");
    let get = |t: &str, path: &str| http(&registry.url, "GET", path, &[("Authorization", &bearer(t))], b"");
    let doc = "/api/v1/certificates/35075-00001M/document";

    // Before the token has checked the number: the same 404 as an unknown number.
    let (st, _, body) = get(&token, doc);
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(get(&token, "/api/v1/certificates/35075-09999M/document").0, 404);
    assert_eq!(get("esr_not-a-token", doc).0, 401);

    // The answer to a right key lists each document of the version with its SHA-256.
    let verify = format!("{{\"number\": \"35075-00001M\", \"key\": \"{key}\"}}");
    let (st, _, body) = http(&registry.url, "POST", "/api/v1/verify", &[("Authorization", &bearer(&token)), ("Content-Type", "application/json")], verify.as_bytes());
    assert_eq!(st, 200);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["result"], "valid");
    let documents = answer["certificate"]["documents"].as_array().unwrap_or_else(|| panic!("documents in {answer}"));
    let listed = |kind: &str, bytes: &[u8]| documents.iter().any(|d| d["kind"] == kind && d["sha256"] == sha256_hex(bytes));
    assert!(listed("certificate", &certificate) && listed("notice", &notice), "the mailed files' hashes in {documents:?}");
    assert!(!String::from_utf8_lossy(&body).contains(&key));

    // Now the token takes the very file that was mailed, signed; the notice never.
    let (st, headers, pdf) = get(&token, doc);
    assert_eq!(st, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/pdf"));
    assert_eq!(sha256_hex(&pdf), sha256_hex(&certificate), "byte for byte what was mailed");
    assert_valid(&s.dir, "served.pdf", &pdf, &s.dir.join("signing-chain.pem"));
    assert_eq!(get(&token, &format!("{doc}?kind=notice")).0, 400);
    // Another owner's token that never checked it: nothing.
    assert_eq!(get(&other, doc).0, 404);

    // The lookup page's download is the same file.
    let form = format!("number=35075-00001M&key={key}");
    let (st, _, page_pdf) = http(&registry.url, "POST", "/lookup/certificate.pdf", &[("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
    assert_eq!(st, 200);
    assert_eq!(sha256_hex(&page_pdf), sha256_hex(&certificate));
    drop(registry);

    // A resend mails the kept certificate again, and a new notice whose hash is added.
    let subject = "6KqN6Ki844Kt44O844Gu44GK55+l44KJ44Gb44Gu5YaN6YCB44Gu44GK6aGY44GE";
    s.drop_mail(KANAGAWA, format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?B?{subject}?=\r\nMessage-ID: <resend-1@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n保証契約番号：35075-00001M\r\n").as_bytes());
    s.once();
    let resent = s.mails(MARUICHI).into_iter().find(|m| m.subject.contains("再送")).expect("the resend");
    let again = |prefix: &str| resent.attachments.iter().find(|(n, _)| n.starts_with(prefix)).unwrap().1.clone();
    assert_eq!(sha256_hex(&again("保証証書")), sha256_hex(&certificate), "the certificate as first mailed");
    let registry = Serving::start(&s, &["serve"]);
    let documents = documents_of(&registry.url, &token, &verify);
    assert!(documents.iter().any(|d| d["kind"] == "notice" && d["sha256"] == sha256_hex(&again("認証キーのお知らせ"))), "the resent notice's hash too: {documents:?}");
    assert!(documents.iter().any(|d| d["kind"] == "notice" && d["sha256"] == sha256_hex(&notice)), "and the first notice's");

    // A resend by staff on the desk: the kept certificate again, and the new notice listed.
    crate::desk_web::add_user(&s, "佐藤", &["branch:kanagawa@ejcs.example"]);
    let staff = crate::desk_web::login(&registry.url, "佐藤");
    assert_eq!(staff.post("/desk/certificates/35075-00001M/resend", &format!("csrf={}", staff.csrf)), 303);
    drop(registry);
    s.once();
    let by_staff = s.mails(MARUICHI).into_iter().filter(|m| m.subject.contains("再送")).last().expect("the staff's resend");
    let file = |prefix: &str| by_staff.attachments.iter().find(|(n, _)| n.starts_with(prefix)).unwrap().1.clone();
    assert_eq!(sha256_hex(&file("保証証書")), sha256_hex(&certificate), "the certificate as first mailed");
    let registry = Serving::start(&s, &["serve"]);
    let documents = documents_of(&registry.url, &token, &verify);
    assert!(documents.iter().any(|d| d["kind"] == "notice" && d["sha256"] == sha256_hex(&file("認証キーのお知らせ"))), "the staff's notice listed: {documents:?}");
    assert_eq!(documents.iter().filter(|d| d["kind"] == "certificate").count(), 1, "one certificate file: {documents:?}");
}

/// A real RFC 3161 authority (`tests/servers/tsa.sh`: OpenSSL's `ts -reply` behind
/// lighttpd) on a free port; stopped on drop.
struct Tsa {
    dir: std::path::PathBuf,
    url: String,
}

impl Tsa {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/tsa.sh")
    }
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(Self::script()).args(args).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "tsa.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
    fn start(dir: &Path) -> Tsa {
        let port = crate::servers::free_port();
        let out = Command::new(Self::script()).arg("start").arg(dir).arg(port.to_string()).output().unwrap();
        assert!(out.status.success(), "tsa.sh start: {}", String::from_utf8_lossy(&out.stderr));
        Tsa { dir: dir.to_path_buf(), url: format!("http://127.0.0.1:{port}/") }
    }
    fn issued(&self) -> usize {
        self.run(&["count"]).parse().unwrap()
    }
}

impl Drop for Tsa {
    fn drop(&mut self) {
        let _ = Command::new(Self::script()).arg("stop").arg(&self.dir).output();
    }
}

#[test]
fn with_a_timestamp_authority_every_signature_is_timestamped_and_an_authority_away_delays_the_mail() {
    let s = Setup::new();
    let tsa = Tsa::start(&s.dir.join("tsa"));
    use_tsa(&s, &tsa.url, "");
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1);
    let pdfs = &mails[0].attachments;
    assert_eq!(tsa.issued(), pdfs.len(), "one token per PDF");
    let (signer_ca, tsa_ca) = (s.dir.join("signing-chain.pem"), tsa.dir.join("tsa-ca.pem"));
    for (name, pdf) in pdfs {
        let file = s.dir.join(name);
        std::fs::write(&file, pdf).unwrap();
        let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/pades.sh"))
            .args(["pyhanko-pretty"]).arg(&file).arg(&signer_ca).arg(&tsa_ca).output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("The signature is judged VALID"), "{name}: {said}");
        assert!(said.contains("timestamp") && said.contains("esurety test TSA"), "{name}: pyHanko sees the TSA's token: {said}");
        assert_valid_by(&s.dir, name, pdf, &[&signer_ca, &tsa_ca]);
        // A validator that does not trust the authority does not take the signature.
        let (_, pyhanko) = judged(&s.dir, name, pdf, &signer_ca);
        assert!(pyhanko.contains(":INVALID"), "{pyhanko}");
        // The owner side, ten years on (the demo certificate long ended): the signature
        // stays valid through the timestamp of an authority it trusts, and only then.
        use esurety::signature::verify::{SignatureStatus, Trust, anchors_pem, judge};
        let read = esurety::owner::submission::pdf::read(pdf).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 365 * 86_400);
        let pem = |p: &Path| anchors_pem(&std::fs::read(p).unwrap()).unwrap();
        let with = |timestamps: Vec<Vec<u8>>| judge(read.signature.as_ref(), &Trust { signers: pem(&signer_ca), timestamps }, later).status;
        assert_eq!(with(pem(&tsa_ca)), SignatureStatus::Valid, "{name}: B-T keeps it checkable");
        assert_eq!(with(vec![]), SignatureStatus::Untrusted, "{name}: no trusted authority, the time of the check");
        assert_eq!(with(pem(&signer_ca)), SignatureStatus::Untrusted, "{name}: a token of an authority not trusted does not count");
    }

    // The authority away: the application waits (no mail, no unstamped PDF), and goes out
    // stamped once it is back.
    tsa.run(&["stop"]);
    s.drop_mail(KANAGAWA, &application(1));
    let out = s.run(&["run", "--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.mails(MARUICHI).len(), 1, "nothing mailed while the authority is away");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("timestamp"), "the log says why it waits: {said}");
    tsa.run(&["restart"]);
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 2, "mailed once the authority is back");
    let before = pdfs.len();
    assert_eq!(tsa.issued(), before + mails.iter().find(|m| m.attachments != *pdfs).unwrap().attachments.len());
}

#[test]
fn a_token_larger_than_the_room_kept_for_it_is_fitted_by_signing_again() {
    let s = Setup::new();
    let tsa = Tsa::start(&s.dir.join("tsa"));
    tsa.run(&["bigchain"]);
    use_tsa(&s, &tsa.url, "");
    s.drop_mail(KANAGAWA, &application(0));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1, "mailed, not held");
    let pdfs = &mails[0].attachments;
    assert_eq!(tsa.issued(), 2 * pdfs.len(), "each document stamped, then signed again with room and stamped again");
    let (signer_ca, tsa_ca) = (s.dir.join("signing-chain.pem"), tsa.dir.join("tsa-ca.pem"));
    for (name, pdf) in pdfs {
        assert_valid_by(&s.dir, name, pdf, &[&signer_ca, &tsa_ca]);
    }
}

#[test]
fn with_tsa_ca_file_a_token_of_another_authority_is_refused() {
    let s = Setup::new();
    let tsa = Tsa::start(&s.dir.join("tsa"));
    // The operator names a CA that is not this authority's: its tokens are not taken.
    use_tsa(&s, &tsa.url, "tsa_ca_file = \"signing-chain.pem\"\n");
    s.drop_mail(KANAGAWA, &application(0));
    let out = s.run(&["run", "--once"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(s.mails(MARUICHI).is_empty(), "nothing mailed with a token of an unknown authority");
    assert!(said.contains("tsa_ca_file"), "the log says why: {said}");
    std::fs::copy(tsa.dir.join("tsa-ca.pem"), s.dir.join("tsa-ca.pem")).unwrap();
    s.edit_config(|t| t.replace("tsa_ca_file = \"signing-chain.pem\"", "tsa_ca_file = \"tsa-ca.pem\""));
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 1, "mailed once the authority's own CA is named");
}

#[test]
fn an_authority_that_hangs_is_waited_for_once_per_pass_not_once_per_application() {
    let s = Setup::new();
    let tsa = Tsa::start(&s.dir.join("tsa"));
    use_tsa(&s, &tsa.url, "");
    tsa.run(&["hang"]);
    for n in 0..4 {
        s.drop_mail(KANAGAWA, &application(n));
    }
    let out = s.run(&["run", "--once"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(s.mails(MARUICHI).is_empty(), "nothing mailed unstamped");
    // The first application waited for the authority; the others were told at once that
    // it did not answer a moment ago.
    assert!(said.contains("no answer in 10 s"), "{said}");
    assert!(said.contains("(a moment ago; asked again within 30 s)"), "the others deferred at once: {said}");
    tsa.run(&["resume"]);
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 4, "all mailed, stamped, once the authority answers");
}

/// `pdf` with one byte changed where no reader looks: the binary comment on its second
/// line. The file still opens and reads as before; only its signature tells.
fn altered_unseen(pdf: &[u8]) -> Vec<u8> {
    let mut b = pdf.to_vec();
    let at = b.iter().position(|&c| c == b'\n').expect("a first line") + 2;
    assert!(b[at - 1] == b'%' && b[at] >= 0x80, "a binary comment on the second line");
    b[at] ^= 0x01;
    b
}

/// An incremental update appended to `pdf` that redefines the object holding its
/// signature dictionary as an empty `/Sig`: a reader's latest view of the file has no
/// signature, though the signed bytes are all still there.
fn hide_signature(pdf: &[u8]) -> Vec<u8> {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let (id, _) = doc.objects.iter().find(|(_, o)| o.as_dict().is_ok_and(|d| d.has(b"ByteRange"))).expect("a signature dictionary");
    let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
    let size = doc.trailer.get(b"Size").unwrap().as_i64().unwrap();
    let sx = pdf.windows(9).rposition(|w| w == b"startxref").unwrap();
    let prev: usize = String::from_utf8_lossy(&pdf[sx + 9..]).split_whitespace().next().unwrap().parse().unwrap();
    let mut out = pdf.to_vec();
    let obj_at = out.len() + 1;
    out.extend_from_slice(format!("\n{} {} obj\n<< /Type /Sig >>\nendobj\n", id.0, id.1).as_bytes());
    let xref_at = out.len();
    out.extend_from_slice(format!("xref\n0 1\n0000000000 65535 f \n{} 1\n{:010} {:05} n \ntrailer\n<< /Size {} /Root {} {} R /Prev {} >>\nstartxref\n{}\n%%EOF\n", id.0, obj_at, id.1, size, root.0, root.1, prev, xref_at).as_bytes());
    out
}

#[test]
fn the_owner_side_registers_each_pdfs_signature_and_flags_an_altered_file_to_staff() {
    let s = Setup::new();
    s.edit_config(|t| t.replacen("contracts_address = \"keiyaku@kwsa.example\"", "contracts_address = \"keiyaku@kwsa.example\"\nstaff_address = \"keiyaku-staff@kwsa.example\"", 1));
    s.drop_mail(KANAGAWA, &application(0));
    s.drop_mail(KANAGAWA, &application(1));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 2);
    let notice = |m: &crate::common::Mail| m.attachments.iter().find(|(n, _)| n.starts_with("認証キーのお知らせ")).unwrap().1.clone();
    let (first, second) = (notice(&mails[0]), notice(&mails[1]));
    let number = |pdf: &[u8]| {
        let text = pdf_text(pdf);
        let at = text.find("35075-").expect("a number in the notice");
        text[at..at + 12].to_string()
    };
    let (n1, n2) = (number(&first), number(&second));
    assert_ne!(n1, n2);
    let changed = altered_unseen(&second);
    assert_eq!(pdf_text(&changed), pdf_text(&second), "the changed file reads as before");

    // As mailed (forwarded whole), a changed file attached, and the number typed.
    s.drop_mail("keiyaku@kwsa.example", &crate::support::forward(MARUICHI, "keiyaku@kwsa.example", "<sig-fwd@maruichi.example>", &mails[0].raw));
    s.drop_mail("keiyaku@kwsa.example", &crate::support::attach(MARUICHI, "keiyaku@kwsa.example", "<sig-changed@maruichi.example>", "notice.pdf", &changed));
    // A changed file whose signature is hidden by a later update: still broken.
    s.drop_mail("keiyaku@kwsa.example", &crate::support::attach(MARUICHI, "keiyaku@kwsa.example", "<sig-hidden@maruichi.example>", "notice.pdf", &hide_signature(&changed)));
    let key1 = crate::common::key_in(&pdf_text(&first)).unwrap();
    s.drop_mail("keiyaku@kwsa.example", &crate::support::typed(MARUICHI, "keiyaku@kwsa.example", "<sig-typed@maruichi.example>", &n1, &key1));
    s.once();
    let subs = s.json(&["submissions"]);
    let of = |mid: &str| subs.as_array().unwrap().iter().find(|r| r["message_id"] == mid).unwrap_or_else(|| panic!("{mid} in {subs:#}")).clone();
    let fwd = of("<sig-fwd@maruichi.example>");
    assert_eq!((fwd["result"].as_str(), fwd["signature"].as_str()), (Some("accepted"), Some("valid")), "{fwd}");
    // The registry's answer decides: number and key are right, so accepted; the
    // signature says the file is not what was issued.
    let bad = of("<sig-changed@maruichi.example>");
    assert_eq!((bad["result"].as_str(), bad["signature"].as_str()), (Some("accepted"), Some("broken")), "{bad}");
    assert!(bad["signature_reason"].as_str().unwrap().contains("変更"), "{bad}");
    let hidden = of("<sig-hidden@maruichi.example>");
    assert_eq!(hidden["signature"], "broken", "{hidden}");
    let typed = of("<sig-typed@maruichi.example>");
    assert_eq!(typed["signature"], "none", "{typed}");
    // The sender is answered as before.
    let replies: Vec<_> = s.mails(MARUICHI).into_iter().filter(|m| m.subject.contains("受付")).collect();
    assert!(replies.len() >= 3, "{:?}", replies.iter().map(|m| &m.subject).collect::<Vec<_>>());
    // `esurety submissions` says it to staff at a terminal.
    let listed = s.run_ok(&["submissions"]);
    assert!(listed.lines().any(|l| l.contains(&n2) && l.contains("signature broken")), "{listed}");

    // The owner's staff digest names it.
    assert!(s.run_ok(&["digest"]).contains("digest(s) written"));
    let digest = s.mails("relay").into_iter().find(|m| m.to == ["keiyaku-staff@kwsa.example"]).expect("the owner staff's digest");
    assert!(digest.body.contains("電子署名が壊れている") && digest.body.contains(&n2), "{}", digest.body);
    assert!(!digest.body.contains(&n1), "only the altered one is named: {}", digest.body);

    // The owner's contract staff see it on the desk, in a real browser.
    let _one = crate::browser::ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n");
    crate::desk_web::add_user(&s, "田中", &["owner:keiyaku@kwsa.example"]);
    let registry = crate::registry_service::Serving::start(&s, &["serve"]);
    let b = crate::browser::Browser::start();
    b.go(&format!("{}/desk/", registry.url));
    b.type_into("#name", "田中");
    b.type_into("#password", crate::desk_web::PASSWORD);
    b.click("#login");
    b.click("#nav-submissions");
    let id = bad["id"].as_i64().unwrap();
    assert!(b.wait_text(&format!("#signature-{id}"), "改変あり").contains("電子署名：改変あり"));
    assert!(b.text(&format!("#submission-{id}")).contains("提出されたファイルは発行時のものではありません"));
    assert!(b.text(&format!("#signature-{}", fwd["id"].as_i64().unwrap())).contains("電子署名：有効"));
    assert!(!b.overflows());
    b.screenshot("desk-signature-broken");
}

#[test]
fn a_signing_certificate_out_of_its_validity_is_refused_at_start() {
    let s = Setup::new();
    let year = std::time::Duration::from_secs(365 * 86_400);
    let now = std::time::SystemTime::now();
    for (from, said) in [(now - 6 * year, "ended on"), (now + year, "is valid only from")] {
        let (key, cert) = esurety::signature::demo::certificate("東日本建設業保証株式会社", from, 5).unwrap();
        std::fs::write(s.dir.join("signing-key.pem"), key).unwrap();
        std::fs::write(s.dir.join("signing-chain.pem"), cert).unwrap();
        s.drop_mail(KANAGAWA, &application(0));
        let out = s.run(&["run", "--once"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success() && err.contains(said), "{err}");
        assert!(s.mails(MARUICHI).is_empty(), "nothing signed with it");
    }
}
