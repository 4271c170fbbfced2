//! What the benchmarks share: an embedded default in a temp dir with the first sample
//! application issued, so there is a real certificate, key and key notice to work on.
#![allow(dead_code)]

use esurety::clock::{Clock, FixedClock, SeededRandom};
use esurety::branch::documents::DocumentKind;
use esurety::domain::{AuthKey, Certificate};
use esurety::engine::Engine;
use esurety::store::Store;
use std::time::Duration;

pub const NOW: &str = "2026-07-04T10:00:00+09:00";

pub struct Issued {
    pub _tmp: esurety::testing::TempDir,
    pub dir: std::path::PathBuf,
    pub engine: Engine,
    pub store: Store,
    pub cert: Certificate,
    pub key: Option<AuthKey>,
    pub clock: FixedClock,
}

impl Issued {
    pub fn new() -> Issued {
        let tmp = esurety::testing::tempdir().unwrap();
        let dir = tmp.path().join("bench");
        let config = esurety::config::default::init(&dir).unwrap();
        let md = esurety::intake::maildir::Maildir::new(config.mail.maildir_root.join("kanagawa@ejcs.example"));
        md.deliver("1.bench", esurety::demo::SAMPLES[0].2).unwrap();
        let clock = FixedClock::parse(NOW).unwrap();
        let rng = SeededRandom::new(1);
        let mut store = Store::open(&config.store).unwrap();
        let engine = Engine::new(config).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut adapters = engine.adapters(rt.handle()).unwrap();
        esurety::daemon::pass::run_once(&engine, &mut store, &mut adapters, &clock, &rng).unwrap();
        let cert = store.certificate("35075-00001M").unwrap().expect("issued by the pass").latest;
        let key = store.key_of("35075-00001M", &engine.secrets).unwrap();
        Issued { _tmp: tmp, dir, engine, store, cert, key, clock }
    }

    pub fn render(&self, kind: DocumentKind) -> Vec<u8> {
        self.engine.documents.render(kind, &self.engine.config, &self.cert, self.key.as_ref(), self.clock.now()).unwrap()
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.join("esurety.toml")
    }
}

/// A different certificate of the same shape: its own number, key and 工事名, as the
/// daemon typesets them one after another.
pub fn variant(cert: &Certificate, i: usize, rng: &dyn esurety::clock::Random) -> (Certificate, AuthKey) {
    let mut c = cert.clone();
    c.number = format!("35075-{:05}{}", 10_000 + i, c.product.letter());
    c.project = format!("{}（第{i}工区）", c.project);
    c.amount += (i as u64 % 97) * 10_000;
    (c, AuthKey::generate(rng))
}

/// Median, p90 and p99 in milliseconds.
pub fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(v[((v.len() as f64 * q) as usize).min(v.len() - 1)]);
    (at(0.5), at(0.9), at(0.99))
}

/// Fills `store` with `n` certificates copied from `template` through esurety's own insert,
/// 10,000 per transaction, numbered from office 99001 on (so they never meet real ones);
/// returns a spread of about 10,000 (number, key) pairs among them.
pub fn fill(store: &mut esurety::store::Store, template: &Certificate, app_id: i64, n: usize, secrets: &esurety::secrets::Secrets) -> Vec<(String, AuthKey)> {
    use esurety::clock::Clock;
    let clock = esurety::clock::FixedClock::parse(NOW).unwrap();
    let rng = esurety::clock::SeededRandom::new(7);
    let mut sample = Vec::new();
    let batch = 10_000;
    for start in (0..n).step_by(batch) {
        store.write(|tx| -> Result<(), esurety::store::StoreError> {
            for i in start..(start + batch).min(n) {
                let mut c = template.clone();
                c.office_code = format!("{:05}", 99_001 + i / 99_999);
                c.number = format!("{}-{:05}M", c.office_code, i % 99_999 + 1);
                c.project = format!("{}（第{i}工区）", template.project);
                let key = AuthKey::generate(&rng);
                let mut salt = [0u8; 16];
                esurety::clock::Random::fill(&rng, &mut salt);
                if i % (n / 10_000).max(1) == 0 {
                    sample.push((c.number.clone(), key.clone()));
                }
                let works = format!("bench|{i}");
                tx.insert_certificate(&esurety::domain::Issued { certificate: c, key: Some(key), issued_at: clock.now() }, &works, app_id, None, &salt, secrets, &rng)?;
            }
            Ok(())
        }).unwrap();
    }
    sample
}
