//! Tokens a service presents when it calls another: minted locally with the signing key,
//! role `service`, reused until shortly before they expire.

use crate::{Role, TokenSigner};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(3600);
const RENEW_BEFORE: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct ServiceTokens {
    signer: TokenSigner,
    service_name: String,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ServiceTokens {
    pub fn new(signer: TokenSigner, service_name: impl Into<String>) -> Self {
        Self {
            signer,
            service_name: service_name.into(),
            cached: Mutex::new(None),
        }
    }

    /// A valid token for this service.
    pub fn token(&self) -> String {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + RENEW_BEFORE < *expires
        {
            return token.clone();
        }
        let token = self
            .signer
            .issue(&self.service_name, Role::Service, vec![], None, TTL)
            .expect("service role needs no scope");
        *cached = Some((token.clone(), Instant::now() + TTL));
        token
    }
}
