//! R2, short version: two follow-up-scheduler replicas fire thousands of due timers while one
//! of them is SIGKILLed mid-claim, again and again, and restarted. Every timer fires, and
//! fires once: one firing record per timer, none twice. A killed replica's claims come
//! back after their lease (`timers.lease`, 3 s here) and the other replica fires them.

use guestloop_testkit::TEST_CHAIN_TOML;
use guestloop_testkit::platform::Platform;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TIMERS: i64 = 60_000;
const KILLS: usize = 3;

/// Timers not yet fired: pending or claimed (running).
async fn pending(db: &mut sqlx::PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM followup.timers WHERE state IN (1, 2)")
        .fetch_one(db)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_mid_claim_fires_every_timer_exactly_once() {
    let spec = guestloop_e2e::platform_spec(
        "r2",
        "follow-up-scheduler",
        TEST_CHAIN_TOML,
        BTreeMap::from([
            ("GUESTLOOP__TIMERS__LEASE".to_string(), "3s".to_string()),
            ("GUESTLOOP__TIMERS__ACTION_TIMEOUT".into(), "1s".into()),
            ("GUESTLOOP__TIMERS__POLL_INTERVAL".into(), "100ms".into()),
        ]),
    )
    .await;
    let mut victim = Platform::start_one(&spec, "follow-up-scheduler", true)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut db = sqlx::PgConnection::connect(&spec.cluster.admin_url(&spec.database))
        .await
        .unwrap();
    // Post-stay timers with no action, due a minute ago: the firing machinery alone (claim
    // under a lease, late policy, firing record), as benchmark P4 loads them.
    sqlx::query(
        "INSERT INTO followup.timers (id, key, purpose, property_id, due_time, state, late_policy,
            late_threshold_ms, create_time, update_time)
         SELECT gen_random_uuid(), 'r2:' || i, 3, 'sh-bund', now() - interval '1 minute',
            1, 1, 3600000, now(), now()
         FROM generate_series(1, $1) AS i",
    )
    .bind(TIMERS)
    .execute(&mut db)
    .await
    .unwrap();
    let started = Instant::now();
    let mut survivor = Platform::start_one(&spec, "follow-up-scheduler", true)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    let mut killed_with_pending = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(500)).await;
        killed_with_pending.push(pending(&mut db).await.unwrap());
        victim.kill().unwrap();
        victim = Platform::start_one(&spec, "follow-up-scheduler", true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert!(
        killed_with_pending.iter().all(|p| *p > 0),
        "a kill came after the work was done, proving nothing: {killed_with_pending:?}"
    );
    loop {
        let left = pending(&mut db).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{left} timers still pending"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_after = started.elapsed();

    let (fired, firings, twice): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM followup.timers WHERE state = 3),
                (SELECT count(*) FROM followup.timer_firings),
                (SELECT count(*) - count(DISTINCT timer_id) FROM followup.timer_firings)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(fired, TIMERS, "timers fired");
    assert_eq!(twice, 0, "timers fired twice");
    assert_eq!(firings, TIMERS, "one firing record per timer");
    eprintln!(
        "R2: {TIMERS} due timers, 2 replicas, {KILLS} SIGKILLs of one (pending at each kill: {killed_with_pending:?}); all fired once after {drained_after:?}"
    );
    let _ = victim.stop(Duration::from_secs(10));
    let _ = survivor.stop(Duration::from_secs(10));
}
