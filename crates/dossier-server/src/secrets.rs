//! Connector tokens at rest: AES-256-GCM with a key file created 0600 on first start.

use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;
const VERSION: u8 = 1;

/// Encrypts and decrypts connector secrets. Its `Debug` shows nothing of the key.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<hidden>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("a stored secret could not be decrypted (wrong --secret-key-file?)")]
    Decrypt,
}

impl SecretBox {
    /// Loads the 32-byte key from `path`, creating it (mode 0600) with a random key if absent.
    ///
    /// # Errors
    /// Fails when the file cannot be read or created, or does not hold a 32-byte key.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let err = |reason: String| SecretError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        let key = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
                f.write_all(&key).map_err(|e| err(e.to_string()))?;
                f.sync_all().map_err(|e| err(e.to_string()))?;
                tracing::info!(path = %path.display(), "created a new secret key file");
                key
            }
            Err(e) => return Err(err(e.to_string())),
        };
        Self::from_key(&key)
            .map_err(|()| err(format!("holds {} bytes; a key is 32 bytes", key.len())))
    }

    /// Builds a box from raw key bytes (32).
    ///
    /// # Errors
    /// Fails when the key is not 32 bytes.
    #[allow(clippy::result_unit_err)]
    pub fn from_key(key: &[u8]) -> Result<Self, ()> {
        Aes256Gcm::new_from_slice(key)
            .map(|cipher| Self { cipher })
            .map_err(|_| ())
    }

    /// Encrypts a secret: version byte, random nonce, ciphertext with tag.
    #[must_use]
    pub fn seal(&self, secret: &SecretString) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), secret.expose_secret().as_bytes())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts what [`SecretBox::seal`] made.
    ///
    /// # Errors
    /// Fails on tampered data or a different key.
    pub fn open(&self, sealed: &[u8]) -> Result<SecretString, SecretError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SecretError::Decrypt);
        }
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| SecretError::Decrypt)
    }
}

/// What the key check holds: nothing secret, only proof of the key it was sealed with.
const KEY_CHECK: &str = "dossier key check";

/// Checks that `secrets` is the key the other nodes of the store's database use: the first
/// node keeps a value sealed with its key, and a node whose key cannot open it is refused
/// before it seals a connector token the others could not read. A store that one process has
/// alone keeps no check.
///
/// # Errors
/// Says what to do when the key is not theirs, or the check cannot be read or kept.
pub async fn check_shared_key(
    store: &dyn dossier_store::Store,
    secrets: &SecretBox,
) -> Result<(), String> {
    let kept = match store.key_check().await.map_err(|e| e.to_string())? {
        Some(kept) => kept,
        None => store
            .set_key_check(&secrets.seal(&SecretString::from(KEY_CHECK)))
            .await
            .map_err(|e| e.to_string())?,
    };
    match secrets.open(&kept) {
        Ok(s) if s.expose_secret() == KEY_CHECK => Ok(()),
        _ => Err(
            "this secret key is not the one the other nodes of this database use: give \
                  every node a copy of the same key file (--secret-key-file)"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seals_and_opens_and_hides_the_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let b = SecretBox::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let sealed = b.seal(&SecretString::from("tok-123456"));
        assert!(!sealed.windows(10).any(|w| w == b"tok-123456"));
        assert_eq!(b.open(&sealed).unwrap().expose_secret(), "tok-123456");
        // The same key file opens it again; another key does not.
        let again = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed).unwrap().expose_secret(), "tok-123456");
        let other = SecretBox::from_key(&[7u8; 32]).unwrap();
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(b.open(&tampered).is_err());
        assert_eq!(format!("{b:?}"), "SecretBox(<hidden>)");
    }
}
