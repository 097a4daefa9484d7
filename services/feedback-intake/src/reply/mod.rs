//! OTA review replies (issue 13): when a review's public reply is due (per site, sooner for
//! a negative review), whether it needs a manager's approval, and which moves its state
//! allows. Pure rules over the review; the RPCs are api/replies.rs, the rows
//! store/replies.rs, the suggested text templates.rs.

pub mod queue;
pub mod templates;

use crate::domain::rules::normalized_rating;
use crate::error::{FeedbackError, Result};
use crate::settings::IntakeSettings;
use crate::store::feedback::FeedbackRow;
use chrono::{DateTime, Utc};
use guestloop_config::{ConfigError, Seconds};
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::feedback::v1::ReviewReplyState as St;
use prost::Message;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[ota_replies]`: how long after a review's receipt its reply is due.
#[derive(Debug, Clone, Deserialize)]
pub struct OtaReplySettings {
    /// A negative review's reply (default 24 h).
    pub negative_within: Seconds,
    /// Any other review's reply (default 72 h).
    pub positive_within: Seconds,
    /// Per site, keyed by [`site_key`]; an unset duration falls back to the chain's.
    #[serde(default)]
    pub sites: BTreeMap<String, SiteDeadlines>,
    /// The reply queue (ListReviewReplies) holds the reviews received within this many
    /// days (default 60): far past every deadline, an older one is looked up on its own
    /// (GetReviewReply), so a property's years of reviews are never read for the queue.
    pub queue_days: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SiteDeadlines {
    pub negative_within: Option<Seconds>,
    pub positive_within: Option<Seconds>,
}

/// A site's key in the settings: the OtaSite name without its prefix, lower case
/// (`booking_com`, `trip_com`, `tripadvisor`, ...).
pub fn site_key(site: pb::OtaSite) -> String {
    site.as_str_name()
        .trim_start_matches("OTA_SITE_")
        .to_ascii_lowercase()
}

impl OtaReplySettings {
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        let known: Vec<String> = (1..=pb::OtaSite::Other as i32)
            .filter_map(|n| pb::OtaSite::try_from(n).ok())
            .map(site_key)
            .collect();
        let mut all = vec![
            (
                "ota_replies.negative_within".to_string(),
                Some(self.negative_within),
            ),
            (
                "ota_replies.positive_within".to_string(),
                Some(self.positive_within),
            ),
        ];
        for (site, d) in &self.sites {
            if !known.contains(site) {
                return Err(ConfigError::invalid(
                    format!("ota_replies.sites.{site}"),
                    "is no OTA site (booking_com, trip_com, tripadvisor, expedia, agoda, \
                     meituan, fliggy, qunar, google, other)",
                ));
            }
            all.push((
                format!("ota_replies.sites.{site}.negative_within"),
                d.negative_within,
            ));
            all.push((
                format!("ota_replies.sites.{site}.positive_within"),
                d.positive_within,
            ));
        }
        for (key, d) in all {
            if d.is_some_and(Seconds::is_zero) {
                return Err(ConfigError::invalid(key, "must be longer than zero"));
            }
        }
        if self.queue_days == 0 {
            return Err(ConfigError::invalid(
                "ota_replies.queue_days",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// How long after receipt a review of this site is due.
    pub fn within(&self, site: pb::OtaSite, negative: bool) -> chrono::Duration {
        let own = self.sites.get(&site_key(site));
        let d = if negative {
            own.and_then(|s| s.negative_within)
                .unwrap_or(self.negative_within)
        } else {
            own.and_then(|s| s.positive_within)
                .unwrap_or(self.positive_within)
        };
        chrono::Duration::from_std(d.as_duration()).unwrap_or(chrono::Duration::MAX)
    }
}

/// A negative review: rated under the chain's case threshold (`intake.ota_case_below`), or,
/// without a rating, negative in sentiment.
pub fn is_negative(
    review: &pb::OtaReview,
    sentiment: pb::Sentiment,
    limits: &IntakeSettings,
) -> bool {
    match normalized_rating(review) {
        Some(r) => r < limits.ota_case_below,
        None => sentiment == pb::Sentiment::Negative,
    }
}

/// When a review's reply is due: its receipt plus its site's deadline, the negative one
/// for a negative review. The one rule behind ReviewReply.due_time and the deadline that
/// FeedbackReceived announces (the scheduler's reminder), so the two cannot disagree.
pub fn due_time(
    review: &pb::OtaReview,
    sentiment: pb::Sentiment,
    receive_time: DateTime<Utc>,
    limits: &IntakeSettings,
    deadlines: &OtaReplySettings,
) -> DateTime<Utc> {
    let site = pb::OtaSite::try_from(review.site).unwrap_or(pb::OtaSite::Other);
    receive_time + deadlines.within(site, is_negative(review, sentiment, limits))
}

/// The reply deadline FeedbackReceived announces for a new OTA review ([`due_time`] with
/// the service's settings); `None` for any other feedback.
pub fn announced_due(
    state: &crate::state::State,
    channel: i16,
    review: Option<&pb::OtaReview>,
    sentiment: i16,
    receive_time: DateTime<Utc>,
) -> Option<prost_types::Timestamp> {
    let review = review.filter(|_| channel == pb::FeedbackChannel::OtaReview as i16)?;
    let sentiment = pb::Sentiment::try_from(i32::from(sentiment)).unwrap_or_default();
    let due = due_time(
        review,
        sentiment,
        receive_time,
        &state.intake,
        &state.ota_replies,
    );
    // As stored (PostgreSQL keeps microseconds), so it is the instant ReviewReply shows.
    let due = DateTime::from_timestamp_micros(due.timestamp_micros()).unwrap_or(due);
    Some(crate::convert::ts(due))
}

/// What a reply is about: the review's facts, from its feedback row.
#[derive(Debug, Clone)]
pub struct Review {
    pub site: pb::OtaSite,
    pub negative: bool,
    pub due_time: DateTime<Utc>,
    pub language: String,
    pub category: pb::Category,
    pub text: String,
    pub reply_published: bool,
}

impl Review {
    /// The review behind a feedback row; INVALID_ARGUMENT naming `feedback_id` for feedback
    /// of another channel.
    pub fn of(
        row: &FeedbackRow,
        limits: &IntakeSettings,
        deadlines: &OtaReplySettings,
    ) -> Result<Self> {
        let review = row
            .ota_review
            .as_deref()
            .and_then(|b| pb::OtaReview::decode(b).ok())
            .filter(|_| row.channel == pb::FeedbackChannel::OtaReview as i16)
            .ok_or_else(|| crate::error::invalid("feedback_id", "is not an OTA review"))?;
        let site = pb::OtaSite::try_from(review.site).unwrap_or(pb::OtaSite::Other);
        let sentiment = pb::Sentiment::try_from(i32::from(row.sentiment)).unwrap_or_default();
        Ok(Self {
            site,
            negative: is_negative(&review, sentiment, limits),
            due_time: due_time(&review, sentiment, row.receive_time, limits, deadlines),
            language: row.language.clone(),
            category: pb::Category::try_from(i32::from(row.category)).unwrap_or_default(),
            text: row.text.clone(),
            reply_published: review.reply_status == pb::OtaReplyStatus::Published as i32,
        })
    }
}

fn refused(why: &str) -> FeedbackError {
    FeedbackError::FailedPrecondition(why.to_string())
}

/// The state after a new draft: a negative review's waits for a manager, unless a manager
/// wrote it (their draft is their approval).
pub fn after_draft(current: St, needs_approval: bool, manager: bool) -> Result<St> {
    if current == St::Posted {
        return Err(refused("the reply is posted and cannot change"));
    }
    Ok(if needs_approval && !manager {
        St::PendingApproval
    } else {
        St::Approved
    })
}

/// A manager approves a pending draft.
pub fn after_approval(current: St, manager: bool) -> Result<St> {
    if !manager {
        return Err(FeedbackError::PermissionDenied(
            "approving a reply needs a manager",
        ));
    }
    if current != St::PendingApproval {
        return Err(refused(&format!(
            "only a reply pending approval can be approved; it is {}",
            current.as_str_name()
        )));
    }
    Ok(St::Approved)
}

/// The text a reply is posted with: the approved one for a negative review (a different
/// text is refused), else the given text or the draft.
pub fn posted_text(current: St, needs_approval: bool, draft: &str, given: &str) -> Result<String> {
    if needs_approval {
        if current != St::Approved {
            return Err(refused(
                "a negative review's reply needs a manager's approval before it is posted",
            ));
        }
        if !given.is_empty() && given != draft {
            return Err(refused(
                "the posted text differs from the approved one: draft it again for approval",
            ));
        }
        return Ok(draft.to_string());
    }
    let text = if given.is_empty() { draft } else { given };
    if text.is_empty() {
        return Err(crate::error::invalid(
            "text",
            "is required: nothing was drafted for this review",
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OtaReplySettings {
        let toml = r#"
            negative_within = "24h"
            positive_within = "72h"
            queue_days = 60
            [sites.booking_com]
            negative_within = "12h"
        "#;
        let s: OtaReplySettings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap();
        s.validate().unwrap();
        s
    }

    #[test]
    fn deadlines_per_site_fall_back_to_the_chains() {
        let s = settings();
        let h = chrono::Duration::hours;
        let cases = [
            (pb::OtaSite::BookingCom, true, h(12)),
            (pb::OtaSite::BookingCom, false, h(72)),
            (pb::OtaSite::TripCom, true, h(24)),
            (pb::OtaSite::TripCom, false, h(72)),
        ];
        for (site, negative, want) in cases {
            assert_eq!(s.within(site, negative), want, "{site:?} {negative}");
        }
    }

    #[test]
    fn unknown_sites_and_zero_deadlines_are_refused() {
        let mut s = settings();
        s.sites.insert("myspace".into(), SiteDeadlines::default());
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("ota_replies.sites.myspace"), "{e}");
        let mut s = settings();
        s.positive_within = Seconds(std::time::Duration::ZERO);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("ota_replies.positive_within"), "{e}");
    }

    #[test]
    fn the_state_moves() {
        use St::*;
        assert_eq!(
            after_draft(Suggested, true, false).unwrap(),
            PendingApproval
        );
        assert_eq!(after_draft(Approved, true, false).unwrap(), PendingApproval);
        assert_eq!(after_draft(Suggested, true, true).unwrap(), Approved);
        assert_eq!(after_draft(Suggested, false, false).unwrap(), Approved);
        assert!(after_draft(Posted, false, true).is_err());
        assert!(matches!(
            after_approval(PendingApproval, false),
            Err(FeedbackError::PermissionDenied(_))
        ));
        assert_eq!(after_approval(PendingApproval, true).unwrap(), Approved);
        assert!(after_approval(Approved, true).is_err());
        assert!(posted_text(PendingApproval, true, "a", "").is_err());
        assert!(posted_text(Approved, true, "a", "b").is_err());
        assert_eq!(posted_text(Approved, true, "a", "").unwrap(), "a");
        assert_eq!(posted_text(Suggested, false, "", "b").unwrap(), "b");
        assert!(matches!(
            posted_text(Suggested, false, "", ""),
            Err(FeedbackError::Invalid(_))
        ));
    }
}
