//! The domain's states as the store writes and reads them: their words (`as_str`), and a
//! word the store does not know is damage ([`super::StoreError::Corrupt`]), never a
//! silent default.

use super::db::{FromValue, ToValue, Value};
use crate::domain::{CertificateStatus, MessageOutcome, OutboxStatus, PrintState, Side};

macro_rules! words {
    ($($name:ident),+) => {$(
        impl ToValue for $name {
            fn to_value(&self) -> Value {
                Value::Text(self.as_str().to_string())
            }
        }

        impl FromValue for $name {
            fn from_value(v: Value) -> super::Result<Self> {
                let s = String::from_value(v)?;
                $name::parse(&s).ok_or_else(|| super::StoreError::Corrupt(format!("not a {}: {s}", stringify!($name))))
            }
        }
    )+};
}

words!(Side, MessageOutcome, OutboxStatus, CertificateStatus, PrintState);
