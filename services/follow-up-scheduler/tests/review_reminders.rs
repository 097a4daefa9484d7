//! Reminders before an OTA review's reply is due (issue 13), from feedback-intake's events
//! through EventIngestService.DeliverEvents, with a REAL notification:
//! - a FeedbackReceived for an OTA review arms `review/<feedback_id>/reply-due` when a
//!   quarter of the reply window is left; other feedback and reviews past their deadline
//!   arm nothing; a redelivered or re-imported review arms nothing more;
//! - the review's public reply (FeedbackReplied, OTA_REPLY) cancels it, and a later copy
//!   of the review does not revive it; another kind of answer (a case acknowledged) keeps it;
//! - unreplied, it fires: one STAFF_REVIEW_REPLY_DUE to the property's customer-service
//!   manager naming the site, the deadline and the review, none of the guest's words.

mod common;

use chrono::{DateTime, Duration as Span, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as pb;
use guestloop_proto::notification::v1 as nt;
use pb::TimerState as S;
use prost::Message;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const WORDS: &str = "Mrs Gao in 1208: the shower was broken";

fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn envelope(feedback_id: &str, sequence: i64, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: uid(),
        source: "feedback-intake".into(),
        aggregate_type: "feedback".into(),
        aggregate_id: feedback_id.into(),
        sequence,
        occur_time: Some(ts(Utc::now())),
        property_id: "sh-bund".into(),
        traceparent: String::new(),
        payload: Some(payload),
    }
}

/// A review of `channel` received at `received`, its reply due `window` later (none for
/// other channels, as feedback-intake sends them).
fn received(
    id: &str,
    channel: fb::FeedbackChannel,
    received: DateTime<Utc>,
    window: Span,
) -> EventEnvelope {
    let ota = channel == fb::FeedbackChannel::OtaReview;
    envelope(
        id,
        1,
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: id.into(),
            property_id: "sh-bund".into(),
            channel: channel as i32,
            receive_time: Some(ts(received)),
            ota_site: if ota { fb::OtaSite::TripCom as i32 } else { 0 },
            normalized_rating: ota.then_some(0.2),
            redacted_excerpt: WORDS.into(),
            reply_due_time: ota.then(|| ts(received + window)),
            ..Default::default()
        }),
    )
}

fn replied(id: &str, kind: fb::FeedbackReplyKind) -> EventEnvelope {
    envelope(
        id,
        2,
        Payload::FeedbackReplied(ev::FeedbackReplied {
            feedback_id: id.into(),
            property_id: "sh-bund".into(),
            channel: fb::FeedbackChannel::OtaReview as i32,
            reply_time: Some(ts(Utc::now())),
            kind: kind as i32,
            ..Default::default()
        }),
    )
}

fn key(feedback_id: &str) -> String {
    format!("review/{feedback_id}/reply-due")
}

async fn timer(app: &TestApp, feedback_id: &str) -> Option<pb::Timer> {
    match app
        .head_office()
        .get_timer(pb::GetTimerRequest {
            key: key(feedback_id),
            timer_id: String::new(),
        })
        .await
    {
        Ok(r) => r.into_inner().timer,
        Err(s) if s.code() == tonic::Code::NotFound => None,
        Err(s) => panic!("get timer: {s:?}"),
    }
}

