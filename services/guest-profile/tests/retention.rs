//! Retention of the access log (issue 11): rows older than `retention.access_log` are
//! deleted oldest first; recent reads stay listed.

mod common;

use common::*;
use guestloop_proto::guestprofile::v1 as pb;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_rows_older_than_the_period_are_deleted() {
    let app = TestApp::spawn_with(
        r#"
[retention]
interval = "100ms"
batch = 2
max_batches_per_round = 1
[retention.default]
feedback_text = "3650d"
case_notes = "3650d"
message_variables = "3650d"
access_log = "1d"
"#,
    )
    .await;
    let g = app.create_guest("sh-bund", guest()).await;
    let guest_id: uuid::Uuid = g.guest_id.parse().unwrap();
    for days in [400, 40, 3] {
        sqlx::query(
            "INSERT INTO access_log (guest_id, accessor, accessor_role, rpc, access_time)
             VALUES ($1, 'old-reader', 'property_staff', '/x/GetGuest', now() - make_interval(days => $2))",
        )
        .bind(guest_id)
        .bind(days)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    app.head_office()
        .get_guest(pb::GetGuestRequest {
            guest_id: g.guest_id.clone(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let readers: Vec<String> = app
            .access_log(&g.guest_id)
            .await
            .into_iter()
            .map(|(accessor, _, _)| accessor)
            .collect();
        if !readers.iter().any(|r| r == "old-reader") {
            assert!(!readers.is_empty(), "the recent read stays");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{readers:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mark: (String,) =
        sqlx::query_as("SELECT scope FROM retention_marks WHERE task = 'access_log'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(mark.0, "*");
}
