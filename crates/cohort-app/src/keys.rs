//! API keys: issued once, stored as a SHA-256 hash, verified on every request.
//!
//! A key reads `ck_<id>_<secret>`. The id is public and finds the stored hash; the
//! secret has 256 random bits, so a fast hash is safe (no password stretching needed).
//! Verified keys are cached for a few seconds; revoking through this process clears
//! the cache at once, revoking from another process takes effect within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cohort_core::{ApiKey, KeyScope, Name, Permission, Timestamp};
use cohort_store::{Store, StoreResult};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Clock;

/// How long a verified key is trusted without asking the store again.
pub const CACHE_TTL_MICROS: i64 = 5_000_000;

/// Why a request was not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed bearer key")]
    Missing,
    #[error("unknown or revoked key")]
    Unknown,
    #[error("the key lacks the {0} scope")]
    Forbidden(Permission),
    #[error("key store unavailable")]
    Unavailable,
}

/// A key just created: `secret` is shown once and never stored.
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

/// Scopes of a verified key and when it was verified.
type Verified = (Vec<KeyScope>, Timestamp);

pub struct Keys {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// SHA-256 of the presented key → its scopes and when they were verified.
    cache: Mutex<HashMap<[u8; 32], Verified>>,
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Keys {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn create(&self, name: Name, scopes: Vec<KeyScope>) -> StoreResult<NewKey> {
        let mut rng = rand::rng();
        let mut id = [0u8; 6];
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let id = hex(&id);
        let secret_part = URL_SAFE_NO_PAD.encode(secret);
        let key = ApiKey {
            id: id.clone(),
            name,
            scopes,
            secret_hash: hex(&sha256(&secret_part)),
            created_at: self.clock.now(),
            revoked_at: None,
        };
        self.store.create_api_key(&key).await?;
        Ok(NewKey {
            key,
            secret: format!("ck_{id}_{secret_part}"),
        })
    }

    pub async fn list(&self) -> StoreResult<Vec<ApiKey>> {
        self.store.list_api_keys().await
    }

    pub async fn revoke(&self, id: &str) -> StoreResult<()> {
        self.store.revoke_api_key(id, self.clock.now()).await?;
        self.cache.lock().expect("key cache lock").clear();
        Ok(())
    }

    /// Checks a presented key and that one of its scopes allows `needed`.
    pub async fn authorize(&self, presented: &str, needed: &Permission) -> Result<(), AuthError> {
        let scopes = self.scopes_of(presented).await?;
        if scopes.iter().any(|s| s.allows(needed)) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(needed.clone()))
        }
    }

    /// The scopes of a presented key (`Unknown` for a key that does not exist, is
    /// malformed or was revoked).
    pub async fn scopes(&self, presented: &str) -> Result<Vec<KeyScope>, AuthError> {
        self.scopes_of(presented).await
    }

    async fn scopes_of(&self, presented: &str) -> Result<Vec<KeyScope>, AuthError> {
        let now = self.clock.now();
        let fingerprint = sha256(presented);
        if let Some((scopes, at)) = self.cache.lock().expect("key cache lock").get(&fingerprint)
            && now.unix_micros() - at.unix_micros() < CACHE_TTL_MICROS
        {
            return Ok(scopes.clone());
        }
        let (id, secret) = presented
            .strip_prefix("ck_")
            .and_then(|rest| rest.split_once('_'))
            .ok_or(AuthError::Unknown)?;
        let key = self
            .store
            .api_key(id)
            .await
            .map_err(|_| AuthError::Unavailable)?
            .ok_or(AuthError::Unknown)?;
        let matches: bool = hex(&sha256(secret)).as_bytes().ct_eq(key.secret_hash.as_bytes()).into();
        if !matches || key.revoked_at.is_some() {
            return Err(AuthError::Unknown);
        }
        self.cache
            .lock()
            .expect("key cache lock")
            .insert(fingerprint, (key.scopes.clone(), now));
        Ok(key.scopes)
    }
}
