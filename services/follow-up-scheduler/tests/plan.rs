//! The after-stay plan through EventIngestService.DeliverEvents, as guest-profile's and
//! feedback-intake's outbox relays call it: a check-out schedules the satisfaction contact,
//! its reminder and the 7-day follow-up at contact hours; redelivery changes nothing; a
//! corrected check-out re-anchors; answered surveys, cancelled stays and erased guests
//! cancel what no longer applies; with fast settings the contact fires into a REAL
//! notification, and two stays of one guest get one survey.
//!
//! No guest-profile peer is configured in these tests, so the consent precheck is skipped
//! (notification checks consent at send time) and no birthday greeting is planned.

mod common;

use chrono::{DateTime, Duration as Span, NaiveTime, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use common::*;
use guestloop_proto::common::v1::Date;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::followup::v1 as pb;
use guestloop_proto::guestprofile::v1::StayStatus;
use guestloop_testkit::grpc::assert_code;
use guestloop_testkit::keys;
use pb::TimerState as S;
use std::time::Duration;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);

fn to_utc(t: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.expect("timestamp");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).expect("valid timestamp")
}

/// A fresh id; guest-profile's stay and guest ids (and feedback ids) are UUIDs, and
/// notification refuses a message naming anything else.
fn uid(_what: &str) -> String {
    uuid::Uuid::new_v4().to_string()
}

fn envelope(aggregate_type: &str, aggregate_id: &str, payload: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::new_v4().to_string(),
        source: "guest-profile".into(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence: 1,
        occur_time: Some(ts(Utc::now())),
        property_id: "sh-bund".into(),
        traceparent: String::new(),
        payload: Some(payload),
    }
}

fn date(d: DateTime<Utc>) -> Option<Date> {
    let local = d.with_timezone(&Shanghai).date_naive();
    use chrono::Datelike;
    Some(Date {
        year: local.year(),
        month: local.month() as i32,
        day: local.day() as i32,
    })
}

fn checked_out(stay: &str, guest: &str, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        "stay",
        stay,
        Payload::StayCheckedOut(ev::StayCheckedOut {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
            checked_out_time: Some(ts(at)),
            arrival_date: date(at - Span::days(3)),
            departure_date: date(at),
            ..Default::default()
        }),
    )
}

fn stay_changed(stay: &str, guest: &str, status: StayStatus, at: DateTime<Utc>) -> EventEnvelope {
    envelope(
        "stay",
        stay,
        Payload::StayChanged(ev::StayChanged {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
            status: status as i32,
            arrival_date: date(at - Span::days(3)),
            departure_date: date(at),
            checked_out_time: Some(ts(at)),
            ..Default::default()
        }),
    )
}

fn survey_answered(stay: &str, guest: &str) -> EventEnvelope {
    let mut e = envelope(
        "feedback",
        &uid("feedback"),
        Payload::SurveyAnswered(ev::SurveyAnswered {
            feedback_id: uid("feedback"),
            property_id: "sh-bund".into(),
            guest_id: guest.into(),
            stay_id: stay.into(),
            answer_time: Some(ts(Utc::now())),
            csat: Some(5),
            ..Default::default()
        }),
    );
    e.source = "feedback-intake".into();
    e
}

fn satisfaction(stay: &str) -> String {
    format!("stay/{stay}/satisfaction_contact")
}

fn reminder(stay: &str) -> String {
    format!("stay/{stay}/survey_reminder")
}

fn follow_up(stay: &str) -> String {
    format!("stay/{stay}/post_stay_follow_up")
}

async fn try_get(app: &TestApp, key: &str) -> Result<pb::Timer, tonic::Status> {
    app.head_office()
        .get_timer(pb::GetTimerRequest {
            key: key.into(),
            timer_id: String::new(),
        })
        .await
        .map(|r| r.into_inner().timer.expect("timer"))
}

fn local_time(t: DateTime<Utc>) -> NaiveTime {
    t.with_timezone(&Shanghai).time()
}

