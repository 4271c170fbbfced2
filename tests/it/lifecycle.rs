//! The life of a guarantee and what its owner is told (`lifecycle.md`), across two
//! deployments on loopback as in the registry-service tests: the company's (its registry
//! on `esurety serve`, its daemon's passes) and the water authority's own (its mailbox,
//! its `esurety serve` taking webhooks, its register).

use crate::common::{Mail, Setup, key_in, pdf_text};
use crate::registry_service::{Serving, company, fixture, http};
use crate::support;
use serde_json::{Value, json};
use std::collections::HashSet;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const KWSA: &str = "keiyaku@kwsa.example";
const MARUICHI: &str = "soumu@maruichi.example";
const ISSUER: &str = "東日本建設業保証株式会社";
/// The secret the company and the water authority agreed for webhooks.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// 「変更申込」 in RFC 2047.
const CHANGE_SUBJECT: &str = "=?utf-8?B?5aSJ5pu055Sz6L68?=";
const EXTENSION: &str = "【変更申込】\n保証契約番号：35075-00001M\n工期：令和8年7月10日 ～ 令和9年6月30日\n請負金額：55,000,000円\n前払金保証金額：22,000,000円\n変更理由：工期延長";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn change_mail(mid: &str, body: &str) -> Vec<u8> {
    format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: {CHANGE_SUBJECT}\r\nMessage-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n", body.replace('\n', "\r\n")).into_bytes()
}

/// 丸一建設's application 001 for other works (another 工事名): two more certificates.
fn second_works() -> Vec<u8> {
    let raw = fixture("valid/001.eml");
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let body = m.body_text(0).unwrap().replace("○○浄水場△△修繕工事", "□□配水池耐震補強工事");
    format!("From: {MARUICHI}\r\nTo: {KANAGAWA}\r\nSubject: =?utf-8?b?5L+d6Ki855Sz6L68?=\r\nMessage-ID: <second-works@maruichi.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n", body.replace('\n', "\r\n")).into_bytes()
}

/// The two deployments: the company's registry serving, with 35075-00001M/00002K and
/// 00003M/00004K issued to 丸一建設 for the water authority, webhooks to the water
/// authority's `esurety serve` on `port` when `webhooks`; the water authority's own
/// deployment, which has accepted all four.
struct Pair {
    company: Setup,
    registry: Serving,
    owner: Setup,
    port: u16,
    /// The company's mails already carried to the water authority's mailbox.
    carried: HashSet<Vec<u8>>,
}

impl Pair {
    fn new(webhooks: bool) -> Pair {
        let (company, token) = company();
        company.drop_mail(KANAGAWA, &second_works());
        company.once();
        let port = free_port();
        if webhooks {
            company.edit_config(|t| t
                .replace("# webhook_url = \"https://esurety.kwsa.example/api/v1/webhooks/東日本建設業保証株式会社\"", &format!("webhook_url = \"http://127.0.0.1:{port}/api/v1/webhooks/{ISSUER}\""))
                .replace("# webhook_secret_env = \"ESURETY_WEBHOOK_KWSA\"", "webhook_secret_env = \"ESURETY_WEBHOOK_KWSA\""));
            company.env.borrow_mut().push(("ESURETY_WEBHOOK_KWSA".into(), SECRET.into()));
        }
        let registry = Serving::start(&company, &["serve"]);
        let owner = Setup::init(&["--side", "owner", "--registry-url", &registry.url, "--listen", &format!("127.0.0.1:{port}")]);
        owner.env.borrow_mut().push(("ESURETY_REGISTRY_TOKEN".into(), token));
        owner.env.borrow_mut().push(("ESURETY_WEBHOOK_SECRET".into(), SECRET.into()));
        owner.edit_config(|t| t.replace("# webhook_secret_env = \"ESURETY_WEBHOOK_SECRET\"", "webhook_secret_env = \"ESURETY_WEBHOOK_SECRET\""));
        for (i, m) in company.mails(MARUICHI).iter().enumerate() {
            owner.drop_mail(KWSA, &support::forward(MARUICHI, KWSA, &format!("<fwd{i}@maruichi.example>"), &m.raw));
        }
        owner.once();
        let accepted: Vec<String> = submissions(&owner).iter().filter(|s| s["result"] == "accepted").map(|s| s["number"].as_str().unwrap().to_string()).collect();
        assert_eq!(accepted.len(), 4, "{:?}", submissions(&owner));
        Pair { company, registry, owner, port, carried: HashSet::new() }
    }

    /// The water authority's `esurety serve`, taking webhooks.
    fn owner_web(&self) -> Serving {
        let s = Serving::start(&self.owner, &["serve"]);
        assert_eq!(s.port(), self.port);
        s
    }

