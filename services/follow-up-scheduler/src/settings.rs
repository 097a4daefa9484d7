//! follow-up-scheduler's settings: the common ones and the timer worker (`[timers]`).

use guestloop_config::{CommonSettings, ConfigError, Seconds, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub timers: TimerSettings,
}

/// The firing worker: how often it looks for due timers, how long a claim holds.
#[derive(Debug, Clone, Deserialize)]
pub struct TimerSettings {
    /// Run the worker in this process (every replica may; claims never overlap).
    pub worker_enabled: bool,
    pub poll_interval: Seconds,
    pub batch_size: i64,
    /// How long a claim holds; a replica that dies mid-job loses it after this.
    pub lease: Seconds,
    /// A timer's late_threshold when its request gives none: fired later than this after
    /// its due time, its late policy applies.
    pub default_late_threshold: Seconds,
    /// A call made by an action (notification's SendMessage) that takes longer fails and
    /// is retried.
    pub action_timeout: Seconds,
    /// Failed action attempts before the timer is FAILED.
    pub max_attempts: i32,
    /// Wait before a failed action is tried again.
    pub retry_delay: Seconds,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        let t = &self.timers;
        if t.batch_size < 1 {
            return Err(ConfigError::invalid(
                "timers.batch_size",
                "must be at least 1",
            ));
        }
        if t.max_attempts < 1 {
            return Err(ConfigError::invalid(
                "timers.max_attempts",
                "must be at least 1",
            ));
        }
        if t.poll_interval.is_zero() || t.lease.is_zero() || t.retry_delay.is_zero() {
            return Err(ConfigError::invalid(
                "timers.lease",
                "lease, poll_interval and retry_delay must be positive",
            ));
        }
        if t.lease.as_duration() <= t.action_timeout.as_duration() * 2 {
            return Err(ConfigError::invalid(
                "timers.lease",
                "must be more than twice timers.action_timeout",
            ));
        }
        Ok(())
    }
}

/// This service's defaults, layered over the common ones.
pub const SERVICE_DEFAULTS: &str = r#"
[grpc]
listen_addr = "127.0.0.1:50053"
[admin]
listen_addr = "127.0.0.1:9103"
[database]
schema = "followup"

[timers]
worker_enabled = true
poll_interval = "1s"
batch_size = 50
lease = "60s"
default_late_threshold = "5m"
action_timeout = "15s"
max_attempts = 10
retry_delay = "30s"
"#;

pub fn default_layers() -> [&'static str; 2] {
    [guestloop_config::COMMON_DEFAULTS, SERVICE_DEFAULTS]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
