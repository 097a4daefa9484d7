//! Layered configuration for every Guestloop service: built-in defaults, then an optional
//! file (`GUESTLOOP_CONFIG` or `--config`), then `GUESTLOOP__SECTION__KEY` environment
//! variables. Values are checked at start-up; a bad or missing value stops the process with
//! one line naming the key.

mod chain;
mod duration;
mod retention;
mod standards;

pub use chain::{ChainDirectory, LocalTimeRange, Property, Region, TIERS, hh_mm};
pub use duration::Seconds;
pub use retention::{RetentionOverride, RetentionPeriods, RetentionSettings};
pub use standards::{KpiTargets, ServiceStandards, Standards, StandardsOverride};

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Why configuration could not be loaded. `Display` is the one line an operator sees.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0}")]
    Load(String),
    #[error("configuration error: `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Settings that check themselves after loading.
pub trait Validate {
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads `T` from `defaults` (TOML layers, later ones win), the optional file, and the
/// environment, then validates.
pub fn load<T: DeserializeOwned + Validate>(
    defaults: &[&str],
    file: Option<&std::path::Path>,
) -> Result<T, ConfigError> {
    load_from_env(defaults, file, std::env::vars())
}

/// A service's settings from `defaults` alone, with a placeholder database URL and key path:
/// for code that reaches no database and checks no token (the parsers under fuzzing, whose
/// property tests and cargo-fuzz targets need the chain and the limits, nothing else).
pub fn load_offline<T: DeserializeOwned + Validate>(defaults: &[&str]) -> Result<T, ConfigError> {
    load_from_env(
        defaults,
        None,
        [
            ("GUESTLOOP__DATABASE__URL", "postgres://unused"),
            ("GUESTLOOP__AUTH__PUBLIC_KEY_PATH", "unused.pem"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

/// As [`load`], with the environment given explicitly (tests).
pub fn load_from_env<T: DeserializeOwned + Validate>(
    defaults: &[&str],
    file: Option<&std::path::Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let env: std::collections::HashMap<String, String> = env.into_iter().collect();
    let file = file
        .map(std::path::Path::to_path_buf)
        .or_else(|| env.get("GUESTLOOP_CONFIG").map(Into::into));
    let mut builder = config::Config::builder();
    for layer in defaults {
        builder = builder.add_source(config::File::from_str(layer, config::FileFormat::Toml));
    }
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::invalid(
                "GUESTLOOP_CONFIG",
                format!("file {} does not exist", path.display()),
            ));
        }
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    let env_source = config::Environment::with_prefix("GUESTLOOP")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("outbox.subscribers")
        .with_list_parse_key("auth.previous_public_key_paths")
        .source(Some(env.into_iter().collect()));
    let cfg = builder
        .add_source(env_source)
        .build()
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    let settings: T = cfg
        .try_deserialize()
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    settings.validate()?;
    Ok(settings)
}

/// The gRPC listener and its limits.
#[derive(Debug, Clone, Deserialize)]
pub struct GrpcSettings {
    pub listen_addr: String,
    /// Upper bound for any one call; a shorter client deadline wins.
    pub request_timeout: Seconds,
    /// The limit for the calls a service marks long-running (bulk imports); a client
    /// deadline still wins.
    pub long_request_timeout: Seconds,
    /// Calls in flight before new ones are shed with RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    pub max_message_bytes: usize,
    /// How long in-flight calls may take to finish after SIGTERM.
    pub shutdown_grace: Seconds,
    /// After SIGTERM, how long the process reports NOT_SERVING but still accepts and serves
    /// calls before it stops listening: the time Kubernetes needs to take the pod out of its
    /// endpoints, so no client is sent to a closed port. Replaces a preStop `sleep` (and
    /// the shell it needs). 0 locally and in tests.
    pub drain_delay: Seconds,
    /// TCP_NODELAY on accepted connections. Without it a small reply can wait for the
    /// peer's delayed ACK (measured: ~20 ms a call at 2 calls per connection).
    pub tcp_nodelay: bool,
    /// Streams one HTTP/2 connection may have open; 0 leaves it to the HTTP/2 default.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2 flow-control windows sized by measured bandwidth-delay (large imports).
    pub http2_adaptive_window: bool,
    /// TLS on the listener; plaintext when no certificate is named.
    #[serde(default)]
    pub tls: TlsSettings,
}

/// TLS on the gRPC listener. Paths to PEM files; the certificate and key are re-read when
/// they change, so a renewal needs no restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, leaf first. Empty: the listener is plaintext.
    pub cert_path: String,
    pub key_path: String,
    /// CA certificates that sign the property systems' client certificates. When set, every
    /// client must present one (mutual TLS).
    pub client_ca_path: String,
    /// How often the certificate and key files are checked for a change.
    pub reload_interval: Seconds,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            cert_path: String::new(),
            key_path: String::new(),
            client_ca_path: String::new(),
            reload_interval: Seconds(std::time::Duration::from_secs(10)),
        }
    }
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        !self.cert_path.is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.cert_path.is_empty() != self.key_path.is_empty() {
            return Err(ConfigError::invalid(
                "grpc.tls",
                "cert_path and key_path go together: set both or neither",
            ));
        }
        if !self.enabled() && !self.client_ca_path.is_empty() {
            return Err(ConfigError::invalid(
                "grpc.tls.client_ca_path",
                "mutual TLS needs the listener's own cert_path and key_path",
            ));
        }
        if self.reload_interval.is_zero() {
            return Err(ConfigError::invalid(
                "grpc.tls.reload_interval",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// The admin HTTP listener (Prometheus `/metrics`).
#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    pub listen_addr: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// The service's own schema; the pool's search_path.
    pub schema: String,
    pub max_connections: u32,
    pub migrate_on_start: bool,
    pub acquire_timeout: Seconds,
    /// A pooled connection idle this long is tested before use; 0 tests every checkout.
    pub ping_idle_after: Seconds,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// Ed25519 public key (SPKI PEM) that tokens are signed with.
    pub public_key_path: String,
    /// Public keys still accepted while a key rotation is under way (tokens name their key
    /// by `kid`); empty once every token signed by them has expired.
    #[serde(default)]
    pub previous_public_key_paths: Vec<String>,
    /// Ed25519 private key (PKCS#8 PEM) used to mint this service's own service tokens.
    #[serde(default)]
    pub signing_key_path: Option<String>,
    pub issuer: String,
    /// The `aud` every token must carry (and service tokens are minted with).
    pub audience: String,
    /// Calls a second one caller (token subject) may make on average; 0 = no limit.
    /// Platform services calling each other are exempt.
    #[serde(default)]
    pub per_caller_rate: f64,
    /// The burst a caller may make at once; 0 = twice the rate.
    #[serde(default)]
    pub per_caller_burst: u32,
}

/// Where the other services listen, for calls and event delivery.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Peers {
    pub guest_profile: Option<String>,
    pub feedback_intake: Option<String>,
    pub follow_up_scheduler: Option<String>,
    pub notification: Option<String>,
    pub metrics: Option<String>,
}

impl Peers {
    /// The endpoint of a peer by its config name, e.g. `follow_up_scheduler`.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "guest_profile" => self.guest_profile.as_deref(),
            "feedback_intake" => self.feedback_intake.as_deref(),
            "follow_up_scheduler" => self.follow_up_scheduler.as_deref(),
            "notification" => self.notification.as_deref(),
            "metrics" => self.metrics.as_deref(),
            _ => None,
        }
    }
}