/// Inside the default contact hours (10:00-20:00) and outside the default quiet hours.
#[track_caller]
fn assert_contact_hours(what: &str, t: DateTime<Utc>) {
    let local = local_time(t);
    assert!(
        local >= NaiveTime::from_hms_opt(10, 0, 0).unwrap()
            && local < NaiveTime::from_hms_opt(20, 0, 0).unwrap(),
        "{what} at {t} is {local} in Shanghai, outside 10:00-20:00"
    );
}

#[tokio::test]
async fn only_services_deliver_events() {
    let app = TestApp::spawn(false).await;
    let stay = uid("stay");
    for token in [
        keys().staff("sh-bund"),
        keys().head_office(),
        keys().regional("east"),
    ] {
        assert_code(
            app.events(&token)
                .deliver_events(ev::DeliverEventsRequest {
                    events: vec![checked_out(&stay, &uid("guest"), Utc::now())],
                })
                .await,
            Code::PermissionDenied,
        );
    }
    assert_code(
        app.events("not-a-token")
            .deliver_events(ev::DeliverEventsRequest { events: vec![] })
            .await,
        Code::Unauthenticated,
    );
    let timers: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timers")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((timers, inbox), (0, 0), "nothing applied");
    assert_code(try_get(&app, &satisfaction(&stay)).await, Code::NotFound);
}

#[tokio::test]
async fn a_check_out_plans_the_contacts_and_a_corrected_one_re_anchors_them() {
    let app = TestApp::spawn(false).await;
    let stay = uid("stay");
    let guest = uid("guest");
    // Microseconds: what the database keeps.
    let out = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let event = checked_out(&stay, &guest, out);
    deliver(&app, vec![event.clone()]).await;

    let s = app.get(&satisfaction(&stay)).await;
    let r = app.get(&reminder(&stay)).await;
    let f = app.get(&follow_up(&stay)).await;
    for (t, purpose) in [
        (&s, pb::TimerPurpose::SatisfactionContact),
        (&r, pb::TimerPurpose::SurveyReminder),
        (&f, pb::TimerPurpose::PostStayFollowUp),
    ] {
        assert_eq!(t.state, S::Pending as i32, "{t:?}");
        assert_eq!(t.purpose, purpose as i32);
        assert_eq!(t.generation, 1);
        assert_eq!(t.property_id, "sh-bund");
        assert_eq!(t.guest_id, guest);
        assert_eq!(t.stay_id, stay);
        assert_eq!(t.late_policy, pb::LatePolicy::Skip as i32);
        match t.action.as_ref().and_then(|a| a.action.as_ref()) {
            Some(pb::timer_action::Action::SendMessage(m)) => {
                let spec = m.message.as_ref().expect("message");
                assert_eq!(spec.stay_id, stay);
                assert_eq!(spec.property_id, "sh-bund");
            }
            other => panic!("a plan timer sends a message: {other:?}"),
        }
    }

    // The satisfaction contact: at least satisfaction_delay (3 h) after check-out, inside
    // the 48 h standard, at a contact hour.
    let s_due = to_utc(s.due_time);
    assert!(s_due >= out + Span::hours(3), "{s_due} vs check-out {out}");
    assert!(s_due <= out + Span::hours(48), "{s_due} vs check-out {out}");
    assert_contact_hours("the satisfaction contact", s_due);
    // Skipped rather than sent after the 48 h.
    let threshold = s.late_threshold.expect("late threshold");
    let window_end =
        s_due + Span::seconds(threshold.seconds) + Span::nanoseconds(threshold.nanos.into());
    assert!(
        (window_end - (out + Span::hours(48)))
            .num_milliseconds()
            .abs()
            <= 1,
        "late after the 48 h: {window_end} vs {out}"
    );
    // The reminder a day after the survey; the follow-up 7 days after check-out.
    let r_due = to_utc(r.due_time);
    assert!(r_due >= s_due + Span::hours(24), "{r_due} vs {s_due}");
    assert_contact_hours("the survey reminder", r_due);
    let f_due = to_utc(f.due_time);
    assert!(f_due >= out + Span::days(7), "{f_due} vs check-out {out}");
    assert!(f_due < out + Span::days(8), "{f_due} vs check-out {out}");
    assert_contact_hours("the post-stay follow-up", f_due);

    // The same event again: acknowledged, nothing changes.
    deliver(&app, vec![event]).await;
    let again = app.get(&satisfaction(&stay)).await;
    assert_eq!(again.generation, 1);
    assert_eq!(again.due_time, s.due_time);
    assert_eq!(again.update_time, s.update_time);
    let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(inbox, 1);

    // guest-profile corrects the check-out a day later: the pending plan moves with it.
    let later = out + Span::days(1);
    deliver(
        &app,
        vec![stay_changed(&stay, &guest, StayStatus::CheckedOut, later)],
    )
    .await;
    let moved = app.get(&satisfaction(&stay)).await;
    assert_eq!(moved.state, S::Pending as i32);
    assert_eq!(moved.generation, 2);
    assert_eq!(moved.timer_id, s.timer_id, "the same timer, re-anchored");
    assert_eq!(to_utc(moved.due_time), s_due + Span::days(1));
    let f_moved = app.get(&follow_up(&stay)).await;
    assert_eq!(f_moved.generation, 2);
    assert_eq!(to_utc(f_moved.due_time), f_due + Span::days(1));
    // A change that is not a check-out (still checked in) leaves the plan alone.
    deliver(
        &app,
        vec![stay_changed(
            &stay,
            &guest,
            StayStatus::CheckedIn,
            later + Span::days(1),
        )],
    )
    .await;
    assert_eq!(app.get(&satisfaction(&stay)).await.generation, 2);
}

