//! P4: the registry check (`verify`) with 1,000,000 certificates in the store, and the
//! store's size per certificate; P6: start-up of `esurety run` on that store to the first
//! message processed. `cargo bench --bench registry` (release build).
//!
//! The store is filled through esurety's own insert (`Tx::insert_certificate`: the
//! certificate, its version, the branch's key, the registry entry and its version), in
//! batches of 10,000 per transaction. `ESURETY_BENCH_CERTIFICATES` changes the count.

mod common;

use esurety::clock::{Clock, FixedClock};
use esurety::registry::{Lockout, Verification, verify};
use esurety::store::Store;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("ESURETY_BENCH_CERTIFICATES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    // A real certificate to copy: issued by a real pass in a fresh embedded default.
    let issued = common::Issued::new();
    let template = issued.cert.clone();
    let app_id: i64 = rusqlite::Connection::open(issued.engine.config.store.file().unwrap()).unwrap().query_row("SELECT id FROM applications LIMIT 1", [], |r| r.get(0)).unwrap();
    let store_path = issued.engine.config.store.file().unwrap().to_path_buf();
    let config_path = issued.config_path();
    let maildir_root = issued.engine.config.mail.maildir_root.clone();
    drop(issued.store);
    let mut store = Store::open_file(&store_path).unwrap();
    let clock = FixedClock::parse(common::NOW).unwrap();
    let secrets = esurety::secrets::Secrets::load(&issued.engine.config.secret_file).unwrap();

    let t = Instant::now();
    let sample = common::fill(&mut store, &template, app_id, n, &secrets);
    let fill = t.elapsed();
    drop(store);
    rusqlite::Connection::open(&store_path).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let bytes = std::fs::metadata(&store_path).unwrap().len();
    println!("store: {n} certificates written in {:.1} s; file {:.0} MB, {:.0} bytes per certificate",
        fill.as_secs_f64(), bytes as f64 / 1e6, bytes as f64 / n as f64);

    // P4: verify in process, right key and wrong key, over a spread of numbers.
    let reopened = Store::open_file(&store_path).unwrap();
    let lockout = Lockout::default();
    let mut ok_times = Vec::new();
    for (number, key) in sample.iter().cycle().take(20_000) {
        let t = Instant::now();
        let v = verify(&reopened, &secrets, number, key.reveal(), esurety::domain::Caller::default(), None, clock.now(), lockout).unwrap();
        ok_times.push(t.elapsed());
        assert!(matches!(v, Verification::Valid { .. }));
    }
    let (p50, p90, p99) = common::percentiles(ok_times);
    println!("P4 verify, right key ({} numbers, 20,000 checks): median {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms  (target p99 ≤ 1 ms)", sample.len());
    // Wrong keys write a failure record (a write transaction each): measured apart.
    let mut bad_times = Vec::new();
    for (number, _) in sample.iter().take(2_000) {
        let t = Instant::now();
        let v = verify(&reopened, &secrets, number, "CDEF34679HJK", esurety::domain::Caller::default(), None, clock.now(), lockout).unwrap();
        bad_times.push(t.elapsed());
        assert!(matches!(v, Verification::Mismatch));
    }
    let (p50, p90, p99) = common::percentiles(bad_times);
    println!("P4 verify, wrong key (2,000 checks, each records a failure): median {p50:.3} ms, p90 {p90:.3} ms, p99 {p99:.3} ms");
    drop(reopened);

    // P6: `esurety run --once` on this store, one application waiting: start to exit
    // (the first message processed, its documents typeset and delivered).
    let mut times = Vec::new();
    for i in 0..5 {
        let md = esurety::intake::maildir::Maildir::new(maildir_root.join("kanagawa@ejcs.example"));
        let sample = String::from_utf8_lossy(esurety::demo::SAMPLES[0].2).replace("Message-ID: <", &format!("Message-ID: <p6-{i}-"));
        // The same works may be issued only once (R10): the earlier run's certificates are
        // moved out of the way so each run issues.
        rusqlite::Connection::open(&store_path).unwrap().execute("UPDATE certificates SET works_key = works_key || '-earlier' WHERE works_key NOT LIKE 'bench|%'", []).unwrap();
        md.deliver(&format!("p6-{i}.bench"), sample.as_bytes()).unwrap();
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_esurety"))
            .args(["--config", config_path.to_str().unwrap(), "run", "--once"])
            .env("ESURETY_TEST_NOW", common::NOW).output().unwrap();
        let took = t.elapsed();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("issued 1"), "{}", String::from_utf8_lossy(&out.stderr));
        times.push(took);
    }
    let (p50, _, _) = common::percentiles(times.clone());
    let max = times.iter().max().copied().unwrap_or(Duration::ZERO);
    println!("P6 `esurety run --once` with {n} certificates, one application waiting, start to exit: median {:.0} ms, max {:.0} ms  (target ≤ 1 s to the first message processed)",
        p50, max.as_secs_f64() * 1000.0);
}
