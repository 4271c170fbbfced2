//! Every input a fuzzer found a crash or hang with (`tests/fixtures/fuzz/`) goes through
//! what it broke — the form and change parsers, the rules, the pair finder, the MIME walk,
//! the PDF reader — and must come back; and a bug on one message (a panic) gives that
//! message an outcome while the pass goes on.

use crate::common::{Setup, application};
use esurety::branch::application::{Sender, change, form, validate};
use esurety::config::{Config, RawConfig, default::DEFAULT_CONFIG};
use std::path::Path;

#[test]
fn every_input_the_fuzzers_broke_on_is_handled_now() {
    let config = Config::from_raw(toml::from_str::<RawConfig>(DEFAULT_CONFIG).unwrap(), Path::new("x/esurety.toml")).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&data);
        let raw = form::parse(&text);
        let sender = Sender { from: "soumu@maruichi.example".into(), envelope: None };
        let _ = validate(&raw, &config, &config.branches[0], &sender, &Vec::<(String, String)>::new());
        let _ = change::parse(&text);
        let _ = esurety::owner::submission::find::pairs(&text, "body");
        let _ = esurety::domain::certificate_numbers(&text);
        if let Ok(letter) = esurety::intake::letter::read(&data) {
            for (_, t) in letter.texts() {
                let _ = esurety::owner::submission::find::pairs(t, "body");
            }
        }
        let _ = esurety::owner::submission::pdf::read(&data);
        n += 1;
    }
    assert!(n >= 1, "the regression fixtures are there");
}

#[test]
fn a_bug_on_one_message_gives_it_an_outcome_and_the_pass_goes_on() {
    let s = Setup::new();
    s.drop_mail("kanagawa@ejcs.example", &application(1));
    s.drop_mail("kanagawa@ejcs.example", &application(2));
    let out = s.cmd().args(["run", "--once"]).env("ESURETY_PANIC_ON", "<app-1@maruichi.example>").output().unwrap();
    assert!(out.status.success(), "the pass went on: {}", String::from_utf8_lossy(&out.stderr));
    let replies: Vec<String> = s.mails("soumu@maruichi.example").into_iter().map(|m| m.in_reply_to.unwrap_or_default()).collect();
    assert_eq!(replies, ["<app-2@maruichi.example>"]);
    let held = s.json(&["staff", "held"]);
    let h = &held.as_array().unwrap()[0];
    assert_eq!(h["message_id"], "<app-1@maruichi.example>");
    assert!(h["reason"].as_str().unwrap().contains("internal error"), "{h}");
    assert!(s.json(&["certificates"]).as_array().unwrap().len() == 2, "nothing half-written for the first");
}

#[test]
fn a_bug_while_typesetting_one_application_of_a_batch_holds_it_and_issues_the_others() {
    // The pass typesets one application while it records the next; a failure there rolls
    // the batch back and does it again one message at a time.
    let s = Setup::new();
    for n in 1..=3 {
        s.drop_mail("kanagawa@ejcs.example", &application(n));
    }
    let out = s.cmd().args(["run", "--once"]).env("ESURETY_PANIC_ON", "typesetting:<app-2@maruichi.example>").output().unwrap();
    assert!(out.status.success(), "the pass went on: {}", String::from_utf8_lossy(&out.stderr));
    let mut replies: Vec<String> = s.mails("soumu@maruichi.example").into_iter().map(|m| m.in_reply_to.unwrap_or_default()).collect();
    replies.sort();
    assert_eq!(replies, ["<app-1@maruichi.example>", "<app-3@maruichi.example>"]);
    let held = s.json(&["staff", "held"]);
    assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
    assert_eq!(held[0]["message_id"], "<app-2@maruichi.example>");
    assert!(held[0]["reason"].as_str().unwrap().contains("internal error"), "{held}");
    let certificates = s.json(&["certificates"]);
    assert_eq!(certificates.as_array().unwrap().len(), 4, "two for each mailed application, none for the held one: {certificates}");
    // Numbers were not used up by the rolled-back attempt: they follow on.
    let mut numbers: Vec<String> = certificates.as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap().to_string()).collect();
    numbers.sort();
    assert_eq!(numbers, ["35075-00001M", "35075-00002K", "35075-00003M", "35075-00004K"]);
}
