//! What a mail to a branch is for, from its subject and texts alone (pure): a change
//! (変更申込), a resend (再送), an application, a request for the blank form, an
//! application without its form, or something for staff. Who sent it and whether that may
//! be trusted are decided elsewhere; this only reads.

use crate::branch::application::{change, form};
use crate::intake::letter::Letter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// 変更申込: the subject says so, or a text has a 【変更申込】 section.
    Change,
    /// 再送 of a certificate's documents.
    Resend,
    /// 保証契約一覧: the contractor's list of its certificates.
    List,
    /// An application, with the text that holds its form.
    Application { form: String },
    /// No form, and the subject asks for one (申込書).
    FormRequest,
    /// No form, and the subject says 保証申込: answered with the blank form as the problem.
    MissingForm,
    /// Anything else: held for staff.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub purpose: Purpose,
    /// Whether it asks for something issued or changed (it carries a form or a change),
    /// so its sender must be authenticated when `[sender_auth]` is on.
    pub authenticate: bool,
}

pub fn classify(letter: &Letter) -> Classified {
    let subject = crate::text::squash(&letter.subject);
    let is_change = subject.contains("変更申込") || letter.texts().any(|(_, t)| change::has_change(t));
    let form_text = letter.texts().map(|(_, t)| t).find(|t| form::has_form(t)).map(str::to_string);
    let authenticate = is_change || form_text.is_some();
    let purpose = if is_change {
        Purpose::Change
    } else if subject.contains("保証契約一覧") {
        Purpose::List
    } else if subject.contains("再送") {
        Purpose::Resend
    } else if let Some(form) = form_text {
        Purpose::Application { form }
    } else if subject.contains("申込書") {
        Purpose::FormRequest
    } else if subject.contains("保証申込") {
        Purpose::MissingForm
    } else {
        Purpose::Other
    };
    Classified { purpose, authenticate }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(subject: &str, body: &str) -> Letter {
        let raw = format!("From: a@x\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
        crate::intake::letter::read(raw.as_bytes()).unwrap()
    }

    #[test]
    fn what_a_mail_is_for() {
        let form = "【請負工事の情報】\n工事名：x\n";
        let c = |s: &str, b: &str| classify(&letter(s, b));
        assert_eq!(c("変更申込", ""), Classified { purpose: Purpose::Change, authenticate: true });
        assert_eq!(c("再送のお願い", "35075-00001M"), Classified { purpose: Purpose::Resend, authenticate: false });
        assert!(matches!(c("保証申込", form).purpose, Purpose::Application { form } if form.contains("【請負工事の情報】")));
        assert!(c("保証申込", form).authenticate);
        assert_eq!(c("申込書をください", "").purpose, Purpose::FormRequest);
        assert_eq!(c("保証契約一覧の送付依頼", "工事名：浄水場").purpose, Purpose::List);
        assert!(!c("保証契約一覧", "").authenticate);
        assert_eq!(c("保証申込", "添付を忘れました").purpose, Purpose::MissingForm);
        assert_eq!(c("こんにちは", "").purpose, Purpose::Other);
        assert!(!c("こんにちは", "").authenticate);
    }
}
