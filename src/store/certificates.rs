//! Certificates, their append-only versions, the branch's copy of each key (sealed), and
//! the registry (保証確認サービス) that owners check against, which keeps only a salted
//! HMAC of each key.

use super::{Result, Store, StoreError, Tx};
use crate::clock::Random;
use crate::domain::Issued;
use crate::domain::{AuthKey, Certificate};
use crate::secrets::Secrets;
use super::db::{Conn, OptionalExtension, params};

#[derive(Debug, Clone)]
pub struct CertificateRow {
    pub number: String,
    pub status: super::CertificateStatus,
    pub application_message_id: Option<String>,
    pub print_state: Option<super::PrintState>,
    /// The latest version's contents.
    pub latest: Certificate,
}

#[derive(Debug, Clone)]
pub struct VersionRow {
    pub version: u32,
    pub kind: String,
    pub issued_at: String,
    pub contents: Certificate,
}

impl Tx<'_> {
    /// The next serial of an office; never handed out twice, even across crashes (the
    /// increment commits with the certificate that uses it).
    pub fn next_serial(&self, office_code: &str) -> Result<u32> {
        // The counter row stays locked by this transaction until it commits: another
        // daemon issuing for the same office waits for it, then takes the next (unless
        // this transaction holds an earlier message's locks: then it does not wait).
        if let super::db::Conn::Postgres(pg) = self.c() {
            if !pg.may_wait() {
                let held = self.c().query_map("SELECT 1 FROM serials WHERE office_code = ?1 FOR UPDATE NOWAIT", [office_code], |r| r.get::<i64>(0));
                match held {
                    Err(super::StoreError::Pg(e)) if e.code().is_some_and(|c| c.code() == "55P03") => {
                        return Err(super::StoreError::WouldWait(format!("the serial counter of office {office_code}")));
                    }
                    other => {
                        other?;
                    }
                }
            }
            pg.took_lock();
        }
        self.c().query_row(
            "INSERT INTO serials (office_code, last) VALUES (?1, 1)
             ON CONFLICT (office_code) DO UPDATE SET last = serials.last + 1 RETURNING last",
            [office_code], |r| r.get(0),
        )
    }

    /// Records a new certificate (version 1), keeps its key for the branch and publishes
    /// electronic ones to the registry with a salted hash of the key.
    ///
    /// The key is kept sealed under `secrets`, and the registry holds an HMAC of it under
    /// the same secret: neither can be read or tested from the store alone.
    #[allow(clippy::too_many_arguments)]
    pub fn insert_certificate(&self, issued: &Issued, works_key: &str, application: i64, message_id: Option<&str>, salt: &[u8], secrets: &Secrets, rng: &dyn Random) -> Result<()> {
        let c = &issued.certificate;
        let at = issued.issued_at.to_rfc3339();
        let contents = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let paper = c.format == crate::domain::Format::Paper;
        self.c().execute(
            "INSERT INTO certificates (number, product, format, status, office_code, contractor, owner, project, works_key,
                                       application, application_message_id, current_version, print_state, created_at, guarantee_end)
             VALUES (?1, ?2, ?3, 'valid', ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13)",
            params![c.number, c.product.name(), c.format.name(), c.office_code, c.contractor, c.owner, c.project, works_key,
                    application, message_id, paper.then_some("waiting"), at, c.guarantee_end.to_string()],
        )?;
        self.c().execute(
            "INSERT INTO certificate_versions (number, version, kind, issued_at, contents) VALUES (?1, 1, '新規', ?2, ?3)",
            params![c.number, at, contents],
        )?;
        if let Some(b) = &c.bid_bond {
            let lapses_on = b.valid_until + chrono::Days::new(1);
            self.c().execute("INSERT INTO reservations (number, bid_date, lapses_on) VALUES (?1, ?2, ?3)",
                params![c.number, b.bid_date.to_string(), lapses_on.to_string()])?;
        }
        if let Some(key) = &issued.key {
            self.c().execute("INSERT INTO sealed_keys (number, sealed) VALUES (?1, ?2)", params![c.number, secrets.seal(&c.number, key, rng)])?;
            self.c().execute(
                "INSERT INTO registry (number, key_salt, key_hash, key_mac, owner, status, published_at) VALUES (?1, ?2, ?3, 1, ?4, 'valid', ?5)",
                params![c.number, salt, &secrets.mac(salt, key)[..], c.owner, at],
            )?;
            self.c().execute(
                "INSERT INTO registry_versions (number, version, kind, published_at, contents) VALUES (?1, 1, '新規', ?2, ?3)",
                params![c.number, at, public_contents(c)?],
            )?;
        }
        Ok(())
    }

    /// Appends version N+1 (a 変更) of a certificate and publishes it to the registry.
    /// Earlier versions are never touched: (number, version) is a primary key, and the
    /// version must follow the current one, so a change applied twice fails rather than
    /// overwriting. A paper certificate waits to be printed again.
    pub fn append_version(&self, c: &Certificate, works_key: &str, at: chrono::DateTime<chrono::FixedOffset>) -> Result<()> {
        let current: u32 = self.c().query_row("SELECT current_version FROM certificates WHERE number = ?1", [&c.number], |r| r.get(0))?;
        if c.version != current + 1 {
            return Err(StoreError::Corrupt(format!("{}: version {} does not follow {current}", c.number, c.version)));
        }
        let at = at.to_rfc3339();
        let contents = serde_json::to_string(c).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.c().execute(
            "INSERT INTO certificate_versions (number, version, kind, issued_at, contents) VALUES (?1, ?2, '変更', ?3, ?4)",
            params![c.number, c.version, at, contents],
        )?;
        let paper = c.format == crate::domain::Format::Paper;
        self.c().execute(
            "UPDATE certificates SET current_version = ?2, project = ?3, works_key = ?4,
                    print_state = CASE WHEN ?5 THEN 'waiting' ELSE print_state END,
                    printed_at = CASE WHEN ?5 THEN NULL ELSE printed_at END,
                    guarantee_end = ?6
             WHERE number = ?1",
            params![c.number, c.version, c.project, works_key, paper, c.guarantee_end.to_string()],
        )?;
        let published: bool = self.c().query_row("SELECT count(*) FROM registry WHERE number = ?1", [&c.number], |r| r.get::<i64>(0))? > 0;
        if published {
            self.c().execute(
                "INSERT INTO registry_versions (number, version, kind, published_at, contents) VALUES (?1, ?2, '変更', ?3, ?4)",
                params![c.number, c.version, at, public_contents(c)?],
            )?;
        }
        Ok(())
    }

    /// The certificate already issued for these works, if any. With several daemons, the
    /// works' lock is taken first and held to the end of the transaction: a second
    /// application for the same works, decided at the same moment by another daemon, waits
    /// for this one's commit and then finds its certificate (R10).
    /// Keeps a document received with the application (a 認定調書) with the certificate.
    pub fn keep_document(&self, number: &str, kind: &str, name: &str, bytes: &[u8], at: chrono::DateTime<chrono::FixedOffset>) -> Result<()> {
        self.c().execute("INSERT INTO certificate_documents (number, kind, name, bytes, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![number, kind, name, bytes, at.to_rfc3339()])?;
        Ok(())
    }

    /// A 契約保証予約 used by the 契約保証 `by`: 履行済. Refused (nothing changed) unless it is
    /// still open.
    pub fn fulfil_reservation(&self, number: &str, by: &str, at: chrono::DateTime<chrono::FixedOffset>) -> Result<()> {
        let n = self.c().execute("UPDATE certificates SET status = 'fulfilled' WHERE number = ?1 AND status = 'valid' AND product = '契約保証予約'", [number])?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!("{number} is not an open 契約保証予約")));
        }
        self.c().execute("UPDATE reservations SET used_by = ?2, closed_at = ?3 WHERE number = ?1", params![number, by, at.to_rfc3339()])?;
        Ok(())
    }

    /// The daily job: every open 契約保証予約 whose time after its 入札日 has passed on
    /// `today` is marked 失効. Once, whichever daemon runs it first.
    pub fn lapse_reservations(&self, today: chrono::NaiveDate, at: chrono::DateTime<chrono::FixedOffset>) -> Result<Vec<String>> {
        self.lock_job("reservations")?;
        let due: Vec<String> = self.c().query_map(
            "SELECT r.number FROM reservations r JOIN certificates c ON c.number = r.number
             WHERE r.closed_at IS NULL AND c.status = 'valid' AND r.lapses_on <= ?1 ORDER BY r.number",
            [today.to_string()], |r| r.get(0))?;
        for n in &due {
            self.c().execute("UPDATE certificates SET status = 'lapsed' WHERE number = ?1 AND status = 'valid'", [n])?;
            self.c().execute("UPDATE reservations SET closed_at = ?2 WHERE number = ?1", params![n, at.to_rfc3339()])?;
        }
        Ok(due)
    }

    /// A certificate's latest contents and state, read inside the transaction.
    pub fn certificate(&self, number: &str) -> Result<Option<CertificateRow>> {
        certificate(self.c(), number)
    }

    pub fn issued_for_works(&self, works_key: &str) -> Result<Option<String>> {
        self.lock_job(&format!("works {works_key}"))?;
        self.c().query_row(
            "SELECT number FROM certificates WHERE works_key = ?1 AND status = 'valid' ORDER BY number LIMIT 1",
            [works_key], |r| r.get(0),
        ).optional()
    }

    /// Certificates issued for an application message (for a second delivery's reply).
    pub fn certificates_of_message(&self, message: i64) -> Result<Vec<CertificateRow>> {
        let numbers: Vec<String> = {
            self.c().query_map(
                "SELECT c.number FROM certificates c JOIN applications a ON a.id = c.application WHERE a.message = ?1 ORDER BY c.number",
                [message], |r| r.get(0))?
        };
        numbers.iter().filter_map(|n| certificate(self.c(), n).transpose()).collect()
    }
}

