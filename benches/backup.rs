//! `esurety backup` and `esurety store check` on a store of 1,000,000 certificates, each
//! against a reference measured in the same run, in turns (A B A B …): the backup against
//! `cp` of the file then `sync` of the copy (the least a copy of a stopped store costs),
//! the check against SQLite's own `PRAGMA integrity_check` (the `sqlite3` shell, and
//! rusqlite in process), which is the first of the check's steps. Then the backup again
//! while a writer commits a certificate every few milliseconds: how long the writer's
//! commits take meanwhile (the copy is read from one snapshot, so they should not wait).
//! `cargo bench --bench backup` (release build).
//!
//! The store is filled once through esurety's own insert (`common::fill`), given its serial
//! counters, and kept under `target/bench-backup/N/` for later runs (delete it to make it
//! again). `ESURETY_BENCH_CERTIFICATES` changes N; `ESURETY_BENCH_RUNS` the turns (3).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("ESURETY_BENCH_CERTIFICATES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = std::env::var("ESURETY_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-backup").join(n.to_string());
    if !cache.join("ready").exists() {
        let t = Instant::now();
        make(&cache, n);
        println!("store of {n} certificates made in {:.1} s (kept in {})", t.elapsed().as_secs_f64(), cache.display());
    }
    let config = cache.join("esurety.toml");
    let store = cache.join("esurety.db");
    let out = std::env::temp_dir().join(format!("esurety-bench-backup-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let size = std::fs::metadata(&store).unwrap().len();
    println!("store: {n} certificates, {:.0} MB", size as f64 / 1e6);

    let esurety = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esurety"));
        c.arg("--config").arg(&config).args(args);
        c
    };
    let copy = out.join("copy.db");
    let backup = esurety(&["backup", "--force", "--to", copy.to_str().unwrap()]);
    let cp = sh(&format!("cp '{}' '{}' && sync '{}'", store.display(), out.join("cp.db").display(), out.join("cp.db").display()));
    let (b, c) = turns(runs, backup, cp);
    println!("esurety backup: median {:.2} s (min {:.2}, max {:.2}); cp + sync: median {:.2} s (min {:.2}, max {:.2}); ratio of medians {:.2}",
        b.0, b.1, b.2, c.0, c.1, c.2, b.0 / c.0);

    let check = esurety(&["store", "check", "--store", copy.to_str().unwrap()]);
    let shell = Command::new("sqlite3").arg("-version").output().is_ok_and(|o| o.status.success());
    let reference = if shell {
        let mut c = Command::new("sqlite3");
        c.arg(&copy).arg("PRAGMA integrity_check");
        c
    } else {
        println!("(no sqlite3 shell: the reference is rusqlite only)");
        sh("true")
    };
    let (k, i) = turns(runs, check, reference);
    println!("esurety store check: median {:.2} s (min {:.2}, max {:.2}); sqlite3 'PRAGMA integrity_check': median {:.2} s (min {:.2}, max {:.2}); ratio of medians {:.2}",
        k.0, k.1, k.2, i.0, i.1, i.2, k.0 / i.0);
    let mut inproc = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let c = rusqlite::Connection::open_with_flags(&copy, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let r: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(r, "ok");
        inproc.push(t.elapsed().as_secs_f64());
    }
    let p = summary(inproc);
    println!("rusqlite in process 'PRAGMA integrity_check': median {:.2} s (min {:.2}, max {:.2})", p.0, p.1, p.2);

    // The backup while a writer commits: the writer's commit times meanwhile.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, store) = (stop.clone(), store.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&store).unwrap();
            c.busy_timeout(Duration::from_secs(30)).unwrap();
            c.pragma_update(None, "synchronous", "FULL").unwrap();
            let mut times = Vec::new();
            let mut i = 0i64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let t = Instant::now();
                c.execute("INSERT INTO staff_actions (at, by, action, target) VALUES (?1, 'bench', 'bench', ?2)", rusqlite::params![common::NOW, i.to_string()]).unwrap();
                times.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(5));
            }
            c.execute("DELETE FROM staff_actions WHERE by = 'bench'", []).unwrap();
            times
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let o = esurety(&["backup", "--force", "--to", copy.to_str().unwrap()]).output().unwrap();
    let took = t.elapsed();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let times = writer.join().unwrap();
    let (p50, _, p99) = common::percentiles(times.clone());
    let max = times.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0;
    println!("esurety backup while a writer commits every 5 ms: {:.2} s; the writer's {} commits: median {p50:.2} ms, p99 {p99:.2} ms, max {max:.1} ms",
        took.as_secs_f64(), times.len());
    let o = esurety(&["store", "check", "--store", copy.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "the copy taken under writes checks: {}", String::from_utf8_lossy(&o.stdout));
    let _ = std::fs::remove_dir_all(&out);
}

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(script);
    c
}

/// A and B in turns, `runs` times each after one warm-up each: (median, min, max) seconds.
fn turns(runs: usize, mut a: Command, mut b: Command) -> ((f64, f64, f64), (f64, f64, f64)) {
    let time = |c: &mut Command| {
        let t = Instant::now();
        let o = c.output().unwrap();
        let took = t.elapsed().as_secs_f64();
        assert!(o.status.success(), "{c:?}: {}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        took
    };
    time(&mut a);
    time(&mut b);
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ta.push(time(&mut a));
        tb.push(time(&mut b));
    }
    (summary(ta), summary(tb))
}

fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// A store of `n` certificates with its configuration and secret, in `cache`.
fn make(cache: &Path, n: usize) {
    let issued = common::Issued::new();
    let template = issued.cert.clone();
    let path: PathBuf = issued.engine.config.store.file().unwrap().to_path_buf();
    let app_id: i64 = rusqlite::Connection::open(&path).unwrap().query_row("SELECT id FROM applications LIMIT 1", [], |r| r.get(0)).unwrap();
    let secrets = esurety::secrets::Secrets::load(&issued.engine.config.secret_file).unwrap();
    let common::Issued { dir, store, _tmp, .. } = issued;
    drop(store);
    let mut store = esurety::store::Store::open_file(&path).unwrap();
    common::fill(&mut store, &template, app_id, n, &secrets);
    drop(store);
    // `fill` numbers from office 99001 on without the counters a pass keeps: given here.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute("INSERT OR IGNORE INTO serials (office_code, last) SELECT office_code, count(*) FROM certificates GROUP BY office_code", []).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    drop(c);
    let _ = std::fs::remove_dir_all(cache);
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let st = Command::new("cp").arg("-a").arg(&dir).arg(cache).status().unwrap();
    assert!(st.success());
    std::fs::write(cache.join("ready"), "").unwrap();
}
