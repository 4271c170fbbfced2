//! Who may do what: with `[sender_auth]` on, an application whose `From` is not aligned
//! with a passing DKIM signature or SPF result is held with the reason, and with `[dkim]`
//! every outgoing mail carries a signature that verifies. DNS answers come from a file the
//! test writes (`offline = true`: no query is ever made).

use crate::common::{Setup, application, base64};
use esurety::sender_auth::{Answers, SenderAuth, Signer, Verdict};
use std::process::Command;

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

/// A new Ed25519 key: (PKCS#8 PEM, the public key as a DKIM record's p=).
fn keypair(s: &Setup, name: &str) -> (String, String) {
    let pem = s.dir.join(format!("{name}.pem"));
    assert!(Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&pem).status().unwrap().success());
    let der = Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&pem).output().unwrap().stdout;
    (std::fs::read_to_string(&pem).unwrap(), base64(&der[der.len() - 32..]))
}

fn signed(signer: &Signer, raw: &[u8]) -> Vec<u8> {
    signer.sign(raw).unwrap()
}

fn with_header(header: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(raw);
    out
}

#[test]
fn applications_need_an_aligned_dkim_or_spf_pass_and_outgoing_mail_is_signed() {
    let s = Setup::new();
    let (maruichi_pem, maruichi_pub) = keypair(&s, "maruichi");
    let (evil_pem, evil_pub) = keypair(&s, "evil");
    let (ejcs_pem, ejcs_pub) = keypair(&s, "ejcs");
    let answers = format!(
        "# fixed DNS answers for the test\n\
         s1._domainkey.maruichi.example v=DKIM1; k=ed25519; p={maruichi_pub}\n\
         s1._domainkey.evil.example v=DKIM1; k=ed25519; p={evil_pub}\n\
         esurety._domainkey.ejcs.example v=DKIM1; k=ed25519; p={ejcs_pub}\n\
         maruichi.example v=spf1 ip4:192.0.2.10 -all\n"
    );
    std::fs::write(s.dir.join("dns-answers.txt"), &answers).unwrap();
    std::fs::write(s.dir.join("ejcs.pem"), &ejcs_pem).unwrap();
    let mut config = std::fs::read_to_string(s.config()).unwrap();
    config += "\n[sender_auth]\nenabled = true\ndns_answers = \"dns-answers.txt\"\noffline = true\n\n[dkim]\ndomain = \"ejcs.example\"\nselector = \"esurety\"\nkey_file = \"ejcs.pem\"\n";
    std::fs::write(s.config(), config).unwrap();

    let maruichi = Signer::from_pem(&maruichi_pem, "maruichi.example", "s1").unwrap();
    let evil = Signer::from_pem(&evil_pem, "evil.example", "s1").unwrap();
    // 1: signed by 丸一建設's domain. 2: unsigned, from an address SPF does not allow.
    // 3: unsigned, from the address SPF allows. 4: signed, then the body changed.
    // 5: signed by another domain.
    s.drop_mail(KANAGAWA, &signed(&maruichi, &application(1)));
    s.drop_mail(KANAGAWA, &with_header("Received: from mx.evil.example (mx.evil.example [203.0.113.5])\r\n\tby mx.ejcs.example; Fri, 3 Jul 2026 09:00:00 +0900\r\n", &application(2)));
    s.drop_mail(KANAGAWA, &with_header("Return-Path: <soumu@maruichi.example>\r\nReceived: from mx.maruichi.example (mx.maruichi.example [192.0.2.10])\r\n\tby mx.ejcs.example; Fri, 3 Jul 2026 09:00:00 +0900\r\n", &application(3)));
    let tampered = String::from_utf8(signed(&maruichi, &application(4))).unwrap().replace("前払金保証金額：20,000,000円", "前払金保証金額：19,000,000円");
    s.drop_mail(KANAGAWA, tampered.as_bytes());
    s.drop_mail(KANAGAWA, &signed(&evil, &application(5)));
    s.once();

    let replied: Vec<String> = s.mails(MARUICHI).into_iter().map(|m| m.in_reply_to.unwrap_or_default()).collect();
    assert_eq!(replied, ["<app-1@maruichi.example>", "<app-3@maruichi.example>"], "only the authenticated ones were answered");
    let held = s.json(&["staff", "held"]);
    let reason = |n: usize| -> String {
        held.as_array().unwrap().iter().find(|h| h["message_id"] == format!("<app-{n}@maruichi.example>").as_str())
            .unwrap_or_else(|| panic!("app-{n} held: {held}"))["reason"].as_str().unwrap().to_string()
    };
    assert!(reason(2).contains("DKIM 署名がありません") && reason(2).contains("203.0.113.5"), "{}", reason(2));
    assert!(reason(4).contains("DKIM") && reason(4).contains("不合格"), "{}", reason(4));
    assert!(reason(5).contains("evil.example") && reason(5).contains("maruichi.example"), "{}", reason(5));
    assert_eq!(s.json(&["certificates"]).as_array().unwrap().len(), 4, "two applications issued, two certificates each");

    // Staff who know better can still release a held one.
    let id = held.as_array().unwrap().iter().find(|h| h["message_id"] == "<app-2@maruichi.example>").unwrap()["id"].as_i64().unwrap().to_string();
    s.run_ok(&["staff", "release", &id, "--by", "佐藤"]);
    s.once();
    assert_eq!(s.mails(MARUICHI).len(), 3);

    // Every mail esurety sent is signed for ejcs.example, and the signature verifies.
    let verifier = SenderAuth::new(Answers::parse(&answers, true).unwrap(), "test", &[]).unwrap();
    for m in s.mails(MARUICHI) {
        let head = String::from_utf8_lossy(&m.raw);
        assert!(head.contains("DKIM-Signature:") && head.contains("d=ejcs.example") && head.contains("c=relaxed/relaxed"), "signed");
        assert_eq!(verifier.check(&m.raw, KANAGAWA, None), Verdict::Aligned { via: "dkim", domain: "ejcs.example".into() }, "{}", m.subject);
    }
}

