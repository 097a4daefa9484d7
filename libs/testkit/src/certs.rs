//! Certificates for TLS tests, made on the spot (rcgen): a CA, and server or client
//! certificates it signs, valid now or long expired.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// What a certificate is for.
#[derive(Debug, Clone, Copy)]
pub enum Usage {
    Server,
    Client,
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("generate a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Self { cert, key }
    }

    /// The CA's own certificate, PEM: what a peer trusts.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `name` (a DNS name), valid now.
    pub fn issue(&self, name: &str, usage: Usage) -> Pair {
        self.issue_with(name, usage, false)
    }

    /// As [`TestCa::issue`], valid only during 2020.
    pub fn issue_expired(&self, name: &str, usage: Usage) -> Pair {
        self.issue_with(name, usage, true)
    }

    fn issue_with(&self, name: &str, usage: Usage, expired: bool) -> Pair {
        let key = KeyPair::generate().expect("generate a key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the certificate");
        Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
