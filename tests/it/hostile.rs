//! Values that are markup somewhere else, and headers that try to become two: whatever a
//! contractor writes prints as text in every PDF and mail, is never interpreted (Typst,
//! HTML, the mail templates) and never adds a header.

use crate::common::{Setup, application, key_in, parse_mail, pdf_text, with_project};

const KANAGAWA: &str = "kanagawa@ejcs.example";
const MARUICHI: &str = "soumu@maruichi.example";

#[test]
fn markup_in_a_value_prints_as_text_in_the_pdfs_and_the_mail() {
    let s = Setup::new();
    let markup = r#"#panic("x")*太字*_斜体_$x^2$<b>html</b>{{ company.name }}{% if true %}[@ref]\"#;
    s.drop_mail(KANAGAWA, &with_project(&application(0), markup));
    s.once();
    let mails = s.mails(MARUICHI);
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert!(m.subject.starts_with("電子保証（認証キー）発行完了のお知らせ"), "issued: {}", m.subject);
    let project = format!("○○浄水場△△修繕工事{markup}");
    assert!(m.body.contains(&format!("工事名：{project}")), "the mail shows it as written: {}", m.body);
    assert!(!m.body.contains("東日本建設業保証株式会社{{") && m.body.matches("{{ company.name }}").count() == 1, "not a template");
    for (name, pdf) in &m.attachments {
        let text = pdf_text(pdf);
        let squashed: String = project.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(text.contains(&squashed), "{name} prints the 工事名 as text: {text}");
    }
    // The registry shows it as written too.
    let key = key_in(&pdf_text(&m.attachments[0].1)).unwrap();
    assert_eq!(s.json(&["verify", "35075-00001M", &key])["certificate"]["project"], project.as_str());
}

#[test]
fn control_characters_never_reach_a_document_and_the_contractor_is_told() {
    let s = Setup::new();
    // A bell, an escape sequence, a right-to-left override and a bare CR in the 工事名.
    let raw = with_project(&application(0), "\u{7}\u{1b}[31m赤\u{202e}逆順\rです");
    s.drop_mail(KANAGAWA, &raw);
    s.once();
    let m = &s.mails(MARUICHI)[0];
    assert!(m.body.contains("工事名：○○浄水場△△修繕工事[31m赤逆順です"), "{}", m.body);
    assert!(m.body.contains("「工事名」から制御文字を取り除きました"), "told: {}", m.body);
    assert!(!m.raw.iter().any(|&b| b == 0x07 || b == 0x1b), "no control byte in the mail");
    let c = s.json(&["certificate", "35075-00001M"]);
    assert_eq!(c["project"], "○○浄水場△△修繕工事[31m赤逆順です");
}

#[test]
fn a_subject_that_carries_a_line_break_does_not_add_a_header_to_the_reply() {
    let s = Setup::new();
    // 「保証申込\r\nBcc: evil@attacker.example」 encoded in the subject.
    let raw = String::from_utf8(application(1)).unwrap().replace(
        "Subject: =?utf-8?B?5L+d6Ki855Sz6L68?=",
        "Subject: =?utf-8?B?5L+d6Ki855Sz6L68DQpCY2M6IGV2aWxAYXR0YWNrZXIuZXhhbXBsZQ==?=",
    );
    s.drop_mail(KANAGAWA, raw.as_bytes());
    s.once();
    let m = &s.mails(MARUICHI)[0];
    let head = String::from_utf8_lossy(&m.raw);
    let head = head.split("\r\n\r\n").next().unwrap();
    assert!(!head.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{head}");
    assert!(s.mails("relay").is_empty(), "nothing went to the address in the subject");
    let reparsed = parse_mail(&m.raw);
    assert!(reparsed.subject.contains("Bcc: evil@attacker.example") || reparsed.subject.contains("Bcc:"), "the subject keeps it as text: {}", reparsed.subject);
    assert!(!reparsed.subject.contains('\n') && !reparsed.subject.contains('\r'));
}
