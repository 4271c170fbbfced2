//! API tokens of owner systems (`esurety token add / list / revoke`): 256 random bits,
//! shown once; the store keeps only their SHA-256, so a copy of the store gives no token.

use crate::clock::Random;
use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked one is recognisable (secret scanners).
pub const PREFIX: &str = "esr_";

/// A new token and the hash to store.
pub fn new_token(rng: &dyn Random) -> (String, [u8; 32]) {
    let token = format!("{PREFIX}{}", crate::clock::random_hex(rng, 32));
    let h = hash(&token);
    (token, h)
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

/// The token of an `Authorization: Bearer …` header value, if it is one.
pub fn from_header(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 200).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_random_prefixed_and_only_its_hash_is_kept() {
        let (a, ha) = new_token(&crate::clock::OsRandom);
        let (b, _) = new_token(&crate::clock::OsRandom);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(hash(&a), ha);
        assert_eq!(from_header(&format!("Bearer {a}")), Some(a.as_str()));
        assert_eq!(from_header(&format!("bearer  {a} ")), Some(a.as_str()));
        assert_eq!(from_header("Basic abc"), None);
        assert_eq!(from_header("Bearer "), None);
    }
}
