//! guest-profile's GuestMerged through EventIngestService.DeliverEvents (issue 11): the
//! duplicate's timers, tasks and case facts move to the survivor, once, in any order
//! relative to the duplicate's own events and to other merges of a chain; redeliveries and
//! unknown or malformed ids are acknowledged without effect; a survivor keeps one birthday
//! greeting a year.

mod common;

use chrono::{Duration as Span, Utc};
use common::*;
use guestloop_proto::events::v1::{self as ev, EventEnvelope, event_envelope::Payload};
use guestloop_proto::feedback::v1 as fb;
use guestloop_proto::followup::v1 as pb;

fn uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn envelope(source: &str, aggregate_type: &str, aggregate_id: &str, p: Payload) -> EventEnvelope {
    EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        source: source.into(),
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.into(),
        sequence: 1,
        occur_time: Some(ts(Utc::now())),
        property_id: "sh-bund".into(),
        traceparent: String::new(),
        payload: Some(p),
    }
}

fn merged(survivor: &str, duplicate: &str) -> EventEnvelope {
    let mut e = envelope(
        "guest-profile",
        "guest",
        survivor,
        Payload::GuestMerged(ev::GuestMerged {
            survivor_guest_id: survivor.into(),
            duplicate_guest_id: duplicate.into(),
        }),
    );
    e.property_id = String::new();
    e
}

fn checked_out(stay: &str, guest: &str) -> EventEnvelope {
    envelope(
        "guest-profile",
        "stay",
        stay,
        Payload::StayCheckedOut(ev::StayCheckedOut {
            stay_id: stay.into(),
            guest_id: guest.into(),
            property_id: "sh-bund".into(),
            checked_out_time: Some(ts(Utc::now())),
            ..Default::default()
        }),
    )
}

fn case_opened(case_id: &str, guest: &str) -> EventEnvelope {
    let now = Utc::now();
    envelope(
        "feedback-intake",
        "case",
        case_id,
        Payload::CaseOpened(ev::CaseOpened {
            case: Some(ev::CaseFacts {
                case_id: case_id.into(),
                reference: "SH-BUND-2026-000001".into(),
                property_id: "sh-bund".into(),
                guest_id: guest.into(),
                status: fb::CaseStatus::Received as i32,
                escalation_tier: fb::EscalationTier::FrontLine as i32,
                urgency: 2,
                department: 1,
                open_time: Some(ts(now)),
                first_response_due_time: Some(ts(now + Span::hours(1))),
                resolution_due_time: Some(ts(now + Span::hours(24))),
                version: 1,
                ..Default::default()
            }),
            feedback_id: String::new(),
        }),
    )
}

/// A task for `guest` written straight into the table (as a previous-release pod or any
/// writer would): the trigger, not the writer, settles its guest.
async fn insert_task(app: &TestApp, guest: &str) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO tasks (id, kind, property_id, guest_id, title, due_time, status,
            created_by, create_time, update_time)
         VALUES ($1, 1, 'sh-bund', $2, 'call back', now() + interval '1 day', 1, 'test',
            now(), now())",
    )
    .bind(id)
    .bind(guest)
    .execute(&app.pool)
    .await
    .expect("insert task");
    id
}

/// The guest each of the guest's rows names: (timers, tasks, cases) per guest id.
async fn rows_of(app: &TestApp, guest: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM timers WHERE guest_id = $1),
                (SELECT COUNT(*) FROM tasks WHERE guest_id = $1),
                (SELECT COUNT(*) FROM cases WHERE guest_id = $1)",
    )
    .bind(guest)
    .fetch_one(&app.pool)
    .await
    .expect("rows")
}

/// A check-out (three plan timers), a case and a task for `guest`.
async fn history(app: &TestApp, guest: &str) {
    deliver(
        app,
        vec![checked_out(&uid(), guest), case_opened(&uid(), guest)],
    )
    .await;
    insert_task(app, guest).await;
}

const NONE: (i64, i64, i64) = (0, 0, 0);
const ONE_HISTORY: (i64, i64, i64) = (3, 1, 1);

#[tokio::test]
async fn a_merge_moves_timers_tasks_and_cases_once() {
    let app = TestApp::spawn(false).await;
    let (survivor, duplicate, bystander) = (uid(), uid(), uid());
    for g in [&survivor, &duplicate, &bystander] {
        history(&app, g).await;
    }
    let merge = merged(&survivor, &duplicate);
    deliver(&app, vec![merge.clone()]).await;
    assert_eq!(rows_of(&app, &duplicate).await, NONE);
    assert_eq!(rows_of(&app, &survivor).await, (6, 2, 2));
    assert_eq!(rows_of(&app, &bystander).await, ONE_HISTORY);

    // Redelivered (alone and twice in one batch): acknowledged, applied once.
    let before: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT max(update_time) FROM timers WHERE guest_id = $1")
            .bind(&survivor)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    deliver(&app, vec![merge.clone()]).await;
    deliver(&app, vec![merge.clone(), merge.clone()]).await;
    let after: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT max(update_time) FROM timers WHERE guest_id = $1")
            .bind(&survivor)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(before, after, "a redelivery touches nothing");
    let (merges, inbox): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM guest_merges),
                (SELECT COUNT(*) FROM inbox WHERE event_id = $1::uuid)",
    )
    .bind(&merge.event_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((merges, inbox), (1, 1));
    assert_eq!(rows_of(&app, &survivor).await, (6, 2, 2));
}

