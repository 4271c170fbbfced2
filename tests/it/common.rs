//! Helpers: a fresh embedded default in a temp dir, mail dropped into Maildirs, the
//! binary run with a fixed clock, and mail and PDFs read back as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const NOW: &str = "2026-07-04T10:00:00+09:00";

pub struct Setup {
    pub _tmp: esurety::testing::TempDir,
    pub dir: PathBuf,
    pub seq: std::cell::Cell<u32>,
    /// Environment for every command (a registry token).
    pub env: std::cell::RefCell<Vec<(String, String)>>,
}

impl Setup {
    pub fn new() -> Setup {
        Setup::init(&[])
    }

    /// `esurety init [ARGS] DIR` (`--side owner`, `--listen …`).
    pub fn init(args: &[&str]) -> Setup {
        let tmp = esurety::testing::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let out = Command::new(env!("CARGO_BIN_EXE_esurety")).arg("init").args(args).arg(&dir).env("ESURETY_TEST_NOW", NOW).output().unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let s = Setup { _tmp: tmp, dir, seq: std::cell::Cell::new(0), env: Default::default() };
        if crate::pg::on_postgres() {
            s.use_store(&crate::pg::database());
        }
        s
    }

    /// A fresh embedded default that stays on its SQLite file whatever the suite's store
    /// parameter: for what only a file has (its lock, its disk, its bytes).
    pub fn on_sqlite() -> Setup {
        let tmp = esurety::testing::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let out = Command::new(env!("CARGO_BIN_EXE_esurety")).arg("init").arg(&dir).env("ESURETY_TEST_NOW", NOW).output().unwrap();
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        Setup { _tmp: tmp, dir, seq: std::cell::Cell::new(0), env: Default::default() }
    }

    /// Points the configuration at another store (a PostgreSQL URL).
    pub fn use_store(&self, store: &str) {
        self.edit_config(|t| t.replacen("store = \"esurety.db\"", &format!("store = \"{store}\""), 1));
        assert!(std::fs::read_to_string(self.config()).unwrap().contains(store));
    }

    /// The store, as an SQL client of it sees it.
    pub fn db(&self) -> crate::pg::Db {
        // Only the `store` line is read: the rest may need what the commands' environment has.
        let text: toml::Table = std::fs::read_to_string(self.config()).unwrap().parse().unwrap();
        crate::pg::Db::open(&esurety::config::StoreAt::parse(text["store"].as_str().unwrap(), &self.dir, None, None))
    }

    /// Edits the configuration file's text.
    pub fn edit_config(&self, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(self.config()).unwrap();
        std::fs::write(self.config(), f(text)).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("esurety.toml")
    }

    pub fn maildir(&self, address: &str) -> PathBuf {
        self.dir.join("mailboxes").join(address)
    }

    /// Delivers a message into a mailbox's `new/` as an MDA would.
    pub fn drop_mail(&self, address: &str, bytes: &[u8]) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let name = format!("1783100000.T{n}.testhost");
        let md = self.maildir(address);
        std::fs::write(md.join("tmp").join(&name), bytes).unwrap();
        std::fs::rename(md.join("tmp").join(&name), md.join("new").join(&name)).unwrap();
        name
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esurety"));
        c.arg("--config").arg(self.config()).env("ESURETY_TEST_NOW", NOW).env("ESURETY_TEST_SMTP_PASSWORD", "pw").env_remove("ESURETY_TEST_SEED").env_remove("ESURETY_CRASH_AT").env_remove("ESURETY_STORE");
        c.envs(self.env.borrow().iter().cloned());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "esurety {args:?} failed: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.run_ok(&a)).unwrap()
    }

    pub fn once(&self) -> Output {
        let out = self.run(&["run", "--once"]);
        assert!(out.status.success(), "run --once failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Every message in an address's Maildir (new and cur), parsed.
    pub fn mails(&self, address: &str) -> Vec<Mail> {
        mails_in(&self.maildir(address))
    }

    /// What a mail client does when it shows new mail: moves it to `cur/`, marked seen.
    pub fn read_all(&self, address: &str) {
        let md = self.maildir(address);
        for e in std::fs::read_dir(md.join("new")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::rename(e.path(), md.join("cur").join(format!("{name}:2,S"))).unwrap();
        }
    }

    /// Maildir files of a mailbox with their flags: (unique name, flags, in new/).
    pub fn files(&self, address: &str) -> Vec<(String, String, bool)> {
        let mut out = vec![];
        for sub in ["new", "cur"] {
            for e in std::fs::read_dir(self.maildir(address).join(sub)).unwrap() {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                let (uid, flags) = n.rsplit_once(":2,").map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or((n.clone(), String::new()));
                out.push((uid, flags, sub == "new"));
            }
        }
        out.sort();
        out
    }
}

#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub from: String,
    pub to: Vec<String>,
    pub in_reply_to: Option<String>,
    pub body: String,
    pub attachments: Vec<(String, Vec<u8>)>,
    pub raw: Vec<u8>,
}

