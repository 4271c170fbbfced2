//! The application form and the change form: any text → RawApplication / RawChange →
//! the rules (R1–R10) against the embedded default's parties. Must never panic.
#![no_main]
use esurety::branch::application::{Sender, change, form, validate};
use esurety::config::{Config, RawConfig, default::DEFAULT_CONFIG};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::from_raw(toml::from_str::<RawConfig>(DEFAULT_CONFIG).unwrap(), std::path::Path::new("x/esurety.toml")).unwrap()
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let raw = form::parse(&text);
    let branch = &CONFIG.branches[0];
    let sender = Sender { from: "soumu@maruichi.example".into(), envelope: None };
    let _ = validate(&raw, &CONFIG, branch, &sender, &Vec::<(String, String)>::new());
    let _ = change::parse(&text);
    let _ = esurety::owner::submission::find::pairs(&text, "body");
    let _ = esurety::domain::certificate_numbers(&text);
});
