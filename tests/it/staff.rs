//! What the staff get by mail: the daily digest with the day's figures, once per period.

use crate::common::Setup;
use std::path::Path;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/applications").join(path)).unwrap()
}

/// The embedded default with a staff address for the 神奈川 branch.
fn with_branch_staff() -> Setup {
    let s = Setup::new();
    let config = std::fs::read_to_string(s.config()).unwrap().replace(
        "address = \"kanagawa@ejcs.example\"",
        "address = \"kanagawa@ejcs.example\"\nstaff_address = \"kanagawa-staff@ejcs.example\"",
    );
    std::fs::write(s.config(), config).unwrap();
    s
}

#[test]
fn the_branch_staff_get_a_digest_of_the_day_once() {
    let s = with_branch_staff();
    s.drop_mail("kanagawa@ejcs.example", &fixture("valid/001.eml"));
    s.drop_mail("kanagawa@ejcs.example", &fixture("invalid/105.eml"));
    s.drop_mail("kanagawa@ejcs.example", &fixture("malformed/201.eml"));
    s.once();
    let out = s.run_ok(&["digest"]);
    assert!(out.contains("1 digest(s) written"), "{out}");
    let staff: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["kanagawa-staff@ejcs.example"]).collect();
    assert_eq!(staff.len(), 1);
    let d = &staff[0];
    assert!(d.subject.starts_with("【esurety】日次報告 神奈川支店"), "{}", d.subject);
    for line in ["受け付けたメール　　　　　：3 件", "発行　　　　　　　　　　　：1 件", "不備のため返信　　　　　　：1 件", "職員の確認待ちとして保留　：1 件", "現在、確認を待っているもの：1 件", "送信できなかったメール　　：0 件"] {
        assert!(d.body.contains(line), "{line} in:\n{}", d.body);
    }
    // Again at the same moment: that period's digest is written already.
    assert!(s.run_ok(&["digest"]).contains("0 digest(s) written"));
    // The next day's covers only what came after the first.
    let next = s.cmd().args(["digest"]).env("ESURETY_TEST_NOW", "2026-07-05T08:00:00+09:00").output().unwrap();
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    let staff: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["kanagawa-staff@ejcs.example"]).collect();
    assert_eq!(staff.len(), 2);
    assert!(staff[1].body.contains("受け付けたメール　　　　　：0 件") && staff[1].body.contains("現在、確認を待っているもの：1 件"), "{}", staff[1].body);
}

/// The daemon on the default schedule, a second before 08:00:00 (when the poll, the outbox
/// sweep and the digest are all due): the staff get their digest.
#[test]
fn the_daemon_sends_the_digest_due_at_the_same_second_as_the_poll() {
    let s = with_branch_staff();
    let mut d = s.cmd().args(["run"]).env("ESURETY_TEST_NOW", "2026-07-04T07:59:59+09:00")
        .stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let started = std::time::Instant::now();
    let digests = || s.mails("relay").into_iter().filter(|m| m.to == ["kanagawa-staff@ejcs.example"]).count();
    // The fixed clock stands at 07:59:59, so the jobs due at 08:00:00 come every second.
    while digests() == 0 && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    d.kill().unwrap();
    d.wait().unwrap();
    assert!(digests() >= 1, "the digest due at 08:00:00 was sent");
}

#[test]
fn the_digest_links_to_the_desk_when_the_web_says_where_it_is() {
    let s = with_branch_staff();
    s.edit_config(|t| t + "\n[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://esurety.ejcs.example/\"\n");
    s.drop_mail("kanagawa@ejcs.example", &fixture("valid/001.eml"));
    s.once();
    s.run_ok(&["digest"]);
    let staff: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["kanagawa-staff@ejcs.example"]).collect();
    assert!(staff[0].body.contains("デスクで確認・操作できます：https://esurety.ejcs.example/desk/"), "{}", staff[0].body);
}

#[test]
fn the_owners_digest_counts_what_waits_for_a_person() {
    let s = Setup::new();
    s.edit_config(|t| t.replace("contracts_address = \"keiyaku@kwsa.example\"", "contracts_address = \"keiyaku@kwsa.example\"\nstaff_address = \"kwsa-staff@kwsa.example\""));
    s.drop_mail("keiyaku@kwsa.example", &esurety::demo::contractor::other_surety("soumu@maruichi.example", "keiyaku@kwsa.example"));
    s.once();
    s.run_ok(&["digest"]);
    let staff: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["kwsa-staff@kwsa.example"]).collect();
    assert_eq!(staff.len(), 1);
    assert!(staff[0].body.contains("担当者確認　：1 件") && staff[0].body.contains("担当者の確認を待っている提出が 1 件"), "{}", staff[0].body);
    assert!(!staff[0].body.contains("デスクで確認"), "no [web] public_url, no link");
}

/// Many callers' wrong keys on one number lock nobody but each caller; the branch's staff
/// are told in their digest which of their numbers drew them, with how many.
#[test]
fn the_branch_digest_names_the_numbers_strangers_guessed_at() {
    let s = with_branch_staff();
    s.drop_mail("kanagawa@ejcs.example", &fixture("valid/001.eml"));
    s.once();
    for i in 0..20 {
        s.drop_mail("keiyaku@kwsa.example", &crate::support::typed(&format!("guess{i}@stranger{i}.example"), "keiyaku@kwsa.example", &format!("<guess-{i}@stranger.example>"), "35075-00001M", "CDEF34679HJK"));
    }
    for i in 0..3 {
        s.drop_mail("keiyaku@kwsa.example", &crate::support::typed(&format!("slip{i}@stranger.example"), "keiyaku@kwsa.example", &format!("<slip-{i}@stranger.example>"), "35075-00002K", "CDEF34679HJK"));
    }
    s.once();
    s.run_ok(&["digest"]);
    let staff: Vec<_> = s.mails("relay").into_iter().filter(|m| m.to == ["kanagawa-staff@ejcs.example"]).collect();
    assert_eq!(staff.len(), 1);
    assert!(staff[0].body.contains("確認の失敗が続いた保証契約番号"), "{}", staff[0].body);
    assert!(staff[0].body.contains("35075-00001M　20 回"), "{}", staff[0].body);
    assert!(!staff[0].body.contains("35075-00002K"), "three slips are not a siege: {}", staff[0].body);
}