    /// Both deployments' clocks at `now` (each process started after this reads it).
    fn at(&self, now: &str) {
        for s in [&self.company, &self.owner] {
            s.env.borrow_mut().push(("ESURETY_TEST_NOW".into(), now.into()));
        }
    }

    /// What the company mailed to the water authority's contracts address since the last
    /// call, delivered into its mailbox (the company's transport relays it).
    fn carry(&mut self) -> Vec<Mail> {
        let mut out = Vec::new();
        for m in crate::common::mails_in(&self.company.maildir("relay")) {
            if m.to.contains(&KWSA.to_string()) && self.carried.insert(m.raw.clone()) {
                self.owner.drop_mail(KWSA, &m.raw);
                out.push(m);
            }
        }
        out
    }
}

impl Pair {
    /// What the company mailed to the water authority since the last call, lost on the way.
    fn lose(&mut self) -> usize {
        let mut n = 0;
        for m in crate::common::mails_in(&self.company.maildir("relay")) {
            if m.to.contains(&KWSA.to_string()) && self.carried.insert(m.raw.clone()) {
                n += 1;
            }
        }
        n
    }
}

fn submissions(o: &Setup) -> Vec<Value> {
    o.json(&["submissions"]).as_array().unwrap().clone()
}

/// The events the water authority registered for `number` (from its accepted submission).
fn told(o: &Setup, number: &str) -> Vec<Value> {
    let subs = submissions(o);
    let s = subs.iter().find(|s| s["number"] == number && s["result"] == "accepted").unwrap_or_else(|| panic!("{number} accepted: {subs:?}"));
    s["events"].as_array().cloned().unwrap_or_default()
}

fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events.iter().map(|e| (e["kind"].as_str().unwrap().to_string(), e["via"].as_str().unwrap().to_string())).collect()
}

