//! What an operator sees (`operations.md` § Health and metrics), against the real binary:
//! `/healthz` and `/readyz` on the web listener, `/metrics` on its own, read by Debian's
//! `promtool check metrics` and scraped by a real Prometheus.

use crate::common::Setup;
use crate::registry_service::{Serving, http};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `[web]` and `[metrics]` on free loopback ports.
fn with_web_and_metrics(s: &Setup) {
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
}

/// The `metrics on URL` line the process printed.
fn metrics_url(serving: &Serving) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(url) = serving.log.lock().unwrap().lines().find_map(|l| l.split("metrics on ").nth(1).map(str::to_string)) {
            return url.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no `metrics on` line: {}", serving.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(url: &str) -> (u16, String) {
    let (base, path) = url.trim_start_matches("http://").split_once('/').map(|(b, p)| (format!("http://{b}"), format!("/{p}"))).unwrap();
    let (status, _, body) = http(&base, "GET", &path, &[], b"");
    (status, String::from_utf8(body).unwrap())
}

/// The value of one series in the text format (`name{labels} value`), labels as written.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn sum_of(text: &str, name: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

#[test]
fn metrics_count_what_the_daemon_did_and_promtool_and_prometheus_read_them() {
    let s = Setup::new();
    with_web_and_metrics(&s);
    for (address, _, bytes) in esurety::demo::SAMPLES {
        s.drop_mail(address, bytes);
    }
    let daemon = Serving::start(&s, &["run"]);
    let url = metrics_url(&daemon);
    // The pass is done when every sample has its outcome.
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let (status, text) = get(&url);
        assert_eq!(status, 200);
        if sum_of(&text, "esurety_messages_total") >= esurety::demo::SAMPLES.len() as f64 && sum_of(&text, "esurety_pass_seconds_count") >= 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "the samples were not all processed: {text}\n{}", daemon.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    };

    // What the store says, as staff would read it, against what the metrics say.
    let certificates = s.json(&["certificates"]);
    let certificates = certificates.as_array().unwrap();
    assert!(!certificates.is_empty());
    for product in ["前払金保証", "契約保証"] {
        let issued = certificates.iter().filter(|c| c["product"] == product).count() as f64;
        assert_eq!(sample(&text, &format!("esurety_certificates_issued_total{{product=\"{product}\"}}")).unwrap_or(0.0), issued, "{product}:\n{text}");
    }
    assert_eq!(sum_of(&text, "esurety_certificates_issued_total"), certificates.len() as f64);
    let held = s.json(&["staff", "held"]).as_array().unwrap().len() as f64;
    assert_eq!(sample(&text, "esurety_messages_total{side=\"branch\",outcome=\"held\"}"), Some(held), "{text}");
    assert_eq!(sample(&text, "esurety_messages_total{side=\"branch\",outcome=\"rejected\"}"), Some(1.0), "{text}");
    let outbox = s.json(&["outbox"]);
    let sent = outbox.as_array().unwrap().iter().filter(|m| m["status"] == "sent").count() as f64;
    assert!(sent > 0.0);
    assert_eq!(sample(&text, "esurety_deliveries_total{result=\"sent\"}"), Some(sent), "{text}");
    assert_eq!(sample(&text, "esurety_outbox_pending"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "esurety_store_reconnects_total"), Some(0.0), "{text}");
    assert!(text.contains("# TYPE esurety_pass_seconds histogram"), "{text}");
    assert!(text.contains("esurety_pass_seconds_bucket{le=\"+Inf\"}"), "{text}");

    // A registry check through the lookup page is counted with its caller.
    let number = certificates.iter().find(|c| c["format"] == esurety::domain::Format::Electronic.name()).map(|c| c["number"].as_str().unwrap().to_string()).unwrap();
    let (status, _, _) = http(&daemon.url, "POST", "/lookup", &[("content-type", "application/x-www-form-urlencoded")], format!("number={number}&key=CDEF34679HJK").as_bytes());
    assert_eq!(status, 200);
    let (_, after) = get(&url);
    assert_eq!(sample(&after, "esurety_registry_checks_total{result=\"mismatch\",caller=\"page\"}"), Some(1.0), "{after}");

    // Debian's promtool reads the exposition and finds nothing to complain of.
    let mut promtool = Command::new("promtool").args(["check", "metrics"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
        .expect("promtool (Debian's prometheus package; tests/run.sh installs it)");
    std::io::Write::write_all(promtool.stdin.as_mut().unwrap(), after.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(checked.status.success(), "promtool check metrics: {}{}\n{after}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));

    // A real Prometheus scrapes it and answers a query with the same figure.
    let prom = Prometheus::start(&s, &url);
    let issued = certificates.len() as f64;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if prom.query("sum(esurety_certificates_issued_total)") == Some(issued) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never had the figure: {}", prom.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(prom.query("esurety_messages_total{side=\"branch\",outcome=\"rejected\"}"), Some(1.0));
    drop(prom);
    assert!(daemon.stop().success());
}

/// Debian's Prometheus on a free loopback port, scraping one target every second.
struct Prometheus {
    child: std::process::Child,
    base: String,
    dir: std::path::PathBuf,
}

impl Prometheus {
    fn start(s: &Setup, metrics_url: &str) -> Prometheus {
        let dir = s.dir.join("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let target = metrics_url.trim_start_matches("http://").split('/').next().unwrap();
        std::fs::write(dir.join("prometheus.yml"), format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: esurety\n    static_configs:\n      - targets: ['{target}']\n"
        )).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap()).stderr(log)
            .spawn().expect("prometheus (Debian's prometheus package; tests/run.sh installs it)");
        Prometheus { child, base: format!("http://127.0.0.1:{port}"), dir }
    }

    /// A query's single value, once Prometheus answers with one.
    fn query(&self, q: &str) -> Option<f64> {
        let authority = self.base.trim_start_matches("http://");
        std::net::TcpStream::connect(authority).ok()?;
        let path = format!("/api/v1/query?query={}", url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>());
        let (status, _, body) = http(&self.base, "GET", &path, &[], b"");
        if status != 200 {
            return None;
        }
        let v: Value = serde_json::from_slice(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/readyz` as a load balancer or an operator asks it, every `interval`, until `want`.
fn ready_until(base: &str, want: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, _, body) = http(base, "GET", "/readyz", &[], b"");
        let v: Value = serde_json::from_slice(&body).unwrap();
        if status == want {
            return v;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn readyz_says_why_a_mailbox_that_keeps_failing_makes_the_daemon_not_ready() {
    let s = Setup::new();
    with_web_and_metrics(&s);
    let daemon = Serving::start(&s, &["run", "--interval", "1"]);
    let (status, _, body) = http(&daemon.url, "GET", "/healthz", &[], b"");
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()), (200, serde_json::json!({"alive": true})));
    assert_eq!(ready_until(&daemon.url, 200, Duration::from_secs(30)), serde_json::json!({"ready": true}));

    // A mailbox's Maildir gone (a file in its place): one failed pass is forgiven, the
    // failure outliving the retry is not.
    let md = s.maildir("shizuoka@ejcs.example");
    let aside = md.with_extension("aside");
    std::fs::rename(&md, &aside).unwrap();
    std::fs::write(&md, b"not a Maildir").unwrap();
    let v = ready_until(&daemon.url, 503, Duration::from_secs(30));
    assert_eq!(v["ready"], false);
    let reasons = v["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{v}");
    assert!(reasons[0].as_str().unwrap().starts_with("mailbox shizuoka@ejcs.example: its passes have failed since "), "{v}");
    // The health endpoint still says the process lives.
    assert_eq!(http(&daemon.url, "GET", "/healthz", &[], b"").0, 200);

    // Put back: ready again after the next pass.
    std::fs::remove_file(&md).unwrap();
    std::fs::rename(&aside, &md).unwrap();
    ready_until(&daemon.url, 200, Duration::from_secs(30));
    assert!(daemon.stop().success());
}

#[test]
fn readyz_says_why_when_mail_has_waited_in_the_outbox_too_long() {
    let s = Setup::new();
    with_web_and_metrics(&s);
    // An SMTP relay that refuses every connection: the completion mail waits in the outbox.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    s.edit_config(|t| t.replacen("[mail]\n", &format!("[mail.smtp]\nhost = \"127.0.0.1\"\nport = {closed}\nsecurity = \"plain\"\n\n[mail]\n"), 1));
    s.drop_mail("kanagawa@ejcs.example", esurety::demo::SAMPLES[0].2);
    s.once();
    let outbox = s.json(&["outbox"]);
    assert!(outbox.as_array().unwrap().iter().any(|m| m["status"] == "pending"), "{outbox}");

    // At the time it was written, the registry's server is ready.
    let serving = Serving::start(&s, &["serve"]);
    assert_eq!(ready_until(&serving.url, 200, Duration::from_secs(10)), serde_json::json!({"ready": true}));
    let (_, text) = get(&metrics_url(&serving));
    assert!(sample(&text, "esurety_outbox_pending").unwrap() >= 1.0, "{text}");
    drop(serving);

    // Two hours later it is not, and says why; the metrics show the age.
    s.env.borrow_mut().push(("ESURETY_TEST_NOW".into(), "2026-07-04T12:00:00+09:00".into()));
    let serving = Serving::start(&s, &["serve"]);
    let v = ready_until(&serving.url, 503, Duration::from_secs(10));
    assert_eq!(v["reasons"], serde_json::json!(["the oldest mail in the outbox has waited 120 minutes (limit 60)"]), "{v}");
    let (_, text) = get(&metrics_url(&serving));
    assert_eq!(sample(&text, "esurety_outbox_oldest_pending_seconds"), Some(7200.0), "{text}");
    assert!(serving.stop().success());
}

/// The supervisor's end of `NOTIFY_SOCKET`: what the process told it, one datagram each.
struct Supervisor {
    socket: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
}

impl Supervisor {
    fn new(s: &Setup) -> Supervisor {
        let path = s.dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        Supervisor { socket, path }
    }

    /// Datagrams until one that `want` accepts (returned), within `within`; the others
    /// (watchdog pings) are passed over.
    fn until(&self, within: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                if want(&msg) {
                    return msg;
                }
                seen.push(msg);
            }
        }
        panic!("not told within {within:?}; told: {seen:?}");
    }
}

#[test]
fn the_supervisor_is_told_ready_after_the_first_pass_and_a_reload_reads_the_templates_again() {
    let s = Setup::new();
    with_web_and_metrics(&s);
    s.drop_mail("kanagawa@ejcs.example", esurety::demo::SAMPLES[0].2);
    let supervisor = Supervisor::new(&s);
    s.env.borrow_mut().push(("NOTIFY_SOCKET".into(), supervisor.path.display().to_string()));
    s.env.borrow_mut().push(("WATCHDOG_USEC".into(), "400000".into()));
    let daemon = Serving::start(&s, &["run", "--interval", "1"]);

    // READY=1 comes once the first pass is done: the application is issued by then.
    let ready = supervisor.until(Duration::from_secs(60), |m| m.contains("READY=1"));
    assert!(ready.lines().any(|l| l.starts_with("STATUS=")), "{ready}");
    assert!(!s.json(&["certificates"]).as_array().unwrap().is_empty(), "READY=1 before the first pass was done");
    // The watchdog, at half the interval asked for.
    let started = Instant::now();
    for _ in 0..3 {
        supervisor.until(Duration::from_secs(2), |m| m.trim() == "WATCHDOG=1");
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    // A wording changed and SIGHUP: RELOADING=1 with the monotonic time, then READY=1, and
    // the next completion mail has the new wording.
    let template = s.dir.join("templates/mail/completion.txt");
    let wording = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&template, format!("{wording}\n（このお知らせの文面は新しくなりました）\n")).unwrap();
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    let reloading = supervisor.until(Duration::from_secs(30), |m| m.contains("RELOADING=1"));
    let usec = reloading.lines().find_map(|l| l.strip_prefix("MONOTONIC_USEC=")).unwrap_or_else(|| panic!("{reloading}"));
    assert!(usec.parse::<u64>().unwrap() > 0);
    supervisor.until(Duration::from_secs(30), |m| m.contains("READY=1"));
    let contractor = "soumu@maruichi.example";
    let before = s.mails(contractor).len();
    assert!(before >= 1);
    assert!(!s.mails(contractor).iter().any(|m| m.body.contains("新しくなりました")));
    s.drop_mail("kanagawa@ejcs.example", &crate::common::application(2));
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.mails(contractor).len() == before {
        assert!(Instant::now() < deadline, "no second completion mail: {}", daemon.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(s.mails(contractor).iter().any(|m| m.body.contains("（このお知らせの文面は新しくなりました）")), "the reloaded wording is not in the mail");

    // A configuration that does not validate: refused, said in the log, the old one kept.
    let config = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(s.config(), format!("{config}\nnonsense = 1\n")).unwrap();
    unsafe { libc::kill(daemon.pid() as i32, libc::SIGHUP) };
    supervisor.until(Duration::from_secs(30), |m| m.contains("RELOADING=1"));
    supervisor.until(Duration::from_secs(30), |m| m.contains("READY=1"));
    // (The log is read by another thread: it may come a moment after the datagram.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !daemon.log.lock().unwrap().contains("the configuration was not reloaded, the one in use stays") {
        assert!(Instant::now() < deadline, "no refusal in the log: {}", daemon.log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _, _) = http(&daemon.url, "GET", "/readyz", &[], b"");
    assert_eq!(status, 200);

    // SIGTERM: STOPPING=1, then a clean exit.
    let pid = daemon.pid();
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    supervisor.until(Duration::from_secs(30), |m| m.contains("STOPPING=1"));
    assert!(daemon.stop().success());
}

#[test]
fn the_shipped_unit_files_pass_systemd_analyze_verify() {
    let s = Setup::new();
    for unit in ["esurety.service", "esurety-hardened.service"] {
        let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/systemd").join(unit)).unwrap();
        assert!(text.contains("Type=notify") && text.contains("ExecReload=/bin/kill -HUP $MAINPID"), "{unit}");
        // The binary where the unit expects it is this build's.
        let path = s.dir.join(unit);
        std::fs::write(&path, text.replace("/usr/local/bin/esurety", env!("CARGO_BIN_EXE_esurety"))).unwrap();
        let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze (Debian's systemd; tests/run.sh installs it)");
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.trim().is_empty(), "{unit}: {said}");
    }
}
