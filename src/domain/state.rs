//! The states esurety records, as enums: which side a mailbox is on, what became of a
//! message, where an outgoing mail stands, a certificate's state and a paper one's print
//! state. Their words (`as_str`) are those of `cli.md`, in the store and in `--json` output;
//! the store reads them back with `parse` and calls a word it does not know damage.

macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($word => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

words!(
    /// Which side a watched mailbox is on.
    Side { Branch = "branch", Owner = "owner" }
);

words!(
    /// What became of an incoming message (its committed outcome).
    MessageOutcome {
        Issued = "issued",
        Changed = "changed",
        Rejected = "rejected",
        Held = "held",
        Duplicate = "duplicate",
        FormSent = "form_sent",
        Resent = "resent",
        /// A contractor's 保証契約一覧, answered.
        Listed = "listed",
        NoChangeNeeded = "no_change_needed",
        /// Owner side: a submission checked and answered.
        Submission = "submission",
        /// Owner side: a company's notice of an event on a certificate, confirmed by its
        /// registry and registered (never answered).
        Notice = "notice",
        /// Owner side: not a submission, left to the people of the mailbox.
        Ignored = "ignored",
        /// A fault of ours on this message (owner side; the branch side holds instead).
        Error = "error",
    }
);

words!(
    /// Where an outgoing mail stands.
    OutboxStatus { Pending = "pending", Sent = "sent", Failed = "failed" }
);

words!(
    /// A certificate's state in the registry (`lifecycle.md`): in force (有効, or 履行請求
    /// while the owner's claim is open), ended (期限満了, 解約), never in force (取消), or a
    /// 契約保証予約 used by its 契約保証 (履行済) or lapsed after its bid (失効).
    CertificateStatus {
        Valid = "valid",
        Expired = "expired",
        Terminated = "terminated",
        Cancelled = "cancelled",
        Claimed = "claimed",
        Fulfilled = "fulfilled",
        Lapsed = "lapsed",
    }
);

impl CertificateStatus {
    /// As staff and owners read it.
    pub fn label(self) -> &'static str {
        match self {
            CertificateStatus::Valid => "有効",
            CertificateStatus::Expired => "期限満了",
            CertificateStatus::Terminated => "解約",
            CertificateStatus::Cancelled => "取消",
            CertificateStatus::Claimed => "履行請求",
            CertificateStatus::Fulfilled => "履行済",
            CertificateStatus::Lapsed => "失効",
        }
    }

    /// Whether an owner may accept it now: 有効, or 履行請求 (the guarantee still stands
    /// while the claim is open).
    pub fn in_force(self) -> bool {
        matches!(self, CertificateStatus::Valid | CertificateStatus::Claimed)
    }
}

words!(
    /// A paper certificate's place in the print queue.
    PrintState { Waiting = "waiting", Printed = "printed" }
);
