//! Idempotent intake (issue 3, section 1): the same (source, external id) or the same client
//! idempotency key never makes a second item; a replay answers with the original (and its
//! case) and writes nothing, so hotels can retry blindly — including many identical
//! submissions racing each other.

mod common;

use common::*;
use guestloop_proto::feedback::v1 as pb;
use pb::FeedbackChannel as Ch;

fn comment_card(property: &str, serial: &str, text: &str) -> pb::SubmitFeedbackRequest {
    let mut req = complaint(property, Ch::CommentCard, text);
    if let Some(f) = req.feedback.as_mut() {
        f.source = "front-desk-app".into();
        f.external_id = serial.into();
    }
    req
}

#[tokio::test]
async fn the_same_source_and_external_id_is_a_replay() {
    let app = TestApp::spawn().await;
    let first = app
        .submit(comment_card("sh-bund", "CARD-0001", "Noisy at night."))
        .await;
    assert!(first.created);
    let original = first.feedback.unwrap();
    let case = first.case.expect("a complaint opens a case");
    let before = app.counts().await;

    // A blind retry, even with the text keyed in differently, answers with the original.
    let again = app
        .submit(comment_card("sh-bund", "CARD-0001", "Noisy at night!!"))
        .await;
    assert!(!again.created);
    let replayed = again.feedback.unwrap();
    assert_eq!(replayed.feedback_id, original.feedback_id);
    assert_eq!(replayed.text, "Noisy at night.", "the original is kept");
    assert_eq!(
        again.case.expect("the original's case").case_id,
        case.case_id
    );
    assert_eq!(
        app.counts().await,
        before,
        "a replay writes nothing, not even an event"
    );

    // Another source, or another property, is another item.
    let mut other_source = comment_card("sh-bund", "CARD-0001", "Noisy at night.");
    other_source.feedback.as_mut().unwrap().source = "opera-pms".into();
    assert!(app.submit(other_source).await.created);
    assert!(
        app.submit(comment_card("hz-lake", "CARD-0001", "Noisy at night."))
            .await
            .created
    );
    assert_eq!(app.count("feedback").await, 3);
}

#[tokio::test]
async fn the_same_idempotency_key_is_a_replay() {
    let app = TestApp::spawn().await;
    let call = |key: &str, property: &str| pb::SubmitFeedbackRequest {
        idempotency_key: key.into(),
        ..complaint(property, Ch::Phone, "Guest called: the shower is cold.")
    };
    let first = app.submit(call("phone-log-2025-03-01-17", "sh-bund")).await;
    assert!(first.created);
    let before = app.counts().await;
    for _ in 0..3 {
        let again = app.submit(call("phone-log-2025-03-01-17", "sh-bund")).await;
        assert!(!again.created);
        assert_eq!(
            again.feedback.unwrap().feedback_id,
            first.feedback.as_ref().unwrap().feedback_id
        );
        assert_eq!(
            again.case.unwrap().case_id,
            first.case.as_ref().unwrap().case_id
        );
    }
    assert_eq!(app.counts().await, before);
    let rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM feedback WHERE idempotency_key = 'phone-log-2025-03-01-17'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, 1);
    // Keys are per property.
    assert!(
        app.submit(call("phone-log-2025-03-01-17", "hz-lake"))
            .await
            .created
    );
    // A new key is a new item.
    assert!(
        app.submit(call("phone-log-2025-03-01-18", "sh-bund"))
            .await
            .created
    );
}

