//! The desk's users, their sessions and failed logins. Passwords are kept only as Argon2id
//! hashes and session ids only as SHA-256 hashes: a copy of the store logs nobody in.

use super::{Result, Store, Tx};
use super::db::{OptionalExtension, params};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
    #[serde(skip)]
    pub hash: String,
}

/// A live session's user and CSRF token.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: UserRow,
    pub csrf: String,
}

fn user(r: &super::db::Row) -> Result<UserRow> {
    let roles: String = r.get(3)?;
    Ok(UserRow { id: r.get(0)?, name: r.get(1)?, hash: r.get(2)?, roles: serde_json::from_str(&roles).unwrap_or_default(), disabled: r.get(4)?, created_at: r.get(5)? })
}

const USER: &str = "SELECT id, name, hash, roles, disabled, created_at FROM users";

impl Tx<'_> {
    /// A new user; `false` when the name is taken.
    pub fn add_user(&self, name: &str, hash: &str, roles: &[String], at: &str) -> Result<bool> {
        let n = self.c().execute("INSERT INTO users (name, hash, roles, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![name, hash, serde_json::to_string(roles).expect("JSON"), at])?;
        Ok(n == 1)
    }

    /// A new password; every session of the user ends. `false`: no such user.
    pub fn set_password(&self, name: &str, hash: &str) -> Result<bool> {
        let n = self.c().execute("UPDATE users SET hash = ?2 WHERE name = ?1", params![name, hash])?;
        self.c().execute("DELETE FROM sessions WHERE \"user\" = (SELECT id FROM users WHERE name = ?1)", [name])?;
        Ok(n == 1)
    }

    /// Disables a user and ends their sessions. `false`: no such user.
    pub fn disable_user(&self, name: &str) -> Result<bool> {
        let n = self.c().execute("UPDATE users SET disabled = 1 WHERE name = ?1", [name])?;
        self.c().execute("DELETE FROM sessions WHERE \"user\" = (SELECT id FROM users WHERE name = ?1)", [name])?;
        Ok(n == 1)
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<UserRow>> {
        self.c().query_row(&format!("{USER} WHERE name = ?1"), [name], user).optional()
    }

    pub fn start_session(&self, id_hash: &[u8], user: i64, csrf: &str, now: i64) -> Result<()> {
        self.c().execute("INSERT INTO sessions (id_hash, \"user\", csrf, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)", params![id_hash, user, csrf, now])?;
        Ok(())
    }

    /// The live session with this id hash (seen within `idle_secs`, its user not
    /// disabled), its last use set to `now`; an idle one is deleted.
    pub fn touch_session(&self, id_hash: &[u8], now: i64, idle_secs: i64) -> Result<Option<SessionRow>> {
        self.c().execute("DELETE FROM sessions WHERE last_seen < ?1", [now - idle_secs])?;
        let found = self.c().query_row(
            "SELECT u.id, u.name, u.hash, u.roles, u.disabled, u.created_at, s.csrf FROM sessions s JOIN users u ON u.id = s.\"user\" WHERE s.id_hash = ?1 AND u.disabled = 0",
            [id_hash], |r| Ok(SessionRow { user: user(r)?, csrf: r.get(6)? }),
        ).optional()?;
        if found.is_some() {
            self.c().execute("UPDATE sessions SET last_seen = ?2 WHERE id_hash = ?1", params![id_hash, now])?;
        }
        Ok(found)
    }

    pub fn end_session(&self, id_hash: &[u8]) -> Result<()> {
        self.c().execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
        Ok(())
    }

    /// Keeps a new API token (sealed) for the session's next view of the tokens page, until
    /// `expires_at`; one at a time per session (a newer one replaces it).
    pub fn keep_fresh_token(&self, session: &[u8], sealed: &[u8], expires_at: i64, now: i64) -> Result<()> {
        self.c().execute("DELETE FROM fresh_tokens WHERE expires_at < ?1 OR session = ?2", params![now, session])?;
        self.c().execute("INSERT INTO fresh_tokens (session, sealed, expires_at) VALUES (?1, ?2, ?3)", params![session, sealed, expires_at])?;
        Ok(())
    }

    /// The session's kept token, taken (deleted in the same statement, so two views at
    /// once, on two servers, show it once between them); `None` when none or expired.
    pub fn take_fresh_token(&self, session: &[u8], now: i64) -> Result<Option<Vec<u8>>> {
        self.c().query_row("DELETE FROM fresh_tokens WHERE session = ?1 RETURNING sealed, expires_at", [session], |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<i64>(1)?)))
            .optional().map(|found| found.filter(|(_, until)| *until >= now).map(|(sealed, _)| sealed))
    }

    /// Records a failed (or not yet known to succeed) login; rows older than a day go.
    pub fn record_login_failure(&self, key: &str, at: i64) -> Result<i64> {
        self.c().execute("DELETE FROM login_failures WHERE at < ?1", [at - 86_400])?;
        self.c().query_row("INSERT INTO login_failures (key, at) VALUES (?1, ?2) RETURNING rowid", params![key, at], |r| r.get(0))
    }

    /// A login that succeeded after all: its provisional failures go.
    pub fn forget_login_failures(&self, ids: &[i64]) -> Result<()> {
        for id in ids {
            self.c().execute("DELETE FROM login_failures WHERE rowid = ?1", [id])?;
        }
        Ok(())
    }

    pub fn login_failures_since(&self, key: &str, since: i64) -> Result<u32> {
        self.c().query_row("SELECT count(*) FROM login_failures WHERE key = ?1 AND at >= ?2", params![key, since], |r| r.get(0))
    }

    /// A person settles an unchecked submission: accepted or rejected, with a note. The
    /// update is guarded by the state it acts on (`unchecked`): of two staff settling it at
    /// once (on two servers of one store), one settles it and the other is told who did.
    pub fn settle_submission(&self, id: i64, accepted: bool, note: &str, by: &str, at: chrono::DateTime<chrono::FixedOffset>) -> std::result::Result<(String, String), super::ActionError> {
        let result = if accepted { "accepted" } else { "rejected" };
        let reasons: Vec<String> = if accepted { vec![] } else { vec![note.to_string()] };
        let row: Option<(String, String)> = self.c().query_row(
            "UPDATE submissions SET result = ?2, reasons = ?3, settled_by = ?4, settled_at = ?5 WHERE id = ?1 AND result = 'unchecked' RETURNING number, owner",
            params![id, result, serde_json::to_string(&reasons).expect("JSON"), by, at.to_rfc3339()], |r| Ok((r.get(0)?, r.get(1)?)),
        ).optional()?;
        let Some((number, owner)) = row else {
            let settled: Option<Option<String>> = self.c().query_row("SELECT settled_by FROM submissions WHERE id = ?1", [id], |r| r.get(0)).optional()?;
            return Err(match settled {
                Some(Some(who)) => super::ActionError::AlreadyDone(format!("submission {id} was settled by {who}")),
                _ => super::ActionError::NotApplicable(format!("submission {id} is not waiting to be checked by hand")),
            });
        };
        self.record_action(by, if accepted { "settle_accepted" } else { "settle_rejected" }, &format!("submission {id}"), Some(&format!("{number} ({owner}): {note}")), at)?;
        Ok((number, owner))
    }
}

