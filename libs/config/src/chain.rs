//! The chain directory: regions and properties with their time zone, default language,
//! quiet hours and working hours, and which guest tiers the chain treats as VIP. Shared by
//! every service; head office edits it.

use crate::ConfigError;
use chrono::NaiveTime;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
pub struct ChainDirectory {
    pub name: String,
    #[serde(default)]
    pub regions: Vec<Region>,
    #[serde(default)]
    pub properties: Vec<Property>,
    /// The guest tiers (guestprofile.v1.Tier names) the chain treats as VIP, the same
    /// everywhere: a complaint's risk grade, pre-arrival care, the duty manager's
    /// after-stay call, the VIP return rate.
    #[serde(default = "default_vip_tiers", deserialize_with = "tier_numbers")]
    pub vip_tiers: Vec<i32>,
}

/// guestprofile.v1.Tier's names and numbers (libs/proto's tests hold the two equal).
pub const TIERS: [(&str, i32); 5] = [
    ("TIER_POTENTIAL", 1),
    ("TIER_REGULAR", 2),
    ("TIER_VIP_SILVER", 3),
    ("TIER_VIP_GOLD", 4),
    ("TIER_VIP_PLATINUM", 5),
];

fn default_vip_tiers() -> Vec<i32> {
    vec![3, 4, 5]
}

/// Tier names to their numbers; an unknown name is an error naming it.
fn tier_numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|name| {
            TIERS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let names: Vec<&str> = TIERS.iter().map(|(n, _)| *n).collect();
                    serde::de::Error::custom(format!(
                        "chain.vip_tiers: `{name}` is not a guest tier (one of {names:?})"
                    ))
                })
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize)]
pub struct Region {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Property {
    pub id: String,
    pub name: String,
    pub region: String,
    /// IANA name, e.g. "Asia/Shanghai".
    pub time_zone: String,
    pub default_language: String,
    /// Local times when guests are not contacted unless urgent.
    #[serde(default = "default_quiet_hours")]
    pub quiet_hours: LocalTimeRange,
    /// Local times when staff work their queue; alerts outside go to the on-duty contact.
    #[serde(default = "default_working_hours")]
    pub working_hours: LocalTimeRange,
}

/// A daily local-time window; `start > end` wraps midnight (21:00–08:00).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LocalTimeRange {
    #[serde(deserialize_with = "hh_mm")]
    pub start: NaiveTime,
    #[serde(deserialize_with = "hh_mm")]
    pub end: NaiveTime,
}

impl LocalTimeRange {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }
}

fn default_quiet_hours() -> LocalTimeRange {
    LocalTimeRange {
        start: NaiveTime::from_hms_opt(21, 0, 0).expect("valid time"),
        end: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
    }
}

fn default_working_hours() -> LocalTimeRange {
    LocalTimeRange {
        start: NaiveTime::from_hms_opt(8, 0, 0).expect("valid time"),
        end: NaiveTime::from_hms_opt(22, 0, 0).expect("valid time"),
    }
}

/// Deserializes "HH:MM" (local time of day).
pub fn hh_mm<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
    let s = String::deserialize(d)?;
    NaiveTime::parse_from_str(&s, "%H:%M")
        .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a local time like 21:00")))
}

/// The languages Guestloop has templates for.
pub const LANGUAGES: [&str; 3] = ["zh-CN", "zh-TW", "en"];

impl ChainDirectory {
    pub fn property(&self, id: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.id == id)
    }

    pub fn region(&self, id: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// Whether a guest of `tier` (guestprofile.v1.Tier) is a VIP to the chain.
    pub fn is_vip(&self, tier: i32) -> bool {
        tier != 0 && self.vip_tiers.contains(&tier)
    }

    /// The ids of the properties in a region.
    pub fn properties_in_region<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a str> {
        self.properties
            .iter()
            .filter(move |p| p.region == region)
            .map(|p| p.id.as_str())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.regions.iter().enumerate() {
            if r.id.is_empty() || !seen.insert(r.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("chain.regions[{i}].id"),
                    "must be non-empty and unique",
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.properties.iter().enumerate() {
            let key = |field: &str| format!("chain.properties[{i}].{field}");
            if p.id.is_empty() || !seen.insert(p.id.as_str()) {
                return Err(ConfigError::invalid(
                    key("id"),
                    "must be non-empty and unique",
                ));
            }
            if self.region(&p.region).is_none() {
                return Err(ConfigError::invalid(
                    key("region"),
                    format!("`{}` is not a region in chain.regions", p.region),
                ));
            }
            if p.time_zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(ConfigError::invalid(
                    key("time_zone"),
                    format!("`{}` is not an IANA time zone", p.time_zone),
                ));
            }
            if !LANGUAGES.contains(&p.default_language.as_str()) {
                return Err(ConfigError::invalid(
                    key("default_language"),
                    format!("`{}` is not one of {LANGUAGES:?}", p.default_language),
                ));
            }
        }
        Ok(())
    }
}
