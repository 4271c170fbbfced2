//! The meaning of a configuration: [`Config::from_raw`] takes the shape `RawConfig` read
//! and checks dates, office codes, rates and cross references, resolves every path against
//! the configuration file's folder, and names every problem with its key at once.

use super::*;

use crate::domain::{FeeRate, Product};
use crate::text::{nfkc, squash};
use chrono::NaiveDate;
use super::mail::Secret;
use super::mail::mail;
use super::raw::RawConfig;
use super::web::Sides;
use std::path::{Path, PathBuf};

impl Config {
    pub fn from_raw(raw: RawConfig, path: &Path) -> Result<Config, ConfigError> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        let mut problems = Vec::new();
        let sides = Sides::parse(raw.side.as_deref()).unwrap_or_else(|e| {
            problems.push(e);
            Sides { branch: true, owner: true }
        });
        if sides.branch && raw.company.is_none() {
            problems.push("company: the branch side needs [company] (name, address, representative)".into());
        }
        let date = |key: String, v: &Option<String>, problems: &mut Vec<String>| {
            v.as_deref().and_then(|s| {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
                if d.is_none() {
                    problems.push(format!("{key}: \"{s}\" is not a date (YYYY-MM-DD)"));
                }
                d
            })
        };

        let branches: Vec<Branch> = raw.branches.into_iter().enumerate().map(|(i, b)| {
            if b.office_code.len() != 5 || !b.office_code.bytes().all(|c| c.is_ascii_digit()) {
                problems.push(format!("branches[{i}].office_code: \"{}\" must be five digits", b.office_code));
            }
            if !is_email(&b.address) {
                problems.push(format!("branches[{i}].address: \"{}\" is not an email address", b.address));
            }
            if let Some(a) = &b.staff_address && !is_email(a) {
                problems.push(format!("branches[{i}].staff_address: \"{a}\" is not an email address"));
            }
            Branch { name: b.name, office_code: b.office_code, address: b.address.to_ascii_lowercase(), tel: b.tel, fax: b.fax, staff_address: b.staff_address.map(|a| a.to_ascii_lowercase()) }
        }).collect();
        for (i, b) in branches.iter().enumerate() {
            if branches[..i].iter().any(|o| o.office_code == b.office_code) {
                problems.push(format!("branches[{i}].office_code: \"{}\" is used by two branches", b.office_code));
            }
        }

