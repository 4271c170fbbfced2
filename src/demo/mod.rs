//! `esurety demo`: the whole story on the embedded default, told to a person, across two
//! deployments as they run in life: the surety company's (`company/`, `init --side
//! branch`) and the water authority's own (`water-authority/`, `init --side owner`), each
//! with its own store and mailboxes. The company's pass issues the sample applications of
//! `mailboxes/` and its registry is served on a loopback port; each contractor hands its
//! key notice to the owner (see [`contractor`]); the owner's pass checks them through the
//! company's registry over HTTP with a token made by `token add`.

pub mod contractor;
pub mod lifecycle;
pub mod timestamps;

use crate::clock::{Clock, Random};
use crate::intake::letter::{self, Piece};
use crate::intake::maildir::Maildir;
use crate::engine::Engine;
use crate::store::Store;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// The sample mail: (branch mailbox, file name, bytes).
/// 丸一建設's 中間前払金保証 on 35075-00001M, sent once the works are half done (認定日
/// 令和8年11月20日, after the middle of its 工期).
pub const INTERMEDIATE_SAMPLE: (&str, &str, &[u8]) = ("kanagawa@ejcs.example", "07-maruichi-intermediate.eml", include_bytes!("../../mailboxes/kanagawa@ejcs.example/07-maruichi-intermediate.eml"));

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
    let company_dir = dir.join("company");
    // The company's registry on a port of its own, named as its public address: the QR
    // code of each certificate and key notice opens its lookup page (while the demo's
    // `esurety serve` runs).
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port())?;
    let side = |side| crate::config::default::InitOptions { side: Some(side), listen: Some(format!("127.0.0.1:{port}")), registry_url: None, public_url: Some(format!("http://127.0.0.1:{port}")), now: Some(clock.now().into()) };
    let mut config = crate::config::default::init_with(&company_dir, &side(crate::domain::Side::Branch))?;
    // The demo is the embedded default: each deployment on its own file, whatever
    // ESURETY_STORE says (it names one store; the demo has two).
    config.store = crate::config::StoreAt::File(company_dir.join("esurety.db"));
    println!("esurety demo — {}\n", dir.display());
    println!("   保証会社: {}（esurety init --side branch）", company_dir.display());
    println!("1. 支店のメールボックスに保証申込のメールが届きます");
    for (i, (mailbox, name, bytes)) in SAMPLES.iter().enumerate() {
        let md = Maildir::new(config.mail.maildir_root.join(mailbox));
        md.deliver(&format!("{}.demo{:02}.esurety", clock.now().timestamp(), i + 1), bytes)?;
        let l = letter::read(bytes).ok();
        println!("   {name:<28} {} → {mailbox}  「{}」", l.as_ref().and_then(|l| l.from.clone()).unwrap_or_default(), l.map(|l| l.subject).unwrap_or_default());
    }

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // A demo timestamp authority on loopback: the demo's signatures are timestamped
    // (PAdES B-T), as a company's are with `[signing] tsa_url`.
    if let Some(signing) = config.signing.as_mut() {
        let (key, cert) = crate::signature::demo::timestamp_certificate(clock.now().into()).map_err(|e| anyhow::anyhow!("the demo timestamp authority: {e}"))?;
        std::fs::write(company_dir.join("demo-tsa.pem"), &cert)?;
        let tsa = std::sync::Arc::new(timestamps::DemoTsa::new(&key, &cert).map_err(|e| anyhow::anyhow!("the demo timestamp authority: {e}"))?);
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}/", listener.local_addr()?);
        rt.spawn(timestamps::serve(tsa, listener));
        let anchors = crate::signature::verify::anchors_pem(cert.as_bytes()).map_err(|e| anyhow::anyhow!(e))?;
        signing.tsa = Some(std::sync::Arc::new(crate::signature::tsa::Tsa::new(&url, None).map_err(|e| anyhow::anyhow!(e))?.with_anchors(anchors)));
        println!("   署名: {}（デモ用の署名証明書 signing-chain.pem）、タイムスタンプ: デモ用の時刻認証局 {url}（demo-tsa.pem）", signing.signer.subject());
    }
    // The water authority's own server takes the company's webhooks of its certificates'
    // events (lifecycle.md), signed with a secret the two agreed.
    let owner_port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port())?;
    let webhook_secret = lifecycle::secret(rng);
    if let Some(o) = config.owners.iter_mut().find(|o| o.name == lifecycle::KWSA_OWNER) {
        let url = url::Url::parse(&format!("http://127.0.0.1:{owner_port}/api/v1/webhooks/{}", config.company.name))?;
        o.webhook = Some(crate::config::webhooks::WebhookEndpoint { url, secret: Ok(crate::config::webhooks::WebhookSecrets::one(webhook_secret.clone())), ca_file: None });
    }
    let _lock = crate::daemon::lock(&config)?;
    let mut store = Store::open(&config.store)?;
    let engine = std::sync::Arc::new(Engine::new(config)?);
    let mut adapters = engine.adapters(rt.handle())?;
    let report = crate::daemon::pass::run_once(&engine, &mut store, &mut adapters, clock, rng)?;
    println!("\n2. esurety run --once（保証会社）: {}\n", crate::daemon::summary(&report));

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

    // Halfway through the works: 丸一建設 applies for a 中間前払金保証 on its 前払金保証.
    let (mailbox, name, bytes) = INTERMEDIATE_SAMPLE;
    Maildir::new(engine.config.mail.maildir_root.join(mailbox)).deliver(&format!("{}.demo07.esurety", clock.now().timestamp()), bytes)?;
    let l = letter::read(bytes).ok();
    println!("\n5a. 工事の半ばで、受注者が中間前払金保証を申し込みます（{name}）");
    println!("   {} → {mailbox}  「{}」", l.as_ref().and_then(|l| l.from.clone()).unwrap_or_default(), l.map(|l| l.subject).unwrap_or_default());
    let report = crate::daemon::pass::run_once(&engine, &mut store, &mut adapters, clock, rng)?;
    println!("   esurety run --once（保証会社）: {}", crate::daemon::summary(&report));
    for c in store.certificates()?.into_iter().filter(|c| c.latest.product == crate::domain::Product::Intermediate) {
        let of = c.latest.intermediate.as_ref().map(|i| format!("（前払金保証 {}、認定 {}）", i.advance, crate::text::format_era(i.certified_on))).unwrap_or_default();
        println!("   {}  {}  {}  {}{of}", c.number, c.latest.product.name(), c.latest.format.name(), crate::text::format_yen(c.latest.amount));
    }
    // Its key notice and certificate beside the others.
    for row in store.outbox()? {
        let raw = as_delivered(&engine.config.mail.maildir_root, &row);
        let Ok(l) = letter::read(&raw) else { continue };
        for p in l.pieces {
            if let Piece::Pdf { name: Some(name), bytes, .. } = p {
                let path = pdf_dir.join(&name);
                if !path.exists() {
                    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
                    println!("       {}", path.display());
                }
            }
        }
    }

    // Before a bid: 取手興業 applies for a 契約保証予約 (paper only).
    let ibaraki = "ibaraki@ejcs.example";
    let bid_date = clock.now().date_naive() + chrono::Days::new(21);
    Maildir::new(engine.config.mail.maildir_root.join(ibaraki))
        .deliver(&format!("{}.demo08.esurety", clock.now().timestamp()), &contractor::bid_bond_application("info@toride-kogyo.example", ibaraki, bid_date))?;
    println!("\n5b. 入札の前に、受注者が契約保証予約（入札ボンド、書面のみ）を申し込みます");
    println!("   info@toride-kogyo.example → {ibaraki}  「保証申込（契約保証予約）」 入札日 {}", crate::text::format_era(bid_date));
    let report = crate::daemon::pass::run_once(&engine, &mut store, &mut adapters, clock, rng)?;
    println!("   esurety run --once（保証会社）: {}", crate::daemon::summary(&report));
    for c in store.certificates()?.into_iter().filter(|c| c.latest.product == crate::domain::Product::BidBond) {
        if let Some(b) = &c.latest.bid_bond {
            println!("   {}  {}  {}  {}（入札日 {}、予約手数料 {}（うち消費税 {}））", c.number, c.latest.product.name(), c.latest.format.name(), crate::text::format_yen(c.latest.amount),
                     crate::text::format_era(b.bid_date), crate::text::format_yen(b.fee_yen + b.tax_yen), crate::text::format_yen(b.tax_yen));
        }
    }
    println!("   印刷を待つ書面（esurety --config {} staff paper -o DIR）:", engine.config.path.display());
    let print_dir = dir.join("print");
    for row in crate::desk::paper(&store)? {
        let files = crate::desk::print(&engine, &row, &print_dir, clock)?;
        println!("   {}  {}  {}  {}", row.number, row.latest.product.name(), row.latest.contractor, row.latest.project);
        for f in files {
            println!("       {}", f.display());
        }
    }

    // A contractor who works only by email asks for its list (Net Desk's 保証契約一覧).
    let kanagawa = "kanagawa@ejcs.example";
    Maildir::new(engine.config.mail.maildir_root.join(kanagawa))
        .deliver(&format!("{}.demo09.esurety", clock.now().timestamp()), &contractor::list_request("soumu@maruichi.example", kanagawa))?;
    println!("\n5c. 受注者が保証契約一覧をメールで依頼します（本文に「発注者名：水道企業団」）");
    let report = crate::daemon::pass::run_once(&engine, &mut store, &mut adapters, clock, rng)?;
    println!("   esurety run --once（保証会社）: {}", crate::daemon::summary(&report));
    for row in store.outbox()?.into_iter().filter(|r| r.kind == "list") {
        println!("   {} → {}  「{}」", row.status, row.recipients.join(", "), row.subject);
        let raw = as_delivered(&engine.config.mail.maildir_root, &row);
        let Some(m) = mail_parser::MessageParser::default().parse(&raw) else { continue };
        let body = m.body_text(0).unwrap_or_default();
        for line in body.lines().filter(|line| line.starts_with('■') || line.ends_with(" 件")) {
            println!("   {line}");
        }
        for a in m.attachments() {
            if let Some(name) = mail_parser::MimeHeaders::attachment_name(a).filter(|n| n.ends_with(".csv")) {
                let path = dir.join(name);
                std::fs::write(&path, a.contents()).with_context(|| format!("cannot write {}", path.display()))?;
                println!("       {}（Excel でそのまま開ける CSV）", path.display());
            }
        }
    }

    // The company serves its registry; the water authority runs its own deployment.
    let (stop_web, mut web_stopped) = tokio::sync::watch::channel(false);
    let fixed: std::sync::Arc<dyn Clock> = std::sync::Arc::new(crate::clock::FixedClock::new(clock.now()));
    let serving = crate::web::start(engine.clone(), fixed, std::sync::Arc::default(), rt.handle(), async move {
        let _ = web_stopped.wait_for(|s| *s).await;
    })?;
    let (token, hash) = crate::registry::tokens::new_token(rng);
    store.write(|tx| tx.add_token("神奈川県内広域水道企業団", &hash, clock.now()))?;
    println!("\n6. 保証会社が確認サービス（登録簿）を公開します: {}/（esurety serve）", serving.url);
    println!("   発注者のシステム用のトークンを発行しました（esurety token add --name 神奈川県内広域水道企業団）");
    let owner_dir = dir.join("water-authority");
    let owner_options = crate::config::default::InitOptions { side: Some(crate::domain::Side::Owner), listen: Some(format!("127.0.0.1:{owner_port}")), registry_url: Some(serving.url.clone()), public_url: None, now: Some(clock.now().into()) };
    let mut owner_config = crate::config::default::init_with(&owner_dir, &owner_options)?;
    owner_config.store = crate::config::StoreAt::File(owner_dir.join("esurety.db"));
    // What ESURETY_REGISTRY_TOKEN carries in life (never written into the file); and
    // the company's signing certificate as it publishes it (signer_ca_file), so the water
    // authority checks each submitted PDF's signature.
    let company_signers = engine.config.signing.as_ref().map(|s| s.signer.certificates_der()).unwrap_or_default();
    let company_timestamps = engine.config.signing.as_ref().and_then(|s| s.tsa.as_ref()).map(|t| t.anchors().to_vec()).unwrap_or_default();
    if let Some(s) = &engine.config.signing {
        std::fs::write(owner_dir.join("ejcs-signing.pem"), s.signer.certificate_pem())?;
        let mut text = std::fs::read_to_string(&owner_config.path)?.replace("# signer_ca_file = \"ejcs-signing.pem\"", "signer_ca_file = \"ejcs-signing.pem\"");
        if company_dir.join("demo-tsa.pem").exists() {
            std::fs::copy(company_dir.join("demo-tsa.pem"), owner_dir.join("ejcs-tsa.pem"))?;
            text = text.replace("# tsa_ca_file = \"ejcs-tsa.pem\"", "tsa_ca_file = \"ejcs-tsa.pem\"");
        }
        std::fs::write(&owner_config.path, text)?;
    }
    for r in &mut owner_config.registries {
        r.token = Ok(crate::config::Secret::new(token.clone()));
        r.signers = company_signers.clone();
        r.timestamps = company_timestamps.clone();
        // What ESURETY_WEBHOOK_SECRET carries in life.
        r.webhook_secret = Some(Ok(crate::config::webhooks::WebhookSecrets::one(webhook_secret.clone())));
    }
    println!("   発注者: {}（esurety init --side owner --registry-url {}）", owner_dir.display(), serving.url);
    let owner_root = owner_config.mail.maildir_root.clone();

    println!("\n7. 受注者が認証キーのお知らせを発注者に提出します");
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
        Maildir::new(owner_root.join(&owner.contracts_address)).deliver(&format!("{}.submit{n:02}.esurety", clock.now().timestamp()), &bytes)?;
        println!("   {from} → {}（{}）: {how}", owner.contracts_address, owner.name);
    }
    let kwsa = "keiyaku@kwsa.example";
    let owner_box = Maildir::new(owner_root.join(kwsa));
    owner_box.deliver(&format!("{}.west.esurety", clock.now().timestamp()), &contractor::other_surety("soumu@maruichi.example", kwsa))?;
    println!("   soumu@maruichi.example → {kwsa}: 西日本建設業保証の電子保証（番号と認証キーを本文に記入）");
    owner_box.deliver(&format!("{}.insurer.esurety", clock.now().timestamp()), &contractor::insurer_policy("keiyaku@sanwa-doboku.example", kwsa))?;
    println!("   keiyaku@sanwa-doboku.example → {kwsa}: 損害保険会社の電子保険証券（閲覧用URLとパスワード）");
    owner_box.deliver(&format!("{}.other.esurety", clock.now().timestamp()), &contractor::unrelated("somu@kwsa.example", kwsa))?;
    println!("   somu@kwsa.example → {kwsa}: 入札説明会の連絡（電子保証とは関係のないメール）");

    let _owner_lock = crate::daemon::lock(&owner_config)?;
    let mut owner_store = Store::open(&owner_config.store)?;
    let owner_engine = std::sync::Arc::new(Engine::new(owner_config)?);
    let mut owner_adapters = owner_engine.adapters(rt.handle())?;
    let report = crate::daemon::pass::run_once(&owner_engine, &mut owner_store, &mut owner_adapters, clock, rng)?;
    println!("\n8. esurety run --once（発注者の esurety が保証会社の確認サービスに問い合わせます）: {}\n", crate::daemon::summary(&report));
    println!("9. 発注者の受付簿（esurety --config {} submissions）", owner_engine.config.path.display());
    for s in owner_store.submissions()? {
        let why = if s.reasons.is_empty() { String::new() } else { format!("（{}）", s.reasons.join("／")) };
        let signature = s.signature.as_deref().and_then(crate::signature::verify::SignatureStatus::parse).map(|v| format!("　{}", v.label())).unwrap_or_default();
        println!("   [{}] {}  {}  {} から  {}{why}{signature}", s.result, s.owner, s.number, s.from, s.project.as_deref().unwrap_or(""));
    }
    println!("\n10. 受注者への受付結果の返信");
    for row in owner_store.outbox()?.into_iter().filter(|r| r.kind == "receipt") {
        println!("   {} → {}  「{}」", row.status, row.recipients.join(", "), row.subject);
    }
    println!("   入札説明会の連絡は受付対象ではないため、{kwsa} のメールボックスにそのまま残しています。");

    let checks = store.checks(1000)?;
    println!("\n11. 保証会社の確認サービスの記録: {} 件の確認（{}）", checks.len(),
             ["valid", "mismatch", "locked", "malformed"].iter().map(|r| format!("{r} {}", checks.iter().filter(|c| c.result == *r).count())).collect::<Vec<_>>().join("、"));
    lifecycle::follow(
        lifecycle::Side { engine: engine.clone(), store: &mut store, adapters: &mut adapters },
        lifecycle::Side { engine: owner_engine.clone(), store: &mut owner_store, adapters: &mut owner_adapters },
        &rt, clock, rng,
    )?;
    let _ = stop_web.send(true);
    let _ = rt.block_on(serving.task);

    println!("\n   メールボックス: {} と {}", engine.config.mail.maildir_root.display(), owner_engine.config.mail.maildir_root.display());
    println!("   認証キーは認証キーのお知らせ（PDF）と完了メールにだけ記載されます。確認サービスを動かすと");
    println!("   esurety --config {} serve", engine.config.path.display());
    println!("   発注者の担当者はブラウザで保証契約番号と認証キーを入力して確認できます。");
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
