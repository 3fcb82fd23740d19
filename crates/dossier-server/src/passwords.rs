//! Web users' passwords: argon2id with the crate's recommended parameters, in PHC strings.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 1024;
pub const MAX_USERNAME: usize = 64;

/// Checks a new password against the policy.
///
/// # Errors
/// Says what is wrong, naming the field.
pub fn check_password(p: &str) -> Result<(), String> {
    let n = p.chars().count();
    if n < MIN_PASSWORD {
        return Err(format!("password: at least {MIN_PASSWORD} characters"));
    }
    if n > MAX_PASSWORD {
        return Err(format!("password: at most {MAX_PASSWORD} characters"));
    }
    Ok(())
}

/// Checks a username: 1 to 64 of letters, digits, `.`, `_`, `-` and `@`. The alphabet keeps
/// user names apart from API-key actors (`api-key:…`) in timelines and the audit log.
///
/// # Errors
/// Says what is wrong, naming the field.
pub fn check_username(u: &str) -> Result<String, String> {
    let u = u.trim();
    if u.is_empty() {
        return Err("username: is required".into());
    }
    if u.chars().count() > MAX_USERNAME {
        return Err(format!("username: at most {MAX_USERNAME} characters"));
    }
    if !u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err("username: only letters, digits, '.', '_', '-' and '@'".into());
    }
    Ok(u.to_owned())
}

/// Hashes a password for storage.
///
/// # Errors
/// Only if the hasher fails, which its parameters rule out.
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Checks a password against its stored hash; a malformed hash never verifies.
#[must_use]
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A random password of 24 characters (144 bits), for `user create` and the demo.
#[must_use]
pub fn generate() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks and hashes a new user's name and password, and makes the record to store.
///
/// # Errors
/// What is wrong with the input, naming the field.
pub fn new_user(
    username: &str,
    password: &str,
    roles: Vec<dossier_domain::access::Role>,
    account_id: Option<String>,
) -> Result<dossier_store::UserRecord, String> {
    let username = check_username(username)?;
    check_password(password)?;
    if roles.is_empty() {
        return Err("roles: give at least one".into());
    }
    if roles.contains(&dossier_domain::access::Role::Metrics) {
        return Err(
            "roles: metrics is for the API key a Prometheus scrape uses, not for people".into(),
        );
    }
    dossier_domain::access::check_account(&roles, account_id.as_deref())?;
    Ok(dossier_store::UserRecord {
        id: String::new(),
        account_id,
        username,
        password_hash: hash(password)?,
        roles,
        created_at: chrono::Utc::now(),
    })
}

/// A hash to verify against when the user does not exist, so that a sign-in for an unknown
/// name costs as long as one with a wrong password and does not reveal which names exist.
#[must_use]
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("not a password anyone has").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn policy_names_the_field() {
        assert!(check_password("short")
            .unwrap_err()
            .starts_with("password:"));
        assert!(check_password("twelve chars").is_ok());
        assert_eq!(check_username(" alice ").unwrap(), "alice");
        assert!(check_username("api-key:abc").is_err());
        assert!(check_username("").is_err());
        assert!(check_username(&"a".repeat(65)).is_err());
    }
}
