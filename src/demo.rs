//! `esurety demo`: the story on the embedded default, told to a person. Writes the demo
//! parties into a folder, drops the sample applications of `mailboxes/` into the branch
//! Maildirs, runs one pass, and prints what happened to each mail and where the PDFs are.
//! (The owner side of the story joins when the owner-side flow exists.)

use crate::clock::{Clock, Random};
use crate::intake::letter::{self, Piece};
use crate::intake::maildir::Maildir;
use crate::run::Engine;
use crate::store::Store;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The sample mail: (branch mailbox, file name, bytes).
pub const SAMPLES: &[(&str, &str, &[u8])] = &[
    ("kanagawa@ejcs.example", "01-maruichi-kwsa.eml", include_bytes!("../mailboxes/kanagawa@ejcs.example/01-maruichi-kwsa.eml")),
    ("ibaraki@ejcs.example", "02-toride-kogyo.eml", include_bytes!("../mailboxes/ibaraki@ejcs.example/02-toride-kogyo.eml")),
    ("nagano@ejcs.example", "03-maruichi-komagane.eml", include_bytes!("../mailboxes/nagano@ejcs.example/03-maruichi-komagane.eml")),
    ("nagano@ejcs.example", "04-maruichi-tozai-paper.eml", include_bytes!("../mailboxes/nagano@ejcs.example/04-maruichi-tozai-paper.eml")),
    ("kanagawa@ejcs.example", "05-sanwa-problems.eml", include_bytes!("../mailboxes/kanagawa@ejcs.example/05-sanwa-problems.eml")),
    ("shizuoka@ejcs.example", "06-unknown-sender.eml", include_bytes!("../mailboxes/shizuoka@ejcs.example/06-unknown-sender.eml")),
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
    let report = engine.run_once(&mut store, clock, rng)?;
    println!("\n2. esurety run --once: {}\n", crate::daemon::summary(&report));

    println!("3. 申込ごとの結果");
    let pdf_dir = dir.join("pdfs");
    for m in store.messages()? {
        let l = letter::read(&m.raw).ok();
        let from = l.as_ref().and_then(|l| l.from.clone()).unwrap_or_default();
        println!("   [{}] {} から {} 宛: {}", m.outcome.as_deref().unwrap_or("-"), from, m.mailbox, describe(m.outcome.as_deref(), m.detail.as_deref()));
    }

    println!("\n4. 送信したメールと添付PDF");
    for row in store.outbox()? {
        println!("   {} → {}  「{}」", row.status, row.recipients.join(", "), row.subject);
        let raw = store.outbox_raw(row.id)?.unwrap_or_default();
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
    println!("\n   受注者のメールボックス: {}", engine.config.mail.maildir_root.display());
    println!("   認証キーは認証キーのお知らせ（PDF）と完了メールにだけ記載されます。発注者は");
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
