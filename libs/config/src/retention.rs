//! How long personal data is kept (issue 11), set by head office for the chain and
//! overridable per region (laws differ: PIPL in mainland China, the PDPO in Hong Kong, the
//! GDPR for European guests). Each service's retention job (guestloop_db::retention)
//! anonymises or deletes what is older than its period, property by property.

use crate::{ChainDirectory, ConfigError, Seconds};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// How often each service's job runs.
    pub interval: Seconds,
    /// Rows changed per statement (and transaction): a round's work is many short
    /// transactions, resumable where it stopped.
    pub batch: u32,
    /// Statements per kind of data and property in one round, so one round stays bounded
    /// when a period is first shortened; the next round goes on.
    pub max_batches_per_round: u32,
    pub default: RetentionPeriods,
    #[serde(default)]
    pub regions: HashMap<String, RetentionOverride>,
}

/// The periods, each from the record's own time (received, opened, created, read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct RetentionPeriods {
    /// Feedback texts, survey text answers, OTA review titles and reviewer names, staff
    /// names as written, tags (feedback-intake); the scores and category stay.
    pub feedback_text: Seconds,
    /// Case titles, descriptions, grade reasons and case-history notes (feedback-intake).
    pub case_notes: Seconds,
    /// The template variables messages were sent with (notification; bodies are never
    /// stored).
    pub message_variables: Seconds,
    /// Rows of the access log of contact-data reads (guest-profile). Chain-wide: the log is
    /// the chain's own accountability record, and its guests' regions can differ.
    pub access_log: Seconds,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOverride {
    pub feedback_text: Option<Seconds>,
    pub case_notes: Option<Seconds>,
    pub message_variables: Option<Seconds>,
}

impl RetentionSettings {
    /// The periods at a property: the chain's, with its region's changes.
    pub fn for_property(&self, chain: &ChainDirectory, property_id: &str) -> RetentionPeriods {
        let mut p = self.default;
        if let Some(o) = chain
            .property(property_id)
            .and_then(|p| self.regions.get(&p.region))
        {
            p.feedback_text = o.feedback_text.unwrap_or(p.feedback_text);
            p.case_notes = o.case_notes.unwrap_or(p.case_notes);
            p.message_variables = o.message_variables.unwrap_or(p.message_variables);
        }
        p
    }

    pub(crate) fn validate(&self, chain: &ChainDirectory) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::invalid(
                "retention.interval",
                "must be positive",
            ));
        }
        if self.batch == 0 {
            return Err(ConfigError::invalid(
                "retention.batch",
                "must be at least 1",
            ));
        }
        if self.max_batches_per_round == 0 {
            return Err(ConfigError::invalid(
                "retention.max_batches_per_round",
                "must be at least 1",
            ));
        }
        let d = &self.default;
        let mut periods = vec![
            (
                "retention.default.feedback_text".to_string(),
                Some(d.feedback_text),
            ),
            (
                "retention.default.case_notes".to_string(),
                Some(d.case_notes),
            ),
            (
                "retention.default.message_variables".to_string(),
                Some(d.message_variables),
            ),
            (
                "retention.default.access_log".to_string(),
                Some(d.access_log),
            ),
        ];
        for (id, o) in &self.regions {
            if chain.region(id).is_none() {
                return Err(ConfigError::invalid(
                    format!("retention.regions.{id}"),
                    "is not a region in chain.regions",
                ));
            }
            periods.push((
                format!("retention.regions.{id}.feedback_text"),
                o.feedback_text,
            ));
            periods.push((format!("retention.regions.{id}.case_notes"), o.case_notes));
            periods.push((
                format!("retention.regions.{id}.message_variables"),
                o.message_variables,
            ));
        }
        for (key, period) in periods {
            if period.is_some_and(Seconds::is_zero) {
                return Err(ConfigError::invalid(key, "must be positive"));
            }
        }
        Ok(())
    }
}
