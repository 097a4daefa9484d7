//! Bulk import (issue 3, section 1): a client-streaming import with a result per item, in
//! stream order, with counts; a bad item fails alone and names its field; a second import
//! of the same stream replays; the per-call limit; and the rate of a large import.

mod common;

use common::*;
use guestloop_proto::events::v1::event_envelope::Payload;
use guestloop_proto::feedback::v1 as pb;
use pb::FeedbackChannel as Ch;
use std::time::Instant;
use tonic::Code;

fn item(req: pb::SubmitFeedbackRequest) -> pb::ImportFeedbackRequest {
    pb::ImportFeedbackRequest {
        feedback: req.feedback,
        guest: req.guest,
        idempotency_key: req.idempotency_key,
        complaint: req.complaint,
    }
}

fn card(serial: u32, text: &str) -> pb::ImportFeedbackRequest {
    let mut f = feedback("sh-bund", Ch::CommentCard, text);
    f.source = "card-scanner".into();
    f.external_id = format!("CARD-{serial:05}");
    item(submit_req(f))
}

async fn import(
    app: &TestApp,
    items: Vec<pb::ImportFeedbackRequest>,
) -> pb::ImportFeedbackResponse {
    app.head_office()
        .import_feedback(tokio_stream::iter(items))
        .await
        .unwrap_or_else(|s| panic!("import failed: {s:?}"))
        .into_inner()
}

#[tokio::test]
async fn a_mixed_stream_gets_a_result_per_item_and_a_bad_item_fails_alone() {
    let app = TestApp::spawn().await;
    let g = app.create_guest("sh-bund", guest()).await;
    // Submitted earlier by hand; the import carries it again.
    let earlier = app
        .submit(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::Agoda,
            "AG-1",
            9.0,
            10.0,
        )))
        .await;
    let earlier_id = earlier.feedback.unwrap().feedback_id;
    let before = app.counts().await;

    let mut bad_nps = survey("sh-bund", None, Some(11), &[]);
    bad_nps.text = "Great".into();
    let mut bad_channel = feedback("sh-bund", Ch::Email, "text");
    bad_channel.channel = 99;
    let items = vec![
        card(1, "Clean room, thank you."), // 0 created
        item(submit_req(bad_nps)),         // 1 failed
        item(submit_req(ota_review(
            "sh-bund",
            pb::OtaSite::Agoda,
            "AG-1",
            9.0,
            10.0,
        ))), // 2 replayed
        item(pb::SubmitFeedbackRequest {
            idempotency_key: "phone-log-7".into(),
            ..complaint_from("sh-bund", &g, pb::Category::Hygiene, "Hair in the bathtub.")
        }), // 3 created + case
        card(1, "Clean room, thank you."), // 4 replayed (same stream)
        item(submit_req(bad_channel)),     // 5 failed
        item(pb::SubmitFeedbackRequest {
            idempotency_key: "mail-1".into(),
            ..submit_req(feedback(
                "hk-harbour",
                Ch::Email,
                "Another property in the same import",
            ))
        }), // 6 created
        item(submit_req(feedback(
            "nowhere",
            Ch::Email,
            "No such property",
        ))), // 7 failed
    ];
    let r = import(&app, items.clone()).await;
    let statuses: Vec<_> = r
        .results
        .iter()
        .map(|x| pb::ImportItemStatus::try_from(x.status).unwrap())
        .collect();
    use pb::ImportItemStatus::{Created as C, Failed as F, Replayed as R};
    assert_eq!(statuses, [C, F, R, C, R, F, C, F]);
    assert_eq!(
        r.results.iter().map(|x| x.index).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert_eq!(
        (
            r.created_count,
            r.replayed_count,
            r.failed_count,
            r.cases_opened_count
        ),
        (3, 2, 3, 1)
    );

    assert_eq!(
        r.results[2].feedback_id, earlier_id,
        "a replay names the original"
    );
    assert_eq!(r.results[4].feedback_id, r.results[0].feedback_id);
    assert!(!r.results[3].case_id.is_empty(), "the complaint's case");
    for (i, field) in [
        (1, "feedback.survey.nps"),
        (5, "feedback.channel"),
        (7, "feedback.property_id"),
    ] {
        let x = &r.results[i];
        assert_eq!(
            x.error_code,
            Code::InvalidArgument as i32,
            "item {i}: {x:?}"
        );
        assert!(
            x.error_message.contains(field),
            "item {i} names {field}: {}",
            x.error_message
        );
        assert!(x.feedback_id.is_empty());
    }
    let case = app.get_case(&r.results[3].case_id).await;
    assert_eq!(
        case.guest_id, g.guest_id,
        "import items resolve their guest too"
    );

    let after: Vec<_> = app.counts().await;
    let feedback_rows = |c: &[(&str, i64)]| c.iter().find(|(t, _)| *t == "feedback").unwrap().1;
    assert_eq!(
        feedback_rows(&after),
        feedback_rows(&before) + 3,
        "only the created items were written"
    );

    // The same stream again (the hotel's connection broke, it sends it all again).
    let again = import(&app, items).await;
    let statuses: Vec<_> = again
        .results
        .iter()
        .map(|x| pb::ImportItemStatus::try_from(x.status).unwrap())
        .collect();
    assert_eq!(statuses, [R, F, R, R, R, F, R, F]);
    assert_eq!(
        (
            again.created_count,
            again.replayed_count,
            again.failed_count,
            again.cases_opened_count
        ),
        (0, 5, 3, 0)
    );
    for i in [0, 2, 3, 4, 6] {
        assert_eq!(
            again.results[i].feedback_id, r.results[i].feedback_id,
            "item {i}"
        );
        assert_eq!(again.results[i].case_id, r.results[i].case_id, "item {i}");
    }
    assert_eq!(app.counts().await, after, "the second import wrote nothing");
}