/// DNS that does not answer (here a name server on a closed port: every query is refused)
/// is a temporary failure: the application is neither held nor answered, but tried again
/// by later passes, and issued once DNS answers.
#[test]
fn a_temporary_dns_failure_leaves_the_application_for_a_later_pass() {
    let s = Setup::new();
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = std::fs::read_to_string(s.config()).unwrap();
    std::fs::write(s.config(), format!("{config}\n[sender_auth]\nenabled = true\nnameservers = [\"{closed}\"]\n")).unwrap();
    let app = with_header("Return-Path: <soumu@maruichi.example>\r\nReceived: from mx.maruichi.example (mx.maruichi.example [192.0.2.10])\r\n\tby mx.ejcs.example; Fri, 3 Jul 2026 09:00:00 +0900\r\n", &application(1));
    s.drop_mail(KANAGAWA, &app);
    let out = s.once();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("left for a later pass 1"), "{said}");
    assert!(s.mails(MARUICHI).is_empty(), "no answer yet");
    assert!(s.json(&["staff", "held"]).as_array().unwrap().is_empty(), "not held for staff");
    // DNS answers again (here: the record is known): the next pass issues.
    std::fs::write(s.dir.join("dns-answers.txt"), "maruichi.example v=spf1 ip4:192.0.2.10 -all\n").unwrap();
    std::fs::write(s.config(), format!("{config}\n[sender_auth]\nenabled = true\ndns_answers = \"dns-answers.txt\"\noffline = true\n")).unwrap();
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1);
    assert!(mails[0].subject.starts_with("電子保証（認証キー）発行完了のお知らせ"), "{}", mails[0].subject);
}
