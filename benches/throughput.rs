//! P2: branch throughput — a Maildir of applications (both products electronic: 4 PDFs and
//! 1 mail each) through `esurety run --once`, against P1's per-PDF time × PDFs; P5: memory
//! — the peak RSS while typesetting many PDFs in one process, and of `run --once` on a
//! Maildir of many messages. `cargo bench --bench throughput` (release build).
//!
//! `ESURETY_BENCH_APPLICATIONS` (default 1,000) and `ESURETY_BENCH_MEMORY_N` (default
//! 10,000) change the sizes. `ESURETY_BENCH_PREPARE=DIR` only writes the queue into DIR, to
//! profile a run by hand (with `ESURETY_TEST_NOW` set as below).

mod common;

use esurety::clock::Clock;
use esurety::branch::documents::DocumentKind;
use std::path::Path;
use std::time::{Duration, Instant};

/// The first sample application as plain UTF-8 mail, for its own works.
fn application(form: &str, n: usize) -> Vec<u8> {
    let body = form.replace("工事名：○○浄水場△△修繕工事", &format!("工事名：○○浄水場△△修繕工事（第{n}工区）"));
    format!("From: soumu@maruichi.example\r\nTo: kanagawa@ejcs.example\r\nSubject: =?utf-8?B?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <bench-{n}@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}", body.replace('\n', "\r\n")).into_bytes()
}

fn sample_form() -> String {
    let m = mail_parser::MessageParser::default().parse(esurety::demo::SAMPLES[0].2).unwrap();
    m.body_text(0).unwrap().into_owned()
}

fn children_peak_rss_mb() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

/// User and system CPU time of every child waited for so far.
fn children_cpu_s() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(u.ru_utime) + s(u.ru_stime)
}

fn own_peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    kb / 1024.0
}

/// A fresh embedded default with `n` applications waiting in the branch's Maildir.
fn queue(dir: &Path, form: &str, n: usize) -> std::path::PathBuf {
    let config = esurety::config::default::init(dir).unwrap();
    let md = esurety::intake::maildir::Maildir::new(config.mail.maildir_root.join("kanagawa@ejcs.example"));
    for i in 0..n {
        md.deliver(&format!("{i}.bench"), &application(form, i)).unwrap();
    }
    dir.join("esurety.toml")
}

fn run_once(config: &Path) -> (Duration, String) {
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_esurety"))
        .args(["--config", config.to_str().unwrap(), "run", "--once"])
        .env("ESURETY_TEST_NOW", common::NOW).output().unwrap();
    let took = t.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (took, String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("").to_string())
}

fn main() {
    let apps: usize = std::env::var("ESURETY_BENCH_APPLICATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let mem_n: usize = std::env::var("ESURETY_BENCH_MEMORY_N").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let form = sample_form();
    // For profiling: only write a queue of `apps` applications into this folder.
    if let Ok(dir) = std::env::var("ESURETY_BENCH_PREPARE") {
        let config = queue(Path::new(&dir), &form, apps);
        println!("{apps} applications waiting; run: esurety --config {} run --once", config.display());
        return;
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    // The reference: P1's warm per-PDF time in this run, notice and certificate, each a
    // different certificate (as the daemon typesets them).
    let issued = common::Issued::new();
    let rng = esurety::clock::SeededRandom::new(3);
    let render_variant = |i: usize| {
        let kind = if i.is_multiple_of(2) { DocumentKind::Notice } else { DocumentKind::Certificate };
        let (c, k) = common::variant(&issued.cert, i, &rng);
        let t = Instant::now();
        issued.engine.documents.render(kind, &issued.engine.config, &c, Some(&k), issued.clock.now()).unwrap();
        t.elapsed()
    };
    for i in 0..20 {
        render_variant(100_000 + i);
    }
    let per_pdf: Vec<Duration> = (0..200).map(render_variant).collect();
    let (pdf_ms, _, _) = common::percentiles(per_pdf);

    // P2.
    let tmp = esurety::testing::tempdir().unwrap();
    let config = queue(&tmp.path().join("p2"), &form, apps);
    let cpu_before = children_cpu_s();
    let (took, summary) = run_once(&config);
    let cpu = children_cpu_s() - cpu_before;
    let t = took.as_secs_f64();
    let rate = apps as f64 / t;
    let pdfs = apps * 4;
    let typeset = pdf_ms * pdfs as f64 / 1000.0;
    println!("P2 {apps} applications (4 PDFs + 1 mail each) through `run --once` on {cores} core(s): {t:.1} s, {rate:.1} applications/s  (target ≥ 30/s)");
    println!("   reference: P1 warm PDF median {pdf_ms:.2} ms × {pdfs} PDFs = {typeset:.1} s of typesetting");
    println!("   time outside typesetting, (run − typesetting) / run: {:.0} %  (target ≤ 30 %; below 0 when parallel typesetting takes less wall time than serial would)", (t - typeset) / t * 100.0);
    println!("   CPU outside typesetting, (CPU − typesetting) / CPU: {cpu:.1} s of CPU, {:.0} % outside", (cpu - typeset) / cpu * 100.0);
    println!("   wall time outside typesetting spread over {cores} cores, 1 − (typesetting / {cores}) / run: {:.0} %", (1.0 - (typeset / cores as f64).min(t) / t) * 100.0);
    println!("   {summary}");
    println!("   peak RSS of that run: {:.0} MB", children_peak_rss_mb());

    // P5: typesetting many PDFs in one process, each a different certificate.
    let before = own_peak_rss_mb();
    let t = Instant::now();
    for i in 0..mem_n {
        render_variant(200_000 + i);
    }
    println!("P5 {mem_n} PDFs typeset in one process in {:.1} s: peak RSS {:.0} MB (before: {before:.0} MB)  (target < 200 MB)", t.elapsed().as_secs_f64(), own_peak_rss_mb());

    // P5: a Maildir of many messages through `run --once`.
    let config = queue(&tmp.path().join("p5"), &form, mem_n);
    let (took, summary) = run_once(&config);
    println!("P5 a Maildir of {mem_n} applications through `run --once` in {:.1} s: peak RSS {:.0} MB (largest child so far)  (target < 200 MB)", took.as_secs_f64(), children_peak_rss_mb());
    println!("   {summary}");
}
