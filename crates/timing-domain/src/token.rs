//! `nextToken`: where the next page of a task listing starts, sealed with HMAC-SHA256 so a caller
//! can neither forge a start key nor carry a token over to different filters.

use crate::query::PageKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Shortest TOKEN_SECRET accepted: 32 bytes, the HMAC-SHA256 block strength.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub fn from_secret(secret: &str) -> Result<TokenKey, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes, got {}",
                secret.len()
            ));
        }
        Ok(TokenKey(secret.as_bytes().to_vec()))
    }

    /// A key for this process only: its tokens are refused by any other instance.
    pub fn random() -> Result<TokenKey, getrandom::Error> {
        let mut key = vec![0; MIN_SECRET_BYTES];
        getrandom::fill(&mut key)?;
        Ok(TokenKey(key))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of every length"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token this function issued (expected the nextToken of an earlier answer, unchanged)")]
    Malformed,
    #[error("failed its integrity check: it was altered, or issued by another deployment")]
    Tampered,
    #[error("was issued for a request with different filters; send the same filters, or start without nextToken")]
    OtherRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    /// The last record of the previous page.
    pub after: PageKey,
    /// The window, in epoch milliseconds, that the first page resolved.
    pub window: (i64, i64),
    pub fingerprint: String,
}

impl PageToken {
    pub fn seal(&self, key: &TokenKey) -> String {
        // Serializing plain strings and integers cannot fail.
        let payload = serde_json::to_vec(self).unwrap_or_default();
        let mut mac = key.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(tag))
    }

    pub fn open(text: &str, key: &TokenKey, fingerprint: &str) -> Result<PageToken, TokenError> {
        let (payload, tag) = text.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TokenError::Malformed)?;
        let mut mac = key.mac();
        mac.update(&payload);
        mac.verify_slice(&tag).map_err(|_| TokenError::Tampered)?;
        let token: PageToken = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if token.fingerprint != fingerprint {
            return Err(TokenError::OtherRequest);
        }
        Ok(token)
    }
}

/// A short digest of the request's filters as written.
pub fn request_fingerprint(parts: &[Option<&str>]) -> String {
    let canonical = serde_json::to_vec(parts).unwrap_or_default();
    let digest = Sha256::digest(&canonical);
    digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PageToken {
        PageToken {
            after: PageKey {
                task_arn: "arn:aws:ecs:us-east-1:1:task/c/t".into(),
                family: "web".into(),
                created_at: "2026-11-01T00:00:00.000Z".into(),
            },
            window: (1, 2),
            fingerprint: request_fingerprint(&[Some("web")]),
        }
    }

    fn key(byte: u8) -> TokenKey {
        TokenKey(vec![byte; 32])
    }

    #[test]
    fn a_sealed_token_opens_with_the_same_key_and_request() {
        let sealed = token().seal(&key(1));
        assert_eq!(PageToken::open(&sealed, &key(1), &token().fingerprint), Ok(token()));
    }

    #[test]
    fn altered_foreign_malformed_and_misapplied_tokens_are_refused() {
        let sealed = token().seal(&key(1));
        let (payload, tag) = sealed.split_once('.').unwrap();
        // Change the start key in the payload and re-encode it: the tag no longer matches.
        let forged_payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap())
            .unwrap()
            .replace("task/c/t", "task/c/u");
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged_payload));
        let fingerprint = token().fingerprint;
        assert_eq!(
            PageToken::open(&forged, &key(1), &fingerprint),
            Err(TokenError::Tampered)
        );
        assert_eq!(
            PageToken::open(&sealed, &key(2), &fingerprint),
            Err(TokenError::Tampered)
        );
        assert_eq!(
            PageToken::open("garbage", &key(1), &fingerprint),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            PageToken::open("a.b!", &key(1), &fingerprint),
            Err(TokenError::Malformed)
        );
        let other = request_fingerprint(&[Some("api")]);
        assert_eq!(PageToken::open(&sealed, &key(1), &other), Err(TokenError::OtherRequest));
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert!(TokenKey::from_secret("short").is_err());
        assert!(TokenKey::from_secret(&"s".repeat(32)).is_ok());
        assert_ne!(TokenKey::random().unwrap().0, TokenKey::random().unwrap().0);
    }
}