#[test]
fn a_change_a_termination_a_cancellation_and_an_expiry_reach_the_owner_by_mail_and_webhook_once() {
    let mut p = Pair::new(true);
    let web = p.owner_web();
    // 変更 by email: the contractor's change makes version 2, and the owner is told.
    p.company.drop_mail(KANAGAWA, &change_mail("chg-1@maruichi.example", EXTENSION));
    p.company.once();
    // 解約 on the desk (the form, then its confirmation), 取消 at the terminal.
    crate::desk_web::add_user(&p.company, "山田", &["branch:kanagawa@ejcs.example"]);
    let desk = crate::desk_web::login(&p.registry.url, "山田");
    let form = format!("csrf={}&action=terminate&reason={}&date=2026-07-03", desk.csrf, url::form_urlencoded::byte_serialize("発注者による契約解除".as_bytes()).collect::<String>());
    assert_eq!(desk.post("/desk/certificates/35075-00002K/state", &form), 200, "the confirmation page");
    assert_eq!(p.company.json(&["certificate", "35075-00002K"])["status"], "valid", "nothing before it is confirmed");
    assert_eq!(desk.post("/desk/certificates/35075-00002K/state", &format!("{form}&confirm=yes")), 303);
    assert_eq!(desk.post("/desk/certificates/35075-00002K/state", &format!("{form}&confirm=yes")), 409, "done once: the second is refused");
    let out = p.company.run_ok(&["certificate", "35075-00004K", "cancel", "--reason", "誤って発行したため", "--by", "山田"]);
    assert!(out.contains("取消") && out.contains("evt_"), "{out}");
    // Staff cannot cancel what is already ended, nor settle what has no claim.
    let again = p.company.run(&["certificate", "35075-00002K", "cancel", "--reason", "x", "--by", "山田"]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("解約"), "{}", String::from_utf8_lossy(&again.stderr));
    let no_reason = p.company.run(&["certificate", "35075-00003M", "claim", "--reason", " \u{200B}\u{202E}", "--by", "山田"]);
    assert!(!no_reason.status.success() && String::from_utf8_lossy(&no_reason.stderr).contains("reason"), "invisible characters are no reason");
    let typo = p.company.run(&["certificate", "35075-00003M", "terminate", "--reason", "契約解除", "--date", "0001-01-01", "--by", "山田"]);
    assert!(!typo.status.success() && String::from_utf8_lossy(&typo.stderr).contains("more than a year"), "{}", String::from_utf8_lossy(&typo.stderr));
    p.company.once();
    // The 保証期限 of 35075-00003M (令和9年3月31日) has passed: the daily job.
    drop(web);
    p.at("2027-04-01T07:00:00+09:00");
    let web = p.owner_web();
    let out = p.company.run_ok(&["digest"]);
    assert!(out.contains("35075-00003M: expired"), "{out}");
    assert!(!out.contains("35075-00001M"), "extended to 令和9年6月30日 by its change: still in force: {out}");

    // Each event reached the water authority's server once, by webhook.
    let expect = [("35075-00001M", "changed"), ("35075-00002K", "terminated"), ("35075-00003M", "expired"), ("35075-00004K", "cancelled")];
    for (number, kind) in expect {
        assert_eq!(kinds(&told(&p.owner, number)), [(kind.to_string(), "webhook".to_string())], "{number}: {}", web.log.lock().unwrap());
    }
    let webhooks = p.company.json(&["webhooks"]);
    assert_eq!(webhooks.as_array().unwrap().len(), 4, "{webhooks}");
    assert!(webhooks.as_array().unwrap().iter().all(|w| w["status"] == "sent" && w["attempts"] == 1), "{webhooks}");

    // And by mail: the notices, readable, recognised, registered against the same events.
    let notices = p.carry();
    assert_eq!(notices.len(), 4, "{:?}", notices.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let cancelled = notices.iter().find(|m| m.subject == "【電子保証】保証契約の状態の変更（35075-00004K）").unwrap();
    assert!(cancelled.body.contains("取消") && cancelled.body.contains("誤って発行したため") && cancelled.body.contains("□□配水池耐震補強工事"), "{}", cancelled.body);
    assert!(!cancelled.body.contains("山田"), "who did it stays in the company");
    let said = String::from_utf8_lossy(&p.owner.once().stderr).into_owned();
    assert!(said.contains("companies' notices of events registered 4"), "{said}");
    for (number, kind) in expect {
        assert_eq!(kinds(&told(&p.owner, number)), [(kind.to_string(), "webhook".to_string())], "{number}: once, whichever way came first");
    }
    // Never answered: nothing went back to the company's branch.
    let answers: Vec<Mail> = crate::common::mails_in(&p.owner.maildir("relay")).into_iter().filter(|m| m.to.iter().any(|t| t.ends_with("@ejcs.example"))).collect();
    assert!(answers.is_empty(), "{:?}", answers.iter().map(|m| &m.subject).collect::<Vec<_>>());

    // The contractor was told in Japanese, by the branch.
    let to_contractor: Vec<Mail> = p.company.mails(MARUICHI).into_iter().filter(|m| m.subject.starts_with("【電子保証】保証契約の状態の変更のお知らせ")).collect();
    assert_eq!(to_contractor.len(), 3, "解約, 取消 and 期限満了 (the change has its own completion mail)");
    let t = to_contractor.iter().find(|m| m.subject.contains("35075-00002K")).unwrap();
    assert!(t.body.contains("解約") && t.body.contains("発注者による契約解除") && t.body.contains("令和8年7月3日"), "{}", t.body);

    // The company's history: who, when, why.
    let c = p.company.json(&["certificate", "35075-00002K"]);
    assert_eq!(c["status"], "terminated", "{c}");
    let e = &c["events"][0];
    assert_eq!((e["kind"].as_str(), e["by"].as_str(), e["reason"].as_str(), e["effective"].as_str()), (Some("terminated"), Some("山田"), Some("発注者による契約解除"), Some("2026-07-03")), "{c}");
    assert_eq!(p.company.json(&["certificate", "35075-00003M"])["events"][0]["by"], "system");
    drop(web);
    drop(p.registry);
}

#[test]
fn an_owner_server_that_was_down_gets_everything_afterwards_once_and_in_order() {
    let p = Pair::new(true);
    // The water authority's server is down: a claim, its settling and a cancellation.
    p.company.run_ok(&["certificate", "35075-00001M", "claim", "--reason", "前払金の返還請求", "--by", "佐藤"]);
    p.company.run_ok(&["certificate", "35075-00001M", "settle", "--reason", "返還を受けて精算", "--by", "佐藤"]);
    p.company.run_ok(&["certificate", "35075-00002K", "cancel", "--reason", "二重に発行したため", "--by", "佐藤"]);
    p.company.once();
    let w = p.company.json(&["webhooks"]);
    let w = w.as_array().unwrap();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w.iter().all(|w| w["status"] == "pending"), "{w:?}");
    // One try: an endpoint that fails is left alone for the rest of the sweep (the
    // settling waits behind its claim anyway).
    let tried: Vec<&Value> = w.iter().filter(|w| w["attempts"] == 1).collect();
    assert_eq!(tried.len(), 1, "{w:?}");
    assert!(tried[0]["last_error"].as_str().unwrap().contains("connect"), "{w:?}");
    // The desk shows what cannot be delivered.
    let staff = p.company.run_ok(&["staff", "list"]);
    assert!(staff.contains("webhook") && staff.contains("35075-00001M"), "{staff}");

    // Back up, ten minutes later: everything, once, in order.
    p.at("2026-07-04T10:10:00+09:00");
    let web = p.owner_web();
    p.company.once();
    // Both were recorded at the same (fixed) instant: the register lists them in the
    // order they were received.
    let events = told(&p.owner, "35075-00001M");
    assert_eq!(events[0]["at"], events[1]["at"]);
    assert_eq!(kinds(&events), [("claimed".into(), "webhook".into()), ("settled".into(), "webhook".into())], "received in order: {events:?}");
    assert_eq!(kinds(&told(&p.owner, "35075-00002K")), [("cancelled".to_string(), "webhook".to_string())]);
    // Sent again (a second pass, a second daemon): nothing twice.
    p.company.once();
    assert!(p.company.json(&["webhooks"]).as_array().unwrap().iter().all(|w| w["status"] == "sent"));
    assert_eq!(told(&p.owner, "35075-00001M").len(), 2);

    // The water authority's staff see them on their desk and in their digest.
    crate::desk_web::add_user(&p.owner, "契約課", &["owner:keiyaku@kwsa.example"]);
    let (st, page) = crate::desk_web::login(&web.url, "契約課").get("/desk/submissions");
    assert_eq!(st, 200);
    assert!(page.contains("状態の変更") && page.contains("履行請求の精算") && page.contains("二重に発行したため"), "{page}");
    p.owner.edit_config(|t| t.replacen("contracts_address = \"keiyaku@kwsa.example\"", "contracts_address = \"keiyaku@kwsa.example\"\nstaff_address = \"keiyaku-staff@kwsa.example\"", 1));
    p.owner.run_ok(&["digest"]);
    let digest = crate::common::mails_in(&p.owner.maildir("relay")).into_iter().find(|m| m.to.contains(&"keiyaku-staff@kwsa.example".to_string())).expect("the digest");
    assert!(digest.body.contains("35075-00002K") && digest.body.contains("取消") && digest.body.contains("履行請求"), "{}", digest.body);
    drop(web);
}

