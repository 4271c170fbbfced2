//! The company's secret: 32 random bytes kept outside the store, in a file of mode 0600
//! that `esurety init` writes (`secret_file`, default `esurety.secret` beside the
//! configuration), or in `ESURETY_SECRET` (64 hex digits), which wins over the file.
//!
//! Two keys are derived from it. One seals the branch's copy of each 認証キー
//! (ChaCha20-Poly1305, a random nonce each time, the certificate number as associated data),
//! opened only to typeset a notice again or resend it. The other keys the registry's hash
//! of each key (HMAC-SHA256 over salt and key). A copy of the store without the secret
//! yields neither the keys nor a way to test guesses offline. A third seals what the desk
//! keeps for a moment (a new API token until its page shows it, `seal_note`); a fourth the
//! mailboxes' OAuth tokens (`seal_token`). Nothing here is ever logged:
//! `Debug` prints `Secrets(****)`.

use crate::clock::Random;
use crate::domain::AuthKey;
use ring::{aead, hmac};
use std::path::Path;

const ENV: &str = "ESURETY_SECRET";
const NONCE: usize = 12;

pub struct Secrets {
    seal: aead::LessSafeKey,
    mac: hmac::Key,
    note: aead::LessSafeKey,
    token: aead::LessSafeKey,
    /// What tells one secret from another without revealing it (see [`Secrets::fingerprint`]).
    fingerprint: [u8; 8],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(****)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the secret file {path}: {why}. `esurety init` writes one; for a store made before it was needed, write 32 random bytes yourself (`head -c 32 /dev/urandom > {path} && chmod 600 {path}`, before the first start: keys issued under one secret cannot be read under another), or set {ENV} to 64 hex digits")]
    Missing { path: String, why: String },
    #[error("the secret file {path} must hold exactly 32 bytes (it holds {len})")]
    BadFile { path: String, len: usize },
    #[error("{ENV} must be 64 hex digits")]
    BadEnv,
    #[error("the secret file {path} can be read by others (mode {mode:o}): chmod 600 {path}")]
    Exposed { path: String, mode: u32 },
}

impl Secrets {
    pub fn from_bytes(secret: &[u8; 32]) -> Secrets {
        let derive = |label: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), label);
        let seal = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, derive(b"esurety certificate keys v1").as_ref()).expect("32 bytes is a ChaCha20 key");
        let note = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, derive(b"esurety desk notes v1").as_ref()).expect("32 bytes is a ChaCha20 key");
        let token = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, derive(b"esurety oauth tokens v1").as_ref()).expect("32 bytes is a ChaCha20 key");
        let fingerprint = derive(b"esurety fingerprint v1").as_ref()[..8].try_into().expect("HMAC-SHA256 is 32 bytes");
        Secrets { seal: aead::LessSafeKey::new(seal), mac: hmac::Key::new(hmac::HMAC_SHA256, derive(b"esurety registry v1").as_ref()), note: aead::LessSafeKey::new(note), token: aead::LessSafeKey::new(token), fingerprint }
    }

    /// `ESURETY_SECRET` if set, else the file at `path` (which must not be readable by
    /// others). Its absence is an error: keys must never be issued under no secret.
    pub fn load(path: &Path) -> Result<Secrets, SecretError> {
        if let Ok(hex) = std::env::var(ENV) {
            return parse_hex(hex.trim()).map(|b| Secrets::from_bytes(&b)).ok_or(SecretError::BadEnv);
        }
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| SecretError::Missing { path: p.clone(), why: e.to_string() })?;
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(SecretError::Exposed { path: p, mode });
        }
        let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SecretError::BadFile { path: p, len: bytes.len() })?;
        Ok(Secrets::from_bytes(&secret))
    }

    /// Writes a new secret file (mode 0600); never replaces one.
    pub fn create_file(path: &Path, rng: &dyn Random) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut secret = [0u8; 32];
        rng.fill(&mut secret);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
        f.write_all(&secret)?;
        f.sync_all()
    }

    /// The secret's fingerprint: 16 hex digits of an HMAC of a label of its own under the
    /// secret (a derivation apart from the keys above). Printed by `esurety backup` and kept
    /// in the copy, so a restored store can be matched with its secret; it reveals nothing of
    /// the secret (32 random bytes: no guess can be tested against 64 bits of an HMAC
    /// faster than against the secret itself).
    pub fn fingerprint(&self) -> String {
        crate::text::hex(&self.fingerprint)
    }

    /// The key sealed for the store: nonce ‖ ciphertext ‖ tag, bound to the number.
    pub fn seal(&self, number: &str, key: &AuthKey, rng: &dyn Random) -> Vec<u8> {
        seal_with(&self.seal, number.as_bytes(), key.reveal().as_bytes(), rng)
    }

    /// The key sealed by [`Secrets::seal`] for this number; `None` when it does not open
    /// (another secret, another number, damaged bytes).
    pub fn open(&self, number: &str, sealed: &[u8]) -> Option<AuthKey> {
        let clear = open_with(&self.seal, number.as_bytes(), sealed)?;
        AuthKey::parse(std::str::from_utf8(&clear).ok()?)
    }

    /// `clear` sealed for the store under the desk's key, bound to `to` (what it belongs
    /// to, e.g. a session): nonce ‖ ciphertext ‖ tag.
    pub fn seal_note(&self, to: &[u8], clear: &[u8], rng: &dyn Random) -> Vec<u8> {
        seal_with(&self.note, to, clear, rng)
    }

    /// What [`Secrets::seal_note`] sealed for `to`; `None` when it does not open.
    pub fn open_note(&self, to: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.note, to, sealed)
    }

    /// A mailbox's OAuth token sealed for the store under a key of its own, bound to its
    /// login (`imap:ADDRESS`): nonce ‖ ciphertext ‖ tag.
    pub fn seal_token(&self, login: &str, token: &str, rng: &dyn Random) -> Vec<u8> {
        seal_with(&self.token, login.as_bytes(), token.as_bytes(), rng)
    }

    /// What [`Secrets::seal_token`] sealed for `login`; `None` when it does not open.
    pub fn open_token(&self, login: &str, sealed: &[u8]) -> Option<String> {
        String::from_utf8(open_with(&self.token, login.as_bytes(), sealed)?).ok()
    }

    /// The registry's hash of a key: HMAC-SHA256(salt ‖ key) under the secret.
    pub fn mac(&self, salt: &[u8], key: &AuthKey) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.mac);
        ctx.update(salt);
        ctx.update(key.reveal().as_bytes());
        ctx.sign().as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    /// Whether `key` is the one whose MAC is `stored`, compared in constant time.
    /// A short keyed tag of a text (16 hex digits): tells two values apart in a record
    /// without keeping them (a wrong key asked twice under one request reference).
    pub fn tag(&self, text: &str) -> String {
        let t = hmac::sign(&self.mac, format!("tag\0{text}").as_bytes());
        t.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn mac_matches(&self, salt: &[u8], key: &AuthKey, stored: &[u8]) -> bool {
        let mut data = salt.to_vec();
        data.extend_from_slice(key.reveal().as_bytes());
        hmac::verify(&self.mac, &data, stored).is_ok()
    }
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// nonce ‖ ciphertext ‖ tag of `clear` under `key`, bound to `aad` (a fresh random nonce).
fn seal_with(key: &aead::LessSafeKey, aad: &[u8], clear: &[u8], rng: &dyn Random) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    rng.fill(&mut nonce);
    let mut data = clear.to_vec();
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(aad), &mut data)
        .expect("what is sealed here (a key, a token) is far below the AEAD's limit");
    [nonce.as_slice(), &data].concat()
}

