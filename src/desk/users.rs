//! The desk's users (`desk.md` § Users and roles): roles, Argon2id password hashes, and
//! session ids. Pure but for the hashing's work; the store keeps what these produce.

use crate::clock::Random;
use crate::config::Config;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 12;

/// What a user may see and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// One branch's staff (its address).
    Branch(String),
    /// One owner's contract staff (its contracts address).
    Owner(String),
    Admin,
}

impl Role {
    /// `branch:ADDRESS`, `owner:ADDRESS` or `admin`, checked against the configuration.
    pub fn parse(s: &str, config: &Config) -> Result<Role, String> {
        match s.trim().split_once(':') {
            None if s.trim() == "admin" => Ok(Role::Admin),
            Some(("branch", a)) => config.branch_by_address(a).map(|b| Role::Branch(b.address.clone()))
                .ok_or_else(|| format!("{a} is not a branch address of this configuration")),
            Some(("owner", a)) => config.owner_by_address(a).map(|o| Role::Owner(o.contracts_address.clone()))
                .ok_or_else(|| format!("{a} is not an owner's contracts address of this configuration")),
            _ => Err(format!("\"{s}\" is not a role: branch:ADDRESS, owner:ADDRESS or admin")),
        }
    }

    /// As stored (`branch:ADDRESS` …); unknown text reads as no role.
    pub fn from_stored(s: &str) -> Option<Role> {
        match s.split_once(':') {
            None if s == "admin" => Some(Role::Admin),
            Some(("branch", a)) => Some(Role::Branch(a.to_string())),
            Some(("owner", a)) => Some(Role::Owner(a.to_string())),
            _ => None,
        }
    }

    pub fn stored(&self) -> String {
        match self {
            Role::Branch(a) => format!("branch:{a}"),
            Role::Owner(a) => format!("owner:{a}"),
            Role::Admin => "admin".into(),
        }
    }
}

/// What one user may reach: the branch mailboxes and owner mailboxes of their roles.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub admin: bool,
    pub branches: Vec<String>,
    pub owners: Vec<String>,
}

impl Scope {
    pub fn of(roles: &[String]) -> Scope {
        let mut s = Scope::default();
        for r in roles.iter().filter_map(|r| Role::from_stored(r)) {
            match r {
                Role::Admin => s.admin = true,
                Role::Branch(a) => s.branches.push(a),
                Role::Owner(a) => s.owners.push(a),
            }
        }
        s
    }

    pub fn branch(&self, address: &str) -> bool {
        self.admin || self.branches.iter().any(|b| b.eq_ignore_ascii_case(address))
    }

    pub fn owner(&self, address: &str) -> bool {
        self.admin || self.owners.iter().any(|o| o.eq_ignore_ascii_case(address))
    }

    pub fn any_branch(&self) -> bool {
        self.admin || !self.branches.is_empty()
    }

    pub fn any_owner(&self) -> bool {
        self.admin || !self.owners.is_empty()
    }

    /// Whether certificates of this office are the user's (their branch's office code).
    pub fn office(&self, config: &Config, code: &str) -> bool {
        self.admin || self.branches.iter().any(|b| config.branch_by_address(b).is_some_and(|b| b.office_code == code))
    }

    /// Whether submissions to the owner named so are the user's.
    pub fn owner_named(&self, config: &Config, name: &str) -> bool {
        self.admin || self.owners.iter().any(|o| config.owner_by_address(o).is_some_and(|o| crate::text::squash(&o.name) == crate::text::squash(name)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password has at least {MIN_PASSWORD} characters")]
    TooShort,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// An Argon2id hash (PHC string, default parameters: 19 MiB, 2 passes) of a new password.
pub fn hash_password(password: &str, rng: &dyn Random) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(PasswordError::TooShort);
    }
    let mut salt = [0u8; 16];
    rng.fill(&mut salt);
    let h: PasswordHash = Argon2::default().hash_password_with_salt(password.as_bytes(), &salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(h.to_string())
}

/// Whether `password` matches the stored hash (the comparison is the library's, in
/// constant time). A hash that does not parse matches nothing.
pub fn password_matches(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// The hash a login checks against when the user does not exist: the same work, so the
/// time taken does not tell an unknown user from a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never a user's", &crate::clock::OsRandom).expect("hashes"))
}

/// A new session id (256 random bits, hex) and the hash the store keeps.
pub fn new_session(rng: &dyn Random) -> (String, [u8; 32]) {
    let id = crate::clock::random_hex(rng, 32);
    let h = session_hash(&id);
    (id, h)
}

pub fn session_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_kept_as_argon2id_and_only_the_right_one_matches() {
        let h = hash_password("correct horse battery", &crate::clock::OsRandom).unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(password_matches("correct horse battery", &h));
        assert!(!password_matches("correct horse batterY", &h));
        assert!(!password_matches("correct horse battery", "not a hash"));
        assert!(matches!(hash_password("short", &crate::clock::OsRandom), Err(PasswordError::TooShort)));
    }

    #[test]
    fn roles_are_checked_against_the_configuration() {
        let config = crate::config::Config::from_raw(toml::from_str(crate::config::default::DEFAULT_CONFIG).unwrap(), std::path::Path::new("/tmp/x/esurety.toml")).unwrap();
        assert_eq!(Role::parse("branch:kanagawa@ejcs.example", &config), Ok(Role::Branch("kanagawa@ejcs.example".into())));
        assert_eq!(Role::parse("owner:keiyaku@kwsa.example", &config), Ok(Role::Owner("keiyaku@kwsa.example".into())));
        assert!(Role::parse("branch:keiyaku@kwsa.example", &config).is_err());
        assert!(Role::parse("root", &config).is_err());
        let s = Scope::of(&["branch:kanagawa@ejcs.example".into()]);
        assert!(s.branch("kanagawa@ejcs.example") && !s.branch("nagano@ejcs.example") && !s.any_owner());
        assert!(s.office(&config, "35075") && !s.office(&config, "20075"));
    }
}
