//! feedback-intake's settings: the common ones, the intake rules (which scores and
//! reviews open a case), and the classifier's rules.

use crate::classify::ClassifierRules;
use guestloop_config::{CommonSettings, ConfigError, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub intake: IntakeSettings,
    pub classifier: ClassifierRules,
    /// Group commit of submissions that open a case: each call is a savepoint in a shared
    /// transaction, so `max_batch` stays at or under PostgreSQL's 64 cached subtransactions.
    #[serde(default)]
    pub group_commit: guestloop_db::batch::BatchSettings,
    /// Multi-row writes of single submissions that open no case (intake_batch.rs): one
    /// statement per batch and no savepoints.
    #[serde(default)]
    pub batch_write: guestloop_db::batch::BatchSettings,
    /// The same writes for ImportFeedback's items, apart so that an import's big batches
    /// and the front desk's small ones are each written the way that suits them.
    #[serde(default)]
    pub import_write: guestloop_db::batch::BatchSettings,
    /// How soon an OTA review's public reply is due, per site (reply/mod.rs).
    pub ota_replies: crate::reply::OtaReplySettings,
}

/// When feedback opens a case on its own, and limits on what is accepted.
#[derive(Debug, Clone, Deserialize)]
pub struct IntakeSettings {
    /// A survey NPS answer at or under this opens a case.
    pub nps_case_at_or_below: i32,
    /// A CSAT answer at or under this opens a case.
    pub csat_case_at_or_below: i32,
    /// Any CSI dimension at or under this opens a case.
    pub csi_case_at_or_below: i32,
    /// An OTA review rated under this share of its scale opens a case (0.6 = 6/10, 3/5).
    pub ota_case_below: f64,
    /// Negative feedback on other channels opens a case.
    pub negative_feedback_opens_case: bool,
    pub max_text_chars: usize,
    pub import_max_items: usize,
    /// Items of one import submitted at once (they share group commits).
    pub import_in_flight: usize,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate()?;
        let i = &self.intake;
        if !(0..=10).contains(&i.nps_case_at_or_below) {
            return Err(ConfigError::invalid(
                "intake.nps_case_at_or_below",
                "must be 0-10",
            ));
        }
        if !(1..=5).contains(&i.csat_case_at_or_below) {
            return Err(ConfigError::invalid(
                "intake.csat_case_at_or_below",
                "must be 1-5",
            ));
        }
        if !(1..=10).contains(&i.csi_case_at_or_below) {
            return Err(ConfigError::invalid(
                "intake.csi_case_at_or_below",
                "must be 1-10",
            ));
        }
        if !(0.0..=1.0).contains(&i.ota_case_below) {
            return Err(ConfigError::invalid(
                "intake.ota_case_below",
                "must be a share between 0 and 1",
            ));
        }
        if i.max_text_chars == 0 || i.import_max_items == 0 {
            return Err(ConfigError::invalid(
                "intake.max_text_chars",
                "limits must be positive",
            ));
        }
        self.ota_replies.validate()?;
        crate::classify::Classifier::new(&self.classifier)
            .map(|_| ())
            .map_err(ConfigError::Load)
    }
}

/// This service's defaults, layered over the common ones.
pub const SERVICE_DEFAULTS: &str = r#"
[grpc]
listen_addr = "127.0.0.1:50052"
[admin]
listen_addr = "127.0.0.1:9102"
[database]
schema = "feedback"

[group_commit]
workers = 2
max_batch = 64
queue = 4096

# Chosen with guestloop-bench P2 (docs/benchmarks/README.md): one worker puts every call
# that queued while the last statement ran into the next one. Two split them into two
# statements of half the size and two commits: P2 c8 47.5 / 52.4 % with 2, 60.2 / 63.3 %
# with 1. Past 4 waiting, a batch takes half of them (at least 4): the next statement is
# written while the last one's callers are answered, and one is always queued behind it
# (P2, split 0 -> 8: c32 93.2 -> 117.6 %, c64 114.5 -> 143.1 %; 8 -> 4: c8 61.2 -> 73.7 %,
# the machine idle 30-34 -> 24-27 %; c32 and c64, where both take half, within the noise).
[batch_write]
workers = 1
max_batch = 256
split_above = 4
queue = 4096

# Chosen with guestloop-bench P3: an import of 100,000 items ran at 23.9 % of COPY with
# batches of 64, 44.4 % with 512 and 49.2 % with 1,024; two workers overlap building one
# batch with writing the other (one worker: 42.2 / 46.2 % against 60.2 / 55.6 %).
[import_write]
workers = 2
max_batch = 1024
queue = 16384

[intake]
nps_case_at_or_below = 6
csat_case_at_or_below = 2
csi_case_at_or_below = 4
ota_case_below = 0.6
negative_feedback_opens_case = true
max_text_chars = 10000
import_max_items = 50000
import_in_flight = 2048

# An OTA review's public reply is due this long after the review's receipt: a negative
# review's (rated under intake.ota_case_below, or negative) sooner. Per site, e.g.
# [ota_replies.sites.booking_com] negative_within = "12h"; site keys are the OtaSite names
# without the prefix, lower case (booking_com, trip_com, tripadvisor, ..., other).
[ota_replies]
negative_within = "24h"
positive_within = "72h"
# The reply queue lists the reviews of the last this many days.
queue_days = 60
"#;

pub fn default_layers() -> [&'static str; 3] {
    [
        guestloop_config::COMMON_DEFAULTS,
        SERVICE_DEFAULTS,
        crate::classify::DEFAULT_RULES_TOML,
    ]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
