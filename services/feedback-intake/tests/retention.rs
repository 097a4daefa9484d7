//! Retention (issue 11): feedback and cases older than their region's period lose the
//! words (as an erasure would) and keep what statistics need; other regions' records and
//! recent ones are untouched; the job goes on from its mark, one batch per round here.

mod common;

use common::*;
use guestloop_proto::feedback::v1 as pb;
use std::time::{Duration, Instant};

/// East (sh-bund) keeps words one day, the chain ten years; one record per round.
const RETENTION: &str = r#"
[retention]
interval = "100ms"
batch = 1
max_batches_per_round = 1
[retention.default]
feedback_text = "3650d"
case_notes = "3650d"
message_variables = "3650d"
access_log = "3650d"
[retention.regions.east]
feedback_text = "1d"
case_notes = "1d"
"#;

/// Moves the case on with a note, as staff do.
async fn note(app: &TestApp, case_id: &str, to: pb::CaseStatus, text: &str) {
    app.head_office()
        .transition_case(pb::TransitionCaseRequest {
            case_id: case_id.into(),
            to_status: to as i32,
            note: text.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_words_go_property_by_property_and_the_rest_stays() {
    let app = TestApp::spawn_with(RETENTION).await;
    let mut old = Vec::new();
    for text in ["Mr Bilby says the lamp buzzed", "Bilby again: cold shower"] {
        let f = app
            .submit(submit_req(feedback(
                "sh-bund",
                pb::FeedbackChannel::CommentCard,
                text,
            )))
            .await
            .feedback
            .unwrap();
        old.push(f);
    }
    let complaint = app
        .submit(complaint(
            "sh-bund",
            pb::FeedbackChannel::Phone,
            "Bilby: the minibar bill was wrong",
        ))
        .await;
    let (old_complaint, case) = (complaint.feedback.unwrap(), complaint.case.unwrap());
    old.push(old_complaint);
    let elsewhere = app
        .submit(submit_req(feedback(
            "hk-harbour",
            pb::FeedbackChannel::CommentCard,
            "Bilby in Hong Kong",
        )))
        .await
        .feedback
        .unwrap();
    // Backdate what is to be old: two days, past east's one-day period.
    let ids: Vec<uuid::Uuid> = old
        .iter()
        .chain([&elsewhere])
        .map(|f| f.feedback_id.parse().unwrap())
        .collect();
    sqlx::query(
        "UPDATE feedback SET receive_time = receive_time - interval '2 days' WHERE id = ANY($1)",
    )
    .bind(&ids)
    .execute(&app.pool)
    .await
    .unwrap();
    // Staff's note on the complaint, then everything so far made two days old.
    note(
        &app,
        &case.case_id,
        pb::CaseStatus::Acknowledged,
        "Called Mr Bilby back",
    )
    .await;
    for sql in [
        "UPDATE cases SET open_time = open_time - interval '2 days'",
        "UPDATE case_events SET event_time = event_time - interval '2 days'",
    ] {
        sqlx::query(sql).execute(&app.pool).await.unwrap();
    }
    // A note written today lives its own period, however old its case.
    note(
        &app,
        &case.case_id,
        pb::CaseStatus::InProgress,
        "Bilby's new room is fine",
    )
    .await;
    let recent = app
        .submit(submit_req(feedback(
            "sh-bund",
            pb::FeedbackChannel::CommentCard,
            "Bilby today: all fine",
        )))
        .await
        .feedback
        .unwrap();

    let start = Instant::now();
    loop {
        let mut texts = Vec::new();
        for f in &old {
            texts.push(app.get_feedback(&f.feedback_id).await.text);
        }
        if texts.iter().all(|t| t == "[erased]") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for f in &old {
        let now = app.get_feedback(&f.feedback_id).await;
        // What statistics need stays: the channel, category, sentiment, time and property.
        assert_eq!(
            (
                now.channel,
                now.category,
                now.sentiment,
                &now.property_id,
                now.receive_time.is_some()
            ),
            (f.channel, f.category, f.sentiment, &f.property_id, true),
            "{now:?}"
        );
        assert!(!format!("{now:?}").contains("Bilby"), "{now:?}");
    }
    let case_now = app.get_case(&case.case_id).await;
    assert_eq!(case_now.title, "[erased]");
    assert!(!format!("{case_now:?}").contains("Bilby"), "{case_now:?}");
    assert_eq!(
        (case_now.status, case_now.category),
        (pb::CaseStatus::InProgress as i32, case.category)
    );
    let start = Instant::now();
    let history = loop {
        let history = app.case_events(&case.case_id).await;
        if history.iter().any(|e| e.note == "[erased]") {
            break history;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{history:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let notes: Vec<&str> = history.iter().map(|e| e.note.as_str()).collect();
    assert!(
        notes.contains(&"[erased]") && notes.contains(&"Bilby's new room is fine"),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("Called Mr Bilby")),
        "{notes:?}"
    );
    // Another region's period, and recent words, are not due.
    assert_eq!(
        app.get_feedback(&elsewhere.feedback_id).await.text,
        "Bilby in Hong Kong"
    );
    assert_eq!(
        app.get_feedback(&recent.feedback_id).await.text,
        "Bilby today: all fine"
    );
    // The outbox copies lost the excerpt too.
    for f in &old {
        let envelopes = app.events("feedback", &f.feedback_id).await;
        assert!(!envelopes.is_empty());
        assert!(!format!("{envelopes:?}").contains("Bilby"), "{envelopes:?}");
    }
    // One record per round: the mark is the last old item in time order, and nothing of
    // hk-harbour was visited.
    let mark: (String,) = sqlx::query_as(
        "SELECT last_key FROM retention_marks WHERE task = 'feedback_text' AND scope = 'sh-bund'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let last_old: (String,) = sqlx::query_as(
        "SELECT id::text FROM feedback WHERE id = ANY($1) AND property_id = 'sh-bund'
          ORDER BY receive_time DESC, id DESC LIMIT 1",
    )
    .bind(&ids)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(mark, last_old);
    let hk: Option<(Option<chrono::DateTime<chrono::Utc>>,)> = sqlx::query_as(
        "SELECT last_time FROM retention_marks WHERE task = 'feedback_text' AND scope = 'hk-harbour'",
    )
    .fetch_optional(&app.pool)
    .await
    .unwrap();
    assert_eq!(hk, Some((None,)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_already_past_its_period_arrives_without_its_words() {
    let app = TestApp::spawn_with(RETENTION).await;
    let four_days_ago = prost_types::Timestamp {
        seconds: (chrono::Utc::now() - chrono::Duration::days(4)).timestamp(),
        nanos: 0,
    };
    let old = |property: &str, text: &str| {
        let mut req = complaint(property, pb::FeedbackChannel::Phone, text);
        let f = req.feedback.as_mut().unwrap();
        f.receive_time = Some(four_days_ago);
        f.tags = vec!["Bilby".into()];
        req
    };
    // East keeps words one day: an import of a four-day-old complaint keeps none, though it
    // was classified on them; the south keeps ten years.
    let east = app
        .submit(old(
            "sh-bund",
            "Mr Bilby: the shower was cold and nobody came",
        ))
        .await;
    let south = app
        .submit(old(
            "hk-harbour",
            "Mr Bilby: the shower was cold and nobody came",
        ))
        .await;
    let (f, case) = (east.feedback.unwrap(), east.case.unwrap());
    assert_eq!((f.text.as_str(), f.tags.len()), ("[erased]", 0));
    assert_eq!(
        f.category,
        south.feedback.as_ref().unwrap().category,
        "classified on the words"
    );
    assert_eq!(case.title, "[erased]");
    assert!(!format!("{case:?}").contains("Bilby"), "{case:?}");
    let envelopes = app.events("feedback", &f.feedback_id).await;
    assert!(!envelopes.is_empty() && !format!("{envelopes:?}").contains("Bilby"));
    assert!(!format!("{:?}", app.get_feedback(&f.feedback_id).await).contains("Bilby"));
    assert!(south.feedback.unwrap().text.contains("Bilby"));
}
