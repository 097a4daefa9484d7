//! notification's settings: the common ones, templates (`[templates]`, a built-in layer the
//! service's file may override), delivery (worker, retries, channel order), channel windows
//! (`[channels]`: WeChat's free-form window), providers and the staff directory.

use crate::templates::{TemplateSettings, Templates};
use guestloop_config::{CommonSettings, ConfigError, Seconds, Validate};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub templates: TemplateSettings,
    pub delivery: DeliverySettings,
    pub channels: ChannelSettings,
    #[serde(default)]
    pub providers: ProviderSettings,
    /// The staff directory: who holds which role at which property, and where alerts go.
    #[serde(default)]
    pub staff: Vec<StaffMember>,
}

fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Seconds, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }
    match Raw::deserialize(d)? {
        Raw::Text(t) => Seconds::parse(&t).map_err(serde::de::Error::custom),
        Raw::Number(n) if n >= 0.0 => Ok(Seconds(std::time::Duration::from_secs_f64(n))),
        Raw::Number(_) => Err(serde::de::Error::custom("durations must not be negative")),
    }
}

/// The delivery worker: how often it looks for due messages, how it retries.
#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    /// Run the worker in this process (every replica may; claims never overlap).
    pub worker_enabled: bool,
    #[serde(deserialize_with = "seconds")]
    pub poll_interval: Seconds,
    pub batch_size: i64,
    /// How long a claim holds; a replica that dies mid-send loses it after this.
    #[serde(deserialize_with = "seconds")]
    pub lease: Seconds,
    /// Attempts (rate-limited ones excluded) before a message is dead-lettered.
    pub max_attempts: i32,
    #[serde(deserialize_with = "seconds")]
    pub backoff_base: Seconds,
    #[serde(deserialize_with = "seconds")]
    pub backoff_max: Seconds,
    /// A provider call that takes longer is a TIMEOUT (retried).
    #[serde(deserialize_with = "seconds")]
    pub send_timeout: Seconds,
    /// Guest channels tried in order when a message gives none.
    pub guest_channels: Vec<String>,
}

/// Channel windows. WeChat lets an official account send a free-form (customer-service)
/// message only within a window after the guest's last interaction; outside it only a
/// template message goes.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelSettings {
    /// How long after the guest's last WeChat interaction free-form messages may go.
    #[serde(deserialize_with = "seconds")]
    pub wechat_window: Seconds,
    /// Guest message kinds (snake case, e.g. "complaint_acknowledgement") sent free-form
    /// inside the window when a `wechat_mode = "free_form"` provider is configured; outside
    /// the window they go as template messages with `fallback_used`.
    pub wechat_free_form_kinds: Vec<String>,
}

/// How an HTTP provider on the WeChat channel sends: template messages (any time) or
/// free-form customer-service messages (inside the window only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WechatMode {
    #[default]
    Template,
    FreeForm,
}

impl WechatMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WechatMode::Template => "template",
            WechatMode::FreeForm => "free_form",
        }
    }
}

/// Providers by channel. A channel without a provider is skipped when choosing one.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProviderSettings {
    pub smtp: Option<SmtpSettings>,
    /// HTTP providers by name (e.g. "sms-gateway", "wechat-template", "app-push").
    #[serde(default)]
    pub http: BTreeMap<String, HttpProviderSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    /// STARTTLS required; off only for a local relay or a test sink.
    #[serde(default)]
    pub starttls: bool,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// Messages per second (token bucket); 0 = unlimited.
    #[serde(default)]
    pub rate_per_second: f64,
    #[serde(default = "default_burst")]
    pub burst: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpProviderSettings {
    /// "sms", "wechat" or "app_push".
    pub channel: String,
    pub url: String,
    #[serde(default)]
    pub auth_header: String,
    #[serde(default)]
    pub auth_value: String,
    /// The header that carries the message id on every attempt, so a provider that took a
    /// request whose answer was lost (a timeout, a dropped connection) sees the retry as
    /// the same message, not a second one. Most providers call it `Idempotency-Key`.
    #[serde(default = "default_idempotency_header")]
    pub idempotency_header: String,
    /// The JSON body with `{{to}}`, `{{subject}}`, `{{body}}`, `{{template_id}}`,
    /// `{{message_id}}`, `{{wechat_mode}}` placeholders (values are JSON-escaped;
    /// `wechat_mode` is "template" or "free_form" on the WeChat channel, else empty).
    pub payload: String,
    /// WeChat only: "template" (the default) or "free_form" (customer-service messages
    /// inside `channels.wechat_window`).
    #[serde(default)]
    pub wechat_mode: WechatMode,
    #[serde(default)]
    pub rate_per_second: f64,
    #[serde(default = "default_burst")]
    pub burst: f64,
}

fn default_burst() -> f64 {
    10.0
}

