//! Typesetting speed: one PDF in a warm process versus one process per document.
//!
//! `cargo bench --bench render` (release build). Prints the median and p90 of warm renders
//! of the key notice and the certificate, the first render in a process, and the same
//! document typeset by a new `esurety render` process per document — the way a shell
//! script around a typesetting CLI would do it.

mod common;

use esurety::clock::Clock;
use esurety::branch::documents::DocumentKind;
use esurety::engine::Engine;
use std::time::{Duration, Instant};

fn main() {
    let issued = common::Issued::new();
    let (engine, cert, key, clock, dir) = (&issued.engine, &issued.cert, &issued.key, &issued.clock, &issued.dir);
    let t = Instant::now();
    let _ = Engine::new(engine.config.clone()).unwrap();
    let setup = t.elapsed();

    let fresh = Engine::new(engine.config.clone()).unwrap();
    let t = Instant::now();
    fresh.documents.render(DocumentKind::Notice, &fresh.config, cert, key.as_ref(), clock.now()).unwrap();
    let first = t.elapsed();

    println!("engine set-up (fonts, templates): {:.1} ms", setup.as_secs_f64() * 1000.0);
    println!("first render in a process:        {:.1} ms", first.as_secs_f64() * 1000.0);
    let n = 300;
    // As in the daemon: every document is a different certificate (number, key, project),
    // so Typst's memoization cannot reuse a whole earlier layout.
    let rng = esurety::clock::SeededRandom::new(7);
    let variants: Vec<_> = (0..n + 20).map(|i| common::variant(cert, i, &rng)).collect();
    for kind in [DocumentKind::Notice, DocumentKind::Certificate] {
        for (c, k) in &variants[n..] {
            engine.documents.render(kind, &engine.config, c, Some(k), clock.now()).unwrap();
        }
        let times: Vec<Duration> = variants[..n].iter().map(|(c, k)| {
            let t = Instant::now();
            engine.documents.render(kind, &engine.config, c, Some(k), clock.now()).unwrap();
            t.elapsed()
        }).collect();
        let (median, p90, _) = common::percentiles(times);
        println!("warm render, {kind:<11} median {median:.2} ms, p90 {p90:.2} ms ({n} renders, each a different certificate)");
        let times: Vec<Duration> = (0..n).map(|_| {
            let t = Instant::now();
            engine.documents.render(kind, &engine.config, cert, key.as_ref(), clock.now()).unwrap();
            t.elapsed()
        }).collect();
        let (median, p90, _) = common::percentiles(times);
        println!("   the same certificate again and again: median {median:.2} ms, p90 {p90:.2} ms (memoized layout)");
    }

    // The reference: a new process per document.
    let exe = env!("CARGO_BIN_EXE_esurety");
    let out = dir.join("x.pdf");
    let runs = 30;
    let times: Vec<Duration> = (0..runs).map(|_| {
        let t = Instant::now();
        let st = std::process::Command::new(exe)
            .args(["--config", dir.join("esurety.toml").to_str().unwrap(), "render", "notice", "35075-00001M", "-o", out.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .status().unwrap();
        assert!(st.success());
        t.elapsed()
    }).collect();
    let (median, p90, _) = common::percentiles(times);
    println!("one process per document (esurety render notice): median {median:.1} ms, p90 {p90:.1} ms ({runs} runs)");

    // The reference as a shell script would do it: the Typst CLI, one process per document,
    // the same template and fonts, each document's data written to data.json first.
    // `cargo install typst-cli --version 0.15.1 --locked`; ESURETY_BENCH_TYPST names it.
    let typst = std::env::var("ESURETY_BENCH_TYPST").ok().or_else(|| {
        let home = std::env::var("HOME").unwrap_or_default();
        [format!("{home}/.cargo/bin/typst"), "/usr/local/bin/typst".into(), "/usr/bin/typst".into()].into_iter().find(|p| std::path::Path::new(p).is_file())
    });
    let Some(typst) = typst else {
        println!("Typst CLI per document: not measured (no `typst` found; set ESURETY_BENCH_TYPST)");
        return;
    };
    let work = dir.join("typst-cli");
    std::fs::create_dir_all(&work).unwrap();
    let templates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    std::fs::copy(templates.join("notice.typ"), work.join("notice.typ")).unwrap();
    let times: Vec<Duration> = variants[..runs].iter().map(|(c, k)| {
        let data = esurety::branch::documents::data::document_data(&engine.config, c, Some(k));
        let t = Instant::now();
        std::fs::write(work.join("data.json"), serde_json::to_vec(&data).unwrap()).unwrap();
        let st = std::process::Command::new(&typst)
            .args(["compile", "--root"]).arg(&work)
            .arg("--font-path").arg(templates.join("fonts")).arg("--ignore-system-fonts")
            .args(["--creation-timestamp", "1783126800"])
            .arg(work.join("notice.typ")).arg(work.join("notice.pdf"))
            .stdout(std::process::Stdio::null())
            .status().unwrap();
        assert!(st.success());
        t.elapsed()
    }).collect();
    let (median, p90, _) = common::percentiles(times);
    println!("one process per document (Typst CLI {typst}, notice): median {median:.1} ms, p90 {p90:.1} ms ({runs} runs, each a different certificate)");
}
