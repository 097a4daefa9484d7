//! Bad input (issue 3, section 7): scores out of range, an unknown channel, empty text where
//! it is required, oversized text, times in the future and every other malformed field
//! answer INVALID_ARGUMENT naming the field (google.rpc.BadRequest), and nothing is
//! half-written: feedback, cases, case events and the outbox are exactly as before. A
//! guest-profile that is down answers UNAVAILABLE (retryable) without writing either.

mod common;

use common::*;
use guestloop_proto::feedback::v1 as pb;
use pb::FeedbackChannel as Ch;
use tonic::Code;

fn plain() -> pb::Feedback {
    feedback("sh-bund", Ch::Email, "The room was fine.")
}

/// (what, request, the field it must name).
fn bad_submissions() -> Vec<(&'static str, pb::SubmitFeedbackRequest, &'static str)> {
    let with = |f: pb::Feedback| submit_req(f);
    let future = ts(chrono::Utc::now() + chrono::Duration::hours(1));
    let mut v = vec![
        (
            "no feedback",
            pb::SubmitFeedbackRequest::default(),
            "feedback",
        ),
        (
            "no property",
            with(pb::Feedback {
                property_id: String::new(),
                ..plain()
            }),
            "feedback.property_id",
        ),
        (
            "unknown property",
            with(pb::Feedback {
                property_id: "paris-opera".into(),
                ..plain()
            }),
            "feedback.property_id",
        ),
        (
            "unknown channel",
            with(pb::Feedback {
                channel: 99,
                ..plain()
            }),
            "feedback.channel",
        ),
        (
            "no channel",
            with(pb::Feedback {
                channel: 0,
                ..plain()
            }),
            "feedback.channel",
        ),
        (
            "empty text",
            with(pb::Feedback {
                text: String::new(),
                ..plain()
            }),
            "feedback.text",
        ),
        (
            "blank text",
            with(pb::Feedback {
                text: " \n\t ".into(),
                ..plain()
            }),
            "feedback.text",
        ),
        (
            "oversized text",
            with(pb::Feedback {
                text: "很".repeat(10_001),
                ..plain()
            }),
            "feedback.text",
        ),
        (
            "control characters",
            with(pb::Feedback {
                text: "bad\u{0007}bell".into(),
                ..plain()
            }),
            "feedback.text",
        ),
        (
            "received in the future",
            with(pb::Feedback {
                receive_time: Some(future),
                ..plain()
            }),
            "feedback.receive_time",
        ),
        (
            "received before 2000",
            with(pb::Feedback {
                receive_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 0,
                }),
                ..plain()
            }),
            "feedback.receive_time",
        ),
        (
            "unknown language",
            with(pb::Feedback {
                language: "fr".into(),
                ..plain()
            }),
            "feedback.language",
        ),
        (
            "unknown category",
            with(pb::Feedback {
                category: 99,
                ..plain()
            }),
            "feedback.category",
        ),
        (
            "unknown sentiment",
            with(pb::Feedback {
                sentiment: -1,
                ..plain()
            }),
            "feedback.sentiment",
        ),
        (
            "bad stay id",
            with(pb::Feedback {
                stay_id: "1208".into(),
                ..plain()
            }),
            "feedback.stay_id",
        ),
        (
            "long external id",
            with(pb::Feedback {
                external_id: "x".repeat(129),
                ..plain()
            }),
            "feedback.external_id",
        ),
        (
            "too many tags",
            with(pb::Feedback {
                tags: (0..21).map(|i| format!("t{i}")).collect(),
                ..plain()
            }),
            "feedback.tags",
        ),
        (
            "empty tag",
            with(pb::Feedback {
                tags: vec!["ok".into(), " ".into()],
                ..plain()
            }),
            "feedback.tags[1]",
        ),
        (
            "anonymous staff mention",
            with(pb::Feedback {
                staff_mentions: vec![pb::StaffMention::default()],
                ..plain()
            }),
            "feedback.staff_mentions[0].staff_id",
        ),
        (
            "unknown staff department",
            with(pb::Feedback {
                staff_mentions: vec![pb::StaffMention {
                    staff_id: "S-1".into(),
                    department: 99,
                    ..Default::default()
                }],
                ..plain()
            }),
            "feedback.staff_mentions[0].department",
        ),
        (
            "OTA details on a phone call",
            with(pb::Feedback {
                ota_review: ota_review("sh-bund", pb::OtaSite::Agoda, "A-1", 5.0, 10.0).ota_review,
                ..plain()
            }),
            "feedback.ota_review",
        ),
        (
            "OTA review without details",
            with(pb::Feedback {
                channel: Ch::OtaReview as i32,
                ..plain()
            }),
            "feedback.ota_review",
        ),
        (
            "OTA review without a site",
            with(ota_review(
                "sh-bund",
                pb::OtaSite::Unspecified,
                "A-1",
                5.0,
                10.0,
            )),
            "feedback.ota_review.site",
        ),
        (
            "OTA other site unnamed",
            with(ota_review("sh-bund", pb::OtaSite::Other, "A-1", 5.0, 10.0)),
            "feedback.ota_review.site_name",
        ),
        (
            "rating over the scale",
            with(ota_review("sh-bund", pb::OtaSite::Agoda, "A-1", 11.0, 10.0)),
            "feedback.ota_review.rating",
        ),
        (
            "negative rating",
            with(ota_review("sh-bund", pb::OtaSite::Agoda, "A-1", -1.0, 10.0)),
            "feedback.ota_review.rating",
        ),
        (
            "rating without a scale",
            with(ota_review("sh-bund", pb::OtaSite::Agoda, "A-1", 4.0, 0.0)),
            "feedback.ota_review.rating",
        ),
        (
            "NaN scale",
            with(ota_review(
                "sh-bund",
                pb::OtaSite::Agoda,
                "A-1",
                4.0,
                f64::NAN,
            )),
            "feedback.ota_review.rating_scale",
        ),
        (
            "CSAT out of range",
            with(survey("sh-bund", Some(9), None, &[])),
            "feedback.survey.csat",
        ),
        (
            "NPS out of range",
            with(survey("sh-bund", None, Some(42), &[])),
            "feedback.survey.nps",
        ),
        (
            "CSI out of range",
            with(survey(
                "sh-bund",
                None,
                None,
                &[(pb::CsiDimension::Location, 12)],
            )),
            "feedback.survey.csi_scores[0].score",
        ),
        (
            "a survey without answers",
            with(survey("sh-bund", None, None, &[])),
            "feedback.text",
        ),
        (
            "bad guest id",
            pb::SubmitFeedbackRequest {
                guest: Some(pb::GuestReference {
                    guest_id: "wei".into(),
                    ..Default::default()
                }),
                ..with(plain())
            },
            "guest.guest_id",
        ),
        (
            "bad guest email",
            pb::SubmitFeedbackRequest {
                guest: Some(pb::GuestReference {
                    email: "wei at example".into(),
                    ..Default::default()
                }),
                ..with(plain())
            },
            "guest.email",
        ),
        (
            "bad guest phone",
            pb::SubmitFeedbackRequest {
                guest: Some(pb::GuestReference {
                    phone: "13800138000".into(),
                    ..Default::default()
                }),
                ..with(plain())
            },
            "guest.phone",
        ),
        (
            "long idempotency key",
            pb::SubmitFeedbackRequest {
                idempotency_key: "k".repeat(129),
                ..with(plain())
            },
            "idempotency_key",
        ),
    ];
    let complaint_with = |d: pb::CaseDetails| pb::SubmitFeedbackRequest {
        complaint: Some(d),
        ..complaint("sh-bund", Ch::Phone, "Noisy")
    };
    v.push((
        "unknown complaint category",
        complaint_with(pb::CaseDetails {
            category: 99,
            ..Default::default()
        }),
        "complaint.category",
    ));
    v.push((
        "unknown complaint urgency",
        complaint_with(pb::CaseDetails {
            urgency: 9,
            ..Default::default()
        }),
        "complaint.urgency",
    ));
    v.push((
        "unknown complaint department",
        complaint_with(pb::CaseDetails {
            department: 99,
            ..Default::default()
        }),
        "complaint.department",
    ));
    v.push((
        "long complaint title",
        complaint_with(pb::CaseDetails {
            title: "t".repeat(201),
            ..Default::default()
        }),
        "complaint.title",
    ));
    v
}

