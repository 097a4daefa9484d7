//! The delivery worker with several replicas, its own rate limit, and expiry.

mod common;

use common::*;
use guestloop_proto::common::v1 as c;
use guestloop_proto::notification::v1 as pb;
use pb::DeliveryStatus as S;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

async fn wait_all_sent(app: &TestApp, ids: &[String]) -> Vec<pb::OutboundMessage> {
    let mut out = Vec::new();
    for id in ids {
        out.push(app.wait_for(id, &[S::Sent]).await);
    }
    out
}

#[tokio::test]
async fn two_replicas_send_every_message_exactly_once() {
    let mut app = TestApp::spawn_with(Options {
        worker: true,
        extra_toml: "[delivery]\nbatch_size = 3\n".into(),
        ..Default::default()
    })
    .await;
    app.spawn_replica(true).await;
    let guest = app
        .guest(
            "hz-lake",
            "race@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    const N: usize = 40;
    // All due at the same instant, so both replicas race for them.
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let mut ids = Vec::new();
    for _ in 0..N {
        let mut spec = survey(&guest, "hz-lake");
        spec.not_before_time = Some(ts(due));
        let m = app.send(send_req(&key(), spec)).await.message.unwrap();
        ids.push(m.message_id);
    }
    let started = Instant::now();
    let sent = wait_all_sent(&app, &ids).await;
    assert!(sent.iter().all(|m| m.attempt_count == 1));
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = app.smtp.mails();
    let distinct: HashSet<String> = mails
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(mails.len(), N, "duplicates or misses");
    assert_eq!(distinct.len(), N);
    let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM delivery_attempts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, N as i64);
    let per_replica: Vec<i64> =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages GROUP BY worked_by ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(per_replica.len(), 2, "both replicas sent: {per_replica:?}");
    eprintln!(
        "numbers: {N} messages, 2 replicas sent {per_replica:?}, {} mails, 0 duplicates, 0 misses, all sent within {:?}",
        mails.len(),
        started.elapsed()
    );
}

#[tokio::test]
async fn the_provider_rate_limit_spaces_sends_without_spending_attempts() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        extra_toml: "[providers.smtp]\nrate_per_second = 4\nburst = 1\n".into(),
        ..Default::default()
    })
    .await;
    let guest = app
        .guest(
            "hz-lake",
            "slow@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.send(send_req(&key(), survey(&guest, "hz-lake")))
                .await
                .message
                .unwrap()
                .message_id,
        );
    }
    let sent = wait_all_sent(&app, &ids).await;
    assert!(sent.iter().all(|m| m.attempt_count == 1));
    let mut times: Vec<_> = sent
        .iter()
        .map(|m| {
            let t = m.send_time.as_ref().unwrap();
            chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
        })
        .collect();
    times.sort();
    // 4 per second with a burst of 1: five sends take at least ~1 s.
    let span = times[4] - times[0];
    assert!(span >= chrono::Duration::milliseconds(800), "{span}");
}

#[tokio::test]
async fn a_message_not_sent_by_its_expiry_is_suppressed() {
    // No worker at first: the message waits past its expiry.
    let mut app = TestApp::spawn().await;
    let guest = app
        .guest(
            "hz-lake",
            "late@example.com",
            "en",
            &[c::ContactChannel::Email],
        )
        .await;
    let mut spec = survey(&guest, "hz-lake");
    spec.expire_time = Some(ts(chrono::Utc::now() + chrono::Duration::milliseconds(300)));
    let m = app.send(send_req(&key(), spec)).await.message.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.spawn_replica(true).await;
    let m = app.wait_for(&m.message_id, &[S::Suppressed]).await;
    assert_eq!(m.suppression_reason, pb::SuppressionReason::Expired as i32);
    assert!(app.smtp.mails().is_empty());
}
