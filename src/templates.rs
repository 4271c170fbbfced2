//! Templates: the Typst documents and the mail wording, built in and overridable.
//!
//! The built-in set is compiled into the binary so `esurety demo` works anywhere;
//! `esurety init` writes an editable copy, and a configured `templates` folder takes
//! precedence file by file, so a branch changes wording without touching code.

use std::collections::BTreeMap;
use std::path::Path;

pub const EMBEDDED: &[(&str, &str)] = &[
    ("notice.typ", include_str!("../templates/notice.typ")),
    ("certificate.typ", include_str!("../templates/certificate.typ")),
    ("fee.typ", include_str!("../templates/fee.typ")),
    ("reservation.typ", include_str!("../templates/reservation.typ")),
    ("mail/_footer.txt", include_str!("../templates/mail/_footer.txt")),
    ("mail/form.txt", include_str!("../templates/mail/form.txt")),
    ("mail/completion.txt", include_str!("../templates/mail/completion.txt")),
    ("mail/paper_accepted.txt", include_str!("../templates/mail/paper_accepted.txt")),
    ("mail/rejection.txt", include_str!("../templates/mail/rejection.txt")),
    ("mail/blank_form.txt", include_str!("../templates/mail/blank_form.txt")),
    ("mail/duplicate.txt", include_str!("../templates/mail/duplicate.txt")),
    ("mail/receipt.txt", include_str!("../templates/mail/receipt.txt")),
    ("mail/status_changed.txt", include_str!("../templates/mail/status_changed.txt")),
    ("mail/owner_event.txt", include_str!("../templates/mail/owner_event.txt")),
    ("mail/digest_branch.txt", include_str!("../templates/mail/digest_branch.txt")),
    ("mail/digest_owner.txt", include_str!("../templates/mail/digest_owner.txt")),
    ("mail/send_failed.txt", include_str!("../templates/mail/send_failed.txt")),
    ("mail/resend.txt", include_str!("../templates/mail/resend.txt")),
    ("mail/not_found.txt", include_str!("../templates/mail/not_found.txt")),
    ("mail/change_done.txt", include_str!("../templates/mail/change_done.txt")),
    ("mail/change_rejection.txt", include_str!("../templates/mail/change_rejection.txt")),
    ("mail/change_not_needed.txt", include_str!("../templates/mail/change_not_needed.txt")),
    ("mail/staff_rejection.txt", include_str!("../templates/mail/staff_rejection.txt")),
    ("mail/lock_wait.txt", include_str!("../templates/mail/lock_wait.txt")),
    ("mail/registry_wait.txt", include_str!("../templates/mail/registry_wait.txt")),
    ("mail/list.txt", include_str!("../templates/mail/list.txt")),
    ("web/layout.html", include_str!("../templates/web/layout.html")),
    ("web/lookup.html", include_str!("../templates/web/lookup.html")),
    ("web/certificate.html", include_str!("../templates/web/certificate.html")),
    ("web/not_found.html", include_str!("../templates/web/not_found.html")),
    ("web/desk/layout.html", include_str!("../templates/web/desk/layout.html")),
    ("web/desk/login.html", include_str!("../templates/web/desk/login.html")),
    ("web/desk/index.html", include_str!("../templates/web/desk/index.html")),
    ("web/desk/held.html", include_str!("../templates/web/desk/held.html")),
    ("web/desk/held_one.html", include_str!("../templates/web/desk/held_one.html")),
    ("web/desk/paper.html", include_str!("../templates/web/desk/paper.html")),
    ("web/desk/failed.html", include_str!("../templates/web/desk/failed.html")),
    ("web/desk/certificates.html", include_str!("../templates/web/desk/certificates.html")),
    ("web/desk/certificate.html", include_str!("../templates/web/desk/certificate.html")),
    ("web/desk/state_confirm.html", include_str!("../templates/web/desk/state_confirm.html")),
    ("web/desk/submissions.html", include_str!("../templates/web/desk/submissions.html")),
    ("web/desk/actions.html", include_str!("../templates/web/desk/actions.html")),
    ("web/desk/users.html", include_str!("../templates/web/desk/users.html")),
    ("web/desk/tokens.html", include_str!("../templates/web/desk/tokens.html")),
];

/// The web pages' style sheet.
pub const STYLE: &str = include_str!("../templates/web/style.css");

/// The fonts shipped with the project (licences beside them in `templates/fonts/`).
pub const FONTS: &[&[u8]] = &[
    include_bytes!("../templates/fonts/ipaexm.ttf"),
    include_bytes!("../templates/fonts/ipaexg.ttf"),
    include_bytes!("../templates/fonts/DejaVuSansMono.ttf"),
    include_bytes!("../templates/fonts/DejaVuSansMono-Bold.ttf"),
];

#[derive(Debug, Clone)]
pub struct TemplateSet {
    files: BTreeMap<&'static str, String>,
}

impl TemplateSet {
    pub fn embedded() -> Self {
        TemplateSet { files: EMBEDDED.iter().map(|(n, t)| (*n, t.to_string())).collect() }
    }

    /// The built-in set with every file found in `dir` taking its place.
    pub fn load(dir: Option<&Path>) -> std::io::Result<Self> {
        let mut set = Self::embedded();
        if let Some(dir) = dir {
            for (name, text) in set.files.iter_mut() {
                match std::fs::read_to_string(dir.join(name)) {
                    Ok(t) => *text = t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", dir.join(name).display()))),
                }
            }
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> &str {
        self.files.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.files.iter().map(|(n, t)| (*n, t.as_str()))
    }
}