impl Store {
    pub fn users(&self) -> Result<Vec<UserRow>> {
        self.conn.query_map(&format!("{USER} ORDER BY id"), (), user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_after_its_idle_time_a_new_password_or_the_users_disabling() {
        let dir = crate::testing::tempdir().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        store.write(|tx| tx.add_user("佐藤", "$argon2id$x", &["admin".into()], "2026-07-04T10:00:00+09:00")).unwrap();
        let uid = store.users().unwrap()[0].id;
        let idle = 30 * 60;
        store.write(|tx| tx.start_session(&[1; 32], uid, "c1", 1_000)).unwrap();
        assert!(store.write(|tx| tx.touch_session(&[1; 32], 1_000 + idle - 1, idle)).unwrap().is_some(), "used within 30 minutes");
        assert!(store.write(|tx| tx.touch_session(&[1; 32], 1_000 + 2 * idle - 2, idle)).unwrap().is_some(), "each use starts the idle time again");
        assert!(store.write(|tx| tx.touch_session(&[1; 32], 1_000 + 3 * idle, idle)).unwrap().is_none(), "idle for more than 30 minutes: ended");
        store.write(|tx| tx.start_session(&[2; 32], uid, "c2", 5_000)).unwrap();
        store.write(|tx| tx.set_password("佐藤", "$argon2id$y")).unwrap();
        assert!(store.write(|tx| tx.touch_session(&[2; 32], 5_001, idle)).unwrap().is_none(), "a new password ends the sessions");
        store.write(|tx| tx.start_session(&[3; 32], uid, "c3", 6_000)).unwrap();
        assert!(store.write(|tx| tx.disable_user("佐藤")).unwrap());
        assert!(store.write(|tx| tx.touch_session(&[3; 32], 6_001, idle)).unwrap().is_none(), "a disabled user has no session");
    }
}
