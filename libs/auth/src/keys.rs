//! Ed25519 keys in PEM: PKCS#8 for the private key, SubjectPublicKeyInfo for the public one
//! (the formats `openssl genpkey -algorithm ed25519` writes).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The fixed DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a PEM block labelled {0}")]
    NotPem(&'static str),
    #[error("not an Ed25519 key")]
    NotEd25519,
}

/// The private key that signs tokens.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = decode_pem(pem, "PRIVATE KEY")?;
        let pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|_| KeyError::NotEd25519)?;
        Ok(Self { pair, pkcs8: der })
    }

    pub fn from_file(path: &str) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?)
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.pair.public_key().as_ref().to_vec())
    }

    pub(crate) fn encoding_key(&self) -> jsonwebtoken::EncodingKey {
        jsonwebtoken::EncodingKey::from_ed_der(&self.pkcs8)
    }
}

/// The public key that checks tokens.
#[derive(Debug, Clone)]
pub struct VerifyingKey(pub(crate) Vec<u8>);

impl VerifyingKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let der = decode_pem(pem, "PUBLIC KEY")?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) if key.len() == 32 => Ok(Self(key.to_vec())),
            _ => Err(KeyError::NotEd25519),
        }
    }

    pub fn from_file(path: &str) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?)
    }

    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        encode_pem(&der, "PUBLIC KEY")
    }

    /// The key's id in a token's `kid`: the first 16 hex digits of the SHA-256 of the raw
    /// public key, so every service derives the same id from the same PEM file.
    pub fn key_id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.0);
        digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn decoding_key(&self) -> jsonwebtoken::DecodingKey {
        jsonwebtoken::DecodingKey::from_ed_der(&self.0)
    }
}

/// A new key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn generate_key_pair_pem() -> (String, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("system randomness available");
    let private = encode_pem(pkcs8.as_ref(), "PRIVATE KEY");
    let public = SigningKey::from_pem(&private)
        .expect("freshly generated key parses")
        .verifying_key()
        .to_pem();
    (private, public)
}

fn read(path: &str) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_string(),
        source,
    })
}

fn decode_pem(pem: &str, label: &'static str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or(KeyError::NotPem(label))? + begin.len();
    let stop = pem[start..].find(&end).ok_or(KeyError::NotPem(label))? + start;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).map_err(|_| KeyError::NotPem(label))
}

fn encode_pem(der: &[u8], label: &str) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
