//! metrics' settings: the common ones, how KPIs are judged (`[kpis]`), the business
//! gauges, the KPI alerts (`[kpi_alerts]`), the mailed daily report (`[daily_report]`) and
//! the improvement board (`[improvement]`).

use guestloop_config::{CommonSettings, ConfigError, Seconds, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub kpis: KpiSettings,
    pub kpi_alerts: AlertSettings,
    pub daily_report: DailyReportSettings,
    pub improvement: ImprovementSettings,
}

/// `[improvement]`: the improvement board (improvement/).
#[derive(Debug, Clone, Deserialize)]
pub struct ImprovementSettings {
    /// Whether the platform proposes items.
    pub propose: bool,
    pub propose_interval: Seconds,
    /// A category is proposed at a property when its complaints per 100 checked-out stays,
    /// over the `window_days` ending on each of the last `sustained_days` local days, were
    /// above this on every one of them (each window with at least the KPIs' minimum sample
    /// of stays).
    pub threshold_per_100_stays: f64,
    /// A category is proposed at a property, too, when the share of its cases that were
    /// repeats (same guest, same category again: CaseFacts.repeat), over the same windows,
    /// was above this on every one of them (each window with at least the KPIs' minimum
    /// sample of cases). Default 0.3: repeats should fall, and three in ten is a pattern.
    pub repeat_threshold: f64,
    pub window_days: i64,
    pub sustained_days: i64,
    /// The baseline: the rate over this many local days before the item opened.
    pub baseline_days: i64,
    /// The default target: the baseline less this share of it (0.5: halve it).
    pub target_reduction: f64,
    /// How often items whose overdue timer is not yet in step with the scheduler are retried.
    pub timer_sync_interval: Seconds,
}

/// `[daily_report]`: the voice-of-customer report e-mailed each morning (report/mailer.rs).
#[derive(Debug, Clone, Deserialize)]
pub struct DailyReportSettings {
    pub enabled: bool,
    /// The recipient's local hour (their property's zone) from which yesterday's report
    /// goes out, 0-23.
    pub local_hour: u32,
    /// How often due reports are looked for and unsent ones retried.
    pub interval: Seconds,
    /// Top issues in the mailed report, 1-50.
    pub top_issues: usize,
    /// A report notification has not accepted is retried for this many days after its day,
    /// then left (its row keeps the last refusal); rows older than `keep_days` go.
    pub retry_days: i64,
    pub keep_days: i64,
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
        let d = &self.daily_report;
        if d.local_hour > 23 {
            return Err(ConfigError::invalid(
                "daily_report.local_hour",
                "must be 0-23",
            ));
        }
        if !(1..=50).contains(&d.top_issues) {
            return Err(ConfigError::invalid(
                "daily_report.top_issues",
                "must be 1-50",
            ));
        }
        if d.interval.is_zero() {
            return Err(ConfigError::invalid(
                "daily_report.interval",
                "must be positive",
            ));
        }
        if d.retry_days < 1 || d.keep_days < d.retry_days {
            return Err(ConfigError::invalid(
                "daily_report.keep_days",
                "retry_days must be at least 1 and keep_days at least retry_days",
            ));
        }
        let i = &self.improvement;
        if i.threshold_per_100_stays.is_nan() || i.threshold_per_100_stays < 0.0 {
            return Err(ConfigError::invalid(
                "improvement.threshold_per_100_stays",
                "must be a number >= 0",
            ));
        }
        if !(0.0..1.0).contains(&i.repeat_threshold) {
            return Err(ConfigError::invalid(
                "improvement.repeat_threshold",
                "must be a share of cases, at least 0 and below 1",
            ));
        }
        for (key, v) in [
            ("improvement.window_days", i.window_days),
            ("improvement.sustained_days", i.sustained_days),
            ("improvement.baseline_days", i.baseline_days),
        ] {
            if !(1..=90).contains(&v) {
                return Err(ConfigError::invalid(key, "must be 1-90"));
            }
        }
        if !(0.0..1.0).contains(&i.target_reduction) {
            return Err(ConfigError::invalid(
                "improvement.target_reduction",
                "must be at least 0 and below 1",
            ));
        }
        if i.propose_interval.is_zero() || i.timer_sync_interval.is_zero() {
            return Err(ConfigError::invalid(
                "improvement.propose_interval",
                "propose_interval and timer_sync_interval must be positive",
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

[daily_report]
enabled = true
local_hour = 7
interval = "60s"
top_issues = 5
retry_days = 2
keep_days = 90

[improvement]
propose = true
propose_interval = "1h"
threshold_per_100_stays = 2.0
repeat_threshold = 0.3
window_days = 7
sustained_days = 5
baseline_days = 28
target_reduction = 0.5
timer_sync_interval = "5s"
"#;

pub fn default_layers() -> [&'static str; 2] {
    [guestloop_config::COMMON_DEFAULTS, SERVICE_DEFAULTS]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
