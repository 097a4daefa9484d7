//! JWTs signed with EdDSA (Ed25519): minting for services and the local token command, and
//! verification for every incoming call. Only `alg: EdDSA` is accepted, so a token cannot
//! pick a weaker algorithm for itself.

use crate::{Principal, Role, Scope, SigningKey, VerifyingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported token algorithm")]
    Algorithm,
    #[error("bad token signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token from an unknown issuer")]
    Issuer,
    #[error("token scope does not fit its role: {0}")]
    Scope(&'static str),
}

impl Claims {
    /// The caller these claims describe, if role and scope agree.
    pub fn principal(&self) -> Result<Principal, TokenError> {
        let scope = match self.role {
            Role::PropertyStaff | Role::PropertyManager => {
                if self.properties.is_empty() || self.region.is_some() {
                    return Err(TokenError::Scope("property roles name their properties"));
                }
                Scope::Properties(self.properties.clone())
            }
            Role::RegionalManager => match (&self.region, self.properties.is_empty()) {
                (Some(r), true) if !r.is_empty() => Scope::Region(r.clone()),
                _ => return Err(TokenError::Scope("a regional manager names one region")),
            },
            Role::HeadOffice | Role::Service => {
                if !self.properties.is_empty() || self.region.is_some() {
                    return Err(TokenError::Scope(
                        "chain-wide roles carry no narrower scope",
                    ));
                }
                Scope::Chain
            }
        };
        Ok(Principal {
            subject: self.sub.clone(),
            role: self.role,
            scope,
        })
    }
}

/// Mints tokens.
#[derive(Debug)]
pub struct TokenSigner {
    key: SigningKey,
    issuer: String,
}

impl TokenSigner {
    pub fn new(key: SigningKey, issuer: impl Into<String>) -> Self {
        Self {
            key,
            issuer: issuer.into(),
        }
    }

    /// A token for `subject` with this role and scope, valid for `ttl` from now.
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        properties: Vec<String>,
        region: Option<String>,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_string(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            role,
            properties,
            region,
        };
        claims.principal()?;
        Ok(self.sign(&claims))
    }

    /// Signs arbitrary claims (tests use this to make expired or odd tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        let header = B64.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let signature = self.key.0.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(signature.as_ref()))
    }
}

/// Checks tokens. A property's systems send the same token on every call for its whole
/// life, and an Ed25519 check costs more CPU than a whole cached read: tokens that passed
/// are remembered (by their exact bytes, which a forger cannot reproduce without the key)
/// until they expire, so a repeat costs one lookup. Expiry is still checked on every call.
#[derive(Debug)]
pub struct TokenVerifier {
    key: VerifyingKey,
    issuer: String,
    leeway_secs: i64,
    verified: std::sync::RwLock<std::collections::HashMap<Box<str>, Claims>>,
}

/// Tokens remembered at most; past that the memory starts afresh (a bounded cost under a
/// flood of distinct tokens, and each of them is still checked).
const VERIFIED_CACHE_MAX: usize = 10_000;

#[derive(Deserialize)]
struct Header {
    alg: String,
}

