//! OTA review replies (issue 13): the deadline per site (shorter for a negative review),
//! the suggestion in the review's language quoting its category and the guest's words, a
//! manager's approval before a negative review's reply is posted, the posted text and time
//! recorded on the review, and the FeedbackReplied that metrics counts per site.

mod common;

use chrono::{Duration, Utc};
use common::*;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::feedback::v1::ReviewReplyState as St;
use guestloop_testkit::grpc::{assert_code, assert_invalid};
use tonic::Code;

/// Booking.com answers negative reviews in 12 h; Agoda positive ones in 48 h; the rest of
/// the chain keeps the defaults (24 h negative, 72 h otherwise).
const DEADLINES: &str = r#"
[ota_replies.sites.booking_com]
negative_within = "12h"
[ota_replies.sites.agoda]
positive_within = "48h"
"#;

struct Review<'a> {
    site: pb::OtaSite,
    rating: f64,
    scale: f64,
    language: &'a str,
    category: pb::Category,
    text: &'a str,
}

async fn submit_review(
    app: &TestApp,
    r: &Review<'_>,
    received: chrono::DateTime<Utc>,
) -> pb::Feedback {
    let mut f = ota_review(
        "sh-bund",
        r.site,
        &format!("R-{}", next()),
        r.rating,
        r.scale,
    );
    f.language = r.language.into();
    f.category = r.category as i32;
    f.text = r.text.into();
    f.receive_time = Some(ts(received));
    app.submit(submit_req(f)).await.feedback.unwrap()
}