/// What [`seal_with`] sealed under `key` for `aad`; `None` when it does not open.
fn open_with(key: &aead::LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE {
        return None;
    }
    let (nonce, data) = sealed.split_at(NONCE);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut data = data.to_vec();
    key.open_in_place(nonce, aead::Aad::from(aad), &mut data).ok().map(|c| c.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeededRandom;

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_number() {
        let rng = SeededRandom::new(3);
        let s = Secrets::from_bytes(&[7u8; 32]);
        let key = AuthKey::parse("CDEF34679HJK").unwrap();
        let sealed = s.seal("35075-00001M", &key, &rng);
        assert!(!sealed.windows(12).any(|w| w == b"CDEF34679HJK"), "no key in clear");
        assert_eq!(s.open("35075-00001M", &sealed), Some(key.clone()));
        assert_eq!(s.open("35075-00002M", &sealed), None, "bound to its number");
        assert_eq!(Secrets::from_bytes(&[8u8; 32]).open("35075-00001M", &sealed), None, "another secret");
        assert_ne!(s.seal("35075-00001M", &key, &rng), sealed, "a new nonce each time");
        assert_eq!(format!("{s:?}"), "Secrets(****)");
    }

    #[test]
    fn the_registry_mac_needs_the_secret() {
        let s = Secrets::from_bytes(&[7u8; 32]);
        let key = AuthKey::parse("CDEF34679HJK").unwrap();
        let mac = s.mac(b"salt", &key);
        assert!(s.mac_matches(b"salt", &key, &mac));
        assert!(!s.mac_matches(b"salt", &AuthKey::parse("CDEF34679HJL").unwrap(), &mac));
        assert!(!Secrets::from_bytes(&[8u8; 32]).mac_matches(b"salt", &key, &mac));
        assert_ne!(&mac[..], &key.hash(b"salt")[..], "not the unkeyed hash");
    }

    #[test]
    fn the_fingerprint_tells_secrets_apart_and_shows_none_of_them() {
        let a = Secrets::from_bytes(&[7u8; 32]);
        assert_eq!(a.fingerprint().len(), 16);
        assert_eq!(a.fingerprint(), Secrets::from_bytes(&[7u8; 32]).fingerprint());
        assert_ne!(a.fingerprint(), Secrets::from_bytes(&[8u8; 32]).fingerprint());
        assert!(!a.fingerprint().contains("0707"), "not the secret's bytes");
    }
}