impl TokenVerifier {
    pub fn new(key: VerifyingKey, issuer: impl Into<String>) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            leeway_secs: 30,
            verified: Default::default(),
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let cached = self
            .verified
            .read()
            .ok()
            .and_then(|m| m.get(token).cloned());
        if let Some(claims) = cached {
            if claims.exp + self.leeway_secs < now {
                if let Ok(mut m) = self.verified.write() {
                    m.remove(token);
                }
                return Err(TokenError::Expired);
            }
            return Ok(claims);
        }
        let claims = self.verify_signed(token, now)?;
        if let Ok(mut m) = self.verified.write() {
            if m.len() >= VERIFIED_CACHE_MAX {
                m.clear();
            }
            m.insert(token.into(), claims.clone());
        }
        Ok(claims)
    }

    fn verify_signed(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(h)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::Algorithm);
        }
        let signature = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..h.len() + 1 + p.len()];
        if !self.key.verify(signing_input.as_bytes(), &signature) {
            return Err(TokenError::Signature);
        }
        let claims: Claims = decode_json(p)?;
        if claims.exp + self.leeway_secs < now {
            return Err(TokenError::Expired);
        }
        if claims.iat - self.leeway_secs > now {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss != self.issuer {
            return Err(TokenError::Issuer);
        }
        claims.principal()?;
        Ok(claims)
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate_key_pair_pem;

    fn pair() -> (TokenSigner, TokenVerifier) {
        let (private, public) = generate_key_pair_pem();
        (
            TokenSigner::new(SigningKey::from_pem(&private).unwrap(), "guestloop"),
            TokenVerifier::new(VerifyingKey::from_pem(&public).unwrap(), "guestloop"),
        )
    }

    #[test]
    fn round_trip() {
        let (s, v) = pair();
        let t = s
            .issue(
                "staff-1",
                Role::PropertyStaff,
                vec!["sh-bund".into()],
                None,
                Duration::from_secs(60),
            )
            .unwrap();
        let c = v.verify(&t).unwrap();
        assert_eq!(
            c.principal().unwrap().scope,
            Scope::Properties(vec!["sh-bund".into()])
        );
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let (s, v) = pair();
        let good = s
            .issue("x", Role::HeadOffice, vec![], None, Duration::from_secs(60))
            .unwrap();
        let mut claims = v.verify(&good).unwrap();
        // One second of leeway left: accepted (and remembered) now, expired soon after.
        claims.exp = chrono::Utc::now().timestamp() - v.leeway_secs + 1;
        let short = s.sign(&claims);
        assert_eq!(v.verify(&short), Ok(claims.clone()));
        assert_eq!(v.verify(&short), Ok(claims));
        std::thread::sleep(Duration::from_millis(2100));
        assert_eq!(v.verify(&short), Err(TokenError::Expired));
        assert_eq!(v.verify(&short), Err(TokenError::Expired));
        assert!(v.verify(&good).is_ok());
    }

    #[test]
    fn rejects_other_key_tampering_expiry_and_alg() {
        let (s, v) = pair();
        let (other, _) = pair();
        let t = other
            .issue("x", Role::HeadOffice, vec![], None, Duration::from_secs(60))
            .unwrap();
        assert_eq!(v.verify(&t), Err(TokenError::Signature));

        let good = s
            .issue(
                "x",
                Role::PropertyStaff,
                vec!["a".into()],
                None,
                Duration::from_secs(60),
            )
            .unwrap();
        let forged_claims = Claims {
            role: Role::HeadOffice,
            properties: vec![],
            ..v.verify(&good).unwrap()
        };
        let forged_payload = B64.encode(serde_json::to_vec(&forged_claims).unwrap());
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = &forged_payload;
        assert_eq!(v.verify(&parts.join(".")), Err(TokenError::Signature));

        let mut expired = v.verify(&good).unwrap();
        expired.exp -= 3600;
        expired.iat -= 7200;
        assert_eq!(v.verify(&s.sign(&expired)), Err(TokenError::Expired));

        let none_alg = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(v.verify(&none_alg), Err(TokenError::Algorithm));
        assert_eq!(v.verify("garbage"), Err(TokenError::Malformed));
    }

    #[test]
    fn scope_must_fit_role() {
        let (s, _) = pair();
        assert!(
            s.issue(
                "x",
                Role::PropertyStaff,
                vec![],
                None,
                Duration::from_secs(60)
            )
            .is_err()
        );
        assert!(
            s.issue(
                "x",
                Role::RegionalManager,
                vec![],
                None,
                Duration::from_secs(60)
            )
            .is_err()
        );
        assert!(
            s.issue(
                "x",
                Role::HeadOffice,
                vec!["a".into()],
                None,
                Duration::from_secs(60)
            )
            .is_err()
        );
    }
}
