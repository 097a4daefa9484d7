//! metrics' settings: the common ones, how KPIs are judged (`[kpis]`), the business
//! gauges and the KPI alerts (`[kpi_alerts]`).

use guestloop_config::{CommonSettings, ConfigError, Seconds, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub kpis: KpiSettings,
    pub kpi_alerts: AlertSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct KpiSettings {
    /// Below this sample a rate or mean is shown but not judged against its target.
    pub min_sample: i64,
    /// Of the confidence intervals: 0.90, 0.95 or 0.99.
    pub confidence_level: f64,
    /// How often the business gauges on /metrics are recomputed from the rollups.
    pub gauge_interval: Seconds,
    /// The window of the business gauges, in days up to today.
    pub gauge_window_days: i64,
    /// How often the chain's and regions' queued additions are folded into their own sums
    /// (store/scopes.rs); answers are exact either way, the fold only keeps the queue short.
    pub scope_fold_interval: Seconds,
}

/// KPI alerts: each rule is judged over its rolling window per property.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertSettings {
    pub enabled: bool,
    pub interval: Seconds,
    pub rules: Vec<AlertRule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertRule {
    /// A KPI name as in the proto without the prefix, lower case: "csat", "sla_compliance_rate".
    pub kpi: String,
    pub window_days: i64,
}

impl KpiSettings {
    pub fn z(&self) -> f64 {
        if self.confidence_level >= 0.99 {
            2.575_829_303_548_901
        } else if self.confidence_level >= 0.95 {
            crate::kpi::stats::Z95
        } else {
            1.644_853_626_951_472_2
        }
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        if self.kpis.min_sample < 1 {
            return Err(ConfigError::invalid(
                "kpis.min_sample",
                "must be at least 1",
            ));
        }
        if ![0.90, 0.95, 0.99].contains(&self.kpis.confidence_level) {
            return Err(ConfigError::invalid(
                "kpis.confidence_level",
                "must be 0.90, 0.95 or 0.99",
            ));
        }
        if !(1..=90).contains(&self.kpis.gauge_window_days) {
            return Err(ConfigError::invalid(
                "kpis.gauge_window_days",
                "must be 1-90",
            ));
        }
        for (i, r) in self.kpi_alerts.rules.iter().enumerate() {
            if crate::kpi::by_name(&r.kpi).is_none() {
                return Err(ConfigError::invalid(
                    format!("kpi_alerts.rules[{i}].kpi"),
                    format!("`{}` is not a KPI", r.kpi),
                ));
            }
            if !(1..=90).contains(&r.window_days) {
                return Err(ConfigError::invalid(
                    format!("kpi_alerts.rules[{i}].window_days"),
                    "must be 1-90",
                ));
            }
        }
        Ok(())
    }
}

/// This service's defaults, layered over the common ones.
pub const SERVICE_DEFAULTS: &str = r#"
[grpc]
listen_addr = "127.0.0.1:50055"
[admin]
listen_addr = "127.0.0.1:9105"
[database]
schema = "metrics"

[kpis]
min_sample = 30
confidence_level = 0.95
gauge_interval = "60s"
gauge_window_days = 7
scope_fold_interval = "1s"

[kpi_alerts]
enabled = true
interval = "60s"
rules = [
  { kpi = "csat", window_days = 7 },
  { kpi = "sla_compliance_rate", window_days = 7 },
]
"#;

pub fn default_layers() -> [&'static str; 2] {
    [guestloop_config::COMMON_DEFAULTS, SERVICE_DEFAULTS]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
