//! API-key authentication and what the caller may do.
//!
//! Keys are 256 random bits, so a plain SHA-256 of the key is a safe stored form (a slow
//! password hash buys nothing against a key that cannot be guessed) and lets the key be found
//! by its hash in one indexed lookup.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dossier_domain::access::{Licence, Permissions, Role};
use dossier_store::Account;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

const KEY_PREFIX: &str = "dsk_";

/// Makes a new API key: returns (the key to show once, its stored hash).
#[must_use]
pub fn new_api_key() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_api_key(&key);
    (key, hash)
}

/// The stored form of a key.
#[must_use]
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.trim().as_bytes()))
}

/// Who is calling, and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller's name in timelines and audit logs.
    pub actor: String,
    /// The signed-in user's name; `None` for an API key, which is nobody's.
    pub user: Option<String>,
    /// The caller's account; `None` for an operator, who spans accounts.
    pub account_id: Option<String>,
    pub roles: Vec<Role>,
    pub perms: Permissions,
}

impl Principal {
    /// Resolves an assignee as a request names it: `me` is the signed-in user.
    ///
    /// # Errors
    /// Bad request for `me` from an API key, or an empty name.
    pub fn assignee(&self, field: &str, name: &str) -> Result<String, ApiError> {
        let name = name.trim();
        match name {
            "" => Err(ApiError::BadRequest(format!("{field}: a user name, or me"))),
            "me" => self.user.clone().ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{field}: me is the signed-in user, and an API key is not one; name the user"
                ))
            }),
            _ => Ok(name.to_owned()),
        }
    }

    /// Resolves a list's owner filter: `none` is the unassigned stories, `me` the signed-in
    /// user's, any other name that user's; empty is no filter.
    ///
    /// # Errors
    /// As [`Principal::assignee`].
    pub fn assignee_filter(
        &self,
        raw: Option<&str>,
    ) -> Result<Option<dossier_store::AssigneeFilter>, ApiError> {
        use dossier_store::AssigneeFilter;
        Ok(match raw.map(str::trim) {
            None | Some("") => None,
            Some("none") => Some(AssigneeFilter::Unassigned),
            Some(name) => Some(AssigneeFilter::User(self.assignee("assignee", name)?)),
        })
    }

    /// Returns the account a request acts on: the caller's own, or for an operator the one it
    /// names (if any).
    ///
    /// # Errors
    /// Forbidden when a non-operator names another account.
    pub fn scope(&self, requested: Option<&str>) -> Result<Option<String>, ApiError> {
        match (&self.account_id, requested) {
            (Some(own), Some(req)) if own != req => Err(ApiError::Forbidden(
                "this key belongs to another account".into(),
            )),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, req) if self.perms.all_accounts => Ok(req.map(str::to_owned)),
            // A key with no account that is not an operator's (a metrics key) reads no
            // account's data.
            (None, _) => Err(ApiError::Forbidden(
                "this key reads no account's data (a metrics key reads /metrics only)".into(),
            )),
        }
    }

    /// Fails unless the caller holds the permission.
    ///
    /// # Errors
    /// Forbidden, naming the role needed.
    pub fn require(&self, ok: bool, role_needed: &str) -> Result<(), ApiError> {
        if ok {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {role_needed} role"
            )))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthenticated)?;
        let (scheme, key) = header.split_once(' ').ok_or(ApiError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
            return Err(ApiError::Unauthenticated);
        }
        let record = state
            .store
            .find_api_key(&hash_api_key(key))
            .await
            .map_err(|e| match e {
                dossier_store::StoreError::NotFound => ApiError::Unauthenticated,
                other => ApiError::from_store(other, "API key"),
            })?;
        let perms = Permissions::of(&record.roles);
        Ok(Principal {
            actor: dossier_domain::access::key_actor(&record.id, record.name.as_deref()),
            user: None,
            account_id: if perms.all_accounts {
                None
            } else {
                record.account_id
            },
            roles: record.roles,
            perms,
        })
    }
}

/// Checks that the account may see stories (its licence), returning it.
///
/// # Errors
/// Forbidden when the licence does not cover stories.
pub async fn licensed_account(state: &AppState, account_id: &str) -> Result<Account, ApiError> {
    let account = state
        .store
        .get_account(account_id)
        .await
        .map_err(|e| ApiError::from_store(e, "account"))?;
    if !account.licence.can_read_stories() {
        return Err(ApiError::Forbidden(
            "stories need an xops or mdr licence on this account; events are available without one"
                .into(),
        ));
    }
    Ok(account)
}

/// Checks that the caller may act on the account's stories: a Stories editor, and not on an
/// `mdr` account unless the caller is the provider's operator.
///
/// # Errors
/// Forbidden with the reason.
pub fn may_act(p: &Principal, account: &Account) -> Result<(), ApiError> {
    p.require(p.perms.edit_stories, "stories-editor")?;
    if account.licence == Licence::Mdr && !p.perms.all_accounts {
        return Err(ApiError::Forbidden(
            "this account has an mdr licence: its provider acts on stories, the account reads them"
                .into(),
        ));
    }
    Ok(())
}
