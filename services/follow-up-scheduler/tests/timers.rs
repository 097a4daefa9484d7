//! The timer API: schedule, replace, cancel by key; validation; scope; paging.

mod common;

use common::*;
use guestloop_proto::followup::v1 as pb;
use pb::ScheduleOutcome as O;
use pb::TimerState as S;
use tonic::Code;

#[tokio::test]
async fn schedule_replace_and_cancel_by_key() {
    let app = TestApp::spawn(false).await;
    let k = key("satisfaction_contact");
    let due = in_ms(3_600_000);
    let first = app.schedule(timer(&k, "sh-bund", due)).await;
    assert_eq!(first.outcome, O::Created as i32);
    let t = first.timer.unwrap();
    assert_eq!((t.generation, t.state), (1, S::Pending as i32));
    assert_eq!(t.late_threshold, Some(secs(30.0)), "the configured default");

    let again = app.schedule(timer(&k, "sh-bund", due)).await;
    assert_eq!(again.outcome, O::Unchanged as i32);
    assert_eq!(again.timer.unwrap().generation, 1);

    let moved = app
        .schedule(timer(&k, "sh-bund", due + chrono::Duration::hours(1)))
        .await;
    assert_eq!(moved.outcome, O::Replaced as i32);
    let moved = moved.timer.unwrap();
    assert_eq!(moved.generation, 2);
    assert_eq!(moved.timer_id, t.timer_id, "one timer per key");

    let cancel = |reason: &str| pb::CancelTimerRequest {
        key: k.clone(),
        reason: reason.into(),
    };
    let c = app
        .head_office()
        .cancel_timer(cancel("stay cancelled"))
        .await
        .unwrap()
        .into_inner();
    assert!(c.cancelled);
    assert_eq!(c.timer.unwrap().state, S::Cancelled as i32);
    let c = app
        .head_office()
        .cancel_timer(cancel(""))
        .await
        .unwrap()
        .into_inner();
    assert!(!c.cancelled, "cancelling twice is not an error");
    let missing = app
        .head_office()
        .cancel_timer(pb::CancelTimerRequest {
            key: "ext/nobody/x".into(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!missing.cancelled && missing.timer.is_none());

    // Scheduled again after a cancel: a new generation, pending.
    let back = app.schedule(timer(&k, "sh-bund", due)).await;
    assert_eq!(back.outcome, O::Created as i32);
    let back = back.timer.unwrap();
    assert_eq!((back.generation, back.state), (3, S::Pending as i32));
    let by_id = app
        .head_office()
        .get_timer(pb::GetTimerRequest {
            key: String::new(),
            timer_id: back.timer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .timer
        .unwrap();
    assert_eq!(by_id.key, k);
}

#[tokio::test]
async fn invalid_requests_name_their_fields() {
    let app = TestApp::spawn(false).await;
    let err = app
        .head_office()
        .schedule_timer(pb::ScheduleTimerRequest {
            timer: Some(pb::Timer {
                key: " ".into(),
                property_id: "atlantis".into(),
                late_threshold: Some(secs(0.0)),
                action: Some(pb::TimerAction {
                    action: Some(pb::timer_action::Action::EscalateCase(
                        pb::EscalateCaseAction::default(),
                    )),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&err);
    fields.sort();
    assert_eq!(
        fields,
        [
            "timer.action.escalate_case.case_id",
            "timer.due_time",
            "timer.key",
            "timer.late_threshold",
            "timer.property_id",
            "timer.purpose",
        ]
    );
    let err = app
        .head_office()
        .get_timer(pb::GetTimerRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["key"]);
    let err = app
        .head_office()
        .list_timers(pb::ListTimersRequest {
            states: vec![42],
            page: Some(guestloop_proto::common::v1::PageRequest {
                page_size: 0,
                page_token: "garbage".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&err);
    fields.sort();
    assert_eq!(fields, ["page.page_token", "states[0]"]);
    // The scheduler's own namespaces are not for callers.
    for reserved in [
        "stay/x/satisfaction_contact",
        "case/x/first_response/warn/1",
        "guest/x/birthday/2027",
        "review/x/reply-due",
    ] {
        let err = app
            .head_office()
            .schedule_timer(pb::ScheduleTimerRequest {
                timer: Some(timer(reserved, "sh-bund", in_ms(60_000))),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            violated_fields(&err),
            vec!["timer.key".to_string()],
            "{reserved}"
        );
    }
}

#[tokio::test]
async fn another_propertys_timers_are_not_found() {
    let app = TestApp::spawn(false).await;
    let k = key("birthday");
    app.schedule(timer(&k, "sh-bund", in_ms(3_600_000))).await;
    let own = key("birthday");
    app.schedule(timer(&own, "hz-lake", in_ms(3_600_000))).await;
    let hz = app.staff("hz-lake");

    let err = hz
        .clone()
        .get_timer(pb::GetTimerRequest {
            key: k.clone(),
            timer_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = hz
        .clone()
        .schedule_timer(pb::ScheduleTimerRequest {
            timer: Some(timer(&key("x"), "sh-bund", in_ms(60_000))),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let c = hz
        .clone()
        .cancel_timer(pb::CancelTimerRequest {
            key: k.clone(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !c.cancelled && c.timer.is_none(),
        "answers as a missing timer"
    );
    assert_eq!(app.get(&k).await.state, S::Pending as i32, "left alone");
    let err = hz
        .clone()
        .list_timers(pb::ListTimersRequest {
            property_id: "sh-bund".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let listed = hz
        .clone()
        .list_timers(pb::ListTimersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .timers;
    let keys: Vec<_> = listed.iter().map(|t| t.key.clone()).collect();
    assert_eq!(keys, [own]);
}

#[tokio::test]
async fn list_pages_soonest_due_first() {
    let app = TestApp::spawn(false).await;
    let prefix = format!("ext-case/{}-{}/", std::process::id(), next());
    let mut expected = Vec::new();
    for i in (0..5).rev() {
        let k = format!("{prefix}{i}");
        app.schedule(timer(&k, "sz-bay", in_ms(60_000 * (i + 1))))
            .await;
        expected.insert(0, k);
    }
    app.schedule(timer(&key("other"), "sz-bay", in_ms(1_000)))
        .await;
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let r = app
            .head_office()
            .list_timers(pb::ListTimersRequest {
                key_prefix: prefix.clone(),
                states: vec![S::Pending as i32],
                page: Some(guestloop_proto::common::v1::PageRequest {
                    page_size: 2,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        seen.extend(r.timers.into_iter().map(|t| t.key));
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);
}