#[tokio::test]
async fn an_answered_survey_needs_no_reminder() {
    let app = TestApp::spawn(false).await;
    let guest = uid("guest");
    let stay = uid("stay");
    deliver(&app, vec![checked_out(&stay, &guest, Utc::now())]).await;
    assert_eq!(app.get(&reminder(&stay)).await.state, S::Pending as i32);
    deliver(&app, vec![survey_answered(&stay, &guest)]).await;
    assert_eq!(app.get(&reminder(&stay)).await.state, S::Cancelled as i32);
    assert_eq!(
        app.get(&satisfaction(&stay)).await.state,
        S::Pending as i32,
        "only the reminder goes"
    );
    assert_eq!(app.get(&follow_up(&stay)).await.state, S::Pending as i32);

    // The answer can arrive before the check-out event: no reminder is planned at all.
    let early = uid("stay");
    deliver(&app, vec![survey_answered(&early, &guest)]).await;
    deliver(&app, vec![checked_out(&early, &guest, Utc::now())]).await;
    assert_code(try_get(&app, &reminder(&early)).await, Code::NotFound);
    assert_eq!(
        app.get(&satisfaction(&early)).await.state,
        S::Pending as i32
    );
    assert_eq!(app.get(&follow_up(&early)).await.state, S::Pending as i32);
    // A re-anchored check-out does not bring it back.
    deliver(
        &app,
        vec![stay_changed(
            &early,
            &guest,
            StayStatus::CheckedOut,
            Utc::now() + Span::hours(1),
        )],
    )
    .await;
    assert_code(try_get(&app, &reminder(&early)).await, Code::NotFound);
}

#[tokio::test]
async fn a_cancelled_stay_loses_its_pending_plan() {
    let app = TestApp::spawn(false).await;
    let guest = uid("guest");
    let (cancelled, changed, kept) = (uid("stay"), uid("stay"), uid("stay"));
    deliver(
        &app,
        vec![
            checked_out(&cancelled, &guest, Utc::now()),
            checked_out(&changed, &guest, Utc::now()),
            checked_out(&kept, &guest, Utc::now()),
        ],
    )
    .await;
    deliver(
        &app,
        vec![
            envelope(
                "stay",
                &cancelled,
                Payload::StayCancelled(ev::StayCancelled {
                    stay_id: cancelled.clone(),
                    guest_id: guest.clone(),
                    property_id: "sh-bund".into(),
                }),
            ),
            stay_changed(&changed, &guest, StayStatus::Cancelled, Utc::now()),
        ],
    )
    .await;
    for stay in [&cancelled, &changed] {
        for k in [satisfaction(stay), reminder(stay), follow_up(stay)] {
            assert_eq!(app.get(&k).await.state, S::Cancelled as i32, "{k}");
        }
    }
    for k in [satisfaction(&kept), reminder(&kept), follow_up(&kept)] {
        assert_eq!(app.get(&k).await.state, S::Pending as i32, "{k}");
    }
}