fn default_idempotency_header() -> String {
    "Idempotency-Key".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaffMember {
    pub staff_id: String,
    pub name: String,
    pub property_id: String,
    /// snake case StaffRole without prefix, e.g. "duty_manager".
    pub roles: Vec<String>,
    /// Work email, where alerts go.
    pub email: String,
    #[serde(default)]
    pub language: String,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        Templates::load(&self.templates).map_err(|(key, why)| ConfigError::invalid(key, why))?;
        let d = &self.delivery;
        if d.max_attempts < 1 {
            return Err(ConfigError::invalid(
                "delivery.max_attempts",
                "must be at least 1",
            ));
        }
        if d.batch_size < 1 {
            return Err(ConfigError::invalid(
                "delivery.batch_size",
                "must be at least 1",
            ));
        }
        if d.backoff_base.is_zero() || d.lease.is_zero() || d.poll_interval.is_zero() {
            return Err(ConfigError::invalid(
                "delivery.backoff_base",
                "backoff_base, lease and poll_interval must be positive",
            ));
        }
        if d.lease.as_duration() <= d.send_timeout.as_duration() * 3 {
            return Err(ConfigError::invalid(
                "delivery.lease",
                "must be more than three times delivery.send_timeout",
            ));
        }
        for c in &d.guest_channels {
            if crate::templates::parse_channel(c).is_none() {
                return Err(ConfigError::invalid(
                    "delivery.guest_channels",
                    format!("`{c}` is not a channel"),
                ));
            }
        }
        if self.channels.wechat_window.is_zero() {
            return Err(ConfigError::invalid(
                "channels.wechat_window",
                "must be positive",
            ));
        }
        for k in &self.channels.wechat_free_form_kinds {
            if crate::templates::parse_kind(k).is_none_or(|k| (k as i32) >= 20) {
                return Err(ConfigError::invalid(
                    "channels.wechat_free_form_kinds",
                    format!("`{k}` is not a guest message kind"),
                ));
            }
        }
        let free_form: Vec<&String> = self
            .providers
            .http
            .iter()
            .filter(|(_, p)| p.wechat_mode == WechatMode::FreeForm)
            .map(|(name, _)| name)
            .collect();
        if free_form.len() > 1 {
            return Err(ConfigError::invalid(
                format!("providers.http.{}.wechat_mode", free_form[1]),
                "only one provider may be the WeChat free-form provider",
            ));
        }
        for (name, p) in &self.providers.http {
            if p.wechat_mode == WechatMode::FreeForm && p.channel != "wechat" {
                return Err(ConfigError::invalid(
                    format!("providers.http.{name}.wechat_mode"),
                    "free_form is for the wechat channel only",
                ));
            }
            if !matches!(p.channel.as_str(), "sms" | "wechat" | "app_push") {
                return Err(ConfigError::invalid(
                    format!("providers.http.{name}.channel"),
                    "must be sms, wechat or app_push",
                ));
            }
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    format!("providers.http.{name}.url"),
                    "must be an http(s) URL",
                ));
            }
            if reqwest::header::HeaderName::from_bytes(p.idempotency_header.as_bytes()).is_err() {
                return Err(ConfigError::invalid(
                    format!("providers.http.{name}.idempotency_header"),
                    "must be an HTTP header name",
                ));
            }
        }
        for (i, s) in self.staff.iter().enumerate() {
            if self.common.chain.property(&s.property_id).is_none() {
                return Err(ConfigError::invalid(
                    format!("staff[{i}].property_id"),
                    format!("`{}` is not a property of the chain", s.property_id),
                ));
            }
            for r in &s.roles {
                if crate::domain::parse_role(r).is_none() {
                    return Err(ConfigError::invalid(
                        format!("staff[{i}].roles"),
                        format!("`{r}` is not a staff role"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// This service's defaults, layered over the common ones.
pub const SERVICE_DEFAULTS: &str = r#"
[grpc]
listen_addr = "127.0.0.1:50054"
[admin]
listen_addr = "127.0.0.1:9104"
[database]
schema = "notification"

[delivery]
worker_enabled = true
poll_interval = "1s"
batch_size = 20
lease = "60s"
max_attempts = 8
backoff_base = "30s"
backoff_max = "1h"
send_timeout = "15s"
guest_channels = ["email", "wechat", "sms", "app_push"]

[channels]
wechat_window = "48h"
wechat_free_form_kinds = ["complaint_acknowledgement", "complaint_resolved",
                          "post_stay_follow_up", "satisfaction_survey", "survey_reminder"]
"#;

pub fn default_layers() -> [&'static str; 3] {
    [
        guestloop_config::COMMON_DEFAULTS,
        SERVICE_DEFAULTS,
        crate::templates::DEFAULT_TEMPLATES_TOML,
    ]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
