//! `esurety demo`: the whole story on the embedded default, told to a person. Writes the
//! demo parties into a folder, drops the sample applications of `mailboxes/` into the
//! branch Maildirs, runs a pass; then each contractor hands its key notice to the owner
//! (see [`contractor`]), a second pass checks them on the owner side; and it prints what
//! happened at each step and where the PDFs are.

pub mod contractor;

use crate::clock::{Clock, Random};
use crate::intake::letter::{self, Piece};
use crate::intake::maildir::Maildir;
use crate::wiring::Engine;
use crate::store::Store;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The sample mail: (branch mailbox, file name, bytes).
pub const SAMPLES: &[(&str, &str, &[u8])] = &[
    ("kanagawa@ejcs.example", "01-maruichi-kwsa.eml", include_bytes!("../../mailboxes/kanagawa@ejcs.example/01-maruichi-kwsa.eml")),
    ("ibaraki@ejcs.example", "02-toride-kogyo.eml", include_bytes!("../../mailboxes/ibaraki@ejcs.example/02-toride-kogyo.eml")),
    ("nagano@ejcs.example", "03-maruichi-komagane.eml", include_bytes!("../../mailboxes/nagano@ejcs.example/03-maruichi-komagane.eml")),
    ("nagano@ejcs.example", "04-maruichi-tozai-paper.eml", include_bytes!("../../mailboxes/nagano@ejcs.example/04-maruichi-tozai-paper.eml")),
    ("kanagawa@ejcs.example", "05-sanwa-problems.eml", include_bytes!("../../mailboxes/kanagawa@ejcs.example/05-sanwa-problems.eml")),
    ("shizuoka@ejcs.example", "06-unknown-sender.eml", include_bytes!("../../mailboxes/shizuoka@ejcs.example/06-unknown-sender.eml")),
];

