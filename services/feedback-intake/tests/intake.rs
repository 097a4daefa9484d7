//! Intake (issue 3, section 1): every channel in with its own details; the guest resolved
//! through a real guest-profile by id, loyalty number, email or phone, kept unknown (never
//! invented) or left ambiguous; the stay checked against guest and property; the events
//! written with the item; and when feedback opens a case by itself.

mod common;

use common::*;
use guestloop_proto::common::v1::Department;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1 as pb;
use guestloop_proto::guestprofile::v1 as gp;
use pb::FeedbackChannel as Ch;

const TAGS: [&str; 5] = ["checkin-queue", "say \"hi\"", "a\\b", "{x,y}", "NULL"];

#[tokio::test]
async fn every_channel_is_taken_in_with_its_own_details() {
    let app = TestApp::spawn().await;
    let received = chrono::Utc::now() - chrono::Duration::hours(3);
    let plain = [
        (Ch::Phone, "phone"),
        (Ch::Email, "email"),
        (Ch::Wechat, "wechat"),
        (Ch::App, "app"),
        (Ch::Website, "website"),
        (Ch::CommentCard, "comment-card"),
        (Ch::InPerson, "in-person"),
    ];
    let staff = token_as(
        "desk-li",
        guestloop_auth::Role::PropertyStaff,
        &["sh-bund"],
        None,
    );
    let mut ids = Vec::new();
    for (channel, default_source) in plain {
        let f = pb::Feedback {
            receive_time: Some(ts(received)),
            staff_mentions: vec![pb::StaffMention {
                staff_id: "S-100".into(),
                staff_name: "Ms Li at the front desk".into(),
                department: Department::FrontOffice as i32,
                sentiment: pb::Sentiment::Positive as i32,
            }],
            // Tags travel to the batch insert as array text: quotes, backslashes, braces,
            // commas and the word NULL must come back as sent.
            tags: TAGS.iter().map(|t| t.to_string()).collect(),
            ..feedback(
                "sh-bund",
                channel,
                &format!("Feedback by {default_source}: Ms Li was very kind."),
            )
        };
        let r = app
            .client(&staff)
            .submit_feedback(submit_req(f))
            .await
            .unwrap_or_else(|s| panic!("{channel:?}: {s:?}"))
            .into_inner();
        assert!(r.created, "{channel:?}");
        assert!(
            r.case.is_none(),
            "{channel:?}: neutral feedback opens no case"
        );
        let answered = r.feedback.unwrap();
        let got = app.get_feedback(&answered.feedback_id).await;
        assert_eq!(
            answered, got,
            "{channel:?}: the answer is the row as stored"
        );
        assert_eq!(got.channel, channel as i32);
        assert_eq!(
            got.source, default_source,
            "{channel:?}: source defaults to the channel"
        );
        assert_eq!(got.property_id, "sh-bund");
        assert_eq!(
            got.text,
            format!("Feedback by {default_source}: Ms Li was very kind.")
        );
        assert_eq!(got.language, "en");
        assert_eq!(time_of(&got.receive_time).timestamp(), received.timestamp());
        assert_eq!(got.staff_mentions.len(), 1);
        assert_eq!(got.staff_mentions[0].staff_name, "Ms Li at the front desk");
        assert_eq!(got.tags, TAGS);
        assert_eq!(got.submitted_by, "desk-li");
        assert_eq!(got.guest_match, pb::GuestMatch::NotGiven as i32);
        assert_eq!(
            got.sentiment_source,
            pb::ClassificationSource::Submitter as i32
        );
        assert!(got.ota_review.is_none() && got.survey.is_none());
        ids.push(got.feedback_id);
    }

    // An OTA review: site, the site's rating and scale, review id, reply status.
    let r = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::BookingCom,
            "BK-778812",
            8.6,
            10.0,
        )))
        .await;
    let review = r.feedback.unwrap();
    assert_eq!(
        review.source, "booking.com",
        "an OTA review's source defaults to its site"
    );
    assert_eq!(
        review.external_id, "BK-778812",
        "and its external id to the review id"
    );
    let ota = review.ota_review.clone().expect("ota review kept");
    assert_eq!(ota.site, pb::OtaSite::BookingCom as i32);
    assert_eq!((ota.rating, ota.rating_scale), (8.6, 10.0));
    assert_eq!(ota.review_id, "BK-778812");
    assert_eq!(ota.reply_status, pb::OtaReplyStatus::NotReplied as i32);
    assert_eq!(ota.title, "Nice stay");
    assert!(r.case.is_none(), "8.6/10 is not a negative review");
    ids.push(review.feedback_id.clone());
    let other_site = app
        .submit(submit_req(pb::Feedback {
            ota_review: Some(pb::OtaReview {
                site: pb::OtaSite::Other as i32,
                site_name: "HolidayCheck".into(),
                ..ota_review("sh-bund", pb::OtaSite::Other, "HC-1", 5.0, 6.0)
                    .ota_review
                    .unwrap()
            }),
            ..ota_review("sh-bund", pb::OtaSite::Other, "HC-1", 5.0, 6.0)
        }))
        .await
        .feedback
        .unwrap();
    assert_eq!(other_site.source, "holidaycheck");
    ids.push(other_site.feedback_id);

    // A post-stay survey.
    let s = app
        .submit(submit_req(pb::Feedback {
            text: "Lovely breakfast".into(),
            ..survey(
                "sh-bund",
                Some(5),
                Some(10),
                &[
                    (pb::CsiDimension::Cleanliness, 9),
                    (pb::CsiDimension::FoodAndBeverage, 10),
                ],
            )
        }))
        .await;
    let sv = s.feedback.unwrap();
    assert_eq!(sv.source, "survey");
    let answers = sv.survey.clone().expect("survey kept");
    assert_eq!((answers.csat, answers.nps), (Some(5), Some(10)));
    assert_eq!(answers.csi_scores.len(), 2);
    assert!(!answers.low_score);
    assert!(s.case.is_none());
    ids.push(sv.feedback_id.clone());

    // Each item: one FeedbackReceived on its own aggregate; the survey a SurveyAnswered too.
    for id in &ids {
        let events = app.events("feedback", id).await;
        let expected: &[&str] = if *id == sv.feedback_id {
            &["feedback_received", "survey_answered"]
        } else {
            &["feedback_received"]
        };
        assert_eq!(kinds(&events), expected, "events of {id}");
        assert_eq!(events[0].property_id, "sh-bund");
        assert_eq!(events[0].source, "feedback-intake");
        assert_eq!(events[0].sequence, 1);
    }
    let Payload::FeedbackReceived(fr) =
        payload(&app.events("feedback", &review.feedback_id).await[0]).clone()
    else {
        panic!("feedback_received")
    };
    assert_eq!(fr.ota_site, pb::OtaSite::BookingCom as i32);
    let rating = fr.normalized_rating.expect("normalised rating");
    assert!((rating - 0.86).abs() < 1e-9, "{rating}");
    let Payload::FeedbackReceived(fr) = payload(&app.events("feedback", &ids[0]).await[0]).clone()
    else {
        panic!("feedback_received")
    };
    assert_eq!(fr.staff_mentions.len(), 1);
    assert_eq!(fr.staff_mentions[0].staff_id, "S-100");
    assert!(
        fr.staff_mentions[0].staff_name.is_empty(),
        "names stay out of events"
    );

    // Every channel is there, and each filter by channel finds its own.
    assert_eq!(app.count("feedback").await, 10);
    for channel in [
        Ch::Phone,
        Ch::CommentCard,
        Ch::OtaReview,
        Ch::PostStaySurvey,
    ] {
        let items = app
            .head_office()
            .list_feedback(pb::ListFeedbackRequest {
                filter: Some(pb::FeedbackFilter {
                    channels: vec![channel as i32],
                    ..Default::default()
                }),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .items;
        let want = if channel == Ch::OtaReview { 2 } else { 1 };
        assert_eq!(items.len(), want, "{channel:?}");
        assert!(items.iter().all(|f| f.channel == channel as i32));
    }
}

fn by(f: impl FnOnce(&mut pb::GuestReference)) -> pb::GuestReference {
    let mut r = pb::GuestReference::default();
    f(&mut r);
    r
}

#[tokio::test]
async fn guests_are_resolved_through_guest_profile_and_never_invented() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let other = app
        .create_guest("hz-lake", guest_of_tier(gp::Tier::Regular))
        .await;
    let guests_before = app.guest_count().await;

    let submit = |guest: pb::GuestReference| {
        let app = &app;
        async move {
            let r = app
                .submit(pb::SubmitFeedbackRequest {
                    guest: Some(guest),
                    ..complaint("sh-bund", Ch::Email, "The bathroom was dirty.")
                })
                .await;
            (r.feedback.unwrap(), r.case.unwrap())
        }
    };

    let (f, case) = submit(by(|r| r.guest_id = g.guest_id.clone())).await;
    assert_eq!(
        (f.guest_id.as_str(), f.guest_match),
        (g.guest_id.as_str(), pb::GuestMatch::ById as i32)
    );
    assert_eq!(case.guest_id, g.guest_id);
    assert_eq!(
        case.guest_tier,
        gp::Tier::VipGold as i32,
        "the tier comes from guest-profile"
    );

    let (f, _) = submit(by(|r| r.loyalty_number = g.loyalty_number.clone())).await;
    assert_eq!(
        (f.guest_id.as_str(), f.guest_match),
        (g.guest_id.as_str(), pb::GuestMatch::ByLoyaltyNumber as i32)
    );

    let (f, _) = submit(by(|r| r.email = email_of(&g).to_uppercase())).await;
    assert_eq!(
        (f.guest_id.as_str(), f.guest_match),
        (g.guest_id.as_str(), pb::GuestMatch::ByEmail as i32),
        "email matches case-insensitively"
    );

    let (f, _) = submit(by(|r| r.phone = phone_of(&g))).await;
    assert_eq!(
        (f.guest_id.as_str(), f.guest_match),
        (g.guest_id.as_str(), pb::GuestMatch::ByPhone as i32)
    );

    // Tried in order: the id wins over another guest's email.
    let (f, _) = submit(by(|r| {
        r.guest_id = g.guest_id.clone();
        r.email = email_of(&other);
    }))
    .await;
    assert_eq!(f.guest_id, g.guest_id);
    // An unknown id falls through to the next reference.
    let (f, _) = submit(by(|r| {
        r.guest_id = uuid::Uuid::new_v4().to_string();
        r.phone = phone_of(&other);
    }))
    .await;
    assert_eq!(
        (f.guest_id.as_str(), f.guest_match),
        (other.guest_id.as_str(), pb::GuestMatch::ByPhone as i32)
    );

    // Unknown: kept unknown, no profile created.
    let (f, case) = submit(by(|r| r.email = "nobody.known@example.org".into())).await;
    assert_eq!(f.guest_match, pb::GuestMatch::Unknown as i32);
    assert!(f.guest_id.is_empty() && case.guest_id.is_empty());
    assert_eq!(case.guest_tier, gp::Tier::Unspecified as i32);
    let (f, _) = submit(by(|r| r.guest_id = uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(f.guest_match, pb::GuestMatch::Unknown as i32);
    assert!(f.guest_id.is_empty());

    // Anonymous.
    let r = app
        .submit(complaint("sh-bund", Ch::CommentCard, "Noisy corridor."))
        .await;
    assert_eq!(
        r.feedback.unwrap().guest_match,
        pb::GuestMatch::NotGiven as i32
    );

    // Ambiguous: two profiles share an email; left unresolved rather than guessed.
    let shared = "family.account@example.com";
    for tier in [gp::Tier::Regular, gp::Tier::VipSilver] {
        let mut twin = guest_of_tier(tier);
        twin.contacts.as_mut().unwrap().email = shared.into();
        app.create_guest("sh-bund", twin).await;
    }
    let (f, case) = submit(by(|r| r.email = shared.into())).await;
    assert_eq!(f.guest_match, pb::GuestMatch::Ambiguous as i32);
    assert!(f.guest_id.is_empty() && case.guest_id.is_empty());

    assert_eq!(
        app.guest_count().await,
        guests_before + 2,
        "only the two twins were created, by the test"
    );
    // The contact data used for the lookup is never stored with the feedback.
    let stored = app.dump().await.join("\n");
    for secret in [
        email_of(&g),
        email_of(&g).to_uppercase(),
        phone_of(&g),
        phone_of(&other),
        shared.to_string(),
    ] {
        assert!(
            !stored.contains(&secret),
            "{secret} stored by feedback-intake"
        );
    }
}

#[tokio::test]
async fn a_stay_must_be_the_guests_and_at_the_property() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    let g2 = app.create_guest("sh-bund", guest()).await;
    let stay = app.create_stay(&g.guest_id, "sh-bund").await;

    let with_stay = |property: &str, who: &gp::Guest, stay_id: &str| pb::SubmitFeedbackRequest {
        feedback: Some(pb::Feedback {
            stay_id: stay_id.into(),
            ..feedback(property, Ch::App, "The minibar was not restocked.")
        }),
        guest: by_id(who),
        ..Default::default()
    };

    let ok = app
        .submit(with_stay("sh-bund", &g, &stay.stay_id))
        .await
        .feedback
        .unwrap();
    assert_eq!(ok.stay_id, stay.stay_id);
    assert_eq!(ok.guest_id, g.guest_id);

    let before = app.counts().await;
    let status = assert_invalid(
        app.head_office()
            .submit_feedback(with_stay("sh-bund", &g2, &stay.stay_id))
            .await,
        "feedback.stay_id",
    );
    assert!(status.message().contains("another guest"), "{status:?}");
    let status = assert_invalid(
        app.head_office()
            .submit_feedback(with_stay("hz-lake", &g, &stay.stay_id))
            .await,
        "feedback.stay_id",
    );
    assert!(status.message().contains("another property"), "{status:?}");
    assert_invalid(
        app.head_office()
            .submit_feedback(with_stay("sh-bund", &g, &uuid::Uuid::new_v4().to_string()))
            .await,
        "feedback.stay_id",
    );
    assert_invalid(
        app.head_office()
            .submit_feedback(with_stay("sh-bund", &g, "room-1208"))
            .await,
        "feedback.stay_id",
    );
    assert_eq!(
        app.counts().await,
        before,
        "nothing written for a refused stay"
    );

    // A stay without a guest reference names the guest.
    let r = app
        .submit(pb::SubmitFeedbackRequest {
            guest: None,
            ..with_stay("sh-bund", &g, &stay.stay_id)
        })
        .await
        .feedback
        .unwrap();
    assert_eq!(r.guest_id, g.guest_id, "the stay's guest");
    assert_eq!(r.stay_id, stay.stay_id);
}

#[tokio::test]
async fn feedback_opens_a_case_only_when_a_complaint_or_the_rules_say_so() {
    let app = TestApp::spawn().await;

    // A complaint opens a case with the submitter's details.
    let r = app
        .submit(pb::SubmitFeedbackRequest {
            complaint: Some(pb::CaseDetails {
                title: "AC not cooling, room 1208".into(),
                description: "Guest called twice.".into(),
                category: pb::Category::FacilityMaintenance as i32,
                assignee_id: "eng-wang".into(),
                ..Default::default()
            }),
            ..complaint(
                "sh-bund",
                Ch::Phone,
                "The air conditioning in 1208 does not work",
            )
        })
        .await;
    let case = r.case.expect("case");
    let f = r.feedback.unwrap();
    assert_eq!(f.case_id, case.case_id, "the feedback knows its case");
    assert_eq!(case.feedback_ids, std::slice::from_ref(&f.feedback_id));
    assert_eq!(case.title, "AC not cooling, room 1208");
    assert_eq!(case.category, pb::Category::FacilityMaintenance as i32);
    assert_eq!(
        case.department,
        Department::Engineering as i32,
        "from the category"
    );
    assert_eq!(case.assignee_id, "eng-wang");
    assert_eq!(case.open_reason, pb::CaseOpenReason::Complaint as i32);
    assert_eq!(case.status, pb::CaseStatus::Received as i32);
    assert_eq!(case.version, 1);
    assert!(case.reference.starts_with("SH-BUND-"), "{}", case.reference);
    assert_eq!(app.get_feedback(&f.feedback_id).await.case_id, case.case_id);
    // The case can be read by its human reference too.
    let by_ref = app.get_case(&case.reference).await;
    assert_eq!(by_ref.case_id, case.case_id);
    let ev = app.events("feedback", &f.feedback_id).await;
    let Payload::FeedbackReceived(fr) = payload(&ev[0]) else {
        panic!()
    };
    assert_eq!(
        fr.case_id, case.case_id,
        "FeedbackReceived names the case it opened"
    );

    // Negative feedback on a non-scored channel: the rules open a case.
    let r = app
        .submit(submit_req(pb::Feedback {
            sentiment: pb::Sentiment::Negative as i32,
            category: pb::Category::ServiceAttitude as i32,
            ..feedback(
                "sh-bund",
                Ch::Wechat,
                "The receptionist was rude to my mother.",
            )
        }))
        .await;
    assert_eq!(
        r.case.expect("case").open_reason,
        pb::CaseOpenReason::NegativeFeedback as i32
    );

    // An OTA review under the threshold (0.6 of the scale).
    let r = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::Tripadvisor,
            "TA-1",
            2.0,
            5.0,
        )))
        .await;
    let case = r.case.expect("a 2/5 review opens a case");
    assert_eq!(case.open_reason, pb::CaseOpenReason::NegativeReview as i32);
    assert_eq!(
        case.title,
        "Good location, friendly staff, the room was fine."
    );
    let r = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::Tripadvisor,
            "TA-2",
            3.0,
            5.0,
        )))
        .await;
    assert!(r.case.is_none(), "3/5 is at the threshold, not under it");
    // A negative OTA text with a good rating: the rating decides on a scored channel.
    let r = app
        .submit(submit_req(pb::Feedback {
            sentiment: pb::Sentiment::Negative as i32,
            ..ota_review("sh-bund", pb::OtaSite::TripCom, "TC-1", 9.0, 10.0)
        }))
        .await;
    assert!(r.case.is_none());

    // Positive or neutral feedback opens none.
    let r = app
        .submit(submit_req(pb::Feedback {
            sentiment: pb::Sentiment::Positive as i32,
            ..feedback("sh-bund", Ch::Email, "Wonderful stay, thank you!")
        }))
        .await;
    assert!(r.case.is_none());
    assert_eq!(app.count("cases").await, 3);

    // A case can be opened by hand from feedback without one; again answers the same case.
    let fid = r.feedback.unwrap().feedback_id;
    let mut c = app.manager("sh-bund");
    let opened = c
        .open_case(pb::OpenCaseRequest {
            feedback_id: fid.clone(),
            details: Some(pb::CaseDetails {
                category: pb::Category::Other as i32,
                ..Default::default()
            }),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(opened.created);
    let case = opened.case.unwrap();
    assert_eq!(case.open_reason, pb::CaseOpenReason::Staff as i32);
    let again = c
        .open_case(pb::OpenCaseRequest {
            feedback_id: fid.clone(),
            details: None,
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.case.unwrap().case_id, case.case_id);
    assert_eq!(app.count("cases").await, 4);
}

#[tokio::test]
async fn the_classifier_fills_in_what_the_submitter_left_out() {
    let app = TestApp::spawn().await;
    let r = app
        .submit(submit_req(pb::Feedback {
            sentiment: 0,
            language: String::new(),
            ..feedback(
                "sh-bund",
                Ch::Email,
                "房间的空调坏了，一晚上都很热，没法睡觉",
            )
        }))
        .await;
    let f = r.feedback.unwrap();
    assert_eq!(
        f.category_source,
        pb::ClassificationSource::Classifier as i32
    );
    assert_eq!(
        f.sentiment_source,
        pb::ClassificationSource::Classifier as i32
    );
    assert_ne!(f.category, pb::Category::Unspecified as i32);
    assert_ne!(f.sentiment, pb::Sentiment::Unspecified as i32);
    assert!(
        ["zh-CN", "zh-TW"].contains(&f.language.as_str()),
        "detected {}",
        f.language
    );

    let r = app
        .submit(submit_req(pb::Feedback {
            category: pb::Category::LostProperty as i32,
            ..feedback("sh-bund", Ch::Email, "I left my charger in room 1208")
        }))
        .await;
    let f = r.feedback.unwrap();
    assert_eq!(f.category, pb::Category::LostProperty as i32);
    assert_eq!(
        f.category_source,
        pb::ClassificationSource::Submitter as i32
    );
}

#[tokio::test]
async fn feedback_events_carry_no_contact_data() {
    let app = TestApp::spawn().await;
    let r = app
        .submit(submit_req(feedback(
            "sh-bund",
            Ch::Email,
            "Please call me on +86 13800138000 or write to li.na@example.com about the bill",
        )))
        .await;
    let id = r.feedback.unwrap().feedback_id;
    let events = app.events("feedback", &id).await;
    let Payload::FeedbackReceived(fr) = payload(&events[0]) else {
        panic!()
    };
    assert!(
        !fr.redacted_excerpt.contains("li.na@example.com"),
        "{}",
        fr.redacted_excerpt
    );
    assert!(
        !fr.redacted_excerpt.contains("13800138000"),
        "{}",
        fr.redacted_excerpt
    );
    assert!(fr.redacted_excerpt.contains("about the bill"));
}

#[tokio::test]
async fn a_merged_away_guest_resolves_to_the_survivor() {
    let app = TestApp::spawn().await;
    let survivor = app.create_guest("sh-bund", guest()).await;
    let duplicate = app.create_guest("sh-bund", guest()).await;
    app.gp_client(&guestloop_testkit::keys().head_office())
        .merge_guests(gp::MergeGuestsRequest {
            survivor_guest_id: survivor.guest_id.clone(),
            duplicate_guest_id: duplicate.guest_id.clone(),
            reason: "same person".into(),
        })
        .await
        .expect("merge");
    let f = app
        .submit(pb::SubmitFeedbackRequest {
            guest: by_id(&duplicate),
            ..submit_req(feedback("sh-bund", Ch::Email, "Lovely"))
        })
        .await
        .feedback
        .unwrap();
    assert_eq!(f.guest_id, survivor.guest_id);
    assert_eq!(f.guest_match, pb::GuestMatch::ById as i32);
}