#[test]
fn the_owner_asks_daily_for_what_no_push_told_it() {
    let p = Pair::new(false);
    p.company.run_ok(&["certificate", "35075-00003M", "terminate", "--reason", "工事の中止", "--by", "山田"]);
    p.company.once();
    // Neither mail (not carried) nor webhook (none configured): the daily question.
    let out = p.owner.run_ok(&["digest"]);
    assert!(out.contains("1 event(s)"), "{out}");
    assert_eq!(kinds(&told(&p.owner, "35075-00003M")), [("terminated".to_string(), "poll".to_string())]);
    // Asked again, nothing new; a certificate no longer in force is not asked about.
    let out = p.owner.run_ok(&["digest"]);
    assert!(!out.contains("event(s)"), "{out}");
    // A stranger's notice of a made-up event is not believed: the mail is left as it was.
    let forged = format!("From: x@stranger.example\r\nTo: {KWSA}\r\nSubject: =?utf-8?B?44CQ6Zu75a2Q5L+d6Ki844CR?= 35075-00001M\r\nMessage-ID: <forged@stranger.example>\r\nX-Esurety-Event: evt_000000000000000000000000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n35075-00001M は取消されました\r\n");
    let uid = p.owner.drop_mail(KWSA, forged.as_bytes());
    p.owner.once();
    assert!(told(&p.owner, "35075-00001M").is_empty());
    assert!(p.owner.files(KWSA).iter().any(|(u, flags, new)| *u == uid && flags.is_empty() && *new), "untouched");
}