#[tokio::test]
async fn an_empty_import_answers_empty() {
    let app = TestApp::spawn().await;
    let r = import(&app, Vec::new()).await;
    assert!(r.results.is_empty());
    assert_eq!(r.created_count + r.replayed_count + r.failed_count, 0);
}

#[tokio::test]
async fn an_import_over_the_limit_is_refused() {
    let app = TestApp::spawn_with("[intake]\nimport_max_items = 3\n").await;
    let items: Vec<_> = (0..4).map(|i| card(i, "Fine.")).collect();
    let status = app
        .head_office()
        .import_feedback(tokio_stream::iter(items.clone()))
        .await
        .expect_err("4 items over a limit of 3");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("split"), "{status:?}");
    // Split, the import goes through; items already taken in replay.
    let r = import(&app, items[..3].to_vec()).await;
    assert_eq!(r.failed_count, 0);
    let r = import(&app, items[3..].to_vec()).await;
    assert_eq!(r.created_count, 1);
    assert_eq!(app.count("feedback").await, 4);
}

/// 2,000 items in one call (comment cards and OTA reviews, a few complaints and low
/// surveys), committed one by one; prints the rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_items_import_in_one_call() {
    const N: u32 = 2_000;
    let app = TestApp::spawn().await;
    let make = |i: u32| -> pb::ImportFeedbackRequest {
        match i % 10 {
            0 => item(submit_req(ota_review(
                "sh-bund",
                pb::OtaSite::BookingCom,
                &format!("BK-{i}"),
                8.0,
                10.0,
            ))),
            1 => item(complaint(
                "sh-bund",
                Ch::CommentCard,
                &format!("Card {i}: the corridor was noisy at night."),
            )),
            2 => item(submit_req(survey(
                "sh-bund",
                Some(5),
                Some(9),
                &[(pb::CsiDimension::Room, 9)],
            ))),
            _ => card(
                i,
                &format!("Card {i}: pleasant stay, the breakfast was good."),
            ),
        }
    };
    // The items are made as the stream is read: the client holds none of them either.
    let stream = tokio_stream::StreamExt::map(tokio_stream::iter(0..N), make);
    let started = Instant::now();
    let r = app
        .head_office()
        .import_feedback(stream)
        .await
        .expect("import")
        .into_inner();
    let elapsed = started.elapsed();
    let rate = f64::from(N) / elapsed.as_secs_f64();
    println!("imported {N} items in {elapsed:.2?}: {rate:.0} items/s (debug build, one call)");
    assert_eq!(r.results.len(), N as usize);
    assert_eq!(
        r.failed_count,
        0,
        "{:?}",
        r.results
            .iter()
            .find(|x| x.status == pb::ImportItemStatus::Failed as i32)
    );
    // Surveys have no external id: every one is new. So is every other item.
    assert_eq!(r.created_count, N as i32);
    assert_eq!(
        r.cases_opened_count,
        (N / 10) as i32,
        "one complaint in ten"
    );
    assert_eq!(app.count("feedback").await, i64::from(N));
    assert_eq!(app.count("cases").await, i64::from(N / 10));
    assert!(
        r.results
            .iter()
            .enumerate()
            .all(|(i, x)| x.index == i as i32)
    );
}

/// When the old log's complaints came in: 20 days ago.
static RECEIVED: std::sync::LazyLock<chrono::DateTime<chrono::Utc>> =
    std::sync::LazyLock::new(|| chrono::Utc::now() - chrono::Duration::days(20));

