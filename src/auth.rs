//! Admin API keys: random secrets, kept only as SHA-256 hashes, compared in
//! constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every generated key starts with this, so leaked keys are easy to spot.
pub const KEY_PREFIX: &str = "fp_";
/// How much of a key is kept in clear to tell keys apart in listings.
const SHOWN_PREFIX_LEN: usize = 10;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scope {
    /// Read drafts and scheduled articles.
    ReadDrafts,
    /// Create, change and delete articles, categories, tags and authors.
    Write,
}

impl Scope {
    /// Every scope: what the bootstrap key (`FRONTPAGE_ADMIN_TOKEN`) has.
    pub const ALL: [Scope; 2] = [Scope::ReadDrafts, Scope::Write];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadDrafts => "read-drafts",
            Self::Write => "write",
        }
    }

    /// The scopes named in a stored, space-separated list (unknown names
    /// grant nothing).
    pub fn parse_list(stored: &str) -> Vec<Scope> {
        Self::ALL
            .into_iter()
            .filter(|scope| stored.split_whitespace().any(|name| name == scope.as_str()))
            .collect()
    }

    /// The stored form of a list.
    pub fn list_to_string(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The SHA-256 digest under which a key is stored.
pub type KeyHash = [u8; 32];

/// A new random key: `fp_` and 32 random bytes in base64url.
pub fn generate_key() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret))
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> KeyHash {
    Sha256::digest(key.as_bytes()).into()
}

/// The clear start of a key, for listings.
pub fn shown_prefix(key: &str) -> String {
    key.chars().take(SHOWN_PREFIX_LEN).collect()
}

/// Compares two digests without leaking where they differ.
pub fn same_hash(a: &KeyHash, b: &[u8]) -> bool {
    a.as_slice().ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_prefixed() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
    }

    #[test]
    fn hashes_match_only_the_same_key() {
        let key = generate_key();
        assert!(same_hash(&hash_key(&key), &hash_key(&key)));
        assert!(!same_hash(&hash_key(&key), &hash_key("fp_other")));
        assert!(!same_hash(&hash_key(&key), b"short"));
    }
}
