//! TLS on the gRPC listener (rustls, ring), for property systems calling from the open
//! internet. The certificate and key come from files and are reloaded when the files change
//! (a renewed certificate, a Kubernetes Secret swapped under a mounted volume) without a
//! restart: connections made after the swap get the new certificate, open ones keep theirs.
//! With a client CA configured the listener is mutual TLS: a client without a certificate
//! from that CA (or with an expired one) is refused in the handshake.

use guestloop_config::TlsSettings;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A handshake that has not finished by then is dropped (a client that connects and says
/// nothing must not hold a task forever).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{key}`: cannot read {path}: {reason}")]
    File {
        key: &'static str,
        path: String,
        reason: String,
    },
    #[error("`{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Accepts TLS connections with the current certificate; cheap to clone.
#[derive(Clone)]
pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
}

impl Acceptor {
    /// Loads the certificate, key and (for mutual TLS) client CA named in `settings`, and
    /// starts watching the certificate and key files. `None` when TLS is not configured.
    pub fn from_settings(settings: &TlsSettings) -> Result<Option<Self>, TlsError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = CertFiles {
            cert: PathBuf::from(&settings.cert_path),
            key: PathBuf::from(&settings.key_path),
        };
        let resolver = Arc::new(Reloading {
            current: RwLock::new(Arc::new(files.load(&provider)?)),
        });
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("grpc.tls", e))?;
        let builder = if settings.client_ca_path.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(
                "grpc.tls.client_ca_path",
                Path::new(&settings.client_ca_path),
            )? {
                roots
                    .add(cert)
                    .map_err(|e| invalid("grpc.tls.client_ca_path", e))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| invalid("grpc.tls.client_ca_path", e))?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut config = builder.with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio::spawn(watch(
            files,
            resolver,
            provider,
            settings.reload_interval.as_duration(),
        ));
        Ok(Some(Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }))
    }

    /// The TLS side of an accepted connection, or `None` when the handshake failed or
    /// timed out (logged; the client sees the TLS alert).
    pub async fn accept(&self, tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.inner.accept(tcp)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                metrics::counter!("grpc_tls_handshake_failures_total").increment(1);
                tracing::debug!(error = %e, "TLS handshake refused");
                None
            }
            Err(_) => {
                metrics::counter!("grpc_tls_handshake_failures_total").increment(1);
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }
}

/// Hands every handshake the certificate loaded last.
#[derive(Debug)]
struct Reloading {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl CertFiles {
    fn load(&self, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
        let chain = read_certs("grpc.tls.cert_path", &self.cert)?;
        if chain.is_empty() {
            return Err(invalid("grpc.tls.cert_path", "no certificate in the file"));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::File {
            key: "grpc.tls.key_path",
            path: self.key.display().to_string(),
            reason: e.to_string(),
        })?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| invalid("grpc.tls.key_path", e))?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match().map_err(|e| {
            invalid(
                "grpc.tls.key_path",
                format!("does not match the certificate: {e}"),
            )
        })?;
        Ok(certified)
    }

    /// What changes when either file is replaced (the metadata of the file a symlink
    /// points to, as Kubernetes swaps a Secret's files).
    fn stamp(&self) -> Option<[(SystemTime, u64); 2]> {
        let one = |p: &Path| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        };
        Some([one(&self.cert)?, one(&self.key)?])
    }
}

/// Reloads the certificate when its files change; a bad new pair is logged and the old one
/// kept, so a half-written renewal never takes the listener down.
async fn watch(
    files: CertFiles,
    resolver: Arc<Reloading>,
    provider: Arc<CryptoProvider>,
    every: Duration,
) {
    let mut seen = files.stamp();
    loop {
        tokio::time::sleep(every).await;
        let now = files.stamp();
        if now.is_none() || now == seen {
            continue;
        }
        match files.load(&provider) {
            Ok(certified) => {
                *resolver.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
                seen = now;
                metrics::counter!("grpc_tls_reloads_total", "outcome" => "ok").increment(1);
                tracing::info!("TLS certificate reloaded");
            }
            Err(e) => {
                metrics::counter!("grpc_tls_reloads_total", "outcome" => "failed").increment(1);
                tracing::warn!(error = %e, "TLS certificate changed but did not load; keeping the old one");
            }
        }
    }
}

fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        key,
        path: path.display().to_string(),
        reason,
    };
    CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(e.to_string()))
}

fn invalid(key: &'static str, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid {
        key,
        reason: reason.to_string(),
    }
}
