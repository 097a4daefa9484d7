//! Surveys and the closed loop (issue 3, section 2): CSAT 1-5, NPS 0-10 and CSI dimensions
//! 1-10 validated; a low score (configurable; by default NPS <= 6, CSAT <= 2, any CSI
//! dimension <= 4) opens a case on its own; a good survey opens none; SurveyAnswered goes
//! out through the outbox with the scores.

mod common;

use common::*;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1 as gp;
use pb::CsiDimension as Dim;

async fn submit_survey(app: &TestApp, f: pb::Feedback) -> pb::SubmitFeedbackResponse {
    app.submit(submit_req(f)).await
}

#[tokio::test]
async fn a_low_score_opens_a_case_and_a_good_survey_opens_none() {
    let app = TestApp::spawn().await;
    let good = [
        (Some(3), None, vec![]),
        (None, Some(7), vec![]),
        (None, None, vec![(Dim::Cleanliness, 5), (Dim::Value, 10)]),
        (
            Some(5),
            Some(10),
            vec![
                (Dim::Service, 9),
                (Dim::Location, 8),
                (Dim::Room, 7),
                (Dim::FoodAndBeverage, 6),
            ],
        ),
    ];
    for (csat, nps, csi) in good {
        let r = submit_survey(&app, survey("sh-bund", csat, nps, &csi)).await;
        assert!(r.case.is_none(), "{csat:?} {nps:?} {csi:?} is not low");
        assert!(!r.feedback.unwrap().survey.unwrap().low_score);
    }
    assert_eq!(app.count("cases").await, 0);

    let low = [
        (Some(2), None, vec![]),
        (Some(1), Some(10), vec![]),
        (None, Some(6), vec![]),
        (None, Some(0), vec![]),
        (
            Some(5),
            Some(9),
            vec![(Dim::Service, 9), (Dim::Cleanliness, 4)],
        ),
        (None, None, vec![(Dim::Value, 1)]),
    ];
    for (csat, nps, csi) in low {
        let r = submit_survey(&app, survey("sh-bund", csat, nps, &csi)).await;
        let case = r
            .case
            .unwrap_or_else(|| panic!("{csat:?} {nps:?} {csi:?} is low: a case opens"));
        assert_eq!(case.open_reason, pb::CaseOpenReason::LowSurveyScore as i32);
        assert_eq!(case.title, "Low survey score", "no text: a generic title");
        assert_eq!(case.status, pb::CaseStatus::Received as i32);
        assert_eq!(
            case.escalation_tier,
            pb::EscalationTier::CustomerServiceManager as i32,
            "negative feedback starts with the customer-service manager"
        );
        let f = r.feedback.unwrap();
        assert!(f.survey.unwrap().low_score);
        assert_eq!(f.case_id, case.case_id);
    }
    assert_eq!(app.count("cases").await, 6);

    // The low-score filter finds exactly those.
    let low_items = app
        .head_office()
        .list_feedback(pb::ListFeedbackRequest {
            filter: Some(pb::FeedbackFilter {
                low_score: Some(true),
                ..Default::default()
            }),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert_eq!(low_items.len(), 6);
    assert!(low_items.iter().all(|f| !f.case_id.is_empty()));

    // Scores on another channel (a comment card with boxes to tick) count the same.
    let mut card = survey("sh-bund", Some(1), None, &[]);
    card.channel = pb::FeedbackChannel::CommentCard as i32;
    card.text = "Never again.".into();
    let r = submit_survey(&app, card).await;
    assert_eq!(
        r.case.expect("case").open_reason,
        pb::CaseOpenReason::LowSurveyScore as i32
    );
}

#[tokio::test]
async fn the_thresholds_are_configurable() {
    let app = TestApp::spawn_with(
        "[intake]\nnps_case_at_or_below = 4\ncsat_case_at_or_below = 1\ncsi_case_at_or_below = 2\n",
    )
    .await;
    for (csat, nps, csi) in [
        (Some(2), None, vec![]),
        (None, Some(5), vec![]),
        (None, None, vec![(Dim::Room, 3)]),
    ] {
        assert!(
            submit_survey(&app, survey("sh-bund", csat, nps, &csi))
                .await
                .case
                .is_none()
        );
    }
    for (csat, nps, csi) in [
        (Some(1), None, vec![]),
        (None, Some(4), vec![]),
        (None, None, vec![(Dim::Room, 2)]),
    ] {
        assert!(
            submit_survey(&app, survey("sh-bund", csat, nps, &csi))
                .await
                .case
                .is_some()
        );
    }
}

#[tokio::test]
async fn scores_out_of_range_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let before = app.counts().await;
    let cases: Vec<(pb::Feedback, &str)> = vec![
        (
            survey("sh-bund", Some(0), None, &[]),
            "feedback.survey.csat",
        ),
        (
            survey("sh-bund", Some(6), None, &[]),
            "feedback.survey.csat",
        ),
        (
            survey("sh-bund", None, Some(-1), &[]),
            "feedback.survey.nps",
        ),
        (
            survey("sh-bund", None, Some(11), &[]),
            "feedback.survey.nps",
        ),
        (
            survey("sh-bund", None, None, &[(Dim::Room, 0)]),
            "feedback.survey.csi_scores[0].score",
        ),
        (
            survey("sh-bund", None, None, &[(Dim::Room, 7), (Dim::Value, 11)]),
            "feedback.survey.csi_scores[1].score",
        ),
        (
            survey("sh-bund", None, None, &[(Dim::Room, 7), (Dim::Room, 8)]),
            "feedback.survey.csi_scores[1].dimension",
        ),
        (
            survey("sh-bund", None, None, &[(Dim::Unspecified, 7)]),
            "feedback.survey.csi_scores[0].dimension",
        ),
        (
            pb::Feedback {
                survey: None,
                text: "no survey on the survey channel".into(),
                ..survey("sh-bund", None, None, &[])
            },
            "feedback.survey",
        ),
        // A survey without any score needs text.
        (survey("sh-bund", None, None, &[]), "feedback.text"),
    ];
    for (f, field) in cases {
        assert_invalid(
            app.head_office().submit_feedback(submit_req(f)).await,
            field,
        );
    }
    let mut unknown_dim = survey("sh-bund", None, None, &[(Dim::Room, 7)]);
    unknown_dim.survey.as_mut().unwrap().csi_scores[0].dimension = 42;
    assert_invalid(
        app.head_office()
            .submit_feedback(submit_req(unknown_dim))
            .await,
        "feedback.survey.csi_scores[0].dimension",
    );
    assert_eq!(app.counts().await, before);
}

#[tokio::test]
async fn survey_answered_goes_out_with_the_scores() {
    let app = TestApp::spawn().await;
    let g = app
        .create_guest("sh-bund", guest_of_tier(gp::Tier::VipPlatinum))
        .await;
    let stay = app.create_stay(&g.guest_id, "sh-bund").await;
    let mut f = survey(
        "sh-bund",
        Some(2),
        Some(3),
        &[(Dim::Cleanliness, 3), (Dim::Service, 8)],
    );
    f.stay_id = stay.stay_id.clone();
    f.survey.as_mut().unwrap().invitation_id = "msg-42".into();
    f.survey.as_mut().unwrap().text_answers = vec![pb::SurveyTextAnswer {
        question_id: "what_went_wrong".into(),
        answer: "Dust under the bed".into(),
    }];
    let r = app
        .submit(pb::SubmitFeedbackRequest {
            guest: by_id(&g),
            ..submit_req(f)
        })
        .await;
    let fb = r.feedback.unwrap();
    let case = r.case.expect("low scores open a case");
    assert_eq!(fb.survey.as_ref().unwrap().text_answers.len(), 1);

    let events = app.events("feedback", &fb.feedback_id).await;
    assert_eq!(kinds(&events), ["feedback_received", "survey_answered"]);
    assert_eq!(
        events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
    let Payload::FeedbackReceived(received) = payload(&events[0]) else {
        panic!()
    };
    assert!(received.has_survey);
    assert_eq!(received.case_id, case.case_id);
    let Payload::SurveyAnswered(s) = payload(&events[1]) else {
        panic!()
    };
    assert_eq!(s.feedback_id, fb.feedback_id);
    assert_eq!(s.property_id, "sh-bund");
    assert_eq!(s.guest_id, g.guest_id);
    assert_eq!(s.stay_id, stay.stay_id);
    assert_eq!(s.invitation_id, "msg-42");
    assert_eq!((s.csat, s.nps), (Some(2), Some(3)));
    assert_eq!(s.csi_scores.len(), 2);
    assert!(s.low_score);
    assert_eq!(s.guest_tier, gp::Tier::VipPlatinum as i32);
    assert_eq!(s.channel, pb::FeedbackChannel::PostStaySurvey as i32);

    let case_events = app.events("case", &case.case_id).await;
    assert_eq!(kinds(&case_events), ["case_opened"]);
    let Payload::CaseOpened(opened) = payload(&case_events[0]) else {
        panic!()
    };
    let facts = opened.case.as_ref().unwrap();
    assert_eq!(facts.open_reason, pb::CaseOpenReason::LowSurveyScore as i32);
    assert_eq!(facts.guest_id, g.guest_id);
    assert_eq!(opened.feedback_id, fb.feedback_id);

    // A good survey: SurveyAnswered with low_score false, and no case events anywhere.
    let before_cases = app.count("cases").await;
    let good = app
        .submit(submit_req(survey("sh-bund", Some(5), Some(10), &[])))
        .await;
    let events = app
        .events("feedback", &good.feedback.unwrap().feedback_id)
        .await;
    let Payload::SurveyAnswered(s) = payload(&events[1]) else {
        panic!()
    };
    assert!(!s.low_score);
    assert!(s.guest_id.is_empty());
    assert_eq!(app.count("cases").await, before_cases);
}