impl Store {
    pub fn certificates(&self) -> Result<Vec<CertificateRow>> {
        let numbers: Vec<String> = {
            self.conn.query_map("SELECT number FROM certificates ORDER BY created_at, number", (), |r| r.get(0))?
        };
        numbers.iter().filter_map(|n| certificate(&self.conn, n).transpose()).collect()
    }

    pub fn certificate(&self, number: &str) -> Result<Option<CertificateRow>> {
        certificate(&self.conn, number)
    }

    /// The documents kept with a certificate: (id, kind, name, size in bytes), in order.
    pub fn documents_of(&self, number: &str) -> Result<Vec<(i64, String, String, i64)>> {
        self.conn.query_map("SELECT id, kind, name, length(bytes) FROM certificate_documents WHERE number = ?1 ORDER BY id", [number],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
    }

    /// One kept document's name and bytes.
    pub fn kept_document(&self, number: &str, id: i64) -> Result<Option<(String, Vec<u8>)>> {
        self.conn.query_row("SELECT name, bytes FROM certificate_documents WHERE number = ?1 AND id = ?2", params![number, id],
            |r| Ok((r.get(0)?, r.get(1)?))).optional()
    }

    pub fn versions(&self, number: &str) -> Result<Vec<VersionRow>> {
        versions(&self.conn, "certificate_versions", "issued_at", number)
    }

    /// The branch's copy of a key, opened for `render` and resends. Never logged. A sealed
    /// key that does not open under `secrets` (another secret) is an error, not "no key".
    pub fn key_of(&self, number: &str, secrets: &Secrets) -> Result<Option<AuthKey>> {
        let sealed: Option<Vec<u8>> = self.conn.query_row("SELECT sealed FROM sealed_keys WHERE number = ?1", [number], |r| r.get(0)).optional()?;
        match sealed {
            None => Ok(None),
            Some(s) => secrets.open(number, &s).map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("the key of {number} does not open with this secret (was the secret file replaced?)"))),
        }
    }

    /// Keys an earlier version kept in clear: sealed, and their registry hashes made again
    /// as HMACs, in one transaction; `certificate_keys` is left empty. Returns how many.
    pub fn seal_legacy_keys(&mut self, secrets: &Secrets, rng: &dyn Random) -> Result<usize> {
        let legacy: Vec<(String, String)> = {
            self.conn.query_map("SELECT number, key FROM certificate_keys", (), |r| Ok((r.get(0)?, r.get(1)?)))?
        };
        if legacy.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            for (number, key) in &legacy {
                let Some(key) = AuthKey::parse(key) else {
                    return Err(StoreError::Corrupt(format!("the stored key of {number} is not a key")));
                };
                tx.c().execute("INSERT INTO sealed_keys (number, sealed) VALUES (?1, ?2) ON CONFLICT (number) DO UPDATE SET sealed = excluded.sealed", params![number, secrets.seal(number, &key, rng)])?;
                let salt: Option<Vec<u8>> = tx.c().query_row("SELECT key_salt FROM registry WHERE number = ?1", [number], |r| r.get(0)).optional()?;
                if let Some(salt) = salt {
                    tx.c().execute("UPDATE registry SET key_hash = ?2, key_mac = 1 WHERE number = ?1", params![number, &secrets.mac(&salt, &key)[..]])?;
                }
            }
            tx.c().execute("DELETE FROM certificate_keys", ())?;
            Ok(legacy.len())
        })
    }
}