#[test]
fn webhooks_with_a_wrong_signature_an_old_timestamp_or_a_replayed_id_are_refused() {
    let p = Pair::new(false);
    let web = p.owner_web();
    let path = format!("/api/v1/webhooks/{}", url::form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>());
    let secret = esurety::config::webhooks::WebhookSecret::parse(SECRET).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339(crate::common::NOW).unwrap().timestamp();
    let event = |id: &str| json!({"id": id, "type": "certificate.cancelled", "number": "35075-00002K", "status": "cancelled", "at": crate::common::NOW, "reason": "偽の取消"}).to_string();
    let post = |id: &str, ts: i64, sig: Option<String>, body: &str| {
        let sig = sig.unwrap_or_else(|| esurety::outbound::webhook::sign(secret.bytes(), id, ts, body.as_bytes()));
        let (status, _, b) = http(&web.url, "POST", &path, &[("Content-Type", "application/json"), ("webhook-id", id), ("webhook-timestamp", &ts.to_string()), ("webhook-signature", &sig)], body.as_bytes());
        (status, serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null))
    };
    let forged = esurety::outbound::webhook::sign(b"a secret the sender guessed wrong!!", "evt_forged", now, event("evt_forged").as_bytes());
    assert_eq!(post("evt_forged", now, Some(forged), &event("evt_forged")).0, 401, "a wrong signature");
    let (st, v) = post("evt_old", now - 600, None, &event("evt_old"));
    assert_eq!((st, v["error"].as_str()), (401, Some("bad_signature")), "ten minutes old: {v}");
    assert!(v["message"].as_str().unwrap().contains("timestamp"), "{v}");
    assert_eq!(post("evt_other", now, None, &event("evt_not_the_header_id")).0, 422, "a body of another id");
    assert_eq!(post("evt_good", now, None, &event("evt_good")), (200, json!({"registered": "evt_good"})));
    let (st, v) = post("evt_good", now, None, &event("evt_good"));
    assert_eq!((st, v["error"].as_str()), (409, Some("replayed")), "{v}");
    let (st, _, _) = http(&web.url, "POST", "/api/v1/webhooks/unknown", &[("webhook-id", "evt_x")], b"{}");
    assert_eq!(st, 404, "a registry this owner takes no webhooks from");
    let (st, _, _) = http(&web.url, "POST", &path, &[("webhook-id", "evt_big"), ("webhook-timestamp", &now.to_string()), ("webhook-signature", "v1,x")], &vec![b'x'; 1 << 20]);
    assert_eq!(st, 413);
    // Another company's registry (its own secret, an overlapping number shape) does not
    // speak for a number accepted from this one.
    drop(web);
    p.owner.edit_config(|t| t + "\n[[registries]]\nissuer = \"西日本建設業保証株式会社\"\nurl = \"http://127.0.0.1:9\"\ntoken_env = \"ESURETY_REGISTRY_TOKEN\"\nnumbers = '^\\d{5}-\\d{5}[MK]$'\nwebhook_secret_env = \"ESURETY_WEBHOOK_SECRET\"\n");
    let web = p.owner_web();
    let west = format!("/api/v1/webhooks/{}", url::form_urlencoded::byte_serialize("西日本建設業保証株式会社".as_bytes()).collect::<String>());
    let body = event("evt_west");
    let sig = esurety::outbound::webhook::sign(secret.bytes(), "evt_west", now, body.as_bytes());
    let (st, _, b) = http(&web.url, "POST", &west, &[("Content-Type", "application/json"), ("webhook-id", "evt_west"), ("webhook-timestamp", &now.to_string()), ("webhook-signature", &sig)], body.as_bytes());
    assert_eq!(st, 422, "{}", String::from_utf8_lossy(&b));
    let events = told(&p.owner, "35075-00002K");
    assert_eq!(events.len(), 1, "only the signed one, once: {events:?}");
    assert_eq!(events[0]["id"], "evt_good");
}

