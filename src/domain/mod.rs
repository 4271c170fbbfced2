//! The ground floor: the things every part of esurety names. A product and a format, a
//! 保証契約番号 and an 認証キー, a certificate's contents and its fee, the states the store
//! records, a pair read from a submission, a caller of the registry. No I/O, no store, no
//! configuration: everything above (configuration, store, flows, adapters, front doors)
//! stands on these, so a change to one flow never reaches another's types.

pub mod caller;
pub mod certificate;
pub mod fee;
pub mod found;
pub mod key;
pub mod lifecycle;
pub mod product;
pub mod state;

pub use caller::Caller;
pub use certificate::{BidBondOf, Certificate, CertificateNumber, IntermediateOf, Issued, IssuedFee, certificate_numbers};
pub use fee::{Fee, FeeRate, fee, fee_from};
pub use found::Found;
pub use key::AuthKey;
pub use lifecycle::{Event, EventKind, StaffAction};
pub use product::{Format, Product};
pub use state::{CertificateStatus, MessageOutcome, OutboxStatus, PrintState, Side};