fn to_utc(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

#[tokio::test]
async fn a_reviews_reply_reminder_is_armed_once_cancelled_by_the_reply_and_fires_unreplied() {
    let mut app = TestApp::spawn(false).await;
    let (peer, notification) = app.notification().await;
    app.start(true, &peer).await;
    app.stop(0).await;
    let now = Utc::now();
    let h = Span::hours;

    // Armed on receipt: a quarter of the 24 h window before the deadline.
    let answered = uid();
    let acknowledged = uid();
    let first = received(&answered, fb::FeedbackChannel::OtaReview, now, h(24));
    deliver(
        &app,
        vec![
            first.clone(),
            received(&acknowledged, fb::FeedbackChannel::OtaReview, now, h(72)),
        ],
    )
    .await;
    let t = timer(&app, &answered).await.expect("armed");
    assert_eq!(t.state, S::Pending as i32);
    assert_eq!(t.purpose, pb::TimerPurpose::ReviewReplyReminder as i32);
    assert_eq!(t.property_id, "sh-bund");
    assert!(t.guest_id.is_empty(), "no guest on a staff reminder");
    assert_eq!(
        to_utc(t.due_time).timestamp(),
        (now + h(18)).timestamp(),
        "6 h before a 24 h deadline"
    );
    let t72 = timer(&app, &acknowledged).await.expect("armed");
    assert_eq!(to_utc(t72.due_time).timestamp(), (now + h(54)).timestamp());

    // Redelivered, or the same review imported again: nothing more.
    let mut again = first.clone();
    again.event_id = uid();
    deliver(&app, vec![first.clone(), again]).await;
    let same = timer(&app, &answered).await.unwrap();
    assert_eq!(
        (same.timer_id, same.generation),
        (t.timer_id.clone(), t.generation)
    );

    // The public reply cancels it; a later copy of the review does not revive it. A case
    // acknowledged answers the guest, not the review on the site: that reminder stays.
    deliver(
        &app,
        vec![
            replied(&answered, fb::FeedbackReplyKind::OtaReply),
            replied(&acknowledged, fb::FeedbackReplyKind::Unspecified),
        ],
    )
    .await;
    let mut late_copy = first;
    late_copy.event_id = uid();
    deliver(&app, vec![late_copy]).await;
    assert_eq!(
        timer(&app, &answered).await.unwrap().state,
        S::Cancelled as i32
    );
    assert_eq!(
        timer(&app, &acknowledged).await.unwrap().state,
        S::Pending as i32
    );

    // Nothing for other feedback, or a review whose deadline has passed (an import).
    let email = uid();
    let old = uid();
    deliver(
        &app,
        vec![
            received(&email, fb::FeedbackChannel::Email, now, h(24)),
            received(&old, fb::FeedbackChannel::OtaReview, now - h(30), h(24)),
        ],
    )
    .await;
    assert!(timer(&app, &email).await.is_none());
    assert!(timer(&app, &old).await.is_none());

    // Unreplied with a quarter of its window left: the reminder fires at once, one alert.
    let waiting = uid();
    let due = now + h(1);
    deliver(
        &app,
        vec![received(
            &waiting,
            fb::FeedbackChannel::OtaReview,
            now - h(3),
            h(4),
        )],
    )
    .await;
    let fired = app
        .wait_for(&key(&waiting), &[S::Fired, S::Skipped, S::Failed], WAIT)
        .await;
    assert_eq!(fired.state, S::Fired as i32, "{fired:?}");
    assert!(!fired.message_id.is_empty());
    let alerts: Vec<(i16, Vec<u8>)> =
        sqlx::query_as("SELECT kind, spec FROM messages WHERE idempotency_key = $1")
            .bind(format!("timer:{}:1", fired.timer_id))
            .fetch_all(&notification)
            .await
            .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].0, nt::MessageKind::StaffReviewReplyDue as i16);
    let spec = nt::MessageSpec::decode(alerts[0].1.as_slice()).unwrap();
    let Some(nt::recipient::Kind::Staff(staff)) = spec.recipient.and_then(|r| r.kind) else {
        panic!("a staff alert")
    };
    assert_eq!(
        (staff.role, staff.property_id.as_str()),
        (nt::StaffRole::CustomerServiceManager as i32, "sh-bund")
    );
    assert_eq!(spec.variables["site"], "Trip.com");
    assert_eq!(spec.variables["feedback_id"], waiting);
    let local = due
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string();
    assert!(
        spec.variables["due_time"].starts_with(&local),
        "{} in local time",
        spec.variables["due_time"]
    );
    for v in spec.variables.values() {
        assert!(!v.contains("Gao") && !v.contains("shower"), "{v}");
    }
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE kind = $1")
        .bind(nt::MessageKind::StaffReviewReplyDue as i16)
        .fetch_one(&notification)
        .await
        .unwrap();
    assert_eq!(all, 1, "only the unreplied review's reminder went out");
}
