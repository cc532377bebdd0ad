//! Random secrets (API tokens, invitation tokens, session ids) and how they are stored.
//!
//! Secrets carry 256 bits from the OS generator, so a plain SHA-256 is the right stored form:
//! a slow password hash buys nothing against a guess space of 2^256, and a fast one keeps
//! authentication off the hot path's profile.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new secret: `prefix` + 43 URL-safe characters. The prefix tells what it is
/// (`pvs_` API token, `pvi_` invitation, `pvc_` session) so leaked ones are easy to spot.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A one-time code of `digits` decimal digits, uniform from the OS generator.
pub fn new_numeric_code(digits: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..digits).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// A new record id: a UUIDv7, time-ordered, so inserts land at the right edge of the
/// primary-key B-tree instead of at random pages (ids stay opaque to clients).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Constant-time equality for secrets compared in memory.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_distinct_and_hash_stably() {
        let a = new_secret("pvs_");
        let b = new_secret("pvs_");
        assert_ne!(a, b);
        assert!(a.starts_with("pvs_") && a.len() == 47);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_eq!(hash_secret(&a).len(), 64);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}
