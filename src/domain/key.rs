//! The 認証キー: 12 characters drawn by a cryptographic random source from an alphabet
//! without look-alikes, stored only as a salted hash in the registry, compared in
//! constant time.
//!
//! The alphabet keeps 21 characters that people and OCR do not confuse with one another
//! (the seeds show U↔1, 4↔A, 3B↔38): no 0/O/Q, 1/I/l, 2/Z, 5/S, 8/B, U/V, A, G. Upper case
//! only, so a key typed in lower case is the same key, not a near miss.
//! 21^12 ≈ 7.4 × 10^15 keys (52.7 bits).

use crate::clock::Random;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Digits without 0 1 2 5 8 and capitals without A B G I O Q S U V Z (and their look-alikes).
pub const ALPHABET: &[u8; 21] = b"34679CDEFHJKLMNPRTWXY";
pub const KEY_LEN: usize = 12;

/// A key in clear. Its `Debug` and `Display` never show it: use [`AuthKey::reveal`] where
/// the spec says the key is printed (the key notice, the completion mail, `render`).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthKey(String);

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(****)")
    }
}

impl AuthKey {
    /// Draws a key: rejection sampling, so every character is equally likely.
    pub fn generate(rng: &dyn Random) -> AuthKey {
        let mut out = String::with_capacity(KEY_LEN);
        let limit = 256 - 256 % ALPHABET.len(); // 252
        while out.len() < KEY_LEN {
            let mut buf = [0u8; 32];
            rng.fill(&mut buf);
            for b in buf {
                if (b as usize) < limit && out.len() < KEY_LEN {
                    out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
                }
            }
        }
        AuthKey(out)
    }

    /// Reads a key as typed or extracted: NFKC (full-width → ASCII), spaces dropped, upper
    /// case. `None` when it is not 12 characters of the alphabet: malformed, not a mismatch.
    pub fn parse(s: &str) -> Option<AuthKey> {
        let t: String = crate::text::squash(s).to_ascii_uppercase();
        (t.len() == KEY_LEN && t.bytes().all(|b| ALPHABET.contains(&b))).then_some(AuthKey(t))
    }

    pub fn reveal(&self) -> &str {
        &self.0
    }

    pub fn hash(&self, salt: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"esurety-key-v1\0");
        h.update(salt);
        h.update(self.0.as_bytes());
        h.finalize().into()
    }

    /// Constant-time comparison against a stored salted hash.
    pub fn matches(&self, salt: &[u8], stored: &[u8]) -> bool {
        let h = self.hash(salt);
        stored.len() == h.len() && bool::from(h.ct_eq(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeededRandom;

    #[test]
    fn keys_are_twelve_unambiguous_characters_and_differ() {
        let rng = SeededRandom::new(7);
        let keys: Vec<AuthKey> = (0..200).map(|_| AuthKey::generate(&rng)).collect();
        for k in &keys {
            assert_eq!(k.reveal().len(), 12);
            assert!(k.reveal().bytes().all(|b| ALPHABET.contains(&b)));
            assert!(!k.reveal().contains(['0', 'O', '1', 'I', 'l', '8', 'B', '5', 'S', '2', 'Z', 'U', 'V', 'A']));
        }
        let mut uniq: Vec<&str> = keys.iter().map(|k| k.reveal()).collect();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 200);
    }

    #[test]
    fn parsing_is_forgiving_of_width_and_case_but_never_of_characters() {
        let k = AuthKey::parse("CDEF34679HJK").unwrap();
        assert_eq!(AuthKey::parse("ｃｄｅｆ３４６７９ｈｊｋ"), Some(k.clone()));
        assert_eq!(AuthKey::parse("CDEF 3467 9HJK"), Some(k));
        assert_eq!(AuthKey::parse("Z28YUE4J3Bux"), None);
        assert_eq!(AuthKey::parse("CDEF34679HJ"), None);
    }

    #[test]
    fn a_near_miss_is_a_mismatch() {
        let k = AuthKey::parse("CDEF34679HJK").unwrap();
        let salt = [1u8; 16];
        let stored = k.hash(&salt);
        assert!(k.matches(&salt, &stored));
        assert!(!AuthKey::parse("CDEF34679HJL").unwrap().matches(&salt, &stored));
        assert!(!k.matches(&[2u8; 16], &stored));
        assert_eq!(format!("{k:?}"), "AuthKey(****)");
    }
}
