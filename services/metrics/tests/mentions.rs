//! ListStaffMentions: staff named in feedback are counted per praise and complaint, by
//! staff id when matched (else by name), most praise first (then fewest complaints), paged, within the caller's
//! scope.

mod common;

use chrono::Utc;
use common::*;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1::{Sentiment, StaffMention};
use guestloop_proto::metrics::v1 as pb;

fn mentioned(property: &str, mentions: Vec<StaffMention>) -> ev::EventEnvelope {
    let id = new_id("fb");
    let now = Utc::now();
    envelope(
        "feedback-intake",
        "feedback",
        &id,
        property,
        now,
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: id.clone(),
            property_id: property.into(),
            channel: 2,
            receive_time: Some(ts(now)),
            staff_mentions: mentions,
            ..Default::default()
        }),
    )
}

fn m(id: &str, name: &str, s: Sentiment) -> StaffMention {
    StaffMention {
        staff_id: id.into(),
        staff_name: name.into(),
        department: 2,
        sentiment: s as i32,
    }
}

#[tokio::test]
async fn staff_mentions_are_counted_and_ranked_by_praise() {
    let app = TestApp::spawn("").await;
    use Sentiment::*;
    let mut events = vec![
        mentioned(
            "sh-bund",
            vec![
                m("s-li", "Ms Li", Positive),
                m("", "Tom at the bar", Negative),
            ],
        ),
        mentioned("sh-bund", vec![m("s-li", "Li", Positive)]),
        mentioned("sh-bund", vec![m("s-li", "", Negative)]),
        mentioned(
            "sh-bund",
            vec![
                m("", "tom at the bar ", Positive),
                m("s-wu", "Wu", Positive),
            ],
        ),
        mentioned("hk-harbour", vec![m("s-chan", "Chan", Positive)]),
    ];
    // A redelivery counts nothing.
    events.push(events[0].clone());
    app.deliver(events).await;
    let day = local_day("sh-bund", Utc::now());
    let list = |page_size: i32, page_token: String| {
        let mut c = app.staff("sh-bund");
        async move {
            c.list_staff_mentions(pb::ListStaffMentionsRequest {
                scope: Some(property("sh-bund")),
                date_range: Some(range(day, day)),
                page: Some(guestloop_proto::common::v1::PageRequest {
                    page_size,
                    page_token,
                }),
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let all = list(50, String::new()).await;
    let rows: Vec<(String, String, i64, i64)> = all
        .staff
        .iter()
        .map(|s| {
            (
                s.staff_id.clone(),
                s.staff_name.clone(),
                s.praise_count,
                s.complaint_count,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("s-li".into(), "Ms Li".into(), 2, 1),
            ("s-wu".into(), "Wu".into(), 1, 0),
            ("".into(), "Tom at the bar".into(), 1, 1),
        ],
        "by id when matched, by name (case and spaces folded) when not; most praise first, \
         then fewest complaints"
    );
    assert!(all.staff.iter().all(|s| s.property_id == "sh-bund"));
    // Paged: two, then the rest.
    let first = list(2, String::new()).await;
    assert_eq!(first.staff.len(), 2);
    let rest = list(2, first.next_page_token.clone()).await;
    assert_eq!(rest.staff.len(), 1);
    assert_eq!(rest.staff[0].staff_name, "Tom at the bar");
    // Another property's staff cannot look.
    let denied = app
        .staff("hk-harbour")
        .list_staff_mentions(pb::ListStaffMentionsRequest {
            scope: Some(property("sh-bund")),
            date_range: Some(range(day, day)),
            page: None,
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::NotFound);
}