async fn reply_of(app: &TestApp, feedback_id: &str) -> pb::ReviewReply {
    app.staff("sh-bund")
        .get_review_reply(pb::GetReviewReplyRequest {
            feedback_id: feedback_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap()
}

fn feedback_replied(
    app_events: &[guestloop_proto::events::v1::EventEnvelope],
) -> Vec<guestloop_proto::events::v1::FeedbackReplied> {
    app_events
        .iter()
        .filter_map(|e| match payload(e) {
            Payload::FeedbackReplied(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn each_review_gets_its_sites_deadline_and_a_suggestion_in_its_language() {
    let app = TestApp::spawn_with(DEADLINES).await;
    let received = Utc::now() - Duration::hours(1);
    // (review, negative, hours to reply, words the suggestion must hold)
    let cases = [
        (
            Review {
                site: pb::OtaSite::BookingCom,
                rating: 4.0,
                scale: 10.0,
                language: "en",
                category: pb::Category::Hygiene,
                text: "Hair in the shower and a dirty carpet.",
            },
            true,
            12,
            ["cleanliness", "sorry"],
        ),
        (
            Review {
                site: pb::OtaSite::BookingCom,
                rating: 9.0,
                scale: 10.0,
                language: "en",
                category: pb::Category::ServiceAttitude,
                text: "Lovely front desk team.",
            },
            false,
            72,
            ["our service", "kind review"],
        ),
        (
            Review {
                site: pb::OtaSite::TripCom,
                rating: 2.0,
                scale: 5.0,
                language: "zh-CN",
                category: pb::Category::Hygiene,
                text: "房间很脏，地毯有污渍。",
            },
            true,
            24,
            ["卫生清洁", "深表歉意"],
        ),
        (
            Review {
                site: pb::OtaSite::Agoda,
                rating: 5.0,
                scale: 5.0,
                language: "zh-TW",
                category: pb::Category::ServiceAttitude,
                text: "服務人員非常親切。",
            },
            false,
            48,
            ["服務態度", "感謝您的好評"],
        ),
    ];
    for (review, negative, hours, words) in cases {
        let fb = submit_review(&app, &review, received).await;
        let reply = reply_of(&app, &fb.feedback_id).await;
        let what = format!("{:?} {}", review.site, review.language);
        assert_eq!(reply.state(), St::Suggested, "{what}");
        assert_eq!(reply.needs_approval, negative, "{what}");
        assert_eq!(reply.site, review.site as i32, "{what}");
        assert_eq!(
            time_of(&reply.due_time).timestamp(),
            (received + Duration::hours(hours)).timestamp(),
            "{what}"
        );
        assert!(!reply.overdue, "{what}");
        assert_eq!(reply.language, review.language, "{what}");
        for w in words.iter().chain([&review.text]) {
            assert!(
                reply.suggested_text.contains(w),
                "{what}: {w} in {}",
                reply.suggested_text
            );
        }
        assert!(
            reply.text.is_empty() && reply.drafted_by.is_empty(),
            "{what}"
        );
    }
    // A suggestion is computed, not stored.
    assert_eq!(app.count("review_replies").await, 0);
}

#[tokio::test]
async fn a_negative_reviews_reply_is_approved_by_a_manager_before_it_is_posted() {
    let app = TestApp::spawn().await;
    let received = Utc::now() - Duration::hours(3);
    let review = Review {
        site: pb::OtaSite::TripCom,
        rating: 1.0,
        scale: 5.0,
        language: "en",
        category: pb::Category::Noise,
        text: "Building work from 7 am, no sleep at all.",
    };
    let fb = submit_review(&app, &review, received).await;
    let id = fb.feedback_id.clone();
    let mut staff = app.staff("sh-bund");
    let mut boss = app.manager("sh-bund");

    let draft = "We are sorry about the building work; it has now finished.";
    let r = staff
        .draft_review_reply(pb::DraftReviewReplyRequest {
            feedback_id: id.clone(),
            text: draft.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!((r.state(), r.text.as_str()), (St::PendingApproval, draft));
    assert!(!r.drafted_by.is_empty() && r.draft_time.is_some());

    let post =
        |text: &str, at: Option<prost_types::Timestamp>| pb::RecordReviewReplyPostedRequest {
            feedback_id: id.clone(),
            text: text.into(),
            post_time: at,
        };
    assert_code(
        staff.record_review_reply_posted(post("", None)).await,
        Code::FailedPrecondition,
    );
    assert_code(
        staff
            .approve_review_reply(pb::ApproveReviewReplyRequest {
                feedback_id: id.clone(),
            })
            .await,
        Code::PermissionDenied,
    );
    let r = boss
        .approve_review_reply(pb::ApproveReviewReplyRequest {
            feedback_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(r.state(), St::Approved);
    assert!(!r.approved_by.is_empty() && r.approve_time.is_some());
    assert_code(
        boss.approve_review_reply(pb::ApproveReviewReplyRequest {
            feedback_id: id.clone(),
        })
        .await,
        Code::FailedPrecondition,
    );
    // Only the approved words may go out.
    assert_code(
        staff
            .record_review_reply_posted(post("Something else entirely.", None))
            .await,
        Code::FailedPrecondition,
    );
    let posted_at = received + Duration::hours(2);
    let out = staff
        .record_review_reply_posted(post("", Some(ts(posted_at))))
        .await
        .unwrap()
        .into_inner();
    let (r, f) = (out.reply.unwrap(), out.feedback.unwrap());
    assert_eq!((r.state(), r.text.as_str()), (St::Posted, draft));
    assert_eq!(time_of(&r.post_time).timestamp(), posted_at.timestamp());
    assert!(!r.overdue, "posted 2 h after receipt, due in 24 h");
    assert_eq!(time_of(&f.reply_time).timestamp(), posted_at.timestamp());
    assert_eq!(
        f.ota_review.unwrap().reply_status,
        pb::OtaReplyStatus::Published as i32
    );

    // A retry answers with the reply as posted; nothing changes after it.
    let again = staff
        .record_review_reply_posted(post("", Some(ts(posted_at + Duration::hours(1)))))
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(time_of(&again.post_time).timestamp(), posted_at.timestamp());
    assert_code(
        staff
            .draft_review_reply(pb::DraftReviewReplyRequest {
                feedback_id: id.clone(),
                text: "changed my mind".into(),
            })
            .await,
        Code::FailedPrecondition,
    );

    let replied = feedback_replied(&app.events("feedback", &id).await);
    assert_eq!(replied.len(), 1, "{replied:?}");
    let e = &replied[0];
    assert_eq!(e.kind, pb::FeedbackReplyKind::OtaReply as i32);
    assert_eq!(e.ota_site, pb::OtaSite::TripCom as i32);
    assert_eq!(time_of(&e.reply_time).timestamp(), posted_at.timestamp());
    assert_eq!(
        time_of(&e.reply_due_time).timestamp(),
        (received + Duration::hours(24)).timestamp()
    );
    assert_eq!(app.count("review_replies").await, 1);

    // A manager's own draft of a negative review's reply is approved by writing it.
    let other = submit_review(&app, &review, received).await;
    let r = boss
        .draft_review_reply(pb::DraftReviewReplyRequest {
            feedback_id: other.feedback_id.clone(),
            text: draft.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(r.state(), St::Approved);
    assert!(r.needs_approval);
    assert_eq!(r.approved_by, r.drafted_by);
    // Staff changing it sends it back to a manager.
    let r = staff
        .draft_review_reply(pb::DraftReviewReplyRequest {
            feedback_id: other.feedback_id.clone(),
            text: "We apologise for the noise.".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(r.state(), St::PendingApproval);
    assert!(r.approved_by.is_empty());
}

#[tokio::test]
async fn a_positive_reviews_reply_is_posted_without_approval_and_late_shows_overdue() {
    let app = TestApp::spawn().await;
    let received = Utc::now() - Duration::hours(100);
    let review = Review {
        site: pb::OtaSite::Expedia,
        rating: 5.0,
        scale: 5.0,
        language: "en",
        category: pb::Category::FoodAndBeverage,
        text: "Best breakfast in Shanghai.",
    };
    let fb = submit_review(&app, &review, received).await;
    let mut staff = app.staff("sh-bund");
    let before = reply_of(&app, &fb.feedback_id).await;
    assert!(before.overdue, "100 h after receipt with 72 h to reply");
    // Nothing drafted and no text: the text is required.
    assert_invalid(
        staff
            .record_review_reply_posted(pb::RecordReviewReplyPostedRequest {
                feedback_id: fb.feedback_id.clone(),
                ..Default::default()
            })
            .await,
        "text",
    );
    let posted_at = received + Duration::hours(80);
    let r = staff
        .record_review_reply_posted(pb::RecordReviewReplyPostedRequest {
            feedback_id: fb.feedback_id.clone(),
            text: "Thank you, our chefs are delighted!".into(),
            post_time: Some(ts(posted_at)),
        })
        .await
        .unwrap()
        .into_inner()
        .reply
        .unwrap();
    assert_eq!(r.state(), St::Posted);
    assert!(!r.needs_approval);
    assert!(r.overdue, "posted 80 h after receipt, due in 72 h");
    assert!(r.approved_by.is_empty());
    let replied = feedback_replied(&app.events("feedback", &fb.feedback_id).await);
    assert_eq!(replied.len(), 1, "{replied:?}");
    assert_eq!(replied[0].ota_site, pb::OtaSite::Expedia as i32);
}

#[tokio::test]
async fn bad_reply_requests_name_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let received = Utc::now() - Duration::hours(1);
    let review = Review {
        site: pb::OtaSite::Google,
        rating: 4.0,
        scale: 5.0,
        language: "en",
        category: pb::Category::Other,
        text: "Nice.",
    };
    let fb = submit_review(&app, &review, received).await;
    let email = app
        .submit(submit_req(feedback(
            "sh-bund",
            pb::FeedbackChannel::Email,
            "not a review",
        )))
        .await
        .feedback
        .unwrap();
    let before = app.dump().await;
    let mut c = app.staff("sh-bund");
    let id = fb.feedback_id.clone();
    let draft = |feedback_id: &str, text: String| pb::DraftReviewReplyRequest {
        feedback_id: feedback_id.into(),
        text,
    };
    let post = |at: chrono::DateTime<Utc>| pb::RecordReviewReplyPostedRequest {
        feedback_id: id.clone(),
        text: "Thanks".into(),
        post_time: Some(ts(at)),
    };
    assert_invalid(
        c.get_review_reply(pb::GetReviewReplyRequest {
            feedback_id: "nope".into(),
        })
        .await,
        "feedback_id",
    );
    assert_invalid(
        c.get_review_reply(pb::GetReviewReplyRequest {
            feedback_id: email.feedback_id.clone(),
        })
        .await,
        "feedback_id",
    );
    assert_invalid(c.draft_review_reply(draft(&id, "  ".into())).await, "text");
    assert_invalid(
        c.draft_review_reply(draft(&id, "x".repeat(4001))).await,
        "text",
    );
    assert_invalid(
        c.draft_review_reply(draft(&email.feedback_id, "Thanks".into()))
            .await,
        "feedback_id",
    );
    assert_invalid(
        c.record_review_reply_posted(post(Utc::now() + Duration::hours(2)))
            .await,
        "post_time",
    );
    assert_invalid(
        c.record_review_reply_posted(post(received - Duration::hours(2)))
            .await,
        "post_time",
    );
    assert_eq!(app.dump().await, before);
}

#[tokio::test]
async fn erasing_the_reviewer_marks_the_reply_text_and_keeps_its_facts() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let mut f = ota_review("sh-bund", pb::OtaSite::BookingCom, "BK-ERASE-1", 3.0, 10.0);
    f.text = "Mrs Gao in 1208: the shower was broken.".into();
    let fb = app
        .submit(pb::SubmitFeedbackRequest {
            guest: by_id(&g),
            ..submit_req(f)
        })
        .await
        .feedback
        .unwrap();
    let other = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::BookingCom,
            "BK-KEEP-1",
            3.0,
            10.0,
        )))
        .await
        .feedback
        .unwrap();
    let text = "Dear Mrs Gao, we are sorry about the shower in 1208.";
    for id in [&fb.feedback_id, &other.feedback_id] {
        app.manager("sh-bund")
            .draft_review_reply(pb::DraftReviewReplyRequest {
                feedback_id: id.clone(),
                text: text.into(),
            })
            .await
            .unwrap();
    }
    let events = app.erase_guest(&g.guest_id).await;
    assert_eq!(events.len(), 1);
    app.deliver_all(events).await;
    let erased = reply_of(&app, &fb.feedback_id).await;
    assert_eq!(erased.text, "[erased]");
    assert!(
        !erased.suggested_text.contains("Gao"),
        "{}",
        erased.suggested_text
    );
    assert_eq!(erased.state(), St::Approved);
    assert!(!erased.drafted_by.is_empty() && erased.due_time.is_some());
    // Another guest's review keeps its reply.
    assert_eq!(reply_of(&app, &other.feedback_id).await.text, text);
}
