//! Typesetting speed: one PDF in a warm process versus one process per document.
//!
//! `cargo bench --bench render` (release build). Prints the median and p90 of warm renders
//! of the key notice and the certificate, the first render in a process, and the same
//! document typeset by a new `esurety render` process per document — the way a shell
//! script around a typesetting CLI would do it.

mod common;

use esurety::clock::Clock;
use esurety::documents::DocumentKind;
use esurety::run::Engine;
use std::time::{Duration, Instant};

fn main() {
    let issued = common::Issued::new();
    let (engine, cert, key, clock, dir) = (&issued.engine, &issued.cert, &issued.key, &issued.clock, &issued.dir);
    let t = Instant::now();
    let _ = Engine::new(engine.config.clone()).unwrap();
    let setup = t.elapsed();

    let fresh = Engine::new(engine.config.clone()).unwrap();
    let t = Instant::now();
    fresh.documents.render(DocumentKind::Notice, &fresh.config, &cert, key.as_ref(), clock.now()).unwrap();
    let first = t.elapsed();

    println!("engine set-up (fonts, templates): {:.1} ms", setup.as_secs_f64() * 1000.0);
    println!("first render in a process:        {:.1} ms", first.as_secs_f64() * 1000.0);
    let n = 300;
    for kind in [DocumentKind::Notice, DocumentKind::Certificate] {
        for _ in 0..20 {
            engine.documents.render(kind, &engine.config, &cert, key.as_ref(), clock.now()).unwrap();
        }
        let times: Vec<Duration> = (0..n).map(|_| {
            let t = Instant::now();
            engine.documents.render(kind, &engine.config, &cert, key.as_ref(), clock.now()).unwrap();
            t.elapsed()
        }).collect();
        let (median, p90, _) = common::percentiles(times);
        println!("warm render, {kind:<11} median {median:.2} ms, p90 {p90:.2} ms ({n} renders)");
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
}
