//! follow-up-scheduler's settings: the common ones, the timer worker (`[timers]`), the
//! after-stay plan (`[plan]`), alerts, tasks, VIP and frequent-guest care (`[care]`), and
//! the reminders of OTA review replies (`[review_replies]`).

use guestloop_config::{CommonSettings, ConfigError, LocalTimeRange, Seconds, Validate};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    pub timers: TimerSettings,
    pub plan: PlanSettings,
    pub alerts: AlertSettings,
    pub tasks: TaskSettings,
    pub care: CareSettings,
    pub review_replies: ReviewReplySettings,
}

/// Reminders before an OTA review's public reply is due (reviews.rs).
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewReplySettings {
    /// Remind at all (off: reviews arm nothing).
    pub enabled: bool,
    /// The reminder goes when this share of the reply window (receipt to deadline) is left:
    /// 0.25 reminds 6 h before a 24 h deadline, 18 h before a 72 h one. Between 0 and 1.
    pub remind_share: f64,
}

/// The after-stay plan (issue 4, part 2). The deadlines themselves (48 h, 7 days, one survey
/// per N days) are the chain's standards; these say when inside them a guest is contacted.
#[derive(Debug, Clone, Deserialize)]
pub struct PlanSettings {
    /// Plan stays at all (off: check-outs schedule nothing).
    pub enabled: bool,
    /// The satisfaction survey goes this long after check-out (then into contact hours).
    pub satisfaction_delay: Seconds,
    /// The survey reminder goes this long after the survey, if it is still unanswered.
    pub reminder_after: Seconds,
    /// Local hours in which guests are contacted (and never in the property's quiet hours).
    pub contact_hours: LocalTimeRange,
    /// Local time of the birthday greeting.
    #[serde(deserialize_with = "guestloop_config::hh_mm")]
    pub birthday_time: chrono::NaiveTime,
    /// The survey link in the invitation and reminder; `{stay_id}` is replaced.
    pub survey_url: String,
    /// Send birthday greetings (needs the guest's birthday from guest-profile).
    pub birthday_care: bool,
    /// Local time of the anniversary greeting.
    #[serde(deserialize_with = "guestloop_config::hh_mm")]
    pub anniversary_time: chrono::NaiveTime,
    /// Send anniversary greetings (needs the guest's anniversary from guest-profile).
    pub anniversary_care: bool,
}

/// VIP and frequent-guest care (issue 13, care/): pre-arrival tasks for the property when
/// such a guest's stay is booked, and a VIP's after-stay contacts as the duty manager's
/// calls instead of templated messages.
#[derive(Debug, Clone, Deserialize)]
pub struct CareSettings {
    /// Plan pre-arrival care at all (off: bookings create nothing).
    pub enabled: bool,
    /// A guest with at least this many earlier checked-out stays is cared for as a frequent
    /// guest; 0: nobody is, by stays alone.
    pub frequent_after_stays: u32,
    /// When a guest is expected on the arrival date, local time at the property (its
    /// check-in time); pre-arrival tasks are due their lead time before it.
    #[serde(deserialize_with = "guestloop_config::hh_mm")]
    pub arrival_time: chrono::NaiveTime,
    /// The pre-arrival tasks and how long before arrival each is due; "0s" leaves one out.
    pub pre_arrival: PreArrivalLeads,
    /// A VIP's satisfaction contact and 7-day follow-up are calls the duty manager is given
    /// as tasks (and alerted to), not the survey and follow-up templates.
    pub vip_contact_by_duty_manager: bool,
}

/// How long before arrival each pre-arrival task is due ("0s": not created).
#[derive(Debug, Clone, Deserialize)]
pub struct PreArrivalLeads {
    /// A welcome amenity in the room (with the guest's dietary needs and allergies).
    pub welcome_amenity: Seconds,
    /// The room to the guest's preferences (room type, pillow, floor), when they have any.
    pub room_preferences: Seconds,
    /// The guest's special needs (accessibility, medical), when they have any.
    pub special_needs: Seconds,
}

impl CareSettings {
    /// A guest the chain cares for before arrival: a VIP (`chain.vip_tiers`), or enough
    /// earlier stays.
    pub fn cares_for(&self, vip: bool, previous_stays: u32) -> bool {
        vip || (self.frequent_after_stays > 0 && previous_stays >= self.frequent_after_stays)
    }
}

/// Staff alerts the scheduler sends (SLA warnings, escalations, missed timers).
#[derive(Debug, Clone, Deserialize)]
pub struct AlertSettings {
    /// Outside the property's working hours an alert goes to the duty manager instead of
    /// waiting for the morning.
    pub on_duty_fallback: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskSettings {
    /// An open task becomes MISSED this long after its due time.
    pub miss_grace: Seconds,
}

/// The firing worker: how often it looks for due timers, how long a claim holds.
#[derive(Debug, Clone, Deserialize)]
pub struct TimerSettings {
    /// Run the worker in this process (every replica may; claims never overlap).
    pub worker_enabled: bool,
    /// Firing loops per replica. Each claims, runs and finishes its batch in turn, so one
    /// loop leaves PostgreSQL idle while it runs a batch's actions and itself idle while
    /// PostgreSQL writes; two overlap the two (guestloop-bench P4).
    pub workers: usize,
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
    /// How often the `scheduler_timers_backlog` gauge is counted: a COUNT over every due
    /// timer, which with a million due cost PostgreSQL ~0.1 s a time, once per poll per
    /// replica (P4, docs/benchmarks); a scrape interval's freshness is enough for a gauge.
    pub backlog_interval: Seconds,
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
        if t.workers < 1 {
            return Err(ConfigError::invalid("timers.workers", "must be at least 1"));
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
        if self.plan.satisfaction_delay.is_zero() {
            return Err(ConfigError::invalid(
                "plan.satisfaction_delay",
                "must be positive",
            ));
        }
        let share = self.review_replies.remind_share;
        if !(share > 0.0 && share < 1.0) {
            return Err(ConfigError::invalid(
                "review_replies.remind_share",
                "must be between 0 and 1 (the share of the reply window left)",
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
workers = 2
poll_interval = "1s"
batch_size = 50
lease = "60s"
default_late_threshold = "5m"
action_timeout = "15s"
max_attempts = 10
retry_delay = "30s"
backlog_interval = "15s"

[plan]
enabled = true
satisfaction_delay = "3h"
reminder_after = "24h"
contact_hours = { start = "10:00", end = "20:00" }
birthday_time = "10:00"
birthday_care = true
anniversary_time = "10:00"
anniversary_care = true
survey_url = "https://survey.guestloop.example/s/{stay_id}"

[alerts]
on_duty_fallback = true

[tasks]
miss_grace = "1h"

[care]
enabled = true
frequent_after_stays = 5
arrival_time = "14:00"
vip_contact_by_duty_manager = true
[care.pre_arrival]
welcome_amenity = "24h"
room_preferences = "48h"
special_needs = "72h"

[review_replies]
enabled = true
remind_share = 0.25
"#;

pub fn default_layers() -> [&'static str; 2] {
    [guestloop_config::COMMON_DEFAULTS, SERVICE_DEFAULTS]
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        guestloop_config::load(&default_layers(), file)
    }
}
