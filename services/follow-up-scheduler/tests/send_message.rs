//! SendMessage timers through a REAL notification: each timer's message is created once,
//! under the idempotency key `timer:<timer_id>:<generation>`, by two racing replicas and
//! again after a replica "died" between calling notification and recording the firing.

mod common;

use common::*;
use guestloop_proto::common::v1::ConsentPurpose;
use guestloop_proto::followup::v1 as pb;
use guestloop_proto::notification::v1 as notify;
use pb::TimerState as S;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn send_timer(k: &str, due: chrono::DateTime<chrono::Utc>) -> pb::Timer {
    let mut t = timer(k, "sh-bund", due);
    t.purpose = pb::TimerPurpose::SatisfactionContact as i32;
    t.action = Some(pb::TimerAction {
        action: Some(pb::timer_action::Action::SendMessage(
            pb::SendMessageAction {
                message: Some(notify::MessageSpec {
                    recipient: Some(notify::Recipient {
                        kind: Some(notify::recipient::Kind::Guest(notify::GuestRecipient {
                            guest_id: uuid::Uuid::new_v4().to_string(),
                        })),
                    }),
                    kind: notify::MessageKind::SatisfactionSurvey as i32,
                    purpose: ConsentPurpose::ServiceFollowUp as i32,
                    variables: HashMap::from([(
                        "survey_link".to_string(),
                        "https://s.test/x1".to_string(),
                    )]),
                    ..Default::default()
                }),
            },
        )),
    });
    t
}

#[tokio::test]
async fn send_message_timers_create_each_message_once() {
    let mut app = TestApp::spawn(false).await;
    let (peer, notification_pool) = app.notification().await;
    app.start(true, &peer).await;
    app.start(true, &peer).await;
    const N: usize = 20;
    let due = in_ms(1_000);
    let mut keys = Vec::new();
    for _ in 0..N {
        let k = key("satisfaction_contact");
        app.schedule(send_timer(&k, due)).await;
        keys.push(k);
    }
    let mut fired = Vec::new();
    for k in &keys {
        fired.push(app.wait_for(k, &[S::Fired, S::Failed], WAIT).await);
    }
    for t in &fired {
        assert_eq!(t.state, S::Fired as i32, "{}", t.last_error);
        assert!(!t.message_id.is_empty());
    }
    let count = |pool: sqlx::PgPool| async move {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE idempotency_key LIKE 'timer:%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n
    };
    assert_eq!(count(notification_pool.clone()).await, N as i64);

    // A replica called notification for the first timer, then died before recording it:
    // its lease runs out, another replica runs the action again under the same key.
    let first = &fired[0];
    sqlx::query("DELETE FROM timer_firings WHERE timer_id = $1::uuid")
        .bind(&first.timer_id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE timers SET state = 2, lease_owner = 'dead-replica', message_id = '',
            lease_until = now() - interval '1 second'
         WHERE id = $1::uuid",
    )
    .bind(&first.timer_id)
    .execute(&app.pool)
    .await
    .unwrap();
    let started = Instant::now();
    let again = loop {
        let t = app.get(&first.key).await;
        if t.state == S::Fired as i32 && !t.message_id.is_empty() {
            break t;
        }
        assert!(started.elapsed() < WAIT, "not taken over: {t:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(again.message_id, first.message_id, "the same message");
    assert_eq!(again.attempt_count, 2);
    assert_eq!(
        count(notification_pool.clone()).await,
        N as i64,
        "no second message"
    );
    let key_of: String =
        sqlx::query_scalar("SELECT idempotency_key FROM messages WHERE id = $1::uuid")
            .bind(&first.message_id)
            .fetch_one(&notification_pool)
            .await
            .unwrap();
    assert_eq!(key_of, format!("timer:{}:1", first.timer_id));
    eprintln!(
        "numbers: {N} SendMessage timers over 2 replicas, {} notification messages, 1 re-run after a lost lease deduplicated by notification",
        count(notification_pool).await
    );
}
