//! Reminders before an OTA review's public reply is due (issue 13). feedback-intake's
//! FeedbackReceived for an OTA review carries the reply's deadline (the same rule its
//! ReviewReply.due_time shows); the scheduler arms `review/<feedback_id>/reply-due` for
//! when `[review_replies] remind_share` of the window from receipt to deadline is left. Its
//! action is a STAFF_REVIEW_REPLY_DUE to the property's customer-service manager (the duty
//! manager outside working hours with `alerts.on_duty_fallback`), naming the site, the
//! deadline and the feedback id: never the reviewer or their words, so the timer holds no
//! guest data. A FeedbackReplied for the review's public reply (OTA_REPLY) cancels it.
//!
//! The timer is inserted, never replaced: a redelivered or re-imported FeedbackReceived
//! arms nothing more, and one arriving after the reply does not revive the cancelled timer.
//! A reminder that could only go after the deadline is pointless: it is not armed when the
//! deadline has passed, and LATE_POLICY_SKIP drops one that comes due too late.

use crate::domain::{NewTimer, micros, timestamp, to_timestamp};
use crate::settings::ReviewReplySettings;
use crate::state::State;
use crate::store::timers as store;
use chrono::{DateTime, Utc};
use guestloop_proto::common::v1::Urgency;
use guestloop_proto::events::v1::{FeedbackReceived, FeedbackReplied};
use guestloop_proto::feedback::v1::{FeedbackChannel, FeedbackReplyKind, OtaSite};
use guestloop_proto::followup::v1::{self as pb, LatePolicy, TimerPurpose, timer_action};
use guestloop_proto::notification::v1::{self as notify, MessageKind, StaffRole};
use prost::Message;
use sqlx::PgConnection;

/// The reminder's key.
pub fn key(feedback_id: &str) -> String {
    format!("review/{feedback_id}/reply-due")
}

/// A feedback id as feedback-intake issues them (a UUID), in its canonical form; anything
/// else (a NUL byte would make PostgreSQL refuse the key, and the event would never apply)
/// is no review of ours.
fn feedback_id(s: &str) -> Option<String> {
    uuid::Uuid::parse_str(s.trim()).ok().map(|u| u.to_string())
}

/// An OTA review awaiting its reply, as FeedbackReceived tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct DueReview {
    pub feedback_id: String,
    pub property_id: String,
    pub site: OtaSite,
    pub receive_time: DateTime<Utc>,
    pub due_time: DateTime<Utc>,
}

impl TryFrom<&FeedbackReceived> for DueReview {
    /// Why the event arms no reminder.
    type Error = &'static str;

    fn try_from(e: &FeedbackReceived) -> Result<Self, Self::Error> {
        if e.channel != FeedbackChannel::OtaReview as i32 {
            return Err("channel");
        }
        let id = |v: &str| {
            let v = v.trim();
            (!v.is_empty() && v.len() <= 100).then(|| v.to_string())
        };
        let time = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(|t| timestamp(t).ok());
        let feedback_id = feedback_id(&e.feedback_id).ok_or("feedback_id")?;
        let property_id = id(&e.property_id).ok_or("property_id")?;
        let receive_time = time(&e.receive_time).ok_or("receive_time")?;
        // An event from before feedback-intake announced deadlines has none.
        let due_time = time(&e.reply_due_time).ok_or("reply_due_time")?;
        if due_time <= receive_time {
            return Err("reply_due_time");
        }
        Ok(Self {
            feedback_id,
            property_id,
            site: OtaSite::try_from(e.ota_site).unwrap_or(OtaSite::Other),
            receive_time,
            due_time,
        })
    }
}

/// The site as staff know it.
pub fn site_label(site: OtaSite) -> &'static str {
    match site {
        OtaSite::BookingCom => "Booking.com",
        OtaSite::TripCom => "Trip.com",
        OtaSite::Tripadvisor => "Tripadvisor",
        OtaSite::Expedia => "Expedia",
        OtaSite::Agoda => "Agoda",
        OtaSite::Meituan => "Meituan",
        OtaSite::Fliggy => "Fliggy",
        OtaSite::Qunar => "Qunar",
        OtaSite::Google => "Google",
        OtaSite::Other | OtaSite::Unspecified => "OTA",
    }
}

/// When the reminder goes: `remind_share` of the reply window before the deadline.
pub fn remind_at(r: &DueReview, s: &ReviewReplySettings) -> DateTime<Utc> {
    let window = (r.due_time - r.receive_time).num_milliseconds() as f64;
    let lead = chrono::Duration::milliseconds((window * s.remind_share).round() as i64);
    r.due_time - lead
}

