//! The two guarantees the company sells and the two certificate formats.
//!
//! Shared vocabulary: the form parser reads them, issuance numbers them (the product
//! letter), the documents print them, the JSON of `cli.md` names them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Product {
    /// 前払金保証: the advance payment guarantee.
    #[serde(rename = "前払金保証")]
    Advance,
    /// 契約保証: the contract performance guarantee.
    #[serde(rename = "契約保証")]
    Contract,
    /// 中間前払金保証: the intermediate advance payment guarantee, applied for once the
    /// owner has certified the works' progress (認定調書), against a 前払金保証 of ours.
    #[serde(rename = "中間前払金保証")]
    Intermediate,
    /// 契約保証予約 (入札ボンド): a promise, made before a bid, to issue the 契約保証 if the
    /// bidder wins. Paper only; its 予約証書 is printed and posted.
    #[serde(rename = "契約保証予約")]
    BidBond,
}

impl Product {
    pub const ALL: [Product; 4] = [Product::Advance, Product::Contract, Product::Intermediate, Product::BidBond];

    pub fn name(self) -> &'static str {
        match self {
            Product::Advance => "前払金保証",
            Product::Contract => "契約保証",
            Product::Intermediate => "中間前払金保証",
            Product::BidBond => "契約保証予約",
        }
    }
    /// The letter that ends a 保証契約番号.
    pub fn letter(self) -> char {
        match self {
            Product::Advance => 'M',
            Product::Contract => 'K',
            // Ours (the leaflets show only M): C for 中間 (chūkan).
            Product::Intermediate => 'C',
            // Ours too: Y for 予約 (yoyaku).
            Product::BidBond => 'Y',
        }
    }
    pub fn from_letter(c: char) -> Option<Self> {
        Product::ALL.into_iter().find(|p| p.letter() == c)
    }
    pub fn from_name(s: &str) -> Option<Self> {
        let s = crate::text::squash(s);
        Product::ALL.into_iter().find(|p| s == p.name() || s == p.name().trim_end_matches("保証"))
    }
    /// The terms named in the certificate's closing sentence.
    pub fn terms(self) -> &'static str {
        match self {
            Product::Advance => "前払金保証約款",
            Product::Contract => "契約保証約款",
            Product::Intermediate => "中間前払金保証約款",
            // The reservation promises a 契約保証 under its terms.
            Product::BidBond => "契約保証約款",
        }
    }
    /// The owner's procedure that number + key completes.
    pub fn procedure(self) -> &'static str {
        match self {
            Product::Advance => "前払金請求手続",
            Product::Contract => "請負契約締結手続",
            Product::Intermediate => "中間前払金請求手続",
            // It stands in for the 入札保証金 of the bid.
            Product::BidBond => "入札手続",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    #[serde(rename = "電子保証")]
    Electronic,
    #[serde(rename = "証書(紙)")]
    Paper,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Electronic => "電子保証",
            Format::Paper => "証書(紙)",
        }
    }
}
