//! Building submissions as contractors do, and key notices as other tools would make them.

use esurety::demo::contractor::{Submit, submission};
use esurety::branch::documents::{DocumentKind, Documents, Renderer, Templates};
use esurety::templates::{FONTS, TemplateSet};

pub fn forward(from: &str, to: &str, mid: &str, completion: &[u8]) -> Vec<u8> {
    submission(from, to, "Fw: 電子保証（認証キー）発行完了のお知らせ", mid, Submit::Forward { completion })
}

pub fn attach(from: &str, to: &str, mid: &str, name: &str, pdf: &[u8]) -> Vec<u8> {
    submission(from, to, "契約書類の提出", mid, Submit::Attach { notice_name: name, notice: pdf })
}

pub fn typed(from: &str, to: &str, mid: &str, number: &str, key: &str) -> Vec<u8> {
    submission(from, to, "電子保証の提出", mid, Submit::Typed { number, key })
}

/// A key notice laid out as another company's tool might: another font, labels spaced out
/// in a block of their own, the values in a separate block in another order, no data
/// attached. What an extractor reads from it resembles `seeds/001`.
const FOREIGN: &str = r#"#let d = json("/data.json")
#set page(paper: "a4", margin: 2cm)
#set text(font: "IPAexMincho", size: 11pt, lang: "ja", cjk-latin-spacing: none)
#align(center)[#text(size: 16pt)[電子保証にかかる「認証キー」のお知らせ]]
#v(1em)
電子証書を「保証確認サービス」に掲載しましたので、お知らせします。
#v(1em)
#grid(columns: (1fr, 1fr), gutter: 1em,
  [工　　　事　　　名 ：\ 受　　注　　者　　名 ：\ 商品（保証区分） ：\ 保 証 契 約 番 号 ：\ 認　　証　　キ　　ー ：],
  [])
#v(2em)
#d.key \
#d.contractor \
#d.product \
#d.number \
#d.project
"#;

pub fn foreign_notice(number: &str, key: &str, project: &str, contractor: &str) -> Vec<u8> {
    let r = Renderer::new(FONTS, Templates { notice: FOREIGN.into(), certificate: String::new(), fee: String::new(), reservation: String::new() }).unwrap();
    let data = serde_json::json!({"number": number, "key": key, "project": project, "contractor": contractor, "product": "前払金保証"});
    r.render(DocumentKind::Notice, &serde_json::to_vec(&data).unwrap(), chrono::DateTime::parse_from_rfc3339(crate::common::NOW).unwrap()).unwrap()
}

/// The branch's own notice for a certificate, typeset again with its 工事名 changed: the
/// number and key are genuine, the works are not.
pub fn altered_notice(s: &crate::common::Setup, number: &str, key: &str, project: &str) -> Vec<u8> {
    let config = esurety::config::Config::load(&s.config()).unwrap();
    let store = esurety::store::Store::open(&config.store).unwrap();
    let mut cert = store.certificate(number).unwrap().unwrap().latest;
    cert.project = project.to_string();
    let docs = Documents::new(&TemplateSet::embedded()).unwrap();
    let key = esurety::domain::AuthKey::parse(key).unwrap();
    docs.render(DocumentKind::Notice, &config, &cert, Some(&key), chrono::DateTime::parse_from_rfc3339(crate::common::NOW).unwrap()).unwrap()
}
