//! The registry as a service (issue 14): `POST /api/v1/verify` over loopback HTTP against
//! `esurety serve` (release build, a separate process) with 1,000,000 certificates in the
//! store and 64 concurrent clients (this bench's own client: 64 threads, one keep-alive
//! connection each), valid checks and then wrong keys (each writes a failure); and an
//! owner's pass of 100 submissions checked through the remote registry against the same
//! pass checked in process. `cargo bench --bench api`; `ESURETY_BENCH_CERTIFICATES`
//! changes the count, `ESURETY_BENCH_SECONDS` each load phase's length (default 10).

mod common;

use esurety::domain::AuthKey;
use esurety::store::Store;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 64;

fn main() {
    let n: usize = std::env::var("ESURETY_BENCH_CERTIFICATES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let seconds: u64 = std::env::var("ESURETY_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let issued = common::Issued::new();
    let template = issued.cert.clone();
    let store_path = issued.engine.config.store.file().unwrap().to_path_buf();
    let config_path = issued.config_path();
    let dir = config_path.parent().unwrap().to_path_buf();
    let app_id: i64 = rusqlite::Connection::open(&store_path).unwrap().query_row("SELECT id FROM applications LIMIT 1", [], |r| r.get(0)).unwrap();
    let secrets = esurety::secrets::Secrets::load(&issued.engine.config.secret_file).unwrap();
    drop(issued.store);
    let mut store = Store::open_file(&store_path).unwrap();
    let t = Instant::now();
    let sample = Arc::new(common::fill(&mut store, &template, app_id, n, &secrets));
    println!("store: {n} certificates written in {:.1} s", t.elapsed().as_secs_f64());
    // Tokens: one for the valid checks; many (each with its own client address through a
    // trusted proxy) for the wrong keys, so that the per-caller lockout (10 failures an
    // hour) does not turn them away and each writes its failure.
    let now = chrono::DateTime::parse_from_rfc3339(common::NOW).unwrap();
    let tokens: Vec<String> = (0..20_000).map(|i| {
        let (t, h) = esurety::registry::tokens::new_token(&esurety::clock::OsRandom);
        store.write(|tx| tx.add_token(&format!("bench {i}"), &h, now)).unwrap();
        t
    }).collect();
    drop(store);
    let mut text = std::fs::read_to_string(&config_path).unwrap();
    text += "\n[web]\nlisten = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1\"]\napi_per_minute = 100000000\n";
    std::fs::write(&config_path, text).unwrap();

    let mut server = Command::new(env!("CARGO_BIN_EXE_esurety")).args(["--config", config_path.to_str().unwrap(), "serve"])
        .stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let url = loop {
        let l = lines.next().expect("serve prints its address").unwrap();
        if let Some(u) = l.split("listening on http://").nth(1) {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let tokens = Arc::new(tokens);

    // Valid checks.
    let (count, times, other) = load(&url, seconds, {
        let (sample, token) = (sample.clone(), tokens[0].clone());
        move |_, i| (sample[i % sample.len()].0.clone(), sample[i % sample.len()].1.reveal().to_string(), token.clone(), None)
    }, "\"valid\"");
    let (p50, _, p99) = common::percentiles(times);
    println!("API valid checks, {CLIENTS} clients, {seconds} s: {:.0} checks/s, median {p50:.2} ms, p99 {p99:.2} ms, other answers {other}  (target ≥ 3,000/s, p99 ≤ 10 ms)", count as f64 / seconds as f64);

    // Wrong keys: each writes a failure (and its record) before the answer.
    let (count, times, other) = load(&url, seconds, {
        let tokens = tokens.clone();
        move |c, i| {
            // Spread over all the numbers (a number locks after 5 failures).
            let k = i * CLIENTS + c;
            let j = (k * 7919) % n;
            let number = format!("{:05}-{:05}M", 99_001 + j / 99_999, j % 99_999 + 1);
            let wrong = AuthKey::parse("CDEF34679HJK").unwrap().reveal().to_string();
            (number, wrong, tokens[1 + k % (tokens.len() - 1)].clone(), Some(format!("10.{}.{}.{}", k >> 16 & 255, k >> 8 & 255, k & 255)))
        }
    }, "\"mismatch\"");
    let (p50, _, p99) = common::percentiles(times);
    println!("API wrong keys, {CLIENTS} clients, {seconds} s: {:.0} checks/s, median {p50:.2} ms, p99 {p99:.2} ms, other answers {other} (each writes a failure)", count as f64 / seconds as f64);

    // An owner's pass of 100 submissions: through the remote registry against in process.
    let owner = dir.parent().unwrap().join("owner");
    let out = Command::new(env!("CARGO_BIN_EXE_esurety")).args(["init", "--side", "owner", "--registry-url", &format!("http://{url}")]).arg(&owner).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let kwsa = "keiyaku@kwsa.example";
    let deliver = |root: &std::path::Path, tag: &str| {
        let md = esurety::intake::maildir::Maildir::new(root.join("mailboxes").join(kwsa));
        for (i, (number, key)) in sample.iter().skip(5000).take(100).enumerate() {
            let mail = format!("From: soumu@maruichi.example\r\nTo: {kwsa}\r\nSubject: submission {i}\r\nMessage-ID: <{tag}-{i}@maruichi.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n保証契約番号：{number}\r\n認証キー：{}\r\n", key.reveal());
            md.deliver(&format!("{tag}-{i}.bench"), mail.as_bytes()).unwrap();
        }
    };
    let pass = |config: &std::path::Path, token: Option<&str>| -> (f64, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_esurety"));
        c.args(["--config", config.to_str().unwrap(), "run", "--once"]).env("ESURETY_TEST_NOW", common::NOW);
        if let Some(t) = token {
            c.env("ESURETY_REGISTRY_TOKEN", t);
        }
        let t = Instant::now();
        let out = c.output().unwrap();
        let took = t.elapsed().as_secs_f64() * 1000.0;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (took, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    deliver(&dir, "local");
    let (local, said) = pass(&config_path, None);
    assert!(said.contains("submissions 100 (pairs accepted 100"), "{said}");
    deliver(&owner, "remote");
    let (remote, said) = pass(&owner.join("esurety.toml"), Some(&tokens[0]));
    assert!(said.contains("submissions 100 (pairs accepted 100"), "{said}");
    println!("owner pass of 100 submissions (`run --once`, start to exit): in process {local:.0} ms, through the remote registry {remote:.0} ms, ratio {:.2}", remote / local);
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}

/// Runs CLIENTS threads for `seconds`, each on one keep-alive connection, asking what
/// `ask(client, i)` gives (number, key, token, X-Forwarded-For); counts answers that
/// contain `expect`, with each request's time; the rest are counted as other answers.
fn load(addr: &str, seconds: u64, ask: impl Fn(usize, usize) -> (String, String, String, Option<String>) + Send + Sync + 'static, expect: &'static str) -> (usize, Vec<Duration>, usize) {
    let ask = Arc::new(ask);
    let end = Instant::now() + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..CLIENTS).map(|c| {
        let (ask, addr) = (ask.clone(), addr.to_string());
        std::thread::spawn(move || {
            let mut conn = TcpStream::connect(&addr).unwrap();
            conn.set_nodelay(true).unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut ok, mut other, mut times) = (0usize, 0usize, Vec::new());
            let mut i = 0;
            while Instant::now() < end {
                let (number, key, token, xff) = ask(c, i);
                i += 1;
                let body = format!("{{\"number\":\"{number}\",\"key\":\"{key}\"}}");
                let xff = xff.map(|a| format!("X-Forwarded-For: {a}\r\n")).unwrap_or_default();
                let req = format!("POST /api/v1/verify HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{xff}Content-Length: {}\r\n\r\n{body}", body.len());
                let t = Instant::now();
                conn.write_all(req.as_bytes()).unwrap();
                let mut length = 0;
                let mut status = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if status.is_empty() {
                        status = line.clone();
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                times.push(t.elapsed());
                if status.contains(" 200 ") && String::from_utf8_lossy(&body).contains(expect) {
                    ok += 1;
                } else {
                    other += 1;
                }
            }
            (ok, other, times)
        })
    }).collect();
    let (mut ok, mut other, mut times) = (0, 0, Vec::new());
    for h in handles {
        let (o, x, t) = h.join().unwrap();
        ok += o;
        other += x;
        times.extend(t);
    }
    (ok, times, other)
}
