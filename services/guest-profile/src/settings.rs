//! guest-profile's settings: the common ones, with this service's defaults.

use guestloop_config::{CommonSettings, ConfigError, Seconds, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Group commit of the access log: reads waiting for one commit at once.
    #[serde(default)]
    pub access_log: guestloop_db::batch::BatchSettings,
    pub erasure: ErasureSettings,
    pub leak: LeakSettings,
}

/// The unusual-volume detector of contact reads (leak_watch.rs).
#[derive(Debug, Clone, Deserialize)]
pub struct LeakSettings {
    /// The sliding window reads are counted over.
    pub window: Seconds,
    /// More contact reads than this by one reader (not a service) in one window raise an
    /// alert.
    pub reads_per_window: i64,
    pub check_interval: Seconds,
}

/// How erasures are followed to completion (erasure_tracker.rs).
#[derive(Debug, Clone, Deserialize)]
pub struct ErasureSettings {
    /// A service that has not confirmed an erasure this long after the request is marked
    /// failed, and the GuestloopErasureOverdue alert fires.
    pub confirm_within: Seconds,
    /// How often the services are asked about open erasures.
    pub check_interval: Seconds,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.erasure.check_interval.is_zero() {
            return Err(ConfigError::invalid(
                "erasure.check_interval",
                "must be positive",
            ));
        }
        if self.leak.window.is_zero() || self.leak.check_interval.is_zero() {
            return Err(ConfigError::invalid(
                "leak.window",
                "window and check_interval must be positive",
            ));
        }
        if self.leak.reads_per_window < 1 {
            return Err(ConfigError::invalid(
                "leak.reads_per_window",
                "must be at least 1",
            ));
        }
        if self.erasure.confirm_within.is_zero() {
            return Err(ConfigError::invalid(
                "erasure.confirm_within",
                "must be positive",
            ));
        }
        self.common.validate()
    }
}

/// This service's defaults, layered over the common ones.
pub const SERVICE_DEFAULTS: &str = r#"
[grpc]
listen_addr = "127.0.0.1:50051"
[admin]
listen_addr = "127.0.0.1:9101"
[database]
schema = "guest_profile"
# One worker puts every read that queued during the last statement into the next one;
# two split them into two statements and two commits. guestloop-bench P1 (A/B/A/B):
# 28.6 / 29.4 % with 2, 33.9 / 31.9 % with 1; PostgreSQL 21 -> 13-14 us per read. Past 8
# waiting, a batch takes half of them, as feedback-intake's batch_write does (P1 at c64:
# 17 reads a batch instead of 33, 20.2 -> 21.1 %, within noise).
[access_log]
workers = 1
max_batch = 64
split_above = 8
queue = 4096
[erasure]
confirm_within = "1h"
check_interval = "10s"
[leak]
window = "1h"
reads_per_window = 200
check_interval = "1m"
"#;

pub fn default_layers() -> [&'static str; 2] {
    [guestloop_config::COMMON_DEFAULTS, SERVICE_DEFAULTS]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
