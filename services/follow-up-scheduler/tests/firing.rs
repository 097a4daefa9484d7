//! The firing worker: due timers fire once, survive a restart, obey their late policy, are
//! fired exactly once by racing replicas (each running `timers.workers` firing loops, two by
//! default), and are taken over from a replica that died.

mod common;

use common::*;
use guestloop_proto::followup::v1 as pb;
use pb::ScheduleOutcome as O;
use pb::TimerState as S;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_due_timer_fires_once_and_is_then_left_alone() {
    let app = TestApp::spawn(true).await;
    let k = key("satisfaction_contact");
    let due = in_ms(300);
    let mut t = timer(&k, "sh-bund", due);
    t.action = Some(pb::TimerAction {
        action: Some(pb::timer_action::Action::CreateTask(
            pb::CreateTaskAction::default(),
        )),
    });
    app.schedule(t.clone()).await;
    let fired = app.wait_for(&k, &[S::Fired], WAIT).await;
    assert!(!fired.late);
    assert_eq!(fired.attempt_count, 1);
    let fire_time = fired.fire_time.unwrap();
    assert!(
        (fire_time.seconds, fire_time.nanos) >= (ts(due).seconds, ts(due).nanos / 1000 * 1000),
        "not before its due time"
    );
    // A re-anchored check-out never fires it twice.
    t.due_time = Some(ts(in_ms(200)));
    let again = app.schedule(t).await;
    assert_eq!(again.outcome, O::AlreadyDone as i32);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.firings(&fired.timer_id).await, 1);
    let cancel = app
        .head_office()
        .cancel_timer(pb::CancelTimerRequest {
            key: k.clone(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!cancel.cancelled);
    assert_eq!(cancel.timer.unwrap().state, S::Fired as i32);
    let metrics = app.metrics().await;
    for name in [
        "scheduler_timer_lag_seconds_bucket",
        "scheduler_timers_backlog",
        "scheduler_timers_fired_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    assert!(!metrics.contains(&k), "no timer keys in metrics");
}

#[tokio::test]
async fn a_cancelled_timer_never_fires_and_a_replaced_one_fires_at_its_new_time() {
    let app = TestApp::spawn(true).await;
    let cancelled = key("survey_reminder");
    app.schedule(timer(&cancelled, "hz-lake", in_ms(400))).await;
    let moved = key("post_stay_follow_up");
    app.schedule(timer(&moved, "hz-lake", in_ms(400))).await;
    let new_due = in_ms(1_200);
    let r = app.schedule(timer(&moved, "hz-lake", new_due)).await;
    assert_eq!(r.outcome, O::Replaced as i32);
    app.head_office()
        .cancel_timer(pb::CancelTimerRequest {
            key: cancelled.clone(),
            reason: String::new(),
        })
        .await
        .unwrap();
    let fired = app.wait_for(&moved, &[S::Fired], WAIT).await;
    assert_eq!(fired.generation, 2);
    let ft = fired.fire_time.unwrap();
    assert!(ft.seconds * 1000 + i64::from(ft.nanos / 1_000_000) >= new_due.timestamp_millis() - 1);
    let c = app.get(&cancelled).await;
    assert_eq!(c.state, S::Cancelled as i32);
    assert_eq!(app.firings(&c.timer_id).await, 0);
    let key_used: String =
        sqlx::query_scalar("SELECT idempotency_key FROM timer_firings WHERE timer_id = $1::uuid")
            .bind(&fired.timer_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(key_used, format!("timer:{}:2", fired.timer_id));
}

#[tokio::test]
async fn timers_survive_a_restart() {
    let mut app = TestApp::spawn(true).await;
    let k = key("birthday");
    let due = in_ms(3_000);
    app.schedule(timer(&k, "sz-bay", due)).await;
    let stopping = Instant::now();
    app.stop(0).await;
    assert!(chrono::Utc::now() < due, "stopped before it came due");
    eprintln!("replica stopped in {:?}", stopping.elapsed());
    // A new process on the same database.
    app.start(true, "").await;
    let fired = app.wait_for(&k, &[S::Fired], WAIT).await;
    assert_eq!(app.firings(&fired.timer_id).await, 1);
}

#[tokio::test]
async fn late_timers_follow_their_late_policy() {
    // No worker while they come due: every replica is "down".
    let mut app = TestApp::spawn(false).await;
    let mk = |policy: pb::LatePolicy, threshold: f64| {
        let k = key(policy.as_str_name());
        let mut t = timer(&k, "hk-harbour", in_ms(100));
        t.late_policy = policy as i32;
        t.late_threshold = Some(secs(threshold));
        (k, t)
    };
    let (skip, t) = mk(pb::LatePolicy::Skip, 0.2);
    app.schedule(t).await;
    let (fire, t) = mk(pb::LatePolicy::Fire, 0.2);
    app.schedule(t).await;
    let (escalate, t) = mk(pb::LatePolicy::Escalate, 0.2);
    app.schedule(t).await;
    let (on_time, t) = mk(pb::LatePolicy::Skip, 60.0);
    app.schedule(t).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    app.start(true, "").await;

    let s = app.wait_for(&skip, &[S::Skipped, S::Fired], WAIT).await;
    assert_eq!(s.state, S::Skipped as i32);
    assert_eq!(s.skip_reason, "late");
    assert!(s.late);
    assert_eq!(
        app.firings(&s.timer_id).await,
        0,
        "a skipped action never runs"
    );

    let f = app.wait_for(&fire, &[S::Fired, S::Skipped], WAIT).await;
    assert_eq!(f.state, S::Fired as i32);
    assert!(f.late);
    assert!(
        f.lateness.unwrap().seconds * 1000 + i64::from(f.lateness.unwrap().nanos / 1_000_000)
            >= 800
    );

    let e = app.wait_for(&escalate, &[S::Fired, S::Skipped], WAIT).await;
    assert_eq!(
        e.state,
        S::Skipped as i32,
        "an escalated late timer does not run"
    );
    assert_eq!(e.skip_reason, "late: for the duty manager");
    assert!(e.late);
    assert_eq!(app.firings(&e.timer_id).await, 0);
    let decision: String = sqlx::query_scalar("SELECT late_decision FROM timers WHERE key = $1")
        .bind(&escalate)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(decision, "escalate");

    let o = app.wait_for(&on_time, &[S::Fired, S::Skipped], WAIT).await;
    assert_eq!(o.state, S::Fired as i32, "within its threshold: not late");
    assert!(!o.late);
}

#[tokio::test]
async fn a_send_message_timer_without_notification_fails_visibly() {
    let app = TestApp::spawn(true).await;
    let k = key("satisfaction_contact");
    let mut t = timer(&k, "sh-bund", in_ms(100));
    t.action = Some(pb::TimerAction {
        action: Some(pb::timer_action::Action::SendMessage(
            pb::SendMessageAction {
                message: Some(Default::default()),
            },
        )),
    });
    app.schedule(t).await;
    let failed = app.wait_for(&k, &[S::Failed, S::Fired], WAIT).await;
    assert_eq!(failed.state, S::Failed as i32);
    assert!(
        failed.last_error.contains("notification"),
        "{}",
        failed.last_error
    );
}

#[tokio::test]
async fn two_replicas_fire_every_timer_exactly_once() {
    let mut app = TestApp::spawn(true).await;
    app.start(true, "").await;
    const N: usize = 100;
    // All due at the same instant, so both replicas' firing loops (two each) race for them.
    let due = in_ms(1_500);
    let mut keys = Vec::new();
    for i in 0..N {
        let k = format!("race/{}-{}/{i}", std::process::id(), next());
        app.schedule(timer(&k, "hz-lake", due)).await;
        keys.push(k);
    }
    let started = Instant::now();
    loop {
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE state IN (1, 2)")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if open == 0 {
            break;
        }
        assert!(started.elapsed() < WAIT, "{open} timers never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let firings: Vec<(String, String)> =
        sqlx::query_as("SELECT timer_id::text, worker FROM timer_firings")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let distinct: HashSet<&str> = firings.iter().map(|(t, _)| t.as_str()).collect();
    let fired: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timers WHERE state = 3")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let per_worker: Vec<i64> =
        sqlx::query_scalar("SELECT COUNT(*) FROM timer_firings GROUP BY worker ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut lateness_ms: Vec<f64> = sqlx::query_scalar(
        "SELECT (EXTRACT(EPOCH FROM fire_time - due_time) * 1000)::float8 FROM timers",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    lateness_ms.sort_by(f64::total_cmp);
    let p = |q: f64| lateness_ms[((lateness_ms.len() as f64 * q).ceil() as usize).clamp(1, N) - 1];
    let duplicates = firings.len() - distinct.len();
    let misses = N - distinct.len();
    eprintln!(
        "numbers: {N} timers, {} fired, {} firings, {duplicates} duplicates, {misses} misses, \
         per firing loop {per_worker:?}, lateness p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        fired,
        firings.len(),
        p(0.5),
        p(0.99),
        lateness_ms[N - 1]
    );
    assert_eq!(fired, N as i64);
    assert_eq!(firings.len(), N, "duplicates or misses");
    assert_eq!(distinct.len(), N);
    assert!(lateness_ms[0] >= 0.0, "none fired early");
    assert!(p(0.99) < 5_000.0, "lateness p99 {} ms", p(0.99));
}

#[tokio::test]
async fn a_timer_held_by_a_dead_replica_is_taken_over_when_its_lease_runs_out() {
    let mut app = TestApp::spawn(false).await;
    let k = key("first_response");
    let t = app
        .schedule(timer(&k, "sh-bund", in_ms(0)))
        .await
        .timer
        .unwrap();
    // A replica claimed it and died mid-job: RUNNING, its lease running for another 1.5 s.
    sqlx::query(
        "UPDATE timers SET state = 2, lease_owner = 'dead-replica',
            lease_until = now() + interval '1500 milliseconds', attempt_count = 1
         WHERE key = $1",
    )
    .bind(&k)
    .execute(&app.pool)
    .await
    .unwrap();
    let claimed_at = Instant::now();
    app.start(true, "").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if claimed_at.elapsed() < Duration::from_millis(1_400) {
        assert_eq!(
            app.get(&k).await.state,
            S::Running as i32,
            "not taken while the lease holds"
        );
    }
    let fired = app.wait_for(&k, &[S::Fired], WAIT).await;
    assert_eq!(fired.attempt_count, 2);
    let worker: String =
        sqlx::query_scalar("SELECT worker FROM timer_firings WHERE timer_id = $1::uuid")
            .bind(&t.timer_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_ne!(worker, "dead-replica");
    assert_eq!(app.firings(&t.timer_id).await, 1);
}