#[test]
fn a_cancelled_certificate_is_refused_with_its_reason_and_shown_so_by_the_registry() {
    let (company, token) = company();
    let m = company.mails(MARUICHI).remove(0);
    let key = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00002K")).unwrap().1)).unwrap();
    company.run_ok(&["certificate", "35075-00002K", "cancel", "--reason", "誤って発行したため", "--by", "山田"]);
    let verify = |key: &str| {
        let out = company.run(&["verify", "35075-00002K", key, "--json"]);
        assert!(!out.status.success(), "exit 0 only for a certificate in force");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let v = verify(&key);
    assert_eq!((v["result"].as_str(), v["status"].as_str()), (Some("not_in_force"), Some("cancelled")), "{v}");
    assert_eq!(v["events"][0]["kind"], "cancelled");
    assert!(v["events"][0].get("by").is_none_or(Value::is_null), "the owner never sees who: {v}");
    assert_eq!(verify("CDEF34679HJK"), json!({"result": "mismatch"}), "a wrong key still gets the one answer");
    // An owner's new submission of it is refused, and told why.
    let registry = Serving::start(&company, &["serve"]);
    let o = crate::registry_service::owner(&registry.url, &token);
    o.drop_mail(KWSA, &support::typed(MARUICHI, KWSA, "<late@maruichi.example>", "35075-00002K", &key));
    o.once();
    let subs = submissions(&o);
    assert_eq!(subs[0]["result"], "rejected", "{subs:?}");
    let why = subs[0]["reasons"][0].as_str().unwrap();
    assert!(why.contains("取消") && why.contains("有効ではありません") && why.contains("誤って発行したため"), "{why}");
    let reply = crate::common::mails_in(&o.maildir("relay")).into_iter().find(|m| m.to.contains(&MARUICHI.to_string())).unwrap();
    assert!(reply.body.contains("取消"), "{}", reply.body);
    // A change of it is refused too.
    company.drop_mail(KANAGAWA, &change_mail("chg-late@maruichi.example", &EXTENSION.replace("35075-00001M", "35075-00002K").replace("前払金保証金額", "契約保証金額")));
    company.once();
    let refused = company.mails(MARUICHI).into_iter().find(|m| m.in_reply_to.as_deref() == Some("<chg-late@maruichi.example>")).unwrap();
    assert!(refused.body.contains("取消") && refused.body.contains("変更できません"), "{}", refused.body);
    drop(registry);
}

/// A 取消 on the desk in a real browser (the form, its confirmation page, the history),
/// then the lookup page as an owner's staff see it: 取消 and the history with its reason.
#[test]
fn a_cancellation_on_the_desk_shows_on_the_lookup_page_in_a_real_browser() {
    let _one = crate::browser::ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (company, _) = company();
    let m = company.mails(MARUICHI).remove(0);
    let key = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00002K")).unwrap().1)).unwrap();
    crate::desk_web::add_user(&company, "鈴木神奈川", &["branch:kanagawa@ejcs.example"]);
    crate::desk_web::add_user(&company, "田中茨城", &["branch:ibaraki@ejcs.example"]);
    let registry = Serving::start(&company, &["serve"]);
    let base = registry.url.clone();

    let b = crate::browser::Browser::start();
    b.go(&format!("{base}/desk/"));
    b.type_into("#name", "鈴木神奈川");
    b.type_into("#password", crate::desk_web::PASSWORD);
    b.click("#login");
    b.wait_text("#summary", "保留メール");
    b.go(&format!("{base}/desk/certificates/35075-00002K"));
    b.click("#state-action option[value=cancel]");
    b.type_into("#state-reason", "契約保証は不要となったため（誤発行）");
    b.screenshot("desk-state-form");
    b.click("#state-next");
    // The confirmation: nothing is done yet.
    assert!(b.wait_text("h1", "取消").contains("35075-00002K"), "{}", b.text("h1"));
    assert_eq!(b.text("#confirm-reason"), "契約保証は不要となったため（誤発行）");
    assert!(b.text("#confirm").contains("keiyaku@kwsa.example"), "says who is told: {}", b.text("#confirm"));
    assert!(!b.overflows());
    b.screenshot("desk-state-confirm");
    assert_eq!(company.json(&["certificate", "35075-00002K"])["status"], "valid", "not before it is confirmed");
    b.click("#confirm-state");
    assert!(b.wait_text("#notice", "状態を変更しました").contains("通知します"));
    let history = b.text("#events");
    assert!(history.contains("取消") && history.contains("鈴木神奈川") && history.contains("誤発行"), "{history}");
    assert!(b.source().contains("id=\"state-form\"") == false, "nothing more to do to a cancelled certificate");
    b.screenshot("desk-state-done");
    let c = company.json(&["certificate", "35075-00002K"]);
    assert_eq!((c["status"].as_str(), c["events"][0]["by"].as_str()), (Some("cancelled"), Some("鈴木神奈川")), "{c}");
    let actions = company.json(&["staff", "actions"]);
    assert!(actions.as_array().unwrap().iter().any(|a| a["action"] == "certificate cancel" && a["target"] == "35075-00002K" && a["by"] == "鈴木神奈川"), "{actions}");

    // The lookup page: 取消, and why, in the history.
    b.go(&format!("{base}/"));
    b.type_into("#number", "35075-00002K");
    b.type_into("#key", &key);
    b.click("#submit");
    assert_eq!(b.wait_text("#status", "取消"), "状態：取消");
    assert!(b.text("#ended").contains("有効ではありません"));
    let history = b.text("#history");
    assert!(history.contains("新規") && history.contains("取消") && history.contains("誤発行"), "{history}");
    assert!(!history.contains("鈴木"), "who did it is not shown to owners: {history}");
    assert!(!b.overflows());
    b.screenshot("lookup-cancelled");
    b.call("POST", &b.s("/execute/sync"), json!({"script": "document.getElementById('history').scrollIntoView()", "args": []}));
    b.screenshot("lookup-cancelled-history");
    b.close();

    // Another branch's staff cannot, and a post without the form's token is refused.
    let other = crate::desk_web::login(&base, "田中茨城");
    let form = "action=cancel&reason=x&confirm=yes&csrf=";
    assert_eq!(other.post("/desk/certificates/35075-00001M/state", &format!("{form}{}", other.csrf)), 403, "another branch's certificate");
    let own = crate::desk_web::login(&base, "鈴木神奈川");
    assert_eq!(own.post("/desk/certificates/35075-00001M/state", form), 403, "no CSRF token");
    assert_eq!(company.json(&["certificate", "35075-00001M"])["status"], "valid");
}

#[test]
fn a_notice_brings_the_events_lost_before_it_and_a_submission_stays_a_submission_whatever_its_headers() {
    let mut p = Pair::new(false);
    p.company.run_ok(&["certificate", "35075-00001M", "claim", "--reason", "前払金の返還請求", "--by", "佐藤"]);
    p.company.once();
    assert_eq!(p.lose(), 1, "the claim's notice is lost on the way");
    // A reason with text that reads like a key: the notice is still a notice.
    p.company.run_ok(&["certificate", "35075-00001M", "settle", "--reason", "返還を受けて精算（認証キー：ABCD2345EFGH の照会済み）", "--by", "佐藤"]);
    p.company.once();
    let settled = p.carry();
    assert_eq!(settled.len(), 1);
    p.owner.once();
    assert_eq!(kinds(&told(&p.owner, "35075-00001M")), [("claimed".to_string(), "mail".to_string()), ("settled".to_string(), "mail".to_string())],
               "the registry told both when asked about the second");
    assert_eq!(submissions(&p.owner).len(), 4, "the notice was not taken for a submission");
    assert!(crate::common::mails_in(&p.owner.maildir("relay")).iter().all(|m| !m.to.iter().any(|t| t.ends_with("@ejcs.example"))), "nor answered");
    // A contractor's submission that carries the header of a real event is still checked
    // and answered as a submission.
    let id = told(&p.owner, "35075-00001M")[1]["id"].as_str().unwrap().to_string();
    let m = p.company.mails(MARUICHI).into_iter().find(|m| m.attachments.iter().any(|(n, _)| n.contains("35075-00003M"))).unwrap();
    let key = key_in(&pdf_text(&m.attachments.iter().find(|(n, _)| n.contains("35075-00003M")).unwrap().1)).unwrap();
    let typed = support::typed(MARUICHI, KWSA, "<with-header@maruichi.example>", "35075-00003M", &key);
    let typed = [format!("X-Esurety-Event: {id}\r\n").into_bytes(), typed].concat();
    p.owner.drop_mail(KWSA, &typed);
    p.owner.once();
    let subs = submissions(&p.owner);
    let s = subs.iter().find(|s| s["message_id"] == "<with-header@maruichi.example>").unwrap_or_else(|| panic!("checked as a submission: {subs:?}"));
    assert_eq!(s["result"], "accepted", "{s}");
}

/// Something on `port` (or any free one) that takes connections and never answers; how
/// many it took.
fn silent_listener(port: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port = l.local_addr().unwrap().port();
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = taken.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(c);
        }
    });
    (port, taken)
}

