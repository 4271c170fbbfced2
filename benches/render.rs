//! Typesetting speed: one PDF in a warm process versus one process per document.
//!
//! `cargo bench --bench render` (release build). Prints the median and p90 of warm renders
//! of the key notice and the certificate, the first render in a process, and the same
//! document typeset by a new `esurety render` process per document — the way a shell
//! script around a typesetting CLI would do it.

use esurety::clock::{Clock, FixedClock, SeededRandom};
use esurety::documents::DocumentKind;
use esurety::run::Engine;
use esurety::store::Store;
use std::time::{Duration, Instant};

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bench");
    let config = esurety::config::default::init(&dir).unwrap();
    let md = esurety::intake::maildir::Maildir::new(config.mail.maildir_root.join("kanagawa@ejcs.example"));
    md.deliver("1.bench", esurety::demo::SAMPLES[0].2).unwrap();
    let clock = FixedClock::parse("2026-07-04T10:00:00+09:00").unwrap();
    let rng = SeededRandom::new(1);
    let mut store = Store::open(&config.store).unwrap();

    let t = Instant::now();
    let engine = Engine::new(config).unwrap();
    let setup = t.elapsed();
    let cert = {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut adapters = engine.adapters(rt.handle()).unwrap();
        engine.run_once(&mut store, &mut adapters, &clock, &rng).unwrap();
        store.certificate("35075-00001M").unwrap().expect("issued by the pass").latest
    };
    let key = store.key_of("35075-00001M").unwrap();

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
        let (median, p90) = stats(times);
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
    let (median, p90) = stats(times);
    println!("one process per document (esurety render notice): median {median:.1} ms, p90 {p90:.1} ms ({runs} runs)");
}