        let owners: Vec<Owner> = raw.owners.into_iter().enumerate().map(|(i, o)| {
            let contract_from = date(format!("owners[{i}].electronic_contract_date_from"), &o.electronic_contract_date_from, &mut problems);
            let award_from = date(format!("owners[{i}].electronic_award_date_from"), &o.electronic_award_date_from, &mut problems);
            match &o.branch {
                Some(b) if sides.branch && !branches.iter().any(|x| squash(&x.name) == squash(b)) => problems.push(format!("owners[{i}].branch: \"{b}\" is not one of the branches")),
                None if sides.branch => problems.push(format!("owners[{i}].branch: which branch handles {}'s applications", o.name)),
                _ => {}
            }
            let contracts = o.contracts_csv.as_ref().and_then(|p| {
                let path = base.join(p);
                match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| contracts::parse(&t)) {
                    Ok(list) => Some(list),
                    Err(e) => {
                        problems.push(format!("owners[{i}].contracts_csv: {}: {e}", path.display()));
                        None
                    }
                }
            });
            let webhook = super::webhooks::endpoint(i, o.webhook_url.as_deref(), o.webhook_secret_env.as_deref(), o.webhook_ca_file.as_ref().map(|p| base.join(p)), &mut problems);
            if !is_email(&o.contracts_address) {
                problems.push(format!("owners[{i}].contracts_address: \"{}\" is not an email address", o.contracts_address));
            }
            Owner {
                name: o.name,
                accepts_electronic: o.accepts_electronic,
                electronic_contract_date_from: contract_from,
                electronic_award_date_from: award_from,
                contracts_address: o.contracts_address.to_ascii_lowercase(),
                branch: o.branch.unwrap_or_default(),
                advance_ratio_percent: o.advance_ratio_percent.unwrap_or(40),
                contract_ratio_percent: o.contract_ratio_percent.unwrap_or(10),
                intermediate_percent: o.intermediate_advance.then(|| {
                    let r = o.intermediate_ratio.unwrap_or(0.2);
                    if !(r > 0.0 && r <= 0.6) {
                        problems.push(format!("owners[{i}].intermediate_ratio: {r} is not a share of the contract price (0 < ratio ≤ 0.6)"));
                    }
                    (r * 100.0).round() as u32
                }),
                bid_bond: o.bid_bond,
                contracts,
                staff_address: o.staff_address.map(|a| a.to_ascii_lowercase()),
                webhook,
            }
        }).collect();

        let contractors = raw.contractors.into_iter().enumerate().map(|(i, c)| {
            for e in &c.emails {
                if !is_email(e) {
                    problems.push(format!("contractors[{i}].emails: \"{e}\" is not an email address"));
                }
            }
            Contractor { name: c.name, address: c.address, emails: c.emails.iter().map(|e| e.to_ascii_lowercase()).collect() }
        }).collect::<Vec<_>>();

        let joint_ventures = raw.joint_ventures.into_iter().enumerate().map(|(i, j)| {
            if !contractors.iter().any(|c| squash(&c.name) == squash(&j.representative)) {
                problems.push(format!("joint_ventures[{i}].representative: \"{}\" is not one of the contractors", j.representative));
            }
            JointVenture { name: j.name, representative: j.representative }
        }).collect();

        let fees = raw.fees.into_iter().enumerate().filter_map(|(i, f)| {
            let product = Product::from_name(&f.product);
            let ppm = parse_percent_ppm(&f.annual_rate_percent);
            if product == Some(Product::BidBond) {
                problems.push(format!("fees[{i}].product: a 契約保証予約 has no guarantee fee; its 予約手数料 is set in [bid_bonds]"));
                return None;
            }
            if product.is_none() {
                problems.push(format!("fees[{i}].product: \"{}\" must be 前払金保証, 契約保証 or 中間前払金保証", f.product));
            }
            if ppm.is_none() {
                problems.push(format!("fees[{i}].annual_rate_percent: \"{}\" must be a percentage such as \"0.31\"", f.annual_rate_percent));
            }
            Some(FeeRate { product: product?, annual_rate_ppm: ppm?, annual_rate_text: nfkc(&f.annual_rate_percent), minimum_yen: f.minimum_yen.unwrap_or(0) })
        }).collect();

        let bid_bonds = match raw.bid_bonds {
            None => BidBonds::NONE,
            Some(b) => {
                if b.consumption_tax_percent > 100 {
                    problems.push(format!("bid_bonds.consumption_tax_percent: {} is not a percentage", b.consumption_tax_percent));
                }
                BidBonds { reservation_fee_yen: b.reservation_fee_yen, consumption_tax_percent: b.consumption_tax_percent, days_after_bid: b.days_after_bid.unwrap_or(30) }
            }
        };
        let mail = mail(raw.mail, &base, &mut problems);
        let poll = raw.schedule.poll.clone().unwrap_or_else(|| crate::config::schedule::every_seconds(mail.poll_seconds));
        let schedule = crate::config::schedule::Jobs::parse(
            &poll,
            raw.schedule.outbox.as_deref().unwrap_or(crate::config::schedule::DEFAULT_OUTBOX),
            raw.schedule.digest.as_deref().unwrap_or(crate::config::schedule::DEFAULT_DIGEST),
        ).map_err(|e| problems.push(e)).ok();
        if mail.imap.is_some() {
            let watched = branches.iter().filter(|_| sides.branch).map(|b| b.address.clone())
                .chain(owners.iter().filter(|_| sides.owner).map(|o: &Owner| o.contracts_address.clone()));
            for a in watched {
                if !mail.accounts.iter().any(|x| x.address == a) {
                    problems.push(format!("mail.accounts: no login for the watched mailbox {a} (add [[mail.accounts]] with address = \"{a}\")"));
                }
            }
        }
        let read = |p: &Path, what: &str, problems: &mut Vec<String>| -> Option<String> {
            std::fs::read_to_string(base.join(p)).map_err(|e| problems.push(format!("{what}: cannot read {}: {e}", base.join(p).display()))).ok()
        };
        let sender_auth = raw.sender_auth.filter(|a| a.enabled).map(|a| SenderAuthConfig {
            dns_answers: a.dns_answers.as_deref().and_then(|p| read(p, "sender_auth.dns_answers", &mut problems)).unwrap_or_default(),
            offline: a.offline,
            host: a.host.unwrap_or_else(|| "localhost".into()),
            nameservers: a.nameservers.iter().filter_map(|n| {
                let parsed = n.parse::<std::net::SocketAddr>().ok().or_else(|| n.parse::<std::net::IpAddr>().ok().map(|ip| std::net::SocketAddr::new(ip, 53)));
                if parsed.is_none() {
                    problems.push(format!("sender_auth.nameservers: \"{n}\" is not an IP address (\"192.0.2.53\" or \"192.0.2.53:53\")"));
                }
                parsed
            }).collect(),
            retry_hours: a.retry_hours.unwrap_or(24),
        });
        if let Some(a) = &sender_auth
            && let Err(e) = crate::sender_auth::Answers::parse(&a.dns_answers, a.offline)
        {
            problems.push(format!("sender_auth.dns_answers: {e}"));
        }
        let dkim = raw.dkim.and_then(|d| {
            let pem = read(&d.key_file, "dkim.key_file", &mut problems)?;
            if let Err(e) = crate::sender_auth::Signer::from_pem(&pem, &d.domain, &d.selector) {
                problems.push(format!("dkim.key_file: {e}"));
            }
            Some(DkimConfig { domain: d.domain, selector: d.selector, key_pem: Secret::new(pem) })
        });
        let signing = raw.signing.map(|s| super::signing::signing(s, &base, &mut problems)).flatten();
        let limits = raw.limits;
        for (name, v) in [("max_message_mib", limits.max_message_mib), ("max_parts", limits.max_parts as u64), ("max_depth", limits.max_depth as u64),
                          ("pdf_max_mib", limits.pdf_max_mib), ("pdf_max_pages", limits.pdf_max_pages as u64), ("pdf_seconds", limits.pdf_seconds), ("pdf_memory_mib", limits.pdf_memory_mib), ("max_pairs", limits.max_pairs as u64), ("outbox_stale_minutes", limits.outbox_stale_minutes)] {
            if v == 0 {
                problems.push(format!("limits.{name} must be above 0"));
            }
        }
        if limits.pdf_memory_mib < 64 {
            problems.push("limits.pdf_memory_mib below 64 leaves the PDF reader no room to start".into());
        }
        let web = raw.web.map(|w| web::web(w, &base, &mut problems));
        let registries = web::registries(raw.registries, &base, &mut problems);
        let metrics = raw.metrics.map(|m| web::metrics(m, &mut problems));
        if registries.is_empty() && sides.owner && !sides.branch && problems.is_empty() {
            problems.push("registries: an owner side on its own checks through the issuers' registries: add [[registries]] (issuer, url, token_env)".into());
        }
        if !registries.is_empty() && !sides.owner {
            problems.push("registries: [[registries]] are for the owner side (side = \"owner\" or \"both\")".into());
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { path: path.to_path_buf(), problems });
        }
        let company = raw.company.map(|c| Company {
            name: c.name,
            address: c.address,
            representative: c.representative,
            registry_name: c.registry_name.unwrap_or_else(|| "保証確認サービス".into()),
        }).unwrap_or(Company { name: String::new(), address: String::new(), representative: String::new(), registry_name: "保証確認サービス".into() });
        Ok(Config {
            sides,
            web,
            metrics,
            registries,
            registry_wait_hours: raw.registry_wait_hours.unwrap_or(4),
            limits,
            sender_auth,
            dkim,
            signing,
            path: path.to_path_buf(),
            // As operators expect of a service, the environment's store wins over the file's.
            store: crate::config::StoreAt::parse(
                &std::env::var("ESURETY_STORE").ok().filter(|s| !s.trim().is_empty()).unwrap_or(raw.store),
                &base, raw.store_password_env, raw.store_ca_file),
            secret_file: base.join(raw.secret_file.unwrap_or_else(|| "esurety.secret".into())),
            templates: raw.templates.map(|t| base.join(t)),
            company,
            mail,
            schedule: schedule.expect("no problems means the schedule parsed"),
            branches,
            owners,
            contractors,
            joint_ventures,
            fees,
            bid_bonds,
        })
    }
}

/// `"0.31"` (percent) → 3100 millionths.
fn parse_percent_ppm(s: &str) -> Option<u64> {
    let t = nfkc(s);
    let t = t.trim_end_matches('%').trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() || frac.len() > 4 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac4: u64 = format!("{frac:0<4}").parse().ok()?;
    Some(int.parse::<u64>().ok()? * 10_000 + frac4)
}

