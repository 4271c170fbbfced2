//! Owner side, step 3: the checks of `owner-side.md`, in order, for one pair found in a
//! submission. The registry's answer comes in (see [`crate::registry`]); this decides
//! accepted or rejected and says why, in plain Japanese. Pure.

use crate::config::{ContractEntry, Owner};
use crate::domain::Product;
use crate::registry::Verification;
use crate::domain::Found;
use crate::text::{format_yen, squash};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checked {
    pub accepted: bool,
    pub reasons: Vec<String>,
    /// The registry's version when checked (when number and key matched).
    pub version: Option<u32>,
    /// Whether the sender proved the key: only then may the reply tell registry contents.
    pub proven: bool,
    /// Told to the sender beside the result (an accepted notice of an earlier version).
    pub notes: Vec<String>,
}

pub fn check(found: &Found, v: &Verification, owner: &Owner, contracts: Option<&[ContractEntry]>) -> Checked {
    let rejected = |reason: String| Checked { accepted: false, reasons: vec![reason], version: None, proven: false, notes: vec![] };
    // 1. Known number and the right key (unknown and wrong are the same answer).
    let (status, latest, history, events) = match v {
        Verification::Valid { status, latest, history, events, .. } => (status, latest, history, events),
        Verification::Mismatch => return rejected("保証契約番号または認証キーが一致しません。お手元の「認証キーのお知らせ」をご確認ください".into()),
        Verification::Malformed => return rejected(format!("保証契約番号または認証キーの形式が正しくありません（認証キーは12文字です：{}文字読み取りました）", found.key.chars().count())),
        Verification::Locked { until } => return rejected(format!("この保証契約番号は確認の失敗が続いたため、{}まで確認できません", until.format("%Y-%m-%d %H:%M"))),
        Verification::SenderLocked { until } => return rejected(format!("このメールアドレスからの確認の失敗が続いたため、{}まで確認できません", until.format("%Y-%m-%d %H:%M"))),
    };
    let c = &latest.contents;
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    // 2. In force: not expired, ended or cancelled (`lifecycle.md`), and why when not.
    let why = events.iter().rev().find(|e| e.status == status.as_str());
    let when = why.and_then(|e| e.effective.as_deref().and_then(|d| d.parse().ok()).or_else(|| chrono::DateTime::parse_from_rfc3339(&e.at).ok().map(|t| t.with_timezone(&crate::clock::jst()).date_naive())));
    let since = when.map(|d| format!("{}から", crate::text::format_era(d))).unwrap_or_default();
    let because = why.map(|e| e.reason.as_str()).filter(|r| !r.is_empty()).map(|r| format!("（理由：{r}）")).unwrap_or_default();
    if !status.in_force() {
        reasons.push(format!("この保証は{since}{}となっており、有効ではありません{because}", status.label()));
    } else if *status == crate::domain::CertificateStatus::Claimed {
        notes.push(format!("この保証には{since}履行請求が記録されています（保証は有効です）"));
    }
    // 3. For this owner.
    if squash(&c.owner) != squash(&owner.name) {
        reasons.push(format!("この保証の発注者（被保証者）は{}様です。{}様宛の保証ではありません", c.owner, owner.name));
    }
    // 4. The notice agrees with the registry. A notice of an earlier version (the
    // certificate has changed since) is checked against the latest contents, and told so.
    if let Some(p) = &found.project
        && squash(p) != squash(&c.project)
    {
        if history.iter().any(|h| squash(&h.contents.project) == squash(p)) {
            notes.push(format!("お知らせの工事名「{p}」は変更前のものです。最新の内容（工事名「{}」）で確認しました", c.project));
        } else {
            reasons.push(format!("お知らせの工事名「{p}」が登録内容「{}」と一致しません", c.project));
        }
    }
    if let Some(label) = c.change_label()
        && found.label.as_deref().is_none_or(|l| squash(l) != squash(&label))
    {
        notes.push(format!("この保証は変更されています。最新の内容（{label}）で確認しました。最新の「認証キーのお知らせ」は受注者にお送りしています"));
    }
    if let Some(k) = &found.contractor
        && squash(k) != squash(&c.contractor)
        && c.jv.as_deref().is_none_or(|jv| squash(jv) != squash(k))
    {
        reasons.push(format!("お知らせの受注者名「{k}」が登録内容「{}」と一致しません", c.contractor));
    }
    if let Some(p) = found.product.as_deref().and_then(Product::from_name)
        && p != c.product
    {
        reasons.push(format!("お知らせの保証区分「{}」が登録内容「{}」と一致しません", p.name(), c.product.name()));
    }
    // 5. The owner's own list of contracts, where it keeps one.
    if let Some(list) = contracts {
        match list.iter().find(|e| squash(&e.project) == squash(&c.project) && squash(&e.contractor) == squash(&c.contractor)) {
            None => reasons.push(format!("工事名「{}」・受注者名「{}」の契約が契約一覧にありません", c.project, c.contractor)),
            Some(e) => {
                match c.product {
                    Product::Contract => {
                        let floor = (e.price as u128 * owner.contract_ratio_percent as u128).div_ceil(100) as u64;
                        if c.amount < floor {
                            reasons.push(format!("契約保証金額 {} は請負金額 {} の{}%（{}）に足りません", format_yen(c.amount), format_yen(e.price), owner.contract_ratio_percent, format_yen(floor)));
                        }
                    }
                    Product::Intermediate => {
                        let percent = owner.intermediate_percent.unwrap_or(0);
                        let cap = (e.price as u128 * percent as u128 / 100) as u64;
                        if c.amount > cap {
                            reasons.push(format!("中間前払金保証金額 {} は請負金額 {} の{percent}%（{}）を超えています", format_yen(c.amount), format_yen(e.price), format_yen(cap)));
                        }
                    }
                    // Paper only: never published, so never checked here.
                    Product::BidBond => {}
                    Product::Advance => {
                        let cap = (e.price as u128 * owner.advance_ratio_percent as u128 / 100) as u64;
                        if c.amount > cap {
                            reasons.push(format!("前払金保証金額 {} は請負金額 {} の{}%（{}）を超えています", format_yen(c.amount), format_yen(e.price), owner.advance_ratio_percent, format_yen(cap)));
                        }
                    }
                }
                if c.guarantee_end < e.term_end {
                    reasons.push(format!("保証期限（{}）が工期の終了日（{}）より前です", c.guarantee_end, e.term_end));
                }
            }
        }
    }
    Checked { accepted: reasons.is_empty(), reasons, version: Some(c.version), proven: true, notes }
}