#[tokio::test]
async fn a_reimported_ota_review_is_a_replay() {
    let app = TestApp::spawn().await;
    let review = ota_review("sh-bund", pb::OtaSite::TripCom, "CTRIP-99812", 2.0, 5.0);
    let first = app.submit(submit_req(review.clone())).await;
    assert!(first.created);
    let case = first.case.expect("a 2/5 review opens a case");
    let before = app.counts().await;

    // Tomorrow's export carries the same review again, now with the hotel's reply.
    let mut tomorrow = review.clone();
    tomorrow.ota_review.as_mut().unwrap().reply_status = pb::OtaReplyStatus::Published as i32;
    let again = app.submit(submit_req(tomorrow)).await;
    assert!(!again.created);
    assert_eq!(
        again.feedback.unwrap().feedback_id,
        first.feedback.unwrap().feedback_id
    );
    assert_eq!(again.case.unwrap().case_id, case.case_id);
    assert_eq!(app.counts().await, before);

    // The same review id on another site is another review.
    let other = ota_review("sh-bund", pb::OtaSite::BookingCom, "CTRIP-99812", 9.0, 10.0);
    assert!(app.submit(submit_req(other)).await.created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_submissions_make_one_item_and_one_case() {
    let app = TestApp::spawn().await;
    for (round, req) in [
        comment_card("sh-bund", "CARD-RACE", "The lift was broken for two days."),
        pb::SubmitFeedbackRequest {
            idempotency_key: "race-key".into(),
            ..complaint("sh-bund", Ch::Phone, "No hot water.")
        },
    ]
    .into_iter()
    .enumerate()
    {
        let mut calls = Vec::new();
        for _ in 0..12 {
            let mut c = app.head_office();
            let req = req.clone();
            calls.push(tokio::spawn(async move {
                c.submit_feedback(req).await.map(|r| r.into_inner())
            }));
        }
        let mut answers = Vec::new();
        for call in calls {
            answers.push(
                call.await
                    .unwrap()
                    .unwrap_or_else(|s| panic!("round {round}: {s:?}")),
            );
        }
        let created = answers.iter().filter(|a| a.created).count();
        assert_eq!(created, 1, "round {round}: exactly one call creates");
        let ids: std::collections::BTreeSet<_> = answers
            .iter()
            .map(|a| a.feedback.as_ref().unwrap().feedback_id.clone())
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "round {round}: every call answers with the same item"
        );
        let cases: std::collections::BTreeSet<_> = answers
            .iter()
            .map(|a| a.case.as_ref().expect("case").case_id.clone())
            .collect();
        assert_eq!(cases.len(), 1, "round {round}: and the same case");
        let id = ids.into_iter().next().unwrap();
        assert_eq!(
            kinds(&app.events("feedback", &id).await),
            ["feedback_received"]
        );
    }
    assert_eq!(app.count("feedback").await, 2);
    assert_eq!(app.count("cases").await, 2);
    assert_eq!(app.count("case_events").await, 2);
}

/// Items that open no case are written in multi-row batches: identical submissions racing
/// each other (many land in one batch) still make one item and one event, and every
/// caller gets that item; distinct items in the same batches each get their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_items_without_a_case_are_batched_without_twins() {
    let app = TestApp::spawn().await;
    let card = |serial: &str| {
        let mut req = submit_req(feedback(
            "sh-bund",
            Ch::CommentCard,
            "Lovely stay, thank you.",
        ));
        if let Some(f) = req.feedback.as_mut() {
            f.source = "front-desk-app".into();
            f.external_id = serial.into();
        }
        req
    };
    let mut calls = Vec::new();
    for i in 0..40 {
        // 20 copies of one card, and 20 cards of their own.
        let serial = if i % 2 == 0 {
            "CARD-SAME".to_string()
        } else {
            format!("CARD-{i}")
        };
        let mut c = app.head_office();
        let req = card(&serial);
        calls.push(tokio::spawn(async move {
            (serial, c.submit_feedback(req).await.map(|r| r.into_inner()))
        }));
    }
    let mut same = Vec::new();
    for call in calls {
        let (serial, answer) = call.await.unwrap();
        let answer = answer.unwrap_or_else(|s| panic!("{serial}: {s:?}"));
        assert!(answer.case.is_none(), "a kind card opens no case");
        if serial == "CARD-SAME" {
            same.push(answer);
        } else {
            assert!(answer.created, "{serial} is an item of its own");
        }
    }
    assert_eq!(
        same.iter().filter(|a| a.created).count(),
        1,
        "one copy creates"
    );
    let ids: std::collections::BTreeSet<_> = same
        .iter()
        .map(|a| a.feedback.as_ref().unwrap().feedback_id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "every copy answers with the same item");
    let id = ids.into_iter().next().unwrap();
    assert_eq!(
        kinds(&app.events("feedback", &id).await),
        ["feedback_received"]
    );
    assert_eq!(app.count("feedback").await, 21);
    assert_eq!(
        app.count("outbox").await,
        21,
        "one event per item, none for a replay"
    );
}