pub fn mails_in(md: &Path) -> Vec<Mail> {
    let mut out = vec![];
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(md.join(sub)) else { continue };
        let mut paths: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            out.push(parse_mail(&std::fs::read(p).unwrap()));
        }
    }
    out
}

pub fn parse_mail(raw: &[u8]) -> Mail {
    use mail_parser::MimeHeaders;
    let m = mail_parser::MessageParser::default().parse(raw).expect("a parseable mail");
    let addrs = |a: Option<&mail_parser::Address>| a.map(|a| a.iter().filter_map(|x| x.address().map(str::to_string)).collect::<Vec<_>>()).unwrap_or_default();
    Mail {
        subject: m.subject().unwrap_or_default().to_string(),
        from: addrs(m.from()).join(","),
        to: addrs(m.to()),
        in_reply_to: m.in_reply_to().as_text().map(|s| format!("<{s}>")),
        body: m.body_text(0).map(|b| b.into_owned()).unwrap_or_default(),
        attachments: m.attachments().map(|a| (a.attachment_name().unwrap_or_default().to_string(), a.contents().to_vec())).collect(),
        raw: raw.to_vec(),
    }
}

/// The text a PDF reader gets from a PDF, all whitespace removed (lopdf gives Japanese
/// in fragments; see notes), so labels and values can be found next to each other.
pub fn pdf_text(pdf: &[u8]) -> String {
    let doc = lopdf::Document::load_mem(pdf).expect("a readable PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    doc.extract_text(&pages).expect("extractable text").chars().filter(|c| !c.is_whitespace()).collect()
}

/// The key printed after the label `認証キー` in a key notice's text: the first place the
/// label is followed by 12 letters and digits.
pub fn key_in(text: &str) -> Option<String> {
    text.match_indices("認証キー").find_map(|(i, l)| {
        let rest = text[i + l.len()..].trim_start_matches([':', '：']);
        let k: String = rest.chars().take(12).collect();
        (k.chars().count() == 12 && k.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())).then_some(k)
    })
}

/// An application for its own works (so R10 never joins two of them), as 丸一建設 sends it.
pub fn application(n: usize) -> Vec<u8> {
    let raw = String::from_utf8(std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications/valid/001.eml")).unwrap()).unwrap().replace("<v001@mail.example>", &format!("<app-{n}@maruichi.example>")).into_bytes();
    if n == 0 { raw } else { with_project(&raw, &format!("第{n}工区")) }
}

/// The fixture's body is quoted-printable: replace the 工事名 in the decoded form and encode again.
pub fn with_project(raw: &[u8], suffix: &str) -> Vec<u8> {
    let m = parse_mail(raw);
    let body = m.body.replace("工事名：○○浄水場△△修繕工事", &format!("工事名：○○浄水場△△修繕工事{suffix}"));
    let mid = String::from_utf8_lossy(raw).lines().find(|l| l.starts_with("Message-ID:")).unwrap().to_string();
    format!("From: soumu@maruichi.example\r\nTo: kanagawa@ejcs.example\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\n{mid}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}


/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