/// A complaint from the hotel's old log.
fn past_complaint(
    serial: u32,
    past: Option<pb::PastHandling>,
    received: Option<prost_types::Timestamp>,
) -> pb::ImportFeedbackRequest {
    let mut req = complaint(
        "sh-bund",
        Ch::Phone,
        "The air conditioning rattled all night.",
    );
    req.idempotency_key = format!("old-log-{serial}");
    if let Some(f) = req.feedback.as_mut() {
        f.receive_time = received;
    }
    if let Some(c) = req.complaint.as_mut() {
        c.past = past;
    }
    item(req)
}

fn handled(ack_hours: i64, resolve_hours: i64) -> Option<pb::PastHandling> {
    let at = |h: i64| Some(ts(*RECEIVED + chrono::Duration::hours(h)));
    Some(pb::PastHandling {
        acknowledge_time: at(ack_hours),
        resolve_time: at(resolve_hours),
        resolution: "Fan bearing replaced; a night refunded.".into(),
    })
}

#[tokio::test]
async fn a_complaint_handled_in_the_past_is_imported_closed_and_its_clocks_never_run() {
    let app = TestApp::spawn().await;
    let received = Some(ts(*RECEIVED));
    let r = import(
        &app,
        vec![
            past_complaint(1, handled(1, 30), received), // 0 created, closed
            past_complaint(2, handled(3, 2), received),  // 1 resolved before acknowledged
            past_complaint(3, handled(1, 30), None),     // 2 no receive time
            past_complaint(4, handled(-1, 30), received), // 3 acknowledged before received
            past_complaint(
                5,
                Some(pb::PastHandling {
                    resolve_time: ago(chrono::Duration::days(1)),
                    ..Default::default()
                }),
                received,
            ), // 4 no acknowledge time
            past_complaint(
                6,
                Some(pb::PastHandling {
                    acknowledge_time: ago(chrono::Duration::days(1)),
                    resolve_time: Some(ts(chrono::Utc::now() + chrono::Duration::days(1))),
                    ..Default::default()
                }),
                received,
            ), // 5 resolved in the future
        ],
    )
    .await;
    let statuses: Vec<_> = r.results.iter().map(|x| x.status).collect();
    use pb::ImportItemStatus::{Created as C, Failed as F};
    assert_eq!(statuses, [C, F, F, F, F, F].map(|s| s as i32));
    assert_eq!(r.cases_opened_count, 1);
    for (i, field) in [
        (1, "complaint.past.resolve_time"),
        (2, "feedback.receive_time"),
        (3, "complaint.past.acknowledge_time"),
        (4, "complaint.past.acknowledge_time"),
        (5, "complaint.past.resolve_time"),
    ] {
        let x = &r.results[i];
        assert_eq!(
            x.error_code,
            Code::InvalidArgument as i32,
            "item {i}: {x:?}"
        );
        assert!(
            x.error_message.contains(field),
            "item {i} names {field}: {}",
            x.error_message
        );
    }

    let case = app.get_case(&r.results[0].case_id).await;
    assert_eq!(status_of(&case), pb::CaseStatus::Closed);
    // Stored to the microsecond.
    let micros = |t: &Option<prost_types::Timestamp>| time_of(t).timestamp_micros();
    let h = handled(1, 30).unwrap();
    assert_eq!(micros(&case.open_time), micros(&received));
    assert_eq!(micros(&case.acknowledge_time), micros(&h.acknowledge_time));
    assert_eq!(micros(&case.resolve_time), micros(&h.resolve_time));
    assert_eq!(case.close_time, case.resolve_time);
    let events = app.case_events(&case.case_id).await;
    assert_eq!(events.len(), 1, "one Opened event: {events:?}");
    assert_eq!(events[0].note, "Fan bearing replaced; a night refunded.");
    // What the scheduler and metrics read: the case already done, so no clock is armed.
    let opened = app.events("case", &case.case_id).await;
    let facts = opened
        .iter()
        .find_map(|e| match payload(e) {
            Payload::CaseOpened(o) => o.case.clone(),
            _ => None,
        })
        .expect("CaseOpened");
    assert_eq!(facts.status, pb::CaseStatus::Closed as i32);
    assert_eq!(facts.resolve_time, case.resolve_time);
    assert_eq!(facts.acknowledge_time, case.acknowledge_time);

    // The past is an import's alone: SubmitFeedback refuses it and writes nothing.
    let before = app.counts().await;
    let mut live = complaint("sh-bund", Ch::Phone, "Rattling AC.");
    live.feedback.as_mut().unwrap().receive_time = received;
    live.complaint.as_mut().unwrap().past = handled(1, 30);
    let refused = app.head_office().submit_feedback(live).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("complaint.past"), "{refused:?}");
    assert_eq!(app.counts().await, before);
}
