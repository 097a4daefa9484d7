//! The OTA reply KPIs (issue 13) against a count made here: reviews received per site, the
//! replies posted (through RecordReviewReplyPosted with a deadline, or RecordFeedbackReply
//! without one), their times, and answers that are no public reply (a case acknowledged, an
//! e-mail) which must not count. One reply is delivered twice and counts once.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1::{FeedbackChannel, FeedbackReplyKind, OtaSite};
use guestloop_proto::metrics::v1::{self as pb, Kpi, KpiBreakdown, kpi_breakdown::Key};

const P: &str = "sh-bund";

/// (id, channel, site, reply: (kind, hours after receipt, deadline in hours)).
type Item = (
    &'static str,
    FeedbackChannel,
    OtaSite,
    Option<(FeedbackReplyKind, i64, Option<i64>)>,
);

fn received(id: &str, channel: FeedbackChannel, site: OtaSite, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        "feedback-intake",
        "feedback",
        id,
        P,
        at,
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: id.into(),
            property_id: P.into(),
            channel: channel as i32,
            receive_time: Some(ts(at)),
            language: "en".into(),
            ota_site: site as i32,
            ..Default::default()
        }),
    )
}

/// A reply `hours` after receipt; `due_hours` is the deadline when it came with one.
fn replied(
    id: &str,
    channel: FeedbackChannel,
    site: OtaSite,
    kind: FeedbackReplyKind,
    at: DateTime<Utc>,
    hours: i64,
    due_hours: Option<i64>,
) -> EventEnvelope {
    let mut e = envelope(
        "feedback-intake",
        "feedback",
        id,
        P,
        at + Duration::hours(hours),
        Payload::FeedbackReplied(ev::FeedbackReplied {
            feedback_id: id.into(),
            property_id: P.into(),
            channel: channel as i32,
            receive_time: Some(ts(at)),
            reply_time: Some(ts(at + Duration::hours(hours))),
            kind: kind as i32,
            ota_site: site as i32,
            reply_due_time: due_hours.map(|h| ts(at + Duration::hours(h))),
        }),
    );
    e.sequence = 2;
    e
}

fn value(r: &pb::GetKpisResponse, kpi: Kpi, site: Option<OtaSite>) -> pb::KpiValue {
    let want = site.map(|s| KpiBreakdown {
        key: Some(Key::OtaSite(s as i32)),
    });
    r.series
        .iter()
        .find(|s| s.kpi == kpi as i32 && s.breakdown == want)
        .and_then(|s| s.total)
        .unwrap_or_else(|| panic!("no {kpi:?} for {site:?}"))
}

#[tokio::test]
async fn reply_rate_time_and_deadline_per_site() {
    let app = TestApp::spawn("").await;
    let at = Utc::now() - Duration::days(3);
    let day = local_day(P, at);
    use FeedbackChannel::{Email, OtaReview};
    use FeedbackReplyKind::{OtaReply, Unspecified, WrittenReply};
    use OtaSite::{BookingCom, TripCom};
    // (id, channel, site, reply: (kind, hours after receipt, deadline in hours))
    let items: [Item; 8] = [
        ("bk-1", OtaReview, BookingCom, Some((OtaReply, 2, Some(12)))),
        (
            "bk-2",
            OtaReview,
            BookingCom,
            Some((OtaReply, 30, Some(24))),
        ),
        ("bk-3", OtaReview, BookingCom, Some((OtaReply, 10, None))),
        ("bk-4", OtaReview, BookingCom, None),
        ("tc-1", OtaReview, TripCom, Some((OtaReply, 6, Some(24)))),
        // Its case was acknowledged: an answer, but no public reply.
        ("tc-2", OtaReview, TripCom, Some((Unspecified, 1, None))),
        // Not a review at all.
        (
            "em-1",
            Email,
            OtaSite::Unspecified,
            Some((WrittenReply, 1, None)),
        ),
        ("em-2", Email, OtaSite::Unspecified, None),
    ];
    let mut events = Vec::new();
    for (id, channel, site, reply) in &items {
        events.push(received(id, *channel, *site, at));
        if let Some((kind, hours, due)) = reply {
            events.push(replied(id, *channel, *site, *kind, at, *hours, *due));
        }
    }
    let again = events[1].clone();
    app.deliver(events).await;
    app.deliver(vec![again]).await;

    let r = app
        .kpis(&mut app.head_office(), property(P), day, day, true)
        .await;
    // (KPI, site, numerator, denominator) for the rates, counted above.
    let rates = [
        (Kpi::OtaReplyRate, None, 4, 6),
        (Kpi::OtaReplyRate, Some(BookingCom), 3, 4),
        (Kpi::OtaReplyRate, Some(TripCom), 1, 2),
        (Kpi::OtaReplyWithinDeadlineRate, None, 2, 3),
        (Kpi::OtaReplyWithinDeadlineRate, Some(BookingCom), 1, 2),
        (Kpi::OtaReplyWithinDeadlineRate, Some(TripCom), 1, 1),
    ];
    for (kpi, site, num, den) in rates {
        let v = value(&r, kpi, site);
        assert_eq!(
            (v.numerator, v.denominator),
            (num, den),
            "{kpi:?} {site:?}: {v:?}"
        );
        let want = num as f64 / den as f64;
        assert!(
            (v.value.unwrap() - want).abs() < 1e-9,
            "{kpi:?} {site:?}: {v:?}"
        );
        // Judged against the chain's 95 % (standards.default.targets) once the sample
        // allows: none of these small samples does.
        assert_eq!(v.target, Some(0.95), "{kpi:?} {site:?}: {v:?}");
        assert_eq!(v.target_comparison, pb::TargetComparison::AtLeast as i32);
        assert!(!v.target_met);
    }
    // Mean reply time in seconds: (2 + 30 + 10 + 6) h / 4; (2 + 30 + 10) h / 3; 6 h.
    let means = [
        (None, 12 * 3600, 4),
        (Some(BookingCom), 14 * 3600, 3),
        (Some(TripCom), 6 * 3600, 1),
    ];
    for (site, secs, n) in means {
        let v = value(&r, Kpi::OtaReplyTimeMean, site);
        assert_eq!(v.denominator, n, "{site:?}: {v:?}");
        assert!(
            (v.value.unwrap() - secs as f64).abs() < 1e-6,
            "{site:?}: {v:?}"
        );
    }
    // The chain sees the same reviews.
    let c = app
        .kpis(&mut app.head_office(), chain(), day, day, false)
        .await;
    let v = total(&c, Kpi::OtaReplyRate);
    assert_eq!((v.numerator, v.denominator), (4, 6));
}
