//! The engine: what lives as long as the process ([`Engine`]: configuration, templates,
//! fonts, the PDF worker, the secret) and the mail adapters a pass works with, chosen by
//! configuration (Maildirs or IMAP, local delivery or SMTP). The pass itself is in
//! `daemon/pass.rs`, the process around it in `daemon/mod.rs`; staff actions, digests and
//! the web use the engine without the pass.
//!
//! It stands above both flows (it holds the branch's `Documents` and the owner's
//! `PdfReader`) and below the desk, the web and the daemon, which all start from it.

use crate::config::Config;
use crate::domain::Side;
use crate::branch::documents::Documents;
use crate::intake::imap::ImapBox;
use crate::intake::maildir::{Maildir, MaildirBox};
use crate::intake::Mailbox;
use crate::outbound::compose::Composer;
use crate::outbound::maildir::MaildirTransport;
use crate::outbound::smtp::SmtpTransport;
use crate::outbound::Transport;
use crate::owner::submission::worker::{Isolated, PdfReader};
use crate::templates::TemplateSet;

/// The engine or the adapters could not be set up (templates, keys, the secret, servers).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up: {0}")]
pub struct SetupError(pub String);

/// What lives as long as the process: templates parsed, fonts loaded, the PDF worker.
pub struct Engine {
    pub config: Config,
    /// DKIM/SPF checking of applications and changes (`[sender_auth]`).
    pub auth: Option<crate::sender_auth::SenderAuth>,
    pub composer: Composer,
    pub documents: Documents,
    pub reader: Box<dyn PdfReader>,
    /// Seals the branch's keys and keys the registry's hashes (from the secret file).
    pub secrets: std::sync::Arc<crate::secrets::Secrets>,
    /// Access tokens of the mailboxes and the relay on OAuth 2.0 (`auth = "oauth2"`).
    pub tokens: std::sync::Arc<crate::oauth::Tokens>,
    /// The issuers' registries an owner's own deployment checks through (`[[registries]]`).
    pub remote: Option<crate::registry::remote::RemoteRegistries>,
}

/// The mail adapters a pass works with.
pub struct Adapters {
    pub mailboxes: Vec<(Side, Box<dyn Mailbox + Send>)>,
    pub transport: Box<dyn Transport + Send + Sync>,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, SetupError> {
        let setup = |e: &dyn std::fmt::Display| SetupError(e.to_string());
        let templates = TemplateSet::load(config.templates.as_deref()).map_err(|e| setup(&e))?;
        let signer = config.dkim.as_ref().map(|d| crate::sender_auth::Signer::from_pem(d.key_pem.expose(), &d.domain, &d.selector)).transpose().map_err(|e| setup(&e))?;
        let composer = Composer::new(&templates).map_err(|e| setup(&e))?.with_signer(signer);
        let auth = config.sender_auth.as_ref().map(|a| {
            let answers = crate::sender_auth::Answers::parse(&a.dns_answers, a.offline)?;
            crate::sender_auth::SenderAuth::new(answers, &a.host, &a.nameservers)
        }).transpose().map_err(|e| setup(&e))?;
        let documents = Documents::new(&templates).map_err(|e| setup(&e))?.with_signer(config.signing.as_ref().map(|s| s.signer.clone())).with_tsa(config.signing.as_ref().and_then(|s| s.tsa.clone()));
        // PDFs are read by a worker process of this same binary (see submission::worker).
        let exe = std::env::current_exe().map_err(|e| setup(&format!("cannot find the esurety binary: {e}")))?;
        let reader = Box::new(Isolated::configured(exe, &config.limits));
        let secrets = std::sync::Arc::new(crate::secrets::Secrets::load(&config.secret_file).map_err(|e| setup(&e))?);
        let tokens = std::sync::Arc::new(crate::oauth::Tokens::new(config.store.clone(), secrets.clone()));
        let remote = (!config.registries.is_empty()).then(|| crate::registry::remote::RemoteRegistries::new(&config.registries)).transpose().map_err(|e| setup(&e))?;
        Ok(Engine { config, auth, composer, documents, reader, secrets, tokens, remote })
    }