pub(super) fn certificate(conn: &Conn, number: &str) -> Result<Option<CertificateRow>> {
    let row = conn.query_row(
        "SELECT c.number, c.status, c.application_message_id, c.print_state, v.contents
         FROM certificates c JOIN certificate_versions v ON v.number = c.number AND v.version = c.current_version
         WHERE c.number = ?1",
        [number],
        |r| Ok((r.get::<String>(0)?, r.get::<super::CertificateStatus>(1)?, r.get::<Option<String>>(2)?, r.get::<Option<super::PrintState>>(3)?, r.get::<String>(4)?)),
    ).optional()?;
    row.map(|(number, status, application_message_id, print_state, contents)| {
        Ok(CertificateRow { number, status, application_message_id, print_state, latest: parse_contents(&contents)? })
    }).transpose()
}

pub(super) fn versions(conn: &Conn, table: &str, at: &str, number: &str) -> Result<Vec<VersionRow>> {
    conn.query_map(&format!("SELECT version, kind, {at}, contents FROM {table} WHERE number = ?1 ORDER BY version"), [number], |r| {
        Ok(VersionRow { version: r.get(0)?, kind: r.get(1)?, issued_at: r.get(2)?, contents: parse_contents(&r.get::<String>(3)?)? })
    })
}

fn parse_contents(s: &str) -> Result<Certificate> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("certificate contents: {e}")))
}

/// A version's contents as the registry publishes them: without the fee, which is between
/// the contractor and the company.
fn public_contents(c: &Certificate) -> Result<String> {
    let public = Certificate { fee: None, ..c.clone() };
    serde_json::to_string(&public).map_err(|e| StoreError::Corrupt(e.to_string()))
}
