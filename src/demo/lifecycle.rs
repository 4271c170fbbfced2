//! The demo's last part (`lifecycle.md`): after the water authority has accepted 丸一建設's
//! certificates, the contractor changes one by mail (変更) and the branch's staff cancel
//! the other (取消); the water authority is told of both by mail and, its own
//! `esurety serve` running, by webhook, and registers each once.

use crate::clock::{Clock, Random};
use crate::engine::{Adapters, Engine};
use crate::intake::maildir::Maildir;
use crate::store::Store;
use anyhow::Result;
use std::sync::Arc;

/// The water authority's contracts mailbox.
pub const KWSA: &str = "keiyaku@kwsa.example";
/// The owner the demo's webhooks go to, as the company's table names it.
pub const KWSA_OWNER: &str = "神奈川県内広域水道企業団 企業長";

/// A fresh webhook secret (whsec_ and 32 random bytes in base64), as the company and the
/// owner would agree one.
pub fn secret(rng: &dyn Random) -> crate::config::webhooks::WebhookSecret {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes);
    crate::config::webhooks::WebhookSecret::parse(&format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))).expect("32 bytes of base64")
}

/// The company's and the water authority's deployments, each with its store and mail.
pub struct Side<'a> {
    pub engine: Arc<Engine>,
    pub store: &'a mut Store,
    pub adapters: &'a mut Adapters,
}

#[allow(clippy::too_many_arguments)]
pub fn follow(company: Side<'_>, owner: Side<'_>, rt: &tokio::runtime::Runtime, clock: &dyn Clock, rng: &dyn Random) -> Result<()> {
    // The water authority's server takes the company's webhooks.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let fixed: Arc<dyn Clock> = Arc::new(crate::clock::FixedClock::new(clock.now()));
    let serving = crate::web::start(owner.engine.clone(), fixed, Arc::default(), rt.handle(), async move {
        let _ = stopped.wait_for(|s| *s).await;
    })?;
    println!("\n12. 発注者の esurety serve が保証会社からの Webhook を受けます: {}/api/v1/webhooks/東日本建設業保証株式会社", serving.url);

    // 変更 by mail: the contractor extends the works.
    let kanagawa = "kanagawa@ejcs.example";
    let change = "【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日 ～ 令和9年6月30日\n請負金額：55,000,000円\n前払金保証金額：22,000,000円\n変更理由：工期延長（配水管の追加工事）";
    let raw = format!("From: 丸一建設 山田 <soumu@maruichi.example>\r\nTo: {kanagawa}\r\nSubject: =?utf-8?B?5aSJ5pu055Sz6L68?=\r\nMessage-ID: <change-demo@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nいつもお世話になっております。\r\n\r\n{}\r\n", change.replace('\n', "\r\n"));
    Maildir::new(company.engine.config.mail.maildir_root.join(kanagawa)).deliver(&format!("{}.demo10.esurety", clock.now().timestamp()), raw.as_bytes())?;
    println!("\n13. 受注者が変更申込（工期延長）をメールで送ります: soumu@maruichi.example → {kanagawa}（35075-00001M）");
    // 取消 by staff: the 契約保証 was issued by mistake.
    let e = crate::desk::certificates::act(&company.engine, company.store, "35075-00002K", crate::domain::StaffAction::Cancel, "契約保証は発注者の指示により不要となったため（誤発行）", "神奈川支店 鈴木", None, clock, rng)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("    支店の担当者が 35075-00002K を取り消します（esurety certificate 35075-00002K cancel --reason … / デスクの「状態を変更する」）: {}", e.id);
    let report = crate::daemon::pass::run_once(&company.engine, company.store, company.adapters, clock, rng)?;
    println!("    esurety run --once（保証会社）: {}", crate::daemon::summary(&report));
    for w in company.store.webhooks(100)? {
        println!("    Webhook {} {} → {}: {}（{} 回目）", w.number, w.event.kind.label(), w.endpoint, if w.status == "sent" { "届きました" } else { "再送待ち" }, w.attempts);
    }

    // The notices by mail reach the water authority's contracts mailbox.
    let relay = company.engine.config.mail.maildir_root.join("relay");
    let owner_box = Maildir::new(owner.engine.config.mail.maildir_root.join(KWSA));
    let mut n = 0;
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(relay.join(sub)) else { continue };
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p)?;
            let Ok(l) = crate::intake::letter::read(&bytes) else { continue };
            if l.event.is_some() && String::from_utf8_lossy(&bytes).contains(&format!("Delivered-To: {KWSA}")) {
                n += 1;
                owner_box.deliver(&format!("{}.event{n:02}.esurety", clock.now().timestamp()), &bytes)?;
                println!("    {} → {KWSA}「{}」", l.from.unwrap_or_default(), l.subject);
            }
        }
    }
    let report = crate::daemon::pass::run_once(&owner.engine, owner.store, owner.adapters, clock, rng)?;
    println!("\n14. esurety run --once（発注者: お知らせのメールを確認サービスに照合して受付簿に記録し、返信はしません）: {}", crate::daemon::summary(&report));
    println!("    発注者の受付簿に記録された通知（esurety submissions）:");
    for number in ["35075-00001M", "35075-00002K"] {
        for e in owner.store.owner_events_of(number)? {
            let kind = crate::domain::EventKind::parse(&e.kind).map(|k| k.label()).unwrap_or("");
            let status = crate::domain::CertificateStatus::parse(&e.status).map(|s| s.label()).unwrap_or("");
            println!("    {number}  {kind} → 現在の状態 {status}（{}、最初に届いた経路: {}）理由：{}", e.registry, if e.via == "webhook" { "Webhook" } else if e.via == "mail" { "メール" } else { "日次の問い合わせ" }, e.reason);
        }
    }
    println!("    お知らせのメールは {KWSA} のメールボックスにも残り、担当者が読めます。");
    let _ = stop.send(true);
    let _ = rt.block_on(serving.task);
    Ok(())
}
