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

/// The queue's request at sh-bund.
fn queue_req(states: &[St], overdue_only: bool) -> pb::ListReviewRepliesRequest {
    pb::ListReviewRepliesRequest {
        property_id: "sh-bund".into(),
        states: states.iter().map(|s| *s as i32).collect(),
        overdue_only,
        page: None,
    }
}

async fn queue_ids(
    c: &mut guestloop_client::FeedbackClient,
    req: pb::ListReviewRepliesRequest,
) -> Vec<String> {
    c.list_review_replies(req)
        .await
        .unwrap()
        .into_inner()
        .entries
        .into_iter()
        .map(|e| e.reply.unwrap().feedback_id)
        .collect()
}

#[tokio::test]
async fn the_reply_queue_lists_a_propertys_reviews_due_first_by_state_and_overdue() {
    let app = TestApp::spawn().await;
    let now = Utc::now();
    let h = Duration::hours;
    let negative = Review {
        site: pb::OtaSite::TripCom,
        rating: 1.0,
        scale: 5.0,
        language: "en",
        category: pb::Category::Noise,
        text: "Noisy all night.",
    };
    let positive = Review {
        site: pb::OtaSite::Expedia,
        rating: 5.0,
        scale: 5.0,
        language: "en",
        category: pb::Category::FoodAndBeverage,
        text: "Great breakfast.",
    };
    let mut staff = app.staff("sh-bund");
    // Due 24 h (negative) or 72 h after receipt.
    let late_suggested = submit_review(&app, &negative, now - h(30))
        .await
        .feedback_id; // due -6 h
    let fresh = submit_review(&app, &positive, now - h(1)).await.feedback_id; // due +71 h
    let pending = submit_review(&app, &negative, now - h(2)).await.feedback_id; // due +22 h
    let posted_in_time = submit_review(&app, &positive, now - h(80))
        .await
        .feedback_id; // due -8 h
    let posted_late = submit_review(&app, &positive, now - h(100))
        .await
        .feedback_id; // due -28 h
    // Past the queue's 60 days (never answered): not listed, still readable on its own.
    let too_old = submit_review(&app, &negative, now - Duration::days(61))
        .await
        .feedback_id;
    assert_eq!(reply_of(&app, &too_old).await.feedback_id, too_old);
    staff
        .draft_review_reply(pb::DraftReviewReplyRequest {
            feedback_id: pending.clone(),
            text: "We are sorry about the noise.".into(),
        })
        .await
        .unwrap();
    for (id, received, after) in [
        (&posted_in_time, now - h(80), h(70)),
        (&posted_late, now - h(100), h(80)),
    ] {
        staff
            .record_review_reply_posted(pb::RecordReviewReplyPostedRequest {
                feedback_id: id.clone(),
                text: "Thank you!".into(),
                post_time: Some(ts(received + after)),
            })
            .await
            .unwrap();
    }
    // Not in the queue: a review the site says needs no reply, one answered on the site
    // before anyone drafted here, other channels, other properties.
    for status in [
        pb::OtaReplyStatus::NotRequired,
        pb::OtaReplyStatus::Published,
    ] {
        let mut f = ota_review(
            "sh-bund",
            pb::OtaSite::Agoda,
            &format!("R-{}", next()),
            9.0,
            10.0,
        );
        f.ota_review.as_mut().unwrap().reply_status = status as i32;
        app.submit(submit_req(f)).await;
    }
    app.submit(submit_req(feedback(
        "sh-bund",
        pb::FeedbackChannel::Email,
        "not a review",
    )))
    .await;
    let lake = app
        .submit(submit_req(ota_review(
            "hz-lake",
            pb::OtaSite::BookingCom,
            "LAKE-1",
            9.0,
            10.0,
        )))
        .await
        .feedback
        .unwrap()
        .feedback_id;

    // Everything, the earliest due first, with the review's site facts.
    let all = staff
        .list_review_replies(queue_req(&[], false))
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = all
        .entries
        .iter()
        .map(|e| e.reply.as_ref().unwrap().feedback_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            &posted_late,
            &posted_in_time,
            &late_suggested,
            &pending,
            &fresh
        ]
        .map(String::as_str)
    );
    assert!(all.next_page_token.is_empty());
    // (feedback, state, overdue, site, rating)
    let want = [
        (&posted_late, St::Posted, true, pb::OtaSite::Expedia, 5.0),
        (
            &posted_in_time,
            St::Posted,
            false,
            pb::OtaSite::Expedia,
            5.0,
        ),
        (
            &late_suggested,
            St::Suggested,
            true,
            pb::OtaSite::TripCom,
            1.0,
        ),
        (
            &pending,
            St::PendingApproval,
            false,
            pb::OtaSite::TripCom,
            1.0,
        ),
        (&fresh, St::Suggested, false, pb::OtaSite::Expedia, 5.0),
    ];
    for (e, (id, state, overdue, site, rating)) in all.entries.iter().zip(want) {
        let r = e.reply.as_ref().unwrap();
        assert_eq!(
            (&r.feedback_id, r.state(), r.overdue, r.site(), e.rating),
            (id, state, overdue, site, rating)
        );
        assert_eq!((e.rating_scale, r.property_id.as_str()), (5.0, "sh-bund"));
        assert!(e.review_id.starts_with("R-") && e.receive_time.is_some());
        assert!(r.due_time.is_some() && !r.suggested_text.is_empty());
    }
    // A review nobody drafted for is still not stored.
    assert_eq!(app.count("review_replies").await, 3);

    // Filters: (states, overdue_only, ids in order)
    let cases: [(&[St], bool, Vec<&String>); 6] = [
        (&[St::Suggested], false, vec![&late_suggested, &fresh]),
        (&[St::PendingApproval, St::Approved], false, vec![&pending]),
        (&[St::Posted], false, vec![&posted_late, &posted_in_time]),
        (&[], true, vec![&posted_late, &late_suggested]),
        (&[St::Suggested], true, vec![&late_suggested]),
        (&[St::Approved], false, vec![]),
    ];
    for (states, overdue_only, want) in cases {
        let got = queue_ids(&mut staff, queue_req(states, overdue_only)).await;
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(got, want, "{states:?} overdue_only={overdue_only}");
    }

    // Pages of two, the token bound to the filter.
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let out = staff
            .list_review_replies(pb::ListReviewRepliesRequest {
                page: page(2, &token),
                ..queue_req(&[], false)
            })
            .await
            .unwrap()
            .into_inner();
        pages.push(
            out.entries
                .into_iter()
                .map(|e| e.reply.unwrap().feedback_id)
                .collect::<Vec<_>>(),
        );
        if out.next_page_token.is_empty() {
            break;
        }
        token = out.next_page_token;
    }
    assert_eq!(
        pages,
        [
            vec![posted_late.clone(), posted_in_time.clone()],
            vec![late_suggested.clone(), pending.clone()],
            vec![fresh.clone()],
        ]
    );
    let first = staff
        .list_review_replies(pb::ListReviewRepliesRequest {
            page: page(2, ""),
            ..queue_req(&[], false)
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert_invalid(
        staff
            .list_review_replies(pb::ListReviewRepliesRequest {
                page: page(2, &first),
                ..queue_req(&[St::Suggested], false)
            })
            .await,
        "page.page_token",
    );

    // Another property's staff see nothing of sh-bund; their own queue is theirs alone.
    let mut lake_staff = app.staff("hz-lake");
    assert_code(
        lake_staff.list_review_replies(queue_req(&[], false)).await,
        Code::NotFound,
    );
    let own = queue_ids(
        &mut lake_staff,
        pb::ListReviewRepliesRequest {
            property_id: "hz-lake".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(own, [lake]);
    // Head office sees every property's queue.
    assert_eq!(
        queue_ids(&mut app.head_office(), queue_req(&[St::Posted], false)).await,
        [posted_late, posted_in_time]
    );
}

#[tokio::test]
async fn a_bad_queue_request_names_the_field() {
    let app = TestApp::spawn().await;
    let mut c = app.staff("sh-bund");
    // (request, field)
    let cases = [
        (pb::ListReviewRepliesRequest::default(), "property_id"),
        (
            pb::ListReviewRepliesRequest {
                states: vec![St::Suggested as i32, 99],
                ..queue_req(&[], false)
            },
            "states[1]",
        ),
        (
            pb::ListReviewRepliesRequest {
                states: vec![St::Unspecified as i32],
                ..queue_req(&[], false)
            },
            "states[0]",
        ),
        (
            pb::ListReviewRepliesRequest {
                page: page(-1, ""),
                ..queue_req(&[], false)
            },
            "page.page_size",
        ),
        (
            pb::ListReviewRepliesRequest {
                page: page(10, "garbage"),
                ..queue_req(&[], false)
            },
            "page.page_token",
        ),
    ];
    for (req, field) in cases {
        assert_invalid(c.list_review_replies(req).await, field);
    }
    // An unknown property answers as one outside the caller's scope.
    assert_code(
        app.head_office()
            .list_review_replies(pb::ListReviewRepliesRequest {
                property_id: "nowhere".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn feedback_received_announces_the_replys_deadline() {
    let app = TestApp::spawn_with(DEADLINES).await;
    let received = Utc::now() - Duration::hours(1);
    let review = |site, rating| Review {
        site,
        rating,
        scale: 10.0,
        language: "en",
        category: pb::Category::Other,
        text: "The stay.",
    };
    // (review, hours to reply): the deadline GetReviewReply shows.
    let cases = [
        (review(pb::OtaSite::BookingCom, 3.0), 12),
        (review(pb::OtaSite::Agoda, 9.0), 48),
        (review(pb::OtaSite::TripCom, 3.0), 24),
    ];
    for (r, hours) in cases {
        let fb = submit_review(&app, &r, received).await;
        let events = app.events("feedback", &fb.feedback_id).await;
        let Payload::FeedbackReceived(fr) = payload(&events[0]).clone() else {
            panic!("FeedbackReceived first")
        };
        let due = time_of(&fr.reply_due_time);
        assert_eq!(
            due.timestamp(),
            (received + Duration::hours(hours)).timestamp(),
            "{:?}",
            r.site
        );
        let shown = reply_of(&app, &fb.feedback_id).await;
        assert_eq!(due, time_of(&shown.due_time), "{:?}", r.site);
    }
    // Other channels have no reply deadline.
    let email = app
        .submit(submit_req(feedback(
            "sh-bund",
            pb::FeedbackChannel::Email,
            "not a review",
        )))
        .await
        .feedback
        .unwrap();
    let events = app.events("feedback", &email.feedback_id).await;
    let Payload::FeedbackReceived(fr) = payload(&events[0]).clone() else {
        panic!("FeedbackReceived first")
    };
    assert!(fr.reply_due_time.is_none());
}