#[tokio::test]
async fn the_duplicates_events_after_the_merge_land_on_the_survivor() {
    let app = TestApp::spawn(false).await;
    let (survivor, duplicate) = (uid(), uid());
    deliver(&app, vec![merged(&survivor, &duplicate)]).await;
    // The merge came first: the duplicate's check-out, case and task arrive after it.
    history(&app, &duplicate).await;
    // So does a timer scheduled over the API for the duplicate.
    let key = key("merged");
    let mut t = timer(&key, "sh-bund", Utc::now() + Span::hours(1));
    t.guest_id = duplicate.clone();
    app.schedule(t.clone()).await;
    assert_eq!(app.get(&key).await.guest_id, survivor);
    // Its retry is the same timer, not a replacement.
    let again = app.schedule(t).await;
    assert_eq!(again.outcome, pb::ScheduleOutcome::Unchanged as i32);
    assert_eq!(again.timer.unwrap().generation, 1);
    assert_eq!(rows_of(&app, &duplicate).await, NONE);
    assert_eq!(rows_of(&app, &survivor).await, (4, 1, 1));
}

#[tokio::test]
async fn a_chain_ends_on_its_last_survivor_in_either_order() {
    // (name, merges in delivery order as (survivor, duplicate) indexes into [d, s, t])
    type Case = (&'static str, [(usize, usize); 2]);
    let cases: [Case; 2] = [
        ("d->s then s->t", [(1, 0), (2, 1)]),
        ("s->t then d->s", [(2, 1), (1, 0)]),
    ];
    let app = TestApp::spawn(false).await;
    for (name, merges) in cases {
        let ids = [uid(), uid(), uid()];
        for g in &ids {
            history(&app, g).await;
        }
        for (s, d) in merges {
            deliver(&app, vec![merged(&ids[s], &ids[d])]).await;
        }
        // And a late check-out and task of the first duplicate.
        deliver(&app, vec![checked_out(&uid(), &ids[0])]).await;
        insert_task(&app, &ids[0]).await;
        assert_eq!(rows_of(&app, &ids[0]).await, NONE, "{name}: d");
        assert_eq!(rows_of(&app, &ids[1]).await, NONE, "{name}: s");
        assert_eq!(rows_of(&app, &ids[2]).await, (12, 4, 3), "{name}: t");
    }
}

#[tokio::test]
async fn unknown_and_malformed_merges_are_acknowledged_without_effect() {
    let app = TestApp::spawn(false).await;
    let bystander = uid();
    history(&app, &bystander).await;
    let same = uid();
    // (what, event, whether it is remembered)
    let cases = [
        ("never seen ids", merged(&uid(), &uid()), true),
        ("empty survivor", merged("", &uid()), false),
        ("not a uuid", merged(&uid(), "guest-7"), false),
        ("into itself", merged(&same, &same), false),
    ];
    for (what, event, remembered) in cases {
        let id = event.event_id.clone();
        deliver(&app, vec![event]).await;
        let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE event_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(inbox == 1, remembered, "{what}");
    }
    assert_eq!(rows_of(&app, &bystander).await, ONE_HISTORY);
    let merges: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM guest_merges")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(merges, 1);
}

#[tokio::test]
async fn a_survivor_keeps_one_birthday_greeting_a_year() {
    let app = TestApp::spawn(false).await;
    let (survivor, duplicate) = (uid(), uid());
    // Birthday keys are the scheduler's own (planned from check-outs with guest-profile's
    // birthday), so they are written as the planner would.
    for (guest, year) in [(&survivor, 2027), (&duplicate, 2027), (&duplicate, 2028)] {
        sqlx::query(
            "INSERT INTO timers (id, key, purpose, property_id, guest_id, due_time, state,
                late_policy, late_threshold_ms, create_time, update_time)
             VALUES ($1, $2, $3, 'sh-bund', $4, now() + interval '30 days', 1, 2, 0, now(),
                now())",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(format!("guest/{guest}/birthday/{year}"))
        .bind(pb::TimerPurpose::BirthdayCare as i16)
        .bind(guest)
        .execute(&app.pool)
        .await
        .expect("insert birthday timer");
    }
    deliver(&app, vec![merged(&survivor, &duplicate)]).await;
    // (key, state, skip reason)
    let want = [
        (
            format!("guest/{survivor}/birthday/2027"),
            pb::TimerState::Pending,
            "",
        ),
        (
            format!("guest/{duplicate}/birthday/2027"),
            pb::TimerState::Cancelled,
            "merged",
        ),
        (
            format!("guest/{duplicate}/birthday/2028"),
            pb::TimerState::Pending,
            "",
        ),
    ];
    for (key, state, reason) in want {
        let t = app.get(&key).await;
        assert_eq!(
            (t.state, t.skip_reason.as_str()),
            (state as i32, reason),
            "{key}"
        );
        assert_eq!(t.guest_id, survivor, "{key}");
    }
}
