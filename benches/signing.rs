//! Issue 26's speed: what signing costs the branch, measured with and without it in the
//! same run. `cargo bench --bench signing` (release build).
//!
//! - P1: one warm PDF (each a different certificate), typeset unsigned and typeset and
//!   signed (the demo's ECDSA P-256 key, and an RSA-2048 key), in turns; the signing alone
//!   too. Target: at most 1 ms more.
//! - P2: `esurety run --once` on a Maildir of applications (4 PDFs + 1 mail each), the
//!   embedded default with `[signing]`, the same without, and with a local timestamp
//!   authority (`tests/servers/tsa.sh`: OpenSSL's `ts -reply` as a CGI behind lighttpd)
//!   and with the demo's authority (`esurety::demo::timestamps`, in this process), in
//!   turns. Target: signed with timestamps at least 80 % of unsigned.
//!
//! `ESURETY_BENCH_APPLICATIONS` (default 300) and `ESURETY_BENCH_RUNS` (default 3) change
//! the sizes.

mod common;

use esurety::branch::documents::{DocumentKind, Documents};
use esurety::clock::Clock;
use esurety::signature::Signer;
use esurety::templates::TemplateSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn application(form: &str, n: usize) -> Vec<u8> {
    let body = form.replace("工事名：○○浄水場△△修繕工事", &format!("工事名：○○浄水場△△修繕工事（第{n}工区）"));
    format!("From: soumu@maruichi.example\r\nTo: kanagawa@ejcs.example\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <bench-{n}@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

/// A fresh embedded default with `n` applications waiting; `signed`: with its `[signing]`;
/// `tsa`: and that timestamp authority.
fn queue(dir: &Path, n: usize, signed: bool, tsa: Option<&str>) -> std::path::PathBuf {
    let config = esurety::config::default::init(dir).unwrap();
    let m = mail_parser::MessageParser::default().parse(esurety::demo::SAMPLES[0].2).unwrap();
    let form = m.body_text(0).unwrap().into_owned();
    let md = esurety::intake::maildir::Maildir::new(config.mail.maildir_root.join("kanagawa@ejcs.example"));
    for i in 0..n {
        md.deliver(&format!("{i}.bench"), &application(&form, i)).unwrap();
    }
    let path = dir.join("esurety.toml");
    if let Some(url) = tsa {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("chain = \"signing-chain.pem\"\n", &format!("chain = \"signing-chain.pem\"\ntsa_url = \"{url}\"\n"))).unwrap();
    }
    if !signed {
        let text = std::fs::read_to_string(&path).unwrap();
        let unsigned = text.replace("[signing]\nkey = \"signing-key.pem\"\nchain = \"signing-chain.pem\"\n", "");
        assert_ne!(text, unsigned, "the default has [signing]");
        std::fs::write(&path, unsigned).unwrap();
    }
    path
}

fn run_once(config: &Path) -> Duration {
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_esurety"))
        .args(["--config", config.to_str().unwrap(), "run", "--once"])
        .env("ESURETY_TEST_NOW", common::NOW).output().unwrap();
    let took = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    took
}

fn rsa_signer(dir: &Path) -> Signer {
    let run = |args: &[&str]| assert!(std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap().status.success());
    run(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=bench RSA", "-keyout", "rsa.key", "-out", "rsa.pem"]);
    Signer::from_pem(&std::fs::read(dir.join("rsa.key")).unwrap(), &std::fs::read(dir.join("rsa.pem")).unwrap()).unwrap()
}

fn main() {
    let issued = common::Issued::new();
    let (engine, cert, clock) = (&issued.engine, &issued.cert, &issued.clock);
    assert!(engine.documents.signs(), "the embedded default signs");
    let unsigned = Documents::new(&TemplateSet::embedded()).unwrap();
    let rsa = Documents::new(&TemplateSet::embedded()).unwrap().with_signer(Some(Arc::new(rsa_signer(&issued.dir))));
    let n = 300;
    let rng = esurety::clock::SeededRandom::new(7);
    // Each render a certificate of its own (3 per turn): Typst's memoized layout of one
    // render never helps the next.
    let variants: Vec<_> = (0..3 * n + 20).map(|i| common::variant(cert, i, &rng)).collect();
    let config = &engine.config;
    println!("P1 (one warm PDF, each a different certificate; {n} of each, in turns):");
    for kind in [DocumentKind::Notice, DocumentKind::Certificate] {
        for (c, k) in &variants[3 * n..] {
            unsigned.render(kind, config, c, Some(k), clock.now()).unwrap();
            engine.documents.render(kind, config, c, Some(k), clock.now()).unwrap();
            rsa.render(kind, config, c, Some(k), clock.now()).unwrap();
        }
        let (mut plain, mut ecdsa, mut rsa_t) = (vec![], vec![], vec![]);
        for i in 0..n {
            // Which of the three goes first turns with i.
            let order = [(&unsigned, 0), (&engine.documents, 1), (&rsa, 2)];
            for j in 0..3 {
                let (docs, which) = order[(i + j) % 3];
                let (c, k) = &variants[3 * i + j];
                let t = Instant::now();
                docs.render(kind, config, c, Some(k), clock.now()).unwrap();
                [&mut plain, &mut ecdsa, &mut rsa_t][which].push(t.elapsed());
            }
        }
        let (p, p90, _) = common::percentiles(plain);
        let (e, e90, _) = common::percentiles(ecdsa);
        let (r, r90, _) = common::percentiles(rsa_t);
        println!("  {kind:<11} unsigned median {p:.2} ms (p90 {p90:.2}); signed ECDSA P-256 {e:.2} ms (p90 {e90:.2}), {:+.2} ms; signed RSA-2048 {r:.2} ms (p90 {r90:.2}), {:+.2} ms", e - p, r - p);
    }
    // The signature alone, on one typeset PDF.
    let signer = engine.config.signing.as_ref().unwrap().signer.clone();
    let pdf = unsigned.render(DocumentKind::Certificate, config, cert, None, clock.now()).unwrap();
    let times: Vec<Duration> = (0..1000).map(|_| {
        let t = Instant::now();
        signer.sign(&pdf, clock.now()).unwrap();
        t.elapsed()
    }).collect();
    let (m, m90, _) = common::percentiles(times);
    println!("  signing alone (ECDSA P-256, {} KB certificate): median {m:.3} ms, p90 {m90:.3} ms", pdf.len() / 1024);

    let apps: usize = std::env::var("ESURETY_BENCH_APPLICATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let runs: usize = std::env::var("ESURETY_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    // A real timestamp authority on loopback (tests/servers/tsa.sh: OpenSSL's `ts -reply`
    // behind lighttpd, one CGI process per token).
    let tsa_dir = esurety::testing::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/tsa.sh");
    let tsa = std::process::Command::new(&script).arg("start").arg(tsa_dir.path()).arg(port.to_string()).status().map(|s| s.success()).unwrap_or(false);
    let tsa_url = tsa.then(|| format!("http://127.0.0.1:{port}/"));
    // And the demo's timestamp authority (esurety demo's, RFC 3161 in process, one
    // ECDSA signature per token), served here on loopback.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (key, cert) = esurety::signature::demo::timestamp_certificate(std::time::SystemTime::now()).unwrap();
    let demo_tsa = Arc::new(esurety::demo::timestamps::DemoTsa::new(&key, &cert).unwrap());
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let demo_url = format!("http://{}/", listener.local_addr().unwrap());
    rt.spawn(esurety::demo::timestamps::serve(demo_tsa, listener));
    println!("P2 ({apps} applications, 4 PDFs + 1 mail each, `run --once`; {runs} runs of each, in turns):");
    let (mut signed_t, mut unsigned_t, mut stamped_t, mut demo_t) = (vec![], vec![], vec![], vec![]);
    for r in 0..runs {
        for mode in 0..4 {
            if mode == 2 && tsa_url.is_none() {
                continue;
            }
            let tmp = esurety::testing::tempdir().unwrap();
            let url = match mode {
                2 => tsa_url.as_deref(),
                3 => Some(demo_url.as_str()),
                _ => None,
            };
            let config = queue(&tmp.path().join(format!("p2-{r}-{mode}")), apps, mode != 1, url);
            let took = run_once(&config);
            [&mut signed_t, &mut unsigned_t, &mut stamped_t, &mut demo_t][mode].push(took);
        }
    }
    let _ = std::process::Command::new(&script).arg("stop").arg(tsa_dir.path()).status();
    let rate = |t: Vec<Duration>| {
        let (m, _, _) = common::percentiles(t);
        apps as f64 / (m / 1000.0)
    };
    let (s, u) = (rate(signed_t), rate(unsigned_t));
    println!("  signed (B-B) {s:.1} applications/s, unsigned {u:.1} applications/s (medians): signed is {:.0} % of unsigned", 100.0 * s / u);
    if stamped_t.is_empty() {
        println!("  signed and timestamped (B-T): not measured (tests/servers/tsa.sh could not start lighttpd)");
    } else {
        let t = rate(stamped_t);
        println!("  signed and timestamped (B-T, the local OpenSSL authority) {t:.1} applications/s: {:.0} % of unsigned", 100.0 * t / u);
    }
    let d = rate(demo_t);
    println!("  signed and timestamped (B-T, the demo's authority) {d:.1} applications/s: {:.0} % of unsigned", 100.0 * d / u);
}
