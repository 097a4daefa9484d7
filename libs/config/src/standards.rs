//! The chain's service standards (SLA clocks, survey timing, escalation ladder, profile
//! fields required, KPI targets), set by head office for the chain and overridable per region
//! and per property. A property's effective standards are chain ← region ← property.

use crate::{ChainDirectory, ConfigError, Seconds};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Deserialize)]
pub struct Standards {
    pub default: ServiceStandards,
    #[serde(default)]
    pub regions: HashMap<String, StandardsOverride>,
    #[serde(default)]
    pub properties: HashMap<String, StandardsOverride>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServiceStandards {
    pub satisfaction_contact_within: Seconds,
    pub follow_up_after: Seconds,
    pub first_response_urgent: Seconds,
    pub first_response_normal: Seconds,
    pub resolution: Seconds,
    /// Share of a clock after which a warning goes out (0.8 = at 80 %).
    pub sla_warning_at: f64,
    /// Deadline of each escalation step: customer-service manager, department head, GM.
    pub escalation_steps: Vec<Seconds>,
    pub survey_min_interval: Seconds,
    pub repeat_complaint_window: Seconds,
    /// Guest fields a complete profile has, as field paths ("contacts.email").
    pub required_profile_fields: Vec<String>,
    pub targets: KpiTargets,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KpiTargets {
    pub closed_within_24h: f64,
    pub feedback_response_rate: f64,
    pub complaint_response_on_time: f64,
    pub csat: f64,
    pub csi: f64,
    pub nps: f64,
    pub profile_completeness: f64,
    pub emergency_response_minutes: f64,
    /// Share of OTA reviews given a public reply.
    pub ota_reply_rate: f64,
    /// Share of OTA replies posted by the site's deadline.
    pub ota_reply_within_deadline: f64,
}

/// A region's or property's changes to the chain default; absent fields inherit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StandardsOverride {
    pub satisfaction_contact_within: Option<Seconds>,
    pub follow_up_after: Option<Seconds>,
    pub first_response_urgent: Option<Seconds>,
    pub first_response_normal: Option<Seconds>,
    pub resolution: Option<Seconds>,
    pub sla_warning_at: Option<f64>,
    pub escalation_steps: Option<Vec<Seconds>>,
    pub survey_min_interval: Option<Seconds>,
    pub repeat_complaint_window: Option<Seconds>,
    pub required_profile_fields: Option<Vec<String>>,
    pub profile_completeness_target: Option<f64>,
    pub csat_target: Option<f64>,
}

/// Guest fields the completeness score may require.
pub const PROFILE_FIELDS: [&str; 10] = [
    "given_name",
    "family_name",
    "contacts.email",
    "contacts.phone",
    "contacts.wechat_id",
    "language",
    "birthday",
    "segment",
    "tier",
    "loyalty_number",
];

impl StandardsOverride {
    fn apply(&self, s: &mut ServiceStandards) {
        macro_rules! take {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { s.$f = v.clone(); } )* };
        }
        take!(
            satisfaction_contact_within,
            follow_up_after,
            first_response_urgent,
            first_response_normal,
            resolution,
            sla_warning_at,
            escalation_steps,
            survey_min_interval,
            repeat_complaint_window,
            required_profile_fields
        );
        if let Some(v) = self.profile_completeness_target {
            s.targets.profile_completeness = v;
        }
        if let Some(v) = self.csat_target {
            s.targets.csat = v;
        }
    }
}

impl Standards {
    /// The effective standards at a property: chain default, then its region's, then its own.
    pub fn for_property(&self, chain: &ChainDirectory, property_id: &str) -> ServiceStandards {
        let mut s = self.default.clone();
        if let Some(region) = chain.property(property_id).map(|p| p.region.as_str())
            && let Some(o) = self.regions.get(region)
        {
            o.apply(&mut s);
        }
        if let Some(o) = self.properties.get(property_id) {
            o.apply(&mut s);
        }
        s
    }

    /// The effective standards of a region: chain default, then the region's changes.
    pub fn for_region(&self, region_id: &str) -> ServiceStandards {
        let mut s = self.default.clone();
        if let Some(o) = self.regions.get(region_id) {
            o.apply(&mut s);
        }
        s
    }

    pub(crate) fn validate(&self, chain: &ChainDirectory) -> Result<(), ConfigError> {
        check_standards("standards.default", &self.default)?;
        for (id, o) in &self.regions {
            if chain.region(id).is_none() {
                return Err(ConfigError::invalid(
                    format!("standards.regions.{id}"),
                    "is not a region in chain.regions",
                ));
            }
            let mut s = self.default.clone();
            o.apply(&mut s);
            check_standards(&format!("standards.regions.{id}"), &s)?;
        }
        for (id, o) in &self.properties {
            if chain.property(id).is_none() {
                return Err(ConfigError::invalid(
                    format!("standards.properties.{id}"),
                    "is not a property in chain.properties",
                ));
            }
            let mut s = self.default.clone();
            o.apply(&mut s);
            check_standards(&format!("standards.properties.{id}"), &s)?;
        }
        Ok(())
    }
}

fn check_standards(prefix: &str, s: &ServiceStandards) -> Result<(), ConfigError> {
    let key = |f: &str| format!("{prefix}.{f}");
    for (name, d) in [
        ("satisfaction_contact_within", s.satisfaction_contact_within),
        ("follow_up_after", s.follow_up_after),
        ("first_response_urgent", s.first_response_urgent),
        ("first_response_normal", s.first_response_normal),
        ("resolution", s.resolution),
    ] {
        if d.is_zero() {
            return Err(ConfigError::invalid(key(name), "must be positive"));
        }
    }
    if !(0.0..1.0).contains(&s.sla_warning_at) || s.sla_warning_at == 0.0 {
        return Err(ConfigError::invalid(
            key("sla_warning_at"),
            "must be between 0 and 1",
        ));
    }
    if s.escalation_steps.len() != 3 {
        return Err(ConfigError::invalid(
            key("escalation_steps"),
            "needs three deadlines: customer-service manager, department head, general manager",
        ));
    }
    for f in &s.required_profile_fields {
        if !PROFILE_FIELDS.contains(&f.as_str()) {
            return Err(ConfigError::invalid(
                key("required_profile_fields"),
                format!("`{f}` is not one of {PROFILE_FIELDS:?}"),
            ));
        }
    }
    for (name, v) in [
        (
            "targets.profile_completeness",
            s.targets.profile_completeness,
        ),
        ("targets.csat", s.targets.csat),
        ("targets.closed_within_24h", s.targets.closed_within_24h),
        ("targets.ota_reply_rate", s.targets.ota_reply_rate),
        (
            "targets.ota_reply_within_deadline",
            s.targets.ota_reply_within_deadline,
        ),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(ConfigError::invalid(
                key(name),
                "must be a share between 0 and 1",
            ));
        }
    }
    Ok(())
}
