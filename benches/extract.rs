//! P3: number and key read from a key notice PDF, against `pdftotext` (poppler-utils) on
//! the same file, each timed over 5 s after a warm-up (median and p90).
//! `cargo bench --bench extract`.
//!
//! - in process: lopdf's text of each page, then the pair finder (what the PDF worker does);
//! - through the PDF worker: the same, plus the trip to the capped child process that the
//!   daemon really uses;
//! - reference: a `pdftotext FILE -` process per PDF (only its text; finding the pair in it
//!   would come on top).

mod common;

use esurety::branch::documents::DocumentKind;
use esurety::owner::submission::worker::{Isolated, PdfReader};
use esurety::owner::submission::{find, pdf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `f` for about `budget` after a short warm-up and prints its median and p90.
fn measure(name: &str, budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f();
    }
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed() < budget || times.len() < 50 {
        let t = Instant::now();
        f();
        times.push(t.elapsed());
    }
    let n = times.len();
    let (p50, p90, _) = common::percentiles(times);
    println!("P3 {name}: median {p50:.3} ms, p90 {p90:.3} ms ({n} runs)");
    p50
}

fn main() {
    let issued = common::Issued::new();
    let notice = issued.render(DocumentKind::Notice);
    let file = issued.dir.join("notice.pdf");
    std::fs::write(&file, &notice).unwrap();
    let expect = issued.key.as_ref().map(|k| k.reveal().to_string()).unwrap();
    let budget = Duration::from_secs(5);

    let in_process = measure("esurety in process (lopdf + pairs)", budget, || {
        let t = pdf::read(&notice).unwrap();
        let found = find::pairs(&t.pages.concat(), "pdf");
        assert_eq!(found[0].key, expect);
    });
    let isolated = Isolated::new(env!("CARGO_BIN_EXE_esurety").into(), Duration::from_secs(10), 1 << 30);
    let worker = measure("esurety through the PDF worker process", budget, || {
        let t = isolated.read(&notice).unwrap();
        assert!(!find::pairs(&t.pages.concat(), "pdf").is_empty());
    });
    if Command::new("pdftotext").arg("-v").output().is_ok() {
        let reference = measure("reference: pdftotext process", budget, || {
            let out = Command::new("pdftotext").arg(&file).arg("-").output().unwrap();
            assert!(out.status.success() && !out.stdout.is_empty());
        });
        println!("P3 ratio to pdftotext: {:.1}× in process, {:.1}× through the worker  (target ≤ 2 ms, ≥ 5×)", reference / in_process, reference / worker);
    } else {
        eprintln!("pdftotext is not installed (apt-get install poppler-utils): no reference measured");
    }
}
