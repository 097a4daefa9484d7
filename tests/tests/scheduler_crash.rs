//! R2, short version: two follow-up-scheduler replicas fire thousands of due timers while one
//! of them is SIGKILLed mid-claim, again and again, and restarted. Every timer fires, and
//! fires once: one firing record per timer, none twice. A killed replica's claims come
//! back after their lease (`timers.lease`, 3 s here) and the other replica fires them.

use guestloop_testkit::TEST_CHAIN_TOML;
use guestloop_testkit::platform::Platform;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Due timers in the firing-machinery run: 60,000, times the fault scale.
fn timers() -> i64 {
    60_000 * i64::from(guestloop_testkit::fault_scale())
}

/// At least this many kills must land while work is left, or the run proved nothing.
const KILLS_THAT_COUNT: usize = 3;
/// SIGKILLs of the victim in a run: 3, times the fault scale.
fn kills() -> usize {
    3 * guestloop_testkit::fault_scale() as usize
}

/// Timers not yet fired: pending or claimed (running).
async fn pending(db: &mut sqlx::PgConnection) -> Result<i64, sqlx::Error> {
    unfired(db, "%").await
}

/// Timers whose key is LIKE `keys` not yet fired: pending or claimed (running).
async fn unfired(db: &mut sqlx::PgConnection, keys: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM followup.timers WHERE key LIKE $1 AND state IN (1, 2)")
        .bind(keys)
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
    .bind(timers())
    .execute(&mut db)
    .await
    .unwrap();
    let started = Instant::now();
    let mut survivor = Platform::start_one(&spec, "follow-up-scheduler", true)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    let mut killed_with_pending = Vec::new();
    for _ in 0..kills() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let left = pending(&mut db).await.unwrap();
        if left == 0 {
            break; // the long version can outlast the work
        }
        killed_with_pending.push(left);
        victim.kill().unwrap();
        victim = Platform::start_one(&spec, "follow-up-scheduler", true)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
    }
    assert!(
        killed_with_pending.len() >= KILLS_THAT_COUNT,
        "too few kills came before the work was done: {killed_with_pending:?}"
    );
    loop {
        let left = pending(&mut db).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120) * guestloop_testkit::fault_scale(),
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
    assert_eq!(fired, timers(), "timers fired");
    assert_eq!(twice, 0, "timers fired twice");
    assert_eq!(firings, timers(), "one firing record per timer");
    eprintln!(
        "R2: {} due timers, 2 replicas, {} SIGKILLs of one (pending at each kill: {killed_with_pending:?}); all fired once after {drained_after:?}",
        timers(),
        killed_with_pending.len()
    );
    let _ = victim.stop(Duration::from_secs(10));
    let _ = survivor.stop(Duration::from_secs(10));
}

