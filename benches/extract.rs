//! P3: number and key read from a key notice PDF, against `pdftotext` (poppler-utils) on
//! the same file. `cargo bench --bench extract`.
//!
//! - in process: lopdf's text of each page, then the pair finder (what the PDF worker does);
//! - through the PDF worker: the same, plus the trip to the capped child process that the
//!   daemon really uses;
//! - reference: a `pdftotext FILE -` process per PDF (only its text; finding the pair in it
//!   would come on top).

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use esurety::documents::DocumentKind;
use esurety::submission::worker::{Isolated, PdfReader};
use esurety::submission::{find, pdf};
use std::process::Command;

fn extract(c: &mut Criterion) {
    let issued = common::Issued::new();
    let notice = issued.render(DocumentKind::Notice);
    let file = issued.dir.join("notice.pdf");
    std::fs::write(&file, &notice).unwrap();
    let expect = issued.key.as_ref().map(|k| k.reveal().to_string()).unwrap();

    let mut g = c.benchmark_group("P3 number and key from a key notice PDF");
    g.bench_function("esurety in process (lopdf + pairs)", |b| b.iter(|| {
        let t = pdf::read(&notice).unwrap();
        let found = find::pairs(&t.pages.concat(), "pdf");
        assert_eq!(found[0].key, expect);
    }));
    let isolated = Isolated::new(env!("CARGO_BIN_EXE_esurety").into(), std::time::Duration::from_secs(10), 1 << 30);
    g.bench_function("esurety through the PDF worker process", |b| b.iter(|| {
        let t = isolated.read(&notice).unwrap();
        assert!(!find::pairs(&t.pages.concat(), "pdf").is_empty());
    }));
    if Command::new("pdftotext").arg("-v").output().is_ok() {
        g.bench_function("reference: pdftotext process", |b| b.iter(|| {
            let out = Command::new("pdftotext").arg(&file).arg("-").output().unwrap();
            assert!(out.status.success() && !out.stdout.is_empty());
        }));
    } else {
        eprintln!("pdftotext is not installed (apt-get install poppler-utils): no reference measured");
    }
    g.finish();
}

criterion_group!(benches, extract);
criterion_main!(benches);
