//! Customer tokens: how a browser names the logged-in customer to the public context
//! endpoint without being able to name anyone else. The site's backend asks cohort for
//! a token when the customer logs in (`ingest` scope) and hands it to the page; a token
//! names one application and one customer, and expires.
//!
//! A token is `base64url(customer).expiry.base64url(HMAC-SHA256)`, signed with a key
//! held only in memory: derived from the configured `token_secret` (shared by every
//! server of a deployment), else random per process (its tokens then end with it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cohort_core::{ApplicationId, CustomerId, Invalid, Timestamp};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The longest a token lives: 30 days.
pub const MAX_TTL_MICROS: i64 = 30 * 24 * 3_600 * 1_000_000;

pub struct CustomerTokens {
    key: [u8; 32],
}

impl CustomerTokens {
    /// Signs with a key derived from `secret`, or a random one.
    pub fn new(secret: Option<&str>) -> Self {
        let key = match secret {
            Some(secret) => Sha256::digest(format!("cohort customer tokens\n{secret}").as_bytes()).into(),
            None => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                key
            }
        };
        Self { key }
    }

    fn signature(&self, app: &ApplicationId, customer: &str, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{app}\n{customer}\n{expires}").as_bytes());
        mac
    }

    /// A token for the customer in the application, valid until `expires`.
    pub fn issue(&self, app: &ApplicationId, customer: &CustomerId, expires: Timestamp) -> String {
        let seconds = expires.unix_micros().div_euclid(1_000_000);
        let signature = self.signature(app, customer.as_str(), seconds).finalize().into_bytes();
        format!(
            "{}.{seconds}.{}",
            URL_SAFE_NO_PAD.encode(customer.as_str()),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The customer a token names, if it was issued for this application, is intact
    /// and has not expired.
    pub fn verify(&self, app: &ApplicationId, token: &str, now: Timestamp) -> Result<CustomerId, Invalid> {
        let invalid = || Invalid::new("customer_token", "not a valid customer token for this application");
        let mut parts = token.splitn(3, '.');
        let (Some(customer), Some(seconds), Some(signature)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        let customer = URL_SAFE_NO_PAD
            .decode(customer)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(invalid)?;
        let seconds: i64 = seconds.parse().map_err(|_| invalid())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        self.signature(app, &customer, seconds)
            .verify_slice(&signature)
            .map_err(|_| invalid())?;
        if seconds.saturating_mul(1_000_000) <= now.unix_micros() {
            return Err(Invalid::new("customer_token", "the customer token has expired"));
        }
        CustomerId::parse("customer_token", &customer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str) -> ApplicationId {
        ApplicationId::parse("app", id).unwrap()
    }

    #[test]
    fn a_token_names_its_customer_in_its_application_until_it_expires() {
        let tokens = CustomerTokens::new(Some("s3cret"));
        let customer = CustomerId::parse("c", "C-1@shop").unwrap();
        let now = Timestamp::from_unix_micros(1_000_000_000_000);
        let expires = Timestamp::from_unix_micros(now.unix_micros() + 3_600_000_000);
        let token = tokens.issue(&app("shop"), &customer, expires);
        assert_eq!(tokens.verify(&app("shop"), &token, now).unwrap(), customer);
        assert!(tokens.verify(&app("blog"), &token, now).is_err(), "another application");
        assert!(tokens.verify(&app("shop"), &token, expires).is_err(), "expired");
        let forged = token.replacen(&URL_SAFE_NO_PAD.encode("C-1@shop"), &URL_SAFE_NO_PAD.encode("C-2"), 1);
        assert!(tokens.verify(&app("shop"), &forged, now).is_err(), "another customer");
        assert!(
            CustomerTokens::new(Some("other"))
                .verify(&app("shop"), &token, now)
                .is_err()
        );
        assert!(tokens.verify(&app("shop"), "C-1", now).is_err());
    }
}