    /// Says at start and at reload whether the branch's PDFs are signed, and by whom
    /// (signing.md): an operator sees a missing `[signing]` or a certificate near its end.
    pub fn say_signing(&self) {
        if !self.config.sides.branch {
            return;
        }
        match &self.config.signing {
            Some(s) => {
                let not_after: chrono::DateTime<chrono::Utc> = s.signer.not_after().into();
                let days_left = (not_after - chrono::Utc::now()).num_days();
                if days_left < 30 {
                    tracing::warn!(event = "signing_certificate_expiring", subject = %s.signer.subject(), not_after = %not_after.to_rfc3339(), days_left);
                } else {
                    tracing::info!(event = "signing", subject = %s.signer.subject(), not_after = %not_after.to_rfc3339());
                }
            }
            None => tracing::warn!(event = "unsigned", "no [signing]: the PDFs the branch issues are not signed"),
        }
    }

    /// Every watched address with its side, branch mailboxes first.
    pub fn watched(&self) -> Vec<(String, Side)> {
        let mut all: Vec<(String, Side)> = Vec::new();
        let sides = self.config.sides;
        let branches = self.config.branches.iter().filter(|_| sides.branch).map(|b| (b.address.clone(), Side::Branch));
        let owners = self.config.owners.iter().filter(|_| sides.owner).map(|o| (o.contracts_address.clone(), Side::Owner));
        for (a, side) in branches.chain(owners) {
            if !all.iter().any(|(x, _)| *x == a) {
                all.push((a, side));
            }
        }
        all
    }

    /// This store's own registry (the company's process), with the company's signing chain
    /// trusted for its PDFs.
    pub fn local_registry(&self) -> crate::registry::LocalRegistry<'_> {
        crate::registry::LocalRegistry {
            secrets: &self.secrets, lockout: crate::registry::Lockout::default(), company: self.config.company.name.clone(),
            trust: self.config.signing.as_ref().map(|s| crate::signature::verify::Trust {
                signers: s.signer.certificates_der(),
                timestamps: s.tsa.as_ref().map(|t| t.anchors().to_vec()).unwrap_or_default(),
            }).unwrap_or_default(),
        }
    }

    /// Where the owner side asks: the issuers' registries over HTTP when configured, else
    /// `local` (this store's).
    pub fn registry<'a>(&'a self, local: &'a crate::registry::LocalRegistry<'a>) -> &'a dyn crate::registry::Registry {
        match &self.remote {
            Some(remote) => remote,
            None => local,
        }
    }

    /// Maildirs and local delivery, or IMAP and SMTP, as configured. `rt` runs the
    /// network adapters' I/O.
    pub fn adapters(&self, rt: &tokio::runtime::Handle) -> Result<Adapters, SetupError> {
        let mail = &self.config.mail;
        let since = mail.process_since.and_then(|d| d.and_hms_opt(0, 0, 0)).and_then(|t| t.and_local_timezone(crate::clock::jst()).single());
        let mailboxes = self.watched().into_iter().map(|(address, side)| -> (Side, Box<dyn Mailbox + Send>) {
            match (&mail.imap, mail.accounts.iter().find(|a| a.address == address)) {
                (Some(server), Some(account)) => {
                    let mut b = ImapBox::new(address, side, server.clone(), account.clone(), self.tokens.clone(), rt.clone());
                    b.since = mail.process_since;
                    b.max_bytes = self.config.limits.max_message_bytes();
                    (side, Box::new(b))
                }
                _ => {
                    let dir = Maildir::new(mail.maildir_root.join(&address));
                    let mut b = MaildirBox::new(address, side, dir, since.map(std::time::SystemTime::from));
                    b.max_bytes = self.config.limits.max_message_bytes();
                    (side, Box::new(b))
                }
            }
        }).collect();
        let transport: Box<dyn Transport + Send + Sync> = match &mail.smtp {
            Some(server) => Box::new(SmtpTransport::new(server, self.tokens.clone(), rt.clone()).map_err(SetupError)?),
            None => Box::new(MaildirTransport { root: mail.maildir_root.clone() }),
        };
        Ok(Adapters { mailboxes, transport })
    }
}