/// R2, the effect side: timers whose action sends a guest an email, through a real
/// notification to a real SMTP server, while one of two scheduler replicas is SIGKILLed
/// mid-firing. A replica killed between asking notification for the message and recording
/// the firing leaves a claim that the other fires again after the lease; notification must
/// see that second call as the same message (idempotency key `timer:<id>:<generation>`),
/// so the guest gets each email once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_replica_mid_firing_sends_each_email_exactly_once() {
    use guestloop_proto::common::v1 as c;
    use guestloop_proto::followup::v1 as fu;
    use guestloop_proto::guestprofile::v1 as gp;
    use guestloop_proto::notification::v1 as nt;
    use guestloop_testkit::{scenario, sinks};

    let emails = 300 * guestloop_testkit::fault_scale() as usize;
    let smtp = sinks::smtp_sink();
    let spec = guestloop_e2e::platform_spec(
        "r2-effect",
        "follow-up-scheduler",
        &scenario::config_toml(smtp.port),
        BTreeMap::from([
            ("GUESTLOOP__TIMERS__LEASE".to_string(), "3s".to_string()),
            ("GUESTLOOP__TIMERS__ACTION_TIMEOUT".into(), "1s".into()),
            ("GUESTLOOP__TIMERS__BATCH_SIZE".into(), "20".into()),
            // Every mail counted below is a timer's: no morning report beside them.
            ("GUESTLOOP__DAILY_REPORT__ENABLED".into(), "false".into()),
        ]),
    )
    .await;
    let platform = Platform::start(&spec)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let mut victim = platform
        .replica(&spec, "follow-up-scheduler")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let conn = |name: &str| {
        guestloop_client::Connection::builder(platform.service(name).unwrap().endpoint())
            .token(&guestloop_e2e::head_office_token(&spec.signing_key))
            .connect_lazy()
            .unwrap()
    };
    let mut guests = conn("guest-profile").guest_profile();
    let guest = guests
        .create_guest(gp::CreateGuestRequest {
            guest: Some(gp::Guest {
                given_name: "Mei".into(),
                family_name: "Lin".into(),
                language: "en".into(),
                contacts: Some(gp::Contacts {
                    email: "r2@example.com".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            property_id: "sh-bund".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .guest
        .unwrap();
    guests
        .set_consent(gp::SetConsentRequest {
            guest_id: guest.guest_id.clone(),
            consent: Some(gp::Consent {
                channel: c::ContactChannel::Email as i32,
                purpose: c::ConsentPurpose::ServiceFollowUp as i32,
                granted: true,
                source: "r2".into(),
                record_time: None,
            }),
        })
        .await
        .unwrap();

    // Scheduled for an hour from now, then all made due at one instant (below), so both
    // replicas race for them however long scheduling took.
    let mut scheduler = conn("follow-up-scheduler").follow_up();
    let due = chrono::Utc::now() + chrono::Duration::hours(1);
    for i in 0..emails {
        scheduler
            .schedule_timer(fu::ScheduleTimerRequest {
                timer: Some(fu::Timer {
                    key: format!("r2-effect/{i}"),
                    purpose: fu::TimerPurpose::PostStayFollowUp as i32,
                    property_id: "sh-bund".into(),
                    guest_id: guest.guest_id.clone(),
                    due_time: Some(prost_types::Timestamp {
                        seconds: due.timestamp(),
                        nanos: 0,
                    }),
                    action: Some(fu::TimerAction {
                        action: Some(fu::timer_action::Action::SendMessage(
                            fu::SendMessageAction {
                                message: Some(nt::MessageSpec {
                                    recipient: Some(nt::Recipient {
                                        kind: Some(nt::recipient::Kind::Guest(
                                            nt::GuestRecipient {
                                                guest_id: guest.guest_id.clone(),
                                            },
                                        )),
                                    }),
                                    kind: nt::MessageKind::PostStayFollowUp as i32,
                                    purpose: c::ConsentPurpose::ServiceFollowUp as i32,
                                    property_id: "sh-bund".into(),
                                    ..Default::default()
                                }),
                            },
                        )),
                    }),
                    ..Default::default()
                }),
            })
            .await
            .unwrap_or_else(|s| panic!("timer {i}: {s:?}"));
    }
    let mut db = sqlx::PgConnection::connect(&spec.cluster.admin_url(&spec.database))
        .await
        .unwrap();
    sqlx::query("UPDATE followup.timers SET due_time = now() WHERE key LIKE 'r2-effect/%'")
        .execute(&mut db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut killed_with_unfired = Vec::new();
    for _ in 0..kills() {
        let left = unfired(&mut db, "r2-effect/%").await.unwrap();
        if left == 0 {
            break; // the long version can outlast the firing
        }
        killed_with_unfired.push(left);
        victim.kill().unwrap();
        victim = platform
            .replica(&spec, "follow-up-scheduler")
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        killed_with_unfired.len() >= KILLS_THAT_COUNT,
        "too few kills came before the firing was done: {killed_with_unfired:?}"
    );

    // Every timer fired, then every email arrived, and nothing more arrives after.
    let mail_ids = || -> Vec<String> {
        smtp.mails()
            .iter()
            .map(|m| m["message_id"].as_str().unwrap().to_string())
            .collect()
    };
    loop {
        let (left, mails) = (
            unfired(&mut db, "r2-effect/%").await.unwrap(),
            mail_ids().len(),
        );
        if left == 0 && mails >= emails {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{left} timers unfired, {mails} of {emails} emails after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered_after = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mails = mail_ids();
    let distinct: std::collections::BTreeSet<&String> = mails.iter().collect();
    assert_eq!(mails.len(), emails, "emails received");
    assert_eq!(distinct.len(), emails, "an email arrived twice");
    // Each timer's message is one of them, and no timer asked for two messages.
    let messages: Vec<String> = sqlx::query_scalar(
        "SELECT '<' || message_id::text || '@guestloop>' FROM followup.timers
         WHERE key LIKE 'r2-effect/%' AND state = 3",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(messages.len(), emails, "timers fired with their message");
    assert!(messages.iter().all(|m| distinct.contains(m)));
    let refired: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification.messages WHERE idempotency_key LIKE 'timer:%'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(refired, emails as i64, "messages created by timers");
    eprintln!(
        "R2 effect: {emails} email timers, 2 replicas, {} SIGKILLs of one (unfired at each kill: {killed_with_unfired:?}); every email delivered once after {delivered_after:?}",
        killed_with_unfired.len()
    );
    let _ = victim.stop(Duration::from_secs(10));
}
