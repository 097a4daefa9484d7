//! Signing keys written once per test process, and tokens for any role and scope.

use guestloop_auth::{Role, SigningKey, TokenSigner, generate_key_pair_pem};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug)]
pub struct TestKeys {
    pub signing_key_path: PathBuf,
    pub public_key_path: PathBuf,
    signer: TokenSigner,
}

pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("guestloop-keys-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("key dir");
        let (private, public) = generate_key_pair_pem();
        let signing_key_path = dir.join("jwt-signing.pem");
        let public_key_path = dir.join("jwt-public.pem");
        std::fs::write(&signing_key_path, &private).expect("write key");
        std::fs::write(&public_key_path, &public).expect("write key");
        TestKeys {
            signing_key_path,
            public_key_path,
            signer: TokenSigner::new(SigningKey::from_pem(&private).expect("key"), "guestloop"),
        }
    })
}

impl TestKeys {
    pub fn signer(&self) -> &TokenSigner {
        &self.signer
    }

    pub fn token(&self, role: Role, properties: &[&str], region: Option<&str>) -> String {
        self.signer
            .issue(
                "test-user",
                role,
                properties.iter().map(|p| p.to_string()).collect(),
                region.map(str::to_string),
                Duration::from_secs(3600),
            )
            .expect("valid test token")
    }

    pub fn head_office(&self) -> String {
        self.token(Role::HeadOffice, &[], None)
    }

    pub fn staff(&self, property: &str) -> String {
        self.token(Role::PropertyStaff, &[property], None)
    }

    pub fn regional(&self, region: &str) -> String {
        self.token(Role::RegionalManager, &[], Some(region))
    }
}
