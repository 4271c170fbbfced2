//! Who asks the registry: the sender of a submission, an owner system's API token and the
//! end sender it relays for, or a client's address. Failures are counted per caller.

/// Who asks: a submission's sender (the owner side), an API token (`token:ID`, or
/// `token:ID sender:ADDRESS` when the request names the end sender it relays), a client
/// address (the web). Failures are counted per (number, caller) and per each of these.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    pub sender: Option<&'a str>,
    pub address: Option<&'a str>,
    /// The end sender an API request names is one of the company's registered
    /// contractors (an address of `[[contractors]] emails`): known, like one that has
    /// given a right key through the token before.
    pub known: bool,
}

impl<'a> Caller<'a> {
    pub fn sender(sender: Option<&'a str>) -> Self {
        Caller { sender, address: None, known: false }
    }

    /// An API token's system (`token:ID`), relaying for no named end sender.
    pub fn is_token(&self) -> bool {
        self.sender.is_some_and(|s| s.starts_with("token:") && !s.contains(" sender:"))
    }

    /// Any API caller, named end sender or not.
    pub fn via_token(&self) -> bool {
        self.sender.is_some_and(|s| s.starts_with("token:"))
    }

    /// An API caller that names the end sender it relays for.
    pub fn names_end_sender(&self) -> bool {
        self.via_token() && !self.is_token()
    }
}

