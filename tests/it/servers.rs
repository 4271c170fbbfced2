//! Real Dovecot and Postfix on loopback for the tests, started from config files in a
//! temp dir by `tests/servers/start.sh` and stopped when dropped. Every demo address is a
//! user with the password `pw`; a user's mail is on disk in `home/<domain>/<local>/Maildir`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs a server's control command; its daemon must not inherit our pipes.
fn control(c: &mut Command) -> bool {
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}
use std::time::{Duration, Instant};

pub struct Servers {
    pub dir: esurety::testing::TempDir,
    pub imap: u16,
    pub imaps: u16,
    pub smtp: u16,
    pub submission: u16,
    /// Postfix's submission port that takes only OAuth 2.0 (XOAUTH2, OAUTHBEARER) logins,
    /// checked by Dovecot at the authorization server's introspection endpoint; 0 without.
    pub oauth_submission: u16,
    /// The introspection URL (with Dovecot's client credentials) when started with OAuth.
    oauth: Option<String>,
    users: Vec<String>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers").join(name)
}

impl Servers {
    pub fn start(users: &[String]) -> Servers {
        Servers::start_with(users, None)
    }

    /// As [`Servers::start`], and Dovecot also takes OAuth 2.0 access tokens (asking the
    /// authorization server at `introspection_url`), Postfix on [`Servers::oauth_submission`].
    pub fn start_with_oauth(users: &[String], introspection_url: &str) -> Servers {
        Servers::start_with(users, Some(introspection_url.to_string()))
    }

    fn start_with(users: &[String], oauth: Option<String>) -> Servers {
        for tool in ["dovecot", "postfix"] {
            assert!(Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success(),
                "{tool} is not installed: run the tests with tests/run.sh, which installs it");
        }
        // A port picked free can be taken by another test before the servers bind it:
        // then they start again on other ports (at most three times), and say why.
        let mut why = String::new();
        for _ in 0..3 {
            let dir = esurety::testing::tempdir_in_named("esurety-mail-").unwrap();
            let oauth_submission = if oauth.is_some() { free_port() } else { 0 };
            let s = Servers { dir, imap: free_port(), imaps: free_port(), smtp: free_port(), submission: free_port(), oauth_submission, oauth: oauth.clone(), users: users.to_vec() };
            match s.try_start_all() {
                Ok(()) => return s,
                Err(e) => {
                    eprintln!("mail servers did not start, trying on other ports: {e}");
                    why += &format!("{e}\n");
                }
            }
        }
        panic!("mail servers did not start: {why}");
    }

    fn try_start_all(&self) -> Result<(), String> {
        let mut c = Command::new(script("start.sh"));
        if let Some(url) = &self.oauth {
            c.arg("--oauth").arg(url).arg(self.oauth_submission.to_string());
        }
        c.arg(self.dir.path()).args([self.imap, self.imaps, self.smtp, self.submission].map(|p| p.to_string()));
        c.args(self.users.iter().map(|u| format!("{u}:pw")));
        let log = std::fs::File::create(self.dir.path().join("start.log")).unwrap();
        let ok = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).status().unwrap().success();
        if !ok {
            control(Command::new(script("stop.sh")).arg(self.dir.path()));
            return Err(std::fs::read_to_string(self.dir.path().join("start.log")).unwrap_or_default());
        }
        for port in [self.imap, self.smtp] {
            wait_port(port);
        }
        Ok(())
    }

    pub fn stop_smtp(&self) {
        control(Command::new("postfix").arg("-c").arg(self.dir.path().join("pf")).arg("stop"));
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.smtp)).is_ok() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn start_smtp(&self) {
        assert!(control(Command::new("postfix").arg("-c").arg(self.dir.path().join("pf")).arg("start")), "postfix start");
        wait_port(self.smtp);
    }

    /// Stops Dovecot and starts it again (connections are cut).
    pub fn restart_imap(&self) {
        let conf = self.dir.path().join("dovecot/dovecot.conf");
        control(Command::new("doveadm").arg("-c").arg(&conf).arg("stop"));
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.imap)).is_ok() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(control(Command::new("dovecot").arg("-c").arg(&conf)), "dovecot start");
        wait_port(self.imap);
    }

    pub fn maildir(&self, user: &str) -> PathBuf {
        let (local, domain) = user.split_once('@').unwrap();
        self.dir.path().join("home").join(domain).join(local).join("Maildir")
    }

    /// The test CA that signed the servers' certificate: what clients trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Sends a message through Postfix's SMTP port; returns when the server said 250.
    pub fn send(&self, from: &str, to: &[&str], raw: &[u8]) {
        smtp_send(self.smtp, from, to, raw);
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        control(Command::new(script("stop.sh")).arg(self.dir.path()));
    }
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(20), "port {port} did not open");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain SMTP client conversation (the client side only; the server is the real Postfix).
pub fn smtp_send(port: u16, from: &str, to: &[&str], raw: &[u8]) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let mut expect = |w: &mut TcpStream, send: Option<&[u8]>, code: &str| {
        if let Some(b) = send {
            w.write_all(b).unwrap();
        }
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "SMTP: expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect(&mut w, None, "220");
    expect(&mut w, Some(b"EHLO test.example\r\n"), "250");
    expect(&mut w, Some(format!("MAIL FROM:<{from}>\r\n").as_bytes()), "250");
    for t in to {
        expect(&mut w, Some(format!("RCPT TO:<{t}>\r\n").as_bytes()), "250");
    }
    expect(&mut w, Some(b"DATA\r\n"), "354");
    let mut data = Vec::new();
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    expect(&mut w, Some(&data), "250");
    expect(&mut w, Some(b"QUIT\r\n"), "221");
}