/// The outbox relay: which peers receive this service's events, and how fast.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    /// Peer names (see [`Peers`]) that subscribe to this service's events.
    #[serde(default)]
    pub subscribers: Vec<String>,
    pub poll_interval: Seconds,
    pub batch_size: u32,
    pub max_backoff: Seconds,
}

/// The settings every service shares; each service nests these in its own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonSettings {
    pub grpc: GrpcSettings,
    pub admin: AdminSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    #[serde(default)]
    pub peers: Peers,
    pub outbox: OutboxSettings,
    pub chain: ChainDirectory,
    pub standards: Standards,
    pub retention: RetentionSettings,
}

/// Defaults every service starts from; a service appends its own TOML after these.
pub const COMMON_DEFAULTS: &str = include_str!("defaults.toml");

impl Validate for CommonSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        check_addr("grpc.listen_addr", &self.grpc.listen_addr)?;
        check_addr("admin.listen_addr", &self.admin.listen_addr)?;
        self.grpc.tls.validate()?;
        if self.grpc.concurrency_limit == 0 {
            return Err(ConfigError::invalid(
                "grpc.concurrency_limit",
                "must be at least 1",
            ));
        }
        if self.grpc.request_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "grpc.request_timeout",
                "must be positive",
            ));
        }
        if self.database.url.trim().is_empty() {
            return Err(ConfigError::invalid("database.url", "is required"));
        }
        if !self.database.url.starts_with("postgres://")
            && !self.database.url.starts_with("postgresql://")
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must be a postgres:// URL",
            ));
        }
        if !self
            .database
            .schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_')
            || self.database.schema.is_empty()
        {
            return Err(ConfigError::invalid(
                "database.schema",
                "must be lower-case letters and _",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.auth.public_key_path.trim().is_empty() {
            return Err(ConfigError::invalid("auth.public_key_path", "is required"));
        }
        if self.auth.audience.trim().is_empty() {
            return Err(ConfigError::invalid("auth.audience", "is required"));
        }
        for (i, name) in self.outbox.subscribers.iter().enumerate() {
            if self.peers.get(name).is_none() {
                return Err(ConfigError::invalid(
                    format!("outbox.subscribers[{i}]"),
                    format!("`{name}` has no endpoint under peers.{name}"),
                ));
            }
        }
        if self.outbox.batch_size == 0 {
            return Err(ConfigError::invalid(
                "outbox.batch_size",
                "must be at least 1",
            ));
        }
        self.chain.validate()?;
        self.standards.validate(&self.chain)?;
        self.retention.validate(&self.chain)?;
        Ok(())
    }
}

fn check_addr(key: &str, value: &str) -> Result<(), ConfigError> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| ConfigError::invalid(key, format!("`{value}` is not host:port")))
}

#[cfg(test)]
mod tests;
