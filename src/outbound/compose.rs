//! Composing outgoing mail: wording rendered from `templates/mail/*.txt` (first line the
//! subject, then a blank line, then the body), built with lettre's message builder as
//! UTF-8 plain text with RFC 2231 attachment names, and marked as a real reply
//! (`In-Reply-To`, `References`) to the message it answers.

use crate::clock::{Random, random_hex};
use crate::store::Outgoing;
use crate::templates::TemplateSet;
use chrono::{DateTime, FixedOffset};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("the mail template {name} cannot be used: {message}")]
    Template { name: String, message: String },
    #[error("cannot build the mail: {0}")]
    Build(String),
}

pub struct Composer {
    env: minijinja::Environment<'static>,
    /// Signs every message with DKIM when a key is configured.
    signer: Option<crate::sender_auth::Signer>,
}

/// The message being answered.
#[derive(Debug, Clone, Default)]
pub struct ReplyTo {
    pub message_id: Option<String>,
    pub references: Vec<String>,
    pub subject: String,
}

pub struct Draft<'a> {
    pub kind: &'static str,
    pub template: &'a str,
    pub context: serde_json::Value,
    pub from_name: String,
    pub from: String,
    pub to: Vec<String>,
    pub reply: Option<&'a ReplyTo>,
    pub attachments: Vec<(String, Vec<u8>)>,
}

impl Composer {
    pub fn new(templates: &TemplateSet) -> Result<Self, ComposeError> {
        let mut env = minijinja::Environment::new();
        env.set_syntax(minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).build().expect("the default syntax with trim_blocks"));
        for (name, text) in templates.iter().filter(|(n, _)| n.starts_with("mail/")) {
            env.add_template_owned(name.to_string(), text.to_string())
                .map_err(|e| ComposeError::Template { name: name.to_string(), message: e.to_string() })?;
        }
        Ok(Composer { env, signer: None })
    }

    pub fn with_signer(mut self, signer: Option<crate::sender_auth::Signer>) -> Self {
        self.signer = signer;
        self
    }

    /// Renders the wording: (subject, body).
    pub fn wording(&self, template: &str, context: &serde_json::Value) -> Result<(String, String), ComposeError> {
        let err = |e: minijinja::Error| ComposeError::Template { name: template.to_string(), message: format!("{e:#}") };
        let text = self.env.get_template(template).map_err(err)?.render(minijinja::value::Serde(context)).map_err(err)?;
        let (subject, body) = text.split_once('\n').unwrap_or((&text, ""));
        Ok((one_line(subject), body.trim_start_matches(['\r', '\n']).to_string()))
    }

    pub fn compose(&self, draft: Draft<'_>, rng: &dyn Random, now: DateTime<FixedOffset>) -> Result<Outgoing, ComposeError> {
        self.compose_marked(draft, &[], rng, now)
    }

    /// As [`Self::compose`], with headers of our own (`X-Esurety-Event`) before the rest.
    /// Their names and values are ours, never a sender's: anything but printable ASCII is
    /// refused.
    pub fn compose_marked(&self, draft: Draft<'_>, headers: &[(&str, &str)], rng: &dyn Random, now: DateTime<FixedOffset>) -> Result<Outgoing, ComposeError> {
        let mut extra = Vec::new();
        for (name, value) in headers {
            let printable = |s: &str| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) || b == b' ');
            if !printable(name) || name.contains(':') || name.contains(' ') || !printable(value) {
                return Err(ComposeError::Build(format!("the header {name:?} is not one to write")));
            }
            extra.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        let mut context = draft.context.clone();
        if let Some(obj) = context.as_object_mut() {
            let re = draft.reply.map(|r| one_line(&r.subject)).filter(|s| !s.is_empty())
                .map(|s| format!("（Re: {}）", truncate(&s, 60))).unwrap_or_default();
            obj.insert("re".into(), re.into());
        }
        let (subject, body) = self.wording(draft.template, &context)?;
        let domain = draft.from.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
        let message_id = format!("<{}.{}@{}>", now.timestamp(), random_hex(rng, 12), domain);
        let build = |e: &dyn std::fmt::Display| ComposeError::Build(e.to_string());
        let from: Mailbox = Mailbox::new(Some(one_line(&draft.from_name)), draft.from.parse().map_err(|e| build(&e))?);
        let mut b = lettre::Message::builder()
            .from(from)
            .subject(subject.clone())
            .date(now.into())
            .message_id(Some(message_id.clone()));
        for to in &draft.to {
            b = b.to(Mailbox::new(None, to.parse().map_err(|e| build(&e))?));
        }
        if let Some(r) = draft.reply
            && let Some(id) = &r.message_id
        {
            b = b.in_reply_to(id.clone());
            let mut refs = r.references.clone();
            refs.push(id.clone());
            b = b.references(refs.join(" "));
        }
        let text = SinglePart::plain(body);
        let msg = if draft.attachments.is_empty() {
            b.singlepart(text)
        } else {
            let pdf = ContentType::parse("application/pdf").expect("a valid content type");
            let csv = ContentType::parse("text/csv; charset=utf-8").expect("a valid content type");
            let mut mp = MultiPart::mixed().singlepart(text);
            for (name, bytes) in draft.attachments {
                let kind = if name.ends_with(".csv") { csv.clone() } else { pdf.clone() };
                mp = mp.singlepart(Attachment::new(name).body(bytes, kind));
            }
            b.multipart(mp)
        }.map_err(|e| build(&e))?;
        let mut formatted = extra;
        formatted.extend_from_slice(&msg.formatted());
        let raw = match &self.signer {
            Some(signer) => signer.sign(&formatted).map_err(ComposeError::Build)?,
            None => formatted,
        };
        Ok(Outgoing { message_id, kind: draft.kind, sender: draft.from, recipients: draft.to, subject, raw })
    }
}

/// Header-safe: control characters (CR, LF, tabs…) become spaces.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max).collect::<String>() + "…" }
}