/// The reminder's timer (pure); `None` when reminders are off or the deadline has passed.
/// `due_text` is the deadline as the recipient reads it (the property's local time).
pub fn reminder(
    r: &DueReview,
    s: &ReviewReplySettings,
    on_duty_fallback: bool,
    due_text: String,
    now: DateTime<Utc>,
) -> Option<NewTimer> {
    if !s.enabled || r.due_time <= now {
        return None;
    }
    let at = micros(remind_at(r, s));
    let spec = notify::MessageSpec {
        recipient: Some(notify::Recipient {
            kind: Some(notify::recipient::Kind::Staff(notify::StaffRecipient {
                property_id: r.property_id.clone(),
                role: StaffRole::CustomerServiceManager as i32,
                on_duty_fallback,
                ..Default::default()
            })),
        }),
        kind: MessageKind::StaffReviewReplyDue as i32,
        variables: [
            ("site", site_label(r.site).to_string()),
            ("due_time", due_text),
            ("feedback_id", r.feedback_id.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        urgency: Urgency::Normal as i32,
        property_id: r.property_id.clone(),
        // Past the deadline the reminder has nothing left to remind of.
        expire_time: Some(to_timestamp(r.due_time)),
        ..Default::default()
    };
    let action = pb::TimerAction {
        action: Some(timer_action::Action::SendMessage(pb::SendMessageAction {
            message: Some(spec),
        })),
    };
    Some(NewTimer {
        key: key(&r.feedback_id),
        purpose: TimerPurpose::ReviewReplyReminder,
        property_id: r.property_id.clone(),
        guest_id: String::new(),
        stay_id: String::new(),
        case_id: String::new(),
        due_time: at,
        late_policy: LatePolicy::Skip,
        // Fired any later than this, it would land after the deadline.
        late_threshold_ms: (r.due_time - at).num_milliseconds().max(1),
        action: Some(action.encode_to_vec()),
        clock_id: None,
        task_id: None,
    })
}

/// A review came in: its reminder is armed, once.
pub async fn received(
    conn: &mut PgConnection,
    state: &State,
    e: &FeedbackReceived,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if e.channel != FeedbackChannel::OtaReview as i32 {
        return Ok(());
    }
    let review = match DueReview::try_from(e) {
        Ok(r) => r,
        // From a feedback-intake of before reply deadlines were announced: nothing to arm.
        Err("reply_due_time") if e.reply_due_time.is_none() => return Ok(()),
        Err(field) => {
            tracing::warn!(
                field,
                "OTA review event with an unusable field: no reply reminder"
            );
            return Ok(());
        }
    };
    if state.chain.property(&review.property_id).is_none() {
        tracing::warn!(property_id = %review.property_id, "review of an unknown property: no reminder");
        return Ok(());
    }
    let due_text = crate::alerts::local_time(state, &review.property_id, review.due_time);
    let Some(t) = reminder(
        &review,
        &state.review_replies,
        state.alerts.on_duty_fallback,
        due_text,
        now,
    ) else {
        return Ok(());
    };
    if let Some(row) = store::insert(conn, &t).await? {
        crate::store::deadline_changed(conn, &row.property_id, "timer", row.id).await?;
    }
    Ok(())
}

/// The review's public reply was posted: its reminder goes. Other answers (a case
/// acknowledged, the guest called back) leave the public reply still due.
pub async fn replied(conn: &mut PgConnection, e: &FeedbackReplied) -> Result<(), sqlx::Error> {
    if e.kind != FeedbackReplyKind::OtaReply as i32 {
        return Ok(());
    }
    let Some(feedback_id) = feedback_id(&e.feedback_id) else {
        return Ok(());
    };
    let cancelled: Option<(String, uuid::Uuid)> = sqlx::query_as(
        "UPDATE timers SET state = 5, update_time = now()
          WHERE key = $1 AND state = 1
          RETURNING property_id, id",
    )
    .bind(key(&feedback_id))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((property, id)) = cancelled {
        crate::store::deadline_changed(conn, &property, "timer", id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0191f5a2-7c1e-7b3a-9d4e-2f6a8b0c1d2e";

    fn settings(share: f64) -> ReviewReplySettings {
        ReviewReplySettings {
            enabled: true,
            remind_share: share,
        }
    }

    fn event(channel: FeedbackChannel, received: DateTime<Utc>, hours: i64) -> FeedbackReceived {
        FeedbackReceived {
            feedback_id: ID.into(),
            property_id: "sh-bund".into(),
            channel: channel as i32,
            ota_site: OtaSite::BookingCom as i32,
            receive_time: Some(to_timestamp(received)),
            reply_due_time: (hours != 0)
                .then(|| to_timestamp(received + chrono::Duration::hours(hours))),
            ..Default::default()
        }
    }

    #[test]
    fn the_reminder_goes_when_its_share_of_the_window_is_left() {
        let now = Utc::now();
        let h = chrono::Duration::hours;
        // (received ago, window, share, reminder before the deadline, armed)
        let cases = [
            (h(0), 24, 0.25, Some(h(6))),
            (h(0), 72, 0.25, Some(h(18))),
            (h(0), 24, 0.5, Some(h(12))),
            // Past the reminder but before the deadline: fires at once, still in time.
            (h(20), 24, 0.25, Some(h(6))),
            // The deadline has passed: nothing to remind of.
            (h(30), 24, 0.25, None),
        ];
        for (ago, hours, share, lead) in cases {
            let e = event(FeedbackChannel::OtaReview, now - ago, hours);
            let r = DueReview::try_from(&e).unwrap();
            let t = reminder(&r, &settings(share), true, "x".into(), now);
            let what = format!("{ago} {hours} {share}");
            match (t, lead) {
                (Some(t), Some(lead)) => {
                    assert_eq!(t.due_time, micros(r.due_time - lead), "{what}");
                    assert_eq!(t.key, format!("review/{ID}/reply-due"));
                    assert_eq!(t.late_policy, LatePolicy::Skip);
                    assert_eq!(t.late_threshold_ms, lead.num_milliseconds(), "{what}");
                    assert!(t.guest_id.is_empty());
                }
                (None, None) => {}
                (t, lead) => panic!("{what}: {t:?} vs {lead:?}"),
            }
        }
        let off = ReviewReplySettings {
            enabled: false,
            ..settings(0.25)
        };
        let r = DueReview::try_from(&event(FeedbackChannel::OtaReview, now, 24)).unwrap();
        assert!(reminder(&r, &off, true, "x".into(), now).is_none());
    }

    #[test]
    fn only_an_ota_review_with_a_deadline_arms_one() {
        let now = Utc::now();
        // (event, why not)
        let cases = [
            (event(FeedbackChannel::Email, now, 24), "channel"),
            (event(FeedbackChannel::OtaReview, now, 0), "reply_due_time"),
            (event(FeedbackChannel::OtaReview, now, -1), "reply_due_time"),
            (
                FeedbackReceived {
                    property_id: " ".into(),
                    ..event(FeedbackChannel::OtaReview, now, 24)
                },
                "property_id",
            ),
            (
                FeedbackReceived {
                    feedback_id: "f-1\0".into(),
                    ..event(FeedbackChannel::OtaReview, now, 24)
                },
                "feedback_id",
            ),
        ];
        for (e, why) in cases {
            assert_eq!(DueReview::try_from(&e).unwrap_err(), why, "{e:?}");
        }
    }

    #[test]
    fn remind_share_must_be_a_share_of_the_window() {
        // (remind_share, accepted)
        let cases = [
            ("0.25", true),
            ("0.9", true),
            ("0", false),
            ("1", false),
            ("-0.5", false),
        ];
        for (share, ok) in cases {
            let extra = format!("[review_replies]\nremind_share = {share}\n");
            let mut layers = crate::default_layers().to_vec();
            layers.push(guestloop_testkit::TEST_CHAIN_TOML);
            layers.push(&extra);
            match guestloop_config::load_offline::<crate::Settings>(&layers) {
                Ok(_) => assert!(ok, "{share} accepted"),
                Err(e) => {
                    assert!(!ok, "{share}: {e}");
                    assert!(e.to_string().contains("review_replies.remind_share"), "{e}");
                }
            }
        }
    }

    #[test]
    fn the_alert_names_the_site_the_deadline_and_the_review_only() {
        let now = Utc::now();
        let r = DueReview::try_from(&event(FeedbackChannel::OtaReview, now, 24)).unwrap();
        let t = reminder(&r, &settings(0.25), true, "18:00".into(), now).unwrap();
        let action = pb::TimerAction::decode(t.action.unwrap().as_slice()).unwrap();
        let Some(timer_action::Action::SendMessage(s)) = action.action else {
            panic!("a message")
        };
        let spec = s.message.unwrap();
        assert_eq!(spec.kind, MessageKind::StaffReviewReplyDue as i32);
        let mut names: Vec<&str> = spec.variables.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["due_time", "feedback_id", "site"]);
        assert_eq!(spec.variables["site"], "Booking.com");
        let Some(notify::recipient::Kind::Staff(to)) = spec.recipient.and_then(|r| r.kind) else {
            panic!("to staff")
        };
        assert_eq!(to.role, StaffRole::CustomerServiceManager as i32);
        assert!(to.on_duty_fallback);
    }
}