pub fn run(dir: Option<PathBuf>, clock: &dyn Clock, rng: &dyn Random) -> Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("esurety-demo-{}-{}", clock.now().format("%Y%m%d-%H%M%S"), std::process::id())),
    };
    let config = crate::config::default::init(&dir)?;
    println!("esurety demo — {}\n", dir.display());
    println!("1. 支店のメールボックスに保証申込のメールが届きます");
    for (i, (mailbox, name, bytes)) in SAMPLES.iter().enumerate() {
        let md = Maildir::new(config.mail.maildir_root.join(mailbox));
        md.deliver(&format!("{}.demo{:02}.esurety", clock.now().timestamp(), i + 1), bytes)?;
        let l = letter::read(bytes).ok();
        println!("   {name:<28} {} → {mailbox}  「{}」", l.as_ref().and_then(|l| l.from.clone()).unwrap_or_default(), l.map(|l| l.subject).unwrap_or_default());
    }

    let _lock = crate::daemon::lock(&config)?;
    let mut store = Store::open(&config.store)?;
    let engine = Engine::new(config)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut adapters = engine.adapters(rt.handle())?;
    let report = engine.run_once(&mut store, &mut adapters, clock, rng)?;
    println!("\n2. esurety run --once: {}\n", crate::daemon::summary(&report));

    println!("3. 申込ごとの結果");
    let pdf_dir = dir.join("pdfs");
    for m in store.messages()? {
        let l = letter::read(&m.raw).ok();
        let from = l.as_ref().and_then(|l| l.from.clone()).unwrap_or_default();
        println!("   [{}] {} から {} 宛: {}", m.outcome.map_or("-", |o| o.as_str()), from, m.mailbox, describe(m.outcome.map(|o| o.as_str()), m.detail.as_deref()));
    }

    println!("\n4. 送信したメールと添付PDF");
    for row in store.outbox()? {
        println!("   {} → {}  「{}」", row.status, row.recipients.join(", "), row.subject);
        let raw = as_delivered(&engine.config.mail.maildir_root, &row);
        let Ok(l) = letter::read(&raw) else { continue };
        for p in l.pieces {
            if let Piece::Pdf { name: Some(name), bytes, .. } = p {
                std::fs::create_dir_all(&pdf_dir)?;
                let path = pdf_dir.join(&name);
                std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
                println!("       {}", path.display());
            }
        }
    }

    println!("\n5. 発行した保証（esurety --config {} certificates）", engine.config.path.display());
    for c in store.certificates()? {
        println!("   {}  {}  {}  {}  {}", c.number, c.latest.product.name(), c.latest.format.name(), c.latest.contractor, c.latest.project);
    }

    println!("\n6. 受注者が認証キーのお知らせを発注者に提出します");
    let mut n = 0;
    for row in store.outbox()?.into_iter().filter(|r| r.kind == "completion") {
        let raw = as_delivered(&engine.config.mail.maildir_root, &row);
        let Ok(l) = letter::read(&raw) else { continue };
        let notices: Vec<(String, Vec<u8>)> = l.pieces.iter().filter_map(|p| match p {
            Piece::Pdf { name: Some(name), bytes, .. } if name.starts_with("認証キーのお知らせ") => Some((name.clone(), bytes.clone())),
            _ => None,
        }).collect();
        let Some(number) = notices.first().and_then(|(name, _)| name.trim_end_matches(".pdf").rsplit('_').next().map(str::to_string)) else { continue };
        let Some(cert) = store.certificate(&number)? else { continue };
        let Some(owner) = engine.config.owner_by_name(&cert.latest.owner) else { continue };
        let from = &row.recipients[0];
        n += 1;
        let mid = format!("<submission-{n}@{}>", from.rsplit('@').next().unwrap_or("example"));
        let (how, bytes) = match owner.name.as_str() {
            "取手市長" => {
                let key = store.key_of(&number, &engine.secrets)?.context("the branch kept the key")?;
                ("番号と認証キーを本文に記入", contractor::submission(from, &owner.contracts_address, "電子保証の提出", &mid, contractor::Submit::Typed { number: &number, key: key.reveal() }))
            }
            "駒ヶ根市長" => ("認証キーのお知らせ（PDF）を契約書類に添付", contractor::submission(from, &owner.contracts_address, "契約書類の提出（駒ヶ根市道1号線舗装工事）", &mid, contractor::Submit::Attach { notice_name: &notices[0].0, notice: &notices[0].1 })),
            _ => ("完了のお知らせをそのまま転送", contractor::submission(from, &owner.contracts_address, "Fw: 電子保証（認証キー）発行完了のお知らせ", &mid, contractor::Submit::Forward { completion: &raw })),
        };
        Maildir::new(engine.config.mail.maildir_root.join(&owner.contracts_address)).deliver(&format!("{}.submit{n:02}.esurety", clock.now().timestamp()), &bytes)?;
        println!("   {from} → {}（{}）: {how}", owner.contracts_address, owner.name);
    }
    let kwsa = "keiyaku@kwsa.example";
    Maildir::new(engine.config.mail.maildir_root.join(kwsa)).deliver(&format!("{}.other.esurety", clock.now().timestamp()), &contractor::unrelated("somu@kwsa.example", kwsa))?;
    println!("   somu@kwsa.example → {kwsa}: 入札説明会の連絡（電子保証とは関係のないメール）");

    let report = engine.run_once(&mut store, &mut adapters, clock, rng)?;
    println!("\n7. esurety run --once（発注者側）: {}\n", crate::daemon::summary(&report));
    println!("8. 発注者の受付簿（esurety --config {} submissions）", engine.config.path.display());
    for s in store.submissions()? {
        let why = if s.reasons.is_empty() { String::new() } else { format!("（{}）", s.reasons.join("／")) };
        println!("   [{}] {}  {}  {} から  {}{why}", s.result, s.owner, s.number, s.from, s.project.as_deref().unwrap_or(""));
    }
    println!("\n9. 受注者への受付結果の返信");
    for row in store.outbox()?.into_iter().filter(|r| r.kind == "receipt") {
        println!("   {} → {}  「{}」", row.status, row.recipients.join(", "), row.subject);
    }
    println!("   入札説明会の連絡は受付対象ではないため、{kwsa} のメールボックスにそのまま残しています。");

    println!("\n   メールボックス: {}", engine.config.mail.maildir_root.display());
    println!("   認証キーは認証キーのお知らせ（PDF）と完了メールにだけ記載されます。発注者の担当者は");
    println!("   esurety --config {} verify <保証契約番号> <認証キー>", engine.config.path.display());
    println!("   で確認できます。");
    Ok(())
}

fn describe(outcome: Option<&str>, detail: Option<&str>) -> String {
    let d = detail.unwrap_or("");
    match outcome {
        Some("issued") => format!("発行しました（{d}）"),
        Some("rejected") => format!("不備を返信しました（{} 件）", d.lines().count()),
        Some("held") => format!("職員の確認待ちとして保留しました（{d}）"),
        Some("form_sent") => "申込書（様式）を返信しました".into(),
        Some("duplicate") => "受付済みの申込です".into(),
        _ => "未処理".into(),
    }
}

/// A sent mail as its first recipient got it: the copy in that recipient's Maildir (or in
/// `relay/`). The store no longer has the bytes of a mail that carried a key once it was
/// delivered, and the contractor forwards what it received anyway.
fn as_delivered(root: &std::path::Path, row: &crate::store::OutboxRow) -> Vec<u8> {
    let Some(to) = row.recipients.first() else { return Vec::new() };
    let needle = row.message_id.as_bytes();
    for dir in [root.join(to.to_ascii_lowercase()), root.join("relay")] {
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
            for e in entries.flatten() {
                if let Ok(bytes) = std::fs::read(e.path())
                    && bytes.windows(needle.len()).any(|w| w == needle)
                {
                    return bytes;
                }
            }
        }
    }
    Vec::new()
}
