//! The life of a guarantee after its issue (`lifecycle.md`): what staff may do to a
//! certificate in which state, what the daily job does once 保証期限 has passed, and the
//! event each change is for the owner. Pure.

use super::CertificateStatus;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What staff do to a certificate (`esurety certificate NUMBER ACTION`, the desk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffAction {
    /// 取消: issued by mistake, never in force.
    Cancel,
    /// 解約: ended early (the contract was cancelled, the advance returned).
    Terminate,
    /// 履行請求: the owner has claimed under the guarantee.
    Claim,
    /// The claim is settled: the guarantee stands again (or has expired meanwhile).
    Settle,
}

impl StaffAction {
    pub fn parse(s: &str) -> Option<StaffAction> {
        Some(match s {
            "cancel" => StaffAction::Cancel,
            "terminate" => StaffAction::Terminate,
            "claim" => StaffAction::Claim,
            "settle" => StaffAction::Settle,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StaffAction::Cancel => "cancel",
            StaffAction::Terminate => "terminate",
            StaffAction::Claim => "claim",
            StaffAction::Settle => "settle",
        }
    }

    /// As staff read it on the desk's button.
    pub fn label(self) -> &'static str {
        match self {
            StaffAction::Cancel => "取消",
            StaffAction::Terminate => "解約",
            StaffAction::Claim => "履行請求の記録",
            StaffAction::Settle => "履行請求の精算",
        }
    }
}

/// What happened to a certificate, as its history and the owner's notices name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Changed,
    Expired,
    Terminated,
    Cancelled,
    Claimed,
    Settled,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Changed => "changed",
            EventKind::Expired => "expired",
            EventKind::Terminated => "terminated",
            EventKind::Cancelled => "cancelled",
            EventKind::Claimed => "claimed",
            EventKind::Settled => "settled",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [EventKind::Changed, EventKind::Expired, EventKind::Terminated, EventKind::Cancelled, EventKind::Claimed, EventKind::Settled]
            .into_iter().find(|k| k.as_str() == s)
    }

    /// As people read it (the history, the notices).
    pub fn label(self) -> &'static str {
        match self {
            EventKind::Changed => "変更",
            EventKind::Expired => "期限満了",
            EventKind::Terminated => "解約",
            EventKind::Cancelled => "取消",
            EventKind::Claimed => "履行請求",
            EventKind::Settled => "履行請求の精算",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an action does not apply to a certificate in its state: said to staff as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotAllowed(pub String);

/// The state a staff action leads to from `status`, and its event; `guarantee_end` and
/// `today` decide where a settled claim returns (期限満了 once 保証期限 has passed).
pub fn act(status: CertificateStatus, action: StaffAction, guarantee_end: NaiveDate, today: NaiveDate) -> Result<(CertificateStatus, EventKind), NotAllowed> {
    use CertificateStatus as S;
    let no = |why: &str| Err(NotAllowed(format!("{}（現在の状態：{}）", why, status.label())));
    match (action, status) {
        (StaffAction::Cancel, S::Valid) => Ok((S::Cancelled, EventKind::Cancelled)),
        (StaffAction::Cancel, S::Claimed) => no("履行請求中の保証は取り消せません。先に精算してください"),
        (StaffAction::Cancel, _) => no("有効な保証だけが取り消せます"),
        (StaffAction::Terminate, S::Valid) => Ok((S::Terminated, EventKind::Terminated)),
        (StaffAction::Terminate, S::Claimed) => no("履行請求中の保証は解約できません。先に精算してください"),
        (StaffAction::Terminate, _) => no("有効な保証だけが解約できます"),
        (StaffAction::Claim, S::Valid) => Ok((S::Claimed, EventKind::Claimed)),
        (StaffAction::Claim, S::Claimed) => no("履行請求は既に記録されています"),
        (StaffAction::Claim, _) => no("有効な保証にだけ履行請求を記録できます"),
        (StaffAction::Settle, S::Claimed) if today > guarantee_end => Ok((S::Expired, EventKind::Settled)),
        (StaffAction::Settle, S::Claimed) => Ok((S::Valid, EventKind::Settled)),
        (StaffAction::Settle, _) => no("履行請求中の保証だけが精算できます"),
    }
}

/// The daily job: a certificate still 有効 expires the day after its 保証期限. A claimed
/// one waits for its claim to be settled; reservations (契約保証予約) lapse on their own
/// rule (`products.md`).
pub fn expires(status: CertificateStatus, guarantee_end: NaiveDate, today: NaiveDate) -> bool {
    status == CertificateStatus::Valid && today > guarantee_end
}

/// One entry of a certificate's history after its issue: what happened, when, who did it
/// and why. `id` is the event's id, the same in every notice to the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub number: String,
    pub kind: EventKind,
    /// The state after it.
    pub status: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// The day it takes effect, when staff gave one (a 解約's `--date`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<String>,
    /// Who: a staff member's name, `system` for the daily job, the contractor's address
    /// for a 変更 by mail. Never sent to the owner.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
    pub reason: String,
    /// The version a 変更 made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

impl Event {
    /// The event as owners read it (their webhook, the registry's API): never who did it.
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "type": format!("certificate.{}", self.kind), "kind": self.kind, "label": self.kind.label(), "number": self.number,
            "status": self.status, "at": self.at, "effective": self.effective, "reason": self.reason, "version": self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CertificateStatus as S;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn staff_actions_apply_only_where_they_make_sense() {
        let (end, today) = (d("2027-03-31"), d("2026-12-06"));
        assert_eq!(act(S::Valid, StaffAction::Cancel, end, today), Ok((S::Cancelled, EventKind::Cancelled)));
        assert_eq!(act(S::Valid, StaffAction::Terminate, end, today), Ok((S::Terminated, EventKind::Terminated)));
        assert_eq!(act(S::Valid, StaffAction::Claim, end, today), Ok((S::Claimed, EventKind::Claimed)));
        assert_eq!(act(S::Claimed, StaffAction::Settle, end, today), Ok((S::Valid, EventKind::Settled)));
        assert_eq!(act(S::Claimed, StaffAction::Settle, end, d("2027-04-01")), Ok((S::Expired, EventKind::Settled)), "settled after 保証期限: expired");
        for (s, a) in [(S::Cancelled, StaffAction::Cancel), (S::Cancelled, StaffAction::Terminate), (S::Expired, StaffAction::Claim),
                       (S::Valid, StaffAction::Settle), (S::Claimed, StaffAction::Claim), (S::Claimed, StaffAction::Cancel),
                       (S::Terminated, StaffAction::Settle), (S::Lapsed, StaffAction::Cancel)] {
            let e = act(s, a, end, today).unwrap_err();
            assert!(e.0.contains(s.label()), "{s:?} {a:?}: {e}");
        }
    }

    #[test]
    fn only_a_valid_certificate_expires_and_only_after_its_last_day() {
        let end = d("2027-03-31");
        assert!(!expires(S::Valid, end, end), "the 保証期限 itself is still in force");
        assert!(expires(S::Valid, end, d("2027-04-01")));
        assert!(!expires(S::Claimed, end, d("2027-04-01")), "an open claim waits for its settling");
        assert!(!expires(S::Terminated, end, d("2027-04-01")));
        assert!(S::Claimed.in_force() && S::Valid.in_force() && !S::Expired.in_force() && !S::Cancelled.in_force());
    }

    #[test]
    fn event_kinds_read_back() {
        for k in ["changed", "expired", "terminated", "cancelled", "claimed", "settled"] {
            assert_eq!(EventKind::parse(k).unwrap().as_str(), k);
        }
        assert_eq!(EventKind::parse("issued"), None);
    }
}
