//! The web pages in a real browser: Debian's Chromium driven over W3C WebDriver by its
//! own `chromedriver` on loopback (installed by tests/run.sh, like Dovecot). The client
//! below speaks WebDriver's JSON over HTTP; the browser does everything a person's would
//! (typing, clicking, rendering). Screenshots go to `target/tmp/screenshots/`.

use crate::common::{Setup, key_in, pdf_text, with_project};
use crate::registry_service::{Serving, http};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Serialises the browser tests: one Chromium at a time.
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    _profile: esurety::testing::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    pub fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver").arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn()
            .expect("chromedriver (Debian's chromium-driver; tests/run.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && http(&base, "GET", "/status", &[], b"").0 == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = esurety::testing::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=ja", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.path().display())],
        }}}});
        let mut b = Browser { driver, base, session: String::new(), _profile: profile };
        let v = b.call("POST", "/session", caps);
        b.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        b
    }

    pub fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let bytes = if method == "GET" || method == "DELETE" { Vec::new() } else { body.to_string().into_bytes() };
        let (_, _, out) = http(&self.base, method, path, &[("Content-Type", "application/json")], &bytes);
        let v: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        v["value"].clone()
    }

    pub fn s(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({"url": url}));
    }

    /// The element matching `css`, waiting up to 10 s for it to appear.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.call("POST", &self.s("/element"), json!({"using": "css selector", "value": css}));
            if let Some(id) = v[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(Instant::now() < deadline, "no element {css}: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/clear")), json!({}));
        self.call("POST", &self.s(&format!("/element/{e}/value")), json!({"text": text}));
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &self.s(&format!("/element/{e}/click")), json!({}));
    }

    /// The text of `css` once it contains `needle` (the page after a click may take a
    /// moment to replace the one before); the last text seen when it never does.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.call("POST", &self.s("/element"), json!({"using": "css selector", "value": css}));
            let text = v[ELEMENT].as_str().map(|e| self.call("GET", &self.s(&format!("/element/{e}/text")), json!({})).as_str().unwrap_or_default().to_string()).unwrap_or_default();
            if text.contains(needle) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &self.s(&format!("/element/{e}/text")), json!({})).as_str().unwrap_or_default().to_string()
    }

    pub fn source(&self) -> String {
        self.call("GET", &self.s("/source"), json!({})).as_str().unwrap_or_default().to_string()
    }

    /// The value of a cookie the browser holds for the current page.
    pub fn cookie(&self, name: &str) -> String {
        self.call("GET", &self.s(&format!("/cookie/{name}")), json!({}))["value"].as_str().unwrap_or_default().to_string()
    }

    pub fn title(&self) -> String {
        self.call("GET", &self.s("/title"), json!({})).as_str().unwrap_or_default().to_string()
    }

    /// Whether an alert (a script that ran) is open.
    pub fn alert_open(&self) -> bool {
        self.call("GET", &self.s("/alert/text"), json!({})).is_string()
    }

    /// The page's width as laid out, and the window's: nothing may overflow sideways.
    pub fn overflows(&self) -> bool {
        let v = self.call("POST", &self.s("/execute/sync"), json!({"script": "return document.documentElement.scrollWidth > window.innerWidth", "args": []}));
        v.as_bool().unwrap_or(true)
    }

    /// A PNG of the window, written to `target/tmp/screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let v = self.call("GET", &self.s("/screenshot"), json!({}));
        let png = decode_base64(v.as_str().expect("a screenshot"));
        assert!(png.starts_with(b"\x89PNG"));
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub fn close(mut self) {
        self.call("DELETE", &self.s(""), json!({}));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            self.call("DELETE", &self.s(""), json!({}));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &c)| acc | (val(c) as u32) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn the_lookup_page_shows_the_certificate_in_a_real_browser_and_one_message_for_anything_else() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let company = Setup::init(&["--side", "branch", "--listen", "127.0.0.1:0"]);
    // 工事名 with markup in it, as a contractor might type it: it must show as text.
    let raw = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications/valid/001.eml")).unwrap();
    let markup = "<script>alert(1)</script><b>太字</b>";
    company.drop_mail("kanagawa@ejcs.example", &with_project(&raw, markup));
    company.once();
    let m = company.mails("soumu@maruichi.example").remove(0);
    let notice = &m.attachments.iter().find(|(n, _)| n.contains("35075-00001M")).unwrap_or_else(|| panic!("issued: {:?}", m.subject)).1;
    let key = key_in(&pdf_text(notice)).unwrap();
    let registry = Serving::start(&company, &["serve"]);

    let b = Browser::start();
    b.go(&format!("{}/", registry.url));
    assert_eq!(b.text("h1"), "電子保証の確認");
    assert!(b.title().contains("保証確認サービス"));
    b.screenshot("lookup-form");
    b.type_into("#number", "35075-00001M");
    b.type_into("#key", &key);
    b.click("#submit");
    let contents = b.text("#contents");
    assert!(contents.contains("35075-00001M") && contents.contains("丸一建設株式会社") && contents.contains("神奈川県内広域水道企業団"), "{contents}");
    assert!(contents.contains(&format!("○○浄水場△△修繕工事{markup}")), "the markup shows as text: {contents}");
    assert!(contents.contains("神奈川支店") && contents.contains("円"), "{contents}");
    assert!(b.text(".latest").contains("※最新の情報を表示しています"));
    assert!(b.text("#history").contains("新規"));
    assert!(!b.alert_open(), "no script of the 工事名 ran");
    assert!(!b.source().contains("<script>alert"), "escaped in the page's source");
    assert!(!b.overflows(), "nothing overflows at 1280 px");
    b.screenshot("lookup-certificate");
    let current = b.call("GET", &b.s("/url"), json!({})).as_str().unwrap_or_default().to_string();
    assert!(!current.contains(&key), "no key in the URL: {current}");

    // A wrong key and an unknown number: the same one message.
    b.go(&format!("{}/", registry.url));
    b.type_into("#number", "35075-00001M");
    b.type_into("#key", "CDEF34679HJK");
    b.click("#submit");
    let wrong = b.text("#message");
    b.screenshot("lookup-wrong-key");
    b.go(&format!("{}/", registry.url));
    b.type_into("#number", "35075-09999M");
    b.type_into("#key", &key);
    b.click("#submit");
    let unknown = b.text("#message");
    assert_eq!(wrong, unknown, "unknown and wrong look the same");
    assert!(wrong.contains("保証契約番号または認証キーが正しくありません"), "{wrong}");
    b.close();

    // The download button's request: the certificate's PDF.
    let form = format!("number=35075-00001M&key={key}");
    let (st, headers, pdf) = http(&registry.url, "POST", "/lookup/certificate.pdf", &[("Content-Type", "application/x-www-form-urlencoded")], form.as_bytes());
    assert_eq!(st, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    assert!(text.contains("35075-00001M") && text.contains("保証証書"), "{text}");
    // A POST from another site's page is refused.
    let (st, _, _) = http(&registry.url, "POST", "/lookup", &[("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "https://evil.example")], form.as_bytes());
    assert_eq!(st, 403);
}
