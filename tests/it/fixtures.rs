//! Golden fixtures: every `tests/fixtures/applications/{valid,invalid,malformed}/NNN.eml`
//! is dropped into its branch mailbox of a fresh embedded default and processed; what the
//! contractor and staff would observe is summarised and compared with `NNN.expected.json`.
//! On a mismatch the observed summary is written to `NNN.failed` beside it.

use crate::common::Setup;
use serde_json::{Value, json};
use std::path::Path;

/// What a user can observe after one pass, as JSON comparable to the expected file.
fn observe(s: &Setup, mailbox: &str, sender: Option<&str>, uid: &str) -> Value {
    let certs = s.json(&["certificates"]);
    let certs: Vec<String> = certs.as_array().unwrap().iter().map(|c| format!("{}/{}", c["product"].as_str().unwrap(), c["format"].as_str().unwrap())).collect();
    let replies = sender.map(|a| s.mails(a)).unwrap_or_default();
    let relay = s.mails("relay");
    let flags = s.files(mailbox).into_iter().find(|(u, _, _)| u == uid).map(|(_, f, _)| f).unwrap_or_default();
    let outcome = match replies.first().map(|m| m.subject.as_str()) {
        None if flags.contains('F') && relay.is_empty() => "held",
        None => "no reply",
        Some(sub) if sub.starts_with("電子保証（認証キー）発行完了のお知らせ") || sub.starts_with("保証申込受付のお知らせ") => "issued",
        Some(sub) if sub.starts_with("【要確認】保証申込の内容に不備があります") => "rejected",
        Some(sub) if sub.starts_with("保証申込書（様式）") => "form_sent",
        Some(sub) if sub.starts_with("【要確認】変更申込の内容に不備があります") => "change_rejected",
        Some(_) => "other reply",
    };
    // One message, one answer: never a second reply beside the one summarised here.
    assert!(replies.len() <= 1, "{mailbox} {uid}: {} replies ({:?})", replies.len(), replies.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let mut v = json!({"mailbox": mailbox, "outcome": outcome});
    if outcome == "issued" {
        v["certificates"] = json!(certs);
    }
    if outcome == "rejected" || outcome == "change_rejected" {
        // The problem lines of the reply: "・<field>：<what is wrong>".
        let body = &replies[0].body;
        let section = body.split("【ご確認いただきたい点】").nth(1).unwrap_or("").split("\n\n").next().unwrap_or("");
        let fields: Vec<String> = section.lines().filter_map(|l| l.strip_prefix("・")).map(|l| l.split('：').next().unwrap_or("").to_string()).collect();
        if !fields.is_empty() && fields != ["申込書"] {
            v["fields"] = json!(fields);
        }
    }
    v
}

/// Before each fixture of `intermediate/`: 35075-00001M (前払金保証) and 00002K issued to
/// 丸一建設 (valid/001.eml), the completion mail read and put away, and the fixture then
/// processed on a later day (after the middle of the works).
fn advance_issued(s: &Setup) {
    s.drop_mail("kanagawa@ejcs.example", &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications/valid/001.eml")).unwrap());
    s.once();
    for sub in ["new", "cur"] {
        for e in std::fs::read_dir(s.maildir("soumu@maruichi.example").join(sub)).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}

fn check_dir(kind: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(kind);
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(|e| {
        let p = e.unwrap().path();
        (p.extension()? == "eml").then_some(p)
    }).collect();
    names.sort();
    assert!(!names.is_empty(), "no fixtures in {}", dir.display());
    let mut failures = vec![];
    for eml in names {
        let expected: Value = serde_json::from_str(&std::fs::read_to_string(eml.with_extension("expected.json")).unwrap()).unwrap();
        let mailbox = expected["mailbox"].as_str().unwrap();
        let raw = std::fs::read(&eml).unwrap();
        let sender = mail_parser::MessageParser::default().parse(&raw)
            .and_then(|m| m.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_ascii_lowercase));
        let s = Setup::new();
        if kind == "intermediate" {
            advance_issued(&s);
        }
        let uid = s.drop_mail(mailbox, &raw);
        if kind == "intermediate" || kind == "bid_bond" {
            let out = s.cmd().env("ESURETY_TEST_NOW", "2026-12-10T10:00:00+09:00").args(["run", "--once"]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        } else {
            s.once();
        }
        let mut got = observe(&s, mailbox, sender.as_deref().filter(|a| s.maildir(a).is_dir()), &uid);
        // Compare problem fields as sets: their order follows the form.
        if let (Some(g), Some(e)) = (got.get("fields").cloned(), expected.get("fields")) {
            let mut gs: Vec<_> = g.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
            let mut es: Vec<_> = e.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
            gs.sort();
            gs.dedup();
            es.sort();
            if gs == es {
                got["fields"] = e.clone();
            }
        }
        let failed = eml.with_extension("failed");
        if got != expected {
            std::fs::write(&failed, serde_json::to_string_pretty(&got).unwrap()).unwrap();
            failures.push(format!("{}: expected {expected}, got {got}", eml.display()));
        } else {
            let _ = std::fs::remove_file(&failed);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_applications_are_issued() {
    check_dir("valid");
}

#[test]
fn invalid_applications_get_every_problem_in_one_reply() {
    check_dir("invalid");
}

/// 中間前払金保証: UTF-8, ISO-2022-JP, the form in a Shift_JIS attachment; issued
/// (electronic and paper) and refused by its rules.
#[test]
fn intermediate_applications_are_issued_or_get_every_problem_in_one_reply() {
    check_dir("intermediate");
}

/// 契約保証予約: UTF-8, ISO-2022-JP, the form in a Shift_JIS attachment; issued on paper,
/// and refused by its rules (電子保証, an owner without bid bonds, a past bid, the amounts,
/// a missing field and the wrong branch). Processed on 令和8年12月10日.
#[test]
fn bid_bond_applications_are_issued_or_get_every_problem_in_one_reply() {
    check_dir("bid_bond");
}

#[test]
fn malformed_mail_gets_a_clear_outcome() {
    check_dir("malformed");
}
