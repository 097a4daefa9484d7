//! Retention of report quotes (issue 11): quotes of feedback received more than the
//! property's region's `retention.feedback_text` ago are deleted; those of another region
//! and recent ones stay, and the rollups (the KPIs) do not move.

mod common;

use chrono::{Duration, Utc};
use common::*;
use guestloop_proto::events::v1 as ev;
use guestloop_proto::events::v1::EventEnvelope;
use guestloop_proto::events::v1::event_envelope::Payload;
use std::time::Instant;

fn quoted(property: &str, received: chrono::DateTime<Utc>) -> EventEnvelope {
    let id = new_id("fb");
    envelope(
        "feedback-intake",
        "feedback",
        &id,
        property,
        received,
        Payload::FeedbackReceived(ev::FeedbackReceived {
            feedback_id: id.clone(),
            property_id: property.into(),
            channel: 1,
            receive_time: Some(ts(received)),
            language: "en".into(),
            redacted_excerpt: "The wombat lamp flickered".into(),
            ..Default::default()
        }),
    )
}

async fn quotes(app: &TestApp, property: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM quotes WHERE property_id = $1")
        .bind(property)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_quotes_go_by_region_and_the_rollups_stay() {
    let app = TestApp::spawn(
        "[retention]\ninterval = \"100ms\"\nbatch = 1\n[retention.regions.east]\nfeedback_text = \"2d\"\n",
    )
    .await;
    let old = Utc::now() - Duration::days(3);
    app.deliver(vec![
        quoted("sh-bund", old),
        quoted("sh-bund", old),
        quoted("sh-bund", Utc::now()),
        quoted("hk-harbour", old),
    ])
    .await;
    let rollups = || async {
        sqlx::query_scalar::<_, String>("SELECT r::text FROM rollups r ORDER BY 1")
            .fetch_all(&app.pool)
            .await
            .unwrap()
    };
    let before = rollups().await;
    let start = Instant::now();
    while quotes(&app, "sh-bund").await != 1 {
        assert!(start.elapsed() < std::time::Duration::from_secs(15));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        quotes(&app, "hk-harbour").await,
        1,
        "the south keeps the chain's period"
    );
    assert_eq!(rollups().await, before);
    // The two old ones were deleted by the job (its mark moved), not left out on arrival.
    let marked: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "SELECT last_time FROM retention_marks WHERE task = 'report_quotes' AND scope = 'sh-bund'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        marked.is_some_and(|t| t < Utc::now() - Duration::days(2)),
        "{marked:?}"
    );
}