#[tokio::test]
async fn an_erased_guest_is_contacted_no_more() {
    let app = TestApp::spawn(false).await;
    let (erased, other) = (uid("guest"), uid("guest"));
    let (a, b, c) = (uid("stay"), uid("stay"), uid("stay"));
    deliver(
        &app,
        vec![
            checked_out(&a, &erased, Utc::now()),
            checked_out(&b, &erased, Utc::now() - Span::days(2)),
            checked_out(&c, &other, Utc::now()),
        ],
    )
    .await;
    // Staff's tasks about the guests: an open one and a done one with a note each.
    let mut api = app.head_office();
    let task = |guest: &str, title: &str| {
        let mut api = api.clone();
        let task = pb::FollowUpTask {
            kind: pb::TaskKind::ComplaintCallback as i32,
            property_id: "sh-bund".into(),
            title: title.into(),
            instructions: format!("{title}: room 1208, mobile on file"),
            guest_id: guest.into(),
            due_time: Some(ts(Utc::now() + Span::hours(4))),
            ..Default::default()
        };
        async move {
            api.create_task(pb::CreateTaskRequest {
                task: Some(task),
                idempotency_key: String::new(),
            })
            .await
            .expect("create task")
            .into_inner()
            .task
            .expect("task")
        }
    };
    let open = task(&erased, "Call Mr Wang about the noise").await;
    let done = task(&erased, "Bring Mr Wang a pillow").await;
    let others = task(&other, "Call Ms Chen back").await;
    api.complete_task(pb::CompleteTaskRequest {
        task_id: done.task_id.clone(),
        outcome: pb::TaskOutcome::IssueResolved as i32,
        outcome_note: "Mr Wang was happy with it".into(),
        ..Default::default()
    })
    .await
    .expect("complete task");

    let mut erase = envelope(
        "guest",
        &erased,
        Payload::GuestErased(ev::GuestErased {
            guest_id: erased.clone(),
        }),
    );
    erase.property_id = String::new();
    deliver(&app, vec![erase.clone()]).await;
    // A redelivery changes nothing more (one cancellation event, not two).
    deliver(&app, vec![erase]).await;
    let get = |id: String| {
        let mut api = api.clone();
        async move {
            api.get_task(pb::GetTaskRequest { task_id: id })
                .await
                .expect("get task")
                .into_inner()
                .task
                .expect("task")
        }
    };
    let (open, done, others) = (
        get(open.task_id).await,
        get(done.task_id).await,
        get(others.task_id).await,
    );
    assert_eq!(open.status, pb::TaskStatus::Cancelled as i32);
    assert_eq!(
        done.status,
        pb::TaskStatus::Completed as i32,
        "done stays done"
    );
    assert_eq!(
        done.outcome,
        pb::TaskOutcome::IssueResolved as i32,
        "kept for the counts"
    );
    for t in [&open, &done] {
        let words = format!("{} {} {}", t.title, t.instructions, t.outcome_note);
        assert!(
            !words.contains("Wang") && !words.contains("1208"),
            "{words}"
        );
        assert_eq!(t.title, "[erased]");
    }
    assert_eq!(others.title, "Call Ms Chen back");
    assert_eq!(others.status, pb::TaskStatus::Open as i32);
    let cancelled: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM outbox WHERE aggregate_type = 'task' AND aggregate_id = $1
          AND event_type = 'follow_up_task_cancelled'",
    )
    .bind(&open.task_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(cancelled.len(), 1, "{cancelled:?}");
    for stay in [&a, &b] {
        for k in [satisfaction(stay), reminder(stay), follow_up(stay)] {
            let t = app.get(&k).await;
            assert_eq!(t.state, S::Cancelled as i32, "{k}");
            assert_eq!(t.skip_reason, "erased");
        }
    }
    for k in [satisfaction(&c), reminder(&c), follow_up(&c)] {
        assert_eq!(app.get(&k).await.state, S::Pending as i32, "{k}");
    }
}