/// An owner's endpoint that never answers costs one try (one timeout) per sweep, not one
/// per waiting event: the other events wait, and the mail goes as ever.
#[test]
fn an_owner_endpoint_that_never_answers_is_tried_once_a_sweep() {
    let p = Pair::new(true);
    let (_, taken) = silent_listener(p.port);
    for (n, a) in [("35075-00002K", "cancel"), ("35075-00003M", "terminate"), ("35075-00004K", "cancel")] {
        p.company.run_ok(&["certificate", n, a, "--reason", "テスト", "--by", "佐藤"]);
    }
    p.company.once();
    assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 1, "one connection to the silent endpoint");
    let w = p.company.json(&["webhooks"]);
    let tried: Vec<&Value> = w.as_array().unwrap().iter().filter(|w| w["attempts"] == 1).collect();
    assert_eq!(tried.len(), 1, "{w}");
    assert!(tried[0]["last_error"].as_str().unwrap().contains("no answer"), "{w}");
    let notices = crate::common::mails_in(&p.company.maildir("relay")).into_iter().filter(|m| m.to.contains(&KWSA.to_string())).count();
    assert_eq!(notices, 3, "the owner's mail went all the same");
    // The owner's endpoint taken out of the configuration: its webhooks wait, and staff
    // see why.
    p.company.edit_config(|t| t.replace("webhook_url = ", "# webhook_url = "));
    p.at("2026-07-04T10:05:00+09:00");
    p.company.once();
    let staff = p.company.run_ok(&["staff", "list"]);
    assert!(staff.contains("no webhook_url"), "{staff}");
}

