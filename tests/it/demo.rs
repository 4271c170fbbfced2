//! `esurety demo`, the README's first command: the whole story runs across the company's
//! deployment and the water authority's own, and at the most verbose log level no issued
//! key (nor the registry token) appears in anything it prints.

use crate::common::{key_in, pdf_text};
use std::process::Command;

#[test]
fn the_demo_tells_the_whole_story_without_printing_a_key() {
    let tmp = esurety::testing::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_esurety")).arg("demo").arg(&dir).env("ESURETY_LOG", "trace").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let said = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for step in ["issued 4, rejected 1, held 1", "submissions 6 (pairs accepted 5, rejected 0), other mail left alone 1",
                 "35075-00003C  中間前払金保証  電子保証  10,000,000 円（前払金保証 35075-00001M、認定 令和8年11月20日）", "[accepted] 神奈川県内広域水道企業団 企業長  35075-00003C", "[accepted] 神奈川県内広域水道企業団 企業長  35075-00001M",
                 "[unchecked] 神奈川県内広域水道企業団 企業長  27075-00012M", "[unchecked] 神奈川県内広域水道企業団 企業長  T2026-0034471", "5 件の確認（valid 5、mismatch 0",
                 // A 予約証書 waiting to be printed, and a contractor's list by email.
                 "08075-00002Y  契約保証予約  証書(紙)  6,000,000 円（入札日 ", "予約手数料 3,300 円（うち消費税 300 円）", "08075-00002Y  契約保証予約  取手興業株式会社  取手駅西口広場整備工事",
                 "「保証契約一覧（Re: 保証契約一覧の送付のお願い）」", "3 件", "■ 35075-00003C　中間前払金保証（電子保証）　有効",
                 // A 変更 and a 取消 reach the water authority by webhook and by mail, once each.
                 "Webhook 35075-00001M 変更 → 神奈川県内広域水道企業団 企業長: 届きました（1 回目）", "Webhook 35075-00002K 取消 → 神奈川県内広域水道企業団 企業長: 届きました（1 回目）",
                 "→ keiyaku@kwsa.example「【電子保証】保証契約の状態の変更（35075-00002K）」", "companies' notices of events registered 2",
                 "35075-00001M  変更 → 現在の状態 有効（東日本建設業保証株式会社、最初に届いた経路: Webhook）", "35075-00002K  取消 → 現在の状態 取消（東日本建設業保証株式会社、最初に届いた経路: Webhook）"] {
        assert!(stdout.contains(step), "{step} in:\n{stdout}");
    }
    let reservation = pdf_text(&std::fs::read(dir.join("print/契約保証予約証書_08075-00002Y.pdf")).expect("the 予約証書, printable"));
    assert!(reservation.contains("契約保証予約証書") && reservation.contains("取手駅西口広場整備工事"), "{reservation}");
    let csv = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "csv")).expect("the list's CSV");
    let csv = std::fs::read(csv).unwrap();
    assert!(csv.starts_with(&[0xEF, 0xBB, 0xBF]) && String::from_utf8_lossy(&csv).contains("35075-00003C"), "UTF-8 with BOM, the list's rows");
    assert!(said.contains("event=\"checked\"") || said.contains("checked"), "trace logs were on");
    let mut keys = vec![];
    for e in std::fs::read_dir(dir.join("pdfs")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("認証キーのお知らせ") {
            keys.push(key_in(&pdf_text(&std::fs::read(&p).unwrap())).unwrap());
        }
    }
    assert_eq!(keys.len(), 6, "six electronic certificates (the 中間前払金保証 too), six notices");
    // And no listing of the store prints one either, logs on.
    let mut listings = String::new();
    let (company, owner) = (dir.join("company/esurety.toml"), dir.join("water-authority/esurety.toml"));
    for (config, args) in [(&company, &["certificates", "--json"][..]), (&owner, &["submissions", "--json"]), (&company, &["outbox", "--json"]), (&owner, &["outbox", "--json"]),
                           (&company, &["staff", "list", "--json"]), (&company, &["staff", "actions", "--json"]), (&company, &["certificate", "35075-00001M", "--json"]), (&company, &["token", "list", "--json"])] {
        let o = Command::new(env!("CARGO_BIN_EXE_esurety")).arg("--config").arg(config).args(args).env("ESURETY_LOG", "trace").output().unwrap();
        assert!(o.status.success(), "{args:?}");
        listings += &String::from_utf8_lossy(&o.stdout);
        listings += &String::from_utf8_lossy(&o.stderr);
    }
    assert!(listings.contains("35075-00001M") && listings.contains("\"result\": \"unchecked\"") && listings.contains("西日本建設業保証株式会社"));
    assert!(!said.contains("esr_") && !listings.contains("esr_"), "the demo's registry token is never printed");
    assert!(!said.contains("whsec_") && !listings.contains("whsec_"), "nor the webhook secret");
    assert!(listings.contains("\"kind\": \"cancelled\""), "the water authority's register carries the events: {listings}");
    for k in keys {
        assert!(!said.contains(&k), "key {k} printed by the demo");
        assert!(!listings.contains(&k), "key {k} printed by a listing");
    }
}

/// The demo's PDFs are signed by the demo company and timestamped by the demo's
/// timestamp authority; pdfsig and pyHanko say so, trusting the two demo certificates the
/// demo writes; the water authority registers each forwarded PDF's signature as valid.
#[test]
fn the_demos_pdfs_are_signed_and_timestamped_and_the_water_authority_checks_them() {
    let tmp = esurety::testing::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_esurety")).arg("demo").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("デモ用の時刻認証局"), "{stdout}");
    let (signer, tsa) = (dir.join("company/signing-chain.pem"), dir.join("company/demo-tsa.pem"));
    let pades = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/pades.sh");
    let mut looked = 0;
    for e in std::fs::read_dir(dir.join("pdfs")).unwrap() {
        let p = e.unwrap().path();
        let report = Command::new(&pades).arg("pyhanko-pretty").arg(&p).arg(&signer).arg(&tsa).output().unwrap();
        let report = String::from_utf8_lossy(&report.stdout);
        assert!(report.contains("The signature is judged VALID") && report.contains("esurety DEMO timestamp authority"), "{}: {report}", p.display());
        let pdfsig = Command::new(&pades).arg("pdfsig").arg(&p).arg(&signer).output().unwrap();
        let pdfsig = String::from_utf8_lossy(&pdfsig.stdout);
        assert!(pdfsig.contains("Signature is Valid.") && pdfsig.contains("Certificate is Trusted.") && pdfsig.contains("Total document signed"), "{}: {pdfsig}", p.display());
        looked += 1;
    }
    assert!(looked >= 12, "every mailed PDF looked at: {looked}");
    // Five pairs accepted from forwarded PDFs and typed text: the PDFs' signatures valid.
    assert!(stdout.matches("電子署名：有効").count() >= 4, "{stdout}");
    assert!(!stdout.contains("電子署名：改変あり") && !stdout.contains("確認できない発行元"), "{stdout}");
}
