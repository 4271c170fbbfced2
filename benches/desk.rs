//! The staff desk's pages (issue 15: each ≤ 50 ms on the embedded default with 10,000
//! certificates): `esurety serve` (release, its own process) on a store of 10,000
//! certificates, an admin logged in over HTTP, each page asked 50 times over one
//! keep-alive connection; median, p99 and max per page. `cargo bench --bench desk`;
//! `ESURETY_BENCH_CERTIFICATES` changes the count.

mod common;

use esurety::store::Store;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::var("ESURETY_BENCH_CERTIFICATES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let issued = common::Issued::new();
    let template = issued.cert.clone();
    let store_path = issued.engine.config.store.file().unwrap().to_path_buf();
    let config_path = issued.config_path();
    let app_id: i64 = rusqlite::Connection::open(&store_path).unwrap().query_row("SELECT id FROM applications LIMIT 1", [], |r| r.get(0)).unwrap();
    let secrets = esurety::secrets::Secrets::load(&issued.engine.config.secret_file).unwrap();
    drop(issued.store);
    let mut store = Store::open_file(&store_path).unwrap();
    let sample = common::fill(&mut store, &template, app_id, n, &secrets);
    let hash = esurety::desk::users::hash_password("bench password 123", &esurety::clock::OsRandom).unwrap();
    store.write(|tx| tx.add_user("bench", &hash, &["admin".to_string()], common::NOW)).unwrap();
    drop(store);
    let mut text = std::fs::read_to_string(&config_path).unwrap();
    text += "\n[web]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(&config_path, text).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_esurety")).args(["--config", config_path.to_str().unwrap(), "serve"])
        .env("ESURETY_TEST_NOW", common::NOW).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next().expect("serve prints its address").unwrap();
        if let Some(u) = l.split("listening on http://").nth(1) {
            break u.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let mut c = Conn::new(&addr);
    let (_, headers, body) = c.ask("GET", "/desk/login", "", "");
    let login_cookie = cookie(&headers, "esurety_login");
    let csrf = body.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (st, headers, _) = c.ask("POST", "/desk/login", &login_cookie, &format!("name=bench&password=bench+password+123&csrf={csrf}"));
    assert_eq!(st, 303);
    let session = cookie(&headers, "esurety_desk");
    let one = &sample[sample.len() / 2].0;
    let pages = ["/desk/".to_string(), "/desk/held".into(), "/desk/paper".into(), "/desk/failed".into(), "/desk/certificates".into(),
                 "/desk/certificates?q=%E7%AC%AC5000%E5%B7%A5%E5%8C%BA".into(), format!("/desk/certificates/{one}"), "/desk/submissions".into(), "/desk/actions".into()];
    println!("desk pages, {n} certificates, 50 requests each over one keep-alive connection (target ≤ 50 ms):");
    for p in &pages {
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            let (st, _, body) = c.ask("GET", p, &session, "");
            times.push(t.elapsed());
            assert_eq!(st, 200, "{p}: {body}");
        }
        let max = times.iter().max().copied().unwrap_or(Duration::ZERO);
        let (p50, _, p99) = common::percentiles(times);
        println!("  {p:<45} median {p50:6.2} ms  p99 {p99:6.2} ms  max {:6.2} ms", max.as_secs_f64() * 1000.0);
    }
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}

fn cookie(headers: &[(String, String)], name: &str) -> String {
    headers.iter().filter(|(k, _)| k == "set-cookie").filter_map(|(_, v)| v.split(';').next()).find(|c| c.starts_with(&format!("{name}="))).unwrap().to_string()
}

struct Conn {
    addr: String,
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        let w = TcpStream::connect(addr).unwrap();
        w.set_nodelay(true).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Conn { addr: addr.to_string(), w, r }
    }

    fn ask(&mut self, method: &str, path: &str, cookie: &str, form: &str) -> (u16, Vec<(String, String)>, String) {
        let cookie = if cookie.is_empty() { String::new() } else { format!("Cookie: {cookie}\r\n") };
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}", self.addr, form.len());
        self.w.write_all(req.as_bytes()).unwrap();
        let mut status = 0;
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            if status == 0 {
                status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                continue;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse().unwrap();
                }
                headers.push((k, v));
            }
        }
        let mut body = vec![0u8; length];
        self.r.read_exact(&mut body).unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }
}
