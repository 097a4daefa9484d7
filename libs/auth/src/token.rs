//! JWTs signed with EdDSA (Ed25519), by the `jsonwebtoken` library: minting for services
//! and the local token command, and verification for every incoming call. Only `alg: EdDSA`
//! is accepted, so a token cannot pick a weaker algorithm (or `none`) for itself. Every
//! token names its key (`kid`, the key's fingerprint), so during a key rotation the old and
//! the new public key are both accepted and each token is checked against its own.

use crate::{Principal, Role, Scope, SigningKey, VerifyingKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The audience tokens are minted for and checked against unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "guestloop";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
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
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("bad token signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token from an unknown issuer")]
    Issuer,
    #[error("token for another audience")]
    Audience,
    #[error("token scope does not fit its role: {0}")]
    Scope(&'static str),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidSignature => Self::Signature,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::Issuer,
            ErrorKind::InvalidAudience => Self::Audience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Self::Algorithm,
            _ => Self::Malformed,
        }
    }
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
    audience: String,
}

impl TokenSigner {
    pub fn new(key: SigningKey, issuer: impl Into<String>) -> Self {
        Self {
            key,
            issuer: issuer.into(),
            audience: DEFAULT_AUDIENCE.to_string(),
        }
    }

    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
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
            aud: self.audience.clone(),
            sub: subject.to_string(),
            iat: now,
            nbf: Some(now),
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
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.verifying_key().key_id());
        jsonwebtoken::encode(&header, claims, &self.key.encoding_key())
            .expect("an Ed25519 key signs any claims")
    }
}

/// Checks tokens. A property's systems send the same token on every call for its whole
/// life, and an Ed25519 check costs more CPU than a whole cached read: tokens that passed
/// are remembered (by their exact bytes, which a forger cannot reproduce without the key)
/// until they expire, so a repeat costs one lookup. Expiry is still checked on every call.
pub struct TokenVerifier {
    /// Public keys by key id: the current one and, during a rotation, the previous one.
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
    leeway_secs: i64,
    verified: std::sync::RwLock<HashMap<Box<str>, Claims>>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish()
    }
}

/// Tokens remembered at most; past that the memory starts afresh (a bounded cost under a
/// flood of distinct tokens, and each of them is still checked).
const VERIFIED_CACHE_MAX: usize = 10_000;

/// Clock skew tolerated between the token's minter and this process.
const LEEWAY_SECS: u64 = 30;

impl TokenVerifier {
    pub fn new(key: VerifyingKey, issuer: impl Into<String>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer.into()]);
        validation.set_audience(&[DEFAULT_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            keys: HashMap::from([(key.key_id(), key.decoding_key())]),
            validation,
            leeway_secs: LEEWAY_SECS as i64,
            verified: Default::default(),
        }
    }

    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self
    }

    /// Also accepts tokens signed by `key` (the previous key while a rotation is under way).
    pub fn with_key(mut self, key: VerifyingKey) -> Self {
        self.keys.insert(key.key_id(), key.decoding_key());
        self
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
        let header = jsonwebtoken::decode_header(token).map_err(|e| header_error(token, e))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)?.claims;
        // The library checks exp and nbf; a token minted in the future is refused too.
        if claims.iat - self.leeway_secs > now {
            return Err(TokenError::NotYetValid);
        }
        claims.principal()?;
        Ok(claims)
    }
}

/// Why a header did not parse: an algorithm outside the library's list (`none`) is an
/// algorithm refusal, anything else a malformed token.
fn header_error(token: &str, e: jsonwebtoken::errors::Error) -> TokenError {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| B64.decode(h).ok())
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v.get("alg").and_then(|a| a.as_str()).map(str::to_string));
    match alg {
        Some(alg) if alg != "EdDSA" => TokenError::Algorithm,
        _ => TokenError::from(e),
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
