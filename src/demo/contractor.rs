//! What the demo's contractors do with the completion mail, as real ones would: forward it
//! whole to the owner, attach the key notice PDF to a new mail among other documents, or
//! type number and key into a mail. Builds real RFC 5322 messages with lettre.

use lettre::message::header::{ContentDisposition, ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};

pub enum Submit<'a> {
    /// The completion mail forwarded as it came (an attached `message/rfc822`).
    Forward { completion: &'a [u8] },
    /// A new mail with the key notice PDF among other documents.
    Attach { notice_name: &'a str, notice: &'a [u8] },
    /// Number and key typed into the body.
    Typed { number: &'a str, key: &'a str },
}

pub fn submission(from: &str, to: &str, subject: &str, message_id: &str, how: Submit<'_>) -> Vec<u8> {
    let mb = |a: &str| Mailbox::new(None, a.parse().expect("a demo address"));
    let b = lettre::Message::builder().from(mb(from)).to(mb(to)).subject(subject).message_id(Some(message_id.to_string()));
    let text = |t: &str| SinglePart::plain(t.to_string());
    let msg = match how {
        Submit::Forward { completion } => {
            let body = Body::new_with_encoding(completion.to_vec(), ContentTransferEncoding::SevenBit)
                .unwrap_or_else(|_| Body::new(completion.to_vec()));
            let inner = SinglePart::builder()
                .header(ContentType::parse("message/rfc822").expect("a content type"))
                .header(ContentDisposition::attachment("forwarded.eml"))
                .body(body);
            b.multipart(MultiPart::mixed().singlepart(text("お世話になっております。\n電子保証の発行完了のお知らせを転送いたします。\nご確認のほどよろしくお願いいたします。\n")).singlepart(inner))
        }
        Submit::Attach { notice_name, notice } => {
            let pdf = ContentType::parse("application/pdf").expect("a content type");
            let other = "工事請負契約書（写し）\n".as_bytes().to_vec();
            b.multipart(MultiPart::mixed()
                .singlepart(text("お世話になっております。\n契約関係書類と、電子保証の認証キーのお知らせをお送りします。\n"))
                .singlepart(Attachment::new("契約書写し.txt".into()).body(other, ContentType::TEXT_PLAIN))
                .singlepart(Attachment::new(notice_name.to_string()).body(notice.to_vec(), pdf)))
        }
        Submit::Typed { number, key } => b.singlepart(text(&format!(
            "お世話になっております。\n前払金保証の電子保証について、下記のとおりお知らせします。\n\n保証契約番号：{number}\n認証キー：{key}\n\nよろしくお願いいたします。\n"
        ))),
    };
    msg.expect("a demo submission builds").formatted()
}

/// An ordinary mail in the owner's shared mailbox: not a submission.
pub fn unrelated(from: &str, to: &str) -> Vec<u8> {
    let mb = |a: &str| Mailbox::new(None, a.parse().expect("a demo address"));
    lettre::Message::builder().from(mb(from)).to(mb(to)).subject("来週の入札説明会について").message_id(Some("<meeting@kwsa.example>".into()))
        .singlepart(SinglePart::plain("来週火曜日の入札説明会は第2会議室で行います。\n".to_string()))
        .expect("a demo mail builds").formatted()
}

/// A notice another surety company issued (West Japan), typed into a mail: this owner's
/// deployment has no registry for that company, so its staff check it by hand.
pub fn other_surety(from: &str, to: &str) -> Vec<u8> {
    typed(from, to, "電子保証の提出（西日本建設業保証）", "<west-japan@maruichi.example>",
        "お世話になっております。\n電子保証の認証キーのお知らせの内容をお送りします。\n\n西日本建設業保証株式会社 大阪支店\n工事名：○○送水管布設替工事\n保証契約番号：27075-00012M\n認証キー：HJKM3467CDEF\n\nよろしくお願いいたします。\n")
}

/// A non-life insurer's electronic policy: a viewing URL and password, no key.
pub fn insurer_policy(from: &str, to: &str) -> Vec<u8> {
    typed(from, to, "履行保証保険（電子保険証券）の提出", "<insurer@sanwa-doboku.example>",
        "お世話になっております。\n履行保証保険の電子保険証券をお知らせします。\n\nあおぞら損害保険株式会社\n電子保険証券のお知らせ\n工事名：○○配水池耐震補強工事\n証券番号：T2026-0034471\n閲覧用URL：https://e-policy.aozora-sonpo.example/view\n閲覧パスワード：pX7kQ2mR\n\nよろしくお願いいたします。\n")
}

fn typed(from: &str, to: &str, subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    let mb = |a: &str| Mailbox::new(None, a.parse().expect("a demo address"));
    lettre::Message::builder().from(mb(from)).to(mb(to)).subject(subject).message_id(Some(message_id.into()))
        .singlepart(SinglePart::plain(body.to_string()))
        .expect("a demo mail builds").formatted()
}

/// 取手興業's 契約保証予約 (入札ボンド), sent before a bid on `bid_date` (the demo computes
/// it from its day, so the story holds whenever it is told).
pub fn bid_bond_application(from: &str, to: &str, bid_date: chrono::NaiveDate) -> Vec<u8> {
    typed(from, to, "保証申込（契約保証予約）", "<bid-bond@toride-kogyo.example>", &format!(
        "いつもお世話になっております。\n入札にあたり、契約保証の予約を申し込みます。\n\n【契約保証予約】\n申込：申し込む\n発注者名：取手市長\n工事名：取手駅西口広場整備工事\n入札日：{}\n予定価格：60,000,000円\n契約保証金額：6,000,000円\n\n-- \n取手興業株式会社 工務部\n",
        crate::text::format_era(bid_date)))
}

/// 丸一建設 asks its branch for its 保証契約一覧, narrowed to one owner.
pub fn list_request(from: &str, to: &str) -> Vec<u8> {
    typed(from, to, "保証契約一覧の送付のお願い", "<list@maruichi.example>",
        "いつもお世話になっております。\n当社の保証契約一覧をお送りください。\n\n発注者名：水道企業団\n\n-- \n丸一建設株式会社 総務部\n")
}