/// A stranger's forged notices while the registry does not answer: the registry is asked
/// once a pass (then taken as away), never once per notice; the notices wait.
#[test]
fn forged_notices_cost_one_question_a_pass_while_the_registry_is_away() {
    let (port, taken) = silent_listener(0);
    let o = crate::registry_service::owner(&format!("http://127.0.0.1:{port}"), "esr_0123456789abcdef0123456789abcdef0123456789ab");
    o.edit_config(|t| t.replacen("numbers = ", "timeout_seconds = 1\nnumbers = ", 1));
    for i in 1..=3 {
        let raw = format!("From: stranger@evil.example\r\nTo: {KWSA}\r\nSubject: =?utf-8?B?44CQ6Zu75a2Q5L+d6Ki844CR?= 35075-0000{i}M\r\nMessage-ID: <forged{i}@evil.example>\r\nX-Esurety-Event: evt_00000000000000000000000{i}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n");
        o.drop_mail(KWSA, raw.as_bytes());
    }
    let out = o.once();
    assert!(String::from_utf8_lossy(&out.stderr).contains("left for a later pass 3"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 1, "asked once, then taken as away");
}

/// A webhook secret is rotated without a webhook lost: the company signs with the new and
/// the old while the owner still knows only the old, then the owner takes the new one;
/// a sender with only the old one is refused after.
#[test]
fn a_webhook_secret_is_rotated_without_losing_a_webhook() {
    const NEW: &str = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=";
    let p = Pair::new(true);
    p.company.env.borrow_mut().push(("ESURETY_WEBHOOK_KWSA".into(), format!("{NEW} {SECRET}")));
    let web = p.owner_web();
    p.company.run_ok(&["certificate", "35075-00002K", "cancel", "--reason", "誤発行", "--by", "佐藤"]);
    p.company.once();
    assert_eq!(kinds(&told(&p.owner, "35075-00002K")), [("cancelled".to_string(), "webhook".to_string())], "the owner knows the old one only");
    drop(web);
    p.owner.env.borrow_mut().push(("ESURETY_WEBHOOK_SECRET".into(), NEW.into()));
    let web = p.owner_web();
    p.company.run_ok(&["certificate", "35075-00004K", "cancel", "--reason", "誤発行", "--by", "佐藤"]);
    p.company.once();
    assert_eq!(kinds(&told(&p.owner, "35075-00004K")), [("cancelled".to_string(), "webhook".to_string())], "the owner knows the new one only");
    // A sender that has only the old one now is refused, and tries again later.
    p.company.env.borrow_mut().push(("ESURETY_WEBHOOK_KWSA".into(), SECRET.into()));
    p.company.run_ok(&["certificate", "35075-00003M", "terminate", "--reason", "工事の中止", "--by", "佐藤"]);
    p.company.once();
    assert!(told(&p.owner, "35075-00003M").is_empty());
    let w = p.company.json(&["webhooks"]);
    assert!(w.as_array().unwrap().iter().any(|w| w["number"] == "35075-00003M" && w["status"] == "pending" && w["last_error"] == "HTTP 401"), "{w}");
    drop(web);
}

/// An owner's server on HTTPS with a certificate of its own CA: webhooks go to it when the
/// company trusts that CA (`webhook_ca_file`), and never in clear or to a server it does
/// not trust.
#[test]
fn webhooks_go_over_https_to_an_owner_whose_ca_the_company_trusts() {
    let p = Pair::new(true);
    let tls = p.owner.dir.join("tls");
    let ok = std::process::Command::new(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/ca.sh")).arg(&tls).status().unwrap();
    assert!(ok.success(), "openssl made the test CA");
    let listen = format!("listen = \"127.0.0.1:{}\"", p.port);
    p.owner.edit_config(|t| t.replace(&listen, &format!("{listen}\ntls_cert = \"{}\"\ntls_key = \"{}\"", tls.join("cert.pem").display(), tls.join("key.pem").display())));
    let web = p.owner_web();
    assert!(web.url.starts_with("https://"), "{}", web.url);
    // Not yet trusted: the webhook waits, with why.
    p.company.edit_config(|t| t.replace(&format!("http://127.0.0.1:{}", p.port), &format!("https://localhost:{}", p.port)));
    p.company.run_ok(&["certificate", "35075-00002K", "cancel", "--reason", "誤発行", "--by", "佐藤"]);
    p.company.once();
    let w = p.company.json(&["webhooks"]);
    assert!(w[0]["last_error"].as_str().unwrap().contains("TLS"), "{w}");
    assert!(told(&p.owner, "35075-00002K").is_empty());
    // Trusted, a minute later: delivered.
    p.company.edit_config(|t| t.replace("webhook_secret_env = \"ESURETY_WEBHOOK_KWSA\"", &format!("webhook_secret_env = \"ESURETY_WEBHOOK_KWSA\"\nwebhook_ca_file = \"{}\"", tls.join("ca.pem").display())));
    p.company.env.borrow_mut().push(("ESURETY_TEST_NOW".into(), "2026-07-04T10:01:00+09:00".into()));
    p.company.once();
    assert_eq!(kinds(&told(&p.owner, "35075-00002K")), [("cancelled".to_string(), "webhook".to_string())]);
    drop(web);
}