#[tokio::test]
async fn bad_submissions_name_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    // Something there already, so "unchanged" means something.
    let existing = app.complaint_case("sh-bund", "An earlier complaint.").await;
    app.transition(&existing.case_id, pb::CaseStatus::Acknowledged)
        .await;
    let before = app.dump().await;
    let mut c = app.head_office();
    for (what, req, field) in bad_submissions() {
        let status = c.submit_feedback(req.clone()).await.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        let fields = violated_fields(&status);
        assert!(
            fields.iter().any(|f| f == field),
            "{what}: expected `{field}` in {fields:?} ({})",
            status.message()
        );
        // An import item fails the same way, alone, naming the same field.
        let r = c
            .import_feedback(tokio_stream::iter(vec![pb::ImportFeedbackRequest {
                feedback: req.feedback,
                guest: req.guest,
                idempotency_key: req.idempotency_key,
                complaint: req.complaint,
            }]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.failed_count, 1, "{what}");
        assert_eq!(
            r.results[0].error_code,
            Code::InvalidArgument as i32,
            "{what}"
        );
        assert!(
            r.results[0].error_message.contains(field),
            "{what}: {}",
            r.results[0].error_message
        );
    }
    assert_eq!(app.dump().await, before, "nothing half-written");
}

#[tokio::test]
async fn every_violation_is_reported_at_once_and_limits_are_inclusive() {
    let app = TestApp::spawn().await;
    let status = assert_invalid(
        app.head_office()
            .submit_feedback(pb::SubmitFeedbackRequest {
                feedback: Some(pb::Feedback {
                    channel: 99,
                    text: String::new(),
                    receive_time: Some(ts(chrono::Utc::now() + chrono::Duration::days(1))),
                    language: "de".into(),
                    ..plain()
                }),
                guest: Some(pb::GuestReference {
                    email: "nope".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        "feedback.channel",
    );
    let fields = violated_fields(&status);
    for f in [
        "feedback.channel",
        "feedback.text",
        "feedback.receive_time",
        "feedback.language",
        "guest.email",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }

    // Exactly 10,000 characters (of Chinese, three bytes each) is accepted.
    let long = "很".repeat(10_000);
    let r = app
        .submit(submit_req(pb::Feedback {
            text: long.clone(),
            ..plain()
        }))
        .await;
    assert_eq!(r.feedback.unwrap().text.chars().count(), 10_000);
    // A receive time a minute ahead (clock skew) is accepted.
    let r = app
        .submit(submit_req(pb::Feedback {
            receive_time: Some(ts(chrono::Utc::now() + chrono::Duration::seconds(60))),
            ..plain()
        }))
        .await;
    assert!(r.created);
    // A survey with a score needs no text.
    assert!(
        app.submit(submit_req(survey("sh-bund", Some(4), None, &[])))
            .await
            .created
    );
}

#[tokio::test]
async fn bad_case_requests_name_the_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let case = app
        .complaint_case("sh-bund", "The safe does not open.")
        .await;
    let id = case.case_id.clone();
    let before = app.dump().await;
    let mut c = app.manager("sh-bund");
    assert_invalid(
        c.get_case(pb::GetCaseRequest {
            case_id: String::new(),
        })
        .await,
        "case_id",
    );
    assert_invalid(
        c.get_feedback(pb::GetFeedbackRequest {
            feedback_id: "abc".into(),
        })
        .await,
        "feedback_id",
    );
    assert_invalid(
        c.transition_case(pb::TransitionCaseRequest {
            case_id: id.clone(),
            to_status: pb::CaseStatus::Acknowledged as i32,
            note: "n".repeat(4001),
            ..Default::default()
        })
        .await,
        "note",
    );
    assert_invalid(
        c.transition_case(pb::TransitionCaseRequest {
            case_id: id.clone(),
            to_status: pb::CaseStatus::Acknowledged as i32,
            contact_channel: 77,
            ..Default::default()
        })
        .await,
        "contact_channel",
    );
    assert_invalid(
        c.transition_case(pb::TransitionCaseRequest {
            case_id: id.clone(),
            to_status: pb::CaseStatus::Acknowledged as i32,
            compensation: Some(pb::Compensation {
                kind: pb::CompensationKind::Refund as i32,
                value: cny(-5),
                description: String::new(),
            }),
            ..Default::default()
        })
        .await,
        "compensation.value.amount_minor",
    );
    assert_invalid(
        c.assign_case(pb::AssignCaseRequest {
            case_id: id.clone(),
            department: 42,
            ..Default::default()
        })
        .await,
        "department",
    );
    assert_invalid(
        c.escalate_case(pb::EscalateCaseRequest {
            case_id: id.clone(),
            to_tier: 9,
            trigger: pb::EscalationTrigger::Manager as i32,
            reason: "x".into(),
            ..Default::default()
        })
        .await,
        "to_tier",
    );
    assert_invalid(
        c.open_case(pb::OpenCaseRequest {
            feedback_id: case.feedback_ids[0].clone(),
            details: Some(pb::CaseDetails {
                urgency: 12,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await,
        "details.urgency",
    );
    assert_invalid(
        c.list_case_events(pb::ListCaseEventsRequest {
            case_id: id.clone(),
            page: page(0, "seven"),
        })
        .await,
        "page.page_token",
    );
    assert_invalid(
        c.list_feedback(pb::ListFeedbackRequest {
            filter: Some(pb::FeedbackFilter {
                channels: vec![1, 99],
                ..Default::default()
            }),
            page: None,
        })
        .await,
        "filter.channels[1]",
    );
    assert_invalid(
        c.list_cases(pb::ListCasesRequest {
            filter: Some(pb::CaseFilter {
                guest_id: "somebody".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "filter.guest_id",
    );
    assert_invalid(
        c.list_cases(pb::ListCasesRequest {
            order_by: 99,
            ..Default::default()
        })
        .await,
        "order_by",
    );
    assert_invalid(
        c.create_incident(pb::CreateIncidentRequest {
            incident: Some(pb::Incident {
                property_id: "sh-bund".into(),
                title: "x".into(),
                start_time: Some(ts(chrono::Utc::now() + chrono::Duration::days(2))),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "incident.start_time",
    );
    assert_invalid(
        c.get_incident(pb::GetIncidentRequest {
            incident_id: "x".into(),
        })
        .await,
        "incident_id",
    );
    assert_eq!(app.dump().await, before, "nothing written");
}

#[tokio::test]
async fn a_guest_profile_that_is_down_is_unavailable_not_unknown() {
    // Nothing listens on port 1.
    let app = TestApp::spawn_with("[peers]\nguest_profile = \"http://127.0.0.1:1\"\n").await;
    let before = app.counts().await;
    let status = app
        .head_office()
        .submit_feedback(pb::SubmitFeedbackRequest {
            guest: Some(pb::GuestReference {
                email: "li@example.com".into(),
                ..Default::default()
            }),
            ..complaint("sh-bund", Ch::Phone, "Noisy")
        })
        .await
        .expect_err("the guest cannot be looked up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        app.counts().await,
        before,
        "nothing written: the hotel retries later"
    );
    // Anonymous feedback needs no lookup.
    assert!(
        app.submit(complaint("sh-bund", Ch::CommentCard, "Noisy"))
            .await
            .created
    );
}