/// "HH:MM" of the Shanghai local time `offset` from now.
fn hh_mm(offset: Span) -> String {
    let t = local_time(Utc::now() + offset);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// A scheduler replica with the worker on, pointing at a real notification, whose plan
/// contacts a guest a second after check-out: contact hours around now and quiet hours
/// far from now (so neither blocks, whatever the time of day), on every property.
async fn fast_app() -> (TestApp, sqlx::PgPool) {
    let mut app = TestApp::spawn(false).await;
    let (peer, notification) = app.notification().await;
    let quiet = format!(
        "quiet_hours = {{ start = \"{}\", end = \"{}\" }}\ndefault_language = ",
        hh_mm(Span::hours(6)),
        hh_mm(Span::hours(8)),
    );
    let chain = guestloop_testkit::TEST_CHAIN_TOML.replace("default_language = ", &quiet);
    assert!(chain.contains("quiet_hours"));
    let extra = format!(
        "{peer}\n[plan]\nsatisfaction_delay = \"1s\"\ncontact_hours = {{ start = \"{}\", end = \"{}\" }}\n{chain}",
        hh_mm(-Span::hours(2)),
        hh_mm(Span::hours(2)),
    );
    app.start(true, &extra).await;
    // Events go to the fast replica.
    app.stop(0).await;
    (app, notification)
}

async fn messages_of(notification: &sqlx::PgPool, guest: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT id::text, idempotency_key FROM messages WHERE guest_id = $1")
        .bind(guest)
        .fetch_all(notification)
        .await
        .expect("messages")
}

#[tokio::test]
async fn the_satisfaction_contact_fires_into_notification() {
    let (app, notification) = fast_app().await;
    let (stay, guest) = (uid("stay"), uid("guest"));
    let out = Utc::now();
    deliver(&app, vec![checked_out(&stay, &guest, out)]).await;
    let planned = app.get(&satisfaction(&stay)).await;
    let due = to_utc(planned.due_time);
    assert!(
        (due - (out + Span::seconds(1))).num_milliseconds().abs() <= 1,
        "due a second after check-out: {due} vs {out}"
    );
    let fired = app
        .wait_for(
            &satisfaction(&stay),
            &[S::Fired, S::Skipped, S::Failed],
            WAIT,
        )
        .await;
    assert_eq!(fired.state, S::Fired as i32, "{fired:?}");
    assert!(!fired.late);
    assert!(!fired.message_id.is_empty());
    assert_eq!(app.firings(&fired.timer_id).await, 1);
    let messages = messages_of(&notification, &guest).await;
    assert_eq!(
        messages,
        vec![(
            fired.message_id.clone(),
            format!("timer:{}:1", fired.timer_id)
        )]
    );
    // The reminder and follow-up wait for their own time.
    assert_eq!(app.get(&reminder(&stay)).await.state, S::Pending as i32);
    assert_eq!(app.get(&follow_up(&stay)).await.state, S::Pending as i32);
}

#[tokio::test]
async fn two_stays_of_one_guest_get_one_survey() {
    let (app, notification) = fast_app().await;
    let guest = uid("guest");
    let (first, second) = (uid("stay"), uid("stay"));
    let out = Utc::now();
    deliver(
        &app,
        vec![
            checked_out(&first, &guest, out),
            checked_out(&second, &guest, out + Span::seconds(1)),
        ],
    )
    .await;
    let done = [S::Fired, S::Skipped, S::Failed];
    let a = app.wait_for(&satisfaction(&first), &done, WAIT).await;
    let b = app.wait_for(&satisfaction(&second), &done, WAIT).await;
    assert_eq!(a.state, S::Fired as i32, "the first due is sent: {a:?}");
    assert_eq!(b.state, S::Skipped as i32, "{b:?}");
    assert_eq!(b.skip_reason, "survey_cap");
    assert!(!b.late, "skipped for the cap, not for lateness");
    assert_eq!(app.firings(&b.timer_id).await, 0);
    let messages = messages_of(&notification, &guest).await;
    assert_eq!(messages.len(), 1, "one survey: {messages:?}");
    assert_eq!(messages[0].0, a.message_id);
}
